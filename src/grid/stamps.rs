//! How a grid file's time column writes its stamps: ISO forms, EIA-930 US 12-hour stamps, ENTSO-E market time units.

use chrono::NaiveDateTime;

use super::time::{parse_stamp, Stamp, STAMP_FORMS};

/// How the time column writes its stamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StampStyle {
    /// ISO 8601-like forms ([`STAMP_FORMS`]), with or without a UTC offset.
    Iso,
    /// `%m/%d/%Y %I:%M:%S %p` (EIA-930 BALANCE, e.g. `01/01/2022 1:00:00 AM`), naive.
    UsSlash12h,
    /// An ENTSO-E market time unit `START - END`, dates `dd.mm.yyyy` (legacy) or `dd/mm/yyyy` (new
    /// platform), times `HH:MM[:SS]`, optionally followed by `(UTC)`, `(CET)`, `(CEST)` or
    /// `(CET/CEST)`; the start is used. `(UTC)`/`(CET)`/`(CEST)` fix the offset, which settles the
    /// repeated autumn hour; otherwise the start is local in the table's zone.
    EntsoeMtu,
}

const US_STAMP_FORM: &str = "'MM/DD/YYYY hh:mm:ss AM' or 'PM' (EIA-930 hour-ending stamps)";
const MTU_FORM: &str = "'DD.MM.YYYY HH:MM - DD.MM.YYYY HH:MM' or 'DD/MM/YYYY HH:MM:SS - DD/MM/YYYY HH:MM:SS', optionally followed by '(UTC)', '(CET)', '(CEST)' or '(CET/CEST)'";

impl StampStyle {
    /// The forms this style accepts, for errors.
    pub(crate) fn expected(self) -> &'static str {
        match self {
            StampStyle::Iso => STAMP_FORMS,
            StampStyle::UsSlash12h => US_STAMP_FORM,
            StampStyle::EntsoeMtu => MTU_FORM,
        }
    }

    /// The stamp a cell holds, if it is in this style.
    pub(crate) fn parse(self, cell: &str) -> Option<Stamp> {
        match self {
            StampStyle::Iso => parse_stamp(cell),
            StampStyle::UsSlash12h => {
                let t = cell.trim();
                ["%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y %I:%M %p"]
                    .iter()
                    .find_map(|f| NaiveDateTime::parse_from_str(t, f).ok())
                    .map(Stamp::Local)
            }
            StampStyle::EntsoeMtu => parse_mtu(cell),
        }
    }
}

/// Parses an ENTSO-E MTU cell (see [`StampStyle::EntsoeMtu`]) into its start.
fn parse_mtu(cell: &str) -> Option<Stamp> {
    let mut text = cell.trim();
    let mut offset_s: Option<i64> = None;
    if let Some(open) = text.rfind('(') {
        let zone = text[open..]
            .trim_start_matches('(')
            .trim_end_matches(')')
            .trim();
        offset_s = match zone.to_ascii_uppercase().as_str() {
            "UTC" => Some(0),
            "CET" => Some(3600),
            "CEST" => Some(7200),
            "CET/CEST" => None,
            _ => return None,
        };
        text = text[..open].trim();
    }
    let start = text.split(" - ").next()?.trim();
    let naive = [
        "%d.%m.%Y %H:%M",
        "%d.%m.%Y %H:%M:%S",
        "%d/%m/%Y %H:%M:%S",
        "%d/%m/%Y %H:%M",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(start, f).ok())?;
    Some(match offset_s {
        Some(off) => Stamp::Instant(naive.and_utc().timestamp() - off),
        None => Stamp::Local(naive),
    })
}
