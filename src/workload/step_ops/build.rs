//! The whole step: per pipeline stage, one micro-batch's forward, recompute and backward ops
//! (embedding, layers, LM head and loss, pipeline sends, ZeRO-3 gathers), and the once-per-step
//! ops (gradient synchronisation, optimizer, parameter gathers).

use std::ops::Range;

use super::super::error::WorkloadError;
use super::super::memory::{stage_layers, StageParams};
use super::super::model::ModelSpec;
use super::super::plan::{ParallelPlan, Recompute};
use super::enc_dec::{encoder_final_norm, Stacks, Views};
use super::layer::{emit_layer, gemm_grads, Ctx, Emit};
use super::moe::uniform_received;
use super::{Framework, GroupKind, KernelClass as K, Op, OpsConfig, OptimizerKind, Phase};

/// Ops of one GPU of one pipeline stage.
#[derive(Clone, Debug, PartialEq)]
pub struct StageOps {
    /// Pipeline stage (0-based).
    pub stage: u32,
    /// Layers `[first, end)` of the stage.
    pub layers: Range<u32>,
    /// One micro-batch's forward, in launch order.
    pub forward: Vec<Op>,
    /// One micro-batch's backward in launch order, each layer's recompute ops (phase
    /// `Recompute`) just before its backward.
    pub backward: Vec<Op>,
    /// Once per step: gradient synchronisation (phase `Backward`), optimizer and parameter
    /// all-gathers (phase `Optimizer`).
    pub per_step: Vec<Op>,
}

impl StageOps {
    /// All ops of one micro-batch (forward then backward).
    pub fn micro_batch(&self) -> impl Iterator<Item = &Op> {
        self.forward.iter().chain(self.backward.iter())
    }
}

/// The operation list of one optimizer step of one data-parallel replica.
#[derive(Clone, Debug, PartialEq)]
pub struct StepOps {
    /// Micro-batches per step (each runs every stage's `forward` and `backward` once).
    pub micro_batches: u32,
    /// One entry per pipeline stage.
    pub stages: Vec<StageOps>,
}

impl StepOps {
    /// Sum of `f(op)` over the whole step of one GPU per stage (micro-batch ops x micro-batches
    /// + per-step ops), summed over stages.
    pub fn total(&self, f: impl Fn(&Op) -> f64) -> f64 {
        self.stages
            .iter()
            .map(|s| {
                self.micro_batches as f64 * s.micro_batch().map(&f).sum::<f64>()
                    + s.per_step.iter().map(&f).sum::<f64>()
            })
            .sum()
    }
}

/// Token-expert assignments one GPU's local experts receive per micro-batch under uniform
/// routing (after the expert-TP all-gather), and per local expert: `(tokens*top_k, that/E_local)`.
/// The step model replaces these by each step's routing loads via [`Op::at_tokens`].
pub fn uniform_expert_tokens(model: &ModelSpec, plan: &ParallelPlan) -> (f64, f64) {
    let cfg = OpsConfig::default();
    let recv = uniform_received(&Ctx::new(model, plan, &cfg));
    (recv, recv / plan.experts_per_rank(model).max(1) as f64)
}

/// Bytes of HBM traffic per locally updated parameter of one optimizer step.
///
/// Adam / AdamW (mixed precision, `precision_bytes < 4`): apex fused Adam over fp32 main
/// params and grads reads g, p, m, v and writes p, m, v (28 B), Megatron copies main params to
/// the model params (read 4, write `precision_bytes`), and gradient clipping reads the grads for
/// the norm (4 B): 38 B at bf16. fp32 training: 28 + 4 = 32 B. [D] notes/hardware_constants.md
/// Sec. 6c (apex `multi_tensor_adam.cu`, Megatron `dist_optimizer.md`).
/// Adafactor without momentum (Shazeer & Stern 2018, Alg. 4 with beta1 = 0): read g twice
/// (factored row/column statistics, then the update) and p, write p: 16 B (fp32), plus the main
/// to model copy under mixed precision. Assumed from the algorithm (no measured source).
pub fn optimizer_bytes_per_param(kind: OptimizerKind, precision_bytes: f64) -> f64 {
    let mixed = precision_bytes < 4.0;
    let copy = if mixed { 4.0 + precision_bytes } else { 0.0 };
    match kind {
        OptimizerKind::Adam | OptimizerKind::AdamW => 28.0 + copy + 4.0,
        OptimizerKind::Adafactor => 16.0 + copy,
    }
}

/// Optimizer kernels per step: the update, the main-to-model copy and the gradient-norm
/// reduction, each one multi-tensor launch (apex `multi_tensor_apply` batches tensors; its
/// chunking into several launches for many tensors is ignored). notes Sec. 6c.
const OPTIMIZER_LAUNCHES: u32 = 3;

/// Kernels of Megatron-LM's vocab-parallel cross-entropy forward (max, subtract, exp, sum, log,
/// gather target, mask, mean): nominal, one per eager op of
/// `megatron/core/tensor_parallel/cross_entropy.py`.
const CROSS_ENTROPY_LAUNCHES: u32 = 8;
/// HBM bytes per logit of the cross-entropy forward besides reading the logits in compute
/// precision: the model casts them to fp32 (`vocab_parallel_cross_entropy(output.float(), ..)`,
/// write 4), then `_VocabParallelCrossEntropy.forward` runs one eager pass each: row max (read 4),
/// subtract the max (read 4, write 4), `torch.exp(.., out=)` (read 4, write 4), row sum (read
/// 4) and the in-place normalisation `exp_logits.div_(sum)` kept for the backward (read 4,
/// write 4): 36 B. Counted from `megatron/core/tensor_parallel/cross_entropy.py` (the same code
/// in Megatron-LM 2021-23 and GPT-NeoX `megatron/mpu/cross_entropy.py`); the target gather and
/// masks touch one element per row.
const CE_FWD_BYTES_FP32: f64 = 36.0;
/// HBM bytes per logit of the cross-entropy backward besides writing the logit gradient in
/// compute precision: `grad_input.mul_(grad_output)` on the saved fp32 softmax (read 4, write
/// 4) and the cast back through `.float()`'s backward (read 4): 12 B. Same source as
/// [`CE_FWD_BYTES_FP32`].
const CE_BWD_BYTES_FP32: f64 = 12.0;

/// Linear modules of a transformer layer Transformer Engine runs in FP8 (QKV, attention output,
/// fc1, fc2), each with its own weight cast.
const FP8_LINEARS_PER_LAYER: u32 = 4;

/// All-reduces over TP in the vocab-parallel cross-entropy: row max, target logit, exp-sum
/// (`megatron/core/tensor_parallel/cross_entropy.py`).
const CROSS_ENTROPY_TP_ALLREDUCES: u32 = 3;

/// Parameters of one layer on one GPU (TP-sharded; experts also EP-sharded).
fn layer_params(model: &ModelSpec, plan: &ParallelPlan, layer: u32) -> StageParams {
    let tp = plan.tp.max(1) as f64;
    let mut dense = model.layer_dense_params(layer);
    let mut expert = 0.0;
    if let Some(m) = model.moe().filter(|_| model.is_moe_layer(layer)) {
        dense += model.router_params() + m.shared_experts as f64 * model.expert_params();
        expert += plan.experts_per_rank(model) as f64 * model.expert_params();
    }
    StageParams {
        dense: dense / tp,
        expert: expert / tp,
    }
}

/// ZeRO-3 / FSDP: gather a layer's parameter shards before its forward and again before its
/// backward; reduce-scatter its gradients after its backward (Rajbhandari et al. 2020, ZeRO,
/// Sec. 7.2.2: 2 all-gathers + 1 reduce-scatter of the parameters per pass).
fn zero3_ops(c: &Ctx, sp: StageParams, dp: u32, edp: u32) -> (Vec<Op>, Vec<Op>, Vec<Op>) {
    let p = c.p;
    let mut gather = Vec::new();
    let mut scatter = Vec::new();
    for (group, size, n) in grad_groups(dp, edp, sp.dense, sp.expert) {
        gather.push(Op::comm(
            "zero3.param_gather",
            K::AllGather,
            group,
            size,
            n * p,
        ));
        scatter.push(Op::comm(
            "zero3.grad_scatter",
            K::ReduceScatter,
            group,
            size,
            n * grad_reduce_bytes(c),
        ));
    }
    (gather.clone(), gather, scatter)
}

/// Bytes per element of a gradient reduction: the scenario's `grad_reduce_dtype` if set, else
/// the gradients' own format (fp32 where the framework keeps fp32 variables).
fn grad_reduce_bytes(c: &Ctx) -> f64 {
    c.cfg
        .grad_reduce_dtype
        .map_or(c.cfg.framework.grad_sync_bytes(c.p), |d| d.bytes())
}

/// The data-parallel groups a stage's gradients are reduced and its parameters gathered over,
/// each with its parameters on this GPU: the dense ones over the `dp` data-parallel ranks, the
/// experts over the `edp` expert-data-parallel ranks; a group of one rank or without
/// parameters has nothing to sync and is left out.
pub(super) fn grad_groups(
    dp: u32,
    edp: u32,
    dense: f64,
    expert: f64,
) -> impl Iterator<Item = (GroupKind, u32, f64)> {
    [
        (GroupKind::Dp, dp, dense),
        (GroupKind::ExpertDp, edp, expert),
    ]
    .into_iter()
    .filter(|&(_, size, n)| size > 1 && n > 0.0)
}

fn with(mut ops: Vec<Op>, phase: Phase, layer: Option<u32>) -> Vec<Op> {
    for o in &mut ops {
        o.phase = phase;
        o.layer = layer;
    }
    ops
}

/// Name prefix of the unfused attention core's ops (`layer::unfused_core`).
const UNFUSED_CORE: &str = "attn.core.";

/// The operation list of one step of `model` under `plan` and framework settings `cfg`.
/// Expects a validated model and plan; errors if the batch does not divide into micro-batches
/// or an encoder-decoder is given pipeline stages ([`crate::workload::enc_dec::check_plan`]).
/// Routed ops hold the uniform-routing sizes (see [`uniform_expert_tokens`]).
pub fn step_ops(
    model: &ModelSpec,
    plan: &ParallelPlan,
    cfg: &OpsConfig,
) -> Result<StepOps, WorkloadError> {
    let micro_batches = plan.micro_batches()?;
    super::evolved_plan_fits(model, plan, cfg.framework, plan.precision)?;
    crate::workload::enc_dec::check_plan(model, plan)?;
    let c = Ctx::new(model, plan, cfg);
    let views = Views::of(model);
    let stacks = views.as_ref().map(|v| Stacks::new(model, v, plan, cfg));
    let pp = plan.pp.max(1);
    let stages = (0..pp).map(|s| stage_ops(&c, stacks.as_ref(), s)).collect();
    Ok(StepOps {
        micro_batches,
        stages,
    })
}

/// Vocab-parallel embedding of `c`'s tokens: look up T rows (masked to this TP rank's vocab
/// shard), then reduce over TP (reduce-scatter with sequence parallelism, except with learned
/// positions: all-reduce, see `positions::sp_scatter_after_add`); backward scatter-adds the rows
/// into the embedding gradient.
fn emit_embedding(e: &mut Emit, c: &Ctx) {
    let (p, d, t) = (c.p, c.d, c.t);
    let tp = c.plan.tp.max(1);
    let look = Op::compute("embed.lookup", K::Embedding, 0.0, 2.0 * t * d * p);
    let grad = Op {
        bytes: 3.0 * t * d * p,
        ..look.clone()
    };
    e.push(look, &[grad]);
    if tp > 1 {
        let (f, b) = if c.ts < t && !super::positions::sp_scatter_after_add(c) {
            (K::ReduceScatter, K::AllGather)
        } else {
            (K::AllReduce, K::AllReduce)
        };
        let fo = Op::comm("embed.tp_reduce", f, GroupKind::Tp, tp, t * d * c.tpw);
        let bo = Op {
            class: b,
            ..fo.clone()
        };
        e.push(
            fo,
            if b == K::AllReduce {
                &[]
            } else {
                std::slice::from_ref(&bo)
            },
        );
    }
}

/// One stage's ops; `stacks` holds an encoder-decoder's per-stack contexts (the encoder's
/// embedding and blocks at the input length, the decoder's embedding, blocks, head and loss at
/// the target length).
fn stage_ops(c: &Ctx, stacks: Option<&Stacks>, stage: u32) -> StageOps {
    let (model, plan) = (c.model, c.plan);
    let pp = plan.pp.max(1);
    let last = stage + 1 == pp;
    let (p, d, t) = (c.p, c.d, c.t);
    let tp = plan.tp.max(1);
    let dp = plan.dp.max(1);
    let edp = (plan.dp.max(1) / plan.ep.max(1)).max(1);
    let layers = stage_layers(model, plan, stage);
    let mut forward = Vec::new();
    // Backward groups in forward order; reversed at the end.
    let mut bwd_groups: Vec<Vec<Op>> = Vec::new();

    if stage == 0 {
        let mut bwd = Vec::new();
        let mut e = Emit {
            fwd: &mut forward,
            bwd: &mut bwd,
            layer: None,
        };
        let ec = stacks.map_or(c, |s| &s.enc);
        emit_embedding(&mut e, ec);
        // Learned positions and the embedding dropout (model keys `position`, `hidden_dropout`).
        super::positions::learned_input(&mut e, ec);
        super::dropout::embedding(&mut e, ec);
        bwd.reverse();
        bwd_groups.push(bwd);
    }
    let z3 = plan.zero_stage >= 3;
    for layer in layers.clone() {
        let mut fwd = Vec::new();
        let mut bwd = Vec::new();
        let (z_fwd, z_bwd, z_rs) = if z3 {
            zero3_ops(c, layer_params(model, plan, layer), dp, edp)
        } else {
            Default::default()
        };
        forward.extend(with(z_fwd, Phase::Forward, Some(layer)));
        let mut e = Emit {
            fwd: &mut fwd,
            bwd: &mut bwd,
            layer: Some(layer),
        };
        match stacks {
            None => emit_layer(&mut e, c, layer),
            Some(s) => {
                // The decoder's embedding of the targets opens its first block; the encoder's
                // final norm closes its last.
                let enc_end = model.encoder_layers();
                if layer == enc_end {
                    emit_embedding(&mut e, &s.dec);
                    super::positions::learned_input(&mut e, &s.dec);
                    super::dropout::embedding(&mut e, &s.dec);
                }
                emit_layer(&mut e, s.of(model, layer), layer);
                if layer + 1 == enc_end {
                    encoder_final_norm(&mut e, &s.enc);
                }
            }
        }
        bwd.reverse();
        let rc: Vec<Op> = match plan.recompute {
            Recompute::None => Vec::new(),
            // Selective recompute replays the attention core (Korthikanti et al. 2022, Sec. 5):
            // the flash kernel, or the unfused core's scores, softmax, dropout and context.
            Recompute::Selective => fwd
                .iter()
                .filter(|o| {
                    matches!(o.class, K::FlashAttention | K::FlashAttention1)
                        || o.name.starts_with(UNFUSED_CORE)
                })
                .cloned()
                .collect(),
            Recompute::Full => fwd.clone(),
            // DeepSeek-V3 report Sec. 3.2.3: every RMSNorm and the MLA up-projections.
            Recompute::NormsUpProj => fwd
                .iter()
                .filter(|o| o.class == K::Norm || o.name == "attn.q_up" || o.name == "attn.kv_up")
                .cloned()
                .collect(),
        };
        let mut group = with(z_bwd, Phase::Backward, Some(layer));
        group.extend(with(rc, Phase::Recompute, Some(layer)));
        group.extend(bwd);
        group.extend(with(z_rs, Phase::Backward, Some(layer)));
        forward.extend(fwd);
        bwd_groups.push(group);
    }
    if last {
        // The head and loss run on the decoder's tokens (an encoder-decoder's targets).
        let hc = stacks.map_or(c, |s| &s.dec);
        let t = hc.t;
        let mut bwd = Vec::new();
        let mut e = Emit {
            fwd: &mut forward,
            bwd: &mut bwd,
            layer: None,
        };
        let n = hc.ts * d;
        let kind = model.arch.norm;
        let nf = if kind == super::super::arch::NormKind::RmsNorm {
            4.0
        } else {
            7.0
        };
        e.mem(Op::compute("head.norm", K::Norm, nf * n, 2.0 * n * p), 1.5);
        if tp > 1 && hc.ts < t {
            let f = Op::comm("head.tp_gather", K::AllGather, GroupKind::Tp, tp, t * d * p);
            let b = Op {
                class: K::ReduceScatter,
                ..f.clone()
            };
            e.push(f, &[b]);
        }
        let vl = model.vocab as f64 / tp as f64;
        let head = Op::gemm("head.logits", t, vl, d, p);
        let (di, dw) = gemm_grads(&head, p);
        e.push(head, &[di, dw]);
        // Cross-entropy as the eager vocab-parallel loss of Megatron-LM / GPT-NeoX runs it, pass
        // by pass over the logits (bytes per logit in [`CE_FWD_BYTES_FP32`], [`CE_BWD_BYTES_FP32`]
        // plus the casts in compute precision `p`).
        let logits = t * vl;
        let ce = Op::compute(
            "loss.cross_entropy",
            K::CrossEntropy,
            5.0 * logits,
            (p + CE_FWD_BYTES_FP32) * logits,
        )
        .launches(CROSS_ENTROPY_LAUNCHES);
        let ce_b = Op {
            bytes: (p + CE_BWD_BYTES_FP32) * logits,
            flops: 2.0 * logits,
            launches: 2,
            ..ce.clone()
        };
        e.push(ce, &[ce_b]);
        if tp > 1 {
            let ar = Op::comm(
                "loss.tp_allreduce",
                K::AllReduce,
                GroupKind::Tp,
                tp,
                4.0 * t * CROSS_ENTROPY_TP_ALLREDUCES as f64,
            )
            .launches(CROSS_ENTROPY_TP_ALLREDUCES);
            e.push(ar, &[]);
        }
        bwd.reverse();
        bwd_groups.push(bwd);
    }
    // Groups run last-to-first; each group is in backward order.
    let mut backward: Vec<Op> = bwd_groups.into_iter().rev().flatten().collect();
    // Pipeline: activations to the next stage, gradients to the previous (on the sender).
    // Megatron-LM's scatter/gather optimization (Narayanan et al. 2021, Sec. 4.1; on by default,
    // `--no-scatter-gather-tensors-in-pipeline` turns it off): each TP rank sends only its
    // 1/tp chunk of the boundary activation across the inter-node link, and the receiving stage
    // all-gathers the chunks over its TP group (NVLink). With sequence parallelism each rank
    // already holds t/tp tokens, so nothing is gathered. (Under interleaving the receiver's
    // gather is charged once per stage and micro-batch, not once per model chunk.)
    let boundary = c.t * d * p / c.tp.max(1.0);
    let gather_on_receive = tp > 1 && c.ts >= t;
    if gather_on_receive && stage > 0 {
        let mut g = Op::comm("pp.recv_gather", K::AllGather, GroupKind::Tp, tp, t * d * p);
        g.phase = Phase::Forward;
        forward.insert(0, g);
    }
    if gather_on_receive && !last {
        let mut g = Op::comm("pp.recv_gather", K::AllGather, GroupKind::Tp, tp, t * d * p);
        g.phase = Phase::Backward;
        backward.insert(0, g);
    }
    if !last {
        let mut s = Op::comm(
            "pp.send_activation",
            K::SendRecv,
            GroupKind::Pp,
            2,
            boundary,
        );
        s.phase = Phase::Forward;
        forward.push(s);
    }
    if stage > 0 {
        let mut s = Op::comm("pp.send_grad", K::SendRecv, GroupKind::Pp, 2, boundary);
        s.phase = Phase::Backward;
        backward.push(s);
    }
    let per_step = per_step_ops(c, stage, &layers);
    StageOps {
        stage,
        layers,
        forward,
        backward,
        per_step,
    }
}

/// Gradient synchronisation, optimizer update and parameter gathers of one stage's GPU.
fn per_step_ops(c: &Ctx, stage: u32, layers: &Range<u32>) -> Vec<Op> {
    let (model, plan) = (c.model, c.plan);
    let p = c.p;
    let tp = plan.tp.max(1) as f64;
    let pp = plan.pp.max(1);
    let dp = plan.dp.max(1);
    let edp = (plan.dp.max(1) / plan.ep.max(1)).max(1);
    let mut sp = StageParams {
        dense: 0.0,
        expert: 0.0,
    };
    for l in layers.clone() {
        let lp = layer_params(model, plan, l);
        sp.dense += lp.dense;
        sp.expert += lp.expert;
    }
    let (v, d) = (model.vocab as f64, model.d_model as f64);
    let last = stage + 1 == pp;
    let mut other = 0.0; // embedding / head / final norm, not gathered per layer under ZeRO-3
    if stage == 0 {
        // The learned position table is replicated over TP (Megatron-LM `position_embeddings`
        // is a plain `torch.nn.Embedding`).
        other += v * d / tp + model.position_params();
    }
    if last {
        if !(model.arch.tied_embeddings && stage == 0) {
            other += v * d / tp;
        }
        other += model.final_norm_params() / tp;
    }
    let mut ops = Vec::new();
    // Tied embeddings across pipeline ends: all-reduce the word-embedding gradient between the
    // first and last stage (Megatron-LM `_allreduce_word_embedding_grads`).
    if model.arch.tied_embeddings && pp > 1 && (stage == 0 || last) {
        let mut o = Op::comm(
            "embed.tied_grad_allreduce",
            K::AllReduce,
            GroupKind::Pp,
            2,
            v * d / tp * grad_reduce_bytes(c),
        );
        o.phase = Phase::Backward;
        ops.push(o);
    }
    let z = plan.zero_stage;
    let dense = sp.dense + other;
    if z == 1 && c.cfg.framework == Framework::GptNeox {
        let tensors = super::deepspeed::param_tensors(c, layers.len() as u32, stage == 0, last);
        ops.extend(super::deepspeed::zero1_step_ops(
            c, dense, sp.expert, tensors, dp, edp,
        ));
        return ops;
    }
    // Gradient bytes on the wire: fp32 where the framework keeps fp32 variables.
    let gw = c.cfg.framework.grad_sync_bytes(p);
    // ZeRO 0: all-reduce; ZeRO 1/2: reduce-scatter the gradients and all-gather the updated
    // parameters (Megatron distributed optimizer, notes Sec. 6c); ZeRO 3: gradients were
    // reduce-scattered per layer, only the non-layer parameters remain.
    let (dense_synced, expert_synced) = if z >= 3 {
        (other, 0.0)
    } else {
        (dense, sp.expert)
    };
    for (group, size, n) in grad_groups(dp, edp, dense_synced, expert_synced) {
        let class = if z == 0 {
            K::AllReduce
        } else {
            K::ReduceScatter
        };
        let mut g = Op::comm("dp.grad_sync", class, group, size, n * grad_reduce_bytes(c));
        g.phase = Phase::Backward;
        ops.push(g);
    }
    // Optimizer over the locally owned shard.
    let (ds, es) = if z >= 1 {
        (dp as f64, edp as f64)
    } else {
        (1.0, 1.0)
    };
    let local = dense / ds + sp.expert / es;
    // fp32 variables: the optimizer reads fp32 gradients and writes the fp32 variables the
    // layers read (no separate main-to-model copy).
    let bpp = optimizer_bytes_per_param(
        c.cfg.optimizer,
        if c.cfg.framework.fp32_variables() {
            gw
        } else {
            p
        },
    );
    let mut o = Op::compute("optimizer.update", K::Optimizer, 12.0 * local, bpp * local)
        .launches(OPTIMIZER_LAUNCHES);
    o.phase = Phase::Optimizer;
    ops.push(o);
    if c.fp8 {
        // Transformer Engine casts every linear weight to FP8, as is and transposed, once per
        // step (`update_fp8_weights = is_first_microbatch is None or is_first_microbatch` in TE
        // `Linear.forward`): read bf16, write 2 x 1 B per weight of the stage's layers; one
        // launch per linear module (QKV, output projection, fc1, fc2).
        let w = sp.dense + sp.expert;
        let mut cast = Op::compute("fp8.weight_cast", K::Elementwise, w, (c.p + 2.0 * c.pg) * w)
            .launches(FP8_LINEARS_PER_LAYER * layers.len().max(1) as u32);
        cast.phase = Phase::Optimizer;
        ops.push(cast);
    }
    if (1..=2).contains(&z) {
        for (group, size, n) in grad_groups(dp, edp, dense, sp.expert) {
            let mut g = Op::comm("dp.param_gather", K::AllGather, group, size, n * p);
            g.phase = Phase::Optimizer;
            ops.push(g);
        }
    }
    ops
}
