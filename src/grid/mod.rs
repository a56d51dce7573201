//! Electricity-grid time series: carbon intensity, load and price; CSV loaders; embedded profiles; PUE.
//!
//! - [`GridSpec`]: the one description of a scenario's grid (a region's profile, or a [`GridFile`] and
//!   how to read it), built by the scenario validator and read by the loaders;
//!   [`series_for`] turns it into the run's window, [`pue_by_interval`] gives PUE per interval;
//! - [`GridSeries`]: a regular series (interval i covers [start + i*interval, +interval), UTC
//!   seconds) with a local time zone, windowing and resampling;
//! - [`load_csv`]: the generic CSV loader (columns from [`CsvColumns`], zone, [`StampAt`], gaps);
//!   [`eia_2022_spec`] and [`europe_2020_spec`] describe the shared real files;
//! - [`default_profile_series`]: a series built from the embedded mean (month, local hour) profile
//!   of nine regions, so a run needs no data file;
//! - [`Pue`]: power usage effectiveness; [`PueModel`] and [`pue_series`]: PUE from outdoor
//!   temperature read by [`load_epw`] from typical-year weather files;
//! - [`GridFormat`] / [`FORMATS`]: the file formats people have (Electricity Maps, EIA-930,
//!   ENTSO-E, WattTime), detected by [`detect_format`] and read by [`load_grid_file`] (per-format
//!   read plans in `format/`, the shared table reader in `table.rs`, delimiter sniffing in
//!   `dialect.rs`, stamp styles in `stamps.rs`, binning and gaps in `regular.rs`);
//! - [`Quantity`] / [`Bounds`] / [`CiUnit`]: plausible ranges of grid values and intensity units
//!   (`bounds.rs`); every loader converts and checks each value.

mod bounds;
mod csv_load;
mod dialect;
mod error;
mod format;
mod marginal;
mod opened;
mod presets;
mod profile;
mod pue;
mod regular;
mod series;
mod spec;
mod stamps;
mod table;
mod time;
mod weather;
mod window;

pub use bounds::{Bounds, CiUnit, Quantity, HARD_LIMIT};
pub use csv_load::{load_csv, load_csv_with_report};
pub use error::GridError;
pub use format::{
    detect_format, format_names, load_grid_columns, load_grid_file, FormatInfo, GridColumns,
    GridFormat, FORMATS, IPCC_FACTORS_G_PER_KWH,
};
pub use marginal::{
    estimate_mef, fuel_factor, BinFit, FuelGeneration, MefBin, MefEstimate, DEFAULT_MIN_CHANGES,
    FOSSIL_FUELS, MEF_SIGNAL,
};
pub use presets::{eia_2022_spec, europe_2020_spec, EIA_FUEL_SUM};
pub use profile::{
    default_profile_series, profile_regions, region_profile, RegionProfile, PROFILE_MEF_SIGNAL,
};
pub use pue::{pue_series, CoolingTemp, Pue, PueModel, CHILLER_COP_COEFFS};
pub use series::{CiKind, CiSignal, GridSeries};
pub use spec::{
    CsvColumns, GridFile, GridSource, GridSpec, MarginalKind, MarginalSource, SourceKind, StampAt,
};
pub use table::LoadReport;
pub use time::{fmt_utc, parse_time_zone};
pub use weather::{load_epw, wet_bulb_stull_c, WeatherSeries, MAX_WEATHER_GAP_H};
pub use window::{pue_by_interval, series_for};
// The shared table reader, stamp parsing and CSV dialect, for the other series a scenario reads on the
// grid's time conventions (`crate::cost`: prices, a forecast, grid hints).
pub(crate) use dialect::{csv_reader, read_source};
pub(crate) use stamps::StampStyle;
pub(crate) use table::{load_table, ColumnReq, TableSpec};
pub(crate) use time::{parse_stamp, resolve_local, Resolved, Stamp, STAMP_FORMS};

#[cfg(test)]
pub(crate) use crate::testdata as test_data;

#[cfg(test)]
mod tests_format;
#[cfg(test)]
mod tests_inputs;
#[cfg(test)]
mod tests_marginal;
#[cfg(test)]
mod tests_profile_mef;
#[cfg(test)]
mod tests_real;
