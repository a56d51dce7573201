//! The shipped trace-replay scenario gives byte-identical outputs from its CSV trace and from the same
//! trace converted by `moesim trace convert` to the binary format (and back to CSV).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn moesim(args: &[&str], cwd: &Path) -> Output {
    match Command::new(env!("CARGO_BIN_EXE_moesim"))
        .args(args)
        .current_dir(cwd)
        .output()
    {
        Ok(o) => o,
        Err(e) => panic!("cannot start moesim: {e}"),
    }
}

fn ok(o: &Output, what: &str) {
    assert!(
        o.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Run scenarios/trace_replay.toml with its trace at `trace`; the outputs with the trace's path
/// (it appears in the routing description) written as `TRACE`.
fn run_with(root: &Path, dir: &Path, name: &str, trace: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(root.join("scenarios/trace_replay.toml")).unwrap();
    let line = "trace = \"../../shared/data/routing/routing_moe16top2_noaux.csv\"";
    assert!(text.contains(line), "trace_replay.toml has no '{line}'");
    let shown = trace.display().to_string();
    let text = text.replacen(line, &format!("trace = {shown:?}"), 1);
    let scenario = dir.join(format!("{name}.toml"));
    std::fs::write(&scenario, text).unwrap();
    let out = dir.join(name);
    let o = moesim(
        &[
            "run",
            &scenario.display().to_string(),
            "--no-plots",
            "--out",
            &out.display().to_string(),
        ],
        root,
    );
    ok(&o, name);
    ["summary.csv", "timeline.csv"]
        .iter()
        .map(|f| {
            std::fs::read_to_string(out.join(f))
                .unwrap()
                .replace(&shown, "TRACE")
        })
        .collect()
}

#[test]
fn csv_and_binary_traces_give_byte_identical_run_outputs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let csv: PathBuf = root.join("../shared/data/routing/routing_moe16top2_noaux.csv");
    let bin = dir.path().join("noaux.moetrace");
    let back = dir.path().join("noaux_back.csv");
    for (from, to) in [(&csv, &bin), (&bin, &back)] {
        let o = moesim(
            &[
                "trace",
                "convert",
                &from.display().to_string(),
                &to.display().to_string(),
            ],
            root,
        );
        ok(&o, "trace convert");
    }
    let a = run_with(root, dir.path(), "csv", &csv);
    let b = run_with(root, dir.path(), "binary", &bin);
    let c = run_with(root, dir.path(), "back", &back);
    assert!(a[0].contains("trace TRACE (400 steps × 8 layers × 16 experts)"));
    assert!(a[1].lines().count() > 1);
    assert_eq!(a, b, "binary trace: outputs differ from the CSV trace's");
    assert_eq!(a, c, "converted back to CSV: outputs differ");
}

#[test]
fn a_bad_binary_trace_is_an_input_error_naming_the_file() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.moetrace");
    std::fs::write(&bad, b"MOETRACE\x01\x00\x00\x00").unwrap();
    let o = moesim(&["trace", "replay", &bad.display().to_string()], root);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("bad.moetrace") && err.contains("32-byte header"),
        "{err}"
    );
}
