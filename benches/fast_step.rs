//! The fast path's speed goals (issue 16): one step of a 1,024-GPU MoE (16 layers, d_model 4096,
//! 1,024 experts, top-2, expert parallel over all GPUs) priced by `StepModel::step`, and a
//! year-long hourly run of ≥ 10⁷ steps with per-step routing, in blocks and with every step priced.

use criterion::{criterion_group, criterion_main, Criterion};
use moesim::sim::{Knobs, StepModel};
use moesim::Scenario;
use std::path::Path;
use std::time::Instant;

const LAYERS: usize = 16;
const EXPERTS: usize = 1024;

/// The 1,024-GPU MoE of the event-level bench (benches/event_step.rs) as a scenario.
const MOE_1024: &str = r#"
name = "moe_1024"
seed = 1
strategies = ["moe"]
[cluster]
gpu = "h100"
gpus = 1024
gpus_per_node = 8
intra_node_link = "nvlink4"
inter_node_link = "ib-ndr"
pue = 1.2
release_nodes_when_paused = false
[training]
tokens = 1.0e12
global_batch_seqs = 1024
micro_batch_seqs = 1
precision = "bf16"
zero_stage = 1
recompute = false
start = "2024-03-04T00:00:00Z"
overlap_grad_sync = true
[models.moe]
name = "moe-1024"
layers = 16
d_model = 4096
heads = 32
kv_heads = 8
seq_len = 4096
vocab = 32000
ffn_hidden = 14336
experts = 1024
top_k = 2
capacity_factor = "dropless"
expert_ffn_hidden = 1408
[parallel.moe]
dp = 1024
tp = 1
pp = 1
ep = 1024
[routing]
model = "uniform"
[grid]
region = "GB"
source = "profile"
"#;

/// Zipf-like shares (s = 1) over experts, rotated per layer (as the event-level bench routes).
fn zipf_shares() -> Vec<f64> {
    let mut v = Vec::with_capacity(LAYERS * EXPERTS);
    for l in 0..LAYERS {
        let w: Vec<f64> = (0..EXPERTS)
            .map(|e| 1.0 / (1.0 + ((e + 37 * l) % EXPERTS) as f64))
            .collect();
        let s: f64 = w.iter().sum();
        v.extend(w.iter().map(|x| x / s));
    }
    v
}

fn scenario(text: &str, dir: &Path, name: &str) -> Scenario {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write the scenario");
    Scenario::from_file(&path).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// single_node.toml's MoE at a 2,048-sequence batch (≈ 2.4 s a step) for 1.05·10⁷ steps: ~295
/// days of hourly grid intervals, MoE only.
fn year_long(dir: &Path) -> Scenario {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text =
        std::fs::read_to_string(root.join("scenarios/single_node.toml")).expect("single_node.toml");
    let text = text
        .replace(
            r#"strategies = ["dense", "moe", "circadian"]"#,
            r#"strategies = ["moe"]"#,
        )
        .replace("tokens = 1.0e9", "tokens = 2.202e13")
        .replace("global_batch_seqs = 256", "global_batch_seqs = 2048");
    scenario(&text, dir, "year_long.toml")
}

/// CPU time of this process so far (user + system, from /proc/self/stat) [s]; 0 where unreadable.
fn cpu_s() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which ends with ')'): utime and stime are the 12th and 13th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|x| x.parse().ok())
        .collect();
    // Clock ticks of 1/100 s (USER_HZ on Linux).
    f.iter().sum::<f64>() / 100.0
}

/// CPU time of the calling thread (its first `schedstat` field, ns on the CPU) [s]; 0 where unreadable.
fn thread_cpu_s() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |ns| ns * 1e-9)
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let s = scenario(MOE_1024, dir.path(), "moe_1024.toml");
    let job = s.moe.as_ref().expect("the MoE job");
    let mut sm = StepModel::new(job, &s.cluster).expect("step model");
    let knobs: Knobs = sm.full_knobs();
    let shares = zipf_shares();
    let t0 = Instant::now();
    let first = sm.step(&shares, knobs);
    println!(
        "fast step, 1,024-GPU MoE: {:.4} s simulated, first call {:.2} ms (op list priced)",
        first.time_s,
        t0.elapsed().as_secs_f64() * 1e3
    );
    // CPU time of this thread per step (a shared machine inflates criterion's wall times).
    let n = 2000;
    let c0 = thread_cpu_s();
    for _ in 0..n {
        std::hint::black_box(sm.step(&shares, knobs));
    }
    println!(
        "fast step, 1,024-GPU MoE: {:.3} ms of thread CPU a step ({n} steps, memo warm)",
        (thread_cpu_s() - c0) / n as f64 * 1e3
    );
    let mut g = c.benchmark_group("fast_step");
    g.sample_size(10);
    g.bench_function("moe_1024_gpus", |b| {
        b.iter(|| sm.step(&shares, knobs).time_s)
    });
    g.finish();

    // One timed run each (a criterion loop over a 10⁷-step run would take minutes); the per-step
    // run (minutes) only with MOESIM_BENCH_EXACT set.
    let mut year = year_long(dir.path());
    let modes: &[bool] = if std::env::var_os("MOESIM_BENCH_EXACT").is_some() {
        &[false, true]
    } else {
        &[false]
    };
    for &exact in modes {
        year.training.exact = exact;
        let t = Instant::now();
        let cpu0 = cpu_s();
        let r = moesim::simulate(&year).expect("the year-long run");
        let o = &r.strategies[0].outcome;
        println!(
            "year-long hourly run ({}): {} steps over {:.1} days in {:.2} s wall, {:.2} s CPU",
            if exact { "--exact" } else { "blocks" },
            o.sums.steps,
            o.wall_s / 86_400.0,
            t.elapsed().as_secs_f64(),
            cpu_s() - cpu0
        );
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
