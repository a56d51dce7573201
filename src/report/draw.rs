//! The drawing kit every plot module shares: the embedded font, text styles, colours, number formats,
//! the legend box, and `render`, which draws one figure to PNG and SVG.

use super::plots_data::PlotError;
use crate::io::{write_atomic, WriteError};
use plotters::coord::Shift;
use plotters::prelude::*;
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

/// Draw the legend box of `chart`'s labelled series at `pos`, its text at `size` [px].
pub(crate) fn legend<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    pos: SeriesLabelPosition,
    size: u32,
) -> Result<(), DrawErr> {
    chart
        .configure_series_labels()
        .position(pos)
        .label_font(font(size))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK.mix(0.5))
        .draw()?;
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
}
