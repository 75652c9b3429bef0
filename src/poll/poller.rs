//! The poller: a queue of due feeds, the budget (`poll.concurrency` fetches in flight, a feed's
//! place given back when its content is ready), per-host round robin, cluster claims, and the
//! records that wait for the store.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use url::Url;

use super::feed::{Context, poll_one};
use super::hosts::{HostDelays, HostPermits, SharedTurns};
use super::icons::{ICON_LOOKS_AT_ONCE, ICON_LOOKS_RECORDED_AT_ONCE, IconLook, look_for_icon};
use super::pages::announced_agents;
use super::{FeedFailure, FeedReport, FeedStatus, next_due};
use crate::config::Config;
use crate::fetch::{self, Caching, Fetcher};
use crate::model::{FailureKind, FeedSpec, FeedState, display_url, host_key};
use crate::schedule::{Clock, History, Policy};
use crate::store::{Store, StoreError};

/// The claims a one-shot poll holds on a cluster's store, renewed (as a node renews its own)
/// until each feed's poll is recorded, so no node takes a feed this poll is still fetching.
pub(super) struct Claims {
    pub(super) store: Store,
    pub(super) held: Arc<std::sync::Mutex<std::collections::HashSet<i64>>>,
    pub(super) renewal: tokio::task::JoinHandle<()>,
}

impl Claims {
    pub(super) fn keep(
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
    pub(super) fn done(&self, id: i64) {
        self.held.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
    }

    /// Gives the claims on `ids` back (claimed and not polled) and stops renewing.
    pub(super) async fn release(self, ids: Vec<i64>) -> Result<(), StoreError> {
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
    pub(super) spec: FeedSpec,
    pub(super) state: FeedState,
    /// Where it is fetched from (where it moved to, else its configured URL).
    pub(super) target: Url,
    pub(super) policy: Policy,
    /// Its URL as reports and logs show it (no password).
    pub(super) shown: String,
}

impl Job {
    /// The poll of `spec` (whose store row is `state`), scheduled after by `policy`: the one
    /// place a feed's fetch URL is decided.
    pub(super) fn new(spec: FeedSpec, state: FeedState, policy: Policy) -> Job {
        let target = effective_url(&spec, &state);
        Job {
            shown: display_url(&spec.url),
            spec,
            state,
            target,
            policy,
        }
    }

    pub(crate) fn feed_id(&self) -> i64 {
        self.state.id
    }

    /// The feed's identity (see [`crate::model::feed_key`]).
    pub(crate) fn key(&self) -> &str {
        &self.spec.key
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

pub(super) fn skipped(job: &Job, reason: String, next_due: Option<DateTime<Utc>>) -> FeedReport {
    skipped_feed(&job.state, job.shown.clone(), reason, next_due)
}

/// The report of a feed not fetched (whose stored `state` is as it was), due next at `next_due`.
pub(super) fn skipped_feed(
    state: &FeedState,
    url: String,
    reason: String,
    next_due: Option<DateTime<Utc>>,
) -> FeedReport {
    FeedReport {
        failures: state.consecutive_failures,
        last_error: state
            .last_error
            .clone()
            .filter(|_| state.consecutive_failures > 0),
        ..FeedReport::of(state.id, url, Ok(FeedStatus::Skipped(reason)), next_due)
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
    pub(super) context: Context,
    pub(super) concurrency: usize,
    pub(super) per_host: usize,
    pub(super) hosts: Hosts,
    pub(super) running: JoinSet<Result<FeedReport, StoreError>>,
    /// Feeds fetching or parsing: the ones that hold a place of the budget.
    pub(super) fetching: usize,
    /// Feeds started and not finished, whatever stage they are in (skips, which only record,
    /// are not counted).
    pub(super) unrecorded: usize,
    pub(super) in_flight: HashMap<tokio::task::Id, InFlight>,
    /// Polls say here that their content is ready: their place goes to the next feed.
    pub(super) ready: tokio::sync::mpsc::UnboundedReceiver<tokio::task::Id>,
    /// Told when a place of the budget is given back.
    pub(super) room_freed: Arc<tokio::sync::Notify>,
    /// Poll held-back feeds too (`poll --force`).
    pub(crate) force: bool,
    pub(super) stopped: bool,
}

pub(super) struct InFlight {
    pub(super) host: Option<usize>,
    /// Still fetching or parsing: holds a place of the budget (and of its host's queue).
    pub(super) fetching: bool,
    pub(super) feed_id: i64,
    pub(super) url: String,
    pub(super) next_due: Option<DateTime<Utc>>,
}

/// A feed whose poll could not be recorded: the store failed.
#[derive(Debug)]
pub(crate) struct Unrecorded {
    pub(crate) feed_id: i64,
    pub(crate) error: StoreError,
}

impl Poller {
    /// A poller with `config`'s budget, its hosts' delays read from the store.
    pub(crate) async fn new(
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
            // Looks that finish together are recorded together (what is ready when the last
            // write ends). The looks in flight are not polled meanwhile: a write of a few rows
            // holds them a millisecond or so.
            let mut finished = std::pin::pin!(
                futures::stream::iter(looks)
                    .map(|look| look_for_icon(look, &context))
                    .buffer_unordered(ICON_LOOKS_AT_ONCE)
                    .ready_chunks(ICON_LOOKS_RECORDED_AT_ONCE)
            );
            let mut new_images = 0;
            let mut failed = None;
            while let Some(chunk) = finished.next().await {
                let mut looked = Vec::with_capacity(chunk.len());
                let mut new_here = 0;
                for done in chunk {
                    match done {
                        Ok((look, new_image)) => {
                            looked.push(look);
                            new_here += usize::from(new_image);
                        }
                        Err(e) => failed = Some(e),
                    }
                }
                if looked.is_empty() {
                    continue;
                }
                // Images count as new once they are stored: only then can an output show them.
                match context.store.record_icons(looked, context.clock.now()).await {
                    Ok(()) => new_images += new_here,
                    Err(e) => failed = Some(e),
                }
            }
            if let Some(e) = failed {
                tracing::debug!(error = %e, "cannot record a feed's icon");
            }
            new_images
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
            let job = Job::new(spec.clone(), state, Policy::of(&config, spec));
            let body = fetch::Body {
                bytes,
                content_type,
                final_url: job.target.clone(),
                // A push has none of its own: the next poll asks as the last one did.
                validators: job.state.validators.clone(),
                caching: Caching::default(),
                moved: None,
                memory: None,
                push: None,
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
        let job = Job::new(spec, state, policy);
        let host = host_key(&job.target);
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
    pub(crate) fn busy(&self) -> bool {
        self.queued() > 0 || !self.running.is_empty()
    }

    /// No new feed starts from now on; the running ones finish.
    pub(crate) fn stop(&mut self) {
        self.stopped = true;
    }

    pub(crate) fn stopped(&self) -> bool {
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
    pub(crate) async fn next(&mut self) -> Option<Result<FeedReport, Unrecorded>> {
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
    pub(super) fn content_ready(&mut self, id: tokio::task::Id) {
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
    pub(super) fn joined(
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
                let failure = FeedFailure {
                    kind: FailureKind::Internal,
                    message: format!("internal error: {e}"),
                };
                Some(Ok(FeedReport::of(
                    flight.feed_id,
                    flight.url,
                    Err(failure),
                    flight.next_due,
                )))
            }
        }
    }

    pub(super) fn start_what_fits(&mut self) {
        while !self.stopped && self.fetching < self.concurrency && self.unrecorded < self.concurrency * 2 {
            let Some((q, job)) = self.hosts.next_start() else {
                break;
            };
            let now = self.context.clock.now();
            let host_delay = self.hosts.name(q).and_then(|h| self.context.delays.until(h, now));
            if !self.force {
                let history = History::from(&job.state);
                let (scheduled, hold) = next_due(
                    &job.policy,
                    &job.spec.key,
                    &history,
                    host_delay,
                    job.state.lease_epoch,
                );
                if let Some(hold) = hold.filter(|h| h.holds_at(now)) {
                    // Not fetched: recorded as due when the hold ends, outside the budget.
                    self.hosts.finished(q);
                    let store = self.context.store.clone();
                    let at = scheduled.next_due;
                    let report = skipped(&job, hold.to_string(), at);
                    let feed_id = job.state.id;
                    let task = self.running.spawn(async move {
                        store.schedule(vec![(feed_id, scheduled)]).await?;
                        Ok(report)
                    });
                    self.in_flight.insert(
                        task.id(),
                        InFlight {
                            host: None,
                            fetching: false,
                            feed_id,
                            url: job.shown.clone(),
                            next_due: at,
                        },
                    );
                    continue;
                }
            }
            let flight = InFlight {
                host: Some(q),
                fetching: true,
                feed_id: job.state.id,
                url: job.shown.clone(),
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
pub(super) struct Hosts {
    pub(super) index: HashMap<Option<String>, usize>,
    pub(super) names: Vec<Option<String>>,
    pub(super) queues: Vec<VecDeque<Job>>,
    pub(super) active: Vec<usize>,
    pub(super) limits: Vec<usize>,
    /// Hosts with queued feeds and room under their limit, in round-robin order.
    pub(super) ready: VecDeque<usize>,
    pub(super) in_ready: Vec<bool>,
    pub(super) queued: usize,
    /// Feeds started and not finished, over all hosts.
    pub(super) running: usize,
}

impl Hosts {
    pub(super) fn limit_for(host: &Option<String>, per_host: usize, concurrency: usize) -> usize {
        // Local files have no host to be polite to.
        if host.is_some() { per_host } else { concurrency }.max(1)
    }

    pub(super) fn push(&mut self, host: Option<String>, job: Job, per_host: usize, concurrency: usize) {
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

    pub(super) fn set_per_host(&mut self, per_host: usize, concurrency: usize) {
        for (q, name) in self.names.iter().enumerate() {
            self.limits[q] = Self::limit_for(name, per_host, concurrency);
        }
        for q in 0..self.names.len() {
            self.requeue(q);
        }
    }

    pub(super) fn name(&self, q: usize) -> Option<&str> {
        self.names.get(q).and_then(|n| n.as_deref())
    }

    /// The next feed to start, from the next host in turn that may take one.
    pub(super) fn next_start(&mut self) -> Option<(usize, Job)> {
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
    pub(super) fn finished(&mut self, q: usize) {
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

    pub(super) fn requeue(&mut self, q: usize) {
        if !self.in_ready[q] && !self.queues[q].is_empty() && self.active[q] < self.limits[q] {
            self.in_ready[q] = true;
            self.ready.push_back(q);
        }
    }

    pub(super) fn take_where(&mut self, remove: impl Fn(&Job) -> bool) -> Vec<Job> {
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
