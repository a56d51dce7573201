//! The `moesim` command line: parses arguments and calls the library; exit code 0 ok, 1 failed run, 2 bad input.

use clap::{Parser, Subcommand};
use cli::run::Format;
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

// After the macros, so the handlers can print with them.
mod cli;

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
    #[command(
        after_help = "Examples:\n  moesim run                                         the embedded default (scenarios/seed_comparison.toml), with 32 samples' p5–p95 bands\n  moesim run --no-samples --exact                    the nominal run only, every step priced\n  moesim run scenarios/mixtral_pretrain.toml         table + outputs/mixtral_pretrain/\n  moesim run scenarios/single_node.toml --out /tmp/x --no-plots\n  moesim run FILE --format json > summary.json       the summary as JSON on stdout\n  moesim run FILE --samples 32                       p5/p50/p95 bands over 32 perturbed runs\n  moesim run FILE --waveform 2..2.05                 waveform.csv/.png: facility power by step phase, hours 2 to 2.05\n\nExit codes: 0 ok, 1 the run failed (or an output could not be written), 2 bad input."
    )]
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
        /// Simulate every step at event level (priced ops on GPU streams and links) instead of the fast path: much slower, the same outputs.
        #[arg(long)]
        event_level: bool,
        /// Price every step instead of advancing in blocks of steps with one routing sample per
        /// block (the default; totals within 0.5 % of per-step runs); the same as `training.exact = true`.
        #[arg(long)]
        exact: bool,
        /// Monte Carlo samples (each a full run with perturbed inputs): p5/p50/p95 bands in
        /// uncertainty.csv, the table and the plots ([uncertainty] in the scenario sets the sources).
        #[arg(long, value_name = "N", value_parser = cli::run::parse_samples)]
        samples: Option<u32>,
        /// No Monte Carlo: skip the samples the embedded default runs unless told (and the scenario's [uncertainty] table).
        #[arg(long, conflicts_with = "samples")]
        no_samples: bool,
        /// Write waveform.csv and waveform.png: the facility power by step phase over a window of
        /// hours from the run's start, e.g. `--waveform 2..2.05`.
        #[arg(long, value_name = "START..END", allow_hyphen_values = true, value_parser = moesim::scenario::parse_window)]
        waveform: Option<(f64, f64)>,
    },
    /// One step of a scenario at the fast path and at event level, with its Chrome/Perfetto trace.
    #[command(
        after_help = "Examples:\n  moesim step scenarios/mixtral_pretrain.toml                      the fast path's step 0\n  moesim step FILE --strategy moe --step 100 --event-level        and the event-level step\n  moesim step FILE --chrome-trace step.json                       the step's timeline for ui.perfetto.dev\n\nWrites layers.csv (per MoE layer: energy lost to routing skew) at event level.\nExit codes: 0 ok, 1 the step failed (or an output could not be written), 2 bad input."
    )]
    Step(cli::step::StepArgs),
    /// Draw the plots (PNG and SVG) and report.html of an output folder (or of a routing trace).
    #[command(
        after_help = "Examples:\n  moesim plot outputs/seed_comparison                redraw plots + report.html from the folder\n  moesim plot outputs/trace_replay --trace t.csv     and the routing plots of a trace\n  moesim plot --trace t.csv --out /tmp/trace_plots   only the routing plots of a trace"
    )]
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
    #[command(
        after_help = "Examples:\n  moesim check scenarios/mixtral_pretrain.toml\n  moesim check my_scenario.toml && moesim run my_scenario.toml"
    )]
    Check {
        /// Scenario file (TOML).
        scenario: PathBuf,
    },
    /// Accelerator presets.
    #[command(after_help = "Examples:\n  moesim hardware list\n  moesim hardware show h100")]
    Hardware {
        #[command(subcommand)]
        what: HardwareCmd,
    },
    /// List the strategies a scenario can compare.
    #[command(after_help = "Example:\n  moesim strategies")]
    Strategies,
    /// Run the validation suite (published runs and H100 measurements); exit 1 if any figure is out of tolerance.
    #[command(
        after_help = "Examples:\n  moesim validate                                    published runs + H100 measurements\n  moesim validate --no-h100 --markdown accuracy.md   also write the table as Markdown\n  moesim validate --cases my_cases/ --h100-data ../shared/data/h100\n\nExit codes: 0 all within tolerance, 1 a figure out of tolerance or a case failed to run, 2 bad input."
    )]
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
    #[command(
        after_help = "Examples:\n  moesim calibrate --micro ../shared/data/h100/micro.csv --base h100 --out my_gpu.toml\n  moesim calibrate --micro micro.csv --attn attn.csv --moe moe_layer.csv --base h100 --out my_gpu.toml\nthen use it with `cluster.gpu_file = \"my_gpu.toml\"` in a scenario."
    )]
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
    /// Routing traces: statistics, synthetic traces, conversion to the binary format, timed replay.
    #[command(
        after_help = "Examples:\n  moesim trace stats ../shared/data/routing/routing_moe16top2_noaux.csv\n  moesim trace synth --out t.csv --model zipf --zipf-s 1.1 --experts 64 --layers 8 --steps 1000 --tokens 65536"
    )]
    Trace {
        #[command(subcommand)]
        what: TraceCmd,
    },
    /// Run every point of a scenario's [sweep] table in parallel (resumes what an earlier run left).
    #[command(
        after_help = "Examples:\n  moesim sweep scenarios/sweep_regions.toml          all cores -> outputs/sweep_regions/sweep.csv + plots\n  moesim sweep scenarios/sweep_regions.toml --check  validate every point, run nothing\n  moesim sweep FILE --jobs 4 --best-by energy --out /tmp/s\n  moesim sweep FILE --shard 3/8                      one shard of 8 (e.g. a Slurm array task)\nRe-running the same command resumes where an interruption left off (--fresh starts over)."
    )]
    Sweep(cli::sweep::SweepArgs),
    /// Join the outputs of sweep shards into one sweep.csv, checking that no point is missing or duplicated.
    #[command(
        after_help = "Examples:\n  moesim merge outputs/sweep_regions/shard-*-of-8    -> outputs/sweep_regions/sweep.csv\n  moesim merge s0 s1 s2 --out /tmp/merged"
    )]
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
    /// Per-layer and over-time load imbalance of a trace (wide or long CSV, or binary).
    #[command(
        after_help = "Examples:\n  moesim trace stats ../shared/data/routing/routing_moe16top2_noaux.csv\n  moesim trace stats t.csv --buckets 20"
    )]
    Stats {
        /// Trace file.
        file: PathBuf,
        /// Step ranges to summarise the imbalance over training in.
        #[arg(long, default_value_t = 10)]
        buckets: usize,
    },
    /// Convert a trace between CSV (wide or long) and the compact binary format, streamed.
    #[command(
        after_help = "Examples:\n  moesim trace convert ../shared/data/routing/routing_moe16top2_noaux.csv noaux.moetrace\n  moesim trace convert t.csv t.moetrace --dtype u32\n  moesim trace convert t.moetrace t.csv                 back to wide CSV\n\nThe output's extension picks the format: .moetrace (binary; README \"Binary traces\") or .csv.\nExit codes: 0 ok, 1 the output could not be written, 2 bad input."
    )]
    Convert {
        /// Input trace (wide or long CSV, or binary).
        input: PathBuf,
        /// Output trace: `.moetrace` (binary) or `.csv` (wide CSV).
        out: PathBuf,
        /// Bytes per count of a binary output: u8, u16 or u32 (default: the smallest that holds every count).
        #[arg(long)]
        dtype: Option<String>,
    },
    /// Replay a trace the way a run reads it (streamed, one step held), timed: checks it and its speed.
    #[command(
        after_help = "Examples:\n  moesim trace replay noaux.moetrace\n  moesim trace replay t.csv --steps 1000000     loops past the trace's end as a run does"
    )]
    Replay {
        /// Trace file (CSV or binary).
        file: PathBuf,
        /// Steps to replay (default: the trace's steps; more loop past its end).
        #[arg(long)]
        steps: Option<u64>,
    },
    /// Write a synthetic trace (wide CSV) from a seeded router.
    #[command(
        after_help = "Examples:\n  moesim trace synth --out t.csv --experts 16 --layers 4 --steps 500 --tokens 65536\n  moesim trace synth --out t.csv --model dirichlet --alpha 0.5 --drift 0.02 --experts 64 --layers 8 --steps 1000 --tokens 65536\n  moesim trace synth --out t.csv --model uniform --collapse-share 0.6 --collapse-steps 800 --experts 16 --layers 2 --steps 1000 --tokens 8192"
    )]
    Synth(cli::trace::SynthArgs),
}

#[derive(Subcommand)]
enum HardwareCmd {
    /// List the presets.
    #[command(after_help = "Example:\n  moesim hardware list")]
    List,
    /// Show one preset with its sources.
    #[command(after_help = "Example:\n  moesim hardware show h100")]
    Show {
        /// Preset key, e.g. h100.
        key: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Run {
        scenario: None,
        out: None,
        format: Format::Table,
        no_plots: false,
        event_level: false,
        exact: false,
        samples: None,
        no_samples: false,
        waveform: None,
    }) {
        Command::Run {
            scenario,
            out,
            format,
            no_plots,
            event_level,
            exact,
            samples,
            no_samples,
            waveform,
        } => {
            // `Some(0)`: no samples at all (a user cannot give 0: `parse_samples` refuses it).
            let samples = if no_samples { Some(0) } else { samples };
            cli::run::run(
                scenario,
                out,
                format,
                no_plots,
                event_level,
                exact,
                samples,
                waveform,
            )
        }
        Command::Step(a) => cli::step::step(a),
        Command::Plot { dir, trace, out } => cli::run::plot(dir, trace, out),
        Command::Check { scenario } => cli::run::check(&scenario),
        Command::Hardware {
            what: HardwareCmd::List,
        } => cli::hardware::list(),
        Command::Hardware {
            what: HardwareCmd::Show { key },
        } => cli::hardware::show(&key),
        Command::Trace {
            what: TraceCmd::Stats { file, buckets },
        } => cli::trace::stats(&file, buckets),
        Command::Trace {
            what: TraceCmd::Synth(a),
        } => cli::trace::synth(a),
        Command::Trace {
            what: TraceCmd::Convert { input, out, dtype },
        } => cli::trace::convert(&input, &out, dtype.as_deref()),
        Command::Trace {
            what: TraceCmd::Replay { file, steps },
        } => cli::trace::replay(&file, steps),
        Command::Validate {
            cases,
            h100_data,
            no_h100,
            markdown,
        } => cli::validate::validate(cases, h100_data, no_h100, markdown),
        Command::Calibrate {
            micro,
            attn,
            moe,
            base,
            key,
            out,
        } => cli::hardware::calibrate(&micro, attn.as_deref(), moe.as_deref(), &base, key, &out),
        Command::Sweep(a) => cli::sweep::run_sweep(a),
        Command::Merge { dirs, out } => cli::sweep::merge(dirs, out),
        Command::Strategies => cli::run::strategies(),
    }
}
