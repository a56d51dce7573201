//! Expert routing: recorded traces, seeded synthetic routers, and the per-step expert loads they give.

mod synthetic;
mod trace;

pub use synthetic::{Router, RouterModel};
pub use trace::{read_trace, RoutingTrace};

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

/// Load statistics of one layer's expert counts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Imbalance {
    /// Most loaded expert over the mean (1 = balanced).
    pub max_over_mean: f64,
    /// Coefficient of variation of the loads.
    pub cv: f64,
}

/// Imbalance statistics of a slice of expert loads (any unit).
pub fn imbalance(loads: &[f64]) -> Imbalance {
    let n = loads.len().max(1) as f64;
    let mean = loads.iter().sum::<f64>() / n;
    if mean <= 0.0 {
        return Imbalance {
            max_over_mean: 1.0,
            cv: 0.0,
        };
    }
    let max = loads.iter().cloned().fold(0.0, f64::max);
    let var = loads.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
    Imbalance {
        max_over_mean: max / mean,
        cv: var.sqrt() / mean,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn balanced_loads_have_unit_max_over_mean() {
        let s = imbalance(&[5.0; 8]);
        assert_eq!(s.max_over_mean, 1.0);
        assert_eq!(s.cv, 0.0);
        let s = imbalance(&[8.0, 0.0, 0.0, 0.0]);
        assert_eq!(s.max_over_mean, 4.0);
    }
}
