//! The store's promises, tested once and run on both backends (`on_both_stores!`): each test
//! runs as `NAME::sqlite` and `NAME::postgres`. Times are passed in; nothing sleeps.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};

use super::*;
use crate::dedupe::key_entries;
use crate::model::{Entry, FailureKind, FeedMeta, FullText, Needs, Validators};

on_both_stores!(
    feeds_are_made_once_and_found_by_url_and_id,
    a_claim_takes_due_feeds_oldest_first_and_says_when_to_look_again,
    a_record_ends_the_claim_and_sets_the_next_due_time,
    failures_are_counted_kept_as_history_and_forgotten_on_reset,
    a_poll_under_a_claim_that_passed_on_is_not_recorded,
    entries_are_inserted_updated_in_place_and_left_alone_when_unchanged,
    dates_are_settled_once,
    a_new_feeds_back_catalogue_is_hidden_by_the_current_limit,
    retired_entries_leave_a_tombstone_and_never_come_back,
    retiring_forgets_fingerprints_and_tombstoned_items_are_not_recorded,
    candidates_come_newest_first_in_pages_whatever_the_selection,
    duplicates_by_link_and_lookups_by_what_explain_is_given,
    retention_keeps_what_outputs_show_and_leaves_tombstones,
    permanent_redirects_move_a_feed_after_three_polls,
    hosts_wait_for_the_longest_delay,
    full_text_retries_are_recorded,
    icons_are_kept_once_by_hash_and_each_feeds_look_remembered,
    the_outbox_announces_each_entry_once_and_claims_each_delivery_once,
    readers_are_the_latest_figures_within_their_windows,
    claims_made_at_once_share_no_delivery,
    outputs_remember_failures_until_a_render_succeeds,
    gone_feeds_get_another_chance_under_another_config,
    an_entrys_language_and_its_source_are_kept,
    subscriptions_say_until_when_a_feed_is_pushed_and_count_its_pushes,
    lists_keep_their_members_and_what_is_held,
);

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

async fn feeds_are_made_once_and_found_by_url_and_id(store: Store) {
    let urls: Vec<String> = vec!["https://e.org/a".into(), "https://e.org/b".into()];
    let first = store.ensure_feeds(urls.clone(), t0()).await.unwrap();
    let again = store
        .ensure_feeds(urls.iter().rev().cloned().collect(), t0())
        .await
        .unwrap();
    assert_eq!(first[0].id, again[1].id, "in the order asked for");
    assert_eq!(first[1].id, again[0].id);
    let by_url = store.feeds_by_url(urls.clone().into()).await.unwrap();
    assert_eq!(by_url.len(), 2);
    let by_id = store.feeds_by_id(vec![first[0].id, 999_999]).await.unwrap();
    assert_eq!(by_id.len(), 1);
    assert_eq!(by_id[&first[0].id].url, "https://e.org/a");
    let mut ids = store.feed_ids().await.unwrap();
    ids.sort();
    assert_eq!(
        ids,
        vec![(first[0].id, urls[0].clone()), (first[1].id, urls[1].clone())]
    );
    // A feed stored under an old identity moves to its new one, unless that is taken.
    assert_eq!(
        store
            .rekey_feeds(vec![("https://e.org/a".into(), "https://e.org/c".into())], false)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .rekey_feeds(vec![("https://e.org/b".into(), "https://e.org/c".into())], false)
            .await
            .unwrap(),
        0
    );
    let moved = store
        .feeds_by_url(Arc::from(vec!["https://e.org/c".to_string()]))
        .await
        .unwrap();
    assert_eq!(
        moved["https://e.org/c"].id_url, None,
        "a new identity, the same ids as its URL"
    );
    // The same feed under a new spelling keeps the URL its ids were made from, through every
    // later rename.
    store
        .rekey_feeds(vec![("https://e.org/c".into(), "https://e.org/c/".into())], true)
        .await
        .unwrap();
    store
        .rekey_feeds(vec![("https://e.org/c/".into(), "http://e.org/c".into())], true)
        .await
        .unwrap();
    let renamed = store
        .feeds_by_url(Arc::from(vec!["http://e.org/c".to_string()]))
        .await
        .unwrap();
    assert_eq!(
        renamed["http://e.org/c"].id_url.as_deref(),
        Some("https://e.org/c")
    );
    let mut known = store.feed_identities().await.unwrap();
    known.sort();
    assert_eq!(
        known,
        vec![
            ("http://e.org/c".to_string(), None),
            ("https://e.org/b".to_string(), None)
        ]
    );
    assert_eq!(store.integrity_check().await.unwrap(), Ok(()));
}

async fn a_claim_takes_due_feeds_oldest_first_and_says_when_to_look_again(store: Store) {
    let urls: Vec<String> = (0..5).map(|i| format!("https://e.org/{i}")).collect();
    let feeds = store.ensure_feeds(urls, t0()).await.unwrap();
    let due: Vec<(i64, Scheduled)> = feeds
        .iter()
        .enumerate()
        .map(|(i, f)| {
            (
                f.id,
                scheduled(Some(t0() + Duration::seconds(i as i64 * 10)), None),
            )
        })
        .collect();
    store.schedule(due).await.unwrap();
    let until = t0() + Duration::hours(2);
    let now = t0() + Duration::seconds(25);
    let claimed = store.claim_due(now, 2, until).await.unwrap();
    assert_eq!(
        claimed.feeds.iter().map(|f| f.id).collect::<Vec<_>>(),
        [feeds[0].id, feeds[1].id],
        "the oldest due first, up to the limit"
    );
    assert!(claimed.more, "a third is due");
    let rest = store.claim_due(now, 10, until).await.unwrap();
    assert_eq!(rest.feeds.len(), 1, "claimed feeds are not claimed again");
    assert!(!rest.more);
    assert_eq!(
        rest.next,
        Some(t0() + Duration::seconds(30)),
        "when the next is due"
    );
    // A claim given back (the daemon is stopping) is due as it was.
    let ids: Vec<i64> = claimed.feeds.iter().map(|f| f.id).collect();
    assert_eq!(store.release_leases(Some(ids)).await.unwrap(), 2);
    assert_eq!(store.claim_due(now, 10, until).await.unwrap().feeds.len(), 2);
    // Taken off the schedule: never due.
    store.unschedule_others(vec![feeds[0].id]).await.unwrap();
    let later = store
        .claim_due(t0() + Duration::hours(1), 10, until)
        .await
        .unwrap();
    assert!(later.feeds.is_empty(), "{:?}", later.feeds);
    // What a start finds under its name was left by a crash: released.
    store.release_leases(None).await.unwrap();
    let after_crash = store
        .claim_due(t0() + Duration::hours(1), 10, until)
        .await
        .unwrap();
    assert_eq!(
        after_crash.feeds.iter().map(|f| f.id).collect::<Vec<_>>(),
        [feeds[0].id]
    );
}

async fn a_record_ends_the_claim_and_sets_the_next_due_time(store: Store) {
    let id = feed(&store, "https://e.org/f").await;
    store
        .schedule(vec![(id, scheduled(Some(t0()), None))])
        .await
        .unwrap();
    let claimed = store
        .claim_due(t0(), 10, t0() + Duration::minutes(5))
        .await
        .unwrap();
    let lease = claimed.feeds[0].lease_epoch;
    let validators = Validators {
        etag: Some("\"v1\"".into()),
        last_modified: None,
    };
    let next = t0() + Duration::milliseconds(15 * 60 * 1000 + 250);
    store
        .record_poll(
            id,
            FeedUpdate::Unchanged {
                validators: Some(validators.clone()),
                fresh_until: Some(t0() + Duration::minutes(10)),
            },
            scheduled(Some(next), lease),
            t0() + Duration::milliseconds(500),
        )
        .await
        .unwrap();
    let state = &store.feeds_by_id(vec![id]).await.unwrap()[&id];
    assert_eq!(state.validators, validators);
    assert_eq!(state.next_due, Some(next), "milliseconds kept");
    assert_eq!(state.last_fetch, Some(t0() + Duration::milliseconds(500)));
    assert_eq!(state.hints.fresh_until, Some(t0() + Duration::minutes(10)));
    assert_eq!(state.schedule_key.as_deref(), Some("k"));
    let claim = store
        .claim_due(next, 10, next + Duration::minutes(5))
        .await
        .unwrap();
    assert_eq!(claim.feeds.len(), 1, "due at its time, claimable again");
    // Renewals by the one holder keep its claim; nothing is lost.
    assert!(
        store
            .renew_leases(vec![id], next + Duration::minutes(10))
            .await
            .unwrap()
            .is_empty()
    );
}

async fn failures_are_counted_kept_as_history_and_forgotten_on_reset(store: Store) {
    let id = feed(&store, "https://e.org/f").await;
    for n in 0..25 {
        let now = t0() + Duration::minutes(n);
        store
            .record_poll(
                id,
                FeedUpdate::Failed {
                    error: format!("HTTP 503 ({n})"),
                    kind: FailureKind::ServerError,
                    retry_after: Some(now + Duration::minutes(30)),
                    gone: None,
                    abandoned: n == 24,
                },
                scheduled(Some(now + Duration::minutes(1)), None),
                now,
            )
            .await
            .unwrap();
    }
    let state = &store.feeds_by_id(vec![id]).await.unwrap()[&id];
    assert_eq!(state.consecutive_failures, 25);
    assert_eq!(state.failing_since, Some(t0()));
    assert_eq!(state.failure_kind, Some(FailureKind::ServerError));
    assert_eq!(state.last_error.as_deref(), Some("HTTP 503 (24)"));
    assert!(state.abandoned_at.is_some());
    let history = store.feed_errors(id).await.unwrap();
    assert_eq!(history.len(), ERROR_HISTORY as usize, "the last 20 are kept");
    assert_eq!(history[0].message, "HTTP 503 (24)", "newest first");
    assert_eq!(history[0].kind, FailureKind::ServerError);
    store.reset_feed(id).await.unwrap();
    let state = &store.feeds_by_id(vec![id]).await.unwrap()[&id];
    assert_eq!(state.consecutive_failures, 0);
    assert!(state.abandoned_at.is_none() && state.failing_since.is_none());
    assert!(store.feed_errors(id).await.unwrap().is_empty());
    let due = store
        .claim_due(t0(), 10, t0() + Duration::minutes(1))
        .await
        .unwrap();
    assert_eq!(due.feeds.len(), 1, "due at once");
}

/// On a store many nodes share, a claim that passed to another node fences the old holder's
/// records; on SQLite, one daemon per file, every claim is the one daemon's and stands.
async fn a_poll_under_a_claim_that_passed_on_is_not_recorded(store: Store) {
    let id = feed(&store, "https://e.org/f").await;
    store
        .schedule(vec![(id, scheduled(Some(t0()), None))])
        .await
        .unwrap();
    let first = store
        .claim_due(t0(), 10, t0() + Duration::seconds(30))
        .await
        .unwrap();
    let later = t0() + Duration::seconds(31);
    let second = store
        .claim_due(later, 10, later + Duration::seconds(30))
        .await
        .unwrap();
    assert_eq!(second.feeds.len(), 1, "a claim that ran out is taken again");
    let stale = first.feeds[0].lease_epoch;
    let fresh = second.feeds[0].lease_epoch;
    let batch = |lease| ParsedBatch {
        meta: FeedMeta::default(),
        validators: Validators::default(),
        body_hash: "stale".into(),
        entries: titled(&["x"]),
        fresh_until: None,
        new_feed_entries: 10,
        unchanged_segments: Fingerprints::default(),
        scheduled: scheduled(Some(later + Duration::hours(1)), lease),
        pushed: false,
    };
    let late = store.store_parsed(id, batch(stale), later).await;
    let failed = store
        .record_poll(
            id,
            FeedUpdate::Failed {
                error: "late".into(),
                kind: FailureKind::Timeout,
                retry_after: None,
                gone: None,
                abandoned: false,
            },
            scheduled(Some(later + Duration::hours(1)), stale),
            later,
        )
        .await;
    if store.coordination().is_some() {
        assert!(matches!(late, Err(StoreError::Fenced { .. })), "{late:?}");
        assert!(matches!(failed, Err(StoreError::Fenced { .. })), "{failed:?}");
        assert!(entries_of(&store, id).await.is_empty(), "nothing written");
        let state = &store.feeds_by_id(vec![id]).await.unwrap()[&id];
        assert_eq!(state.consecutive_failures, 0);
        // The holder's own record stands.
        assert_eq!(store.store_parsed(id, batch(fresh), later).await.unwrap().new, 1);
    } else {
        assert_eq!(late.unwrap().new, 1);
        failed.unwrap();
    }
}

async fn entries_are_inserted_updated_in_place_and_left_alone_when_unchanged(store: Store) {
    let id = feed(&store, "https://e.org/f").await;
    let mut entries = finished(vec![
        Entry {
            guid: Some("a".into()),
            title: "A".into(),
            link: Some("https://e.org/a?utm_source=x".into()),
            categories: vec![
                "rust".into(),
                "中文".into(),
                r#"a "quoted", {braced} \ NULL"#.into(),
            ],
            author: Some(crate::model::Person {
                name: "李伟".into(),
                email: Some("li.wei@zh.example".into()),
                uri: None,
            }),
            enclosures: vec![crate::model::Enclosure {
                url: "https://e.org/a.mp3".into(),
                mime_type: Some("audio/mpeg".into()),
                length: Some(1234),
            }],
            content: Some("<p>one</p>".into()),
            published: Some(t0() - Duration::days(1)),
            ..Entry::default()
        },
        Entry {
            guid: Some("b".into()),
            title: "B".into(),
            published: Some(t0() - Duration::days(2)),
            ..Entry::default()
        },
    ]);
    assert_eq!(
        store_all(&store, id, entries.clone()).await,
        StoreOutcome {
            new: 2,
            ..StoreOutcome::default()
        }
    );
    let hashes = store
        .content_hashes(id, vec!["guid:a".into(), "guid:b".into(), "guid:zz".into()])
        .await
        .unwrap();
    assert_eq!(hashes.len(), 2, "{hashes:?}");
    assert_eq!(
        store_all(&store, id, entries.clone()).await,
        StoreOutcome::default()
    );
    entries[0].entry.content = Some("<p>two</p>".into());
    entries[0].content_hash = "changed".into();
    let later = t0() + Duration::hours(1);
    let outcome = store_batch(&store, id, entries, 100, later).await;
    assert_eq!((outcome.new, outcome.updated), (0, 1));
    let stored = entries_of(&store, id).await;
    let a = &stored[0];
    assert_eq!(a.entry.title, "A");
    assert_eq!(a.entry.content.as_deref(), Some("<p>two</p>"));
    assert_eq!(
        a.entry.categories,
        ["rust", "中文", r#"a "quoted", {braced} \ NULL"#]
    );
    assert_eq!(a.entry.enclosures.len(), 1);
    assert_eq!(a.entry.enclosures[0].length, Some(1234));
    assert_eq!(a.entry.author.as_ref().map(|p| p.name.as_str()), Some("李伟"));
    assert_eq!(a.canonical_link.as_deref(), Some("https://e.org/a"));
    assert_eq!(a.published, t0() - Duration::days(1), "first date kept");
    assert_eq!(a.updated, later, "moves with the change");
    assert_eq!(a.first_seen, t0());
    let stats = store.entry_stats().await.unwrap();
    assert_eq!(
        stats["https://e.org/f"],
        EntryStats {
            count: 2,
            newest: Some(t0())
        }
    );
}

async fn dates_are_settled_once(store: Store) {
    let id = feed(&store, "https://e.org/f").await;
    let entries = finished(vec![
        Entry {
            guid: Some("undated".into()),
            title: "undated".into(),
            ..Entry::default()
        },
        Entry {
            guid: Some("future".into()),
            title: "future".into(),
            published: Some(t0() + Duration::days(30)),
            ..Entry::default()
        },
    ]);
    store_all(&store, id, entries.clone()).await;
    // A later poll of the same items moves nothing.
    store_batch(&store, id, entries, 100, t0() + Duration::days(1)).await;
    for e in entries_of(&store, id).await {
        assert_eq!(e.published, t0(), "{}: first seen, kept", e.entry.title);
    }
}

async fn a_new_feeds_back_catalogue_is_hidden_by_the_current_limit(store: Store) {
    let id = feed(&store, "https://e.org/f").await;
    let entries = finished(
        (1..=5)
            .map(|d| Entry {
                guid: Some(format!("e{d}")),
                title: format!("day {d}"),
                published: Some(t0() - Duration::days(10 - d)),
                ..Entry::default()
            })
            .collect(),
    );
    let outcome = store_batch(&store, id, entries, 2, t0()).await;
    assert_eq!((outcome.new, outcome.held_back), (5, 3));
    let titles =
        |stored: Vec<StoredEntry>| -> Vec<String> { stored.into_iter().map(|e| e.entry.title).collect() };
    assert_eq!(titles(entries_of(&store, id).await), ["day 5", "day 4"]);
    // Raising the limit lets more of the back catalogue in; applying it again costs nothing.
    assert!(store.apply_catalogue_limit(4).await.unwrap());
    assert!(!store.apply_catalogue_limit(4).await.unwrap());
    assert_eq!(
        titles(entries_of(&store, id).await),
        ["day 5", "day 4", "day 3", "day 2"]
    );
    // Entries a later poll brings are never the back catalogue.
    let new = finished(vec![Entry {
        guid: Some("later".into()),
        title: "later".into(),
        published: Some(t0() - Duration::days(20)),
        ..Entry::default()
    }]);
    assert_eq!(store_batch(&store, id, new, 0, t0()).await.held_back, 0);
}

async fn retired_entries_leave_a_tombstone_and_never_come_back(store: Store) {
    let id = feed(&store, "https://e.org/f").await;
    let entries = titled(&["a", "b"]);
    assert_eq!(store_all(&store, id, entries.clone()).await.new, 2);
    let stored = entries_of(&store, id).await;
    let a = stored.iter().find(|e| e.entry.title == "a").unwrap().id;
    assert_eq!(store.retire_entries(vec![a], t0()).await.unwrap().0, 1);
    // The feed still carries "a": it must not return as new.
    assert_eq!(store_all(&store, id, entries).await, StoreOutcome::default());
    assert_eq!(entries_of(&store, id).await.len(), 1);
    assert!(store.integrity_check().await.unwrap().is_ok());
}

/// Retiring an entry forgets the feed's item fingerprints (the next parse must read its item
/// to see the tombstone again), and a tombstoned entry's item is never recorded.
async fn retiring_forgets_fingerprints_and_tombstoned_items_are_not_recorded(store: Store) {
    let id = feed(&store, "https://e.org/f").await;
    let mut entries = titled(&["a", "b"]);
    entries[0].segment = Some(1);
    entries[1].segment = Some(2);
    store_all(&store, id, entries.clone()).await;
    assert_eq!(
        store.fingerprints(id).await.unwrap(),
        [1, 2].into_iter().collect()
    );
    let stored = entries_of(&store, id).await;
    let a = stored.iter().find(|e| e.entry.title == "a").unwrap().id;
    store.retire_entries(vec![a], t0()).await.unwrap();
    assert!(store.fingerprints(id).await.unwrap().is_empty());
    store_all(&store, id, entries).await;
    assert_eq!(store.fingerprints(id).await.unwrap(), [2].into_iter().collect());
}

/// Pages of any size, for every feed, a few feeds (merged per feed) or many (a walk of the
/// date index), give the same entries in the same order as one long page.
async fn candidates_come_newest_first_in_pages_whatever_the_selection(store: Store) {
    let urls: Vec<String> = (0..300).map(|i| format!("https://e.org/{i}")).collect();
    let feeds = store.ensure_feeds(urls, t0()).await.unwrap();
    for (i, f) in feeds.iter().enumerate().take(6) {
        let entries = finished(
            (0..7)
                .map(|j| Entry {
                    guid: Some(format!("{i}-{j}")),
                    title: format!("{i}-{j}"),
                    // Some share a second, so ids break ties.
                    published: Some(t0() - Duration::minutes((j * 6 + i) as i64 / 2)),
                    ..Entry::default()
                })
                .collect(),
        );
        store_all(&store, f.id, entries).await;
    }
    let everything = all_candidates(&store, None, 1000).await;
    assert_eq!(everything.len(), 42);
    assert!(
        everything.windows(2).all(|w| w[0].cursor() > w[1].cursor()),
        "newest first, ids breaking ties"
    );
    for page in [1, 5, 64] {
        let paged = all_candidates(&store, None, page).await;
        assert_eq!(
            paged.iter().map(|c| c.id).collect::<Vec<_>>(),
            everything.iter().map(|c| c.id).collect::<Vec<_>>(),
            "page of {page}"
        );
    }
    let few: Vec<i64> = vec![feeds[1].id, feeds[4].id];
    let expected: Vec<i64> = everything
        .iter()
        .filter(|c| few.contains(&c.feed_id))
        .map(|c| c.id)
        .collect();
    for page in [1, 3, 100] {
        let got: Vec<i64> = all_candidates(&store, Some(few.clone()), page)
            .await
            .iter()
            .map(|c| c.id)
            .collect();
        assert_eq!(got, expected, "a few feeds, page of {page}");
    }
    // Many feeds: every feed but the first.
    let many: Vec<i64> = feeds.iter().skip(1).map(|f| f.id).collect();
    let expected: Vec<i64> = everything
        .iter()
        .filter(|c| c.feed_id != feeds[0].id)
        .map(|c| c.id)
        .collect();
    for page in [4, 100] {
        let got: Vec<i64> = all_candidates(&store, Some(many.clone()), page)
            .await
            .iter()
            .map(|c| c.id)
            .collect();
        assert_eq!(got, expected, "many feeds, page of {page}");
    }
}

async fn duplicates_by_link_and_lookups_by_what_explain_is_given(store: Store) {
    let a = feed(&store, "https://a.example/feed").await;
    let b = feed(&store, "https://b.example/feed").await;
    let story = |guid: &str, title: &str| Entry {
        guid: Some(guid.into()),
        title: title.into(),
        link: Some("https://news.example/s?utm_medium=rss".into()),
        ..Entry::default()
    };
    store_all(&store, a, finished(vec![story("a-1", "Shared story")])).await;
    store_batch(
        &store,
        b,
        finished(vec![story("b-1", "Shared, B")]),
        100,
        t0() + Duration::hours(1),
    )
    .await;
    let group = store
        .entries_with_links(vec![
            "https://news.example/s".into(),
            "https://none.example/".into(),
        ])
        .await
        .unwrap();
    assert_eq!(
        group.iter().map(|e| e.feed_id).collect::<Vec<_>>(),
        [a, b],
        "first seen first"
    );
    let by_link = store
        .entries_matching(
            "https://news.example/s?utm_medium=rss".into(),
            "https://news.example/s".into(),
        )
        .await
        .unwrap();
    assert_eq!(by_link.len(), 2);
    let by_title = store
        .entries_matching("shared story".into(), "shared story".into())
        .await
        .unwrap();
    assert_eq!(by_title.len(), 1);
    let keys: HashMap<i64, (String, String)> = store
        .entry_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|(id, url, key)| (id, (url, key)))
        .collect();
    assert_eq!(
        keys[&by_title[0].id],
        ("https://a.example/feed".into(), "guid:a-1".into())
    );
}

/// 2026-01-`d`, at noon.
fn day(d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, d, 12, 0, 0).unwrap()
}

async fn retention_keeps_what_outputs_show_and_leaves_tombstones(store: Store) {
    let id = feed(&store, "https://e.org/f").await;
    let ten_days = || {
        finished(
            (1..=10)
                .map(|d| Entry {
                    guid: Some(format!("e{d}")),
                    title: format!("day {d}"),
                    published: Some(day(d)),
                    ..Entry::default()
                })
                .collect(),
        )
    };
    store_batch(&store, id, ten_days(), 100, day(20)).await;
    // Keep 5 days (from Jan 20: entries of Jan 15+ survive by age), at most 3 per feed, but
    // outputs show the newest 4.
    let shown: HashSet<i64> = entries_of(&store, id)
        .await
        .iter()
        .take(4)
        .map(|e| e.id)
        .collect();
    let retention = Retention {
        keep_days: 5,
        keep_per_feed: 3,
        protected: shown,
    };
    let report = housekeeping(&store, retention, day(20)).await.unwrap();
    assert_eq!(report.entries_removed, 6);
    let titles: Vec<String> = entries_of(&store, id)
        .await
        .into_iter()
        .map(|e| e.entry.title)
        .collect();
    assert_eq!(titles, ["day 10", "day 9", "day 8", "day 7"]);
    // The removed entries are still in the feed: they do not come back.
    assert_eq!(store_batch(&store, id, ten_days(), 100, day(21)).await.new, 0);
    // Tombstones not seen since a time go (housekeeping: for 90 days).
    assert_eq!(
        store.expire_tombstones(day(21), 100).await.unwrap().0,
        0,
        "seen on Jan 21"
    );
    assert_eq!(
        store.expire_tombstones(day(22), 4).await.unwrap().0,
        4,
        "in batches"
    );
    assert_eq!(store.expire_tombstones(day(22), 4).await.unwrap().0, 2);
    assert!(store.integrity_check().await.unwrap().is_ok());
}

async fn permanent_redirects_move_a_feed_after_three_polls(store: Store) {
    let id = feed(&store, "https://e.org/f").await;
    let to = || Some("https://e.org/new".to_string());
    assert_eq!(store.note_redirect(id, to()).await.unwrap(), None);
    assert_eq!(store.note_redirect(id, to()).await.unwrap(), None);
    // A poll without the redirect starts the count again.
    store.note_redirect(id, None).await.unwrap();
    for _ in 0..2 {
        assert_eq!(store.note_redirect(id, to()).await.unwrap(), None);
    }
    assert_eq!(store.note_redirect(id, to()).await.unwrap(), to());
    let state = &store.feeds_by_id(vec![id]).await.unwrap()[&id];
    assert_eq!(state.moved_to, to());
    assert_eq!(state.moved_count, 0);
}

async fn hosts_wait_for_the_longest_delay(store: Store) {
    let host = "127.0.0.2".to_string();
    store
        .delay_host(host.clone(), t0() + Duration::seconds(120), "429".into())
        .await
        .unwrap();
    store
        .delay_host(host.clone(), t0() + Duration::seconds(60), "503".into())
        .await
        .unwrap();
    let held = store.host_delays(t0()).await.unwrap();
    assert_eq!(held.get(&host), Some(&(t0() + Duration::seconds(120))));
    assert!(
        store
            .host_delays(t0() + Duration::seconds(121))
            .await
            .unwrap()
            .is_empty()
    );
}

async fn full_text_retries_are_recorded(store: Store) {
    let id = feed(&store, "https://e.org/f").await;
    let mut entries = finished(vec![
        Entry {
            guid: Some("a".into()),
            title: "a".into(),
            link: Some("https://e.org/a".into()),
            content: Some("<p>the feed's</p>".into()),
            ..Entry::default()
        },
        Entry {
            guid: Some("b".into()),
            title: "b".into(),
            link: Some("https://e.org/b".into()),
            ..Entry::default()
        },
    ]);
    for e in &mut entries {
        e.entry.full_text = FullText::Failed {
            error: "HTTP 503".into(),
            tries: 1,
        };
    }
    store_all(&store, id, entries).await;
    assert!(
        store.full_text_retries(id, t0()).await.unwrap().is_empty(),
        "not before a later poll"
    );
    let due = store
        .full_text_retries(id, t0() + Duration::seconds(1))
        .await
        .unwrap();
    assert_eq!(due.len(), 2);
    let later = t0() + Duration::minutes(5);
    store
        .record_full_text(
            vec![
                (due[0].0, Ok("<p>the article</p>".into())),
                (due[1].0, Err("still 503".into())),
            ],
            later,
        )
        .await
        .unwrap();
    let stored = store.entries(vec![due[0].0, due[1].0]).await.unwrap();
    let a = stored.iter().find(|e| e.id == due[0].0).unwrap();
    assert_eq!(a.entry.content.as_deref(), Some("<p>the article</p>"));
    assert_eq!(a.entry.summary.as_deref(), Some("<p>the feed's</p>"));
    assert_eq!(a.entry.full_text, FullText::Page);
    let b = stored.iter().find(|e| e.id == due[1].0).unwrap();
    assert!(
        matches!(&b.entry.full_text, FullText::Failed { tries: 2, .. }),
        "{:?}",
        b.entry.full_text
    );
    assert!(
        store
            .full_text_retries(id, later + Duration::hours(1))
            .await
            .unwrap()
            .is_empty(),
        "two tries at most"
    );
}

async fn icons_are_kept_once_by_hash_and_each_feeds_look_remembered(store: Store) {
    let a = feed(&store, "https://a.org/feed").await;
    let b = feed(&store, "https://b.org/feed").await;
    let week = t0() + Duration::days(7);
    assert_eq!(store.icon_state(a).await.unwrap(), None);
    let png = |bytes: &[u8]| IconImage {
        hash: crate::content::icon::hash(bytes),
        media_type: "image/png".into(),
    };
    let found = |url: &str, bytes: &[u8], etag: &str| IconUpdate::Found {
        url: url.into(),
        image: png(bytes),
        bytes: bytes.to_vec(),
        validators: Validators {
            etag: Some(etag.into()),
            last_modified: None,
        },
    };
    // Two feeds of one site share one image.
    for id in [a, b] {
        store
            .record_icon(id, found("https://site.org/i.png", b"one", "\"1\""), t0(), week)
            .await
            .unwrap();
    }
    let icons = store.icons_of(vec![a, b]).await.unwrap();
    assert_eq!((icons[&a].clone(), icons[&b].clone()), (png(b"one"), png(b"one")));
    assert_eq!(
        store.icon_bytes(png(b"one").hash).await.unwrap(),
        Some(("image/png".to_string(), b"one".to_vec()))
    );
    let by_id = store.feeds_by_id(vec![a]).await.unwrap();
    assert_eq!(by_id[&a].icon_due, Some(week));
    // A 304 a week on: still there, new validators kept, next look a week later.
    let later = week + Duration::days(7);
    let unchanged = IconUpdate::Unchanged {
        validators: Validators {
            etag: Some("\"2\"".into()),
            last_modified: None,
        },
    };
    store.record_icon(a, unchanged, week, later).await.unwrap();
    let state = store.icon_state(a).await.unwrap().unwrap();
    assert_eq!(state.url.as_deref(), Some("https://site.org/i.png"));
    assert_eq!(state.image, Some(png(b"one")));
    assert_eq!(state.validators.etag.as_deref(), Some("\"2\""));
    assert_eq!((state.checked, state.error), (week, None));
    // A look that finds nothing keeps the image found before, and says why.
    let missing = IconUpdate::Missing {
        error: "HTTP 404".into(),
    };
    store
        .record_icon(a, missing, later, later + Duration::days(1))
        .await
        .unwrap();
    let state = store.icon_state(a).await.unwrap().unwrap();
    assert_eq!(
        (state.image, state.error.as_deref()),
        (Some(png(b"one")), Some("HTTP 404"))
    );
    // A new image replaces the old; the old goes with its last feed.
    store
        .record_icon(
            a,
            found("https://site.org/new.png", b"two", "\"3\""),
            later,
            later,
        )
        .await
        .unwrap();
    assert!(
        store.icon_bytes(png(b"one").hash).await.unwrap().is_some(),
        "b still has it"
    );
    store
        .record_icon(
            b,
            found("https://site.org/new.png", b"two", "\"3\""),
            later,
            later,
        )
        .await
        .unwrap();
    assert_eq!(store.icon_bytes(png(b"one").hash).await.unwrap(), None);
    let icons = store.icons_of(vec![a, b]).await.unwrap();
    assert_eq!((icons[&a].clone(), icons[&b].clone()), (png(b"two"), png(b"two")));
    // A feed never looked at has none, and its first look may find nothing.
    let c = feed(&store, "https://c.org/feed").await;
    let missing = IconUpdate::Missing {
        error: "nothing".into(),
    };
    store.record_icon(c, missing, later, later).await.unwrap();
    let state = store.icon_state(c).await.unwrap().unwrap();
    assert_eq!((state.url, state.image), (None, None));
    assert!(!store.icons_of(vec![c]).await.unwrap().contains_key(&c));
}

async fn the_outbox_announces_each_entry_once_and_claims_each_delivery_once(store: Store) {
    let id = feed(&store, "https://e.org/f").await;
    let entries = finished(
        (1..=4)
            .map(|i| Entry {
                guid: Some(format!("g{i}")),
                title: format!("t{i}"),
                ..Entry::default()
            })
            .collect(),
    );
    store_all(&store, id, entries).await;
    let ids: Vec<i64> = entries_of(&store, id).await.iter().map(|e| e.id).collect();
    let out = "public/all.atom".to_string();
    // The first render's entries are announced without deliveries.
    assert_eq!(
        store.unannounced(out.clone(), ids[..2].to_vec()).await.unwrap(),
        None
    );
    store
        .announce(out.clone(), ids[..2].to_vec(), Vec::new(), t0())
        .await
        .unwrap();
    assert_eq!(
        store.unannounced(out.clone(), ids.clone()).await.unwrap(),
        Some(ids[2..].to_vec()),
        "in the order shown"
    );
    let delivery = |body: &str| NewDelivery {
        webhook: "https://hooks.example/a".into(),
        body: body.into(),
    };
    store
        .announce(
            out.clone(),
            ids[2..].to_vec(),
            vec![delivery("one"), delivery("two")],
            t0(),
        )
        .await
        .unwrap();
    assert_eq!(
        store.unannounced(out.clone(), ids.clone()).await.unwrap(),
        Some(vec![])
    );
    assert_eq!(
        store.unannounced("other".into(), ids.clone()).await.unwrap(),
        None,
        "each output announces for itself"
    );
    assert_eq!(store.next_delivery().await.unwrap(), Some(t0()));
    // A claim keeps its deliveries from every other claim until it runs out.
    let until = t0() + Duration::minutes(5);
    let claimed = store.claim_deliveries(t0(), until, 10).await.unwrap();
    let bodies: Vec<&str> = claimed.iter().map(|d| d.body.as_str()).collect();
    assert_eq!(bodies, ["one", "two"]);
    assert!(
        claimed
            .iter()
            .all(|d| d.attempts == 1 && d.created == t0() && d.output == out)
    );
    assert!(store.claim_deliveries(t0(), until, 10).await.unwrap().is_empty());
    store.delivered(claimed[0].id).await.unwrap();
    let retry = t0() + Duration::seconds(5);
    store
        .delivery_failed(claimed[1].id, "HTTP 503".into(), Some(retry), t0())
        .await
        .unwrap();
    assert_eq!(store.next_delivery().await.unwrap(), Some(retry));
    let states = store.webhook_states().await.unwrap();
    assert_eq!(
        (
            states.len(),
            states[0].pending,
            states[0].failed,
            states[0].last_error.as_deref()
        ),
        (1, 1, 0, Some("HTTP 503"))
    );
    assert!(store.claim_deliveries(t0(), until, 10).await.unwrap().is_empty());
    let again = store
        .claim_deliveries(retry, retry + Duration::minutes(5), 10)
        .await
        .unwrap();
    assert_eq!(
        (again.len(), again[0].id, again[0].attempts),
        (1, claimed[1].id, 2)
    );
    // Given up: kept a while for operators to see, never claimed, then forgotten.
    store
        .delivery_failed(again[0].id, "HTTP 410".into(), None, retry)
        .await
        .unwrap();
    assert_eq!(store.next_delivery().await.unwrap(), None);
    let states = store.webhook_states().await.unwrap();
    assert_eq!(
        (states[0].pending, states[0].failed, states[0].oldest),
        (0, 1, None)
    );
    let later = retry + FORGET_GIVEN_UP + Duration::seconds(1);
    assert!(store.claim_deliveries(later, later, 10).await.unwrap().is_empty());
    assert!(store.webhook_states().await.unwrap().is_empty());
    // An entry retired since a render is announced no more, nor sent.
    store.retire_entries(vec![ids[0]], t0()).await.unwrap();
    assert_eq!(
        store.unannounced(out.clone(), ids[..1].to_vec()).await.unwrap(),
        Some(vec![ids[0]])
    );
    store
        .announce(out.clone(), vec![ids[0]], Vec::new(), t0())
        .await
        .unwrap();
}

/// Senders claiming at the same moment (the nodes of a cluster) each get their own
/// deliveries: every one claimed, none twice.
async fn claims_made_at_once_share_no_delivery(store: Store) {
    let deliveries: Vec<NewDelivery> = (0..200)
        .map(|i| NewDelivery {
            webhook: "https://hooks.example/a".into(),
            body: format!("{i}"),
        })
        .collect();
    store
        .announce("out".into(), Vec::new(), deliveries, t0())
        .await
        .unwrap();
    let until = t0() + Duration::minutes(5);
    let claims = (0..8).map(|_| {
        let store = store.clone();
        tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let got = store.claim_deliveries(t0(), until, 7).await.unwrap();
                if got.is_empty() {
                    return mine;
                }
                mine.extend(got.into_iter().map(|d| d.id));
            }
        })
    });
    let mut all: Vec<i64> = Vec::new();
    for claim in claims.collect::<Vec<_>>() {
        all.extend(claim.await.unwrap());
    }
    let distinct: HashSet<i64> = all.iter().copied().collect();
    assert_eq!((all.len(), distinct.len()), (200, 200));
}

async fn readers_are_the_latest_figures_within_their_windows(store: Store) {
    let seen = |via: &str, key: &str, count: u64, at: DateTime<Utc>| ReaderSighting {
        output: "all.atom".into(),
        via: via.into(),
        key: key.into(),
        count,
        seen: at,
    };
    let salt = store.secret(Secret::ReaderSalt).await.unwrap();
    assert_eq!(salt.len(), 32);
    assert_eq!(store.secret(Secret::ReaderSalt).await.unwrap(), salt, "made once");
    store
        .record_readers(
            vec![
                seen("feedly", "a", 300, t0()),
                seen("direct", "h1", 1, t0()),
                seen("direct", "h2", 1, t0() - Duration::days(8)),
            ],
            t0(),
        )
        .await
        .unwrap();
    // A later figure replaces the earlier one; an earlier sighting does not move `seen` back.
    store
        .record_readers(vec![seen("feedly", "a", 310, t0() + Duration::hours(1))], t0())
        .await
        .unwrap();
    let counts = store.reader_counts(t0() + Duration::hours(1)).await.unwrap();
    assert_eq!(
        counts,
        [
            ("all.atom".to_string(), "direct".to_string(), 1),
            ("all.atom".to_string(), "feedly".to_string(), 310)
        ],
        "a direct reader counts for a week"
    );
    // An aggregator's figure counts for 30 days, then is forgotten.
    let later = t0() + Duration::days(20);
    assert_eq!(store.reader_counts(later).await.unwrap().len(), 1);
    store
        .record_readers(Vec::new(), t0() + Duration::days(31))
        .await
        .unwrap();
    assert!(
        store.reader_counts(t0()).await.unwrap().is_empty(),
        "pruned after 30 days"
    );
}

async fn outputs_remember_failures_until_a_render_succeeds(store: Store) {
    let path = "public/all.atom".to_string();
    store
        .record_outputs(vec![(path.clone(), Ok(true))], t0())
        .await
        .unwrap();
    for n in 1..=2 {
        store
            .record_outputs(
                vec![(path.clone(), Err("disk full".into()))],
                t0() + Duration::minutes(n),
            )
            .await
            .unwrap();
    }
    let outputs = store.outputs().await.unwrap();
    assert_eq!(outputs.len(), 1);
    assert_eq!(outputs[0].failures, 2);
    assert_eq!(outputs[0].failing_since, Some(t0() + Duration::minutes(1)));
    assert_eq!(outputs[0].last_written, Some(t0()));
    store
        .record_outputs(vec![(path.clone(), Ok(false))], t0() + Duration::minutes(3))
        .await
        .unwrap();
    let outputs = store.outputs().await.unwrap();
    assert_eq!((outputs[0].failures, outputs[0].last_error.as_deref()), (0, None));
    assert_eq!(outputs[0].last_written, Some(t0()), "unchanged: not written");
}

async fn gone_feeds_get_another_chance_under_another_config(store: Store) {
    let url = "https://e.org/f".to_string();
    let id = feed(&store, &url).await;
    store
        .record_poll(
            id,
            FeedUpdate::Failed {
                error: "410 Gone".into(),
                kind: FailureKind::Gone,
                retry_after: None,
                gone: Some("config-1".into()),
                abandoned: false,
            },
            scheduled(None, None),
            t0(),
        )
        .await
        .unwrap();
    assert!(store.feeds_by_id(vec![id]).await.unwrap()[&id].gone_at.is_some());
    assert_eq!(
        store
            .forgive_gone(vec![url.clone()], "config-1".into())
            .await
            .unwrap(),
        0
    );
    assert_eq!(store.forgive_gone(vec![url], "config-2".into()).await.unwrap(), 1);
    assert!(store.feeds_by_id(vec![id]).await.unwrap()[&id].gone_at.is_none());
}

async fn an_entrys_language_and_its_source_are_kept(store: Store) {
    use crate::model::{Language, LanguageSource};
    let id = feed(&store, "https://e.org/f").await;
    let said = |tag: &str, source| {
        Some(Language {
            tag: tag.into(),
            source,
        })
    };
    let mut entries = finished(vec![
        Entry {
            guid: Some("zh".into()),
            title: "国务院常务会议研究部署进一步推动经济发展的政策措施".into(),
            published: Some(t0() - Duration::hours(1)),
            ..Entry::default()
        },
        Entry {
            guid: Some("ok".into()),
            title: "ok".into(),
            published: Some(t0() - Duration::hours(2)),
            ..Entry::default()
        },
    ]);
    // Detected from the text when nobody said; unknown when the text is too short to tell.
    assert_eq!(
        entries[0].entry.language,
        said("zh-Hans", LanguageSource::Detected)
    );
    assert_eq!(entries[1].entry.language, None);
    entries[1].entry.language = said("pt-BR", LanguageSource::Config);
    store_all(&store, id, entries.clone()).await;
    let stored = store.entries(vec![1, 2]).await.unwrap();
    let by_key = |key: &str| stored.iter().find(|e| e.key.as_str().ends_with(key)).unwrap();
    assert_eq!(
        by_key("zh").entry.language,
        said("zh-Hans", LanguageSource::Detected)
    );
    assert_eq!(by_key("ok").entry.language, said("pt-BR", LanguageSource::Config));
    let candidates = store
        .candidates(CandidateQuery {
            feeds: None,
            needs: Needs::default(),
            after: None,
            limit: 10,
        })
        .await
        .unwrap();
    let tags: Vec<Option<&str>> = candidates.iter().map(|c| c.language.as_deref()).collect();
    assert_eq!(tags, [Some("zh-Hans"), Some("pt-BR")]);
    // A changed entry takes its new language.
    entries[1].entry.language = said("pt", LanguageSource::Feed);
    entries[1].content_hash = "changed".into();
    store_all(&store, id, entries).await;
    let stored = store.entries(vec![2]).await.unwrap();
    assert_eq!(stored[0].entry.language, said("pt", LanguageSource::Feed));
}

async fn subscriptions_say_until_when_a_feed_is_pushed_and_count_its_pushes(store: Store) {
    use crate::model::{Subscription, SubscriptionState};
    let id = feed(&store, "https://pushed.example/feed").await;
    let due = t0() + Duration::hours(3);
    store
        .schedule(vec![(id, scheduled(Some(due), None))])
        .await
        .unwrap();
    let key = store.secret(Secret::CallbackKey).await.unwrap();
    assert_ne!(
        key,
        store.secret(Secret::ReaderSalt).await.unwrap(),
        "a secret of its own"
    );
    let mut sub = Subscription {
        feed_id: id,
        hub: "https://hub.example/".into(),
        topic: "https://pushed.example/feed".into(),
        state: SubscriptionState::Pending,
        secret: "s".repeat(32),
        nonce: "n1".into(),
        lease_until: None,
        next_attempt: Some(t0()),
        failures: 0,
        error: None,
        last_push: None,
        pushes: 0,
        rejected: 0,
    };
    store.put_subscription(sub.clone(), t0()).await.unwrap();
    assert_eq!(store.subscription(id).await.unwrap(), Some(sub.clone()));
    let state = |store: Store| async move { store.feeds_by_id(vec![id]).await.unwrap().remove(&id).unwrap() };
    assert_eq!(
        state(store.clone()).await.pushed_until,
        None,
        "pending: not pushed yet"
    );
    // Verified: pushed until the lease ends.
    sub.state = SubscriptionState::Active;
    sub.lease_until = Some(t0() + Duration::days(7));
    store.put_subscription(sub.clone(), t0()).await.unwrap();
    let pushed = state(store.clone()).await;
    assert_eq!(pushed.pushed_until, sub.lease_until);
    assert_eq!(
        pushed.next_due,
        Some(due),
        "a feed that starts being pushed keeps its due time"
    );
    // Pushes are counted; dropped ones apart.
    store
        .count_push(id, t0() + Duration::minutes(5), true)
        .await
        .unwrap();
    store
        .count_push(id, t0() + Duration::minutes(6), false)
        .await
        .unwrap();
    let counted = store.subscription(id).await.unwrap().unwrap();
    assert_eq!(
        (counted.pushes, counted.rejected, counted.last_push),
        (1, 1, Some(t0() + Duration::minutes(5)))
    );
    // Denied: no longer pushed, and due at once rather than at its stretched time.
    sub.state = SubscriptionState::Denied;
    sub.lease_until = None;
    sub.error = Some("no".into());
    let later = t0() + Duration::minutes(10);
    store.put_subscription(sub.clone(), later).await.unwrap();
    let denied = state(store.clone()).await;
    assert_eq!(denied.pushed_until, None);
    assert_eq!(denied.next_due, Some(later));
    let kept = store.subscription(id).await.unwrap().unwrap();
    assert_eq!(
        (kept.state, kept.pushes),
        (SubscriptionState::Denied, 1),
        "counts survive a rewrite"
    );
    // Forgotten.
    store.drop_subscription(id, later).await.unwrap();
    assert_eq!(store.subscription(id).await.unwrap(), None);
    assert!(store.subscriptions().await.unwrap().is_empty());
}

async fn lists_keep_their_members_and_what_is_held(store: Store) {
    use crate::model::{ListMember, ListState};
    let member = |url: &str, include: bool| ListMember {
        url: url.into(),
        title: Some("T".into()),
        site: None,
        tags: vec!["a".into(), "b c".into()],
        include,
    };
    assert!(store.lists().await.unwrap().is_empty());
    let mut list = ListState {
        key: "https://lists.example/l.opml".into(),
        validators: Validators {
            etag: Some("\"1\"".into()),
            last_modified: None,
        },
        members: vec![
            member("https://a.example/f", false),
            member("https://lists.example/m.opml", true),
        ],
        held: None,
        fetched: Some(t0()),
        last_success: Some(t0()),
        last_error: None,
        failures: 0,
        next_due: Some(t0() + Duration::hours(1)),
    };
    store.put_list(list.clone()).await.unwrap();
    assert_eq!(store.lists().await.unwrap(), [list.clone()]);
    list.held = Some(Vec::new());
    list.failures = 2;
    list.last_error = Some("HTTP 500".into());
    store.put_list(list.clone()).await.unwrap();
    assert_eq!(store.lists().await.unwrap(), [list]);
}
