//! Regression: the circadian planner must count the restore time of every resume after a pause, or a
//! plan that fits on paper finishes minutes after its deadline (the default scenario once ran 120.05 h
//! against its 120 h deadline).

use moesim::{Scenario, StrategyKind};
use std::path::Path;

#[test]
fn the_default_scenarios_circadian_run_meets_its_deadline() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/seed_comparison.toml");
    let s = Scenario::from_file(&path).expect("the default scenario parses");
    let res = moesim::simulate(&s).expect("runs");
    let c = res
        .strategies
        .iter()
        .find(|r| r.kind == StrategyKind::Circadian)
        .expect("a circadian strategy");
    assert!(c.outcome.pauses > 0, "the plan should pause at least once");
    assert_eq!(
        c.deadline_met(),
        Some(true),
        "wall-clock {:.3} h against a {:.1} h deadline",
        c.outcome.wall_s / 3600.0,
        c.deadline_s.unwrap_or(0.0) / 3600.0
    );
}
