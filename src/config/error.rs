//! Config errors that name the file, line, column and key of every problem.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// One thing wrong with a config file, with its place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: PathBuf,
    /// 1-based; 0 when the problem has no single place (e.g. the file could not be read).
    pub line: usize,
    pub column: usize,
    /// Dotted key path such as `poll.timeout` or `feed[3].url`; empty for file-level problems.
    pub key: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        if !self.key.is_empty() {
            write!(f, ": {}", self.key)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Every problem found in a config file (never just the first one that validation can see).
#[derive(Debug, thiserror::Error)]
pub struct ConfigError {
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

/// Turns byte offsets of one source text into lines, columns and key paths.
pub(super) struct Locator<'a> {
    file: &'a Path,
    source: &'a str,
}

impl<'a> Locator<'a> {
    pub fn new(file: &'a Path, source: &'a str) -> Self {
        Self { file, source }
    }

    /// A problem at `span` for a key the caller knows.
    pub fn problem(&self, span: Range<usize>, key: impl Into<String>, message: impl Into<String>) -> Problem {
        let (line, column) = self.line_col(span.start);
        Problem {
            file: self.file.to_path_buf(),
            line,
            column,
            key: key.into(),
            message: message.into(),
        }
    }

    /// A problem reported by the TOML deserializer, which knows the place but not the key path:
    /// the key is recovered from the text around the span.
    pub fn toml_problem(&self, err: &toml::de::Error) -> Problem {
        let span = err.span().unwrap_or(0..0);
        let message = err.message().trim().to_string();
        let mut key = self.key_at(span.start);
        // For an unknown field the span covers the bad key itself, so the path ends in it.
        if let Some(field) = quoted_after(&message, "unknown field") {
            if !key.ends_with(field) {
                key = join_key(&key, field);
            }
        } else if let Some(field) = quoted_after(&message, "missing field") {
            key = join_key(&key, field);
        }
        self.problem(span, key, message)
    }

    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.source.len());
        let before = &self.source[..floor_char_boundary(self.source, offset)];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        (line, column)
    }

    /// The dotted key path at `offset`: the nearest table header above it (with the index of
    /// array-of-tables entries, 1-based as people count) plus the key on the offset's line.
    fn key_at(&self, offset: usize) -> String {
        let offset = floor_char_boundary(self.source, offset.min(self.source.len()));
        let mut table = String::new();
        let mut counts: Vec<(String, usize)> = Vec::new();
        let mut line_key = None;
        let mut pos = 0;
        for line in self.source.split_inclusive('\n') {
            let start = pos;
            pos += line.len();
            let trimmed = line.trim();
            if start > offset {
                break;
            }
            let is_current = offset < pos || pos == self.source.len();
            if let Some(name) = trimmed.strip_prefix("[[").and_then(|s| s.split("]]").next()) {
                let name = name.trim().to_string();
                let n = match counts.iter_mut().find(|(t, _)| *t == name) {
                    Some((_, n)) => {
                        *n += 1;
                        *n
                    }
                    None => {
                        counts.push((name.clone(), 1));
                        1
                    }
                };
                table = format!("{name}[{n}]");
            } else if let Some(name) = trimmed.strip_prefix('[').and_then(|s| s.split(']').next()) {
                table = name.trim().to_string();
            } else if is_current && let Some((k, _)) = trimmed.split_once('=') {
                let k = k.trim().trim_matches('"');
                if !k.is_empty() && !k.starts_with('#') {
                    line_key = Some(k.to_string());
                }
            }
            if is_current {
                break;
            }
        }
        match line_key {
            Some(k) => join_key(&table, &k),
            None => table,
        }
    }
}

fn join_key(table: &str, key: &str) -> String {
    if table.is_empty() {
        key.to_string()
    } else {
        format!("{table}.{key}")
    }
}

/// The first backquoted word after `marker` in a serde message such as
/// "unknown field `concurency`, expected one of ...".
fn quoted_after<'m>(message: &'m str, marker: &str) -> Option<&'m str> {
    let rest = &message[message.find(marker)? + marker.len()..];
    let start = rest.find('`')? + 1;
    let len = rest[start..].find('`')?;
    Some(&rest[start..start + len])
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_at_names_array_tables_with_their_index() {
        let src = "[poll]\ntimeout = 3\n\n[[feed]]\nurl = \"a\"\n\n[[feed]]\nurl = 5\n";
        let loc = Locator::new(Path::new("c.toml"), src);
        let offset = src.rfind('5').unwrap();
        assert_eq!(loc.key_at(offset), "feed[2].url");
        assert_eq!(loc.line_col(offset), (8, 7));
        assert_eq!(loc.key_at(src.find('3').unwrap()), "poll.timeout");
    }
}
