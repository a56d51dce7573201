//! The routing side of the step model: expert placement and rebalancing, and the MoE block's expert
//! ops (expert GEMMs, dispatch/combine, expert-TP exchanges) priced under each step's routing loads.

use super::{Knobs, StepModel};
use crate::network::{price_all_to_all, Topology};
use crate::routing::{
    cached_pair_max_factor, Placement, PlacementPolicy, SpreadSpec, SPREAD_DRAWS,
};
use crate::scenario::RoutingChoice;
use crate::workload::step_ops::{KernelClass, Load, Op, Phase, RoutedBy};
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
        self.pad_spread = self.sample_pad_spread(shares);
    }

    /// Seed the sampled routing spread (the scenario's routing seed); takes effect at the next
    /// [`Self::set_routing`].
    pub fn set_spread_seed(&mut self, seed: u64) {
        self.spread_seed = seed;
    }

    /// The seed of the sampled routing spread.
    pub fn spread_seed(&self) -> u64 {
        self.spread_seed
    }

    /// Per MoE layer, the factor by which one micro-batch's sampled (source, expert) counts lift
    /// a padded capacity above the largest mean count (empty without padded ops): what the
    /// event-level step takes as `EventStepInput::pad_spread` to size the same ops.
    pub fn pad_spread(&self) -> &[f64] {
        &self.pad_spread
    }

    /// The padded-capacity factors of `shares` (the expected loads, layers × experts): a seeded
    /// Monte Carlo per distinct row (`routing::cached_pair_max_factor`), at plan time. Only plans with
    /// ops padded to the largest count (Tutel's dynamic capacity) need it.
    fn sample_pad_spread(&self, shares: &[f64]) -> Vec<f64> {
        let padded = self.ops.stages.iter().any(|st| {
            st.micro_batch().any(|o| {
                matches!(
                    o.load,
                    Load::Routed {
                        by: RoutedBy::MaxLocalExpert,
                        ..
                    }
                )
            })
        });
        let (ne, nl) = (self.experts, self.moe_layers());
        if !padded || ne == 0 || shares.len() != nl * ne {
            return Vec::new();
        }
        let spec = SpreadSpec {
            sources: self.plan.ep.max(1) as usize,
            tokens_per_source: self.tokens_per_mb.round() as u64,
            top_k: self.nominal_top_k.max(1) as usize,
            draws: SPREAD_DRAWS,
            seed: self.spread_seed,
        };
        // Rows that are permutations of one another (zipf's per-layer expert order) give the
        // same factor, and every step model asking for the same row and spec (throttled
        // replicas, other strategies) reads it back: sampled once per process.
        shares
            .chunks_exact(ne)
            .map(|row| cached_pair_max_factor(row, &spec))
            .collect()
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

    /// Steps until the next rebalancing, counting the step that rebalances (`None`: never).
    pub fn steps_to_rebalance(&self) -> Option<u64> {
        let every = self.rebalance_every?;
        Some(every.saturating_sub(self.acc_steps).max(1))
    }

    /// Rebalance if due after `steps` more steps routed as `shares`: re-place experts from the loads
    /// since the last placement; returns the time the weight migration takes [s] (all ranks wait
    /// for the slowest transfer).
    pub(super) fn maybe_rebalance(&mut self, shares: &[f64], steps: u64) -> f64 {
        let Some(every) = self.rebalance_every else {
            return 0.0;
        };
        if shares.len() != self.acc_shares.len() {
            return 0.0;
        }
        // × 1.0 for a single step: the same sum bit for bit as adding the shares.
        let w = steps as f64;
        self.acc_shares
            .iter_mut()
            .zip(shares)
            .for_each(|(a, s)| *a += s * w);
        self.acc_steps += steps;
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

    /// Experts the router spreads tokens over at `knobs` (all of them without an active-experts knob).
    pub(super) fn active_count(&self, knobs: Knobs) -> usize {
        knobs
            .active_experts
            .map_or(self.experts, |n| (n as usize).clamp(1, self.experts.max(1)))
    }

    /// Active experts whose home is expert-parallel rank `r` when `n` of a layer's experts are
    /// active: `n` dealt round-robin over the ranks, so the ranks stay balanced.
    fn active_on_rank(&self, r: usize, n: usize) -> usize {
        let ep = self.plan.ep.max(1) as usize;
        n / ep + usize::from(r < n % ep)
    }

    /// Whether expert `x` is among `n` active ones: the first [`Self::active_on_rank`] experts of
    /// its home rank's contiguous block (`x / experts_per_rank`).
    ///
    /// Why spread over the ranks: expert-growth curricula (EvoMoE, Nie et al. 2021,
    /// arXiv:2112.14397, starts from one expert and spawns more; sparse upcycling, Komatsuzaki et
    /// al. 2022, arXiv:2212.05055, grows a dense FFN into experts) grow the expert set of a model
    /// whose expert-parallel layout is fixed: every rank holds its E/ep expert slots from the start
    /// (memory unchanged), and activating them rank by rank in turn is what keeps the ranks
    /// balanced (the layout is this model's assumption; the papers do not give one). Rebalancing
    /// moves experts by their loads, so it sees the inactive ones as idle.
    pub(super) fn is_active(&self, x: usize, n: usize) -> bool {
        if n >= self.experts {
            return true;
        }
        let epr = self.experts_per_rank.max(1);
        x % epr < self.active_on_rank(x / epr, n)
    }

    /// The factor that renormalises a layer's `shares` (one per expert) over the `n` active
    /// experts: 1 with all active, None when the active experts carry no share at all.
    fn active_row_scale(&self, shares: &[f64], n: usize) -> Option<f64> {
        if n >= self.experts {
            return Some(1.0);
        }
        let sum: f64 = (0..self.experts.min(shares.len()))
            .filter(|&x| self.is_active(x, n))
            .map(|x| shares[x])
            .sum();
        (sum > 0.0).then(|| 1.0 / sum)
    }

    /// The MoE block's routed ops of one layer for one micro-batch under `shares` (that layer's
    /// row, one share per expert): each rank's expert GEMMs, activations, chunk sorts and
    /// expert-TP exchanges priced at its routing load (`Op::at_tokens`), the dispatch/combine
    /// all-to-alls set by the most loaded rank.
    pub(super) fn moe_block(
        &mut self,
        shares: &[f64],
        ml: usize,
        knobs: Knobs,
        fi: usize,
    ) -> Routed {
        let ep = self.plan.ep.max(1) as usize;
        if !matches!(self.model.ffn, FfnKind::Moe(_)) {
            return Routed::default();
        }
        let total = self.assignments_per_layer(knobs.top_k);
        // The router's experts are the active ones: capacity is per active expert (the number the
        // router divides the assignments by), and a row's shares are renormalised over them.
        let active = self.active_count(knobs);
        let e = active as f64;
        let cf_knob = knobs.capacity_factor.or(self.capacity_factor);
        let capacity = cf_knob.map(|cf| (cf * total / e).ceil());
        let row_scale = self.active_row_scale(shares, active);
        let mut dropped = 0.0;
        if self.choice == RoutingChoice::ExpertChoice {
            // Every expert takes exactly its capacity: balanced by construction. Tokens no expert took,
            // if experts picked independently: (1 − C/T)^E with C/T = cf·k/E (an approximation).
            let cf = cf_knob.unwrap_or(1.0);
            let pick = (cf * knobs.top_k as f64 / e).min(1.0);
            dropped = (1.0 - pick).powf(e) * total;
        }
        let width = self.counts.len() / ep;
        let expert_choice = self.choice == RoutingChoice::ExpertChoice;
        // Dropless token choice drops nothing: its `dropped` terms are all zero, left out.
        let counts_drops = self.choice == RoutingChoice::TokenChoice && capacity.is_some();
        // The busiest rank's load (`f64::max` passes over a NaN, as the all-to-all's maximum does).
        let mut max_load = f64::NEG_INFINITY;
        for r in 0..ep {
            let (slots, fracs) = self.placement.slots(ml, r);
            let n = slots.len().min(width);
            let mut load = 0.0;
            for j in 0..n {
                let x = slots[j] as usize;
                let want_e = if !self.is_active(x, active) {
                    0.0
                } else if expert_choice {
                    capacity.unwrap_or((total / e).ceil())
                } else {
                    match row_scale {
                        Some(s) => round(shares[x] * s * total),
                        // No load on any active expert in this row: the router spreads it evenly.
                        None => round(total / e),
                    }
                };
                let kept_e = capacity.map_or(want_e, |c| want_e.min(c));
                if counts_drops {
                    dropped += (want_e - kept_e) * fracs[j];
                }
                // `kept_e` is whole, so a whole slot (fraction 1) keeps it as it is: the same
                // number `round(kept_e × 1)` gives, without the rounding.
                let kept = if fracs[j] == 1.0 {
                    kept_e
                } else {
                    round(kept_e * fracs[j])
                };
                load += kept;
                self.counts[r * width + j] = kept;
            }
            self.slots_of[r] = n;
            self.load[r] = load;
            max_load = max_load.max(load);
        }
        let spread = self.pad_spread.get(ml).copied().unwrap_or(1.0);
        let mut out = self.routed_layer(knobs, fi, max_load, spread);
        out.dropped = dropped;
        out.straggler_s = (out.f_s + out.b_s - self.cache[fi].balanced_s).max(0.0);
        out
    }

    /// Price the routed ops of one MoE layer at the per-rank loads in `self.load` / `self.counts`.
    ///
    /// Allocation-free (but for a memo growing). An op's price at a token count seen before is
    /// read back from the knob setting's memo (the same number, so outputs do not depend on the
    /// memo); the memo is laid out by token count, so one rank's ops at its load sit side by side,
    /// and without looped experts a rank's whole sum is remembered by its (load, largest expert)
    /// pair. All-to-alls of equal sizes (the same function of the loads) are priced once, and on
    /// a fat tree from the busiest rank (`max_load`, the largest of `self.load`) alone.
    ///
    /// Padded ops (`RoutedBy::MaxLocalExpert`) are sized on every rank by the group's one
    /// capacity: the largest count of any rank's slot times `spread`, the layer's sampling
    /// factor (Tutel all-reduces its dynamic capacity, MAX, over the group, `fast_dispatch.py`
    /// L186-187, and one micro-batch's largest (source, expert) count sits above the largest
    /// mean by the sampling spread, `routing::pair_max_factor`).
    fn routed_layer(&mut self, knobs: Knobs, fi: usize, max_load: f64, spread: f64) -> Routed {
        let ep = self.plan.ep.max(1) as usize;
        let k = self.price_knobs(knobs);
        let mut out = Routed::default();
        let width = self.counts.len() / ep.max(1);
        let mut pad_m = 0.0f64;
        let c = &self.cache[fi];
        if c.ranks.by_max || !c.tables[1].ops.is_empty() || c.a2a.iter().any(|x| x.by_max) {
            for r in 0..ep {
                let counts = &self.counts[r * width..r * width + self.slots_of[r]];
                pad_m = counts.iter().copied().fold(pad_m, f64::max);
            }
            pad_m *= spread;
        }
        // Moved out of the cache while the scratch buffers are written (no allocation).
        let priced = std::mem::take(&mut self.cache[fi].priced);
        let mut tables = std::mem::take(&mut self.cache[fi].tables);
        let mut ranks = std::mem::take(&mut self.cache[fi].ranks);
        let (f_max, b_max) = if ranks.on {
            self.rank_rows(&priced, &k, &mut tables, &mut ranks, pad_m, &mut out)
        } else {
            self.rank_ops(&priced, &k, &mut tables, pad_m, &mut out)
        };
        self.cache[fi].priced = priced;
        self.cache[fi].tables = tables;
        self.cache[fi].ranks = ranks;
        // Dispatch / combine: every rank sends its own tokens (the uniform size), rank r receives
        // the op re-sized to its load; the most loaded rank sets the time.
        let group = self.group(self.plan.ep, self.plan.tp);
        let spin = self.acc.spin_w();
        let (mut a2a_f, mut a2a_b) = (0.0, 0.0);
        let mut runs = [0.0f64; 4];
        let mut a2a = std::mem::take(&mut self.cache[fi].a2a);
        // A fat tree prices an all-to-all from the largest bytes any rank sends or receives
        // (`Fabric::all_to_all_s`); a torus also from their sum over the ranks, in rank order.
        let fat_tree = matches!(self.fabric.topology, Topology::FatTree(_));
        // A padded all-to-all (Tutel) carries every rank's buffer at the group's one capacity
        // (`pad_m`): the same bytes sent and received everywhere.
        for j in 0..a2a.len() {
            let t = match a2a[j].same_as {
                Some(s) => a2a[s].last_s,
                None if a2a[j].by_max => {
                    let b = a2a[j].recv_bytes(pad_m);
                    self.send[..ep].fill(b);
                    self.recv[..ep].fill(b);
                    price_all_to_all(
                        &a2a[j].op,
                        &self.fabric,
                        group,
                        &self.send[..ep],
                        &self.recv[..ep],
                        spin,
                    )
                    .time_s
                }
                None if fat_tree && a2a[j].grows_with_load() && group.size as usize >= ep => {
                    // Every rank sends the uniform size and receives more the more it is loaded,
                    // so the largest bytes are the busiest rank's: the same maximum (so the same
                    // time, bit for bit) as from all the ranks' bytes, without a pass over them.
                    let x = &a2a[j];
                    self.send[0] = x.uniform;
                    self.recv[0] = x.recv_bytes(max_load);
                    price_all_to_all(
                        &x.op,
                        &self.fabric,
                        group,
                        &self.send[..1],
                        &self.recv[..1],
                        spin,
                    )
                    .time_s
                }
                None => {
                    let x = &a2a[j];
                    self.send[..ep].fill(x.uniform);
                    for r in 0..ep {
                        self.recv[r] = x.recv_bytes(self.load[r]);
                    }
                    price_all_to_all(&x.op, &self.fabric, group, &self.send, &self.recv, spin)
                        .time_s
                }
            };
            a2a[j].last_s = t;
            runs[a2a[j].run] += t;
            if a2a[j].forward {
                a2a_f += t;
            } else {
                a2a_b += t;
            }
        }
        self.cache[fi].a2a = a2a;
        let a2a = a2a_f + a2a_b;
        // Blocking: with `overlap_ep_comm` the combined 1F1B schedule hides the all-to-alls of
        // paired passes from these parts (`overlap::combined_s`); the passes that run alone (the
        // warm-up forwards, the last backwards) block on them as here.
        out.f_s = f_max + a2a_f;
        out.b_s = b_max + a2a_b;
        out.comm_s = a2a;
        out.mid = [f_max, b_max];
        out.a2a = runs;
        out
    }

    /// Critical time of the routed part of one MoE layer under perfectly balanced routing [s].
    pub(super) fn balanced_moe(&mut self, knobs: Knobs, fi: usize) -> f64 {
        let ep = self.plan.ep.max(1) as usize;
        if !matches!(self.model.ffn, FfnKind::Moe(_)) {
            return 0.0;
        }
        let total = self.assignments_per_layer(knobs.top_k);
        let active = self.active_count(knobs);
        let per_expert = (total / active as f64).round();
        let cap = knobs
            .capacity_factor
            .or(self.capacity_factor)
            .map(|cf| (cf * total / active as f64).ceil());
        let kept = cap.map_or(per_expert, |c| per_expert.min(c));
        let width = self.counts.len() / ep;
        let mut load = 0.0f64;
        for r in 0..ep {
            let epr = self
                .active_on_rank(r, active)
                .min(self.experts_per_rank)
                .min(width);
            self.counts[r * width..r * width + epr].fill(kept);
            self.slots_of[r] = epr;
            self.load[r] = kept * epr as f64;
            load = load.max(self.load[r]);
        }
        // Balanced: no sampling spread either (the straggler time is measured against it).
        let c = self.routed_layer(knobs, fi, load, 1.0);
        c.f_s + c.b_s
    }
}

/// `x.round()` (half away from zero) computed inline: `f64::round` is a libm call on the
/// baseline x86-64 target (no SSE4.1 `roundsd`), and this runs twice per expert slot per rank
/// per layer per step. Bit-identical to `f64::round` for every input (a test sweeps them).
#[inline]
pub(super) fn round(x: f64) -> f64 {
    // From 2^52 on every f64 is a whole number (and NaN / infinities round to themselves).
    const WHOLE: f64 = 4_503_599_627_370_496.0;
    if x.is_nan() || x.abs() >= WHOLE {
        return x;
    }
    // Truncation toward zero; exact below 2^52, and so is the fraction `x − t`.
    let t = x as i64 as f64;
    let frac = x - t;
    // Without branches (a comparison picks 1 or 0): the fractions of skewed routing loads are
    // random, so a branch here was mispredicted about half the time (`perf`, BENCHMARKS.md).
    // `t ± 1` is exact below 2^52, so this is the same number the branches gave.
    let up = f64::from(u8::from(frac >= 0.5));
    let down = f64::from(u8::from(frac <= -0.5));
    let r = t + up - down;
    // Keeps the sign of a zero result (`(-0.3f64).round()` is −0).
    r.copysign(x)
}

/// A routed dispatch/combine all-to-all of one MoE layer.
#[derive(Debug, Clone)]
pub(super) struct A2a {
    /// The template at uniform-routing size.
    pub op: Op,
    /// Bytes every rank sends (the uniform size) [bytes].
    pub uniform: f64,
    /// How the received bytes follow a rank's load: `(bytes at t0, bytes per token, t0)` as
    /// `Op::at_tokens` re-sizes them (`None`: not routed, `fixed` bytes).
    pub resize: Option<(f64, f64, f64)>,
    /// Bytes received when not routed (0 without a transfer) [bytes].
    pub fixed: f64,
    /// Forward (else backward or recompute).
    pub forward: bool,
    /// Sized by the largest expert count (a padded buffer, `RoutedBy::MaxLocalExpert`), not
    /// by the receiving rank's load.
    pub by_max: bool,
    /// An earlier all-to-all of the layer with the same sizes (so the same time).
    pub same_as: Option<usize>,
    /// Time of the last pricing [s] (scratch for `same_as`).
    pub last_s: f64,
    /// Which run of the layer's all-to-alls it belongs to: 0 the forward dispatch, 1 the
    /// forward combine, 2 the backward's combine, 3 the backward's dispatch.
    pub run: usize,
}

impl A2a {
    /// The all-to-all of `op` (an `AllToAll`), linked to an identical earlier one in `before`.
    pub fn new(op: &Op, before: &[A2a]) -> A2a {
        let uniform = op.comm.map_or(0.0, |c| c.bytes_per_rank);
        let resize = match (op.comm, op.load) {
            (
                Some(c),
                Load::Routed {
                    tokens,
                    comm_bytes_per_token,
                    ..
                },
            ) => Some((c.bytes_per_rank, comm_bytes_per_token, tokens)),
            _ => None,
        };
        let key = |a: &A2a| {
            (
                a.uniform.to_bits(),
                a.fixed.to_bits(),
                a.resize.map(|(b, p, t)| [b, p, t].map(f64::to_bits)),
            )
        };
        let mut a = A2a {
            op: op.clone(),
            uniform,
            resize,
            fixed: uniform,
            forward: op.phase == Phase::Forward,
            by_max: matches!(
                op.load,
                Load::Routed {
                    by: RoutedBy::MaxLocalExpert,
                    ..
                }
            ),
            same_as: None,
            last_s: 0.0,
            run: match (
                op.phase == Phase::Forward,
                op.name.starts_with("moe.dispatch"),
            ) {
                (true, true) => 0,
                (true, false) => 1,
                (false, false) => 2,
                (false, true) => 3,
            },
        };
        // Only a real transfer (with `comm`) prices from the byte vectors alone.
        if op.comm.is_some() && op.class == KernelClass::AllToAll {
            a.same_as = before
                .iter()
                .position(|b| b.op.comm.is_some() && b.same_as.is_none() && key(b) == key(&a));
        }
        a
    }

    /// Whether a rank receives no fewer bytes the more assignments it gets (a fixed size, or
    /// bytes per token ≥ 0): then the busiest rank receives the most. IEEE rounding is monotone,
    /// so this holds for the computed bytes of [`A2a::recv_bytes`] too, not only the exact ones.
    pub fn grows_with_load(&self) -> bool {
        self.resize.is_none_or(|(_, per, _)| per >= 0.0)
    }

    /// Bytes a rank with `tokens` routed assignments receives, as `Op::at_tokens` sizes it [bytes].
    pub fn recv_bytes(&self, tokens: f64) -> f64 {
        match self.resize {
            Some((b, per, t0)) => (b + per * (tokens - t0)).max(0.0),
            None => self.fixed,
        }
    }
}

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
    /// Slowest rank's routed ops between the dispatch and the combine, forward and backward
    /// (recompute included) [s].
    pub mid: [f64; 2],
    /// The layer's all-to-all runs (forward dispatch, forward combine, backward combine,
    /// backward dispatch) [s].
    pub a2a: [f64; 4],
}
