//! `tributary check`: the config validated, every problem listed, plus the paths the daemon
//! will write checked — without touching the network or the database.

use std::path::Path;

use super::Status;
use crate::config::{Config, Problem};

pub fn run(config_path: &Path) -> Status {
    let (problems, summary) = match Config::load(config_path) {
        Ok(config) => {
            let problems = writable_paths(&config);
            let summary = format!(
                "{}: {} feeds, {} outputs{}",
                config_path.display(),
                config.feeds.len(),
                config.outputs.len(),
                config
                    .serve
                    .as_ref()
                    .map_or(String::new(), |s| format!(", serving on {}", s.listen))
            );
            (problems, summary)
        }
        Err(e) => (e.problems, String::new()),
    };
    for problem in &problems {
        outln!("{problem}");
    }
    if problems.is_empty() {
        outln!("{summary}: ok");
        Status::Ok
    } else {
        outln!(
            "{} problem{} in {}",
            problems.len(),
            if problems.len() == 1 { "" } else { "s" },
            config_path.display()
        );
        Status::Fatal
    }
}

/// The database file and the output directories must be writable by whoever runs Tributary.
fn writable_paths(config: &Config) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut problem = |key: String, message: String| {
        problems.push(Problem {
            file: config.source.clone(),
            line: 0,
            column: 0,
            key,
            message,
        })
    };
    let db = &config.store.path;
    match std::fs::metadata(db) {
        Ok(m) if m.is_dir() => problem(
            "store.path".into(),
            format!("{} is a directory, not a database file", db.display()),
        ),
        Ok(m) if m.permissions().readonly() => {
            problem("store.path".into(), format!("{} is read-only", db.display()))
        }
        Ok(_) => {}
        Err(_) => {
            if let Err(why) = writable_dir(db.parent().unwrap_or(Path::new("."))) {
                problem(
                    "store.path".into(),
                    format!("cannot create {}: {why}", db.display()),
                );
            }
        }
    }
    for (i, output) in config.outputs.iter().enumerate() {
        if let Err(why) = writable_dir(output.path.parent().unwrap_or(Path::new("."))) {
            problem(
                format!("output[{}].path", i + 1),
                format!("cannot write {}: {why}", output.path.display()),
            );
        }
    }
    problems
}

/// Whether files can be created in `dir`, or in the nearest existing ancestor that would hold it.
fn writable_dir(dir: &Path) -> Result<(), String> {
    let mut existing = dir;
    while !existing.exists() {
        match existing.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => existing = parent,
            _ => return Err("no existing parent directory".into()),
        }
    }
    if !existing.is_dir() {
        return Err(format!("{} is not a directory", existing.display()));
    }
    // Creating (and at once removing) a file is the only test of writability that also
    // covers ACLs, read-only mounts and the like.
    tempfile::Builder::new()
        .prefix(".tributary-check-")
        .tempfile_in(existing)
        .map(drop)
        .map_err(|e| format!("{} is not writable ({e})", existing.display()))
}
