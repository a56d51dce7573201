//! Tests of the cost inputs read from files: hints rules and errors, series on the grid's intervals.

use super::*;
use crate::grid::{default_profile_series, GridSeries};
use std::path::Path;

/// Two days of hourly CISO profile from 2022-07-01 00:00 UTC.
fn grid() -> GridSeries {
    default_profile_series("CISO", 1_656_633_600, 2 * 86_400, 3600, Some(50.0)).unwrap()
}

fn hints_spec(path: &Path, use_as: HintUse) -> HintsSpec {
    HintsSpec {
        path: path.to_path_buf(),
        time_column: "time".into(),
        hint_column: "hint".into(),
        time_zone: "UTC".into(),
        use_as,
    }
}

fn hints_of(text: &str) -> Result<Vec<Option<Hint>>, String> {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("h.csv");
    std::fs::write(&p, text).unwrap();
    hints::on_grid(&hints_spec(&p, HintUse::Advice), &grid()).map_err(|e| e.to_string())
}

#[test]
fn a_hint_holds_until_the_next_row_and_the_last_for_one_spacing() {
    let h = hints_of("# comment\ntime,hint\n2022-07-01 02:00,pause\n2022-07-01 04:00,RUN\n2022-07-01 06:00, throttle\n").unwrap();
    assert_eq!(h[0..2], [None, None]); // before the first row: no hint
    assert_eq!(h[2..4], [Some(Hint::Pause); 2]);
    assert_eq!(h[4..6], [Some(Hint::Run); 2]);
    // The last row holds for the file's spacing (2 h), then no hint.
    assert_eq!(h[6..8], [Some(Hint::Throttle); 2]);
    assert_eq!(h[8], None);
}

#[test]
fn local_stamps_are_read_in_the_zone() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("h.csv");
    std::fs::write(
        &p,
        "time,hint\n2022-06-30 17:00,pause\n2022-06-30 19:00,run\n",
    )
    .unwrap();
    let spec = HintsSpec {
        time_zone: "America/Los_Angeles".into(),
        ..hints_spec(&p, HintUse::Constraint)
    };
    // 17:00 PDT = 00:00 UTC on 1 July.
    let h = hints::on_grid(&spec, &grid()).unwrap();
    assert_eq!(
        h[0..3],
        [Some(Hint::Pause), Some(Hint::Pause), Some(Hint::Run)]
    );
}

#[test]
fn an_unknown_hint_is_refused_with_its_line() {
    let e = hints_of("time,hint\n2022-07-01 00:00,run\n2022-07-01 01:00,stop\n").unwrap_err();
    assert!(
        e.contains("h.csv:3") && e.contains("`stop`") && e.contains("run, throttle, pause"),
        "{e}"
    );
}

#[test]
fn a_bad_stamp_is_refused_with_its_line() {
    let e = hints_of("time,hint\nyesterday,run\n").unwrap_err();
    assert!(
        e.contains("h.csv:2") && e.contains("'time'") && e.contains("YYYY-MM-DD"),
        "{e}"
    );
}

#[test]
fn rows_out_of_order_are_refused() {
    let e = hints_of("time,hint\n2022-07-01 02:00,run\n2022-07-01 01:00,pause\n").unwrap_err();
    assert!(
        e.contains("h.csv:3") && e.contains("strictly increasing"),
        "{e}"
    );
}

#[test]
fn a_missing_column_is_refused_with_the_columns_there_are() {
    let e = hints_of("stamp,hint\n2022-07-01 02:00,run\n").unwrap_err();
    assert!(e.contains("'time'") && e.contains("stamp, hint"), "{e}");
}

#[test]
fn a_file_without_rows_is_refused() {
    let e = hints_of("time,hint\n").unwrap_err();
    assert!(e.contains("no rows"), "{e}");
}

#[test]
fn a_nonexistent_local_time_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("h.csv");
    // 02:30 on 13 March 2022 does not exist in California (clocks jump 02:00 → 03:00).
    std::fs::write(&p, "time,hint\n2022-03-13 02:30,pause\n").unwrap();
    let spec = HintsSpec {
        time_zone: "America/Los_Angeles".into(),
        ..hints_spec(&p, HintUse::Constraint)
    };
    let e = hints::on_grid(&spec, &grid()).unwrap_err().to_string();
    assert!(e.contains("daylight-saving"), "{e}");
}

fn value_csv(path: &Path) -> ValueCsv {
    ValueCsv {
        path: path.to_path_buf(),
        time_column: "t".into(),
        value_column: "v".into(),
        time_zone: "UTC".into(),
        stamp: crate::grid::StampAt::Start,
        max_gap_intervals: 0,
        wrap_years: false,
    }
}

/// A half-hourly file over the grid's two days: value = the half-hour's index.
fn half_hourly(dir: &Path, f: impl Fn(usize) -> f64) -> std::path::PathBuf {
    let p = dir.join("v.csv");
    let mut text = String::from("t,v\n");
    for k in 0..96 {
        text.push_str(&format!(
            "2022-07-01 {:02}:{:02},{}\n",
            k / 2 % 24,
            30 * (k % 2),
            f(k)
        ));
        if k == 47 {
            break;
        }
    }
    for k in 48..96 {
        text.push_str(&format!(
            "2022-07-02 {:02}:{:02},{}\n",
            (k - 48) / 2,
            30 * (k % 2),
            f(k)
        ));
    }
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn a_series_is_averaged_onto_the_grid_intervals() {
    let dir = tempfile::tempdir().unwrap();
    let p = half_hourly(dir.path(), |k| k as f64);
    let v = series::on_grid(&value_csv(&p), crate::grid::Quantity::Price, &grid(), "x").unwrap();
    assert_eq!(v.len(), 48);
    // Hour h is the mean of half-hours 2h and 2h + 1.
    assert_eq!(v[0], 0.5);
    assert_eq!(v[47], 94.5);
}

#[test]
fn a_series_short_of_the_run_is_refused_unless_it_wraps() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("v.csv");
    std::fs::write(&p, "t,v\n2022-07-01 00:00,1\n2022-07-01 01:00,2\n").unwrap();
    let e = series::on_grid(
        &value_csv(&p),
        crate::grid::Quantity::Price,
        &grid(),
        "carbon_price_per_t",
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("carbon_price_per_t") && e.contains("v.csv"),
        "{e}"
    );
}

#[test]
fn a_series_cell_out_of_range_is_refused_by_the_loader() {
    let dir = tempfile::tempdir().unwrap();
    let p = half_hourly(dir.path(), |k| if k == 5 { 1e6 } else { 40.0 });
    let e = series::on_grid(
        &value_csv(&p),
        crate::grid::Quantity::Price,
        &grid(),
        "electricity_price_per_mwh",
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("electricity_price_per_mwh")
            && e.contains("v.csv:7")
            && e.contains("plausible range")
            && !e.contains("grid.csv.allow_out_of_range"),
        "{e}"
    );
}

fn spec() -> CostSpec {
    CostSpec {
        electricity: None,
        carbon_price_per_t: None,
        compute_hour_tax: 0.0,
        levy_per_kwh: 0.0,
        forecast: None,
        hints: None,
    }
}

#[test]
fn a_negative_carbon_price_in_a_series_is_refused_with_its_time() {
    let dir = tempfile::tempdir().unwrap();
    let p = half_hourly(dir.path(), |k| if k >= 10 { -5.0 } else { 30.0 });
    let s = CostSpec {
        carbon_price_per_t: Some(PriceSource::Series(value_csv(&p))),
        ..spec()
    };
    let e = CostInputs::load(&s, &mut grid()).unwrap_err().to_string();
    assert!(
        e.contains("carbon_price_per_t") && e.contains("2022-07-01T05:00:00Z") && e.contains("≥ 0"),
        "{e}"
    );
}

#[test]
fn an_electricity_series_replaces_the_grids_price_and_none_at_all_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = half_hourly(dir.path(), |_| 77.0);
    let s = CostSpec {
        electricity: Some(PriceSource::Series(value_csv(&p))),
        ..spec()
    };
    let mut g = grid();
    CostInputs::load(&s, &mut g).unwrap();
    assert_eq!(g.price_per_mwh.as_deref().map(|p| p[3]), Some(77.0));
    let mut g = grid();
    g.price_per_mwh = None;
    assert!(matches!(
        CostInputs::load(&spec(), &mut g),
        Err(CostError::NoElectricityPrice)
    ));
}
