//! The multi-region comparison out: sites.csv, its console table and the HTML report's section.

use super::html::escape;
use super::plots_data::PlotError;
use crate::scenario::sites::CostOrigin;
use crate::sim::multi::{SiteRun, SitesResults};
use crate::sim::Results;
use std::fmt::Write as _;
use std::path::Path;

/// The fixed columns of sites.csv, in order; each site's cost terms follow ([`site_columns`]).
pub const SITES_COLUMNS: [&str; 22] = [
    "mode",
    "sites_used",
    "co2_kg",
    "energy_facility_kwh",
    "wan_energy_kwh",
    "wan_co2_kg",
    "wall_clock_h",
    "cost",
    "cost_electricity",
    "cost_carbon",
    "cost_tax",
    "cost_levy",
    "cost_wan",
    "estimated_loss",
    "sync_loss_penalty_pct",
    "loss_law",
    "tokens",
    "moves_or_syncs",
    "gpu_hours",
    "deadline_met",
    "objective",
    "planned_on",
];

/// The cost terms of a site, as the column names end.
const TERMS: [&str; 4] = ["electricity", "carbon", "tax", "levy"];

/// Each site's cost-term columns, after [`SITES_COLUMNS`]: `cost_<site>_<term>` for electricity,
/// carbon, tax and levy (site names are letters, digits, `_` and `-`).
pub fn site_columns(names: &[String]) -> Vec<String> {
    names
        .iter()
        .flat_map(|n| TERMS.iter().map(move |t| format!("cost_{n}_{t}")))
        .collect()
}

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

/// What the planners planned on: "perfect foresight" (every site's real series), or each site's
/// forecast file and which sites had none. Empty for a single site (nothing is planned).
fn planned_on(r: &SiteRun, s: &SitesResults) -> String {
    if r.name.starts_with("single:") {
        return String::new();
    }
    let perfect: Vec<&str> = s
        .sites
        .iter()
        .filter(|i| i.planned_on == "perfect foresight")
        .map(|i| i.name.as_str())
        .collect();
    if perfect.len() == s.sites.len() {
        return "perfect foresight".into();
    }
    let mut parts: Vec<String> = s
        .sites
        .iter()
        .filter(|i| i.planned_on != "perfect foresight")
        .map(|i| format!("{}: {}", i.name, i.planned_on))
        .collect();
    if !perfect.is_empty() {
        parts.push(format!("{}: perfect foresight", perfect.join(", ")));
    }
    parts.join("; ")
}

/// The cells of one row: [`SITES_COLUMNS`] then [`site_columns`].
fn cells(r: &SiteRun, s: &SitesResults) -> Vec<String> {
    let names = &s.site_names;
    let t = r.cost_terms();
    let mut c = vec![
        r.name.clone(),
        used(r, names),
        num(r.co2_kg(), 3),
        num(r.energy_j() / 3.6e6, 3),
        num(r.wan_j / 3.6e6, 3),
        num(r.wan_co2_kg, 3),
        num(r.wall_s / 3600.0, 3),
        num(r.cost(), 2),
        num(t.electricity, 2),
        num(t.carbon, 2),
        num(t.tax, 2),
        num(t.levy, 2),
        num(r.wan_terms.total(), 2),
        r.loss.as_ref().map_or(String::new(), |l| num(l.loss, 4)),
        num(r.sync_penalty * 100.0, 3),
        r.loss.as_ref().map_or(String::new(), |l| l.law.to_string()),
        num(r.tokens, 0),
        r.moves.to_string(),
        num(r.gpu_hours, 2),
        r.deadline_met.to_string(),
        s.objective.name().to_string(),
        planned_on(r, s),
    ];
    for st in &r.site_terms {
        c.extend([st.electricity, st.carbon, st.tax, st.levy].map(|v| num(v, 2)));
    }
    c
}

/// sites.csv of a run with a multi-region job (None without one).
pub fn sites_csv(res: &Results) -> Option<Result<Vec<u8>, csv::Error>> {
    let s = res.sites.as_ref()?;
    let mut w = csv::Writer::from_writer(Vec::new());
    let fill = |w: &mut csv::Writer<Vec<u8>>| -> Result<(), csv::Error> {
        let mut header: Vec<String> = SITES_COLUMNS.iter().map(|c| c.to_string()).collect();
        header.extend(site_columns(&s.site_names));
        w.write_record(&header)?;
        for r in &s.runs {
            w.write_record(cells(r, s))?;
        }
        w.flush()?;
        Ok(())
    };
    Some(fill(&mut w).and_then(|_| w.into_inner().map_err(|e| csv::Error::from(e.into_error()))))
}

/// Where a site's cost terms come from, in words.
fn origin(o: CostOrigin) -> &'static str {
    match o {
        CostOrigin::None => "electricity at its grid's price only (no [cost])",
        CostOrigin::Site => "its [site.cost] (carbon price, tax, levy it leaves out: [cost]'s)",
        CostOrigin::TopLevel => {
            "the top-level [cost]'s carbon price, tax and levy (no [site.cost])"
        }
    }
}

/// The console table of the multi-region comparison (None without one).
pub fn sites_table(res: &Results) -> Option<String> {
    let s: &SitesResults = res.sites.as_ref()?;
    let mut out = format!(
        "multi-region job over {} (deadline {:.0} h; objective {}; follow the night: planner {}; geo-distributed: sync every {} steps)\n",
        s.site_names.join(", "),
        s.deadline_s / 3600.0,
        s.objective.name(),
        s.planner,
        s.sync_every_steps
    );
    let _ = writeln!(
        out,
        "{:<18} {:>11} {:>12} {:>9} {:>10} {:>9} {:>7} {:>9} {:>7}  sites",
        "mode", "CO2e kg", "energy kWh", "WAN kWh", "wall h", "cost", "moves", "est.loss", "sync+%"
    );
    for r in &s.runs {
        let _ = writeln!(
            out,
            "{:<18} {:>11.1} {:>12.1} {:>9.3} {:>10.1} {:>9.0} {:>7} {:>9} {:>7.2}  {}{}",
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
            r.sync_penalty * 100.0,
            used(r, &s.site_names),
            if r.deadline_met {
                ""
            } else {
                "  (misses the deadline)"
            }
        );
    }
    if let Some(r) = s.runs.iter().find(|r| !r.name.starts_with("single:")) {
        let _ = writeln!(out, "planned on: {}", planned_on(r, s));
    }
    for i in &s.sites {
        let _ = writeln!(out, "cost at {}: {}", i.name, origin(i.cost_origin));
    }
    let _ = write!(
        out,
        "sync+%: the loss penalty of synchronising every {} steps over the WAN at equal tokens (Streaming DiLoCo, Douillard et al. 2025, arXiv 2501.18512, Table 6; models above 1B params take the 1B row), bought back in extra tokens (tokens in sites.csv) so every mode reaches the same loss; cost terms per site in sites.csv",
        s.sync_every_steps
    );
    Some(out)
}

/// The multi-region comparison as JSON (None without one): the settings, each site, and each mode
/// with its totals, cost terms (overall, per site and the WAN's) and estimated loss.
pub fn sites_json(res: &Results) -> Option<serde_json::Value> {
    let s: &SitesResults = res.sites.as_ref()?;
    let terms = |t: &crate::cost::CostTerms| serde_json::json!({ "electricity": t.electricity, "carbon": t.carbon, "tax": t.tax, "levy": t.levy, "total": t.total() });
    let sites: Vec<_> = s
        .sites
        .iter()
        .map(|i| serde_json::json!({ "name": i.name, "gpus": i.gpus, "network_w": i.network_w, "planned_on": i.planned_on, "cost_from": origin(i.cost_origin) }))
        .collect();
    let modes: Vec<_> = s
        .runs
        .iter()
        .map(|r| {
            let by_site: serde_json::Map<String, serde_json::Value> = s
                .site_names
                .iter()
                .zip(&r.site_terms)
                .map(|(n, t)| (n.clone(), terms(t)))
                .collect();
            let fin = |v: f64| if v.is_finite() { Some(v) } else { None };
            serde_json::json!({
                "mode": r.name,
                "co2_kg": r.co2_kg(),
                "energy_facility_kwh": r.energy_j() / 3.6e6,
                "wan_energy_kwh": r.wan_j / 3.6e6,
                "wan_co2_kg": r.wan_co2_kg,
                "wall_clock_h": fin(r.wall_s / 3600.0),
                "cost": terms(&r.cost_terms()),
                "cost_by_site": by_site,
                "cost_wan": terms(&r.wan_terms),
                "estimated_loss": r.loss.as_ref().map(|l| l.loss),
                "loss_law": r.loss.as_ref().map(|l| l.law),
                "sync_loss_penalty": r.sync_penalty,
                "tokens": r.tokens,
                "moves_or_syncs": r.moves,
                "gpu_hours": r.gpu_hours,
                "hours_trained_by_site": s.site_names.iter().zip(&r.trained_s).map(|(n, t)| (n.clone(), serde_json::json!(t / 3600.0))).collect::<serde_json::Map<_, _>>(),
                "deadline_met": r.deadline_met,
                "planned_on": planned_on(r, s),
            })
        })
        .collect();
    Some(serde_json::json!({
        "sites": sites,
        "deadline_h": s.deadline_s / 3600.0,
        "objective": s.objective.name(),
        "planner": s.planner,
        "sync_every_steps": s.sync_every_steps,
        "modes": modes,
    }))
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
