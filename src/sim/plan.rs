//! A strategy's side of a run: its knobs in each mode, pause costs, deadline and policy, and which of
//! the circadian mechanisms are switched on (all of them, but in the counterfactuals of an attribution).

use super::{mean_step, Knobs, RunSetup, SimError, StepModel};
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
    /// The throttled batch fraction (off: the full batch when throttled).
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
    let throttled = throttled_knobs(c, full, on);
    let rates = setup::rates(
        mode_rate(sm, router, inputs, full),
        mode_rate(sm, router, inputs, throttled),
        if on.pause_overhead {
            c.checkpoint_write_s + c.restore_s
        } else {
            0.0
        },
        inputs.setup.held_it_w(),
    );
    let pue = if on.pue {
        inputs.pue.to_vec()
    } else {
        mean_pue(inputs.pue)
    };
    let grid = super::cost::planner_grid(inputs.grid, inputs.cost, c);
    let policy = setup::policy(c, &grid, &pue, rates, inputs.forecast_seed).map_err(
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
    })
}

/// The planner's rate of one mode at the router's mean loads: progress per second (effective tokens
/// when the run counts them: dropped assignments and a lower top-k discounted as the quality law's rule
/// says) and IT power by the run's own power model (GPUs incl. spin power, load-following node power,
/// network).
fn mode_rate(
    sm: &StepModel,
    router: &Option<Router>,
    inputs: &PlanInputs<'_>,
    knobs: Knobs,
) -> ModeRate {
    let c = mean_step(sm, router, knobs);
    let worth = if inputs.count_effective {
        effective_share(&c, knobs.top_k, sm.full_knobs().top_k)
    } else {
        1.0
    };
    let gpu_w = c.gpu_energy_j / c.time_s;
    ModeRate {
        tokens_per_s: c.tokens / c.time_s * worth,
        it_w: gpu_w + inputs.setup.node_power_w(gpu_w) + inputs.setup.network_w,
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
    }
}
