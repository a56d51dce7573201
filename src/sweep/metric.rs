//! The figure a sweep ranks points by (its running best per strategy), and the `sweep.csv` column it reads.

/// The figure a sweep reports the running best of (the lowest value per strategy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// CO2e [kg].
    Co2,
    /// Facility energy [kWh].
    Energy,
    /// Wall-clock time [h].
    Time,
    /// Electricity cost.
    Cost,
    /// Estimated final loss.
    Loss,
}

impl Metric {
    /// Every metric: name, `sweep.csv` column.
    pub const ALL: [(Metric, &'static str, &'static str); 5] = [
        (Metric::Co2, "co2", "co2_kg"),
        (Metric::Energy, "energy", "energy_facility_kwh"),
        (Metric::Time, "time", "wall_clock_h"),
        (Metric::Cost, "cost", "cost"),
        (Metric::Loss, "loss", "estimated_loss"),
    ];

    fn entry(self) -> (Metric, &'static str, &'static str) {
        Self::ALL
            .into_iter()
            .find(|(m, _, _)| *m == self)
            .unwrap_or(Self::ALL[0])
    }

    /// Short name (`co2`, `energy`, `time`, `cost`, `loss`).
    pub fn name(self) -> &'static str {
        self.entry().1
    }

    /// The `sweep.csv` column it reads.
    pub fn column(self) -> &'static str {
        self.entry().2
    }
}
