//! A strategy's side of a run: its knobs in each mode, pause costs, deadline and policy, and which of
//! the circadian mechanisms are switched on (all of them, but in the counterfactuals of an attribution).

use super::{mean_step, Knobs, RunSetup, SimError, StepCost, StepModel};
use crate::grid::GridSeries;
use crate::routing::Router;
use crate::scenario::{CircadianSpec, Scenario, StrategyKind};
use crate::strategy::setup::{self, ModeRate, SetupError};
use crate::strategy::Policy;

/// The circadian mechanisms a run uses. The strategy itself switches all of them on; an attribution
/// switches them on one at a time (see `attribution.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mechanisms {
    /// The grid-aware policy picks each interval's mode (off: full speed around the clock).
    pub time_shift: bool,
    /// The planner weighs each interval by its own PUE (weather-driven cooling) rather than the mean.
    pub pue: bool,
    /// Pauses cost their checkpoint write and restore (off: free pauses).
    pub pause_overhead: bool,
    /// The circadian per-mode power caps (off: the cluster's cap in every mode).
    pub power_cap: bool,
    /// The throttled batch: its fraction, or the same global batch on fewer replicas with more
    /// gradient-accumulation micro-batches (off: the full batch on every replica when throttled).
    pub batch: bool,
    /// The throttled top-k and the top-k by hour (off: the model's top-k).
    pub routing: bool,
}

impl Mechanisms {
    /// Every mechanism on: the strategy as the scenario describes it.
    pub const ALL: Mechanisms = Mechanisms {
        time_shift: true,
        pue: true,
        pause_overhead: true,
        power_cap: true,
        batch: true,
        routing: true,
    };
    /// Every mechanism off: full speed around the clock at the cluster's cap.
    pub const NONE: Mechanisms = Mechanisms {
        time_shift: false,
        pue: false,
        pause_overhead: false,
        power_cap: false,
        batch: false,
        routing: false,
    };
}

/// What a strategy does differently from training at full speed, 24/7.
#[derive(Debug)]
pub(crate) struct Plan {
    /// Knobs at full speed (the cluster's power cap, or the circadian full-speed cap).
    pub full: Knobs,
    /// Knobs when throttled (the full-speed knobs for strategies that never throttle).
    pub throttled: Knobs,
    /// Checkpoint write time before a pause [s].
    pub checkpoint_s: f64,
    /// Restore + warm-up time after a pause [s].
    pub restore_s: f64,
    /// Deadline [s after start], for strategies that have one.
    pub deadline_s: Option<f64>,
    /// Top-k by local hour (a time-aware router), in every mode.
    pub top_k_by_hour: Option<[u32; 24]>,
    /// The policy that picks each interval's mode.
    pub policy: Policy,
    /// The throttled job on fewer replicas (`throttle_replica_fraction` < 1), priced by its own step model.
    pub replicas: Option<Replicas>,
}

/// The throttled job on a share of its data-parallel replicas (circadian gradient accumulation): the
/// global batch stays, the active replicas run proportionally more micro-batches, so a step takes
/// longer at lower power and every token is worth what it is at full speed. Its steps come from a step
/// model of that narrower plan. The GPUs of the replicas left out draw idle power: they stay in the
/// job's allocation (a GPU inside a node cannot be powered off alone, and releasing whole nodes for a
/// throttled hour would cost a restore on return, as a pause does), and their nodes keep their base
/// power, the load part of node power following the GPUs' lower draw.
#[derive(Debug)]
pub(crate) struct Replicas {
    /// The step model of the narrower plan (its GPUs only).
    pub model: StepModel,
    /// Its event-level step (`--event-level`).
    pub event: Option<super::event_step::EventStepModel>,
    /// The narrower job and cluster (to build the event-level step).
    pub job: crate::scenario::Job,
    /// The cluster of the narrower job's GPUs.
    pub cluster: crate::scenario::Cluster,
    /// GPUs of the replicas that idle while throttled.
    pub idle_gpus: f64,
    /// Idle power of one GPU [W].
    pub idle_w: f64,
}

impl Replicas {
    /// One throttled step at `shares` with `knobs` (their micro-batches those of the narrower plan),
    /// the idle GPUs' energy added.
    pub fn step(
        &mut self,
        shares: &[f64],
        knobs: Knobs,
    ) -> Result<StepCost, super::event_step::EventStepError> {
        let mut c = match self.event.as_mut() {
            Some(ev) => ev.step_cost(shares, knobs)?,
            None => self.model.step(shares, knobs),
        };
        c.gpu_energy_j += self.idle_gpus * self.idle_w * c.time_s;
        Ok(c)
    }

    /// A step at the router's mean loads (on a copy of the step model), the idle GPUs' energy added.
    fn mean_step(&self, router: &Option<Router>, knobs: Knobs) -> StepCost {
        let mut c = mean_step(&self.model, router, knobs);
        c.gpu_energy_j += self.idle_gpus * self.idle_w * c.time_s;
        c
    }
}

/// The throttled job of `s` on `c.throttle_replica_fraction` of its replicas (None at a fraction of 1):
/// a step model of the narrower plan on the active GPUs, experts placed from the same mean loads.
fn replicas_for(
    s: &Scenario,
    c: &CircadianSpec,
    router: &Option<Router>,
    nominal_top_k: u32,
    spread_seed: u64,
) -> Result<Option<Replicas>, SimError> {
    let Some(job) = s.moe.as_ref() else {
        return Ok(None);
    };
    let plan = c.throttled_plan(&job.plan);
    if plan.dp >= job.plan.dp {
        return Ok(None);
    }
    let idle = (job.plan.dp - plan.dp) * plan.tp * plan.pp;
    let job = crate::scenario::Job {
        plan,
        ..job.clone()
    };
    let cluster = crate::scenario::Cluster {
        gpus: s.cluster.gpus.saturating_sub(idle),
        ..s.cluster.clone()
    };
    let mut model = StepModel::new(&job, &cluster)?;
    if let Some(r) = router {
        let mean = r.mean_shares(16, model.assignments_per_layer(nominal_top_k));
        model.set_spread_seed(spread_seed);
        model.set_routing(
            s.routing.choice,
            s.routing.placement,
            s.routing.rebalance_every_steps,
            &mean,
        );
    }
    Ok(Some(Replicas {
        model,
        event: None,
        job,
        cluster,
        idle_gpus: idle as f64,
        idle_w: s.cluster.accelerator.idle_w,
    }))
}

impl Plan {
    /// Full speed all the time (`dense`, `moe`, and circadian with time shifting off).
    fn always_full(full: Knobs, deadline_s: Option<f64>, top_k_by_hour: Option<[u32; 24]>) -> Self {
        Self {
            full,
            throttled: full,
            checkpoint_s: 0.0,
            restore_s: 0.0,
            deadline_s,
            top_k_by_hour,
            policy: Policy::AlwaysFull,
            replicas: None,
        }
    }
}

/// The job's knobs at full speed under the cluster's power cap (`cluster.power_cap_w`, every strategy).
pub(crate) fn capped_full(s: &Scenario, sm: &StepModel) -> Knobs {
    Knobs {
        power_limit_w: s.cluster.power_cap_w,
        ..sm.full_knobs()
    }
}

/// Where the planner's inputs come from: the run's own power model (`setup`), the grid and its PUE per
/// interval, whether progress counts effective tokens, and the forecast's random stream.
pub(crate) struct PlanInputs<'a> {
    /// The run's power model (node power follows the GPUs' load exactly as in the run).
    pub setup: &'a RunSetup,
    /// The grid series.
    pub grid: &'a GridSeries,
    /// PUE of each grid interval.
    pub pue: &'a [f64],
    /// Progress counts effective tokens (equal-loss comparison).
    pub count_effective: bool,
    /// Random stream of the forecast noise.
    pub forecast_seed: u64,
    /// The `[cost]` table on the grid's intervals: the planner's forecast, all-in price, tax and hints.
    pub cost: Option<&'a crate::cost::CostInputs>,
}

/// The plan of strategy `kind` with the step model and router of its job, with `on` saying which
/// circadian mechanisms are used.
pub(crate) fn plan_for(
    s: &Scenario,
    kind: StrategyKind,
    sm: &StepModel,
    router: &Option<Router>,
    inputs: &PlanInputs<'_>,
    on: Mechanisms,
) -> Result<Plan, SimError> {
    let base = capped_full(s, sm);
    if kind != StrategyKind::Circadian {
        return Ok(Plan::always_full(base, None, None));
    }
    let c = s.circadian.as_ref().ok_or(SimError::Missing {
        strategy: kind.name(),
        what: "a [strategy.circadian] table",
    })?;
    let top_k_by_hour = if on.routing { c.top_k_by_hour } else { None };
    let full = Knobs {
        power_limit_w: if on.power_cap {
            c.full_power_cap_w
        } else {
            base.power_limit_w
        },
        ..base
    };
    if !on.time_shift {
        return Ok(Plan::always_full(full, Some(c.deadline_s), top_k_by_hour));
    }
    let replicas = if on.batch {
        replicas_for(s, c, router, sm.full_knobs().top_k, sm.spread_seed())?
    } else {
        None
    };
    let mut throttled = throttled_knobs(c, full, on);
    if let Some(r) = &replicas {
        throttled.micro_batches = r.model.full_knobs().micro_batches;
    }
    let pause_s = if on.pause_overhead {
        c.checkpoint_write_s + c.restore_s
    } else {
        0.0
    };
    let held_w = inputs.setup.held_it_w();
    // The rates of each mode at a top-k: the time-aware router's top-k for the hour caps both modes'.
    let rates_at = |k: u32| {
        let at = |kn: Knobs| Knobs {
            top_k: kn.top_k.min(k),
            ..kn
        };
        let (f, t) = (at(full), at(throttled));
        let price_t = |kn: Knobs| match &replicas {
            Some(r) => r.mean_step(router, kn),
            None => mean_step(sm, router, kn),
        };
        setup::rates(
            scheduled_rate(sm, inputs, f, |kn| mean_step(sm, router, kn)),
            scheduled_rate(sm, inputs, t, price_t),
            pause_s,
            held_w,
        )
    };
    let rates = rates_at(u32::MAX);
    // Per local hour when the top-k follows the hour (one evaluation per distinct top-k).
    let hour_rates = top_k_by_hour.map(|sched| {
        let mut seen: Vec<(u32, crate::strategy::Rates)> = Vec::new();
        sched.map(|k| match seen.iter().find(|x| x.0 == k) {
            Some(&(_, r)) => r,
            None => {
                let r = rates_at(k);
                seen.push((k, r));
                r
            }
        })
    });
    let pue = if on.pue {
        inputs.pue.to_vec()
    } else {
        mean_pue(inputs.pue)
    };
    let grid = super::cost::planner_grid(inputs.grid, inputs.cost, c);
    let policy = setup::policy(c, &grid, &pue, rates, hour_rates, inputs.forecast_seed).map_err(
        |SetupError::Missing { what }| SimError::Missing {
            strategy: kind.name(),
            what,
        },
    )?;
    let policy = super::cost::hook_policy(policy, inputs.cost, c, inputs.setup);
    let (checkpoint_s, restore_s) = if on.pause_overhead {
        (c.checkpoint_write_s, c.restore_s)
    } else {
        (0.0, 0.0)
    };
    Ok(Plan {
        full,
        throttled,
        checkpoint_s,
        restore_s,
        deadline_s: Some(c.deadline_s),
        top_k_by_hour,
        policy: Policy::Circadian(Box::new(policy)),
        replicas,
    })
}

/// The planner's rate of one mode at the router's mean loads: progress per second (effective tokens
/// when the run counts them: dropped assignments and a lower top-k discounted as the quality law's rule
/// says) and IT power by the run's own power model (GPUs incl. spin power, load-following node power,
/// network).
fn mode_rate(
    sm: &StepModel,
    inputs: &PlanInputs<'_>,
    c: StepCost,
    knobs: Knobs,
    effective_so_far: f64,
) -> ModeRate {
    let worth = if inputs.count_effective {
        let sched = &inputs.setup.schedules;
        effective_share(&c, knobs.top_k, sm.full_knobs().top_k)
            * sched.batch_worth(c.tokens, effective_so_far)
            * sched.experts_worth(knobs.active_experts, c.tokens, effective_so_far)
    } else {
        1.0
    };
    let gpu_w = c.gpu_energy_j / c.time_s;
    ModeRate {
        tokens_per_s: c.tokens / c.time_s * worth,
        it_w: gpu_w + inputs.setup.node_power_w(gpu_w) + inputs.setup.network_w,
    }
}

/// Most phases of a schedule the planner prices (a linear batch ramp has one per micro-batch count).
const MAX_PHASES: usize = 4096;

/// The planner's rate of a mode with `knobs` over the whole run, `price` giving a step at the router's
/// mean loads. With curriculum gating or a batch schedule the run's progress splits into phases of
/// constant knobs; each is priced at its own knobs (and its tokens worth the critical-batch charge at
/// the phase's middle), and the mode's rate is their mean weighted by progress: time per unit of
/// progress averaged, power weighted by time. The planner picks an hour's mode before it knows which
/// phase the hour will fall in, so it sees the schedule's mean, not the phase of the hour (a tokens
/// axis is read against the progress target, exact when progress counts every token). Without
/// schedules: the mode's one rate, the critical-batch charge at half the target.
fn scheduled_rate(
    sm: &StepModel,
    inputs: &PlanInputs<'_>,
    knobs: Knobs,
    price: impl Fn(Knobs) -> StepCost,
) -> ModeRate {
    let sched = &inputs.setup.schedules;
    let target = inputs.setup.tokens;
    if sched.is_empty() {
        return mode_rate(sm, inputs, price(knobs), knobs, 0.5 * target);
    }
    let mut priced: Vec<(Knobs, StepCost)> = Vec::new();
    let (mut p, mut time, mut energy) = (0.0f64, 0.0f64, 0.0f64);
    for _ in 0..MAX_PHASES {
        if p >= 1.0 {
            break;
        }
        let at = super::schedule::At {
            fraction: p,
            tokens: p * target,
        };
        let (k, next) = sched.apply(knobs, at);
        let end = next.fraction.min(next.tokens / target).clamp(p + 1e-9, 1.0);
        let c = match priced.iter().find(|x| x.0 == k) {
            Some(&(_, c)) => c,
            None => {
                let c = price(k);
                priced.push((k, c));
                c
            }
        };
        let r = mode_rate(sm, inputs, c, k, 0.5 * (p + end) * target);
        let t = (end - p) / r.tokens_per_s;
        time += t;
        energy += t * r.it_w;
        p = end;
    }
    // Phases past the cap (never reached by a validated schedule's ramps) run at the last knobs.
    if p < 1.0 {
        let (k, _) = sched.apply(
            knobs,
            super::schedule::At {
                fraction: p,
                tokens: p * target,
            },
        );
        let r = mode_rate(sm, inputs, price(k), k, 0.5 * (p + 1.0) * target);
        let t = (1.0 - p) / r.tokens_per_s;
        time += t;
        energy += t * r.it_w;
    }
    ModeRate {
        tokens_per_s: 1.0 / time,
        it_w: energy / time,
    }
}

/// The schedules of `job`'s run in `s` training to `target_tokens` (effective when the run counts
/// them): the curriculum's top-k (MoE only), the batch schedule, and the critical-batch charge when a
/// step's batch may differ from the nominal one (a batch schedule, or a smaller circadian throttled
/// batch), the critical batch from the run's loss law.
pub(crate) fn schedules_for(
    s: &Scenario,
    kind: StrategyKind,
    job: &crate::scenario::Job,
    sm: &StepModel,
    target_tokens: f64,
) -> super::schedule::Schedules {
    let moe = job.model.moe().is_some();
    let throttled_batch = kind == StrategyKind::Circadian
        && s.circadian
            .as_ref()
            .is_some_and(|c| c.throttle_batch_fraction < 1.0);
    let batch = s.training.batch_schedule.clone();
    let worth = (batch.is_some() || throttled_batch).then(|| super::schedule::BatchWorth {
        ref_batch_tokens: sm.tokens_per_step(sm.full_knobs()),
        critical: crate::quality::CriticalBatch::new(super::outcome::law_of(s, job), target_tokens),
    });
    let active_experts = s.training.curriculum_active_experts.clone().filter(|_| moe);
    let experts_charge = active_experts.as_ref().map(|_| {
        super::schedule::ExpertsCharge::new(
            super::outcome::law_of(s, job),
            &super::outcome::model_shape(job),
        )
    });
    super::schedule::Schedules {
        top_k: s.training.curriculum_top_k.clone().filter(|_| moe),
        capacity_factor: s
            .training
            .curriculum_capacity_factor
            .clone()
            .filter(|_| moe),
        active_experts,
        experts_charge,
        batch,
        worth,
    }
}

/// Share of a step's tokens the quality law counts ([`crate::quality::effective_tokens`]'s rule): the
/// kept share of the assignments × min(top-k used / nominal top-k, 1).
pub(crate) fn effective_share(c: &super::StepCost, top_k: u32, nominal_top_k: u32) -> f64 {
    let kept = if c.assignments > 0.0 {
        1.0 - c.dropped / c.assignments
    } else {
        1.0
    };
    let k = if nominal_top_k == 0 {
        1.0
    } else {
        (top_k as f64 / nominal_top_k as f64).min(1.0)
    };
    kept * k
}

/// The PUE series as a planner blind to the weather sees it: every interval at the mean (the series
/// itself when it is constant, so a constant PUE gives the very same plan).
fn mean_pue(pue: &[f64]) -> Vec<f64> {
    if pue.windows(2).all(|w| w[0] == w[1]) {
        return pue.to_vec();
    }
    let mean = pue.iter().sum::<f64>() / pue.len().max(1) as f64;
    vec![mean; pue.len()]
}

/// Knobs while throttled: the power cap, the lower top-k and the batch fraction (at least one
/// micro-batch), each only when its mechanism is on.
fn throttled_knobs(c: &CircadianSpec, full: Knobs, on: Mechanisms) -> Knobs {
    Knobs {
        power_limit_w: if on.power_cap {
            c.throttle_power_cap_w
        } else {
            full.power_limit_w
        },
        top_k: if on.routing {
            c.throttle_top_k
        } else {
            full.top_k
        },
        micro_batches: if on.batch {
            ((full.micro_batches as f64 * c.throttle_batch_fraction).round() as u32).max(1)
        } else {
            full.micro_batches
        },
        ..full
    }
}
