//! `moesim step` end to end: the fast and event-level step of a shipped scenario, its Perfetto
//! trace and layers.csv, and one clear error per kind of bad input.

mod common;
use common::{moesim, summary_value, text};

#[test]
fn step_writes_a_perfetto_trace_and_layers_csv() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("step.json");
    let out = dir.path().join("out");
    let o = moesim(&[
        "step",
        "scenarios/single_node.toml",
        "--strategy",
        "moe",
        "--step",
        "3",
        "--chrome-trace",
        trace.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let (so, se) = text(&o);
    assert!(o.status.success(), "{so}\n{se}");
    assert!(
        so.contains("fast path:") && so.contains("event level:"),
        "{so}"
    );
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&trace).unwrap()).expect("the trace is JSON");
    let ev = v["traceEvents"].as_array().unwrap();
    // 8 GPUs of one node, ep = 8: 8 simulated GPUs, a compute and a communication track each.
    let tracks: std::collections::BTreeSet<(u64, u64)> = ev
        .iter()
        .filter(|e| e["ph"] == "X")
        .map(|e| (e["pid"].as_u64().unwrap(), e["tid"].as_u64().unwrap()))
        .collect();
    assert_eq!(tracks.len(), 16, "{tracks:?}");
    let names: Vec<&str> = ev
        .iter()
        .filter(|e| e["ph"] == "M" && e["name"] == "process_name")
        .map(|e| e["args"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 8);
    assert!(ev.iter().any(|e| e["ph"] == "C" && e["name"] == "power_w"));
    assert!(ev
        .iter()
        .any(|e| e["name"] == "moe.dispatch" && e["args"]["bytes"].as_f64().unwrap() > 0.0));
    let csv = std::fs::read_to_string(out.join("layers.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("step,layer,wait_j,balanced_wait_j,skew_j")
    );
    // single_node's MoE has 12 MoE layers.
    assert_eq!(lines.count(), 12, "{csv}");
}

#[test]
fn an_unknown_strategy_is_named_with_the_valid_ones() {
    let o = moesim(&["step", "scenarios/single_node.toml", "--strategy", "sparse"]);
    let (_, se) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{se}");
    assert!(
        se.contains("--strategy `sparse`") && se.contains("dense, moe, circadian"),
        "{se}"
    );
}

#[test]
fn a_strategy_the_scenario_does_not_run_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let text_in = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/single_node.toml"),
    )
    .unwrap()
    .replace(
        "strategies = [\"dense\", \"moe\", \"circadian\"]",
        "strategies = [\"dense\"]",
    );
    let p = dir.path().join("dense_only.toml");
    std::fs::write(&p, text_in).unwrap();
    let o = moesim(&["step", p.to_str().unwrap(), "--strategy", "moe"]);
    let (_, se) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{se}");
    assert!(se.contains("lists only dense"), "{se}");
}

#[test]
fn a_step_past_the_run_is_out_of_range_with_the_valid_range() {
    let o = moesim(&["step", "scenarios/single_node.toml", "--step", "999999999"]);
    let (_, se) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{se}");
    assert!(
        se.contains("--step 999999999 is out of range") && se.contains("0 to "),
        "{se}"
    );
}

#[test]
fn a_missing_scenario_file_is_bad_input() {
    let o = moesim(&["step", "no/such/file.toml", "--event-level"]);
    let (_, se) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{se}");
    assert!(se.contains("no/such/file.toml"), "{se}");
}

#[test]
fn run_event_level_prices_every_step_at_event_level_with_the_same_outputs() {
    // A short run (5M tokens, one micro-batch per step) so the debug build does it in seconds.
    let dir = tempfile::tempdir().unwrap();
    let text_in = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/single_node.toml"),
    )
    .unwrap()
    .replace(
        "strategies = [\"dense\", \"moe\", \"circadian\"]",
        "strategies = [\"dense\", \"moe\"]",
    )
    .replace("tokens = 1.0e9", "tokens = 5.0e6")
    .replace("global_batch_seqs = 256", "global_batch_seqs = 64");
    let p = dir.path().join("short.toml");
    std::fs::write(&p, text_in).unwrap();
    let fast = dir.path().join("fast");
    let event = dir.path().join("event");
    for (out, extra) in [(&fast, None), (&event, Some("--event-level"))] {
        let mut args = vec![
            "run",
            p.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--no-plots",
        ];
        args.extend(extra);
        let o = moesim(&args);
        let (so, se) = text(&o);
        assert!(o.status.success(), "{so}\n{se}");
    }
    let a = std::fs::read_to_string(fast.join("summary.csv")).unwrap();
    let b = std::fs::read_to_string(event.join("summary.csv")).unwrap();
    assert_eq!(a.lines().next(), b.lines().next(), "same columns");
    assert_eq!(a.lines().count(), b.lines().count());
    // Both train the same tokens; the event level times each step itself, so the wall time
    // differs from the fast path's, within the same order.
    for s in ["dense", "moe"] {
        let (x, y) = (
            summary_value(&a, s, "wall_clock_h"),
            summary_value(&b, s, "wall_clock_h"),
        );
        assert!(
            x != y && (y / x - 1.0).abs() < 0.5,
            "{s}: fast {x} h, event {y} h"
        );
    }
    // The event level also writes layers.csv: per MoE strategy, grid interval and MoE layer,
    // the waiting energy and its balanced counterpart; the fast path does not.
    assert!(!fast.join("layers.csv").exists());
    let l = std::fs::read_to_string(event.join("layers.csv")).unwrap();
    let mut lines = l.lines();
    assert_eq!(
        lines.next(),
        Some("strategy,interval,interval_start_utc,layer,steps,wait_j,balanced_wait_j,skew_j")
    );
    let rows: Vec<Vec<&str>> = lines.map(|x| x.split(',').collect()).collect();
    assert!(!rows.is_empty());
    let mut steps_by_layer = std::collections::BTreeMap::new();
    for r in &rows {
        assert_eq!(r[0], "moe", "only the MoE strategy has MoE layers: {r:?}");
        let f = |i: usize| r[i].parse::<f64>().unwrap();
        assert!(f(5) > 0.0 && f(6) > 0.0, "{r:?}");
        assert!((f(7) - (f(5) - f(6))).abs() < 1e-5 * f(5), "{r:?}");
        *steps_by_layer.entry(r[3]).or_insert(0u64) += r[4].parse::<u64>().unwrap();
    }
    // Every step is logged once per MoE layer.
    let counts: Vec<u64> = steps_by_layer.values().copied().collect();
    assert!(
        counts.len() > 1 && counts.iter().all(|&c| c == counts[0] && c > 0),
        "{counts:?}"
    );
}

#[test]
fn several_steps_give_a_layer_by_step_csv_and_a_skew_heatmap() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = moesim(&[
        "step",
        "scenarios/trace_replay.toml",
        "--event-level",
        "--step",
        "5",
        "--steps",
        "3",
        "--out",
        out.to_str().unwrap(),
    ]);
    let (so, se) = text(&o);
    assert!(o.status.success(), "{so}\n{se}");
    assert_eq!(so.matches("event level:").count(), 3, "{so}");
    let csv = std::fs::read_to_string(out.join("layers.csv")).unwrap();
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    // The trace-replay model has 8 MoE layers: one row per layer and step, steps 5, 6 and 7.
    assert_eq!(rows.len(), 3 * 8, "{csv}");
    for step in ["5,", "6,", "7,"] {
        assert_eq!(
            rows.iter().filter(|r| r.starts_with(step)).count(),
            8,
            "{csv}"
        );
    }
    for f in ["skew_heatmap.png", "skew_heatmap.svg"] {
        assert!(out.join(f).is_file(), "{f} missing: {so}");
    }
}

#[test]
fn zero_steps_is_refused_naming_the_flag() {
    let o = moesim(&["step", "scenarios/trace_replay.toml", "--steps", "0"]);
    let (so, se) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{so}\n{se}");
    assert!(se.contains("--steps"), "{se}");
}

#[test]
fn the_step_completing_a_rebalancing_period_prints_its_migration_time() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = std::fs::read_to_string("scenarios/single_node.toml")
        .unwrap()
        .replacen(
            "[routing]\nmodel = \"zipf\"\nzipf_s = 0.5",
            // Loads that drift step to step, so a placement by the period's loads moves experts.
            "[routing]\nplacement = \"by_load\"\nrebalance_every_steps = 4\nmodel = \"dirichlet\"\ndirichlet_alpha = 0.5\ndrift = 0.2",
            1,
        );
    assert!(scenario.contains("rebalance_every_steps = 4"));
    let path = dir.path().join("rebalance.toml");
    std::fs::write(&path, scenario).unwrap();
    // (migration on the fast path, on the event level) of `--step step`.
    let migration = |step: &str| -> (f64, f64) {
        let o = moesim(&[
            "step",
            path.to_str().unwrap(),
            "--strategy",
            "moe",
            "--step",
            step,
            "--event-level",
            "--out",
            dir.path().join("out").to_str().unwrap(),
        ]);
        let (so, se) = text(&o);
        assert!(o.status.success(), "{so}\n{se}");
        let after = |line: &str| -> f64 {
            let l = so.lines().find(|l| l.contains(line)).expect(line);
            let rest = &l[l.find("migration").expect("migration printed") + "migration".len()..];
            rest.split_whitespace().next().unwrap().parse().unwrap()
        };
        (after("fast path:"), after("event level:"))
    };
    // Step 3 completes the first period of 4 steps (0..=3): the experts move after it.
    let (fast, event) = migration("3");
    assert!(fast > 0.0 && event > 0.0, "{fast} {event}");
    let (fast, event) = migration("2");
    assert_eq!((fast, event), (0.0, 0.0));
}
