//! Puts the models together: the step model and the run-level simulation of every strategy of a scenario.

pub mod attribution;
mod cost;
pub mod eval;
pub mod event_step;
mod meter;
pub mod multi;
mod outcome;
mod plan;
mod prepare;
mod run;
mod run_blocks;
mod run_outcome;
mod run_setup;
pub(crate) mod schedule;
pub mod step;
pub mod waveform;
pub mod waveform_rows;

pub use attribution::{attribute, Attribution, Cause, Saving, Split};
pub use meter::{Meter, Power, Totals};
pub(crate) use outcome::model_shape;
pub use plan::Mechanisms;
pub use prepare::{prepare, PlanSize, Prepared, StrategyPlan};
pub use run::{run, run_watched, RunError, RunOutcome, RunSetup, StepSums, TimelineRow, Watch};
pub use schedule::ScheduleCurve;
pub use step::{Knobs, StepCost, StepModel};

use crate::grid::{GridError, GridSeries};
use crate::progress::{ProgressSink, Silent};
use crate::quality::{self, LossEstimate};
use crate::routing::{Router, RoutingError, TraceFile};
use crate::scenario::{Job, Scenario, StrategyKind};
use crate::workload::FfnKind;
use rayon::prelude::*;
use std::sync::Arc;

/// Why a scenario could not be simulated.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The grid series could not be built or loaded.
    #[error(transparent)]
    Grid(Box<GridError>),
    /// The target loss lies outside what a strategy's model can reach under its scaling law.
    #[error("strategy `{strategy}` cannot reach the estimated loss {target:.4} ({whence}): its law ({law}) reaches losses in ({floor:.4}, {ceiling:.4}] (1e16 to 1e3 tokens); give training.target_loss inside that range, or compare at equal tokens (training.compare = \"tokens\")")]
    Unreachable {
        /// Strategy name.
        strategy: &'static str,
        /// Target loss.
        target: f64,
        /// Where the target comes from (`training.target_loss`, or the MoE's loss at the budget).
        whence: String,
        /// The law's name.
        law: &'static str,
        /// Loss after 1e16 tokens (the most the search tries).
        floor: f64,
        /// Loss after 1e3 tokens (the fewest the search tries).
        ceiling: f64,
    },
    /// The quality law could not estimate the reference loss of an equal-loss comparison.
    #[error("training.compare = \"loss\": the MoE's loss after training.tokens = {tokens:e} could not be estimated ({reason}); give training.target_loss or compare = \"tokens\"")]
    NoReferenceLoss {
        /// The token budget.
        tokens: f64,
        /// Why the law refused.
        reason: String,
    },
    /// `--event-level` with a capacity-factor or active-experts curriculum, which only the fast path models.
    #[error("--event-level does not model [models.moe.curriculum] capacity_factor or active_experts (the event-level step keeps the model's capacity factor and routes over all experts): run without --event-level, or remove those schedules")]
    EventLevelCurriculum,
    /// The scenario lacks what a strategy needs (the validator normally catches this first).
    #[error("strategy `{strategy}` needs {what}")]
    Missing {
        /// Strategy name.
        strategy: &'static str,
        /// What is missing.
        what: &'static str,
    },
    /// The routing trace could not be read or does not fit the model.
    #[error(transparent)]
    Routing(#[from] RoutingError),
    /// The step's operation list could not be built from the model and plan.
    #[error("the step's operation list: {0}")]
    Workload(#[from] crate::workload::WorkloadError),
    /// The plan is larger than the scenario's `[limits]` allow (refused before anything is allocated).
    #[error("the plan implies {what}, over {key} = {limit:e}; check the tokens, batch and deadline, or raise {key} in a [limits] table to run it anyway")]
    TooLarge {
        /// What is too large, with the numbers that make it so.
        what: String,
        /// The scenario key of the limit.
        key: &'static str,
        /// The limit's value.
        limit: f64,
    },
    /// The `[cost]` table's inputs could not be read.
    #[error(transparent)]
    Cost(#[from] crate::cost::CostError),
    /// A run could not complete.
    #[error("strategy `{strategy}`: {source}")]
    Run {
        /// Strategy name.
        strategy: &'static str,
        /// What went wrong.
        source: RunError,
    },
}

impl SimError {
    /// Whether the error is the input's fault (a file, a key, a plan too large: exit code 2) rather
    /// than a run that failed (exit code 1).
    pub fn is_input_error(&self) -> bool {
        matches!(
            self,
            SimError::Grid(_)
                | SimError::Routing(_)
                | SimError::Workload(_)
                | SimError::TooLarge { .. }
                | SimError::Unreachable { .. }
                | SimError::NoReferenceLoss { .. }
                | SimError::Cost(_)
        )
    }
}

impl From<GridError> for SimError {
    fn from(e: GridError) -> Self {
        SimError::Grid(Box::new(e))
    }
}

/// The result of one strategy.
#[derive(Debug, Clone)]
pub struct StrategyResult {
    /// Which strategy.
    pub kind: StrategyKind,
    /// Name of the model it trained.
    pub model_name: String,
    /// Total parameters of the model.
    pub params_total: f64,
    /// Parameters active per token.
    pub params_active: f64,
    /// The run.
    pub outcome: RunOutcome,
    /// Deadline [s after start] if the strategy has one.
    pub deadline_s: Option<f64>,
    /// Estimated final loss, with the law used (None if the law could not be applied).
    pub loss: Option<LossEstimate>,
    /// Tokens the quality law counts (dropped assignments and reduced top-k discounted).
    pub effective_tokens: f64,
    /// Model FLOPs utilisation over training time (6·N_active·D-style FLOPs over peak).
    pub mfu: f64,
    /// Chinchilla estimate for a dense model (Hoffmann et al. 2022), beside the comparable law above.
    pub chinchilla: Option<LossEstimate>,
    /// How routing was produced (router model, trace and its mapping), for MoE models.
    pub routing: Option<String>,
    /// Curriculum gating and the batch schedule the run followed, with its mean top-k and batch
    /// (None without a schedule).
    pub schedule: Option<String>,
    /// The same schedules as curves for the report's plot (empty without one).
    pub schedule_curves: Vec<ScheduleCurve>,
    /// Expert slots moved by rebalancing (on the rank that received most, summed over rebalances).
    pub moved_slots: u64,
    /// `run --event-level`: per grid interval and MoE layer, the energy GPUs spent waiting in
    /// the layer's all-to-alls and expert-TP collectives, and the same under balanced routing
    /// (empty on the fast path).
    pub layer_skew: Vec<event_step::skew::IntervalSkew>,
    /// The run's cost by term, with the scenario's `[cost]` table (None without one).
    pub cost: Option<crate::cost::CostTerms>,
    /// How the run's modes compared with the grid's hints (`[cost.hints]`; None without them).
    pub hints: Option<crate::cost::HintCount>,
}

impl StrategyResult {
    /// Whether the run met its deadline (None without a deadline).
    pub fn deadline_met(&self) -> Option<bool> {
        self.deadline_s.map(|d| self.outcome.wall_s <= d + 1e-6)
    }
}

/// Everything a scenario run produced.
#[derive(Debug, Clone)]
pub struct Results {
    /// Scenario name.
    pub scenario: String,
    /// The grid series used.
    pub grid: GridSeries,
    /// Mean PUE over the grid series.
    pub pue: f64,
    /// PUE of each grid interval (constant unless weather-driven).
    pub pue_by_interval: Vec<f64>,
    /// One result per strategy, in scenario order.
    pub strategies: Vec<StrategyResult>,
    /// What every strategy trained toward.
    pub goal: Goal,
    /// The multi-region comparison (single site, follow the night, geo-distributed) when the scenario
    /// lists `[[site]]` tables.
    pub sites: Option<multi::SitesResults>,
    /// Each saving against `moe` split by cause ([`attribute`]; `simulate` leaves it empty, `moesim run`
    /// fills it).
    pub attribution: Option<Attribution>,
}

/// What every strategy of a run trains toward (`training.compare`, `training.target_loss`).
#[derive(Debug, Clone, PartialEq)]
pub enum Goal {
    /// Train until the estimated loss reaches `loss` (progress counted in effective tokens).
    Loss {
        /// The target loss [nats/token, on the law's data set].
        loss: f64,
        /// Where it comes from, for messages and the report.
        whence: String,
    },
    /// Train `tokens` tokens, whatever loss that reaches.
    Tokens {
        /// The budget [tokens].
        tokens: f64,
    },
}

impl Goal {
    /// The table's header phrase: "at equal estimated loss 2.283" or "at equal tokens (1.0e9)".
    pub fn describe(&self) -> String {
        match self {
            Goal::Loss { loss, .. } => format!("at equal estimated loss {loss:.3}"),
            Goal::Tokens { tokens } => format!("at equal tokens ({tokens:.3e})"),
        }
    }
}

/// The goal of scenario `s`: its target loss; at equal loss without one, the loss of the MoE (the dense
/// model when there is none) after `training.tokens` tokens with every assignment trained; at equal
/// tokens, the budget.
pub(crate) fn goal_of(s: &Scenario) -> Result<Goal, SimError> {
    if let Some(loss) = s.training.target_loss {
        return Ok(Goal::Loss {
            loss,
            whence: "training.target_loss".into(),
        });
    }
    let tokens = s.training.tokens;
    if s.training.compare == crate::scenario::Compare::Tokens {
        return Ok(Goal::Tokens { tokens });
    }
    let (job, who) = match (&s.moe, &s.dense) {
        (Some(j), _) => (j, "moe"),
        (None, Some(j)) => (j, "dense"),
        (None, None) => return Ok(Goal::Tokens { tokens }),
    };
    let est = outcome::law_of(s, job)
        .loss(tokens)
        .map_err(|e| SimError::NoReferenceLoss {
            tokens,
            reason: e.to_string(),
        })?;
    Ok(Goal::Loss {
        loss: est.loss,
        whence: format!("the {who} model's loss after training.tokens = {tokens:.3e}"),
    })
}

/// The router and step model of `job`, routing set up as the scenario says (placement from the mean loads).
fn models_for(
    s: &Scenario,
    job: &Job,
    trace: &Option<Arc<TraceFile>>,
    seed: u64,
) -> Result<(StepModel, Option<Router>), SimError> {
    let mut sm = StepModel::new(job, &s.cluster)?;
    let FfnKind::Moe(m) = &job.model.ffn else {
        return Ok((sm, None));
    };
    let router = Router::from_spec(
        &s.routing,
        trace.as_ref(),
        m.experts as usize,
        job.model.moe_layers() as usize,
        m.top_k as usize,
        seed,
    )?;
    let full = sm.full_knobs();
    let mean = router.mean_shares(16, sm.assignments_per_layer(full.top_k));
    sm.set_spread_seed(seed);
    sm.set_routing(
        s.routing.choice,
        s.routing.placement,
        s.routing.rebalance_every_steps,
        &mean,
    );
    Ok((sm, Some(router)))
}

/// The event-level step evaluator of `job`, its experts placed as the fast path places them.
fn event_model(
    s: &Scenario,
    job: &Job,
    sm: &StepModel,
    router: &Option<Router>,
) -> event_step::EventStepModel {
    let mut input = event_step::EventStepInput::from_job(job, &s.cluster);
    input.choice = s.routing.choice;
    input.pad_spread = sm.pad_spread().to_vec();
    if let (Some(r), FfnKind::Moe(m)) = (router, &job.model.ffn) {
        let mean = r.mean_shares(16, sm.assignments_per_layer(sm.full_knobs().top_k));
        input.placement = Some(crate::routing::Placement::new(
            s.routing.placement,
            job.model.moe_layers() as usize,
            m.experts as usize,
            job.plan.ep.max(1) as usize,
            &mean,
        ));
    }
    let mut ev = event_step::EventStepModel::new(input);
    ev.set_rebalancing(s.routing.placement, s.routing.rebalance_every_steps);
    ev
}

/// Progress a strategy makes before it stops under `goal`: the budget in tokens, or the effective
/// tokens its job's scaling law needs to reach the target loss. Returns (progress, whether it counts
/// effective tokens).
fn token_target(
    s: &Scenario,
    job: &Job,
    kind: StrategyKind,
    goal: &Goal,
) -> Result<(f64, bool), SimError> {
    let (target, whence) = match goal {
        Goal::Tokens { tokens } => return Ok((*tokens, false)),
        Goal::Loss { loss, whence } => (*loss, whence),
    };
    let law = outcome::law_of(s, job);
    let at = |d: f64| law.loss(d).map_or(f64::NAN, |e| e.loss);
    quality::tokens_for_target_loss(law, target)
        .map(|d| (d, true))
        .ok_or_else(|| SimError::Unreachable {
            strategy: kind.name(),
            target,
            whence: whence.clone(),
            law: law.name(),
            floor: at(1e16).max(law.floor()),
            ceiling: at(1e3),
        })
}

/// Full-speed seconds per token of a job, from the fast path with the router's mean loads.
fn seconds_per_token(sm: &mut StepModel, router: &Option<Router>, knobs: Knobs) -> f64 {
    let c = mean_step(sm, router, knobs);
    c.time_s / c.tokens
}

/// A step at the router's mean loads (on a copy of the step model, which stays untouched).
fn mean_step(sm: &StepModel, router: &Option<Router>, knobs: Knobs) -> StepCost {
    let shares = match router {
        Some(r) => r.mean_shares(16, sm.assignments_per_layer(knobs.top_k)),
        None => Vec::new(),
    };
    sm.clone().step(&shares, knobs)
}

/// Simulate every strategy of `scenario` (in parallel; results are the same on any thread count).
pub fn simulate(scenario: &Scenario) -> Result<Results, SimError> {
    simulate_with(scenario, &Silent)
}

/// [`simulate`], reporting each strategy's progress to `progress` once per grid interval.
pub fn simulate_with(
    scenario: &Scenario,
    progress: &dyn ProgressSink,
) -> Result<Results, SimError> {
    simulate_opts(scenario, progress, false)
}

/// [`simulate_with`]; with `event_level`, every step of every run is simulated at event level
/// ([`event_step`]) instead of the fast path (much slower; the same outputs).
pub fn simulate_opts(
    scenario: &Scenario,
    progress: &dyn ProgressSink,
    event_level: bool,
) -> Result<Results, SimError> {
    let s = scenario;
    if event_level
        && (s.training.curriculum_capacity_factor.is_some()
            || s.training.curriculum_active_experts.is_some())
    {
        return Err(SimError::EventLevelCurriculum);
    }
    let mut prepared = prepare(s)?;
    prepared.event_level = event_level;
    let results: Vec<Result<StrategyResult, SimError>> = s
        .strategies
        .par_iter()
        .enumerate()
        .map(|(i, kind)| {
            let watch = Watch {
                sink: progress,
                task: i,
                tasks: s.strategies.len(),
                name: kind.name(),
            };
            simulate_strategy(s, *kind, i as u64, &prepared, watch)
        })
        .collect();
    let strategies = results.into_iter().collect::<Result<Vec<_>, _>>()?;
    let sites = multi::simulate_sites(s, &prepared.trace, &prepared.seeds, &prepared.goal)?;
    let Prepared {
        grid, pue, goal, ..
    } = prepared;
    Ok(Results {
        sites,
        goal,
        attribution: None,
        scenario: s.name.clone(),
        grid,
        pue: pue.iter().sum::<f64>() / pue.len().max(1) as f64,
        pue_by_interval: pue.to_vec(),
        strategies,
    })
}

/// Build, run and summarise strategy number `index` of `s` on the prepared grid, its random streams
/// drawn from the prepared seed tree.
fn simulate_strategy(
    s: &Scenario,
    kind: StrategyKind,
    index: u64,
    prepared: &Prepared,
    watch: Watch<'_>,
) -> Result<StrategyResult, SimError> {
    run_variant(
        s,
        kind,
        index,
        prepared,
        watch,
        Mechanisms::ALL,
        &prepared.goal,
    )
}

/// [`simulate_strategy`] with only the circadian mechanisms `on` switched on and trained toward
/// `goal` (an attribution's counterfactual; `Mechanisms::ALL` and the prepared goal give the strategy).
pub(crate) fn run_variant(
    s: &Scenario,
    kind: StrategyKind,
    index: u64,
    prepared: &Prepared,
    watch: Watch<'_>,
    on: Mechanisms,
    goal: &Goal,
) -> Result<StrategyResult, SimError> {
    let Prepared {
        trace,
        seeds,
        grid,
        pue,
        ..
    } = prepared;
    // The scenario validator guarantees the job exists for every listed strategy.
    let Some(job) = s.job(kind) else {
        return Err(SimError::Missing {
            strategy: kind.name(),
            what: "a model table",
        });
    };
    let (mut sm, mut router) = models_for(s, job, trace, seeds.stream("routing", index))?;
    let (target_tokens, count_effective) = token_target(s, job, kind, goal)?;
    let mut setup = RunSetup {
        pue_by_interval: Some(pue.clone()),
        // Event-level runs price every step; the fast path advances in blocks unless told not to.
        block_steps: if s.training.exact || prepared.event_level {
            1
        } else {
            run::BLOCK_STEPS
        },
        schedules: plan::schedules_for(s, kind, job, &sm, target_tokens),
        eval: match s.training.eval {
            Some(e) => Some(eval::run_eval(job, &s.cluster, e)?),
            None => None,
        },
        ..RunSetup::of_cluster(s, &sm, target_tokens, count_effective)
    };
    let inputs = plan::PlanInputs {
        setup: &setup,
        grid,
        pue,
        count_effective,
        forecast_seed: seeds.stream("forecast", index),
        cost: prepared.cost.as_ref(),
    };
    let mut plan = plan::plan_for(s, kind, &sm, &router, &inputs, on)?;
    setup.full = plan.full;
    setup.throttled = plan.throttled;
    setup.top_k_by_hour = plan.top_k_by_hour;
    setup.checkpoint_s = plan.checkpoint_s;
    setup.restore_s = plan.restore_s;
    let routing = router.as_ref().map(|r| r.describe());
    let mut event = prepared
        .event_level
        .then(|| event_model(s, job, &sm, &router));
    if let (true, Some(r)) = (prepared.event_level, plan.replicas.as_mut()) {
        // The throttled plan's own event-level step, on the active replicas' GPUs.
        let narrow = Scenario {
            cluster: r.cluster.clone(),
            ..s.clone()
        };
        r.event = Some(event_model(&narrow, &r.job, &r.model, &router));
    }
    let outcome = run::run_watched_event(
        &setup,
        grid,
        &mut sm,
        event.as_mut(),
        plan.replicas.as_mut(),
        router.as_mut(),
        &mut plan.policy,
        watch,
    )
    .map_err(|source| SimError::Run {
        strategy: kind.name(),
        source,
    })?;
    // A trace read that failed mid-run (the file changed after it was checked) voids the run.
    if let Some(e) = router.as_mut().and_then(|r| r.take_error()) {
        return Err(e.into());
    }
    let quality = outcome::assess(s, job, &outcome);
    let costs = prepared.cost.as_ref();
    let cost_terms = costs.map(|c| cost::terms(c, grid, &setup, &outcome));
    let hints = costs
        .and_then(|c| c.hints.as_ref())
        .map(|(h, _)| cost::hint_count(h, grid, &outcome));
    let model = &job.model;
    let schedule = setup.schedules.describe(&outcome);
    let schedule_curves = setup.schedules.curves();
    Ok(StrategyResult {
        kind,
        model_name: model.name.clone(),
        params_total: model.params_total(),
        params_active: model.params_active(),
        outcome,
        deadline_s: plan.deadline_s,
        loss: quality.loss,
        effective_tokens: quality.effective_tokens,
        mfu: quality.mfu,
        routing,
        schedule,
        schedule_curves,
        chinchilla: quality.chinchilla,
        // At event level the fast model is not stepped: the event model counts the moves.
        moved_slots: event.as_ref().map_or(sm.moved_slots(), |e| e.moved_slots()),
        layer_skew: event.as_mut().map(|e| e.take_skew()).unwrap_or_default(),
        cost: cost_terms,
        hints,
    })
}

#[cfg(test)]
pub(crate) mod test_setup;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_agreement;
#[cfg(test)]
mod tests_blocks;
#[cfg(test)]
mod tests_cost;
#[cfg(test)]
mod tests_curriculum;
#[cfg(test)]
mod tests_equal;
#[cfg(test)]
mod tests_eval;
#[cfg(test)]
mod tests_positions;
#[cfg(test)]
mod tests_replicas;
#[cfg(test)]
mod tests_schedule;
#[cfg(test)]
mod tests_waveform;
