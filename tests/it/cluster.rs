//! The cluster on a real PostgreSQL server (`TRIBUTARY_PG_URL`, which `.ci/run` points at a
//! throwaway server it starts): three `tributary run` nodes polling together, one killed;
//! `per_host` turns held across nodes; one node leads rendering and the lead moves when its
//! session dies; every node reads the same published output bytes; `store copy` both ways.
//! (The store's claims, fencing and shared host delays are tested in `store::postgres`.)
//! Each test has a database of its own.

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use tributary::Backend;
use tributary::{Coordination, Notice, Store};

use crate::support::require_postgres;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap()
}

async fn node(db: &crate::support::PgDatabase, name: &str) -> Result<Store, tributary::StoreError> {
    Store::open(&Backend::Server {
        url: db.url().to_string(),
        node: name.to_string(),
    })
    .await
}

/// Three nodes' coordination on one database, as they start together.
async fn cluster(db: &crate::support::PgDatabase) -> [Arc<dyn Coordination>; 3] {
    let (a, b, c) = tokio::join!(node(db, "node-a"), node(db, "node-b"), node(db, "node-c"));
    [a, b, c].map(|s| s.unwrap().coordination().expect("a shared store"))
}

#[tokio::test(flavor = "multi_thread")]
async fn per_host_holds_across_nodes() {
    let Some(db) = require_postgres("cluster_hosts").await else {
        return;
    };
    let [a, b, c] = cluster(&db).await;
    let until = t0() + Duration::seconds(30);
    let host = "127.0.0.2";
    let first = a.take_turn(host, 2, t0(), until).await.unwrap().expect("a turn");
    let second = b.take_turn(host, 2, t0(), until).await.unwrap().expect("a turn");
    assert_ne!(first.turn, second.turn);
    assert!(
        c.take_turn(host, 2, t0(), until).await.unwrap().is_none(),
        "per_host = 2 for the cluster"
    );
    assert!(
        c.take_turn("127.0.0.3", 2, t0(), until).await.unwrap().is_some(),
        "another host has its own"
    );
    a.give_back(&first).await.unwrap();
    let long = t0() + Duration::seconds(300);
    let third = c
        .take_turn(host, 2, t0(), long)
        .await
        .unwrap()
        .expect("a turn given back is free");
    // b dies holding its turn: free again when its time runs out, and b's late give-back
    // does not free the turn c now holds.
    let later = until + Duration::seconds(1);
    let taken_over = a
        .take_turn(host, 2, later, later + Duration::seconds(30))
        .await
        .unwrap();
    let taken_over = taken_over.expect("an expired turn is free");
    assert_eq!(taken_over.turn, second.turn);
    b.give_back(&second).await.unwrap();
    assert!(
        c.take_turn(host, 2, later, later + Duration::seconds(30))
            .await
            .unwrap()
            .is_none(),
        "b's stale give-back freed nothing (c and a hold both turns)"
    );
    c.give_back(&third).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn one_node_leads_rendering_and_the_lead_moves_when_its_session_dies() {
    let Some(db) = require_postgres("cluster_leader").await else {
        return;
    };
    let [a, b, c] = cluster(&db).await;
    let mut leader = a.try_lead().await.unwrap().expect("the first node leads");
    assert!(b.try_lead().await.unwrap().is_none(), "one leader");
    let mut changes = c.listen().await.unwrap();
    leader
        .publish("public/all.atom", b"<feed>one</feed>", "\"e1\"", t0())
        .await
        .unwrap();
    let announced = tokio::time::timeout(std::time::Duration::from_secs(10), changes.next()).await;
    assert_eq!(
        announced.expect("announced within 10 s"),
        Some(Notice::Output("public/all.atom".into())),
        "a serving node hears of the new bytes"
    );
    for node in [&a, &b, &c] {
        assert_eq!(
            node.rendered("public/all.atom").await.unwrap(),
            Some((b"<feed>one</feed>".to_vec(), "\"e1\"".to_string())),
            "every node serves the leader's bytes and ETag"
        );
    }
    // The leader's node dies: its session, the one holding an advisory lock, ends
    // (terminated here, as a kill -9 ends it).
    let killed: bool = db
        .admin_query_bool(&format!(
            "SELECT bool_and(pg_terminate_backend(pid, 10000)) FROM pg_locks
             WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = '{}')",
            db.name()
        ))
        .await;
    assert!(killed);
    assert!(
        leader
            .publish("public/all.atom", b"stale", "\"e0\"", t0())
            .await
            .is_err(),
        "a lost lead cannot publish"
    );
    drop(leader);
    let new_leader = b
        .try_lead()
        .await
        .unwrap()
        .expect("the lead moves to a live node");
    assert!(c.try_lead().await.unwrap().is_none());
    new_leader.step_down().await.unwrap();
    assert!(
        c.try_lead().await.unwrap().is_some(),
        "a clean stop hands the lead on at once"
    );
    assert_eq!(
        a.rendered("public/all.atom")
            .await
            .unwrap()
            .map(|(bytes, _)| bytes),
        Some(b"<feed>one</feed>".to_vec()),
        "the dead leader's last write did not land"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_newer_schema_is_refused() {
    let Some(db) = require_postgres("cluster_nodes").await else {
        return;
    };
    let _ = cluster(&db).await;
    let versions: Vec<i64> = db.query_rows("SELECT version FROM schema_version", |r| r.get(0));
    assert_eq!(
        versions.len(),
        1,
        "migrated once, by whoever came first: {versions:?}"
    );
    db.admin_execute_in_db("UPDATE schema_version SET version = 99")
        .await;
    let refused = node(&db, "node-d").await.err().expect("refused");
    let message = refused.to_string();
    assert!(
        message.contains("schema version 99") && !message.contains("password"),
        "{message}"
    );
}

/// Every row of `table`, in key order, as SQLite holds it.
fn dump(db: &rusqlite::Connection, table: &str) -> Vec<Vec<rusqlite::types::Value>> {
    let mut stmt = db
        .prepare(&format!("SELECT * FROM {table} ORDER BY 1, 2"))
        .unwrap();
    let columns = stmt.column_count();
    stmt.query_map([], |r| (0..columns).map(|i| r.get(i)).collect())
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn store_copy_moves_a_store_into_postgresql_and_back_without_loss() {
    let Some(db) = require_postgres("cluster_copy").await else {
        return;
    };
    use crate::support::{FeedServer, Route, Workspace, rss};
    let server = FeedServer::start().await;
    let day = |d: u32| format!("Mon, {d:02} Mar 2026 10:00:00 +0000");
    let days: Vec<String> = (1..=12).map(day).collect();
    let items: Vec<_> = (0..12)
        .map(|i| {
            (
                Some(["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l"][i]),
                None,
                "Post",
                "Body",
                Some(days[i].as_str()),
            )
        })
        .collect();
    server.set("/a.xml", Route::rss(rss("A", &items)));
    server.set("/broken.xml", Route::status(500, "down"));
    let ws = Workspace::new();
    ws.write_config(&format!(
        "[store]\npath = \"data/t.db\"\n[[feed]]\nurl = \"{}\"\n[[feed]]\nurl = \"{}\"\n\
         [[output]]\npath = \"public/all.atom\"\n",
        server.url("/a.xml"),
        server.url("/broken.xml")
    ));
    assert_eq!(
        ws.poll().await.code,
        1,
        "one feed fails: its error history is part of the store"
    );
    // Retention's tombstones and a held host, as a long-running store has them.
    ws.db_rw()
        .execute_batch(
            "INSERT INTO tombstones (feed_id, key, removed, last_seen) SELECT id, 'g:gone', 1, 2 FROM feeds LIMIT 1;
             INSERT INTO hosts (host, not_before, reason) VALUES ('127.0.0.9', 1800000000000, '429');
             INSERT INTO subscriptions (feed_id, hub, topic, state, secret, nonce, lease_until, next_attempt,
                 failures, error, last_push, pushes, rejected)
                 SELECT id, 'https://hub.example/', url, 'active', 's3cret', 'n0nce', 1800000000, 1799990000,
                     0, NULL, 1700000000, 3, 1 FROM feeds LIMIT 1;
             UPDATE feeds SET push_until = 1800000000 WHERE id = (SELECT feed_id FROM subscriptions);
             UPDATE entries SET pushed = 1 WHERE id = (SELECT MIN(id) FROM entries);
             INSERT INTO lists (key, etag, last_modified, members, held, fetched, last_success, last_error,
                 failures, next_due)
                 VALUES ('https://lists.example/l.opml', '\"e\"', NULL,
                     '[{\"site\":null,\"title\":\"A\",\"url\":\"https://a.example/f\"}]', '[]',
                     1700000000, 1700000000, NULL, 0, 1800000000);",
        )
        .unwrap();
    let source = ws.path("data/t.db").display().to_string();
    let copied = ws
        .tributary(&["store", "copy", "--from", &source, "--to", db.url()])
        .await;
    assert_eq!(copied.code, 0, "{copied:?}");
    assert!(copied.stdout.contains("12 entries"), "{}", copied.stdout);
    let again = ws
        .tributary(&["store", "copy", "--from", &source, "--to", db.url()])
        .await;
    assert_eq!(
        again.code, 2,
        "never merged into a store that has feeds: {again:?}"
    );
    assert!(again.stderr.contains("empty store only"), "{}", again.stderr);

    let back = ws.path("back.db").display().to_string();
    let returned = ws
        .tributary(&["store", "copy", "--from", db.url(), "--to", &back])
        .await;
    assert_eq!(returned.code, 0, "{returned:?}");
    let original = ws.db();
    let round_trip = rusqlite::Connection::open(&back).unwrap();
    for table in [
        "feeds",
        "entries",
        "tombstones",
        "feed_errors",
        "hosts",
        "outputs",
        "settings",
        "subscriptions",
        "lists",
    ] {
        let rows = dump(&original, table);
        assert!(!rows.is_empty() || table == "outputs", "{table} has rows to copy");
        assert_eq!(dump(&round_trip, table), rows, "{table} came back as it was");
    }
    // The copy is a working store: polling it finds nothing new, stores nothing twice.
    ws.write_config(&format!(
        "[store]\npath = \"back.db\"\n[[feed]]\nurl = \"{}\"\n",
        server.url("/a.xml")
    ));
    assert_eq!(ws.tributary(&["poll", "--force"]).await.code, 0);
    let entries: i64 = round_trip
        .query_row("SELECT COUNT(*) FROM entries", [], |r| r.get(0))
        .unwrap();
    assert_eq!(entries, 12);
}

/// Three `tributary run` nodes on one database, as deployed: the same config but for each
/// node's name and its own output directory and server, 300 feeds over three loopback
/// hosts, a 5-second schedule with the default jitter and the default 30 s lease. The node
/// that leads rendering is killed with SIGKILL midway. Every feed is polled once per slot
/// (never twice in one; missed only while the dead node's claims ran out), no entry is stored
/// twice, and the survivors' outputs are whole and the same bytes, served with the same ETag,
/// including what changed after the kill.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_poll_each_feed_once_per_slot_and_survive_a_kill() {
    use crate::support::{Daemon, FeedServer, Route, rss};
    use nix::sys::signal::Signal;

    let Some(db) = require_postgres("cluster_kill").await else {
        return;
    };
    // Ten hosts of 30 feeds, under the default `per_host = 2` for the whole cluster.
    const PER_HOST: usize = 30;
    let mut servers = Vec::new();
    for i in 2..12 {
        servers.push(FeedServer::start_at(&format!("127.0.0.{i}")).await);
    }
    let mut feeds = Vec::new();
    for (h, server) in servers.iter().enumerate() {
        for i in 0..PER_HOST {
            let path = format!("/f{i}.xml");
            let guid = format!("h{h}-f{i}");
            server.set(
                &path,
                Route::rss(rss(
                    &guid,
                    &[(
                        Some(guid.as_str()),
                        None,
                        guid.as_str(),
                        "body",
                        Some("Mon, 30 Nov 2026 10:00:00 +0000"),
                    )],
                )),
            );
            feeds.push((h, path));
        }
    }
    let feed_tables: String = feeds
        .iter()
        .map(|(h, path)| format!("[[feed]]\nurl = \"{}\"\n", servers[*h].url(path)))
        .collect();
    let names = ["node-a", "node-b", "node-c"];
    let dirs: Vec<tempfile::TempDir> = names.iter().map(|_| tempfile::tempdir().unwrap()).collect();
    let mut nodes = Vec::new();
    for (name, dir) in names.iter().zip(&dirs) {
        let config = dir.path().join("tributary.toml");
        crate::support::write_file(
            &config,
            format!(
                "[store]\nurl = \"{}\"\n\n[node]\nname = \"{name}\"\n\n[poll]\nschedule = \"*/5 * * * * *\"\n\
                 timeout = \"10s\"\n\n[serve]\nlisten = \"127.0.0.1:0\"\n\n{feed_tables}\n\
                 [[output]]\npath = \"out/all.atom\"\ntitle = \"Cluster planet\"\nlimit = 1000\n",
                db.url()
            )
            .as_bytes(),
        );
        nodes.push(Daemon::start(&config));
    }
    let mut addresses = Vec::new();
    let mut admin = Vec::new();
    for node in &mut nodes {
        let (public, health) = node.ready_serving_both().await;
        addresses.push(public);
        admin.push(health);
    }
    let started = tokio::time::Instant::now();
    let requests = |h: usize, path: &str| servers[h].arrivals(path);
    // Three slots polled by the cluster.
    let deadline = started + std::time::Duration::from_secs(40);
    while !feeds.iter().all(|(h, p)| requests(*h, p).len() >= 3) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "three slots not polled in 40 s: polls per feed {:?}; node-a:\n{}",
            feeds
                .iter()
                .map(|(h, p)| requests(*h, p).len())
                .collect::<Vec<_>>(),
            nodes[0].stderr()
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        nodes.iter_mut().for_each(Daemon::drain);
    }
    // The leader, as its log says, goes down hard.
    let leader = (0..3)
        .find(|&i| nodes[i].stderr().contains("this node leads"))
        .unwrap_or_else(|| panic!("no node leads: {}", nodes[0].stderr()));
    nodes[leader].signal(Signal::SIGKILL);
    assert_eq!(nodes[leader].exit_code().await, -1, "killed");
    let killed = tokio::time::Instant::now();
    // A change after the kill: a new entry on one feed per host.
    for (h, server) in servers.iter().enumerate() {
        let guid = format!("h{h}-f0");
        server.set(
            "/f0.xml",
            Route::rss(rss(
                &guid,
                &[
                    (
                        Some("late"),
                        None,
                        &format!("Late news {h}"),
                        "body",
                        Some("Tue, 01 Dec 2026 10:00:00 +0000"),
                    ),
                    (
                        Some(guid.as_str()),
                        None,
                        guid.as_str(),
                        "body",
                        Some("Mon, 30 Nov 2026 10:00:00 +0000"),
                    ),
                ],
            )),
        );
    }
    // Past the dead node's leases (30 s) and two slots more: every feed polled again.
    let handed_over = killed + std::time::Duration::from_secs(30 + 10);
    let deadline = handed_over + std::time::Duration::from_secs(60);
    let behind = |feeds: &[(usize, String)]| -> Vec<String> {
        feeds
            .iter()
            .filter(|(h, p)| requests(*h, p).iter().filter(|t| **t > handed_over).count() < 2)
            .map(|(h, p)| format!("{p} on host {h}: {:?}", requests(*h, p)))
            .collect()
    };
    while !behind(&feeds).is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "feeds not polled after the hand-over (killed at {killed:?}): {:?}; a survivor:\n{}",
            behind(&feeds),
            nodes[(leader + 1) % 3].stderr()
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        nodes.iter_mut().for_each(Daemon::drain);
    }
    let survivors: Vec<usize> = (0..3).filter(|&i| i != leader).collect();

    // Once per slot: a feed's polls are a slot (5 s) apart, give or take how late each was
    // (well under a slot); never two in one slot (under 2 s apart), and no slot skipped (over
    // 9.5 s apart) but while the dead node's claims ran out.
    let ended = tokio::time::Instant::now();
    let mut gaps = Vec::new();
    for (h, path) in &feeds {
        let times = requests(*h, path);
        for pair in times.windows(2) {
            let gap = pair[1] - pair[0];
            assert!(
                gap >= std::time::Duration::from_secs(2),
                "{path} on host {h} polled twice in one slot: {gap:?} apart"
            );
            let in_hand_over = pair[0] >= killed - std::time::Duration::from_secs(6)
                && pair[0] <= killed + std::time::Duration::from_secs(31);
            assert!(
                in_hand_over || gap <= std::time::Duration::from_millis(9500),
                "{path} on host {h} missed a slot: {gap:?} between polls"
            );
            if !in_hand_over {
                gaps.push(gap);
            }
        }
        let span = ended - started;
        assert!(
            times.len() as f64 <= span.as_secs_f64() / 5.0 + 2.0,
            "{path}: {} polls in {span:?}",
            times.len()
        );
    }
    gaps.sort();
    println!(
        "{} gaps between polls of a feed outside the hand-over: min {:?}, median {:?}, max {:?}",
        gaps.len(),
        gaps[0],
        gaps[gaps.len() / 2],
        gaps[gaps.len() - 1]
    );
    // No entry stored twice: one per feed, and the three late ones.
    let counts = db.query_rows(
        "SELECT f.url, COUNT(e.id) FROM feeds f LEFT JOIN entries e ON e.feed_id = f.id GROUP BY f.url",
        |r| (r.get::<_, String>(0), r.get::<_, i64>(1)),
    );
    assert_eq!(counts.len(), 300);
    for (url, n) in &counts {
        let expected = if url.ends_with("/f0.xml") { 2 } else { 1 };
        assert_eq!(*n, expected, "{url}");
    }
    // The new lead rendered the late entries; both survivors wrote the same bytes and serve
    // them with the same ETag.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    let outputs = loop {
        let outputs: Vec<Vec<u8>> = survivors
            .iter()
            .map(|&i| std::fs::read(dirs[i].path().join("out/all.atom")).unwrap_or_default())
            .collect();
        nodes.iter_mut().for_each(Daemon::drain);
        let late = |b: &[u8]| {
            (0..servers.len()).all(|h| String::from_utf8_lossy(b).contains(&format!("Late news {h}")))
        };
        if outputs.iter().all(|b| late(b)) && outputs[0] == outputs[1] {
            break outputs;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the survivors' outputs differ or miss the late entries; {}",
            nodes[survivors[0]].stderr()
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        nodes.iter_mut().for_each(Daemon::drain);
    };
    let feed = feed_rs::parser::parse(&outputs[0][..]).expect("a whole Atom feed");
    assert_eq!(feed.entries.len(), 300 + servers.len());
    tributary::init_tls();
    let client = reqwest::Client::new();
    let mut served = Vec::new();
    for &i in &survivors {
        let response = client
            .get(format!("http://{}/all.atom", addresses[i]))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let etag = response.headers()["etag"].to_str().unwrap().to_string();
        served.push((etag, response.bytes().await.unwrap().to_vec()));
    }
    assert_eq!(served[0], served[1], "the same bytes and ETag from every node");
    assert_eq!(served[0].1, outputs[0], "what is served is what is written");
    // Who is alive and who stopped, as /healthz and `feeds` show it.
    let health = client
        .get(format!("http://{}/healthz", admin[survivors[0]]))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let health: serde_json::Value = serde_json::from_slice(&health).unwrap();
    for (i, name) in names.iter().enumerate() {
        let node = health["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["name"] == *name)
            .unwrap_or_else(|| panic!("{name} not in {health}"));
        assert_eq!(node["heartbeating"], i != leader, "{node}");
    }
    let feeds = tokio::process::Command::new(env!("CARGO_BIN_EXE_tributary"))
        .arg("--config")
        .arg(dirs[survivors[0]].path().join("tributary.toml"))
        .arg("feeds")
        .output()
        .await
        .unwrap();
    let table = String::from_utf8_lossy(&feeds.stdout);
    assert!(
        table.contains(&format!("node {}: stopped heartbeating", names[leader]))
            && table.contains(&format!("node {}: heartbeating", names[survivors[0]])),
        "{table}"
    );
    for &i in &survivors {
        nodes[i].signal(Signal::SIGTERM);
        assert_eq!(nodes[i].exit_code().await, 0, "{}", nodes[i].stderr());
    }
}
