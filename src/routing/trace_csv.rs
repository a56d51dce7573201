//! The wide CSV trace (`step,layer,e0..eN`) read as a stream: one checking pass that keeps only where
//! each step starts, then single steps parsed from there as replay asks for them.

use super::RoutingError;
use std::io::{BufRead, Seek, SeekFrom};
use std::path::Path;

/// What the checking pass learns of a wide trace.
#[derive(Debug, Clone)]
pub struct WideScan {
    /// Steps in the file.
    pub steps: usize,
    /// Layers per step.
    pub layers: usize,
    /// Largest count anywhere.
    pub max_count: u32,
    /// Byte offset of each step's first row (8 bytes a step, whatever the layer and expert counts).
    pub step_offsets: Vec<u64>,
}

/// A cell or row that does not parse.
enum RowError {
    Fields(usize),
    Cell {
        column: usize,
        text: String,
        overflow: bool,
    },
}

fn row_err(path: &Path, row: u64, msg: String) -> RoutingError {
    RoutingError::Row {
        path: path.to_path_buf(),
        row,
        msg,
    }
}

/// The column called (1-based) `column` of a wide trace with its header name.
fn column_name(column: usize) -> String {
    match column {
        1 => "step".into(),
        2 => "layer".into(),
        c => format!("count e{}", c - 3),
    }
}

impl RowError {
    fn message(&self, experts: usize) -> String {
        match self {
            RowError::Fields(n) => format!(
                "has {n} fields, expected {} (step, layer and {experts} experts)",
                experts + 2
            ),
            RowError::Cell {
                column,
                text,
                overflow: false,
            } => format!(
                "column {column} ({}): `{text}` is not a non-negative integer (valid: a whole number 0..={})",
                column_name(*column),
                u32::MAX
            ),
            RowError::Cell { column, text, .. } => format!(
                "column {column} ({}): `{text}` exceeds {} (the largest count a trace holds)",
                column_name(*column),
                u32::MAX
            ),
        }
    }
}

/// A whole number in `field` (ASCII spaces around it allowed), if it is one that fits u32.
#[inline]
fn parse_u32(field: &[u8]) -> Result<u32, bool> {
    let mut f = field;
    while let [b' ' | b'\t', rest @ ..] = f {
        f = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = f {
        f = rest;
    }
    if let [b'+', rest @ ..] = f {
        f = rest;
    }
    if f.is_empty() {
        return Err(false);
    }
    let mut v: u64 = 0;
    for &b in f {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return Err(false);
        }
        v = v * 10 + d as u64;
        if v > u32::MAX as u64 {
            // Every byte must still be a digit for this to be an overflow rather than a bad cell.
            return Err(f.iter().all(u8::is_ascii_digit));
        }
    }
    Ok(v as u32)
}

/// Parse one data row (without its line end) into `out` (one count per expert); returns (step, layer).
/// One pass over the bytes for the usual row of digits and commas; anything else (spaces, a sign, a bad
/// cell, a wrong field count) goes to the careful parser, which accepts or names it.
#[inline]
fn parse_row(line: &[u8], out: &mut [u32]) -> Result<(u32, u32), RowError> {
    let mut head = [0u32; 2];
    let (mut field, mut v, mut digits) = (0usize, 0u64, 0u32);
    for &b in line {
        if b == b',' {
            if digits == 0 {
                return parse_row_careful(line, out);
            }
            match field {
                0 | 1 => head[field] = v as u32,
                f => match out.get_mut(f - 2) {
                    Some(o) => *o = v as u32,
                    None => return parse_row_careful(line, out),
                },
            }
            (field, v, digits) = (field + 1, 0, 0);
        } else {
            let d = b.wrapping_sub(b'0');
            v = v * 10 + d as u64;
            digits += 1;
            if d > 9 || v > u32::MAX as u64 {
                return parse_row_careful(line, out);
            }
        }
    }
    let n = out.len();
    match out.get_mut(field.wrapping_sub(2)) {
        Some(o) if digits > 0 && field == n + 1 => *o = v as u32,
        _ => return parse_row_careful(line, out),
    }
    Ok((head[0], head[1]))
}

/// [`parse_row`] field by field, trimming spaces, with an error naming the field that does not parse.
fn parse_row_careful(line: &[u8], out: &mut [u32]) -> Result<(u32, u32), RowError> {
    let experts = out.len();
    let mut fields = line.split(|&b| b == b',');
    let cell = |column: usize, f: Option<&[u8]>| -> Result<u32, RowError> {
        let f = f.ok_or(RowError::Fields(column - 1))?;
        parse_u32(f).map_err(|overflow| RowError::Cell {
            column,
            text: String::from_utf8_lossy(f).trim().to_string(),
            overflow,
        })
    };
    let step = cell(1, fields.next())?;
    let layer = cell(2, fields.next())?;
    for (j, o) in out.iter_mut().enumerate() {
        *o = cell(j + 3, fields.next())?;
    }
    match fields.count() {
        0 => Ok((step, layer)),
        n => Err(RowError::Fields(experts + 2 + n)),
    }
}

/// `line` without its line end; `None` for a blank line (skipped, as the CSV reader skipped them).
pub(super) fn content(line: &[u8]) -> Option<&[u8]> {
    let mut l = line;
    while let [rest @ .., b'\n' | b'\r'] = l {
        l = rest;
    }
    (!l.iter().all(|b| b.is_ascii_whitespace())).then_some(l)
}

/// Check every data row of a wide trace of `experts` experts whose rows start at byte `start` (line 2),
/// and note where each step starts. Steps are 1-based and contiguous, layers 0.. in order in each step.
pub fn scan_wide<R: BufRead>(
    path: &Path,
    mut rdr: R,
    start: u64,
    experts: usize,
) -> Result<WideScan, RoutingError> {
    let mut line = Vec::new();
    let mut counts = vec![0u32; experts];
    let (mut offset, mut row) = (start, 1u64);
    let mut layers: Option<usize> = None;
    let (mut cur_step, mut cur_layers) = (0u64, 0usize);
    let mut step_offsets = Vec::new();
    let mut max_count = 0u32;
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
        let (step, layer) =
            parse_row(l, &mut counts).map_err(|e| row_err(path, row, e.message(experts)))?;
        let (step, layer) = (step as u64, layer as usize);
        if step != cur_step {
            if cur_step != 0 {
                match layers {
                    None => layers = Some(cur_layers),
                    Some(l) if l != cur_layers => {
                        return Err(row_err(
                            path,
                            row,
                            format!(
                                "step {cur_step} has {cur_layers} layers, earlier steps have {l}"
                            ),
                        ));
                    }
                    _ => {}
                }
            }
            if step != cur_step + 1 {
                return Err(row_err(path, row, format!("step {step} follows step {cur_step}: steps must start at 1 and increase by 1 (missing step?)")));
            }
            step_offsets.push(at);
            cur_step = step;
            cur_layers = 0;
        }
        if layer != cur_layers {
            return Err(row_err(path, row, format!("layer {layer} where layer {cur_layers} was expected (layers 0.. in order within a step)")));
        }
        cur_layers += 1;
        max_count = counts.iter().fold(max_count, |m, &c| m.max(c));
    }
    if step_offsets.is_empty() {
        return Err(RoutingError::Shape {
            path: path.to_path_buf(),
            msg: "trace has no rows (expected data rows after the header)".into(),
        });
    }
    let layers = match layers {
        None => cur_layers,
        Some(l) if l == cur_layers => l,
        Some(l) => {
            return Err(RoutingError::Shape {
                path: path.to_path_buf(),
                msg: format!(
                    "last step {cur_step} has {cur_layers} layers, earlier steps have {l}"
                ),
            });
        }
    };
    Ok(WideScan {
        steps: step_offsets.len(),
        layers,
        max_count,
        step_offsets,
    })
}

/// The lines of a checked CSV trace (wide or long layout), read from where its scan found a step:
/// seeks only when a step does not start where the last read stopped, skips blank lines, and can
/// hold back the line that ended a step for the next call (a long trace's step ends at the next
/// step's first row). One reader for both layouts, so they find, skip and report lines alike.
#[derive(Debug)]
pub struct StepLines<R> {
    rdr: R,
    /// Byte offset of the held line when `held`, else where the reader stands.
    at: u64,
    line: Vec<u8>,
    /// `line` holds a line returned by [`StepLines::next`] and given back by [`StepLines::hold`].
    held: bool,
}

/// The error of a step read from a file that no longer matches its scan: `at` the byte offset.
pub(super) fn changed(path: &Path, step: usize, at: u64, msg: String) -> RoutingError {
    RoutingError::Offset {
        path: path.to_path_buf(),
        offset: at,
        msg: format!(
            "step {}: {msg} (the file changed since it was checked at the start of the run?)",
            step + 1
        ),
    }
}

impl<R: BufRead + Seek> StepLines<R> {
    /// Lines of `rdr`, which stands at byte 0.
    pub fn new(rdr: R) -> Self {
        Self {
            rdr,
            at: 0,
            line: Vec::new(),
            held: false,
        }
    }

    /// Byte offset of the next line [`StepLines::next`] returns.
    pub fn at(&self) -> u64 {
        self.at
    }

    /// Stand at byte `offset` (a step's first row): no seek when the last read stopped there.
    pub fn start(&mut self, offset: u64) -> std::io::Result<()> {
        if self.at != offset {
            self.held = false;
            self.rdr.seek(SeekFrom::Start(offset))?;
            self.at = offset;
        }
        Ok(())
    }

    /// The next line that is not blank, without its line end, and its byte offset; `None` at
    /// the end of the file.
    pub fn next(&mut self) -> std::io::Result<Option<(u64, &[u8])>> {
        if !self.held {
            loop {
                self.line.clear();
                let n = self.rdr.read_until(b'\n', &mut self.line)?;
                if n == 0 {
                    return Ok(None);
                }
                if content(&self.line).is_some() {
                    break;
                }
                self.at += n as u64;
            }
        }
        self.held = false;
        let at = self.at;
        self.at += self.line.len() as u64;
        Ok(content(&self.line).map(|l| (at, l)))
    }

    /// Give back the line [`StepLines::next`] returned last: the next call returns it again.
    pub fn hold(&mut self) {
        self.held = true;
        self.at -= self.line.len() as u64;
    }
}

/// Reads single steps of a checked wide trace from where the scan found them.
#[derive(Debug)]
pub struct WideSteps<R> {
    lines: StepLines<R>,
}

impl<R: BufRead + Seek> WideSteps<R> {
    /// A step reader over `rdr`, which stands at byte 0.
    pub fn new(rdr: R) -> Self {
        Self {
            lines: StepLines::new(rdr),
        }
    }

    /// Parse the step whose first row is at byte `offset` (from the scan) into `out` (layers × experts).
    /// Sequential steps read on without a seek. An error here means the file changed since its scan.
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
        for row in out.chunks_exact_mut(experts.max(1)) {
            let before = lines.at();
            let (at, l) = lines
                .next()
                .map_err(|e| changed(path, step, before, format!("cannot read: {e}")))?
                .ok_or_else(|| changed(path, step, before, "file ends inside the step".into()))?;
            match parse_row(l, row) {
                Ok((s, _)) if s as usize == step + 1 => {}
                Ok((s, _)) => return Err(changed(path, step, at, format!("row holds step {s}"))),
                Err(e) => return Err(changed(path, step, at, e.message(experts))),
            }
        }
        Ok(())
    }
}
