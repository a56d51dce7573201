//! The follow-the-night planner: which site trains in each grid interval, against the deadline.
//!
//! `dp`: the least-CO2 plan that finishes by the deadline is a constrained shortest path (progress
//! must reach the target); it is relaxed with a Lagrange price μ on progress. For one μ, dynamic
//! programming over (interval, site) minimises Σ CO2 − μ·progress over the deadline's intervals,
//! a move p→s costing its CO2 (both sites' held power for the transfer, the WAN's bytes × J/B) and
//! the progress lost while it runs. μ = 0 follows the cleanest grid regardless of speed; a large μ
//! stays at the fastest site. The planner tries μ = 0 and a geometric ladder up to twice the
//! dirtiest CO2 per token, carries each plan out, and keeps the least-CO2 one that meets the
//! deadline. `greedy`: each interval, move to the site of least CO2 per token when the interval's
//! saving there exceeds the move's CO2. Either way the single-site plans are candidates too, so
//! the chosen plan never emits more than the best single site that meets the deadline — on the series
//! it planned on: each site's `[site.cost.forecast]` where given, else the real series (perfect
//! foresight; the report says which). The plan is then carried out on the real series. With
//! `multisite.objective = "cost"` every "CO2" above is the cost: electricity, levy and carbon price per
//! MWh, and the compute-hour tax per GPU-second held. A plan that misses the deadline
//! is repaired by switching intervals to faster sites, least extra CO2 per extra token first.

use super::exec::{execute, SiteRun};
use super::Inputs;
use crate::scenario::sites::{SiteObjective, SitePlanner};
use crate::sim::SimError;

/// Rungs of the μ ladder below its top (each halves μ).
const MU_RUNGS: i32 = 40;

/// What the objective counts (CO2 [kg] or cost [currency]) and progress [tokens] of a full interval
/// `i` of training at site `s`.
fn interval(inp: &Inputs, i: usize, s: usize) -> (f64, f64) {
    let m = &inp.sites[s];
    (
        m.signal(&m.train, i, inp.interval_s, inp.spec.objective),
        m.rate() * inp.interval_s,
    )
}

/// A move p→s at the start of interval `i`: (transfer time [s], what the objective counts of the held
/// power and the WAN); None if the sites have no link or the transfer does not fit in the interval.
pub(super) fn move_cost(inp: &Inputs, i: usize, p: usize, s: usize) -> Option<(f64, f64)> {
    let link = inp.spec.link(p, s)?;
    let tau = link.transfer_s(inp.checkpoint_bytes);
    if tau >= inp.interval_s {
        return None;
    }
    let (a, b) = (&inp.sites[p], &inp.sites[s]);
    let obj = inp.spec.objective;
    let wan = inp.wan_signal(&[p, s], i, link.transfer_j(inp.checkpoint_bytes));
    Some((
        tau,
        a.signal(&a.held, i, tau, obj) + b.signal(&b.held, i, tau, obj) + wan,
    ))
}

/// The site of each interval over `n` intervals minimising Σ CO2 − μ·progress (moves included).
pub(super) fn dp_plan(inp: &Inputs, mu: f64, n: usize) -> Vec<usize> {
    let k = inp.sites.len();
    let dt = inp.interval_s;
    let mut cost: Vec<f64> = (0..k)
        .map(|s| {
            let (c, p) = interval(inp, 0, s);
            c - mu * p
        })
        .collect();
    let mut back: Vec<Vec<usize>> = Vec::with_capacity(n);
    back.push((0..k).collect());
    let mut next = vec![0.0; k];
    for i in 1..n {
        let mut from = vec![0; k];
        for s in 0..k {
            let (c, p) = interval(inp, i, s);
            let mut best = (cost[s] + c - mu * p, s);
            for q in (0..k).filter(|&q| q != s) {
                let Some((tau, mv)) = move_cost(inp, i, q, s) else {
                    continue;
                };
                let left = (dt - tau) / dt;
                let v = cost[q] + mv + (c - mu * p) * left;
                // Ties keep the lower site index: deterministic plans.
                if v < best.0 || (v == best.0 && q < best.1) {
                    best = (v, q);
                }
            }
            next[s] = best.0;
            from[s] = best.1;
        }
        std::mem::swap(&mut cost, &mut next);
        back.push(from);
    }
    let mut s = (0..k)
        .min_by(|&a, &b| cost[a].total_cmp(&cost[b]))
        .unwrap_or(0);
    let mut plan = vec![0; n];
    for i in (0..n).rev() {
        plan[i] = s;
        s = back[i][s];
    }
    plan
}

/// Each interval, the site of least CO2 per token, moving there only when the interval's saving
/// exceeds the move's CO2 (and the move fits in the interval).
pub(super) fn greedy_plan(inp: &Inputs, n: usize) -> Vec<usize> {
    let k = inp.sites.len();
    let per_token = |i: usize, s: usize| {
        let (c, p) = interval(inp, i, s);
        c / p
    };
    let mut plan = Vec::with_capacity(n);
    let mut here: Option<usize> = None;
    for i in 0..n {
        let best = (0..k)
            .min_by(|&a, &b| per_token(i, a).total_cmp(&per_token(i, b)))
            .unwrap_or(0);
        let s = match here {
            None => best,
            Some(h) if h == best => h,
            Some(h) => {
                let (_, p) = interval(inp, i, best);
                let saving = (per_token(i, h) - per_token(i, best)) * p;
                match move_cost(inp, i, h, best) {
                    Some((_, mv)) if saving > mv => best,
                    _ => h,
                }
            }
        };
        plan.push(s);
        here = Some(s);
    }
    plan
}

/// `plan` made to meet the deadline where it misses it: within the deadline's first `n` intervals,
/// intervals are switched to a faster site in order of least extra CO2 per extra token (a fractional
/// knapsack's order), each switch carried out, until the plan finishes by the deadline (or no
/// switch is left). The Lagrangian DP cannot mix sites whose intervals cost the same (every interval
/// goes to one side of μ); this fills that gap.
fn repair(inp: &Inputs, plan: Vec<usize>, n: usize) -> Result<Vec<usize>, SimError> {
    let mut plan = plan;
    if execute(inp, &plan, "")?.deadline_met {
        return Ok(plan);
    }
    let mut upgrades: Vec<(f64, usize, usize)> = Vec::new();
    for (i, &here) in plan.iter().enumerate().take(n) {
        let (c0, p0) = interval(inp, i, here);
        let best = (0..inp.sites.len())
            .filter_map(|s| {
                let (c, p) = interval(inp, i, s);
                (p > p0).then(|| ((c - c0) / (p - p0), s))
            })
            .min_by(|a, b| a.0.total_cmp(&b.0));
        if let Some((ratio, s)) = best {
            upgrades.push((ratio, i, s));
        }
    }
    // Cheapest first; ties broken by interval, then site: deterministic.
    upgrades.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    for (_, i, s) in upgrades {
        plan[i] = s;
        if execute(inp, &plan, "")?.deadline_met {
            break;
        }
    }
    Ok(plan)
}

/// The plan over the whole series: `head` for the deadline's intervals, then its last site.
fn extend(mut head: Vec<usize>, len: usize) -> Vec<usize> {
    let last = head.last().copied().unwrap_or(0);
    head.resize(len.max(head.len()), last);
    head
}

/// Whether `a` is a better outcome than `b`: meets the deadline when `b` does not, else less CO2 (or
/// cost, by `objective`; among runs that both miss it, the earlier finish).
fn better(a: &SiteRun, b: &SiteRun, objective: SiteObjective) -> bool {
    match (a.deadline_met, b.deadline_met) {
        (true, false) => true,
        (false, true) => false,
        (true, true) => a.score(objective) < b.score(objective),
        (false, false) => {
            a.wall_s.total_cmp(&b.wall_s).is_lt() || b.wall_s.is_nan() && !a.wall_s.is_nan()
        }
    }
}

/// Follow the night: the plan made on the planner's view of the grids (each site's forecast where it
/// has one) carried out on the real series (see the module comment).
pub(super) fn follow_the_night(inp: &Inputs) -> Result<SiteRun, SimError> {
    let view = inp.planner_view();
    let plan = choose(view.as_ref().unwrap_or(inp))?;
    execute(inp, &plan, "follow_the_night")
}

/// The planner's plan on `inp` (the candidates carried out on `inp`, the best kept).
fn choose(inp: &Inputs) -> Result<Vec<usize>, SimError> {
    let len = inp.sites.iter().map(|m| m.ci.len()).min().unwrap_or(0);
    let n = ((inp.spec.deadline_s / inp.interval_s).ceil() as usize).clamp(1, len.max(1));
    let mut plans: Vec<Vec<usize>> = (0..inp.sites.len()).map(|k| vec![k; len]).collect();
    match inp.spec.planner {
        SitePlanner::Dp => {
            let top = (0..n)
                .flat_map(|i| (0..inp.sites.len()).map(move |s| (i, s)))
                .map(|(i, s)| {
                    let (c, p) = interval(inp, i, s);
                    c / p
                })
                .fold(0.0, f64::max)
                * 2.0;
            plans.push(repair(inp, extend(dp_plan(inp, 0.0, n), len), n)?);
            for r in 0..=MU_RUNGS {
                plans.push(extend(dp_plan(inp, top * 0.5f64.powi(r), n), len));
            }
        }
        SitePlanner::Greedy => plans.push(repair(inp, extend(greedy_plan(inp, n), len), n)?),
    }
    let mut best: Option<(SiteRun, usize)> = None;
    for (k, p) in plans.iter().enumerate() {
        let r = execute(inp, p, "follow_the_night")?;
        if best
            .as_ref()
            .is_none_or(|(b, _)| better(&r, b, inp.spec.objective))
        {
            best = Some((r, k));
        }
    }
    let (_, k) = best.ok_or(SimError::Missing {
        strategy: "follow_the_night",
        what: "at least one site",
    })?;
    Ok(plans.swap_remove(k))
}
