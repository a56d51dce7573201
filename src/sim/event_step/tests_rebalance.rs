//! Expert rebalancing at event level: which GPUs send and receive, and when.

use super::tests::{input, model, plan};
use super::*;

fn knobs(i: &EventStepInput) -> Knobs {
    crate::sim::test_setup::knobs(i.accelerator.tdp_w, 2, 2)
}

#[test]
fn each_stage_moves_only_its_own_layers_experts_concurrently() {
    // Two stages of two layers (4 MoE layers, 4 experts, ep 2): placed from loads
    // [.4 .3 .2 .1], re-placed from [.4 .1 .3 .2] — one slot each way per layer (see
    // `tests_agreement::rebalancing_step`). Stage s's GPUs (2s, 2s + 1) move their two layers'
    // slots; the stages move at once on their own ports.
    let policy = PlacementPolicy::ByLoad;
    let old: Vec<f64> = [0.4, 0.3, 0.2, 0.1].repeat(4);
    let new: Vec<f64> = [0.4, 0.1, 0.3, 0.2].repeat(4);
    let mut inp = input(model(4), plan(2, 1, 2, 2, 2), 1);
    inp.placement = Some(Placement::new(policy, 4, 4, 2, &old));
    let k = knobs(&inp);
    let mut m = EventStepModel::new(inp.clone());
    m.set_rebalancing(policy, Some(1));
    assert!(m.count_step(&new));
    let r = m.step(&new, k, true).unwrap();
    let mig: Vec<&OpRecord> = r
        .records
        .iter()
        .filter(|x| x.name == "moe.migrate")
        .collect();
    assert_eq!(mig.len(), 4, "every GPU sends and receives");
    let slot = rebalance::slot_bytes(&inp.model, &inp.plan);
    for x in &mig {
        // Two layers' slots in, two out.
        assert_eq!(x.bytes, 4.0 * slot, "GPU {}", x.gpu);
    }
    // Two slots into each GPU at the NVLink rate: the fast path would charge all four layers'
    // slots to one GPU (its busiest receiver summed over every stage's layers).
    let f = &inp.fabric;
    let want = crate::network::COLLECTIVE_BASE_LATENCY_S
        + f.intra.latency_s
        + 2.0 * slot / f.intra_bw_bytes_per_s();
    assert!(
        (r.migration_s / want - 1.0).abs() < 0.05,
        "{} vs {want}",
        r.migration_s
    );
    // Counting the step again without a complete period does not move anything.
    m.set_rebalancing(policy, Some(2));
    assert!(!m.count_step(&new));
    assert_eq!(m.step(&new, k, false).unwrap().migration_s, 0.0);
}

#[test]
fn a_step_that_does_not_rebalance_has_no_migration_and_balanced_steps_never_carry_one() {
    let policy = PlacementPolicy::ByLoad;
    let old: Vec<f64> = [0.4, 0.3, 0.2, 0.1].repeat(4);
    let new: Vec<f64> = [0.4, 0.1, 0.3, 0.2].repeat(4);
    let mut inp = input(model(4), plan(2, 1, 1, 2, 2), 1);
    inp.placement = Some(Placement::new(policy, 4, 4, 2, &old));
    let k = knobs(&inp);
    let mut m = EventStepModel::new(inp);
    m.set_rebalancing(policy, Some(3));
    let a = m.step_cost(&new, k).unwrap();
    let b = m.step_cost(&new, k).unwrap();
    let c = m.step_cost(&new, k).unwrap();
    assert_eq!(a.time_s, b.time_s);
    assert!(c.time_s > b.time_s, "the third step rebalances");
    // The migration is not skew: the straggler time compares the step without it.
    assert!(
        c.straggler_s <= b.straggler_s + 1e-12,
        "{} vs {}",
        c.straggler_s,
        b.straggler_s
    );
    // One slot per layer into each rank, four layers: counted as the fast path counts them.
    assert_eq!(m.moved_slots(), 4);
    let (bal, _) = m.balanced(k).unwrap();
    assert!(bal < c.time_s);
}

#[test]
fn under_dualpipe_both_copies_of_a_layer_move() {
    // Why: DualPipe keeps each stage on two ranks (`r` and `pp-1-r`); a re-placement moves the
    // experts of both copies, so each GPU (holding all four layers here) moves twice the slots
    // of the 1F1B step, and the step moves twice the bytes.
    let policy = PlacementPolicy::ByLoad;
    let old: Vec<f64> = [0.4, 0.3, 0.2, 0.1].repeat(4);
    let new: Vec<f64> = [0.4, 0.1, 0.3, 0.2].repeat(4);
    let mut migrated = Vec::new();
    for pipeline in [
        crate::workload::PipelineKind::OneFOneB,
        crate::workload::PipelineKind::DualPipe,
    ] {
        let mut inp = input(model(4), plan(2, 1, 2, 2, 4), 1);
        inp.placement = Some(Placement::new(policy, 4, 4, 2, &old));
        inp.pipeline = pipeline;
        let k = crate::sim::test_setup::knobs(inp.accelerator.tdp_w, 2, 4);
        let mut m = EventStepModel::new(inp.clone());
        m.set_rebalancing(policy, Some(1));
        assert!(m.count_step(&new));
        let r = m.step(&new, k, true).unwrap();
        let slot = rebalance::slot_bytes(&inp.model, &inp.plan);
        let per_gpu = if pipeline == crate::workload::PipelineKind::DualPipe {
            8.0
        } else {
            4.0
        };
        for x in r.records.iter().filter(|x| x.name == "moe.migrate") {
            assert_eq!(x.bytes, per_gpu * slot, "{pipeline:?} GPU {}", x.gpu);
        }
        migrated.push(r.migrated_bytes);
    }
    assert_eq!(migrated[1], 2.0 * migrated[0], "{migrated:?}");
}
