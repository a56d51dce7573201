//! `moesim trace stats|synth|convert|replay`: routing trace statistics, synthetic traces, conversion
//! between CSV and the binary format, and a timed streamed replay.

use super::fail;
use moesim::routing;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The flags of `moesim trace synth`.
#[derive(clap::Args)]
pub struct SynthArgs {
    /// Output file.
    #[arg(long)]
    pub out: PathBuf,
    /// Router: balanced, uniform, zipf, dirichlet, noisy_topk.
    #[arg(long, default_value = "uniform")]
    pub model: String,
    /// Experts per layer.
    #[arg(long)]
    pub experts: usize,
    /// MoE layers.
    #[arg(long)]
    pub layers: usize,
    /// Steps.
    #[arg(long)]
    pub steps: usize,
    /// Tokens per step.
    #[arg(long)]
    pub tokens: u64,
    /// Experts per token.
    #[arg(long, default_value_t = 2)]
    pub top_k: u64,
    /// Zipf exponent (model zipf).
    #[arg(long)]
    pub zipf_s: Option<f64>,
    /// Dirichlet concentration (model dirichlet).
    #[arg(long)]
    pub alpha: Option<f64>,
    /// Gate logit noise standard deviation (model noisy_topk).
    #[arg(long)]
    pub noise: Option<f64>,
    /// Tokens sampled per layer and step (model noisy_topk; default 1024).
    #[arg(long)]
    pub sample_tokens: Option<usize>,
    /// Log-normal drift per step (model dirichlet).
    #[arg(long, default_value_t = 0.0)]
    pub drift: f64,
    /// Share of the collapsed expert at full collapse.
    #[arg(long)]
    pub collapse_share: Option<f64>,
    /// Steps until full collapse.
    #[arg(long)]
    pub collapse_steps: Option<u64>,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// `moesim trace stats FILE`: per-layer and over-time load imbalance of a trace.
pub fn stats(file: &Path, buckets: usize) -> ExitCode {
    match routing::read_trace(file) {
        Ok(t) => {
            out!(
                "{}",
                routing::stats_text(&t, &routing::trace_stats(&t), buckets)
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(2, e),
    }
}

/// `moesim trace synth`: write a synthetic trace (wide CSV) from a seeded router.
pub fn synth(a: SynthArgs) -> ExitCode {
    let spec = routing::SynthSpec {
        model: a.model,
        experts: a.experts,
        layers: a.layers,
        steps: a.steps,
        tokens: a.tokens,
        top_k: a.top_k,
        zipf_s: a.zipf_s,
        alpha: a.alpha,
        noise: a.noise,
        sample_tokens: a.sample_tokens,
        drift: a.drift,
        collapse_share: a.collapse_share,
        collapse_steps: a.collapse_steps,
        seed: a.seed,
    };
    let out = a.out;
    match routing::synth_trace(&spec, &out.display().to_string()) {
        Ok(t) => match moesim::io::write_atomic(&out, routing::write_wide(&t).as_bytes()) {
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

/// `moesim trace convert IN OUT`: write the trace IN as OUT (binary `.moetrace` or wide `.csv`), streamed.
pub fn convert(input: &Path, out: &Path, dtype: Option<&str>) -> ExitCode {
    let t = match routing::TraceFile::open(input) {
        Ok(t) => t,
        Err(e) => return fail(2, e),
    };
    let format = match routing::output_format(&t, out, dtype) {
        Ok(f) => f,
        Err(e) => return fail(2, e),
    };
    match routing::convert(&t, out, format) {
        Ok(()) => {
            let what = match format {
                routing::TraceFormat::Binary(d) => format!("binary, {}", d.name()),
                routing::TraceFormat::WideCsv => "wide CSV".into(),
            };
            let bytes = std::fs::metadata(out).map_or(0, |m| m.len());
            outln!(
                "wrote {} ({what}; {} steps × {} layers × {} experts, {bytes} bytes)",
                out.display(),
                t.steps,
                t.layers,
                t.experts
            );
            ExitCode::SUCCESS
        }
        Err(routing::ConvertError::Write { path, source }) => {
            fail(1, format!("{}: cannot write: {source}", path.display()))
        }
        Err(e) => fail(2, e),
    }
}

/// `moesim trace replay FILE`: replay every step (or `steps`) the way a run reads the trace, timed.
pub fn replay(file: &Path, steps: Option<u64>) -> ExitCode {
    let start = std::time::Instant::now();
    let t = match routing::TraceFile::open(file) {
        Ok(t) => std::sync::Arc::new(t),
        Err(e) => return fail(2, e),
    };
    let opened_s = start.elapsed().as_secs_f64();
    let (layers, experts) = (t.layers, t.experts);
    let mut r = match routing::TraceReplay::new(
        t.clone(),
        layers,
        experts,
        routing::PastEnd::Loop,
        false,
        0,
    ) {
        Ok(r) => r,
        Err(e) => return fail(2, e),
    };
    let steps = steps.unwrap_or(t.steps as u64);
    let mut shares = vec![0.0; layers * experts];
    // The hottest share seen, so the replay's work is used (and a useful figure).
    let mut hottest = 0.0f64;
    let replay = std::time::Instant::now();
    let cpu0 = thread_cpu_s();
    for s in 0..steps {
        r.fill_shares(s, &mut shares);
        hottest = shares.iter().fold(hottest, |m, &x| m.max(x));
    }
    let replay_s = replay.elapsed().as_secs_f64();
    let cpu_s = thread_cpu_s().zip(cpu0).map(|(b, a)| b - a);
    if let Some(e) = r.take_error() {
        return fail(2, e);
    }
    let cells = steps as f64 * (layers * experts) as f64;
    outln!(
        "{}: {} ({} steps × {} layers × {} experts)",
        file.display(),
        t.format_name(),
        t.steps,
        layers,
        experts
    );
    outln!("  opened and checked in {opened_s:.3} s");
    outln!(
        "  replayed {steps} steps ({cells:.3e} cells) in {replay_s:.3} s: {:.1} M cells/s; hottest expert share {hottest:.4}",
        cells / replay_s.max(1e-9) / 1e6
    );
    if let Some(c) = cpu_s {
        // On a shared machine the wall clock includes time waiting for a core; CPU time does not.
        outln!(
            "  CPU time of the replay {c:.3} s: {:.1} M cells per CPU second",
            cells / c.max(1e-9) / 1e6
        );
    }
    if let Some(kb) = peak_rss_kb() {
        outln!("  peak resident memory {:.1} MB", kb as f64 / 1024.0);
    }
    ExitCode::SUCCESS
}

/// Peak resident set size of this process [KiB] (Linux `/proc/self/status` VmHWM), if known.
fn peak_rss_kb() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// CPU time this thread has run [s] (Linux `/proc/thread-self/schedstat`, in nanoseconds), if known.
fn thread_cpu_s() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = s.split_whitespace().next()?.parse().ok()?;
    Some(ns as f64 * 1e-9)
}
