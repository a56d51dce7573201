//! Validation of `[[site]]`, `[[wan]]` and `[multisite]`: the sites of a multi-region job, their grids
//! (checked by the `[grid]` code), capacities in replicas, and a WAN link for every pair.

use super::super::raw::*;
use super::super::sites::{CostOrigin, Site, SiteObjective, SitePlanner, SitesSpec};
use super::super::*;
use super::Validator;
use crate::cost::CostSpec;
use crate::network::wan::{WanLink, ASLAN_2015_J_PER_BYTE};
use crate::quality::diloco::{check_range, MAX_INNER_STEPS, MAX_REPLICAS};

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
        // The top-level [cost] first, so a bad value a site inherits is reported where it is written
        // (its planner keys are checked again, against the circadian planner, with the rest of [cost]).
        if let Some(c) = &raw.cost {
            self.cost_with(c, &|_| Ok(()))?;
        }
        let mut sites: Vec<Site> = Vec::with_capacity(raw.site.len());
        for (i, r) in raw.site.iter().enumerate() {
            let mut site = self.site(i, r, job, cluster, grid, &sites)?;
            (site.cost, site.cost_origin) =
                self.site_cost(i, r.cost.as_ref(), raw.cost.as_ref())?;
            // Cost terms need an electricity price; a profile grid has one only by price_per_mwh (a
            // grid file may have a price column, checked when it is read).
            let no_price = site.cost.as_ref().is_some_and(|c| c.electricity.is_none())
                && site.grid.price_per_mwh.is_none()
                && matches!(site.grid.source, crate::grid::GridSource::Profile);
            if no_price {
                return Err(self.loc.invalid(&format!("site.{i}.grid.price_per_mwh"), format!("site `{}` has cost terms ([site.cost] or the top-level [cost]) but no electricity price; give site.{i}.grid.price_per_mwh or site.{i}.cost.electricity_price_per_mwh", site.name)));
            }
            sites.push(site);
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
            // The quality cost of synchronising every H steps is interpolated from published losses
            // (Douillard et al. 2025, arXiv 2501.18512, Table 6: H = 30 and 100, M = 2 and 4 replicas;
            // see quality::diloco); beyond them there is no number, so the setting is refused.
            Some(h) if (1..=i64::from(MAX_INNER_STEPS)).contains(&h) => h as u32,
            Some(h) => return Err(self.loc.invalid("multisite.sync_every_steps", format!("must be between 1 and {MAX_INNER_STEPS} steps: the published range of the quality cost of infrequent synchronisation (Streaming DiLoCo, Douillard et al. 2025, arXiv 2501.18512, Table 6: H = 30 and 100), got {h}"))),
        };
        if let Err(e) = check_range(sync_every_steps, sites.len() as u32) {
            return Err(self.loc.invalid("multisite.sync_every_steps", format!("{e}: geo-distributed data parallel synchronises every site, and this job has {} sites; list at most {MAX_REPLICAS} sites or set sync_every_steps = 1 (every step, data parallel: no quality cost)", sites.len())));
        }
        let objective = match m.objective.as_deref() {
            None => SiteObjective::Co2,
            Some(o) => SiteObjective::ALL
                .iter()
                .find(|(_, n)| *n == o)
                .map(|(k, _)| *k)
                .ok_or_else(|| {
                    self.loc.invalid(
                        "multisite.objective",
                        format!("unknown objective `{o}`; valid: co2, cost"),
                    )
                })?,
        };
        Ok(Some(SitesSpec {
            sites,
            wan,
            deadline_s: m.deadline_hours * 3600.0,
            planner,
            sync_every_steps,
            objective,
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
            cost: None,
            cost_origin: CostOrigin::None,
        })
    }

    /// Site `i`'s cost: its `[site.cost]` with the carbon price, tax and levy it leaves out taken
    /// from the top-level `[cost]`; or those three of `[cost]` alone; or none.
    fn site_cost(
        &self,
        i: usize,
        own: Option<&RawCost>,
        top: Option<&RawCost>,
    ) -> Result<(Option<CostSpec>, CostOrigin), ScenarioError> {
        let nested = self.loc.nested(&format!("site.{i}."));
        let v = Validator {
            loc: &nested,
            base: self.base,
        };
        let (merged, origin) = match (own, top) {
            (None, None) => return Ok((None, CostOrigin::None)),
            (Some(c), top) => {
                if c.hints.is_some() {
                    return Err(v.loc.invalid("cost.hints", "the multi-region planners do not read grid hints; remove [site.cost.hints] (a site's [site.cost.forecast] is read)"));
                }
                let mut m = c.clone();
                if let Some(t) = top {
                    m.carbon_price_per_t = m.carbon_price_per_t.or(t.carbon_price_per_t.clone());
                    m.compute_hour_tax = m.compute_hour_tax.or(t.compute_hour_tax);
                    m.levy_per_kwh = m.levy_per_kwh.or(t.levy_per_kwh);
                }
                (m, CostOrigin::Site)
            }
            (None, Some(t)) => (
                RawCost {
                    electricity_price_per_mwh: None,
                    carbon_price_per_t: t.carbon_price_per_t.clone(),
                    compute_hour_tax: t.compute_hour_tax,
                    levy_per_kwh: t.levy_per_kwh,
                    forecast: None,
                    hints: None,
                },
                CostOrigin::TopLevel,
            ),
        };
        // A site's forecast is read by the multi-region planners, which every multi-region job has.
        Ok((Some(v.cost_with(&merged, &|_| Ok(()))?), origin))
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
