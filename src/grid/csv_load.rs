//! Generic CSV loader for grid series (EIA hourly files, Let's Wait Awhile files, user exports).
//!
//! Behaviour, in order:
//! - header names match case-insensitively after trimming and stripping a UTF-8 BOM; lines that
//!   start with `#` are comments;
//! - timestamps with a UTC offset are absolute; naive ones are read in `time_zone` with the DST
//!   rules of [`super::time`] (skipped local time: error; repeated hour: earlier instant first);
//! - rows must be in strictly increasing time order (a repeat is a duplicate error naming both
//!   lines, a step back is an out-of-order error);
//! - the interval is the most common difference between consecutive stamps; stamps that fall
//!   inside one interval (finer data, e.g. GB 2020 switching from 30 to 15 minutes) are averaged;
//! - interval-end stamps (`stamp_is_interval_end`) are moved back to the interval start;
//! - missing values (missing rows, or empty / `NA` / `N/A` / `n/e` / `-` / `NaN` cells) are
//!   interpolated linearly per column when a run is at most `max_gap_intervals` long; longer runs,
//!   and runs at the start or end, are errors.
//!
//! `load_column` (and `price_column`) is one column name, or `sum:A+B+C` to add several columns
//! (e.g. `sum:WND+SUN+WAT+OIL+NG+COL+NUC+OTH` for total net generation in the EIA files); a row
//! with any summed cell missing counts as missing.

use super::bounds::{CiUnit, Quantity};
use super::error::GridError;
use super::series::GridSeries;
use super::spec::GridFile;
use super::stamps::StampStyle;
use super::table::{load_table, ColumnReq, LoadReport, TableSpec};
use super::time::parse_time_zone;

/// Loads a generic grid CSV (`file.columns` says which column is what; see the module docs for the
/// rules) as the series of `region` (a label here).
pub fn load_csv(file: &GridFile, region: &str) -> Result<GridSeries, GridError> {
    load_csv_with_report(file, region).map(|(s, _)| s)
}

/// Like [`load_csv`], also returning what the loader did (rows averaged, values interpolated).
pub fn load_csv_with_report(
    file: &GridFile,
    region: &str,
) -> Result<(GridSeries, LoadReport), GridError> {
    let Some(cols) = &file.columns else {
        return Err(GridError::InvalidArgument {
            what: "generic grid format",
            value: file.path.display().to_string(),
            valid: "a column description (time_column, ci_column, ...) for the generic format",
        });
    };
    let context = file.path.display().to_string();
    let stamp_zone = if cols.time_zone.trim().is_empty() {
        "UTC"
    } else {
        cols.time_zone.as_str()
    };
    let tz = parse_time_zone(stamp_zone, &context)?;
    let local_tz = match &file.local_time_zone {
        Some(z) => parse_time_zone(z, &context)?,
        None => tz,
    };
    let unit = file.unit.unwrap_or(CiUnit::GPerKwh);
    let mut columns =
        vec![ColumnReq::required(&cols.ci_column, Quantity::Intensity).scaled(unit.to_g_per_kwh())];
    if let Some(l) = &cols.load_column {
        columns.push(ColumnReq::required(l, Quantity::Load));
    }
    if let Some(p) = &cols.price_column {
        columns.push(ColumnReq::required(p, Quantity::Price));
    }
    let table = load_table(&TableSpec {
        path: file.path.clone(),
        time_column: cols.time_column.clone(),
        stamp_style: StampStyle::Iso,
        time_zone: stamp_zone.to_string(),
        stamp_is_interval_end: cols.stamp.is_end(),
        columns,
        max_gap_intervals: file.max_gap_intervals,
        thousands_separator: false,
        row_filter: None,
        skip_blank_nonexistent: false,
        allow_out_of_range: file.allow_out_of_range,
    })?;
    let mut report = table.report;
    report.notes.insert(0, unit_note(&cols.ci_column, unit));
    let mut it = table.columns.into_iter().map(Option::unwrap_or_default);
    let ci = it.next().unwrap_or_default();
    let load = cols.load_column.as_ref().and_then(|_| it.next());
    let price = cols.price_column.as_ref().and_then(|_| it.next());
    let series = GridSeries {
        region: region.to_string(),
        tz: local_tz,
        start_utc_s: table.start_utc_s,
        interval_s: table.interval_s,
        ci_g_per_kwh: ci,
        ci_kind: cols.ci_kind,
        ci_name: cols.ci_column.trim().to_string(),
        ci_alt: Vec::new(),
        load_mw: load,
        price_per_mwh: price,
        source: crate::io::lexical(&file.path).display().to_string(),
        notes: report.notes.clone(),
    };
    series.validate()?;
    Ok((series, report))
}

/// The note saying in which unit an intensity column was read.
pub(crate) fn unit_note(column: &str, unit: CiUnit) -> String {
    if unit.to_g_per_kwh() == 1.0 {
        format!(
            "carbon intensity '{}' read as {} (= gCO2eq/kWh)",
            column.trim(),
            unit.name()
        )
    } else {
        format!(
            "carbon intensity '{}' read as {} and converted to gCO2eq/kWh (x {})",
            column.trim(),
            unit.name(),
            unit.to_g_per_kwh()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::super::spec::{CsvColumns, StampAt};
    use super::*;
    use std::io::Write;

    /// The column description of a generic test file (created empty if missing).
    fn cols(f: &mut GridFile) -> &mut CsvColumns {
        f.columns.get_or_insert_with(CsvColumns::default)
    }

    /// Writes `text` to a temporary CSV and returns it with a spec (UTC, start stamps, load "load").
    fn file(text: &str) -> (tempfile::NamedTempFile, GridFile) {
        let mut f = match tempfile::NamedTempFile::new() {
            Ok(f) => f,
            Err(e) => panic!("tempfile: {e}"),
        };
        if let Err(e) = f.write_all(text.as_bytes()) {
            panic!("write: {e}");
        }
        let mut spec = GridFile::generic(
            f.path(),
            CsvColumns {
                time_column: "time".into(),
                time_zone: "UTC".into(),
                ci_column: "ci".into(),
                load_column: Some("load".into()),
                ..Default::default()
            },
        );
        spec.max_gap_intervals = 2;
        (f, spec)
    }

    fn ok(spec: &GridFile) -> (GridSeries, LoadReport) {
        match load_csv_with_report(spec, "T") {
            Ok(x) => x,
            Err(e) => panic!("unexpected error: {e}"),
        }
    }

    fn err(spec: &GridFile) -> String {
        match load_csv(spec, "T") {
            Ok(s) => panic!("expected an error, got {} intervals", s.len()),
            Err(e) => e.to_string(),
        }
    }

    const T0: i64 = 1_640_995_200; // 2022-01-01T00:00:00Z

    #[test]
    fn reads_offsets_bom_and_loose_headers() {
        let (_f, spec) = file(
            "\u{feff} TIME ,CI, Load \n2022-01-01T00:00:00+00:00,100,5\n2022-01-01 01:00:00+00:00,200,6\n2022-01-01T03:00:00+01:00,300,7\n",
        );
        let (s, r) = ok(&spec);
        assert_eq!((s.start_utc_s, s.interval_s, s.len()), (T0, 3600, 3));
        assert_eq!(s.ci_g_per_kwh, vec![100.0, 200.0, 300.0]);
        assert_eq!(s.load_mw, Some(vec![5.0, 6.0, 7.0]));
        assert_eq!(
            r.interpolated,
            vec![("ci".to_string(), 0), ("load".to_string(), 0)]
        );
    }

    #[test]
    fn missing_file_names_the_path() {
        let spec = GridFile::generic("/nonexistent/grid.csv", CsvColumns::default());
        let e = err(&spec);
        assert!(
            e.contains("/nonexistent/grid.csv") && e.contains("cannot read"),
            "{e}"
        );
    }

    #[test]
    fn unknown_column_lists_the_columns() {
        let (_f, mut spec) = file("time,ci,load\n2022-01-01 00:00,1,1\n");
        cols(&mut spec).ci_column = "carbon".into();
        let e = err(&spec);
        assert!(
            e.contains("'carbon'") && e.contains("'time', 'ci', 'load'") && e.contains(":1:"),
            "{e}"
        );
    }

    #[test]
    fn bad_number_names_line_column_and_value() {
        let (_f, spec) = file("time,ci,load\n2022-01-01 00:00,1,1\n2022-01-01 01:00,1,x7\n");
        let e = err(&spec);
        assert!(
            e.contains(":3:")
                && e.contains("'load'")
                && e.contains("'x7'")
                && e.contains("decimal"),
            "{e}"
        );
        let (_f, spec) = file("time,ci,load\n2022-01-01 00:00,-4,1\n2022-01-01 01:00,1,1\n");
        let e = err(&spec);
        assert!(
            e.contains(":2:")
                && e.contains("'ci'")
                && e.contains("plausible range 0 ..= 2000")
                && e.contains("allow_out_of_range"),
            "{e}"
        );
    }

    #[test]
    fn bad_timestamp_names_line_and_forms() {
        let (_f, spec) = file("time,ci,load\n2022-01-01 00:00,1,1\n01/02/2022 1:00 PM,1,1\n");
        let e = err(&spec);
        assert!(
            e.contains(":3:")
                && e.contains("'time'")
                && e.contains("01/02/2022")
                && e.contains("YYYY-MM-DD"),
            "{e}"
        );
    }

    #[test]
    fn duplicate_names_both_lines() {
        let (_f, spec) = file(
            "time,ci,load\n2022-01-01 00:00,1,1\n2022-01-01 01:00,1,1\n2022-01-01T01:00Z,2,2\n",
        );
        let e = err(&spec);
        assert!(
            e.contains(":4:") && e.contains("duplicate") && e.contains("line 3"),
            "{e}"
        );
    }

    #[test]
    fn out_of_order_names_the_row() {
        let (_f, spec) = file("time,ci,load\n2022-01-01 02:00,1,1\n2022-01-01 01:00,1,1\n");
        let e = err(&spec);
        assert!(
            e.contains(":3:") && e.contains("earlier than line 2"),
            "{e}"
        );
    }

    #[test]
    fn long_gap_is_an_error_naming_rows_and_limit() {
        // Missing rows 01:00..03:00 (3 intervals) with a limit of 2.
        let (_f, spec) = file(
            "time,ci,load\n2022-01-01 00:00,1,1\n2022-01-01 04:00,5,5\n2022-01-01 05:00,6,6\n",
        );
        let e = err(&spec);
        assert!(
            e.contains("3 missing") && e.contains("line 2 and line 3") && e.contains("at most 2"),
            "{e}"
        );
        assert!(
            e.contains("rows missing")
                && e.contains("2022-01-01T01:00:00Z to 2022-01-01T03:00:00Z"),
            "{e}"
        );
        // Empty cells count the same way.
        let (_f, spec) = file("time,ci,load\n2022-01-01 00:00,1,1\n2022-01-01 01:00,,1\n2022-01-01 02:00,n/e,1\n2022-01-01 03:00,,1\n2022-01-01 04:00,5,1\n");
        let e = err(&spec);
        assert!(
            e.contains("'ci'") && e.contains("3 missing") && e.contains("line 2 and line 6"),
            "{e}"
        );
    }

    #[test]
    fn short_gaps_are_interpolated() {
        let (_f, spec) = file(
            "time,ci,load\n2022-01-01 00:00,10,100\n2022-01-01 02:00,30,\n2022-01-01 03:00,40,400\n",
        );
        let (s, r) = ok(&spec);
        assert_eq!(s.ci_g_per_kwh, vec![10.0, 20.0, 30.0, 40.0]);
        assert_eq!(s.load_mw, Some(vec![100.0, 200.0, 300.0, 400.0]));
        assert_eq!(
            r.interpolated,
            vec![("ci".to_string(), 1), ("load".to_string(), 2)]
        );
    }

    #[test]
    fn missing_values_at_the_edges_are_errors() {
        let (_f, spec) = file("time,ci,load\n2022-01-01 00:00,,1\n2022-01-01 01:00,1,1\n");
        let e = err(&spec);
        assert!(e.contains("start") && e.contains("line 3"), "{e}");
    }

    #[test]
    fn sum_columns_add_and_propagate_missing() {
        let (_f, mut spec) = file(
            "time,ci,A,B\n2022-01-01 00:00,1,1,2\n2022-01-01 01:00,1,3,\n2022-01-01 02:00,1,5,6\n",
        );
        cols(&mut spec).load_column = Some("sum: a + B".into());
        let (s, _) = ok(&spec);
        assert_eq!(s.load_mw, Some(vec![3.0, 7.0, 11.0]));
        cols(&mut spec).load_column = Some("sum:A++B".into());
        assert!(err(&spec).contains("sum:"));
        cols(&mut spec).load_column = Some("sum:A+C".into());
        assert!(err(&spec).contains("'C'"));
    }

    #[test]
    fn interval_end_stamps_move_back_one_interval() {
        let (_f, mut spec) = file("time,ci,load\n2022-01-01 01:00,1,1\n2022-01-01 02:00,2,2\n");
        cols(&mut spec).stamp = StampAt::End;
        let (s, _) = ok(&spec);
        assert_eq!((s.start_utc_s, s.len()), (T0, 2));
    }

    #[test]
    fn finer_rows_are_averaged_into_the_common_interval() {
        // 30-minute data switching to 15-minute data (as GB 2020 does).
        let (_f, mut spec) = file(
            "time,ci\n2022-01-01 00:00,10\n2022-01-01 00:30,20\n2022-01-01 01:00,30\n2022-01-01 01:30,40\n2022-01-01 02:00,50\n2022-01-01 02:30,60\n2022-01-01 02:45,80\n2022-01-01 03:00,90\n",
        );
        cols(&mut spec).load_column = None;
        let (s, r) = ok(&spec);
        assert_eq!(s.interval_s, 1800);
        assert_eq!(
            s.ci_g_per_kwh,
            vec![10.0, 20.0, 30.0, 40.0, 50.0, 70.0, 90.0]
        );
        assert_eq!(r.averaged_intervals, 1);
        assert_eq!(s.load_mw, None);
    }

    #[test]
    fn too_few_rows_and_bad_zone() {
        let (_f, spec) = file("time,ci,load\n2022-01-01 00:00,1,1\n");
        assert!(err(&spec).contains("1 data row"));
        let (_f, mut spec) = file("time,ci,load\n2022-01-01 00:00,1,1\n2022-01-01 01:00,1,1\n");
        cols(&mut spec).time_zone = "Pacific Time".into();
        assert!(err(&spec).contains("unknown time zone 'Pacific Time'"));
    }

    #[test]
    fn dst_spring_forward_local_stamps_are_contiguous() {
        // Los Angeles, 2022-03-13: clocks jump 02:00 -> 03:00, so 01:00 and 03:00 are one hour apart.
        let (_f, mut spec) = file("time,ci\n2022-03-13 00:00,1\n2022-03-13 01:00,2\n2022-03-13 03:00,3\n2022-03-13 04:00,4\n");
        cols(&mut spec).time_zone = "America/Los_Angeles".into();
        cols(&mut spec).load_column = None;
        spec.max_gap_intervals = 0;
        let (s, _) = ok(&spec);
        assert_eq!(s.start_utc_s, 1_647_158_400); // 2022-03-13T08:00Z
        assert_eq!(s.ci_g_per_kwh, vec![1.0, 2.0, 3.0, 4.0]);
        let hours: Vec<u32> = (0..s.len()).map(|i| s.local_hour(i)).collect();
        assert_eq!(hours, vec![0, 1, 3, 4]);
        // A stamp inside the skipped hour is an error naming the row.
        let (_f, mut spec2) = file("time,ci\n2022-03-13 01:00,2\n2022-03-13 02:00,3\n");
        cols(&mut spec2).time_zone = "America/Los_Angeles".into();
        cols(&mut spec2).load_column = None;
        let e = err(&spec2);
        assert!(e.contains(":3:") && e.contains("does not exist"), "{e}");
    }

    #[test]
    fn dst_fall_back_repeated_hour_maps_to_both_instants() {
        // Los Angeles, 2022-11-06: 01:00-01:59 happens twice (PDT, then PST).
        let (_f, mut spec) = file("time,ci\n2022-11-06 00:00,1\n2022-11-06 01:00,2\n2022-11-06 01:00,3\n2022-11-06 02:00,4\n");
        cols(&mut spec).time_zone = "America/Los_Angeles".into();
        cols(&mut spec).load_column = None;
        spec.max_gap_intervals = 0;
        let (s, _) = ok(&spec);
        assert_eq!(s.start_utc_s, 1_667_718_000); // 2022-11-06T07:00Z
        assert_eq!(s.ci_g_per_kwh, vec![1.0, 2.0, 3.0, 4.0]);
        let hours: Vec<u32> = (0..s.len()).map(|i| s.local_hour(i)).collect();
        assert_eq!(hours, vec![0, 1, 1, 2]);
        // Listed once, the repeated hour is a one-interval gap: an error with no allowance...
        let (_f, mut spec1) =
            file("time,ci\n2022-11-06 00:00,1\n2022-11-06 01:00,2\n2022-11-06 02:00,4\n");
        cols(&mut spec1).time_zone = "America/Los_Angeles".into();
        cols(&mut spec1).load_column = None;
        spec1.max_gap_intervals = 0;
        assert!(err(&spec1).contains("1 missing"));
        // ...and interpolated with one.
        spec1.max_gap_intervals = 1;
        assert_eq!(ok(&spec1).0.ci_g_per_kwh, vec![1.0, 2.0, 3.0, 4.0]);
    }

    #[test]
    fn local_zone_can_differ_from_stamp_zone() {
        let (_f, mut spec) = file("time,ci\n2020-07-01 00:00:00,1\n2020-07-01 00:30:00,2\n");
        cols(&mut spec).load_column = None;
        spec.local_time_zone = Some("Europe/London".into());
        let (s, _) = ok(&spec);
        assert_eq!(s.local_hour(0), 1); // BST = UTC+1
    }
}
