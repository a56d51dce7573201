//! The numeric format a job trains in (read by the workload for element sizes, by hardware for peak rates).

use std::fmt;
use std::str::FromStr;

/// Arithmetic precision of a kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Precision {
    /// IEEE fp32 on the SIMT (non-tensor) units.
    Fp32,
    /// TF32 tensor-core math (fp32 storage).
    Tf32,
    /// bfloat16 tensor-core math.
    Bf16,
    /// IEEE fp16 tensor-core math.
    Fp16,
    /// 8-bit float (E4M3/E5M2) tensor-core math.
    Fp8,
}

impl Precision {
    /// All precisions, in a fixed order.
    pub const ALL: [Precision; 5] = [
        Precision::Fp32,
        Precision::Tf32,
        Precision::Bf16,
        Precision::Fp16,
        Precision::Fp8,
    ];

    /// Storage size of one element [bytes].
    pub fn bytes_per_element(self) -> f64 {
        match self {
            Precision::Fp32 | Precision::Tf32 => 4.0,
            Precision::Bf16 | Precision::Fp16 => 2.0,
            Precision::Fp8 => 1.0,
        }
    }

    /// Whether the precision runs on tensor cores / matrix units (false only for plain fp32).
    pub fn is_tensor(self) -> bool {
        !matches!(self, Precision::Fp32)
    }

    /// Lower-case name used in files and on the command line ("bf16").
    pub fn as_str(self) -> &'static str {
        match self {
            Precision::Fp32 => "fp32",
            Precision::Tf32 => "tf32",
            Precision::Bf16 => "bf16",
            Precision::Fp16 => "fp16",
            Precision::Fp8 => "fp8",
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A precision name that does not exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown precision '{value}'; valid: fp32, tf32, bf16, fp16, fp8")]
pub struct UnknownPrecision {
    /// The text given.
    pub value: String,
}

impl FromStr for Precision {
    type Err = UnknownPrecision;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        Precision::ALL
            .iter()
            .copied()
            .find(|p| p.as_str() == lower)
            .ok_or_else(|| UnknownPrecision {
                value: s.to_string(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_text() {
        for p in Precision::ALL {
            assert_eq!(p.to_string().parse::<Precision>().ok(), Some(p));
        }
        assert_eq!("BF16".parse::<Precision>().ok(), Some(Precision::Bf16));
    }

    #[test]
    fn unknown_precision_lists_valid_names() {
        let err = "int4".parse::<Precision>().err().map(|e| e.to_string());
        let msg = err.unwrap_or_default();
        assert!(msg.contains("int4") && msg.contains("bf16") && msg.contains("fp8"));
    }

    #[test]
    fn element_sizes() {
        assert_eq!(Precision::Bf16.bytes_per_element(), 2.0);
        assert_eq!(Precision::Fp32.bytes_per_element(), 4.0);
        assert_eq!(Precision::Fp8.bytes_per_element(), 1.0);
    }
}
