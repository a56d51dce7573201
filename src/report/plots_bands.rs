//! The Monte Carlo's bands as the plots and the report read them back: uncertainty.csv and
//! uncertainty_timeline.csv of an output folder, and the shapes that draw them.

use super::draw::{strategy_color, DrawErr, Entry, Mark};
use super::plots_data::{csv_err, reader, PlotError};
use plotters::coord::Shift;
use plotters::prelude::*;
use serde::Deserialize;
use std::path::Path;

/// One line of uncertainty.csv: p5/p50/p95 of one figure of one strategy (or comparison).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct FigureBand {
    /// Strategy, or a comparison such as `circadian vs moe`.
    pub strategy: String,
    /// summary.csv column or saving name.
    pub figure: String,
    /// 5th percentile (NaN when the figure does not apply).
    #[serde(with = "super::summary::finite")]
    pub p5: f64,
    /// Median.
    #[serde(with = "super::summary::finite")]
    pub p50: f64,
    /// 95th percentile.
    #[serde(with = "super::summary::finite")]
    pub p95: f64,
    /// Samples where the figure applies.
    pub samples: usize,
}

/// One line of uncertainty_timeline.csv: the facility-power band of one strategy in one interval.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct TimelineBand {
    /// Strategy name.
    pub strategy: String,
    /// Interval start [UNIX s, UTC].
    pub interval_start_utc_s: i64,
    /// 5th percentile of the average facility power [kW].
    #[serde(with = "super::summary::finite")]
    pub p5_facility_kw: f64,
    /// Median [kW].
    #[serde(with = "super::summary::finite")]
    pub p50_facility_kw: f64,
    /// 95th percentile [kW].
    #[serde(with = "super::summary::finite")]
    pub p95_facility_kw: f64,
}

/// The bands of an output folder.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BandsIn {
    /// uncertainty.csv.
    pub figures: Vec<FigureBand>,
    /// uncertainty_timeline.csv (empty if the file is absent).
    pub timeline: Vec<TimelineBand>,
}

impl BandsIn {
    /// The band of `figure` of `strategy`, if it has finite percentiles.
    pub fn get(&self, strategy: &str, figure: &str) -> Option<&FigureBand> {
        self.figures.iter().find(|b| {
            b.strategy == strategy && b.figure == figure && b.p5.is_finite() && b.p95.is_finite()
        })
    }

    /// Samples behind the bands (the largest count of any figure).
    pub fn samples(&self) -> usize {
        self.figures.iter().map(|b| b.samples).max().unwrap_or(0)
    }
}

fn read_rows<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Vec<T>, PlotError> {
    let mut r = reader(path)?;
    r.deserialize()
        .map(|x| x.map_err(|e| csv_err(path, e)))
        .collect()
}

/// Read the bands of output folder `dir`; `None` when it has no uncertainty.csv (no `--samples`).
pub fn read_bands(dir: &Path) -> Result<Option<BandsIn>, PlotError> {
    let f = dir.join("uncertainty.csv");
    if !f.is_file() {
        return Ok(None);
    }
    let t = dir.join("uncertainty_timeline.csv");
    Ok(Some(BandsIn {
        figures: read_rows(&f)?,
        timeline: if t.is_file() {
            read_rows(&t)?
        } else {
            Vec::new()
        },
    }))
}

/// The shaded p5–p95 band of `strategy`'s facility power on the timeline, one rectangle per interval
/// (`x` maps a UNIX time to the axis, `width` is an interval on it, `x_max` its end).
pub(crate) fn timeline_band_rects(
    bands: &BandsIn,
    strategy: &str,
    x: impl Fn(i64) -> f64,
    width: f64,
    x_max: f64,
    color: RGBColor,
) -> Vec<Rectangle<(f64, f64)>> {
    bands
        .timeline
        .iter()
        .filter(|b| b.strategy == strategy && b.p95_facility_kw > 0.0)
        .filter(|b| b.p5_facility_kw.is_finite() && b.p95_facility_kw.is_finite())
        .filter_map(|b| {
            let a = x(b.interval_start_utc_s);
            (a < x_max).then(|| {
                Rectangle::new(
                    [
                        (a, b.p5_facility_kw),
                        ((a + width).min(x_max), b.p95_facility_kw),
                    ],
                    color.mix(0.22).filled(),
                )
            })
        })
        .collect()
}

/// The largest p95 facility power of the timeline bands [kW] (0 without bands), so the axis holds them.
pub(crate) fn timeline_band_max_kw(bands: Option<&BandsIn>) -> f64 {
    bands.map_or(0.0, |b| {
        b.timeline
            .iter()
            .map(|t| t.p95_facility_kw)
            .filter(|v| v.is_finite())
            .fold(0.0, f64::max)
    })
}

/// The finite values of a comparison panel with the ends of each strategy's band (`band(name)`), so
/// the axis range holds the whiskers.
pub(crate) fn with_band_ends<'a>(
    values: &[f64],
    names: &[String],
    band: impl Fn(&str) -> Option<&'a FigureBand>,
) -> Vec<f64> {
    values
        .iter()
        .zip(names)
        .filter(|(v, _)| v.is_finite())
        .flat_map(|(v, n)| {
            let b = band(n).map_or([*v, *v], |b| [b.p5, b.p95]);
            [*v, b[0], b[1]]
        })
        .collect()
}

/// Legend entries of the timeline's bands, one per strategy that has one.
pub(crate) fn band_legend(bands: Option<&BandsIn>, strategies: &[String]) -> Vec<Entry> {
    let Some(b) = bands else { return Vec::new() };
    strategies
        .iter()
        .enumerate()
        .filter(|(_, s)| b.timeline.iter().any(|t| &t.strategy == *s))
        .map(|(i, s)| {
            (
                Mark::Box(strategy_color(s, i).mix(0.22)),
                format!("{s} p5–p95 over {} samples", b.samples()),
            )
        })
        .collect()
}

/// A p5–p95 whisker at pixel column `x` of `area` from row `y5` to `y95`, with short caps (in pixels,
/// so they stay narrow whatever the bar width).
pub(crate) fn whisker<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    x: i32,
    y5: i32,
    y95: i32,
) -> Result<(), DrawErr> {
    let dark = BLACK.stroke_width(2);
    area.draw(&PathElement::new(vec![(x, y5), (x, y95)], dark))?;
    for y in [y5, y95] {
        area.draw(&PathElement::new(vec![(x - 7, y), (x + 7, y)], dark))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_back_what_the_monte_carlo_writes() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_bands(dir.path()).unwrap(), None);
        std::fs::write(
            dir.path().join("uncertainty.csv"),
            "strategy,figure,p5,p50,p95,samples\nmoe,co2_kg,1,2,3,4\nmoe,cost,,,,0\n",
        )
        .unwrap();
        let b = read_bands(dir.path()).unwrap().unwrap();
        assert_eq!(b.get("moe", "co2_kg").map(|x| x.p95), Some(3.0));
        assert!(b.get("moe", "cost").is_none());
        assert_eq!(b.samples(), 4);
        assert!(b.timeline.is_empty());
        std::fs::write(
            dir.path().join("uncertainty.csv"),
            "strategy,figure,p5,p50,p95,samples\nmoe,co2_kg,x,2,3,4\n",
        )
        .unwrap();
        let e = read_bands(dir.path()).unwrap_err().to_string();
        assert!(e.contains("uncertainty.csv") && e.contains("line 2"), "{e}");
    }
}
