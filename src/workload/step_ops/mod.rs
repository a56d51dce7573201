//! The operation list of one training step: every kernel class a Megatron-LM / DeepSpeed /
//! MaxText step launches, per micro-batch, per layer, per pipeline stage, with FLOPs, HBM bytes,
//! kernel launches, GEMM shapes and collective sizes. `hardware` + `network` price each op once;
//! the step model (fast path and event level) schedules the priced ops.
//!
//! Routing-dependent ops (expert GEMMs, dispatch/combine, the chunk sort after dispatch) carry a
//! [`Load::Routed`] description so the step model can re-size them from each step's routing
//! loads ([`Op::at_tokens`]); their stored numbers are the uniform-routing (mean) case.

mod attn_core;
mod build;
mod deepspeed;
mod dropout;
mod enc_dec;
mod evolved;
mod fp8;
mod layer;
mod moe;
mod moe_einsum;
mod moe_megablocks;
mod moe_tutel;
mod parallel;
mod positions;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_arch;
#[cfg(test)]
mod tests_evolved;
#[cfg(test)]
mod tests_fixture;
#[cfg(test)]
mod tests_framework;

pub use build::{optimizer_bytes_per_param, step_ops, uniform_expert_tokens, StageOps, StepOps};
pub use evolved::{evolved_activation_bytes, evolved_plan_fits};
pub use fp8::{gemm_runs_in_fp8, Fp8AmaxReduce, Fp8ScaleUpdate, HIGHER_PRECISION_GEMMS};
pub use layer::layer_forward_ops;
pub use moe_einsum::{einsum_activation_bytes, expert_capacity, split_into_groups, EinsumConfig};

/// Kernel class: decides which efficiency curve prices the op.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KernelClass {
    /// Dense matrix multiply (cuBLAS / CUTLASS).
    Gemm,
    /// One grouped GEMM over several experts' token groups.
    GroupedGemm,
    /// FlashAttention forward or backward (fused scores, softmax, context).
    FlashAttention,
    /// The same fused attention from the first-generation kernels (flash-attn 1.x, xformers
    /// "cutlass", Triton FlashAttention): same FLOPs and bytes, a lower efficiency ceiling
    /// (`training.attention_kernel = "flash1"`; see `hardware::EfficiencyCurve::attention1_eff`).
    FlashAttention1,
    /// Memory-bound element-wise kernel (residual add, activation, rotary, scaling, aux loss).
    Elementwise,
    /// RMSNorm / LayerNorm.
    Norm,
    /// Softmax over a short row (router scores).
    Softmax,
    /// Top-k selection.
    TopK,
    /// Token permutation (sort by expert, index_select, chunk sort, unpermute).
    Permute,
    /// Row gather.
    Gather,
    /// Row scatter / scatter-add.
    Scatter,
    /// Embedding lookup (and its scatter-add backward).
    Embedding,
    /// Softmax cross-entropy over the vocabulary.
    CrossEntropy,
    /// Optimizer update (multi-tensor, memory-bound).
    Optimizer,
    /// All-reduce collective.
    AllReduce,
    /// All-gather collective.
    AllGather,
    /// Reduce-scatter collective.
    ReduceScatter,
    /// All-to-all collective.
    AllToAll,
    /// Point-to-point send/receive (pipeline stages).
    SendRecv,
}

impl KernelClass {
    /// Whether the op runs on the network (a collective or point-to-point transfer).
    pub fn is_comm(self) -> bool {
        matches!(
            self,
            KernelClass::AllReduce
                | KernelClass::AllGather
                | KernelClass::ReduceScatter
                | KernelClass::AllToAll
                | KernelClass::SendRecv
        )
    }
}

/// Part of the step an op belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Forward pass.
    Forward,
    /// Backward pass (input and weight gradients; gradient synchronisation).
    Backward,
    /// Forward work repeated before a layer's backward (activation recomputation).
    Recompute,
    /// Optimizer update and the parameter gathers that follow it.
    Optimizer,
}

/// Parallel group a communication op runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GroupKind {
    /// Tensor-parallel group.
    Tp,
    /// Data-parallel group (replicas of non-expert parameters).
    Dp,
    /// Expert-parallel group (all-to-all of tokens).
    Ep,
    /// Data-parallel replicas of one expert (`dp / ep`): expert gradients.
    ExpertDp,
    /// Neighbouring pipeline stages.
    Pp,
}

impl GroupKind {
    /// Distance in ranks between neighbouring members of this group on the job's layout
    /// (Megatron order: tp fastest, then dp with the ep groups inside it, then pp); degrees below
    /// 1 count as 1. Both step models place groups by it.
    pub fn rank_stride(self, tp: u32, dp: u32, ep: u32) -> u32 {
        let (tp, dp, ep) = (tp.max(1), dp.max(1), ep.max(1));
        match self {
            GroupKind::Tp => 1,
            GroupKind::Dp | GroupKind::Ep => tp,
            GroupKind::ExpertDp => tp * ep,
            GroupKind::Pp => tp * dp,
        }
    }
}

/// Collective or point-to-point transfer of a communication op.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Comm {
    /// Group the op runs on.
    pub group: GroupKind,
    /// Ranks in the group.
    pub size: u32,
    /// Bytes each rank contributes: the full buffer for all-reduce, the input for
    /// reduce-scatter, the output for all-gather, the bytes sent to other ranks for all-to-all,
    /// the message for send/recv.
    pub bytes_per_rank: f64,
}

/// Shape of a GEMM `C[m x n] = A[m x k] B[k x n]`; for a grouped GEMM `m` is the total rows
/// over `groups` weight matrices.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GemmShape {
    /// Output rows (tokens).
    pub m: f64,
    /// Output columns.
    pub n: f64,
    /// Reduction dimension.
    pub k: f64,
    /// Weight matrices (1 for a plain GEMM; local experts for a grouped GEMM).
    pub groups: u32,
}

/// Which routing load sizes a routed op.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RoutedBy {
    /// Token-expert assignments this GPU's experts receive (after the expert-TP all-gather).
    RankReceived,
    /// Tokens of one local expert (looped experts: one GEMM chain per expert).
    LocalExpert(u32),
    /// Tokens of the most loaded local expert (padded batched GEMM without a capacity).
    MaxLocalExpert,
}

/// How an op's size follows the routing of the step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Load {
    /// Fixed by the model and plan.
    Fixed,
    /// Linear in a routing load: `x(tokens) = x_fixed + x_per_token * tokens`.
    Routed {
        /// The load that sizes it.
        by: RoutedBy,
        /// Token count the op's stored numbers are for (uniform routing).
        tokens: f64,
        /// FLOP per routed token.
        flops_per_token: f64,
        /// HBM bytes per routed token (weights are the fixed part).
        bytes_per_token: f64,
        /// Communication bytes per rank per routed token.
        comm_bytes_per_token: f64,
        /// Whether the GEMM's `m` is the token count (false: `k`, as in a weight gradient).
        gemm_m: bool,
    },
}

/// One kernel (or collective) of the step, on one GPU.
#[derive(Clone, Debug, PartialEq)]
pub struct Op {
    /// What it is (`attn.qkv`, `moe.dispatch`, ...).
    pub name: &'static str,
    /// Kernel class.
    pub class: KernelClass,
    /// Forward, backward, recompute or optimizer.
    pub phase: Phase,
    /// Transformer layer (0-based) it belongs to; `None` for embedding, head, loss, optimizer.
    pub layer: Option<u32>,
    /// Floating-point operations.
    pub flops: f64,
    /// HBM traffic [bytes] (for a communication op: the local buffer traffic, 0 if unknown).
    pub bytes: f64,
    /// Kernel launches (or collective calls).
    pub launches: u32,
    /// Device-to-host synchronisations (the GPU drains; e.g. `.cpu()` of expert counts).
    pub host_syncs: u32,
    /// GEMM shape (Gemm and GroupedGemm).
    pub gemm: Option<GemmShape>,
    /// Collective / transfer (communication classes).
    pub comm: Option<Comm>,
    /// Which gradient a backward GEMM computes (`None` for other ops).
    pub grad: Option<Grad>,
    /// Routing dependence.
    pub load: Load,
}

/// The two GEMMs of a matmul's backward.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Grad {
    /// Input gradient `dX = dY W^T` (shape `m x k`, reduction `n`).
    Input,
    /// Weight gradient `dW = X^T dY` (shape `k x n`, reduction `m`).
    Weight,
}

impl Op {
    /// A fixed-size compute op.
    pub fn compute(name: &'static str, class: KernelClass, flops: f64, bytes: f64) -> Op {
        Op {
            name,
            class,
            phase: Phase::Forward,
            layer: None,
            flops,
            bytes,
            launches: 1,
            host_syncs: 0,
            gemm: None,
            comm: None,
            grad: None,
            load: Load::Fixed,
        }
    }

    /// A GEMM `m x n x k` in `elem_bytes` precision: `2mnk` FLOP, reads A and B, writes C once.
    pub fn gemm(name: &'static str, m: f64, n: f64, k: f64, elem_bytes: f64) -> Op {
        Op {
            gemm: Some(GemmShape { m, n, k, groups: 1 }),
            ..Op::compute(
                name,
                KernelClass::Gemm,
                2.0 * m * n * k,
                elem_bytes * (m * k + k * n + m * n),
            )
        }
    }

    /// A collective of `class` on `group` of `size` ranks, `bytes_per_rank` each.
    pub fn comm(
        name: &'static str,
        class: KernelClass,
        group: GroupKind,
        size: u32,
        bytes_per_rank: f64,
    ) -> Op {
        Op {
            comm: Some(Comm {
                group,
                size,
                bytes_per_rank,
            }),
            ..Op::compute(name, class, 0.0, 0.0)
        }
    }

    /// With `launches` kernel launches.
    pub fn launches(mut self, n: u32) -> Op {
        self.launches = n;
        self
    }

    /// The op re-sized for a routing load of `tokens` (a fixed op is returned unchanged).
    /// Allocation-free; GEMM rows (or the reduction dim of a weight gradient) follow the load.
    pub fn at_tokens(&self, tokens: f64) -> Op {
        let mut op = self.clone();
        if let Load::Routed {
            by,
            tokens: t0,
            flops_per_token,
            bytes_per_token,
            comm_bytes_per_token,
            gemm_m,
        } = self.load
        {
            let dt = tokens - t0;
            op.flops = (self.flops + flops_per_token * dt).max(0.0);
            op.bytes = (self.bytes + bytes_per_token * dt).max(0.0);
            if let Some(c) = &mut op.comm {
                c.bytes_per_rank = (c.bytes_per_rank + comm_bytes_per_token * dt).max(0.0);
            }
            if let Some(g) = &mut op.gemm {
                // A padded batch has `groups` blocks of the most loaded expert's rows.
                let rows = match by {
                    RoutedBy::MaxLocalExpert => tokens.max(0.0) * g.groups as f64,
                    _ => tokens.max(0.0),
                };
                if gemm_m {
                    g.m = rows;
                } else {
                    g.k = rows;
                }
            }
            if let Load::Routed { tokens: t, .. } = &mut op.load {
                *t = tokens;
            }
        }
        op
    }

    /// Whether the op's size follows the routing.
    pub fn is_routed(&self) -> bool {
        matches!(self.load, Load::Routed { .. })
    }
}

/// How the attention core (scores, softmax, context) is launched.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttentionKernel {
    /// One fused kernel forward and one backward that keep the score matrix on chip
    /// (FlashAttention, Dao et al. 2022; cuDNN / Transformer Engine fused attention, xformers
    /// memory-efficient attention).
    #[default]
    Flash,
    /// First-generation fused attention: flash-attn 1.x (`flash_attn_unpadded_*`), xformers
    /// `memory_efficient_attention` ("cutlass") or FlashAttention in Triton, the kernels of
    /// runs trained before FlashAttention-2 (July 2023). Same work as `Flash`; FlashAttention-2
    /// is "around 2x faster than FlashAttention and FlashAttention in xformers" on A100 (Dao
    /// 2023, arXiv:2307.08691, Sec. 4.1), whose abstract puts FlashAttention at "only 25-40% of
    /// the theoretical maximum FLOPs/s".
    Flash1,
    /// The pre-FlashAttention Megatron-LM core: a batched QK^T GEMM that writes the full
    /// `s x s` score matrix per head to HBM, the fused scale + causal-mask + softmax kernel,
    /// attention dropout, and a batched PV GEMM (Narayanan et al. 2021, Sec. 4.2; Korthikanti
    /// et al. 2022, Sec. 4.1: `5 a s^2 b` bytes of scores, softmax output and dropout mask).
    Unfused,
}

/// Training framework whose eager layer code the operation list follows where frameworks differ
/// (`training.framework`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Framework {
    /// Megatron-LM / Megatron-Core: attention inputs reach the attention kernel without layout
    /// copies (the default, and what the op list was built from).
    #[default]
    Megatron,
    /// GPT-NeoX 1.0 (`megatron/model/transformer.py`, tag v1.0), the code Pythia was trained
    /// with: its FlashAttention path copies q, k and v into a packed layout and the context
    /// back (see `layer::neox_layout_ops`); under ZeRO stage 1 DeepSpeed's pipeline engine
    /// all-reduces the fp16 gradients after the backward and the fp16 stage-1 optimizer checks
    /// and norms every gradient before its update (see `deepspeed`).
    GptNeox,
    /// Mesh TensorFlow on TPU v2/v3 (Shazeer et al. 2018; the T5 trainer, Raffel et al. 2020):
    /// variables are float32 in memory (`get_variable_dtype`: `slice_dtype` "must be
    /// tf.float32 for training", github.com/tensorflow/mesh `mesh_tensorflow/transformer/utils.py`),
    /// so the gradient all-reduce over the `batch` mesh dimension and the optimizer run on
    /// fp32; model parallelism splits `heads`/`d_ff` (T5's layout rules), whose partial sums
    /// are all-reduced (no sequence parallelism), and `SimdMeshImpl.allreduce` casts a bf16
    /// tensor to fp32 when its group exceeds `allreduce_in_bfloat16_max_group_size` (default 8)
    /// cores (`mesh_tensorflow/simd_mesh_impl.py`). The optimizer is not sharded (each
    /// replica updates its slices): `zero_stage = 0`.
    MeshTensorflow,
    /// TF 1.x `TPUEstimator` data parallelism (Tensor2Tensor and the TPU reference models):
    /// `CrossShardOptimizer` all-reduces (`cross_replica_sum`) the gradients of the float32
    /// variables (T2T `common_hparams`: `weight_dtype="float32"`; `utils/optimize.py`) in
    /// fp32, and every replica applies the whole optimizer (`zero_stage = 0`).
    TpuEstimator,
}

/// TPU v2/v3 TensorCores per chip, the unit Mesh TensorFlow's mesh counts (its `tpu_mesh_shape`
/// takes `2 x` the chips of a topology; Cloud TPU system architecture: two cores per v2/v3 chip).
pub const MESH_TF_CORES_PER_CHIP: u32 = 2;

/// Mesh TensorFlow's `SimdMeshImpl(allreduce_in_bfloat16_max_group_size=8)`: a bf16 all-reduce
/// over more cores than this runs in fp32 (`mesh_tensorflow/simd_mesh_impl.py`).
pub const MESH_TF_BF16_ALLREDUCE_MAX_CORES: u32 = 8;

/// Bytes of an fp32 element (TF's float32 variables and gradients).
const FP32_BYTES: f64 = 4.0;

impl Framework {
    /// Whether the framework keeps its trainable variables (and so their gradients and the
    /// optimizer's reads) in fp32 whatever the compute precision.
    pub fn fp32_variables(self) -> bool {
        matches!(self, Framework::MeshTensorflow | Framework::TpuEstimator)
    }

    /// Whether the framework shards optimizer states (ZeRO) at all.
    pub fn shards_optimizer(self) -> bool {
        !self.fp32_variables()
    }

    /// Bytes per element of the data-parallel gradient synchronisation, with activations and
    /// gradients of the layers in `p` bytes: fp32 gradients of fp32 variables, else `p`.
    pub fn grad_sync_bytes(self, p: f64) -> f64 {
        if self.fp32_variables() {
            FP32_BYTES.max(p)
        } else {
            p
        }
    }

    /// Bytes per element of a tensor-parallel collective over `tp` chips with activations in
    /// `p` bytes: Mesh TensorFlow all-reduces bf16 over more than 8 cores in fp32.
    pub fn tp_collective_bytes(self, p: f64, tp: u32) -> f64 {
        if self == Framework::MeshTensorflow
            && tp.saturating_mul(MESH_TF_CORES_PER_CHIP) > MESH_TF_BF16_ALLREDUCE_MAX_CORES
        {
            FP32_BYTES.max(p)
        } else {
            p
        }
    }
}

/// Which tensors FP8 training keeps in FP8 (`training.fp8_recipe`; with `precision = "fp8"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fp8Recipe {
    /// NVIDIA Transformer Engine: only GEMM inputs are FP8; activations, GEMM outputs,
    /// collectives, gradients and weights stay bf16; each linear cast-transposes its input and
    /// its output gradient, weights are cast once per step (notes hardware_constants.md Sec. 6j).
    #[default]
    TransformerEngine,
    /// DeepSeek-V3's own recipe (arXiv:2412.19437, Sec. 3.3): GEMM inputs, the activations
    /// cached for the linear backward and the dispatch in FP8; norms, attention, residuals and
    /// the combine in BF16 (Sec. 3.3.1, 3.3.3), no per-linear Transformer Engine casts; the
    /// fine-grained (1x128-tile) quantisation kernels have no published cost and are not charged.
    Deepseek,
}

/// The number format the data-parallel gradient reduction runs in (`training.grad_reduce_dtype`;
/// unset: the training precision's gradient format, 2 B under bf16/fp16/fp8, 4 B under fp32).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GradReduceDtype {
    /// 2 bytes per gradient element.
    Bf16,
    /// 4 bytes per gradient element: Megatron-LM under bf16 sets
    /// `accumulate_allreduce_grads_in_fp32 = True` ("bfloat16 requires gradient accumulation and
    /// all-reduce to be done in fp32", megatron/arguments.py, 2021-2024; the later
    /// megatron/training/arguments.py keeps it unless `--grad-reduce-in-bf16`).
    Fp32,
}

impl GradReduceDtype {
    /// Bytes per gradient element [B].
    pub fn bytes(self) -> f64 {
        match self {
            GradReduceDtype::Bf16 => 2.0,
            GradReduceDtype::Fp32 => 4.0,
        }
    }
}

/// How the MoE router and the token permutation are launched.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RouterKernel {
    /// One PyTorch kernel per op (Megatron-LM without `--moe-router-fusion`/`--moe-permute-fusion`,
    /// HF Transformers).
    #[default]
    Eager,
    /// Fused top-k/score, aux-loss and permute kernels (Megatron-LM `--moe-router-fusion
    /// --moe-permute-fusion`, Transformer Engine >= 2.7).
    Fused,
}

/// How the expert GEMMs are issued (`models.X.expert_kernel`; also what
/// `hardware::experts_fwd_bwd` prices the measured MoE layer with: the one enum of both).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExpertKernel {
    /// A launch chain per expert, one host sync per layer (HF Mixtral `MixtralSparseMoeBlock`,
    /// Megatron `SequentialMLP`).
    Loop,
    /// One grouped GEMM per matrix over all local experts (Megatron `TEGroupedMLP`, MegaBlocks `gmm`).
    #[default]
    Grouped,
    /// Batched matmul over local experts, each padded to the capacity (or the largest count).
    Padded,
}

/// Which library's MoE layer runs the router, dispatch, experts and combine
/// (`models.X.moe_impl`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MoeImpl {
    /// Megatron-LM's `MoEAlltoAllTokenDispatcher` token flow (permute, all-to-all of the routed
    /// tokens, grouped / looped / padded experts, unpermute): the default, also what the
    /// MegaBlocks dMoE ran before it had its own variant (`Megablocks`).
    #[default]
    Megatron,
    /// MegaBlocks' dMoE (stanford-futuredata/megablocks commit 1647a0e, `layers/moe.py`,
    /// `layers/dmoe.py`): CUB sort/histogram/cumsum bins, no probs all-to-all (the weights scale
    /// the tokens after the local un-permute), host reads of the counts and of each padded
    /// gather's row count, block-sparse experts over rows rounded up to 128 per expert, the
    /// sparse topology built every micro-batch (see `moe_megablocks`).
    Megablocks,
    /// Tutel's `MOELayer` (microsoft/tutel v0.2.0, `tutel/impls/moe_layer.py`,
    /// `fast_dispatch.py`): one-hot/cumsum routing, a capacity padded per (rank, expert) —
    /// dropless: the largest count, all-reduced (MAX) over the group and read on the host every
    /// layer — encode/decode kernels into and out of that padded buffer, all-to-alls of the whole
    /// padded buffer, batched-matmul experts with separate bias adds (see `moe_tutel`).
    Tutel,
    /// Mesh TensorFlow's `transformer_moe_layer_v1` (Switch Transformer; GShard's lingvo layer
    /// dispatches the same way): fp32 routing, groups of tokens with a fixed capacity per
    /// expert, dispatch and combine as one-hot einsums on the matrix units, all-to-alls of the
    /// padded `[E, G, C, M]` buffer, einsum experts (see `moe_einsum`; needs a capacity factor).
    Einsum,
}

/// Optimizer algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    /// Adam (Kingma & Ba 2015).
    #[default]
    Adam,
    /// AdamW (Loshchilov & Hutter 2019): weight decay fused into the same kernel, same traffic.
    AdamW,
    /// Adafactor (Shazeer & Stern 2018) without momentum: factored second moment.
    Adafactor,
}

/// Framework settings of the operation list that are not architecture or parallel layout.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OpsConfig {
    /// Router / permute kernels.
    pub router_kernel: RouterKernel,
    /// Expert GEMM issue.
    pub expert_kernel: ExpertKernel,
    /// Optimizer.
    pub optimizer: OptimizerKind,
    /// Tensor-parallel collectives as all-gather + reduce-scatter with sequence parallelism
    /// (true, the default, and what `memory.rs` assumes when `tp > 1`) or as all-reduces.
    /// MoE layers shard their tokens over `tp` either way (Megatron-LM requires sequence
    /// parallelism for MoE with `tp > 1`).
    pub sequence_parallel: bool,
    /// Attention core kernels (`training.attention_kernel`).
    pub attention_kernel: AttentionKernel,
    /// Framework-specific eager kernels (`training.framework`).
    pub framework: Framework,
    /// FP8 recipe (`training.fp8_recipe`; only read under FP8 precision).
    pub fp8_recipe: Fp8Recipe,
    /// Transformer Engine's amax/scale update granularity (`training.fp8_scale_update`; only
    /// read under FP8 precision with the Transformer Engine recipe).
    pub fp8_scale_update: Fp8ScaleUpdate,
    /// Transformer Engine's amax all-reduce at each FP8 region's end (`training.fp8_amax_reduce`;
    /// only read under FP8 precision with the Transformer Engine recipe).
    pub fp8_amax_reduce: Fp8AmaxReduce,
    /// MoE layer implementation (`models.X.moe_impl`).
    pub moe_impl: MoeImpl,
    /// Groups and capacity of the einsum MoE layer (read under `MoeImpl::Einsum` only).
    pub einsum: EinsumConfig,
    /// Format of the gradient reduction (`training.grad_reduce_dtype`; None: the gradient's
    /// own precision, see [`GradReduceDtype`]).
    pub grad_reduce_dtype: Option<GradReduceDtype>,
}

impl Default for OpsConfig {
    fn default() -> Self {
        OpsConfig {
            router_kernel: RouterKernel::default(),
            expert_kernel: ExpertKernel::default(),
            optimizer: OptimizerKind::default(),
            sequence_parallel: true,
            attention_kernel: AttentionKernel::default(),
            framework: Framework::default(),
            fp8_recipe: Fp8Recipe::default(),
            fp8_scale_update: Fp8ScaleUpdate::default(),
            fp8_amax_reduce: Fp8AmaxReduce::default(),
            moe_impl: MoeImpl::default(),
            einsum: EinsumConfig::default(),
            grad_reduce_dtype: None,
        }
    }
}
