//! One step of one strategy of a scenario, set up as the run would see it: the strategy's job,
//! the routing shares of step N (the run's router, seed and placement), full-speed knobs, and the
//! fast path's cost of the same step for comparison.

use super::{EventStepError, EventStepInput, EventStepModel};
use crate::routing::{Placement, Router};
use crate::scenario::{Scenario, StrategyKind};
use crate::sim::{prepare, Knobs, SimError, StepCost, StepModel};
use crate::workload::FfnKind;

/// A scenario step ready to simulate.
#[derive(Debug)]
pub struct ScenarioStep {
    /// The strategy.
    pub kind: StrategyKind,
    /// Step number (0-based).
    pub step: u64,
    /// Steps of the strategy's run at full speed.
    pub steps: u64,
    /// The event-level evaluator of the strategy's job.
    pub model: EventStepModel,
    /// Routing shares of the step (MoE layers x experts; empty for dense).
    pub shares: Vec<f64>,
    /// Full-speed knobs.
    pub knobs: Knobs,
    /// The fast path's cost of the same step.
    pub fast: StepCost,
    /// The fast path's model, its router and assignments per layer: kept so [`ScenarioStep::advance`]
    /// moves to the next step without re-preparing the scenario or replaying the router from step 0.
    fast_model: StepModel,
    router: Option<Router>,
    assignments: f64,
}

impl ScenarioStep {
    /// Move to the next step of the run: its routing shares (the router advanced once, as the run
    /// advances it) and the fast path's cost of it.
    pub fn advance(&mut self) -> Result<(), ScenarioStepError> {
        let next = self.step + 1;
        if next >= self.steps {
            return Err(ScenarioStepError::StepOutOfRange {
                step: next,
                strategy: self.kind.name(),
                steps: self.steps,
                last: self.steps.saturating_sub(1),
            });
        }
        self.step = next;
        if let Some(r) = &mut self.router {
            r.fill_shares(next, self.assignments, &mut self.shares);
            // A failed trace read gives equal shares: an error here, not a silent step.
            if let Some(e) = r.take_error() {
                return Err(e.into());
            }
        }
        self.fast = self.fast_model.step(&self.shares, self.knobs);
        self.model.count_step(&self.shares);
        Ok(())
    }
}

/// Why a scenario step could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioStepError {
    /// `--strategy` names no strategy.
    #[error("--strategy `{name}` is not a strategy; valid: {valid}")]
    UnknownStrategy {
        /// The name given.
        name: String,
        /// Valid names.
        valid: String,
    },
    /// `--strategy` names a strategy the scenario does not run.
    #[error("--strategy `{name}`: {file} lists only {listed} (its `strategies` key)")]
    NotInScenario {
        /// The name given.
        name: String,
        /// Scenario file.
        file: String,
        /// The scenario's strategies.
        listed: String,
    },
    /// `--step` past the run's last step.
    #[error(
        "--step {step} is out of range: strategy `{strategy}` runs steps 0..{steps} (0 to {last})"
    )]
    StepOutOfRange {
        /// Step asked for.
        step: u64,
        /// Strategy.
        strategy: &'static str,
        /// Steps of the run.
        steps: u64,
        /// Last valid step.
        last: u64,
    },
    /// The scenario's inputs could not be opened or sized.
    #[error(transparent)]
    Sim(#[from] SimError),
    /// The event-level model refused the job.
    #[error(transparent)]
    Event(#[from] EventStepError),
    /// The routing trace could not be read at this step (the file changed after it was checked).
    #[error(transparent)]
    Trace(#[from] crate::routing::RoutingError),
}

impl ScenarioStepError {
    /// Whether the error is the input's fault (exit code 2).
    pub fn is_input_error(&self) -> bool {
        match self {
            ScenarioStepError::Sim(e) => e.is_input_error(),
            ScenarioStepError::Event(_) => false,
            _ => true,
        }
    }
}

/// Set up step `step` of strategy `strategy` (default: `moe` if the scenario runs it, else its
/// first strategy) of `s`.
pub fn scenario_step(
    s: &Scenario,
    strategy: Option<&str>,
    step: u64,
) -> Result<ScenarioStep, ScenarioStepError> {
    let listed = || {
        s.strategies
            .iter()
            .map(|k| k.name())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let kind = match strategy {
        Some(name) => {
            let k = StrategyKind::from_name(name).ok_or_else(|| {
                ScenarioStepError::UnknownStrategy {
                    name: name.to_string(),
                    valid: StrategyKind::ALL
                        .iter()
                        .map(|x| x.1)
                        .collect::<Vec<_>>()
                        .join(", "),
                }
            })?;
            if !s.strategies.contains(&k) {
                return Err(ScenarioStepError::NotInScenario {
                    name: name.to_string(),
                    file: s.file.clone(),
                    listed: listed(),
                });
            }
            k
        }
        None => {
            if s.strategies.contains(&StrategyKind::Moe) {
                StrategyKind::Moe
            } else {
                *s.strategies
                    .first()
                    .ok_or_else(|| ScenarioStepError::NotInScenario {
                        name: "(none)".into(),
                        file: s.file.clone(),
                        listed: "nothing".into(),
                    })?
            }
        }
    };
    let index = s.strategies.iter().position(|k| *k == kind).unwrap_or(0);
    let job = s.job(kind).ok_or(SimError::Missing {
        strategy: kind.name(),
        what: "a model table",
    })?;
    let prepared = prepare(s)?;
    let steps = prepared
        .plan
        .strategies
        .get(index)
        .map_or(0, |p| p.steps.ceil().max(1.0) as u64);
    if step >= steps {
        return Err(ScenarioStepError::StepOutOfRange {
            step,
            strategy: kind.name(),
            steps,
            last: steps.saturating_sub(1),
        });
    }
    let mut fast = StepModel::new(job, &s.cluster).map_err(EventStepError::Workload)?;
    let knobs = fast.full_knobs();
    let mut input = EventStepInput::from_job(job, &s.cluster);
    input.choice = s.routing.choice;
    let mut shares = Vec::new();
    let mut model = EventStepModel::new(input.clone());
    let mut kept_router = None;
    let mut kept_assignments = 0.0;
    if let FfnKind::Moe(m) = &job.model.ffn {
        let layers = job.model.moe_layers() as usize;
        let mut router = Router::from_spec(
            &s.routing,
            prepared.trace.as_ref(),
            m.experts as usize,
            layers,
            m.top_k as usize,
            prepared.seeds.stream("routing", index as u64),
        )
        .map_err(SimError::from)?;
        let assignments = fast.assignments_per_layer(knobs.top_k);
        let mean = router.mean_shares(16, assignments);
        fast.set_spread_seed(prepared.seeds.stream("routing", index as u64));
        fast.set_routing(
            s.routing.choice,
            s.routing.placement,
            s.routing.rebalance_every_steps,
            &mean,
        );
        input.placement = Some(Placement::new(
            s.routing.placement,
            layers,
            m.experts as usize,
            job.plan.ep.max(1) as usize,
            &mean,
        ));
        input.pad_spread = fast.pad_spread().to_vec();
        model = EventStepModel::new(input);
        model.set_rebalancing(s.routing.placement, s.routing.rebalance_every_steps);
        // With rebalancing, the placement in force at step N comes from the period before
        // N's (a placement depends only on its period's loads): both paths count the steps
        // from that period's start, one at a time as the run's per-step path does.
        let counted_from = s.routing.rebalance_every_steps.map_or(step, |every| {
            (step / every.max(1)).saturating_sub(1) * every.max(1)
        });
        shares = vec![0.0; layers * m.experts as usize];
        // Drifting routers advance once per step, in order: replay steps 0..=N as the run does.
        for k in 0..=step {
            router.fill_shares(k, assignments, &mut shares);
            if k >= counted_from && k < step {
                fast.step(&shares, knobs);
                model.count_step(&shares);
            }
        }
        model.count_step(&shares);
        if let Some(e) = router.take_error() {
            return Err(e.into());
        }
        kept_router = Some(router);
        kept_assignments = assignments;
    }
    let cost = fast.step(&shares, knobs);
    Ok(ScenarioStep {
        kind,
        step,
        steps,
        model,
        shares,
        knobs,
        fast: cost,
        fast_model: fast,
        router: kept_router,
        assignments: kept_assignments,
    })
}
