//! The parallel attention + MLP block (`model.parallel_residual`: GPT-J / GPT-NeoX
//! `gpt_j_residual`, PaLM, Falcon): both branches read the same layer input and one TP reduction
//! sums their outputs.

use super::dropout::MASK_BYTES;
use super::layer::{attention_inner, dense_ffn_inner, norm, tp_enter, tp_exit, Ctx, Emit};
use super::{KernelClass as K, Op};

/// One layer as GPT-NeoX 1.0 runs `gpt_j_residual` (`ParallelTransformerLayer.forward`,
/// megatron/model/transformer.py at tag v1.0): `x + reduce(attn(ln1(x)) + mlp(ln2(x)))`. Forward:
/// two norms of the same input (GPT-NeoX keeps both, untied; `gpt_j_tied` would share one), each
/// branch entering TP on its own (`ColumnParallelLinear`'s `copy_to_model_parallel_region`: no
/// forward op, an all-reduce of its input gradient backward; with sequence parallelism an
/// all-gather), both branches built with `parallel_output = True` (no reduction of their own);
/// `bias_dropout_fn(attn, residual=None)` (read, write, the mask with dropout) and
/// `bias_dropout_fn(mlp, residual=attn)` (read 2, write, the mask) over the micro-batch's
/// tokens (partial sums, before any reduction); one reduction of the sum (all-reduce, or
/// reduce-scatter with sequence parallelism) where the serial block has two; the residual add.
/// Backward: the reduction's backward (none, or an all-gather), the adds' gradient copies,
/// each branch's input-gradient all-reduce (reduce-scatter with SP), and the two norm backwards.
///
/// With one shared norm (`arch.parallel_shared_norm`, PaLM: Chowdhery et al. 2022 Sec. 2,
/// `y = x + MLP(LayerNorm(x)) + Attention(LayerNorm(x))`, "the MLP and Attention input matrix
/// multiplications can be fused"): one norm, and the normalised input enters TP once for both
/// branches (one all-gather with SP; backward one reduction of the fused projection's input
/// gradient, which sums both branches' in its accumulation: no separate add).
pub(super) fn parallel_block(e: &mut Emit, c: &Ctx, ffn_hidden: f64) {
    let (t, p, d) = (c.t, c.p, c.d);
    let drop = c.model.arch.has_hidden_dropout();
    let mask = if drop { MASK_BYTES } else { 0.0 };
    let shared = c.model.arch.parallel_shared_norm;
    if shared {
        norm(e, c, "par.norm", c.ts, d);
        tp_enter(e, c, "par.tp_gather", t * d * p);
    } else {
        norm(e, c, "attn.norm", c.ts, d);
        norm(e, c, "ffn.norm", c.ts, d);
        tp_enter(e, c, "attn.tp_gather", t * d * p);
    }
    attention_inner(e, c);
    let n = t * d;
    // Backward of a dropout: the gradient times the mask (read both, write); none without one.
    let mask_grad = [Op::compute(
        "dropout.grad",
        K::Elementwise,
        n,
        (2.0 * p + MASK_BYTES) * n,
    )];
    let bwd: &[Op] = if drop { &mask_grad } else { &[] };
    // attn + bias, then dropout (read, write, mask). Without a bias or a rate nothing runs:
    // ATen's `dropout` returns its input at p = 0.
    if drop || c.model.arch.bias {
        let f = Op::compute("attn.bias_dropout", K::Elementwise, n, (2.0 * p + mask) * n);
        e.push(f, bwd);
    }
    if !shared {
        tp_enter(e, c, "ffn.tp_gather", t * d * p);
    }
    dense_ffn_inner(e, c, ffn_hidden);
    // mlp + bias, dropout, + the attention branch (read 2, write, mask).
    let f = Op::compute("ffn.residual", K::Elementwise, n, (3.0 * p + mask) * n);
    e.push(f, bwd);
    tp_exit(e, c, "par.tp_reduce", t * d * p);
    // The layer's residual add (no dropout here); backward the gradient accumulation at the
    // branch point of the residual stream.
    let rn = c.ts * d;
    e.mem(
        Op::compute("par.residual", K::Elementwise, rn, 3.0 * rn * p),
        1.0,
    );
}
