//! Progress of a long simulation, reported to an observer (the CLI draws bars from it; the library draws nothing).

/// Where one task (one strategy's run, or one validation case) stands.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress<'a> {
    /// Index of the task among those started together (strategies run in parallel, so updates of
    /// different tasks interleave).
    pub task: usize,
    /// Number of tasks started together.
    pub tasks: usize,
    /// The task's name, e.g. `circadian` or a validation case.
    pub name: &'a str,
    /// Share of the task's work done, in [0, 1] (tokens trained over tokens to train).
    pub done: f64,
    /// Simulated wall-clock time since the run's start [s].
    pub simulated_s: f64,
    /// Optimizer steps simulated so far.
    pub steps: u64,
}

/// Receives progress updates. Called from the simulation's worker threads, hence `Sync`; it should
/// return quickly (the simulation calls it at most once per grid interval of each task).
pub trait ProgressSink: Sync {
    /// One task's progress changed.
    fn update(&self, p: &Progress<'_>);
    /// Task `task` is finished (successfully or not).
    fn finish(&self, task: usize) {
        let _ = task;
    }
}

/// A sink that ignores every update (library callers that do not watch).
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl ProgressSink for Silent {
    fn update(&self, _: &Progress<'_>) {}
}

/// Any `Fn(&Progress)` closure that is `Sync` is a sink.
impl<F: Fn(&Progress<'_>) + Sync> ProgressSink for F {
    fn update(&self, p: &Progress<'_>) {
        self(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    // A closure is a sink: the CLI and tests need no struct to watch a run.
    #[test]
    fn a_closure_receives_the_updates() {
        let seen = Mutex::new(Vec::new());
        let sink = |p: &Progress<'_>| seen.lock().unwrap().push((p.task, p.done));
        let s: &dyn ProgressSink = &sink;
        for (task, done) in [(0, 0.5), (1, 1.0)] {
            s.update(&Progress {
                task,
                tasks: 2,
                name: "moe",
                done,
                simulated_s: 3600.0,
                steps: 10,
            });
        }
        s.finish(1);
        Silent.update(&Progress {
            task: 0,
            tasks: 1,
            name: "x",
            done: 0.0,
            simulated_s: 0.0,
            steps: 0,
        });
        assert_eq!(*seen.lock().unwrap(), vec![(0, 0.5), (1, 1.0)]);
    }
}
