//! The event-level step evaluator: op graphs and balanced baselines cached per knob setting,
//! rebalancing, and one step simulated on the scheduler and priced as the run loop's cost.

use super::graph::{self, Graph};
use super::links::Net;
use super::sched::Sched;
use super::{rebalance, skew, EventStep, EventStepError, EventStepInput};
use crate::engine::Simulation;
use crate::hardware::is_router_op;
use crate::routing::{Placement, PlacementPolicy};
use crate::sim::{Knobs, StepCost};

/// An event-level step evaluator that keeps its op lists and prices per knob setting and its
/// buffers between steps (for `moesim run --event-level`).
#[derive(Clone, Debug)]
pub struct EventStepModel {
    input: EventStepInput,
    graphs: Vec<Graph>,
    net: Net,
    /// Balanced-routing result per knob setting (time [s], per-layer MoE wait [J]).
    balanced: Vec<(Knobs, f64, Vec<f64>)>,
    /// Largest expert-parallel group simulated with rank-pair all-to-all flows.
    pair_flow_max: u32,
    /// Most nodes an expert-parallel group may span for node-pair all-to-all flows.
    node_pair_max_nodes: u32,
    /// Per grid interval and MoE layer waiting energy of the steps priced by
    /// [`EventStepModel::step_cost_in`].
    skew_log: skew::SkewLog,
    /// Periodic expert rebalancing (None: the placement never changes).
    rebalance: Option<rebalance::Rebalancer>,
    /// Transfers of a rebalancing step (scratch).
    moves: Vec<rebalance::Move>,
    /// See [`EventStepModel::moved_slots`].
    moved_slots: u64,
}

impl EventStepModel {
    /// An evaluator of `input`.
    pub fn new(input: EventStepInput) -> Self {
        EventStepModel {
            graphs: Vec::new(),
            net: Net::default(),
            balanced: Vec::new(),
            pair_flow_max: graph::PAIR_FLOW_MAX,
            node_pair_max_nodes: graph::NODE_PAIR_MAX_NODES,
            skew_log: skew::SkewLog::new(
                (0..input.model.layers)
                    .filter(|&l| input.model.is_moe_layer(l) && input.model.moe().is_some())
                    .collect(),
            ),
            rebalance: None,
            moves: Vec::new(),
            moved_slots: 0,
            input,
        }
    }

    /// Re-place experts every `every` steps (None: never) with `policy`, as the fast path's
    /// `StepModel::set_routing` does, starting from the input's placement; steps count toward
    /// it through [`EventStepModel::count_step`] (the run loop's pricing counts each step).
    pub fn set_rebalancing(&mut self, policy: PlacementPolicy, every: Option<u64>) {
        self.rebalance = None;
        let (Some(every), Some(moe)) = (every, self.input.model.moe()) else {
            return;
        };
        let layers = self.input.model.moe_layers() as usize;
        let ep = self.input.plan.ep.max(1) as usize;
        let start = self.input.placement.clone().unwrap_or_else(|| {
            Placement::new(
                PlacementPolicy::Contiguous,
                layers,
                moe.experts as usize,
                ep,
                &[],
            )
        });
        self.rebalance = Some(rebalance::Rebalancer::new(policy, every, start, layers));
    }

    /// Count the step about to be simulated, routed as `shares`, toward rebalancing (nothing
    /// without [`EventStepModel::set_rebalancing`]): on the step that completes a period the
    /// experts are re-placed from the loads since the last placement — that step routes to
    /// the new placement and [`EventStepModel::step`] runs its migration after the optimizer
    /// (see [`rebalance`]). Returns whether this step rebalances.
    pub fn count_step(&mut self, shares: &[f64]) -> bool {
        let ep = self.input.plan.ep.max(1) as usize;
        let Some(rb) = self.rebalance.as_mut() else {
            return false;
        };
        let moved = rb.count(shares, ep);
        if moved {
            if let Some(old) = &rb.pending {
                self.moved_slots += old.incoming_slots(&rb.placement) as u64;
            }
            // The balanced-routing baseline was simulated on the old placement.
            self.balanced.clear();
        }
        moved
    }

    /// Expert slots moved by rebalancing so far, counted as the fast path's
    /// `StepModel::moved_slots` counts them (the rank that received most, summed over
    /// rebalances).
    pub fn moved_slots(&self) -> u64 {
        self.moved_slots
    }

    /// Simulate all-to-alls of expert-parallel groups up to `ranks` ranks as one flow per rank
    /// pair (default 64), larger ones as one flow per node pair (groups over at most 32 nodes,
    /// [`EventStepModel::set_node_pair_max_nodes`]) or node aggregates (0: never rank pairs).
    pub fn set_pair_flow_max(&mut self, ranks: u32) {
        self.pair_flow_max = ranks;
        for g in &mut self.graphs {
            g.pair_flow_max = ranks;
        }
        self.balanced.clear();
    }

    /// Simulate all-to-alls of expert-parallel groups above the rank-pair limit that span at
    /// most `nodes` nodes as one flow per node pair (default 32), larger ones as node aggregates
    /// on a fat-tree (`sched::node_agg`) or per-port aggregates on a torus.
    pub fn set_node_pair_max_nodes(&mut self, nodes: u32) {
        self.node_pair_max_nodes = nodes;
        for g in &mut self.graphs {
            g.node_pairs = Self::spans(g) <= nodes;
        }
        self.balanced.clear();
    }

    /// Nodes the expert-parallel group spans.
    fn spans(g: &Graph) -> u32 {
        g.node[g.ep as usize - 1] - g.node[0] + 1
    }

    /// Its input.
    pub fn input(&self) -> &EventStepInput {
        &self.input
    }

    fn graph(&mut self, knobs: Knobs) -> Result<usize, EventStepError> {
        if let Some(i) = self.graphs.iter().position(|g| g.knobs == knobs) {
            return Ok(i);
        }
        let mut g = Graph::new(&self.input, knobs)?;
        g.pair_flow_max = self.pair_flow_max;
        g.node_pairs = Self::spans(&g) <= self.node_pair_max_nodes;
        self.graphs.push(g);
        Ok(self.graphs.len() - 1)
    }

    /// Simulate one step with `shares` at `knobs` (see [`event_step`]); the last step counted by
    /// [`EventStepModel::count_step`], if it rebalanced, carries its expert migration.
    pub fn step(
        &mut self,
        shares: &[f64],
        knobs: Knobs,
        record: bool,
    ) -> Result<EventStep, EventStepError> {
        self.simulate(shares, knobs, record, true)
    }

    /// [`EventStepModel::step`], with the pending migration only if `migrate`.
    fn simulate(
        &mut self,
        shares: &[f64],
        knobs: Knobs,
        record: bool,
        migrate: bool,
    ) -> Result<EventStep, EventStepError> {
        let gi = self.graph(knobs)?;
        let contiguous;
        let current = match &self.rebalance {
            Some(rb) => Some(&rb.placement),
            None => self.input.placement.as_ref(),
        };
        let placement = match current {
            Some(p) => p,
            None => {
                let g = &self.graphs[gi];
                contiguous = Placement::new(
                    crate::routing::PlacementPolicy::Contiguous,
                    g.moe_layers as usize,
                    g.experts as usize,
                    g.ep as usize,
                    &[],
                );
                &contiguous
            }
        };
        if self.graphs[gi].experts > 0 {
            self.graphs[gi].set_routing(&self.input, shares, placement)?;
        }
        let g = &self.graphs[gi];
        let layers = self.input.model.layers as usize;
        let mut sched = Sched::new(
            g,
            &mut self.net,
            &self.input.fabric,
            self.input.overlap,
            record,
            layers,
        );
        let mut sim = Simulation::new();
        let mut first = Vec::new();
        sched.start(&mut first);
        for (t, e) in first {
            sim.schedule(t, e)?;
        }
        let stats = sim.run(&mut sched)?;
        let (mut end_ns, per_gpu) = sched.finish()?;
        // A rebalancing step: the experts' weights move after the optimizer (see `rebalance`).
        let mut mig = rebalance::Migration::default();
        if let (true, Some(rb)) = (migrate, &self.rebalance) {
            if let Some(old) = &rb.pending {
                let slot = rebalance::slot_bytes(&self.input.model, &self.input.plan);
                rebalance::moves(old, &rb.placement, g, slot, &mut self.moves)?;
                let ready: Vec<u64> = sched.gpu_ends().collect();
                mig = rebalance::migrate(
                    &mut *sched.net,
                    &self.input.fabric,
                    &self.moves,
                    &ready,
                    sched.records.as_mut(),
                );
                sched.contention.migration += mig.meetings;
            }
        }
        let migration_ns = mig.end_ns.saturating_sub(end_ns);
        end_ns = end_ns.max(mig.end_ns);
        let spin = self.input.accelerator.spin_w();
        let twins = g.twins;
        let t = end_ns as f64 * 1e-9;
        let (mut busy_j, mut wait_j) = (0.0, 0.0);
        let mut comm_wait = 0u64;
        for &(busy_ns, bj, cw) in &per_gpu {
            busy_j += bj;
            wait_j += spin * (end_ns - busy_ns) as f64 * 1e-9;
            comm_wait = comm_wait.max(cw);
        }
        let moe_wait_j = sched
            .moe_wait_ns
            .iter()
            .map(|&ns| ns as f64 * 1e-9 * spin * twins)
            .collect();
        let records = sched.records.take().unwrap_or_default();
        let mut router_ns = vec![0u64; g.gpus()];
        for (gpu, st) in
            g.stages.iter().enumerate().flat_map(|(s, st)| {
                (s * g.ep as usize..(s + 1) * g.ep as usize).map(move |x| (x, st))
            })
        {
            // Each chunk's ops run `chunk_mbs` times (under DualPipe a stage holds two chunks).
            let m = g.chunk_mbs.max(1) as u64;
            router_ns[gpu] = (0..st.ops.len())
                .filter(|&i| is_router_op(&st.ops[i]))
                .map(|i| g.op_price(gpu, gpu / g.ep as usize, i).ns)
                .sum::<u64>()
                * m;
        }
        let plan = &self.input.plan;
        let mb = knobs.micro_batches.max(1) as f64;
        let tokens_mb = plan.micro_batch_seqs as f64 * self.input.model.seq_len as f64;
        let replicas = (g.dp / g.ep) as f64;
        Ok(EventStep {
            time_s: t,
            gpu_energy_j: (busy_j + wait_j) * twins,
            waiting_energy_j: wait_j * twins,
            events: stats.events,
            gpus_simulated: g.gpus() as u32,
            gpus_represented: twins,
            moe_wait_j,
            tokens: mb * plan.dp as f64 * tokens_mb,
            assignments: g.assignments * g.moe_layers as f64 * mb * replicas,
            dropped: g.dropped * mb * replicas,
            router_s: router_ns.iter().copied().max().unwrap_or(0) as f64 * 1e-9,
            max_gpu_comm_wait_s: (comm_wait + migration_ns) as f64 * 1e-9,
            contention: sched.contention,
            migration_s: migration_ns as f64 * 1e-9,
            migrated_bytes: mig.bytes,
            records,
            stage_of_gpu: (0..g.gpus()).map(|x| (x / g.ep as usize) as u32).collect(),
        })
    }

    /// Index of the balanced-routing result at `knobs` in the cache, simulated on first use.
    fn balanced_index(&mut self, knobs: Knobs) -> Result<usize, EventStepError> {
        if let Some(i) = self.balanced.iter().position(|b| b.0 == knobs) {
            return Ok(i);
        }
        let gi = self.graph(knobs)?;
        let (nl, ne) = (
            self.graphs[gi].moe_layers as usize,
            self.graphs[gi].experts as usize,
        );
        let uniform = vec![1.0 / ne.max(1) as f64; nl * ne];
        let r = self.simulate(&uniform, knobs, false, false)?;
        self.balanced.push((knobs, r.time_s, r.moe_wait_j));
        Ok(self.balanced.len() - 1)
    }

    /// The same step under perfectly balanced routing (every expert the same share), cached per
    /// knob setting: (time [s], per-layer MoE wait energy [J]).
    pub fn balanced(&mut self, knobs: Knobs) -> Result<(f64, Vec<f64>), EventStepError> {
        let i = self.balanced_index(knobs)?;
        let b = &self.balanced[i];
        Ok((b.1, b.2.clone()))
    }

    /// One step as the run loop's [`StepCost`] (counted toward rebalancing, see
    /// [`EventStepModel::count_step`]): the straggler time is this step's time against the same
    /// step under balanced routing (the migration left out).
    pub fn step_cost(&mut self, shares: &[f64], knobs: Knobs) -> Result<StepCost, EventStepError> {
        self.priced(shares, knobs).map(|x| x.0)
    }

    /// [`EventStepModel::step_cost`] of a step started in grid interval `interval`, its
    /// per-layer waiting energy added to the run's log ([`EventStepModel::take_skew`]).
    pub fn step_cost_in(
        &mut self,
        shares: &[f64],
        knobs: Knobs,
        interval: u32,
    ) -> Result<StepCost, EventStepError> {
        let (c, r, b) = self.priced(shares, knobs)?;
        if let Some(b) = b {
            self.skew_log
                .add(interval, &r.moe_wait_j, &self.balanced[b].2);
        }
        Ok(c)
    }

    /// Per grid interval and MoE layer waiting energy of the steps priced by
    /// [`EventStepModel::step_cost_in`] so far, taken out of the model.
    pub fn take_skew(&mut self) -> Vec<skew::IntervalSkew> {
        self.skew_log.take()
    }

    /// The step's cost, its result and the index of its balanced counterpart (MoE only).
    fn priced(
        &mut self,
        shares: &[f64],
        knobs: Knobs,
    ) -> Result<(StepCost, EventStep, Option<usize>), EventStepError> {
        self.count_step(shares);
        let r = self.step(shares, knobs, false)?;
        let (balanced_s, b) = if r.assignments > 0.0 {
            let b = self.balanced_index(knobs)?;
            (self.balanced[b].1, Some(b))
        } else {
            (r.time_s, None)
        };
        let c = StepCost {
            time_s: r.time_s,
            gpu_energy_j: r.gpu_energy_j,
            waiting_energy_j: r.waiting_energy_j,
            tokens: r.tokens,
            assignments: r.assignments,
            dropped: r.dropped,
            router_s: r.router_s,
            // The migration is not skew: the balanced step has none.
            straggler_s: (r.time_s - r.migration_s - balanced_s).max(0.0),
            // The GPU that waited longest in communication stands for the step's critical path.
            comm_s: r.max_gpu_comm_wait_s,
            // The event level prices the step whole: the waveform draws it as one phase.
            phases: Default::default(),
        };
        Ok((c, r, b))
    }
}
