//! The cost breakdown: per strategy a stacked bar of electricity, carbon price, compute-hour tax and levy (summary.csv's `cost_*` columns).

use super::draw::{bar_range, font, render, tick, DrawErr, Figure};
use super::plots_data::PlotError;
use super::summary::SummaryRow;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::{Path, PathBuf};

/// The terms in stacking order: name, colour, and how to read it from a row.
type Term = (&'static str, RGBColor, fn(&SummaryRow) -> f64);

const TERMS: [Term; 4] = [
    ("electricity", RGBColor(70, 110, 180), |r| {
        r.cost_electricity
    }),
    ("carbon price", RGBColor(90, 90, 90), |r| r.cost_carbon),
    ("compute-hour tax", RGBColor(220, 150, 40), |r| r.cost_tax),
    ("levy", RGBColor(150, 90, 160), |r| r.cost_levy),
];

struct Breakdown<'a> {
    rows: Vec<&'a SummaryRow>,
    currency: String,
}

impl Figure for Breakdown<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), DrawErr> {
        let n = self.rows.len() as i32;
        let hi = self
            .rows
            .iter()
            .map(|r| r.cost_total)
            .filter(|v| v.is_finite())
            .fold(0.0, f64::max);
        let hi = if hi > 0.0 { hi * 1.15 } else { 1.0 };
        let names: Vec<String> = self.rows.iter().map(|r| r.strategy.clone()).collect();
        let mut chart = ChartBuilder::on(root)
            .caption("Cost by term", font(20))
            .margin(14)
            .x_label_area_size(34)
            .y_label_area_size(80)
            .build_cartesian_2d(bar_range(n).into_segmented(), 0.0..hi)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(names.len())
            .x_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => {
                    names.get(*i as usize).cloned().unwrap_or_default()
                }
                SegmentValue::Last => String::new(),
            })
            .y_desc(format!("cost [{}]", self.currency))
            .y_label_formatter(&tick)
            .label_style(font(13))
            .draw()?;
        for (t, (name, colour, get)) in TERMS.iter().enumerate() {
            let bars = self.rows.iter().enumerate().map(|(i, r)| {
                // Each term sits on the ones before it.
                let below: f64 = TERMS[..t].iter().map(|x| finite(x.2(r))).sum();
                let i = i as i32;
                let mut bar = Rectangle::new(
                    [
                        (SegmentValue::Exact(i), below),
                        (SegmentValue::Exact(i + 1), below + finite(get(r))),
                    ],
                    colour.filled(),
                );
                bar.set_margin(0, 0, 30, 30);
                bar
            });
            chart.draw_series(bars)?.label(*name).legend(move |(x, y)| {
                Rectangle::new([(x, y - 6), (x + 14, y + 6)], colour.filled())
            });
        }
        chart.draw_series(self.rows.iter().enumerate().map(|(i, r)| {
            Text::new(
                format!("{:.0}", finite(r.cost_total)),
                (SegmentValue::CenterOf(i as i32), finite(r.cost_total)),
                font(13).pos(Pos::new(HPos::Center, VPos::Bottom)),
            )
        }))?;
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(font(13))
            .draw()?;
        Ok(())
    }
}

fn finite(v: f64) -> f64 {
    if v.is_finite() {
        v
    } else {
        0.0
    }
}

/// Draw `cost_breakdown.png/.svg` into `dir` when the run had a `[cost]` table (some row carries
/// `cost_total`); returns the paths written (none otherwise).
pub(crate) fn plot_cost(
    dir: &Path,
    summary: &[SummaryRow],
    currency: Option<&str>,
) -> Result<Vec<PathBuf>, PlotError> {
    let rows: Vec<&SummaryRow> = summary
        .iter()
        .filter(|r| r.cost_total.is_finite())
        .collect();
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let currency = currency.unwrap_or("currency units").to_string();
    render(
        dir,
        "cost_breakdown",
        (900, 560),
        &Breakdown { rows, currency },
    )
}
