//! The fast step path against the event level on a model with Transformer-XL positions: the
//! position ops ride in the op list both levels price and schedule.

use super::event_step::{EventStepInput, EventStepModel};
use super::test_setup::shipped_scenario;
use super::StepModel;

/// The shipped single-node dense model with `position = POS`.
fn with_position(pos: &str) -> crate::scenario::Scenario {
    let end = "ffn_hidden = 2816\n\n[parallel.moe]";
    shipped_scenario(
        "single_node.toml",
        &[(
            end,
            &format!("ffn_hidden = 2816\nposition = \"{pos}\"\n\n[parallel.moe]"),
        )],
    )
}

#[test]
fn transformer_xl_positions_agree_between_the_fast_path_and_the_event_level() {
    let mut steps = Vec::new();
    for pos in ["relative", "transformer-xl"] {
        let s = with_position(pos);
        let job = s.dense.as_ref().expect("dense job");
        let mut sm = StepModel::new(job, &s.cluster).expect("op list");
        let knobs = sm.full_knobs();
        let fast = sm.step(&[], knobs);
        let mut ev = EventStepModel::new(EventStepInput::from_job(job, &s.cluster));
        let e = ev.step(&[], knobs, false).expect("event step");
        let err = fast.time_s / e.time_s - 1.0;
        assert!(
            err.abs() < 0.02,
            "{pos}: fast {} s vs event {} s",
            fast.time_s,
            e.time_s
        );
        steps.push((fast.time_s, e.time_s));
    }
    // Transformer-XL's projection, second score term and shift cost more than T5's bias, on
    // both levels.
    assert!(
        steps[1].0 > steps[0].0 && steps[1].1 > steps[0].1,
        "{steps:?}"
    );
}
