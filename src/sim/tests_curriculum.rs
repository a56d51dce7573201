//! Curriculum gating of the capacity factor and the active experts: the step model sees the knobs,
//! the schedule changes them at the first step past its threshold (in blocks too), and the quality
//! law charges the tokens trained at fewer experts and the assignments dropped at a low capacity.

use super::*;
use crate::quality::{law_with_active_experts, FewerExperts};

/// Tokens of one step of single_node's full global batch: 256 sequences × 1024.
const STEP_TOKENS: f64 = 262_144.0;

/// single_node with a capacity factor of 1.0, `edits`, and `curriculum` as its MoE's curriculum.
fn scenario(curriculum: &str, edits: &[(&str, &str)]) -> Scenario {
    let block = format!("[models.moe.curriculum]\n{curriculum}\n\n[models.dense]");
    let mut e = vec![("capacity_factor = \"dropless\"", "capacity_factor = 1.0")];
    if !curriculum.is_empty() {
        e.push(("[models.dense]", &block));
    }
    e.extend_from_slice(edits);
    super::test_setup::shipped_scenario("single_node.toml", &e)
}

/// Equal-token comparison of the MoE alone, every step priced (`exact`) or in blocks.
fn moe_run(mut s: Scenario, exact: bool) -> RunOutcome {
    s.training.compare = crate::scenario::Compare::Tokens;
    s.strategies = vec![StrategyKind::Moe];
    s.training.exact = exact;
    simulate(&s).unwrap().strategies.remove(0).outcome
}

/// The edit back to single_node's dropless router.
const DROPLESS: (&str, &str) = ("capacity_factor = 1.0", "capacity_factor = \"dropless\"");

#[test]
fn the_step_model_sees_the_capacity_factor_and_active_experts_knobs() {
    let s = scenario("", &[]);
    let job = s.moe.as_ref().unwrap();
    let mut sm = StepModel::new(job, &s.cluster).unwrap();
    let (e, layers) = (sm.experts(), sm.moe_layers());
    let full = sm.full_knobs();
    // Skewed routing: expert x gets a share ∝ 1/(x+1).
    let w: Vec<f64> = (0..e).map(|x| 1.0 / (x + 1) as f64).collect();
    let sum: f64 = w.iter().sum();
    let skewed: Vec<f64> = (0..layers * e).map(|i| w[i % e] / sum).collect();
    let base = sm.step(&skewed, full);
    let at = |cf: f64| Knobs {
        capacity_factor: Some(cf),
        ..full
    };
    let (low, high) = (sm.step(&skewed, at(0.5)), sm.step(&skewed, at(4.0)));
    assert!(
        low.dropped > base.dropped && base.dropped > high.dropped,
        "{low:?} {base:?} {high:?}"
    );
    // The knob at the model's own factor is the model's step, bit for bit.
    assert_eq!(sm.step(&skewed, at(1.0)), base);
    // Uniform routing over half the experts: each active expert receives twice its share, the ranks
    // without one wait (ep = 8, one expert a rank): a slower step; at capacity factor 1 the capacity
    // is per active expert, so nothing is dropped.
    let uniform = vec![1.0 / e as f64; layers * e];
    let all = sm.step(&uniform, full);
    let half = Knobs {
        active_experts: Some(e as u32 / 2),
        ..full
    };
    let h = sm.step(&uniform, half);
    assert_eq!(h.dropped, 0.0);
    assert_eq!(h.tokens, all.tokens);
    assert!(
        h.time_s > all.time_s && h.straggler_s >= all.straggler_s,
        "{h:?} {all:?}"
    );
    // All experts named active is the model's step.
    let every = Knobs {
        active_experts: Some(e as u32),
        ..full
    };
    assert_eq!(sm.step(&uniform, every), all);
}

#[test]
fn active_experts_change_at_the_first_step_past_the_threshold_and_are_charged_by_the_law() {
    let s = scenario("active_experts = [[0.0, 4], [0.5, 8]]", &[DROPLESS]);
    let job = s.moe.as_ref().unwrap();
    let law = outcome::law_of(&s, job);
    let shape = outcome::model_shape(job);
    let x = FewerExperts::between(&law, &law_with_active_experts(law, &shape, 4));
    assert!(x.gap > 0.0, "{x:?}");
    let steps = (1e9 / STEP_TOKENS).ceil();
    // Steps j start at progress j·262144/1e9: the first at or past 0.5 is j = 1908.
    let four = (0.5e9 / STEP_TOKENS).ceil();
    let plain = moe_run(scenario("", &[DROPLESS]), true);
    for exact in [true, false] {
        let o = moe_run(s.clone(), exact);
        assert_eq!(o.sums.steps as f64, steps);
        // Dropless: the 1908 steps at four experts count through the law's exchange, the rest as
        // they are; a block that straddled 0.5 would move the sum by a step's worth.
        assert_eq!(o.sums.dropped, 0.0);
        let want = x.advance(0.0, four * STEP_TOKENS) + (steps - four) * STEP_TOKENS;
        assert!(
            (o.effective_tokens / want - 1.0).abs() < 1e-9,
            "exact {exact}: {} vs {want}",
            o.effective_tokens
        );
        // Fewer experts train the same tokens to fewer effective ones.
        assert!(o.effective_tokens < plain.effective_tokens);
    }
}

#[test]
fn the_capacity_factor_schedule_drops_only_before_its_change() {
    // Capacity 0.5 drops half the assignments or more; at 4.0 zipf(0.5) over 8 experts drops none.
    let sched = moe_run(
        scenario("capacity_factor = [[0.0, 0.5], [0.5, 4.0]]", &[]),
        true,
    );
    let low = moe_run(scenario("capacity_factor = [[0.0, 0.5]]", &[]), true);
    let high = moe_run(scenario("capacity_factor = [[0.0, 4.0]]", &[]), true);
    assert_eq!(high.sums.dropped, 0.0);
    assert!(
        low.sums.dropped > 0.4 * low.sums.assignments,
        "{}",
        low.sums.dropped
    );
    // 1908 of 3815 steps at 0.5, each routed as the same steps of the all-0.5 run.
    let share = (0.5e9 / STEP_TOKENS).ceil() / (1e9 / STEP_TOKENS).ceil();
    let r = sched.sums.dropped / low.sums.dropped;
    assert!((r - share).abs() < 0.02, "{r} vs {share}");
    // Dropped assignments do not train: the quality law counts the kept share.
    let kept = 1.0 - sched.sums.dropped / sched.sums.assignments;
    assert!((sched.effective_tokens / (sched.tokens * kept) - 1.0).abs() < 1e-3);
}

#[test]
fn at_equal_loss_a_run_at_fewer_experts_trains_more_tokens() {
    let edits = [("tokens = 1.0e9", "tokens = 1.0e9\ncompare = \"loss\"")];
    let grown = scenario("active_experts = [[0.0, 2], [0.3, 8]]", &edits);
    let plain = scenario("", &edits);
    let moe = |s: &Scenario| {
        let mut s = s.clone();
        s.strategies = vec![StrategyKind::Moe];
        simulate(&s).unwrap().strategies.remove(0)
    };
    let (g, p) = (moe(&grown), moe(&plain));
    assert!(
        g.outcome.tokens > p.outcome.tokens,
        "{} vs {}",
        g.outcome.tokens,
        p.outcome.tokens
    );
    let (lg, lp) = (g.loss.as_ref().unwrap().loss, p.loss.as_ref().unwrap().loss);
    assert!((lg - lp).abs() < 1e-3, "{lg} vs {lp}");
}

#[test]
fn the_event_level_refuses_a_capacity_or_experts_curriculum() {
    let s = scenario("active_experts = [[0.0, 4], [0.5, 8]]", &[]);
    let e = simulate_opts(&s, &crate::progress::Silent, true).unwrap_err();
    assert!(matches!(e, SimError::EventLevelCurriculum), "{e}");
    assert!(e.to_string().contains("--event-level"));
}

#[test]
fn the_timeline_shows_the_active_experts_and_capacity_factor_the_tokens_ran_at() {
    // Tokens before 0.5 ran at 4 experts and capacity 2.0, after at 8 and 1.25: each interval's
    // token-weighted means lie between, and the run's token-weighted mean is the step count's split.
    let s = scenario(
        "active_experts = [[0.0, 4], [0.5, 8]]\ncapacity_factor = [[0.0, 2.0], [0.5, 1.25]]",
        &[],
    );
    let o = moe_run(s, true);
    let tokens: f64 = o.timeline.iter().map(|r| r.tokens).sum();
    let experts: f64 = o
        .timeline
        .iter()
        .map(|r| r.tokens * r.mean_active_experts)
        .sum();
    let cf: f64 = o
        .timeline
        .iter()
        .map(|r| r.tokens * r.mean_capacity_factor)
        .sum();
    let steps = (1e9 / STEP_TOKENS).ceil();
    let four = (0.5e9 / STEP_TOKENS).ceil() / steps;
    assert!(((experts / tokens) - (4.0 * four + 8.0 * (1.0 - four))).abs() < 1e-9);
    assert!(((cf / tokens) - (2.0 * four + 1.25 * (1.0 - four))).abs() < 1e-9);
    for r in o.timeline.iter().filter(|r| r.tokens > 0.0) {
        assert!((4.0..=8.0).contains(&r.mean_active_experts), "{r:?}");
        assert!((1.25..=2.0).contains(&r.mean_capacity_factor), "{r:?}");
    }
}
