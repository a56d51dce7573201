//! Seeded routers that give each MoE layer's expert shares for a step: uniform, Zipf, or a replayed trace.

use super::RoutingTrace;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use std::sync::Arc;

/// Where a run's routing comes from.
#[derive(Debug, Clone)]
pub enum RouterModel {
    /// Every expert equally likely: loads differ only by sampling noise.
    Uniform,
    /// Expert popularity ∝ 1/rank^s, with a seeded random order of experts per layer.
    Zipf {
        /// Zipf exponent (0 = uniform).
        s: f64,
    },
    /// Replay a recorded trace: step i uses trace step i mod steps; model layer l uses trace layer l mod layers.
    Trace(Arc<RoutingTrace>),
}

/// Produces per-step expert shares for every MoE layer of a model, deterministically from a seed.
#[derive(Debug, Clone)]
pub struct Router {
    model: RouterModel,
    experts: usize,
    layers: usize,
    rng: ChaCha8Rng,
    /// Base popularity per layer × expert (Zipf), normalised per layer.
    base: Vec<f64>,
}

impl Router {
    /// A router for `layers` MoE layers of `experts` experts; `seed` fixes every random choice.
    pub fn new(model: RouterModel, experts: usize, layers: usize, seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut base = vec![1.0 / experts as f64; experts * layers];
        if let RouterModel::Zipf { s } = model {
            for l in 0..layers {
                let row = &mut base[l * experts..(l + 1) * experts];
                let mut order: Vec<usize> = (0..experts).collect();
                for i in (1..experts).rev() {
                    order.swap(i, rng.gen_range(0..=i));
                }
                let mut total = 0.0;
                for (rank, &e) in order.iter().enumerate() {
                    row[e] = 1.0 / ((rank + 1) as f64).powf(s);
                    total += row[e];
                }
                row.iter_mut().for_each(|x| *x /= total);
            }
        }
        Self {
            model,
            experts,
            layers,
            rng,
            base,
        }
    }

    /// Experts per layer.
    pub fn experts(&self) -> usize {
        self.experts
    }

    /// MoE layers.
    pub fn layers(&self) -> usize {
        self.layers
    }

    /// Fill `out` (layers × experts) with the share of assignments each expert gets at `step`
    /// (0-based), for `assignments` token-to-expert assignments per layer (sets the sampling noise).
    pub fn fill_shares(&mut self, step: u64, assignments: f64, out: &mut [f64]) {
        let e = self.experts;
        match &self.model {
            RouterModel::Trace(t) => {
                let ts = (step % t.steps as u64) as usize;
                for l in 0..self.layers {
                    let c = t.counts(ts, l % t.layers);
                    let total: f64 = c.iter().map(|&x| x as f64).sum();
                    let row = &mut out[l * e..(l + 1) * e];
                    for (o, &x) in row.iter_mut().zip(c) {
                        *o = if total > 0.0 {
                            x as f64 / total
                        } else {
                            1.0 / e as f64
                        };
                    }
                }
            }
            RouterModel::Uniform | RouterModel::Zipf { .. } => {
                // Multinomial sampling noise by its normal approximation: sd of a count = sqrt(n p (1-p)).
                for l in 0..self.layers {
                    let base = &self.base[l * e..(l + 1) * e];
                    let row = &mut out[l * e..(l + 1) * e];
                    let mut total = 0.0;
                    for (o, &p) in row.iter_mut().zip(base) {
                        let z: f64 = StandardNormal.sample(&mut self.rng);
                        let sd = (p * (1.0 - p) / assignments.max(1.0)).sqrt();
                        *o = (p + sd * z).max(0.0);
                        total += *o;
                    }
                    row.iter_mut().for_each(|x| *x /= total);
                }
            }
        }
    }

    /// Mean shares over `steps` steps (for planning and for the balanced-router comparison).
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
    use super::*;

    #[test]
    fn shares_sum_to_one_and_repeat_with_the_seed() {
        for model in [RouterModel::Uniform, RouterModel::Zipf { s: 1.0 }] {
            let mut a = Router::new(model.clone(), 8, 3, 7);
            let mut b = Router::new(model, 8, 3, 7);
            let (mut x, mut y) = (vec![0.0; 24], vec![0.0; 24]);
            a.fill_shares(0, 1e4, &mut x);
            b.fill_shares(0, 1e4, &mut y);
            assert_eq!(x, y);
            for l in 0..3 {
                let s: f64 = x[l * 8..(l + 1) * 8].iter().sum();
                assert!((s - 1.0).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn zipf_is_skewed_and_uniform_is_not() {
        let mut u = Router::new(RouterModel::Uniform, 16, 1, 1);
        let mut z = Router::new(RouterModel::Zipf { s: 1.0 }, 16, 1, 1);
        let (mut x, mut y) = (vec![0.0; 16], vec![0.0; 16]);
        u.fill_shares(0, 1e6, &mut x);
        z.fill_shares(0, 1e6, &mut y);
        assert!(super::super::imbalance(&x).max_over_mean < 1.02);
        assert!(super::super::imbalance(&y).max_over_mean > 4.0);
    }
}
