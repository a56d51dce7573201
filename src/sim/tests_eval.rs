//! `[training.eval]` in an ordinary run: an evaluation after every N-th step, priced by
//! `sim::eval` as the validation cases' evaluations are, its time and energy charged to the run.

use super::eval::{eval_cost, run_eval, EvalSchedule};
use super::*;

/// single_node's MoE alone at equal tokens (2e8: 763 steps), with `eval` as its
/// `[training.eval]` body (empty: none), every step priced (`exact`) or in blocks.
fn moe_run(eval: &str, exact: bool) -> RunOutcome {
    let table = format!("[training.eval]\n{eval}\n\n[models.moe]");
    let mut e = vec![("tokens = 1.0e9", "tokens = 2.0e8")];
    if !eval.is_empty() {
        e.push(("\n[models.moe]", &table));
    }
    let mut s = super::test_setup::shipped_scenario("single_node.toml", &e);
    s.training.compare = crate::scenario::Compare::Tokens;
    s.strategies = vec![StrategyKind::Moe];
    s.training.exact = exact;
    simulate(&s).unwrap().strategies.remove(0).outcome
}

#[test]
fn evaluations_follow_every_nth_step_and_add_their_time_and_energy() {
    let off = moe_run("", true);
    let on = moe_run("every_steps = 100\nseqs = 512", true);
    // The same training: same steps, tokens and step times.
    assert_eq!(on.sums.steps, off.sums.steps);
    assert_eq!(on.tokens, off.tokens);
    assert_eq!(on.sums.time_s, off.sums.time_s);
    assert_eq!(off.sums.evaluations, 0);
    assert_eq!(on.sums.evaluations, on.sums.steps / 100);
    assert!(on.sums.evaluations >= 7, "{}", on.sums.evaluations);
    // The evaluations' time is what sim::eval prices MLPerf's at (512 sequences: 2 global
    // batches of 256), one per 100 steps.
    let s = super::test_setup::shipped_scenario("single_node.toml", &[]);
    let job = s.moe.as_ref().unwrap();
    let spec = crate::scenario::TrainingEval {
        every_steps: 100,
        seqs: 512,
    };
    let per = run_eval(job, &s.cluster, spec).unwrap();
    let mlperf = eval_cost(
        job,
        &s.cluster,
        EvalSchedule {
            every_seqs: 100 * 256,
            eval_seqs: 512,
        },
        on.sums.steps,
    )
    .unwrap();
    assert_eq!(per.eval_s, mlperf.eval_s);
    assert!((on.sums.eval_s - mlperf.total_s).abs() < 1e-9 * mlperf.total_s);
    // A forward-only pass of a global batch is shorter than a training step.
    let step_s = on.sums.time_s / on.sums.steps as f64;
    assert!(
        per.eval_s > 0.0 && per.eval_s < 2.0 * step_s,
        "{per:?} {step_s}"
    );
    // Charged to the run: the wall-clock time by the evaluations (to the engine's ns), the facility
    // energy by theirs.
    let extra_s = on.wall_s - off.wall_s;
    assert!(
        (extra_s - on.sums.eval_s).abs() < 1e-6,
        "{extra_s} vs {}",
        on.sums.eval_s
    );
    let extra_j = on.totals.facility_j - off.totals.facility_j;
    assert!(
        (extra_j - on.sums.eval_facility_j).abs() < 1e-3 * on.sums.eval_facility_j,
        "{extra_j} vs {}",
        on.sums.eval_facility_j
    );
    // A GPU evaluating draws more than idle and no more than its TDP, above the training step's
    // mean (that mean holds the gradient sync and optimizer at lower power).
    let gpus = s.cluster.gpus as f64;
    assert!(per.gpu_w > gpus * s.cluster.accelerator.idle_w, "{per:?}");
    assert!(per.gpu_w <= gpus * s.cluster.accelerator.tdp_w, "{per:?}");
    assert!(per.gpu_w >= off.totals.gpu_j / off.sums.time_s, "{per:?}");
    assert!(per.waiting_w >= 0.0 && per.waiting_w < per.gpu_w, "{per:?}");
}

#[test]
fn blocks_end_on_the_steps_evaluations_follow() {
    let exact = moe_run("every_steps = 64\nseqs = 256", true);
    let blocks = moe_run("every_steps = 64\nseqs = 256", false);
    assert_eq!(blocks.sums.steps, exact.sums.steps);
    assert_eq!(blocks.sums.evaluations, exact.sums.evaluations);
    assert_eq!(blocks.sums.evaluations, exact.sums.steps / 64);
    assert!((blocks.sums.eval_s - exact.sums.eval_s).abs() < 1e-9 * exact.sums.eval_s);
}
