//! Tests of the multi-region cost terms, the cost objective, planning on a forecast and the quality
//! cost of geo-distributed synchronisation, on hand-built sites.

use super::exec::execute;
use super::geo;
use super::plan::follow_the_night;
use super::tests::{close, inputs, site, spec_of, DT};
use crate::scenario::sites::SiteObjective;

#[test]
fn each_sites_cost_terms_are_its_quantities_times_its_rates_and_they_sum_to_the_total() {
    // A trains 2 h then the checkpoint moves to B; each site has its own carbon price, levy and tax.
    let mut a = site("A", 1000.0, vec![100.0; 10]);
    a.carbon_price = vec![80.0; 10];
    a.levy_per_kwh = 0.02;
    a.tax_per_gpu_h = 0.5;
    let mut b = site("B", 1000.0, vec![300.0; 10]);
    b.price = vec![30.0; 10];
    b.carbon_price = vec![20.0; 10];
    b.tax_per_gpu_h = 2.0;
    let sites = vec![a, b];
    let spec = spec_of(&sites, 100.0, 0.02, 2.16e-4, 100.0);
    let inp = inputs(sites, 1e12, spec, 1000.0 * 4.0 * DT);
    let r = execute(&inp, &[0, 0, 1, 1, 1, 1, 1, 1, 1, 1], "t").unwrap();
    let tau = 1e12 * 8.0 / 100e9 + 0.02;
    // Site A: 10 kW for 2 h and 1 kW held for τ (PUE 1).
    let kwh_a = (10_000.0 * 2.0 * DT + 1000.0 * tau) / 3.6e6;
    let t = &r.site_terms[0];
    assert!(close(t.electricity, kwh_a / 1000.0 * 50.0));
    assert!(close(t.carbon, kwh_a * 100.0 / 1e6 * 80.0));
    assert!(close(t.levy, kwh_a * 0.02));
    assert!(close(t.tax, 8.0 * (2.0 * DT + tau) / 3600.0 * 0.5));
    let kwh_b = (10_000.0 * 2.0 * DT + 1000.0 * tau) / 3.6e6;
    let t = &r.site_terms[1];
    assert!(close(t.electricity, kwh_b / 1000.0 * 30.0));
    assert!(close(t.carbon, kwh_b * 300.0 / 1e6 * 20.0));
    assert_eq!(t.levy, 0.0);
    assert!(close(t.tax, 8.0 * (2.0 * DT + tau) / 3600.0 * 2.0));
    // The WAN: its energy at the mean price (40) and the mean carbon price (50) of its two ends.
    assert!(close(r.wan_terms.electricity, r.wan_j / 3.6e9 * 40.0));
    assert!(close(r.wan_terms.carbon, r.wan_co2_kg / 1000.0 * 50.0));
    // The per-site terms and the WAN's add up to the total; electricity matches the meters.
    let sum: f64 = r.site_terms.iter().map(|t| t.total()).sum::<f64>() + r.wan_terms.total();
    assert!(close(sum, r.cost()));
    assert!(close(
        r.site_terms.iter().map(|t| t.electricity).sum::<f64>(),
        r.sites.cost
    ));
    assert!(close(r.gpu_hours_by_site.iter().sum::<f64>(), r.gpu_hours));
}

#[test]
fn the_cost_objective_trades_a_cleaner_site_for_a_cheaper_one() {
    // A is clean but taxed heavily; B dirtier and untaxed. CO2 picks A, cost picks B.
    let mut a = site("A", 1000.0, vec![100.0; 24]);
    a.tax_per_gpu_h = 100.0;
    let b = site("B", 1000.0, vec![400.0; 24]);
    let sites = vec![a, b];
    let mut spec = spec_of(&sites, 100.0, 0.0, 0.0, 24.0);
    let inp = inputs(sites.clone(), 0.0, spec.clone(), 1000.0 * 6.0 * DT);
    let co2 = follow_the_night(&inp).unwrap();
    assert!(co2.trained_s[0] > 0.0 && co2.trained_s[1] == 0.0);
    spec.objective = SiteObjective::Cost;
    let inp = inputs(sites, 0.0, spec, 1000.0 * 6.0 * DT);
    let cost = follow_the_night(&inp).unwrap();
    assert!(cost.trained_s[1] > 0.0 && cost.trained_s[0] == 0.0);
    assert!(cost.cost() < co2.cost() && cost.co2_kg() > co2.co2_kg());
    // Geo-distributed too: with cost, only B takes part.
    let g = geo::geo_distributed(&inp).unwrap();
    assert_eq!(g.trained_s[0], 0.0);
}

#[test]
fn the_planners_plan_on_a_forecast_and_are_charged_on_the_real_series() {
    // Really A is clean and B dirty; B's forecast says B is the cleaner one.
    let a = site("A", 1000.0, vec![100.0; 24]);
    let mut b = site("B", 1000.0, vec![400.0; 24]);
    let sites_real = vec![a.clone(), b.clone()];
    b.forecast_ci = Some(vec![50.0; 24]);
    b.planned_on = "forecast b.csv".into();
    let sites = vec![a, b];
    let spec = spec_of(&sites, 100.0, 0.0, 0.0, 24.0);
    let target = 1000.0 * 6.0 * DT;
    let inp = inputs(sites, 0.0, spec.clone(), target);
    let view = inp.planner_view().expect("a forecast");
    assert_eq!(view.sites[1].ci, vec![50.0; 24]);
    let r = follow_the_night(&inp).unwrap();
    // It trusted the forecast and trained at B, and is charged B's real 400 g/kWh.
    assert!(r.trained_s[1] > 0.0 && r.trained_s[0] == 0.0);
    let expect = 10_000.0 * 6.0 * DT / 3.6e6 * 400.0 / 1000.0;
    assert!(close(r.co2_kg(), expect), "{} vs {expect}", r.co2_kg());
    // With perfect foresight (no forecast) it trains at A.
    let perfect = inputs(sites_real, 0.0, spec, target);
    assert!(perfect.planner_view().is_none());
    let p = follow_the_night(&perfect).unwrap();
    assert!(p.trained_s[0] > 0.0 && p.co2_kg() < r.co2_kg());
}

#[test]
fn geo_rounds_carry_the_sync_penalty_of_their_site_count_weighted_by_tokens() {
    let sites = vec![
        site("A", 1000.0, vec![100.0; 48]),
        site("B", 1000.0, vec![100.0; 48]),
    ];
    let spec = spec_of(&sites, 100.0, 0.0, 0.0, 48.0);
    let mut inp = inputs(sites, 1e6, spec, 1000.0 * 2.0 * 4.0 * DT);
    inp.sync_penalty = vec![0.0, 0.0, 0.02, 0.03, 0.04];
    let both = geo::execute(&inp, &vec![0b11; 48], "geo").unwrap();
    assert!(close(both.sync_penalty, 0.02), "{}", both.sync_penalty);
    let solo = geo::execute(&inp, &vec![0b01; 48], "geo").unwrap();
    assert_eq!(solo.sync_penalty, 0.0);
    // Two hours alone, then both: A alone trains 2 h of tokens, the pair the remaining 6 h of tokens.
    let mut mixed = vec![0b11u64; 48];
    mixed[0] = 0b01;
    mixed[1] = 0b01;
    let m = geo::execute(&inp, &mixed, "geo").unwrap();
    let alone = 1000.0 * 2.0 * DT;
    assert!(close(
        m.sync_penalty,
        0.02 * (m.effective_tokens - alone) / m.effective_tokens
    ));
}

#[test]
fn a_round_worth_less_than_its_tokens_trains_longer_and_worth_one_changes_nothing() {
    let sites = vec![
        site("A", 1000.0, vec![100.0; 48]),
        site("B", 1000.0, vec![100.0; 48]),
    ];
    let spec = spec_of(&sites, 100.0, 0.0, 0.0, 48.0);
    let mut inp = inputs(sites, 1e6, spec, 1000.0 * 2.0 * 4.0 * DT);
    let plan = vec![0b11u64; 48];
    let base = geo::execute(&inp, &plan, "geo").unwrap();
    inp.sync_worth = vec![1.0; 5];
    inp.sync_penalty = vec![0.0; 5];
    let same = geo::execute(&inp, &plan, "geo").unwrap();
    assert_eq!(same.effective_tokens, base.effective_tokens);
    assert_eq!(same.co2_kg(), base.co2_kg());
    // Pairs worth 0.8: 1 / 0.8 of the tokens, and the CO2 of the longer run.
    inp.sync_worth[2] = 0.8;
    let more = geo::execute(&inp, &plan, "geo").unwrap();
    assert!(close(more.effective_tokens, base.effective_tokens / 0.8));
    assert!(more.co2_kg() > base.co2_kg());
}

#[test]
fn displayed_paths_are_normalised_lexically() {
    use crate::io::lexical;
    use std::path::Path;
    let show = |p: &str| lexical(Path::new(p)).display().to_string();
    assert_eq!(show("scenarios/../data/x.csv"), "data/x.csv");
    assert_eq!(
        show("scenarios/../../shared/data/grid/a.csv"),
        "../shared/data/grid/a.csv"
    );
    assert_eq!(show("./a/./b/../c.csv"), "a/c.csv");
    assert_eq!(show("/x/../../y.csv"), "/y.csv");
    assert_eq!(show("a/.."), ".");
}
