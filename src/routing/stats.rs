//! Load-imbalance statistics of routing traces: per layer and over training.

use super::RoutingTrace;
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

#[cfg(test)]
mod tests {
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
}
