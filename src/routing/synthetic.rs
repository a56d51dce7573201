//! Seeded routers that give each MoE layer's expert shares for a step: balanced, uniform, Zipf,
//! Dirichlet with drifting hot experts, a growing collapse, or a replayed trace.

use super::replay::TraceReplay;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Dirichlet, Distribution, StandardNormal};

/// Where a run's routing comes from.
#[derive(Debug, Clone)]
pub enum RouterModel {
    /// Exactly equal loads every step (the perfectly balanced limit).
    Balanced,
    /// Every expert equally likely: loads differ only by multinomial sampling noise.
    Uniform,
    /// Expert popularity ∝ 1/rank^s, with a seeded random order of experts per layer.
    Zipf {
        /// Zipf exponent (0 = uniform).
        s: f64,
    },
    /// Popularity drawn from a symmetric Dirichlet(α) per layer, drifting as a log-normal random walk.
    Dirichlet {
        /// Concentration (small = skewed, large = balanced).
        alpha: f64,
        /// Standard deviation of the per-step log-popularity change (0 = no drift).
        drift: f64,
    },
    /// Noisy top-k gating (Shazeer et al. 2017): each of `tokens` sampled tokens per layer and step adds
    /// Gaussian noise of standard deviation `noise` to Zipf(s)-skewed logits and takes its top `k`.
    NoisyTopK {
        /// Zipf exponent of the clean gate probabilities (their logs are the logits).
        s: f64,
        /// Standard deviation of the logit noise.
        noise: f64,
        /// Experts per token.
        k: usize,
        /// Tokens sampled per layer and step (more = less sampling noise, more time).
        tokens: usize,
    },
    /// Replay of a recorded trace.
    Trace(TraceReplay),
}

/// A router collapse that grows over training: the hottest expert of each layer gains share linearly.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Collapse {
    /// Share of all assignments the collapsed expert takes at full collapse, in (0, 1].
    pub max_share: f64,
    /// Steps until full collapse.
    pub over_steps: u64,
}

/// Produces per-step expert shares for every MoE layer of a model, deterministically from a seed.
#[derive(Debug, Clone)]
pub struct Router {
    model: RouterModel,
    experts: usize,
    layers: usize,
    rng: ChaCha8Rng,
    /// Base popularity per layer × expert, normalised per layer.
    base: Vec<f64>,
    /// sqrt(p (1 − p)) per cell, for the sampling noise.
    sd: Vec<f64>,
    collapse: Option<Collapse>,
    /// Hottest base expert per layer (the one a collapse grows).
    hot: Vec<usize>,
    last_step: Option<u64>,
    /// Scratch: one token's noisy gate scores.
    scores: Vec<f64>,
}

impl Router {
    /// A router for `layers` MoE layers of `experts` experts; `seed` fixes every random choice.
    pub fn new(model: RouterModel, experts: usize, layers: usize, seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut base = vec![1.0 / experts as f64; experts * layers];
        match &model {
            RouterModel::Zipf { s } | RouterModel::NoisyTopK { s, .. } => {
                for row in base.chunks_mut(experts) {
                    let mut order: Vec<usize> = (0..experts).collect();
                    for i in (1..experts).rev() {
                        order.swap(i, rng.gen_range(0..=i));
                    }
                    for (rank, &e) in order.iter().enumerate() {
                        row[e] = 1.0 / ((rank + 1) as f64).powf(*s);
                    }
                    let total: f64 = row.iter().sum();
                    row.iter_mut().for_each(|x| *x /= total);
                }
            }
            RouterModel::Dirichlet { alpha, .. } if experts > 1 => {
                if let Ok(d) = Dirichlet::new_with_size(alpha.max(1e-3), experts) {
                    for row in base.chunks_mut(experts) {
                        let p: Vec<f64> = d.sample(&mut rng);
                        // Keep every expert reachable so the drift can move popularity to it.
                        let floor = 1e-6;
                        let total: f64 = p.iter().map(|x| x.max(floor)).sum();
                        row.iter_mut()
                            .zip(&p)
                            .for_each(|(r, x)| *r = x.max(floor) / total);
                    }
                }
            }
            _ => {}
        }
        let sd = base.iter().map(|p| (p * (1.0 - p)).sqrt()).collect();
        let hot = base
            .chunks(experts)
            .map(|row| {
                row.iter()
                    .enumerate()
                    .max_by(|a, b| a.1.total_cmp(b.1))
                    .map_or(0, |(i, _)| i)
            })
            .collect();
        Self {
            model,
            experts,
            layers,
            rng,
            base,
            sd,
            collapse: None,
            hot,
            last_step: None,
            scores: vec![0.0; experts],
        }
    }

    /// Add a collapse that grows over training (synthetic routers only).
    pub fn with_collapse(mut self, c: Collapse) -> Self {
        self.collapse = Some(c);
        self
    }

    /// Experts per layer.
    pub fn experts(&self) -> usize {
        self.experts
    }

    /// MoE layers.
    pub fn layers(&self) -> usize {
        self.layers
    }

    /// A short description for reports (e.g. how a trace was mapped).
    pub fn describe(&self) -> String {
        let c = self.collapse.map_or(String::new(), |c| {
            format!(
                ", collapse to {:.0} % over {} steps",
                c.max_share * 100.0,
                c.over_steps
            )
        });
        match &self.model {
            RouterModel::Balanced => "balanced (exactly equal loads)".into(),
            RouterModel::Uniform => format!("uniform with sampling noise{c}"),
            RouterModel::Zipf { s } => format!("Zipf s = {s}{c}"),
            RouterModel::Dirichlet { alpha, drift } => {
                format!("Dirichlet α = {alpha}, drift σ = {drift}{c}")
            }
            RouterModel::NoisyTopK { s, noise, k, tokens } => format!(
                "noisy top-{k} gating: Zipf s = {s} logits + N(0, {noise}²) noise, {tokens} tokens sampled per layer and step{c}"
            ),
            RouterModel::Trace(t) => t.describe(),
        }
    }

    /// Fill `out` (layers × experts) with the share of assignments each expert gets at `step`
    /// (0-based), for `assignments` token-to-expert assignments per layer (sets the sampling noise).
    /// Steps are expected in order (drifting routers advance their state once per new step).
    pub fn fill_shares(&mut self, step: u64, assignments: f64, out: &mut [f64]) {
        self.fill_shares_over(step, 1, assignments, out);
    }

    /// [`Router::fill_shares`] for the first step of a block of `steps` steps that share one
    /// routing sample: a drifting router's walk advances `steps` steps at once (the sum of `steps`
    /// log-normal increments of σ is one of σ·√steps; `steps = 1` is `fill_shares` bit for bit).
    pub fn fill_shares_over(&mut self, step: u64, steps: u64, assignments: f64, out: &mut [f64]) {
        let e = self.experts;
        if let RouterModel::Trace(t) = &mut self.model {
            t.fill_shares(step, out);
            return;
        }
        match &self.model {
            RouterModel::Trace(_) => {}
            RouterModel::Balanced => {
                out.iter_mut().for_each(|x| *x = 1.0 / e as f64);
                return;
            }
            RouterModel::NoisyTopK {
                noise, k, tokens, ..
            } => {
                let (noise, k, tokens) = (*noise, (*k).clamp(1, e), (*tokens).max(1));
                let c = self.collapse.map_or(0.0, |c| {
                    c.max_share * (step as f64 / c.over_steps.max(1) as f64).min(1.0)
                });
                for l in 0..self.layers {
                    let base = &self.base[l * e..(l + 1) * e];
                    let row = &mut out[l * e..(l + 1) * e];
                    row.iter_mut().for_each(|x| *x = 0.0);
                    for _ in 0..tokens {
                        // Top-k of noisy logits: one noise draw per expert, then k passes of max (k is small).
                        for (i, &p) in base.iter().enumerate() {
                            let z: f64 = StandardNormal.sample(&mut self.rng);
                            self.scores[i] = p.max(1e-300).ln() + noise * z;
                        }
                        for _ in 0..k {
                            let mut best = (f64::NEG_INFINITY, 0usize);
                            for (i, &sc) in self.scores.iter().enumerate() {
                                if sc > best.0 {
                                    best = (sc, i);
                                }
                            }
                            self.scores[best.1] = f64::NEG_INFINITY;
                            row[best.1] += 1.0;
                        }
                    }
                    let scale = (1.0 - c) / (tokens * k) as f64;
                    row.iter_mut().for_each(|x| *x *= scale);
                    row[self.hot[l]] += c;
                }
                return;
            }
            RouterModel::Dirichlet { drift, .. }
                if *drift > 0.0 && self.last_step != Some(step) =>
            {
                // A log-normal random walk of popularity, once per step (× √1 = 1 exactly).
                let drift = *drift * (steps.max(1) as f64).sqrt();
                for row in self.base.chunks_mut(e) {
                    let mut total = 0.0;
                    for p in row.iter_mut() {
                        let z: f64 = StandardNormal.sample(&mut self.rng);
                        *p *= (drift * z).exp();
                        total += *p;
                    }
                    row.iter_mut().for_each(|p| *p /= total);
                }
                for (s, p) in self.sd.iter_mut().zip(&self.base) {
                    *s = (p * (1.0 - p)).sqrt();
                }
            }
            _ => {}
        }
        self.last_step = Some(step);
        // Multinomial sampling noise by its normal approximation: sd of a share = sqrt(p (1-p) / n).
        let inv_sqrt_n = 1.0 / assignments.max(1.0).sqrt();
        let c = self.collapse.map_or(0.0, |c| {
            c.max_share * (step as f64 / c.over_steps.max(1) as f64).min(1.0)
        });
        for l in 0..self.layers {
            let base = &self.base[l * e..(l + 1) * e];
            let sd = &self.sd[l * e..(l + 1) * e];
            let row = &mut out[l * e..(l + 1) * e];
            let mut total = 0.0;
            for ((o, &p), &s) in row.iter_mut().zip(base).zip(sd) {
                let z: f64 = StandardNormal.sample(&mut self.rng);
                *o = (p + s * inv_sqrt_n * z).max(0.0);
                total += *o;
            }
            let scale = (1.0 - c) / total;
            row.iter_mut().for_each(|x| *x *= scale);
            row[self.hot[l]] += c;
        }
    }

    /// The first trace read that failed during the run, if any (a replayed trace file that changed after
    /// it was checked); synthetic routers never fail.
    pub fn take_error(&mut self) -> Option<super::RoutingError> {
        match &mut self.model {
            RouterModel::Trace(t) => t.take_error(),
            _ => None,
        }
    }

    /// Mean shares over `steps` steps (for planning), without advancing this router.
    pub fn mean_shares(&self, steps: u64, assignments: f64) -> Vec<f64> {
        let mut probe = self.clone();
        let mut acc = vec![0.0; self.experts * self.layers];
        let mut buf = vec![0.0; self.experts * self.layers];
        let n = steps.max(1);
        for s in 0..n {
            probe.fill_shares(s, assignments, &mut buf);
            acc.iter_mut()
                .zip(&buf)
                .for_each(|(a, b)| *a += b / n as f64);
        }
        acc
    }
}

#[cfg(test)]
mod tests {
    use super::super::imbalance;
    use super::*;

    #[test]
    fn shares_sum_to_one_and_repeat_with_the_seed() {
        for model in [
            RouterModel::Uniform,
            RouterModel::Zipf { s: 1.0 },
            RouterModel::Dirichlet {
                alpha: 0.5,
                drift: 0.05,
            },
        ] {
            let mut a = Router::new(model.clone(), 8, 3, 7);
            let mut b = Router::new(model, 8, 3, 7);
            let (mut x, mut y) = (vec![0.0; 24], vec![0.0; 24]);
            for s in 0..5 {
                a.fill_shares(s, 1e4, &mut x);
                b.fill_shares(s, 1e4, &mut y);
                assert_eq!(x, y);
            }
            for l in 0..3 {
                let s: f64 = x[l * 8..(l + 1) * 8].iter().sum();
                assert!((s - 1.0).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn zipf_is_skewed_uniform_is_not_and_balanced_is_exact() {
        let mut u = Router::new(RouterModel::Uniform, 16, 1, 1);
        let mut z = Router::new(RouterModel::Zipf { s: 1.0 }, 16, 1, 1);
        let mut b = Router::new(RouterModel::Balanced, 16, 1, 1);
        let (mut x, mut y, mut w) = (vec![0.0; 16], vec![0.0; 16], vec![0.0; 16]);
        u.fill_shares(0, 1e6, &mut x);
        z.fill_shares(0, 1e6, &mut y);
        b.fill_shares(0, 1e6, &mut w);
        assert!(imbalance(&x).max_over_mean < 1.02);
        assert!(imbalance(&y).max_over_mean > 4.0);
        assert_eq!(imbalance(&w).max_over_mean, 1.0);
    }

    #[test]
    fn noise_in_the_gate_flattens_a_skewed_router() {
        // Shazeer et al. 2017 add noise to the gate logits to spread load: more noise, less skew.
        let skew = |noise: f64| {
            let mut r = Router::new(
                RouterModel::NoisyTopK {
                    s: 1.0,
                    noise,
                    k: 2,
                    tokens: 2000,
                },
                8,
                1,
                4,
            );
            let mut x = vec![0.0; 8];
            r.fill_shares(0, 1e6, &mut x);
            assert!((x.iter().sum::<f64>() - 1.0).abs() < 1e-12);
            imbalance(&x).max_over_mean
        };
        let (quiet, loud) = (skew(0.1), skew(3.0));
        assert!(quiet > 1.5 && loud < quiet * 0.8, "{quiet} vs {loud}");
    }

    #[test]
    fn dirichlet_drift_moves_the_hot_expert_and_collapse_grows() {
        let mut d = Router::new(
            RouterModel::Dirichlet {
                alpha: 1.0,
                drift: 0.2,
            },
            16,
            1,
            3,
        );
        let mut x = vec![0.0; 16];
        d.fill_shares(0, 1e9, &mut x);
        let first = x.clone();
        for s in 1..500 {
            d.fill_shares(s, 1e9, &mut x);
        }
        let moved: f64 = first.iter().zip(&x).map(|(a, b)| (a - b).abs()).sum();
        assert!(moved > 0.3, "popularity should drift: L1 change {moved}");
        let mut c = Router::new(RouterModel::Uniform, 8, 2, 5).with_collapse(Collapse {
            max_share: 0.6,
            over_steps: 100,
        });
        let mut y = vec![0.0; 16];
        c.fill_shares(0, 1e9, &mut y);
        let early = imbalance(&y[..8]).max_over_mean;
        c.fill_shares(200, 1e9, &mut y);
        let late = imbalance(&y[..8]).max_over_mean;
        assert!(early < 1.01 && late > 5.0 - 1e-9, "{early} {late}");
    }
}
