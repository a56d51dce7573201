//! What an event-level step simulates: the job, its hardware and its framework's overlap settings.

use crate::hardware::Accelerator;
use crate::network::Fabric;
use crate::routing::Placement;
use crate::scenario::{Cluster, Job, RoutingChoice};
use crate::workload::step_ops::OpsConfig;
use crate::workload::{ModelSpec, ParallelPlan, PipelineKind};

/// Which communication the framework overlaps with computation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Overlap {
    /// Data-parallel gradient sync in per-layer buckets on the communication stream during the
    /// last micro-batch's backward (Megatron-LM `--overlap-grad-reduce`); otherwise it runs after
    /// the backward, blocking.
    pub grad_sync: bool,
    /// MoE dispatch/combine all-to-alls overlapped with another micro-batch's compute
    /// (Megatron-LM `--overlap-moe-expert-parallel-comm`).
    pub ep_comm: bool,
    /// The distributed optimizer's parameter all-gather under the next forward
    /// (`training.overlap_param_gather`): a bucket per layer gathered ahead of the step's
    /// first forward through it (`graph::ParamGather`), instead of after the optimizer.
    pub param_gather: bool,
}

/// What one event-level step simulates: the job, its hardware and its framework settings.
#[derive(Clone, Debug)]
pub struct EventStepInput {
    /// Model architecture.
    pub model: ModelSpec,
    /// Parallel layout.
    pub plan: ParallelPlan,
    /// Framework settings of the op list.
    pub ops_config: OpsConfig,
    /// Accelerator (prices every compute op).
    pub accelerator: Accelerator,
    /// Fabric (port bandwidths and latencies).
    pub fabric: Fabric,
    /// GPUs per node.
    pub gpus_per_node: u32,
    /// Token choice (capacity drops at the router) or expert choice (balanced by construction).
    pub choice: RoutingChoice,
    /// Expert placement on the expert-parallel ranks (None: contiguous).
    pub placement: Option<Placement>,
    /// Overlap settings.
    pub overlap: Overlap,
    /// Model chunks per pipeline stage (interleaved 1F1B; 1 = plain 1F1B).
    pub virtual_stages: u32,
    /// Pipeline schedule: 1F1B (interleaved with `virtual_stages > 1`) or DeepSeek's DualPipe.
    pub pipeline: PipelineKind,
    /// Per MoE layer, the factor by which one micro-batch's sampled counts lift a padded
    /// capacity above the largest mean count (`StepModel::pad_spread`; empty: none, factor 1).
    pub pad_spread: Vec<f64>,
}

impl EventStepInput {
    /// The input of `job` on `cluster` (contiguous placement, token choice, the job's overlap).
    pub fn from_job(job: &Job, cluster: &Cluster) -> Self {
        EventStepInput {
            model: job.model.clone(),
            plan: job.plan.clone(),
            ops_config: job.ops_config(),
            accelerator: cluster.accelerator.clone(),
            fabric: cluster.fabric,
            gpus_per_node: cluster.gpus_per_node,
            choice: RoutingChoice::TokenChoice,
            placement: None,
            overlap: Overlap {
                grad_sync: job.schedule.overlap_grad_sync,
                ep_comm: job.schedule.overlap_ep_comm,
                param_gather: job.schedule.overlap_param_gather,
            },
            virtual_stages: job.schedule.virtual_stages,
            pipeline: job.schedule.pipeline,
            pad_spread: Vec::new(),
        }
    }
}
