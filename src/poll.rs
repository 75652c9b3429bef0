//! The spine: [`poll_feeds`] polls a set of feeds once — fetch → decode → parse → dedupe →
//! store — and reports per feed.
//!
//! `tributary poll` calls it once with every feed; the daemon calls it with the feeds that are
//! due. Nothing here prints or exits; a feed's failure is recorded on that feed and in the
//! report, and never stops the others. Politeness is one budget: at most `poll.concurrency`
//! fetches in flight overall and `poll.per_host` per host, and a 429 or 403 from a host holds
//! back every other feed on that host. Parsing (CPU-bound) runs on the blocking pool, database
//! work on the store thread, so the async workers only wait on the network.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::config::Config;
use crate::dedupe;
use crate::fetch::{self, Caching, FetchError, Fetched, Fetcher, charset};
use crate::model::{FeedSpec, FeedState, KeyedEntry, SegmentHash, Validators, display_url};
use crate::parse::{self, ParsedFeed};
use crate::schedule::hints::{self, FeedRhythm};
use crate::store::{FeedUpdate, ParsedBatch, StoreError, StoreHandle, StoreOutcome};

/// How long a host that answered 429 or 403 without a Retry-After is left alone.
pub const HOST_PENALTY: Duration = Duration::from_secs(30 * 60);

/// How one feed's poll ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedStatus {
    /// The server answered 304.
    NotModified,
    /// The body was byte-identical to the last one parsed, so it was not parsed again.
    Unchanged,
    /// Parsed and stored.
    Stored(StoreOutcome),
    /// Not fetched: its host asked us to wait, or the poll was stopping.
    Skipped(String),
}

#[derive(Debug, Clone)]
pub struct FeedReport {
    /// The feed URL as it may be shown (no credentials).
    pub url: String,
    pub result: Result<FeedStatus, String>,
}

#[derive(Debug, Clone, Default)]
pub struct PollReport {
    pub feeds: Vec<FeedReport>,
    pub elapsed: Duration,
}

impl PollReport {
    pub fn failed(&self) -> impl Iterator<Item = &FeedReport> {
        self.feeds.iter().filter(|f| f.result.is_err())
    }

    pub fn ok_count(&self) -> usize {
        self.feeds
            .iter()
            .filter(|f| matches!(f.result, Ok(ref s) if !matches!(s, FeedStatus::Skipped(_))))
            .count()
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

    pub fn new_entries(&self) -> usize {
        self.stored().map(|o| o.new).sum()
    }

    pub fn updated_entries(&self) -> usize {
        self.stored().map(|o| o.updated).sum()
    }

    /// Whether any entry was added or changed, i.e. whether outputs may need re-rendering.
    pub fn changed(&self) -> bool {
        self.stored().any(|o| o.new + o.updated > 0)
    }
}

/// Called with each feed's report as soon as it is done (progress bars, verbose output).
pub type Progress = std::sync::Arc<dyn Fn(&FeedReport) + Send + Sync>;

/// How a poll runs.
#[derive(Clone, Default)]
pub struct Options {
    /// Poll feeds that are gone (410), backing off after failures, or under a Retry-After.
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

/// Polls `feeds` once. Fails only when the store itself is unusable. Once `stop` is cancelled
/// no new fetch starts; fetches already running finish (the caller bounds how long it waits).
/// Unless `options.force`, a feed that is gone, backing off or under a Retry-After is skipped
/// (and reported as skipped), so a `poll` run from cron is as polite as the daemon.
///
/// A dispatcher starts feeds while the budget allows: at most `poll.concurrency` in flight
/// (fetch, parse and store together, so memory is bounded by it, not by the number of feeds)
/// and `poll.per_host` per host, taking hosts round-robin so that 300 feeds on one host do not
/// hold up the other hosts' feeds. A host that answers 429 or 403 (now or in an earlier poll)
/// has its remaining feeds skipped.
pub async fn poll_feeds(
    config: &Config,
    feeds: &[FeedSpec],
    fetcher: &Fetcher,
    store: &StoreHandle,
    stop: &CancellationToken,
    options: Options,
) -> Result<PollReport, StoreError> {
    let started = Instant::now();
    let urls: Vec<String> = feeds.iter().map(|f| f.url.to_string()).collect();
    let fingerprint = config.fingerprint.clone();
    let (states, mut delayed) = store
        .call(move |s| {
            let now = Utc::now();
            s.forgive_gone(&urls, &fingerprint)?;
            Ok((s.ensure_feeds(&urls, now)?, s.host_delays(now)?))
        })
        .await?;
    let targets: Vec<Url> = feeds
        .iter()
        .zip(&states)
        .map(|(f, s)| effective_url(f, s))
        .collect();
    let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
    let context = Context {
        fetcher: fetcher.clone(),
        store: store.clone(),
        parsing: Arc::new(Semaphore::new(cores)),
        new_feed_entries: config.poll.new_feed_entries,
        fingerprint: config.fingerprint.clone(),
    };
    let mut hosts = Hosts::new(&targets, config.poll.per_host, config.poll.concurrency);
    let mut states: Vec<Option<FeedState>> = states.into_iter().map(Some).collect();
    let mut reports: Vec<Option<FeedReport>> = vec![None; feeds.len()];
    let done = |reports: &mut Vec<Option<FeedReport>>, i: usize, report: FeedReport| {
        if let Some(progress) = &options.progress {
            progress(&report);
        }
        reports[i] = Some(report);
    };
    // Each feed's poll is a task of its own, so that receiving and hashing bodies spreads over
    // every worker thread; dropping the set (a round abandoned at shutdown) aborts them all.
    let mut running = JoinSet::new();
    let mut in_flight: HashMap<tokio::task::Id, (usize, usize)> = HashMap::new();
    loop {
        while running.len() < config.poll.concurrency && !stop.is_cancelled() {
            let Some((q, i)) = hosts.next_start() else { break };
            let (spec, state) = (&feeds[i], states[i].take());
            let Some(state) = state else { continue };
            let blocked = if options.force {
                None
            } else {
                blocked(spec, &state, Utc::now())
            };
            if let Some(reason) = blocked {
                done(&mut reports, i, skipped(spec, reason));
                hosts.finished(q);
                continue;
            }
            if let Some(until) = hosts
                .name(q)
                .and_then(|h| delayed.get(h))
                .filter(|t| **t > Utc::now())
            {
                let reason = format!("host asked to wait until {}", until.format("%Y-%m-%d %H:%M:%SZ"));
                done(&mut reports, i, skipped(spec, reason));
                hosts.finished(q);
                continue;
            }
            let (spec, target, context) = (spec.clone(), targets[i].clone(), context.clone());
            let task = running.spawn(async move { poll_one(&spec, &target, state, &context).await });
            in_flight.insert(task.id(), (q, i));
        }
        let Some(joined) = running.join_next_with_id().await else {
            break;
        };
        let (id, outcome) = match joined {
            Ok((id, outcome)) => (id, Ok(outcome)),
            Err(e) => (e.id(), Err(e)),
        };
        let Some((q, i)) = in_flight.remove(&id) else {
            continue;
        };
        // A panic is a bug; it costs that feed's poll, never the others'.
        let (report, penalty) = outcome.unwrap_or_else(|e| {
            let report = FeedReport {
                url: display_url(&feeds[i].url),
                result: Err(format!("internal error: {e}")),
            };
            (report, None)
        });
        if let (Some(host), Some(until)) = (hosts.name(q), penalty) {
            let entry = delayed.entry(host.to_string()).or_insert(until);
            *entry = (*entry).max(until);
        }
        done(&mut reports, i, report);
        hosts.finished(q);
    }
    // Whatever never started (a stop was requested) is reported as skipped, not lost.
    let feeds_report = reports
        .into_iter()
        .zip(feeds)
        .map(|(r, spec)| r.unwrap_or_else(|| skipped(spec, "shutting down".into())))
        .collect();
    Ok(PollReport {
        feeds: feeds_report,
        elapsed: started.elapsed(),
    })
}

fn skipped(spec: &FeedSpec, reason: String) -> FeedReport {
    FeedReport {
        url: display_url(&spec.url),
        result: Ok(FeedStatus::Skipped(reason)),
    }
}

/// Per-host queues of feed indices, served round-robin within per-host limits. Every
/// operation is O(1), so 10,000 hosts cost no more than 10 to schedule.
struct Hosts {
    names: Vec<Option<String>>,
    queues: Vec<VecDeque<usize>>,
    active: Vec<usize>,
    limits: Vec<usize>,
    /// Hosts with queued feeds and room under their limit, in round-robin order.
    ready: VecDeque<usize>,
    in_ready: Vec<bool>,
}

impl Hosts {
    fn new(targets: &[Url], per_host: usize, concurrency: usize) -> Hosts {
        let mut index: HashMap<Option<String>, usize> = HashMap::new();
        let mut hosts = Hosts {
            names: Vec::new(),
            queues: Vec::new(),
            active: Vec::new(),
            limits: Vec::new(),
            ready: VecDeque::new(),
            in_ready: Vec::new(),
        };
        for (i, target) in targets.iter().enumerate() {
            let host = Fetcher::host_of(target);
            let q = *index.entry(host.clone()).or_insert_with(|| {
                // Local files have no host to be polite to.
                let limit = if host.is_some() { per_host } else { concurrency };
                hosts.names.push(host);
                hosts.queues.push(VecDeque::new());
                hosts.active.push(0);
                hosts.limits.push(limit.max(1));
                hosts.in_ready.push(true);
                hosts.ready.push_back(hosts.names.len() - 1);
                hosts.names.len() - 1
            });
            hosts.queues[q].push_back(i);
        }
        hosts
    }

    fn name(&self, q: usize) -> Option<&str> {
        self.names[q].as_deref()
    }

    /// The next feed to start, from the next host in turn that may take one.
    fn next_start(&mut self) -> Option<(usize, usize)> {
        let q = self.ready.pop_front()?;
        self.in_ready[q] = false;
        let i = self.queues[q].pop_front()?;
        self.active[q] += 1;
        self.requeue(q);
        Some((q, i))
    }

    /// A feed of host `q` is done (or was skipped without starting).
    fn finished(&mut self, q: usize) {
        self.active[q] = self.active[q].saturating_sub(1);
        self.requeue(q);
    }

    fn requeue(&mut self, q: usize) {
        if !self.in_ready[q] && !self.queues[q].is_empty() && self.active[q] < self.limits[q] {
            self.in_ready[q] = true;
            self.ready.push_back(q);
        }
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

/// Why a feed's state says not to poll it now, if it does.
fn blocked(spec: &FeedSpec, state: &FeedState, now: DateTime<Utc>) -> Option<String> {
    let when = |t: DateTime<Utc>| t.format("%Y-%m-%d %H:%M:%SZ").to_string();
    if let Some(gone) = state.gone_at {
        return Some(format!(
            "gone (HTTP 410) since {}; not polled until the config changes (or --force)",
            when(gone)
        ));
    }
    if let Some(until) = state.hints.retry_after.filter(|t| *t > now) {
        return Some(format!(
            "the server asked to wait until {} (Retry-After)",
            when(until)
        ));
    }
    if let (Some(last), n @ 1..) = (state.last_fetch, state.consecutive_failures) {
        let until = last
            + chrono::Duration::from_std(crate::schedule::backoff(spec.url.as_str(), n)).unwrap_or_default();
        if until > now {
            return Some(format!("backing off after {n} failures until {}", when(until)));
        }
    }
    None
}

/// What every feed's poll shares.
#[derive(Clone)]
struct Context {
    fetcher: Fetcher,
    store: StoreHandle,
    /// Bounds the CPU-bound steps to one per core.
    parsing: Arc<Semaphore>,
    new_feed_entries: usize,
    /// The config's fingerprint, recorded with a feed found gone.
    fingerprint: String,
}

/// Polls one feed; also returns until when its host must be left alone, after a 429 or 403.
async fn poll_one(
    spec: &FeedSpec,
    target: &Url,
    state: FeedState,
    context: &Context,
) -> (FeedReport, Option<DateTime<Utc>>) {
    let Context {
        fetcher,
        store,
        parsing,
        new_feed_entries,
        fingerprint,
    } = context;
    let new_feed_entries = *new_feed_entries;
    let url = display_url(&spec.url);
    let host = Fetcher::host_of(target);
    let feed_id = state.id;
    let request = fetch::Request {
        url: target,
        validators: &state.validators,
        headers: &spec.headers,
    };
    let outcome = match fetcher.fetch(request).await {
        Ok(fetched) => {
            note_redirect(store, feed_id, &url, fetched.moved(), &state).await;
            parse_new(fetched, spec, &state, store, parsing).await
        }
        Err(e) => Err(e.into()),
    };
    let now = Utc::now();
    let stored_rhythm = FeedRhythm {
        ttl: state.rhythm,
        ..FeedRhythm::default()
    };
    let mut host_penalty = None;
    let result = match outcome {
        Ok(Outcome::NotModified(caching)) => {
            let fresh_until = fresh_until(&caching, &stored_rhythm, now);
            let update = FeedUpdate::Unchanged {
                validators: None,
                fresh_until,
            };
            record(store, feed_id, update)
                .await
                .map(|()| FeedStatus::NotModified)
        }
        Ok(Outcome::Unchanged(validators, caching)) => {
            let fresh_until = fresh_until(&caching, &stored_rhythm, now);
            let update = FeedUpdate::Unchanged {
                validators: Some(validators),
                fresh_until,
            };
            record(store, feed_id, update)
                .await
                .map(|()| FeedStatus::Unchanged)
        }
        Ok(Outcome::Parsed(parsed)) => store
            .call(move |s| {
                let batch = ParsedBatch {
                    meta: &parsed.feed.meta,
                    validators: &parsed.validators,
                    body_hash: &parsed.body_hash,
                    entries: &parsed.entries,
                    fresh_until: fresh_until(&parsed.caching, &parsed.feed.meta.rhythm, now),
                    new_feed_entries,
                    unchanged_segments: &parsed.unchanged_segments,
                };
                s.store_parsed(feed_id, &batch, now)
            })
            .await
            .map(FeedStatus::Stored)
            .map_err(|e| e.to_string()),
        Err(failure) => {
            let error = failure.to_string();
            tracing::debug!(feed = %url, %error, "poll failed");
            let retry_after = failure.retry_after(now);
            if let (Some(host), Some(until)) = (&host, failure.host_penalty(now)) {
                host_penalty = Some(until);
                let (host, reason) = (host.clone(), error.clone());
                if let Err(e) = store.call(move |s| s.delay_host(&host, until, &reason)).await {
                    tracing::warn!(%e, "cannot record a host delay");
                }
            }
            let update = FeedUpdate::Failed {
                error: error.clone(),
                retry_after,
                gone: failure.is_gone().then(|| fingerprint.clone()),
            };
            match record(store, feed_id, update).await {
                Ok(()) => Err(error),
                Err(store_error) => Err(format!("{error}; and recording it failed: {store_error}")),
            }
        }
    };
    (FeedReport { url, result }, host_penalty)
}

/// Records where permanent redirects led this time (or that there were none), and logs the
/// move once when a feed has been redirected to the same place on enough consecutive polls.
async fn note_redirect(
    store: &StoreHandle,
    feed_id: i64,
    shown: &str,
    moved: Option<&Url>,
    state: &FeedState,
) {
    let target = moved.map(|m| {
        let mut m = m.clone();
        let _ = m.set_username("");
        let _ = m.set_password(None);
        m.to_string()
    });
    // Nothing to record in the common case: no redirect now, none counted before.
    if target.is_none() && state.moved_count == 0 {
        return;
    }
    match store
        .call(move |s| s.note_redirect(feed_id, target.as_deref()))
        .await
    {
        Ok(Some(to)) => {
            tracing::info!(feed = %shown, moved_to = %to, "feed moved permanently; polling its new address")
        }
        Ok(None) => {}
        Err(e) => tracing::warn!(feed = %shown, error = %e, "cannot record a redirect"),
    }
}

fn fresh_until(caching: &Caching, rhythm: &FeedRhythm, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let http = hints::http_freshness(caching.cache_control.as_deref(), caching.expires.as_deref(), now);
    hints::after_success(http, rhythm, now).fresh_until
}

async fn record(store: &StoreHandle, feed_id: i64, update: FeedUpdate) -> Result<(), String> {
    store
        .call(move |s| s.record_feed(feed_id, &update, Utc::now()))
        .await
        .map_err(|e| e.to_string())
}

enum Outcome {
    NotModified(Caching),
    Unchanged(Validators, Caching),
    Parsed(Box<Parsed>),
}

struct Parsed {
    feed: ParsedFeed,
    entries: Vec<KeyedEntry>,
    /// Fingerprints of the items whose entries are stored unchanged.
    unchanged_segments: Vec<SegmentHash>,
    validators: Validators,
    caching: Caching,
    body_hash: String,
}

/// Why a feed's poll failed.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error(transparent)]
    Parse(#[from] parse::ParseError),
    #[error("{0}")]
    Task(String),
}

impl Failure {
    /// 410: the publisher says the feed is gone for good.
    fn is_gone(&self) -> bool {
        matches!(self, Failure::Fetch(FetchError::Status { status: 410, .. }))
    }

    /// When the server said to come back (Retry-After on any error status).
    fn retry_after(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Failure::Fetch(FetchError::Status {
                retry_after: Some(v), ..
            }) => hints::retry_after(v, now),
            _ => None,
        }
    }

    /// A 429 (too many requests) or 403 (often a rate-limiting WAF) speaks for the whole host.
    fn host_penalty(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Failure::Fetch(FetchError::Status {
                status: 429 | 403, ..
            }) => Some(
                self.retry_after(now)
                    .unwrap_or_else(|| now + chrono::Duration::from_std(HOST_PENALTY).unwrap_or_default()),
            ),
            _ => None,
        }
    }
}

/// Turns a fetched body into the entries the store does not have yet: unchanged bodies and
/// unchanged entries cost a hash each; only new or changed entries are sanitized.
async fn parse_new(
    fetched: Fetched,
    spec: &FeedSpec,
    state: &FeedState,
    store: &StoreHandle,
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
        store
            .read(move |s| s.segments(feed_id))
            .await
            .map_err(|e| task(&e))?
    } else {
        Default::default()
    };
    // Each CPU-bound step holds a parse permit, not the lookup between them: a permit held
    // while waiting would leave a core idle.
    let permit = parsing.acquire().await.map_err(|e| task(&e))?;
    let final_url = body.final_url.clone();
    let (mut feed, keyed) = tokio::task::spawn_blocking(move || {
        let text = charset::decode(body.bytes, body.content_type.as_deref()).text;
        let mut feed = parse::parse_changed(&text, &final_url, &known_segments)?;
        let keyed = dedupe::key_entries(std::mem::take(&mut feed.entries));
        Ok::<_, parse::ParseError>((feed, keyed))
    })
    .await
    .map_err(|e| task(&e))??;
    drop(permit);
    // Only the entries the parse produced are compared with the store.
    let stored = if stored_before && !keyed.is_empty() {
        let keys: Vec<String> = keyed.iter().map(|k| k.key.as_str().to_owned()).collect();
        store
            .read(move |s| s.content_hashes(feed_id, &keys))
            .await
            .map_err(|e| task(&e))?
    } else {
        Default::default()
    };
    let rules = spec.rules.clone();
    let _permit = parsing.acquire().await.map_err(|e| task(&e))?;
    let parsed = tokio::task::spawn_blocking(move || {
        let mut sanitizer = parse::Sanitizer::new();
        // Items the parser left out, and those whose entries turn out unchanged, are the ones
        // the next parse may leave out.
        let mut unchanged_segments = std::mem::take(&mut feed.skipped);
        let entries = keyed
            .into_iter()
            .filter(|k| {
                let unchanged = stored.get(k.key.as_str()) == Some(&k.content_hash);
                if unchanged {
                    unchanged_segments.extend(k.segment);
                }
                !unchanged
            })
            // The feed's rules run before anything is stored: an excluded entry is never kept.
            .filter(|k| rules.is_empty() || rules.keeps(&k.entry.fields()))
            .map(|k| k.finish(&mut sanitizer))
            .collect();
        Parsed {
            feed,
            entries,
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
