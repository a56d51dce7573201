//! CO2 under the average and the marginal carbon signal: exact accounting, and a planner that follows the signal it is told.

use moesim::report::summary_rows;
use moesim::scenario::{parse_scenario, DEFAULT_SCENARIO};
use moesim::{simulate, Scenario, StrategyKind};
use std::path::Path;

const T0: i64 = 1_709_251_200; // 2024-03-01T00:00Z, before the default scenario's start (2024-03-04)

/// An hourly CSV over 20 days with `timestamp`, `avg` (a daily cycle: clean at midday) and
/// `moer` = `marginal(avg, hour)`.
fn write_grid(dir: &Path, marginal: impl Fn(i64, i64) -> i64) -> std::path::PathBuf {
    let mut text = String::from("timestamp,avg,moer\n");
    for h in 0..(24 * 20) {
        let t = chrono::DateTime::from_timestamp(T0 + h * 3600, 0).unwrap_or_default();
        let hour = h % 24;
        let base = if (10..16).contains(&hour) { 120 } else { 300 };
        let avg = base + 7 * (h % 5);
        text.push_str(&format!(
            "{},{avg},{}\n",
            t.format("%Y-%m-%dT%H:%M:%S+00:00"),
            marginal(avg, hour)
        ));
    }
    let p = dir.join("grid.csv");
    std::fs::write(&p, text).unwrap_or_else(|e| panic!("{e}"));
    p
}

/// The default scenario on the file `p` (average column `avg`, marginal column `moer`), with
/// `signal` set for the planner (None: the key left out).
fn scenario(p: &Path, signal: Option<&str>) -> Scenario {
    let cols = |col: &str, kind: &str| {
        format!(
            "path = \"{}\"\ntime_column = \"timestamp\"\ntime_zone = \"UTC\"\nstamp = \"start\"\nci_column = \"{col}\"\nci_kind = \"{kind}\"\nmax_gap_intervals = 0\nwrap_years = false\n",
            p.display()
        )
    };
    let grid = format!(
        "[grid]\nregion = \"GB\"\nsource = \"csv\"\nprice_per_mwh = 120.0\n[grid.csv]\n{}[grid.marginal]\nsource = \"csv\"\n[grid.marginal.csv]\n{}",
        cols("avg", "average"),
        cols("moer", "marginal")
    );
    let text = DEFAULT_SCENARIO
        .replacen("currency = \"GBP\"\n", "", 1)
        .replace(
            "[grid]\nregion = \"GB\"\nsource = \"profile\"\nprice_per_mwh = 120.0",
            &grid,
        );
    // Two strategies and a quarter of the tokens keep the test short; the accounting is the same.
    let text = text
        .replacen(
            "strategies = [\"dense\", \"moe\", \"circadian\"]",
            "strategies = [\"moe\", \"circadian\"]",
            1,
        )
        .replacen("tokens = 1.2e11", "tokens = 3e10", 1);
    let text = match signal {
        Some(s) => text.replace(
            "objective = \"co2\"\n",
            &format!("objective = \"co2\"\nsignal = \"{s}\"\n"),
        ),
        None => text,
    };
    parse_scenario("m.toml", &text, Path::new(".")).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn a_marginal_signal_twice_the_average_gives_exactly_twice_the_co2() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let p = write_grid(dir.path(), |avg, _| 2 * avg);
    let res = simulate(&scenario(&p, None)).unwrap_or_else(|e| panic!("{e}"));
    let rows = summary_rows(&res);
    assert_eq!(rows.len(), 2);
    for r in &rows {
        // Every interval's term doubles exactly in floating point, so the sum does.
        assert_eq!(r.co2_marginal_kg, 2.0 * r.co2_average_kg, "{}", r.strategy);
        // The metered CO2 is the average signal's, summed in another order.
        assert!(
            (r.co2_average_kg - r.co2_kg).abs() < 1e-9 * r.co2_kg,
            "{}: {} vs {}",
            r.strategy,
            r.co2_average_kg,
            r.co2_kg
        );
        assert!(r.co2_kg > 0.0);
    }
    let table = moesim::report::table(&res);
    assert!(
        table.contains("marginal 'moer'")
            && table.contains("circadian vs moe: CO2e under average carbon"),
        "{table}"
    );
}

#[test]
fn the_planner_follows_the_signal_it_is_told() {
    // The marginal signal is the mirror of the average one: dirty at midday, clean at night. A plan
    // on either signal does better under that signal than the plan on the other.
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let p = write_grid(dir.path(), |avg, hour| {
        let base = if (10..16).contains(&hour) { 700 } else { 400 };
        base + avg % 7
    });
    let circadian = |signal: &str| {
        let res = simulate(&scenario(&p, Some(signal))).unwrap_or_else(|e| panic!("{e}"));
        let rows = summary_rows(&res);
        let r = res
            .strategies
            .iter()
            .position(|s| s.kind == StrategyKind::Circadian)
            .unwrap_or_else(|| panic!("no circadian"));
        (rows[r].co2_average_kg, rows[r].co2_marginal_kg)
    };
    let (avg_plan_avg, avg_plan_marg) = circadian("average");
    let (marg_plan_avg, marg_plan_marg) = circadian("marginal");
    assert!(
        marg_plan_marg < avg_plan_marg,
        "marginal plan {marg_plan_marg} vs average plan {avg_plan_marg} under marginal"
    );
    assert!(
        avg_plan_avg < marg_plan_avg,
        "average plan {avg_plan_avg} vs marginal plan {marg_plan_avg} under average"
    );
}

#[test]
fn the_planner_signal_needs_a_series_of_its_kind_and_says_which() {
    use moesim::grid::{CiKind, CiSignal, GridSeries};
    use moesim::strategy::setup::planner_signal;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let p = write_grid(dir.path(), |avg, _| 2 * avg);
    let s = scenario(&p, Some("marginal"));
    let Some(c) = s.circadian.clone() else {
        panic!("no circadian spec")
    };
    // A series whose only signal is marginal (as a WattTime file gives): the marginal plan follows
    // it × PUE; an average plan is refused, naming what is missing.
    let g = GridSeries {
        region: "X".into(),
        tz: chrono_tz::UTC,
        start_utc_s: T0,
        interval_s: 3600,
        ci_g_per_kwh: vec![400.0, 500.0],
        ci_kind: CiKind::Marginal,
        ci_name: "co2_moer".into(),
        ci_alt: Vec::new(),
        load_mw: None,
        price_per_mwh: None,
        source: "test".into(),
        notes: Vec::new(),
    };
    let pue = [1.5, 1.0];
    assert_eq!(planner_signal(&c, &g, &pue), Ok(vec![600.0, 500.0]));
    let mut avg = c.clone();
    avg.signal = Some(CiKind::Average);
    let e = planner_signal(&avg, &g, &pue).map_err(|e| e.to_string());
    assert!(
        e.as_ref()
            .is_err_and(|m| m.contains("signal = \"average\"")),
        "{e:?}"
    );
    // With both, each plan reads its own.
    let mut both = g.clone();
    both.ci_kind = CiKind::Average;
    both.ci_alt.push(CiSignal {
        name: "m".into(),
        kind: CiKind::Marginal,
        g_per_kwh: vec![10.0, 20.0],
    });
    assert_eq!(planner_signal(&c, &both, &pue), Ok(vec![15.0, 20.0]));
    assert_eq!(planner_signal(&avg, &both, &pue), Ok(vec![600.0, 500.0]));
}
