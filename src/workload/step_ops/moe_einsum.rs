//! The Mesh TensorFlow / GShard MoE layer as ops: dispatch and combine as one-hot einsums.
//!
//! Read from tensorflow/mesh `mesh_tensorflow/transformer/moe.py` (commit da90793; the
//! dispatch path is unchanged since the Switch routing was added, efcd89f, 2020-07-22):
//! `transformer_moe_layer_v1`, `_switch_gating` (top-1) and `_top_2_gating` (top-2), the code
//! Switch Transformer ran (Fedus et al. 2022, arXiv:2101.03961, Appendix F, Figs. 15-16) and
//! the one GShard's `Top2GatingOnLogits` copies (tensorflow/lingvo `gshard_layers.py`,
//! `legacy_mtf_behavior=True`; Lepikhin et al. 2021, arXiv:2006.16668, Algorithm 2).
//!
//! What sets it apart from a gather/scatter token flow (`moe::moe_ffn`, `moe_tutel`):
//! - the batch is split into `G` groups of `S` tokens (`_split_into_groups`: the largest
//!   `S <= group_size` with `G` a multiple of the cores the batch is split over); each group
//!   sends every expert exactly `C = max(min(S, floor(S * cf / E)), min_capacity)` slots;
//! - routing runs in fp32 ("selective precision", Fedus et al. Sec. 2.4; `mtf.to_float(inputs)`
//!   before the router): the input cast, the router matmul, softmax, top-1 (twice for top-2),
//!   one-hot masks, the load-balancing loss, a `cumsum` over the group for each token's position
//!   in its expert, the capacity mask, and the `[G, S, E, C]` combine tensor (gate x one-hot
//!   expert x one-hot slot), cast to bf16, and the 0/1 dispatch tensor cast from it;
//! - dispatch is `einsum(inputs[G,S,M], dispatch[G,S,E,C]) -> [E,G,C,M]` and combine
//!   `einsum(expert_out[E,G,C,M], combine[G,S,E,C]) -> [G,S,M]`: matmuls on the MXU of
//!   `2 G S E C M` FLOPs each, whatever the routing; the backward of dispatch computes only the
//!   input gradient (the dispatch tensor comes from a cast to bool: no gradient), the combine's
//!   both (expert outputs and the combine tensor, whose gradient reaches the gates);
//! - the all-to-all is the `mtf.reshape` from "split over groups" to "split over experts" of
//!   the whole `[E, G, C, M]` buffer (padded slots included), and back;
//! - the experts are einsums over `[E, G * C]` rows (`dense_product`, no bias).
//!
//! All sizes are fixed by the capacity: tokens over it are dropped, so the routing changes
//! no op (`Load::Fixed` throughout).

use super::dropout::residual;
use super::layer::{act_op, norm, Ctx, Emit};
use super::moe::{grouped_gemm, push_gemm};
use super::{Framework, GroupKind, KernelClass as K, Op, MESH_TF_CORES_PER_CHIP};
use crate::workload::MoeSpec;

/// Bytes of an fp32 element: the router's "selective precision" (Fedus et al. 2022 Sec. 2.4;
/// `_switch_gating` / `_top_2_gating`: "The internals of this function run in float32").
const F32: f64 = 4.0;

/// Tokens per routing group when the scenario gives none: `MoE1D(group_size=1024)`
/// (tensorflow/mesh `mesh_tensorflow/transformer/moe.py`, `MoE1D.__init__`).
pub const DEFAULT_GROUP_SIZE: u32 = 1024;

/// Smallest expert capacity per group when the scenario gives none: `MoE1D(min_expert_capacity=4)`
/// (moe.py; hard-coded `max(expert_capacity, 4)` before 2020-08-11, commit 5a9d503).
pub const DEFAULT_MIN_CAPACITY: u32 = 4;

/// Grouping and capacity of the einsum MoE layer (`models.X.moe_group_size`,
/// `models.X.moe_min_capacity`; read with `moe_impl = "einsum"` only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EinsumConfig {
    /// Largest tokens per routing group (Mesh TF `MoE1D.group_size`) [tokens].
    pub group_size: u32,
    /// Smallest expert capacity per group (Mesh TF `MoE1D.min_expert_capacity`) [slots].
    pub min_capacity: u32,
}

impl Default for EinsumConfig {
    fn default() -> Self {
        EinsumConfig {
            group_size: DEFAULT_GROUP_SIZE,
            min_capacity: DEFAULT_MIN_CAPACITY,
        }
    }
}

/// The groups of one device's micro-batch of `tokens` split over `cores` cores, as
/// `_split_into_groups(n, max_group_size, mesh_dim_size)` does: the fewest groups, at least
/// `tokens / group_size`, that are a multiple of `cores` and divide `tokens`. Returns
/// `(groups, group size)`; `tokens` not a multiple of `cores` gives one group per token.
pub fn split_into_groups(tokens: u64, group_size: u32, cores: u32) -> (u64, u64) {
    let cores = u64::from(cores.max(1));
    let mut g = (tokens / u64::from(group_size.max(1))).max(1);
    while g < tokens && (!g.is_multiple_of(cores) || !tokens.is_multiple_of(g)) {
        g += 1;
    }
    let g = g.min(tokens.max(1));
    (g, tokens / g)
}

/// Expert capacity per group: `max(min(S, floor(S * cf / E)), min_capacity)` (moe.py
/// `transformer_moe_layer_v1`).
pub fn expert_capacity(group: u64, cf: f64, experts: u32, min_capacity: u32) -> u64 {
    let c = ((group as f64 * cf) / f64::from(experts.max(1))).floor() as u64;
    c.min(group).max(u64::from(min_capacity))
}

/// Groups, group size and capacity of one device's micro-batch (`None` without a capacity
/// factor: the einsum layer has none dropless; validation rejects that).
pub(super) fn einsum_shape(c: &Ctx, moe: &MoeSpec) -> Option<(f64, f64, f64)> {
    shape(c.t as u64, moe, c.cfg.einsum, c.cfg.framework)
}

/// [`einsum_shape`] for `tokens` per device under `framework`.
fn shape(
    tokens: u64,
    moe: &MoeSpec,
    cfg: EinsumConfig,
    framework: Framework,
) -> Option<(f64, f64, f64)> {
    let cf = moe.capacity_factor?;
    // Mesh TF splits the batch over cores; a TPU v2/v3 chip (one device here) has two.
    let cores = if framework == Framework::MeshTensorflow {
        MESH_TF_CORES_PER_CHIP
    } else {
        1
    };
    let (g, s) = split_into_groups(tokens, cfg.group_size, cores);
    let cap = expert_capacity(s, cf, moe.experts, cfg.min_capacity);
    Some((g as f64, s as f64, cap as f64))
}

/// Activation bytes the einsum layer keeps for its backward beyond what
/// `workload::memory` counts for an MoE layer (`k * cf` assignments per token), per MoE layer
/// and micro-batch on one device: the dispatch and combine tensors (`2 G S E C` elements), the
/// experts' inputs and activations over `G E C` slots instead of `k cf` per token, the expert
/// outputs the combine einsum's backward reads, and the router's fp32 input and probabilities
/// (`mtf.to_float(inputs)`, softmax output) [bytes]. Negative where the slots are fewer than
/// `k cf` per token (top-2: Mesh TF's `cf` is per token).
pub fn einsum_activation_bytes(
    model: &crate::workload::ModelSpec,
    plan: &crate::workload::ParallelPlan,
    cfg: EinsumConfig,
    framework: Framework,
) -> f64 {
    let Some(moe) = model.moe() else { return 0.0 };
    let t = u64::from(plan.micro_batch_seqs) * u64::from(model.seq_len);
    let Some((g, s, cap)) = shape(t, moe, cfg, framework) else {
        return 0.0;
    };
    let p = plan.precision_bytes();
    let (t, d, e) = (t as f64, f64::from(model.d_model), f64::from(moe.experts));
    let slots = g * e * cap;
    let counted = f64::from(moe.top_k) * moe.capacity_factor.unwrap_or(1.0) * t;
    // memory.rs's per-assignment units: `2h + m f_e` 2-byte units (`m` = 6 SwiGLU, 4 GELU).
    let per_slot = 2.0 * d + 2.0 * model.arch.act.matrices() * f64::from(moe.expert_ffn_hidden);
    2.0 * p * g * s * e * cap
        + (slots - counted) * per_slot * p / 2.0
        + slots * d * p
        + t * (d + e) * F32
}

/// The einsum MoE block of one layer (see the module doc), after its pre-norm.
pub(super) fn einsum_moe_ffn(e: &mut Emit, c: &Ctx, moe: &MoeSpec) {
    let Some((g, s, cap)) = einsum_shape(c, moe) else {
        return;
    };
    let (p, d) = (c.p, c.d);
    let t = g * s;
    let ep = c.plan.ep.max(1);
    let experts = f64::from(moe.experts);
    let k = f64::from(moe.top_k);
    let el = c.plan.experts_per_rank(c.model).max(1) as f64;
    let fe = f64::from(moe.expert_ffn_hidden);
    let te = t * experts;
    // [G, S, E, C] elements of the dispatch / combine tensors, and the [E, G, C] slots.
    let gsec = te * cap;
    let slots = g * experts * cap;

    norm(e, c, "moe.norm", t, d);
    // Router in fp32: `mtf.to_float(inputs)` (backward: the gradient cast back).
    e.mem(
        Op::compute("einsum.router_cast", K::Elementwise, 0.0, t * d * (p + F32)),
        1.0,
    );
    if moe.top_k == 1 {
        // `_switch_gating`'s training policy "input_jitter" (the default):
        // `multiplicative_jitter` draws a uniform [S, M] tensor and multiplies.
        e.mem(
            Op::compute("einsum.jitter", K::Elementwise, t * d, 3.0 * t * d * F32),
            1.0,
        );
    }
    // `mtf.layers.dense(gate_inputs, experts_dim)` in fp32 (on TPU the default precision of an
    // fp32 matmul is one bf16 MXU pass: the same FLOPs, fp32 traffic).
    let router = Op::gemm("moe.router", t, experts, d, F32);
    push_gemm(e, router, F32);
    e.mem(
        Op::compute("moe.score", K::Softmax, 5.0 * te, 2.0 * te * F32),
        1.5,
    );
    // top_1 (twice for top-2, between them `raw_gates * (1 - mask_1)`): indices only carry
    // no gradient; the gate values' gradient rides in the combine tensor's below.
    let topk = Op::compute(
        "moe.topk",
        K::TopK,
        te * k,
        k * te * F32 + k * t * 2.0 * F32,
    );
    e.push(topk, &[]);
    if moe.top_k > 1 {
        e.mem(
            Op::compute("einsum.mask_top1", K::Elementwise, 2.0 * te, 3.0 * te * F32),
            1.0,
        );
    }
    // One-hot expert masks (`mtf.one_hot(index, experts_dim)`, fp32).
    e.push(
        Op::compute("einsum.one_hot", K::Elementwise, 0.0, k * te * F32),
        &[],
    );
    // Load-balancing loss: `reduce_mean` over the group of the mask and of the gates
    // (backward: the gates' gradient broadcast back over the group).
    e.push(
        Op::compute("moe.aux_loss", K::Elementwise, 2.0 * te, 2.0 * te * F32),
        &[Op::compute(
            "moe.aux_loss",
            K::Elementwise,
            te,
            2.0 * te * F32,
        )],
    );
    // Position in expert, per slot: exclusive `cumsum` over the group (read + write), `*
    // mask` (2 reads + write), `less(position, C)` times the mask (2 reads + write), the
    // `reduce_sum` over experts (read): 9 passes; top-2's second slot adds the first's
    // per-expert count (`reduce_sum` over the group, read) and its add (2 reads + write).
    let passes = 9.0 * k + 4.0 * (k - 1.0);
    e.push(
        Op::compute(
            "einsum.positions",
            K::Elementwise,
            4.0 * k * te,
            passes * te * F32,
        )
        .launches(moe.top_k),
        &[],
    );
    // Combine tensor: gate x one-hot(expert) x one-hot(slot) per top-k slot in fp32 (top-2:
    // the two parts summed, 2 reads + write), cast to the activation type, and the dispatch
    // tensor `cast(cast(combine, bool))` (read + write). Backward: the combine tensor's
    // gradient (from the combine einsum) cast to fp32 and reduced to each slot's gate.
    let build = k * F32 + (k - 1.0) * 3.0 * F32 + (F32 + p) + 2.0 * p;
    e.push(
        Op::compute(
            "einsum.combine_tensor",
            K::Elementwise,
            2.0 * k * gsec,
            build * gsec,
        )
        .launches(moe.top_k + 2),
        &[Op::compute(
            "einsum.combine_tensor",
            K::Elementwise,
            k * gsec,
            (p + k * F32) * gsec,
        )],
    );
    // Dispatch einsum: per group `[E*C, S] x [S, M]`. Backward: only the inputs' gradient
    // `[S, E*C] x [E*C, M]` (the dispatch tensor has none).
    let dispatch = grouped_gemm("einsum.dispatch", slots, d, s, g, p);
    let mut d_in = grouped_gemm("einsum.dispatch", t, d, experts * cap, g, p);
    d_in.grad = Some(super::Grad::Input);
    e.push(dispatch, &[d_in]);
    // The all-to-all of the mesh reshape (groups split -> experts split) and its mirror in
    // backward: the whole padded [E, G, C, M] buffer.
    let a2a = |name: &'static str| {
        Op::comm(
            name,
            K::AllToAll,
            GroupKind::Ep,
            ep,
            slots * d * p * (ep - 1) as f64 / ep as f64,
        )
    };
    if ep > 1 {
        let op = a2a("moe.dispatch");
        e.push(op.clone(), &[op]);
    }
    // Experts: every local expert over the `ep * G * C` slots it receives (the same count of
    // rows a device sends: `E * G * C`), `dense_product` (no bias), activation, `dense`.
    let fc1 = c.model.arch.act.fc1_matrices() * fe;
    push_gemm(e, grouped_gemm("moe.expert_fc1", slots, fc1, d, el, p), p);
    let (a, f) = act_op(c, "moe.expert_act", slots * fe);
    e.mem(a, f);
    push_gemm(e, grouped_gemm("moe.expert_fc2", slots, d, fe, el, p), p);
    if ep > 1 {
        let op = a2a("moe.combine");
        e.push(op.clone(), &[op]);
    }
    // Combine einsum: per group `[S, E*C] x [E*C, M]`; backward both gradients (the combine
    // tensor's `[S, M] x [M, E*C]` and the expert outputs' `[E*C, S] x [S, M]`).
    push_gemm(
        e,
        grouped_gemm("einsum.combine", t, d, experts * cap, g, p),
        p,
    );
    residual(e, c, "moe.residual");
}
