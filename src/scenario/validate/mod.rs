//! Stage two of scenario parsing: raw values checked and turned into domain types, one file per section.

mod circadian;
mod cluster;
mod cost;
mod grid;
mod model;
mod model_arch;
pub(crate) mod power;
mod routing;
mod schedule;
mod sites;
mod training;
pub(crate) mod uncertainty;

use super::error::{from_toml, Locator};
use super::raw::*;
use super::*;

/// Parse and validate scenario `text` read from `file`; relative paths resolve against `base`.
pub fn parse_scenario(file: &str, text: &str, base: &Path) -> Result<Scenario, ScenarioError> {
    let raw: RawScenario = toml::from_str(text).map_err(|e| from_toml(file, text, e))?;
    let loc = Locator::new(file.to_string(), text);
    let v = Validator { loc: &loc, base };
    v.scenario(raw, file, text)
}

struct Validator<'a> {
    loc: &'a Locator<'a>,
    base: &'a Path,
}

impl Validator<'_> {
    fn count(&self, key: &str, v: i64) -> Result<u32, ScenarioError> {
        if v <= 0 || v > u32::MAX as i64 {
            return Err(self
                .loc
                .invalid(key, format!("must be a positive integer, got {v}")));
        }
        Ok(v as u32)
    }

    fn positive(&self, key: &str, v: f64) -> Result<f64, ScenarioError> {
        if !(v.is_finite() && v > 0.0) {
            return Err(self
                .loc
                .invalid(key, format!("must be a positive number, got {v}")));
        }
        Ok(v)
    }

    fn share(&self, key: &str, v: f64) -> Result<f64, ScenarioError> {
        if !(0.0..=1.0).contains(&v) {
            return Err(self
                .loc
                .invalid(key, format!("must be between 0 and 1, got {v}")));
        }
        Ok(v)
    }

    fn path(&self, p: &str) -> PathBuf {
        let p = PathBuf::from(p);
        if p.is_absolute() {
            p
        } else {
            self.base.join(p)
        }
    }

    fn scenario(
        &self,
        raw: RawScenario,
        file: &str,
        text: &str,
    ) -> Result<Scenario, ScenarioError> {
        if raw.name.is_empty()
            || !raw
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(self.loc.invalid("name", format!("`{}` must be non-empty letters, digits, `_` or `-` (it names the output folder)", raw.name)));
        }
        if raw.seed < 0 {
            return Err(self.loc.invalid(
                "seed",
                format!("must be a non-negative integer, got {}", raw.seed),
            ));
        }
        let mut strategies = Vec::new();
        for (i, s) in raw.strategies.iter().enumerate() {
            let k = StrategyKind::from_name(s).ok_or_else(|| {
                let names: Vec<&str> = StrategyKind::ALL.iter().map(|(_, n, _)| *n).collect();
                self.loc.invalid(
                    &format!("strategies.{i}"),
                    format!("unknown strategy `{s}`; valid: {}", names.join(", ")),
                )
            })?;
            if strategies.contains(&k) {
                return Err(self.loc.invalid(
                    &format!("strategies.{i}"),
                    format!("strategy `{s}` is listed twice"),
                ));
            }
            strategies.push(k);
        }
        if strategies.is_empty() {
            return Err(self
                .loc
                .invalid("strategies", "list at least one of: dense, moe, circadian"));
        }
        if raw.validation.as_ref().is_some_and(|v| !v.is_table()) {
            return Err(self.loc.invalid(
                "validation",
                "must be a table ([validation]) of published figures, as in scenarios/validation/",
            ));
        }
        let mut training = self.training(&raw.training)?;
        let precision = self.precision(&raw.training)?;
        let cluster = self.cluster(&raw.cluster)?;
        let needs_dense = strategies.contains(&StrategyKind::Dense);
        let needs_moe = strategies.iter().any(|k| *k != StrategyKind::Dense);
        let dense = match (&raw.models.dense, needs_dense) {
            (Some(m), _) => Some(self.job(
                "dense",
                m,
                raw.parallel.dense.as_ref(),
                (&raw.training, precision),
                &cluster,
                false,
            )?),
            (None, true) => {
                return Err(self
                    .loc
                    .invalid("models", "strategy `dense` needs a [models.dense] table"))
            }
            (None, false) => None,
        };
        let moe = match (&raw.models.moe, needs_moe) {
            (Some(m), _) => Some(self.job(
                "moe",
                m,
                raw.parallel.moe.as_ref(),
                (&raw.training, precision),
                &cluster,
                true,
            )?),
            (None, true) => {
                return Err(self.loc.invalid(
                    "models",
                    "strategies `moe` and `circadian` need a [models.moe] table",
                ))
            }
            (None, false) => None,
        };
        let c = self.curricula(&raw.models, moe.as_ref().and_then(|j| j.model.moe()))?;
        training.curriculum_top_k = c.top_k;
        training.curriculum_capacity_factor = c.capacity_factor;
        training.curriculum_active_experts = c.active_experts;
        let routing = match &raw.routing {
            None if moe.is_some() => return Err(self.loc.invalid(
                "routing",
                "an MoE model needs a [routing] table: model = \"uniform\" | \"zipf\" | \"trace\"",
            )),
            None => RoutingSpec::default(),
            Some(r) => self.routing(r)?,
        };
        let grid = self.grid(&raw.grid)?;
        let circadian = match (
            &raw.strategy.circadian,
            strategies.contains(&StrategyKind::Circadian),
        ) {
            (Some(c), _) => Some(self.circadian(c, moe.as_ref(), &cluster, &grid)?),
            (None, true) => {
                return Err(self.loc.invalid(
                    "strategy",
                    "strategy `circadian` needs a [strategy.circadian] table",
                ))
            }
            (None, false) => None,
        };
        let sites = self.sites(&raw, moe.as_ref().or(dense.as_ref()), &cluster, &grid)?;
        if sites.is_some() && training.eval.is_some() {
            // The multi-region executor (`sim::multi`) prices steps per site, not evaluations.
            return Err(self.loc.invalid(
                "training.eval",
                "evaluations are not charged in a multi-region job ([[site]] / [multisite]): remove [training.eval], or the sites for a single-site run",
            ));
        }
        let limits = self.limits(&raw.limits)?;
        let uncertainty = match &raw.uncertainty {
            Some(u) => Some(self.uncertainty(u)?),
            None => None,
        };
        let cost = match &raw.cost {
            Some(c) => Some(
                self.cost(
                    c,
                    circadian
                        .as_ref()
                        .filter(|_| strategies.contains(&StrategyKind::Circadian)),
                )?,
            ),
            None => None,
        };
        let power = match &raw.power {
            Some(p) => self.power(p)?,
            None => power::PowerSpec::default(),
        };
        Ok(Scenario {
            cost,
            power,
            name: raw.name,
            description: raw.description,
            seed: raw.seed as u64,
            file: file.to_string(),
            text: text.to_string(),
            strategies,
            cluster,
            training,
            dense,
            moe,
            routing,
            grid,
            circadian,
            limits,
            uncertainty,
            sites,
            reseed: Vec::new(),
            law_index: None,
        })
    }

    fn limits(&self, l: &RawLimits) -> Result<RunLimits, ScenarioError> {
        let d = RunLimits::DEFAULT;
        let get = |key: &str, v: Option<f64>, default: f64| match v {
            Some(x) => self.positive(&format!("limits.{key}"), x),
            None => Ok(default),
        };
        Ok(RunLimits {
            max_steps: get("max_steps", l.max_steps, d.max_steps)?,
            max_simulated_years: get(
                "max_simulated_years",
                l.max_simulated_years,
                d.max_simulated_years,
            )?,
            max_timeline_rows: get(
                "max_timeline_rows",
                l.max_timeline_rows,
                d.max_timeline_rows,
            )?,
        })
    }
}
