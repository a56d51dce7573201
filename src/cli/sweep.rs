//! `moesim sweep` and `moesim merge`: a scenario's [sweep] run in parallel, shard outputs joined.

use super::fail;
use clap::ValueEnum;
use moesim::{report, sweep};
use std::path::PathBuf;
use std::process::ExitCode;

/// The flags of `moesim sweep`.
#[derive(clap::Args)]
pub struct SweepArgs {
    /// Scenario file (TOML) with a [sweep] table.
    pub scenario: PathBuf,
    /// Output folder (default: outputs/<name>, or outputs/<name>/shard-I-of-N with --shard).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Run only shard I of N (0-based: I = 0..N-1), e.g. --shard $SLURM_ARRAY_TASK_ID/8.
    #[arg(long)]
    pub shard: Option<String>,
    /// Discard earlier results in the output folder instead of resuming.
    #[arg(long)]
    pub fresh: bool,
    /// Figure whose running best per strategy is shown.
    #[arg(long, value_enum, default_value_t = BestBy::Co2)]
    pub best_by: BestBy,
    /// Validate every point and print the count, without running.
    #[arg(long)]
    pub check: bool,
    /// Do not draw the sweep plots.
    #[arg(long)]
    pub no_plots: bool,
}

/// The figure whose running best `--best-by` shows (no doc lines on the variants: clap would turn
/// them into a longer `--help`).
#[derive(Clone, Copy, ValueEnum)]
pub enum BestBy {
    Co2,
    Energy,
    Time,
    Cost,
    Loss,
}

impl BestBy {
    /// The library's metric.
    fn metric(self) -> sweep::Metric {
        match self {
            BestBy::Co2 => sweep::Metric::Co2,
            BestBy::Energy => sweep::Metric::Energy,
            BestBy::Time => sweep::Metric::Time,
            BestBy::Cost => sweep::Metric::Cost,
            BestBy::Loss => sweep::Metric::Loss,
        }
    }
}

/// Exit code for a sweep error: 2 for bad input, 1 for a failed run.
pub fn sweep_fail(e: sweep::SweepError) -> ExitCode {
    fail(if e.is_input_error() { 2 } else { 1 }, e)
}

/// `moesim sweep`: run (or with --check, validate) every point of the sweep, then draw its plots.
pub fn run_sweep(a: SweepArgs) -> ExitCode {
    if a.jobs == Some(0) {
        return fail(2, "--jobs: must be at least 1");
    }
    let shard = match a.shard.as_deref().map(sweep::Shard::parse).transpose() {
        Ok(s) => s.unwrap_or(sweep::Shard::ALL),
        Err(e) => return sweep_fail(e),
    };
    let sw = match sweep::Sweep::from_file(&a.scenario) {
        Ok(s) => s,
        Err(e) => return sweep_fail(e),
    };
    if a.check {
        outln!(
            "{}: ok ({} points, mode {}, parameters: {})",
            a.scenario.display(),
            sw.len(),
            sw.spec.mode.name(),
            sw.param_columns().join(", ")
        );
        return ExitCode::SUCCESS;
    }
    if let Some(code) = a.out.as_deref().and_then(super::out_is_not_a_folder) {
        return code;
    }
    let out = a.out.unwrap_or_else(|| {
        let base = PathBuf::from("outputs").join(&sw.name);
        if shard.count > 1 {
            base.join(format!("shard-{}-of-{}", shard.index, shard.count))
        } else {
            base
        }
    });
    let mut opts = sweep::RunOptions::new(out);
    opts.jobs = a.jobs;
    opts.shard = shard;
    opts.fresh = a.fresh;
    opts.best_by = a.best_by.metric();
    let bar = sweep::BarObserver::new();
    let r = match sweep::run_sweep(&sw, &opts, &bar) {
        Ok(r) => r,
        Err(e) => return sweep_fail(e),
    };
    outln!(
        "sweep {}: {} points{} — {} already done, {} run in {:.1} s ({:.2} points/s), {} failed",
        sw.name,
        r.points_shard,
        if shard.count > 1 {
            format!(
                " (shard {}/{} of {})",
                shard.index, shard.count, r.points_total
            )
        } else {
            String::new()
        },
        r.skipped,
        r.ran,
        r.elapsed_s,
        if r.elapsed_s > 0.0 {
            r.ran as f64 / r.elapsed_s
        } else {
            0.0
        },
        r.failed
    );
    for (s, v, p) in &r.best {
        let assign = sw.points[*p].describe();
        outln!(
            "  best {} for {s}: {v:.4} at point {p} ({assign})",
            opts.best_by.column()
        );
    }
    outln!("wrote {}", r.csv.display());
    // Sweep plots (Pareto front, heatmap) from sweep.csv, unless asked not to.
    if !a.no_plots && shard.count == 1 {
        if let Some(dir) = r.csv.parent() {
            match report::plot_sweep_dir(dir) {
                Ok(written) => {
                    for p in written {
                        outln!("wrote {}", p.display());
                    }
                }
                Err(e) => return fail(1, e),
            }
        }
    }
    if r.failed > 0 {
        return fail(
            1,
            format!(
                "{} points failed (status = failed in {})",
                r.failed,
                r.csv.display()
            ),
        );
    }
    ExitCode::SUCCESS
}

/// `moesim merge`: join shard folders into one sweep.csv in `out` (default: the first shard's parent).
pub fn merge(dirs: Vec<PathBuf>, out: Option<PathBuf>) -> ExitCode {
    if let Some(code) = out.as_deref().and_then(super::out_is_not_a_folder) {
        return code;
    }
    let out = out.unwrap_or_else(|| {
        dirs.first()
            .and_then(|d| d.parent())
            .map_or_else(|| PathBuf::from("."), |p| p.to_path_buf())
    });
    match sweep::merge(&dirs, &out) {
        Ok(m) => {
            outln!(
                "merged {} folders: {} points, {} rows ({} failed) -> {}",
                dirs.len(),
                m.points,
                m.rows,
                m.failed_rows,
                m.csv.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => sweep_fail(e),
    }
}
