//! The comparison table `moesim run` prints: one column per strategy, what they were compared at, loss
//! law warnings, the relative differences against moe and each saving split by cause.

use super::summary::{summary_rows, SummaryRow};
use crate::sim::{Goal, Results};

/// Energy with about three significant figures.
fn kwh_text(kwh: f64) -> String {
    if kwh >= 1e5 {
        format!("{:.1} MWh", kwh / 1e3)
    } else if kwh >= 100.0 {
        format!("{kwh:.0} kWh")
    } else if kwh >= 10.0 {
        format!("{kwh:.1} kWh")
    } else {
        format!("{kwh:.2} kWh")
    }
}

fn co2_text(kg: f64) -> String {
    if kg >= 1000.0 {
        format!("{:.2} t", kg / 1000.0)
    } else {
        format!("{kg:.1} kg")
    }
}

/// The comparison table printed to the console.
pub fn table(res: &Results) -> String {
    let rows = summary_rows(res);
    let mut lines: Vec<(String, Vec<String>)> = Vec::new();
    let mut add = |name: &str, f: &dyn Fn(&SummaryRow) -> String| {
        lines.push((name.to_string(), rows.iter().map(f).collect()))
    };
    add("model", &|r| r.model.clone());
    add("params total / active", &|r| {
        format!("{:.1}B / {:.1}B", r.params_total_b, r.params_active_b)
    });
    add("tokens", &|r| format!("{:.3e}", r.tokens));
    add("wall-clock", &|r| format!("{:.1} h", r.wall_clock_h));
    add("GPU-hours", &|r| format!("{:.0}", r.gpu_hours));
    add("energy IT", &|r| kwh_text(r.energy_it_kwh));
    add("energy facility", &|r| kwh_text(r.energy_facility_kwh));
    add("  of which GPUs waiting", &|r| {
        kwh_text(r.energy_waiting_kwh)
    });
    // `[training.eval]`: the evaluations' count, hours and facility energy (in the totals above).
    if rows.iter().any(|r| r.evaluations > 0) {
        add("evaluations: count, time, energy", &|r| {
            format!(
                "{}, {:.2} h, {}",
                r.evaluations,
                r.hours_eval,
                kwh_text(r.eval_kwh)
            )
        });
    }
    add("energy / M tokens", &|r| {
        format!("{:.2} Wh", r.kwh_per_mtok * 1e3)
    });
    add("CO2e", &|r| co2_text(r.co2_kg));
    add("cost", &|r| {
        if r.cost > 0.0 {
            format!("{:.0}", r.cost)
        } else {
            "n/a (no price)".into()
        }
    });
    // The `[cost]` table's terms under the electricity cost, and their sum (`cost` is the first term).
    if rows.iter().any(|r| r.cost_total.is_finite()) {
        add("  + carbon price", &|r| money(r.cost_carbon));
        add("  + compute-hour tax", &|r| money(r.cost_tax));
        add("  + levy", &|r| money(r.cost_levy));
        add("cost total", &|r| money(r.cost_total));
    }
    if rows.iter().any(|r| r.hints_followed.is_some()) {
        add("grid hints followed/deviated/none", &|r| match (
            r.hints_followed,
            r.hints_deviated,
            r.hints_none,
        ) {
            (Some(f), Some(d), Some(n)) => format!("{f}/{d}/{n}"),
            _ => "-".into(),
        });
    }
    add("power swing max / steepest", &|r| {
        format!("{:.3} MW / {:.3} MW/s", r.max_swing_mw, r.max_ramp_mw_per_s)
    });
    add("  swings/h, within-step variance", &|r| {
        format!(
            "{:.1} (≥ {:.3} MW), {:.0} %",
            r.swings_per_h,
            r.swing_threshold_mw,
            r.step_variance_share * 100.0
        )
    });
    if rows
        .iter()
        .any(|r| r.floor_filler_kwh > 0.0 || r.ramp_filler_kwh > 0.0)
    {
        add("  power floor + ramp filler", &|r| {
            format!(
                "{} + {} ({})",
                kwh_text(r.floor_filler_kwh),
                kwh_text(r.ramp_filler_kwh),
                co2_text(r.mitigation_co2_kg)
            )
        });
    }
    add("avg / peak power", &|r| {
        format!("{:.0} / {:.0} kW", r.avg_facility_kw, r.peak_facility_kw)
    });
    add("MFU", &|r| format!("{:.1} %", r.mfu * 100.0));
    add("hours full/thr/paused", &|r| {
        format!(
            "{:.0}/{:.0}/{:.0}",
            r.hours_full, r.hours_throttled, r.hours_paused
        )
    });
    add("step time mean / p99", &|r| {
        format!("{:.3} / {:.3} s", r.mean_step_s, r.p99_step_s)
    });
    add("dropped assignments", &|r| {
        format!("{:.2} %", r.dropped_share * 100.0)
    });
    add("gating share of step", &|r| {
        format!("{:.1} %", r.gating_share * 100.0)
    });
    add("straggler share", &|r| {
        format!("{:.1} %", r.straggler_share * 100.0)
    });
    add("estimated loss", &|r| {
        if r.estimated_loss.is_nan() {
            "n/a".into()
        } else {
            format!("{:.3}", r.estimated_loss)
        }
    });
    add("deadline", &|r| {
        if r.deadline_h.is_nan() {
            "-".into()
        } else {
            format!(
                "{:.0} h ({})",
                r.deadline_h,
                if r.deadline_met == "true" {
                    "met"
                } else {
                    "MISSED"
                }
            )
        }
    });
    let w0 = lines
        .iter()
        .map(|(n, _)| n.chars().count())
        .max()
        .unwrap_or(0);
    let widths: Vec<usize> = (0..rows.len())
        .map(|i| {
            lines
                .iter()
                .map(|(_, v)| v[i].chars().count())
                .chain([rows[i].strategy.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    out.push_str(&format!(
        "strategies compared {}{}\n",
        res.goal.describe(),
        match &res.goal {
            Goal::Loss { whence, .. } => format!(
                " ({whence}; each trains until it reaches it, a step at a lower top-k or with dropped assignments counting for less)"
            ),
            Goal::Tokens { .. } => " (training.compare = \"tokens\": the losses differ)".into(),
        }
    ));
    out.push_str(&format!("{:w0$}", "", w0 = w0));
    for (i, r) in rows.iter().enumerate() {
        out.push_str(&format!("  {:>w$}", r.strategy, w = widths[i]));
    }
    out.push('\n');
    for (name, vals) in &lines {
        out.push_str(&format!("{name:w0$}"));
        for (i, v) in vals.iter().enumerate() {
            out.push_str(&format!("  {:>w$}", v, w = widths[i]));
        }
        out.push('\n');
    }
    let mut routes: Vec<String> = rows
        .iter()
        .filter(|r| !r.routing.is_empty())
        .map(|r| r.routing.clone())
        .collect();
    routes.dedup();
    for r in routes {
        out.push_str(&format!("routing: {r}\n"));
    }
    for st in &res.strategies {
        if let Some(d) = &st.schedule {
            out.push_str(&format!("schedule ({}): {d}\n", st.kind.name()));
        }
    }
    let laws: Vec<String> = rows
        .iter()
        .filter(|r| !r.loss_law.is_empty())
        .map(|r| format!("{}: {}", r.strategy, r.loss_law))
        .collect();
    if !laws.is_empty() {
        out.push_str(&format!("estimated loss by law — {}\n", laws.join("; ")));
    }
    // One line per distinct warning, naming the strategies it concerns.
    let mut warned: Vec<(&str, Vec<&str>)> = Vec::new();
    for r in rows.iter().filter(|r| !r.loss_warning.is_empty()) {
        match warned.iter_mut().find(|w| w.0 == r.loss_warning) {
            Some(w) => w.1.push(&r.strategy),
            None => warned.push((&r.loss_warning, vec![&r.strategy])),
        }
    }
    for (w, who) in warned {
        out.push_str(&format!(
            "warning: the loss law is used outside its fitted range ({}): {w}\n",
            who.join(", ")
        ));
    }
    if let Some(d) = rows.iter().find(|r| !r.chinchilla_loss.is_nan()) {
        out.push_str(&format!("dense model by Chinchilla (Hoffmann et al. 2022, Eq. 10; another data set, not comparable with the line above): {:.3}\n", d.chinchilla_loss));
    }
    // A flat signal leaves nothing to shift: say so rather than let a knob's saving pass for timing.
    let ci = &res.grid.ci_g_per_kwh;
    if !ci.is_empty() {
        let mean = ci.iter().sum::<f64>() / ci.len() as f64;
        let sd = (ci.iter().map(|c| (c - mean) * (c - mean)).sum::<f64>() / ci.len() as f64).sqrt();
        if mean > 0.0 && sd / mean < 0.01 {
            out.push_str(&format!("note: the grid's carbon intensity is flat (variation {:.2} % of its mean): moving work in time cannot save carbon here; a saving can only come from the throttle knobs (energy per token)\n", sd / mean * 100.0));
        }
    }
    if let Some(base) = rows.iter().find(|r| r.strategy == "moe") {
        for r in rows.iter().filter(|r| r.strategy != "moe") {
            out.push_str(&format!(
                "{} vs moe {}: CO2e {:+.1} %, facility energy {:+.1} %, wall-clock {:+.1} h\n",
                r.strategy,
                res.goal.describe(),
                pct(r.co2_kg, base.co2_kg),
                pct(r.energy_facility_kwh, base.energy_facility_kwh),
                r.wall_clock_h - base.wall_clock_h
            ));
        }
    }
    out.push_str(&super::savings::savings_text(&rows));
    out.push_str(&super::carbon::console_lines(&rows, &res.grid));
    out
}

/// A cost with about three significant figures (no decimals from 100 up), or `-` when not given.
fn money(v: f64) -> String {
    if v.is_finite() && v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.is_finite() {
        format!("{v:.2}")
    } else {
        "-".into()
    }
}

fn pct(x: f64, base: f64) -> f64 {
    if base == 0.0 {
        0.0
    } else {
        (x / base - 1.0) * 100.0
    }
}
