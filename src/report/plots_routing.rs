//! Routing plots of a trace: expert-load heatmap (experts × steps) per layer, and load imbalance over training.

use super::draw::{
    colour_bar, font, render, tick, viridis, with_legend_below, DrawErr, Entry, Figure, Mark,
};
use super::plots_data::PlotError;
use crate::routing::{imbalance, RoutingTrace};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::{Path, PathBuf};

/// Most step columns drawn per layer; longer traces are averaged over bins of consecutive steps
/// (keeps the SVG small enough to inline in the report).
const MAX_STEP_BINS: usize = 60;
/// The colour scale spans load/mean from 2^-LOG2_SPAN to 2^LOG2_SPAN.
const LOG2_SPAN: f64 = 2.0;

/// Load over the mean load of each expert, averaged over bins of steps: `[layer][bin][expert]`,
/// with the bins' first steps (1-based).
pub(crate) fn binned_ratios(t: &RoutingTrace) -> (Vec<Vec<Vec<f64>>>, Vec<usize>) {
    let bins = t.steps.clamp(1, MAX_STEP_BINS);
    let per = t.steps.div_ceil(bins).max(1);
    let starts: Vec<usize> = (0..t.steps).step_by(per).collect();
    let mut out = vec![vec![vec![0.0; t.experts]; starts.len()]; t.layers];
    for (layer, bins_out) in out.iter_mut().enumerate() {
        for (b, &s0) in starts.iter().enumerate() {
            let s1 = (s0 + per).min(t.steps);
            let mut sum = vec![0.0; t.experts];
            for step in s0..s1 {
                for (acc, &c) in sum.iter_mut().zip(t.counts(step, layer)) {
                    *acc += c as f64;
                }
            }
            let mean = sum.iter().sum::<f64>() / t.experts.max(1) as f64;
            for (o, v) in bins_out[b].iter_mut().zip(&sum) {
                *o = if mean > 0.0 { v / mean } else { 1.0 };
            }
        }
    }
    (out, starts.iter().map(|s| s + 1).collect())
}

struct Heatmap<'a> {
    t: &'a RoutingTrace,
}

impl Figure for Heatmap<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), DrawErr> {
        let t = self.t;
        let root = root.titled(
            &format!(
                "Expert load per layer over training (load / mean load, {} experts, {} steps; {})",
                t.experts,
                t.steps,
                short_source(&t.source)
            ),
            font(22),
        )?;
        let (w, _) = root.dim_in_pixel();
        let (panels, bar) = root.split_horizontally(w.saturating_sub(170));
        let (ratios, starts) = binned_ratios(t);
        let cols = t.layers.clamp(1, 4);
        let rows = t.layers.div_ceil(4).max(1);
        let areas = panels.split_evenly((rows, cols));
        let steps = t.steps as f64;
        let e = t.experts as f64;
        for (layer, area) in areas.iter().enumerate().take(t.layers) {
            let mut chart = ChartBuilder::on(area)
                .caption(format!("layer {layer}"), font(16))
                .margin(8)
                .x_label_area_size(36)
                .y_label_area_size(44)
                .build_cartesian_2d(1.0..steps + 1.0, 0.0..e)?;
            chart
                .configure_mesh()
                .disable_mesh()
                .x_desc("step")
                .y_desc("expert")
                .x_labels(5)
                .y_labels(t.experts.min(8) + 1)
                .x_label_formatter(&|v| format!("{v:.0}"))
                .y_label_formatter(&|v| format!("{v:.0}"))
                .label_style(font(12))
                .axis_desc_style(font(13))
                .draw()?;
            let cells = ratios[layer].iter().enumerate().flat_map(|(b, loads)| {
                let x0 = starts[b] as f64;
                let x1 = starts.get(b + 1).map_or(steps + 1.0, |&s| s as f64);
                loads.iter().enumerate().map(move |(ex, &r)| {
                    let v = (r.max(1e-9).log2() + LOG2_SPAN) / (2.0 * LOG2_SPAN);
                    Rectangle::new(
                        [(x0, ex as f64), (x1, ex as f64 + 1.0)],
                        viridis(v).filled(),
                    )
                })
            });
            chart.draw_series(cells)?;
        }
        // Colour bar.
        colour_bar(
            &bar,
            -LOG2_SPAN,
            LOG2_SPAN,
            2 * LOG2_SPAN as usize + 1,
            "load / mean",
            &|v| {
                let r = 2f64.powf(*v);
                if r >= 1.0 {
                    format!("{r:.0}×")
                } else {
                    format!("1/{:.0}", 1.0 / r)
                }
            },
            false,
        )?;
        Ok(())
    }
}

fn short_source(s: &str) -> String {
    Path::new(s)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or(s)
        .to_string()
}

struct ImbalancePlot<'a> {
    t: &'a RoutingTrace,
}

impl Figure for ImbalancePlot<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), DrawErr> {
        let t = self.t;
        let mut per_layer = vec![Vec::with_capacity(t.steps); t.layers];
        for step in 0..t.steps {
            for (layer, v) in per_layer.iter_mut().enumerate() {
                let loads: Vec<f64> = t.counts(step, layer).iter().map(|&c| c as f64).collect();
                v.push(((step + 1) as f64, imbalance(&loads).max_over_mean));
            }
        }
        let y_max = per_layer.iter().flatten().map(|p| p.1).fold(1.0, f64::max) * 1.1;
        let colour = |layer: usize| viridis(layer as f64 / (t.layers.max(2) - 1) as f64);
        let mut entries: Vec<Entry> = (0..t.layers)
            .map(|l| (Mark::Line(colour(l).to_rgba(), 3), format!("layer {l}")))
            .collect();
        entries.push((
            Mark::Line(BLACK.to_rgba(), 1),
            "balanced (max = mean)".into(),
        ));
        let root = &with_legend_below(root, &entries, 14)?;
        let mut chart = ChartBuilder::on(root)
            .caption(
                format!(
                    "Load imbalance over training: most loaded expert / mean ({})",
                    short_source(&t.source)
                ),
                font(22),
            )
            .margin(16)
            .x_label_area_size(50)
            .y_label_area_size(70)
            .build_cartesian_2d(1.0..(t.steps.max(2)) as f64, 0.0..y_max)?;
        chart
            .configure_mesh()
            .x_desc("step")
            .y_desc("max / mean expert load")
            .label_style(font(15))
            .axis_desc_style(font(17))
            .x_label_formatter(&|v| format!("{v:.0}"))
            .y_label_formatter(&tick)
            .light_line_style(TRANSPARENT)
            .draw()?;
        for (layer, pts) in per_layer.into_iter().enumerate() {
            chart.draw_series(LineSeries::new(pts, colour(layer).stroke_width(2)))?;
        }
        chart.draw_series(LineSeries::new(
            vec![(1.0, 1.0), (t.steps.max(2) as f64, 1.0)],
            BLACK.stroke_width(1),
        ))?;
        Ok(())
    }
}

/// Draw `routing_heatmap` and `routing_imbalance` (PNG and SVG) of a trace into `dir`.
pub fn plot_trace(dir: &Path, t: &RoutingTrace) -> Result<Vec<PathBuf>, PlotError> {
    let rows = t.layers.div_ceil(4).max(1) as u32;
    let mut out = render(
        dir,
        "routing_heatmap",
        (1400, 70 + 280 * rows),
        &Heatmap { t },
    )?;
    out.extend(render(
        dir,
        "routing_imbalance",
        (1280, 600),
        &ImbalancePlot { t },
    )?);
    Ok(out)
}
