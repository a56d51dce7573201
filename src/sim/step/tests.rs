//! The fast step path over the priced op list: recompute, phases, schedules and overlap.

use super::*;
use crate::scenario::{parse_scenario, Scenario};
use crate::workload::{Recompute, WorkloadError};
use std::path::Path;

fn scenario() -> Scenario {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let text = std::fs::read_to_string(dir.join("single_node.toml")).expect("scenario");
    parse_scenario("single_node.toml", &text, &dir).expect("valid")
}

/// Step time and cost of `edit`ed job (`moe` or dense) with uniform routing.
fn step_of(moe: bool, edit: impl Fn(&mut Job)) -> (StepCost, StepModel) {
    let s = scenario();
    let mut job = if moe { s.moe.clone() } else { s.dense.clone() }.expect("job");
    edit(&mut job);
    let mut sm = StepModel::new(&job, &s.cluster).expect("op list");
    let e = sm.experts();
    let shares = vec![1.0 / e.max(1) as f64; sm.moe_layers() * e];
    let c = sm.step(&shares, sm.full_knobs());
    (c, sm)
}

#[test]
fn selective_recompute_costs_the_attention_core_not_a_forward() {
    let t = |r| step_of(false, |j| j.plan.recompute = r).0.time_s;
    let (none, sel, full) = (
        t(Recompute::None),
        t(Recompute::Selective),
        t(Recompute::Full),
    );
    assert!(none < sel && sel < full, "{none} {sel} {full}");
    // The attention core is well under half of this small model's forward.
    assert!(
        sel - none < 0.5 * (full - none),
        "selective {sel} vs none {none} and full {full}"
    );
}

#[test]
fn backward_takes_about_twice_the_forward() {
    // Matmul backward is two GEMMs per forward GEMM; launch-bound and memory-bound ops are
    // closer to 1:1, so this small dense step sits well under 2 (1.30 here: 1.304 before the
    // SM-activity power term, 1.298 with it, whose extra power lowers the GEMMs' clock a little
    // more in the longer backward). The bounds are the physical range, not this value.
    let (_, sm) = step_of(false, |_| {});
    let (f, b) = sm.last_stage_times();
    let r = b[0] / f[0];
    assert!((1.2..=2.2).contains(&r), "backward/forward {r}");
    // Full recompute repeats the layers' forward (not the embedding, LM head and loss).
    let (_, sm) = step_of(false, |j| j.plan.recompute = Recompute::Full);
    let (f2, b2) = sm.last_stage_times();
    assert!(
        (f2[0] - f[0]).abs() < 1e-12 && b2[0] > b[0] + 0.6 * f[0] && b2[0] < b[0] + f[0],
        "{f2:?} {b2:?}"
    );
}

#[test]
fn overlapped_grad_sync_hides_under_the_last_backward() {
    let (plain, mut sm) = step_of(false, |_| {});
    let (over, _) = step_of(false, |j| j.schedule.overlap_grad_sync = true);
    let (dp, _) = sm.sync_times(sm.full_knobs());
    assert!(dp > 0.0);
    assert!(over.time_s < plain.time_s, "{over:?} {plain:?}");
    assert!(plain.time_s - over.time_s <= dp * (1.0 + 1e-9));
}

#[test]
fn overlapped_all_to_all_shortens_the_moe_step() {
    let (plain, _) = step_of(true, |_| {});
    let (over, _) = step_of(true, |j| j.schedule.overlap_ep_comm = true);
    assert!(plain.comm_s > 0.0);
    assert!(over.time_s < plain.time_s);
    // Megatron-LM's combined 1F1B leaves micro-batch 0's forward and the last backward
    // unhidden: at most the all-to-alls of m - 1 forward/backward pairs are saved.
    let m = f64::from(step_of(true, |_| {}).1.full_knobs().micro_batches);
    assert!(plain.time_s - over.time_s < plain.comm_s * (m - 1.0) / m);
    // Energy follows: less waiting at spin power.
    assert!(over.waiting_energy_j < plain.waiting_energy_j);
}

#[test]
fn interleaving_shrinks_the_bubble_and_uneven_stages_run() {
    let pp = |pp: u32, v: u32| {
        step_of(false, move |j| {
            j.plan.dp = 2;
            j.plan.pp = pp;
            j.schedule.virtual_stages = v;
        })
    };
    let (one, _) = pp(4, 1);
    let (three, _) = pp(4, 3);
    assert!(three.time_s < one.time_s, "{three:?} {one:?}");
    // 12 layers on 5 stages: 3, 3, 2, 2, 2; the first stage (with the embedding) is the slowest.
    let (_, sm) = pp(5, 1);
    let (f, b) = sm.last_stage_times();
    assert_eq!(f.len(), 5);
    assert!(f[0] + b[0] > f[2] + b[2], "{f:?} {b:?}");
}

#[test]
fn a_batch_that_does_not_divide_is_an_error_from_new() {
    let s = scenario();
    let mut job = s.moe.clone().expect("moe");
    job.plan.global_batch_seqs = 100;
    let e = StepModel::new(&job, &s.cluster).expect_err("accepted");
    assert!(matches!(e, WorkloadError::BatchNotDivisible { .. }), "{e}");
}

#[test]
fn the_op_list_at_other_knobs_is_built_at_those_knobs() {
    // `ops_at` builds the list at the knobs' top-k (no fallback to the nominal list).
    let (_, sm) = step_of(true, |_| {});
    let mut k = sm.full_knobs();
    let nominal = sm.ops_at(k);
    k.top_k = 1;
    let top1 = sm.ops_at(k);
    let bytes = |o: &StepOps| {
        o.stages[0]
            .forward
            .iter()
            .filter(|x| x.name.starts_with("moe.dispatch"))
            .filter_map(|x| x.comm.map(|c| c.bytes_per_rank))
            .sum::<f64>()
    };
    assert!(bytes(&nominal) > 0.0);
    assert!(
        bytes(&top1) < bytes(&nominal),
        "{} vs {}",
        bytes(&top1),
        bytes(&nominal)
    );
}

#[test]
fn routed_ops_follow_the_routing_loads() {
    let s = scenario();
    let job = s.moe.clone().expect("moe");
    let mut sm = StepModel::new(&job, &s.cluster).expect("op list");
    let e = sm.experts();
    let k = sm.full_knobs();
    let even = vec![1.0 / e as f64; sm.moe_layers() * e];
    let mut hot = even.clone();
    for row in hot.chunks_mut(e) {
        row.fill(0.5 / (e - 1) as f64);
        row[0] = 0.5;
    }
    let a = sm.step(&even, k);
    let b = sm.step(&hot, k);
    assert!(
        b.time_s > a.time_s && b.straggler_s > a.straggler_s,
        "{a:?} {b:?}"
    );
    assert!(a.straggler_s < 1e-9 * a.time_s, "{a:?}");
}

#[test]
fn the_phase_split_tiles_the_step_in_time_and_gpu_energy() {
    for moe in [true, false] {
        let (c, sm) = step_of(moe, |_| {});
        let p = c.phases;
        assert!(p.is_split());
        let t: f64 = p.time_s.iter().sum();
        let e: f64 = p.gpu_j.iter().sum();
        assert!(
            (t - c.time_s).abs() <= 1e-12 * c.time_s,
            "{t} vs {}",
            c.time_s
        );
        assert!(
            (e - c.gpu_energy_j).abs() <= 1e-9 * c.gpu_energy_j,
            "{e} vs {}",
            c.gpu_energy_j
        );
        // No phase draws below idle, none above the job's TDP.
        let gpus = sm.gpus() as f64;
        let acc = &scenario().cluster.accelerator;
        for i in 0..PHASES {
            if p.time_s[i] > 0.0 {
                let w = p.gpu_j[i] / p.time_s[i];
                assert!(
                    w >= gpus * acc.idle_w * (1.0 - 1e-9),
                    "{moe} phase {i}: {w} W"
                );
                assert!(
                    w <= gpus * acc.tdp_w * (1.0 + 1e-9),
                    "{moe} phase {i}: {w} W"
                );
            }
        }
        // The gradient sync and optimizer are phases of their own.
        assert!(p.time_s[3] > 0.0, "no optimizer phase");
    }
}

/// `overlap_param_gather`: the distributed optimizer's all-gathers run under the next forward,
/// bucket by bucket; the step keeps at least the first bucket and never more than all of them.
#[test]
fn overlapped_param_gather_leaves_the_first_bucket_on_the_step() {
    let (off, mut sm) = step_of(false, |_| {});
    let fi = sm.fixed(sm.full_knobs());
    let (gather, layers) = (sm.cache[fi].param_gather_s, sm.model.layers as f64);
    assert!(gather > 0.0, "ZeRO 1 over dp 8 gathers the parameters");
    let (on, _) = step_of(false, |j| j.schedule.overlap_param_gather = true);
    let saved = off.time_s - on.time_s;
    assert!(
        saved > 0.0 && saved <= gather * (1.0 - 1.0 / layers) + 1e-12,
        "saved {saved} of a {gather} s gather over {layers} layers"
    );
    // The small one-node model's forward per layer outlasts a bucket's gather: only the first
    // bucket shows.
    assert!((saved - gather * (1.0 - 1.0 / layers)).abs() < 1e-9 * off.time_s.max(1.0));
    assert!(on.comm_s < off.comm_s);
}

/// The event level runs `overlap_param_gather` too (its buckets on a side stream under the first
/// forward): it takes the scenario and hides the gathers as the fast path does.
#[test]
fn the_event_level_hides_overlapped_param_gathers_too() {
    use crate::sim::event_step::{EventStepInput, EventStepModel};
    let s = scenario();
    let time = |on: bool| {
        let mut job = s.dense.clone().expect("job");
        job.schedule.overlap_param_gather = on;
        let mut sm = StepModel::new(&job, &s.cluster).expect("op list");
        let knobs = sm.full_knobs();
        let fast = sm.step(&[], knobs).time_s;
        let mut ev = EventStepModel::new(EventStepInput::from_job(&job, &s.cluster));
        let event = ev
            .step(&[], knobs, false)
            .expect("the event level runs it")
            .time_s;
        (fast, event)
    };
    let ((fast_off, ev_off), (fast_on, ev_on)) = (time(false), time(true));
    let (saved_fast, saved_ev) = (fast_off - fast_on, ev_off - ev_on);
    assert!(saved_ev > 0.0, "{ev_off} -> {ev_on}");
    assert!(
        (saved_ev - saved_fast).abs() <= 0.02 * fast_off,
        "saved {saved_ev} s at event level, {saved_fast} s on the fast path"
    );
}
