//! The `moesim` command line end to end: runs, outputs, and one clear error per kind of bad input.

mod common;
use common::{moesim, text};
use std::path::{Path, PathBuf};

fn scenario_text(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("scenarios")
            .join(name),
    )
    .unwrap()
}

/// Write `body` as a scenario into a temp dir and return (dir, path).
fn write_scenario(body: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.toml");
    std::fs::write(&p, body).unwrap();
    (dir, p)
}

/// Run a mutated single_node scenario and return (exit code, stderr).
fn run_mutated(from: &str, to: &str) -> (i32, String) {
    run_mutated_with(from, to, "")
}

/// As `run_mutated`, with `tail` appended to the file (for new tables).
fn run_mutated_with(from: &str, to: &str, tail: &str) -> (i32, String) {
    let base = scenario_text("single_node.toml");
    assert!(
        base.contains(from),
        "mutation anchor `{from}` not in single_node.toml"
    );
    let (dir, p) = write_scenario(&(base.replacen(from, to, 1) + tail));
    let out = dir.path().join("out");
    let o = moesim(&["run", p.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    (o.status.code().unwrap_or(-1), text(&o).1)
}

#[test]
fn single_node_runs_and_writes_summary_and_timeline() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o");
    let o = moesim(&[
        "run",
        "scenarios/single_node.toml",
        "--out",
        out.to_str().unwrap(),
    ]);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stderr}");
    for needle in [
        "energy facility",
        "CO2e",
        "wall-clock",
        "GPU-hours",
        "dense",
        "moe",
        "circadian",
        "estimated loss",
    ] {
        assert!(stdout.contains(needle), "table lacks {needle}:\n{stdout}");
    }
    let summary = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    assert_eq!(summary.lines().count(), 4, "{summary}");
    assert!(summary.starts_with("strategy,model,"));
    let timeline = std::fs::read_to_string(out.join("timeline.csv")).unwrap();
    assert!(timeline.lines().count() > 3);
    assert!(timeline
        .lines()
        .next()
        .unwrap()
        .contains("ci_g_per_kwh,price_per_mwh,mode"));
}

#[test]
fn json_format_prints_the_summary() {
    let dir = tempfile::tempdir().unwrap();
    let o = moesim(&[
        "run",
        "scenarios/single_node.toml",
        "--out",
        dir.path().to_str().unwrap(),
        "--format",
        "json",
    ]);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["strategies"].as_array().map(|a| a.len()), Some(3));
    assert!(v["strategies"][1]["energy_facility_kwh"].as_f64().unwrap() > 0.0);
}

#[test]
fn same_scenario_gives_byte_identical_outputs() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    for d in [&a, &b] {
        let o = moesim(&[
            "run",
            "scenarios/single_node.toml",
            "--out",
            d.path().to_str().unwrap(),
        ]);
        assert!(o.status.success());
    }
    for f in ["summary.csv", "timeline.csv"] {
        assert_eq!(
            std::fs::read(a.path().join(f)).unwrap(),
            std::fs::read(b.path().join(f)).unwrap(),
            "{f} differs"
        );
    }
}

#[test]
fn hardware_list_and_show_print_presets_with_sources() {
    let o = moesim(&["hardware", "list"]);
    let (stdout, _) = text(&o);
    assert!(o.status.success());
    for k in ["h100", "h200", "a100", "v100", "b200", "tpu-v3", "tpu-v4"] {
        assert!(stdout.contains(k), "list lacks {k}");
    }
    let o = moesim(&["hardware", "show", "h100"]);
    let (stdout, _) = text(&o);
    assert!(o.status.success());
    assert!(stdout.to_lowercase().contains("source"), "{stdout}");
    let o = moesim(&["hardware", "show", "h900"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).1.contains("h100"), "error should list valid keys");
}

#[test]
fn unknown_key_names_line_and_key() {
    let (code, err) = run_mutated("pue = 1.3", "pue = 1.3\npeu = 1.4");
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("bad.toml:") && err.contains("unknown field `peu`"),
        "{err}"
    );
    assert!(err.contains("bad.toml:13:1"), "line missing: {err}");
}

#[test]
fn wrong_type_names_line_and_column() {
    let (code, err) = run_mutated("gpus = 8", "gpus = \"eight\"");
    assert_eq!(code, 2);
    assert!(
        err.contains("bad.toml:10:8") && err.contains("expected an integer"),
        "{err}"
    );
}

#[test]
fn missing_field_is_named() {
    let (code, err) = run_mutated("pue = 1.3\n", "");
    assert_eq!(code, 2);
    assert!(err.contains("missing field `pue`"), "{err}");
}

#[test]
fn zero_or_negative_counts_are_refused() {
    let (code, err) = run_mutated("layers = 12", "layers = 0");
    assert_eq!(code, 2);
    assert!(
        err.contains("`models.moe.layers`") && err.contains("positive integer"),
        "{err}"
    );
    let (code, err) = run_mutated("gpus = 8", "gpus = -8");
    assert_eq!(code, 2);
    assert!(
        err.contains("`cluster.gpus`") && err.contains("bad.toml:10:"),
        "{err}"
    );
}

#[test]
fn top_k_above_experts_says_what_is_valid() {
    let (code, err) = run_mutated("top_k = 2", "top_k = 9");
    assert_eq!(code, 2);
    assert!(
        err.contains("`models.moe.top_k`") && err.contains("1..=8"),
        "{err}"
    );
}

#[test]
fn batch_that_does_not_divide_suggests_valid_values() {
    let (code, err) = run_mutated("global_batch_seqs = 256", "global_batch_seqs = 260");
    assert_eq!(code, 2);
    assert!(
        err.contains("parallel.") && err.contains("260") && err.contains("256"),
        "{err}"
    );
}

#[test]
fn plan_that_does_not_fit_says_by_how_much() {
    let (code, err) = run_mutated("d_model = 1024\nheads = 16\nseq_len = 1024\nvocab = 32000\nffn_hidden = 2816\nexperts = 8", "d_model = 16384\nheads = 16\nseq_len = 1024\nvocab = 32000\nffn_hidden = 65536\nexperts = 8");
    assert_eq!(code, 2);
    assert!(
        err.contains("`parallel.moe`") && err.contains("GiB"),
        "{err}"
    );
}

#[test]
fn unreadable_grid_file_names_the_file() {
    let (code, err) = run_mutated_with(
        "source = \"profile\"",
        "source = \"csv\"",
        "\n[grid.csv]\npath = \"nope.csv\"\ntime_column = \"timestamp\"\ntime_zone = \"UTC\"\nstamp = \"start\"\nci_column = \"avg_CI\"\nci_kind = \"average\"\nmax_gap_intervals = 2\nwrap_years = true",
    );
    assert_eq!(code, 2);
    assert!(err.contains("nope.csv"), "{err}");
}

#[test]
fn malformed_grid_file_names_row_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("g.csv");
    std::fs::write(
        &csv,
        "timestamp,avg_CI\n2022-07-01T00:00:00+00:00,100\n2022-07-01T01:00:00+00:00,abc\n",
    )
    .unwrap();
    let (code, err) = run_mutated_with(
        "source = \"profile\"",
        "source = \"csv\"",
        &format!(
            "\n[grid.csv]\npath = \"{}\"\ntime_column = \"timestamp\"\ntime_zone = \"UTC\"\nstamp = \"start\"\nci_column = \"avg_CI\"\nci_kind = \"average\"\nmax_gap_intervals = 2\nwrap_years = true",
            csv.display()
        ),
    );
    assert_eq!(code, 2);
    assert!(
        err.contains("g.csv") && err.contains("abc") && err.contains('3'),
        "{err}"
    );
}

#[test]
fn unknown_strategy_lists_the_valid_ones() {
    let (code, err) = run_mutated(
        "strategies = [\"dense\", \"moe\", \"circadian\"]",
        "strategies = [\"dense\", \"sparse\"]",
    );
    assert_eq!(code, 2);
    assert!(
        err.contains("`strategies.1`") && err.contains("dense, moe, circadian"),
        "{err}"
    );
}

#[test]
fn bad_flag_is_a_usage_error() {
    let o = moesim(&["run", "--format", "yaml"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).1.contains("table"), "should list valid formats");
}
