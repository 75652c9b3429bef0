//! tracing set-up: human-readable lines by default, JSON for log shippers, and, when stderr is
//! the systemd journal, lines the journal understands: no timestamps of our own (it stamps
//! every record), each line led by its syslog priority (`<3>` error … `<7>` debug, as
//! sd-daemon(3) describes, so `journalctl -p warning` shows exactly the warnings), and one
//! record per event even when the message spans lines (the journal cuts records at newlines).

use std::fmt;
use std::io::IsTerminal;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum LogFormat {
    Human,
    Json,
}

const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];

/// The filter a `--log-level` value (or `RUST_LOG`) stands for: a plain level applies to
/// Tributary itself, with other crates (HTTP, TLS, the database) kept at warnings, since
/// their debug output buries ours; anything with `=` or `,` is a tracing filter as written.
/// A value that is neither is an error (`loud` is not a level).
pub(crate) fn filter_for(value: &str) -> Result<String, String> {
    let value = value.trim();
    if value.contains('=') || value.contains(',') {
        return EnvFilter::try_new(value)
            .map(|_| value.to_string())
            .map_err(|e| format!("`{value}` is not a log filter: {e}"));
    }
    let level = value.to_ascii_lowercase();
    // The store's drivers: their connection warnings are the store's to report.
    let quiet: String = crate::store::QUIET_TARGETS
        .iter()
        .map(|target| format!(",{target}=error"))
        .collect();
    match level.as_str() {
        "off" | "error" => Ok(level),
        "warn" => Ok(format!("warn{quiet}")),
        "info" | "debug" | "trace" => Ok(format!("warn,tributary={level}{quiet}")),
        _ => Err(format!(
            "`{value}` is not a log level: use one of {} (or a filter such as \"tributary=debug,reqwest=info\")",
            LEVELS.join(", ")
        )),
    }
}

/// `flag` (--log-level) wins over `RUST_LOG`, which wins over the command's `default`.
pub(super) fn init(flag: Option<&str>, default: &str, format: LogFormat) {
    let chosen = flag
        .map(str::to_string)
        .or_else(|| std::env::var("RUST_LOG").ok().filter(|v| !v.trim().is_empty()))
        .unwrap_or_else(|| default.to_string());
    let filter = filter_for(&chosen)
        .and_then(|f| EnvFilter::try_new(&f).map_err(|e| e.to_string()))
        .unwrap_or_else(|e| {
            // Only RUST_LOG gets here (the flag is checked before): say so, and go on.
            eprintln!("warning: ignoring RUST_LOG: {e}");
            EnvFilter::new("warn")
        });
    let journal = stderr_is_journal();
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour && !journal)
        .with_target(false);
    // A second init (tests calling main twice) is harmless, so its error is ignored.
    let _ = match (format, journal) {
        (LogFormat::Json, _) => builder.json().try_init(),
        (LogFormat::Human, true) => builder
            .event_format(Journal {
                inner: tracing_subscriber::fmt::format()
                    .without_time()
                    .with_target(false),
            })
            .try_init(),
        (LogFormat::Human, false) => builder.try_init(),
    };
}

/// Whether stderr is the journal: systemd sets `JOURNAL_STREAM` to the device and inode of
/// the stream it connected, and it only counts if stderr is still that stream (a child whose
/// stderr was redirected inherits the variable).
fn stderr_is_journal() -> bool {
    let Some(value) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = value.to_str().and_then(|v| v.split_once(':')) else {
        return false;
    };
    let Ok(fd) = std::io::stderr().as_fd().try_clone_to_owned() else {
        return false;
    };
    let Ok(meta) = std::fs::File::from(fd).metadata() else {
        return false;
    };
    dev.parse::<u64>() == Ok(meta.dev()) && ino.parse::<u64>() == Ok(meta.ino())
}

/// The syslog priority of a level, as the journal reads it from a line's `<N>` prefix.
fn priority(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        _ => 7,
    }
}

/// Formats with `inner`, then leads the line with its priority and folds it into one line.
struct Journal<F> {
    inner: F,
}

impl<S, N, F> FormatEvent<S, N> for Journal<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut line = String::new();
        self.inner.format_event(ctx, Writer::new(&mut line), event)?;
        let folded = one_line(line.trim_end_matches('\n'));
        writeln!(writer, "<{}>{folded}", priority(event.metadata().level()))
    }
}

/// `text` with its line breaks turned into ` | `, so the journal keeps it as one record.
fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" | ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priorities_follow_syslog_and_lines_fold() {
        assert_eq!(priority(&Level::ERROR), 3);
        assert_eq!(priority(&Level::WARN), 4);
        assert_eq!(priority(&Level::INFO), 6);
        assert_eq!(priority(&Level::DEBUG), 7);
        assert_eq!(
            one_line(
                "new configuration rejected:\n/etc/t.toml:2:1: poll.x: unknown\n\n/etc/t.toml:3:1: y: bad\n"
            ),
            "new configuration rejected: | /etc/t.toml:2:1: poll.x: unknown | /etc/t.toml:3:1: y: bad"
        );
    }
}
