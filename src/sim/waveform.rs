//! The facility power of a run at step-phase resolution: each step's phase profile (from the step
//! model's [`StepPhases`]) × the steps of a block, the held power of checkpoints, pauses and restores,
//! the power floor's and the ramp limit's filler loads, and the ramp statistics of the whole run.
//!
//! The statistics are derived analytically per block (a block's `n` steps repeat one phase profile),
//! never by materialising steps: a block adds its phase transitions `n` times, its step-to-step wrap
//! `n − 1` times, and its power moments; the segments themselves are kept only where they overlap the
//! window `moesim run --waveform` asks for.

use super::meter::Power;
use super::run_setup::RunSetup;
use super::step::{StepCost, StepPhases, PHASES, PHASE_NAMES};

/// Power of one phase of a step, IT level (facility = (gpu + node + network + filler) × PUE).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PhasePower {
    /// Duration of the phase in each step [s].
    pub time_s: f64,
    /// All GPUs [W].
    pub gpu_w: f64,
    /// Node overhead [W].
    pub node_w: f64,
    /// The power floor's filler load [W].
    pub filler_w: f64,
}

/// What the job does in a segment of the waveform.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SegmentKind {
    /// `steps` equal steps, each running `phases` in order (a phase of zero time is skipped).
    Steps {
        /// Steps in the segment.
        steps: u64,
        /// The step's phases (named by [`PHASE_NAMES`]; a step without a split is phase 0, `step`).
        phases: [PhasePower; PHASES],
        /// Whether the phases are the step model's split (false: one phase, the whole step).
        split: bool,
    },
    /// The job holds (or has released) its nodes without training: `state` is `checkpoint`,
    /// `paused` or `restore`.
    Held {
        /// What the job does.
        state: &'static str,
        /// All GPUs [W].
        gpu_w: f64,
        /// Node overhead [W].
        node_w: f64,
    },
}

/// A stretch of the run at one power pattern.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Segment {
    /// Start [s from the run's start].
    pub start_s: f64,
    /// End [s from the run's start].
    pub end_s: f64,
    /// Network switches [W] (0 while a paused job's nodes are released).
    pub network_w: f64,
    /// What the job does.
    pub kind: SegmentKind,
}

/// The ramp limit's filler: IT power rising or falling linearly from `from_w` to `to_w` over
/// `[start_s, end_s]`, on top of the segments.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ramp {
    /// Start [s from the run's start].
    pub start_s: f64,
    /// End [s from the run's start].
    pub end_s: f64,
    /// Filler IT power at the start [W].
    pub from_w: f64,
    /// Filler IT power at the end [W].
    pub to_w: f64,
}

/// The ramp statistics of a run and the cost of its mitigations.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PowerOutcome {
    /// Largest change of facility power between consecutive phases or states [W].
    pub max_swing_w: f64,
    /// Steepest change of facility power [W/s]: a swing over the mean of the two phases' durations
    /// (power drawn linearly between phase midpoints), at most the ramp limit where one applies.
    pub max_ramp_w_per_s: f64,
    /// Swings of at least the threshold.
    pub swings: f64,
    /// The threshold [W] (a share of the job's peak facility power, `[power]`).
    pub threshold_w: f64,
    /// Share of the facility power's variance over the run that lies within steps (the step
    /// frequency and its harmonics): Σ blocks n·Σ dᵢ(Pᵢ − P̄ₛₜₑₚ)² over ∫(P − P̄)² dt (NaN when flat).
    pub step_variance_share: f64,
    /// Facility energy of the power floor's filler [J].
    pub floor_facility_j: f64,
    /// Facility energy of the ramp limit's filler [J].
    pub ramp_facility_j: f64,
    /// Emissions of both fillers [kg CO2e].
    pub mitigation_co2_kg: f64,
    /// Segments overlapping the waveform window (empty without one).
    pub segments: Vec<Segment>,
    /// Ramp fillers overlapping the window.
    pub ramps: Vec<Ramp>,
    /// The window [s from the run's start], if one was asked for.
    pub window_s: Option<(f64, f64)>,
}

/// The segment being drawn.
#[derive(Debug, Clone, Copy)]
struct Open {
    seg: Segment,
    pue: f64,
    /// Its facility level as the meter sees it (the mean over a step) [W].
    level_w: f64,
}

/// Follows a run's power: the segment in force, the previous segment's last phase, and the sums the
/// statistics come from.
#[derive(Debug, Clone)]
pub(super) struct PowerTrack {
    floor_it_w: f64,
    ramp_w_per_s: Option<f64>,
    window: Option<(f64, f64)>,
    open: Option<Open>,
    /// Facility power and duration of the last phase before the open segment.
    prev_last: Option<(f64, f64)>,
    /// Whether the transition into the open segment is a state change the ramp limit applies to.
    limited: bool,
    sum_pt: f64,
    sum_p2t: f64,
    sum_t: f64,
    within: f64,
    out: PowerOutcome,
}

/// Peak IT power of the job: every GPU at its TDP, nodes at full load, switches [W].
pub fn peak_it_w(setup: &RunSetup) -> f64 {
    setup.gpus * setup.gpu_full_w + setup.node_w + setup.node_load_w + setup.network_w
}

impl PowerTrack {
    pub fn new(setup: &RunSetup) -> Self {
        let p = &setup.power;
        let peak = peak_it_w(setup);
        PowerTrack {
            floor_it_w: p.floor_fraction.map_or(0.0, |f| f * peak),
            ramp_w_per_s: p.ramp_limit_w_per_s,
            window: p.window_s,
            open: None,
            prev_last: None,
            limited: false,
            sum_pt: 0.0,
            sum_p2t: 0.0,
            sum_t: 0.0,
            within: 0.0,
            out: PowerOutcome {
                threshold_w: p.swing_threshold_fraction * peak * setup.pue,
                window_s: p.window_s,
                ..Default::default()
            },
        }
    }

    /// The phase profile of step `c` at IT level: GPU power per phase, node power on the setup's
    /// load line (linear in GPU power, so the phases' node energy sums to the meter's), and the
    /// floor's filler.
    fn profile(&self, c: &StepCost, setup: &RunSetup) -> ([PhasePower; PHASES], bool) {
        let mut out = [PhasePower::default(); PHASES];
        let ph: StepPhases = c.phases;
        let split = ph.is_split();
        let range = (setup.gpu_full_w - setup.gpu_idle_w) * setup.gpus;
        let node = |gpu_w: f64| {
            let share = if range > 0.0 {
                (gpu_w - setup.gpu_idle_w * setup.gpus) / range
            } else {
                0.0
            };
            setup.node_w + setup.node_load_w * share
        };
        for (i, o) in out.iter_mut().enumerate() {
            let (t, j) = if split {
                (ph.time_s[i], ph.gpu_j[i])
            } else if i == 0 {
                (c.time_s, c.gpu_energy_j)
            } else {
                (0.0, 0.0)
            };
            if t <= 0.0 {
                continue;
            }
            let gpu_w = j / t;
            let node_w = node(gpu_w);
            let it = gpu_w + node_w + setup.network_w;
            *o = PhasePower {
                time_s: t,
                gpu_w,
                node_w,
                filler_w: (self.floor_it_w - it).max(0.0),
            };
        }
        (out, split)
    }

    /// A block of `steps` steps of cost `c` starts at `t_s`, at PUE `pue` and intensity `ci`
    /// [g/kWh]. Returns the floor's mean filler power over a step [W] (the meter adds it to the
    /// GPUs' draw: the filler is GPU work, as power-smoothing floors are) and the ramp filler's IT
    /// energy to meter now [J].
    pub fn steps(
        &mut self,
        t_s: f64,
        c: &StepCost,
        steps: u64,
        setup: &RunSetup,
        pue: f64,
        ci: f64,
    ) -> (f64, f64) {
        let (phases, split) = self.profile(c, setup);
        let filler_j: f64 = phases.iter().map(|p| p.filler_w * p.time_s).sum();
        let filler_w = if c.time_s > 0.0 {
            filler_j / c.time_s
        } else {
            0.0
        };
        let fac = filler_j * steps as f64 * pue;
        self.out.floor_facility_j += fac;
        self.out.mitigation_co2_kg += fac / 3.6e6 * ci / 1000.0;
        let gpu_w = if c.time_s > 0.0 {
            c.gpu_energy_j / c.time_s
        } else {
            0.0
        };
        let level = (gpu_w + setup.node_power_w(gpu_w) + setup.network_w + filler_w) * pue;
        let held_before = matches!(
            self.open.map(|o| o.seg.kind),
            Some(SegmentKind::Held { .. })
        );
        let seg = Segment {
            start_s: t_s,
            end_s: t_s + c.time_s * steps as f64,
            network_w: setup.network_w,
            kind: SegmentKind::Steps {
                steps,
                phases,
                split,
            },
        };
        let lump = self.switch(t_s, seg, pue, level, held_before, ci);
        (filler_w, lump)
    }

    /// The job holds power `p` at `t_s` (a checkpoint, a pause, a restore) at PUE `pue` and intensity
    /// `ci`; returns the ramp filler's IT energy to meter now [J].
    pub fn held(&mut self, t_s: f64, state: &'static str, p: Power, pue: f64, ci: f64) -> f64 {
        let seg = Segment {
            start_s: t_s,
            end_s: t_s,
            network_w: p.network_w,
            kind: SegmentKind::Held {
                state,
                gpu_w: p.gpu_w,
                node_w: p.node_w,
            },
        };
        self.switch(t_s, seg, pue, p.it_w() * pue, true, ci)
    }

    /// A new grid interval at `t_s` with PUE `pue`: a held segment is redrawn at the new PUE.
    pub fn interval(&mut self, t_s: f64, pue: f64) {
        if let Some(o) = self.open {
            if let (SegmentKind::Held { .. }, true) =
                (o.seg.kind, o.pue != pue && t_s > o.seg.start_s)
            {
                let mut seg = o.seg;
                seg.start_s = t_s;
                let level = o.level_w / o.pue * pue;
                self.close(t_s);
                self.limited = false;
                self.open = Some(Open {
                    seg,
                    pue,
                    level_w: level,
                });
            }
        }
    }

    /// Training finished at `t_s`: the last segment closes (the job's start and end are not swings).
    pub fn finish(&mut self, t_s: f64) -> PowerOutcome {
        self.close(t_s);
        let mean = self.sum_pt / self.sum_t.max(f64::MIN_POSITIVE);
        let var = self.sum_p2t - mean * self.sum_pt;
        // Below rounding of the moments, the power is flat: no share to speak of.
        self.out.step_variance_share = if var > 1e-12 * self.sum_p2t.max(f64::MIN_POSITIVE) {
            (self.within / var).clamp(0.0, 1.0)
        } else {
            f64::NAN
        };
        std::mem::take(&mut self.out)
    }

    /// Close the open segment at `t_s` and open `seg`; `state_change` when either side is held
    /// (the ramp limit applies). Returns the ramp filler's IT energy [J].
    fn switch(&mut self, t_s: f64, seg: Segment, pue: f64, level: f64, held: bool, ci: f64) -> f64 {
        let before = self
            .open
            .map(|o| (o.level_w, matches!(o.seg.kind, SegmentKind::Held { .. })));
        self.close(t_s);
        let mut lump = 0.0;
        self.limited = false;
        if let (Some((from, was_held)), Some(r)) = (before, self.ramp_w_per_s) {
            if was_held || held {
                self.limited = true;
                let dp = (level - from).abs();
                if dp > 0.0 {
                    let tau = dp / r;
                    let fac = dp * tau / 2.0;
                    lump = fac / pue;
                    self.out.ramp_facility_j += fac;
                    self.out.mitigation_co2_kg += fac / 3.6e6 * ci / 1000.0;
                    // Down: the filler holds the old level and falls after the change; up: it
                    // rises before it, so the job's own step stays where the model puts it.
                    let ramp = if level < from {
                        Ramp {
                            start_s: t_s,
                            end_s: t_s + tau,
                            from_w: dp / pue,
                            to_w: 0.0,
                        }
                    } else {
                        Ramp {
                            start_s: t_s - tau,
                            end_s: t_s,
                            from_w: 0.0,
                            to_w: dp / pue,
                        }
                    };
                    if self.in_window(ramp.start_s, ramp.end_s) {
                        self.out.ramps.push(ramp);
                    }
                }
            }
        }
        self.open = Some(Open {
            seg,
            pue,
            level_w: level,
        });
        lump
    }

    fn in_window(&self, a: f64, b: f64) -> bool {
        self.window.is_some_and(|(w0, w1)| a < w1 && b > w0)
    }

    /// A transition of `swing` [W] between phases of `d1` and `d2` seconds, `times` times.
    fn transition(&mut self, swing: f64, d1: f64, d2: f64, times: f64, limited: bool) {
        if times <= 0.0 || swing <= 0.0 {
            return;
        }
        let mut rate = swing / ((d1 + d2) / 2.0).max(f64::MIN_POSITIVE);
        if let (true, Some(r)) = (limited, self.ramp_w_per_s) {
            rate = rate.min(r);
        }
        self.out.max_swing_w = self.out.max_swing_w.max(swing);
        self.out.max_ramp_w_per_s = self.out.max_ramp_w_per_s.max(rate);
        if swing >= self.out.threshold_w {
            self.out.swings += times;
        }
    }

    fn close(&mut self, t_s: f64) {
        let Some(mut o) = self.open.take() else {
            return;
        };
        let limited = self.limited;
        match o.seg.kind {
            SegmentKind::Steps { steps, phases, .. } => {
                let n = steps as f64;
                let f =
                    |p: &PhasePower| (p.gpu_w + p.node_w + o.seg.network_w + p.filler_w) * o.pue;
                let live = || phases.iter().filter(|p| p.time_s > 0.0);
                let (Some(first), Some(last)) = (live().next(), live().next_back()) else {
                    return;
                };
                if let Some((pf, pd)) = self.prev_last {
                    self.transition((f(first) - pf).abs(), pd, first.time_s, 1.0, limited);
                }
                let mut prev: Option<&PhasePower> = None;
                let (mut e, mut t) = (0.0, 0.0);
                for p in live() {
                    if let Some(q) = prev {
                        self.transition((f(p) - f(q)).abs(), q.time_s, p.time_s, n, false);
                    }
                    e += f(p) * p.time_s;
                    t += p.time_s;
                    prev = Some(p);
                }
                self.transition(
                    (f(first) - f(last)).abs(),
                    last.time_s,
                    first.time_s,
                    n - 1.0,
                    false,
                );
                let mean = e / t;
                for p in live() {
                    let fp = f(p);
                    self.sum_pt += n * fp * p.time_s;
                    self.sum_p2t += n * fp * fp * p.time_s;
                    self.within += n * p.time_s * (fp - mean) * (fp - mean);
                }
                self.sum_t += n * t;
                self.prev_last = Some((f(last), last.time_s));
                o.seg.end_s = t_s;
            }
            SegmentKind::Held { .. } => {
                let d = t_s - o.seg.start_s;
                o.seg.end_s = t_s;
                let fp = o.level_w;
                if d <= 0.0 {
                    // Nothing drawn at this level: the next segment swings from the one before.
                    if self.in_window(o.seg.start_s, t_s) {
                        self.out.segments.push(o.seg);
                    }
                    return;
                }
                if let Some((pf, pd)) = self.prev_last {
                    self.transition((fp - pf).abs(), pd, d, 1.0, limited);
                }
                self.sum_pt += fp * d;
                self.sum_p2t += fp * fp * d;
                self.sum_t += d;
                self.prev_last = Some((fp, d));
            }
        }
        if self.in_window(o.seg.start_s, o.seg.end_s) {
            self.out.segments.push(o.seg);
        }
    }
}

/// The name of phase `i` of a step (`step` for a step without a split).
pub fn phase_name(i: usize, split: bool) -> &'static str {
    if split {
        PHASE_NAMES[i]
    } else {
        "step"
    }
}
