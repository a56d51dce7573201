//! A watched run reports every strategy's progress once per grid interval, ending at all its work.

use moesim::progress::{Progress, ProgressSink};
use moesim::Scenario;
use std::path::Path;
use std::sync::Mutex;

#[derive(Default)]
struct Log {
    updates: Mutex<Vec<(usize, f64, f64, u64)>>,
    finished: Mutex<Vec<usize>>,
}

impl ProgressSink for Log {
    fn update(&self, p: &Progress<'_>) {
        if let Ok(mut u) = self.updates.lock() {
            u.push((p.task, p.done, p.simulated_s, p.steps));
        }
    }
    fn finish(&self, task: usize) {
        if let Ok(mut f) = self.finished.lock() {
            f.push(task);
        }
    }
}

#[test]
fn each_strategy_reports_monotone_progress_to_done_and_finishes() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/single_node.toml");
    let s = Scenario::from_file(&path).expect("single_node parses");
    let log = Log::default();
    let watched = moesim::simulate_with(&s, &log).expect("runs");
    let updates = log.updates.into_inner().expect("lock");
    let mut finished = log.finished.into_inner().expect("lock");
    finished.sort_unstable();
    assert_eq!(finished, (0..s.strategies.len()).collect::<Vec<_>>());
    for task in 0..s.strategies.len() {
        let mine: Vec<_> = updates.iter().filter(|u| u.0 == task).collect();
        assert!(mine.len() >= 2, "task {task}: {} updates", mine.len());
        for w in mine.windows(2) {
            assert!(
                w[1].1 >= w[0].1 && w[1].2 >= w[0].2 && w[1].3 >= w[0].3,
                "{w:?}"
            );
        }
        let last = mine.last().expect("an update");
        assert!(last.1 >= 0.999, "task {task} ended at {}", last.1);
    }
    // Watching changes nothing in the results.
    let plain = moesim::simulate(&s).expect("runs");
    for (a, b) in watched.strategies.iter().zip(&plain.strategies) {
        assert_eq!(
            a.outcome.totals.facility_j.to_bits(),
            b.outcome.totals.facility_j.to_bits()
        );
    }
}
