//! Joining shard outputs: one `sweep.csv` with every point exactly once, checked against the manifests.

use super::run::{csv_bytes, load_manifest, read_rows, write_manifest, Manifest, Shard, SWEEP_CSV};
use super::SweepError;
use crate::io::write_atomic;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What a merge produced.
#[derive(Debug, Clone)]
pub struct MergeSummary {
    /// Points in the merged sweep.
    pub points: usize,
    /// Rows written.
    pub rows: usize,
    /// Rows with `status = failed`.
    pub failed_rows: usize,
    /// The merged file.
    pub csv: PathBuf,
}

fn list(v: &[usize]) -> String {
    let shown: Vec<String> = v.iter().take(10).map(|i| i.to_string()).collect();
    let more = if v.len() > 10 {
        format!(" and {} more", v.len() - 10)
    } else {
        String::new()
    };
    format!("{}{more}", shown.join(", "))
}

/// Merge the `sweep.csv` of shard folders `dirs` into `out_dir/sweep.csv`: all must come from the same
/// sweep (fingerprint and columns), and every point must be present exactly once.
pub fn merge(dirs: &[PathBuf], out_dir: &Path) -> Result<MergeSummary, SweepError> {
    let Some(first_dir) = dirs.first() else {
        return Err(SweepError::Flag {
            flag: "merge",
            msg: "give at least one shard folder".into(),
        });
    };
    let first = load_manifest(first_dir)?;
    let mut rows: BTreeMap<usize, Vec<Vec<String>>> = BTreeMap::new();
    let mut from: BTreeMap<usize, &PathBuf> = BTreeMap::new();
    let mut shards: Vec<(Shard, &PathBuf)> = Vec::new();
    for dir in dirs {
        let m = load_manifest(dir)?;
        if m.fingerprint != first.fingerprint || m.columns != first.columns {
            return Err(SweepError::Mismatch {
                path: dir.clone(),
                msg: format!(
                    "is from another sweep (`{}`, fingerprint {}) than {} (`{}`, fingerprint {})",
                    m.file,
                    m.fingerprint,
                    first_dir.display(),
                    first.file,
                    first.fingerprint
                ),
            });
        }
        if let Some((_, other)) = shards.iter().find(|(s, _)| *s == m.shard) {
            return Err(SweepError::Mismatch {
                path: dir.clone(),
                msg: format!(
                    "holds shard {}/{}, as does {}",
                    m.shard.index,
                    m.shard.count,
                    other.display()
                ),
            });
        }
        shards.push((m.shard, dir));
        let path = dir.join(SWEEP_CSV);
        let bytes = std::fs::read(&path).map_err(|source| SweepError::Io {
            path: path.clone(),
            source,
        })?;
        let mut it = read_rows(&bytes).into_iter();
        if it.next().as_ref() != Some(&m.columns) {
            return Err(SweepError::Csv {
                path,
                msg: "header differs from the manifest's columns".into(),
            });
        }
        for (line, r) in it.enumerate() {
            let point = match (r.len() == m.columns.len(), r[0].parse::<usize>()) {
                (true, Ok(p)) if p < m.points_total && m.shard.has(p) => p,
                _ => {
                    return Err(SweepError::Csv {
                        path,
                        msg: format!(
                            "row {}: not a row of shard {}/{} (point `{}`, {} fields)",
                            line + 2,
                            m.shard.index,
                            m.shard.count,
                            r[0],
                            r.len()
                        ),
                    })
                }
            };
            match from.get(&point) {
                Some(d) if *d != dir => {
                    return Err(SweepError::Mismatch {
                        path: dir.clone(),
                        msg: format!("point {point} is also in {}", d.display()),
                    })
                }
                _ => {}
            }
            from.insert(point, dir);
            rows.entry(point).or_default().push(r);
        }
    }
    let missing: Vec<usize> = (0..first.points_total)
        .filter(|p| !rows.contains_key(p))
        .collect();
    if !missing.is_empty() {
        let mut by_shard: BTreeMap<String, usize> = BTreeMap::new();
        for p in &missing {
            let s = shards
                .iter()
                .find(|(s, _)| s.has(*p))
                .map_or("no folder given".to_string(), |(s, d)| {
                    format!("shard {}/{} in {}", s.index, s.count, d.display())
                });
            *by_shard.entry(s).or_default() += 1;
        }
        let why: Vec<String> = by_shard
            .iter()
            .map(|(s, n)| format!("{n} from {s}"))
            .collect();
        return Err(SweepError::Mismatch {
            path: out_dir.to_path_buf(),
            msg: format!(
                "{} of {} points are missing (points {}): {}; resume those shards (same command) or give their folders",
                missing.len(),
                first.points_total,
                list(&missing),
                why.join("; ")
            ),
        });
    }
    let status = first
        .columns
        .iter()
        .position(|c| c == "status")
        .unwrap_or(0);
    let n_rows = rows.values().map(|r| r.len()).sum();
    let failed_rows = rows
        .values()
        .flatten()
        .filter(|r| r[status] == "failed")
        .count();
    let csv = out_dir.join(SWEEP_CSV);
    write_atomic(&csv, &csv_bytes(&first.columns, &rows))?;
    write_manifest(
        out_dir,
        &Manifest {
            shard: Shard::ALL,
            ..first.clone()
        },
    )?;
    Ok(MergeSummary {
        points: first.points_total,
        rows: n_rows,
        failed_rows,
        csv,
    })
}
