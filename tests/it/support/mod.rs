//! Shared test helpers: skips that CI turns into failures, title comparison, a loopback feed
//! server, and a temporary workspace with a config file.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// `Some(path)` when `path` exists. Otherwise prints that the test was skipped and returns
/// `None`, or panics when `TRIBUTARY_REQUIRE_ALL=1` (CI), so nothing is skipped silently there.
pub fn require_or_skip(what: &str, path: PathBuf) -> Option<PathBuf> {
    if path.exists() {
        return Some(path);
    }
    assert!(
        std::env::var("TRIBUTARY_REQUIRE_ALL").as_deref() != Ok("1"),
        "TRIBUTARY_REQUIRE_ALL=1 but the {what} is missing at {}",
        path.display()
    );
    eprintln!(
        "SKIPPED: the {what} is not at {}; this check did not run",
        path.display()
    );
    None
}

/// Like [`require_or_skip`] for a program on PATH.
pub fn require_tool(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    });
    match found {
        Some(p) => Some(p),
        None => require_or_skip(&format!("`{name}` tool"), Path::new("/nonexistent").join(name)),
    }
}

/// A title reduced to comparable text: markup dropped, entities decoded (twice, since feeds
/// double-escape), whitespace collapsed.
pub fn title_text(s: &str) -> String {
    let mut text = s.to_string();
    for _ in 0..2 {
        text = html_escape::decode_html_entities(&text).into_owned();
        text = strip_tags(&text);
    }
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn strip_tags(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_tag = false;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '<' if chars
                .peek()
                .is_some_and(|n| n.is_ascii_alphabetic() || *n == '/' || *n == '!') =>
            {
                in_tag = true
            }
            '>' if in_tag => in_tag = false,
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}
