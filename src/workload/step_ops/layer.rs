//! Forward ops of one transformer layer (and their backward counterparts) for one micro-batch
//! on one GPU, in the order Megatron-LM launches them.
//!
//! Element-wise FLOP counts are nominal (a few FLOP per element); these kernels are priced by
//! their bytes. Sources of the launch counts and layouts are beside each op.

use super::super::arch::{Act, NormKind};
use super::super::model::ModelSpec;
use super::super::plan::ParallelPlan;
use super::super::precision::Precision;
pub(super) use super::attn_core::core;
use super::dropout::residual;
use super::moe::moe_ffn;
use super::{Fp8Recipe, Grad, GroupKind, KernelClass as K, Load, Op, OpsConfig, Phase, RoutedBy};

/// FLOP per element of a norm (square, mean, rsqrt, scale; LayerNorm also centres): nominal.
fn norm_flops_per_elem(kind: NormKind) -> f64 {
    match kind {
        NormKind::RmsNorm => 4.0,
        NormKind::LayerNorm => 7.0,
    }
}

/// Bytes of a bf16 element: what FP8 training keeps its activations, gradients and weights in.
const BF16_BYTES: f64 = 2.0;

/// Shared sizes of one micro-batch on one GPU.
pub(super) struct Ctx<'a> {
    pub model: &'a ModelSpec,
    pub plan: &'a ParallelPlan,
    pub cfg: &'a OpsConfig,
    /// Tokens of the micro-batch (`micro_batch_seqs * seq_len`).
    pub t: f64,
    /// Tokens a GPU holds between TP regions (`t / tp` with sequence parallelism).
    pub ts: f64,
    /// Tensor-parallel degree.
    pub tp: f64,
    /// Activation, gradient and parameter bytes per element. Under FP8 training this is bf16
    /// (2): Transformer Engine casts only GEMM inputs to FP8 and keeps activations, GEMM
    /// outputs, gradients and weights in higher precision (TE `Linear`: `fp8_cast_transpose_fused`
    /// of the input, `cast_if_needed(.., activation_dtype)` elsewhere; DeepSeek-V3 report
    /// Sec. 3.3: FP8 GEMMs, BF16/FP32 for everything else).
    pub p: f64,
    /// Bytes per element of a GEMM input (1 under FP8, else `p`).
    pub pg: f64,
    /// Transformer Engine FP8 training (bf16 activations, casts around every linear layer).
    pub fp8: bool,
    /// Model width.
    pub d: f64,
    /// Bytes per element of the tensor-parallel collectives (`p`, or fp32 where the framework
    /// widens them: [`Framework::tp_collective_bytes`]).
    pub tpw: f64,
    /// Self-attention span of the layers emitted with this context (causal over `seq_len` for
    /// a decoder-only model; an encoder stack's is bidirectional).
    pub span: Span,
    /// The encoder output the layers cross-attend to (`None`: no cross-attention; set for an
    /// encoder-decoder's decoder stack, see `enc_dec`).
    pub cross: Option<super::enc_dec::Cross>,
}

/// Query and key extent of one attention core, per sequence.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Span {
    /// Query rows [tokens].
    pub q: f64,
    /// Key/value rows [tokens].
    pub kv: f64,
    /// Mean keys each query attends to (FlashAttention skips masked blocks) [tokens].
    pub keys_mean: f64,
}

impl<'a> Ctx<'a> {
    pub fn new(model: &'a ModelSpec, plan: &'a ParallelPlan, cfg: &'a OpsConfig) -> Self {
        let t = plan.micro_batch_seqs as f64 * model.seq_len as f64;
        let tp = plan.tp.max(1) as f64;
        let sp = cfg.sequence_parallel && plan.tp > 1;
        // Transformer Engine FP8 keeps activations in bf16 and casts around each linear; the
        // DeepSeek recipe casts once where a tensor enters a linear or the dispatch, and keeps
        // norms, attention, residuals and the combine in BF16 (DeepSeek-V3 report Sec. 3.3.1:
        // "the embedding module, the output head, MoE gating modules, normalization operators,
        // and attention operators" in original precision; Sec. 3.3.3: combine in BF16): so
        // activations move at 2 bytes under either recipe, GEMM inputs and dispatch at `pg`.
        let fp8 =
            plan.precision == Precision::Fp8 && cfg.fp8_recipe == Fp8Recipe::TransformerEngine;
        let pg = plan.precision_bytes();
        let p = if plan.precision == Precision::Fp8 {
            BF16_BYTES
        } else {
            pg
        };
        Ctx {
            model,
            plan,
            cfg,
            t,
            ts: if sp { t / tp } else { t },
            tp,
            p,
            pg,
            fp8,
            d: model.d_model as f64,
            tpw: cfg.framework.tp_collective_bytes(p, plan.tp),
            span: Span {
                q: model.seq_len as f64,
                kv: model.seq_len as f64,
                keys_mean: model.causal_keys_mean(),
            },
            cross: None,
        }
    }

    pub(super) fn sp(&self) -> bool {
        self.cfg.sequence_parallel && self.plan.tp > 1
    }
}

/// Forward ops and their backward ops, appended in forward order; `bwd` is filled so that
/// reversing it gives the backward order.
pub(super) struct Emit<'e> {
    pub fwd: &'e mut Vec<Op>,
    pub bwd: &'e mut Vec<Op>,
    pub layer: Option<u32>,
}

impl Emit<'_> {
    /// Push a forward op and its backward ops (given in backward execution order).
    pub fn push(&mut self, mut f: Op, bwd: &[Op]) {
        f.layer = self.layer;
        f.phase = Phase::Forward;
        self.fwd.push(f);
        for b in bwd.iter().rev() {
            let mut b = b.clone();
            b.layer = self.layer;
            b.phase = Phase::Backward;
            self.bwd.push(b);
        }
    }

    /// A GEMM and its backward (input gradient `m x k` over `n`, weight gradient `k x n` over `m`).
    pub fn gemm(&mut self, name: &'static str, m: f64, n: f64, k: f64, p: f64) {
        let f = Op::gemm(name, m, n, k, p);
        let (di, dw) = gemm_grads(&f, p);
        self.push(f, &[di, dw]);
    }

    /// A linear layer's GEMM `m x n x k` (input `m x k`, weight `k x n`) and its backward, plus
    /// the bias-gradient reduction when the model has biases and, under FP8, Transformer
    /// Engine's casts. `after_norm`: the input comes straight from a norm (TE `LayerNormLinear`
    /// fuses norm and cast, leaving only the transpose for the weight gradient).
    ///
    /// FP8 (TE `Linear` forward / `grad_output_preprocess`): the GEMMs read FP8 inputs (1 B) and
    /// write bf16; forward, `fp8_cast_transpose_fused` reads the bf16 input and writes it in FP8
    /// twice (as is, and transposed for the weight-gradient GEMM), or after a fused norm one
    /// `fp8_transpose` (read 1 B, write 1 B); backward, the output gradient gets the same
    /// cast-transpose (with the bias gradient fused when there is one). Amax is reduced inside
    /// these kernels; weights are cast once per step (`per_step_ops`).
    pub fn linear(
        &mut self,
        c: &Ctx,
        name: &'static str,
        m: f64,
        n: f64,
        k: f64,
        after_norm: bool,
    ) {
        let p = c.p;
        let mut f = Op::gemm(name, m, n, k, p);
        let (mut di, mut dw) = gemm_grads(&f, p);
        let mut bwd = Vec::with_capacity(4);
        if c.fp8 {
            let g = c.pg;
            f.bytes = g * (m * k + k * n) + p * m * n;
            di.bytes = g * (m * n + k * n) + p * m * k;
            dw.bytes = g * (m * k + m * n) + p * k * n;
            let cast_in = if after_norm {
                2.0 * g * m * k
            } else {
                (p + 2.0 * g) * m * k
            };
            self.push(
                Op::compute("fp8.cast_transpose", K::Elementwise, m * k, cast_in),
                &[],
            );
            bwd.push(Op::compute(
                "fp8.cast_transpose",
                K::Elementwise,
                m * n,
                (p + 2.0 * g) * m * n,
            ));
        } else if c.model.arch.bias {
            // (Under FP8 the bias gradient rides in TE's `fp8_cast_transpose_bgrad_fused`.) A
            // row-parallel layer (input `k` split over TP, output `d`) adds its bias after the
            // reduce: on the sequence-sharded rows.
            let rows = if after_norm || n != c.d { m } else { c.ts };
            bwd.push(bias_grad(c, rows, n));
        }
        bwd.push(di);
        bwd.push(dw);
        self.push(f, &bwd);
    }

    /// A memory-bound op whose backward moves `bwd_bytes_factor` times its bytes.
    pub fn mem(&mut self, f: Op, bwd_bytes_factor: f64) {
        let b = Op {
            bytes: f.bytes * bwd_bytes_factor,
            flops: f.flops * bwd_bytes_factor,
            ..f.clone()
        };
        self.push(f, &[b]);
    }
}

/// Backward GEMMs of a forward GEMM (2x its FLOP). Routed loads follow: the input gradient has
/// the tokens as rows, the weight gradient as its reduction dimension.
pub(super) fn gemm_grads(f: &Op, p: f64) -> (Op, Op) {
    let g = f.gemm.unwrap_or(super::GemmShape {
        m: 0.0,
        n: 0.0,
        k: 0.0,
        groups: 1,
    });
    let groups = g.groups as f64;
    let weights = groups * g.k * g.n;
    let shaped = |m: f64, n: f64, k: f64, grad: Grad, gemm_m: bool| {
        let mut op = Op::gemm(f.name, m, n, k, p);
        op.class = f.class;
        op.bytes = p * (g.m * g.k + g.m * g.n + weights);
        op.grad = Some(grad);
        if let Some(s) = &mut op.gemm {
            s.groups = g.groups;
        }
        op.launches = f.launches;
        if let Load::Routed {
            by,
            tokens,
            flops_per_token,
            bytes_per_token,
            ..
        } = f.load
        {
            op.load = Load::Routed {
                by,
                tokens,
                flops_per_token,
                bytes_per_token,
                comm_bytes_per_token: 0.0,
                gemm_m,
            };
        }
        op
    };
    (
        shaped(g.m, g.k, g.n, Grad::Input, true),
        shaped(g.k, g.n, g.m, Grad::Weight, false),
    )
}

/// Bias gradient of a linear layer with `rows x width` outputs: the output gradient summed over
/// the tokens (Megatron-LM / GPT-NeoX `grad_output.sum(dim=0)`, or autograd's reduction of an
/// expanded bias in the fused bias-GELU and bias-dropout-add kernels): read the gradient once,
/// write `width` fp32 sums.
fn bias_grad(c: &Ctx, rows: f64, width: f64) -> Op {
    Op::compute(
        "linear.bias_grad",
        K::Elementwise,
        rows * width,
        rows * width * c.p + 4.0 * width,
    )
}

pub(super) fn routed(mut op: Op, by: RoutedBy, tokens: f64) -> Op {
    let per = |x: f64, fixed: f64| {
        if tokens > 0.0 {
            (x - fixed) / tokens
        } else {
            0.0
        }
    };
    // Weights (the fixed bytes of a GEMM) do not follow the load.
    let fixed_bytes = op.gemm.map_or(0.0, |g| {
        g.groups as f64 * g.k * g.n * op.bytes
            / (g.m * g.k + g.groups as f64 * g.k * g.n + g.m * g.n).max(1.0)
    });
    op.load = Load::Routed {
        by,
        tokens,
        flops_per_token: per(op.flops, 0.0),
        bytes_per_token: per(op.bytes, fixed_bytes),
        comm_bytes_per_token: op.comm.map_or(0.0, |c| per(c.bytes_per_rank, 0.0)),
        gemm_m: true,
    };
    op
}

/// A norm over `rows x width` elements (read x, write y; backward reads x and dy, writes dx).
pub(super) fn norm(e: &mut Emit, c: &Ctx, name: &'static str, rows: f64, width: f64) {
    let n = rows * width;
    let kind = c.model.arch.norm;
    e.mem(
        Op::compute(name, K::Norm, norm_flops_per_elem(kind) * n, 2.0 * n * c.p),
        1.5,
    );
}

/// Entering a tensor-parallel region: all-gather of the sequence shards (backward:
/// reduce-scatter), or nothing forward and an all-reduce of the input gradient backward.
pub(super) fn tp_enter(e: &mut Emit, c: &Ctx, name: &'static str, bytes: f64) {
    if c.plan.tp <= 1 {
        return;
    }
    // Callers size the buffer in activation bytes `p`; the wire may be wider (`c.tpw`).
    let bytes = bytes / c.p * c.tpw;
    let tp = c.plan.tp;
    if c.sp() {
        let f = Op::comm(name, K::AllGather, GroupKind::Tp, tp, bytes);
        let b = Op::comm(name, K::ReduceScatter, GroupKind::Tp, tp, bytes);
        e.push(f, &[b]);
    } else {
        let b = Op::comm(name, K::AllReduce, GroupKind::Tp, tp, bytes);
        let mut b = b;
        b.layer = e.layer;
        b.phase = Phase::Backward;
        e.bwd.push(b);
    }
}

/// Leaving a tensor-parallel region: reduce-scatter (backward: all-gather) or all-reduce.
pub(super) fn tp_exit(e: &mut Emit, c: &Ctx, name: &'static str, bytes: f64) {
    if c.plan.tp <= 1 {
        return;
    }
    // Callers size the buffer in activation bytes `p`; the wire may be wider (`c.tpw`).
    let bytes = bytes / c.p * c.tpw;
    let tp = c.plan.tp;
    if c.sp() {
        let f = Op::comm(name, K::ReduceScatter, GroupKind::Tp, tp, bytes);
        let b = Op::comm(name, K::AllGather, GroupKind::Tp, tp, bytes);
        e.push(f, &[b]);
    } else {
        e.push(Op::comm(name, K::AllReduce, GroupKind::Tp, tp, bytes), &[]);
    }
}

/// Attention block: norm, QKV (or MLA projections), rotary (or no per-layer position op; see
/// `positions`), the attention core (flash, or the unfused Megatron-LM core; with the position
/// bias and attention dropout the model has), output projection, TP collectives, residual.
pub(super) fn attention(e: &mut Emit, c: &Ctx) {
    let (t, p, d) = (c.t, c.p, c.d);
    norm(e, c, "attn.norm", c.ts, d);
    tp_enter(e, c, "attn.tp_gather", t * d * p);
    attention_inner(e, c);
    tp_exit(e, c, "attn.tp_reduce", t * d * p);
    residual(e, c, "attn.residual");
}

/// The attention block between its TP entry and exit: QKV (or MLA) projections, positions,
/// the core, the output projection (its partial sums over TP).
pub(super) fn attention_inner(e: &mut Emit, c: &Ctx) {
    let m = c.model;
    let (t, tp, p, d) = (c.t, c.tp, c.p, c.d);
    let h = m.heads as f64;
    let hl = h / tp;
    let dqk = m.qk_head_dim() as f64;
    let dv = m.v_head_dim() as f64;
    let (kv_local, rope_elems) = match &m.arch.mla {
        None => {
            let kvh = m.kv_heads as f64 / tp;
            e.linear(c, "attn.qkv", t, (hl + 2.0 * kvh) * dqk, d, true);
            (kvh, t * (hl + kvh) * dqk)
        }
        Some(mla) => {
            // DeepSeek-V2 Sec. 2.1.2-2.1.3; the down-projections are replicated over TP
            // (Megatron-LM MLA `linear_q_down_proj` / `linear_kv_down_proj`, "duplicated").
            let ql = mla.q_lora_rank as f64;
            let kvl = mla.kv_lora_rank as f64;
            let rope = mla.qk_rope_head_dim as f64;
            if mla.q_lora_rank > 0 {
                e.gemm("attn.q_down", t, ql, d, p);
                norm(e, c, "attn.q_norm", t, ql);
                e.gemm("attn.q_up", t, hl * dqk, ql, p);
            } else {
                e.gemm("attn.q", t, hl * dqk, d, p);
            }
            e.gemm("attn.kv_down", t, kvl + rope, d, p);
            norm(e, c, "attn.kv_norm", t, kvl);
            e.gemm(
                "attn.kv_up",
                t,
                hl * (mla.qk_nope_head_dim as f64 + dv),
                kvl,
                p,
            );
            (hl, t * (hl + 1.0) * rope)
        }
    };
    super::positions::rotary(e, c, rope_elems);
    super::positions::transformer_xl(e, c, dqk, c.span);
    core(e, c, kv_local, dqk, dv, c.span);
    e.linear(c, "attn.out", t, d, hl * dv, false);
}

/// Activation of an FFN over `elems` hidden elements: SwiGLU reads gate and up, writes the
/// product (backward reads 3, writes 2: 5/3 of the forward traffic); GELU reads 1 writes 1
/// (backward reads 2 writes 1).
pub(super) fn act_op(c: &Ctx, name: &'static str, elems: f64) -> (Op, f64) {
    match c.model.arch.act {
        Act::SwiGlu => (
            Op::compute(name, K::Elementwise, 5.0 * elems, 3.0 * elems * c.p),
            5.0 / 3.0,
        ),
        Act::Gelu => (
            Op::compute(name, K::Elementwise, 8.0 * elems, 2.0 * elems * c.p),
            1.5,
        ),
    }
}

/// Dense FFN block of width `f` (full width; sharded over TP here).
pub(super) fn dense_ffn(e: &mut Emit, c: &Ctx, f: f64) {
    let (t, p, d) = (c.t, c.p, c.d);
    norm(e, c, "ffn.norm", c.ts, d);
    tp_enter(e, c, "ffn.tp_gather", t * d * p);
    dense_ffn_inner(e, c, f);
    tp_exit(e, c, "ffn.tp_reduce", t * d * p);
    residual(e, c, "ffn.residual");
}

/// The dense FFN between its TP entry and exit: fc1, activation, fc2 (partial sums over TP).
pub(super) fn dense_ffn_inner(e: &mut Emit, c: &Ctx, f: f64) {
    let (t, tp, d) = (c.t, c.tp, c.d);
    let fl = f / tp;
    e.linear(
        c,
        "ffn.fc1",
        t,
        c.model.arch.act.fc1_matrices() * fl,
        d,
        true,
    );
    let (a, k) = act_op(c, "ffn.act", t * fl);
    e.mem(a, k);
    e.linear(c, "ffn.fc2", t, d, fl, false);
}

/// Forward ops of `layer` for one micro-batch on one GPU (phase `Forward`), in launch order.
/// Routed ops hold the uniform-routing sizes.
pub fn layer_forward_ops(
    model: &ModelSpec,
    plan: &ParallelPlan,
    cfg: &OpsConfig,
    layer: u32,
) -> Vec<Op> {
    let c = Ctx::new(model, plan, cfg);
    // An encoder-decoder's block runs at its stack's length (with cross-attention in the decoder).
    let views = super::enc_dec::Views::of(model);
    let stacks = views
        .as_ref()
        .map(|v| super::enc_dec::Stacks::new(model, v, plan, cfg));
    let lc = stacks.as_ref().map_or(&c, |s| s.of(model, layer));
    let (mut fwd, mut bwd) = (Vec::new(), Vec::new());
    let mut e = Emit {
        fwd: &mut fwd,
        bwd: &mut bwd,
        layer: Some(layer),
    };
    emit_layer(&mut e, lc, layer);
    fwd
}

/// Forward and backward ops of one layer.
pub(super) fn emit_layer(e: &mut Emit, c: &Ctx, layer: u32) {
    if c.model.arch.block.et().is_some() {
        return super::evolved::emit_cell(e, c, layer);
    }
    use super::fp8::{amax_reductions, RegionEnd};
    let moe = c.model.is_moe_layer(layer);
    amax_reductions(e, c, moe, RegionEnd::Backward);
    super::fp8::scale_updates(e, c, moe);
    if c.model.arch.parallel_residual {
        // Validated: only dense FFN layers (ModelSpec::validate).
        super::parallel::parallel_block(e, c, c.model.ffn_hidden as f64);
    } else {
        attention(e, c);
        if let Some(x) = c.cross {
            super::enc_dec::cross_attention(e, c, layer, x);
        }
        if moe {
            moe_ffn(e, c);
        } else {
            dense_ffn(e, c, c.model.ffn_hidden as f64);
        }
    }
    amax_reductions(e, c, moe, RegionEnd::Forward);
}
