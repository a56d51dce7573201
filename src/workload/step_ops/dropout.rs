//! Dropout ops (`model.hidden_dropout`, `model.attention_dropout`): the fused
//! bias-dropout-add of the residual branches, the embedding dropout, and the attention-probability
//! dropout inside FlashAttention; the unfused core's score-matrix dropout is `layer::unfused_core`.
//!
//! Element-wise FLOP counts are nominal (these kernels are priced by their bytes); the one priced
//! FLOP count is the in-kernel RNG of FlashAttention, which moves no bytes.

use super::layer::{Ctx, Emit};
use super::{KernelClass as K, Op};

/// Bytes per element of a stored dropout mask: PyTorch's `native_dropout` returns a `bool` mask
/// (one byte), which autograd keeps for the backward; Korthikanti et al. 2022 (arXiv:2205.05198,
/// Sec. 4.1) count `sbh` bytes per hidden dropout and `as^2b` for the attention dropout.
pub(super) const MASK_BYTES: f64 = 1.0;

/// Nominal RNG operations per element of a stand-alone or fused dropout kernel: PyTorch draws
/// four uniforms per Philox4x32-10 call (`curand_uniform4` in `fused_dropout_kernel_vec`),
/// ten rounds of two 32-bit multiply-high/lows plus xors and key bumps, ~8 instructions a round
/// (Salmon et al. 2011, "Parallel Random Numbers: As Easy as 1, 2, 3", Sec. 3.2): ~20 per
/// element. Not priced (the kernel is memory-bound; its bytes price it).
const RNG_OPS_PER_ELEM: f64 = 20.0;

/// Integer instructions per attention-score element for FlashAttention-2's dropout, per pass
/// (forward, and again in the backward, which regenerates the mask from the Philox seed and
/// offset instead of storing it). Counted from flash-attention `csrc/flash_attn/src/dropout.h`
/// and `philox.cuh`: one `flash::philox` call yields 16 one-byte randoms (one per score
/// element); it runs 7 rounds, each two `mul.wide.u32` (2 issue slots each for the 64-bit
/// result), two 3-input xors (one `LOP3` each) and two key increments: ~8 a round, 56 a call,
/// 3.5 per element; then per element the byte widening, the `set.le.u32.f16x2` compare (two
/// elements a compare) and the mask `and`: ~1.5. Total ~5.
const FLASH_RNG_INSTR_PER_SCORE: f64 = 5.0;

/// FLOP-equivalents per integer instruction when pricing at the FP32 (non-tensor) peak: the
/// peak counts an FMA as 2 FLOP, and an SM issues one INT32 op per lane and clock where it
/// issues one FP32 FMA (NVIDIA A100 whitepaper 2020, Table 3: 64 FP32 and 64 INT32 cores per
/// SM). On H100 (128 FP32, 64 INT32 lanes per SM, H100 whitepaper 2022) this prices the RNG at
/// twice its INT32 rate: a lower bound there.
const FLOP_EQUIV_PER_INSTR: f64 = 2.0;

/// Residual add of a branch's output over the sequence-sharded tokens. Without dropout: 2
/// reads, 1 write; backward the gradient accumulation at the branch point, same traffic.
/// With `hidden_dropout > 0`, Megatron-LM's `bias_dropout_add_fused_train`
/// (`megatron/core/fusions/fused_bias_dropout.py`: `residual + dropout(x + bias)` in one jit-fused
/// kernel) also writes the one-byte mask; its backward multiplies the incoming gradient by the
/// mask (read the gradient and the mask, write the branch gradient; the residual path's gradient
/// is the incoming one, no kernel).
pub(super) fn residual(e: &mut Emit, c: &Ctx, name: &'static str) {
    let n = c.ts * c.d;
    if !c.model.arch.has_hidden_dropout() {
        e.mem(Op::compute(name, K::Elementwise, n, 3.0 * n * c.p), 1.0);
        return;
    }
    let f = Op::compute(
        name,
        K::Elementwise,
        (1.0 + RNG_OPS_PER_ELEM) * n,
        (3.0 * c.p + MASK_BYTES) * n,
    );
    let acc = Op::compute(name, K::Elementwise, n, 3.0 * n * c.p);
    let drop = Op::compute(
        "dropout.grad",
        K::Elementwise,
        n,
        (2.0 * c.p + MASK_BYTES) * n,
    );
    e.push(f, &[drop, acc]);
}

/// The embedding dropout (`model.embedding_dropout`: Megatron-LM
/// `LanguageModelEmbedding.embedding_dropout` at the hidden rate; HF `embd_pdrop`): a stand-alone
/// `nn.Dropout` over the sequence-sharded input (read, write, write the mask); backward reads the
/// gradient and the mask, writes the gradient.
pub(super) fn embedding(e: &mut Emit, c: &Ctx) {
    if c.model.arch.embedding_dropout <= 0.0 {
        return;
    }
    let n = c.ts * c.d;
    let f = Op::compute(
        "embed.dropout",
        K::Elementwise,
        RNG_OPS_PER_ELEM * n,
        (2.0 * c.p + MASK_BYTES) * n,
    );
    let b = Op::compute(
        "embed.dropout",
        K::Elementwise,
        n,
        (2.0 * c.p + MASK_BYTES) * n,
    );
    e.push(f, &[b]);
}

/// The Philox work FlashAttention does for `attention_dropout > 0` over `scores` computed score
/// elements (forward, and the backward's regeneration), priced as FP32-pipe work that moves no
/// bytes; `None` without attention dropout. The FA2 forward and backward on sm80 run their
/// element-wise work on the same warps as the tensor-core MMAs (no warp specialisation), so the
/// RNG adds to the kernel's time rather than hiding under it.
pub(super) fn flash_rng(c: &Ctx, scores: f64) -> Option<(Op, Op)> {
    if !c.model.arch.has_attention_dropout() {
        return None;
    }
    let flops = FLASH_RNG_INSTR_PER_SCORE * FLOP_EQUIV_PER_INSTR * scores;
    let f = Op::compute("attn.dropout_rng", K::Elementwise, flops, 0.0);
    Some((f.clone(), f))
}
