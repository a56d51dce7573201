//! Geo-distributed data parallel: replicas at every active site, synchronised over the WAN every H
//! steps (DiLoCo-style local steps), the set of active sites chosen interval by interval from their grids.
//!
//! A round is H local steps at each active site (in parallel) and a ring all-reduce of the weights'
//! update among them over the WAN; a site that finishes its H steps first holds its nodes until the
//! all-reduce ends. Rounds are metered as a steady rate within an interval (a round is minutes long,
//! an interval an hour). A site that joins receives the current weights from the lowest-numbered
//! site that was active (its own optimizer state stays at the site). Planner: a site takes part in
//! an interval when its CO2 (or, for `multisite.objective = "cost"`, its cost) per token there is at
//! most a threshold (the cleanest site at least, so the job never pauses); every threshold the series
//! offers is tried (and "all sites always"), and the least-CO2 (least-cost) plan that meets the
//! deadline kept. It plans on each site's `[site.cost.forecast]` where given (the real series
//! otherwise: perfect foresight) and is charged on the real series. The quality cost of
//! synchronising every H steps (`quality::diloco`) is charged in tokens: a round of M sites counts
//! its tokens at the worth that reaches the synchronous loss despite M's penalty, so the job trains
//! until it matches the single-site loss (as the single-site strategies train to equal loss), and
//! the planner, which keeps the plan of least executed CO2 (cost), weighs those extra tokens against
//! the cleaner grids more sites reach. Its per-token thresholds themselves do not include it.

use super::exec::SiteRun;
use super::meters::SiteMeters;
use super::Inputs;
use crate::network::wan::{ring_all_reduce, WanLink};
use crate::sim::meter::Power;
use crate::sim::SimError;

/// `a` for share `wa` of the time and `b` for the rest.
fn mix(a: &Power, wa: f64, b: &Power) -> Power {
    let wb = 1.0 - wa;
    Power {
        gpu_w: a.gpu_w * wa + b.gpu_w * wb,
        waiting_w: a.waiting_w * wa + b.waiting_w * wb,
        node_w: a.node_w * wa + b.node_w * wb,
        network_w: a.network_w * wa + b.network_w * wb,
    }
}

/// One round of the active sites `set` (site indices, ascending): (round time [s], progress,
/// tokens, effective tokens, WAN energy [J] of its all-reduce, all-reduce time [s]).
fn round(inp: &Inputs, set: &[usize]) -> Result<(f64, f64, f64, f64, f64, f64), SimError> {
    let h = inp.spec.sync_every_steps as f64;
    let compute = set
        .iter()
        .map(|&s| h * inp.sites[s].step_s)
        .fold(0.0, f64::max);
    let hops: Vec<&WanLink> = if set.len() < 2 {
        Vec::new()
    } else {
        (0..set.len())
            .map(|j| {
                inp.spec
                    .link(set[j], set[(j + 1) % set.len()])
                    .ok_or(SimError::Missing {
                        strategy: "geo_dp",
                        what: "a WAN link between every pair of sites",
                    })
            })
            .collect::<Result<_, _>>()?
    };
    let (sync_s, sync_j) = ring_all_reduce(&hops, inp.sync_bytes);
    let sum = |f: &dyn Fn(usize) -> f64| set.iter().map(|&s| h * f(s)).sum::<f64>();
    Ok((
        compute + sync_s,
        sum(&|s| inp.sites[s].progress_per_step),
        sum(&|s| inp.sites[s].tokens_per_step),
        sum(&|s| inp.sites[s].effective_per_step),
        sync_j,
        sync_s,
    ))
}

/// Carry out `active` (per interval, a bit per site: 1 takes part) until the target is reached.
pub(super) fn execute(inp: &Inputs, active: &[u64], name: &str) -> Result<SiteRun, SimError> {
    let k = inp.sites.len();
    let dt = inp.interval_s;
    let h = inp.spec.sync_every_steps as f64;
    let mut meters = SiteMeters::new(inp);
    let mut run = SiteRun::new(name, k);
    let mut progress = 0.0;
    // Σ effective tokens × the sync penalty of the round's site count (for the tokens-weighted mean).
    let mut penalised = 0.0;
    // WAN synchronisations (rounds with two or more sites).
    let mut syncs = 0.0;
    let mut end_s = f64::NAN;
    let mut prev_set: Vec<usize> = Vec::new();
    let len = active
        .len()
        .min(inp.sites.iter().map(|m| m.ci.len()).min().unwrap_or(0));
    for (i, &bits) in active.iter().enumerate().take(len) {
        let t0 = i as f64 * dt;
        meters.start_interval(inp, i, t0, &mut run);
        for m in meters.m.iter_mut() {
            m.set_power(t0, Power::default());
        }
        let set: Vec<usize> = (0..k).filter(|s| bits >> s & 1 == 1).collect();
        if set.is_empty() {
            prev_set.clear();
            continue;
        }
        // Joiners receive the weights from the lowest-numbered site active before (over the WAN).
        let mut join_until = vec![t0; k];
        if let Some(&src) = prev_set.first() {
            for &s in set.iter().filter(|s| !prev_set.contains(s)) {
                let link = inp.spec.link(src, s).ok_or(SimError::Missing {
                    strategy: "geo_dp",
                    what: "a WAN link between every pair of sites",
                })?;
                let tau = link.transfer_s(inp.sync_bytes).min(dt);
                run.wan(inp, &[src, s], i, link.transfer_j(inp.sync_bytes));
                let b = &inp.sites[s];
                meters.m[s].set_power(t0, b.held);
                join_until[s] = t0 + tau;
                run.hold(s, b.gpus, tau);
            }
        }
        // Every active site starts the interval's rounds once the last joiner has the weights; until
        // then the others hold their nodes too (a round needs all of them).
        let start = set.iter().map(|&s| join_until[s]).fold(t0, f64::max);
        if start > t0 {
            for &s in set.iter().filter(|&&s| join_until[s] == t0) {
                let m = &inp.sites[s];
                meters.m[s].set_power(t0, m.held);
                run.hold(s, m.gpus, start - t0);
            }
        }
        let (round_s, prog, tokens, eff, sync_j, _) = round(inp, &set)?;
        // Equal quality: the round's progress at its sync penalty's worth (`Inputs::sync_worth`).
        let prog = prog * inp.sync_worth.get(set.len()).copied().unwrap_or(1.0);
        let need_s = (inp.target - progress) / prog * round_s;
        let stop = if start + need_s <= t0 + dt {
            start + need_s
        } else {
            t0 + dt
        };
        let span = (stop - start).max(0.0);
        for &s in &set {
            let m = &inp.sites[s];
            let busy = (h * m.step_s / round_s).min(1.0);
            meters.m[s].set_power(start, mix(&m.train, busy, &m.held));
            meters.m[s].set_power(stop, Power::default());
            run.trained_s[s] += span * busy;
            run.hold(s, m.gpus, span);
        }
        let n_rounds = span / round_s;
        if set.len() > 1 {
            syncs += n_rounds;
        }
        progress += prog * n_rounds;
        run.tokens += tokens * n_rounds;
        run.effective_tokens += eff * n_rounds;
        penalised += eff * n_rounds * inp.sync_penalty.get(set.len()).copied().unwrap_or(0.0);
        if sync_j > 0.0 {
            run.wan(inp, &set, i, sync_j * n_rounds);
        }
        prev_set = set;
        if start + need_s <= t0 + dt {
            end_s = stop;
            break;
        }
    }
    meters.close(inp, end_s, len as f64 * dt, &mut run);
    if run.effective_tokens > 0.0 {
        run.sync_penalty = penalised / run.effective_tokens;
    }
    run.moves = syncs.floor() as u64;
    run.deadline_met = end_s.is_finite() && end_s <= inp.spec.deadline_s + 1e-6;
    Ok(run)
}

/// Geo-distributed data parallel with the threshold planner (see the module comment): planned on the
/// planner's view of the grids (each site's forecast where it has one), carried out on the real series.
pub(super) fn geo_distributed(inp: &Inputs) -> Result<SiteRun, SimError> {
    let view = inp.planner_view();
    let pv = view.as_ref().unwrap_or(inp);
    let plan = plan(pv)?;
    execute(inp, &plan, "geo_dp")
}

/// The threshold planner's choice on `inp`: the active sites of each interval.
fn plan(inp: &Inputs) -> Result<Vec<u64>, SimError> {
    let k = inp.sites.len();
    let obj = inp.spec.objective;
    let len = inp.sites.iter().map(|m| m.ci.len()).min().unwrap_or(0);
    let n = ((inp.spec.deadline_s / inp.interval_s).ceil() as usize).clamp(1, len.max(1));
    let per_token = |i: usize, s: usize| {
        let m = &inp.sites[s];
        m.signal(&m.train, i, inp.interval_s, obj) / (m.rate() * inp.interval_s)
    };
    let all: u64 = (1u64 << k) - 1;
    let mut thresholds: Vec<f64> = (0..n)
        .flat_map(|i| (0..k).map(move |s| (i, s)))
        .map(|(i, s)| per_token(i, s))
        .collect();
    thresholds.sort_by(f64::total_cmp);
    thresholds.dedup();
    let mut best_plan = vec![all; len];
    let mut best = execute(inp, &best_plan, "geo_dp")?;
    for mu in thresholds {
        let plan: Vec<u64> = (0..len)
            .map(|i| {
                if i >= n {
                    // After the deadline's window every site helps finish.
                    return all;
                }
                let bits = (0..k)
                    .filter(|&s| per_token(i, s) <= mu)
                    .fold(0u64, |b, s| b | 1 << s);
                // The job never stops (as following the night never does): with no site under the
                // threshold, the cleanest trains alone. Pausing is the circadian strategy's lever,
                // not a geographic one, and would muddle the comparison.
                if bits == 0 {
                    let best = (0..k)
                        .min_by(|&a, &b| per_token(i, a).total_cmp(&per_token(i, b)))
                        .unwrap_or(0);
                    1 << best
                } else {
                    bits
                }
            })
            .collect();
        let r = execute(inp, &plan, "geo_dp")?;
        let wins = match (r.deadline_met, best.deadline_met) {
            (true, false) => true,
            (true, true) => r.score(obj) < best.score(obj),
            _ => false,
        };
        if wins {
            best = r;
            best_plan = plan;
        }
    }
    Ok(best_plan)
}
