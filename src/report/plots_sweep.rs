//! Sweep plots from sweep.csv: CO2 vs wall-clock time with the Pareto front, and a CO2 heatmap over two swept parameters.

use super::draw::{
    colour_bar, first_seen, font, render, segment_label, short_num, strategy_color, tick, viridis,
    with_legend_below, DrawErr, Entry, Figure, Mark,
};
use super::plots_data::{PlotError, SweepIn, SweepRow};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Above this many rows only the points on the Pareto front are labelled.
const LABEL_ALL_MAX: usize = 30;

/// Indices of the rows no other row beats on both wall-clock time and CO2 (lower is better), sorted by time.
pub(crate) fn pareto_front(rows: &[SweepRow]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..rows.len())
        .filter(|&i| rows[i].wall_clock_h.is_finite() && rows[i].co2_kg.is_finite())
        .collect();
    idx.sort_by(|&a, &b| {
        rows[a]
            .wall_clock_h
            .total_cmp(&rows[b].wall_clock_h)
            .then(rows[a].co2_kg.total_cmp(&rows[b].co2_kg))
            .then(a.cmp(&b))
    });
    let mut front = Vec::new();
    let mut best = f64::INFINITY;
    for i in idx {
        if rows[i].co2_kg < best {
            best = rows[i].co2_kg;
            front.push(i);
        }
    }
    front
}

/// Short label of a sweep row: `p<point> name=value ...` with the last segment of each dotted path.
fn label(s: &SweepIn, r: &SweepRow) -> String {
    let mut out = format!("p{}", r.point);
    for (p, v) in s.params.iter().zip(&r.values) {
        let short = p.rsplit('.').next().unwrap_or(p);
        out.push_str(&format!(" {short}={v}"));
    }
    out
}

struct Pareto<'a> {
    s: &'a SweepIn,
}

impl Figure for Pareto<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), DrawErr> {
        let (root, key) = root.split_horizontally(1000);
        let rows = &self.s.rows;
        let strategies = first_seen(rows.iter().map(|r| r.strategy.as_str()));
        let red = RGBColor(200, 30, 30);
        let mut entries: Vec<Entry> = vec![(
            Mark::Line(red.to_rgba(), 3),
            "Pareto front (less time and less CO2)".into(),
        )];
        for (k, s) in strategies.iter().enumerate() {
            entries.push((Mark::Dot(strategy_color(s, k).to_rgba()), s.clone()));
        }
        let root = with_legend_below(&root, &entries, 14)?;
        let fin = |f: fn(&SweepRow) -> f64| {
            rows.iter()
                .map(f)
                .filter(|v| v.is_finite())
                .fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(v), b.max(v)))
        };
        let (x0, x1) = fin(|r| r.wall_clock_h);
        let (y0, y1) = fin(|r| r.co2_kg);
        let pad = |a: f64, b: f64| {
            let span = (b - a).max(b.abs() * 0.05).max(1e-9);
            ((a - span * 0.1).max(0.0), b + span * 0.25)
        };
        let (x0, x1) = pad(x0.min(x1), x1.max(x0));
        let (y0, y1) = pad(y0.min(y1), y1.max(y0));
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!("Sweep: emissions vs wall-clock time ({} rows)", rows.len()),
                font(24),
            )
            .margin(16)
            .x_label_area_size(50)
            .y_label_area_size(80)
            .build_cartesian_2d(x0..x1, y0..y1)?;
        chart
            .configure_mesh()
            .x_desc("wall-clock time [h]")
            .y_desc("emissions [kg CO2e]")
            .light_line_style(TRANSPARENT)
            .x_label_formatter(&tick)
            .y_label_formatter(&tick)
            .label_style(font(15))
            .axis_desc_style(font(17))
            .draw()?;
        let front = pareto_front(rows);
        chart.draw_series(LineSeries::new(
            front
                .iter()
                .map(|&i| (rows[i].wall_clock_h, rows[i].co2_kg)),
            red.stroke_width(2),
        ))?;
        for (k, s) in strategies.iter().enumerate() {
            let c = strategy_color(s, k);
            chart.draw_series(
                rows.iter()
                    .filter(|r| r.strategy == *s)
                    .filter(|r| r.wall_clock_h.is_finite() && r.co2_kg.is_finite())
                    .map(|r| Circle::new((r.wall_clock_h, r.co2_kg), 6, c.filled())),
            )?;
        }
        let all = rows.len() <= LABEL_ALL_MAX;
        let labelled = rows
            .iter()
            .enumerate()
            .filter(|(i, r)| {
                (all || front.contains(i)) && r.wall_clock_h.is_finite() && r.co2_kg.is_finite()
            })
            .map(|(_, r)| {
                Text::new(
                    format!("p{}", r.point),
                    (r.wall_clock_h, r.co2_kg),
                    font(13).pos(Pos::new(HPos::Left, VPos::Bottom)),
                )
            });
        chart.draw_series(labelled)?;
        // The key: each labelled point's parameter values.
        let mut points: Vec<&SweepRow> = Vec::new();
        for (i, r) in rows.iter().enumerate() {
            if (all || front.contains(&i)) && !points.iter().any(|p| p.point == r.point) {
                points.push(r);
            }
        }
        points.sort_by_key(|r| r.point);
        key.draw(&Text::new(
            if all {
                "points"
            } else {
                "points on the Pareto front"
            },
            (10, 50),
            font(16),
        ))?;
        let line_h = 20;
        let max_lines = ((720 - 80) / line_h) as usize;
        for (k, r) in points.iter().take(max_lines).enumerate() {
            key.draw(&Text::new(
                label(self.s, r),
                (10, 78 + line_h * k as i32),
                font(13),
            ))?;
        }
        if points.len() > max_lines {
            key.draw(&Text::new(
                format!("… and {} more (see sweep.csv)", points.len() - max_lines),
                (10, 78 + line_h * max_lines as i32),
                font(13),
            ))?;
        }
        Ok(())
    }
}

/// Distinct values of a column, numeric order when every value is a number, text order otherwise.
fn categories(rows: &[SweepRow], col: usize) -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    for r in rows {
        if let Some(x) = r.values.get(col) {
            if !v.contains(x) {
                v.push(x.clone());
            }
        }
    }
    if v.iter().all(|x| x.trim().parse::<f64>().is_ok()) {
        v.sort_by(|a, b| {
            let fa = a.trim().parse::<f64>().unwrap_or(0.0);
            let fb = b.trim().parse::<f64>().unwrap_or(0.0);
            fa.total_cmp(&fb)
        });
    } else {
        v.sort();
    }
    v
}

struct Heat<'a> {
    s: &'a SweepIn,
}

impl Figure for Heat<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), DrawErr> {
        let s = self.s;
        let (px, py) = (&s.params[0], &s.params[1]);
        let root = root.titled(
            "Sweep: emissions [kg CO2e] (mean over any other swept parameters)",
            font(20),
        )?;
        let xs = categories(&s.rows, 0);
        let ys = categories(&s.rows, 1);
        let strategies = first_seen(s.rows.iter().map(|r| r.strategy.as_str()));
        // Mean CO2 per (strategy, x, y).
        let mut cells: BTreeMap<(usize, usize, usize), (f64, u32)> = BTreeMap::new();
        for r in &s.rows {
            let (Some(k), Some(i), Some(j)) = (
                strategies.iter().position(|x| x == &r.strategy),
                r.values
                    .first()
                    .and_then(|v| xs.iter().position(|x| x == v)),
                r.values.get(1).and_then(|v| ys.iter().position(|x| x == v)),
            ) else {
                continue;
            };
            if r.co2_kg.is_finite() {
                let e = cells.entry((k, i, j)).or_insert((0.0, 0));
                e.0 += r.co2_kg;
                e.1 += 1;
            }
        }
        let means: BTreeMap<(usize, usize, usize), f64> = cells
            .iter()
            .map(|(k, (s, n))| (*k, s / *n as f64))
            .collect();
        let lo = means.values().cloned().fold(f64::MAX, f64::min);
        let hi = means.values().cloned().fold(f64::MIN, f64::max);
        let span = (hi - lo).max(1e-12);
        let nx = xs.len().max(1) as i32;
        let ny = ys.len().max(1) as i32;
        // Tick labels without the prefix all values share (e.g. the date of start times), so they fit.
        let (xs_l, ys_l) = (strip_common_prefix(&xs), strip_common_prefix(&ys));
        let y_area = ys_l.iter().map(|l| l.chars().count()).max().unwrap_or(4) as u32 * 8 + 40;
        let (w, _) = root.dim_in_pixel();
        let (panels, bar) = root.split_horizontally(w.saturating_sub(150));
        // Low emissions bright (yellow), high dark: the bar runs the same way.
        colour_bar(
            &bar,
            lo,
            lo + span,
            5,
            "emissions [kg CO2e]",
            &|v| short_num(*v),
            true,
        )?;
        let areas = panels.split_evenly((1, strategies.len().max(1)));
        for (k, (area, name)) in areas.iter().zip(&strategies).enumerate() {
            let mut chart = ChartBuilder::on(area)
                .caption(name, font(18))
                .margin(12)
                .x_label_area_size(50)
                .y_label_area_size(y_area)
                .build_cartesian_2d((0..nx - 1).into_segmented(), (0..ny - 1).into_segmented())?;
            chart
                .configure_mesh()
                .disable_mesh()
                .x_labels(xs.len())
                .y_labels(ys.len())
                .x_label_formatter(&|v| segment_label(&xs_l, v))
                .y_label_formatter(&|v| segment_label(&ys_l, v))
                .x_desc(px.as_str())
                .y_desc(py.as_str())
                .label_style(font(14))
                .axis_desc_style(font(15))
                .draw()?;
            for ((kk, i, j), v) in means.iter() {
                if *kk != k {
                    continue;
                }
                let (i, j) = (*i as i32, *j as i32);
                // Low emissions bright (yellow), high dark.
                let t = 1.0 - (v - lo) / span;
                chart.draw_series(std::iter::once(Rectangle::new(
                    [
                        (SegmentValue::Exact(i), SegmentValue::Exact(j)),
                        (SegmentValue::Exact(i + 1), SegmentValue::Exact(j + 1)),
                    ],
                    viridis(t).filled(),
                )))?;
                chart.draw_series(std::iter::once(Text::new(
                    short_num(*v),
                    (SegmentValue::CenterOf(i), SegmentValue::CenterOf(j)),
                    font(14)
                        .color(if t > 0.55 { &BLACK } else { &WHITE })
                        .pos(Pos::new(HPos::Center, VPos::Center)),
                )))?;
            }
        }
        Ok(())
    }
}

/// Draw the sweep plots (PNG and SVG) into `dir`: always the Pareto plot, and the heatmap when at
/// least two parameters were swept.
pub fn plot_sweep(dir: &Path, s: &SweepIn) -> Result<Vec<PathBuf>, PlotError> {
    let mut out = render(dir, "sweep_pareto", (1400, 720), &Pareto { s })?;
    if s.params.len() >= 2 {
        let strategies = first_seen(s.rows.iter().map(|r| r.strategy.as_str())).len();
        let size = ((460 * strategies.max(1) as u32).max(1000) + 150, 540);
        out.extend(render(dir, "sweep_heatmap", size, &Heat { s })?);
    }
    Ok(out)
}

/// Labels without the longest prefix they all share (cut at a separator), when that leaves them distinct.
fn strip_common_prefix(labels: &[String]) -> Vec<String> {
    if labels.len() < 2 {
        return labels.to_vec();
    }
    let first = &labels[0];
    let mut n = first.len();
    for l in &labels[1..] {
        n = n.min(
            first
                .bytes()
                .zip(l.bytes())
                .take_while(|(a, b)| a == b)
                .count(),
        );
    }
    // Back off to just after a separator so a number is not cut in half.
    while n > 0 && !first.is_char_boundary(n) {
        n -= 1;
    }
    let cut = first[..n]
        .rfind(['T', ' ', '-', '_', ':', '/'])
        .map_or(0, |i| i + 1);
    labels.iter().map(|l| l[cut..].to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(point: u64, h: f64, co2: f64) -> SweepRow {
        SweepRow {
            point,
            strategy: "moe".into(),
            wall_clock_h: h,
            co2_kg: co2,
            energy_facility_kwh: 0.0,
            values: vec![],
        }
    }

    #[test]
    fn pareto_front_drops_dominated_points() {
        let rows = vec![
            row(0, 10.0, 100.0),
            row(1, 12.0, 80.0),
            row(2, 11.0, 120.0), // dominated by point 0
            row(3, 20.0, 80.0),  // dominated by point 1 (same CO2, more time)
            row(4, 30.0, 50.0),
        ];
        assert_eq!(pareto_front(&rows), vec![0, 1, 4]);
    }

    #[test]
    fn numeric_categories_sort_as_numbers() {
        let mut a = row(0, 1.0, 1.0);
        a.values = vec!["16".into()];
        let mut b = row(1, 1.0, 1.0);
        b.values = vec!["8".into()];
        assert_eq!(categories(&[a, b], 0), vec!["8", "16"]);
    }
}
