//! The report's "How sure is it" section: the Monte Carlo's sources, spreads and p5/p50/p95 bands.

use super::html::escape;
use super::plots_bands::{read_bands, BandsIn};
use super::plots_data::PlotError;
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
                "<li>Loss law: on — sample i uses law i mod {} of: {}. Laws were fitted on different data sets, so the band of a strategy's estimated loss mixes data sets; the loss <em>change</em> against moe is within one law per sample. The law changes the estimated loss only, not the tokens trained.</li>",
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
    Ok(h)
}
