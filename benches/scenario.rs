//! Whole-scenario speed: the embedded default (seed_comparison.toml), the single-node case, and the carbon-price case beside its grid without a cost table, end to end.

use criterion::{criterion_group, criterion_main, Criterion};
use moesim::Scenario;
use std::path::Path;

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("scenario");
    let seed = match Scenario::default_embedded() {
        Ok(s) => s,
        Err(e) => panic!("default scenario invalid: {e}"),
    };
    g.bench_function("seed_comparison", |b| {
        b.iter(|| {
            moesim::simulate(&seed)
                .map(|r| r.strategies.len())
                .unwrap_or(0)
        })
    });
    let small = match Scenario::from_file(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/single_node.toml"),
    ) {
        Ok(s) => s,
        Err(e) => panic!("single_node.toml invalid: {e}"),
    };
    g.bench_function("single_node", |b| {
        b.iter(|| {
            moesim::simulate(&small)
                .map(|r| r.strategies.len())
                .unwrap_or(0)
        })
    });
    // The [cost] table's price, tax and hints on the real CISO series, beside the same grid without it.
    for name in ["carbon_price", "real_grid_ciso"] {
        let s = match Scenario::from_file(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("scenarios/{name}.toml")),
        ) {
            Ok(s) => s,
            Err(e) => panic!("{name}.toml invalid: {e}"),
        };
        g.bench_function(name, |b| {
            b.iter(|| {
                moesim::simulate(&s)
                    .map(|r| r.strategies.len())
                    .unwrap_or(0)
            })
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
