//! Routing replay throughput: a streamed synthetic router of 64 layers × 64 experts, each step's shares
//! reduced to per-rank loads (the work the step model does before its hardware costs), in expert-count
//! cells per second; and a 64 × 64 trace file (binary u16, and wide CSV) replayed from disk the way a
//! run reads it. Nothing is held in memory beyond one step.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use moesim::routing::{
    convert, BinaryHeader, BinaryWriter, Dtype, PastEnd, Router, RouterModel, TraceFile,
    TraceFormat, TraceReplay,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const LAYERS: usize = 64;
const EXPERTS: usize = 64;
const RANKS: usize = 8;

/// Replay `steps` steps; returns a checksum so the work cannot be optimised away.
fn replay(router: &mut Router, steps: u64) -> f64 {
    let mut shares = vec![0.0; LAYERS * EXPERTS];
    let mut check = 0.0;
    for s in 0..steps {
        router.fill_shares(s, 1e6, &mut shares);
        for row in shares.chunks_exact(EXPERTS) {
            let mut worst = 0.0f64;
            for rank in row.chunks_exact(EXPERTS / RANKS) {
                worst = worst.max(rank.iter().sum::<f64>());
            }
            check += worst;
        }
    }
    check
}

/// Steps of the generated trace files (64 × 64 cells each).
const FILE_STEPS: u64 = 2_000;

/// Write (once) a 64 × 64 trace of `FILE_STEPS` steps to target/bench_traces, as binary u16 and wide
/// CSV; counts from a fixed linear congruential sequence (the values do not change the work).
fn trace_files() -> (PathBuf, PathBuf) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench_traces");
    let (bin, csv) = (dir.join("t64x64.moetrace"), dir.join("t64x64.csv"));
    if bin.exists() && csv.exists() {
        return (bin, csv);
    }
    std::fs::create_dir_all(&dir).expect("bench trace dir");
    let header = BinaryHeader {
        steps: FILE_STEPS,
        layers: LAYERS as u32,
        experts: EXPERTS as u32,
        dtype: Dtype::U16,
    };
    let f = std::io::BufWriter::new(std::fs::File::create(&bin).expect("bench trace"));
    let mut w = BinaryWriter::new(f, header).expect("header");
    let mut x: u64 = 1;
    let mut counts = vec![0u32; LAYERS * EXPERTS];
    for _ in 0..FILE_STEPS {
        for c in counts.iter_mut() {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            *c = ((x >> 33) % 4096) as u32;
        }
        w.step(&counts).expect("step");
    }
    w.finish().expect("finish");
    let t = TraceFile::open(&bin).expect("open");
    convert(&t, &csv, TraceFormat::WideCsv).expect("csv");
    (bin, csv)
}

/// Replay every step of `file` through a fresh replay; returns a checksum.
fn replay_file(t: &Arc<TraceFile>) -> f64 {
    let mut r =
        TraceReplay::new(t.clone(), LAYERS, EXPERTS, PastEnd::Loop, false, 0).expect("replay");
    let mut shares = vec![0.0; LAYERS * EXPERTS];
    let mut check = 0.0;
    for s in 0..t.steps as u64 {
        r.fill_shares(s, &mut shares);
        check += shares[s as usize % shares.len()];
    }
    check
}

fn bench_files(c: &mut Criterion) {
    let (bin, csv) = trace_files();
    let mut g = c.benchmark_group("trace_file");
    g.throughput(Throughput::Elements(FILE_STEPS * (LAYERS * EXPERTS) as u64));
    for (name, path) in [("binary_u16", &bin), ("wide_csv", &csv)] {
        let t = Arc::new(TraceFile::open(path).expect("open"));
        g.bench_function(name, |b| b.iter(|| replay_file(&t)));
    }
    g.finish();
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("replay");
    const STEPS: u64 = 2_000;
    g.throughput(Throughput::Elements(STEPS * (LAYERS * EXPERTS) as u64));
    for (name, model) in [
        ("uniform", RouterModel::Uniform),
        (
            "dirichlet_drift",
            RouterModel::Dirichlet {
                alpha: 0.5,
                drift: 0.01,
            },
        ),
    ] {
        g.bench_function(name, |b| {
            let mut r = Router::new(model.clone(), EXPERTS, LAYERS, 1);
            b.iter(|| replay(&mut r, STEPS))
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = bench, bench_files
}
criterion_main!(benches);
