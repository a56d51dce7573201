//! The cost of a run beyond electricity: a carbon price, a compute-hour tax, a per-kWh levy, and the grid's published run/throttle/pause hints.
//!
//! - [`CostSpec`]: the scenario's `[cost]` table, validated (built by the scenario validator);
//! - [`CostInputs::load`]: its series on the run's grid intervals, read by the grid's own table
//!   reader and time conventions ([`series`]), and the hints file ([`hints`]);
//! - [`CostTerms`]: electricity, carbon, tax and levy of a run, summed per grid interval
//!   ([`CostInputs::charge`]), so the terms add up to the total by construction;
//! - [`CostInputs::all_in_price`]: the energy-proportional part of the cost per MWh of each interval,
//!   which the planner's `cost` objective weighs intervals by.
//!
//! Which GPU-hours are taxed: the hours the job *holds* its GPUs — training, writing a checkpoint,
//! restoring, and paused without releasing its nodes (`cluster.release_nodes_when_paused = false`).
//! Released nodes are not taxed. A compute-hour tax levies the capacity a job takes from everyone
//! else, and a held node is taken whether it computes or idles; a released one is not. This is the
//! simulator's own rule for energy too (released nodes draw nothing for the job), so the tax's
//! GPU-hours are exactly summary.csv's `gpu_hours`.

pub mod hints;
pub mod series;
mod terms;

use std::path::PathBuf;

use crate::grid::{GridError, StampAt};

pub use hints::{Hint, HintCount, HintUse};
pub use terms::{CostInputs, CostTerms, IntervalUse};

/// A generic CSV of one value per time stamp (`[cost.electricity_price_per_mwh]`, …), read with the
/// grid loader's rules (header match, stamps, zones, DST, gaps, averaging of finer data).
#[derive(Debug, Clone, PartialEq)]
pub struct ValueCsv {
    /// The file.
    pub path: PathBuf,
    /// Header of the time column.
    pub time_column: String,
    /// Header of the value column.
    pub value_column: String,
    /// Zone of naive stamps (IANA name or `UTC`).
    pub time_zone: String,
    /// Which end of its interval a stamp marks.
    pub stamp: StampAt,
    /// Longest run of missing intervals interpolated.
    pub max_gap_intervals: u32,
    /// Runs longer than the file wrap onto the same day of another year.
    pub wrap_years: bool,
}

/// A price: fixed, or a series from a CSV.
#[derive(Debug, Clone, PartialEq)]
pub enum PriceSource {
    /// The same price in every interval.
    Fixed(f64),
    /// One price per time stamp.
    Series(ValueCsv),
}

/// The grid's hints file (`[cost.hints]`): run/throttle/pause per time stamp.
#[derive(Debug, Clone, PartialEq)]
pub struct HintsSpec {
    /// The file.
    pub path: PathBuf,
    /// Header of the time column.
    pub time_column: String,
    /// Header of the hint column (cells `run`, `throttle` or `pause`).
    pub hint_column: String,
    /// Zone of naive stamps (IANA name or `UTC`).
    pub time_zone: String,
    /// How the planner uses the hints.
    pub use_as: HintUse,
}

/// The validated `[cost]` table.
#[derive(Debug, Clone, PartialEq)]
pub struct CostSpec {
    /// Electricity price [currency/MWh]; `None`: the grid's (its price column, or `grid.price_per_mwh`).
    pub electricity: Option<PriceSource>,
    /// Carbon price [currency per tonne CO2e]; `None`: no carbon price.
    pub carbon_price_per_t: Option<PriceSource>,
    /// Tax per GPU-hour held by the job [currency/GPU-h].
    pub compute_hour_tax: f64,
    /// Levy per kWh of facility energy [currency/kWh].
    pub levy_per_kwh: f64,
    /// A carbon-intensity forecast [gCO2e/kWh] the planner plans on instead of the grid's series.
    pub forecast: Option<ValueCsv>,
    /// The grid's run/throttle/pause hints and how the planner uses them.
    pub hints: Option<HintsSpec>,
}

/// Why the cost inputs could not be built.
#[derive(Debug, thiserror::Error)]
pub enum CostError {
    /// A series file could not be read (the grid loader's error names file, line and column).
    #[error("[cost] {what}: {source}")]
    Series {
        /// Which series (`electricity_price_per_mwh`, …).
        what: &'static str,
        /// The loader's error.
        source: Box<GridError>,
    },
    /// A series cell outside its quantity's plausible range (cost series take no override).
    #[error("[cost] {what}: {detail}; a cost series has no allow_out_of_range override, so correct the value")]
    SeriesOutOfRange {
        /// Which series (`electricity_price_per_mwh`, …).
        what: &'static str,
        /// File, line, column, the value and the plausible range with its reason.
        detail: String,
    },
    /// A value out of its range after loading.
    #[error("[cost] {what} from {path}: {value} at {at_utc} is out of range; valid: {valid}")]
    OutOfRange {
        /// Which series.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The value.
        value: f64,
        /// Start of the interval it fell in (UTC).
        at_utc: String,
        /// What would be valid.
        valid: &'static str,
    },
    /// No electricity price anywhere.
    #[error("[cost] needs an electricity price: give cost.electricity_price_per_mwh, grid.price_per_mwh, or a grid file with a price column")]
    NoElectricityPrice,
    /// A hints file row that cannot be read.
    #[error("{path}:{line}: column '{column}': {msg}")]
    Hints {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: u64,
        /// The column.
        column: String,
        /// What is wrong and what would be valid.
        msg: String,
    },
}

#[cfg(test)]
mod tests;
