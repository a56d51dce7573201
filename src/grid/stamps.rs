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
///
/// A tag right after the start (`01:45:00 (CET) - 03:00:00 (CEST)`, new platform at DST changes)
/// is the start's own offset. A tag at the end of the cell belongs to the start too only when it
/// is `(UTC)` or `(CET/CEST)` (legacy: the zone of the whole range); a lone end tag `(CEST)` or
/// `(CET)` is the end's offset and leaves the start local.
fn parse_mtu(cell: &str) -> Option<Stamp> {
    let text = cell.trim();
    let (start, rest) = match text.split_once(" - ") {
        Some((a, b)) => (a.trim(), b.trim()),
        None => (text, ""),
    };
    let (start, start_tag) = split_tag(start)?;
    let (_, end_tag) = split_tag(rest)?;
    let end_offset = match &end_tag {
        Some(z) => zone_offset(z)?,
        None => None,
    };
    let offset_s = match (start_tag, end_tag) {
        (Some(z), _) => zone_offset(&z)?,
        (None, Some(z)) if z == "UTC" || z == "CET/CEST" => end_offset,
        _ => None,
    };
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

/// `"01:45:00 (CET)"` → (`"01:45:00"`, `Some("CET")`); no tag → (text, None); `None` if unbalanced.
fn split_tag(text: &str) -> Option<(&str, Option<String>)> {
    match text.rfind('(') {
        Some(open) => {
            let tag = text[open + 1..]
                .strip_suffix(')')?
                .trim()
                .to_ascii_uppercase();
            Some((text[..open].trim(), Some(tag)))
        }
        None => Some((text, None)),
    }
}

/// Offset east of UTC of a tag: `Some(Some(s))` fixed, `Some(None)` local (CET/CEST), `None` unknown.
fn zone_offset(tag: &str) -> Option<Option<i64>> {
    match tag {
        "UTC" => Some(Some(0)),
        "CET" => Some(Some(3600)),
        "CEST" => Some(Some(7200)),
        "CET/CEST" => Some(None),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instant(cell: &str) -> Option<i64> {
        match parse_mtu(cell) {
            Some(Stamp::Instant(t)) => Some(t),
            _ => None,
        }
    }

    #[test]
    fn mtu_start_tags_win_over_end_tags() {
        // 2025-03-30 01:45 CET = 00:45Z (the end's CEST tag must not shift the start).
        assert_eq!(
            instant("30/03/2025 01:45:00 (CET) - 30/03/2025 03:00:00 (CEST)"),
            Some(1_743_295_500)
        );
        // The repeated autumn quarter: 02:00 CEST = 00:00Z, 02:00 CET = 01:00Z.
        let cest = instant("26/10/2025 02:00:00 (CEST) - 26/10/2025 02:15:00 (CEST)");
        let cet = instant("26/10/2025 02:00:00 (CET) - 26/10/2025 02:15:00 (CET)");
        assert_eq!((cest, cet.map(|t| t - 3600)), (Some(1_761_436_800), cest));
        // A lone end tag leaves the start local; a legacy whole-range tag applies to it.
        assert!(matches!(
            parse_mtu("26/10/2025 01:45:00 - 26/10/2025 02:00:00 (CEST)"),
            Some(Stamp::Local(_))
        ));
        assert_eq!(
            instant("01.01.2016 00:00 - 01.01.2016 01:00 (UTC)"),
            Some(1_451_606_400)
        );
        assert!(matches!(
            parse_mtu("01.01.2016 00:00 - 01.01.2016 01:00 (CET/CEST)"),
            Some(Stamp::Local(_))
        ));
        assert_eq!(parse_mtu("01.01.2016 00:00 - 01.01.2016 01:00 (PST)"), None);
        assert_eq!(parse_mtu("30/03/2025 01:45:00 (CET"), None);
    }
}
