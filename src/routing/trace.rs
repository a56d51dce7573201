//! Routing traces held in memory, and the CSV layouts detected from the header: wide
//! `step,layer,e0..eN` and long `step,layer,expert,tokens` (assignments per expert).

use super::RoutingError;
#[cfg(test)]
use std::collections::BTreeMap;
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
    /// A trace from counts laid out step-major, then layer, then expert.
    pub fn from_counts(
        experts: usize,
        layers: usize,
        counts: Vec<u32>,
        source: String,
    ) -> Option<Self> {
        if experts == 0
            || layers == 0
            || counts.is_empty()
            || !counts.len().is_multiple_of(experts * layers)
        {
            return None;
        }
        let steps = counts.len() / (experts * layers);
        Some(Self {
            experts,
            layers,
            steps,
            source,
            counts,
        })
    }

    /// Largest count in the trace [assignments].
    pub fn max_count(&self) -> u32 {
        self.counts.iter().copied().max().unwrap_or(0)
    }

    /// Counts of one step (0-based) and layer, one per expert.
    pub fn counts(&self, step: usize, layer: usize) -> &[u32] {
        let base = (step * self.layers + layer) * self.experts;
        &self.counts[base..base + self.experts]
    }
}

/// The two file layouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceLayout {
    /// `step,layer,e0,e1,...`: one row per step and layer.
    Wide,
    /// `step,layer,expert,tokens`: one row per step, layer and expert.
    Long,
}

fn row_err(path: &Path, row: u64, msg: String) -> RoutingError {
    RoutingError::Row {
        path: path.to_path_buf(),
        row,
        msg,
    }
}

/// Read a routing trace whole into memory: binary, or CSV with the layout detected from the header. Steps
/// are 1-based and contiguous; every step lists every layer, and every layer every expert. (A run streams
/// its trace through [`super::TraceFile`] instead.)
pub fn read_trace(path: &Path) -> Result<RoutingTrace, RoutingError> {
    super::TraceFile::open(path)?.load()
}

/// The header names of a CSV trace's first line: trimmed, lower case, without a byte-order mark.
pub(super) fn header_names(line: &str) -> Vec<String> {
    line.trim_end_matches(['\n', '\r'])
        .split(',')
        .map(|h| h.trim().trim_start_matches('\u{feff}').to_ascii_lowercase())
        .collect()
}

/// Counts of one step (0-based) of an in-memory trace: layers × experts.
pub(super) fn step_counts(t: &RoutingTrace, step: usize) -> &[u32] {
    let n = t.layers * t.experts;
    &t.counts[step * n..(step + 1) * n]
}

/// Which layout a header is, or an error saying what headers are valid.
pub fn detect_layout(path: &Path, names: &[String]) -> Result<TraceLayout, RoutingError> {
    let valid = "valid headers: `step,layer,e0,e1,...` (wide) or `step,layer,expert,tokens` (long); or a binary trace starting with `MOETRACE` (`moesim trace convert`)";
    if names.len() < 3 || names[0] != "step" || names[1] != "layer" {
        return Err(row_err(
            path,
            1,
            format!(
                "header `{}` is not a routing trace; {valid}",
                names.join(",")
            ),
        ));
    }
    if names.len() == 4 && names[2] == "expert" && names[3] == "tokens" {
        return Ok(TraceLayout::Long);
    }
    for (i, n) in names[2..].iter().enumerate() {
        if *n != format!("e{i}") {
            return Err(row_err(path, 1, format!("column {} is `{n}`, expected `e{i}` (expert columns must be e0..eN in order); {valid}", i + 3)));
        }
    }
    Ok(TraceLayout::Wide)
}

#[cfg(test)]
fn parse_count(path: &Path, row: u64, what: &str, s: &str) -> Result<u64, RoutingError> {
    let s = s.trim();
    s.parse::<u64>().map_err(|_| {
        row_err(
            path,
            row,
            format!("{what} `{s}` is not a non-negative integer"),
        )
    })
}

#[cfg(test)]
fn to_u32(path: &Path, row: u64, what: &str, v: u64) -> Result<u32, RoutingError> {
    u32::try_from(v).map_err(|_| row_err(path, row, format!("{what} = {v} exceeds {}", u32::MAX)))
}

/// Read a long-layout trace (`step,layer,expert,tokens`, rows in any order) whole: the reference
/// the streamed and spilled reads (`trace_long`, `trace_spill`) are tested against.
#[cfg(test)]
pub(super) fn read_long(path: &Path) -> Result<RoutingTrace, RoutingError> {
    let file = std::fs::File::open(path).map_err(|source| RoutingError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(std::io::BufReader::new(file));
    // (step, layer) -> expert -> (count, row)
    let mut cells: BTreeMap<(u64, u64), BTreeMap<u64, (u32, u64)>> = BTreeMap::new();
    let mut rec = csv::StringRecord::new();
    let mut row = 1u64;
    loop {
        match rdr.read_record(&mut rec) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(row_err(path, row + 1, e.to_string())),
        }
        row += 1;
        if rec.len() != 4 {
            return Err(row_err(
                path,
                row,
                format!(
                    "has {} fields, expected 4 (step, layer, expert, tokens)",
                    rec.len()
                ),
            ));
        }
        let step = parse_count(path, row, "step", &rec[0])?;
        let layer = parse_count(path, row, "layer", &rec[1])?;
        let expert = parse_count(path, row, "expert", &rec[2])?;
        let tokens = parse_count(path, row, "tokens", &rec[3])?;
        let tokens = to_u32(path, row, "tokens", tokens)?;
        if step == 0 {
            return Err(row_err(path, row, "step 0: steps are 1-based".into()));
        }
        let e = cells.entry((step, layer)).or_default();
        if let Some((_, first)) = e.insert(expert, (tokens, row)) {
            return Err(row_err(
                path,
                row,
                format!("step {step}, layer {layer}, expert {expert} already given on row {first}"),
            ));
        }
    }
    if cells.is_empty() {
        return Err(RoutingError::Shape {
            path: path.to_path_buf(),
            msg: "trace has no rows (expected data rows after the header)".into(),
        });
    }
    let steps = cells.keys().map(|k| k.0).max().unwrap_or(0) as usize;
    let layers = cells.keys().map(|k| k.1).max().unwrap_or(0) as usize + 1;
    let experts = cells
        .values()
        .flat_map(|m| m.keys())
        .max()
        .copied()
        .unwrap_or(0) as usize
        + 1;
    let mut counts = vec![0u32; steps * layers * experts];
    for s in 1..=steps as u64 {
        for l in 0..layers as u64 {
            let Some(m) = cells.get(&(s, l)) else {
                return Err(RoutingError::Shape { path: path.to_path_buf(), msg: format!("step {s}, layer {l} has no rows (steps 1..={steps} and layers 0..{layers} must all be present)") });
            };
            if m.len() != experts {
                let missing: Vec<u64> = (0..experts as u64)
                    .filter(|e| !m.contains_key(e))
                    .take(5)
                    .collect();
                return Err(RoutingError::Shape { path: path.to_path_buf(), msg: format!("step {s}, layer {l} lacks experts {missing:?} (every layer lists experts 0..{experts})") });
            }
            for (&e, &(c, _)) in m {
                counts[((s as usize - 1) * layers + l as usize) * experts + e as usize] = c;
            }
        }
    }
    Ok(RoutingTrace {
        experts,
        layers,
        steps,
        source: path.display().to_string(),
        counts,
    })
}

/// Write a trace in the wide layout.
pub fn write_wide(trace: &RoutingTrace) -> String {
    use std::fmt::Write;
    let mut s = String::from("step,layer");
    for e in 0..trace.experts {
        let _ = write!(s, ",e{e}");
    }
    s.push('\n');
    for st in 0..trace.steps {
        for l in 0..trace.layers {
            let _ = write!(s, "{},{}", st + 1, l);
            for c in trace.counts(st, l) {
                let _ = write!(s, ",{c}");
            }
            s.push('\n');
        }
    }
    s
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
    fn long_and_wide_layouts_give_the_same_trace() {
        let wide = write("step,layer,e0,e1\n1,0,3,5\n1,1,2,6\n2,0,4,4\n2,1,8,0\n");
        let long = write("step,layer,expert,tokens\n2,1,1,0\n1,0,0,3\n1,0,1,5\n1,1,0,2\n1,1,1,6\n2,0,0,4\n2,0,1,4\n2,1,0,8\n");
        let a = read_trace(wide.path()).unwrap();
        let b = read_trace(long.path()).unwrap();
        assert_eq!(
            (a.steps, a.layers, a.experts),
            (b.steps, b.layers, b.experts)
        );
        assert_eq!(a.counts, b.counts);
        // And the wide writer round-trips.
        let again = write(&write_wide(&a));
        assert_eq!(read_trace(again.path()).unwrap().counts, a.counts);
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
            ("step,expert,e0\n", "row 1", "valid headers"),
            (
                "step,layer,expert,tokens\n1,0,0,5\n1,0,0,6\n",
                "row 3",
                "already given on row 2",
            ),
            (
                "step,layer,expert,tokens\n1,0,0,x\n",
                "row 2",
                "column 4 (tokens): `x`",
            ),
        ];
        for (text, row, what) in cases {
            let f = write(text);
            let msg = read_trace(f.path()).unwrap_err().to_string();
            assert!(msg.contains(row) && msg.contains(what), "{text:?} -> {msg}");
        }
        for text in ["step,layer,e0,e1\n", "step,layer,expert,tokens\n"] {
            let f = write(text);
            assert!(read_trace(f.path())
                .unwrap_err()
                .to_string()
                .contains("no rows"));
        }
        let f = write("step,layer,expert,tokens\n1,0,0,5\n1,0,1,5\n2,0,0,5\n");
        let msg = read_trace(f.path()).unwrap_err().to_string();
        assert!(msg.contains("step 2, layer 0 lacks experts [1]"), "{msg}");
        let f = write("step,layer,expert,tokens\n1,0,0,5\n3,0,0,5\n");
        assert!(read_trace(f.path())
            .unwrap_err()
            .to_string()
            .contains("step 2 has no rows"));
    }
}
