//! Expert routing: recorded traces (read, replay, map), seeded synthetic routers, load statistics.

mod placement;
mod replay;
mod spec;
mod stats;
mod synth;
mod synthetic;
mod trace;

pub use placement::{Placement, PlacementPolicy};
pub use replay::{PastEnd, TraceReplay};
pub use spec::{RouterKind, RoutingChoice, RoutingSource, RoutingSpec};
pub use stats::{imbalance, stats_text, trace_stats, Imbalance, TraceStats};
pub use synth::{synth_trace, synthesize, SynthError, SynthSpec, DEFAULT_SAMPLE_TOKENS};
pub use synthetic::{Collapse, Router, RouterModel};
pub use trace::{read_trace, write_wide, RoutingTrace, TraceLayout};

use std::path::PathBuf;

/// Errors reading or using routing traces.
#[derive(Debug, thiserror::Error)]
pub enum RoutingError {
    /// The trace file could not be opened or read.
    #[error("{path}: cannot read routing trace: {source}")]
    Io {
        /// Trace file.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// A row of the trace is malformed.
    #[error("{path}: row {row}: {msg}")]
    Row {
        /// Trace file.
        path: PathBuf,
        /// 1-based line number in the file (the header is line 1).
        row: u64,
        /// What is wrong and what would be valid.
        msg: String,
    },
    /// The trace as a whole does not fit the model or is empty.
    #[error("{path}: {msg}")]
    Shape {
        /// Trace file.
        path: PathBuf,
        /// What is wrong and what would be valid.
        msg: String,
    },
}
