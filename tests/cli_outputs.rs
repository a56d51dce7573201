//! What a user sees of the command line beyond the numbers: no `NaN`/`inf` in any file, the same exit
//! code for the same error in every subcommand, examples in every `--help`.

mod common;
use common::moesim;
use std::path::Path;

/// The cells of a CSV or the scalars of a JSON file that are not finite numbers, as `file: cell`.
fn non_finite_in(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let bad = |v: &str| {
        let v = v.trim().trim_matches('"');
        ["nan", "inf", "-inf", "+inf", "infinity", "-infinity"]
            .contains(&v.to_ascii_lowercase().as_str())
    };
    let name = path.display();
    match path.extension().and_then(|e| e.to_str()) {
        Some("csv") => text
            .lines()
            .flat_map(|l| l.split(','))
            .filter(|c| bad(c))
            .map(|c| format!("{name}: {c}"))
            .collect(),
        Some("json") => text
            .split(|c: char| c == ',' || c == ':' || c == '[' || c == ']' || c.is_whitespace())
            .filter(|c| bad(c) || c.contains("NaN") || c.contains("Infinity"))
            .map(|c| format!("{name}: {c}"))
            .collect(),
        // Tables in the report: a not-applicable cell is a dash, never NaN.
        Some("html") => ["NaN", ">inf<", "Infinity"]
            .iter()
            .filter(|w| text.contains(*w))
            .map(|w| format!("{name}: {w}"))
            .collect(),
        _ => Vec::new(),
    }
}

// Issue 14: summary.csv wrote `NaN` for not-applicable fields (no deadline, no Chinchilla estimate).
#[test]
fn no_output_file_holds_nan_or_inf() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o");
    let o = moesim(&[
        "run",
        "scenarios/single_node.toml",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut bad = Vec::new();
    let mut scanned = 0;
    for e in std::fs::read_dir(&out).unwrap() {
        let p = e.unwrap().path();
        scanned += 1;
        bad.extend(non_finite_in(&p));
    }
    assert!(scanned >= 6, "only {scanned} files written");
    assert!(bad.is_empty(), "{bad:?}");
    // The not-applicable deadline of `dense` is an empty cell.
    let summary = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    let header: Vec<&str> = summary.lines().next().unwrap().split(',').collect();
    let at = header.iter().position(|h| *h == "deadline_h").unwrap();
    let dense = summary.lines().find(|l| l.starts_with("dense,")).unwrap();
    // The loss law is quoted and holds commas: read the row with a CSV reader.
    let rec = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(dense.as_bytes())
        .records()
        .next()
        .unwrap()
        .unwrap();
    assert_eq!(rec.get(at), Some(""), "{dense}");
    // And the JSON on stdout says null.
    let j = moesim(&[
        "run",
        "scenarios/single_node.toml",
        "--no-plots",
        "--format",
        "json",
        "--out",
        out.to_str().unwrap(),
    ]);
    let s = String::from_utf8_lossy(&j.stdout);
    assert!(
        !s.contains("NaN") && s.contains("\"deadline_h\": null"),
        "{s}"
    );
}

// Issue 14: a bad --out was exit code 1 in `run` and 2 in `merge`. An output that cannot be written is
// 1 ("the command could not finish") in every subcommand, and says "cannot write".
#[test]
fn an_out_that_is_a_file_is_exit_1_and_cannot_write_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a_file");
    std::fs::write(&file, "x").unwrap();
    let f = file.to_str().unwrap();
    let shard = dir.path().join("shard");
    std::fs::create_dir(&shard).unwrap();
    let cases: Vec<Vec<&str>> = vec![
        vec![
            "run",
            "scenarios/single_node.toml",
            "--no-plots",
            "--out",
            f,
        ],
        vec!["sweep", "scenarios/sweep_regions.toml", "--out", f],
        vec!["merge", shard.to_str().unwrap(), "--out", f],
        vec![
            "plot",
            "--trace",
            "../shared/data/routing/routing_moe16top2_noaux.csv",
            "--out",
            f,
        ],
    ];
    for args in cases {
        let o = moesim(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains("cannot write"), "{args:?}: {err}");
    }
    // A write that fails deeper down (a folder that cannot be created) is the same code and words.
    let under = file.join("sub");
    let o = moesim(&[
        "run",
        "scenarios/single_node.toml",
        "--no-plots",
        "--out",
        under.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("cannot write"), "{err}");
}

// Issue 14: `--help` of every subcommand shows examples.
#[test]
fn every_subcommand_help_has_examples() {
    let subs: [&[&str]; 13] = [
        &["run"],
        &["plot"],
        &["check"],
        &["hardware"],
        &["hardware", "list"],
        &["hardware", "show"],
        &["strategies"],
        &["validate"],
        &["calibrate"],
        &["trace"],
        &["trace", "stats"],
        &["trace", "synth"],
        &["sweep"],
    ];
    for s in subs.iter().chain([&["merge"][..]].iter()) {
        let mut args = s.to_vec();
        args.push("--help");
        let o = moesim(&args);
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(o.status.success(), "{args:?}");
        assert!(
            out.contains("Example") && out.contains("moesim "),
            "{args:?} --help has no examples:\n{out}"
        );
    }
}
