//! Comparison plots (PNG and SVG) of one output folder: power timeline vs carbon intensity, comparison bars, energy breakdown.

use super::draw::{
    bar_range, first_seen, font, render, segment_label, short_num, strategy_color, tick, tick_in,
    with_legend_below, DrawErr, Entry, Figure, Mark,
};
use super::plots_bands::{
    band_legend, timeline_band_max_kw, timeline_band_rects, whisker, with_band_ends, BandsIn,
};
use super::plots_data::{PlotError, RunInfo, TimelineIn};
use super::summary::SummaryRow;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The time zone the timeline's axis is labelled in: the grid's (from run_info.json), or a fixed
/// offset worked out from timeline.csv's `local_hour` column, or UTC.
pub(crate) enum Zone {
    /// A named zone (daylight saving applied at each tick).
    Named(chrono_tz::Tz),
    /// A fixed offset east of UTC [s].
    Fixed(i32),
}

impl Zone {
    /// The zone for a folder: run_info's `time_zone` if it names a zone, else the offset between the
    /// first row's UTC hour and its local hour (taken in −12..+11 h), else UTC.
    pub(crate) fn of(time_zone: Option<&str>, rows: &[TimelineIn]) -> Zone {
        if let Some(tz) = time_zone.and_then(|z| z.parse::<chrono_tz::Tz>().ok()) {
            return Zone::Named(tz);
        }
        let off_h = rows.iter().find_map(|r| {
            let utc_h = r.start_utc_s.div_euclid(3600).rem_euclid(24) as i32;
            r.local_hour
                .map(|lh| (lh as i32 - utc_h + 36).rem_euclid(24) - 12)
        });
        Zone::Fixed(off_h.unwrap_or(0) * 3600)
    }

    /// Local date and time of the instant `t` [s since the Unix epoch].
    fn local(&self, t: i64) -> chrono::NaiveDateTime {
        let utc = chrono::DateTime::from_timestamp(t, 0).unwrap_or_default();
        match self {
            Zone::Named(tz) => utc.with_timezone(tz).naive_local(),
            Zone::Fixed(off) => utc.naive_utc() + chrono::Duration::seconds(*off as i64),
        }
    }

    /// The zone's name for the axis label.
    fn name(&self) -> String {
        match self {
            Zone::Named(tz) => tz.name().to_string(),
            Zone::Fixed(0) => "UTC".into(),
            Zone::Fixed(off) => format!("UTC{:+}", *off as f64 / 3600.0),
        }
    }
}

/// Axis ticks for a span of `t0..t1` [s, UTC] at whole local hours every `step` hours (a step of a
/// day or more ticks local midnights): the tick instants.
fn local_ticks(zone: &Zone, t0: i64, t1: i64) -> Vec<i64> {
    const STEPS_H: [i64; 11] = [1, 2, 3, 6, 12, 24, 48, 96, 168, 336, 720];
    let span_h = ((t1 - t0) as f64 / 3600.0).max(1.0);
    let step = STEPS_H
        .iter()
        .copied()
        .find(|s| span_h / *s as f64 <= 10.0)
        .unwrap_or(720);
    use chrono::{Datelike, Timelike};
    let mut out = Vec::new();
    // Quarter-hour probes find whole local hours in zones with half-hour offsets too.
    let mut t = t0.div_euclid(900) * 900;
    while t <= t1 {
        let l = zone.local(t);
        let on_hour = l.minute() == 0 && l.second() == 0;
        let hit = if step < 24 {
            on_hour && l.hour() as i64 % step == 0
        } else {
            on_hour && l.hour() == 0 && l.num_days_from_ce() as i64 % (step / 24) == 0
        };
        if hit && t >= t0 {
            out.push(t);
        }
        t += 900;
    }
    out
}

/// Plot 1: facility power of each strategy over time against the grid's carbon intensity.
struct Timeline<'a> {
    /// Rows of timeline.csv.
    rows: &'a [TimelineIn],
    /// The zone the time axis is labelled in.
    zone: Zone,
    /// The Monte Carlo's bands (uncertainty_timeline.csv), when the folder has them.
    bands: Option<&'a BandsIn>,
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
            .max(timeline_band_max_kw(self.bands))
            .max(1e-3);
        let mut ci: BTreeMap<i64, f64> = BTreeMap::new();
        for r in rows {
            if r.ci_g_per_kwh.is_finite() {
                ci.insert(r.start_utc_s, r.ci_g_per_kwh);
            }
        }
        let ci_max = ci.values().cloned().fold(0.0, f64::max).max(1.0);

        // Legend entries, in drawing order, for the strip below the chart.
        let shades = [
            ("throttled", RGBColor(255, 190, 0).mix(0.22)),
            ("paused", RGBColor(90, 90, 90).mix(0.22)),
        ];
        let grey = RGBColor(60, 60, 60);
        let mut entries: Vec<Entry> = Vec::new();
        for (i, s) in strategies.iter().enumerate() {
            entries.push((Mark::Line(strategy_color(s, i).to_rgba(), 3), s.clone()));
        }
        entries.push((
            Mark::Line(grey.to_rgba(), 2),
            "grid carbon intensity (right axis)".into(),
        ));
        for (mode, color) in shades {
            for s in &strategies {
                if rows.iter().any(|r| &r.strategy == s && r.mode == mode) {
                    entries.push((Mark::Box(color), format!("{s} {mode}")));
                }
            }
        }
        entries.extend(band_legend(self.bands, &strategies));
        let area = with_legend_below(root, &entries, 15)?;

        let t_end = t0 + (x_max * 86400.0) as i64;
        let ticks: Vec<f64> = local_ticks(&self.zone, t0, t_end)
            .into_iter()
            .map(day)
            .collect();
        let zone = &self.zone;
        let label = |x: &f64| {
            let l = zone.local(t0 + (x * 86400.0).round() as i64);
            use chrono::Timelike;
            if l.hour() == 0 && l.minute() == 0 {
                l.format("%a %d %b").to_string()
            } else {
                l.format("%H:%M").to_string()
            }
        };
        let mut chart = ChartBuilder::on(&area)
            .caption(
                "Facility power of each strategy and grid carbon intensity",
                font(26),
            )
            .margin(16)
            .x_label_area_size(50)
            .y_label_area_size(80)
            .right_y_label_area_size(80)
            .build_cartesian_2d(0.0..x_max, 0.0..p_max_kw * 1.08)?
            .set_secondary_coord(0.0..x_max, 0.0..ci_max * 1.08);
        chart
            .configure_mesh()
            .x_desc(format!(
                "local time ({}): dates at midnight, hours between",
                zone.name()
            ))
            .y_desc("facility power [kW]")
            // Ticks at whole local hours are drawn below (plotters would put them at round days).
            .x_labels(0)
            .disable_x_mesh()
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
        let y_top = p_max_kw * 1.08;
        for (mode, color) in shades {
            for s in &strategies {
                let spans = rows
                    .iter()
                    .filter(|r| &r.strategy == s && r.mode == mode)
                    .map(|r| {
                        let a = day(r.start_utc_s);
                        let b = end(r).max(day(r.start_utc_s + interval_s)).min(x_max);
                        Rectangle::new([(a, 0.0), (b, y_top)], color.filled())
                    });
                chart.draw_series(spans)?;
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
        chart.draw_secondary_series(LineSeries::new(ci_pts, grey.stroke_width(1)))?;

        // The Monte Carlo's p5–p95 band of each strategy's power, under its line.
        if let Some(b) = self.bands {
            for (i, s) in strategies.iter().enumerate() {
                chart.draw_series(timeline_band_rects(
                    b,
                    s,
                    day,
                    interval_s as f64 / 86400.0,
                    x_max,
                    strategy_color(s, i),
                ))?;
            }
        }

        for (i, s) in strategies.iter().enumerate() {
            let c = strategy_color(s, i);
            let mut pts = Vec::new();
            for r in rows.iter().filter(|r| &r.strategy == s && active(r)) {
                let p = r.avg_facility_power_w / 1e3;
                pts.push((day(r.start_utc_s), p));
                pts.push((end(r), p));
            }
            chart.draw_series(LineSeries::new(pts, c.stroke_width(2)))?;
        }

        // The local-time axis: a line and a label at each tick, midnights darker.
        use chrono::Timelike;
        for &x in &ticks {
            let midnight = {
                let l = zone.local(t0 + (x * 86400.0).round() as i64);
                l.hour() == 0 && l.minute() == 0
            };
            let c = if midnight {
                BLACK.mix(0.35)
            } else {
                BLACK.mix(0.12)
            };
            chart.draw_series(std::iter::once(PathElement::new(
                vec![(x, 0.0), (x, y_top)],
                c.stroke_width(1),
            )))?;
            let (px, py) = chart.backend_coord(&(x, 0.0));
            area.draw(&PathElement::new(
                vec![(px, py), (px, py + 5)],
                BLACK.stroke_width(1),
            ))?;
            area.draw(&Text::new(
                label(&x),
                (px, py + 8),
                font(15).pos(Pos::new(HPos::Center, VPos::Top)),
            ))?;
        }
        Ok(())
    }
}

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
