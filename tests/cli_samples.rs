//! `moesim run --samples N`: the Monte Carlo's files are the same on any thread count, its bands are
//! ordered, a source that is off adds no spread, and bad input gets a clear error naming the flag or key.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn moesim(args: &[&str], threads: Option<&str>) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_moesim"));
    c.args(args).current_dir(env!("CARGO_MANIFEST_DIR"));
    if let Some(t) = threads {
        c.env("RAYON_NUM_THREADS", t);
    }
    match c.output() {
        Ok(o) => o,
        Err(e) => panic!("cannot start moesim: {e}"),
    }
}

fn ok(o: &Output) {
    assert!(
        o.status.success(),
        "moesim failed: {}\n{}",
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&o.stdout)
    );
}

/// The small shipped scenario with `extra` appended (an `[uncertainty]` table) and, with `optimal`,
/// the CO2-minimising planner (which reads the forecast) instead of the fixed window.
fn scenario(dir: &Path, extra: &str, optimal: bool) -> PathBuf {
    let base = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/single_node.toml"),
    )
    .unwrap();
    let mut text: String = base
        .lines()
        .filter(|l| {
            !(optimal
                && ["window_hours", "full_share", "pause_share"]
                    .iter()
                    .any(|k| l.trim_start().starts_with(k)))
        })
        .map(|l| {
            if optimal && l.trim_start().starts_with("policy") {
                "policy = \"optimal\"".to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    text.push_str("\n\n");
    text.push_str(extra);
    text.push('\n');
    let p = dir.join("s.toml");
    std::fs::write(&p, text).unwrap();
    p
}

/// (strategy, figure, [p5, p50, p95]) of every line of uncertainty.csv (NaN for an empty cell).
fn bands(dir: &Path) -> Vec<(String, String, [f64; 3])> {
    let text = std::fs::read_to_string(dir.join("uncertainty.csv")).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("strategy,figure,p5,p50,p95,samples"));
    lines
        .map(|l| {
            let c: Vec<&str> = l.split(',').collect();
            assert_eq!(c.len(), 6, "{l}");
            let n = |s: &str| s.parse::<f64>().unwrap_or(f64::NAN);
            (
                c[0].to_string(),
                c[1].to_string(),
                [n(c[2]), n(c[3]), n(c[4])],
            )
        })
        .collect()
}

#[test]
fn the_same_seed_and_n_give_identical_files_on_one_and_two_threads() {
    let tmp = tempfile::tempdir().unwrap();
    let s = scenario(tmp.path(), "", true);
    let mut files = Vec::new();
    for threads in ["1", "2"] {
        let out = tmp.path().join(format!("t{threads}"));
        let o = moesim(
            &[
                "run",
                s.to_str().unwrap(),
                "--samples",
                "4",
                "--no-plots",
                "--out",
                out.to_str().unwrap(),
            ],
            Some(threads),
        );
        ok(&o);
        let stdout = String::from_utf8_lossy(&o.stdout).to_string();
        assert!(
            stdout.contains("uncertainty over 4 samples")
                && stdout.contains("circadian vs moe: CO2e"),
            "{stdout}"
        );
        files.push(
            [
                "uncertainty.csv",
                "uncertainty_timeline.csv",
                "uncertainty_info.json",
                "uncertainty_by_law.csv",
            ]
            .map(|f| std::fs::read(out.join(f)).unwrap()),
        );
    }
    assert_eq!(files[0], files[1]);
    // Every band is ordered, and the samples did vary something.
    let b = bands(&tmp.path().join("t1"));
    assert!(b.len() > 50, "{}", b.len());
    for (s, f, [p5, p50, p95]) in &b {
        if p5.is_finite() {
            assert!(p5 <= p50 && p50 <= p95, "{s} {f}: {p5} {p50} {p95}");
        }
    }
    assert!(b.iter().any(|(_, _, p)| p[2] > p[0]));
}

#[test]
fn a_source_that_is_off_adds_no_spread() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |name: &str, table: &str| {
        let d = tmp.path().join(name);
        std::fs::create_dir_all(&d).unwrap();
        let s = scenario(&d, table, true);
        let out = d.join("out");
        ok(&moesim(
            &[
                "run",
                s.to_str().unwrap(),
                "--no-plots",
                "--out",
                out.to_str().unwrap(),
            ],
            None,
        ));
        bands(&out)
    };
    let spread = |p: &[f64; 3]| p[2] - p[0];
    // A band varies when both ends are numbers and differ (an empty band, NaN, does not).
    let varies = |p: &[f64; 3]| p[0].is_finite() && p[2] > p[0];
    // Nothing on: every sample is the scenario itself.
    for (s, f, p) in run("none", "[uncertainty]\nsamples = 3\nsources = []") {
        assert!(!varies(&p), "{s} {f} varies with every source off: {p:?}");
    }
    // Only the loss law: the estimated loss varies; the target is the MoE's loss after training.tokens
    // under each sample's law, so the MoE runs (and circadian, whose effective tokens do not depend on
    // the law) do not move, but the dense model trains the tokens its law needs for that loss.
    let law = run(
        "law",
        "[uncertainty]\nsamples = 3\nsources = [\"quality_law\"]",
    );
    for (s, f, p) in &law {
        if (f.contains("loss") && f != "chinchilla_loss") || s.contains("dense") {
            continue;
        }
        assert!(!varies(p), "{s} {f} varies with only the law on: {p:?}");
    }
    assert!(law
        .iter()
        .any(|(s, f, p)| s == "moe" && f == "estimated_loss" && spread(p) > 0.0));
    assert!(law
        .iter()
        .any(|(s, f, p)| s == "dense" && f == "tokens" && spread(p) > 0.0));
    // Only the forecast: dense and moe do not plan, so they do not move.
    let fc = run(
        "forecast",
        "[uncertainty]\nsamples = 4\nsources = [\"forecast\"]\nforecast_error = 0.3",
    );
    for (s, f, p) in &fc {
        if s == "dense" || s == "moe" || s == "dense vs moe" {
            assert!(
                !varies(p),
                "{s} {f} varies with only the forecast on: {p:?}"
            );
        }
    }
    // Only the hardware: every strategy's time moves (the slowest GPU sets the pace).
    let hw = run(
        "hardware",
        "[uncertainty]\nsamples = 4\nsources = [\"hardware\"]",
    );
    for name in ["dense", "moe"] {
        let p = hw
            .iter()
            .find(|(s, f, _)| s == name && f == "wall_clock_h")
            .unwrap()
            .2;
        assert!(spread(&p) > 0.0 && p[2] > 0.0, "{name}: {p:?}");
    }
}

#[test]
fn bad_sample_counts_name_the_flag_or_key() {
    for bad in ["0", "abc", "-3", "1.5"] {
        let flag = format!("--samples={bad}");
        let o = moesim(
            &["run", "scenarios/single_node.toml", &flag, "--no-plots"],
            None,
        );
        assert_eq!(o.status.code(), Some(2), "--samples {bad}");
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(
            e.contains("--samples") && e.contains("whole number from 1"),
            "--samples {bad}: {e}"
        );
    }
    let tmp = tempfile::tempdir().unwrap();
    let s = scenario(tmp.path(), "[uncertainty]\nsamples = 0", false);
    let o = moesim(
        &[
            "run",
            s.to_str().unwrap(),
            "--no-plots",
            "--out",
            tmp.path().join("o").to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(2));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("uncertainty.samples") && e.contains("s.toml:"),
        "{e}"
    );
}
