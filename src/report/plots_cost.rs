//! The cost breakdown: per strategy a stacked bar of electricity, carbon price, compute-hour tax and levy (summary.csv's `cost_*` columns).

use super::draw::render;
use super::draw_stacked::{Layer, StackedBars};
use super::plots_data::PlotError;
use super::summary::SummaryRow;
use plotters::style::RGBColor;
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
    let currency = currency.unwrap_or("currency units");
    let chart = StackedBars {
        caption: "Cost by term".into(),
        y_desc: format!("cost [{currency}]"),
        names: rows.iter().map(|r| r.strategy.clone()).collect(),
        layers: TERMS
            .iter()
            .map(|(name, colour, get)| Layer {
                name,
                colour: *colour,
                values: rows.iter().map(|r| get(r)).collect(),
            })
            .collect(),
        top_labels: rows
            .iter()
            .map(|r| format!("{:.0}", r.cost_total))
            .collect(),
        side_margin_px: 30,
    };
    render(dir, "cost_breakdown", (900, 560), &chart)
}
