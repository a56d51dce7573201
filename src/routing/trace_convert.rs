//! Converting a trace between the wide CSV and the binary format, streamed one step at a time.

use super::trace_bin::{BinaryWriter, Dtype, Header, EXTENSION};
use super::{RoutingError, TraceFile};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// What a conversion writes, chosen by the output's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceFormat {
    /// The binary format (`.moetrace`) with counts of this dtype.
    Binary(Dtype),
    /// Wide CSV (`.csv`).
    WideCsv,
}

/// A conversion that failed: the input, the flags or the output.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// The input trace is unreadable or malformed.
    #[error(transparent)]
    Input(#[from] RoutingError),
    /// The output or a flag is not valid.
    #[error("{path}: {msg}")]
    Invalid {
        /// Output file.
        path: PathBuf,
        /// What is wrong and what would be valid.
        msg: String,
    },
    /// The output could not be written.
    #[error("{path}: cannot write: {source}")]
    Write {
        /// Output file.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
}

/// The format `out` asks for by its extension, with `dtype` (`u8`, `u16`, `u32`, or `None` for the
/// smallest that holds every count of `input`) for a binary output.
pub fn output_format(
    input: &TraceFile,
    out: &Path,
    dtype: Option<&str>,
) -> Result<TraceFormat, ConvertError> {
    let invalid = |msg: String| ConvertError::Invalid {
        path: out.to_path_buf(),
        msg,
    };
    let ext = out.extension().and_then(|e| e.to_str()).unwrap_or("");
    if ext == "csv" {
        return match dtype {
            None => Ok(TraceFormat::WideCsv),
            Some(_) => Err(invalid(format!(
                "--dtype applies to a binary output (`.{EXTENSION}`), not to CSV"
            ))),
        };
    }
    if ext != EXTENSION {
        return Err(invalid(format!(
            "extension `.{ext}`; valid: `.{EXTENSION}` (binary) or `.csv` (wide CSV)"
        )));
    }
    let max = max_count(input)?;
    let names = || Dtype::ALL.map(|(_, n)| n).join(", ");
    match dtype {
        None => Ok(TraceFormat::Binary(Dtype::smallest_for(max))),
        Some(name) => {
            let d = Dtype::from_name(name)
                .ok_or_else(|| invalid(format!("--dtype `{name}`; valid: {}", names())))?;
            if max > d.max() {
                return Err(invalid(format!(
                    "--dtype {name} holds counts up to {}, but the trace has a count of {max}; use {}",
                    d.max(),
                    Dtype::smallest_for(max).name()
                )));
            }
            Ok(TraceFormat::Binary(d))
        }
    }
}

/// The largest count of `t` (a pass over a binary trace, whose header gives only the dtype's bound).
fn max_count(t: &TraceFile) -> Result<u32, RoutingError> {
    if !t.format_name().starts_with("binary") {
        return Ok(t.max_count);
    }
    let mut c = t.cursor()?;
    let mut max = 0;
    for s in 0..t.steps {
        max = c.step(t, s)?.iter().fold(max, |m, &x| m.max(x));
    }
    Ok(max)
}

/// Write `input` to `out` in `format`, one step at a time, through a temporary file and a rename (an
/// interrupted conversion leaves no half-written trace).
pub fn convert(input: &TraceFile, out: &Path, format: TraceFormat) -> Result<(), ConvertError> {
    let werr = |source| ConvertError::Write {
        path: out.to_path_buf(),
        source,
    };
    let dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(werr)?;
    let tmp = dir.join(format!(
        ".{}.tmp",
        out.file_name().and_then(|n| n.to_str()).unwrap_or("trace")
    ));
    let result = write_to(input, &tmp, format);
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(match e {
            ConvertError::Write { source, .. } => werr(source),
            e => e,
        });
    }
    std::fs::rename(&tmp, out).map_err(werr)
}

fn write_to(input: &TraceFile, path: &Path, format: TraceFormat) -> Result<(), ConvertError> {
    let werr = |source| ConvertError::Write {
        path: path.to_path_buf(),
        source,
    };
    let f = std::fs::File::create(path).map_err(werr)?;
    let out = BufWriter::with_capacity(1 << 16, f);
    let mut cursor = input.cursor()?;
    let f = match format {
        TraceFormat::Binary(dtype) => {
            let header = Header {
                steps: input.steps as u64,
                layers: input.layers as u32,
                experts: input.experts as u32,
                dtype,
            };
            let mut w = BinaryWriter::new(out, header).map_err(werr)?;
            for s in 0..input.steps {
                w.step(cursor.step(input, s)?).map_err(werr)?;
            }
            w.finish().map_err(werr)?
        }
        TraceFormat::WideCsv => {
            let mut out = out;
            use std::fmt::Write as _;
            let mut line = String::from("step,layer");
            for e in 0..input.experts {
                let _ = write!(line, ",e{e}");
            }
            writeln!(out, "{line}").map_err(werr)?;
            for s in 0..input.steps {
                let counts = cursor.step(input, s)?;
                for (l, row) in counts.chunks_exact(input.experts).enumerate() {
                    line.clear();
                    let _ = write!(line, "{},{l}", s + 1);
                    for c in row {
                        let _ = write!(line, ",{c}");
                    }
                    writeln!(out, "{line}").map_err(werr)?;
                }
            }
            out.flush().map_err(werr)?;
            out
        }
    };
    let f = f.into_inner().map_err(|e| werr(e.into_error()))?;
    f.sync_all().map_err(werr)
}
