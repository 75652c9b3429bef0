//! The validated configuration's types: what the rest of Tributary reads, every value in its
//! final type (paths absolute, durations parsed).

use super::*;

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
    pub(crate) source: PathBuf,
    /// `[store]`: where entries are kept.
    pub store: StoreConfig,
    /// This node's part in a cluster (used with a PostgreSQL store).
    pub(crate) node: NodeConfig,
    /// `[poll]`: the fetch budget, timeouts and limits.
    pub poll: PollConfig,
    /// Every `[[feed]]`, with those of the subscription lists when loaded with them.
    pub feeds: Vec<FeedSpec>,
    /// The subscription lists: each `[[list]]`, then the lists they include (as far as the
    /// members the config was loaded with say).
    pub(crate) lists: Vec<ListSpec>,
    /// Every `[[output]]`, in the config's order.
    pub outputs: Vec<OutputSpec>,
    /// The built-in HTTP server, when a `[serve]` table is present.
    pub serve: Option<ServeConfig>,
    /// Subscribing to the WebSub hubs feeds name.
    pub(crate) websub: WebSubConfig,
    /// A hash of the config text. A feed found gone (410) under one version of the config is
    /// polled again once the config changes: the operator has looked at it since.
    pub(crate) fingerprint: String,
    /// Things that work but are probably not what was meant (`check` prints them).
    pub(crate) warnings: Vec<Problem>,
    /// The file itself holds secrets (a password in a URL, a header value written out rather
    /// than taken from `${NAME}`): `check` warns when others can read it.
    pub(crate) holds_secrets: bool,
    /// Line and column of the keys that checks after validation report on (`store.path`,
    /// `output[N].path`, `output[N].template`), so that they too name their place.
    pub(crate) places: std::collections::HashMap<String, (PathBuf, usize, usize)>,
    /// Each feed's position in `feeds`, by its store key: what selection looks feeds up by,
    /// built once per config rather than at every render of an output of 100,000 feeds.
    pub(crate) feed_positions: std::collections::HashMap<String, usize, foldhash::fast::RandomState>,
    /// Each output's number in the file (`output[N]`), by its position in `outputs`: the same
    /// unless the config has problems, where an output that could not be read is left out and
    /// the rest must still be named as the operator wrote them.
    pub(crate) output_numbers: Vec<usize>,
    /// The file each feed is written in, by its position in `feeds`: the main file, or one it
    /// includes (`add`, `import` and `remove` edit only the main one).
    pub(crate) feed_files: Vec<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeConfig {
    /// Where the outputs are served (the public side).
    pub listen: std::net::SocketAddr,
    /// Where `/healthz` and `/metrics` are served: the operator's side, loopback by default;
    /// `None` (`admin_listen = "same"`, or `listen`'s own address) serves them beside the outputs.
    pub admin_listen: Option<std::net::SocketAddr>,
    /// The public URL the outputs are reachable under (self links, WebSub).
    pub(crate) base_url: Option<Url>,
    /// A WebSub hub to announce in feeds and to ping when an output changes.
    pub(crate) websub_hub: Option<Url>,
    /// Connections open at once (lowered to fit the descriptor limit); at the cap, the
    /// connection that waited longest without a request is closed for a newcomer.
    pub(crate) max_connections: usize,
    /// How long a client may take to send a request's headers.
    pub(crate) header_timeout: Duration,
    /// How long a kept-alive connection may sit idle between requests.
    pub(crate) idle_timeout: Duration,
}

/// `[websub]`: feeds whose hub pushes them (W3C WebSub), when the daemon has a public address
/// for the hubs to call back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WebSubConfig {
    /// Subscribe to the hubs feeds name (default: when `serve.base_url` is set; it must be).
    pub(crate) subscribe: bool,
    /// How often a pushed feed is still polled; `None`: twelve times its schedule's interval,
    /// at most a day.
    pub(crate) poll_every: Option<Duration>,
    /// The lease asked of hubs (a hub may grant another); renewed before it ends.
    pub(crate) lease: Duration,
}

/// The lease asked of hubs by default.
pub(crate) const DEFAULT_WEBSUB_LEASE: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// One node of a cluster sharing a PostgreSQL store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NodeConfig {
    /// The node's name in claims and heartbeats: its own on every node (default: the host name).
    pub(crate) name: String,
    /// How long a claim on a due feed lasts unless renewed: how soon the others take over the
    /// feeds of a node that died.
    pub(crate) lease: Duration,
}

/// A node's name when the config gives none: the host name.
pub(crate) fn default_node_name() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "tributary".to_string())
}

/// How long a node's claims last by default.
pub(crate) const DEFAULT_LEASE: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// The SQLite database (the default store; unused when `url` is given).
    pub path: PathBuf,
    /// A PostgreSQL connection string, `${NAME}` references read: the shared store of a cluster.
    pub(crate) url: Option<String>,
    /// Entries older than this many days are removed (0: never), unless an output shows them.
    pub(crate) keep_days: u32,
    /// At most this many entries per feed are kept (0: no limit), unless an output shows them.
    pub(crate) keep_per_feed: usize,
    /// When the daemon runs retention, the planner's statistics, checkpoints and incremental vacuum.
    pub(crate) housekeeping: CronSchedule,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollConfig {
    /// Fetches in flight at once, across all feeds.
    pub(crate) concurrency: usize,
    /// Whole-request limit: connect, headers and body.
    pub(crate) timeout: Duration,
    pub(crate) user_agent: String,
    /// Bodies (after decompression) larger than this are cut off and the fetch fails.
    pub(crate) max_body: u64,
    /// A feed's first poll shows at most this many of its entries in outputs (the rest are
    /// stored), so adding a feed does not flood subscribers with its back catalogue.
    pub(crate) new_feed_entries: usize,
    /// Refuse feeds and redirects that resolve to loopback, private or link-local addresses;
    /// the environment's proxy is not used then (it would resolve names where the guard cannot
    /// check; a feed's own `proxy` is, with its hosts checked first).
    pub(crate) deny_private_networks: bool,
    /// Read `file://` sources even while `deny_private_networks` is on.
    pub(crate) allow_files: bool,
    /// Look for each feed's icon (once a week, conditionally), for the page and the outputs.
    pub(crate) icons: bool,
    /// Tell each feed's publisher, in the User-Agent, how many read the outputs that carry it.
    pub(crate) announce_readers: bool,
    /// Private or reserved networks that URLs from content (and, with
    /// `deny_private_networks`, the operator's) may still reach.
    pub(crate) allow_networks: Vec<ipnet::IpNet>,
    /// Fixed answers for host names, before DNS (an /etc/hosts of Tributary's own).
    pub(crate) resolve: std::collections::BTreeMap<String, Vec<std::net::IpAddr>>,
    /// When feeds are due (each `[[feed]]` may override it).
    pub(crate) schedule: CronSchedule,
    /// Feeds sharing a schedule are spread over up to this much time after each fire time.
    pub(crate) jitter: Duration,
    /// Fetches in flight at once against one host.
    pub per_host: usize,
    /// On SIGTERM, how long in-flight fetches may take before they are abandoned.
    pub(crate) shutdown_grace: Duration,
    /// A feed failing for this long is reported abandoned (and still tried once a day).
    pub(crate) give_up_after: Duration,
    /// A feed with nothing new for this long is marked inactive (`feeds`); zero: never.
    pub(crate) inactive_after: Duration,
}
