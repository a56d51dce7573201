//! The `moesim` command line: parses arguments and calls the library; exit code 0 ok, 1 failed run, 2 bad input.

use clap::{Parser, Subcommand, ValueEnum};
use moesim::{hardware, report, routing, sweep, Scenario};
use std::path::PathBuf;
use std::process::ExitCode;

/// Print a line to stdout, ignoring a closed pipe (`moesim ... | head` must not panic).
macro_rules! outln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}

/// Print to stdout, ignoring a closed pipe.
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), $($t)*);
    }};
}

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
        /// Skip the plots and report.html.
        #[arg(long)]
        no_plots: bool,
    },
    /// Draw the plots (PNG and SVG) and report.html of an output folder (or of a routing trace).
    Plot {
        /// Output folder of `moesim run` (summary.csv, timeline.csv; sweep.csv if present).
        dir: Option<PathBuf>,
        /// Routing trace (wide CSV `step,layer,e0..`) to draw as a per-layer expert-load heatmap.
        #[arg(long)]
        trace: Option<PathBuf>,
        /// Where to write the trace plots when no folder is given (default: outputs/trace_<file stem>).
        #[arg(long)]
        out: Option<PathBuf>,
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
    /// Run the validation suite (published runs and H100 measurements); exit 1 if any figure is out of tolerance.
    Validate {
        /// Folder of case files (scenarios with a [validation] table).
        #[arg(long)]
        cases: Option<PathBuf>,
        /// Folder of H100 measurements (micro.csv, attn.csv, moe_layer.csv).
        #[arg(long)]
        h100_data: Option<PathBuf>,
        /// Skip the H100 measurement cases.
        #[arg(long)]
        no_h100: bool,
        /// Also write the accuracy table (Markdown) to this file.
        #[arg(long)]
        markdown: Option<PathBuf>,
    },
    /// Fit a preset's efficiency and power coefficients to measurement CSVs and write it as TOML.
    Calibrate {
        /// Micro-benchmark CSV (format of ../shared/data/h100/micro.csv).
        #[arg(long)]
        micro: PathBuf,
        /// Attention CSV (format of attn.csv).
        #[arg(long)]
        attn: Option<PathBuf>,
        /// MoE-layer CSV (format of moe_layer.csv).
        #[arg(long)]
        moe: Option<PathBuf>,
        /// Preset giving peaks, bandwidth, clock, TDP, links (e.g. h100).
        #[arg(long)]
        base: String,
        /// Key of the new preset (default: the output file's stem).
        #[arg(long)]
        key: Option<String>,
        /// Output preset file (TOML), usable as `cluster.gpu_file`.
        #[arg(long)]
        out: PathBuf,
    },
    /// Routing traces: statistics and synthetic traces.
    Trace {
        #[command(subcommand)]
        what: TraceCmd,
    },
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
        /// Do not draw the sweep plots.
        #[arg(long)]
        no_plots: bool,
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

#[derive(Subcommand)]
enum TraceCmd {
    /// Per-layer and over-time load imbalance of a trace (wide or long CSV).
    Stats {
        /// Trace file.
        file: PathBuf,
        /// Step ranges to summarise the imbalance over training in.
        #[arg(long, default_value_t = 10)]
        buckets: usize,
    },
    /// Write a synthetic trace (wide CSV) from a seeded router.
    Synth {
        /// Output file.
        #[arg(long)]
        out: PathBuf,
        /// Router: balanced, uniform, zipf, dirichlet, noisy_topk.
        #[arg(long, default_value = "uniform")]
        model: String,
        /// Experts per layer.
        #[arg(long)]
        experts: usize,
        /// MoE layers.
        #[arg(long)]
        layers: usize,
        /// Steps.
        #[arg(long)]
        steps: usize,
        /// Tokens per step.
        #[arg(long)]
        tokens: u64,
        /// Experts per token.
        #[arg(long, default_value_t = 2)]
        top_k: u64,
        /// Zipf exponent (model zipf).
        #[arg(long)]
        zipf_s: Option<f64>,
        /// Dirichlet concentration (model dirichlet).
        #[arg(long)]
        alpha: Option<f64>,
        /// Gate logit noise standard deviation (model noisy_topk).
        #[arg(long)]
        noise: Option<f64>,
        /// Tokens sampled per layer and step (model noisy_topk; default 1024).
        #[arg(long)]
        sample_tokens: Option<usize>,
        /// Log-normal drift per step (model dirichlet).
        #[arg(long, default_value_t = 0.0)]
        drift: f64,
        /// Share of the collapsed expert at full collapse.
        #[arg(long)]
        collapse_share: Option<f64>,
        /// Steps until full collapse.
        #[arg(long)]
        collapse_steps: Option<u64>,
        /// Seed.
        #[arg(long, default_value_t = 0)]
        seed: u64,
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

fn plot_fail(e: report::PlotError) -> ExitCode {
    fail(if e.is_bad_input() { 2 } else { 1 }, e)
}

fn plot(dir: Option<PathBuf>, trace: Option<PathBuf>, out: Option<PathBuf>) -> ExitCode {
    let written = match (dir, trace) {
        (Some(d), t) => report::plot_dir(&d, &report::PlotOptions { trace: t }),
        (None, Some(t)) => {
            let stem = t.file_stem().and_then(|s| s.to_str()).unwrap_or("trace");
            let d = out.unwrap_or_else(|| PathBuf::from("outputs").join(format!("trace_{stem}")));
            report::plot_trace_file(&t, &d)
        }
        (None, None) => {
            return fail(
                2,
                "give an output folder (moesim plot outputs/NAME) or --trace FILE",
            )
        }
    };
    match written {
        Ok(w) => {
            for p in w {
                outln!("wrote {}", p.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => plot_fail(e),
    }
}

fn run(
    scenario: Option<PathBuf>,
    out: Option<PathBuf>,
    format: Format,
    no_plots: bool,
) -> ExitCode {
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
    let mut written = match report::write_outputs(&res, &dir) {
        Ok(w) => w,
        Err(e) => return fail(1, e),
    };
    match report::write_run_files(&s, &res, &dir) {
        Ok(w) => written.extend(w),
        Err(e) => return fail(1, e),
    }
    if !no_plots {
        match report::plot_dir(&dir, &report::PlotOptions::default()) {
            Ok(w) => written.extend(w),
            Err(e) => return plot_fail(e),
        }
    }
    match format {
        Format::Json => outln!("{}", report::to_json(&res)),
        Format::Table => {
            outln!(
                "scenario {} ({}) — grid {} (mean {:.0} gCO2/kWh), PUE {:.2}",
                s.name,
                s.file,
                res.grid.source,
                res.grid.mean_ci(),
                res.pue
            );
            outln!("{}", report::table(&res));
            for p in written {
                outln!("wrote {}", p.display());
            }
        }
    }
    ExitCode::SUCCESS
}

fn validate(
    cases: Option<PathBuf>,
    h100_data: Option<PathBuf>,
    no_h100: bool,
    markdown: Option<PathBuf>,
) -> ExitCode {
    use moesim::validate as v;
    let cases = cases.unwrap_or_else(v::default_cases_dir);
    let h100 = h100_data.unwrap_or_else(v::default_h100_dir);
    let results = match v::run_suite(&cases, (!no_h100).then_some(h100.as_path())) {
        Ok(r) => r,
        Err(e @ v::ValidateError::Sim { .. }) => return fail(1, e),
        Err(e) => return fail(2, e),
    };
    let table = v::markdown_table(&results);
    outln!("{table}");
    let notes = v::failure_notes(&results);
    if !notes.is_empty() {
        outln!("Out of tolerance, and why:\n{notes}");
    }
    if let Some(p) = markdown {
        if let Err(e) = std::fs::write(&p, format!("{table}\n{notes}")) {
            return fail(1, format!("{}: {e}", p.display()));
        }
    }
    if results.iter().all(v::CaseResult::ok) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn calibrate(
    micro: &std::path::Path,
    attn: Option<&std::path::Path>,
    moe: Option<&std::path::Path>,
    base: &str,
    key: Option<String>,
    out: &std::path::Path,
) -> ExitCode {
    use moesim::hardware::fit_preset;
    let base = match hardware::preset(base) {
        Ok(b) => b,
        Err(e) => return fail(2, e),
    };
    let key = key.unwrap_or_else(|| {
        out.file_stem()
            .map_or("calibrated".into(), |s| s.to_string_lossy().into_owned())
    });
    let cal = match fit_preset::calibrate(&base, &key, micro, attn, moe) {
        Ok(c) => c,
        Err(e @ hardware::HardwareError::Fit(_)) => return fail(1, e),
        Err(e) => return fail(2, e),
    };
    let f = &cal.micro;
    outln!(
        "fitted on base {}: idle {:.1} W, launch {:.2} us, GEMM max eff {:.4}, half {:.4e} FLOP, exponent {:.2}, mem eff {:.4}",
        base.key, f.idle_w, f.launch_overhead_s * 1e6, f.max_eff, f.half_flops, f.exponent, f.mem_eff
    );
    outln!(
        "power: tensor {:.1} W, simt {:.1} W, mem {:.1} W at gamma {:.1} (assumed, from the base)",
        f.tensor_coef_w,
        f.simt_coef_w,
        f.mem_coef_w,
        f.gamma
    );
    if let Some((m, h)) = cal.attention {
        outln!("attention: max eff {m:.4}, half {h:.4e} FLOP per head");
    }
    if let Some(s) = cal.loop_scale {
        outln!("loop-issued expert GEMM scale {s:.4}");
    }
    if let Some(n) = cal.router_launches {
        outln!("router small kernels implied by the data: {n:.0} (reported only)");
    }
    outln!(
        "\nresiduals:\n{}",
        fit_preset::residual_table(&cal.residuals)
    );
    let header = format!(
        "moesim calibrate --base {} --micro {}{}{}",
        base.key,
        micro.display(),
        attn.map_or(String::new(), |p| format!(" --attn {}", p.display())),
        moe.map_or(String::new(), |p| format!(" --moe {}", p.display()))
    );
    if let Err(e) = hardware::write_preset_file(&cal.accelerator, &header, out) {
        return fail(1, e);
    }
    outln!("wrote {}", out.display());
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
    no_plots: bool,
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
        outln!(
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Run {
        scenario: None,
        out: None,
        format: Format::Table,
        no_plots: false,
    }) {
        Command::Run {
            scenario,
            out,
            format,
            no_plots,
        } => run(scenario, out, format, no_plots),
        Command::Plot { dir, trace, out } => plot(dir, trace, out),
        Command::Check { scenario } => match Scenario::from_file(&scenario) {
            Ok(s) => {
                outln!(
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
            outln!(
                "{:<8} {:<28} {:>14} {:>8} {:>10} {:>7} {:>7}",
                "key",
                "name",
                "bf16 TFLOP/s",
                "HBM GiB",
                "HBM TB/s",
                "TDP W",
                "idle W"
            );
            for a in hardware::presets() {
                let bf16 = a
                    .peak_flops
                    .get(hardware::Precision::Bf16)
                    .map_or("-".to_string(), |f| format!("{:.0}", f / 1e12));
                outln!(
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
                outln!("{}", hardware::describe(&a));
                ExitCode::SUCCESS
            }
            Err(e) => fail(2, e),
        },
        Command::Trace {
            what: TraceCmd::Stats { file, buckets },
        } => match routing::read_trace(&file) {
            Ok(t) => {
                out!(
                    "{}",
                    routing::stats_text(&t, &routing::trace_stats(&t), buckets)
                );
                ExitCode::SUCCESS
            }
            Err(e) => fail(2, e),
        },
        Command::Trace {
            what:
                TraceCmd::Synth {
                    out,
                    model,
                    experts,
                    layers,
                    steps,
                    tokens,
                    top_k,
                    zipf_s,
                    alpha,
                    noise,
                    sample_tokens,
                    drift,
                    collapse_share,
                    collapse_steps,
                    seed,
                },
        } => {
            let spec = routing::SynthSpec {
                model,
                experts,
                layers,
                steps,
                tokens,
                top_k,
                zipf_s,
                alpha,
                noise,
                sample_tokens,
                drift,
                collapse_share,
                collapse_steps,
                seed,
            };
            match routing::synth_trace(&spec, &out.display().to_string()) {
                Ok(t) => match report::write_atomic(&out, routing::write_wide(&t).as_bytes()) {
                    Ok(()) => {
                        outln!(
                            "wrote {} ({} steps × {} layers × {} experts)",
                            out.display(),
                            t.steps,
                            t.layers,
                            t.experts
                        );
                        ExitCode::SUCCESS
                    }
                    Err(e) => fail(1, e),
                },
                // The library names the SynthSpec field; its flag is the same name in kebab case.
                Err(e) => fail(
                    2,
                    format!("trace synth: `--{}`: {}", e.field.replace('_', "-"), e.msg),
                ),
            }
        }
        Command::Validate {
            cases,
            h100_data,
            no_h100,
            markdown,
        } => validate(cases, h100_data, no_h100, markdown),
        Command::Calibrate {
            micro,
            attn,
            moe,
            base,
            key,
            out,
        } => calibrate(&micro, attn.as_deref(), moe.as_deref(), &base, key, &out),
        Command::Sweep {
            scenario,
            out,
            jobs,
            shard,
            fresh,
            best_by,
            check,
            no_plots,
        } => run_sweep(SweepArgs {
            scenario,
            out,
            jobs,
            shard,
            fresh,
            best_by,
            check,
            no_plots,
        }),
        Command::Merge { dirs, out } => {
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
        Command::Strategies => {
            for (_, name, what) in moesim::StrategyKind::ALL {
                outln!("{name:<10} {what}");
            }
            ExitCode::SUCCESS
        }
    }
}
