//! Validation of the schedules over training progress: `[models.moe.curriculum]` (curriculum gating's
//! top-k, capacity factor and active experts) and `[training.batch_schedule]` (the global batch's warm-up).

use super::super::raw::*;
use super::super::*;
use super::Validator;

/// The schedules of `[models.moe.curriculum]`.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Curricula {
    pub top_k: Option<ProgressSchedule>,
    pub capacity_factor: Option<ProgressSchedule>,
    pub active_experts: Option<ProgressSchedule>,
}

const PROGRESS_VALID: &str = "valid: \"fraction\" (breakpoints at fractions 0–1 of the run's progress target, the default) or \"tokens\" (breakpoints at tokens trained)";
const SHAPE_VALID: &str = "valid: \"steps\" (each value holds until the next breakpoint, the default) or \"linear\" (linear between breakpoints)";

impl Validator<'_> {
    /// `[models.dense.curriculum]` is refused (a dense model routes nothing); `[models.moe.curriculum]`
    /// gives the top-k schedule (whole numbers in `1..=top_k`), the capacity factor's (> 0, the model
    /// not dropless) and the active experts' (whole numbers in `top_k..=experts`), at least one.
    pub(super) fn curricula(
        &self,
        models: &RawModels,
        moe: Option<&crate::workload::MoeSpec>,
    ) -> Result<Curricula, ScenarioError> {
        if models
            .dense
            .as_ref()
            .is_some_and(|m| m.curriculum.is_some())
        {
            return Err(self.loc.invalid(
                "models.dense.curriculum",
                "a dense model routes no tokens, so it has no top-k, capacity factor or experts to schedule: move the table to [models.moe.curriculum] or remove it",
            ));
        }
        let Some(c) = models.moe.as_ref().and_then(|m| m.curriculum.as_ref()) else {
            return Ok(Curricula::default());
        };
        let table = "models.moe.curriculum";
        let (k, experts, cf) =
            moe.map_or((1, 1, None), |m| (m.top_k, m.experts, m.capacity_factor));
        let sched = |field: &str, v: &toml::Value, check: &dyn Fn(f64) -> Result<(), String>| {
            self.progress_schedule(
                table,
                field,
                c.progress.as_deref(),
                c.shape.as_deref(),
                v,
                check,
            )
        };
        let mut out = Curricula::default();
        if let Some(v) = &c.top_k {
            out.top_k = Some(sched("top_k", v, &|v| {
                if v.fract() != 0.0 || v < 1.0 || v > k as f64 {
                    Err(format!("top-k {v} is not valid: a whole number of experts in 1..={k} (models.moe.top_k = {k} is the most a curriculum may route to: memory and the quality law are sized at it)"))
                } else {
                    Ok(())
                }
            })?);
        }
        if let Some(v) = &c.capacity_factor {
            if cf.is_none() {
                return Err(self.loc.invalid(
                    &format!("{table}.capacity_factor"),
                    "models.moe.capacity_factor is \"dropless\": a dropless router has no capacity to schedule; give the model a capacity factor (e.g. 1.25) or remove the schedule",
                ));
            }
            out.capacity_factor = Some(sched("capacity_factor", v, &|v| {
                if v >= CAPACITY_FACTOR_STEP && v.is_finite() {
                    Ok(())
                } else {
                    Err(format!("capacity factor {v} is not valid: a number >= {CAPACITY_FACTOR_STEP} (capacity per expert = factor × assignments / active experts; applied in steps of {CAPACITY_FACTOR_STEP})"))
                }
            })?);
        }
        if let Some(v) = &c.active_experts {
            out.active_experts = Some(sched("active_experts", v, &|v| {
                if v.fract() != 0.0 || v < k as f64 || v > experts as f64 {
                    Err(format!("active experts {v} is not valid: a whole number in {k}..={experts} (at least models.moe.top_k = {k}, at most models.moe.experts = {experts})"))
                } else {
                    Ok(())
                }
            })?);
        }
        if out == Curricula::default() {
            return Err(self.loc.invalid(
                table,
                "a curriculum needs at least one schedule: top_k, capacity_factor or active_experts = [[progress, value], ...]",
            ));
        }
        Ok(out)
    }

    /// `[training.batch_schedule]`: shares of the global batch in (0, 1].
    pub(super) fn batch_schedule(
        &self,
        t: &RawTraining,
    ) -> Result<Option<ProgressSchedule>, ScenarioError> {
        let Some(b) = &t.batch_schedule else {
            return Ok(None);
        };
        let s = self.progress_schedule(
            "training.batch_schedule",
            "batch_fraction",
            b.progress.as_deref(),
            b.shape.as_deref(),
            &b.batch_fraction,
            |v| {
                if v > 0.0 && v <= 1.0 {
                    Ok(())
                } else {
                    Err(format!("batch fraction {v} is not valid: a share of training.global_batch_seqs in (0, 1] (it is rounded to whole micro-batches, at least one)"))
                }
            },
        )?;
        Ok(Some(s))
    }

    /// The breakpoints `[[progress, value], ...]` of `table.field`: the first at progress 0, progress
    /// strictly increasing (fractions at most 1), each value accepted by `check`.
    fn progress_schedule(
        &self,
        table: &str,
        field: &str,
        progress: Option<&str>,
        shape: Option<&str>,
        points: &toml::Value,
        check: impl Fn(f64) -> Result<(), String>,
    ) -> Result<ProgressSchedule, ScenarioError> {
        let axis = match progress.map(str::trim) {
            None | Some("fraction") => ProgressAxis::Fraction,
            Some("tokens") => ProgressAxis::Tokens,
            Some(o) => {
                return Err(self.loc.invalid(
                    &format!("{table}.progress"),
                    format!("unknown progress axis `{o}`; {PROGRESS_VALID}"),
                ))
            }
        };
        let shape = match shape.map(str::trim) {
            None | Some("steps") => ScheduleShape::Steps,
            Some("linear") => ScheduleShape::Linear,
            Some(o) => {
                return Err(self.loc.invalid(
                    &format!("{table}.shape"),
                    format!("unknown shape `{o}`; {SHAPE_VALID}"),
                ))
            }
        };
        let key = format!("{table}.{field}");
        let list = points.as_array().filter(|a| !a.is_empty()).ok_or_else(|| {
            self.loc.invalid(
                &key,
                "must be a non-empty list of [progress, value] pairs, e.g. [[0.0, 1], [0.5, 2]]",
            )
        })?;
        let num = |v: &toml::Value| match v {
            toml::Value::Integer(i) => Some(*i as f64),
            toml::Value::Float(f) if f.is_finite() => Some(*f),
            _ => None,
        };
        let mut out: Vec<(f64, f64)> = Vec::with_capacity(list.len());
        for (i, pair) in list.iter().enumerate() {
            let at = format!("{key}.{i}");
            let (x, v) = match pair.as_array().map(|a| a.as_slice()) {
                Some([x, v]) => match (num(x), num(v)) {
                    (Some(x), Some(v)) => (x, v),
                    _ => {
                        return Err(self.loc.invalid(
                            &at,
                            format!("`{pair}` is not a pair of finite numbers [progress, value]"),
                        ))
                    }
                },
                _ => {
                    return Err(self
                        .loc
                        .invalid(&at, format!("`{pair}` is not a [progress, value] pair")))
                }
            };
            if i == 0 && x != 0.0 {
                return Err(self.loc.invalid(&at, format!("the first breakpoint must be at progress 0 (the value training starts with), got {x}")));
            }
            if let Some(&(prev, _)) = out.last() {
                if x <= prev {
                    return Err(self.loc.invalid(&at, format!("progress must increase from one breakpoint to the next: {x} after {prev}")));
                }
            }
            if axis == ProgressAxis::Fraction && x > 1.0 {
                return Err(self.loc.invalid(&at, format!("progress {x} is past the end: with progress = \"fraction\" breakpoints lie in [0, 1] (use progress = \"tokens\" for tokens trained)")));
            }
            check(v).map_err(|m| self.loc.invalid(&at, m))?;
            out.push((x, v));
        }
        Ok(ProgressSchedule {
            axis,
            shape,
            points: out,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::scenario::{parse_scenario, ProgressAxis, ScheduleShape};
    use std::path::Path;

    const BASE: &str = include_str!("../../../scenarios/single_node.toml");

    fn with(edits: &[(&str, &str)]) -> Result<crate::scenario::Scenario, String> {
        let mut text = BASE.to_string();
        for (from, to) in edits {
            assert!(text.contains(from), "{from}");
            text = text.replacen(from, to, 1);
        }
        parse_scenario("s.toml", &text, Path::new(".")).map_err(|e| e.to_string())
    }

    /// A `[models.moe.curriculum]` table appended after `[models.moe]`'s keys.
    fn curriculum(body: &str) -> Result<crate::scenario::Scenario, String> {
        with(&[(
            "[models.moe]",
            &format!("[models.moe.curriculum]\n{body}\n\n[models.moe]"),
        )])
    }

    fn batch(body: &str) -> Result<crate::scenario::Scenario, String> {
        with(&[(
            "[training]",
            &format!("[training.batch_schedule]\n{body}\n\n[training]"),
        )])
    }

    #[test]
    fn curriculum_and_batch_schedule_reach_the_training_settings() {
        let s = curriculum("top_k = [[0.0, 1], [0.5, 2]]").expect("valid");
        let c = s.training.curriculum_top_k.expect("curriculum");
        assert_eq!(c.axis, ProgressAxis::Fraction);
        assert_eq!(c.shape, ScheduleShape::Steps);
        assert_eq!(c.points, vec![(0.0, 1.0), (0.5, 2.0)]);
        let s = batch(
            "progress = \"tokens\"\nshape = \"linear\"\nbatch_fraction = [[0, 0.25], [1e9, 1.0]]",
        )
        .expect("valid");
        let b = s.training.batch_schedule.expect("batch");
        assert_eq!(
            (b.axis, b.shape),
            (ProgressAxis::Tokens, ScheduleShape::Linear)
        );
        assert_eq!(b.points, vec![(0.0, 0.25), (1e9, 1.0)]);
        assert!(with(&[]).expect("valid").training.batch_schedule.is_none());
    }

    #[test]
    fn bad_curricula_name_the_field_line_and_valid_values() {
        // A dense model has no top-k.
        let e = with(&[(
            "[models.dense]",
            "[models.dense.curriculum]\ntop_k = [[0.0, 1]]\n\n[models.dense]",
        )])
        .expect_err("accepted");
        assert!(
            e.contains("s.toml:")
                && e.contains("models.dense.curriculum")
                && e.contains("dense model"),
            "{e}"
        );
        // Above the model's top-k, not whole, zero.
        for bad in ["[[0.0, 1], [0.5, 3]]", "[[0.0, 1.5]]", "[[0.0, 0]]"] {
            let e = curriculum(&format!("top_k = {bad}")).expect_err(bad);
            assert!(
                e.contains("models.moe.curriculum.top_k.") && e.contains("1..=2"),
                "{e}"
            );
        }
        // Breakpoints: the first at 0, increasing, fractions ≤ 1, pairs of numbers.
        let e = curriculum("top_k = [[0.1, 1]]").expect_err("late start");
        assert!(e.contains("top_k.0") && e.contains("progress 0"), "{e}");
        let e = curriculum("top_k = [[0.0, 1], [0.5, 2], [0.5, 1]]").expect_err("repeat");
        assert!(e.contains("top_k.2") && e.contains("must increase"), "{e}");
        let e = curriculum("top_k = [[0.0, 1], [1.5, 2]]").expect_err("past 1");
        assert!(e.contains("top_k.1") && e.contains("\"tokens\""), "{e}");
        let e = curriculum("top_k = [[0.0, \"two\"]]").expect_err("text");
        assert!(
            e.contains("top_k.0") && e.contains("pair of finite numbers"),
            "{e}"
        );
        let e = curriculum("top_k = [1, 2]").expect_err("flat");
        assert!(
            e.contains("top_k.0") && e.contains("[progress, value] pair"),
            "{e}"
        );
        let e = curriculum("top_k = []").expect_err("empty");
        assert!(
            e.contains("models.moe.curriculum.top_k") && e.contains("non-empty"),
            "{e}"
        );
        // Axis and shape names.
        let e = curriculum("progress = \"steps\"\ntop_k = [[0.0, 1]]").expect_err("axis");
        assert!(
            e.contains("curriculum.progress") && e.contains("\"fraction\""),
            "{e}"
        );
        let e = curriculum("shape = \"cosine\"\ntop_k = [[0.0, 1]]").expect_err("shape");
        assert!(
            e.contains("curriculum.shape") && e.contains("\"linear\""),
            "{e}"
        );
        // Unknown keys are refused by serde with the line.
        let e = curriculum("capacity = [[0.0, 1]]\ntop_k = [[0.0, 1]]").expect_err("key");
        assert!(e.contains("capacity"), "{e}");
    }

    #[test]
    fn capacity_and_active_expert_curricula_reach_the_training_settings() {
        let s = with(&[
            ("capacity_factor = \"dropless\"", "capacity_factor = 1.0"),
            (
                "[models.moe]",
                "[models.moe.curriculum]\nshape = \"linear\"\ncapacity_factor = [[0.0, 0.8], [0.5, 1.25]]\nactive_experts = [[0.0, 2], [0.5, 8]]\n\n[models.moe]",
            ),
        ])
        .expect("valid");
        let t = &s.training;
        assert!(t.curriculum_top_k.is_none());
        let cf = t.curriculum_capacity_factor.as_ref().expect("cf");
        assert_eq!(cf.shape, ScheduleShape::Linear);
        assert_eq!(cf.points, vec![(0.0, 0.8), (0.5, 1.25)]);
        let n = t.curriculum_active_experts.as_ref().expect("experts");
        assert_eq!(n.points, vec![(0.0, 2.0), (0.5, 8.0)]);
    }

    #[test]
    fn bad_capacity_and_active_expert_curricula_name_the_field_line_and_valid_values() {
        let capped = ("capacity_factor = \"dropless\"", "capacity_factor = 1.0");
        let at = |body: &str, capped_model: bool| {
            let table = format!("[models.moe.curriculum]\n{body}\n\n[models.moe]");
            let mut edits = vec![("[models.moe]", table.as_str())];
            if capped_model {
                edits.insert(0, capped);
            }
            with(&edits).expect_err(body)
        };
        // A dropless router has no capacity to schedule.
        let e = at("capacity_factor = [[0.0, 1.0]]", false);
        assert!(
            e.contains("s.toml:")
                && e.contains("models.moe.curriculum.capacity_factor")
                && e.contains("dropless"),
            "{e}"
        );
        // cf <= 0 (and below the 0.01 step).
        for bad in [
            "[[0.0, 0.0]]",
            "[[0.0, -1.0]]",
            "[[0.0, 1.0], [0.5, 0.001]]",
        ] {
            let e = at(&format!("capacity_factor = {bad}"), true);
            assert!(
                e.contains("s.toml:")
                    && e.contains("models.moe.curriculum.capacity_factor.")
                    && e.contains(">= 0.01"),
                "{e}"
            );
        }
        // Non-monotone progress.
        let e = at(
            "capacity_factor = [[0.0, 1.0], [0.5, 1.5], [0.4, 2.0]]",
            true,
        );
        assert!(
            e.contains("capacity_factor.2") && e.contains("must increase"),
            "{e}"
        );
        let e = at("active_experts = [[0.0, 4], [0.6, 8], [0.6, 6]]", false);
        assert!(
            e.contains("active_experts.2") && e.contains("must increase"),
            "{e}"
        );
        // More experts than the model has, fewer than its top-k, not whole.
        for bad in ["[[0.0, 9]]", "[[0.0, 1]]", "[[0.0, 4], [0.5, 4.5]]"] {
            let e = at(&format!("active_experts = {bad}"), false);
            assert!(
                e.contains("s.toml:")
                    && e.contains("models.moe.curriculum.active_experts.")
                    && e.contains("2..=8"),
                "{e}"
            );
        }
        // A table with no schedule.
        let e = at("progress = \"fraction\"", false);
        assert!(
            e.contains("models.moe.curriculum") && e.contains("at least one schedule"),
            "{e}"
        );
    }

    #[test]
    fn bad_batch_schedules_name_the_field_line_and_valid_values() {
        for bad in ["[[0.0, 0.0]]", "[[0.0, 1.5]]", "[[0.0, -0.5]]"] {
            let e = batch(&format!("batch_fraction = {bad}")).expect_err(bad);
            assert!(
                e.contains("s.toml:")
                    && e.contains("training.batch_schedule.batch_fraction.0")
                    && e.contains("(0, 1]"),
                "{e}"
            );
        }
        let e = batch("batch_fraction = 0.5").expect_err("scalar");
        assert!(
            e.contains("batch_fraction") && e.contains("[progress, value] pairs"),
            "{e}"
        );
        let e = batch("progress = \"tokens\"\nbatch_fraction = [[0, 0.5], [-1, 1.0]]")
            .expect_err("back");
        assert!(
            e.contains("batch_fraction.1") && e.contains("must increase"),
            "{e}"
        );
        let e = batch("shape = 1\nbatch_fraction = [[0, 0.5]]").expect_err("type");
        assert!(e.contains("shape"), "{e}");
    }
}
