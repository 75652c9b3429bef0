//! `tributary man`: the man page, from the command line's own definitions (so it cannot drift
//! from `--help`), with the sections a man page has: COMMANDS (each with its options, in this
//! one page, since there are no per-command pages to point to), CONFIGURATION (every key with
//! its default and what it does, from the reference config, `config/tributary.toml`, so it
//! cannot drift from it either), ENVIRONMENT, FILES, EXIT STATUS and SIGNALS.

use std::io::Write;

use clap::CommandFactory;
use clap_mangen::roff::{Roff, bold, italic, roman};

use super::Cli;

pub(super) fn render(out: &mut dyn Write) -> std::io::Result<()> {
    let cmd = Cli::command();
    let man = clap_mangen::Man::new(cmd.clone());
    man.render_title(out)?;
    man.render_name_section(out)?;
    man.render_synopsis_section(out)?;
    man.render_description_section(out)?;
    man.render_options_section(out)?;
    let mut roff = Roff::new();
    roff.control("SH", ["COMMANDS"]);
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        roff.control("TP", []);
        let mut usage = vec![bold(format!("tributary {}", sub.get_name()))];
        for arg in sub.get_arguments().filter(|a| !a.is_global_set()) {
            let name = match (arg.get_long(), arg.get_value_names()) {
                (Some(long), Some(values)) if arg.get_action().takes_values() => {
                    format!(" [--{long} {}]", values.join(" "))
                }
                (Some(long), _) => format!(" [--{long}]"),
                (None, Some(values)) => format!(" {}", values.join(" ")),
                (None, None) => format!(" {}", arg.get_id()),
            };
            usage.push(roman(name));
        }
        roff.text(usage);
        if let Some(about) = sub.get_long_about().or(sub.get_about()) {
            for paragraph in about.to_string().split("\n\n") {
                roff.text([roman(paragraph.replace('\n', " "))]);
                roff.control("br", []);
            }
        }
    }
    configuration(&mut roff);
    section(
        &mut roff,
        "ENVIRONMENT",
        &[
            (
                "TRIBUTARY_CONFIG",
                "The config file, when --config is not given (default: ./tributary.toml).",
            ),
            (
                "RUST_LOG",
                "The log level or filter, when --log-level is not given.",
            ),
            ("NO_COLOR", "When set, no colour in tables."),
            (
                "NOTIFY_SOCKET, WATCHDOG_USEC",
                "Set by systemd for Type=notify services: readiness, status and watchdog pings go there.",
            ),
            (
                "JOURNAL_STREAM",
                "Set by systemd when stderr is the journal: log lines then carry syslog priorities.",
            ),
            (
                "CREDENTIALS_DIRECTORY",
                "Set by systemd's LoadCredential=: ${credential:NAME} in the config reads NAME there.",
            ),
            (
                "HTTP_PROXY, HTTPS_PROXY, NO_PROXY",
                "Proxies for fetching feeds (not used while poll.deny_private_networks is on).",
            ),
            (
                "any ${NAME}",
                "The config's ${NAME} references read environment variables (secrets kept out of the file).",
            ),
        ],
    );
    section(
        &mut roff,
        "FILES",
        &[
            (
                "/etc/tributary/tributary.toml",
                "The packaged config (every key, with its default, commented).",
            ),
            (
                "/var/lib/tributary/",
                "The service's state: the database tributary.db and the outputs in public/.",
            ),
            (
                "STORE.lock",
                "Beside the database: held by the running daemon (one per database).",
            ),
            ("/lib/systemd/system/tributary.service", "The systemd unit."),
        ],
    );
    section(
        &mut roff,
        "EXIT STATUS",
        &[
            (
                "0",
                "Success: every feed fetched and parsed, or skipped while healthy.",
            ),
            (
                "1",
                "Some feeds are failing (poll, feeds), or nothing matched (explain); the rest was done.",
            ),
            (
                "2",
                "Fatal: an invalid config, an unusable database or output, a usage error.",
            ),
        ],
    );
    section(
        &mut roff,
        "SIGNALS",
        &[
            (
                "SIGTERM, SIGINT",
                "run: stop starting fetches, let running ones finish (poll.shutdown_grace), exit 0; a second one exits at once.",
            ),
            (
                "SIGHUP",
                "run: reload the config; an invalid new one is logged and the old one keeps running.",
            ),
        ],
    );
    roff.control("SH", ["SEE ALSO"]);
    roff.text([
        roman("The README and the reference config, "),
        italic("config/tributary.toml"),
        roman(", in the source."),
    ]);
    roff.to_writer(out)?;
    man.render_version_section(out)
}

/// The reference config, which documents every key (a test holds it to the schema).
const REFERENCE: &str = include_str!("../../config/tributary.toml");

/// CONFIGURATION: each table's keys as the reference config writes them (the default, or an
/// example where there is none), with the comment above each.
fn configuration(roff: &mut Roff) {
    roff.control("SH", ["CONFIGURATION"]);
    roff.text([roman(
        "A TOML file (--config, TRIBUTARY_CONFIG, default ./tributary.toml). Every key, with its \
         default (or, for keys without one, an example):",
    )]);
    for (table, keys) in reference_keys() {
        // An array of tables is written as the config writes it.
        let heading = match table.as_str() {
            "" => "Top level (before any table)".to_string(),
            "feed" | "output" => format!("[[{table}]]"),
            _ => format!("[{table}]"),
        };
        roff.control("SS", [heading.as_str()]);
        for (line, about) in keys {
            roff.control("TP", []);
            roff.text([bold(line)]);
            if !about.is_empty() {
                roff.text([roman(about)]);
            }
        }
    }
}

/// `(table, [(key = value, what the comments above it say)])` in the reference config's order;
/// a key's first appearance in its table (later ones are examples inside comments).
pub(crate) fn reference_keys() -> Vec<(String, Vec<(String, String)>)> {
    let schema = crate::config::schema();
    let known = |table: &str, key: &str| schema.iter().any(|(t, keys)| *t == table && keys.contains(&key));
    let mut tables: Vec<(String, Vec<(String, String)>)> = Vec::new();
    let mut about: Vec<String> = Vec::new();
    let mut table = String::new();
    for line in REFERENCE.lines() {
        let bare = line.trim().trim_start_matches('#').trim();
        if line.trim().is_empty() {
            about.clear();
        } else if let Some(name) = bare
            .strip_prefix("[[")
            .and_then(|r| r.strip_suffix("]]"))
            .or_else(|| bare.strip_prefix('[').and_then(|r| r.strip_suffix(']')))
        {
            table = name.to_string();
            about.clear();
        } else if let Some((key, _)) = bare.split_once(" = ")
            && known(&table, key)
        {
            if tables.last().is_none_or(|(t, _)| *t != table) {
                tables.push((table.clone(), Vec::new()));
            }
            if let Some((_, keys)) = tables.last_mut()
                && !keys.iter().any(|(l, _)| l.split(" = ").next() == Some(key))
            {
                keys.push((bare.to_string(), about.join(" ")));
            }
            about.clear();
        } else if line.trim_start().starts_with('#') {
            about.push(bare.trim_start_matches("Optional:").trim().to_string());
        }
    }
    tables
}

fn section(roff: &mut Roff, title: &str, items: &[(&str, &str)]) {
    roff.control("SH", [title]);
    for (term, text) in items {
        roff.control("TP", []);
        roff.text([bold(*term)]);
        roff.text([roman(*text)]);
    }
}
