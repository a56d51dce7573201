//! The waterfall of where each saving comes from: per strategy split against moe (summary.csv's
//! `saving_*` columns), one panel each for CO2, facility energy and wall-clock time.

use super::draw::{font, render, segment_label, tick, DrawErr, Figure};
use super::plots_data::PlotError;
use super::summary::SummaryRow;
use crate::sim::Cause;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::{Path, PathBuf};

/// A saving (green) and a cost (red); the total bar in grey.
const SAVE: RGBColor = RGBColor(46, 139, 87);
const COST: RGBColor = RGBColor(200, 60, 50);
const TOTAL: RGBColor = RGBColor(90, 90, 90);

/// A short label of a cause for the x axis.
fn short(c: Cause) -> &'static str {
    match c {
        Cause::Rest => "rest",
        Cause::TimeShift => "time shift",
        Cause::Pue => "PUE",
        Cause::PauseOverhead => "pauses",
        Cause::PowerCap => "power cap",
        Cause::Batch => "batch",
        Cause::Routing => "top-k",
        Cause::Model => "model",
        Cause::Tokens => "tokens",
    }
}

/// The waterfalls of every row with a split.
struct Waterfall<'a> {
    rows: Vec<&'a SummaryRow>,
}

/// One metric of a saving: its title and how to read it from a row's part.
type Metric = (&'static str, fn((f64, f64, f64)) -> f64);

const METRICS: [Metric; 3] = [
    ("CO2e saved [kg]", |p| p.0),
    ("facility energy saved [kWh]", |p| p.1),
    ("wall-clock saved [h]", |p| p.2),
];

impl Figure for Waterfall<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), DrawErr> {
        let root = root.titled(
            "Where each saving against moe comes from (causes switched on in order, left to right; green saves, red costs)",
            font(20),
        )?;
        let grid = root.split_evenly((self.rows.len().max(1), METRICS.len()));
        for (r, row) in self.rows.iter().enumerate() {
            let causes = row.saving_causes();
            // The bars: each cause from the running sum, then the total from zero.
            let mut bars: Vec<(String, f64, f64, RGBColor)> = Vec::new();
            for (m, (title, get)) in METRICS.iter().enumerate() {
                bars.clear();
                let mut sum = 0.0;
                for &c in &causes {
                    let v = get(row.saving(c));
                    let v = if v.is_finite() { v } else { 0.0 };
                    bars.push((
                        short(c).to_string(),
                        sum,
                        sum + v,
                        if v >= 0.0 { SAVE } else { COST },
                    ));
                    sum += v;
                }
                bars.push(("total".into(), 0.0, sum, TOTAL));
                let lo = bars.iter().map(|b| b.1.min(b.2)).fold(0.0, f64::min);
                let hi = bars.iter().map(|b| b.1.max(b.2)).fold(0.0, f64::max);
                let pad = ((hi - lo) * 0.12).max(1e-9);
                let n = bars.len() as i32;
                let names: Vec<String> = bars.iter().map(|b| b.0.clone()).collect();
                let mut chart = ChartBuilder::on(&grid[r * METRICS.len() + m])
                    .caption(format!("{} vs moe: {title}", row.strategy), font(16))
                    .margin(10)
                    .x_label_area_size(30)
                    .y_label_area_size(60)
                    .build_cartesian_2d((0..n - 1).into_segmented(), (lo - pad)..(hi + pad))?;
                chart
                    .configure_mesh()
                    .disable_x_mesh()
                    .x_labels(names.len())
                    .x_label_formatter(&|v| segment_label(&names, v))
                    .y_label_formatter(&tick)
                    .light_line_style(TRANSPARENT)
                    .label_style(font(12))
                    .draw()?;
                chart.draw_series(std::iter::once(PathElement::new(
                    vec![(SegmentValue::Exact(0), 0.0), (SegmentValue::Exact(n), 0.0)],
                    BLACK.stroke_width(1),
                )))?;
                for (i, (_, a, b, c)) in bars.iter().enumerate() {
                    let i = i as i32;
                    let mut bar = Rectangle::new(
                        [
                            (SegmentValue::Exact(i), *a),
                            (SegmentValue::Exact(i + 1), *b),
                        ],
                        c.filled(),
                    );
                    bar.set_margin(0, 0, 6, 6);
                    chart.draw_series(std::iter::once(bar))?;
                    let v = b - a;
                    let (y, vpos) = if *b >= *a {
                        (a.max(*b), VPos::Bottom)
                    } else {
                        (a.min(*b), VPos::Top)
                    };
                    chart.draw_series(std::iter::once(Text::new(
                        format!("{:+.3}", if v.abs() < 5e-4 { 0.0 } else { v }),
                        (SegmentValue::CenterOf(i), y),
                        font(11).pos(Pos::new(HPos::Center, vpos)),
                    )))?;
                }
            }
        }
        Ok(())
    }
}

/// Draw `saving_waterfall.png/.svg` into `dir` when some row of `summary` carries a split; returns the
/// paths written (none without a split).
pub(crate) fn plot_savings(dir: &Path, summary: &[SummaryRow]) -> Result<Vec<PathBuf>, PlotError> {
    let rows: Vec<&SummaryRow> = summary
        .iter()
        .filter(|r| !r.saving_causes().is_empty())
        .collect();
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let size = (1500, 80 + 330 * rows.len() as u32);
    render(dir, "saving_waterfall", size, &Waterfall { rows })
}
