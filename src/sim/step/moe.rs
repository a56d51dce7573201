//! The routing side of the step model: expert placement and rebalancing, and the MoE block's expert
//! compute and all-to-all under the step's routing loads.

use super::{dyn_j, Knobs, StepModel};
use crate::hardware::experts_fwd_bwd;
use crate::routing::{Placement, PlacementPolicy};
use crate::scenario::RoutingChoice;
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
        self.counts = vec![0; self.placement.max_slots_per_rank().max(1)];
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
        self.counts
            .resize(self.placement.max_slots_per_rank().max(1), 0);
        self.acc_shares.iter_mut().for_each(|a| *a = 0.0);
        self.acc_steps = 0;
        self.moved_slots += moved as u64;
        if moved == 0 {
            return 0.0;
        }
        let crosses = self.plan.ep * self.plan.tp > self.gpus_per_node;
        self.fabric.p2p_s(moved as f64 * self.slot_bytes, crosses)
    }

    /// The MoE block of one layer for one micro-batch: (critical time [s], dynamic energy summed over the
    /// EP group's GPUs [J], busy time summed over them [s], dropped assignments, straggler time [s], comm time [s]).
    pub(super) fn moe_block(
        &mut self,
        ml: usize,
        shares: &[f64],
        knobs: Knobs,
        fi: usize,
    ) -> (f64, f64, f64, f64, f64, f64) {
        let ep = self.plan.ep.max(1) as usize;
        let hidden = self.model.d_model as f64;
        let (expert_ffn, bytes) = match &self.model.ffn {
            FfnKind::Moe(m) => (
                m.expert_ffn_hidden as f64 / self.plan.tp as f64,
                self.plan.precision_bytes(),
            ),
            FfnKind::Dense => return (0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
        };
        let total = self.assignments_per_layer(knobs.top_k);
        let e = self.experts as f64;
        let capacity = self.capacity_factor.map(|cf| (cf * total / e).ceil());
        let idle = self.acc.idle_w;
        let (mut t_max, mut dyn_sum, mut busy_sum, mut dropped) = (0.0f64, 0.0, 0.0, 0.0);
        if self.choice == RoutingChoice::ExpertChoice {
            // Every expert takes exactly its capacity: balanced by construction. Tokens no expert took,
            // if experts picked independently: (1 − C/T)^E with C/T = cf·k/E (an approximation).
            let cf = self.capacity_factor.unwrap_or(1.0);
            let pick = (cf * knobs.top_k as f64 / e).min(1.0);
            dropped = (1.0 - pick).powf(e) * total;
        }
        for r in 0..ep {
            let (slots, fracs) = self.placement.slots(ml, r);
            let n = slots.len();
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
                self.counts[j] = kept as u32;
            }
            let cap = capacity.map(|c| c as u32);
            let c = experts_fwd_bwd(
                &self.acc,
                &self.counts[..n],
                hidden,
                expert_ffn,
                self.kernel,
                cap,
                self.precision,
                knobs.power_limit_w,
            );
            t_max = t_max.max(c.time_s);
            dyn_sum += dyn_j(c, idle);
            busy_sum += c.time_s;
            self.recv[r] = load * hidden * bytes;
            // Tokens travel before the capacity check drops overflow at the expert, so senders send all.
            self.send[r] = self.tokens_per_mb * knobs.top_k as f64 * hidden * bytes;
        }
        let group = self.group(self.plan.ep, self.plan.tp);
        let a2a = if ep > 1 {
            self.fabric.all_to_all_s(&self.send, &self.recv, group)
        } else {
            0.0
        };
        // Dispatch and combine, forward and backward.
        let comm = 4.0 * a2a;
        // Time lost to imbalance: this layer against the same layer under a perfectly balanced router.
        let f = &self.cache[fi];
        let straggler = ((t_max + comm) - (f.balanced_expert_s + f.balanced_comm_s)).max(0.0);
        (t_max + comm, dyn_sum, busy_sum, dropped, straggler, comm)
    }

    /// Expert time of one rank and all-to-all time of one MoE layer under perfectly balanced routing.
    pub(super) fn balanced_moe(&mut self, knobs: Knobs) -> (f64, f64) {
        let ep = self.plan.ep.max(1) as usize;
        let FfnKind::Moe(m) = &self.model.ffn else {
            return (0.0, 0.0);
        };
        let hidden = self.model.d_model as f64;
        let expert_ffn = m.expert_ffn_hidden as f64 / self.plan.tp as f64;
        let bytes = self.plan.precision_bytes();
        let total = self.assignments_per_layer(knobs.top_k);
        let per_expert = (total / self.experts as f64).round();
        let capacity = self
            .capacity_factor
            .map(|cf| (cf * total / self.experts as f64).ceil() as u32);
        let epr = self.experts_per_rank.max(1);
        let counts = vec![per_expert as u32; epr];
        let c = experts_fwd_bwd(
            &self.acc,
            &counts,
            hidden,
            expert_ffn,
            self.kernel,
            capacity,
            self.precision,
            knobs.power_limit_w,
        );
        let send = vec![self.tokens_per_mb * knobs.top_k as f64 * hidden * bytes; ep];
        let recv = vec![per_expert * epr as f64 * hidden * bytes; ep];
        let a2a = if ep > 1 {
            self.fabric
                .all_to_all_s(&send, &recv, self.group(self.plan.ep, self.plan.tp))
        } else {
            0.0
        };
        (c.time_s, 4.0 * a2a)
    }
}
