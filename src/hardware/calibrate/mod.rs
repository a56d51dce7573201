//! Calibrate a preset from measurement CSVs in three parts: data (serde rows), fit, residuals.
//!
//! [`calibrate`] is the one path: `moesim calibrate` calls it, the preset test checks that it
//! reproduces the shipped `h100` preset from `../shared/data/h100`, and `moesim validate` and
//! `hardware::validation` hold presets to the measurements with the same [`residuals`].

mod data;
mod fit;
mod residuals;
#[cfg(test)]
mod tests;

use std::path::Path;

pub use data::{AttnRow, CalibrationData, Measured, MicroRow, MoeRow};
pub use fit::{
    apply_micro_fit, attn_power_rows, fit, fit_attention, fit_index_mem_eff, fit_loop_scale,
    fit_micro, fit_power_rows, Fitted, MicroFit, PowerRow,
};
pub use residuals::{
    attn_residuals, micro_residuals, moe_residuals, residual_table, residuals, Residual, RowGroup,
};

use super::{Accelerator, HardwareError};

/// What `calibrate` fitted (the preset and its coefficients) and the preset's residuals.
#[derive(Debug, Clone)]
pub struct Calibration {
    /// The fitted preset and the coefficients behind it.
    pub fitted: Fitted,
    /// The fitted preset against every row read.
    pub residuals: Vec<Residual>,
}

/// Read the measurement files (micro-benchmarks always, attention and MoE layer when given), fit
/// `base`'s efficiency and power coefficients to them (see [`fit`]), name the result `key`, and
/// list its residuals against every row read.
pub fn calibrate(
    base: &Accelerator,
    key: &str,
    micro: &Path,
    attn: Option<&Path>,
    moe: Option<&Path>,
) -> Result<Calibration, HardwareError> {
    let data = CalibrationData::read(micro, attn, moe)?;
    let fitted = fit(base, key, &data)?;
    let residuals = residuals(&fitted.accelerator, &data);
    Ok(Calibration { fitted, residuals })
}
