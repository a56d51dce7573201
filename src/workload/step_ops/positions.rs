//! Position-embedding ops (`model.position`): rotary on queries and keys, the learned absolute
//! table added at the input, ALiBi and T5's relative bias on the attention logits.

use super::super::arch::Position;
use super::layer::{Ctx, Emit};
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
///   its sum over the batch ([`relative_bias_grad`]).
pub(super) fn flash_bias_bytes(c: &Ctx, inst: f64) -> (f64, f64) {
    let s = c.model.seq_len as f64;
    match c.model.arch.position {
        Position::Alibi => (inst * s * c.p, inst * s * c.p),
        Position::Relative => (inst * s * s * c.p, 2.0 * inst * s * s * c.p),
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
/// ([`relative_bias_grad`]). Named `attn.core.*` so selective recompute replays it with the core.
pub(super) fn unfused_bias(e: &mut Emit, c: &Ctx, n: f64, inst: f64) {
    match c.model.arch.position {
        Position::Rotary | Position::Learned => {}
        Position::Alibi | Position::Relative => {
            let f = Op::compute("attn.core.pos_bias", K::Elementwise, n, 2.0 * n * c.p);
            match relative_bias_grad(c, inst) {
                Some(g) => e.push(f, &[g]),
                None => e.push(f, &[]),
            }
        }
    }
}
