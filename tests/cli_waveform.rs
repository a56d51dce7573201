//! `moesim run --waveform START..END`: waveform.csv and its plot, and the flag's errors.

mod common;
use common::moesim;

/// `moesim run scenarios/single_node.toml --waveform WINDOW --no-samples` into `out`, with `more` flags.
fn run_with_waveform(out: &std::path::Path, window: &str, more: &[&str]) -> std::process::Output {
    let out = out.to_str().unwrap();
    let mut args = vec![
        "run",
        "scenarios/single_node.toml",
        "--waveform",
        window,
        "--no-samples",
        "--out",
        out,
    ];
    args.extend_from_slice(more);
    moesim(&args)
}

#[test]
fn a_bad_waveform_window_is_refused_naming_the_flag_and_the_form() {
    for bad in ["3..2", "x..1", "2", "-1..1"] {
        let o = moesim(&["run", "scenarios/single_node.toml", "--waveform", bad]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{bad}: {err}");
        assert!(err.contains("--waveform"), "{bad}: {err}");
        assert!(err.contains("START..END in hours"), "{bad}: {err}");
    }
}

#[test]
fn a_waveform_window_writes_the_csv_and_the_plot() {
    let dir = tempfile::tempdir().unwrap();
    let o = run_with_waveform(dir.path(), "0.1..0.1003", &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let csv = std::fs::read_to_string(dir.path().join("waveform.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("strategy,time_s,time_utc,duration_s,facility_w,gpu_w,node_w,network_w,filler_w,cooling_w,phase")
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    // moe and dense train at 0.1 h; each step shows its compute phase, all inside the window.
    for s in ["dense", "moe"] {
        assert!(
            rows.iter().any(|r| r[0] == s && r[10] == "compute"),
            "{s}: {csv}"
        );
    }
    for r in &rows {
        let t: f64 = r[1].parse().unwrap();
        assert!((360.0..=361.08).contains(&t), "{r:?}");
        assert!(r[2].ends_with('Z'), "{r:?}");
    }
    assert!(dir.path().join("waveform.png").exists());
    let summary = std::fs::read_to_string(dir.path().join("summary.csv")).unwrap();
    assert!(summary.lines().next().unwrap().contains("max_swing_mw"));
}

#[test]
fn a_window_past_the_runs_end_says_so_and_gives_the_runs_length() {
    let dir = tempfile::tempdir().unwrap();
    let o = run_with_waveform(dir.path(), "5000..5001", &["--no-plots"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    for s in ["dense", "moe"] {
        assert!(
            err.contains(&format!(
                "--waveform 5000..5001 starts after {s}'s run ended"
            )),
            "{err}"
        );
    }
    assert!(
        err.contains("waveform panel is empty (the run lasts "),
        "{err}"
    );
    // A window inside the run draws no note.
    let o = run_with_waveform(dir.path(), "0.1..0.1003", &["--no-plots"]);
    assert!(!String::from_utf8_lossy(&o.stderr).contains("--waveform 0.1"));
}
