//! A run's schedules over training progress applied step by step: curriculum gating's top-k, capacity
//! factor and active experts and the global batch's warm-up set a step's knobs; a batch away from the
//! nominal one is charged (or credited) in effective tokens through the critical batch size, and
//! tokens trained at fewer active experts through the loss law at that expert count.

use super::step::Knobs;
use crate::quality::{batch_token_worth, CriticalBatch, FewerExperts};
use crate::scenario::{ProgressAxis, ProgressSchedule, CAPACITY_FACTOR_STEP};

/// Where a run stands on both progress axes a schedule may use.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct At {
    /// Share of the run's progress target done (effective tokens when the run counts them).
    pub fraction: f64,
    /// Tokens trained so far (every token).
    pub tokens: f64,
}

impl At {
    fn on(self, axis: ProgressAxis) -> f64 {
        match axis {
            ProgressAxis::Fraction => self.fraction,
            ProgressAxis::Tokens => self.tokens,
        }
    }
}

/// Where the scheduled knobs may next change, on each axis (infinite: never).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NextChange {
    /// On the fraction axis.
    pub fraction: f64,
    /// On the tokens axis [tokens].
    pub tokens: f64,
}

impl NextChange {
    /// No change ahead.
    pub const NEVER: NextChange = NextChange {
        fraction: f64::INFINITY,
        tokens: f64::INFINITY,
    };

    fn lower(&mut self, axis: ProgressAxis, p: Option<f64>) {
        let Some(p) = p else { return };
        let slot = match axis {
            ProgressAxis::Fraction => &mut self.fraction,
            ProgressAxis::Tokens => &mut self.tokens,
        };
        *slot = slot.min(p);
    }

    /// Steps from `at`, each adding `d` (fraction and tokens), until the first step that starts at or
    /// past a change: the block's steps before it all start at the knobs of `at` (infinite: never;
    /// at least 1).
    pub fn steps_until(&self, at: At, d: At) -> f64 {
        let steps = |to: f64, from: f64, per: f64| {
            if !to.is_finite() {
                f64::INFINITY
            } else if per > 0.0 {
                let mut n = ((to - from) / per).ceil().max(1.0);
                // Rounding in the division may add a step that would start past the change.
                while n > 1.0 && from + (n - 1.0) * per >= to {
                    n -= 1.0;
                }
                n
            } else {
                1.0
            }
        };
        steps(self.fraction, at.fraction, d.fraction).min(steps(self.tokens, at.tokens, d.tokens))
    }
}

/// The critical-batch charge: a step's tokens against the nominal batch.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchWorth {
    /// Tokens of one step at the nominal global batch (`training.global_batch_seqs` × seq_len).
    pub ref_batch_tokens: f64,
    /// The critical batch along the run, from the run's loss law.
    pub critical: CriticalBatch,
}

/// What tokens trained at fewer active experts are worth: the loss-matching exchange of each expert
/// count against the full model (`quality::FewerExperts`).
#[derive(Debug, Clone, PartialEq)]
pub struct ExpertsCharge {
    /// Routed experts of the model.
    pub experts: u32,
    /// Index `n`: the exchange at `n` active experts (`n` ≤ `experts`; below the top-k unused).
    pub by_count: Vec<FewerExperts>,
}

impl ExpertsCharge {
    /// The charge of `law` (one of `quality::laws_for(shape)`) for every active-expert count.
    pub fn new(law: crate::quality::LossLaw, shape: &crate::quality::ModelShape) -> ExpertsCharge {
        let by_count = (0..=shape.experts)
            .map(|n| {
                let smaller = crate::quality::law_with_active_experts(law, shape, n.max(1));
                FewerExperts::between(&law, &smaller)
            })
            .collect();
        ExpertsCharge {
            experts: shape.experts,
            by_count,
        }
    }
}

/// The schedules of one run (all `None`: the knobs of the mode, unchanged).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Schedules {
    /// Curriculum gating: top-k over progress (`[models.moe.curriculum]`).
    pub top_k: Option<ProgressSchedule>,
    /// Curriculum gating: the capacity factor over progress, in [`CAPACITY_FACTOR_STEP`]s.
    pub capacity_factor: Option<ProgressSchedule>,
    /// Curriculum gating: the experts the router uses over progress.
    pub active_experts: Option<ProgressSchedule>,
    /// Set with an active-experts schedule: what a token trained at fewer experts is worth.
    pub experts_charge: Option<ExpertsCharge>,
    /// Global batch share over progress (`[training.batch_schedule]`).
    pub batch: Option<ProgressSchedule>,
    /// Set when a step's batch may differ from the nominal one (a batch schedule or a smaller
    /// throttled batch): how much its tokens are worth.
    pub worth: Option<BatchWorth>,
}

impl Schedules {
    /// True when no schedule changes a knob.
    pub fn is_empty(&self) -> bool {
        self.top_k.is_none()
            && self.batch.is_none()
            && self.capacity_factor.is_none()
            && self.active_experts.is_none()
    }

    /// The mode's `knobs` at progress `at`: the curriculum's top-k (a lower mode top-k wins), capacity
    /// factor (whole steps of 0.01) and active experts, the batch share of the mode's micro-batches
    /// (rounded, at least one); and where they may change next.
    pub fn apply(&self, mut knobs: Knobs, at: At) -> (Knobs, NextChange) {
        let mut next = NextChange::NEVER;
        if let Some(s) = &self.top_k {
            let p = at.on(s.axis);
            knobs.top_k = knobs.top_k.min(s.knob_at(p, 1.0));
            next.lower(s.axis, s.next_change(p, 1.0));
        }
        if let Some(s) = &self.capacity_factor {
            let p = at.on(s.axis);
            let scale = 1.0 / CAPACITY_FACTOR_STEP;
            knobs.capacity_factor = Some(s.knob_at(p, scale) as f64 / scale);
            next.lower(s.axis, s.next_change(p, scale));
        }
        if let Some(s) = &self.active_experts {
            let p = at.on(s.axis);
            knobs.active_experts = Some(s.knob_at(p, 1.0));
            next.lower(s.axis, s.next_change(p, 1.0));
        }
        if let Some(s) = &self.batch {
            let p = at.on(s.axis);
            let scale = knobs.micro_batches as f64;
            knobs.micro_batches = s.knob_at(p, scale);
            next.lower(s.axis, s.next_change(p, scale));
        }
        (knobs, next)
    }

    /// Effective tokens of a block of `n` equal steps of `step_tokens` tokens, each counted at `share`
    /// (kept assignments × top-k rule) × its batch worth, `effective_tokens` into the run, at
    /// `active_experts` (None: all). The worth follows the critical batch step by step inside the
    /// block, as per-step pricing counts it (the critical batch grows fast early in training);
    /// without a batch charge, `n · step_tokens · share`. Tokens at fewer active experts are then
    /// exchanged into full-model tokens by matching losses ([`FewerExperts`]); the exchange
    /// composes, so a block counts as its steps one by one would.
    pub fn block_effective(
        &self,
        step_tokens: f64,
        share: f64,
        n: u64,
        effective_tokens: f64,
        active_experts: Option<u32>,
    ) -> f64 {
        let at_active = self.block_at_active(step_tokens, share, n, effective_tokens);
        match self.fewer_experts(active_experts) {
            Some(x) => x.advance(effective_tokens, at_active) - effective_tokens,
            None => at_active,
        }
    }

    /// The exchange for tokens at `active_experts` (None when all experts are active or there is no
    /// active-experts schedule).
    fn fewer_experts(&self, active_experts: Option<u32>) -> Option<&FewerExperts> {
        let (n, c) = (active_experts?, self.experts_charge.as_ref()?);
        if n >= c.experts {
            return None;
        }
        c.by_count.get(n as usize)
    }

    /// What one of `step_tokens` tokens at `active_experts` is worth in full-model tokens,
    /// `effective_tokens` into the run (1 with all experts active): the planner's rate of a phase.
    pub fn experts_worth(
        &self,
        active_experts: Option<u32>,
        step_tokens: f64,
        effective_tokens: f64,
    ) -> f64 {
        match self.fewer_experts(active_experts) {
            Some(x) if step_tokens > 0.0 => {
                (x.advance(effective_tokens, step_tokens) - effective_tokens) / step_tokens
            }
            _ => 1.0,
        }
    }

    /// [`Schedules::block_effective`] before the active-experts exchange.
    fn block_at_active(&self, step_tokens: f64, share: f64, n: u64, effective_tokens: f64) -> f64 {
        let tokens = step_tokens * n as f64;
        match &self.worth {
            Some(w) if step_tokens != w.ref_batch_tokens && n > 1 => {
                let mut sum = 0.0;
                for _ in 0..n {
                    sum +=
                        step_tokens * share * self.batch_worth(step_tokens, effective_tokens + sum);
                }
                sum
            }
            _ => tokens * share * self.batch_worth(step_tokens, effective_tokens),
        }
    }

    /// The smallest share of the global batch the batch schedule trains at (1 without one): sizes the
    /// run's step record before it starts.
    pub fn smallest_batch_share(&self) -> f64 {
        self.batch
            .as_ref()
            .map_or(1.0, |s| s.points.iter().map(|p| p.1).fold(1.0, f64::min))
    }

    /// Each schedule as the report draws it: knob, axis, shape and breakpoints (empty without one).
    pub fn curves(&self) -> Vec<ScheduleCurve> {
        [
            ("top-k", &self.top_k),
            ("capacity factor", &self.capacity_factor),
            ("active experts", &self.active_experts),
            ("batch share", &self.batch),
        ]
        .into_iter()
        .filter_map(|(knob, s)| {
            s.as_ref().map(|s| ScheduleCurve {
                knob: knob.to_string(),
                tokens_axis: s.axis == ProgressAxis::Tokens,
                linear: s.shape == crate::scenario::ScheduleShape::Linear,
                points: s.points.clone(),
            })
        })
        .collect()
    }

    /// One line for the report: each schedule with its breakpoints and what the run trained under it
    /// (mean top-k, mean batch, effective over trained tokens); None without a schedule.
    pub fn describe(&self, outcome: &super::RunOutcome) -> Option<String> {
        if self.is_empty() {
            return None;
        }
        let pts = |s: &ProgressSchedule| {
            let axis = match s.axis {
                ProgressAxis::Fraction => "fraction of progress",
                ProgressAxis::Tokens => "tokens",
            };
            let shape = match s.shape {
                crate::scenario::ScheduleShape::Steps => "steps",
                crate::scenario::ScheduleShape::Linear => "linear",
            };
            let list: Vec<String> = s.points.iter().map(|(x, v)| format!("{x}: {v}")).collect();
            format!("{shape} over {axis} [{}]", list.join(", "))
        };
        let mut parts = Vec::new();
        let tokens = outcome.tokens.max(f64::MIN_POSITIVE);
        if let Some(s) = &self.top_k {
            parts.push(format!(
                "curriculum top-k {} (mean top-k {:.3})",
                pts(s),
                outcome.sums.token_top_k / tokens
            ));
        }
        if let Some(s) = &self.capacity_factor {
            parts.push(format!("curriculum capacity factor {}", pts(s)));
        }
        if let Some(s) = &self.active_experts {
            parts.push(format!("curriculum active experts {}", pts(s)));
        }
        if let Some(s) = &self.batch {
            parts.push(format!(
                "batch share {} (mean {:.0} tokens/step)",
                pts(s),
                outcome.tokens / (outcome.sums.steps.max(1) as f64)
            ));
        }
        parts.push(format!(
            "effective/trained tokens {:.4}",
            outcome.effective_tokens / tokens
        ));
        Some(parts.join("; "))
    }

    /// What each of a step's `step_tokens` tokens is worth to the loss law against the nominal batch,
    /// `effective_tokens` into the run (1 without a batch charge or at the nominal batch).
    pub fn batch_worth(&self, step_tokens: f64, effective_tokens: f64) -> f64 {
        match &self.worth {
            Some(w) if step_tokens != w.ref_batch_tokens => batch_token_worth(
                step_tokens,
                w.ref_batch_tokens,
                w.critical.at(effective_tokens),
            ),
            _ => 1.0,
        }
    }
}

/// One schedule over progress as written to run_info.json for the report's plot.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ScheduleCurve {
    /// The knob: `top-k`, `capacity factor`, `active experts` or `batch share`.
    pub knob: String,
    /// True when progress is tokens trained, false when a fraction (0–1) of the progress target.
    pub tokens_axis: bool,
    /// True when the value moves linearly between breakpoints, false when it holds (steps).
    pub linear: bool,
    /// Breakpoints `(progress, value)`.
    pub points: Vec<(f64, f64)>,
}

/// Most phases [`steps_to_train`] walks (a linear ramp has one per micro-batch count).
const MAX_PHASES: usize = 4096;

/// Optimizer steps to train `tokens` under the batch schedule `batch` (None: the full batch all along),
/// `tokens_per_step` tokens a step at the full batch of `micro_batches` micro-batches: each phase of
/// constant micro-batches at its own step size, a step at the knobs of the progress it starts at (as
/// the run applies them). Progress is read as tokens trained (exact when the run counts every token;
/// at equal loss the critical-batch worth moves it a little). Sizes the plan for `moesim check` and
/// `[limits].max_steps`.
pub fn steps_to_train(
    batch: Option<&ProgressSchedule>,
    tokens: f64,
    tokens_per_step: f64,
    micro_batches: u32,
) -> f64 {
    let plain = (tokens / tokens_per_step).ceil();
    let Some(s) = batch else { return plain };
    if !(tokens > 0.0 && tokens_per_step > 0.0 && tokens.is_finite()) {
        return plain;
    }
    let scale = micro_batches.max(1) as f64;
    let (to_tokens, to_progress) = match s.axis {
        ProgressAxis::Fraction => (tokens, 1.0 / tokens),
        ProgressAxis::Tokens => (1.0, 1.0),
    };
    let per_step = |p: f64| tokens_per_step * s.knob_at(p, scale) as f64 / scale;
    let (mut x, mut steps) = (0.0f64, 0.0f64);
    for _ in 0..MAX_PHASES {
        if x >= tokens {
            return steps;
        }
        let p = x * to_progress;
        let per = per_step(p);
        let end = s
            .next_change(p, scale)
            .map_or(tokens, |q| (q * to_tokens).min(tokens));
        // The steps that start before the phase ends (at least one).
        let n = ((end - x) / per).ceil().max(1.0);
        steps += n;
        x += n * per;
    }
    // Past the cap (never reached by a validated schedule's ramps): the rest at the knob reached.
    steps + ((tokens - x).max(0.0) / per_step(x * to_progress)).ceil()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::ScheduleShape;

    fn knobs() -> Knobs {
        crate::sim::test_setup::knobs(700.0, 2, 8)
    }

    #[test]
    fn schedules_set_the_knobs_and_say_when_they_change() {
        let s = Schedules {
            top_k: Some(ProgressSchedule {
                axis: ProgressAxis::Fraction,
                shape: ScheduleShape::Steps,
                points: vec![(0.0, 1.0), (0.5, 2.0)],
            }),
            batch: Some(ProgressSchedule {
                axis: ProgressAxis::Tokens,
                shape: ScheduleShape::Steps,
                points: vec![(0.0, 0.25), (1000.0, 1.0)],
            }),
            ..Schedules::default()
        };
        let at = At {
            fraction: 0.1,
            tokens: 100.0,
        };
        let (k, next) = s.apply(knobs(), at);
        assert_eq!((k.top_k, k.micro_batches), (1, 2));
        assert_eq!((next.fraction, next.tokens), (0.5, 1000.0));
        // 0.1 per step reaches the fraction's change in 4 steps; 100 tokens a step the tokens' in 9.
        let d = At {
            fraction: 0.1,
            tokens: 100.0,
        };
        assert_eq!(next.steps_until(at, d), 4.0);
        // A lower throttled top-k wins over the curriculum's.
        let thr = Knobs {
            top_k: 1,
            ..knobs()
        };
        let late = At {
            fraction: 0.6,
            tokens: 2000.0,
        };
        let (k, next) = s.apply(thr, late);
        assert_eq!((k.top_k, k.micro_batches), (1, 8));
        assert_eq!(next, NextChange::NEVER);
        assert_eq!(next.steps_until(late, d), f64::INFINITY);
        assert_eq!(Schedules::default().apply(knobs(), late).0, knobs());
    }

    #[test]
    fn capacity_and_active_expert_schedules_set_their_knobs() {
        let sched = |shape, points: Vec<(f64, f64)>| {
            Some(ProgressSchedule {
                axis: ProgressAxis::Fraction,
                shape,
                points,
            })
        };
        let s = Schedules {
            capacity_factor: sched(ScheduleShape::Linear, vec![(0.0, 1.0), (0.5, 2.0)]),
            active_experts: sched(ScheduleShape::Steps, vec![(0.0, 4.0), (0.25, 8.0)]),
            ..Schedules::default()
        };
        assert!(!s.is_empty());
        let at = |fraction| At {
            fraction,
            tokens: 0.0,
        };
        let (k, next) = s.apply(knobs(), at(0.1));
        // 1 + 0.1/0.5 = 1.2 (whole hundredths); the next hundredth's half-way mark is 1.205.
        assert_eq!(k.capacity_factor, Some(1.2));
        assert_eq!(k.active_experts, Some(4));
        assert!((next.fraction - 0.1025).abs() < 1e-12, "{}", next.fraction);
        let (k, next) = s.apply(knobs(), at(0.3));
        assert_eq!((k.capacity_factor, k.active_experts), (Some(1.6), Some(8)));
        assert!(
            next.fraction > 0.3 && next.fraction < 0.31,
            "{}",
            next.fraction
        );
        let (k, next) = s.apply(knobs(), at(0.9));
        assert_eq!(k.capacity_factor, Some(2.0));
        assert_eq!(next, NextChange::NEVER);
    }

    #[test]
    fn batch_worth_is_exactly_one_at_the_nominal_batch() {
        let law = crate::quality::LossLaw::Chinchilla { params: 1e9 };
        let s = Schedules {
            worth: Some(BatchWorth {
                ref_batch_tokens: 1e6,
                critical: CriticalBatch::new(law, 1e10),
            }),
            ..Schedules::default()
        };
        assert_eq!(s.batch_worth(1e6, 5e9), 1.0);
        // A quarter batch early in training is worth more per token than late (the critical batch grows).
        let (early, late) = (s.batch_worth(2.5e5, 1e7), s.batch_worth(2.5e5, 1e10));
        assert!(early > late && late > 1.0, "{early} {late}");
        assert!(s.batch_worth(2e6, 1e10) < 1.0);
    }
}
