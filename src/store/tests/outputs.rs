//! Outputs' own state: icons, the webhook outbox, readers, render failures.

use super::*;

on_both_stores!(
    icons_are_kept_once_by_hash_and_each_feeds_look_remembered,
    the_outbox_announces_each_entry_once_and_claims_each_delivery_once,
    claims_made_at_once_share_no_delivery,
    readers_are_the_latest_figures_within_their_windows,
    outputs_remember_failures_until_a_render_succeeds,
);

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
    // Two feeds of one site share one image (their looks recorded together).
    let looks = [a, b].map(|feed_id| IconLooked {
        feed_id,
        update: found("https://site.org/i.png", b"one", "\"1\""),
        next: week,
    });
    store.record_icons(looks.to_vec(), t0()).await.unwrap();
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
    record_icon(&store, a, unchanged, week, later).await;
    let state = store.icon_state(a).await.unwrap().unwrap();
    assert_eq!(state.url.as_deref(), Some("https://site.org/i.png"));
    assert_eq!(state.image, Some(png(b"one")));
    assert_eq!(state.validators.etag.as_deref(), Some("\"2\""));
    assert_eq!((state.checked, state.error), (week, None));
    // A look that finds nothing keeps the image found before, and says why.
    let missing = IconUpdate::Missing {
        error: "HTTP 404".into(),
    };
    record_icon(&store, a, missing, later, later + Duration::days(1)).await;
    let state = store.icon_state(a).await.unwrap().unwrap();
    assert_eq!(
        (state.image, state.error.as_deref()),
        (Some(png(b"one")), Some("HTTP 404"))
    );
    // A new image replaces the old; the old goes with its last feed (b keeps it until then).
    let new = found("https://site.org/new.png", b"two", "\"3\"");
    for (id, old_kept) in [(a, true), (b, false)] {
        record_icon(&store, id, new.clone(), later, later).await;
        let old = store.icon_bytes(png(b"one").hash).await.unwrap();
        assert_eq!(old.is_some(), old_kept, "feed {id}");
    }
    let icons = store.icons_of(vec![a, b]).await.unwrap();
    assert_eq!((icons[&a].clone(), icons[&b].clone()), (png(b"two"), png(b"two")));
    // A feed never looked at has none, and its first look may find nothing.
    let c = feed(&store, "https://c.org/feed").await;
    let missing = IconUpdate::Missing {
        error: "nothing".into(),
    };
    record_icon(&store, c, missing, later, later).await;
    let state = store.icon_state(c).await.unwrap().unwrap();
    assert_eq!((state.url, state.image), (None, None));
    assert!(!store.icons_of(vec![c]).await.unwrap().contains_key(&c));
}

/// One look, recorded alone.
async fn record_icon(
    store: &Store,
    feed_id: i64,
    update: IconUpdate,
    now: DateTime<Utc>,
    next: DateTime<Utc>,
) {
    let look = IconLooked {
        feed_id,
        update,
        next,
    };
    store.record_icons(vec![look], now).await.unwrap();
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
