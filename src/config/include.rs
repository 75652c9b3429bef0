//! `include = ["conf.d/*.toml"]`: feeds and outputs kept in files of their own (one per planet
//! member, dropped in by a package or a provisioning tool), read after the main file in the
//! order of their names. An included file holds `[[feed]]` and `[[output]]` tables only; the
//! main file holds everything else, so one place decides the store, the schedule and the
//! server. Each included file is read as TOML on its own first, so a mistake in it is named
//! at its own line and the file is left out, never merged into its neighbour's tables.

use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::de::{DeTable, DeValue};

use super::error::{Locator, Problem};

/// What an included file may hold at its top level.
const INCLUDED: &[&str] = &["feed", "output"];

/// Reads the files the main file's `include` names into `locator` (after the main text), and
/// returns what is wrong with them. `include`'s own type is checked with the other keys.
pub(super) fn gather(main: &Path, base: &Path, locator: &mut Locator) -> Vec<Problem> {
    let mut problems = Vec::new();
    let patterns = {
        let (root, _) = DeTable::parse_recoverable(locator.source());
        patterns(root.get_ref())
    };
    let mut seen: Vec<PathBuf> = vec![main.to_path_buf()];
    for (pattern, span) in patterns {
        let full = base.join(&pattern);
        let Some(full_text) = full.to_str() else {
            problems.push(locator.problem(span.clone(), "include", "not a usable path"));
            continue;
        };
        let mut files: Vec<PathBuf> = match glob::glob(full_text) {
            Ok(paths) => paths.filter_map(Result::ok).filter(|p| p.is_file()).collect(),
            Err(e) => {
                problems.push(locator.problem(span.clone(), "include", format!("`{pattern}`: {e}")));
                continue;
            }
        };
        files.sort();
        // An empty directory is how conf.d starts; a file named outright must be there.
        let is_glob = pattern.contains(['*', '?', '[']);
        if files.is_empty() && !is_glob {
            problems.push(locator.problem(
                span.clone(),
                "include",
                format!("{} does not exist", full.display()),
            ));
        }
        for file in files {
            if seen.contains(&file) {
                continue;
            }
            seen.push(file.clone());
            match std::fs::read_to_string(&file) {
                Ok(text) => {
                    let own = alone(&file, &text);
                    if own.is_empty() {
                        locator.push(&file, &text);
                    } else {
                        problems.extend(own);
                    }
                }
                Err(e) => problems.push(locator.problem(
                    span.clone(),
                    "include",
                    format!("cannot read {}: {e}", file.display()),
                )),
            }
        }
    }
    problems
}

/// The patterns of `include` (a string or an array of strings) with their places; values of
/// another type are left to the key checks.
fn patterns(top: &DeTable<'_>) -> Vec<(String, Range<usize>)> {
    let Some(value) = top.get("include") else {
        return Vec::new();
    };
    match value.get_ref() {
        DeValue::String(s) => vec![(s.to_string(), value.span())],
        DeValue::Array(items) => items
            .iter()
            .filter_map(|item| match item.get_ref() {
                DeValue::String(s) => Some((s.to_string(), item.span())),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// What is wrong with an included file read on its own: TOML syntax, and anything at its top
/// level but `[[feed]]` and `[[output]]` tables.
fn alone(file: &Path, text: &str) -> Vec<Problem> {
    let locator = Locator::new(file, text);
    let (root, mut problems) = super::raw::parse(text, &locator);
    for (key, value) in root.get_ref().iter() {
        let name: &str = key.get_ref();
        let tables = matches!(value.get_ref(), DeValue::Array(items)
            if items.iter().all(|i| matches!(i.get_ref(), DeValue::Table(_))));
        if !INCLUDED.contains(&name) || !tables {
            problems.push(locator.problem(
                key.span(),
                name.to_string(),
                "an included file holds [[feed]] and [[output]] tables only; the rest belongs in \
                 the main config",
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn included_files_join_in_name_order_and_each_is_judged_alone() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let write = |name: &str, text: &str| {
            use std::io::Write as _;
            let path = d.join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::File::create(path)
                .unwrap()
                .write_all(text.as_bytes())
                .unwrap();
        };
        write("conf.d/b.toml", "[[feed]]\nurl = \"https://b.example/\"\n");
        write("conf.d/a.toml", "[[feed]]\nurl = \"https://a.example/\"\n");
        write("conf.d/c.toml", "url = \"https://stray.example/\"\n");
        write("conf.d/d.toml", "[[feed]\n");
        write("conf.d/notes.txt", "not toml");
        let main_text = "include = [\"conf.d/*.toml\", \"missing.toml\"]\n";
        let main = d.join("tributary.toml");
        let mut locator = Locator::new(&main, main_text);
        let problems = gather(&main, d, &mut locator);
        let source = locator.source();
        let a = source.find("a.example").unwrap();
        let b = source.find("b.example").unwrap();
        assert!(a < b, "in name order: {source}");
        assert!(
            !source.contains("stray") && !source.contains("not toml"),
            "{source}"
        );
        assert_eq!(locator.file_of(b), d.join("conf.d/b.toml"));
        assert_eq!(locator.place(b).1, 2, "line 2 of its own file");
        assert_eq!(locator.file_of(0), main);
        let said: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(said.len(), 3, "{said:?}");
        assert!(
            said[0].contains("c.toml:1:1: url: an included file holds"),
            "{said:?}"
        );
        assert!(
            said[1].contains("d.toml:1:") && said[1].contains("TOML syntax"),
            "{said:?}"
        );
        assert!(
            said[2].contains("tributary.toml:1:29: include:")
                && said[2].contains("missing.toml does not exist")
        );
    }
}
