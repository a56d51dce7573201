//! Curriculum gating and the batch schedule in runs: the knob changes at the first step past its
//! threshold, blocks never straddle a change, steps and communication follow the batch, the quality
//! law's effective tokens follow the critical batch, and the planner sees the schedule's mean.

use super::plan::{self, Mechanisms};
use super::test_setup::{plan_inputs, strategy_of};
use super::*;
use crate::strategy::Policy;

/// Tokens of one step of single_node's full global batch: 256 sequences × 1024.
const STEP_TOKENS: f64 = 262_144.0;

/// single_node with `edits`, trained to its token budget (progress counts every token).
fn scenario(edits: &[(&str, &str)]) -> Scenario {
    let mut e = vec![("tokens = 1.0e9", "tokens = 1.0e9\ncompare = \"tokens\"")];
    e.extend_from_slice(edits);
    super::test_setup::shipped_scenario("single_node.toml", &e)
}

fn curriculum(top_k: &str) -> (&'static str, String) {
    (
        "[models.dense]",
        format!("[models.moe.curriculum]\ntop_k = {top_k}\n\n[models.dense]"),
    )
}

fn batch(body: &str) -> (&'static str, String) {
    (
        "[models.moe]",
        format!("[training.batch_schedule]\n{body}\n\n[models.moe]"),
    )
}

fn run_both(mut s: Scenario, strategies: &str) -> (Results, Results) {
    s.strategies = strategies
        .split(',')
        .filter_map(StrategyKind::from_name)
        .collect();
    s.training.exact = true;
    let exact = simulate(&s).unwrap();
    s.training.exact = false;
    let blocks = simulate(&s).unwrap();
    (exact, blocks)
}

#[test]
fn the_curriculum_top_k_changes_at_the_first_step_past_its_threshold_in_blocks_too() {
    let (a, b) = curriculum("[[0.0, 1], [0.5, 2]]");
    let s = scenario(&[(a, &b)]);
    let (exact, blocks) = run_both(s, "moe");
    // Steps j = 0, 1, ... start at progress j·262144/1e9: the first at or past 0.5 is j = 1908, so
    // 1908 steps run at top-1 and the other 3815 − 1908 at top-2.
    let steps = (1e9 / STEP_TOKENS).ceil();
    let top1 = (0.5e9 / STEP_TOKENS).ceil();
    let want = STEP_TOKENS * (top1 + 2.0 * (steps - top1));
    for r in [&exact, &blocks] {
        let o = &r.strategies[0].outcome;
        assert_eq!(o.sums.steps as f64, steps);
        // Exact: every step's top-k in the sum; a block that straddled 0.5 would move it by 262144.
        assert_eq!(o.sums.token_top_k, want);
        // The quality law counts a top-1 token as half of one (dropless: nothing dropped).
        let eff = STEP_TOKENS * (0.5 * top1 + (steps - top1));
        assert!(
            (o.effective_tokens - eff).abs() < 1e-9 * eff,
            "{}",
            o.effective_tokens
        );
        // The timeline's mean top-k of the interval.
        let row = &o.timeline[0];
        assert!((row.mean_top_k - want / o.tokens).abs() < 1e-12);
    }
    // The block run aggregates (fewer priced entries) yet lands on the same change.
    assert!(blocks.strategies[0].outcome.sums.p99_step_s > 0.0);
}

#[test]
fn a_batch_schedule_changes_the_micro_batches_at_the_first_step_past_its_threshold() {
    let (a, b) = batch("batch_fraction = [[0.0, 0.25], [0.5, 1.0]]");
    let (exact, blocks) = run_both(scenario(&[(a, &b)]), "moe,dense");
    // A quarter of the global batch: 1 of 4 micro-batches, 65536 tokens a step, until progress 0.5.
    let small = STEP_TOKENS / 4.0;
    let n_small = (0.5e9 / small).ceil();
    let n_full = ((1e9 - n_small * small) / STEP_TOKENS).ceil();
    for r in [&exact, &blocks] {
        for st in &r.strategies {
            let o = &st.outcome;
            assert_eq!(o.sums.steps as f64, n_small + n_full, "{}", st.kind.name());
            assert_eq!(o.tokens, n_small * small + n_full * STEP_TOKENS);
            let row = &o.timeline[0];
            assert!((row.mean_batch_tokens - o.tokens / (n_small + n_full)).abs() < 1e-6);
        }
    }
    // Totals per step and in blocks agree (the blocks' sampling error only).
    for (e, b) in exact.strategies.iter().zip(&blocks.strategies) {
        let (e, b) = (&e.outcome, &b.outcome);
        let rel = (e.totals.facility_j - b.totals.facility_j).abs() / e.totals.facility_j;
        assert!(rel < 5e-3, "{rel}");
        // The critical-batch worth is followed step by step inside a block, as per step.
        let d = (e.effective_tokens - b.effective_tokens).abs() / e.effective_tokens;
        assert!(d < 1e-9, "{} vs {}", e.effective_tokens, b.effective_tokens);
    }
}

#[test]
fn small_batches_take_shorter_steps_and_pay_more_sync_per_token() {
    let s = scenario(&[]);
    let job = s.moe.as_ref().unwrap();
    let mut sm = StepModel::new(job, &s.cluster).unwrap();
    let full = sm.full_knobs();
    let one = Knobs {
        micro_batches: 1,
        ..full
    };
    let e = sm.experts() * sm.moe_layers();
    let shares = vec![1.0 / sm.experts() as f64; e];
    let (c1, c4) = (sm.step(&shares, one), sm.step(&shares, full));
    assert_eq!(c4.tokens, 4.0 * c1.tokens);
    assert!(c1.time_s < c4.time_s);
    // The gradient sync is per step, so per token it costs four times as much at a quarter batch.
    let (sync1, sync4) = (sm.sync_times(one).0, sm.sync_times(full).0);
    assert_eq!(sync1, sync4);
    assert!(sync1 > 0.0);
    assert!(c1.time_s / c1.tokens > c4.time_s / c4.tokens);
}

#[test]
fn a_batch_below_the_nominal_one_earns_more_effective_tokens_and_a_lower_loss() {
    let (a, b) = batch(
        "progress = \"tokens\"\nshape = \"linear\"\nbatch_fraction = [[0, 0.25], [2e8, 1.0]]",
    );
    let plain = simulate(&scenario(&[])).unwrap();
    let warm = simulate(&scenario(&[(a, &b)])).unwrap();
    for (p, w) in plain.strategies.iter().zip(&warm.strategies) {
        let name = p.kind.name();
        // Same tokens (equal-token comparison), more steps.
        assert!(
            (p.outcome.tokens - w.outcome.tokens).abs() < STEP_TOKENS,
            "{name}"
        );
        assert!(w.outcome.sums.steps > p.outcome.sums.steps, "{name}");
        // McCandlish et al.: below the critical batch fewer tokens reach a loss, so they count more.
        assert!(w.effective_tokens > p.effective_tokens, "{name}");
        let (pl, wl) = (p.loss.as_ref().unwrap().loss, w.loss.as_ref().unwrap().loss);
        assert!(wl < pl, "{name}: {wl} vs {pl}");
    }
    // Trained to one loss instead, the warm-up needs fewer tokens.
    let to_loss = |edits: &[(&str, &str)]| {
        let mut s = scenario(edits);
        s.training.compare = crate::scenario::Compare::Loss;
        s.strategies = vec![StrategyKind::Moe];
        simulate(&s).unwrap().strategies[0].outcome.tokens
    };
    assert!(to_loss(&[(a, &b)]) < to_loss(&[]));
}

#[test]
fn a_dense_strategy_ignores_the_moe_curriculum() {
    let (a, b) = curriculum("[[0.0, 1], [0.5, 2]]");
    let with = simulate(&scenario(&[(a, &b)])).unwrap();
    let without = simulate(&scenario(&[])).unwrap();
    let dense = |r: &Results| {
        strategy_of(r, StrategyKind::Dense)
            .outcome
            .totals
            .facility_j
    };
    assert_eq!(dense(&with), dense(&without));
}

#[test]
fn the_planner_rates_a_mode_at_the_mean_of_the_schedules_phases() {
    let (a, b) = curriculum("[[0.0, 1], [0.5, 2]]");
    let s = scenario(&[(a, &b)]);
    let prepared = prepare(&s).unwrap();
    let job = s.moe.as_ref().unwrap();
    let (sm, router) = models_for(&s, job, &prepared.trace, 1).unwrap();
    let setup = RunSetup {
        eval: None,
        schedules: plan::schedules_for(&s, StrategyKind::Circadian, job, &sm, 1e9),
        ..RunSetup::of_cluster(&s, &sm, 1e9, true)
    };
    let inputs = plan_inputs(&setup, &prepared);
    let p = plan::plan_for(
        &s,
        StrategyKind::Circadian,
        &sm,
        &router,
        &inputs,
        Mechanisms::ALL,
    )
    .unwrap();
    let Policy::Circadian(c) = &p.policy else {
        panic!("circadian plan expected")
    };
    // Full speed: half the progress at top-1 (its tokens worth half), half at top-2.
    let tps = |k: u32| {
        let kn = Knobs { top_k: k, ..p.full };
        let c = mean_step(&sm, &router, kn);
        c.tokens / c.time_s * plan::effective_share(&c, k, p.full.top_k)
    };
    let want = 1.0 / (0.5 / tps(1) + 0.5 / tps(2));
    let got = c.rates().full_tps;
    assert!((got - want).abs() < 1e-9 * want, "{got} vs {want}");
}

#[test]
fn a_smaller_circadian_throttled_batch_is_charged_by_the_critical_batch() {
    // No pauses: the hours outside the window run throttled.
    let s = scenario(&[
        (
            "throttle_top_k = 1",
            "throttle_top_k = 1\nthrottle_batch_fraction = 0.5",
        ),
        ("pause_share = 0.2", "pause_share = 0.0"),
    ]);
    let job = s.moe.as_ref().unwrap();
    let sm = StepModel::new(job, &s.cluster).unwrap();
    let circ = plan::schedules_for(&s, StrategyKind::Circadian, job, &sm, 1e9);
    let w = circ
        .worth
        .as_ref()
        .expect("a throttled batch below the nominal one is charged");
    assert_eq!(w.ref_batch_tokens, STEP_TOKENS);
    // Half the batch: each token counts for more than one at the nominal batch (McCandlish et al.).
    assert!(circ.batch_worth(STEP_TOKENS / 2.0, 5e8) > 1.0);
    assert_eq!(circ.batch_worth(STEP_TOKENS, 5e8), 1.0);
    // moe never moves its batch: no charge, every token counted as before.
    assert!(plan::schedules_for(&s, StrategyKind::Moe, job, &sm, 1e9)
        .worth
        .is_none());
    // Over the run the circadian effective tokens exceed the token-weighted top-k rule alone.
    let r = simulate(&s).unwrap();
    let c = strategy_of(&r, StrategyKind::Circadian);
    assert!(c.outcome.mode_s[1] > 0.0, "no throttled hour");
    let top_k_rule = c.outcome.sums.token_top_k / 2.0;
    assert!(
        c.effective_tokens > top_k_rule,
        "{} vs {top_k_rule}",
        c.effective_tokens
    );
}

#[test]
fn check_and_the_step_limit_count_the_batch_schedules_smaller_steps() {
    let (a, b) = batch("batch_fraction = [[0.0, 0.25], [0.5, 1.0]]");
    let s = scenario(&[(a, &b)]);
    // As the run trains them (the test above): a quarter batch until progress 0.5, then the full one.
    let small = STEP_TOKENS / 4.0;
    let n_small = (0.5e9 / small).ceil();
    let want = n_small + ((1e9 - n_small * small) / STEP_TOKENS).ceil();
    let plan = prepare(&s).unwrap().plan;
    for p in &plan.strategies {
        assert_eq!(p.steps, want, "{}", p.kind.name());
    }
    assert!(plan.describe().contains(&format!("{want:.3e} steps")));
    // The run agrees.
    let o = simulate(&s).unwrap();
    assert!(o
        .strategies
        .iter()
        .all(|x| x.outcome.sums.steps as f64 == want));
    // A limit between the full-batch count and the warm-up's refuses the run.
    let full_batch = (1e9 / STEP_TOKENS).ceil();
    let mut tight = s.clone();
    tight.limits.max_steps = 0.5 * (full_batch + want);
    let e = prepare(&tight).map(|_| ()).unwrap_err().to_string();
    assert!(
        e.contains("limits.max_steps") && e.contains("batch_schedule"),
        "{e}"
    );
    assert!(prepare(&scenario(&[])).is_ok());
    // A linear ramp: phase by phase as the run's knob changes.
    let (a, b) = batch(
        "progress = \"tokens\"\nshape = \"linear\"\nbatch_fraction = [[0, 0.25], [2e8, 1.0]]",
    );
    let s = scenario(&[(a, &b)]);
    let planned = prepare(&s).unwrap().plan.strategies[0].steps;
    let run = simulate(&s).unwrap().strategies[0].outcome.sums.steps as f64;
    assert_eq!(planned, run);
}
