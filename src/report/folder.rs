//! Everything `moesim plot` draws for one output folder (or one routing trace): the run, trace and sweep
//! plots and report.html.

use super::html::write_report;
use super::plots::plot_run;
use super::plots_data::{need, read_run_info, read_summary, read_sweep, read_timeline, PlotError};
use super::plots_routing::plot_trace;
use super::plots_saving::plot_savings;
use super::plots_sweep::plot_sweep;
use std::path::{Path, PathBuf};

/// What `plot_dir` was asked to draw besides the folder's own files.
#[derive(Debug, Clone, Default)]
pub struct PlotOptions {
    /// A routing trace to draw (expert-load heatmap per layer and imbalance over training); without
    /// it, the trace the run replayed (from run_info.json), if any.
    pub trace: Option<PathBuf>,
}

/// Draw every plot the folder's files allow (PNG and SVG each) and write `report.html`; returns the
/// paths written. Needs `summary.csv` and `timeline.csv`; draws sweep plots when `sweep.csv` exists.
pub fn plot_dir(dir: &Path, opts: &PlotOptions) -> Result<Vec<PathBuf>, PlotError> {
    if !dir.is_dir() {
        return Err(PlotError::Missing {
            dir: dir.to_path_buf(),
            file: "(the folder itself)".into(),
        });
    }
    let summary = read_summary(&need(dir, "summary.csv")?)?;
    let timeline = read_timeline(&need(dir, "timeline.csv")?)?;
    let sweep_path = dir.join("sweep.csv");
    let sweep = if sweep_path.is_file() {
        Some(read_sweep(&sweep_path)?)
    } else {
        None
    };
    let info = read_run_info(dir)?;
    let trace_path = opts
        .trace
        .clone()
        .or_else(|| info.as_ref().and_then(|i| i.trace_path.clone()));
    let trace = match &trace_path {
        Some(p) => Some(crate::routing::read_trace(p)?),
        None => None,
    };

    let mut written = plot_run(dir, &summary, &timeline, info.as_ref())?;
    written.extend(plot_savings(dir, &summary)?);
    let currency = info.as_ref().and_then(|i| i.currency.as_deref());
    written.extend(super::plots_cost::plot_cost(dir, &summary, currency)?);
    written.extend(super::plots_sites::plot_sites(dir)?);
    let curves = info.as_ref().map_or(&[][..], |i| &i.schedule_curves[..]);
    written.extend(super::plots_schedule::plot_schedule(dir, curves)?);
    if let Some(t) = &trace {
        written.extend(plot_trace(dir, t)?);
    }
    if let Some(s) = &sweep {
        written.extend(plot_sweep(dir, s)?);
    }
    written.push(write_report(dir, &summary, info.as_ref())?);
    Ok(written)
}

/// Draw the routing plots of a trace file into `dir` (created if missing); returns the paths written.
pub fn plot_trace_file(trace: &Path, dir: &Path) -> Result<Vec<PathBuf>, PlotError> {
    let t = crate::routing::read_trace(trace)?;
    plot_trace(dir, &t)
}

/// Draw the sweep plots of the `sweep.csv` in `dir`; returns the files written.
pub fn plot_sweep_dir(dir: &Path) -> Result<Vec<PathBuf>, PlotError> {
    let s = read_sweep(&dir.join("sweep.csv"))?;
    plot_sweep(dir, &s)
}
