//! Hourly marginal emission factors estimated from generation by fuel (Siler-Evans et al. 2012 regression by month × local hour).
//!
//! Method: K. Siler-Evans, I. L. Azevedo, M. G. Morgan, "Marginal emissions factors for the U.S.
//! electricity system", Environ. Sci. Technol. 46(9):4742–4748 (2012). The paper regresses the
//! hour-to-hour change in fossil CO2 emissions on the hour-to-hour change in fossil generation,
//!
//! ```text
//!     ΔE_t = α + β · ΔG_t + ε_t,      ΔE_t = E_t − E_{t−1},  ΔG_t = G_t − G_{t−1}
//! ```
//!
//! and reads the slope β as the marginal emissions factor (MEF, kg/MWh = g/kWh); it fits the
//! regression separately for subsets of hours to study how the MEF changes with time of day, month
//! and system load. The paper took E from the EPA's CEMS stack measurements; the EIA-930 files have
//! generation by fuel only, so here E_t = Σ_fossil G_f,t × EF_f with the fuel factors of
//! [`super::IPCC_FACTORS_G_PER_KWH`] (the same factors as the `ipcc-mix` average signal, so the average
//! and marginal series of a file stand on one basis) and G_t = Σ_fossil G_f,t over coal, gas and
//! oil (the paper's fossil units). The fit is made for every (local month, local hour) bin of the data.
//!
//! Degenerate bins are never filled silently: a bin with fewer than `min_changes` changes, with no
//! variation in fossil generation, or whose slope lies outside [0, the dirtiest fossil factor] (a
//! slope no mix of the fossil fuels could give: two fuels moving in opposite directions) takes the
//! slope pooled over its month (all hours), else over the whole year; [`MefEstimate::bins`] says
//! which for each bin and [`MefEstimate::notes`] counts them for the report. If even the pooled fit
//! fails, the estimate is an error.

use chrono_tz::Tz;

use super::error::GridError;
use super::format::IPCC_FACTORS_G_PER_KWH;
use super::series::{CiKind, CiSignal, GridSeries};

/// Fuel keys counted as fossil (the generators CEMS measures in Siler-Evans et al. 2012).
pub const FOSSIL_FUELS: [&str; 3] = ["coal", "gas", "oil"];

/// Fewest hour-to-hour changes a bin needs for its own slope: a choice of this model (not from the
/// paper): with fewer than ten points a single outlier hour can move the slope across the fuel range.
pub const DEFAULT_MIN_CHANGES: usize = 10;

/// Name of the estimated marginal signal in a series.
pub const MEF_SIGNAL: &str = "mef-siler-evans";

/// Net generation of one fuel over the intervals of a grid file [MW].
#[derive(Debug, Clone, PartialEq)]
pub struct FuelGeneration {
    /// Fuel key of [`super::IPCC_FACTORS_G_PER_KWH`] (`coal`, `gas`, `oil`, `nuclear`, ...).
    pub fuel: &'static str,
    /// Emission factor used for it [gCO2eq/kWh = kg/MWh].
    pub factor_g_per_kwh: f64,
    /// Mean net generation per interval [MW].
    pub mw: Vec<f64>,
}

/// Where a bin's slope came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinFit {
    /// Fitted on the bin's own changes.
    Own,
    /// The bin could not be fitted; the slope pooled over its month (all local hours).
    Month,
    /// Neither the bin nor its month could be fitted; the slope pooled over all the data.
    Year,
}

/// The fit of one (local month, local hour) bin.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MefBin {
    /// Local month, 1–12.
    pub month: u32,
    /// Local hour, 0–23.
    pub hour: u32,
    /// Hour-to-hour changes in the bin.
    pub changes: usize,
    /// Marginal emission factor used for the bin [kg/MWh = g/kWh].
    pub mef_g_per_kwh: f64,
    /// Whether the slope is the bin's own or a pooled fallback.
    pub fit: BinFit,
}

/// Marginal emission factors of a series, per bin and per interval.
#[derive(Debug, Clone, PartialEq)]
pub struct MefEstimate {
    /// One per (month, hour), month-major: index (month − 1) × 24 + hour.
    pub bins: Vec<MefBin>,
    /// The factor of each interval of the input (its bin's) [g/kWh].
    pub g_per_kwh: Vec<f64>,
    /// What a reader of the results should know (fallback counts, fuels used).
    pub notes: Vec<String>,
}

impl MefEstimate {
    /// The estimate as a marginal intensity signal named [`MEF_SIGNAL`].
    pub fn signal(&self) -> CiSignal {
        CiSignal {
            name: MEF_SIGNAL.into(),
            kind: CiKind::Marginal,
            g_per_kwh: self.g_per_kwh.clone(),
        }
    }
}

/// Sums of one least-squares fit y = α + β x.
#[derive(Debug, Clone, Copy, Default)]
struct Sums {
    n: usize,
    x: f64,
    y: f64,
    xx: f64,
    xy: f64,
}

impl Sums {
    fn add(&mut self, x: f64, y: f64) {
        self.n += 1;
        self.x += x;
        self.y += y;
        self.xx += x * x;
        self.xy += x * y;
    }

    fn merge(&mut self, o: &Sums) {
        self.n += o.n;
        self.x += o.x;
        self.y += o.y;
        self.xx += o.xx;
        self.xy += o.xy;
    }

    /// Closed-form OLS slope with intercept, or why it cannot be had: too few points, no
    /// variation in x (relative to `scale_x`, the size of x's level), or a slope outside `range`.
    fn slope(&self, min_n: usize, scale_x: f64, range: (f64, f64)) -> Result<f64, &'static str> {
        if self.n < min_n.max(2) {
            return Err("too few changes");
        }
        let n = self.n as f64;
        let sxx = self.xx - self.x * self.x / n;
        let sxy = self.xy - self.x * self.y / n;
        // Variance of ΔG below (1e-9 of the generation level)² is rounding, not variation (a NaN
        // variance counts as none).
        let var = sxx / n;
        if var.is_nan() || var <= (1e-9 * scale_x.max(1.0)).powi(2) {
            return Err("no variation in fossil generation");
        }
        let b = sxy / sxx;
        if !b.is_finite() || b < range.0 || b > range.1 {
            return Err("slope outside the fossil factors' range");
        }
        Ok(b)
    }
}

/// Marginal emission factors of the intervals starting at `start_utc_s`, `interval_s` apart, in local
/// zone `tz`, from generation by fuel (each `mw` as long as the others): the regression of the module
/// docs per (local month, local hour) bin, with pooled fallbacks flagged per bin. An error if the
/// fuels include no fossil fuel with values, the series is shorter than two intervals, or even the
/// regression pooled over all the data cannot be fitted.
pub fn estimate_mef(
    source_name: &str,
    start_utc_s: i64,
    interval_s: i64,
    tz: Tz,
    fuels: &[FuelGeneration],
    min_changes: usize,
) -> Result<MefEstimate, GridError> {
    let fail = |why: String| GridError::MarginalEstimate {
        source_name: source_name.to_string(),
        why,
    };
    let fossil: Vec<&FuelGeneration> = fuels
        .iter()
        .filter(|f| FOSSIL_FUELS.contains(&f.fuel))
        .collect();
    if fossil.is_empty() {
        let have: Vec<&str> = fuels.iter().map(|f| f.fuel).collect();
        return Err(fail(format!(
            "no fossil generation column (needs one of {}; the file has {})",
            FOSSIL_FUELS.join(", "),
            if have.is_empty() {
                "no generation by fuel".to_string()
            } else {
                have.join(", ")
            }
        )));
    }
    let n = fossil[0].mw.len();
    if fossil.iter().any(|f| f.mw.len() != n) {
        return Err(fail("fuel columns of different lengths".into()));
    }
    if n < 2 {
        return Err(fail(format!(
            "{n} interval(s); the regression needs hour-to-hour changes"
        )));
    }
    // Negative net generation (a plant's own use) is not an emission: counted as zero, as in the mix.
    let emissions_kg = |i: usize| -> f64 {
        fossil
            .iter()
            .map(|f| f.mw[i].max(0.0) * f.factor_g_per_kwh)
            .sum()
    };
    let generation_mw = |i: usize| -> f64 { fossil.iter().map(|f| f.mw[i].max(0.0)).sum() };
    let max_factor = fossil
        .iter()
        .map(|f| f.factor_g_per_kwh)
        .fold(0.0, f64::max);
    // A slope at a fuel's factor is exact for that fuel on the margin: allow rounding past the ends.
    let range = (-1e-9 * max_factor, max_factor * (1.0 + 1e-9));
    let series = GridSeries {
        region: String::new(),
        tz,
        start_utc_s,
        interval_s,
        ci_g_per_kwh: vec![0.0; n],
        ci_kind: CiKind::Marginal,
        ci_name: String::new(),
        ci_alt: Vec::new(),
        load_mw: None,
        price_per_mwh: None,
        source: source_name.to_string(),
        notes: Vec::new(),
    };
    let bin_of = |i: usize| ((series.local_month(i) - 1) * 24 + series.local_hour(i)) as usize;
    let mut sums = vec![Sums::default(); 12 * 24];
    let mut level = 0.0;
    // E and G in MW × h per interval scale alike, so the slope is per MWh whatever the interval.
    let (mut e_prev, mut g_prev) = (emissions_kg(0), generation_mw(0));
    for i in 1..n {
        let (e, g) = (emissions_kg(i), generation_mw(i));
        sums[bin_of(i)].add(g - g_prev, e - e_prev);
        level += g;
        (e_prev, g_prev) = (e, g);
    }
    let scale = level / (n - 1) as f64;
    let mut year = Sums::default();
    sums.iter().for_each(|s| year.merge(s));
    let year_slope = year.slope(min_changes, scale, range).map_err(|why| {
        fail(format!(
            "even pooled over all {} changes the regression cannot be fitted: {why}",
            year.n
        ))
    })?;
    let mut bins = Vec::with_capacity(12 * 24);
    let mut counts = [0usize; 3];
    let mut present = 0;
    for month in 1..=12u32 {
        let days = &sums[(month as usize - 1) * 24..month as usize * 24];
        let mut pooled = Sums::default();
        days.iter().for_each(|s| pooled.merge(s));
        let month_slope = pooled.slope(min_changes, scale, range);
        for (hour, s) in days.iter().enumerate() {
            let (mef, fit) = match (s.slope(min_changes, scale, range), month_slope) {
                (Ok(b), _) => (b, BinFit::Own),
                (Err(_), Ok(b)) => (b, BinFit::Month),
                (Err(_), Err(_)) => (year_slope, BinFit::Year),
            };
            if s.n > 0 {
                present += 1;
                counts[fit as usize] += 1;
            }
            bins.push(MefBin {
                month,
                hour: hour as u32,
                changes: s.n,
                mef_g_per_kwh: mef,
                fit,
            });
        }
    }
    // Interval 0 has no change of its own; it takes its bin's factor like any other.
    let g_per_kwh: Vec<f64> = (0..n).map(|i| bins[bin_of(i)].mef_g_per_kwh).collect();
    let fuels_used: Vec<&str> = fossil.iter().map(|f| f.fuel).collect();
    let mut notes = vec![format!(
        "marginal intensity '{MEF_SIGNAL}': Siler-Evans et al. 2012 regression of hour-to-hour changes in fossil CO2 on changes in fossil generation ({}; IPCC factors), fitted per local month × hour: {} of {present} bins with data fitted on their own (at least {min_changes} changes)",
        fuels_used.join(", "),
        counts[BinFit::Own as usize]
    )];
    if counts[BinFit::Month as usize] + counts[BinFit::Year as usize] > 0 {
        notes.push(format!(
            "marginal intensity '{MEF_SIGNAL}': {} bin(s) use their month's pooled slope and {} the whole data's ({year_slope:.0} g/kWh) because they had too few changes, no fossil variation, or a slope outside 0..={max_factor:.0} g/kWh",
            counts[BinFit::Month as usize],
            counts[BinFit::Year as usize]
        ));
    }
    Ok(MefEstimate {
        bins,
        g_per_kwh,
        notes,
    })
}

/// The fuel factor of `fuel` in [`IPCC_FACTORS_G_PER_KWH`] (`None` for a key not in the table).
pub fn fuel_factor(fuel: &str) -> Option<f64> {
    IPCC_FACTORS_G_PER_KWH
        .iter()
        .find(|(k, _)| *k == fuel)
        .map(|(_, f)| *f)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T2022: i64 = 1_640_995_200; // 2022-01-01T00:00Z
    const UTC: Tz = chrono_tz::UTC;

    fn fuel(fuel: &'static str, mw: Vec<f64>) -> FuelGeneration {
        FuelGeneration {
            fuel,
            factor_g_per_kwh: fuel_factor(fuel).unwrap_or(f64::NAN),
            mw,
        }
    }

    /// A deterministic pseudo-random sequence in [0, 1) (a linear congruential generator), so the
    /// synthetic series has varied changes without a dependency on the RNG crates' streams.
    fn lcg(n: usize, seed: u64) -> Vec<f64> {
        let mut x = seed;
        (0..n)
            .map(|_| {
                x = x
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                (x >> 11) as f64 / (1u64 << 53) as f64
            })
            .collect()
    }

    #[test]
    fn a_known_marginal_mix_is_recovered_in_every_bin() {
        // A year, hourly. Coal is constant (base load); in hours 0–11 UTC gas follows the load, in
        // hours 12–23 oil follows it, so the true MEF is 469 (gas) and 840 (oil) in those hours.
        // Nuclear and wind wander independently and must not enter.
        let n = 365 * 24;
        let r = lcg(n, 7);
        let w = lcg(n, 11);
        let (mut gas, mut oil) = (vec![0.0; n], vec![0.0; n]);
        let (mut g, mut o) = (3000.0, 500.0);
        for i in 0..n {
            if i % 24 < 12 {
                g = 3000.0 + 1500.0 * r[i];
            } else {
                o = 300.0 + 500.0 * r[i];
            }
            gas[i] = g;
            oil[i] = o;
        }
        let fuels = vec![
            fuel("coal", vec![2000.0; n]),
            fuel("gas", gas),
            fuel("oil", oil),
            fuel("nuclear", w.iter().map(|x| 2000.0 + 100.0 * x).collect()),
            fuel("wind", w.iter().map(|x| 4000.0 * x).collect()),
        ];
        let m = estimate_mef("synthetic", T2022, 3600, UTC, &fuels, DEFAULT_MIN_CHANGES);
        let m = m.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(m.bins.len(), 288);
        for b in &m.bins {
            // Each change moves one fuel only (gas in hours 0–11, oil in 12–23), so every bin is exact.
            let want = if b.hour < 12 { 469.0 } else { 840.0 };
            // Exact data: the slope is recovered to rounding (1e-6 g/kWh).
            assert!(
                (b.mef_g_per_kwh - want).abs() < 1e-6 && b.fit == BinFit::Own,
                "{b:?}"
            );
        }
        assert_eq!(m.g_per_kwh.len(), n);
        assert!((m.g_per_kwh[24 * 40 + 5] - 469.0).abs() < 1e-6);
        assert!((m.g_per_kwh[24 * 200 + 20] - 840.0).abs() < 1e-6);
        assert_eq!(m.signal().kind, CiKind::Marginal);
    }

    #[test]
    fn noisy_emissions_recover_the_slope_within_its_standard_error() {
        // Gas on the margin with scatter from an independent small plant: every month × hour
        // slope (about 30 changes each) stays within 5 % of 469.
        let n = 365 * 24;
        let r = lcg(n, 3);
        let noise = lcg(n, 5);
        let mut g = 3000.0;
        let gas: Vec<f64> = r
            .iter()
            .map(|x| {
                g = (g + (x - 0.5) * 600.0).clamp(500.0, 9000.0);
                g
            })
            .collect();
        // Emissions are built from the fuel columns, so the noise is a small independent "coal" plant
        // (0–20 MW): it scatters ΔE and moves the expected slope by only ~1 g/kWh
        // (469 + 532 × var(Δcoal) / var(ΔG) ≈ 470), well inside the 5 % tolerance.
        let coal: Vec<f64> = noise.iter().map(|x| 20.0 * x).collect();
        let fuels = vec![fuel("gas", gas), fuel("coal", coal)];
        let m = estimate_mef("noisy", T2022, 3600, UTC, &fuels, DEFAULT_MIN_CHANGES);
        let m = m.unwrap_or_else(|e| panic!("{e}"));
        for b in &m.bins {
            assert!(
                (b.mef_g_per_kwh - 469.0).abs() < 0.05 * 469.0,
                "{b:?} far from 469"
            );
        }
    }

    #[test]
    fn a_bin_without_fossil_variation_falls_back_and_is_flagged() {
        // Gas moves except at 03:00 UTC, when it repeats the hour before exactly.
        let n = 31 * 24;
        let r = lcg(n, 9);
        let mut g = 3000.0;
        let gas: Vec<f64> = (0..n)
            .map(|i| {
                if i % 24 != 3 {
                    g += (r[i] - 0.5) * 400.0;
                }
                g
            })
            .collect();
        let fuels = vec![fuel("gas", gas)];
        let m = estimate_mef("flat-at-3", T2022, 3600, UTC, &fuels, DEFAULT_MIN_CHANGES);
        let m = m.unwrap_or_else(|e| panic!("{e}"));
        let b3 = m.bins[3];
        assert_eq!(b3.fit, BinFit::Month, "{b3:?}");
        assert!((b3.mef_g_per_kwh - 469.0).abs() < 1e-6);
        assert!(m.bins[4].fit == BinFit::Own);
        // February onward has no data: those bins take the whole data's slope, and are flagged.
        assert_eq!(m.bins[24 * 5].fit, BinFit::Year);
        assert!(
            m.notes
                .iter()
                .any(|s| s.contains("1 bin(s) use their month's pooled slope")),
            "{:?}",
            m.notes
        );
    }

    #[test]
    fn no_fossil_variation_at_all_is_an_error_naming_the_source() {
        let n = 48;
        let fuels = vec![
            fuel("gas", vec![3000.0; n]),
            fuel("wind", lcg(n, 1).iter().map(|x| 1000.0 * x).collect()),
        ];
        let e = estimate_mef("flat.csv", T2022, 3600, UTC, &fuels, 2)
            .map(|_| ())
            .map_err(|e| e.to_string());
        assert!(
            e.as_ref()
                .is_err_and(|m| m.contains("flat.csv") && m.contains("no variation")),
            "{e:?}"
        );
        let e = estimate_mef(
            "nofossil.csv",
            T2022,
            3600,
            UTC,
            &[fuel("wind", vec![1.0; 4])],
            2,
        )
        .map(|_| ())
        .map_err(|e| e.to_string());
        assert!(
            e.as_ref().is_err_and(|m| m.contains("nofossil.csv")
                && m.contains("coal, gas, oil")
                && m.contains("wind")),
            "{e:?}"
        );
    }

    #[test]
    fn bins_follow_local_time() {
        // In Los Angeles, 2022-01-01T08:00Z is local midnight: bin (1, 0).
        let tz: Tz = "America/Los_Angeles".parse().unwrap_or(UTC);
        let n = 24 * 60;
        let r = lcg(n, 4);
        let mut g = 3000.0;
        let gas = r
            .iter()
            .map(|x| {
                g += (x - 0.5) * 300.0;
                g
            })
            .collect();
        let m = estimate_mef("la", T2022, 3600, tz, &[fuel("gas", gas)], 10);
        let m = m.unwrap_or_else(|e| panic!("{e}"));
        // The first interval is 2021-12-31 16:00 PST: December, hour 16.
        assert_eq!(m.bins[11 * 24 + 16].changes, 0);
        assert!(m.bins[8].changes >= 28, "{:?}", m.bins[8]);
    }
}
