//! Plot 1 of a folder: facility power of each strategy over time against the grid's carbon intensity, its time axis in the grid's local zone.

use super::draw::{
    first_seen, font, strategy_color, tick, with_legend_below, DrawErr, Entry, Figure, Mark,
};
use super::plots_bands::{band_legend, timeline_band_max_kw, timeline_band_rects, BandsIn};
use super::plots_data::TimelineIn;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::collections::BTreeMap;

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
pub(super) struct Timeline<'a> {
    /// Rows of timeline.csv.
    pub(super) rows: &'a [TimelineIn],
    /// The zone the time axis is labelled in.
    pub(super) zone: Zone,
    /// The Monte Carlo's bands (uncertainty_timeline.csv), when the folder has them.
    pub(super) bands: Option<&'a BandsIn>,
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
