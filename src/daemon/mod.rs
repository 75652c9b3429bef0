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

mod cluster;
mod notify;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};

use crate::config::{Config, ConfigError};
use crate::fetch::{FetchError, Fetcher};
use crate::model::OutputSpec;
use crate::output::{self, OutputError, OutputReport};
use crate::poll::{self, FeedReport, FeedStatus, Poller};
use crate::push;
use crate::schedule::{Clock, Policy, SystemClock, clock::sleep_until};
use crate::serve::{Door, FetchOutcome, ListenError, Listening, PUSHES_WAITING, PolledFeed, Pushed, Server};
use crate::store::{Claimed, Notice, Retention, Scheduled, Store, StoreError};

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
pub enum DaemonError {
    #[error("invalid configuration\n{0}")]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot set up the HTTP client: {0}")]
    Fetch(#[from] FetchError),
    #[error(transparent)]
    Lists(#[from] crate::lists::WithMembersError),
    #[error(transparent)]
    Listen(#[from] ListenError),
}

/// Most feeds one wake-up claims; more are claimed as these get under way.
const CLAIM_BATCH: usize = 1000;
/// A claim is a marker, not a deadline: one daemon per database, so a claim outlives a slow
/// queue without being taken twice, and the next start releases what a crash left behind.
const CLAIM_LEASE: Duration = Duration::from_secs(60 * 60);
/// During a round that goes on and on (feeds coming due faster than they finish), outputs are
/// rendered at least this often, rather than only when the round ends.
const RENDER_EVERY: Duration = Duration::from_secs(30);
/// First retry of an output that could not be written; doubles up to [`RENDER_RETRY_CAP`].
const RENDER_RETRY: Duration = Duration::from_secs(10);
const RENDER_RETRY_CAP: Duration = Duration::from_secs(10 * 60);
/// How long HTTP requests in flight may take to finish at shutdown.
const SERVER_GRACE: Duration = Duration::from_secs(2);

/// Runs the daemon until a [`Control::Stop`] (or the channel closes).
pub async fn run(config_path: &Path, control: mpsc::Receiver<Control>) -> Result<(), DaemonError> {
    run_with_clock(config_path, control, Arc::new(SystemClock)).await
}

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
    let listening = match &config.serve {
        Some(serve) => Some(Listening::start(config.clone(), store.clone(), serve).await?),
        None => None,
    };
    let server = listening.as_ref().map(|l| l.server.clone());
    // Hubs call back on the public side: pushes come to the loop through a bounded channel.
    let verified = Arc::new(tokio::sync::Notify::new());
    let (callbacks, pushes) = match &server {
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
        // What a crash or a stop left in the outbox is sent at once.
        next_delivery: has_webhooks(&config).then_some(now),
        config,
        store,
        fetcher,
        clock,
        poller,
        server,
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
        serving: listening.as_ref().map(|l| l.public),
        serving_admin: listening.as_ref().and_then(|l| l.admin),
        next_tick: cluster.as_ref().map(|_| now),
        cluster,
        follows: JoinSet::new(),
        tick: None,
        deliveries: None,
        webhooks_failing: HashSet::new(),
        icon_looks: Vec::new(),
        icon_tasks: JoinSet::new(),
        // Renewals and unsubscriptions due since the last run are made at start.
        next_websub: callbacks.as_ref().map(|_| now),
        next_lists: has_lists.then_some(now),
        list_pass: None,
        callbacks,
        pushes,
        push_tasks: JoinSet::new(),
        verified,
        pushing: HashMap::new(),
        found_hubs: Vec::new(),
        subscribed: HashSet::new(),
        websub_pass: None,
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
    if let Some(listening) = listening {
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

/// The feeds of `config` whose keys `pick` takes, as a log field: "0", or the count and
/// their URLs as written (the first ten).
fn named_feeds(config: &Config, pick: impl Fn(&str) -> bool) -> String {
    const SHOWN: usize = 10;
    let urls: Vec<String> = config
        .feeds
        .iter()
        .filter(|f| pick(&f.key))
        .map(|f| crate::model::display_url(&f.url))
        .collect();
    if urls.is_empty() {
        return "0".into();
    }
    let more = urls.len().saturating_sub(SHOWN);
    let mut s = format!("{} ({}", urls.len(), urls[..urls.len().min(SHOWN)].join(", "));
    if more > 0 {
        s.push_str(&format!(" and {more} more"));
    }
    s.push(')');
    s
}

/// Config feeds by the URL their store row is keyed by.
fn index_feeds(config: &Config) -> HashMap<String, usize> {
    config
        .feeds
        .iter()
        .enumerate()
        .map(|(i, f)| (f.key.clone(), i))
        .collect()
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
    server: Option<Server>,
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
    /// The address the HTTP server bound, if it serves.
    serving: Option<std::net::SocketAddr>,
    /// The address /healthz and /metrics are served on, when it is another one.
    serving_admin: Option<std::net::SocketAddr>,
    /// This node's part in a cluster (on a PostgreSQL store).
    cluster: Option<cluster::Cluster>,
    /// Outputs the leader published, being read and written here (a following node).
    follows: JoinSet<Option<OutputReport>>,
    /// A cluster tick in progress (heartbeat, renewals, the lead), and when the next is due.
    tick: Option<JoinHandle<Result<cluster::Tick, StoreError>>>,
    next_tick: Option<DateTime<Utc>>,
    /// A pass over the webhook outbox in progress, and when the next is due (`None`: no
    /// webhook has anything waiting).
    deliveries: Option<JoinHandle<Result<output::webhook::DeliveryPass, StoreError>>>,
    next_delivery: Option<DateTime<Utc>>,
    /// Webhooks (output, name) reported as giving deliveries up, until one is taken.
    webhooks_failing: HashSet<(String, String)>,
    /// Icon looks due from this round's polls, made when it ends; and those being made (how
    /// many new images each found).
    icon_looks: Vec<poll::IconLook>,
    icon_tasks: JoinSet<usize>,
    /// WebSub: the callbacks (when serving), the pushes hubs sent, those being stored (one
    /// at a time per feed, the next ones waiting), the hubs this round's polls found, and the
    /// pass over the subscriptions in progress and when the next is due.
    callbacks: Option<push::Callbacks>,
    pushes: Option<mpsc::Receiver<Pushed>>,
    push_tasks: JoinSet<(i64, Instant, Result<Option<FeedReport>, StoreError>)>,
    verified: Arc<tokio::sync::Notify>,
    pushing: HashMap<i64, std::collections::VecDeque<Pushed>>,
    found_hubs: Vec<(i64, crate::fetch::PushLinks)>,
    /// The feeds with a subscription, as the last pass found them.
    subscribed: HashSet<i64>,
    websub_pass: Option<JoinHandle<Result<push::Pass, StoreError>>>,
    next_websub: Option<DateTime<Utc>>,
    /// A fetch of the subscription lists that are due, and when the next list is due.
    list_pass: Option<JoinHandle<Result<crate::lists::Refresh, StoreError>>>,
    next_lists: Option<DateTime<Utc>>,
}

/// Pushes of one feed waiting while an earlier one is stored; beyond, the oldest is dropped
/// (the newest carries the feed as it is now).
const PUSHES_PER_FEED: usize = 4;

/// Whether any output has a webhook.
fn has_webhooks(config: &Config) -> bool {
    config.outputs.iter().any(|o| !o.webhooks.is_empty())
}

/// A claim of due feeds, or why it failed with the claims it was to release (kept for the
/// next one).
type ScanResult = Result<Claimed, (StoreError, Vec<i64>)>;

/// A round: feeds polled back to back, from the poller starting work until it runs dry.
#[derive(Debug)]
struct Round {
    started: Instant,
    polled: usize,
    failed: usize,
    new: usize,
    updated: usize,
}

/// A new config, loaded and checked, and the store made ready for it.
struct Reloaded {
    config: Config,
    fetcher: Fetcher,
}

/// The outputs being rendered: at most one task per output, and at most one more asked for.
struct Renders {
    /// Until the first round ends, an output without entries does not replace its file.
    mode: output::WhenEmpty,
    tasks: JoinSet<(PathBuf, Result<OutputReport, OutputError>)>,
    running: HashSet<PathBuf>,
    again: HashSet<PathBuf>,
    /// Outputs that failed to render: when to try again, and how many tries failed.
    retry: HashMap<PathBuf, (DateTime<Utc>, u32)>,
    /// Outputs recorded as failing in the store (cleared there at their next success).
    recorded_failing: HashSet<PathBuf>,
    /// What each output showed at its last successful render: retention keeps it.
    shown: HashMap<PathBuf, Arc<Vec<i64>>>,
    /// Outputs whose `on_change` failed: run again at the retry, changed file or not.
    hooks_owed: HashSet<PathBuf>,
}

impl Default for Renders {
    fn default() -> Renders {
        Renders {
            mode: output::WhenEmpty::Keep,
            tasks: JoinSet::new(),
            running: HashSet::new(),
            again: HashSet::new(),
            retry: HashMap::new(),
            recorded_failing: HashSet::new(),
            shown: HashMap::new(),
            hooks_owed: HashSet::new(),
        }
    }
}

impl Daemon {
    async fn main_loop(&mut self, control: &mut mpsc::Receiver<Control>) -> Exit {
        let mut watchdog = notify::watchdog_interval().map(tokio::time::interval);
        loop {
            let clock = self.clock.clone();
            let wake = self.wake_time();
            let render_due = self.render_due();
            let housekeeping_at = self.next_housekeeping.filter(|_| self.housekeeping.is_none());
            let room = self.poller.room_freed();
            tokio::select! {
                message = control.recv() => match message {
                    Some(Control::Reload) => self.start_reload(),
                    Some(Control::Stop) | None => break,
                },
                _ = async { watchdog.as_mut().expect("guarded").tick().await }, if watchdog.is_some() => {
                    notify::watchdog();
                }
                Some(result) = self.poller.next(), if self.poller.busy() => self.feed_done(result),
                // A fetch ended: room for a claim (see `wake_time`).
                () = room.notified(), if self.cluster.is_some() => {}
                result = async { self.scan.as_mut().expect("guarded").await }, if self.scan.is_some() => {
                    self.scan = None;
                    self.scan_done(result);
                }
                () = sleep_until(clock.as_ref(), wake.unwrap_or(DateTime::<Utc>::MAX_UTC)),
                    if wake.is_some() && self.scan.is_none() && self.reload.is_none() =>
                {
                    self.start_scan();
                }
                Some(done) = self.renders.tasks.join_next(), if !self.renders.tasks.is_empty() => {
                    match done {
                        Ok((path, result)) => self.render_done(path, result),
                        Err(e) => tracing::error!(error = %e, "render task failed"),
                    }
                }
                () = sleep_until(clock.as_ref(), render_due.unwrap_or(DateTime::<Utc>::MAX_UTC)),
                    if render_due.is_some() =>
                {
                    self.render_retries();
                }
                _ = async { self.housekeeping.as_mut().expect("guarded").await }, if self.housekeeping.is_some() => {
                    self.housekeeping = None;
                    self.rest_pending = true;
                }
                () = sleep_until(clock.as_ref(), housekeeping_at.unwrap_or(DateTime::<Utc>::MAX_UTC)),
                    if housekeeping_at.is_some() =>
                {
                    self.start_housekeeping();
                }
                result = async { self.reload.as_mut().expect("guarded").await }, if self.reload.is_some() => {
                    self.reload = None;
                    self.reload_done(result);
                }
                () = sleep_until(clock.as_ref(), self.next_tick.unwrap_or(DateTime::<Utc>::MAX_UTC)),
                    if self.next_tick.is_some() && self.tick.is_none() =>
                {
                    self.start_tick();
                }
                result = async { self.tick.as_mut().expect("guarded").await }, if self.tick.is_some() => {
                    self.tick = None;
                    self.tick_done(result);
                }
                Some(notice) = async { self.cluster.as_mut().expect("guarded").notice().await },
                    if self.cluster.is_some() =>
                {
                    self.heard(notice);
                }
                () = sleep_until(clock.as_ref(), self.next_delivery.unwrap_or(DateTime::<Utc>::MAX_UTC)),
                    if self.next_delivery.is_some() && self.deliveries.is_none() =>
                {
                    self.start_deliveries();
                }
                result = async { self.deliveries.as_mut().expect("guarded").await }, if self.deliveries.is_some() => {
                    self.deliveries = None;
                    self.deliveries_done(result);
                }
                Some(found) = self.icon_tasks.join_next(), if !self.icon_tasks.is_empty() => {
                    // New icons: the outputs that show them render again.
                    if found.unwrap_or(0) > 0 {
                        self.request_render_where(|s| {
                            matches!(s.format, crate::model::OutputFormat::Html | crate::model::OutputFormat::Atom | crate::model::OutputFormat::Json)
                        });
                    }
                }
                Some(pushed) = async { self.pushes.as_mut().expect("guarded").recv().await }, if self.pushes.is_some() => {
                    self.pushed(pushed);
                }
                // A hub verified a subscription: when it is renewed is the pass's to say.
                () = self.verified.notified(), if self.callbacks.is_some() => {
                    self.next_websub = Some(self.clock.now());
                }
                Some(done) = self.push_tasks.join_next(), if !self.push_tasks.is_empty() => {
                    match done {
                        Ok(done) => self.push_done(done),
                        Err(e) => tracing::error!(error = %e, "a push's task failed"),
                    }
                }
                () = sleep_until(clock.as_ref(), self.next_lists.unwrap_or(DateTime::<Utc>::MAX_UTC)),
                    if self.next_lists.is_some() && self.list_pass.is_none() && self.reload.is_none() =>
                {
                    self.start_lists();
                }
                result = async { self.list_pass.as_mut().expect("guarded").await }, if self.list_pass.is_some() => {
                    self.list_pass = None;
                    self.lists_done(result);
                }
                () = sleep_until(clock.as_ref(), self.next_websub.unwrap_or(DateTime::<Utc>::MAX_UTC)),
                    if self.next_websub.is_some() && self.websub_pass.is_none() =>
                {
                    self.start_websub();
                }
                result = async { self.websub_pass.as_mut().expect("guarded").await }, if self.websub_pass.is_some() => {
                    self.websub_pass = None;
                    self.websub_done(result);
                }
                Some(followed) = self.follows.join_next(), if !self.follows.is_empty() => {
                    if let (Ok(Some(report)), Some(server)) = (followed, &self.server) {
                        server.publish(&[Ok(report)]);
                    }
                }
            }
            self.after_event();
        }
        self.shutdown(control).await
    }

    /// How many due feeds one claim takes. In a cluster, what this node can start fetching
    /// now: a feed claimed here and queued behind this node's budget would wait while another
    /// node has room for it, so the nodes waking for the same due time share its feeds by what
    /// each can take.
    fn claim_batch(&self) -> usize {
        match self.cluster {
            Some(_) => self.poller.room(),
            None => CLAIM_BATCH,
        }
    }

    /// When to claim due feeds next: at the earliest due time, or now when the last claim
    /// left feeds behind and the queue runs low. In a cluster, not while this node has no
    /// room for another fetch (it claims again as soon as one ends).
    fn wake_time(&self) -> Option<DateTime<Utc>> {
        if self.cluster.is_some() && self.poller.room() == 0 {
            return None;
        }
        if self.more_due {
            let low = match self.cluster {
                Some(_) => true,
                None => self.poller.queued() < CLAIM_BATCH / 2,
            };
            return low.then(|| self.clock.now());
        }
        self.next_wake
    }

    /// Bookkeeping after any event: rounds that ended, renders that are due.
    fn after_event(&mut self) {
        if !self.poller.busy()
            && self.scan.is_none()
            && let Some(round) = self.round.take()
        {
            self.round_done(round);
        }
        if let Some(since) = self.changes_since
            && (!self.poller.busy() || since.elapsed() >= RENDER_EVERY)
        {
            self.changes_since = None;
            self.request_render();
        }
        self.rest_when_quiet();
    }

    /// Between rounds the daemon rests at its small size, not the last round's high-water
    /// mark: once the round, its renders and housekeeping are all done (a render's reader
    /// returned to the pool after an earlier release would keep its cache and mapped pages).
    fn rest_when_quiet(&mut self) {
        let quiet = !self.poller.busy()
            && self.scan.is_none()
            && self.round.is_none()
            && self.renders.running.is_empty()
            && self.housekeeping.is_none();
        if !(quiet && std::mem::take(&mut self.rest_pending)) {
            return;
        }
        let store = self.store.clone();
        tokio::spawn(async move {
            if let Err(e) = store.release_memory().await {
                tracing::debug!(error = %e, "could not release database memory");
            }
        });
    }

    fn start_scan(&mut self) {
        let now = self.clock.now();
        // In a cluster a claim lasts a lease, renewed while held: a node that dies loses its
        // feeds to the others when it runs out.
        let lease = self.cluster.as_ref().map_or(CLAIM_LEASE, |c| c.lease);
        let lease_until = now + chrono::Duration::from_std(lease).unwrap_or_default();
        let store = self.store.clone();
        let release = std::mem::take(&mut self.unrecorded);
        let batch = self.claim_batch();
        self.scan = Some(tokio::spawn(async move {
            let kept = release.clone();
            let claimed = async {
                if !release.is_empty() {
                    store.release_leases(Some(release)).await?;
                }
                store.claim_due(now, batch, lease_until).await
            };
            claimed.await.map_err(|e| (e, kept))
        }));
    }

    /// How soon to claim again after the store failed: in a cluster within a tick, so that
    /// a database back from a restart is polled again within a lease; alone, a minute.
    fn store_retry(&self) -> chrono::Duration {
        let retry = self
            .cluster
            .as_ref()
            .map_or(Duration::from_secs(60), |c| c.tick_every());
        chrono::Duration::from_std(retry).unwrap_or_default()
    }

    /// Notes whether the store works, logging only the changes.
    fn store_works(&mut self, works: bool, error: Option<&StoreError>) {
        match (self.store_failing, works) {
            (false, false) => {
                self.store_failing = true;
                if let Some(e) = error {
                    tracing::error!(error = %e, "the database failed; polls are not recorded until it works again");
                }
            }
            (true, true) => {
                self.store_failing = false;
                tracing::info!("the database works again");
            }
            _ => {}
        }
    }

    fn scan_done(&mut self, result: Result<ScanResult, tokio::task::JoinError>) {
        let claimed = match result {
            Ok(Ok(claimed)) => {
                self.store_works(true, None);
                claimed
            }
            Ok(Err((e, unreleased))) => {
                self.store_works(false, Some(&e));
                self.unrecorded.extend(unreleased);
                self.more_due = false;
                self.next_wake = Some(self.clock.now() + self.store_retry());
                return;
            }
            Err(e) => {
                tracing::error!(error = %e, "due-feed scan failed; trying again");
                self.next_wake = Some(self.clock.now() + self.store_retry());
                return;
            }
        };
        self.more_due = claimed.more;
        self.next_wake = claimed.next;
        let mut unknown = Vec::new();
        for state in claimed.feeds {
            let Some(spec) = self.specs.get(&state.url).and_then(|i| self.config.feeds.get(*i)) else {
                // Scheduled by a poll that finished after its feed left the config.
                unknown.push(state.id);
                continue;
            };
            if !self.claimed.insert(state.id) {
                continue;
            }
            let policy = Policy::of(&self.config, spec);
            self.round.get_or_insert_with(Round::new);
            self.poller.submit(spec.clone(), state, policy);
        }
        if !unknown.is_empty() {
            let store = self.store.clone();
            // Alone, a feed this config does not name is off the schedule. In a cluster another
            // node's config may name it (one that loaded a list's new feeds a moment earlier):
            // it is due again in a minute, for a node that knows it (the whole-config check of
            // any node's start or reload takes a feed no config names off the schedule).
            let later = self
                .cluster
                .as_ref()
                .map(|_| self.clock.now() + chrono::Duration::minutes(1));
            tokio::spawn(async move {
                let off: Vec<(i64, Scheduled)> = unknown
                    .into_iter()
                    .map(|id| {
                        let scheduled = Scheduled {
                            next_due: later,
                            key: String::new(),
                            lease: None,
                        };
                        (id, scheduled)
                    })
                    .collect();
                if let Err(e) = store.schedule(off).await {
                    tracing::warn!(error = %e, "cannot take removed feeds off the schedule");
                }
            });
        }
    }

    fn feed_done(&mut self, result: Result<FeedReport, poll::Unrecorded>) {
        let mut report = match result {
            Ok(report) => {
                self.store_works(true, None);
                report
            }
            Err(unrecorded) if matches!(unrecorded.error, StoreError::Fenced { .. }) => {
                // This node stalled past its claim and another node polls the feed now: its
                // record is the one that counts.
                self.claimed.remove(&unrecorded.feed_id);
                tracing::info!(error = %unrecorded.error, "poll not recorded");
                return;
            }
            Err(unrecorded) => {
                // Polled but not recorded: due again once the store takes writes again.
                self.claimed.remove(&unrecorded.feed_id);
                self.unrecorded.push(unrecorded.feed_id);
                self.store_works(false, Some(&unrecorded.error));
                return;
            }
        };
        self.claimed.remove(&report.feed_id);
        if let Some(look) = report.icon_look.take() {
            self.icon_looks.push(look);
        }
        // A document naming a hub, or naming none for a feed subscribed: the next pass's.
        if let (Some(links), Some(_)) = (report.push.take(), &self.callbacks)
            && (links.hub.is_some() || self.subscribed.contains(&report.feed_id))
        {
            self.found_hubs.push((report.feed_id, links));
        }
        if let Some(next) = report.next_due {
            self.next_wake = Some(self.next_wake.map_or(next, |w| w.min(next)));
        }
        if let Some(server) = &self.server {
            server.metrics().record_feed(&counted(&report));
        }
        log_feed(&report);
        if report.polled() {
            if report.result.is_err() {
                self.failing.insert(report.feed_id);
            } else {
                self.failing.remove(&report.feed_id);
            }
        }
        let round = self.round.get_or_insert_with(Round::new);
        if report.polled() {
            round.polled += 1;
        }
        match &report.result {
            Err(_) => round.failed += 1,
            Ok(FeedStatus::Stored(o)) => {
                round.new += o.new;
                round.updated += o.updated;
                if o.new + o.updated > 0 {
                    self.changes_since.get_or_insert_with(Instant::now);
                }
            }
            Ok(_) => {}
        }
    }

    fn round_done(&mut self, round: Round) {
        let elapsed = round.started.elapsed();
        let looks = std::mem::take(&mut self.icon_looks);
        if !looks.is_empty() {
            self.icon_tasks.spawn(self.poller.icon_looks(looks));
        }
        // Hubs the round's documents named: subscribed (or checked) now.
        if !self.found_hubs.is_empty() {
            self.next_websub = Some(self.clock.now());
        }
        // The readers this node served since the last round, into the store (for `feeds`, the
        // page and the other nodes), then the counts (every node's) told to publishers with
        // `poll.announce_readers`.
        let server = self.server.clone();
        let refresh = self.poller.refresh_readers(self.config.clone());
        tokio::spawn(async move {
            if let Some(server) = server {
                server.flush_readers().await;
            }
            refresh.await;
        });
        if let Some(server) = &self.server {
            server.metrics().record_round(elapsed);
        }
        // Quiet in steady state: a round that changed nothing and where nothing failed is
        // not news.
        let news = round.new + round.updated + round.failed > 0;
        let fields = (round.polled, round.failed, round.new, round.updated);
        if news {
            tracing::info!(
                polled = fields.0,
                failed = fields.1,
                new = fields.2,
                updated = fields.3,
                elapsed_ms = elapsed.as_millis() as u64,
                "round done"
            );
        } else {
            tracing::debug!(
                polled = fields.0,
                elapsed_ms = elapsed.as_millis() as u64,
                "round done"
            );
        }
        self.summary = format!(
            "last round {}: {} polled, {} failed, {} new",
            crate::model::human_time(self.clock.now()),
            round.polled,
            round.failed,
            round.new
        );
        notify::status(&self.status());
        if std::mem::replace(&mut self.renders.mode, output::WhenEmpty::Write) == output::WhenEmpty::Keep {
            // The first round: what was held back at start-up is now the truth, entries or not.
            self.request_render_where(|_| true);
        } else if self.changes_since.is_none() && round.polled > 0 {
            // No new entries, but the page says how its feeds are (one may have started or
            // stopped failing); a page that did not change renders the same bytes and is not
            // rewritten.
            self.request_render_where(|spec| spec.format == crate::model::OutputFormat::Html);
        }
        self.rest_pending = true;
    }

    /// Renders every output: each starts now unless it is being rendered, in which case it
    /// is rendered once more after that.
    fn request_render(&mut self) {
        self.request_render_where(|_| true);
    }

    /// [`Daemon::request_render`] for the outputs `which` picks.
    fn request_render_where(&mut self, which: impl Fn(&OutputSpec) -> bool) {
        let config = self.config.clone();
        for (at, spec) in config.outputs.iter().enumerate().filter(|(_, s)| which(s)) {
            if self.renders.running.contains(&spec.path) {
                self.renders.again.insert(spec.path.clone());
            } else {
                self.spawn_render(at);
            }
        }
    }

    /// Renders the `at`-th output of the config. (By position: a spec lists its feeds, and
    /// copying 100,000 of them per render is not free.)
    fn spawn_render(&mut self, at: usize) {
        if self.cluster.as_ref().is_some_and(|c| !c.leads()) {
            // The leader renders for the cluster; this node writes and serves what it publishes.
            return;
        }
        let (config, store) = (self.config.clone(), self.store.clone());
        let Some(path) = config.outputs.get(at).map(|o| o.path.clone()) else {
            return;
        };
        self.renders.running.insert(path.clone());
        self.renders.retry.remove(&path);
        let how = output::RenderOptions {
            mode: self.renders.mode,
            now: self.clock.now(),
            hook_owed: self.renders.hooks_owed.contains(&path),
        };
        self.renders.tasks.spawn(async move {
            let context = Arc::new(output::Context::new(&config));
            let result = output::render_one(&config, &config.outputs[at], &store, &context, how).await;
            (path, result)
        });
    }

    /// Sends what the outbox has due (see [`output::webhook`]), as a task.
    fn start_deliveries(&mut self) {
        self.next_delivery = None;
        let (config, store, fetcher, clock) = (
            self.config.clone(),
            self.store.clone(),
            self.fetcher.clone(),
            self.clock.clone(),
        );
        self.deliveries = Some(tokio::spawn(async move {
            output::webhook::deliver_due(&config, &store, &fetcher, || clock.now()).await
        }));
    }

    fn deliveries_done(
        &mut self,
        result: Result<Result<output::webhook::DeliveryPass, StoreError>, tokio::task::JoinError>,
    ) {
        self.rest_pending = true;
        match result {
            Ok(Ok(pass)) => {
                if let Some(server) = &self.server {
                    server
                        .metrics()
                        .record_deliveries(pass.delivered, pass.retried, pass.given_up);
                }
                // A webhook that gives deliveries up is reported once, until one is taken.
                for hook in &pass.taken_by {
                    self.webhooks_failing.remove(hook);
                }
                for ((output, webhook), error) in &pass.failing {
                    if self.webhooks_failing.insert((output.clone(), webhook.clone())) {
                        tracing::warn!(
                            %output,
                            %webhook,
                            %error,
                            "webhook deliveries given up (refused, or retried past retry_for); \
                             reported once until one is delivered: tributary feeds lists them"
                        );
                    }
                }
                if pass.delivered + pass.retried + pass.given_up > 0 {
                    tracing::debug!(
                        delivered = pass.delivered,
                        retried = pass.retried,
                        given_up = pass.given_up,
                        "webhook deliveries"
                    );
                }
                // A render that made deliveries meanwhile asked for a pass already.
                self.next_delivery = crate::model::earliest(self.next_delivery, pass.next);
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot read the webhook outbox; trying again in a minute");
                self.next_delivery = Some(self.clock.now() + chrono::Duration::minutes(1));
            }
            Err(e) => tracing::error!(error = %e, "the webhook delivery task failed"),
        }
    }

    fn render_done(&mut self, path: PathBuf, result: Result<OutputReport, OutputError>) {
        self.renders.running.remove(&path);
        self.rest_pending = true;
        if result.as_ref().is_ok_and(|r| r.deliveries > 0) {
            self.next_delivery = Some(self.clock.now());
        }
        // Not written, or written but its `on_change` failed (owed until it runs): either is
        // tried again with the output's retry, backing off.
        let failure = match &result {
            Err(e) => Some(e.to_string()),
            Ok(o) => o
                .hook_error
                .as_ref()
                .map(|e| format!("output {}: on_change {e}", o.path.display())),
        };
        if result.as_ref().is_ok_and(|o| o.hook_error.is_some()) {
            self.renders.hooks_owed.insert(path.clone());
        } else if result.is_ok() {
            self.renders.hooks_owed.remove(&path);
        }
        if let Ok(o) = &result
            && o.written
        {
            tracing::debug!(output = %o.path.display(), entries = o.entries, "output written");
        }
        if let Some(e) = &failure {
            let tries = self.renders.retry.get(&path).map_or(0, |(_, n)| *n) + 1;
            let delay = RENDER_RETRY
                .saturating_mul(1 << (tries - 1).min(16))
                .min(RENDER_RETRY_CAP);
            if tries == 1 {
                tracing::error!(error = %e, retry_in = %humantime::format_duration(delay), "output not finished");
            }
            let at = self.clock.now() + chrono::Duration::from_std(delay).unwrap_or_default();
            self.renders.retry.insert(path.clone(), (at, tries));
        }
        if let (Ok(report), Some(cluster)) = (&result, &mut self.cluster)
            && !report.pending
        {
            cluster.publish(report, self.clock.now());
        }
        if let Ok(report) = &result {
            self.renders
                .shown
                .insert(path.clone(), Arc::new(report.shown.clone()));
            if failure.is_none() && self.renders.retry.remove(&path).is_some() {
                tracing::info!(output = %path.display(), "output written again after failures");
            }
            if report.written {
                let (config, report) = (self.config.clone(), report.clone());
                tokio::spawn(async move { output::websub::announce(&config, &[report]).await });
            }
        }
        // Written or not, the store says so (for `feeds` and /healthz); changes of state only.
        let failing = failure.is_some();
        if failing || self.renders.recorded_failing.remove(&path) {
            if failing {
                self.renders.recorded_failing.insert(path.clone());
            }
            let (store, now, outcomes) = (
                self.store.clone(),
                self.clock.now(),
                vec![output::outcome(&result)],
            );
            tokio::spawn(async move {
                if let Err(e) = output::record_renders(&store, outcomes, now).await {
                    tracing::debug!(error = %e, "cannot record an output's state");
                }
            });
        }
        if let Some(server) = &self.server {
            server.publish(std::slice::from_ref(&result));
        }
        if self.renders.again.remove(&path)
            && let Some(at) = self.config.outputs.iter().position(|o| o.path == path)
        {
            self.spawn_render(at);
        }
    }

    /// The earliest retry of a failed output, if any.
    fn render_due(&self) -> Option<DateTime<Utc>> {
        self.renders
            .retry
            .iter()
            .filter(|(path, _)| !self.renders.running.contains(*path))
            .map(|(_, (at, _))| *at)
            .min()
    }

    fn render_retries(&mut self) {
        let now = self.clock.now();
        let config = self.config.clone();
        let due: Vec<usize> = config
            .outputs
            .iter()
            .enumerate()
            .filter(|(_, o)| self.renders.retry.get(&o.path).is_some_and(|(at, _)| *at <= now))
            .map(|(at, _)| at)
            .collect();
        for at in due {
            let path = &config.outputs[at].path;
            let tries = self.renders.retry.get(path).map(|(_, n)| *n);
            self.spawn_render(at);
            // Keep the count of failed tries, so the next delay doubles.
            if let Some(tries) = tries {
                self.renders
                    .retry
                    .insert(path.clone(), (DateTime::<Utc>::MAX_UTC, tries));
            }
        }
    }

    fn start_reload(&mut self) {
        if self.reload.is_some() {
            // Already reloading: that reload reads the file as it is now.
            return;
        }
        notify::reloading();
        let path = self.path.clone();
        let (store, clock) = (self.store.clone(), self.clock.clone());
        let backend = self.config.backend();
        self.reload = Some(tokio::spawn(async move {
            let load = tokio::task::spawn_blocking(move || Config::load(&path));
            let config = match load.await {
                Ok(Ok(config)) => config,
                Ok(Err(e)) => {
                    return Err(format!(
                        "new configuration rejected; keeping the running one:\n{e}"
                    ));
                }
                Err(e) => return Err(format!("new configuration not loaded: {e}")),
            };
            if config.backend() != backend {
                return Err(format!(
                    "new configuration rejected: the store changed ({} → {}); restart to switch databases \
                     or node names; keeping the running configuration",
                    crate::store::describe(&backend),
                    crate::store::describe(&config.backend())
                ));
            }
            // With its subscription lists' feeds, as the store holds them now.
            let config = crate::lists::with_members(config, &store)
                .await
                .map_err(|e| format!("new configuration not loaded; keeping the running one: {e}"))?;
            let fetcher = Fetcher::new(&config.poll)
                .map_err(|e| format!("new configuration rejected; keeping the running one: {e}"))?;
            poll::prepare(&config, &config.feeds, &store, clock.now(), true)
                .await
                .map_err(|e| format!("new configuration not applied: {e}"))?;
            Ok(Reloaded { config, fetcher })
        }));
    }

    fn reload_done(&mut self, result: Result<Result<Reloaded, String>, tokio::task::JoinError>) {
        let Reloaded { config, fetcher } = match result {
            Ok(Ok(reloaded)) => reloaded,
            Ok(Err(message)) => {
                tracing::error!("{message}");
                notify::ready(&self.status());
                return;
            }
            Err(e) => {
                tracing::error!(error = %e, "reload failed");
                notify::ready(&self.status());
                return;
            }
        };
        let old: HashSet<&str> = self.config.feeds.iter().map(|f| f.key.as_str()).collect();
        let new: HashSet<&str> = config.feeds.iter().map(|f| f.key.as_str()).collect();
        // Named, so the operator sees the reload took the feeds they meant.
        let added = named_feeds(&config, |key| !old.contains(key));
        let removed = named_feeds(&self.config, |key| !new.contains(key));
        let outputs_changed = self.config.outputs != config.outputs;
        if config.serve.as_ref().map(|s| s.listen) != self.config.serve.as_ref().map(|s| s.listen) {
            tracing::warn!("serve.listen changed: the server keeps its address until a restart");
        }
        let config = Arc::new(config);
        let specs = index_feeds(&config);
        // Queued feeds that left the config are not polled (their schedule is gone already).
        for job in self
            .poller
            .take_queued_where(|job| !specs.contains_key(job.key()))
        {
            self.claimed.remove(&job.feed_id());
        }
        self.poller.reconfigure(&config, fetcher.clone());
        self.fetcher = fetcher;
        self.specs = specs;
        self.config = config;
        if let Some(server) = &self.server {
            server.set_config(self.config.clone());
        }
        self.next_housekeeping = self.config.store.housekeeping.next_after(self.clock.now());
        if has_webhooks(&self.config) {
            self.next_delivery = Some(self.clock.now());
        }
        // Lists added to the config are fetched.
        if !self.config.lists.is_empty() && self.next_lists.is_none() {
            self.next_lists = Some(self.clock.now());
        }
        // Feeds removed or disabled are unsubscribed; `websub` may have changed.
        if self.callbacks.is_some() {
            self.next_websub = Some(self.clock.now());
        }
        tracing::info!(
            feeds = self.config.feeds.len(),
            added = %added,
            removed = %removed,
            outputs_changed,
            "configuration reloaded"
        );
        // Added feeds are due at once; changed schedules have new due times.
        self.more_due = false;
        self.next_wake = Some(self.clock.now());
        // Feed selection or titles may have changed what outputs show.
        self.request_render();
        notify::ready(&self.status());
    }

    /// A push a hub sent (see [`crate::push`]): stored as a fetched body would be, one at a
    /// time per feed.
    fn pushed(&mut self, pushed: Pushed) {
        if let Some(waiting) = self.pushing.get_mut(&pushed.feed_id) {
            if waiting.len() >= PUSHES_PER_FEED {
                waiting.pop_front();
                tracing::debug!(
                    feed_id = pushed.feed_id,
                    "pushes pile up; the oldest waiting one is dropped"
                );
            }
            waiting.push_back(pushed);
            return;
        }
        self.pushing.insert(pushed.feed_id, Default::default());
        self.start_push(pushed);
    }

    fn start_push(&mut self, pushed: Pushed) {
        let Pushed {
            feed_id,
            bytes,
            content_type,
            arrived,
        } = pushed;
        let take = self
            .poller
            .take_push(self.config.clone(), feed_id, bytes, content_type);
        self.push_tasks
            .spawn(async move { (feed_id, arrived, take.await) });
    }

    fn push_done(
        &mut self,
        (feed_id, arrived, result): (i64, Instant, Result<Option<FeedReport>, StoreError>),
    ) {
        if let Some(next) = self
            .pushing
            .get_mut(&feed_id)
            .and_then(std::collections::VecDeque::pop_front)
        {
            self.start_push(next);
        } else {
            self.pushing.remove(&feed_id);
        }
        self.rest_pending = true;
        match result {
            Ok(Some(report)) => {
                let stored = match &report.result {
                    Ok(FeedStatus::Stored(o)) => o.new + o.updated,
                    _ => 0,
                };
                match &report.result {
                    Err(e) => {
                        tracing::info!(feed = %report.url, error = %e, "a pushed body could not be read")
                    }
                    Ok(_) => tracing::debug!(
                        feed = %report.url,
                        new_or_updated = stored,
                        elapsed_ms = arrived.elapsed().as_millis() as u64,
                        "push stored"
                    ),
                }
                if let Some(next) = report.next_due {
                    self.next_wake = Some(self.next_wake.map_or(next, |w| w.min(next)));
                }
                // Pushed entries are news now: rendered at once, not at the round's end.
                if stored > 0 {
                    self.request_render();
                }
            }
            Ok(None) => tracing::debug!(feed_id, "a push for a feed not in the config; dropped"),
            Err(e) => {
                tracing::warn!(feed_id, error = %e, "a push could not be stored; the feed's next poll brings it");
            }
        }
    }

    /// Fetches the subscription lists that are due (see [`crate::lists`]): in a cluster the
    /// leader does, once for all (the others hear of changes and load the lists' feeds).
    fn start_lists(&mut self) {
        self.next_lists = None;
        if self.cluster.as_ref().is_some_and(|c| !c.leads()) {
            // Looked at again in a minute: this node may lead by then.
            self.next_lists = Some(self.clock.now() + chrono::Duration::minutes(1));
            return;
        }
        let (config, store, fetcher, now) = (
            self.config.clone(),
            self.store.clone(),
            self.fetcher.clone(),
            self.clock.now(),
        );
        self.list_pass = Some(tokio::spawn(async move {
            crate::lists::refresh(&config, &store, &fetcher, now, false).await
        }));
    }

    fn lists_done(
        &mut self,
        result: Result<Result<crate::lists::Refresh, StoreError>, tokio::task::JoinError>,
    ) {
        let now = self.clock.now();
        match result {
            Ok(Ok(refresh)) => {
                self.next_lists = refresh.next.filter(|_| !self.config.lists.is_empty());
                if refresh.changed {
                    // Their feeds changed: loaded as a reload loads the config (new feeds due at
                    // once, those gone off the schedule).
                    tracing::info!(
                        fetched = refresh.fetched,
                        "subscription lists changed; loading their feeds"
                    );
                    self.start_reload();
                }
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot record the subscription lists; trying again in a minute");
                self.next_lists = Some(now + chrono::Duration::minutes(1));
            }
            Err(e) => tracing::error!(error = %e, "the subscription list task failed"),
        }
    }

    /// Brings the WebSub subscriptions in line (see [`push::maintain`]): each node subscribes
    /// the feeds it found naming a hub; one node of a cluster, the leader, tends the rest
    /// (renewals, retries, unsubscriptions), and looks every minute for what the others left it.
    fn start_websub(&mut self) {
        let now = self.clock.now();
        self.next_websub = None;
        let Some(callbacks) = self.callbacks.clone() else {
            return;
        };
        let tend = self.cluster.as_ref().is_none_or(|c| c.leads());
        if self.cluster.is_some() {
            self.next_websub = Some(now + chrono::Duration::minutes(1));
        }
        let found = std::mem::take(&mut self.found_hubs);
        if !tend && found.is_empty() {
            return;
        }
        let (config, store, fetcher) = (self.config.clone(), self.store.clone(), self.fetcher.clone());
        self.websub_pass = Some(tokio::spawn(async move {
            push::maintain(&config, &store, &fetcher, &callbacks, found, tend, now).await
        }));
    }

    fn websub_done(&mut self, result: Result<Result<push::Pass, StoreError>, tokio::task::JoinError>) {
        let now = self.clock.now();
        match result {
            Ok(Ok(pass)) => {
                if pass.failed > 0 {
                    tracing::info!(
                        requested = pass.requested,
                        failed = pass.failed,
                        "WebSub hubs did not take every request; tried again with backoff (tributary feeds shows why)"
                    );
                } else if pass.requested > 0 {
                    tracing::debug!(requested = pass.requested, "WebSub hubs asked");
                }
                self.next_websub = crate::model::earliest(self.next_websub, pass.next);
                self.subscribed = pass.subscribed;
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot read the WebSub subscriptions; trying again in a minute");
                self.next_websub = Some(now + chrono::Duration::minutes(1));
            }
            Err(e) => tracing::error!(error = %e, "the WebSub task failed"),
        }
    }

    fn start_housekeeping(&mut self) {
        self.next_housekeeping = self.config.store.housekeeping.next_after(self.clock.now());
        if self.cluster.as_ref().is_some_and(|c| !c.leads()) {
            // One node keeps the shared store: the leader, which knows what outputs show.
            return;
        }
        let (config, store, now) = (self.config.clone(), self.store.clone(), self.clock.now());
        let shown = self.renders.shown.clone();
        self.housekeeping = Some(tokio::spawn(async move {
            housekeeping(config, store, now, shown).await
        }));
    }

    fn start_tick(&mut self) {
        let Some(cluster) = &self.cluster else {
            return;
        };
        let now = self.clock.now();
        self.next_tick = Some(now + chrono::Duration::from_std(cluster.tick_every()).unwrap_or_default());
        let claimed = self.claimed.iter().copied().collect();
        self.tick = Some(tokio::spawn(cluster.tick(&self.store, claimed, now)));
    }

    fn tick_done(&mut self, result: Result<Result<cluster::Tick, StoreError>, tokio::task::JoinError>) {
        let tick = match result {
            Ok(Ok(tick)) => tick,
            // Said once for the whole outage (see `store_works`): claims run out unless a tick
            // works again within the lease, and then other nodes take them.
            Ok(Err(e)) => {
                self.store_works(false, Some(&e));
                return;
            }
            Err(e) => {
                tracing::error!(error = %e, "cluster heartbeat task failed");
                return;
            }
        };
        if self.store_failing {
            // The database is back: claim what is due now, not at the next retry.
            self.store_works(true, None);
            self.more_due = false;
            self.next_wake = Some(self.clock.now());
        }
        self.poller.hold_hosts(&tick.delays);
        if !tick.lost.is_empty() {
            // Another node holds these feeds now. Those still queued here are not fetched (the
            // other node fetches them); a poll under way will not be recorded (fenced).
            let lost: HashSet<i64> = tick.lost.iter().copied().collect();
            for job in self.poller.take_queued_where(|j| lost.contains(&j.feed_id())) {
                self.claimed.remove(&job.feed_id());
            }
            tracing::warn!(
                feeds = tick.lost.len(),
                "claims ran out before they were renewed; other nodes poll those feeds"
            );
        }
        let Some(cluster) = &mut self.cluster else {
            return;
        };
        cluster.check_lead();
        if let Some(leader) = tick.lead {
            cluster.lead(leader);
            self.request_render();
            // The lead reads the lists and tends the subscriptions: at once.
            let now = self.clock.now();
            if !self.config.lists.is_empty() {
                self.next_lists = Some(now);
            }
            if self.callbacks.is_some() {
                self.next_websub = Some(now);
            }
        }
    }

    /// A notification from the cluster: stored changes (the leader renders) or a published
    /// output (the others write and serve it).
    fn heard(&mut self, notice: Notice) {
        let Some(cluster) = &self.cluster else {
            return;
        };
        match notice {
            // Another node recorded a poll: this one wakes for that feed's next due time too.
            Notice::Due(due) => self.next_wake = Some(self.next_wake.map_or(due, |w| w.min(due))),
            Notice::TurnFreed(host) => self.poller.turn_freed(&host),
            // Announced by the node that was told: every node's polls hold off at once.
            Notice::HostDelayed { host, until } => self.poller.hold_hosts(&HashMap::from([(host, until)])),
            // The leader reads the lists; the others load their feeds when it finds a change.
            Notice::ListChanged(list) => {
                if !cluster.leads() && self.config.lists.iter().any(|l| l.key == list) {
                    self.start_reload();
                }
            }
            // The leader tends subscriptions: a renewal another node's verification scheduled.
            Notice::Subscription(due) => {
                if cluster.leads() && self.callbacks.is_some() {
                    self.next_websub = Some(self.next_websub.map_or(due, |w| w.min(due)));
                }
            }
            Notice::Changes { node } => {
                if cluster.leads() && node != self.config.node.name {
                    self.changes_since.get_or_insert_with(Instant::now);
                }
            }
            Notice::Output(name) => {
                if !cluster.leads()
                    && let Some(follow) = cluster.follow(&self.config, &name)
                {
                    self.follows.spawn(follow);
                }
            }
            // Whatever was announced while the notices were lost is looked at again: due
            // times (a claim now finds them), host waits (the next tick reads them), and the
            // outputs published meanwhile.
            Notice::Reconnected => {
                self.next_wake = Some(self.clock.now());
                self.more_due = false;
                self.follow_all();
                if !self.config.lists.is_empty() {
                    self.start_reload();
                }
            }
        }
    }

    /// A node that does not lead serves what the leader last published, from the start.
    fn follow_all(&mut self) {
        let Some(cluster) = &self.cluster else {
            return;
        };
        if cluster.leads() {
            return;
        }
        for spec in &self.config.outputs {
            if let Some(follow) = cluster.follow(&self.config, &spec.file_name()) {
                self.follows.spawn(follow);
            }
        }
    }

    async fn shutdown(&mut self, control: &mut mpsc::Receiver<Control>) -> Exit {
        notify::stopping();
        if let Some(server) = &self.server {
            server.flush_readers().await;
        }
        // A request cut off now is sent again later: the delivery's claim runs out.
        if let Some(deliveries) = self.deliveries.take() {
            deliveries.abort();
        }
        self.poller.stop();
        // Claimed feeds that never started are due as they were.
        let unstarted: Vec<i64> = self.poller.take_queued().iter().map(|j| j.feed_id()).collect();
        if !unstarted.is_empty() {
            let store = self.store.clone();
            if let Err(e) = store.release_leases(Some(unstarted)).await {
                tracing::warn!(error = %e, "cannot release the claims of feeds not polled");
            }
        }
        let grace = self.config.poll.shutdown_grace;
        if self.poller.busy() {
            tracing::info!(
                grace = %humantime::format_duration(grace),
                "stopping: letting in-flight fetches finish"
            );
        }
        let deadline = tokio::time::Instant::now() + grace;
        let mut abandoned = false;
        while self.poller.busy() {
            tokio::select! {
                Some(result) = self.poller.next() => self.feed_done(result),
                () = tokio::time::sleep_until(deadline) => {
                    abandoned = true;
                    tracing::warn!("stopping: abandoned fetches still running after the grace period");
                    break;
                }
                message = control.recv() => {
                    if message.is_some() {
                        tracing::warn!("second stop request: exiting at once");
                        return Exit::Immediate;
                    }
                }
            }
        }
        // Feeds that finished were committed; outputs catch up with them, within the grace.
        if self.changes_since.take().is_some() || abandoned {
            self.request_render();
        }
        let render_deadline = tokio::time::Instant::now() + grace.max(Duration::from_secs(1));
        while !self.renders.tasks.is_empty() {
            tokio::select! {
                Some(done) = self.renders.tasks.join_next() => {
                    // A render asked for while this one ran starts now, and is waited for too.
                    if let Ok((path, result)) = done {
                        self.render_done(path, result);
                    }
                }
                () = tokio::time::sleep_until(render_deadline) => {
                    // Outputs are written whole or not at all: stopping mid-render is safe.
                    tracing::warn!("stopping: an output is still rendering; it keeps its last version");
                    break;
                }
                message = control.recv() => {
                    if message.is_some() {
                        return Exit::Immediate;
                    }
                }
            }
        }
        if let Some(cluster) = &mut self.cluster {
            cluster.step_down().await;
        }
        Exit::Graceful
    }

    fn status(&self) -> String {
        let mut s = crate::model::counted(self.config.feeds.len(), "feed", "feeds");
        if !self.failing.is_empty() {
            s.push_str(&format!(", {} failing", self.failing.len()));
        }
        s.push_str(&format!("; {}", self.summary));
        if let Some(next) = self.next_wake {
            s.push_str(&format!("; next poll {}", crate::model::human_time(next)));
        }
        if let Some(addr) = self.serving {
            s.push_str(&format!("; serving on {addr}"));
        }
        if let Some(addr) = self.serving_admin {
            s.push_str(&format!("; admin on {addr}"));
        }
        s
    }
}

impl Round {
    fn new() -> Round {
        Round {
            started: Instant::now(),
            polled: 0,
            failed: 0,
            new: 0,
            updated: 0,
        }
    }
}

/// One line per event that matters, none for a feed that is simply as it was: a failure is
/// warned about when a run of failures starts, and when the feed is found abandoned.
fn log_feed(report: &FeedReport) {
    match &report.result {
        Err(failure) if report.failure_began() => {
            tracing::warn!(feed = %report.url, kind = %failure.kind, error = %failure, "fetch failed")
        }
        Err(failure) => tracing::debug!(
            feed = %report.url, kind = %failure.kind, failures = report.failures, error = %failure, "still failing"
        ),
        Ok(FeedStatus::Skipped(reason)) => tracing::debug!(feed = %report.url, %reason, "skipped"),
        Ok(_) if report.recovered_after > 0 => tracing::info!(
            feed = %report.url, failures = report.recovered_after, "feed recovered"
        ),
        Ok(_) => {}
    }
    if !report.newly_repaired.is_empty() {
        let repairs: Vec<&str> = report.newly_repaired.iter().map(|r| r.describe()).collect();
        tracing::warn!(
            feed = %report.url,
            repairs = %repairs.join("; "),
            "feed read with repairs: its publisher may want to know"
        );
    }
    if report.abandoned {
        tracing::warn!(
            feed = %report.url,
            failures = report.failures,
            "feed abandoned: failing for longer than poll.give_up_after; still tried once a day"
        );
    }
}

/// Retention, the planner's statistics, checkpoints and vacuum, keeping what outputs show now: as
/// their last renders showed it (`shown`), selected again only for outputs not rendered yet.
async fn housekeeping(
    config: Arc<Config>,
    store: Store,
    now: DateTime<Utc>,
    shown: HashMap<PathBuf, Arc<Vec<i64>>>,
) {
    let shown = async {
        let mut ids = HashSet::new();
        for spec in &config.outputs {
            match shown.get(&spec.path) {
                Some(rendered) => ids.extend(rendered.iter().copied()),
                None => {
                    let selection = output::select::select(&store, spec, &config).await?;
                    ids.extend(selection.entries.iter().map(|e| e.stored.id));
                }
            }
        }
        Ok::<_, StoreError>(ids)
    };
    let protected = match shown.await {
        Ok(ids) => ids,
        Err(e) => {
            tracing::error!(error = %e, "housekeeping skipped: cannot tell what outputs show");
            return;
        }
    };
    let retention = Retention {
        keep_days: config.store.keep_days,
        keep_per_feed: config.store.keep_per_feed,
        protected,
    };
    match crate::store::housekeeping(&store, retention, now).await {
        Ok(r) if r.entries_removed + r.tombstones_expired > 0 => tracing::info!(
            entries_removed = r.entries_removed,
            tombstones_expired = r.tombstones_expired,
            steps = r.steps,
            longest_step_ms = r.longest_step.as_millis() as u64,
            "housekeeping done"
        ),
        Ok(_) => tracing::debug!("housekeeping done"),
        Err(e) => tracing::error!(error = %e, "housekeeping failed"),
    }
}

/// A feed's report as the server's metrics count it.
fn counted(report: &FeedReport) -> PolledFeed {
    let outcome = match &report.result {
        Ok(FeedStatus::Stored(o)) => FetchOutcome::Stored {
            new: o.new,
            updated: o.updated,
        },
        Ok(FeedStatus::NotModified) => FetchOutcome::NotModified,
        Ok(FeedStatus::Unchanged) => FetchOutcome::Unchanged,
        Ok(FeedStatus::Skipped(_)) => FetchOutcome::Skipped,
        Err(_) => FetchOutcome::Failed,
    };
    PolledFeed {
        fetched: report.polled().then_some(report.elapsed),
        outcome,
    }
}
