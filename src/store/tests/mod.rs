//! The store's promises, tested once and run on both backends (`on_both_stores!`): each test
//! runs as `ROOM::NAME::sqlite` and `ROOM::NAME::postgres`, a room per part of the store
//! (`feeds`, `entries`, `outputs`, `sources`); the helpers they share are here. Times are passed
//! in; nothing sleeps.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};

use super::*;
use crate::dedupe::key_entries;
use crate::model::{Entry, FailureKind, FeedMeta, FullText, IconUpdate, Needs, Validators};

mod entries;
mod feeds;
mod outputs;
mod sources;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
}

/// Keyed and finished, as the poller hands entries to the store.
pub(crate) fn finished(entries: Vec<Entry>) -> Vec<KeyedEntry> {
    let mut sanitizer = crate::content::Sanitizer::new();
    key_entries(entries.into_iter().map(Into::into).collect())
        .into_iter()
        .map(|k| crate::content::finish(k, &[], &mut Default::default(), &mut sanitizer))
        .collect()
}

fn scheduled(next_due: Option<DateTime<Utc>>, lease: Option<i64>) -> Scheduled {
    Scheduled {
        next_due,
        key: "k".into(),
        lease,
    }
}

/// `entries` as one poll of `feed` at `now` would store them, the back catalogue limited to
/// `new_feed_entries`.
pub(crate) async fn store_batch(
    store: &Store,
    feed: i64,
    entries: Vec<KeyedEntry>,
    new_feed_entries: usize,
    now: DateTime<Utc>,
) -> StoreOutcome {
    let batch = ParsedBatch {
        meta: FeedMeta::default(),
        validators: Validators::default(),
        body_hash: "h".into(),
        entries,
        fresh_until: None,
        new_feed_entries,
        unchanged_segments: Fingerprints::default(),
        scheduled: scheduled(None, None),
        pushed: false,
    };
    store.store_parsed(feed, batch, now).await.unwrap()
}

pub(crate) async fn store_all(store: &Store, feed: i64, entries: Vec<KeyedEntry>) -> StoreOutcome {
    store_batch(store, feed, entries, 100, t0()).await
}

fn titled(titles: &[&str]) -> Vec<KeyedEntry> {
    finished(
        titles
            .iter()
            .map(|t| Entry {
                guid: Some(format!("id-{t}")),
                title: t.to_string(),
                ..Entry::default()
            })
            .collect(),
    )
}

async fn feed(store: &Store, url: &str) -> i64 {
    store.ensure_feeds(vec![url.to_string()], t0()).await.unwrap()[0].id
}

/// Every candidate of `query`'s selection, page by page.
async fn all_candidates(store: &Store, feeds: Option<Vec<i64>>, page: usize) -> Vec<Candidate> {
    let feeds = feeds.map(|f| Arc::new(f.into_iter().collect::<HashSet<_>>()));
    let mut out: Vec<Candidate> = Vec::new();
    for _ in 0..1000 {
        let next = store
            .candidates(CandidateQuery {
                feeds: feeds.clone(),
                needs: Default::default(),
                after: out.last().map(Candidate::cursor),
                limit: page,
            })
            .await
            .unwrap();
        if next.is_empty() {
            return out;
        }
        out.extend(next);
    }
    panic!("more than 1000 pages");
}

/// The stored entries of feed `feed`, newest first.
async fn entries_of(store: &Store, feed: i64) -> Vec<StoredEntry> {
    let ids: Vec<i64> = all_candidates(store, Some(vec![feed]), 100)
        .await
        .iter()
        .map(|c| c.id)
        .collect();
    let mut entries = store.entries(ids.clone()).await.unwrap();
    entries.sort_by_key(|e| ids.iter().position(|id| *id == e.id));
    entries
}

/// 2026-01-`d`, at noon.
fn day(d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, d, 12, 0, 0).unwrap()
}
