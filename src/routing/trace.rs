//! Routing traces recorded from real MoE training: wide CSV `step,layer,e0..eN` (assignments per expert).

use super::RoutingError;
use std::path::Path;

/// A routing trace held as assignment counts, step-major then layer then expert.
#[derive(Debug, Clone)]
pub struct RoutingTrace {
    /// Experts per layer.
    pub experts: usize,
    /// Layers recorded per step.
    pub layers: usize,
    /// Steps recorded.
    pub steps: usize,
    /// Where it came from (file path).
    pub source: String,
    counts: Vec<u32>,
}

impl RoutingTrace {
    /// Counts of one step (0-based) and layer, one per expert.
    pub fn counts(&self, step: usize, layer: usize) -> &[u32] {
        let base = (step * self.layers + layer) * self.experts;
        &self.counts[base..base + self.experts]
    }
}

/// Read a wide routing CSV (`step,layer,e0,...,e{N-1}`); steps must be 1-based and contiguous, and
/// every step must list every layer once, in order.
pub fn read_trace(path: &Path) -> Result<RoutingTrace, RoutingError> {
    let p = path.to_path_buf();
    let file = std::fs::File::open(path).map_err(|source| RoutingError::Io {
        path: p.clone(),
        source,
    })?;
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(file);
    let headers = rdr
        .headers()
        .map_err(|e| RoutingError::Row {
            path: p.clone(),
            row: 1,
            msg: format!("cannot read header: {e}"),
        })?
        .clone();
    let names: Vec<String> = headers
        .iter()
        .map(|h| h.trim().trim_start_matches('\u{feff}').to_ascii_lowercase())
        .collect();
    if names.len() < 3 || names[0] != "step" || names[1] != "layer" {
        return Err(RoutingError::Row {
            path: p,
            row: 1,
            msg: format!(
                "header must be `step,layer,e0,e1,...`; found `{}`",
                names.join(",")
            ),
        });
    }
    for (i, n) in names[2..].iter().enumerate() {
        if *n != format!("e{i}") {
            return Err(RoutingError::Row {
                path: p,
                row: 1,
                msg: format!(
                    "column {} is `{n}`, expected `e{i}` (expert columns must be e0..eN in order)",
                    i + 3
                ),
            });
        }
    }
    let experts = names.len() - 2;
    let mut counts = Vec::new();
    let mut layers: Option<usize> = None;
    let (mut cur_step, mut cur_layer_count) = (0u64, 0usize);
    let mut steps = 0usize;
    for (i, rec) in rdr.records().enumerate() {
        let row = i as u64 + 2;
        let rec = rec.map_err(|e| RoutingError::Row {
            path: p.clone(),
            row,
            msg: e.to_string(),
        })?;
        if rec.len() != experts + 2 {
            return Err(RoutingError::Row {
                path: p,
                row,
                msg: format!(
                    "has {} fields, expected {} (step, layer and {experts} experts)",
                    rec.len(),
                    experts + 2
                ),
            });
        }
        let int = |j: usize, what: &str| -> Result<u64, RoutingError> {
            let s = rec[j].trim();
            s.parse::<u64>().map_err(|_| RoutingError::Row {
                path: p.clone(),
                row,
                msg: format!("{what} `{s}` is not a non-negative integer"),
            })
        };
        let step = int(0, "step")?;
        let layer = int(1, "layer")? as usize;
        if step != cur_step {
            if cur_step != 0 {
                match layers {
                    None => layers = Some(cur_layer_count),
                    Some(l) if l != cur_layer_count => {
                        return Err(RoutingError::Row {
                            path: p,
                            row,
                            msg: format!(
                            "step {cur_step} has {cur_layer_count} layers, earlier steps have {l}"
                        ),
                        })
                    }
                    _ => {}
                }
            }
            if step != cur_step + 1 {
                return Err(RoutingError::Row {
                    path: p,
                    row,
                    msg: format!("step {step} follows step {cur_step}: steps must start at 1 and increase by 1 (missing step?)"),
                });
            }
            cur_step = step;
            cur_layer_count = 0;
            steps += 1;
        }
        if layer != cur_layer_count {
            return Err(RoutingError::Row {
                path: p,
                row,
                msg: format!("layer {layer} where layer {cur_layer_count} was expected (layers 0.. in order within a step)"),
            });
        }
        cur_layer_count += 1;
        for j in 0..experts {
            let v = int(j + 2, &format!("count e{j}"))?;
            counts.push(u32::try_from(v).map_err(|_| RoutingError::Row {
                path: p.clone(),
                row,
                msg: format!("count e{j} = {v} exceeds {}", u32::MAX),
            })?);
        }
    }
    if steps == 0 {
        return Err(RoutingError::Shape {
            path: p,
            msg: "trace has no rows (expected step,layer,e0.. rows after the header)".into(),
        });
    }
    let layers = match layers {
        None => cur_layer_count,
        Some(l) if l == cur_layer_count => l,
        Some(l) => {
            return Err(RoutingError::Shape {
                path: p,
                msg: format!(
                    "last step {cur_step} has {cur_layer_count} layers, earlier steps have {l}"
                ),
            })
        }
    };
    Ok(RoutingTrace {
        experts,
        layers,
        steps,
        source: path.display().to_string(),
        counts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f
    }

    #[test]
    fn reads_the_real_traces() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/routing");
        for name in ["routing_moe16top2_aux.csv", "routing_moe16top2_noaux.csv"] {
            let t = read_trace(&dir.join(name)).unwrap();
            assert_eq!((t.steps, t.layers, t.experts), (400, 8, 16));
            // PROVENANCE.md: each row sums to 65,536 assignments (32,768 tokens x top-2).
            let sum: u32 = t.counts(399, 7).iter().sum();
            assert_eq!(sum, 65_536);
        }
    }

    #[test]
    fn malformed_rows_name_the_row() {
        let cases = [
            ("step,layer,e0,e1\n1,0,1,2\n1,1,3\n", "row 3", "fields"),
            (
                "step,layer,e0,e1\n1,0,1,-2\n",
                "row 2",
                "non-negative integer",
            ),
            ("step,layer,e0,e1\n1,0,1,2.5\n", "row 2", "e1"),
            (
                "step,layer,e0,e1\n1,0,1,2\n3,0,1,2\n",
                "row 3",
                "missing step",
            ),
            (
                "step,layer,e0,e1\n1,0,1,2\n1,2,1,2\n",
                "row 3",
                "layer 1 was expected",
            ),
            ("step,expert,e0\n", "row 1", "header"),
        ];
        for (text, row, what) in cases {
            let f = write(text);
            let msg = read_trace(f.path()).unwrap_err().to_string();
            assert!(msg.contains(row) && msg.contains(what), "{text:?} -> {msg}");
        }
        let f = write("step,layer,e0,e1\n");
        assert!(read_trace(f.path())
            .unwrap_err()
            .to_string()
            .contains("no rows"));
    }
}
