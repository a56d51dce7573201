//! Unit tests of sweep points: assignments applied, seeds, and every kind of invalid point refused before running.

use super::*;
use crate::workload::FfnKind;

fn base() -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/single_node.toml"),
    )
    .unwrap_or_default()
}

fn sweep(tail: &str) -> Result<Sweep, SweepError> {
    let text = base() + tail;
    Sweep::parse("s.toml", &text, Path::new(env!("CARGO_MANIFEST_DIR")))
}

/// 1-based line of the first line of the file that starts with `prefix`.
fn line_of(tail: &str, prefix: &str) -> usize {
    let text = base() + tail;
    text.lines()
        .position(|l| l.starts_with(prefix))
        .map_or(0, |i| i + 1)
}

#[test]
fn assignments_reach_the_scenario_of_each_point() {
    let s = sweep("\n[sweep.params]\n\"models.moe.experts\" = [8, 16]\n\"grid.region\" = [\"CISO\", \"GB\"]\n").unwrap();
    assert_eq!(s.len(), 4);
    let sc = s.scenario(3).unwrap();
    let experts = match &sc.moe.as_ref().map(|j| &j.model.ffn) {
        Some(FfnKind::Moe(m)) => m.experts,
        _ => 0,
    };
    assert_eq!((experts, sc.grid.region.as_str()), (16, "GB"));
    assert_eq!(s.strategies[0].len(), 3);
}

#[test]
fn seeds_derive_from_scenario_seed_and_index_unless_shared_or_swept() {
    let s = sweep("\n[sweep.params]\n\"grid.region\" = [\"CISO\", \"GB\", \"DE\"]\n").unwrap();
    let seeds: Vec<u64> = (0..3)
        .map(|i| s.scenario(i).map(|x| x.seed).unwrap_or(0))
        .collect();
    assert_eq!(seeds, (0..3).map(|i| point_seed(7, i)).collect::<Vec<_>>());
    assert!(seeds[0] != seeds[1] && seeds[1] != seeds[2]);
    let s = sweep(
        "\n[sweep]\nseeds = \"shared\"\n[sweep.params]\n\"grid.region\" = [\"CISO\", \"GB\"]\n",
    )
    .unwrap();
    assert_eq!(s.scenario(1).map(|x| x.seed).ok(), Some(7));
    let s = sweep("\n[sweep.params]\nseed = [3, 5]\n").unwrap();
    assert_eq!(s.scenario(1).map(|x| x.seed).ok(), Some(5));
}

#[test]
fn point_seeds_are_valid_toml_integers_and_differ() {
    let mut v: Vec<u64> = (0..1000).map(|i| point_seed(42, i)).collect();
    assert!(v.iter().all(|s| *s <= i64::MAX as u64));
    v.sort();
    v.dedup();
    assert_eq!(v.len(), 1000);
}

#[test]
fn unknown_path_is_refused_at_its_sweep_line() {
    let tail = "\n[sweep.params]\n\"models.moe.expertz\" = [8, 16]\n";
    let e = sweep(tail).unwrap_err().to_string();
    let want = format!("s.toml:{}:1", line_of(tail, "\"models.moe.expertz\""));
    assert!(
        e.contains(&want) && e.contains("point 0 of 2") && e.contains("expertz"),
        "{e}"
    );
}

#[test]
fn wrong_type_is_refused_with_point_and_key() {
    let tail =
        "\n[sweep.params]\n\"grid.region\" = [\"GB\"]\n\"models.moe.top_k\" = [1, \"two\"]\n";
    let e = sweep(tail).unwrap_err().to_string();
    let want = format!("s.toml:{}:1", line_of(tail, "\"models.moe.top_k\""));
    assert!(
        e.contains(&want) && e.contains("point 1 of 2") && e.contains("`models.moe.top_k`"),
        "{e}"
    );
}

#[test]
fn invalid_combination_names_the_point_and_its_assignments() {
    // top_k 16 > experts 8: the validator's own message, at the swept key.
    let tail = "\n[sweep.params]\n\"models.moe.top_k\" = [2, 16]\n";
    let e = sweep(tail).unwrap_err().to_string();
    assert!(e.contains("point 1 of 2 (models.moe.top_k = 16)"), "{e}");
    assert!(
        e.contains(&format!(
            "s.toml:{}:1",
            line_of(tail, "\"models.moe.top_k\"")
        )),
        "{e}"
    );
}

#[test]
fn path_through_a_value_is_refused() {
    let e = sweep("\n[sweep.params]\n\"grid.region.x\" = [1]\n").unwrap_err();
    assert!(
        matches!(&e, SweepError::Path(p) if p.through == "grid.region" && p.kind == "string"),
        "{e}"
    );
}

#[test]
fn a_base_file_error_is_reported_against_the_base_file() {
    let text = base().replace("pue = 1.3", "pue = 1.3\npeu = 2") + "\n[sweep.params]\nseed = [1]\n";
    let e = Sweep::parse("s.toml", &text, Path::new("."))
        .unwrap_err()
        .to_string();
    assert!(e.contains("s.toml:") && e.contains("peu"), "{e}");
}

#[test]
fn file_without_sweep_is_an_error_for_sweep_but_fine_for_run() {
    assert!(matches!(sweep(""), Err(SweepError::NoSweep { .. })));
    let text = base() + "\n[sweep.params]\nseed = [1, 2]\n";
    assert!(has_sweep(&text) && !has_sweep(&base()));
    assert!(parse_scenario("s.toml", &text, Path::new(".")).is_ok());
}

#[test]
fn set_path_creates_missing_tables() {
    let mut t = toml::Table::new();
    assert!(set_path(&mut t, "a.b.c", toml::Value::Integer(1)).is_ok());
    assert_eq!(
        t.get("a").and_then(|a| a.get("b")).and_then(|b| b.get("c")),
        Some(&toml::Value::Integer(1))
    );
}

#[test]
fn key_at_line_reads_table_headers() {
    let t = "seed = 1\n\n[models.moe]\nname = \"x\"\ntop_k = \"two\"\n";
    assert_eq!(key_at_line(t, 1).as_deref(), Some("seed"));
    assert_eq!(key_at_line(t, 5).as_deref(), Some("models.moe.top_k"));
    assert_eq!(key_at_line(t, 3), None);
}

#[test]
fn shard_flag_parses_and_partitions() {
    assert_eq!(Shard::parse("1/4").ok(), Some(Shard { index: 1, count: 4 }));
    for bad in ["4/4", "1", "a/2", "0/0", "-1/2"] {
        assert!(Shard::parse(bad).is_err(), "{bad}");
    }
    let shards: Vec<Shard> = (0..3).map(|i| Shard { index: i, count: 3 }).collect();
    for p in 0..20 {
        assert_eq!(shards.iter().filter(|s| s.has(p)).count(), 1);
    }
}

#[test]
fn fingerprint_ignores_comments_but_not_values() {
    let tail = "\n[sweep.params]\nseed = [1, 2]\n";
    let a = sweep(tail).unwrap().fingerprint;
    let b = sweep(&format!("# a comment\n{tail}")).unwrap().fingerprint;
    let c = sweep("\n[sweep.params]\nseed = [1, 3]\n")
        .unwrap()
        .fingerprint;
    assert_eq!(a, b);
    assert_ne!(a, c);
}
