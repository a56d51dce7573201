//! Forward ops of one transformer layer (and their backward counterparts) for one micro-batch
//! on one GPU, in the order Megatron-LM launches them.
//!
//! Element-wise FLOP counts are nominal (a few FLOP per element); these kernels are priced by
//! their bytes. Sources of the launch counts and layouts are beside each op.

use super::super::arch::{Act, NormKind, RouterScore};
use super::super::model::ModelSpec;
use super::super::plan::ParallelPlan;
use super::{
    ExpertKernel, Grad, GroupKind, KernelClass as K, Load, Op, OpsConfig, Phase, RoutedBy,
    RouterKernel,
};

/// FLOP per element of a norm (square, mean, rsqrt, scale; LayerNorm also centres): nominal.
fn norm_flops_per_elem(kind: NormKind) -> f64 {
    match kind {
        NormKind::RmsNorm => 4.0,
        NormKind::LayerNorm => 7.0,
    }
}

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
    /// Activation bytes per element.
    pub p: f64,
    /// Model width.
    pub d: f64,
}

impl<'a> Ctx<'a> {
    pub fn new(model: &'a ModelSpec, plan: &'a ParallelPlan, cfg: &'a OpsConfig) -> Self {
        let t = plan.micro_batch_seqs as f64 * model.seq_len as f64;
        let tp = plan.tp.max(1) as f64;
        let sp = cfg.sequence_parallel && plan.tp > 1;
        Ctx {
            model,
            plan,
            cfg,
            t,
            ts: if sp { t / tp } else { t },
            tp,
            p: plan.precision_bytes,
            d: model.d_model as f64,
        }
    }

    fn sp(&self) -> bool {
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

fn routed(mut op: Op, by: RoutedBy, tokens: f64) -> Op {
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
fn norm(e: &mut Emit, c: &Ctx, name: &'static str, rows: f64, width: f64) {
    let n = rows * width;
    let kind = c.model.arch.norm;
    e.mem(
        Op::compute(name, K::Norm, norm_flops_per_elem(kind) * n, 2.0 * n * c.p),
        1.5,
    );
}

/// Residual add over the sequence-sharded tokens (2 reads, 1 write; backward: the gradient
/// accumulation at the branch point, same traffic).
fn residual(e: &mut Emit, c: &Ctx, name: &'static str) {
    let n = c.ts * c.d;
    e.mem(Op::compute(name, K::Elementwise, n, 3.0 * n * c.p), 1.0);
}

/// Entering a tensor-parallel region: all-gather of the sequence shards (backward:
/// reduce-scatter), or nothing forward and an all-reduce of the input gradient backward.
fn tp_enter(e: &mut Emit, c: &Ctx, name: &'static str, bytes: f64) {
    if c.plan.tp <= 1 {
        return;
    }
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
fn tp_exit(e: &mut Emit, c: &Ctx, name: &'static str, bytes: f64) {
    if c.plan.tp <= 1 {
        return;
    }
    let tp = c.plan.tp;
    if c.sp() {
        let f = Op::comm(name, K::ReduceScatter, GroupKind::Tp, tp, bytes);
        let b = Op::comm(name, K::AllGather, GroupKind::Tp, tp, bytes);
        e.push(f, &[b]);
    } else {
        e.push(Op::comm(name, K::AllReduce, GroupKind::Tp, tp, bytes), &[]);
    }
}

/// Attention block: norm, QKV (or MLA projections), rotary, flash attention, output
/// projection, TP collectives, residual.
pub(super) fn attention(e: &mut Emit, c: &Ctx) {
    let m = c.model;
    let (t, tp, p, d) = (c.t, c.tp, c.p, c.d);
    let h = m.heads as f64;
    let hl = h / tp;
    let dqk = m.qk_head_dim() as f64;
    let dv = m.v_head_dim() as f64;
    norm(e, c, "attn.norm", c.ts, d);
    tp_enter(e, c, "attn.tp_gather", t * d * p);
    let (kv_local, rope_elems) = match &m.arch.mla {
        None => {
            let kvh = m.kv_heads as f64 / tp;
            e.gemm("attn.qkv", t, (hl + 2.0 * kvh) * dqk, d, p);
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
    // Rotary embedding of the query and key parts (read + write; backward the same).
    e.mem(
        Op::compute(
            "attn.rotary",
            K::Elementwise,
            3.0 * rope_elems,
            2.0 * rope_elems * p,
        )
        .launches(2),
        1.0,
    );
    // FlashAttention: QK^T and PV over the attended (causal, windowed) keys; FA2 Sec. 4.1
    // convention (causal counts the computed half). Backward 2.5x forward (FA2 Sec. 4.1:
    // 5 matmuls backward vs 2 forward, due to recomputation) = notes Sec. 6e.
    let b = c.plan.micro_batch_seqs as f64;
    let s = m.seq_len as f64;
    let flops = 2.0 * b * s * m.causal_keys_mean() * hl * (dqk + dv);
    let io = t * (hl * dqk + kv_local * (dqk + dv) + hl * dv) * p + 4.0 * t * hl;
    let f = Op::compute("attn.flash", K::FlashAttention, flops, io);
    let bw = Op {
        flops: 2.5 * flops,
        bytes: 2.0 * io,
        ..f.clone()
    };
    e.push(f, &[bw]);
    e.gemm("attn.out", t, d, hl * dv, p);
    tp_exit(e, c, "attn.tp_reduce", t * d * p);
    residual(e, c, "attn.residual");
}

/// Activation of an FFN over `elems` hidden elements: SwiGLU reads gate and up, writes the
/// product (backward reads 3, writes 2: 5/3 of the forward traffic); GELU reads 1 writes 1
/// (backward reads 2 writes 1).
fn act_op(c: &Ctx, name: &'static str, elems: f64) -> (Op, f64) {
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
    let (t, tp, p, d) = (c.t, c.tp, c.p, c.d);
    let fl = f / tp;
    norm(e, c, "ffn.norm", c.ts, d);
    tp_enter(e, c, "ffn.tp_gather", t * d * p);
    e.gemm("ffn.fc1", t, c.model.arch.act.fc1_matrices() * fl, d, p);
    let (a, k) = act_op(c, "ffn.act", t * fl);
    e.mem(a, k);
    e.gemm("ffn.fc2", t, d, fl, p);
    tp_exit(e, c, "ffn.tp_reduce", t * d * p);
    residual(e, c, "ffn.residual");
}

/// MoE FFN block: router, permute, dispatch, experts, shared experts, combine, unpermute.
/// Token flow and collectives follow Megatron-LM's `MoEAlltoAllTokenDispatcher` (notes Sec. 6a).
pub(super) fn moe_ffn(e: &mut Emit, c: &Ctx) {
    let m = c.model;
    let Some(moe) = m.moe() else { return };
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
    e.mem(perm, 1.0);
    // Dispatch all-to-all of tokens and of their probs over EP.
    if ep > 1 {
        for (name, width) in [("moe.dispatch", d * p), ("moe.dispatch_probs", 4.0)] {
            let op = Op::comm(
                name,
                K::AllToAll,
                GroupKind::Ep,
                ep,
                recv / tp * width * a2a_share,
            );
            let op = routed(op, RoutedBy::RankReceived, recv);
            e.push(op.clone(), &[op]);
        }
    }
    // Expert-TP all-gather of the received tokens (backward: reduce-scatter).
    if tpu > 1 {
        let f = routed(
            Op::comm(
                "moe.tp_gather",
                K::AllGather,
                GroupKind::Tp,
                tpu,
                recv * d * p,
            ),
            RoutedBy::RankReceived,
            recv,
        );
        let b = Op {
            class: K::ReduceScatter,
            ..f.clone()
        };
        e.push(f, &[b]);
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
        let f = routed(
            Op::comm(
                "moe.tp_reduce",
                K::ReduceScatter,
                GroupKind::Tp,
                tpu,
                recv * d * p,
            ),
            RoutedBy::RankReceived,
            recv,
        );
        let b = Op {
            class: K::AllGather,
            ..f.clone()
        };
        e.push(f, &[b]);
    }
    if ep > 1 {
        let op = routed(
            Op::comm(
                "moe.combine",
                K::AllToAll,
                GroupKind::Ep,
                ep,
                recv / tp * d * p * a2a_share,
            ),
            RoutedBy::RankReceived,
            recv,
        );
        e.push(op.clone(), &[op]);
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
    let grouped = |name: &'static str, rows: f64, n: f64, k: f64| {
        let mut op = Op::gemm(name, rows, n, k, p);
        op.class = K::GroupedGemm;
        op.bytes = p * (rows * k + el * k * n + rows * n);
        if let Some(g) = &mut op.gemm {
            g.groups = groups;
        }
        op
    };
    let push_gemm = |e: &mut Emit, op: Op| {
        let (di, dw) = gemm_grads(&op, p);
        e.push(op, &[di, dw]);
    };
    match c.cfg.expert_kernel {
        ExpertKernel::Grouped => {
            push_gemm(
                e,
                routed(
                    grouped("moe.expert_fc1", recv, fc1, d),
                    RoutedBy::RankReceived,
                    recv,
                ),
            );
            let (a, f) = act_op(c, "moe.expert_act", recv * fe);
            e.mem(routed(a, RoutedBy::RankReceived, recv), f);
            push_gemm(
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
                push_gemm(
                    e,
                    routed(Op::gemm("moe.expert_fc1", per, fc1, d, p), by, per),
                );
                let (a, f) = act_op(c, "moe.expert_act", per * fe);
                e.mem(routed(a, by, per), f);
                push_gemm(
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
            push_gemm(e, mk(grouped("moe.expert_fc1", rows, fc1, d)));
            let (a, f) = act_op(c, "moe.expert_act", rows * fe);
            e.mem(mk(a), f);
            push_gemm(e, mk(grouped("moe.expert_fc2", rows, d, fe)));
        }
    }
}

/// A routed op over `groups` padded groups: its load is the per-group (max) count, so per-token
/// coefficients are per max-token and the GEMM rows are `groups * tokens`.
fn scale_routed(mut op: Op, groups: f64) -> Op {
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

/// Forward ops of `layer` for one micro-batch on one GPU (phase `Forward`), in launch order.
/// Routed ops hold the uniform-routing sizes.
pub fn layer_forward_ops(
    model: &ModelSpec,
    plan: &ParallelPlan,
    cfg: &OpsConfig,
    layer: u32,
) -> Vec<Op> {
    let c = Ctx::new(model, plan, cfg);
    let (mut fwd, mut bwd) = (Vec::new(), Vec::new());
    let mut e = Emit {
        fwd: &mut fwd,
        bwd: &mut bwd,
        layer: Some(layer),
    };
    emit_layer(&mut e, &c, layer);
    fwd
}

/// Forward and backward ops of one layer.
pub(super) fn emit_layer(e: &mut Emit, c: &Ctx, layer: u32) {
    attention(e, c);
    if c.model.is_moe_layer(layer) {
        moe_ffn(e, c);
    } else {
        dense_ffn(e, c, c.model.ffn_hidden as f64);
    }
}
