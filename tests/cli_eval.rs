//! `[training.eval]` end to end: a run's summary.csv and console table show the evaluations it
//! was charged for, and a bad table is refused with its file, line and what is valid.

mod common;
use common::{moesim, summary_value, text};

/// single_node with `body` as its `[training.eval]` table, written into `dir`.
fn scenario_with_eval(dir: &std::path::Path, body: &str) -> std::path::PathBuf {
    let s = std::fs::read_to_string("scenarios/single_node.toml")
        .unwrap()
        .replacen("tokens = 1.0e9", "tokens = 2.0e8", 1)
        .replacen(
            "\n[models.moe]",
            &format!("\n[training.eval]\n{body}\n\n[models.moe]"),
            1,
        );
    assert!(s.contains("[training.eval]"));
    let path = dir.join("eval.toml");
    std::fs::write(&path, s).unwrap();
    path
}

#[test]
fn a_run_with_evaluations_reports_them_in_summary_csv_and_the_table() {
    let dir = tempfile::tempdir().unwrap();
    let path = scenario_with_eval(dir.path(), "every_steps = 100\nseqs = 512");
    let out = dir.path().join("out");
    let o = moesim(&[
        "run",
        path.to_str().unwrap(),
        "--no-samples",
        "--no-plots",
        "--out",
        out.to_str().unwrap(),
    ]);
    let (so, se) = text(&o);
    assert!(o.status.success(), "{so}\n{se}");
    assert!(so.contains("evaluations: count, time, energy"), "{so}");
    let csv = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    for s in ["moe", "dense"] {
        let (n, h, kwh) = (
            summary_value(&csv, s, "evaluations"),
            summary_value(&csv, s, "hours_eval"),
            summary_value(&csv, s, "eval_kwh"),
        );
        assert!(n >= 1.0 && h > 0.0 && kwh > 0.0, "{s}: {n} {h} {kwh}");
        // Inside the run's totals.
        assert!(h < summary_value(&csv, s, "wall_clock_h"), "{s}");
        assert!(kwh < summary_value(&csv, s, "energy_facility_kwh"), "{s}");
    }
}

#[test]
fn a_bad_eval_table_is_bad_input_naming_the_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = scenario_with_eval(dir.path(), "every_steps = 0\nseqs = 512");
    let o = moesim(&["run", path.to_str().unwrap(), "--no-samples", "--no-plots"]);
    let (_, se) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{se}");
    assert!(
        se.contains("eval.toml:25")
            && se.contains("training.eval.every_steps")
            && se.contains(">= 1"),
        "{se}"
    );
}
