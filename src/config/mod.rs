//! Owns the configuration: TOML text → raw serde mirror (`raw`) → validated [`Config`].
//!
//! Validation resolves relative paths against the config file's directory, parses durations
//! and sizes, and collects *every* problem it finds, each naming file, line, column and key.
//! Nothing downstream ever sees an unvalidated value.

mod error;
mod include;
mod keys;
mod raw;

use std::path::{Path, PathBuf};
use std::time::Duration;

use url::Url;

use error::Locator;
pub use error::{ConfigError, Problem};
pub use keys::schema;
use raw::RawConfig;

use crate::model::{
    CronSchedule, CrossFeedDedupe, FeedSpec, Field, ListSpec, Memberships, OutputFormat, OutputSpec, Pattern,
    Pick, Pointer, Rewrite, Rule, RuleTable, Rules, Scrape, Source, Words, add_tags,
};

/// The default User-Agent: who we are and where to read about us, so publishers can reach us.
pub(crate) const DEFAULT_USER_AGENT: &str = concat!(
    "tributary/",
    env!("CARGO_PKG_VERSION"),
    " (+",
    env!("CARGO_PKG_REPOSITORY"),
    ")"
);

pub(crate) const DEFAULT_CONCURRENCY: usize = 32;
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
pub(crate) const DEFAULT_MAX_BODY: u64 = 10 * 1024 * 1024;
pub(crate) const DEFAULT_OUTPUT_LIMIT: usize = 100;
pub(crate) const DEFAULT_STORE_PATH: &str = "tributary.db";
pub(crate) const DEFAULT_SCHEDULE: &str = "*/15 * * * *";
pub(crate) const DEFAULT_JITTER: Duration = Duration::from_secs(5 * 60);
pub(crate) const DEFAULT_PER_HOST: usize = 2;
pub(crate) const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
pub(crate) const DEFAULT_KEEP_DAYS: u32 = 365;
pub(crate) const DEFAULT_KEEP_PER_FEED: usize = 1000;
pub(crate) const DEFAULT_HOUSEKEEPING: &str = "23 * * * *";
pub(crate) const DEFAULT_NEW_FEED_ENTRIES: usize = 10;
pub(crate) const DEFAULT_MAX_CONNECTIONS: usize = 1024;
pub(crate) const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
pub(crate) const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
pub(crate) const DEFAULT_GIVE_UP_AFTER: Duration = Duration::from_secs(30 * 24 * 60 * 60);
/// Half a year without a new entry: a blog its author stopped writing (Planet Venus's
/// `activity_threshold` default).
pub(crate) const DEFAULT_INACTIVE_AFTER: Duration = Duration::from_secs(180 * 24 * 60 * 60);

/// The fields of a `scrape` table in [`keys::SCRAPE`] order, when the required two are there.
fn scrape_of<P>([item, link, title, date, content, author]: [Option<P>; 6]) -> Option<Scrape<P>> {
    Some(Scrape {
        item: item?,
        link: link?,
        title,
        date,
        content,
        author,
    })
}

impl Config {
    /// The store this config names: PostgreSQL when `store.url` is given, else SQLite.
    pub fn backend(&self) -> crate::model::Backend {
        match &self.store.url {
            Some(url) => crate::model::Backend::Server {
                url: url.clone(),
                node: self.node.name.clone(),
            },
            None => crate::model::Backend::File(self.store.path.clone()),
        }
    }
}

/// A validated configuration. Paths are absolute; values are in their final types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The file this was loaded from.
    pub source: PathBuf,
    pub store: StoreConfig,
    /// This node's part in a cluster (used with a PostgreSQL store).
    pub node: NodeConfig,
    pub poll: PollConfig,
    pub feeds: Vec<FeedSpec>,
    /// The subscription lists: each `[[list]]`, then the lists they include (as far as the
    /// members the config was loaded with say).
    pub lists: Vec<ListSpec>,
    pub outputs: Vec<OutputSpec>,
    /// The built-in HTTP server, when a `[serve]` table is present.
    pub serve: Option<ServeConfig>,
    /// Subscribing to the WebSub hubs feeds name.
    pub websub: WebSubConfig,
    /// A hash of the config text. A feed found gone (410) under one version of the config is
    /// polled again once the config changes: the operator has looked at it since.
    pub fingerprint: String,
    /// Things that work but are probably not what was meant (`check` prints them).
    pub warnings: Vec<Problem>,
    /// The file itself holds secrets (a password in a URL, a header value written out rather
    /// than taken from `${NAME}`): `check` warns when others can read it.
    pub holds_secrets: bool,
    /// Line and column of the keys that checks after validation report on (`store.path`,
    /// `output[N].path`, `output[N].template`), so that they too name their place.
    pub places: std::collections::HashMap<String, (PathBuf, usize, usize)>,
    /// Each feed's position in `feeds`, by its store key: what selection looks feeds up by,
    /// built once per config rather than at every render of an output of 100,000 feeds.
    pub feed_positions: std::collections::HashMap<String, usize, foldhash::fast::RandomState>,
    /// Each output's number in the file (`output[N]`), by its position in `outputs`: the same
    /// unless the config has problems, where an output that could not be read is left out and
    /// the rest must still be named as the operator wrote them.
    pub output_numbers: Vec<usize>,
    /// The file each feed is written in, by its position in `feeds`: the main file, or one it
    /// includes (`add`, `import` and `remove` edit only the main one).
    pub feed_files: Vec<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeConfig {
    /// Where the outputs are served (the public side).
    pub listen: std::net::SocketAddr,
    /// Where `/healthz` and `/metrics` are served: the operator's side, loopback by default;
    /// `None` (`admin_listen = "same"`, or `listen`'s own address) serves them beside the outputs.
    pub admin_listen: Option<std::net::SocketAddr>,
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

/// `[websub]`: feeds whose hub pushes them (W3C WebSub), when the daemon has a public address
/// for the hubs to call back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSubConfig {
    /// Subscribe to the hubs feeds name (default: when `serve.base_url` is set; it must be).
    pub subscribe: bool,
    /// How often a pushed feed is still polled; `None`: twelve times its schedule's interval,
    /// at most a day.
    pub poll_every: Option<Duration>,
    /// The lease asked of hubs (a hub may grant another); renewed before it ends.
    pub lease: Duration,
}

/// The lease asked of hubs by default.
pub const DEFAULT_WEBSUB_LEASE: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// One node of a cluster sharing a PostgreSQL store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeConfig {
    /// The node's name in claims and heartbeats: its own on every node (default: the host name).
    pub name: String,
    /// How long a claim on a due feed lasts unless renewed: how soon the others take over the
    /// feeds of a node that died.
    pub lease: Duration,
}

/// A node's name when the config gives none: the host name.
pub fn default_node_name() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "tributary".to_string())
}

/// How long a node's claims last by default.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// The SQLite database (the default store; unused when `url` is given).
    pub path: PathBuf,
    /// A PostgreSQL connection string, `${NAME}` references read: the shared store of a cluster.
    pub url: Option<String>,
    /// Entries older than this many days are removed (0: never), unless an output shows them.
    pub keep_days: u32,
    /// At most this many entries per feed are kept (0: no limit), unless an output shows them.
    pub keep_per_feed: usize,
    /// When the daemon runs retention, the planner's statistics, checkpoints and incremental vacuum.
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
    /// the environment's proxy is not used then (it would resolve names where the guard cannot
    /// check; a feed's own `proxy` is, with its hosts checked first).
    pub deny_private_networks: bool,
    /// Read `file://` sources even while `deny_private_networks` is on.
    pub allow_files: bool,
    /// Look for each feed's icon (once a week, conditionally), for the page and the outputs.
    pub icons: bool,
    /// Tell each feed's publisher, in the User-Agent, how many read the outputs that carry it.
    pub announce_readers: bool,
    /// Private or reserved networks that URLs from content (and, with
    /// `deny_private_networks`, the operator's) may still reach.
    pub allow_networks: Vec<ipnet::IpNet>,
    /// Fixed answers for host names, before DNS (an /etc/hosts of Tributary's own).
    pub resolve: std::collections::BTreeMap<String, Vec<std::net::IpAddr>>,
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
    /// A feed with nothing new for this long is marked inactive (`feeds`); zero: never.
    pub inactive_after: Duration,
}

impl Config {
    /// Reads and validates the config file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Self::parse(path, &read(path)?)
    }

    /// Validates config `text` as if read from `path` (relative paths resolve against its directory).
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        Self::parse_with(path, text, &Secrets::from_process())
    }

    /// Reads and validates the config file at `path`, its subscription lists expanded to the
    /// feeds `members` lists (the store's last good member sets): the config as it is polled.
    pub fn load_with_lists(path: &Path, members: &Memberships) -> Result<Config, ConfigError> {
        Self::parse_full(path, &read(path)?, &Secrets::from_process(), members)
    }

    /// [`Config::parse`] with the places secrets are read from given (tests).
    pub(crate) fn parse_with(path: &Path, text: &str, secrets: &Secrets) -> Result<Config, ConfigError> {
        Self::parse_full(path, text, secrets, &Memberships::new())
    }

    fn parse_full(
        path: &Path,
        text: &str,
        secrets: &Secrets,
        members: &Memberships,
    ) -> Result<Config, ConfigError> {
        // One name for the file everywhere: the absolute path it was read from.
        let path = &std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let base = base_dir(path);
        let mut locator = Locator::new(path, text);
        let included = include::gather(path, &base, &mut locator);
        let (raw, mut problems): (RawConfig, Vec<Problem>) = raw::read(locator.source(), &locator);
        problems.extend(included);
        // Every file read: a change to an included one is a change of the config.
        let fingerprint = fingerprint(locator.source());
        Validator {
            file: path.to_path_buf(),
            locator,
            base,
            problems,
            warnings: Vec::new(),
            seen_urls: std::collections::HashMap::new(),
            files_refused: false,
            secrets,
            members,
            uses_secrets: false,
            places: std::collections::HashMap::new(),
        }
        .validate(path, raw, fingerprint)
    }
}

/// The text of the config file at `path`, or why it cannot be read.
fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|e| ConfigError {
        partial: None,
        problems: vec![Problem {
            file: path.to_path_buf(),
            line: 0,
            column: 0,
            key: String::new(),
            message: format!("cannot read config: {e}"),
        }],
    })
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

/// Loopback, on the port after the public one (port 0, "any", stays 0).
fn default_admin_listen(listen: std::net::SocketAddr) -> std::net::SocketAddr {
    let port = if listen.port() == 0 {
        0
    } else {
        listen.port().wrapping_add(1)
    };
    std::net::SocketAddr::from(([127, 0, 0, 1], port))
}

/// The word a regex that failed to compile was probably meant to be, when it reads as a glob
/// (`*91视频*`, `casino?`) or a plain word: what `*_words` would take.
fn glob_or_word(pattern: &str) -> Option<String> {
    let word = pattern.trim_matches(|c: char| matches!(c, '*' | '?' | '+') || c.is_whitespace());
    let plain = !word.is_empty() && !word.contains(|c: char| "\\^$.|()[]{}*?+".contains(c));
    plain.then(|| word.to_string())
}

/// Whether a source written as a relative path looks like a host name someone meant as a URL
/// (`example.org/feed.xml`): its first segment has a dot and ends in letters, like a domain.
fn looks_like_a_host(text: &str) -> bool {
    let first = text.split(['/', '?', '#']).next().unwrap_or("");
    // An address, or a name with a port: `127.0.0.2:8701`, `feeds.example:8080`, `[::1]:80`.
    if let Some((host, port)) = first.rsplit_once(':')
        && !port.is_empty()
        && port.chars().all(|c| c.is_ascii_digit())
        && !host.is_empty()
    {
        return true;
    }
    if first.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    let Some((name, tld)) = first.rsplit_once('.') else {
        return false;
    };
    !name.is_empty()
        && !first.starts_with('.')
        && tld.len() >= 2
        && tld.chars().all(|c| c.is_ascii_alphabetic())
        && first
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'))
        && !matches!(
            tld.to_ascii_lowercase().as_str(),
            "xml" | "rss" | "atom" | "json" | "rdf" | "txt" | "html" | "htm" | "opml"
        )
}

/// Most items one webhook request carries, unless the webhook says.
const DEFAULT_WEBHOOK_ITEMS: usize = 50;
/// How long a webhook delivery is retried, unless the webhook says.
const DEFAULT_WEBHOOK_RETRY: Duration = Duration::from_secs(24 * 3600);

/// A Standard Webhooks secret's signing key: `whsec_` and base64 (or the base64 alone), of 24
/// to 64 bytes, as the specification has them and its libraries read them.
fn webhook_key(secret: &str) -> Result<Vec<u8>, String> {
    use base64::Engine as _;
    let encoded = secret.strip_prefix("whsec_").unwrap_or(secret);
    let key = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|_| {
            "must be a Standard Webhooks secret: whsec_ and base64 (generate one: \
             echo whsec_$(openssl rand -base64 32))"
                .to_string()
        })?;
    if !(24..=64).contains(&key.len()) {
        return Err(format!(
            "is {} bytes once decoded; a webhook secret has 24 to 64 (echo whsec_$(openssl rand -base64 32))",
            key.len()
        ));
    }
    Ok(key)
}

/// Where `${…}` references in the config are read from: the environment, files, and systemd
/// credentials.
#[derive(Debug, Clone, Default)]
pub struct Secrets {
    env: std::collections::HashMap<String, String>,
    credentials: Option<PathBuf>,
}

impl Secrets {
    /// The process's environment and `$CREDENTIALS_DIRECTORY` (set by systemd's
    /// `LoadCredential=`).
    pub(crate) fn from_process() -> Secrets {
        Secrets {
            env: std::env::vars().collect(),
            credentials: std::env::var_os("CREDENTIALS_DIRECTORY").map(PathBuf::from),
        }
    }

    /// `text` with its references replaced; the error names the reference, never a secret.
    pub(crate) fn expand(&self, text: &str, base: &Path) -> Result<String, String> {
        if !text.contains('$') {
            return Ok(text.to_string());
        }
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(at) = rest.find('$') {
            out.push_str(&rest[..at]);
            let after = &rest[at..];
            if let Some(literal) = after.strip_prefix("$${") {
                out.push_str("${");
                rest = literal;
                continue;
            }
            let Some(body) = after.strip_prefix("${") else {
                out.push('$');
                rest = &after[1..];
                continue;
            };
            let close = body
                .find('}')
                .ok_or_else(|| "`${` without a closing `}`".to_string())?;
            let reference = &body[..close];
            out.push_str(self.lookup(reference, base)?.trim_end_matches(['\n', '\r']));
            rest = &body[close + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    fn lookup(&self, reference: &str, base: &Path) -> Result<String, String> {
        let read = |path: &Path, what: &str| {
            std::fs::read_to_string(path)
                .map_err(|e| format!("`${{{reference}}}`: cannot read {what} {}: {e}", path.display()))
        };
        if let Some(file) = reference.strip_prefix("file:") {
            return read(&base.join(file), "the file");
        }
        if let Some(name) = reference.strip_prefix("credential:") {
            let Some(dir) = &self.credentials else {
                return Err(format!(
                    "`${{{reference}}}`: no systemd credentials here (CREDENTIALS_DIRECTORY is not set; \
                     see LoadCredential= in the unit)"
                ));
            };
            if name.contains('/') {
                return Err(format!("`${{{reference}}}`: a credential name has no `/`"));
            }
            return read(&dir.join(name), "the credential");
        }
        let valid = !reference.is_empty() && reference.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(format!(
                "`${{{reference}}}` is not a reference: write ${{NAME}}, ${{file:PATH}} or ${{credential:NAME}}"
            ));
        }
        self.env
            .get(reference)
            .cloned()
            .ok_or_else(|| format!("the environment variable {reference} (in `${{{reference}}}`) is not set"))
    }
}

struct Validator<'a> {
    file: PathBuf,
    locator: Locator,
    base: PathBuf,
    problems: Vec<Problem>,
    /// Things that work but are probably not what was meant.
    warnings: Vec<Problem>,
    /// Feeds seen so far by canonical URL, with the URL as written.
    seen_urls: std::collections::HashMap<String, String>,
    /// Local files are refused as sources (the private-network guard is on).
    files_refused: bool,
    secrets: &'a Secrets,
    /// What the subscription lists hold, by list key.
    members: &'a Memberships,
    /// The file itself holds secrets (passwords in URLs, header values written out).
    uses_secrets: bool,
    /// See [`Config::places`].
    places: std::collections::HashMap<String, (PathBuf, usize, usize)>,
}

impl Validator<'_> {
    fn validate(mut self, path: &Path, raw: RawConfig, fingerprint: String) -> Result<Config, ConfigError> {
        let url = self.store_url(raw.store.url, raw.store.path.is_some());
        let node = self.node(raw.node);
        let store = StoreConfig {
            url,
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
        let (feed_files, feeds): (Vec<PathBuf>, Vec<FeedSpec>) = raw
            .feed
            .into_iter()
            .enumerate()
            .filter_map(|(i, f)| {
                let file = self.locator.file_of(f.span.start).to_path_buf();
                self.feed(i + 1, f).map(|spec| (file, spec))
            })
            .unzip();
        let mut feeds = feeds;
        let mut feed_files = feed_files;
        let lists: Vec<ListSpec> = raw
            .list
            .into_iter()
            .enumerate()
            .filter_map(|(i, l)| self.list(i + 1, l))
            .collect();
        let lists = self.expand_lists(lists, &mut feeds);
        feed_files.resize(feeds.len(), path.to_path_buf());
        let serve = raw.serve.map(|s| self.serve(s));
        let base_url = serve.as_ref().and_then(|s: &ServeConfig| s.base_url.clone());
        let websub = self.websub(raw.websub, base_url.is_some());
        let planet = std::sync::Arc::new(match raw.rules {
            Some(rules) => self.rule_table(rules, "[rules]", "rules."),
            None => RuleTable::default(),
        });
        let (output_numbers, outputs): (Vec<usize>, Vec<OutputSpec>) = raw
            .output
            .into_iter()
            .enumerate()
            .filter_map(|(i, o)| {
                self.output(i + 1, o, &feeds, !lists.is_empty(), base_url.as_ref(), &planet)
                    .map(|spec| (i + 1, spec))
            })
            .unzip();
        self.distinct_outputs(&outputs, &output_numbers, serve.is_some());
        let config = Config {
            source: path.to_path_buf(),
            store,
            node,
            poll,
            outputs,
            lists,
            serve,
            websub,
            fingerprint,
            warnings: self.warnings,
            holds_secrets: self.uses_secrets,
            places: self.places,
            output_numbers,
            feed_files,
            feed_positions: feeds
                .iter()
                .enumerate()
                .map(|(i, f)| (f.key.clone(), i))
                .collect(),
            feeds,
        };
        if self.problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError {
                problems: self.problems,
                partial: Some(Box::new(config)),
            })
        }
    }

    /// `store.url`: a PostgreSQL connection string (URL or `host=… dbname=…`), its `${NAME}`
    /// references read. Not together with `store.path`: one store or the other.
    fn store_url(&mut self, raw: Option<toml::Spanned<String>>, with_path: bool) -> Option<String> {
        let raw = raw?;
        if with_path {
            self.report(
                raw.span(),
                "store.url",
                "give store.path (SQLite) or store.url (PostgreSQL), not both",
            );
        }
        if !crate::model::is_server_url(raw.get_ref()) {
            self.report(
                raw.span(),
                "store.url",
                "must be a PostgreSQL connection string: postgres://USER@HOST/DB, postgresql://…, \
                 or host=/run/postgresql dbname=…",
            );
            return None;
        }
        let expanded = self.expand(&raw, "store.url")?;
        // The store parses the string when it connects (and `check` asks it to, to report a
        // malformed one here); a password written into the config itself is a secret in the
        // file, which `check` warns about.
        let literal_password = match url::Url::parse(raw.get_ref()) {
            Ok(url) => url.password().is_some(),
            Err(_) => raw
                .get_ref()
                .split_whitespace()
                .any(|kv| kv.starts_with("password=")),
        };
        if literal_password && !raw.get_ref().contains("${") {
            self.uses_secrets = true;
        }
        self.places
            .insert("store.url".into(), self.locator.place(raw.span().start));
        Some(expanded)
    }

    fn node(&mut self, raw: raw::RawNode) -> NodeConfig {
        let name = match raw.name {
            Some(n) if n.get_ref().trim().is_empty() => {
                self.report(n.span(), "node.name", "must not be empty");
                None
            }
            Some(n) => Some(n.get_ref().trim().to_string()),
            None => None,
        };
        let lease = self.duration(raw.lease.clone(), "node.lease", false);
        if let (Some(lease), Some(raw)) = (lease, &raw.lease)
            && lease < Duration::from_secs(5)
        {
            self.report(
                raw.span(),
                "node.lease",
                "must be at least 5s: a claim is renewed every third of it",
            );
        }
        NodeConfig {
            name: name.unwrap_or_else(default_node_name),
            lease: lease.unwrap_or(DEFAULT_LEASE),
        }
    }

    fn poll(&mut self, raw: raw::RawPoll) -> PollConfig {
        let allow_networks = self.networks(raw.allow_networks);
        let resolve = self.fixed_answers(raw.resolve);
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
        let inactive_after = self
            .duration(raw.inactive_after, "poll.inactive_after", true)
            .unwrap_or(DEFAULT_INACTIVE_AFTER);
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
            icons: raw.icons.unwrap_or(true),
            announce_readers: raw.announce_readers.unwrap_or(false),
            allow_networks,
            resolve,
            schedule,
            jitter,
            per_host,
            shutdown_grace,
            give_up_after,
            inactive_after,
        }
    }

    /// `poll.allow_networks`: networks in CIDR notation (`10.1.0.0/16`, `fd00::/8`), or single
    /// addresses.
    fn networks(&mut self, raw: Vec<toml::Spanned<String>>) -> Vec<ipnet::IpNet> {
        let mut networks = Vec::new();
        for item in raw {
            let text = item.get_ref().trim();
            let parsed = text
                .parse::<ipnet::IpNet>()
                .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from));
            match parsed {
                Ok(net) => networks.push(net.trunc()),
                Err(_) => self.report(
                    item.span(),
                    "poll.allow_networks",
                    format!("`{text}` is not a network: write e.g. \"10.1.0.0/16\" or \"fd00::/8\""),
                ),
            }
        }
        networks
    }

    /// `poll.resolve`: host name → addresses (comma-separated), looked up before DNS.
    fn fixed_answers(
        &mut self,
        raw: Option<toml::Spanned<std::collections::BTreeMap<String, toml::Spanned<String>>>>,
    ) -> std::collections::BTreeMap<String, Vec<std::net::IpAddr>> {
        let mut answers = std::collections::BTreeMap::new();
        for (host, addresses) in raw.map(toml::Spanned::into_inner).unwrap_or_default() {
            let mut ips = Vec::new();
            for address in addresses.get_ref().split(',').map(str::trim) {
                match address.parse::<std::net::IpAddr>() {
                    Ok(ip) => ips.push(ip),
                    Err(_) => self.report(
                        addresses.span(),
                        format!("poll.resolve.{host}"),
                        format!("`{address}` is not an IP address"),
                    ),
                }
            }
            answers.insert(host.to_ascii_lowercase(), ips);
        }
        answers
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

    /// A table's `tags`: none empty.
    fn tags(&mut self, raw: Vec<toml::Spanned<String>>, key: &str) -> Vec<String> {
        let mut tags = Vec::new();
        for tag in raw {
            if tag.get_ref().trim().is_empty() {
                self.report(tag.span(), key, "tags must not be empty");
            } else {
                tags.push(tag.into_inner());
            }
        }
        tags
    }

    /// A `[[list]]`: where its OPML is, and the defaults of its feeds.
    fn list(&mut self, n: usize, raw: raw::RawList) -> Option<ListSpec> {
        let key = |k: &str| format!("list[{n}].{k}");
        let rules = Rules::of([std::sync::Arc::new(self.rule_table(
            raw.rules,
            &format!("list[{n}]"),
            &key(""),
        ))]);
        let schedule = self.cron_opt(raw.schedule, &key("schedule"));
        let tags = self.tags(raw.tags, &key("tags"));
        let Some(raw_url) = raw.url else {
            self.report(
                raw.span,
                format!("list[{n}]"),
                "missing `url`: every [[list]] needs one",
            );
            return None;
        };
        let url = self.source_url(&raw_url, &key("url"))?;
        Some(ListSpec {
            key: crate::model::feed_key(&url),
            url,
            tags,
            schedule,
            full_text: raw.full_text.unwrap_or(false),
            rules,
            included_by: None,
        })
    }

    /// The lists' feeds, as the members they were loaded with say, added to `feeds`: an
    /// outline's title, site and tags (its folder and categories, and its list's tags), the
    /// list's schedule, `full_text` and rules. A `[[feed]]` of the same URL keeps its own keys
    /// and takes the list's tags too (and the outline's title, site and the list's schedule
    /// where it sets none). Included lists are followed (taking the defaults of the list that
    /// includes them); the include that closes a loop is skipped, and said. Returns every list,
    /// the included ones after the config's.
    fn expand_lists(&mut self, lists: Vec<ListSpec>, feeds: &mut Vec<FeedSpec>) -> Vec<ListSpec> {
        let mut all: Vec<ListSpec> = Vec::new();
        let mut queue: std::collections::VecDeque<(ListSpec, Vec<String>)> =
            lists.into_iter().map(|l| (l.clone(), vec![l.key])).collect();
        let mut at: std::collections::HashMap<String, usize> = feeds
            .iter()
            .enumerate()
            .map(|(i, f)| (f.key.clone(), i))
            .collect();
        while let Some((list, chain)) = queue.pop_front() {
            if all.iter().any(|l| l.key == list.key) {
                continue;
            }
            for member in self.members.get(&list.key).into_iter().flatten() {
                let Some(url) = list.member_url(member) else {
                    continue;
                };
                let key = crate::model::feed_key(&url);
                if member.include {
                    if chain.contains(&key) {
                        self.warnings.push(Problem {
                            file: self.file.clone(),
                            line: 0,
                            column: 0,
                            key: "list".into(),
                            message: format!(
                                "list {} includes {}, which includes it back: that include is skipped \
                                 (both lists' own feeds are kept)",
                                crate::model::display_url(&list.url),
                                crate::model::display_url(&url)
                            ),
                        });
                        continue;
                    }
                    let mut chain = chain.clone();
                    chain.push(key);
                    queue.push_back((list.include(member, url), chain));
                    continue;
                }
                let mut tags = list.tags.clone();
                add_tags(&mut tags, &member.tags);
                match at.get(&key).and_then(|i| feeds.get_mut(*i)) {
                    Some(feed) => {
                        add_tags(&mut feed.tags, &tags);
                        if feed.list.is_none() {
                            // A [[feed]]: its own keys win.
                            feed.title = feed.title.take().or_else(|| member.title.clone());
                            feed.site = feed.site.take().or_else(|| member.site.clone());
                            feed.schedule = feed.schedule.take().or_else(|| list.schedule.clone());
                        }
                    }
                    None => {
                        at.insert(key.clone(), feeds.len());
                        feeds.push(FeedSpec {
                            key,
                            url,
                            title: member.title.clone(),
                            site: member.site.clone().filter(|s| {
                                Url::parse(s).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
                            }),
                            tags,
                            schedule: list.schedule.clone(),
                            ignore_hints: false,
                            disabled: false,
                            rules: list.rules.clone(),
                            headers: Vec::new(),
                            full_text: list.full_text,
                            rewrite: Vec::new(),
                            source: crate::model::Source::Feed,
                            lang: None,
                            timezone: None,
                            timeout: None,
                            proxy: None,
                            list: Some(list.key.clone()),
                        });
                    }
                }
            }
            all.push(list);
        }
        all
    }

    fn feed(&mut self, n: usize, raw: raw::RawFeed) -> Option<FeedSpec> {
        let key = |k: &str| format!("feed[{n}].{k}");
        let Some(raw_url) = raw.url else {
            self.report(
                raw.span.clone(),
                format!("feed[{n}]"),
                "missing `url`: every [[feed]] needs one",
            );
            // The rest is checked all the same, so one run reports every problem.
            self.rule_table(raw.rules, &format!("feed[{n}]"), &key(""));
            self.cron_opt(raw.schedule, &key("schedule"));
            return None;
        };
        let url = self.source_url(&raw_url, &key("url"));
        if self.files_refused && url.as_ref().is_some_and(|u| u.scheme() == "file") {
            self.report(
                raw_url.span(),
                key("url"),
                "local files are refused while poll.deny_private_networks is on \
                 (set poll.allow_files = true to read them)",
            );
        }
        if let Some(url) = &url {
            let canonical = crate::model::canonical_url(&crate::model::feed_key(url));
            match self.seen_urls.get(&canonical) {
                Some(first) if first == url.as_str() => {
                    self.report(raw_url.span(), key("url"), format!("`{url}` is configured twice"));
                }
                Some(first) => {
                    let message = format!(
                        "`{}` is the same feed as `{}` configured before it (they differ only in case, \
                         default port, fragment or tracking parameters); it would be fetched twice",
                        crate::model::display_url(url),
                        first
                    );
                    self.report(raw_url.span(), key("url"), message);
                }
                None => {
                    self.seen_urls.insert(canonical, crate::model::display_url(url));
                }
            }
        }
        let title = raw.title.map(|t| t.into_inner()).filter(|t| !t.trim().is_empty());
        let site = match raw.site {
            Some(s) => match Url::parse(s.get_ref()) {
                Ok(u) if matches!(u.scheme(), "http" | "https") => Some(u.to_string()),
                _ => {
                    self.report(
                        s.span(),
                        key("site"),
                        format!("`{}` is not an http(s) URL", s.get_ref()),
                    );
                    None
                }
            },
            None => None,
        };
        let tags = self.tags(raw.tags, &key("tags"));
        let schedule = self.cron_opt(raw.schedule, &key("schedule"));
        let rules = Rules::of([std::sync::Arc::new(self.rule_table(
            raw.rules,
            &format!("feed[{n}]"),
            &key(""),
        ))]);
        let rewrite = self.rewrites(raw.rewrite, &key("rewrite"));
        let source = self.source(raw.kind, raw.scrape, raw.span.clone(), &key(""));
        let lang = self.language(raw.lang, &key("lang"));
        let timezone = self.timezone(raw.timezone, &key("timezone"));
        let timeout = self.duration(raw.timeout, &key("timeout"), false);
        let proxy = raw.proxy.and_then(|p| self.proxy(&p, &key("proxy")));
        let mut headers = Vec::new();
        if let Some(table) = raw.headers {
            for (name, value) in table.into_inner() {
                let header_key = key(&format!("headers.{name}"));
                let span = value.span();
                let literal = !value.get_ref().contains("${");
                let Some(expanded) = self.expand(&value, &header_key) else {
                    continue;
                };
                if literal && !expanded.trim().is_empty() {
                    self.uses_secrets = true;
                }
                let valid_name = http::HeaderName::try_from(name.as_str()).is_ok();
                let valid_value = http::HeaderValue::try_from(expanded.as_str()).is_ok();
                if valid_name && valid_value {
                    headers.push((name, expanded));
                } else {
                    // The value may be a secret: the message names the header only.
                    self.report(
                        span,
                        header_key,
                        format!("`{name}` is not a valid HTTP header name and value"),
                    );
                }
            }
        }
        let url = url?;
        if url.password().is_some() && !raw_url.get_ref().contains("${") {
            self.uses_secrets = true;
        }
        Some(FeedSpec {
            key: crate::model::feed_key(&url),
            url,
            title,
            site,
            tags,
            schedule,
            ignore_hints: raw.ignore_hints.unwrap_or(false),
            full_text: raw.full_text.unwrap_or(false),
            disabled: raw.disabled.unwrap_or(false),
            rules,
            rewrite,
            headers,
            source,
            lang,
            timezone,
            timeout,
            proxy,
            list: None,
        })
    }

    /// An output's icon or logo: an absolute http(s) URL, or a reference relative to where the
    /// output is published (resolved against `self_url` when it has one).
    fn image_url(
        &mut self,
        raw: &toml::Spanned<String>,
        key: &str,
        self_url: Option<&str>,
    ) -> Option<String> {
        let text = raw.get_ref().trim();
        match Url::parse(text) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => Some(url.to_string()),
            Err(url::ParseError::RelativeUrlWithoutBase) if !text.is_empty() => Some(
                self_url
                    .and_then(|base| Url::parse(base).ok()?.join(text).ok())
                    .map_or_else(|| text.to_string(), String::from),
            ),
            _ => {
                self.report(
                    raw.span(),
                    key,
                    "must be an http(s) URL, or a path relative to where the output is published",
                );
                None
            }
        }
    }

    /// A proxy URL: http:// or https://, with a host; `${NAME}` and the like expanded (a
    /// password in it is a secret like any other).
    fn proxy(&mut self, raw: &toml::Spanned<String>, key: &str) -> Option<Url> {
        let expanded = self.expand(raw, key)?;
        match Url::parse(expanded.trim()) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host_str().is_some() => {
                if url.password().is_some() && !raw.get_ref().contains("${") {
                    self.uses_secrets = true;
                }
                Some(url)
            }
            // The value may hold a password: the message shows only what it is not.
            _ => {
                self.report(
                    raw.span(),
                    key,
                    "not a proxy URL: write http://HOST:PORT or https://HOST:PORT (user:password@ \
                     for one that asks)",
                );
                None
            }
        }
    }

    /// `kind` and its `scrape` table: a feed (the default), or a page or JSON API with a
    /// selector or JSON Pointer per field. Every bad selector is reported at its place.
    fn source(
        &mut self,
        kind: Option<toml::Spanned<String>>,
        scrape: Option<toml::Spanned<std::collections::BTreeMap<String, toml::Spanned<String>>>>,
        feed_span: std::ops::Range<usize>,
        prefix: &str,
    ) -> Source {
        const KINDS: &[&str] = &["feed", "html", "json"];
        let kind_name = kind.as_ref().map_or("feed", |k| k.get_ref().as_str());
        let kind_span = kind.as_ref().map_or(feed_span.clone(), |k| k.span());
        if !KINDS.contains(&kind_name) {
            self.report(
                kind_span,
                format!("{prefix}kind"),
                format!(
                    "unknown kind `{kind_name}`{}",
                    keys::did_you_mean(kind_name, KINDS)
                ),
            );
            return Source::Feed;
        }
        let Some(scrape) = scrape else {
            if kind_name != "feed" {
                self.report(
                    kind_span,
                    format!("{prefix}scrape"),
                    format!(
                        "kind = \"{kind_name}\" needs a `scrape` table naming at least `item` and `link`"
                    ),
                );
            }
            return Source::Feed;
        };
        let table_span = scrape.span();
        if kind_name == "feed" {
            self.report(
                table_span,
                format!("{prefix}scrape"),
                "`scrape` is for kind = \"html\" or \"json\"; a feed is read as it is",
            );
            return Source::Feed;
        }
        let mut fields = scrape.into_inner();
        for (name, value) in &fields {
            if !keys::SCRAPE.contains(&name.as_str()) {
                let message = format!(
                    "unknown field `{name}`{}",
                    keys::did_you_mean(name, &keys::SCRAPE)
                );
                self.report(value.span(), format!("{prefix}scrape.{name}"), message);
            }
        }
        for required in ["item", "link"] {
            if !fields.contains_key(required) {
                self.report(
                    table_span.clone(),
                    format!("{prefix}scrape.{required}"),
                    format!("`scrape` needs `{required}` (entries are known by their link)"),
                );
            }
        }
        let raw = keys::SCRAPE.map(|name| {
            fields
                .remove(name)
                .map(|value| (format!("{prefix}scrape.{name}"), value))
        });
        if kind_name == "html" {
            let picks = raw.map(|v| v.and_then(|(key, value)| self.pick(value, &key)));
            if let Some(item) = picks[0].as_ref().filter(|i| i.selector.is_none()) {
                let message = format!("scrape.item `{}` must select elements of the page", item.css);
                self.report(feed_span, format!("{prefix}scrape.item"), message);
                return Source::Feed;
            }
            scrape_of(picks).map_or(Source::Feed, Source::Html)
        } else {
            let pointers = raw.map(|v| v.and_then(|(key, value)| self.pointer(value, &key)));
            scrape_of(pointers).map_or(Source::Feed, Source::Json)
        }
    }

    /// `CSS[@attr]`: a selector (empty: the item itself) and the attribute to take.
    fn pick(&mut self, raw: toml::Spanned<String>, key: &str) -> Option<Pick> {
        let span = raw.span();
        let text = raw.into_inner();
        let (css, attr) = match text.rsplit_once('@') {
            Some((css, attr))
                if !attr.is_empty()
                    && attr
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':' | '.')) =>
            {
                (css.trim(), Some(attr.to_string()))
            }
            _ => (text.trim(), None),
        };
        // An empty selector is the item element itself.
        let parsed = (!css.is_empty())
            .then(|| scraper::Selector::parse(css))
            .transpose();
        match parsed {
            Ok(selector) => Some(Pick {
                css: text.clone(),
                selector,
                attr,
            }),
            Err(e) => {
                let message = format!("invalid CSS selector `{css}`: {e}");
                self.report(span, key, message);
                None
            }
        }
    }

    /// A JSON Pointer: empty (the value itself) or starting with `/`.
    fn pointer(&mut self, raw: toml::Spanned<String>, key: &str) -> Option<Pointer> {
        let span = raw.span();
        let text = raw.into_inner();
        if text.is_empty() || text.starts_with('/') {
            Some(Pointer(text))
        } else {
            let message =
                format!("`{text}` is not a JSON Pointer; write it from the item down, like \"/{text}\"");
            self.report(span, key, message);
            None
        }
    }

    /// `raw` with `${NAME}` (an environment variable), `${file:PATH}` (a file's content) and
    /// `${credential:NAME}` (a systemd credential, `$CREDENTIALS_DIRECTORY/NAME`) replaced;
    /// `$${` is a literal `${`. A reference that cannot be read is reported, naming the
    /// reference, never the secret.
    fn expand(&mut self, raw: &toml::Spanned<String>, key: &str) -> Option<String> {
        match self.secrets.expand(raw.get_ref(), &self.base) {
            Ok(text) => Some(text),
            Err(message) => {
                self.report(raw.span(), key, message);
                None
            }
        }
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
        let expanded = self.expand(raw, key)?;
        let text = expanded.trim();
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
                if looks_like_a_host(text) && !path.exists() {
                    self.warn(
                        raw.span(),
                        key,
                        format!(
                            "`{text}` is read as a file next to the config, which does not exist; \
                             did you mean `https://{text}`?"
                        ),
                    );
                }
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
        has_lists: bool,
        base_url: Option<&Url>,
        planet: &std::sync::Arc<RuleTable>,
    ) -> Option<OutputSpec> {
        let key = |k: &str| format!("output[{n}].{k}");
        // An output with webhooks may have no file: it only notifies.
        let webhook_only = raw.path.is_none() && !raw.webhooks.is_empty();
        let webhooks: Vec<crate::model::WebhookSpec> =
            raw.webhooks.into_iter().filter_map(|w| self.webhook(w)).collect();
        let raw_path = match raw.path {
            Some(p) => p,
            None if webhook_only => toml::Spanned::new(raw.span.clone(), String::new()),
            None => {
                self.report(
                    raw.span.clone(),
                    format!("output[{n}]"),
                    "missing `path`: every [[output]] needs one (or a `webhook`, to only notify)",
                );
                toml::Spanned::new(raw.span.clone(), String::new())
            }
        };
        let path_text = raw_path.get_ref().clone();
        let path = if webhook_only {
            // Its name in the store (what it announced, its deliveries): its first webhook's.
            webhooks
                .first()
                .map(|w| PathBuf::from(format!("webhook:{}", w.name())))
        } else if path_text.trim().is_empty() {
            if !raw_path.span().is_empty() && raw_path.span() != raw.span {
                self.report(raw_path.span(), key("path"), "must not be empty");
            }
            None
        } else {
            Some(self.path(raw_path, &key("path")))
        };
        let format = match raw.format {
            // What it sends is JSON Feed; it has no file to be in another format.
            Some(f) if webhook_only && f.get_ref() != "json" => {
                self.report(
                    f.span(),
                    key("format"),
                    "an output without a `path` only sends webhooks, as JSON Feed items: \
                     give it a `path` to write a file in another format",
                );
                None
            }
            _ if webhook_only => Some(OutputFormat::Json),
            Some(f) => match OutputFormat::from_name(f.get_ref()) {
                Some(format) => Some(format),
                None => {
                    let hint = keys::did_you_mean(f.get_ref(), OutputFormat::NAMES);
                    self.report(
                        f.span(),
                        key("format"),
                        format!("unknown format `{}`{hint}", f.get_ref()),
                    );
                    None
                }
            },
            // What the file's name says it is (`index.html` is a page), else Atom.
            None => Some(
                path.as_deref()
                    .and_then(|p| p.extension())
                    .and_then(|e| OutputFormat::from_extension(&e.to_string_lossy()))
                    .unwrap_or(OutputFormat::Atom),
            ),
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
        let feeds = self.selection(raw.tags, raw.feeds, all_feeds, has_lists, &key);
        let own = self.rule_table(raw.rules, &format!("output[{n}]"), &key(""));
        let rules = Rules::of([planet.clone(), std::sync::Arc::new(own)]);
        let dedupe = match raw.dedupe {
            None => CrossFeedDedupe::Link,
            Some(d) => match d.get_ref().as_str() {
                "link" => CrossFeedDedupe::Link,
                "none" => CrossFeedDedupe::None,
                other => {
                    let hint = keys::did_you_mean(other, &["link", "none"]);
                    self.report(d.span(), key("dedupe"), format!("unknown value `{other}`{hint}"));
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
        // Where subscribers fetch it: its own `url`, else the server's base_url + file name.
        let self_url = match raw.url {
            Some(u) => match Url::parse(u.get_ref()) {
                Ok(url) if matches!(url.scheme(), "http" | "https") => Some(url.to_string()),
                _ => {
                    self.report(u.span(), key("url"), "must be an absolute http(s) URL");
                    None
                }
            },
            None if webhook_only => None,
            None => base_url.and_then(|b| b.join(&file_name).ok()).map(String::from),
        };
        if self_url.is_none()
            && !webhook_only
            && matches!(
                format,
                Some(OutputFormat::Atom | OutputFormat::Rss | OutputFormat::Json)
            )
        {
            self.warn(
                raw.span.clone(),
                format!("output[{n}]"),
                "it has no address: readers get no self link (Atom rel=\"self\", RSS atom:link, JSON \
                 Feed feed_url), which some need to follow a move; set [serve] base_url, or this \
                 output's `url`",
            );
        }
        let lang = self.language(raw.lang, &key("lang"));
        let timezone = self.timezone(raw.timezone, &key("timezone"));
        let languages = raw
            .languages
            .into_iter()
            .filter_map(|range| match range.get_ref().as_str() {
                "*" => Some("*".to_string()),
                _ => self.language(Some(range), &key("languages")),
            })
            .collect();
        Some(OutputSpec {
            lang,
            timezone,
            languages,
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
            icon: raw
                .icon
                .and_then(|i| self.image_url(&i, &key("icon"), self_url.as_deref())),
            logo: raw
                .logo
                .and_then(|l| self.image_url(&l, &key("logo"), self_url.as_deref())),
            self_url,
            file: !webhook_only,
            webhooks,
            on_change: self.command(raw.on_change, &key("on_change")),
            show_readers: raw.show_readers.unwrap_or(false),
        })
    }

    /// A command as `["program", "arg", …]`: run as it is, never through a shell. A program
    /// named without a `/` is looked up on PATH; a relative path is the config's directory's.
    fn command(&mut self, raw: Vec<toml::Spanned<String>>, key: &str) -> Vec<String> {
        let Some(program) = raw.first() else {
            return Vec::new();
        };
        if program.get_ref().trim().is_empty() {
            self.report(program.span(), key, "must name a program first");
            return Vec::new();
        }
        let mut argv: Vec<String> = raw.iter().map(|a| a.get_ref().clone()).collect();
        if argv[0].contains('/') {
            argv[0] = self.base.join(&argv[0]).display().to_string();
        }
        argv
    }

    /// A `webhook = { url, secret, max_items, retry_for }` of an output.
    fn webhook(&mut self, raw: raw::RawWebhook) -> Option<crate::model::WebhookSpec> {
        let key = |name: &str| format!("{}.{name}", raw.key);
        let Some(raw_url) = raw.url else {
            self.report(
                raw.span.clone(),
                raw.key.clone(),
                "missing `url`: where to POST new entries",
            );
            return None;
        };
        let url = match self.expand(&raw_url, &key("url")).map(|u| Url::parse(u.trim())) {
            Some(Ok(url)) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => Some(url),
            Some(_) => {
                self.report(raw_url.span(), key("url"), "must be an http(s):// URL");
                None
            }
            None => None,
        };
        let secret = match raw.secret {
            Some(s) => {
                let literal = !s.get_ref().contains("${");
                let expanded = self.expand(&s, &key("secret"));
                if literal {
                    self.uses_secrets = true;
                }
                expanded.and_then(|text| match webhook_key(text.trim()) {
                    Ok(k) => Some(k),
                    Err(why) => {
                        self.report(s.span(), key("secret"), why);
                        None
                    }
                })
            }
            None => {
                self.report(
                    raw.span.clone(),
                    raw.key.clone(),
                    "missing `secret`: requests are signed with it (generate one: \
                     echo whsec_$(openssl rand -base64 32))",
                );
                None
            }
        };
        let max_items = match raw.max_items {
            Some(n) if *n.get_ref() < 1 || *n.get_ref() > 1000 => {
                self.report(n.span(), key("max_items"), "must be between 1 and 1000");
                None
            }
            Some(n) => usize::try_from(*n.get_ref()).ok(),
            None => Some(DEFAULT_WEBHOOK_ITEMS),
        };
        let retry_for = match raw.retry_for {
            Some(d) => self.duration(Some(d), &key("retry_for"), false),
            None => Some(DEFAULT_WEBHOOK_RETRY),
        };
        Some(crate::model::WebhookSpec {
            url: url?,
            key: secret?,
            max_items: max_items?,
            retry_for: retry_for?,
        })
    }

    /// The feeds an output draws from: those with one of `tags`, plus those listed in `feeds`
    /// (by URL as written or by title); every feed when both are empty.
    fn selection(
        &mut self,
        tags: Vec<toml::Spanned<String>>,
        listed: Vec<toml::Spanned<String>>,
        all: &[FeedSpec],
        has_lists: bool,
        key: &dyn Fn(&str) -> String,
    ) -> Vec<Url> {
        // A disabled feed is kept, but shown nowhere.
        let all: Vec<&FeedSpec> = all.iter().filter(|f| !f.disabled).collect();
        if tags.is_empty() && listed.is_empty() {
            return all.iter().map(|f| f.url.clone()).collect();
        }
        let mut chosen: std::collections::HashSet<Url> = std::collections::HashSet::new();
        for tag in &tags {
            let with_tag: Vec<&&FeedSpec> = all.iter().filter(|f| f.tags.contains(tag.get_ref())).collect();
            // A subscription list may bring feeds with it (its folders and categories are
            // tags): known only once it is fetched, so not a mistake before.
            if with_tag.is_empty() && !has_lists {
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
                None if has_lists => {}
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

    /// A feed's rewrite rules, each a table with one of `remove` or `unwrap` (a CSS selector)
    /// or `replace` (a regular expression, with an optional `with`).
    fn rewrites(&mut self, raw: Vec<raw::RawRule>, key: &str) -> Vec<Rewrite> {
        const SHAPE: &str = "a rewrite rule is { remove = \"CSS selector\" }, { unwrap = \"CSS selector\" } \
                             or { replace = \"regex\", with = \"text\" }";
        raw.into_iter()
            .filter_map(|r| {
                let span = r.span();
                let toml::Value::Table(t) = r.into_inner() else {
                    self.report(span, key, SHAPE);
                    return None;
                };
                let text = |k: &str| t.get(k).and_then(toml::Value::as_str).map(str::to_string);
                let with = text("with");
                let expected_len = 1 + usize::from(t.contains_key("with"));
                match (text("remove"), text("unwrap"), text("replace")) {
                    (Some(css), None, None) | (None, Some(css), None) if t.len() == 1 => {
                        let remove = t.contains_key("remove");
                        // The parser's error borrows the selector text; its message is enough.
                        let parsed = scraper::Selector::parse(&css).map_err(|e| e.to_string());
                        match parsed {
                            Ok(selector) if remove => Some(Rewrite::Remove { css, selector }),
                            Ok(selector) => Some(Rewrite::Unwrap { css, selector }),
                            Err(e) => {
                                self.report(span, key, format!("invalid CSS selector `{css}`: {e}"));
                                None
                            }
                        }
                    }
                    (None, None, Some(pattern))
                        if t.len() == expected_len && (with.is_some() || expected_len == 1) =>
                    {
                        match regex::Regex::new(&pattern) {
                            Ok(pattern) => Some(Rewrite::Replace {
                                pattern,
                                with: with.unwrap_or_default(),
                            }),
                            Err(e) => {
                                let first = e.to_string();
                                let first = first.lines().last().unwrap_or("").trim();
                                let first = first.strip_prefix("error: ").unwrap_or(first);
                                self.report(
                                    span,
                                    key,
                                    format!("invalid regular expression `{pattern}`: {first}"),
                                );
                                None
                            }
                        }
                    }
                    _ => {
                        self.report(span, key, SHAPE);
                        None
                    }
                }
            })
            .collect()
    }

    /// A language tag (`lang`, `languages`), checked against the IANA registry and written in
    /// its canonical form.
    fn language(&mut self, raw: Option<toml::Spanned<String>>, key: &str) -> Option<String> {
        let raw = raw?;
        match crate::text::language::checked(raw.get_ref()) {
            Ok(tag) => Some(tag),
            Err(e) => {
                self.report(raw.span(), key, e.to_string());
                None
            }
        }
    }

    /// An IANA time zone name (`timezone`).
    fn timezone(&mut self, raw: Option<toml::Spanned<String>>, key: &str) -> Option<chrono_tz::Tz> {
        let raw = raw?;
        match raw.get_ref().parse::<chrono_tz::Tz>() {
            Ok(tz) => Some(tz),
            Err(_) => {
                let message = format!(
                    "`{}` is not an IANA time zone name such as \"Asia/Shanghai\", \"Europe/Paris\" or \"UTC\"",
                    raw.get_ref()
                );
                self.report(raw.span(), key, message);
                None
            }
        }
    }

    /// One table's rules (`place` names it in verdicts; `prefix` is its keys' path): regexes
    /// compiled, word lists and word files folded into their automatons.
    fn rule_table(&mut self, raw: raw::RawRuleSet, place: &str, prefix: &str) -> RuleTable {
        let ignore_diacritics = raw.ignore_diacritics.unwrap_or(false);
        let mut include = self.regex_rules(raw.include, &format!("{prefix}include"));
        let mut exclude = self.regex_rules(raw.exclude, &format!("{prefix}exclude"));
        for (words, file, list, name) in [
            (raw.include_words, raw.include_words_file, &mut include, "include"),
            (raw.exclude_words, raw.exclude_words_file, &mut exclude, "exclude"),
        ] {
            let key = format!("{prefix}{name}_words");
            if let Some(rule) = self.word_list(words, &key, ignore_diacritics) {
                list.push(rule);
            }
            if let Some(file) = file
                && let Some(rule) = self.word_file(file, &format!("{key}_file"), ignore_diacritics)
            {
                list.push(rule);
            }
        }
        RuleTable {
            place: place.to_string(),
            include,
            exclude,
        }
    }

    /// `include` / `exclude`: each a regex (any field) or `{ field = "regex" }`.
    fn regex_rules(&mut self, raw: Vec<raw::RawRule>, key: &str) -> Vec<Rule> {
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
                                key,
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
                                key,
                                format!("`{k}` must be a regular expression (a string)"),
                            );
                            return None;
                        };
                        (field, p)
                    }
                    _ => {
                        self.report(
                            span,
                            key,
                            "a rule is a regex string, or a table with one field: { title = \"…\" }",
                        );
                        return None;
                    }
                };
                match regex::Regex::new(&pattern) {
                    Ok(regex) => Some(Rule {
                        field,
                        pattern: Pattern::Regex(regex),
                    }),
                    Err(e) => {
                        let first = e.to_string();
                        let first = first.lines().last().unwrap_or("").trim();
                        let first = first.strip_prefix("error: ").unwrap_or(first);
                        let mut message = format!("invalid regular expression `{pattern}`: {first}");
                        if let Some(word) = glob_or_word(&pattern) {
                            message.push_str(&format!(
                                "; it looks like a glob or a plain word: to match words and phrases \
                                 (no regex syntax), write {key}_words = [\"{word}\"]"
                            ));
                        }
                        self.report(span, key, message);
                        None
                    }
                }
            })
            .collect()
    }

    /// `*_words = [...]`: one rule for the whole list.
    fn word_list(
        &mut self,
        raw: Vec<toml::Spanned<String>>,
        key: &str,
        ignore_diacritics: bool,
    ) -> Option<Rule> {
        let span = raw.first()?.span().start..raw.last()?.span().end;
        for word in &raw {
            if word.get_ref().trim().is_empty() {
                self.report(word.span(), key, "a word must not be empty");
            }
        }
        let written: Vec<String> = raw
            .into_iter()
            .map(toml::Spanned::into_inner)
            .filter(|w| !w.trim().is_empty())
            .collect();
        self.words_rule(written, None, span, key, ignore_diacritics)
    }

    /// `*_words_file = "path"`: one word or phrase per line; blank lines and lines starting
    /// with `#` are skipped.
    fn word_file(&mut self, raw: toml::Spanned<String>, key: &str, ignore_diacritics: bool) -> Option<Rule> {
        let span = raw.span();
        let path = self.path(raw, key);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) => {
                self.report(span, key, format!("cannot read {}: {e}", path.display()));
                return None;
            }
        };
        let written: Vec<String> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_string)
            .collect();
        if written.is_empty() {
            self.warn(span.clone(), key, format!("{} holds no words", path.display()));
            return None;
        }
        self.words_rule(written, Some(path), span, key, ignore_diacritics)
    }

    fn words_rule(
        &mut self,
        written: Vec<String>,
        file: Option<PathBuf>,
        span: std::ops::Range<usize>,
        key: &str,
        ignore_diacritics: bool,
    ) -> Option<Rule> {
        if written.is_empty() {
            return None;
        }
        let words: Vec<&str> = written.iter().map(String::as_str).collect();
        match crate::text::fold::automaton(&words, ignore_diacritics) {
            Ok(automaton) => Some(Rule {
                field: Field::Any,
                pattern: Pattern::Words(std::sync::Arc::new(Words {
                    written,
                    automaton,
                    ignore_diacritics,
                    file,
                })),
            }),
            Err(e) => {
                let place = match (&e, &file) {
                    (crate::text::fold::AutomatonError::Empty(i), Some(f)) => {
                        format!(" (in {}: `{}`)", f.display(), written[*i])
                    }
                    (crate::text::fold::AutomatonError::Empty(i), None) => format!(" (`{}`)", written[*i]),
                    _ => String::new(),
                };
                self.report(span, key, format!("{e}{place}"));
                None
            }
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
        // Health and metrics are for the operator: on loopback by default, next to `listen`.
        let admin_listen = match raw.admin_listen {
            Some(l) if l.get_ref().trim() == "same" => None,
            Some(l) => match l.get_ref().parse::<std::net::SocketAddr>() {
                Ok(a) if a == listen && a.port() != 0 => None,
                Ok(a) => Some(a),
                Err(_) => {
                    self.report(
                        l.span(),
                        "serve.admin_listen",
                        format!(
                            "`{}` is not an address such as \"127.0.0.1:8081\" (or \"same\": beside the outputs)",
                            l.get_ref()
                        ),
                    );
                    None
                }
            },
            None => Some(default_admin_listen(listen)),
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
            admin_listen,
            base_url,
            websub_hub,
            max_connections,
            header_timeout,
            idle_timeout,
        }
    }

    fn websub(&mut self, raw: raw::RawWebSub, has_base_url: bool) -> WebSubConfig {
        if let Some(subscribe) = raw.subscribe.as_ref().filter(|s| *s.get_ref() && !has_base_url) {
            self.report(
                subscribe.span(),
                "websub.subscribe",
                "needs serve.base_url: hubs call the daemon back at its public address",
            );
        }
        let poll_every = self.duration(raw.poll_every, "websub.poll_every", false);
        let lease = self
            .duration(raw.lease, "websub.lease", false)
            .unwrap_or(DEFAULT_WEBSUB_LEASE);
        WebSubConfig {
            subscribe: raw.subscribe.map_or(has_base_url, toml::Spanned::into_inner),
            poll_every,
            lease,
        }
    }

    /// Two outputs may not write the same file, nor (when served) share a file name.
    fn distinct_outputs(&mut self, outputs: &[OutputSpec], numbers: &[usize], served: bool) {
        for (i, o) in outputs.iter().enumerate() {
            for earlier in &outputs[..i] {
                let both_served = served && o.file && earlier.file;
                if earlier.path == o.path || (both_served && earlier.file_name() == o.file_name()) {
                    let key = format!("output[{}].path", numbers[i]);
                    let (file, line, column) =
                        self.places
                            .get(&key)
                            .cloned()
                            .unwrap_or((self.file.clone(), 0, 0));
                    self.problems.push(Problem {
                        file,
                        line,
                        column,
                        key,
                        message: format!("`{}` is also another output's file name", o.file_name()),
                    });
                }
            }
        }
    }

    fn path(&mut self, raw: toml::Spanned<String>, key: &str) -> PathBuf {
        self.places
            .insert(key.to_string(), self.locator.place(raw.span().start));
        let text = raw.get_ref();
        if text.trim().is_empty() {
            self.report(raw.span(), key, "must not be empty");
        }
        self.base.join(text)
    }

    fn report(&mut self, span: std::ops::Range<usize>, key: impl Into<String>, message: impl Into<String>) {
        self.problems.push(self.locator.problem(span, key, message));
    }

    fn warn(&mut self, span: std::ops::Range<usize>, key: impl Into<String>, message: impl Into<String>) {
        self.warnings.push(self.locator.problem(span, key, message));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("/etc/tributary/t.toml"), text)
    }

    #[test]
    fn lists_expand_to_feeds_with_their_defaults_and_the_configs_feeds_keep_their_keys() {
        use crate::model::ListMember;
        let member = |url: &str, title: &str, tags: &[&str], include: bool| ListMember {
            url: url.into(),
            title: Some(title.into()),
            site: Some("https://a.example/".into()),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            include,
        };
        let members = Memberships::from([
            (
                "https://lists.example/planet.opml".to_string(),
                vec![
                    member("feeds/a.xml", "A", &["Tech"], false),
                    member("https://b.example/feed", "B from the list", &[], false),
                    member("more.opml", "More", &["extra"], true),
                    member("file:///etc/passwd", "No", &[], false),
                ],
            ),
            (
                "https://lists.example/more.opml".to_string(),
                vec![
                    member("https://d.example/feed", "D", &[], false),
                    member("https://lists.example/planet.opml", "Back", &[], true),
                ],
            ),
        ]);
        let text = "[[list]]\nurl = \"https://lists.example/planet.opml\"\ntags = [\"planet\"]\n\
                    schedule = \"0 * * * *\"\nfull_text = true\nexclude = [\"(?i)ad\"]\n\
                    [[feed]]\nurl = \"https://b.example/feed\"\ntitle = \"B by the config\"\n\
                    [[output]]\npath = \"o.atom\"\ntags = [\"extra\"]\n";
        let c = Config::parse_full(
            Path::new("/etc/tributary/t.toml"),
            text,
            &Secrets::from_process(),
            &members,
        )
        .unwrap();
        let feed = |url: &str| c.feeds.iter().find(|f| f.url.as_str() == url).unwrap();
        // A relative member is the list's; the list's defaults are its feeds'.
        let a = feed("https://lists.example/feeds/a.xml");
        assert_eq!(a.title.as_deref(), Some("A"));
        assert_eq!(a.tags, ["planet", "Tech"]);
        assert_eq!(a.list.as_deref(), Some("https://lists.example/planet.opml"));
        assert!(a.full_text && a.schedule.is_some() && !a.rules.is_empty());
        // The config's own feed keeps its keys, takes the list's tags, and is no list's.
        let b = feed("https://b.example/feed");
        assert_eq!(b.title.as_deref(), Some("B by the config"));
        assert_eq!(b.tags, ["planet"]);
        assert_eq!(b.list, None);
        assert!(!b.full_text);
        // The included list's feeds take the includer's defaults and the include's tags.
        let d = feed("https://d.example/feed");
        assert_eq!(d.tags, ["planet", "extra"]);
        assert_eq!(d.list.as_deref(), Some("https://lists.example/more.opml"));
        assert!(
            c.feeds.iter().all(|f| f.url.scheme() != "file"),
            "a list names no file"
        );
        assert_eq!(c.lists.len(), 2);
        assert_eq!(
            c.lists[1].included_by.as_deref(),
            Some("https://lists.example/planet.opml")
        );
        let looped: Vec<&Problem> = c.warnings.iter().filter(|p| p.key == "list").collect();
        assert_eq!(looped.len(), 1, "{looped:?}");
        assert!(looped[0].message.contains("includes it back"));
        assert!(!looped[0].message.contains("  "), "{}", looped[0].message);
        // Outputs select list feeds by the tags lists give them.
        assert_eq!(c.outputs[0].feeds.len(), 1);
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
    fn a_postgres_store_and_its_node() {
        let c = parse(
            "[store]\nurl = \"postgres://planet@db.example:5433/feeds\"\n[node]\nname = \"poller-2\"\nlease = \"45s\"\n",
        )
        .unwrap();
        assert_eq!(
            c.backend(),
            crate::model::Backend::Server {
                url: "postgres://planet@db.example:5433/feeds".into(),
                node: "poller-2".into()
            }
        );
        assert_eq!(c.node.lease, Duration::from_secs(45));
        assert!(parse("[store]\nurl = \"host=/run/postgresql dbname=feeds user=planet\"\n").is_ok());
        // The node's name defaults to the host's; SQLite stays the default store.
        let file = parse("").unwrap();
        assert!(matches!(file.backend(), crate::model::Backend::File(_)));
        assert!(!file.node.name.is_empty());

        let err = parse(
            "[store]\npath = \"t.db\"\nurl = \"postgres://a@b/c\"\n[node]\nlease = \"1s\"\nname = \"\"\n",
        )
        .unwrap_err();
        let found: Vec<_> = err
            .problems
            .iter()
            .map(|p| (p.key.as_str(), p.line, p.column))
            .collect();
        assert_eq!(
            found,
            [("store.url", 3, 7), ("node.name", 6, 8), ("node.lease", 5, 9)],
            "{err}"
        );
        assert!(err.to_string().contains("not both"), "{err}");
        let err = parse("[store]\nurl = \"mysql://a@b/c\"\n").unwrap_err();
        assert!(
            err.problems[0].message.contains("PostgreSQL connection string"),
            "{err}"
        );
        // A password from the environment is read, and no message repeats it.
        let err = parse("[store]\nurl = \"postgres://a:${TRIBUTARY_NO_SUCH_VAR}@b/c\"\n").unwrap_err();
        assert_eq!(err.problems[0].key, "store.url", "{err}");
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

    #[test]
    fn planet_rules_and_word_lists() {
        let dir = tempfile::tempdir().unwrap();
        // A fixture, not an output: written plainly.
        std::io::Write::write_all(
            &mut std::fs::File::create(dir.path().join("spam.txt")).unwrap(),
            "# spam seen on news sites\n亚洲91视频\n\n国产91网\n".as_bytes(),
        )
        .unwrap();
        let text = "[rules]\nexclude_words = [\"casino\"]\nexclude_words_file = \"spam.txt\"\n\
                    [[feed]]\nurl = \"a.xml\"\ninclude_words = [\"rust\"]\n\
                    [[output]]\npath = \"a.atom\"\nexclude = [\"(?i)sponsored\"]\n\
                    [[output]]\npath = \"b.atom\"\n";
        let c = Config::parse(&dir.path().join("t.toml"), text).unwrap();
        let places = |r: &Rules| r.tables.iter().map(|t| t.place.clone()).collect::<Vec<_>>();
        assert_eq!(places(&c.outputs[0].rules), ["[rules]", "output[1]"]);
        assert_eq!(places(&c.outputs[1].rules), ["[rules]"]);
        assert_eq!(places(&c.feeds[0].rules), ["feed[1]"]);
        let planet = &c.outputs[1].rules.tables[0];
        assert_eq!(planet.exclude.len(), 2);
        let Pattern::Words(words) = &planet.exclude[1].pattern else {
            panic!("a word list")
        };
        assert_eq!(words.written, ["亚洲91视频", "国产91网"]);
        assert_eq!(words.file.as_deref(), Some(dir.path().join("spam.txt").as_path()));
    }

    #[test]
    fn a_glob_written_as_a_regex_is_told_to_use_words() {
        let err = parse(
            "[rules]\nexclude = [\"*91视频*\"]\nexclude_words = [\" \"]\nexclude_words_file = \"nope.txt\"\n",
        )
        .unwrap_err();
        let got: Vec<_> = err.problems.iter().map(|p| (p.key.as_str(), p.line)).collect();
        assert_eq!(
            got,
            [
                ("rules.exclude", 2),
                ("rules.exclude_words", 3),
                ("rules.exclude_words_file", 4)
            ]
        );
        assert!(
            err.problems[0]
                .message
                .contains("looks like a glob or a plain word: to match words and phrases (no regex syntax), write rules.exclude_words = [\"91视频\"]"),
            "{}",
            err.problems[0].message
        );
        assert!(
            err.problems[2]
                .message
                .contains("cannot read /etc/tributary/nope.txt")
        );
    }
}
