//! The routing side of the step model: expert placement and rebalancing, and the MoE block's expert
//! ops (expert GEMMs, dispatch/combine, expert-TP exchanges) priced under each step's routing loads.

use super::{Knobs, StepModel};
use crate::network::price_all_to_all;
use crate::routing::{Placement, PlacementPolicy};
use crate::scenario::RoutingChoice;
use crate::workload::step_ops::{KernelClass, Load, Phase, RoutedBy};
use crate::workload::FfnKind;

impl StepModel {
    /// Set the routing side of the model: token or expert choice, expert placement (computed from
    /// `shares`, the expected loads, layers × experts) and periodic rebalancing.
    pub fn set_routing(
        &mut self,
        choice: RoutingChoice,
        policy: PlacementPolicy,
        rebalance_every: Option<u64>,
        shares: &[f64],
    ) {
        self.choice = choice;
        self.placement_policy = policy;
        self.rebalance_every = rebalance_every;
        let ep = self.plan.ep.max(1) as usize;
        self.placement = Placement::new(policy, self.moe_layers(), self.experts, ep, shares);
        self.resize_counts();
    }

    /// Room for every rank's slot counts under the current placement (and the balanced case).
    fn resize_counts(&mut self) {
        let ep = self.plan.ep.max(1) as usize;
        let width = self
            .placement
            .max_slots_per_rank()
            .max(self.experts_per_rank)
            .max(1);
        if self.counts.len() != ep * width {
            self.counts = vec![0.0; ep * width];
        }
    }

    /// Expert slots moved by rebalancing so far (on the rank that received most).
    pub fn moved_slots(&self) -> u64 {
        self.moved_slots
    }

    /// Rebalance if due: re-place experts from the loads since the last placement; returns the time the
    /// weight migration takes [s] (all ranks wait for the slowest transfer).
    pub(super) fn maybe_rebalance(&mut self, shares: &[f64]) -> f64 {
        let Some(every) = self.rebalance_every else {
            return 0.0;
        };
        if shares.len() != self.acc_shares.len() {
            return 0.0;
        }
        self.acc_shares
            .iter_mut()
            .zip(shares)
            .for_each(|(a, s)| *a += s);
        self.acc_steps += 1;
        if self.acc_steps < every {
            return 0.0;
        }
        let n = self.acc_steps as f64;
        self.acc_shares.iter_mut().for_each(|a| *a /= n);
        let ep = self.plan.ep.max(1) as usize;
        let next = Placement::new(
            self.placement_policy,
            self.moe_layers(),
            self.experts,
            ep,
            &self.acc_shares,
        );
        let moved = self.placement.incoming_slots(&next);
        self.placement = next;
        self.resize_counts();
        self.acc_shares.iter_mut().for_each(|a| *a = 0.0);
        self.acc_steps = 0;
        self.moved_slots += moved as u64;
        if moved == 0 {
            return 0.0;
        }
        let crosses = self.plan.ep * self.plan.tp > self.gpus_per_node;
        self.fabric.p2p_s(moved as f64 * self.slot_bytes, crosses)
    }

    /// The MoE block's routed ops of one layer for one micro-batch under `shares` (that layer's
    /// row, one share per expert): each rank's expert GEMMs, activations, chunk sorts and
    /// expert-TP exchanges priced at its routing load (`Op::at_tokens`), the dispatch/combine
    /// all-to-alls set by the most loaded rank. `layer_compute_s` is the rest of the layer's
    /// compute, what `overlap_ep_comm` can hide the all-to-alls behind.
    pub(super) fn moe_block(
        &mut self,
        shares: &[f64],
        ml: usize,
        knobs: Knobs,
        fi: usize,
        layer_compute_s: f64,
    ) -> Routed {
        let ep = self.plan.ep.max(1) as usize;
        if !matches!(self.model.ffn, FfnKind::Moe(_)) {
            return Routed::default();
        }
        let total = self.assignments_per_layer(knobs.top_k);
        let e = self.experts as f64;
        let capacity = self.capacity_factor.map(|cf| (cf * total / e).ceil());
        let mut dropped = 0.0;
        if self.choice == RoutingChoice::ExpertChoice {
            // Every expert takes exactly its capacity: balanced by construction. Tokens no expert took,
            // if experts picked independently: (1 − C/T)^E with C/T = cf·k/E (an approximation).
            let cf = self.capacity_factor.unwrap_or(1.0);
            let pick = (cf * knobs.top_k as f64 / e).min(1.0);
            dropped = (1.0 - pick).powf(e) * total;
        }
        let width = self.counts.len() / ep;
        for r in 0..ep {
            let (slots, fracs) = self.placement.slots(ml, r);
            let n = slots.len().min(width);
            let mut load = 0.0;
            for j in 0..n {
                let want_e = if self.choice == RoutingChoice::ExpertChoice {
                    capacity.unwrap_or((total / e).ceil())
                } else {
                    (shares[slots[j] as usize] * total).round()
                };
                let kept_e = capacity.map_or(want_e, |c| want_e.min(c));
                if self.choice == RoutingChoice::TokenChoice {
                    dropped += (want_e - kept_e) * fracs[j];
                }
                let kept = (kept_e * fracs[j]).round();
                load += kept;
                self.counts[r * width + j] = kept;
            }
            self.slots_of[r] = n;
            self.load[r] = load;
        }
        let mut out = self.routed_layer(knobs, fi, layer_compute_s);
        out.dropped = dropped;
        out.straggler_s = (out.f_s + out.b_s - self.cache[fi].balanced_s).max(0.0);
        out
    }

    /// Price the routed ops of one MoE layer at the per-rank loads in `self.load` / `self.counts`.
    fn routed_layer(&mut self, knobs: Knobs, fi: usize, layer_compute_s: f64) -> Routed {
        let ep = self.plan.ep.max(1) as usize;
        let width = self.counts.len() / ep;
        let k = self.price_knobs(knobs);
        let idle = self.acc.idle_w;
        let mut out = Routed::default();
        let (mut f_max, mut b_max) = (0.0f64, 0.0f64);
        // Borrowed out of the cache while the scratch buffers are written (no allocation).
        let routed = std::mem::take(&mut self.cache[fi].routed);
        let mut memo = std::mem::take(&mut self.cache[fi].memo);
        for r in 0..ep {
            let counts = &self.counts[r * width..r * width + self.slots_of[r]];
            let (mut rf, mut rb) = (0.0, 0.0);
            for (i, op) in routed.iter().enumerate() {
                if op.class == KernelClass::AllToAll {
                    continue;
                }
                let Load::Routed { by, .. } = op.load else {
                    continue;
                };
                let memo = &mut memo[i * MEMO_SLOTS..(i + 1) * MEMO_SLOTS];
                let mut price = |tokens: f64| {
                    // Token counts are whole numbers: the price of an op at a count seen before
                    // is read back (the same number, so outputs do not depend on the cache).
                    let slot = &mut memo[(tokens as usize) & (MEMO_SLOTS - 1)];
                    let p = if slot.0 == tokens {
                        slot.1
                    } else {
                        let p = self.price_op(&op.at_tokens(tokens), &k);
                        *slot = (tokens, p);
                        p
                    };
                    if !op.class.is_comm() {
                        out.dyn_sum_j += (p.energy_j - idle * p.time_s).max(0.0);
                        out.busy_sum_s += p.time_s;
                    }
                    p.time_s
                };
                let t = match by {
                    RoutedBy::RankReceived => price(self.load[r]),
                    RoutedBy::MaxLocalExpert => price(counts.iter().copied().fold(0.0, f64::max)),
                    // Looped experts: the template chain once per local slot at its count.
                    RoutedBy::LocalExpert(_) => counts.iter().map(|&c| price(c)).sum(),
                };
                if op.phase == Phase::Forward {
                    rf += t;
                } else {
                    rb += t;
                }
            }
            f_max = f_max.max(rf);
            b_max = b_max.max(rb);
        }
        // Dispatch / combine: every rank sends its own tokens (the uniform size), rank r receives
        // the op re-sized to its load; the most loaded rank sets the time.
        let group = self.group(self.plan.ep, self.plan.tp);
        let spin = self.acc.spin_w();
        let (mut a2a_f, mut a2a_b) = (0.0, 0.0);
        for op in &routed {
            if op.class != KernelClass::AllToAll {
                continue;
            }
            let uniform = op.comm.map_or(0.0, |c| c.bytes_per_rank);
            for r in 0..ep {
                self.send[r] = uniform;
                self.recv[r] = op
                    .at_tokens(self.load[r])
                    .comm
                    .map_or(0.0, |c| c.bytes_per_rank);
            }
            let t = price_all_to_all(op, &self.fabric, group, &self.send, &self.recv, spin).time_s;
            if op.phase == Phase::Forward {
                a2a_f += t;
            } else {
                a2a_b += t;
            }
        }
        self.cache[fi].routed = routed;
        self.cache[fi].memo = memo;
        let a2a = a2a_f + a2a_b;
        // With `overlap_ep_comm` the all-to-alls run under another micro-batch's compute of the
        // layer (Megatron-LM `--overlap-moe-expert-parallel-comm`): only what that compute cannot
        // cover stays on the critical path, split over forward and backward as the all-to-alls are.
        let exposed = if self.schedule.overlap_ep_comm && a2a > 0.0 {
            (a2a - (layer_compute_s + f_max + b_max)).max(0.0) / a2a
        } else {
            1.0
        };
        out.f_s = f_max + exposed * a2a_f;
        out.b_s = b_max + exposed * a2a_b;
        out.comm_s = exposed * a2a;
        out
    }

    /// Critical time of the routed part of one MoE layer under perfectly balanced routing [s].
    pub(super) fn balanced_moe(&mut self, knobs: Knobs, fi: usize) -> f64 {
        let ep = self.plan.ep.max(1) as usize;
        if !matches!(self.model.ffn, FfnKind::Moe(_)) {
            return 0.0;
        }
        let total = self.assignments_per_layer(knobs.top_k);
        let per_expert = (total / self.experts as f64).round();
        let cap = self
            .capacity_factor
            .map(|cf| (cf * total / self.experts as f64).ceil());
        let kept = cap.map_or(per_expert, |c| per_expert.min(c));
        let width = self.counts.len() / ep;
        let epr = self.experts_per_rank.clamp(1, width.max(1));
        for r in 0..ep {
            self.counts[r * width..r * width + epr].fill(kept);
            self.slots_of[r] = epr;
            self.load[r] = kept * epr as f64;
        }
        let c = self.routed_layer(knobs, fi, 0.0);
        c.f_s + c.b_s
    }
}

/// Remembered prices per routed op (direct-mapped by token count; a power of two).
pub(super) const MEMO_SLOTS: usize = 1024;

/// The routed part of one MoE layer for one micro-batch.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Routed {
    /// Forward critical time (slowest rank + exposed all-to-all) [s].
    pub f_s: f64,
    /// Backward (and recompute) critical time [s].
    pub b_s: f64,
    /// Dynamic energy summed over the EP group's GPUs [J].
    pub dyn_sum_j: f64,
    /// Busy (computing) time summed over the EP group's GPUs [s].
    pub busy_sum_s: f64,
    /// Assignments dropped by the capacity limit.
    pub dropped: f64,
    /// Time lost against the same layer under perfectly balanced routing [s].
    pub straggler_s: f64,
    /// All-to-all time on the critical path [s].
    pub comm_s: f64,
}
