//! Plans too large to run are refused up front, naming the numbers and the key that overrides them;
//! `moesim check` opens every file `run` would and prints the plan's size.

use std::path::Path;
use std::process::Command;

/// Run moesim with `args` from the crate root; (exit code, stdout, stderr).
fn moesim(args: &[&str]) -> (i32, String, String) {
    match Command::new(env!("CARGO_BIN_EXE_moesim"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
    {
        Ok(o) => (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        ),
        Err(e) => panic!("cannot start moesim: {e}"),
    }
}

/// Write `name` from scenarios/ with `from` replaced by `to` (and `tail` appended) into a temp dir;
/// returns (dir, path).
fn mutated(name: &str, from: &str, to: &str, tail: &str) -> (tempfile::TempDir, String) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("scenarios").join(name)).expect("scenario");
    assert!(text.contains(from), "anchor `{from}` not in {name}");
    let dir = tempfile::tempdir().expect("temp dir");
    let p = dir.path().join(name);
    // The shipped files reach ../shared relative to scenarios/; from the temp dir, name it absolutely.
    let shared = root.join("..").join("shared").display().to_string();
    let text = text.replacen(from, to, 1).replace("../../shared", &shared) + tail;
    std::fs::write(&p, text).expect("write scenario");
    (dir, p.display().to_string())
}

#[test]
fn huge_token_budget_is_refused_before_allocating_naming_steps_and_the_override() {
    // tokens = 1e19 once aborted on a 41 GB grid allocation.
    let (_d, p) = mutated("single_node.toml", "tokens = 1.0e9", "tokens = 1.0e19", "");
    for cmd in ["run", "check"] {
        let (code, _, err) = moesim(&[cmd, &p, "--no-plots"][..if cmd == "run" { 3 } else { 2 }]);
        assert_eq!(code, 2, "{cmd}: {err}");
        assert!(err.contains("steps"), "{cmd}: {err}");
        assert!(err.contains("limits.max_steps"), "{cmd}: {err}");
    }
}

#[test]
fn raising_the_limit_lets_a_plan_through_and_lowering_it_refuses() {
    let (_d, p) = mutated(
        "single_node.toml",
        "tokens = 1.0e9",
        "tokens = 1.0e9",
        "\n[limits]\nmax_steps = 10\n",
    );
    let (code, _, err) = moesim(&["check", &p]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("over limits.max_steps = 1e1"), "{err}");
    let (_d2, p2) = mutated(
        "single_node.toml",
        "tokens = 1.0e9",
        "tokens = 1.0e9",
        "\n[limits]\nmax_steps = 1e9\nmax_simulated_years = 1\n",
    );
    let (code, out, err) = moesim(&["check", &p2]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("steps"), "{out}");
}

#[test]
fn simulated_years_over_the_limit_name_the_key() {
    let (_d, p) = mutated(
        "single_node.toml",
        "tokens = 1.0e9",
        "tokens = 1.0e9",
        "\n[limits]\nmax_simulated_years = 0.0001\n",
    );
    let (code, _, err) = moesim(&["check", &p]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("limits.max_simulated_years"), "{err}");
}

#[test]
fn absurd_deadline_names_its_key_not_an_integer_range() {
    let (_d, p) = mutated(
        "single_node.toml",
        "deadline_hours = 24",
        "deadline_hours = 1e308",
        "",
    );
    let (code, _, err) = moesim(&["check", &p]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("strategy.circadian.deadline_hours"), "{err}");
    assert!(!err.contains("i64"), "{err}");
}

#[test]
fn restore_longer_than_the_deadline_names_its_key() {
    let (_d, p) = mutated("single_node.toml", "restore_s = 60", "restore_s = 1e19", "");
    let (code, _, err) = moesim(&["check", &p]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("strategy.circadian.restore_s"), "{err}");
    assert!(err.contains("deadline"), "{err}");
}

#[test]
fn bad_limit_value_is_an_input_error() {
    let (_d, p) = mutated(
        "single_node.toml",
        "tokens = 1.0e9",
        "tokens = 1.0e9",
        "\n[limits]\nmax_steps = -1\n",
    );
    let (code, _, err) = moesim(&["check", &p]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("limits.max_steps"), "{err}");
}

#[test]
fn check_prints_the_plan_size() {
    let (code, out, err) = moesim(&["check", "scenarios/seed_comparison.toml"]);
    assert_eq!(code, 0, "{err}");
    for want in [
        "dense",
        "moe",
        "circadian",
        "steps",
        "GiB per GPU",
        "timeline rows",
    ] {
        assert!(out.contains(want), "missing `{want}` in:\n{out}");
    }
}

#[test]
fn check_opens_the_grid_file() {
    // `check` once said "ok" for a grid file that does not exist.
    let (_d, p) = mutated(
        "real_grid_ciso.toml",
        "path = \"../../shared/data/grid/us_eia_2022/CISO.csv\"",
        "path = \"no/such/grid.csv\"",
        "",
    );
    let (code, _, err) = moesim(&["check", &p]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no/such/grid.csv"), "{err}");
}

#[test]
fn check_opens_the_weather_file() {
    let (_d, p) = mutated(
        "real_grid_ciso.toml",
        "weather = \"../../shared/data/grid/weather_tmy/USA_CA_San.Jose-Mineta.epw\"",
        "weather = \"no/such/weather.epw\"",
        "",
    );
    let (code, _, err) = moesim(&["check", &p]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no/such/weather.epw"), "{err}");
    // A weather file's error says so, not "grid file".
    assert!(err.contains("cannot read weather file"), "{err}");
}

#[test]
fn check_opens_the_trace() {
    let (_d, p) = mutated(
        "trace_replay.toml",
        "trace = \"../../shared/data/routing/routing_moe16top2_noaux.csv\"",
        "trace = \"no/such/trace.csv\"",
        "",
    );
    let (code, _, err) = moesim(&["check", &p]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no/such/trace.csv"), "{err}");
}

#[test]
fn how_the_grid_file_was_read_is_printed_and_kept_in_run_info() {
    // The grid loader's notes (here: the flat price filling a file without prices) reach the user.
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("out");
    let (code, stdout, err) = moesim(&[
        "run",
        "scenarios/real_grid_ciso.toml",
        "--no-plots",
        "--out",
        out.to_str().expect("utf-8 path"),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(stdout.contains("grid: flat price"), "{stdout}");
    let info = std::fs::read_to_string(out.join("run_info.json")).expect("run_info.json");
    assert!(
        info.contains("\"grid_notes\"") && info.contains("flat price"),
        "{info}"
    );
}
