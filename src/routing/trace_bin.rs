//! The compact binary routing trace (`.moetrace`): a 32-byte header, then every count, step-major.
//!
//! Layout (all integers little-endian):
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 8 | magic `MOETRACE` |
//! | 8 | 4 | format version (u32, this reader: 1) |
//! | 12 | 4 | dtype: bytes per count (u32: 1 = u8, 2 = u16, 4 = u32) |
//! | 16 | 8 | steps (u64, ≥ 1) |
//! | 24 | 4 | layers (u32, ≥ 1) |
//! | 28 | 4 | experts (u32, ≥ 1) |
//! | 32 | steps × layers × experts × dtype | counts, step-major, then layer, then expert |
//!
//! The file must be exactly that long; step `s` (0-based) starts at byte `32 + s × layers × experts × dtype`,
//! which is what lets replay seek to any step (loop, bootstrap) without an index.

use super::RoutingError;
use std::io::Write;
use std::path::Path;

/// The first eight bytes of every binary trace.
pub const MAGIC: [u8; 8] = *b"MOETRACE";
/// The format version this reader reads and the writer writes.
pub const VERSION: u32 = 1;
/// Header length [bytes]; counts start here.
pub const HEADER_BYTES: u64 = 32;
/// The extension `moesim trace convert` writes binary traces with.
pub const EXTENSION: &str = "moetrace";

/// How each count is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dtype {
    /// One byte (counts up to 255).
    U8,
    /// Two bytes (counts up to 65,535).
    U16,
    /// Four bytes (counts up to 4,294,967,295).
    U32,
}

impl Dtype {
    /// Every dtype by name, smallest first.
    pub const ALL: [(Dtype, &'static str); 3] =
        [(Dtype::U8, "u8"), (Dtype::U16, "u16"), (Dtype::U32, "u32")];

    /// Bytes per count.
    pub fn bytes(self) -> usize {
        match self {
            Dtype::U8 => 1,
            Dtype::U16 => 2,
            Dtype::U32 => 4,
        }
    }

    /// Largest count it holds.
    pub fn max(self) -> u32 {
        match self {
            Dtype::U8 => u8::MAX as u32,
            Dtype::U16 => u16::MAX as u32,
            Dtype::U32 => u32::MAX,
        }
    }

    /// Its name (`u8`, `u16`, `u32`).
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(d, _)| *d == self)
            .map_or("?", |(_, n)| *n)
    }

    /// The dtype called `name`, if any.
    pub fn from_name(name: &str) -> Option<Dtype> {
        Self::ALL.iter().find(|(_, n)| *n == name).map(|(d, _)| *d)
    }

    /// The smallest dtype that holds `max_count`.
    pub fn smallest_for(max_count: u32) -> Dtype {
        Self::ALL
            .iter()
            .map(|(d, _)| *d)
            .find(|d| d.max() >= max_count)
            .unwrap_or(Dtype::U32)
    }

    fn from_code(code: u32) -> Option<Dtype> {
        Self::ALL
            .iter()
            .map(|(d, _)| *d)
            .find(|d| d.bytes() as u32 == code)
    }

    /// Decode `raw` (this dtype, little-endian) into `out`, one count per cell.
    pub fn decode(self, raw: &[u8], out: &mut [u32]) {
        match self {
            Dtype::U8 => out.iter_mut().zip(raw).for_each(|(o, &b)| *o = b as u32),
            Dtype::U16 => out
                .iter_mut()
                .zip(raw.chunks_exact(2))
                .for_each(|(o, b)| *o = u16::from_le_bytes([b[0], b[1]]) as u32),
            Dtype::U32 => out
                .iter_mut()
                .zip(raw.chunks_exact(4))
                .for_each(|(o, b)| *o = u32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        }
    }

    /// Append `counts` in this dtype, little-endian; every count must fit (checked by the caller).
    pub fn encode(self, counts: &[u32], out: &mut Vec<u8>) {
        match self {
            Dtype::U8 => out.extend(counts.iter().map(|&c| c as u8)),
            Dtype::U16 => counts
                .iter()
                .for_each(|&c| out.extend_from_slice(&(c as u16).to_le_bytes())),
            Dtype::U32 => counts
                .iter()
                .for_each(|&c| out.extend_from_slice(&c.to_le_bytes())),
        }
    }
}

/// The header of a binary trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Steps recorded.
    pub steps: u64,
    /// Layers per step.
    pub layers: u32,
    /// Experts per layer.
    pub experts: u32,
    /// How each count is stored.
    pub dtype: Dtype,
}

impl Header {
    /// Bytes of one step's counts.
    pub fn step_bytes(&self) -> u64 {
        // Saturates rather than wraps for a corrupt header (parse then reports the size as overflowing).
        (self.layers as u64 * self.experts as u64).saturating_mul(self.dtype.bytes() as u64)
    }

    /// The 32 header bytes.
    pub fn to_bytes(&self) -> [u8; HEADER_BYTES as usize] {
        let mut b = [0u8; HEADER_BYTES as usize];
        b[0..8].copy_from_slice(&MAGIC);
        b[8..12].copy_from_slice(&VERSION.to_le_bytes());
        b[12..16].copy_from_slice(&(self.dtype.bytes() as u32).to_le_bytes());
        b[16..24].copy_from_slice(&self.steps.to_le_bytes());
        b[24..28].copy_from_slice(&self.layers.to_le_bytes());
        b[28..32].copy_from_slice(&self.experts.to_le_bytes());
        b
    }

    /// Check the header bytes at the start of `path` (whose length is `file_len`) and that the file holds
    /// exactly the counts the header promises.
    pub fn parse(path: &Path, bytes: &[u8], file_len: u64) -> Result<Header, RoutingError> {
        let err = |offset: u64, msg: String| RoutingError::Offset {
            path: path.to_path_buf(),
            offset,
            msg,
        };
        if bytes.len() < HEADER_BYTES as usize {
            return Err(err(
                bytes.len() as u64,
                format!(
                    "file ends after {} bytes, inside the {HEADER_BYTES}-byte header (truncated binary trace?)",
                    bytes.len()
                ),
            ));
        }
        let u32_at =
            |o: usize| u32::from_le_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]);
        if bytes[0..8] != MAGIC {
            return Err(err(
                0,
                format!(
                    "magic is {:?}, expected `MOETRACE` (not a moesim binary trace; a CSV trace starts with the header `step,layer,...`)",
                    String::from_utf8_lossy(&bytes[0..8])
                ),
            ));
        }
        let version = u32_at(8);
        if version != VERSION {
            return Err(err(
                8,
                format!("format version {version}; this moesim reads version {VERSION} (re-convert the trace with `moesim trace convert`)"),
            ));
        }
        let code = u32_at(12);
        let dtype = Dtype::from_code(code).ok_or_else(|| {
            err(
                12,
                format!("dtype {code} bytes per count; valid: 1 (u8), 2 (u16), 4 (u32)"),
            )
        })?;
        let mut steps = [0u8; 8];
        steps.copy_from_slice(&bytes[16..24]);
        let h = Header {
            steps: u64::from_le_bytes(steps),
            layers: u32_at(24),
            experts: u32_at(28),
            dtype,
        };
        for (off, name, v) in [
            (16, "steps", h.steps),
            (24, "layers", h.layers as u64),
            (28, "experts", h.experts as u64),
        ] {
            if v == 0 {
                return Err(err(off, format!("{name} = 0; a trace has at least 1")));
            }
        }
        let want = (h.layers as u64 * h.experts as u64)
            .checked_mul(dtype.bytes() as u64)
            .and_then(|b| b.checked_mul(h.steps))
            .and_then(|d| d.checked_add(HEADER_BYTES));
        match want {
            Some(w) if w == file_len => Ok(h),
            Some(w) if w > file_len => {
                let have = file_len - HEADER_BYTES;
                Err(err(
                    file_len,
                    format!(
                        "truncated: the header promises {} steps × {} layers × {} experts of {} ({w} bytes in all) but the file has {file_len} bytes; it ends inside step {} (of 1..={})",
                        h.steps, h.layers, h.experts, dtype.name(), have / h.step_bytes() + 1, h.steps
                    ),
                ))
            }
            Some(w) => Err(err(
                w,
                format!(
                    "{} bytes follow the last step: the header promises {} steps × {} layers × {} experts of {} ({w} bytes) but the file has {file_len} (shape in the header does not match the data)",
                    file_len - w, h.steps, h.layers, h.experts, dtype.name()
                ),
            )),
            None => Err(err(
                16,
                format!(
                    "{} steps × {} layers × {} experts overflows a file size (corrupt header?)",
                    h.steps, h.layers, h.experts
                ),
            )),
        }
    }
}

/// Writes a binary trace step by step; `finish` checks the step count and flushes.
pub struct BinaryWriter<W: Write> {
    out: W,
    header: Header,
    written: u64,
    buf: Vec<u8>,
}

impl<W: Write> BinaryWriter<W> {
    /// Start a trace of `header`'s shape on `out` (writes the header).
    pub fn new(mut out: W, header: Header) -> std::io::Result<Self> {
        out.write_all(&header.to_bytes())?;
        Ok(Self {
            out,
            header,
            written: 0,
            buf: Vec::with_capacity(header.step_bytes() as usize),
        })
    }

    /// Append one step's counts (layers × experts); a count over the dtype's maximum is an error.
    pub fn step(&mut self, counts: &[u32]) -> std::io::Result<()> {
        let h = &self.header;
        let cells = h.layers as usize * h.experts as usize;
        if counts.len() != cells || self.written >= h.steps {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "step {} of {} cells does not fit a trace of {} steps × {cells} cells",
                    self.written + 1,
                    counts.len(),
                    h.steps
                ),
            ));
        }
        if let Some(c) = counts.iter().find(|&&c| c > h.dtype.max()) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "count {c} in step {} exceeds {} ({}); use a wider dtype",
                    self.written + 1,
                    h.dtype.max(),
                    h.dtype.name()
                ),
            ));
        }
        self.buf.clear();
        h.dtype.encode(counts, &mut self.buf);
        self.out.write_all(&self.buf)?;
        self.written += 1;
        Ok(())
    }

    /// Flush, checking every step was written; returns the writer.
    pub fn finish(mut self) -> std::io::Result<W> {
        if self.written != self.header.steps {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("{} of {} steps written", self.written, self.header.steps),
            ));
        }
        self.out.flush()?;
        Ok(self.out)
    }
}
