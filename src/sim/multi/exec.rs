//! Carrying out a follow-the-night plan (one site per grid interval): training metered at each site,
//! checkpoint moves over the WAN charged in time, held power and network energy.

use super::Inputs;
use crate::sim::meter::{Meter, Power, Totals};
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
    /// Cost of the WAN energy at the mean price of the two ends [currency].
    pub wan_cost: f64,
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

    /// Electricity cost of the sites and the WAN [currency].
    pub fn cost(&self) -> f64 {
        self.sites.cost + self.wan_cost
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
    let mut meters: Vec<Meter> = inp.sites.iter().map(|m| Meter::new(m.pue[0])).collect();
    let mut run = SiteRun {
        name: name.to_string(),
        sites: Totals::default(),
        wan_j: 0.0,
        wan_co2_kg: 0.0,
        wan_cost: 0.0,
        wall_s: f64::NAN,
        tokens: 0.0,
        effective_tokens: 0.0,
        moves: 0,
        trained_s: vec![0.0; n_sites],
        gpu_hours: 0.0,
        deadline_met: false,
        plan: Vec::new(),
        loss: None,
    };
    let mut progress = 0.0;
    let mut prev: Option<usize> = None;
    let mut end_s = f64::NAN;
    let intervals = plan
        .len()
        .min(inp.sites.iter().map(|m| m.ci.len()).min().unwrap_or(0));
    for (i, &s) in plan.iter().enumerate().take(intervals) {
        let t0 = i as f64 * dt;
        for (k, m) in meters.iter_mut().enumerate() {
            let site = &inp.sites[k];
            m.new_interval(t0, site.ci[i], site.price[i], site.pue[i]);
        }
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
            meters[p].set_power(t0, from.held);
            meters[s].set_power(t0, site.held);
            meters[p].set_power(t0 + tau, Power::default());
            let j = link.transfer_j(inp.checkpoint_bytes);
            run.wan_j += j;
            run.wan_co2_kg += j / 3.6e6 * 0.5 * (from.ci[i] + site.ci[i]) / 1000.0;
            run.wan_cost += j / 3.6e9 * 0.5 * (from.price[i] + site.price[i]);
            run.gpu_hours += (from.gpus + site.gpus) * tau / 3600.0;
            run.moves += 1;
            start = t0 + tau;
        }
        prev = Some(s);
        meters[s].set_power(start, site.train);
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
        run.gpu_hours += site.gpus * span / 3600.0;
        run.tokens += site.tokens_per_step / site.step_s * span;
        run.effective_tokens += site.effective_per_step / site.step_s * span;
        if end_s.is_finite() {
            meters[s].set_power(end_s, Power::default());
            break;
        }
    }
    close_meters(&mut meters, end_s, intervals as f64 * dt, &mut run);
    run.deadline_met = end_s.is_finite() && end_s <= inp.spec.deadline_s + 1e-6;
    Ok(run)
}

/// Close every site's meter at the run's end `end_s` (or at `horizon_s` when it never finished), sum
/// them into `run.sites` and set the run's wall-clock time.
pub(super) fn close_meters(meters: &mut [Meter], end_s: f64, horizon_s: f64, run: &mut SiteRun) {
    let close = if end_s.is_finite() { end_s } else { horizon_s };
    for m in meters.iter_mut() {
        m.advance(close);
        run.sites.absorb(&m.total);
    }
    run.sites.time_s = close;
    run.wall_s = end_s;
}
