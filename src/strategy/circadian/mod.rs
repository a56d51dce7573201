//! The circadian policy: full speed in the cleanest intervals (or a fixed local-hour window), throttled
//! in between, paused in the dirtiest — re-planned at every interval so the deadline is kept.

pub mod setup;

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
    /// IT power at full speed [W].
    pub full_w: f64,
    /// IT power throttled [W].
    pub throttled_w: f64,
    /// IT power paused (0 when nodes are released) [W].
    pub paused_w: f64,
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
    /// Target share of the forecast window at full speed.
    full_share: f64,
    /// Target share of the forecast window paused.
    pause_share: f64,
    /// Forecast window for the thresholds [intervals].
    lookahead: usize,
    /// Current forecast window [start, end) and how many intervals tied at each threshold join its share.
    window_start: usize,
    window_end: usize,
    full_ties: usize,
    pause_ties: usize,
    /// Signal at or below this runs full (unless a window is set).
    full_below: f64,
    /// Signal at or above this pauses.
    pause_above: f64,
    window: Option<Vec<u32>>,
    rates: Rates,
    /// The rates of each local hour, when they differ by hour (a top-k that follows the hour).
    hour_rates: Option<Box<[Rates; 24]>>,
    /// The optimizer's upgrade hull of each local hour (one entry without hourly rates), built once.
    hulls: Vec<Vec<Upgrade>>,
    /// Interval of `modes[0]` in the plan being made.
    plan_start: usize,
    /// Safety margin on the work still to do (planning uses mean rates; real steps vary with routing).
    margin: f64,
    order: Vec<usize>,
    modes: Vec<Mode>,
    sorted: Vec<f64>,
    optimal: bool,
    /// Scratch for the optimizer: (cost per token, interval offset, target mode).
    steps: Vec<(f64, usize, Mode)>,
    /// Cost per second of being in each mode besides signal × power (a compute-hour tax on held GPUs),
    /// in the units of signal × W, by `Mode as usize`; `None`: no such cost (the plain hull).
    fixed: Option<[f64; 3]>,
    /// The grid's hints as the modes each interval allows (by `Mode as usize`), and whether they bind
    /// (a constraint) or only advise (departed from where the deadline needs it).
    hints: Option<(Vec<[bool; 3]>, bool)>,
}

/// The upgrades along the lower convex hull of (work rate, cost) points: (from, to, extra tokens/s,
/// extra cost). A point that is slower and no cheaper per token is skipped.
fn lower_hull(mut pts: Vec<(f64, f64, Mode)>) -> Vec<Upgrade> {
    pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut hull: Vec<(f64, f64, Mode)> = Vec::with_capacity(3);
    for p in pts {
        if hull.last().is_some_and(|h| p.0 <= h.0) {
            // Same rate: keep the cheaper.
            if let Some(h) = hull.last_mut() {
                if p.1 < h.1 {
                    *h = p;
                }
            }
            continue;
        }
        while hull.len() >= 2 {
            let (a, b) = (hull[hull.len() - 2], hull[hull.len() - 1]);
            // b is above the segment a→p: not on the lower hull.
            if (b.1 - a.1) * (p.0 - a.0) >= (p.1 - a.1) * (b.0 - a.0) {
                hull.pop();
            } else {
                break;
            }
        }
        hull.push(p);
    }
    hull.windows(2)
        .map(|w| (w[0].2, w[1].2, w[1].0 - w[0].0, w[1].1 - w[0].1))
        .collect()
}

/// A step up the optimizer's hull: (from, to, extra tokens/s, extra W).
type Upgrade = (Mode, Mode, f64, f64);

/// Tokens per second of mode `m` at `r`.
fn rate_of(m: Mode, r: &Rates) -> f64 {
    match m {
        Mode::Full => r.full_tps,
        Mode::Throttled => r.throttled_tps,
        Mode::Paused => 0.0,
    }
}

/// The faster of full and throttled at `r` (a lower top-k can make throttled the faster one).
fn fast_of(r: &Rates) -> Mode {
    if r.throttled_tps > r.full_tps {
        Mode::Throttled
    } else {
        Mode::Full
    }
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
        // Thresholds come from the forecast of the next week (or up to the deadline): a percentile over a
        // whole season would put every pause in its dirtiest month, which the run may never reach.
        let lookahead = ((7.0 * 86_400.0 / interval_s).round() as usize).max(1);
        Self {
            signal,
            local_hour,
            interval_s,
            deadline_intervals: d,
            full_share,
            pause_share,
            lookahead,
            window_start: 0,
            window_end: 0,
            full_ties: 0,
            pause_ties: 0,
            full_below: f64::NEG_INFINITY,
            pause_above: f64::INFINITY,
            window,
            rates,
            hour_rates: None,
            hulls: Vec::new(),
            plan_start: 0,
            margin: 0.03,
            order: Vec::with_capacity(d),
            modes: Vec::with_capacity(d),
            sorted: Vec::with_capacity(lookahead),
            optimal: false,
            steps: Vec::new(),
            fixed: None,
            hints: None,
        }
    }

    /// Add a cost per second to each mode (`[full, throttled, paused]`, in the units of signal × W)
    /// that the optimizer weighs beside signal × power: the compute-hour tax on the GPUs each mode
    /// holds. With it the cheapest mode upgrades can differ from interval to interval.
    pub fn with_fixed_costs(mut self, per_mode: [f64; 3]) -> Self {
        self.fixed = Some(per_mode);
        self
    }

    /// Follow the grid's hints: `allowed[j]` the modes interval `j` allows (by `Mode as usize`);
    /// `binding`: never leave them (a constraint), else leave them only where the deadline needs it,
    /// in the intervals where that costs least (advice). Used by the optimizer.
    pub fn with_hints(mut self, allowed: Vec<[bool; 3]>, binding: bool) -> Self {
        self.hints = Some((allowed, binding));
        self
    }

    /// The modes interval `j` allows (all without hints or past the hints' end).
    fn allowed(&self, j: usize) -> [bool; 3] {
        self.hints
            .as_ref()
            .and_then(|(a, _)| a.get(j).copied())
            .unwrap_or([true; 3])
    }

    /// `m`, or under binding hints the fastest mode interval `i` allows if `m` is not one of them.
    fn obey(&self, i: usize, m: Mode) -> Mode {
        let ok = self.allowed(i);
        if !self.hints.as_ref().is_some_and(|h| h.1) || ok[m as usize] {
            return m;
        }
        [Mode::Full, Mode::Throttled]
            .into_iter()
            .filter(|x| ok[*x as usize])
            .max_by(|a, b| self.rate_at(*a, i).total_cmp(&self.rate_at(*b, i)))
            .unwrap_or(Mode::Paused)
    }

    /// The upgrade hull of one interval of signal `c` over the modes `ok` allows, each mode costing
    /// c × power + its fixed cost.
    fn hull_at(&self, j: usize, c: f64, ok: [bool; 3]) -> Vec<(Mode, Mode, f64, f64)> {
        let r = self.rates_at(j);
        let f = self.fixed.unwrap_or([0.0; 3]);
        let pts = [
            (0.0, c * r.paused_w + f[2], Mode::Paused),
            (r.throttled_tps, c * r.throttled_w + f[1], Mode::Throttled),
            (r.full_tps, c * r.full_w + f[0], Mode::Full),
        ];
        lower_hull(pts.into_iter().filter(|p| ok[p.2 as usize]).collect())
    }

    /// Use the cost-minimising planner instead of thresholds: minimise Σ signal × power × time subject to
    /// the work left before the deadline (the LP relaxation of the multiple-choice knapsack, solved exactly
    /// by taking mode upgrades in order of cost per token).
    pub fn optimal(mut self) -> Self {
        self.optimal = true;
        self
    }

    /// The rates the planner assumes (those of every hour without hourly rates).
    pub fn rates(&self) -> &Rates {
        &self.rates
    }

    /// The rates of local hour `h` (None without hourly rates).
    pub fn hour_rates(&self, h: u32) -> Option<&Rates> {
        self.hour_rates.as_ref().map(|r| &r[h as usize % 24])
    }

    /// Rate each interval by the rates of its local hour (`hour_rates[h]` for local hour `h`): the
    /// planner then foresees an hour whose top-k differs (a time-aware router) at what it will run.
    pub fn with_hour_rates(mut self, hour_rates: [Rates; 24]) -> Self {
        self.hour_rates = Some(Box::new(hour_rates));
        self.hulls.clear();
        self
    }

    /// The rates interval `j` runs at.
    fn rates_at(&self, j: usize) -> &Rates {
        match &self.hour_rates {
            Some(h) => &h[self.local_hour.get(j).map_or(0, |&x| x as usize % 24)],
            None => &self.rates,
        }
    }

    /// Tokens per second of mode `m` in interval `j`.
    fn rate_at(&self, m: Mode, j: usize) -> f64 {
        rate_of(m, self.rates_at(j))
    }

    /// Index into `hulls` of interval `j`.
    fn hull_index(&self, j: usize) -> usize {
        match &self.hour_rates {
            Some(_) => self.local_hour.get(j).map_or(0, |&x| x as usize % 24),
            None => 0,
        }
    }

    /// The upgrades along the lower convex hull of (work rate, power) of paused → throttled → full
    /// at the policy's (hour-independent) rates.
    #[cfg(test)]
    fn hull(&self) -> Vec<Upgrade> {
        hull_of(&self.rates)
    }
}

/// The upgrades along the lower convex hull of (work rate, power) of paused → throttled → full at
/// rates `r`: (from, to, extra tokens/s, extra W). A mode that is slower and no cheaper per token is
/// skipped.
fn hull_of(r: &Rates) -> Vec<Upgrade> {
    lower_hull(vec![
        (0.0, r.paused_w, Mode::Paused),
        (r.throttled_tps, r.throttled_w, Mode::Throttled),
        (r.full_tps, r.full_w, Mode::Full),
    ])
}

impl CircadianPolicy {
    /// The optimizer's mode for interval `i`.
    fn decide_optimal(&mut self, i: usize, progress: Progress) -> Mode {
        let d = self.deadline_intervals;
        if self.hulls.is_empty() {
            self.hulls = match &self.hour_rates {
                Some(h) => h.iter().map(hull_of).collect(),
                None => vec![hull_of(&self.rates)],
            };
        }
        self.plan_start = i;
        self.steps.clear();
        self.modes.clear();
        // Without fixed costs or hints one hull per hour's rates serves every interval (cost ∝
        // signal × power); with them each interval has its own. Under advice, `fallback` holds the
        // upgrades the hints rule out, taken only when the allowed ones cannot do the work before
        // the deadline.
        let plain = self.fixed.is_none() && self.hints.is_none();
        let advice = self.hints.as_ref().is_some_and(|h| !h.1);
        let mut fallback: Vec<(f64, usize, Mode)> = Vec::new();
        for off in 0..d - i {
            let j = i + off;
            let c = self.signal[j];
            let hull = &self.hulls[self.hull_index(j)];
            self.modes.push(hull.first().map_or(Mode::Full, |h| h.0));
            if plain {
                for &(_, to, dr, dp) in hull {
                    self.steps.push((c * dp / dr, off, to));
                }
                continue;
            }
            let ok = self.allowed(j);
            for (_, to, dr, dc) in self.hull_at(j, c, ok) {
                self.steps.push((dc / dr, off, to));
            }
            if advice && ok != [true; 3] {
                for (_, to, dr, dc) in self.hull_at(j, c, [true; 3]) {
                    fallback.push((dc / dr, off, to));
                }
            }
        }
        // Cost per token, then time, then the slower mode first: deterministic and hull-ordered per interval.
        let order = |a: &(f64, usize, Mode), b: &(f64, usize, Mode)| {
            a.0.total_cmp(&b.0)
                .then(a.1.cmp(&b.1))
                .then((a.2 as u8).cmp(&(b.2 as u8)).reverse())
        };
        self.steps.sort_by(order);
        fallback.sort_by(order);
        self.steps.extend(fallback);
        // Plan the work itself in the cheapest intervals; the safety margin goes at the end (below).
        let need = progress.tokens_left;
        let mut work: f64 = (0..self.modes.len())
            .map(|off| self.rate_at(self.modes[off], i + off) * self.interval_s)
            .sum();
        for k in 0..self.steps.len() {
            if work >= need {
                break;
            }
            let (_, off, to) = self.steps[k];
            let from = self.modes[off];
            let (r_to, r_from) = (self.rate_at(to, i + off), self.rate_at(from, i + off));
            if r_to > r_from {
                work += (r_to - r_from) * self.interval_s;
                self.modes[off] = to;
            }
        }
        if work < need {
            // Infeasible: everything at the fastest mode.
            return fast_of(self.rates_at(i));
        }
        // The margin is reserved against the plan's real capacity: every resume after a pause loses its
        // checkpoint/restore time, which the per-interval costs above leave out.
        let cap = self.capacity(progress.paused);
        self.reserve_margin_at_end(need, cap);
        self.modes[0]
    }

    /// Keep the safety margin on the work (`margin` × `need`, on top of the plan's `work`) in the last
    /// intervals before the deadline, upgrading them to their fastest mode from the deadline backwards. The margin
    /// then only runs if the job falls behind its plan, and it reaches the current interval only when
    /// the deadline is tight; reserving it as an extra cheap interval instead made a one-interval job
    /// take the earlier of its two cheapest intervals and miss the cleanest.
    fn reserve_margin_at_end(&mut self, need: f64, mut work: f64) {
        let target = need * (1.0 + self.margin);
        for j in (0..self.modes.len()).rev() {
            if work >= target {
                break;
            }
            let at = self.plan_start + j;
            let fast = fast_of(self.rates_at(at));
            let (have, top) = (self.rate_at(self.modes[j], at), self.rate_at(fast, at));
            if have < top {
                work += (top - have) * self.interval_s;
                self.modes[j] = fast;
            }
        }
    }

    /// Use a forecast window of `intervals` for the thresholds instead of one week.
    pub fn with_lookahead(mut self, intervals: usize) -> Self {
        self.lookahead = intervals.max(1);
        self
    }

    fn set_thresholds(&mut self, i: usize) {
        let end = (i + self.lookahead).min(self.deadline_intervals);
        self.sorted.clear();
        self.sorted.extend_from_slice(&self.signal[i..end]);
        self.sorted.sort_by(f64::total_cmp);
        self.full_below = if self.full_share > 0.0 {
            lowest_share_bound(&self.sorted, self.full_share)
        } else {
            f64::NEG_INFINITY
        };
        self.pause_above = if self.pause_share > 0.0 {
            highest_share_bound(&self.sorted, self.pause_share)
        } else {
            f64::INFINITY
        };
        // Ties at a threshold would stretch a share (every equal hour would join it): keep the share's
        // size by taking tied intervals in time order.
        let n = self.sorted.len();
        let k = |share: f64| {
            if share > 0.0 {
                ((share * n as f64).ceil() as usize).clamp(1, n)
            } else {
                0
            }
        };
        let below = self.sorted.iter().filter(|&&v| v < self.full_below).count();
        self.full_ties = k(self.full_share).saturating_sub(below);
        let above = self
            .sorted
            .iter()
            .filter(|&&v| v > self.pause_above)
            .count();
        self.pause_ties = k(self.pause_share).saturating_sub(above);
        self.window_start = i;
        self.window_end = end;
    }

    /// Rank of interval `j` among the window's intervals of equal signal `v` (0 for the first in time).
    fn tie_rank(&self, j: usize, v: f64) -> usize {
        let end = j.min(self.window_end);
        (self.window_start..end)
            .filter(|&x| self.signal[x] == v)
            .count()
    }

    fn preferred(&self, j: usize) -> Mode {
        let s = self.signal[j];
        // A flat signal gives nothing to shift for: train at full speed rather than pause for no gain.
        if self.pause_above <= self.full_below {
            return Mode::Full;
        }
        let paused = s > self.pause_above
            || (s == self.pause_above && self.tie_rank(j, s) < self.pause_ties);
        if paused {
            return Mode::Paused;
        }
        let full =
            s < self.full_below || (s == self.full_below && self.tie_rank(j, s) < self.full_ties);
        match &self.window {
            Some(w) if w.contains(&self.local_hour[j]) => Mode::Full,
            Some(_) => Mode::Throttled,
            None if full => Mode::Full,
            None => Mode::Throttled,
        }
    }

    /// Work (tokens) the plan `self.modes` (from the current interval on) would do, minus pause overheads.
    fn capacity(&self, paused_now: bool) -> f64 {
        let mut tokens = 0.0;
        let mut prev_paused = paused_now;
        for (off, &m) in self.modes.iter().enumerate() {
            let r = self.rates_at(self.plan_start + off);
            let mut t = self.interval_s;
            if m != Mode::Paused && prev_paused {
                t -= r.pause_overhead_s.min(t);
            }
            tokens += rate_of(m, r) * t;
            prev_paused = m == Mode::Paused;
        }
        tokens
    }

    /// Mode for interval `i`: the preferred plan for the rest of the window, upgraded to full speed in the
    /// cleanest intervals until the work left fits before the deadline.
    pub fn decide(&mut self, i: usize, progress: Progress) -> Mode {
        if i >= self.deadline_intervals {
            return self.obey(i, Mode::Full);
        }
        if self.optimal {
            let m = self.decide_optimal(i, progress);
            return self.obey(i, m);
        }
        let d = self.deadline_intervals;
        self.set_thresholds(i);
        self.plan_start = i;
        self.modes.clear();
        for j in i..d {
            let m = self.preferred(j);
            self.modes.push(m);
        }
        // The work itself goes to the cleanest intervals; the safety margin to the last ones (below).
        let need = progress.tokens_left;
        if self.capacity(progress.paused) < need {
            self.order.clear();
            self.order.extend(0..self.modes.len());
            let sig = &self.signal[i..d];
            self.order
                .sort_by(|&a, &b| sig[a].total_cmp(&sig[b]).then(a.cmp(&b)));
            // Upgrade the cleanest intervals first, tracking capacity incrementally (pause overheads aside)
            // and checking exactly when the estimate says enough.
            let mut cap = self.capacity(progress.paused);
            // Upgrade to the faster of full and throttled (a lower top-k can make throttled the faster one).
            for k in 0..self.order.len() {
                let j = self.order[k];
                let fast = fast_of(self.rates_at(i + j));
                let (have, top) = (
                    self.rate_at(self.modes[j], i + j),
                    self.rate_at(fast, i + j),
                );
                if have < top {
                    cap += (top - have) * self.interval_s;
                    self.modes[j] = fast;
                    if cap >= need {
                        cap = self.capacity(progress.paused);
                        if cap >= need {
                            break;
                        }
                    }
                }
            }
        }
        let cap = self.capacity(progress.paused);
        if cap >= need {
            self.reserve_margin_at_end(need, cap);
        }
        self.modes[0]
    }
}

#[cfg(test)]
mod tests_window;

#[cfg(test)]
mod tests {
    use super::*;

    fn rates() -> Rates {
        Rates {
            full_tps: 1.0,
            throttled_tps: 0.5,
            pause_overhead_s: 0.0,
            full_w: 1000.0,
            throttled_w: 450.0,
            paused_w: 0.0,
        }
    }

    /// Carbon of a plan: Σ signal × power over the intervals it trains in, and the tokens it trains.
    fn plan_cost(p: &mut CircadianPolicy, sig: &[f64], tokens: f64) -> (f64, f64) {
        let r = rates();
        let (mut cost, mut left) = (0.0, tokens);
        for (i, &c) in sig.iter().enumerate() {
            if left <= 0.0 {
                break;
            }
            let m = p.decide(
                i,
                Progress {
                    tokens_left: left,
                    paused: false,
                },
            );
            let (tps, w) = match m {
                Mode::Full => (r.full_tps, r.full_w),
                Mode::Throttled => (r.throttled_tps, r.throttled_w),
                Mode::Paused => (0.0, r.paused_w),
            };
            cost += c * w;
            left -= tps;
        }
        (cost, left)
    }

    #[test]
    fn with_a_perfect_forecast_the_optimizer_is_never_worse_than_thresholds() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        for _ in 0..40 {
            let n = 96;
            let sig: Vec<f64> = (0..n)
                .map(|h| 200.0 + 150.0 * ((h as f64) * 0.26).sin() + rng.gen_range(0.0..80.0))
                .collect();
            let hours: Vec<u32> = (0..n).map(|h| (h % 24) as u32).collect();
            let tokens = rng.gen_range(10.0..80.0);
            let mut thr =
                CircadianPolicy::new(sig.clone(), hours.clone(), 1.0, n, 0.3, 0.2, None, rates())
                    .with_lookahead(48);
            let mut opt =
                CircadianPolicy::new(sig.clone(), hours, 1.0, n, 0.3, 0.2, None, rates()).optimal();
            let (c_thr, left_thr) = plan_cost(&mut thr, &sig, tokens);
            let (c_opt, left_opt) = plan_cost(&mut opt, &sig, tokens);
            assert!(
                left_opt <= 0.0 && left_thr <= 0.0,
                "both meet the deadline: {left_opt} {left_thr}"
            );
            assert!(
                c_opt <= c_thr * 1.0001,
                "optimizer {c_opt} vs thresholds {c_thr} for {tokens} tokens"
            );
        }
    }

    #[test]
    fn the_optimizer_skips_a_mode_that_is_dominated() {
        // Throttled faster and cheaper per token than full: full is never chosen.
        let r = Rates {
            full_tps: 1.0,
            throttled_tps: 1.2,
            pause_overhead_s: 0.0,
            full_w: 1000.0,
            throttled_w: 900.0,
            paused_w: 0.0,
        };
        let mut p = CircadianPolicy::new(
            vec![100.0; 24],
            (0..24).collect(),
            1.0,
            24,
            0.3,
            0.3,
            None,
            r,
        )
        .optimal();
        assert_eq!(p.hull().len(), 1);
        assert_eq!(
            p.decide(
                0,
                Progress {
                    tokens_left: 20.0,
                    paused: false
                }
            ),
            Mode::Throttled
        );
    }

    fn day_signal() -> (Vec<f64>, Vec<u32>) {
        let sig: Vec<f64> = (0..240)
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
        let hours = (0..240).map(|h| (h % 24) as u32).collect();
        (sig, hours)
    }

    #[test]
    fn thresholds_follow_the_coming_week_not_the_whole_season() {
        // Ten days of a daily cycle, then a much dirtier season: a percentile over the whole window
        // would put every pause in the dirty season; the coming week's dirty evenings must still pause.
        let days = 60;
        let sig: Vec<f64> = (0..days * 24)
            .map(|h| {
                if h >= 240 {
                    2000.0
                } else if h % 24 < 6 {
                    100.0
                } else if h % 24 > 17 {
                    500.0
                } else {
                    300.0
                }
            })
            .collect();
        let hours = (0..days * 24).map(|h| (h % 24) as u32).collect();
        let mut p = CircadianPolicy::new(sig, hours, 3600.0, days * 24, 0.25, 0.25, None, rates());
        let prog = Progress {
            tokens_left: 1.0,
            paused: false,
        };
        assert_eq!(p.decide(20, prog), Mode::Paused);
        assert_eq!(p.decide(26, prog), Mode::Full);
        assert_eq!(p.decide(36, prog), Mode::Throttled);
    }

    #[test]
    fn clean_hours_run_full_and_dirty_hours_pause_when_time_allows() {
        let (sig, hours) = day_signal();
        let mut p = CircadianPolicy::new(sig, hours, 1.0, 240, 0.25, 0.25, None, rates())
            .with_lookahead(48);
        let prog = Progress {
            tokens_left: 5.0,
            paused: false,
        };
        assert_eq!(p.decide(26, prog), Mode::Full);
        assert_eq!(p.decide(36, prog), Mode::Throttled);
        assert_eq!(p.decide(44, prog), Mode::Paused);
    }

    #[test]
    fn a_tight_deadline_upgrades_dirty_hours_to_full() {
        let (sig, hours) = day_signal();
        let mut p = CircadianPolicy::new(sig, hours, 1.0, 240, 0.25, 0.25, None, rates())
            .with_lookahead(48);
        // 230 tokens in 239 intervals at 1 token/s: nearly every interval must run full, the dirtiest too.
        let prog = Progress {
            tokens_left: 230.0,
            paused: false,
        };
        assert_eq!(p.decide(1, prog), Mode::Full);
        assert_eq!(
            p.decide(
                20,
                Progress {
                    tokens_left: 215.0,
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
            CircadianPolicy::new(sig, hours, 1.0, 240, 0.25, 0.0, Some(vec![12, 13]), rates())
                .with_lookahead(48);
        let prog = Progress {
            tokens_left: 1.0,
            paused: false,
        };
        assert_eq!(p.decide(12, prog), Mode::Full);
        assert_eq!(p.decide(2, prog), Mode::Throttled);
    }
}
