//! Step aggregation's block length: how many steps the fast path may advance at one routing sample,
//! from the spread of step times seen so far, so the sampling error of the totals stays small.

use super::step::Knobs;

/// Most steps in one block of the aggregated run (`training.exact = false`, the default). Within
/// a grid interval no knob changes, so the run advances up to this many steps at once, priced at
/// one routing sample drawn for the block (the block's steps all take that sample's time and
/// power). Blocks never cross an interval boundary, a rebalancing, a knob change of a curriculum or
/// batch schedule (`sim::schedule`; the block ends before the first step past the change) or the end
/// of training; the steps there are priced one by one. The error is sampling error only (fewer routing samples),
/// bounded by [`BLOCK_REL_ERROR`] and checked against per-step runs on every shipped scenario by
/// `sim::tests_blocks::aggregated_runs_match_per_step_runs_on_every_shipped_scenario` (totals
/// within 0.5 %, p99 step time within 2 %).
pub const BLOCK_STEPS: u64 = 256;

/// Target relative standard error of a run's summed step time from pricing one step per block
/// (0.1 %, a fifth of the 0.5 % the totals are held to). With `N` steps in blocks of `B`, the total
/// is `N/B` samples of `B·t`, so its relative standard error is `cv·√(B/N)` for a step-time
/// coefficient of variation `cv`; blocks are at most `ε²·N / cv²` steps long.
pub const BLOCK_REL_ERROR: f64 = 1e-3;

/// Steps priced one by one at a knob setting before its spread is trusted to size blocks.
const WARM_UP_STEPS: u64 = 16;

/// Running mean and variance of one knob setting's step times (Welford's algorithm).
#[derive(Debug, Clone, Copy)]
struct Spread {
    knobs: Knobs,
    n: u64,
    mean: f64,
    m2: f64,
}

/// Sizes the blocks of one run.
#[derive(Debug, Clone)]
pub(super) struct BlockSizer {
    /// At most this many steps a block (1: every step priced).
    cap: u64,
    /// Steps the run is expected to take (sets how much sampling error a block may add).
    expected_steps: f64,
    /// Step-time spread per knob setting seen (a handful: full, throttled, top-k by hour).
    spreads: Vec<Spread>,
}

impl BlockSizer {
    /// A sizer for a run of about `expected_steps` steps in blocks of at most `cap` steps.
    pub fn new(cap: u64, expected_steps: f64) -> BlockSizer {
        BlockSizer {
            cap: cap.max(1),
            expected_steps: expected_steps.max(1.0),
            spreads: Vec::new(),
        }
    }

    fn spread(&self, knobs: Knobs) -> Option<&Spread> {
        self.spreads.iter().find(|s| s.knobs == knobs)
    }

    /// Longest block at `knobs` for the sampling-error target, and the mean step time seen there
    /// (`None` before any step): 1 during the warm-up, `cap` when step times do not vary.
    pub fn longest(&self, knobs: Knobs) -> (u64, Option<f64>) {
        let Some(s) = self.spread(knobs) else {
            return (1, None);
        };
        if self.cap == 1 || s.n < WARM_UP_STEPS {
            return (1, Some(s.mean));
        }
        let var = s.m2 / (s.n - 1) as f64;
        let cv2 = if s.mean > 0.0 {
            var / (s.mean * s.mean)
        } else {
            0.0
        };
        let b = if cv2 > 0.0 {
            (BLOCK_REL_ERROR * BLOCK_REL_ERROR * self.expected_steps / cv2).floor()
        } else {
            f64::INFINITY
        };
        ((b.min(self.cap as f64) as u64).max(1), Some(s.mean))
    }

    /// Record a priced step's time at `knobs` [s].
    pub fn record(&mut self, knobs: Knobs, time_s: f64) {
        if self.cap == 1 {
            return;
        }
        let i = match self.spreads.iter().position(|s| s.knobs == knobs) {
            Some(i) => i,
            None => {
                self.spreads.push(Spread {
                    knobs,
                    n: 0,
                    mean: 0.0,
                    m2: 0.0,
                });
                self.spreads.len() - 1
            }
        };
        let s = &mut self.spreads[i];
        s.n += 1;
        let d = time_s - s.mean;
        s.mean += d / s.n as f64;
        s.m2 += d * (time_s - s.mean);
    }
}

/// The 99th percentile of step times recorded per block, entry `i` standing for `weights[i]`
/// steps: the same rank, `ceil(0.99·N)`-th of the `N` steps, as the per-step record takes.
pub(super) fn weighted_p99(times: &[f32], weights: &[u32]) -> f64 {
    let total: u64 = weights.iter().map(|&w| w as u64).sum();
    if total == 0 {
        return 0.0;
    }
    let k = ((total as f64 * 0.99).ceil() as u64).clamp(1, total);
    let mut order: Vec<(f32, u32)> = times.iter().copied().zip(weights.iter().copied()).collect();
    order.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
    let mut seen = 0u64;
    for (t, w) in order {
        seen += w as u64;
        if seen >= k {
            return t as f64;
        }
    }
    0.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn knobs() -> Knobs {
        crate::sim::test_setup::knobs(700.0, 2, 8)
    }

    #[test]
    fn weighted_p99_with_unit_weights_is_the_per_step_p99() {
        let times: Vec<f32> = (0..1000).map(|i| ((i * 7919) % 1000) as f32).collect();
        let mut sorted = times.clone();
        sorted.sort_by(f32::total_cmp);
        let want = sorted[989] as f64; // ceil(0.99 · 1000) = 990th
        assert_eq!(weighted_p99(&times, &vec![1; 1000]), want);
        // One entry standing for 100 steps at the top: the p99 is that entry.
        let mut w = vec![1u32; 1000];
        w[times.iter().position(|&t| t == 999.0).unwrap_or(0)] = 100;
        assert_eq!(weighted_p99(&times, &w), 999.0);
    }

    #[test]
    fn blocks_shrink_as_step_times_spread() {
        let k = knobs();
        // No spread: the cap, after the warm-up.
        let mut s = BlockSizer::new(64, 1e5);
        for _ in 0..WARM_UP_STEPS - 1 {
            s.record(k, 1.0);
        }
        assert_eq!(s.longest(k).0, 1);
        s.record(k, 1.0);
        assert_eq!(s.longest(k), (64, Some(1.0)));
        // cv = 10 % over 10⁴ steps: ε²N/cv² = 1e-6 · 1e4 / 1e-2 = 1 step.
        let mut s = BlockSizer::new(64, 1e4);
        for i in 0..1000 {
            s.record(k, if i % 2 == 0 { 0.9 } else { 1.1 });
        }
        assert_eq!(s.longest(k).0, 1);
        // cv = 1 % over 10⁵ steps: 1e-6 · 1e5 / 1e-4 = 1000, capped at 64.
        let mut s = BlockSizer::new(64, 1e5);
        for i in 0..1000 {
            s.record(k, if i % 2 == 0 { 0.99 } else { 1.01 });
        }
        assert_eq!(s.longest(k).0, 64);
        // Another knob setting has its own warm-up; a cap of 1 never aggregates.
        let other = Knobs { top_k: 1, ..k };
        assert_eq!(s.longest(other), (1, None));
        let mut s = BlockSizer::new(1, 1e5);
        for _ in 0..100 {
            s.record(k, 1.0);
        }
        assert_eq!(s.longest(k).0, 1);
    }
}
