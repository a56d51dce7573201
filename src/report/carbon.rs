//! CO2 of each strategy under the grid's average and marginal carbon signals, and the savings under both, side by side.
//!
//! The run meters CO2 against the grid's primary series (`co2_kg`). Each timeline row holds the
//! facility energy of one grid interval, and within an interval the intensity is constant, so the CO2
//! under any other signal of the same grid is exact: Σ_intervals facility energy × that signal's value.

use super::html::escape;
use super::summary::SummaryRow;
use crate::grid::{CiKind, GridSeries};
use crate::sim::StrategyResult;
use std::fmt::Write as _;

/// CO2 of `r` [kg] had each interval of `grid` had intensity `ci` [g/kWh per interval] (NaN if a
/// timeline row falls outside `ci`).
pub fn co2_under(r: &StrategyResult, grid: &GridSeries, ci: &[f64]) -> f64 {
    r.outcome
        .timeline
        .iter()
        .map(|row| {
            let k = (row.start_utc_s - grid.start_utc_s).div_euclid(grid.interval_s.max(1));
            let c = usize::try_from(k)
                .ok()
                .and_then(|k| ci.get(k))
                .copied()
                .unwrap_or(f64::NAN);
            row.totals.facility_j / 3.6e6 * c / 1000.0
        })
        .sum()
}

/// CO2 of `r` [kg] under the grid's first signal of `kind` (NaN when the grid has none).
pub fn co2_of_kind(r: &StrategyResult, grid: &GridSeries, kind: CiKind) -> f64 {
    grid.ci_of_kind(kind)
        .map_or(f64::NAN, |ci| co2_under(r, grid, ci))
}

/// The value of a figure a summary.csv does not have (written before its column existed): NaN.
pub(super) fn not_given() -> f64 {
    f64::NAN
}

/// Relative change of `x` against `base` [%] (NaN when the base is not positive or either is NaN).
fn pct(x: f64, base: f64) -> f64 {
    if base > 0.0 {
        (x / base - 1.0) * 100.0
    } else {
        f64::NAN
    }
}

/// Each non-moe strategy's CO2 change against moe under the average and the marginal signal
/// [%]: (strategy, average, marginal); empty unless moe ran and the grid has a marginal signal.
fn savings(rows: &[SummaryRow]) -> Vec<(String, f64, f64)> {
    let Some(base) = rows.iter().find(|r| r.strategy == "moe") else {
        return Vec::new();
    };
    if base.co2_marginal_kg.is_nan() {
        return Vec::new();
    }
    rows.iter()
        .filter(|r| r.strategy != "moe")
        .map(|r| {
            (
                r.strategy.clone(),
                pct(r.co2_average_kg, base.co2_average_kg),
                pct(r.co2_marginal_kg, base.co2_marginal_kg),
            )
        })
        .collect()
}

fn pct_text(v: f64) -> String {
    if v.is_nan() {
        "n/a".into()
    } else {
        format!("{v:+.1} %")
    }
}

/// The lines printed under the console table: which signals, and each strategy's CO2 change
/// against moe under both; without a marginal series, one line saying the saving is under the
/// average signal only (when circadian and moe ran), so it is not read as a marginal one.
pub fn console_lines(rows: &[SummaryRow], grid: &GridSeries) -> String {
    let s = savings(rows);
    if s.is_empty() {
        let compared = ["moe", "circadian"]
            .iter()
            .all(|n| rows.iter().any(|r| r.strategy == *n));
        if compared && grid.ci_of_kind(CiKind::Marginal).is_none() {
            return format!(
                "carbon signal: {} '{}' only; the saving under marginal carbon needs a [grid.marginal] series (see scenarios/marginal_carbon.toml)\n",
                grid.ci_kind.name(),
                grid.ci_name
            );
        }
        return String::new();
    }
    let name = |k: CiKind| grid.ci_name_of_kind(k).unwrap_or("none").to_string();
    let mut out = format!(
        "carbon signals: average '{}', marginal '{}' (CO2e above is metered on '{}')\n",
        name(CiKind::Average),
        name(CiKind::Marginal),
        grid.ci_name
    );
    for (strategy, avg, marg) in s {
        let _ = writeln!(
            out,
            "{strategy} vs moe: CO2e under average carbon {}, under marginal carbon {}",
            pct_text(avg),
            pct_text(marg)
        );
    }
    out
}

/// The report's section: each strategy's CO2 and its change against moe under both signals (empty
/// when summary.csv has no marginal figures).
pub fn html_section(rows: &[SummaryRow]) -> String {
    let s = savings(rows);
    if s.is_empty() {
        return String::new();
    }
    let mut h = String::from("<h2>Average and marginal carbon</h2>\n<table>\n<tr><th>strategy</th><th>CO2e, average signal [kg]</th><th>CO2e, marginal signal [kg]</th><th>vs moe, average</th><th>vs moe, marginal</th></tr>\n");
    for r in rows {
        let (avg, marg) = s
            .iter()
            .find(|(n, _, _)| *n == r.strategy)
            .map_or((String::from("–"), String::from("–")), |(_, a, m)| {
                (pct_text(*a), pct_text(*m))
            });
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{:.1}</td><td>{:.1}</td><td>{}</td><td>{}</td></tr>",
            escape(&r.strategy),
            r.co2_average_kg,
            r.co2_marginal_kg,
            escape(&avg),
            escape(&marg)
        );
    }
    h.push_str("</table>\n<p class=\"note\">Average carbon is the intensity of the whole generation mix (the emissions attributed to the job); marginal carbon is the intensity of the generators that respond to a change in load (the emissions the job causes or avoids). A saving under the marginal signal is what moving the work changes in the grid's emissions.</p>\n");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(strategy: &str, avg: f64, marg: f64) -> SummaryRow {
        SummaryRow {
            strategy: strategy.into(),
            co2_average_kg: avg,
            co2_marginal_kg: marg,
            ..SummaryRow::default()
        }
    }

    #[test]
    fn a_summary_written_before_the_carbon_columns_reads_back_with_them_empty() {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.serialize(row("moe", 1.0, 2.0)).unwrap_or_default();
        let text = String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default();
        // Drop the two columns (header and values) as an older version wrote the file.
        let lines: Vec<String> = text
            .lines()
            .map(|l| {
                let cells: Vec<&str> = l.split(',').collect();
                let header: Vec<&str> = text.lines().next().unwrap_or("").split(',').collect();
                cells
                    .iter()
                    .zip(&header)
                    .filter(|(_, h)| {
                        !h.starts_with("co2_average") && !h.starts_with("co2_marginal")
                    })
                    .map(|(c, _)| *c)
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .collect();
        let old = lines.join("\n");
        assert!(!old.contains("co2_marginal_kg"));
        let back: Vec<SummaryRow> = csv::Reader::from_reader(old.as_bytes())
            .deserialize()
            .collect::<Result<_, _>>()
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(back[0].co2_marginal_kg.is_nan() && back[0].co2_average_kg.is_nan());
        assert_eq!(back[0].strategy, "moe");
    }

    #[test]
    fn without_a_marginal_series_the_console_says_the_saving_is_average_only() {
        let g = GridSeries {
            region: "GB".into(),
            tz: chrono_tz::UTC,
            start_utc_s: 0,
            interval_s: 3600,
            ci_g_per_kwh: vec![100.0],
            ci_kind: CiKind::Average,
            ci_name: "profile".into(),
            ci_alt: Vec::new(),
            load_mw: None,
            price_per_mwh: None,
            source: "test".into(),
            notes: Vec::new(),
        };
        let rows = [row("moe", 1.0, f64::NAN), row("circadian", 0.9, f64::NAN)];
        let t = console_lines(&rows, &g);
        assert!(
            t.contains("average 'profile' only") && t.contains("[grid.marginal]"),
            "{t}"
        );
        assert!(console_lines(&rows[..1], &g).is_empty());
        let rows = [row("moe", 1.0, 2.0), row("circadian", 0.9, 1.6)];
        let t = console_lines(&rows, &g);
        assert!(t.contains("under marginal carbon -20.0 %"), "{t}");
    }

    #[test]
    fn savings_are_against_moe_under_each_signal() {
        let rows = [row("moe", 100.0, 200.0), row("circadian", 90.0, 190.0)];
        let s = savings(&rows);
        assert_eq!(s.len(), 1);
        assert!((s[0].1 + 10.0).abs() < 1e-12 && (s[0].2 + 5.0).abs() < 1e-12);
        let h = html_section(&rows);
        assert!(h.contains("-10.0 %") && h.contains("-5.0 %"), "{h}");
        // Without a marginal series there is nothing to show.
        let rows = [
            row("moe", 100.0, f64::NAN),
            row("circadian", 90.0, f64::NAN),
        ];
        assert!(html_section(&rows).is_empty());
    }
}
