//! A step's routing loads per expert-parallel rank (capacity drops, per-source pair table) and
//! the prices of the routed ops they set.

use super::{price, Graph, Priced, NONE, PER_SOURCE_MAX};
use crate::routing::Placement;
use crate::scenario::RoutingChoice;
use crate::sim::event_step::{EventStepError, EventStepInput};
use crate::workload::step_ops::{Load, RoutedBy};

impl Graph {
    /// Load every rank's experts receive from `shares` (MoE layers x experts, rows summing to 1;
    /// or MoE layers x expert-parallel ranks x experts, one row per source rank's tokens),
    /// capacity drops applied at the router (Megatron-LM drops over-capacity assignments before
    /// the dispatch, `moe_utils.apply_token_dropping`), and re-price the routed ops of every GPU.
    pub fn set_routing(
        &mut self,
        input: &EventStepInput,
        shares: &[f64],
        placement: &Placement,
    ) -> Result<(), EventStepError> {
        let (nl, ne, ep) = (
            self.moe_layers as usize,
            self.experts as usize,
            self.ep as usize,
        );
        let per_source = ne > 0 && ep > 1 && shares.len() == nl * ep * ne;
        if ne > 0 && shares.len() != nl * ne && !per_source {
            return Err(EventStepError::Shares {
                got: shares.len(),
                want: nl * ne,
            });
        }
        if per_source && self.ep > PER_SOURCE_MAX {
            return Err(EventStepError::Plan(format!(
                "per-source routing (one share row per source rank) takes at most {PER_SOURCE_MAX} expert-parallel ranks; the plan has ep = {ep}"
            )));
        }
        if ne > 0 && (placement.ranks() != ep || placement.experts() != ne) {
            return Err(EventStepError::Plan(format!(
                "the expert placement has {} ranks x {} experts; the plan has ep = {} and {} experts",
                placement.ranks(),
                placement.experts(),
                self.ep,
                ne
            )));
        }
        let gpus = self.gpus();
        self.recv.clear();
        self.recv.resize(gpus * nl, 0.0);
        self.slot_load.clear();
        self.slot_off.clear();
        self.pairs.clear();
        self.dropped = 0.0;
        let a = self.assignments;
        // Per-source routing: each expert's wanted load is the sum over the sources' rows (each
        // source holds `a / ep` assignments); the layer's shares are then that over `a`.
        let mut want_share = Vec::new();
        if per_source {
            want_share.resize(nl * ne, 0.0);
            for ml in 0..nl {
                for i in 0..ep {
                    let row = &shares[(ml * ep + i) * ne..(ml * ep + i + 1) * ne];
                    for (e, x) in row.iter().enumerate() {
                        want_share[ml * ne + e] += x.max(0.0) / ep as f64;
                    }
                }
            }
        }
        let layer_shares: &[f64] = if per_source { &want_share } else { shares };
        let kept_of = |want: f64, choice: RoutingChoice, cap: Option<f64>| match (choice, cap) {
            // Expert choice: every expert takes exactly its capacity (balanced).
            (RoutingChoice::ExpertChoice, c) => c.unwrap_or(a / ne as f64),
            (_, Some(c)) => want.min(c),
            (_, None) => want,
        };
        for g in 0..gpus {
            for ml in 0..nl {
                self.slot_off.push(self.slot_load.len() as u32);
                if ne == 0 {
                    continue;
                }
                let rank = g % ep;
                let (slots, fracs) = placement.slots(ml, rank);
                let mut sum = 0.0;
                for (e, f) in slots.iter().zip(fracs) {
                    let want = layer_shares[ml * ne + *e as usize].max(0.0) * a;
                    let kept = kept_of(want, self.choice, self.capacity);
                    if g < ep && self.choice != RoutingChoice::ExpertChoice {
                        self.dropped += (want - kept) * f;
                    }
                    self.slot_load.push(kept * f);
                    sum += kept * f;
                }
                self.recv[g * nl + ml] = sum;
            }
        }
        self.slot_off.push(self.slot_load.len() as u32);
        // Tutel pads every (source, expert) pair to one capacity, the largest count in the
        // group (all-reduce MAX), lifted by the layer's sampling spread (as the fast path's
        // `routed_layer`): every rank's padded ops are sized by it, and each rank's all-to-all
        // share is that of the largest expert, `M / ep` rows per local expert to every peer,
        // whatever it was routed. Only plans with padded ops read it (`Graph::padded`); the
        // others keep it at 0 and skip the pass over every GPU's slots.
        self.pad_m.clear();
        self.pad_m.resize(nl, 0.0);
        if self.padded {
            for ml in 0..nl {
                let mut m = 0.0f64;
                for g in 0..gpus {
                    let k = g * nl + ml;
                    let slots =
                        &self.slot_load[self.slot_off[k] as usize..self.slot_off[k + 1] as usize];
                    m = slots.iter().copied().fold(m, f64::max);
                }
                self.pad_m[ml] = m * input.pad_spread.get(ml).copied().unwrap_or(1.0);
                if self.padded_a2a {
                    for g in 0..gpus {
                        self.recv[g * nl + ml] = self.pad_m[ml];
                    }
                }
            }
        }
        if per_source && !self.padded_a2a {
            // Each source's assignments to expert `e` keep the expert's kept fraction (drops
            // fall on all sources alike) and land on the ranks holding `e`.
            self.pairs.resize(nl * ep * ep, 0.0);
            let t = a / ep as f64;
            for ml in 0..nl {
                for j in 0..ep {
                    let (slots, fracs) = placement.slots(ml, j);
                    for (e, f) in slots.iter().zip(fracs) {
                        let e = *e as usize;
                        let want = want_share[ml * ne + e] * a;
                        let kept = kept_of(want, self.choice, self.capacity);
                        let keep = if want > 0.0 { kept / want } else { 0.0 };
                        for i in 0..ep {
                            let x = shares[(ml * ep + i) * ne + e].max(0.0) * t;
                            self.pairs[(ml * ep + i) * ep + j] += x * keep * f;
                        }
                    }
                }
            }
        }
        self.price_routed(input);
        Ok(())
    }

    /// Kept assignments source rank `i` sends to rank `j`'s experts in MoE layer `ml` per
    /// micro-batch (0 from a rank to itself: its tokens stay local).
    #[inline]
    pub fn sent(&self, ml: usize, i: usize, j: usize) -> f64 {
        let ep = self.ep as usize;
        if i == j {
            0.0
        } else if self.pairs.is_empty() {
            self.recv[j * self.moe_layers as usize + ml] / ep as f64
        } else {
            self.pairs[(ml * ep + i) * ep + j]
        }
    }

    /// MoE layer index of `layer`.
    pub fn moe_layer(&self, layer: Option<u32>) -> Option<usize> {
        layer
            .and_then(|l| self.moe_of.get(l as usize).copied().flatten())
            .map(|x| x as usize)
    }

    fn price_routed(&mut self, input: &EventStepInput) {
        self.routed_price.clear();
        for g in 0..self.gpus() {
            let st = &self.stages[g / self.ep as usize];
            for &i in &st.routed {
                let op = &st.ops[i as usize];
                let tokens = self.routed_tokens(g, op);
                let p = price(&input.accelerator, &op.at_tokens(tokens), &self.price_knobs);
                self.routed_price.push(p);
            }
        }
    }

    /// The token count routed op `op` runs at on GPU `g` (what `Op::at_tokens` takes): the
    /// rank's received load, one local expert's, or the group's padded capacity per local
    /// expert (`RoutedBy::MaxLocalExpert`, Tutel's dynamic capacity); 0 outside an MoE layer.
    /// Its price and its record (FLOPs, bytes) are both sized by it.
    pub fn routed_tokens(&self, g: usize, op: &crate::workload::step_ops::Op) -> f64 {
        let nl = self.moe_layers as usize;
        let ml = op.layer.and_then(|l| self.moe_of[l as usize]);
        match (ml, op.load) {
            (Some(ml), Load::Routed { by, .. }) => {
                let k = g * nl + ml as usize;
                match by {
                    RoutedBy::RankReceived => self.recv[k],
                    RoutedBy::LocalExpert(x) => self.slot_load
                        [self.slot_off[k] as usize..self.slot_off[k + 1] as usize]
                        .get(x as usize)
                        .copied()
                        .unwrap_or(0.0),
                    RoutedBy::MaxLocalExpert => self.pad_m[ml as usize],
                }
            }
            _ => 0.0,
        }
    }

    /// Price of op `i` of stage `s`'s micro-batch list on GPU `g`.
    #[inline]
    pub fn op_price(&self, g: usize, s: usize, i: usize) -> Priced {
        let st = &self.stages[s];
        match st.routed_slot[i] {
            NONE => st.fixed[i],
            k => {
                let base = self.routed_base[s] + (g % self.ep as usize) * st.routed.len();
                self.routed_price[base + k as usize]
            }
        }
    }

    /// Assignments GPU `g`'s experts receive in MoE layer `layer` per micro-batch.
    pub fn received(&self, g: usize, layer: Option<u32>) -> f64 {
        match layer.and_then(|l| self.moe_of.get(l as usize).copied().flatten()) {
            Some(ml) => self.recv[g * self.moe_layers as usize + ml as usize],
            None => 0.0,
        }
    }
}

/// Whether some op of `stages` is sized by the group's largest expert count (Tutel's padded
/// buffer, `RoutedBy::MaxLocalExpert`), and whether an all-to-all is: set once per graph (the
/// op lists do not change with the routing).
pub(super) fn padded(stages: &[super::Stage]) -> (bool, bool) {
    let by_max = |o: &crate::workload::step_ops::Op| {
        matches!(
            o.load,
            Load::Routed {
                by: RoutedBy::MaxLocalExpert,
                ..
            }
        )
    };
    let any = stages.iter().any(|st| st.ops.iter().any(by_max));
    let a2a = stages.iter().any(|st| {
        st.ops
            .iter()
            .any(|o| o.class == crate::workload::step_ops::KernelClass::AllToAll && by_max(o))
    });
    (any, a2a)
}
