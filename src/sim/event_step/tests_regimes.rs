//! Where the fast path is optimistic: the fast step model against the event level on a 32-GPU
//! MoE step as the fabric's oversubscription and the routing's skew grow (the README's table).

use super::*;
use crate::hardware::preset;
use crate::network::{FatTree, Topology};
use crate::routing::PlacementPolicy;
use crate::sim::step::StepModel;
use crate::workload::step_ops::{ExpertKernel, OptimizerKind, RouterKernel};
use crate::workload::{Arch, FfnKind, MoeSpec, Precision, Recompute, Schedule};

const EXPERTS: usize = 32;
const LAYERS: u32 = 2;

/// A 32-GPU job (4 nodes of 8 H100s, EP over all 32) on a fat-tree of radix-4 leaves at
/// oversubscription `o` (2-3 nodes per leaf group, so much of the all-to-all crosses leaves).
fn job_and_cluster(o: f64) -> (Job, Cluster) {
    let model = ModelSpec {
        name: "regimes".into(),
        layers: LAYERS,
        d_model: 2048,
        heads: 16,
        kv_heads: 8,
        seq_len: 2048,
        vocab: 32000,
        ffn_hidden: 8192,
        ffn: FfnKind::Moe(MoeSpec {
            experts: EXPERTS as u32,
            top_k: 2,
            capacity_factor: None,
            expert_ffn_hidden: 1408,
            shared_experts: 0,
            moe_every: 1,
        }),
        arch: Arch::default(),
    };
    let plan = ParallelPlan {
        dp: 32,
        tp: 1,
        pp: 1,
        ep: 32,
        micro_batch_seqs: 1,
        global_batch_seqs: 64,
        zero_stage: 1,
        recompute: Recompute::None,
        precision: Precision::Bf16,
    };
    let mut fabric = Fabric::from_presets("nvlink4", "ib-ndr", 8, 4).unwrap();
    fabric.oversubscription = o;
    fabric.topology = Topology::FatTree(FatTree { radix: 4 });
    let accelerator = preset("h100").unwrap();
    let cluster = Cluster {
        power_cap_w: accelerator.tdp_w,
        accelerator,
        gpus: 32,
        gpus_per_node: 8,
        fabric,
        pue: 1.0,
        release_nodes_when_paused: false,
        node_overhead_w: 0.0,
        weather_pue: None,
    };
    let job = Job {
        model,
        plan,
        expert_kernel: ExpertKernel::default(),
        router_kernel: RouterKernel::default(),
        optimizer: OptimizerKind::default(),
        sequence_parallel: true,
        attention_kernel: Default::default(),
        framework: Default::default(),
        fp8_recipe: Default::default(),
        grad_reduce_dtype: None,
        schedule: Schedule {
            virtual_stages: 1,
            overlap_ep_comm: false,
            overlap_grad_sync: true,
            ..Schedule::default()
        },
    };
    (job, cluster)
}

/// Shares with one hot expert (expert 0) taking `hot` of every layer's assignments.
fn hot_expert(hot: f64) -> Vec<f64> {
    let rest = (1.0 - hot) / (EXPERTS - 1) as f64;
    (0..LAYERS as usize * EXPERTS)
        .map(|i| if i % EXPERTS == 0 { hot } else { rest })
        .collect()
}

/// (fast path [s], event level [s]) of one step.
fn both(o: f64, shares: &[f64]) -> (f64, f64) {
    let (job, cluster) = job_and_cluster(o);
    let mut fast = StepModel::new(&job, &cluster).unwrap();
    let knobs = fast.full_knobs();
    fast.set_routing(
        RoutingChoice::TokenChoice,
        PlacementPolicy::Contiguous,
        None,
        shares,
    );
    let f = fast.step(shares, knobs).time_s;
    let e = event_step(
        &EventStepInput::from_job(&job, &cluster),
        shares,
        knobs,
        false,
    )
    .unwrap()
    .time_s;
    (f, e)
}

#[test]
fn the_event_level_step_slows_with_oversubscription_and_skew_and_the_fast_path_error_is_shown() {
    // Why: the README states by how much the fast path is optimistic per regime; these are the
    // figures (printed), and the event level must respond to both causes in the right sense.
    let mut rows = Vec::new();
    for o in [1.0, 2.0, 4.0] {
        let mut last = 0.0;
        for hot in [1.0 / EXPERTS as f64, 0.1, 0.3] {
            let (f, e) = both(o, &hot_expert(hot));
            assert!(
                e >= last * (1.0 - 1e-9),
                "o {o}: a hotter expert made the step faster ({e} < {last})"
            );
            last = e;
            rows.push((o, hot, f, e));
        }
    }
    println!("oversubscription  hot share  fast [ms]  event [ms]  fast error");
    for &(o, hot, f, e) in &rows {
        println!(
            "{o:>16}  {hot:>9.3}  {:>9.3}  {:>10.3}  {:>+9.1} %",
            f * 1e3,
            e * 1e3,
            100.0 * (f / e - 1.0)
        );
    }
    for hot_i in 0..3 {
        let at = |oi: usize| rows[oi * 3 + hot_i].3;
        assert!(
            at(1) >= at(0) * (1.0 - 1e-9) && at(2) >= at(1) * (1.0 - 1e-9),
            "more oversubscription, no slower step: {rows:?}"
        );
    }
    // Balanced routing on a full-bisection fabric: the two models agree (no contention at the
    // up-links, none modelled).
    let (f, e) = (rows[0].2, rows[0].3);
    assert!(
        (f / e - 1.0).abs() < 0.05,
        "balanced, 1:1: fast {f} vs event {e}"
    );
}
