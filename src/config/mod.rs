//! Owns the configuration: TOML text → raw serde mirror (`raw`) → validated [`Config`].
//!
//! Validation resolves relative paths against the config file's directory, parses durations
//! and sizes, and collects *every* problem it finds, each naming file, line, column and key.
//! Nothing downstream ever sees an unvalidated value.

mod error;
mod keys;
mod raw;

use std::path::{Path, PathBuf};
use std::time::Duration;

use url::Url;

use error::Locator;
pub use error::{ConfigError, Problem};
use raw::RawConfig;

use crate::filter::{Field, Rule, Rules};
use crate::model::{CrossFeedDedupe, FeedSpec, OutputFormat, OutputSpec};
use crate::schedule::{self, CronSchedule};

/// The default User-Agent: who we are and where to read about us, so publishers can reach us.
pub const DEFAULT_USER_AGENT: &str = concat!(
    "tributary/",
    env!("CARGO_PKG_VERSION"),
    " (+",
    env!("CARGO_PKG_REPOSITORY"),
    ")"
);

pub const DEFAULT_CONCURRENCY: usize = 32;
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_MAX_BODY: u64 = 10 * 1024 * 1024;
pub const DEFAULT_OUTPUT_LIMIT: usize = 100;
pub const DEFAULT_STORE_PATH: &str = "tributary.db";
pub const DEFAULT_SCHEDULE: &str = "*/15 * * * *";
pub const DEFAULT_JITTER: Duration = Duration::from_secs(5 * 60);
pub const DEFAULT_PER_HOST: usize = 2;
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
pub const DEFAULT_KEEP_DAYS: u32 = 365;
pub const DEFAULT_KEEP_PER_FEED: usize = 1000;
pub const DEFAULT_HOUSEKEEPING: &str = "23 * * * *";
pub const DEFAULT_NEW_FEED_ENTRIES: usize = 10;
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
pub const DEFAULT_GIVE_UP_AFTER: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// A validated configuration. Paths are absolute; values are in their final types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The file this was loaded from.
    pub source: PathBuf,
    pub store: StoreConfig,
    pub poll: PollConfig,
    pub feeds: Vec<FeedSpec>,
    pub outputs: Vec<OutputSpec>,
    /// The built-in HTTP server, when a `[serve]` table is present.
    pub serve: Option<ServeConfig>,
    /// A hash of the config text. A feed found gone (410) under one version of the config is
    /// polled again once the config changes: the operator has looked at it since.
    pub fingerprint: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeConfig {
    pub listen: std::net::SocketAddr,
    /// The public URL the outputs are reachable under (self links, WebSub).
    pub base_url: Option<Url>,
    /// A WebSub hub to announce in feeds and to ping when an output changes.
    pub websub_hub: Option<Url>,
    /// Connections open at once (lowered to fit the descriptor limit); at the cap, the
    /// connection that waited longest without a request is closed for a newcomer.
    pub max_connections: usize,
    /// How long a client may take to send a request's headers.
    pub header_timeout: Duration,
    /// How long a kept-alive connection may sit idle between requests.
    pub idle_timeout: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    pub path: PathBuf,
    /// Entries older than this many days are removed (0: never), unless an output shows them.
    pub keep_days: u32,
    /// At most this many entries per feed are kept (0: no limit), unless an output shows them.
    pub keep_per_feed: usize,
    /// When the daemon runs retention, `PRAGMA optimize`, checkpoints and incremental vacuum.
    pub housekeeping: CronSchedule,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollConfig {
    /// Fetches in flight at once, across all feeds.
    pub concurrency: usize,
    /// Whole-request limit: connect, headers and body.
    pub timeout: Duration,
    pub user_agent: String,
    /// Bodies (after decompression) larger than this are cut off and the fetch fails.
    pub max_body: u64,
    /// A feed's first poll shows at most this many of its entries in outputs (the rest are
    /// stored), so adding a feed does not flood subscribers with its back catalogue.
    pub new_feed_entries: usize,
    /// Refuse feeds and redirects that resolve to loopback, private or link-local addresses;
    /// proxies are not used then (they would resolve names where the guard cannot check).
    pub deny_private_networks: bool,
    /// Read `file://` sources even while `deny_private_networks` is on.
    pub allow_files: bool,
    /// When feeds are due (each `[[feed]]` may override it).
    pub schedule: CronSchedule,
    /// Feeds sharing a schedule are spread over up to this much time after each fire time.
    pub jitter: Duration,
    /// Fetches in flight at once against one host.
    pub per_host: usize,
    /// On SIGTERM, how long in-flight fetches may take before they are abandoned.
    pub shutdown_grace: Duration,
    /// A feed failing for this long is reported abandoned (and still tried once a day).
    pub give_up_after: Duration,
}

impl Config {
    /// How `feed` is scheduled.
    pub fn policy_for(&self, feed: &FeedSpec) -> schedule::Policy {
        schedule::Policy {
            cron: feed
                .schedule
                .clone()
                .unwrap_or_else(|| self.poll.schedule.clone()),
            jitter: self.poll.jitter,
            respect_hints: !feed.ignore_hints,
            give_up_after: self.poll.give_up_after,
        }
    }

    /// Reads and validates the config file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            problems: vec![Problem {
                file: path.to_path_buf(),
                line: 0,
                column: 0,
                key: String::new(),
                message: format!("cannot read config: {e}"),
            }],
        })?;
        Self::parse(path, &text)
    }

    /// Validates config `text` as if read from `path` (relative paths resolve against its directory).
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let locator = Locator::new(path, text);
        let unknown = keys::unknown_keys(text, &locator);
        let raw: RawConfig = match toml::from_str(text) {
            Ok(raw) => raw,
            Err(e) => {
                let mut problems = unknown;
                problems.push(locator.toml_problem(&e));
                return Err(ConfigError { problems });
            }
        };
        Validator {
            file: path.to_path_buf(),
            locator,
            base: base_dir(path),
            problems: unknown,
            seen_urls: std::collections::HashSet::new(),
            files_refused: false,
        }
        .validate(path, raw, fingerprint(text))
    }
}

fn base_dir(config_path: &Path) -> PathBuf {
    let dir = config_path.parent().unwrap_or(Path::new(""));
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf())
}

fn fingerprint(text: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(&Sha256::digest(text.as_bytes())[..12])
}

fn default_listen() -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], 8080))
}

struct Validator<'a> {
    file: PathBuf,
    locator: Locator<'a>,
    base: PathBuf,
    problems: Vec<Problem>,
    seen_urls: std::collections::HashSet<Url>,
    /// Local files are refused as sources (the private-network guard is on).
    files_refused: bool,
}

impl Validator<'_> {
    fn validate(mut self, path: &Path, raw: RawConfig, fingerprint: String) -> Result<Config, ConfigError> {
        let store = StoreConfig {
            path: match raw.store.path {
                Some(p) => self.path(p, "store.path"),
                None => self.base.join(DEFAULT_STORE_PATH),
            },
            keep_days: self
                .count(raw.store.keep_days, "store.keep_days", 0, 100_000)
                .map_or(DEFAULT_KEEP_DAYS, |n| n as u32),
            keep_per_feed: self
                .count(raw.store.keep_per_feed, "store.keep_per_feed", 0, 10_000_000)
                .unwrap_or(DEFAULT_KEEP_PER_FEED),
            housekeeping: self.cron(raw.store.housekeeping, "store.housekeeping", DEFAULT_HOUSEKEEPING),
        };
        let poll = self.poll(raw.poll);
        self.files_refused = poll.deny_private_networks && !poll.allow_files;
        let feeds = raw
            .feed
            .into_iter()
            .enumerate()
            .filter_map(|(i, f)| self.feed(i + 1, f))
            .collect::<Vec<_>>();
        let serve = raw.serve.map(|s| self.serve(s));
        let base_url = serve.as_ref().and_then(|s: &ServeConfig| s.base_url.clone());
        let outputs: Vec<OutputSpec> = raw
            .output
            .into_iter()
            .enumerate()
            .filter_map(|(i, o)| self.output(i + 1, o, &feeds, base_url.as_ref()))
            .collect();
        self.distinct_outputs(&outputs, serve.is_some());
        if self.problems.is_empty() {
            Ok(Config {
                source: std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()),
                store,
                poll,
                feeds,
                outputs,
                serve,
                fingerprint,
            })
        } else {
            Err(ConfigError {
                problems: self.problems,
            })
        }
    }

    fn poll(&mut self, raw: raw::RawPoll) -> PollConfig {
        let concurrency = self
            .count(raw.concurrency, "poll.concurrency", 1, 10_000)
            .unwrap_or(DEFAULT_CONCURRENCY);
        let per_host = self
            .count(raw.per_host, "poll.per_host", 1, 1_000)
            .unwrap_or(DEFAULT_PER_HOST);
        let timeout = self
            .duration(raw.timeout, "poll.timeout", false)
            .unwrap_or(DEFAULT_TIMEOUT);
        let jitter = self
            .duration(raw.jitter, "poll.jitter", true)
            .unwrap_or(DEFAULT_JITTER);
        let shutdown_grace = self
            .duration(raw.shutdown_grace, "poll.shutdown_grace", true)
            .unwrap_or(DEFAULT_SHUTDOWN_GRACE);
        let give_up_after = self
            .duration(raw.give_up_after, "poll.give_up_after", false)
            .unwrap_or(DEFAULT_GIVE_UP_AFTER);
        let schedule = self.cron(raw.schedule, "poll.schedule", DEFAULT_SCHEDULE);
        let new_feed_entries = self
            .count(raw.new_feed_entries, "poll.new_feed_entries", 0, 100_000)
            .unwrap_or(DEFAULT_NEW_FEED_ENTRIES);
        let user_agent = match raw.user_agent {
            Some(ua) if ua.get_ref().trim().is_empty() || ua.get_ref().contains(['\r', '\n']) => {
                self.report(ua.span(), "poll.user_agent", "must be one non-empty line");
                DEFAULT_USER_AGENT.to_string()
            }
            Some(ua) => ua.into_inner(),
            None => DEFAULT_USER_AGENT.to_string(),
        };
        let max_body = match raw.max_body {
            Some(s) => match s.get_ref().parse::<bytesize::ByteSize>() {
                Ok(b) if b.as_u64() > 0 => b.as_u64(),
                _ => {
                    self.report(
                        s.span(),
                        "poll.max_body",
                        format!(
                            "`{}` is not a size; write e.g. \"10MiB\" or \"500kB\"",
                            s.get_ref()
                        ),
                    );
                    DEFAULT_MAX_BODY
                }
            },
            None => DEFAULT_MAX_BODY,
        };
        PollConfig {
            concurrency,
            timeout,
            user_agent,
            max_body,
            new_feed_entries,
            deny_private_networks: raw.deny_private_networks.unwrap_or(false),
            allow_files: raw.allow_files.unwrap_or(false),
            schedule,
            jitter,
            per_host,
            shutdown_grace,
            give_up_after,
        }
    }

    /// An integer setting within `[min, max]`; `None` when absent or invalid (reported).
    fn count(&mut self, raw: Option<toml::Spanned<i64>>, key: &str, min: i64, max: i64) -> Option<usize> {
        let value = raw?;
        let n = *value.get_ref();
        if n < min || n > max {
            self.report(value.span(), key, format!("must be between {min} and {max}"));
            return None;
        }
        usize::try_from(n).ok()
    }

    /// A duration such as "30s" or "2m"; `None` when absent or invalid (reported).
    fn duration(&mut self, raw: Option<toml::Spanned<String>>, key: &str, zero_ok: bool) -> Option<Duration> {
        let value = raw?;
        match humantime::parse_duration(value.get_ref().trim()) {
            Ok(d) if zero_ok || !d.is_zero() => Some(d),
            Ok(_) => {
                self.report(value.span(), key, "must be longer than zero");
                None
            }
            Err(e) => {
                self.report(
                    value.span(),
                    key,
                    format!(
                        "`{}` is not a duration ({e}); write e.g. \"30s\" or \"2m\"",
                        value.get_ref()
                    ),
                );
                None
            }
        }
    }

    /// A cron expression; the default when absent, and when invalid (reported).
    fn cron(&mut self, raw: Option<toml::Spanned<String>>, key: &str, default: &str) -> CronSchedule {
        self.cron_opt(raw, key).unwrap_or_else(|| {
            CronSchedule::parse(default).unwrap_or_else(|e| unreachable!("default cron: {e}"))
        })
    }

    fn cron_opt(&mut self, raw: Option<toml::Spanned<String>>, key: &str) -> Option<CronSchedule> {
        let value = raw?;
        match CronSchedule::parse(value.get_ref()) {
            Ok(c) => Some(c),
            Err(e) => {
                self.report(value.span(), key, e);
                None
            }
        }
    }

    fn feed(&mut self, n: usize, raw: raw::RawFeed) -> Option<FeedSpec> {
        let key = |k: &str| format!("feed[{n}].{k}");
        let url = self.source_url(&raw.url, &key("url"));
        if self.files_refused && url.as_ref().is_some_and(|u| u.scheme() == "file") {
            self.report(
                raw.url.span(),
                key("url"),
                "local files are refused while poll.deny_private_networks is on \
                 (set poll.allow_files = true to read them)",
            );
        }
        if let Some(url) = &url {
            if self.seen_urls.contains(url) {
                self.report(raw.url.span(), key("url"), format!("`{url}` is configured twice"));
            } else {
                self.seen_urls.insert(url.clone());
            }
        }
        let title = raw.title.map(|t| t.into_inner()).filter(|t| !t.trim().is_empty());
        let mut tags = Vec::new();
        for tag in raw.tags {
            if tag.get_ref().trim().is_empty() {
                self.report(tag.span(), key("tags"), "tags must not be empty");
            } else {
                tags.push(tag.into_inner());
            }
        }
        let schedule = self.cron_opt(raw.schedule, &key("schedule"));
        let rules = self.rules(raw.include, raw.exclude, &key(""));
        let mut headers = Vec::new();
        if let Some(table) = raw.headers {
            let span = table.span();
            for (name, value) in table.into_inner() {
                let valid_name = reqwest::header::HeaderName::try_from(name.as_str()).is_ok();
                let valid_value = reqwest::header::HeaderValue::try_from(value.as_str()).is_ok();
                if valid_name && valid_value {
                    headers.push((name, value));
                } else {
                    // The value may be a secret: the message names the header only.
                    self.report(
                        span.clone(),
                        key("headers"),
                        format!("`{name}` is not a valid HTTP header name and value"),
                    );
                }
            }
        }
        Some(FeedSpec {
            url: url?,
            title,
            tags,
            schedule,
            ignore_hints: raw.ignore_hints.unwrap_or(false),
            rules,
            headers,
        })
    }

    /// The URL a feed reference resolves to, like `source_url` but without reporting.
    fn resolve_source(&self, text: &str) -> Option<Url> {
        match Url::parse(text) {
            Ok(url) if url.scheme().len() > 1 => Some(url),
            _ => Url::from_file_path(self.base.join(text)).ok(),
        }
    }

    /// A feed source: an `http(s)://` or `file://` URL, or a path relative to the config file.
    fn source_url(&mut self, raw: &toml::Spanned<String>, key: &str) -> Option<Url> {
        let text = raw.get_ref().trim();
        if text.is_empty() {
            self.report(raw.span(), key, "must not be empty");
            return None;
        }
        match Url::parse(text) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host_str().is_some() => Some(url),
            Ok(url) if url.scheme() == "file" => Some(url),
            // A one-letter "scheme" is a Windows drive letter: treat it as a path.
            Ok(url) if url.scheme().len() > 1 => {
                self.report(
                    raw.span(),
                    key,
                    format!(
                        "unsupported scheme `{}`: use http://, https://, file:// or a path",
                        url.scheme()
                    ),
                );
                None
            }
            Ok(_) | Err(url::ParseError::RelativeUrlWithoutBase) => {
                let path = self.base.join(text);
                match Url::from_file_path(&path) {
                    Ok(url) => Some(url),
                    Err(()) => {
                        self.report(raw.span(), key, format!("`{text}` is not a usable path"));
                        None
                    }
                }
            }
            Err(e) => {
                self.report(raw.span(), key, format!("`{text}` is not a valid URL: {e}"));
                None
            }
        }
    }

    fn output(
        &mut self,
        n: usize,
        raw: raw::RawOutput,
        all_feeds: &[FeedSpec],
        base_url: Option<&Url>,
    ) -> Option<OutputSpec> {
        let key = |k: &str| format!("output[{n}].{k}");
        let path_text = raw.path.get_ref().clone();
        let path = if path_text.trim().is_empty() {
            self.report(raw.path.span(), key("path"), "must not be empty");
            None
        } else {
            Some(self.path(raw.path, &key("path")))
        };
        let format = match raw.format {
            Some(f) => match OutputFormat::from_name(f.get_ref()) {
                Some(format) => Some(format),
                None => {
                    self.report(
                        f.span(),
                        key("format"),
                        format!(
                            "unknown format `{}`; expected one of: {}",
                            f.get_ref(),
                            OutputFormat::NAMES.join(", ")
                        ),
                    );
                    None
                }
            },
            None => Some(OutputFormat::Atom),
        };
        let limit = match raw.limit {
            Some(l) if *l.get_ref() < 1 || *l.get_ref() > 100_000 => {
                self.report(l.span(), key("limit"), "must be between 1 and 100000");
                None
            }
            Some(l) => usize::try_from(*l.get_ref()).ok(),
            None => Some(DEFAULT_OUTPUT_LIMIT),
        };
        let title = raw
            .title
            .map(|t| t.into_inner())
            .filter(|t| !t.trim().is_empty())
            .unwrap_or_else(|| "Tributary".to_string());
        let id = match raw.id {
            Some(id) if Url::parse(id.get_ref()).is_err() => {
                self.report(
                    id.span(),
                    key("id"),
                    "must be an absolute IRI (e.g. \"urn:uuid:…\" or \"https://…\"), as Atom requires",
                );
                None
            }
            Some(id) => Some(id.into_inner()),
            // Derived from what the operator wrote, not from the absolute path, so the id stays
            // put when the whole directory moves.
            None => Some(crate::model::stable_urn(&format!("tributary-output:{path_text}"))),
        };
        let feeds = self.selection(raw.tags, raw.feeds, all_feeds, &key);
        let rules = self.rules(raw.include, raw.exclude, &key(""));
        let dedupe = match raw.dedupe {
            None => CrossFeedDedupe::Link,
            Some(d) => match d.get_ref().as_str() {
                "link" => CrossFeedDedupe::Link,
                "none" => CrossFeedDedupe::None,
                other => {
                    self.report(
                        d.span(),
                        key("dedupe"),
                        format!("unknown value `{other}`; expected \"link\" or \"none\""),
                    );
                    CrossFeedDedupe::Link
                }
            },
        };
        let template = match raw.template {
            Some(t) if format != Some(OutputFormat::Html) => {
                self.report(t.span(), key("template"), "only html outputs use a template");
                None
            }
            Some(t) => {
                let p = self.path(t.clone(), &key("template"));
                if !p.is_file() {
                    self.report(
                        t.span(),
                        key("template"),
                        format!("template {} does not exist", p.display()),
                    );
                }
                Some(p)
            }
            None => None,
        };
        let link = match raw.link {
            Some(l) => match Url::parse(l.get_ref()) {
                Ok(u) if matches!(u.scheme(), "http" | "https") => Some(u.to_string()),
                _ => {
                    self.report(l.span(), key("link"), "must be an absolute http(s) URL");
                    None
                }
            },
            None => base_url.map(Url::to_string),
        };
        let file_name = std::path::Path::new(&path_text)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let self_url = base_url.and_then(|b| b.join(&file_name).ok()).map(String::from);
        Some(OutputSpec {
            path: path?,
            format: format?,
            title,
            limit: limit?,
            id: id?,
            feeds,
            rules,
            dedupe,
            template,
            link,
            description: raw.description.map(|d| d.into_inner()),
            self_url,
        })
    }

    /// The feeds an output draws from: those with one of `tags`, plus those listed in `feeds`
    /// (by URL as written or by title); every feed when both are empty.
    fn selection(
        &mut self,
        tags: Vec<toml::Spanned<String>>,
        listed: Vec<toml::Spanned<String>>,
        all: &[FeedSpec],
        key: &dyn Fn(&str) -> String,
    ) -> Vec<Url> {
        if tags.is_empty() && listed.is_empty() {
            return all.iter().map(|f| f.url.clone()).collect();
        }
        let mut chosen: std::collections::HashSet<Url> = std::collections::HashSet::new();
        for tag in &tags {
            let with_tag: Vec<&FeedSpec> = all.iter().filter(|f| f.tags.contains(tag.get_ref())).collect();
            if with_tag.is_empty() {
                self.report(
                    tag.span(),
                    key("tags"),
                    format!("no feed has the tag `{}`", tag.get_ref()),
                );
            }
            chosen.extend(with_tag.into_iter().map(|f| f.url.clone()));
        }
        for item in &listed {
            let wanted = item.get_ref().trim();
            let as_url = self.resolve_source(wanted);
            let found = all
                .iter()
                .find(|f| Some(&f.url) == as_url.as_ref() || f.title.as_deref() == Some(wanted));
            match found {
                Some(f) => {
                    chosen.insert(f.url.clone());
                }
                None => self.report(
                    item.span(),
                    key("feeds"),
                    format!("`{wanted}` is not the URL or title of a configured feed"),
                ),
            }
        }
        // Config order, no repeats.
        all.iter()
            .map(|f| f.url.clone())
            .filter(|u| chosen.contains(u))
            .collect()
    }

    /// Compiles include / exclude rules; an invalid regex is reported with its place.
    fn rules(&mut self, include: Vec<raw::RawRule>, exclude: Vec<raw::RawRule>, prefix: &str) -> Rules {
        let mut compile = |raw: Vec<raw::RawRule>, name: &str| -> Vec<Rule> {
            let key = format!("{prefix}{name}");
            raw.into_iter()
                .filter_map(|r| {
                    let span = r.span();
                    let (field, pattern) = match r.into_inner() {
                        toml::Value::String(p) => (Field::Any, p),
                        toml::Value::Table(t) if t.len() == 1 => {
                            let (k, v) = t.into_iter().next()?;
                            let Some(field) = Field::from_name(&k) else {
                                self.report(
                                    span,
                                    &key,
                                    format!(
                                        "unknown field `{k}`; expected one of: {}",
                                        Field::NAMES.join(", ")
                                    ),
                                );
                                return None;
                            };
                            let Some(p) = v.as_str().map(str::to_string) else {
                                self.report(
                                    span,
                                    &key,
                                    format!("`{k}` must be a regular expression (a string)"),
                                );
                                return None;
                            };
                            (field, p)
                        }
                        _ => {
                            self.report(
                                span,
                                &key,
                                "a rule is a regex string, or a table with one field: { title = \"…\" }",
                            );
                            return None;
                        }
                    };
                    match regex::Regex::new(&pattern) {
                        Ok(regex) => Some(Rule { field, regex }),
                        Err(e) => {
                            let first = e.to_string().lines().last().unwrap_or("").trim().to_string();
                            self.report(
                                span,
                                &key,
                                format!("invalid regular expression `{pattern}`: {first}"),
                            );
                            None
                        }
                    }
                })
                .collect()
        };
        Rules {
            include: compile(include, "include"),
            exclude: compile(exclude, "exclude"),
        }
    }

    fn serve(&mut self, raw: raw::RawServe) -> ServeConfig {
        let listen = match raw.listen {
            Some(l) => match l.get_ref().parse::<std::net::SocketAddr>() {
                Ok(a) => a,
                Err(_) => {
                    self.report(
                        l.span(),
                        "serve.listen",
                        format!("`{}` is not an address such as \"127.0.0.1:8080\"", l.get_ref()),
                    );
                    default_listen()
                }
            },
            None => default_listen(),
        };
        let mut http_url = |raw: Option<toml::Spanned<String>>, key: &str| {
            let raw = raw?;
            match Url::parse(raw.get_ref()) {
                Ok(u) if matches!(u.scheme(), "http" | "https") => Some(u),
                _ => {
                    self.report(raw.span(), key, "must be an absolute http(s) URL");
                    None
                }
            }
        };
        let base_url = http_url(raw.base_url, "serve.base_url").map(|mut u| {
            // A base without a trailing slash would lose its last segment when joined.
            if !u.path().ends_with('/') {
                let path = format!("{}/", u.path());
                u.set_path(&path);
            }
            u
        });
        let hub_span = raw.websub_hub.as_ref().map(toml::Spanned::span);
        let websub_hub = http_url(raw.websub_hub, "serve.websub_hub");
        if let (Some(span), None) = (hub_span, &base_url) {
            self.report(
                span,
                "serve.websub_hub",
                "needs serve.base_url: subscribers and the hub must know the outputs' public URLs",
            );
        }
        let max_connections = self
            .count(raw.max_connections, "serve.max_connections", 1, 1_000_000)
            .unwrap_or(DEFAULT_MAX_CONNECTIONS);
        let header_timeout = self
            .duration(raw.header_timeout, "serve.header_timeout", false)
            .unwrap_or(DEFAULT_HEADER_TIMEOUT);
        let idle_timeout = self
            .duration(raw.idle_timeout, "serve.idle_timeout", false)
            .unwrap_or(DEFAULT_IDLE_TIMEOUT);
        ServeConfig {
            listen,
            base_url,
            websub_hub,
            max_connections,
            header_timeout,
            idle_timeout,
        }
    }

    /// Two outputs may not write the same file, nor (when served) share a file name.
    fn distinct_outputs(&mut self, outputs: &[OutputSpec], served: bool) {
        for (i, o) in outputs.iter().enumerate() {
            for earlier in &outputs[..i] {
                if earlier.path == o.path || (served && earlier.file_name() == o.file_name()) {
                    self.problems.push(Problem {
                        file: self.file.clone(),
                        line: 0,
                        column: 0,
                        key: format!("output[{}].path", i + 1),
                        message: format!("`{}` is also another output's file name", o.file_name()),
                    });
                }
            }
        }
    }

    fn path(&mut self, raw: toml::Spanned<String>, key: &str) -> PathBuf {
        let text = raw.get_ref();
        if text.trim().is_empty() {
            self.report(raw.span(), key, "must not be empty");
        }
        self.base.join(text)
    }

    fn report(&mut self, span: std::ops::Range<usize>, key: impl Into<String>, message: impl Into<String>) {
        self.problems.push(self.locator.problem(span, key, message));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("/etc/tributary/t.toml"), text)
    }

    #[test]
    fn defaults_and_relative_paths() {
        let c = parse("[[feed]]\nurl = \"feeds/a.xml\"\n[[output]]\npath = \"out/all.atom\"\n").unwrap();
        assert_eq!(c.store.path, Path::new("/etc/tributary/tributary.db"));
        assert_eq!(c.feeds[0].url.as_str(), "file:///etc/tributary/feeds/a.xml");
        assert_eq!(c.outputs[0].path, Path::new("/etc/tributary/out/all.atom"));
        assert_eq!(c.outputs[0].limit, 100);
        assert!(c.outputs[0].id.starts_with("urn:uuid:"));
        assert_eq!(c.poll.timeout, Duration::from_secs(30));
        assert!(c.poll.user_agent.starts_with("tributary/"));
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let err = parse("[poll]\nconcurency = 3\n").unwrap_err();
        let p = &err.problems[0];
        assert_eq!((p.line, p.column), (2, 1));
        assert_eq!(p.key, "poll.concurency");
        assert_eq!(
            p.to_string(),
            "/etc/tributary/t.toml:2:1: poll.concurency: unknown key `concurency`; did you mean `concurrency`?"
        );
    }

    #[test]
    fn validation_collects_every_problem() {
        let err = parse(
            "[poll]\ntimeout = \"soon\"\n[[feed]]\nurl = \"gopher://x\"\n[[output]]\npath = \"a\"\nformat = \"xml\"\n",
        )
        .unwrap_err();
        let keys: Vec<_> = err.problems.iter().map(|p| (p.key.as_str(), p.line)).collect();
        assert_eq!(
            keys,
            [("poll.timeout", 2), ("feed[1].url", 4), ("output[1].format", 7)]
        );
    }

    #[test]
    fn unknown_keys_and_invalid_values_are_all_reported() {
        let err = parse(
            "[poll]\ntimout = \"3s\"\nschedule = \"every hour\"\n[[feed]]\nurl = \"a\"\nexclude = [\"(\"]\n",
        )
        .unwrap_err();
        let got: Vec<_> = err.problems.iter().map(|p| (p.key.as_str(), p.line)).collect();
        assert_eq!(
            got,
            [("poll.timout", 2), ("poll.schedule", 3), ("feed[1].exclude", 6)]
        );
        assert!(err.problems[0].message.contains("did you mean `timeout`?"));
    }

    #[test]
    fn wrong_type_names_the_key() {
        let err = parse("[[feed]]\nurl = \"a\"\n[[feed]]\nurl = 5\n").unwrap_err();
        assert_eq!(err.problems[0].key, "feed[2].url");
        assert_eq!(err.problems[0].line, 4);
    }
}
