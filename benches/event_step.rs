//! One event-level step of a 1,024-GPU MoE (16 layers, d_model 4096, 1,024 experts, top-2, EP over
//! all GPUs, H100 nodes of 8 on NDR InfiniBand): the comparison point with ASTRA-sim's
//! message-level simulation of such a step. Prints the engine's events per second once, and one
//! step's wall time at 64, 128 and 256 nodes (node-aggregate all-to-alls; node-pair flows at 64
//! nodes for comparison).

use criterion::{criterion_group, criterion_main, Criterion};
use moesim::hardware::preset;
use moesim::network::Fabric;
use moesim::scenario::RoutingChoice;
use moesim::sim::event_step::{EventStepInput, EventStepModel, Overlap};
use moesim::sim::Knobs;
use moesim::workload::step_ops::OpsConfig;
use moesim::workload::{presets, FfnKind, ModelSpec, MoeSpec, ParallelPlan, Precision, Recompute};
use std::time::Instant;

const GPUS: u32 = 1024;
const LAYERS: u32 = 16;

/// The MoE above on `gpus` GPUs (8 per node), one expert per GPU: Mixtral 8x7B's attention,
/// width and vocabulary over 16 layers of `gpus` small experts.
fn input_on(gpus: u32) -> EventStepInput {
    let model = ModelSpec {
        name: "moe-1024".into(),
        layers: LAYERS,
        ffn: FfnKind::Moe(MoeSpec {
            experts: gpus,
            top_k: 2,
            capacity_factor: None,
            expert_ffn_hidden: 1408,
            shared_experts: 0,
            moe_every: 1,
        }),
        ..presets::mixtral_8x7b()
    };
    let plan = ParallelPlan {
        dp: gpus,
        tp: 1,
        pp: 1,
        ep: gpus,
        micro_batch_seqs: 1,
        global_batch_seqs: gpus,
        zero_stage: 1,
        recompute: Recompute::None,
        precision: Precision::Bf16,
    };
    EventStepInput {
        model,
        plan,
        ops_config: OpsConfig::default(),
        accelerator: preset("h100").expect("h100 preset"),
        fabric: Fabric::from_presets("nvlink4", "ib-ndr", 8, gpus / 8).expect("fabric"),
        gpus_per_node: 8,
        choice: RoutingChoice::TokenChoice,
        placement: None,
        overlap: Overlap {
            grad_sync: true,
            ..Overlap::default()
        },
        virtual_stages: 1,
        pipeline: moesim::workload::PipelineKind::OneFOneB,
        pad_spread: Vec::new(),
    }
}

fn input() -> EventStepInput {
    input_on(GPUS)
}

/// Zipf-like shares (s = 1) over `experts`, rotated per layer: a skewed but deterministic
/// routing.
fn shares_on(experts: u32) -> Vec<f64> {
    let mut v = Vec::with_capacity((LAYERS * experts) as usize);
    for l in 0..LAYERS {
        let w: Vec<f64> = (0..experts)
            .map(|e| 1.0 / (1.0 + ((e + 37 * l) % experts) as f64))
            .collect();
        let s: f64 = w.iter().sum();
        v.extend(w.iter().map(|x| x / s));
    }
    v
}

fn shares() -> Vec<f64> {
    shares_on(GPUS)
}

/// CPU time of the calling thread (its first `schedstat` field, ns on the CPU) [s]; 0 where
/// unreadable.
fn thread_cpu_s() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |ns| ns * 1e-9)
}

/// One step (after one that builds the op lists) at 64, 128 and 256 nodes: wall time, events,
/// simulated step time; and at 64 nodes with node-pair flows (the model the aggregates replace).
fn scale() {
    for (nodes, node_pairs) in [(64, false), (64, true), (128, false), (256, false)] {
        let inp = input_on(8 * nodes);
        let knobs = knobs_of(&inp);
        let sh = shares_on(8 * nodes);
        let mut m = EventStepModel::new(inp);
        if node_pairs {
            m.set_node_pair_max_nodes(nodes);
        }
        m.step(&sh, knobs, false).expect("step");
        let (t, c0) = (Instant::now(), thread_cpu_s());
        let r = m.step(&sh, knobs, false).expect("step");
        let (wall, cpu) = (t.elapsed().as_secs_f64(), thread_cpu_s() - c0);
        println!(
            "event_step scale: {nodes} nodes ({} GPUs), {}: {cpu:.3} s thread CPU ({wall:.3} s wall), {} events, step {:.6} s simulated, energy {:.6e} J",
            8 * nodes,
            if node_pairs { "node-pair flows" } else { "node aggregates" },
            r.events,
            r.time_s,
            r.gpu_energy_j
        );
    }
}

/// Full-speed knobs of the benched MoE (top-2, one micro-batch per step, uncapped).
fn knobs_of(inp: &EventStepInput) -> Knobs {
    Knobs {
        power_limit_w: inp.accelerator.tdp_w,
        top_k: 2,
        micro_batches: 1,
        capacity_factor: None,
        active_experts: None,
    }
}

fn bench(c: &mut Criterion) {
    if std::env::var_os("MOESIM_BENCH_SCALE").is_some() {
        scale();
    }
    let inp = input();
    let knobs = knobs_of(&inp);
    let sh = shares();
    let mut m = EventStepModel::new(inp.clone());
    let t0 = Instant::now();
    let r = m.step(&sh, knobs, false).expect("step");
    let first = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let r2 = m.step(&sh, knobs, false).expect("step");
    let again = t1.elapsed().as_secs_f64();
    assert_eq!(r.events, r2.events);
    println!(
        "event_step 1024-GPU MoE: step {:.4} s simulated, {} events, first step {:.3} s (op lists built), next {:.3} s wall = {:.2e} events/s",
        r.time_s,
        r.events,
        first,
        again,
        r.events as f64 / again
    );
    let mut g = c.benchmark_group("event_step");
    g.sample_size(10);
    g.bench_function("moe_1024_gpus", |b| {
        b.iter(|| m.step(&sh, knobs, false).expect("step").time_s)
    });
    g.bench_function("moe_1024_gpus_cold", |b| {
        b.iter(|| {
            moesim::sim::event_step::event_step(&inp, &sh, knobs, false)
                .expect("step")
                .time_s
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
