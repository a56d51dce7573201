//! Validation of `[uncertainty]`: the Monte Carlo's sample count, seed offset, sources and spreads.

use super::super::raw::RawUncertainty;
use super::super::ScenarioError;
use super::Validator;

/// Relative standard deviation of the planner's carbon-intensity forecast when the `forecast` source is
/// on and the table does not say: 0.12 = a mean absolute percentage error of 9.59 % turned into the σ
/// of a normal error (MAPE = σ·√(2/π)). Source: CarbonX, "An Open-Source Tool for Computational
/// Decarbonization Using Time Series Foundation Models" (2025), abstract: average carbon-intensity
/// forecast MAPE over 13 benchmark grids, comparable with the state of the art (CarbonCast).
pub const DEFAULT_FORECAST_ERROR: f64 = 0.0959 / 0.797_884_560_802_865_4;

/// Relative standard deviation of one GPU's speed against the median GPU of its SKU: 0.0148. Sinha et
/// al. 2022 ("Not All GPUs Are Created Equal", SC'22, arXiv:2208.11035v3, abstract and the box plots of
/// §IV–V) report an 8 % average performance variation across GPUs of one SKU, where variation is the
/// span of the box plot's whiskers over the median, (Q3 + 1.5·IQR) − (Q1 − 1.5·IQR) = 4·IQR (their
/// artifact's `plot_script/plot_aggregated.py`): IQR = 2 % of the median, σ = IQR/1.349 for a normal spread.
pub const DEFAULT_GPU_SPEED_SPREAD: f64 = 0.08 / 4.0 / 1.349;

/// Relative standard deviation of one GPU's power draw at a given clock: assumed equal to the speed
/// spread. Sinha et al. 2022 find the spread mostly in the clock the power manager settles at under the
/// power limit (chips that need more power for a clock run slower), so the two come from one cause; the
/// paper gives no separate figure for power at a fixed clock, hence this assumption (override it here).
pub const DEFAULT_GPU_POWER_SPREAD: f64 = DEFAULT_GPU_SPEED_SPREAD;

/// Samples when `[uncertainty]` does not say and `--samples` is not given.
pub const DEFAULT_SAMPLES: u32 = 32;

/// The most samples a run may ask for (each one is a full simulation of every strategy).
pub const MAX_SAMPLES: u32 = 100_000;

/// A source of uncertainty the Monte Carlo can redraw per sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum UncertaintySource {
    /// The circadian planner's forecast error: a new forecast draw per sample.
    Forecast,
    /// The routing seed: a new draw of every random routing choice per sample.
    Routing,
    /// Per-GPU spread in speed and power around the preset.
    Hardware,
    /// The choice of scaling law behind the estimated loss, among those that apply.
    QualityLaw,
}

impl UncertaintySource {
    /// Every source with its scenario name, in the order the report lists them.
    pub const ALL: [(UncertaintySource, &'static str); 4] = [
        (UncertaintySource::Forecast, "forecast"),
        (UncertaintySource::Routing, "routing"),
        (UncertaintySource::Hardware, "hardware"),
        (UncertaintySource::QualityLaw, "quality_law"),
    ];

    /// The name in scenario files.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(s, _)| *s == self)
            .map(|(_, n)| *n)
            .unwrap_or("?")
    }

    /// Look a name up.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().find(|(_, n)| *n == name).map(|(s, _)| *s)
    }
}

/// A validated `[uncertainty]` table (or the defaults `moesim run --samples N` uses without one).
#[derive(Debug, Clone, PartialEq)]
pub struct UncertaintySpec {
    /// Samples to draw (each a full simulation of the scenario) [count, ≥ 1].
    pub samples: u32,
    /// Added to the scenario seed to root the Monte Carlo's own draws (another offset, other samples).
    pub seed_offset: u64,
    /// The sources redrawn per sample, in [`UncertaintySource::ALL`] order; the others stay as the
    /// scenario gives them.
    pub sources: Vec<UncertaintySource>,
    /// Relative standard deviation of the planner's forecast in the samples [fraction, 0–1].
    pub forecast_error: f64,
    /// Relative standard deviation of one GPU's speed [fraction, 0–0.1].
    pub gpu_speed_spread: f64,
    /// Relative standard deviation of one GPU's power at a given clock [fraction, 0–0.1].
    pub gpu_power_spread: f64,
    /// Split every sample's savings by cause too (its counterfactual runs: about three times the
    /// runs of a sample), for bands on each `saving_*` part.
    pub split: bool,
}

impl Default for UncertaintySpec {
    fn default() -> Self {
        Self {
            samples: DEFAULT_SAMPLES,
            seed_offset: 0,
            sources: UncertaintySource::ALL.iter().map(|(s, _)| *s).collect(),
            forecast_error: DEFAULT_FORECAST_ERROR,
            gpu_speed_spread: DEFAULT_GPU_SPEED_SPREAD,
            gpu_power_spread: DEFAULT_GPU_POWER_SPREAD,
            split: true,
        }
    }
}

impl UncertaintySpec {
    /// Whether `source` is redrawn per sample.
    pub fn has(&self, source: UncertaintySource) -> bool {
        self.sources.contains(&source)
    }
}

impl Validator<'_> {
    pub(super) fn uncertainty(&self, u: &RawUncertainty) -> Result<UncertaintySpec, ScenarioError> {
        let d = UncertaintySpec::default();
        let samples = match u.samples {
            None => d.samples,
            Some(n) if n >= 1 && n <= MAX_SAMPLES as i64 => n as u32,
            Some(n) => {
                return Err(self.loc.invalid(
                    "uncertainty.samples",
                    format!("must be a whole number from 1 to {MAX_SAMPLES}, got {n}"),
                ))
            }
        };
        let seed_offset = match u.seed_offset {
            None => 0,
            Some(o) if o >= 0 => o as u64,
            Some(o) => {
                return Err(self.loc.invalid(
                    "uncertainty.seed_offset",
                    format!("must be a non-negative integer, got {o}"),
                ))
            }
        };
        let sources = match &u.sources {
            None => d.sources.clone(),
            Some(names) => {
                let mut out = Vec::new();
                for (i, n) in names.iter().enumerate() {
                    let key = format!("uncertainty.sources.{i}");
                    let s = UncertaintySource::from_name(n).ok_or_else(|| {
                        let valid: Vec<&str> =
                            UncertaintySource::ALL.iter().map(|(_, n)| *n).collect();
                        self.loc.invalid(
                            &key,
                            format!("unknown source `{n}`; valid: {}", valid.join(", ")),
                        )
                    })?;
                    if out.contains(&s) {
                        return Err(self
                            .loc
                            .invalid(&key, format!("source `{n}` is listed twice")));
                    }
                    out.push(s);
                }
                out.sort();
                out
            }
        };
        // A spread for a source that is off would be silently ignored: refuse it instead.
        let spread = |key: &str,
                      v: Option<f64>,
                      default: f64,
                      max: f64,
                      source: UncertaintySource|
         -> Result<f64, ScenarioError> {
            let Some(v) = v else { return Ok(default) };
            let full = format!("uncertainty.{key}");
            if !(v.is_finite() && (0.0..=max).contains(&v)) {
                return Err(self.loc.invalid(
                    &full,
                    format!("must be a relative standard deviation from 0 to {max}, got {v}"),
                ));
            }
            if !sources.contains(&source) {
                return Err(self.loc.invalid(
                    &full,
                    format!(
                        "is set but source `{}` is not in uncertainty.sources; add it or drop the key",
                        source.name()
                    ),
                ));
            }
            Ok(v)
        };
        Ok(UncertaintySpec {
            samples,
            seed_offset,
            forecast_error: spread(
                "forecast_error",
                u.forecast_error,
                d.forecast_error,
                1.0,
                UncertaintySource::Forecast,
            )?,
            gpu_speed_spread: spread(
                "gpu_speed_spread",
                u.gpu_speed_spread,
                d.gpu_speed_spread,
                0.1,
                UncertaintySource::Hardware,
            )?,
            gpu_power_spread: spread(
                "gpu_power_spread",
                u.gpu_power_spread,
                d.gpu_power_spread,
                0.1,
                UncertaintySource::Hardware,
            )?,
            sources,
            split: u.split.unwrap_or(d.split),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{parse_scenario, DEFAULT_SCENARIO};
    use std::path::Path;

    fn with_table(table: &str) -> Result<crate::Scenario, ScenarioError> {
        let text = format!("{DEFAULT_SCENARIO}\n[uncertainty]\n{table}\n");
        parse_scenario("u.toml", &text, Path::new("."))
    }

    fn err(table: &str) -> String {
        match with_table(table) {
            Ok(_) => panic!("`{table}` was accepted"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn defaults_fill_an_empty_table_and_a_file_without_one_has_none() {
        let s = with_table("").unwrap();
        assert_eq!(s.uncertainty, Some(UncertaintySpec::default()));
        assert!(s.reseed.is_empty());
        let plain = parse_scenario("d.toml", DEFAULT_SCENARIO, Path::new(".")).unwrap();
        assert_eq!(plain.uncertainty, None);
    }

    #[test]
    fn keys_are_read() {
        let s = with_table(
            "samples = 8\nseed_offset = 3\nsources = [\"hardware\", \"routing\"]\ngpu_speed_spread = 0.02\ngpu_power_spread = 0\n",
        )
        .unwrap();
        let u = s.uncertainty.unwrap();
        assert_eq!(u.samples, 8);
        assert_eq!(u.seed_offset, 3);
        assert_eq!(
            u.sources,
            vec![UncertaintySource::Routing, UncertaintySource::Hardware]
        );
        assert_eq!(u.gpu_speed_spread, 0.02);
        assert_eq!(u.gpu_power_spread, 0.0);
        assert!(!u.has(UncertaintySource::Forecast));
        assert!(u.split);
        let s = with_table("split = false").unwrap();
        assert!(!s.uncertainty.unwrap().split);
    }

    #[test]
    fn default_spreads_follow_their_sources() {
        // 8 % whisker span = 4 IQR; σ = IQR / 1.349 (normal); MAPE = σ √(2/π).
        assert!((DEFAULT_GPU_SPEED_SPREAD - 0.014826).abs() < 1e-5);
        assert!(
            (DEFAULT_FORECAST_ERROR * (2.0 / std::f64::consts::PI).sqrt() - 0.0959).abs() < 1e-12
        );
    }

    #[test]
    fn bad_values_name_the_key_and_what_is_valid() {
        let e = err("samples = 0");
        assert!(
            e.contains("uncertainty.samples") && e.contains("1 to 100000"),
            "{e}"
        );
        assert!(e.contains("u.toml:"), "{e}");
        let e = err("seed_offset = -1");
        assert!(e.contains("uncertainty.seed_offset"), "{e}");
        let e = err("sources = [\"weather\"]");
        assert!(
            e.contains("uncertainty.sources.0") && e.contains("quality_law"),
            "{e}"
        );
        let e = err("sources = [\"routing\", \"routing\"]");
        assert!(e.contains("listed twice"), "{e}");
        let e = err("gpu_speed_spread = 0.5");
        assert!(
            e.contains("uncertainty.gpu_speed_spread") && e.contains("0 to 0.1"),
            "{e}"
        );
        let e = err("forecast_error = -0.1");
        assert!(e.contains("uncertainty.forecast_error"), "{e}");
        let e = err("sources = [\"routing\"]\nforecast_error = 0.1");
        assert!(
            e.contains("source `forecast` is not in uncertainty.sources"),
            "{e}"
        );
        let e = err("split = 1");
        assert!(e.contains("split") && e.contains("u.toml:"), "{e}");
        let e = err("sample = 3");
        assert!(e.contains("sample"), "{e}");
    }
}
