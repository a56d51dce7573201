//! Multi-region jobs from a scenario file: every `[[site]]`/`[[wan]]`/`[multisite]` error names the
//! file, line:column and key with what would be valid; the shipped scenario runs deterministically, its
//! cost terms per site sum to the total, geo-distributed's loss carries its synchronisation penalty, and
//! with perfect foresight follow the night does no worse than the best single site that meets the deadline.

use moesim::scenario::parse_scenario;
use std::path::Path;

const FILE: &str = "scenarios/follow_the_night.toml";

fn text() -> String {
    std::fs::read_to_string(FILE).expect("the shipped scenario")
}

/// Parse `text` with `from` replaced by `to` (the `nth` occurrence, 0-based); the error's text and the
/// 1-based line the replacement landed on.
fn error_of(from: &str, to: &str, nth: usize) -> (String, usize) {
    error_at(from, to, nth, "")
}

/// [`error_of`], the line being the one in the replacement that sets `key`'s last segment.
fn error_at(from: &str, to: &str, nth: usize, key: &str) -> (String, usize) {
    let t = text();
    let at = t
        .match_indices(from)
        .nth(nth)
        .map(|(i, _)| i)
        .expect("text to replace");
    let changed = format!("{}{}{}", &t[..at], to, &t[at + from.len()..]);
    // The line of the changed key: where its last segment's name appears in the replacement.
    let seg = key.rsplit('.').next().filter(|k| !k.is_empty());
    let pos = seg
        .and_then(|k| to.find(&format!("{k} =")))
        .map_or(at, |o| at + o);
    let line = changed[..pos].matches('\n').count() + 1;
    let err = parse_scenario("ftn.toml", &changed, Path::new("scenarios"))
        .expect_err("the change must be refused")
        .to_string();
    (err, line)
}

fn assert_error(from: &str, to: &str, nth: usize, key: &str, says: &str) {
    let (err, line) = error_at(from, to, nth, key);
    assert!(
        err.starts_with(&format!("ftn.toml:{line}:")),
        "{err} (expected line {line})"
    );
    if !key.is_empty() {
        assert!(
            err.contains(&format!("`{key}`")),
            "{err} (expected key {key})"
        );
    }
    assert!(err.contains(says), "{err} (expected `{says}`)");
}

#[test]
fn the_shipped_scenario_parses_with_three_sites_and_three_links() {
    let s = parse_scenario(FILE, &text(), Path::new("scenarios")).unwrap();
    let m = s.sites.expect("sites");
    assert_eq!(m.sites.len(), 3);
    assert_eq!(m.wan.len(), 3);
    // ERCO's 8 GPUs hold 8 of the job's 16 replicas (ep = 8).
    assert_eq!(m.sites[1].replicas, 8);
    assert_eq!(m.sites[0].replicas, 16);
    // The default energy per byte: Aslan et al. 2018, 0.06 kWh/GB.
    assert!((m.wan[0].j_per_byte - 2.16e-4).abs() < 1e-12);
}

#[test]
fn a_site_too_small_for_one_replica_group_is_refused() {
    assert_error(
        "gpus = 8\n",
        "gpus = 4\n",
        0,
        "site.1.gpus",
        "hold no replica of the job",
    );
}

#[test]
fn a_site_grid_error_points_at_the_site_copy_of_the_grid_table() {
    assert_error(
        "price_per_mwh = 55.0",
        "price_per_mwh = -5.0",
        0,
        "site.2.grid.price_per_mwh",
        "must be between 0",
    );
    assert_error(
        "region = \"ERCO\"\nsource = \"csv\"",
        "region = \"ERCO\"\nsource = \"csv\"\ninterval_minutes = 30",
        0,
        "site.1.grid.interval_minutes",
        "line up in UTC",
    );
}

#[test]
fn site_names_pue_and_weather_are_checked() {
    assert_error(
        "name = \"PJM\"",
        "name = \"CISO\"",
        0,
        "site.2.name",
        "listed twice",
    );
    assert_error(
        "name = \"PJM\"",
        "name = \"P J M\"",
        0,
        "site.2.name",
        "letters, digits",
    );
    assert_error(
        "pue = 1.2                          # assumed, as",
        "pue = 0.5 # as",
        0,
        "site.2.pue",
        "between 1 and 3",
    );
    // A missing key: the error points at its table, the site's `[[site]]` header.
    let (err, _) = error_of(
        "pue_model = \"chiller\"\n[site.grid]\nregion = \"ERCO\"",
        "[site.grid]\nregion = \"ERCO\"",
        0,
    );
    let header = text()
        .find("[[site]]\nname = \"ERCO\"")
        .map(|i| text()[..i].matches('\n').count() + 1)
        .unwrap();
    assert!(
        err.starts_with(&format!("ftn.toml:{header}:"))
            && err.contains("`site.1.pue_model`")
            && err.contains("needs `pue_model`"),
        "{err}"
    );
}

#[test]
fn wan_links_must_join_two_known_sites_once_with_valid_figures() {
    assert_error(
        "to = \"ERCO\"",
        "to = \"TEXAS\"",
        0,
        "wan.0.to",
        "valid: CISO, ERCO, PJM",
    );
    assert_error(
        "to = \"ERCO\"",
        "to = \"CISO\"",
        0,
        "wan.0.to",
        "two different sites",
    );
    assert_error(
        "to = \"PJM\"\nbandwidth_gbps = 100\nlatency_ms = 25",
        "to = \"ERCO\"\nbandwidth_gbps = 100\nlatency_ms = 25",
        0,
        "wan.1.to",
        "already have a link",
    );
}

#[test]
fn wan_figures_are_checked() {
    assert_error(
        "bandwidth_gbps = 100\nlatency_ms = 15",
        "bandwidth_gbps = 0\nlatency_ms = 15",
        0,
        "wan.0.bandwidth_gbps",
        "positive number",
    );
    assert_error(
        "latency_ms = 12",
        "latency_ms = -1",
        0,
        "wan.2.latency_ms",
        "≥ 0",
    );
    assert_error(
        "latency_ms = 12",
        "latency_ms = 12\nenergy_j_per_byte = 1.0",
        0,
        "wan.2.energy_j_per_byte",
        "between 0 and 0.5 J/B",
    );
}

#[test]
fn every_pair_of_sites_needs_a_link() {
    let t = text();
    let cut = t
        .find("[[wan]]\nfrom = \"CISO\"                      # San Jose – Ashburn")
        .unwrap();
    let end = cut + t[cut..].find("latency_ms = 25\n").unwrap() + "latency_ms = 25\n".len();
    let changed = format!("{}{}", &t[..cut], &t[end..]);
    let err = parse_scenario("ftn.toml", &changed, Path::new("scenarios"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`wan`") && err.contains("sites `CISO` and `PJM` have no [[wan]] link"),
        "{err}"
    );
}

#[test]
fn the_multisite_table_is_checked() {
    assert_error(
        "deadline_hours = 120               # 5 days, as",
        "deadline_hours = 0 #",
        0,
        "multisite.deadline_hours",
        "positive number of hours",
    );
    assert_error(
        "planner = \"dp\"",
        "planner = \"magic\"",
        0,
        "multisite.planner",
        "valid: dp, greedy",
    );
    assert_error(
        "sync_every_steps = 100",
        "sync_every_steps = 1000",
        0,
        "multisite.sync_every_steps",
        "between 1 and 100",
    );
    assert_error(
        "sync_every_steps = 100",
        "sync_every_steps = 101",
        0,
        "multisite.sync_every_steps",
        "Douillard et al. 2025",
    );
    assert_error(
        "objective = \"co2\"",
        "objective = \"speed\"",
        0,
        "multisite.objective",
        "valid: co2, cost",
    );
    assert_error("[multisite]", "[not_multisite]", 0, "", "unknown field");
}

#[test]
fn sites_without_a_multisite_table_or_with_one_site_are_refused() {
    let t = text();
    let a = t.find("[multisite]").unwrap();
    let b = t.find("# Sites.").unwrap();
    let no_table = format!("{}{}", &t[..a], &t[b..]);
    let err = parse_scenario("ftn.toml", &no_table, Path::new("scenarios"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`site`") && err.contains("need a [multisite] table"),
        "{err}"
    );
    let one = t[..t.find("[[site]]\nname = \"ERCO\"").unwrap()].to_string();
    let err = parse_scenario("ftn.toml", &one, Path::new("scenarios"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`multisite`") && err.contains("at least two [[site]] tables, got 1"),
        "{err}"
    );
}

#[test]
fn the_shipped_scenario_runs_deterministically_with_the_sync_penalty_in_the_loss_and_cost_terms_summing(
) {
    let s = parse_scenario(FILE, &text(), Path::new("scenarios")).unwrap();
    let a = moesim::sim::simulate(&s).unwrap();
    let b = moesim::sim::simulate(&s).unwrap();
    let csv_a = moesim::report::sites_csv(&a).unwrap().unwrap();
    let csv_b = moesim::report::sites_csv(&b).unwrap().unwrap();
    assert_eq!(csv_a, csv_b);
    let sites = a.sites.unwrap();
    let ftn = sites
        .runs
        .iter()
        .find(|r| r.name == "follow_the_night")
        .unwrap();
    let geo = sites.runs.iter().find(|r| r.name == "geo_dp").unwrap();
    assert!(ftn.deadline_met && geo.deadline_met);
    // (ERCO is planned on a day-ahead persistence forecast and charged on the real series, so
    // following the night may emit more than the best single site; with perfect foresight it may
    // not: `without_a_forecast_the_plan_used_perfect_foresight_...` below.)
    // Every mode reaches the same estimated loss: geo-distributed trains the extra tokens that buy
    // back its synchronisation penalty (rounds of different site counts are weighed at their own
    // penalty's worth, so the blend lands within a hair of the synchronous loss).
    let l0 = ftn.loss.as_ref().unwrap().loss;
    for r in &sites.runs {
        let l = r.loss.as_ref().unwrap().loss;
        assert!((l / l0 - 1.0).abs() < 1e-3, "{}: {l} vs {l0}", r.name);
        if r.name != "geo_dp" {
            assert_eq!(r.sync_penalty, 0.0);
            assert!((l - l0).abs() < 1e-9, "{}", r.name);
        }
    }
    // Every run's cost is its sites' terms plus the WAN's.
    for r in &sites.runs {
        let sum: f64 = r.site_terms.iter().map(|t| t.total()).sum::<f64>() + r.wan_terms.total();
        assert!((sum - r.cost()).abs() <= 1e-9 * r.cost(), "{}", r.name);
        // A site that never trained has no cost; one that did pays the inherited tax.
        for (k, t) in r.site_terms.iter().enumerate() {
            assert_eq!(r.trained_s[k] > 0.0, t.tax > 0.0, "{} site {k}", r.name);
        }
    }
}

#[test]
fn each_site_has_its_own_or_the_top_level_cost_terms_and_a_forecast_is_planned_on() {
    use moesim::scenario::sites::CostOrigin;
    let s = parse_scenario(FILE, &text(), Path::new("scenarios")).unwrap();
    let m = s.sites.expect("sites");
    // CISO: no [site.cost], the top-level [cost]'s carbon price and tax.
    let ciso = m.sites[0].cost.as_ref().unwrap();
    assert_eq!(m.sites[0].cost_origin, CostOrigin::TopLevel);
    assert_eq!(ciso.compute_hour_tax, 0.10);
    assert!(ciso.forecast.is_none() && ciso.electricity.is_none());
    // ERCO: its own carbon price (0) and forecast; the tax it leaves out is [cost]'s.
    let erco = m.sites[1].cost.as_ref().unwrap();
    assert_eq!(m.sites[1].cost_origin, CostOrigin::Site);
    assert_eq!(
        erco.carbon_price_per_t,
        Some(moesim::cost::PriceSource::Fixed(0.0))
    );
    assert_eq!(erco.compute_hour_tax, 0.10);
    assert!(erco.forecast.is_some());
    assert_eq!(
        m.sites[2].cost.as_ref().unwrap().carbon_price_per_t,
        Some(moesim::cost::PriceSource::Fixed(14.8))
    );
}

#[test]
fn site_cost_tables_are_checked_where_they_are_written() {
    assert_error(
        "carbon_price_per_t = 14.8",
        "carbon_price_per_t = -3.0",
        0,
        "site.2.cost.carbon_price_per_t",
        "out of range",
    );
    assert_error(
        "[site.cost]\ncarbon_price_per_t = 0.0",
        "[site.cost]\nlevy_per_kwh = 50.0\ncarbon_price_per_t = 0.0",
        0,
        "site.1.cost.levy_per_kwh",
        "per MWh",
    );
    assert_error(
        "[site.cost.forecast]",
        "[site.cost.hints]\npath = \"x.csv\"\ntime_column = \"t\"\nhint_column = \"h\"\ntime_zone = \"UTC\"\nuse = \"advice\"\n[site.cost.forecast]",
        0,
        "site.1.cost.hints",
        "do not read grid hints",
    );
}

#[test]
fn a_site_with_cost_terms_and_no_electricity_price_is_refused() {
    // PJM on its embedded profile without a price: the inherited [cost] terms need one.
    let t = text();
    let a = t.find("[site.grid]\nregion = \"PJM\"").unwrap();
    let b = t[a..].find("[site.cost]").unwrap() + a;
    let profile = format!(
        "{}[site.grid]\nregion = \"PJM\"\nsource = \"profile\"\n{}",
        &t[..a],
        &t[b..]
    );
    let err = parse_scenario("ftn.toml", &profile, Path::new("scenarios"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`site.2.grid.price_per_mwh`") && err.contains("no electricity price"),
        "{err}"
    );
}

#[test]
fn more_than_four_synchronising_sites_are_beyond_the_published_range() {
    // Two more copies of PJM, linked to every site: five sites.
    let t = text();
    let pjm = &t[t.find("[[site]]\nname = \"PJM\"").unwrap()..t.find("# WAN links").unwrap()];
    let mut more = String::new();
    for n in ["PJM2", "PJM3"] {
        more.push_str(&pjm.replace("name = \"PJM\"", &format!("name = \"{n}\"")));
    }
    let mut links = String::new();
    for (a, b) in [
        ("CISO", "PJM2"),
        ("CISO", "PJM3"),
        ("ERCO", "PJM2"),
        ("ERCO", "PJM3"),
        ("PJM", "PJM2"),
        ("PJM", "PJM3"),
        ("PJM2", "PJM3"),
    ] {
        links.push_str(&format!(
            "[[wan]]\nfrom = \"{a}\"\nto = \"{b}\"\nbandwidth_gbps = 100\nlatency_ms = 10\n"
        ));
    }
    let at = t.find("# WAN links").unwrap();
    let five = format!("{}{more}{}{links}", &t[..at], &t[at..]);
    let err = parse_scenario("ftn.toml", &five, Path::new("scenarios"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`multisite.sync_every_steps`")
            && err.contains("replicas = 5")
            && err.contains("1 to 4"),
        "{err}"
    );
    // Synchronising every step is data parallel: no quality cost, any number of sites.
    let every = five.replace("sync_every_steps = 100 ", "sync_every_steps = 1 ");
    assert!(parse_scenario("ftn.toml", &every, Path::new("scenarios")).is_ok());
}

#[test]
fn json_output_holds_the_sites_comparison_and_each_site_its_own_fabric() {
    let s = parse_scenario(FILE, &text(), Path::new("scenarios")).unwrap();
    let res = moesim::sim::simulate(&s).unwrap();
    let v: serde_json::Value = serde_json::from_str(&moesim::report::to_json(&res)).unwrap();
    let mr = &v["multi_region"];
    let modes = mr["modes"].as_array().unwrap();
    assert_eq!(modes.len(), 5);
    assert_eq!(mr["sync_every_steps"], 100);
    for m in modes {
        let by_site = m["cost_by_site"].as_object().unwrap();
        assert_eq!(by_site.len(), 3);
        let sum: f64 = by_site
            .values()
            .map(|t| t["total"].as_f64().unwrap())
            .sum::<f64>()
            + m["cost_wan"]["total"].as_f64().unwrap();
        let total = m["cost"]["total"].as_f64().unwrap();
        assert!((sum - total).abs() <= 1e-9 * total, "{m}");
    }
    let sites = mr["sites"].as_array().unwrap();
    // The forecast's path as written beside the scenario, normalised for display (no `dir/..`).
    assert_eq!(
        sites[1]["planned_on"],
        "forecast data/erco_2022_persistence_forecast.csv"
    );
    assert_eq!(sites[0]["planned_on"], "perfect foresight");
    // ERCO's 8 GPUs are one node: no fabric switch; CISO's 16 are two, with their switch ports.
    let info = &res.sites.as_ref().unwrap().sites;
    assert_eq!(info[1].network_w, 0.0);
    assert!(info[0].network_w > 0.0);
    // A scenario without a [multisite] has no such key.
    let plain = moesim::Scenario::from_file(Path::new("scenarios/single_node.toml")).unwrap();
    let res = moesim::sim::simulate(&plain).unwrap();
    let v: serde_json::Value = serde_json::from_str(&moesim::report::to_json(&res)).unwrap();
    assert!(v.get("multi_region").is_none());
}

#[test]
fn without_a_forecast_the_plan_used_perfect_foresight_and_beats_no_feasible_single_site() {
    let t = text();
    let a = t.find("[site.cost.forecast]").unwrap();
    let b = t.find("[[site]]\nname = \"PJM\"").unwrap();
    let none = format!("{}{}", &t[..a], &t[b..]);
    let s = parse_scenario("ftn.toml", &none, Path::new("scenarios")).unwrap();
    let res = moesim::sim::simulate(&s).unwrap();
    let csv = String::from_utf8(moesim::report::sites_csv(&res).unwrap().unwrap()).unwrap();
    let ftn = csv
        .lines()
        .find(|l| l.starts_with("follow_the_night"))
        .unwrap();
    assert!(ftn.contains(",perfect foresight,"), "{ftn}");
    let table = moesim::report::sites_table(&res).unwrap();
    assert!(table.contains("planned on: perfect foresight"), "{table}");
    // With perfect foresight follow the night emits no more than the best single site that meets
    // the deadline (the single-site plans are among its candidates).
    let sites = res.sites.unwrap();
    let ftn = sites
        .runs
        .iter()
        .find(|r| r.name == "follow_the_night")
        .unwrap();
    let best_single = sites
        .runs
        .iter()
        .filter(|r| r.name.starts_with("single:") && r.deadline_met)
        .map(|r| r.co2_kg())
        .fold(f64::INFINITY, f64::min);
    assert!(ftn.deadline_met && ftn.co2_kg() <= best_single);
}

#[test]
fn sites_csv_is_written_with_its_columns_and_a_run_without_sites_removes_a_stale_one() {
    let dir = std::env::temp_dir().join(format!("moesim_sites_csv_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let s = parse_scenario(FILE, &text(), Path::new("scenarios")).unwrap();
    let res = moesim::sim::simulate(&s).unwrap();
    let w = moesim::report::write_outputs(&res, &dir).unwrap();
    assert!(w.iter().any(|p| p.ends_with("sites.csv")));
    let csv = std::fs::read_to_string(dir.join("sites.csv")).unwrap();
    let names: Vec<String> = ["CISO", "ERCO", "PJM"].map(String::from).to_vec();
    let mut header: Vec<String> = moesim::report::SITES_COLUMNS
        .iter()
        .map(|c| c.to_string())
        .collect();
    header.extend(moesim::report::site_columns(&names));
    assert_eq!(csv.lines().next().unwrap(), header.join(","));
    assert!(header.contains(&"cost_ERCO_carbon".to_string()));
    // 3 single sites, follow the night, geo-distributed.
    assert_eq!(csv.lines().count(), 1 + 5);
    let plain = moesim::Scenario::from_file(Path::new("scenarios/single_node.toml")).unwrap();
    let res = moesim::sim::simulate(&plain).unwrap();
    let w = moesim::report::write_outputs(&res, &dir).unwrap();
    assert!(!dir.join("sites.csv").exists());
    assert!(!w.iter().any(|p| p.ends_with("sites.csv")));
    std::fs::remove_dir_all(&dir).ok();
}

/// The shipped scenario's geo-distributed run with `multisite.sync_every_steps = h` and a 30 h
/// deadline (a site alone needs 51 h or more: the planner must run sites together, so they
/// synchronise), and the loss of following the night.
fn geo_at(h: u32) -> (moesim::sim::multi::SiteRun, f64) {
    let t = text()
        .replace(
            "sync_every_steps = 100 ",
            &format!("sync_every_steps = {h} "),
        )
        .replace("deadline_hours = 120 ", "deadline_hours = 30 ");
    assert_ne!(t, text(), "anchor sync_every_steps = 100");
    let s = parse_scenario(FILE, &t, Path::new("scenarios")).unwrap();
    let r = moesim::sim::simulate(&s).unwrap().sites.unwrap();
    let ftn = r
        .runs
        .iter()
        .find(|r| r.name == "follow_the_night")
        .unwrap();
    let l0 = ftn.loss.as_ref().unwrap().loss;
    (r.runs.into_iter().find(|r| r.name == "geo_dp").unwrap(), l0)
}

#[test]
fn geo_dp_buys_back_its_sync_penalty_in_tokens_none_when_every_step_syncs_more_as_h_grows() {
    // H = 1 is data parallel: no penalty, the target's tokens exactly.
    let (every, l0) = geo_at(1);
    assert_eq!(every.sync_penalty, 0.0);
    assert!((every.loss.as_ref().unwrap().loss - l0).abs() < 1e-9);
    let target = every.effective_tokens;
    let mut last = (0.0, target);
    for h in [10, 30, 100] {
        let (r, l0) = geo_at(h);
        // Equal quality: the penalised loss after the extra tokens is the synchronous one.
        let l = r.loss.as_ref().unwrap().loss;
        assert!((l / l0 - 1.0).abs() < 1e-3, "H = {h}: {l} vs {l0}");
        assert!(
            r.sync_penalty > last.0,
            "H = {h}: penalty {} after {}",
            r.sync_penalty,
            last.0
        );
        assert!(
            r.effective_tokens > last.1,
            "H = {h}: {} tokens after {}",
            r.effective_tokens,
            last.1
        );
        last = (r.sync_penalty, r.effective_tokens);
    }
}
