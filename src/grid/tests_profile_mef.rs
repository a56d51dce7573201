//! The embedded profile's marginal factors: regenerated from the real files by the one Rust estimator, and checked against it.
//!
//! `cargo test --lib grid::tests_profile_mef::regenerate -- --ignored` rewrites the `mef_g_per_kwh`
//! column of data/grid_profiles.csv from /work/shared/data/grid: for each region with generation by
//! fuel, [`estimate_mef`] (Siler-Evans et al. 2012, per local month × hour, flagged pooled
//! fallbacks, [`DEFAULT_MIN_CHANGES`]) over the intervals starting in the profile's calendar year
//! (UTC), the same intervals the profile's average column averages. DE has no production file: its
//! cells stay empty.

use std::path::PathBuf;

use chrono::{TimeZone, Utc};

use super::test_data::shared_data_dir;
use super::*;

/// (region, file under the shared grid directory, format, local zone, gap allowance in intervals).
/// Gap allowances: EIA 24 as [`eia_2022_spec`] (PJM has a 22-hour gap); the GB production file has
/// 16 empty cells in short runs.
const SOURCES: [(&str, &str, GridFormat, &str, u32); 8] = [
    (
        "CISO",
        "us_eia_2022/CISO.csv",
        GridFormat::Eia930Balance,
        "America/Los_Angeles",
        24,
    ),
    (
        "ERCO",
        "us_eia_2022/ERCO.csv",
        GridFormat::Eia930Balance,
        "America/Chicago",
        24,
    ),
    (
        "PJM",
        "us_eia_2022/PJM.csv",
        GridFormat::Eia930Balance,
        "America/New_York",
        24,
    ),
    (
        "MISO",
        "us_eia_2022/MISO.csv",
        GridFormat::Eia930Balance,
        "America/Chicago",
        24,
    ),
    (
        "NYIS",
        "us_eia_2022/NYIS.csv",
        GridFormat::Eia930Balance,
        "America/New_York",
        24,
    ),
    (
        "BPAT",
        "us_eia_2022/BPAT.csv",
        GridFormat::Eia930Balance,
        "America/Los_Angeles",
        24,
    ),
    (
        "GB",
        "europe_2020/gb_production.csv",
        GridFormat::EntsoeLegacy,
        "Europe/London",
        8,
    ),
    (
        "FR",
        "europe_2020/fr_production.csv",
        GridFormat::EntsoeLegacy,
        "Europe/Paris",
        8,
    ),
];

fn grid_dir() -> PathBuf {
    shared_data_dir().join("grid")
}

/// The month × hour marginal factors of `region` from its production file, `[month − 1][hour]`,
/// and the estimator's notes.
fn mef_of(region: &str) -> (Vec<f64>, Vec<String>) {
    let Some((_, rel, format, zone, gaps)) = SOURCES.iter().find(|s| s.0 == region) else {
        panic!("{region}: no production source");
    };
    let mut f = GridFile::new(grid_dir().join(rel), *format);
    f.local_time_zone = Some(zone.to_string());
    f.max_gap_intervals = *gaps;
    let cols = load_grid_columns(&f, region).unwrap_or_else(|e| panic!("{region}: {e}"));
    let year = region_profile(region)
        .unwrap_or_else(|e| panic!("{e}"))
        .year;
    let y0 = Utc
        .with_ymd_and_hms(year, 1, 1, 0, 0, 0)
        .unwrap()
        .timestamp();
    let y1 = Utc
        .with_ymd_and_hms(year + 1, 1, 1, 0, 0, 0)
        .unwrap()
        .timestamp();
    let iv = cols.interval_s;
    let first = ((y0 - cols.start_utc_s).max(0) + iv - 1) / iv;
    let end = (((y1 - cols.start_utc_s) + iv - 1) / iv).min(cols.len() as i64);
    let (a, b) = (first as usize, end as usize);
    let fuels: Vec<FuelGeneration> = cols
        .generation
        .iter()
        .map(|g| FuelGeneration {
            fuel: g.fuel,
            factor_g_per_kwh: g.factor_g_per_kwh,
            mw: g.mw[a..b].to_vec(),
        })
        .collect();
    let m = estimate_mef(
        &cols.source,
        cols.start_utc_s + a as i64 * iv,
        iv,
        cols.tz,
        &fuels,
        DEFAULT_MIN_CHANGES,
    )
    .unwrap_or_else(|e| panic!("{region}: {e}"));
    (m.bins.iter().map(|b| b.mef_g_per_kwh).collect(), m.notes)
}

fn profile_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/grid_profiles.csv")
}

#[test]
#[ignore = "maintenance: rewrites data/grid_profiles.csv from /work/shared/data/grid"]
fn regenerate() {
    let path = profile_path();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}"));
    let mut mefs = std::collections::HashMap::new();
    for (region, ..) in SOURCES {
        let (bins, notes) = mef_of(region);
        eprintln!("{region}: {}", notes.join(" | "));
        mefs.insert(region, bins);
    }
    let mut out = String::new();
    for line in text.lines() {
        if line.starts_with('#') || line.starts_with("region,") || line.trim().is_empty() {
            out.push_str(line);
        } else {
            let f: Vec<&str> = line.split(',').collect();
            let (month, hour): (usize, usize) = (
                f[3].parse().unwrap_or_else(|e| panic!("{line}: {e}")),
                f[4].parse().unwrap_or_else(|e| panic!("{line}: {e}")),
            );
            let cell = mefs
                .get(f[0])
                .map(|b| format!("{:.6}", b[(month - 1) * 24 + hour]))
                .unwrap_or_default();
            out.push_str(&f[..7].join(","));
            out.push(',');
            out.push_str(&cell);
        }
        out.push('\n');
    }
    std::fs::write(&path, out).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn the_committed_marginal_column_is_the_estimators_output() {
    if !grid_dir().join("europe_2020/gb_production.csv").exists() {
        eprintln!("shared grid data absent; skipped");
        return;
    }
    for (region, ..) in SOURCES {
        let (bins, _) = mef_of(region);
        let p = region_profile(region).unwrap_or_else(|e| panic!("{e}"));
        let Some(tab) = p.mef_g_per_kwh else {
            panic!("{region}: data/grid_profiles.csv has no mef_g_per_kwh; run the ignored `regenerate` test");
        };
        for (k, b) in bins.iter().enumerate() {
            // The table keeps six decimals.
            assert!(
                (tab[k / 24][k % 24] - b).abs() < 1e-5,
                "{region} month {} hour {}: table {} estimator {b}",
                k / 24 + 1,
                k % 24,
                tab[k / 24][k % 24]
            );
        }
    }
    assert!(region_profile("DE").is_ok_and(|p| p.mef_g_per_kwh.is_none()));
}

#[test]
fn a_production_file_with_an_unknown_type_names_file_and_column() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("xx_production.csv");
    let text = ",Fossil Gas,Unobtainium,FR\n2020-01-01 00:00:00,1.0,2.0,3.0\n";
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
    let f = GridFile::new(&path, GridFormat::EntsoeLegacy);
    let e = load_grid_columns(&f, "GB")
        .map(|_| ())
        .map_err(|e| e.to_string());
    assert!(
        e.as_ref().is_err_and(|m| m.contains("xx_production.csv")
            && m.contains("Unobtainium")
            && m.contains("fossil gas")),
        "{e:?}"
    );
    // Detected as the ENTSO-E legacy format (the Let's Wait Awhile layout).
    assert_eq!(
        detect_format(&path).map_err(|e| e.to_string()),
        Ok(GridFormat::EntsoeLegacy)
    );
}
