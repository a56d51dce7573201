//! The report's summary table columns: display name, unit and rendering of every summary.csv column, and how a cell is shown.

/// How a summary column is shown in the report.
#[derive(Clone, Copy, PartialEq, Debug)]
pub(super) enum Show {
    /// A number in the unit given.
    Num,
    /// A fraction shown as a percentage.
    Pct,
    /// Text as written (`true`/`false` shown as yes/no).
    Text,
}

/// Display name, unit (empty: none; `CURRENCY`: the run's currency) and rendering of every column of
/// summary.csv; a test holds it to `summary_columns()` so a new column cannot appear raw.
pub(super) const COLUMNS: [(&str, &str, &str, Show); 89] = [
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
    (
        "evaluations",
        "evaluations ([training.eval])",
        "",
        Show::Num,
    ),
    ("hours_eval", "time evaluating", "h", Show::Num),
    (
        "eval_kwh",
        "energy of evaluations (facility)",
        "kWh",
        Show::Num,
    ),
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
pub(super) const CURRENCY: &str = "\u{a4}";

/// A cell as the report shows it: a number rounded (a fraction as a percentage), `–` for a
/// not-applicable (empty) cell, text as is.
pub(super) fn shown(v: &str, how: Show) -> String {
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
pub(super) fn cell(v: &str) -> String {
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
