//! Geo-distributed data parallel: replicas at every active site, synchronised over the WAN every H
//! steps (DiLoCo-style local steps), the set of active sites chosen interval by interval from their grids.
//!
//! A round is H local steps at each active site (in parallel) and a ring all-reduce of the weights'
//! update among them over the WAN; a site that finishes its H steps first holds its nodes until the
//! all-reduce ends. Rounds are metered as a steady rate within an interval (a round is minutes long,
//! an interval an hour). A site that joins receives the current weights from the lowest-numbered
//! site that was active (its own optimizer state stays at the site). Planner: a site takes part in
//! an interval when its CO2 per token there is at most a threshold (the cleanest site at least, so
//! the job never pauses); every threshold the series offers is tried (and "all sites always"), and
//! the least-CO2 plan that meets the deadline kept.

use super::exec::SiteRun;
use super::Inputs;
use crate::network::wan::{ring_all_reduce, WanLink};
use crate::sim::meter::{Meter, Power, Totals};
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
    let mut meters: Vec<Meter> = inp.sites.iter().map(|m| Meter::new(m.pue[0])).collect();
    let mut run = SiteRun {
        name: name.to_string(),
        sites: Totals::default(),
        wan_j: 0.0,
        wan_co2_kg: 0.0,
        wan_cost: 0.0,
        wall_s: f64::NAN,
        tokens: 0.0,
        effective_tokens: 0.0,
        moves: 0,
        trained_s: vec![0.0; k],
        gpu_hours: 0.0,
        deadline_met: false,
        plan: Vec::new(),
        loss: None,
    };
    let mut progress = 0.0;
    // WAN synchronisations (rounds with two or more sites).
    let mut syncs = 0.0;
    let mut end_s = f64::NAN;
    let mut prev_set: Vec<usize> = Vec::new();
    let len = active
        .len()
        .min(inp.sites.iter().map(|m| m.ci.len()).min().unwrap_or(0));
    for (i, &bits) in active.iter().enumerate().take(len) {
        let t0 = i as f64 * dt;
        for (s, m) in meters.iter_mut().enumerate() {
            m.new_interval(
                t0,
                inp.sites[s].ci[i],
                inp.sites[s].price[i],
                inp.sites[s].pue[i],
            );
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
                let j = link.transfer_j(inp.sync_bytes);
                let (a, b) = (&inp.sites[src], &inp.sites[s]);
                run.wan_j += j;
                run.wan_co2_kg += j / 3.6e6 * 0.5 * (a.ci[i] + b.ci[i]) / 1000.0;
                run.wan_cost += j / 3.6e9 * 0.5 * (a.price[i] + b.price[i]);
                meters[s].set_power(t0, b.held);
                join_until[s] = t0 + tau;
                run.gpu_hours += b.gpus * tau / 3600.0;
            }
        }
        // Every active site starts the interval's rounds once the last joiner has the weights; until
        // then the others hold their nodes too (a round needs all of them).
        let start = set.iter().map(|&s| join_until[s]).fold(t0, f64::max);
        if start > t0 {
            for &s in set.iter().filter(|&&s| join_until[s] == t0) {
                let m = &inp.sites[s];
                meters[s].set_power(t0, m.held);
                run.gpu_hours += m.gpus * (start - t0) / 3600.0;
            }
        }
        let (round_s, prog, tokens, eff, sync_j, _) = round(inp, &set)?;
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
            meters[s].set_power(start, mix(&m.train, busy, &m.held));
            meters[s].set_power(stop, Power::default());
            run.trained_s[s] += span * busy;
            run.gpu_hours += m.gpus * span / 3600.0;
        }
        let n_rounds = span / round_s;
        if set.len() > 1 {
            syncs += n_rounds;
        }
        progress += prog * n_rounds;
        run.tokens += tokens * n_rounds;
        run.effective_tokens += eff * n_rounds;
        let j = sync_j * n_rounds;
        let mean_ci = set.iter().map(|&s| inp.sites[s].ci[i]).sum::<f64>() / set.len() as f64;
        let mean_price = set.iter().map(|&s| inp.sites[s].price[i]).sum::<f64>() / set.len() as f64;
        run.wan_j += j;
        run.wan_co2_kg += j / 3.6e6 * mean_ci / 1000.0;
        run.wan_cost += j / 3.6e9 * mean_price;
        prev_set = set;
        if start + need_s <= t0 + dt {
            end_s = stop;
            break;
        }
    }
    super::exec::close_meters(&mut meters, end_s, len as f64 * dt, &mut run);
    run.moves = syncs.floor() as u64;
    run.deadline_met = end_s.is_finite() && end_s <= inp.spec.deadline_s + 1e-6;
    Ok(run)
}

/// Geo-distributed data parallel with the threshold planner (see the module comment).
pub(super) fn geo_distributed(inp: &Inputs) -> Result<SiteRun, SimError> {
    let k = inp.sites.len();
    let len = inp.sites.iter().map(|m| m.ci.len()).min().unwrap_or(0);
    let n = ((inp.spec.deadline_s / inp.interval_s).ceil() as usize).clamp(1, len.max(1));
    let per_token = |i: usize, s: usize| {
        let m = &inp.sites[s];
        m.co2_kg(&m.train, i, inp.interval_s) / (m.rate() * inp.interval_s)
    };
    let all: u64 = (1u64 << k) - 1;
    let mut thresholds: Vec<f64> = (0..n)
        .flat_map(|i| (0..k).map(move |s| (i, s)))
        .map(|(i, s)| per_token(i, s))
        .collect();
    thresholds.sort_by(f64::total_cmp);
    thresholds.dedup();
    let mut best = execute(inp, &vec![all; len], "geo_dp")?;
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
            (true, true) => r.co2_kg() < best.co2_kg(),
            _ => false,
        };
        if wins {
            best = r;
        }
    }
    Ok(best)
}
