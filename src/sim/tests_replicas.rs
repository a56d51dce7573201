//! Circadian gradient accumulation (`throttle_replica_fraction`) and the planner's per-hour rates: the
//! same global batch on fewer replicas, priced by the step model at that plan; the planner rating it
//! (and a top-k that follows the hour) with the run's own functions.

use super::plan::{self, Mechanisms};
use super::test_setup::{plan_inputs, strategy_of};
use super::*;
use crate::scenario::Cluster;
use crate::strategy::{Mode, Policy, Rates};

/// The default scenario (2 replicas of an 8-way expert-parallel group) with `edits`, on 6e9 tokens
/// (about 1400 steps: small enough for a debug-build test).
fn scenario(edits: &[(&str, &str)]) -> Scenario {
    let mut e = vec![("tokens = 1.2e11", "tokens = 6.0e9")];
    e.extend_from_slice(edits);
    super::test_setup::shipped_scenario("seed_comparison.toml", &e)
}

/// Throttled on half the replicas at the full top-k and the cluster's power cap: only the replica
/// count changes.
const HALF: [(&str, &str); 3] = [
    ("throttle_top_k = 1 ", "throttle_top_k = 2 "),
    ("throttle_power_cap_w = 500 ", "# "),
    (
        "throttle_batch_fraction = 1.0",
        "throttle_replica_fraction = 0.5",
    ),
];

/// The circadian plan of `s` (all mechanisms on) with the run's setup, as `run_variant` builds it.
fn circadian_plan(s: &Scenario) -> (plan::Plan, StepModel, Option<Router>) {
    let prepared = prepare(s).unwrap();
    let job = s.moe.as_ref().unwrap();
    let (sm, router) = models_for(s, job, &prepared.trace, 1).unwrap();
    let setup = RunSetup::of_cluster(s, &sm, 1e9, true);
    let inputs = plan_inputs(&setup, &prepared);
    let p = plan::plan_for(
        s,
        StrategyKind::Circadian,
        &sm,
        &router,
        &inputs,
        Mechanisms::ALL,
    )
    .unwrap();
    (p, sm, router)
}

fn rates(p: &plan::Plan) -> Rates {
    match &p.policy {
        Policy::Circadian(c) => *c.rates(),
        _ => panic!("circadian plan expected"),
    }
}

fn mean_shares(sm: &StepModel, router: &Option<Router>, k: u32) -> Vec<f64> {
    router
        .as_ref()
        .map(|r| r.mean_shares(16, sm.assignments_per_layer(k)))
        .unwrap_or_default()
}

#[test]
fn fewer_replicas_keep_the_global_batch_and_take_longer_at_lower_power() {
    let s = scenario(&HALF);
    let (mut p, mut sm, router) = circadian_plan(&s);
    let r = p.replicas.as_mut().expect("half the replicas");
    assert_eq!(r.idle_gpus, 8.0);
    let shares = mean_shares(&sm, &router, 2);
    let full = sm.step(&shares, p.full);
    assert_eq!(p.throttled.micro_batches, 2 * p.full.micro_batches);
    let thr = r.step(&shares, p.throttled).unwrap();
    // Same global batch, same assignments: a token is worth the same (loss per token unchanged).
    assert_eq!(thr.tokens, full.tokens);
    assert_eq!(thr.assignments, full.assignments);
    let k = p.full.top_k;
    assert_eq!(
        plan::effective_share(&thr, p.throttled.top_k, k),
        plan::effective_share(&full, k, k)
    );
    // Half the replicas: the step takes longer, the job's GPUs draw less.
    assert!(
        thr.time_s > 1.5 * full.time_s && thr.time_s < 2.5 * full.time_s,
        "{} vs {}",
        thr.time_s,
        full.time_s
    );
    let (w_thr, w_full) = (
        thr.gpu_energy_j / thr.time_s,
        full.gpu_energy_j / full.time_s,
    );
    assert!(w_thr < 0.8 * w_full, "{w_thr} W vs {w_full} W");
    // The step is the step model's at the narrower plan (8 GPUs, dp 8), plus the idle GPUs.
    let job = s.moe.as_ref().unwrap();
    let narrow_job = Job {
        plan: crate::workload::ParallelPlan {
            dp: 8,
            ..job.plan.clone()
        },
        ..job.clone()
    };
    let narrow_cluster = Cluster {
        gpus: 8,
        ..s.cluster.clone()
    };
    let mut narrow = StepModel::new(&narrow_job, &narrow_cluster).unwrap();
    narrow.set_routing(
        s.routing.choice,
        s.routing.placement,
        s.routing.rebalance_every_steps,
        &shares,
    );
    let direct = narrow.step(&shares, p.throttled);
    assert_eq!(direct.time_s, thr.time_s);
    let idle = 8.0 * s.cluster.accelerator.idle_w * thr.time_s;
    assert!((direct.gpu_energy_j + idle - thr.gpu_energy_j).abs() < 1e-6 * thr.gpu_energy_j);
    // The planner rates the mode with the same step: tokens per second of the throttled plan.
    let rt = rates(&p);
    assert!((rt.throttled_tps - thr.tokens / thr.time_s).abs() < 1e-9 * rt.throttled_tps);
    assert!(rt.throttled_w < rt.full_w);
}

#[test]
fn the_attribution_switches_replica_throttling_with_the_batch() {
    let s = scenario(&HALF);
    let (p, ..) = circadian_plan(&s);
    assert!(p.replicas.is_some());
    // The batch mechanism off: the full batch on every replica when throttled.
    let mut on = Mechanisms::ALL;
    on.batch = false;
    let prepared = prepare(&s).unwrap();
    let job = s.moe.as_ref().unwrap();
    let (sm, router) = models_for(&s, job, &prepared.trace, 1).unwrap();
    let setup = RunSetup {
        release_when_paused: true,
        network_w: 0.0,
        ..RunSetup::of_cluster(&s, &sm, 1e9, true)
    };
    let inputs = plan_inputs(&setup, &prepared);
    let off = plan::plan_for(&s, StrategyKind::Circadian, &sm, &router, &inputs, on).unwrap();
    assert!(off.replicas.is_none());
    assert_eq!(off.throttled.micro_batches, off.full.micro_batches);
}

#[test]
fn a_run_on_fewer_replicas_trains_the_same_tokens_to_the_same_loss_and_the_planner_picks_it_when_cheaper(
) {
    // Throttled on half the replicas under a 400 W cap, the nodes held while paused: beyond the power
    // held anyway, a throttled token costs less than a full-speed one, so the optimizer throttles.
    // (Cheaper as the optimizer counts it, holding the nodes to the deadline; the run stops holding
    // them at its finish, so over the whole run this plan emits more — README, Known limits.)
    let cheap = scenario(&[
        ("throttle_top_k = 1 ", "throttle_top_k = 2 "),
        ("throttle_power_cap_w = 500 ", "throttle_power_cap_w = 400 "),
        (
            "throttle_batch_fraction = 1.0",
            "throttle_replica_fraction = 0.5",
        ),
        (
            "release_nodes_when_paused = true",
            "release_nodes_when_paused = false",
        ),
    ]);
    let (p, ..) = circadian_plan(&cheap);
    let r = rates(&p);
    let per_token = |w: f64, tps: f64| (w - r.paused_w) / tps;
    assert!(
        per_token(r.throttled_w, r.throttled_tps) < per_token(r.full_w, r.full_tps),
        "{r:?}"
    );
    let res = simulate(&cheap).unwrap();
    let get = |k: StrategyKind| res.strategies.iter().find(|x| x.kind == k).unwrap();
    let (moe, circ) = (get(StrategyKind::Moe), get(StrategyKind::Circadian));
    assert!(
        circ.outcome.mode_s[Mode::Throttled as usize] > 0.0,
        "{:?}",
        circ.outcome.mode_s
    );
    // The run meters the throttled plan at the rate the planner assumed: a throttled hour after a
    // throttled hour (no restore in it) trains its tokens at the planner's throttled rate (to routing
    // noise and the step that straddles the hour's end).
    let tl = &circ.outcome.timeline;
    let thr = Some(Mode::Throttled);
    let inner: Vec<_> = tl
        .windows(2)
        .filter(|w| w.iter().all(|x| x.mode == thr) && w[1].covered_s == 3600.0)
        .map(|w| &w[1])
        .collect();
    assert!(!inner.is_empty());
    for row in inner {
        let tps = row.tokens / row.covered_s;
        assert!(
            (tps / r.throttled_tps - 1.0).abs() < 0.02,
            "{tps} vs {}",
            r.throttled_tps
        );
    }
    // Same tokens (the same global batch, every token worth the same) and the same loss.
    let step = moe.outcome.tokens / moe.outcome.sums.steps as f64;
    assert!((circ.outcome.tokens - moe.outcome.tokens).abs() <= step);
    assert_eq!(circ.outcome.effective_tokens, circ.outcome.tokens);
    let (lc, lm) = (
        circ.loss.as_ref().unwrap().loss,
        moe.loss.as_ref().unwrap().loss,
    );
    assert!((lc - lm).abs() < 1e-4, "{lc} vs {lm}");
    // No cap and released nodes when paused: the idle replicas make a throttled token dearer than a
    // full-speed one, and the planner never throttles.
    let dear = scenario(&HALF);
    let (p, ..) = circadian_plan(&dear);
    let r = rates(&p);
    assert_eq!(r.paused_w, 0.0);
    assert!(
        r.throttled_w / r.throttled_tps > r.full_w / r.full_tps,
        "{r:?}"
    );
    let res = simulate(&dear).unwrap();
    let circ = strategy_of(&res, StrategyKind::Circadian);
    assert_eq!(circ.outcome.mode_s[Mode::Throttled as usize], 0.0);
}

#[test]
fn the_plan_rates_each_hour_at_its_top_k() {
    // Top-1 from 08:00 to 19:59 local time, top-2 otherwise (the time-aware router).
    let sched: Vec<String> = (0..24)
        .map(|h| if (8..20).contains(&h) { "1" } else { "2" }.to_string())
        .collect();
    let line = format!("restore_s = 300\ntop_k_by_hour = [{}]", sched.join(", "));
    let s = scenario(&[("restore_s = 300", line.as_str())]);
    let (p, sm, router) = circadian_plan(&s);
    let Policy::Circadian(c) = &p.policy else {
        panic!("circadian plan expected")
    };
    for (h, k) in [(3u32, 2u32), (12, 1)] {
        let r = c.hour_rates(h).expect("hourly rates");
        // Full speed at the hour's top-k, counted in effective tokens as the run counts them.
        let knobs = Knobs { top_k: k, ..p.full };
        let step = mean_step(&sm, &router, knobs);
        let worth = plan::effective_share(&step, k, p.full.top_k);
        let tps = step.tokens / step.time_s * worth;
        assert!(
            (r.full_tps - tps).abs() < 1e-9 * tps,
            "hour {h}: {} vs {tps}",
            r.full_tps
        );
    }
    let (night, noon) = (c.hour_rates(3).unwrap(), c.hour_rates(12).unwrap());
    // At top-1 a step is faster but earns half the effective tokens: less progress per second.
    assert!(noon.full_tps < night.full_tps && noon.full_w < night.full_w);
    // Without the schedule there are no hourly rates.
    let (p, ..) = circadian_plan(&scenario(&[]));
    let Policy::Circadian(c) = &p.policy else {
        panic!("circadian plan expected")
    };
    assert!(c.hour_rates(3).is_none());
}
