//! Tests of grid files as users bring them (issue 14): EIA-930 2024 H2, WattTime, units, plausible ranges, ENTSO-E exports, re-saved files.

use std::path::{Path, PathBuf};

use super::*;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/grid")
        .join(name)
}

/// A temporary directory holding `name` with `text` (kept alive by the returned guard).
fn temp_file(name: &str, text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("write: {e}"));
    (dir, path)
}

/// The fixture's header line and its (1-based) lines `from..=to`, as a temporary file: the real
/// excerpts jump between dates, so each contiguous stretch is read on its own.
fn segment(name: &str, from: usize, to: usize) -> (tempfile::TempDir, PathBuf) {
    let text = std::fs::read_to_string(fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    let lines: Vec<&str> = text.lines().collect();
    let mut out = vec![lines[0]];
    out.extend(&lines[from - 1..to]);
    temp_file(name, &(out.join("\n") + "\n"))
}

fn file(path: &Path, format: GridFormat) -> GridFile {
    GridFile::new(path, format)
}

fn cols(f: &GridFile, region: &str) -> GridColumns {
    load_grid_columns(f, region).unwrap_or_else(|e| panic!("{}: {e}", f.path.display()))
}

fn series(f: &GridFile, region: &str) -> GridSeries {
    load_grid_file(f, region)
        .map(|(s, _)| s)
        .unwrap_or_else(|e| panic!("{}: {e}", f.path.display()))
}

fn error(f: &GridFile, region: &str) -> String {
    match load_grid_columns(f, region).and_then(GridColumns::into_series) {
        Ok(_) => panic!("{}: expected an error", f.path.display()),
        Err(e) => e.to_string(),
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9 * b.abs().max(1.0)
}

const LB: f64 = 0.453_592_37;

#[test]
fn every_new_fixture_is_detected_as_its_format() {
    for (name, want) in [
        (
            "eia930_balance_2024h2_synthetic_body.csv",
            GridFormat::Eia930Balance,
        ),
        (
            "watttime_client_forecast_pandas_index.csv",
            GridFormat::WattTime,
        ),
        (
            "watttime_v3_historical_docs_example.json",
            GridFormat::WattTime,
        ),
        ("entsoe_legacy_load_cet.csv", GridFormat::EntsoeLegacy),
        ("entsoe_legacy_price_cet.csv", GridFormat::EntsoeNew),
        ("entsoe_new_load_utc.csv", GridFormat::EntsoeNew),
        (
            "entsoe_new_price_cet_sequence_sequence_quirk.csv",
            GridFormat::EntsoeNew,
        ),
        (
            "electricitymaps_hourly_2024_estimated_semicolon_in_field.csv",
            GridFormat::ElectricityMaps,
        ),
        (
            "electricitymaps_hourly_2024_resaved_semicolon_derived.csv",
            GridFormat::ElectricityMaps,
        ),
    ] {
        assert_eq!(detect_format(&fixture(name)).ok(), Some(want), "{name}");
    }
}

// --- EIA-930 2024 H2: battery-split solar and wind, hydro without pumped storage, geothermal. ---

#[test]
fn eia930_2024h2_maps_every_fuel_column_and_gets_night_and_noon_right() {
    let f = file(
        &fixture("eia930_balance_2024h2_synthetic_body.csv"),
        GridFormat::Eia930Balance,
    );
    let (s, r) = load_grid_file(&f, "CISO").unwrap_or_else(|e| panic!("{e}"));
    // Hour-ending 08:00Z is the first row: the series starts 2024-07-01T07:00Z (local midnight PDT).
    assert_eq!(
        (s.start_utc_s, s.interval_s, s.len()),
        (1_719_817_200, 3600, 24)
    );
    assert_eq!((s.local_hour(2), s.local_hour(12)), (2, 12));
    // By hand from generate.py, Adjusted tier (factors g/kWh: gas 469, nuclear 16, hydro 4,
    // solar 46, wind 12, geothermal 38, other 700; storage left out).
    // 02:00: gas 9000, nuclear 2250, hydro 2500, wind 2000+100, geothermal 900, other 300.
    let night = (9000.0 * 469.0
        + 2250.0 * 16.0
        + 2500.0 * 4.0
        + 2100.0 * 12.0
        + 900.0 * 38.0
        + 300.0 * 700.0)
        / (9000.0 + 2250.0 + 2500.0 + 2100.0 + 900.0 + 300.0);
    // 12:00: gas 3000, nuclear 2250, hydro 3500, solar 14000+1200 (the misspelt 'witho' column),
    // wind 1500+100, geothermal 900, other 300.
    let noon = (3000.0 * 469.0
        + 2250.0 * 16.0
        + 3500.0 * 4.0
        + 15200.0 * 46.0
        + 1600.0 * 12.0
        + 900.0 * 38.0
        + 300.0 * 700.0)
        / (3000.0 + 2250.0 + 3500.0 + 15200.0 + 1600.0 + 900.0 + 300.0);
    assert!(
        close(s.ci_g_per_kwh[2], night),
        "{} vs {night}",
        s.ci_g_per_kwh[2]
    );
    assert!(
        close(s.ci_g_per_kwh[12], noon),
        "{} vs {noon}",
        s.ci_g_per_kwh[12]
    );
    assert!(noon < 100.0 && night > 250.0, "{noon} {night}");
    assert_eq!(s.load_mw.as_ref().map(|l| l[0]), Some(17550.0));
    let notes = r.notes.join(" | ");
    assert!(
        notes.contains("(Adjusted) fuel columns")
            && notes.contains("Solar witho Integrated Battery Storage (Adjusted)")
            && notes.contains("Geothermal (Adjusted)")
            && notes.contains("Pumped Storage  (Adjusted)")
            && notes.contains("left out of the intensity mix"),
        "{notes}"
    );
    assert_eq!(s.notes, r.notes);
}

#[test]
fn eia930_unknown_fuel_column_is_an_error_naming_column_and_file() {
    let text = std::fs::read_to_string(fixture("eia930_balance_2024h2_synthetic_body.csv"))
        .unwrap_or_default()
        .replace(
            "\"Net Generation (MW) from Geothermal (Adjusted)\"",
            "\"Net Generation (MW) from Hydrogen (Adjusted)\"",
        );
    let (_d, path) = temp_file("EIA930_BALANCE_2026_Jan_Jun.csv", &text);
    let e = error(&file(&path, GridFormat::Eia930Balance), "CISO");
    assert!(
        e.contains("EIA930_BALANCE_2026_Jan_Jun.csv:1:")
            && e.contains("'Net Generation (MW) from Hydrogen (Adjusted)'")
            && e.contains("unknown production type")
            && e.contains("geothermal"),
        "{e}"
    );
}

#[test]
fn eia930_interchange_file_is_refused_with_the_file_to_use() {
    let (_d, path) = temp_file(
        "EIA930_INTERCHANGE_2024_Jul_Dec.csv",
        "Balancing Authority,Data Date,Hour Number,Directly Interconnected Balancing Authority,Interchange (MW),Local Time at End of Hour,UTC Time at End of Hour,Region,DIBA_Region\n\
         CISO,07/01/2024,1,BANC,100,07/01/2024 1:00:00 AM,07/01/2024 8:00:00 AM,CAL,CAL\n",
    );
    let e = error(&file(&path, GridFormat::Eia930Balance), "CISO");
    assert!(e.contains("INTERCHANGE") && e.contains("BALANCE"), "{e}");
}

// --- WattTime: lbs/MWh marginal rates, CSV and JSON. ---

#[test]
fn watttime_client_csv_with_pandas_index_is_marginal_lbs_converted_to_g() {
    let f = file(
        &fixture("watttime_client_forecast_pandas_index.csv"),
        GridFormat::WattTime,
    );
    let s = series(&f, "CAISO_NORTH");
    assert_eq!((s.interval_s, s.len()), (300, 5));
    assert_eq!(
        (s.ci_name.as_str(), s.ci_kind),
        ("co2_moer", CiKind::Marginal)
    );
    // 2024-05-28T14:20:00+00:00, 479.4 lbs/MWh.
    assert_eq!(s.start_utc_s, 1_716_906_000);
    assert!(
        close(s.ci_g_per_kwh[0], 479.4 * LB),
        "{}",
        s.ci_g_per_kwh[0]
    );
    assert!(close(s.ci_g_per_kwh[3], 396.6 * LB));
    let notes = s.notes.join(" | ");
    assert!(
        notes.contains("lbs/MWh") && notes.contains("0.45359237"),
        "{notes}"
    );
}

#[test]
fn watttime_csv_without_index_and_with_a_unit_override() {
    // The client's get_historical_csv header (derived, see SOURCES.md) with rows in pandas' form.
    let header = std::fs::read_to_string(fixture(
        "watttime_client_historical_noindex_header_derived.csv",
    ))
    .unwrap_or_default();
    let text = format!(
        "{}2022-07-15 00:00:00+00:00,870\n2022-07-15 00:05:00+00:00,860\n",
        header
    );
    let (_d, path) = temp_file("CAISO_NORTH_co2_moer.csv", &text);
    let mut f = file(&path, GridFormat::WattTime);
    let s = series(&f, "CAISO_NORTH");
    assert!(close(s.ci_g_per_kwh[1], 860.0 * LB));
    f.unit = Some(CiUnit::KgPerMwh);
    assert_eq!(series(&f, "CAISO_NORTH").ci_g_per_kwh, vec![870.0, 860.0]);
}

#[test]
fn watttime_v3_json_docs_and_openapi_examples() {
    for name in [
        "watttime_v3_historical_docs_example.json",
        "watttime_v3_historical_openapi_example.json",
    ] {
        let f = file(&fixture(name), GridFormat::WattTime);
        let s = series(&f, "");
        assert_eq!(
            (s.interval_s, s.len(), s.region.as_str()),
            (300, 2, "CAISO_NORTH")
        );
        assert!(close(s.ci_g_per_kwh[0], 870.0 * LB) && close(s.ci_g_per_kwh[1], 860.0 * LB));
        assert_eq!(s.ci_kind, CiKind::Marginal);
    }
    let s = series(
        &file(
            &fixture("watttime_v3_forecast_openapi_example.json"),
            GridFormat::WattTime,
        ),
        "CAISO_NORTH",
    );
    assert_eq!((s.interval_s, s.len()), (300, 288));
}

#[test]
fn watttime_json_errors_name_line_and_column_and_stay_short() {
    // 5,000 good points, then a broken value on a known line: the message must not quote the file.
    let mut text = String::from("{\n  \"data\": [\n");
    for k in 0..5000 {
        text.push_str(&format!(
            "    {{\"point_time\": \"2022-07-15T00:00:00+00:00\", \"value\": {k}}},\n"
        ));
    }
    text.push_str("    {\"point_time\": \"2022-07-16T00:00:00+00:00\", \"value\": oops}\n  ]\n}\n");
    let (_d, path) = temp_file("big.json", &text);
    let e = error(&file(&path, GridFormat::WattTime), "X");
    assert!(
        e.contains("big.json:5003:") && e.contains("expected a WattTime v3 response"),
        "{e}"
    );
    assert!(e.len() < 600, "{} characters", e.len());
    // A wrong signal and an unknown unit are named.
    let (_d, path) = temp_file(
        "hd.json",
        r#"{"data": [{"point_time": "2022-07-15T00:00:00Z", "value": 1}, {"point_time": "2022-07-15T00:05:00Z", "value": 1}], "meta": {"signal_type": "health_damage", "units": "usd_per_mwh"}}"#,
    );
    let e = error(&file(&path, GridFormat::WattTime), "X");
    assert!(e.contains("meta.units") && e.contains("usd_per_mwh"), "{e}");
    // A signal that is not a carbon intensity is refused by name.
    let (_d, path) = temp_file(
        "hd2.json",
        r#"{"data": [{"point_time": "2022-07-15T00:00:00Z", "value": 1}, {"point_time": "2022-07-15T00:05:00Z", "value": 1}], "meta": {"signal_type": "health_damage"}}"#,
    );
    let e = error(&file(&path, GridFormat::WattTime), "X");
    assert!(
        e.contains("meta.signal_type") && e.contains("health_damage") && e.contains("hd2.json"),
        "{e}"
    );
    // A grid.csv.unit that contradicts the file's own meta.units is refused.
    let mut f = file(
        &fixture("watttime_v3_historical_docs_example.json"),
        GridFormat::WattTime,
    );
    f.unit = Some(CiUnit::GPerKwh);
    let e = error(&f, "X");
    assert!(
        e.contains("grid.csv.unit") && e.contains("lbs/MWh") && e.contains("g/kWh"),
        "{e}"
    );
    // A point out of order names its line.
    let (_d, path) = temp_file(
        "order.json",
        "{\"data\": [\n{\"point_time\": \"2022-07-15T00:05:00Z\", \"value\": 1},\n{\"point_time\": \"2022-07-15T00:00:00Z\", \"value\": 1}\n]}",
    );
    let e = error(&file(&path, GridFormat::WattTime), "X");
    assert!(
        e.contains("order.json:3:") && e.contains("earlier than line 2"),
        "{e}"
    );
}

// --- Units and plausible ranges. ---

fn generic(path: &Path) -> GridFile {
    GridFile::generic(
        path,
        CsvColumns {
            time_column: "time".into(),
            ci_column: "ci".into(),
            price_column: Some("price".into()),
            load_column: Some("load".into()),
            ..CsvColumns::default()
        },
    )
}

#[test]
fn generic_unit_key_converts_and_the_series_says_so() {
    let (_d, path) = temp_file(
        "moer.csv",
        "time,ci,price,load\n2022-01-01 00:00,1000,50,100\n2022-01-01 01:00,2000,60,100\n",
    );
    let mut f = generic(&path);
    f.unit = Some(CiUnit::LbsPerMwh);
    let s = series(&f, "X");
    assert!(close(s.ci_g_per_kwh[1], 2000.0 * LB));
    assert!(
        s.notes.iter().any(|n| n.contains("'ci' read as lbs/MWh")),
        "{:?}",
        s.notes
    );
    f.unit = Some(CiUnit::TPerMwh);
    let e = error(&f, "X");
    assert!(
        e.contains("moer.csv:2:") && e.contains("1000000 gCO2eq/kWh"),
        "{e}"
    );
    f.unit = None;
    let s = series(&f, "X");
    assert!(
        s.notes.iter().any(|n| n.contains("'ci' read as g/kWh")),
        "{:?}",
        s.notes
    );
}

#[test]
fn implausible_values_are_errors_naming_file_line_column_and_range_29630_and_1e308() {
    let body = |ci: &str, price: &str, load: &str| {
        format!("time,ci,price,load\n2022-01-01 00:00,300,50,100\n2022-01-01 01:00,{ci},{price},{load}\n")
    };
    let (_d, path) = temp_file("grid.csv", &body("29630", "50", "100"));
    let mut f = generic(&path);
    let e = error(&f, "X");
    assert!(
        e.contains("grid.csv:3:")
            && e.contains("column 'ci'")
            && e.contains("'29630'")
            && e.contains("0 ..= 2000")
            && e.contains("allow_out_of_range = true"),
        "{e}"
    );
    // The deliberate case: accepted with the override.
    f.allow_out_of_range = true;
    assert_eq!(series(&f, "X").ci_g_per_kwh[1], 29630.0);
    // 1e308 never passes: it would make CO2 infinite.
    let (_d, path) = temp_file("grid.csv", &body("1e308", "50", "100"));
    let mut f = generic(&path);
    f.allow_out_of_range = true;
    let e = error(&f, "X");
    assert!(
        e.contains("grid.csv:3:") && e.contains("'1e308'") && e.contains("1e12"),
        "{e}"
    );
    let (_d, path) = temp_file("grid.csv", &body("300", "25000", "100"));
    let e = error(&generic(&path), "X");
    assert!(
        e.contains(":3:") && e.contains("'price'") && e.contains("-1000 ..= 10000"),
        "{e}"
    );
    let (_d, path) = temp_file("grid.csv", &body("300", "50", "-5"));
    let e = error(&generic(&path), "X");
    assert!(
        e.contains(":3:") && e.contains("'load'") && e.contains("0 ..= 10000000 MW"),
        "{e}"
    );
    let (_d, path) = temp_file("grid.csv", &body("inf", "50", "5"));
    let e = error(&generic(&path), "X");
    assert!(
        e.contains(":3:") && e.contains("'inf'") && e.contains("finite"),
        "{e}"
    );
}

// --- ENTSO-E exports as downloaded. ---

fn entsoe(path: &Path, format: GridFormat) -> GridFile {
    GridFile {
        local_time_zone: Some("Europe/Brussels".into()),
        ..GridFile::new(path, format)
    }
}

#[test]
fn entsoe_new_price_cet_reads_dst_tagged_stamps_at_both_changes() {
    // Spring 2025-03-30: 01:30 (CET end tag), 01:45 (CET) - 03:00 (CEST), 03:00 (CEST): contiguous.
    let (_d, p) = segment("entsoe_new_price_cet_dst.csv", 5, 11);
    let c = cols(&entsoe(&p, GridFormat::EntsoeNew), "BE");
    assert_eq!(
        (c.start_utc_s, c.interval_s, c.len()),
        (1_743_293_700, 900, 7)
    );
    assert_eq!(
        c.price_per_mwh.as_ref().map(|p| (p[2], p[3])),
        Some((15.81, 5.04))
    );
    // Autumn 2025-10-26: 02:00-02:45 twice, told apart by (CEST) and (CET): 11 quarter hours.
    let (_d, p) = segment("entsoe_new_price_cet_dst.csv", 12, 22);
    let c = cols(&entsoe(&p, GridFormat::EntsoeNew), "BE");
    assert_eq!(
        (c.start_utc_s, c.interval_s, c.len()),
        (1_761_435_000, 900, 11)
    );
    let price = c.price_per_mwh.unwrap_or_default();
    assert_eq!((price[2], price[6], price[9]), (61.12, 22.11, -0.79));
    assert!(c.ci.is_empty());
}

#[test]
fn entsoe_new_load_cet_and_utc_exports() {
    let (_d, p) = segment("entsoe_new_load_cet_dst.csv", 12, 22);
    let c = cols(&entsoe(&p, GridFormat::EntsoeNew), "BE");
    assert_eq!((c.len(), c.interval_s), (11, 900));
    // Actual load comes before the forecast column in these files; the actual one is read.
    assert_eq!(c.load_mw.as_ref().map(|l| l[0]), Some(7642.90));
    let c = cols(
        &entsoe(&fixture("entsoe_new_load_utc.csv"), GridFormat::EntsoeNew),
        "DE",
    );
    // 'MTU (UTC)': 2019-01-01T00:00Z.
    assert_eq!(
        (c.start_utc_s, c.interval_s, c.len()),
        (1_546_300_800, 900, 5)
    );
    assert_eq!(c.load_mw.as_ref().map(|l| l[4]), Some(40995.80));
}

#[test]
fn entsoe_sequence_column_keeps_the_first_auction_also_in_the_sequence_sequence_quirk() {
    let c = cols(
        &entsoe(
            &fixture("entsoe_new_price_cet_sequence.csv"),
            GridFormat::EntsoeNew,
        ),
        "DE",
    );
    assert_eq!((c.len(), c.interval_s), (3, 900));
    assert_eq!(c.price_per_mwh, Some(vec![92.2, 92.2, 92.2]));
    assert!(
        c.report.notes.iter().any(|n| n.contains("Sequence 1")),
        "{:?}",
        c.report.notes
    );
    let (_d, p) = segment("entsoe_new_price_cet_sequence_sequence_quirk.csv", 2, 5);
    let c = cols(&entsoe(&p, GridFormat::EntsoeNew), "DE");
    assert_eq!(c.price_per_mwh, Some(vec![2.16, 2.16]));
    // A user re-save (unquoted, an extra DateTime column) of a UTC export still reads.
    let c = cols(
        &entsoe(
            &fixture("entsoe_new_price_utc_user_resaved.csv"),
            GridFormat::EntsoeNew,
        ),
        "EE",
    );
    assert_eq!(
        (c.start_utc_s, c.interval_s, c.len()),
        (1_704_067_200, 3600, 5)
    );
    assert_eq!(c.price_per_mwh.as_ref().map(|p| p[0]), Some(28.46));
}

#[test]
fn entsoe_legacy_load_and_price_skip_blank_spring_rows_and_repeat_the_autumn_hour() {
    for (name, col) in [
        ("entsoe_legacy_load_cet.csv", "load"),
        ("entsoe_legacy_price_cet.csv", "price"),
    ] {
        let offset = usize::from(name.contains("price")) * 2; // price excerpt lacks the N/A rows
                                                              // Spring 2022-03-27: 01:45, four blank placeholder rows 02:00-02:45, 03:00 CEST.
        let (_d, p) = segment(name, 7 - offset, 12 - offset);
        let c = cols(&entsoe(&p, GridFormat::EntsoeLegacy), "DE");
        assert_eq!(
            (c.start_utc_s, c.interval_s, c.len()),
            (1_648_341_900, 900, 2),
            "{name}"
        );
        let v = if col == "load" {
            c.load_mw
        } else {
            c.price_per_mwh
        };
        let want = if col == "load" {
            [41234.0, 41122.0]
        } else {
            [181.14, 177.58]
        };
        assert_eq!(v, Some(want.to_vec()), "{name}");
        assert!(
            c.report.notes.iter().any(|n| n.contains("4 blank row")),
            "{:?}",
            c.report.notes
        );
        // Autumn 2022-10-30: 02:00-02:45 listed twice without a tag: CEST then CET, 10 quarters.
        let (_d, p) = segment(name, 13 - offset, 22 - offset);
        let c = cols(&entsoe(&p, GridFormat::EntsoeLegacy), "DE");
        assert_eq!((c.start_utc_s, c.len()), (1_667_087_100, 10), "{name}");
    }
    // 'N/A' forecast cells are not read: the actual load is.
    let (_d, p) = segment("entsoe_legacy_load_cet.csv", 5, 6);
    let c = cols(&entsoe(&p, GridFormat::EntsoeLegacy), "DE");
    assert_eq!(c.load_mw, Some(vec![57851.0, 57251.0]));
}

// --- Electricity Maps: a `;` inside a field, and files re-saved by Excel with `;`. ---

#[test]
fn electricity_maps_semicolon_inside_a_comma_field_does_not_fool_the_sniffer() {
    let f = file(
        &fixture("electricitymaps_hourly_2024_estimated_semicolon_in_field.csv"),
        GridFormat::ElectricityMaps,
    );
    let s = series(&f, "KR");
    assert_eq!(s.ci_g_per_kwh, vec![489.8, 493.18, 494.98]);
    // The older header generation with CRLF line ends ('(LCA)', 'Zone Name').
    let f = file(
        &fixture("electricitymaps_hourly_2021_legacy_crlf.csv"),
        GridFormat::ElectricityMaps,
    );
    let s = series(&f, "DE");
    assert_eq!(
        (s.len(), s.ci_g_per_kwh[0], s.ci_alt[0].g_per_kwh[0]),
        (5, 533.4, 455.04)
    );
}

#[test]
fn electricity_maps_resaved_with_semicolons_and_decimal_commas_reads_the_same_numbers() {
    let original = series(
        &file(
            &fixture("electricitymaps_hourly_2024_current.csv"),
            GridFormat::ElectricityMaps,
        ),
        "CISO",
    );
    let resaved = series(
        &file(
            &fixture("electricitymaps_hourly_2024_resaved_semicolon_derived.csv"),
            GridFormat::ElectricityMaps,
        ),
        "CISO",
    );
    assert_eq!(resaved.ci_g_per_kwh, original.ci_g_per_kwh);
    assert_eq!(resaved.ci_alt, original.ci_alt);
    assert!(resaved
        .notes
        .iter()
        .any(|n| n.contains("';'-separated with decimal commas")));
    // Without Excel's `sep=;` line the header is sniffed.
    let text = std::fs::read_to_string(fixture(
        "electricitymaps_hourly_2024_resaved_semicolon_derived.csv",
    ))
    .unwrap_or_default();
    let (_d, p) = temp_file("em.csv", text.split_once("\r\n").map_or("", |(_, b)| b));
    let s = series(&file(&p, GridFormat::ElectricityMaps), "CISO");
    assert_eq!(s.ci_g_per_kwh, original.ci_g_per_kwh);
}

// --- A load-only or price-only file as a scenario's only grid file. ---

#[test]
fn a_price_or_load_only_file_takes_intensity_from_the_region_profile_and_says_so() {
    let (_d, p) = segment("entsoe_new_price_cet_dst.csv", 5, 11);
    let spec = GridSpec {
        region: "DE".into(),
        source: GridSource::File(Box::new(entsoe(&p, GridFormat::EntsoeNew))),
        price_per_mwh: None,
        interval_s: 3600,
        currency: None,
        marginal: None,
    };
    let start = 1_743_294_600; // 2025-03-30T00:30Z
    let s = series_for(&spec, start, 3600).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.len(), 4);
    assert_eq!(s.price_per_mwh.as_ref().map(|p| p[3]), Some(5.04));
    let profile =
        default_profile_series("DE", start, 3600, 900, None).unwrap_or_else(|e| panic!("{e}"));
    assert!(close(s.ci_g_per_kwh[0], profile.ci_g_per_kwh[0]));
    assert!(
        s.notes
            .iter()
            .any(|n| n.contains("carbon intensity from embedded profile DE")),
        "{:?}",
        s.notes
    );
    // A region without a profile is told which regions have one.
    let spec = GridSpec {
        region: "BE".into(),
        ..spec
    };
    let e = series_for(&spec, start, 3600)
        .map(|_| ())
        .map_err(|e| e.to_string());
    assert!(e.is_err_and(|m| m.contains("'BE' has no embedded profile") && m.contains("DE")));
}
