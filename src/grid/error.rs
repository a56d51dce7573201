//! Errors of the grid module: every variant names the file (or source), the line and the field.

use std::path::PathBuf;

use super::bounds::Quantity;

/// Everything that can go wrong reading or using a grid series.
#[derive(Debug, thiserror::Error)]
pub enum GridError {
    /// The file could not be opened or read.
    #[error("{path}: cannot read grid file: {source}")]
    Io {
        /// File that failed.
        path: PathBuf,
        /// Underlying I/O error.
        source: std::io::Error,
    },
    /// The weather file could not be opened or read.
    #[error("{path}: cannot read weather file: {source}")]
    WeatherIo {
        /// File that failed.
        path: PathBuf,
        /// Underlying I/O error.
        source: std::io::Error,
    },
    /// The CSV reader failed on a record (bad quoting, invalid UTF-8, ...).
    #[error("{path}:{line}: malformed CSV record: {message}")]
    Csv {
        /// File that failed.
        path: PathBuf,
        /// 1-based line number (0 if unknown).
        line: u64,
        /// Reader's message.
        message: String,
    },
    /// The file has a header but too few data rows to form a series.
    #[error("{path}: {rows} data row(s); need at least 2 rows to infer the interval")]
    TooFewRows {
        /// File that failed.
        path: PathBuf,
        /// Number of data rows found.
        rows: usize,
    },
    /// A column named by the caller does not exist in the header.
    #[error("{path}:1: no column '{column}' (wanted as {role}); columns are: {available}")]
    UnknownColumn {
        /// File that failed.
        path: PathBuf,
        /// Requested column name.
        column: String,
        /// What the column was for (time, ci, load, price).
        role: &'static str,
        /// Comma-separated list of the columns that exist.
        available: String,
    },
    /// The `load_column` specification is malformed (e.g. `sum:` with an empty term).
    #[error("bad column specification '{spec}' for {role}: {valid}")]
    BadColumnSpec {
        /// The specification as given.
        spec: String,
        /// What the column was for.
        role: &'static str,
        /// What would be valid.
        valid: &'static str,
    },
    /// A value cell is not a valid number.
    #[error("{path}:{line}: column '{column}': bad value '{value}'; expected {expected}")]
    BadNumber {
        /// File that failed.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
        /// Column name.
        column: String,
        /// The cell text.
        value: String,
        /// What would be valid.
        expected: &'static str,
    },
    /// A timestamp cell could not be parsed.
    #[error("{path}:{line}: column '{column}': bad timestamp '{value}'; expected {expected}")]
    BadTimestamp {
        /// File that failed.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
        /// Column name.
        column: String,
        /// The cell text.
        value: String,
        /// What would be valid.
        expected: &'static str,
    },
    /// A naive local timestamp falls in the hour skipped by a spring-forward DST change.
    #[error("{path}:{line}: column '{column}': local time '{value}' does not exist in {tz} (skipped by the daylight-saving change); a series in local time cannot contain it — check the time zone, or give stamps with a UTC offset")]
    NonexistentLocalTime {
        /// File that failed.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
        /// Column name.
        column: String,
        /// The cell text.
        value: String,
        /// The time zone used.
        tz: String,
    },
    /// The time zone name is not known.
    #[error("{context}: unknown time zone '{value}'; expected an IANA name such as 'America/Los_Angeles' or 'UTC'")]
    UnknownTimeZone {
        /// File or source the zone was given for.
        context: String,
        /// The name given.
        value: String,
    },
    /// Two rows carry the same instant.
    #[error("{path}:{line}: duplicate timestamp '{value}' (same instant as line {first_line}); each interval must appear once")]
    Duplicate {
        /// File that failed.
        path: PathBuf,
        /// 1-based line number of the repeat.
        line: u64,
        /// 1-based line number of the first occurrence.
        first_line: u64,
        /// The repeated cell text.
        value: String,
    },
    /// A row's instant is earlier than the previous row's.
    #[error("{path}:{line}: timestamp '{value}' is earlier than line {prev_line} ('{prev_value}'); rows must be in increasing time order")]
    OutOfOrder {
        /// File that failed.
        path: PathBuf,
        /// 1-based line number of the offending row.
        line: u64,
        /// The offending cell text.
        value: String,
        /// 1-based line number of the previous row.
        prev_line: u64,
        /// The previous row's cell text.
        prev_value: String,
    },
    /// A run of missing values (missing rows or empty cells) is longer than allowed.
    #[error("{path}: column '{column}': {missing} missing interval(s) between line {after_line} and line {before_line} (UTC {from_utc} to {to_utc}); at most {limit} may be interpolated (raise max_gap_intervals or fill the data)")]
    GapTooLong {
        /// File that failed.
        path: PathBuf,
        /// Column name (or the sum specification).
        column: String,
        /// Number of missing intervals.
        missing: usize,
        /// 1-based line of the last value before the gap.
        after_line: u64,
        /// 1-based line of the first value after the gap.
        before_line: u64,
        /// UTC start of the first missing interval (RFC 3339).
        from_utc: String,
        /// UTC start of the last missing interval (RFC 3339).
        to_utc: String,
        /// The limit in force.
        limit: u32,
    },
    /// Values are missing at the start or end of the file, where there is nothing to interpolate from.
    #[error("{path}: column '{column}': {missing} missing value(s) at the {edge} of the series (line {line}); cannot interpolate without a value on both sides")]
    EdgeGap {
        /// File that failed.
        path: PathBuf,
        /// Column name.
        column: String,
        /// Number of missing intervals.
        missing: usize,
        /// "start" or "end".
        edge: &'static str,
        /// 1-based line of the nearest row.
        line: u64,
    },
    /// A requested window lies (partly) outside the series.
    #[error("{source_name}: window UTC {from_utc} .. {to_utc} is not covered by the series (UTC {have_from} .. {have_to}); pass wrap_years=true to map it onto the same calendar position")]
    NotCovered {
        /// The series' source.
        source_name: String,
        /// Requested start (RFC 3339).
        from_utc: String,
        /// Requested end (RFC 3339).
        to_utc: String,
        /// Series start (RFC 3339).
        have_from: String,
        /// Series end (RFC 3339).
        have_to: String,
    },
    /// No embedded profile for that region.
    #[error("no embedded grid profile for region '{region}'; available: {available}")]
    UnknownRegion {
        /// The region asked for.
        region: String,
        /// Comma-separated list of regions with a profile.
        available: String,
    },
    /// A numeric argument is out of range.
    #[error("invalid {what}: {value}; expected {valid}")]
    InvalidArgument {
        /// Name of the argument.
        what: &'static str,
        /// Its value as text.
        value: String,
        /// What would be valid.
        valid: &'static str,
    },
    /// The embedded profile table is malformed (a build defect, reported rather than panicking).
    #[error("embedded data/grid_profiles.csv line {line}: {message}")]
    EmbeddedProfile {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A carbon-intensity signal asked for by name is not in the series.
    #[error("{source_name}: no carbon-intensity signal '{name}'; this series has: {available}")]
    UnknownSignal {
        /// The series' source.
        source_name: String,
        /// The name asked for.
        name: String,
        /// Comma-separated names of the signals present.
        available: String,
    },
    /// No data row matched the row filter (e.g. the balancing authority in an EIA-930 file).
    #[error("{path}: no data row has '{value}' in column '{column}'; check the region code")]
    NoMatchingRows {
        /// File that failed.
        path: PathBuf,
        /// Filter column.
        column: String,
        /// Value looked for.
        value: String,
    },
    /// A grid format name is not known.
    #[error("unknown grid file format '{value}'; available: {available}")]
    UnknownFormat {
        /// The name given.
        value: String,
        /// Comma-separated format names.
        available: String,
    },
    /// The file gave no carbon-intensity signal (e.g. an ENTSO-E load/price export).
    #[error("{source_name}: the file has no carbon-intensity column or generation mix; as a scenario's grid file it takes intensity from the embedded profile of grid.region")]
    NoIntensity {
        /// The file and format.
        source_name: String,
    },
    /// An interval has no positive generation, so its mix intensity is undefined.
    #[error("{path}: interval starting {at_utc} has no positive generation in any fuel column; intensity from the mix is undefined there")]
    NoGeneration {
        /// File that failed.
        path: PathBuf,
        /// UTC start of the interval (RFC 3339).
        at_utc: String,
    },
    /// A generation column names a production type without an emission factor.
    #[error("{path}:1: column '{column}': unknown production type; known types: {valid}")]
    UnknownFuel {
        /// File that failed.
        path: PathBuf,
        /// The header.
        column: String,
        /// Comma-separated known types.
        valid: String,
    },
    /// A weather file misses too many consecutive values.
    #[error("{path}: {column} missing on lines {first_line} to {last_line}; at most {limit} consecutive hours are interpolated, and not at the start or end")]
    WeatherGap {
        /// File that failed.
        path: PathBuf,
        /// Which quantity.
        column: String,
        /// First line of the run.
        first_line: u64,
        /// Last line of the run.
        last_line: u64,
        /// Hours that may be interpolated.
        limit: usize,
    },
    /// A value lies outside its quantity's plausible range (or, with the override, beyond the hard limit).
    #[error("{path}:{line}: column '{column}': value '{value}' ({converted} {unit}) is outside the plausible range {lo} ..= {hi} {unit}: {why}; {hint}", unit = .quantity.bounds().unit, lo = .quantity.bounds().lo, hi = .quantity.bounds().hi, why = .quantity.bounds().why, hint = if *.overridden { "even with allow_out_of_range a value must be finite, at most 1e12 in magnitude, and an intensity must be >= 0" } else { "if the value is deliberate, set grid.csv.allow_out_of_range = true" })]
    OutOfRange {
        /// File that failed.
        path: PathBuf,
        /// 1-based line number (0 if the file has no lines, e.g. a derived value).
        line: u64,
        /// Column name (or the sum specification, or JSON field).
        column: String,
        /// The cell text.
        value: String,
        /// The value in the series' unit (after unit conversion).
        converted: f64,
        /// What the value is (its range and the reason come from [`Quantity::bounds`]).
        quantity: Quantity,
        /// Whether `allow_out_of_range` was set (then only the hard limit applies).
        overridden: bool,
    },
    /// A JSON grid file (WattTime) is malformed or not shaped as expected.
    #[error("{path}:{line}:{column}: {message}; expected {expected}")]
    Json {
        /// File that failed.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// 1-based column number.
        column: usize,
        /// What the JSON reader found (at most 200 characters, never the whole file).
        message: String,
        /// What would be valid.
        expected: &'static str,
    },
    /// A grid file gives no carbon intensity and the region has no embedded profile to take it from.
    #[error("{source_name}: the file has load and/or price but no carbon-intensity column or generation mix, and grid.region '{region}' has no embedded profile to take intensity from; set grid.region to one of {available}, or use a file with intensity")]
    NoIntensityForRegion {
        /// The file and format.
        source_name: String,
        /// The scenario's region.
        region: String,
        /// Regions with a profile.
        available: String,
    },
    /// Marginal emission factors could not be estimated from the file's generation by fuel.
    #[error("{source_name}: cannot estimate marginal emission factors (grid.marginal.source = \"estimate\"): {why}; use a file with hourly generation by fuel that varies (format eia930 or entsoe-legacy), or give a marginal series with grid.marginal.source = \"csv\"")]
    MarginalEstimate {
        /// The file and format.
        source_name: String,
        /// Why, with the numbers.
        why: String,
    },
    /// The series named as marginal intensity is not a marginal signal.
    #[error("{source_name}: signal '{name}' is {kind} intensity, not marginal; {valid}")]
    NotMarginal {
        /// The file and format.
        source_name: String,
        /// The signal named.
        name: String,
        /// What it is ("average").
        kind: &'static str,
        /// What would be valid.
        valid: String,
    },
}
