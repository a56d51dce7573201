//! Typed scenario files: parsed in two stages (serde raw structs, then validated domain types) with
//! errors that name the file, line:column, key and what would be valid.

mod error;
mod raw;
mod raw_sites;
mod schedule;
pub mod sites;
mod validate;

pub use error::{line_col, Location, Locator, ScenarioError};
pub use schedule::{ProgressAxis, ProgressSchedule, ScheduleShape, CAPACITY_FACTOR_STEP};
pub use validate::parse_scenario;
pub use validate::power::{parse_window, PowerSpec, DEFAULT_SWING_THRESHOLD, WINDOW_FORM};
pub use validate::uncertainty::{UncertaintySource, UncertaintySpec, MAX_SAMPLES};

use crate::grid::PueModel;
pub use crate::grid::{GridSource, GridSpec};
use crate::hardware::{Accelerator, ExpertKernel, Precision};
use crate::network::Fabric;
pub use crate::routing::{RoutingChoice, RoutingSource, RoutingSpec};
use crate::workload::step_ops::{
    AttentionKernel, Fp8AmaxReduce, Fp8Recipe, Fp8ScaleUpdate, Framework, GradReduceDtype, MoeImpl,
    OpsConfig, OptimizerKind, RouterKernel,
};
use crate::workload::{ModelSpec, ParallelPlan};
use std::path::{Path, PathBuf};

/// The scenario `moesim run` uses when no file is given (the seed comparison, embedded in the binary).
pub const DEFAULT_SCENARIO: &str = include_str!("../../scenarios/seed_comparison.toml");

/// A strategy a scenario can compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StrategyKind {
    /// Dense transformer trained 24/7.
    Dense,
    /// Sparse MoE trained 24/7.
    Moe,
    /// The MoE with a carbon/grid-aware schedule and a deadline.
    Circadian,
}

impl StrategyKind {
    /// Every strategy with its scenario name and one-line description (the registry).
    pub const ALL: [(StrategyKind, &'static str, &'static str); 3] = [
        (StrategyKind::Dense, "dense", "dense transformer trained 24/7 from the start time"),
        (StrategyKind::Moe, "moe", "sparse MoE trained 24/7 from the start time"),
        (StrategyKind::Circadian, "circadian", "the MoE at full speed in clean hours, throttled or paused in dirty ones, within a deadline"),
    ];

    /// The scenario name (`dense`, `moe`, `circadian`).
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(k, _, _)| *k == self)
            .map(|(_, n, _)| *n)
            .unwrap_or("?")
    }

    /// Look a name up in the registry.
    pub fn from_name(s: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .find(|(_, n, _)| *n == s)
            .map(|(k, _, _)| *k)
    }
}

/// The cluster the job runs on.
#[derive(Debug, Clone)]
pub struct Cluster {
    /// Accelerator preset.
    pub accelerator: Accelerator,
    /// GPUs in the job.
    pub gpus: u32,
    /// GPUs per node.
    pub gpus_per_node: u32,
    /// Interconnect (NVLink inside a node, InfiniBand across).
    pub fabric: Fabric,
    /// Facility power usage effectiveness (≥ 1).
    pub pue: f64,
    /// Whether a paused job releases its nodes (then they draw nothing for this job).
    pub release_nodes_when_paused: bool,
    /// Per-node power besides the GPUs (CPUs, DRAM, NICs, fans) [W].
    pub node_overhead_w: f64,
    /// GPU power limit of every strategy in every mode (`cluster.power_cap_w`; the TDP when not given) [W].
    pub power_cap_w: f64,
    /// Weather-driven cooling: an EPW weather file and the PUE model that turns its temperature into PUE
    /// (replaces the constant `pue` hour by hour).
    pub weather_pue: Option<(PathBuf, PueModel)>,
}

impl Cluster {
    /// Nodes in the job.
    pub fn nodes(&self) -> u32 {
        self.gpus.div_ceil(self.gpus_per_node)
    }
}

/// One model with its parallelism plan.
#[derive(Debug, Clone)]
pub struct Job {
    /// The architecture.
    pub model: ModelSpec,
    /// How it is spread over the GPUs.
    pub plan: ParallelPlan,
    /// How the expert matmuls are launched (MoE only).
    pub expert_kernel: ExpertKernel,
    /// How the router and the token permutation are launched (`training.router_kernel`).
    pub router_kernel: RouterKernel,
    /// Optimizer algorithm (`training.optimizer`).
    pub optimizer: OptimizerKind,
    /// Tensor-parallel collectives as all-gather + reduce-scatter (`training.sequence_parallel`).
    pub sequence_parallel: bool,
    /// Attention core kernels (`training.attention_kernel`).
    pub attention_kernel: AttentionKernel,
    /// Framework whose eager kernels the op list follows (`training.framework`).
    pub framework: Framework,
    /// Which tensors FP8 training keeps in FP8 (`training.fp8_recipe`).
    pub fp8_recipe: Fp8Recipe,
    /// Transformer Engine's amax/scale update granularity (`training.fp8_scale_update`).
    pub fp8_scale_update: Fp8ScaleUpdate,
    /// Transformer Engine's amax all-reduce (`training.fp8_amax_reduce`).
    pub fp8_amax_reduce: Fp8AmaxReduce,
    /// Which library's MoE layer the op list follows (`models.X.moe_impl`; MoE only).
    pub moe_impl: MoeImpl,
    /// Groups and capacity of the einsum MoE layer (`models.X.moe_group_size`,
    /// `models.X.moe_min_capacity`; `moe_impl = "einsum"` only).
    pub einsum: crate::workload::step_ops::EinsumConfig,
    /// Format of the data-parallel gradient reduction (`training.grad_reduce_dtype`; None: the
    /// gradients' own precision).
    pub grad_reduce_dtype: Option<GradReduceDtype>,
    /// Pipeline schedule and communication overlap (`parallel.X.virtual_stages`,
    /// `training.overlap_ep_comm`, `training.overlap_grad_sync`, `training.overlap_param_gather`).
    pub schedule: crate::workload::Schedule,
}

impl Job {
    /// What the job keeps per parameter (`training.framework`, `training.optimizer`,
    /// `training.grad_reduce_dtype`).
    pub fn memory_states(&self) -> crate::workload::MemoryStates {
        crate::workload::MemoryStates::of(
            self.framework,
            self.optimizer == OptimizerKind::Adafactor,
            self.grad_reduce_dtype,
        )
    }

    /// The framework settings of the step's operation list, as the scenario gives them.
    pub fn ops_config(&self) -> OpsConfig {
        OpsConfig {
            router_kernel: self.router_kernel,
            expert_kernel: self.expert_kernel,
            optimizer: self.optimizer,
            sequence_parallel: self.sequence_parallel,
            attention_kernel: self.attention_kernel,
            framework: self.framework,
            fp8_recipe: self.fp8_recipe,
            fp8_scale_update: self.fp8_scale_update,
            fp8_amax_reduce: self.fp8_amax_reduce,
            moe_impl: self.moe_impl,
            einsum: self.einsum,
            grad_reduce_dtype: self.grad_reduce_dtype,
        }
    }
}

/// Training job settings common to all strategies.
#[derive(Debug, Clone)]
pub struct Training {
    /// Tokens to train on (with `target_loss`, a first estimate only: each strategy trains until its
    /// estimated loss reaches the target).
    pub tokens: f64,
    /// Train each strategy to this estimated loss instead of a token budget (equal-quality comparison).
    pub target_loss: Option<f64>,
    /// How strategies are compared: at one estimated loss (default) or at equal tokens.
    pub compare: Compare,
    /// Start time, UNIX seconds (UTC).
    pub start_utc_s: i64,
    /// The start as written in the file.
    pub start_text: String,
    /// Price every step of a run (`training.exact`, `moesim run --exact`) instead of advancing in
    /// blocks of steps with the routing sampled once per block (`sim::run`'s step aggregation).
    pub exact: bool,
    /// Curriculum gating (`[models.moe.curriculum] top_k`): the MoE's top-k over training progress
    /// (values 1..=the model's top-k), applied by every MoE strategy; a lower mode top-k wins.
    pub curriculum_top_k: Option<ProgressSchedule>,
    /// Curriculum gating (`[models.moe.curriculum] capacity_factor`): the MoE's capacity factor over
    /// training progress (values > 0, in steps of 0.01; a dropless model has none to schedule).
    pub curriculum_capacity_factor: Option<ProgressSchedule>,
    /// Curriculum gating (`[models.moe.curriculum] active_experts`): experts per MoE layer the router
    /// uses over training progress (values top_k..=experts; memory stays sized for all of them).
    pub curriculum_active_experts: Option<ProgressSchedule>,
    /// Dynamic batch sizing (`[training.batch_schedule] batch_fraction`): the share (0–1] of the global
    /// batch trained at each point of progress (a warm-up ramp), as whole micro-batches.
    pub batch_schedule: Option<ProgressSchedule>,
    /// Evaluations during the run (`[training.eval]`; None: the run does not evaluate).
    pub eval: Option<TrainingEval>,
}

/// `[training.eval]`: a forward-only evaluation over `seqs` sequences after every `every_steps`
/// optimizer steps, its time and energy charged to the run (`sim::eval`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrainingEval {
    /// Optimizer steps between two evaluations (an evaluation follows every N-th step) [steps].
    pub every_steps: u64,
    /// Sequences in the evaluation set, evaluated in whole global batches [sequences].
    pub seqs: u64,
}

/// How the strategies of a run are compared (`training.compare`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compare {
    /// Every strategy trains until its estimated loss reaches one target: `training.target_loss`, or
    /// the MoE's loss after `training.tokens` tokens with every assignment trained.
    Loss,
    /// Every strategy trains `training.tokens` tokens, whatever loss it reaches.
    Tokens,
}

impl Compare {
    /// The name in scenario files.
    pub fn name(self) -> &'static str {
        match self {
            Compare::Loss => "loss",
            Compare::Tokens => "tokens",
        }
    }
}

/// How the circadian strategy picks its hours (`strategy.circadian.policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyName {
    /// Minimise the objective within the deadline.
    Optimal,
    /// Shares of the coming week at full speed and paused.
    Threshold,
    /// Fixed local hours at full speed.
    Window,
}

impl PolicyName {
    /// The name in scenario files.
    pub fn name(self) -> &'static str {
        match self {
            PolicyName::Optimal => "optimal",
            PolicyName::Threshold => "threshold",
            PolicyName::Window => "window",
        }
    }
}

/// What the circadian scheduler minimises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Objective {
    /// Carbon emissions.
    Co2,
    /// Facility energy.
    Energy,
    /// Electricity cost.
    Cost,
    /// Grid load: train when the grid is lightly loaded (needs a series with load).
    Load,
}

/// Settings of the circadian strategy.
#[derive(Debug, Clone)]
pub struct CircadianSpec {
    /// Deadline after the start [s].
    pub deadline_s: f64,
    /// Signal to minimise.
    pub objective: Objective,
    /// For objective = co2: the carbon signal the planner follows (`None`: the grid's primary series,
    /// as before the key existed).
    pub signal: Option<crate::grid::CiKind>,
    /// Use the cost-minimising planner (`policy = "optimal"`) rather than shares or a window.
    pub optimal: bool,
    /// Target share of intervals at full speed (the cleanest ones), in [0, 1].
    pub full_share: f64,
    /// Target share of intervals paused (the dirtiest ones), in [0, 1].
    pub pause_share: f64,
    /// If set, a fixed local-hour window (0–23) at full speed instead of following the signal.
    pub window_hours: Option<Vec<u32>>,
    /// Top-k while throttled.
    pub throttle_top_k: u32,
    /// GPU power cap while throttled [W].
    pub throttle_power_cap_w: f64,
    /// GPU power cap at full speed (`full_power_cap_w`; the cluster's cap when not given) [W].
    pub full_power_cap_w: f64,
    /// Share of the global batch trained per step while throttled (0, 1].
    pub throttle_batch_fraction: f64,
    /// Share of the data-parallel replicas (expert-parallel groups for MoE) that train while
    /// throttled, (0, 1]: the global batch stays, the active replicas run proportionally more
    /// gradient-accumulation micro-batches, the others idle (1 = every replica).
    pub throttle_replica_fraction: f64,
    /// Time to write a checkpoint before a pause [s].
    pub checkpoint_write_s: f64,
    /// Time to restore and warm up after a pause [s].
    pub restore_s: f64,
    /// Relative standard deviation of the planner's forecast of the signal (0 = perfect forecast).
    pub forecast_error: f64,
    /// Top-k by local hour at full speed (a time-aware router); `None` keeps the model's top-k.
    pub top_k_by_hour: Option<[u32; 24]>,
}

/// A validated scenario: every value here is in range.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Short name; also the output folder name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// Seed of every random choice.
    pub seed: u64,
    /// The file it came from (`<embedded default>` for the default).
    pub file: String,
    /// The file's text, echoed in reports.
    pub text: String,
    /// Strategies to compare, in file order.
    pub strategies: Vec<StrategyKind>,
    /// Hardware.
    pub cluster: Cluster,
    /// Training settings.
    pub training: Training,
    /// Dense comparator (required by `dense`).
    pub dense: Option<Job>,
    /// MoE model (required by `moe` and `circadian`).
    pub moe: Option<Job>,
    /// Routing source for MoE layers.
    pub routing: RoutingSpec,
    /// Grid.
    pub grid: GridSpec,
    /// Circadian settings (required by `circadian`).
    pub circadian: Option<CircadianSpec>,
    /// The largest run this scenario may ask for.
    pub limits: RunLimits,
    /// The Monte Carlo of `moesim run --samples` (`[uncertainty]`), if the file has the table.
    pub uncertainty: Option<UncertaintySpec>,
    /// Carbon price, compute-hour tax, levy, forecast and grid hints (`[cost]`), if the file has the table.
    pub cost: Option<crate::cost::CostSpec>,
    /// A multi-region job (`[[site]]`, `[[wan]]`, `[multisite]`): its sites are compared single-site,
    /// following the night and geo-distributed; None without those tables.
    pub sites: Option<sites::SitesSpec>,
    /// Power-swing mitigations, the ramp statistics' threshold and the waveform window (`[power]`,
    /// `moesim run --waveform`).
    pub power: PowerSpec,
    /// Random streams given a root of their own instead of `seed` (stream name, root): set by the
    /// Monte Carlo to redraw one source at a time; always empty in a scenario read from a file.
    pub reseed: Vec<(String, u64)>,
    /// The loss law every strategy trains toward and is assessed by, as an index into
    /// `quality::laws_for` (None: the default law): set by the Monte Carlo when it draws the law;
    /// always None in a scenario read from a file.
    pub law_index: Option<usize>,
}

/// Limits on the size of a run, checked before anything is allocated (`[limits]` raises them).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RunLimits {
    /// Optimizer steps of one strategy [steps].
    pub max_steps: f64,
    /// Simulated wall-clock of one strategy, deadline included [years of 365 days].
    pub max_simulated_years: f64,
    /// Rows of timeline.csv over all strategies (grid intervals × strategies) [rows].
    pub max_timeline_rows: f64,
}

impl RunLimits {
    /// Defaults: 10⁸ steps (ten times a year-long run at a step every 3 s), 20 simulated years, and
    /// 5·10⁶ timeline rows (about 200 MB of CSV) — generous for real plans, far below what exhausts
    /// a 24 GB machine.
    pub const DEFAULT: RunLimits = RunLimits {
        max_steps: 1e8,
        max_simulated_years: 20.0,
        max_timeline_rows: 5e6,
    };
}

impl Default for RunLimits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl Scenario {
    /// Read and validate a scenario file.
    pub fn from_file(path: &Path) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        parse_scenario(&path.display().to_string(), &text, base)
    }

    /// The embedded default scenario.
    pub fn default_embedded() -> Result<Scenario, ScenarioError> {
        parse_scenario(
            "<embedded default: scenarios/seed_comparison.toml>",
            DEFAULT_SCENARIO,
            Path::new("."),
        )
    }

    /// The job a strategy trains.
    pub fn job(&self, kind: StrategyKind) -> Option<&Job> {
        match kind {
            StrategyKind::Dense => self.dense.as_ref(),
            StrategyKind::Moe | StrategyKind::Circadian => self.moe.as_ref(),
        }
    }
}
