//! Shipped scenarios' outputs held value for value: a refactor must not move a number.
//!
//! The golden files in `tests/golden/<scenario>/` were written by `moesim run <scenario> --no-plots`.
//! A change that *means* to move numbers (new physics) regenerates them with
//! `MOESIM_BLESS=1 cargo test --test golden_outputs` and says why in its commit.

use std::path::Path;
use std::process::Command;

const FILES: [&str; 2] = ["summary.csv", "timeline.csv"];

fn check(scenario: &str) {
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
    let golden = root.join("tests/golden").join(scenario);
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
fn single_node_outputs_unchanged() {
    check("single_node");
}

#[test]
fn trace_replay_outputs_unchanged() {
    // Reads the recorded routing trace from ../shared/data/routing (CI has ../shared beside the clone).
    check("trace_replay");
}

#[test]
fn real_grid_ciso_outputs_unchanged() {
    // Reads the EIA-930 series and the San Jose weather file from ../shared/data/grid.
    check("real_grid_ciso");
}

#[test]
fn marginal_carbon_outputs_unchanged() {
    // Reads the PJM EIA-930 series from ../shared/data/grid and estimates its marginal factors.
    check("marginal_carbon");
}

#[test]
fn carbon_price_outputs_unchanged() {
    // Reads the CISO EIA-930 series and the San Jose weather from ../shared/data/grid, and
    // data/caiso_flex_alerts_2022.csv (the [cost] table's hints).
    check("carbon_price");
}
