//! What the plots and the HTML report read back from an output folder: summary.csv, timeline.csv, sweep.csv, run_info.json.

use super::files::OutputError;
use super::summary::{summary_columns, SummaryRow};
use crate::io::{write_atomic, WriteError};
use crate::routing::RoutingError;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Errors making plots or the report from an output folder.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// The folder lacks a file the plots need.
    #[error("{dir}: not a moesim output folder: `{file}` is missing (make one with `moesim run SCENARIO --out {dir}`)")]
    Missing {
        /// Output folder.
        dir: PathBuf,
        /// Missing file name.
        file: String,
    },
    /// A file could not be read.
    #[error("{path}: cannot read: {source}")]
    Io {
        /// File.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// A file's content is malformed.
    #[error("{path}: line {line}: {msg}")]
    Parse {
        /// File.
        path: PathBuf,
        /// 1-based line (the CSV header is line 1).
        line: u64,
        /// What is wrong and what would be valid.
        msg: String,
    },
    /// A routing trace could not be read.
    #[error(transparent)]
    Routing(#[from] RoutingError),
    /// Drawing a plot failed.
    #[error("{path}: cannot draw plot: {msg}")]
    Draw {
        /// Plot file.
        path: PathBuf,
        /// What failed.
        msg: String,
    },
    /// Writing a file failed.
    #[error(transparent)]
    Output(#[from] OutputError),
}

impl From<WriteError> for PlotError {
    fn from(e: WriteError) -> Self {
        PlotError::Output(e.into())
    }
}

impl PlotError {
    /// Whether the error comes from bad input (a missing or malformed file: exit code 2) rather than a
    /// failure to write (exit code 1).
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            PlotError::Missing { .. }
                | PlotError::Io { .. }
                | PlotError::Parse { .. }
                | PlotError::Routing(_)
        )
    }
}

/// One row of timeline.csv (one grid interval of one strategy).
#[derive(Debug, Clone)]
pub struct TimelineIn {
    /// Strategy name.
    pub strategy: String,
    /// Interval start [s since the Unix epoch, UTC].
    pub start_utc_s: i64,
    /// Grid carbon intensity [gCO2/kWh].
    pub ci_g_per_kwh: f64,
    /// Mode: `full`, `throttled`, `paused` or `done`.
    pub mode: String,
    /// Seconds of the interval the run covered [s].
    pub covered_s: f64,
    /// Average facility power over the covered part [W].
    pub avg_facility_power_w: f64,
    /// Local hour of the interval start (0–23; None in folders written before the column).
    pub local_hour: Option<u32>,
}

#[derive(Deserialize)]
struct TimelineRaw {
    strategy: String,
    interval_start_utc: String,
    /// Local hour of the interval start (0-23), absent in folders older than this column.
    #[serde(default)]
    local_hour: Option<u32>,
    #[serde(with = "super::summary::finite")]
    ci_g_per_kwh: f64,
    mode: String,
    #[serde(with = "super::summary::finite")]
    covered_s: f64,
    #[serde(with = "super::summary::finite")]
    avg_facility_power_w: f64,
}

/// A sweep table: one row per point and strategy; parameter columns named by dotted path.
#[derive(Debug, Clone)]
pub struct SweepIn {
    /// Swept parameter names (dotted paths), in file order.
    pub params: Vec<String>,
    /// Rows.
    pub rows: Vec<SweepRow>,
}

/// One sweep row.
#[derive(Debug, Clone)]
pub struct SweepRow {
    /// Point index.
    pub point: u64,
    /// Strategy name.
    pub strategy: String,
    /// Wall-clock time [h].
    pub wall_clock_h: f64,
    /// Emissions [kg CO2e].
    pub co2_kg: f64,
    /// Facility energy [kWh].
    pub energy_facility_kwh: f64,
    /// Parameter values as written, in the order of `SweepIn::params`.
    pub values: Vec<String>,
}

/// What `moesim run` records beside the CSVs so the report can name its sources.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RunInfo {
    /// moesim version that wrote the folder.
    pub moesim_version: String,
    /// Scenario name.
    pub scenario: String,
    /// Scenario file it came from.
    pub scenario_file: String,
    /// Seed.
    pub seed: u64,
    /// Accelerator preset key and name.
    pub accelerator: String,
    /// Sources of the accelerator preset's figures, one per line.
    pub accelerator_sources: Vec<String>,
    /// GPUs in the job.
    pub gpus: u32,
    /// PUE used.
    pub pue: f64,
    /// Grid series: region and source.
    pub grid: String,
    /// Mean carbon intensity of the series [gCO2/kWh].
    pub grid_mean_ci_g_per_kwh: f64,
    /// Routing source (uniform, zipf s, or the trace file).
    pub routing: String,
    /// Absolute path of the routing trace, when the scenario replays one.
    pub trace_path: Option<PathBuf>,
    /// Loss law per strategy: `strategy: law`.
    pub loss_laws: Vec<String>,
    /// IANA time zone of the grid series (local hours, the timeline's axis); absent in older folders.
    #[serde(default)]
    pub time_zone: Option<String>,
    /// Currency of the grid's prices and of `cost` (ISO code as the scenario gives it); None when the
    /// scenario does not say.
    #[serde(default)]
    pub currency: Option<String>,
    /// How the grid series was read: unit conversions, columns used or left out, what came from the
    /// region's profile (one sentence each).
    #[serde(default)]
    pub grid_notes: Vec<String>,
    /// Schedules over training progress per strategy (curriculum knobs, batch warm-up): `strategy:
    /// schedule`; empty without any (and in older folders).
    #[serde(default)]
    pub schedules: Vec<String>,
    /// The same schedules as curves `(strategy, curve)` for the schedule plot.
    #[serde(default)]
    pub schedule_curves: Vec<(String, crate::sim::ScheduleCurve)>,
}

/// The path of `file` in `dir`, or a `Missing` error.
pub fn need(dir: &Path, file: &str) -> Result<PathBuf, PlotError> {
    let p = dir.join(file);
    if p.is_file() {
        Ok(p)
    } else {
        Err(PlotError::Missing {
            dir: dir.to_path_buf(),
            file: file.to_string(),
        })
    }
}

pub(super) fn reader(path: &Path) -> Result<csv::Reader<std::fs::File>, PlotError> {
    csv::ReaderBuilder::new()
        .has_headers(true)
        .from_path(path)
        .map_err(|e| csv_err(path, e))
}

pub(super) fn csv_err(path: &Path, e: csv::Error) -> PlotError {
    let line = e.position().map_or(0, |p| p.line());
    let msg = e.to_string();
    match e.into_kind() {
        csv::ErrorKind::Io(source) => PlotError::Io {
            path: path.to_path_buf(),
            source,
        },
        _ => PlotError::Parse {
            path: path.to_path_buf(),
            line,
            msg,
        },
    }
}

/// Read summary.csv of an output folder.
pub fn read_summary(path: &Path) -> Result<Vec<SummaryRow>, PlotError> {
    let mut rdr = reader(path)?;
    let rows = rdr
        .deserialize()
        .collect::<Result<Vec<SummaryRow>, _>>()
        .map_err(|e| csv_err(path, e))?;
    if rows.is_empty() {
        return Err(PlotError::Parse {
            path: path.to_path_buf(),
            line: 2,
            msg: "no strategy rows (expected one row per strategy after the header)".into(),
        });
    }
    Ok(rows)
}

/// Read timeline.csv of an output folder.
pub fn read_timeline(path: &Path) -> Result<Vec<TimelineIn>, PlotError> {
    let mut rdr = reader(path)?;
    let mut out = Vec::new();
    for (i, r) in rdr.deserialize::<TimelineRaw>().enumerate() {
        let r = r.map_err(|e| csv_err(path, e))?;
        let line = i as u64 + 2;
        let t = chrono::DateTime::parse_from_rfc3339(&r.interval_start_utc).map_err(|e| {
            PlotError::Parse {
                path: path.to_path_buf(),
                line,
                msg: format!(
                    "interval_start_utc `{}`: {e} (expected RFC 3339, e.g. 2024-03-04T00:00:00Z)",
                    r.interval_start_utc
                ),
            }
        })?;
        out.push(TimelineIn {
            strategy: r.strategy,
            start_utc_s: t.timestamp(),
            ci_g_per_kwh: r.ci_g_per_kwh,
            mode: r.mode,
            covered_s: r.covered_s,
            avg_facility_power_w: r.avg_facility_power_w,
            local_hour: r.local_hour,
        });
    }
    Ok(out)
}

/// Read a sweep.csv: summary columns, a `point` column, and one column per swept parameter (every
/// column that is neither `point` nor a summary column).
pub fn read_sweep(path: &Path) -> Result<SweepIn, PlotError> {
    let mut rdr = reader(path)?;
    let headers = rdr.headers().map_err(|e| csv_err(path, e))?.clone();
    let known = summary_columns();
    let col = |name: &str| -> Result<usize, PlotError> {
        headers
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| PlotError::Parse {
                path: path.to_path_buf(),
                line: 1,
                msg: format!("sweep table has no `{name}` column (expected the summary columns, `point`, and one column per swept parameter)"),
            })
    };
    let (ip, is, iw, ic, ie) = (
        col("point")?,
        col("strategy")?,
        col("wall_clock_h")?,
        col("co2_kg")?,
        col("energy_facility_kwh")?,
    );
    let pcols: Vec<usize> = headers
        .iter()
        .enumerate()
        // Run bookkeeping columns of sweep.csv are not swept parameters.
        .filter(|(_, h)| {
            !["point", "status", "error", "seed"].contains(h) && !known.iter().any(|k| k == h)
        })
        .map(|(i, _)| i)
        .collect();
    let params = pcols.iter().map(|&i| headers[i].to_string()).collect();
    let mut rows = Vec::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| csv_err(path, e))?;
        let line = rec.position().map_or(0, |p| p.line());
        let num = |i: usize| -> Result<f64, PlotError> {
            let s = rec.get(i).unwrap_or("");
            s.trim().parse::<f64>().map_err(|_| PlotError::Parse {
                path: path.to_path_buf(),
                line,
                msg: format!("column `{}`: `{s}` is not a number", &headers[i]),
            })
        };
        let point = rec
            .get(ip)
            .unwrap_or("")
            .trim()
            .parse::<u64>()
            .map_err(|_| PlotError::Parse {
                path: path.to_path_buf(),
                line,
                msg: format!(
                    "column `point`: `{}` is not a point index (expected an integer ≥ 0)",
                    rec.get(ip).unwrap_or("")
                ),
            })?;
        rows.push(SweepRow {
            point,
            strategy: rec.get(is).unwrap_or("").to_string(),
            wall_clock_h: num(iw)?,
            co2_kg: num(ic)?,
            energy_facility_kwh: num(ie)?,
            values: pcols
                .iter()
                .map(|&i| rec.get(i).unwrap_or("").to_string())
                .collect(),
        });
    }
    if rows.is_empty() {
        return Err(PlotError::Parse {
            path: path.to_path_buf(),
            line: 2,
            msg: "no sweep rows after the header".into(),
        });
    }
    Ok(SweepIn { params, rows })
}

/// Read run_info.json if the folder has one (older folders do not).
pub fn read_run_info(dir: &Path) -> Result<Option<RunInfo>, PlotError> {
    let path = dir.join("run_info.json");
    if !path.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path).map_err(|source| PlotError::Io {
        path: path.clone(),
        source,
    })?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| PlotError::Parse {
            path,
            line: e.line() as u64,
            msg: format!("{e} (run_info.json is written by `moesim run`)"),
        })
}

/// Write `scenario.toml` (the scenario's text, echoed) and `run_info.json` (versions and sources)
/// into `dir`, so `moesim plot DIR` and the report work from the folder alone; returns the paths.
pub fn write_run_files(
    s: &crate::Scenario,
    res: &crate::Results,
    dir: &Path,
) -> Result<Vec<PathBuf>, OutputError> {
    use crate::scenario::RoutingSource;
    let scenario_path = dir.join("scenario.toml");
    write_atomic(&scenario_path, s.text.as_bytes())?;
    let trace_path = match &s.routing.source {
        RoutingSource::Trace { path: p, .. } if s.moe.is_some() => {
            Some(std::fs::canonicalize(p).unwrap_or_else(|_| p.clone()))
        }
        _ => None,
    };
    let routing = match res.strategies.iter().find_map(|r| r.routing.clone()) {
        _ if s.moe.is_none() => "none (no MoE model)".to_string(),
        Some(r) => format!("{r}, seed {}", s.seed),
        None => format!("seed {}", s.seed),
    };
    let a = &s.cluster.accelerator;
    let info = RunInfo {
        moesim_version: env!("CARGO_PKG_VERSION").to_string(),
        scenario: s.name.clone(),
        scenario_file: s.file.clone(),
        seed: s.seed,
        accelerator: format!("{} ({})", a.key, a.name),
        accelerator_sources: a.sources.clone(),
        gpus: s.cluster.gpus,
        pue: res.pue,
        grid: format!("{}: {}", res.grid.region, res.grid.source),
        grid_mean_ci_g_per_kwh: res.grid.mean_ci(),
        routing,
        trace_path,
        loss_laws: res
            .strategies
            .iter()
            .map(|r| {
                format!(
                    "{}: {}",
                    r.kind.name(),
                    r.loss
                        .as_ref()
                        .map_or_else(|| "no estimate".to_string(), |l| l.law.to_string())
                )
            })
            .collect(),
        schedule_curves: res
            .strategies
            .iter()
            .flat_map(|r| {
                r.schedule_curves
                    .iter()
                    .map(|c| (r.kind.name().to_string(), c.clone()))
            })
            .collect(),
        time_zone: Some(res.grid.tz.name().to_string()),
        currency: s.grid.currency.clone(),
        grid_notes: res.grid.notes.clone(),
        schedules: res
            .strategies
            .iter()
            .filter_map(|r| {
                r.schedule
                    .as_ref()
                    .map(|d| format!("{}: {d}", r.kind.name()))
            })
            .collect(),
    };
    let info_path = dir.join("run_info.json");
    let json = serde_json::to_string_pretty(&info)
        .map_err(|e| WriteError::new(&info_path, std::io::Error::other(e)))?;
    write_atomic(&info_path, json.as_bytes())?;
    Ok(vec![scenario_path, info_path])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweep_params_are_the_columns_beyond_the_summary() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sweep.csv");
        std::fs::write(
            &p,
            "point,strategy,wall_clock_h,co2_kg,energy_facility_kwh,model.experts,grid.region\n\
             0,moe,10,100,500,8,GB\n1,moe,12,90,480,16,GB\n",
        )
        .unwrap();
        let s = read_sweep(&p).unwrap();
        assert_eq!(s.params, vec!["model.experts", "grid.region"]);
        assert_eq!(s.rows.len(), 2);
        assert_eq!(s.rows[1].values, vec!["16", "GB"]);
        assert_eq!(s.rows[1].co2_kg, 90.0);
    }

    #[test]
    fn sweep_bad_number_names_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sweep.csv");
        std::fs::write(
            &p,
            "point,strategy,wall_clock_h,co2_kg,energy_facility_kwh,x.y\n0,moe,10,abc,5,1\n",
        )
        .unwrap();
        let e = read_sweep(&p).unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("co2_kg"), "{e}");
    }
}
