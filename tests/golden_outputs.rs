//! Shipped scenarios' outputs held value for value: a refactor must not move a number.
//!
//! The golden files in `tests/golden/<scenario>/` were written by `moesim run <scenario> --no-plots`.
//! A change that *means* to move numbers (new physics) regenerates them with
//! `MOESIM_BLESS=1 cargo test --test golden_outputs` and says why in its commit.
//!
//! Each scenario is held twice: as `moesim run` writes it (steps advanced in blocks, one routing
//! sample per block) in `tests/golden/<scenario>/`, and with `--exact` (every step priced) in
//! `tests/golden/<scenario>/exact/`. The `exact/` files were first written by the per-step run
//! before step aggregation existed, so they also hold `--exact` to the previous method byte for byte.

use std::path::Path;
use std::process::Command;

const FILES: [&str; 2] = ["summary.csv", "timeline.csv"];

fn check(scenario: &str) {
    check_with(scenario, false);
}

fn check_with(scenario: &str, exact: bool) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => panic!("cannot make a temp dir: {e}"),
    };
    let out = dir.path().join("out");
    let o = match Command::new(env!("CARGO_BIN_EXE_moesim"))
        .args([
            "run",
            &format!("scenarios/{scenario}.toml"),
            "--no-plots",
            "--out",
        ])
        .arg(&out)
        .args(exact.then_some("--exact"))
        .current_dir(root)
        .output()
    {
        Ok(o) => o,
        Err(e) => panic!("cannot start moesim: {e}"),
    };
    assert!(
        o.status.success(),
        "{scenario}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    // A scenario with schedules over progress names them per strategy in run_info.json (the
    // report's list of inputs); one without has none.
    let info = std::fs::read_to_string(out.join("run_info.json")).unwrap_or_default();
    let info: serde_json::Value = serde_json::from_str(&info).unwrap_or_default();
    let schedules = info["schedules"].as_array().map_or(0, |a| a.len());
    let scheduled = ["curriculum_gating", "expert_growth", "batch_warmup"].contains(&scenario);
    assert_eq!(
        schedules > 0,
        scheduled,
        "{scenario}: schedules {}",
        info["schedules"]
    );
    let mut golden = root.join("tests/golden").join(scenario);
    if exact {
        golden.push("exact");
    }
    for f in FILES {
        let got = std::fs::read_to_string(out.join(f)).unwrap_or_default();
        let path = golden.join(f);
        if std::env::var_os("MOESIM_BLESS").is_some() {
            std::fs::create_dir_all(&golden).expect("create golden dir");
            std::fs::write(&path, &got).expect("write golden file");
            continue;
        }
        let want = std::fs::read_to_string(&path).unwrap_or_default();
        if got != want {
            let line = got
                .lines()
                .zip(want.lines())
                .position(|(a, b)| a != b)
                .unwrap_or(got.lines().count().min(want.lines().count()));
            panic!(
                "{scenario}/{f} differs from {} at line {}:\n got: {}\nwant: {}",
                path.display(),
                line + 1,
                got.lines().nth(line).unwrap_or("<end>"),
                want.lines().nth(line).unwrap_or("<end>")
            );
        }
    }
}

#[test]
fn seed_comparison_outputs_unchanged() {
    check("seed_comparison");
}

#[test]
fn seed_comparison_exact_outputs_unchanged() {
    check_with("seed_comparison", true);
}

#[test]
fn single_node_outputs_unchanged() {
    check("single_node");
}

#[test]
fn single_node_exact_outputs_unchanged() {
    check_with("single_node", true);
}

#[test]
fn curriculum_gating_outputs_unchanged() {
    check("curriculum_gating");
}

#[test]
fn expert_growth_outputs_unchanged() {
    check("expert_growth");
}

#[test]
fn batch_warmup_outputs_unchanged() {
    check("batch_warmup");
}

#[test]
fn trace_replay_outputs_unchanged() {
    // Reads the recorded routing trace from ../shared/data/routing (CI has ../shared beside the clone).
    check("trace_replay");
}

#[test]
fn trace_replay_exact_outputs_unchanged() {
    check_with("trace_replay", true);
}

#[test]
fn real_grid_ciso_outputs_unchanged() {
    // Reads the EIA-930 series and the San Jose weather file from ../shared/data/grid.
    check("real_grid_ciso");
}

#[test]
fn real_grid_ciso_exact_outputs_unchanged() {
    check_with("real_grid_ciso", true);
}

#[test]
fn marginal_carbon_outputs_unchanged() {
    // Reads the PJM EIA-930 series from ../shared/data/grid and estimates its marginal factors.
    check("marginal_carbon");
}

#[test]
fn marginal_carbon_exact_outputs_unchanged() {
    check_with("marginal_carbon", true);
}

#[test]
fn carbon_price_outputs_unchanged() {
    // Reads the CISO EIA-930 series and the San Jose weather from ../shared/data/grid, and
    // data/caiso_flex_alerts_2022.csv (the [cost] table's hints).
    check("carbon_price");
}
