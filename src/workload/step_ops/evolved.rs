//! Evolved Transformer cells (So, Liang & Le 2019, arXiv:1901.11117) op by op as Tensor2Tensor's
//! `models/evolved_transformer.py` runs them (github.com/tensorflow/tensor2tensor, read 2026-12-02):
//! the encoder and decoder cells' gated linear unit, branched dense / convolution layers,
//! depthwise-separable convolutions, wide and standard attention, swish FFN, the LayerNorm before
//! every branch (`layer_preprocess`, `norm_type = "layer"`) and the dropout + residual after it
//! (`layer_postprocess`, sequence `"da"`), for one micro-batch on one chip (`tp = 1`).
//!
//! Kernel classes: dense layers, pointwise (1x1) convolutions, the encoder's standard 3x1
//! convolution (im2col: a GEMM with a `3 d` reduction) and the attention projections are GEMMs;
//! a depthwise convolution (`k` taps per channel, `2 k` FLOP per output element) is streamed
//! work priced by its bytes, as are the activations, the GLU product, dropout, masks and adds;
//! norms are `Norm`. Like the rest of the op list, XLA's fusion of element-wise producers and
//! consumers into neighbouring kernels is not modelled: each such op moves its tensors once.
//! Parameter and weight shapes are [`ModelSpec::et_cell`]'s.

use super::super::error::{invalid, WorkloadError};
use super::super::model::{et_wide_heads, ModelSpec};
use super::super::plan::{ParallelPlan, Recompute};
use super::super::precision::Precision;
use super::attn_core::core_heads;
use super::dropout::{residual, MASK_BYTES};
use super::layer::{gemm_grads, norm, Ctx, Emit, Span};
use super::{Framework, KernelClass as K, Op, Phase};

/// Refuse the plans the Evolved Transformer op list does not model. `Ok` for standard blocks.
pub fn evolved_plan_fits(
    model: &ModelSpec,
    plan: &ParallelPlan,
    framework: Framework,
    precision: Precision,
) -> Result<(), WorkloadError> {
    let Some(et) = model.arch.block.et() else {
        return Ok(());
    };
    if plan.tp > 1 {
        return Err(invalid(
            "plan.tp",
            plan.tp,
            "the Evolved Transformer cells are modelled data-parallel only (Tensor2Tensor's TPU runs, CrossShardOptimizer); valid: tp = 1",
        ));
    }
    if plan.pp > 1 && et.encoder_cells > 0 {
        return Err(invalid(
            "plan.pp",
            plan.pp,
            "with encoder_layers > 0 every decoder cell reads the encoder output, which a pipeline would have to send to every stage (not modelled); valid: pp = 1",
        ));
    }
    if precision == Precision::Fp8 {
        return Err(invalid(
            "training.precision",
            "fp8",
            "the Evolved Transformer cells have no FP8 recipe (Transformer Engine casts are per standard linear); valid: bf16, fp16, fp32, tf32",
        ));
    }
    if framework == Framework::GptNeox {
        return Err(invalid(
            "training.framework",
            "gpt-neox",
            "GPT-NeoX has no Evolved Transformer; valid: tpu-estimator (Tensor2Tensor), mesh-tensorflow, megatron",
        ));
    }
    Ok(())
}

/// Forward and backward ops of Evolved Transformer cell `layer` (an encoder cell for the first
/// `encoder_layers` layers, else a decoder cell).
pub(super) fn emit_cell(e: &mut Emit, c: &Ctx, layer: u32) {
    let Some(cell) = c.model.et_cell(layer) else {
        return;
    };
    if cell.encoder {
        encoder_cell(e, c, layer);
    } else {
        decoder_cell(e, c, cell.cross);
    }
}

/// Dropout rate of the cells' branch outputs and hiddens (T2T `layer_prepostprocess_dropout`):
/// the arch key `hidden_dropout`. The attention probabilities' rate is `attention_dropout`, read
/// by the shared attention core.
fn dropout_rate(c: &Ctx) -> f64 {
    c.model.arch.hidden_dropout
}

/// A streamed element-wise op over `elems` elements reading `reads` and writing `writes`
/// tensors of that size; its backward moves `bwd` times the bytes.
fn ew(e: &mut Emit, c: &Ctx, name: &'static str, elems: f64, rw: (f64, f64), bwd: f64) {
    let (reads, writes) = rw;
    e.mem(
        Op::compute(name, K::Elementwise, elems, (reads + writes) * elems * c.p),
        bwd,
    );
}

/// `tf.nn.dropout` over `elems` elements: read x, write y and the keep-mask; backward reads dy
/// and the mask, writes dx. Nothing when the rate is 0.
fn dropout(e: &mut Emit, c: &Ctx, name: &'static str, elems: f64) {
    if dropout_rate(c) > 0.0 {
        e.mem(
            Op::compute(
                name,
                K::Elementwise,
                elems,
                (2.0 * c.p + MASK_BYTES) * elems,
            ),
            1.0,
        );
    }
}

/// A unary activation (ReLU, swish, sigmoid): read 1, write 1; backward reads 2, writes 1.
fn act(e: &mut Emit, c: &Ctx, name: &'static str, elems: f64) {
    ew(e, c, name, elems, (1.0, 1.0), 1.5);
}

/// `layer_postprocess` with sequence "da": dropout of the branch output, then the residual add.
fn post(e: &mut Emit, c: &Ctx, name: &'static str) {
    dropout(e, c, "et.post.dropout", c.t * c.d);
    residual(e, c, name);
}

/// A `Dense` / pointwise-conv GEMM `m x n x k` and its backward; with a bias, the bias gradient
/// (the output gradient summed over the rows: read it once, write `n` fp32 sums).
fn dense(e: &mut Emit, c: &Ctx, name: &'static str, (m, n, k): (f64, f64, f64), bias: bool) {
    let f = Op::gemm(name, m, n, k, c.p);
    let (di, dw) = gemm_grads(&f, c.p);
    if bias {
        let bg = Op::compute("et.bias_grad", K::Elementwise, m * n, m * n * c.p + 4.0 * n);
        e.push(f, &[bg, di, dw]);
    } else {
        e.push(f, &[di, dw]);
    }
}

/// A depthwise convolution of `k` taps over `width` channels of the micro-batch's tokens:
/// forward reads the input and writes the output (`2 k` FLOP per output element); backward the
/// input gradient (the transposed convolution, same traffic) and the filter gradient (reads the
/// input and the output gradient, `2 k` FLOP per element, writes `k x width` fp32 sums).
fn depthwise(e: &mut Emit, c: &Ctx, name: &'static str, width: f64, k: f64) {
    let n = c.t * width;
    let f = Op::compute(
        name,
        K::Elementwise,
        2.0 * k * n,
        2.0 * n * c.p + k * width * c.p,
    );
    let dx = f.clone();
    let dw = Op::compute(
        name,
        K::Elementwise,
        2.0 * k * n,
        2.0 * n * c.p + 4.0 * k * width,
    );
    e.push(f, &[dx, dw]);
}

/// `SeparableConv1D(out, k)`: a depthwise convolution over `input` channels, then a pointwise
/// `input -> out` GEMM with a bias (depth multiplier 1, the TF default).
fn separable(e: &mut Emit, c: &Ctx, names: (&'static str, &'static str), io: (f64, f64), k: f64) {
    let (input, out) = io;
    depthwise(e, c, names.0, input, k);
    dense(e, c, names.1, (c.t, out, input), true);
}

/// T2T `common_attention.multihead_attention` with `heads` heads over `d` key/value channels:
/// q, k, v projections (`compute_attention_component`, no bias; k and v from the encoder output
/// for an attend-to-encoder branch, as many tokens as the decoder here), the attention core
/// (`step_ops::attn_core`, the standard block's: T2T's `dot_product_attention` under
/// `attention_kernel = "unfused"`, its dropout at `attention_dropout`), the output projection.
/// An attend-to-encoder branch's backward adds its gradient into the encoder output's.
fn attention(e: &mut Emit, c: &Ctx, heads: f64, cross: bool, causal: bool) {
    let (t, d) = (c.t, c.d);
    dense(e, c, "et.attn.q", (t, d, d), false);
    dense(e, c, "et.attn.k", (t, d, d), false);
    dense(e, c, "et.attn.v", (t, d, d), false);
    // Self-attention over the cell's own tokens (causal in the decoder); the encoder and the
    // attend-to-encoder branches see every key (the encoder runs on as many tokens).
    let s = c.model.seq_len as f64;
    let span = if causal {
        c.span
    } else {
        Span {
            q: s,
            kv: s,
            keys_mean: s,
        }
    };
    let dh = d / heads;
    core_heads(e, c, heads, heads, dh, dh, span);
    dense(e, c, "et.attn.out", (t, d, d), false);
    if cross {
        let mut g = Op::compute(
            "et.attn.enc_grad_add",
            K::Elementwise,
            t * d,
            3.0 * t * d * c.p,
        );
        g.layer = e.layer;
        g.phase = Phase::Backward;
        e.bwd.push(g);
    }
}

/// `evolved_transformer_encoder`, one layer (`et_encoder_self_attention` on, the default).
fn encoder_cell(e: &mut Emit, c: &Ctx, layer: u32) {
    let (t, d) = (c.t, c.d);
    let h = c.model.heads as f64;
    if layer == 0 {
        // The inputs' embedding lookup (shared with the targets' in Meena), scatter-add backward.
        let look = Op::compute("et.enc_embed", K::Embedding, 0.0, 2.0 * t * d * c.p);
        let grad = Op {
            bytes: 3.0 * t * d * c.p,
            ..look.clone()
        };
        e.push(look, &[grad]);
        // T2T `transformer_encode`: the embedded inputs' dropout at
        // `layer_prepostprocess_dropout` (the targets' is the stack input's, `build`).
        super::dropout::embedding(e, c);
    }
    // Gated linear unit: values * sigmoid(gates), two d x d dense layers.
    norm(e, c, "et.glu.norm", t, d);
    dense(e, c, "et.glu.values", (t, d, d), true);
    dense(e, c, "et.glu.gates", (t, d, d), true);
    ew(e, c, "et.glu.mul", t * d, (2.0, 1.0), 5.0 / 3.0);
    post(e, c, "et.glu.residual");
    // Branches: ReLU dense d -> 4d beside a ReLU 3x1 conv d -> d/2, summed (the right one
    // zero-padded to 4d), LayerNorm over 4d, a 9x1 separable conv 4d -> d/2 (padded to d).
    norm(e, c, "et.conv.norm", t, d);
    ew(e, c, "et.conv.mask", t * d, (1.0, 1.0), 1.0);
    dense(e, c, "et.conv.left", (t, 4.0 * d, d), true);
    act(e, c, "et.conv.relu", t * 4.0 * d);
    dropout(e, c, "et.conv.dropout", t * 4.0 * d);
    dense(e, c, "et.conv.conv3x1", (t, d / 2.0, 3.0 * d), true);
    act(e, c, "et.conv.relu", t * d / 2.0);
    dropout(e, c, "et.conv.dropout", t * d / 2.0);
    ew(e, c, "et.conv.add", t * 4.0 * d, (1.125, 1.0), 1.0);
    norm(e, c, "et.conv.norm", t, 4.0 * d);
    ew(e, c, "et.conv.mask", t * 4.0 * d, (1.0, 1.0), 1.0);
    separable(
        e,
        c,
        ("et.conv.sep9x1.depthwise", "et.conv.sep9x1.pointwise"),
        (4.0 * d, d / 2.0),
        9.0,
    );
    post(e, c, "et.conv.residual");
    // Self-attention over the whole input (padding bias only).
    norm(e, c, "et.attn.norm", t, d);
    attention(e, c, h, false, false);
    post(e, c, "et.attn.residual");
    // ReLU FFN d -> 4d -> d.
    ffn(e, c, "et.ffn.relu", false);
    if c.model.et_cell(layer + 1).is_some_and(|n| !n.encoder) {
        // The encoder's output norm (`layer_preprocess` after the last layer).
        norm(e, c, "et.enc.final_norm", t, d);
    }
}

/// The dense layers of a cell: norm, `d -> 4d` with ReLU (encoder) or swish (decoder), dropout,
/// (decoder: LayerNorm over 4d), `4d -> d`, dropout + residual.
fn ffn(e: &mut Emit, c: &Ctx, act_name: &'static str, decoder: bool) {
    let (t, d) = (c.t, c.d);
    norm(e, c, "et.ffn.norm", t, d);
    dense(e, c, "et.ffn.fc1", (t, 4.0 * d, d), true);
    act(e, c, act_name, t * 4.0 * d);
    dropout(e, c, "et.ffn.dropout", t * 4.0 * d);
    if decoder {
        norm(e, c, "et.ffn.norm", t, 4.0 * d);
    }
    dense(e, c, "et.ffn.fc2", (t, d, 4.0 * d), true);
    post(e, c, "et.ffn.residual");
}

/// `evolved_transformer_decoder`, one layer; `cross`: with the attend-to-encoder branches.
fn decoder_cell(e: &mut Emit, c: &Ctx, cross: bool) {
    let (t, d) = (c.t, c.d);
    let h = c.model.heads as f64;
    let wide = et_wide_heads(c.model.heads) as f64;
    // Wide (up to 16-head) causal self-attention beside the first attend-to-encoder branch.
    norm(e, c, "et.wide_attn.norm", t, d);
    attention(e, c, wide, false, true);
    if cross {
        attention(e, c, h, true, false);
        dropout(e, c, "et.post.dropout", t * d);
        dropout(e, c, "et.post.dropout", t * d);
        // residual + left + right.
        ew(e, c, "et.wide_attn.residual", t * d, (3.0, 1.0), 1.0);
    } else {
        post(e, c, "et.wide_attn.residual");
    }
    // Branches: causal 11x1 separable conv d -> 2d (ReLU) beside a 7x1 separable conv
    // d -> d/2 (padded to 2d), summed, LayerNorm over 2d, a 7x1 separable conv 2d -> d.
    norm(e, c, "et.conv.norm", t, d);
    separable(
        e,
        c,
        ("et.conv.sep11x1.depthwise", "et.conv.sep11x1.pointwise"),
        (d, 2.0 * d),
        11.0,
    );
    act(e, c, "et.conv.relu", t * 2.0 * d);
    dropout(e, c, "et.conv.dropout", t * 2.0 * d);
    separable(
        e,
        c,
        ("et.conv.sep7x1.depthwise", "et.conv.sep7x1.pointwise"),
        (d, d / 2.0),
        7.0,
    );
    dropout(e, c, "et.conv.dropout", t * d / 2.0);
    ew(e, c, "et.conv.add", t * 2.0 * d, (1.25, 1.0), 1.0);
    norm(e, c, "et.conv.norm", t, 2.0 * d);
    separable(
        e,
        c,
        ("et.conv.sep7x1b.depthwise", "et.conv.sep7x1b.pointwise"),
        (2.0 * d, d),
        7.0,
    );
    post(e, c, "et.conv.residual");
    // Standard causal self-attention.
    norm(e, c, "et.attn.norm", t, d);
    attention(e, c, h, false, true);
    post(e, c, "et.attn.residual");
    if cross {
        norm(e, c, "et.enc_attn.norm", t, d);
        attention(e, c, h, true, false);
        post(e, c, "et.enc_attn.residual");
    }
    ffn(e, c, "et.ffn.swish", true);
}

/// Activation bytes one Evolved Transformer cell keeps for its backward (one micro-batch, one
/// chip), or `None` for a standard block: every tensor a later backward op reads, counted per
/// token below in `d` units at the activation precision (as
/// [`crate::workload::memory::activation_bytes_per_layer`] counts the standard block's), plus a
/// 1-byte keep-mask per dropped element and the flash core's fp32 log-sum-exp per head (none
/// under selective recompute). Full recompute keeps the cell input only (the caller's rule).
pub fn evolved_activation_bytes(model: &ModelSpec, plan: &ParallelPlan, layer: u32) -> Option<f64> {
    let cell = model.et_cell(layer)?;
    let sb = model.seq_len as f64 * plan.micro_batch_seqs as f64;
    let d = model.d_model as f64;
    let h = model.heads as f64;
    let lse = |heads: f64| {
        if plan.recompute == Recompute::Selective {
            0.0
        } else {
            4.0 * heads
        }
    };
    // Per token: (units of d kept at precision, elements dropped (masks), fp32 bytes).
    let (units, dropped, fp32) = if cell.encoder {
        // GLU: norm in, norm out, values, gates.
        let glu = 4.0;
        // Branches: norm in, masked norm out, left ReLU out 4, right ReLU out 1/2, the sum 4
        // (norm in), its masked norm output 4 (depthwise in), depthwise out 4 (pointwise in).
        let conv = 1.0 + 1.0 + 4.0 + 0.5 + 4.0 + 4.0 + 4.0;
        // Attention: norm in, norm out, q, k, v, context.
        let attn = 6.0;
        // FFN: norm in, norm out, ReLU out 4 (dropout out = fc2 input) 4.
        let ffn = 2.0 + 4.0 + 4.0;
        // The encoder output every decoder cell's k and v read (once, on the last cell).
        let out = if model.et_cell(layer + 1).is_some_and(|n| !n.encoder) {
            1.0
        } else {
            0.0
        };
        let dropped = 1.0 + (4.0 + 0.5) + 1.0 + 1.0 + 4.0 + 1.0;
        (glu + conv + attn + ffn + out, dropped, lse(h))
    } else {
        let x = if cell.cross { 1.0 } else { 0.0 };
        // Wide attention: norm in, norm out, q, k, v, context; each cross branch: q, k, v,
        // context (the norm output shared or its own norm in/out for the second: +2).
        let attn = 6.0 + 6.0 + x * (4.0 + 4.0 + 2.0);
        // Branches: norm in, norm out, depthwise outs 1 + 1, ReLU out 2, right out 1/2, the
        // sum 2 (norm in), its norm out 2 (depthwise in), depthwise out 2 (pointwise in).
        let conv = 1.0 + 1.0 + 2.0 + 2.0 + 0.5 + 2.0 + 2.0 + 2.0;
        // FFN: norm in, norm out, fc1 out 4 (swish in), dropout out 4 (norm in), norm out 4.
        let ffn = 2.0 + 4.0 + 4.0 + 4.0;
        let dropped = 1.0 + x + 2.0 + 0.5 + 1.0 + 1.0 + x + 4.0 + 1.0;
        (
            attn + conv + ffn,
            dropped,
            lse(et_wide_heads(model.heads) as f64 + h * (1.0 + 2.0 * x)),
        )
    };
    let masks = if model.arch.has_hidden_dropout() {
        MASK_BYTES * dropped * d
    } else {
        0.0
    };
    Some(sb * (units * d * plan.precision_bytes() + masks + fp32))
}
