//! `moesim trace stats|synth`: routing trace statistics and synthetic traces.

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
