//! The shareable report: `report.html`, one self-contained page (plots inlined as SVG, summary table, scenario, sources).

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

/// How a summary column is shown in the report.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Show {
    /// A number in the unit given.
    Num,
    /// A fraction shown as a percentage.
    Pct,
    /// Text as written (`true`/`false` shown as yes/no).
    Text,
}

/// Display name, unit (empty: none; `CURRENCY`: the run's currency) and rendering of every column of
/// summary.csv; a test holds it to `summary_columns()` so a new column cannot appear raw.
const COLUMNS: [(&str, &str, &str, Show); 86] = [
    ("strategy", "strategy", "", Show::Text),
    ("model", "model", "", Show::Text),
    ("params_total_b", "parameters, total", "billion", Show::Num),
    (
        "params_active_b",
        "parameters, active per token",
        "billion",
        Show::Num,
    ),
    ("tokens", "tokens trained", "", Show::Num),
    ("steps", "optimizer steps", "", Show::Num),
    ("wall_clock_h", "wall-clock time", "h", Show::Num),
    ("gpu_hours", "GPU-hours", "h", Show::Num),
    (
        "energy_it_kwh",
        "energy, IT (GPUs, nodes, network)",
        "kWh",
        Show::Num,
    ),
    (
        "energy_facility_kwh",
        "energy, facility (IT × PUE)",
        "kWh",
        Show::Num,
    ),
    ("energy_gpu_kwh", "energy, GPUs", "kWh", Show::Num),
    (
        "energy_waiting_kwh",
        "energy, GPUs waiting",
        "kWh",
        Show::Num,
    ),
    ("energy_node_kwh", "energy, node overhead", "kWh", Show::Num),
    (
        "energy_network_kwh",
        "energy, network switches",
        "kWh",
        Show::Num,
    ),
    (
        "energy_cooling_kwh",
        "energy, cooling and facility",
        "kWh",
        Show::Num,
    ),
    ("co2_kg", "emissions", "kg CO2e", Show::Num),
    (
        "co2_average_kg",
        "emissions, average carbon signal",
        "kg CO2e",
        Show::Num,
    ),
    (
        "co2_marginal_kg",
        "emissions, marginal carbon signal",
        "kg CO2e",
        Show::Num,
    ),
    ("cost", "electricity cost", CURRENCY, Show::Num),
    ("avg_facility_kw", "facility power, mean", "kW", Show::Num),
    ("peak_facility_kw", "facility power, peak", "kW", Show::Num),
    (
        "kwh_per_mtok",
        "facility energy per million tokens",
        "kWh",
        Show::Num,
    ),
    ("hours_full", "time at full speed", "h", Show::Num),
    ("hours_throttled", "time throttled", "h", Show::Num),
    ("hours_paused", "time paused", "h", Show::Num),
    ("pauses", "pauses", "", Show::Num),
    ("mean_step_s", "step time, mean", "s", Show::Num),
    ("p99_step_s", "step time, 99th percentile", "s", Show::Num),
    ("mfu", "model FLOPs utilisation (MFU)", "%", Show::Pct),
    (
        "dropped_share",
        "expert assignments dropped at capacity",
        "%",
        Show::Pct,
    ),
    (
        "gating_share",
        "router (gating) share of step time",
        "%",
        Show::Pct,
    ),
    (
        "straggler_share",
        "straggler share of step time",
        "%",
        Show::Pct,
    ),
    (
        "comm_share",
        "exposed communication share of step time",
        "%",
        Show::Pct,
    ),
    ("estimated_loss", "estimated final loss", "", Show::Num),
    ("loss_law", "loss estimated by", "", Show::Text),
    (
        "chinchilla_loss",
        "loss by Chinchilla (dense only)",
        "",
        Show::Num,
    ),
    (
        "moved_expert_slots",
        "expert slots moved by rebalancing",
        "",
        Show::Num,
    ),
    ("routing", "routing", "", Show::Text),
    ("deadline_h", "deadline (after start)", "h", Show::Num),
    ("deadline_met", "deadline met", "", Show::Text),
    ("compare", "compared at equal", "", Show::Text),
    ("target_loss", "target estimated loss", "", Show::Num),
    (
        "loss_warning",
        "loss law used outside its fitted range",
        "",
        Show::Text,
    ),
    (
        "saving_rest_co2_kg",
        "CO2e saved vs moe: rest (routing sample)",
        "kg CO2e",
        Show::Num,
    ),
    (
        "saving_rest_energy_kwh",
        "facility energy saved vs moe: rest (routing sample)",
        "kWh",
        Show::Num,
    ),
    (
        "saving_rest_time_h",
        "wall-clock saved vs moe: rest (routing sample)",
        "h",
        Show::Num,
    ),
    (
        "saving_time_shift_co2_kg",
        "CO2e saved vs moe: time shifting",
        "kg CO2e",
        Show::Num,
    ),
    (
        "saving_time_shift_energy_kwh",
        "facility energy saved vs moe: time shifting",
        "kWh",
        Show::Num,
    ),
    (
        "saving_time_shift_time_h",
        "wall-clock saved vs moe: time shifting",
        "h",
        Show::Num,
    ),
    (
        "saving_pue_co2_kg",
        "CO2e saved vs moe: weather / PUE",
        "kg CO2e",
        Show::Num,
    ),
    (
        "saving_pue_energy_kwh",
        "facility energy saved vs moe: weather / PUE",
        "kWh",
        Show::Num,
    ),
    (
        "saving_pue_time_h",
        "wall-clock saved vs moe: weather / PUE",
        "h",
        Show::Num,
    ),
    (
        "saving_pause_overhead_co2_kg",
        "CO2e saved vs moe: pause/restore overhead",
        "kg CO2e",
        Show::Num,
    ),
    (
        "saving_pause_overhead_energy_kwh",
        "facility energy saved vs moe: pause/restore overhead",
        "kWh",
        Show::Num,
    ),
    (
        "saving_pause_overhead_time_h",
        "wall-clock saved vs moe: pause/restore overhead",
        "h",
        Show::Num,
    ),
    (
        "saving_power_cap_co2_kg",
        "CO2e saved vs moe: power cap",
        "kg CO2e",
        Show::Num,
    ),
    (
        "saving_power_cap_energy_kwh",
        "facility energy saved vs moe: power cap",
        "kWh",
        Show::Num,
    ),
    (
        "saving_power_cap_time_h",
        "wall-clock saved vs moe: power cap",
        "h",
        Show::Num,
    ),
    (
        "saving_batch_co2_kg",
        "CO2e saved vs moe: batch change",
        "kg CO2e",
        Show::Num,
    ),
    (
        "saving_batch_energy_kwh",
        "facility energy saved vs moe: batch change",
        "kWh",
        Show::Num,
    ),
    (
        "saving_batch_time_h",
        "wall-clock saved vs moe: batch change",
        "h",
        Show::Num,
    ),
    (
        "saving_routing_co2_kg",
        "CO2e saved vs moe: top-k / routing change",
        "kg CO2e",
        Show::Num,
    ),
    (
        "saving_routing_energy_kwh",
        "facility energy saved vs moe: top-k / routing change",
        "kWh",
        Show::Num,
    ),
    (
        "saving_routing_time_h",
        "wall-clock saved vs moe: top-k / routing change",
        "h",
        Show::Num,
    ),
    (
        "saving_model_co2_kg",
        "CO2e saved vs moe: dense model (per token)",
        "kg CO2e",
        Show::Num,
    ),
    (
        "saving_model_energy_kwh",
        "facility energy saved vs moe: dense model (per token)",
        "kWh",
        Show::Num,
    ),
    (
        "saving_model_time_h",
        "wall-clock saved vs moe: dense model (per token)",
        "h",
        Show::Num,
    ),
    (
        "saving_tokens_co2_kg",
        "CO2e saved vs moe: tokens to equal loss",
        "kg CO2e",
        Show::Num,
    ),
    (
        "saving_tokens_energy_kwh",
        "facility energy saved vs moe: tokens to equal loss",
        "kWh",
        Show::Num,
    ),
    (
        "saving_tokens_time_h",
        "wall-clock saved vs moe: tokens to equal loss",
        "h",
        Show::Num,
    ),
    ("cost_electricity", "cost: electricity", CURRENCY, Show::Num),
    (
        "cost_carbon",
        "cost: carbon price × tonnes CO2e",
        CURRENCY,
        Show::Num,
    ),
    (
        "cost_tax",
        "cost: compute-hour tax × GPU-hours held",
        CURRENCY,
        Show::Num,
    ),
    (
        "cost_levy",
        "cost: levy × facility kWh",
        CURRENCY,
        Show::Num,
    ),
    (
        "cost_total",
        "cost: total of the terms",
        CURRENCY,
        Show::Num,
    ),
    (
        "hints_followed",
        "grid hints: intervals followed",
        "",
        Show::Num,
    ),
    (
        "hints_deviated",
        "grid hints: intervals departed from",
        "",
        Show::Num,
    ),
    (
        "hints_none",
        "grid hints: intervals with no hint",
        "",
        Show::Num,
    ),
    ("max_swing_mw", "power: largest swing", "MW", Show::Num),
    (
        "max_ramp_mw_per_s",
        "power: steepest ramp",
        "MW/s",
        Show::Num,
    ),
    (
        "swings_per_h",
        "power: swings above the threshold",
        "per hour",
        Show::Num,
    ),
    (
        "swing_threshold_mw",
        "power: swing threshold",
        "MW",
        Show::Num,
    ),
    (
        "step_variance_share",
        "power: variance within steps",
        "",
        Show::Pct,
    ),
    (
        "floor_filler_kwh",
        "power floor: filler energy",
        "kWh",
        Show::Num,
    ),
    (
        "ramp_filler_kwh",
        "ramp limit: filler energy",
        "kWh",
        Show::Num,
    ),
    (
        "mitigation_co2_kg",
        "power mitigations: CO2e",
        "kg",
        Show::Num,
    ),
];

/// Stands for the run's currency in `COLUMNS`.
const CURRENCY: &str = "\u{a4}";

/// A cell as the report shows it: a number rounded (a fraction as a percentage), `–` for a
/// not-applicable (empty) cell, text as is.
fn shown(v: &str, how: Show) -> String {
    match how {
        Show::Text => match v {
            "true" => "yes".into(),
            "false" => "no".into(),
            "" => "–".into(),
            _ => v.to_string(),
        },
        Show::Pct => match v.trim().parse::<f64>() {
            Ok(x) if x.is_finite() => format!("{:.1} %", x * 100.0),
            _ => "–".into(),
        },
        Show::Num if v.trim().is_empty() => "–".into(),
        Show::Num => cell(v),
    }
}

/// A CSV cell for the table: numbers rounded to a readable precision, text as is.
fn cell(v: &str) -> String {
    match v.trim().parse::<f64>() {
        Ok(x) if !x.is_finite() => "–".into(),
        Ok(x) if x == x.trunc() && x.abs() < 1e9 => format!("{x:.0}"),
        Ok(x) if x.abs() >= 1e9 => format!("{x:.3e}"),
        Ok(x) if x.abs() >= 100.0 => format!("{x:.1}"),
        // About four significant figures below 100.
        Ok(x) => {
            let decimals = if x.abs() >= 10.0 {
                2
            } else if x.abs() >= 1.0 {
                3
            } else {
                (3 - x.abs().log10().floor() as i32).clamp(3, 8) as usize
            };
            let s = format!("{x:.decimals$}");
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        }
        Err(_) => v.to_string(),
    }
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
