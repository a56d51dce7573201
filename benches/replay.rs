//! Routing replay throughput: a streamed synthetic router of 64 layers × 64 experts, each step's shares
//! reduced to per-rank loads (the work the step model does before its hardware costs), in expert-count
//! cells per second. Nothing is held in memory beyond one step.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use moesim::routing::{Router, RouterModel};

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
    targets = bench
}
criterion_main!(benches);
