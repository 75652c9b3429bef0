//! tracing set-up: human-readable lines by default, JSON for log shippers, and no timestamps of
//! our own when stderr is the systemd journal (it stamps every line already).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

/// `flag` (--log-level) wins over `RUST_LOG`, which wins over the command's `default`.
pub fn init(flag: Option<&str>, default: &str, format: LogFormat) {
    let filter = flag
        .map(str::to_string)
        .or_else(|| std::env::var("RUST_LOG").ok().filter(|v| !v.trim().is_empty()))
        .unwrap_or_else(|| default.to_string());
    let filter = EnvFilter::try_new(&filter).unwrap_or_else(|e| {
        eprintln!("warning: ignoring log filter `{filter}`: {e}");
        EnvFilter::new("warn")
    });
    let journal = std::env::var_os("JOURNAL_STREAM").is_some();
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .with_target(false);
    // A second init (tests calling main twice) is harmless, so its error is ignored.
    let _ = match (format, journal) {
        (LogFormat::Json, _) => builder.json().try_init(),
        (LogFormat::Human, true) => builder.without_time().with_ansi(false).try_init(),
        (LogFormat::Human, false) => builder.try_init(),
    };
}
