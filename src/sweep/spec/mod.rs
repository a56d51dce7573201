//! The `[sweep]` table: options and parameters read from the scenario file (`parse.rs`), expanded
//! into points — grid, zip or Latin hypercube (`points.rs`).

use crate::scenario::Location;

mod parse;
mod points;
#[cfg(test)]
mod tests;

pub use parse::{parse_spec, MAX_POINTS};

/// How the parameter lists are combined into points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Every combination (cartesian product); the first parameter varies slowest.
    Grid,
    /// The i-th value of every list together; all lists have the same length.
    Zip,
    /// `samples` points of a seeded Latin hypercube over the parameters.
    Lhs,
}

impl Mode {
    /// Every mode with its name in `[sweep] mode`.
    pub const ALL: [(Mode, &'static str); 3] =
        [(Mode::Grid, "grid"), (Mode::Zip, "zip"), (Mode::Lhs, "lhs")];

    /// The name used in scenario files.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(m, _)| *m == self)
            .map_or("?", |(_, n)| n)
    }
}

/// Which random seed each point runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeedMode {
    /// Each point gets its own seed derived from the scenario seed and the point index.
    PerPoint,
    /// Every point runs with the scenario seed (common random numbers across points).
    Shared,
}

/// The values one parameter takes.
#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    /// An explicit list (or a stepped range expanded to a list).
    List(Vec<toml::Value>),
    /// A continuous interval `[from, to]` (only with `mode = "lhs"`); integer ends give integer samples.
    Interval {
        /// Lower end.
        from: f64,
        /// Upper end.
        to: f64,
        /// Whether both ends were integers (samples are then rounded to integers).
        integer: bool,
    },
}

/// One swept parameter: a dotted path into the scenario file and its values.
#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    /// Dotted key path, e.g. `models.moe.experts`.
    pub path: String,
    /// Values it takes.
    pub values: Values,
    /// Where it is written in the scenario file.
    pub at: Location,
}

/// The parsed `[sweep]` table.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepSpec {
    /// How parameters combine.
    pub mode: Mode,
    /// Points to draw with `lhs`.
    pub samples: Option<usize>,
    /// Seed of the Latin hypercube (default: the scenario seed).
    pub lhs_seed: u64,
    /// Seed of each point's simulation.
    pub seeds: SeedMode,
    /// Parameters in file order.
    pub params: Vec<Param>,
}

/// One point of a sweep: its index and the value of every swept parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// Index in the full sweep (0-based); identifies the point across shards and resumes.
    pub index: usize,
    /// `(path, value)` in parameter order.
    pub assignments: Vec<(String, toml::Value)>,
}

impl Point {
    /// `path = value, ...` for messages.
    pub fn describe(&self) -> String {
        self.assignments
            .iter()
            .map(|(p, v)| format!("{p} = {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}
