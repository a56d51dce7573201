//! Scenario errors that point at the file, line:column and key, and say what would be valid.

use std::fmt;
use std::path::PathBuf;

/// Something wrong with a scenario file.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("{path}: cannot read scenario: {source}")]
    Io {
        /// Scenario file.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// A value in the file is invalid; `at` locates it.
    #[error("{at}: {msg}")]
    Invalid {
        /// Where: file, line, column and key.
        at: Location,
        /// What is wrong and what would be valid.
        msg: String,
    },
}

/// A place in a scenario file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// File name (or `<embedded default>`).
    pub file: String,
    /// 1-based line (0 if unknown).
    pub line: usize,
    /// 1-based column (0 if unknown).
    pub col: usize,
    /// Dotted key path, e.g. `models.moe.top_k` (empty for syntax errors).
    pub key: String,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.col)?;
        }
        if !self.key.is_empty() {
            write!(f, ": `{}`", self.key)?;
        }
        Ok(())
    }
}

/// 1-based line and column of a byte offset in `text`.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rsplit('\n')
        .next()
        .map(|s| s.chars().count())
        .unwrap_or(0)
        + 1;
    (line, col)
}

/// Resolves dotted key paths to positions, using the spans toml_edit keeps.
pub struct Locator<'a> {
    file: String,
    text: &'a str,
    doc: Option<toml_edit::ImDocument<&'a str>>,
    /// Prepended to every key (`site.0.` while a site's `[site.grid]` is validated by the `[grid]` code).
    prefix: String,
}

impl<'a> Locator<'a> {
    /// A locator over the scenario text.
    pub fn new(file: String, text: &'a str) -> Self {
        let doc = toml_edit::ImDocument::parse(text).ok();
        Self {
            file,
            text,
            doc,
            prefix: String::new(),
        }
    }

    /// The same file with `prefix` before every key, so a section's validator can check a copy of
    /// that section nested elsewhere (e.g. `[[site]]`'s `grid` table) and point at the copy.
    pub fn nested(&self, prefix: &str) -> Locator<'a> {
        Locator {
            file: self.file.clone(),
            text: self.text,
            doc: toml_edit::ImDocument::parse(self.text).ok(),
            prefix: format!("{}{prefix}", self.prefix),
        }
    }

    /// Location of `key` (dotted path; array indices as numbers); falls back to the nearest parent that exists.
    pub fn at(&self, key: &str) -> Location {
        let key = &format!("{}{key}", self.prefix);
        let (line, col) = self
            .span_of(key)
            .map(|o| line_col(self.text, o))
            .unwrap_or((0, 0));
        Location {
            file: self.file.clone(),
            line,
            col,
            key: key.to_string(),
        }
    }

    /// An `Invalid` error at `key`.
    pub fn invalid(&self, key: &str, msg: impl Into<String>) -> ScenarioError {
        ScenarioError::Invalid {
            at: self.at(key),
            msg: msg.into(),
        }
    }

    /// The dotted key whose value holds byte `offset` (the deepest one), if any.
    pub fn key_at(&self, offset: usize) -> Option<String> {
        fn walk(item: &toml_edit::Item, offset: usize, path: &mut Vec<String>) -> bool {
            let inside = |span: Option<std::ops::Range<usize>>| {
                span.is_some_and(|s| s.start <= offset && offset < s.end.max(s.start + 1))
            };
            match item {
                toml_edit::Item::Table(t) => {
                    for (k, v) in t.iter() {
                        path.push(k.to_string());
                        if walk(v, offset, path) {
                            return true;
                        }
                        path.pop();
                    }
                    false
                }
                toml_edit::Item::Value(v) => inside(v.span()),
                _ => false,
            }
        }
        let doc = self.doc.as_ref()?;
        let mut path = Vec::new();
        walk(doc.as_item(), offset, &mut path).then(|| path.join("."))
    }

    fn span_of(&self, key: &str) -> Option<usize> {
        let doc = self.doc.as_ref()?;
        let parts: Vec<&str> = key.split('.').filter(|s| !s.is_empty()).collect();
        span_in(doc.as_item(), &parts, None)
    }
}

/// Byte offset of the dotted path `parts` below `item`: the value's (or, for a missing key, the
/// deepest key found's) start; `best` is the deepest found so far.
fn span_in(item: &toml_edit::Item, parts: &[&str], best: Option<usize>) -> Option<usize> {
    let Some((part, rest)) = parts.split_first() else {
        return best.or_else(|| item.span().map(|s| s.start));
    };
    if let Ok(i) = part.parse::<usize>() {
        if let Some(a) = item.as_array() {
            return a.get(i).and_then(|v| v.span()).map(|s| s.start).or(best);
        }
        // `[[x]]` arrays of tables: descend into the indexed table.
        if let Some(a) = item.as_array_of_tables() {
            return match a.get(i) {
                Some(t) => span_in_table(t, rest, t.span().map(|s| s.start).or(best)),
                None => best,
            };
        }
    }
    match item {
        toml_edit::Item::Table(t) => span_in_table(t, parts, best),
        toml_edit::Item::Value(toml_edit::Value::InlineTable(t)) => {
            t.key(part).and_then(|k| k.span()).map(|s| s.start).or(best)
        }
        _ => best.or_else(|| item.span().map(|s| s.start)),
    }
}

/// [`span_in`] within table `t`.
fn span_in_table(t: &toml_edit::Table, parts: &[&str], best: Option<usize>) -> Option<usize> {
    let Some((part, rest)) = parts.split_first() else {
        return best.or_else(|| t.span().map(|s| s.start));
    };
    let best = t.key(part).and_then(|k| k.span()).map(|s| s.start).or(best);
    match t.get(part) {
        Some(c) => span_in(c, rest, best),
        None => best.or_else(|| t.span().map(|s| s.start)),
    }
}

/// Turn a toml deserialization error into one with file:line:col.
pub fn from_toml(file: &str, text: &str, e: toml::de::Error) -> ScenarioError {
    let (line, col) = e.span().map(|s| line_col(text, s.start)).unwrap_or((0, 0));
    let msg = e
        .message()
        .trim()
        .replace("expected i64", "expected an integer")
        .replace("expected f64", "expected a number")
        .replace("expected a boolean", "expected true or false");
    let msg = if msg.starts_with("missing field") {
        format!("{msg} (scenarios/README.md lists every key)")
    } else {
        msg
    };
    // An unknown name (routing model, kernel, format, ...) or a value of the wrong type is a value:
    // name its key as the validator does.
    let key = match e.span() {
        Some(s) if msg.starts_with("unknown variant") || msg.starts_with("invalid type") => {
            Locator::new(file.to_string(), text)
                .key_at(s.start)
                .unwrap_or_default()
        }
        _ => String::new(),
    };
    ScenarioError::Invalid {
        at: Location {
            file: file.to_string(),
            line,
            col,
            key,
        },
        msg,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one() {
        let t = "a = 1\nbb = 2\n";
        assert_eq!(line_col(t, 0), (1, 1));
        assert_eq!(line_col(t, 6), (2, 1));
        assert_eq!(line_col(t, 11), (2, 6));
    }

    // An unknown name in a typed field still names file, line:column, key and the valid names.
    #[test]
    fn unknown_variant_names_the_key_and_the_valid_names() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct R {
            routing: Inner,
        }
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Inner {
            model: crate::routing::RouterKind,
        }
        let t = "[routing]\nmodel = \"poisson\"\n";
        let e = match toml::from_str::<R>(t) {
            Ok(r) => panic!("parsed {r:?}"),
            Err(e) => from_toml("f.toml", t, e).to_string(),
        };
        assert!(
            e.starts_with("f.toml:2:9: `routing.model`: unknown variant `poisson`")
                && e.contains("noisy_topk"),
            "{e}"
        );
    }

    #[test]
    fn locator_finds_nested_keys_and_falls_back_to_parents() {
        let t = "name = \"x\"\n[models.moe]\nlayers = 4\ntop_k = 9\n";
        let l = Locator::new("f.toml".into(), t);
        let at = l.at("models.moe.top_k");
        assert_eq!((at.line, at.col), (4, 1));
        let at = l.at("models.moe.missing");
        assert_eq!(at.line, 2);
        assert_eq!(at.to_string(), "f.toml:2:9: `models.moe.missing`");
    }
}
