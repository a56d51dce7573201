//! The circadian policy: full speed in the cleanest intervals (or a fixed local-hour window), throttled
//! in between, paused in the dirtiest — re-planned at every interval so the deadline is kept.

use super::{Mode, Progress};

/// Training rates the planner assumes for each mode.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rates {
    /// Tokens per second at full speed.
    pub full_tps: f64,
    /// Tokens per second throttled.
    pub throttled_tps: f64,
    /// Time lost to one pause (checkpoint write + restore) [s].
    pub pause_overhead_s: f64,
}

/// Deadline-aware circadian scheduler over a grid signal.
#[derive(Debug, Clone)]
pub struct CircadianPolicy {
    /// The signal to minimise per interval (gCO2/kWh, price, or PUE-weighted energy).
    signal: Vec<f64>,
    /// Local hour of each interval's start.
    local_hour: Vec<u32>,
    interval_s: f64,
    /// Intervals before the deadline.
    deadline_intervals: usize,
    /// Signal at or below this runs full (unless a window is set).
    full_below: f64,
    /// Signal at or above this pauses.
    pause_above: f64,
    window: Option<Vec<u32>>,
    rates: Rates,
    /// Safety margin on the work still to do (planning uses mean rates; real steps vary with routing).
    margin: f64,
    order: Vec<usize>,
    modes: Vec<Mode>,
}

/// The largest value among the lowest `share` of `sorted` (at least one value).
fn lowest_share_bound(sorted: &[f64], share: f64) -> f64 {
    let n = sorted.len();
    if n == 0 {
        return 0.0;
    }
    let k = ((share.clamp(0.0, 1.0) * n as f64).ceil() as usize).clamp(1, n);
    sorted[k - 1]
}

/// The smallest value among the highest `share` of `sorted` (at least one value).
fn highest_share_bound(sorted: &[f64], share: f64) -> f64 {
    let n = sorted.len();
    if n == 0 {
        return 0.0;
    }
    let k = ((share.clamp(0.0, 1.0) * n as f64).ceil() as usize).clamp(1, n);
    sorted[n - k]
}

impl CircadianPolicy {
    /// A policy over `signal` (one value per interval of `interval_s` seconds, local hours given), with the
    /// deadline `deadline_intervals` intervals after the start, full/pause shares, an optional fixed window.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        signal: Vec<f64>,
        local_hour: Vec<u32>,
        interval_s: f64,
        deadline_intervals: usize,
        full_share: f64,
        pause_share: f64,
        window: Option<Vec<u32>>,
        rates: Rates,
    ) -> Self {
        let d = deadline_intervals.min(signal.len());
        let mut sorted: Vec<f64> = signal[..d].to_vec();
        sorted.sort_by(f64::total_cmp);
        let full_below = if full_share > 0.0 {
            lowest_share_bound(&sorted, full_share)
        } else {
            f64::NEG_INFINITY
        };
        let pause_above = if pause_share > 0.0 {
            highest_share_bound(&sorted, pause_share)
        } else {
            f64::INFINITY
        };
        Self {
            signal,
            local_hour,
            interval_s,
            deadline_intervals: d,
            full_below,
            pause_above,
            window,
            rates,
            margin: 0.03,
            order: Vec::with_capacity(d),
            modes: Vec::with_capacity(d),
        }
    }

    fn preferred(&self, j: usize) -> Mode {
        let s = self.signal[j];
        // A flat signal gives nothing to shift for: train at full speed rather than pause for no gain.
        if self.pause_above <= self.full_below {
            return Mode::Full;
        }
        if s >= self.pause_above {
            return Mode::Paused;
        }
        match &self.window {
            Some(w) if w.contains(&self.local_hour[j]) => Mode::Full,
            Some(_) => Mode::Throttled,
            None if s <= self.full_below => Mode::Full,
            None => Mode::Throttled,
        }
    }

    fn rate(&self, m: Mode) -> f64 {
        match m {
            Mode::Full => self.rates.full_tps,
            Mode::Throttled => self.rates.throttled_tps,
            Mode::Paused => 0.0,
        }
    }

    /// Work (tokens) the plan `self.modes` over intervals `i..` would do, minus pause overheads.
    fn capacity(&self, i: usize, paused_now: bool) -> f64 {
        let mut tokens = 0.0;
        let mut prev_paused = paused_now;
        for (k, &m) in self.modes.iter().enumerate() {
            let _ = i + k;
            let mut t = self.interval_s;
            if m != Mode::Paused && prev_paused {
                t -= self.rates.pause_overhead_s.min(t);
            }
            tokens += self.rate(m) * t;
            prev_paused = m == Mode::Paused;
        }
        tokens
    }

    /// Mode for interval `i`: the preferred plan for the rest of the window, upgraded to full speed in the
    /// cleanest intervals until the work left fits before the deadline.
    pub fn decide(&mut self, i: usize, progress: Progress) -> Mode {
        if i >= self.deadline_intervals {
            return Mode::Full;
        }
        let d = self.deadline_intervals;
        self.modes.clear();
        for j in i..d {
            let m = self.preferred(j);
            self.modes.push(m);
        }
        let need = progress.tokens_left * (1.0 + self.margin);
        if self.capacity(i, progress.paused) < need {
            self.order.clear();
            self.order.extend(0..self.modes.len());
            let sig = &self.signal[i..d];
            self.order
                .sort_by(|&a, &b| sig[a].total_cmp(&sig[b]).then(a.cmp(&b)));
            for k in 0..self.order.len() {
                let j = self.order[k];
                if self.modes[j] != Mode::Full {
                    self.modes[j] = Mode::Full;
                    if self.capacity(i, progress.paused) >= need {
                        break;
                    }
                }
            }
        }
        self.modes[0]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rates() -> Rates {
        Rates {
            full_tps: 1.0,
            throttled_tps: 0.5,
            pause_overhead_s: 0.0,
        }
    }

    fn day_signal() -> (Vec<f64>, Vec<u32>) {
        let sig: Vec<f64> = (0..48)
            .map(|h| {
                if (h % 24) < 6 {
                    100.0
                } else if (h % 24) > 17 {
                    500.0
                } else {
                    300.0
                }
            })
            .collect();
        let hours = (0..48).map(|h| (h % 24) as u32).collect();
        (sig, hours)
    }

    #[test]
    fn clean_hours_run_full_and_dirty_hours_pause_when_time_allows() {
        let (sig, hours) = day_signal();
        let mut p = CircadianPolicy::new(sig, hours, 1.0, 48, 0.25, 0.25, None, rates());
        let prog = Progress {
            tokens_left: 5.0,
            paused: false,
        };
        assert_eq!(p.decide(2, prog), Mode::Full);
        assert_eq!(p.decide(12, prog), Mode::Throttled);
        assert_eq!(p.decide(20, prog), Mode::Paused);
    }

    #[test]
    fn a_tight_deadline_upgrades_dirty_hours_to_full() {
        let (sig, hours) = day_signal();
        let mut p = CircadianPolicy::new(sig, hours, 1.0, 48, 0.25, 0.25, None, rates());
        // 47 tokens in 48 intervals at 1 token/s: nearly every interval must run full.
        let prog = Progress {
            tokens_left: 46.0,
            paused: false,
        };
        assert_eq!(p.decide(1, prog), Mode::Full);
        assert_eq!(
            p.decide(
                20,
                Progress {
                    tokens_left: 27.0,
                    paused: false
                }
            ),
            Mode::Full
        );
    }

    #[test]
    fn a_flat_signal_never_pauses() {
        let mut p = CircadianPolicy::new(
            vec![200.0; 24],
            (0..24).collect(),
            1.0,
            24,
            0.3,
            0.3,
            None,
            rates(),
        );
        for i in 0..24 {
            assert_eq!(
                p.decide(
                    i,
                    Progress {
                        tokens_left: 1.0,
                        paused: false
                    }
                ),
                Mode::Full
            );
        }
    }

    #[test]
    fn the_window_sets_full_hours_by_local_time() {
        let (sig, hours) = day_signal();
        let mut p =
            CircadianPolicy::new(sig, hours, 1.0, 48, 0.25, 0.0, Some(vec![12, 13]), rates());
        let prog = Progress {
            tokens_left: 1.0,
            paused: false,
        };
        assert_eq!(p.decide(12, prog), Mode::Full);
        assert_eq!(p.decide(2, prog), Mode::Throttled);
    }
}
