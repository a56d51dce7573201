//! Validation of `[power]`: the power-swing mitigations (a power floor, a ramp limit at pause/resume) and the swing threshold of the ramp statistics.

use super::super::raw::RawPower;
use super::super::ScenarioError;
use super::Validator;

/// Default swing threshold of the ramp statistics, as a share of the job's peak facility power
/// (0.1). A choice, not a published limit: utilities state ramp and oscillation limits per site
/// (Choukse et al. 2025, "Power Stabilization for AI Training Datacenters", arXiv 2508.14318, and
/// their Azure Compute blog post of 13 Oct 2025, name ramp rate, dynamic power range and
/// oscillation limits as site-specific requirements); a tenth of peak counts
/// the compute/communication swings of a step and every pause and resume, not routing noise.
pub const DEFAULT_SWING_THRESHOLD: f64 = 0.1;

/// The `[power]` table: mitigations of the job's power swings and what the ramp statistics count.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PowerSpec {
    /// Power floor during training steps as a share of the job's peak IT power (every GPU at its
    /// TDP, nodes at full load, switches): a filler load tops each step phase up to it (None: no floor).
    pub floor_fraction: Option<f64>,
    /// Most the facility power may change at a pause, a resume or a checkpoint/restore transition
    /// [W/s]: a filler load ramps linearly across the jump (None: no limit, power jumps at once).
    pub ramp_limit_w_per_s: Option<f64>,
    /// A swing counts in `swings_per_h` when it is at least this share of the job's peak facility power.
    pub swing_threshold_fraction: f64,
    /// `moesim run --waveform START..END`: the window written to waveform.csv [s from the run's
    /// start] (never read from a file).
    pub window_s: Option<(f64, f64)>,
}

impl Default for PowerSpec {
    fn default() -> Self {
        PowerSpec {
            floor_fraction: None,
            ramp_limit_w_per_s: None,
            swing_threshold_fraction: DEFAULT_SWING_THRESHOLD,
            window_s: None,
        }
    }
}

/// The form `--waveform` takes, for messages.
pub const WINDOW_FORM: &str =
    "START..END in hours from the run's start, e.g. 2..2.05 (0 ≤ START < END)";

/// `moesim run --waveform START..END`: the window in hours from the run's start, returned in
/// seconds; an error says what is wrong and the valid form (clap names the flag).
pub fn parse_window(v: &str) -> Result<(f64, f64), String> {
    let Some((a, b)) = v.split_once("..") else {
        return Err(format!("`{v}` has no `..`; give {WINDOW_FORM}"));
    };
    let hours = |x: &str, which: &str| match x.trim().parse::<f64>() {
        Ok(h) if h.is_finite() && h >= 0.0 => Ok(h),
        _ => Err(format!(
            "{which} `{}` is not a number of hours ≥ 0; give {WINDOW_FORM}",
            x.trim()
        )),
    };
    let (a, b) = (hours(a, "START")?, hours(b, "END")?);
    if b <= a {
        return Err(format!(
            "END ({b}) must be after START ({a}); give {WINDOW_FORM}"
        ));
    }
    Ok((a * 3600.0, b * 3600.0))
}

impl Validator<'_> {
    pub(super) fn power(&self, p: &RawPower) -> Result<PowerSpec, ScenarioError> {
        let fraction = |key: &str, v: f64, what: &str| {
            if v.is_finite() && v > 0.0 && v <= 1.0 {
                Ok(v)
            } else {
                Err(self.loc.invalid(
                    key,
                    format!("must be a share of the job's peak power above 0 and at most 1 ({what}), got {v}"),
                ))
            }
        };
        let floor_fraction = match p.floor_fraction {
            None => None,
            Some(v) => Some(fraction(
                "power.floor_fraction",
                v,
                "0.6 keeps every step phase at ≥ 60 % of peak",
            )?),
        };
        let ramp_limit_w_per_s = match p.ramp_limit_mw_per_s {
            None => None,
            Some(v) if v.is_finite() && v > 0.0 => Some(v * 1e6),
            Some(v) => {
                return Err(self.loc.invalid(
                    "power.ramp_limit_mw_per_s",
                    format!("must be a positive number of MW per second (e.g. 2.0), got {v}"),
                ))
            }
        };
        let swing_threshold_fraction = match p.swing_threshold_fraction {
            None => DEFAULT_SWING_THRESHOLD,
            Some(v) => fraction(
                "power.swing_threshold_fraction",
                v,
                "0.1 counts swings of ≥ 10 % of peak",
            )?,
        };
        Ok(PowerSpec {
            floor_fraction,
            ramp_limit_w_per_s,
            swing_threshold_fraction,
            window_s: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::scenario::{parse_scenario, Scenario, DEFAULT_SCENARIO};
    use std::path::Path;

    fn with_power(table: &str) -> Result<Scenario, String> {
        let text = format!("{DEFAULT_SCENARIO}\n[power]\n{table}\n");
        parse_scenario("p.toml", &text, Path::new(".")).map_err(|e| e.to_string())
    }

    /// The error of `table`, checked to name the file and line, `key`, and to contain `says`.
    fn refused(table: &str, key: &str, says: &str) {
        let e = match with_power(table) {
            Ok(_) => panic!("accepted: {table}"),
            Err(e) => e,
        };
        assert!(e.contains("p.toml:"), "no file:line in {e}");
        assert!(e.contains(key), "`{key}` not named in {e}");
        assert!(e.contains(says), "`{says}` not in {e}");
    }

    #[test]
    fn waveform_windows_parse_in_hours_and_bad_ones_say_the_valid_form() {
        assert_eq!(super::parse_window("2..2.5"), Ok((7200.0, 9000.0)));
        assert_eq!(super::parse_window(" 0 .. 1 "), Ok((0.0, 3600.0)));
        for (bad, says) in [
            ("2-3", "no `..`"),
            ("a..3", "START `a`"),
            ("1..", "END ``"),
            ("-1..2", "START `-1`"),
            ("3..2", "must be after START"),
            ("2..2", "must be after START"),
            ("1..inf", "END `inf`"),
        ] {
            let e = super::parse_window(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
            assert!(e.contains("START..END in hours"), "{bad}: {e}");
        }
    }

    #[test]
    fn power_keys_are_read_in_si_units() {
        let p = with_power(
            "floor_fraction = 0.6\nramp_limit_mw_per_s = 2.5\nswing_threshold_fraction = 0.2",
        )
        .unwrap()
        .power;
        assert_eq!(p.floor_fraction, Some(0.6));
        assert_eq!(p.ramp_limit_w_per_s, Some(2.5e6));
        assert_eq!(p.swing_threshold_fraction, 0.2);
        let p = with_power("").unwrap().power;
        assert_eq!((p.floor_fraction, p.ramp_limit_w_per_s), (None, None));
        assert_eq!(p.swing_threshold_fraction, super::DEFAULT_SWING_THRESHOLD);
    }

    #[test]
    fn a_floor_above_peak_is_refused() {
        refused("floor_fraction = 1.5", "power.floor_fraction", "at most 1");
    }

    #[test]
    fn a_zero_ramp_limit_is_refused() {
        refused(
            "ramp_limit_mw_per_s = 0",
            "power.ramp_limit_mw_per_s",
            "positive number of MW",
        );
    }

    #[test]
    fn a_negative_swing_threshold_is_refused() {
        refused(
            "swing_threshold_fraction = -0.1",
            "power.swing_threshold_fraction",
            "above 0",
        );
    }

    #[test]
    fn an_unknown_power_key_is_refused() {
        let e = with_power("floor = 0.5").unwrap_err();
        assert!(e.contains("floor"), "{e}");
    }
}
