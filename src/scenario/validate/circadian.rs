//! Validation of `[strategy.circadian]`: objective, policy, shares, window, throttle knobs, forecast noise.

use super::super::raw::*;
use super::super::*;
use super::Validator;
use crate::workload::FfnKind;

impl Validator<'_> {
    pub(super) fn circadian(
        &self,
        c: &RawCircadian,
        moe: Option<&Job>,
        cluster: &Cluster,
        grid: &GridSpec,
    ) -> Result<CircadianSpec, ScenarioError> {
        let k = |f: &str| format!("strategy.circadian.{f}");
        let deadline_s = self.positive(&k("deadline_hours"), c.deadline_hours)? * 3600.0;
        // A deadline past the run-length limit could never be simulated (and overflows the clock).
        let max_hours = max_deadline_hours();
        if deadline_s / 3600.0 > max_hours {
            return Err(self.loc.invalid(
                &k("deadline_hours"),
                format!(
                    "{} h is beyond what can be simulated (at most {max_hours} h, 100 years)",
                    c.deadline_hours
                ),
            ));
        }
        let objective = c.objective;
        let signal = self.planner_signal(c, grid)?;
        let (optimal, needs_shares, needs_window) = match c.policy {
            PolicyName::Optimal => (true, false, false),
            PolicyName::Threshold => (false, true, false),
            PolicyName::Window => (false, false, true),
        };
        let share = |f: &str, v: Option<f64>| -> Result<f64, ScenarioError> {
            match v {
                Some(x) => self.share(&k(f), x),
                None if needs_shares => Err(self.loc.invalid(
                    &k(f),
                    format!(
                        "policy `{}` needs `{f}` (a share in [0, 1])",
                        c.policy.name()
                    ),
                )),
                None => Ok(0.0),
            }
        };
        let full_share = share("full_share", c.full_share)?;
        let pause_share = share("pause_share", c.pause_share)?;
        if full_share + pause_share > 1.0 {
            return Err(self.loc.invalid(
                &k("pause_share"),
                format!(
                    "full_share + pause_share = {} exceeds 1",
                    full_share + pause_share
                ),
            ));
        }
        if optimal && (c.full_share.is_some() || c.window_hours.is_some()) {
            return Err(self.loc.invalid(&k("policy"), "policy `optimal` picks its own hours: remove full_share / window_hours (pause_share is ignored too)"));
        }
        if needs_window != c.window_hours.is_some() {
            return Err(self.loc.invalid(
                &k("window_hours"),
                if needs_window {
                    "policy `window` needs `window_hours` (local hours 0–23, e.g. [1, 2, 3, 4])"
                } else {
                    "`window_hours` only applies with policy = \"window\""
                },
            ));
        }
        let window_hours = match &c.window_hours {
            None => None,
            Some(h) => {
                let mut out = Vec::new();
                for (i, &x) in h.iter().enumerate() {
                    if !(0..24).contains(&x) {
                        return Err(self.loc.invalid(
                            &format!("{}.{i}", k("window_hours")),
                            format!("local hour must be 0..=23, got {x}"),
                        ));
                    }
                    out.push(x as u32);
                }
                Some(out)
            }
        };
        let nominal_k = match moe.map(|j| &j.model.ffn) {
            Some(FfnKind::Moe(m)) => m.top_k,
            _ => 1,
        };
        let throttle_top_k = match c.throttle_top_k {
            Some(t) => {
                let t = self.count(&k("throttle_top_k"), t)?;
                if t > nominal_k {
                    return Err(self.loc.invalid(
                        &k("throttle_top_k"),
                        format!(
                            "{t} exceeds the model's top_k = {nominal_k}; valid: 1..={nominal_k}"
                        ),
                    ));
                }
                t
            }
            None => nominal_k,
        };
        let acc = &cluster.accelerator;
        // A mode's cap lies in the accelerator's power-limit range and at or below the cluster's cap
        // (which applies to every strategy in every mode); without one the mode runs at the cluster's cap.
        let cap = |f: &str, v: Option<f64>| -> Result<f64, ScenarioError> {
            match v {
                Some(w) if w >= acc.min_power_cap_w && w <= cluster.power_cap_w => Ok(w),
                Some(w) => Err(self.loc.invalid(
                    &k(f),
                    format!(
                        "{w} W is outside {}..={} W (the {} power-limit floor up to cluster.power_cap_w, or the TDP without one)",
                        acc.min_power_cap_w, cluster.power_cap_w, acc.name
                    ),
                )),
                None => Ok(cluster.power_cap_w),
            }
        };
        let throttle_power_cap_w = cap("throttle_power_cap_w", c.throttle_power_cap_w)?;
        let full_power_cap_w = cap("full_power_cap_w", c.full_power_cap_w)?;
        let throttle_batch_fraction = match c.throttle_batch_fraction {
            Some(f) if f > 0.0 && f <= 1.0 => f,
            Some(f) => {
                return Err(self.loc.invalid(
                    &k("throttle_batch_fraction"),
                    format!("must be in (0, 1], got {f}"),
                ))
            }
            None => 1.0,
        };
        if let (Some(j), true) = (moe, throttle_batch_fraction < 1.0) {
            let mb = j.plan.micro_batches();
            if let Ok(mb) = mb {
                let kept = (mb as f64 * throttle_batch_fraction).round();
                if kept < 1.0 {
                    return Err(self.loc.invalid(
                        &k("throttle_batch_fraction"),
                        format!(
                            "keeps no micro-batch of the {mb} per step; valid: ≥ {:.3}",
                            1.0 / mb as f64
                        ),
                    ));
                }
            }
        }
        let throttle_replica_fraction =
            self.replica_fraction(c, moe, cluster, throttle_batch_fraction)?;
        let nonneg = |f: &str, v: f64| -> Result<f64, ScenarioError> {
            if v.is_finite() && v >= 0.0 {
                Ok(v)
            } else {
                Err(self.loc.invalid(&k(f), format!("must be ≥ 0 s, got {v}")))
            }
        };
        // A checkpoint or restore longer than the deadline could never complete within it.
        let within_deadline = |f: &str, v: f64| -> Result<f64, ScenarioError> {
            let v = nonneg(f, v)?;
            if v >= deadline_s {
                return Err(self.loc.invalid(
                    &k(f),
                    format!(
                        "{v} s is not shorter than the deadline ({} h = {deadline_s} s); a pause could never complete",
                        c.deadline_hours
                    ),
                ));
            }
            Ok(v)
        };
        Ok(CircadianSpec {
            deadline_s,
            objective,
            signal,
            optimal,
            full_share,
            pause_share,
            window_hours,
            throttle_top_k,
            throttle_power_cap_w,
            full_power_cap_w,
            throttle_batch_fraction,
            throttle_replica_fraction,
            checkpoint_write_s: within_deadline("checkpoint_write_s", c.checkpoint_write_s)?,
            restore_s: within_deadline("restore_s", c.restore_s)?,
            forecast_error: nonneg("forecast_error", c.forecast_error.unwrap_or(0.0))?,
            top_k_by_hour: match &c.top_k_by_hour {
                None => None,
                Some(v) if v.len() != 24 => {
                    return Err(self.loc.invalid(
                        &k("top_k_by_hour"),
                        format!("needs 24 values (local hours 0–23), got {}", v.len()),
                    ))
                }
                Some(v) => {
                    let mut out = [0u32; 24];
                    for (i, &x) in v.iter().enumerate() {
                        if x < 1 || x as u32 > nominal_k {
                            return Err(self.loc.invalid(
                                &format!("{}.{i}", k("top_k_by_hour")),
                                format!("top-k {x} at hour {i} is outside 1..={nominal_k}"),
                            ));
                        }
                        out[i] = x as u32;
                    }
                    Some(out)
                }
            },
        })
    }
}

impl Validator<'_> {
    /// `strategy.circadian.throttle_replica_fraction`: a share of the data-parallel replicas that is a
    /// whole number of them, whose plan still splits the global batch into micro-batches and fits in
    /// HBM (ZeRO shards over fewer GPUs), and not together with a smaller throttled batch.
    fn replica_fraction(
        &self,
        c: &RawCircadian,
        moe: Option<&Job>,
        cluster: &Cluster,
        batch_fraction: f64,
    ) -> Result<f64, ScenarioError> {
        let key = "strategy.circadian.throttle_replica_fraction";
        let Some(f) = c.throttle_replica_fraction else {
            return Ok(1.0);
        };
        if !(f > 0.0 && f <= 1.0) {
            return Err(self.loc.invalid(key, format!("must be in (0, 1], got {f}")));
        }
        if f == 1.0 {
            return Ok(1.0);
        }
        if batch_fraction < 1.0 {
            return Err(self.loc.invalid(
                key,
                format!("keeps the global batch on fewer replicas, while throttle_batch_fraction = {batch_fraction} shrinks the batch: set only one of them (remove throttle_batch_fraction or set it to 1)"),
            ));
        }
        // The validator reports a missing [models.moe] itself.
        let Some(job) = moe else {
            return Ok(f);
        };
        let plan = &job.plan;
        let replicas = plan.dp / plan.ep.max(1);
        let hbm = cluster.accelerator.hbm_bytes;
        let usable = |k: u32| {
            let p = replica_plan(plan, k);
            p.micro_batches().is_ok()
                && crate::workload::check_fits_under(
                    &job.model,
                    &p,
                    (job.schedule.pipeline, job.fp8_recipe, job.memory_states()),
                    hbm,
                )
                .is_ok()
        };
        let valid: Vec<String> = (1..replicas)
            .filter(|&k| usable(k))
            .map(|k| format!("{}", k as f64 / replicas as f64))
            .collect();
        let valid = if valid.is_empty() {
            "none below 1 for this plan".to_string()
        } else {
            valid.join(", ")
        };
        let active = (f * replicas as f64).round();
        if active < 1.0 || (active - f * replicas as f64).abs() > 1e-9 {
            return Err(self.loc.invalid(
                key,
                format!("{f} of the {replicas} data-parallel replicas (parallel.moe dp = {} / ep = {}) is not a whole number of replicas; valid: {valid}", plan.dp, plan.ep.max(1)),
            ));
        }
        let p = replica_plan(plan, active as u32);
        if let Err(e) = p.micro_batches() {
            return Err(self.loc.invalid(
                key,
                format!("{active} replicas cannot keep the global batch: {e}; valid: {valid}"),
            ));
        }
        if let Err(e) = crate::workload::check_fits_under(
            &job.model,
            &p,
            (job.schedule.pipeline, job.fp8_recipe, job.memory_states()),
            hbm,
        ) {
            return Err(self.loc.invalid(
                key,
                format!("on {active} replicas the job does not fit (ZeRO shards over fewer GPUs): {e}; valid: {valid}"),
            ));
        }
        Ok(f)
    }

    /// `strategy.circadian.signal`: which carbon signal a CO2 objective follows; a marginal one
    /// needs a grid that has a marginal series.
    fn planner_signal(
        &self,
        c: &RawCircadian,
        grid: &GridSpec,
    ) -> Result<Option<crate::grid::CiKind>, ScenarioError> {
        use crate::grid::{CiKind, GridFormat, GridSource};
        let key = "strategy.circadian.signal";
        let Some(kind) = c.signal else {
            return Ok(None);
        };
        if c.objective != Objective::Co2 {
            return Err(self.loc.invalid(
                key,
                "`signal` chooses the carbon signal of objective = \"co2\"; remove it or set objective = \"co2\"",
            ));
        }
        // A grid file that is itself marginal (WattTime, or a generic column declared marginal).
        let file_is_marginal = match &grid.source {
            GridSource::File(f) => {
                f.format == GridFormat::WattTime
                    || f.columns
                        .as_ref()
                        .is_some_and(|c| c.ci_kind == CiKind::Marginal)
            }
            // The embedded profile carries marginal factors for the regions with generation by fuel.
            GridSource::Profile => {
                crate::grid::region_profile(&grid.region).is_ok_and(|p| p.mef_g_per_kwh.is_some())
            }
        };
        if kind == CiKind::Marginal && grid.marginal.is_none() && !file_is_marginal {
            return Err(self.loc.invalid(
                key,
                "signal = \"marginal\" needs a marginal intensity series: add a [grid.marginal] table (source = \"estimate\" for an eia930/entsoe-legacy file, \"signal\" or \"csv\"), or use the embedded profile of a region with marginal factors (all but DE); valid signals here: \"average\"",
            ));
        }
        Ok(Some(kind))
    }
}

/// The longest deadline a scenario may set [h]: 100 years, far past any limit of a run.
fn max_deadline_hours() -> f64 {
    100.0 * 365.0 * 24.0
}

/// `plan` on `replicas` data-parallel replicas (expert-parallel groups of `ep` ranks for MoE), the global
/// batch unchanged: the micro-batches per step grow as the replicas shrink.
fn replica_plan(
    plan: &crate::workload::ParallelPlan,
    replicas: u32,
) -> crate::workload::ParallelPlan {
    crate::workload::ParallelPlan {
        dp: replicas * plan.ep.max(1),
        ..plan.clone()
    }
}

impl CircadianSpec {
    /// Replicas (expert-parallel groups for MoE) of `plan` that train while throttled.
    pub fn throttled_replicas(&self, plan: &crate::workload::ParallelPlan) -> u32 {
        let replicas = plan.dp / plan.ep.max(1);
        ((self.throttle_replica_fraction * replicas as f64).round() as u32)
            .clamp(1, replicas.max(1))
    }

    /// The throttled plan of `plan`: its global batch on [`Self::throttled_replicas`] replicas, with
    /// proportionally more gradient-accumulation micro-batches (`plan` itself at a fraction of 1).
    pub fn throttled_plan(
        &self,
        plan: &crate::workload::ParallelPlan,
    ) -> crate::workload::ParallelPlan {
        replica_plan(plan, self.throttled_replicas(plan))
    }
}

#[cfg(test)]
mod tests {
    use crate::scenario::{parse_scenario, DEFAULT_SCENARIO};
    use std::path::Path;

    /// The default scenario (dp 16, ep 8: two replicas) with `edits`.
    fn with(edits: &[(&str, &str)]) -> Result<crate::scenario::Scenario, String> {
        let mut text = DEFAULT_SCENARIO.to_string();
        for (from, to) in edits {
            assert!(text.contains(from), "{from}");
            text = text.replacen(from, to, 1);
        }
        parse_scenario("c.toml", &text, Path::new(".")).map_err(|e| e.to_string())
    }

    fn fraction(f: &str, more: &[(&str, &str)]) -> Result<crate::scenario::Scenario, String> {
        let line = format!("throttle_replica_fraction = {f}");
        let mut e = vec![("throttle_batch_fraction = 1.0", line.as_str())];
        e.extend_from_slice(more);
        with(&e)
    }

    #[test]
    fn a_replica_fraction_sets_the_throttled_plan() {
        let s = fraction("0.5", &[]).expect("valid");
        let c = s.circadian.as_ref().expect("circadian");
        assert_eq!(c.throttle_replica_fraction, 0.5);
        let plan = &s.moe.as_ref().expect("moe").plan;
        let narrow = c.throttled_plan(plan);
        assert_eq!((narrow.dp, narrow.ep), (8, 8));
        assert_eq!(
            narrow.micro_batches().unwrap(),
            2 * plan.micro_batches().unwrap()
        );
        assert_eq!(narrow.global_batch_seqs, plan.global_batch_seqs);
        // Without the key every replica trains.
        let s = with(&[]).expect("valid");
        assert_eq!(
            s.circadian.expect("circadian").throttle_replica_fraction,
            1.0
        );
    }

    #[test]
    fn bad_replica_fractions_name_the_key_and_what_is_valid() {
        let key = "strategy.circadian.throttle_replica_fraction";
        for f in ["0", "1.5", "-0.5"] {
            let e = fraction(f, &[]).expect_err(f);
            assert!(e.contains(key) && e.contains("(0, 1]"), "{e}");
            assert!(e.contains("c.toml:"), "{e}");
        }
        let e = fraction("0.3", &[]).unwrap_err();
        assert!(
            e.contains(key) && e.contains("not a whole number") && e.contains("valid: 0.5"),
            "{e}"
        );
        // Together with a smaller batch: one or the other.
        let e = with(&[(
            "throttle_batch_fraction = 1.0",
            "throttle_batch_fraction = 0.5\nthrottle_replica_fraction = 0.5",
        )])
        .unwrap_err();
        assert!(e.contains(key) && e.contains("set only one"), "{e}");
        // One replica (dp = ep): nothing to leave out.
        let e = fraction(
            "0.5",
            &[(
                "dp = 16\ntp = 1\npp = 1\nep = 8",
                "dp = 16\ntp = 1\npp = 1\nep = 16",
            )],
        )
        .unwrap_err();
        assert!(e.contains("none below 1"), "{e}");
        // Three of eight replicas cannot split 2048 sequences into micro-batches of 4.
        let e = fraction(
            "0.375",
            &[(
                "dp = 16\ntp = 1\npp = 1\nep = 8",
                "dp = 16\ntp = 1\npp = 1\nep = 2",
            )],
        )
        .unwrap_err();
        assert!(
            e.contains("cannot keep the global batch") && e.contains("0.5"),
            "{e}"
        );
        // One replica of 16 without expert parallelism holds every expert's optimizer states alone.
        let e = fraction(
            "0.0625",
            &[(
                "dp = 16\ntp = 1\npp = 1\nep = 8",
                "dp = 16\ntp = 1\npp = 1\nep = 1",
            )],
        )
        .unwrap_err();
        assert!(e.contains("does not fit"), "{e}");
    }
}
