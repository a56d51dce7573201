//! Load-imbalance statistics of routing traces: per layer and over training, and synthetic trace writing.

use super::{Router, RoutingTrace};
use std::fmt::Write;

/// Imbalance measures of one set of expert loads.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Imbalance {
    /// Most loaded expert over the mean (1 = balanced).
    pub max_over_mean: f64,
    /// Coefficient of variation of the loads.
    pub cv: f64,
    /// Share of all assignments taken by the hottest expert.
    pub hottest_share: f64,
    /// Gini coefficient of the loads (0 = equal, → 1 = one expert takes all).
    pub gini: f64,
}

/// Imbalance statistics of expert loads (any unit). Allocation-free.
pub fn imbalance(loads: &[f64]) -> Imbalance {
    let n = loads.len();
    if n == 0 {
        return Imbalance {
            max_over_mean: 1.0,
            ..Default::default()
        };
    }
    let total: f64 = loads.iter().sum();
    let mean = total / n as f64;
    if mean <= 0.0 {
        return Imbalance {
            max_over_mean: 1.0,
            ..Default::default()
        };
    }
    let max = loads.iter().cloned().fold(0.0, f64::max);
    let var = loads.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n as f64;
    // Gini = Σ_i Σ_j |x_i − x_j| / (2 n² mean); O(n²) but n is the expert count.
    let mut diff = 0.0;
    for a in loads {
        for b in loads {
            diff += (a - b).abs();
        }
    }
    Imbalance {
        max_over_mean: max / mean,
        cv: var.sqrt() / mean,
        hottest_share: max / total,
        gini: diff / (2.0 * (n * n) as f64 * mean),
    }
}

/// Statistics of a whole trace.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceStats {
    /// Mean over steps of each layer's imbalance.
    pub per_layer: Vec<Imbalance>,
    /// Per step: the mean over layers of max/mean, and the worst layer's max/mean.
    pub over_time: Vec<(f64, f64)>,
}

/// Imbalance per layer (averaged over steps) and over time (averaged over layers).
pub fn trace_stats(t: &RoutingTrace) -> TraceStats {
    let mut per_layer = vec![Imbalance::default(); t.layers];
    let mut over_time = Vec::with_capacity(t.steps);
    let mut buf = vec![0.0; t.experts];
    for s in 0..t.steps {
        let (mut mean_mom, mut worst) = (0.0, 0.0f64);
        for (l, acc) in per_layer.iter_mut().enumerate() {
            buf.iter_mut()
                .zip(t.counts(s, l))
                .for_each(|(b, &c)| *b = c as f64);
            let im = imbalance(&buf);
            acc.max_over_mean += im.max_over_mean / t.steps as f64;
            acc.cv += im.cv / t.steps as f64;
            acc.hottest_share += im.hottest_share / t.steps as f64;
            acc.gini += im.gini / t.steps as f64;
            mean_mom += im.max_over_mean / t.layers as f64;
            worst = worst.max(im.max_over_mean);
        }
        over_time.push((mean_mom, worst));
    }
    TraceStats {
        per_layer,
        over_time,
    }
}

/// The stats as text: a per-layer table and the imbalance over time in up to `buckets` step ranges.
pub fn stats_text(t: &RoutingTrace, st: &TraceStats, buckets: usize) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{}: {} steps × {} layers × {} experts",
        t.source, t.steps, t.layers, t.experts
    );
    let _ = writeln!(
        s,
        "{:>6} {:>10} {:>8} {:>9} {:>7}",
        "layer", "max/mean", "CV", "hottest", "Gini"
    );
    for (l, im) in st.per_layer.iter().enumerate() {
        let _ = writeln!(
            s,
            "{l:>6} {:>10.3} {:>8.3} {:>8.1}% {:>7.3}",
            im.max_over_mean,
            im.cv,
            im.hottest_share * 100.0,
            im.gini
        );
    }
    let _ = writeln!(
        s,
        "over training (mean over layers / worst layer, max/mean):"
    );
    let b = buckets.clamp(1, t.steps.max(1));
    let per = t.steps.div_ceil(b);
    for (i, chunk) in st.over_time.chunks(per).enumerate() {
        let n = chunk.len() as f64;
        let mean = chunk.iter().map(|x| x.0).sum::<f64>() / n;
        let worst = chunk.iter().map(|x| x.1).fold(0.0, f64::max);
        let _ = writeln!(
            s,
            "  steps {:>6}–{:<6} {:>7.3} / {:>7.3}",
            i * per + 1,
            i * per + chunk.len(),
            mean,
            worst
        );
    }
    s
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
    fn imbalance_of_known_loads() {
        let b = imbalance(&[5.0; 8]);
        assert_eq!((b.max_over_mean, b.cv, b.gini), (1.0, 0.0, 0.0));
        assert_eq!(b.hottest_share, 0.125);
        let one = imbalance(&[8.0, 0.0, 0.0, 0.0]);
        assert_eq!(one.max_over_mean, 4.0);
        assert_eq!(one.hottest_share, 1.0);
        assert!((one.gini - 0.75).abs() < 1e-12);
    }

    #[test]
    fn the_collapsing_trace_is_more_imbalanced_than_the_balanced_one_in_deep_layers() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/routing");
        let aux = super::super::read_trace(&dir.join("routing_moe16top2_aux.csv")).unwrap();
        let noaux = super::super::read_trace(&dir.join("routing_moe16top2_noaux.csv")).unwrap();
        let (a, n) = (trace_stats(&aux), trace_stats(&noaux));
        assert!(
            n.per_layer[7].max_over_mean > a.per_layer[7].max_over_mean * 1.5,
            "{:?} vs {:?}",
            n.per_layer[7],
            a.per_layer[7]
        );
        // PROVENANCE.md: up to 8x the mean share in deep layers without the balancing loss.
        let worst = n.over_time.iter().map(|x| x.1).fold(0.0, f64::max);
        assert!(worst > 6.0 && worst <= 16.0, "{worst}");
        assert!(stats_text(&noaux, &n, 4).contains("Gini"));
    }

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
}

/// What `moesim trace synth` asks for.
#[derive(Debug, Clone)]
pub struct SynthSpec {
    /// Router name: balanced, uniform, zipf, dirichlet.
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
    /// Zipf exponent.
    pub zipf_s: Option<f64>,
    /// Dirichlet concentration.
    pub alpha: Option<f64>,
    /// Logit noise (model noisy_topk).
    pub noise: Option<f64>,
    /// Tokens sampled per layer and step (model noisy_topk).
    pub sample_tokens: Option<usize>,
    /// Log-normal drift per step.
    pub drift: f64,
    /// Collapse share.
    pub collapse_share: Option<f64>,
    /// Collapse steps.
    pub collapse_steps: Option<u64>,
    /// Seed.
    pub seed: u64,
}

/// Why a synthetic trace cannot be made.
#[derive(Debug, thiserror::Error)]
#[error("trace synth: `{flag}`: {msg}")]
pub struct SynthError {
    /// The flag at fault.
    pub flag: &'static str,
    /// What is wrong and what is valid.
    pub msg: String,
}

/// Build the synthetic trace `spec` describes.
pub fn synth_trace(spec: &SynthSpec, source: &str) -> Result<RoutingTrace, SynthError> {
    use super::{Collapse, RouterModel};
    let bad = |flag, msg: String| SynthError { flag, msg };
    for (flag, v) in [
        ("--experts", spec.experts),
        ("--layers", spec.layers),
        ("--steps", spec.steps),
    ] {
        if v == 0 {
            return Err(bad(flag, "must be a positive integer".into()));
        }
    }
    if spec.tokens == 0 || spec.top_k == 0 || spec.top_k > spec.experts as u64 {
        return Err(bad(
            "--top-k",
            format!(
                "needs --tokens > 0 and 1 <= top-k <= experts ({})",
                spec.experts
            ),
        ));
    }
    let model = match spec.model.as_str() {
        "balanced" => RouterModel::Balanced,
        "uniform" => RouterModel::Uniform,
        "zipf" => RouterModel::Zipf {
            s: spec
                .zipf_s
                .filter(|s| *s >= 0.0)
                .ok_or_else(|| bad("--zipf-s", "model zipf needs --zipf-s >= 0".into()))?,
        },
        "dirichlet" => RouterModel::Dirichlet {
            alpha: spec
                .alpha
                .filter(|a| *a > 0.0)
                .ok_or_else(|| bad("--alpha", "model dirichlet needs --alpha > 0".into()))?,
            drift: if spec.drift >= 0.0 {
                spec.drift
            } else {
                return Err(bad("--drift", "must be >= 0".into()));
            },
        },
        o => {
            return Err(bad(
                "--model",
                format!("unknown `{o}`; valid: balanced, uniform, zipf, dirichlet"),
            ))
        }
    };
    let mut router = Router::new(model, spec.experts, spec.layers, spec.seed);
    match (spec.collapse_share, spec.collapse_steps) {
        (Some(c), Some(n)) if c > 0.0 && c <= 1.0 && n > 0 => {
            router = router.with_collapse(Collapse {
                max_share: c,
                over_steps: n,
            })
        }
        (None, None) => {}
        _ => {
            return Err(bad(
                "--collapse-share",
                "give both --collapse-share in (0, 1] and --collapse-steps > 0".into(),
            ))
        }
    }
    synthesize(&mut router, spec.steps, spec.tokens, spec.top_k, source)
        .ok_or_else(|| bad("--steps", "empty trace".into()))
}
