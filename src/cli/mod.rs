//! The command line: clap definitions, logging set-up, and the mapping of results to exit
//! codes. This is the edge where library errors get their context and are printed; the library
//! itself never prints or exits. One file per command.
//!
//! Exit codes (stable; scripts rely on them):
//! - 0: success (for `poll`: every feed was fetched and parsed, or skipped by its state);
//! - 1: `poll` only: some feeds failed; the others were stored and the outputs written;
//! - 2: fatal: bad config, unusable database or output, usage error.

/// `println!` for command output: a reader that goes away (`tributary feeds | head`) ends the
/// command quietly, as it does for any Unix tool, instead of a panic.
macro_rules! outln {
    ($($arg:tt)*) => { $crate::cli::write_out(format_args!("{}\n", format_args!($($arg)*))) };
}

/// `print!` for command output; see [`outln!`].
macro_rules! out {
    ($($arg:tt)*) => { $crate::cli::write_out(format_args!($($arg)*)) };
}

mod check;
mod edit;
mod explain;
mod feeds;
mod preview;
mod init;
mod logging;
mod man;
mod opml;
mod poll;
mod run;
mod store;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU8, Ordering};

use clap::{CommandFactory, Parser, Subcommand};

use crate::config::Config;
use crate::store::Store;

/// Exit statuses, as documented above.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
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
  tributary --config config/demo.toml poll     poll the bundled offline demo once
  tributary check                              validate ./tributary.toml, list every problem
  tributary feeds                              the health of every feed
  tributary run                                run as a service (see config/systemd/)

Exit status: 0 success, 1 some feeds failed (poll: the rest stored, outputs written),
2 fatal (config, database, output or usage error).";

/// Tributary: a feed aggregator that merges RSS, Atom and JSON Feed sources into clean,
/// deduplicated feeds (Atom, RSS, JSON Feed), a web page and OPML.
#[derive(Debug, Parser)]
#[command(name = "tributary", version, about, after_help = EXAMPLES)]
pub(crate) struct Cli {
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

    /// Log level (off, error, warn, info, debug, trace: for Tributary itself, other crates stay
    /// at warnings) or a tracing filter such as "tributary=debug,reqwest=info". Wins over
    /// RUST_LOG. Default: info for `run`, warn otherwise.
    #[arg(long, global = true, value_name = "LEVEL")]
    log_level: Option<String>,

    /// Log line format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = logging::LogFormat::Human)]
    log_format: logging::LogFormat,

    /// Print only problems (failed feeds, errors).
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,

    /// Print a line for every feed, and log more.
    #[arg(short, long, global = true)]
    verbose: bool,

    #[command(subcommand)]
    command: Command,
}

// These doc comments are the commands' --help text, where `[serve]` names a config table,
// not a link.
#[allow(rustdoc::broken_intra_doc_links)]
#[derive(Debug, Subcommand)]
enum Command {
    /// Poll every configured feed once, store what is new, and render every output.
    ///
    /// Subscription lists ([[list]]) that are due are read first, and their feeds polled with
    /// the others. Feeds that are gone (HTTP 410), backing off after failures or under a
    /// Retry-After are skipped (and reported as skipped) unless --force. Shows a progress bar
    /// when stderr is a terminal.
    #[command(
        after_help = "Examples:\n  tributary poll\n  tributary -c /etc/tributary/tributary.toml poll --force"
    )]
    Poll {
        /// Also poll feeds that are gone, backing off, or under a Retry-After, and read every
        /// subscription list, due or not.
        #[arg(long)]
        force: bool,
    },
    /// Run as a service: poll feeds when their schedules say, re-render outputs when entries
    /// change, serve them over HTTP when [serve] is configured.
    ///
    /// SIGTERM/SIGINT stop gracefully, SIGHUP reloads the config; speaks systemd's notify
    /// protocol (Type=notify, watchdog).
    #[command(after_help = "Example:\n  tributary --config /etc/tributary/tributary.toml run")]
    Run,
    /// Validate the config without touching the network or the database: every problem is
    /// printed as FILE:LINE:COL: key: message. Also checks that the database path and the
    /// output directories are usable.
    #[command(
        after_help = "Example:\n  tributary -c /etc/tributary/tributary.toml check && systemctl reload tributary"
    )]
    Check,
    /// A table of every feed: title, URL, last success, last error, failures, entries
    /// stored, next poll. Failing feeds stand out (colour on a terminal, unless NO_COLOR).
    #[command(
        visible_alias = "status",
        after_help = "Examples:\n  tributary feeds\n  tributary feeds https://example.org/feed.xml\n  tributary feeds --reset \"Example blog\"\n  tributary feeds --json | jq '.[] | select(.consecutive_failures > 0)'\n\nExit status: 0 all healthy, 1 some feed or output failing, 2 fatal."
    )]
    Feeds {
        /// Print JSON for scripts instead of a table.
        #[arg(long)]
        json: bool,
        /// Forget FEED's failures (backoff, gone, abandoned, history): it is due at once.
        #[arg(long, requires = "feed")]
        reset: bool,
        /// Confirm the members of subscription list URL that were held because the list shrank
        /// by more than half at once.
        #[arg(long, value_name = "URL")]
        accept_list: Option<String>,
        /// One feed, by URL or by the title shown, with its last 20 failures.
        feed: Option<String>,
    },
    /// Render every output from the store, without polling.
    #[command(after_help = "Example:\n  tributary render")]
    Render,
    /// Add the feeds of an OPML file to the config (comments and layout kept; feeds already
    /// present skipped; OPML categories become tags).
    #[command(after_help = "Example:\n  tributary import subscriptions.opml")]
    Import {
        /// The OPML file.
        file: PathBuf,
    },
    /// Print OPML 2.0 of the configured feeds, and of the feeds subscription lists bring.
    #[command(after_help = "Example:\n  tributary export > subscriptions.opml")]
    Export,
    /// Add a feed to the config. Given a web page, finds its feed (<link rel="alternate">).
    #[command(
        after_help = "Examples:\n  tributary add https://blog.rust-lang.org/feed.xml --tag rust\n  tributary add https://example.org/ --title \"Example blog\""
    )]
    Add {
        /// The feed's URL, a web page that links to it, or a path.
        url: String,
        /// Title shown instead of the feed's own.
        #[arg(long)]
        title: Option<String>,
        /// A tag (repeat for several).
        #[arg(long = "tag", value_name = "TAG")]
        tags: Vec<String>,
    },
    /// Remove a feed from the config, by URL or title (a feed a subscription list brings is the
    /// list's to remove).
    #[command(after_help = "Example:\n  tributary remove \"Example blog\"")]
    Remove {
        /// The feed's URL (as configured) or title.
        feed: String,
    },
    /// Explain one entry: which feeds carried it, its identity key and why, whether it was
    /// merged with a duplicate or dropped by a rule, and which outputs show it. The entry is
    /// named by its link, guid, id in an output, or its title as shown (any case).
    #[command(
        after_help = "Examples:\n  tributary explain https://example.org/posts/1\n  tributary explain urn:uuid:6c1d6a8e-2f3b-4c8e-9a51-3b0e7d5f2a10"
    )]
    Explain {
        /// The entry's link, guid, id in an output (urn:uuid:…), or title.
        entry: String,
    },
    /// A dry run of one feed: fetch, parse and finish it as a poll would (a configured feed
    /// with its headers, kind, zone, language and rules), and show what would be stored: each
    /// entry's date, title, link, language and identity key, and what a rule would keep out.
    /// Stores nothing; works without a config.
    #[command(
        after_help = "Examples:\n  tributary preview https://example.org/feed.xml\n  tributary preview \"Rust Blog\""
    )]
    Preview {
        /// A feed URL, or a configured feed's URL or title.
        feed: String,
    },
    /// Start from nothing: write a commented starter config (DIR/tributary.toml) and its data
    /// directory, and print the next commands to run.
    #[command(after_help = "Examples:\n  tributary init\n  tributary init ~/planet")]
    Init {
        /// Where to write it (default: the current directory).
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// Print the built-in HTML page template, its variables documented at the top: a theme
    /// starts from it ([[output]] template = "FILE").
    #[command(after_help = "Example:\n  tributary template > page.html")]
    Template,
    /// Work on the store itself.
    Store {
        #[command(subcommand)]
        command: StoreCommand,
    },
    /// Print a shell completion script.
    #[command(after_help = "Example:\n  tributary completions bash > /etc/bash_completion.d/tributary")]
    Completions { shell: clap_complete::Shell },
    /// Print the man page (roff).
    #[command(after_help = "Example:\n  tributary man | man -l -")]
    Man,
}

#[derive(Debug, Subcommand)]
enum StoreCommand {
    /// Copy a whole store between SQLite and PostgreSQL (feeds and their state, entries,
    /// tombstones, error histories, host delays, outputs), ids kept, in one transaction. The
    /// target must be empty. A PostgreSQL side is a postgres:// or postgresql:// URL, or a
    /// "host=… dbname=…" connection string; its password may be `${NAME}`, read from the
    /// environment, so it does not show in the process list.
    #[command(
        after_help = "Examples:\n  tributary store copy --from /var/lib/tributary/tributary.db --to 'postgresql://tributary:${PGPASSWORD}@db.internal/tributary'\n  tributary store copy --from 'host=/run/postgresql dbname=tributary user=tributary' --to back.db"
    )]
    Copy {
        /// The store to read: an SQLite file or a PostgreSQL database.
        #[arg(long)]
        from: String,
        /// The empty store to write: the other kind.
        #[arg(long)]
        to: String,
    },
}

/// How chatty commands are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verbosity {
    Quiet,
    Normal,
    Verbose,
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
    if let Some(level) = &cli.log_level
        && let Err(e) = logging::filter_for(level)
    {
        eprintln!("error: --log-level: {e}");
        return Status::Fatal.into();
    }
    // A service reports its rounds; a one-shot command only its problems.
    let default_level = match (&cli.command, cli.verbose) {
        (Command::Run, _) | (_, true) => "info",
        _ => "warn",
    };
    logging::init(cli.log_level.as_deref(), default_level, cli.log_format);
    let verbosity = match (cli.quiet, cli.verbose) {
        (true, _) => Verbosity::Quiet,
        (_, true) => Verbosity::Verbose,
        _ => Verbosity::Normal,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return Status::Fatal.into();
        }
    };
    let config = cli.config.as_path();
    let status = match cli.command {
        Command::Poll { force } => runtime.block_on(poll::run(config, force, verbosity)),
        Command::Run => runtime.block_on(run::run(config)),
        Command::Check => check::run(config, verbosity),
        Command::Feeds {
            json,
            reset,
            accept_list,
            feed,
        } => runtime.block_on(feeds::run(
            config,
            feeds::Ask {
                json,
                feed,
                reset,
                accept_list,
            },
        )),
        Command::Render => runtime.block_on(render(config, verbosity)),
        Command::Import { file } => match ensure_config(config) {
            Ok(()) => opml::import(config, &file, verbosity),
            Err(status) => status,
        },
        Command::Export => runtime.block_on(opml::export(config)),
        Command::Add { url, title, tags } => match ensure_config(config) {
            Ok(()) => runtime.block_on(edit::add(config, &url, title, tags)),
            Err(status) => status,
        },
        Command::Remove { feed } => runtime.block_on(edit::remove(config, &feed)),
        Command::Explain { entry } => runtime.block_on(explain::run(config, &entry)),
        Command::Preview { feed } => runtime.block_on(preview::run(config, &feed)),
        Command::Init { dir } => init::run(&dir),
        Command::Template => {
            out!("{}", crate::output::BUILT_IN_TEMPLATE);
            Status::Ok
        }
        Command::Store {
            command: StoreCommand::Copy { from, to },
        } => runtime.block_on(store::copy(&from, &to, verbosity)),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "tributary", &mut std::io::stdout());
            Status::Ok
        }
        Command::Man => match man::render(&mut std::io::stdout()) {
            Ok(()) => Status::Ok,
            Err(e) => {
                eprintln!("error: {e}");
                Status::Fatal
            }
        },
    };
    // A render or a read still running on the blocking pool (an output template that takes
    // minutes, say) does not hold the exit up: what it would write is written whole or not
    // at all.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match STDOUT.load(Ordering::Relaxed) {
        STDOUT_FAILED => Status::Fatal.into(),
        _ => status.into(),
    }
}

/// The config at `path`, or its problems printed (one per line) and the fatal status.
fn load(path: &Path) -> Result<Config, Status> {
    if !path.exists() {
        eprintln!("{}", missing_config(path));
        return Err(Status::Fatal);
    }
    Config::load(path).map_err(|e| {
        eprintln!("error: invalid configuration\n{e}");
        Status::Fatal
    })
}

/// What to do when there is no config: where it was looked for, and how to make one.
fn missing_config(path: &Path) -> String {
    let shown = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    // Every command offered writes the config where it was looked for, not somewhere else.
    let here = path == Path::new("tributary.toml");
    let flag = if here {
        String::new()
    } else {
        format!("--config {} ", shown.display())
    };
    let init = match (shown.file_name(), shown.parent()) {
        _ if here => "tributary init".to_string(),
        (Some(name), Some(dir)) if name == "tributary.toml" => format!("tributary init {}", dir.display()),
        // `init` only writes DIR/tributary.toml; `add` starts any file from the same starter.
        _ => format!("tributary {flag}add URL"),
    };
    let mut hint = format!(
        "error: no config at {} (from --config, else $TRIBUTARY_CONFIG, else ./tributary.toml)\n\
         to start one there:      {init}\n\
         from your subscriptions: tributary {flag}import subscriptions.opml   (creates the config)",
        shown.display()
    );
    let packaged = Path::new("/etc/tributary/tributary.toml");
    if shown != packaged && packaged.exists() {
        hint.push_str(&format!(
            "\nor use the installed one: tributary --config {} …",
            packaged.display()
        ));
    }
    hint
}

/// For commands that edit the config (`add`, `import`): a missing config is created from the
/// starter, and said so.
fn ensure_config(path: &Path) -> Result<(), Status> {
    if path.exists() {
        return Ok(());
    }
    match init::write_starter(path) {
        Ok(()) => {
            eprintln!(
                "created {} from the starter config (see `tributary init`)",
                std::path::absolute(path)
                    .unwrap_or_else(|_| path.to_path_buf())
                    .display()
            );
            Ok(())
        }
        Err(e) => {
            eprintln!("error: {e}");
            Err(Status::Fatal)
        }
    }
}

/// The store of `config`, or the error printed and the fatal status.
async fn open_store(config: &Config) -> Result<Store, Status> {
    Store::open(&config.backend()).await.map_err(|e| {
        eprintln!("error: {e}");
        Status::Fatal
    })
}

/// The config at `path` and its open store: what every command that reads the store starts
/// with. The config has its subscription lists' feeds, as the store holds them.
async fn load_with_store(path: &Path) -> Result<(Config, Store), Status> {
    let config = load(path)?;
    let store = open_store(&config).await?;
    match crate::lists::with_members(config, &store).await {
        Ok(config) => Ok((config, store)),
        Err(e) => {
            eprintln!("error: {e}");
            store.close().await;
            Err(Status::Fatal)
        }
    }
}

/// The config at `path` with its subscription lists' feeds, as the store holds them (when
/// there is a store yet), or its problems printed and the fatal status.
async fn load_with_lists(path: &Path) -> Result<Config, Status> {
    let config = load(path)?;
    if config.lists.is_empty() || !config.backend().exists() {
        return Ok(config);
    }
    let store = open_store(&config).await?;
    let result = crate::lists::with_members(config, &store).await;
    store.close().await;
    result.map_err(|e| {
        eprintln!("error: {e}");
        Status::Fatal
    })
}

/// Prints what rendering did; fatal when an output could not be written.
fn report_outputs(
    outputs: &[Result<crate::output::OutputReport, crate::output::OutputError>],
    verbosity: Verbosity,
) -> Status {
    let mut status = Status::Ok;
    for result in outputs {
        match result {
            // The file is written: what failed is the command told of it.
            Ok(o) if o.hook_error.is_some() => {
                eprintln!(
                    "error: output {}: on_change {}",
                    o.path.display(),
                    o.hook_error.as_deref().unwrap_or_default()
                );
                status = Status::Fatal;
            }
            Ok(o) if verbosity != Verbosity::Quiet => outln!(
                "output {}: {} entries{}",
                o.path.display(),
                o.entries,
                if o.written { "" } else { " (unchanged)" }
            ),
            Ok(_) => {}
            Err(e) => {
                eprintln!("error: {e}");
                status = Status::Fatal;
            }
        }
    }
    status
}

/// `tributary render`: every output from the store, no polling.
async fn render(config_path: &Path, verbosity: Verbosity) -> Status {
    let (config, store) = match load_with_store(config_path).await {
        Ok(opened) => opened,
        Err(status) => return status,
    };
    // The back catalogue shown is what `poll.new_feed_entries` says now.
    if let Err(e) = store.apply_catalogue_limit(config.poll.new_feed_entries).await {
        eprintln!("error: {e}");
        return Status::Fatal;
    }
    let config = std::sync::Arc::new(config);
    let outputs = crate::output::render_all(&config, &store).await;
    let outcomes = outputs.iter().map(crate::output::outcome).collect();
    if let Err(e) = crate::output::record_renders(&store, outcomes, chrono::Utc::now()).await {
        eprintln!("warning: cannot record the outputs' state: {e}");
    }
    store.close().await;
    report_outputs(&outputs, verbosity)
}

/// The configured URL (as written) of the feed the user named: by URL, by the title the config
/// gives it, or by the title `feeds` shows (the feed's own, from the store), case-insensitively.
/// `Ok(None)` when nothing matches (the caller says so in its own terms).
pub(crate) async fn find_feed(config_path: &Path, wanted: &str) -> Result<Option<String>, Status> {
    let config = load_with_lists(config_path).await?;
    let wanted_trim = wanted.trim();
    let same = |a: &str| a.trim().to_lowercase() == wanted_trim.to_lowercase();
    if let Some(f) = config.feeds.iter().find(|f| {
        f.url.as_str() == wanted_trim
            || crate::model::display_url(&f.url) == wanted_trim
            || f.key == wanted_trim
            || f.title.as_deref().is_some_and(same)
    }) {
        return Ok(Some(f.url.to_string()));
    }
    if !config.backend().exists() {
        return Ok(None);
    }
    let store = open_store(&config).await?;
    let keys: std::sync::Arc<[String]> = config.feeds.iter().map(|f| f.key.clone()).collect();
    let states = store.feeds_by_url(keys).await;
    store.close().await;
    let states = states.map_err(|e| {
        eprintln!("error: {e}");
        Status::Fatal
    })?;
    Ok(config
        .feeds
        .iter()
        .find(|f| {
            states
                .get(&f.key)
                .and_then(|s| s.title.as_deref())
                .is_some_and(same)
        })
        .map(|f| f.url.to_string()))
}

/// What became of writing to stdout: `STDOUT_OK`, `STDOUT_CLOSED` (the reader went away, as
/// `| head` does: not an error) or `STDOUT_FAILED`.
static STDOUT: AtomicU8 = AtomicU8::new(STDOUT_OK);
const STDOUT_OK: u8 = 0;
const STDOUT_CLOSED: u8 = 1;
const STDOUT_FAILED: u8 = 2;

/// Writes command output to stdout. After a write fails, later output is dropped and
/// [`main`] decides the exit status; a command never exits from here.
pub(crate) fn write_out(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    if STDOUT.load(Ordering::Relaxed) != STDOUT_OK {
        return;
    }
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout.write_fmt(args).and_then(|()| stdout.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            STDOUT.store(STDOUT_CLOSED, Ordering::Relaxed);
        } else {
            eprintln!("error: cannot write to stdout: {e}");
            STDOUT.store(STDOUT_FAILED, Ordering::Relaxed);
        }
    }
}

/// Whether stdout is a terminal that takes colour (NO_COLOR unset).
fn colour(stream_is_terminal: bool) -> bool {
    stream_is_terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Whether stderr is a terminal (progress bars go there).
fn stderr_is_terminal() -> bool {
    std::io::stderr().is_terminal()
}
