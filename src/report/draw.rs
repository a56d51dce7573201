//! The drawing kit every plot module shares: the embedded font, text styles, colours, number formats,
//! legend strips and colour bars, and `render`, which draws one figure to PNG and SVG.

use super::plots_data::PlotError;
use crate::io::{write_atomic, WriteError};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor;
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
    /// Draw onto `root`, already filled white.
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), DrawErr>;
}

/// Fill `root` white, draw `fig` on it and finish the drawing.
fn paint<DB: DrawingBackend, F: Figure>(
    root: &DrawingArea<DB, Shift>,
    fig: &F,
) -> Result<(), DrawErr> {
    root.fill(&WHITE)?;
    fig.draw(root)?;
    root.present()?;
    Ok(())
}

/// Draw `fig` at `size` [px] into `dir/<stem>.png` and `dir/<stem>.svg` (each written to a temporary
/// file and renamed); returns the two paths.
pub(crate) fn render<F: Figure>(
    dir: &Path,
    stem: &str,
    size: (u32, u32),
    fig: &F,
) -> Result<Vec<PathBuf>, PlotError> {
    register_font_once();
    let draw_err = |path: &Path, e: DrawErr| PlotError::Draw {
        path: path.to_path_buf(),
        msg: e.0,
    };
    let svg_path = dir.join(format!("{stem}.svg"));
    let mut svg = String::new();
    paint(
        &SVGBackend::with_string(&mut svg, size).into_drawing_area(),
        fig,
    )
    .map_err(|e| draw_err(&svg_path, e))?;
    write_atomic(&svg_path, svg.as_bytes())?;
    let png_path = dir.join(format!("{stem}.png"));
    // The image encoder picks the format from the extension, so the temporary name ends in .png.
    let tmp = dir.join(format!(".{stem}.tmp.png"));
    paint(&BitMapBackend::new(&tmp, size).into_drawing_area(), fig)
        .map_err(|e| draw_err(&png_path, e))?;
    std::fs::rename(&tmp, &png_path).map_err(|source| WriteError::new(&png_path, source))?;
    Ok(vec![png_path, svg_path])
}

/// How a legend entry is marked: a line, a filled box or a dot, in the series' colour.
#[derive(Clone, Copy)]
pub(crate) enum Mark {
    /// A line of the given width [px].
    Line(RGBAColor, u32),
    /// A filled box (shaded periods, stacked bars).
    Box(RGBAColor),
    /// A filled dot (scatter points).
    Dot(RGBAColor),
}

/// One entry of a legend strip: its mark and its text.
pub(crate) type Entry = (Mark, String);

/// Width of the mark plus the gaps around an entry's text [px].
const ENTRY_PAD: i32 = 22 + 8 + 26;
/// Height of one row of legend entries [px] per px of text size.
const ROW_PER_PX: f64 = 1.7;

/// Where each entry of a legend laid out in rows across `width` px goes: (row, x) per entry, and the
/// number of rows. Text width is estimated at 0.55 em per character (DejaVu Sans averages about that).
fn legend_layout(entries: &[Entry], width: u32, size: u32) -> (Vec<(i32, i32)>, i32) {
    let mut at = Vec::with_capacity(entries.len());
    let (mut row, mut x) = (0, 10);
    for (_, text) in entries {
        let w = ENTRY_PAD + (text.chars().count() as f64 * size as f64 * 0.55) as i32;
        if x > 10 && x + w > width as i32 {
            row += 1;
            x = 10;
        }
        at.push((row, x));
        x += w;
    }
    (at, if entries.is_empty() { 0 } else { row + 1 })
}

/// Height [px] a legend strip of `entries` needs across `width` px with text of `size` px.
pub(crate) fn legend_height(entries: &[Entry], width: u32, size: u32) -> u32 {
    let (_, rows) = legend_layout(entries, width, size);
    (rows as f64 * size as f64 * ROW_PER_PX).ceil() as u32 + 8
}

/// Draw a legend in its own strip `area` (outside every plotting area, so it never covers data),
/// entries flowing left to right in rows.
pub(crate) fn legend_strip<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[Entry],
    size: u32,
) -> Result<(), DrawErr> {
    let (w, _) = area.dim_in_pixel();
    let (at, _) = legend_layout(entries, w, size);
    let row_h = (size as f64 * ROW_PER_PX) as i32;
    for ((mark, text), (row, x)) in entries.iter().zip(at) {
        let y = 4 + row * row_h + row_h / 2;
        match *mark {
            Mark::Line(c, width) => area.draw(&PathElement::new(
                vec![(x, y), (x + 22, y)],
                c.stroke_width(width),
            ))?,
            Mark::Box(c) => area.draw(&Rectangle::new(
                [(x, y - 7), (x + 22, y + 7)],
                ShapeStyle::from(c).filled(),
            ))?,
            Mark::Dot(c) => {
                area.draw(&Circle::new((x + 11, y), 6, ShapeStyle::from(c).filled()))?
            }
        }
        area.draw(&Text::new(
            text.clone(),
            (x + 30, y),
            font(size).pos(text_anchor::Pos::new(
                text_anchor::HPos::Left,
                text_anchor::VPos::Center,
            )),
        ))?;
    }
    Ok(())
}

/// Split `root` into the figure (top) and a legend strip of `entries` below it, drawing the strip.
pub(crate) fn with_legend_below<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    entries: &[Entry],
    size: u32,
) -> Result<DrawingArea<DB, Shift>, DrawErr> {
    let (w, h) = root.dim_in_pixel();
    let lh = legend_height(entries, w.saturating_sub(20), size).min(h / 2);
    let (top, strip) = root.split_vertically(h - lh);
    let strip = strip.margin(0, 0, 10, 10);
    legend_strip(&strip, entries, size)?;
    Ok(top)
}

/// A vertical colour bar for a heatmap in `area`: the viridis scale from `lo` (bottom) to `hi`
/// (top), about `labels` ticks with text from `fmt`, `label` (with its unit) beside them.
pub(crate) fn colour_bar<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    lo: f64,
    hi: f64,
    labels: usize,
    label: &str,
    fmt: &dyn Fn(&f64) -> String,
    reverse: bool,
) -> Result<(), DrawErr> {
    let hi = if hi > lo { hi } else { lo + 1.0 };
    let mut cb = ChartBuilder::on(area)
        .margin_top(40)
        .margin_bottom(40)
        .margin_right(10)
        .y_label_area_size(95)
        .build_cartesian_2d(0.0..1.0, lo..hi)?;
    cb.configure_mesh()
        .disable_mesh()
        .disable_x_axis()
        .y_labels(labels)
        .y_label_formatter(fmt)
        .y_desc(label)
        .label_style(font(13))
        .axis_desc_style(font(14))
        .draw()?;
    let n = 64;
    cb.draw_series((0..n).map(|i| {
        let a = lo + (hi - lo) * i as f64 / n as f64;
        let b = lo + (hi - lo) * (i + 1) as f64 / n as f64;
        let t = i as f64 / (n - 1) as f64;
        Rectangle::new(
            [(0.0, a), (1.0, b)],
            viridis(if reverse { 1.0 - t } else { t }).filled(),
        )
    }))?;
    Ok(())
}

/// The label of a segment of a category axis: the category's name (empty past the last).
pub(crate) fn segment_label(names: &[String], v: &SegmentValue<i32>) -> String {
    match v {
        SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => {
            names.get(*i as usize).cloned().unwrap_or_default()
        }
        SegmentValue::Last => String::new(),
    }
}

/// Names in order of first appearance, each once.
pub(crate) fn first_seen<'a>(names: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for n in names {
        if !out.iter().any(|o| o == n) {
            out.push(n.to_string());
        }
    }
    out
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

/// The category range of a bar chart of `n` bars (`into_segmented` gives one segment per value of the
/// range, its ends included): `0..n-1`, but `-1..1` for one bar, so the bar stands in the middle
/// rather than on the axis (`0..0` is a degenerate range). A label for a value outside `0..n` finds no
/// name and stays empty.
pub(crate) fn bar_range(n: i32) -> std::ops::Range<i32> {
    if n <= 1 {
        -1..1
    } else {
        0..n - 1
    }
}

/// An axis tick on an axis spanning `span`: as [`tick`], with as many more decimals (up to six) as
/// ten ticks across a narrow span need to differ (an axis from 2.27 to 2.29 otherwise reads
/// 2.28, 2.28, 2.28).
pub(crate) fn tick_in(v: &f64, span: f64) -> String {
    let step = span.abs() / 10.0;
    let need = if step > 0.0 && step.is_finite() {
        (-step.log10()).ceil().clamp(0.0, 6.0) as usize
    } else {
        0
    };
    if need <= 2 {
        return tick(v);
    }
    let s = format!("{v:.need$}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.trim_start_matches('-')
        .chars()
        .all(|c| c == '0' || c == '.')
    {
        "0".into()
    } else {
        s.to_string()
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

/// Viridis colour map at `t` in [0, 1] (8 stops of matplotlib's viridis, linearly interpolated).
pub(crate) fn viridis(t: f64) -> RGBColor {
    const STOPS: [(u8, u8, u8); 8] = [
        (68, 1, 84),
        (70, 50, 127),
        (54, 92, 141),
        (39, 127, 143),
        (31, 162, 136),
        (74, 194, 110),
        (160, 219, 57),
        (254, 232, 37),
    ];
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let x = t * (STOPS.len() - 1) as f64;
    let i = (x.floor() as usize).min(STOPS.len() - 2);
    let f = x - i as f64;
    let lerp = |a: u8, b: u8| (a as f64 + (b as f64 - a as f64) * f).round() as u8;
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    RGBColor(lerp(a.0, b.0), lerp(a.1, b.1), lerp(a.2, b.2))
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

    // Legends sit in a strip of their own: every entry gets a row, long lists wrap instead of overflowing.
    #[test]
    fn legend_entries_wrap_into_rows_within_the_width() {
        let e = |t: &str| (Mark::Box(BLACK.mix(1.0)), t.to_string());
        let entries: Vec<Entry> = (0..8).map(|i| e(&format!("entry number {i}"))).collect();
        let (at, rows) = legend_layout(&entries, 600, 14);
        assert!(rows >= 2, "{rows}");
        assert!(at.iter().all(|&(_, x)| x < 600));
        assert!(legend_height(&entries, 600, 14) > legend_height(&entries[..1], 600, 14));
    }

    #[test]
    fn known_strategies_keep_their_colours() {
        assert_eq!(strategy_color("dense", 5), RGBColor(31, 119, 180));
        assert_ne!(strategy_color("moe", 0), strategy_color("circadian", 0));
    }

    #[test]
    fn viridis_ends_are_the_map_ends() {
        assert_eq!(viridis(0.0), RGBColor(68, 1, 84));
        assert_eq!(viridis(1.0), RGBColor(254, 232, 37));
        assert_eq!(viridis(f64::NAN), RGBColor(68, 1, 84));
    }

    #[test]
    fn a_narrow_axis_gets_the_decimals_its_ticks_need_and_one_bar_stands_in_the_middle() {
        // 2.27 to 2.29: ticks 0.002 apart need three decimals.
        assert_eq!(tick_in(&2.282, 0.023), "2.282");
        assert_eq!(tick_in(&2.284, 0.023), "2.284");
        // A wide axis keeps the plain tick.
        assert_eq!(tick_in(&950.0, 1000.0), tick(&950.0));
        assert_eq!(tick_in(&0.0001, 0.001), "0.0001");
        assert_eq!(tick_in(&-0.00001, 0.001), "0");
        assert_eq!(bar_range(1), -1..1);
        assert_eq!(bar_range(3), 0..2);
        // The empty segments beside a lone bar have no name.
        assert_eq!(
            segment_label(&["moe".into()], &SegmentValue::CenterOf(-1)),
            ""
        );
    }
}
