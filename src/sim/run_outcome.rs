//! What a run of one strategy produces: its per-interval timeline rows, step statistics, outcome, and
//! why it could fail.

use super::meter::Totals;
use super::waveform::PowerOutcome;
use crate::engine::EngineError;
use crate::strategy::Mode;

/// One grid interval of a strategy's run.
#[derive(Debug, Clone, PartialEq)]
pub struct TimelineRow {
    /// Interval start, UNIX seconds (UTC).
    pub start_utc_s: i64,
    /// Local hour of the start.
    pub local_hour: u32,
    /// Carbon intensity [g/kWh].
    pub ci_g_per_kwh: f64,
    /// Price [currency/MWh].
    pub price_per_mwh: f64,
    /// Mode decided for the interval (`None` once training has finished).
    pub mode: Option<Mode>,
    /// Energy and emissions within the interval.
    pub totals: Totals,
    /// Tokens trained within the interval (counted at step completion).
    pub tokens: f64,
    /// Length of the interval covered by the run [s].
    pub covered_s: f64,
    /// PUE of the interval.
    pub pue: f64,
    /// Share of token-to-expert assignments dropped at capacity in the interval's steps.
    pub dropped_share: f64,
    /// Time the job held its GPUs within the interval (training, checkpoint, restore, paused without
    /// releasing its nodes): the compute-hour tax's base, × GPUs [s].
    pub held_s: f64,
    /// Mean top-k of the interval's tokens (0 without tokens or for a dense model).
    pub mean_top_k: f64,
    /// Mean global batch of the interval's steps [tokens per step] (0 without steps).
    pub mean_batch_tokens: f64,
    /// Mean number of experts the router could use, over the interval's tokens (0 without tokens or
    /// for a dense model; below the model's count under an active-experts curriculum).
    pub mean_active_experts: f64,
    /// Mean capacity factor over the interval's tokens (0 without tokens, for a dense model or a
    /// dropless one).
    pub mean_capacity_factor: f64,
}

/// Per-step statistics summed over a run.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StepSums {
    /// Steps completed.
    pub steps: u64,
    /// Sum of step times [s].
    pub time_s: f64,
    /// Router/gating time on the critical path [s].
    pub router_s: f64,
    /// Straggler time (imbalance) on the critical path [s].
    pub straggler_s: f64,
    /// Communication time on the critical path [s].
    pub comm_s: f64,
    /// Token-to-expert assignments.
    pub assignments: f64,
    /// Assignments dropped at capacity.
    pub dropped: f64,
    /// Σ tokens × top-k used (for the mean top-k).
    pub token_top_k: f64,
    /// Longest step [s].
    pub max_step_s: f64,
    /// 99th percentile of step time [s].
    pub p99_step_s: f64,
    /// Evaluations run (`[training.eval]`).
    pub evaluations: u64,
    /// Wall-clock time spent evaluating [s].
    pub eval_s: f64,
    /// Facility energy of the evaluations [J].
    pub eval_facility_j: f64,
}

/// What a run produced.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// Totals over the run.
    pub totals: Totals,
    /// Wall-clock time from start to the last step [s].
    pub wall_s: f64,
    /// Tokens trained.
    pub tokens: f64,
    /// Tokens the quality law counts, summed step by step: each step's tokens × its kept share of
    /// assignments × min(its top-k / nominal top-k, 1) ([`crate::quality::effective_tokens`]'s rule)
    /// × its batch's worth against the nominal batch ([`crate::quality::batch_token_worth`], 1 unless
    /// a batch schedule or a smaller throttled batch moves the batch).
    pub effective_tokens: f64,
    /// GPU-hours held by the job (nodes held, training or not) [h].
    pub gpu_hours: f64,
    /// Highest facility power [W].
    pub peak_facility_w: f64,
    /// Time in each mode [s]: full, throttled, paused (incl. checkpoint and restore).
    pub mode_s: [f64; 3],
    /// Number of pauses.
    pub pauses: u32,
    /// Step statistics.
    pub sums: StepSums,
    /// One row per grid interval.
    pub timeline: Vec<TimelineRow>,
    /// Ramp statistics, the mitigations' cost and the waveform window's segments.
    pub power: PowerOutcome,
}

/// Why a run could not complete.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The grid series ended before the run finished.
    #[error("the grid series ({source_name}) ends {hours:.1} h after the start, before training finished ({done:.3e} of {total:.3e} tokens); give a longer series or set wrap_years = true")]
    GridTooShort {
        /// Series source.
        source_name: String,
        /// Series length [h].
        hours: f64,
        /// Tokens done.
        done: f64,
        /// Tokens to train.
        total: f64,
    },
    /// The event engine refused an event (a model bug: an event scheduled in the past).
    #[error("the run's event engine failed: {0}")]
    Engine(#[from] EngineError),
    /// An event-level step failed (`--event-level`).
    #[error(transparent)]
    EventStep(#[from] super::event_step::EventStepError),
}
