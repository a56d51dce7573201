//! Carrying out a follow-the-night plan (one site per grid interval): training metered at each site,
//! checkpoint moves over the WAN charged in time, held power and network energy.

use super::meters::SiteMeters;
use super::Inputs;
use crate::cost::CostTerms;
use crate::scenario::sites::SiteObjective;
use crate::sim::meter::{Power, Totals};
use crate::sim::SimError;

/// One multi-region run: a mode's totals over all its sites and the WAN.
#[derive(Debug, Clone)]
pub struct SiteRun {
    /// Row name: `single:<site>`, `follow_the_night` or `geo_dp`.
    pub name: String,
    /// Energy, CO2 and cost metered at the sites (facility energy with each site's PUE).
    pub sites: Totals,
    /// Network energy of the WAN traffic [J] (network electricity per byte, no PUE on top).
    pub wan_j: f64,
    /// CO2 of the WAN energy, at the mean intensity of the two ends [kg].
    pub wan_co2_kg: f64,
    /// Each site's cost terms, in scenario order [currency].
    pub site_terms: Vec<CostTerms>,
    /// The WAN's cost terms: its energy at the mean electricity and carbon price of the sites it
    /// joins (no tax, no levy) [currency].
    pub wan_terms: CostTerms,
    /// Wall-clock from the start to the last step [s] (NaN if the run did not finish in the series).
    pub wall_s: f64,
    /// Tokens trained.
    pub tokens: f64,
    /// Progress the quality law counts (effective tokens at equal loss) [tokens].
    pub effective_tokens: f64,
    /// Checkpoint moves between sites (follow the night) or WAN synchronisations (geo-distributed).
    pub moves: u64,
    /// Seconds trained at each site, in scenario order [s].
    pub trained_s: Vec<f64>,
    /// GPU-hours held (training, sending or receiving) [h].
    pub gpu_hours: f64,
    /// GPU-hours held at each site, in scenario order [h].
    pub gpu_hours_by_site: Vec<f64>,
    /// Relative loss increase of synchronising every H steps over data parallel (geo-distributed;
    /// tokens-weighted over its rounds, by the number of sites in each; 0 otherwise).
    pub sync_penalty: f64,
    /// Whether the run finished by the deadline.
    pub deadline_met: bool,
    /// The site of each interval until the end (follow the night and single site; empty for geo).
    pub plan: Vec<usize>,
    /// Estimated final loss (filled by the caller from the scenario's law).
    pub loss: Option<crate::quality::LossEstimate>,
}

impl SiteRun {
    /// CO2 of the sites and the WAN [kg].
    pub fn co2_kg(&self) -> f64 {
        self.sites.co2_kg + self.wan_co2_kg
    }

    /// Facility energy of the sites plus the WAN's [J].
    pub fn energy_j(&self) -> f64 {
        self.sites.facility_j + self.wan_j
    }

    /// Every cost term of the sites and the WAN, summed [currency].
    pub fn cost_terms(&self) -> CostTerms {
        let mut t = self.wan_terms;
        for s in &self.site_terms {
            t.electricity += s.electricity;
            t.carbon += s.carbon;
            t.tax += s.tax;
            t.levy += s.levy;
        }
        t
    }

    /// Total cost of the sites and the WAN: the sum of [`Self::cost_terms`] [currency].
    pub fn cost(&self) -> f64 {
        self.cost_terms().total()
    }

    /// What the planners minimise: kg CO2e or currency.
    pub fn score(&self, objective: SiteObjective) -> f64 {
        match objective {
            SiteObjective::Co2 => self.co2_kg(),
            SiteObjective::Cost => self.cost(),
        }
    }

    /// An empty run of `name` over `n_sites` sites.
    pub(super) fn new(name: &str, n_sites: usize) -> SiteRun {
        SiteRun {
            name: name.to_string(),
            sites: Totals::default(),
            wan_j: 0.0,
            wan_co2_kg: 0.0,
            site_terms: vec![CostTerms::default(); n_sites],
            wan_terms: CostTerms::default(),
            wall_s: f64::NAN,
            tokens: 0.0,
            effective_tokens: 0.0,
            moves: 0,
            trained_s: vec![0.0; n_sites],
            gpu_hours: 0.0,
            gpu_hours_by_site: vec![0.0; n_sites],
            sync_penalty: 0.0,
            deadline_met: false,
            plan: Vec::new(),
            loss: None,
        }
    }
}

/// What a plan comes to when carried out (the planners compare candidates by it).
pub type Execution = SiteRun;

/// Carry out `plan` (site index per grid interval from the start) until the target is reached.
/// A change of site at an interval boundary moves the checkpoint: both sites hold the job's nodes
/// for the transfer time (bytes × 8 / bandwidth + latency), the WAN carries bytes × J/B, and the
/// new site trains for what is left of the interval. A move that would not fit in one interval is
/// an error (the planners never choose one).
pub(crate) fn execute(inp: &Inputs, plan: &[usize], name: &str) -> Result<SiteRun, SimError> {
    let n_sites = inp.sites.len();
    let dt = inp.interval_s;
    let mut meters = SiteMeters::new(inp);
    let mut run = SiteRun::new(name, n_sites);
    let mut progress = 0.0;
    let mut prev: Option<usize> = None;
    let mut end_s = f64::NAN;
    let intervals = plan
        .len()
        .min(inp.sites.iter().map(|m| m.ci.len()).min().unwrap_or(0));
    for (i, &s) in plan.iter().enumerate().take(intervals) {
        let t0 = i as f64 * dt;
        meters.start_interval(inp, i, t0, &mut run);
        run.plan.push(s);
        let site = &inp.sites[s];
        let mut start = t0;
        if let Some(p) = prev.filter(|&p| p != s) {
            let link = inp.spec.link(p, s).ok_or(SimError::Missing {
                strategy: "follow_the_night",
                what: "a WAN link between every pair of sites",
            })?;
            let tau = link.transfer_s(inp.checkpoint_bytes);
            if tau >= dt {
                return Err(SimError::Missing {
                    strategy: "follow_the_night",
                    what: "checkpoint moves shorter than a grid interval (raise the WAN bandwidth)",
                });
            }
            let from = &inp.sites[p];
            meters.m[p].set_power(t0, from.held);
            meters.m[s].set_power(t0, site.held);
            meters.m[p].set_power(t0 + tau, Power::default());
            run.wan(inp, &[p, s], i, link.transfer_j(inp.checkpoint_bytes));
            run.hold(p, from.gpus, tau);
            run.hold(s, site.gpus, tau);
            run.moves += 1;
            start = t0 + tau;
        }
        prev = Some(s);
        meters.m[s].set_power(start, site.train);
        let rate = site.rate();
        let need_s = (inp.target - progress) / rate;
        let span = if start + need_s <= t0 + dt {
            end_s = start + need_s;
            need_s
        } else {
            t0 + dt - start
        };
        progress += rate * span;
        run.trained_s[s] += span;
        run.hold(s, site.gpus, span);
        run.tokens += site.tokens_per_step / site.step_s * span;
        run.effective_tokens += site.effective_per_step / site.step_s * span;
        if end_s.is_finite() {
            meters.m[s].set_power(end_s, Power::default());
            break;
        }
    }
    meters.close(inp, end_s, intervals as f64 * dt, &mut run);
    run.deadline_met = end_s.is_finite() && end_s <= inp.spec.deadline_s + 1e-6;
    Ok(run)
}
