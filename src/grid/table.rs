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
//!   and runs at the start or end, are errors.
//!
//! A value column is one column name, or `sum:A+B+C` to add several columns
//! (e.g. `sum:WND+SUN+WAT+OIL+NG+COL+NUC+OTH` for total net generation in the EIA files); a row
//! with any summed cell missing counts as missing.

use std::path::{Path, PathBuf};

use super::error::GridError;
use super::regular::{fill_gaps, infer_interval_s, FillError};
use super::stamps::StampStyle;
use super::time::{fmt_utc, parse_time_zone, resolve_local, Resolved, Stamp};

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
}

/// A value column: one header or a sum of several.
#[derive(Debug)]
struct ValueColumn {
    name: String,
    indices: Vec<usize>,
    non_negative: bool,
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
    spec: &str,
    role: &'static str,
    non_negative: bool,
) -> Result<ValueColumn, GridError> {
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
        non_negative,
    })
}

/// Reads one value (possibly a sum) from a record: `Ok(None)` if missing.
fn read_value(
    path: &Path,
    line: u64,
    record: &csv::StringRecord,
    raw_headers: &[String],
    col: &ValueColumn,
    thousands_separator: bool,
) -> Result<Option<f64>, GridError> {
    let mut sum = 0.0;
    let mut any_missing = false;
    for &idx in &col.indices {
        let cell = record.get(idx).unwrap_or("").trim();
        if MISSING_TOKENS.iter().any(|t| cell.eq_ignore_ascii_case(t)) {
            any_missing = true;
            continue;
        }
        let column = raw_headers.get(idx).map_or_else(
            || col.name.clone(),
            |h| h.trim_start_matches('\u{feff}').trim().to_string(),
        );
        let bad = |expected| GridError::BadNumber {
            path: path.to_path_buf(),
            line,
            column: column.clone(),
            value: cell.to_string(),
            expected,
        };
        let stripped;
        let text = if thousands_separator && cell.contains(',') {
            stripped = cell.replace(',', "");
            stripped.as_str()
        } else {
            cell
        };
        let v: f64 = text
            .parse()
            .map_err(|_| bad("a decimal number (or an empty cell for a missing value)"))?;
        if !v.is_finite() {
            return Err(bad("a finite decimal number"));
        }
        if col.non_negative && v < 0.0 {
            return Err(bad("a number >= 0 (carbon intensity in gCO2eq/kWh)"));
        }
        sum += v;
    }
    Ok(if any_missing { None } else { Some(sum) })
}

/// One parsed data row.
struct Row {
    line: u64,
    t_utc_s: i64,
    values: Vec<Option<f64>>,
}

/// One value column a table loader asks for.
#[derive(Debug, Clone)]
pub(crate) struct ColumnReq {
    /// A header, or `sum:A+B`.
    pub spec: String,
    /// What it is for (in messages).
    pub role: &'static str,
    /// Negative values are errors.
    pub non_negative: bool,
    /// A missing header, or a column with no value in any row, gives `None` instead of an error.
    pub optional: bool,
}

impl ColumnReq {
    /// A column that must exist and have values.
    pub fn required(spec: &str, role: &'static str, non_negative: bool) -> ColumnReq {
        ColumnReq {
            spec: spec.to_string(),
            role,
            non_negative,
            optional: false,
        }
    }

    /// A column that may be absent (header missing or every cell empty).
    pub fn optional(spec: &str, role: &'static str, non_negative: bool) -> ColumnReq {
        ColumnReq {
            optional: true,
            ..ColumnReq::required(spec, role, non_negative)
        }
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
    /// Keep only rows whose column (header) equals the value (case-insensitive, trimmed).
    pub row_filter: Option<(String, String)>,
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

/// Reads the header row of a CSV file (BOM stripped, trimmed; comment lines skipped).
pub(crate) fn read_headers(path: &Path) -> Result<Vec<String>, GridError> {
    let file = std::fs::File::open(path).map_err(|source| GridError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .comment(Some(b'#'))
        .from_reader(std::io::BufReader::new(file));
    let headers = reader.headers().map_err(|e| GridError::Csv {
        path: path.to_path_buf(),
        line: e.position().map_or(0, |p| p.line()),
        message: e.to_string(),
    })?;
    Ok(headers
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').trim().to_string())
        .collect())
}

/// Reads a CSV table into regular columns by the rules in the module docs.
pub(crate) fn load_table(spec: &TableSpec) -> Result<Table, GridError> {
    let path = spec.path.as_path();
    let context = path.display().to_string();
    let tz = parse_time_zone(&spec.time_zone, &context)?;
    let file = std::fs::File::open(path).map_err(|source| GridError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .comment(Some(b'#'))
        .from_reader(std::io::BufReader::new(file));
    let csv_err = |e: csv::Error| GridError::Csv {
        path: path.to_path_buf(),
        line: e.position().map_or(0, |p| p.line()),
        message: e.to_string(),
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
        Some((col, value)) => Some((
            find_column(path, &headers, &raw_headers, col, "row filter column")?,
            value.trim().to_lowercase(),
        )),
        None => None,
    };
    // `slots[k]` is the index in `columns` of requested column k, or None if absent (optional).
    let mut columns: Vec<ValueColumn> = Vec::new();
    let mut slots: Vec<Option<usize>> = Vec::new();
    for req in &spec.columns {
        match resolve_value_column(
            path,
            &headers,
            &raw_headers,
            &req.spec,
            req.role,
            req.non_negative,
        ) {
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
    let mut record = csv::StringRecord::new();
    while reader.read_record(&mut record).map_err(csv_err)? {
        let line = record.position().map_or(0, |p| p.line());
        if let Some((idx, want)) = &filter {
            if record.get(*idx).unwrap_or("").trim().to_lowercase() != *want {
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
                value: cell.to_string(),
                expected: spec.stamp_style.expected(),
            })?;
        let prev = rows.last().map(|r| (r.line, r.t_utc_s));
        let t_utc_s = match stamp {
            Stamp::Instant(t) => t,
            Stamp::Local(naive) => match resolve_local(&tz, naive, prev.map(|p| p.1)) {
                Resolved::Utc(t) => t,
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
                    prev_value: prev_text,
                });
            }
        }
        let values = columns
            .iter()
            .map(|c| {
                read_value(
                    path,
                    line,
                    &record,
                    &raw_headers,
                    c,
                    spec.thousands_separator,
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        prev_text = cell.to_string();
        rows.push(Row {
            line,
            t_utc_s,
            values,
        });
    }
    if rows.is_empty() {
        if let Some((col, value)) = &spec.row_filter {
            return Err(GridError::NoMatchingRows {
                path: path.to_path_buf(),
                column: col.clone(),
                value: value.clone(),
            });
        }
    }
    let times: Vec<i64> = rows.iter().map(|r| r.t_utc_s).collect();
    let interval_s = match infer_interval_s(&times) {
        Some(iv) if rows.len() >= 2 => iv,
        _ => {
            return Err(GridError::TooFewRows {
                path: path.to_path_buf(),
                rows: rows.len(),
            })
        }
    };

    // Bin rows onto the regular grid. An end stamp at t belongs to the interval containing t - 1 s.
    let (origin, shift) = if spec.stamp_is_interval_end {
        (times[0] - interval_s, 1)
    } else {
        (times[0], 0)
    };
    let bin_of = |t: i64| ((t - shift - origin).div_euclid(interval_s)) as usize;
    // Missing rows longer than the limit fail here, before any per-interval allocation (a typo'd
    // year would otherwise ask for millions of empty intervals).
    for w in rows.windows(2) {
        let (b0, b1) = (bin_of(w[0].t_utc_s), bin_of(w[1].t_utc_s));
        let missing = b1.saturating_sub(b0 + 1);
        if missing > spec.max_gap_intervals as usize {
            return Err(GridError::GapTooLong {
                path: path.to_path_buf(),
                column: "(all columns: rows missing)".into(),
                missing,
                after_line: w[0].line,
                before_line: w[1].line,
                from_utc: fmt_utc(origin + interval_s * (b0 as i64 + 1)),
                to_utc: fmt_utc(origin + interval_s * (b1 as i64 - 1)),
                limit: spec.max_gap_intervals,
            });
        }
    }
    let n_bins = bin_of(times[times.len() - 1]) + 1;
    let ncol = columns.len();
    let mut sums = vec![0.0; n_bins * ncol];
    let mut counts = vec![0u32; n_bins * ncol];
    let mut rows_in_bin = vec![0u32; n_bins];
    let mut first_line = vec![0u64; n_bins];
    let mut last_line = vec![0u64; n_bins];
    for r in &rows {
        let b = bin_of(r.t_utc_s);
        if rows_in_bin[b] == 0 {
            first_line[b] = r.line;
        }
        rows_in_bin[b] += 1;
        last_line[b] = r.line;
        for (c, v) in r.values.iter().enumerate() {
            if let Some(v) = v {
                sums[b * ncol + c] += v;
                counts[b * ncol + c] += 1;
            }
        }
    }
    let averaged_intervals = rows_in_bin.iter().filter(|n| **n > 1).count();
    // Nearest line at or before / at or after a bin, for gap messages.
    let line_before = |b: usize| {
        (0..=b)
            .rev()
            .find(|i| rows_in_bin[*i] > 0)
            .map_or(0, |i| last_line[i])
    };
    let line_after = |b: usize| {
        (b..n_bins)
            .find(|i| rows_in_bin[*i] > 0)
            .map_or(0, |i| first_line[i])
    };

    let mut filled_columns: Vec<Option<Vec<f64>>> = Vec::with_capacity(ncol);
    let mut interpolated = Vec::with_capacity(ncol);
    for (c, col) in columns.iter().enumerate() {
        let values: Vec<Option<f64>> = (0..n_bins)
            .map(|b| {
                let k = counts[b * ncol + c];
                (k > 0).then(|| sums[b * ncol + c] / f64::from(k))
            })
            .collect();
        let optional = spec
            .columns
            .iter()
            .zip(&slots)
            .any(|(req, slot)| *slot == Some(c) && req.optional);
        if optional && values.iter().all(Option::is_none) {
            filled_columns.push(None);
            continue;
        }
        let (v, n) = fill_gaps(&values, spec.max_gap_intervals as usize).map_err(|e| match e {
            FillError::Edge {
                first,
                last,
                at_start,
            } => GridError::EdgeGap {
                path: path.to_path_buf(),
                column: col.name.clone(),
                missing: last - first + 1,
                edge: if at_start { "start" } else { "end" },
                line: if at_start {
                    line_after(last + 1)
                } else {
                    line_before(first)
                },
            },
            FillError::TooLong { first, last } => GridError::GapTooLong {
                path: path.to_path_buf(),
                column: col.name.clone(),
                missing: last - first + 1,
                after_line: line_before(first - 1),
                before_line: line_after(last + 1),
                from_utc: fmt_utc(origin + interval_s * first as i64),
                to_utc: fmt_utc(origin + interval_s * last as i64),
                limit: spec.max_gap_intervals,
            },
        })?;
        interpolated.push((col.name.clone(), n));
        filled_columns.push(Some(v));
    }
    let out_columns = slots
        .iter()
        .map(|s| s.and_then(|c| filled_columns[c].clone()))
        .collect();
    Ok(Table {
        start_utc_s: origin,
        interval_s,
        columns: out_columns,
        report: LoadReport {
            rows: rows.len(),
            interval_s,
            averaged_intervals,
            interpolated,
        },
    })
}
