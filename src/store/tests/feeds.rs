//! Feeds, claims, records and fencing.

use super::*;

on_both_stores!(
    feeds_are_made_once_and_found_by_url_and_id,
    a_claim_takes_due_feeds_oldest_first_and_says_when_to_look_again,
    a_record_ends_the_claim_and_sets_the_next_due_time,
    failures_are_counted_kept_as_history_and_forgotten_on_reset,
    a_poll_under_a_claim_that_passed_on_is_not_recorded,
    permanent_redirects_move_a_feed_after_three_polls,
    hosts_wait_for_the_longest_delay,
    gone_feeds_get_another_chance_under_another_config,
);

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
