//! Equal-loss comparison and the savings split: every strategy stops at the target loss, dense trains
//! more tokens than the MoE, the split's parts sum to the whole and do not depend on the thread count,
//! and the new power and routing keys act in every mode.

use super::*;
use crate::scenario::parse_scenario;
use std::path::Path;

use super::test_setup::shipped_scenario as scenario_from;

/// The one-node scenario at 2e8 tokens: small enough for a debug-build test, with a circadian strategy
/// that throttles (top-1, 450 W cap) outside an evening window it never reaches, and pauses.
fn small(edits: &[(&str, &str)]) -> Scenario {
    let mut e = vec![
        ("tokens = 1.0e9", "tokens = 2.0e8"),
        ("window_hours = [1, 2, 3, 4]", "window_hours = [20, 21]"),
    ];
    e.extend_from_slice(edits);
    scenario_from("single_node.toml", &e)
}

fn result(r: &Results, k: StrategyKind) -> &StrategyResult {
    r.strategies.iter().find(|s| s.kind == k).unwrap()
}

// Every strategy stops at the target loss: its loss is at or below it, and one step less would leave
// it above (the run stops within one step of the target).
#[test]
fn every_strategy_stops_within_one_step_of_the_target_loss() {
    let s = small(&[]);
    let r = simulate(&s).unwrap();
    let Goal::Loss { loss: target, .. } = r.goal else {
        panic!("default comparison is at equal loss, got {:?}", r.goal)
    };
    for st in &r.strategies {
        let job = s.job(st.kind).unwrap();
        let law = outcome::loss_law(job);
        let got = st.loss.as_ref().unwrap().loss;
        assert!(
            got <= target + 1e-12,
            "{}: {got} above {target}",
            st.kind.name()
        );
        // Effective tokens of the largest step the run can take (full speed, nominal top-k).
        let sm = StepModel::new(job, &s.cluster).unwrap();
        let one_step = sm.tokens_per_step(sm.full_knobs());
        let before = law.loss(st.effective_tokens - one_step).unwrap().loss;
        assert!(
            before > target,
            "{}: one step earlier the loss {before} was already at the target {target}",
            st.kind.name()
        );
    }
}

#[test]
fn dense_trains_more_tokens_than_moe_at_equal_loss_and_the_same_at_equal_tokens() {
    let r = simulate(&small(&[])).unwrap();
    let (d, m) = (
        result(&r, StrategyKind::Dense),
        result(&r, StrategyKind::Moe),
    );
    assert!(
        d.outcome.tokens > 1.2 * m.outcome.tokens,
        "dense {} moe {}",
        d.outcome.tokens,
        m.outcome.tokens
    );
    let r = simulate(&small(&[("start =", "compare = \"tokens\"\nstart =")])).unwrap();
    assert_eq!(r.goal, Goal::Tokens { tokens: 2e8 });
    let (d, m) = (
        result(&r, StrategyKind::Dense),
        result(&r, StrategyKind::Moe),
    );
    // Same budget, each rounded up to its own whole steps.
    assert!((d.outcome.tokens / m.outcome.tokens - 1.0).abs() < 0.01);
    assert!(d.loss.as_ref().unwrap().loss > m.loss.as_ref().unwrap().loss);
}

// The parts telescope: their sum is the whole difference, to float rounding, for every metric.
#[test]
fn the_split_sums_to_the_whole() {
    let s = small(&[]);
    let r = simulate(&s).unwrap();
    let a = attribute(&s, &r).unwrap();
    assert_eq!(a.splits.len(), 2, "dense and circadian against moe");
    let moe = result(&r, StrategyKind::Moe);
    for split in &a.splits {
        let st = result(&r, split.strategy);
        let whole = [
            moe.outcome.totals.co2_kg - st.outcome.totals.co2_kg,
            moe.outcome.totals.facility_j - st.outcome.totals.facility_j,
            moe.outcome.wall_s - st.outcome.wall_s,
        ];
        let sum = split.parts.iter().fold([0.0; 3], |acc, (_, p)| {
            [acc[0] + p.co2_kg, acc[1] + p.energy_j, acc[2] + p.time_s]
        });
        let scale = [
            moe.outcome.totals.co2_kg,
            moe.outcome.totals.facility_j,
            moe.outcome.wall_s,
        ];
        for i in 0..3 {
            assert!(
                (sum[i] - whole[i]).abs() <= 1e-9 * scale[i],
                "{} metric {i}: parts {} whole {}",
                split.strategy.name(),
                sum[i],
                whole[i]
            );
        }
        let w = split.whole;
        assert_eq!([w.co2_kg, w.energy_j, w.time_s], whole);
    }
    // This scenario throttles at a 450 W cap with top-1: those parts are not zero.
    let c = a.of(StrategyKind::Circadian).unwrap();
    assert!(c.part(Cause::PowerCap).unwrap().energy_j.abs() > 0.0);
    assert!(c.part(Cause::Routing).unwrap().co2_kg.abs() > 0.0);
    assert_eq!(c.parts.len(), Cause::CIRCADIAN_ORDER.len());
}

#[test]
fn the_split_is_the_same_on_any_thread_count() {
    let s = small(&[]);
    let run = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| {
                let r = simulate(&s).unwrap();
                attribute(&s, &r).unwrap()
            })
    };
    assert_eq!(run(1), run(3));
}

// With every mechanism on, a counterfactual is the strategy itself, bit for bit (so the chain's last
// link is the real run, not an approximation of it).
#[test]
fn all_mechanisms_on_reproduce_the_strategy() {
    let s = small(&[]);
    let r = simulate(&s).unwrap();
    let p = prepare(&s).unwrap();
    let i = s
        .strategies
        .iter()
        .position(|k| *k == StrategyKind::Circadian)
        .unwrap();
    let v = run_variant(
        &s,
        StrategyKind::Circadian,
        i as u64,
        &p,
        Watch::NONE,
        Mechanisms::ALL,
        &p.goal,
    )
    .unwrap();
    let c = result(&r, StrategyKind::Circadian);
    assert_eq!(v.outcome.totals, c.outcome.totals);
    assert_eq!(v.outcome.wall_s, c.outcome.wall_s);
}

// cluster.power_cap_w caps every strategy: the moe draws less GPU power and takes longer.
#[test]
fn a_cluster_power_cap_acts_on_every_strategy() {
    let free = simulate(&small(&[])).unwrap();
    let capped = simulate(&small(&[("pue = 1.3", "pue = 1.3\npower_cap_w = 460")])).unwrap();
    for k in [StrategyKind::Dense, StrategyKind::Moe] {
        let (a, b) = (result(&free, k), result(&capped, k));
        assert!(
            b.outcome.sums.time_s > a.outcome.sums.time_s,
            "{}",
            k.name()
        );
        let pw = |x: &StrategyResult| x.outcome.totals.gpu_j / x.outcome.sums.time_s;
        assert!(pw(b) < pw(a), "{}", k.name());
    }
}

// top_k_by_hour holds in the throttled mode too: top-1 every hour makes throttled steps top-1 even
// with throttle_top_k = 2, so the run's mean top-k is 1.
#[test]
fn top_k_by_hour_holds_when_throttled() {
    let ones = format!(
        "throttle_top_k = 2\ntop_k_by_hour = [{}]",
        vec!["1"; 24].join(", ")
    );
    let r = simulate(&small(&[("throttle_top_k = 1", &ones)])).unwrap();
    let c = result(&r, StrategyKind::Circadian);
    assert!(
        c.outcome.mode_s[1] > 0.0,
        "the window policy throttles some hours"
    );
    let mean_k = c.outcome.sums.token_top_k / c.outcome.tokens;
    assert!((mean_k - 1.0).abs() < 1e-12, "mean top-k {mean_k}");
}

#[test]
fn an_unreachable_target_loss_names_the_field_and_the_range() {
    let s = small(&[("tokens = 2.0e8", "target_loss = 1.0")]);
    let e = simulate(&s).unwrap_err().to_string();
    assert!(
        e.contains("training.target_loss") && e.contains("reaches losses in ("),
        "{e}"
    );
    assert!(matches!(simulate(&s), Err(SimError::Unreachable { .. })));
}

/// The error `parse_scenario` gives the one-node scenario with `from` replaced by `to`.
fn key_error(from: &str, to: &str) -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let text = std::fs::read_to_string(dir.join("single_node.toml")).unwrap();
    assert!(text.contains(from), "{from}");
    match parse_scenario("s.toml", &text.replacen(from, to, 1), &dir) {
        Ok(_) => panic!("`{to}` was accepted"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn bad_comparison_and_cap_keys_are_refused_with_what_is_valid() {
    let e = key_error("start =", "compare = \"quality\"\nstart =");
    assert!(
        e.contains("training.compare") && e.contains("\"loss\"") && e.contains("\"tokens\""),
        "{e}"
    );
    let e = key_error("tokens = 1.0e9", "target_loss = 2.5\ncompare = \"tokens\"");
    assert!(
        e.contains("training.compare") && e.contains("target_loss"),
        "{e}"
    );
    let e = key_error("pue = 1.3", "pue = 1.3\npower_cap_w = 900");
    assert!(
        e.contains("cluster.power_cap_w") && e.contains("700"),
        "{e}"
    );
    let e = key_error("pue = 1.3", "pue = 1.3\npower_cap_w = 10");
    assert!(e.contains("cluster.power_cap_w"), "{e}");
    // A mode's cap may not exceed the cluster's.
    let e = key_error("pue = 1.3", "pue = 1.3\npower_cap_w = 400");
    assert!(
        e.contains("strategy.circadian.throttle_power_cap_w") && e.contains("400"),
        "{e}"
    );
    let e = key_error("restore_s = 60", "restore_s = 60\nfull_power_cap_w = 800");
    assert!(e.contains("strategy.circadian.full_power_cap_w"), "{e}");
}
