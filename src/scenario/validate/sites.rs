//! Validation of `[[site]]`, `[[wan]]` and `[multisite]`: the sites of a multi-region job, their grids
//! (checked by the `[grid]` code), capacities in replicas, and a WAN link for every pair.

use super::super::raw::*;
use super::super::sites::{Site, SitePlanner, SitesSpec};
use super::super::*;
use super::Validator;
use crate::network::wan::{WanLink, ASLAN_2015_J_PER_BYTE};

impl Validator<'_> {
    /// The multi-region job of `raw` for `job` (the MoE model, else the dense one); None without
    /// `[[site]]` and `[multisite]`.
    pub(super) fn sites(
        &self,
        raw: &RawScenario,
        job: Option<&Job>,
        cluster: &Cluster,
        grid: &GridSpec,
    ) -> Result<Option<SitesSpec>, ScenarioError> {
        let m = match (&raw.multisite, raw.site.len()) {
            (None, 0) if raw.wan.is_empty() => return Ok(None),
            (None, _) => {
                return Err(self.loc.invalid(
                    if raw.site.is_empty() { "wan" } else { "site" },
                    "sites and WAN links need a [multisite] table (deadline_hours; planner = \"dp\" | \"greedy\")",
                ))
            }
            (Some(_), n) if n < 2 => {
                return Err(self.loc.invalid(
                    "multisite",
                    format!("a multi-region job needs at least two [[site]] tables, got {n}"),
                ))
            }
            (Some(m), _) => m,
        };
        let Some(job) = job else {
            return Err(self.loc.invalid(
                "multisite",
                "a multi-region job needs a [models.moe] or [models.dense] table",
            ));
        };
        let mut sites: Vec<Site> = Vec::with_capacity(raw.site.len());
        for (i, r) in raw.site.iter().enumerate() {
            sites.push(self.site(i, r, job, cluster, grid, &sites)?);
        }
        let names: Vec<&str> = sites.iter().map(|s| s.name.as_str()).collect();
        let index_of = |key: &str, name: &str| {
            names.iter().position(|n| *n == name).ok_or_else(|| {
                self.loc.invalid(
                    key,
                    format!("no site named `{name}`; valid: {}", names.join(", ")),
                )
            })
        };
        let mut wan: Vec<WanLink> = Vec::with_capacity(raw.wan.len());
        for (i, w) in raw.wan.iter().enumerate() {
            let k = |f: &str| format!("wan.{i}.{f}");
            let a = index_of(&k("from"), &w.from)?;
            let b = index_of(&k("to"), &w.to)?;
            if a == b {
                return Err(self.loc.invalid(
                    &k("to"),
                    format!("a link joins two different sites; `{}` is both ends", w.to),
                ));
            }
            if wan.iter().any(|l| l.joins(a, b)) {
                return Err(self.loc.invalid(&k("to"), format!("sites `{}` and `{}` already have a link (one [[wan]] per pair; it serves both directions)", w.from, w.to)));
            }
            let bandwidth_bps = self.positive(&k("bandwidth_gbps"), w.bandwidth_gbps)? * 1e9;
            if !(w.latency_ms.is_finite() && w.latency_ms >= 0.0) {
                return Err(self.loc.invalid(
                    &k("latency_ms"),
                    format!(
                        "must be a number ≥ 0 (one-way, in ms), got {}",
                        w.latency_ms
                    ),
                ));
            }
            let j_per_byte = match w.energy_j_per_byte {
                None => ASLAN_2015_J_PER_BYTE,
                // Published internet-transmission estimates span 0.0064 to 136 kWh/GB, i.e. 2.3e-5 to
                // 0.49 J/B (the review of Coroama & Hilty, Environ. Impact Assess. Rev. 45, 63–68, 2014;
                // the top end counts end devices): values above 0.5 J/B are refused as unit slips.
                Some(e) if e.is_finite() && (0.0..=0.5).contains(&e) => e,
                Some(e) => return Err(self.loc.invalid(&k("energy_j_per_byte"), format!("must be between 0 and 0.5 J/B (published estimates span 0.0064 to 136 kWh/GB = 2.3e-5 to 0.49 J/B, Coroama & Hilty 2014; default 2.16e-4 = 0.06 kWh/GB, Aslan et al. 2018 for 2015), got {e}"))),
            };
            wan.push(WanLink {
                a,
                b,
                bandwidth_bps,
                latency_s: w.latency_ms / 1e3,
                j_per_byte,
            });
        }
        for a in 0..sites.len() {
            for b in a + 1..sites.len() {
                if !wan.iter().any(|l| l.joins(a, b)) {
                    return Err(self.loc.invalid(if raw.wan.is_empty() { "multisite" } else { "wan" }, format!("sites `{}` and `{}` have no [[wan]] link; every pair of sites needs one (from, to, bandwidth_gbps, latency_ms)", names[a], names[b])));
                }
            }
        }
        if !(m.deadline_hours.is_finite() && m.deadline_hours > 0.0) {
            return Err(self.loc.invalid(
                "multisite.deadline_hours",
                format!(
                    "must be a positive number of hours, got {}",
                    m.deadline_hours
                ),
            ));
        }
        let planner = match m.planner.as_deref() {
            None => SitePlanner::Dp,
            Some(p) => SitePlanner::ALL
                .iter()
                .find(|(_, n)| *n == p)
                .map(|(k, _)| *k)
                .ok_or_else(|| {
                    self.loc.invalid(
                        "multisite.planner",
                        format!("unknown planner `{p}`; valid: dp, greedy"),
                    )
                })?,
        };
        let sync_every_steps = match m.sync_every_steps {
            None => 1,
            // DiLoCo on 8 workers "performs as well as fully synchronous optimization while
            // communicating 500 times less" (Douillard et al. 2023, arXiv 2311.08105, abstract; C4,
            // H = 500 inner steps): up to 500 the estimated loss is the synchronous one. Beyond it
            // the paper reports a growing quality cost that is not modelled here, so it is refused.
            Some(h) if (1..=500).contains(&h) => h as u32,
            Some(h) => return Err(self.loc.invalid("multisite.sync_every_steps", format!("must be between 1 and 500 steps (DiLoCo, Douillard et al. 2023, matches fully synchronous quality at 500 inner steps; the quality cost of rarer synchronisation is not modelled), got {h}"))),
        };
        Ok(Some(SitesSpec {
            sites,
            wan,
            deadline_s: m.deadline_hours * 3600.0,
            planner,
            sync_every_steps,
        }))
    }

    /// Site number `i`: its grid checked by the `[grid]` code at `site.i.grid`, its capacity in replicas.
    fn site(
        &self,
        i: usize,
        r: &RawSite,
        job: &Job,
        cluster: &Cluster,
        grid: &GridSpec,
        before: &[Site],
    ) -> Result<Site, ScenarioError> {
        let k = |f: &str| format!("site.{i}.{f}");
        if r.name.is_empty()
            || !r
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(self.loc.invalid(&k("name"), format!("`{}` must be non-empty letters, digits, `_` or `-` (it names rows of sites.csv)", r.name)));
        }
        if before.iter().any(|s| s.name == r.name) {
            return Err(self
                .loc
                .invalid(&k("name"), format!("site `{}` is listed twice", r.name)));
        }
        let nested = self.loc.nested(&format!("site.{i}."));
        let site_grid = Validator {
            loc: &nested,
            base: self.base,
        }
        .grid(&r.grid)?;
        if site_grid.interval_s != grid.interval_s {
            return Err(self.loc.invalid(&k("grid.interval_minutes"), format!("every site's grid must have [grid]'s interval ({} min) so the sites' intervals line up in UTC, got {} min", grid.interval_s / 60, site_grid.interval_s / 60)));
        }
        let gpus = match r.gpus {
            None => cluster.gpus,
            Some(g) => self.count(&k("gpus"), g)?,
        };
        let pue = match r.pue {
            None => cluster.pue,
            Some(p) if p.is_finite() && (1.0..=3.0).contains(&p) => p,
            Some(p) => {
                return Err(self
                    .loc
                    .invalid(&k("pue"), format!("must be between 1 and 3, got {p}")))
            }
        };
        let weather_pue = match (&r.weather, &r.pue_model) {
            (None, None) => None,
            (Some(w), Some(m)) => {
                let model = crate::grid::PueModel::by_name(m).map_err(|e| self.loc.invalid(&k("pue_model"), e.to_string()))?;
                Some((self.path(w), model))
            }
            (Some(_), None) => return Err(self.loc.invalid(&k("pue_model"), "a weather file needs `pue_model` (chiller or free_cooled) to turn temperature into PUE")),
            (None, Some(_)) => return Err(self.loc.invalid(&k("weather"), "`pue_model` needs `weather = \"path/to/file.epw\"` (hourly typical-year weather)")),
        };
        let replicas = replicas_in(gpus, &job.plan).ok_or_else(|| {
            let p = &job.plan;
            self.loc.invalid(&k("gpus"), format!(
                "{gpus} GPUs hold no replica of the job: a replica needs tp × pp = {} GPUs, and the replica count must be a multiple of ep = {} that divides global_batch_seqs / micro_batch_seqs = {}; give at least {} GPUs",
                p.tp * p.pp, p.ep.max(1), p.global_batch_seqs / p.micro_batch_seqs.max(1), p.tp * p.pp * p.ep.max(1)
            ))
        })?;
        Ok(Site {
            name: r.name.clone(),
            gpus,
            replicas,
            pue,
            weather_pue,
            grid: site_grid,
        })
    }
}

/// The most data-parallel replicas of `plan` that fit in `gpus` GPUs: at most `plan.dp`, a multiple
/// of `plan.ep`, and dividing the global batch into whole micro-batches per replica (the global batch
/// stays; fewer replicas accumulate more micro-batches). None if not even one fits.
pub(crate) fn replicas_in(gpus: u32, plan: &crate::workload::ParallelPlan) -> Option<u32> {
    let per = plan.tp.max(1) * plan.pp.max(1);
    let cap = plan.dp.min(gpus / per);
    let ep = plan.ep.max(1);
    let micro = plan.micro_batch_seqs.max(1);
    (1..=cap)
        .rev()
        .find(|r| r.is_multiple_of(ep) && plan.global_batch_seqs.is_multiple_of(r * micro))
}
