//! Hourly typical-year weather from EnergyPlus EPW files: outdoor dry-bulb, dew point, humidity, wet bulb.
//!
//! EPW layout (EnergyPlus Auxiliary Programs, "Weather Converter Program", and
//! /work/shared/data/grid/PROVENANCE.md): 8 header lines, then 8,760 hourly rows of a 365-day year;
//! fields (0-based) 1 month, 2 day, 3 hour 1–24, 6 dry-bulb °C, 7 dew point °C, 8 relative humidity %.
//! Times are local standard time (no daylight saving); the LOCATION line's field 8 is the offset
//! from UTC in hours. Row "hour h" is read as the interval [h−1, h) local standard time.
//!
//! A typical year stands for any year: [`WeatherSeries::temp_c_at`] maps an instant to the same
//! month, day and standard-time hour (29 February reads 28 February). Missing values (EPW writes
//! 99.9 for a missing dry bulb or dew point, 999 for humidity) are interpolated over at most
//! [`MAX_WEATHER_GAP_H`] hours; longer runs are errors naming the lines.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Datelike, NaiveDate, Timelike};

use super::error::GridError;
use super::regular::{fill_gaps, FillError};

/// Longest run of missing hourly values interpolated, hours (assumed: a quarter day).
pub const MAX_WEATHER_GAP_H: usize = 6;

const HOURS: usize = 8760;

/// An hourly typical-year weather series, indexed by standard-time hour of a 365-day year.
#[derive(Debug, Clone, PartialEq)]
pub struct WeatherSeries {
    /// Station name from the LOCATION line (city, state, country).
    pub location: String,
    /// Local standard time minus UTC, hours (e.g. −6 for Dallas).
    pub utc_offset_h: f64,
    /// Outdoor dry-bulb temperature per hour, °C (8,760 values).
    pub dry_bulb_c: Vec<f64>,
    /// Dew-point temperature per hour, °C.
    pub dew_point_c: Vec<f64>,
    /// Relative humidity per hour, %.
    pub rh_pct: Vec<f64>,
    /// The file read.
    pub source: PathBuf,
}

impl WeatherSeries {
    /// Hour index (0..8760) of the instant `t_utc_s` (seconds since epoch) in the typical year.
    pub fn hour_index(&self, t_utc_s: i64) -> usize {
        let offset_s = (self.utc_offset_h * 3600.0).round() as i64;
        let Some(local) = DateTime::from_timestamp(t_utc_s + offset_s, 0) else {
            return 0;
        };
        let (m, d) = match (local.month(), local.day()) {
            (2, 29) => (2, 28),
            md => md,
        };
        // Day of year in a non-leap year (2001 is one).
        let doy0 = NaiveDate::from_ymd_opt(2001, m, d).map_or(0, |x| x.ordinal0()) as usize;
        (doy0 * 24 + local.hour() as usize).min(HOURS - 1)
    }

    /// Outdoor dry-bulb temperature at `t_utc_s`, °C.
    pub fn temp_c_at(&self, t_utc_s: i64) -> f64 {
        self.dry_bulb_c[self.hour_index(t_utc_s)]
    }

    /// Outdoor wet-bulb temperature at `t_utc_s`, °C, from dry bulb and humidity by Stull (2011).
    pub fn wet_bulb_c_at(&self, t_utc_s: i64) -> f64 {
        let i = self.hour_index(t_utc_s);
        wet_bulb_stull_c(self.dry_bulb_c[i], self.rh_pct[i])
    }

    /// Mean dry-bulb temperature over the year, °C.
    pub fn mean_temp_c(&self) -> f64 {
        self.dry_bulb_c.iter().sum::<f64>() / self.dry_bulb_c.len().max(1) as f64
    }
}

/// Wet-bulb temperature (°C) from dry bulb (°C) and relative humidity (%) at sea-level pressure:
/// R. Stull, "Wet-Bulb Temperature from Relative Humidity and Air Temperature", J. Appl. Meteor.
/// Climatol. 50 (2011) 2267–2269, Eq. 1 (stated for RH 5–99 % and −20…50 °C; error within
/// −1…+0.65 °C). Inputs are clamped to that range; the result never exceeds the dry bulb.
pub fn wet_bulb_stull_c(dry_bulb_c: f64, rh_pct: f64) -> f64 {
    let t = dry_bulb_c.clamp(-20.0, 50.0);
    let rh = rh_pct.clamp(5.0, 99.0);
    let tw = t * (0.151977 * (rh + 8.313659).sqrt()).atan() + (t + rh).atan()
        - (rh - 1.676331).atan()
        + 0.00391838 * rh.powf(1.5) * (0.023101 * rh).atan()
        - 4.686035;
    tw.min(dry_bulb_c)
}

fn bad(path: &Path, line: u64, column: &str, value: &str, expected: &'static str) -> GridError {
    GridError::BadNumber {
        path: path.to_path_buf(),
        line,
        column: column.to_string(),
        value: value.to_string(),
        expected,
    }
}

/// Reads an EPW file (see the module docs): 8,760 hourly rows after 8 header lines.
pub fn load_epw(path: &Path) -> Result<WeatherSeries, GridError> {
    let text = std::fs::read_to_string(path).map_err(|source| GridError::WeatherIo {
        path: path.to_path_buf(),
        source,
    })?;
    let mut lines = text.lines();
    let location_line = lines.next().unwrap_or("");
    let loc: Vec<&str> = location_line.split(',').collect();
    if loc.first().map(|s| s.trim()) != Some("LOCATION") || loc.len() < 10 {
        return Err(bad(
            path,
            1,
            "LOCATION",
            location_line.get(..60).unwrap_or(location_line),
            "an EPW header: 'LOCATION,city,state,country,source,WMO,lat,lon,tz offset h,elevation'",
        ));
    }
    let utc_offset_h: f64 = loc[8]
        .trim()
        .parse()
        .ok()
        .filter(|x: &f64| x.is_finite() && (-12.0..=14.0).contains(x))
        .ok_or_else(|| {
            bad(
                path,
                1,
                "LOCATION time zone",
                loc[8],
                "hours from UTC in -12..14 (field 9 of LOCATION)",
            )
        })?;
    let location = [loc[1], loc[2], loc[3]]
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(", ");
    // Skip the other 7 header lines.
    for _ in 0..7 {
        lines.next();
    }
    let (mut dry, mut dew, mut rh) = (Vec::new(), Vec::new(), Vec::new());
    let mut line_of = Vec::new();
    for (k, row) in lines.enumerate() {
        if row.trim().is_empty() {
            continue;
        }
        let line = k as u64 + 9;
        let f: Vec<&str> = row.split(',').collect();
        if f.len() < 9 {
            return Err(bad(
                path,
                line,
                "row",
                row.get(..40).unwrap_or(row),
                "an EPW data row with at least 9 comma-separated fields",
            ));
        }
        let n = dry.len();
        if n >= HOURS {
            return Err(bad(
                path,
                line,
                "row",
                "(extra row)",
                "exactly 8760 hourly rows after the 8 header lines",
            ));
        }
        // The row's month/day/hour must be hour n of a 365-day year.
        let want_doy = n / 24;
        let want_hour = n % 24 + 1;
        let md = NaiveDate::from_yo_opt(2001, want_doy as u32 + 1).map(|d| (d.month(), d.day()));
        let got: Option<(u32, u32, usize)> = (|| {
            Some((
                f[1].trim().parse().ok()?,
                f[2].trim().parse().ok()?,
                f[3].trim().parse().ok()?,
            ))
        })();
        if got != md.map(|(m, d)| (m, d, want_hour)) {
            return Err(bad(
                path,
                line,
                "month,day,hour",
                &format!("{},{},{}", f[1].trim(), f[2].trim(), f[3].trim()),
                "consecutive hours 1-24 of a 365-day year starting 1/1 hour 1 (an 8760-row typical year)",
            ));
        }
        let parse = |idx: usize, name: &str, missing: f64| -> Result<Option<f64>, GridError> {
            let cell = f[idx].trim();
            let v: f64 = cell
                .parse()
                .map_err(|_| bad(path, line, name, cell, "a decimal number"))?;
            Ok((v < missing && v.is_finite()).then_some(v))
        };
        dry.push(parse(6, "dry bulb temperature (field 7)", 99.9)?);
        dew.push(parse(7, "dew point temperature (field 8)", 99.9)?);
        rh.push(parse(8, "relative humidity (field 9)", 999.0)?);
        line_of.push(line);
    }
    if dry.len() != HOURS {
        return Err(bad(
            path,
            9 + dry.len() as u64,
            "rows",
            &dry.len().to_string(),
            "exactly 8760 hourly rows after the 8 header lines",
        ));
    }
    let fill = |v: Vec<Option<f64>>, column: &str| -> Result<Vec<f64>, GridError> {
        fill_gaps(&v, MAX_WEATHER_GAP_H)
            .map(|(x, _)| x)
            .map_err(|e| {
                let (first, last) = match e {
                    FillError::Edge { first, last, .. } | FillError::TooLong { first, last } => {
                        (first, last)
                    }
                };
                GridError::WeatherGap {
                    path: path.to_path_buf(),
                    column: column.to_string(),
                    first_line: line_of[first],
                    last_line: line_of[last],
                    limit: MAX_WEATHER_GAP_H,
                }
            })
    };
    Ok(WeatherSeries {
        location,
        utc_offset_h,
        dry_bulb_c: fill(dry, "dry bulb temperature")?,
        dew_point_c: fill(dew, "dew point temperature")?,
        rh_pct: fill(rh, "relative humidity")?,
        source: path.to_path_buf(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grid::test_data::shared_data_dir;

    fn epw(name: &str) -> WeatherSeries {
        let p = shared_data_dir().join("grid/weather_tmy").join(name);
        load_epw(&p).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn reads_both_real_files() {
        let sj = epw("USA_CA_San.Jose-Mineta.epw");
        let da = epw("USA_TX_Dallas-Fort.Worth.epw");
        assert_eq!((sj.utc_offset_h, da.utc_offset_h), (-8.0, -6.0));
        assert_eq!(sj.dry_bulb_c.len(), 8760);
        assert!(
            sj.location.contains("San.Jose") || sj.location.contains("San Jose"),
            "{}",
            sj.location
        );
        // First Dallas row: 1/1 hour 1, dry bulb 2.80 °C, dew point 2.80, RH 100 (checked in the file).
        assert_eq!(
            (da.dry_bulb_c[0], da.dew_point_c[0], da.rh_pct[0]),
            (2.8, 2.8, 100.0)
        );
        // 2022-01-01T06:00Z is 00:00 CST: hour index 0.
        assert_eq!(da.hour_index(1_641_016_800), 0);
        assert_eq!(da.temp_c_at(1_641_016_800), 2.8);
        // Climate sanity: Dallas is warmer than San Jose on the year and hotter in July.
        assert!(da.mean_temp_c() > sj.mean_temp_c());
        let jul_noon_cdt = 1_657_818_000; // 2022-07-14T17:00Z = 11:00 CST
        assert!(da.temp_c_at(jul_noon_cdt) > 20.0);
        for w in [&sj, &da] {
            assert!(w.dry_bulb_c.iter().all(|t| (-30.0..50.0).contains(t)));
            assert!((0..8760)
                .all(|i| wet_bulb_stull_c(w.dry_bulb_c[i], w.rh_pct[i]) <= w.dry_bulb_c[i]));
        }
    }

    #[test]
    fn stull_wet_bulb_matches_the_papers_example() {
        // Stull (2011): T = 20 °C, RH = 50 % gives Tw = 13.7 °C.
        assert!((wet_bulb_stull_c(20.0, 50.0) - 13.7).abs() < 0.05);
        // Saturated air: wet bulb = dry bulb (within the formula's error).
        assert!((wet_bulb_stull_c(25.0, 99.0) - 25.0).abs() < 0.7);
    }

    #[test]
    fn leap_day_and_bad_files() {
        let da = epw("USA_TX_Dallas-Fort.Worth.epw");
        // 2024-02-29 12:00 CST reads 28 February 12:00.
        let leap = 1_709_229_600; // 2024-02-29T18:00Z
        let feb28 = 1_677_607_200; // 2023-02-28T18:00Z
        assert_eq!(da.hour_index(leap), da.hour_index(feb28));
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let p = dir.path().join("bad.epw");
        let src = std::fs::read_to_string(&da.source).unwrap_or_default();
        let mut lines: Vec<String> = src.lines().map(str::to_string).collect();
        lines.remove(100); // a missing hour
        std::fs::write(&p, lines.join("\n")).unwrap_or_else(|e| panic!("{e}"));
        let e = load_epw(&p).map(|_| ()).map_err(|e| e.to_string());
        assert!(
            e.as_ref()
                .is_err_and(|m| m.contains(":101:") && m.contains("month,day,hour")),
            "{e:?}"
        );
        // Missing dry bulb (99.9) for 3 hours: interpolated; for 7 hours: an error naming the lines.
        let mut gap = src.lines().map(str::to_string).collect::<Vec<_>>();
        for row in gap.iter_mut().skip(20).take(7) {
            let mut f: Vec<String> = row.split(',').map(str::to_string).collect();
            f[6] = "99.9".into();
            *row = f.join(",");
        }
        std::fs::write(&p, gap.join("\n")).unwrap_or_else(|e| panic!("{e}"));
        let e = load_epw(&p).map(|_| ()).map_err(|e| e.to_string());
        assert!(
            e.as_ref().is_err_and(|m| m.contains("lines 21")
                && m.contains("27")
                && m.contains("at most 6")),
            "{e:?}"
        );
    }
}
