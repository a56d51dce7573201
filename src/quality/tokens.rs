//! Effective training tokens when the router drops assignments or runs below the nominal top-k.

use super::laws::QualityError;

/// Tokens that count toward the loss law when a fraction `dropped_share` of token-expert
/// assignments was dropped by capacity limits and tokens were routed to `mean_top_k` experts on
/// average instead of `nominal_top_k`.
///
/// Rule (assumed; no published law covers it): a token counts in proportion to the share of
/// its nominal expert assignments that were actually trained,
/// `D_eff = D * (1 - dropped_share) * min(mean_top_k / nominal_top_k, 1)`,
/// where `dropped_share` is the share of the assignments that were made. This is a
/// conservative (pessimistic) bound: attention and dense layers still learn from a dropped
/// token, so the true penalty is smaller; routing above the nominal top-k is not counted as
/// extra data. Capacity drops are in `dropped_share`; a step's batch away from the nominal one is
/// charged on top of this rule by [`super::batch_token_worth`] (the critical batch size).
pub fn effective_tokens(
    tokens: f64,
    dropped_share: f64,
    mean_top_k: f64,
    nominal_top_k: f64,
) -> Result<f64, QualityError> {
    let bad = |field: &'static str, v: f64, valid: &'static str| QualityError::InvalidInput {
        field,
        value: v.to_string(),
        valid,
    };
    if !(tokens.is_finite() && tokens >= 0.0) {
        return Err(bad(
            "quality.tokens",
            tokens,
            "must be a finite number >= 0",
        ));
    }
    if !(0.0..=1.0).contains(&dropped_share) {
        return Err(bad(
            "quality.dropped_share",
            dropped_share,
            "must be in [0, 1]",
        ));
    }
    if !(nominal_top_k.is_finite() && nominal_top_k > 0.0) {
        return Err(bad(
            "quality.nominal_top_k",
            nominal_top_k,
            "must be a finite number > 0",
        ));
    }
    if !(mean_top_k.is_finite() && mean_top_k >= 0.0) {
        return Err(bad(
            "quality.mean_top_k",
            mean_top_k,
            "must be a finite number >= 0",
        ));
    }
    Ok(tokens * (1.0 - dropped_share) * (mean_top_k / nominal_top_k).min(1.0))
}

/// Tokens trained while the router uses fewer experts than the model has (an expert-growth or
/// pruning curriculum), counted in tokens of the full model by matching losses.
///
/// Every loss law here is `L(D) = floor + b/D^β` with the data term shared within a family, so the
/// smaller model (`n` experts, [`super::law_with_active_experts`]) differs from the full one only by
/// its higher floor, `gap = floor_n − floor_E`. A run `d` full-model tokens in has the full law's loss
/// `L_E(d)`; the smaller model reaches it after `d_n` tokens with `b/d_n^β = b/d^β − gap`; training
/// `t` more tokens there gives `L_n(d_n + t)`, which the full law reaches after `d'` tokens with
/// `b/d'^β = b/(d_n + t)^β + gap`. Early in training (a large data term) a token at fewer experts is
/// worth almost a full one; near the smaller model's floor it is worth little, and once the run's
/// loss is at or below that floor it is worth nothing (counted as no progress; in truth the loss
/// would rise, which this rule does not charge). Matching losses across the phases is this
/// model's assumption (no published law covers a changing expert count); it is the rule Clark et
/// al.'s effective parameter count makes for a whole run, applied phase by phase.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FewerExperts {
    /// The data term's coefficient `b` [nats · tokens^β].
    pub b: f64,
    /// The data term's exponent `β`.
    pub beta: f64,
    /// The smaller model's floor over the full one's [nats/token].
    pub gap: f64,
}

impl FewerExperts {
    /// The exchange between `full` and `smaller`, two members of one law family.
    pub fn between(full: &super::LossLaw, smaller: &super::LossLaw) -> FewerExperts {
        let (b, beta) = full.data_term();
        FewerExperts {
            b,
            beta,
            gap: smaller.floor() - full.floor(),
        }
    }

    /// Full-model tokens after training `tokens` at the smaller model from `d` full-model tokens.
    pub fn advance(&self, d: f64, tokens: f64) -> f64 {
        if self.gap == 0.0 || tokens <= 0.0 {
            return d + tokens.max(0.0);
        }
        let term = |x: f64| self.b / x.powf(self.beta);
        let tokens_for = |term: f64| (self.b / term).powf(1.0 / self.beta);
        // The smaller model's tokens to the run's loss (0 at the start: the data term is infinite).
        let d_n = if d > 0.0 {
            let need = term(d) - self.gap;
            if need <= 0.0 {
                return d;
            }
            tokens_for(need)
        } else {
            0.0
        };
        tokens_for(term(d_n + tokens) + self.gap).max(d)
    }
}

#[cfg(test)]
mod tests {
    use super::super::laws::moe_loss;
    use super::*;

    #[test]
    fn dropped_tokens_raise_loss() {
        let d = 100e9;
        let full = moe_loss(20e9, 2.0, effective_tokens(d, 0.0, 2.0, 2.0).unwrap())
            .unwrap()
            .loss;
        let dropped = moe_loss(20e9, 2.0, effective_tokens(d, 0.1, 2.0, 2.0).unwrap())
            .unwrap()
            .loss;
        assert!(dropped > full);
    }

    #[test]
    fn reduced_top_k_counts_partially_and_above_nominal_is_capped() {
        assert_eq!(effective_tokens(1000.0, 0.0, 2.0, 2.0).unwrap(), 1000.0);
        assert_eq!(effective_tokens(1000.0, 0.0, 1.0, 2.0).unwrap(), 500.0);
        assert_eq!(effective_tokens(1000.0, 0.5, 1.0, 2.0).unwrap(), 250.0);
        assert_eq!(effective_tokens(1000.0, 0.0, 3.0, 2.0).unwrap(), 1000.0);
    }

    #[test]
    fn invalid_shares_are_errors() {
        assert!(effective_tokens(1.0, 1.5, 2.0, 2.0).is_err());
        assert!(effective_tokens(1.0, f64::NAN, 2.0, 2.0).is_err());
        assert!(effective_tokens(1.0, 0.0, 2.0, 0.0).is_err());
        assert!(effective_tokens(-1.0, 0.0, 2.0, 2.0).is_err());
    }

    #[test]
    fn tokens_at_fewer_experts_count_by_matched_loss() {
        use super::super::{law_with_active_experts, laws_for, ModelShape};
        let shape = ModelShape {
            active_params: 3e8,
            total_params: 1.8e9,
            experts: 16,
            top_k: 2,
            shared_experts: 0,
            granularity: 1.0,
        };
        let full = laws_for(&shape)[0];
        let small = law_with_active_experts(full, &shape, 4);
        assert!(small.floor() > full.floor(), "{small:?}");
        let x = FewerExperts::between(&full, &small);
        // From the start: the full law's loss at d' is the smaller law's at the tokens trained.
        let d = x.advance(0.0, 1e9);
        assert!(d < 1e9 && d > 0.5e9, "{d}");
        let (lf, ls) = (full.loss(d).unwrap().loss, small.loss(1e9).unwrap().loss);
        assert!((lf - ls).abs() < 1e-9, "{lf} vs {ls}");
        // In two halves: the same (the rule composes).
        let half = x.advance(x.advance(0.0, 0.5e9), 0.5e9);
        assert!((half / d - 1.0).abs() < 1e-9, "{half} vs {d}");
        // Later in training a token at fewer experts is worth less.
        let early = x.advance(1e8, 1e8) - 1e8;
        let late = x.advance(1e11, 1e8) - 1e11;
        assert!(late < early && late >= 0.0, "{early} {late}");
        // All experts active: a token is a token.
        let same = FewerExperts::between(&full, &law_with_active_experts(full, &shape, 16));
        assert_eq!(same.advance(5e9, 1e6), 5e9 + 1e6);
        // Below the smaller model's floor no progress is counted.
        let stuck = FewerExperts {
            b: 1.0,
            beta: 0.5,
            gap: 1.0,
        };
        assert_eq!(stuck.advance(4.0, 100.0), 4.0);
    }
}
