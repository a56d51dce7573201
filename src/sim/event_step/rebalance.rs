//! Expert rebalancing at event level: the placement change of a rebalancing step (the same
//! accumulation and `Placement::new` as the fast path's `StepModel::maybe_rebalance`) turned
//! into weight transfers between the simulated GPUs, run on the fabric's links after the step.
//!
//! **Dependency (assumed).** A rank's expert slots move after its optimizer step (the weights
//! and optimizer states are final for this step) and before the next step's first forward
//! (which routes to the new placement): each transfer starts once both its sender and its
//! receiver have finished their optimizer, and the step ends when the last transfer has
//! landed. This is how expert-rebalancing systems run it between iterations (DeepSeek's EPLB
//! computes the new placement from the load statistics and the weights are re-laid between
//! steps; FlexMoE, Nie et al. 2023, arXiv:2304.03946, §4 "executes the adjustment between
//! iterations"). As in the fast path, the step that triggers the rebalancing already routes
//! to the new placement and carries the migration at its end (the migration sits between it
//! and the next step's forward; charging it to this step keeps the two paths' step times
//! comparable).
//!
//! **What moves.** Every expert slot a rank holds in the new placement and did not hold in the
//! old one arrives from a rank that held that expert (the one sending least so far in that
//! layer, so a replicated expert's copies share the sending), carrying its weights, gradients
//! and optimizer states ([`BYTES_PER_PARAM`], as the fast path's slot size). One flow per
//! (sender, receiver, MoE layer), on the links [`super::paths`] gives the pair.
//!
//! Where the fast path differs: it charges the receiver that gains most slots (summed over all
//! MoE layers, as if all stages' experts sat on one GPU) at one point-to-point rate; here each
//! stage's GPUs move only their own layers' experts, concurrently, and a sender feeding several
//! receivers shares its port — so with `pp > 1` the fast path is pessimistic, and with one
//! hot sender optimistic.

use super::graph::{secs_to_ns, Graph, NONE};
use super::links::Net;
use super::paths::PathBuf;
use super::{EventStepError, OpRecord};
use crate::network::{Fabric, COLLECTIVE_BASE_LATENCY_S};
use crate::routing::{Placement, PlacementPolicy};
use crate::workload::step_ops::{KernelClass, Phase};
use crate::workload::{FfnKind, ModelSpec, ParallelPlan};
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Bytes one expert parameter carries when its slot moves: bf16 weight and gradient (2 + 2) and
/// fp32 master weight, Adam momentum and variance (4 + 4 + 4), the `2Ψ + 2Ψ + 12Ψ` of
/// mixed-precision Adam (Rajbhandari et al. 2020, "ZeRO", arXiv:1910.02054, §3.1) — the same 16
/// bytes the fast path's slot size uses. (The gradients are stale after the optimizer step, so a
/// framework could leave them behind; moving them keeps the two paths on one byte count.)
pub(super) const BYTES_PER_PARAM: f64 = 16.0;

/// First `Flow::coll` of migration flows: a flow's collective is `MIGRATION_COLL + receiver`,
/// so flows into one receiver share its in-port by design (as the fast path prices the
/// receiver's total) and only flows to different receivers meeting on a link are contention.
const MIGRATION_COLL: u32 = 1 << 30;

/// Bytes of one expert slot on one GPU (its tensor-parallel shard) [bytes]: three matrices of
/// `d_model x expert_ffn_hidden` (gated FFN, as the fast path counts them) over `tp`.
pub(super) fn slot_bytes(model: &ModelSpec, plan: &ParallelPlan) -> f64 {
    match &model.ffn {
        FfnKind::Moe(m) => {
            3.0 * f64::from(model.d_model) * f64::from(m.expert_ffn_hidden)
                / f64::from(plan.tp.max(1))
                * BYTES_PER_PARAM
        }
        FfnKind::Dense => 0.0,
    }
}

/// Periodic re-placement of experts from the routing loads since the last placement, counted
/// step by step as the fast path counts them.
#[derive(Clone, Debug)]
pub(super) struct Rebalancer {
    policy: PlacementPolicy,
    every: u64,
    /// Shares summed since the last placement (MoE layers x experts) and the steps they cover.
    acc: Vec<f64>,
    steps: u64,
    /// Placement in force.
    pub placement: Placement,
    /// The placement before the last counted step's rebalancing: set only when that step
    /// rebalanced (its migration is run with it).
    pub pending: Option<Placement>,
}

impl Rebalancer {
    /// Re-place every `every` steps (at least 1) with `policy`, starting from `placement` of
    /// `layers` MoE layers.
    pub fn new(policy: PlacementPolicy, every: u64, placement: Placement, layers: usize) -> Self {
        let n = layers * placement.experts();
        Rebalancer {
            policy,
            every: every.max(1),
            acc: vec![0.0; n],
            steps: 0,
            placement,
            pending: None,
        }
    }

    /// Count one step routed as `shares` (MoE layers x experts, or x expert-parallel ranks x
    /// experts: then the mean over source ranks); when due, the new placement is put in force
    /// and the old one kept in [`Rebalancer::pending`]. Returns whether the step rebalanced.
    /// Shares of any other length are not counted (the step itself rejects them).
    pub fn count(&mut self, shares: &[f64], ep: usize) -> bool {
        self.pending = None;
        let n = self.acc.len();
        let e = self.placement.experts();
        if n == 0 || e == 0 {
            return false;
        }
        if shares.len() == n {
            // The fast path's `a += s * 1.0`: the same sum bit for bit.
            self.acc.iter_mut().zip(shares).for_each(|(a, s)| *a += s);
        } else if shares.len() == n * ep {
            let layers = n / e;
            for l in 0..layers {
                for x in 0..e {
                    let m = (0..ep).map(|s| shares[(l * ep + s) * e + x]).sum::<f64>() / ep as f64;
                    self.acc[l * e + x] += m;
                }
            }
        } else {
            return false;
        }
        self.steps += 1;
        if self.steps < self.every {
            return false;
        }
        let k = self.steps as f64;
        self.acc.iter_mut().for_each(|a| *a /= k);
        let next = Placement::new(self.policy, n / e, e, self.placement.ranks(), &self.acc);
        self.pending = Some(std::mem::replace(&mut self.placement, next));
        self.acc.iter_mut().for_each(|a| *a = 0.0);
        self.steps = 0;
        true
    }
}

/// One weight transfer: `bytes` of MoE layer `layer`'s experts from simulated GPU `src` to `dst`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Move {
    pub src: u32,
    pub dst: u32,
    pub layer: u32,
    pub bytes: f64,
}

/// The transfers that take `old` to `new` on `g`'s simulated GPUs, `slot` bytes per expert
/// slot, into `out` (sorted by layer, receiver, sender).
pub(super) fn moves(
    old: &Placement,
    new: &Placement,
    g: &Graph,
    slot: f64,
    out: &mut Vec<Move>,
) -> Result<(), EventStepError> {
    out.clear();
    let ep = g.ep as usize;
    let mut sent = vec![0u32; ep];
    let mut count = vec![0u32; ep];
    for ml in 0..g.moe_layers as usize {
        let s = g.moe_stage[ml];
        if s == NONE {
            continue;
        }
        sent.iter_mut().for_each(|x| *x = 0);
        for r in 0..ep {
            count.iter_mut().for_each(|x| *x = 0);
            let (was, _) = old.slots(ml, r);
            for &x in new.slots(ml, r).0 {
                if was.contains(&x) {
                    continue;
                }
                let src = (0..ep)
                    .filter(|&q| q != r && old.slots(ml, q).0.contains(&x))
                    .min_by_key(|&q| (sent[q], q))
                    .ok_or_else(|| {
                        EventStepError::Plan(format!(
                            "rebalancing: expert {x} of MoE layer {ml} moves to rank {r} but no \
                             rank held it before"
                        ))
                    })?;
                sent[src] += 1;
                count[src] += 1;
            }
            // DualPipe keeps the layer on two ranks (stage `s` of both directions): both copies
            // move.
            let other = if g.dual { g.pp - 1 - s } else { s };
            for held in [s, other].into_iter().take(if other == s { 1 } else { 2 }) {
                let base = held as usize * ep;
                for (q, &c) in count.iter().enumerate() {
                    if c > 0 {
                        out.push(Move {
                            src: (base + q) as u32,
                            dst: (base + r) as u32,
                            layer: g.moe_layer_index[ml],
                            bytes: f64::from(c) * slot,
                        });
                    }
                }
            }
        }
    }
    Ok(())
}

/// What the migration did: when its last transfer landed [ns], bytes moved, and how many
/// times a transfer shared a link with one to another receiver (both counted).
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Migration {
    pub end_ns: u64,
    pub bytes: f64,
    pub meetings: u64,
}

/// Run `moves` on `net` (its flows drained), each starting when both its GPUs are `ready`
/// [ns]; with `records`, one `moe.migrate` record per GPU involved on its communication
/// stream, from its first transfer's start to its last one's end.
pub(super) fn migrate(
    net: &mut Net,
    fabric: &Fabric,
    moves: &[Move],
    ready: &[u64],
    records: Option<&mut Vec<OpRecord>>,
) -> Migration {
    let mut m = Migration::default();
    if moves.is_empty() {
        return m;
    }
    let (ai, ae) = (fabric.intra.latency_s, fabric.inter.latency_s);
    let start = |mv: &Move| ready[mv.src as usize].max(ready[mv.dst as usize]);
    // Events: (time, kind, index, generation); kind 0 a flow's completion, 1 a move's start
    // (completions first at one instant: they free bandwidth the starts then share).
    let mut heap: BinaryHeap<Reverse<(u64, u8, u32, u32)>> = moves
        .iter()
        .enumerate()
        .map(|(i, mv)| Reverse((start(mv), 1, i as u32, 0)))
        .collect();
    let mut of_flow: Vec<u32> = Vec::new();
    let mut span = vec![(u64::MAX, 0u64, 0.0f64); ready.len()];
    let mut path = PathBuf::new();
    let mut out = Vec::new();
    let mut sharing = Vec::new();
    while let Some(Reverse((now, kind, i, gen))) = heap.pop() {
        out.clear();
        if kind == 1 {
            let mv = moves[i as usize];
            let (a, b) = (mv.src as usize, mv.dst as usize);
            let intra = net.paths.gpu_to_gpu(a, b, &mut path);
            // As a pipeline send: the launch latency and one hop's.
            let lat = secs_to_ns(COLLECTIVE_BASE_LATENCY_S + if intra { ai } else { ae });
            let fl = net.start(now, mv.bytes, &path, MIGRATION_COLL + mv.dst, lat, &mut out);
            if of_flow.len() <= fl as usize {
                of_flow.resize(fl as usize + 1, u32::MAX);
            }
            of_flow[fl as usize] = i;
            sharing.clear();
            net.sharing(fl, &mut sharing);
            m.meetings += 2 * sharing
                .iter()
                .filter(|&&c| c != MIGRATION_COLL + mv.dst)
                .count() as u64;
            m.bytes += mv.bytes;
            for x in [a, b] {
                span[x].0 = span[x].0.min(now);
                span[x].2 += mv.bytes;
            }
        } else {
            if !net.is_current(i, gen) {
                continue;
            }
            if net.due(i, now, &mut out) {
                let f = net.finish(i, now, &mut out);
                let end = now + f.lat_ns;
                let mv = moves[of_flow[i as usize] as usize];
                for x in [mv.src as usize, mv.dst as usize] {
                    span[x].1 = span[x].1.max(end);
                }
                m.end_ns = m.end_ns.max(end);
            }
        }
        for &(t, fl, g) in &out {
            heap.push(Reverse((t, 0, fl, g)));
        }
    }
    if let Some(rec) = records {
        for (gpu, &(s, e, bytes)) in span.iter().enumerate() {
            if s == u64::MAX {
                continue;
            }
            rec.push(OpRecord {
                gpu: gpu as u32,
                stream: 1,
                name: "moe.migrate",
                class: KernelClass::SendRecv,
                layer: None,
                phase: Phase::Optimizer,
                mb: 0,
                start_ns: s,
                end_ns: e,
                power_w: 0.0,
                flops: 0.0,
                bytes,
                waiting: true,
            });
        }
    }
    m
}
