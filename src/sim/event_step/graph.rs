//! The op graph of one step: each stage's priced op lists, the 1F1B order of its passes, where
//! the simulated GPUs sit, and each step's routing loads per expert-parallel rank.
//!
//! * [`order`]: the 1F1B and interleaved 1F1B pass orders.
//! * [`routing`]: the routing loads and the routed ops' prices.

use super::combined::{combined_order, merge, Item};
use super::{EventStepError, EventStepInput};
use crate::hardware::PriceKnobs;
use crate::routing::{Placement, PlacementPolicy};
use crate::scenario::RoutingChoice;
use crate::sim::Knobs;
use crate::workload::step_ops::{step_ops, Op, Phase, StageOps};
use crate::workload::{FfnKind, ModelSpec, MoeSpec, ParallelPlan, PipelineKind, Recompute};

mod order;
mod param_gather;
mod routing;

pub(super) use param_gather::ParamGather;

pub(super) use order::{dualpipe, interleaved, one_f_one_b, PassTable};

/// Sentinel for "not routed" / "no link".
pub(super) const NONE: u32 = u32::MAX;

/// Price of one compute op on one GPU: duration [ns] and mean power [W].
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Priced {
    pub ns: u64,
    pub power_w: f64,
}

/// A pass of the pipeline schedule: forward or backward of one micro-batch through one model
/// chunk of the stage (chunk 0 without interleaving).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Pass {
    pub bwd: bool,
    pub mb: u32,
    pub chunk: u32,
}

/// One model chunk of a stage (virtual stage `chunk * pp + stage` of the interleaved schedule;
/// the whole stage without interleaving): its op ranges in the stage's lists.
#[derive(Clone, Debug)]
pub(super) struct Chunk {
    /// Forward ops of one micro-batch: `fwd.0..fwd.1` of `Stage::ops`.
    pub fwd: (u32, u32),
    /// Backward ops of one micro-batch (recompute included).
    pub bwd: (u32, u32),
    /// Its gradient-sync ops in `Stage::per_step` (its own gradient buffer, as Megatron-LM
    /// keeps one DDP buffer per model chunk).
    pub per_step: (u32, u32),
    /// Layers of the chunk (for gradient buckets).
    pub layers: u32,
    /// First virtual stage (its forward input is in memory) / last (its backward starts from
    /// the loss).
    pub first: bool,
    pub last: bool,
    /// ZeRO-3 parameter-gather groups of its forward and backward (`[fwd, bwd]`): ranges of
    /// `Stage::groups`.
    pub groups: [(u32, u32); 2],
}

impl Chunk {
    /// Op range of the chunk's forward (`bwd` false) or backward.
    #[inline]
    pub fn range(&self, bwd: bool) -> (usize, usize) {
        let r = if bwd { self.bwd } else { self.fwd };
        (r.0 as usize, r.1 as usize)
    }
}

/// One pipeline stage's ops (shared by its simulated GPUs) and the prices of its fixed ops.
#[derive(Clone, Debug)]
pub(super) struct Stage {
    /// Per chunk, forward ops then backward ops of one micro-batch (see [`Chunk`]).
    pub ops: Vec<Op>,
    pub chunks: Vec<Chunk>,
    /// Once-per-step ops (gradient sync, optimizer, parameter gathers), chunk after chunk.
    pub per_step: Vec<Op>,
    /// Price of each op of `ops` then `per_step` (routed ops: see the GPU's own table).
    pub fixed: Vec<Priced>,
    /// For each op of `ops`: its index among the stage's routed compute ops, or [`NONE`].
    pub routed_slot: Vec<u32>,
    /// Routed compute ops of `ops` (indices).
    pub routed: Vec<u32>,
    /// Passes in schedule order (1F1B or interleaved 1F1B; combined 1F1B with
    /// `overlap_ep_comm`, where `order[k]` is the forward half of a combined pass).
    pub order: Vec<Pass>,
    /// Per pass of `order`: the backward half (micro-batch, model chunk) of a combined pass.
    pub pair: Vec<Option<(u32, u32)>>,
    /// Combined passes' merged op lists, forward chunk `cf` with backward chunk `cb` at
    /// `cf * v + cb` (empty without `overlap_ep_comm`).
    pub merged: Vec<Vec<Item>>,
    /// Whether op `i` of `ops` is the last backward op of its layer (a gradient bucket is ready).
    pub bucket_end: Vec<bool>,
    /// DualPipe: per pass of `order` and one more for the end, the inputs the commit before it
    /// waits for and the pipeline sends it launches (see `order::dualpipe`; empty otherwise).
    pub needs: Vec<Vec<Pass>>,
    pub sends: Vec<Vec<Pass>>,
    /// ZeRO-3 parameter-gather groups (a layer's consecutive `zero3.param_gather` ops): op
    /// ranges of `ops`.
    pub groups: Vec<(u32, u32)>,
    /// For each op of `ops`: the gather group it starts, or [`NONE`].
    pub group_at: Vec<u32>,
    /// The distributed optimizer's parameter-gather buckets under the first forward
    /// (`overlap_param_gather`; empty otherwise).
    pub pg: ParamGather,
}

impl Stage {
    /// Op range of `pass`.
    #[inline]
    pub fn range(&self, pass: Pass) -> (usize, usize) {
        self.chunks[pass.chunk as usize].range(pass.bwd)
    }

    /// Gather groups of `pass` (range of `groups`).
    #[inline]
    pub fn pass_groups(&self, pass: Pass) -> (u32, u32) {
        self.chunks[pass.chunk as usize].groups[pass.bwd as usize]
    }
}

/// Everything a step simulation needs that does not change from step to step at fixed knobs.
#[derive(Clone, Debug)]
pub(super) struct Graph {
    pub knobs: Knobs,
    pub stages: Vec<Stage>,
    /// Simulated ranks per stage: the expert-parallel group (1 without experts).
    pub ep: u32,
    pub pp: u32,
    pub tp: u32,
    pub dp: u32,
    /// Model chunks per stage (interleaved 1F1B; 1 = plain 1F1B; 2 under DualPipe).
    pub v: u32,
    /// DeepSeek's DualPipe: stage `s` holds model chunk 0 = pipeline stage `s` (direction 0) and
    /// chunk 1 = stage `pp-1-s` (direction 1), half the micro-batches each.
    pub dual: bool,
    /// Micro-batches each model chunk runs (`m`; `m / 2` under DualPipe).
    pub chunk_mbs: u32,
    /// Real GPUs each simulated GPU stands for (its TP peers and the identical EP groups).
    pub twins: f64,
    /// Node of each simulated GPU (`stage * ep + rank`).
    pub node: Vec<u32>,
    pub gpus_per_node: u32,
    /// MoE layer index of each layer.
    pub moe_of: Vec<Option<u32>>,
    pub moe_layers: u32,
    /// Per MoE layer: the stage that holds it ([`NONE`] if none does; under DualPipe one of its
    /// two holders, the other being `pp - 1 - stage`) and its layer index.
    pub moe_stage: Vec<u32>,
    pub moe_layer_index: Vec<u32>,
    pub experts: u32,
    /// Token-expert assignments of one MoE layer, one micro-batch, in the EP group.
    pub assignments: f64,
    pub capacity: Option<f64>,
    pub choice: RoutingChoice,
    /// Per simulated GPU, the prices of its stage's routed ops (`routed.len()` each).
    pub routed_price: Vec<Priced>,
    /// Start of each stage's GPUs in `routed_price`.
    pub routed_base: Vec<usize>,
    /// Assignments each simulated GPU's experts receive per micro-batch, per MoE layer
    /// (`gpu * moe_layers + moe_layer`).
    pub recv: Vec<f64>,
    /// Per GPU and MoE layer: the kept load of each local slot (`slot_off` indexes it).
    pub slot_load: Vec<f64>,
    pub slot_off: Vec<u32>,
    /// Assignments dropped by the capacity limit in one micro-batch of the EP group.
    pub dropped: f64,
    pub price_knobs: PriceKnobs,
    /// Per MoE layer, source rank and destination rank: kept assignments the source's tokens
    /// send to the destination's experts per micro-batch (`(ml * ep + src) * ep + dst`). Empty
    /// when every source routes alike (one share row per layer): then source `i` sends rank `j`
    /// `recv[j] / ep`.
    pub pairs: Vec<f64>,
    /// The all-to-alls carry a buffer padded to the group's largest expert count (Tutel,
    /// `RoutedBy::MaxLocalExpert`): every rank sends every other the same bytes. Set once from
    /// the op lists (they do not change with the routing).
    pub padded_a2a: bool,
    /// Some op (compute or all-to-all) is sized by the group's largest expert count: only then
    /// does `set_routing` work out `pad_m` (a pass over every GPU's slots per MoE layer).
    pub padded: bool,
    /// Per MoE layer: the group's padded capacity per local expert (its largest slot load times
    /// the layer's sampling factor, `EventStepInput::pad_spread`), what padded ops are sized by.
    pub pad_m: Vec<f64>,
    /// Expert-parallel groups up to this size exchange all-to-all traffic as one flow per rank
    /// pair; larger ones as per-port aggregates (see `sched::collective`).
    pub pair_flow_max: u32,
    /// Larger groups exchange node-pair flows (their nodes are at most
    /// [`NODE_PAIR_MAX_NODES`]), or else node aggregates on a fat tree (`sched::node_agg`) and
    /// per-port aggregates on a torus.
    pub node_pairs: bool,
}

/// Largest expert-parallel group whose all-to-alls are simulated with one flow per rank pair
/// by default: 64 ranks is 4,032 flows per all-to-all; beyond it the flows are aggregated per
/// port (the 1,024-GPU step would otherwise carry ~10^6 flows per all-to-all).
pub(super) const PAIR_FLOW_MAX: u32 = 64;

/// Most nodes an expert-parallel group may span for node-pair all-to-all flows; larger groups
/// use node aggregates (fat tree; `sched::node_agg`) or per-port aggregates (torus), with a
/// group barrier. Equal-share re-timing costs about `nodes^3`
/// flow visits per all-to-all (each of the `nodes^2` flows' ends re-times the `~nodes` flows on
/// its two node ports): the 1,024-GPU benchmark (128 nodes) took 49 s of CPU per step with node
/// pairs; node aggregates agree with node pairs within 1 % of the step on 8-32 nodes
/// (`tests_agg`) at ~0.2 s a 128-node step; at 32 nodes node pairs cost 64x less than at 128.
pub(super) const NODE_PAIR_MAX_NODES: u32 = 32;

/// Largest expert-parallel group that takes per-source routing (one share row per source rank):
/// its pair table has `moe_layers * ep^2` entries.
pub(super) const PER_SOURCE_MAX: u32 = 256;

fn with_top_k(model: &ModelSpec, top_k: u32) -> ModelSpec {
    let mut m = model.clone();
    if let FfnKind::Moe(moe) = &model.ffn {
        m.ffn = FfnKind::Moe(MoeSpec {
            top_k: top_k.max(1),
            ..moe.clone()
        });
    }
    m
}

impl Graph {
    /// Build the graph of `input` at `knobs` (op lists, fixed prices, layout); routing loads are
    /// uniform until [`Graph::set_routing`].
    pub fn new(input: &EventStepInput, knobs: Knobs) -> Result<Graph, EventStepError> {
        let plan = &input.plan;
        let model = with_top_k(&input.model, knobs.top_k);
        let m = knobs.micro_batches.max(1);
        let (pp, tp, dp) = (plan.pp.max(1), plan.tp.max(1), plan.dp.max(1));
        let dual = input.pipeline == PipelineKind::DualPipe;
        if dual
            && (pp < 2
                || !pp.is_multiple_of(2)
                || !m.is_multiple_of(2)
                || m < 2 * pp
                || input.virtual_stages > 1
                || plan.zero_stage >= 3
                || input.overlap.ep_comm)
        {
            return Err(EventStepError::Plan(format!(
                "pipeline_schedule = \"dualpipe\" needs an even pp >= 2 (pp = {pp}), an even \
                 number of micro-batches >= 2 x pp (is {m}), virtual_stages = 1 (is {}), \
                 zero_stage <= 2 (is {}) and no overlap_ep_comm (is {})",
                input.virtual_stages, plan.zero_stage, input.overlap.ep_comm
            )));
        }
        let v = if dual { 2 } else { input.virtual_stages.max(1) };
        if !dual && v > 1 && (pp < 2 || !m.is_multiple_of(pp) || pp * v > model.layers) {
            return Err(EventStepError::Plan(format!(
                "virtual_stages = {v} needs pp >= 2 (pp = {pp}), micro-batches ({m}) a multiple \
                 of pp and pp x virtual_stages <= layers ({})",
                model.layers
            )));
        }
        // Interleaving: the model is cut into `pp * v` virtual stages of contiguous layers;
        // stage `s` holds virtual stages `s, s + pp, ...` (Megatron-LM's model chunks). The op
        // lists of a virtual stage are those of a `pp * v`-stage pipeline (sends at its
        // boundaries, the embedding on the first, the head on the last).
        let ops = if v > 1 && !dual {
            let vplan = ParallelPlan {
                pp: pp * v,
                ..plan.clone()
            };
            step_ops(&model, &vplan, &input.ops_config)
        } else {
            step_ops(&model, plan, &input.ops_config)
        }
        .map_err(EventStepError::Workload)?;
        let (experts, top_k, capacity_factor) = match &model.ffn {
            FfnKind::Moe(x) => (x.experts, x.top_k, x.capacity_factor),
            FfnKind::Dense => (0, 0, None),
        };
        let ep = if experts > 0 { plan.ep.max(1) } else { 1 };
        if dp % ep != 0 {
            return Err(EventStepError::Plan(format!(
                "plan.ep = {ep} must divide plan.dp = {dp}"
            )));
        }
        // Megatron-LM's combined 1F1B (as `Schedule::combined_1f1b`): only with all-to-alls.
        let combine = input.overlap.ep_comm && experts > 0 && ep > 1;
        if combine
            && (plan.zero_stage >= 3 || plan.recompute == Recompute::Full || (pp > 1 && v < 2))
        {
            return Err(EventStepError::Plan(format!(
                "overlap_ep_comm needs zero_stage <= 2 (is {}), no full recomputation (is {:?}) and virtual_stages >= 2 with pp > 1 (pp = {pp}, virtual_stages = {v})",
                plan.zero_stage, plan.recompute
            )));
        }
        if combine && input.overlap.param_gather {
            // The combined passes' merged op lists have no per-layer forward start to hook the
            // parameter-gather buckets on.
            return Err(EventStepError::Plan(
                "overlap_param_gather with overlap_ep_comm (combined 1F1B) is modelled by the fast path only; run this scenario without --event-level, or set one of them to false to compare the levels".into(),
            ));
        }
        let price_knobs = PriceKnobs {
            power_limit_w: knobs.power_limit_w,
            precision: plan.precision,
        };
        let acc = &input.accelerator;
        let mut vstages: Vec<Option<StageOps>> = ops.stages.into_iter().map(Some).collect();
        // DualPipe: every stage's ops are held by two ranks.
        let nvs = if dual { pp } else { pp * v };
        let dual_ops = if dual {
            vstages.iter().flatten().cloned().collect()
        } else {
            Vec::new()
        };
        let stages = (0..pp)
            .map(|s| {
                let mut all = Vec::new();
                let mut per_step = Vec::new();
                // Megatron-LM finishes every chunk's gradient sync before the optimizer step:
                // the chunks' syncs first, then their optimizer-phase ops.
                let mut opt_ops = Vec::new();
                let mut chunks = Vec::with_capacity(v as usize);
                let mut opt_rng = Vec::with_capacity(v as usize);
                for c in 0..v {
                    let vs = match (dual, c) {
                        (false, _) => (c * pp + s) as usize,
                        (true, 0) => s as usize,
                        (true, _) => (pp - 1 - s) as usize,
                    };
                    let held = if dual {
                        dual_ops.get(vs).cloned()
                    } else {
                        None
                    };
                    let st = held
                        .or_else(|| vstages[vs].take())
                        .unwrap_or_else(|| StageOps {
                            stage: vs as u32,
                            layers: 0..0,
                            forward: Vec::new(),
                            backward: Vec::new(),
                            per_step: Vec::new(),
                        });
                    let f0 = all.len() as u32;
                    all.extend(st.forward);
                    let b0 = all.len() as u32;
                    all.extend(st.backward);
                    let p0 = per_step.len() as u32;
                    let o0 = opt_ops.len() as u32;
                    for o in st.per_step {
                        if o.phase == Phase::Optimizer {
                            opt_ops.push(o);
                        } else {
                            per_step.push(o);
                        }
                    }
                    chunks.push(Chunk {
                        fwd: (f0, b0),
                        bwd: (b0, all.len() as u32),
                        per_step: (p0, per_step.len() as u32),
                        layers: st.layers.len() as u32,
                        first: vs == 0,
                        last: vs + 1 == nvs as usize,
                        groups: [(0, 0); 2],
                    });
                    opt_rng.push((o0, opt_ops.len() as u32));
                }
                let base = per_step.len() as u32;
                per_step.extend(opt_ops);
                // Under DualPipe the fast path keeps the gathers after the optimizer too.
                let pg = if input.overlap.param_gather && !dual {
                    let opt: Vec<(u32, u32)> =
                        opt_rng.iter().map(|&(a, b)| (base + a, base + b)).collect();
                    ParamGather::new(&all, &chunks, &per_step, &opt)
                } else {
                    ParamGather::default()
                };
                let fixed = all
                    .iter()
                    .chain(per_step.iter())
                    .map(|o| price(acc, o, &price_knobs))
                    .collect();
                let mut routed = Vec::new();
                let routed_slot = all
                    .iter()
                    .enumerate()
                    .map(|(i, o)| {
                        if o.is_routed() && !o.class.is_comm() {
                            routed.push(i as u32);
                            routed.len() as u32 - 1
                        } else {
                            NONE
                        }
                    })
                    .collect();
                let in_bwd = |i: usize| {
                    chunks
                        .iter()
                        .any(|c| (c.bwd.0 as usize..c.bwd.1 as usize).contains(&i))
                };
                let bucket_end = (0..all.len())
                    .map(|i| {
                        in_bwd(i)
                            && all[i].layer.is_some()
                            && all.get(i + 1).map(|n| n.layer) != Some(all[i].layer)
                    })
                    .collect();
                // ZeRO-3 gather groups: a layer's consecutive parameter gathers, per pass range.
                let mut groups = Vec::new();
                let mut group_at = vec![NONE; all.len()];
                for ch in chunks.iter_mut() {
                    for bwd in [false, true] {
                        let (lo, hi) = ch.range(bwd);
                        let g0 = groups.len() as u32;
                        let mut i = lo;
                        while i < hi {
                            if is_gather(&all[i]) {
                                let mut j = i + 1;
                                while j < hi && is_gather(&all[j]) && all[j].layer == all[i].layer {
                                    j += 1;
                                }
                                group_at[i] = groups.len() as u32;
                                groups.push((i as u32, j as u32));
                                i = j;
                            } else {
                                i += 1;
                            }
                        }
                        ch.groups[bwd as usize] = (g0, groups.len() as u32);
                    }
                }
                let (mut needs, mut sends) = (Vec::new(), Vec::new());
                let (order, pair) = if dual {
                    let o = dualpipe(s, pp, m);
                    (needs, sends) = (o.needs, o.sends);
                    (o.order, o.pair)
                } else if combine {
                    combined_order(s, pp, v, m)
                } else if v > 1 {
                    let o = interleaved(s, pp, v, m);
                    (o.clone(), vec![None; o.len()])
                } else {
                    let o = one_f_one_b(s, pp, m);
                    (o.clone(), vec![None; o.len()])
                };
                let merged = if combine || dual {
                    (0..v * v)
                        .map(|k| {
                            let (cf, cb) = (&chunks[(k / v) as usize], &chunks[(k % v) as usize]);
                            let mut items = merge(&all, cf.range(false), cb.range(true));
                            // DualPipe's sends go out at the commits (`Stage::sends`).
                            items.retain(|it| !(dual && is_send(&all[it.op as usize])));
                            items
                        })
                        .collect()
                } else {
                    Vec::new()
                };
                Stage {
                    order,
                    pair,
                    merged,
                    ops: all,
                    chunks,
                    per_step,
                    fixed,
                    routed_slot,
                    routed,
                    bucket_end,
                    needs,
                    sends,
                    groups,
                    group_at,
                    pg,
                }
            })
            .collect::<Vec<_>>();
        let gpn = input.gpus_per_node.max(1);
        // Megatron-LM rank order: tensor-parallel ranks innermost, then data-parallel (the
        // expert-parallel group is `ep` consecutive data-parallel ranks), then pipeline stages.
        let node = (0..pp)
            .flat_map(|s| (0..ep).map(move |d| tp * (d + dp * s) / gpn))
            .collect();
        let mut moe_of = Vec::with_capacity(model.layers as usize);
        let mut n = 0;
        for l in 0..model.layers {
            moe_of.push(model.is_moe_layer(l).then(|| {
                n += 1;
                n - 1
            }));
        }
        let mut moe_stage = vec![NONE; n as usize];
        for (si, st) in stages.iter().enumerate() {
            for l in st.ops.iter().filter_map(|o| o.layer) {
                if let Some(Some(ml)) = moe_of.get(l as usize) {
                    moe_stage[*ml as usize] = si as u32;
                }
            }
        }
        let moe_layer_index = (0..model.layers)
            .filter(|&l| moe_of[l as usize].is_some())
            .collect();
        let tokens = plan.micro_batch_seqs as f64 * model.seq_len as f64;
        let assignments = tokens * ep as f64 * top_k as f64;
        let (padded, padded_a2a) = routing::padded(&stages);
        let mut routed_base = Vec::with_capacity(stages.len());
        let mut acc_base = 0;
        for st in &stages {
            routed_base.push(acc_base);
            acc_base += st.routed.len() * ep as usize;
        }
        let mut g = Graph {
            knobs,
            routed_base,
            stages,
            ep,
            pp,
            tp,
            dp,
            v,
            dual,
            chunk_mbs: if dual { m / 2 } else { m },
            twins: tp as f64 * (dp / ep) as f64,
            node,
            gpus_per_node: gpn,
            moe_of,
            moe_layers: n,
            moe_stage,
            moe_layer_index,
            experts,
            assignments,
            capacity: capacity_factor.map(|cf| (cf * assignments / experts.max(1) as f64).ceil()),
            choice: input.choice,
            routed_price: Vec::new(),
            recv: Vec::new(),
            slot_load: Vec::new(),
            slot_off: Vec::new(),
            dropped: 0.0,
            price_knobs,
            pairs: Vec::new(),
            padded_a2a,
            padded,
            pad_m: Vec::new(),
            pair_flow_max: PAIR_FLOW_MAX,
            node_pairs: false,
        };
        let spans = g.node[ep as usize - 1] - g.node[0] + 1;
        g.node_pairs = spans <= NODE_PAIR_MAX_NODES;
        let uniform = vec![1.0 / experts.max(1) as f64; (n * experts) as usize];
        let placement = Placement::new(
            PlacementPolicy::Contiguous,
            n as usize,
            experts as usize,
            ep as usize,
            &[],
        );
        g.set_routing(
            input,
            &uniform,
            input.placement.as_ref().unwrap_or(&placement),
        )?;
        Ok(g)
    }

    /// Simulated GPUs.
    pub fn gpus(&self) -> usize {
        (self.pp * self.ep) as usize
    }
}

/// A pipeline send (`pp.send_activation`, `pp.send_grad`).
pub(super) fn is_send(op: &Op) -> bool {
    op.class == crate::workload::step_ops::KernelClass::SendRecv
}

/// A ZeRO-3 / FSDP parameter gather (prefetched a layer ahead by the scheduler).
pub(super) fn is_gather(op: &Op) -> bool {
    op.name == "zero3.param_gather"
}

/// Price a compute op at `k` (communication ops are timed on the links, not here).
fn price(acc: &crate::hardware::Accelerator, op: &Op, k: &PriceKnobs) -> Priced {
    let p = acc.price(op, k);
    Priced {
        ns: secs_to_ns(p.time_s),
        power_w: p.power_w,
    }
}

/// Seconds to integer nanoseconds (rounded; negative and NaN to 0).
pub(super) fn secs_to_ns(s: f64) -> u64 {
    if s.is_finite() && s > 0.0 {
        (s * 1e9).round() as u64
    } else {
        0
    }
}
