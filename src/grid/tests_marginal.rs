//! Tests of the marginal series beside the average one: each `[grid.marginal]` source loaded and windowed by `series_for`, and its errors.

use std::path::{Path, PathBuf};

use super::*;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/grid")
        .join(name)
}

fn spec(source: GridSource, marginal: Option<MarginalSource>) -> GridSpec {
    GridSpec {
        region: "CISO".into(),
        source,
        price_per_mwh: None,
        interval_s: 3600,
        currency: None,
        marginal,
    }
}

fn generic(path: &Path, ci_column: &str, kind: CiKind) -> GridFile {
    GridFile::generic(
        path,
        CsvColumns {
            time_column: "timestamp".into(),
            time_zone: "UTC".into(),
            ci_column: ci_column.into(),
            ci_kind: kind,
            ..CsvColumns::default()
        },
    )
}

const T0: i64 = 1_704_067_200; // 2024-01-01T00:00Z

/// A generic hourly CSV from 2024-01-01T00:00Z with columns `avg` (100 + hour) and `moer` (2 × avg).
fn two_column_csv(dir: &Path, hours: i64) -> PathBuf {
    let mut text = String::from("timestamp,avg,moer\n");
    for h in 0..hours {
        let t = chrono::DateTime::from_timestamp(T0 + h * 3600, 0).unwrap_or_default();
        let avg = 100 + h % 24;
        text.push_str(&format!(
            "{},{avg},{}\n",
            t.format("%Y-%m-%dT%H:%M:%S+00:00"),
            2 * avg
        ));
    }
    let p = dir.join("both.csv");
    std::fs::write(&p, text).unwrap_or_else(|e| panic!("{e}"));
    p
}

#[test]
fn a_marginal_column_of_the_same_file_is_loaded_and_windowed_beside_the_average() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let p = two_column_csv(dir.path(), 72);
    let s = spec(
        GridSource::File(Box::new(generic(&p, "avg", CiKind::Average))),
        Some(MarginalSource::File(Box::new(generic(
            &p,
            "moer",
            CiKind::Marginal,
        )))),
    );
    // A window 90 minutes into the file, 3 h long: averaged the same way in both signals.
    let g = series_for(&s, T0 + 5400, 3 * 3600).unwrap_or_else(|e| panic!("{e}"));
    let avg = g.ci_of_kind(CiKind::Average).unwrap_or_default().to_vec();
    let marg = g.ci_of_kind(CiKind::Marginal).unwrap_or_default().to_vec();
    assert_eq!(avg, vec![101.5, 102.5, 103.5]);
    assert_eq!(marg, vec![203.0, 205.0, 207.0]);
    assert_eq!(g.ci_name_of_kind(CiKind::Marginal), Some("moer"));
    assert!(g
        .notes
        .iter()
        .any(|n| n.contains("marginal intensity 'moer' from")));
}

#[test]
fn a_marginal_file_beside_the_embedded_profile_is_resampled_to_the_profile_grid() {
    // WattTime's 5-minute marginal rate beside the CISO profile, 15 minutes from 14:20Z.
    let wt = GridFile::new(
        fixture("watttime_client_forecast_pandas_index.csv"),
        GridFormat::WattTime,
    );
    let mut s = spec(
        GridSource::Profile,
        Some(MarginalSource::File(Box::new(wt))),
    );
    s.interval_s = 900;
    let g = series_for(&s, 1_716_906_000, 900).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(g.ci_kind, CiKind::Average);
    let m = g.ci_of_kind(CiKind::Marginal).unwrap_or_default();
    assert_eq!(m.len(), 1);
    // Mean of 479.4, 479.4 and the third 5-minute value, in g/kWh: a positive marginal rate.
    assert!(m[0] > 150.0 && m[0] < 250.0, "{m:?}");
}

#[test]
fn an_average_file_given_as_marginal_is_refused_with_what_would_do() {
    let em = GridFile::new(
        fixture("electricitymaps_hourly_2024_current.csv"),
        GridFormat::ElectricityMaps,
    );
    let s = spec(
        GridSource::Profile,
        Some(MarginalSource::File(Box::new(em))),
    );
    let e = series_for(&s, T0, 3600)
        .map(|_| ())
        .map_err(|e| e.to_string());
    assert!(
        e.as_ref()
            .is_err_and(|m| m.contains("electricitymaps_hourly_2024_current.csv")
                && m.contains("'lifecycle' is average")
                && m.contains("lifecycle, direct")),
        "{e:?}"
    );
}

#[test]
fn a_named_signal_must_exist_and_be_marginal() {
    let em = GridFile::new(
        fixture("electricitymaps_hourly_2024_current.csv"),
        GridFormat::ElectricityMaps,
    );
    let s = spec(
        GridSource::File(Box::new(em.clone())),
        Some(MarginalSource::Signal("direct".into())),
    );
    let e = series_for(&s, T0, 3600)
        .map(|_| ())
        .map_err(|e| e.to_string());
    assert!(
        e.as_ref()
            .is_err_and(|m| m.contains("'direct' is average") && m.contains("all average")),
        "{e:?}"
    );
    let s = spec(
        GridSource::File(Box::new(em)),
        Some(MarginalSource::Signal("moer".into())),
    );
    let e = series_for(&s, T0, 3600)
        .map(|_| ())
        .map_err(|e| e.to_string());
    assert!(
        e.as_ref()
            .is_err_and(|m| m.contains("'moer'") && m.contains("lifecycle, direct")),
        "{e:?}"
    );
    // A WattTime file's own co2_moer is marginal: accepted, and found as the marginal signal.
    let wt = GridFile::new(
        fixture("watttime_client_forecast_pandas_index.csv"),
        GridFormat::WattTime,
    );
    let s = spec(
        GridSource::File(Box::new(wt)),
        Some(MarginalSource::Signal("co2_moer".into())),
    );
    let g = series_for(&s, 1_716_906_000, 600).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(g.ci_name_of_kind(CiKind::Marginal), Some("co2_moer"));
    assert_eq!(g.ci_of_kind(CiKind::Average), None);
}

#[test]
fn a_marginal_file_with_a_missing_column_or_a_bad_cell_names_file_row_and_field() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let p = two_column_csv(dir.path(), 48);
    let primary = GridSource::File(Box::new(generic(&p, "avg", CiKind::Average)));
    let s = spec(
        primary.clone(),
        Some(MarginalSource::File(Box::new(generic(
            &p,
            "mef",
            CiKind::Marginal,
        )))),
    );
    let e = series_for(&s, T0, 3600)
        .map(|_| ())
        .map_err(|e| e.to_string());
    assert!(
        e.as_ref().is_err_and(|m| m.contains("both.csv:1")
            && m.contains("'mef'")
            && m.contains("'avg', 'moer'")),
        "{e:?}"
    );
    let text = std::fs::read_to_string(&p).unwrap_or_default();
    let bad = text.replacen(",204\n", ",abc\n", 1);
    let q = dir.path().join("bad.csv");
    std::fs::write(&q, bad).unwrap_or_else(|e| panic!("{e}"));
    let s = spec(
        primary,
        Some(MarginalSource::File(Box::new(generic(
            &q,
            "moer",
            CiKind::Marginal,
        )))),
    );
    let e = series_for(&s, T0, 3600)
        .map(|_| ())
        .map_err(|e| e.to_string());
    // 'abc' replaced 2 × 102 on the row of hour 2: line 4.
    assert!(
        e.as_ref()
            .is_err_and(|m| m.contains("bad.csv:4") && m.contains("moer") && m.contains("abc")),
        "{e:?}"
    );
}

#[test]
fn an_estimate_from_a_file_without_generation_by_fuel_is_an_error() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let p = two_column_csv(dir.path(), 48);
    let s = spec(
        GridSource::File(Box::new(generic(&p, "avg", CiKind::Average))),
        Some(MarginalSource::Estimate { min_changes: 10 }),
    );
    let e = series_for(&s, T0, 3600)
        .map(|_| ())
        .map_err(|e| e.to_string());
    assert!(
        e.as_ref().is_err_and(|m| m.contains("both.csv")
            && m.contains("no generation by fuel")
            && m.contains("eia930")),
        "{e:?}"
    );
}

#[test]
fn an_eia930_balance_excerpt_gives_a_marginal_signal_beside_its_mix() {
    let mut f = GridFile::new(
        fixture("EIA930_BALANCE_2022_Mar_excerpt.csv"),
        GridFormat::Eia930Balance,
    );
    f.max_gap_intervals = 2;
    let cols = load_grid_columns(&f, "CISO").unwrap_or_else(|e| panic!("{e}"));
    let fossil: Vec<&str> = cols
        .generation
        .iter()
        .map(|g| g.fuel)
        .filter(|f| FOSSIL_FUELS.contains(f))
        .collect();
    assert!(fossil.contains(&"gas"), "{fossil:?}");
    let (start, n) = (cols.start_utc_s, cols.len() as i64);
    let s = spec(
        GridSource::File(Box::new(f)),
        Some(MarginalSource::Estimate { min_changes: 2 }),
    );
    let g = series_for(&s, start, n * 3600).unwrap_or_else(|e| panic!("{e}"));
    let m = g.ci_of_kind(CiKind::Marginal).unwrap_or_default();
    assert_eq!(m.len(), g.len());
    assert!(m.iter().all(|x| (0.0..=1001.0 + 1e-6).contains(x)), "{m:?}");
    assert!(g.notes.iter().any(|n| n.contains("Siler-Evans")));
}
