//! The schedules over training as a plot: each scheduled knob (top-k, capacity factor, active
//! experts, batch share) against training progress, from run_info.json's breakpoints.

use super::draw::{font, render, short_num, strategy_color, tick, DrawErr, Figure};
use super::plots_data::PlotError;
use crate::io::WriteError;
use crate::sim::ScheduleCurve;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::{Path, PathBuf};

/// One line: the strategies that share it ("moe, circadian") and the curve.
type Line = (String, ScheduleCurve);

struct Schedules {
    /// Per knob, in first-seen order: its lines.
    panels: Vec<Vec<Line>>,
}

/// The points a curve draws from progress 0 to `end`: a staircase for steps, straight segments
/// for linear, the last value held to `end`.
fn path(c: &ScheduleCurve, end: f64) -> Vec<(f64, f64)> {
    let mut out = Vec::new();
    for (i, &(x, v)) in c.points.iter().enumerate() {
        if i > 0 && !c.linear {
            out.push((x, c.points[i - 1].1));
        }
        out.push((x, v));
    }
    if let Some(&(x, v)) = c.points.last() {
        out.push((end.max(x), v));
    }
    out
}

/// Where a panel's axis ends: 1 for a fraction of progress, 25 % past the last breakpoint for tokens.
fn axis_end(lines: &[Line]) -> f64 {
    lines
        .iter()
        .map(|(_, c)| {
            if c.tokens_axis {
                c.points.last().map_or(1.0, |p| p.0 * 1.25)
            } else {
                1.0
            }
        })
        .fold(0.0, f64::max)
        .max(f64::MIN_POSITIVE)
}

impl Figure for Schedules {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), DrawErr> {
        let areas = root.split_evenly((self.panels.len(), 1));
        for (lines, area) in self.panels.iter().zip(areas.iter()) {
            let Some((_, first)) = lines.first() else {
                continue;
            };
            let end = axis_end(lines);
            let hi = lines
                .iter()
                .flat_map(|(_, c)| c.points.iter().map(|p| p.1))
                .fold(0.0, f64::max);
            let hi = if hi > 0.0 { hi * 1.15 } else { 1.0 };
            let x_desc = if first.tokens_axis {
                "tokens trained"
            } else {
                "fraction of training progress"
            };
            let mut chart = ChartBuilder::on(area)
                .caption(format!("{} over training", first.knob), font(16))
                .margin(10)
                .x_label_area_size(32)
                .y_label_area_size(60)
                .build_cartesian_2d(0.0..end, 0.0..hi)?;
            chart
                .configure_mesh()
                .x_desc(x_desc)
                .y_desc(first.knob.as_str())
                .x_label_formatter(&|v| {
                    if first.tokens_axis {
                        short_num(*v)
                    } else {
                        tick(v)
                    }
                })
                .y_label_formatter(&tick)
                .label_style(font(12))
                .draw()?;
            for (k, (names, c)) in lines.iter().enumerate() {
                let colour = strategy_color(names, k);
                chart
                    .draw_series(LineSeries::new(path(c, end), colour.stroke_width(2)))?
                    .label(names.as_str())
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], colour));
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::LowerRight)
                .label_font(font(12))
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()?;
        }
        Ok(())
    }
}

/// Group `curves` by knob (first-seen order); strategies with the same curve share one line.
fn panels(curves: &[(String, ScheduleCurve)]) -> Vec<Vec<Line>> {
    let mut out: Vec<Vec<Line>> = Vec::new();
    for (strategy, c) in curves {
        let panel = match out.iter().position(|p| p[0].1.knob == c.knob) {
            Some(i) => &mut out[i],
            None => {
                out.push(Vec::new());
                let n = out.len() - 1;
                &mut out[n]
            }
        };
        match panel.iter_mut().find(|(_, d)| d == c) {
            Some((names, _)) => {
                names.push_str(", ");
                names.push_str(strategy);
            }
            None => panel.push((strategy.clone(), c.clone())),
        }
    }
    out
}

/// Draw `schedule.png/.svg` into `dir` from the run's schedule curves; with none, draw nothing and
/// remove a plot left by an earlier run in the folder. Returns the paths written.
pub(crate) fn plot_schedule(
    dir: &Path,
    curves: &[(String, ScheduleCurve)],
) -> Result<Vec<PathBuf>, PlotError> {
    let panels = panels(curves);
    if panels.is_empty() {
        for stale in ["schedule.png", "schedule.svg"].map(|f| dir.join(f)) {
            if stale.exists() {
                // A failed removal is a write failure (exit 1), not bad input.
                std::fs::remove_file(&stale).map_err(|e| WriteError::new(&stale, e))?;
            }
        }
        return Ok(Vec::new());
    }
    let h = 240 * panels.len() as u32 + 20;
    render(dir, "schedule", (1000, h), &Schedules { panels })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn curve(knob: &str, linear: bool, points: &[(f64, f64)]) -> ScheduleCurve {
        ScheduleCurve {
            knob: knob.into(),
            tokens_axis: false,
            linear,
            points: points.to_vec(),
        }
    }

    #[test]
    fn steps_draw_a_staircase_and_the_last_value_holds_to_the_end() {
        let c = curve("top-k", false, &[(0.0, 1.0), (0.3, 2.0)]);
        assert_eq!(
            path(&c, 1.0),
            vec![(0.0, 1.0), (0.3, 1.0), (0.3, 2.0), (1.0, 2.0)]
        );
        let l = curve("batch share", true, &[(0.0, 0.25), (0.5, 1.0)]);
        assert_eq!(path(&l, 1.0), vec![(0.0, 0.25), (0.5, 1.0), (1.0, 1.0)]);
    }

    #[test]
    fn strategies_with_one_curve_share_a_line_and_a_run_without_schedules_removes_the_plot() {
        let a = curve("active experts", false, &[(0.0, 4.0), (0.3, 8.0)]);
        let b = curve("capacity factor", false, &[(0.0, 2.0), (0.3, 1.25)]);
        let curves = vec![
            ("moe".to_string(), a.clone()),
            ("moe".to_string(), b.clone()),
            ("circadian".to_string(), a),
            ("circadian".to_string(), b),
        ];
        let p = panels(&curves);
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].len(), 1);
        assert_eq!(p[0][0].0, "moe, circadian");
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(plot_schedule(dir.path(), &curves).unwrap().len(), 2);
        assert!(dir.path().join("schedule.png").exists());
        assert!(plot_schedule(dir.path(), &[]).unwrap().is_empty());
        assert!(!dir.path().join("schedule.png").exists());
    }
}
