//! What only the shared store has, on a real PostgreSQL server (`TRIBUTARY_PG_URL`; skipped
//! without one, a failure under `TRIBUTARY_REQUIRE_ALL=1`): nodes claiming at once, leases
//! that pass on, fencing, the cluster's host waits, turns, heartbeats and notices, and the
//! migration of a database made by an earlier Tributary. Each test has a database of its own;
//! times are passed in, nothing sleeps.

use std::collections::HashSet;

use chrono::{DateTime, Duration, TimeZone, Utc};

use crate::model::Backend;
use crate::store::{FeedUpdate, Notice, Scheduled, Store, StoreError};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap()
}

/// A fresh database `tributary_unit_NAME` on the test server, as a URL; `None` without one.
pub(crate) async fn database(name: &str) -> Option<String> {
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
    let driver = tokio::spawn(connection);
    // Database names are at most 63 bytes.
    let name: String = name.chars().take(40).collect();
    let db = format!("tributary_unit_{name}");
    for sql in [
        format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"),
        format!("CREATE DATABASE {db}"),
    ] {
        client.batch_execute(&sql).await.unwrap();
    }
    drop(client);
    let _ = driver.await;
    let mut url = url::Url::parse(&admin).unwrap();
    url.set_path(&db);
    Some(url.to_string())
}

/// A store on a fresh database of its own, as node `node`, for the store's tests that run on
/// both backends (see `on_both_stores!`); `None` without a server.
pub(crate) async fn store(name: &str, node: &str) -> Option<Store> {
    let url = database(name).await?;
    Some(open(&url, node).await)
}

/// Node `node`'s store on the database at `url`.
async fn open(url: &str, node: &str) -> Store {
    Store::open(&Backend::Server {
        url: url.to_string(),
        node: node.to_string(),
    })
    .await
    .unwrap()
}

/// `n` feeds, all due at t0.
async fn feeds(store: &Store, n: usize) -> Vec<i64> {
    let urls: Vec<String> = (0..n)
        .map(|i| format!("http://127.0.0.{}/{i}.xml", 2 + i % 5))
        .collect();
    let states = store.ensure_feeds(urls, t0()).await.unwrap();
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
    store.schedule(due).await.unwrap();
    states.iter().map(|f| f.id).collect()
}

/// Records feed `id`'s poll under the claim `epoch` at `now`, due next at `next`.
async fn record(
    store: &Store,
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
    store.record_poll(id, update, scheduled, now).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nodes_claiming_at_once_take_each_due_feed_exactly_once() {
    let Some(url) = database("claims").await else {
        return;
    };
    let nodes = [
        open(&url, "node-a").await,
        open(&url, "node-b").await,
        open(&url, "node-c").await,
    ];
    feeds(&nodes[0], 300).await;
    let lease = t0() + Duration::seconds(30);
    // Every node claims in batches of 16 as fast as it can, all at once, each on a task of its
    // own: each starts when all three have a connection open and are ready (a node still
    // connecting would find the work gone).
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(nodes.len()));
    let claims: Vec<_> = nodes
        .iter()
        .map(|store| {
            let (store, start) = (store.clone(), start.clone());
            tokio::spawn(async move {
                // A claim long before anything is due: it takes nothing, and opens the pool.
                let none = store
                    .claim_due(t0() - Duration::days(365), 16, lease)
                    .await
                    .unwrap();
                assert!(none.feeds.is_empty());
                start.wait().await;
                let mut mine = Vec::new();
                for _ in 0..100 {
                    let claimed = store.claim_due(t0(), 16, lease).await.unwrap();
                    if claimed.feeds.is_empty() {
                        break;
                    }
                    mine.extend(claimed.feeds);
                }
                mine
            })
        })
        .collect();
    let per_node: Vec<Vec<_>> = futures::future::try_join_all(claims).await.unwrap();
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
    for (store, claimed) in nodes.iter().zip(&per_node) {
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
    let c = &nodes[2];
    let soon = c.claim_due(t0() + Duration::seconds(1), 16, lease).await.unwrap();
    assert!(soon.feeds.is_empty(), "nothing due between slots");
    assert_eq!(soon.next, Some(t0() + Duration::seconds(5)), "the next slot");
    let next_slot = c
        .claim_due(t0() + Duration::seconds(5), 400, lease)
        .await
        .unwrap();
    assert_eq!(next_slot.feeds.len(), 300, "due again, once each");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_nodes_claims_pass_on_and_it_cannot_write_over_the_new_holder() {
    let Some(url) = database("leases").await else {
        return;
    };
    let a = open(&url, "node-a").await;
    let b = open(&url, "node-b").await;
    feeds(&a, 10).await;
    let lease_until = t0() + Duration::seconds(30);
    let taken = a.claim_due(t0(), 100, lease_until).await.unwrap();
    assert_eq!(taken.feeds.len(), 10);
    // a goes quiet (killed, or stalled). Within its lease nobody else takes its feeds …
    let t10 = t0() + Duration::seconds(10);
    let early = b.claim_due(t10, 100, t10 + Duration::seconds(30)).await.unwrap();
    assert!(early.feeds.is_empty(), "{early:?}");
    assert_eq!(early.next, Some(lease_until), "b knows when a's claims end");
    let (_, holders) = b.cluster(t10, std::time::Duration::from_secs(30)).await.unwrap();
    assert!(
        holders.values().all(|n| n == "node-a") && holders.len() == 10,
        "{holders:?}"
    );
    // … after it, b takes them over.
    let later = t0() + Duration::seconds(31);
    let over = b
        .claim_due(later, 100, later + Duration::seconds(30))
        .await
        .unwrap();
    assert_eq!(over.feeds.len(), 10, "the others take a dead node's feeds");
    // a wakes up and records the polls it started: fenced, nothing written.
    for feed in &taken.feeds {
        let late = record(&a, feed.id, feed.lease_epoch, later, later + Duration::hours(1)).await;
        assert!(matches!(late, Err(StoreError::Fenced { .. })), "{late:?}");
    }
    let ids: Vec<i64> = taken.feeds.iter().map(|f| f.id).collect();
    let lost = a.renew_leases(ids, later + Duration::seconds(60)).await.unwrap();
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
        .renew_leases(recorded, later + Duration::seconds(60))
        .await
        .unwrap();
    assert!(lost.is_empty(), "{lost:?}");
    let next = b
        .claim_due(later + Duration::seconds(5), 100, later + Duration::seconds(60))
        .await
        .unwrap();
    assert_eq!(next.feeds.len(), 10);
    // A node stopping gives its claims back at once; another node's release frees nothing.
    let ids: Vec<i64> = next.feeds.iter().map(|f| f.id).collect();
    assert_eq!(a.release_leases(Some(ids.clone())).await.unwrap(), 0);
    assert_eq!(b.release_leases(Some(ids)).await.unwrap(), 10);
    let again = a
        .claim_due(later + Duration::seconds(5), 100, later + Duration::seconds(60))
        .await
        .unwrap();
    assert_eq!(again.feeds.len(), 10, "released claims are free at once");
}

/// A one-shot poll beside the nodes claims what is due and held by nobody, and nothing a node
/// holds or polled in this slot.
#[tokio::test(flavor = "multi_thread")]
async fn a_one_shot_poll_claims_only_what_no_node_holds() {
    let Some(url) = database("one_shot").await else {
        return;
    };
    let node = open(&url, "node-a").await;
    let ids = feeds(&node, 6).await;
    let until = t0() + Duration::seconds(30);
    let held = node.claim_due(t0(), 2, until).await.unwrap();
    assert_eq!(held.feeds.len(), 2);
    // A third feed polled in this slot: due next slot.
    let third = node.claim_due(t0(), 1, until).await.unwrap();
    record(
        &node,
        third.feeds[0].id,
        third.feeds[0].lease_epoch,
        t0(),
        t0() + Duration::seconds(60),
    )
    .await
    .unwrap();
    let poll = open(&url, "node-a/poll-1").await;
    let claimed = poll.claim_feeds(ids.clone(), t0(), until, true).await.unwrap();
    assert_eq!(claimed.len(), 3, "{claimed:?}");
    assert!(claimed.iter().all(|f| f.lease_epoch.is_some()));
    // Forced: what no node holds now, due or not.
    let forced = poll.claim_feeds(ids, t0(), until, false).await.unwrap();
    assert_eq!(
        forced.len(),
        1,
        "only the feed polled in this slot was left: {forced:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn host_delays_heartbeats_and_turns_are_the_clusters() {
    let Some(url) = database("hosts").await else {
        return;
    };
    let a = open(&url, "node-a").await;
    let b = open(&url, "node-b").await;
    let c = open(&url, "node-c").await;
    let mut heard = c.coordination().unwrap().listen().await.unwrap();
    let host = "127.0.0.2".to_string();
    a.delay_host(
        host.clone(),
        t0() + Duration::seconds(120),
        "429 Too Many Requests".into(),
    )
    .await
    .unwrap();
    b.delay_host(host.clone(), t0() + Duration::seconds(60), "503".into())
        .await
        .unwrap();
    let held = c.host_delays(t0()).await.unwrap();
    assert_eq!(
        held.into_iter().collect::<Vec<_>>(),
        vec![(host.clone(), t0() + Duration::seconds(120))],
        "the longest hold wins, and every node sees it"
    );
    // Announced as it happened, not read at the next heartbeat.
    assert_eq!(
        heard.next().await,
        Some(Notice::HostDelayed {
            host: host.clone(),
            until: t0() + Duration::seconds(120)
        })
    );
    // b's shorter wait is announced with the time that stands.
    assert_eq!(
        heard.next().await,
        Some(Notice::HostDelayed {
            host: host.clone(),
            until: t0() + Duration::seconds(120)
        })
    );
    let after = t0() + Duration::seconds(121);
    assert!(c.host_delays(after).await.unwrap().is_empty());

    // Heartbeats: a node silent for longer than a lease stopped.
    let (ca, cb) = (a.coordination().unwrap(), b.coordination().unwrap());
    ca.heartbeat(t0(), t0() + Duration::seconds(10)).await.unwrap();
    cb.heartbeat(t0(), t0() + Duration::seconds(50)).await.unwrap();
    let (nodes, _) = c
        .cluster(t0() + Duration::seconds(55), std::time::Duration::from_secs(30))
        .await
        .unwrap();
    let seen: Vec<(&str, bool)> = nodes.iter().map(|n| (n.name.as_str(), n.heartbeating)).collect();
    assert_eq!(seen, [("node-a", false), ("node-b", true)]);

    // Turns: per_host for the cluster; a node that died holding one gives it back when it
    // starts again, and the others hear of it.
    let until = t0() + Duration::seconds(60);
    let first = ca.take_turn(&host, 1, t0(), until).await.unwrap().unwrap();
    assert!(cb.take_turn(&host, 1, t0(), until).await.unwrap().is_none());
    let restarted = open(&url, "node-a").await.coordination().unwrap();
    restarted.join(t0() + Duration::seconds(5)).await.unwrap();
    assert_eq!(heard.next().await, Some(Notice::TurnFreed(host.clone())));
    let second = cb.take_turn(&host, 1, t0(), until).await.unwrap().unwrap();
    assert_ne!(second.epoch, first.epoch);
}

#[tokio::test(flavor = "multi_thread")]
async fn one_node_leads_and_every_node_reads_what_it_publishes() {
    let Some(url) = database("lead").await else {
        return;
    };
    let a = open(&url, "node-a").await.coordination().unwrap();
    let b = open(&url, "node-b").await.coordination().unwrap();
    let mut heard = b.listen().await.unwrap();
    let mut lead = a.try_lead().await.unwrap().expect("the first takes the lead");
    assert!(b.try_lead().await.unwrap().is_none(), "one leader");
    lead.publish("all.atom", b"<feed/>", "\"e1\"", t0())
        .await
        .unwrap();
    assert_eq!(heard.next().await, Some(Notice::Output("all.atom".into())));
    assert_eq!(
        b.rendered("all.atom").await.unwrap(),
        Some((b"<feed/>".to_vec(), "\"e1\"".to_string()))
    );
    lead.step_down().await.unwrap();
    assert!(
        b.try_lead().await.unwrap().is_some(),
        "the lead passes on at once"
    );
}

/// A database made by the Tributary before native types (schema 1: times as integers, flags
/// as 0/1, lists as JSON text; `tests/fixtures/postgres-schema-1.sql` is what its `poll` of
/// the demo feeds left, dumped) is migrated in place and reads as it was written.
#[tokio::test(flavor = "multi_thread")]
async fn a_database_of_schema_one_is_migrated_to_native_types() {
    let Some(url) = database("migrate_v1").await else {
        return;
    };
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
        .batch_execute(include_str!("../../../tests/fixtures/postgres-schema-1.sql"))
        .await
        .unwrap();
    let version: i64 = client
        .query_one("SELECT version FROM schema_version", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(version, 1);
    // Schema 1's values, as the old code wrote them.
    // id, url, last_fetch (ms), last_success (s), next_due (ms).
    type OldFeed = (i64, String, Option<i64>, Option<i64>, Option<i64>);
    let old_feeds: Vec<OldFeed> = client
        .query(
            "SELECT id, url, last_fetch, last_success, next_due FROM feeds ORDER BY id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect();
    let old_entries: Vec<(i64, i64, i64, String, String)> = client
        .query(
            "SELECT id, published, hidden, categories, enclosures FROM entries ORDER BY id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect();
    assert!(
        old_feeds.len() >= 3 && old_entries.len() >= 10,
        "the fixture holds a poll"
    );
    assert!(old_entries.iter().any(|e| e.2 != 0), "and a back catalogue");

    let store = open(&url, "node-a").await;
    let version: i64 = client
        .query_one("SELECT version FROM schema_version", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(version, super::schema::MIGRATIONS.len() as i64);
    let urls: Vec<String> = old_feeds.iter().map(|f| f.1.clone()).collect();
    let states = store.feeds_by_url(urls.into()).await.unwrap();
    for (id, url, last_fetch, last_success, next_due) in &old_feeds {
        let feed = &states[url];
        assert_eq!(feed.id, *id);
        assert_eq!(
            feed.last_fetch,
            last_fetch.map(crate::store::sqlite::from_millis),
            "{url}"
        );
        assert_eq!(
            feed.last_success,
            last_success.map(crate::store::sqlite::from_unix),
            "{url}"
        );
        assert_eq!(
            feed.next_due,
            next_due.map(crate::store::sqlite::from_millis),
            "{url}"
        );
    }
    let entries = store
        .entries(old_entries.iter().map(|e| e.0).collect())
        .await
        .unwrap();
    assert_eq!(entries.len(), old_entries.len());
    for (id, published, hidden, categories, enclosures) in &old_entries {
        let e = entries.iter().find(|e| e.id == *id).unwrap();
        assert_eq!(e.published, crate::store::sqlite::from_unix(*published));
        assert_eq!(e.hidden, *hidden != 0);
        assert_eq!(
            e.entry.categories,
            serde_json::from_str::<Vec<String>>(categories).unwrap()
        );
        assert_eq!(
            serde_json::to_value(&e.entry.enclosures).unwrap(),
            serde_json::from_str::<serde_json::Value>(enclosures).unwrap()
        );
    }
    // New rows get ids past the migrated ones, and the migrated feeds are claimed as before.
    let more = store
        .ensure_feeds(vec!["http://127.0.0.2/new.xml".into()], t0())
        .await
        .unwrap();
    assert!(old_feeds.iter().all(|f| f.0 < more[0].id));
    let far = Utc::now() + Duration::days(365);
    let claimed = store.claim_due(far, 100, far).await.unwrap();
    assert_eq!(claimed.feeds.len(), old_feeds.len());
}
