//! Building the circadian policy of a scenario: the per-interval cost signal, the planner's forecast of it, and its rates.

use super::{CircadianPolicy, Rates};
use crate::grid::GridSeries;
use crate::scenario::{CircadianSpec, Objective};

/// Why the circadian policy could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SetupError {
    /// The grid series lacks the series the objective weighs intervals by.
    #[error("needs {what}")]
    Missing {
        /// What is missing, as the scenario would give it.
        what: &'static str,
    },
}

/// Progress rate and IT power of one mode at the router's mean loads, as the run will meter them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ModeRate {
    /// Progress per second: tokens, or (trained to a target loss) effective tokens, which a step at a
    /// lower top-k or with dropped assignments earns fewer of [tokens/s].
    pub tokens_per_s: f64,
    /// IT power of the job in this mode: GPUs (spin power of waiting GPUs included), node power
    /// following the GPUs' load, network — the run's own power model [W].
    pub it_w: f64,
}

/// The rates the planner assumes: each mode's progress and IT power, the time one pause costs
/// (checkpoint write + restore) [s], and the IT power held while paused (0 when nodes are released) [W].
pub fn rates(full: ModeRate, throttled: ModeRate, pause_overhead_s: f64, paused_w: f64) -> Rates {
    Rates {
        full_tps: full.tokens_per_s,
        throttled_tps: throttled.tokens_per_s,
        pause_overhead_s,
        full_w: full.it_w,
        throttled_w: throttled.it_w,
        paused_w,
    }
}

/// Cost of one joule of IT energy in each grid interval for `objective`: facility energy (PUE of the
/// interval) × carbon intensity, × price, × grid load, or facility energy alone.
pub fn cost_signal(
    objective: Objective,
    grid: &GridSeries,
    pue: &[f64],
) -> Result<Vec<f64>, SetupError> {
    let weigh = |v: &[f64]| v.iter().zip(pue).map(|(c, p)| c * p).collect();
    Ok(match objective {
        Objective::Co2 => weigh(&grid.ci_g_per_kwh),
        Objective::Cost => match &grid.price_per_mwh {
            Some(pr) => weigh(pr),
            None => {
                return Err(SetupError::Missing {
                    what: "a price (grid.price_per_mwh or a price column) for objective = \"cost\"",
                })
            }
        },
        Objective::Energy => pue.to_vec(),
        // Grid load weighs each interval by how loaded the grid is (MW), as the seed literature's
        // "low-load hours"; energy still counts through PUE.
        Objective::Load => match &grid.load_mw {
            Some(l) => weigh(l),
            None => return Err(SetupError::Missing {
                what: "a grid series with load (a profile region with load, or a load column) for objective = \"load\"",
            }),
        },
    })
}

/// The signal the planner minimises: [`cost_signal`], except that a CO2 objective with
/// `strategy.circadian.signal` set follows that carbon signal (average or marginal) × PUE.
pub fn planner_signal(
    c: &CircadianSpec,
    grid: &GridSeries,
    pue: &[f64],
) -> Result<Vec<f64>, SetupError> {
    match (c.objective, c.signal) {
        (Objective::Co2, Some(kind)) => match grid.ci_of_kind(kind) {
            Some(ci) => Ok(ci.iter().zip(pue).map(|(c, p)| c * p).collect()),
            None => Err(SetupError::Missing {
                what: match kind {
                    crate::grid::CiKind::Marginal => "a marginal intensity series ([grid.marginal]) for signal = \"marginal\"",
                    crate::grid::CiKind::Average => "an average intensity series for signal = \"average\" (the grid file's signal is marginal)",
                },
            }),
        },
        _ => cost_signal(c.objective, grid, pue),
    }
}

/// The planner's forecast of `signal`: each value times (1 + a normal draw of standard deviation
/// `relative_error`), floored at zero, from the random stream `seed` (`signal` itself when the error is 0).
pub fn forecast(signal: Vec<f64>, relative_error: f64, seed: u64) -> Vec<f64> {
    match rand_distr::Normal::new(0.0, relative_error) {
        Ok(normal) if relative_error > 0.0 => {
            use rand::SeedableRng;
            use rand_distr::Distribution;
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            signal
                .into_iter()
                .map(|x| (x * (1.0 + normal.sample(&mut rng))).max(0.0))
                .collect()
        }
        _ => signal,
    }
}

/// The circadian policy of `c` over `grid` (PUE `pue` per interval) with the planner's `rates` (or, when
/// the top-k follows the local hour, `hour_rates`: the rates of each local hour); the forecast noise
/// draws from the random stream `forecast_seed`.
pub fn policy(
    c: &CircadianSpec,
    grid: &GridSeries,
    pue: &[f64],
    rates: Rates,
    hour_rates: Option<[Rates; 24]>,
    forecast_seed: u64,
) -> Result<CircadianPolicy, SetupError> {
    let signal = planner_signal(c, grid, pue)?;
    let hours = (0..grid.ci_g_per_kwh.len())
        .map(|i| grid.local_hour(i))
        .collect();
    let deadline_intervals = (c.deadline_s / grid.interval_s as f64).floor() as usize;
    // The planner sees a forecast: the signal with seeded relative noise (accounting uses the truth).
    let signal = forecast(signal, c.forecast_error, forecast_seed);
    let policy = CircadianPolicy::new(
        signal,
        hours,
        grid.interval_s as f64,
        deadline_intervals,
        c.full_share,
        c.pause_share,
        c.window_hours.clone(),
        rates,
    );
    let policy = match hour_rates {
        Some(h) => policy.with_hour_rates(h),
        None => policy,
    };
    Ok(if c.optimal { policy.optimal() } else { policy })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_forecast_error_keeps_the_signal_and_a_seed_repeats_its_noise() {
        let s = vec![100.0, 200.0, 300.0];
        assert_eq!(forecast(s.clone(), 0.0, 1), s);
        let a = forecast(s.clone(), 0.2, 7);
        assert_ne!(a, s);
        assert_eq!(a, forecast(s, 0.2, 7));
    }
}
