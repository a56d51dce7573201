//! Turning irregular timestamped rows into a regular series: interval inference, binning, gap filling.

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
