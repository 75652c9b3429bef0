//! The cluster's protocol as the store runs it, on a real PostgreSQL server
//! (`TRIBUTARY_PG_URL`; skipped without one, a failure under `TRIBUTARY_REQUIRE_ALL=1`, as the
//! integration tests do): claims taken once, leases that pass on, fencing, shared host delays,
//! heartbeats. Each test has a database of its own; times are passed in, nothing sleeps.

use std::collections::HashSet;

use chrono::{DateTime, Duration, TimeZone, Utc};

use crate::model::Backend;
use crate::store::{FeedUpdate, Scheduled, StoreError, StoreHandle, StoreThread};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap()
}

/// A fresh database `tributary_unit_NAME` on the test server, as a URL.
async fn database(name: &str) -> Option<String> {
    let Ok(admin) = std::env::var("TRIBUTARY_PG_URL") else {
        assert!(
            std::env::var_os("TRIBUTARY_REQUIRE_ALL").is_none(),
            "TRIBUTARY_REQUIRE_ALL is set but TRIBUTARY_PG_URL is not"
        );
        eprintln!("SKIPPED: no PostgreSQL server (TRIBUTARY_PG_URL)");
        return None;
    };
    let (client, connection) = tokio_postgres::connect(&admin, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let db = format!("tributary_unit_{name}");
    for sql in [
        format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"),
        format!("CREATE DATABASE {db}"),
    ] {
        client.batch_execute(&sql).await.unwrap();
    }
    let mut url = url::Url::parse(&admin).unwrap();
    url.set_path(&db);
    Some(url.to_string())
}

/// A store on a fresh database of its own, for the store's tests that run on both backends
/// (see `on_both_stores!`); `None` without a server.
pub(crate) fn store(name: &str) -> Option<crate::store::Store> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // Database names are at most 63 bytes.
    let name: String = name.chars().take(40).collect();
    let url = runtime.block_on(database(&name))?;
    let config = runtime.block_on(async {
        let pg = super::PgStore::connect(&url, "test").await.unwrap();
        pg.config().clone()
    });
    Some(crate::store::Store::open_pg(&config, crate::store::sql::PgRuntime::new().unwrap(), "test").unwrap())
}

/// Node `node`'s store.
async fn node(url: &str, node: &str) -> (StoreHandle, StoreThread) {
    StoreHandle::open_backend(&Backend::Postgres {
        url: url.to_string(),
        node: node.to_string(),
    })
    .await
    .unwrap()
}

/// `n` feeds, all due at t0.
async fn feeds(store: &StoreHandle, n: usize) -> Vec<i64> {
    let urls: Vec<String> = (0..n)
        .map(|i| format!("http://127.0.0.{}/{i}.xml", 2 + i % 5))
        .collect();
    let states = store
        .call(move |s| {
            let states = s.ensure_feeds(&urls, t0())?;
            let due: Vec<(i64, Scheduled)> = states
                .iter()
                .map(|f| {
                    let scheduled = Scheduled {
                        next_due: Some(t0()),
                        key: "k".into(),
                        lease: None,
                    };
                    (f.id, scheduled)
                })
                .collect();
            s.schedule(&due)?;
            Ok(states)
        })
        .await
        .unwrap();
    states.iter().map(|f| f.id).collect()
}

/// Records feed `id`'s poll under the claim `epoch` at `now`, due next at `next`.
async fn record(
    store: &StoreHandle,
    id: i64,
    epoch: Option<i64>,
    now: DateTime<Utc>,
    next: DateTime<Utc>,
) -> Result<(), StoreError> {
    let update = FeedUpdate::Unchanged {
        validators: None,
        fresh_until: None,
    };
    let scheduled = Scheduled {
        next_due: Some(next),
        key: "k".into(),
        lease: epoch,
    };
    store
        .call(move |s| s.record_feed(id, &update, &scheduled, now))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nodes_claiming_at_once_take_each_due_feed_exactly_once() {
    let Some(url) = database("claims").await else {
        return;
    };
    let nodes = [
        node(&url, "node-a").await,
        node(&url, "node-b").await,
        node(&url, "node-c").await,
    ];
    feeds(&nodes[0].0, 300).await;
    let lease = t0() + Duration::seconds(30);
    // Every node claims in batches of 16 as fast as it can, all at once.
    let claims = nodes.iter().map(|(store, _)| async move {
        let mut mine = Vec::new();
        for _ in 0..100 {
            let claimed = store.call(move |s| s.claim_due(t0(), 16, lease)).await.unwrap();
            if claimed.feeds.is_empty() {
                break;
            }
            mine.extend(claimed.feeds);
        }
        mine
    });
    let per_node = futures::future::join_all(claims).await;
    let all: Vec<i64> = per_node.iter().flatten().map(|f| f.id).collect();
    let distinct: HashSet<i64> = all.iter().copied().collect();
    assert_eq!(
        (all.len(), distinct.len()),
        (300, 300),
        "every due feed claimed once"
    );
    assert!(
        per_node.iter().filter(|l| !l.is_empty()).count() >= 2,
        "the work is shared: {:?}",
        per_node.iter().map(Vec::len).collect::<Vec<_>>()
    );
    // Each records its polls; the feeds are due again in the next 5-second slot, not before.
    for ((store, _), claimed) in nodes.iter().zip(&per_node) {
        for feed in claimed {
            record(
                store,
                feed.id,
                feed.lease_epoch,
                t0(),
                t0() + Duration::seconds(5),
            )
            .await
            .unwrap();
        }
    }
    let c = &nodes[2].0;
    let soon = c
        .call(move |s| s.claim_due(t0() + Duration::seconds(1), 16, lease))
        .await
        .unwrap();
    assert!(soon.feeds.is_empty(), "nothing due between slots");
    assert_eq!(soon.next, Some(t0() + Duration::seconds(5)), "the next slot");
    let next_slot = c
        .call(move |s| s.claim_due(t0() + Duration::seconds(5), 400, lease))
        .await
        .unwrap();
    assert_eq!(next_slot.feeds.len(), 300, "due again, once each");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_nodes_claims_pass_on_and_it_cannot_write_over_the_new_holder() {
    let Some(url) = database("leases").await else {
        return;
    };
    let (a, _ta) = node(&url, "node-a").await;
    let (b, _tb) = node(&url, "node-b").await;
    feeds(&a, 10).await;
    let lease_until = t0() + Duration::seconds(30);
    let taken = a
        .call(move |s| s.claim_due(t0(), 100, lease_until))
        .await
        .unwrap();
    assert_eq!(taken.feeds.len(), 10);
    // a goes quiet (killed, or stalled). Within its lease nobody else takes its feeds …
    let t10 = t0() + Duration::seconds(10);
    let early = b
        .call(move |s| s.claim_due(t10, 100, t10 + Duration::seconds(30)))
        .await
        .unwrap();
    assert!(early.feeds.is_empty(), "{early:?}");
    assert_eq!(early.next, Some(lease_until), "b knows when a's claims end");
    let (_, holders) = b
        .read(move |s| s.cluster(t10, std::time::Duration::from_secs(30)))
        .await
        .unwrap();
    assert!(
        holders.values().all(|n| n == "node-a") && holders.len() == 10,
        "{holders:?}"
    );
    // … after it, b takes them over.
    let later = t0() + Duration::seconds(31);
    let over = b
        .call(move |s| s.claim_due(later, 100, later + Duration::seconds(30)))
        .await
        .unwrap();
    assert_eq!(over.feeds.len(), 10, "the others take a dead node's feeds");
    // a wakes up and records the polls it started: fenced, nothing written.
    for feed in &taken.feeds {
        let late = record(&a, feed.id, feed.lease_epoch, later, later + Duration::hours(1)).await;
        assert!(matches!(late, Err(StoreError::Fenced { .. })), "{late:?}");
    }
    let ids: Vec<i64> = taken.feeds.iter().map(|f| f.id).collect();
    let lost = a
        .call(move |s| s.renew_leases(&ids, later + Duration::seconds(60)))
        .await
        .unwrap();
    assert_eq!(lost.len(), 10, "a's renewals find its claims gone");
    // b's records stand: the feeds are due on b's schedule, not on the one a tried to write.
    for feed in &over.feeds {
        record(&b, feed.id, feed.lease_epoch, later, later + Duration::seconds(5))
            .await
            .unwrap();
    }
    // A renewal that comes after the record (the tick looked before the poll ended) keeps
    // nobody off the feed.
    let recorded: Vec<i64> = over.feeds.iter().map(|f| f.id).collect();
    let lost = b
        .call(move |s| s.renew_leases(&recorded, later + Duration::seconds(60)))
        .await
        .unwrap();
    assert!(lost.is_empty(), "{lost:?}");
    let next = b
        .call(move |s| s.claim_due(later + Duration::seconds(5), 100, later + Duration::seconds(60)))
        .await
        .unwrap();
    assert_eq!(next.feeds.len(), 10);
    // A node stopping gives its claims back at once; another node's release frees nothing.
    let ids: Vec<i64> = next.feeds.iter().map(|f| f.id).collect();
    let theirs = ids.clone();
    assert_eq!(a.call(move |s| s.release_leases(Some(&theirs))).await.unwrap(), 0);
    assert_eq!(b.call(move |s| s.release_leases(Some(&ids))).await.unwrap(), 10);
    let again = a
        .call(move |s| s.claim_due(later + Duration::seconds(5), 100, later + Duration::seconds(60)))
        .await
        .unwrap();
    assert_eq!(again.feeds.len(), 10, "released claims are free at once");
}

#[tokio::test(flavor = "multi_thread")]
async fn host_delays_and_heartbeats_are_the_clusters() {
    let Some(url) = database("hosts").await else {
        return;
    };
    let (a, _ta) = node(&url, "node-a").await;
    let (b, _tb) = node(&url, "node-b").await;
    let (c, _tc) = node(&url, "node-c").await;
    let host = "127.0.0.2";
    a.call(move |s| s.delay_host(host, t0() + Duration::seconds(120), "429 Too Many Requests"))
        .await
        .unwrap();
    b.call(move |s| s.delay_host(host, t0() + Duration::seconds(60), "503"))
        .await
        .unwrap();
    let held = c.call(move |s| s.host_delays(t0())).await.unwrap();
    assert_eq!(
        held.into_iter().collect::<Vec<_>>(),
        vec![(host.to_string(), t0() + Duration::seconds(120))],
        "the longest hold wins, and every node sees it"
    );
    let after = t0() + Duration::seconds(121);
    assert!(c.call(move |s| s.host_delays(after)).await.unwrap().is_empty());

    // Heartbeats: a node silent for longer than a lease stopped.
    let pg = super::PgStore::connect(&url, "node-a").await.unwrap();
    pg.heartbeat(t0(), t0() + Duration::seconds(10)).await.unwrap();
    let pg = super::PgStore::connect(&url, "node-b").await.unwrap();
    pg.heartbeat(t0(), t0() + Duration::seconds(50)).await.unwrap();
    let (nodes, _) = c
        .read(move |s| s.cluster(t0() + Duration::seconds(55), std::time::Duration::from_secs(30)))
        .await
        .unwrap();
    let seen: Vec<(&str, bool)> = nodes.iter().map(|n| (n.name.as_str(), n.heartbeating)).collect();
    assert_eq!(seen, [("node-a", false), ("node-b", true)]);
}
