//! `moesim validate` and `moesim calibrate` end to end: exit codes, the accuracy table, preset files.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn moesim(args: &[&str]) -> Output {
    match Command::new(env!("CARGO_BIN_EXE_moesim"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
    {
        Ok(o) => o,
        Err(e) => panic!("cannot start moesim: {e}"),
    }
}

fn out(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn h100_data() -> PathBuf {
    let a = root().join("../shared/data/h100");
    if a.is_dir() {
        a
    } else {
        root().join("../../shared/data/h100")
    }
}

/// A one-node case with a published figure `days` and a tolerance.
fn small_case(dir: &Path, days: f64, tolerance: f64) -> PathBuf {
    let base = std::fs::read_to_string(root().join("scenarios/single_node.toml")).expect("read");
    let text = base.replace(
        "strategies = [\"dense\", \"moe\", \"circadian\"]",
        "strategies = [\"dense\"]",
    ) + &format!(
        "\n[validation]\ncase = \"small\"\nsources = [\"test\"]\nutilisation = \"inferred\"\ntolerance = {tolerance}\nnote = \"test case\"\n[validation.published]\ndays = {days}\n"
    );
    let p = dir.join("small.toml");
    std::fs::write(&p, text).expect("write");
    p
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

// Exit code 0 when every figure is within tolerance, 1 when one is out, and the table says which.
#[test]
fn exit_code_follows_the_tolerance() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The one-node run takes well under a day: against a published 0.5 days its error lies in
    // (-100 %, +100 %), inside ±500 %.
    small_case(dir.path(), 0.5, 5.0);
    let o = moesim(&["validate", "--no-h100", "--cases", s(dir.path())]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    assert!(out(&o).contains("| small | days |"), "{}", out(&o));
    // 1000 days at ±25 % cannot hold for a run of hours.
    small_case(dir.path(), 1000.0, 0.25);
    let o = moesim(&["validate", "--no-h100", "--cases", s(dir.path())]);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    assert!(
        out(&o).contains("OUT") && out(&o).contains("test case"),
        "{}",
        out(&o)
    );
}

// A bad [validation] table is bad input (exit 2) naming the file and the key.
#[test]
fn bad_validation_table_is_exit_two() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = small_case(dir.path(), 1.0, 0.25);
    let t = std::fs::read_to_string(&p)
        .expect("read")
        .replace("days = 1", "weeks = 1");
    std::fs::write(&p, t).expect("write");
    let o = moesim(&["validate", "--no-h100", "--cases", s(dir.path())]);
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
    assert!(
        out(&o).contains("small.toml") && out(&o).contains("weeks"),
        "{}",
        out(&o)
    );
}

// The GPT-3 case (Patterson et al. 2021, Table 4) stays within its ±25 %: a regression guard on
// the dense V100 path. It is the fastest of the published cases.
#[test]
fn gpt3_case_within_tolerance() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy(
        root().join("scenarios/validation/patterson_gpt3.toml"),
        dir.path().join("patterson_gpt3.toml"),
    )
    .expect("copy");
    let md = dir.path().join("acc.md");
    let o = moesim(&[
        "validate",
        "--no-h100",
        "--cases",
        s(dir.path()),
        "--markdown",
        s(&md),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    let table = std::fs::read_to_string(&md).expect("markdown written");
    assert!(
        table.contains("| GPT-3 175B, 10k V100 | energy MWh | 1287 |"),
        "{table}"
    );
    assert!(table.contains("3 of 3 figures within tolerance"), "{table}");
}

// Every shipped case file parses as a scenario (its [validation] table does not upset `check`).
#[test]
fn shipped_cases_pass_check() {
    let dir = root().join("scenarios/validation");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).expect("scenarios/validation") {
        let p = e.expect("entry").path();
        let name = p
            .file_name()
            .and_then(|f| f.to_str())
            .unwrap_or("")
            .to_string();
        if p.extension().is_some_and(|x| x == "toml") && name != "h800.toml" {
            let o = moesim(&["check", s(&p)]);
            assert_eq!(o.status.code(), Some(0), "{name}: {}", out(&o));
            n += 1;
        }
    }
    assert!(n >= 7, "expected at least 7 cases, found {n}");
}

// calibrate writes a preset file that a scenario can use through cluster.gpu_file, and prints residuals.
#[test]
fn calibrate_writes_a_usable_preset() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = h100_data();
    let preset = dir.path().join("my_gpu.toml");
    let o = moesim(&[
        "calibrate",
        "--micro",
        s(&d.join("micro.csv")),
        "--attn",
        s(&d.join("attn.csv")),
        "--moe",
        s(&d.join("moe_layer.csv")),
        "--base",
        "h100",
        "--out",
        s(&preset),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    assert!(out(&o).contains("residuals") && out(&o).contains("gemm_bf16 8192x8192x8192"));
    let base = std::fs::read_to_string(root().join("scenarios/single_node.toml")).expect("read");
    let sc = dir.path().join("s.toml");
    std::fs::write(
        &sc,
        base.replace("gpu = \"h100\"", "gpu_file = \"my_gpu.toml\""),
    )
    .expect("write");
    let o = moesim(&["run", s(&sc), "--out", s(&dir.path().join("o"))]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    // Both keys at once is bad input naming the key.
    std::fs::write(
        &sc,
        base.replace(
            "gpu = \"h100\"",
            "gpu = \"h100\"\ngpu_file = \"my_gpu.toml\"",
        ),
    )
    .expect("write");
    let o = moesim(&["check", s(&sc)]);
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
    assert!(out(&o).contains("cluster.gpu_file"), "{}", out(&o));
    // A bad calibration file is bad input.
    let o = moesim(&[
        "calibrate",
        "--micro",
        "/nonexistent.csv",
        "--base",
        "h100",
        "--out",
        s(&preset),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
}
