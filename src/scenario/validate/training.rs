//! Validation of `[training]`: token budget or target loss, precision, start time, recomputation.

use super::super::raw::*;
use super::super::*;
use super::Validator;
use crate::workload::Recompute;

impl Validator<'_> {
    /// `training.precision`, parsed once and handed to each job's plan (the plan is its one home).
    pub(super) fn precision(&self, t: &RawTraining) -> Result<Precision, ScenarioError> {
        t.precision.parse().map_err(|_| {
            self.loc.invalid(
                "training.precision",
                format!(
                    "unknown precision `{}`; valid: fp32, tf32, bf16, fp16, fp8",
                    t.precision
                ),
            )
        })
    }

    pub(super) fn training(&self, t: &RawTraining) -> Result<Training, ScenarioError> {
        let (tokens, target_loss) = match (t.tokens, t.target_loss) {
            (Some(n), None) => (self.positive("training.tokens", n)?, None),
            (None, Some(l)) => (0.0, Some(self.positive("training.target_loss", l)?)),
            (Some(_), Some(_)) => return Err(self.loc.invalid("training.target_loss", "give either `tokens` (a token budget) or `target_loss` (train to an estimated loss), not both")),
            (None, None) => return Err(self.loc.invalid("training", "give `tokens` (a token budget) or `target_loss` (train each strategy to this estimated loss)")),
        };
        let compare = match t.compare.as_deref().map(str::trim) {
            None | Some("loss") => Compare::Loss,
            Some("tokens") if target_loss.is_some() => return Err(self.loc.invalid("training.compare", "`tokens` compares at equal tokens, but training.target_loss asks for equal loss; drop target_loss (and give `tokens`) or use compare = \"loss\"")),
            Some("tokens") => Compare::Tokens,
            Some(other) => return Err(self.loc.invalid("training.compare", format!("unknown comparison `{other}`; valid: \"loss\" (every strategy trained to one estimated loss, the default) or \"tokens\" (every strategy trains training.tokens)"))),
        };
        let start = chrono::DateTime::parse_from_rfc3339(t.start.trim()).map_err(|e| {
            self.loc.invalid(
                "training.start",
                format!("`{}` is not an RFC 3339 time with offset ({e}); e.g. \"2022-06-01T00:00:00-07:00\" or \"2022-06-01T07:00:00Z\"", t.start),
            )
        })?;
        Ok(Training {
            tokens,
            target_loss,
            compare,
            start_utc_s: start.timestamp(),
            start_text: t.start.clone(),
        })
    }

    /// `training.recompute`: `"none" | "selective" | "full"`, or the legacy boolean, which keeps
    /// its old meaning (`true` = a full forward recomputed before each backward = `"full"`).
    pub(super) fn recompute(&self, t: &RawTraining) -> Result<Recompute, ScenarioError> {
        const VALID: &str = "valid: \"none\", \"selective\" (Megatron `--recompute-granularity selective`: the attention core), \"full\" (the whole layer's forward), or the legacy true (= \"full\") / false (= \"none\")";
        match &t.recompute {
            toml::Value::Boolean(b) => Ok(Recompute::from_legacy_bool(*b)),
            toml::Value::String(s) if s != "true" && s != "false" => Recompute::parse(s)
                .ok_or_else(|| {
                    self.loc.invalid(
                        "training.recompute",
                        format!("unknown recompute `{s}`; {VALID}"),
                    )
                }),
            v => Err(self
                .loc
                .invalid("training.recompute", format!("`{v}` is not valid; {VALID}"))),
        }
    }
}
