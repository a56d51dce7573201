//! The fast per-step model: one optimizer step's time and GPU energy from the routing loads of that
//! step and the strategy's knobs, without building the event graph (checked against `step_events`).

use crate::hardware::{is_router_op, Accelerator, ExpertKernel, KernelCost, Precision, PriceKnobs};
use crate::network::{Fabric, Group};
use crate::routing::{Placement, PlacementPolicy};
use crate::scenario::{Cluster, Job, RoutingChoice};
use crate::workload::{self, FfnKind, ModelSpec, ParallelPlan};

mod moe;

/// The strategy's knobs for a step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Knobs {
    /// GPU power limit [W].
    pub power_limit_w: f64,
    /// Experts per token.
    pub top_k: u32,
    /// Micro-batches per step (the global batch is this × micro-batch × dp sequences).
    pub micro_batches: u32,
}

/// Time and energy of one optimizer step of the whole job.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StepCost {
    /// Wall-clock time of the step [s].
    pub time_s: f64,
    /// Energy of all GPUs of the job over the step [J] (idle power included).
    pub gpu_energy_j: f64,
    /// Part of `gpu_energy_j` drawn at spin power while GPUs wait (bubbles, stragglers, exposed communication) [J].
    pub waiting_energy_j: f64,
    /// Tokens trained in the step.
    pub tokens: f64,
    /// Token-to-expert assignments routed (all MoE layers, all replicas).
    pub assignments: f64,
    /// Assignments dropped by the capacity limit.
    pub dropped: f64,
    /// Time of router/gating work on the critical path [s].
    pub router_s: f64,
    /// Time lost on the critical path to expert-load imbalance against a perfectly balanced router [s].
    pub straggler_s: f64,
    /// Communication time on the critical path [s].
    pub comm_s: f64,
}

/// Forward and backward cost of one micro-batch on one GPU of one pipeline stage.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StagePass {
    /// Forward time [s].
    pub fwd_s: f64,
    /// Backward time [s] (recomputation included).
    pub bwd_s: f64,
    /// Dynamic energy (above idle) of one GPU over forward + backward [J].
    pub dyn_j: f64,
    /// Time the GPU computes (not waiting) over forward + backward [s].
    pub busy_s: f64,
}

/// Costs that do not depend on routing, for one knob setting.
#[derive(Debug, Clone)]
struct Fixed {
    knobs: Knobs,
    /// Per layer (fwd+bwd, one micro-batch, one GPU): time [s] and dynamic energy [J] of everything but the MoE block.
    layer_s: Vec<f64>,
    layer_dyn_j: Vec<f64>,
    /// Extra time / energy on the first stage (embedding) and last stage (LM head + loss).
    first_s: f64,
    first_dyn_j: f64,
    last_s: f64,
    last_dyn_j: f64,
    p2p_s: f64,
    dp_sync_s: f64,
    optimizer_s: f64,
    optimizer_dyn_j: f64,
    /// Router cost per MoE layer per micro-batch (fwd+bwd).
    router: KernelCost,
    /// One MoE layer under perfectly balanced routing: expert time of a rank and all-to-all time [s].
    balanced_expert_s: f64,
    balanced_comm_s: f64,
}

/// The per-step model of one job on one cluster.
#[derive(Debug, Clone)]
pub struct StepModel {
    acc: Accelerator,
    fabric: Fabric,
    model: ModelSpec,
    plan: ParallelPlan,
    kernel: ExpertKernel,
    /// The job's framework settings the operation list is built with (router kernel, optimizer…).
    ops_config: workload::step_ops::OpsConfig,
    precision: Precision,
    gpus: u32,
    gpus_per_node: u32,
    /// Tokens each GPU of a TP group processes per micro-batch.
    tokens_per_mb: f64,
    experts: usize,
    experts_per_rank: usize,
    nominal_top_k: u32,
    capacity_factor: Option<f64>,
    moe_layer_of: Vec<Option<usize>>,
    cache: Vec<Fixed>,
    counts: Vec<u32>,
    send: Vec<f64>,
    recv: Vec<f64>,
    stage_f: Vec<f64>,
    stage_b: Vec<f64>,
    stage_x: Vec<[f64; 3]>,
    choice: RoutingChoice,
    placement: Placement,
    placement_policy: PlacementPolicy,
    rebalance_every: Option<u64>,
    /// Shares summed since the last placement, and how many steps they cover.
    acc_shares: Vec<f64>,
    acc_steps: u64,
    /// Bytes of one expert slot's weights, gradients and optimizer states on one GPU [bytes].
    slot_bytes: f64,
    /// Expert slots moved by rebalancing so far (most loaded rank, summed over rebalances).
    moved_slots: u64,
}

fn dyn_j(c: KernelCost, idle_w: f64) -> f64 {
    (c.energy_j - idle_w * c.time_s).max(0.0)
}

impl StepModel {
    /// A step model for `job` on `cluster`.
    pub fn new(job: &Job, cluster: &Cluster) -> Self {
        let precision = job.plan.precision;
        let model = job.model.clone();
        let plan = job.plan.clone();
        let (experts, nominal_top_k, capacity_factor) = match &model.ffn {
            FfnKind::Moe(m) => (m.experts as usize, m.top_k, m.capacity_factor),
            FfnKind::Dense => (0, 0, None),
        };
        let mut moe_layer_of = Vec::with_capacity(model.layers as usize);
        let mut n = 0;
        for l in 0..model.layers {
            if model.is_moe_layer(l) {
                moe_layer_of.push(Some(n));
                n += 1;
            } else {
                moe_layer_of.push(None);
            }
        }
        let ep = plan.ep.max(1) as usize;
        let experts_per_rank = if experts > 0 { experts / ep } else { 0 };
        let moe_layers = moe_layer_of.iter().filter(|x| x.is_some()).count();
        let placement = Placement::new(PlacementPolicy::Contiguous, moe_layers, experts, ep, &[]);
        // bf16 weights and gradients + fp32 master weights, Adam m and v: 16 bytes per parameter (ZeRO paper).
        let slot_bytes = match &model.ffn {
            FfnKind::Moe(m) => {
                3.0 * model.d_model as f64 * m.expert_ffn_hidden as f64 / plan.tp as f64 * 16.0
            }
            FfnKind::Dense => 0.0,
        };
        Self {
            acc: cluster.accelerator.clone(),
            fabric: cluster.fabric,
            tokens_per_mb: plan.micro_batch_seqs as f64 * model.seq_len as f64,
            model,
            plan,
            kernel: job.expert_kernel,
            ops_config: job.ops_config(),
            precision,
            gpus: cluster.gpus,
            gpus_per_node: cluster.gpus_per_node,
            experts,
            experts_per_rank,
            nominal_top_k,
            capacity_factor,
            moe_layer_of,
            cache: Vec::new(),
            counts: vec![0; experts_per_rank.max(1)],
            send: vec![0.0; ep],
            recv: vec![0.0; ep],
            stage_f: Vec::new(),
            stage_b: Vec::new(),
            stage_x: Vec::new(),
            choice: RoutingChoice::TokenChoice,
            placement,
            placement_policy: PlacementPolicy::Contiguous,
            rebalance_every: None,
            acc_shares: vec![0.0; moe_layers * experts],
            acc_steps: 0,
            slot_bytes,
            moved_slots: 0,
        }
    }

    /// Knobs of full-speed training: TDP, nominal top-k, all micro-batches.
    pub fn full_knobs(&self) -> Knobs {
        Knobs {
            power_limit_w: self.acc.tdp_w,
            top_k: self.nominal_top_k,
            micro_batches: self.plan.micro_batches().unwrap_or(1),
        }
    }

    /// MoE layers in the model.
    pub fn moe_layers(&self) -> usize {
        self.moe_layer_of.iter().filter(|x| x.is_some()).count()
    }

    /// Experts per MoE layer (0 for dense).
    pub fn experts(&self) -> usize {
        self.experts
    }

    /// Token-to-expert assignments per MoE layer per micro-batch in one expert-parallel group at `top_k`.
    pub fn assignments_per_layer(&self, top_k: u32) -> f64 {
        self.tokens_per_mb * self.plan.ep as f64 * top_k as f64
    }

    /// Tokens trained per step with `knobs`.
    pub fn tokens_per_step(&self, knobs: Knobs) -> f64 {
        knobs.micro_batches.max(1) as f64 * self.plan.dp as f64 * self.tokens_per_mb
    }

    /// Number of GPUs in the job.
    pub fn gpus(&self) -> u32 {
        self.gpus
    }

    fn group(&self, size: u32, stride: u32) -> Group {
        // Ranks of a group `stride` apart: how many share a node.
        let per_node = (self.gpus_per_node / stride.max(1)).max(1).min(size);
        Group {
            size,
            ranks_per_node: per_node,
        }
    }

    fn fixed(&mut self, knobs: Knobs) -> usize {
        if let Some(i) = self.cache.iter().position(|f| f.knobs == knobs) {
            return i;
        }
        let mut f = self.compute_fixed(knobs);
        (f.balanced_expert_s, f.balanced_comm_s) = self.balanced_moe(knobs);
        self.cache.push(f);
        self.cache.len() - 1
    }

    fn compute_fixed(&self, knobs: Knobs) -> Fixed {
        let acc = &self.acc;
        let idle = acc.idle_w;
        let pl = knobs.power_limit_w;
        let prec = self.precision;
        let m = &self.model;
        let plan = &self.plan;
        let tp_group = self.group(plan.tp, 1);
        let recompute = if plan.recompute.is_on() { 1.0 } else { 0.0 };
        let mut layer_s = Vec::with_capacity(m.layers as usize);
        let mut layer_dyn_j = Vec::with_capacity(m.layers as usize);
        for l in 0..m.layers {
            let w = workload::layer_work(m, plan, l);
            let mut t = 0.0;
            let mut e = 0.0;
            // Matmuls: forward once, backward twice the FLOPs (input and weight gradients), recompute adds a forward.
            let mut add_gemm = |g: &workload::Gemm| {
                let c = acc.gemm(g.m, g.n, g.k, prec, pl);
                let b1 = acc.gemm(g.m, g.k, g.n, prec, pl);
                let b2 = acc.gemm(g.k, g.n, g.m, prec, pl);
                t += c.time_s * (1.0 + recompute) + b1.time_s + b2.time_s;
                e += dyn_j(c, idle) * (1.0 + recompute) + dyn_j(b1, idle) + dyn_j(b2, idle);
            };
            for g in &w.attn_gemms {
                add_gemm(g);
            }
            if let Some(ffn) = &w.dense_ffn {
                for g in ffn {
                    add_gemm(g);
                }
            }
            if let Some(moe) = &w.moe {
                if let Some(sh) = &moe.shared_expert {
                    for g in sh {
                        add_gemm(g);
                    }
                }
            }
            let a = &w.attn_core;
            let c = acc.attention_fwd_bwd(a.batch, a.heads_per_gpu, a.seq, a.head_dim, prec, pl);
            t += c.time_s * (1.0 + recompute / 3.0);
            e += dyn_j(c, idle) * (1.0 + recompute / 3.0);
            // Norms, residuals, activations: memory-bound, forward and backward.
            let c = acc.memory_op(w.norm_bytes * 3.0, pl);
            t += c.time_s;
            e += dyn_j(c, idle);
            // Tensor-parallel all-reduces: 2 forward, 2 backward (Megatron-LM).
            t += 4.0 * self.fabric.all_reduce_s(w.tp_allreduce_bytes, tp_group);
            layer_s.push(t);
            layer_dyn_j.push(e);
        }
        let c = acc.memory_op(workload::embedding_work_bytes(m, plan) * 3.0, pl);
        let (first_s, first_dyn_j) = (c.time_s, dyn_j(c, idle));
        let head = workload::head_work(m, plan);
        let f = acc.gemm(head.m, head.n, head.k, prec, pl);
        let b1 = acc.gemm(head.m, head.k, head.n, prec, pl);
        let b2 = acc.gemm(head.k, head.n, head.m, prec, pl);
        let last_s = f.time_s + b1.time_s + b2.time_s;
        let last_dyn_j = dyn_j(f, idle) + dyn_j(b1, idle) + dyn_j(b2, idle);
        let act_bytes =
            self.tokens_per_mb * m.d_model as f64 * plan.precision_bytes() / plan.tp as f64;
        let crosses = plan.pp > 1 && self.gpus > self.gpus_per_node;
        let p2p_s = if plan.pp > 1 {
            self.fabric.p2p_s(act_bytes, crosses)
        } else {
            0.0
        };
        // Dense gradients over all dp replicas, expert gradients over the dp/ep replicas of each expert
        // (expert replicas sit ep ranks apart).
        let g = workload::dp_grad_sync(m, plan);
        let dp_sync_s = self
            .fabric
            .all_reduce_s(g.dense_bytes, self.group(g.dense_group, plan.tp))
            + self.fabric.all_reduce_s(
                g.expert_bytes,
                self.group(g.expert_group, plan.tp * plan.ep.max(1)),
            );
        let opt = acc.memory_op(workload::optimizer_update_bytes(m, plan), pl);
        let router = self.router_cost(knobs);
        Fixed {
            knobs,
            layer_s,
            layer_dyn_j,
            first_s,
            first_dyn_j,
            last_s,
            last_dyn_j,
            p2p_s,
            dp_sync_s,
            optimizer_s: opt.time_s,
            optimizer_dyn_j: dyn_j(opt, idle),
            router,
            balanced_expert_s: 0.0,
            balanced_comm_s: 0.0,
        }
    }

    /// Router and token permutation of one MoE layer, one micro-batch, forward + backward, priced
    /// from the operation list at `knobs` (gate GEMM, score, top-k, aux loss, permute/unpermute
    /// with the eager launch counts of `workload::step_ops`).
    fn router_cost(&self, knobs: Knobs) -> KernelCost {
        let FfnKind::Moe(moe) = &self.model.ffn else {
            return KernelCost::default();
        };
        let mut model = self.model.clone();
        model.ffn = FfnKind::Moe(workload::MoeSpec {
            top_k: knobs.top_k.max(1),
            ..moe.clone()
        });
        let Some(first) = (0..model.layers).find(|&l| model.is_moe_layer(l)) else {
            return KernelCost::default();
        };
        let k = PriceKnobs {
            power_limit_w: knobs.power_limit_w,
            precision: self.precision,
        };
        match workload::step_ops::step_ops(&model, &self.plan, &self.ops_config) {
            Ok(ops) => ops
                .stages
                .iter()
                .flat_map(|st| st.micro_batch())
                .filter(|o| o.layer == Some(first) && is_router_op(o))
                .fold(KernelCost::default(), |c, o| {
                    c.then(self.acc.price(o, &k).as_cost())
                }),
            Err(_) => KernelCost::default(),
        }
    }

    /// Cost of one step given `shares` (MoE layers × experts, each row summing to 1; empty for dense).
    pub fn step(&mut self, shares: &[f64], knobs: Knobs) -> StepCost {
        let fi = self.fixed(knobs);
        let migration_s = self.maybe_rebalance(shares);
        let pp = self.plan.pp as usize;
        let layers_per_stage = (self.model.layers as usize).div_ceil(pp);
        let ep = self.plan.ep.max(1) as f64;
        let idle = self.acc.idle_w;
        let mb = knobs.micro_batches.max(1) as f64;
        self.stage_f.clear();
        self.stage_b.clear();
        let mut gpu_dyn_j = 0.0;
        let mut busy_gpu_s = 0.0; // summed over all GPUs
        let mut dropped = 0.0;
        // Router, straggler and communication time per stage and micro-batch, to be put on the critical path.
        self.stage_x.clear();
        let gpus_per_stage = (self.plan.dp * self.plan.tp) as f64;
        let e = self.experts;
        for s in 0..pp {
            let (mut t, mut dyn_gpu, mut busy) = (0.0, 0.0, 0.0);
            let (mut router_s, mut straggler_s, mut comm_s) = (0.0, 0.0, 0.0);
            let lo = s * layers_per_stage;
            let hi = ((s + 1) * layers_per_stage).min(self.model.layers as usize);
            for l in lo..hi {
                let f = &self.cache[fi];
                t += f.layer_s[l];
                dyn_gpu += f.layer_dyn_j[l];
                busy += f.layer_s[l];
                if let Some(ml) = self.moe_layer_of[l] {
                    let router = f.router;
                    t += router.time_s;
                    dyn_gpu += dyn_j(router, idle);
                    busy += router.time_s;
                    router_s += router.time_s;
                    let (bt, bdyn, bbusy, bdrop, bstr, bcomm) =
                        self.moe_block(ml, &shares[ml * e..(ml + 1) * e], knobs, fi);
                    t += bt;
                    dyn_gpu += bdyn / ep;
                    busy += bbusy / ep;
                    dropped += bdrop;
                    straggler_s += bstr;
                    comm_s += bcomm;
                }
            }
            let f = &self.cache[fi];
            if s == 0 {
                t += f.first_s;
                dyn_gpu += f.first_dyn_j;
                busy += f.first_s;
            }
            if s + 1 == pp {
                t += f.last_s;
                dyn_gpu += f.last_dyn_j;
                busy += f.last_s;
            }
            self.stage_x.push([router_s, straggler_s, comm_s]);
            // Forward is a third of forward + backward for matmul-dominated work.
            self.stage_f.push(t / 3.0);
            self.stage_b.push(t * 2.0 / 3.0);
            gpu_dyn_j += dyn_gpu * mb * gpus_per_stage;
            busy_gpu_s += busy * mb * gpus_per_stage;
        }
        let f = &self.cache[fi];
        let pipe = pipeline_1f1b_s(&self.stage_f, &self.stage_b, mb as u32, f.p2p_s);
        // The gradient all-reduce overlaps the last backward pass of stage 0, the last stage to finish.
        let exposed_dp = (f.dp_sync_s - self.stage_b[0]).max(0.0);
        let time_s = pipe + exposed_dp + f.optimizer_s + migration_s;
        gpu_dyn_j += f.optimizer_dyn_j * self.gpus as f64;
        busy_gpu_s += f.optimizer_s * self.gpus as f64;
        let gpus = self.gpus as f64;
        let waiting_s = (gpus * time_s - busy_gpu_s).max(0.0);
        let replicas = self.plan.dp as f64 / ep;
        let moe_layers = self.moe_layers() as f64;
        // On the 1F1B critical path every stage counts once and the slowest stage m-1 more times.
        let slowest = (0..pp)
            .max_by(|&a, &b| {
                (self.stage_f[a] + self.stage_b[a]).total_cmp(&(self.stage_f[b] + self.stage_b[b]))
            })
            .unwrap_or(0);
        let mut crit = [0.0; 3];
        for (k, c) in crit.iter_mut().enumerate() {
            *c = self.stage_x.iter().map(|x| x[k]).sum::<f64>()
                + (mb - 1.0) * self.stage_x[slowest][k];
        }
        // A waiting GPU (bubble, straggler wait, exposed communication) spins in a collective or a
        // synchronisation with its clock held high: it draws `spin_w`, not idle (see presets.rs).
        let spin = self.acc.spin_w();
        StepCost {
            time_s,
            gpu_energy_j: gpus * idle * time_s + gpu_dyn_j + (spin - idle) * waiting_s,
            waiting_energy_j: spin * waiting_s,
            tokens: mb * self.plan.dp as f64 * self.tokens_per_mb,
            assignments: self.assignments_per_layer(knobs.top_k) * moe_layers * mb * replicas,
            dropped: dropped * mb * replicas,
            router_s: crit[0],
            straggler_s: crit[1],
            comm_s: crit[2] + exposed_dp + migration_s,
        }
    }

    /// Time of the data-parallel gradient synchronisation and the pipeline p2p transfer for `knobs` [s].
    pub fn sync_times(&mut self, knobs: Knobs) -> (f64, f64) {
        let fi = self.fixed(knobs);
        (self.cache[fi].dp_sync_s, self.cache[fi].p2p_s)
    }

    /// Per-stage forward/backward times of the last `step` call [s].
    pub fn last_stage_times(&self) -> (&[f64], &[f64]) {
        (&self.stage_f, &self.stage_b)
    }
}

/// Makespan of a 1F1B pipeline step [s]: the first micro-batch crosses every stage forward and backward,
/// the remaining ones are paced by the slowest stage; plus p2p transfers on the fill and drain.
pub fn pipeline_1f1b_s(fwd: &[f64], bwd: &[f64], micro_batches: u32, p2p_s: f64) -> f64 {
    let p = fwd.len();
    let sum: f64 = fwd.iter().zip(bwd).map(|(f, b)| f + b).sum();
    let slow = fwd.iter().zip(bwd).map(|(f, b)| f + b).fold(0.0, f64::max);
    sum + (micro_batches.max(1) - 1) as f64 * slow + 2.0 * (p.saturating_sub(1)) as f64 * p2p_s
}
