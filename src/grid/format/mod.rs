//! Grid file formats people have — generic CSV, Electricity Maps, EIA-930, ENTSO-E, WattTime — as one registry with detection and loaders.
//!
//! [`FORMATS`] is the registry: one row per [`GridFormat`] with its name (as a scenario or CLI would
//! write it), a description, a header test for [`detect_format`] and the function that plans the
//! read (columns, stamp style, zones). [`load_grid_columns`] reads any of them into [`GridColumns`]
//! (intensity signals, load, price); [`load_grid_file`] makes that a [`GridSeries`].
//!
//! Conventions per format (details and traps in /work/shared/data/grid/FORMATS.md):
//! - **Electricity Maps** (`Datetime (UTC)`, interval start, UTC): both header generations
//!   (`Carbon intensity gCO₂eq/kWh (direct)` / `(Life cycle)`, older `Carbon Intensity ... (LCA)`;
//!   `CO2` or `CO₂`). Both signals are kept: the primary is `lifecycle` (as Electricity Maps shows
//!   by default, and as the other shipped series, computed with life-cycle factors, are), `direct`
//!   goes to `ci_alt`. Both are average intensities. The local zone is not in the file: give it.
//! - **EIA-930 BALANCE** (`UTC Time at End of Hour`, `%m/%d/%Y %I:%M:%S %p`, hour-ending, numbers
//!   may carry thousands separators): one balancing authority selected by `region` from the
//!   `Balancing Authority` column; load = `Demand (MW) (Adjusted)` if present, else `Demand (MW)`;
//!   intensity `ipcc-mix` = Σ generation × factor / Σ generation over the fuel columns of one tier
//!   (`(Adjusted)` preferred), factors in [`IPCC_FACTORS_G_PER_KWH`]; every fuel of every vintage
//!   is mapped and an unknown one is an error (`format/eia.rs`). The dc-rl files
//!   (`timestamp`, `WND..OTH`, `avg_CI`; /work/shared/data/grid/us_eia_2022) load under the same
//!   format: primary `avg_CI`, alternative `ipcc-mix` recomputed from the fuel columns.
//! - **ENTSO-E legacy export** (`MTU` = `01.01.2016 00:00 - 01.01.2016 01:00 (CET/CEST)` or
//!   `(UTC)`; load files `Time (CET/CEST)`): generation columns `<Type>  - Actual Aggregated [MW]`
//!   give `ipcc-mix`; `Actual Total Load` columns give load, `Day-ahead Price` columns give price.
//!   `n/e`, `N/A`, `-` are missing values; the repeated autumn hour is read as two consecutive
//!   hours; the blank rows of the skipped spring hour are left out (`format/entsoe.rs`).
//! - **ENTSO-E new platform** (`MTU (CET/CEST)` or `MTU (UTC)`, `dd/mm/yyyy HH:MM[:SS] - ...`, DST
//!   stamps tagged `(CET)`/`(CEST)`, a `Sequence` column for several auctions):
//!   `Actual Total Load (MW)` and `Day-ahead Price (EUR/MWh)`. Load/price-only files carry no
//!   intensity: [`GridColumns::into_series_with_ci`] takes it from another series (a scenario
//!   uses its region's embedded profile, and says so in the series' notes).
//! - **WattTime** (`point_time,value` client CSV, or v3 JSON): marginal rate in lbs/MWh → g/kWh
//!   (`format/watttime.rs`).
//!
//! Negative generation (pumping, net consumption of "other") is counted as zero in the mix.

use std::path::Path;

use chrono_tz::Tz;

use super::csv_load::load_csv_with_report;
use super::dialect::{looks_like_json, read_source};
use super::error::GridError;
use super::marginal::FuelGeneration;
use super::series::{CiKind, CiSignal, GridSeries};
use super::spec::GridFile;
use super::table::{load_table, read_headers, LoadReport};
use super::time::fmt_utc;

mod eia;
mod entsoe;
mod plans;
mod watttime;

use eia::{detect_eia, plan_eia};
use entsoe::{detect_entsoe_legacy, detect_entsoe_new, plan_entsoe};
pub use plans::IPCC_FACTORS_G_PER_KWH;
use plans::{detect_electricity_maps, factor, plan_electricity_maps, plan_generic, Plan};
use watttime::{detect_watttime, plan_watttime};

/// A grid file format known to the loaders.
/// Scenario files name it by its registry name ([`FORMATS`]), case-insensitively.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GridFormat {
    /// Any CSV with a timestamp column and named value columns, described by [`super::CsvColumns`].
    Generic,
    /// Electricity Maps CSV export (hourly, 5-minute or yearly), both header generations.
    ElectricityMaps,
    /// EIA-930 BALANCE CSV (hour-ending stamps, generation by fuel), and the dc-rl EIA extracts.
    Eia930Balance,
    /// ENTSO-E Transparency Platform legacy export (`MTU` interval column).
    EntsoeLegacy,
    /// ENTSO-E Transparency Platform new-platform export (`MTU (CET/CEST)`, dd/mm/yyyy).
    EntsoeNew,
    /// WattTime marginal emission rates: client CSV (`point_time,value`) or v3 JSON, lbs/MWh.
    WattTime,
}

/// One row of the format registry.
#[derive(Debug, Clone, Copy)]
pub struct FormatInfo {
    /// The format.
    pub format: GridFormat,
    /// Its name in scenario files and on the command line.
    pub name: &'static str,
    /// One line saying what files it reads.
    pub description: &'static str,
    /// True if a header row (trimmed, BOM stripped) looks like this format.
    pub detect: fn(&[String]) -> bool,
    /// Plans the read: which columns are what, how stamps are written.
    plan: fn(&GridFile, &[String], &str) -> Result<Plan, GridError>,
}

/// The registry: every format, in detection order (generic last: it matches anything).
pub const FORMATS: [FormatInfo; 6] = [
    FormatInfo {
        format: GridFormat::ElectricityMaps,
        name: "electricitymaps",
        description: "Electricity Maps CSV export: 'Datetime (UTC)', direct and life-cycle carbon intensity (both kept)",
        detect: detect_electricity_maps,
        plan: plan_electricity_maps,
    },
    FormatInfo {
        format: GridFormat::Eia930Balance,
        name: "eia930",
        description: "EIA-930 BALANCE CSV (hour-ending US stamps, demand, generation by fuel -> intensity), or a dc-rl EIA extract (timestamp, WND..OTH, avg_CI)",
        detect: detect_eia,
        plan: plan_eia,
    },
    FormatInfo {
        format: GridFormat::EntsoeLegacy,
        name: "entsoe-legacy",
        description: "ENTSO-E Transparency legacy export: 'MTU' or 'Time (CET/CEST)' ranges in CET/CEST or UTC, generation per type -> intensity, load, day-ahead price; or a Let's Wait Awhile production file (unnamed UTC time column, bare production types, imports)",
        detect: detect_entsoe_legacy,
        plan: plan_entsoe,
    },
    FormatInfo {
        format: GridFormat::EntsoeNew,
        name: "entsoe",
        description: "ENTSO-E Transparency new platform export: 'MTU (CET/CEST)' or 'MTU (UTC)' dd/mm/yyyy ranges, total load and day-ahead price (first auction of a 'Sequence' column)",
        detect: detect_entsoe_new,
        plan: plan_entsoe,
    },
    FormatInfo {
        format: GridFormat::WattTime,
        name: "watttime",
        description: "WattTime marginal emission rate (co2_moer, lbs/MWh -> g/kWh): client CSV 'point_time,value' (with or without a pandas index column) or v3 API JSON",
        detect: detect_watttime,
        plan: plan_watttime,
    },
    FormatInfo {
        format: GridFormat::Generic,
        name: "generic",
        description: "any CSV: a timestamp column and named intensity / load / price columns (grid.csv columns)",
        detect: |_| true,
        plan: plan_generic,
    },
];

impl GridFormat {
    /// The registry row of this format.
    pub fn info(self) -> &'static FormatInfo {
        // FORMATS lists every variant; the fallback is the generic row (never reached).
        FORMATS
            .iter()
            .find(|f| f.format == self)
            .unwrap_or(&FORMATS[FORMATS.len() - 1])
    }

    /// Name used in scenario files (`generic`, `electricitymaps`, `eia930`, `entsoe-legacy`, `entsoe`).
    pub fn name(self) -> &'static str {
        self.info().name
    }

    /// The format called `name` (case-insensitive); an error lists the names.
    pub fn from_name(name: &str) -> Result<GridFormat, GridError> {
        FORMATS
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name.trim()))
            .map(|f| f.format)
            .ok_or_else(|| GridError::UnknownFormat {
                value: name.to_string(),
                available: format_names().join(", "),
            })
    }
}

impl serde::Serialize for GridFormat {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for GridFormat {
    /// Reads a registry name; an unknown one lists the valid names, as serde does for enums.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        GridFormat::from_name(&name).map_err(|_| {
            serde::de::Error::custom(format!(
                "unknown variant `{name}`, expected one of {}",
                FORMATS
                    .iter()
                    .map(|f| format!("`{}`", f.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
    }
}

/// The names of all formats, in registry order.
pub fn format_names() -> Vec<&'static str> {
    FORMATS.iter().map(|f| f.name).collect()
}

/// The format a file's header row matches (the first in [`FORMATS`] order; `Generic` if none); a
/// JSON file is WattTime's (the only JSON format).
pub fn detect_format(path: &Path) -> Result<GridFormat, GridError> {
    if looks_like_json(&read_source(path)?.bytes) {
        return Ok(GridFormat::WattTime);
    }
    let headers = read_headers(path)?;
    Ok(FORMATS
        .iter()
        .find(|f| (f.detect)(&headers))
        .map_or(GridFormat::Generic, |f| f.format))
}

/// Everything a format file gave, on a regular grid, before choosing the primary intensity.
#[derive(Debug, Clone)]
pub struct GridColumns {
    /// Region label.
    pub region: String,
    /// Local zone of the region.
    pub tz: Tz,
    /// Start of interval 0, seconds since the Unix epoch (UTC).
    pub start_utc_s: i64,
    /// Interval, seconds.
    pub interval_s: i64,
    /// Intensity signals in order of preference (the first becomes the primary), gCO2eq/kWh.
    pub ci: Vec<CiSignal>,
    /// Grid load (demand or total generation), MW.
    pub load_mw: Option<Vec<f64>>,
    /// Price, currency per MWh.
    pub price_per_mwh: Option<Vec<f64>>,
    /// Net generation by fuel of the tier the mix used [MW] (empty for files without a mix); the
    /// input of [`super::estimate_mef`].
    pub generation: Vec<FuelGeneration>,
    /// The file read, and its format.
    pub source: String,
    /// What the reader did (rows, interval, averaged and interpolated intervals).
    pub report: LoadReport,
}

impl GridColumns {
    /// A [`GridSeries`] with the first intensity signal as primary; an error if the file gave none.
    pub fn into_series(self) -> Result<GridSeries, GridError> {
        let mut ci = self.ci.into_iter();
        let Some(primary) = ci.next() else {
            return Err(GridError::NoIntensity {
                source_name: self.source,
            });
        };
        let s = GridSeries {
            region: self.region,
            tz: self.tz,
            start_utc_s: self.start_utc_s,
            interval_s: self.interval_s,
            ci_g_per_kwh: primary.g_per_kwh,
            ci_kind: primary.kind,
            ci_name: primary.name,
            ci_alt: ci.collect(),
            load_mw: self.load_mw,
            price_per_mwh: self.price_per_mwh,
            source: self.source,
            notes: self.report.notes,
        };
        s.validate()?;
        Ok(s)
    }

    /// A [`GridSeries`] on this file's grid whose intensity signals come from `ci` (resampled by
    /// time-weighted means; `ci` must cover this file's span) and whose load and price come from
    /// this file where it has them, else from `ci`. For load/price-only files (ENTSO-E new platform).
    pub fn into_series_with_ci(self, ci: &GridSeries) -> Result<GridSeries, GridError> {
        let duration_s = self.interval_s * self.report_len() as i64;
        let w = ci.window_resampled(self.start_utc_s, duration_s, self.interval_s, false)?;
        let mut notes = self.report.notes;
        notes.push(format!(
            "carbon intensity from {} (the grid file has load/price but no intensity)",
            ci.source
        ));
        let s = GridSeries {
            region: self.region,
            tz: self.tz,
            start_utc_s: self.start_utc_s,
            interval_s: self.interval_s,
            ci_g_per_kwh: w.ci_g_per_kwh,
            ci_kind: w.ci_kind,
            ci_name: w.ci_name,
            ci_alt: w.ci_alt,
            load_mw: self.load_mw.or(w.load_mw),
            price_per_mwh: self.price_per_mwh.or(w.price_per_mwh),
            source: format!("{} + intensity from {}", self.source, ci.source),
            notes,
        };
        s.validate()?;
        Ok(s)
    }

    /// Number of intervals.
    pub fn len(&self) -> usize {
        self.report_len()
    }

    /// True if the file gave no interval.
    pub fn is_empty(&self) -> bool {
        self.report_len() == 0
    }

    fn report_len(&self) -> usize {
        self.ci
            .first()
            .map(|c| c.g_per_kwh.len())
            .or(self.load_mw.as_ref().map(Vec::len))
            .or(self.price_per_mwh.as_ref().map(Vec::len))
            .unwrap_or(0)
    }
}

/// Reads a grid file in its format (see the module docs for each format's rules) as the series of
/// `region` (for EIA-930 BALANCE files also the balancing authority to select; empty: the file's stem).
pub fn load_grid_columns(file: &GridFile, region: &str) -> Result<GridColumns, GridError> {
    let path = file.path.as_path();
    if file.format == GridFormat::Generic {
        let (s, report) = load_csv_with_report(file, region)?;
        return Ok(GridColumns {
            region: s.region,
            tz: s.tz,
            start_utc_s: s.start_utc_s,
            interval_s: s.interval_s,
            ci: vec![CiSignal {
                name: s.ci_name,
                kind: s.ci_kind,
                g_per_kwh: s.ci_g_per_kwh,
            }],
            load_mw: s.load_mw,
            price_per_mwh: s.price_per_mwh,
            generation: Vec::new(),
            source: s.source,
            report,
        });
    }
    if file.format == GridFormat::WattTime {
        let src = read_source(path)?;
        if looks_like_json(&src.bytes) {
            return watttime::load_json(file, &src.bytes, region);
        }
    }
    let headers = read_headers(path)?;
    let info = file.format.info();
    let plan = (info.plan)(file, &headers, region)?;
    let table = load_table(&plan.table)?;
    let mut notes = plan.notes.clone();
    let n = table
        .columns
        .iter()
        .flatten()
        .map(Vec::len)
        .next()
        .unwrap_or(0);
    let get = |slot: Option<usize>| slot.and_then(|k| table.columns.get(k).cloned().flatten());
    let present = |slot: usize| table.columns.get(slot).is_some_and(Option::is_some);
    let mut ci: Vec<CiSignal> = plan
        .ci
        .iter()
        .filter_map(|(slot, name, kind)| {
            get(Some(*slot)).map(|g_per_kwh| CiSignal {
                name: name.clone(),
                kind: *kind,
                g_per_kwh,
            })
        })
        .collect();
    // The mix of the first tier with values (EIA-930: Adjusted, Imputed, raw; others: one tier).
    let mut generation = Vec::new();
    let tier = (0u8..3).find(|t| plan.mix.iter().any(|(slot, _, k)| k == t && present(*slot)));
    if let Some(tier) = tier {
        generation = plan
            .mix
            .iter()
            .filter(|(_, _, k)| *k == tier)
            .filter_map(|(slot, key, _)| {
                get(Some(*slot)).map(|mw| FuelGeneration {
                    fuel: key,
                    factor_g_per_kwh: factor(key),
                    mw,
                })
            })
            .collect();
        let fuels: Vec<(&[f64], f64)> = generation
            .iter()
            .map(|f| (f.mw.as_slice(), f.factor_g_per_kwh))
            .collect();
        let tier_name = plan.mix_tier_names[usize::from(tier)];
        if !tier_name.is_empty() {
            let used: Vec<&str> = plan
                .mix
                .iter()
                .filter(|(slot, _, k)| *k == tier && present(*slot))
                .map(|(slot, _, _)| plan.table.columns[*slot].spec.as_str())
                .collect();
            notes.push(format!(
                "intensity 'ipcc-mix' from the {tier_name} fuel columns with values: {}",
                used.join(", ")
            ));
        }
        ci.push(CiSignal {
            name: "ipcc-mix".into(),
            kind: CiKind::Average,
            g_per_kwh: mix_intensity(path, &fuels, n, table.start_utc_s, table.interval_s)?,
        });
    }
    let region = if region.trim().is_empty() {
        path.file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_default()
    } else {
        region.trim().to_string()
    };
    Ok(GridColumns {
        region,
        tz: plan.local_tz,
        start_utc_s: table.start_utc_s,
        interval_s: table.interval_s,
        ci,
        load_mw: get(plan.load),
        price_per_mwh: get(plan.price),
        generation,
        source: format!("{} ({})", path.display(), info.name),
        report: LoadReport {
            notes: notes
                .into_iter()
                .chain(table.report.notes.clone())
                .collect(),
            ..table.report.clone()
        },
    })
}

/// Reads a grid file into a series (the first intensity signal primary) of `region`.
pub fn load_grid_file(
    file: &GridFile,
    region: &str,
) -> Result<(GridSeries, LoadReport), GridError> {
    let cols = load_grid_columns(file, region)?;
    let report = cols.report.clone();
    Ok((cols.into_series()?, report))
}

/// Generation-weighted intensity: Σ max(g, 0) × factor / Σ max(g, 0) per interval.
fn mix_intensity(
    path: &Path,
    fuels: &[(&[f64], f64)],
    n: usize,
    start_utc_s: i64,
    interval_s: i64,
) -> Result<Vec<f64>, GridError> {
    (0..n)
        .map(|i| {
            let (mut total, mut weighted) = (0.0, 0.0);
            for (v, ef) in fuels {
                let g = v.get(i).copied().unwrap_or(0.0).max(0.0);
                total += g;
                weighted += g * ef;
            }
            if total > 0.0 {
                Ok(weighted / total)
            } else {
                Err(GridError::NoGeneration {
                    path: path.to_path_buf(),
                    at_utc: fmt_utc(start_utc_s + interval_s * i as i64),
                })
            }
        })
        .collect()
}
