//! Tests of the `[sweep]` table: parsing, its errors with positions, and point expansion.

use super::*;
use crate::sweep::SweepError;

fn spec(body: &str) -> Result<Option<SweepSpec>, SweepError> {
    parse_spec("t.toml", body, 7)
}

fn ints(p: &Point) -> Vec<i64> {
    p.assignments
        .iter()
        .map(|(_, v)| v.as_integer().unwrap_or(-1))
        .collect()
}

#[test]
fn no_sweep_table_is_none() {
    assert_eq!(spec("name = \"x\"\n").ok(), Some(None));
}

#[test]
fn grid_crosses_lists_first_param_slowest_in_file_order() {
    // Keys in non-alphabetical order: file order must be kept.
    let s = spec("[sweep.params]\n\"z.b\" = [1, 2]\n\"a.c\" = [10, 20, 30]\n")
        .unwrap()
        .unwrap();
    assert_eq!(s.len(), 6);
    let p = s.points();
    assert_eq!(p[0].assignments[0].0, "z.b");
    assert_eq!(
        p.iter().map(ints).collect::<Vec<_>>(),
        vec![
            vec![1, 10],
            vec![1, 20],
            vec![1, 30],
            vec![2, 10],
            vec![2, 20],
            vec![2, 30]
        ]
    );
}

#[test]
fn dotted_keys_and_quoted_keys_give_the_same_paths() {
    let a = spec("[sweep.params]\nmodels.moe.experts = [8]\n")
        .unwrap()
        .unwrap();
    let b = spec("[sweep]\nparams = { \"models.moe.experts\" = [8] }\n")
        .unwrap()
        .unwrap();
    assert_eq!(a.params[0].path, "models.moe.experts");
    assert_eq!(b.params[0].path, "models.moe.experts");
}

#[test]
fn stepped_range_includes_its_end_and_keeps_integers() {
    let s = spec("[sweep.params]\ncap = { from = 300, to = 700, step = 50 }\n")
        .unwrap()
        .unwrap();
    let v: Vec<i64> = s.points().iter().map(|p| ints(p)[0]).collect();
    assert_eq!(v, vec![300, 350, 400, 450, 500, 550, 600, 650, 700]);
    let s = spec("[sweep.params]\nx = { from = 0.1, to = 0.3, step = 0.1 }\n")
        .unwrap()
        .unwrap();
    let v: Vec<f64> = s
        .points()
        .iter()
        .map(|p| p.assignments[0].1.as_float().unwrap_or(-1.0))
        .collect();
    assert_eq!(v, vec![0.1, 0.2, 0.3]);
}

#[test]
fn zip_pairs_lists_and_refuses_unequal_lengths() {
    let s = spec("[sweep]\nmode = \"zip\"\n[sweep.params]\na = [1, 2]\nb = [3, 4]\n")
        .unwrap()
        .unwrap();
    assert_eq!(
        s.points().iter().map(ints).collect::<Vec<_>>(),
        vec![vec![1, 3], vec![2, 4]]
    );
    let e = spec("[sweep]\nmode = \"zip\"\n[sweep.params]\na = [1, 2]\nb = [3]\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("t.toml:5:1") && e.ends_with("`b` has 1"), "{e}");
}

#[test]
fn lhs_covers_every_stratum_once_and_is_seeded() {
    let body = "[sweep]\nmode = \"lhs\"\nsamples = 50\n[sweep.params]\nx = { from = 0.0, to = 1.0 }\nk = { from = 1, to = 50 }\n";
    let s = spec(body).unwrap().unwrap();
    let p = s.points();
    assert_eq!(p.len(), 50);
    let mut strata: Vec<usize> = p
        .iter()
        .map(|q| (q.assignments[0].1.as_float().unwrap_or(-1.0) * 50.0) as usize)
        .collect();
    strata.sort();
    assert_eq!(strata, (0..50).collect::<Vec<_>>());
    // Integer interval 1..=50 with 50 samples: each integer exactly once.
    let mut k: Vec<i64> = p
        .iter()
        .map(|q| q.assignments[1].1.as_integer().unwrap_or(-1))
        .collect();
    k.sort();
    assert_eq!(k, (1..=50).collect::<Vec<_>>());
    assert_eq!(spec(body).unwrap().unwrap().points(), p);
    let other = spec(&body.replace("samples = 50", "samples = 50\nseed = 8"))
        .unwrap()
        .unwrap()
        .points();
    assert_ne!(other, p);
}

#[test]
fn bad_tables_are_errors_with_positions() {
    for (body, want) in [
        (
            "[sweep]\nmode = \"cube\"\n[sweep.params]\na = [1]\n",
            "t.toml:2:1: `sweep.mode`: must be \"grid\"",
        ),
        ("[sweep]\nexperts = [1]\n", "unknown key"),
        ("[sweep]\nmode = \"grid\"\n", "needs [sweep.params]"),
        ("[sweep.params]\na = []\n", "empty"),
        (
            "[sweep.params]\na = 3\n",
            "t.toml:2:1: `sweep.params.a`: must be a list",
        ),
        (
            "[sweep.params]\na = { from = 1, to = 5 }\n",
            "needs mode = \"lhs\"",
        ),
        (
            "[sweep.params]\na = { from = 5, to = 1, step = 1 }\n",
            "below",
        ),
        (
            "[sweep.params]\na = { from = 1, to = 5, step = 0 }\n",
            "step` must be > 0",
        ),
        (
            "[sweep]\nmode = \"lhs\"\n[sweep.params]\na = [1]\n",
            "needs `samples`",
        ),
        (
            "[sweep]\nsamples = 3\n[sweep.params]\na = [1]\n",
            "only applies",
        ),
        (
            "[sweep.params]\na = { from = 1, to = 1e9, step = 1e-3 }\n",
            "more than",
        ),
    ] {
        let e = spec(body).map(|_| ()).unwrap_err().to_string();
        assert!(e.contains(want), "{body}: {e}");
    }
}
