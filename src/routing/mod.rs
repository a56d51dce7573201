//! Expert routing: recorded traces (CSV or binary, streamed, replayed, mapped), seeded synthetic routers,
//! load statistics.

mod placement;
mod replay;
mod spec;
mod spread;
mod stats;
mod synth;
mod synthetic;
mod trace;
mod trace_bin;
mod trace_convert;
mod trace_csv;
mod trace_file;
mod trace_long;
mod trace_spill;

pub use placement::{Placement, PlacementPolicy};
pub use replay::{PastEnd, TraceReplay};
pub use spec::{RouterKind, RoutingChoice, RoutingSource, RoutingSpec};
pub use spread::{
    cached_pair_max_factor, expected_pair_max, pair_max_factor, SpreadSpec, SPREAD_DRAWS,
};
pub use stats::{imbalance, stats_text, trace_stats, Imbalance, TraceStats};
pub use synth::{synth_trace, synthesize, SynthError, SynthSpec, DEFAULT_SAMPLE_TOKENS};
pub use synthetic::{Collapse, Router, RouterModel};
pub use trace::{read_trace, write_wide, RoutingTrace, TraceLayout};
pub use trace_bin::{BinaryWriter, Dtype, Header as BinaryHeader};
pub use trace_convert::{convert, output_format, ConvertError, TraceFormat};
pub use trace_file::{TraceCursor, TraceFile};

/// The binary trace format's constants (magic, version, header length, extension).
pub mod binary {
    pub use super::trace_bin::{EXTENSION, HEADER_BYTES, MAGIC, VERSION};
}

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
    /// Bytes at an offset of the file are wrong (a binary header or a truncated file), or a step read
    /// during a run no longer matches what was checked at its start.
    #[error("{path}: byte {offset}: {msg}")]
    Offset {
        /// Trace file.
        path: PathBuf,
        /// Byte offset in the file.
        offset: u64,
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

impl RoutingError {
    /// A copy (an I/O error keeps its kind and message), for a replay that is cloned after it failed.
    pub fn duplicate(&self) -> RoutingError {
        match self {
            RoutingError::Io { path, source } => RoutingError::Io {
                path: path.clone(),
                source: std::io::Error::new(source.kind(), source.to_string()),
            },
            RoutingError::Row { path, row, msg } => RoutingError::Row {
                path: path.clone(),
                row: *row,
                msg: msg.clone(),
            },
            RoutingError::Offset { path, offset, msg } => RoutingError::Offset {
                path: path.clone(),
                offset: *offset,
                msg: msg.clone(),
            },
            RoutingError::Shape { path, msg } => RoutingError::Shape {
                path: path.clone(),
                msg: msg.clone(),
            },
        }
    }
}

#[cfg(test)]
mod trace_tests;
