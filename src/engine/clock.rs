//! Simulation time: integer nanoseconds, so sums over millions of steps cannot drift.

use std::fmt;
use std::ops::{Add, Sub};

/// A point or span of simulated time [ns]. Floats appear only at the edges (`from_secs_f64`, `as_secs_f64`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct SimTime(u64);

impl SimTime {
    /// Time zero.
    pub const ZERO: SimTime = SimTime(0);
    /// The largest representable time (about 584 years).
    pub const MAX: SimTime = SimTime(u64::MAX);

    /// From integer nanoseconds.
    pub const fn from_nanos(ns: u64) -> Self {
        SimTime(ns)
    }

    /// From integer seconds [s].
    pub const fn from_secs(s: u64) -> Self {
        SimTime(s.saturating_mul(1_000_000_000))
    }

    /// From seconds [s], rounded to the nearest nanosecond; negative or NaN become zero.
    pub fn from_secs_f64(s: f64) -> Self {
        if s.is_nan() || s <= 0.0 {
            return SimTime(0);
        }
        let ns = (s * 1e9).round();
        if ns >= u64::MAX as f64 {
            SimTime::MAX
        } else {
            SimTime(ns as u64)
        }
    }

    /// Integer nanoseconds.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// Seconds [s] as a float (for reporting and physics).
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 * 1e-9
    }

    /// `self - earlier`, or zero if `earlier` is later.
    pub fn saturating_sub(self, earlier: SimTime) -> SimTime {
        SimTime(self.0.saturating_sub(earlier.0))
    }
}

impl Add for SimTime {
    type Output = SimTime;
    fn add(self, rhs: SimTime) -> SimTime {
        SimTime(self.0.saturating_add(rhs.0))
    }
}

impl Sub for SimTime {
    type Output = SimTime;
    fn sub(self, rhs: SimTime) -> SimTime {
        self.saturating_sub(rhs)
    }
}

impl fmt::Display for SimTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.9} s", self.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_million_small_steps_sum_exactly() {
        // 0.1 s summed a million times drifts in f64; in integer ns it does not.
        let step = SimTime::from_secs_f64(0.1);
        let mut t = SimTime::ZERO;
        for _ in 0..1_000_000 {
            t = t + step;
        }
        assert_eq!(t, SimTime::from_secs(100_000));
    }

    #[test]
    fn conversions_round_and_clamp() {
        assert_eq!(SimTime::from_secs_f64(1.5e-9).as_nanos(), 2);
        assert_eq!(SimTime::from_secs_f64(-3.0), SimTime::ZERO);
        assert_eq!(SimTime::from_secs_f64(f64::NAN), SimTime::ZERO);
        assert_eq!(SimTime::from_secs(2).as_secs_f64(), 2.0);
        assert_eq!(
            SimTime::from_nanos(5) - SimTime::from_nanos(9),
            SimTime::ZERO
        );
    }
}
