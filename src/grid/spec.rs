//! The one description of a scenario's grid: where the series comes from and how its file is read.

use std::path::PathBuf;

use super::bounds::CiUnit;
use super::format::GridFormat;
use super::series::CiKind;

/// The grid a scenario runs against (built by the scenario validator, read by the loaders).
#[derive(Debug, Clone)]
pub struct GridSpec {
    /// Region name: a profile key such as `CISO`, the balancing authority of an EIA-930 file, or a label.
    pub region: String,
    /// Where the series comes from.
    pub source: GridSource,
    /// Flat electricity price [currency/MWh] used when the series has no price column.
    pub price_per_mwh: Option<f64>,
    /// Grid interval of the profile series [s].
    pub interval_s: i64,
    /// Currency of prices and costs (`grid.currency`, e.g. `EUR`); None = not stated.
    pub currency: Option<String>,
    /// Where the marginal intensity series comes from (`[grid.marginal]`); None = no marginal series
    /// beyond what the grid file itself declares marginal.
    pub marginal: Option<MarginalSource>,
}

/// Where a run's marginal carbon-intensity series comes from (`[grid.marginal]`); the grid's own
/// series (`[grid]`, `[grid.csv]`, `ci_signal`) stays the primary (average) one.
#[derive(Debug, Clone, PartialEq)]
pub enum MarginalSource {
    /// Estimated from the grid file's generation by fuel by the Siler-Evans et al. 2012 regression
    /// ([`super::estimate_mef`]); a (month, hour) bin needs `min_changes` hour-to-hour changes.
    Estimate {
        /// Fewest changes a bin needs for its own slope.
        min_changes: usize,
    },
    /// A marginal signal the grid file itself carries, by name (e.g. `co2_moer` of a WattTime file).
    Signal(String),
    /// A second grid file whose (chosen) signal is marginal intensity, windowed like the grid's.
    File(Box<GridFile>),
}

/// `grid.marginal.source` in scenario files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MarginalKind {
    /// Estimate from the grid file's generation by fuel.
    Estimate,
    /// A named signal of the grid file.
    Signal,
    /// A second file, `[grid.marginal.csv]`.
    Csv,
}

/// A grid source by name (`grid.source` in scenario files).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// The embedded profile of the region.
    Profile,
    /// A grid file described by `[grid.csv]`.
    Csv,
}

/// Where the grid series comes from.
#[derive(Debug, Clone)]
pub enum GridSource {
    /// The embedded mean (month × local hour) profile of the region.
    Profile,
    /// A grid file.
    File(Box<GridFile>),
}

/// A grid file and how to read it: every loader (generic CSV or a known format) reads this.
#[derive(Debug, Clone, PartialEq)]
pub struct GridFile {
    /// File to read.
    pub path: PathBuf,
    /// The file's format (generic CSV, Electricity Maps, EIA-930, ENTSO-E).
    pub format: GridFormat,
    /// The region's IANA zone for local hours when the file does not settle it (Electricity Maps
    /// files carry only UTC; EIA authorities outside the built-in table; ENTSO-E defaults to
    /// Europe/Brussels; generic files default to their stamp zone).
    pub local_time_zone: Option<String>,
    /// Longest run of missing intervals interpolated; longer runs are errors.
    pub max_gap_intervals: u32,
    /// The column description, for [`GridFormat::Generic`] only.
    pub columns: Option<CsvColumns>,
    /// Which intensity signal to use when the file gives several (e.g. `direct`, `lifecycle`).
    pub ci_signal: Option<String>,
    /// Whether runs longer than the file may wrap onto the same day of another year.
    pub wrap_years: bool,
    /// Unit of the intensity column for formats that do not fix it (generic: default g/kWh;
    /// WattTime CSV: default lbs/MWh; a WattTime JSON states its own in `meta.units`).
    pub unit: Option<CiUnit>,
    /// Accept values outside the plausible ranges of [`super::bounds`] (a deliberate outlier);
    /// values must still be finite and at most 1e12 in magnitude.
    pub allow_out_of_range: bool,
}

impl GridFile {
    /// A file of `format` with no gap allowance, the format's zones and no column description.
    pub fn new(path: impl Into<PathBuf>, format: GridFormat) -> GridFile {
        GridFile {
            path: path.into(),
            format,
            local_time_zone: None,
            max_gap_intervals: 0,
            columns: None,
            ci_signal: None,
            wrap_years: false,
            unit: None,
            allow_out_of_range: false,
        }
    }

    /// A generic CSV file read with `columns`.
    pub fn generic(path: impl Into<PathBuf>, columns: CsvColumns) -> GridFile {
        GridFile {
            columns: Some(columns),
            ..GridFile::new(path, GridFormat::Generic)
        }
    }
}

/// Which columns of a generic CSV are what.
/// `Default` gives empty names, UTC, interval-start stamps and average intensity, for
/// `CsvColumns { time_column, ci_column, ..Default::default() }`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CsvColumns {
    /// Header of the timestamp column.
    pub time_column: String,
    /// Zone of naive timestamps: an IANA name (e.g. "Europe/Berlin") or "UTC" (empty = UTC).
    /// Also the series' local zone unless the file's `local_time_zone` is given.
    pub time_zone: String,
    /// Which end of its interval a stamp marks.
    pub stamp: StampAt,
    /// Header of the carbon-intensity column, in the file's `unit` (default gCO2eq/kWh), or `sum:A+B`.
    pub ci_column: String,
    /// Whether the intensity is average or marginal.
    pub ci_kind: CiKind,
    /// Header of the load column in MW, or `sum:A+B+...`; `None` for no load.
    pub load_column: Option<String>,
    /// Header of the price column in currency per MWh (or `sum:A+B`); `None` for no price.
    pub price_column: Option<String>,
}

/// The time-stamp convention of a grid file: which end of its interval a stamp marks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StampAt {
    /// The stamp is the interval's start.
    #[default]
    Start,
    /// The stamp is the interval's end (hour-ending, as in EIA-930).
    End,
}

impl StampAt {
    /// True for interval-end stamps.
    pub fn is_end(self) -> bool {
        self == StampAt::End
    }
}
