//! Watching a sweep: an observer trait, a silent one, and an indicatif progress bar on stderr
//! (points done/total, rate, ETA, running best per strategy; hidden when stderr is not a terminal).

use super::metric::Metric;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::sync::Mutex;

/// A point has finished.
#[derive(Debug)]
pub struct PointDone<'a> {
    /// Its index.
    pub index: usize,
    /// Whether its simulation failed.
    pub failed: bool,
    /// Points of the shard done so far (including ones from an earlier run).
    pub done: usize,
    /// Points in the shard.
    pub total: usize,
    /// Running best per strategy: (strategy, lowest value, point).
    pub best: &'a [(String, f64, usize)],
}

/// Receives progress from a running sweep (called from worker threads, one call at a time).
pub trait Observer: Sync {
    /// The sweep starts: `total` points in the shard, `done` of them already there; best by `metric`.
    fn start(&self, total: usize, done: usize, metric: Metric);
    /// A point finished.
    fn point_done(&self, p: &PointDone);
    /// The sweep ended (finished or stopped by an error).
    fn finish(&self);
}

/// An observer that shows nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Observer for Silent {
    fn start(&self, _: usize, _: usize, _: Metric) {}
    fn point_done(&self, _: &PointDone) {}
    fn finish(&self) {}
}

/// A progress bar on stderr (drawn only when stderr is a terminal).
pub struct BarObserver {
    bar: Mutex<Option<(ProgressBar, Metric)>>,
}

impl Default for BarObserver {
    fn default() -> Self {
        Self::new()
    }
}

impl BarObserver {
    /// A bar, created when the sweep starts.
    pub fn new() -> Self {
        Self {
            bar: Mutex::new(None),
        }
    }
}

/// `best co2_kg: dense 130 @3 · moe ...` (value, then the point that has it)
pub fn best_text(metric: Metric, best: &[(String, f64, usize)]) -> String {
    if best.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = best
        .iter()
        .map(|(s, v, p)| format!("{s} {v:.4} @{p}"))
        .collect();
    format!("best {}: {}", metric.column(), parts.join(" · "))
}

impl Observer for BarObserver {
    fn start(&self, total: usize, done: usize, metric: Metric) {
        let bar = ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template(
            "{bar:30} {pos}/{len} points  {per_sec}  ETA {eta}\n  {wide_msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar.set_position(done as u64);
        bar.reset_eta();
        *self.bar.lock().unwrap_or_else(|p| p.into_inner()) = Some((bar, metric));
    }

    fn point_done(&self, p: &PointDone) {
        if let Some((bar, metric)) = self.bar.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            bar.set_position(p.done as u64);
            bar.set_message(best_text(*metric, p.best));
        }
    }

    fn finish(&self) {
        if let Some((bar, _)) = self.bar.lock().unwrap_or_else(|p| p.into_inner()).take() {
            bar.finish_and_clear();
        }
    }
}
