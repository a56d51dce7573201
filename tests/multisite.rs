//! Multi-region jobs from a scenario file: every `[[site]]`/`[[wan]]`/`[multisite]` error names the
//! file, line:column and key with what would be valid; the shipped scenario runs deterministically and
//! follow the night does no worse than the best single site that meets the deadline.

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
        "between 1 and 500",
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
fn the_shipped_scenario_runs_deterministically_and_follow_the_night_beats_no_feasible_single_site()
{
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
    let best_single = sites
        .runs
        .iter()
        .filter(|r| r.name.starts_with("single:") && r.deadline_met)
        .map(|r| r.co2_kg())
        .fold(f64::INFINITY, f64::min);
    assert!(ftn.co2_kg() <= best_single);
    // Every mode trains the same progress: the same estimated loss.
    let l0 = ftn.loss.as_ref().unwrap().loss;
    assert!(sites
        .runs
        .iter()
        .all(|r| (r.loss.as_ref().unwrap().loss - l0).abs() < 1e-9));
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
    assert_eq!(
        csv.lines().next().unwrap(),
        moesim::report::SITES_COLUMNS.join(",")
    );
    // 3 single sites, follow the night, geo-distributed.
    assert_eq!(csv.lines().count(), 1 + 5);
    let plain = moesim::Scenario::from_file(Path::new("scenarios/single_node.toml")).unwrap();
    let res = moesim::sim::simulate(&plain).unwrap();
    let w = moesim::report::write_outputs(&res, &dir).unwrap();
    assert!(!dir.join("sites.csv").exists());
    assert!(!w.iter().any(|p| p.ends_with("sites.csv")));
    std::fs::remove_dir_all(&dir).ok();
}
