//! The command line: clap definitions, logging set-up, and the mapping of results to exit
//! codes. This is the edge where library errors get their context and are printed; the library
//! itself never prints or exits.
//!
//! Exit codes (stable; scripts rely on them):
//! - 0: success (for `poll`: every feed was fetched and parsed);
//! - 1: `poll` only: some feeds failed; the others were stored and the outputs written;
//! - 2: fatal: bad config, unusable database or output, usage error.

mod logging;
mod poll;
mod run;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit statuses, as documented above.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok = 0,
    FeedsFailed = 1,
    Fatal = 2,
}

impl From<Status> for ExitCode {
    fn from(s: Status) -> ExitCode {
        ExitCode::from(s as u8)
    }
}

const EXAMPLES: &str = "\
Examples:
  tributary --config config/demo.toml poll    poll the bundled offline demo once
  tributary -c /etc/tributary/tributary.toml poll

Exit status: 0 all feeds fine, 1 some feeds failed (the rest stored, outputs written),
2 fatal (config, database, output or usage error).";

/// Tributary: a feed aggregator that merges RSS, Atom and JSON Feed sources into one feed.
#[derive(Debug, Parser)]
#[command(name = "tributary", version, about, after_help = EXAMPLES)]
pub struct Cli {
    /// Config file (TOML). Relative paths inside it are relative to its directory.
    #[arg(
        short,
        long,
        global = true,
        value_name = "PATH",
        default_value = "tributary.toml",
        env = "TRIBUTARY_CONFIG"
    )]
    config: PathBuf,

    /// Log level or filter (error, warn, info, debug, trace, or a tracing filter such as
    /// "tributary=debug"). Wins over RUST_LOG. Default: info for `run`, warn otherwise.
    #[arg(long, global = true, value_name = "LEVEL")]
    log_level: Option<String>,

    /// Log line format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = logging::LogFormat::Human)]
    log_format: logging::LogFormat,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Poll every configured feed once, store what is new, and render every output.
    #[command(after_help = EXAMPLES)]
    Poll {
        /// Also poll feeds that are gone (410), backing off after failures, or under a
        /// Retry-After; without it they are skipped and reported as skipped.
        #[arg(long)]
        force: bool,
    },
    /// Run as a service: poll feeds when their schedules say, re-render outputs when entries
    /// change. SIGTERM/SIGINT stop gracefully, SIGHUP reloads the config; speaks systemd's
    /// notify protocol (Type=notify, watchdog).
    #[command(after_help = "Example:\n  tributary --config /etc/tributary/tributary.toml run")]
    Run,
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            // Help and --version go to stdout with status 0; usage errors to stderr with 2.
            let _ = err.print();
            return if err.use_stderr() {
                Status::Fatal.into()
            } else {
                Status::Ok.into()
            };
        }
    };
    // A service reports its rounds; a one-shot command only its problems.
    let default_level = match cli.command {
        Command::Run => "info",
        Command::Poll { .. } => "warn",
    };
    logging::init(cli.log_level.as_deref(), default_level, cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return Status::Fatal.into();
        }
    };
    let status = match cli.command {
        Command::Poll { force } => runtime.block_on(poll::run(&cli.config, force)),
        Command::Run => runtime.block_on(run::run(&cli.config)),
    };
    status.into()
}
