//! Tutel's MoE layer as ops: the kernels, collectives and host syncs of `MOELayer.forward`.
//!
//! Read from microsoft/tutel v0.2.0 (commit a2242e7, 2022-08-09; `fast_dispatch.py`,
//! `moe_layer.py`, `losses.py` and `experts/ffn.py` are unchanged in what they launch up to
//! b6fefe2, 2022-12-20, so this is the layer of the MegaBlocks paper's Tutel baseline, Gale et
//! al. 2023, arXiv:2211.15841, Sec. 6.1). Line numbers below are of v0.2.0.
//!
//! What sets Tutel apart from the Megatron-LM token flow of `moe::moe_ffn`:
//! - routing builds one-hot `[T, E]` masks in the indices' dtype (int64) and a cumulative sum
//!   over them for each token's slot in its expert (`fast_dispatch.py` L143-174);
//! - dropless (`capacity_factor <= 0`, "dynamic capacity") pads every (rank, expert) pair to the
//!   largest count of any pair: `torch.max` of the slots, an all-reduce (MAX) over the group and
//!   `int(...)` on the host, every layer, every micro-batch (L186-187);
//! - the tokens are scattered into a zeroed `[E * capacity, d]` buffer (`GatingEncoder`, L26-28)
//!   and the whole padded buffer crosses both all-to-alls (`moe_layer.py` L277-279), each with a
//!   permute-copy of that buffer (`communicate.py` L394-413);
//! - the experts are batched matmuls over the padded rows with separate bias adds
//!   (`experts/ffn.py` L74-76);
//! - the combine gathers each token's row back out of the padded buffer (`GatingDecoder`).

use super::dropout::residual;
use super::layer::{act_op, norm, routed, Ctx, Emit};
use super::moe::{grouped_gemm, push_gemm, scale_routed};
use super::{GroupKind, KernelClass as K, Op, RoutedBy};
use crate::workload::{MoeSpec, Precision};

/// Bytes of an int64 element: Tutel's one-hot masks and cumsum take the dtype of the top-k
/// indices (`fast_dispatch.py` L147: `_one_hot_with_dtype(x, .., dtype=x.dtype)`).
const I64: f64 = 8.0;
/// Bytes of an int32 element (indices and locations after `.to(torch.int32)`, L160/L174).
const I32: f64 = 4.0;
/// Launches of one top-k slot's one-hot mask: `torch.zeros` + `scatter_` (`losses.py` L8-9).
pub(super) const ONE_HOT_LAUNCHES: u32 = 2;
/// Launches of one slot's gate value `(scores * mask).sum(dim=1)`: mul + sum (L148).
pub(super) const GATE_LAUNCHES: u32 = 2;
/// Launches of the GShard loss (`losses.py` L12-19): one-hot (zeros + scatter_) 2,
/// `sum(scores, 0)` 1, `sum(mask, 0)` 1, `me * ce` 1, `sum` 1, `/ num_samples` 1 = 7.
pub(super) const GSHARD_LOSS_LAUNCHES: u32 = 7;
/// Launches of the first slot's locations: Tutel's cumsum kernel, `locations1 * mask`,
/// `sum(dim=1)`, `.to(int32)` (L158-160).
pub(super) const FIRST_LOCATION_LAUNCHES: u32 = 4;
/// Launches of each further slot's locations (L165-168): `sum(mask, 0)`, cumsum, `+= acc_base`,
/// mul, sum, cast (the running-base add from the third slot on is left out).
pub(super) const NEXT_LOCATION_LAUNCHES: u32 = 6;
/// Dynamic capacity before the collective (L186): `torch.cat` of the slots, `torch.max`, and
/// `simple_all_reduce`'s `torch.clone` (`communicate.py` L141; skipped on one rank, L139).
pub(super) const CAPACITY_LAUNCHES: u32 = 3;

/// The Tutel MoE block of one layer (see the module doc), after the Megatron-LM pre-norm.
pub(super) fn tutel_moe_ffn(e: &mut Emit, c: &Ctx, moe: &MoeSpec) {
    let (p, d) = (c.p, c.d);
    let ts = c.ts;
    let ep = c.plan.ep.max(1);
    let experts = moe.experts as f64;
    let k = moe.top_k as f64;
    let ku = moe.top_k.max(1);
    let el = c.plan.experts_per_rank(c.model).max(1) as f64;
    let fe = moe.expert_ffn_hidden as f64;
    let se = ts * experts;
    // Encode/decode run in fp16 only for fp16 data, else in fp32 with casts around them
    // (`TutelMoeFastDispatcher.__init__`, L92-93: `dispatch_dtype != float16` -> float32).
    let pd = if c.plan.precision == Precision::Fp16 {
        p
    } else {
        4.0
    };
    // Padded rows of the buffer (and of the experts' batched matmuls on one rank): `E *
    // capacity` sent = `E_local * ep * capacity` received. Static capacity (cf > 0):
    // `top_k * int(cf * ceil(T / E))` (L182-184), fixed; dynamic (dropless): the largest
    // (rank, expert) count, sized each step by the most loaded expert (`RoutedBy::MaxLocalExpert`).
    let dynamic = moe.capacity_factor.is_none();
    let rows = match moe.capacity_factor {
        Some(cf) => experts * k * (cf * (ts / experts).ceil()).floor(),
        None => ts * k,
    };
    let pad = |op: Op| match dynamic {
        true => scale_routed(routed(op, RoutedBy::MaxLocalExpert, rows), el),
        false => op,
    };

    norm(e, c, "moe.norm", ts, d);
    // Router (`gates/top.py` L26; `moe_layer.py` L229-236): gate GEMM, softmax.
    e.gemm("moe.router", ts, experts, d, p);
    e.mem(
        Op::compute("moe.score", K::Softmax, 5.0 * se, 2.0 * se * p),
        1.5,
    );
    // `extract_critical` (`fast_dispatch.py` L140-198). Top-k indices only: no gradient.
    e.push(
        Op::compute("moe.topk", K::TopK, se, se * p + ts * k * (p + I64)),
        &[],
    );
    e.push(
        Op::compute("tutel.one_hot", K::Elementwise, 0.0, k * (se + ts) * I64)
            .launches(ONE_HOT_LAUNCHES * ku),
        &[],
    );
    // Gate values: read scores and mask, write the product, reduce it (backward: the same
    // traffic the other way).
    e.mem(
        Op::compute(
            "tutel.gates",
            K::Elementwise,
            2.0 * k * se,
            k * (se * (2.0 * p + I64) + se * p + ts * p),
        )
        .launches(GATE_LAUNCHES * ku),
        1.0,
    );
    e.mem(
        Op::compute("moe.aux_loss", K::Elementwise, 3.0 * se, 3.0 * se * p)
            .launches(GSHARD_LOSS_LAUNCHES),
        1.0,
    );
    // Slots: cumsum (read + write), mask product (2 reads + write), row sum (read) over int64;
    // each further slot adds the column sum, cumsum, base add, product and sum (9 passes).
    let loc_launches = FIRST_LOCATION_LAUNCHES + NEXT_LOCATION_LAUNCHES * (ku - 1);
    e.push(
        Op::compute(
            "tutel.locations",
            K::Elementwise,
            2.0 * k * se,
            (6.0 + 9.0 * (k - 1.0)) * se * I64 + k * ts * (I64 + I32),
        )
        .launches(loc_launches),
        &[],
    );
    if ku > 1 {
        // normalize_gate (L170-172): the slots' gates summed (k - 1 adds), clamped, divided.
        e.mem(
            Op::compute(
                "tutel.gate_norm",
                K::Elementwise,
                2.0 * k * ts,
                3.0 * k * ts * p,
            )
            .launches(2 * ku),
            1.0,
        );
    }
    // Indices to int32 (L174).
    e.push(
        Op::compute(
            "tutel.index_cast",
            K::Elementwise,
            0.0,
            k * ts * (I64 + I32),
        )
        .launches(ku),
        &[],
    );
    if dynamic {
        let n = if ep > 1 {
            CAPACITY_LAUNCHES
        } else {
            CAPACITY_LAUNCHES - 1
        };
        e.push(
            Op::compute("tutel.capacity", K::Elementwise, k * ts, 3.0 * k * ts * I32).launches(n),
            &[],
        );
        if ep > 1 {
            // `simple_all_reduce(capacity, op=MAX)` over the expert group (L187): one int32.
            e.push(
                Op::comm("tutel.capacity_max", K::AllReduce, GroupKind::Ep, ep, I32),
                &[],
            );
        }
        // `int(...)` (L187): a device-to-host copy that drains the stream.
        let mut read = Op::compute("tutel.capacity_read", K::Elementwise, 0.0, I32);
        read.host_syncs = 1;
        e.push(read, &[]);
    }
    // Encode (`GatingEncoder.forward`, L18-29): cast in (non-fp16), zero the padded buffer,
    // scatter each token's row to its slot (per top-k slot); backward (L32-46): gather back.
    if pd != p {
        e.mem(
            Op::compute("tutel.cast", K::Elementwise, 0.0, ts * d * (p + pd)),
            1.0,
        );
    }
    e.push(
        pad(Op::compute(
            "tutel.encode_zero",
            K::Elementwise,
            0.0,
            rows * d * pd,
        )),
        &[],
    );
    let rows_moved = 2.0 * k * ts * d * pd + k * ts * 2.0 * I32;
    e.push(
        Op::compute("tutel.encode", K::Scatter, 0.0, rows_moved).launches(ku),
        &[Op::compute("tutel.encode", K::Gather, 0.0, rows_moved).launches(2 * ku - 1)],
    );
    let cast = || {
        pad(Op::compute(
            "tutel.cast",
            K::Elementwise,
            0.0,
            rows * d * (p + pd),
        ))
    };
    if pd != p {
        e.mem(cast(), 1.0);
    }
    // Dispatch (`moe_layer.py` L277): the whole padded buffer, then its permute-copy from
    // `[ep, E_local, cap, d]` to `[E_local, ep * cap, d]` (`communicate.py` L410-413);
    // backward: the all-to-all of the gradient (`RestoreBackward`, L338-341) and the copy.
    let a2a_share = (ep - 1) as f64 / ep as f64;
    let layout = || {
        pad(Op::compute(
            "tutel.a2a_layout",
            K::Permute,
            0.0,
            2.0 * rows * d * p,
        ))
    };
    let a2a = |name: &'static str| {
        pad(Op::comm(
            name,
            K::AllToAll,
            GroupKind::Ep,
            ep,
            rows * d * p * a2a_share,
        ))
    };
    if ep > 1 {
        let op = a2a("moe.dispatch");
        e.push(op.clone(), &[op]);
        e.mem(layout(), 1.0);
    }
    // Experts (`experts/ffn.py` L74-76): batched matmul + bias add, activation, batched matmul
    // + bias add, every local expert over `ep * capacity` rows. A bias add's backward is the
    // bias gradient, a reduction that reads the output gradient once.
    let fc1 = c.model.arch.act.fc1_matrices() * fe;
    push_gemm(
        e,
        pad(grouped_gemm("moe.expert_fc1", rows, fc1, d, el, p)),
        p,
    );
    e.mem(
        pad(Op::compute(
            "tutel.expert_bias",
            K::Elementwise,
            rows * fc1,
            (2.0 * rows * fc1 + el * fc1) * p,
        )),
        0.5,
    );
    let (a, f) = act_op(c, "moe.expert_act", rows * fe);
    e.mem(pad(a), f);
    push_gemm(
        e,
        pad(grouped_gemm("moe.expert_fc2", rows, d, fe, el, p)),
        p,
    );
    e.mem(
        pad(Op::compute(
            "tutel.expert_bias",
            K::Elementwise,
            rows * d,
            (2.0 * rows * d + el * d) * p,
        )),
        0.5,
    );
    // Combine (`moe_layer.py` L279): permute-copy into `[ep, E_local, cap, d]` order
    // (`communicate.py` L393-395 + `simple_all_to_all`'s `.contiguous()`), then the all-to-all.
    if ep > 1 {
        e.mem(layout(), 1.0);
        let op = a2a("moe.combine");
        e.push(op.clone(), &[op]);
    }
    if pd != p {
        e.mem(cast(), 1.0);
    }
    // Decode (`GatingDecoder.forward`, L51-64): fp16 gates widened to half2 (`repeat`, per
    // slot), each token's row gathered and weighted, slots summed. Backward (L67-79): a zeroed
    // padded gradient, the rows scattered back, and each slot's gate gradient (a dot product
    // per token reading the output gradient and the expert output).
    let repeat = if pd == 2.0 { ku } else { 0 };
    e.push(
        Op::compute(
            "tutel.decode",
            K::Gather,
            k * ts * d,
            rows_moved + (k - 1.0) * 3.0 * ts * d * pd,
        )
        .launches(repeat + 2 * ku - 1),
        &[
            Op::compute(
                "tutel.decode",
                K::Scatter,
                2.0 * k * ts * d,
                2.0 * rows_moved,
            )
            .launches(2 * ku),
            pad(Op::compute(
                "tutel.decode_zero",
                K::Elementwise,
                0.0,
                rows * d * pd,
            )),
        ],
    );
    if pd != p {
        e.mem(
            Op::compute("tutel.cast", K::Elementwise, 0.0, ts * d * (p + pd)),
            1.0,
        );
    }
    residual(e, c, "moe.residual");
}
