//! Bounded mutation fuzzing of every input parser (scenario TOML, grid files of each format, routing traces): errors are fine, panics are not.
//!
//! A seeded mutator (ChaCha8, fixed seeds, so a failure replays exactly) applies byte flips,
//! truncation, deletions, line duplication, column swaps and "interesting" tokens (huge numbers,
//! `NaN`, `inf`, empty cells, stray quotes and delimiters) to real inputs: the shipped scenarios, the
//! grid fixtures in tests/fixtures/grid, and small routing traces in both layouts. Each target runs
//! a fixed number of cases or until its time budget is spent, whichever comes first (but at least 10), so the whole
//! file stays within about 20 s on a slow debug build. A panic prints the seed, the case number and
//! the input (cut to 2,000 characters) before failing. Regression cases for inputs that once crashed
//! or gave `inf` sit at the end.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use moesim::grid::{load_grid_file, CsvColumns, GridFile, GridFormat};
use moesim::routing::read_trace;
use moesim::scenario::parse_scenario;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Time budget of the scenario and trace targets (the case counts bound them too).
const BUDGET: Duration = Duration::from_secs(5);
/// Time budget per grid fixture (about 27 files: about 11 s in all at most).
const GRID_BUDGET: Duration = Duration::from_millis(400);

const TOKENS: [&str; 18] = [
    "1e308",
    "-1e308",
    "1e19",
    "99999999999999999999999",
    "-1",
    "0",
    "NaN",
    "inf",
    "-inf",
    "",
    "\"",
    ",",
    ";",
    "\n",
    "2022-13-45 25:61",
    "\u{feff}",
    "[",
    "ä₂",
];

/// One random mutation of `input`.
fn mutate(rng: &mut ChaCha8Rng, input: &[u8]) -> Vec<u8> {
    let mut v = input.to_vec();
    let rounds = rng.gen_range(1..=4);
    for _ in 0..rounds {
        let len = v.len().max(1);
        match rng.gen_range(0..7) {
            0 => {
                // Byte flip.
                let i = rng.gen_range(0..len);
                if let Some(b) = v.get_mut(i) {
                    *b = rng.gen();
                }
            }
            1 => {
                // Truncation.
                let i = rng.gen_range(0..len);
                v.truncate(i);
            }
            2 => {
                // Delete a range.
                let a = rng.gen_range(0..len);
                let b = (a + rng.gen_range(0..64)).min(v.len());
                if a < b {
                    v.drain(a..b);
                }
            }
            3 | 4 => {
                // Insert or overwrite with an interesting token (often replacing a number).
                let tok = TOKENS[rng.gen_range(0..TOKENS.len())].as_bytes();
                let i = rng.gen_range(0..=v.len());
                let end = v[i..]
                    .iter()
                    .position(|b| !(b.is_ascii_digit() || *b == b'.' || *b == b'e'))
                    .map_or(v.len(), |k| i + k);
                v.splice(i..end, tok.iter().copied());
            }
            5 => {
                // Duplicate a line.
                let text = String::from_utf8_lossy(&v).to_string();
                let lines: Vec<&str> = text.split('\n').collect();
                let k = rng.gen_range(0..lines.len());
                let mut out = lines.clone();
                out.insert(k, lines[k]);
                v = out.join("\n").into_bytes();
            }
            _ => {
                // Swap two comma-separated columns in every line.
                let (a, b) = (rng.gen_range(0..6), rng.gen_range(0..6));
                let text = String::from_utf8_lossy(&v).to_string();
                v = text
                    .split('\n')
                    .map(|l| {
                        let mut f: Vec<&str> = l.split(',').collect();
                        if a < f.len() && b < f.len() {
                            f.swap(a, b);
                        }
                        f.join(",")
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
                    .into_bytes();
            }
        }
    }
    v
}

/// Runs `target` on `cases` mutations of each seed input (or until the budget is spent); a panic
/// fails the test naming the seed, the case and the input.
fn fuzz(
    name: &str,
    seed: u64,
    inputs: &[Vec<u8>],
    (cases, budget): (usize, Duration),
    target: &dyn Fn(&[u8]),
) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let start = Instant::now();
    // The first few cases always run, however slow the machine (a loaded CI runner once ran only
    // 6 of them in the grid budget): the budget trims the tail, never the floor.
    let floor = cases.min(10);
    for case in 0..cases {
        if case >= floor && start.elapsed() > budget {
            break;
        }
        let input = &inputs[case % inputs.len()];
        let m = mutate(&mut rng, input);
        if catch_unwind(AssertUnwindSafe(|| target(&m))).is_err() {
            let shown: String = String::from_utf8_lossy(&m).chars().take(2000).collect();
            panic!("{name}: seed {seed}, case {case} panicked on input:\n{shown}");
        }
    }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn scenario_parser_never_panics_on_mutated_scenarios() {
    let inputs: Vec<Vec<u8>> = [
        "seed_comparison.toml",
        "single_node.toml",
        "mixtral_pretrain.toml",
        "real_grid_ciso.toml",
        "trace_replay.toml",
    ]
    .iter()
    .map(|n| std::fs::read(root().join("scenarios").join(n)).unwrap_or_default())
    .collect();
    let base = root().join("scenarios");
    fuzz("scenario", 14, &inputs, (1500, BUDGET), &|b| {
        let text = String::from_utf8_lossy(b);
        let _ = parse_scenario("fuzz.toml", &text, &base);
    });
}

/// The grid fixtures and the format each is read as (`None`: generic with `ci` columns).
fn grid_inputs() -> Vec<(PathBuf, GridFormat)> {
    let dir = root().join("tests/fixtures/grid");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        let p = entry.path();
        let ext = p.extension().and_then(|e| e.to_str()).unwrap_or("");
        if ext != "csv" && ext != "json" {
            continue;
        }
        let format = match moesim::grid::detect_format(&p) {
            Ok(f) => f,
            Err(_) => continue,
        };
        out.push((p, format));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn grid_file(path: &Path, format: GridFormat, allow: bool) -> GridFile {
    let mut f = if format == GridFormat::Generic {
        GridFile::generic(
            path,
            CsvColumns {
                time_column: "time".into(),
                ci_column: "ci".into(),
                load_column: Some("load".into()),
                ..CsvColumns::default()
            },
        )
    } else {
        GridFile::new(path, format)
    };
    f.max_gap_intervals = 4;
    f.allow_out_of_range = allow;
    f
}

/// A region that selects rows in the EIA fixtures (others ignore it).
fn region_for(path: &Path) -> &'static str {
    if path.to_string_lossy().contains("EIA930") || path.to_string_lossy().contains("eia930") {
        "CISO"
    } else {
        "X"
    }
}

#[test]
fn grid_loaders_never_panic_on_mutated_files_of_every_format() {
    let inputs = grid_inputs();
    assert!(inputs.len() >= 20, "fixtures found: {}", inputs.len());
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => panic!("tempdir: {e}"),
    };
    let generic =
        b"time,ci,load\n2022-01-01 00:00,100,5\n2022-01-01 01:00,200,6\n2022-01-01 02:00,300,7\n"
            .to_vec();
    let mut rng_seed = 930;
    for (path, format) in inputs
        .iter()
        .map(|(p, f)| (p.clone(), *f))
        .chain([(PathBuf::from("generic.csv"), GridFormat::Generic)])
    {
        let bytes = if format == GridFormat::Generic {
            generic.clone()
        } else {
            std::fs::read(&path).unwrap_or_default()
        };
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let target = dir.path().join(&name);
        rng_seed += 1;
        fuzz(&name, rng_seed, &[bytes], (60, GRID_BUDGET), &|b| {
            if std::fs::write(&target, b).is_err() {
                return;
            }
            for allow in [false, true] {
                let f = grid_file(&target, format, allow);
                if let Ok((s, _)) = load_grid_file(&f, region_for(&path)) {
                    // Whatever loads is finite: no inf/NaN can reach a result from a grid file.
                    assert!(s.ci_g_per_kwh.iter().all(|v| v.is_finite() && *v >= 0.0));
                    for col in [&s.load_mw, &s.price_per_mwh].into_iter().flatten() {
                        assert!(col.iter().all(|v| v.is_finite()));
                    }
                }
            }
        });
    }
}

#[test]
fn trace_reader_never_panics_on_mutated_traces() {
    let wide =
        b"step,layer,e0,e1,e2,e3\n1,0,5,3,2,6\n1,1,4,4,4,4\n2,0,1,2,3,10\n2,1,0,0,8,8\n".to_vec();
    let long = b"step,layer,expert,tokens\n1,0,0,5\n1,0,1,3\n1,1,0,4\n1,1,1,4\n2,0,0,1\n2,0,1,7\n2,1,0,2\n2,1,1,6\n".to_vec();
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => panic!("tempdir: {e}"),
    };
    let target = dir.path().join("trace.csv");
    // A binary trace (read by its magic whatever the file's name): 2 steps × 1 layer × 2 experts of u16.
    let mut binary = b"MOETRACE".to_vec();
    for v in [1u32, 2] {
        binary.extend(v.to_le_bytes());
    }
    binary.extend(2u64.to_le_bytes());
    binary.extend(1u32.to_le_bytes());
    binary.extend(2u32.to_le_bytes());
    binary.extend([5, 0, 3, 0, 1, 0, 7, 0]);
    fuzz("trace", 16, &[wide, long, binary], (800, BUDGET), &|b| {
        if std::fs::write(&target, b).is_ok() {
            let _ = read_trace(&target);
        }
    });
}

// --- Regression cases: inputs that once aborted, overflowed or gave inf/NaN. ---

/// seed_comparison.toml with one line replaced.
fn scenario_with(line: &str, replacement: &str) -> Result<(), String> {
    let text =
        std::fs::read_to_string(root().join("scenarios/seed_comparison.toml")).unwrap_or_default();
    assert!(text.contains(line), "seed_comparison.toml has no '{line}'");
    let text = text.replacen(line, replacement, 1);
    parse_scenario("s.toml", &text, &root().join("scenarios"))
        .map(|_| ())
        .map_err(|e| e.to_string())
}

// tokens = 1e19 once aborted on a 41 GB allocation (in the run, not the parser): parsing must not panic.
#[test]
fn regression_tokens_1e19_does_not_panic_the_parser() {
    let r = catch_unwind(|| scenario_with("tokens = 1.2e11", "tokens = 1e19"));
    assert!(r.is_ok());
}

// deadline_hours = 1e308 once overflowed an i64 conversion; it may be refused, it must not panic.
#[test]
fn regression_deadline_hours_1e308_does_not_panic() {
    let r = catch_unwind(|| scenario_with("deadline_hours = 120", "deadline_hours = 1e308"));
    assert!(r.is_ok());
}

// restore_s = 1e19 once failed late with a misleading hint; it must not panic.
#[test]
fn regression_restore_s_1e19_does_not_panic() {
    let r = catch_unwind(|| scenario_with("restore_s = 300", "restore_s = 1e19"));
    assert!(r.is_ok());
}

// Intensities of 29,630 and 1e308 g/kWh were once accepted and gave inf CO2 and NaN %.
#[test]
fn regression_intensity_29630_and_1e308_are_refused_naming_the_row() {
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => panic!("tempdir: {e}"),
    };
    for (value, allowed) in [("29630", true), ("1e308", false)] {
        let p = dir.path().join("ci.csv");
        let text = format!(
            "time,ci,load\n2022-01-01 00:00,300,5\n2022-01-01 01:00,{value},5\n2022-01-01 02:00,300,5\n"
        );
        if let Err(e) = std::fs::write(&p, text) {
            panic!("write: {e}");
        }
        let e = match load_grid_file(&grid_file(&p, GridFormat::Generic, false), "X") {
            Ok(_) => panic!("{value} g/kWh was accepted"),
            Err(e) => e.to_string(),
        };
        assert!(
            e.contains("ci.csv:3:") && e.contains("'ci'") && e.contains(value),
            "{e}"
        );
        // With the override 29,630 is the user's deliberate choice; 1e308 never is.
        let r = load_grid_file(&grid_file(&p, GridFormat::Generic, true), "X");
        assert_eq!(r.is_ok(), allowed, "{value}: {:?}", r.map(|_| ()));
    }
}
