//! The real-world corpus (`shared/corpus`, feeds written by others): every file that the
//! reference parser (Python feedparser) read cleanly must be read by Tributary with the same
//! entry count and first-entry title; every other file must fail cleanly or agree.
//!
//! The corpus is read in place from `TRIBUTARY_CORPUS` (default `../shared/corpus`). When it is
//! missing the test says so and passes, unless `TRIBUTARY_REQUIRE_ALL=1` (set by `.ci/run`).

use std::path::PathBuf;

use tributary::decode;
use tributary::parse::parse_document;

use crate::support::{require_or_skip, title_text};

struct Row {
    path: String,
    format: String,
    bozo: bool,
    entries: usize,
    first_title: String,
}

/// Manifest cells escape backslash, tab, CR and LF (see make_manifest.py).
fn unescape_cell(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('t') => out.push('\t'),
                Some('r') => out.push('\r'),
                Some('n') => out.push('\n'),
                Some(other) => out.push(other),
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn manifest(dir: &std::path::Path) -> Vec<Row> {
    let text = std::fs::read_to_string(dir.join("manifest.tsv")).expect("manifest.tsv");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("header").split('\t').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).expect(name);
    let (path, format, bozo, entries, first) = (
        col("path"),
        col("format"),
        col("bozo"),
        col("entries"),
        col("first_title"),
    );
    lines
        .map(|line| {
            let cells: Vec<&str> = line.split('\t').collect();
            Row {
                path: cells[path].to_string(),
                format: cells[format].to_string(),
                bozo: cells[bozo] == "1",
                entries: cells[entries].parse().unwrap_or(0),
                first_title: unescape_cell(cells[first]),
            }
        })
        .collect()
}

/// Ill-formed files the reference reads that Tributary reads differently, each with why. Empty:
/// every one agrees; an entry here must say what the disagreement is and why it is right.
const KNOWN_EXCEPTIONS: &[(&str, &str)] = &[];

/// Documents that are not feeds at all: the reference reads them as zero entries, Tributary
/// as an error; both mean "no entries from this".
fn not_a_feed_format(format: &str) -> bool {
    format.starts_with("xml:") || format == "empty" || format == "unknown"
}

#[test]
fn corpus_agrees_with_the_reference_parser() {
    let Some(dir) = require_or_skip(
        "corpus",
        std::env::var_os("TRIBUTARY_CORPUS")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus")),
    ) else {
        return;
    };
    let rows = manifest(&dir);
    assert!(rows.len() >= 100, "manifest looks truncated: {} rows", rows.len());
    let (mut clean, mut clean_agree, mut bozo_read, mut bozo_read_agree) = (0, 0, 0, 0);
    let mut misses = Vec::new();
    for row in &rows {
        let file = dir.join("feeds").join(&row.path);
        let bytes = std::fs::read(&file).expect("corpus file");
        let base = url::Url::from_file_path(&file).expect("file URL");
        let text = decode::decode(bytes, None).text;
        let ours = parse_document(&text, &base);
        let agrees = match &ours {
            Ok(feed) if feed.entries.len() == row.entries => {
                // Mojibake the reference leaves in place (UTF-8 read as Windows-1252) we repair
                // by design: the same title, repaired, is agreement.
                let reference = tributary::text::mojibake::repair(&row.first_title);
                row.entries == 0 || title_text(&feed.entries[0].entry.title) == title_text(&reference)
            }
            Ok(_) => false,
            Err(_) => row.entries == 0 && (not_a_feed_format(&row.format) || row.bozo),
        };
        if !row.bozo {
            clean += 1;
            clean_agree += usize::from(agrees);
        } else if row.entries > 0 {
            bozo_read += 1;
            bozo_read_agree += usize::from(agrees);
        }
        if !agrees {
            let got = match &ours {
                Ok(f) => format!(
                    "{} entries, first {:?}",
                    f.entries.len(),
                    f.entries.first().map(|e| e.entry.title.as_str()).unwrap_or("")
                ),
                Err(e) => format!("error: {e}"),
            };
            misses.push(format!(
                "{}{} [{}]: reference {} entries, first {:?}; got {got}",
                if row.bozo { "(bozo) " } else { "" },
                row.path,
                row.format,
                row.entries,
                row.first_title
            ));
        }
    }
    println!(
        "corpus: {clean_agree}/{clean} files the reference read cleanly agree; \
         {bozo_read_agree}/{bozo_read} ill-formed files the reference still read agree"
    );
    for miss in &misses {
        println!("  miss: {miss}");
    }
    let clean_misses: Vec<_> = misses.iter().filter(|m| !m.starts_with("(bozo)")).collect();
    assert!(
        clean_misses.is_empty(),
        "{} clean files disagree:\n{clean_misses:#?}",
        clean_misses.len()
    );
    // The ill-formed files the reference still reads: salvaged alike, or an explained exception.
    let bozo_misses: Vec<_> = misses
        .iter()
        .filter(|m| m.starts_with("(bozo)"))
        .filter(|m| !KNOWN_EXCEPTIONS.iter().any(|(path, _)| m.contains(path)))
        .filter(|m| !m.contains("reference 0 entries"))
        .collect();
    assert!(
        bozo_misses.is_empty(),
        "{} ill-formed files the reference reads disagree:\n{bozo_misses:#?}",
        bozo_misses.len()
    );
}
