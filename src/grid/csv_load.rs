//! Generic CSV loader for grid series (EIA hourly files, Let's Wait Awhile files, user exports).
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
//! `load_column` (and `price_column`) is one column name, or `sum:A+B+C` to add several columns
//! (e.g. `sum:WND+SUN+WAT+OIL+NG+COL+NUC+OTH` for total net generation in the EIA files); a row
//! with any summed cell missing counts as missing.

use std::path::{Path, PathBuf};

use super::error::GridError;
use super::regular::{fill_gaps, infer_interval_s, FillError};
use super::series::{CiKind, GridSeries};
use chrono::NaiveDateTime;

use super::time::{
    fmt_utc, parse_stamp, parse_time_zone, resolve_local, Resolved, Stamp, STAMP_FORMS,
};

/// How to read one CSV file into a [`GridSeries`].
/// `Default` gives empty names, UTC, interval-start stamps, average CI and no gap allowance, for
/// `CsvSpec { path, time_column, ci_column, ..Default::default() }`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CsvSpec {
    /// File to read.
    pub path: PathBuf,
    /// Header of the timestamp column.
    pub time_column: String,
    /// Zone of naive timestamps: an IANA name (e.g. "Europe/Berlin") or "UTC" (empty = UTC).
    /// Also the series' local zone unless `local_time_zone` is given.
    pub time_zone: String,
    /// True if stamps mark the end of their interval (EIA-930 "hour ending"), false for the start.
    pub stamp_is_interval_end: bool,
    /// Header of the carbon-intensity column, gCO2eq/kWh (or `sum:A+B`).
    pub ci_column: String,
    /// Header of the load column in MW, or `sum:A+B+...`; `None` for no load.
    pub load_column: Option<String>,
    /// Header of the price column in currency per MWh (or `sum:A+B`); `None` for no price.
    pub price_column: Option<String>,
    /// Whether the intensity is average or marginal.
    pub ci_kind: CiKind,
    /// Longest run of missing intervals that is interpolated; longer runs are errors.
    pub max_gap_intervals: u32,
    /// Region label stored in the series.
    pub region: String,
    /// The region's local zone (for local hours) when it differs from `time_zone`, e.g. files with
    /// naive UTC stamps for Great Britain: `time_zone = "UTC"`, `local_time_zone = "Europe/London"`.
    pub local_time_zone: Option<String>,
}

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

/// Loads a grid series from a CSV file as described by `spec` (see the module docs for the rules).
pub fn load_csv(spec: &CsvSpec) -> Result<GridSeries, GridError> {
    load_csv_with_report(spec).map(|(s, _)| s)
}

/// Like [`load_csv`], also returning what the loader did (rows averaged, values interpolated).
pub fn load_csv_with_report(spec: &CsvSpec) -> Result<(GridSeries, LoadReport), GridError> {
    let context = spec.path.display().to_string();
    let stamp_zone = if spec.time_zone.trim().is_empty() {
        "UTC"
    } else {
        spec.time_zone.as_str()
    };
    let tz = parse_time_zone(stamp_zone, &context)?;
    let local_tz = match &spec.local_time_zone {
        Some(z) => parse_time_zone(z, &context)?,
        None => tz,
    };
    let mut columns = vec![ColumnReq::required(&spec.ci_column, "ci column", true)];
    if let Some(l) = &spec.load_column {
        columns.push(ColumnReq::required(l, "load column", false));
    }
    if let Some(p) = &spec.price_column {
        columns.push(ColumnReq::required(p, "price column", false));
    }
    let table = load_table(&TableSpec {
        path: spec.path.clone(),
        time_column: spec.time_column.clone(),
        stamp_style: StampStyle::Iso,
        time_zone: stamp_zone.to_string(),
        stamp_is_interval_end: spec.stamp_is_interval_end,
        columns,
        max_gap_intervals: spec.max_gap_intervals,
        thousands_separator: false,
        row_filter: None,
    })?;
    let mut it = table.columns.into_iter().map(Option::unwrap_or_default);
    let ci = it.next().unwrap_or_default();
    let load = spec.load_column.as_ref().and_then(|_| it.next());
    let price = spec.price_column.as_ref().and_then(|_| it.next());
    let series = GridSeries {
        region: spec.region.clone(),
        tz: local_tz,
        start_utc_s: table.start_utc_s,
        interval_s: table.interval_s,
        ci_g_per_kwh: ci,
        ci_kind: spec.ci_kind,
        ci_name: spec.ci_column.trim().to_string(),
        ci_alt: Vec::new(),
        load_mw: load,
        price_per_mwh: price,
        source: spec.path.display().to_string(),
    };
    series.validate()?;
    Ok((series, table.report))
}

/// How the time column writes its stamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StampStyle {
    /// ISO 8601-like forms ([`STAMP_FORMS`]), with or without a UTC offset.
    Iso,
    /// `%m/%d/%Y %I:%M:%S %p` (EIA-930 BALANCE, e.g. `01/01/2022 1:00:00 AM`), naive.
    UsSlash12h,
    /// An ENTSO-E market time unit `START - END`, dates `dd.mm.yyyy` (legacy) or `dd/mm/yyyy` (new
    /// platform), times `HH:MM[:SS]`, optionally followed by `(UTC)`, `(CET)`, `(CEST)` or
    /// `(CET/CEST)`; the start is used. `(UTC)`/`(CET)`/`(CEST)` fix the offset, which settles the
    /// repeated autumn hour; otherwise the start is local in the table's zone.
    EntsoeMtu,
}

const US_STAMP_FORM: &str = "'MM/DD/YYYY hh:mm:ss AM' or 'PM' (EIA-930 hour-ending stamps)";
const MTU_FORM: &str = "'DD.MM.YYYY HH:MM - DD.MM.YYYY HH:MM' or 'DD/MM/YYYY HH:MM:SS - DD/MM/YYYY HH:MM:SS', optionally followed by '(UTC)', '(CET)', '(CEST)' or '(CET/CEST)'";

impl StampStyle {
    fn expected(self) -> &'static str {
        match self {
            StampStyle::Iso => STAMP_FORMS,
            StampStyle::UsSlash12h => US_STAMP_FORM,
            StampStyle::EntsoeMtu => MTU_FORM,
        }
    }

    fn parse(self, cell: &str) -> Option<Stamp> {
        match self {
            StampStyle::Iso => parse_stamp(cell),
            StampStyle::UsSlash12h => {
                let t = cell.trim();
                ["%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y %I:%M %p"]
                    .iter()
                    .find_map(|f| NaiveDateTime::parse_from_str(t, f).ok())
                    .map(Stamp::Local)
            }
            StampStyle::EntsoeMtu => parse_mtu(cell),
        }
    }
}

/// Parses an ENTSO-E MTU cell (see [`StampStyle::EntsoeMtu`]) into its start.
fn parse_mtu(cell: &str) -> Option<Stamp> {
    let mut text = cell.trim();
    let mut offset_s: Option<i64> = None;
    if let Some(open) = text.rfind('(') {
        let zone = text[open..]
            .trim_start_matches('(')
            .trim_end_matches(')')
            .trim();
        offset_s = match zone.to_ascii_uppercase().as_str() {
            "UTC" => Some(0),
            "CET" => Some(3600),
            "CEST" => Some(7200),
            "CET/CEST" => None,
            _ => return None,
        };
        text = text[..open].trim();
    }
    let start = text.split(" - ").next()?.trim();
    let naive = [
        "%d.%m.%Y %H:%M",
        "%d.%m.%Y %H:%M:%S",
        "%d/%m/%Y %H:%M:%S",
        "%d/%m/%Y %H:%M",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(start, f).ok())?;
    Some(match offset_s {
        Some(off) => Stamp::Instant(naive.and_utc().timestamp() - off),
        None => Stamp::Local(naive),
    })
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// Writes `text` to a temporary CSV and returns it with a spec (UTC, start stamps, load "load").
    fn file(text: &str) -> (tempfile::NamedTempFile, CsvSpec) {
        let mut f = match tempfile::NamedTempFile::new() {
            Ok(f) => f,
            Err(e) => panic!("tempfile: {e}"),
        };
        if let Err(e) = f.write_all(text.as_bytes()) {
            panic!("write: {e}");
        }
        let spec = CsvSpec {
            path: f.path().to_path_buf(),
            time_column: "time".into(),
            time_zone: "UTC".into(),
            ci_column: "ci".into(),
            load_column: Some("load".into()),
            max_gap_intervals: 2,
            region: "T".into(),
            ..Default::default()
        };
        (f, spec)
    }

    fn ok(spec: &CsvSpec) -> (GridSeries, LoadReport) {
        match load_csv_with_report(spec) {
            Ok(x) => x,
            Err(e) => panic!("unexpected error: {e}"),
        }
    }

    fn err(spec: &CsvSpec) -> String {
        match load_csv(spec) {
            Ok(s) => panic!("expected an error, got {} intervals", s.len()),
            Err(e) => e.to_string(),
        }
    }

    const T0: i64 = 1_640_995_200; // 2022-01-01T00:00:00Z

    #[test]
    fn reads_offsets_bom_and_loose_headers() {
        let (_f, spec) = file(
            "\u{feff} TIME ,CI, Load \n2022-01-01T00:00:00+00:00,100,5\n2022-01-01 01:00:00+00:00,200,6\n2022-01-01T03:00:00+01:00,300,7\n",
        );
        let (s, r) = ok(&spec);
        assert_eq!((s.start_utc_s, s.interval_s, s.len()), (T0, 3600, 3));
        assert_eq!(s.ci_g_per_kwh, vec![100.0, 200.0, 300.0]);
        assert_eq!(s.load_mw, Some(vec![5.0, 6.0, 7.0]));
        assert_eq!(
            r.interpolated,
            vec![("ci".to_string(), 0), ("load".to_string(), 0)]
        );
    }

    #[test]
    fn missing_file_names_the_path() {
        let spec = CsvSpec {
            path: "/nonexistent/grid.csv".into(),
            ..Default::default()
        };
        let e = err(&spec);
        assert!(
            e.contains("/nonexistent/grid.csv") && e.contains("cannot read"),
            "{e}"
        );
    }

    #[test]
    fn unknown_column_lists_the_columns() {
        let (_f, mut spec) = file("time,ci,load\n2022-01-01 00:00,1,1\n");
        spec.ci_column = "carbon".into();
        let e = err(&spec);
        assert!(
            e.contains("'carbon'") && e.contains("'time', 'ci', 'load'") && e.contains(":1:"),
            "{e}"
        );
    }

    #[test]
    fn bad_number_names_line_column_and_value() {
        let (_f, spec) = file("time,ci,load\n2022-01-01 00:00,1,1\n2022-01-01 01:00,1,x7\n");
        let e = err(&spec);
        assert!(
            e.contains(":3:")
                && e.contains("'load'")
                && e.contains("'x7'")
                && e.contains("decimal"),
            "{e}"
        );
        let (_f, spec) = file("time,ci,load\n2022-01-01 00:00,-4,1\n2022-01-01 01:00,1,1\n");
        let e = err(&spec);
        assert!(e.contains(":2:") && e.contains(">= 0"), "{e}");
    }

    #[test]
    fn bad_timestamp_names_line_and_forms() {
        let (_f, spec) = file("time,ci,load\n2022-01-01 00:00,1,1\n01/02/2022 1:00 PM,1,1\n");
        let e = err(&spec);
        assert!(
            e.contains(":3:")
                && e.contains("'time'")
                && e.contains("01/02/2022")
                && e.contains("YYYY-MM-DD"),
            "{e}"
        );
    }

    #[test]
    fn duplicate_names_both_lines() {
        let (_f, spec) = file(
            "time,ci,load\n2022-01-01 00:00,1,1\n2022-01-01 01:00,1,1\n2022-01-01T01:00Z,2,2\n",
        );
        let e = err(&spec);
        assert!(
            e.contains(":4:") && e.contains("duplicate") && e.contains("line 3"),
            "{e}"
        );
    }

    #[test]
    fn out_of_order_names_the_row() {
        let (_f, spec) = file("time,ci,load\n2022-01-01 02:00,1,1\n2022-01-01 01:00,1,1\n");
        let e = err(&spec);
        assert!(
            e.contains(":3:") && e.contains("earlier than line 2"),
            "{e}"
        );
    }

    #[test]
    fn long_gap_is_an_error_naming_rows_and_limit() {
        // Missing rows 01:00..03:00 (3 intervals) with a limit of 2.
        let (_f, spec) = file(
            "time,ci,load\n2022-01-01 00:00,1,1\n2022-01-01 04:00,5,5\n2022-01-01 05:00,6,6\n",
        );
        let e = err(&spec);
        assert!(
            e.contains("3 missing") && e.contains("line 2 and line 3") && e.contains("at most 2"),
            "{e}"
        );
        assert!(
            e.contains("rows missing")
                && e.contains("2022-01-01T01:00:00Z to 2022-01-01T03:00:00Z"),
            "{e}"
        );
        // Empty cells count the same way.
        let (_f, spec) = file("time,ci,load\n2022-01-01 00:00,1,1\n2022-01-01 01:00,,1\n2022-01-01 02:00,n/e,1\n2022-01-01 03:00,,1\n2022-01-01 04:00,5,1\n");
        let e = err(&spec);
        assert!(
            e.contains("'ci'") && e.contains("3 missing") && e.contains("line 2 and line 6"),
            "{e}"
        );
    }

    #[test]
    fn short_gaps_are_interpolated() {
        let (_f, spec) = file(
            "time,ci,load\n2022-01-01 00:00,10,100\n2022-01-01 02:00,30,\n2022-01-01 03:00,40,400\n",
        );
        let (s, r) = ok(&spec);
        assert_eq!(s.ci_g_per_kwh, vec![10.0, 20.0, 30.0, 40.0]);
        assert_eq!(s.load_mw, Some(vec![100.0, 200.0, 300.0, 400.0]));
        assert_eq!(
            r.interpolated,
            vec![("ci".to_string(), 1), ("load".to_string(), 2)]
        );
    }

    #[test]
    fn missing_values_at_the_edges_are_errors() {
        let (_f, spec) = file("time,ci,load\n2022-01-01 00:00,,1\n2022-01-01 01:00,1,1\n");
        let e = err(&spec);
        assert!(e.contains("start") && e.contains("line 3"), "{e}");
    }

    #[test]
    fn sum_columns_add_and_propagate_missing() {
        let (_f, mut spec) = file(
            "time,ci,A,B\n2022-01-01 00:00,1,1,2\n2022-01-01 01:00,1,3,\n2022-01-01 02:00,1,5,6\n",
        );
        spec.load_column = Some("sum: a + B".into());
        let (s, _) = ok(&spec);
        assert_eq!(s.load_mw, Some(vec![3.0, 7.0, 11.0]));
        spec.load_column = Some("sum:A++B".into());
        assert!(err(&spec).contains("sum:"));
        spec.load_column = Some("sum:A+C".into());
        assert!(err(&spec).contains("'C'"));
    }

    #[test]
    fn interval_end_stamps_move_back_one_interval() {
        let (_f, mut spec) = file("time,ci,load\n2022-01-01 01:00,1,1\n2022-01-01 02:00,2,2\n");
        spec.stamp_is_interval_end = true;
        let (s, _) = ok(&spec);
        assert_eq!((s.start_utc_s, s.len()), (T0, 2));
    }

    #[test]
    fn finer_rows_are_averaged_into_the_common_interval() {
        // 30-minute data switching to 15-minute data (as GB 2020 does).
        let (_f, mut spec) = file(
            "time,ci\n2022-01-01 00:00,10\n2022-01-01 00:30,20\n2022-01-01 01:00,30\n2022-01-01 01:30,40\n2022-01-01 02:00,50\n2022-01-01 02:30,60\n2022-01-01 02:45,80\n2022-01-01 03:00,90\n",
        );
        spec.load_column = None;
        let (s, r) = ok(&spec);
        assert_eq!(s.interval_s, 1800);
        assert_eq!(
            s.ci_g_per_kwh,
            vec![10.0, 20.0, 30.0, 40.0, 50.0, 70.0, 90.0]
        );
        assert_eq!(r.averaged_intervals, 1);
        assert_eq!(s.load_mw, None);
    }

    #[test]
    fn too_few_rows_and_bad_zone() {
        let (_f, spec) = file("time,ci,load\n2022-01-01 00:00,1,1\n");
        assert!(err(&spec).contains("1 data row"));
        let (_f, mut spec) = file("time,ci,load\n2022-01-01 00:00,1,1\n2022-01-01 01:00,1,1\n");
        spec.time_zone = "Pacific Time".into();
        assert!(err(&spec).contains("unknown time zone 'Pacific Time'"));
    }

    #[test]
    fn dst_spring_forward_local_stamps_are_contiguous() {
        // Los Angeles, 2022-03-13: clocks jump 02:00 -> 03:00, so 01:00 and 03:00 are one hour apart.
        let (_f, mut spec) = file("time,ci\n2022-03-13 00:00,1\n2022-03-13 01:00,2\n2022-03-13 03:00,3\n2022-03-13 04:00,4\n");
        spec.time_zone = "America/Los_Angeles".into();
        spec.load_column = None;
        spec.max_gap_intervals = 0;
        let (s, _) = ok(&spec);
        assert_eq!(s.start_utc_s, 1_647_158_400); // 2022-03-13T08:00Z
        assert_eq!(s.ci_g_per_kwh, vec![1.0, 2.0, 3.0, 4.0]);
        let hours: Vec<u32> = (0..s.len()).map(|i| s.local_hour(i)).collect();
        assert_eq!(hours, vec![0, 1, 3, 4]);
        // A stamp inside the skipped hour is an error naming the row.
        let (_f, mut spec2) = file("time,ci\n2022-03-13 01:00,2\n2022-03-13 02:00,3\n");
        spec2.time_zone = "America/Los_Angeles".into();
        spec2.load_column = None;
        let e = err(&spec2);
        assert!(e.contains(":3:") && e.contains("does not exist"), "{e}");
    }

    #[test]
    fn dst_fall_back_repeated_hour_maps_to_both_instants() {
        // Los Angeles, 2022-11-06: 01:00-01:59 happens twice (PDT, then PST).
        let (_f, mut spec) = file("time,ci\n2022-11-06 00:00,1\n2022-11-06 01:00,2\n2022-11-06 01:00,3\n2022-11-06 02:00,4\n");
        spec.time_zone = "America/Los_Angeles".into();
        spec.load_column = None;
        spec.max_gap_intervals = 0;
        let (s, _) = ok(&spec);
        assert_eq!(s.start_utc_s, 1_667_718_000); // 2022-11-06T07:00Z
        assert_eq!(s.ci_g_per_kwh, vec![1.0, 2.0, 3.0, 4.0]);
        let hours: Vec<u32> = (0..s.len()).map(|i| s.local_hour(i)).collect();
        assert_eq!(hours, vec![0, 1, 1, 2]);
        // Listed once, the repeated hour is a one-interval gap: an error with no allowance...
        let (_f, mut spec1) =
            file("time,ci\n2022-11-06 00:00,1\n2022-11-06 01:00,2\n2022-11-06 02:00,4\n");
        spec1.time_zone = "America/Los_Angeles".into();
        spec1.load_column = None;
        spec1.max_gap_intervals = 0;
        assert!(err(&spec1).contains("1 missing"));
        // ...and interpolated with one.
        spec1.max_gap_intervals = 1;
        assert_eq!(ok(&spec1).0.ci_g_per_kwh, vec![1.0, 2.0, 3.0, 4.0]);
    }

    #[test]
    fn local_zone_can_differ_from_stamp_zone() {
        let (_f, mut spec) = file("time,ci\n2020-07-01 00:00:00,1\n2020-07-01 00:30:00,2\n");
        spec.load_column = None;
        spec.local_time_zone = Some("Europe/London".into());
        let (s, _) = ok(&spec);
        assert_eq!(s.local_hour(0), 1); // BST = UTC+1
    }
}
