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
//!
//! Its rooms: this file holds the reports and the one-shot [`poll_feeds`]; `poller` the queue,
//! the budget and the claims; `hosts` the waits, permits and turns per host; `feed` one feed's
//! poll as its stages (`poll_one` calls them in the flow's order: fetch, read — decode, parse,
//! dedupe, compare —, content — sanitize, full text, rules —, record, report); `pages`
//! full-text pages; `icons` the icon looks.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::config::Config;
use crate::fetch::{self, Fetcher};
use crate::model::{FailureKind, FeedSpec, FeedState, Scheduled, StoreOutcome, display_url, host_key};
use crate::schedule::{self, Clock, History, Policy, SystemClock};
use crate::store::{Store, StoreError};

mod feed;
mod hosts;
mod icons;
mod pages;
mod poller;
#[cfg(test)]
mod tests;

pub(crate) use hosts::SharedTurns;
pub(crate) use icons::IconLook;
use poller::{Claims, Job, skipped};
pub(crate) use poller::{Poller, Unrecorded};

/// How one feed's poll ended, when it did not fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FeedStatus {
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
pub(crate) struct FeedFailure {
    pub(crate) kind: FailureKind,
    pub(crate) message: String,
}

impl std::fmt::Display for FeedFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

#[derive(Debug, Clone)]
pub(crate) struct FeedReport {
    /// The feed's row in the store.
    pub(crate) feed_id: i64,
    /// The feed URL as it may be shown (no credentials).
    pub(crate) url: String,
    pub(crate) result: Result<FeedStatus, FeedFailure>,
    /// Consecutive failures after this poll (for a skipped feed: as stored).
    pub(crate) failures: u32,
    /// The last error of a feed that is failing, as stored (for skipped feeds, whose result
    /// says why they were skipped).
    pub(crate) last_error: Option<String>,
    /// When the feed is due next, as recorded.
    pub(crate) next_due: Option<DateTime<Utc>>,
    /// This poll found the feed failing for `poll.give_up_after`: news to report once.
    pub(crate) abandoned: bool,
    /// This poll succeeded after this many consecutive failures (0: it was not failing).
    pub(crate) recovered_after: u32,
    /// Repairs the document needed that the last one did not: news to report once.
    pub(crate) newly_repaired: Vec<crate::model::Repair>,
    /// How long the poll took, fetch to commit (zero for a skipped feed).
    pub(crate) elapsed: Duration,
    /// A look for the feed's icon that is due, made after the round (see [`Poller::icon_looks`]).
    pub(crate) icon_look: Option<IconLook>,
    /// Where the document fetched says it is pushed from (its `Link` headers first, then the
    /// document): set when a fetched document was read, not on a 304 or a push.
    pub(crate) push: Option<fetch::PushLinks>,
}

impl FeedReport {
    /// The report of feed `feed_id` (shown as `url`) that came to `result`, due next at
    /// `next_due`, and says nothing more: no failures counted, no repairs, nothing to look up.
    pub(super) fn of(
        feed_id: i64,
        url: String,
        result: Result<FeedStatus, FeedFailure>,
        next_due: Option<DateTime<Utc>>,
    ) -> FeedReport {
        FeedReport {
            feed_id,
            url,
            result,
            failures: 0,
            last_error: None,
            next_due,
            abandoned: false,
            recovered_after: 0,
            newly_repaired: Vec::new(),
            elapsed: Duration::ZERO,
            icon_look: None,
            push: None,
        }
    }

    /// Whether the feed is failing after this poll (a skipped feed that is backing off is).
    pub(crate) fn is_failing(&self) -> bool {
        self.result.is_err() || self.failures > 0
    }

    /// Whether it was actually fetched (not skipped).
    pub(crate) fn polled(&self) -> bool {
        !matches!(self.result, Ok(FeedStatus::Skipped(_)))
    }

    /// This poll started a run of failures: the one to warn about.
    pub(crate) fn failure_began(&self) -> bool {
        self.result.is_err() && self.failures == 1
    }
}

#[derive(Debug, Clone, Default)]
pub(crate) struct PollReport {
    pub(crate) feeds: Vec<FeedReport>,
    /// On a cluster's store: feeds not polled because a node holds them, or polled them in
    /// this slot already.
    pub(crate) left_to_nodes: usize,
    pub(crate) elapsed: Duration,
}

impl PollReport {
    pub(crate) fn failed(&self) -> impl Iterator<Item = &FeedReport> {
        self.feeds.iter().filter(|f| f.result.is_err())
    }

    /// Feeds that were fetched, whatever came of it.
    pub(crate) fn polled(&self) -> impl Iterator<Item = &FeedReport> {
        self.feeds.iter().filter(|f| f.polled())
    }

    pub(crate) fn skipped(&self) -> impl Iterator<Item = &FeedReport> {
        self.feeds.iter().filter(|f| !f.polled())
    }

    /// Feeds fetched without a failure.
    pub(crate) fn ok_count(&self) -> usize {
        self.polled().filter(|f| f.result.is_ok()).count()
    }

    pub(crate) fn count(&self, pred: impl Fn(&FeedStatus) -> bool) -> usize {
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
pub(crate) struct Options {
    /// Poll feeds that are gone (410), backing off after failures, under a Retry-After, or on
    /// a host that asked to wait.
    pub(crate) force: bool,
    pub(crate) progress: Option<Progress>,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("force", &self.force)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

/// When a feed is next due, as the record of a poll (or a skip) writes it, and the hold that
/// set it if one did: the one place the spine asks the schedule. `key` identifies the feed (its
/// jitter is its own); `lease` is the claim the record is made under.
pub(super) fn next_due(
    policy: &Policy,
    key: &str,
    history: &History,
    host_delay: Option<DateTime<Utc>>,
    lease: Option<i64>,
) -> (Scheduled, Option<schedule::Hold>) {
    let due = schedule::due(policy, key, history, host_delay);
    let scheduled = Scheduled {
        next_due: due.at,
        key: policy.key(),
        lease,
    };
    (scheduled, due.hold)
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
pub(crate) async fn prepare(
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
        let (scheduled, _) = next_due(policy, &state.url, &History::from(&*state), host_delay, None);
        state.next_due = scheduled.next_due;
        state.schedule_key = Some(key);
        stale.push((state.id, scheduled));
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
