//! The report's "How sure is it" section: the Monte Carlo's sources, spreads and p5/p50/p95 bands.

use super::html::escape;
use super::plots_bands::{read_bands, BandsIn};
use super::plots_data::PlotError;
use crate::sim::Cause;
use std::fmt::Write as _;
use std::path::Path;

/// Figures shown per strategy: column, label, unit.
const FIGURES: [(&str, &str, &str); 5] = [
    ("co2_kg", "CO2e", "kg"),
    ("energy_facility_kwh", "facility energy", "kWh"),
    ("wall_clock_h", "wall-clock", "h"),
    ("cost", "cost", "currency"),
    ("estimated_loss", "estimated loss", "(law varies)"),
];

/// Savings shown per comparison: name, label, unit.
const SAVINGS: [(&str, &str, &str); 5] = [
    ("co2_change_pct", "CO2e", "%"),
    ("energy_facility_change_pct", "facility energy", "%"),
    ("wall_clock_change_pct", "wall-clock", "%"),
    ("cost_change_pct", "cost", "%"),
    ("estimated_loss_change", "estimated loss (same law)", ""),
];

fn num(v: f64) -> String {
    if !v.is_finite() {
        "–".into()
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

fn rows(h: &mut String, b: &BandsIn, names: &[String], figs: &[(&str, &str, &str)]) {
    for name in names {
        for (col, label, unit) in figs {
            if let Some(x) = b.get(name, col) {
                let _ = writeln!(
                    h,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"unit\">{}</td></tr>",
                    escape(name),
                    escape(label),
                    num(x.p5),
                    num(x.p50),
                    num(x.p95),
                    escape(unit)
                );
            }
        }
    }
}

/// The section for output folder `dir` (empty when it has no uncertainty.csv).
pub(super) fn section(dir: &Path) -> Result<String, PlotError> {
    let Some(b) = read_bands(dir)? else {
        return Ok(String::new());
    };
    let info: Option<serde_json::Value> =
        std::fs::read_to_string(dir.join("uncertainty_info.json"))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok());
    let mut h = String::from("<h2 id=\"uncertainty\">How sure is it</h2>\n");
    let _ = writeln!(
        h,
        "<p>{} samples, each a full simulation of every strategy with perturbed inputs; p5, median and p95 over them (uncertainty.csv; the bands on the timeline and comparison plots).</p>",
        b.samples()
    );
    if let Some(i) = &info {
        let f = |k: &str| i.get(k).and_then(|v| v.as_f64()).unwrap_or(f64::NAN);
        let sources: Vec<String> = i
            .get("sources")
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        let on = |s: &str| sources.iter().any(|x| x == s);
        h.push_str("<ul>\n");
        let _ = writeln!(
            h,
            "<li>Forecast error: {}</li>",
            if on("forecast") {
                format!("on — the circadian planner sees the signal × (1 + N(0, {:.3})), a new draw per sample (default from a 9.59 % day-ahead MAPE, CarbonX 2025)", f("forecast_error"))
            } else {
                "off (the scenario's own forecast)".into()
            }
        );
        let _ = writeln!(
            h,
            "<li>Routing seed: {}</li>",
            if on("routing") {
                "on — a new seed for every random routing choice per sample"
            } else {
                "off"
            }
        );
        if on("hardware") {
            let band = |k: &str| {
                i.get(k)
                    .and_then(|v| v.as_array())
                    .map(|a| {
                        a.iter()
                            .filter_map(|x| x.as_f64())
                            .map(num)
                            .collect::<Vec<_>>()
                            .join(" / ")
                    })
                    .unwrap_or_default()
            };
            let _ = writeln!(
                h,
                "<li>Hardware spread: on — each GPU's speed × N(1, {:.4}) and power × N(1, {:.4}) (Sinha et al. 2022, SC'22: 8 % average performance variation across GPUs of one SKU); the job runs at its slowest GPU's pace (synchronous training waits for it at every collective) and draws the mean power. Job speed factor p5 / p50 / p95: {}; power factor: {}.</li>",
                f("gpu_speed_spread"),
                f("gpu_power_spread"),
                band("job_speed_factor_p5_p50_p95"),
                band("job_power_factor_p5_p50_p95")
            );
        } else {
            h.push_str("<li>Hardware spread: off</li>\n");
        }
        let laws: Vec<String> = i
            .get("laws")
            .and_then(|v| v.as_array())
            .map(|a| a.iter().filter_map(|x| x.as_str()).map(escape).collect())
            .unwrap_or_default();
        if on("quality_law") && !laws.is_empty() {
            let _ = writeln!(
                h,
                "<li>Loss law: on — sample i uses law i mod {} of: {}. Laws were fitted on different data sets, so the band of a strategy's estimated loss mixes data sets; the loss <em>change</em> against moe is within one law per sample. At equal loss the law also sets the tokens each strategy trains (the target is the MoE's loss after training.tokens under that law, or training.target_loss).</li>",
                laws.len(),
                laws.join("; ")
            );
        } else {
            h.push_str("<li>Loss law: off (the default law)</li>\n");
        }
        h.push_str("</ul>\n");
    }
    let mut strategies: Vec<String> = Vec::new();
    let mut comparisons: Vec<String> = Vec::new();
    for f in &b.figures {
        let list = if f.strategy.contains(" vs ") {
            &mut comparisons
        } else {
            &mut strategies
        };
        if !list.contains(&f.strategy) {
            list.push(f.strategy.clone());
        }
    }
    h.push_str("<table class=\"summary\"><thead><tr><th></th><th>figure</th><th>p5</th><th>median</th><th>p95</th><th>unit</th></tr></thead><tbody>\n");
    rows(&mut h, &b, &comparisons, &SAVINGS);
    rows(&mut h, &b, &strategies, &FIGURES);
    h.push_str("</tbody></table>\n<p class=\"note\">Every summary figure's band is in uncertainty.csv; a change is (strategy − moe) / moe in the same sample (negative saves).</p>\n");
    h.push_str(&split_bands(&b, &strategies));
    h.push_str(&law_table(dir)?);
    Ok(h)
}

/// Figures shown per loss law: name, label, unit.
const LAW_FIGURES: [(&str, &str, &str); 3] = [
    ("co2_change_pct", "CO2e change", "%"),
    ("energy_facility_change_pct", "facility energy change", "%"),
    ("tokens", "tokens trained", "tokens"),
];

/// The bands split by loss law (uncertainty_by_law.csv; empty when the law was not drawn), so a reader
/// sees which law makes a band's tail.
fn law_table(dir: &Path) -> Result<String, PlotError> {
    let path = dir.join("uncertainty_by_law.csv");
    if !path.exists() {
        return Ok(String::new());
    }
    let text = std::fs::read_to_string(&path).map_err(|source| PlotError::Io {
        path: path.clone(),
        source,
    })?;
    let mut r = csv::Reader::from_reader(text.as_bytes());
    let mut body = String::new();
    for (i, rec) in r.records().enumerate() {
        let rec = rec.map_err(|e| PlotError::Parse {
            path: path.clone(),
            line: i as u64 + 2,
            msg: format!("{e} (expected law,strategy,figure,p5,p50,p95,samples)"),
        })?;
        if rec.len() < 6 {
            return Err(PlotError::Parse {
                path: path.clone(),
                line: i as u64 + 2,
                msg: "expected 7 columns: law,strategy,figure,p5,p50,p95,samples".into(),
            });
        }
        let (law, strategy, figure) = (&rec[0], &rec[1], &rec[2]);
        let Some((_, label, unit)) = LAW_FIGURES.iter().find(|(f, _, _)| *f == figure) else {
            continue;
        };
        let v = |k: usize| {
            rec.get(k)
                .and_then(|x| x.parse::<f64>().ok())
                .unwrap_or(f64::NAN)
        };
        let _ = writeln!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"unit\">{}</td></tr>",
            escape(law.split(" (").next().unwrap_or(law)),
            escape(strategy),
            escape(label),
            num(v(3)),
            num(v(4)),
            num(v(5)),
            escape(unit)
        );
    }
    if body.is_empty() {
        return Ok(body);
    }
    Ok(format!(
        "<h3>By loss law</h3>\n<p>The same bands among the samples that used each law (uncertainty_by_law.csv). The laws disagree most on the tokens a dense model needs to reach the MoE's loss; where one law's band lies far from the others, the overall band's tail is that law's, and the law may be extrapolated beyond the sizes it was fitted on.</p>\n<table class=\"summary\"><thead><tr><th>law</th><th></th><th>figure</th><th>p5</th><th>median</th><th>p95</th><th>unit</th></tr></thead><tbody>\n{body}</tbody></table>\n"
    ))
}

/// The bands of each part of each split by cause (the `saving_*` columns of every sample): empty when
/// the samples were not split (`[uncertainty] split = false`).
fn split_bands(b: &BandsIn, strategies: &[String]) -> String {
    let mut body = String::new();
    for name in strategies {
        for c in Cause::ALL {
            let key = c.key();
            let cols = [
                format!("saving_{key}_co2_kg"),
                format!("saving_{key}_energy_kwh"),
                format!("saving_{key}_time_h"),
            ];
            let bands: Vec<_> = cols.iter().map(|col| b.get(name, col)).collect();
            if bands.iter().all(|x| x.is_none()) {
                continue;
            }
            let _ = write!(
                body,
                "<tr><td>{}</td><td title=\"saving_{key}_*\">{}</td>",
                escape(name),
                escape(c.label())
            );
            for x in bands {
                let cell = x.map_or("–".to_string(), |x| {
                    format!("{} ({} – {})", num(x.p50), num(x.p5), num(x.p95))
                });
                let _ = write!(body, "<td>{cell}</td>");
            }
            body.push_str("</tr>\n");
        }
    }
    if body.is_empty() {
        return body;
    }
    format!(
        "<h3>Each saving against moe split by cause, over the samples</h3>\n<table class=\"summary\"><thead><tr><th></th><th>cause</th><th>CO2e saved [kg]</th><th>facility energy saved [kWh]</th><th>wall-clock saved [h]</th></tr></thead><tbody>\n{body}</tbody></table>\n<p class=\"note\">Median (p5 – p95) of each part over the samples, each sample split by its own counterfactual runs (sequential attribution, in the order of the table); positive: less than moe. The parts of one sample sum to its whole; percentiles of parts need not sum to the whole's.</p>\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_section_shows_each_split_part_with_its_band() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("uncertainty.csv"),
            "strategy,figure,p5,p50,p95,samples\ncircadian,co2_kg,10,11,12,4\ncircadian,saving_time_shift_co2_kg,1.5,2.5,3.5,4\ncircadian,saving_time_shift_energy_kwh,,,,0\ncircadian,saving_power_cap_co2_kg,,,,0\n",
        )
        .unwrap();
        let h = section(dir.path()).unwrap();
        assert!(h.contains("split by cause, over the samples"), "{h}");
        assert!(
            h.contains("time shifting</td><td>2.50 (1.50 – 3.50)</td><td>–</td>"),
            "{h}"
        );
        // A part no sample had is left out.
        assert!(!h.contains("power cap"), "{h}");
        // No split at all: no table.
        std::fs::write(
            dir.path().join("uncertainty.csv"),
            "strategy,figure,p5,p50,p95,samples\ncircadian,co2_kg,10,11,12,4\n",
        )
        .unwrap();
        assert!(!section(dir.path()).unwrap().contains("split by cause"));
    }

    #[test]
    fn the_section_shows_the_bands_by_loss_law_and_names_a_bad_row() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("uncertainty.csv"),
            "strategy,figure,p5,p50,p95,samples\ndense vs moe,co2_change_pct,-5,38,1342,32\n",
        )
        .unwrap();
        assert!(!section(dir.path()).unwrap().contains("By loss law"));
        std::fs::write(
            dir.path().join("uncertainty_by_law.csv"),
            "law,strategy,figure,p5,p50,p95,samples\n\"Law A (Eq. 1, Table 2)\",dense vs moe,co2_change_pct,-6,-2,1,11\n\"Law B (Eq. 6)\",dense vs moe,co2_change_pct,900,1000,1300,11\n\"Law B (Eq. 6)\",dense vs moe,wall_clock_change_pct,1,2,3,11\n",
        )
        .unwrap();
        let h = section(dir.path()).unwrap();
        assert!(h.contains("<h3>By loss law</h3>"), "{h}");
        assert!(
            h.contains("<td>Law A</td><td>dense vs moe</td><td>CO2e change</td><td>-6.00</td><td>-2.00</td><td>1.00</td>"),
            "{h}"
        );
        assert!(h.contains("<td>Law B</td><td>dense vs moe</td><td>CO2e change</td><td>900</td><td>1000</td><td>1300</td>"), "{h}");
        // Figures the table does not show are left out.
        assert!(!h.contains("wall-clock change"), "{h}");
        std::fs::write(
            dir.path().join("uncertainty_by_law.csv"),
            "law,strategy,figure,p5,p50,p95,samples\nLaw A,dense vs moe\n",
        )
        .unwrap();
        let e = section(dir.path()).unwrap_err().to_string();
        assert!(e.contains("uncertainty_by_law.csv: line 2"), "{e}");
    }
}
