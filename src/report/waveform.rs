//! waveform.csv: the facility power of each strategy's run over the `moesim run --waveform` window, row by step phase.

use crate::io::{write_atomic, WriteError};
use crate::sim::waveform_rows::{waveform_rows, WaveRow, WaveformError};
use crate::sim::Results;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Most rows of one strategy's waveform (about 100 MB of CSV over three strategies).
pub const MAX_WAVEFORM_ROWS: usize = 1_000_000;

/// Why waveform.csv or its plot could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WaveformOutError {
    /// The window is too long to draw.
    #[error(transparent)]
    Window(#[from] WaveformError),
    /// The file could not be written.
    #[error(transparent)]
    Io(#[from] crate::io::WriteError),
    /// The plot could not be drawn.
    #[error(transparent)]
    Plot(#[from] super::plots_data::PlotError),
}

/// Each strategy's waveform rows over the window, in scenario order (empty without a window).
pub fn strategy_waveforms(res: &Results) -> Result<Vec<(String, Vec<WaveRow>)>, WaveformError> {
    let interval_s = res.grid.interval_s as f64;
    let pue_at = |t: f64| {
        let i = if interval_s > 0.0 {
            (t / interval_s).floor().max(0.0) as usize
        } else {
            0
        };
        res.pue_by_interval
            .get(i)
            .or(res.pue_by_interval.last())
            .copied()
            .unwrap_or(res.pue)
    };
    let mut out = Vec::new();
    for r in &res.strategies {
        if r.outcome.power.window_s.is_none() {
            continue;
        }
        let rows = waveform_rows(&r.outcome.power, pue_at, interval_s, MAX_WAVEFORM_ROWS)?;
        out.push((r.kind.name().to_string(), rows));
    }
    Ok(out)
}

/// The CSV text of `waves`: strategy, time from the run's start [s], UTC time, duration [s],
/// facility power and its parts [W], phase.
pub fn waveform_csv(res: &Results, waves: &[(String, Vec<WaveRow>)]) -> String {
    let mut s = String::from(
        "strategy,time_s,time_utc,duration_s,facility_w,gpu_w,node_w,network_w,filler_w,cooling_w,phase\n",
    );
    for (name, rows) in waves {
        for r in rows {
            let utc = utc_string(res.grid.start_utc_s, r.t_s);
            let _ = writeln!(
                s,
                "{name},{:.6},{utc},{:.6},{:.1},{:.1},{:.1},{:.1},{:.1},{:.1},{}",
                r.t_s,
                r.end_s - r.t_s,
                r.facility_w,
                r.gpu_w,
                r.node_w,
                r.network_w,
                r.filler_w,
                r.cooling_w,
                r.phase
            );
        }
    }
    s
}

/// ISO 8601 UTC of `t_s` seconds after `start_utc_s`, to the millisecond.
fn utc_string(start_utc_s: i64, t_s: f64) -> String {
    let ms = (t_s * 1000.0).round() as i64;
    let secs = start_utc_s + ms.div_euclid(1000);
    let nanos = (ms.rem_euclid(1000) * 1_000_000) as u32;
    chrono::DateTime::from_timestamp(secs, nanos)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_default()
}

/// Write waveform.csv (and waveform.png/.svg unless `no_plots`) into `dir` when the run had a
/// `--waveform` window; returns the paths written.
pub fn write_waveform(
    res: &Results,
    dir: &Path,
    no_plots: bool,
) -> Result<Vec<PathBuf>, WaveformOutError> {
    let waves = strategy_waveforms(res)?;
    if waves.is_empty() {
        // A window drawn by an earlier run in this folder would reach the report as this run's.
        for stale in ["waveform.csv", "waveform.png", "waveform.svg"].map(|f| dir.join(f)) {
            if stale.exists() {
                std::fs::remove_file(&stale).map_err(|e| WriteError::new(&stale, e))?;
            }
        }
        return Ok(Vec::new());
    }
    let path = dir.join("waveform.csv");
    write_atomic(&path, waveform_csv(res, &waves).as_bytes())?;
    let mut written = vec![path];
    if !no_plots {
        written.extend(super::plots_waveform::plot_waveform(&waves, dir)?);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_times_are_iso_to_the_millisecond() {
        assert_eq!(super::utc_string(0, 3661.2345), "1970-01-01T01:01:01.235Z");
    }
}
