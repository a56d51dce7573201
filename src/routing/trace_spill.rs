//! A long CSV trace whose rows are not grouped by step, replayed with bounded memory: its rows are
//! spilled into step-range buckets (anonymous temporary files), then each bucket is sorted in memory
//! into a temporary binary trace, so neither the rows nor the whole trace are ever held at once.

use super::trace_bin::{BinaryWriter, Dtype, Header};
use super::trace_csv::content;
use super::trace_long::{parse_row, row_err, MAX_STEP_CELLS};
use super::RoutingError;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Cells (step × layer × expert) a bucket aims to hold while it is sorted: 2²², 16 MiB of counts
/// and 4 MiB of given-flags (a byte a cell). A trace of more than [`MAX_BUCKETS`] × this many cells makes its
/// buckets larger instead (a 10⁶ × 64 × 64 trace: 64 MiB of counts and 16 MiB of flags a bucket).
pub const BUCKET_CELLS: usize = 1 << 22;
/// Most buckets: each is an open temporary file with a [`BUCKET_BUFFER`] write buffer (16 MiB in all).
const MAX_BUCKETS: u64 = 256;
/// Write buffer of one bucket [bytes].
const BUCKET_BUFFER: usize = 1 << 16;
/// Read buffer of a pass over the CSV or a bucket [bytes].
const READ_BUFFER: usize = 1 << 16;
/// One spilled row: step (0-based), layer, expert, tokens (u32 each) and its row number (u64) [bytes].
const RECORD: usize = 24;

/// A long trace sorted into a temporary binary trace (deleted when the last holder drops it).
#[derive(Debug)]
pub struct Spilled {
    /// The binary trace's header (steps, layers, experts, the smallest dtype that holds every count).
    pub header: Header,
    /// Largest count anywhere [assignments].
    pub max_count: u32,
    /// The temporary binary trace.
    pub data: TempFile,
}

/// A file of this process in the system's temporary directory, removed when dropped.
#[derive(Debug)]
pub struct TempFile {
    path: PathBuf,
}

impl TempFile {
    /// A new empty file named for this process and `tag`, open for reading and writing.
    fn create(tag: &str) -> std::io::Result<(File, TempFile)> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        loop {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let path =
                std::env::temp_dir().join(format!("moesim-{}-{n}-{tag}", std::process::id()));
            match File::options()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(f) => return Ok((f, TempFile { path })),
                // Left by an earlier process with the same id: take the next name.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

impl std::ops::Deref for TempFile {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        // Nothing to report to: a file the system already removed is gone either way.
        let _ = std::fs::remove_file(&self.path);
    }
}

fn io_err(path: &Path, source: std::io::Error) -> RoutingError {
    RoutingError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Each data row of the long trace at `path` (rows from byte `start`, line 2 on), parsed: calls
/// `each(row number, [step, layer, expert, tokens])`; a row that does not parse is an error naming it.
fn rows(
    path: &Path,
    start: u64,
    mut each: impl FnMut(u64, [u64; 4]) -> Result<(), RoutingError>,
) -> Result<(), RoutingError> {
    let mut f = File::open(path).map_err(|e| io_err(path, e))?;
    f.seek(SeekFrom::Start(start))
        .map_err(|e| io_err(path, e))?;
    let mut rdr = BufReader::with_capacity(READ_BUFFER, f);
    let (mut line, mut row) = (Vec::new(), 1u64);
    loop {
        line.clear();
        let n = rdr
            .read_until(b'\n', &mut line)
            .map_err(|e| row_err(path, row + 1, format!("cannot read: {e}")))?;
        if n == 0 {
            return Ok(());
        }
        row += 1;
        let Some(l) = content(&line) else { continue };
        each(row, parse_row(l).map_err(|m| row_err(path, row, m))?)?;
    }
}

/// A cell given twice: the row that repeats it and the row that gave it first.
#[derive(Debug, Clone, Copy)]
struct Repeat {
    row: u64,
    first: u64,
    cell: [u64; 3],
}

/// Sort the long trace at `path` (rows from byte `start`, in any order) into a temporary binary
/// trace, holding about `bucket_cells` cells in memory at a time. Three passes: check every row
/// and learn the shape (steps = the largest step, layers and experts one more than the largest
/// given), spill every row to its step range's bucket, then sort each bucket into its steps. The
/// errors are those of reading the trace whole: a row that does not parse, a cell given twice
/// (the first such row of the file, naming the row that gave it first), a layer or expert missing.
pub fn spill_long(path: &Path, start: u64, bucket_cells: usize) -> Result<Spilled, RoutingError> {
    let (mut top, mut max_count, mut any) = ([0u64; 3], 0u32, false);
    rows(path, start, |_, [s, l, e, t]| {
        top = [top[0].max(s), top[1].max(l), top[2].max(e)];
        max_count = max_count.max(t as u32);
        any = true;
        Ok(())
    })?;
    let shape_err = |msg: String| RoutingError::Shape {
        path: path.to_path_buf(),
        msg,
    };
    if !any {
        return Err(shape_err(
            "trace has no rows (expected data rows after the header)".into(),
        ));
    }
    let (steps, layers, experts) = (top[0], top[1] + 1, top[2] + 1);
    let cells = layers as u128 * experts as u128;
    if cells > MAX_STEP_CELLS as u128 {
        return Err(shape_err(format!(
            "the rows give layer {} and expert {}: {cells} cells a step, more than {MAX_STEP_CELLS} (layers and experts are 0-based indices)",
            top[1], top[2]
        )));
    }
    if steps > u64::from(u32::MAX) {
        return Err(shape_err(format!(
            "the rows give step {steps}: more than {} steps",
            u32::MAX
        )));
    }
    let cells = cells as u64;
    let per = ((bucket_cells as u64 / cells).max(1)).max(steps.div_ceil(MAX_BUCKETS));
    let buckets = steps.div_ceil(per) as usize;
    // Pass 2: every row to its bucket, in file order.
    let (mut spill, mut names) = (Vec::with_capacity(buckets), Vec::with_capacity(buckets));
    for _ in 0..buckets {
        let (f, name) = TempFile::create("bucket").map_err(|e| io_err(path, e))?;
        spill.push(BufWriter::with_capacity(BUCKET_BUFFER, f));
        names.push(name);
    }
    rows(path, start, |row, [s, l, e, t]| {
        let mut rec = [0u8; RECORD];
        for (i, v) in [s - 1, l, e, t].into_iter().enumerate() {
            rec[4 * i..4 * i + 4].copy_from_slice(&(v as u32).to_le_bytes());
        }
        rec[16..].copy_from_slice(&row.to_le_bytes());
        spill[((s - 1) / per) as usize]
            .write_all(&rec)
            .map_err(|e| io_err(path, e))
    })?;
    // Pass 3: each bucket's steps in memory, written in step order.
    let dtype = Dtype::smallest_for(max_count);
    let header = Header {
        steps,
        layers: layers as u32,
        experts: experts as u32,
        dtype,
    };
    let (file, data) = TempFile::create("sorted.moetrace").map_err(|e| io_err(path, e))?;
    let mut w = BinaryWriter::new(BufWriter::with_capacity(READ_BUFFER, file), header)
        .map_err(|e| io_err(&data, e))?;
    let (cells, experts, layers) = (cells as usize, experts as usize, layers as usize);
    let mut counts = vec![0u32; per as usize * cells];
    let mut given = vec![false; per as usize * cells];
    let (mut repeat, mut missing): (Option<Repeat>, Option<String>) = (None, None);
    // `_name` removes each bucket's file once its steps are written.
    for (b, (bucket, _name)) in spill.into_iter().zip(names).enumerate() {
        let mut f = bucket
            .into_inner()
            .map_err(|e| io_err(path, e.into_error()))?;
        f.seek(SeekFrom::Start(0)).map_err(|e| io_err(path, e))?;
        let s0 = b as u64 * per;
        let n = (steps - s0).min(per) as usize;
        counts[..n * cells].fill(0);
        given[..n * cells].fill(false);
        let at =
            |[s, l, e]: [u64; 3]| (s - s0) as usize * cells + l as usize * experts + e as usize;
        let mut rdr = BufReader::with_capacity(READ_BUFFER, f);
        // Records come in file order, so a cell's first repeat is the bucket's earliest.
        let mut local: Option<Repeat> = None;
        each_record(&mut rdr, path, |cell, t, row| {
            let i = at(cell);
            if !given[i] {
                given[i] = true;
                counts[i] = t;
            } else if local.is_none() {
                local = Some(Repeat {
                    row,
                    first: 0,
                    cell,
                });
            }
        })?;
        if let Some(mut r) = local.filter(|l| repeat.is_none_or(|g| l.row < g.row)) {
            // The row that gave the cell first: the bucket read again (only on this error).
            let mut f = rdr.into_inner();
            f.seek(SeekFrom::Start(0)).map_err(|e| io_err(path, e))?;
            let mut first = u64::MAX;
            each_record(&mut BufReader::new(f), path, |cell, _, row| {
                if cell == r.cell {
                    first = first.min(row);
                }
            })?;
            r.first = first;
            repeat = Some(r);
        }
        if missing.is_none() {
            missing = first_missing(&given[..n * cells], s0, layers, experts, steps);
        }
        for step in counts[..n * cells].chunks_exact(cells) {
            w.step(step).map_err(|e| io_err(&data, e))?;
        }
    }
    if let Some(r) = repeat {
        let [s, l, e] = r.cell;
        return Err(row_err(
            path,
            r.row,
            format!(
                "step {}, layer {l}, expert {e} already given on row {}",
                s + 1,
                r.first
            ),
        ));
    }
    if let Some(msg) = missing {
        return Err(shape_err(msg));
    }
    let f = w.finish().map_err(|e| io_err(&data, e))?;
    f.into_inner()
        .map_err(|e| io_err(&data, e.into_error()))?
        .sync_all()
        .map_err(|e| io_err(&data, e))?;
    Ok(Spilled {
        header,
        max_count,
        data,
    })
}

/// Each record of a bucket: `each([step, layer, expert], tokens, row)`.
fn each_record(
    rdr: &mut impl Read,
    path: &Path,
    mut each: impl FnMut([u64; 3], u32, u64),
) -> Result<(), RoutingError> {
    let mut rec = [0u8; RECORD];
    loop {
        match rdr.read_exact(&mut rec) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(io_err(path, e)),
        }
        let u = |i: usize| u32::from_le_bytes([rec[i], rec[i + 1], rec[i + 2], rec[i + 3]]);
        let mut row = [0u8; 8];
        row.copy_from_slice(&rec[16..]);
        each(
            [u64::from(u(0)), u64::from(u(4)), u64::from(u(8))],
            u(12),
            u64::from_le_bytes(row),
        );
    }
}

/// The message for the first (step, layer) of a bucket (steps from `s0`, 0-based) that lacks
/// cells, as reading the trace whole words it; `None` when every cell was given.
fn first_missing(
    given: &[bool],
    s0: u64,
    layers: usize,
    experts: usize,
    steps: u64,
) -> Option<String> {
    let i = given.iter().position(|&g| !g)?;
    let (s, l) = (
        s0 + (i / (layers * experts)) as u64 + 1,
        (i / experts) % layers,
    );
    let row = &given[(i / experts) * experts..(i / experts + 1) * experts];
    if row.iter().all(|&g| !g) {
        return Some(format!("step {s}, layer {l} has no rows (steps 1..={steps} and layers 0..{layers} must all be present)"));
    }
    let lacks: Vec<usize> = (0..experts).filter(|&e| !row[e]).take(5).collect();
    Some(format!(
        "step {s}, layer {l} lacks experts {lacks:?} (every layer lists experts 0..{experts})"
    ))
}
