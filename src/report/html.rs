//! The shareable report: `report.html`, one self-contained page (plots inlined as SVG, summary table, scenario, sources).

use super::html_columns::{shown, Show, COLUMNS, CURRENCY};
use super::plots_data::{PlotError, RunInfo};
use super::summary::SummaryRow;
use crate::io::write_atomic;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The plots the report inlines when present, in page order: file stem and heading.
const SECTIONS: [(&str, &str); 12] = [
    (
        "saving_waterfall",
        "Where each saving comes from: waterfall",
    ),
    (
        "timeline",
        "Power over time against the grid's carbon intensity",
    ),
    ("comparison", "Strategies compared"),
    ("energy_breakdown", "Energy breakdown"),
    ("cost_breakdown", "Cost by term"),
    ("sites_co2", "Across regions: CO2e by mode"),
    ("schedule", "Schedules over training progress"),
    (
        "waveform",
        "Facility power waveform (the --waveform window)",
    ),
    ("routing_heatmap", "Expert load per layer"),
    ("routing_imbalance", "Load imbalance over training"),
    ("sweep_pareto", "Sweep: emissions vs time"),
    ("sweep_heatmap", "Sweep: emissions over two parameters"),
];

/// Escape text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            _ => o.push(c),
        }
    }
    o
}

fn read_text(path: &Path) -> Result<Option<String>, PlotError> {
    if !path.is_file() {
        return Ok(None);
    }
    std::fs::read_to_string(path)
        .map(Some)
        .map_err(|source| PlotError::Io {
            path: path.to_path_buf(),
            source,
        })
}

/// The summary table, transposed (one row per column of summary.csv, one column per strategy), each
/// row with its display name and unit; cost in `currency` (or "currency units").
fn summary_table(path: &Path, currency: Option<&str>) -> Result<String, PlotError> {
    let parse = |line: u64, msg: String| PlotError::Parse {
        path: path.to_path_buf(),
        line,
        msg,
    };
    let mut rdr = csv::Reader::from_path(path).map_err(|e| parse(1, e.to_string()))?;
    let headers = rdr.headers().map_err(|e| parse(1, e.to_string()))?.clone();
    let recs: Vec<csv::StringRecord> = rdr
        .records()
        .collect::<Result<_, _>>()
        .map_err(|e| parse(e.position().map_or(0, |p| p.line()), e.to_string()))?;
    let mut t = String::from("<table class=\"summary\">\n<thead><tr>");
    let _ = write!(t, "<th>figure</th><th>unit</th>");
    for r in &recs {
        let _ = write!(t, "<th>{}</th>", escape(r.get(0).unwrap_or("")));
    }
    t.push_str("</tr></thead>\n<tbody>\n");
    for (i, h) in headers.iter().enumerate().skip(1) {
        // The split by cause has its own section ("Where each saving comes from").
        if h.starts_with("saving_") {
            continue;
        }
        let (name, unit, how) = COLUMNS
            .iter()
            .find(|c| c.0 == h)
            .map_or((h, "", Show::Text), |c| (c.1, c.2, c.3));
        let unit = if unit == CURRENCY {
            currency.unwrap_or("currency units")
        } else {
            unit
        };
        let _ = write!(
            t,
            "<tr><td title=\"{}\">{}</td><td class=\"unit\">{}</td>",
            escape(h),
            escape(name),
            escape(unit)
        );
        for r in &recs {
            let _ = write!(
                t,
                "<td>{}</td>",
                escape(&shown(r.get(i).unwrap_or(""), how))
            );
        }
        t.push_str("</tr>\n");
    }
    t.push_str("</tbody>\n</table>\n");
    Ok(t)
}

/// An SVG file's markup ready to inline (any XML declaration or doctype dropped).
fn inline_svg(text: &str) -> &str {
    match text.find("<svg") {
        Some(i) => &text[i..],
        None => "",
    }
}

/// Write `dir/report.html` from the folder's files (summary.csv, scenario.toml, run_info.json and the
/// plot SVGs present); returns its path.
pub fn write_report(
    dir: &Path,
    summary: &[SummaryRow],
    info: Option<&RunInfo>,
) -> Result<PathBuf, PlotError> {
    let name = info.map_or_else(
        || {
            dir.file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("run")
                .to_string()
        },
        |i| i.scenario.clone(),
    );
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>moesim report: {}</title>\n<style>\n{}</style>\n</head>\n<body>\n",
        escape(&name),
        CSS
    );
    let _ = writeln!(h, "<h1>moesim report: {}</h1>", escape(&name));
    if let Some(i) = info {
        let _ = writeln!(
            h,
            "<p class=\"meta\">moesim {} · scenario file <code>{}</code> · seed {} · {} × {} · PUE {:.2} · grid {} (mean {:.0} gCO2e/kWh)</p>",
            escape(&i.moesim_version),
            escape(&i.scenario_file),
            i.seed,
            i.gpus,
            escape(&i.accelerator),
            i.pue,
            escape(&i.grid),
            i.grid_mean_ci_g_per_kwh
        );
    }
    // Headline: circadian vs moe when both ran.
    let find = |s: &str| summary.iter().find(|r| r.strategy == s);
    if let (Some(m), Some(c)) = (find("moe"), find("circadian")) {
        let pct = |a: f64, b: f64| {
            if a > 0.0 {
                100.0 * (b - a) / a
            } else {
                f64::NAN
            }
        };
        let _ = writeln!(
            h,
            "<p class=\"headline\">circadian vs moe {}: CO2e {:+.1} %, facility energy {:+.1} %, wall-clock {:+.1} h</p>",
            if c.compare == "tokens" {
                "at equal tokens".to_string()
            } else if c.target_loss.is_finite() {
                format!("at equal estimated loss {:.3}", c.target_loss)
            } else {
                String::new()
            },
            pct(m.co2_kg, c.co2_kg),
            pct(m.energy_facility_kwh, c.energy_facility_kwh),
            c.wall_clock_h - m.wall_clock_h
        );
    }
    h.push_str("<h2>Summary</h2>\n");
    let currency = info.and_then(|i| i.currency.as_deref());
    h.push_str(&summary_table(&dir.join("summary.csv"), currency)?);
    h.push_str("<p class=\"note\">– : not applicable. Hover a figure's name for its column in summary.csv.</p>\n");
    h.push_str(&super::carbon::html_section(summary));
    h.push_str(&super::html_uncertainty::section(dir)?);
    h.push_str(&super::sites::html_section(dir)?);
    h.push_str(&super::savings::savings_html(summary));
    for (stem, title) in SECTIONS {
        if let Some(svg) = read_text(&dir.join(format!("{stem}.svg")))? {
            let _ = writeln!(
                h,
                "<h2>{}</h2>\n<figure id=\"{stem}\">{}</figure>",
                escape(title),
                inline_svg(&svg)
            );
        }
    }
    h.push_str("<h2>Sources and model versions</h2>\n<ul>\n");
    if let Some(i) = info {
        let _ = writeln!(h, "<li>Accelerator {}:<ul>", escape(&i.accelerator));
        for s in &i.accelerator_sources {
            let _ = writeln!(h, "<li>{}</li>", escape(s));
        }
        h.push_str("</ul></li>\n");
        let _ = writeln!(h, "<li>Grid series: {}", escape(&i.grid));
        if !i.grid_notes.is_empty() {
            h.push_str("<ul>\n");
            for n in &i.grid_notes {
                let _ = writeln!(h, "<li>{}</li>", escape(n));
            }
            h.push_str("</ul>\n");
        }
        h.push_str("</li>\n");
        let _ = writeln!(h, "<li>Routing: {}</li>", escape(&i.routing));
        let _ = writeln!(
            h,
            "<li>Facility overhead: constant PUE {:.2} (from the scenario)</li>",
            i.pue
        );
        h.push_str("<li>Loss laws:<ul>\n");
        for l in &i.loss_laws {
            let _ = writeln!(h, "<li>{}</li>", escape(l));
        }
        h.push_str("</ul></li>\n");
        if !i.schedules.is_empty() {
            h.push_str("<li>Schedules over training progress:<ul>\n");
            for l in &i.schedules {
                let _ = writeln!(h, "<li>{}</li>", escape(l));
            }
            h.push_str("</ul></li>\n");
        }
    } else {
        for r in summary {
            let _ = writeln!(
                h,
                "<li>Loss law ({}): {}</li>",
                escape(&r.strategy),
                escape(&r.loss_law)
            );
        }
        h.push_str(
            "<li>(no run_info.json in the folder: accelerator and grid sources unknown)</li>\n",
        );
    }
    h.push_str("</ul>\n");
    if let Some(text) = read_text(&dir.join("scenario.toml"))? {
        let _ = writeln!(
            h,
            "<h2>Scenario</h2>\n<pre class=\"scenario\">{}</pre>",
            escape(&text)
        );
    }
    h.push_str("</body>\n</html>\n");
    let path = dir.join("report.html");
    write_atomic(&path, h.as_bytes())?;
    Ok(path)
}

const CSS: &str = "body { font-family: 'DejaVu Sans', Arial, sans-serif; max-width: 1500px; margin: 2em auto; padding: 0 1em; color: #222; }
h1 { font-size: 1.7em; margin-bottom: 0.2em; }
h2 { font-size: 1.25em; margin-top: 1.6em; border-bottom: 1px solid #ccc; }
.meta { color: #555; }
.headline { font-weight: bold; }
.note { color: #666; font-size: 0.85em; }
table.summary { border-collapse: collapse; font-size: 0.9em; }
table.summary th, table.summary td { border: 1px solid #ddd; padding: 3px 10px; text-align: right; }
table.summary td:first-child, table.summary th:first-child { text-align: left; }
table.summary td.unit { text-align: left; color: #666; }
table.summary td { max-width: 24em; }
table.summary tbody tr:nth-child(even) { background: #f6f6f6; }
figure { margin: 0.5em 0; overflow-x: auto; }
figure svg { max-width: 100%; height: auto; }
pre.scenario { background: #f6f6f6; padding: 1em; overflow-x: auto; font-size: 0.85em; }
";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::html_columns::cell;

    #[test]
    fn escape_covers_markup_characters() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn cells_round_numbers_and_keep_text() {
        assert_eq!(cell("1234.5678"), "1234.6");
        assert_eq!(cell("0.5592030815"), "0.5592");
        assert_eq!(cell("6.87675663"), "6.877");
        assert_eq!(cell("0.005243638"), "0.005244");
        assert_eq!(cell("28611"), "28611");
        assert_eq!(cell("NaN"), "–");
        assert_eq!(cell("Krajewski"), "Krajewski");
    }

    // Every summary column has a human name in the report: a new column cannot show up raw.
    #[test]
    fn every_summary_column_has_a_display_name() {
        let cols = crate::report::summary_columns();
        assert_eq!(cols.len(), COLUMNS.len());
        for (c, d) in cols.iter().zip(COLUMNS.iter()) {
            assert_eq!(c, d.0, "COLUMNS out of order with summary.csv");
            assert!(!d.1.contains('_'), "{c} shown raw");
        }
    }

    #[test]
    fn fractions_show_as_percent_and_empty_as_dash() {
        assert_eq!(shown("0.232438", Show::Pct), "23.2 %");
        assert_eq!(shown("", Show::Num), "–");
        assert_eq!(shown("true", Show::Text), "yes");
        assert_eq!(shown("2.6659", Show::Num), "2.666");
    }

    #[test]
    fn inline_svg_drops_the_xml_declaration() {
        assert_eq!(inline_svg("<?xml version=\"1.0\"?>\n<svg a>"), "<svg a>");
    }
}
