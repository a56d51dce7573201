//! The multi-region comparison out: sites.csv, its console table and the HTML report's section.

use super::html::escape;
use super::plots_data::PlotError;
use crate::sim::multi::{SiteRun, SitesResults};
use crate::sim::Results;
use std::fmt::Write as _;
use std::path::Path;

/// Columns of sites.csv, in order.
pub const SITES_COLUMNS: [&str; 14] = [
    "mode",
    "sites_used",
    "co2_kg",
    "energy_facility_kwh",
    "wan_energy_kwh",
    "wan_co2_kg",
    "wall_clock_h",
    "cost",
    "estimated_loss",
    "loss_law",
    "tokens",
    "moves_or_syncs",
    "gpu_hours",
    "deadline_met",
];

fn num(v: f64, prec: usize) -> String {
    if v.is_finite() {
        format!("{v:.prec$}")
    } else {
        String::new()
    }
}

/// Hours trained at each site that trained: "CISO 30.0 h; ERCO 12.5 h".
fn used(r: &SiteRun, names: &[String]) -> String {
    r.trained_s
        .iter()
        .zip(names)
        .filter(|(s, _)| **s > 0.0)
        .map(|(s, n)| format!("{n} {:.1} h", s / 3600.0))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The cells of one row, in [`SITES_COLUMNS`] order.
fn cells(r: &SiteRun, names: &[String]) -> [String; 14] {
    [
        r.name.clone(),
        used(r, names),
        num(r.co2_kg(), 3),
        num(r.energy_j() / 3.6e6, 3),
        num(r.wan_j / 3.6e6, 3),
        num(r.wan_co2_kg, 3),
        num(r.wall_s / 3600.0, 3),
        num(r.cost(), 2),
        r.loss.as_ref().map_or(String::new(), |l| num(l.loss, 4)),
        r.loss.as_ref().map_or(String::new(), |l| l.law.to_string()),
        num(r.tokens, 0),
        r.moves.to_string(),
        num(r.gpu_hours, 2),
        r.deadline_met.to_string(),
    ]
}

/// sites.csv of a run with a multi-region job (None without one).
pub fn sites_csv(res: &Results) -> Option<Result<Vec<u8>, csv::Error>> {
    let s = res.sites.as_ref()?;
    let mut w = csv::Writer::from_writer(Vec::new());
    let fill = |w: &mut csv::Writer<Vec<u8>>| -> Result<(), csv::Error> {
        w.write_record(SITES_COLUMNS)?;
        for r in &s.runs {
            w.write_record(cells(r, &s.site_names))?;
        }
        w.flush()?;
        Ok(())
    };
    Some(fill(&mut w).and_then(|_| w.into_inner().map_err(|e| csv::Error::from(e.into_error()))))
}

/// The console table of the multi-region comparison (None without one).
pub fn sites_table(res: &Results) -> Option<String> {
    let s: &SitesResults = res.sites.as_ref()?;
    let mut out = format!(
        "multi-region job over {} (deadline {:.0} h; follow the night: planner {}; geo-distributed: sync every {} steps)\n",
        s.site_names.join(", "),
        s.deadline_s / 3600.0,
        s.planner,
        s.sync_every_steps
    );
    let _ = writeln!(
        out,
        "{:<18} {:>11} {:>12} {:>9} {:>10} {:>9} {:>7} {:>9}  sites",
        "mode", "CO2e kg", "energy kWh", "WAN kWh", "wall h", "cost", "moves", "est.loss"
    );
    for r in &s.runs {
        let _ = writeln!(
            out,
            "{:<18} {:>11.1} {:>12.1} {:>9.3} {:>10.1} {:>9.0} {:>7} {:>9}  {}{}",
            r.name,
            r.co2_kg(),
            r.energy_j() / 3.6e6,
            r.wan_j / 3.6e6,
            r.wall_s / 3600.0,
            r.cost(),
            r.moves,
            r.loss
                .as_ref()
                .map_or("–".to_string(), |l| format!("{:.4}", l.loss)),
            used(r, &s.site_names),
            if r.deadline_met {
                ""
            } else {
                "  (misses the deadline)"
            }
        );
    }
    Some(out)
}

/// The report's "Across regions" section from `dir/sites.csv` (empty when there is none).
pub(super) fn html_section(dir: &Path) -> Result<String, PlotError> {
    let path = dir.join("sites.csv");
    if !path.exists() {
        return Ok(String::new());
    }
    let bad = |e: csv::Error| PlotError::Parse {
        path: path.clone(),
        line: e.position().map_or(0, |p| p.line()),
        msg: e.to_string(),
    };
    let mut rd = csv::Reader::from_path(&path).map_err(bad)?;
    let mut h = String::from("<h2>Across regions</h2>\n<p class=\"note\">The same job at each site alone, following the night between sites (checkpoint moves over the WAN), and geo-distributed data parallel (WAN synchronisation); sites.csv holds every column.</p>\n<table>\n<tr>");
    let headers = rd.headers().map_err(bad)?.clone();
    for c in headers.iter() {
        let _ = write!(h, "<th>{}</th>", escape(c));
    }
    h.push_str("</tr>\n");
    for rec in rd.records() {
        let rec = rec.map_err(bad)?;
        h.push_str("<tr>");
        for (c, name) in rec.iter().zip(headers.iter()) {
            // The law's name up to its equation references (sites.csv keeps the whole name).
            let c = if name == "loss_law" {
                c.split(" (").next().unwrap_or(c)
            } else {
                c
            };
            let _ = write!(h, "<td>{}</td>", escape(c));
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</table>\n");
    Ok(h)
}
