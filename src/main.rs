//! The `moesim` command line: parses arguments and calls the library; exit code 0 ok, 1 failed run, 2 bad input.

use clap::{Parser, Subcommand, ValueEnum};
use moesim::{hardware, report, sweep, Scenario};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "moesim",
    version,
    about = "Simulate training energy, time, CO2 and cost of dense vs MoE vs circadian MoE training"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Simulate every strategy of a scenario (the embedded default if no file is given).
    Run {
        /// Scenario file (TOML).
        scenario: Option<PathBuf>,
        /// Output folder (default: outputs/<scenario name>).
        #[arg(long)]
        out: Option<PathBuf>,
        /// What to print: a table or the summary as JSON.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Validate a scenario file without running it.
    Check {
        /// Scenario file (TOML).
        scenario: PathBuf,
    },
    /// Accelerator presets.
    Hardware {
        #[command(subcommand)]
        what: HardwareCmd,
    },
    /// List the strategies a scenario can compare.
    Strategies,
    /// Run every point of a scenario's [sweep] table in parallel (resumes what an earlier run left).
    Sweep {
        /// Scenario file (TOML) with a [sweep] table.
        scenario: PathBuf,
        /// Output folder (default: outputs/<name>, or outputs/<name>/shard-I-of-N with --shard).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Worker threads (default: all cores).
        #[arg(long)]
        jobs: Option<usize>,
        /// Run only shard I of N (0-based: I = 0..N-1), e.g. --shard $SLURM_ARRAY_TASK_ID/8.
        #[arg(long)]
        shard: Option<String>,
        /// Discard earlier results in the output folder instead of resuming.
        #[arg(long)]
        fresh: bool,
        /// Figure whose running best per strategy is shown.
        #[arg(long, value_enum, default_value_t = BestBy::Co2)]
        best_by: BestBy,
        /// Validate every point and print the count, without running.
        #[arg(long)]
        check: bool,
    },
    /// Join the outputs of sweep shards into one sweep.csv, checking that no point is missing or duplicated.
    Merge {
        /// Shard output folders (each with sweep.csv and sweep.manifest.json).
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// Output folder (default: the parent of the first shard folder).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum BestBy {
    Co2,
    Energy,
    Time,
    Cost,
    Loss,
}

impl BestBy {
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

#[derive(Subcommand)]
enum HardwareCmd {
    /// List the presets.
    List,
    /// Show one preset with its sources.
    Show {
        /// Preset key, e.g. h100.
        key: String,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Table,
    Json,
}

fn fail(code: u8, msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::from(code)
}

fn run(scenario: Option<PathBuf>, out: Option<PathBuf>, format: Format) -> ExitCode {
    let s = match &scenario {
        Some(p) => Scenario::from_file(p),
        None => Scenario::default_embedded(),
    };
    let s = match s {
        Ok(s) => s,
        Err(e) => return fail(2, e),
    };
    if sweep::has_sweep(&s.text) {
        eprintln!(
            "note: {} has a [sweep] table; `run` ignores it (use `moesim sweep`)",
            s.file
        );
    }
    let res = match moesim::simulate(&s) {
        Ok(r) => r,
        Err(e @ (moesim::SimError::Grid(_) | moesim::SimError::Routing(_))) => return fail(2, e),
        Err(e) => return fail(1, e),
    };
    let dir = out.unwrap_or_else(|| PathBuf::from("outputs").join(&s.name));
    let written = match report::write_outputs(&res, &dir) {
        Ok(w) => w,
        Err(e) => return fail(1, e),
    };
    match format {
        Format::Json => println!("{}", report::to_json(&res)),
        Format::Table => {
            println!(
                "scenario {} ({}) — grid {} (mean {:.0} gCO2/kWh), PUE {:.2}",
                s.name,
                s.file,
                res.grid.source,
                res.grid.mean_ci(),
                res.pue
            );
            println!("{}", report::table(&res));
            for p in written {
                println!("wrote {}", p.display());
            }
        }
    }
    ExitCode::SUCCESS
}

fn sweep_fail(e: sweep::SweepError) -> ExitCode {
    fail(if e.is_input_error() { 2 } else { 1 }, e)
}

struct SweepArgs {
    scenario: PathBuf,
    out: Option<PathBuf>,
    jobs: Option<usize>,
    shard: Option<String>,
    fresh: bool,
    best_by: BestBy,
    check: bool,
}

fn run_sweep(a: SweepArgs) -> ExitCode {
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
        println!(
            "{}: ok ({} points, mode {}, parameters: {})",
            a.scenario.display(),
            sw.len(),
            sw.spec.mode.name(),
            sw.param_columns().join(", ")
        );
        return ExitCode::SUCCESS;
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
    println!(
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
        println!(
            "  best {} for {s}: {v:.4} at point {p} ({assign})",
            opts.best_by.column()
        );
    }
    println!("wrote {}", r.csv.display());
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Run {
        scenario: None,
        out: None,
        format: Format::Table,
    }) {
        Command::Run {
            scenario,
            out,
            format,
        } => run(scenario, out, format),
        Command::Check { scenario } => match Scenario::from_file(&scenario) {
            Ok(s) => {
                println!(
                    "{}: ok ({} strategies: {})",
                    scenario.display(),
                    s.strategies.len(),
                    s.strategies
                        .iter()
                        .map(|k| k.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                ExitCode::SUCCESS
            }
            Err(e) => fail(2, e),
        },
        Command::Hardware {
            what: HardwareCmd::List,
        } => {
            println!(
                "{:<8} {:<28} {:>14} {:>8} {:>10} {:>7} {:>7}",
                "key", "name", "bf16 TFLOP/s", "HBM GiB", "HBM TB/s", "TDP W", "idle W"
            );
            for a in hardware::presets() {
                let bf16 = a
                    .peak_flops
                    .get(hardware::Precision::Bf16)
                    .map_or("-".to_string(), |f| format!("{:.0}", f / 1e12));
                println!(
                    "{:<8} {:<28} {:>14} {:>8.0} {:>10.2} {:>7.0} {:>7.0}",
                    a.key,
                    a.name,
                    bf16,
                    a.hbm_bytes / (1u64 << 30) as f64,
                    a.hbm_bw_bytes_per_s / 1e12,
                    a.tdp_w,
                    a.idle_w
                );
            }
            ExitCode::SUCCESS
        }
        Command::Hardware {
            what: HardwareCmd::Show { key },
        } => match hardware::preset(&key) {
            Ok(a) => {
                println!("{}", hardware::describe(&a));
                ExitCode::SUCCESS
            }
            Err(e) => fail(2, e),
        },
        Command::Sweep {
            scenario,
            out,
            jobs,
            shard,
            fresh,
            best_by,
            check,
        } => run_sweep(SweepArgs {
            scenario,
            out,
            jobs,
            shard,
            fresh,
            best_by,
            check,
        }),
        Command::Merge { dirs, out } => {
            let out = out.unwrap_or_else(|| {
                dirs.first()
                    .and_then(|d| d.parent())
                    .map_or_else(|| PathBuf::from("."), |p| p.to_path_buf())
            });
            match sweep::merge(&dirs, &out) {
                Ok(m) => {
                    println!(
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
        Command::Strategies => {
            for (_, name, what) in moesim::StrategyKind::ALL {
                println!("{name:<10} {what}");
            }
            ExitCode::SUCCESS
        }
    }
}
