//! The bands split by loss law: which of the drawn laws drives a comparison's band
//! (uncertainty_by_law.csv and the lines under the table).
//!
//! The laws disagree most on how many tokens a dense model needs to reach the MoE's loss, so one law
//! can stretch the dense-vs-moe band by an order of magnitude; a user must see which one before
//! trusting the tail.

use super::bands::{bands_of, saving_rows, Band, COMPARISONS};
use super::sample::{SampleRow, Sampled};
use std::fmt::Write as _;

/// One band among the samples that used one loss law.
#[derive(Debug, Clone, PartialEq)]
pub struct LawBand {
    /// The law's name (as in uncertainty_info.json).
    pub law: String,
    /// The band of a saving (comparison rows) or of a strategy's `tokens` [tokens] among those samples.
    pub band: Band,
}

/// The short name of a law: its name up to the first " (" (the equation and table references).
pub fn short_law(name: &str) -> &str {
    name.split(" (").next().unwrap_or(name)
}

/// Per law (in law-index order): the bands of every saving of every comparison, then each strategy's
/// tokens, among the samples that used that law. Empty when the law was not drawn.
pub fn bands_by_law(s: &Sampled) -> Vec<LawBand> {
    let mut out = Vec::new();
    for (i, law) in s.laws.iter().enumerate() {
        let samples: Vec<u32> = s
            .draws
            .iter()
            .filter(|d| d.law == Some(i))
            .map(|d| d.index)
            .collect();
        let rows: Vec<SampleRow> = s
            .rows
            .iter()
            .filter(|r| samples.contains(&r.sample))
            .cloned()
            .collect();
        let bands = bands_of(&saving_rows(&rows), None)
            .into_iter()
            .chain(bands_of(&rows, Some(&["tokens"])));
        out.extend(bands.map(|band| LawBand {
            law: law.clone(),
            band,
        }));
    }
    out
}

/// A number for a CSV cell: shortest round-trip form, empty when not finite (as uncertainty.csv).
fn cell(v: f64) -> String {
    if v.is_finite() {
        format!("{v}")
    } else {
        String::new()
    }
}

/// The text of uncertainty_by_law.csv: `law,strategy,figure,p5,p50,p95,samples`; the law name is
/// quoted (it holds commas).
pub fn by_law_csv(bands: &[LawBand]) -> String {
    let mut t = String::from("law,strategy,figure,p5,p50,p95,samples\n");
    for b in bands {
        let _ = writeln!(
            t,
            "\"{}\",{},{},{},{},{},{}",
            b.law.replace('"', "\"\""),
            b.band.strategy,
            b.band.figure,
            cell(b.band.p[0]),
            cell(b.band.p[1]),
            cell(b.band.p[2]),
            b.band.samples
        );
    }
    t
}

/// The lines printed under the table when the law was drawn: for each comparison, its CO2e change's
/// median (p5, p95) under each law, e.g. `dense vs moe CO2e by loss law: Clark et al. 2022 +3.1 % (…); …`.
pub fn by_law_lines(s: &Sampled) -> Vec<String> {
    let bands = bands_by_law(s);
    let mut out = Vec::new();
    for (a, b) in COMPARISONS {
        let name = format!("{a} vs {b}");
        let parts: Vec<String> = s
            .laws
            .iter()
            .filter_map(|law| {
                bands
                    .iter()
                    .find(|x| {
                        &x.law == law
                            && x.band.strategy == name
                            && x.band.figure == "co2_change_pct"
                            && x.band.samples > 0
                    })
                    .map(|x| {
                        format!(
                            "{} {:+.1} % (p5 {:+.1} %, p95 {:+.1} %)",
                            short_law(law),
                            x.band.p[1],
                            x.band.p[0],
                            x.band.p[2]
                        )
                    })
            })
            .collect();
        if parts.len() > 1 {
            out.push(format!("{name} CO2e by loss law: {}", parts.join("; ")));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::uncertainty::{Draw, SampleRow};

    fn row(sample: u32, strategy: &str, co2: f64, tokens: f64) -> SampleRow {
        SampleRow {
            sample,
            strategy: strategy.into(),
            figures: vec![("co2_kg".into(), co2), ("tokens".into(), tokens)],
        }
    }

    fn draw(index: u32, law: usize) -> Draw {
        Draw {
            index,
            routing_root: None,
            forecast_root: None,
            gpu_speed: 1.0,
            gpu_power: 1.0,
            law: Some(law),
        }
    }

    fn sampled() -> Sampled {
        // Law 0 (samples 0, 2): dense emits +10 % and +20 %; law 1 (samples 1, 3): +900 % and +1100 %.
        let mut rows = Vec::new();
        for (i, dense) in [(0, 110.0), (1, 1000.0), (2, 120.0), (3, 1200.0)] {
            rows.push(row(i, "moe", 100.0, 1e9));
            rows.push(row(i, "dense", dense, 1e7 * dense));
        }
        Sampled {
            spec: crate::scenario::UncertaintySpec::default(),
            draws: (0..4).map(|i| draw(i, i as usize % 2)).collect(),
            rows,
            timelines: Vec::new(),
            laws: vec!["Law A (Eq. 1)".into(), "Law B (Eq. 2, Table 3)".into()],
        }
    }

    #[test]
    fn each_law_gets_the_band_of_its_own_samples() {
        let s = sampled();
        let b = bands_by_law(&s);
        let get = |law: &str, strategy: &str, fig: &str| {
            b.iter()
                .find(|x| x.law == law && x.band.strategy == strategy && x.band.figure == fig)
                .map(|x| x.band.clone())
        };
        let a = get("Law A (Eq. 1)", "dense vs moe", "co2_change_pct").unwrap();
        assert_eq!(a.samples, 2);
        assert!((a.p[1] - 15.0).abs() < 1e-9, "{a:?}");
        let z = get("Law B (Eq. 2, Table 3)", "dense vs moe", "co2_change_pct").unwrap();
        assert!((z.p[1] - 1000.0).abs() < 1e-9, "{z:?}");
        let t = get("Law B (Eq. 2, Table 3)", "dense", "tokens").unwrap();
        assert!((t.p[1] - 1.1e10).abs() < 1.0, "{t:?}");
        // No circadian rows: no circadian comparison.
        assert!(b.iter().all(|x| !x.band.strategy.starts_with("circadian")));
    }

    #[test]
    fn the_line_names_each_law_by_its_short_name_and_the_csv_quotes_it() {
        let s = sampled();
        let lines = by_law_lines(&s);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0].starts_with("dense vs moe CO2e by loss law: Law A +15.0 %"),
            "{}",
            lines[0]
        );
        assert!(lines[0].contains("; Law B +1000.0 %"), "{}", lines[0]);
        let csv = by_law_csv(&bands_by_law(&s));
        assert!(csv.starts_with("law,strategy,figure,p5,p50,p95,samples\n\"Law A (Eq. 1)\",dense vs moe,co2_change_pct,"));
        let parsed: Vec<csv::StringRecord> = csv::Reader::from_reader(csv.as_bytes())
            .records()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(parsed.iter().all(|r| r.len() == 7));
    }

    #[test]
    fn no_law_drawn_no_lines() {
        let mut s = sampled();
        s.laws.clear();
        assert!(bands_by_law(&s).is_empty());
        assert!(by_law_lines(&s).is_empty());
    }
}
