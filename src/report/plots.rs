//! Comparison plots (PNG and SVG) of one output folder: power timeline vs carbon intensity, comparison bars, energy breakdown.

use super::plots_data::{need, read_summary, read_sweep, read_timeline, PlotError, TimelineIn};
use super::summary::SummaryRow;
use crate::io::{write_atomic, WriteError};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The font family every plot uses; PNG text is drawn with the embedded DejaVu Sans.
pub(crate) const FONT: &str = "sans-serif";
/// DejaVu Sans (Bitstream Vera licence, `data/fonts/DejaVuSans-LICENSE.txt`), from Debian's fonts-dejavu-core.
static FONT_BYTES: &[u8] = include_bytes!("../../data/fonts/DejaVuSans.ttf");

fn register_font_once() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // An invalid font would surface as a drawing error naming the plot file.
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, FONT_BYTES);
    });
}

/// A drawing failure (from any plotters backend), as text.
#[derive(Debug)]
pub(crate) struct DrawErr(pub String);

impl<E: std::error::Error + Send + Sync> From<DrawingAreaErrorKind<E>> for DrawErr {
    fn from(e: DrawingAreaErrorKind<E>) -> Self {
        DrawErr(e.to_string())
    }
}

/// A plot that can be drawn on any backend (so the same code makes the PNG and the SVG).
pub(crate) trait Figure {
    /// File name without extension.
    fn stem(&self) -> String;
    /// Size [px].
    fn size(&self) -> (u32, u32);
    /// Draw onto `root`.
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), DrawErr>;
}

/// Draw `fig` into `dir/<stem>.png` and `dir/<stem>.svg` (each written to a temporary file and renamed).
pub(crate) fn render<F: Figure>(dir: &Path, fig: &F) -> Result<Vec<PathBuf>, PlotError> {
    register_font_once();
    let stem = fig.stem();
    let svg_path = dir.join(format!("{stem}.svg"));
    let draw_err = |path: &Path, e: DrawErr| PlotError::Draw {
        path: path.to_path_buf(),
        msg: e.0,
    };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, fig.size()).into_drawing_area();
        fig.draw(&root).map_err(|e| draw_err(&svg_path, e))?;
        root.present()
            .map_err(|e| draw_err(&svg_path, DrawErr::from(e)))?;
    }
    write_atomic(&svg_path, svg.as_bytes())?;
    let png_path = dir.join(format!("{stem}.png"));
    // The image encoder picks the format from the extension, so the temporary name ends in .png.
    let tmp = dir.join(format!(".{stem}.tmp.png"));
    {
        let root = BitMapBackend::new(&tmp, fig.size()).into_drawing_area();
        fig.draw(&root).map_err(|e| draw_err(&png_path, e))?;
        root.present()
            .map_err(|e| draw_err(&png_path, DrawErr::from(e)))?;
    }
    std::fs::rename(&tmp, &png_path).map_err(|source| WriteError::new(&png_path, source))?;
    Ok(vec![png_path, svg_path])
}

/// The colour of a strategy in every plot (dense blue, moe orange, circadian green).
pub(crate) fn strategy_color(name: &str, i: usize) -> RGBColor {
    const OTHERS: [RGBColor; 4] = [
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(127, 127, 127),
    ];
    match name {
        "dense" => RGBColor(31, 119, 180),
        "moe" => RGBColor(255, 127, 14),
        "circadian" => RGBColor(44, 160, 44),
        _ => OTHERS[i % OTHERS.len()],
    }
}

/// Text style of the given size [px].
pub(crate) fn font(size: u32) -> TextStyle<'static> {
    (FONT, size).into_font().color(&BLACK)
}

/// A number with about three significant digits and no trailing noise.
pub(crate) fn short_num(v: f64) -> String {
    let a = v.abs();
    if !v.is_finite() {
        "n/a".into()
    } else if a >= 1e6 {
        format!("{:.2e}", v)
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// An axis tick: at most two decimals, trailing zeros dropped.
pub(crate) fn tick(v: &f64) -> String {
    let s = format!("{v:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.to_string()
    }
}

/// Strategies in order of first appearance.
fn strategies_of<'a>(names: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for n in names {
        if !out.iter().any(|o| o == n) {
            out.push(n.to_string());
        }
    }
    out
}

/// Plot 1: facility power of each strategy over time against the grid's carbon intensity.
pub(crate) struct Timeline<'a> {
    /// Rows of timeline.csv.
    pub rows: &'a [TimelineIn],
}

impl Figure for Timeline<'_> {
    fn stem(&self) -> String {
        "timeline".into()
    }
    fn size(&self) -> (u32, u32) {
        (1280, 640)
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), DrawErr> {
        root.fill(&WHITE)?;
        let rows = self.rows;
        let t0 = rows.iter().map(|r| r.start_utc_s).min().unwrap_or(0);
        let strategies = strategies_of(rows.iter().map(|r| r.strategy.as_str()));
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
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .label_font(font(15))
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK.mix(0.5))
            .draw()?;
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
pub(crate) struct Comparison<'a> {
    /// Rows of summary.csv.
    pub rows: &'a [SummaryRow],
}

impl Figure for Comparison<'_> {
    fn stem(&self) -> String {
        "comparison".into()
    }
    fn size(&self) -> (u32, u32) {
        (1500, 520)
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), DrawErr> {
        root.fill(&WHITE)?;
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
            let names_ref = &names;
            chart
                .configure_mesh()
                .disable_x_mesh()
                .x_labels(names.len())
                .x_label_formatter(&|v| match v {
                    SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => {
                        names_ref.get(*i as usize).cloned().unwrap_or_default()
                    }
                    SegmentValue::Last => String::new(),
                })
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
pub(crate) struct Breakdown<'a> {
    /// Rows of summary.csv.
    pub rows: &'a [SummaryRow],
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
    fn stem(&self) -> String {
        "energy_breakdown".into()
    }
    fn size(&self) -> (u32, u32) {
        (1280, 160 + 90 * self.rows.len().max(1) as u32)
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), DrawErr> {
        root.fill(&WHITE)?;
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
        let names_ref = &names;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(names.len())
            .y_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => {
                    names_ref.get(*i as usize).cloned().unwrap_or_default()
                }
                SegmentValue::Last => String::new(),
            })
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
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .label_font(font(14))
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK.mix(0.5))
            .draw()?;
        Ok(())
    }
}

/// What `plot_dir` was asked to draw besides the folder's own files.
#[derive(Debug, Clone, Default)]
pub struct PlotOptions {
    /// A routing trace to draw (expert-load heatmap per layer and imbalance over training); without
    /// it, the trace the run replayed (from run_info.json), if any.
    pub trace: Option<PathBuf>,
}

/// Draw every plot the folder's files allow (PNG and SVG each) and write `report.html`; returns the
/// paths written. Needs `summary.csv` and `timeline.csv`; draws sweep plots when `sweep.csv` exists.
pub fn plot_dir(dir: &Path, opts: &PlotOptions) -> Result<Vec<PathBuf>, PlotError> {
    if !dir.is_dir() {
        return Err(PlotError::Missing {
            dir: dir.to_path_buf(),
            file: "(the folder itself)".into(),
        });
    }
    let summary = read_summary(&need(dir, "summary.csv")?)?;
    let timeline = read_timeline(&need(dir, "timeline.csv")?)?;
    let sweep_path = dir.join("sweep.csv");
    let sweep = if sweep_path.is_file() {
        Some(read_sweep(&sweep_path)?)
    } else {
        None
    };
    let info = super::plots_data::read_run_info(dir)?;
    let trace_path = opts
        .trace
        .clone()
        .or_else(|| info.as_ref().and_then(|i| i.trace_path.clone()));
    let trace = match &trace_path {
        Some(p) => Some(crate::routing::read_trace(p)?),
        None => None,
    };

    let mut written = Vec::new();
    if !timeline.is_empty() {
        written.extend(render(dir, &Timeline { rows: &timeline })?);
    }
    written.extend(render(dir, &Comparison { rows: &summary })?);
    written.extend(render(dir, &Breakdown { rows: &summary })?);
    if let Some(t) = &trace {
        written.extend(super::plots_routing::plot_trace(dir, t)?);
    }
    if let Some(s) = &sweep {
        written.extend(super::plots_sweep::plot_sweep(dir, s)?);
    }
    written.push(super::html::write_report(dir, &summary, info.as_ref())?);
    Ok(written)
}

/// Draw the routing plots of a trace file into `dir` (created if missing); returns the paths written.
pub fn plot_trace_file(trace: &Path, dir: &Path) -> Result<Vec<PathBuf>, PlotError> {
    let t = crate::routing::read_trace(trace)?;
    super::plots_routing::plot_trace(dir, &t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_num_keeps_about_three_digits() {
        assert_eq!(short_num(1234.5), "1234");
        assert_eq!(short_num(12.345), "12.3");
        assert_eq!(short_num(2.6659), "2.67");
        assert_eq!(short_num(0.01234), "0.012");
        assert_eq!(short_num(f64::NAN), "n/a");
    }

    #[test]
    fn known_strategies_keep_their_colours() {
        assert_eq!(strategy_color("dense", 5), RGBColor(31, 119, 180));
        assert_ne!(strategy_color("moe", 0), strategy_color("circadian", 0));
    }
}
