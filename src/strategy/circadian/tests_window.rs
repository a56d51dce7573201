//! The planner against brute force: a short daily job with a window around its due time picks the cleanest slot.

use super::*;
use crate::grid::test_data::shared_data_dir;
use crate::grid::{eia_2022_spec, load_csv};

/// Full speed trains 1 token/s at 1 W; throttled is dearer per token than full (so off the hull); no
/// pause overhead, so the cheapest plan is exactly the cleanest intervals.
fn rates() -> Rates {
    Rates {
        full_tps: 1.0,
        throttled_tps: 0.5,
        pause_overhead_s: 0.0,
        full_w: 1.0,
        throttled_w: 0.6,
        paused_w: 0.0,
    }
}

/// Runs a job of `tokens` over `window` (intervals of `interval_s`, deadline at its end) with the
/// optimal planner and a perfect forecast; returns the intervals in which it trained.
fn run_job(window: &[f64], interval_s: f64, tokens: f64) -> Vec<usize> {
    let hours = vec![0; window.len()];
    let mut p = CircadianPolicy::new(
        window.to_vec(),
        hours,
        interval_s,
        window.len(),
        0.0,
        0.0,
        None,
        rates(),
    )
    .optimal();
    let (mut left, mut paused, mut used) = (tokens, true, Vec::new());
    for i in 0..window.len() {
        if left <= 0.0 {
            break;
        }
        let mode = p.decide(
            i,
            Progress {
                tokens_left: left,
                paused,
            },
        );
        let done = p.rate_at(mode, i) * interval_s;
        if done > 0.0 {
            used.push(i);
            left -= done.min(left);
        }
        paused = mode == Mode::Paused;
    }
    assert!(left <= 0.0, "the job did not finish before its deadline");
    used
}

/// Brute force: the first interval of least signal (a job of at most one interval runs in one).
fn cleanest(window: &[f64]) -> usize {
    let mut best = 0;
    for (i, &v) in window.iter().enumerate() {
        if v < window[best] {
            best = i;
        }
    }
    best
}

/// Every day, a job due at hour `due` with a ±`w`-interval window: the planner's slot is brute force's.
fn check_daily(signal: &[f64], per_day: usize, due: usize, w: usize, interval_s: f64, tokens: f64) {
    let days = signal.len() / per_day;
    assert!(days >= 2);
    for day in 0..days {
        let t0 = day * per_day + due;
        if t0 < w || t0 + w > signal.len() {
            continue;
        }
        let window = &signal[t0 - w..t0 + w];
        let used = run_job(window, interval_s, tokens);
        assert_eq!(used, vec![cleanest(window)], "day {day}: {window:?}");
    }
}

#[test]
fn a_one_slot_job_runs_in_the_cleanest_slot_not_the_earlier_of_two() {
    // 30-minute intervals, a 30-minute job, a ±3 h window around noon. Each day the second-cleanest slot
    // comes first and the cleanest later (a margin reserved as an extra slot took the earlier one).
    let per_day = 48;
    let mut signal = Vec::new();
    for day in 0..10 {
        for k in 0..per_day {
            let base = 300.0 + 50.0 * ((k as f64) / 48.0 * std::f64::consts::TAU).sin();
            signal.push(base + day as f64);
        }
        let noon = day * per_day + 24;
        signal[noon - 4] = 120.0 + day as f64; // earlier, second cleanest
        signal[noon + 2 + day % 3] = 100.0 + day as f64; // later, the cleanest
    }
    check_daily(&signal, per_day, 24, 6, 1800.0, 1800.0);
}

#[test]
fn a_daily_job_on_the_caiso_2022_series_picks_the_brute_force_hour() {
    // Real hourly carbon intensity (EIA-930 CISO 2022, loaded by the grid loaders), a ±4 h window around
    // 18:00 UTC, 120 days, a 30-minute job. (A job filling a whole interval whose cleanest hour is the
    // window's last rightly starts earlier: the 3 % margin cannot fit after it.)
    let path = shared_data_dir().join("grid/us_eia_2022/CISO.csv");
    let series = eia_2022_spec(path, "CISO")
        .and_then(|s| load_csv(&s, "CISO"))
        .unwrap_or_else(|e| panic!("CISO: {e}"));
    assert_eq!(series.interval_s, 3600);
    let signal = &series.ci_g_per_kwh[..24 * 120];
    check_daily(signal, 24, 18, 4, 3600.0, 1800.0);
}

#[test]
fn the_margin_still_forces_full_speed_when_the_deadline_is_tight() {
    // Two intervals, work for exactly two: the margin (at the end) cannot be placed, both run full now.
    let used = run_job(&[500.0, 100.0], 3600.0, 7200.0 * 0.99);
    assert_eq!(used, vec![0, 1]);
}

/// A top-k that follows the hour changes what an hour is worth: the planner must rate each interval at
/// the top-k it will run at. Hour 0 is cleaner but runs at top-1 (half the effective tokens per
/// second); hour 1 at the full top-k. Seeing that, the optimizer trains in hour 1; blind to it, it
/// would train in hour 0 and fall short.
#[test]
fn the_planner_rates_each_hour_at_the_top_k_it_will_run_at() {
    let at = |tps: f64| Rates {
        full_tps: tps,
        throttled_tps: tps / 2.0,
        pause_overhead_s: 0.0,
        full_w: 1000.0,
        throttled_w: 600.0,
        paused_w: 0.0,
    };
    let mut hours = [at(1.0); 24];
    hours[0] = at(0.5);
    let sig = vec![100.0, 110.0];
    let progress = Progress {
        tokens_left: 0.9,
        paused: false,
    };
    let policy = || CircadianPolicy::new(sig.clone(), vec![0, 1], 1.0, 2, 0.0, 0.0, None, at(1.0));
    let mut blind = policy().optimal();
    assert_eq!(blind.decide(0, progress), Mode::Full);
    let mut seeing = policy().with_hour_rates(hours).optimal();
    assert_eq!(seeing.decide(0, progress), Mode::Paused);
    assert_eq!(seeing.decide(1, progress), Mode::Full);
}
