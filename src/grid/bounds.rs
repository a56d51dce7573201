//! Plausible ranges of grid values (intensity, price, load, generation) and the units an intensity column may be written in.
//!
//! A grid file whose value lies outside its quantity's range is an error naming the file, line,
//! column and the range with its reason: such a value is nearly always a unit mix-up (lbs/MWh read
//! as g/kWh, kW read as MW) or a corrupt cell, and it would otherwise flow silently into CO2 and cost.
//! `grid.csv.allow_out_of_range = true` accepts a deliberate outlier; even then a value beyond
//! [`HARD_LIMIT`] is refused, so no `inf` or `NaN` can reach a result from a grid file.

use std::fmt;

/// Magnitude no grid value may exceed even with `allow_out_of_range`: far beyond any real value,
/// and small enough that energy × value summed over a run stays a finite `f64` (≈ 1e308).
pub const HARD_LIMIT: f64 = 1e12;

/// What a value column holds, which sets its plausible range and its role in messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quantity {
    /// Carbon intensity, gCO2eq/kWh (after unit conversion).
    Intensity,
    /// Grid load (demand or total generation), MW.
    Load,
    /// Electricity price, currency per MWh.
    Price,
    /// Net generation of one fuel, MW (negative while pumping or charging).
    Generation,
}

/// A plausible range and the reason for it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bounds {
    /// Lowest plausible value (inclusive), in `unit`.
    pub lo: f64,
    /// Highest plausible value (inclusive), in `unit`.
    pub hi: f64,
    /// Unit of `lo` and `hi`.
    pub unit: &'static str,
    /// Why these bounds (with the source of the figures).
    pub why: &'static str,
}

impl Quantity {
    /// Its role as printed in messages ("ci column", ...).
    pub fn role(self) -> &'static str {
        match self {
            Quantity::Intensity => "ci column",
            Quantity::Load => "load column",
            Quantity::Price => "price column",
            Quantity::Generation => "generation column",
        }
    }

    /// Its plausible range.
    pub fn bounds(self) -> Bounds {
        match self {
            // IPCC SRREN (2011) Annex II, Table A.II.4: the highest published life-cycle estimate of
            // any generation technology is coal at 1,689 gCO2eq/kWh (median 1,001). Marginal rates
            // are those of the same fossil plants (WattTime co2_moer rarely exceeds 2,000 lbs/MWh ≈
            // 907 g/kWh). Above 2,000 the column is almost surely in another unit.
            Quantity::Intensity => Bounds {
                lo: 0.0,
                hi: 2000.0,
                unit: "gCO2eq/kWh",
                why: "no generation technology emits more than ~1,700 gCO2eq/kWh over its life cycle (coal, IPCC SRREN 2011 Annex II); a larger value is usually another unit (lbs/MWh? set grid.csv.unit)",
            },
            // SDAC day-ahead harmonised limits −500 / +4,000 EUR/MWh, SIDC intraday ±9,999 EUR/MWh
            // (ENTSO-E/NEMO Committee HMMCP methodology), ERCOT offer cap $5,000/MWh, Australian NEM
            // floor −1,000 AUD/MWh. The NEM cap (17,500 AUD/MWh in 2024–25) is above this: override.
            Quantity::Price => Bounds {
                lo: -1000.0,
                hi: 10000.0,
                unit: "currency/MWh",
                why: "wholesale markets clear between about −1,000 and +10,000 per MWh (EU intraday limits ±9,999 EUR/MWh, ERCOT cap $5,000/MWh, NEM floor −1,000 AUD/MWh); a larger value is usually per kWh ×1000 or a corrupt cell",
            },
            // World installed generating capacity is about 9 TW (IEA, World Energy Outlook 2023);
            // no grid's load or one fuel's output can exceed it.
            Quantity::Load => Bounds {
                lo: 0.0,
                hi: 1e7,
                unit: "MW",
                why: "load is not negative and no grid exceeds the world's ~9 TW of generating capacity (IEA WEO 2023); a larger value is usually kW read as MW",
            },
            Quantity::Generation => Bounds {
                lo: -1e7,
                hi: 1e7,
                unit: "MW",
                why: "no fuel's output exceeds the world's ~9 TW of generating capacity (IEA WEO 2023); a larger value is usually kW read as MW",
            },
        }
    }
}

impl fmt::Display for Bounds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ..= {} {} ({})",
            self.lo, self.hi, self.unit, self.why
        )
    }
}

/// The unit an intensity column is written in (`grid.csv.unit`); values are converted to gCO2eq/kWh.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CiUnit {
    /// Grams CO2eq per kWh (Electricity Maps, most research data sets).
    #[default]
    GPerKwh,
    /// Kilograms per MWh: numerically equal to g/kWh.
    KgPerMwh,
    /// Pounds per MWh (WattTime, US EPA eGRID).
    LbsPerMwh,
    /// Tonnes per MWh (emission factors in some national inventories).
    TPerMwh,
}

/// (unit, canonical name, other accepted spellings)
const UNITS: [(CiUnit, &str, &[&str]); 4] = [
    (
        CiUnit::GPerKwh,
        "g/kWh",
        &["gco2/kwh", "gco2eq/kwh", "g_co2_per_kwh"],
    ),
    (CiUnit::KgPerMwh, "kg/MWh", &["kgco2/mwh", "kg_co2_per_mwh"]),
    (
        CiUnit::LbsPerMwh,
        "lbs/MWh",
        &["lb/mwh", "lbs_co2_per_mwh", "lbsco2/mwh"],
    ),
    (CiUnit::TPerMwh, "t/MWh", &["tco2/mwh", "t_co2_per_mwh"]),
];

impl CiUnit {
    /// Canonical name ("g/kWh", "kg/MWh", "lbs/MWh", "t/MWh").
    pub fn name(self) -> &'static str {
        UNITS
            .iter()
            .find(|(u, _, _)| *u == self)
            .map_or("g/kWh", |(_, n, _)| n)
    }

    /// Multiplier from this unit to gCO2eq/kWh. 1 lb = 0.45359237 kg exactly (International Yard
    /// and Pound Agreement, 1959), so 1 lb/MWh = 453.59237 g / 1000 kWh = 0.45359237 g/kWh.
    pub fn to_g_per_kwh(self) -> f64 {
        match self {
            CiUnit::GPerKwh | CiUnit::KgPerMwh => 1.0,
            CiUnit::LbsPerMwh => 0.453_592_37,
            CiUnit::TPerMwh => 1000.0,
        }
    }

    /// The unit called `name` (case-insensitive, spaces ignored), or `None`.
    pub fn from_name(name: &str) -> Option<CiUnit> {
        let n: String = name
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_lowercase();
        UNITS
            .iter()
            .find(|(_, canon, alt)| canon.to_lowercase() == n || alt.contains(&n.as_str()))
            .map(|(u, _, _)| *u)
    }

    /// The canonical names, for messages.
    pub fn names() -> String {
        UNITS
            .iter()
            .map(|(_, n, _)| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl<'de> serde::Deserialize<'de> for CiUnit {
    /// Reads a unit name; an unknown one lists the valid names.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        CiUnit::from_name(&name).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown intensity unit `{name}`, expected one of {}",
                CiUnit::names()
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_names_round_trip_and_convert() {
        for (u, n, alts) in UNITS {
            assert_eq!(CiUnit::from_name(n), Some(u));
            assert_eq!(u.name(), n);
            for a in alts {
                assert_eq!(CiUnit::from_name(a), Some(u), "{a}");
            }
        }
        assert_eq!(CiUnit::from_name(" LBS / MWh "), Some(CiUnit::LbsPerMwh));
        assert_eq!(CiUnit::from_name("lbs/kWh"), None);
        // 1000 lbs/MWh = 453.59237 g/kWh; 0.4 t/MWh = 400 g/kWh.
        assert!((1000.0 * CiUnit::LbsPerMwh.to_g_per_kwh() - 453.592_37).abs() < 1e-9);
        assert_eq!(0.4 * CiUnit::TPerMwh.to_g_per_kwh(), 400.0);
    }

    #[test]
    fn bounds_contain_real_values_and_exclude_unit_mixups() {
        let ci = Quantity::Intensity.bounds();
        // Lignite-heavy hours in Poland (~1,000) are in; 29,630 (a reported fuzz input) is out.
        assert!(ci.lo <= 0.0 && 1000.0 <= ci.hi && 29_630.0 > ci.hi);
        let p = Quantity::Price.bounds();
        assert!(p.lo <= -500.0 && 4000.0 <= p.hi);
        assert!(Quantity::Load.bounds().lo == 0.0);
        assert!(HARD_LIMIT > ci.hi && HARD_LIMIT * HARD_LIMIT * 1e9 < f64::MAX);
    }
}
