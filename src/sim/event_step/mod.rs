//! The event-level step: one optimizer step's priced ops (`workload::step_ops` priced by
//! `hardware::Accelerator::price`) scheduled on per-GPU compute and communication streams and on
//! the fabric's links, with the framework's dependencies — the reference the fast path
//! (`sim::step`) is checked against. It reads nothing the fast path computed.
//!
//! * [`input`]: what a step simulates ([`EventStepInput`], [`Overlap`]); [`outcome`]: what it
//!   gives back ([`EventStep`], [`OpRecord`], [`Contention`], [`EventStepError`]); [`model`]:
//!   the evaluator the run loop keeps ([`EventStepModel`]).
//! * [`graph`]: the op lists per stage and model chunk, their prices, the (interleaved) 1F1B
//!   order, the ZeRO-3 gather groups, the GPUs' nodes and the
//!   routing loads of the step.
//! * [`links`]: NVLink and NIC ports, node NICs, leaf up-links and torus links as shared
//!   resources, flows sharing their bandwidth; [`paths`]: which links a transfer crosses.
//! * [`sched`]: the scheduler (streams, collectives, pipeline transfers, gradient buckets).
//! * [`trace`]: the Chrome/Perfetto trace of a step.
//! * [`skew`]: per-layer energy lost to routing skew against a balanced routing.
//! * [`rebalance`]: expert rebalancing — the placement change of a rebalancing step as weight
//!   transfers on the links after the optimizer.
//!
//! **Symmetry.** Only one tensor-parallel rank of each (data-parallel rank, stage) is
//! simulated, and only the `ep` data-parallel ranks of one expert-parallel group: TP peers run
//! the same ops on their own ports, and the `dp / ep` expert-parallel groups see the same
//! routing shares, so each simulated GPU stands for `tp * dp / ep` identical GPUs
//! ([`EventStep::gpus_represented`]). This is exact as long as the step's routing is the same in
//! every expert-parallel group, which is how the routing model hands it over (one share vector
//! per layer).

mod combined;
mod graph;
mod input;
mod links;
mod model;
mod outcome;
mod paths;
mod rebalance;
pub mod scenario;
mod sched;
pub mod skew;
pub mod trace;

use crate::sim::Knobs;

// The test modules build their inputs from these through `use super::*`.
#[cfg(test)]
use crate::{
    network::Fabric,
    routing::{Placement, PlacementPolicy},
    scenario::{Cluster, Job, RoutingChoice},
    workload::step_ops::{OpsConfig, Phase},
    workload::{ModelSpec, ParallelPlan},
};

pub use input::{EventStepInput, Overlap};
pub use model::EventStepModel;
pub use outcome::{Contention, EventStep, EventStepError, OpRecord};

/// Simulate one step of `input` with routing `shares` (MoE layers x experts, each row summing
/// to 1; or MoE layers x expert-parallel ranks x experts, the routing of each source rank's
/// tokens; empty for a dense model) at `knobs`; `record` keeps the per-op timeline.
pub fn event_step(
    input: &EventStepInput,
    shares: &[f64],
    knobs: Knobs,
    record: bool,
) -> Result<EventStep, EventStepError> {
    EventStepModel::new(input.clone()).step(shares, knobs, record)
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_a2a;
#[cfg(test)]
mod tests_agg;
#[cfg(test)]
mod tests_dualpipe;
#[cfg(test)]
mod tests_fabric;
#[cfg(test)]
mod tests_ops_ran;
#[cfg(test)]
mod tests_rebalance;
#[cfg(test)]
mod tests_regimes;
