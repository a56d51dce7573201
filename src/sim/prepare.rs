//! Everything a run needs before its first step: the trace, the seed tree, the plan's size checked
//! against the scenario's limits, the grid series and PUE. `moesim check` stops here.

use super::{goal_of, models_for, seconds_per_token, token_target, Goal, SimError};
use crate::engine::SeedTree;
use crate::grid::{self, GridSeries};
use crate::routing::TraceFile;
use crate::scenario::{RoutingSource, Scenario, StrategyKind};
use crate::workload::memory_per_gpu_under;
use std::sync::Arc;

const SECONDS_PER_YEAR: f64 = 365.0 * 86_400.0;

/// The size of one strategy's run, estimated at full speed with the router's mean loads.
#[derive(Clone, Debug)]
pub struct StrategyPlan {
    /// Which strategy.
    pub kind: StrategyKind,
    /// Tokens it trains [tokens] (effective tokens when compared at equal loss).
    pub tokens: f64,
    /// Tokens per optimizer step at full speed, the full global batch [tokens].
    pub tokens_per_step: f64,
    /// Optimizer steps, smaller ones during a `[training.batch_schedule]` warm-up [steps].
    pub steps: f64,
    /// Training time at full speed [s].
    pub train_s: f64,
    /// Deadline, if the strategy has one [s].
    pub deadline_s: Option<f64>,
    /// Memory one GPU needs, the most loaded pipeline stage [bytes].
    pub memory_per_gpu_bytes: f64,
    /// HBM of one GPU [bytes].
    pub hbm_bytes: f64,
}

/// The size of a scenario's run, before anything large is allocated.
#[derive(Clone, Debug)]
pub struct PlanSize {
    /// One entry per strategy, in scenario order.
    pub strategies: Vec<StrategyPlan>,
    /// Length of the grid series simulated [s].
    pub horizon_s: i64,
    /// Grid intervals in the horizon.
    pub intervals: f64,
    /// Rows timeline.csv would hold at most (intervals × strategies).
    pub timeline_rows: f64,
}

impl PlanSize {
    /// A few lines for `moesim check`: per strategy steps, hours and memory, then the grid horizon.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        for p in &self.strategies {
            out.push_str(&format!(
                "  {:<10} {:.3e} tokens, {:.3e} tokens/step, {:.3e} steps, ~{:.1} h at full speed{}, {:.1} of {:.1} GiB per GPU\n",
                p.kind.name(),
                p.tokens,
                p.tokens_per_step,
                p.steps,
                p.train_s / 3600.0,
                p.deadline_s
                    .map_or(String::new(), |d| format!(" (deadline {:.0} h)", d / 3600.0)),
                p.memory_per_gpu_bytes / GIB,
                p.hbm_bytes / GIB,
            ));
        }
        out.push_str(&format!(
            "  grid: {:.0} h simulated horizon, {:.0} intervals, at most {:.0} timeline rows",
            self.horizon_s as f64 / 3600.0,
            self.intervals,
            self.timeline_rows
        ));
        out
    }
}

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// What `simulate` builds before running the strategies.
#[derive(Debug)]
pub struct Prepared {
    /// The routing trace, when the scenario replays one.
    pub trace: Option<Arc<TraceFile>>,
    /// Seeds of every random stream.
    pub seeds: SeedTree,
    /// What every strategy trains toward: one estimated loss, or a token budget.
    pub goal: Goal,
    /// The run's size.
    pub plan: PlanSize,
    /// The grid series over the horizon.
    pub grid: GridSeries,
    /// PUE of each grid interval.
    pub pue: Arc<Vec<f64>>,
    /// The `[cost]` table on the grid's intervals (its electricity price, if any, is already the grid's).
    pub cost: Option<crate::cost::CostInputs>,
    /// Price every step at event level instead of the fast path (`moesim run --event-level`;
    /// `prepare` leaves it off, so an attribution's counterfactuals run on the fast path).
    pub event_level: bool,
}

/// Open every input of `s` (trace, grid file, weather file), size the plan, refuse it if it is over the
/// scenario's limits, and build the grid series and PUE — everything `simulate` does before step one.
pub fn prepare(s: &Scenario) -> Result<Prepared, SimError> {
    let trace = match &s.routing.source {
        RoutingSource::Trace { path, .. } if s.moe.is_some() => {
            // Shared: a sweep's points check the file once.
            Some(TraceFile::open_shared(path)?)
        }
        _ => None,
    };
    // Every random stream of the simulation derives from the scenario seed by name and strategy index.
    // (The Monte Carlo of `uncertainty` roots some streams elsewhere through `s.reseed`.)
    let seeds = s
        .reseed
        .iter()
        .fold(SeedTree::new(s.seed), |t, (name, root)| {
            t.with_root(name, *root)
        });
    let goal = goal_of(s)?;
    let mut unreachable: Option<SimError> = None;
    let mut strategies = Vec::with_capacity(s.strategies.len());
    // Horizon of the grid series: long enough for the slowest plausible run.
    let mut horizon_s: f64 = 2.0 * 86_400.0;
    for (index, kind) in s.strategies.iter().enumerate() {
        let Some(job) = s.job(*kind) else { continue };
        // The same router stream as the strategy's run, so the estimate sees the run's routing.
        let seed = seeds.stream("routing", index as u64);
        let (mut sm, router) = models_for(s, job, &trace, seed)?;
        let full = sm.full_knobs();
        // A target a strategy cannot reach is reported after the limits: a budget too large to run
        // (which can put the target out of a law's range) is the more useful message, so the budget
        // itself is checked in its place.
        let (tokens, unreached) = match token_target(s, job, *kind, &goal) {
            Ok(t) => (t.0, None),
            Err(e) if s.training.target_loss.is_none() => (s.training.tokens, Some(e)),
            Err(e) => {
                unreachable.get_or_insert(e);
                continue;
            }
        };
        let train_s = seconds_per_token(&mut sm, &router, full) * tokens;
        let deadline_s = match kind {
            StrategyKind::Circadian => s.circadian.as_ref().map(|c| c.deadline_s),
            _ => None,
        };
        let tokens_per_step = sm.tokens_per_step(full);
        let plan = StrategyPlan {
            kind: *kind,
            tokens,
            tokens_per_step,
            // A warm-up of the global batch takes more, smaller steps.
            steps: super::schedule::steps_to_train(
                s.training.batch_schedule.as_ref(),
                tokens,
                tokens_per_step,
                full.micro_batches,
            ),
            train_s,
            deadline_s,
            memory_per_gpu_bytes: memory_per_gpu_under(
                &job.model,
                &job.plan,
                job.schedule.pipeline,
                (job.fp8_recipe, job.memory_states()),
            )
            .total_bytes,
            hbm_bytes: s.cluster.accelerator.hbm_bytes,
        };
        check_strategy(s, &plan)?;
        if let Some(e) = unreached {
            unreachable.get_or_insert(e);
            continue;
        }
        horizon_s = horizon_s.max((deadline_s.unwrap_or(0.0) + train_s) * 1.3 + 2.0 * 86_400.0);
        strategies.push(plan);
    }
    if let Some(e) = unreachable {
        return Err(e);
    }
    let horizon_days = (horizon_s / 86_400.0).ceil();
    let intervals = horizon_days * 86_400.0 / s.grid.interval_s as f64;
    let plan = PlanSize {
        strategies,
        horizon_s: (horizon_days * 86_400.0) as i64,
        intervals,
        timeline_rows: intervals * s.strategies.len() as f64,
    };
    if plan.timeline_rows > s.limits.max_timeline_rows {
        return Err(SimError::TooLarge {
            what: format!(
                "{:.3e} timeline rows ({:.0} grid intervals of {} s over a {:.0}-day horizon × {} strategies)",
                plan.timeline_rows,
                plan.intervals,
                s.grid.interval_s,
                horizon_days,
                s.strategies.len()
            ),
            key: "limits.max_timeline_rows",
            limit: s.limits.max_timeline_rows,
        });
    }
    let mut grid = grid::series_for(&s.grid, s.training.start_utc_s, plan.horizon_s)?;
    let cost = match &s.cost {
        Some(c) => Some(crate::cost::CostInputs::load(c, &mut grid)?),
        None => None,
    };
    let pue = Arc::new(grid::pue_by_interval(
        &grid,
        s.cluster.pue,
        s.cluster.weather_pue.as_ref(),
    )?);
    Ok(Prepared {
        trace,
        seeds,
        goal,
        plan,
        grid,
        pue,
        cost,
        event_level: false,
    })
}

/// Refuse a strategy whose steps or simulated time are over the scenario's limits.
fn check_strategy(s: &Scenario, p: &StrategyPlan) -> Result<(), SimError> {
    // NaN steps (a zero-token step) count as over the limit.
    if p.steps.is_nan() || p.steps > s.limits.max_steps {
        return Err(SimError::TooLarge {
            what: format!(
                "strategy `{}`: {:.3e} steps ({:.3e} tokens / {:.3e} tokens per step at the full batch{})",
                p.kind.name(),
                p.steps,
                p.tokens,
                p.tokens_per_step,
                if s.training.batch_schedule.is_some() {
                    ", smaller steps under training.batch_schedule"
                } else {
                    ""
                }
            ),
            key: "limits.max_steps",
            limit: s.limits.max_steps,
        });
    }
    let years = (p.train_s + p.deadline_s.unwrap_or(0.0)) / SECONDS_PER_YEAR;
    if years.is_nan() || years > s.limits.max_simulated_years {
        return Err(SimError::TooLarge {
            what: format!(
                "strategy `{}`: {:.3e} simulated years ({:.3e} h of training at full speed{})",
                p.kind.name(),
                years,
                p.train_s / 3600.0,
                p.deadline_s.map_or(String::new(), |d| format!(
                    " + a {:.0} h deadline",
                    d / 3600.0
                ))
            ),
            key: "limits.max_simulated_years",
            limit: s.limits.max_simulated_years,
        });
    }
    Ok(())
}
