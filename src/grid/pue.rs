//! Power usage effectiveness (PUE): facility power divided by IT power.

use super::error::GridError;

/// Power usage effectiveness, dimensionless, >= 1.0 (facility power = PUE x IT power).
/// Build it with [`Pue::new`], which validates; the field is public for pattern matching.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, serde::Serialize)]
pub struct Pue(pub f64);

impl Pue {
    /// Validated PUE: finite and at least 1.0 (a facility cannot draw less than its IT load).
    pub fn new(value: f64) -> Result<Pue, GridError> {
        if value.is_finite() && value >= 1.0 {
            Ok(Pue(value))
        } else {
            Err(GridError::InvalidArgument {
                what: "PUE",
                value: value.to_string(),
                valid: "a finite number >= 1.0 (facility power / IT power)",
            })
        }
    }

    /// The ratio, dimensionless.
    pub fn value(self) -> f64 {
        self.0
    }

    /// Facility power (W) for an IT power (W).
    pub fn facility_power_w(self, it_power_w: f64) -> f64 {
        self.0 * it_power_w
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_one_and_above_rejects_below_and_nan() {
        assert_eq!(Pue::new(1.0).ok(), Some(Pue(1.0)));
        assert_eq!(
            Pue::new(1.2).map(|p| p.facility_power_w(1000.0)).ok(),
            Some(1200.0)
        );
        for bad in [0.99, 0.0, -1.0, f64::NAN, f64::INFINITY] {
            let e = Pue::new(bad).map_err(|e| e.to_string());
            assert!(
                e.as_ref().is_err_and(|m| m.contains(">= 1.0")),
                "{bad}: {e:?}"
            );
        }
    }
}
