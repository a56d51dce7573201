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
}
