//! Parameter sweeps: a scenario's `[sweep]` table expanded into points, every point validated before
//! any runs, run in parallel (rayon) with resume, shards for job arrays, and a checked merge.
//!
//! ```no_run
//! let sweep = moesim::sweep::Sweep::from_file(std::path::Path::new("scenarios/sweep_regions.toml")).unwrap();
//! let opts = moesim::sweep::RunOptions::new(std::path::PathBuf::from("outputs/sweep_regions"));
//! let summary = moesim::sweep::run_sweep(&sweep, &opts, &moesim::sweep::Silent).unwrap();
//! println!("{} points run, {} failed", summary.ran, summary.failed);
//! ```

mod merge;
mod metric;
mod progress;
mod run;
mod spec;

pub use merge::{merge, MergeSummary};
pub use metric::Metric;
pub use progress::{BarObserver, Observer, PointDone, Silent};
pub use run::{run_sweep, RunOptions, RunSummary, Shard, MANIFEST_FILE, SWEEP_CSV};
pub use spec::{parse_spec, Mode, Param, Point, SeedMode, SweepSpec, Values, MAX_POINTS};

use crate::scenario::{parse_scenario, Location, Scenario, ScenarioError, StrategyKind};
use std::path::{Path, PathBuf};

/// Why a sweep could not be set up, run or merged.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// The file has no `[sweep]` table.
    #[error("{file}: no [sweep] table; add one, e.g. `[sweep.params]` with `\"grid.region\" = [\"GB\", \"DE\"]` (scenarios/README.md, \"Sweeps\")")]
    NoSweep {
        /// Scenario file.
        file: String,
    },
    /// The `[sweep]` table is invalid.
    #[error("{at}: {msg}")]
    Spec {
        /// Where in the file.
        at: Location,
        /// What is wrong and what would be valid.
        msg: String,
    },
    /// The scenario itself is invalid (independently of the sweep).
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// One point of the sweep gives an invalid scenario.
    #[error("{0}")]
    Point(Box<PointError>),
    /// A path goes through a value that is not a table.
    #[error("{0}")]
    Path(Box<PathError>),
    /// A flag is invalid (`--shard`, `--jobs`).
    #[error("{flag}: {msg}")]
    Flag {
        /// The flag.
        flag: &'static str,
        /// What is wrong and what would be valid.
        msg: String,
    },
    /// Existing outputs belong to another sweep, or shard outputs do not fit together.
    #[error("{path}: {msg}")]
    Mismatch {
        /// File or folder.
        path: PathBuf,
        /// What does not match and what to do.
        msg: String,
    },
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// File or folder.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// An output file could not be written.
    #[error(transparent)]
    Write(#[from] crate::io::WriteError),
    /// A CSV file could not be read.
    #[error("{path}: {msg}")]
    Csv {
        /// File.
        path: PathBuf,
        /// What went wrong.
        msg: String,
    },
    /// The worker pool could not be started.
    #[error("cannot start {threads} worker threads: {msg}")]
    Pool {
        /// Threads asked for.
        threads: usize,
        /// Why not.
        msg: String,
    },
}

/// One point of a sweep gives an invalid scenario.
#[derive(Debug, thiserror::Error)]
#[error("{at}: point {index} of {total} ({assignments}): {msg}")]
pub struct PointError {
    /// Where: the swept parameter responsible, or the key in the base file.
    pub at: Location,
    /// Point index (0-based).
    pub index: usize,
    /// Points in the sweep.
    pub total: usize,
    /// The point's `path = value` list.
    pub assignments: String,
    /// What the scenario validator said.
    pub msg: String,
}

/// A swept path goes through a value that is not a table.
#[derive(Debug, thiserror::Error)]
#[error("{at}: `{path}` cannot be set: `{through}` is a {kind}, not a table")]
pub struct PathError {
    /// The parameter.
    pub at: Location,
    /// The swept path.
    pub path: String,
    /// The prefix that is not a table.
    pub through: String,
    /// Its TOML type.
    pub kind: &'static str,
}

impl SweepError {
    /// Whether the error is bad input (exit code 2) rather than a failed run (exit code 1).
    pub fn is_input_error(&self) -> bool {
        !matches!(
            self,
            SweepError::Io { .. } | SweepError::Write(_) | SweepError::Pool { .. }
        )
    }
}

/// A sweep ready to run: the base scenario document, the parsed `[sweep]` table and its points.
#[derive(Debug, Clone)]
pub struct Sweep {
    /// Scenario name (names the output folder).
    pub name: String,
    /// The scenario file.
    pub file: String,
    /// Folder relative paths in the scenario resolve against.
    pub base_dir: PathBuf,
    /// The scenario seed.
    pub seed: u64,
    /// The `[sweep]` table.
    pub spec: SweepSpec,
    /// Every point, in index order.
    pub points: Vec<Point>,
    /// Strategies of every point (they may be swept), in the order results are reported.
    pub strategies: Vec<Vec<StrategyKind>>,
    /// Hash of the scenario's content (comments and layout aside); outputs of other sweeps are refused.
    pub fingerprint: String,
    base: toml::Table,
    text: String,
}

/// Whether scenario `text` carries a `[sweep]` table (`moesim run` ignores it and says so).
pub fn has_sweep(text: &str) -> bool {
    toml::from_str::<toml::Table>(text)
        .map(|t| t.contains_key("sweep"))
        .unwrap_or(false)
}

/// 64-bit FNV-1a hash (stable across platforms and Rust versions).
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ *b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The seed point `index` runs with: SplitMix64 of the scenario seed and the index, kept below 2⁶³
/// so it is a valid TOML integer.
pub fn point_seed(scenario_seed: u64, index: usize) -> u64 {
    let mut z = scenario_seed.wrapping_add((index as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)) >> 1
}

fn type_name(v: &toml::Value) -> &'static str {
    v.type_str()
}

/// `value` as written in a CSV cell: strings bare, everything else as TOML.
pub fn cell(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl Sweep {
    /// Read a scenario file with a `[sweep]` table and validate every point.
    pub fn from_file(path: &Path) -> Result<Sweep, SweepError> {
        let text = std::fs::read_to_string(path).map_err(|source| {
            SweepError::Scenario(ScenarioError::Io {
                path: path.to_path_buf(),
                source,
            })
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Sweep::parse(&path.display().to_string(), &text, base)
    }

    /// Parse scenario `text` (from `file`, relative paths against `base_dir`) and validate every point:
    /// an unknown path, a value of the wrong type or an invalid combination is an error here, before
    /// anything runs.
    pub fn parse(file: &str, text: &str, base_dir: &Path) -> Result<Sweep, SweepError> {
        // Syntax, unknown keys and types of the base file: reported against the file itself.
        match parse_scenario(file, text, base_dir) {
            Err(ScenarioError::Invalid { at, msg }) if at.key.is_empty() => {
                return Err(ScenarioError::Invalid { at, msg }.into())
            }
            Err(e @ ScenarioError::Io { .. }) => return Err(e.into()),
            _ => {}
        }
        let mut base: toml::Table = toml::from_str(text).map_err(|e| {
            SweepError::Scenario(ScenarioError::Invalid {
                at: Location {
                    file: file.into(),
                    line: 0,
                    col: 0,
                    key: String::new(),
                },
                msg: e.message().to_string(),
            })
        })?;
        base.remove("sweep");
        let seed = base
            .get("seed")
            .and_then(|v| v.as_integer())
            .unwrap_or(0)
            .max(0) as u64;
        let name = base
            .get("name")
            .and_then(|v| v.as_str())
            .unwrap_or("sweep")
            .to_string();
        let spec = parse_spec(file, text, seed)?.ok_or_else(|| SweepError::NoSweep {
            file: file.to_string(),
        })?;
        let points = spec.points();
        let canonical = toml::to_string(&toml::from_str::<toml::Table>(text).unwrap_or_default())
            .unwrap_or_default();
        let mut sweep = Sweep {
            name,
            file: file.to_string(),
            base_dir: base_dir.to_path_buf(),
            seed,
            fingerprint: format!("{:016x}", fnv1a(canonical.as_bytes())),
            spec,
            points,
            strategies: Vec::new(),
            base,
            text: text.to_string(),
        };
        let mut strategies = Vec::with_capacity(sweep.points.len());
        for i in 0..sweep.points.len() {
            strategies.push(sweep.scenario(i)?.strategies);
        }
        sweep.strategies = strategies;
        Ok(sweep)
    }

    /// Points in the sweep.
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// Whether the sweep has no points.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// The seed point `index` runs with.
    pub fn seed_of(&self, index: usize) -> u64 {
        if let Some((_, v)) = self.points[index]
            .assignments
            .iter()
            .find(|(p, _)| p == "seed")
        {
            return v.as_integer().unwrap_or(0).max(0) as u64;
        }
        match self.spec.seeds {
            SeedMode::PerPoint => point_seed(self.seed, index),
            SeedMode::Shared => self.seed,
        }
    }

    fn param_at(&self, path: &str) -> Location {
        self.spec
            .params
            .iter()
            .find(|p| p.path == path)
            .map_or_else(
                || crate::scenario::Locator::new(self.file.clone(), &self.text).at(path),
                |p| p.at.clone(),
            )
    }

    /// The validated scenario of point `index` (its assignments set in a copy of the file, its seed
    /// derived from the scenario seed and the index unless `seeds = "shared"` or `seed` is swept).
    pub fn scenario(&self, index: usize) -> Result<Scenario, SweepError> {
        let point = &self.points[index];
        let mut doc = self.base.clone();
        for (path, value) in &point.assignments {
            set_path(&mut doc, path, value.clone()).map_err(|(through, kind)| {
                SweepError::Path(Box::new(PathError {
                    at: self.param_at(path),
                    path: path.clone(),
                    through,
                    kind,
                }))
            })?;
        }
        doc.insert(
            "seed".into(),
            toml::Value::Integer(self.seed_of(index) as i64),
        );
        let point_err = |at: Location, msg: String| {
            SweepError::Point(Box::new(PointError {
                at,
                index,
                total: self.points.len(),
                assignments: point.describe(),
                msg,
            }))
        };
        let text = toml::to_string(&doc).map_err(|e| {
            point_err(
                self.param_at(""),
                format!("cannot write the point's scenario: {e}"),
            )
        })?;
        parse_scenario(&self.file, &text, &self.base_dir).map_err(|e| match e {
            ScenarioError::Invalid { at, msg } if at.key.is_empty() => {
                // A type or unknown-key error: find the key on the reported line of the point's text;
                // a swept key is located at its `[sweep.params]` entry.
                let key = key_at_line(&text, at.line).unwrap_or_default();
                let loc = if point.assignments.iter().any(|(p, _)| *p == key) {
                    self.param_at(&key)
                } else if let Some((p, _)) = point.assignments.first() {
                    self.param_at(p)
                } else {
                    self.param_at("")
                };
                let msg = if key.is_empty() {
                    msg
                } else {
                    format!("`{key}`: {msg}")
                };
                point_err(loc, msg)
            }
            ScenarioError::Invalid { at, msg } => {
                let swept = point.assignments.iter().any(|(p, _)| *p == at.key);
                let loc = if swept {
                    self.param_at(&at.key)
                } else {
                    crate::scenario::Locator::new(self.file.clone(), &self.text).at(&at.key)
                };
                point_err(loc, format!("`{}`: {msg}", at.key))
            }
            other => SweepError::Scenario(other),
        })
    }

    /// The CSV column names of the swept parameters (their paths), in parameter order.
    pub fn param_columns(&self) -> Vec<String> {
        self.spec.params.iter().map(|p| p.path.clone()).collect()
    }
}

/// The dotted key of the `key = value` on 1-based `line` of a document written by `toml::to_string`
/// (the nearest `[table]` header above it, then the key).
fn key_at_line(text: &str, line: usize) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let here = lines.get(line.checked_sub(1)?)?.trim();
    let key = here.split('=').next()?.trim().trim_matches('"');
    if key.is_empty() || here.starts_with('[') {
        return None;
    }
    let header = lines[..line - 1]
        .iter()
        .rev()
        .map(|l| l.trim())
        .find(|l| l.starts_with('[') && !l.starts_with("[["))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').to_string());
    Some(match header {
        Some(h) => format!("{h}.{key}"),
        None => key.to_string(),
    })
}

/// Set dotted `path` in `doc` to `value`, creating missing tables; on failure returns the prefix that
/// is not a table and its type.
fn set_path(
    doc: &mut toml::Table,
    path: &str,
    value: toml::Value,
) -> Result<(), (String, &'static str)> {
    let parts: Vec<&str> = path.split('.').collect();
    let mut t = doc;
    for (i, part) in parts[..parts.len() - 1].iter().enumerate() {
        let entry = t
            .entry(part.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        let kind = type_name(entry);
        match entry {
            toml::Value::Table(next) => t = next,
            _ => return Err((parts[..=i].join("."), kind)),
        }
    }
    t.insert(parts[parts.len() - 1].to_string(), value);
    Ok(())
}

#[cfg(test)]
mod tests;
