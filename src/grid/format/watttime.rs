//! WattTime marginal emission rates: the Python client's CSV (`point_time,value`, with or without a pandas index column) and the v3 API JSON.
//!
//! WattTime's `co2_moer` signal is the marginal operating emission rate in **pounds of CO2 per MWh**
//! (v3 `meta.units = "lbs_co2_per_mwh"`); it is converted to gCO2/kWh (× 0.45359237, see
//! [`CiUnit::to_g_per_kwh`]) and carried as a *marginal* signal named `co2_moer` (`co2_aoer`, the
//! average rate, as an average one). `point_time` is ISO 8601 UTC, the start of a 5-minute interval.
//! The client CSV carries no unit: lbs/MWh is assumed unless `grid.csv.unit` says otherwise; the
//! JSON states its own. JSON errors name the file, line:column and the expected shape, and never
//! quote more than 200 characters of the file.

use serde::Deserialize;

use super::super::bounds::{CiUnit, Quantity};
use super::super::error::GridError;
use super::super::regular::{bin_rows, BinColumn, Row};
use super::super::series::{CiKind, CiSignal};
use super::super::spec::GridFile;
use super::super::stamps::StampStyle;
use super::super::table::{check_order, check_range, short, ColumnReq};
use super::super::time::{parse_stamp, Stamp, STAMP_FORMS};
use super::plans::{has, local_zone, table, Plan};
use super::GridColumns;
use crate::grid::csv_load::unit_note;

/// The shape a WattTime JSON must have, for errors.
const SHAPE: &str = r#"a WattTime v3 response: {"data": [{"point_time": "2022-07-15T00:00:00+00:00", "value": 870}, ...], "meta": {"signal_type": "co2_moer", "units": "lbs_co2_per_mwh"}}"#;

pub(super) fn detect_watttime(headers: &[String]) -> bool {
    has(headers, "point_time") && has(headers, "value")
}

/// The client CSV: `point_time` (ISO, UTC) and `value` in `grid.csv.unit` (default lbs/MWh); a
/// leading unnamed pandas index column is ignored like any other extra column.
pub(super) fn plan_watttime(
    file: &GridFile,
    _headers: &[String],
    _: &str,
) -> Result<Plan, GridError> {
    let path = file.path.as_path();
    let tz = local_zone(file, "UTC")?;
    let mut plan = Plan::new(
        file,
        table(path, "point_time", StampStyle::Iso, "UTC", false),
        tz,
    );
    let unit = file.unit.unwrap_or(CiUnit::LbsPerMwh);
    let slot =
        plan.push(ColumnReq::required("value", Quantity::Intensity).scaled(unit.to_g_per_kwh()));
    plan.ci.push((slot, "co2_moer".into(), CiKind::Marginal));
    plan.notes.push(format!(
        "{} (WattTime co2_moer: marginal operating emission rate)",
        unit_note("value", unit)
    ));
    if file.local_time_zone.is_none() {
        plan.notes.push(utc_note());
    }
    Ok(plan)
}

fn utc_note() -> String {
    "local hours in UTC: the file does not name the region's zone (set grid.csv.local_time_zone)"
        .into()
}

#[derive(Deserialize)]
struct Response {
    data: Vec<Point>,
    #[serde(default)]
    meta: Meta,
}

#[derive(Deserialize)]
struct Point {
    point_time: String,
    value: Option<f64>,
}

#[derive(Deserialize, Default)]
struct Meta {
    units: Option<String>,
    signal_type: Option<String>,
    region: Option<String>,
}

/// Reads a WattTime v3 JSON response (`/v3/historical` or `/v3/forecast`) of `region`.
pub(super) fn load_json(
    file: &GridFile,
    bytes: &[u8],
    region: &str,
) -> Result<GridColumns, GridError> {
    let path = file.path.as_path();
    let resp: Response = serde_json::from_slice(bytes).map_err(|e| {
        let text = e.to_string();
        // serde_json appends " at line L column C"; the position is given separately.
        let message = match text.rfind(" at line ") {
            Some(i) => &text[..i],
            None => text.as_str(),
        };
        GridError::Json {
            path: path.to_path_buf(),
            line: e.line(),
            column: e.column(),
            message: short(message),
            expected: SHAPE,
        }
    })?;
    let meta_unit = match &resp.meta.units {
        Some(u) => Some(
            CiUnit::from_name(u).ok_or_else(|| GridError::InvalidArgument {
                what: "WattTime meta.units",
                value: format!("'{}' in {}", short(u), path.display()),
                valid: "lbs_co2_per_mwh (or g/kWh, kg/MWh, t/MWh)",
            })?,
        ),
        None => None,
    };
    let unit = match (meta_unit, file.unit) {
        (Some(m), Some(u)) if m != u => {
            return Err(GridError::InvalidArgument {
                what: "grid.csv.unit",
                value: format!(
                    "{} for {}, whose meta.units says {}",
                    u.name(),
                    path.display(),
                    m.name()
                ),
                valid: "the unit the file states (or leave grid.csv.unit out)",
            })
        }
        (Some(m), _) => m,
        (None, u) => u.unwrap_or(CiUnit::LbsPerMwh),
    };
    let (name, kind) = match resp.meta.signal_type.as_deref().map(str::to_lowercase) {
        None => ("co2_moer".to_string(), CiKind::Marginal),
        Some(s) if s == "co2_moer" => (s, CiKind::Marginal),
        Some(s) if s == "co2_aoer" => (s, CiKind::Average),
        Some(s) => {
            return Err(GridError::InvalidArgument {
                what: "WattTime meta.signal_type",
                value: format!("'{}' in {}", short(&s), path.display()),
                valid: "co2_moer (marginal) or co2_aoer (average) — other signals are not carbon intensities",
            })
        }
    };
    let lines = point_lines(bytes, resp.data.len());
    let mut rows: Vec<Row> = Vec::with_capacity(resp.data.len());
    let mut prev_text = String::new();
    for (k, p) in resp.data.iter().enumerate() {
        let line = lines.get(k).copied().unwrap_or(0);
        let t = match parse_stamp(&p.point_time) {
            Some(Stamp::Instant(t)) => t,
            // WattTime stamps are UTC; a naive one (re-saved by hand) is read as UTC.
            Some(Stamp::Local(n)) => n.and_utc().timestamp(),
            None => {
                return Err(GridError::BadTimestamp {
                    path: path.to_path_buf(),
                    line,
                    column: format!("data[{k}].point_time"),
                    value: short(&p.point_time),
                    expected: STAMP_FORMS,
                })
            }
        };
        check_order(
            path,
            line,
            &p.point_time,
            t,
            rows.last().map(|r| (r.line, r.t_utc_s)),
            &prev_text,
        )?;
        let value = match p.value {
            Some(v) => {
                let g = v * unit.to_g_per_kwh();
                let column = format!("data[{k}].value");
                check_range(
                    path,
                    line,
                    &column,
                    &v.to_string(),
                    g,
                    Quantity::Intensity,
                    file.allow_out_of_range,
                )?;
                Some(g)
            }
            None => None,
        };
        prev_text = p.point_time.clone();
        rows.push(Row {
            line,
            t_utc_s: t,
            values: vec![value],
        });
    }
    let binned = bin_rows(
        path,
        &rows,
        &[BinColumn {
            name: "value".into(),
            optional: false,
        }],
        false,
        file.max_gap_intervals,
    )?;
    let mut report = binned.report;
    report.notes.push(format!(
        "{} (WattTime {name}, {})",
        unit_note("value", unit),
        if kind == CiKind::Marginal {
            "marginal"
        } else {
            "average"
        }
    ));
    if file.local_time_zone.is_none() {
        report.notes.push(utc_note());
    }
    let region = match (region.trim(), &resp.meta.region) {
        ("", Some(r)) => r.clone(),
        (r, _) => r.to_string(),
    };
    Ok(GridColumns {
        region,
        tz: local_zone(file, "UTC")?,
        start_utc_s: binned.start_utc_s,
        interval_s: binned.interval_s,
        ci: vec![CiSignal {
            name,
            kind,
            g_per_kwh: binned
                .columns
                .into_iter()
                .next()
                .flatten()
                .unwrap_or_default(),
        }],
        load_mw: None,
        price_per_mwh: None,
        generation: Vec::new(),
        source: format!("{} (watttime)", path.display()),
        report,
    })
}

/// 1-based line of each `"point_time"` key, in order; empty unless there is one per data point
/// (then errors say line 0 rather than a wrong line).
fn point_lines(bytes: &[u8], points: usize) -> Vec<u64> {
    const KEY: &[u8] = b"\"point_time\"";
    let mut out = Vec::with_capacity(points);
    let mut line = 1u64;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\n' {
            line += 1;
        } else if bytes[i..].starts_with(KEY) {
            out.push(line);
            i += KEY.len();
            continue;
        }
        i += 1;
    }
    if out.len() == points {
        out
    } else {
        Vec::new()
    }
}
