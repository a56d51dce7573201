//! Training strategies (`dense`, `moe`, `circadian`) and the per-interval decisions they make.

mod circadian;

pub use circadian::{setup, CircadianPolicy, Rates};

/// What the job does during a grid interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Mode {
    /// Full speed: nominal batch, top-k and power limit.
    Full,
    /// Throttled knobs: lower top-k and/or power cap and/or smaller batch.
    Throttled,
    /// Paused after a checkpoint.
    Paused,
}

impl Mode {
    /// Name used in outputs.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Full => "full",
            Mode::Throttled => "throttled",
            Mode::Paused => "paused",
        }
    }
}

/// Progress of a run when a decision is taken.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    /// Tokens still to train.
    pub tokens_left: f64,
    /// Whether the job is paused right now (resuming costs a restore).
    pub paused: bool,
}

/// A strategy's policy: picks the mode of each grid interval as it starts.
#[derive(Debug, Clone)]
pub enum Policy {
    /// Always full speed (`dense` and `moe`).
    AlwaysFull,
    /// The grid-aware schedule.
    Circadian(Box<CircadianPolicy>),
    /// A fixed mode per grid interval (the last repeats): run-level tests of mode changes.
    #[cfg(test)]
    Scripted(Vec<Mode>),
}

impl Policy {
    /// Mode for interval `i` (index into the grid series) given the run's progress.
    pub fn decide(&mut self, i: usize, progress: Progress) -> Mode {
        match self {
            Policy::AlwaysFull => Mode::Full,
            Policy::Circadian(c) => c.decide(i, progress),
            #[cfg(test)]
            Policy::Scripted(m) => m.get(i).or(m.last()).copied().unwrap_or(Mode::Full),
        }
    }
}
