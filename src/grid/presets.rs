//! Ready-made CSV specifications for the real grid files in /work/shared/data/grid.

use std::path::PathBuf;

use super::error::GridError;
use super::spec::{CsvColumns, GridFile};

/// Load column of the EIA 2022 files: total net generation as the sum of the fuel columns, MW.
pub const EIA_FUEL_SUM: &str = "sum:WND+SUN+WAT+OIL+NG+COL+NUC+OTH";

/// EIA balancing authorities with a file in us_eia_2022 and their local zones
/// (zones from /work/shared/data/grid/PROVENANCE.md; MISO spans zones, EIA reports it in Central).
const EIA_ZONES: [(&str, &str); 6] = [
    ("CISO", "America/Los_Angeles"),
    ("ERCO", "America/Chicago"),
    ("PJM", "America/New_York"),
    ("MISO", "America/Chicago"),
    ("NYIS", "America/New_York"),
    ("BPAT", "America/Los_Angeles"),
];

/// The built-in local zone of an EIA balancing authority (CISO, ERCO, PJM, MISO, NYIS, BPAT), if known.
pub(crate) fn eia_zone(region: &str) -> Option<&'static str> {
    zone_of(&EIA_ZONES, region).ok()
}

/// Countries with a file in europe_2020 and their local zones.
const EUROPE_ZONES: [(&str, &str); 3] = [
    ("GB", "Europe/London"),
    ("DE", "Europe/Berlin"),
    ("FR", "Europe/Paris"),
];

fn zone_of(
    table: &[(&'static str, &'static str)],
    region: &str,
) -> Result<&'static str, GridError> {
    table
        .iter()
        .find(|(r, _)| r.eq_ignore_ascii_case(region.trim()))
        .map(|(_, z)| *z)
        .ok_or_else(|| GridError::UnknownRegion {
            region: region.to_string(),
            available: table.iter().map(|(r, _)| *r).collect::<Vec<_>>().join(", "),
        })
}

/// Spec for an EIA 2022 file (`us_eia_2022/<BA>.csv`): `timestamp` (UTC offset, interval start),
/// `avg_CI` (average), load = [`EIA_FUEL_SUM`], local zone of the balancing authority.
/// `max_gap_intervals` is 24: the files keep real gaps of up to 22 hours (PJM, 13-14 March 2022).
pub fn eia_2022_spec(path: impl Into<PathBuf>, region: &str) -> Result<GridFile, GridError> {
    let zone = zone_of(&EIA_ZONES, region)?;
    let mut file = GridFile::generic(
        path,
        CsvColumns {
            time_column: "timestamp".into(),
            time_zone: zone.into(),
            ci_column: "avg_CI".into(),
            load_column: Some(EIA_FUEL_SUM.into()),
            ..CsvColumns::default()
        },
    );
    file.max_gap_intervals = 24;
    Ok(file)
}

/// Spec for a Let's Wait Awhile file (`europe_2020/{gb,ger,fr}_ci.csv`; region GB, DE or FR):
/// `Time` (naive UTC, interval start), `Carbon Intensity` (average, life-cycle), no load,
/// local zone of the country. `max_gap_intervals` is 4 (the DE file misses two single rows).
pub fn europe_2020_spec(path: impl Into<PathBuf>, region: &str) -> Result<GridFile, GridError> {
    let zone = zone_of(&EUROPE_ZONES, region)?;
    let mut file = GridFile::generic(
        path,
        CsvColumns {
            time_column: "Time".into(),
            time_zone: "UTC".into(),
            ci_column: "Carbon Intensity".into(),
            ..CsvColumns::default()
        },
    );
    file.max_gap_intervals = 4;
    file.local_time_zone = Some(zone.into());
    Ok(file)
}
