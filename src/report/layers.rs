//! `layers.csv` of `moesim run --event-level` and its heatmaps: per strategy, grid interval and
//! MoE layer, the energy GPUs spent waiting on routing skew.

use super::plots_data::PlotError;
use super::plots_skew::{plot_skew_heatmap_named, SkewCell};
use crate::sim::Results;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// `layers.csv` of an event-level run: one row per strategy, grid interval and MoE layer
/// (`strategy,interval,interval_start_utc,layer,steps,wait_j,balanced_wait_j,skew_j`; energies
/// in joules over the steps started in the interval, all GPUs). None if no strategy logged any
/// (a fast-path run, or only dense strategies).
pub fn run_layers_csv(res: &Results) -> Option<String> {
    if res.strategies.iter().all(|s| s.layer_skew.is_empty()) {
        return None;
    }
    let mut s = String::from(
        "strategy,interval,interval_start_utc,layer,steps,wait_j,balanced_wait_j,skew_j\n",
    );
    for st in &res.strategies {
        for r in &st.layer_skew {
            let t = res.grid.start_utc_s + i64::from(r.interval) * res.grid.interval_s;
            let when = chrono::DateTime::from_timestamp(t, 0)
                .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
                .unwrap_or_else(|| t.to_string());
            // Writing to a String cannot fail.
            let _ = writeln!(
                s,
                "{},{},{when},{},{},{:.6},{:.6},{:.6}",
                st.kind.name(),
                r.interval,
                r.layer,
                r.steps,
                r.wait_j,
                r.balanced_wait_j,
                r.skew_j()
            );
        }
    }
    Some(s)
}

/// Draw `skew_heatmap_<strategy>` (PNG and SVG) into `dir` for every strategy with logged
/// skew: MoE layer × grid interval of the energy lost to routing skew. Returns the paths.
pub fn plot_run_skew(res: &Results, dir: &Path) -> Result<Vec<PathBuf>, PlotError> {
    let mut out = Vec::new();
    for st in res.strategies.iter().filter(|s| !s.layer_skew.is_empty()) {
        let cells: Vec<SkewCell> = st
            .layer_skew
            .iter()
            .map(|r| SkewCell {
                step: u64::from(r.interval),
                layer: r.layer,
                skew_j: r.skew_j(),
            })
            .collect();
        let title = format!(
            "Energy lost to routing skew per MoE layer and grid interval ({} / {}; event level, against balanced routing)",
            res.scenario,
            st.kind.name()
        );
        out.extend(plot_skew_heatmap_named(
            dir,
            &format!("skew_heatmap_{}", st.kind.name()),
            &cells,
            &title,
            "grid interval (from the run's start)",
        )?);
    }
    Ok(out)
}
