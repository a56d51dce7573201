//! Turning irregular timestamped rows into a regular series: interval inference, binning, gap filling.

use std::path::Path;

use super::error::GridError;
use super::table::LoadReport;
use super::time::fmt_utc;

/// Most common positive difference between consecutive instants (ties: the smallest), seconds.
/// `None` if fewer than two instants or no positive difference.
pub(crate) fn infer_interval_s(times_utc_s: &[i64]) -> Option<i64> {
    let mut diffs: Vec<i64> = times_utc_s
        .windows(2)
        .map(|w| w[1] - w[0])
        .filter(|d| *d > 0)
        .collect();
    diffs.sort_unstable();
    let mut best: Option<(i64, usize)> = None;
    let mut i = 0;
    while i < diffs.len() {
        let mut j = i;
        while j < diffs.len() && diffs[j] == diffs[i] {
            j += 1;
        }
        if best.is_none_or(|(_, c)| j - i > c) {
            best = Some((diffs[i], j - i));
        }
        i = j;
    }
    best.map(|(d, _)| d)
}

/// A run of missing values that could not be filled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FillError {
    /// Missing values at index range [first, last] touch the start or the end.
    Edge {
        first: usize,
        last: usize,
        at_start: bool,
    },
    /// Missing run [first, last] is longer than the limit.
    TooLong { first: usize, last: usize },
}

/// Fills runs of `None` by linear interpolation between the neighbouring values, if each run is
/// at most `max_gap` long and has a value on both sides. Returns the values and the number filled.
pub(crate) fn fill_gaps(
    values: &[Option<f64>],
    max_gap: usize,
) -> Result<(Vec<f64>, usize), FillError> {
    let n = values.len();
    let mut out = Vec::with_capacity(n);
    let mut filled = 0;
    let mut i = 0;
    while i < n {
        if let Some(v) = values[i] {
            out.push(v);
            i += 1;
            continue;
        }
        let first = i;
        while i < n && values[i].is_none() {
            i += 1;
        }
        let last = i - 1;
        if first == 0 || i == n {
            return Err(FillError::Edge {
                first,
                last,
                at_start: first == 0,
            });
        }
        let run = last - first + 1;
        if run > max_gap {
            return Err(FillError::TooLong { first, last });
        }
        let (Some(before), Some(after)) = (values[first - 1], values[i]) else {
            return Err(FillError::TooLong { first, last });
        };
        for k in 1..=run {
            let frac = k as f64 / (run + 1) as f64;
            out.push(before + (after - before) * frac);
        }
        filled += run;
    }
    Ok((out, filled))
}

/// One timestamped data row of a grid file, before binning.
pub(crate) struct Row {
    /// 1-based line in the file.
    pub line: u64,
    /// Instant of the stamp, seconds since the Unix epoch (UTC).
    pub t_utc_s: i64,
    /// One value per [`BinColumn`] (`None`: missing).
    pub values: Vec<Option<f64>>,
}

/// A value column to bin: its name (in messages) and whether it may be wholly empty.
pub(crate) struct BinColumn {
    pub name: String,
    pub optional: bool,
}

/// Rows on a regular grid.
pub(crate) struct Binned {
    pub start_utc_s: i64,
    pub interval_s: i64,
    /// Per [`BinColumn`]: values per interval (gaps filled), `None` for an optional empty column.
    pub columns: Vec<Option<Vec<f64>>>,
    pub report: LoadReport,
}

/// Puts time-ordered rows on a regular grid: infers the interval, averages rows that share an
/// interval, moves interval-end stamps back, and fills gaps of at most `max_gap_intervals`.
pub(crate) fn bin_rows(
    path: &Path,
    rows: &[Row],
    columns: &[BinColumn],
    stamp_is_interval_end: bool,
    max_gap_intervals: u32,
) -> Result<Binned, GridError> {
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
    let (origin, shift) = if stamp_is_interval_end {
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
        if missing > max_gap_intervals as usize {
            return Err(GridError::GapTooLong {
                path: path.to_path_buf(),
                column: "(all columns: rows missing)".into(),
                missing,
                after_line: w[0].line,
                before_line: w[1].line,
                from_utc: fmt_utc(origin + interval_s * (b0 as i64 + 1)),
                to_utc: fmt_utc(origin + interval_s * (b1 as i64 - 1)),
                limit: max_gap_intervals,
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
    for r in rows {
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
        let optional = col.optional;
        if optional && values.iter().all(Option::is_none) {
            filled_columns.push(None);
            continue;
        }
        let (v, n) = fill_gaps(&values, max_gap_intervals as usize).map_err(|e| match e {
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
                limit: max_gap_intervals,
            },
        })?;
        interpolated.push((col.name.clone(), n));
        filled_columns.push(Some(v));
    }
    Ok(Binned {
        start_utc_s: origin,
        interval_s,
        columns: filled_columns,
        report: LoadReport {
            rows: rows.len(),
            interval_s,
            averaged_intervals,
            interpolated,
            notes: Vec::new(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interval_is_most_common_difference() {
        assert_eq!(infer_interval_s(&[0, 60, 120, 300, 360]), Some(60));
        // GB 2020 pattern: mostly 1800 s, later 900 s.
        assert_eq!(
            infer_interval_s(&[0, 1800, 3600, 5400, 6300, 7200]),
            Some(1800)
        );
        // tie -> smallest
        assert_eq!(infer_interval_s(&[0, 10, 30]), Some(10));
        assert_eq!(infer_interval_s(&[5]), None);
    }

    #[test]
    fn short_gaps_interpolate_linearly() {
        let v = [Some(0.0), None, None, Some(3.0), Some(4.0)];
        assert_eq!(fill_gaps(&v, 2), Ok((vec![0.0, 1.0, 2.0, 3.0, 4.0], 2)));
    }

    #[test]
    fn long_and_edge_gaps_are_errors() {
        let v = [Some(0.0), None, None, Some(3.0)];
        assert_eq!(
            fill_gaps(&v, 1),
            Err(FillError::TooLong { first: 1, last: 2 })
        );
        let v = [None, Some(1.0)];
        assert_eq!(
            fill_gaps(&v, 5),
            Err(FillError::Edge {
                first: 0,
                last: 0,
                at_start: true
            })
        );
        let v = [Some(1.0), None];
        assert_eq!(
            fill_gaps(&v, 5),
            Err(FillError::Edge {
                first: 1,
                last: 1,
                at_start: false
            })
        );
    }
}
