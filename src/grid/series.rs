//! The grid time series type: regular intervals of carbon intensity, load and price, with windowing.

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, TimeZone, Timelike};
use chrono_tz::Tz;

use super::error::GridError;
use super::time::fmt_utc;

/// Which carbon-intensity signal a series carries.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum CiKind {
    /// Average (attributional) intensity of the generation mix, gCO2eq/kWh.
    #[default]
    Average,
    /// Marginal intensity of the generator that responds to a change in load, gCO2eq/kWh.
    Marginal,
}

impl CiKind {
    /// The name in scenario files and reports: `average` or `marginal`.
    pub fn name(self) -> &'static str {
        match self {
            CiKind::Average => "average",
            CiKind::Marginal => "marginal",
        }
    }
}

/// A further carbon-intensity signal carried beside the primary one (e.g. life-cycle beside direct,
/// marginal beside average), one value per interval of its series.
#[derive(Debug, Clone, PartialEq)]
pub struct CiSignal {
    /// Short name, unique within a series: e.g. "direct", "lifecycle", "marginal", "ipcc-mix".
    pub name: String,
    /// Average or marginal.
    pub kind: CiKind,
    /// Intensity per interval, gCO2eq/kWh; same length as the series' `ci_g_per_kwh`.
    pub g_per_kwh: Vec<f64>,
}

/// A regular time series of grid signals. Interval i covers [start_utc_s + i*interval_s, +interval_s).
#[derive(Debug, Clone, PartialEq)]
pub struct GridSeries {
    /// Region name (balancing authority, country, or user label).
    pub region: String,
    /// Local time zone of the region (for local hours and calendar positions).
    pub tz: Tz,
    /// Start of interval 0, seconds since the Unix epoch (UTC).
    pub start_utc_s: i64,
    /// Interval length, seconds (> 0).
    pub interval_s: i64,
    /// Carbon intensity per interval, gCO2eq/kWh.
    pub ci_g_per_kwh: Vec<f64>,
    /// Whether `ci_g_per_kwh` is average or marginal intensity.
    pub ci_kind: CiKind,
    /// Name of the primary intensity signal (e.g. "direct", "lifecycle", "avg_CI"; the column name
    /// for generic files), used by [`GridSeries::select_ci`].
    pub ci_name: String,
    /// Other intensity signals the source gave (life-cycle beside direct, marginal beside average);
    /// empty for most sources. Windowing and resampling carry them along.
    pub ci_alt: Vec<CiSignal>,
    /// Grid load per interval (total generation or demand), MW; same length as `ci_g_per_kwh`.
    pub load_mw: Option<Vec<f64>>,
    /// Electricity price per interval, currency per MWh; same length as `ci_g_per_kwh`.
    pub price_per_mwh: Option<Vec<f64>>,
    /// Where the data came from: a file path or "embedded profile <region> (derived from ...)".
    pub source: String,
    /// What a reader of the results should know about how the series was read, one sentence each:
    /// unit conversions, columns used or excluded, intensity taken from the region's profile.
    /// Reports print them beside the grid source.
    pub notes: Vec<String>,
}

/// Time-weighted means of the three signals over a span.
#[derive(Debug, Clone)]
struct SpanMean {
    ci: f64,
    alt: Vec<f64>,
    load: f64,
    price: f64,
}

impl GridSeries {
    /// Number of intervals.
    pub fn len(&self) -> usize {
        self.ci_g_per_kwh.len()
    }

    /// True if the series has no interval.
    pub fn is_empty(&self) -> bool {
        self.ci_g_per_kwh.is_empty()
    }

    /// End of the last interval (exclusive), seconds since the Unix epoch (UTC).
    pub fn end_utc_s(&self) -> i64 {
        self.start_utc_s + self.interval_s * self.len() as i64
    }

    /// Checks the invariants: interval > 0, at least one value, optional columns of equal length,
    /// finite values, CI >= 0. Loaders and constructors call it; call it after building a series by hand.
    pub fn validate(&self) -> Result<(), GridError> {
        if self.interval_s <= 0 {
            return Err(GridError::InvalidArgument {
                what: "interval_s",
                value: self.interval_s.to_string(),
                valid: "a positive number of seconds",
            });
        }
        if self.is_empty() {
            return Err(GridError::InvalidArgument {
                what: "ci_g_per_kwh length",
                value: "0".into(),
                valid: "at least one interval",
            });
        }
        if let Some(bad) = self
            .ci_g_per_kwh
            .iter()
            .find(|v| !v.is_finite() || **v < 0.0)
        {
            return Err(GridError::InvalidArgument {
                what: "ci_g_per_kwh value",
                value: bad.to_string(),
                valid: "finite and >= 0 gCO2eq/kWh",
            });
        }
        for sig in &self.ci_alt {
            if sig.g_per_kwh.len() != self.len() {
                return Err(GridError::InvalidArgument {
                    what: "ci_alt signal length",
                    value: format!("'{}': length {}", sig.name, sig.g_per_kwh.len()),
                    valid: "the same length as ci_g_per_kwh",
                });
            }
            if let Some(bad) = sig.g_per_kwh.iter().find(|v| !v.is_finite() || **v < 0.0) {
                return Err(GridError::InvalidArgument {
                    what: "ci_alt value",
                    value: format!("'{}': {bad}", sig.name),
                    valid: "finite and >= 0 gCO2eq/kWh",
                });
            }
        }
        for (what, col) in [
            ("load_mw", &self.load_mw),
            ("price_per_mwh", &self.price_per_mwh),
        ] {
            if let Some(v) = col {
                if v.len() != self.len() {
                    return Err(GridError::InvalidArgument {
                        what,
                        value: format!("length {}", v.len()),
                        valid: "the same length as ci_g_per_kwh",
                    });
                }
                if let Some(bad) = v.iter().find(|x| !x.is_finite()) {
                    return Err(GridError::InvalidArgument {
                        what,
                        value: bad.to_string(),
                        valid: "finite numbers",
                    });
                }
            }
        }
        Ok(())
    }

    /// Index of the interval containing `t_utc_s` (seconds since epoch, UTC), or `None` outside.
    pub fn index_at(&self, t_utc_s: i64) -> Option<usize> {
        if t_utc_s < self.start_utc_s || t_utc_s >= self.end_utc_s() || self.interval_s <= 0 {
            return None;
        }
        Some(((t_utc_s - self.start_utc_s) / self.interval_s) as usize)
    }

    /// Carbon intensity (gCO2eq/kWh) of the interval containing `t_utc_s`, or `None` outside.
    pub fn ci_at(&self, t_utc_s: i64) -> Option<f64> {
        self.index_at(t_utc_s).map(|i| self.ci_g_per_kwh[i])
    }

    /// Start of interval `i`, seconds since epoch (UTC).
    pub fn interval_start_utc_s(&self, i: usize) -> i64 {
        self.start_utc_s + self.interval_s * i as i64
    }

    fn local_at(&self, t_utc_s: i64) -> Option<DateTime<Tz>> {
        DateTime::from_timestamp(t_utc_s, 0).map(|d| d.with_timezone(&self.tz))
    }

    /// Local hour (0-23) of the start of interval `i`, daylight-saving aware.
    pub fn local_hour(&self, i: usize) -> u32 {
        self.local_at(self.interval_start_utc_s(i))
            .map_or(0, |d| d.hour())
    }

    /// Local month (1-12) of the start of interval `i`, daylight-saving aware.
    pub fn local_month(&self, i: usize) -> u32 {
        self.local_at(self.interval_start_utc_s(i))
            .map_or(1, |d| d.month())
    }

    /// Mean carbon intensity over all intervals (each interval weighted equally), gCO2eq/kWh.
    pub fn mean_ci(&self) -> f64 {
        if self.is_empty() {
            return f64::NAN;
        }
        self.ci_g_per_kwh.iter().sum::<f64>() / self.len() as f64
    }

    /// The first intensity signal of `kind`: the primary if it is of that kind, else the first of
    /// `ci_alt` [gCO2eq/kWh per interval]; `None` if the series carries none.
    pub fn ci_of_kind(&self, kind: CiKind) -> Option<&[f64]> {
        if self.ci_kind == kind {
            return Some(&self.ci_g_per_kwh);
        }
        self.ci_alt
            .iter()
            .find(|s| s.kind == kind)
            .map(|s| s.g_per_kwh.as_slice())
    }

    /// The name of the signal [`GridSeries::ci_of_kind`] returns.
    pub fn ci_name_of_kind(&self, kind: CiKind) -> Option<&str> {
        if self.ci_kind == kind {
            return Some(&self.ci_name);
        }
        self.ci_alt
            .iter()
            .find(|s| s.kind == kind)
            .map(|s| s.name.as_str())
    }

    /// Names of all intensity signals: the primary first, then `ci_alt` in order.
    pub fn ci_names(&self) -> Vec<&str> {
        std::iter::once(self.ci_name.as_str())
            .chain(self.ci_alt.iter().map(|s| s.name.as_str()))
            .collect()
    }

    /// The values of the signal called `name` (case-insensitive; primary or alternative), gCO2eq/kWh.
    pub fn ci_signal(&self, name: &str) -> Option<&[f64]> {
        if self.ci_name.eq_ignore_ascii_case(name.trim()) {
            return Some(&self.ci_g_per_kwh);
        }
        self.ci_alt
            .iter()
            .find(|s| s.name.eq_ignore_ascii_case(name.trim()))
            .map(|s| s.g_per_kwh.as_slice())
    }

    /// The same series with the signal called `name` as the primary intensity (the former primary
    /// moves into `ci_alt`); an error lists the signals available.
    pub fn select_ci(&self, name: &str) -> Result<GridSeries, GridError> {
        let mut out = self.clone();
        if self.ci_name.eq_ignore_ascii_case(name.trim()) {
            return Ok(out);
        }
        let Some(k) = self
            .ci_alt
            .iter()
            .position(|s| s.name.eq_ignore_ascii_case(name.trim()))
        else {
            return Err(GridError::UnknownSignal {
                source_name: self.source.clone(),
                name: name.to_string(),
                available: self.ci_names().join(", "),
            });
        };
        let chosen = out.ci_alt.remove(k);
        let former = CiSignal {
            name: std::mem::replace(&mut out.ci_name, chosen.name),
            kind: std::mem::replace(&mut out.ci_kind, chosen.kind),
            g_per_kwh: std::mem::replace(&mut out.ci_g_per_kwh, chosen.g_per_kwh),
        };
        out.ci_alt.insert(k, former);
        Ok(out)
    }

    /// Time-weighted means over [a, b) (UTC seconds); `None` unless fully covered and a < b.
    fn span_mean(&self, a: i64, b: i64) -> Option<SpanMean> {
        if a >= b || a < self.start_utc_s || b > self.end_utc_s() {
            return None;
        }
        let iv = self.interval_s;
        let first = ((a - self.start_utc_s) / iv) as usize;
        let last = ((b - 1 - self.start_utc_s) / iv) as usize;
        let (mut ci, mut load, mut price) = (0.0, 0.0, 0.0);
        let mut alt = vec![0.0; self.ci_alt.len()];
        for i in first..=last {
            let s = self.interval_start_utc_s(i);
            let w = (b.min(s + iv) - a.max(s)) as f64;
            ci += w * self.ci_g_per_kwh[i];
            for (acc, sig) in alt.iter_mut().zip(&self.ci_alt) {
                *acc += w * sig.g_per_kwh[i];
            }
            if let Some(l) = &self.load_mw {
                load += w * l[i];
            }
            if let Some(p) = &self.price_per_mwh {
                price += w * p[i];
            }
        }
        let total = (b - a) as f64;
        alt.iter_mut().for_each(|x| *x /= total);
        Some(SpanMean {
            ci: ci / total,
            alt,
            load: load / total,
            price: price / total,
        })
    }

    /// A new series covering [start, start+duration) at this series' `interval_s`, starting at any
    /// UTC time; see [`GridSeries::window_resampled`].
    pub fn window(
        &self,
        start_utc_s: i64,
        duration_s: i64,
        wrap_years: bool,
    ) -> Result<GridSeries, GridError> {
        self.window_resampled(start_utc_s, duration_s, self.interval_s, wrap_years)
    }

    /// A new series covering [start, start+duration) at `interval_s` (seconds). Each new interval's
    /// values are the time-weighted means of the source intervals it overlaps; a last interval that
    /// runs past start+duration is averaged over its part inside the window only.
    ///
    /// If the window is not inside the data, this is an error unless `wrap_years` is true; then each
    /// uncovered interval is mapped onto the same local calendar position (month, day, local clock
    /// time) in the data year nearest to it (ties: earlier year) that covers it. 29 February maps to
    /// 28 February in non-leap years; a local time that does not exist in the data year (DST spring
    /// change on a different date) moves forward one hour; a repeated one takes the earlier instant.
    pub fn window_resampled(
        &self,
        start_utc_s: i64,
        duration_s: i64,
        interval_s: i64,
        wrap_years: bool,
    ) -> Result<GridSeries, GridError> {
        if duration_s <= 0 {
            return Err(GridError::InvalidArgument {
                what: "window duration_s",
                value: duration_s.to_string(),
                valid: "a positive number of seconds",
            });
        }
        if interval_s <= 0 {
            return Err(GridError::InvalidArgument {
                what: "window interval_s",
                value: interval_s.to_string(),
                valid: "a positive number of seconds",
            });
        }
        let end = start_utc_s.saturating_add(duration_s);
        let not_covered = || GridError::NotCovered {
            source_name: self.source.clone(),
            from_utc: fmt_utc(start_utc_s),
            to_utc: fmt_utc(end),
            have_from: fmt_utc(self.start_utc_s),
            have_to: fmt_utc(self.end_utc_s()),
        };
        let covered = start_utc_s >= self.start_utc_s && end <= self.end_utc_s();
        if !covered && !wrap_years {
            return Err(not_covered());
        }
        let n = ((duration_s + interval_s - 1) / interval_s) as usize;
        let mut ci = Vec::with_capacity(n);
        let mut alt: Vec<Vec<f64>> = self.ci_alt.iter().map(|_| Vec::with_capacity(n)).collect();
        let mut load = self.load_mw.as_ref().map(|_| Vec::with_capacity(n));
        let mut price = self.price_per_mwh.as_ref().map(|_| Vec::with_capacity(n));
        for k in 0..n {
            let a = start_utc_s + interval_s * k as i64;
            let b = (a + interval_s).min(end);
            let m = match self.span_mean(a, b) {
                Some(m) => m,
                None if wrap_years => self.wrapped_span_mean(a, b).ok_or_else(not_covered)?,
                None => return Err(not_covered()),
            };
            ci.push(m.ci);
            for (v, x) in alt.iter_mut().zip(&m.alt) {
                v.push(*x);
            }
            if let Some(l) = load.as_mut() {
                l.push(m.load);
            }
            if let Some(p) = price.as_mut() {
                p.push(m.price);
            }
        }
        let source = if covered {
            format!(
                "{} [window {}+{} s]",
                self.source,
                fmt_utc(start_utc_s),
                duration_s
            )
        } else {
            format!(
                "{} [window {}+{} s, wrapped onto the data's years]",
                self.source,
                fmt_utc(start_utc_s),
                duration_s
            )
        };
        Ok(GridSeries {
            region: self.region.clone(),
            tz: self.tz,
            start_utc_s,
            interval_s,
            ci_g_per_kwh: ci,
            ci_kind: self.ci_kind,
            ci_name: self.ci_name.clone(),
            ci_alt: self
                .ci_alt
                .iter()
                .zip(alt)
                .map(|(sig, g_per_kwh)| CiSignal {
                    name: sig.name.clone(),
                    kind: sig.kind,
                    g_per_kwh,
                })
                .collect(),
            load_mw: load,
            price_per_mwh: price,
            source,
            notes: self.notes.clone(),
        })
    }

    /// Span mean of [a, b) mapped onto the same local calendar position in a covered data year.
    fn wrapped_span_mean(&self, a: i64, b: i64) -> Option<SpanMean> {
        let local = self.local_at(a)?.naive_local();
        let first_year = self.local_at(self.start_utc_s)?.year();
        let last_year = self.local_at(self.end_utc_s() - 1)?.year();
        let target = local.year();
        let mut years: Vec<i32> = (first_year - 1..=last_year + 1).collect();
        years.sort_by_key(|y| ((y - target).abs(), *y));
        for y in years {
            let Some(mapped) = self.map_to_year(local, y) else {
                continue;
            };
            if let Some(m) = self.span_mean(mapped, mapped + (b - a)) {
                return Some(m);
            }
        }
        None
    }

    /// The UTC instant of `local`'s month/day/clock time in `year` in this series' zone.
    fn map_to_year(&self, local: NaiveDateTime, year: i32) -> Option<i64> {
        let date = NaiveDate::from_ymd_opt(year, local.month(), local.day())
            .or_else(|| NaiveDate::from_ymd_opt(year, local.month(), local.day() - 1))?;
        let mut naive = date.and_time(local.time());
        for _ in 0..3 {
            if let Some(dt) = self.tz.from_local_datetime(&naive).earliest() {
                return Some(dt.timestamp());
            }
            naive += chrono::Duration::hours(1);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hourly(start: i64, ci: Vec<f64>) -> GridSeries {
        let n = ci.len();
        GridSeries {
            region: "T".into(),
            tz: chrono_tz::America::Los_Angeles,
            start_utc_s: start,
            interval_s: 3600,
            ci_g_per_kwh: ci,
            ci_kind: CiKind::Average,
            ci_name: "ci".into(),
            ci_alt: Vec::new(),
            load_mw: Some((0..n).map(|i| 1000.0 + i as f64).collect()),
            price_per_mwh: None,
            source: "test".into(),
            notes: Vec::new(),
        }
    }

    const T2022: i64 = 1_640_995_200; // 2022-01-01T00:00:00Z

    #[test]
    fn index_and_end() {
        let s = hourly(T2022, vec![1.0, 2.0, 3.0]);
        assert_eq!(s.end_utc_s(), T2022 + 3 * 3600);
        assert_eq!(s.index_at(T2022 - 1), None);
        assert_eq!(s.index_at(T2022), Some(0));
        assert_eq!(s.index_at(T2022 + 3599), Some(0));
        assert_eq!(s.index_at(T2022 + 7200), Some(2));
        assert_eq!(s.index_at(T2022 + 3 * 3600), None);
        assert_eq!(s.mean_ci(), 2.0);
        assert!(s.validate().is_ok());
    }

    #[test]
    fn local_hour_follows_dst() {
        // 2022-01-01 00:00Z is 16:00 PST; 2022-07-01 00:00Z is 17:00 PDT.
        let s = hourly(T2022, vec![1.0]);
        assert_eq!(s.local_hour(0), 16);
        assert_eq!(s.local_month(0), 12);
        let jul = hourly(1_656_633_600, vec![1.0]);
        assert_eq!(jul.local_hour(0), 17);
    }

    #[test]
    fn window_averages_unaligned_start() {
        let s = hourly(T2022, vec![10.0, 20.0, 30.0, 40.0]);
        let w = s
            .window(T2022 + 1800, 2 * 3600, false)
            .map_err(|e| e.to_string());
        let w = w.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(w.ci_g_per_kwh, vec![15.0, 25.0]);
        assert_eq!(w.load_mw, Some(vec![1000.5, 1001.5]));
        // A partial last interval is averaged over its part inside the window only.
        // Here [2 h, 3.5 h): one hour of 30 and half an hour of 40 -> 100/3.
        let p = s.window_resampled(T2022, 3 * 3600 + 1800, 7200, false);
        let p = p.map(|w| w.ci_g_per_kwh).unwrap_or_default();
        assert_eq!(p.len(), 2);
        assert_eq!(p[0], 15.0);
        assert!((p[1] - 100.0 / 3.0).abs() < 1e-12, "{p:?}");
    }

    #[test]
    fn window_outside_data_errors_unless_wrapped() {
        let day: Vec<f64> = (0..24 * 365).map(|i| (i % 24) as f64).collect();
        let s = hourly(T2022, day);
        let later = T2022 + 2 * 365 * 86400 + 86400; // 2024-01-01T00:00Z
        let e = s
            .window(later, 3 * 3600, false)
            .map(|_| ())
            .map_err(|e| e.to_string());
        assert!(
            e.as_ref().is_err_and(|m| m.contains("not covered")),
            "{e:?}"
        );
        let w = s.window(later, 3 * 3600, true).map_err(|e| e.to_string());
        let w = w.unwrap_or_else(|e| panic!("{e}"));
        // 2023-12-31 16:00 PST maps to 2021-12-31 16:00 PST = 2022-01-01T00:00Z, the first interval
        // (the 2022 candidate, 2023-01-01T00:00Z, is just past the data's end).
        assert_eq!(w.ci_g_per_kwh, vec![0.0, 1.0, 2.0]);
        // 2024-07-01T12:00Z (05:00 PDT) maps to 2022-07-01 05:00 PDT = 12:00Z: UTC hour 12.
        let jul = T2022 + (730 + 182) * 86400 + 12 * 3600;
        let w2 = s.window(jul, 3600, true).map(|w| w.ci_g_per_kwh).ok();
        assert_eq!(w2, Some(vec![12.0]));
        assert!(w.source.contains("wrapped"));
    }

    #[test]
    fn validate_rejects_bad_shapes() {
        let mut s = hourly(T2022, vec![1.0, 2.0]);
        s.price_per_mwh = Some(vec![1.0]);
        assert!(s.validate().is_err());
        let mut s = hourly(T2022, vec![1.0, -2.0]);
        s.load_mw = None;
        assert!(s.validate().is_err());
    }

    #[test]
    fn alternative_signals_follow_windows_and_can_be_selected() {
        let mut s = hourly(T2022, vec![10.0, 20.0, 30.0, 40.0]);
        s.ci_alt.push(CiSignal {
            name: "marginal".into(),
            kind: CiKind::Marginal,
            g_per_kwh: vec![100.0, 200.0, 300.0, 400.0],
        });
        assert!(s.validate().is_ok());
        let w = s
            .window(T2022 + 1800, 2 * 3600, false)
            .map_err(|e| e.to_string());
        let w = w.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(w.ci_alt[0].g_per_kwh, vec![150.0, 250.0]);
        assert_eq!(w.ci_names(), vec!["ci", "marginal"]);
        let m = w.select_ci("MARGINAL").map_err(|e| e.to_string());
        let m = m.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (m.ci_kind, m.ci_name.as_str()),
            (CiKind::Marginal, "marginal")
        );
        assert_eq!(m.ci_g_per_kwh, vec![150.0, 250.0]);
        assert_eq!(m.ci_signal("ci"), Some(&[15.0, 25.0][..]));
        let e = w
            .select_ci("lifecycle")
            .map(|_| ())
            .map_err(|e| e.to_string());
        assert!(e.is_err_and(|m| m.contains("'lifecycle'") && m.contains("ci, marginal")));
        s.ci_alt[0].g_per_kwh.pop();
        assert!(s.validate().is_err());
    }
}
