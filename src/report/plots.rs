//! Comparison plots (PNG and SVG) of one output folder: power timeline vs carbon intensity, comparison bars, energy breakdown.

use super::draw::{
    first_seen, font, legend, render, segment_label, short_num, strategy_color, tick, DrawErr,
    Figure,
};
use super::plots_data::{PlotError, TimelineIn};
use super::summary::SummaryRow;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Plot 1: facility power of each strategy over time against the grid's carbon intensity.
struct Timeline<'a> {
    /// Rows of timeline.csv.
    rows: &'a [TimelineIn],
}

impl Figure for Timeline<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), DrawErr> {
        let rows = self.rows;
        let t0 = rows.iter().map(|r| r.start_utc_s).min().unwrap_or(0);
        let strategies = first_seen(rows.iter().map(|r| r.strategy.as_str()));
        // Interval length: the smallest step between consecutive stamps of one strategy.
        let mut interval_s = i64::MAX;
        for s in &strategies {
            let mut prev: Option<i64> = None;
            for r in rows.iter().filter(|r| &r.strategy == s) {
                if let Some(p) = prev {
                    if r.start_utc_s > p {
                        interval_s = interval_s.min(r.start_utc_s - p);
                    }
                }
                prev = Some(r.start_utc_s);
            }
        }
        if interval_s == i64::MAX {
            interval_s = 3600;
        }
        let day = |t: i64| (t - t0) as f64 / 86400.0;
        let active = |r: &TimelineIn| r.mode != "done" && r.covered_s > 0.0;
        let end = |r: &TimelineIn| {
            day(r.start_utc_s) + r.covered_s.min(interval_s as f64).max(0.0) / 86400.0
        };
        let x_max = rows
            .iter()
            .filter(|r| active(r))
            .map(end)
            .fold(0.0, f64::max)
            .max(interval_s as f64 / 86400.0);
        let p_max_kw = rows
            .iter()
            .map(|r| r.avg_facility_power_w / 1e3)
            .filter(|p| p.is_finite())
            .fold(0.0, f64::max)
            .max(1e-3);
        let mut ci: BTreeMap<i64, f64> = BTreeMap::new();
        for r in rows {
            if r.ci_g_per_kwh.is_finite() {
                ci.insert(r.start_utc_s, r.ci_g_per_kwh);
            }
        }
        let ci_max = ci.values().cloned().fold(0.0, f64::max).max(1.0);

        let mut chart = ChartBuilder::on(root)
            .caption(
                "Facility power of each strategy and grid carbon intensity",
                font(26),
            )
            .margin(16)
            .x_label_area_size(50)
            .y_label_area_size(80)
            .right_y_label_area_size(80)
            .build_cartesian_2d(0.0..x_max, 0.0..p_max_kw * 1.45)?
            .set_secondary_coord(0.0..x_max, 0.0..ci_max * 1.45);
        chart
            .configure_mesh()
            .x_desc("time since start [days]")
            .y_desc("facility power [kW]")
            .x_label_formatter(&tick)
            .y_label_formatter(&tick)
            .label_style(font(16))
            .axis_desc_style(font(18))
            .light_line_style(TRANSPARENT)
            .draw()?;
        chart
            .configure_secondary_axes()
            .y_desc("grid carbon intensity [gCO2e/kWh]")
            .y_label_formatter(&tick)
            .label_style(font(16))
            .axis_desc_style(font(18))
            .draw()?;

        // Shaded periods: throttled (amber) and paused (grey), per strategy that has them.
        for (mode, color) in [
            ("throttled", RGBColor(255, 190, 0).mix(0.22)),
            ("paused", RGBColor(90, 90, 90).mix(0.22)),
        ] {
            for s in &strategies {
                let spans: Vec<(f64, f64)> = rows
                    .iter()
                    .filter(|r| &r.strategy == s && r.mode == mode)
                    .map(|r| {
                        (
                            day(r.start_utc_s),
                            end(r).max(day(r.start_utc_s + interval_s)),
                        )
                    })
                    .collect();
                if spans.is_empty() {
                    continue;
                }
                let y_top = p_max_kw * 1.45;
                chart
                    .draw_series(
                        spans
                            .iter()
                            .map(|&(a, b)| Rectangle::new([(a, 0.0), (b, y_top)], color.filled())),
                    )?
                    .label(format!("{s} {mode}"))
                    .legend(move |(x, y)| {
                        Rectangle::new([(x, y - 6), (x + 18, y + 6)], color.filled())
                    });
            }
        }

        // Grid carbon intensity as a step line on the right axis.
        let mut ci_pts = Vec::with_capacity(ci.len() * 2);
        for (&t, &v) in &ci {
            let a = day(t);
            if a > x_max {
                break;
            }
            ci_pts.push((a, v));
            ci_pts.push(((a + interval_s as f64 / 86400.0).min(x_max), v));
        }
        let grey = RGBColor(60, 60, 60);
        chart
            .draw_secondary_series(LineSeries::new(ci_pts, grey.stroke_width(1)))?
            .label("grid carbon intensity (right axis)")
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], grey.stroke_width(2))
            });

        for (i, s) in strategies.iter().enumerate() {
            let c = strategy_color(s, i);
            let mut pts = Vec::new();
            for r in rows.iter().filter(|r| &r.strategy == s && active(r)) {
                let p = r.avg_facility_power_w / 1e3;
                pts.push((day(r.start_utc_s), p));
                pts.push((end(r), p));
            }
            chart
                .draw_series(LineSeries::new(pts, c.stroke_width(2)))?
                .label(s.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(3))
                });
        }
        legend(&mut chart, SeriesLabelPosition::UpperRight, 15)?;
        Ok(())
    }
}

/// One panel of the comparison bars: a title and a value per strategy.
struct Panel {
    title: &'static str,
    values: Vec<f64>,
    /// Bars start at zero (false: the axis starts near the smallest value, said in the title).
    from_zero: bool,
    empty_note: &'static str,
}

/// Plot 2: energy, time, CO2, cost and estimated loss per strategy.
struct Comparison<'a> {
    /// Rows of summary.csv.
    rows: &'a [SummaryRow],
}

impl Figure for Comparison<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), DrawErr> {
        let root = root.titled("Strategies compared", font(26))?;
        let rows = self.rows;
        let col = |f: fn(&SummaryRow) -> f64| rows.iter().map(f).collect::<Vec<f64>>();
        let panels = [
            Panel {
                title: "facility energy [kWh]",
                values: col(|r| r.energy_facility_kwh),
                from_zero: true,
                empty_note: "n/a",
            },
            Panel {
                title: "wall-clock time [h]",
                values: col(|r| r.wall_clock_h),
                from_zero: true,
                empty_note: "n/a",
            },
            Panel {
                title: "emissions [kg CO2e]",
                values: col(|r| r.co2_kg),
                from_zero: true,
                empty_note: "n/a",
            },
            Panel {
                title: "electricity cost [currency]",
                values: col(|r| if r.cost > 0.0 { r.cost } else { f64::NAN }),
                from_zero: true,
                empty_note: "no price in the scenario",
            },
            Panel {
                title: "estimated loss (axis not from 0)",
                values: col(|r| r.estimated_loss),
                from_zero: false,
                empty_note: "no loss estimate",
            },
        ];
        let names: Vec<String> = rows.iter().map(|r| r.strategy.clone()).collect();
        let n = names.len().max(1) as i32;
        let areas = root.split_evenly((1, panels.len()));
        for (area, p) in areas.iter().zip(panels.iter()) {
            let finite: Vec<f64> = p.values.iter().cloned().filter(|v| v.is_finite()).collect();
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
                .build_cartesian_2d((0..n - 1).into_segmented(), lo..hi)?;
            chart
                .configure_mesh()
                .disable_x_mesh()
                .x_labels(names.len())
                .x_label_formatter(&|v| segment_label(&names, v))
                .y_label_formatter(&tick)
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
                chart.draw_series(std::iter::once(Text::new(
                    short_num(v),
                    (SegmentValue::CenterOf(i), v),
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
        let n = rows.len().max(1) as i32;
        let x_max = rows
            .iter()
            .map(|r| PARTS.iter().map(|p| (p.2)(r)).sum::<f64>())
            .fold(0.0, f64::max)
            .max(1e-9)
            * 1.32;
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
        for (k, (label, color, f)) in PARTS.iter().enumerate() {
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
            chart
                .draw_series(rects)?
                .label(*label)
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 6), (x + 18, y + 6)], color.filled())
                });
            chart.draw_series(texts)?;
        }
        legend(&mut chart, SeriesLabelPosition::UpperRight, 14)?;
        Ok(())
    }
}

/// Draw the plots of one run into `dir` (PNG and SVG each): the timeline (when `timeline` has rows),
/// the comparison bars and the energy breakdown; returns the paths written.
pub(crate) fn plot_run(
    dir: &Path,
    summary: &[SummaryRow],
    timeline: &[TimelineIn],
) -> Result<Vec<PathBuf>, PlotError> {
    let mut written = Vec::new();
    if !timeline.is_empty() {
        written.extend(render(
            dir,
            "timeline",
            (1280, 640),
            &Timeline { rows: timeline },
        )?);
    }
    written.extend(render(
        dir,
        "comparison",
        (1500, 520),
        &Comparison { rows: summary },
    )?);
    let size = (1280, 160 + 90 * summary.len().max(1) as u32);
    written.extend(render(
        dir,
        "energy_breakdown",
        size,
        &Breakdown { rows: summary },
    )?);
    Ok(written)
}
