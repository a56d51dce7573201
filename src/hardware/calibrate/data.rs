//! The measurement files a calibration reads (the `../shared/data/h100` format), as serde rows.
//!
//! Each file is read by one generic reader: the header must hold every column the row type
//! names, every row is deserialised with serde, and an error names the file, the 1-based line
//! and the column. Extra columns (the raw `seconds`, `joules`, sampled powers …) are ignored.

use std::cell::Cell;
use std::fs::File;
use std::path::{Path, PathBuf};

use serde::de::value::MapDeserializer;
use serde::de::{DeserializeOwned, Deserializer, Error as _};
use serde::Deserialize;

use crate::hardware::HardwareError;

/// One row of micro.csv.
#[derive(Clone, Debug, Deserialize)]
pub struct MicroRow {
    /// Kernel kind ("idle", "gemm_bf16", "gemm_fp32", "copy_bf16", "silu_bf16").
    pub kind: String,
    /// Shape text ("MxKxN" for GEMMs).
    pub shape: String,
    /// Mean power from the energy counter [W].
    #[serde(deserialize_with = "finite")]
    pub mean_w: f64,
    /// Mean sampled SM clock [MHz].
    #[serde(deserialize_with = "finite")]
    pub mean_sm_mhz: f64,
    /// FLOPs per call [FLOP].
    #[serde(deserialize_with = "optional")]
    pub flops: Option<f64>,
    /// Bytes per call [bytes].
    #[serde(deserialize_with = "optional")]
    pub bytes: Option<f64>,
    /// Time per call [s].
    #[serde(deserialize_with = "optional")]
    pub s_per_iter: Option<f64>,
    /// Energy per call [J].
    #[serde(deserialize_with = "optional")]
    pub j_per_iter: Option<f64>,
}

impl MicroRow {
    /// GEMM dimensions (m, k, n) parsed from the shape, if this is a GEMM row.
    pub fn gemm_mkn(&self) -> Option<(f64, f64, f64)> {
        let mut it = self.shape.split('x').map(|s| s.parse::<f64>().ok());
        let (m, k, n) = (it.next()??, it.next()??, it.next()??);
        Some((m, k, n))
    }
}

/// One row of attn.csv.
#[derive(Clone, Debug, Deserialize)]
pub struct AttnRow {
    /// Batch size.
    #[serde(deserialize_with = "finite")]
    pub batch: f64,
    /// Sequence length [tokens].
    #[serde(deserialize_with = "finite")]
    pub seq: f64,
    /// Attention heads.
    #[serde(deserialize_with = "finite")]
    pub heads: f64,
    /// Head dimension.
    #[serde(deserialize_with = "finite")]
    pub head_dim: f64,
    /// FLOPs per fwd+bwd (causal half, backward 2.5x forward) [FLOP].
    #[serde(deserialize_with = "finite")]
    pub flops: f64,
    /// Mean sampled SM clock [MHz].
    #[serde(deserialize_with = "finite")]
    pub mean_sm_mhz: f64,
    /// Time per fwd+bwd [s].
    #[serde(deserialize_with = "finite")]
    pub s_per_iter: f64,
    /// Energy per fwd+bwd [J].
    #[serde(deserialize_with = "finite")]
    pub j_per_iter: f64,
}

/// One row of moe_layer.csv.
#[derive(Clone, Debug, Deserialize)]
pub struct MoeRow {
    /// Tokens in the layer's batch.
    #[serde(deserialize_with = "finite")]
    pub tokens: f64,
    /// Model width.
    #[serde(deserialize_with = "finite")]
    pub hidden: f64,
    /// Expert (or dense) FFN width.
    #[serde(deserialize_with = "finite")]
    pub ffn: f64,
    /// Number of experts.
    #[serde(deserialize_with = "finite")]
    pub experts: f64,
    /// Experts per token.
    #[serde(deserialize_with = "finite")]
    pub top_k: f64,
    /// Routing distribution label.
    pub dist: String,
    /// "dropless", "capacity1.25", "routing_only" or "dense_equal_active".
    pub mode: String,
    /// Tokens assigned to each expert (empty when not applicable).
    #[serde(deserialize_with = "counts")]
    pub counts: Vec<u32>,
    /// Time per fwd+bwd [s].
    #[serde(deserialize_with = "finite")]
    pub s_per_iter: f64,
    /// Energy per fwd+bwd [J].
    #[serde(deserialize_with = "finite")]
    pub j_per_iter: f64,
}

/// The rows of one measurement file and the path they were read from.
#[derive(Clone, Debug)]
pub struct Measured<T> {
    /// The file read (named in the fitted preset's sources).
    pub path: PathBuf,
    /// Its rows, in file order.
    pub rows: Vec<T>,
}

impl<T: DeserializeOwned> Measured<T> {
    /// Read and deserialise every row of `path`.
    pub fn read(path: &Path) -> Result<Self, HardwareError> {
        Ok(Measured {
            path: path.to_path_buf(),
            rows: read_rows(path)?,
        })
    }
}

/// Everything a calibration is fitted to: micro-benchmarks always, attention and MoE-layer rows
/// when given.
#[derive(Clone, Debug)]
pub struct CalibrationData {
    /// micro.csv: idle, GEMMs, copy, SiLU.
    pub micro: Measured<MicroRow>,
    /// attn.csv: causal flash attention forward + backward.
    pub attn: Option<Measured<AttnRow>>,
    /// moe_layer.csv: one MoE layer forward + backward.
    pub moe: Option<Measured<MoeRow>>,
}

impl CalibrationData {
    /// Read the files given (attention and MoE layer optional).
    pub fn read(
        micro: &Path,
        attn: Option<&Path>,
        moe: Option<&Path>,
    ) -> Result<Self, HardwareError> {
        Ok(CalibrationData {
            micro: Measured::read(micro)?,
            attn: attn.map(Measured::read).transpose()?,
            moe: moe.map(Measured::read).transpose()?,
        })
    }

    /// Read micro.csv, attn.csv and moe_layer.csv from one folder (the shared H100 layout).
    pub fn read_dir(dir: &Path) -> Result<Self, HardwareError> {
        Self::read(
            &dir.join("micro.csv"),
            Some(&dir.join("attn.csv")),
            Some(&dir.join("moe_layer.csv")),
        )
    }
}

fn csv_err(path: &Path, line: u64, field: &str, message: String) -> HardwareError {
    HardwareError::Csv {
        path: path.display().to_string(),
        line,
        field: field.to_string(),
        message,
    }
}

/// Every row of the CSV file `path` as `T`; errors name the file, line and column.
fn read_rows<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>, HardwareError> {
    let file = File::open(path).map_err(|source| HardwareError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let mut rdr = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(file);
    let headers = rdr
        .headers()
        .map_err(|e| csv_err(path, 1, "header", e.to_string()))?
        .clone();
    // A missing column is reported once, at the header, rather than as a serde error per row.
    if let Some(missing) = columns::<T>()
        .iter()
        .find(|c| !headers.iter().any(|h| h == **c))
    {
        return Err(csv_err(path, 1, missing, "column missing".into()));
    }
    let mut rows = Vec::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| {
            let line = e.position().map_or(0, |q| q.line());
            csv_err(path, line, "row", e.to_string())
        })?;
        let line = rec.position().map_or(0, |q| q.line());
        // The row is fed to serde as a map of header -> cell, and the column being read is
        // tracked here, so an error from a cell's parser names its column.
        let column = Cell::new("row");
        let cells = headers
            .iter()
            .zip(rec.iter())
            .inspect(|(h, _)| column.set(h));
        let row = T::deserialize(MapDeserializer::<_, serde::de::value::Error>::new(cells))
            .map_err(|e| csv_err(path, line, column.get(), e.to_string()))?;
        rows.push(row);
    }
    Ok(rows)
}

/// A required finite number (an empty cell is an error).
fn finite<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    optional(d)?.ok_or_else(|| D::Error::custom("empty; expected a finite number"))
}

/// An optional finite number: an empty cell or `-` is absent.
fn optional<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    let s = String::deserialize(d)?;
    if s.is_empty() || s == "-" {
        return Ok(None);
    }
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(Some(v)),
        _ => Err(D::Error::custom(format!("'{s}' is not a finite number"))),
    }
}

/// Per-expert token counts, `;`-separated (empty cell = none).
fn counts<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u32>, D::Error> {
    let s = String::deserialize(d)?;
    if s.is_empty() {
        return Ok(Vec::new());
    }
    s.split(';')
        .map(|c| {
            c.trim().parse::<u32>().map_err(|_| {
                D::Error::custom(format!(
                    "'{c}' is not a non-negative integer; expected e.g. 2009;2037"
                ))
            })
        })
        .collect()
}

/// The field names of the struct `T` deserialises into (its required CSV columns), read from
/// serde's derive by a deserializer that records what `deserialize_struct` is asked for.
fn columns<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    struct Probe<'a>(&'a mut &'static [&'static str]);
    impl<'de> Deserializer<'de> for Probe<'_> {
        type Error = serde::de::value::Error;
        fn deserialize_any<V: serde::de::Visitor<'de>>(
            self,
            _: V,
        ) -> Result<V::Value, Self::Error> {
            Err(Self::Error::custom("not a struct"))
        }
        fn deserialize_struct<V: serde::de::Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            *self.0 = fields;
            Err(Self::Error::custom("probe only"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
            option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
            ignored_any
        }
    }
    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(Probe(&mut fields));
    fields
}
