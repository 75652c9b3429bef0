//! `tributary check`: the config validated, every problem listed at once, warnings for what
//! works but is probably not meant, templates compiled, and the paths the daemon will write
//! checked — without touching the network or the database. `-v` also prints what the config
//! resolves to (the database, the outputs, the served addresses).

use std::path::Path;

use super::{Status, Verbosity};
use crate::config::{Config, Problem};

pub(super) fn run(config_path: &Path, verbosity: Verbosity) -> Status {
    if !config_path.exists() {
        eprintln!("{}", super::missing_config(config_path));
        return Status::Fatal;
    }
    // Every problem and every warning in one run: the paths and templates of what could be
    // read are checked even when the config has other problems.
    let (config, mut problems) = match Config::load(config_path) {
        Ok(config) => (config, Vec::new()),
        Err(e) => match e.partial {
            Some(partial) => (*partial, e.problems),
            None => {
                for problem in &e.problems {
                    outln!("{problem}");
                }
                let file = std::path::absolute(config_path).unwrap_or_else(|_| config_path.to_path_buf());
                outln!(
                    "{} in {}",
                    crate::model::counted(e.problems.len(), "problem", "problems"),
                    file.display()
                );
                return Status::Fatal;
            }
        },
    };
    problems.extend(writable_paths(&config));
    problems.extend(store_url(&config));
    problems.extend(templates(&config));
    let mut warnings = config.warnings.clone();
    warnings.extend(readable_secrets(&config));
    for problem in &problems {
        outln!("{problem}");
    }
    for warning in &warnings {
        outln!("warning: {warning}");
    }
    if verbosity == Verbosity::Verbose {
        print_resolved(&config);
    }
    if problems.is_empty() {
        outln!(
            "{}: {}, {}{}: ok{}",
            config.source.display(),
            crate::model::counted(config.feeds.len(), "feed", "feeds"),
            crate::model::counted(config.outputs.len(), "output", "outputs"),
            config
                .serve
                .as_ref()
                .map_or(String::new(), |s| format!(", serving on {}", s.listen)),
            if warnings.is_empty() {
                String::new()
            } else {
                format!(
                    " ({})",
                    crate::model::counted(warnings.len(), "warning", "warnings")
                )
            }
        );
        Status::Ok
    } else {
        outln!(
            "{} in {}",
            crate::model::counted(problems.len(), "problem", "problems"),
            config.source.display()
        );
        Status::Fatal
    }
}

/// What the config resolves to, for an operator checking where things will go.
fn print_resolved(config: &Config) {
    match config.backend() {
        crate::model::Backend::File(path) => outln!("database: {}", path.display()),
        backend @ crate::model::Backend::Server { .. } => outln!(
            "database: PostgreSQL {}, as node {}",
            crate::store::describe(&backend),
            config.node.name
        ),
    }
    for (n, o) in config.output_numbers.iter().zip(&config.outputs) {
        outln!(
            "output[{n}]: {} ({:?}, {} feeds{})",
            o.path.display(),
            o.format,
            o.feeds.len(),
            o.self_url
                .as_deref()
                .map_or(String::new(), |u| format!(", at {u}"))
        );
    }
    if let Some(serve) = &config.serve {
        match serve.admin_listen {
            Some(admin) => outln!(
                "serving outputs on {}, /healthz and /metrics on {admin}",
                serve.listen
            ),
            None => outln!("serving outputs, /healthz and /metrics on {}", serve.listen),
        }
    }
    let disabled = config.feeds.iter().filter(|f| f.disabled).count();
    outln!("feeds: {} ({disabled} disabled)", config.feeds.len());
}

/// The database file and the output directories must be writable by whoever runs Tributary.
fn writable_paths(config: &Config) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut problem = |key: String, message: String| problems.push(file_problem(config, key, message));
    let db = &config.store.path;
    match std::fs::metadata(db) {
        // A PostgreSQL store has no file here.
        _ if config.store.url.is_some() => {}
        Ok(m) if m.is_dir() => problem(
            "store.path".into(),
            format!("{} is a directory, not a database file", db.display()),
        ),
        Ok(_) => {
            // Opening for writing (without writing) covers ownership, ACLs and read-only mounts.
            if let Err(e) = std::fs::OpenOptions::new().write(true).open(db) {
                problem(
                    "store.path".into(),
                    format!("{} cannot be written: {e}", db.display()),
                );
            }
        }
        Err(_) => {
            if let Err(why) = crate::output::writable_dir(db.parent().unwrap_or(Path::new("."))) {
                problem(
                    "store.path".into(),
                    format!("cannot create {}: {why}", db.display()),
                );
            }
        }
    }
    for (n, output) in config
        .output_numbers
        .iter()
        .zip(&config.outputs)
        .filter(|(_, o)| o.file)
    {
        if let Err(why) = crate::output::writable_dir(output.path.parent().unwrap_or(Path::new("."))) {
            problem(
                format!("output[{n}].path"),
                format!("cannot write {}: {why}", output.path.display()),
            );
        }
    }
    problems
}

/// Page templates compile, with their errors located in the template's own file.
fn templates(config: &Config) -> Vec<Problem> {
    config
        .output_numbers
        .iter()
        .zip(&config.outputs)
        .filter_map(|(n, o)| {
            let template = o.template.as_ref()?;
            crate::output::check_template(template)
                .err()
                .map(|e| file_problem(config, format!("output[{n}].template"), e))
        })
        .collect()
}

/// A config that holds secrets itself (a password in a URL, a header value written out)
/// should not be readable by every user of the machine.
fn readable_secrets(config: &Config) -> Vec<Problem> {
    use std::os::unix::fs::PermissionsExt;
    if !config.holds_secrets {
        return Vec::new();
    }
    let Ok(meta) = std::fs::metadata(&config.source) else {
        return Vec::new();
    };
    if meta.permissions().mode() & 0o004 == 0 {
        return Vec::new();
    }
    vec![file_problem(
        config,
        String::new(),
        format!(
            "holds secrets (a password in a feed URL or a header value) and every user can read it \
             (mode {:o}): chmod o-r it, or take the secrets from ${{NAME}}, ${{file:PATH}} or \
             ${{credential:NAME}}",
            meta.permissions().mode() & 0o777
        ),
    )]
}

/// A `store.url` the store could not connect with, at its place (the store parses it: the
/// config only knows it is a connection string).
fn store_url(config: &Config) -> Option<Problem> {
    let url = config.store.url.as_deref()?;
    crate::store::check_url(url)
        .err()
        .map(|message| file_problem(config, "store.url".into(), message))
}

/// A problem at `key`'s place in the file (where the config recorded one).
fn file_problem(config: &Config, key: String, message: String) -> Problem {
    let (file, line, column) = config
        .places
        .get(&key)
        .cloned()
        .unwrap_or((config.source.clone(), 0, 0));
    Problem {
        file,
        line,
        column,
        key,
        message,
    }
}
