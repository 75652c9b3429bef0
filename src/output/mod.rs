//! Owns the merged outputs: choosing each output's entries from the store, rendering them in
//! the output's format, and writing the file atomically and only when its bytes changed.
//!
//! Renderers are pure functions of (spec, entries, feeds) → bytes, with no clock: the same
//! store renders the same bytes, so files, mtimes and ETags stay put when nothing changed.
//! This module never fetches and never writes to the store.

mod atom;

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::model::{FeedSpec, FeedState, OutputFormat, OutputSpec, StoredEntry};
use crate::store::{StoreError, StoreHandle};

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("output {path}: {source}")]
    Store {
        path: PathBuf,
        #[source]
        source: StoreError,
    },
    #[error("cannot write output {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What rendering one output did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputReport {
    pub path: PathBuf,
    pub entries: usize,
    /// False when the file already held exactly these bytes.
    pub written: bool,
}

/// A feed as an output names it: the operator's title wins over the feed's own.
#[derive(Debug, Clone)]
pub struct FeedView {
    pub url: String,
    /// The feed's own id when it is an absolute IRI (Atom feeds have one), else its URL.
    pub id: String,
    pub title: String,
    pub site_url: Option<String>,
}

impl FeedView {
    fn new(spec: Option<&FeedSpec>, state: &FeedState) -> FeedView {
        let title = spec
            .and_then(|s| s.title.clone())
            .or_else(|| state.title.clone())
            .unwrap_or_else(|| state.url.clone());
        let id = state
            .feed_id
            .clone()
            .filter(|id| url::Url::parse(id).is_ok())
            .unwrap_or_else(|| state.url.clone());
        FeedView {
            id,
            url: state.url.clone(),
            title,
            site_url: state.site_url.clone(),
        }
    }
}

/// Renders every configured output from the store.
pub async fn render_all(config: &Config, store: &StoreHandle) -> Vec<Result<OutputReport, OutputError>> {
    let mut reports = Vec::with_capacity(config.outputs.len());
    for spec in &config.outputs {
        reports.push(render_one(config, spec, store).await);
    }
    reports
}

async fn render_one(
    config: &Config,
    spec: &OutputSpec,
    store: &StoreHandle,
) -> Result<OutputReport, OutputError> {
    let urls: Vec<String> = config.feeds.iter().map(|f| f.url.to_string()).collect();
    let limit = spec.limit;
    let (entries, states) = store
        .read(move |s| s.newest_entries(&urls, limit))
        .await
        .map_err(|source| OutputError::Store {
            path: spec.path.clone(),
            source,
        })?;
    let specs: HashMap<String, &FeedSpec> = config.feeds.iter().map(|f| (f.url.to_string(), f)).collect();
    let feeds: HashMap<i64, FeedView> = states
        .iter()
        .map(|(id, state)| (*id, FeedView::new(specs.get(&state.url).copied(), state)))
        .collect();
    let bytes = render(spec, &entries, &feeds);
    let path = spec.path.clone();
    let written = tokio::task::spawn_blocking(move || write_if_changed(&path, &bytes))
        .await
        .map_err(|e| OutputError::Write {
            path: spec.path.clone(),
            source: std::io::Error::other(e),
        })?
        .map_err(|source| OutputError::Write {
            path: spec.path.clone(),
            source,
        })?;
    Ok(OutputReport {
        path: spec.path.clone(),
        entries: entries.len(),
        written,
    })
}

/// The bytes of one output.
pub fn render(spec: &OutputSpec, entries: &[StoredEntry], feeds: &HashMap<i64, FeedView>) -> Vec<u8> {
    match spec.format {
        OutputFormat::Atom => atom::render(spec, entries, feeds),
    }
}

/// Writes `bytes` to `path` unless it already holds exactly them; returns whether it wrote.
///
/// The new content goes to a temporary file in the same directory, is flushed to disk, and is
/// renamed over the old file, so a reader (or a crash) sees the old file or the new one, never
/// a mix.
pub fn write_if_changed(path: &Path, bytes: &[u8]) -> std::io::Result<bool> {
    if std::fs::read(path).is_ok_and(|old| old == bytes) {
        return Ok(false);
    }
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".tributary-")
        .suffix(".tmp")
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    // Temporary files are created private (0600); outputs are meant to be served and read.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))?;
    }
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(true)
}

/// Removes characters XML 1.0 forbids (C0 controls other than tab/newline/CR, U+FFFE, U+FFFF),
/// which feeds carry surprisingly often and which make a whole output unreadable.
pub(crate) fn xml_safe(s: &str) -> std::borrow::Cow<'_, str> {
    let bad = |c: char| matches!(c, '\u{0}'..='\u{8}' | '\u{b}' | '\u{c}' | '\u{e}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}');
    if s.contains(bad) {
        std::borrow::Cow::Owned(s.chars().filter(|c| !bad(*c)).collect())
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_only_when_changed_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/out.atom");
        assert!(write_if_changed(&path, b"one").unwrap());
        assert!(!write_if_changed(&path, b"one").unwrap());
        assert!(write_if_changed(&path, b"two").unwrap());
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn xml_safe_drops_forbidden_characters() {
        assert_eq!(xml_safe("a\u{1}b\u{b}c\td"), "abc\td");
    }
}
