//! Sampling spread of one micro-batch's routing counts: the expected largest (source, expert) count, by a seeded Monte Carlo.
//!
//! A router's shares say what fraction of the assignments each expert gets on average. One
//! micro-batch routes a finite number of tokens per source rank, so the count each (source,
//! expert) pair gets is a random draw around that mean: for `n` tokens of one source routed
//! top-1 by shares `p`, the counts are Multinomial(n, p). A capacity sized from the counts
//! themselves — Tutel's dynamic capacity, the largest count of any (source, expert) pair,
//! all-reduced (MAX) over the group (microsoft/tutel v0.2.0, `fast_dispatch.py` L186-187) — is
//! then the expected maximum of `sources × experts` such counts, far above the largest mean
//! when a pair gets few tokens (16 tokens per pair on average: the mean plus about three
//! standard deviations). This module computes that expectation once per distinct share row
//! (plan time), never in the per-step path.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Binomial, Distribution};
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

/// Monte Carlo draws of one micro-batch: the standard error of the expected maximum is the
/// maximum's standard deviation over `sqrt(draws)` (about 1/32 of it), below 1 % of the
/// maximum for the counts of a padded MoE layer.
pub const SPREAD_DRAWS: usize = 1024;

/// One micro-batch of one MoE layer as the sampler sees it.
#[derive(Debug, Clone, Copy)]
pub struct SpreadSpec {
    /// Source ranks routing tokens (the group the capacity is reduced over).
    pub sources: usize,
    /// Tokens each source routes per micro-batch.
    pub tokens_per_source: u64,
    /// Experts per token (top-k).
    pub top_k: usize,
    /// Monte Carlo draws ([`SPREAD_DRAWS`] unless a test asks for another number).
    pub draws: usize,
    /// Seed of the draws (from the scenario seed).
    pub seed: u64,
}

/// The expected largest count of any (source, expert) pair in one micro-batch routed by
/// `shares` (one per expert, any scale; negative or non-finite shares count as 0) [assignments].
///
/// Top-1: each source's counts are drawn exactly, Multinomial(n, p), as successive conditional
/// binomials. Top-k (k > 1, experts picked without replacement): each pair's count is drawn
/// Binomial(n, min(1, k·p_e)) — the exact marginal of a token picking expert `e` with
/// inclusion probability `k·p_e` — independently over the experts, which leaves out the small
/// negative correlation between one token's k distinct picks. The shares are sorted first (the
/// maximum does not depend on the experts' order), so rows that are permutations of one
/// another give the same number bit for bit.
pub fn expected_pair_max(shares: &[f64], spec: &SpreadSpec) -> f64 {
    let mut p: Vec<f64> = shares
        .iter()
        .map(|&x| if x.is_finite() && x > 0.0 { x } else { 0.0 })
        .collect();
    let total: f64 = p.iter().sum();
    if total <= 0.0 || spec.tokens_per_source == 0 || spec.sources == 0 || spec.draws == 0 {
        return 0.0;
    }
    p.iter_mut().for_each(|x| *x /= total);
    p.sort_by(|a, b| b.total_cmp(a));
    let n = spec.tokens_per_source;
    let k = spec.top_k.max(1);
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
    // A Binomial(m, q) draw; q is clamped into [0, 1] so rounding cannot make it invalid.
    let mut binom = |m: u64, q: f64| -> u64 {
        let q = q.clamp(0.0, 1.0);
        if m == 0 || q == 0.0 {
            0
        } else if q == 1.0 {
            m
        } else {
            Binomial::new(m, q).map_or(0, |b| b.sample(&mut rng))
        }
    };
    let mut sum = 0.0;
    for _ in 0..spec.draws {
        let mut best = 0u64;
        for _ in 0..spec.sources {
            if k == 1 {
                // Multinomial by conditional binomials: expert e gets Binomial(left, p_e / rest).
                let (mut left, mut rest) = (n, 1.0f64);
                for &pe in &p {
                    if left == 0 || rest <= 0.0 {
                        break;
                    }
                    let c = binom(left, pe / rest);
                    best = best.max(c);
                    left -= c.min(left);
                    rest -= pe;
                }
            } else {
                for &pe in &p {
                    best = best.max(binom(n, k as f64 * pe));
                }
            }
        }
        sum += best as f64;
    }
    sum / spec.draws as f64
}

/// The factor by which sampling lifts one layer's padded capacity above the largest mean
/// count: [`expected_pair_max`] over `n · k · max(share)` (1 when the row carries no load).
pub fn pair_max_factor(shares: &[f64], spec: &SpreadSpec) -> f64 {
    let total: f64 = shares.iter().filter(|x| x.is_finite() && **x > 0.0).sum();
    let top = shares
        .iter()
        .filter(|x| x.is_finite())
        .fold(0.0f64, |a, &b| a.max(b));
    // A token picks an expert at most once, so the inclusion probability caps at 1 (as the draws do).
    let inclusion = spec.top_k.max(1) as f64 * top / total;
    if inclusion.is_nan() || inclusion <= 0.0 {
        return 1.0;
    }
    let mean_max = spec.tokens_per_source as f64 * inclusion.min(1.0);
    if mean_max <= 0.0 {
        return 1.0;
    }
    expected_pair_max(shares, spec) / mean_max
}

/// What one sampled factor depends on: the row's shares sorted (as bits; the factor does not
/// depend on the experts' order) and every field of the spec.
type SpreadKey = (Vec<u64>, usize, u64, usize, usize, u64);

/// Factors sampled so far in this process, by row and spec: every step model of a run (the
/// throttled replicas' narrower plans, each strategy's and each agreement index's model) that
/// asks for the same row and spec reads the one Monte Carlo back. The factor is a pure function
/// of its key, so what is cached cannot change any output, on any thread count.
fn spread_memo() -> &'static Mutex<HashMap<SpreadKey, f64>> {
    static MEMO: OnceLock<Mutex<HashMap<SpreadKey, f64>>> = OnceLock::new();
    MEMO.get_or_init(|| Mutex::new(HashMap::new()))
}

/// [`pair_max_factor`] of `shares`, sampled once per process for each distinct (sorted row,
/// spec) and read back after (plan time; the Monte Carlo is ~0.5 M binomial draws a row).
pub fn cached_pair_max_factor(shares: &[f64], spec: &SpreadSpec) -> f64 {
    let mut row: Vec<u64> = shares.iter().map(|x| x.to_bits()).collect();
    row.sort_unstable();
    let key = (
        row,
        spec.sources,
        spec.tokens_per_source,
        spec.top_k,
        spec.draws,
        spec.seed,
    );
    // A poisoned lock only means another thread panicked mid-insert of a pure value: the map
    // is still valid, so it is used as it is.
    let hit = spread_memo()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&key)
        .copied();
    if let Some(f) = hit {
        return f;
    }
    // Sampled outside the lock (two threads may both sample a new row: the same number).
    let f = pair_max_factor(shares, spec);
    spread_memo()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key, f);
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(sources: usize, n: u64, draws: usize, seed: u64) -> SpreadSpec {
        SpreadSpec {
            sources,
            tokens_per_source: n,
            top_k: 1,
            draws,
            seed,
        }
    }

    /// Exact distribution of the largest Multinomial(n, p) count over one source, by enumerating
    /// every outcome: `pmf[k]` = P(max = k).
    fn max_pmf(n: u64, p: &[f64]) -> Vec<f64> {
        fn walk(n: u64, p: &[f64], prob: f64, best: u64, pmf: &mut [f64]) {
            if p.len() == 1 {
                pmf[best.max(n) as usize] += prob;
                return;
            }
            let rest: f64 = p[1..].iter().sum();
            let q = p[0] / (p[0] + rest);
            // Binomial(n, q) for the first expert, the rest split among the others.
            let mut c_nk = 1.0;
            for c in 0..=n {
                if c > 0 {
                    c_nk *= (n - c + 1) as f64 / c as f64;
                }
                let pc = c_nk * q.powi(c as i32) * (1.0 - q).powi((n - c) as i32);
                walk(n - c, &p[1..], prob * pc, best.max(c), pmf);
            }
        }
        let mut pmf = vec![0.0; n as usize + 1];
        walk(n, p, 1.0, 0, &mut pmf);
        pmf
    }

    /// Exact E[max] of Multinomial(n, p) counts over one source.
    fn exact_max(n: u64, p: &[f64]) -> f64 {
        max_pmf(n, p)
            .iter()
            .enumerate()
            .map(|(k, pk)| k as f64 * pk)
            .sum()
    }

    #[test]
    fn two_tokens_over_two_experts_match_the_closed_form() {
        // Counts (2,0), (1,1), (0,2) with probabilities 1/4, 1/2, 1/4: E[max] = 1.5.
        let m = expected_pair_max(&[1.0, 1.0], &spec(1, 2, 200_000, 7));
        assert!((m - 1.5).abs() < 0.01, "{m}");
    }

    #[test]
    fn expected_max_matches_exact_enumeration_for_a_small_skewed_case() {
        let p = [0.5, 0.3, 0.2];
        let exact = exact_max(6, &p);
        let m = expected_pair_max(&p, &spec(1, 6, 200_000, 3));
        assert!((m - exact).abs() < 0.01 * exact, "{m} vs {exact}");
        // Over two independent sources: E[max] from the exact CDF of one source's max.
        let cdf = max_pmf(6, &p);
        let (mut acc, mut two) = (0.0, 0.0);
        for (x, pm) in cdf.iter().enumerate() {
            let below = acc;
            acc += pm;
            two += x as f64 * (acc * acc - below * below);
        }
        let m2 = expected_pair_max(&p, &spec(2, 6, 200_000, 3));
        assert!((m2 - two).abs() < 0.01 * two, "{m2} vs {two}");
        assert!(two > exact);
    }

    #[test]
    fn same_seed_same_number_and_rows_in_any_order_agree() {
        let row = [0.1, 0.4, 0.2, 0.3];
        let a = expected_pair_max(&row, &spec(4, 32, 256, 11));
        let b = expected_pair_max(&row, &spec(4, 32, 256, 11));
        assert_eq!(a.to_bits(), b.to_bits());
        let shuffled = [0.3, 0.1, 0.2, 0.4];
        let c = expected_pair_max(&shuffled, &spec(4, 32, 256, 11));
        assert_eq!(a.to_bits(), c.to_bits());
        let d = expected_pair_max(&row, &spec(4, 32, 256, 12));
        assert_ne!(a.to_bits(), d.to_bits());
    }

    #[test]
    fn spread_vanishes_as_the_tokens_per_pair_grow() {
        // 64 equal experts over 8 sources: the factor falls toward 1 as n grows
        // (max of the counts = mean + O(sqrt(mean · log pairs))).
        let row = [1.0; 64];
        // The excess over the mean falls as 1/sqrt(tokens per pair): by about 4 per 16x tokens.
        let mut last = f64::INFINITY;
        for n in [1024u64, 16_384, 262_144, 4_194_304] {
            let f = pair_max_factor(&row, &spec(8, n, 256, 5));
            assert!(f > 1.0 && f < last, "n {n}: {f} after {last}");
            if last.is_finite() {
                let shrink = (last - 1.0) / (f - 1.0);
                assert!(shrink > 3.0 && shrink < 5.0, "n {n}: {shrink}");
            }
            last = f;
        }
        assert!(last < 1.015, "{last}");
        // At 16 tokens per pair the largest of 512 counts is far above the mean (about +3 sd).
        let f = pair_max_factor(&row, &spec(8, 1024, 1024, 5));
        assert!(f > 1.6 && f < 2.0, "{f}");
    }

    #[test]
    fn the_cached_factor_is_the_sampled_one_for_any_order_of_the_row() {
        let s = spec(8, 1024, 64, 21);
        let row = [4.0, 1.0, 2.0, 3.0, 0.5];
        let direct = pair_max_factor(&row, &s);
        let first = cached_pair_max_factor(&row, &s);
        let again = cached_pair_max_factor(&[0.5, 3.0, 2.0, 1.0, 4.0], &s);
        assert_eq!(direct.to_bits(), first.to_bits());
        assert_eq!(first.to_bits(), again.to_bits());
        // Another seed is another key, not the cached number.
        let other = cached_pair_max_factor(&row, &spec(8, 1024, 64, 22));
        assert_eq!(
            other.to_bits(),
            pair_max_factor(&row, &spec(8, 1024, 64, 22)).to_bits()
        );
        assert_ne!(other.to_bits(), first.to_bits());
    }

    #[test]
    fn top_k_uses_inclusion_probabilities_and_empty_rows_give_zero() {
        let row = [1.0; 8];
        let s = SpreadSpec {
            top_k: 2,
            ..spec(1, 4096, 256, 1)
        };
        // Mean count per expert n·k/E = 1024; the max sits a few sd (~28) above it.
        let m = expected_pair_max(&row, &s);
        assert!(m > 1024.0 && m < 1024.0 + 4.0 * 28.0, "{m}");
        assert_eq!(expected_pair_max(&[0.0, 0.0], &s), 0.0);
        assert_eq!(pair_max_factor(&[0.0, f64::NAN], &s), 1.0);
    }
}
