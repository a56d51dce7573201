//! Validation of `[training]`: token budget or target loss, precision, start time.

use super::super::raw::*;
use super::super::*;
use super::Validator;

impl Validator<'_> {
    pub(super) fn training(&self, t: &RawTraining) -> Result<Training, ScenarioError> {
        let (tokens, target_loss) = match (t.tokens, t.target_loss) {
            (Some(n), None) => (self.positive("training.tokens", n)?, None),
            (None, Some(l)) => (0.0, Some(self.positive("training.target_loss", l)?)),
            (Some(_), Some(_)) => return Err(self.loc.invalid("training.target_loss", "give either `tokens` (a token budget) or `target_loss` (train to an estimated loss), not both")),
            (None, None) => return Err(self.loc.invalid("training", "give `tokens` (a token budget) or `target_loss` (train each strategy to this estimated loss)")),
        };
        let precision: Precision = t.precision.parse().map_err(|_| {
            self.loc.invalid(
                "training.precision",
                format!(
                    "unknown precision `{}`; valid: fp32, tf32, bf16, fp16, fp8",
                    t.precision
                ),
            )
        })?;
        let start = chrono::DateTime::parse_from_rfc3339(t.start.trim()).map_err(|e| {
            self.loc.invalid(
                "training.start",
                format!("`{}` is not an RFC 3339 time with offset ({e}); e.g. \"2022-06-01T00:00:00-07:00\" or \"2022-06-01T07:00:00Z\"", t.start),
            )
        })?;
        Ok(Training {
            tokens,
            target_loss,
            precision,
            start_utc_s: start.timestamp(),
            start_text: t.start.clone(),
        })
    }
}
