//! The fast per-step model: one optimizer step's time and GPU energy from the routing loads of that
//! step and the strategy's knobs, as closed forms over the step's priced operation list (checked
//! against the event-level step, `event_step`).
//!
//! `workload::step_ops` lists every op of the step; `Accelerator::price` and
//! `network::price_comm` price each once per knob setting ([`fixed`]); the routed ops (expert
//! GEMMs, dispatch/combine) are re-priced each step at each rank's routing load ([`moe`]) as
//! the step walks its stages ([`stages`]); the pipeline schedule (1F1B, interleaved, combined)
//! and the overlap settings put them on a critical path ([`pipe`], [`schedule`], [`overlap`]),
//! ZeRO-3's gathers and reduce-scatters on each stage's own stream ([`zero3`]); the gradient
//! sync, parameter gather and optimizer follow ([`drain`]), and [`account`] adds up the step's
//! time and energy.

use crate::hardware::Accelerator;
use crate::network::{Fabric, Group};
use crate::routing::{Placement, PlacementPolicy};
use crate::scenario::{Cluster, Job, RoutingChoice};
use crate::workload::step_ops::{OpsConfig, StepOps};
use crate::workload::{FfnKind, ModelSpec, ParallelPlan, Schedule, WorkloadError};

mod account;
mod drain;
pub(crate) mod dualpipe;
mod fixed;
mod memo;
mod moe;
mod overlap;
mod param_gather;
mod phases;
mod pipe;
mod ranks;
mod schedule;
mod stages;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_exact;
mod zero3;

use fixed::Fixed;
pub use phases::{StepPhases, PHASES, PHASE_NAMES};
pub use schedule::{
    pipeline_1f1b_passes_s, pipeline_1f1b_s, pipeline_interleaved_s, pipeline_passes_s,
};

/// The strategy's knobs for a step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Knobs {
    /// GPU power limit [W].
    pub power_limit_w: f64,
    /// Experts per token.
    pub top_k: u32,
    /// Micro-batches per step (the global batch is this × micro-batch × dp sequences).
    pub micro_batches: u32,
    /// Capacity factor of the routed layers (None: the model's `capacity_factor`; a curriculum sets it).
    pub capacity_factor: Option<f64>,
    /// Experts per MoE layer the router spreads tokens over, spread evenly over the expert-parallel
    /// ranks (None: all of them; a curriculum sets it, see `moe::StepModel::is_active`).
    pub active_experts: Option<u32>,
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
    /// The step's time and GPU energy by phase (`sim::waveform` draws the power waveform from it).
    pub phases: StepPhases,
}

/// The per-step model of one job on one cluster.
#[derive(Debug, Clone)]
pub struct StepModel {
    acc: Accelerator,
    fabric: Fabric,
    model: ModelSpec,
    plan: ParallelPlan,
    /// The job's framework settings the operation list is built with (router kernel, optimizer…).
    ops_config: OpsConfig,
    /// Pipeline schedule and overlap.
    schedule: Schedule,
    /// The operation list at the nominal top-k (built and checked once in `new`).
    ops: StepOps,
    gpus: u32,
    gpus_per_node: u32,
    /// Tokens each GPU of a TP group processes per micro-batch.
    tokens_per_mb: f64,
    experts: usize,
    experts_per_rank: usize,
    nominal_top_k: u32,
    capacity_factor: Option<f64>,
    moe_layer_of: Vec<Option<usize>>,
    /// Layers of each pipeline stage.
    stage_layers: Vec<std::ops::Range<u32>>,
    cache: Vec<Fixed>,
    /// Per rank, kept assignments of each local expert slot (rank-major, fixed width).
    counts: Vec<f64>,
    /// Per rank: local slots in use and assignments received.
    slots_of: Vec<usize>,
    load: Vec<f64>,
    send: Vec<f64>,
    recv: Vec<f64>,
    stage_f: Vec<f64>,
    stage_b: Vec<f64>,
    stage_x: Vec<[f64; 3]>,
    /// Scratch of the pass-by-pass 1F1B makespan.
    pipe_ends: Vec<f64>,
    /// Per layer, forward and backward of one micro-batch under this step's routing [s].
    layer_fb: Vec<(f64, f64)>,
    /// Layers of each virtual stage of the interleaved schedule (`pp * virtual_stages` of
    /// them; empty without interleaving) and per (stage, chunk) forward / backward [s].
    chunk_layers: Vec<std::ops::Range<u32>>,
    chunk_f: Vec<f64>,
    chunk_b: Vec<f64>,
    /// Per stage and model chunk (`s * v + c`): its once-per-step ops (gradient sync,
    /// optimizer; from the interleaved split when `v > 1`) and its number of layers.
    chunk_steps: Vec<(Vec<crate::workload::step_ops::Op>, u32)>,
    /// Megatron-LM's combined 1F1B (`Schedule::combined_1f1b`).
    combined: bool,
    /// Per layer of the step: its forward and backward halves for the combined schedule.
    halves: Vec<(overlap::Half, overlap::Half)>,
    /// Combined passes' times per stage and (forward, backward) chunk pair (scratch).
    comb: Vec<f64>,
    /// Per stage, its ZeRO-3 stream through the step (scratch).
    z3_streams: Vec<zero3::Stream>,
    /// DeepSeek's DualPipe (`Schedule::pipeline`), its programs and scratch; None otherwise.
    dual: Option<dualpipe::DualPipe>,
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
    /// Per MoE layer, the factor by which one micro-batch's sampled counts lift a padded
    /// capacity (`RoutedBy::MaxLocalExpert`) above the largest mean count (empty: no padded op).
    pad_spread: Vec<f64>,
    /// Seed of the sampled routing spread (the scenario's routing seed).
    spread_seed: u64,
}

impl StepModel {
    /// A step model for `job` on `cluster`; builds the step's operation list once (an error if
    /// the batch does not divide into micro-batches).
    pub fn new(job: &Job, cluster: &Cluster) -> Result<Self, WorkloadError> {
        let ops_config = job.ops_config();
        let ops = crate::workload::step_ops::step_ops(&job.model, &job.plan, &ops_config)?;
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
        let stage_layers = ops.stages.iter().map(|s| s.layers.clone()).collect();
        // Interleaving cuts the model into `pp * v` virtual stages of contiguous layers; stage
        // `s` runs virtual stages `s, s + pp, ...` (Megatron-LM model chunks).
        let v = job.schedule.virtual_stages.max(1);
        let chunk_layers = if v > 1 {
            let vplan = ParallelPlan {
                pp: plan.pp.max(1) * v,
                ..plan.clone()
            };
            (0..vplan.pp)
                .map(|vs| vplan.stage_layers(model.layers, vs))
                .collect()
        } else {
            Vec::new()
        };
        // Each chunk's gradient sync and optimizer, from the same split as its layers.
        let chunk_steps = if v > 1 {
            let vplan = ParallelPlan {
                pp: plan.pp.max(1) * v,
                ..plan.clone()
            };
            let vops = crate::workload::step_ops::step_ops(&model, &vplan, &ops_config)?;
            let pp = plan.pp.max(1);
            (0..pp)
                .flat_map(|s| (0..v).map(move |c| (c * pp + s) as usize))
                .filter_map(|vs| vops.stages.get(vs))
                .map(|st| (st.per_step.clone(), st.layers.len() as u32))
                .collect()
        } else {
            ops.stages
                .iter()
                .map(|st| (st.per_step.clone(), st.layers.len() as u32))
                .collect()
        };
        let width = experts_per_rank.max(1);
        Ok(Self {
            acc: cluster.accelerator.clone(),
            fabric: cluster.fabric,
            tokens_per_mb: plan.micro_batch_seqs as f64 * model.seq_len as f64,
            model,
            plan,
            ops_config,
            schedule: job.schedule,
            ops,
            stage_layers,
            gpus: cluster.gpus,
            gpus_per_node: cluster.gpus_per_node,
            experts,
            experts_per_rank,
            nominal_top_k,
            capacity_factor,
            moe_layer_of,
            cache: Vec::new(),
            counts: vec![0.0; ep * width],
            slots_of: vec![0; ep],
            load: vec![0.0; ep],
            send: vec![0.0; ep],
            recv: vec![0.0; ep],
            stage_f: Vec::new(),
            stage_b: Vec::new(),
            stage_x: Vec::new(),
            pipe_ends: Vec::new(),
            layer_fb: Vec::new(),
            chunk_layers,
            chunk_f: Vec::new(),
            chunk_b: Vec::new(),
            chunk_steps,
            combined: job.schedule.combined_1f1b(&job.model, &job.plan),
            halves: Vec::new(),
            comb: Vec::new(),
            z3_streams: Vec::new(),
            dual: (job.schedule.pipeline == crate::workload::PipelineKind::DualPipe
                && plan_pp_even(job.plan.pp))
            .then(dualpipe::DualPipe::default),
            pad_spread: Vec::new(),
            spread_seed: 0,
            choice: RoutingChoice::TokenChoice,
            placement,
            placement_policy: PlacementPolicy::Contiguous,
            rebalance_every: None,
            acc_shares: vec![0.0; moe_layers * experts],
            acc_steps: 0,
            slot_bytes,
            moved_slots: 0,
        })
    }

    /// Knobs of full-speed training: TDP, nominal top-k, all micro-batches.
    pub fn full_knobs(&self) -> Knobs {
        Knobs {
            power_limit_w: self.acc.tdp_w,
            top_k: self.nominal_top_k,
            micro_batches: self.ops.micro_batches,
            capacity_factor: None,
            active_experts: None,
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

    /// Experts the router may use at `knobs` (an active-experts curriculum's, else all; 0 for dense).
    pub fn active_experts_at(&self, knobs: Knobs) -> usize {
        if self.experts == 0 {
            0
        } else {
            self.active_count(knobs)
        }
    }

    /// Capacity factor in force at `knobs` (a curriculum's, else the model's; None: dropless or dense).
    pub fn capacity_factor_at(&self, knobs: Knobs) -> Option<f64> {
        if self.experts == 0 {
            None
        } else {
            knobs.capacity_factor.or(self.capacity_factor)
        }
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
        Group::strided(size, per_node, stride.max(1))
    }

    fn fixed(&mut self, knobs: Knobs) -> usize {
        if let Some(i) = self.cache.iter().position(|f| f.knobs == knobs) {
            return i;
        }
        let f = self.compute_fixed(knobs);
        self.cache.push(f);
        let i = self.cache.len() - 1;
        self.cache[i].balanced_s = self.balanced_moe(knobs, i);
        i
    }

    /// Cost of one step given `shares` (MoE layers × experts, each row summing to 1; empty for dense).
    pub fn step(&mut self, shares: &[f64], knobs: Knobs) -> StepCost {
        self.step_block(shares, knobs, 1)
    }

    /// Cost of one step of a block of `steps` steps that all route as `shares` (the block's
    /// routing sample): the step's cost as [`StepModel::step`], with the block counted
    /// `steps` times toward rebalancing. A block must not pass a rebalancing
    /// ([`StepModel::steps_to_rebalance`]); `steps = 1` is `step`, bit for bit.
    pub fn step_block(&mut self, shares: &[f64], knobs: Knobs, steps: u64) -> StepCost {
        let fi = self.fixed(knobs);
        let migration_s = self.maybe_rebalance(shares, steps);
        let mb = knobs.micro_batches.max(1) as f64;
        // Each stage's forward/backward of one micro-batch under this step's routing.
        let walk = self.walk_stages(shares, knobs, fi, mb);
        // DeepSeek's DualPipe: its makespan, exposed gradient sync and optimizer (`dualpipe`).
        let dual = self.dual.is_some().then(|| {
            let t = self.dualpipe_pipe(fi, mb as u32);
            (t, self.dualpipe_sync(fi, t), self.dualpipe_opt(fi))
        });
        let pipe = match dual {
            Some((t, _, _)) => t,
            None => self.pipeline_s(fi, mb as u32),
        };
        let tail = self.tail(fi, pipe, mb, dual.map(|(_, sync, opt)| (sync, opt)));
        self.account(
            knobs,
            account::Parts {
                fi,
                mb,
                walk,
                pipe,
                tail,
                migration_s,
            },
        )
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

/// Whether `pp` admits DualPipe (even, at least 2; `Schedule::validate` refuses the rest).
fn plan_pp_even(pp: u32) -> bool {
    pp >= 2 && pp.is_multiple_of(2)
}
