//! How sure is it: a Monte Carlo over forecast error, routing seed, per-GPU hardware spread and the
//! choice of loss law, each sample a full simulation of the scenario, reduced to p5/p50/p95 bands.
//!
//! Sits above `sim` and `report` (it runs the one and reads the other's summary rows); `report` only
//! reads the files it writes (uncertainty.csv, uncertainty_timeline.csv, uncertainty_info.json, uncertainty_by_law.csv).

mod bands;
mod by_law;
mod sample;
mod spec;

pub use bands::{
    all_bands, band_lines, bands_csv, bands_of, info_json, p5_p50_p95, percentile, saving_rows,
    timeline_csv, write_files, Band, COMPARISONS, PERCENTILES, SAVING_FIGURES,
};
pub use by_law::{bands_by_law, by_law_csv, by_law_lines, short_law, LawBand};
pub use sample::{numeric_columns, run_samples, SampleRow, SampleTimeline, Sampled};
pub use spec::{draw, hardware_factors, perturbed, scaled_accelerator, Draw};

/// Why a Monte Carlo could not run.
#[derive(Debug, thiserror::Error)]
pub enum UncertaintyError {
    /// Zero samples were asked for.
    #[error("--samples must be at least 1")]
    NoSamples,
    /// One sample's simulation failed.
    #[error("uncertainty sample {index}: {source}")]
    Sample {
        /// The sample's index.
        index: u32,
        /// What went wrong.
        source: Box<crate::SimError>,
    },
}

impl UncertaintyError {
    /// Whether the error is the input's fault (exit code 2) rather than a failed run (exit code 1).
    pub fn is_input_error(&self) -> bool {
        match self {
            UncertaintyError::NoSamples => true,
            UncertaintyError::Sample { source, .. } => source.is_input_error(),
        }
    }
}
