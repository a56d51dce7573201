//! Energy, carbon and cost meters: integrate piecewise-constant power exactly where it changes.

/// Power drawn by the job's components at one moment [W].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Power {
    /// All GPUs [W].
    pub gpu_w: f64,
    /// Part of `gpu_w` drawn by GPUs waiting (at spin power in a step, idle while held; bubbles, stragglers, exposed communication) [W].
    pub waiting_w: f64,
    /// Node overhead: CPUs, DRAM, NICs, fans [W].
    pub node_w: f64,
    /// Network switches [W].
    pub network_w: f64,
}

impl Power {
    /// IT power [W].
    pub fn it_w(&self) -> f64 {
        self.gpu_w + self.node_w + self.network_w
    }
}

/// Accumulated energy per component [J], carbon [kg] and cost [currency].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Totals {
    /// GPU energy [J].
    pub gpu_j: f64,
    /// GPU energy drawn while waiting [J] (included in `gpu_j`).
    pub waiting_j: f64,
    /// Node overhead energy [J].
    pub node_j: f64,
    /// Network energy [J].
    pub network_j: f64,
    /// Facility energy (IT × PUE) [J].
    pub facility_j: f64,
    /// Emissions [kg CO2e].
    pub co2_kg: f64,
    /// Electricity cost [currency].
    pub cost: f64,
    /// Time covered [s].
    pub time_s: f64,
}

impl Totals {
    /// Add `o`'s energies, emissions and cost (not its time: parallel meters share the clock).
    pub fn absorb(&mut self, o: &Totals) {
        self.gpu_j += o.gpu_j;
        self.waiting_j += o.waiting_j;
        self.node_j += o.node_j;
        self.network_j += o.network_j;
        self.facility_j += o.facility_j;
        self.co2_kg += o.co2_kg;
        self.cost += o.cost;
    }

    /// IT energy [J].
    pub fn it_j(&self) -> f64 {
        self.gpu_j + self.node_j + self.network_j
    }

    /// Cooling and other facility overhead: facility − IT [J].
    pub fn cooling_j(&self) -> f64 {
        self.facility_j - self.it_j()
    }

    fn add(&mut self, p: &Power, pue: f64, ci_g_per_kwh: f64, price_per_mwh: f64, dt_s: f64) {
        let fac = p.it_w() * pue * dt_s;
        self.gpu_j += p.gpu_w * dt_s;
        self.waiting_j += p.waiting_w * dt_s;
        self.node_j += p.node_w * dt_s;
        self.network_j += p.network_w * dt_s;
        self.facility_j += fac;
        self.co2_kg += fac / 3.6e6 * ci_g_per_kwh / 1000.0;
        self.cost += fac / 3.6e9 * price_per_mwh;
        self.time_s += dt_s;
    }
}

/// An energy meter: the power level since the last change, and totals overall and for the current interval.
#[derive(Debug, Clone, Default)]
pub struct Meter {
    power: Power,
    since_s: f64,
    /// Whole-run totals.
    pub total: Totals,
    /// Totals of the current grid interval.
    pub interval: Totals,
    /// Highest facility power seen [W].
    pub peak_facility_w: f64,
    pue: f64,
    ci: f64,
    price: f64,
}

impl Meter {
    /// A meter at time zero with zero power.
    pub fn new(pue: f64) -> Self {
        Self {
            pue,
            ..Default::default()
        }
    }

    /// Account for the current power up to `now_s`.
    pub fn advance(&mut self, now_s: f64) {
        let dt = now_s - self.since_s;
        if dt > 0.0 {
            self.total
                .add(&self.power, self.pue, self.ci, self.price, dt);
            self.interval
                .add(&self.power, self.pue, self.ci, self.price, dt);
        }
        self.since_s = now_s;
    }

    /// Change the power level at `now_s`.
    pub fn set_power(&mut self, now_s: f64, p: Power) {
        self.advance(now_s);
        self.power = p;
        self.peak_facility_w = self.peak_facility_w.max(p.it_w() * self.pue);
    }

    /// Add `it_j` of GPU energy drawn beside the power level (a ramp limit's filler, which rises
    /// and falls linearly rather than holding a level) at the current PUE, intensity and price, to
    /// the run and the current interval [J].
    pub fn add_gpu_energy(&mut self, it_j: f64) {
        let fac = it_j * self.pue;
        for t in [&mut self.total, &mut self.interval] {
            t.gpu_j += it_j;
            t.facility_j += fac;
            t.co2_kg += fac / 3.6e6 * self.ci / 1000.0;
            t.cost += fac / 3.6e9 * self.price;
        }
    }

    /// Start a new grid interval at `now_s` with its intensity [g/kWh], price [/MWh] and PUE; returns the
    /// finished interval's totals.
    pub fn new_interval(
        &mut self,
        now_s: f64,
        ci_g_per_kwh: f64,
        price_per_mwh: f64,
        pue: f64,
    ) -> Totals {
        self.advance(now_s);
        self.ci = ci_g_per_kwh;
        self.price = price_per_mwh;
        self.pue = pue;
        self.peak_facility_w = self.peak_facility_w.max(self.power.it_w() * pue);
        std::mem::take(&mut self.interval)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn piecewise_constant_power_integrates_exactly_and_splits_at_intervals() {
        let mut m = Meter::new(1.5);
        m.new_interval(0.0, 100.0, 50.0, 1.5);
        m.set_power(
            0.0,
            Power {
                gpu_w: 1000.0,
                waiting_w: 0.0,
                node_w: 200.0,
                network_w: 0.0,
            },
        );
        m.set_power(
            1800.0,
            Power {
                gpu_w: 400.0,
                waiting_w: 400.0,
                node_w: 200.0,
                network_w: 0.0,
            },
        );
        let first = m.new_interval(3600.0, 300.0, 50.0, 1.5);
        m.advance(7200.0);
        // Interval 1: 1200 W for 1800 s + 600 W for 1800 s = 3.24 MJ IT, × 1.5 facility.
        assert!((first.it_j() - 3.24e6).abs() < 1e-6);
        assert!((first.facility_j - 4.86e6).abs() < 1e-6);
        assert!((first.co2_kg - 4.86e6 / 3.6e6 * 100.0 / 1000.0).abs() < 1e-9);
        assert!((m.total.facility_j - (4.86e6 + 600.0 * 1.5 * 3600.0)).abs() < 1e-6);
        assert!(
            (m.total.co2_kg - (first.co2_kg + 600.0 * 1.5 * 3600.0 / 3.6e6 * 0.3)).abs() < 1e-9
        );
        assert_eq!(m.peak_facility_w, 1800.0);
    }
}
