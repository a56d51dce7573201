//! Schedules over training progress (curriculum gating's top-k, capacity factor and active experts, the global batch's warm-up): breakpoints
//! on a progress axis, piecewise constant or linear between them.

/// The step a scheduled capacity factor moves in: a knob is a whole number of these (so a linear ramp
/// changes the step model's knobs a bounded number of times, and blocks of steps stop before each).
pub const CAPACITY_FACTOR_STEP: f64 = 0.01;

/// What a schedule's breakpoints measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressAxis {
    /// A fraction (0–1) of the run's progress target: the tokens it trains (effective tokens when the
    /// strategies are compared at equal loss, so 1.0 is where the run reaches the target loss).
    Fraction,
    /// Tokens trained so far (every token of every step, not discounted).
    Tokens,
}

/// How a schedule goes from one breakpoint to the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScheduleShape {
    /// The value of a breakpoint holds until the next one (piecewise constant).
    Steps,
    /// The value moves linearly from one breakpoint to the next (held after the last).
    Linear,
}

/// A validated schedule: breakpoints `(progress, value)`, the first at progress 0, progress strictly
/// increasing; the last value holds to the end of training.
#[derive(Debug, Clone, PartialEq)]
pub struct ProgressSchedule {
    /// What the progress of a breakpoint measures.
    pub axis: ProgressAxis,
    /// Between breakpoints: constant or linear.
    pub shape: ScheduleShape,
    /// Breakpoints `(progress, value)` in progress order (progress in the axis' unit).
    pub points: Vec<(f64, f64)>,
}

impl ProgressSchedule {
    /// Index of the breakpoint whose segment holds progress `p` (the last one at or before it).
    fn segment(&self, p: f64) -> usize {
        // A handful of breakpoints: a scan is cheaper than a search and allocates nothing.
        let mut i = 0;
        while i + 1 < self.points.len() && self.points[i + 1].0 <= p {
            i += 1;
        }
        i
    }

    /// The schedule's value at progress `p` (in the axis' unit).
    pub fn value_at(&self, p: f64) -> f64 {
        let i = self.segment(p);
        let (x0, v0) = self.points[i];
        match (self.shape, self.points.get(i + 1)) {
            (ScheduleShape::Linear, Some(&(x1, v1))) if p > x0 => {
                v0 + (v1 - v0) * (p - x0) / (x1 - x0)
            }
            _ => v0,
        }
    }

    /// The value a knob takes at progress `p`: `round(scale · value)`, at least 1 (a knob is a whole
    /// number of experts or micro-batches).
    pub fn knob_at(&self, p: f64, scale: f64) -> u32 {
        quantise(scale * self.value_at(p))
    }

    /// The first progress after `p` at which [`ProgressSchedule::knob_at`] with `scale` may differ from
    /// its value at `p` (None: it never changes again). At a breakpoint of a piecewise-constant
    /// schedule; on a linear segment where `round(scale · value)` crosses its next half-integer
    /// (or the segment's end, whichever comes first).
    pub fn next_change(&self, p: f64, scale: f64) -> Option<f64> {
        let i = self.segment(p);
        let &(x1, v1) = self.points.get(i + 1)?;
        let (x0, v0) = self.points[i];
        if self.shape == ScheduleShape::Steps || v1 == v0 || p < x0 {
            return Some(x1);
        }
        let now = scale * self.value_at(p);
        let q = now.round();
        // The half-integer the scaled value reaches next, and where on the segment it does.
        let bound = if v1 > v0 { q + 0.5 } else { q - 0.5 };
        let at = x0 + (bound / scale - v0) * (x1 - x0) / (v1 - v0);
        Some(if at > p && at < x1 { at } else { x1 })
    }

    /// Progress at which the last breakpoint sits (the schedule is constant after it).
    pub fn last_progress(&self) -> f64 {
        self.points.last().map_or(0.0, |p| p.0)
    }
}

/// `round(x)`, at least 1, as a knob count.
fn quantise(x: f64) -> u32 {
    x.round().clamp(1.0, u32::MAX as f64) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sched(shape: ScheduleShape, points: &[(f64, f64)]) -> ProgressSchedule {
        ProgressSchedule {
            axis: ProgressAxis::Fraction,
            shape,
            points: points.to_vec(),
        }
    }

    #[test]
    fn steps_hold_each_value_until_the_next_breakpoint() {
        let s = sched(ScheduleShape::Steps, &[(0.0, 1.0), (0.5, 2.0)]);
        assert_eq!(s.knob_at(0.0, 1.0), 1);
        assert_eq!(s.knob_at(0.4999, 1.0), 1);
        assert_eq!(s.knob_at(0.5, 1.0), 2);
        assert_eq!(s.knob_at(7.0, 1.0), 2);
        assert_eq!(s.next_change(0.1, 1.0), Some(0.5));
        assert_eq!(s.next_change(0.5, 1.0), None);
    }

    #[test]
    fn linear_ramps_change_the_knob_where_it_rounds_up() {
        // 1/8 to 1 of 8 micro-batches over the first 0.2: 1 micro-batch to 8.
        let s = sched(ScheduleShape::Linear, &[(0.0, 0.125), (0.2, 1.0)]);
        assert_eq!(s.knob_at(0.0, 8.0), 1);
        assert_eq!(s.knob_at(0.2, 8.0), 8);
        assert_eq!(s.knob_at(1.0, 8.0), 8);
        // 8 · v(p) = 1.5 where v = 0.1875: p = 0.2 · (0.1875 − 0.125) / 0.875.
        let at = s.next_change(0.0, 8.0).expect("changes");
        assert!((at - 0.2 * 0.0625 / 0.875).abs() < 1e-12, "{at}");
        assert_eq!(s.knob_at(at - 1e-9, 8.0), 1);
        assert_eq!(s.knob_at(at + 1e-9, 8.0), 2);
        // Every change point found by walking next_change is one where the knob moves by one.
        let mut p = 0.0;
        let mut seen = vec![s.knob_at(p, 8.0)];
        while let Some(n) = s.next_change(p, 8.0) {
            p = n;
            seen.push(s.knob_at(p + 1e-12, 8.0));
        }
        seen.dedup();
        assert_eq!(seen, (1..=8).collect::<Vec<u32>>());
        // A falling ramp.
        let s = sched(ScheduleShape::Linear, &[(0.0, 4.0), (1.0, 1.0)]);
        let at = s.next_change(0.0, 1.0).expect("changes");
        assert!((at - 1.0 / 6.0).abs() < 1e-12, "{at}");
        assert_eq!(s.knob_at(0.5, 1.0), 3); // 2.5 rounds away from zero
    }
}
