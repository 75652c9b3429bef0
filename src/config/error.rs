//! Config errors that name the file, line, column and key of every problem.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// One thing wrong with a config file, with its place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub(crate) file: PathBuf,
    /// 1-based; 0 when the problem has no single place (e.g. the file could not be read).
    pub line: usize,
    pub(crate) column: usize,
    /// Dotted key path such as `poll.timeout` or `feed[3].url`; empty for file-level problems.
    pub(crate) key: String,
    pub(crate) message: String,
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
    /// What could be read of the config despite its problems (the feeds and outputs that are
    /// valid, every default, the warnings): `check` goes on to check its paths and templates,
    /// so one run reports everything. `None` when the file could not be read at all.
    pub(crate) partial: Option<Box<super::Config>>,
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

/// Turns byte offsets into files, lines and columns. The config is read as one text: the
/// main file, then each included file after it, so every span of the TOML parser names one
/// place in one file.
pub(super) struct Locator {
    source: String,
    /// Where each file's text starts in `source`, in order; the main file's at 0.
    files: Vec<(usize, PathBuf)>,
}

impl Locator {
    pub(super) fn new(file: &Path, source: &str) -> Self {
        Self {
            source: source.to_string(),
            files: vec![(0, file.to_path_buf())],
        }
    }

    /// Appends an included file's text, on a line of its own.
    pub(super) fn push(&mut self, file: &Path, text: &str) {
        if !self.source.is_empty() && !self.source.ends_with('\n') {
            self.source.push('\n');
        }
        self.files.push((self.source.len(), file.to_path_buf()));
        self.source.push_str(text);
    }

    /// Every file's text, joined.
    pub(super) fn source(&self) -> &str {
        &self.source
    }

    /// The file `offset` is in, and where that file starts.
    fn file_at(&self, offset: usize) -> (usize, &Path) {
        let at = self.files.partition_point(|(start, _)| *start <= offset).max(1) - 1;
        let (start, file) = &self.files[at];
        (*start, file)
    }

    /// The file `offset` is in.
    pub(super) fn file_of(&self, offset: usize) -> &Path {
        self.file_at(offset).1
    }

    /// A problem at `span` for a key the caller knows.
    pub(super) fn problem(
        &self,
        span: Range<usize>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> Problem {
        let (file, line, column) = self.place(span.start);
        Problem {
            file,
            line,
            column,
            key: key.into(),
            message: message.into(),
        }
    }

    /// File, line and column (1-based) of `offset`.
    pub(crate) fn place(&self, offset: usize) -> (PathBuf, usize, usize) {
        let offset = offset.min(self.source.len());
        let (start, file) = self.file_at(offset);
        let before = &self.source[start..floor_char_boundary(&self.source, offset).max(start)];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        (file.to_path_buf(), line, column)
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}
