//! Validation of `[routing]`: the router, its parameters, collapse, choice, placement and rebalancing.

use super::super::raw::*;
use super::super::*;
use super::Validator;
use crate::routing::{Collapse, PastEnd, PlacementPolicy, RouterKind};

impl Validator<'_> {
    pub(super) fn routing(&self, r: &RawRouting) -> Result<RoutingSpec, ScenarioError> {
        let k = |f: &str| format!("routing.{f}");
        let nonneg = |f: &str, v: f64| -> Result<f64, ScenarioError> {
            if v.is_finite() && v >= 0.0 {
                Ok(v)
            } else {
                Err(self.loc.invalid(&k(f), format!("must be ≥ 0, got {v}")))
            }
        };
        let unused = |f: &str, present: bool, model: &str| -> Result<(), ScenarioError> {
            if present {
                Err(self.loc.invalid(
                    &k(f),
                    format!("`{f}` does not apply to routing model `{model}`"),
                ))
            } else {
                Ok(())
            }
        };
        let kind = r.model;
        let m = kind.name();
        if !matches!(kind, RouterKind::Zipf | RouterKind::NoisyTopk) {
            unused("zipf_s", r.zipf_s.is_some(), m)?;
        }
        if kind != RouterKind::NoisyTopk {
            unused("noise", r.noise.is_some(), m)?;
            unused("sample_tokens", r.sample_tokens.is_some(), m)?;
        }
        if kind != RouterKind::Dirichlet {
            unused("dirichlet_alpha", r.dirichlet_alpha.is_some(), m)?;
            unused("drift", r.drift.is_some(), m)?;
        }
        if kind != RouterKind::Trace {
            for (f, p) in [
                ("trace", r.trace.is_some()),
                ("map", r.map.is_some()),
                ("past_end", r.past_end.is_some()),
                ("bootstrap_block", r.bootstrap_block.is_some()),
            ] {
                unused(f, p, m)?;
            }
        }
        let source = match kind {
            RouterKind::Balanced => RoutingSource::Balanced,
            RouterKind::Uniform => RoutingSource::Uniform,
            RouterKind::Zipf => {
                let s = r.zipf_s.ok_or_else(|| {
                    self.loc.invalid(
                        &k("zipf_s"),
                        "routing model `zipf` needs `zipf_s` (exponent ≥ 0, e.g. 1.0)",
                    )
                })?;
                RoutingSource::Zipf(nonneg("zipf_s", s)?)
            }
            RouterKind::NoisyTopk => {
                let s = r.zipf_s.ok_or_else(|| {
                    self.loc.invalid(
                        &k("zipf_s"),
                        "routing model `noisy_topk` needs `zipf_s` (skew of the clean gate, ≥ 0)",
                    )
                })?;
                let noise = r.noise.ok_or_else(|| self.loc.invalid(&k("noise"), "routing model `noisy_topk` needs `noise` (logit noise standard deviation, ≥ 0)"))?;
                let tokens = r.sample_tokens.ok_or_else(|| self.loc.invalid(&k("sample_tokens"), "routing model `noisy_topk` needs `sample_tokens` (tokens sampled per layer and step, e.g. 256)"))?;
                RoutingSource::NoisyTopK {
                    s: nonneg("zipf_s", s)?,
                    noise: nonneg("noise", noise)?,
                    tokens: self.count(&k("sample_tokens"), tokens)?,
                }
            }
            RouterKind::Dirichlet => {
                let a = r.dirichlet_alpha.ok_or_else(|| {
                    self.loc.invalid(
                        &k("dirichlet_alpha"),
                        "routing model `dirichlet` needs `dirichlet_alpha` (> 0; small = skewed)",
                    )
                })?;
                let alpha = self.positive(&k("dirichlet_alpha"), a)?;
                let drift = nonneg("drift", r.drift.unwrap_or(0.0))?;
                RoutingSource::Dirichlet { alpha, drift }
            }
            RouterKind::Trace => {
                let p = r.trace.as_ref().ok_or_else(|| self.loc.invalid(&k("trace"), "routing model `trace` needs `trace = \"path/to/trace.csv\"` (relative to the scenario file)"))?;
                let past_end = match r.past_end.as_deref() {
                    None | Some("loop") => PastEnd::Loop,
                    Some("hold") => PastEnd::Hold,
                    Some("bootstrap") => {
                        let b = r.bootstrap_block.ok_or_else(|| self.loc.invalid(&k("bootstrap_block"), "past_end = \"bootstrap\" needs `bootstrap_block` (steps per block, e.g. 50)"))?;
                        PastEnd::Bootstrap {
                            block: self.count(&k("bootstrap_block"), b)? as u64,
                        }
                    }
                    Some(o) => {
                        return Err(self.loc.invalid(
                            &k("past_end"),
                            format!("unknown `{o}`; valid: loop, hold, bootstrap"),
                        ))
                    }
                };
                if r.bootstrap_block.is_some()
                    && past_end
                        != (PastEnd::Bootstrap {
                            block: r.bootstrap_block.unwrap_or(0).max(0) as u64,
                        })
                {
                    return Err(self.loc.invalid(
                        &k("bootstrap_block"),
                        "only applies with past_end = \"bootstrap\"",
                    ));
                }
                RoutingSource::Trace {
                    path: self.path(p),
                    map: r.map.unwrap_or(false),
                    past_end,
                }
            }
        };
        let collapse = match (r.collapse_share, r.collapse_steps) {
            (None, None) => None,
            (Some(sh), Some(st)) => {
                if matches!(source, RoutingSource::Trace { .. }) {
                    return Err(self.loc.invalid(
                        &k("collapse_share"),
                        "a collapse applies to synthetic routers, not to a replayed trace",
                    ));
                }
                if !(sh > 0.0 && sh <= 1.0) {
                    return Err(self
                        .loc
                        .invalid(&k("collapse_share"), format!("must be in (0, 1], got {sh}")));
                }
                Some(Collapse {
                    max_share: sh,
                    over_steps: self.count(&k("collapse_steps"), st)? as u64,
                })
            }
            (Some(_), None) => {
                return Err(self.loc.invalid(
                    &k("collapse_share"),
                    "needs `collapse_steps` too (steps until full collapse)",
                ))
            }
            (None, Some(_)) => {
                return Err(self.loc.invalid(
                    &k("collapse_steps"),
                    "needs `collapse_share` too (share of the collapsed expert)",
                ))
            }
        };
        let choice = match r.choice.as_deref() {
            None | Some("token") => RoutingChoice::TokenChoice,
            Some("expert") => RoutingChoice::ExpertChoice,
            Some(o) => {
                return Err(self.loc.invalid(
                    &k("choice"),
                    format!(
                        "unknown `{o}`; valid: token (token-choice top-k), expert (expert choice)"
                    ),
                ))
            }
        };
        let placement = match (r.placement.as_deref(), r.replica_slots) {
            (None | Some("contiguous"), None) => PlacementPolicy::Contiguous,
            (Some("round_robin"), None) => PlacementPolicy::RoundRobin,
            (Some("by_load"), None) => PlacementPolicy::ByLoad,
            (Some("replicate"), Some(n)) => PlacementPolicy::Replicate { extra: self.count(&k("replica_slots"), n)? },
            (Some("replicate"), None) => return Err(self.loc.invalid(&k("replica_slots"), "placement = \"replicate\" needs `replica_slots` (extra expert slots per rank, e.g. 1)")),
            (_, Some(_)) => return Err(self.loc.invalid(&k("replica_slots"), "only applies with placement = \"replicate\"")),
            (Some(o), None) => return Err(self.loc.invalid(&k("placement"), format!("unknown `{o}`; valid: contiguous, round_robin, by_load, replicate"))),
        };
        let rebalance_every_steps = match r.rebalance_every_steps {
            None => None,
            Some(n) => Some(self.count(&k("rebalance_every_steps"), n)? as u64),
        };
        Ok(RoutingSpec {
            source,
            collapse,
            choice,
            placement,
            rebalance_every_steps,
        })
    }
}
