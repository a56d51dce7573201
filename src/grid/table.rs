//! The shared CSV table reader of every grid loader: headers, stamps, value columns, averaging and gaps.
//!
//! Behaviour, in order:
//! - header names match case-insensitively after trimming and stripping a UTF-8 BOM; lines that
//!   start with `#` are comments;
//! - timestamps with a UTC offset are absolute; naive ones are read in `time_zone` with the DST
//!   rules of [`super::time`] (skipped local time: error; repeated hour: earlier instant first);
//! - rows must be in strictly increasing time order (a repeat is a duplicate error naming both
//!   lines, a step back is an out-of-order error);
//! - the interval is the most common difference between consecutive stamps; stamps that fall
//!   inside one interval (finer data, e.g. GB 2020 switching from 30 to 15 minutes) are averaged;
//! - interval-end stamps (`stamp_is_interval_end`) are moved back to the interval start;
//! - missing values (missing rows, or empty / `NA` / `N/A` / `n/e` / `-` / `NaN` cells) are
//!   interpolated linearly per column when a run is at most `max_gap_intervals` long; longer runs,
//!   and runs at the start or end, are errors;
//! - every value is checked against its quantity's plausible range ([`super::bounds`]) after unit
//!   conversion, naming file, line, column and the range;
//! - the delimiter and decimal mark are sniffed ([`super::dialect`]).
//!
//! A value column is one column name, or `sum:A+B+C` to add several columns
//! (e.g. `sum:WND+SUN+WAT+OIL+NG+COL+NUC+OTH` for total net generation in the EIA files); a row
//! with any summed cell missing counts as missing.

use std::path::{Path, PathBuf};

use super::bounds::{Quantity, HARD_LIMIT};
use super::dialect::{csv_reader, number_text, read_source};
use super::error::GridError;
use super::regular::{bin_rows, BinColumn, Row};
use super::stamps::StampStyle;
use super::time::{parse_time_zone, resolve_local, Resolved, Stamp};

/// What the loader did beyond copying values, for logs and reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadReport {
    /// Data rows read.
    pub rows: usize,
    /// Inferred interval, seconds.
    pub interval_s: i64,
    /// Intervals that received more than one row (averaged).
    pub averaged_intervals: usize,
    /// Per column (as named in the spec): number of interpolated intervals.
    pub interpolated: Vec<(String, usize)>,
    /// What a reader of the results should know (units converted, columns used or left out,
    /// rows skipped), one sentence each; carried into [`super::GridSeries::notes`].
    pub notes: Vec<String>,
}

/// A value column: one header or a sum of several.
#[derive(Debug)]
struct ValueColumn {
    name: String,
    indices: Vec<usize>,
    quantity: Quantity,
    /// Multiplier from the file's unit to the series' unit (intensity: to gCO2eq/kWh).
    scale: f64,
    optional: bool,
}

const MISSING_TOKENS: [&str; 7] = ["", "na", "n/a", "n/e", "-", "nan", "null"];

fn normalize_header(h: &str) -> String {
    h.trim_start_matches('\u{feff}').trim().to_lowercase()
}

fn find_column(
    path: &Path,
    headers: &[String],
    raw_headers: &[String],
    name: &str,
    role: &'static str,
) -> Result<usize, GridError> {
    let want = normalize_header(name);
    headers
        .iter()
        .position(|h| *h == want)
        .ok_or_else(|| GridError::UnknownColumn {
            path: path.to_path_buf(),
            column: name.to_string(),
            role,
            available: raw_headers
                .iter()
                .map(|h| format!("'{}'", h.trim_start_matches('\u{feff}').trim()))
                .collect::<Vec<_>>()
                .join(", "),
        })
}

fn resolve_value_column(
    path: &Path,
    headers: &[String],
    raw_headers: &[String],
    req: &ColumnReq,
) -> Result<ValueColumn, GridError> {
    let (spec, role) = (req.spec.as_str(), req.quantity.role());
    let trimmed = spec.trim();
    let names: Vec<&str> = match trimmed.get(..4) {
        Some(p) if p.eq_ignore_ascii_case("sum:") => {
            let terms: Vec<&str> = trimmed[4..].split('+').map(str::trim).collect();
            if terms.iter().any(|t| t.is_empty()) {
                return Err(GridError::BadColumnSpec {
                    spec: spec.to_string(),
                    role,
                    valid: "a column name, or 'sum:' followed by column names joined with '+' (e.g. 'sum:WND+SUN+NG')",
                });
            }
            terms
        }
        _ => vec![trimmed],
    };
    let indices = names
        .iter()
        .map(|n| find_column(path, headers, raw_headers, n, role))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ValueColumn {
        name: trimmed.to_string(),
        indices,
        quantity: req.quantity,
        scale: req.scale,
        optional: req.optional,
    })
}

/// How cells are written and checked (from the file's dialect and the table spec).
#[derive(Clone, Copy)]
struct CellRules {
    decimal_comma: bool,
    thousands_separator: bool,
    allow_out_of_range: bool,
}

/// Reads one value (possibly a sum) from a record, scaled and range-checked: `Ok(None)` if missing.
fn read_value(
    path: &Path,
    line: u64,
    record: &csv::StringRecord,
    raw_headers: &[String],
    col: &ValueColumn,
    rules: CellRules,
) -> Result<Option<f64>, GridError> {
    let mut sum = 0.0;
    let mut any_missing = false;
    let header = |idx: usize| {
        raw_headers.get(idx).map_or_else(
            || col.name.clone(),
            |h| h.trim_start_matches('\u{feff}').trim().to_string(),
        )
    };
    for &idx in &col.indices {
        let cell = record.get(idx).unwrap_or("").trim();
        if MISSING_TOKENS.iter().any(|t| cell.eq_ignore_ascii_case(t)) {
            any_missing = true;
            continue;
        }
        let text = number_text(cell, rules.decimal_comma, rules.thousands_separator);
        let v: f64 = text.parse().map_err(|_| GridError::BadNumber {
            path: path.to_path_buf(),
            line,
            column: header(idx),
            value: cell.to_string(),
            expected: "a decimal number (or an empty cell for a missing value)",
        })?;
        if !v.is_finite() || v.abs() > HARD_LIMIT {
            return Err(GridError::BadNumber {
                path: path.to_path_buf(),
                line,
                column: header(idx),
                value: cell.to_string(),
                expected: "a finite number of magnitude at most 1e12",
            });
        }
        sum += v;
    }
    if any_missing {
        return Ok(None);
    }
    let v = sum * col.scale;
    let (column, cell) = match col.indices.as_slice() {
        [one] => (
            header(*one),
            record.get(*one).unwrap_or("").trim().to_string(),
        ),
        _ => (col.name.clone(), format!("{sum}")),
    };
    check_range(
        path,
        line,
        &column,
        &cell,
        v,
        col.quantity,
        rules.allow_out_of_range,
    )?;
    Ok(Some(v))
}

/// The range check of one value (already in the series' unit): an error naming the place, the
/// value, the plausible range with its reason, and the override.
pub(crate) fn check_range(
    path: &Path,
    line: u64,
    column: &str,
    cell: &str,
    v: f64,
    quantity: Quantity,
    allow_out_of_range: bool,
) -> Result<(), GridError> {
    let b = quantity.bounds();
    let out = if allow_out_of_range {
        !v.is_finite() || v.abs() > HARD_LIMIT || (quantity == Quantity::Intensity && v < 0.0)
    } else {
        !(b.lo..=b.hi).contains(&v)
    };
    if out {
        return Err(GridError::OutOfRange {
            path: path.to_path_buf(),
            line,
            column: column.to_string(),
            value: cell.to_string(),
            converted: v,
            quantity,
            overridden: allow_out_of_range,
        });
    }
    Ok(())
}

/// One value column a table loader asks for.
#[derive(Debug, Clone)]
pub(crate) struct ColumnReq {
    /// A header, or `sum:A+B`.
    pub spec: String,
    /// What it holds: sets the plausible range and the role in messages.
    pub quantity: Quantity,
    /// Multiplier from the file's unit to the series' unit (intensity: to gCO2eq/kWh).
    pub scale: f64,
    /// A missing header, or a column with no value in any row, gives `None` instead of an error.
    pub optional: bool,
}

impl ColumnReq {
    /// A column that must exist and have values.
    pub fn required(spec: &str, quantity: Quantity) -> ColumnReq {
        ColumnReq {
            spec: spec.to_string(),
            quantity,
            scale: 1.0,
            optional: false,
        }
    }

    /// A column that may be absent (header missing or every cell empty).
    pub fn optional(spec: &str, quantity: Quantity) -> ColumnReq {
        ColumnReq {
            optional: true,
            ..ColumnReq::required(spec, quantity)
        }
    }

    /// The same column with its values multiplied by `scale` (a unit conversion).
    pub fn scaled(self, scale: f64) -> ColumnReq {
        ColumnReq { scale, ..self }
    }
}

/// Everything the shared table reader needs: the generic loader and the format loaders build one.
#[derive(Debug, Clone)]
pub(crate) struct TableSpec {
    pub path: PathBuf,
    pub time_column: String,
    pub stamp_style: StampStyle,
    /// Zone of naive stamps (IANA name or "UTC").
    pub time_zone: String,
    pub stamp_is_interval_end: bool,
    pub columns: Vec<ColumnReq>,
    pub max_gap_intervals: u32,
    /// Numbers may carry ',' thousands separators (`"12,345"`).
    pub thousands_separator: bool,
    /// Keep only rows whose column (header) equals one of the values (case-insensitive, trimmed).
    pub row_filter: Option<(String, Vec<String>)>,
    /// Skip a row whose naive local stamp does not exist (the spring-forward hour) when all its
    /// value cells are empty: ENTSO-E lists the skipped hour as a blank placeholder row.
    pub skip_blank_nonexistent: bool,
    /// Accept values outside the plausible ranges (still finite and at most [`HARD_LIMIT`]).
    pub allow_out_of_range: bool,
}

/// A regular table read by [`load_table`].
#[derive(Debug, Clone)]
pub(crate) struct Table {
    pub start_utc_s: i64,
    pub interval_s: i64,
    /// Per requested column: values per interval (gaps filled), or `None` for an absent optional one.
    pub columns: Vec<Option<Vec<f64>>>,
    pub report: LoadReport,
}

/// Reads the header row of a CSV file (BOM stripped, trimmed; comment lines skipped; delimiter sniffed).
pub(crate) fn read_headers(path: &Path) -> Result<Vec<String>, GridError> {
    let src = read_source(path)?;
    let mut reader = csv_reader(&src);
    let headers = reader.headers().map_err(|e| GridError::Csv {
        path: path.to_path_buf(),
        line: e.position().map_or(0, |p| p.line()),
        message: short(&e.to_string()),
    })?;
    Ok(headers
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').trim().to_string())
        .collect())
}

/// A message cut to 200 characters: a reader error may quote a whole record.
pub(crate) fn short(message: &str) -> String {
    match message.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &message[..i]),
        None => message.to_string(),
    }
}

/// Reads a CSV table into regular columns by the rules in the module docs.
pub(crate) fn load_table(spec: &TableSpec) -> Result<Table, GridError> {
    let path = spec.path.as_path();
    let context = path.display().to_string();
    let tz = parse_time_zone(&spec.time_zone, &context)?;
    let src = read_source(path)?;
    let rules = CellRules {
        decimal_comma: src.decimal_comma,
        thousands_separator: spec.thousands_separator,
        allow_out_of_range: spec.allow_out_of_range,
    };
    let mut reader = csv_reader(&src);
    let csv_err = |e: csv::Error| GridError::Csv {
        path: path.to_path_buf(),
        line: e.position().map_or(0, |p| p.line()),
        message: short(&e.to_string()),
    };
    let raw_headers: Vec<String> = reader
        .headers()
        .map_err(csv_err)?
        .iter()
        .map(str::to_string)
        .collect();
    let headers: Vec<String> = raw_headers.iter().map(|h| normalize_header(h)).collect();
    let time_idx = find_column(
        path,
        &headers,
        &raw_headers,
        &spec.time_column,
        "time column",
    )?;
    let filter = match &spec.row_filter {
        Some((col, values)) => Some((
            find_column(path, &headers, &raw_headers, col, "row filter column")?,
            values
                .iter()
                .map(|v| v.trim().to_lowercase())
                .collect::<Vec<_>>(),
        )),
        None => None,
    };
    // `slots[k]` is the index in `columns` of requested column k, or None if absent (optional).
    let mut columns: Vec<ValueColumn> = Vec::new();
    let mut slots: Vec<Option<usize>> = Vec::new();
    for req in &spec.columns {
        match resolve_value_column(path, &headers, &raw_headers, req) {
            Ok(c) => {
                slots.push(Some(columns.len()));
                columns.push(c);
            }
            Err(GridError::UnknownColumn { .. }) if req.optional => slots.push(None),
            Err(e) => return Err(e),
        }
    }
    let time_name = raw_headers[time_idx]
        .trim_start_matches('\u{feff}')
        .trim()
        .to_string();

    let mut rows: Vec<Row> = Vec::new();
    let mut prev_text = String::new();
    let mut skipped_blank = 0usize;
    let mut record = csv::StringRecord::new();
    while reader.read_record(&mut record).map_err(csv_err)? {
        let line = record.position().map_or(0, |p| p.line());
        if let Some((idx, want)) = &filter {
            let got = record.get(*idx).unwrap_or("").trim().to_lowercase();
            if !want.contains(&got) {
                continue;
            }
        }
        let cell = record.get(time_idx).unwrap_or("").trim();
        let stamp = spec
            .stamp_style
            .parse(cell)
            .ok_or_else(|| GridError::BadTimestamp {
                path: path.to_path_buf(),
                line,
                column: time_name.clone(),
                value: short(cell),
                expected: spec.stamp_style.expected(),
            })?;
        let prev = rows.last().map(|r| (r.line, r.t_utc_s));
        let t_utc_s = match stamp {
            Stamp::Instant(t) => t,
            Stamp::Local(naive) => match resolve_local(&tz, naive, prev.map(|p| p.1)) {
                Resolved::Utc(t) => t,
                Resolved::Nonexistent
                    if spec.skip_blank_nonexistent && all_blank(&record, &columns) =>
                {
                    skipped_blank += 1;
                    continue;
                }
                Resolved::Nonexistent => {
                    return Err(GridError::NonexistentLocalTime {
                        path: path.to_path_buf(),
                        line,
                        column: time_name.clone(),
                        value: cell.to_string(),
                        tz: tz.name().to_string(),
                    })
                }
            },
        };
        check_order(path, line, cell, t_utc_s, prev, &prev_text)?;
        let values = columns
            .iter()
            .map(|c| read_value(path, line, &record, &raw_headers, c, rules))
            .collect::<Result<Vec<_>, _>>()?;
        prev_text = cell.to_string();
        rows.push(Row {
            line,
            t_utc_s,
            values,
        });
    }
    if rows.is_empty() {
        if let Some((col, values)) = &spec.row_filter {
            return Err(GridError::NoMatchingRows {
                path: path.to_path_buf(),
                column: col.clone(),
                value: values.join("' or '"),
            });
        }
    }
    let bin_columns: Vec<BinColumn> = columns
        .iter()
        .map(|c| BinColumn {
            name: c.name.clone(),
            optional: c.optional,
        })
        .collect();
    let binned = bin_rows(
        path,
        &rows,
        &bin_columns,
        spec.stamp_is_interval_end,
        spec.max_gap_intervals,
    )?;
    let mut report = binned.report;
    if skipped_blank > 0 {
        report.notes.push(format!(
            "{skipped_blank} blank row(s) stamped in the hour skipped by the spring daylight-saving change were left out (the file lists that hour as a placeholder)"
        ));
    }
    if src.delimiter != b',' || src.decimal_comma {
        report.notes.push(format!(
            "read as '{}'-separated{}",
            char::from(src.delimiter).escape_default(),
            if src.decimal_comma {
                " with decimal commas"
            } else {
                ""
            }
        ));
    }
    let out_columns = slots
        .iter()
        .map(|s| s.and_then(|c| binned.columns[c].clone()))
        .collect();
    Ok(Table {
        start_utc_s: binned.start_utc_s,
        interval_s: binned.interval_s,
        columns: out_columns,
        report,
    })
}

/// True if every requested value cell of the record is empty or a missing-value token.
fn all_blank(record: &csv::StringRecord, columns: &[ValueColumn]) -> bool {
    columns.iter().flat_map(|c| &c.indices).all(|&i| {
        let cell = record.get(i).unwrap_or("").trim();
        MISSING_TOKENS.iter().any(|t| cell.eq_ignore_ascii_case(t))
    })
}

/// Rows must be in strictly increasing time: a repeat names both lines, a step back the previous one.
pub(crate) fn check_order(
    path: &Path,
    line: u64,
    cell: &str,
    t_utc_s: i64,
    prev: Option<(u64, i64)>,
    prev_text: &str,
) -> Result<(), GridError> {
    if let Some((prev_line, prev_t)) = prev {
        if t_utc_s == prev_t {
            return Err(GridError::Duplicate {
                path: path.to_path_buf(),
                line,
                first_line: prev_line,
                value: cell.to_string(),
            });
        }
        if t_utc_s < prev_t {
            return Err(GridError::OutOfOrder {
                path: path.to_path_buf(),
                line,
                value: cell.to_string(),
                prev_line,
                prev_value: prev_text.to_string(),
            });
        }
    }
    Ok(())
}
