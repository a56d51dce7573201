//! The skew-energy heatmap of `moesim step --steps N`: energy GPUs lost waiting on routing skew,
//! per MoE layer (rows) and step (columns), from the event-level step.

use super::draw::{font, render, viridis, DrawErr, Figure};
use super::plots_data::PlotError;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::{Path, PathBuf};

/// One cell of the heatmap: a step, an MoE layer and the energy its routing skew cost [J].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SkewCell {
    /// Step of the run (0-based).
    pub step: u64,
    /// Transformer layer (0-based).
    pub layer: u32,
    /// Energy lost to routing skew in that layer and step, all GPUs [J].
    pub skew_j: f64,
}

struct SkewHeatmap<'a> {
    cells: &'a [SkewCell],
    title: &'a str,
    /// What the columns are (`step`, or grid intervals for a run).
    x_desc: &'a str,
}

/// Distinct sorted values of `f` over the cells.
fn axis<T: Ord + Copy>(cells: &[SkewCell], f: impl Fn(&SkewCell) -> T) -> Vec<T> {
    let mut v: Vec<T> = cells.iter().map(f).collect();
    v.sort_unstable();
    v.dedup();
    v
}

impl Figure for SkewHeatmap<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), DrawErr> {
        let root = root.titled(self.title, font(20))?;
        let (w, _) = root.dim_in_pixel();
        let (area, bar) = root.split_horizontally(w.saturating_sub(170));
        let steps = axis(self.cells, |c| c.step);
        let layers = axis(self.cells, |c| c.layer);
        // The colour scale starts at 0: a cell below it (routing that waited less than the
        // balanced one) is drawn as 0, and the bar says so.
        let max = self
            .cells
            .iter()
            .map(|c| c.skew_j)
            .fold(0.0_f64, f64::max)
            .max(f64::MIN_POSITIVE);
        let (nx, ny) = (steps.len() as f64, layers.len() as f64);
        let mut chart = ChartBuilder::on(&area)
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(-0.5..nx - 0.5, -0.5..ny - 0.5)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc(self.x_desc)
            .y_desc("MoE layer")
            .x_labels(steps.len().min(10))
            .y_labels(layers.len().min(16))
            .x_label_formatter(&|v| {
                // Cells are centred on their index, so a label sits on its cell.
                steps
                    .get(v.round().max(0.0) as usize)
                    .map_or(String::new(), |s| s.to_string())
            })
            .y_label_formatter(&|v| {
                layers
                    .get(v.round().max(0.0) as usize)
                    .map_or(String::new(), |l| l.to_string())
            })
            .label_style(font(13))
            .axis_desc_style(font(14))
            .draw()?;
        let cells = self.cells.iter().filter_map(|c| {
            let x = steps.binary_search(&c.step).ok()? as f64;
            let y = layers.binary_search(&c.layer).ok()? as f64;
            let v = (c.skew_j / max).clamp(0.0, 1.0);
            Some(Rectangle::new(
                [(x - 0.5, y - 0.5), (x + 0.5, y + 0.5)],
                viridis(v).filled(),
            ))
        });
        chart.draw_series(cells)?;
        let mut cb = ChartBuilder::on(&bar)
            .margin_top(40)
            .margin_bottom(40)
            .margin_right(10)
            .y_label_area_size(95)
            .build_cartesian_2d(0.0..1.0, 0.0..max)?;
        cb.configure_mesh()
            .disable_mesh()
            .disable_x_axis()
            .y_labels(6)
            .y_label_formatter(&|v| format!("{v:.1}"))
            .y_desc("energy lost to skew [J] (≤ 0 drawn as 0)")
            .label_style(font(13))
            .axis_desc_style(font(14))
            .draw()?;
        let n = 64;
        cb.draw_series((0..n).map(|i| {
            let (a, b) = (i as f64 / n as f64, (i + 1) as f64 / n as f64);
            Rectangle::new(
                [(0.0, a * max), (1.0, b * max)],
                viridis((a + b) / 2.0).filled(),
            )
        }))?;
        Ok(())
    }
}

/// Draw `skew_heatmap` (PNG and SVG) into `dir`: MoE layer × step of the energy lost to routing
/// skew, titled `title`.
pub fn plot_skew_heatmap(
    dir: &Path,
    cells: &[SkewCell],
    title: &str,
) -> Result<Vec<PathBuf>, PlotError> {
    plot_skew_heatmap_named(dir, "skew_heatmap", cells, title, "step")
}

/// [`plot_skew_heatmap`] into files named `stem` (PNG and SVG), the columns described as `x_desc`
/// (a cell's `step` then numbers the column: a step, or a grid interval).
pub(crate) fn plot_skew_heatmap_named(
    dir: &Path,
    stem: &str,
    cells: &[SkewCell],
    title: &str,
    x_desc: &str,
) -> Result<Vec<PathBuf>, PlotError> {
    let layers = axis(cells, |c| c.layer).len() as u32;
    render(
        dir,
        stem,
        (1280, (160 + 28 * layers).clamp(420, 1000)),
        &SkewHeatmap {
            cells,
            title,
            x_desc,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_a_png_and_an_svg_with_one_cell_per_layer_and_step() {
        let dir = std::env::temp_dir().join(format!("moesim_skew_{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cells: Vec<SkewCell> = (0..3u64)
            .flat_map(|step| {
                (0..4u32).map(move |layer| SkewCell {
                    step,
                    layer,
                    skew_j: (step as f64 + 1.0) * layer as f64 - 1.0,
                })
            })
            .collect();
        let out = plot_skew_heatmap(&dir, &cells, "test").unwrap();
        assert_eq!(out.len(), 2);
        let svg = std::fs::read_to_string(dir.join("skew_heatmap.svg")).unwrap();
        // 12 cells + 64 colour-bar slices, each a filled rect.
        assert!(svg.matches("<rect").count() >= 12 + 64, "{}", svg.len());
        assert!(
            std::fs::metadata(dir.join("skew_heatmap.png"))
                .unwrap()
                .len()
                > 1000
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}
