//! Output files: summary.csv and timeline.csv, each written to a temporary file and renamed.

use super::summary::summary_rows;
use crate::io::{write_atomic, WriteError};
use crate::sim::Results;
use std::path::{Path, PathBuf};

/// A file could not be written.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// Creating, writing or renaming failed.
    #[error(transparent)]
    Io(#[from] WriteError),
    /// CSV encoding failed.
    #[error("{path}: cannot write CSV: {source}")]
    Csv {
        /// File.
        path: PathBuf,
        /// Underlying error.
        source: csv::Error,
    },
}

fn csv_bytes<F>(path: &Path, fill: F) -> Result<Vec<u8>, OutputError>
where
    F: FnOnce(&mut csv::Writer<Vec<u8>>) -> Result<(), csv::Error>,
{
    let mut w = csv::Writer::from_writer(Vec::new());
    fill(&mut w).map_err(|source| OutputError::Csv {
        path: path.to_path_buf(),
        source,
    })?;
    w.into_inner()
        .map_err(|e| WriteError::new(path, e.into_error()).into())
}

/// `v` with `prec` decimals, or an empty cell when it is not finite (never `NaN` or `inf` in a file).
fn num(v: f64, prec: usize) -> String {
    if v.is_finite() {
        format!("{v:.prec$}")
    } else {
        String::new()
    }
}

fn utc_text(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|| t.to_string())
}

/// Write `summary.csv` and `timeline.csv` into `dir`; returns the paths written.
pub fn write_outputs(res: &Results, dir: &Path) -> Result<Vec<PathBuf>, OutputError> {
    let summary = dir.join("summary.csv");
    let bytes = csv_bytes(&summary, |w| {
        for r in summary_rows(res) {
            w.serialize(r)?;
        }
        Ok(())
    })?;
    write_atomic(&summary, &bytes)?;
    let timeline = dir.join("timeline.csv");
    let bytes = csv_bytes(&timeline, |w| {
        w.write_record([
            "strategy",
            "interval_start_utc",
            "local_hour",
            "ci_g_per_kwh",
            "price_per_mwh",
            "mode",
            "covered_s",
            "avg_facility_power_w",
            "avg_it_power_w",
            "energy_facility_kwh",
            "co2_kg",
            "cost",
            "tokens",
            "throughput_tokens_per_s",
            "dropped_share",
            "pue",
            "mean_top_k",
            "mean_batch_tokens",
            "mean_active_experts",
            "mean_capacity_factor",
        ])?;
        for s in &res.strategies {
            for row in &s.outcome.timeline {
                let t = &row.totals;
                let dur = row.covered_s.max(f64::MIN_POSITIVE);
                w.write_record([
                    s.kind.name().to_string(),
                    utc_text(row.start_utc_s),
                    row.local_hour.to_string(),
                    num(row.ci_g_per_kwh, 3),
                    num(row.price_per_mwh, 3),
                    row.mode.map_or("done", |m| m.name()).to_string(),
                    num(row.covered_s, 3),
                    num(t.facility_j / dur, 3),
                    num(t.it_j() / dur, 3),
                    num(t.facility_j / 3.6e6, 6),
                    num(t.co2_kg, 6),
                    num(t.cost, 6),
                    num(row.tokens, 0),
                    num(row.tokens / dur, 3),
                    num(row.dropped_share, 6),
                    num(row.pue, 4),
                    num(row.mean_top_k, 4),
                    num(row.mean_batch_tokens, 0),
                    num(row.mean_active_experts, 3),
                    num(row.mean_capacity_factor, 4),
                ])?;
            }
        }
        Ok(())
    })?;
    write_atomic(&timeline, &bytes)?;
    let mut written = vec![summary, timeline];
    // A multi-region job: its modes compared in sites.csv.
    if let Some(bytes) = super::sites::sites_csv(res) {
        let path = dir.join("sites.csv");
        let bytes = bytes.map_err(|source| OutputError::Csv {
            path: path.clone(),
            source,
        })?;
        write_atomic(&path, &bytes)?;
        written.push(path);
    } else {
        // A sites.csv left by an earlier run of another scenario in this folder would reach the report.
        let stale = dir.join("sites.csv");
        if stale.exists() {
            std::fs::remove_file(&stale).map_err(|e| WriteError::new(&stale, e))?;
        }
    }
    Ok(written)
}
