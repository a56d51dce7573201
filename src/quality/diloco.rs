//! The quality cost of infrequent synchronisation: DiLoCo-style replicas that all-reduce every H steps.
//!
//! Source: Douillard et al. 2025, "Streaming DiLoCo with overlapping communication" (arXiv
//! 2501.18512), Table 6 (evaluation loss on C4 of M = 2 and 4 replicas synchronising every H = 30 and
//! 100 inner steps, models of 35M to 1B parameters, chinchilla-optimal FLOPs) against the same
//! models and FLOPs trained data-parallel (their Table 5, "Data-Parallel" rows). The penalty is the
//! relative loss increase L_DiLoCo / L_DP − 1 at equal tokens, so an estimate of the loss after
//! synchronous training is multiplied by (1 + penalty).
//!
//! Between the published points: linear in log H and log M; H = 1 (every step synchronised) and M = 1
//! (one replica group, no WAN synchronisation) are data parallel itself, penalty 0, so below H = 30 or
//! M = 2 the penalty runs in log H (log M) from 0 to the published value. Beyond the published range
//! (H > 100, M > 4) there is no number to interpolate and the input is refused. Model size: linear in
//! log N between the table's sizes; below 35M the 35M row, above 1B the 1B row — the penalty shrinks
//! with size in Table 6 (M = 4, H = 100: +3.7 % at 35M, +1.2 % at 1B), so for larger models the 1B
//! value is an upper bound, not an extrapolation. Losses are printed to two decimals, so a difference
//! of −0.01 (DiLoCo a hair better, as at 1B, M = 2, H = 30) is within rounding and taken as 0.

/// The largest synchronisation interval with a published loss [steps] (Table 6: H = 30 and 100).
pub const MAX_INNER_STEPS: u32 = 100;

/// The most replicas with a published loss (Table 6: M = 2 and 4).
pub const MAX_REPLICAS: u32 = 4;

/// Published H values, ascending [steps].
const H: [f64; 2] = [30.0, 100.0];

/// Published M values, ascending.
const M: [f64; 2] = [2.0, 4.0];

/// Douillard et al. 2025 (arXiv 2501.18512): (parameters, data-parallel loss from Table 5, Table 6's
/// losses at [H = 30: M = 2, M = 4], [H = 100: M = 2, M = 4]); evaluation loss on C4 [nats/token].
const TABLE: [(f64, f64, [[f64; 2]; 2]); 6] = [
    (35e6, 3.51, [[3.53, 3.60], [3.56, 3.64]]),
    (100e6, 3.19, [[3.21, 3.25], [3.22, 3.29]]),
    (200e6, 2.97, [[2.98, 3.02], [3.00, 3.05]]),
    (300e6, 2.80, [[2.81, 2.84], [2.83, 2.87]]),
    (500e6, 2.67, [[2.67, 2.70], [2.69, 2.73]]),
    (1e9, 2.49, [[2.48, 2.50], [2.50, 2.53]]),
];

/// A synchronisation setting outside the published range.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SyncPenaltyError {
    /// The interval or replica count has no published loss to interpolate.
    #[error("{field} = {value} is beyond the published range of the quality cost of infrequent synchronisation ({valid}; Douillard et al. 2025, arXiv 2501.18512, Table 6)")]
    OutOfRange {
        /// Which input (`sync_every_steps`, `replicas`).
        field: &'static str,
        /// The value given.
        value: u32,
        /// What would be valid.
        valid: &'static str,
    },
}

/// Check that H inner steps and `replicas` synchronising replica groups lie in the published range.
pub fn check_range(h: u32, replicas: u32) -> Result<(), SyncPenaltyError> {
    if !(1..=MAX_INNER_STEPS).contains(&h) {
        return Err(SyncPenaltyError::OutOfRange {
            field: "sync_every_steps",
            value: h,
            valid: "1 to 100 steps",
        });
    }
    if h > 1 && !(1..=MAX_REPLICAS).contains(&replicas) {
        return Err(SyncPenaltyError::OutOfRange {
            field: "replicas",
            value: replicas,
            valid: "1 to 4 synchronising sites when sync_every_steps > 1",
        });
    }
    Ok(())
}

/// Linear interpolation of `y` over ascending `x` at `at`, in log x, clamped to the ends.
fn interp_log(x: &[f64], y: &[f64], at: f64) -> f64 {
    let l = at.ln();
    if l <= x[0].ln() {
        return y[0];
    }
    for k in 1..x.len() {
        let (a, b) = (x[k - 1].ln(), x[k].ln());
        if l <= b {
            return y[k - 1] + (y[k] - y[k - 1]) * (l - a) / (b - a);
        }
    }
    y[y.len() - 1]
}

/// The published penalty of one table row at H = `H[hi]`, M = `M[mi]` (relative loss increase, ≥ 0).
fn row_penalty(row: usize, hi: usize, mi: usize) -> f64 {
    let (_, dp, l) = TABLE[row];
    (l[hi][mi] / dp - 1.0).max(0.0)
}

/// Relative loss increase of `replicas` replica groups synchronising every `h` steps over data-parallel
/// training of a model of `params` parameters at equal tokens (0 for h = 1 or one group). See the
/// module comment for the interpolation; settings beyond the published range are refused.
pub fn sync_penalty(params: f64, replicas: u32, h: u32) -> Result<f64, SyncPenaltyError> {
    check_range(h, replicas)?;
    if h == 1 || replicas <= 1 {
        return Ok(0.0);
    }
    let sizes: Vec<f64> = TABLE.iter().map(|r| r.0).collect();
    // At each published (H, M): the penalty at this model size.
    let at = |hi: usize, mi: usize| {
        let p: Vec<f64> = (0..TABLE.len()).map(|r| row_penalty(r, hi, mi)).collect();
        interp_log(&sizes, &p, params.max(1.0))
    };
    // Over M, from 0 at M = 1 through the published M values.
    let over_m = |hi: usize| {
        interp_log(
            &[1.0, M[0], M[1]],
            &[0.0, at(hi, 0), at(hi, 1)],
            f64::from(replicas),
        )
    };
    // Over H, from 0 at H = 1 through the published H values.
    Ok(interp_log(
        &[1.0, H[0], H[1]],
        &[0.0, over_m(0), over_m(1)],
        f64::from(h),
    ))
}

/// Effective tokens of training that synchronises with a relative loss penalty `penalty`
/// ([`sync_penalty`]) needed to reach the loss that synchronous (data-parallel) training reaches
/// after `reference_tokens` effective tokens under `law` [tokens]: the D with
/// `law(D) × (1 + penalty) = law(reference_tokens)`, found by the law's own inversion
/// ([`super::tokens_for_target_loss`], the search the equal-loss comparison uses). A penalty of 0
/// returns `reference_tokens` itself. None when that loss lies at or below what the law can reach
/// (the penalty cannot be bought back with tokens).
pub fn equal_loss_tokens(law: super::LossLaw, reference_tokens: f64, penalty: f64) -> Option<f64> {
    if penalty <= 0.0 {
        return Some(reference_tokens);
    }
    let reference = law.loss(reference_tokens).ok()?.loss;
    super::tokens_for_target_loss(law, reference / (1.0 + penalty))
        // The inversion brackets to 1e-12 in log D; never below the reference.
        .map(|d| d.max(reference_tokens))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_published_points_come_back_exactly() {
        // 35M, M = 4, H = 100: 3.64 / 3.51 − 1.
        let p = sync_penalty(35e6, 4, 100).unwrap();
        assert!((p - (3.64 / 3.51 - 1.0)).abs() < 1e-12, "{p}");
        // 300M, M = 2, H = 30: 2.81 / 2.80 − 1.
        let p = sync_penalty(300e6, 2, 30).unwrap();
        assert!((p - (2.81 / 2.80 - 1.0)).abs() < 1e-12, "{p}");
        // 1B, M = 2, H = 30: 2.48 < 2.49 is within rounding: 0, not a gain.
        assert_eq!(sync_penalty(1e9, 2, 30).unwrap(), 0.0);
    }

    #[test]
    fn synchronising_every_step_or_at_one_site_costs_nothing() {
        assert_eq!(sync_penalty(1e9, 4, 1).unwrap(), 0.0);
        assert_eq!(sync_penalty(1e9, 1, 100).unwrap(), 0.0);
    }

    #[test]
    fn the_penalty_grows_with_h_and_replicas_and_interpolates_in_log_h() {
        let n = 200e6;
        let a = sync_penalty(n, 2, 30).unwrap();
        let b = sync_penalty(n, 2, 100).unwrap();
        assert!(b > a && a > 0.0);
        // √(30 × 100) is halfway in log H.
        let mid = sync_penalty(n, 2, 55).unwrap();
        let half = a + (b - a) * ((55f64).ln() - 30f64.ln()) / (100f64.ln() - 30f64.ln());
        assert!((mid - half).abs() < 1e-12);
        assert!(sync_penalty(n, 3, 100).unwrap() > b);
        assert!(sync_penalty(n, 4, 100).unwrap() > sync_penalty(n, 3, 100).unwrap());
        // Below H = 30: from 0 at H = 1 in log H.
        let p10 = sync_penalty(n, 2, 10).unwrap();
        assert!((p10 - a * 10f64.ln() / 30f64.ln()).abs() < 1e-12);
    }

    #[test]
    fn models_above_the_table_take_the_largest_row() {
        assert_eq!(
            sync_penalty(70e9, 4, 100).unwrap(),
            sync_penalty(1e9, 4, 100).unwrap()
        );
        let p = sync_penalty(1e9, 4, 100).unwrap();
        assert!((p - (2.53 / 2.49 - 1.0)).abs() < 1e-12);
    }

    #[test]
    fn settings_beyond_the_published_range_are_refused_naming_the_field() {
        let e = sync_penalty(1e9, 2, 101).unwrap_err().to_string();
        assert!(
            e.contains("sync_every_steps = 101") && e.contains("1 to 100"),
            "{e}"
        );
        let e = sync_penalty(1e9, 5, 30).unwrap_err().to_string();
        assert!(e.contains("replicas = 5") && e.contains("1 to 4"), "{e}");
        assert!(check_range(0, 2).is_err());
        // Five sites synchronising every step are data parallel: no published range needed.
        assert!(check_range(1, 5).is_ok());
    }

    #[test]
    fn equal_loss_tokens_buy_back_the_penalty_and_grow_with_it() {
        let law = crate::quality::LossLaw::Chinchilla { params: 1e9 };
        let d = 20e9;
        assert_eq!(equal_loss_tokens(law, d, 0.0), Some(d));
        let target = law.loss(d).unwrap().loss;
        let mut last = d;
        for h in [10, 30, 55, 100] {
            let p = sync_penalty(1e9, 4, h).unwrap();
            let more = equal_loss_tokens(law, d, p).unwrap();
            assert!(more > last, "H = {h}: {more} after {last}");
            // The penalised loss after the extra tokens is the synchronous loss.
            let l = law.loss(more).unwrap().loss * (1.0 + p);
            assert!((l / target - 1.0).abs() < 1e-9, "H = {h}: {l} vs {target}");
            last = more;
        }
        // A penalty that would need a loss below the law's floor cannot be bought back.
        assert_eq!(equal_loss_tokens(law, d, 0.5), None);
    }
}
