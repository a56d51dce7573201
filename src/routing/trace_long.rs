//! The long CSV trace (`step,layer,expert,tokens`) read as a stream when its rows come grouped by
//! step: one checking pass that keeps only where each step starts, then single steps parsed from there
//! as replay asks for them (one step in memory, as for the wide layout).

use super::trace_csv::{changed, content, StepLines};
use super::RoutingError;
use std::collections::HashMap;
use std::io::{BufRead, Seek};
use std::path::Path;

/// What the checking pass learns of a long trace whose rows come grouped by step.
#[derive(Debug, Clone)]
pub struct LongScan {
    /// Steps in the file.
    pub steps: usize,
    /// Layers per step.
    pub layers: usize,
    /// Experts per layer.
    pub experts: usize,
    /// Largest count anywhere [assignments].
    pub max_count: u32,
    /// Byte offset of each step's first row.
    pub step_offsets: Vec<u64>,
}

/// Most cells (layers × experts) a step may have: 2²⁶, 256 MiB of counts, far above any published
/// MoE (DeepSeek-V3: 58 MoE layers × 256 experts) — a guard against a mistyped layer or expert.
pub(super) const MAX_STEP_CELLS: usize = 1 << 26;

/// The four columns, 1-based, with their header names.
const COLUMNS: [&str; 4] = ["step", "layer", "expert", "tokens"];

pub(super) fn row_err(path: &Path, row: u64, msg: String) -> RoutingError {
    RoutingError::Row {
        path: path.to_path_buf(),
        row,
        msg,
    }
}

/// The four fields of a plain data row (digits and three commas, nothing else, every value in
/// range); `None` for any other row, which [`parse_row`]'s careful reading then takes. One pass
/// over the bytes: the careful reading's per-field text handling was most of a long trace's
/// parse (BENCHMARKS.md).
#[inline]
fn plain_row(line: &[u8]) -> Option<[u64; 4]> {
    let (mut out, mut i, mut digits) = ([0u64; 4], 0, 0);
    for &b in line {
        match b {
            b'0'..=b'9' => {
                out[i] = out[i].checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
                digits += 1;
            }
            b',' if digits > 0 && i < 3 => {
                i += 1;
                digits = 0;
            }
            _ => return None,
        }
    }
    (i == 3 && digits > 0 && out[0] > 0 && out[3] <= u64::from(u32::MAX)).then_some(out)
}

/// `k` of a field's text: trimmed, one pair of enclosing double quotes removed, trimmed again
/// (no copy of valid UTF-8).
fn with_field<R>(f: &[u8], k: impl FnOnce(&str) -> R) -> R {
    let t = String::from_utf8_lossy(f);
    let t = t.trim();
    k(t.strip_prefix('"')
        .and_then(|x| x.strip_suffix('"'))
        .unwrap_or(t)
        .trim())
}

/// The four fields of a data row (`step, layer, expert, tokens`), or a message naming the column
/// that does not parse and what would be valid.
pub(super) fn parse_row(line: &[u8]) -> Result<[u64; 4], String> {
    if let Some(row) = plain_row(line) {
        return Ok(row);
    }
    let mut out = [0u64; 4];
    let mut n = 0;
    for (i, f) in line.split(|&b| b == b',').enumerate() {
        n = i + 1;
        let Some(o) = out.get_mut(i) else { continue };
        *o = with_field(f, |t| {
            t.parse::<u64>().map_err(|_| {
                format!(
                    "column {} ({}): `{t}` is not a non-negative integer (valid: a whole number 0..={})",
                    i + 1,
                    COLUMNS[i],
                    if i == 3 { u32::MAX as u64 } else { u64::MAX }
                )
            })
        })?;
    }
    if n != 4 {
        return Err(format!(
            "has {n} fields, expected 4 (step, layer, expert, tokens)"
        ));
    }
    if out[3] > u32::MAX as u64 {
        return Err(format!(
            "column 4 (tokens): {} exceeds {} (the largest count a trace holds)",
            out[3],
            u32::MAX
        ));
    }
    if out[0] == 0 {
        return Err("column 1 (step): step 0: steps are 1-based".into());
    }
    Ok(out)
}

/// The cells of the step being scanned: the row that gave each (layer, expert), 0 where none did.
struct Block {
    /// Step number (1-based; 0 before the first row).
    step: u64,
    /// Row of each cell, layer-major (sized once the first step has set the shape).
    rows: Vec<u64>,
    /// Cells of the first step while its shape is not known yet: (layer, expert) → row.
    first: HashMap<(u64, u64), u64>,
    /// Cells given in this step.
    given: usize,
}

/// Check every data row of a long trace whose rows start at byte `start` (line 2) and note where each
/// step starts, if its rows come grouped by step (steps 1, 2, … in order; a step's rows in any
/// order). Returns `None` when they do not (a step's rows come back after another step's): the
/// caller reads such a file whole. A row that does not parse, a cell given twice and a cell outside
/// the first step's layers × experts are errors naming the row (and the column); a step that lacks
/// cells is an error once the whole file is known to be grouped.
pub fn scan_long<R: BufRead>(
    path: &Path,
    mut rdr: R,
    start: u64,
) -> Result<Option<LongScan>, RoutingError> {
    let mut line = Vec::new();
    let (mut offset, mut row) = (start, 1u64);
    let mut shape: Option<(usize, usize)> = None;
    let mut b = Block {
        step: 0,
        rows: Vec::new(),
        first: HashMap::new(),
        given: 0,
    };
    let mut step_offsets = Vec::new();
    let mut max_count = 0u32;
    // A step that lacked cells: an error only if the file turns out grouped by step.
    let mut incomplete: Option<RoutingError> = None;
    loop {
        line.clear();
        let n = rdr
            .read_until(b'\n', &mut line)
            .map_err(|e| row_err(path, row + 1, format!("cannot read: {e}")))?;
        if n == 0 {
            break;
        }
        let at = offset;
        offset += n as u64;
        row += 1;
        let Some(l) = content(&line) else { continue };
        let [step, layer, expert, tokens] = parse_row(l).map_err(|m| row_err(path, row, m))?;
        if step != b.step {
            if step < b.step {
                return Ok(None);
            }
            if b.step != 0 {
                let e = close_step(path, &mut b, &mut shape)?;
                incomplete = incomplete.or(e);
            }
            if step != b.step + 1 && incomplete.is_none() {
                let gap = match step - b.step {
                    2 => format!("step {} has", b.step + 1),
                    _ => format!("steps {}..={} have", b.step + 1, step - 1),
                };
                incomplete = Some(RoutingError::Shape {
                    path: path.to_path_buf(),
                    msg: format!(
                        "{gap} no rows (row {row} gives step {step} after step {}; steps are 1, 2, …)",
                        b.step
                    ),
                });
            }
            step_offsets.push(at);
            b.step = step;
            b.given = 0;
            b.rows.iter_mut().for_each(|r| *r = 0);
        }
        max_count = max_count.max(tokens as u32);
        match shape {
            None => {
                if let Some(first) = b.first.insert((layer, expert), row) {
                    return Err(row_err(path, row, format!("step {step}, layer {layer}, expert {expert} already given on row {first}")));
                }
            }
            Some((layers, experts)) => {
                if layer as usize >= layers {
                    return Err(row_err(path, row, format!("column 2 (layer): layer {layer} is outside the layers 0..{layers} of step 1 (every step lists the same layers)")));
                }
                if expert as usize >= experts {
                    return Err(row_err(path, row, format!("column 3 (expert): expert {expert} is outside the experts 0..{experts} of step 1 (every layer lists the same experts)")));
                }
                let cell = &mut b.rows[layer as usize * experts + expert as usize];
                if *cell != 0 {
                    return Err(row_err(path, row, format!("step {step}, layer {layer}, expert {expert} already given on row {cell}")));
                }
                *cell = row;
                b.given += 1;
            }
        }
    }
    if b.step == 0 {
        return Err(RoutingError::Shape {
            path: path.to_path_buf(),
            msg: "trace has no rows (expected data rows after the header)".into(),
        });
    }
    let e = close_step(path, &mut b, &mut shape)?;
    if let Some(e) = incomplete.or(e) {
        return Err(e);
    }
    let (layers, experts) = shape.unwrap_or((0, 0));
    Ok(Some(LongScan {
        steps: step_offsets.len(),
        layers,
        experts,
        max_count,
        step_offsets,
    }))
}

/// End the step in `b`: the first step sets the shape (its largest layer and expert + 1; an error
/// if that is more than [`MAX_STEP_CELLS`] cells) and is checked against it; every step must give
/// every cell. Returns the error of a step that lacks cells.
fn close_step(
    path: &Path,
    b: &mut Block,
    shape: &mut Option<(usize, usize)>,
) -> Result<Option<RoutingError>, RoutingError> {
    if shape.is_none() {
        let top = |f: fn(&(u64, u64)) -> u64| b.first.keys().map(f).max().unwrap_or(0);
        let (layer, expert) = (top(|k| k.0), top(|k| k.1));
        let cells = (layer as u128 + 1) * (expert as u128 + 1);
        if cells > MAX_STEP_CELLS as u128 {
            return Err(RoutingError::Shape {
                path: path.to_path_buf(),
                msg: format!("step 1 gives layer {layer} and expert {expert}: {cells} cells a step, more than {MAX_STEP_CELLS} (layers and experts are 0-based indices)"),
            });
        }
        let (layers, experts) = (layer as usize + 1, expert as usize + 1);
        b.rows = vec![0; layers * experts];
        for (&(l, e), &r) in &b.first {
            b.rows[l as usize * experts + e as usize] = r;
        }
        b.given = b.first.len();
        b.first = HashMap::new();
        *shape = Some((layers, experts));
    }
    let Some((layers, experts)) = *shape else {
        return Ok(None);
    };
    if b.given == layers * experts {
        return Ok(None);
    }
    let i = b.rows.iter().position(|&r| r == 0).unwrap_or(0);
    let l = i / experts.max(1);
    let missing: Vec<usize> = (0..experts)
        .filter(|e| b.rows[l * experts + e] == 0)
        .take(5)
        .collect();
    Ok(Some(RoutingError::Shape {
        path: path.to_path_buf(),
        msg: format!(
            "step {}, layer {l} lacks experts {missing:?} (every step lists layers 0..{layers}, every layer experts 0..{experts})",
            b.step
        ),
    }))
}

/// Reads single steps of a checked long trace from where the scan found them.
#[derive(Debug)]
pub struct LongSteps<R> {
    lines: StepLines<R>,
}

impl<R: BufRead + Seek> LongSteps<R> {
    /// A step reader over `rdr`, which stands at byte 0.
    pub fn new(rdr: R) -> Self {
        Self {
            lines: StepLines::new(rdr),
        }
    }

    /// Parse the step whose first row is at byte `offset` (from the scan) into `out` (layers ×
    /// experts, `experts` a row). Reads the step's rows up to the next step's first row, which it
    /// holds back for the next call, so sequential steps read on without a seek. An error here
    /// means the file changed since its scan.
    pub fn read(
        &mut self,
        path: &Path,
        step: usize,
        offset: u64,
        experts: usize,
        out: &mut [u32],
    ) -> Result<(), RoutingError> {
        let lines = &mut self.lines;
        lines
            .start(offset)
            .map_err(|e| changed(path, step, offset, format!("cannot seek: {e}")))?;
        let layers = out.len() / experts.max(1);
        let mut given = 0;
        loop {
            let before = lines.at();
            let Some((at, l)) = lines
                .next()
                .map_err(|e| changed(path, step, before, format!("cannot read: {e}")))?
            else {
                break;
            };
            let [s, layer, expert, tokens] =
                parse_row(l).map_err(|m| changed(path, step, at, m))?;
            if s != step as u64 + 1 {
                // The next step's first row: held back for the next call.
                lines.hold();
                break;
            }
            match (layer as usize) < layers && (expert as usize) < experts {
                true => out[layer as usize * experts + expert as usize] = tokens as u32,
                false => {
                    return Err(changed(
                        path,
                        step,
                        at,
                        format!("layer {layer}, expert {expert} outside the trace's shape"),
                    ))
                }
            }
            given += 1;
        }
        if given != out.len() {
            return Err(changed(
                path,
                step,
                lines.at(),
                format!("{given} cells where {} were checked", out.len()),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The careful reading alone (what `parse_row` did before the plain-row pass).
    fn careful(line: &[u8]) -> Result<[u64; 4], String> {
        let mut out = [0u64; 4];
        let fields: Vec<&[u8]> = line.split(|&b| b == b',').collect();
        if fields.len() != 4 {
            return Err("fields".into());
        }
        for (o, f) in out.iter_mut().zip(fields) {
            *o = with_field(f, |t| t.parse::<u64>().map_err(|_| "value".to_string()))?;
        }
        if out[3] > u64::from(u32::MAX) || out[0] == 0 {
            return Err("range".into());
        }
        Ok(out)
    }

    #[test]
    fn the_plain_row_pass_reads_what_the_careful_reading_reads_and_leaves_it_the_rest() {
        let rows = [
            "1,0,0,3",
            "12,3,45,6789",
            "007,0,1,4294967295",
            "1,0,1,4294967296",
            "0,1,2,3",
            "18446744073709551615,1,2,3",
            "18446744073709551616,1,2,3",
            "1,2,3",
            "1,2,3,4,5",
            "1,,3,4",
            ",1,2,3",
            "1,2,3,",
            " 1,2,3,4",
            "1,2,3,4 ",
            "\"1\",2,3,4",
            "1,2,x,4",
            "1,2,-3,4",
            "1,2,3.0,4",
            "",
        ];
        for r in rows {
            let line = r.as_bytes();
            match plain_row(line) {
                // Whatever the plain pass reads, the careful reading reads alike.
                Some(v) => assert_eq!(Ok(v), careful(line), "{r}"),
                // The rest goes to the careful reading, whose message names the column.
                None => assert_eq!(parse_row(line).ok(), careful(line).ok(), "{r}"),
            }
        }
        assert_eq!(plain_row(b"12,3,45,6789"), Some([12, 3, 45, 6789]));
        assert_eq!(plain_row(b" 1,2,3,4"), None);
        let e = parse_row(b"1,2,x,4").unwrap_err();
        assert!(e.contains("column 3 (expert)"), "{e}");
    }
}
