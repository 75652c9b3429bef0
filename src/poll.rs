//! The spine: a [`Poller`] polls feeds — fetch → decode → parse → dedupe → compare with the
//! store → sanitize → filter → store — and reports per feed; [`poll_feeds`] runs one over a
//! set of feeds once.
//!
//! `tributary poll` calls [`poll_feeds`] with every feed; the daemon keeps one [`Poller`] for
//! its lifetime and hands it the feeds that come due. Nothing here prints or exits; a feed's
//! failure is recorded on that feed (with its kind and its next due time, in the same commit)
//! and in the report, and never stops the others. A failure of the store itself is not a feed's
//! failure: it ends the poll. Politeness is one budget: at most `poll.concurrency` fetches in
//! flight overall and `poll.per_host` per host, and a 429 (or a 503 with Retry-After) from a
//! host holds back every other feed on that host. Parsing (CPU-bound) runs on the blocking
//! pool, database work on the store thread, so the async workers only wait on the network.
//! Every `now` comes from the caller's [`Clock`].

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::StreamExt;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::config::Config;
use crate::content::full_text::{self, ArticleError};
use crate::content::icon;
use crate::decode;
use crate::dedupe;
use crate::fetch::{self, Caching, FetchError, Fetched, Fetcher};
use crate::filter::{self, Fields};
use crate::model::FeedRhythm;
use crate::model::{
    FailureKind, FeedSpec, FeedState, FullText, IconImage, KeyedEntry, Rewrite, Validators, display_url,
    host_key,
};
use crate::parse::{self, Fingerprints, ParsedFeed};
use crate::schedule::hints;
use crate::schedule::{self, Clock, Hints, History, Policy, SystemClock};
use crate::store::{
    Coordination, FeedUpdate, IconUpdate, ParsedBatch, Scheduled, Store, StoreError, StoreOutcome,
};

/// How long a host that answered 429 (or 503) without a Retry-After is left alone.
pub(crate) const HOST_PENALTY: Duration = Duration::from_secs(30 * 60);

/// How one feed's poll ended, when it did not fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedStatus {
    /// The server answered 304.
    NotModified,
    /// The body was byte-identical to the last one parsed, so it was not parsed again.
    Unchanged,
    /// Parsed and stored.
    Stored(StoreOutcome),
    /// Not fetched: held back (backing off, Retry-After, its host's wait, gone), or the poll
    /// was stopping.
    Skipped(String),
}

/// A feed's poll that failed: what kind of failure (which decides retries) and what to tell
/// the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedFailure {
    pub kind: FailureKind,
    pub message: String,
}

impl std::fmt::Display for FeedFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

#[derive(Debug, Clone)]
pub struct FeedReport {
    /// The feed's row in the store.
    pub feed_id: i64,
    /// The feed URL as it may be shown (no credentials).
    pub url: String,
    pub result: Result<FeedStatus, FeedFailure>,
    /// Consecutive failures after this poll (for a skipped feed: as stored).
    pub failures: u32,
    /// The last error of a feed that is failing, as stored (for skipped feeds, whose result
    /// says why they were skipped).
    pub last_error: Option<String>,
    /// When the feed is due next, as recorded.
    pub next_due: Option<DateTime<Utc>>,
    /// This poll found the feed failing for `poll.give_up_after`: news to report once.
    pub abandoned: bool,
    /// This poll succeeded after this many consecutive failures (0: it was not failing).
    pub recovered_after: u32,
    /// Repairs the document needed that the last one did not: news to report once.
    pub newly_repaired: Vec<crate::model::Repair>,
    /// How long the poll took, fetch to commit (zero for a skipped feed).
    pub elapsed: Duration,
    /// A look for the feed's icon that is due, made after the round (see [`Poller::icon_looks`]).
    pub(crate) icon_look: Option<IconLook>,
    /// Where the document fetched says it is pushed from (its `Link` headers first, then the
    /// document): set when a fetched document was read, not on a 304 or a push.
    pub(crate) push: Option<fetch::PushLinks>,
}

impl FeedReport {
    /// Whether the feed is failing after this poll (a skipped feed that is backing off is).
    pub fn is_failing(&self) -> bool {
        self.result.is_err() || self.failures > 0
    }

    /// Whether it was actually fetched (not skipped).
    pub fn polled(&self) -> bool {
        !matches!(self.result, Ok(FeedStatus::Skipped(_)))
    }

    /// This poll started a run of failures: the one to warn about.
    pub(crate) fn failure_began(&self) -> bool {
        self.result.is_err() && self.failures == 1
    }
}

#[derive(Debug, Clone, Default)]
pub(crate) struct PollReport {
    pub feeds: Vec<FeedReport>,
    /// On a cluster's store: feeds not polled because a node holds them, or polled them in
    /// this slot already.
    pub left_to_nodes: usize,
    pub elapsed: Duration,
}

impl PollReport {
    pub fn failed(&self) -> impl Iterator<Item = &FeedReport> {
        self.feeds.iter().filter(|f| f.result.is_err())
    }

    /// Feeds that were fetched, whatever came of it.
    pub fn polled(&self) -> impl Iterator<Item = &FeedReport> {
        self.feeds.iter().filter(|f| f.polled())
    }

    pub fn skipped(&self) -> impl Iterator<Item = &FeedReport> {
        self.feeds.iter().filter(|f| !f.polled())
    }

    /// Feeds fetched without a failure.
    pub(crate) fn ok_count(&self) -> usize {
        self.polled().filter(|f| f.result.is_ok()).count()
    }

    pub fn count(&self, pred: impl Fn(&FeedStatus) -> bool) -> usize {
        self.feeds
            .iter()
            .filter(|f| f.result.as_ref().is_ok_and(&pred))
            .count()
    }

    fn stored(&self) -> impl Iterator<Item = StoreOutcome> + '_ {
        self.feeds.iter().filter_map(|f| match f.result {
            Ok(FeedStatus::Stored(o)) => Some(o),
            _ => None,
        })
    }

    pub(crate) fn new_entries(&self) -> usize {
        self.stored().map(|o| o.new).sum()
    }

    pub(crate) fn updated_entries(&self) -> usize {
        self.stored().map(|o| o.updated).sum()
    }

    /// New entries held back as new feeds' back catalogues.
    pub(crate) fn held_back_entries(&self) -> usize {
        self.stored().map(|o| o.held_back).sum()
    }

    /// Entries the feeds' rules excluded.
    pub(crate) fn excluded_entries(&self) -> usize {
        self.stored().map(|o| o.excluded).sum()
    }
}

/// Called with each feed's report as soon as it is done (progress bars, verbose output).
pub(crate) type Progress = std::sync::Arc<dyn Fn(&FeedReport) + Send + Sync>;

/// How a one-shot poll runs.
#[derive(Clone, Default)]
pub struct Options {
    /// Poll feeds that are gone (410), backing off after failures, under a Retry-After, or on
    /// a host that asked to wait.
    pub force: bool,
    pub progress: Option<Progress>,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("force", &self.force)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

/// Configured feeds the store has no row for that are a stored feed under a new spelling of
/// its URL ([`crate::model::feed_identity`]: case, a trailing slash, `http` for `https`,
/// tracking parameters), or at the place it moved to: `(stored URL, configured URL)`. Only a
/// stored feed the config no longer names is taken, each once.
async fn respelled(config: &Config, store: &Store) -> Result<Vec<(String, String)>, StoreError> {
    // One read of every stored URL (and where it moved) says both which configured feeds are
    // new and which stored ones the config no longer names.
    let stored = store.feed_identities().await?;
    let known: std::collections::HashSet<&str> = stored.iter().map(|(url, _)| url.as_str()).collect();
    let new: Vec<&str> = config
        .feeds
        .iter()
        .map(|f| f.key.as_str())
        .filter(|k| !known.contains(k))
        .collect();
    if new.is_empty() {
        return Ok(Vec::new());
    }
    let configured: std::collections::HashSet<&str> = config.feeds.iter().map(|f| f.key.as_str()).collect();
    let mut orphans: Vec<&(String, Option<String>)> = stored
        .iter()
        .filter(|(url, _)| !configured.contains(url.as_str()))
        .collect();
    let mut renames = Vec::new();
    for key in new {
        let identity = crate::model::feed_identity(key);
        let found = orphans.iter().position(|(url, moved_to)| {
            moved_to.as_deref() == Some(key) || crate::model::feed_identity(url) == identity
        });
        if let Some(at) = found {
            let (url, _) = orphans.swap_remove(at);
            renames.push((url.clone(), key.to_string()));
        }
    }
    Ok(renames)
}

/// Brings the store's rows for `feeds` up to date with the config before polling: rows for
/// new feeds (due at once), another chance for feeds found gone under an older config, and
/// due times computed again where the policy they were computed under changed (or was never
/// recorded: a database from before due times were stored). With `whole_config`, every other
/// feed is taken off the schedule. Returns the feeds' states, in the order of `feeds`.
pub async fn prepare(
    config: &Config,
    feeds: &[FeedSpec],
    store: &Store,
    now: DateTime<Utc>,
    whole_config: bool,
) -> Result<Vec<FeedState>, StoreError> {
    let urls: Vec<String> = feeds.iter().map(|f| f.key.clone()).collect();
    // Feeds with credentials were once stored under their whole URL: their rows move to the
    // identity without them, so their history and entries stay theirs.
    let renames: Vec<(String, String)> = feeds
        .iter()
        .filter(|f| f.url.as_str() != f.key)
        .map(|f| (f.url.to_string(), f.key.clone()))
        .collect();
    let policies: Vec<Policy> = feeds.iter().map(|f| Policy::of(config, f)).collect();
    let disabled: Vec<bool> = feeds.iter().map(|f| f.disabled).collect();
    // A changed `poll.new_feed_entries` lets more (or less) of new feeds' back catalogues
    // into outputs from the next render on.
    store.apply_catalogue_limit(config.poll.new_feed_entries).await?;
    if !renames.is_empty() {
        store.rekey_feeds(renames, false).await?;
    }
    if whole_config {
        let adopted = respelled(config, store).await?;
        if !adopted.is_empty() {
            for (old, new) in &adopted {
                tracing::info!(from = %old, to = %new, "the same feed under a new URL: its history and entry ids go on");
            }
            store.rekey_feeds(adopted, true).await?;
        }
    }
    store
        .forgive_gone(urls.clone(), config.fingerprint.clone())
        .await?;
    let mut states = store.ensure_feeds(urls, now).await?;
    let delays = store.host_delays(now).await?;
    let mut stale = Vec::new();
    for ((state, policy), disabled) in states.iter_mut().zip(&policies).zip(&disabled) {
        if *disabled {
            // Kept, not polled: off the schedule until enabled (then due at once).
            if state.next_due.is_some() || state.schedule_key.is_some() {
                state.next_due = None;
                state.schedule_key = None;
                stale.push((
                    state.id,
                    Scheduled {
                        next_due: None,
                        key: String::new(),
                        lease: None,
                    },
                ));
            }
            continue;
        }
        let key = policy.key();
        let gone = state.gone_at.is_some();
        if state.schedule_key.as_deref() == Some(key.as_str()) && (state.next_due.is_some() || gone) {
            continue;
        }
        let host_delay = Url::parse(&state.url)
            .ok()
            .and_then(|u| host_key(&u))
            .and_then(|h| delays.get(&h).copied());
        let next_due = schedule::due(policy, &state.url, &History::from(&*state), host_delay).at;
        state.next_due = next_due;
        state.schedule_key = Some(key.clone());
        stale.push((
            state.id,
            Scheduled {
                next_due,
                key,
                lease: None,
            },
        ));
    }
    store.schedule(stale).await?;
    if whole_config {
        store
            .unschedule_others(states.iter().map(|s| s.id).collect())
            .await?;
    }
    Ok(states)
}

/// Polls `feeds` once and renders nothing. Fails only when the store itself fails: then no
/// new fetch starts, the ones running finish, and what was committed stays. Once `stop` is
/// cancelled no new fetch starts; fetches already running finish (the caller bounds how long
/// it waits). Unless `options.force`, a feed held back (gone, backing off, under a
/// Retry-After, or on a host that asked to wait) is skipped and reported as skipped, so a
/// `poll` run from cron is as polite as the daemon.
pub(crate) async fn poll_feeds(
    config: &Config,
    feeds: &[FeedSpec],
    fetcher: &Fetcher,
    store: &Store,
    stop: &CancellationToken,
    options: Options,
) -> Result<PollReport, StoreError> {
    let started = Instant::now();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let whole_config = feeds.len() == config.feeds.len();
    let states = prepare(config, feeds, store, clock.now(), whole_config).await?;
    let mut poller = Poller::new(config, fetcher.clone(), store.clone(), clock.clone()).await?;
    poller.force = options.force;
    let mut states: Vec<(&FeedSpec, FeedState)> = feeds
        .iter()
        .zip(states)
        .filter(|(spec, _)| !spec.disabled)
        .collect();
    // On a store the nodes of a cluster share, this poll is one more node for one round. With
    // nodes running it polls what is due and nobody holds (with --force, what nobody holds)
    // and leaves the rest to them, so no feed is fetched twice in its slot; with none, every
    // feed nobody holds, as a poll of a store of its own does.
    let mut cluster = None;
    let mut left_to_nodes = 0;
    if let Some(coordination) = store.coordination() {
        let lease = config.node.lease;
        let now = clock.now();
        let (nodes, _) = store.cluster(now, lease).await?;
        let nodes_running = nodes.iter().any(|n| n.heartbeating);
        let ids = states.iter().map(|(_, s)| s.id).collect();
        let until = now + chrono::Duration::from_std(lease).unwrap_or_default();
        let claimed: HashMap<i64, FeedState> = store
            .claim_feeds(ids, now, until, nodes_running && !options.force)
            .await?
            .into_iter()
            .map(|f| (f.id, f))
            .collect();
        let before = states.len();
        states = states
            .into_iter()
            .filter_map(|(spec, state)| Some((spec, claimed.get(&state.id)?.clone())))
            .collect();
        left_to_nodes = before - states.len();
        if nodes_running {
            // `per_host` is the cluster's: this poll takes its hosts' turns with the nodes.
            poller.share_turns(SharedTurns {
                cluster: coordination,
                hold: config.poll.timeout * 2,
                wait: lease + config.poll.timeout,
                freed: Default::default(),
                failing: Default::default(),
            });
        }
        cluster = Some(Claims::keep(
            store.clone(),
            claimed.into_keys().collect(),
            lease,
            clock.clone(),
        ));
    }
    for (spec, state) in states {
        poller.submit(spec.clone(), state, Policy::of(config, spec));
    }
    let mut reports: HashMap<i64, FeedReport> = HashMap::new();
    loop {
        if stop.is_cancelled() {
            poller.stop();
        }
        let next = tokio::select! {
            next = poller.next() => next,
            () = stop.cancelled(), if !poller.stopped() => continue,
        };
        if let (Some(Ok(report)), Some(claims)) = (&next, &cluster) {
            claims.done(report.feed_id);
        }
        let Some(result) = next else { break };
        let report = match result {
            Ok(report) => report,
            Err(unrecorded) => {
                // The store failed: nothing more can be recorded. What is running finishes
                // (its commits fail the same way or succeed); nothing new starts.
                poller.stop();
                while poller.next().await.is_some() {}
                return Err(unrecorded.error);
            }
        };
        if let Some(progress) = &options.progress {
            progress(&report);
        }
        reports.insert(report.feed_id, report);
    }
    // The round's icon looks, before the outputs are rendered (unless the poll was stopped).
    let looks: Vec<IconLook> = reports.values_mut().filter_map(|r| r.icon_look.take()).collect();
    if !looks.is_empty() && !stop.is_cancelled() {
        tokio::select! {
            _ = poller.icon_looks(looks) => {}
            () = stop.cancelled() => {}
        }
    }
    // Whatever never started (a stop was requested) is reported as skipped, not lost.
    let never_started: HashMap<i64, Job> = poller
        .take_queued()
        .into_iter()
        .map(|j| (j.state.id, j))
        .collect();
    if let Some(claims) = cluster {
        // Claimed and never polled: due for the nodes as they were.
        claims.release(never_started.keys().copied().collect()).await?;
    }
    let feeds_report = feeds
        .iter()
        .filter(|spec| !spec.disabled)
        .filter_map(|spec| {
            let key = spec.key.as_str();
            let report = reports
                .values()
                .find(|r| r.url == display_url(&spec.url))
                .cloned();
            report.or_else(|| {
                never_started
                    .values()
                    .find(|j| j.spec.key == key)
                    .map(|j| skipped(j, "shutting down".into(), j.state.next_due))
            })
        })
        .collect();
    Ok(PollReport {
        feeds: feeds_report,
        left_to_nodes,
        elapsed: started.elapsed(),
    })
}

/// The claims a one-shot poll holds on a cluster's store, renewed (as a node renews its own)
/// until each feed's poll is recorded, so no node takes a feed this poll is still fetching.
struct Claims {
    store: Store,
    held: Arc<std::sync::Mutex<std::collections::HashSet<i64>>>,
    renewal: tokio::task::JoinHandle<()>,
}

impl Claims {
    fn keep(
        store: Store,
        held: std::collections::HashSet<i64>,
        lease: Duration,
        clock: Arc<dyn Clock>,
    ) -> Claims {
        let held = Arc::new(std::sync::Mutex::new(held));
        let (renewing, watched) = (store.clone(), held.clone());
        let renewal = tokio::spawn(async move {
            let mut tick = tokio::time::interval(lease / 3);
            tick.tick().await;
            loop {
                tick.tick().await;
                let ids: Vec<i64> = watched
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .iter()
                    .copied()
                    .collect();
                let until = clock.now() + chrono::Duration::from_std(lease).unwrap_or_default();
                if let Err(e) = renewing.renew_leases(ids, until).await {
                    tracing::warn!(error = %e, "cannot renew this poll's claims; nodes may take them when they run out");
                }
            }
        });
        Claims { store, held, renewal }
    }

    /// Feed `id`'s poll is recorded: its claim ended with it.
    fn done(&self, id: i64) {
        self.held.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
    }

    /// Gives the claims on `ids` back (claimed and not polled) and stops renewing.
    async fn release(self, ids: Vec<i64>) -> Result<(), StoreError> {
        self.renewal.abort();
        if ids.is_empty() {
            return Ok(());
        }
        self.store.release_leases(Some(ids)).await.map(drop)
    }
}

impl Drop for Claims {
    fn drop(&mut self) {
        self.renewal.abort();
    }
}

/// One feed waiting to be polled.
#[derive(Debug, Clone)]
pub(crate) struct Job {
    spec: FeedSpec,
    state: FeedState,
    /// Where it is fetched from (where it moved to, else its configured URL).
    target: Url,
    policy: Policy,
}

impl Job {
    pub fn feed_id(&self) -> i64 {
        self.state.id
    }

    /// The feed's identity (see [`crate::model::feed_key`]).
    pub fn key(&self) -> &str {
        &self.spec.key
    }
}

fn skipped(job: &Job, reason: String, next_due: Option<DateTime<Utc>>) -> FeedReport {
    skipped_feed(&job.state, display_url(&job.spec.url), reason, next_due)
}

/// The report of a feed not fetched (whose stored `state` is as it was), due next at `next_due`.
fn skipped_feed(
    state: &FeedState,
    url: String,
    reason: String,
    next_due: Option<DateTime<Utc>>,
) -> FeedReport {
    FeedReport {
        feed_id: state.id,
        url,
        result: Ok(FeedStatus::Skipped(reason)),
        failures: state.consecutive_failures,
        last_error: state
            .last_error
            .clone()
            .filter(|_| state.consecutive_failures > 0),
        next_due,
        abandoned: false,
        recovered_after: 0,
        newly_repaired: Vec::new(),
        elapsed: Duration::ZERO,
        icon_look: None,
        push: None,
    }
}

/// Polls the feeds handed to it, within the config's budget, for as long as it lives: a
/// one-shot poll hands it every feed and drains it; the daemon hands it feeds as they come
/// due. Feeds wait in per-host queues and start while the budget allows, taking hosts
/// round-robin so that 300 feeds on one host do not hold up the other hosts' feeds:
///
/// - at most `poll.concurrency` feeds fetching and parsing, and `poll.per_host` per host. A
///   feed gives its place back when its content is ready, not when its record commits, so a
///   store that takes a moment to commit does not idle the network (a cluster's shared store
///   answers in milliseconds, a fetch in hundreds);
/// - at most twice that many feeds started and not yet recorded: what bounds the bodies held
///   in memory when the store is slower than the network.
pub(crate) struct Poller {
    context: Context,
    concurrency: usize,
    per_host: usize,
    hosts: Hosts,
    running: JoinSet<Result<FeedReport, StoreError>>,
    /// Feeds fetching or parsing: the ones that hold a place of the budget.
    fetching: usize,
    /// Feeds started and not finished, whatever stage they are in (skips, which only record,
    /// are not counted).
    unrecorded: usize,
    in_flight: HashMap<tokio::task::Id, InFlight>,
    /// Polls say here that their content is ready: their place goes to the next feed.
    ready: tokio::sync::mpsc::UnboundedReceiver<tokio::task::Id>,
    /// Told when a place of the budget is given back.
    room_freed: Arc<tokio::sync::Notify>,
    /// Poll held-back feeds too (`poll --force`).
    pub force: bool,
    stopped: bool,
}

struct InFlight {
    host: Option<usize>,
    /// Still fetching or parsing: holds a place of the budget (and of its host's queue).
    fetching: bool,
    feed_id: i64,
    url: String,
    next_due: Option<DateTime<Utc>>,
}

/// A feed whose poll could not be recorded: the store failed.
#[derive(Debug)]
pub(crate) struct Unrecorded {
    pub feed_id: i64,
    pub error: StoreError,
}

impl Poller {
    /// A poller with `config`'s budget, its hosts' delays read from the store.
    pub async fn new(
        config: &Config,
        fetcher: Fetcher,
        store: Store,
        clock: Arc<dyn Clock>,
    ) -> Result<Poller, StoreError> {
        let now = clock.now();
        let delays = store.host_delays(now).await?;
        let announced = announced_agents(config, &store, now).await?;
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
        let (ready_tx, ready) = tokio::sync::mpsc::unbounded_channel();
        Ok(Poller {
            context: Context {
                ready: ready_tx,
                fetcher,
                store,
                clock,
                parsing: Arc::new(Semaphore::new(cores)),
                new_feed_entries: config.poll.new_feed_entries,
                fingerprint: config.fingerprint.clone(),
                requests: Arc::new(HostPermits::new(config.poll.per_host, None)),
                concurrency: config.poll.concurrency,
                delays: Arc::new(HostDelays(std::sync::Mutex::new(delays))),
                icons: config.poll.icons,
                announced: Arc::new(std::sync::RwLock::new(announced)),
            },
            concurrency: config.poll.concurrency,
            per_host: config.poll.per_host,
            hosts: Hosts::default(),
            running: JoinSet::new(),
            fetching: 0,
            unrecorded: 0,
            in_flight: HashMap::new(),
            ready,
            room_freed: Arc::default(),
            force: false,
            stopped: false,
        })
    }

    /// Takes per-host turns from the cluster's store from now on, so `poll.per_host` holds for
    /// the whole cluster.
    pub(crate) fn share_turns(&mut self, shared: SharedTurns) {
        self.context.requests = Arc::new(HostPermits::new(self.per_host, Some(shared)));
    }

    /// A turn at `host` was given back in the cluster: a request waiting for one tries again.
    pub(crate) fn turn_freed(&self, host: &str) {
        if let Some(shared) = &self.context.requests.shared {
            shared.freed.freed(host);
        }
    }

    /// Hosts that asked another node of the cluster to wait: this poller waits too.
    pub(crate) fn hold_hosts(&self, delays: &HashMap<String, DateTime<Utc>>) {
        for (host, until) in delays {
            self.context.delays.hold(host, *until);
        }
    }

    /// A new config's budget, client and limits, for the feeds that start from now on.
    pub(crate) fn reconfigure(&mut self, config: &Config, fetcher: Fetcher) {
        self.context.fetcher = fetcher;
        self.context.new_feed_entries = config.poll.new_feed_entries;
        self.context.fingerprint = config.fingerprint.clone();
        if config.poll.per_host != self.per_host {
            // Turns already taken run out on the old permits; new ones follow the new limit.
            let shared = self.context.requests.shared.clone();
            self.context.requests = Arc::new(HostPermits::new(config.poll.per_host, shared));
        }
        self.context.concurrency = config.poll.concurrency;
        self.concurrency = config.poll.concurrency;
        self.per_host = config.poll.per_host;
        self.hosts.set_per_host(self.per_host, self.concurrency);
    }

    /// Looks for the icons `looks` name, a few at a time (the host turns and holds of a round
    /// apply): what the daemon does after each round, and `poll` before it renders.
    /// How many new images were found (outputs that show icons render again for them).
    pub(crate) fn icon_looks(&self, looks: Vec<IconLook>) -> impl Future<Output = usize> + Send + 'static {
        let context = self.context.clone();
        async move {
            let done = futures::stream::iter(looks)
                .map(|look| look_for_icon(look, &context))
                .buffer_unordered(ICON_LOOKS_AT_ONCE)
                .collect::<Vec<_>>()
                .await;
            if let Some(Err(e)) = done.iter().find(|d| d.is_err()) {
                tracing::debug!(error = %e, "cannot record a feed's icon");
            }
            done.into_iter().filter(|d| matches!(d, Ok(true))).count()
        }
    }

    /// Takes a body a WebSub hub pushed for feed `feed_id` as if a poll had fetched it:
    /// decoded, parsed, compared with the store, its content finished, judged by its rules and
    /// stored (its new entries marked as pushed), its next poll scheduled from now. Outside the
    /// budget: nothing is fetched. `None`: the feed is not in `config` (or is disabled).
    pub(crate) fn take_push(
        &self,
        config: Arc<Config>,
        feed_id: i64,
        bytes: Vec<u8>,
        content_type: Option<String>,
    ) -> impl Future<Output = Result<Option<FeedReport>, StoreError>> + Send + 'static {
        let context = self.context.clone();
        async move {
            let Some(state) = context.store.feeds_by_id(vec![feed_id]).await?.remove(&feed_id) else {
                return Ok(None);
            };
            let Some(spec) = config
                .feed_positions
                .get(&state.url)
                .and_then(|at| config.feeds.get(*at))
                .filter(|spec| !spec.disabled)
            else {
                return Ok(None);
            };
            let target = effective_url(spec, &state);
            let body = fetch::Body {
                bytes,
                content_type,
                final_url: target.clone(),
                // A push has none of its own: the next poll asks as the last one did.
                validators: state.validators.clone(),
                caching: Caching::default(),
                moved: None,
                memory: None,
                push: None,
            };
            let job = Job {
                policy: Policy::of(&config, spec),
                spec: spec.clone(),
                state,
                target,
            };
            poll_one(job, None, &context, Some(body)).await.map(Some)
        }
    }

    /// Reads the outputs' readers again, for the User-Agents of `poll.announce_readers` (the
    /// daemon, after each round).
    pub(crate) fn refresh_readers(&self, config: Arc<Config>) -> impl Future<Output = ()> + Send + 'static {
        let (store, clock, announced) = (
            self.context.store.clone(),
            self.context.clock.clone(),
            self.context.announced.clone(),
        );
        async move {
            match announced_agents(&config, &store, clock.now()).await {
                Ok(agents) => *announced.write().unwrap_or_else(|e| e.into_inner()) = agents,
                Err(e) => tracing::debug!(error = %e, "cannot read the outputs' readers"),
            }
        }
    }

    /// Queues `spec` (whose store row is `state`) for polling; `policy` schedules it after.
    pub(crate) fn submit(&mut self, spec: FeedSpec, state: FeedState, policy: Policy) {
        let target = effective_url(&spec, &state);
        let host = host_key(&target);
        let job = Job {
            spec,
            state,
            target,
            policy,
        };
        self.hosts.push(host, job, self.per_host, self.concurrency);
    }

    /// Feeds queued, not yet started.
    pub(crate) fn queued(&self) -> usize {
        self.hosts.queued
    }

    /// How many more feeds could start fetching now (queued ones count as started).
    pub(crate) fn room(&self) -> usize {
        let unrecorded_room = (self.concurrency * 2).saturating_sub(self.unrecorded);
        self.concurrency
            .saturating_sub(self.fetching + self.hosts.queued)
            .min(unrecorded_room.saturating_sub(self.hosts.queued))
    }

    /// Notified when a place of the budget is given back (see [`Poller::room`]).
    pub(crate) fn room_freed(&self) -> Arc<tokio::sync::Notify> {
        self.room_freed.clone()
    }

    /// Whether anything is queued or running.
    pub fn busy(&self) -> bool {
        self.queued() > 0 || !self.running.is_empty()
    }

    /// No new feed starts from now on; the running ones finish.
    pub fn stop(&mut self) {
        self.stopped = true;
    }

    pub fn stopped(&self) -> bool {
        self.stopped
    }

    /// Takes every queued feed out (never started).
    pub(crate) fn take_queued(&mut self) -> Vec<Job> {
        self.hosts.take_where(|_| true)
    }

    /// Takes the queued feeds for which `remove` holds out (e.g. removed from the config).
    pub(crate) fn take_queued_where(&mut self, remove: impl Fn(&Job) -> bool) -> Vec<Job> {
        self.hosts.take_where(remove)
    }

    /// The next feed's report, starting queued feeds as the budget allows; `None` once nothing
    /// is queued (or the poller is stopped) and nothing runs. Cancel-safe: a report is never
    /// lost when the future is dropped before it is ready.
    pub async fn next(&mut self) -> Option<Result<FeedReport, Unrecorded>> {
        loop {
            self.start_what_fits();
            if self.running.is_empty() {
                return None;
            }
            // A place given back is taken first: the next feed starts before this one's
            // record is heard of.
            tokio::select! {
                biased;
                Some(id) = self.ready.recv() => self.content_ready(id),
                Some(joined) = self.running.join_next_with_id() => {
                    let report = self.joined(joined);
                    self.start_what_fits();
                    if let Some(report) = report {
                        return Some(report);
                    }
                }
            }
        }
    }

    /// Feed task `id` has its content: its place in the budget and in its host's queue go to
    /// the next feed (the rest of its poll is the store's).
    fn content_ready(&mut self, id: tokio::task::Id) {
        let Some(flight) = self.in_flight.get_mut(&id).filter(|f| f.fetching) else {
            return;
        };
        flight.fetching = false;
        self.fetching = self.fetching.saturating_sub(1);
        if let Some(q) = flight.host {
            self.hosts.finished(q);
        }
        self.room_freed.notify_one();
    }

    /// What a finished feed task comes to: its report, or the store's failure.
    fn joined(
        &mut self,
        joined: Result<(tokio::task::Id, Result<FeedReport, StoreError>), tokio::task::JoinError>,
    ) -> Option<Result<FeedReport, Unrecorded>> {
        let (id, outcome) = match joined {
            Ok((id, outcome)) => (id, Ok(outcome)),
            Err(e) => (e.id(), Err(e)),
        };
        self.content_ready(id);
        let flight = self.in_flight.remove(&id);
        if flight.as_ref().is_some_and(|f| f.host.is_some()) {
            self.unrecorded = self.unrecorded.saturating_sub(1);
            self.room_freed.notify_one();
        }
        match outcome {
            Ok(Ok(report)) => Some(Ok(report)),
            Ok(Err(error)) => Some(Err(Unrecorded {
                feed_id: flight.map_or(0, |f| f.feed_id),
                error,
            })),
            // A panic is a bug; it costs that feed's poll, never the others'. Its lease runs
            // out and it is tried again then.
            Err(e) => {
                let flight = flight?;
                Some(Ok(FeedReport {
                    feed_id: flight.feed_id,
                    url: flight.url,
                    result: Err(FeedFailure {
                        kind: FailureKind::Internal,
                        message: format!("internal error: {e}"),
                    }),
                    failures: 0,
                    last_error: None,
                    next_due: flight.next_due,
                    abandoned: false,
                    recovered_after: 0,
                    newly_repaired: Vec::new(),
                    elapsed: Duration::ZERO,
                    icon_look: None,
                    push: None,
                }))
            }
        }
    }

    fn start_what_fits(&mut self) {
        while !self.stopped && self.fetching < self.concurrency && self.unrecorded < self.concurrency * 2 {
            let Some((q, job)) = self.hosts.next_start() else {
                break;
            };
            let now = self.context.clock.now();
            let host_delay = self.hosts.name(q).and_then(|h| self.context.delays.until(h, now));
            if !self.force {
                let due = schedule::due(&job.policy, &job.spec.key, &History::from(&job.state), host_delay);
                if let Some(hold) = due.hold.filter(|h| h.holds_at(now)) {
                    // Not fetched: recorded as due when the hold ends, outside the budget.
                    self.hosts.finished(q);
                    let (store, key) = (self.context.store.clone(), job.policy.key());
                    let report = skipped(&job, hold.to_string(), due.at);
                    let (feed_id, lease) = (job.state.id, job.state.lease_epoch);
                    let task = self.running.spawn(async move {
                        let scheduled = Scheduled {
                            next_due: due.at,
                            key,
                            lease,
                        };
                        store.schedule(vec![(feed_id, scheduled)]).await?;
                        Ok(report)
                    });
                    self.in_flight.insert(
                        task.id(),
                        InFlight {
                            host: None,
                            fetching: false,
                            feed_id,
                            url: display_url(&job.spec.url),
                            next_due: due.at,
                        },
                    );
                    continue;
                }
            }
            let flight = InFlight {
                host: Some(q),
                fetching: true,
                feed_id: job.state.id,
                url: display_url(&job.spec.url),
                next_due: job.state.next_due,
            };
            let context = self.context.clone();
            let task = self
                .running
                .spawn(async move { poll_one(job, host_delay, &context, None).await });
            self.fetching += 1;
            self.unrecorded += 1;
            self.in_flight.insert(task.id(), flight);
        }
    }
}

/// Per-host queues of feeds, served round-robin within per-host limits. Every operation is
/// O(1), so 10,000 hosts cost no more than 10 to schedule.
#[derive(Default)]
struct Hosts {
    index: HashMap<Option<String>, usize>,
    names: Vec<Option<String>>,
    queues: Vec<VecDeque<Job>>,
    active: Vec<usize>,
    limits: Vec<usize>,
    /// Hosts with queued feeds and room under their limit, in round-robin order.
    ready: VecDeque<usize>,
    in_ready: Vec<bool>,
    queued: usize,
    /// Feeds started and not finished, over all hosts.
    running: usize,
}

impl Hosts {
    fn limit_for(host: &Option<String>, per_host: usize, concurrency: usize) -> usize {
        // Local files have no host to be polite to.
        if host.is_some() { per_host } else { concurrency }.max(1)
    }

    fn push(&mut self, host: Option<String>, job: Job, per_host: usize, concurrency: usize) {
        let q = match self.index.get(&host) {
            Some(q) => *q,
            None => {
                let q = self.names.len();
                self.limits.push(Self::limit_for(&host, per_host, concurrency));
                self.index.insert(host.clone(), q);
                self.names.push(host);
                self.queues.push(VecDeque::new());
                self.active.push(0);
                self.in_ready.push(false);
                q
            }
        };
        self.queues[q].push_back(job);
        self.queued += 1;
        self.requeue(q);
    }

    fn set_per_host(&mut self, per_host: usize, concurrency: usize) {
        for (q, name) in self.names.iter().enumerate() {
            self.limits[q] = Self::limit_for(name, per_host, concurrency);
        }
        for q in 0..self.names.len() {
            self.requeue(q);
        }
    }

    fn name(&self, q: usize) -> Option<&str> {
        self.names.get(q).and_then(|n| n.as_deref())
    }

    /// The next feed to start, from the next host in turn that may take one.
    fn next_start(&mut self) -> Option<(usize, Job)> {
        loop {
            let q = self.ready.pop_front()?;
            self.in_ready[q] = false;
            let Some(job) = self.queues[q].pop_front() else {
                continue;
            };
            self.queued -= 1;
            self.active[q] += 1;
            self.running += 1;
            self.requeue(q);
            return Some((q, job));
        }
    }

    /// A feed of host `q` is done (or was skipped without starting).
    fn finished(&mut self, q: usize) {
        self.active[q] = self.active[q].saturating_sub(1);
        self.running = self.running.saturating_sub(1);
        self.requeue(q);
        // Nothing queued or running: no host's index is held anywhere, so the hosts seen so
        // far are forgotten. A daemon whose feeds move between hosts over months keeps only
        // the hosts of the round at hand.
        if self.queued == 0 && self.running == 0 {
            *self = Hosts::default();
        }
    }

    fn requeue(&mut self, q: usize) {
        if !self.in_ready[q] && !self.queues[q].is_empty() && self.active[q] < self.limits[q] {
            self.in_ready[q] = true;
            self.ready.push_back(q);
        }
    }

    fn take_where(&mut self, remove: impl Fn(&Job) -> bool) -> Vec<Job> {
        let mut taken = Vec::new();
        for queue in &mut self.queues {
            let (out, keep): (VecDeque<Job>, VecDeque<Job>) = queue.drain(..).partition(|j| remove(j));
            *queue = keep;
            taken.extend(out);
        }
        self.queued -= taken.len();
        taken
    }
}

/// Where a feed is fetched from: where it moved to, else its configured URL. A move within the
/// same host keeps the configured credentials; a move elsewhere does not take them along.
fn effective_url(spec: &FeedSpec, state: &FeedState) -> Url {
    let Some(moved) = state.moved_to.as_deref().and_then(|m| Url::parse(m).ok()) else {
        return spec.url.clone();
    };
    let mut url = moved;
    if url.host_str() == spec.url.host_str() && !spec.url.username().is_empty() {
        let _ = url.set_username(spec.url.username());
        let _ = url.set_password(spec.url.password());
    }
    url
}

/// What every feed's poll shares.
#[derive(Clone)]
struct Context {
    fetcher: Fetcher,
    store: Store,
    clock: Arc<dyn Clock>,
    /// Bounds the CPU-bound steps to one per core.
    parsing: Arc<Semaphore>,
    new_feed_entries: usize,
    /// The config's fingerprint, recorded with a feed found gone.
    fingerprint: String,
    /// Requests in flight per host, feeds' and their entries' pages alike.
    requests: Arc<HostPermits>,
    /// How many of a feed's pages are fetched at once (`poll.concurrency`).
    concurrency: usize,
    /// Hosts that asked everyone to wait, for feeds and pages alike.
    delays: Arc<HostDelays>,
    /// Where a feed's poll says its content is ready (see [`Poller::content_ready`]).
    ready: tokio::sync::mpsc::UnboundedSender<tokio::task::Id>,
    /// Whether feeds' icons are looked for (`poll.icons`).
    icons: bool,
    /// The User-Agent each feed is fetched with when it tells its readers
    /// (`poll.announce_readers`), by feed key.
    announced: Arc<std::sync::RwLock<HashMap<String, String>>>,
}

/// Hosts that asked everyone to wait (429, or 503 with Retry-After), until when: read from the
/// store when the poller starts, then kept here as they come (and in the store, by
/// [`hold_host`]), so a feed or a page learns of its host's wait without asking the store.
struct HostDelays(std::sync::Mutex<HashMap<String, DateTime<Utc>>>);

impl HostDelays {
    /// Until when `host` asked to wait, if that is still after `now`.
    fn until(&self, host: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let delays = self.0.lock().unwrap_or_else(|e| e.into_inner());
        delays.get(host).copied().filter(|t| *t > now)
    }

    fn hold(&self, host: &str, until: DateTime<Utc>) {
        let mut delays = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let entry = delays.entry(host.to_string()).or_insert(until);
        *entry = (*entry).max(until);
    }
}

/// `host` asked everyone to wait until `until`: every feed and page of this poller holds off,
/// and the store remembers it for the next poller (another `poll`, a restart).
async fn hold_host(
    context: &Context,
    host: String,
    until: DateTime<Utc>,
    reason: String,
) -> Result<(), StoreError> {
    context.delays.hold(&host, until);
    context.store.delay_host(host, until, reason).await
}

/// At most `poll.per_host` requests in flight to any one host, whoever makes them: the Poller
/// starts at most that many feeds of a host, and a feed's own page fetches (`full_text`, often
/// on the same host) take their turns from the same permits.
struct HostPermits {
    per_host: usize,
    hosts: std::sync::Mutex<PermitMap>,
    /// In a cluster, the turns are the cluster's: a local permit, then one of the host's
    /// turns in the shared store.
    shared: Option<SharedTurns>,
}

/// The cluster's per-host turns (see [`Coordination::take_turn`]).
#[derive(Clone)]
pub(crate) struct SharedTurns {
    pub cluster: Arc<dyn Coordination>,
    /// How long a turn is held at most: a fetch's time limit, and then some. A node that dies
    /// holding one loses it after that.
    pub hold: Duration,
    /// How long a request waits for a turn before it goes ahead under the local limit alone
    /// (every turn held that long means their holders are stuck or the store is).
    pub wait: Duration,
    /// Wakes a waiter when a turn at its host is given back anywhere in the cluster.
    pub freed: Arc<FreedTurns>,
    /// The store could not be asked for a turn last time (said once, not at every fetch).
    pub failing: Arc<std::sync::atomic::AtomicBool>,
}

/// Per host, a wake-up for one request waiting for a turn there: the cluster announces each
/// turn given back (`TURNS_CHANNEL`), and one waiter per node tries again, instead of every
/// waiter polling the store.
#[derive(Default)]
pub(crate) struct FreedTurns(std::sync::Mutex<HashMap<String, Arc<tokio::sync::Notify>>>);

impl FreedTurns {
    fn of(&self, host: &str) -> Arc<tokio::sync::Notify> {
        let mut hosts = self.0.lock().unwrap_or_else(|e| e.into_inner());
        // Kept small: hosts nobody waits for are dropped when the map grows.
        if hosts.len() >= HOST_PERMITS_KEPT {
            hosts.retain(|_, n| Arc::strong_count(n) > 1);
        }
        hosts.entry(host.to_string()).or_default().clone()
    }

    /// A turn at `host` was given back.
    pub(crate) fn freed(&self, host: &str) {
        let waiting = self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(host)
            .cloned();
        if let Some(waiting) = waiting {
            waiting.notify_one();
        }
    }
}

/// A turn at a host: a local permit, and the cluster's turn when there is one. The cluster's
/// is given back when this goes (or runs out by itself, if the node dies first).
struct Turn {
    _local: Option<tokio::sync::OwnedSemaphorePermit>,
    shared: Option<(Arc<dyn Coordination>, crate::store::Turn)>,
}

impl Drop for Turn {
    fn drop(&mut self) {
        if let Some((cluster, turn)) = self.shared.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move {
                if let Err(e) = cluster.give_back(&turn).await {
                    tracing::debug!(error = %e, host = %turn.host, "cannot give a host turn back; it runs out");
                }
            });
        }
    }
}

/// The hosts' permits, and the size at which idle ones are dropped next.
struct PermitMap {
    permits: HashMap<String, Arc<Semaphore>>,
    prune_at: usize,
}

/// Hosts whose permits are kept before idle ones are first dropped.
const HOST_PERMITS_KEPT: usize = 1024;

impl SharedTurns {
    /// One of `host`'s turns in the cluster, waiting (with growing pauses) while all are held,
    /// at most `wait`; `None` when none came, or the store could not be asked.
    async fn take(
        &self,
        host: &str,
        per_host: usize,
        clock: &dyn Clock,
    ) -> Option<(Arc<dyn Coordination>, crate::store::Turn)> {
        let started = tokio::time::Instant::now();
        let freed = self.freed.of(host);
        loop {
            let now = clock.now();
            let until = now + chrono::Duration::from_std(self.hold).unwrap_or_default();
            let taken = self.cluster.take_turn(host, per_host, now, until).await;
            if taken.is_ok() {
                self.failing.store(false, std::sync::atomic::Ordering::Relaxed);
            }
            match taken {
                Ok(Some(turn)) => return Some((self.cluster.clone(), turn)),
                Ok(None) if started.elapsed() < self.wait => {
                    // Until a turn is given back; a turn whose holder died frees itself only
                    // when it runs out, which a look now and then finds.
                    let _ = tokio::time::timeout(Duration::from_millis(500), freed.notified()).await;
                }
                Ok(None) => {
                    tracing::warn!(
                        host,
                        "no free turn at the host in the cluster; going ahead on this node's limit"
                    );
                    return None;
                }
                Err(e) => {
                    // Once while the store fails (every fetch would say it again); the daemon
                    // says that the store fails.
                    if !self.failing.swap(true, std::sync::atomic::Ordering::Relaxed) {
                        tracing::warn!(error = %e, host, "cannot take host turns in the cluster; going ahead on this node's limit until the store answers");
                    }
                    return None;
                }
            }
        }
    }
}

impl HostPermits {
    fn new(per_host: usize, shared: Option<SharedTurns>) -> HostPermits {
        HostPermits {
            per_host: per_host.max(1),
            hosts: std::sync::Mutex::new(PermitMap {
                permits: HashMap::new(),
                prune_at: HOST_PERMITS_KEPT,
            }),
            shared,
        }
    }

    /// How many hosts have permits now.
    #[cfg(test)]
    fn hosts(&self) -> usize {
        self.hosts.lock().unwrap_or_else(|e| e.into_inner()).permits.len()
    }

    /// Waits for a turn at `host` (none is needed for a local file): this node's, then, in a
    /// cluster, one of the cluster's.
    async fn turn(&self, host: Option<&str>, clock: &dyn Clock) -> Turn {
        let Some(host) = host else {
            return Turn {
                _local: None,
                shared: None,
            };
        };
        let local = self.local_turn(host).await;
        let shared = match &self.shared {
            Some(shared) => shared.take(host, self.per_host, clock).await,
            None => None,
        };
        Turn {
            _local: local,
            shared,
        }
    }

    async fn local_turn(&self, host: &str) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let permits = {
            let mut hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
            // Idle hosts (no turn held, nobody waiting) are dropped once the map reaches its
            // mark, which then doubles what is left: amortized O(1) per turn, and the map
            // stays about the size of the busy hosts however many come and go.
            if hosts.permits.len() >= hosts.prune_at {
                let per_host = self.per_host;
                hosts
                    .permits
                    .retain(|_, s| Arc::strong_count(s) > 1 || s.available_permits() < per_host);
                hosts.prune_at = (hosts.permits.len() * 2).max(HOST_PERMITS_KEPT);
            }
            hosts
                .permits
                .entry(host.to_string())
                .or_insert_with(|| Arc::new(Semaphore::new(self.per_host)))
                .clone()
        };
        permits.acquire_owned().await.ok()
    }
}

/// Polls one feed and records the outcome with the feed's next due time. `host_delay` is its
/// host's standing wait, if any (a `--force` poll can run under one).
async fn poll_one(
    job: Job,
    host_delay: Option<DateTime<Utc>>,
    context: &Context,
    pushed: Option<fetch::Body>,
) -> Result<FeedReport, StoreError> {
    let Job {
        spec,
        state,
        target,
        policy,
    } = job;
    let started = Instant::now();
    let began = context.clock.now();
    let store = &context.store;
    let url = display_url(&spec.url);
    let host = host_key(&target);
    let feed_id = state.id;
    let was_pushed = pushed.is_some();
    let fetched = match pushed {
        // A hub's push is the body a fetch would have brought: no request, no turn at the host.
        Some(body) => Ok(Fetched::Modified(body)),
        None => {
            // The readers of its outputs, told in the User-Agent (unless the feed sets its own).
            let announced: Option<Vec<(String, String)>> = context
                .announced
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .get(&spec.key)
                .filter(|_| {
                    !spec
                        .headers
                        .iter()
                        .any(|(n, _)| n.eq_ignore_ascii_case("user-agent"))
                })
                .map(|agent| {
                    let mut headers = spec.headers.clone();
                    headers.push(("User-Agent".to_string(), agent.clone()));
                    headers
                });
            let request = fetch::Request {
                url: &target,
                validators: &state.validators,
                headers: announced.as_deref().unwrap_or(&spec.headers),
                // A list's member is a URL from content; the operator wrote the others.
                trust: match spec.list {
                    Some(_) => fetch::Trust::Content,
                    None => fetch::Trust::Operator,
                },
                timeout: spec.timeout,
                proxy: spec.proxy.as_ref(),
            };
            let turn = context
                .requests
                .turn(host.as_deref(), context.clock.as_ref())
                .await;
            // Asked after the turn: a feed that waited behind one answered 429 (on this node
            // or, in a cluster, on another) must not go ahead.
            let now = context.clock.now();
            let asked_to_wait = host
                .as_deref()
                .and_then(|h| context.delays.until(h, now))
                .filter(|_| host_delay.is_none());
            if let Some(until) = asked_to_wait {
                drop(turn);
                let due = schedule::due(&policy, &spec.key, &History::from(&state), Some(until));
                let scheduled = Scheduled {
                    next_due: due.at,
                    key: policy.key(),
                    lease: state.lease_epoch,
                };
                store.schedule(vec![(feed_id, scheduled)]).await?;
                let reason = due
                    .hold
                    .map_or_else(|| "its host asked to wait".to_string(), |h| h.to_string());
                return Ok(skipped_feed(&state, url, reason, due.at));
            }
            let fetched = context.fetcher.fetch(request).await;
            drop(turn);
            fetched
        }
    };
    // The Link headers name the hub before the document does (W3C WebSub §4).
    let header_push = match &fetched {
        Ok(Fetched::Modified(body)) if !was_pushed => Some(body.push.as_deref().cloned().unwrap_or_default()),
        _ => None,
    };
    let outcome = match fetched {
        Ok(fetched) => {
            if !was_pushed {
                note_redirect(store, feed_id, &url, fetched.moved(), &state).await?;
            }
            parse_new(fetched, &spec, &state, store, &context.parsing).await
        }
        Err(e) => Err(e.into()),
    };
    // The rest of the content stage (full text), then the feed's rules, on what is new.
    let outcome = match outcome {
        Ok(Outcome::Parsed(mut parsed)) => {
            if spec.full_text {
                // A new feed's back catalogue is stored out of sight: its pages are not read.
                let first_poll = state.last_success.is_none();
                let limit = context.new_feed_entries;
                full_text(&mut parsed.entries, first_poll.then_some(limit), &spec, context).await?;
            }
            judge(&mut parsed, &spec.rules, &context.parsing)
                .await
                .map(|()| Outcome::Parsed(parsed))
        }
        other => other,
    };
    // Fetched and parsed, the content finished: the rest is the store's, and this feed's
    // place in the budget goes to the next one.
    let _ = context.ready.send(tokio::task::id());
    let now = context.clock.now();
    let key = spec.key.as_str();
    // What the schedule will know once this poll is recorded.
    let mut after = History {
        last_fetch: Some(now),
        consecutive_failures: 0,
        failure: None,
        failing_since: None,
        hints: Hints {
            retry_after: None,
            fresh_until: None,
            skip: state.hints.skip,
        },
        gone: false,
        pushed_until: state.pushed_until,
    };
    let stored_rhythm = FeedRhythm {
        ttl: state.rhythm,
        ..FeedRhythm::default()
    };
    let scheduled = |after: &History, host_delay: Option<DateTime<Utc>>| Scheduled {
        next_due: schedule::due(&policy, key, after, host_delay).at,
        key: policy.key(),
        lease: state.lease_epoch,
    };
    let mut abandoned = false;
    let mut newly_repaired = Vec::new();
    // What this poll's document says about the feed's icon, for the look after the record.
    let mut declared = IconHints::default();
    let mut push = None;
    let result = match outcome {
        Ok(Outcome::NotModified(caching)) => {
            after.hints.fresh_until = fresh_until(&caching, &stored_rhythm, now);
            let update = FeedUpdate::Unchanged {
                validators: None,
                fresh_until: after.hints.fresh_until,
            };
            let scheduled = scheduled(&after, host_delay);
            let next_due = scheduled.next_due;
            store.record_poll(feed_id, update, scheduled, now).await?;
            (Ok(FeedStatus::NotModified), next_due)
        }
        Ok(Outcome::Unchanged(validators, caching)) => {
            after.hints.fresh_until = fresh_until(&caching, &stored_rhythm, now);
            let update = FeedUpdate::Unchanged {
                validators: Some(validators),
                fresh_until: after.hints.fresh_until,
            };
            let scheduled = scheduled(&after, host_delay);
            let next_due = scheduled.next_due;
            store.record_poll(feed_id, update, scheduled, now).await?;
            (Ok(FeedStatus::Unchanged), next_due)
        }
        Ok(Outcome::Parsed(parsed)) => {
            if !parsed.feed.meta.repairs.is_empty() && parsed.feed.meta.repairs != state.repairs {
                newly_repaired = parsed.feed.meta.repairs.clone();
            }
            declared = IconHints {
                icon: parsed.feed.meta.icon.clone(),
                logo: parsed.feed.meta.logo.clone(),
                site: parsed.feed.meta.site_url.clone(),
            };
            push = header_push.map(|headers| {
                let meta = &parsed.feed.meta;
                let named = |u: &Option<String>| u.as_deref().and_then(|u| Url::parse(u).ok());
                let hub = headers.hub.or_else(|| named(&meta.hub));
                // A hub without a self link: the topic is the address the feed is fetched at.
                let topic = headers
                    .topic
                    .or_else(|| named(&meta.topic))
                    .or_else(|| hub.as_ref().map(|_| target.clone()));
                fetch::PushLinks { hub, topic }
            });
            let fresh = fresh_until(&parsed.caching, &parsed.feed.meta.rhythm, now);
            after.hints.fresh_until = fresh;
            after.hints.skip = parsed.feed.meta.rhythm.skip;
            let scheduled = scheduled(&after, host_delay);
            let next_due = scheduled.next_due;
            let new_feed_entries = context.new_feed_entries;
            let excluded = parsed.excluded;
            let Parsed {
                feed,
                entries,
                unchanged_segments,
                validators,
                body_hash,
                ..
            } = *parsed;
            let batch = ParsedBatch {
                meta: feed.meta,
                // A push has no validators of its own: the next poll asks as the last one did.
                validators,
                pushed: was_pushed,
                body_hash,
                entries,
                fresh_until: fresh,
                new_feed_entries,
                unchanged_segments,
                scheduled,
            };
            let mut outcome = store.store_parsed(feed_id, batch, now).await?;
            outcome.excluded = excluded;
            (Ok(FeedStatus::Stored(outcome)), next_due)
        }
        Err(Failure::Store(e)) => return Err(e),
        // A push that cannot be read is dropped: it says nothing of the feed, whose polls go on
        // as they were (no failure counted, no backoff).
        Err(failure) if was_pushed => {
            after.consecutive_failures = state.consecutive_failures;
            let failure = FeedFailure {
                kind: failure.kind(),
                message: failure.to_string(),
            };
            (Err(failure), state.next_due)
        }
        Err(failure) => {
            let error = failure.to_string();
            let kind = failure.kind();
            tracing::debug!(feed = %url, %error, %kind, "poll failed");
            after.consecutive_failures = state.consecutive_failures + 1;
            after.failure = Some(kind);
            after.failing_since = Some(state.failing_since.unwrap_or(now));
            after.hints.retry_after = failure.retry_after(now);
            after.hints.fresh_until = state.hints.fresh_until;
            after.gone = kind == FailureKind::Gone;
            let mut host_delay = host_delay;
            if let (Some(host), Some(until)) = (&host, failure.host_penalty(now)) {
                host_delay = Some(host_delay.map_or(until, |d| d.max(until)));
                hold_host(context, host.clone(), until, error.clone()).await?;
            }
            abandoned = schedule::abandoned(&policy, &after, now);
            let update = FeedUpdate::Failed {
                error: error.clone(),
                kind,
                retry_after: after.hints.retry_after,
                gone: after.gone.then(|| context.fingerprint.clone()),
                abandoned,
            };
            let scheduled = scheduled(&after, host_delay);
            let next_due = scheduled.next_due;
            store.record_poll(feed_id, update, scheduled, now).await?;
            (Err(FeedFailure { kind, message: error }), next_due)
        }
    };
    let (result, next_due) = result;
    if spec.full_text && result.is_ok() {
        retry_full_text(feed_id, began, &spec, context).await?;
    }
    // The icon is looked for after the round: it waits for nothing, and a cold round's
    // memory is its feeds' bodies, not their icons'.
    let icon_look =
        (context.icons && result.is_ok() && icon::due(state.icon_due, context.clock.now())).then(|| {
            IconLook {
                feed_id,
                hints: declared,
                site: state.site_url.clone(),
                looked_before: state.icon_due.is_some(),
                target: target.clone(),
                proxy: spec.proxy.clone(),
                shown: display_url(&spec.url),
            }
        });
    let recovered_after = if result.is_ok() {
        state.consecutive_failures
    } else {
        0
    };
    let report = FeedReport {
        recovered_after,
        newly_repaired,
        elapsed: started.elapsed(),
        feed_id,
        url,
        result,
        failures: after.consecutive_failures,
        last_error: None,
        next_due,
        abandoned: abandoned && state.abandoned_at.is_none(),
        icon_look,
        push,
    };
    Ok(report)
}

/// The feed's rules judge each new or changed entry as it will be stored (its content
/// finished, full text included) and as output rules will see it: an excluded entry is never
/// kept. Content rules read bodies as plain text, which is CPU work: on the blocking pool.
async fn judge(parsed: &mut Parsed, rules: &filter::Rules, parsing: &Arc<Semaphore>) -> Result<(), Failure> {
    if rules.is_empty() || parsed.entries.is_empty() {
        return Ok(());
    }
    let entries = std::mem::take(&mut parsed.entries);
    let rules = rules.clone();
    let _permit = parsing
        .clone()
        .acquire_owned()
        .await
        .map_err(|e| Failure::Task(e.to_string()))?;
    // A failure here fails the feed's poll, so nothing is recorded as seen and the next poll
    // reads the same entries again.
    let (excluded, kept) = tokio::task::spawn_blocking(move || {
        let before = entries.len();
        let kept: Vec<KeyedEntry> = entries
            .into_iter()
            .filter(|k| filter::keeps(&rules, &Fields::of(&k.entry)))
            .collect();
        (before - kept.len(), kept)
    })
    .await
    .map_err(|e| Failure::Task(e.to_string()))?;
    parsed.excluded = excluded;
    parsed.entries = kept;
    Ok(())
}

/// Reads each entry's page (`[[feed]] full_text`): the article becomes the content and the
/// feed's own text the summary; an entry whose page gives none keeps the feed's text and the
/// reason. These are the feed's new and changed entries only: an unchanged one never gets here.
/// On a new feed's first poll (`shown`: how many of its entries outputs will show), only the
/// newest are read; the rest of its back catalogue keeps the feed's text.
async fn full_text(
    entries: &mut [KeyedEntry],
    shown: Option<usize>,
    spec: &FeedSpec,
    context: &Context,
) -> Result<(), StoreError> {
    let held_back: std::collections::HashSet<&str> = match shown {
        Some(shown) => crate::store::catalogue_ranks(entries)
            .into_iter()
            .filter_map(|(key, rank)| (rank >= shown).then_some(key))
            .collect(),
        None => Default::default(),
    };
    let pages: Vec<(usize, Result<Url, ArticleError>)> = entries
        .iter()
        .enumerate()
        .filter(|(_, k)| !held_back.contains(k.key.as_str()))
        .map(|(i, k)| (i, full_text::page_of(k.entry.link.as_deref())))
        .collect();
    let articles = read_articles(pages, spec, context).await?;
    for (i, article) in articles {
        let entry = &mut entries[i].entry;
        match article {
            Ok(html) => {
                entry.summary = entry.content.take().or(entry.summary.take());
                entry.content = Some(html);
                entry.full_text = FullText::Page;
            }
            // Nothing to read: the entry stays the feed's own (explain says why), and there is
            // nothing to try again.
            Err(ArticleError::NoPage) => {}
            Err(e) => {
                entry.full_text = FullText::Failed {
                    error: e.to_string(),
                    tries: 1,
                };
            }
        }
    }
    Ok(())
}

/// The one more try that entries whose page failed get, at a later poll of their feed (one
/// that began after the failure).
async fn retry_full_text(
    feed_id: i64,
    began: DateTime<Utc>,
    spec: &FeedSpec,
    context: &Context,
) -> Result<(), StoreError> {
    let due = context.store.full_text_retries(feed_id, began).await?;
    if due.is_empty() {
        return Ok(());
    }
    let pages = due
        .iter()
        .map(|(id, link)| (*id, full_text::page_of(Some(link))))
        .collect();
    let articles = read_articles(pages, spec, context).await?;
    let now = context.clock.now();
    let tries = articles
        .into_iter()
        .map(|(id, article)| (id, article.map_err(|e| e.to_string())))
        .collect();
    context.store.record_full_text(tries, now).await
}

/// Fetches and extracts the articles of `pages` (tagged with the caller's index), at most
/// `poll.concurrency` at a time and each host in its turn; a host that asked everyone to wait
/// is not asked, and one that says so now (429, or 503 with Retry-After) is recorded as such.
async fn read_articles<T: Copy + Send + 'static>(
    pages: Vec<(T, Result<Url, ArticleError>)>,
    spec: &FeedSpec,
    context: &Context,
) -> Result<Vec<(T, Result<String, ArticleError>)>, StoreError> {
    let rewrite: Arc<[Rewrite]> = spec.rewrite.as_slice().into();
    // A feed's pages go through its proxy, as its feed does.
    let proxy = spec.proxy.as_ref();
    let read = futures::stream::iter(pages)
        .map(|(tag, page)| {
            let rewrite = rewrite.clone();
            async move {
                let page = match page {
                    Ok(page) => page,
                    Err(e) => return (tag, Err(e), None),
                };
                let (fetched, penalty) = fetch_for_feed(context, &page, &Validators::default(), proxy).await;
                let (html, final_url) = match fetched.and_then(full_text::page_text) {
                    Ok(page) => page,
                    Err(e) => return (tag, Err(e), penalty),
                };
                // Extraction is CPU work: on the blocking pool, one per core like parsing.
                let Ok(_permit) = context.parsing.clone().acquire_owned().await else {
                    return (tag, Err(ArticleError::NoArticle), None);
                };
                let extracted = tokio::task::spawn_blocking(move || {
                    full_text::extract(&html, &final_url, &rewrite, &mut crate::content::Sanitizer::new())
                })
                .await
                .unwrap_or(Err(ArticleError::NoArticle));
                (tag, extracted, None)
            }
        })
        .buffer_unordered(context.concurrency.max(1));
    let results: Vec<_> = read.collect().await;
    let mut articles = Vec::with_capacity(results.len());
    for (tag, article, penalty) in results {
        if let Some((host, until)) = penalty {
            let reason = article
                .as_ref()
                .err()
                .map(ToString::to_string)
                .unwrap_or_default();
            context.store.delay_host(host, until, reason).await?;
        }
        articles.push((tag, article));
    }
    Ok(articles)
}

/// The User-Agent of each feed whose outputs have readers, with `poll.announce_readers`:
/// `poll.user_agent` with `N subscribers` in its comment (`tributary/0.1 (+URL; 12
/// subscribers)`), N the readers of every output that carries the feed, the way aggregators
/// tell publishers theirs.
async fn announced_agents(
    config: &Config,
    store: &Store,
    now: DateTime<Utc>,
) -> Result<HashMap<String, String>, StoreError> {
    if !config.poll.announce_readers {
        return Ok(HashMap::new());
    }
    let mut of_output: HashMap<String, u64> = HashMap::new();
    for (output, _, n) in store.reader_counts(now).await? {
        *of_output.entry(output).or_default() += n;
    }
    let keys: HashMap<&str, &str> = config
        .feeds
        .iter()
        .map(|f| (f.url.as_str(), f.key.as_str()))
        .collect();
    let mut of_feed: HashMap<String, u64> = HashMap::new();
    for spec in &config.outputs {
        let Some(&n) = of_output.get(&spec.file_name()) else {
            continue;
        };
        for url in &spec.feeds {
            if let Some(key) = keys.get(url.as_str()) {
                *of_feed.entry((*key).to_string()).or_default() += n;
            }
        }
    }
    let agent = &config.poll.user_agent;
    Ok(of_feed
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(key, n)| {
            let told = crate::model::counted(
                usize::try_from(n).unwrap_or(usize::MAX),
                "subscriber",
                "subscribers",
            );
            let with = match agent.strip_suffix(')') {
                Some(open) if open.contains('(') => format!("{open}; {told})"),
                _ => format!("{agent} ({told})"),
            };
            (key, with)
        })
        .collect())
}

/// Icon looks made at once after a round.
const ICON_LOOKS_AT_ONCE: usize = 4;

/// A look for a feed's icon, due after its poll.
#[derive(Debug, Clone)]
pub(crate) struct IconLook {
    feed_id: i64,
    hints: IconHints,
    /// The feed's site as stored, for a poll that parsed no document.
    site: Option<String>,
    /// Whether the icon was looked for before (else the store has nothing on it).
    looked_before: bool,
    /// Where the feed is fetched from.
    target: Url,
    proxy: Option<Url>,
    /// The feed's URL as it may be shown.
    shown: String,
}

/// What a feed's document said about its icon (nothing on a poll that parsed no document).
#[derive(Debug, Default, Clone)]
struct IconHints {
    icon: Option<String>,
    logo: Option<String>,
    site: Option<String>,
}

/// Looks for the feed's icon when a look is due (see [`icon::due`]): the places
/// [`icon::leads`] names, best first, each asked as politely as the feed (its host's turn and
/// holds, its proxy, the guard for content's URLs), until one gives an image. What was found,
/// or that nothing was, is recorded; a failure here is never the feed's.
async fn look_for_icon(look: IconLook, context: &Context) -> Result<bool, StoreError> {
    let IconLook {
        feed_id,
        hints,
        site,
        looked_before,
        target,
        proxy,
        shown,
    } = look;
    let store = &context.store;
    // A feed never looked at has nothing stored (a new planet's first round reads nothing).
    let stored = match looked_before {
        true => store.icon_state(feed_id).await?,
        false => None,
    };
    let stored_url = stored.as_ref().and_then(|s| s.url.as_deref());
    let known = icon::Known {
        declared: hints.icon.as_deref(),
        stored: stored_url,
        site: hints.site.as_deref().or(site.as_deref()),
        feed: Some(&target),
        logo: hints.logo.as_deref(),
    };
    let mut leads: VecDeque<icon::Lead> = icon::leads(&known).into();
    let proxy = proxy.as_ref();
    let mut why = "no icon named by the feed or its site, and no /favicon.ico".to_string();
    let mut update = None;
    for _ in 0..icon::MAX_TRIES {
        let Some(lead) = leads.pop_front() else { break };
        let (url, page) = match lead {
            icon::Lead::Image(url) => (url, false),
            icon::Lead::Page(url) => (url, true),
        };
        let validators = match (&stored, page) {
            (Some(s), false) if s.url.as_deref() == Some(url.as_str()) && s.image.is_some() => {
                s.validators.clone()
            }
            _ => Validators::default(),
        };
        let (fetched, penalty) = fetch_for_feed(context, &url, &validators, proxy).await;
        if let Some((host, until)) = penalty {
            let reason = fetched
                .as_ref()
                .err()
                .map(ToString::to_string)
                .unwrap_or_default();
            store.delay_host(host, until, reason).await?;
        }
        match fetched {
            Ok(Fetched::NotModified { .. }) => {
                update = Some(IconUpdate::Unchanged { validators });
                break;
            }
            Ok(fetched) if page => match full_text::page_text(fetched) {
                Ok((html, at)) => {
                    // The page's icons come next, before the places after the page.
                    for found in parse::discover::icon_links(&html, &at).into_iter().rev() {
                        let found = icon::Lead::Image(found);
                        if !leads.contains(&found) {
                            leads.push_front(found);
                        }
                    }
                }
                Err(e) => why = format!("{url}: {e}"),
            },
            Ok(Fetched::Modified(body)) => match icon::sniff(&body.bytes) {
                Some(media_type) if body.bytes.len() <= icon::MAX_BYTES => {
                    let bytes = body.bytes;
                    update = Some(IconUpdate::Found {
                        url: url.to_string(),
                        image: IconImage {
                            hash: icon::hash(&bytes),
                            media_type: media_type.to_string(),
                        },
                        bytes,
                        validators: body.validators,
                    });
                    break;
                }
                Some(_) => why = format!("{url}: larger than {} KiB", icon::MAX_BYTES / 1024),
                None => why = format!("{url}: not a PNG, GIF, JPEG, WebP or ICO image"),
            },
            Err(e) => why = format!("{url}: {e}"),
        }
    }
    let update = update.unwrap_or(IconUpdate::Missing { error: why });
    if let IconUpdate::Missing { error } = &update {
        tracing::debug!(feed = %shown, %error, "no icon found");
    }
    let now = context.clock.now();
    let found = !matches!(update, IconUpdate::Missing { .. });
    let new_image = matches!(&update, IconUpdate::Found { image, .. }
        if stored.as_ref().and_then(|s| s.image.as_ref()) != Some(image));
    store
        .record_icon(feed_id, update, now, icon::next_look(found, now))
        .await?;
    Ok(new_image)
}

/// One request for something a feed's content named (an article's page, an icon), as polite
/// as the feed's own: its host's turn, nothing sent to a host that asked to wait, and a host's
/// 429 (or 503 with Retry-After) held at once for the requests queued behind this one. The
/// hold is returned for the store to hear of.
async fn fetch_for_feed(
    context: &Context,
    url: &Url,
    validators: &Validators,
    proxy: Option<&Url>,
) -> (Result<Fetched, ArticleError>, Option<(String, DateTime<Utc>)>) {
    // Refused anyway: no need to wait for a turn at the host.
    if let Some(refused) = context.fetcher.refuses_at_once(url, proxy) {
        return (Err(ArticleError::Fetch(refused)), None);
    }
    let host = host_key(url);
    let turn = context
        .requests
        .turn(host.as_deref(), context.clock.as_ref())
        .await;
    // Asked after the turn: a request that waited behind one answered 429 must not go ahead.
    let now = context.clock.now();
    if host
        .as_deref()
        .is_some_and(|h| context.delays.until(h, now).is_some())
    {
        return (Err(ArticleError::HostWaiting), None);
    }
    let request = fetch::Request {
        url,
        validators,
        headers: &[],
        trust: fetch::Trust::Content,
        timeout: None,
        proxy,
    };
    let fetched = context.fetcher.fetch(request).await;
    drop(turn);
    match fetched {
        Ok(fetched) => (Ok(fetched), None),
        Err(e) => {
            let penalty = host.zip(host_penalty(&e, context.clock.now()));
            if let Some((host, until)) = &penalty {
                context.delays.hold(host, *until);
            }
            (Err(ArticleError::Fetch(e)), penalty)
        }
    }
}

/// Records where permanent redirects led this time (or that there were none), and logs the
/// move once when a feed has been redirected to the same place on enough consecutive polls.
async fn note_redirect(
    store: &Store,
    feed_id: i64,
    shown: &str,
    moved: Option<&Url>,
    state: &FeedState,
) -> Result<(), StoreError> {
    let target = moved.map(|m| {
        let mut m = m.clone();
        let _ = m.set_username("");
        let _ = m.set_password(None);
        m.to_string()
    });
    // Nothing to record in the common case: no redirect now, none counted before.
    if target.is_none() && state.moved_count == 0 {
        return Ok(());
    }
    let moved = store.note_redirect(feed_id, target).await?;
    if let Some(to) = moved {
        tracing::info!(feed = %shown, moved_to = %to, "feed moved permanently; polling its new address");
    }
    Ok(())
}

fn fresh_until(caching: &Caching, rhythm: &FeedRhythm, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let http = hints::http_freshness(caching.cache_control.as_deref(), caching.expires.as_deref(), now);
    hints::after_success(http, rhythm, now).fresh_until
}

enum Outcome {
    NotModified(Caching),
    Unchanged(Validators, Caching),
    Parsed(Box<Parsed>),
}

struct Parsed {
    feed: ParsedFeed,
    entries: Vec<KeyedEntry>,
    /// New or changed entries the feed's rules excluded.
    excluded: usize,
    /// Fingerprints of the items whose entries are stored unchanged.
    unchanged_segments: Fingerprints,
    validators: Validators,
    caching: Caching,
    body_hash: String,
}

/// Why a feed's poll failed, or that the store did (which is not the feed's failure).
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error(transparent)]
    Parse(#[from] parse::ParseError),
    #[error("internal error: {0}")]
    Task(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Failure {
    fn kind(&self) -> FailureKind {
        match self {
            Failure::Fetch(e) => e.kind(),
            Failure::Parse(_) => FailureKind::Parse,
            Failure::Task(_) | Failure::Store(_) => FailureKind::Internal,
        }
    }

    /// When the server said to come back (Retry-After on any error status).
    fn retry_after(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Failure::Fetch(e) => e.retry_after().and_then(|v| hints::retry_after(v, now)),
            _ => None,
        }
    }

    /// See [`host_penalty`].
    fn host_penalty(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Failure::Fetch(e) => host_penalty(e, now),
            _ => None,
        }
    }
}

/// A 429, or a 503 with Retry-After, speaks for the whole host: every feed (and page) on it
/// waits until then. Other failures (a 403 included) are the feed's own.
fn host_penalty(e: &FetchError, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    (e.kind() == FailureKind::RateLimited).then(|| {
        e.retry_after()
            .and_then(|v| hints::retry_after(v, now))
            .unwrap_or_else(|| now + chrono::Duration::from_std(HOST_PENALTY).unwrap_or_default())
    })
}

/// Turns a fetched body into the entries the store does not have yet: unchanged bodies and
/// unchanged entries cost a hash each; only new or changed entries are sanitized.
async fn parse_new(
    fetched: Fetched,
    spec: &FeedSpec,
    state: &FeedState,
    store: &Store,
    parsing: &Semaphore,
) -> Result<Outcome, Failure> {
    let body = match fetched {
        Fetched::NotModified { caching, .. } => return Ok(Outcome::NotModified(caching)),
        Fetched::Modified(body) => body,
    };
    let body_hash = hex::encode(Sha256::digest(&body.bytes));
    if state.body_hash.as_deref() == Some(body_hash.as_str()) {
        return Ok(Outcome::Unchanged(body.validators, body.caching));
    }
    let feed_id = state.id;
    let task = |e: &dyn std::fmt::Display| Failure::Task(e.to_string());
    // A feed never stored has nothing to compare with. Lookups go to a reader: they must not
    // wait behind the writer's queue while parsers idle.
    let stored_before = state.last_success.is_some();
    let known_segments = if stored_before {
        store.fingerprints(feed_id).await?
    } else {
        Default::default()
    };
    // Each CPU-bound step holds a parse permit, not the lookup between them: a permit held
    // while waiting would leave a core idle.
    let permit = parsing.acquire().await.map_err(|e| task(&e))?;
    let final_url = body.final_url.clone();
    let source = spec.source.clone();
    let zone = spec.timezone.unwrap_or(chrono_tz::UTC);
    let (mut feed, keyed) = tokio::task::spawn_blocking(move || {
        let text = decode::decode(body.bytes, body.content_type.as_deref()).text;
        let mut feed = parse::parse_source(&text, &final_url, &known_segments, &source, zone)?;
        let keyed = dedupe::key_entries(std::mem::take(&mut feed.entries));
        Ok::<_, parse::ParseError>((feed, keyed))
    })
    .await
    .map_err(|e| task(&e))??;
    drop(permit);
    // Only the entries the parse produced are compared with the store.
    let stored = if stored_before && !keyed.is_empty() {
        let keys: Vec<String> = keyed.iter().map(|k| k.key.as_str().to_owned()).collect();
        store.content_hashes(feed_id, keys).await?
    } else {
        Default::default()
    };
    let rewrite = spec.rewrite.clone();
    let mut languages = crate::content::Languages {
        configured: spec.lang.clone(),
        declared: feed.meta.language.clone(),
        ..Default::default()
    };
    let _permit = parsing.acquire().await.map_err(|e| task(&e))?;
    let parsed = tokio::task::spawn_blocking(move || {
        let mut sanitizer = crate::content::Sanitizer::new();
        // Items the parser left out, and those whose entries turn out unchanged, are the ones
        // the next parse may leave out.
        let mut unchanged_segments = std::mem::take(&mut feed.skipped);
        let entries = keyed
            .into_iter()
            .filter(|k| {
                let unchanged = stored.get(k.key.as_str()) == Some(&k.content_hash);
                if unchanged {
                    unchanged_segments.add(k.segment);
                }
                !unchanged
            })
            .map(|k| crate::content::finish(k, &rewrite, &mut languages, &mut sanitizer))
            .collect();
        Parsed {
            feed,
            entries,
            excluded: 0,
            unchanged_segments,
            validators: body.validators,
            caching: body.caching,
            body_hash,
        }
    })
    .await
    .map_err(|e| task(&e))?;
    Ok(Outcome::Parsed(Box::new(parsed)))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    const RSS: &str = "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>T</title>\
        <link>https://t.example/</link><description>d</description>\
        <item><guid>1</guid><title>Kept one</title><description>a</description></item>\
        <item><guid>2</guid><title>Sponsored post</title><description>b</description></item>\
        <item><guid>3</guid><title>Kept two</title><description>c</description></item>\
        </channel></rss>";

    fn config(dir: &Path, toml: &str) -> Config {
        Config::parse(&dir.join("tributary.toml"), toml).unwrap()
    }

    /// Jobs for the config's feeds, with store ids 1, 2, …
    fn jobs(config: &Config) -> Vec<Job> {
        config
            .feeds
            .iter()
            .enumerate()
            .map(|(i, spec)| Job {
                spec: spec.clone(),
                state: FeedState {
                    id: i as i64 + 1,
                    url: spec.key.clone(),
                    ..FeedState::default()
                },
                target: spec.url.clone(),
                policy: Policy::of(config, spec),
            })
            .collect()
    }

    #[test]
    fn hosts_take_turns_and_never_exceed_their_limit() {
        let dir = tempfile::tempdir().unwrap();
        let config = config(
            dir.path(),
            "[[feed]]\nurl = \"https://a.example/1\"\n[[feed]]\nurl = \"https://a.example/2\"\n\
             [[feed]]\nurl = \"https://a.example/3\"\n[[feed]]\nurl = \"https://b.example/1\"\n",
        );
        let mut hosts = Hosts::default();
        for job in jobs(&config) {
            let host = host_key(&job.target);
            hosts.push(host, job, 1, 8);
        }
        let started = |hosts: &mut Hosts| hosts.next_start().map(|(q, j)| (q, j.feed_id()));
        // One per host at a time, the hosts in turn.
        let (a, first) = started(&mut hosts).unwrap();
        let (b, second) = started(&mut hosts).unwrap();
        assert_eq!((first, second), (1, 4));
        assert_eq!(hosts.name(a), Some("a.example"));
        assert_eq!(hosts.name(b), Some("b.example"));
        assert_eq!(
            started(&mut hosts),
            None,
            "a.example is at its limit, b.example is empty"
        );
        hosts.finished(a);
        assert_eq!(started(&mut hosts), Some((a, 2)));
        // Raising the limit lets the rest of the host's queue start at once.
        hosts.set_per_host(2, 8);
        assert_eq!(started(&mut hosts), Some((a, 3)));
        assert_eq!(hosts.queued, 0);
    }

    #[test]
    fn hosts_are_forgotten_when_nothing_is_queued_or_running() {
        let dir = tempfile::tempdir().unwrap();
        let config = config(
            dir.path(),
            "[[feed]]\nurl = \"https://a.example/1\"\n[[feed]]\nurl = \"https://b.example/1\"\n",
        );
        let mut hosts = Hosts::default();
        for job in jobs(&config) {
            hosts.push(host_key(&job.target), job, 1, 8);
        }
        let (a, _) = hosts.next_start().unwrap();
        let (b, _) = hosts.next_start().unwrap();
        hosts.finished(a);
        assert_eq!(hosts.names.len(), 2, "b.example is still running");
        hosts.finished(b);
        assert!(
            hosts.names.is_empty() && hosts.index.is_empty(),
            "nothing left to remember"
        );
    }

    #[tokio::test]
    async fn idle_hosts_permits_are_dropped_and_busy_ones_kept() {
        let permits = HostPermits::new(2, None);
        let held = permits.local_turn("busy.example").await.unwrap();
        for n in 0..HOST_PERMITS_KEPT * 3 {
            drop(permits.local_turn(&format!("h{n}.example")).await);
        }
        assert!(
            permits.hosts() <= HOST_PERMITS_KEPT,
            "{} hosts kept for {} seen",
            permits.hosts(),
            HOST_PERMITS_KEPT * 3
        );
        let busy = permits
            .hosts
            .lock()
            .unwrap()
            .permits
            .get("busy.example")
            .cloned()
            .unwrap();
        assert_eq!(
            busy.available_permits(),
            1,
            "a host with a turn held keeps its permits"
        );
        drop(held);
    }

    #[test]
    fn taken_jobs_leave_their_queues() {
        let dir = tempfile::tempdir().unwrap();
        let config = config(
            dir.path(),
            "[[feed]]\nurl = \"https://a.example/1\"\n[[feed]]\nurl = \"https://a.example/2\"\n",
        );
        let mut hosts = Hosts::default();
        for job in jobs(&config) {
            hosts.push(host_key(&job.target), job, 1, 8);
        }
        let taken = hosts.take_where(|j| j.feed_id() == 2);
        assert_eq!(taken.iter().map(Job::feed_id).collect::<Vec<_>>(), [2]);
        assert_eq!(hosts.queued, 1);
        assert_eq!(hosts.next_start().map(|(_, j)| j.feed_id()), Some(1));
        assert!(hosts.next_start().is_none());
    }

    #[test]
    fn a_moved_feed_takes_its_credentials_only_within_its_host() {
        let dir = tempfile::tempdir().unwrap();
        let config = config(dir.path(), "[[feed]]\nurl = \"https://me:pw@a.example/feed\"\n");
        let spec = &config.feeds[0];
        let moved = |to: &str| {
            let state = FeedState {
                moved_to: Some(to.to_string()),
                ..FeedState::default()
            };
            effective_url(spec, &state).to_string()
        };
        assert_eq!(moved("https://a.example/new"), "https://me:pw@a.example/new");
        assert_eq!(moved("https://b.example/new"), "https://b.example/new");
        assert_eq!(effective_url(spec, &FeedState::default()), spec.url);
    }

    #[test]
    fn only_a_rate_limit_holds_the_whole_host() {
        let now = Utc::now();
        let status = |status, retry_after: Option<&str>| {
            Failure::Fetch(FetchError::Status {
                status,
                retry_after: retry_after.map(str::to_string),
            })
        };
        let held = status(429, Some("120")).host_penalty(now).unwrap();
        assert_eq!(held, now + chrono::Duration::seconds(120));
        assert!(status(429, None).host_penalty(now).is_some());
        assert!(status(503, Some("60")).host_penalty(now).is_some());
        for own in [status(403, None), status(404, None), status(500, None)] {
            assert_eq!(own.host_penalty(now), None, "{own}");
        }
        assert_eq!(Failure::Task("x".into()).kind(), FailureKind::Internal);
    }

    /// The whole spine on a local feed: new entries stored (the feed's rule applied), then a
    /// second poll of the same bytes parses nothing.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_poll_stores_what_is_new_and_an_unchanged_body_costs_nothing() {
        let dir = tempfile::tempdir().unwrap();
        crate::output::write_if_changed(&dir.path().join("t.xml"), RSS.as_bytes()).unwrap();
        let config = config(
            dir.path(),
            "[store]\npath = \"t.db\"\n[poll]\nallow_files = true\n\
             [[feed]]\nurl = \"t.xml\"\nexclude = [{ title = \"(?i)sponsored\" }]\n",
        );
        let fetcher = Fetcher::new(&config.poll).unwrap();
        let store = Store::open(&config.backend()).await.unwrap();
        let stop = CancellationToken::new();
        let poll = || {
            poll_feeds(
                &config,
                &config.feeds,
                &fetcher,
                &store,
                &stop,
                Options::default(),
            )
        };
        let first = poll().await.unwrap();
        assert_eq!(first.feeds.len(), 1);
        match &first.feeds[0].result {
            Ok(FeedStatus::Stored(o)) => assert_eq!(o.new, 2),
            other => panic!("{other:?}"),
        }
        assert_eq!((first.new_entries(), first.excluded_entries()), (2, 1));
        // Due again at once for the test, so the second poll is not skipped.
        let id = first.feeds[0].feed_id;
        store
            .schedule(vec![(
                id,
                Scheduled {
                    next_due: None,
                    key: String::new(),
                    lease: None,
                },
            )])
            .await
            .unwrap();
        let second = poll().await.unwrap();
        assert!(
            matches!(second.feeds[0].result, Ok(FeedStatus::Unchanged)),
            "{:?}",
            second.feeds[0].result
        );
        assert_eq!((second.new_entries(), second.updated_entries()), (0, 0));
        let candidates = store
            .candidates(crate::store::CandidateQuery {
                feeds: Some(std::sync::Arc::new([id].into_iter().collect())),
                needs: filter::Needs::default(),
                after: None,
                limit: 10,
            })
            .await
            .unwrap();
        let mut titles: Vec<String> = candidates.into_iter().map(|c| c.title).collect();
        titles.sort();
        assert_eq!(titles, ["Kept one", "Kept two"]);
        store.close().await;
    }
}
