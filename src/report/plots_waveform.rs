//! The power waveform plot: each strategy's facility power over the `--waveform` window, one panel per strategy, phases as steps.

use super::draw::{font, render, strategy_color, tick, DrawErr, Figure};
use super::plots_data::PlotError;
use crate::sim::waveform_rows::WaveRow;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::{Path, PathBuf};

struct Waves<'a> {
    waves: &'a [(String, Vec<WaveRow>)],
}

impl Figure for Waves<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), DrawErr> {
        let panels = root.split_evenly((self.waves.len().max(1), 1));
        for (k, ((name, rows), area)) in self.waves.iter().zip(panels.iter()).enumerate() {
            if rows.is_empty() {
                // The run had finished (or had not reached) the window: say so rather than draw axes.
                area.draw(&Text::new(
                    format!("{name}: no power in the window (the run ended before it)"),
                    (20, 20),
                    font(15),
                ))?;
                continue;
            }
            let t0 = rows.first().map_or(0.0, |r| r.t_s);
            let t1 = rows.last().map_or(1.0, |r| r.end_s).max(t0 + 1e-9);
            let hi = rows.iter().map(|r| r.facility_w / 1e6).fold(0.0, f64::max);
            let hi = if hi > 0.0 { hi * 1.1 } else { 1.0 };
            let mut chart = ChartBuilder::on(area)
                .caption(format!("Facility power — {name}"), font(16))
                .margin(10)
                .x_label_area_size(32)
                .y_label_area_size(60)
                .build_cartesian_2d(t0..t1, 0.0..hi)?;
            chart
                .configure_mesh()
                .x_desc("time from the run's start [s]")
                .y_desc("MW")
                .y_label_formatter(&tick)
                .label_style(font(12))
                .draw()?;
            let colour = strategy_color(name, k);
            // Piecewise-constant power: each row holds its level from its start to its end.
            let pts = rows.iter().flat_map(|r| {
                let p = r.facility_w / 1e6;
                [(r.t_s, p), (r.end_s, p)]
            });
            chart.draw_series(LineSeries::new(pts, colour.stroke_width(2)))?;
            let filler = rows.iter().any(|r| r.filler_w > 0.0);
            if filler {
                let it = rows.iter().flat_map(|r| {
                    // The facility power without the filler loads: what the job itself draws.
                    let p = (r.facility_w
                        - r.filler_w * r.facility_w
                            / (r.facility_w - r.cooling_w).max(f64::MIN_POSITIVE))
                        / 1e6;
                    [(r.t_s, p), (r.end_s, p)]
                });
                chart
                    .draw_series(LineSeries::new(it, RGBColor(120, 120, 120).stroke_width(1)))?
                    .label("without filler")
                    .legend(|(x, y)| {
                        PathElement::new(vec![(x, y), (x + 16, y)], RGBColor(120, 120, 120))
                    });
                chart
                    .configure_series_labels()
                    .label_font(font(12))
                    .background_style(WHITE.mix(0.8))
                    .border_style(BLACK)
                    .draw()?;
            }
        }
        Ok(())
    }
}

/// Draw waveform.png and waveform.svg in `dir` from each strategy's rows.
pub(crate) fn plot_waveform(
    waves: &[(String, Vec<WaveRow>)],
    dir: &Path,
) -> Result<Vec<PathBuf>, PlotError> {
    let h = 260 * waves.len().max(1) as u32;
    render(dir, "waveform", (1100, h), &Waves { waves })
}
