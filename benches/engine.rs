//! Engine throughput: events handled per second by the discrete-event core.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use moesim::engine::{EngineError, Handler, SimTime, Simulation};

/// A model that keeps `width` events in flight, each rescheduling itself until `left` runs out.
struct Churn {
    left: u64,
}

impl Handler<u32> for Churn {
    type Error = EngineError;
    fn handle(
        &mut self,
        now: SimTime,
        ev: u32,
        out: &mut Vec<(SimTime, u32)>,
    ) -> Result<(), EngineError> {
        if self.left > 0 {
            self.left -= 1;
            out.push((now + SimTime::from_nanos(1 + (ev as u64 * 7919) % 1000), ev));
        }
        Ok(())
    }
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("engine");
    const EVENTS: u64 = 1_000_000;
    for width in [16u32, 1024] {
        g.throughput(Throughput::Elements(EVENTS));
        g.bench_with_input(BenchmarkId::new("events", width), &width, |b, &width| {
            b.iter(|| {
                let mut sim = Simulation::new();
                for i in 0..width {
                    let _ = sim.schedule(SimTime::from_nanos(i as u64), i);
                }
                let mut m = Churn {
                    left: EVENTS - width as u64,
                };
                sim.run(&mut m).map(|s| s.events).unwrap_or(0)
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
