//! The sites' meters of a multi-region run and its cost terms: each site's electricity, carbon price and
//! levy charged interval by interval at its own rates, its compute-hour tax on the GPU-hours it held, and
//! the WAN's energy at the mean rates of the sites it joins — so the terms add up to the run's cost.

use super::exec::SiteRun;
use super::Inputs;
use crate::cost::CostTerms;
use crate::sim::meter::{Meter, Totals};

/// One meter per site, and the grid interval they are in.
pub(super) struct SiteMeters {
    /// The meters, in scenario order.
    pub m: Vec<Meter>,
    cur: Option<usize>,
}

impl SiteMeters {
    /// Meters at time zero, before the first interval.
    pub fn new(inp: &Inputs) -> Self {
        Self {
            m: inp.sites.iter().map(|s| Meter::new(s.pue[0])).collect(),
            cur: None,
        }
    }

    /// Start interval `i` at `t0` [s] at every site; the interval just finished is charged to `run`.
    pub fn start_interval(&mut self, inp: &Inputs, i: usize, t0: f64, run: &mut SiteRun) {
        for (k, m) in self.m.iter_mut().enumerate() {
            let s = &inp.sites[k];
            let done = m.new_interval(t0, s.ci[i], s.price[i], s.pue[i]);
            if let Some(c) = self.cur {
                charge(inp, k, c, &done, &mut run.site_terms[k]);
            }
        }
        self.cur = Some(i);
    }

    /// Close every meter at the run's end `end_s` (or at `horizon_s` when it never finished): charge
    /// the last interval and each site's tax, sum the sites into `run.sites`, set the wall-clock time.
    pub fn close(&mut self, inp: &Inputs, end_s: f64, horizon_s: f64, run: &mut SiteRun) {
        let close = if end_s.is_finite() { end_s } else { horizon_s };
        for (k, m) in self.m.iter_mut().enumerate() {
            m.advance(close);
            if let Some(c) = self.cur {
                charge(inp, k, c, &m.interval, &mut run.site_terms[k]);
            }
            run.site_terms[k].tax = run.gpu_hours_by_site[k] * inp.sites[k].tax_per_gpu_h;
            run.sites.absorb(&m.total);
        }
        run.sites.time_s = close;
        run.wall_s = end_s;
    }
}

/// Add interval `i`'s totals `t` at site `k` to its terms: the metered electricity cost, tonnes ×
/// the interval's carbon price, facility kWh × the levy (the tax is charged on GPU-hours at close).
fn charge(inp: &Inputs, k: usize, i: usize, t: &Totals, terms: &mut CostTerms) {
    let s = &inp.sites[k];
    terms.electricity += t.cost;
    terms.carbon += t.co2_kg / 1000.0 * s.carbon_price[i];
    terms.levy += t.facility_j / 3.6e6 * s.levy_per_kwh;
}

impl SiteRun {
    /// `gpus` GPUs of site `k` held for `dt_s` seconds: GPU-hours, the compute-hour tax's base.
    pub(super) fn hold(&mut self, k: usize, gpus: f64, dt_s: f64) {
        let h = gpus * dt_s / 3600.0;
        self.gpu_hours += h;
        self.gpu_hours_by_site[k] += h;
    }

    /// `j` joules over the WAN between `sites` in interval `i`: network energy, its CO2 at the sites'
    /// mean intensity, and its electricity and carbon price at their mean price (no PUE, no levy:
    /// it is the carriers' electricity, not a facility's).
    pub(super) fn wan(&mut self, inp: &Inputs, sites: &[usize], i: usize, j: f64) {
        let n = sites.len().max(1) as f64;
        let mean = |f: &dyn Fn(usize) -> f64| sites.iter().map(|&s| f(s)).sum::<f64>() / n;
        let co2 = j / 3.6e6 * mean(&|s| inp.sites[s].ci[i]) / 1000.0;
        self.wan_j += j;
        self.wan_co2_kg += co2;
        self.wan_terms.electricity += j / 3.6e9 * mean(&|s| inp.sites[s].price[i]);
        self.wan_terms.carbon += co2 / 1000.0 * mean(&|s| inp.sites[s].carbon_price[i]);
    }
}
