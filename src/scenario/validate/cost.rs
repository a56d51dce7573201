//! Validation of `[cost]`: electricity and carbon prices (fixed or series), compute-hour tax, levy, forecast and grid hints.

use super::super::raw::*;
use super::super::*;
use super::Validator;
use crate::cost::{CostSpec, HintsSpec, PriceSource, ValueCsv};

/// What a series table must hold, for messages.
const SERIES_KEYS: &str = "a table with path, time_column, value_column, time_zone, stamp (\"start\" | \"end\") and optionally max_gap_intervals, wrap_years";

/// The highest carbon price accepted [currency/t CO2e]: far above any carbon tax or allowance price
/// (EU ETS peaked near 100 EUR/t in 2023; Sweden's tax ~1,200 SEK ≈ 110 EUR/t, World Bank "State and
/// Trends of Carbon Pricing 2024") and the US EPA's 2023 social cost of carbon ($190/t at a 2 %
/// discount rate); a larger value is usually a price per kg.
const MAX_CARBON_PRICE: f64 = 10_000.0;

/// The highest levy accepted [currency/kWh]: taxes and levies on electricity are cents per kWh
/// (Germany's, among Europe's highest, ~0.10 EUR/kWh for non-household users, Eurostat nrg_pc_205 2023);
/// a value above 10 is usually a levy per MWh.
const MAX_LEVY_PER_KWH: f64 = 10.0;

impl Validator<'_> {
    pub(super) fn cost(
        &self,
        c: &RawCost,
        circadian: Option<&CircadianSpec>,
    ) -> Result<CostSpec, ScenarioError> {
        let planner = |key: &str| -> Result<(), ScenarioError> {
            match circadian {
                None => Err(self.loc.invalid(key, "is read by the circadian planner, and this scenario has no [strategy.circadian]; add strategy \"circadian\" or remove it")),
                Some(c) if !c.optimal => Err(self.loc.invalid(key, "is read by the planner of policy = \"optimal\"; set strategy.circadian.policy = \"optimal\" or remove it")),
                Some(_) => Ok(()),
            }
        };
        self.cost_with(c, &planner)
    }

    /// `[cost]` (or a `[[site]]`'s `[site.cost]`), `planner` checking that a key the planner reads
    /// (forecast, hints) has a planner to read it.
    pub(super) fn cost_with(
        &self,
        c: &RawCost,
        planner: &dyn Fn(&str) -> Result<(), ScenarioError>,
    ) -> Result<CostSpec, ScenarioError> {
        let price_hi = crate::grid::Quantity::Price.bounds().hi;
        let electricity = match &c.electricity_price_per_mwh {
            None => None,
            Some(v) => Some(self.price(
                "cost.electricity_price_per_mwh",
                v,
                (-price_hi, price_hi),
                "currency per MWh, as wholesale markets clear (about −1,000 to +10,000)",
            )?),
        };
        let carbon_price_per_t = match &c.carbon_price_per_t {
            None => None,
            Some(v) => Some(self.price(
                "cost.carbon_price_per_t",
                v,
                (0.0, MAX_CARBON_PRICE),
                "currency per tonne CO2e, from 0 to 10,000 (a larger value is usually per kg)",
            )?),
        };
        let non_negative = |key: &str, v: Option<f64>, max: f64, why: &str| match v {
            None => Ok(0.0),
            Some(x) if x.is_finite() && (0.0..=max).contains(&x) => Ok(x),
            Some(x) => Err(self
                .loc
                .invalid(key, format!("must be from 0 to {max} {why}, got {x}"))),
        };
        let compute_hour_tax = non_negative(
            "cost.compute_hour_tax",
            c.compute_hour_tax,
            f64::MAX,
            "(currency per GPU-hour held)",
        )?;
        let levy_per_kwh = non_negative(
            "cost.levy_per_kwh",
            c.levy_per_kwh,
            MAX_LEVY_PER_KWH,
            "currency per kWh of facility energy (a larger value is usually per MWh)",
        )?;
        let forecast = match &c.forecast {
            None => None,
            Some(f) => {
                planner("cost.forecast")?;
                Some(self.value_csv("cost.forecast", f)?)
            }
        };
        let hints = match &c.hints {
            None => None,
            Some(h) => {
                planner("cost.hints")?;
                self.zone("cost.hints.time_zone", &h.time_zone)?;
                for (key, v) in [
                    ("time_column", &h.time_column),
                    ("hint_column", &h.hint_column),
                ] {
                    if v.trim().is_empty() {
                        return Err(self.loc.invalid(
                            &format!("cost.hints.{key}"),
                            "must name a column of the hints file",
                        ));
                    }
                }
                Some(HintsSpec {
                    path: self.path(&h.path),
                    time_column: h.time_column.clone(),
                    hint_column: h.hint_column.clone(),
                    time_zone: h.time_zone.clone(),
                    use_as: h.use_as,
                })
            }
        };
        Ok(CostSpec {
            electricity,
            carbon_price_per_t,
            compute_hour_tax,
            levy_per_kwh,
            forecast,
            hints,
        })
    }

    /// A price key: a number within `range`, or a series table.
    fn price(
        &self,
        key: &str,
        v: &toml::Value,
        range: (f64, f64),
        valid: &str,
    ) -> Result<PriceSource, ScenarioError> {
        let number = match v {
            toml::Value::Float(x) => Some(*x),
            toml::Value::Integer(i) => Some(*i as f64),
            _ => None,
        };
        match (number, v) {
            (Some(x), _) if x.is_finite() && (range.0..=range.1).contains(&x) => {
                Ok(PriceSource::Fixed(x))
            }
            (Some(x), _) => Err(self
                .loc
                .invalid(key, format!("{x} is out of range: give {valid}"))),
            (None, toml::Value::Table(_)) => {
                let raw: RawValueCsv = v.clone().try_into().map_err(|e| {
                    self.loc.invalid(
                        key,
                        format!("{}; a series is {SERIES_KEYS}", e.to_string().trim()),
                    )
                })?;
                Ok(PriceSource::Series(self.value_csv(key, &raw)?))
            }
            (None, _) => Err(self
                .loc
                .invalid(key, format!("must be a number ({valid}) or {SERIES_KEYS}"))),
        }
    }

    fn value_csv(&self, key: &str, f: &RawValueCsv) -> Result<ValueCsv, ScenarioError> {
        self.zone(&format!("{key}.time_zone"), &f.time_zone)?;
        for (k, v) in [
            ("time_column", &f.time_column),
            ("value_column", &f.value_column),
        ] {
            if v.trim().is_empty() {
                return Err(self
                    .loc
                    .invalid(&format!("{key}.{k}"), "must name a column of the file"));
            }
        }
        let max_gap_intervals = match f.max_gap_intervals {
            None => 0,
            Some(g) if (0..=u32::MAX as i64).contains(&g) => g as u32,
            Some(g) => {
                return Err(self.loc.invalid(
                    &format!("{key}.max_gap_intervals"),
                    format!("must be an integer ≥ 0 (missing intervals interpolated), got {g}"),
                ))
            }
        };
        Ok(ValueCsv {
            path: self.path(&f.path),
            time_column: f.time_column.clone(),
            value_column: f.value_column.clone(),
            time_zone: f.time_zone.clone(),
            stamp: f.stamp,
            max_gap_intervals,
            wrap_years: f.wrap_years.unwrap_or(false),
        })
    }

    fn zone(&self, key: &str, z: &str) -> Result<(), ScenarioError> {
        if z.trim().eq_ignore_ascii_case("utc") || z.trim().parse::<chrono_tz::Tz>().is_ok() {
            return Ok(());
        }
        Err(self.loc.invalid(
            key,
            format!(
                "`{z}` is not an IANA time zone (e.g. UTC, Europe/London, America/Los_Angeles)"
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use crate::cost::{HintUse, PriceSource};
    use crate::scenario::{parse_scenario, Scenario, DEFAULT_SCENARIO};
    use std::path::Path;

    fn with_cost(table: &str) -> Result<Scenario, String> {
        let text = format!("{DEFAULT_SCENARIO}\n[cost]\n{table}\n");
        parse_scenario("c.toml", &text, Path::new(".")).map_err(|e| e.to_string())
    }

    /// The error of `table`, checked to name the file, a line and `key`, and to contain `says`.
    fn refused(table: &str, key: &str, says: &str) {
        let e = match with_cost(table) {
            Ok(_) => panic!("accepted: {table}"),
            Err(e) => e,
        };
        assert!(e.contains("c.toml:"), "no file:line in {e}");
        assert!(e.contains(key), "`{key}` not named in {e}");
        assert!(e.contains(says), "`{says}` not in {e}");
    }

    const SERIES: &str = "path = \"p.csv\", time_column = \"t\", value_column = \"v\", time_zone = \"UTC\", stamp = \"start\"";

    #[test]
    fn fixed_prices_a_tax_and_a_levy_are_read() {
        let s = with_cost("carbon_price_per_t = 85\ncompute_hour_tax = 0.25\nlevy_per_kwh = 0.02\nelectricity_price_per_mwh = 90.5").unwrap();
        let c = s.cost.unwrap();
        assert_eq!(c.carbon_price_per_t, Some(PriceSource::Fixed(85.0)));
        assert_eq!(c.electricity, Some(PriceSource::Fixed(90.5)));
        assert_eq!((c.compute_hour_tax, c.levy_per_kwh), (0.25, 0.02));
        // Left out: nothing charged.
        let c = with_cost("").unwrap().cost.unwrap();
        assert_eq!((c.carbon_price_per_t, c.compute_hour_tax), (None, 0.0));
    }

    #[test]
    fn a_series_table_is_read_as_a_series() {
        let s = with_cost(&format!("carbon_price_per_t = {{ {SERIES} }}")).unwrap();
        match s.cost.unwrap().carbon_price_per_t {
            Some(PriceSource::Series(f)) => {
                assert_eq!((f.value_column.as_str(), f.wrap_years), ("v", false))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_negative_carbon_price_is_refused() {
        refused(
            "carbon_price_per_t = -5",
            "cost.carbon_price_per_t",
            "out of range",
        );
    }

    #[test]
    fn a_carbon_price_per_kg_is_refused() {
        refused(
            "carbon_price_per_t = 85000",
            "cost.carbon_price_per_t",
            "per kg",
        );
    }

    #[test]
    fn an_electricity_price_out_of_market_range_is_refused() {
        refused(
            "electricity_price_per_mwh = 50000",
            "cost.electricity_price_per_mwh",
            "wholesale",
        );
    }

    #[test]
    fn a_price_of_another_type_is_refused() {
        refused(
            "carbon_price_per_t = \"85\"",
            "cost.carbon_price_per_t",
            "must be a number",
        );
    }

    #[test]
    fn a_series_table_without_its_keys_is_refused() {
        refused(
            "carbon_price_per_t = { path = \"p.csv\" }",
            "cost.carbon_price_per_t",
            "time_column",
        );
    }

    #[test]
    fn a_series_with_a_bad_zone_is_refused() {
        refused(
            &format!(
                "electricity_price_per_mwh = {{ {} }}",
                SERIES.replace("\"UTC\"", "\"Mars/Base\"")
            ),
            "cost.electricity_price_per_mwh.time_zone",
            "IANA",
        );
    }

    #[test]
    fn a_series_with_an_empty_column_is_refused() {
        refused(
            &format!(
                "electricity_price_per_mwh = {{ {} }}",
                SERIES.replace("value_column = \"v\"", "value_column = \" \"")
            ),
            "cost.electricity_price_per_mwh.value_column",
            "must name a column",
        );
    }

    #[test]
    fn a_negative_gap_allowance_is_refused() {
        refused(
            &format!("carbon_price_per_t = {{ {SERIES}, max_gap_intervals = -1 }}"),
            "cost.carbon_price_per_t.max_gap_intervals",
            "≥ 0",
        );
    }

    #[test]
    fn a_negative_tax_is_refused() {
        refused("compute_hour_tax = -1.0", "cost.compute_hour_tax", "from 0");
    }

    #[test]
    fn a_levy_per_mwh_is_refused() {
        refused("levy_per_kwh = 20.0", "cost.levy_per_kwh", "per MWh");
    }

    #[test]
    fn an_unknown_key_is_refused() {
        let e = with_cost("carbon_tax = 5").unwrap_err();
        assert!(e.contains("carbon_tax") && e.contains("c.toml"), "{e}");
    }

    #[test]
    fn hints_need_the_optimal_planner() {
        let text = DEFAULT_SCENARIO.replace(
            "policy = \"optimal\"",
            "policy = \"threshold\"\nfull_share = 0.3\npause_share = 0.3",
        );
        assert_ne!(text, DEFAULT_SCENARIO);
        let text = format!("{text}\n[cost.hints]\npath = \"h.csv\"\ntime_column = \"t\"\nhint_column = \"h\"\ntime_zone = \"UTC\"\nuse = \"advice\"\n");
        let e = parse_scenario("c.toml", &text, Path::new("."))
            .unwrap_err()
            .to_string();
        assert!(e.contains("c.toml:") && e.contains("cost.hints"), "{e}");
        assert!(e.contains("policy = \"optimal\""), "{e}");
    }

    /// The default scenario (policy "optimal") with `cost`.
    fn optimal_with(cost: &str) -> Result<Scenario, String> {
        with_cost(cost)
    }

    #[test]
    fn hints_with_the_optimal_planner_are_read_and_a_bad_use_is_refused() {
        let h = "[cost.hints]\npath = \"h.csv\"\ntime_column = \"t\"\nhint_column = \"h\"\ntime_zone = \"Europe/London\"\n";
        let s = optimal_with(&format!("{h}use = \"constraint\"")).unwrap();
        assert_eq!(s.cost.unwrap().hints.unwrap().use_as, HintUse::Constraint);
        let e = optimal_with(&format!("{h}use = \"maybe\"")).unwrap_err();
        assert!(e.contains("constraint") && e.contains("advice"), "{e}");
        let e = optimal_with(&format!(
            "{}use = \"advice\"",
            h.replace("Europe/London", "Nowhere")
        ))
        .unwrap_err();
        assert!(e.contains("cost.hints.time_zone"), "{e}");
        let e =
            optimal_with(&format!("{}use = \"advice\"", h.replace("\"h\"", "\"\""))).unwrap_err();
        assert!(e.contains("cost.hints.hint_column"), "{e}");
    }

    #[test]
    fn a_forecast_without_a_circadian_strategy_is_refused() {
        let text = DEFAULT_SCENARIO.replace(
            "strategies = [\"dense\", \"moe\", \"circadian\"]",
            "strategies = [\"dense\", \"moe\"]",
        );
        assert_ne!(text, DEFAULT_SCENARIO);
        let text = format!("{text}\n[cost.forecast]\n{}\n", SERIES.replace(", ", "\n"));
        let e = parse_scenario("c.toml", &text, Path::new("."))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("cost.forecast") && e.contains("no [strategy.circadian]"),
            "{e}"
        );
    }
}
