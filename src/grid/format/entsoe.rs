//! ENTSO-E Transparency Platform read plans: legacy and new-platform exports of load, price and generation.
//!
//! Time column: `MTU` (legacy generation; cells end in `(CET/CEST)` or `(UTC)`), `MTU (CET/CEST)` /
//! `MTU (UTC)` (new platform, and legacy price), or `Time (CET/CEST)` / `Time (UTC)` (legacy load).
//! Stamps are market time units `START - END`; a start tagged ` (CET)` / ` (CEST)` (new platform, at
//! the DST changes) is absolute, which settles the repeated autumn hour; an untagged start is local
//! Central European time (DST rules of [`crate::grid`]'s time module) unless the header says UTC.
//! The skipped spring hour, which legacy exports list as blank placeholder rows, is left out.
//! Price files of bidding zones with several day-ahead auctions (new platform, `Sequence` column:
//! `Sequence 1`, `Sequence 2`, in June 2025 exports `Sequence Sequence 1`) keep the first auction
//! (for DE-LU the SDAC coupled day-ahead auction); files with one auction say `Without Sequence`.

use std::path::Path;

use super::super::error::GridError;
use super::super::spec::GridFile;
use super::super::stamps::StampStyle;
use super::super::table::ColumnReq;
use super::plans::{has, local_zone, norm, quoted, table, Plan};
use crate::grid::bounds::Quantity;

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

/// Sequence cells of the auction kept (lower case).
const FIRST_AUCTION: [&str; 3] = ["without sequence", "sequence 1", "sequence sequence 1"];

/// True if the header names an ENTSO-E value column (load, price or generation).
fn is_value(n: &str) -> bool {
    n.contains("actual total load")
        || n.contains("day-ahead price")
        || n.contains("actual aggregated")
}

/// The time column of an ENTSO-E export, if the header row is one.
fn time_column(headers: &[String]) -> Option<&String> {
    let values = headers.iter().any(|h| is_value(&norm(h)));
    headers.iter().find(|h| {
        let n = norm(h);
        n == "mtu" || n.starts_with("mtu (") || (values && n.starts_with("time ("))
    })
}

/// True for the Let's Wait Awhile production layout (Wiesner et al. 2021, dos-group/lets-wait-awhile
/// `data/*_production.csv`): an unnamed first column of naive UTC stamps (PROVENANCE.md checked them
/// against GB solar noon), then bare ENTSO-E production types (`Fossil Gas`, ...) in MW, then
/// imports by two-letter country code.
fn is_lwa_production(headers: &[String]) -> bool {
    headers.first().is_some_and(|h| norm(h).is_empty())
        && headers[1..]
            .iter()
            .any(|h| ENTSOE_TYPES.iter().any(|(t, _)| *t == norm(h)))
}

/// Import columns of the Let's Wait Awhile layout: a two-letter country code.
fn is_country_code(h: &str) -> bool {
    let h = h.trim();
    h.len() == 2 && h.chars().all(|c| c.is_ascii_uppercase())
}

/// The plan of a Let's Wait Awhile production file: generation by type feeds the mix (and so the
/// marginal estimate); imports are not domestic generation and are left out (noted).
fn plan_lwa_production(file: &GridFile, headers: &[String]) -> Result<Plan, GridError> {
    let path = file.path.as_path();
    let tz = local_zone(file, "Europe/Brussels")?;
    let mut plan = Plan::new(
        file,
        table(path, &headers[0], StampStyle::Iso, "UTC", false),
        tz,
    );
    let mut imports = Vec::new();
    for h in &headers[1..] {
        if is_country_code(h) {
            imports.push(h.trim().to_string());
            continue;
        }
        let Some((_, key)) = ENTSOE_TYPES.iter().find(|(t, _)| *t == norm(h)) else {
            return Err(GridError::UnknownFuel {
                path: path.to_path_buf(),
                column: h.clone(),
                valid: ENTSOE_TYPES.map(|(t, _)| t).join(", "),
            });
        };
        let slot = plan.push(ColumnReq::optional(h, Quantity::Generation));
        plan.mix.push((slot, key, 0));
    }
    if !imports.is_empty() {
        plan.notes.push(format!(
            "Let's Wait Awhile production layout: stamps naive UTC, interval start; import columns {} left out of the mix",
            imports.join(", ")
        ));
    }
    Ok(plan)
}

pub(super) fn detect_entsoe_legacy(headers: &[String]) -> bool {
    is_lwa_production(headers)
        || has(headers, "mtu")
        || headers
            .iter()
            .any(|h| norm(h).starts_with("time (") && time_column(headers).is_some())
}

pub(super) fn detect_entsoe_new(headers: &[String]) -> bool {
    headers.iter().any(|h| norm(h).starts_with("mtu ("))
}

/// Load, price and generation columns of an ENTSO-E export.
fn plan_values(path: &Path, headers: &[String], plan: &mut Plan) -> Result<(), GridError> {
    for h in headers {
        let n = norm(h);
        if n.contains("actual total load") && plan.load.is_none() {
            plan.load = Some(plan.push(ColumnReq::required(h, Quantity::Load)));
        } else if n.contains("day-ahead price") && plan.price.is_none() {
            plan.price = Some(plan.push(ColumnReq::required(h, Quantity::Price)));
            plan.notes.push(format!("price from column '{}'", h.trim()));
        } else if n.contains("actual aggregated") {
            let kind = n.split(" - ").next().unwrap_or("").trim().to_string();
            let Some((_, key)) = ENTSOE_TYPES.iter().find(|(t, _)| *t == kind) else {
                return Err(GridError::UnknownFuel {
                    path: path.to_path_buf(),
                    column: h.clone(),
                    valid: ENTSOE_TYPES.map(|(t, _)| t).join(", "),
                });
            };
            let slot = plan.push(ColumnReq::optional(h, Quantity::Generation));
            plan.mix.push((slot, key, 0));
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

/// The plan of both ENTSO-E export generations (module docs).
pub(super) fn plan_entsoe(file: &GridFile, headers: &[String], _: &str) -> Result<Plan, GridError> {
    if is_lwa_production(headers) {
        return plan_lwa_production(file, headers);
    }
    let path = file.path.as_path();
    let Some(time_col) = time_column(headers) else {
        return Err(GridError::UnknownColumn {
            path: path.to_path_buf(),
            column: "MTU, MTU (CET/CEST), MTU (UTC) or Time (CET/CEST)".into(),
            role: "time column",
            available: quoted(headers),
        });
    };
    // Untagged starts are Central European local time unless the header says UTC.
    let stamp_zone = if norm(time_col).contains("(utc)") {
        "UTC"
    } else {
        "Europe/Brussels"
    };
    let tz = local_zone(file, "Europe/Brussels")?;
    let mut plan = Plan::new(
        file,
        table(path, time_col, StampStyle::EntsoeMtu, stamp_zone, false),
        tz,
    );
    plan.table.skip_blank_nonexistent = true;
    if has(headers, "sequence") {
        plan.table.row_filter = Some((
            "Sequence".into(),
            FIRST_AUCTION.iter().map(|s| s.to_string()).collect(),
        ));
        plan.notes.push(
            "rows of the first day-ahead auction kept ('Sequence 1' or 'Without Sequence'; for DE-LU the SDAC coupled auction)".into(),
        );
    }
    plan_values(path, headers, &mut plan)?;
    Ok(plan)
}
