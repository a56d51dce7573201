//! EIA-930 BALANCE read plan: every fuel column of every vintage (2018 H2 on), tiers, the dc-rl extracts.
//!
//! Fuel columns are `Net Generation (MW) from <fuel>` in three tiers: raw, `(Imputed)` and
//! `(Adjusted)`. The mix is taken from one tier for the whole file — Adjusted if any Adjusted fuel
//! column has values for the authority, else Imputed, else raw — so a fuel is never counted twice.
//! Vintages (column names checked against PUDL's `column_maps/balance.csv` and real headers, see
//! tests/fixtures/grid/SOURCES.md):
//! - 2018 H2 – 2024 H1: Coal, Natural Gas, Nuclear, All Petroleum Products, Hydropower and Pumped
//!   Storage, Solar, Wind, Other Fuel Sources, Unknown Fuel Sources (raw tier only);
//! - 2024 H2 on: Hydropower Excluding Pumped Storage, Pumped Storage, Solar / Wind without and with
//!   Integrated Battery Storage, Battery Storage, Other Energy Storage, Unknown Energy Storage,
//!   Geothermal, Other Fuel Sources, Unknown Fuel Sources, with EIA's own spellings
//!   (`Solar witho Integrated Battery Storage (Adjusted)`, two spaces in `Pumped Storage  (Adjusted)`).
//!
//! Storage columns (pumped storage, batteries, other/unknown storage) are left out of the mix: a
//! store returns energy generated earlier, whose emissions were counted in the hour it was
//! generated (the load report says so). A fuel column this table does not know is an error naming
//! the column and the file — never silently dropped.

use super::super::error::GridError;
use super::super::presets::eia_zone;
use super::super::series::CiKind;
use super::super::spec::GridFile;
use super::super::stamps::StampStyle;
use super::super::table::ColumnReq;
use super::super::time::parse_time_zone;
use super::plans::{has, norm, quoted, table, Plan};
use crate::grid::bounds::Quantity;

/// How a fuel enters the mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FuelUse {
    /// Weighted by the factor of this key in [`super::IPCC_FACTORS_G_PER_KWH`].
    Factor(&'static str),
    /// Storage discharge: left out of the mix (counted when generated).
    Storage,
}

/// Every fuel EIA-930 BALANCE files name after `Net Generation (MW) from ` (lower case, spaces
/// collapsed), with its use in the mix.
const EIA930_FUELS: [(&str, FuelUse); 19] = [
    ("coal", FuelUse::Factor("coal")),
    ("natural gas", FuelUse::Factor("gas")),
    ("nuclear", FuelUse::Factor("nuclear")),
    ("all petroleum products", FuelUse::Factor("oil")),
    // Until 2024 H1 hydro and pumped storage are one column; pumped storage is the smaller part.
    ("hydropower and pumped storage", FuelUse::Factor("hydro")),
    (
        "hydropower excluding pumped storage",
        FuelUse::Factor("hydro"),
    ),
    ("pumped storage", FuelUse::Storage),
    ("solar", FuelUse::Factor("solar")),
    (
        "solar without integrated battery storage",
        FuelUse::Factor("solar"),
    ),
    (
        "solar with integrated battery storage",
        FuelUse::Factor("solar"),
    ),
    // EIA's misspelling in the (Adjusted) tier from 2024 H2 on.
    (
        "solar witho integrated battery storage",
        FuelUse::Factor("solar"),
    ),
    ("wind", FuelUse::Factor("wind")),
    (
        "wind without integrated battery storage",
        FuelUse::Factor("wind"),
    ),
    (
        "wind with integrated battery storage",
        FuelUse::Factor("wind"),
    ),
    ("battery storage", FuelUse::Storage),
    ("other energy storage", FuelUse::Storage),
    ("unknown energy storage", FuelUse::Storage),
    ("geothermal", FuelUse::Factor("geothermal")),
    ("other fuel sources", FuelUse::Factor("other")),
];

/// `Unknown Fuel Sources`: EIA's own residual; weighted as "other" (700 g/kWh).
const UNKNOWN_FUEL: &str = "unknown fuel sources";

const PREFIX: &str = "net generation (mw) from ";

/// Tier of a fuel column: 0 Adjusted, 1 Imputed, 2 raw (preference order), and the fuel name.
fn tier_and_fuel(normalized: &str) -> Option<(u8, &str)> {
    let rest = normalized.strip_prefix(PREFIX)?;
    Some(if let Some(f) = rest.strip_suffix("(adjusted)") {
        (0, f.trim())
    } else if let Some(f) = rest.strip_suffix("(imputed)") {
        (1, f.trim())
    } else {
        (2, rest.trim())
    })
}

fn fuel_use(fuel: &str) -> Option<FuelUse> {
    if fuel == UNKNOWN_FUEL {
        return Some(FuelUse::Factor("other"));
    }
    EIA930_FUELS
        .iter()
        .find(|(f, _)| *f == fuel)
        .map(|(_, u)| *u)
}

/// dc-rl EIA extract fuel columns and their factor keys (PROVENANCE.md).
const DCRL_FUELS: [(&str, &str); 8] = [
    ("WND", "wind"),
    ("SUN", "solar"),
    ("WAT", "hydro"),
    ("OIL", "oil"),
    ("NG", "gas"),
    ("COL", "coal"),
    ("NUC", "nuclear"),
    ("OTH", "other"),
];

pub(super) fn detect_eia(headers: &[String]) -> bool {
    (has(headers, "balancing authority")
        && (has(headers, "utc time at end of hour") || has(headers, "local time at end of hour")))
        || (has(headers, "timestamp") && has(headers, "avg_ci"))
}

pub(super) fn plan_eia(
    file: &GridFile,
    headers: &[String],
    region: &str,
) -> Result<Plan, GridError> {
    let path = file.path.as_path();
    let mut region = region.trim().to_uppercase();
    if region.is_empty() && has(headers, "avg_ci") {
        // dc-rl extracts are one file per authority, named after it (us_eia_2022/CISO.csv).
        region = path
            .file_stem()
            .map(|s| s.to_string_lossy().to_uppercase())
            .unwrap_or_default();
    }
    let tz = match (&file.local_time_zone, eia_zone(&region)) {
        (Some(z), _) => parse_time_zone(z, &path.display().to_string())?,
        (None, Some(z)) => parse_time_zone(z, &path.display().to_string())?,
        (None, None) => {
            return Err(GridError::InvalidArgument {
                what: "local_time_zone",
                value: format!("(none) for region '{region}' in {}", path.display()),
                valid: "an IANA zone for the balancing authority (built in: CISO, ERCO, PJM, MISO, NYIS, BPAT)",
            })
        }
    };
    if has(headers, "avg_ci") {
        // dc-rl extract: timestamps with offsets, interval start.
        let mut plan = Plan::new(
            file,
            table(path, "timestamp", StampStyle::Iso, tz.name(), false),
            tz,
        );
        let slot = plan.push(ColumnReq::required("avg_CI", Quantity::Intensity));
        plan.ci.push((slot, "avg_CI".into(), CiKind::Average));
        for (col, key) in DCRL_FUELS {
            let slot = plan.push(ColumnReq::optional(col, Quantity::Generation));
            plan.mix.push((slot, key, 0));
        }
        let sum = format!("sum:{}", DCRL_FUELS.map(|(c, _)| c).join("+"));
        plan.load = Some(plan.push(ColumnReq::required(&sum, Quantity::Load)));
        return Ok(plan);
    }
    if has(headers, "directly interconnected balancing authority") {
        return Err(GridError::InvalidArgument {
            what: "EIA-930 file",
            value: format!(
                "{} is an INTERCHANGE file (one row per neighbouring authority, no generation by fuel)",
                path.display()
            ),
            valid: "the BALANCE file of the same half-year (EIA930_BALANCE_YYYY_Jan_Jun.csv or _Jul_Dec.csv), which has demand and generation by fuel",
        });
    }
    if region.is_empty() {
        return Err(GridError::InvalidArgument {
            what: "region",
            value: format!("(empty) for {}", path.display()),
            valid: "the balancing authority code to select from the 'Balancing Authority' column, e.g. 'CISO'",
        });
    }
    let mut plan = Plan::new(
        file,
        table(
            path,
            "UTC Time at End of Hour",
            StampStyle::UsSlash12h,
            "UTC",
            true,
        ),
        tz,
    );
    plan.table.thousands_separator = true;
    plan.table.row_filter = Some(("Balancing Authority".into(), vec![region]));
    let demand = if has(headers, "demand (mw) (adjusted)") {
        "Demand (MW) (Adjusted)"
    } else {
        "Demand (MW)"
    };
    plan.load = Some(plan.push(ColumnReq::required(demand, Quantity::Load)));
    let mut storage = Vec::new();
    for h in headers {
        let n = norm(h);
        let Some((tier, fuel)) = tier_and_fuel(&n) else {
            continue;
        };
        match fuel_use(fuel) {
            Some(FuelUse::Factor(key)) => {
                let slot = plan.push(ColumnReq::optional(h, Quantity::Generation));
                plan.mix.push((slot, key, tier));
            }
            Some(FuelUse::Storage) => storage.push(h.trim().to_string()),
            None => {
                return Err(GridError::UnknownFuel {
                    path: path.to_path_buf(),
                    column: h.clone(),
                    valid: EIA930_FUELS
                        .iter()
                        .map(|(f, _)| *f)
                        .chain([UNKNOWN_FUEL])
                        .collect::<Vec<_>>()
                        .join(", "),
                })
            }
        }
    }
    if plan.mix.is_empty() {
        return Err(GridError::UnknownColumn {
            path: path.to_path_buf(),
            column: "Net Generation (MW) from <fuel>".into(),
            role: "generation column",
            available: quoted(headers),
        });
    }
    plan.mix_tier_names = ["(Adjusted)", "(Imputed)", "raw"];
    if !storage.is_empty() {
        plan.notes.push(format!(
            "storage columns left out of the intensity mix (a store returns energy counted when it was generated): {}",
            storage.join(", ")
        ));
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header_of(name: &str) -> Vec<String> {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/grid")
            .join(name);
        match super::super::super::table::read_headers(&p) {
            Ok(h) => h,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn every_fuel_column_of_both_vintages_is_known() {
        for (file, fuel_columns) in [
            ("eia930_balance_2018h2_2024h1_header_reconstructed.csv", 25),
            ("eia930_balance_2024h2_header_reconstructed.csv", 48),
        ] {
            let h = header_of(file);
            let fuels: Vec<&String> = h.iter().filter(|c| norm(c).starts_with(PREFIX)).collect();
            assert_eq!(fuels.len(), fuel_columns, "{file}");
            for c in fuels {
                let n = norm(c);
                let (_, fuel) = tier_and_fuel(&n).unwrap_or((9, ""));
                assert!(fuel_use(fuel).is_some(), "{file}: '{c}' is not mapped");
            }
        }
        // EIA's spellings: the typo and the double space.
        assert_eq!(
            tier_and_fuel(&norm(
                "Net Generation (MW) from Solar witho Integrated Battery Storage (Adjusted)"
            ))
            .map(|(t, f)| (t, fuel_use(f))),
            Some((0, Some(FuelUse::Factor("solar"))))
        );
        assert_eq!(
            tier_and_fuel(&norm("Net Generation (MW) from Pumped Storage  (Adjusted)"))
                .map(|(t, f)| (t, fuel_use(f))),
            Some((0, Some(FuelUse::Storage)))
        );
    }
}
