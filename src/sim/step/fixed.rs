//! The routing-independent part of a step, priced op by op from the step's operation list once
//! per knob setting: per layer and per stage, forward / backward (recompute included) time,
//! dynamic energy, busy and communication time; the per-step gradient sync, optimizer and
//! parameter gathers; and the routed ops of one MoE layer, kept as templates to re-size per step.

use super::memo::{table_of, PriceTable, RankTable, RoutedOp};
use super::moe::A2a;
use super::{Knobs, StepModel};
use crate::hardware::{is_router_op, PriceKnobs, PricedOp};
use crate::network::price_comm;
use crate::workload::step_ops::{GroupKind, KernelClass, Load, Op, Phase, RoutedBy, StepOps};
use crate::workload::{FfnKind, MoeSpec};

/// Cost of a run of ops on one GPU for one micro-batch.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct PassCost {
    /// Forward time on the critical path [s].
    pub f_s: f64,
    /// Backward time, recompute included [s].
    pub b_s: f64,
    /// Time the GPU computes (compute ops only) [s].
    pub busy_s: f64,
    /// Forward part of `busy_s` [s].
    pub busy_f_s: f64,
    /// Dynamic energy (above idle) of the compute ops [J].
    pub dyn_j: f64,
    /// Communication time on the critical path [s].
    pub comm_s: f64,
    /// Router / permutation time [s].
    pub router_s: f64,
}

/// One model chunk's gradient synchronisation on one pipeline stage.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct ChunkSync {
    /// All of it run after the chunk's last backward (no `overlap_grad_sync`) [s].
    pub all_s: f64,
    /// One per-layer bucket of its `dp.grad_sync` ops (`1 / layers` of their bytes, as
    /// Megatron-LM issues one per bucket) [s].
    pub bucket_s: f64,
    /// The part that is not bucketed (expert or tied-embedding syncs), run after the buckets [s].
    pub unbucketed_s: f64,
    /// The chunk's backward of one micro-batch after its last layer (embedding) [s].
    pub tail_b_s: f64,
    /// The chunk's parameter all-gathers after the optimizer (ZeRO 1/2) [s].
    pub gather_s: f64,
}

impl PassCost {
    fn add(&mut self, op: &Op, p: PricedOp, idle_w: f64) {
        if op.phase == Phase::Forward {
            self.f_s += p.time_s;
        } else {
            self.b_s += p.time_s;
        }
        if op.class.is_comm() {
            self.comm_s += p.time_s;
        } else {
            self.busy_s += p.time_s;
            if op.phase == Phase::Forward {
                self.busy_f_s += p.time_s;
            }
            self.dyn_j += (p.energy_j - idle_w * p.time_s).max(0.0);
            if is_router_op(op) {
                self.router_s += p.time_s;
            }
        }
    }
}

/// Costs that do not depend on routing, for one knob setting.
#[derive(Debug, Clone)]
pub(super) struct Fixed {
    /// The knob setting these prices are for.
    pub knobs: Knobs,
    /// Per layer, one micro-batch: every op of the layer but the routed ones.
    pub layers: Vec<PassCost>,
    /// Per layer, forward (`[0]`) and backward (`[1]`, recompute included): the time of the
    /// non-routed ops before the layer's first run of all-to-alls, between its runs, and after
    /// the last (all in `[0]` for a layer without all-to-alls) [s]. What the combined 1F1B
    /// schedule (`overlap_ep_comm`) overlaps with the other half's all-to-alls.
    pub seg: Vec<[[f64; 3]; 2]>,
    /// Per stage, one micro-batch: embedding, LM head, loss (ops outside any layer; pipeline
    /// sends excluded, they are the schedule's `p2p_s`).
    pub extra: Vec<PassCost>,
    /// One pipeline send of a micro-batch's activations (or gradients), the dearest boundary's [s].
    pub p2p_s: f64,
    /// Per stage boundary `b` (between stage `b` and stage `(b + 1) % pp`, the last one the
    /// interleaved schedule's wrap to stage 0): one send across it [s], over NVLink when every
    /// simulated rank's two stages share a node, else over the NIC (as the event level places
    /// the ranks, `event_step::graph`: Megatron-LM order, TP innermost, then DP, then stages).
    pub hops: Vec<f64>,
    /// Gradient synchronisation of the slowest stage (data-parallel reduce-scatter or all-reduce,
    /// expert-data-parallel, tied-embedding all-reduce) [s].
    pub dp_sync_s: f64,
    /// Per pipeline stage and model chunk (`s * v + c`; one chunk without interleaving): its
    /// gradient sync, which Megatron-LM runs per rank from one gradient buffer per chunk.
    pub chunk_sync: Vec<ChunkSync>,
    /// Optimizer update + parameter all-gathers of the slowest stage [s].
    pub opt_s: f64,
    /// Parameter all-gather part of `opt_s` [s].
    pub param_gather_s: f64,
    /// The optimizer's compute (update, FP8 weight casts) of the slowest stage, without the
    /// parameter all-gathers [s].
    pub opt_update_s: f64,
    /// Per layer, its ZeRO-3 / FSDP collectives: forward parameter gathers, backward gathers,
    /// gradient reduce-scatters [s] (empty without ZeRO-3 ops; `super::zero3` runs them on
    /// their stream).
    pub z3: Vec<[f64; 3]>,
    /// Per stage, its ops outside the layers of one micro-batch: forward before the layers
    /// (embedding), forward after them (head, loss), backward before them (head, loss),
    /// backward after them (embedding) [s].
    pub edges: Vec<[f64; 4]>,
    /// Optimizer dynamic energy summed over all GPUs of the job [J].
    pub opt_dyn_j: f64,
    /// Optimizer busy time summed over all GPUs of the job [s].
    pub opt_busy_gpu_s: f64,
    /// The routed ops of one MoE layer (uniform-routing sizes) priced per rank (all but the
    /// all-to-alls), in list order; looped experts are kept once (`LocalExpert(0)`) and priced
    /// per slot.
    pub priced: Vec<RoutedOp>,
    /// The routed dispatch/combine all-to-alls of one MoE layer, in list order.
    pub a2a: Vec<A2a>,
    /// Prices of `priced` at token counts seen before, one table per load kind (`table_of`).
    pub tables: [PriceTable; 3],
    /// What each rank's routed ops add up to, by its (load, largest expert) pair.
    pub ranks: RankTable,
    /// One MoE layer under perfectly balanced routing: critical time of the routed part [s].
    pub balanced_s: f64,
}

impl StepModel {
    /// The step's operation list at `knobs`' top-k and capacity factor (the router and dispatch
    /// sizes follow the top-k; padded expert slots and the dropless kernels the capacity factor).
    pub(super) fn ops_at(&self, knobs: Knobs) -> StepOps {
        let mut model = self.model.clone();
        if let FfnKind::Moe(m) = &self.model.ffn {
            model.ffn = FfnKind::Moe(MoeSpec {
                top_k: knobs.top_k.max(1),
                capacity_factor: knobs.capacity_factor.or(m.capacity_factor),
                ..m.clone()
            });
        }
        match crate::workload::step_ops::step_ops(&model, &self.plan, &self.ops_config) {
            Ok(ops) => ops,
            // Not reachable from any input: `step_ops` fails only when the plan's batch does not
            // divide into micro-batches, a property of the plan alone, and `StepModel::new` built
            // `self.ops` from this same plan (the knobs change only top-k and the capacity
            // factor). It used to fall back to the nominal op list, which would price the
            // wrong top-k without a word; a broken invariant now stops here instead.
            Err(e) => unreachable!("step_ops refused the plan StepModel::new accepted: {e}"),
        }
    }

    /// Ranks of a group of `kind` and `size` on the job's layout (Megatron order: tp fastest,
    /// then dp with the ep groups inside it, then pp).
    pub(super) fn group_of(&self, kind: GroupKind, size: u32) -> crate::network::Group {
        let stride = kind.rank_stride(self.plan.tp, self.plan.dp, self.plan.ep);
        self.group(size, stride)
    }

    /// One op's price on one GPU: compute ops on the accelerator, communication on the fabric.
    pub(super) fn price_op(&self, op: &Op, k: &PriceKnobs) -> PricedOp {
        match op.comm {
            Some(c) if op.class.is_comm() => price_comm(
                op,
                &self.fabric,
                self.group_of(c.group, c.size),
                self.acc.spin_w(),
            ),
            _ => self.acc.price(op, k),
        }
    }

    pub(super) fn price_knobs(&self, knobs: Knobs) -> PriceKnobs {
        PriceKnobs {
            power_limit_w: knobs.power_limit_w,
            precision: self.plan.precision,
        }
    }

    pub(super) fn compute_fixed(&self, knobs: Knobs) -> Fixed {
        let ops = if knobs.top_k == self.nominal_top_k && knobs.capacity_factor.is_none() {
            self.ops.clone()
        } else {
            self.ops_at(knobs)
        };
        let k = self.price_knobs(knobs);
        let idle = self.acc.idle_w;
        let mut layers = vec![PassCost::default(); self.model.layers as usize];
        let mut extra = Vec::with_capacity(ops.stages.len());
        let mut routed = Vec::new();
        let first_moe = (0..self.model.layers).find(|&l| self.moe_layer_of[l as usize].is_some());
        let (mut dp_sync_s, mut opt_s, mut param_gather_s) = (0.0f64, 0.0f64, 0.0f64);
        let mut opt_update_s = 0.0f64;
        let (mut opt_dyn_j, mut opt_busy_gpu_s) = (0.0, 0.0);
        let mut tail_b_s = 0.0;
        let mut send: Option<&Op> = None;
        let mut edges = Vec::with_capacity(ops.stages.len());
        let gpus_per_stage = f64::from(self.plan.dp * self.plan.tp);
        // ZeRO-3 / FSDP per layer: forward gathers, backward gathers, gradient reduce-scatters.
        let mut z3 = vec![[0.0f64; 3]; self.model.layers as usize];
        let mut seg = vec![[[0.0f64; 3]; 2]; self.model.layers as usize];
        for st in &ops.stages {
            let mut ex = PassCost::default();
            // Runs of all-to-alls seen so far in the current layer and half, and whether the
            // previous op was one.
            let (mut at, mut runs, mut prev_a2a) = ((None, false), 0usize, false);
            for op in st.micro_batch() {
                if op.class == KernelClass::SendRecv {
                    send = send.or(Some(op));
                    continue;
                }
                let here = (op.layer, op.phase != Phase::Forward);
                if here != at {
                    (at, runs, prev_a2a) = (here, 0, false);
                }
                let a2a = op.class == KernelClass::AllToAll;
                if a2a && !prev_a2a {
                    runs += 1;
                }
                prev_a2a = a2a;
                if op.is_routed() {
                    if op.layer == first_moe && keep_template(op) {
                        routed.push(op.clone());
                    }
                    continue;
                }
                let p = self.price_op(op, &k);
                match op.layer {
                    Some(l) if op.name.starts_with("zero3.") => {
                        let k = match (op.phase, op.class) {
                            (Phase::Forward, _) => 0,
                            (_, KernelClass::AllGather) => 1,
                            _ => 2,
                        };
                        z3[l as usize][k] += p.time_s;
                    }
                    Some(l) => {
                        layers[l as usize].add(op, p, idle);
                        seg[l as usize][here.1 as usize][runs.min(2)] += p.time_s;
                    }
                    None => ex.add(op, p, idle),
                }
            }
            extra.push(ex);
            // The ops outside the layers before and after them, forward and backward.
            let mut e = [0.0; 4];
            for (h, list) in [&st.forward, &st.backward].into_iter().enumerate() {
                let mut after = false;
                for op in list.iter().filter(|o| o.class != KernelClass::SendRecv) {
                    after |= op.layer.is_some();
                    if op.layer.is_none() {
                        e[2 * h + after as usize] += self.price_op(op, &k).time_s;
                    }
                }
            }
            edges.push(e);
            if st.stage == 0 {
                tail_b_s = st
                    .backward
                    .iter()
                    .rev()
                    .take_while(|o| o.layer.is_none())
                    .filter(|o| o.class != KernelClass::SendRecv)
                    .map(|o| self.price_op(o, &k).time_s)
                    .sum();
            }
        }
        // Each stage boundary's send, priced by where its two stages sit: simulated rank `d` of
        // stage `s` on node `tp (d + dp s) / gpus_per_node` (the event level simulates the ep
        // ranks of a stage, one without experts); a boundary crosses nodes if any rank's does.
        let (tp, dp, pp) = (
            self.plan.tp.max(1),
            self.plan.dp.max(1),
            self.plan.pp.max(1),
        );
        let ranks = if self.experts > 0 {
            self.plan.ep.max(1)
        } else {
            1
        };
        let gpn = self.gpus_per_node.max(1);
        let node = |s: u32, d: u32| tp * (d + dp * s) / gpn;
        let hops: Vec<f64> = (0..pp)
            .map(|b| {
                let crosses = (0..ranks).any(|d| node(b, d) != node((b + 1) % pp, d));
                let group = crate::network::Group::new(2, if crosses { 1 } else { 2 });
                send.map_or(0.0, |op| {
                    crate::network::price_comm(op, &self.fabric, group, self.acc.spin_w()).time_s
                })
            })
            .collect();
        let p2p_s = if pp > 1 {
            hops.iter().copied().fold(0.0, f64::max)
        } else {
            0.0
        };
        // Per stage and chunk the gradient sync and, summed over its chunks, the optimizer
        // (from the chunks' own per-step ops: with interleaving a stage's parameters are those
        // of its chunks, not of the plain split).
        let v = self.schedule.virtual_stages.max(1) as usize;
        let mut chunk_sync = Vec::with_capacity(self.chunk_steps.len());
        let (mut opt, mut gather, mut sync) = (0.0, 0.0, 0.0);
        for (i, (per_step, nl)) in self.chunk_steps.iter().enumerate() {
            let mut cs = ChunkSync::default();
            if i % v == 0 {
                (opt, gather, sync) = (0.0, 0.0, 0.0);
            }
            for op in per_step {
                let p = self.price_op(op, &k);
                match (op.phase, op.class.is_comm()) {
                    (Phase::Optimizer, true) => {
                        gather += p.time_s;
                        cs.gather_s += p.time_s;
                    }
                    (_, false) => {
                        opt += p.time_s;
                        opt_dyn_j += (p.energy_j - idle * p.time_s).max(0.0) * gpus_per_stage;
                        opt_busy_gpu_s += p.time_s * gpus_per_stage;
                    }
                    (_, true) => {
                        cs.all_s += p.time_s;
                        if op.name == "dp.grad_sync" {
                            let mut b = op.clone();
                            if let Some(c) = b.comm.as_mut() {
                                c.bytes_per_rank /= f64::from((*nl).max(1));
                            }
                            cs.bucket_s += self.price_op(&b, &k).time_s;
                        } else {
                            cs.unbucketed_s += p.time_s;
                        }
                    }
                }
            }
            // Only the first chunk of stage 0 ends its backward with ops outside the layers
            // (the embedding's); the head and loss lead the last chunk's backward.
            if i == 0 {
                cs.tail_b_s = tail_b_s;
            }
            sync += cs.all_s;
            chunk_sync.push(cs);
            if i % v == v - 1 {
                dp_sync_s = dp_sync_s.max(sync);
                opt_s = opt_s.max(opt + gather);
                param_gather_s = param_gather_s.max(gather);
                opt_update_s = opt_update_s.max(opt);
            }
        }
        // ZeRO-3 / FSDP: each layer's gathers and reduce-scatters run on their own stream
        // (`super::zero3`), pass by pass in the schedule; none of them is on the layers' times.
        let has_z3 = ops
            .stages
            .iter()
            .flat_map(|st| st.forward.iter().chain(&st.backward))
            .any(|o| o.name.starts_with("zero3."));
        if !has_z3 {
            z3.clear();
        }
        let mut priced: Vec<RoutedOp> = routed
            .iter()
            .filter(|op| op.class != KernelClass::AllToAll)
            .filter_map(|op| match op.load {
                Load::Routed { by, .. } => Some(RoutedOp {
                    op: op.clone(),
                    by,
                    forward: op.phase == Phase::Forward,
                    busy: !op.class.is_comm(),
                    col: 0,
                }),
                Load::Fixed => None,
            })
            .collect();
        let mut cols: [Vec<usize>; 3] = Default::default();
        for (i, p) in priced.iter_mut().enumerate() {
            let t = &mut cols[table_of(p.by)];
            p.col = t.len();
            t.push(i);
        }
        let mut a2a: Vec<A2a> = Vec::new();
        for op in routed.iter().filter(|op| op.class == KernelClass::AllToAll) {
            let a = A2a::new(op, &a2a);
            a2a.push(a);
        }
        Fixed {
            knobs,
            layers,
            seg,
            extra,
            p2p_s,
            dp_sync_s,
            chunk_sync,
            opt_s,
            param_gather_s,
            opt_update_s,
            hops,
            z3,
            edges,
            opt_dyn_j,
            opt_busy_gpu_s,
            tables: cols.map(PriceTable::new),
            ranks: RankTable::new(&priced, self.plan.ep.max(1) as usize),
            priced,
            a2a,
            balanced_s: 0.0,
        }
    }
}

/// Looped experts emit one op chain per local expert; one chain is the template.
fn keep_template(op: &Op) -> bool {
    !matches!(
        op.load,
        Load::Routed {
            by: RoutedBy::LocalExpert(x),
            ..
        } if x > 0
    )
}
