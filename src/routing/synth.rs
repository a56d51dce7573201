//! Synthetic routing traces (`moesim trace synth`): any synthetic router of the scenario table, rounded to counts.

use super::{Collapse, Router, RouterKind, RoutingSource, RoutingSpec, RoutingTrace};

/// Tokens sampled per layer and step by a noisy top-k router when `sample_tokens` is not given.
pub const DEFAULT_SAMPLE_TOKENS: usize = 1024;

/// What `moesim trace synth` asks for; errors name these fields.
#[derive(Debug, Clone)]
pub struct SynthSpec {
    /// Router name, from [`RouterKind::ALL`] (every synthetic one: not `trace`).
    pub model: String,
    /// Experts per layer.
    pub experts: usize,
    /// MoE layers.
    pub layers: usize,
    /// Steps.
    pub steps: usize,
    /// Tokens per step.
    pub tokens: u64,
    /// Experts per token.
    pub top_k: u64,
    /// Zipf exponent (models zipf and noisy_topk).
    pub zipf_s: Option<f64>,
    /// Dirichlet concentration (model dirichlet).
    pub alpha: Option<f64>,
    /// Logit noise standard deviation (model noisy_topk).
    pub noise: Option<f64>,
    /// Tokens sampled per layer and step (model noisy_topk; default [`DEFAULT_SAMPLE_TOKENS`]).
    pub sample_tokens: Option<usize>,
    /// Log-normal drift per step (model dirichlet).
    pub drift: f64,
    /// Collapse share.
    pub collapse_share: Option<f64>,
    /// Collapse steps.
    pub collapse_steps: Option<u64>,
    /// Seed.
    pub seed: u64,
}

/// Why a synthetic trace cannot be made: the [`SynthSpec`] field at fault and what is valid.
#[derive(Debug, thiserror::Error)]
#[error("trace synth: `{field}`: {msg}")]
pub struct SynthError {
    /// The [`SynthSpec`] field at fault (the CLI turns it into its flag).
    pub field: &'static str,
    /// What is wrong and what is valid.
    pub msg: String,
}

/// The routing spec (synthetic source and collapse) `spec` asks for.
fn routing_spec(spec: &SynthSpec) -> Result<RoutingSpec, SynthError> {
    let bad = |field, msg: String| SynthError { field, msg };
    let synthetic: Vec<&str> = RouterKind::ALL
        .iter()
        .filter(|(k, _)| *k != RouterKind::Trace)
        .map(|(_, n)| *n)
        .collect();
    let kind = RouterKind::from_name(&spec.model)
        .filter(|k| *k != RouterKind::Trace)
        .ok_or_else(|| {
            bad(
                "model",
                format!("unknown `{}`; valid: {}", spec.model, synthetic.join(", ")),
            )
        })?;
    let zipf_s = |model: &str| {
        spec.zipf_s
            .filter(|s| *s >= 0.0)
            .ok_or_else(|| bad("zipf_s", format!("model {model} needs zipf_s >= 0")))
    };
    let source = match kind {
        RouterKind::Balanced => RoutingSource::Balanced,
        RouterKind::Uniform => RoutingSource::Uniform,
        RouterKind::Zipf => RoutingSource::Zipf(zipf_s("zipf")?),
        RouterKind::Dirichlet => RoutingSource::Dirichlet {
            alpha: spec
                .alpha
                .filter(|a| *a > 0.0)
                .ok_or_else(|| bad("alpha", "model dirichlet needs alpha > 0".into()))?,
            drift: if spec.drift >= 0.0 {
                spec.drift
            } else {
                return Err(bad("drift", "must be >= 0".into()));
            },
        },
        RouterKind::NoisyTopk => RoutingSource::NoisyTopK {
            s: zipf_s("noisy_topk")?,
            noise: spec
                .noise
                .filter(|n| *n >= 0.0)
                .ok_or_else(|| bad("noise", "model noisy_topk needs noise >= 0".into()))?,
            tokens: match spec.sample_tokens.unwrap_or(DEFAULT_SAMPLE_TOKENS) {
                n if n > 0 && n <= u32::MAX as usize => n as u32,
                _ => return Err(bad("sample_tokens", "must be a positive integer".into())),
            },
        },
        // Filtered out above: a trace is replayed, not synthesised.
        RouterKind::Trace => return Err(bad("model", "a trace cannot be synthesised".into())),
    };
    let collapse = match (spec.collapse_share, spec.collapse_steps) {
        (Some(c), Some(n)) if c > 0.0 && c <= 1.0 && n > 0 => Some(Collapse {
            max_share: c,
            over_steps: n,
        }),
        (None, None) => None,
        _ => {
            return Err(bad(
                "collapse_share",
                "give both collapse_share in (0, 1] and collapse_steps > 0".into(),
            ))
        }
    };
    Ok(RoutingSpec {
        source,
        collapse,
        ..RoutingSpec::default()
    })
}

/// Build the synthetic trace `spec` describes.
pub fn synth_trace(spec: &SynthSpec, source: &str) -> Result<RoutingTrace, SynthError> {
    let bad = |field, msg: String| SynthError { field, msg };
    for (field, v) in [
        ("experts", spec.experts),
        ("layers", spec.layers),
        ("steps", spec.steps),
    ] {
        if v == 0 {
            return Err(bad(field, "must be a positive integer".into()));
        }
    }
    if spec.tokens == 0 || spec.top_k == 0 || spec.top_k > spec.experts as u64 {
        return Err(bad(
            "top_k",
            format!(
                "needs tokens > 0 and 1 <= top_k <= experts ({})",
                spec.experts
            ),
        ));
    }
    let routing = routing_spec(spec)?;
    let mut router = Router::from_spec(
        &routing,
        None,
        spec.experts,
        spec.layers,
        spec.top_k as usize,
        spec.seed,
    )
    .map_err(|e| bad("model", e.to_string()))?;
    synthesize(&mut router, spec.steps, spec.tokens, spec.top_k, source)
        .ok_or_else(|| bad("steps", "empty trace".into()))
}

/// A synthetic trace: `steps` steps of `router`, with `tokens` tokens per step routed to `top_k` experts
/// each; counts are the shares rounded so every row sums to tokens × top_k.
pub fn synthesize(
    router: &mut Router,
    steps: usize,
    tokens: u64,
    top_k: u64,
    source: &str,
) -> Option<RoutingTrace> {
    let (e, l) = (router.experts(), router.layers());
    let total = tokens * top_k;
    let mut shares = vec![0.0; e * l];
    let mut counts = Vec::with_capacity(steps * e * l);
    for s in 0..steps {
        router.fill_shares(s as u64, total as f64, &mut shares);
        for row in shares.chunks(e) {
            let start = counts.len();
            let mut sum = 0u64;
            for &p in row {
                let c = (p * total as f64).floor() as u64;
                sum += c;
                counts.push(c as u32);
            }
            // Give the rounding remainder to the largest shares, in expert order for ties.
            let mut left = total.saturating_sub(sum);
            let mut order: Vec<usize> = (0..e).collect();
            order.sort_by(|&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
            for &i in order.iter().cycle().take(left as usize) {
                counts[start + i] += 1;
                left -= 1;
            }
        }
    }
    RoutingTrace::from_counts(e, l, counts, source.to_string())
}

#[cfg(test)]
mod tests {
    use super::super::RouterModel;
    use super::*;

    #[test]
    fn synthetic_rows_sum_exactly() {
        let mut r = Router::new(RouterModel::Zipf { s: 1.0 }, 8, 2, 1);
        let t = synthesize(&mut r, 5, 1000, 2, "synth").unwrap();
        for s in 0..5 {
            for l in 0..2 {
                assert_eq!(t.counts(s, l).iter().map(|&c| c as u64).sum::<u64>(), 2000);
            }
        }
    }

    fn spec(model: &str) -> SynthSpec {
        SynthSpec {
            model: model.into(),
            experts: 8,
            layers: 2,
            steps: 3,
            tokens: 512,
            top_k: 2,
            zipf_s: Some(1.0),
            alpha: Some(0.5),
            noise: Some(0.5),
            sample_tokens: Some(64),
            drift: 0.0,
            collapse_share: None,
            collapse_steps: None,
            seed: 1,
        }
    }

    // `trace synth` knows every synthetic router of the scenario table (noisy_topk was missing once).
    #[test]
    fn every_synthetic_router_of_the_table_synthesises() {
        for (kind, name) in RouterKind::ALL {
            let r = synth_trace(&spec(name), "synth");
            if kind == RouterKind::Trace {
                assert_eq!(r.err().map(|e| e.field), Some("model"));
            } else {
                assert!(r.is_ok(), "{name}: {:?}", r.err());
            }
        }
    }

    // Library errors name SynthSpec fields, not CLI flags, and list the valid names.
    #[test]
    fn errors_name_fields_and_valid_routers() {
        let e = synth_trace(&spec("poisson"), "x")
            .err()
            .map(|e| e.to_string());
        let e = e.unwrap_or_default();
        assert!(
            e.contains("`model`") && e.contains("noisy_topk") && !e.contains("--"),
            "{e}"
        );
        let mut s = spec("dirichlet");
        s.alpha = None;
        let e = synth_trace(&s, "x").err().map(|e| e.field);
        assert_eq!(e, Some("alpha"));
    }
}
