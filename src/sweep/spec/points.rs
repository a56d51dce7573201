//! Expanding a `[sweep]` spec into its points: grid (mixed radix), zip, or a seeded Latin hypercube.

use super::{Mode, Param, Point, SweepSpec, Values};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Values in a parameter's list (0 for an interval).
pub(super) fn list_len(p: &Param) -> usize {
    match &p.values {
        Values::List(v) => v.len(),
        Values::Interval { .. } => 0,
    }
}

impl SweepSpec {
    /// Number of points, as a float (so an oversized grid does not overflow).
    pub(super) fn len_f64(&self) -> f64 {
        match self.mode {
            Mode::Grid => self.params.iter().map(|p| list_len(p) as f64).product(),
            Mode::Zip => list_len(&self.params[0]) as f64,
            Mode::Lhs => self.samples.unwrap_or(0) as f64,
        }
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.len_f64() as usize
    }

    /// Whether the sweep has no points (never, for a parsed spec).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every point in index order.
    pub fn points(&self) -> Vec<Point> {
        let n = self.len();
        match self.mode {
            Mode::Grid => (0..n)
                .map(|index| {
                    // Mixed-radix digits of the index, the last parameter varying fastest.
                    let mut rest = index;
                    let mut a =
                        vec![(String::new(), toml::Value::Boolean(false)); self.params.len()];
                    for (j, p) in self.params.iter().enumerate().rev() {
                        let Values::List(v) = &p.values else { continue };
                        a[j] = (p.path.clone(), v[rest % v.len()].clone());
                        rest /= v.len();
                    }
                    Point {
                        index,
                        assignments: a,
                    }
                })
                .collect(),
            Mode::Zip => (0..n)
                .map(|index| Point {
                    index,
                    assignments: self
                        .params
                        .iter()
                        .filter_map(|p| match &p.values {
                            Values::List(v) => Some((p.path.clone(), v[index].clone())),
                            Values::Interval { .. } => None,
                        })
                        .collect(),
                })
                .collect(),
            Mode::Lhs => {
                let mut rng = ChaCha8Rng::seed_from_u64(self.lhs_seed);
                // One column per parameter: a shuffled stratum per point, a uniform draw inside it.
                let cols: Vec<Vec<toml::Value>> = self
                    .params
                    .iter()
                    .map(|p| {
                        let mut strata: Vec<usize> = (0..n).collect();
                        strata.shuffle(&mut rng);
                        strata
                            .into_iter()
                            .map(|s| {
                                let u = (s as f64 + rng.gen::<f64>()) / n as f64;
                                lhs_value(&p.values, u)
                            })
                            .collect()
                    })
                    .collect();
                (0..n)
                    .map(|index| Point {
                        index,
                        assignments: self
                            .params
                            .iter()
                            .zip(&cols)
                            .map(|(p, c)| (p.path.clone(), c[index].clone()))
                            .collect(),
                    })
                    .collect()
            }
        }
    }
}

/// The value at quantile `u` in [0, 1) of a parameter's values.
fn lhs_value(v: &Values, u: f64) -> toml::Value {
    match v {
        Values::List(l) => l[((u * l.len() as f64) as usize).min(l.len() - 1)].clone(),
        Values::Interval { from, to, integer } => {
            if *integer {
                // Equal-width bins over the integers from..=to.
                let k = (u * (to - from + 1.0)).floor().min(to - from);
                toml::Value::Integer((from + k) as i64)
            } else {
                let x = from + u * (to - from);
                toml::Value::Float(format!("{x:.9e}").parse().unwrap_or(x))
            }
        }
    }
}
