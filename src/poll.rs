//! The spine: [`poll_feeds`] polls every configured feed once — fetch → decode → parse →
//! dedupe → store — with at most `poll.concurrency` feeds in flight, and reports per feed.
//!
//! `tributary poll` calls it once; the daemon calls it whenever feeds are due. Nothing here
//! prints or exits; a feed's failure is recorded on that feed and in the report, and never
//! stops the others. Parsing (CPU-bound) runs on the blocking pool, database work on the store
//! thread, so the async workers only wait on the network.

use std::time::{Duration, Instant};

use chrono::Utc;
use futures::StreamExt;
use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::dedupe;
use crate::fetch::{Fetched, Fetcher, charset};
use crate::model::{FeedSpec, FeedState, display_url};
use crate::parse::{self, ParsedFeed};
use crate::store::{FeedUpdate, ParsedBatch, StoreError, StoreHandle, StoreOutcome};

/// How one feed's poll ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedStatus {
    /// The server answered 304.
    NotModified,
    /// The body was byte-identical to the last one parsed, so it was not parsed again.
    Unchanged,
    /// Parsed and stored.
    Stored(StoreOutcome),
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
        self.feeds.iter().filter(|f| f.result.is_ok()).count()
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

/// Polls every feed in `config` once. Fails only when the store itself is unusable.
pub async fn poll_feeds(
    config: &Config,
    fetcher: &Fetcher,
    store: &StoreHandle,
) -> Result<PollReport, StoreError> {
    let started = Instant::now();
    let urls: Vec<String> = config.feeds.iter().map(|f| f.url.to_string()).collect();
    let states = store.call(move |s| s.ensure_feeds(&urls, Utc::now())).await?;
    let feeds = config
        .feeds
        .iter()
        .zip(states)
        .map(|(spec, state)| poll_one(spec, state, fetcher, store));
    let reports = futures::stream::iter(feeds)
        .buffered(config.poll.concurrency)
        .collect::<Vec<_>>()
        .await;
    Ok(PollReport {
        feeds: reports,
        elapsed: started.elapsed(),
    })
}

async fn poll_one(spec: &FeedSpec, state: FeedState, fetcher: &Fetcher, store: &StoreHandle) -> FeedReport {
    let url = display_url(&spec.url);
    let feed_id = state.id;
    let result = match fetch_and_parse(spec, &state, fetcher).await {
        Ok(Outcome::NotModified) => record(store, feed_id, FeedUpdate::Unchanged { validators: None })
            .await
            .map(|()| FeedStatus::NotModified),
        Ok(Outcome::Unchanged(validators)) => record(
            store,
            feed_id,
            FeedUpdate::Unchanged {
                validators: Some(validators),
            },
        )
        .await
        .map(|()| FeedStatus::Unchanged),
        Ok(Outcome::Parsed(parsed)) => store
            .call(move |s| {
                let batch = ParsedBatch {
                    meta: &parsed.feed.meta,
                    validators: &parsed.validators,
                    body_hash: &parsed.body_hash,
                    entries: &parsed.entries,
                };
                s.store_parsed(feed_id, &batch, Utc::now())
            })
            .await
            .map(FeedStatus::Stored)
            .map_err(|e| e.to_string()),
        Err(error) => {
            tracing::debug!(feed = %url, %error, "poll failed");
            match record(store, feed_id, FeedUpdate::Failed { error: error.clone() }).await {
                Ok(()) => Err(error),
                Err(store_error) => Err(format!("{error}; and recording it failed: {store_error}")),
            }
        }
    };
    FeedReport { url, result }
}

async fn record(store: &StoreHandle, feed_id: i64, update: FeedUpdate) -> Result<(), String> {
    store
        .call(move |s| s.record_feed(feed_id, &update, Utc::now()))
        .await
        .map_err(|e| e.to_string())
}

enum Outcome {
    NotModified,
    Unchanged(crate::model::Validators),
    Parsed(Box<Parsed>),
}

struct Parsed {
    feed: ParsedFeed,
    entries: Vec<crate::model::KeyedEntry>,
    validators: crate::model::Validators,
    body_hash: String,
}

async fn fetch_and_parse(spec: &FeedSpec, state: &FeedState, fetcher: &Fetcher) -> Result<Outcome, String> {
    let body = match fetcher.fetch(&spec.url, &state.validators).await {
        Ok(Fetched::NotModified) => return Ok(Outcome::NotModified),
        Ok(Fetched::Modified(body)) => body,
        Err(e) => return Err(e.to_string()),
    };
    let body_hash = hex::encode(Sha256::digest(&body.bytes));
    if state.body_hash.as_deref() == Some(body_hash.as_str()) {
        return Ok(Outcome::Unchanged(body.validators));
    }
    let parsed = tokio::task::spawn_blocking(move || {
        let text = charset::decode(&body.bytes, body.content_type.as_deref()).text;
        let mut feed = parse::parse_document(&text, &body.final_url)?;
        let entries = dedupe::key_entries(std::mem::take(&mut feed.entries));
        Ok::<_, parse::ParseError>(Parsed {
            feed,
            entries,
            validators: body.validators,
            body_hash,
        })
    })
    .await
    .map_err(|e| format!("parser task failed: {e}"))?
    .map_err(|e| e.to_string())?;
    Ok(Outcome::Parsed(Box::new(parsed)))
}
