//! The run-level simulation of one strategy: steps, grid intervals, decisions, checkpoints and pauses
//! over wall-clock time, on the discrete-event engine, with energy metered per component.

use super::meter::{Meter, Power};
use super::step::{StepCost, StepModel};
use super::waveform::PowerTrack;
use crate::engine::{SimTime, Simulation};
use crate::grid::GridSeries;
use crate::progress::{ProgressSink, Silent};
use crate::routing::Router;
use crate::strategy::{Mode, Policy};

pub use super::run_blocks::BLOCK_STEPS;
use super::run_blocks::{weighted_p99, BlockSizer};
pub use super::run_setup::RunSetup;

pub use super::run_outcome::{RunError, RunOutcome, StepSums, TimelineRow};

mod events;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ev {
    Interval(usize),
    StepDone,
    CheckpointDone,
    RestoreDone,
    /// An evaluation (`[training.eval]`) ended.
    EvalDone,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Training,
    Checkpointing,
    Paused,
    Restoring,
    /// Running an evaluation's forward-only passes (`[training.eval]`).
    Evaluating,
    Finished,
}

struct Run<'a> {
    setup: &'a RunSetup,
    watch: Watch<'a>,
    grid: &'a GridSeries,
    step_model: &'a mut StepModel,
    /// Every step at event level instead of the fast path (`moesim run --event-level`).
    event: Option<&'a mut super::event_step::EventStepModel>,
    /// Throttled steps on fewer replicas (circadian gradient accumulation), when the plan has them.
    replicas: Option<&'a mut super::plan::Replicas>,
    router: Option<&'a mut Router>,
    policy: &'a mut Policy,
    shares: Vec<f64>,
    meter: Meter,
    /// The run's power at step-phase resolution: ramp statistics, fillers, the window's segments.
    track: PowerTrack,
    state: State,
    mode: Mode,
    in_flight: StepCost,
    in_flight_k: u32,
    /// Active experts of the block in flight (None: all).
    in_flight_active: Option<u32>,
    /// Experts the router could use and the capacity factor (0: dropless) of the step in flight.
    in_flight_routing: (f64, f64),
    /// Steps in the block in flight (1 when every step is priced).
    in_flight_n: u64,
    /// How long the fast path's blocks may be.
    blocks: BlockSizer,
    tokens_done: f64,
    tokens_raw: f64,
    tokens_effective: f64,
    interval_tokens: f64,
    /// Assignments routed and dropped in the current interval.
    interval_assign: (f64, f64),
    /// Steps and Σ tokens × top-k of the current interval (its mean batch and top-k).
    interval_steps: u64,
    interval_token_top_k: f64,
    /// Σ tokens × active experts and Σ tokens × capacity factor over the interval.
    interval_token_routing: (f64, f64),
    /// Where the schedules' knobs may next change (a block stops before it).
    next_change: super::schedule::NextChange,
    current: Option<usize>,
    current_hour: u32,
    current_pue: f64,
    interval_start_s: f64,
    timeline: Vec<TimelineRow>,
    sums: StepSums,
    step_times: Vec<f32>,
    /// Steps each entry of `step_times` stands for (empty when every step is priced).
    step_weights: Vec<u32>,
    mode_s: [f64; 3],
    mode_since_s: f64,
    mode_slot: usize,
    pauses: u32,
    held_s: f64,
    held_since: Option<f64>,
    /// Held time up to the start of the current interval [s].
    held_at_interval_start_s: f64,
    end_s: f64,
}

impl Run<'_> {
    fn held_power(&self) -> Power {
        if self.setup.release_when_paused && self.state == State::Paused {
            return Power::default();
        }
        let gpu = self.setup.gpus * self.setup.gpu_idle_w;
        Power {
            gpu_w: gpu,
            waiting_w: gpu,
            node_w: self.setup.node_w,
            network_w: self.setup.network_w,
        }
    }

    /// The job holds power `p` from `t` in its current (non-training) state.
    fn hold(&mut self, t: f64, p: Power) {
        self.meter.set_power(t, p);
        let state = match self.state {
            State::Checkpointing => "checkpoint",
            State::Restoring => "restore",
            State::Evaluating => "eval",
            _ => "paused",
        };
        let ci = self.current.map_or(0.0, |i| self.grid.ci_g_per_kwh[i]);
        let lump_j = self.track.held(t, state, p, self.current_pue, ci);
        if lump_j > 0.0 {
            self.meter.add_gpu_energy(lump_j);
        }
    }

    fn set_slot(&mut self, now: f64, slot: usize) {
        self.mode_s[self.mode_slot] += now - self.mode_since_s;
        self.mode_since_s = now;
        self.mode_slot = slot;
    }

    fn set_held(&mut self, now: f64, held: bool) {
        match (self.held_since, held) {
            (None, true) => self.held_since = Some(now),
            (Some(t), false) => {
                self.held_s += now - t;
                self.held_since = None;
            }
            _ => {}
        }
    }

    fn start_step(&mut self, now: SimTime, out: &mut Vec<(SimTime, Ev)>) -> Result<(), RunError> {
        let mut knobs = if self.mode == Mode::Throttled {
            self.setup.throttled
        } else {
            self.setup.full
        };
        // The time-aware router's top-k for the hour holds in every mode; a throttled top-k below it wins.
        if let (Some(sched), Some(_)) = (&self.setup.top_k_by_hour, self.current) {
            knobs.top_k = knobs.top_k.min(sched[self.current_hour as usize % 24]);
        }
        // Curriculum gating and the batch schedule at the progress this step starts at.
        let (knobs, next) = self.setup.schedules.apply(knobs, self.at());
        self.next_change = next;
        let throttled_replicas = self.replicas.is_some() && self.mode == Mode::Throttled;
        let c = if throttled_replicas || self.event.is_some() {
            // Priced one step at a time: the narrower replica plan and the event level.
            if let Some(r) = self.router.as_deref_mut() {
                let assignments = self.step_model.assignments_per_layer(knobs.top_k);
                r.fill_shares(self.sums.steps, assignments, &mut self.shares);
            }
            self.in_flight_n = 1;
            match (self.event.as_deref_mut(), self.replicas.as_deref_mut()) {
                (_, Some(r)) if throttled_replicas => r.step(&self.shares, knobs)?,
                // The step's per-layer skew energy is logged under the grid interval it starts in.
                (Some(ev), _) => {
                    ev.step_cost_in(&self.shares, knobs, self.current.unwrap_or(0) as u32)?
                }
                (None, _) => self.step_model.step(&self.shares, knobs),
            }
        } else {
            self.fast_block(now.as_secs_f64(), knobs)
        };
        self.in_flight = c;
        self.in_flight_k = knobs.top_k;
        self.in_flight_active = knobs.active_experts;
        self.in_flight_routing = (
            self.step_model.active_experts_at(knobs) as f64,
            self.step_model.capacity_factor_at(knobs).unwrap_or(0.0),
        );
        let gpu_w = c.gpu_energy_j / c.time_s;
        let mut p = Power {
            gpu_w,
            waiting_w: c.waiting_energy_j / c.time_s,
            node_w: self.setup.node_power_w(gpu_w),
            network_w: self.setup.network_w,
        };
        let ci = self.current.map_or(0.0, |i| self.grid.ci_g_per_kwh[i]);
        let t = now.as_secs_f64();
        let (filler_w, lump_j) =
            self.track
                .steps(t, &c, self.in_flight_n, self.setup, self.current_pue, ci);
        // The power floor's filler is drawn by the GPUs (+ 0.0 without a floor: the same bits).
        p.gpu_w += filler_w;
        self.meter.set_power(t, p);
        if lump_j > 0.0 {
            self.meter.add_gpu_energy(lump_j);
        }
        // × 1.0 for a single step: the same time bit for bit.
        let block_s = c.time_s * self.in_flight_n as f64;
        out.push((now + SimTime::from_secs_f64(block_s), Ev::StepDone));
        Ok(())
    }

    /// Price the next block of steps on the fast path at `now_s` with `knobs` (sets `in_flight_n`):
    /// one step's cost at one routing sample for the block. The block is as long as whole steps
    /// of that cost fit before the grid interval ends (no knob changes within it), at most
    /// `setup.block_steps`, no longer than training needs to finish, and stops before a
    /// rebalancing and before the first step a schedule's knob change applies to; where no whole step fits, one step (crossing the boundary, as per-step does).
    fn fast_block(&mut self, now_s: f64, knobs: crate::sim::Knobs) -> StepCost {
        let assignments = self.step_model.assignments_per_layer(knobs.top_k);
        let (mut n, mean_s) = self.blocks.longest(knobs);
        if let Some(e) = self.setup.eval {
            // A block ends on the step an evaluation follows.
            let every = e.every_steps.max(1);
            n = n.min(every - self.sums.steps % every);
        }
        if n > 1 {
            if let Some(until) = self.step_model.steps_to_rebalance() {
                // The rebalancing step runs alone (its migration time is its own).
                n = n.min(until.saturating_sub(1).max(1));
            }
        }
        let end_s = self.current.map_or(0, |i| i + 1) as f64 * self.grid.interval_s as f64;
        if let Some(m) = mean_s.filter(|&m| m > 0.0 && n > 1) {
            // As many as fit before the interval ends at the mean step time seen (so a drifting
            // router's walk is not advanced past the block).
            n = n.min(((end_s - now_s) / m).floor().max(1.0) as u64);
        }
        if n == 1 {
            // Every step priced: the per-step path, unchanged.
            if let Some(r) = self.router.as_deref_mut() {
                r.fill_shares(self.sums.steps, assignments, &mut self.shares);
            }
            self.in_flight_n = 1;
            let c = self.step_model.step(&self.shares, knobs);
            self.blocks.record(knobs, c.time_s);
            return c;
        }
        if let Some(r) = self.router.as_deref_mut() {
            r.fill_shares_over(self.sums.steps, n, assignments, &mut self.shares);
        }
        let c = self.step_model.step_block(&self.shares, knobs, n);
        self.blocks.record(knobs, c.time_s);
        // Whole steps of this cost before the interval ends.
        let fit = if c.time_s > 0.0 {
            ((end_s - now_s) / c.time_s).floor().max(0.0)
        } else {
            0.0
        };
        // Steps until training is done at this step's progress.
        let per_step = if self.setup.count_effective {
            c.tokens
                * super::plan::effective_share(&c, knobs.top_k, self.setup.full.top_k)
                * self
                    .setup
                    .schedules
                    .batch_worth(c.tokens, self.tokens_effective)
                * self.setup.schedules.experts_worth(
                    knobs.active_experts,
                    c.tokens,
                    self.tokens_effective,
                )
        } else {
            c.tokens
        };
        let need = if per_step > 0.0 {
            ((self.setup.tokens - self.tokens_done) / per_step)
                .ceil()
                .max(1.0)
        } else {
            1.0
        };
        // Steps until a schedule changes a knob: the block ends before the step that starts past it.
        let per = super::schedule::At {
            fraction: per_step / self.setup.tokens,
            tokens: c.tokens,
        };
        let until = self.next_change.steps_until(self.at(), per);
        self.in_flight_n = (fit.min(need).min(n as f64).min(until) as u64).max(1);
        c
    }

    /// Where the run stands for the schedules: the share of its progress target and the tokens trained.
    fn at(&self) -> super::schedule::At {
        super::schedule::At {
            fraction: self.tokens_done / self.setup.tokens,
            tokens: self.tokens_raw,
        }
    }

    fn close_interval(&mut self, now_s: f64, next: Option<usize>) {
        let (ci, price) = match next {
            Some(i) => (self.grid.ci_g_per_kwh[i], self.price(i)),
            None => (0.0, 0.0),
        };
        let pue = match (next, &self.setup.pue_by_interval) {
            (Some(i), Some(p)) => p.get(i).copied().unwrap_or(self.setup.pue),
            _ => self.setup.pue,
        };
        let totals = self.meter.new_interval(now_s, ci, price, pue);
        self.track.interval(now_s, pue);
        let held_now_s = self.held_s + self.held_since.map_or(0.0, |t| now_s - t);
        let held_s = held_now_s - self.held_at_interval_start_s;
        self.held_at_interval_start_s = held_now_s;
        if let Some(i) = self.current {
            self.timeline.push(TimelineRow {
                start_utc_s: self.grid.start_utc_s + i as i64 * self.grid.interval_s,
                local_hour: self.current_hour,
                pue: self.current_pue,
                ci_g_per_kwh: self.grid.ci_g_per_kwh[i],
                price_per_mwh: self.price(i),
                mode: if self.state == State::Finished && totals.time_s == 0.0 {
                    None
                } else {
                    Some(self.mode)
                },
                totals,
                tokens: self.interval_tokens,
                dropped_share: if self.interval_assign.0 > 0.0 {
                    self.interval_assign.1 / self.interval_assign.0
                } else {
                    0.0
                },
                covered_s: now_s - self.interval_start_s,
                held_s,
                mean_top_k: if self.interval_tokens > 0.0 {
                    self.interval_token_top_k / self.interval_tokens
                } else {
                    0.0
                },
                mean_batch_tokens: if self.interval_steps > 0 {
                    self.interval_tokens / self.interval_steps as f64
                } else {
                    0.0
                },
                mean_active_experts: if self.interval_tokens > 0.0 {
                    self.interval_token_routing.0 / self.interval_tokens
                } else {
                    0.0
                },
                mean_capacity_factor: if self.interval_tokens > 0.0 {
                    self.interval_token_routing.1 / self.interval_tokens
                } else {
                    0.0
                },
            });
        }
        self.watch.sink.update(&crate::progress::Progress {
            task: self.watch.task,
            tasks: self.watch.tasks,
            name: self.watch.name,
            done: self.tokens_done / self.setup.tokens,
            simulated_s: now_s,
            steps: self.sums.steps,
        });
        self.interval_tokens = 0.0;
        self.interval_assign = (0.0, 0.0);
        self.interval_steps = 0;
        self.interval_token_top_k = 0.0;
        self.interval_token_routing = (0.0, 0.0);
        self.interval_start_s = now_s;
        self.current = next;
        // Local time is converted once per interval, not on every step that reads it.
        self.current_hour = next.map_or(0, |i| self.grid.local_hour(i));
        self.current_pue = pue;
    }

    fn price(&self, i: usize) -> f64 {
        self.grid.price_per_mwh.as_ref().map_or(0.0, |p| p[i])
    }
}

/// Who watches a run: the progress sink, and which of the tasks started together this run is.
#[derive(Clone, Copy)]
pub struct Watch<'a> {
    /// Receives an update at every grid-interval boundary.
    pub sink: &'a dyn ProgressSink,
    /// Index of this run among the tasks started together.
    pub task: usize,
    /// Number of tasks started together.
    pub tasks: usize,
    /// The run's name (its strategy).
    pub name: &'a str,
}

impl Watch<'static> {
    /// Nobody watches.
    pub const NONE: Watch<'static> = Watch {
        sink: &Silent,
        task: 0,
        tasks: 1,
        name: "",
    };
}

/// Simulate one strategy's run over `grid`, from its first interval.
pub fn run(
    setup: &RunSetup,
    grid: &GridSeries,
    step_model: &mut StepModel,
    router: Option<&mut Router>,
    policy: &mut Policy,
) -> Result<RunOutcome, RunError> {
    run_watched(setup, grid, step_model, router, policy, Watch::NONE)
}

/// [`run`], reporting progress to `watch` once per grid interval.
pub fn run_watched(
    setup: &RunSetup,
    grid: &GridSeries,
    step_model: &mut StepModel,
    router: Option<&mut Router>,
    policy: &mut Policy,
    watch: Watch<'_>,
) -> Result<RunOutcome, RunError> {
    run_watched_event(setup, grid, step_model, None, None, router, policy, watch)
}

/// [`run_watched`], every step priced by `event` (the event-level step) when given, and throttled
/// steps by `replicas` (the job on fewer replicas) when given.
#[allow(clippy::too_many_arguments)]
pub(crate) fn run_watched_event(
    setup: &RunSetup,
    grid: &GridSeries,
    step_model: &mut StepModel,
    event: Option<&mut super::event_step::EventStepModel>,
    replicas: Option<&mut super::plan::Replicas>,
    router: Option<&mut Router>,
    policy: &mut Policy,
    watch: Watch<'_>,
) -> Result<RunOutcome, RunError> {
    let n_shares = router.as_ref().map_or(0, |r| r.experts() * r.layers());
    // Reserve the step-time record once, outside the per-step path (throttled steps may be smaller).
    let per_step = step_model
        .tokens_per_step(setup.throttled)
        .min(step_model.tokens_per_step(setup.full))
        * setup.schedules.smallest_batch_share();
    let expected_steps = if per_step > 0.0 {
        (setup.tokens / per_step) as usize + 16
    } else {
        16
    };
    let mut run = Run {
        setup,
        watch,
        grid,
        step_model,
        event,
        replicas,
        router,
        policy,
        shares: vec![0.0; n_shares],
        meter: Meter::new(setup.pue),
        track: PowerTrack::new(setup),
        state: State::Training,
        mode: Mode::Full,
        in_flight: StepCost::default(),
        in_flight_k: 0,
        in_flight_active: None,
        in_flight_routing: (0.0, 0.0),
        in_flight_n: 1,
        blocks: BlockSizer::new(setup.block_steps, expected_steps as f64),
        tokens_done: 0.0,
        tokens_raw: 0.0,
        tokens_effective: 0.0,
        interval_tokens: 0.0,
        interval_assign: (0.0, 0.0),
        interval_steps: 0,
        interval_token_top_k: 0.0,
        interval_token_routing: (0.0, 0.0),
        next_change: super::schedule::NextChange::NEVER,
        current: None,
        current_hour: 0,
        current_pue: setup.pue,
        interval_start_s: 0.0,
        timeline: Vec::with_capacity(grid.ci_g_per_kwh.len()),
        sums: StepSums::default(),
        step_times: Vec::with_capacity(expected_steps),
        // Aggregated runs weigh each entry by the steps it stands for.
        step_weights: Vec::with_capacity(if setup.block_steps > 1 {
            expected_steps
        } else {
            0
        }),
        mode_s: [0.0; 3],
        mode_since_s: 0.0,
        mode_slot: 0,
        pauses: 0,
        held_s: 0.0,
        held_since: None,
        held_at_interval_start_s: 0.0,
        end_s: 0.0,
    };
    let mut sim = Simulation::new();
    sim.schedule(SimTime::ZERO, Ev::Interval(0))?;
    let done = sim.run(&mut run);
    watch.sink.finish(watch.task);
    done?;
    let wall_s = run.end_s;
    let power = run.track.finish(wall_s);
    let mut sums = run.sums;
    if !run.step_weights.is_empty() {
        sums.p99_step_s = weighted_p99(&run.step_times, &run.step_weights);
    } else if !run.step_times.is_empty() {
        let k = ((run.step_times.len() as f64 * 0.99).ceil() as usize)
            .clamp(1, run.step_times.len())
            - 1;
        let (_, v, _) = run.step_times.select_nth_unstable_by(k, f32::total_cmp);
        sums.p99_step_s = *v as f64;
    }
    Ok(RunOutcome {
        totals: run.meter.total,
        wall_s,
        tokens: run.tokens_raw,
        effective_tokens: run.tokens_effective,
        gpu_hours: run.held_s * setup.gpus / 3600.0,
        peak_facility_w: run.meter.peak_facility_w,
        mode_s: run.mode_s,
        pauses: run.pauses,
        sums,
        timeline: run.timeline,
        power,
    })
}
