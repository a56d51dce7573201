//! A strategy's side of a run: its throttled knobs, pause costs, deadline and policy.

use super::{mean_step, Knobs, SimError, StepModel};
use crate::grid::GridSeries;
use crate::routing::Router;
use crate::scenario::{CircadianSpec, Scenario, StrategyKind};
use crate::strategy::setup::{self, ModeRate, SetupError};
use crate::strategy::Policy;

/// What a strategy does differently from training at full speed, 24/7.
#[derive(Debug)]
pub(crate) struct Plan {
    /// Knobs when throttled (the full-speed knobs for strategies that never throttle).
    pub throttled: Knobs,
    /// Checkpoint write time before a pause [s].
    pub checkpoint_s: f64,
    /// Restore + warm-up time after a pause [s].
    pub restore_s: f64,
    /// Deadline [s after start], for strategies that have one.
    pub deadline_s: Option<f64>,
    /// Top-k by local hour at full speed (a time-aware router).
    pub top_k_by_hour: Option<[u32; 24]>,
    /// The policy that picks each interval's mode.
    pub policy: Policy,
}

impl Plan {
    /// Full speed all the time (`dense` and `moe`).
    fn always_full(full: Knobs) -> Self {
        Self {
            throttled: full,
            checkpoint_s: 0.0,
            restore_s: 0.0,
            deadline_s: None,
            top_k_by_hour: None,
            policy: Policy::AlwaysFull,
        }
    }
}

/// The plan of strategy `kind` with the step model and router of its job; `pue` holds one value per
/// grid interval; the circadian forecast draws from the random stream `forecast_seed`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn plan_for(
    s: &Scenario,
    kind: StrategyKind,
    sm: &StepModel,
    router: &Option<Router>,
    count_effective: bool,
    grid: &GridSeries,
    pue: &[f64],
    forecast_seed: u64,
) -> Result<Plan, SimError> {
    let full = sm.full_knobs();
    if kind != StrategyKind::Circadian {
        return Ok(Plan::always_full(full));
    }
    let c = s.circadian.as_ref().ok_or(SimError::Missing {
        strategy: kind.name(),
        what: "a [strategy.circadian] table",
    })?;
    let throttled = throttled_knobs(c, full);
    let rate = |knobs| {
        let c = mean_step(sm, router, knobs);
        ModeRate {
            tokens_per_s: c.tokens / c.time_s,
            gpu_w: c.gpu_energy_j / c.time_s,
        }
    };
    let rates = setup::rates(
        c,
        &s.cluster,
        rate(full),
        rate(throttled),
        count_effective,
        full.top_k,
    );
    let policy = setup::policy(c, grid, pue, rates, forecast_seed).map_err(
        |SetupError::Missing { what }| SimError::Missing {
            strategy: kind.name(),
            what,
        },
    )?;
    Ok(Plan {
        throttled,
        checkpoint_s: c.checkpoint_write_s,
        restore_s: c.restore_s,
        deadline_s: Some(c.deadline_s),
        top_k_by_hour: c.top_k_by_hour,
        policy: Policy::Circadian(Box::new(policy)),
    })
}

/// Knobs while throttled: the power cap, the lower top-k and the batch fraction (at least one micro-batch).
fn throttled_knobs(c: &CircadianSpec, full: Knobs) -> Knobs {
    Knobs {
        power_limit_w: c.throttle_power_cap_w,
        top_k: c.throttle_top_k,
        micro_batches: ((full.micro_batches as f64 * c.throttle_batch_fraction).round() as u32)
            .max(1),
    }
}
