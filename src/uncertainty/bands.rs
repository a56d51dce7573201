//! From samples to bands: percentiles, the p5/p50/p95 of any named column, the savings, and their files.

use super::sample::{SampleRow, SampleTimeline, Sampled};
use crate::io::{write_atomic, WriteError};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The percentiles every band reports [fractions].
pub const PERCENTILES: [f64; 3] = [0.05, 0.5, 0.95];

/// The `p`-quantile (0–1) of `sorted` (ascending, finite), interpolated linearly between the closest
/// ranks (Hyndman and Fan 1996 definition 7, the default of R and NumPy); NaN for an empty set.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        1 => sorted[0],
        n => {
            let h = (n - 1) as f64 * p.clamp(0.0, 1.0);
            let lo = h.floor() as usize;
            let hi = (lo + 1).min(n - 1);
            sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
        }
    }
}

/// p5, p50 and p95 of the finite values of `values` (NaN each when none is finite).
pub fn p5_p50_p95(values: impl IntoIterator<Item = f64>) -> [f64; 3] {
    let mut v: Vec<f64> = values.into_iter().filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    PERCENTILES.map(|p| percentile(&v, p))
}

/// The band of one figure of one strategy (or comparison) over the samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Band {
    /// Strategy name, or a comparison such as `circadian vs moe`.
    pub strategy: String,
    /// Column name (as in summary.csv, or a saving's name).
    pub figure: String,
    /// 5th, 50th and 95th percentiles over the samples where the figure applies.
    pub p: [f64; 3],
    /// Samples where the figure applies (finite).
    pub samples: usize,
}

/// Bands of the named `columns` (every column when `None`) of per-sample `rows`, grouped by strategy
/// and column in first-seen order. The hook for any per-sample figure: pass rows with new columns (the
/// split of a saving by cause, say) and get their bands with nothing else to change.
pub fn bands_of(rows: &[SampleRow], columns: Option<&[&str]>) -> Vec<Band> {
    let mut order: Vec<(String, String)> = Vec::new();
    let mut values: BTreeMap<(String, String), Vec<f64>> = BTreeMap::new();
    for r in rows {
        for (name, v) in &r.figures {
            if columns.is_some_and(|c| !c.contains(&name.as_str())) {
                continue;
            }
            let key = (r.strategy.clone(), name.clone());
            let e = values.entry(key.clone()).or_insert_with(|| {
                order.push(key);
                Vec::new()
            });
            e.push(*v);
        }
    }
    order
        .into_iter()
        .map(|key| {
            let v = &values[&key];
            Band {
                samples: v.iter().filter(|x| x.is_finite()).count(),
                p: p5_p50_p95(v.iter().copied()),
                strategy: key.0,
                figure: key.1,
            }
        })
        .collect()
}

/// Figures a saving is reported on: summary.csv column and the saving's name.
pub const SAVING_FIGURES: [(&str, &str); 4] = [
    ("co2_kg", "co2_change_pct"),
    ("energy_facility_kwh", "energy_facility_change_pct"),
    ("wall_clock_h", "wall_clock_change_pct"),
    ("cost", "cost_change_pct"),
];

/// The comparisons reported: (strategy, baseline).
pub const COMPARISONS: [(&str, &str); 2] = [("circadian", "moe"), ("dense", "moe")];

/// Per-sample savings: for each comparison whose two strategies ran, the relative change of each
/// [`SAVING_FIGURES`] column against the baseline in the same sample [%] (negative = saves), and the
/// difference in estimated loss (same law in both, so it is comparable across laws).
pub fn saving_rows(rows: &[SampleRow]) -> Vec<SampleRow> {
    let mut out = Vec::new();
    let samples: Vec<u32> = {
        let mut s: Vec<u32> = rows.iter().map(|r| r.sample).collect();
        s.dedup();
        s
    };
    for sample in samples {
        let find = |name: &str| {
            rows.iter()
                .find(|r| r.sample == sample && r.strategy == name)
        };
        for (a, b) in COMPARISONS {
            let (Some(x), Some(base)) = (find(a), find(b)) else {
                continue;
            };
            let mut figures = Vec::new();
            for (col, name) in SAVING_FIGURES {
                let v = match (x.get(col), base.get(col)) {
                    (Some(v), Some(m)) if m > 0.0 => 100.0 * (v - m) / m,
                    _ => f64::NAN,
                };
                figures.push((name.to_string(), v));
            }
            let dl = match (x.get("estimated_loss"), base.get("estimated_loss")) {
                (Some(v), Some(m)) => v - m,
                _ => f64::NAN,
            };
            figures.push(("estimated_loss_change".to_string(), dl));
            out.push(SampleRow {
                sample,
                strategy: format!("{a} vs {b}"),
                figures,
            });
        }
    }
    out
}

/// Every band of a Monte Carlo: each summary figure of each strategy, then each saving.
pub fn all_bands(s: &Sampled) -> Vec<Band> {
    let mut b = bands_of(&s.rows, None);
    b.extend(bands_of(&saving_rows(&s.rows), None));
    b
}

/// A number for a CSV cell: Rust's shortest round-trip form (the same on every platform), empty when
/// not finite.
fn cell(v: f64) -> String {
    if v.is_finite() {
        format!("{v}")
    } else {
        String::new()
    }
}

/// The text of uncertainty.csv: `strategy,figure,p5,p50,p95,samples`, one line per band.
pub fn bands_csv(bands: &[Band]) -> String {
    let mut t = String::from("strategy,figure,p5,p50,p95,samples\n");
    for b in bands {
        let _ = writeln!(
            t,
            "{},{},{},{},{},{}",
            b.strategy,
            b.figure,
            cell(b.p[0]),
            cell(b.p[1]),
            cell(b.p[2]),
            b.samples
        );
    }
    t
}

/// The text of uncertainty_timeline.csv: `strategy,interval_start_utc_s,p5_facility_kw,p50_facility_kw,
/// p95_facility_kw`, one line per strategy and grid interval any sample was still running in.
pub fn timeline_csv(timelines: &[SampleTimeline]) -> String {
    let mut order: Vec<String> = Vec::new();
    let mut by: BTreeMap<(String, i64), Vec<f64>> = BTreeMap::new();
    for t in timelines {
        if !order.contains(&t.strategy) {
            order.push(t.strategy.clone());
        }
        for &(start, p) in &t.power_kw {
            by.entry((t.strategy.clone(), start)).or_default().push(p);
        }
    }
    let mut s = String::from(
        "strategy,interval_start_utc_s,p5_facility_kw,p50_facility_kw,p95_facility_kw\n",
    );
    for name in &order {
        for ((_, start), v) in by.range((name.clone(), i64::MIN)..=(name.clone(), i64::MAX)) {
            if v.iter().all(|p| *p == 0.0) {
                continue;
            }
            // A sample that had finished by this interval draws nothing in it.
            let mut v = v.clone();
            v.resize(v.len().max(count_samples(timelines, name)), 0.0);
            let p = p5_p50_p95(v);
            let _ = writeln!(
                s,
                "{name},{start},{},{},{}",
                cell(p[0]),
                cell(p[1]),
                cell(p[2])
            );
        }
    }
    s
}

fn count_samples(timelines: &[SampleTimeline], strategy: &str) -> usize {
    timelines.iter().filter(|t| t.strategy == strategy).count()
}

/// What the Monte Carlo was, for the report: uncertainty_info.json.
pub fn info_json(s: &Sampled) -> String {
    let sources: Vec<&str> = s.spec.sources.iter().map(|x| x.name()).collect();
    let speeds: Vec<f64> = s.draws.iter().map(|d| d.gpu_speed).collect();
    let powers: Vec<f64> = s.draws.iter().map(|d| d.gpu_power).collect();
    let v = serde_json::json!({
        "samples": s.spec.samples,
        "seed_offset": s.spec.seed_offset,
        "sources": sources,
        "forecast_error": s.spec.forecast_error,
        "gpu_speed_spread": s.spec.gpu_speed_spread,
        "gpu_power_spread": s.spec.gpu_power_spread,
        "laws": s.laws,
        "job_speed_factor_p5_p50_p95": p5_p50_p95(speeds),
        "job_power_factor_p5_p50_p95": p5_p50_p95(powers),
    });
    serde_json::to_string_pretty(&v).unwrap_or_default() + "\n"
}

/// Write uncertainty.csv, uncertainty_timeline.csv, uncertainty_info.json and, when the loss law was
/// drawn, uncertainty_by_law.csv into `dir` (atomically); returns the paths written.
pub fn write_files(s: &Sampled, dir: &Path) -> Result<Vec<PathBuf>, WriteError> {
    let mut files = vec![
        ("uncertainty.csv", bands_csv(&all_bands(s))),
        ("uncertainty_timeline.csv", timeline_csv(&s.timelines)),
        ("uncertainty_info.json", info_json(s)),
    ];
    if !s.laws.is_empty() {
        files.push((
            "uncertainty_by_law.csv",
            super::by_law::by_law_csv(&super::by_law::bands_by_law(s)),
        ));
    }
    let mut written = Vec::new();
    for (name, text) in files {
        let p = dir.join(name);
        write_atomic(&p, text.as_bytes())?;
        written.push(p);
    }
    Ok(written)
}

/// The lines printed under the main table: each saving's median with its p5–p95 band, e.g.
/// `circadian vs moe: CO2e -39.1 % (p5 -41.0 %, p95 -37.2 %)`.
pub fn band_lines(s: &Sampled) -> Vec<String> {
    let bands = bands_of(&saving_rows(&s.rows), None);
    let mut out = vec![format!(
        "uncertainty over {} samples (sources: {}): median (p5, p95)",
        s.spec.samples,
        s.spec
            .sources
            .iter()
            .map(|x| x.name())
            .collect::<Vec<_>>()
            .join(", ")
    )];
    for (a, b) in COMPARISONS {
        let name = format!("{a} vs {b}");
        let get = |f: &str| {
            bands
                .iter()
                .find(|x| x.strategy == name && x.figure == f)
                .filter(|x| x.samples > 0)
        };
        let mut parts = Vec::new();
        for (label, f) in [
            ("CO2e", "co2_change_pct"),
            ("facility energy", "energy_facility_change_pct"),
            ("wall-clock", "wall_clock_change_pct"),
            ("cost", "cost_change_pct"),
        ] {
            if let Some(x) = get(f) {
                parts.push(format!(
                    "{label} {:+.1} % (p5 {:+.1} %, p95 {:+.1} %)",
                    x.p[1], x.p[0], x.p[2]
                ));
            }
        }
        if let Some(x) = get("estimated_loss_change") {
            parts.push(format!(
                "estimated loss {:+.3} (p5 {:+.3}, p95 {:+.3})",
                x.p[1], x.p[0], x.p[2]
            ));
        }
        if !parts.is_empty() {
            out.push(format!("{name}: {}", parts.join(", ")));
        }
    }
    out.extend(super::by_law::by_law_lines(s));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(sample: u32, strategy: &str, figs: &[(&str, f64)]) -> SampleRow {
        SampleRow {
            sample,
            strategy: strategy.into(),
            figures: figs.iter().map(|(n, v)| (n.to_string(), *v)).collect(),
        }
    }

    #[test]
    fn percentiles_of_a_known_set() {
        let v: Vec<f64> = (1..=101).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.05), 6.0);
        assert_eq!(percentile(&v, 0.5), 51.0);
        assert_eq!(percentile(&v, 0.95), 96.0);
        // NumPy: np.percentile([1, 2, 3, 4], [5, 50, 95]) = [1.15, 2.5, 3.85].
        let [a, b, c] = p5_p50_p95([4.0, 1.0, 3.0, 2.0]);
        assert!((a - 1.15).abs() < 1e-12 && (b - 2.5).abs() < 1e-12 && (c - 3.85).abs() < 1e-12);
        assert_eq!(p5_p50_p95([7.0]), [7.0; 3]);
        assert!(p5_p50_p95([f64::NAN]).iter().all(|x| x.is_nan()));
        assert_eq!(p5_p50_p95([f64::NAN, 2.0]), [2.0; 3]);
    }

    #[test]
    fn bands_by_name_and_savings_pair_each_sample() {
        let rows = vec![
            row(0, "moe", &[("co2_kg", 100.0), ("estimated_loss", 2.0)]),
            row(0, "circadian", &[("co2_kg", 60.0), ("estimated_loss", 2.1)]),
            row(1, "moe", &[("co2_kg", 200.0), ("estimated_loss", 2.5)]),
            row(
                1,
                "circadian",
                &[("co2_kg", 140.0), ("estimated_loss", 2.5)],
            ),
        ];
        let b = bands_of(&rows, Some(&["co2_kg"]));
        assert_eq!(b.len(), 2);
        assert_eq!(b[0].strategy, "moe");
        assert_eq!(b[0].p[1], 150.0);
        let s = saving_rows(&rows);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].get("co2_change_pct"), Some(-40.0));
        assert_eq!(s[1].get("co2_change_pct"), Some(-30.0));
        assert!((s[0].get("estimated_loss_change").unwrap() - 0.1).abs() < 1e-12);
        // No dense strategy: no dense comparison.
        assert!(s.iter().all(|r| r.strategy == "circadian vs moe"));
        let csv = bands_csv(&bands_of(&s, None));
        assert!(
            csv.starts_with("strategy,figure,p5,p50,p95,samples\ncircadian vs moe,co2_change_pct,")
        );
        // Cost missing on both sides: an empty band, zero samples.
        assert!(
            csv.contains("circadian vs moe,cost_change_pct,,,,0\n"),
            "{csv}"
        );
    }

    #[test]
    fn a_finished_sample_counts_as_zero_power_in_the_timeline_band() {
        let t = vec![
            SampleTimeline {
                sample: 0,
                strategy: "moe".into(),
                power_kw: vec![(0, 10.0), (3600, 10.0)],
            },
            SampleTimeline {
                sample: 1,
                strategy: "moe".into(),
                power_kw: vec![(0, 20.0), (3600, 0.0), (7200, 0.0)],
            },
        ];
        let csv = timeline_csv(&t);
        assert_eq!(
            csv,
            "strategy,interval_start_utc_s,p5_facility_kw,p50_facility_kw,p95_facility_kw\nmoe,0,10.5,15,19.5\nmoe,3600,0.5,5,9.5\n"
        );
    }
}
