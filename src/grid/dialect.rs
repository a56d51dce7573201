//! A grid file's bytes and its CSV dialect: `,` `;` or tab delimiter, decimal comma, Excel's `sep=` first line, JSON.
//!
//! The delimiter is sniffed from the **header line** only (the first line not starting with `#`):
//! the most frequent of `,` `;` and tab outside double quotes (ties: `,`). Data rows are not
//! consulted, so a `;` inside a comma-separated field (Electricity Maps writes the data source
//! `Electricity Maps Estimation; new.kpx.or.kr` unquoted) cannot fool it. An Excel `sep=X` first
//! line sets the delimiter and is then skipped as a comment (line numbers stay those of the file).
//! A `;`-delimited file is taken to use the decimal comma (Excel in European locales writes both).

use std::path::Path;

use super::error::GridError;

/// A grid file read into memory with its dialect.
pub(crate) struct Source {
    /// The file's bytes (an Excel `sep=` line turned into a `#` comment, same line count).
    pub bytes: Vec<u8>,
    /// Field delimiter.
    pub delimiter: u8,
    /// Numbers use `,` as the decimal mark (and may use `.` to group thousands).
    pub decimal_comma: bool,
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Reads `path` and finds its dialect (module docs).
pub(crate) fn read_source(path: &Path) -> Result<Source, GridError> {
    let mut bytes = std::fs::read(path).map_err(|source| GridError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let body = bytes.strip_prefix(BOM).unwrap_or(&bytes);
    let first_line = body.split(|b| *b == b'\n').next().unwrap_or(&[]);
    let first = String::from_utf8_lossy(first_line);
    let first = first.trim();
    let sep_line = first
        .get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case("sep="));
    let delimiter = if sep_line {
        let d = first.as_bytes().get(4).copied().unwrap_or(b',');
        // `#` + the file without its BOM: the `sep=` line becomes a comment, lines keep their numbers.
        let mut out = Vec::with_capacity(bytes.len() + 1);
        out.push(b'#');
        out.extend_from_slice(body);
        bytes = out;
        d
    } else {
        let header = body
            .split(|b| *b == b'\n')
            .find(|l| !l.starts_with(b"#"))
            .unwrap_or(&[]);
        sniff(header)
    };
    Ok(Source {
        bytes,
        delimiter,
        decimal_comma: delimiter == b';',
    })
}

/// The most frequent of `,` `;` tab outside double quotes in `line` (ties and none: `,`).
fn sniff(line: &[u8]) -> u8 {
    let mut counts = [0usize; 3];
    let mut quoted = false;
    for b in line {
        match b {
            b'"' => quoted = !quoted,
            b',' if !quoted => counts[0] += 1,
            b';' if !quoted => counts[1] += 1,
            b'\t' if !quoted => counts[2] += 1,
            _ => {}
        }
    }
    let cands = [b',', b';', b'\t'];
    let mut best = 0;
    for k in 1..3 {
        if counts[k] > counts[best] {
            best = k;
        }
    }
    cands[best]
}

/// True if the file's first non-blank byte (after a BOM) opens a JSON value.
pub(crate) fn looks_like_json(bytes: &[u8]) -> bool {
    let body = bytes.strip_prefix(BOM).unwrap_or(bytes);
    matches!(
        body.iter().find(|b| !b.is_ascii_whitespace()),
        Some(b'{') | Some(b'[')
    )
}

/// A CSV reader over `src` with its delimiter (headers on, ragged rows allowed, `#` comments).
pub(crate) fn csv_reader(src: &Source) -> csv::Reader<&[u8]> {
    csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .comment(Some(b'#'))
        .delimiter(src.delimiter)
        .from_reader(src.bytes.as_slice())
}

/// A number cell as Rust parses it: decimal comma turned into a point (`.` thousands groups
/// dropped) when the file uses one; `,` thousands groups dropped when `thousands` is set.
pub(crate) fn number_text(
    cell: &str,
    decimal_comma: bool,
    thousands: bool,
) -> std::borrow::Cow<'_, str> {
    if decimal_comma && cell.contains(',') {
        cell.replace('.', "").replace(',', ".").into()
    } else if thousands && cell.contains(',') {
        cell.replace(',', "").into()
    } else {
        cell.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_the_header_not_the_data() {
        assert_eq!(sniff(b"a,b,c"), b',');
        assert_eq!(sniff(b"a;b;c"), b';');
        assert_eq!(sniff(b"a\tb\tc"), b'\t');
        // A quoted `;` in a comma header does not count.
        assert_eq!(sniff(b"\"a;x\",b"), b',');
        assert_eq!(sniff(b"single"), b',');
    }

    #[test]
    fn decimal_comma_and_thousands() {
        assert_eq!(number_text("260,98", true, false), "260.98");
        assert_eq!(number_text("1.234,5", true, false), "1234.5");
        assert_eq!(number_text("12.5", true, false), "12.5");
        assert_eq!(number_text("1,234", false, true), "1234");
        assert_eq!(number_text("1,234", false, false), "1,234");
    }

    #[test]
    fn json_is_recognised_after_bom_and_blanks() {
        assert!(looks_like_json(b"\xEF\xBB\xBF \n{\"data\": []}"));
        assert!(!looks_like_json(b"point_time,value\n"));
    }
}
