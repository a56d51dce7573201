//! The cost inputs on the run's grid intervals and the cost terms of a run, summed interval by interval.

use super::{hints, series, CostError, CostSpec, Hint, HintUse, PriceSource};
use crate::grid::{fmt_utc, GridSeries, Quantity};

/// A run's cost by term [currency].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CostTerms {
    /// Facility energy × electricity price [currency].
    pub electricity: f64,
    /// Tonnes CO2e × carbon price [currency].
    pub carbon: f64,
    /// GPU-hours held × compute-hour tax [currency].
    pub tax: f64,
    /// Facility kWh × levy [currency].
    pub levy: f64,
}

impl CostTerms {
    /// The sum of the terms [currency].
    pub fn total(&self) -> f64 {
        self.electricity + self.carbon + self.tax + self.levy
    }

    fn add(&mut self, o: &CostTerms) {
        self.electricity += o.electricity;
        self.carbon += o.carbon;
        self.tax += o.tax;
        self.levy += o.levy;
    }
}

/// What one grid interval of a run used, as the run metered it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IntervalUse {
    /// Index of the interval in the grid series.
    pub index: usize,
    /// Facility energy [J].
    pub facility_j: f64,
    /// Emissions [kg CO2e].
    pub co2_kg: f64,
    /// Electricity cost as metered (facility energy × the interval's price) [currency].
    pub electricity: f64,
    /// GPU-seconds held by the job (GPUs × seconds held) [GPU·s].
    pub gpu_held_s: f64,
}

/// The `[cost]` table on the run's grid intervals.
#[derive(Debug, Clone, PartialEq)]
pub struct CostInputs {
    /// Carbon price per interval [currency/t CO2e]; `None`: no carbon price.
    pub carbon_price_per_t: Option<Vec<f64>>,
    /// Tax per GPU-hour held [currency/GPU-h].
    pub compute_hour_tax: f64,
    /// Levy per kWh of facility energy [currency/kWh].
    pub levy_per_kwh: f64,
    /// The planner's carbon-intensity forecast per interval [gCO2e/kWh], if the scenario gives one.
    pub forecast_ci: Option<Vec<f64>>,
    /// The grid's hint in force per interval, and how the planner uses them.
    pub hints: Option<(Vec<Option<Hint>>, HintUse)>,
}

impl CostInputs {
    /// Read every series of `spec` onto the intervals of `grid`. An electricity price series or fixed
    /// price replaces the grid's price (a note on the series says so); without one the grid must have
    /// a price.
    pub fn load(spec: &CostSpec, grid: &mut GridSeries) -> Result<CostInputs, CostError> {
        match &spec.electricity {
            Some(PriceSource::Fixed(p)) => {
                grid.price_per_mwh = Some(vec![*p; grid.len()]);
                grid.notes.push(format!(
                    "electricity price {p} per MWh (cost.electricity_price_per_mwh)"
                ));
            }
            Some(PriceSource::Series(f)) => {
                let v = series::on_grid(f, Quantity::Price, grid, "electricity_price_per_mwh")?;
                grid.price_per_mwh = Some(v);
                grid.notes.push(format!(
                    "electricity price from {} (cost.electricity_price_per_mwh)",
                    f.path.display()
                ));
            }
            None if grid.price_per_mwh.is_none() => return Err(CostError::NoElectricityPrice),
            None => {}
        }
        let carbon_price_per_t = match &spec.carbon_price_per_t {
            None => None,
            Some(PriceSource::Fixed(p)) => Some(vec![*p; grid.len()]),
            Some(PriceSource::Series(f)) => {
                let v = series::on_grid(f, Quantity::Price, grid, "carbon_price_per_t")?;
                // The loader's price range allows negative prices (electricity markets have them); a
                // carbon price is a charge on emissions and cannot be.
                if let Some(i) = v.iter().position(|p| *p < 0.0) {
                    return Err(CostError::OutOfRange {
                        what: "carbon_price_per_t",
                        path: f.path.clone(),
                        value: v[i],
                        at_utc: fmt_utc(grid.interval_start_utc_s(i)),
                        valid: "a price per tonne CO2e ≥ 0",
                    });
                }
                Some(v)
            }
        };
        let forecast_ci = match &spec.forecast {
            Some(f) => Some(series::on_grid(f, Quantity::Intensity, grid, "forecast")?),
            None => None,
        };
        let hints = match &spec.hints {
            Some(h) => Some((hints::on_grid(h, grid)?, h.use_as)),
            None => None,
        };
        Ok(CostInputs {
            carbon_price_per_t,
            compute_hour_tax: spec.compute_hour_tax,
            levy_per_kwh: spec.levy_per_kwh,
            forecast_ci,
            hints,
        })
    }

    /// The energy-proportional cost of each interval per MWh of facility energy [currency/MWh]:
    /// electricity price + levy + carbon price × intensity `ci` [gCO2e/kWh = kg/MWh]. The planner's
    /// `cost` objective weighs intervals by it (× PUE); the compute-hour tax, proportional to time
    /// held rather than energy, is the planner's per-mode fixed cost ([`Self::tax_per_gpu_s`]).
    pub fn all_in_price(&self, price_per_mwh: &[f64], ci: &[f64]) -> Vec<f64> {
        price_per_mwh
            .iter()
            .zip(ci)
            .enumerate()
            .map(|(i, (p, c))| {
                let carbon = self
                    .carbon_price_per_t
                    .as_ref()
                    .map_or(0.0, |cp| cp[i] * c / 1000.0);
                p + self.levy_per_kwh * 1000.0 + carbon
            })
            .collect()
    }

    /// The compute-hour tax per GPU-second [currency/(GPU·s)].
    pub fn tax_per_gpu_s(&self) -> f64 {
        self.compute_hour_tax / 3600.0
    }

    /// The cost terms of a run from what each of its intervals used: each term is the interval's
    /// quantity × the interval's rate, summed over intervals, so the terms add up to the total.
    pub fn charge(&self, intervals: impl IntoIterator<Item = IntervalUse>) -> CostTerms {
        let mut total = CostTerms::default();
        for u in intervals {
            let cp = self
                .carbon_price_per_t
                .as_ref()
                .and_then(|v| v.get(u.index))
                .copied()
                .unwrap_or(0.0);
            total.add(&CostTerms {
                electricity: u.electricity,
                carbon: u.co2_kg / 1000.0 * cp,
                tax: u.gpu_held_s * self.tax_per_gpu_s(),
                levy: u.facility_j / 3.6e6 * self.levy_per_kwh,
            });
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs() -> CostInputs {
        CostInputs {
            carbon_price_per_t: Some(vec![80.0, 100.0]),
            compute_hour_tax: 0.5,
            levy_per_kwh: 0.02,
            forecast_ci: None,
            hints: None,
        }
    }

    #[test]
    fn each_term_is_its_quantity_times_its_rate_and_they_add_to_the_total() {
        let use_of = |index, kwh: f64, co2_kg, eur, gpu_h: f64| IntervalUse {
            index,
            facility_j: kwh * 3.6e6,
            co2_kg,
            electricity: eur,
            gpu_held_s: gpu_h * 3600.0,
        };
        let t = inputs().charge([
            use_of(0, 1000.0, 200.0, 120.0, 64.0),
            use_of(1, 500.0, 50.0, 40.0, 64.0),
        ]);
        assert!((t.electricity - 160.0).abs() < 1e-9);
        // 0.2 t × 80 + 0.05 t × 100.
        assert!((t.carbon - 21.0).abs() < 1e-9);
        assert!((t.tax - 128.0 * 0.5).abs() < 1e-9);
        assert!((t.levy - 1500.0 * 0.02).abs() < 1e-9);
        assert_eq!(t.total(), t.electricity + t.carbon + t.tax + t.levy);
    }

    #[test]
    fn the_all_in_price_adds_levy_and_carbon_per_mwh() {
        // 300 g/kWh = 0.3 t/MWh at 80 per t = 24 per MWh; levy 0.02 per kWh = 20 per MWh.
        let p = inputs().all_in_price(&[50.0, 50.0], &[300.0, 0.0]);
        assert!((p[0] - (50.0 + 20.0 + 24.0)).abs() < 1e-9);
        assert!((p[1] - 70.0).abs() < 1e-9);
    }
}
