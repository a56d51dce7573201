//! An opened, checked routing trace file (binary, wide CSV or long CSV) and cursors that read its steps
//! one at a time, so replay holds one step of a trace however long the trace is.

use super::trace::{detect_layout, header_names, step_counts};
use super::trace_bin::{Dtype, Header, EXTENSION, HEADER_BYTES, MAGIC};
use super::trace_csv::{scan_wide, WideSteps};
use super::trace_long::{scan_long, LongSteps};
use super::trace_spill::{spill_long, TempFile, BUCKET_CELLS};
use super::{RoutingError, RoutingTrace, TraceLayout};
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// A trace opened earlier in this process: its path, the length and modification time it had, and
/// the checked trace.
type Opened = (PathBuf, u64, SystemTime, Kept);

/// How [`OPENED`] holds a trace: a trace sorted into a temporary file only while someone else
/// holds it (a sweep does, for its points), so its file is removed when the last user is done —
/// a static is never dropped, and a strong hold would leave the file behind at exit.
#[derive(Debug)]
enum Kept {
    Strong(Arc<TraceFile>),
    Weak(std::sync::Weak<TraceFile>),
}

impl Kept {
    fn get(&self) -> Option<Arc<TraceFile>> {
        match self {
            Kept::Strong(t) => Some(t.clone()),
            Kept::Weak(t) => t.upgrade(),
        }
    }
}

/// Traces opened by [`TraceFile::open_shared`], newest last: a sweep's points (and the samples of
/// `--samples`) open the same file, and its checking pass is the costly part of opening a CSV.
static OPENED: Mutex<Vec<Opened>> = Mutex::new(Vec::new());
/// Traces [`OPENED`] keeps (each holds its step offsets, 8 bytes a step, or the temporary binary trace an unsorted long CSV was sorted into).
const OPENED_KEEP: usize = 4;

/// Read buffer of a binary cursor [bytes]: many steps of a small trace per read, one system call per
/// ~4 steps of a 64 × 64 u16 trace; bounded whatever the trace's length.
const BINARY_BUFFER: usize = 1 << 15;
/// Read buffer of a CSV cursor or scan [bytes].
const CSV_BUFFER: usize = 1 << 16;

/// How the file stores its counts.
#[derive(Debug, Clone)]
enum Format {
    /// The binary format; steps are found by arithmetic.
    Binary(Header),
    /// Wide CSV; steps are found from the byte offsets the opening scan noted.
    Wide { step_offsets: Vec<u64> },
    /// Long CSV with its rows grouped by step; steps are found from the byte offsets the scan noted.
    Long { step_offsets: Vec<u64> },
    /// Held in memory: a trace built in code (or read whole by a caller).
    Memory(RoutingTrace),
}

/// A routing trace file, opened and checked whole (shape, every cell) but not held in memory.
#[derive(Debug, Clone)]
pub struct TraceFile {
    /// Experts per layer.
    pub experts: usize,
    /// Layers recorded per step.
    pub layers: usize,
    /// Steps recorded.
    pub steps: usize,
    /// Largest count anywhere in a CSV or in-memory trace; for a binary trace the largest its dtype holds
    /// (an upper bound, from the header) [assignments].
    pub max_count: u32,
    /// Where it came from (file path).
    pub source: String,
    path: PathBuf,
    format: Format,
    /// Where a [`Format::Binary`] trace's counts are when they are not in `path`: the temporary
    /// binary trace a long CSV not grouped by step is sorted into (deleted with the last clone).
    data: Option<Arc<TempFile>>,
}

fn io_err(path: &Path, source: std::io::Error) -> RoutingError {
    RoutingError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl TraceFile {
    /// Open and check the trace at `path`: a binary trace (it starts with `MOETRACE`) by its header and
    /// length, a wide CSV or a long CSV whose rows come grouped by step by one pass over every row
    /// (keeping only where each step starts); a long CSV whose rows are not grouped by step is sorted
    /// into a temporary binary trace ([`spill_long`]: bounded memory, its rows may come in any order).
    pub fn open(path: &Path) -> Result<TraceFile, RoutingError> {
        let mut f = File::open(path).map_err(|e| io_err(path, e))?;
        let len = f.metadata().map_err(|e| io_err(path, e))?.len();
        let mut head = Vec::with_capacity(HEADER_BYTES as usize);
        (&mut f)
            .take(HEADER_BYTES)
            .read_to_end(&mut head)
            .map_err(|e| io_err(path, e))?;
        let named_binary = path.extension().is_some_and(|e| e == EXTENSION);
        if head.starts_with(&MAGIC) || named_binary {
            let h = Header::parse(path, &head, len)?;
            return Ok(TraceFile {
                experts: h.experts as usize,
                layers: h.layers as usize,
                steps: h.steps as usize,
                max_count: h.dtype.max(),
                source: path.display().to_string(),
                path: path.to_path_buf(),
                format: Format::Binary(h),
                data: None,
            });
        }
        f.seek(SeekFrom::Start(0)).map_err(|e| io_err(path, e))?;
        let mut rdr = BufReader::with_capacity(CSV_BUFFER, f);
        let mut header = Vec::new();
        let start = rdr
            .read_until(b'\n', &mut header)
            .map_err(|e| io_err(path, e))? as u64;
        let names = header_names(&String::from_utf8_lossy(&header));
        match detect_layout(path, &names)? {
            TraceLayout::Long => match scan_long(path, rdr, start)? {
                Some(scan) => Ok(TraceFile {
                    experts: scan.experts,
                    layers: scan.layers,
                    steps: scan.steps,
                    max_count: scan.max_count,
                    source: path.display().to_string(),
                    path: path.to_path_buf(),
                    format: Format::Long {
                        step_offsets: scan.step_offsets,
                    },
                    data: None,
                }),
                None => {
                    // Rows in any order: sorted into a temporary binary trace with bounded memory.
                    let s = spill_long(path, start, BUCKET_CELLS)?;
                    Ok(TraceFile {
                        experts: s.header.experts as usize,
                        layers: s.header.layers as usize,
                        steps: s.header.steps as usize,
                        max_count: s.max_count,
                        source: path.display().to_string(),
                        path: path.to_path_buf(),
                        format: Format::Binary(s.header),
                        data: Some(Arc::new(s.data)),
                    })
                }
            },
            TraceLayout::Wide => {
                let experts = names.len() - 2;
                let scan = scan_wide(path, rdr, start, experts)?;
                Ok(TraceFile {
                    experts,
                    layers: scan.layers,
                    steps: scan.steps,
                    max_count: scan.max_count,
                    source: path.display().to_string(),
                    path: path.to_path_buf(),
                    format: Format::Wide {
                        step_offsets: scan.step_offsets,
                    },
                    data: None,
                })
            }
        }
    }

    /// [`TraceFile::open`], shared: a file opened before in this process with the same length and
    /// modification time is not checked again (the earlier check is reused); a file whose
    /// modification time cannot be read is always opened afresh. A long CSV sorted into a temporary
    /// binary trace is reused only while another holder keeps it (see [`Kept`]).
    pub fn open_shared(path: &Path) -> Result<Arc<TraceFile>, RoutingError> {
        let meta = std::fs::metadata(path).map_err(|e| io_err(path, e))?;
        let Ok(mtime) = meta.modified() else {
            return Ok(Arc::new(TraceFile::open(path)?));
        };
        let same = |o: &&Opened| o.0 == path && o.1 == meta.len() && o.2 == mtime;
        if let Some(t) = OPENED
            .lock()
            .ok()
            .and_then(|v| v.iter().find(same).and_then(|o| o.3.get()))
        {
            return Ok(t);
        }
        let t = Arc::new(TraceFile::open(path)?);
        if let Ok(mut v) = OPENED.lock() {
            v.retain(|o| o.0 != path);
            let kept = match t.data {
                Some(_) => Kept::Weak(Arc::downgrade(&t)),
                None => Kept::Strong(t.clone()),
            };
            v.push((path.to_path_buf(), meta.len(), mtime, kept));
            if v.len() > OPENED_KEEP {
                v.remove(0);
            }
        }
        Ok(t)
    }

    /// A trace already in memory (synthetic, or read whole), read through the same cursors.
    pub fn from_trace(t: RoutingTrace) -> TraceFile {
        TraceFile {
            experts: t.experts,
            layers: t.layers,
            steps: t.steps,
            max_count: t.max_count(),
            source: t.source.clone(),
            path: PathBuf::from(&t.source),
            format: Format::Memory(t),
            data: None,
        }
    }

    /// The temporary binary trace a long CSV was sorted into, if it was.
    #[cfg(test)]
    pub(super) fn sorted_into(&self) -> Option<&Path> {
        self.data.as_deref().map(|t| &**t)
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What the file is, for messages: `binary (u16)`, `wide CSV (streamed)`, `in memory`.
    pub fn format_name(&self) -> String {
        match &self.format {
            Format::Binary(_) if self.data.is_some() => {
                "long CSV (sorted into a temporary binary trace)".into()
            }
            Format::Binary(h) => format!("binary ({})", h.dtype.name()),
            Format::Wide { .. } => "wide CSV (streamed)".into(),
            Format::Long { .. } => "long CSV (streamed)".into(),
            Format::Memory(_) => "in memory".into(),
        }
    }

    /// Cells (step × layer × expert counts) in the trace.
    pub fn cells(&self) -> u64 {
        self.steps as u64 * self.layers as u64 * self.experts as u64
    }

    /// A reader of this trace's steps (opens the file again; each replay has its own).
    pub fn cursor(&self) -> Result<TraceCursor, RoutingError> {
        let reader = match &self.format {
            Format::Binary(h) => {
                let data: &Path = match &self.data {
                    Some(t) => t,
                    None => &self.path,
                };
                let f = File::open(data).map_err(|e| io_err(data, e))?;
                Reader::Binary {
                    rdr: BufReader::with_capacity(BINARY_BUFFER, f),
                    at: 0,
                    raw: vec![0; h.step_bytes() as usize],
                    dtype: h.dtype,
                }
            }
            Format::Wide { .. } => {
                let f = File::open(&self.path).map_err(|e| io_err(&self.path, e))?;
                Reader::Wide(WideSteps::new(BufReader::with_capacity(CSV_BUFFER, f)))
            }
            Format::Long { .. } => {
                let f = File::open(&self.path).map_err(|e| io_err(&self.path, e))?;
                Reader::Long(LongSteps::new(BufReader::with_capacity(CSV_BUFFER, f)))
            }
            Format::Memory(_) => Reader::Memory,
        };
        Ok(TraceCursor {
            reader,
            counts: vec![0; self.layers * self.experts],
            current: None,
        })
    }

    /// The whole trace in memory (for statistics and plots of traces that fit).
    pub fn load(&self) -> Result<RoutingTrace, RoutingError> {
        if let Format::Memory(t) = &self.format {
            return Ok(t.clone());
        }
        let cells = usize::try_from(self.cells()).map_err(|_| RoutingError::Shape {
            path: self.path.clone(),
            msg: format!("{} cells do not fit in memory", self.cells()),
        })?;
        let mut counts = Vec::with_capacity(cells);
        let mut c = self.cursor()?;
        for s in 0..self.steps {
            counts.extend_from_slice(c.step(self, s)?);
        }
        RoutingTrace::from_counts(self.experts, self.layers, counts, self.source.clone())
            .ok_or_else(|| RoutingError::Shape {
                path: self.path.clone(),
                msg: "empty trace".into(),
            })
    }
}

#[derive(Debug)]
enum Reader {
    Binary {
        rdr: BufReader<File>,
        /// Byte offset the reader stands at.
        at: u64,
        /// One step's raw bytes.
        raw: Vec<u8>,
        dtype: Dtype,
    },
    Wide(WideSteps<BufReader<File>>),
    Long(LongSteps<BufReader<File>>),
    Memory,
}

/// Reads one step of a [`TraceFile`] at a time into a buffer of one step (layers × experts counts).
#[derive(Debug)]
pub struct TraceCursor {
    reader: Reader,
    counts: Vec<u32>,
    /// The step `counts` holds.
    current: Option<usize>,
}

impl TraceCursor {
    /// Counts of trace step `step` (0-based), layer-major then expert; `file` is the trace this cursor
    /// was made from. Reading the next step on needs no seek; any other step seeks to it.
    pub fn step<'a>(
        &'a mut self,
        file: &'a TraceFile,
        step: usize,
    ) -> Result<&'a [u32], RoutingError> {
        if step >= file.steps {
            return Err(RoutingError::Shape {
                path: file.path.clone(),
                msg: format!("step {} asked of a trace of {} steps", step + 1, file.steps),
            });
        }
        match (&mut self.reader, &file.format) {
            (Reader::Memory, Format::Memory(t)) => return Ok(step_counts(t, step)),
            _ if self.current == Some(step) => {}
            (
                Reader::Binary {
                    rdr,
                    at,
                    raw,
                    dtype,
                },
                Format::Binary(h),
            ) => {
                let offset = HEADER_BYTES + step as u64 * h.step_bytes();
                self.current = None;
                if *at != offset {
                    // Unknown until the seek and read succeed.
                    *at = u64::MAX;
                    rdr.seek(SeekFrom::Start(offset))
                        .map_err(|e| io_err(&file.path, e))?;
                }
                *at = u64::MAX;
                rdr.read_exact(raw).map_err(|e| RoutingError::Offset {
                    path: file.path.clone(),
                    offset,
                    msg: format!(
                        "step {}: cannot read {} bytes: {e} (the file changed since it was checked at the start of the run?)",
                        step + 1,
                        raw.len()
                    ),
                })?;
                *at = offset + raw.len() as u64;
                dtype.decode(raw, &mut self.counts);
            }
            (Reader::Long(r), Format::Long { step_offsets }) => {
                self.current = None;
                r.read(
                    &file.path,
                    step,
                    step_offsets[step],
                    file.experts,
                    &mut self.counts,
                )?;
            }
            (Reader::Wide(w), Format::Wide { step_offsets }) => {
                self.current = None;
                w.read(
                    &file.path,
                    step,
                    step_offsets[step],
                    file.experts,
                    &mut self.counts,
                )?;
            }
            _ => {
                return Err(RoutingError::Shape {
                    path: file.path.clone(),
                    msg: "cursor used with another trace than its own".into(),
                })
            }
        }
        self.current = Some(step);
        Ok(&self.counts)
    }
}
