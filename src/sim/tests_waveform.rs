//! Tests of the power waveform: its energy against the meter, the floor's and the ramp limit's filler
//! energy, and the ramp statistics against a brute-force walk of a hand-built waveform.

use super::step::{StepPhases, PHASES};
use super::waveform::PowerTrack;
use super::waveform_rows::{rows_energy_j, waveform_rows, WaveRow};
use super::*;
use crate::scenario::parse_scenario;
use std::path::Path;

/// single_node (circadian pauses and releases its node) with `power` as its `[power]` table and
/// the whole run as the waveform window.
fn single_node(power: &str) -> Scenario {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut text = std::fs::read_to_string(dir.join("single_node.toml")).unwrap();
    text.push_str(&format!("\n[power]\n{power}\n"));
    let mut s = parse_scenario("single_node.toml", &text, &dir).unwrap();
    s.power.window_s = Some((0.0, 1e12));
    s
}

fn rows_of(res: &Results, r: &StrategyResult) -> Vec<WaveRow> {
    let interval_s = res.grid.interval_s as f64;
    let pue_at = |t: f64| {
        res.pue_by_interval[((t / interval_s) as usize).min(res.pue_by_interval.len() - 1)]
    };
    waveform_rows(&r.outcome.power, pue_at, interval_s, usize::MAX).unwrap()
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / a.abs().max(b.abs()).max(f64::MIN_POSITIVE)
}

#[test]
fn waveform_energy_equals_the_metered_energy_over_the_run_and_each_interval() {
    for power in ["", "floor_fraction = 0.6\nramp_limit_mw_per_s = 0.0005"] {
        let res = simulate(&single_node(power)).unwrap();
        let interval_s = res.grid.interval_s as f64;
        for r in &res.strategies {
            let o = &r.outcome;
            let rows = rows_of(&res, r);
            let name = format!("{} [{power}]", r.kind.name());
            assert!(rows.iter().any(|w| w.phase == "compute"), "{name}");
            // Rows tile the run: each starts where the one before ended.
            for w in rows.windows(2) {
                assert!((w[1].t_s - w[0].end_s).abs() < 1e-6, "{name}: gap {w:?}");
            }
            let e = rows_energy_j(&rows);
            assert!(
                rel(e, o.totals.facility_j) < 1e-9,
                "{name}: {e} vs {}",
                o.totals.facility_j
            );
            if !power.is_empty() {
                continue;
            }
            // Per interval: a step that crosses a boundary is metered at its mean power on each
            // side but drawn phase by phase, so one step's energy is the bound.
            let step_j = o.totals.facility_j / o.sums.steps as f64 * 2.0;
            for (i, row) in o.timeline.iter().enumerate() {
                let (a, b) = (i as f64 * interval_s, (i + 1) as f64 * interval_s);
                let drawn: f64 = rows
                    .iter()
                    .map(|w| w.facility_w * (w.end_s.min(b) - w.t_s.max(a)).max(0.0))
                    .sum();
                let metered = row.totals.facility_j;
                assert!(
                    (drawn - metered).abs() <= step_j.max(1e-9 * metered),
                    "{name} interval {i}: drawn {drawn} metered {metered}"
                );
            }
        }
    }
}

#[test]
fn the_floor_raises_energy_by_exactly_the_filler_area_and_the_ramp_limit_by_its_triangles() {
    let base = simulate(&single_node("")).unwrap();
    let floor = simulate(&single_node("floor_fraction = 0.6")).unwrap();
    let ramp = simulate(&single_node("ramp_limit_mw_per_s = 0.0005")).unwrap();
    let mut ramped = 0;
    for ((b, f), r) in base
        .strategies
        .iter()
        .zip(&floor.strategies)
        .zip(&ramp.strategies)
    {
        let name = b.kind.name();
        let (bo, fo, ro) = (&b.outcome, &f.outcome, &r.outcome);
        // The mitigations change no step and no decision.
        assert_eq!(
            (bo.sums.steps, bo.wall_s, bo.pauses),
            (fo.sums.steps, fo.wall_s, fo.pauses),
            "{name}"
        );
        assert_eq!(
            (bo.sums.steps, bo.wall_s),
            (ro.sums.steps, ro.wall_s),
            "{name}"
        );
        let filler = fo.power.floor_facility_j;
        assert!(filler > 0.0, "{name}: the 60 % floor never binds");
        assert!(
            rel(fo.totals.facility_j - bo.totals.facility_j, filler) < 1e-6,
            "{name}"
        );
        assert!(
            rel(
                fo.totals.co2_kg - bo.totals.co2_kg,
                fo.power.mitigation_co2_kg
            ) < 1e-6,
            "{name}"
        );
        // The filler's area in the drawn waveform, at each row's PUE.
        let area: f64 = rows_of(&floor, f)
            .iter()
            .filter(|w| w.filler_w > 0.0)
            .map(|w| w.filler_w * (w.facility_w / (w.facility_w - w.cooling_w)) * (w.end_s - w.t_s))
            .sum();
        assert!(rel(area, filler) < 1e-9, "{name}: area {area} vs {filler}");
        assert_eq!(bo.power.floor_facility_j, 0.0);
        let tri = ro.power.ramp_facility_j;
        assert!(
            rel(ro.totals.facility_j - bo.totals.facility_j, tri) < 1e-6
                || tri == 0.0 && ro.totals.facility_j == bo.totals.facility_j,
            "{name}"
        );
        if bo.mode_s[2] > 0.0 {
            assert!(tri > 0.0, "{name} pauses or resumes but draws no ramp");
            ramped += 1;
        }
    }
    assert!(
        ramped > 0,
        "no strategy paused or resumed: the ramp limit went untested"
    );
}

/// A setup of 1000 GPUs (100 W idle, 1000 W full), no node or network power, PUE 1.
fn bare_setup() -> RunSetup {
    RunSetup {
        eval: None,
        checkpoint_s: 10.0,
        restore_s: 10.0,
        gpu_full_w: 1000.0,
        gpus: 1000.0,
        block_steps: 256,
        ..super::test_setup::bare_setup(super::test_setup::knobs(1000.0, 1, 1))
    }
}

/// A 1 s step: 0.8 s compute at 700 kW, 0.2 s gradient sync at 200 kW.
fn two_phase_step() -> StepCost {
    let mut ph = StepPhases::default();
    ph.time_s[0] = 0.8;
    ph.gpu_j[0] = 0.8 * 700e3;
    ph.time_s[2] = 0.2;
    ph.gpu_j[2] = 0.2 * 200e3;
    assert_eq!(PHASES, 5);
    StepCost {
        time_s: 1.0,
        gpu_energy_j: 0.8 * 700e3 + 0.2 * 200e3,
        phases: ph,
        ..Default::default()
    }
}

#[test]
fn ramp_statistics_of_a_hand_built_waveform_match_a_brute_force_walk() {
    let setup = bare_setup();
    let c = two_phase_step();
    let idle = Power {
        gpu_w: 100e3,
        waiting_w: 100e3,
        node_w: 0.0,
        network_w: 0.0,
    };
    let run = |setup: &RunSetup| {
        let mut t = PowerTrack::new(setup);
        t.steps(0.0, &c, 100, setup, 1.0, 0.0);
        t.held(100.0, "checkpoint", idle, 1.0, 0.0);
        t.held(110.0, "paused", Power::default(), 1.0, 0.0);
        t.held(3710.0, "restore", idle, 1.0, 0.0);
        t.steps(3720.0, &c, 50, setup, 1.0, 0.0);
        t.finish(3770.0)
    };
    let o = run(&setup);
    // The same waveform piece by piece: (power [W], duration [s], step index or none).
    let mut pieces: Vec<(f64, f64, Option<usize>)> = Vec::new();
    let mut step = 0;
    let mut steps = |pieces: &mut Vec<_>, n: usize| {
        for _ in 0..n {
            pieces.push((700e3, 0.8, Some(step)));
            pieces.push((200e3, 0.2, Some(step)));
            step += 1;
        }
    };
    steps(&mut pieces, 100);
    pieces.extend([
        (100e3, 10.0, None),
        (0.0, 3600.0, None),
        (100e3, 10.0, None),
    ]);
    steps(&mut pieces, 50);
    let (mut max_swing, mut max_rate, mut count) = (0.0f64, 0.0f64, 0.0);
    for w in pieces.windows(2) {
        let swing = (w[1].0 - w[0].0).abs();
        max_swing = max_swing.max(swing);
        max_rate = max_rate.max(swing / ((w[0].1 + w[1].1) / 2.0));
        if swing >= 0.1 * 1e6 {
            count += 1.0;
        }
    }
    let total_t: f64 = pieces.iter().map(|p| p.1).sum();
    let mean = pieces.iter().map(|p| p.0 * p.1).sum::<f64>() / total_t;
    let var: f64 = pieces.iter().map(|p| (p.0 - mean).powi(2) * p.1).sum();
    let within: f64 = (0..150)
        .map(|k| {
            let ps: Vec<_> = pieces.iter().filter(|p| p.2 == Some(k)).collect();
            let m = ps.iter().map(|p| p.0 * p.1).sum::<f64>() / ps.iter().map(|p| p.1).sum::<f64>();
            ps.iter().map(|p| (p.0 - m).powi(2) * p.1).sum::<f64>()
        })
        .sum();
    assert_eq!(o.max_swing_w, max_swing);
    assert_eq!(max_swing, 600e3);
    assert!(
        rel(o.max_ramp_w_per_s, max_rate) < 1e-12,
        "{} vs {max_rate}",
        o.max_ramp_w_per_s
    );
    assert_eq!(o.swings, count);
    assert_eq!(count, 302.0);
    assert!(
        rel(o.step_variance_share, within / var) < 1e-9,
        "{} vs {}",
        o.step_variance_share,
        within / var
    );
    assert_eq!(o.threshold_w, 0.1e6);
    assert_eq!((o.ramp_facility_j, o.floor_facility_j), (0.0, 0.0));

    // A 0.1 MW/s ramp limit: the four state changes ramp (600 → 100 → 0 → 100 → 600 kW at the
    // steps' mean level), each a triangle ΔP²/2R; within-step swings stay as they are.
    let mut limited = bare_setup();
    limited.power.ramp_limit_w_per_s = Some(0.1e6);
    let o = run(&limited);
    let tri = |dp: f64| dp * dp / (2.0 * 0.1e6);
    assert!(
        rel(o.ramp_facility_j, 2.0 * tri(500e3) + 2.0 * tri(100e3)) < 1e-12,
        "{}",
        o.ramp_facility_j
    );
    assert_eq!(o.max_ramp_w_per_s, 1e6);

    // A 50 % floor: the 200 kW gradient sync is topped up to 500 kW for 0.2 s of each of 150 steps.
    let mut floored = bare_setup();
    floored.power.floor_fraction = Some(0.5);
    let o = run(&floored);
    assert!(
        rel(o.floor_facility_j, 150.0 * 0.2 * 300e3) < 1e-12,
        "{}",
        o.floor_facility_j
    );
    assert_eq!(
        o.max_swing_w, 600e3,
        "restore → compute is still the largest swing"
    );
}

#[test]
fn a_window_keeps_only_the_segments_it_overlaps() {
    let mut setup = bare_setup();
    setup.power.window_s = Some((50.0, 50.5));
    let c = two_phase_step();
    let mut t = PowerTrack::new(&setup);
    t.steps(0.0, &c, 100, &setup, 1.0, 0.0);
    t.held(100.0, "checkpoint", Power::default(), 1.0, 0.0);
    let o = t.finish(110.0);
    assert_eq!(o.segments.len(), 1);
    let rows = waveform_rows(&o, |_| 1.0, 3600.0, 100).unwrap();
    // Step 50's compute phase, cut at the window's end.
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].t_s, rows[0].end_s, rows[0].phase),
        (50.0, 50.5, "compute")
    );
    assert_eq!(rows[0].facility_w, 700e3);
    // Too many rows for the cap: an error naming the flag.
    let e = waveform_rows(&o, |_| 1.0, 3600.0, 0).unwrap_err();
    assert!(e.to_string().contains("--waveform"), "{e}");
}
