//! Sweeps end to end: identical results on any thread count or sharding, resume after an interruption,
//! merge checks, and the `moesim sweep` / `moesim merge` command lines.

use moesim::sweep::{merge, run_sweep, RunOptions, Shard, Silent, Sweep, SWEEP_CSV};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// single_node.toml at a tenth of its tokens with a 6-point sweep (region × top-k).
fn sweep_text() -> String {
    let base = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/single_node.toml"),
    )
    .unwrap();
    assert!(base.contains("tokens = 1.0e9"));
    base.replace("tokens = 1.0e9", "tokens = 1.0e8")
        + "\n[sweep]\nmode = \"grid\"\n[sweep.params]\n\"grid.region\" = [\"CISO\", \"GB\", \"DE\"]\n\"models.moe.top_k\" = [1, 2]\n"
}

/// The sweep of `text`, as if read from `sw.toml` in the crate root.
fn parse(text: &str) -> Sweep {
    Sweep::parse("sw.toml", text, Path::new(env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn write_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn run_into(sweep: &Sweep, dir: &Path, jobs: usize, shard: Shard) -> moesim::sweep::RunSummary {
    let mut o = RunOptions::new(dir.to_path_buf());
    o.jobs = Some(jobs);
    o.shard = shard;
    run_sweep(sweep, &o, &Silent).unwrap()
}

fn moesim(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_moesim"))
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap()
}

#[test]
fn results_are_identical_on_one_or_two_threads_and_across_shards() {
    let tmp = tempfile::tempdir().unwrap();
    let sweep = parse(&sweep_text());
    assert_eq!(sweep.len(), 6);
    let one = tmp.path().join("one");
    let r = run_into(&sweep, &one, 1, Shard::ALL);
    assert_eq!((r.ran, r.skipped, r.failed), (6, 0, 0));
    run_into(&sweep, &tmp.path().join("two"), 2, Shard::ALL);
    let shards: Vec<PathBuf> = (0..4)
        .map(|i| {
            let d = tmp.path().join(format!("s{i}"));
            run_into(&sweep, &d, 2, Shard { index: i, count: 4 });
            d
        })
        .collect();
    let merged = tmp.path().join("merged");
    let m = merge(&shards, &merged).unwrap();
    assert_eq!((m.points, m.rows), (6, 18));
    let a = std::fs::read(one.join(SWEEP_CSV)).unwrap();
    assert_eq!(
        a,
        std::fs::read(tmp.path().join("two").join(SWEEP_CSV)).unwrap()
    );
    assert_eq!(a, std::fs::read(merged.join(SWEEP_CSV)).unwrap());
    // 1 header + 6 points × 3 strategies, sorted by point; the swept values are in their columns.
    let text = String::from_utf8(a).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 19);
    assert!(lines[0].starts_with("point,strategy,grid.region,models.moe.top_k,seed,status,error,"));
    assert!(lines[1].starts_with("0,dense,CISO,1,") && lines[18].starts_with("5,circadian,DE,2,"));
    // Top-1 routing trains the MoE faster than top-2 in the same region (a sanity check of the assignment).
    let col = lines[0]
        .split(',')
        .position(|c| c == "wall_clock_h")
        .unwrap();
    let wall = |line: &str| line.split(',').nth(col).unwrap().parse::<f64>().unwrap();
    assert!(
        wall(lines[2]) < wall(lines[5]),
        "{}\n{}",
        lines[2],
        lines[5]
    );
}

#[test]
fn an_interrupted_sweep_resumes_without_rerunning_or_losing_points() {
    let tmp = tempfile::tempdir().unwrap();
    let sweep = parse(&sweep_text());
    let full = tmp.path().join("full");
    run_into(&sweep, &full, 2, Shard::ALL);
    let want = std::fs::read(full.join(SWEEP_CSV)).unwrap();
    // Simulate a kill: the journal keeps two points and a torn half line; sweep.csv was never written.
    let journal = std::fs::read_to_string(full.join("sweep.journal.csv")).unwrap();
    let kept: Vec<&str> = journal
        .lines()
        .filter(|l| l.starts_with("0,") || l.starts_with("4,"))
        .collect();
    let torn = &journal.lines().find(|l| l.starts_with("2,")).unwrap()[..40];
    std::fs::write(
        full.join("sweep.journal.csv"),
        kept.join("\n") + "\n" + torn,
    )
    .unwrap();
    std::fs::remove_file(full.join(SWEEP_CSV)).unwrap();
    let r = run_into(&sweep, &full, 2, Shard::ALL);
    assert_eq!((r.skipped, r.ran), (2, 4));
    assert_eq!(std::fs::read(full.join(SWEEP_CSV)).unwrap(), want);
    // Nothing left to do on a third run.
    let r = run_into(&sweep, &full, 1, Shard::ALL);
    assert_eq!((r.skipped, r.ran), (6, 0));
    assert_eq!(std::fs::read(full.join(SWEEP_CSV)).unwrap(), want);
}

#[test]
fn merge_refuses_missing_and_duplicated_shards() {
    let tmp = tempfile::tempdir().unwrap();
    let sweep = parse(&sweep_text());
    let d0 = tmp.path().join("s0");
    let d1 = tmp.path().join("s1");
    run_into(&sweep, &d0, 2, Shard { index: 0, count: 2 });
    let e = merge(std::slice::from_ref(&d0), &tmp.path().join("m"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("3 of 6 points are missing (points 1, 3, 5)") && e.contains("no folder given"),
        "{e}"
    );
    let e = merge(&[d0.clone(), d0.clone()], &tmp.path().join("m"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("holds shard 0/2, as does"), "{e}");
    // A shard of another sweep (one value changed) does not mix.
    let other = parse(&sweep_text().replace("\"DE\"]", "\"FR\"]"));
    run_into(&other, &d1, 2, Shard { index: 1, count: 2 });
    let e = merge(&[d0, d1], &tmp.path().join("m"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("is from another sweep"), "{e}");
}

#[test]
fn cli_sweep_check_run_note_bad_paths_and_fresh() {
    let tmp = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let f = write_file(tmp.path(), "sw.toml", &sweep_text());
    let fs = f.to_str().unwrap();
    let o = moesim(&["sweep", fs, "--check"], root);
    assert!(o.status.success() && String::from_utf8_lossy(&o.stdout).contains("6 points"));
    // An unknown path: exit 2 before anything runs, naming the file, line and point.
    let bad = write_file(
        tmp.path(),
        "bad.toml",
        &sweep_text().replace("\"models.moe.top_k\"", "\"models.moe.topk\""),
    );
    let o = moesim(
        &[
            "sweep",
            bad.to_str().unwrap(),
            "--out",
            tmp.path().join("o").to_str().unwrap(),
        ],
        root,
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("bad.toml:") && err.contains("point 0 of 6") && err.contains("topk"),
        "{err}"
    );
    assert!(!tmp.path().join("o").exists());
    // Flags.
    for args in [vec!["--shard", "2/2"], vec!["--jobs", "0"]] {
        let mut a = vec!["sweep", fs];
        a.extend(args);
        assert_eq!(moesim(&a, root).status.code(), Some(2));
    }
    // A real run, then a changed sweep into the same folder is refused until --fresh.
    let out = tmp.path().join("out");
    let o = moesim(
        &["sweep", fs, "--out", out.to_str().unwrap(), "--jobs", "2"],
        root,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("best co2_kg for circadian"));
    let changed = write_file(
        tmp.path(),
        "sw.toml",
        &sweep_text().replace("[1, 2]", "[2, 1]"),
    );
    let o = moesim(
        &[
            "sweep",
            changed.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        root,
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--fresh"));
    let o = moesim(
        &[
            "sweep",
            changed.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--fresh",
        ],
        root,
    );
    assert!(o.status.success());
    // `run` runs the base scenario and says it ignores [sweep].
    let o = moesim(
        &["run", fs, "--out", tmp.path().join("r").to_str().unwrap()],
        root,
    );
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("ignores it"));
}

#[test]
fn cli_shards_and_merge_default_folders() {
    let tmp = tempfile::tempdir().unwrap();
    let f = write_file(tmp.path(), "sw.toml", &sweep_text());
    for i in 0..2 {
        let o = moesim(
            &["sweep", f.to_str().unwrap(), "--shard", &format!("{i}/2")],
            tmp.path(),
        );
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let dirs = [
        "outputs/single_node/shard-0-of-2",
        "outputs/single_node/shard-1-of-2",
    ];
    let o = moesim(&["merge", dirs[0], dirs[1]], tmp.path());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("6 points, 18 rows"));
    assert!(tmp
        .path()
        .join("outputs/single_node")
        .join(SWEEP_CSV)
        .exists());
    let o = moesim(&["merge", dirs[0]], tmp.path());
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("missing"));
}
