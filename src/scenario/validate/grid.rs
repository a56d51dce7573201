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
                let format = c.format.unwrap_or(GridFormat::Generic);
                let generic = format == GridFormat::Generic;
                // The generic format needs its column description; the others ignore it.
                fn need<T: Clone + Default>(
                    v: &Validator<'_>,
                    generic: bool,
                    key: &str,
                    x: &Option<T>,
                ) -> Result<T, ScenarioError> {
                    match (x, generic) {
                        (Some(x), _) => Ok(x.clone()),
                        (None, true) => Err(v.loc.invalid(
                            &format!("grid.csv.{key}"),
                            format!("the generic CSV format needs `{key}`"),
                        )),
                        (None, false) => Ok(T::default()),
                    }
                }
                let need_s = |key: &str, x: &Option<String>| need(self, generic, key, x);
                let stamp = need(self, generic, "stamp", &c.stamp)?;
                let ci_kind = need(self, generic, "ci_kind", &c.ci_kind)?;
                if c.max_gap_intervals < 0 {
                    return Err(self.loc.invalid(
                        "grid.csv.max_gap_intervals",
                        format!("must be ≥ 0, got {}", c.max_gap_intervals),
                    ));
                }
                let time_zone = need_s("time_zone", &c.time_zone)?;
                if generic && time_zone.parse::<chrono_tz::Tz>().is_err() && time_zone != "UTC" {
                    return Err(self.loc.invalid("grid.csv.time_zone", format!("`{time_zone}` is not an IANA time zone (e.g. UTC, America/Los_Angeles, Europe/London)")));
                }
                if let Some(z) = &c.local_time_zone {
                    if z.parse::<chrono_tz::Tz>().is_err() && z != "UTC" {
                        return Err(self.loc.invalid(
                            "grid.csv.local_time_zone",
                            format!("`{z}` is not an IANA time zone (e.g. Europe/Berlin)"),
                        ));
                    }
                }
                if c.unit.is_some() && !matches!(format, GridFormat::Generic | GridFormat::WattTime)
                {
                    return Err(self.loc.invalid(
                        "grid.csv.unit",
                        format!(
                            "the {} format fixes its own units; `unit` applies to the generic and watttime formats",
                            format.name()
                        ),
                    ));
                }
                let columns = if generic {
                    Some(g::CsvColumns {
                        time_column: need_s("time_column", &c.time_column)?,
                        time_zone,
                        stamp,
                        ci_column: need_s("ci_column", &c.ci_column)?,
                        ci_kind,
                        load_column: c.load_column.clone(),
                        price_column: c.price_column.clone(),
                    })
                } else {
                    None
                };
                GridSource::File(Box::new(g::GridFile {
                    path: self.path(&c.path),
                    format,
                    local_time_zone: c.local_time_zone.clone(),
                    max_gap_intervals: c.max_gap_intervals as u32,
                    columns,
                    ci_signal: c.ci_signal.clone(),
                    wrap_years: c.wrap_years,
                    unit: c.unit,
                    allow_out_of_range: c.allow_out_of_range.unwrap_or(false),
                }))
            }
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
}
