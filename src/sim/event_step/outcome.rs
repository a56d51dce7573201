//! What an event-level step gives back: its result, per-op records, port sharing, its errors.

use crate::engine::EngineError;
use crate::workload::step_ops::{KernelClass, Phase};
use crate::workload::WorkloadError;

/// One op (or one GPU's part of a collective) on the step's timeline.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OpRecord {
    /// Simulated GPU (`stage * ep + expert-parallel rank`).
    pub gpu: u32,
    /// Stream: 0 compute, 1 communication.
    pub stream: u8,
    /// Op name (`attn.qkv`, `moe.dispatch`, ...).
    pub name: &'static str,
    /// Kernel class.
    pub class: KernelClass,
    /// Layer, if any.
    pub layer: Option<u32>,
    /// Forward, backward, recompute or optimizer.
    pub phase: Phase,
    /// Micro-batch (0 for once-per-step ops).
    pub mb: u32,
    /// Start [ns from the step's start] (a collective: when this GPU issued it).
    pub start_ns: u64,
    /// End [ns].
    pub end_ns: u64,
    /// Mean power of a compute op [W] (0 for communication).
    pub power_w: f64,
    /// FLOPs of the op at this GPU's routing load.
    pub flops: f64,
    /// HBM bytes of a compute op, or bytes per rank of a collective.
    pub bytes: f64,
    /// Whether the compute stream waited for it (a blocking collective).
    pub waiting: bool,
}

/// Port sharing in an event-level step: for each kind of communication, how many times one of
/// its flows had a port (an NVLink or NIC direction of a simulated GPU) in common with another
/// flow running at the same time. Each such meeting counts once for each of the two flows'
/// kinds. All zero: no two transfers ever shared bandwidth (the step has no link contention).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Contention {
    /// MoE dispatch / combine all-to-all flows.
    pub all_to_all: u64,
    /// Gradient sync (`dp.grad_sync`, blocking or in buckets), parameter gathers and the tied
    /// embedding all-reduce.
    pub grad_sync: u64,
    /// Pipeline sends (`pp.send_*`).
    pub p2p: u64,
    /// Tensor-parallel and ZeRO-3 per-layer collectives.
    pub other: u64,
    /// Expert-migration transfers of a rebalancing step meeting a transfer to another receiver.
    pub migration: u64,
}

impl Contention {
    /// Meetings of all kinds (0: no link contention).
    pub fn total(&self) -> u64 {
        self.all_to_all + self.grad_sync + self.p2p + self.other + self.migration
    }
}

/// Result of one event-level step.
#[derive(Clone, Debug, Default)]
pub struct EventStep {
    /// Step time [s].
    pub time_s: f64,
    /// Energy of all the job's GPUs over the step [J]: busy at each op's priced power, waiting
    /// at `Accelerator::spin_w`.
    pub gpu_energy_j: f64,
    /// Part of `gpu_energy_j` drawn while waiting (collectives, pipeline bubbles) [J].
    pub waiting_energy_j: f64,
    /// Events the engine handled.
    pub events: u64,
    /// GPUs simulated.
    pub gpus_simulated: u32,
    /// Real GPUs each simulated GPU stands for (see the module doc on symmetry).
    pub gpus_represented: f64,
    /// Per layer: energy all GPUs spent waiting in the layer's MoE all-to-all and expert-TP
    /// collectives [J] (0 for dense layers).
    pub moe_wait_j: Vec<f64>,
    /// Tokens trained in the step.
    pub tokens: f64,
    /// Token-expert assignments routed (all MoE layers, all replicas).
    pub assignments: f64,
    /// Assignments dropped by the capacity limit.
    pub dropped: f64,
    /// Longest time any simulated GPU spent in router ops [s].
    pub router_s: f64,
    /// Communication wait of the simulated GPU that waited longest [s]: per GPU, the time its
    /// compute stream stood waiting for its blocking collectives, pipeline sends and (combined
    /// 1F1B) its own all-to-alls, summed over its step; the largest of these totals — one GPU's,
    /// not a sum over GPUs. Waits for a stage's input, a ZeRO-3 prefetch, the side streams'
    /// drain or the optimizer barrier are not in it; a rebalancing step adds its migration
    /// (`migration_s`).
    pub max_gpu_comm_wait_s: f64,
    /// Flows that shared a port with another flow, by kind (see [`Contention`]).
    pub contention: Contention,
    /// How much later the step ends for the expert migration of a rebalancing step [s] (0
    /// otherwise).
    pub migration_s: f64,
    /// Expert weights and optimizer states moved by that migration (simulated GPUs) [bytes].
    pub migrated_bytes: f64,
    /// Per-op timeline (empty unless asked for).
    pub records: Vec<OpRecord>,
    /// Stage of each simulated GPU.
    pub stage_of_gpu: Vec<u32>,
}

/// Why an event-level step could not be simulated.
#[derive(Debug, thiserror::Error)]
pub enum EventStepError {
    /// The op list could not be built (batch not divisible, ...).
    #[error("event step: {0}")]
    Workload(#[source] WorkloadError),
    /// The routing shares do not match the model.
    #[error("event step: routing shares have {got} entries; the model needs {want} (MoE layers x experts), or MoE layers x expert-parallel ranks x experts (one row per source rank)")]
    Shares {
        /// Entries given.
        got: usize,
        /// Entries needed.
        want: usize,
    },
    /// The plan does not fit the event model.
    #[error("event step: {0}")]
    Plan(String),
    /// A GPU never finished: a dependency that cannot be met (a bug in the schedule).
    #[error("event step: GPU {gpu} never finished its step ({state})")]
    Stuck {
        /// Simulated GPU.
        gpu: u32,
        /// Where it stopped.
        state: String,
    },
    /// The engine refused an event.
    #[error(transparent)]
    Engine(#[from] EngineError),
}
