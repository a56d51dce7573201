//! The embedded profile's marginal factors reach a run: the default scenario reports CO2 under both signals.

use chrono::{Datelike, TimeZone, Timelike};
use moesim::grid::region_profile;
use moesim::report::summary_rows;
use moesim::scenario::{parse_scenario, DEFAULT_SCENARIO};
use moesim::simulate;
use std::path::Path;

#[test]
fn a_run_on_the_gb_profile_prices_its_energy_at_the_profiles_marginal_factors() {
    // The default scenario cut to one strategy and a small job (the accounting is the same).
    let text = DEFAULT_SCENARIO
        .replacen(
            "strategies = [\"dense\", \"moe\", \"circadian\"]",
            "strategies = [\"moe\", \"circadian\"]",
            1,
        )
        .replacen("tokens = 1.2e11", "tokens = 1e10", 1);
    let sc = parse_scenario("p.toml", &text, Path::new(".")).unwrap_or_else(|e| panic!("{e}"));
    let res = simulate(&sc).unwrap_or_else(|e| panic!("{e}"));
    let p = region_profile("GB").unwrap_or_else(|e| panic!("{e}"));
    let tab = p
        .mef_g_per_kwh
        .unwrap_or_else(|| panic!("GB profile without mef_g_per_kwh"));
    let rows = summary_rows(&res);
    for (r, row) in res.strategies.iter().zip(&rows) {
        // Energy of each timeline row × the factor of its local (London) month and hour, by hand.
        let want: f64 = r
            .outcome
            .timeline
            .iter()
            .map(|t| {
                let local = chrono::Utc
                    .timestamp_opt(t.start_utc_s, 0)
                    .single()
                    .unwrap_or_else(|| panic!("bad stamp {}", t.start_utc_s))
                    .with_timezone(&p.tz);
                let f = tab[local.month0() as usize][local.hour() as usize];
                t.totals.facility_j / 3.6e6 * f / 1000.0
            })
            .sum();
        assert!(want > 0.0);
        assert!(
            (row.co2_marginal_kg - want).abs() <= 1e-9 * want,
            "{}: co2_marginal_kg {} vs energy × profile factors {want}",
            row.strategy,
            row.co2_marginal_kg
        );
    }
    let table = moesim::report::table(&res);
    assert!(
        table.contains("under marginal carbon") && table.contains("profile-mef"),
        "{table}"
    );
    assert!(!table.contains("average 'profile' only"), "{table}");
}

#[test]
fn the_planner_may_follow_the_profiles_marginal_signal_where_the_region_has_one() {
    let with_signal = |region: &str| {
        let text = DEFAULT_SCENARIO
            .replacen("region = \"GB\"", &format!("region = \"{region}\""), 1)
            .replacen(
                "objective = \"co2\"\n",
                "objective = \"co2\"\nsignal = \"marginal\"\n",
                1,
            );
        parse_scenario("p.toml", &text, Path::new("."))
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    assert_eq!(with_signal("GB"), Ok(()));
    // DE has no generation by fuel, so no marginal factors: refused, naming the key.
    let e = with_signal("DE");
    assert!(
        e.as_ref()
            .is_err_and(|m| m.contains("signal") && m.contains("[grid.marginal]")),
        "{e:?}"
    );
}
