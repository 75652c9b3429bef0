//! Owns the long-running service (`tributary run`): a control loop that only waits and
//! dispatches, and the work it hands out as tasks.
//!
//! Each feed's next due time lives in the store, written by the commit that records its poll
//! (see [`crate::schedule::due`]). The loop sleeps until the earliest one, claims the feeds that
//! are due with one range scan of the due-time index (so a wake-up costs O(due feeds), never
//! O(feeds)), and hands them to the one [`Poller`] it keeps, which polls them within the
//! budget while the loop goes on waiting. Everything slow runs as a task whose result comes
//! back to the loop: claiming, rendering (one task per output at most, a request during a
//! render coalesced into one more), housekeeping, config reloads and WebSub pings. So signals
//! and the watchdog are answered within moments whatever the daemon is doing.
//!
//! Every `now` comes from one [`Clock`]: production uses the system clock, tests tokio's
//! paused time, which drives the same loop through days of schedule in milliseconds. Signals
//! arrive as [`Control`] messages from the caller, so this module is driven the same way by
//! `cli` and by tests.
//!
//! Its rooms: this file starts the daemon and holds its state; `control` the loop and the
//! shutdown; `claims` claiming due feeds and recording rounds; `renders` outputs and
//! webhooks; `reloads` the config read again; `sources` pushes, lists and WebSub
//! subscriptions; `upkeep` housekeeping, the cluster's heartbeat and notices; `cluster` a
//! node's place in a cluster; `notify` systemd.

mod claims;
mod cluster;
mod control;
mod notify;
mod reloads;
mod renders;
mod sources;
mod upkeep;

// What the daemon's rooms share (each room reaches the rest through `super::*`).
use claims::{CLAIM_BATCH, Round, ScanResult};
use reloads::{Reloaded, index_feeds};
use renders::{RENDER_EVERY, Renders, Webhooks, has_webhooks};
use sources::WebSub;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};

use crate::config::{Config, ConfigError};
use crate::fetch::{FetchError, Fetcher};
use crate::model::{Claimed, OutputSpec, Scheduled};
use crate::output::{self, OutputError, OutputReport};
use crate::poll::{self, FeedReport, FeedStatus, Poller};
use crate::push;
use crate::schedule::{Clock, Policy, SystemClock, clock::sleep_until};
use crate::serve::{Door, FetchOutcome, ListenError, Listening, PUSHES_WAITING, PolledFeed, Pushed, Server};
use crate::store::{Notice, Retention, Store, StoreError};

/// What the outside world asks of a running daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// SIGTERM / SIGINT: finish or abandon in-flight fetches (after the grace period) and exit.
    /// A second `Stop` during shutdown exits at once.
    Stop,
    /// SIGHUP: load the config again; keep the running one if the new one is invalid.
    Reload,
}

#[derive(Debug, thiserror::Error)]
/// Why the daemon could not start or had to stop.
pub enum DaemonError {
    #[error("invalid configuration\n{0}")]
    /// The config file is invalid.
    Config(#[from] ConfigError),
    #[error(transparent)]
    /// The store could not be opened or failed.
    Store(#[from] StoreError),
    #[error("cannot set up the HTTP client: {0}")]
    /// The HTTP client could not be set up.
    Fetch(#[from] FetchError),
    #[error(transparent)]
    /// The subscription lists' members could not be read.
    Lists(#[from] crate::lists::WithMembersError),
    #[error(transparent)]
    /// A listener of the built-in server could not be bound.
    Listen(#[from] ListenError),
}

/// How long HTTP requests in flight may take to finish at shutdown.
const SERVER_GRACE: Duration = Duration::from_secs(2);

/// Runs the daemon until a [`Control::Stop`] (or the channel closes).
pub(crate) async fn run(config_path: &Path, control: mpsc::Receiver<Control>) -> Result<(), DaemonError> {
    run_with_clock(config_path, control, Arc::new(SystemClock)).await
}

/// [`run`] with time from `clock`: the tests drive the daemon through days of schedule on
/// paused time with it.
pub async fn run_with_clock(
    config_path: &Path,
    mut control: mpsc::Receiver<Control>,
    clock: Arc<dyn Clock>,
) -> Result<(), DaemonError> {
    let config = Config::load(config_path)?;
    // One daemon per SQLite file; a PostgreSQL store is shared by the nodes of a cluster.
    let store = Store::open_daemon(&config.backend()).await?;
    // Claims under this daemon's name (every claim, on SQLite) were left by one that crashed.
    store.release_leases(None).await?;
    // On PostgreSQL this node is one of a cluster: listening before it reads the lists below,
    // so a list that changes meanwhile is heard of.
    let cluster = cluster::Cluster::join(&config, &store, clock.now()).await?;
    // With its subscription lists' feeds, as the store holds them (fetched again below).
    let config = Arc::new(crate::lists::with_members(config, &store).await?);
    let fetcher = Fetcher::new(&config.poll)?;
    poll::prepare(&config, &config.feeds, &store, clock.now(), true).await?;
    let mut poller = Poller::new(&config, fetcher.clone(), store.clone(), clock.clone()).await?;
    if let Some(cluster) = &cluster {
        // `poll.per_host` for the cluster, not per node.
        poller.share_turns(poll::SharedTurns {
            cluster: cluster.coordination().clone(),
            hold: config.poll.timeout * 2,
            wait: cluster.lease + config.poll.timeout,
            freed: Default::default(),
            failing: Default::default(),
        });
    }
    let listening = Listening::start(config.clone(), store.clone()).await?;
    // Hubs call back on the public side: pushes come to the loop through a bounded channel.
    let verified = Arc::new(tokio::sync::Notify::new());
    let (callbacks, pushes) = match listening.as_ref().map(|l| &l.server) {
        Some(server) => {
            let callbacks = push::Callbacks::of(&store).await?;
            let (sender, receiver) = mpsc::channel(PUSHES_WAITING);
            server.open_door(Door::new(callbacks.clone(), sender, verified.clone()));
            (Some(callbacks), Some(receiver))
        }
        None => (None, None),
    };
    let now = clock.now();
    let has_lists = !config.lists.is_empty();
    let mut daemon = Daemon {
        path: config_path.to_path_buf(),
        specs: index_feeds(&config),
        next_housekeeping: config.store.housekeeping.next_after(now),
        webhooks: Webhooks {
            pass: None,
            // What a crash or a stop left in the outbox is sent at once.
            next: has_webhooks(&config).then_some(now),
            failing: HashSet::new(),
        },
        config,
        store,
        fetcher,
        clock,
        poller,
        claimed: HashSet::new(),
        unrecorded: Vec::new(),
        store_failing: false,
        scan: None,
        next_wake: Some(now),
        more_due: false,
        renders: Renders::default(),
        changes_since: None,
        housekeeping: None,
        rest_pending: false,
        reload: None,
        round: None,
        summary: String::from("no round yet"),
        failing: HashSet::new(),
        listening,
        next_tick: cluster.as_ref().map(|_| now),
        cluster,
        follows: JoinSet::new(),
        tick: None,
        icon_looks: Vec::new(),
        icon_tasks: JoinSet::new(),
        // Renewals and unsubscriptions due since the last run are made at start.
        next_lists: has_lists.then_some(now),
        list_pass: None,
        websub: WebSub {
            // Renewals and unsubscriptions due since the last run are made at start.
            next_pass: callbacks.as_ref().map(|_| now),
            callbacks,
            pushes,
            push_tasks: JoinSet::new(),
            verified,
            pushing: HashMap::new(),
            found_hubs: Vec::new(),
            subscribed: HashSet::new(),
            pass: None,
        },
    };
    tracing::info!(
        version = %env!("CARGO_PKG_VERSION"),
        config = %daemon.path.display(),
        feeds = daemon.config.feeds.len(),
        outputs = daemon.config.outputs.len(),
        "tributary started"
    );
    notify::ready(&daemon.status());
    // The outputs as the store has them, so a restarted daemon serves at once.
    daemon.follow_all();
    daemon.request_render();
    let exit = daemon.main_loop(&mut control).await;
    if let Some(listening) = daemon.listening.take() {
        listening.stop(SERVER_GRACE).await;
    }
    // Tasks still running go with the daemon (renders are aborted; an output is written whole
    // or not at all). Writes already queued are committed before the store closes.
    let store = daemon.store.clone();
    drop(daemon);
    if exit == Exit::Graceful {
        store.close().await;
    }
    tracing::info!("tributary stopped");
    Ok(())
}

#[derive(Debug, PartialEq, Eq)]
enum Exit {
    Graceful,
    /// A second stop request: leave without waiting for anything.
    Immediate,
}

struct Daemon {
    path: PathBuf,
    config: Arc<Config>,
    /// `config.feeds` by URL.
    specs: HashMap<String, usize>,
    store: Store,
    fetcher: Fetcher,
    clock: Arc<dyn Clock>,
    poller: Poller,
    /// The built-in server, answering on its listeners (with `[serve]`).
    listening: Option<Listening>,
    /// Feeds claimed and not yet reported (queued or being polled).
    claimed: HashSet<i64>,
    /// Feeds whose poll could not be recorded (the store failed): their claims are released
    /// with the next claim, so they are due again once the store works.
    unrecorded: Vec<i64>,
    /// The store is failing: logged when it starts and when it ends, not per feed.
    store_failing: bool,
    /// A claim of due feeds in progress.
    scan: Option<JoinHandle<ScanResult>>,
    /// When the earliest feed not claimed yet is due.
    next_wake: Option<DateTime<Utc>>,
    /// The last claim hit its limit: claim again as soon as the queue runs low.
    more_due: bool,
    renders: Renders,
    /// Entries changed since the last render was asked for (when the first change was).
    changes_since: Option<Instant>,
    housekeeping: Option<JoinHandle<()>>,
    next_housekeeping: Option<DateTime<Utc>>,
    reload: Option<JoinHandle<Result<Reloaded, String>>>,
    round: Option<Round>,
    /// Work since the daemon last went quiet held memory (a round, a render, housekeeping):
    /// give it back once nothing runs.
    rest_pending: bool,
    summary: String,
    /// Feeds whose last poll failed (by store id): the STATUS line counts them, not only the
    /// last round's failures, while they back off between rounds.
    failing: HashSet<i64>,
    /// This node's part in a cluster (on a PostgreSQL store).
    cluster: Option<cluster::Cluster>,
    /// Outputs the leader published, being read and written here (a following node).
    follows: JoinSet<Option<OutputReport>>,
    /// A cluster tick in progress (heartbeat, renewals, the lead), and when the next is due.
    tick: Option<JoinHandle<Result<cluster::Tick, StoreError>>>,
    next_tick: Option<DateTime<Utc>>,
    /// The webhook outbox: its pass in progress, when the next is due, what is failing.
    webhooks: Webhooks,
    /// Icon looks due from this round's polls, made when it ends; and those being made (how
    /// many new images each found).
    icon_looks: Vec<poll::IconLook>,
    icon_tasks: JoinSet<usize>,
    /// WebSub: callbacks, pushes and the pass over the subscriptions.
    websub: WebSub,
    /// A fetch of the subscription lists that are due, and when the next list is due.
    list_pass: Option<JoinHandle<Result<crate::lists::Refresh, StoreError>>>,
    next_lists: Option<DateTime<Utc>>,
}

impl Daemon {}
