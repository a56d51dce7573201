//! Embedded default grid profiles: mean CI (and load) by month and local hour for nine regions.
//!
//! The table `data/grid_profiles.csv` is derived by `tools/derive_grid_profiles.py` from the real
//! series in /work/shared/data/grid (EIA 2022 for CISO ERCO PJM MISO NYIS BPAT; Wiesner et al.,
//! Middleware 2021, 2020 data for GB DE FR); its '#' header lines give the sources. The profile is
//! a typical shape, not a forecast: day-to-day weather variation is averaged out.

use std::sync::OnceLock;

use chrono::{DateTime, Datelike, Timelike};
use chrono_tz::Tz;

use super::error::GridError;
use super::series::{CiKind, CiSignal, GridSeries};

/// The embedded table (see the module docs for its provenance).
const PROFILE_CSV: &str = include_str!("../../data/grid_profiles.csv");

/// Regions with an embedded profile, in table order.
const REGIONS: [&str; 9] = [
    "CISO", "ERCO", "PJM", "MISO", "NYIS", "BPAT", "GB", "DE", "FR",
];

/// Mean signals of one region by local month and hour.
#[derive(Debug, Clone, PartialEq)]
pub struct RegionProfile {
    /// Region code (e.g. "CISO").
    pub region: String,
    /// Local time zone the hours refer to.
    pub tz: Tz,
    /// Calendar year of the underlying data.
    pub year: i32,
    /// Mean carbon intensity, gCO2eq/kWh, indexed `[month - 1][local hour]`.
    pub ci_g_per_kwh: [[f64; 24]; 12],
    /// Mean grid load (total net generation), MW, `[month - 1][local hour]`; `None` if the source has none.
    pub load_mw: Option<[[f64; 24]; 12]>,
    /// Marginal emission factor, gCO2/kWh (= kg/MWh), `[month - 1][local hour]`: the Siler-Evans et
    /// al. 2012 regression ([`super::estimate_mef`]) on the source's generation by fuel; `None` where
    /// the source has no generation by fuel (the table's `mef_g_per_kwh` cells are empty).
    pub mef_g_per_kwh: Option<[[f64; 24]; 12]>,
}

/// Header row of the embedded table.
pub(crate) const PROFILE_HEADER: &str =
    "region,tz,year,month,local_hour,ci_g_per_kwh,load_mw,mef_g_per_kwh";

/// Name of the marginal signal the embedded profile carries for regions with a `mef_g_per_kwh` column.
pub const PROFILE_MEF_SIGNAL: &str = "profile-mef";

/// Regions that have an embedded default profile.
pub fn profile_regions() -> Vec<&'static str> {
    REGIONS.to_vec()
}

fn bad(line: usize, message: impl Into<String>) -> GridError {
    GridError::EmbeddedProfile {
        line,
        message: message.into(),
    }
}

fn parse_table(text: &str) -> Result<Vec<RegionProfile>, GridError> {
    let mut out: Vec<RegionProfile> = Vec::new();
    let mut seen: Vec<Vec<bool>> = Vec::new();
    // The last line of each region, so a region with missing rows is reported where it ends.
    let mut last_line: Vec<usize> = Vec::new();
    let mut header_seen = false;
    for (k, raw) in text.lines().enumerate() {
        let line = k + 1;
        let l = raw.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        if !header_seen {
            if l != PROFILE_HEADER {
                return Err(bad(
                    line,
                    format!("unexpected header '{l}'; expected '{PROFILE_HEADER}'"),
                ));
            }
            header_seen = true;
            continue;
        }
        let f: Vec<&str> = l.split(',').collect();
        if f.len() != 8 {
            return Err(bad(
                line,
                format!("{} fields, expected 8 ({PROFILE_HEADER})", f.len()),
            ));
        }
        let num = |i: usize| {
            f[i].parse::<f64>()
                .map_err(|_| bad(line, format!("bad number '{}'", f[i])))
        };
        let tz: Tz = f[1]
            .parse()
            .map_err(|_| bad(line, format!("bad zone '{}'", f[1])))?;
        let year = f[2].parse::<i32>().map_err(|_| bad(line, "bad year"))?;
        let month = f[3].parse::<usize>().ok().filter(|m| (1..=12).contains(m));
        let hour = f[4].parse::<usize>().ok().filter(|h| *h < 24);
        let (Some(month), Some(hour)) = (month, hour) else {
            return Err(bad(line, "month must be 1-12 and local_hour 0-23"));
        };
        let ci = num(5)?;
        let load = if f[6].is_empty() { None } else { Some(num(6)?) };
        let mef = if f[7].is_empty() { None } else { Some(num(7)?) };
        if let Some(m) = mef.filter(|m| !(0.0..=2000.0).contains(m)) {
            return Err(bad(
                line,
                format!("field mef_g_per_kwh: {m} is outside 0..=2000 gCO2/kWh (a marginal factor no fuel mix gives)"),
            ));
        }
        if out.last().is_none_or(|p| p.region != f[0]) {
            out.push(RegionProfile {
                region: f[0].to_string(),
                tz,
                year,
                ci_g_per_kwh: [[f64::NAN; 24]; 12],
                load_mw: load.map(|_| [[f64::NAN; 24]; 12]),
                mef_g_per_kwh: mef.map(|_| [[f64::NAN; 24]; 12]),
            });
            seen.push(vec![false; 288]);
            last_line.push(line);
        }
        if let Some(l) = last_line.last_mut() {
            *l = line;
        }
        let (Some(p), Some(s)) = (out.last_mut(), seen.last_mut()) else {
            return Err(bad(line, "internal: no profile"));
        };
        if s[(month - 1) * 24 + hour] {
            return Err(bad(line, "repeated (region, month, hour)"));
        }
        s[(month - 1) * 24 + hour] = true;
        p.ci_g_per_kwh[month - 1][hour] = ci;
        match (&mut p.load_mw, load) {
            (Some(t), Some(v)) => t[month - 1][hour] = v,
            (None, None) => {}
            _ => {
                return Err(bad(
                    line,
                    "load present for some hours of a region but not others",
                ))
            }
        }
        match (&mut p.mef_g_per_kwh, mef) {
            (Some(t), Some(v)) => t[month - 1][hour] = v,
            (None, None) => {}
            _ => {
                return Err(bad(
                    line,
                    format!("field mef_g_per_kwh: present for some hours of region {} but not others (a region's 288 rows are all filled or all empty)", p.region),
                ))
            }
        }
    }
    for ((p, s), &end) in out.iter().zip(&seen).zip(&last_line) {
        if let Some(k) = s.iter().position(|x| !x) {
            return Err(bad(
                end,
                format!(
                    "region {} (rows ending here) lacks the row for month {}, local_hour {}; each region needs all 288 (month 1-12, local_hour 0-23) rows",
                    p.region,
                    k / 24 + 1,
                    k % 24
                ),
            ));
        }
    }
    Ok(out)
}

fn table() -> Result<&'static [RegionProfile], GridError> {
    static TABLE: OnceLock<Result<Vec<RegionProfile>, String>> = OnceLock::new();
    match TABLE.get_or_init(|| parse_table(PROFILE_CSV).map_err(|e| e.to_string())) {
        Ok(v) => Ok(v.as_slice()),
        Err(m) => Err(bad(0, m.clone())),
    }
}

/// The embedded profile of `region` (case-insensitive); the error lists the regions available.
pub fn region_profile(region: &str) -> Result<&'static RegionProfile, GridError> {
    table()?
        .iter()
        .find(|p| p.region.eq_ignore_ascii_case(region.trim()))
        .ok_or_else(|| GridError::UnknownRegion {
            region: region.to_string(),
            available: REGIONS.join(", "),
        })
}

/// A series over [start, start+duration) at `interval_s` (seconds) built from the region's
/// (month, local hour) means in its time zone; each interval is the time-weighted mean of the
/// profile hours it overlaps (a last partial interval is averaged over its part inside the
/// window). `price_per_mwh`, if given, is a constant price (currency per MWh).
/// All profile zones have whole-hour offsets, so local hours start on UTC hour boundaries.
pub fn default_profile_series(
    region: &str,
    start_utc_s: i64,
    duration_s: i64,
    interval_s: i64,
    price_per_mwh: Option<f64>,
) -> Result<GridSeries, GridError> {
    let p = region_profile(region)?;
    for (what, v) in [("duration_s", duration_s), ("interval_s", interval_s)] {
        if v <= 0 {
            return Err(GridError::InvalidArgument {
                what,
                value: v.to_string(),
                valid: "a positive number of seconds",
            });
        }
    }
    if let Some(pr) = price_per_mwh.filter(|x| !x.is_finite()) {
        return Err(GridError::InvalidArgument {
            what: "price_per_mwh",
            value: pr.to_string(),
            valid: "a finite number (currency per MWh)",
        });
    }
    let end = start_utc_s
        .checked_add(duration_s)
        .ok_or(GridError::InvalidArgument {
            what: "start_utc_s + duration_s",
            value: format!("{start_utc_s} + {duration_s}"),
            valid: "a sum within the i64 range",
        })?;
    let n = ((duration_s + interval_s - 1) / interval_s) as usize;
    let mut ci = Vec::with_capacity(n);
    let mut load = p.load_mw.map(|_| Vec::with_capacity(n));
    let mut mef = p.mef_g_per_kwh.map(|_| Vec::with_capacity(n));
    for k in 0..n {
        let a = start_utc_s + interval_s * k as i64;
        let b = (a + interval_s).min(end);
        let (mut ci_acc, mut load_acc, mut mef_acc) = (0.0, 0.0, 0.0);
        let mut t = a;
        while t < b {
            let next = ((t.div_euclid(3600) + 1) * 3600).min(b);
            let local = DateTime::from_timestamp(t, 0)
                .ok_or(GridError::InvalidArgument {
                    what: "start_utc_s",
                    value: t.to_string(),
                    valid: "a time within chrono's range",
                })?
                .with_timezone(&p.tz);
            let (m, h) = (local.month0() as usize, local.hour() as usize);
            let w = (next - t) as f64;
            ci_acc += w * p.ci_g_per_kwh[m][h];
            if let Some(tab) = &p.load_mw {
                load_acc += w * tab[m][h];
            }
            if let Some(tab) = &p.mef_g_per_kwh {
                mef_acc += w * tab[m][h];
            }
            t = next;
        }
        let total = (b - a) as f64;
        ci.push(ci_acc / total);
        if let Some(l) = load.as_mut() {
            l.push(load_acc / total);
        }
        if let Some(v) = mef.as_mut() {
            v.push(mef_acc / total);
        }
    }
    let derived = if p.year == 2022 {
        "EIA hourly grid monitor 2022 via HewlettPackard/dc-rl"
    } else {
        "Wiesner et al., Middleware 2021, ENTSO-E 2020"
    };
    // A region with marginal factors carries them as its marginal signal, so every run on the
    // profile reports the saving under both signals without a [grid.marginal] table.
    let mut notes = Vec::new();
    let ci_alt = match mef {
        Some(g_per_kwh) => {
            notes.push(format!(
                "marginal intensity '{PROFILE_MEF_SIGNAL}': the embedded profile's mef_g_per_kwh for {} (Siler-Evans et al. 2012 regression per local month × hour on {} generation by fuel; data/grid_profiles.csv)",
                p.region, derived
            ));
            vec![CiSignal {
                name: PROFILE_MEF_SIGNAL.into(),
                kind: CiKind::Marginal,
                g_per_kwh,
            }]
        }
        None => Vec::new(),
    };
    Ok(GridSeries {
        region: p.region.clone(),
        tz: p.tz,
        start_utc_s,
        interval_s,
        ci_g_per_kwh: ci,
        ci_kind: CiKind::Average,
        ci_name: "profile".into(),
        ci_alt,
        load_mw: load,
        price_per_mwh: price_per_mwh.map(|x| vec![x; n]),
        source: format!(
            "embedded profile {} (derived from {}: mean by month and local hour, data/grid_profiles.csv)",
            p.region, derived
        ),
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const T2022: i64 = 1_640_995_200; // 2022-01-01T00:00:00Z

    fn series(region: &str, start: i64, dur: i64, iv: i64) -> GridSeries {
        match default_profile_series(region, start, dur, iv, None) {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn table_has_every_listed_region_with_a_full_year() {
        let regions: Vec<&str> = match table() {
            Ok(t) => t.iter().map(|p| p.region.as_str()).collect(),
            Err(e) => panic!("{e}"),
        };
        assert_eq!(regions, profile_regions());
        for r in profile_regions() {
            let p = region_profile(r).map_err(|e| e.to_string());
            let p = p.unwrap_or_else(|e| panic!("{e}"));
            assert!(
                p.ci_g_per_kwh
                    .iter()
                    .flatten()
                    .all(|v| v.is_finite() && *v > 0.0),
                "{r}"
            );
            // EIA regions carry load; the Europe files give none.
            assert_eq!(p.load_mw.is_some(), p.year == 2022, "{r}");
        }
    }

    #[test]
    fn ciso_profile_noon_cleaner_than_3am() {
        let p = region_profile("ciso").map_err(|e| e.to_string());
        let p = p.unwrap_or_else(|e| panic!("{e}"));
        let mean_hour = |h: usize| p.ci_g_per_kwh.iter().map(|m| m[h]).sum::<f64>() / 12.0;
        assert!(
            mean_hour(12) < 0.7 * mean_hour(3),
            "noon {} 3am {}",
            mean_hour(12),
            mean_hour(3)
        );
    }

    #[test]
    fn hourly_series_reads_month_and_local_hour() {
        let s = series("CISO", T2022, 48 * 3600, 3600);
        let p = region_profile("CISO").map_err(|e| e.to_string());
        let p = p.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.len(), 48);
        // 2022-01-01T00:00Z is 2021-12-31 16:00 PST: December, hour 16.
        assert_eq!(s.ci_g_per_kwh[0], p.ci_g_per_kwh[11][16]);
        // 08:00Z is 00:00 PST on 1 January.
        assert_eq!(s.ci_g_per_kwh[8], p.ci_g_per_kwh[0][0]);
        assert_eq!(s.load_mw.as_ref().map(|l| l[8]), p.load_mw.map(|t| t[0][0]));
        assert!(s.source.contains("embedded profile CISO"));
        assert_eq!(s.price_per_mwh, None);
    }

    #[test]
    fn daylight_time_shifts_the_profile_by_one_hour() {
        // 2022-07-01T19:00Z is 12:00 PDT (UTC-7), not 11:00 PST.
        let jul = 1_656_702_000;
        let s = series("CISO", jul, 3600, 3600);
        let p = region_profile("CISO").map_err(|e| e.to_string());
        let p = p.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.ci_g_per_kwh[0], p.ci_g_per_kwh[6][12]);
    }

    #[test]
    fn coarse_and_fine_intervals_average_consistently() {
        let hourly = series("GB", T2022, 24 * 3600, 3600);
        let four = series("GB", T2022, 24 * 3600, 4 * 3600);
        let quarter = series("GB", T2022, 24 * 3600, 900);
        assert_eq!((four.len(), quarter.len()), (6, 96));
        for k in 0..6 {
            let m: f64 = hourly.ci_g_per_kwh[4 * k..4 * k + 4].iter().sum::<f64>() / 4.0;
            assert!((four.ci_g_per_kwh[k] - m).abs() < 1e-9);
        }
        assert_eq!(quarter.ci_g_per_kwh[5], hourly.ci_g_per_kwh[1]);
        assert!((quarter.mean_ci() - hourly.mean_ci()).abs() < 1e-9);
    }

    #[test]
    fn bad_arguments_are_errors() {
        let e = default_profile_series("Mars", T2022, 3600, 3600, None).map(|_| ());
        let m = e.map_err(|e| e.to_string()).err().unwrap_or_default();
        assert!(m.contains("'Mars'") && m.contains("CISO, ERCO"), "{m}");
        assert!(default_profile_series("GB", T2022, 0, 3600, None).is_err());
        assert!(default_profile_series("GB", T2022, 3600, -5, None).is_err());
        assert!(default_profile_series("GB", T2022, 3600, 3600, Some(f64::NAN)).is_err());
        let priced = default_profile_series("GB", T2022, 7200, 3600, Some(55.0));
        assert_eq!(
            priced.ok().and_then(|s| s.price_per_mwh),
            Some(vec![55.0, 55.0])
        );
    }

    #[test]
    fn the_profile_carries_its_marginal_factors_as_a_marginal_signal() {
        // 2022-07-01T11:00Z is 12:00 BST in London: July, local hour 12.
        let jul = 1_656_673_200;
        let s = series("GB", jul, 3 * 3600, 3600);
        let p = region_profile("GB").map_err(|e| e.to_string());
        let p = p.unwrap_or_else(|e| panic!("{e}"));
        let Some(tab) = p.mef_g_per_kwh else {
            panic!("GB has generation by fuel: its mef_g_per_kwh must be filled");
        };
        let m = s.ci_of_kind(CiKind::Marginal).unwrap_or_default();
        assert_eq!(m, vec![tab[6][12], tab[6][13], tab[6][14]]);
        assert_eq!(s.ci_alt[0].name, PROFILE_MEF_SIGNAL);
        assert!(s.notes.iter().any(|n| n.contains("Siler-Evans")));
        // A half-hour series averages nothing away: each half takes its hour's factor.
        let half = series("GB", jul, 3600, 1800);
        assert_eq!(
            half.ci_of_kind(CiKind::Marginal),
            Some(&[tab[6][12]; 2][..])
        );
        // DE has no production file: no marginal signal, nothing invented.
        let de = series("DE", jul, 3600, 3600);
        assert!(de.ci_of_kind(CiKind::Marginal).is_none() && de.ci_alt.is_empty());
    }

    #[test]
    fn a_bad_marginal_column_names_line_and_field() {
        let msg = |t: &str| {
            parse_table(t)
                .map(|_| ())
                .map_err(|e| e.to_string())
                .err()
                .unwrap_or_default()
        };
        // The table before the marginal column: the error says which header is expected.
        let m = msg("region,tz,year,month,local_hour,ci_g_per_kwh,load_mw\n");
        assert!(m.contains("line 1") && m.contains("mef_g_per_kwh"), "{m}");
        let head = format!("{PROFILE_HEADER}\n");
        let m = msg(&format!("{head}X,UTC,2022,1,0,1,\n"));
        assert!(
            m.contains("line 2") && m.contains("7 fields, expected 8"),
            "{m}"
        );
        let m = msg(&format!("{head}X,UTC,2022,1,0,1,,5000\n"));
        assert!(
            m.contains("line 2") && m.contains("mef_g_per_kwh") && m.contains("0..=2000"),
            "{m}"
        );
        let m = msg(&format!(
            "{head}X,UTC,2022,1,0,1,,450\nX,UTC,2022,1,1,1,,\n"
        ));
        assert!(
            m.contains("line 3") && m.contains("mef_g_per_kwh") && m.contains("region X"),
            "{m}"
        );
        let m = msg(&format!("{head}X,UTC,2022,1,0,1,,abc\n"));
        assert!(m.contains("line 2") && m.contains("'abc'"), "{m}");
    }

    #[test]
    fn malformed_tables_are_reported_with_lines() {
        let head = format!("{PROFILE_HEADER}\n");
        let msg = |t: &str| {
            parse_table(t)
                .map(|_| ())
                .map_err(|e| e.to_string())
                .err()
                .unwrap_or_default()
        };
        assert!(msg("bad,header\n").contains("line 1"));
        assert!(msg(&format!("{head}X,UTC,2022,13,0,1,,\n")).contains("line 2"));
        assert!(msg(&format!("{head}X,UTC,2022,1,0,abc,,\n")).contains("abc"));
        // Incomplete region (1 of 288 rows).
        let m = msg(&format!("{head}X,UTC,2022,1,0,1,,\nX,UTC,2022,1,1,1,,\n"));
        assert!(
            m.contains("line 3") && m.contains("lacks") && m.contains("local_hour 2"),
            "{m}"
        );
    }
}
