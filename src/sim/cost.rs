//! The `[cost]` table in a run: the planner's view of the grid (all-in price, forecast), its tax and hint hooks, and the cost terms and hint count of a finished run.

use std::borrow::Cow;

use super::run::{RunOutcome, RunSetup};
use crate::cost::{CostInputs, CostTerms, Hint, HintCount, HintUse, IntervalUse};
use crate::grid::GridSeries;
use crate::scenario::{CircadianSpec, Objective};
use crate::strategy::CircadianPolicy;

/// The grid as the planner sees it: the forecast (when given) in place of the grid's carbon series,
/// and for objective = "cost" the all-in price per MWh (electricity + levy + carbon price × the
/// planner's intensity) in place of the electricity price, so the signal it weighs intervals by is
/// the energy-proportional part of the cost the run will be charged.
pub(crate) fn planner_grid<'a>(
    grid: &'a GridSeries,
    cost: Option<&CostInputs>,
    c: &CircadianSpec,
) -> Cow<'a, GridSeries> {
    let Some(cost) = cost else {
        return Cow::Borrowed(grid);
    };
    let forecast = cost.forecast_ci.as_ref();
    let all_in = c.objective == Objective::Cost;
    if forecast.is_none() && !all_in {
        return Cow::Borrowed(grid);
    }
    let mut g = grid.clone();
    if let Some(f) = forecast {
        g.ci_g_per_kwh = f.clone();
    }
    if let (true, Some(p)) = (all_in, &grid.price_per_mwh) {
        g.price_per_mwh = Some(cost.all_in_price(p, &g.ci_g_per_kwh));
    }
    Cow::Owned(g)
}

/// `policy` with the cost table's hooks: for objective = "cost", the compute-hour tax on the GPUs
/// each mode holds (paused: none when nodes are released) as a per-mode fixed cost; and the grid's
/// hints as the modes each interval allows.
pub(crate) fn hook_policy(
    mut policy: CircadianPolicy,
    cost: Option<&CostInputs>,
    c: &CircadianSpec,
    setup: &RunSetup,
) -> CircadianPolicy {
    let Some(cost) = cost else { return policy };
    if c.objective == Objective::Cost && cost.compute_hour_tax > 0.0 {
        // The signal is currency per MWh and is multiplied by W and s: a cost per second of F
        // currency is F × 3.6e9 in those units (1 MWh = 3.6e9 J).
        let held = cost.tax_per_gpu_s() * setup.gpus * 3.6e9;
        let paused = if setup.release_when_paused { 0.0 } else { held };
        policy = policy.with_fixed_costs([held, held, paused]);
    }
    if let Some((hints, use_as)) = &cost.hints {
        let allowed = hints.iter().map(|h| allowed_by(*h)).collect();
        policy = policy.with_hints(allowed, *use_as == HintUse::Constraint);
    }
    policy
}

/// The modes a hint allows, by `Mode as usize` (no hint: all).
fn allowed_by(h: Option<Hint>) -> [bool; 3] {
    match h {
        None | Some(Hint::Run) => [true; 3],
        Some(Hint::Throttle) => [false, true, true],
        Some(Hint::Pause) => [false, false, true],
    }
}

/// The cost terms of a finished run, from what each of its timeline's intervals used.
pub(crate) fn terms(
    cost: &CostInputs,
    grid: &GridSeries,
    setup: &RunSetup,
    o: &RunOutcome,
) -> CostTerms {
    cost.charge(o.timeline.iter().map(|r| IntervalUse {
        index: ((r.start_utc_s - grid.start_utc_s) / grid.interval_s) as usize,
        facility_j: r.totals.facility_j,
        co2_kg: r.totals.co2_kg,
        electricity: r.totals.cost,
        gpu_held_s: r.held_s * setup.gpus,
    }))
}

/// How the run's mode compared with the hint in force, over the intervals it trained in (a row
/// whose mode is `None` — training already finished — is not counted). A mode the hint allows
/// follows it (run: any mode; throttle: throttled or paused; pause: paused); a faster one departs.
/// Pausing in a `run` interval follows: the hint says the grid can take the load, not that it must.
pub(crate) fn hint_count(hints: &[Option<Hint>], grid: &GridSeries, o: &RunOutcome) -> HintCount {
    let mut n = HintCount::default();
    for r in &o.timeline {
        let Some(mode) = r.mode else { continue };
        let i = ((r.start_utc_s - grid.start_utc_s) / grid.interval_s) as usize;
        match hints.get(i).copied().flatten() {
            None => n.none += 1,
            Some(h) if allowed_by(Some(h))[mode as usize] => n.followed += 1,
            Some(_) => n.deviated += 1,
        }
    }
    n
}
