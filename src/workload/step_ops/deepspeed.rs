//! GPT-NeoX 1.0's once-per-step ops under ZeRO stage 1: DeepSpeed's pipeline engine all-reduces
//! the fp16 gradients after the last backward, then the fp16 ZeRO-1 optimizer steps.
//!
//! Read from the code GPT-NeoX v1.0 runs (tag v1.0, `requirements/requirements.txt` pins
//! DeeperSpeed `eb7f5cff`, DeepSpeed 0.3.15; `Dockerfile` torch 1.8.1 and apex FusedAdam):
//! - `pipe-parallel-size >= 1` (every Pythia yml from 70M to 12B sets 1) builds a
//!   `PipelineModule` (`neox_arguments/arguments.py` l.826: `is_pipe_parallel =
//!   pipe_parallel_size >= 1`) and trains with `PipelineEngine.train_batch`. That engine turns
//!   off the engine's own gradient hooks (`enable_backward_allreduce = False`, pipe/engine.py
//!   l.66) and, after the last micro-batch's backward (`TrainSchedule`: `ReduceTiedGrads`,
//!   `ReduceGrads`, `OptimizerStep` at the last step), runs `_exec_reduce_grads` ->
//!   `buffered_allreduce_fallback`: a full all-reduce of the fp16 gradients over the
//!   data-parallel group, in buckets of `MEMORY_OPT_ALLREDUCE_SIZE` elements. Nothing of it
//!   overlaps the backward, and `overlap_comm` is never read by the stage-1 optimizer
//!   (engine.py `_configure_zero_optimizer` passes it to stage 2 only).
//! - `FP16_DeepSpeedZeroOptimizer_Stage1.step` (zero/stage1.py l.688-783) then checks every
//!   gradient for inf/nan and takes the gradient norm over the whole local model, one tensor
//!   at a time with a host read each (`CheckOverflow.has_overflow_serial`:
//!   `float(x.float().sum())`; `get_grad_norm`: `p.grad.data.float().norm(2)` then `.item()`),
//!   copies its own 1/dp sub-partition of the gradients to fp32, unscales it, runs Adam on it,
//!   copies the updated fp32 weights to fp16 and all-gathers the fp16 weights.
//!
//! Megatron-LM's distributed optimizer (the generic op list) reduce-scatters instead and looks
//! at the local shard only; these ops replace it for `framework = "gpt-neox"`, `zero_stage = 1`.

use super::super::arch::NormKind;
use super::build::grad_groups;
use super::layer::Ctx;
use super::{GroupKind, KernelClass as K, Op, Phase};

/// Elements per all-reduce bucket of `buffered_allreduce_fallback`: `MEMORY_OPT_ALLREDUCE_SIZE =
/// 500000000` (DeeperSpeed engine.py l.51), what `PipelineEngine._exec_reduce_grads` passes.
const ALLREDUCE_BUCKET_ELEMS: f64 = 5e8;

/// Elements per ZeRO-1 communication interval (`max_elements_per_comm`, the
/// `reduce_bucket_size` default `ZERO_OPTIMIZATION_REDUCE_BUCKET_SIZE_DEFAULT = 500000000` of
/// DeepSpeed 0.3.15 zero/constants.py): how many sub-partitions the stage-1 optimizer splits
/// the flat parameters into. Only launch counts depend on it (the 12B yml's 1.26e9 halves them).
const ZERO1_COMM_ELEMS: f64 = 5e8;

/// HBM bytes per element of a per-tensor `x.float()` then a reduction over it (`.sum()` in the
/// overflow check, `.norm(2)` in the gradient norm) besides reading `x`: write the fp32 copy
/// (4), read it back (4).
const FLOAT_COPY_REDUCE_BYTES: f64 = 8.0;

/// HBM bytes per locally updated parameter of the stage-1 update besides the Adam kernel:
/// `get_flat_sub_partitions(.., dtype=fp32)` casts each fp16 gradient piece of the local
/// sub-partition to fp32 (`.to(dtype)`: read `p`, write 4) and flattens them (`torch.cat`: read
/// 4, write 4), `unscale_and_clip_grads` multiplies it in place (read 4, write 4), and the fp32
/// weights are copied back into the fp16 partition (read 4, write `p`): `24 + 2 p`
/// (zero/stage1.py l.466-555, l.715-757).
fn zero1_local_bytes(p: f64) -> f64 {
    24.0 + 2.0 * p
}

/// Bytes per parameter of apex `FusedAdam` over fp32 weights and gradients: read g, p, m, v,
/// write p, m, v (notes hardware_constants.md Sec. 6c; the optimizer GPT-NeoX v1.0 builds when
/// apex imports, training.py `get_optimizer`).
const FUSED_ADAM_BYTES: f64 = 28.0;

/// Parameter tensors of one GPU's share of `layers` layers (plus the embedding on the first
/// stage, the final norm and the untied output layer on the last): per GPT-NeoX layer two norms
/// (weight, and a bias for LayerNorm) and four linears (QKV, attention output, h->4h, 4h->h;
/// weight and, with `bias`, a bias), `megatron/model/transformer.py` `ParallelTransformerLayer`;
/// the output layer has no bias (`ParallelLinear`: `bias=False`). Rotary embeddings hold no
/// parameters.
pub(super) fn param_tensors(c: &Ctx, layers: u32, first: bool, last: bool) -> u32 {
    let a = &c.model.arch;
    let norm = if a.norm == NormKind::LayerNorm { 2 } else { 1 };
    let linear = if a.bias { 2 } else { 1 };
    let mut n = layers * (2 * norm + 4 * linear);
    if first {
        n += 1;
    }
    if last {
        n += norm + u32::from(!(a.tied_embeddings && first));
    }
    n
}

/// The step's gradient synchronisation and optimizer ops for GPT-NeoX 1.0 with ZeRO stage 1:
/// `dense` / `expert` parameters on this GPU (TP-sharded), `tensors` parameter tensors, data-
/// parallel groups of `dp` (dense) and `edp` (experts) ranks. See the module doc.
pub(super) fn zero1_step_ops(
    c: &Ctx,
    dense: f64,
    expert: f64,
    tensors: u32,
    dp: u32,
    edp: u32,
) -> Vec<Op> {
    let p = c.p;
    let n = dense + expert;
    let tensors = tensors.max(1);
    let mut ops = Vec::new();
    let mut push = |mut o: Op, phase: Phase| {
        o.phase = phase;
        ops.push(o);
    };
    // ReduceGrads: `allreduce_and_copy` flattens each bucket (`torch.cat`: read, write),
    // scales it by 1/dp (read, write) and copies every gradient back out of it (read, write).
    let buckets = (n / ALLREDUCE_BUCKET_ELEMS).ceil().max(1.0) as u32;
    if dp > 1 || (edp > 1 && expert > 0.0) {
        push(
            Op::compute("ds.grad_bucket_copy", K::Elementwise, n, 6.0 * p * n)
                .launches(2 * buckets + tensors),
            Phase::Backward,
        );
    }
    for (group, size, m) in grad_groups(dp, edp, dense, expert) {
        push(
            Op::comm("dp.grad_sync", K::AllReduce, group, size, m * p),
            Phase::Backward,
        );
    }
    // Overflow check and gradient norm over every local gradient, tensor by tensor, each with
    // a host read; one more host read each for the reduced flag and norm.
    for name in ["ds.overflow_check", "ds.grad_norm"] {
        let mut o = Op::compute(name, K::Elementwise, n, (p + FLOAT_COPY_REDUCE_BYTES) * n)
            .launches(2 * tensors);
        o.host_syncs = tensors + 1;
        push(o, Phase::Optimizer);
    }
    // `CheckOverflow.has_overflow` all-reduces the one-byte flag over all ranks (the data-
    // parallel group stands in for the world group).
    if dp > 1 {
        push(
            Op::comm(
                "ds.overflow_allreduce",
                K::AllReduce,
                GroupKind::Dp,
                dp,
                1.0,
            ),
            Phase::Optimizer,
        );
    }
    // The update of the local 1/dp sub-partitions.
    let local = dense / f64::from(dp.max(1)) + expert / f64::from(edp.max(1));
    let intervals = (n / ZERO1_COMM_ELEMS).ceil().max(1.0) as u32;
    push(
        Op::compute(
            "optimizer.update",
            K::Optimizer,
            12.0 * local,
            (FUSED_ADAM_BYTES + zero1_local_bytes(p)) * local,
        )
        .launches(3 * intervals + 1),
        Phase::Optimizer,
    );
    // All-gather of the fp16 sub-partitions, one call per interval into a list of dp views:
    // torch 1.8 `ProcessGroupNCCL::allgather` gathers into a flat buffer and copies each of
    // the dp outputs out of it ("Copy the flattened output tensors to the outputs"): read and
    // write every local parameter once more, dp launches per interval.
    let mut gathered = false;
    for (group, size, m) in grad_groups(dp, edp, dense, expert) {
        push(
            Op::comm("dp.param_gather", K::AllGather, group, size, m * p),
            Phase::Optimizer,
        );
        gathered = true;
    }
    if gathered {
        push(
            Op::compute("ds.gather_copy", K::Elementwise, 0.0, 2.0 * p * n)
                .launches(dp.max(edp) * intervals),
            Phase::Optimizer,
        );
    }
    // `_aggregate_total_loss`: the step's mean loss all-reduced over the data-parallel group.
    if dp > 1 {
        push(
            Op::comm("ds.loss_allreduce", K::AllReduce, GroupKind::Dp, dp, 4.0),
            Phase::Optimizer,
        );
    }
    ops
}
