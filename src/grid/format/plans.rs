//! Per-format read plans: which header is which signal, how stamps are written, fuel emission factors (Electricity Maps here; EIA-930, ENTSO-E and WattTime in their own files).

use std::path::Path;

use chrono_tz::Tz;

use super::super::error::GridError;
use super::super::series::CiKind;
use super::super::spec::GridFile;
use super::super::stamps::StampStyle;
use super::super::table::{ColumnReq, TableSpec};
use super::super::time::parse_time_zone;
use crate::grid::bounds::Quantity;

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
pub(super) fn factor(key: &str) -> f64 {
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
    /// (column slot, fuel key of the factor table, tier) for generation columns that make the
    /// `ipcc-mix` signal; the mix uses the lowest tier that has a column with values (EIA-930:
    /// Adjusted, Imputed, raw).
    pub(super) mix: Vec<(usize, &'static str, u8)>,
    /// Names of the tiers, for the load report (empty names: one tier, nothing to say).
    pub(super) mix_tier_names: [&'static str; 3],
    pub(super) load: Option<usize>,
    pub(super) price: Option<usize>,
    pub(super) local_tz: Tz,
    /// What the reader should know about this read (the load report carries it).
    pub(super) notes: Vec<String>,
}

impl Plan {
    /// A plan reading `table`, with the file's gap allowance and range override.
    pub(super) fn new(file: &GridFile, mut table: TableSpec, local_tz: Tz) -> Plan {
        table.max_gap_intervals = file.max_gap_intervals;
        table.allow_out_of_range = file.allow_out_of_range;
        Plan {
            table,
            ci: Vec::new(),
            mix: Vec::new(),
            mix_tier_names: ["", "", ""],
            load: None,
            price: None,
            local_tz,
            notes: Vec::new(),
        }
    }

    pub(super) fn push(&mut self, req: ColumnReq) -> usize {
        self.table.columns.push(req);
        self.table.columns.len() - 1
    }
}

pub(super) fn table(
    path: &Path,
    time_column: &str,
    style: StampStyle,
    zone: &str,
    end: bool,
) -> TableSpec {
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
        skip_blank_nonexistent: false,
        allow_out_of_range: false,
    }
}

/// Lower case, `₂` as `2`, runs of whitespace as one space.
pub(super) fn norm(h: &str) -> String {
    h.to_lowercase()
        .replace('₂', "2")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

pub(super) fn has(headers: &[String], name: &str) -> bool {
    headers.iter().any(|h| norm(h) == name)
}

pub(super) fn local_zone(file: &GridFile, default: &str) -> Result<Tz, GridError> {
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
        file,
        table(path, "Datetime (UTC)", StampStyle::Iso, "UTC", false),
        tz,
    );
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
            let slot = plan.push(ColumnReq::required(h, Quantity::Intensity));
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

pub(super) fn quoted(headers: &[String]) -> String {
    headers
        .iter()
        .map(|h| format!("'{h}'"))
        .collect::<Vec<_>>()
        .join(", ")
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
