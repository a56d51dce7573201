//! Comparison plots (PNG and SVG) of one output folder: power timeline vs carbon intensity, comparison bars, energy breakdown.

use super::draw::{
    bar_range, font, render, segment_label, short_num, strategy_color, tick, tick_in,
    with_legend_below, DrawErr, Entry, Figure, Mark,
};
use super::plots_bands::{whisker, with_band_ends, BandsIn};
use super::plots_data::{PlotError, RunInfo, TimelineIn};
use super::plots_timeline::{Timeline, Zone};
use super::summary::SummaryRow;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::{Path, PathBuf};

/// One panel of the comparison bars: a title and a value per strategy.
struct Panel<'a> {
    title: &'a str,
    /// The summary.csv column, to find the panel's p5–p95 band.
    column: &'static str,
    values: Vec<f64>,
    /// Bars start at zero (false: the axis starts near the smallest value, said in the title).
    from_zero: bool,
    empty_note: &'static str,
}

/// Plot 2: energy, time, CO2, cost and estimated loss per strategy.
struct Comparison<'a> {
    /// Rows of summary.csv.
    rows: &'a [SummaryRow],
    /// Title of the cost panel, naming the currency when the run recorded one.
    cost_title: String,
    /// The Monte Carlo's bands (uncertainty.csv), drawn as p5–p95 whiskers, when the folder has them.
    bands: Option<&'a BandsIn>,
}

impl Figure for Comparison<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), DrawErr> {
        let title = match self.bands {
            Some(b) => format!(
                "Strategies compared (whiskers: p5–p95 over {} samples)",
                b.samples()
            ),
            None => "Strategies compared".to_string(),
        };
        let root = root.titled(&title, font(26))?;
        let rows = self.rows;
        let col = |f: fn(&SummaryRow) -> f64| rows.iter().map(f).collect::<Vec<f64>>();
        let panels = [
            Panel {
                title: "facility energy [kWh]",
                column: "energy_facility_kwh",
                values: col(|r| r.energy_facility_kwh),
                from_zero: true,
                empty_note: "n/a",
            },
            Panel {
                title: "wall-clock time [h]",
                column: "wall_clock_h",
                values: col(|r| r.wall_clock_h),
                from_zero: true,
                empty_note: "n/a",
            },
            Panel {
                title: "emissions [kg CO2e]",
                column: "co2_kg",
                values: col(|r| r.co2_kg),
                from_zero: true,
                empty_note: "n/a",
            },
            Panel {
                title: &self.cost_title,
                column: "cost",
                values: col(|r| if r.cost > 0.0 { r.cost } else { f64::NAN }),
                from_zero: true,
                empty_note: "no price in the scenario",
            },
            Panel {
                title: "estimated loss (axis not from 0)",
                column: "estimated_loss",
                values: col(|r| r.estimated_loss),
                from_zero: false,
                empty_note: "no loss estimate",
            },
        ];
        let names: Vec<String> = rows.iter().map(|r| r.strategy.clone()).collect();
        let n = names.len().max(1) as i32;
        let areas = root.split_evenly((1, panels.len()));
        for (area, p) in areas.iter().zip(panels.iter()) {
            // The band's ends count in the axis range, so a whisker is never clipped.
            let band = |name: &str| self.bands.and_then(|b| b.get(name, p.column));
            let finite = with_band_ends(&p.values, &names, band);
            let (lo, hi) = if finite.is_empty() {
                (0.0, 1.0)
            } else {
                let mx = finite.iter().cloned().fold(f64::MIN, f64::max);
                let mn = finite.iter().cloned().fold(f64::MAX, f64::min);
                if p.from_zero {
                    (0.0, (mx * 1.15).max(1e-9))
                } else {
                    let span = (mx - mn).max(mx.abs() * 0.01).max(1e-9);
                    (mn - span * 0.6, mx + span * 0.4)
                }
            };
            let mut chart = ChartBuilder::on(area)
                .caption(p.title, font(18))
                .margin(10)
                .x_label_area_size(30)
                .y_label_area_size(60)
                .build_cartesian_2d(bar_range(n).into_segmented(), lo..hi)?;
            chart
                .configure_mesh()
                .disable_x_mesh()
                .x_labels(names.len())
                .x_label_formatter(&|v| segment_label(&names, v))
                .y_label_formatter(&|v| tick_in(v, hi - lo))
                .light_line_style(TRANSPARENT)
                .label_style(font(14))
                .draw()?;
            if finite.is_empty() {
                chart.draw_series(std::iter::once(Text::new(
                    p.empty_note.to_string(),
                    (SegmentValue::CenterOf(n / 2), (lo + hi) / 2.0),
                    font(16).pos(Pos::new(HPos::Center, VPos::Center)),
                )))?;
                continue;
            }
            for (i, (&v, name)) in p.values.iter().zip(names.iter()).enumerate() {
                if !v.is_finite() {
                    continue;
                }
                let c = strategy_color(name, i);
                let i = i as i32;
                let mut bar = Rectangle::new(
                    [
                        (SegmentValue::Exact(i), lo),
                        (SegmentValue::Exact(i + 1), v),
                    ],
                    c.filled(),
                );
                bar.set_margin(0, 0, 12, 12);
                chart.draw_series(std::iter::once(bar))?;
                if let Some(b) = band(name) {
                    // (backend_coord is absolute; the panel draws relative to its own origin.)
                    let (ox, oy) = area.get_base_pixel();
                    let px = |y: f64| chart.backend_coord(&(SegmentValue::CenterOf(i), y));
                    let ((x, y5), (_, y95)) = (px(b.p5), px(b.p95));
                    whisker(area, x - ox, y5 - oy, y95 - oy)?;
                }
                // The value sits above the bar, or above its whisker when there is one.
                let top = band(name).map_or(v, |b| v.max(b.p95));
                chart.draw_series(std::iter::once(Text::new(
                    short_num(v),
                    (SegmentValue::CenterOf(i), top),
                    font(14).pos(Pos::new(HPos::Center, VPos::Bottom)),
                )))?;
            }
        }
        Ok(())
    }
}

/// Plot 3: facility energy per strategy split into GPU busy, GPU waiting, node overhead, network, cooling.
struct Breakdown<'a> {
    /// Rows of summary.csv.
    rows: &'a [SummaryRow],
}

/// The parts of the energy breakdown: label, colour, and how to take it from a summary row [kWh].
type Part = (&'static str, RGBColor, fn(&SummaryRow) -> f64);

const PARTS: [Part; 5] = [
    ("GPU busy", RGBColor(31, 119, 180), |r| {
        (r.energy_gpu_kwh - r.energy_waiting_kwh).max(0.0)
    }),
    (
        "GPU waiting (bubbles, stragglers, comm.)",
        RGBColor(174, 199, 232),
        |r| r.energy_waiting_kwh,
    ),
    (
        "node overhead (CPU, DRAM, NIC, fans)",
        RGBColor(255, 127, 14),
        |r| r.energy_node_kwh,
    ),
    ("network switches", RGBColor(148, 103, 189), |r| {
        r.energy_network_kwh
    }),
    ("cooling and facility (PUE)", RGBColor(127, 127, 127), |r| {
        r.energy_cooling_kwh
    }),
];

impl Figure for Breakdown<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), DrawErr> {
        let rows = self.rows;
        let entries: Vec<Entry> = PARTS
            .iter()
            .map(|(label, c, _)| (Mark::Box(c.to_rgba()), label.to_string()))
            .collect();
        let root = &with_legend_below(root, &entries, 14)?;
        let n = rows.len().max(1) as i32;
        let x_max = rows
            .iter()
            .map(|r| PARTS.iter().map(|p| (p.2)(r)).sum::<f64>())
            .fold(0.0, f64::max)
            .max(1e-9)
            * 1.15;
        let names: Vec<String> = rows.iter().map(|r| r.strategy.clone()).collect();
        let mut chart = ChartBuilder::on(root)
            .caption("Where the facility energy goes", font(26))
            .margin(16)
            .x_label_area_size(50)
            .y_label_area_size(100)
            .build_cartesian_2d(0.0..x_max, (0..n - 1).into_segmented())?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(names.len())
            .y_label_formatter(&|v| segment_label(&names, v))
            .x_desc("facility energy [kWh]")
            .x_label_formatter(&tick)
            .light_line_style(TRANSPARENT)
            .label_style(font(16))
            .axis_desc_style(font(18))
            .draw()?;
        for (k, (_, color, f)) in PARTS.iter().enumerate() {
            let color = *color;
            let mut rects = Vec::new();
            let mut texts = Vec::new();
            for (i, r) in rows.iter().enumerate() {
                let x0: f64 = PARTS[..k].iter().map(|p| (p.2)(r)).sum();
                let v = f(r);
                let total: f64 = PARTS.iter().map(|p| (p.2)(r)).sum();
                let i = i as i32;
                let mut rect = Rectangle::new(
                    [
                        (x0, SegmentValue::Exact(i)),
                        (x0 + v, SegmentValue::Exact(i + 1)),
                    ],
                    color.filled(),
                );
                rect.set_margin(14, 14, 0, 0);
                rects.push(rect);
                if total > 0.0 && v / total >= 0.07 {
                    texts.push(Text::new(
                        format!("{:.0} %", 100.0 * v / total),
                        (x0 + v / 2.0, SegmentValue::CenterOf(i)),
                        font(14)
                            .color(if k == 1 { &BLACK } else { &WHITE })
                            .pos(Pos::new(HPos::Center, VPos::Center)),
                    ));
                }
                if k == PARTS.len() - 1 {
                    texts.push(Text::new(
                        format!("{} kWh", short_num(total)),
                        (total + x_max * 0.01, SegmentValue::CenterOf(i)),
                        font(15).pos(Pos::new(HPos::Left, VPos::Center)),
                    ));
                }
            }
            chart.draw_series(rects)?;
            chart.draw_series(texts)?;
        }
        Ok(())
    }
}

/// The cost axis title: `cost [EUR]` when the run recorded its currency, else a plain "currency units".
pub(crate) fn cost_title(currency: Option<&str>) -> String {
    match currency.map(str::trim).filter(|c| !c.is_empty()) {
        Some(c) => format!("electricity cost [{c}]"),
        None => "electricity cost [currency units]".into(),
    }
}

/// Draw the plots of one run into `dir` (PNG and SVG each): the timeline (when `timeline` has rows),
/// the comparison bars and the energy breakdown; returns the paths written. `info` (run_info.json)
/// gives the time zone of the time axis and the currency of the cost axis, when present.
pub(crate) fn plot_run(
    dir: &Path,
    summary: &[SummaryRow],
    timeline: &[TimelineIn],
    info: Option<&RunInfo>,
) -> Result<Vec<PathBuf>, PlotError> {
    let mut written = Vec::new();
    let bands = super::plots_bands::read_bands(dir)?;
    if !timeline.is_empty() {
        let zone = Zone::of(info.and_then(|i| i.time_zone.as_deref()), timeline);
        written.extend(render(
            dir,
            "timeline",
            (1280, 680),
            &Timeline {
                rows: timeline,
                zone,
                bands: bands.as_ref(),
            },
        )?);
    }
    written.extend(render(
        dir,
        "comparison",
        (1500, 520),
        &Comparison {
            rows: summary,
            cost_title: cost_title(info.and_then(|i| i.currency.as_deref())),
            bands: bands.as_ref(),
        },
    )?);
    let size = (1280, 200 + 90 * summary.len().max(1) as u32);
    written.extend(render(
        dir,
        "energy_breakdown",
        size,
        &Breakdown { rows: summary },
    )?);
    Ok(written)
}
