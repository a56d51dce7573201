//! Tests of the streamed trace formats: the binary and CSV readers agree, and each bad input names
//! the file, the row or byte offset, the field and what is valid.

use super::trace::{read_long, RoutingTrace};
use super::trace_bin::{Dtype, Header, HEADER_BYTES};
use super::trace_spill::spill_long;
use super::{convert, output_format, read_trace, PastEnd, TraceFile, TraceFormat, TraceReplay};
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn real(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data/routing")
        .join(name)
}

fn to_binary(csv: &Path, dir: &Path, dtype: Option<&str>) -> PathBuf {
    let t = TraceFile::open(csv).unwrap();
    let out = dir.join("t.moetrace");
    let f = output_format(&t, &out, dtype).unwrap();
    convert(&t, &out, f).unwrap();
    out
}

fn header_bytes(steps: u64, layers: u32, experts: u32, dtype: Dtype) -> Vec<u8> {
    Header {
        steps,
        layers,
        experts,
        dtype,
    }
    .to_bytes()
    .to_vec()
}

fn err_of(path: &Path) -> String {
    TraceFile::open(path).unwrap_err().to_string()
}

#[test]
fn binary_and_csv_give_every_step_of_the_real_traces_alike() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["routing_moe16top2_aux.csv", "routing_moe16top2_noaux.csv"] {
        let whole = read_trace(&real(name)).unwrap();
        for dtype in [None, Some("u32")] {
            let bin = to_binary(&real(name), dir.path(), dtype);
            let b = TraceFile::open(&bin).unwrap();
            let c = TraceFile::open(&real(name)).unwrap();
            assert_eq!((b.steps, b.layers, b.experts), (400, 8, 16));
            // No expert takes a whole row (65,536 assignments, PROVENANCE.md): u16 holds every count.
            let want = if dtype.is_some() { "u32" } else { "u16" };
            assert!(whole.max_count() < 65_536);
            assert_eq!(b.format_name(), format!("binary ({want})"));
            let (mut bc, mut cc) = (b.cursor().unwrap(), c.cursor().unwrap());
            // Forward, then backward (every read a seek).
            for s in (0..400).chain((0..400).rev()) {
                let want: Vec<u32> = (0..8).flat_map(|l| whole.counts(s, l).to_vec()).collect();
                assert_eq!(bc.step(&b, s).unwrap(), &want[..], "{name} binary step {s}");
                assert_eq!(cc.step(&c, s).unwrap(), &want[..], "{name} csv step {s}");
            }
            assert_eq!(b.load().unwrap().max_count(), whole.max_count());
        }
    }
}

#[test]
fn streamed_replay_matches_in_memory_replay_past_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let csv = real("routing_moe16top2_noaux.csv");
    let bin = to_binary(&csv, dir.path(), None);
    let mem = Arc::new(TraceFile::from_trace(read_trace(&csv).unwrap()));
    for past_end in [
        PastEnd::Loop,
        PastEnd::Hold,
        PastEnd::Bootstrap { block: 37 },
    ] {
        // Mapped onto 12 layers × 6 experts too: cycling layers and folding experts read one step.
        for (layers, experts, map) in [(8, 16, false), (12, 6, true)] {
            let make = |t: Arc<TraceFile>| TraceReplay::new(t, layers, experts, past_end, map, 5);
            let mut m = make(mem.clone()).unwrap();
            let mut c = make(Arc::new(TraceFile::open(&csv).unwrap())).unwrap();
            let mut b = make(Arc::new(TraceFile::open(&bin).unwrap())).unwrap();
            let n = layers * experts;
            let (mut x, mut y, mut z) = (vec![0.0; n], vec![0.0; n], vec![0.0; n]);
            for s in (0..1200).step_by(7).chain(1195..1300) {
                m.fill_shares(s, &mut x);
                c.fill_shares(s, &mut y);
                b.fill_shares(s, &mut z);
                assert!(x == y && x == z, "{past_end:?} step {s}");
            }
            assert!(c.take_error().is_none() && b.take_error().is_none());
        }
    }
}

#[test]
fn a_truncated_binary_names_the_offset_and_the_step() {
    let dir = tempfile::tempdir().unwrap();
    let bin = to_binary(&real("routing_moe16top2_aux.csv"), dir.path(), Some("u32"));
    let bytes = std::fs::read(&bin).unwrap();
    let cut = dir.path().join("cut.moetrace");
    // 400 steps × 8 × 16 × 4 bytes; cut inside step 201.
    std::fs::write(&cut, &bytes[..HEADER_BYTES as usize + 200 * 512 + 100]).unwrap();
    let msg = err_of(&cut);
    assert!(
        msg.contains("cut.moetrace")
            && msg.contains("truncated")
            && msg.contains("inside step 201 (of 1..=400)")
            && msg.contains(&format!("byte {}", HEADER_BYTES + 200 * 512 + 100)),
        "{msg}"
    );
    std::fs::write(&cut, &bytes[..20]).unwrap();
    let msg = err_of(&cut);
    assert!(msg.contains("inside the 32-byte header"), "{msg}");
}

#[test]
fn wrong_magic_version_or_dtype_is_named_with_what_is_valid() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.moetrace");
    let mut h = header_bytes(1, 1, 2, Dtype::U8);
    h.extend([1, 2]);
    let cases: [(usize, &[u8], &str); 3] = [
        (
            0,
            b"MOETRACX",
            "byte 0: magic is \"MOETRACX\", expected `MOETRACE`",
        ),
        (
            8,
            &2u32.to_le_bytes(),
            "byte 8: format version 2; this moesim reads version 1",
        ),
        (
            12,
            &3u32.to_le_bytes(),
            "byte 12: dtype 3 bytes per count; valid: 1 (u8), 2 (u16), 4 (u32)",
        ),
    ];
    for (at, patch, want) in cases {
        let mut b = h.clone();
        b[at..at + patch.len()].copy_from_slice(patch);
        std::fs::write(&p, &b).unwrap();
        let msg = err_of(&p);
        assert!(msg.contains("x.moetrace") && msg.contains(want), "{msg}");
    }
    // Unchanged, it reads.
    std::fs::write(&p, &h).unwrap();
    assert_eq!(
        TraceFile::open(&p).unwrap().load().unwrap().counts(0, 0),
        &[1, 2]
    );
}

#[test]
fn a_header_shape_that_does_not_match_the_data_or_the_model_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("s.moetrace");
    // The header says 2 steps × 1 layer × 2 experts of u8 (4 bytes); 6 follow.
    let mut b = header_bytes(2, 1, 2, Dtype::U8);
    b.extend([1, 2, 3, 4, 5, 6]);
    std::fs::write(&p, &b).unwrap();
    let msg = err_of(&p);
    assert!(
        msg.contains("byte 36: 2 bytes follow the last step"),
        "{msg}"
    );
    let mut z = header_bytes(2, 0, 2, Dtype::U8);
    z.extend([1, 2]);
    std::fs::write(&p, &z).unwrap();
    assert!(err_of(&p).contains("byte 24: layers = 0"));
    // A well-formed binary trace of another shape than the model: the replay says so.
    b.truncate(b.len() - 2);
    std::fs::write(&p, &b).unwrap();
    let t = Arc::new(TraceFile::open(&p).unwrap());
    let msg = TraceReplay::new(t, 1, 4, PastEnd::Loop, false, 0)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("1 layers × 2 experts") && msg.contains("routing.map"),
        "{msg}"
    );
}

#[test]
fn a_bad_csv_cell_names_row_column_field_and_the_valid_range() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.csv");
    let cases = [
        ("1,0,1,x", "row 3: column 4 (count e1): `x` is not a non-negative integer (valid: a whole number 0..=4294967295)"),
        ("1,0, 7 ,99999999999", "row 3: column 4 (count e1): `99999999999` exceeds 4294967295"),
        ("1,,1,2", "row 3: column 2 (layer): `` is not a non-negative integer"),
        ("1,0,1,2,3", "row 3: has 5 fields, expected 4"),
    ];
    for (row, want) in cases {
        std::fs::write(&p, format!("step,layer,e0,e1\n\n{row}\n")).unwrap();
        let msg = err_of(&p);
        assert!(
            msg.contains("bad.csv") && msg.contains(want),
            "{row}: {msg}"
        );
    }
    // Spaces, a plus sign and CRLF line ends still read (the careful parser takes them).
    std::fs::write(&p, "step,layer,e0,e1\r\n1,0, 7 ,+2\r\n").unwrap();
    assert_eq!(read_trace(&p).unwrap().counts(0, 0), &[7, 2]);
}

#[test]
fn a_trace_that_changes_during_the_run_fails_the_run_not_silently() {
    let dir = tempfile::tempdir().unwrap();
    let bin = to_binary(&real("routing_moe16top2_aux.csv"), dir.path(), None);
    let t = Arc::new(TraceFile::open(&bin).unwrap());
    let mut r = TraceReplay::new(t, 8, 16, PastEnd::Loop, false, 0).unwrap();
    let mut out = vec![0.0; 128];
    r.fill_shares(0, &mut out);
    assert!(r.take_error().is_none());
    let bytes = std::fs::read(&bin).unwrap();
    std::fs::write(&bin, &bytes[..bytes.len() / 2]).unwrap();
    for s in 0..400 {
        r.fill_shares(s, &mut out);
    }
    let msg = r
        .take_error()
        .expect("a read past the new end fails")
        .to_string();
    assert!(
        msg.contains("t.moetrace") && msg.contains("changed since it was checked"),
        "{msg}"
    );
}

#[test]
fn convert_refuses_a_dtype_too_small_and_an_unknown_extension() {
    let dir = tempfile::tempdir().unwrap();
    let t = TraceFile::open(&real("routing_moe16top2_aux.csv")).unwrap();
    let out = dir.path().join("t.moetrace");
    let msg = output_format(&t, &out, Some("u8")).unwrap_err().to_string();
    assert!(
        msg.contains("--dtype u8 holds counts up to 255") && msg.contains("use u16"),
        "{msg}"
    );
    let msg = output_format(&t, &out, Some("i8")).unwrap_err().to_string();
    assert!(msg.contains("valid: u8, u16, u32"), "{msg}");
    let msg = output_format(&t, &dir.path().join("t.bin"), None)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("`.bin`; valid: `.moetrace` (binary) or `.csv`"),
        "{msg}"
    );
    assert_eq!(
        output_format(&t, &dir.path().join("t.csv"), None).unwrap(),
        TraceFormat::WideCsv
    );
}

/// A long-layout trace of `steps` × 3 layers × 5 experts with its rows grouped by step, each step's
/// rows in a scrambled order; and the same rows with the steps interleaved (not grouped).
fn long_texts(steps: u64) -> (String, String) {
    let mut rows = Vec::new();
    for s in 1..=steps {
        let mut step_rows = Vec::new();
        for l in 0..3u64 {
            for e in 0..5u64 {
                let c = (s * 7919 + l * 104_729 + e * 1_299_709) % 997;
                step_rows.push(format!("{s},{l},{e},{c}"));
            }
        }
        // A fixed scramble within the step (rows of a step may come in any order).
        step_rows.sort_by_key(|r| r.bytes().rev().map(u64::from).sum::<u64>() % 11);
        rows.push(step_rows);
    }
    let grouped = rows.iter().flatten().cloned().collect::<Vec<_>>();
    let mut interleaved = Vec::new();
    for i in 0..15 {
        for r in rows.iter().rev() {
            interleaved.push(r[i].clone());
        }
    }
    let head = "step,layer,expert,tokens\n";
    (
        format!("{head}{}\n", grouped.join("\n")),
        format!("{head}{}\n", interleaved.join("\r\n")),
    )
}

#[test]
fn a_long_trace_grouped_by_step_is_streamed_and_replays_the_in_memory_shares() {
    let dir = tempfile::tempdir().unwrap();
    let (grouped, interleaved) = long_texts(40);
    let (g, i) = (dir.path().join("g.csv"), dir.path().join("i.csv"));
    std::fs::write(&g, &grouped).unwrap();
    std::fs::write(&i, &interleaved).unwrap();
    let streamed = Arc::new(TraceFile::open(&g).unwrap());
    // The interleaved file read whole (the reference), and as `TraceFile::open` takes it: sorted
    // into a temporary binary trace.
    let memory = Arc::new(TraceFile::from_trace(read_long(&i).unwrap()));
    let sorted = Arc::new(TraceFile::open(&i).unwrap());
    assert_eq!(streamed.format_name(), "long CSV (streamed)");
    assert_eq!(
        sorted.format_name(),
        "long CSV (sorted into a temporary binary trace)"
    );
    assert_eq!(all(&sorted.load().unwrap()), all(&memory.load().unwrap()));
    assert_eq!(sorted.max_count, memory.max_count);
    assert_eq!(
        (streamed.steps, streamed.layers, streamed.experts),
        (40, 3, 5)
    );
    assert_eq!(streamed.max_count, memory.max_count);
    // Every step alike, forward then backward (each backward read a seek).
    let whole = memory.load().unwrap();
    let mut c = streamed.cursor().unwrap();
    for s in (0..40).chain((0..40).rev()).chain([7, 7, 30, 2]) {
        let want: Vec<u32> = (0..3).flat_map(|l| whole.counts(s, l).to_vec()).collect();
        assert_eq!(c.step(&streamed, s).unwrap(), &want[..], "step {s}");
    }
    // Replay: the same shares bit for bit, past the end too (looped), with and without mapping.
    for (layers, experts, map) in [(3, 5, false), (4, 8, true)] {
        let make = |t: Arc<TraceFile>| {
            TraceReplay::new(t, layers, experts, PastEnd::Loop, map, 3).unwrap()
        };
        let (mut a, mut b) = (make(streamed.clone()), make(memory.clone()));
        let (mut sa, mut sb) = (vec![0.0; layers * experts], vec![0.0; layers * experts]);
        for step in 0..95 {
            a.fill_shares(step, &mut sa);
            b.fill_shares(step, &mut sb);
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&sa), bits(&sb), "step {step}");
        }
        assert!(a.take_error().is_none());
    }
}

#[test]
fn a_bad_long_trace_row_names_the_file_row_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let head = "step,layer,expert,tokens\n1,0,0,3\n1,0,1,4\n";
    let cases = [
        (
            "1,0,x,5\n",
            "row 4: column 3 (expert): `x` is not a non-negative integer",
        ),
        (
            "1,0,2,-1\n",
            "row 4: column 4 (tokens): `-1` is not a non-negative integer",
        ),
        (
            "1,0,2,5000000000\n",
            "row 4: column 4 (tokens): 5000000000 exceeds 4294967295",
        ),
        (
            "1,0,2\n",
            "row 4: has 3 fields, expected 4 (step, layer, expert, tokens)",
        ),
        (
            "0,0,2,1\n",
            "row 4: column 1 (step): step 0: steps are 1-based",
        ),
        (
            "1,0,1,9\n",
            "row 4: step 1, layer 0, expert 1 already given on row 3",
        ),
        // Step 2 against step 1's shape (1 layer × 2 experts).
        (
            "2,0,0,1\n2,0,5,1\n",
            "row 5: column 3 (expert): expert 5 is outside the experts 0..2",
        ),
        (
            "2,1,0,1\n",
            "row 4: column 2 (layer): layer 1 is outside the layers 0..1",
        ),
        (
            "2,0,0,1\n2,0,0,2\n",
            "row 5: step 2, layer 0, expert 0 already given on row 4",
        ),
        // Grouped but incomplete, or with a gap: the whole file is known to be grouped first.
        (
            "2,0,1,1\n3,0,0,1\n3,0,1,1\n",
            "step 2, layer 0 lacks experts [0]",
        ),
        ("3,0,0,1\n3,0,1,1\n", "step 2 has no rows"),
    ];
    for (i, (rows, want)) in cases.iter().enumerate() {
        let p = dir.path().join(format!("bad{i}.csv"));
        std::fs::write(&p, format!("{head}{rows}")).unwrap();
        let msg = err_of(&p);
        assert!(msg.starts_with(&p.display().to_string()), "{msg}");
        assert!(msg.contains(want), "case {i}: {msg}");
    }
}

#[test]
fn a_trace_opened_again_unchanged_is_shared_and_a_changed_one_is_checked_again() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("shared.csv");
    std::fs::write(&p, "step,layer,e0,e1\n1,0,1,2\n2,0,3,4\n").unwrap();
    let a = TraceFile::open_shared(&p).unwrap();
    let b = TraceFile::open_shared(&p).unwrap();
    assert!(Arc::ptr_eq(&a, &b));
    assert_eq!(a.steps, 2);
    // Rewritten (another length): opened and checked afresh, errors included.
    std::fs::write(&p, "step,layer,e0,e1\n1,0,1,2\n2,0,3,4\n3,0,5,6\n").unwrap();
    let c = TraceFile::open_shared(&p).unwrap();
    assert!(!Arc::ptr_eq(&a, &c));
    assert_eq!(c.steps, 3);
    std::fs::write(&p, "step,layer,e0,e1\n1,0,1,x\n").unwrap();
    let msg = TraceFile::open_shared(&p).unwrap_err().to_string();
    assert!(msg.contains("row 2") && msg.contains("e1"), "{msg}");
}

/// Every count of `t`, step-major, then layer, then expert.
fn all(t: &RoutingTrace) -> Vec<u32> {
    (0..t.steps)
        .flat_map(|s| (0..t.layers).flat_map(move |l| t.counts(s, l).to_vec()))
        .collect()
}

#[test]
fn a_long_trace_in_any_order_is_sorted_in_buckets_into_the_counts_read_whole() {
    let dir = tempfile::tempdir().unwrap();
    let (_, interleaved) = long_texts(40);
    let p = dir.path().join("i.csv");
    std::fs::write(&p, &interleaved).unwrap();
    let whole = read_long(&p).unwrap();
    let start = "step,layer,expert,tokens\n".len() as u64;
    // One step (15 cells) a bucket, 4 steps with a ragged last bucket, and all in one.
    for cells in [1, 15, 60, 100, 1 << 20] {
        let s = spill_long(&p, start, cells).unwrap();
        assert_eq!(
            (s.header.steps, s.header.layers, s.header.experts),
            (40, 3, 5)
        );
        assert_eq!(s.max_count, whole.max_count());
        let t = TraceFile::open(&s.data).unwrap();
        assert_eq!(
            all(&t.load().unwrap()),
            all(&whole),
            "{cells} cells a bucket"
        );
    }
}

#[test]
fn a_long_trace_in_any_order_reports_what_reading_it_whole_reports() {
    let dir = tempfile::tempdir().unwrap();
    let head = "step,layer,expert,tokens\n";
    // Steps out of order (2 before 1), so never streamed; errors in later buckets than the first.
    let cases = [
        // A repeat in step 3's bucket after one in step 1's: the file's first repeat is named.
        "2,0,0,1\n2,0,1,1\n1,0,0,1\n3,0,0,1\n3,0,0,2\n1,0,1,1\n1,0,1,5\n3,0,1,1\n",
        "2,0,0,1\n2,0,1,1\n1,0,0,1\n1,0,1,1\n3,0,1,1\n1,1,0,1\n",
        "2,0,0,1\n2,0,1,1\n1,0,0,1\n1,0,1,1\n",
        "2,0,0,1\n2,0,1,1\n1,0,0,1\n1,0,1,1\n4,0,1,1\n4,0,0,1\n",
        "2,0,0,1\n1,0,0,1\n1,0,1,1\n",
    ];
    for (i, rows) in cases.iter().enumerate() {
        let p = dir.path().join(format!("any{i}.csv"));
        std::fs::write(&p, format!("{head}{rows}")).unwrap();
        let want = read_long(&p).map(|t| all(&t)).map_err(|e| e.to_string());
        for cells in [2, 4, 1 << 20] {
            let got = spill_long(&p, head.len() as u64, cells)
                .map(|s| all(&TraceFile::open(&s.data).unwrap().load().unwrap()))
                .map_err(|e| e.to_string());
            assert_eq!(got, want, "case {i}, {cells} cells a bucket");
        }
        if let Err(w) = want {
            assert_eq!(err_of(&p), w, "case {i} through TraceFile::open");
        }
    }
}

#[test]
fn a_sorted_long_trace_is_shared_while_held_and_its_temporary_file_goes_with_the_last_holder() {
    let dir = tempfile::tempdir().unwrap();
    let (_, interleaved) = long_texts(6);
    let p = dir.path().join("held.csv");
    std::fs::write(&p, &interleaved).unwrap();
    let a = TraceFile::open_shared(&p).unwrap();
    let b = TraceFile::open_shared(&p).unwrap();
    assert!(Arc::ptr_eq(&a, &b), "held: the same sorted trace");
    let data = a
        .sorted_into()
        .expect("sorted into a temporary file")
        .to_path_buf();
    assert!(data.exists());
    drop((a, b));
    // Nobody holds it: the file is gone, and the next open sorts the CSV again.
    assert!(!data.exists(), "{} left behind", data.display());
    let c = TraceFile::open_shared(&p).unwrap();
    assert_eq!(c.steps, 6);
    assert_ne!(c.sorted_into(), Some(data.as_path()));
}
