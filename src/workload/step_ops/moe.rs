//! MoE FFN ops of one layer: router, permute, dispatch/combine all-to-all, expert-TP
//! collectives, routed experts (grouped, looped or padded), shared experts, unpermute.

use super::super::arch::RouterScore;
use super::dropout::residual;
use super::layer::{act_op, gemm_grads, norm, routed, tp_enter, tp_exit, Ctx, Emit};
use super::{ExpertKernel, GroupKind, KernelClass as K, Load, MoeImpl, Op, RoutedBy, RouterKernel};

/// Launches of an eager MoE router forward (HF Transformers / Megatron-LM without router
/// fusion): gate GEMM 1, score (softmax or sigmoid) 1, top-k 1, top-k weight normalisation
/// (sum, div) 2, scatter to dense probs and routing map 2, load-balancing aux loss 6
/// (`switch_load_balancing_loss_func`: sums, mul, mean, scale, aux-loss autograd hook) = 13.
/// [D] notes/hardware_constants.md Sec. 6a (Megatron `router.py`, `moe_utils.py`) and 6b
/// (HF Mixtral eager: "~13 router/setup kernels"). Independent of the expert and token counts.
const EAGER_ROUTER_AUX_LAUNCHES: u32 = 6;
/// Eager top-k weight normalisation launches (sum, div); see [`EAGER_ROUTER_AUX_LAUNCHES`].
const EAGER_ROUTER_NORM_LAUNCHES: u32 = 2;
/// Eager scatters of the top-k result into dense `[T, E]` probs and routing map.
const EAGER_ROUTER_SCATTER_LAUNCHES: u32 = 2;
/// Eager `permute`: routing-map argsort, `index_select`, tokens-per-expert count (notes Sec. 6a:
/// "argsort of the transposed routing map, then index_select").
const EAGER_PERMUTE_LAUNCHES: u32 = 3;
/// Eager `unpermute`: multiply by probs, `scatter_add_` (notes Sec. 6a).
const EAGER_UNPERMUTE_LAUNCHES: u32 = 2;

/// MoE FFN block: router, permute, dispatch, experts, shared experts, combine, unpermute.
/// Token flow and collectives follow Megatron-LM's `MoEAlltoAllTokenDispatcher` (notes Sec. 6a).
pub(super) fn moe_ffn(e: &mut Emit, c: &Ctx) {
    let m = c.model;
    let Some(moe) = m.moe() else { return };
    match c.cfg.moe_impl {
        MoeImpl::Tutel => return super::moe_tutel::tutel_moe_ffn(e, c, moe),
        MoeImpl::Einsum => return super::moe_einsum::einsum_moe_ffn(e, c, moe),
        MoeImpl::Megablocks => {
            return super::moe_megablocks::megablocks_moe_ffn(e, c, moe);
        }
        MoeImpl::Megatron => {}
    }
    let (tp, p, d) = (c.tp, c.p, c.d);
    let tpu = c.plan.tp.max(1);
    let ep = c.plan.ep.max(1);
    let ts = c.t / tp; // MoE tokens are sequence-sharded over TP (Megatron requires SP here)
    let experts = moe.experts as f64;
    let k = moe.top_k as f64;
    let e_local = c.plan.experts_per_rank(m).max(1);
    let el = e_local as f64;
    let fe = moe.expert_ffn_hidden as f64 / tp;
    let fused = c.cfg.router_kernel == RouterKernel::Fused;
    let dropless = moe.capacity_factor.is_none();
    // Assignments this GPU's experts receive after the expert-TP all-gather (uniform mean).
    let recv = uniform_received(c);
    let a2a_share = (ep - 1) as f64 / ep as f64;

    norm(e, c, "moe.norm", c.ts, d);
    // Router.
    e.gemm("moe.router", ts, experts, d, p);
    let se = ts * experts;
    if fused {
        // Fused score + top-k + scatter (`fused_topk_with_score_function`) and fused aux loss
        // (`fused_moe_aux_loss`): notes Sec. 6a, Megatron `--moe-router-fusion`.
        e.mem(
            Op::compute(
                "moe.topk",
                K::TopK,
                6.0 * se,
                4.0 * se * 2.0 + ts * k * 12.0,
            ),
            1.0,
        );
        e.mem(
            Op::compute("moe.aux_loss", K::Elementwise, 2.0 * se, 4.0 * se),
            1.0,
        );
    } else {
        let score = match m.arch.router_score {
            RouterScore::Softmax => Op::compute("moe.score", K::Softmax, 5.0 * se, 8.0 * se),
            RouterScore::Sigmoid => Op::compute("moe.score", K::Elementwise, 4.0 * se, 8.0 * se),
        };
        e.mem(score, 1.5);
        e.mem(
            Op::compute("moe.topk", K::TopK, se, 4.0 * se + ts * k * 12.0),
            1.0,
        );
        e.mem(
            Op::compute(
                "moe.topk_norm",
                K::Elementwise,
                2.0 * ts * k,
                3.0 * ts * k * 4.0,
            )
            .launches(EAGER_ROUTER_NORM_LAUNCHES),
            1.0,
        );
        e.mem(
            Op::compute("moe.route_map", K::Scatter, 0.0, se * 5.0 + ts * k * 12.0)
                .launches(EAGER_ROUTER_SCATTER_LAUNCHES),
            1.0,
        );
        e.mem(
            Op::compute("moe.aux_loss", K::Elementwise, 3.0 * se, 2.0 * 4.0 * se)
                .launches(EAGER_ROUTER_AUX_LAUNCHES),
            1.0,
        );
    }
    // Permute: group this GPU's tokens by expert (one row per assignment).
    let mut perm = Op::compute("moe.permute", K::Permute, 0.0, 2.0 * ts * k * d * p + se);
    perm.launches = if fused { 1 } else { EAGER_PERMUTE_LAUNCHES };
    // Dropless needs the per-expert counts on the host (all-to-all splits, grouped GEMM sizes):
    // one device-to-host sync per layer (notes Sec. 6a, `before_permutation_1` etc.).
    let padded_static = !dropless && c.cfg.expert_kernel == ExpertKernel::Padded;
    perm.host_syncs = u32::from(!padded_static);
    if !padded_static && ep > 1 {
        // The all-to-all's splits need every rank's per-expert counts: Megatron-core gathers
        // `num_local_tokens_per_expert` (int64, one per expert) over the EP group before the
        // host read (`MoEAlltoAllTokenDispatcher.preprocess`,
        // `gather_from_sequence_parallel_region(.., group=ep_group)`); MegaBlocks exchanges the
        // same counts with `all_to_all_single` before its `.cpu()` (megablocks commit 1647a0e,
        // `layers/moe.py` L303-341, the paper's version). A few hundred bytes: latency-bound
        // either way, priced as the gather. Forward only (the backward reuses the splits).
        e.push(
            Op::comm(
                "moe.count_gather",
                K::AllGather,
                GroupKind::Ep,
                ep,
                ep as f64 * experts * 8.0,
            ),
            &[],
        );
    }
    e.mem(perm, 1.0);
    // Dispatch all-to-all of tokens and of their probs over EP.
    if ep > 1 {
        // Under FP8 the tokens are cast before dispatch and cross in FP8 (`c.pg`; DeepSeek-V3,
        // arXiv:2412.19437, Sec. 3.3.2); the combine returns bf16 (`p`).
        for (name, width) in [("moe.dispatch", d * c.pg), ("moe.dispatch_probs", 4.0)] {
            routed_all_to_all(e, name, ep, recv / tp * width * a2a_share, recv);
        }
    }
    // Expert-TP exchange of the received tokens: a collective forward, its mirror in backward.
    let tp_exchange = |e: &mut Emit, name: &'static str, fwd: K, bwd: K| {
        let f = routed(
            Op::comm(name, fwd, GroupKind::Tp, tpu, recv * d * p),
            RoutedBy::RankReceived,
            recv,
        );
        let b = Op {
            class: bwd,
            ..f.clone()
        };
        e.push(f, &[b]);
    };
    // Expert-TP all-gather of the received tokens (backward: reduce-scatter).
    if tpu > 1 {
        tp_exchange(e, "moe.tp_gather", K::AllGather, K::ReduceScatter);
    }
    let sort_chunks = e_local > 1 && (ep > 1 || tpu > 1);
    if sort_chunks {
        let op = routed(
            Op::compute("moe.sort_chunks", K::Permute, 0.0, 2.0 * recv * d * p),
            RoutedBy::RankReceived,
            recv,
        );
        e.mem(op, 1.0);
    }
    experts_ops(e, c, recv, el, fe);
    if sort_chunks {
        let op = routed(
            Op::compute("moe.unsort_chunks", K::Permute, 0.0, 2.0 * recv * d * p),
            RoutedBy::RankReceived,
            recv,
        );
        e.mem(op, 1.0);
    }
    if tpu > 1 {
        tp_exchange(e, "moe.tp_reduce", K::ReduceScatter, K::AllGather);
    }
    if ep > 1 {
        routed_all_to_all(e, "moe.combine", ep, recv / tp * d * p * a2a_share, recv);
    }
    // Shared experts: a dense FFN on all tokens of the TP group, with its own TP collectives.
    if moe.shared_experts > 0 {
        let t = c.t;
        let fs = moe.shared_experts as f64 * fe;
        tp_enter(e, c, "moe.shared_tp_gather", t * d * p);
        e.gemm("moe.shared_fc1", t, m.arch.act.fc1_matrices() * fs, d, p);
        let (a, f) = act_op(c, "moe.shared_act", t * fs);
        e.mem(a, f);
        e.gemm("moe.shared_fc2", t, d, fs, p);
        tp_exit(e, c, "moe.shared_tp_reduce", t * d * p);
    }
    // Unpermute: weight by the probs and sum each token's k rows back.
    let mut un = Op::compute(
        "moe.unpermute",
        K::Permute,
        2.0 * ts * k * d,
        (2.0 * ts * k * d + ts * d) * p + ts * k * 4.0,
    );
    un.launches = if fused { 1 } else { EAGER_UNPERMUTE_LAUNCHES };
    e.mem(un, 1.0);
    residual(e, c, "moe.residual");
}

/// A token all-to-all over the expert-parallel group of `ep` ranks, `bytes` [B] sent per rank at
/// uniform routing, resized by the rank's received load (`recv` assignments at uniform routing);
/// its backward is the same exchange reversed.
pub(super) fn routed_all_to_all(e: &mut Emit, name: &'static str, ep: u32, bytes: f64, recv: f64) {
    let op = routed(
        Op::comm(name, K::AllToAll, GroupKind::Ep, ep, bytes),
        RoutedBy::RankReceived,
        recv,
    );
    e.push(op.clone(), &[op]);
}

/// Token-expert assignments one GPU's experts receive per micro-batch under uniform routing,
/// after the expert-TP all-gather: `tokens * top_k` (each of the `ep` ranks sends
/// `tokens/tp * top_k` spread evenly over all experts).
pub(super) fn uniform_received(c: &Ctx) -> f64 {
    c.model.moe().map_or(0.0, |m| c.t * m.top_k as f64)
}

/// Routed expert GEMMs and activation for `recv` received assignments over `el` local experts.
fn experts_ops(e: &mut Emit, c: &Ctx, recv: f64, el: f64, fe: f64) {
    let (p, d) = (c.p, c.d);
    let fc1 = c.model.arch.act.fc1_matrices() * fe;
    let groups = el as u32;
    let grouped =
        |name: &'static str, rows: f64, n: f64, k: f64| grouped_gemm(name, rows, n, k, el, p);
    let push = |e: &mut Emit, op: Op| push_gemm(e, op, p);
    match c.cfg.expert_kernel {
        ExpertKernel::Grouped => {
            push(
                e,
                routed(
                    grouped("moe.expert_fc1", recv, fc1, d),
                    RoutedBy::RankReceived,
                    recv,
                ),
            );
            let (a, f) = act_op(c, "moe.expert_act", recv * fe);
            e.mem(routed(a, RoutedBy::RankReceived, recv), f);
            push(
                e,
                routed(
                    grouped("moe.expert_fc2", recv, d, fe),
                    RoutedBy::RankReceived,
                    recv,
                ),
            );
        }
        ExpertKernel::Loop => {
            // Megatron `SequentialMLP`: fc1, activation, fc2 per local expert on its rows.
            let per = recv / el;
            for x in 0..groups {
                let by = RoutedBy::LocalExpert(x);
                push(
                    e,
                    routed(Op::gemm("moe.expert_fc1", per, fc1, d, p), by, per),
                );
                let (a, f) = act_op(c, "moe.expert_act", per * fe);
                e.mem(routed(a, by, per), f);
                push(
                    e,
                    routed(Op::gemm("moe.expert_fc2", per, d, fe, p), by, per),
                );
            }
        }
        ExpertKernel::Padded => {
            // Batched matmul over `el` experts of `slots` rows each: the capacity
            // `cf * recv / el` if set, else the largest count (sized by the routing).
            let cap = c.model.moe().and_then(|m| m.capacity_factor);
            let per = recv / el;
            let slots = cap.map_or(per, |cf| (cf * per).ceil());
            let rows = el * slots;
            let fill = Op::compute("moe.pad_fill", K::Elementwise, 0.0, rows * d * p);
            let mk = |op: Op| match cap {
                Some(_) => op,
                None => scale_routed(routed(op, RoutedBy::MaxLocalExpert, rows), el),
            };
            e.mem(mk(fill), 1.0);
            push(e, mk(grouped("moe.expert_fc1", rows, fc1, d)));
            let (a, f) = act_op(c, "moe.expert_act", rows * fe);
            e.mem(mk(a), f);
            push(e, mk(grouped("moe.expert_fc2", rows, d, fe)));
        }
    }
}

/// One grouped (or batched) GEMM of `rows` total rows over `el` weight matrices `k x n`.
pub(super) fn grouped_gemm(name: &'static str, rows: f64, n: f64, k: f64, el: f64, p: f64) -> Op {
    let mut op = Op::gemm(name, rows, n, k, p);
    op.class = K::GroupedGemm;
    op.bytes = p * (rows * k + el * k * n + rows * n);
    if let Some(g) = &mut op.gemm {
        g.groups = el as u32;
    }
    op
}

/// A GEMM and its two backward GEMMs.
pub(super) fn push_gemm(e: &mut Emit, op: Op, p: f64) {
    let (di, dw) = gemm_grads(&op, p);
    e.push(op, &[di, dw]);
}

/// A routed op over `groups` padded groups: its load is the per-group (max) count, so per-token
/// coefficients are per max-token and the GEMM rows are `groups * tokens`.
pub(super) fn scale_routed(mut op: Op, groups: f64) -> Op {
    if let Load::Routed {
        tokens,
        flops_per_token,
        bytes_per_token,
        comm_bytes_per_token,
        by,
        ..
    } = op.load
    {
        op.load = Load::Routed {
            by,
            tokens: tokens / groups,
            flops_per_token: flops_per_token * groups,
            bytes_per_token: bytes_per_token * groups,
            comm_bytes_per_token: comm_bytes_per_token * groups,
            gemm_m: true,
        };
    }
    op
}
