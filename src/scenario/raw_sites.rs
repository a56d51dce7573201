//! Serde types of a multi-region job: `[[site]]`, `[[wan]]` and `[multisite]` (checked in `validate/sites.rs`).

use super::raw::{RawCost, RawGrid};
use serde::Deserialize;

/// `[[site]]`: one site of a multi-region job.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSite {
    pub name: String,
    /// GPUs the site offers the job (its capacity); default `cluster.gpus`.
    pub gpus: Option<i64>,
    /// Facility PUE; default `cluster.pue`.
    pub pue: Option<f64>,
    /// An EPW weather file and `pue_model` for weather-driven PUE (as `[cluster]`).
    pub weather: Option<String>,
    pub pue_model: Option<String>,
    /// The site's grid, read exactly as `[grid]` (`[site.grid]`, `[site.grid.csv]`).
    pub grid: RawGrid,
    /// The site's cost terms and carbon forecast (`[site.cost]`, the keys of `[cost]`); a key it
    /// leaves out of carbon_price_per_t, compute_hour_tax and levy_per_kwh is the top-level `[cost]`'s.
    pub cost: Option<RawCost>,
}

/// `[[wan]]`: a WAN link between two sites.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWan {
    pub from: String,
    pub to: String,
    pub bandwidth_gbps: f64,
    pub latency_ms: f64,
    pub energy_j_per_byte: Option<f64>,
}

/// `[multisite]`: which multi-region modes to compare and their planner's settings.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMultisite {
    pub deadline_hours: f64,
    /// `"dp"` (default) or `"greedy"`.
    pub planner: Option<String>,
    /// Geo-distributed data parallel: steps between WAN synchronisations (1 = every step).
    pub sync_every_steps: Option<i64>,
    /// What the planners minimise: `"co2"` (default) or `"cost"` (every cost term).
    pub objective: Option<String>,
}
