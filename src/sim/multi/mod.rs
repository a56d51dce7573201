//! Multi-region jobs: the same job at one site, following the night across sites, and geo-distributed
//! data parallel, each on its sites' own grids, compared on CO2, energy, time, cost and estimated loss.
//!
//! Composition, not a second engine: each site's step is the fast step model's ([`StepModel`], the
//! job's plan narrowed to the replicas the site holds), its power the run's node power model
//! ([`RunSetup`]), and every site meters its own energy with a [`Meter`] on its own grid. Steps are
//! seconds long and grid intervals an hour, so within an interval a site's training is metered as a
//! steady rate at its mean step (the run level's step aggregation does the same within an interval);
//! what the modes add — moves, WAN traffic, the planners — happens at interval boundaries.

mod exec;
mod geo;
mod meters;
mod plan;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_cost;

pub use exec::{Execution, SiteRun};

use super::meter::Power;
use super::{
    mean_step, models_for, outcome, plan as splan, token_target, Goal, RunSetup, SimError,
};
use crate::cost::CostInputs;
use crate::grid::{self, GridSeries};
use crate::routing::TraceFile;
use crate::scenario::sites::{CostOrigin, SiteObjective, SitesSpec};
use crate::scenario::{Scenario, StrategyKind};
use std::sync::Arc;

/// One site as the multi-region modes see it: its job's mean step and powers, and its grid.
#[derive(Debug, Clone)]
pub struct SiteModel {
    /// Site name.
    pub name: String,
    /// Replicas of the job the site holds.
    pub replicas: u32,
    /// GPUs the job uses there.
    pub gpus: f64,
    /// Time of one optimizer step there [s].
    pub step_s: f64,
    /// Tokens of one step [tokens].
    pub tokens_per_step: f64,
    /// Progress of one step: tokens, or effective tokens at equal loss [tokens].
    pub progress_per_step: f64,
    /// Tokens of one step the quality law counts (dropped assignments discounted) [tokens].
    pub effective_per_step: f64,
    /// Power while training.
    pub train: Power,
    /// Power while holding the job's nodes without training (receiving or sending a checkpoint,
    /// waiting for a WAN synchronisation): idle GPUs, base node power, network.
    pub held: Power,
    /// Carbon intensity per interval [g/kWh].
    pub ci: Vec<f64>,
    /// Price per interval [currency/MWh] (0 without a price).
    pub price: Vec<f64>,
    /// PUE per interval.
    pub pue: Vec<f64>,
    /// The grid's source, for the report.
    pub source: String,
    /// Carbon price per interval [currency/t CO2e] (0 without one).
    pub carbon_price: Vec<f64>,
    /// Levy per kWh of facility energy [currency/kWh].
    pub levy_per_kwh: f64,
    /// Compute-hour tax per GPU-hour held [currency/GPU-h].
    pub tax_per_gpu_h: f64,
    /// The carbon-intensity forecast the planners plan on [g/kWh] (None: they see `ci` itself).
    pub forecast_ci: Option<Vec<f64>>,
    /// Where the planners' view of this site comes from, for the report: the forecast's file, or
    /// "perfect foresight" (the real series).
    pub planned_on: String,
    /// Where the site's cost terms come from.
    pub cost_origin: CostOrigin,
}

impl SiteModel {
    /// Progress per second of training [tokens/s].
    pub fn rate(&self) -> f64 {
        self.progress_per_step / self.step_s
    }

    /// CO2 of `dt_s` seconds at power `p` in interval `i` [kg].
    pub fn co2_kg(&self, p: &Power, i: usize, dt_s: f64) -> f64 {
        p.it_w() * self.pue[i] * dt_s / 3.6e6 * self.ci[i] / 1000.0
    }

    /// What `objective` counts of `dt_s` seconds at power `p` holding the site's GPUs in interval `i`:
    /// CO2 [kg], or cost [currency] — facility MWh × (electricity price + levy + carbon price ×
    /// intensity) plus the compute-hour tax on the GPU-hours.
    pub fn signal(&self, p: &Power, i: usize, dt_s: f64, objective: SiteObjective) -> f64 {
        match objective {
            SiteObjective::Co2 => self.co2_kg(p, i, dt_s),
            SiteObjective::Cost => {
                let mwh = p.it_w() * self.pue[i] * dt_s / 3.6e9;
                let per_mwh = self.price[i]
                    + self.levy_per_kwh * 1000.0
                    + self.carbon_price[i] * self.ci[i] / 1000.0;
                mwh * per_mwh + self.tax_per_gpu_h * self.gpus * dt_s / 3600.0
            }
        }
    }
}

/// Everything the modes share: the sites, the WAN, the job's checkpoint and the target.
#[derive(Debug, Clone)]
pub struct Inputs {
    /// The sites, in scenario order.
    pub sites: Vec<SiteModel>,
    /// The scenario's sites and WAN.
    pub spec: SitesSpec,
    /// Model weights + optimizer state written at a move [bytes].
    pub checkpoint_bytes: f64,
    /// What a geo-distributed synchronisation all-reduces: the weights' update in the compute
    /// precision (DiLoCo's outer gradient; the gradient itself when every step syncs) [bytes].
    pub sync_bytes: f64,
    /// Grid interval [s].
    pub interval_s: f64,
    /// Progress to make [tokens].
    pub target: f64,
    /// Whether progress counts effective tokens.
    pub count_effective: bool,
    /// Relative loss increase of geo-distributed rounds over data parallel, by the number of sites
    /// that synchronise (index 0 and 1: none) (`quality::diloco`).
    pub sync_penalty: Vec<f64>,
    /// What a token of a geo-distributed round counts toward the target, by the number of sites
    /// that synchronise: the synchronous tokens of the target over the tokens that reach the same
    /// loss under that count's penalty (`quality::diloco::equal_loss_tokens`); 1 without a penalty.
    pub sync_worth: Vec<f64>,
}

impl Inputs {
    /// The grids as the planners see them: each site's forecast in place of its carbon series (None
    /// when no site has a forecast: the planners see the real series, perfect foresight).
    pub fn planner_view(&self) -> Option<Inputs> {
        if self.sites.iter().all(|m| m.forecast_ci.is_none()) {
            return None;
        }
        let mut v = self.clone();
        for m in &mut v.sites {
            if let Some(f) = m.forecast_ci.take() {
                m.ci = f;
            }
        }
        Some(v)
    }

    /// What the objective counts of `j` joules over the WAN between `sites` in interval `i`: CO2 at
    /// their mean intensity [kg], or its electricity and carbon price at their mean prices [currency].
    pub fn wan_signal(&self, sites: &[usize], i: usize, j: f64) -> f64 {
        let n = sites.len().max(1) as f64;
        let mean = |f: &dyn Fn(&SiteModel) -> f64| {
            sites.iter().map(|&s| f(&self.sites[s])).sum::<f64>() / n
        };
        let co2_kg = j / 3.6e6 * mean(&|m| m.ci[i]) / 1000.0;
        match self.spec.objective {
            SiteObjective::Co2 => co2_kg,
            SiteObjective::Cost => {
                j / 3.6e9 * mean(&|m| m.price[i]) + co2_kg / 1000.0 * mean(&|m| m.carbon_price[i])
            }
        }
    }
}

/// One site as the report describes it.
#[derive(Debug, Clone)]
pub struct SiteInfo {
    /// Site name.
    pub name: String,
    /// GPUs the job uses there.
    pub gpus: f64,
    /// The site's switch power while the job holds its nodes [W] (its own nodes' fabric share).
    pub network_w: f64,
    /// What the planners planned this site's carbon on: a forecast file, or "perfect foresight".
    pub planned_on: String,
    /// Where its cost terms come from.
    pub cost_origin: CostOrigin,
}

/// The comparison of a multi-region scenario.
#[derive(Debug, Clone)]
pub struct SitesResults {
    /// One run per mode: each site alone, then follow the night, then geo-distributed.
    pub runs: Vec<SiteRun>,
    /// Site names, in scenario order.
    pub site_names: Vec<String>,
    /// Deadline [s].
    pub deadline_s: f64,
    /// The follow-the-night planner's name.
    pub planner: &'static str,
    /// Geo-distributed: steps between synchronisations.
    pub sync_every_steps: u32,
    /// What the planners minimised.
    pub objective: SiteObjective,
    /// The sites, in scenario order.
    pub sites: Vec<SiteInfo>,
}

/// Build the inputs of `s`'s multi-region job (None without one): each site's step model and grid
/// over the horizon, aligned in UTC from the scenario's start.
pub(crate) fn inputs(
    s: &Scenario,
    trace: &Option<Arc<TraceFile>>,
    seeds: &crate::engine::SeedTree,
    goal: &Goal,
) -> Result<Option<Inputs>, SimError> {
    let Some(spec) = &s.sites else {
        return Ok(None);
    };
    let (job, kind) = match (&s.moe, &s.dense) {
        (Some(j), _) => (j, StrategyKind::Moe),
        (None, Some(j)) => (j, StrategyKind::Dense),
        (None, None) => {
            return Err(SimError::Missing {
                strategy: "multisite",
                what: "a model table",
            })
        }
    };
    let (target, count_effective) = token_target(s, job, kind, goal)?;
    let mut models = Vec::with_capacity(spec.sites.len());
    let mut slowest_s: f64 = 0.0;
    for (k, site) in spec.sites.iter().enumerate() {
        let plan = crate::workload::ParallelPlan {
            dp: site.replicas,
            ..job.plan.clone()
        };
        let site_job = crate::scenario::Job {
            plan,
            ..job.clone()
        };
        // The site's own fabric: its nodes only, so its switch power (ports per NIC endpoint) and
        // its collectives are those of the GPUs it holds, not the full cluster's.
        let gpus = site_job.plan.gpus();
        let fabric = crate::network::Fabric {
            nodes: gpus.div_ceil(s.cluster.gpus_per_node.max(1)),
            ..s.cluster.fabric
        };
        let cluster = crate::scenario::Cluster {
            gpus,
            fabric,
            pue: site.pue,
            weather_pue: site.weather_pue.clone(),
            ..s.cluster.clone()
        };
        let narrow = Scenario {
            cluster,
            ..s.clone()
        };
        let (sm, router) = models_for(&narrow, &site_job, trace, seeds.stream("sites", k as u64))?;
        let knobs = splan::capped_full(&narrow, &sm);
        let c = mean_step(&sm, &router, knobs);
        let setup = RunSetup::of_cluster(&narrow, &sm, target, count_effective);
        let gpu_w = c.gpu_energy_j / c.time_s;
        let effective_per_step =
            c.tokens * splan::effective_share(&c, knobs.top_k, sm.full_knobs().top_k);
        let progress_per_step = if count_effective {
            effective_per_step
        } else {
            c.tokens
        };
        slowest_s = slowest_s.max(target / progress_per_step * c.time_s);
        let idle = setup.gpus * setup.gpu_idle_w;
        models.push(SiteModel {
            name: site.name.clone(),
            replicas: site.replicas,
            gpus: setup.gpus,
            step_s: c.time_s,
            tokens_per_step: c.tokens,
            progress_per_step,
            effective_per_step,
            train: Power {
                gpu_w,
                waiting_w: c.waiting_energy_j / c.time_s,
                node_w: setup.node_power_w(gpu_w),
                network_w: setup.network_w,
            },
            held: Power {
                gpu_w: idle,
                waiting_w: idle,
                node_w: setup.node_w,
                network_w: setup.network_w,
            },
            ci: Vec::new(),
            price: Vec::new(),
            pue: Vec::new(),
            source: String::new(),
            carbon_price: Vec::new(),
            levy_per_kwh: 0.0,
            tax_per_gpu_h: 0.0,
            forecast_ci: None,
            planned_on: "perfect foresight".into(),
            cost_origin: site.cost_origin,
        });
    }
    // Long enough for the slowest site alone past the deadline, in whole days.
    let horizon_s =
        ((slowest_s.max(spec.deadline_s) * 1.3 + 2.0 * 86_400.0) / 86_400.0).ceil() * 86_400.0;
    for (m, site) in models.iter_mut().zip(&spec.sites) {
        let mut g: GridSeries =
            grid::series_for(&site.grid, s.training.start_utc_s, horizon_s as i64)?;
        let pue = grid::pue_by_interval(&g, site.pue, site.weather_pue.as_ref())?;
        // The site's cost table read onto its own grid's intervals (an electricity price there
        // replaces the grid's; see `Site::cost` for what it inherits from the top-level [cost]).
        let cost = match &site.cost {
            Some(c) => Some(CostInputs::load(c, &mut g)?),
            None => None,
        };
        m.price = g
            .price_per_mwh
            .clone()
            .unwrap_or_else(|| vec![0.0; g.ci_g_per_kwh.len()]);
        m.carbon_price = vec![0.0; g.ci_g_per_kwh.len()];
        if let Some(c) = cost {
            if let Some(cp) = c.carbon_price_per_t {
                m.carbon_price = cp;
            }
            m.levy_per_kwh = c.levy_per_kwh;
            m.tax_per_gpu_h = c.compute_hour_tax;
            if let (Some(f), Some(spec)) = (
                c.forecast_ci,
                site.cost.as_ref().and_then(|c| c.forecast.as_ref()),
            ) {
                m.forecast_ci = Some(f);
                m.planned_on = format!("forecast {}", crate::io::lexical(&spec.path).display());
            }
        }
        m.ci = g.ci_g_per_kwh;
        m.pue = pue;
        m.source = g.source;
    }
    // The quality cost of synchronising every H steps, by the number of sites that synchronise.
    let h = spec.sync_every_steps;
    let sync_penalty = (0..=spec.sites.len() as u32)
        .map(|m| match m {
            0 => Ok(0.0),
            m => crate::quality::diloco::sync_penalty(job.model.params_active(), m, h),
        })
        .collect::<Result<Vec<f64>, _>>()
        .map_err(|_| SimError::Missing {
            strategy: "geo_dp",
            what: "multisite.sync_every_steps within the published range of its quality cost (1 to 100 steps; at most 4 sites when above 1)",
        })?;
    // Equal quality: a geo-distributed round's tokens count toward the target at the ratio of the
    // synchronous tokens to the tokens that reach the same loss under its penalty — the loss gap
    // turned into tokens through the scenario's law, as the single-site runs train to equal loss.
    // The reference is the target in effective tokens (a token-budget target counts raw tokens:
    // the first site's effective share converts it).
    let law = outcome::law_of(s, job);
    let share = models
        .first()
        .map_or(1.0, |m| m.effective_per_step / m.progress_per_step);
    let reference = target * share;
    let sync_worth = sync_penalty
        .iter()
        .map(|&p| {
            crate::quality::diloco::equal_loss_tokens(law, reference, p)
                .map(|d| reference / d)
                .ok_or_else(|| {
                    let at = law.loss(reference).map_or(f64::NAN, |e| e.loss);
                    SimError::Unreachable {
                        strategy: "geo_dp",
                        target: at / (1.0 + p),
                        whence: format!(
                            "the synchronous loss {at:.4} over 1 + its sync penalty {:.2} % at multisite.sync_every_steps = {h}",
                            p * 100.0
                        ),
                        law: law.name(),
                        floor: law.loss(1e16).map_or(f64::NAN, |e| e.loss).max(law.floor()),
                        ceiling: law.loss(1e3).map_or(f64::NAN, |e| e.loss),
                    }
                })
        })
        .collect::<Result<Vec<f64>, _>>()?;
    let p = job.plan.precision_bytes();
    let opt = if p >= 4.0 {
        crate::workload::memory::ADAM_FP32_OPT_BYTES_PER_PARAM
    } else {
        crate::workload::memory::ADAM_MIXED_OPT_BYTES_PER_PARAM
    };
    let params = job.model.params_total();
    Ok(Some(Inputs {
        sites: models,
        spec: spec.clone(),
        checkpoint_bytes: params * (p + opt),
        sync_bytes: params * p,
        interval_s: s.grid.interval_s as f64,
        target,
        count_effective,
        sync_penalty,
        sync_worth,
    }))
}

/// Run every multi-region mode of `s` (None without `[[site]]` tables).
pub(crate) fn simulate_sites(
    s: &Scenario,
    trace: &Option<Arc<TraceFile>>,
    seeds: &crate::engine::SeedTree,
    goal: &Goal,
) -> Result<Option<SitesResults>, SimError> {
    let Some(inp) = inputs(s, trace, seeds, goal)? else {
        return Ok(None);
    };
    let job = s.moe.as_ref().or(s.dense.as_ref());
    let mut runs = Vec::new();
    for k in 0..inp.sites.len() {
        let plan = vec![k; inp.sites[0].ci.len()];
        runs.push(exec::execute(
            &inp,
            &plan,
            &format!("single:{}", inp.sites[k].name),
        )?);
    }
    runs.push(plan::follow_the_night(&inp)?);
    runs.push(geo::geo_distributed(&inp)?);
    if let Some(job) = job {
        let law = outcome::law_of(s, job);
        for r in &mut runs {
            // Geo-distributed rounds synchronised every H steps: the loss after as many tokens of
            // synchronous training × (1 + the published penalty), `quality::diloco`.
            r.loss = law.loss(r.effective_tokens).ok().map(|mut l| {
                l.loss *= 1.0 + r.sync_penalty;
                l
            });
        }
    }
    Ok(Some(SitesResults {
        site_names: inp.sites.iter().map(|m| m.name.clone()).collect(),
        deadline_s: inp.spec.deadline_s,
        planner: inp.spec.planner.name(),
        sync_every_steps: inp.spec.sync_every_steps,
        objective: inp.spec.objective,
        sites: inp
            .sites
            .iter()
            .map(|m| SiteInfo {
                name: m.name.clone(),
                gpus: m.gpus,
                network_w: m.train.network_w,
                planned_on: m.planned_on.clone(),
                cost_origin: m.cost_origin,
            })
            .collect(),
        runs,
    }))
}
