//! Shared by the end-to-end tests: start the built `moesim` in the crate's folder and read what it printed.
// Each test crate uses a subset of these.
#![allow(dead_code)]

use std::process::{Command, Output};

/// `moesim ARGS` run from the crate's folder (so `scenarios/…` and `../shared` resolve), waited for.
pub fn moesim(args: &[&str]) -> Output {
    match Command::new(env!("CARGO_BIN_EXE_moesim"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
    {
        Ok(o) => o,
        Err(e) => panic!("cannot start moesim: {e}"),
    }
}

/// A finished run's standard output and standard error, as text.
pub fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Column `name` of row `strategy` of a summary.csv.
pub fn summary_value(csv: &str, strategy: &str, name: &str) -> f64 {
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = header.iter().position(|h| *h == name).unwrap();
    let row = lines.find(|l| l.starts_with(strategy)).unwrap();
    row.split(',').nth(col).unwrap().parse().unwrap()
}
