//! The settings of one run: its progress target, knobs per mode, pause costs and the power model of the
//! job's nodes (the one the circadian planner's rates use as well).

use super::step::Knobs;

/// Settings of one run.
#[derive(Debug, Clone)]
pub struct RunSetup {
    /// Progress to make before the run stops: effective tokens when `count_effective` (the tokens the
    /// quality law needs to reach the target loss), else tokens.
    pub tokens: f64,
    /// Count progress in effective tokens (dropped assignments and a lower top-k discounted), so the
    /// run stops at the target loss.
    pub count_effective: bool,
    /// Top-k by local hour (a time-aware router), in every mode.
    pub top_k_by_hour: Option<[u32; 24]>,
    /// Knobs at full speed.
    pub full: Knobs,
    /// Knobs when throttled.
    pub throttled: Knobs,
    /// Checkpoint write time before a pause [s].
    pub checkpoint_s: f64,
    /// Restore + warm-up time after a pause [s].
    pub restore_s: f64,
    /// Whether paused jobs release their nodes.
    pub release_when_paused: bool,
    /// Node power of the job's nodes with the GPUs idle (the scenario's `node_overhead_w` per node) [W].
    pub node_w: f64,
    /// Node power added on top of `node_w` when the GPUs draw their full power (fans, PSU losses,
    /// host activity), scaled by the GPUs' load share (see [`node_load_w`]) [W].
    pub node_load_w: f64,
    /// Power of one GPU at full load (its default power limit), the top of the load share [W].
    pub gpu_full_w: f64,
    /// Network power of the job [W].
    pub network_w: f64,
    /// GPU idle power of the job [W].
    pub gpu_idle_w: f64,
    /// GPUs in the job.
    pub gpus: f64,
    /// PUE when no per-interval series is given.
    pub pue: f64,
    /// PUE of each grid interval (weather-driven cooling).
    pub pue_by_interval: Option<std::sync::Arc<Vec<f64>>>,
    /// Most steps advanced as one block with one sampled routing (1: every step priced, exact;
    /// see `sim::run_blocks::BLOCK_STEPS`).
    pub block_steps: u64,
    /// Curriculum gating and the batch schedule over training progress, and the critical-batch charge.
    pub schedules: super::schedule::Schedules,
    /// Power-swing mitigations, the ramp statistics' threshold and the waveform window (`[power]`).
    pub power: crate::scenario::PowerSpec,
    /// Evaluations during the run (`[training.eval]`; None: none).
    pub eval: Option<super::eval::RunEval>,
}

pub use crate::hardware::NODE_LOAD_SHARE;

/// Load-proportional part of node power at full GPU load for a base node power `node_w` [W].
pub fn node_load_w(node_w: f64) -> f64 {
    NODE_LOAD_SHARE * node_w
}

impl RunSetup {
    /// The setup of a run of `s`'s cluster with step model `sm`, training to `tokens` (effective
    /// when `count_effective`): full knobs in every mode, no pause costs, no per-interval PUE, every
    /// step priced (`block_steps` 1). Callers change what their run does differently.
    pub fn of_cluster(
        s: &crate::scenario::Scenario,
        sm: &super::step::StepModel,
        tokens: f64,
        count_effective: bool,
    ) -> Self {
        let nodes_w = s.cluster.node_overhead_w * s.cluster.nodes() as f64;
        RunSetup {
            tokens,
            count_effective,
            top_k_by_hour: None,
            full: sm.full_knobs(),
            throttled: sm.full_knobs(),
            checkpoint_s: 0.0,
            restore_s: 0.0,
            release_when_paused: s.cluster.release_nodes_when_paused,
            node_w: nodes_w,
            node_load_w: node_load_w(nodes_w),
            gpu_full_w: s.cluster.accelerator.tdp_w,
            network_w: s.cluster.fabric.switch_power_w(),
            gpu_idle_w: s.cluster.accelerator.idle_w,
            gpus: s.cluster.gpus as f64,
            pue: s.cluster.pue,
            pue_by_interval: None,
            block_steps: 1,
            schedules: Default::default(),
            power: s.power,
            eval: None,
        }
    }

    /// Share of the GPUs' dynamic range in use when the job's GPUs draw `gpu_w` in all: their draw
    /// above idle over full load above idle, in [0, 1]. A power cap lowers it.
    pub fn gpu_load_share(&self, gpu_w: f64) -> f64 {
        let range = (self.gpu_full_w - self.gpu_idle_w) * self.gpus;
        if range <= 0.0 {
            return 0.0;
        }
        ((gpu_w - self.gpu_idle_w * self.gpus) / range).clamp(0.0, 1.0)
    }

    /// IT power of the job while it holds its nodes without training (paused or restoring; 0 when a
    /// paused job releases its nodes): idle GPUs, base node power, network [W].
    pub fn held_it_w(&self) -> f64 {
        if self.release_when_paused {
            return 0.0;
        }
        self.gpus * self.gpu_idle_w + self.node_w + self.network_w
    }

    /// Power of the job's nodes beside the GPUs while the GPUs draw `gpu_w` in all: the base plus
    /// the load-proportional part, so fans and PSU losses follow the GPUs' load [W].
    pub fn node_power_w(&self, gpu_w: f64) -> f64 {
        self.node_w + self.node_load_w * self.gpu_load_share(gpu_w)
    }
}
