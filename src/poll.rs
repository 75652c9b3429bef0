//! The spine: [`poll_feeds`] polls a set of feeds once — fetch → decode → parse → dedupe →
//! store — and reports per feed.
//!
//! `tributary poll` calls it once with every feed; the daemon calls it with the feeds that are
//! due. Nothing here prints or exits; a feed's failure is recorded on that feed and in the
//! report, and never stops the others. Politeness is one budget: at most `poll.concurrency`
//! fetches in flight overall and `poll.per_host` per host, and a 429 or 403 from a host holds
//! back every other feed on that host. Parsing (CPU-bound) runs on the blocking pool, database
//! work on the store thread, so the async workers only wait on the network.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::dedupe;
use crate::fetch::{Caching, FetchError, Fetched, Fetcher, charset};
use crate::model::{FeedSpec, FeedState, KeyedEntry, Validators, display_url};
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

/// The shared politeness budget of one poll.
struct Budget {
    global: Semaphore,
    per_host_limit: usize,
    hosts: Mutex<HashMap<String, Arc<Semaphore>>>,
    /// Hosts that asked us to wait, until when (from the store, and from this poll's answers).
    delayed: Mutex<HashMap<String, DateTime<Utc>>>,
}

impl Budget {
    fn host(&self, host: &str) -> Arc<Semaphore> {
        let mut hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        hosts
            .entry(host.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_host_limit)))
            .clone()
    }

    fn delayed_until(&self, host: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let delayed = self.delayed.lock().unwrap_or_else(|e| e.into_inner());
        delayed.get(host).copied().filter(|t| *t > now)
    }

    fn delay(&self, host: &str, until: DateTime<Utc>) {
        let mut delayed = self.delayed.lock().unwrap_or_else(|e| e.into_inner());
        let entry = delayed.entry(host.to_string()).or_insert(until);
        *entry = (*entry).max(until);
    }
}

/// Polls `feeds` once. Fails only when the store itself is unusable. Once `stop` is cancelled
/// no new fetch starts; fetches already running finish (the caller bounds how long it waits).
pub async fn poll_feeds(
    config: &Config,
    feeds: &[FeedSpec],
    fetcher: &Fetcher,
    store: &StoreHandle,
    stop: &CancellationToken,
) -> Result<PollReport, StoreError> {
    let started = Instant::now();
    let urls: Vec<String> = feeds.iter().map(|f| f.url.to_string()).collect();
    let (states, delayed) = store
        .call(move |s| {
            let now = Utc::now();
            Ok((s.ensure_feeds(&urls, now)?, s.host_delays(now)?))
        })
        .await?;
    let budget = Budget {
        global: Semaphore::new(config.poll.concurrency),
        per_host_limit: config.poll.per_host,
        hosts: Mutex::new(HashMap::new()),
        delayed: Mutex::new(delayed),
    };
    // All feeds are pending at once; the semaphores decide who fetches. A feed waiting for its
    // host's permit holds no global permit, so one slow host cannot starve the others.
    let mut pending: FuturesUnordered<_> = feeds
        .iter()
        .zip(states)
        .enumerate()
        .map(|(i, (spec, state))| {
            let budget = &budget;
            async move { (i, poll_one(spec, state, fetcher, store, budget, stop).await) }
        })
        .collect();
    let mut reports: Vec<Option<FeedReport>> = vec![None; feeds.len()];
    while let Some((i, report)) = pending.next().await {
        reports[i] = Some(report);
    }
    Ok(PollReport {
        feeds: reports.into_iter().flatten().collect(),
        elapsed: started.elapsed(),
    })
}

async fn poll_one(
    spec: &FeedSpec,
    state: FeedState,
    fetcher: &Fetcher,
    store: &StoreHandle,
    budget: &Budget,
    stop: &CancellationToken,
) -> FeedReport {
    let url = display_url(&spec.url);
    let host = Fetcher::host_of(&spec.url);
    let host_permit = match &host {
        Some(h) => Some(budget.host(h).acquire_owned().await),
        None => None,
    };
    let global_permit = budget.global.acquire().await;
    if stop.is_cancelled() || global_permit.is_err() || host_permit.as_ref().is_some_and(Result::is_err) {
        return FeedReport {
            url,
            result: Ok(FeedStatus::Skipped("shutting down".into())),
        };
    }
    if let Some(until) = host.as_deref().and_then(|h| budget.delayed_until(h, Utc::now())) {
        return FeedReport {
            url,
            result: Ok(FeedStatus::Skipped(format!(
                "host asked to wait until {}",
                until.format("%Y-%m-%d %H:%M:%SZ")
            ))),
        };
    }
    let feed_id = state.id;
    let outcome = fetch_and_parse(spec, &state, fetcher).await;
    drop(global_permit);
    drop(host_permit);
    let now = Utc::now();
    let stored_rhythm = FeedRhythm {
        ttl: state.rhythm,
        ..FeedRhythm::default()
    };
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
            if let (Some(host), Some(penalty)) = (&host, failure.host_penalty(now)) {
                budget.delay(host, penalty);
                let (host, reason) = (host.clone(), error.clone());
                if let Err(e) = store.call(move |s| s.delay_host(&host, penalty, &reason)).await {
                    tracing::warn!(%e, "cannot record a host delay");
                }
            }
            let update = FeedUpdate::Failed {
                error: error.clone(),
                retry_after,
            };
            match record(store, feed_id, update).await {
                Ok(()) => Err(error),
                Err(store_error) => Err(format!("{error}; and recording it failed: {store_error}")),
            }
        }
    };
    FeedReport { url, result }
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
    #[error("parser task failed: {0}")]
    Task(String),
}

impl Failure {
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

async fn fetch_and_parse(spec: &FeedSpec, state: &FeedState, fetcher: &Fetcher) -> Result<Outcome, Failure> {
    let body = match fetcher.fetch(&spec.url, &state.validators).await? {
        Fetched::NotModified(caching) => return Ok(Outcome::NotModified(caching)),
        Fetched::Modified(body) => body,
    };
    let body_hash = hex::encode(Sha256::digest(&body.bytes));
    if state.body_hash.as_deref() == Some(body_hash.as_str()) {
        return Ok(Outcome::Unchanged(body.validators, body.caching));
    }
    let parsed = tokio::task::spawn_blocking(move || {
        let text = charset::decode(&body.bytes, body.content_type.as_deref()).text;
        let mut feed = parse::parse_document(&text, &body.final_url)?;
        let entries = dedupe::key_entries(std::mem::take(&mut feed.entries));
        Ok::<_, parse::ParseError>(Parsed {
            feed,
            entries,
            validators: body.validators,
            caching: body.caching,
            body_hash,
        })
    })
    .await
    .map_err(|e| Failure::Task(e.to_string()))??;
    Ok(Outcome::Parsed(Box::new(parsed)))
}
