//! Per-format read plans: which header is which signal, how stamps are written, fuel emission factors.

use std::path::Path;

use chrono_tz::Tz;

use super::super::error::GridError;
use super::super::series::CiKind;
use super::super::spec::GridFile;
use super::super::stamps::StampStyle;
use super::super::table::{ColumnReq, TableSpec};
use super::super::time::parse_time_zone;

/// Life-cycle emission factors by fuel, gCO2eq/kWh: IPCC AR5 (2014) WG3 Annex III medians as used by
/// Let's Wait Awhile (Wiesner et al. 2021), quoted in /work/shared/data/grid/FORMATS.md; geothermal
/// 38 (IPCC 2014 median, as in electricitymaps-contrib's zone configs); "other"/"unknown" 700 and
/// "other renewable" 30 are Electricity Maps' defaults for unknown sources (electricitymaps-contrib).
pub const IPCC_FACTORS_G_PER_KWH: [(&str, f64); 10] = [
    ("coal", 1001.0),
    ("gas", 469.0),
    ("oil", 840.0),
    ("nuclear", 16.0),
    ("wind", 12.0),
    ("solar", 46.0),
    ("hydro", 4.0),
    ("biomass", 18.0),
    ("geothermal", 38.0),
    ("other", 700.0),
];

/// Factor of a fuel key in [`IPCC_FACTORS_G_PER_KWH`] (plus "other renewable": 30).
fn factor(key: &str) -> f64 {
    if key == "other renewable" {
        return 30.0;
    }
    IPCC_FACTORS_G_PER_KWH
        .iter()
        .find(|(k, _)| *k == key)
        .map_or(700.0, |(_, f)| *f)
}

/// What to read and how the columns map to signals.
pub(super) struct Plan {
    pub(super) table: TableSpec,
    /// (column slot, signal name, kind) for intensity columns read directly, in preference order.
    pub(super) ci: Vec<(usize, String, CiKind)>,
    /// (column slot, factor g/kWh) for generation columns that make the `ipcc-mix` signal.
    pub(super) mix: Vec<(usize, f64)>,
    pub(super) load: Option<usize>,
    pub(super) price: Option<usize>,
    pub(super) local_tz: Tz,
}

impl Plan {
    fn new(table: TableSpec, local_tz: Tz) -> Plan {
        Plan {
            table,
            ci: Vec::new(),
            mix: Vec::new(),
            load: None,
            price: None,
            local_tz,
        }
    }

    fn push(&mut self, req: ColumnReq) -> usize {
        self.table.columns.push(req);
        self.table.columns.len() - 1
    }
}

fn table(path: &Path, time_column: &str, style: StampStyle, zone: &str, end: bool) -> TableSpec {
    TableSpec {
        path: path.to_path_buf(),
        time_column: time_column.to_string(),
        stamp_style: style,
        time_zone: zone.to_string(),
        stamp_is_interval_end: end,
        columns: Vec::new(),
        max_gap_intervals: 0,
        thousands_separator: false,
        row_filter: None,
    }
}

/// Lower case, `₂` as `2`, runs of whitespace as one space.
fn norm(h: &str) -> String {
    h.to_lowercase()
        .replace('₂', "2")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn has(headers: &[String], name: &str) -> bool {
    headers.iter().any(|h| norm(h) == name)
}

fn local_zone(file: &GridFile, default: &str) -> Result<Tz, GridError> {
    let path = file.path.as_path();
    let zone = file.local_time_zone.as_deref().unwrap_or(default);
    parse_time_zone(zone, &path.display().to_string())
}

pub(super) fn detect_electricity_maps(headers: &[String]) -> bool {
    has(headers, "datetime (utc)")
        && headers
            .iter()
            .any(|h| norm(h).starts_with("carbon intensity gco2"))
}

pub(super) fn plan_electricity_maps(
    file: &GridFile,
    headers: &[String],
    _: &str,
) -> Result<Plan, GridError> {
    let path = file.path.as_path();
    let tz = local_zone(file, "UTC")?;
    let mut plan = Plan::new(
        table(path, "Datetime (UTC)", StampStyle::Iso, "UTC", false),
        tz,
    );
    plan.table.max_gap_intervals = file.max_gap_intervals;
    let find = |tags: &[&str]| {
        headers.iter().find(|h| {
            let n = norm(h);
            n.starts_with("carbon intensity gco2") && tags.iter().any(|t| n.ends_with(t))
        })
    };
    // Life-cycle first (primary), then direct.
    for (tags, name) in [
        (&["(life cycle)", "(lca)", "(lifecycle)"][..], "lifecycle"),
        (&["(direct)"][..], "direct"),
    ] {
        if let Some(h) = find(tags) {
            let slot = plan.push(ColumnReq::required(h, "ci column", true));
            plan.ci.push((slot, name.to_string(), CiKind::Average));
        }
    }
    if plan.ci.is_empty() {
        return Err(GridError::UnknownColumn {
            path: path.to_path_buf(),
            column: "Carbon intensity gCO₂eq/kWh (direct) or (Life cycle)".into(),
            role: "ci column",
            available: quoted(headers),
        });
    }
    Ok(plan)
}

fn quoted(headers: &[String]) -> String {
    headers
        .iter()
        .map(|h| format!("'{h}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// EIA-930 fuel column suffixes and their factor keys.
const EIA930_FUELS: [(&str, &str); 8] = [
    ("coal", "coal"),
    ("natural gas", "gas"),
    ("nuclear", "nuclear"),
    ("all petroleum products", "oil"),
    ("hydropower and pumped storage", "hydro"),
    ("solar", "solar"),
    ("wind", "wind"),
    ("other fuel sources", "other"),
];

/// dc-rl EIA extract fuel columns and their factor keys (PROVENANCE.md).
const DCRL_FUELS: [(&str, &str); 8] = [
    ("WND", "wind"),
    ("SUN", "solar"),
    ("WAT", "hydro"),
    ("OIL", "oil"),
    ("NG", "gas"),
    ("COL", "coal"),
    ("NUC", "nuclear"),
    ("OTH", "other"),
];

pub(super) fn detect_eia(headers: &[String]) -> bool {
    (has(headers, "balancing authority")
        && (has(headers, "utc time at end of hour") || has(headers, "local time at end of hour")))
        || (has(headers, "timestamp") && has(headers, "avg_ci"))
}

pub(super) fn plan_eia(
    file: &GridFile,
    headers: &[String],
    region: &str,
) -> Result<Plan, GridError> {
    let path = file.path.as_path();
    let mut region = region.trim().to_uppercase();
    if region.is_empty() && has(headers, "avg_ci") {
        // dc-rl extracts are one file per authority, named after it (us_eia_2022/CISO.csv).
        region = path
            .file_stem()
            .map(|s| s.to_string_lossy().to_uppercase())
            .unwrap_or_default();
    }
    let default_zone = super::super::presets::eia_zone(&region);
    let tz = match (&file.local_time_zone, default_zone) {
        (Some(z), _) => parse_time_zone(z, &path.display().to_string())?,
        (None, Some(z)) => parse_time_zone(z, &path.display().to_string())?,
        (None, None) => {
            return Err(GridError::InvalidArgument {
                what: "local_time_zone",
                value: format!("(none) for region '{region}' in {}", path.display()),
                valid: "an IANA zone for the balancing authority (built in: CISO, ERCO, PJM, MISO, NYIS, BPAT)",
            })
        }
    };
    if has(headers, "avg_ci") {
        // dc-rl extract: timestamps with offsets, interval start.
        let mut plan = Plan::new(
            table(path, "timestamp", StampStyle::Iso, tz.name(), false),
            tz,
        );
        plan.table.max_gap_intervals = file.max_gap_intervals;
        let slot = plan.push(ColumnReq::required("avg_CI", "ci column", true));
        plan.ci.push((slot, "avg_CI".into(), CiKind::Average));
        for (col, key) in DCRL_FUELS {
            let slot = plan.push(ColumnReq::optional(col, "generation column", false));
            plan.mix.push((slot, factor(key)));
        }
        let sum = format!("sum:{}", DCRL_FUELS.map(|(c, _)| c).join("+"));
        plan.load = Some(plan.push(ColumnReq::required(&sum, "load column", false)));
        return Ok(plan);
    }
    if region.is_empty() {
        return Err(GridError::InvalidArgument {
            what: "region",
            value: format!("(empty) for {}", path.display()),
            valid: "the balancing authority code to select from the 'Balancing Authority' column, e.g. 'CISO'",
        });
    }
    let mut plan = Plan::new(
        table(
            path,
            "UTC Time at End of Hour",
            StampStyle::UsSlash12h,
            "UTC",
            true,
        ),
        tz,
    );
    plan.table.max_gap_intervals = file.max_gap_intervals;
    plan.table.thousands_separator = true;
    plan.table.row_filter = Some(("Balancing Authority".into(), region));
    let demand = if has(headers, "demand (mw) (adjusted)") {
        "Demand (MW) (Adjusted)"
    } else {
        "Demand (MW)"
    };
    plan.load = Some(plan.push(ColumnReq::required(demand, "load column", false)));
    for (suffix, key) in EIA930_FUELS {
        let base = format!("net generation (mw) from {suffix}");
        let pick = headers
            .iter()
            .find(|h| norm(h) == format!("{base} (adjusted)"))
            .or_else(|| headers.iter().find(|h| norm(h) == base));
        if let Some(h) = pick {
            let slot = plan.push(ColumnReq::optional(h, "generation column", false));
            plan.mix.push((slot, factor(key)));
        }
    }
    if plan.mix.is_empty() {
        return Err(GridError::UnknownColumn {
            path: path.to_path_buf(),
            column: "Net Generation (MW) from <fuel>".into(),
            role: "generation column",
            available: quoted(headers),
        });
    }
    Ok(plan)
}

/// ENTSO-E production types (lower case) and their factor keys.
const ENTSOE_TYPES: [(&str, &str); 21] = [
    ("biomass", "biomass"),
    ("fossil brown coal/lignite", "coal"),
    ("fossil coal-derived gas", "coal"),
    ("fossil gas", "gas"),
    ("fossil hard coal", "coal"),
    ("fossil oil", "oil"),
    ("fossil oil shale", "oil"),
    ("fossil peat", "coal"),
    ("geothermal", "geothermal"),
    ("hydro pumped storage", "hydro"),
    ("hydro run-of-river and poundage", "hydro"),
    ("hydro water reservoir", "hydro"),
    ("marine", "wind"),
    ("nuclear", "nuclear"),
    ("other", "other"),
    ("other renewable", "other renewable"),
    ("solar", "solar"),
    ("waste", "other"),
    ("wind offshore", "wind"),
    ("wind onshore", "wind"),
    ("energy storage", "hydro"),
];

pub(super) fn detect_entsoe_legacy(headers: &[String]) -> bool {
    has(headers, "mtu")
}

pub(super) fn detect_entsoe_new(headers: &[String]) -> bool {
    headers.iter().any(|h| norm(h).starts_with("mtu ("))
}

/// Load, price and generation columns of an ENTSO-E export.
fn plan_entsoe_values(path: &Path, headers: &[String], plan: &mut Plan) -> Result<(), GridError> {
    for h in headers {
        let n = norm(h);
        if n.contains("actual total load") && plan.load.is_none() {
            plan.load = Some(plan.push(ColumnReq::required(h, "load column", false)));
        } else if n.contains("day-ahead price") && plan.price.is_none() {
            plan.price = Some(plan.push(ColumnReq::required(h, "price column", false)));
        } else if n.contains("actual aggregated") {
            let kind = n.split(" - ").next().unwrap_or("").trim().to_string();
            let Some((_, key)) = ENTSOE_TYPES.iter().find(|(t, _)| *t == kind) else {
                return Err(GridError::UnknownFuel {
                    path: path.to_path_buf(),
                    column: h.clone(),
                    valid: ENTSOE_TYPES.map(|(t, _)| t).join(", "),
                });
            };
            let slot = plan.push(ColumnReq::optional(h, "generation column", false));
            plan.mix.push((slot, factor(key)));
        }
    }
    if plan.table.columns.is_empty() {
        return Err(GridError::UnknownColumn {
            path: path.to_path_buf(),
            column: "'<Type>  - Actual Aggregated [MW]', 'Actual Total Load ...' or 'Day-ahead Price ...'".into(),
            role: "value column",
            available: quoted(headers),
        });
    }
    Ok(())
}

pub(super) fn plan_entsoe_legacy(
    file: &GridFile,
    headers: &[String],
    _: &str,
) -> Result<Plan, GridError> {
    let path = file.path.as_path();
    // Naive MTU starts (no zone suffix, or "(CET/CEST)") are Central European local time.
    let tz = local_zone(file, "Europe/Brussels")?;
    let mut plan = Plan::new(
        table(path, "MTU", StampStyle::EntsoeMtu, "Europe/Brussels", false),
        tz,
    );
    plan.table.max_gap_intervals = file.max_gap_intervals;
    plan_entsoe_values(path, headers, &mut plan)?;
    Ok(plan)
}

pub(super) fn plan_entsoe_new(
    file: &GridFile,
    headers: &[String],
    _: &str,
) -> Result<Plan, GridError> {
    let path = file.path.as_path();
    let Some(time_col) = headers.iter().find(|h| norm(h).starts_with("mtu (")) else {
        return Err(GridError::UnknownColumn {
            path: path.to_path_buf(),
            column: "MTU (CET/CEST)".into(),
            role: "time column",
            available: quoted(headers),
        });
    };
    let stamp_zone = if norm(time_col).contains("utc") {
        "UTC"
    } else {
        "Europe/Brussels"
    };
    let tz = local_zone(file, "Europe/Brussels")?;
    let mut plan = Plan::new(
        table(path, time_col, StampStyle::EntsoeMtu, stamp_zone, false),
        tz,
    );
    plan.table.max_gap_intervals = file.max_gap_intervals;
    plan_entsoe_values(path, headers, &mut plan)?;
    Ok(plan)
}

pub(super) fn plan_generic(file: &GridFile, _: &[String], _: &str) -> Result<Plan, GridError> {
    let path = file.path.as_path();
    // Generic files are read by `load_csv_with_report` in `load_grid_columns`; never planned here.
    Err(GridError::InvalidArgument {
        what: "generic grid format",
        value: path.display().to_string(),
        valid: "a CsvSpec (use load_csv)",
    })
}
