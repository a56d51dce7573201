//! Each saving against moe split by cause, as console text and as an HTML table, read from the summary
//! rows' `saving_*` columns (so `moesim plot` renders a folder exactly as `moesim run` printed it).

use super::html::escape;
use super::summary::SummaryRow;
use std::fmt::Write as _;

/// The sentence that states how a split was made (printed above every split).
const METHOD: &str = "sequential attribution: counterfactual runs of this scenario start from moe and switch one cause on at a time, in the order listed, on top of those before it; each part is what its switch changed, so the parts sum to the whole (a part depends on the order)";

/// The splits of `rows` as console text: per strategy with a split, one line per cause with the CO2,
/// facility energy and wall-clock saved (positive = less than moe), and the total. Empty without splits.
pub fn savings_text(rows: &[SummaryRow]) -> String {
    let mut out = String::new();
    for r in rows {
        let causes = r.saving_causes();
        if causes.is_empty() {
            continue;
        }
        if out.is_empty() {
            let _ = writeln!(
                out,
                "\nwhere each saving against moe comes from — {METHOD}:"
            );
        }
        let _ = writeln!(out, "{} vs moe:", r.strategy);
        let _ = writeln!(
            out,
            "  {:<26} {:>14} {:>18} {:>14}",
            "cause", "CO2e saved", "facility energy", "wall-clock"
        );
        let mut total = (0.0, 0.0, 0.0);
        for c in causes {
            let (co2, e, t) = r.saving(c);
            total = (total.0 + co2, total.1 + e, total.2 + t);
            let _ = writeln!(
                out,
                "  {:<26} {:>11.2} kg {:>14.2} kWh {:>12.2} h",
                c.label(),
                tidy(co2),
                tidy(e),
                tidy(t)
            );
        }
        let _ = writeln!(
            out,
            "  {:<26} {:>11.2} kg {:>14.2} kWh {:>12.2} h",
            "total",
            tidy(total.0),
            tidy(total.1),
            tidy(total.2)
        );
    }
    out
}

/// `v` with a value that rounds to zero at two decimals shown as 0.00 rather than -0.00.
fn tidy(v: f64) -> f64 {
    if v.abs() < 0.005 {
        0.0
    } else {
        v
    }
}

/// The splits of `rows` as an HTML section (heading, method, one table per strategy); empty without splits.
pub(crate) fn savings_html(rows: &[SummaryRow]) -> String {
    let mut h = String::new();
    for r in rows {
        let causes = r.saving_causes();
        if causes.is_empty() {
            continue;
        }
        if h.is_empty() {
            let _ = writeln!(
                h,
                "<h2>Where each saving comes from</h2>\n<p class=\"note\">{}. Positive: less than moe.</p>",
                escape(METHOD)
            );
        }
        let _ = writeln!(
            h,
            "<table class=\"summary\"><caption>{} vs moe</caption>\n<thead><tr><th>cause</th><th>CO2e saved [kg]</th><th>facility energy saved [kWh]</th><th>wall-clock saved [h]</th></tr></thead>\n<tbody>",
            escape(&r.strategy)
        );
        let mut total = (0.0, 0.0, 0.0);
        for c in causes {
            let (co2, e, t) = r.saving(c);
            total = (total.0 + co2, total.1 + e, total.2 + t);
            let _ = writeln!(
                h,
                "<tr><td title=\"saving_{}_*\">{}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td></tr>",
                c.key(),
                escape(c.label()),
                tidy(co2),
                tidy(e),
                tidy(t)
            );
        }
        let _ = writeln!(
            h,
            "<tr><td><b>total</b></td><td><b>{:.2}</b></td><td><b>{:.2}</b></td><td><b>{:.2}</b></td></tr>\n</tbody></table>",
            total.0, total.1, total.2
        );
    }
    h
}
