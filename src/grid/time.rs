//! Timestamp parsing for grid files: stamps with a UTC offset, naive stamps in a named zone, DST rules.
//!
//! DST rules for naive local stamps (documented here, applied in [`resolve_local`]):
//! - a local time skipped by a spring-forward change (e.g. 02:30 on the US spring day) does not
//!   exist; it is an error naming the row, never silently shifted;
//! - a local time repeated by a fall-back change is taken as the earlier instant (daylight time)
//!   unless the previous row is already at or after that instant, in which case it is the later
//!   one (standard time). A local series that lists the repeated hour twice therefore loads as
//!   consecutive instants, and one that lists it once loads with a one-interval gap.

use chrono::{DateTime, LocalResult, NaiveDateTime, TimeZone};
use chrono_tz::Tz;

use super::error::GridError;

/// Text used in errors to say which timestamp forms are accepted.
pub(crate) const STAMP_FORMS: &str = "'YYYY-MM-DD HH:MM[:SS[.fff]]' optionally with 'T' between date and time, and optionally followed by a UTC offset ('+00:00', '+0000' or 'Z')";

/// A parsed timestamp cell: either an absolute instant or a wall-clock time without zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stamp {
    /// Seconds since the Unix epoch (UTC), from a stamp that carried an offset.
    Instant(i64),
    /// A naive wall-clock time, to be resolved in the caller's time zone.
    Local(NaiveDateTime),
}

/// Result of resolving a naive local time in a zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resolved {
    /// The instant, seconds since the Unix epoch (UTC).
    Utc(i64),
    /// The local time was skipped by a daylight-saving change.
    Nonexistent,
}

/// Parses a time zone name: an IANA name, or "UTC" (any case). `context` names the file for errors.
pub fn parse_time_zone(name: &str, context: &str) -> Result<Tz, GridError> {
    let trimmed = name.trim();
    if trimmed.eq_ignore_ascii_case("utc") || trimmed.eq_ignore_ascii_case("z") {
        return Ok(chrono_tz::UTC);
    }
    trimmed
        .parse::<Tz>()
        .map_err(|_| GridError::UnknownTimeZone {
            context: context.to_string(),
            value: name.to_string(),
        })
}

/// Parses one timestamp cell; `None` if it matches none of [`STAMP_FORMS`].
pub(crate) fn parse_stamp(cell: &str) -> Option<Stamp> {
    let mut s = cell.trim().to_string();
    if s.len() > 10 && s.is_char_boundary(10) && s.is_char_boundary(11) {
        let sep = &s[10..11];
        if sep == "T" || sep == "t" {
            s.replace_range(10..11, " ");
        }
    }
    if s.ends_with('Z') || s.ends_with('z') {
        s.pop();
        s.push_str("+00:00");
    }
    const WITH_OFFSET: [&str; 4] = [
        "%Y-%m-%d %H:%M:%S%.f%:z",
        "%Y-%m-%d %H:%M:%S%.f%z",
        "%Y-%m-%d %H:%M%:z",
        "%Y-%m-%d %H:%M%z",
    ];
    for f in WITH_OFFSET {
        if let Ok(dt) = DateTime::parse_from_str(&s, f) {
            return Some(Stamp::Instant(dt.timestamp()));
        }
    }
    for f in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d %H:%M"] {
        if let Ok(n) = NaiveDateTime::parse_from_str(&s, f) {
            return Some(Stamp::Local(n));
        }
    }
    None
}

/// Resolves a naive local time in `tz` by the module's DST rules; `prev_utc_s` is the previous
/// row's instant (used to pick the side of a repeated fall-back hour).
pub(crate) fn resolve_local(tz: &Tz, naive: NaiveDateTime, prev_utc_s: Option<i64>) -> Resolved {
    match tz.from_local_datetime(&naive) {
        LocalResult::Single(dt) => Resolved::Utc(dt.timestamp()),
        LocalResult::Ambiguous(a, b) => {
            let (early, late) = if a.timestamp() <= b.timestamp() {
                (a.timestamp(), b.timestamp())
            } else {
                (b.timestamp(), a.timestamp())
            };
            match prev_utc_s {
                Some(p) if early <= p && late > p => Resolved::Utc(late),
                _ => Resolved::Utc(early),
            }
        }
        LocalResult::None => Resolved::Nonexistent,
    }
}

/// Formats seconds since the Unix epoch as an RFC 3339 UTC string (for messages and sources).
pub fn fmt_utc(t_utc_s: i64) -> String {
    match DateTime::from_timestamp(t_utc_s, 0) {
        Some(dt) => dt.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        None => format!("{t_utc_s} s since epoch"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instant(s: &str) -> i64 {
        match parse_stamp(s) {
            Some(Stamp::Instant(t)) => t,
            other => panic!("{s}: {other:?}"),
        }
    }

    #[test]
    fn offset_forms_agree() {
        let t = 1_640_995_200; // 2022-01-01T00:00:00Z
        assert_eq!(instant("2022-01-01T00:00:00+00:00"), t);
        assert_eq!(instant("2022-01-01 00:00:00+00:00"), t);
        assert_eq!(instant("2022-01-01 00:00:00Z"), t);
        assert_eq!(instant("2022-01-01T00:00:00.000+0000"), t);
        assert_eq!(instant("2021-12-31T16:00:00-08:00"), t);
        assert_eq!(instant(" 2022-01-01 01:00+01:00 "), t);
    }

    #[test]
    fn naive_forms_parse_as_local() {
        assert!(matches!(
            parse_stamp("2020-01-01 00:00:00"),
            Some(Stamp::Local(_))
        ));
        assert!(matches!(
            parse_stamp("2020-01-01T00:00"),
            Some(Stamp::Local(_))
        ));
        assert_eq!(parse_stamp("01/01/2020 00:00"), None);
        assert_eq!(parse_stamp("2020-13-01 00:00"), None);
        assert_eq!(parse_stamp(""), None);
    }

    #[test]
    fn time_zone_names() {
        assert_eq!(parse_time_zone("utc", "x").ok(), Some(chrono_tz::UTC));
        assert!(parse_time_zone("America/Los_Angeles", "x").is_ok());
        let e = parse_time_zone("Mars/Olympus", "f.csv").map(|_| ());
        assert!(format!("{e:?}").contains("Mars/Olympus"));
    }

    #[test]
    fn dst_rules_in_los_angeles() {
        let tz: Tz = chrono_tz::America::Los_Angeles;
        let n = |s: &str| match parse_stamp(s) {
            Some(Stamp::Local(n)) => n,
            other => panic!("{other:?}"),
        };
        // Spring forward 2022-03-13: 02:30 does not exist.
        assert_eq!(
            resolve_local(&tz, n("2022-03-13 02:30"), None),
            Resolved::Nonexistent
        );
        // Fall back 2022-11-06: 01:30 occurs at 08:30Z (PDT) and 09:30Z (PST).
        let pdt = instant("2022-11-06T08:30:00Z");
        let pst = instant("2022-11-06T09:30:00Z");
        assert_eq!(
            resolve_local(&tz, n("2022-11-06 01:30"), None),
            Resolved::Utc(pdt)
        );
        assert_eq!(
            resolve_local(&tz, n("2022-11-06 01:30"), Some(pdt - 1800)),
            Resolved::Utc(pdt)
        );
        assert_eq!(
            resolve_local(&tz, n("2022-11-06 01:30"), Some(pdt)),
            Resolved::Utc(pst)
        );
    }
}
