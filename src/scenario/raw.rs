//! Stage one of scenario parsing: the TOML file as serde sees it, unknown keys refused.

use super::{Objective, PolicyName};
use crate::grid::{CiKind, CiUnit, GridFormat, MarginalKind, SourceKind, StampAt};
use crate::hardware::ExpertKernel;
use crate::routing::RouterKind;
use crate::workload::step_ops::{
    AttentionKernel, Fp8AmaxReduce, Fp8Recipe, Fp8ScaleUpdate, Framework, GradReduceDtype,
    OptimizerKind, RouterKernel,
};
use crate::workload::{Act, NormKind, RouterScore};
use serde::Deserialize;

pub use super::raw_sites::{RawMultisite, RawSite, RawWan};

/// The whole scenario file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawScenario {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub seed: i64,
    pub strategies: Vec<String>,
    pub cluster: RawCluster,
    pub training: RawTraining,
    #[serde(default)]
    pub models: RawModels,
    #[serde(default)]
    pub parallel: RawParallels,
    pub routing: Option<RawRouting>,
    pub grid: RawGrid,
    #[serde(default)]
    pub strategy: RawStrategies,
    /// Size limits a run is refused beyond (`[limits]`).
    #[serde(default)]
    pub limits: RawLimits,
    /// Monte Carlo over the uncertain inputs (`[uncertainty]`, read by `moesim run --samples`).
    pub uncertainty: Option<RawUncertainty>,
    /// Carbon price, compute-hour tax, levy, a forecast and the grid's hints (`[cost]`).
    pub cost: Option<RawCost>,
    /// Sites of a multi-region job (`[[site]]`), the WAN between them (`[[wan]]`) and the modes'
    /// settings (`[multisite]`).
    #[serde(default)]
    pub site: Vec<RawSite>,
    #[serde(default)]
    pub wan: Vec<RawWan>,
    pub multisite: Option<RawMultisite>,
    /// Power-swing mitigations and the ramp statistics' threshold (`[power]`).
    pub power: Option<RawPower>,
    /// Published figures of a validation case (read by `moesim validate`, ignored by `run`).
    pub validation: Option<toml::Value>,
    /// Parameter sweep (read by `moesim::sweep`; a single run ignores it).
    #[allow(dead_code)]
    pub sweep: Option<toml::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCluster {
    pub gpu: Option<String>,
    /// A preset file (TOML, as written by `moesim calibrate`) instead of a `gpu` preset key.
    pub gpu_file: Option<String>,
    pub gpus: i64,
    pub gpus_per_node: Option<i64>,
    pub intra_node_link: Option<String>,
    pub inter_node_link: String,
    pub pue: f64,
    pub release_nodes_when_paused: bool,
    pub node_overhead_w: Option<f64>,
    pub power_cap_w: Option<f64>,
    pub oversubscription: Option<f64>,
    /// TPU ICI torus: chips per dimension of one slice (2 or 3 numbers).
    pub torus: Option<Vec<i64>>,
    pub weather: Option<String>,
    pub pue_model: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTraining {
    pub tokens: Option<f64>,
    pub target_loss: Option<f64>,
    /// `"loss"` (default: every strategy trained to one estimated loss) or `"tokens"`.
    pub compare: Option<String>,
    pub global_batch_seqs: i64,
    pub micro_batch_seqs: i64,
    pub precision: String,
    pub zero_stage: i64,
    /// `"none" | "selective" | "full"`, or the legacy boolean (`true` = full, `false` = none).
    pub recompute: toml::Value,
    pub start: String,
    pub router_kernel: Option<RouterKernel>,
    /// `"flash"` (default) or `"unfused"`.
    pub attention_kernel: Option<AttentionKernel>,
    /// `"megatron"` (default) or `"gpt-neox"`.
    pub framework: Option<Framework>,
    /// `"transformer-engine"` (default) or `"deepseek"`; only with `precision = "fp8"`.
    pub fp8_recipe: Option<Fp8Recipe>,
    /// `"fused"` (default, TE >= 1.6), `"per_module"` (TE 1.4-1.5) or `"per_module_jit"` (TE
    /// 0.x-1.3); only with `precision = "fp8"` and the Transformer Engine recipe.
    pub fp8_scale_update: Option<Fp8ScaleUpdate>,
    /// `"none"` (default), `"tp_async"` or `"tp_dp"`: Transformer Engine's amax all-reduce;
    /// only with `precision = "fp8"` and the Transformer Engine recipe.
    pub fp8_amax_reduce: Option<Fp8AmaxReduce>,
    /// `"bf16"` or `"fp32"`: the gradient reduction's format (default: the gradients' own).
    pub grad_reduce_dtype: Option<GradReduceDtype>,
    pub optimizer: Option<OptimizerKind>,
    pub sequence_parallel: Option<bool>,
    pub overlap_ep_comm: Option<bool>,
    /// `"1f1b"` (default; interleaved with `virtual_stages`) or `"dualpipe"`.
    pub pipeline_schedule: Option<crate::workload::PipelineKind>,
    pub overlap_grad_sync: Option<bool>,
    /// The distributed optimizer's parameter all-gather overlapped with the next forward
    /// (Megatron-LM `--overlap-param-gather`, apex `DistributedFusedAdam(overlap_param_sync)`);
    /// default false; needs `zero_stage` 1 or 2.
    pub overlap_param_gather: Option<bool>,
    /// Price every step (no step aggregation); default false.
    pub exact: Option<bool>,
    /// `[training.batch_schedule]`: the global batch over training progress.
    pub batch_schedule: Option<RawBatchSchedule>,
    /// `[training.eval]`: forward-only evaluation passes during the run.
    pub eval: Option<RawTrainingEval>,
}

/// `[training.eval]`: an evaluation every `every_steps` optimizer steps over `seqs` sequences.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTrainingEval {
    pub every_steps: i64,
    pub seqs: i64,
}

/// `[models.X.curriculum]`: curriculum gating, the top-k, capacity factor and active experts over
/// training progress (at least one of them).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCurriculum {
    /// `"fraction"` (of the run's progress target, default) or `"tokens"` (tokens trained).
    pub progress: Option<String>,
    /// `"steps"` (piecewise constant, default) or `"linear"`.
    pub shape: Option<String>,
    /// `[[progress, top_k], ...]`.
    pub top_k: Option<toml::Value>,
    /// `[[progress, capacity_factor], ...]`.
    pub capacity_factor: Option<toml::Value>,
    /// `[[progress, active_experts], ...]`.
    pub active_experts: Option<toml::Value>,
}

/// `[training.batch_schedule]`: the global batch's share over training progress.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBatchSchedule {
    /// `"fraction"` (of the run's progress target, default) or `"tokens"` (tokens trained).
    pub progress: Option<String>,
    /// `"steps"` (piecewise constant, default) or `"linear"`.
    pub shape: Option<String>,
    /// `[[progress, share of the global batch], ...]`.
    pub batch_fraction: toml::Value,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawModels {
    pub dense: Option<RawModel>,
    pub moe: Option<RawModel>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawModel {
    pub name: String,
    pub layers: i64,
    pub d_model: i64,
    pub heads: i64,
    pub kv_heads: Option<i64>,
    pub seq_len: i64,
    pub vocab: i64,
    pub ffn_hidden: i64,
    pub experts: Option<i64>,
    pub top_k: Option<i64>,
    /// A number (> 0) or the string "dropless".
    pub capacity_factor: Option<toml::Value>,
    pub expert_ffn_hidden: Option<i64>,
    pub shared_experts: Option<i64>,
    pub moe_every: Option<i64>,
    pub expert_kernel: Option<ExpertKernel>,
    /// `"megatron"` (default), `"tutel"`, `"megablocks"` or `"einsum"` (MoE only).
    pub moe_impl: Option<crate::workload::step_ops::MoeImpl>,
    /// Tokens per routing group of the einsum MoE layer (Mesh TF `MoE1D.group_size`).
    pub moe_group_size: Option<i64>,
    /// Smallest expert capacity per group of the einsum MoE layer (`MoE1D.min_expert_capacity`).
    pub moe_min_capacity: Option<i64>,
    pub head_dim: Option<i64>,
    pub mla: Option<RawMla>,
    pub first_dense_layers: Option<i64>,
    pub sliding_window: Option<i64>,
    pub tied_embeddings: Option<bool>,
    pub act: Option<Act>,
    pub norm: Option<NormKind>,
    pub router_score: Option<RouterScore>,
    pub bias: Option<bool>,
    /// `"standard"` (default) or `"evolved-transformer"`.
    pub block: Option<crate::workload::BlockKind>,
    /// Retired key (was the Evolved Transformer's encoder cells): read only to refuse it with
    /// its replacement, `encoder_layers`.
    pub et_encoder_cells: Option<i64>,
    /// Retired key (was the Evolved Transformer cells' dropout rate): read only to refuse it
    /// with its replacement, `hidden_dropout` + `attention_dropout`.
    pub et_dropout: Option<f64>,
    /// Encoder blocks of an encoder-decoder (counted in `layers`); 0 or absent: decoder-only.
    pub encoder_layers: Option<i64>,
    /// Decoder (target) tokens per sequence of an encoder-decoder (`seq_len` is the input length).
    pub target_len: Option<i64>,
    /// Residual-branch and embedding dropout rate, `[0, 1)`.
    pub hidden_dropout: Option<f64>,
    /// Input-embedding dropout rate, `[0, 1)`; absent = `hidden_dropout`.
    pub embedding_dropout: Option<f64>,
    /// Attention-probability dropout rate, `[0, 1)`.
    pub attention_dropout: Option<f64>,
    /// Parallel attention + MLP block (dense models).
    pub parallel_residual: Option<bool>,
    /// Norms of the parallel block: 1 (one LayerNorm shared by both branches, PaLM) or 2 (one
    /// per branch, GPT-NeoX, Falcon-40B/180B; the default); only with `parallel_residual = true`.
    pub parallel_norms: Option<i64>,
    /// `"rotary"` (default), `"learned"`, `"alibi"` or `"relative"`.
    pub position: Option<crate::workload::arch::Position>,
    /// `[models.X.curriculum]` (MoE only).
    pub curriculum: Option<RawCurriculum>,
}

/// `[models.X.mla]`: multi-head latent attention dims (DeepSeek-V2/V3 config names).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMla {
    pub q_lora_rank: i64,
    pub kv_lora_rank: i64,
    pub qk_nope_head_dim: i64,
    pub qk_rope_head_dim: i64,
    pub v_head_dim: i64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawParallels {
    pub dense: Option<RawParallel>,
    pub moe: Option<RawParallel>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawParallel {
    pub dp: i64,
    pub tp: i64,
    pub pp: i64,
    pub ep: Option<i64>,
    pub virtual_stages: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRouting {
    pub model: RouterKind,
    pub zipf_s: Option<f64>,
    pub dirichlet_alpha: Option<f64>,
    pub noise: Option<f64>,
    pub sample_tokens: Option<i64>,
    pub drift: Option<f64>,
    pub collapse_share: Option<f64>,
    pub collapse_steps: Option<i64>,
    pub trace: Option<String>,
    pub map: Option<bool>,
    pub past_end: Option<String>,
    pub bootstrap_block: Option<i64>,
    pub choice: Option<String>,
    pub placement: Option<String>,
    pub replica_slots: Option<i64>,
    pub rebalance_every_steps: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGrid {
    pub region: String,
    pub source: SourceKind,
    pub price_per_mwh: Option<f64>,
    pub interval_minutes: Option<i64>,
    pub currency: Option<String>,
    pub csv: Option<RawGridCsv>,
    /// `[grid.marginal]`: where the marginal intensity series comes from.
    pub marginal: Option<RawGridMarginal>,
}

/// `[grid.marginal]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGridMarginal {
    pub source: MarginalKind,
    pub min_changes: Option<i64>,
    pub signal: Option<String>,
    pub csv: Option<RawGridCsv>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGridCsv {
    pub path: String,
    pub format: Option<GridFormat>,
    pub time_column: Option<String>,
    pub time_zone: Option<String>,
    pub local_time_zone: Option<String>,
    pub stamp: Option<StampAt>,
    pub ci_column: Option<String>,
    pub ci_kind: Option<CiKind>,
    pub ci_signal: Option<String>,
    pub load_column: Option<String>,
    pub price_column: Option<String>,
    pub max_gap_intervals: i64,
    pub wrap_years: bool,
    /// Unit of the intensity column (generic and watttime formats).
    pub unit: Option<CiUnit>,
    /// Accept values outside the plausible ranges (a deliberate outlier).
    pub allow_out_of_range: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStrategies {
    pub circadian: Option<RawCircadian>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCircadian {
    pub deadline_hours: f64,
    pub objective: Objective,
    /// Carbon signal the planner follows for objective = "co2": average or marginal.
    pub signal: Option<CiKind>,
    pub policy: PolicyName,
    pub full_share: Option<f64>,
    pub pause_share: Option<f64>,
    pub window_hours: Option<Vec<i64>>,
    pub throttle_top_k: Option<i64>,
    pub throttle_power_cap_w: Option<f64>,
    pub full_power_cap_w: Option<f64>,
    pub throttle_batch_fraction: Option<f64>,
    pub throttle_replica_fraction: Option<f64>,
    pub checkpoint_write_s: f64,
    pub restore_s: f64,
    pub forecast_error: Option<f64>,
    pub top_k_by_hour: Option<Vec<i64>>,
}

/// `[limits]`: the largest run a scenario may ask for (raise them to run a larger plan on purpose).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    pub max_steps: Option<f64>,
    pub max_simulated_years: Option<f64>,
    pub max_timeline_rows: Option<f64>,
}

/// `[uncertainty]`: the Monte Carlo of `moesim run --samples` (see `validate/uncertainty.rs`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUncertainty {
    pub samples: Option<i64>,
    pub seed_offset: Option<i64>,
    pub sources: Option<Vec<String>>,
    pub forecast_error: Option<f64>,
    pub gpu_speed_spread: Option<f64>,
    pub gpu_power_spread: Option<f64>,
    pub split: Option<bool>,
}

/// `[cost]`: what a run pays beyond (or instead of) the grid's electricity price (see `validate/cost.rs`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCost {
    /// A number [currency/MWh] or a table: a series (`RawValueCsv`).
    pub electricity_price_per_mwh: Option<toml::Value>,
    /// A number [currency/t CO2e] or a table: a series (`RawValueCsv`).
    pub carbon_price_per_t: Option<toml::Value>,
    pub compute_hour_tax: Option<f64>,
    pub levy_per_kwh: Option<f64>,
    pub forecast: Option<RawValueCsv>,
    pub hints: Option<RawHints>,
}

/// A generic CSV of one value per stamp, read with the grid loader's rules.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawValueCsv {
    pub path: String,
    pub time_column: String,
    pub value_column: String,
    pub time_zone: String,
    pub stamp: StampAt,
    pub max_gap_intervals: Option<i64>,
    pub wrap_years: Option<bool>,
}

/// `[cost.hints]`: the grid's run/throttle/pause hints.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHints {
    pub path: String,
    pub time_column: String,
    pub hint_column: String,
    pub time_zone: String,
    #[serde(rename = "use")]
    pub use_as: crate::cost::HintUse,
}

/// `[power]`: power-swing mitigations (see `validate/power.rs`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPower {
    pub floor_fraction: Option<f64>,
    pub ramp_limit_mw_per_s: Option<f64>,
    pub swing_threshold_fraction: Option<f64>,
}
