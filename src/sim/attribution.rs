//! Where a saving comes from: the CO2, energy and time differences between a strategy and `moe` split by
//! cause, from counterfactual runs of the same scenario with one mechanism switched on at a time.
//!
//! Sequential attribution: starting from the `moe` run, each cause in [`Cause::CIRCADIAN_ORDER`] (or
//! [`Cause::DENSE_ORDER`]) is switched on on top of the ones before it, and its part is the change the
//! switch makes. The last run of the chain is the strategy itself, so the parts telescope: they sum to
//! the whole difference (to float rounding). A part depends on the order (a power cap saves less once
//! time shifting has moved the work into clean hours); the order is stated wherever the split is shown.

use super::{prepare, run_variant, Goal, Mechanisms, Results, SimError, StrategyResult, Watch};
use crate::scenario::{Scenario, StrategyKind};
use rayon::prelude::*;

/// A cause a saving is attributed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cause {
    /// What no named mechanism explains: the circadian run's own random streams (routing sample).
    Rest,
    /// Moving the work in time: the grid-aware policy picks full speed or a pause per interval.
    TimeShift,
    /// The planner weighing each interval by its weather-driven PUE rather than the mean.
    Pue,
    /// The checkpoint write and restore each pause costs.
    PauseOverhead,
    /// The circadian per-mode GPU power caps.
    PowerCap,
    /// The throttled batch: its fraction, or the same global batch on fewer replicas with more
    /// gradient-accumulation micro-batches (`throttle_replica_fraction`).
    Batch,
    /// The throttled top-k and the top-k by hour (a step at a lower top-k earns fewer effective tokens).
    Routing,
    /// A dense model instead of the MoE, trained on the same tokens (cost per token).
    Model,
    /// The tokens the dense model needs beyond the MoE's to reach the same estimated loss.
    Tokens,
}

impl Cause {
    /// The circadian chain, in the order the causes are switched on.
    pub const CIRCADIAN_ORDER: [Cause; 7] = [
        Cause::Rest,
        Cause::TimeShift,
        Cause::Pue,
        Cause::PauseOverhead,
        Cause::PowerCap,
        Cause::Batch,
        Cause::Routing,
    ];
    /// The dense chain, in order.
    pub const DENSE_ORDER: [Cause; 2] = [Cause::Model, Cause::Tokens];
    /// Every cause, in the order of the summary's `saving_*` columns.
    pub const ALL: [Cause; 9] = [
        Cause::Rest,
        Cause::TimeShift,
        Cause::Pue,
        Cause::PauseOverhead,
        Cause::PowerCap,
        Cause::Batch,
        Cause::Routing,
        Cause::Model,
        Cause::Tokens,
    ];

    /// The key in column names (`saving_<key>_co2_kg`).
    pub fn key(self) -> &'static str {
        match self {
            Cause::Rest => "rest",
            Cause::TimeShift => "time_shift",
            Cause::Pue => "pue",
            Cause::PauseOverhead => "pause_overhead",
            Cause::PowerCap => "power_cap",
            Cause::Batch => "batch",
            Cause::Routing => "routing",
            Cause::Model => "model",
            Cause::Tokens => "tokens",
        }
    }

    /// A label for tables and plots.
    pub fn label(self) -> &'static str {
        match self {
            Cause::Rest => "rest (routing sample)",
            Cause::TimeShift => "time shifting",
            Cause::Pue => "weather / PUE",
            Cause::PauseOverhead => "pause/restore overhead",
            Cause::PowerCap => "power cap",
            Cause::Batch => "batch change",
            Cause::Routing => "top-k / routing change",
            Cause::Model => "dense model (per token)",
            Cause::Tokens => "tokens to equal loss",
        }
    }

    /// The circadian mechanisms on once this cause (and every one before it in the chain) is on.
    fn mechanisms_through(self) -> Mechanisms {
        let mut on = Mechanisms::NONE;
        for c in Cause::CIRCADIAN_ORDER {
            match c {
                Cause::TimeShift => on.time_shift = true,
                Cause::Pue => on.pue = true,
                Cause::PauseOverhead => on.pause_overhead = true,
                Cause::PowerCap => on.power_cap = true,
                Cause::Batch => on.batch = true,
                Cause::Routing => on.routing = true,
                _ => {}
            }
            if c == self {
                break;
            }
        }
        on
    }
}

/// A saving: reference minus strategy (positive = the strategy emits, uses or takes less).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Saving {
    /// Emissions saved [kg CO2e].
    pub co2_kg: f64,
    /// Facility energy saved [J].
    pub energy_j: f64,
    /// Wall-clock time saved [s] (negative: the strategy takes longer).
    pub time_s: f64,
}

impl Saving {
    /// What `to` saves against `from`.
    fn between(from: &StrategyResult, to: &StrategyResult) -> Self {
        let (a, b) = (&from.outcome, &to.outcome);
        Saving {
            co2_kg: a.totals.co2_kg - b.totals.co2_kg,
            energy_j: a.totals.facility_j - b.totals.facility_j,
            time_s: a.wall_s - b.wall_s,
        }
    }
}

/// One strategy's saving against the reference, split by cause.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    /// The strategy.
    pub strategy: StrategyKind,
    /// The reference (`moe`).
    pub against: StrategyKind,
    /// One part per cause, in the order they were switched on.
    pub parts: Vec<(Cause, Saving)>,
    /// The whole saving (the parts sum to it).
    pub whole: Saving,
}

impl Split {
    /// The part of `cause` (None when the cause is not in this chain).
    pub fn part(&self, cause: Cause) -> Option<Saving> {
        self.parts.iter().find(|(c, _)| *c == cause).map(|p| p.1)
    }

    /// The order the causes were switched on, as text.
    pub fn order(&self) -> String {
        self.parts
            .iter()
            .map(|(c, _)| c.label())
            .collect::<Vec<_>>()
            .join(" → ")
    }
}

/// The splits of a run: circadian vs moe and dense vs moe, for those the scenario lists.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Attribution {
    /// One split per strategy other than `moe`, in scenario order.
    pub splits: Vec<Split>,
}

impl Attribution {
    /// The split of `kind` (None for `moe`, or when the scenario has no `moe` to compare with).
    pub fn of(&self, kind: StrategyKind) -> Option<&Split> {
        self.splits.iter().find(|s| s.strategy == kind)
    }
}

/// One counterfactual run of a chain.
struct Counterfactual {
    kind: StrategyKind,
    index: u64,
    on: Mechanisms,
    goal: Goal,
}

/// Split the savings of `results` (the run of `s`) against `moe` by cause. The counterfactual runs go in
/// parallel (rayon); each has its own random streams from the scenario's seed, so the split is the same
/// on any thread count. Empty when `s` lists no `moe`.
pub fn attribute(s: &Scenario, results: &Results) -> Result<Attribution, SimError> {
    let find = |k: StrategyKind| {
        s.strategies
            .iter()
            .position(|x| *x == k)
            .and_then(|i| results.strategies.get(i).map(|r| (i as u64, r)))
    };
    let Some((_, moe)) = find(StrategyKind::Moe) else {
        return Ok(Attribution::default());
    };
    let prepared = prepare(s)?;
    // The chains' inner runs; the first and last run of each chain are the strategies already run.
    let mut jobs: Vec<(StrategyKind, Cause, Counterfactual)> = Vec::new();
    if let Some((i, _)) = find(StrategyKind::Circadian) {
        let inner = &Cause::CIRCADIAN_ORDER[..Cause::CIRCADIAN_ORDER.len() - 1];
        for &c in inner {
            jobs.push((
                StrategyKind::Circadian,
                c,
                Counterfactual {
                    kind: StrategyKind::Circadian,
                    index: i,
                    on: c.mechanisms_through(),
                    goal: prepared.goal.clone(),
                },
            ));
        }
    }
    if let Some((i, _)) = find(StrategyKind::Dense) {
        jobs.push((
            StrategyKind::Dense,
            Cause::Model,
            Counterfactual {
                kind: StrategyKind::Dense,
                index: i,
                on: Mechanisms::NONE,
                goal: Goal::Tokens {
                    tokens: moe.outcome.tokens,
                },
            },
        ));
    }
    let runs: Vec<Result<StrategyResult, SimError>> = jobs
        .par_iter()
        .map(|(_, _, cf)| {
            run_variant(
                s,
                cf.kind,
                cf.index,
                &prepared,
                Watch::NONE,
                cf.on,
                &cf.goal,
            )
        })
        .collect();
    let runs = runs.into_iter().collect::<Result<Vec<_>, _>>()?;
    let mut splits = Vec::new();
    for kind in &s.strategies {
        let order: &[Cause] = match kind {
            StrategyKind::Circadian => &Cause::CIRCADIAN_ORDER,
            StrategyKind::Dense => &Cause::DENSE_ORDER,
            StrategyKind::Moe => continue,
        };
        let Some((_, actual)) = find(*kind) else {
            continue;
        };
        // The chain: moe, the counterfactuals in order, the strategy itself.
        let mut chain: Vec<&StrategyResult> = vec![moe];
        chain.extend(
            jobs.iter()
                .zip(&runs)
                .filter(|((k, _, _), _)| k == kind)
                .map(|(_, r)| r),
        );
        chain.push(actual);
        let parts = order
            .iter()
            .zip(chain.windows(2))
            .map(|(&c, w)| (c, Saving::between(w[0], w[1])))
            .collect();
        splits.push(Split {
            strategy: *kind,
            against: StrategyKind::Moe,
            parts,
            whole: Saving::between(moe, actual),
        });
    }
    Ok(Attribution { splits })
}
