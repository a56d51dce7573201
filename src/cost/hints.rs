//! The grid's published run/throttle/pause hints (a carbon-aware API's signal as a generic CSV) on the run's grid intervals, and how often a plan followed them.
//!
//! File rules: a header row; `time_column` holds stamps in the grid loader's forms (naive stamps in
//! `time_zone`, DST as the grid loader resolves it); `hint_column` holds `run`, `throttle` or
//! `pause` (any case). Rows must be in strictly increasing time. A hint holds from its stamp until
//! the next row's stamp; the last row's hint holds for the file's most common row spacing (one row
//! alone: to the end of the run). The hint of a grid interval is the one in force at its start; an
//! interval before the first row or after the last hint ran out has none (counted apart, never
//! guessed).

use super::{CostError, HintsSpec};
use crate::grid::{
    csv_reader, parse_stamp, parse_time_zone, read_source, resolve_local, GridSeries, Resolved,
    Stamp, STAMP_FORMS,
};

/// What the grid asks of flexible loads in an interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hint {
    /// Run freely.
    Run,
    /// Reduce power (any mode but full speed).
    Throttle,
    /// Stop drawing power.
    Pause,
}

impl Hint {
    /// The name in hints files.
    pub fn name(self) -> &'static str {
        match self {
            Hint::Run => "run",
            Hint::Throttle => "throttle",
            Hint::Pause => "pause",
        }
    }

    fn parse(cell: &str) -> Option<Hint> {
        [Hint::Run, Hint::Throttle, Hint::Pause]
            .into_iter()
            .find(|h| h.name().eq_ignore_ascii_case(cell.trim()))
    }
}

/// How the circadian planner uses the hints (`cost.hints.use`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HintUse {
    /// A hard limit: never faster than the hint allows (throttle: no full speed; pause: paused),
    /// even at the cost of the deadline.
    Constraint,
    /// Followed while the deadline still holds by the planner's forecast; where it would not, the
    /// planner departs from the hints in the intervals where that costs least.
    Advice,
}

impl HintUse {
    /// The name in scenario files.
    pub fn name(self) -> &'static str {
        match self {
            HintUse::Constraint => "constraint",
            HintUse::Advice => "advice",
        }
    }
}

/// Grid intervals of a run by how its mode compared with the hint in force.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HintCount {
    /// Intervals whose mode the hint allowed (run: any; throttle: throttled or paused; pause: paused).
    pub followed: u64,
    /// Intervals whose mode was faster than the hint allowed.
    pub deviated: u64,
    /// Intervals of the run with no hint in force.
    pub none: u64,
}

/// The hint in force at the start of each interval of `grid` (see the module docs).
pub fn on_grid(spec: &HintsSpec, grid: &GridSeries) -> Result<Vec<Option<Hint>>, CostError> {
    let rows = read(spec)?;
    let mut gaps: Vec<i64> = rows.windows(2).map(|w| w[1].0 - w[0].0).collect();
    gaps.sort_unstable();
    // The most common spacing (ties: the shorter), as the grid loader infers an interval.
    let spacing = gaps
        .chunk_by(|a, b| a == b)
        .max_by(|a, b| a.len().cmp(&b.len()).then(b[0].cmp(&a[0])))
        .map(|c| c[0]);
    let mut out = Vec::with_capacity(grid.len());
    let mut k = 0usize;
    for i in 0..grid.len() {
        let t = grid.interval_start_utc_s(i);
        while k < rows.len() && rows[k].0 <= t {
            k += 1;
        }
        // rows[k - 1] is the last row at or before t.
        let hint = match k.checked_sub(1) {
            None => None,
            Some(j) if j + 1 < rows.len() => Some(rows[j].1),
            Some(j) => match spacing {
                Some(s) if t >= rows[j].0 + s => None,
                _ => Some(rows[j].1),
            },
        };
        out.push(hint);
    }
    Ok(out)
}

/// The rows of the hints file: (stamp [UTC s], hint), in strictly increasing time.
fn read(spec: &HintsSpec) -> Result<Vec<(i64, Hint)>, CostError> {
    let path = spec.path.as_path();
    let err = |line: u64, column: &str, msg: String| CostError::Hints {
        path: path.to_path_buf(),
        line,
        column: column.to_string(),
        msg,
    };
    let grid_err = |e| CostError::Series {
        what: "hints",
        source: Box::new(e),
    };
    let tz = parse_time_zone(&spec.time_zone, &path.display().to_string()).map_err(grid_err)?;
    let src = read_source(path).map_err(grid_err)?;
    let mut rdr = csv_reader(&src);
    let headers: Vec<String> = rdr
        .headers()
        .map_err(|e| err(1, "", e.to_string()))?
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').trim().to_string())
        .collect();
    let find = |name: &str| {
        headers
            .iter()
            .position(|h| h.eq_ignore_ascii_case(name.trim()))
            .ok_or_else(|| {
                err(
                    1,
                    name,
                    format!("no such column; the file has: {}", headers.join(", ")),
                )
            })
    };
    let (ti, hi) = (find(&spec.time_column)?, find(&spec.hint_column)?);
    let mut rows: Vec<(i64, Hint)> = Vec::new();
    let mut rec = csv::StringRecord::new();
    loop {
        match rdr.read_record(&mut rec) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                return Err(err(line, "", e.to_string()));
            }
        }
        let line = rec.position().map_or(0, |p| p.line());
        let cell = rec.get(ti).unwrap_or("").trim();
        let t = match parse_stamp(cell) {
            Some(Stamp::Instant(t)) => t,
            Some(Stamp::Local(naive)) => {
                match resolve_local(&tz, naive, rows.last().map(|r| r.0)) {
                    Resolved::Utc(t) => t,
                    Resolved::Nonexistent => {
                        return Err(err(
                            line,
                            &spec.time_column,
                            format!(
                            "`{cell}` does not exist in {} (skipped by a daylight-saving change)",
                            tz.name()
                        ),
                        ))
                    }
                }
            }
            None => {
                return Err(err(
                    line,
                    &spec.time_column,
                    format!("`{cell}` is not a time stamp; valid: {STAMP_FORMS}"),
                ))
            }
        };
        let h_cell = rec.get(hi).unwrap_or("");
        let h = Hint::parse(h_cell).ok_or_else(|| {
            err(
                line,
                &spec.hint_column,
                format!(
                    "`{}` is not a hint; valid: run, throttle, pause",
                    h_cell.trim()
                ),
            )
        })?;
        if let Some(&(prev, _)) = rows.last() {
            if t <= prev {
                return Err(err(
                    line,
                    &spec.time_column,
                    format!("`{cell}` is not after the previous row's stamp; rows must be in strictly increasing time"),
                ));
            }
        }
        rows.push((t, h));
    }
    if rows.is_empty() {
        return Err(err(
            1,
            &spec.hint_column,
            "the file has no rows; give at least one run/throttle/pause hint".into(),
        ));
    }
    Ok(rows)
}
