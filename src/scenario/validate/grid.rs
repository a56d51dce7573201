//! Validation of `[grid]` and `[grid.csv]`: the region's profile or a grid file and how to read it.

use super::super::raw::*;
use super::super::*;
use super::Validator;
use crate::grid::{self as g, GridFormat, SourceKind};

impl Validator<'_> {
    pub(super) fn grid(&self, g: &RawGrid) -> Result<GridSpec, ScenarioError> {
        let price_hi = g::Quantity::Price.bounds().hi;
        let price_per_mwh = match g.price_per_mwh {
            Some(p) if p.is_finite() && (0.0..=price_hi).contains(&p) => Some(p),
            Some(p) => {
                return Err(self.loc.invalid(
                    "grid.price_per_mwh",
                    format!(
                        "must be between 0 and {price_hi} per MWh, got {p}: {}",
                        g::Quantity::Price.bounds().why
                    ),
                ))
            }
            None => None,
        };
        let interval_s = match g.interval_minutes {
            Some(m) if m > 0 && 1440 % m == 0 => m * 60,
            Some(m) => {
                return Err(self.loc.invalid(
                    "grid.interval_minutes",
                    format!("must divide a day (e.g. 15, 30, 60), got {m}"),
                ))
            }
            None => 3600,
        };
        let source = match g.source {
            SourceKind::Profile => {
                let regions = g::profile_regions();
                if !regions.iter().any(|r| *r == g.region) {
                    return Err(self.loc.invalid(
                        "grid.region",
                        format!(
                            "no embedded profile for `{}`; valid: {}",
                            g.region,
                            regions.join(", ")
                        ),
                    ));
                }
                if g.csv.is_some() {
                    return Err(self.loc.invalid("grid.csv", "grid.source = \"profile\" does not read a CSV; set source = \"csv\" or remove [grid.csv]"));
                }
                GridSource::Profile
            }
            SourceKind::Csv => {
                let c = g.csv.as_ref().ok_or_else(|| self.loc.invalid("grid", "grid.source = \"csv\" needs a [grid.csv] table (path, format, max_gap_intervals, wrap_years; for the generic format also time_column, time_zone, stamp, ci_column, ci_kind)"))?;
                GridSource::File(Box::new(self.grid_file(c, "grid.csv")?))
            }
        };
        let marginal = match &g.marginal {
            Some(m) => Some(self.marginal(m, &source)?),
            None => None,
        };
        let currency = match g.currency.as_deref().map(str::trim) {
            None => None,
            Some(c) if !c.is_empty() && c.len() <= 12 && !c.contains(char::is_control) => {
                Some(c.to_string())
            }
            Some(c) => {
                return Err(self.loc.invalid(
                    "grid.currency",
                    format!("`{c}` is not a currency label; use a short code such as \"EUR\" or \"USD\" (1–12 characters)"),
                ))
            }
        };
        Ok(GridSpec {
            region: g.region.clone(),
            source,
            price_per_mwh,
            interval_s,
            currency,
            marginal,
        })
    }
    /// The grid file described by the `[key]` table (`grid.csv` or `grid.marginal.csv`).
    fn grid_file(&self, c: &RawGridCsv, key: &str) -> Result<g::GridFile, ScenarioError> {
        let k = |f: &str| format!("{key}.{f}");
        let format = c.format.unwrap_or(GridFormat::Generic);
        let generic = format == GridFormat::Generic;
        // The generic format needs its column description; the others ignore it.
        let need = |name: &str, present: bool| -> Result<(), ScenarioError> {
            if generic && !present {
                return Err(self
                    .loc
                    .invalid(&k(name), format!("the generic CSV format needs `{name}`")));
            }
            Ok(())
        };
        need("stamp", c.stamp.is_some())?;
        need("ci_kind", c.ci_kind.is_some())?;
        need("time_zone", c.time_zone.is_some())?;
        need("time_column", c.time_column.is_some())?;
        need("ci_column", c.ci_column.is_some())?;
        if c.max_gap_intervals < 0 {
            return Err(self.loc.invalid(
                &k("max_gap_intervals"),
                format!("must be ≥ 0, got {}", c.max_gap_intervals),
            ));
        }
        let time_zone = c.time_zone.clone().unwrap_or_default();
        if generic && time_zone.parse::<chrono_tz::Tz>().is_err() && time_zone != "UTC" {
            return Err(self.loc.invalid(&k("time_zone"), format!("`{time_zone}` is not an IANA time zone (e.g. UTC, America/Los_Angeles, Europe/London)")));
        }
        if let Some(z) = &c.local_time_zone {
            if z.parse::<chrono_tz::Tz>().is_err() && z != "UTC" {
                return Err(self.loc.invalid(
                    &k("local_time_zone"),
                    format!("`{z}` is not an IANA time zone (e.g. Europe/Berlin)"),
                ));
            }
        }
        if c.unit.is_some() && !matches!(format, GridFormat::Generic | GridFormat::WattTime) {
            return Err(self.loc.invalid(
                &k("unit"),
                format!(
                    "the {} format fixes its own units; `unit` applies to the generic and watttime formats",
                    format.name()
                ),
            ));
        }
        let columns = if generic {
            Some(g::CsvColumns {
                time_column: c.time_column.clone().unwrap_or_default(),
                time_zone,
                stamp: c.stamp.unwrap_or_default(),
                ci_column: c.ci_column.clone().unwrap_or_default(),
                ci_kind: c.ci_kind.unwrap_or_default(),
                load_column: c.load_column.clone(),
                price_column: c.price_column.clone(),
            })
        } else {
            None
        };
        Ok(g::GridFile {
            path: self.path(&c.path),
            format,
            local_time_zone: c.local_time_zone.clone(),
            max_gap_intervals: c.max_gap_intervals as u32,
            columns,
            ci_signal: c.ci_signal.clone(),
            wrap_years: c.wrap_years,
            unit: c.unit,
            allow_out_of_range: c.allow_out_of_range.unwrap_or(false),
        })
    }

    /// `[grid.marginal]`: where the marginal intensity series comes from, checked against the grid's source.
    fn marginal(
        &self,
        m: &RawGridMarginal,
        source: &GridSource,
    ) -> Result<g::MarginalSource, ScenarioError> {
        let k = |f: &str| format!("grid.marginal.{f}");
        let file_format = match source {
            GridSource::File(f) => Some(f.format),
            GridSource::Profile => None,
        };
        let unused = |present: bool, key: &str, kind: &str| -> Result<(), ScenarioError> {
            if present {
                return Err(self.loc.invalid(
                    &k(key),
                    format!(
                        "`{key}` does not apply to grid.marginal.source = \"{kind}\"; remove it"
                    ),
                ));
            }
            Ok(())
        };
        Ok(match m.source {
            g::MarginalKind::Estimate => {
                unused(m.signal.is_some(), "signal", "estimate")?;
                unused(m.csv.is_some(), "csv", "estimate")?;
                match file_format {
                    Some(GridFormat::Eia930Balance | GridFormat::EntsoeLegacy) => {}
                    other => {
                        return Err(self.loc.invalid(
                            &k("source"),
                            format!(
                                "\"estimate\" regresses emissions on generation by fuel, which {} has not; use a grid file of format eia930 or entsoe-legacy, or source = \"csv\" with a marginal series",
                                match other {
                                    Some(f) => format!("the {} format", f.name()),
                                    None => "the embedded profile".to_string(),
                                }
                            ),
                        ))
                    }
                }
                let min_changes = match m.min_changes {
                    None => g::DEFAULT_MIN_CHANGES,
                    Some(n) if (2..=10_000).contains(&n) => n as usize,
                    Some(n) => {
                        return Err(self.loc.invalid(
                            &k("min_changes"),
                            format!("must be an integer in 2..=10000 (hour-to-hour changes a month × hour bin needs for its own slope), got {n}"),
                        ))
                    }
                };
                g::MarginalSource::Estimate { min_changes }
            }
            g::MarginalKind::Signal => {
                unused(m.min_changes.is_some(), "min_changes", "signal")?;
                unused(m.csv.is_some(), "csv", "signal")?;
                if file_format.is_none() {
                    return Err(self.loc.invalid(&k("source"), "\"signal\" names a signal of the grid file, and grid.source = \"profile\" reads none; use source = \"csv\" with a [grid.marginal.csv] file"));
                }
                let name = m.signal.as_deref().map(str::trim).unwrap_or("");
                if name.is_empty() {
                    return Err(self.loc.invalid(&k("signal"), "source = \"signal\" needs `signal`, the name of a marginal signal of the grid file (e.g. \"co2_moer\")"));
                }
                g::MarginalSource::Signal(name.to_string())
            }
            g::MarginalKind::Csv => {
                unused(m.min_changes.is_some(), "min_changes", "csv")?;
                unused(m.signal.is_some(), "signal", "csv")?;
                let c = m.csv.as_ref().ok_or_else(|| self.loc.invalid(&k("csv"), "source = \"csv\" needs a [grid.marginal.csv] table (the same keys as [grid.csv])"))?;
                let f = self.grid_file(c, "grid.marginal.csv")?;
                if c.ci_kind == Some(g::CiKind::Average) {
                    return Err(self.loc.invalid("grid.marginal.csv.ci_kind", "the marginal file's intensity column must be marginal: ci_kind = \"marginal\""));
                }
                g::MarginalSource::File(Box::new(f))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::{parse_scenario, DEFAULT_SCENARIO};
    use std::path::Path;

    /// The embedded scenario with its `[grid]` table replaced by `grid`; the error text, if any.
    fn with_grid(grid: &str) -> Result<crate::scenario::Scenario, String> {
        // The default's own currency line goes with the table it belongs to.
        let text = DEFAULT_SCENARIO
            .replacen("currency = \"GBP\"\n", "", 1)
            .replace(
                "[grid]\nregion = \"GB\"\nsource = \"profile\"\nprice_per_mwh = 120.0",
                grid,
            );
        assert_ne!(text, DEFAULT_SCENARIO, "the [grid] table was not found");
        parse_scenario("s.toml", &text, Path::new(".")).map_err(|e| e.to_string())
    }

    const CSV: &str = "[grid]\nregion = \"CISO\"\nsource = \"csv\"\n[grid.csv]\npath = \"g.csv\"\nmax_gap_intervals = 0\nwrap_years = false\n";

    #[test]
    fn the_currency_label_is_kept_and_a_bad_one_names_the_key() {
        let base = "[grid]\nregion = \"GB\"\nsource = \"profile\"\nprice_per_mwh = 120.0";
        let s = with_grid(&format!("{base}\ncurrency = \"GBP\"")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.grid.currency.as_deref(), Some("GBP"));
        let s = with_grid(base).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.grid.currency, None);
        let e = with_grid(&format!("{base}\ncurrency = \"\""))
            .err()
            .unwrap_or_default();
        assert!(e.contains("grid.currency") && e.contains("EUR"), "{e}");
    }

    #[test]
    fn unit_and_override_keys_are_read_for_watttime_and_generic() {
        let s = with_grid(&format!(
            "{CSV}format = \"watttime\"\nunit = \"lbs/MWh\"\nallow_out_of_range = true\n"
        ));
        let s = s.unwrap_or_else(|e| panic!("{e}"));
        let crate::grid::GridSource::File(f) = &s.grid.source else {
            panic!("not a file source")
        };
        assert_eq!(
            (f.unit, f.allow_out_of_range),
            (Some(crate::grid::CiUnit::LbsPerMwh), true)
        );
    }

    #[test]
    fn a_unit_on_a_format_with_fixed_units_names_the_key() {
        let e = with_grid(&format!(
            "{CSV}format = \"electricitymaps\"\nunit = \"g/kWh\"\n"
        ));
        let e = e.err().unwrap_or_default();
        assert!(
            e.contains("s.toml:") && e.contains("`grid.csv.unit`") && e.contains("electricitymaps"),
            "{e}"
        );
    }

    #[test]
    fn an_unknown_unit_lists_the_valid_units_with_its_line() {
        let e = with_grid(&format!("{CSV}format = \"watttime\"\nunit = \"lbs/kWh\"\n"));
        let e = e.err().unwrap_or_default();
        assert!(
            e.contains("s.toml:") && e.contains("lbs/kWh") && e.contains("`lbs/MWh`"),
            "{e}"
        );
    }

    #[test]
    fn a_flat_price_beyond_the_plausible_range_is_refused() {
        let e = with_grid("[grid]\nregion = \"GB\"\nsource = \"profile\"\nprice_per_mwh = 1e308");
        let e = e.err().unwrap_or_default();
        assert!(
            e.contains("`grid.price_per_mwh`") && e.contains("10000"),
            "{e}"
        );
    }

    const EIA: &str = "[grid]\nregion = \"PJM\"\nsource = \"csv\"\n[grid.csv]\npath = \"PJM.csv\"\nformat = \"eia930\"\nmax_gap_intervals = 24\nwrap_years = false\n";

    #[test]
    fn each_marginal_source_is_read() {
        let s = with_grid(&format!(
            "{EIA}[grid.marginal]\nsource = \"estimate\"\nmin_changes = 12\n"
        ));
        let s = s.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            s.grid.marginal,
            Some(crate::grid::MarginalSource::Estimate { min_changes: 12 })
        );
        let s = with_grid(&format!("{EIA}[grid.marginal]\nsource = \"estimate\"\n"));
        let s = s.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            s.grid.marginal,
            Some(crate::grid::MarginalSource::Estimate {
                min_changes: crate::grid::DEFAULT_MIN_CHANGES
            })
        );
        let s = with_grid(&format!("{CSV}format = \"watttime\"\n[grid.marginal]\nsource = \"signal\"\nsignal = \"co2_moer\"\n"));
        let s = s.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            s.grid.marginal,
            Some(crate::grid::MarginalSource::Signal("co2_moer".into()))
        );
        let s = with_grid("[grid]\nregion = \"GB\"\nsource = \"profile\"\n[grid.marginal]\nsource = \"csv\"\n[grid.marginal.csv]\npath = \"m.csv\"\ntime_column = \"t\"\ntime_zone = \"UTC\"\nstamp = \"start\"\nci_column = \"moer\"\nci_kind = \"marginal\"\nmax_gap_intervals = 0\nwrap_years = true\n");
        let s = s.unwrap_or_else(|e| panic!("{e}"));
        let Some(crate::grid::MarginalSource::File(f)) = &s.grid.marginal else {
            panic!("not a file: {:?}", s.grid.marginal)
        };
        assert!(f.wrap_years && f.path.ends_with("m.csv"));
    }

    #[test]
    fn bad_marginal_keys_name_the_key_its_line_and_the_valid_values() {
        let cases: [(String, &[&str]); 8] = [
            // An unknown source lists the valid ones (serde, with line:column).
            (
                format!("{EIA}[grid.marginal]\nsource = \"watttime\"\n"),
                &["s.toml:", "watttime", "`estimate`", "`signal`", "`csv`"],
            ),
            // Estimating needs generation by fuel: not the embedded profile.
            (
                "[grid]\nregion = \"GB\"\nsource = \"profile\"\n[grid.marginal]\nsource = \"estimate\"\n".into(),
                &["s.toml:", "`grid.marginal.source`", "embedded profile", "eia930"],
            ),
            // ... nor a generic CSV.
            (
                format!("{CSV}time_column = \"t\"\ntime_zone = \"UTC\"\nstamp = \"start\"\nci_column = \"ci\"\nci_kind = \"average\"\n[grid.marginal]\nsource = \"estimate\"\n"),
                &["`grid.marginal.source`", "the generic format"],
            ),
            (
                format!("{EIA}[grid.marginal]\nsource = \"estimate\"\nmin_changes = 1\n"),
                &["`grid.marginal.min_changes`", "2..=10000", "got 1"],
            ),
            (
                format!("{EIA}[grid.marginal]\nsource = \"signal\"\n"),
                &["`grid.marginal.signal`", "co2_moer"],
            ),
            (
                format!("{EIA}[grid.marginal]\nsource = \"estimate\"\nsignal = \"x\"\n"),
                &["`grid.marginal.signal`", "does not apply"],
            ),
            (
                format!("{EIA}[grid.marginal]\nsource = \"csv\"\n"),
                &["`grid.marginal.csv`", "[grid.marginal.csv]"],
            ),
            (
                format!("{EIA}[grid.marginal]\nsource = \"csv\"\n[grid.marginal.csv]\npath = \"m.csv\"\ntime_column = \"t\"\ntime_zone = \"UTC\"\nstamp = \"start\"\nci_column = \"ci\"\nci_kind = \"average\"\nmax_gap_intervals = 0\nwrap_years = false\n"),
                &["`grid.marginal.csv.ci_kind`", "ci_kind = \"marginal\""],
            ),
        ];
        for (grid, wants) in cases {
            let e = with_grid(&grid).err().unwrap_or_default();
            for w in wants {
                assert!(e.contains(w), "missing {w:?} in: {e}");
            }
        }
        // The generic marginal file's own keys are named under grid.marginal.csv.
        let e = with_grid(&format!("{EIA}[grid.marginal]\nsource = \"csv\"\n[grid.marginal.csv]\npath = \"m.csv\"\nmax_gap_intervals = 0\nwrap_years = false\n"))
            .err()
            .unwrap_or_default();
        assert!(e.contains("`grid.marginal.csv.stamp`"), "{e}");
    }

    #[test]
    fn the_planner_signal_is_checked_against_the_objective_and_the_grid() {
        let with = |grid: &str, extra: &str| {
            with_grid(grid).and_then(|_| {
                let text = DEFAULT_SCENARIO
                    .replacen("currency = \"GBP\"\n", "", 1)
                    .replace(
                        "[grid]\nregion = \"GB\"\nsource = \"profile\"\nprice_per_mwh = 120.0",
                        grid,
                    )
                    .replace("objective = \"co2\"\n", extra);
                parse_scenario("s.toml", &text, Path::new(".")).map_err(|e| e.to_string())
            })
        };
        // DE: the one embedded profile without marginal factors (no generation by fuel).
        let profile = "[grid]\nregion = \"DE\"\nsource = \"profile\"\nprice_per_mwh = 120.0";
        // Marginal without a marginal series: refused, naming the key and what is valid.
        let e = with(profile, "objective = \"co2\"\nsignal = \"marginal\"\n")
            .err()
            .unwrap_or_default();
        assert!(
            e.contains("`strategy.circadian.signal`")
                && e.contains("[grid.marginal]")
                && e.contains("\"average\""),
            "{e}"
        );
        // An unknown signal lists the two.
        let e = with(profile, "objective = \"co2\"\nsignal = \"lifecycle\"\n")
            .err()
            .unwrap_or_default();
        assert!(
            e.contains("lifecycle") && e.contains("`average`") && e.contains("`marginal`"),
            "{e}"
        );
        // A signal with another objective.
        let e = with(profile, "objective = \"energy\"\nsignal = \"average\"\n")
            .err()
            .unwrap_or_default();
        assert!(
            e.contains("`strategy.circadian.signal`") && e.contains("objective = \"co2\""),
            "{e}"
        );
        // With an estimated marginal series, marginal is accepted.
        let s = with(
            &format!("{EIA}[grid.marginal]\nsource = \"estimate\"\n"),
            "objective = \"co2\"\nsignal = \"marginal\"\n",
        );
        let s = s.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            s.circadian.as_ref().and_then(|c| c.signal),
            Some(crate::grid::CiKind::Marginal)
        );
    }
}
