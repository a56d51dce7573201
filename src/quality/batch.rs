//! The critical batch size over training and what a token trained at another batch than the nominal
//! one is worth to the loss law (McCandlish et al. 2018; Kaplan et al. 2020).

use super::laws::LossLaw;

/// Kaplan et al. 2020, "Scaling Laws for Neural Language Models" (arXiv:2001.08361), Eq. 1.4 / 5.3:
/// the critical batch size `B_crit(L) ≈ B* / L^(1/α_B)` with `B* ≈ 2·10⁸` tokens and `α_B ≈ 0.21`,
/// L the loss in nats/token (their WebText2 train loss, Fig. 10; here the scenario's loss law's
/// estimate is put in its place, an assumption: the laws' data sets differ, their losses are of the
/// same order). Checked against the paper's text (Sec. 1.2 Eq. 1.4 and Sec. 5.1 Eq. 5.3 give the
/// same fit and constants; Eq. 5.1 is McCandlish's steps/examples relation, Eq. 5.2 defines
/// `B_crit = E_min/S_min`, Eq. 5.4/5.5 the minimum steps and compute).
pub const B_STAR_TOKENS: f64 = 2.0e8;
/// Kaplan et al. 2020 Eq. 1.4: the exponent `α_B ≈ 0.21` of the critical batch size in the loss.
pub const ALPHA_B: f64 = 0.21;

/// The critical batch size at loss `loss_nats` [tokens] (Kaplan et al. 2020 Eq. 1.4).
pub fn critical_batch_tokens(loss_nats: f64) -> f64 {
    B_STAR_TOKENS / loss_nats.max(f64::MIN_POSITIVE).powf(1.0 / ALPHA_B)
}

/// What one token trained at a batch of `batch_tokens` is worth in tokens at the nominal batch
/// `ref_batch_tokens`, when the critical batch is `b_crit_tokens`.
///
/// McCandlish et al. 2018, "An Empirical Model of Large-Batch Training" (arXiv:1812.06162), Sec. 2
/// (its steps/examples tradeoff `(S/S_min − 1)(E/E_min − 1) = 1`, which we cite as its Eq. 2.11 from
/// memory: the PDF could not be read here to check the number), restated and checked in Kaplan et
/// al. 2020 Eq. 5.1–5.2 and 5.4–5.5: reaching a given loss at batch B takes
/// `S = S_min (1 + B_crit/B)` steps and `E = E_min (1 + B/B_crit)` tokens. The loss law's token count
/// is read as tokens at the nominal batch, so a token at batch B stands for
/// `(1 + B_ref/B_crit) / (1 + B/B_crit)` of them: a batch above the nominal one (and far above the
/// critical batch) needs more tokens for the same loss, a smaller one fewer (and more steps).
///
/// How large the credit of a small batch can get, and why it is not capped further: as B → 0 the worth
/// rises to `1 + B_ref/B_crit` and no higher — a token can at best be an `E_min` token, and a nominal
/// token is worth `1/(1 + B_ref/B_crit)` of one. That bound is the physics of the relation (the floor
/// `E ≥ E_min`), so it is the only cap applied. It is large only where `B_crit ≪ B_ref`: early in
/// training, where the scenario's law puts the loss high (e.g. Chinchilla at 10⁷ tokens of a 0.3B
/// model gives ≈ 6.7 nats, B_crit ≈ 2·10⁴ tokens, so against a 2.6·10⁵-token nominal batch the
/// bound is ≈ 12×). Two caveats the estimate carries rather than hides: the loss laws are there
/// extrapolated far below their fitted token range (the summary flags the run's law as outside its
/// range), and Kaplan et al. fitted their learning curves after the learning-rate warm-up (Sec. 5.2)
/// and note that their framework does not capture early training dynamics (Fig. 12). A tighter cap would need
/// a measured critical batch at initialisation (Merrill et al. 2025, arXiv:2505.23971, measure it
/// "near 0 at initialization, increasing rapidly" — in line with the relation, but without a number
/// this model could take), so none is invented here; a warm-up's credit is an upper estimate.
pub fn batch_token_worth(batch_tokens: f64, ref_batch_tokens: f64, b_crit_tokens: f64) -> f64 {
    if batch_tokens == ref_batch_tokens || b_crit_tokens <= 0.0 {
        return 1.0;
    }
    (1.0 + ref_batch_tokens / b_crit_tokens) / (1.0 + batch_tokens / b_crit_tokens)
}

/// Points of [`CriticalBatch`]'s table (log-spaced in tokens).
const TABLE_POINTS: usize = 64;
/// Tokens of the table's first point: below a million tokens the laws are far outside their fits and
/// the critical batch is a few thousand tokens, below any real batch.
const TABLE_FIRST_TOKENS: f64 = 1e6;

/// The critical batch size along a run: `B_crit` at the loss the law estimates after `d` effective
/// tokens, tabulated once (log-spaced) so a step reads it without evaluating the law.
#[derive(Debug, Clone, PartialEq)]
pub struct CriticalBatch {
    /// `(ln tokens, B_crit [tokens])`, tokens increasing.
    table: Vec<(f64, f64)>,
}

impl CriticalBatch {
    /// The table of `law` from 10⁶ tokens to `last_tokens` (at least 10 × the first point).
    pub fn new(law: LossLaw, last_tokens: f64) -> CriticalBatch {
        let (a, b) = (
            TABLE_FIRST_TOKENS.ln(),
            last_tokens.max(10.0 * TABLE_FIRST_TOKENS).ln(),
        );
        let table = (0..TABLE_POINTS)
            .filter_map(|i| {
                let x = a + (b - a) * i as f64 / (TABLE_POINTS - 1) as f64;
                let loss = law.loss(x.exp()).ok()?.loss;
                Some((x, critical_batch_tokens(loss)))
            })
            .collect();
        CriticalBatch { table }
    }

    /// The critical batch after `tokens` effective tokens [tokens] (linear in ln tokens between the
    /// table's points, held at its ends).
    pub fn at(&self, tokens: f64) -> f64 {
        let Some(&(x0, b0)) = self.table.first() else {
            return 0.0;
        };
        let x = tokens.max(1.0).ln();
        if x <= x0 {
            return b0;
        }
        for w in self.table.windows(2) {
            let ((xa, ba), (xb, bb)) = (w[0], w[1]);
            if x <= xb {
                return ba + (bb - ba) * (x - xa) / (xb - xa);
            }
        }
        self.table.last().map_or(b0, |p| p.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn critical_batch_follows_kaplan_eq_1_4() {
        // L = 1 nat: B* itself; every halving of the loss raises it 2^(1/0.21) ≈ 27×.
        assert_eq!(critical_batch_tokens(1.0), 2e8);
        let r = critical_batch_tokens(2.0) / critical_batch_tokens(4.0);
        assert!((r - 2f64.powf(1.0 / 0.21)).abs() < 1e-9, "{r}");
        // A few million tokens near L ≈ 2.5 nats (2e8 / 2.5^4.76 ≈ 2.6e6).
        let b = critical_batch_tokens(2.5);
        assert!((1e6..5e6).contains(&b), "{b}");
    }

    #[test]
    fn worth_is_one_at_the_nominal_batch_and_follows_mccandlish_elsewhere() {
        assert_eq!(batch_token_worth(4e6, 4e6, 1e6), 1.0);
        // B = B_crit = B_ref/2: (1 + 2) / (1 + 1).
        assert!((batch_token_worth(1e6, 2e6, 1e6) - 1.5).abs() < 1e-12);
        // Above the nominal batch a token is worth less; far below the critical batch the worth
        // saturates at 1 + B_ref/B_crit (E ≈ E_min: no waste left to save).
        assert!(batch_token_worth(8e6, 4e6, 1e6) < 1.0);
        let tiny = batch_token_worth(1.0, 4e6, 1e6);
        assert!((tiny - 5.0).abs() < 1e-5, "{tiny}");
        // No batch is worth more than that bound, whatever the critical batch.
        for b_crit in [1e3, 2e4, 1e6, 1e8] {
            for b in [1.0, 1e3, 6.5e4, 2.6e5, 1e7] {
                let w = batch_token_worth(b, 2.6e5, b_crit);
                assert!(
                    w > 0.0 && w <= 1.0 + 2.6e5 / b_crit + 1e-12,
                    "{b} {b_crit}: {w}"
                );
            }
        }
        // The worked figure of the doc: ≈ 12× at B_crit ≈ 2·10⁴ tokens (6.7 nats).
        let b_crit = critical_batch_tokens(6.7);
        assert!((1.5e4..3e4).contains(&b_crit), "{b_crit}");
        let bound = batch_token_worth(1.0, 2.6e5, b_crit);
        assert!((10.0..15.0).contains(&bound), "{bound}");
    }

    #[test]
    fn the_table_grows_the_critical_batch_as_the_loss_falls() {
        let law = LossLaw::Chinchilla { params: 1e9 };
        let c = CriticalBatch::new(law, 2e10);
        let (early, late) = (c.at(1e8), c.at(2e10));
        assert!(early < late, "{early} {late}");
        // The table agrees with the law where it has a point (its last one).
        let want = critical_batch_tokens(law.loss(2e10).expect("in range").loss);
        assert!((late - want).abs() < 1e-6 * want, "{late} {want}");
        // Held at the ends.
        assert_eq!(c.at(1.0), c.at(1e6));
        assert_eq!(c.at(1e12), late);
    }
}
