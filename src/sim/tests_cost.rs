//! Tests of the `[cost]` table in a run: the terms against whole-run quantities, and the planner's cost objective, tax and hints.

use super::cost::{hook_policy, planner_grid};
use super::test_setup::strategy_of;
use super::*;
use crate::cost::{CostInputs, Hint, HintUse};
use crate::scenario::Objective;
use crate::strategy::setup::{self, rates, ModeRate};
use crate::strategy::{Mode, Progress};

fn single_node(edits: &[(&str, &str)], cost: &str) -> Scenario {
    let mut text = super::test_setup::shipped_text("single_node.toml", edits);
    text.push_str(&format!("\n[cost]\n{cost}\n"));
    super::test_setup::parse_shipped("single_node.toml", &text)
}

/// The circadian strategy of single_node on the optimal planner minimising cost.
const OPTIMAL_COST: [(&str, &str); 4] = [
    ("objective = \"co2\"", "objective = \"cost\""),
    ("policy = \"window\"", "policy = \"optimal\""),
    ("full_share = 0.3\npause_share = 0.2\n", ""),
    ("window_hours = [1, 2, 3, 4]", ""),
];

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

#[test]
fn each_cost_term_is_its_whole_run_quantity_times_its_rate_and_the_terms_sum_to_the_total() {
    for release in ["true", "false"] {
        let mut edits = OPTIMAL_COST.to_vec();
        edits.push((
            "release_nodes_when_paused = true",
            if release == "true" {
                "release_nodes_when_paused = true"
            } else {
                "release_nodes_when_paused = false"
            },
        ));
        let s = single_node(
            &edits,
            "carbon_price_per_t = 50.0\ncompute_hour_tax = 0.2\nlevy_per_kwh = 0.01",
        );
        let res = simulate(&s).unwrap();
        for r in &res.strategies {
            let (o, c) = (&r.outcome, r.cost.unwrap());
            let kwh = o.totals.facility_j / 3.6e6;
            assert!(
                close(c.electricity, o.totals.cost),
                "{release} {:?}",
                r.kind
            );
            assert!(close(c.carbon, o.totals.co2_kg / 1000.0 * 50.0));
            // Taxed GPU-hours are the GPU-hours the job held (summary.csv's gpu_hours).
            assert!(
                close(c.tax, o.gpu_hours * 0.2),
                "{} vs {}",
                c.tax,
                o.gpu_hours * 0.2
            );
            assert!(close(c.levy, kwh * 0.01));
            assert!(c.carbon > 0.0 && c.tax > 0.0 && c.levy > 0.0);
            // The interval rows add up to the run: the total is the sum of per-interval totals.
            let rows: f64 = o
                .timeline
                .iter()
                .map(|t| {
                    t.totals.cost
                        + t.totals.co2_kg / 1000.0 * 50.0
                        + t.held_s * 8.0 / 3600.0 * 0.2
                        + t.totals.facility_j / 3.6e6 * 0.01
                })
                .sum();
            assert!(close(c.total(), rows), "{} vs {rows}", c.total());
        }
        // Released nodes are not taxed: circadian's paused hours fall out of its taxed hours.
        let circ = strategy_of(&res, StrategyKind::Circadian);
        let paused_h = circ.outcome.mode_s[2] / 3600.0;
        assert!(paused_h > 1.0, "the planner never paused: {paused_h} h");
        let wall_gpu_h = circ.outcome.wall_s / 3600.0 * 8.0;
        if release == "true" {
            assert!(circ.outcome.gpu_hours < wall_gpu_h - 8.0 * (paused_h - 0.5));
        } else {
            assert!(close(circ.outcome.gpu_hours, wall_gpu_h));
        }
    }
}

#[test]
fn without_an_electricity_price_a_cost_table_is_refused() {
    let s = single_node(&[("price_per_mwh = 60.0", "")], "carbon_price_per_t = 50.0");
    let e = simulate(&s).unwrap_err().to_string();
    assert!(
        e.contains("electricity price") && e.contains("grid.price_per_mwh"),
        "{e}"
    );
}

/// A planner over a hand-made day: two intervals, the job needs one of them at full speed.
fn two_interval_plan(
    price: [f64; 2],
    ci: [f64; 2],
    carbon_price: f64,
    tax_per_gpu_h: f64,
    hints: Option<(Vec<Option<Hint>>, HintUse)>,
    full: ModeRate,
    throttled: ModeRate,
) -> crate::strategy::CircadianPolicy {
    let s = single_node(&OPTIMAL_COST, "");
    let mut c = s.circadian.clone().unwrap();
    c.deadline_s = 4.0 * 3600.0;
    assert_eq!(c.objective, Objective::Cost);
    let mut grid =
        crate::grid::default_profile_series("CISO", s.training.start_utc_s, 4 * 3600, 3600, None)
            .unwrap();
    grid.ci_g_per_kwh = vec![ci[0], ci[1], ci[0], ci[1]];
    grid.price_per_mwh = Some(vec![price[0], price[1], price[0], price[1]]);
    let cost = CostInputs {
        carbon_price_per_t: Some(vec![carbon_price; 4]),
        compute_hour_tax: tax_per_gpu_h,
        levy_per_kwh: 0.0,
        forecast_ci: None,
        hints,
    };
    let pue = vec![1.0; 4];
    let g = planner_grid(&grid, Some(&cost), &c);
    let r = rates(full, throttled, 0.0, 0.0);
    let policy = setup::policy(&c, &g, &pue, r, None, 1).unwrap();
    let setup = super::test_setup::bare_setup(knobs());
    hook_policy(policy, Some(&cost), &c, &setup)
}

/// Knobs the planner tests never step with (the planner reads only rates).
fn knobs() -> Knobs {
    super::test_setup::knobs(700.0, 2, 1)
}

const FULL: ModeRate = ModeRate {
    tokens_per_s: 100.0,
    it_w: 8000.0,
};
const SLOW: ModeRate = ModeRate {
    tokens_per_s: 60.0,
    it_w: 3000.0,
};

fn modes(p: &mut crate::strategy::CircadianPolicy, tokens: f64) -> Vec<Mode> {
    (0..2)
        .map(|i| {
            p.decide(
                i,
                Progress {
                    tokens_left: tokens,
                    paused: false,
                },
            )
        })
        .collect()
}

#[test]
fn the_cost_objective_moves_work_to_where_the_sum_is_cheapest() {
    // Interval 0: cheap power on a dirty grid; interval 1: dearer power on a clean one.
    let (price, ci) = ([50.0, 60.0], [500.0, 100.0]);
    // No carbon price: electricity alone decides, interval 0 runs.
    let job = 100.0 * 3600.0 * 0.9;
    let mut p = two_interval_plan(price, ci, 0.0, 0.0, None, FULL, FULL);
    assert_ne!(modes(&mut p, job)[0], Mode::Paused);
    // 100 per t: all-in 50 + 50 = 100 vs 60 + 10 = 70 per MWh: the work moves to interval 1.
    let mut p = two_interval_plan(price, ci, 100.0, 0.0, None, FULL, FULL);
    assert_eq!(modes(&mut p, job)[0], Mode::Paused);
}

#[test]
fn a_compute_hour_tax_makes_the_planner_prefer_the_faster_mode() {
    // Throttled uses less energy per token (50 vs 80 J); the job fits both intervals throttled.
    let job = 60.0 * 3600.0 * 1.6;
    let mut p = two_interval_plan([50.0; 2], [100.0; 2], 0.0, 0.0, None, FULL, SLOW);
    assert_eq!(modes(&mut p, job)[0], Mode::Throttled);
    // A tax of 5 per GPU-hour on 8 GPUs = 40 per hour dwarfs the energy (8 kW × 50/MWh = 0.4 per
    // hour): the fewest held hours win, full speed.
    let mut p = two_interval_plan([50.0; 2], [100.0; 2], 0.0, 5.0, None, FULL, SLOW);
    assert_eq!(modes(&mut p, job)[0], Mode::Full);
}

#[test]
fn binding_hints_hold_where_advice_gives_way_to_the_deadline() {
    let hints = |u| {
        Some((
            vec![
                Some(Hint::Pause),
                Some(Hint::Run),
                Some(Hint::Pause),
                Some(Hint::Run),
            ],
            u,
        ))
    };
    // Interval 0 is the cheapest but hinted pause. One interval of work: both uses follow the hint.
    let one = 100.0 * 3600.0 * 0.9;
    for u in [HintUse::Constraint, HintUse::Advice] {
        let mut p = two_interval_plan([40.0, 60.0], [100.0; 2], 0.0, 0.0, hints(u), FULL, FULL);
        assert_eq!(modes(&mut p, one)[0], Mode::Paused, "{u:?}");
    }
    // Three intervals of work in four: the run-hinted two are not enough. Advice departs from the
    // hint in the cheapest paused interval; a constraint does not, whatever the deadline.
    let three = 100.0 * 3600.0 * 2.5;
    let mut p = two_interval_plan(
        [40.0, 60.0],
        [100.0; 2],
        0.0,
        0.0,
        hints(HintUse::Advice),
        FULL,
        FULL,
    );
    assert_ne!(modes(&mut p, three)[0], Mode::Paused);
    let mut p = two_interval_plan(
        [40.0, 60.0],
        [100.0; 2],
        0.0,
        0.0,
        hints(HintUse::Constraint),
        FULL,
        FULL,
    );
    assert_eq!(modes(&mut p, three)[0], Mode::Paused);
    // A throttle hint under a constraint allows throttled but not full.
    let th = Some((vec![Some(Hint::Throttle); 4], HintUse::Constraint));
    let mut p = two_interval_plan([40.0, 60.0], [100.0; 2], 0.0, 0.0, th, FULL, SLOW);
    assert_eq!(modes(&mut p, 100.0 * 3600.0 * 3.5)[0], Mode::Throttled);
}

#[test]
fn the_run_reports_how_often_it_followed_the_hints() {
    let dir = tempfile::tempdir().unwrap();
    let hints = dir.path().join("hints.csv");
    // single_node starts 2022-07-01 00:00 PDT: pause 0-2 h and 16-21 h local on its first day.
    std::fs::write(
        &hints,
        "time,hint\n2022-07-01 00:00,pause\n2022-07-01 02:00,run\n2022-07-01 16:00,pause\n2022-07-01 21:00,run\n2022-07-05 00:00,run\n",
    )
    .unwrap();
    let table = format!(
        "[cost.hints]\npath = \"{}\"\ntime_column = \"time\"\nhint_column = \"hint\"\ntime_zone = \"America/Los_Angeles\"\nuse = \"constraint\"",
        hints.display()
    );
    let res = simulate(&single_node(&OPTIMAL_COST, &table)).unwrap();
    for r in &res.strategies {
        let n = r.hints.unwrap();
        let trained = r
            .outcome
            .timeline
            .iter()
            .filter(|t| t.mode.is_some())
            .count() as u64;
        assert_eq!(n.followed + n.deviated + n.none, trained, "{:?}", r.kind);
        match r.kind {
            // Bound by the hints: never running in a pause hour.
            StrategyKind::Circadian => {
                assert_eq!(n.deviated, 0, "{n:?}");
                assert_eq!(r.outcome.timeline[0].mode, Some(Mode::Paused));
            }
            // 24/7 strategies run through the pause hour they start in.
            _ => assert!(n.deviated >= 1, "{n:?}"),
        }
    }
}

#[test]
fn the_planner_plans_on_the_forecast_and_the_run_meters_the_truth() {
    let s = single_node(&OPTIMAL_COST, "carbon_price_per_t = 100.0");
    let c = s.circadian.clone().unwrap();
    let mut grid = crate::grid::default_profile_series(
        "CISO",
        s.training.start_utc_s,
        4 * 3600,
        3600,
        Some(50.0),
    )
    .unwrap();
    grid.ci_g_per_kwh = vec![100.0, 500.0, 100.0, 500.0];
    let cost = CostInputs {
        carbon_price_per_t: Some(vec![100.0; 4]),
        compute_hour_tax: 0.0,
        levy_per_kwh: 0.0,
        forecast_ci: Some(vec![500.0, 100.0, 500.0, 100.0]),
        hints: None,
    };
    let g = planner_grid(&grid, Some(&cost), &c);
    // The planner's intensity is the forecast, and its all-in price carries the forecast's carbon.
    assert_eq!(g.ci_g_per_kwh, vec![500.0, 100.0, 500.0, 100.0]);
    assert_eq!(
        g.price_per_mwh.as_deref(),
        Some(&[100.0, 60.0, 100.0, 60.0][..])
    );
    // The truth is untouched.
    assert_eq!(grid.ci_g_per_kwh[0], 100.0);
    let mut c4 = c.clone();
    c4.deadline_s = 4.0 * 3600.0;
    let mut p = setup::policy(&c4, &g, &[1.0; 4], rates(FULL, FULL, 0.0, 0.0), None, 1).unwrap();
    // One interval of work goes where the forecast is cheap (interval 1), not where the truth is.
    assert_eq!(modes(&mut p, 100.0 * 3600.0 * 0.9)[0], Mode::Paused);
}
