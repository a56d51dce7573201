//! The attention core of one layer (scores, softmax, context over a span): FlashAttention with
//! its position bias and in-kernel dropout, GPT-NeoX's layout copies around it, or the unfused
//! Megatron-LM core that moves the score matrix through HBM.

use super::dropout::MASK_BYTES;
use super::layer::{Ctx, Emit, Span};
use super::{AttentionKernel, Framework, KernelClass as K, Op};

/// The attention core (scores, softmax, context) over `span`: the unfused Megatron-LM core, or
/// FlashAttention (with GPT-NeoX's layout copies around it).
pub(super) fn core(e: &mut Emit, c: &Ctx, kv_local: f64, dqk: f64, dv: f64, span: Span) {
    core_heads(e, c, c.model.heads as f64 / c.tp, kv_local, dqk, dv, span);
}

/// [`core`] over `hl` local query heads (the model's `heads / tp` for the standard block; the
/// Evolved Transformer's wide branch has its own count).
pub(super) fn core_heads(
    e: &mut Emit,
    c: &Ctx,
    hl: f64,
    kv_local: f64,
    dqk: f64,
    dv: f64,
    span: Span,
) {
    if c.cfg.attention_kernel == AttentionKernel::Unfused {
        unfused_core(e, c, hl, (kv_local, dqk, dv), span);
        return;
    }
    let p = c.p;
    // FlashAttention: QK^T and PV over the attended (causal, windowed) keys; FA2 Sec. 4.1
    // convention (causal counts the computed half). Backward 2.5x forward (FA2 Sec. 4.1:
    // 5 matmuls backward vs 2 forward, due to recomputation) = notes Sec. 6e.
    let b = c.plan.micro_batch_seqs as f64;
    let s = span.q;
    let flops = 2.0 * b * s * span.keys_mean * hl * (dqk + dv);
    let class = if c.cfg.attention_kernel == AttentionKernel::Flash1 {
        K::FlashAttention1
    } else {
        K::FlashAttention
    };
    // Query-side tokens; keys and values come over `span.kv` rows per sequence (x 1.0 when
    // they are the same rows).
    let t = b * s;
    let r = span.kv / span.q;
    let io = t * (hl * dqk + kv_local * (dqk + dv) * r + hl * dv) * p + 4.0 * t * hl;
    let inst = b * hl;
    let (bias_f, bias_b) = super::positions::flash_bias_bytes(c, inst);
    // The shape records the (sequence x head) instances in `groups`: the attention efficiency
    // curve is priced on the work per instance.
    let f = Op {
        gemm: Some(super::GemmShape {
            m: s,
            n: span.keys_mean,
            k: dqk + dv,
            groups: inst.max(1.0) as u32,
        }),
        ..Op::compute("attn.flash", class, flops, io + bias_f)
    };
    let bw = Op {
        flops: 2.5 * flops,
        bytes: 2.0 * io + bias_b,
        ..f.clone()
    };
    if c.cfg.framework == Framework::GptNeox {
        neox_layout_ops(e, c, hl, (kv_local, dqk, dv), span);
    }
    match super::positions::relative_bias_grad(c, inst) {
        Some(g) => e.push(f, &[bw, g]),
        None => e.push(f, &[bw]),
    }
    // Attention dropout inside the kernel: Philox work per computed score element.
    if let Some((rf, rb)) = super::dropout::flash_rng(c, b * s * span.keys_mean * hl) {
        e.push(rf, &[rb]);
    }
}

/// Layout copies around FlashAttention in GPT-NeoX 1.0 (`ParallelSelfAttention.forward` and
/// `flash_attention`, megatron/model/transformer.py at tag v1.0), which the Megatron-LM op list
/// does not have. Forward: `query_layer.transpose(0, 1).reshape(..)` and the same for key and
/// value copy each of q, k, v (read + write); `torch.concat([q, k, v], dim=1)` copies them again
/// into the packed `[b*s, 3, np, hn]` input of `flash_attn_unpadded_qkvpacked_func`;
/// `context_layer.permute(2, 0, 1, 3).contiguous()` copies the output back to `[s, b, np, hn]`:
/// `4 (q + k + v) + 2 o` elements moved, 5 launches. Backward: the q, k, v gradients (views of
/// the packed gradient) are joined into the gradient of the fused QKV output by the split's
/// backward (`torch.split` -> one cat: `2 (q + k + v)`), 1 launch. The partial rotary (25 % of
/// each head in Pythia) and the `torch.cat` that re-joins the rotated part are left to the
/// full-width `attn.rotary` op, whose forward + backward traffic is within a few % of theirs.
fn neox_layout_ops(e: &mut Emit, c: &Ctx, hl: f64, kv: (f64, f64, f64), span: Span) {
    let (kv_local, dqk, dv) = kv;
    let b = c.plan.micro_batch_seqs as f64;
    let (tq, tkv) = (b * span.q, b * span.kv);
    let qkv = tq * hl * dqk + tkv * kv_local * (dqk + dv);
    let o = tq * hl * dv;
    let f = Op::compute(
        "attn.neox_layout",
        K::Elementwise,
        0.0,
        (4.0 * qkv + 2.0 * o) * c.p,
    )
    .launches(5);
    let b = Op::compute("attn.neox_layout", K::Elementwise, 0.0, 2.0 * qkv * c.p);
    e.push(f, &[b]);
}

/// The pre-FlashAttention attention core of Megatron-LM (`CoreAttention`): every op moves the
/// full `s x s` score matrix of each local head through HBM. Forward: batched QK^T (baddbmm,
/// writes the scores), the fused scale + causal-mask + softmax kernel (reads scores, writes
/// probabilities; Narayanan et al. 2021, Sec. 4.2: "two custom kernels to enable the fusion of
/// scale, mask, and softmax"), attention dropout when `model.attention_dropout > 0`
/// (Megatron-LM `--attention-dropout`, default 0.1: reads, writes, and stores its mask), batched PV (reads the probabilities). The causal
/// mask does not shrink the work: both GEMMs compute the full square and the softmax writes
/// it whole. Backward: dP = dO V^T (writes a score-sized gradient), dV = P^T dO (reads P),
/// dropout and softmax backward, dQ = dS K and dK = dS^T Q (each reads dS). Per layer these
/// are (with attention dropout) the `5 a s^2 b` bytes of Korthikanti et al. 2022 (Sec. 4.1:
/// scores and softmax output 2 bytes each, dropout mask 1 byte per element) written once and
/// re-read.
fn unfused_core(e: &mut Emit, c: &Ctx, hl: f64, kv: (f64, f64, f64), span: Span) {
    let (kv_local, dqk, dv) = kv;
    let m = c.model;
    let p = c.p;
    let b = c.plan.micro_batch_seqs as f64;
    // Query rows and key rows of the micro-batch (the same for self-attention).
    let (t, tk) = (b * span.q, b * span.kv);
    // Score elements of the micro-batch's local heads.
    let n = b * hl * span.q * span.kv;
    let q = t * hl * dqk * p;
    let k = tk * kv_local * dqk * p;
    let v = tk * kv_local * dv * p;
    let o = t * hl * dv * p;
    let gemm =
        |name: &'static str, flops: f64, bytes: f64| Op::compute(name, K::Gemm, flops, bytes);
    let scores = gemm("attn.core.scores", 2.0 * n * dqk, n * p + q + k);
    let d_q = gemm("attn.core.scores", 2.0 * n * dqk, n * p + k + q);
    let d_k = gemm("attn.core.scores", 2.0 * n * dqk, n * p + q + k);
    e.push(scores, &[d_q, d_k]);
    // ALiBi / T5 bias on the logits (before the softmax).
    super::positions::unfused_bias(e, c, n, b * hl);
    // Softmax: read scores, write probabilities; backward reads dP' and P, writes dS.
    e.mem(
        Op::compute("attn.core.softmax", K::Elementwise, 5.0 * n, 2.0 * n * p),
        1.5,
    );
    // Dropout (`attention_dropout > 0`): read P, write P' and the mask; backward reads dP' and
    // the mask, writes dP. Without it the probabilities go straight to the context GEMM.
    if m.arch.has_attention_dropout() {
        e.mem(
            Op::compute(
                "attn.core.dropout",
                K::Elementwise,
                n,
                (2.0 * p + MASK_BYTES) * n,
            ),
            1.0,
        );
    }
    let context = gemm("attn.core.context", 2.0 * n * dv, n * p + v + o);
    let d_p = gemm("attn.core.context", 2.0 * n * dv, n * p + o + v);
    let d_v = gemm("attn.core.context", 2.0 * n * dv, n * p + o + v);
    e.push(context, &[d_p, d_v]);
}
