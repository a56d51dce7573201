//! Running a sweep: the shard's points on a rayon pool, rows journaled as points finish, `sweep.csv`
//! rewritten atomically (sorted by point, strategy), and resume from what an earlier run left.

use super::metric::Metric;
use super::progress::{Observer, PointDone};
use super::{cell, Sweep, SweepError};
use crate::io::write_atomic;
use crate::report::{summary_rows, SummaryRow};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The results file: one row per point and strategy, sorted.
pub const SWEEP_CSV: &str = "sweep.csv";
/// The sweep's identity (fingerprint, size, shard) beside its results.
pub const MANIFEST_FILE: &str = "sweep.manifest.json";
/// Rows appended as points finish (what a resume reads).
pub const JOURNAL_FILE: &str = "sweep.journal.csv";

/// Which share of the points a process runs: those with `index % count == index_of_shard`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// This shard, 0-based (`0..count`), e.g. `$SLURM_ARRAY_TASK_ID`.
    pub index: usize,
    /// Number of shards.
    pub count: usize,
}

impl Shard {
    /// The whole sweep.
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// Parse `I/N` (0 ≤ I < N).
    pub fn parse(s: &str) -> Result<Shard, SweepError> {
        let bad = |msg: String| SweepError::Flag {
            flag: "--shard",
            msg,
        };
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| bad(format!("`{s}` must be I/N, e.g. 0/4 (shards are 0-based)")))?;
        let i: usize = i
            .trim()
            .parse()
            .map_err(|_| bad(format!("`{i}` in `{s}` is not a shard index (0, 1, ...)")))?;
        let n: usize = n
            .trim()
            .parse()
            .map_err(|_| bad(format!("`{n}` in `{s}` is not a shard count (1, 2, ...)")))?;
        if n == 0 || i >= n {
            return Err(bad(format!("`{s}`: need 0 ≤ I < N (shards are 0-based)")));
        }
        Ok(Shard { index: i, count: n })
    }

    /// Whether point `index` belongs to this shard (round robin, so costly regions of a grid spread).
    pub fn has(&self, point: usize) -> bool {
        point % self.count == self.index
    }
}

/// How to run a sweep.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Output folder (`sweep.csv`, the journal and the manifest go there).
    pub out_dir: PathBuf,
    /// Worker threads (None: all cores).
    pub jobs: Option<usize>,
    /// The share of points to run.
    pub shard: Shard,
    /// Discard earlier outputs in `out_dir` instead of resuming from them.
    pub fresh: bool,
    /// The figure whose running best is shown.
    pub best_by: Metric,
    /// Least time between rewrites of `sweep.csv` while running (it is always written at the end).
    pub rewrite_every: Duration,
}

impl RunOptions {
    /// Defaults: all cores, the whole sweep, resume, best by CO2, rewrite every 2 s.
    pub fn new(out_dir: PathBuf) -> Self {
        Self {
            out_dir,
            jobs: None,
            shard: Shard::ALL,
            fresh: false,
            best_by: Metric::Co2,
            rewrite_every: Duration::from_secs(2),
        }
    }
}

/// What a sweep run did.
#[derive(Debug, Clone)]
pub struct RunSummary {
    /// Points in the whole sweep.
    pub points_total: usize,
    /// Points in this shard.
    pub points_shard: usize,
    /// Points found done from an earlier run and skipped.
    pub skipped: usize,
    /// Points run now.
    pub ran: usize,
    /// Points (of this shard, old and new) whose simulation failed (`status = failed` rows).
    pub failed: usize,
    /// Per strategy: the lowest value of the metric, and the point that has it.
    pub best: Vec<(String, f64, usize)>,
    /// Seconds spent running points.
    pub elapsed_s: f64,
    /// The results file.
    pub csv: PathBuf,
}

/// The identity of a sweep's outputs, written beside them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Manifest {
    pub name: String,
    pub file: String,
    pub fingerprint: String,
    pub points_total: usize,
    pub shard: Shard,
    pub columns: Vec<String>,
}

type Row = Vec<String>;

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> SweepError + '_ {
    move |source| SweepError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The summary part of a `sweep.csv` row: the summary columns but `strategy` (already the second
/// column). Worked out once per sweep, not per row.
struct SummaryLayout {
    /// The columns, in file order, `strategy` left out.
    columns: Row,
    /// Where `strategy` stands among the summary's own columns.
    strategy_at: Option<usize>,
}

impl SummaryLayout {
    fn new() -> Self {
        let mut columns = crate::report::summary_columns();
        let strategy_at = columns.iter().position(|c| c == "strategy");
        if let Some(i) = strategy_at {
            columns.remove(i);
        }
        Self {
            columns,
            strategy_at,
        }
    }

    /// The cells of `row`, in the order of `columns`.
    fn cells(&self, row: &SummaryRow) -> Row {
        let mut w = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(Vec::new());
        let _ = w.serialize(row);
        let bytes = w.into_inner().unwrap_or_default();
        let mut r = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(bytes.as_slice());
        r.records()
            .next()
            .and_then(|r| r.ok())
            .map(|r| {
                r.iter()
                    .enumerate()
                    .filter(|(i, _)| Some(*i) != self.strategy_at)
                    .map(|(_, c)| c.to_string())
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// The `sweep.csv` header: point, strategy, the swept paths, seed, status, error, then the summary columns.
fn header(sweep: &Sweep, summary: &SummaryLayout) -> Row {
    let mut h: Row = vec!["point".into(), "strategy".into()];
    h.extend(sweep.param_columns());
    h.extend(["seed", "status", "error"].map(String::from));
    h.extend(summary.columns.iter().cloned());
    h
}

/// The routing trace files of `points` (each path once), opened and checked. Only the first
/// point's scenario is built unless the sweep varies a `routing` key (building a scenario per
/// point here would be serial work before the parallel run).
fn held_traces(sweep: &Sweep, points: &[usize]) -> Vec<std::sync::Arc<crate::routing::TraceFile>> {
    let varies_routing = |i: &usize| {
        sweep.points[*i]
            .assignments
            .iter()
            .any(|(p, _)| p.starts_with("routing"))
    };
    let n = match points.iter().any(varies_routing) {
        true => points.len(),
        false => points.len().min(1),
    };
    let mut paths: Vec<PathBuf> = Vec::new();
    for &i in &points[..n] {
        if let Ok(s) = sweep.scenario(i) {
            if let crate::routing::RoutingSource::Trace { path, .. } = &s.routing.source {
                if s.moe.is_some() && !paths.contains(path) {
                    paths.push(path.clone());
                }
            }
        }
    }
    paths
        .iter()
        .filter_map(|p| crate::routing::TraceFile::open_shared(p).ok())
        .collect()
}

/// Run point `index` and render its rows (one per strategy; `failed` rows if it could not run).
fn run_point(sweep: &Sweep, index: usize, summary: &SummaryLayout) -> (Vec<Row>, bool) {
    let point = &sweep.points[index];
    let prefix = |strategy: &str, status: &str, error: &str| {
        let mut r: Row = vec![index.to_string(), strategy.to_string()];
        r.extend(point.assignments.iter().map(|(_, v)| cell(v)));
        r.push(sweep.seed_of(index).to_string());
        r.push(status.to_string());
        r.push(error.replace(['\n', '\r'], " "));
        r
    };
    let result = sweep
        .scenario(index)
        .map_err(|e| e.to_string())
        .and_then(|mut s| {
            // A point's row holds the strategies only: the multi-region comparison would be
            // simulated and thrown away.
            s.sites = None;
            crate::simulate(&s).map_err(|e| e.to_string())
        });
    match result {
        Ok(res) => (
            summary_rows(&res)
                .iter()
                .map(|s| {
                    let mut r = prefix(&s.strategy, "ok", "");
                    r.extend(summary.cells(s));
                    r
                })
                .collect(),
            false,
        ),
        Err(msg) => (
            sweep.strategies[index]
                .iter()
                .map(|k| {
                    let mut r = prefix(k.name(), "failed", &msg);
                    r.extend(std::iter::repeat_n(String::new(), summary.columns.len()));
                    r
                })
                .collect(),
            true,
        ),
    }
}

fn csv_line(rows: &[Row]) -> Vec<u8> {
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new());
    for r in rows {
        let _ = w.write_record(r);
    }
    w.into_inner().unwrap_or_default()
}

/// Render `header` and the rows of every point, in point order.
pub(crate) fn csv_bytes(header: &Row, rows: &BTreeMap<usize, Vec<Row>>) -> Vec<u8> {
    let mut out = csv_line(std::slice::from_ref(header));
    for r in rows.values() {
        out.extend(csv_line(r));
    }
    out
}

/// Read CSV rows (no header) from `bytes` up to the last complete line; group them by point.
pub(crate) fn read_rows(bytes: &[u8]) -> Vec<Row> {
    let end = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |p| p + 1);
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(&bytes[..end]);
    r.records()
        .filter_map(|x| x.ok())
        .map(|x| x.iter().map(String::from).collect())
        .collect()
}

/// The complete points among journal rows: each has exactly its strategies' rows, in order.
fn complete_points(
    sweep: &Sweep,
    shard: Shard,
    width: usize,
    rows: Vec<Row>,
) -> BTreeMap<usize, Vec<Row>> {
    let mut by_point: BTreeMap<usize, Vec<Row>> = BTreeMap::new();
    for r in rows {
        if r.len() != width {
            continue;
        }
        if let Ok(i) = r[0].parse::<usize>() {
            if i < sweep.len() && shard.has(i) {
                by_point.entry(i).or_default().push(r);
            }
        }
    }
    by_point.retain(|i, rows| {
        let want = &sweep.strategies[*i];
        rows.len() == want.len() && rows.iter().zip(want).all(|(r, k)| r[1] == k.name())
    });
    by_point
}

fn read_manifest(path: &Path) -> Result<Option<Manifest>, SweepError> {
    match std::fs::read_to_string(path) {
        Ok(t) => serde_json::from_str(&t)
            .map(Some)
            .map_err(|e| SweepError::Mismatch {
                path: path.to_path_buf(),
                msg: format!("not a sweep manifest ({e}); remove it or use --fresh"),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(SweepError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

pub(crate) fn load_manifest(dir: &Path) -> Result<Manifest, SweepError> {
    let path = dir.join(MANIFEST_FILE);
    read_manifest(&path)?.ok_or_else(|| SweepError::Mismatch {
        path,
        msg: "missing: not the output folder of `moesim sweep`".into(),
    })
}

pub(crate) fn write_manifest(dir: &Path, m: &Manifest) -> Result<(), SweepError> {
    let path = dir.join(MANIFEST_FILE);
    let text = serde_json::to_string_pretty(m).unwrap_or_default() + "\n";
    Ok(write_atomic(&path, text.as_bytes())?)
}

/// Lowest metric value per strategy over `rows` (NaN and empty cells skipped; ties go to the lower point).
pub(crate) fn best_of<'a>(
    header: &Row,
    metric: Metric,
    rows: impl Iterator<Item = &'a Row>,
) -> Vec<(String, f64, usize)> {
    let Some(col) = header.iter().position(|h| h == metric.column()) else {
        return Vec::new();
    };
    let mut best: Vec<(String, f64, usize)> = Vec::new();
    for r in rows {
        let (Ok(v), Ok(i)) = (r[col].parse::<f64>(), r[0].parse::<usize>()) else {
            continue;
        };
        if v.is_nan() {
            continue;
        }
        match best.iter_mut().find(|(s, _, _)| *s == r[1]) {
            Some(b) => {
                if v < b.1 || (v == b.1 && i < b.2) {
                    *b = (r[1].clone(), v, i);
                }
            }
            None => best.push((r[1].clone(), v, i)),
        }
    }
    best
}

struct State {
    journal: std::fs::File,
    rows: BTreeMap<usize, Vec<Row>>,
    last_rewrite: Instant,
    done: usize,
    failed: usize,
    best: Vec<(String, f64, usize)>,
}

/// Run the shard's points of `sweep` that `opts.out_dir` does not have yet; `sweep.csv` there ends up
/// with every point of the shard, sorted by point and strategy, identical on any thread count.
pub fn run_sweep(
    sweep: &Sweep,
    opts: &RunOptions,
    observer: &dyn Observer,
) -> Result<RunSummary, SweepError> {
    let dir = &opts.out_dir;
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let summary = SummaryLayout::new();
    let header = header(sweep, &summary);
    let manifest = Manifest {
        name: sweep.name.clone(),
        file: sweep.file.clone(),
        fingerprint: sweep.fingerprint.clone(),
        points_total: sweep.len(),
        shard: opts.shard,
        columns: header.clone(),
    };
    let journal_path = dir.join(JOURNAL_FILE);
    let csv_path = dir.join(SWEEP_CSV);
    let manifest_path = dir.join(MANIFEST_FILE);
    if opts.fresh {
        for p in [&journal_path, &csv_path, &manifest_path] {
            match std::fs::remove_file(p) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io_err(p)(e)),
                _ => {}
            }
        }
    }
    if let Some(old) = read_manifest(&manifest_path)? {
        // The file name may differ (another path to the same file); the content may not.
        let old_same_file = Manifest {
            file: manifest.file.clone(),
            ..old.clone()
        };
        if old_same_file != manifest {
            let what = if old.fingerprint != manifest.fingerprint || old.columns != manifest.columns
            {
                format!(
                    "holds results of another sweep (`{}`, fingerprint {}; this one is {})",
                    old.file, old.fingerprint, manifest.fingerprint
                )
            } else {
                format!(
                    "holds shard {}/{} but this run is shard {}/{}",
                    old.shard.index, old.shard.count, opts.shard.index, opts.shard.count
                )
            };
            return Err(SweepError::Mismatch {
                path: dir.clone(),
                msg: format!("{what}; use --fresh to discard it, or --out for another folder"),
            });
        }
    }
    write_manifest(dir, &manifest)?;
    // Resume: complete points of the journal (a torn last line is dropped), else of sweep.csv.
    let journal_rows = match std::fs::read(&journal_path) {
        Ok(b) => read_rows(&b),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(io_err(&journal_path)(e)),
    };
    let mut done = complete_points(sweep, opts.shard, header.len(), journal_rows);
    if let Ok(b) = std::fs::read(&csv_path) {
        let from_csv = complete_points(sweep, opts.shard, header.len(), read_rows(&b));
        for (i, r) in from_csv {
            done.entry(i).or_insert(r);
        }
    }
    // The journal restarts from exactly the complete points, so appends never follow a torn line.
    let journal_bytes: Vec<u8> = done.values().flat_map(|r| csv_line(r)).collect();
    write_atomic(&journal_path, &journal_bytes)?;
    let journal = std::fs::OpenOptions::new()
        .append(true)
        .open(&journal_path)
        .map_err(io_err(&journal_path))?;
    let shard_points: Vec<usize> = (0..sweep.len()).filter(|i| opts.shard.has(*i)).collect();
    let pending: Vec<usize> = shard_points
        .iter()
        .copied()
        .filter(|i| !done.contains_key(i))
        .collect();
    let skipped = done.len();
    let status_col = header.iter().position(|h| h == "status").unwrap_or(0);
    let failed_before = done
        .values()
        .filter(|r| r.first().is_some_and(|r| r[status_col] == "failed"))
        .count();
    let best = best_of(&header, opts.best_by, done.values().flatten());
    let state = Mutex::new(State {
        journal,
        rows: done,
        last_rewrite: Instant::now(),
        done: skipped,
        failed: failed_before,
        best,
    });
    // The routing traces of the points, opened once and held for the whole sweep: every point
    // finds them checked (`TraceFile::open_shared`), a long CSV sorted into a temporary file too.
    // A trace that does not open is left to its point, whose row reports the error.
    let _traces = held_traces(sweep, &pending);
    observer.start(shard_points.len(), skipped, opts.best_by);
    let threads = opts
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| SweepError::Pool {
            threads,
            msg: e.to_string(),
        })?;
    let t0 = Instant::now();
    let outcome = pool.install(|| {
        pending
            .par_iter()
            .try_for_each(|&i| -> Result<(), SweepError> {
                let (rows, failed) = run_point(sweep, i, &summary);
                let line = csv_line(&rows);
                let mut st = state.lock().unwrap_or_else(|p| p.into_inner());
                st.journal
                    .write_all(&line)
                    .and_then(|_| st.journal.flush())
                    .map_err(io_err(&journal_path))?;
                let new_best = best_of(&header, opts.best_by, rows.iter());
                for (s, v, p) in new_best {
                    match st.best.iter_mut().find(|b| b.0 == s) {
                        Some(b) if v < b.1 || (v == b.1 && p < b.2) => *b = (s, v, p),
                        Some(_) => {}
                        None => st.best.push((s, v, p)),
                    }
                }
                st.rows.insert(i, rows);
                st.done += 1;
                st.failed += failed as usize;
                if st.last_rewrite.elapsed() >= opts.rewrite_every {
                    write_atomic(&csv_path, &csv_bytes(&header, &st.rows))?;
                    st.last_rewrite = Instant::now();
                }
                observer.point_done(&PointDone {
                    index: i,
                    failed,
                    done: st.done,
                    total: shard_points.len(),
                    best: &st.best,
                });
                Ok(())
            })
    });
    let st = state.into_inner().unwrap_or_else(|p| p.into_inner());
    // Whatever happened, sweep.csv holds every complete point.
    write_atomic(&csv_path, &csv_bytes(&header, &st.rows))?;
    observer.finish();
    outcome?;
    let best = best_of(&header, opts.best_by, st.rows.values().flatten());
    Ok(RunSummary {
        points_total: sweep.len(),
        points_shard: shard_points.len(),
        skipped,
        ran: pending.len(),
        failed: st.failed,
        best,
        elapsed_s: t0.elapsed().as_secs_f64(),
        csv: csv_path,
    })
}
