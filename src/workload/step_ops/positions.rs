//! Position-embedding ops (`model.position`): rotary on queries and keys, the learned absolute
//! table added at the input, ALiBi and T5's relative bias on the attention logits,
//! Transformer-XL's relative attention term.

use super::super::arch::Position;
use super::layer::{gemm_grads, Ctx, Emit};
use super::{GroupKind, KernelClass as K, Op};

/// Rotary embedding of `elems` query and key elements (read + write; backward the same), two
/// launches (queries, keys); nothing for the other kinds (MLA is always rotary).
pub(super) fn rotary(e: &mut Emit, c: &Ctx, elems: f64) {
    if c.model.arch.position != Position::Rotary && c.model.arch.mla.is_none() {
        return;
    }
    e.mem(
        Op::compute(
            "attn.rotary",
            K::Elementwise,
            3.0 * elems,
            2.0 * elems * c.p,
        )
        .launches(2),
        1.0,
    );
}

/// Learned absolute positions at the input (Megatron-LM `LanguageModelEmbedding.forward`:
/// `position_embeddings(position_ids)` then `words_embeddings + position_embeddings`), over the
/// micro-batch's tokens (the add precedes the scatter to sequence-parallel shards): the lookup
/// (gather `t` rows of the `seq_len x d` table, write them) and the add (2 reads, 1 write);
/// with sequence parallelism then the scatter ([`sp_scatter_after_add`]).
/// Backward: the add passes the gradient through; `embedding_dense_backward` scatter-adds the
/// `t` gradient rows into the table's gradient (read the rows, read-modify-write the table rows),
/// as the word embedding's.
pub(super) fn learned_input(e: &mut Emit, c: &Ctx) {
    if c.model.arch.position != Position::Learned {
        return;
    }
    let n = c.t * c.d;
    let look = Op::compute("embed.position", K::Embedding, 0.0, 2.0 * n * c.p);
    let grad = Op {
        bytes: 3.0 * n * c.p,
        ..look.clone()
    };
    e.push(look, &[grad]);
    e.push(
        Op::compute("embed.position_add", K::Elementwise, n, 3.0 * n * c.p),
        &[],
    );
    if sp_scatter_after_add(c) {
        // `scatter_to_sequence_parallel_region`: forward this rank's slice (a view), cloned
        // (`clone_scatter_output_in_embedding`, default True: "Clone to facilitate GC"; read +
        // write the slice); backward `_gather_along_first_dim` of the slice gradients.
        let ns = c.ts * c.d;
        let gather = Op::comm(
            "embed.sp_gather",
            K::AllGather,
            GroupKind::Tp,
            c.plan.tp,
            c.t * c.d * c.tpw,
        );
        e.push(
            Op::compute("embed.sp_clone", K::Elementwise, 0.0, 2.0 * ns * c.p),
            &[gather],
        );
    }
}

/// Whether the embedding output is all-reduced over TP and then scattered to the
/// sequence-parallel shards, rather than reduce-scattered: Megatron-Core
/// `LanguageModelEmbedding` sets `reduce_scatter_embeddings` only without learned absolute
/// positions (`not add_position_embedding and num_tokentypes <= 0 and sequence_parallel`), so
/// with them `VocabParallelEmbedding` all-reduces the full `[s, b, h]` output
/// (`reduce_from_tensor_model_parallel_region`, backward: identity), the position rows are added
/// on every rank, and `forward` then calls `scatter_to_sequence_parallel_region` (the legacy
/// `megatron/model/language_model.py` `Embedding.forward` does the same under
/// `sequence_parallel`). NVIDIA/Megatron-LM `megatron/core/models/common/embeddings/
/// language_model_embedding.py`, read 2026-12-02.
pub(super) fn sp_scatter_after_add(c: &Ctx) -> bool {
    c.model.arch.position == Position::Learned && c.ts < c.t
}

/// Extra HBM bytes a fused (flash) attention kernel moves for the position bias over `inst`
/// (sequence x local head) instances of `s x s` logits, forward and backward:
/// - ALiBi: the per-head slopes only (MPT's `attn_bias` is `1 x heads x 1 x s`, broadcast over
///   queries; FA2's `alibi.h` computes `slope * (j - i)` in registers): one row of `s` per
///   instance, forward and backward;
/// - relative (T5): the `heads x s x s` bias, read per instance (kernels that take a bias
///   tensor, Triton FlashAttention's `bias` / xformers' `attn_bias`, load its tile per block),
///   and written back as the bias gradient in the backward (one `s x s` per instance), before
///   its sum over the batch ([`relative_bias_grad`]);
/// - Transformer-XL: the shifted position scores `BD` (one `s x s` per instance, from
///   [`transformer_xl`]) read as the bias of the content scores, and their gradient written
///   back in the backward (it is the score gradient, which the `BD` einsum's backward reads;
///   no sum over the batch).
pub(super) fn flash_bias_bytes(c: &Ctx, inst: f64) -> (f64, f64) {
    let s = c.model.seq_len as f64;
    match c.model.arch.position {
        Position::Alibi => (inst * s * c.p, inst * s * c.p),
        Position::Relative | Position::TransformerXl => {
            (inst * s * s * c.p, 2.0 * inst * s * s * c.p)
        }
        Position::Rotary | Position::Learned => (0.0, 0.0),
    }
}

/// T5's relative bias gradient: the per-instance bias gradients (`inst` of `s x s`, compute
/// precision) summed over the micro-batch's sequences into the layer's `local heads x s x s`
/// fp32 gradient (`torch.sum` / XLA reduce over the broadcast batch dimension); `None` for the
/// other kinds. The bucket gather that builds the bias and the scatter-add of its gradient into
/// the `32 x heads` table run once per step on `heads x s x s` elements and are not charged.
pub(super) fn relative_bias_grad(c: &Ctx, inst: f64) -> Option<Op> {
    if c.model.arch.position != Position::Relative {
        return None;
    }
    let s = c.model.seq_len as f64;
    let hl = c.model.heads as f64 / c.tp;
    let n = inst * s * s;
    Some(Op::compute(
        "attn.pos_bias_grad",
        K::Elementwise,
        n,
        n * c.p + 4.0 * hl * s * s,
    ))
}

/// The position bias on the unfused core's `n` score elements: ALiBi and T5's bias are an
/// elementwise add of the broadcast bias to the logits (HF MPT `attn_weight + attn_bias`, Mesh TF
/// `logits += bias`: read the scores, write them; the broadcast bias stays in cache); its
/// backward passes the gradient through, and T5's also reduces it into the bias gradient
/// ([`relative_bias_grad`]). Transformer-XL's `attn_score = (AC + BD) * scale` reads both
/// score-sized terms and writes their sum (the add's backward hands the same gradient to
/// both: no copy). Named `attn.core.*` so selective recompute replays it with the core.
pub(super) fn unfused_bias(e: &mut Emit, c: &Ctx, n: f64, inst: f64) {
    match c.model.arch.position {
        Position::Rotary | Position::Learned => {}
        Position::TransformerXl => e.push(
            Op::compute("attn.core.pos_bias", K::Elementwise, n, 3.0 * n * c.p),
            &[],
        ),
        Position::Alibi | Position::Relative => {
            let f = Op::compute("attn.core.pos_bias", K::Elementwise, n, 2.0 * n * c.p);
            match relative_bias_grad(c, inst) {
                Some(g) => e.push(f, &[g]),
                None => e.push(f, &[]),
            }
        }
    }
}

/// Transformer-XL's relative attention term of one layer for one micro-batch, before the core
/// (kimiyoung/transformer-xl `tf/model.py` `rel_multihead_attn`; Dai et al. 2019 Sec. 3.3 terms
/// (b) and (d); `dqk` the per-head query width, over `span.q` queries and `span.kv` keys):
/// - `r_head_k = dense(r, n_head * d_head)`: the sinusoid table `pos_emb` (`klen x 1 x d`, built
///   once per forward and shared by the batch) times the layer's `W_r`, column-split over TP
///   with the heads: one `klen x hl*dqk x d` GEMM per micro-batch. Its backward is the weight
///   gradient alone (the table is a constant of the positions: no input gradient).
/// - `rw_head_q = w_head_q + r_w_bias`, `rr_head_q = w_head_q + r_r_bias`: read the queries,
///   write both biased copies; backward reads both gradients, writes the query gradient and
///   the two bias gradients (fp32 sums over the tokens).
/// - `BD = einsum('ibnd,jnd->ijbn', rr_head_q, r_head_k)`: a batched matmul over every
///   (query, key) pair of each (sequence x local head) instance, the full square (the causal
///   mask is applied after the sum with `AC`), written to HBM; backward: `d rr_head_q = dBD
///   r_head_k` and `d r_head_k = dBD^T rr_head_q`, each reading the score-sized gradient.
/// - `rel_shift(BD)`: `pad`, `reshape`, `slice`, `reshape` (`tf/model.py` `rel_shift`): the
///   reshape of a padded tensor changes its layout, so the score tensor is copied (read +
///   write); the backward copies the gradient back the same way.
///
/// The content term `AC` uses `rw_head_q` in place of the queries (same bytes) and the sum
/// `AC + BD` is the core's bias ([`flash_bias_bytes`], [`unfused_bias`]). The sinusoid table
/// itself (`klen x d` sines and cosines, once per forward) is not charged. The score-sized
/// ops are named `attn.core.*` so that selective recompute replays them with the core (they
/// are what it avoids storing). Nothing for the other kinds.
pub(super) fn transformer_xl(e: &mut Emit, c: &Ctx, dqk: f64, span: super::layer::Span) {
    if c.model.arch.position != Position::TransformerXl {
        return;
    }
    let p = c.p;
    let hl = c.model.heads as f64 / c.tp;
    let b = c.plan.micro_batch_seqs as f64;
    let (s, klen) = (span.q, span.kv);
    // Local width of the projected encodings (the heads on this TP rank).
    let w = hl * dqk;
    let proj = Op::gemm("attn.pos_proj", klen, w, c.d, p);
    let (_, dw) = gemm_grads(&proj, p);
    e.push(proj, &[dw]);
    // Query elements of the micro-batch on this rank.
    let qe = b * s * w;
    let bias_f = Op::compute("attn.pos_qbias", K::Elementwise, 2.0 * qe, 3.0 * qe * p);
    let bias_b = Op::compute(
        "attn.pos_qbias",
        K::Elementwise,
        3.0 * qe,
        3.0 * qe * p + 2.0 * 4.0 * w,
    );
    e.push(bias_f, &[bias_b]);
    // Score elements of the position term: every (query, key) pair of each instance.
    let n = b * hl * s * klen;
    let (q, r) = (qe * p, klen * w * p);
    let flops = 2.0 * n * dqk;
    // Shapeless batched matmuls, as the unfused core's (`attn_core::unfused_core`).
    let bd = Op::compute("attn.core.pos_scores", K::Gemm, flops, q + r + n * p);
    let d_q = Op::compute("attn.core.pos_scores", K::Gemm, flops, n * p + r + q);
    let d_r = Op::compute("attn.core.pos_scores", K::Gemm, flops, n * p + q + r);
    e.push(bd, &[d_q, d_r]);
    e.mem(
        Op::compute("attn.core.rel_shift", K::Elementwise, 0.0, 2.0 * n * p),
        1.0,
    );
}
