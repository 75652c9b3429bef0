//! A cluster's nodes through what happens to clusters, on a real PostgreSQL server and real
//! `tributary run` binaries with the packaged defaults (the default jitter, `per_host`, the
//! 30 s lease): the database going away and coming back, a node killed and started again, a
//! one-shot `poll` beside running nodes, and a 429 on one node holding the host on the others.
//! Feeds are served from loopback hosts; each request's arrival and User-Agent (which names
//! the node) are what the assertions read.

use std::time::Duration;

use nix::sys::signal::Signal;
use tokio::time::Instant;

use crate::support::{Daemon, FeedServer, PgDatabase, PgProxy, Route, require_postgres, rss};

/// Feeds over loopback hosts, one entry each.
struct Farm {
    servers: Vec<FeedServer>,
    /// (server, path) of each feed.
    feeds: Vec<(usize, String)>,
}

impl Farm {
    async fn start(first_ip: u8, hosts: u8, per_host: usize) -> Farm {
        let mut servers = Vec::new();
        for h in 0..hosts {
            servers.push(FeedServer::start_at(&format!("127.0.{first_ip}.{}", h + 1)).await);
        }
        let mut feeds = Vec::new();
        for (h, server) in servers.iter().enumerate() {
            for i in 0..per_host {
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
        Farm { servers, feeds }
    }

    fn feed_tables(&self) -> String {
        self.feeds
            .iter()
            .map(|(h, path)| format!("[[feed]]\nurl = \"{}\"\n", self.servers[*h].url(path)))
            .collect()
    }

    /// When feed `i`'s requests arrived.
    fn arrivals(&self, i: usize) -> Vec<Instant> {
        let (h, path) = &self.feeds[i];
        self.servers[*h].arrivals(path)
    }

    /// Requests from node `name` (its User-Agent names it) over every feed.
    fn requests_from(&self, name: &str) -> usize {
        self.feeds
            .iter()
            .map(|(h, path)| {
                self.servers[*h]
                    .requests(path)
                    .iter()
                    .filter(|s| {
                        s.headers
                            .get("user-agent")
                            .and_then(|v| v.to_str().ok())
                            .is_some_and(|ua| ua.contains(&format!("({name})")))
                    })
                    .count()
            })
            .sum()
    }

    /// Waits (at most `within`) until every feed has `n` requests that arrived after `since`.
    async fn polled(&self, n: usize, since: Instant, within: Duration, nodes: &mut [Daemon]) {
        self.polled_on(None, n, since, within, nodes).await;
    }

    /// [`Farm::polled`] for the feeds of host `host` only (every feed with `None`).
    async fn polled_on(
        &self,
        host: Option<usize>,
        n: usize,
        since: Instant,
        within: Duration,
        nodes: &mut [Daemon],
    ) {
        let deadline = Instant::now() + within;
        loop {
            let behind: Vec<usize> = (0..self.feeds.len())
                .filter(|&i| host.is_none_or(|h| self.feeds[i].0 == h))
                .filter(|&i| self.arrivals(i).iter().filter(|t| **t > since).count() < n)
                .collect();
            if behind.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} feeds not polled {n} times in {within:?}: {:?}; a node:\n{}",
                behind.len(),
                behind.iter().take(5).map(|&i| &self.feeds[i]).collect::<Vec<_>>(),
                nodes.first().map(Daemon::stderr).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
            nodes.iter_mut().for_each(Daemon::drain);
        }
    }
}

/// A node's config: the same for every node but its name (and its own outputs).
fn node_config(
    dir: &std::path::Path,
    store_url: &str,
    name: &str,
    schedule: &str,
    farm: &Farm,
) -> std::path::PathBuf {
    let path = dir.join("tributary.toml");
    crate::support::write_file(
        &path,
        format!(
            "[store]\nurl = \"{store_url}\"\n\n[node]\nname = \"{name}\"\n\n[poll]\nschedule = \"{schedule}\"\n\
             timeout = \"10s\"\nuser_agent = \"tributary-test ({name})\"\n\n[serve]\nlisten = \"127.0.0.1:0\"\n\n{}\n\
             [[output]]\npath = \"out/all.atom\"\nlimit = 1000\n",
            farm.feed_tables()
        )
        .as_bytes(),
    );
    path
}

/// Nodes started on one store, each serving.
struct Nodes {
    dirs: Vec<tempfile::TempDir>,
    daemons: Vec<Daemon>,
    /// Where each serves its outputs.
    addresses: Vec<std::net::SocketAddr>,
}

/// `names` started as nodes on `store_url`.
async fn start_nodes(store_url: &str, names: &[&str], schedule: &str, farm: &Farm) -> Nodes {
    let dirs: Vec<tempfile::TempDir> = names.iter().map(|_| tempfile::tempdir().unwrap()).collect();
    let mut daemons = Vec::new();
    for (name, dir) in names.iter().zip(&dirs) {
        daemons.push(Daemon::start(&node_config(
            dir.path(),
            store_url,
            name,
            schedule,
            farm,
        )));
    }
    let mut addresses = Vec::new();
    for node in &mut daemons {
        addresses.push(node.ready_serving_both().await.0);
    }
    Nodes {
        dirs,
        daemons,
        addresses,
    }
}

/// No feed polled twice in one slot, none missing one (`slot` apart, give or take `slack`).
fn once_per_slot(farm: &Farm, since: Instant, slot: Duration, slack: Duration) {
    for i in 0..farm.feeds.len() {
        let times: Vec<Instant> = farm.arrivals(i).into_iter().filter(|t| *t >= since).collect();
        for pair in times.windows(2) {
            let gap = pair[1] - pair[0];
            assert!(
                gap + slack >= slot && gap <= slot + slack,
                "{:?} polled {gap:?} apart (slot {slot:?}): {times:?}",
                farm.feeds[i]
            );
        }
    }
}

/// Entries stored per feed URL.
fn entries_per_feed(db: &PgDatabase) -> Vec<(String, i64)> {
    db.query_rows(
        "SELECT f.url, COUNT(e.id) FROM feeds f LEFT JOIN entries e ON e.feed_id = f.id GROUP BY f.url",
        |r| (r.get::<_, String>(0), r.get::<_, i64>(1)),
    )
}

async fn stop(nodes: &mut [Daemon]) {
    for node in nodes.iter() {
        node.signal(Signal::SIGTERM);
    }
    for node in nodes.iter_mut() {
        assert_eq!(node.exit_code().await, 0, "{}", node.stderr());
    }
}

/// The database goes away for 15 s under three nodes, then comes back: the nodes serve their
/// last outputs meanwhile, say so once, and poll again within a lease of its return; nothing
/// stored is lost or stored twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_database_going_away_and_back_is_noticed() {
    let Some(db) = require_postgres("nodes_restart").await else {
        return;
    };
    let proxy = PgProxy::start(db.url()).await;
    let farm = Farm::start(21, 3, 20).await;
    let slot = "*/5 * * * * *";
    let cluster = start_nodes(&proxy.url(db.url()), &["node-a", "node-b", "node-c"], slot, &farm).await;
    let mut nodes = cluster.daemons;
    let started = Instant::now();
    farm.polled(2, started, Duration::from_secs(30), &mut nodes).await;
    tributary::init_tls();
    let client = reqwest::Client::new();
    let served = |addr: &std::net::SocketAddr| {
        let (client, addr) = (client.clone(), *addr);
        async move {
            let response = client
                .get(format!("http://{addr}/all.atom"))
                .send()
                .await
                .unwrap();
            (
                response.status().as_u16(),
                response.bytes().await.unwrap().to_vec(),
            )
        }
    };
    let before: Vec<(u16, Vec<u8>)> = futures::future::join_all(cluster.addresses.iter().map(served)).await;
    assert!(
        before
            .iter()
            .all(|(status, body)| *status == 200 && !body.is_empty())
    );

    proxy.down();
    // Two slots and more without a database; the outputs are still served.
    tokio::time::sleep(Duration::from_secs(15)).await;
    let during: Vec<(u16, Vec<u8>)> = futures::future::join_all(cluster.addresses.iter().map(served)).await;
    assert_eq!(
        during, before,
        "the last outputs are served while the database is away"
    );
    proxy.up();
    let back = Instant::now();
    // Within a lease (30 s) of its return, every feed is polled again, twice.
    farm.polled(2, back, Duration::from_secs(30), &mut nodes).await;
    let resumed = farm
        .feeds
        .iter()
        .enumerate()
        .filter_map(|(i, _)| farm.arrivals(i).into_iter().find(|t| *t > back))
        .max()
        .unwrap();
    println!(
        "every feed polled again {:?} after the database came back",
        resumed - back
    );
    // Nothing stored twice, nothing lost: one entry per feed.
    let counts = entries_per_feed(&db);
    assert_eq!(counts.len(), farm.feeds.len());
    assert!(counts.iter().all(|(_, n)| *n == 1), "{counts:?}");
    nodes.iter_mut().for_each(Daemon::drain);
    for node in &nodes {
        let log = node.stderr();
        assert_eq!(log.matches("the database failed").count(), 1, "said once:\n{log}");
        assert_eq!(log.matches("the database works again").count(), 1, "{log}");
        // The outage is said in a few lines, not a line per tick, fetch or feed.
        let loud = log
            .lines()
            .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
            .count();
        assert!(loud <= 5, "{loud} warnings and errors:\n{log}");
    }
    stop(&mut nodes).await;
}

/// A node killed with SIGKILL and started again at once rejoins: it gives back what it held
/// (claims and host turns) at start, heartbeats, takes its share, and no feed misses a slot.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_killed_and_started_again_rejoins_without_a_missed_slot() {
    let Some(db) = require_postgres("nodes_rejoin").await else {
        return;
    };
    let farm = Farm::start(22, 3, 20).await;
    let cluster = start_nodes(db.url(), &["node-a", "node-b"], "*/5 * * * * *", &farm).await;
    let (dirs, mut nodes) = (cluster.dirs, cluster.daemons);
    let started = Instant::now();
    farm.polled(2, started, Duration::from_secs(30), &mut nodes).await;
    // Killed between polls, not in the middle of one: a poll that reached its feed but was
    // never recorded is polled again at once (at least once, as it should be), which this
    // test would count as a second poll in the slot.
    let deadline = Instant::now() + Duration::from_secs(10);
    while db.query_rows(
        "SELECT COUNT(*) FROM feeds WHERE lease_node = 'node-b' AND lease_until IS NOT NULL",
        |r| r.get::<_, i64>(0),
    )[0] > 0
    {
        assert!(Instant::now() < deadline, "node-b holds claims for 10 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    nodes[1].signal(Signal::SIGKILL);
    assert_eq!(nodes[1].exit_code().await, -1);
    let config = dirs[1].path().join("tributary.toml");
    nodes[1] = Daemon::start(&config);
    nodes[1].ready_serving_both().await;
    let restarted = Instant::now();
    let before_restart = farm.requests_from("node-b");
    farm.polled(3, restarted, Duration::from_secs(40), &mut nodes)
        .await;
    // Once per slot throughout, the kill included: nothing waited for a lease to run out.
    once_per_slot(
        &farm,
        started,
        Duration::from_secs(5),
        Duration::from_millis(3500),
    );
    assert!(
        farm.requests_from("node-b") > before_restart,
        "the restarted node takes a share of the work"
    );
    nodes.iter_mut().for_each(Daemon::drain);
    assert!(
        nodes[1].stderr().contains("joined the cluster"),
        "{}",
        nodes[1].stderr()
    );
    stop(&mut nodes).await;
}

/// `tributary poll` run beside two nodes polls only what no node holds and is due, and says
/// how many it left to them: no feed is fetched twice in its slot.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_one_shot_poll_beside_the_nodes_fetches_nothing_twice() {
    let Some(db) = require_postgres("nodes_one_shot").await else {
        return;
    };
    let farm = Farm::start(23, 3, 20).await;
    let slot = "*/10 * * * * *";
    let mut nodes = start_nodes(db.url(), &["node-a", "node-b"], slot, &farm)
        .await
        .daemons;
    let started = Instant::now();
    farm.polled(1, started, Duration::from_secs(30), &mut nodes).await;
    // A poll from cron on another host of the cluster, in the middle of the nodes' slots.
    let dir = tempfile::tempdir().unwrap();
    let config = node_config(dir.path(), db.url(), "cron", slot, &farm);
    let mut polls = Vec::new();
    for _ in 0..3 {
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_tributary"))
            .arg("--config")
            .arg(&config)
            .arg("poll")
            .output()
            .await
            .unwrap();
        assert!(out.status.code().is_some_and(|c| c <= 1), "{out:?}");
        polls.push(String::from_utf8_lossy(&out.stdout).into_owned());
        tokio::time::sleep(Duration::from_millis(3300)).await;
    }
    farm.polled(2, started, Duration::from_secs(30), &mut nodes).await;
    assert!(
        polls.iter().all(|p| p.contains("left to the cluster's nodes")),
        "{polls:?}"
    );
    // Never two fetches of a feed in one 10 s slot (the jitter moves a feed within it, by at
    // most half of it).
    for i in 0..farm.feeds.len() {
        let times = farm.arrivals(i);
        for pair in times.windows(2) {
            assert!(
                pair[1] - pair[0] >= Duration::from_secs(5),
                "{:?} fetched twice in a slot: {times:?}; polls: {polls:?}",
                farm.feeds[i]
            );
        }
    }
    let counts = entries_per_feed(&db);
    assert!(counts.iter().all(|(_, n)| *n == 1), "{counts:?}");
    stop(&mut nodes).await;
}

/// A host that answers one node 429 is left alone by every node within a second: the wait is
/// announced when it is heard, not read at the other nodes' next heartbeat.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_429_on_one_node_holds_the_host_on_every_node_at_once() {
    let Some(db) = require_postgres("nodes_429").await else {
        return;
    };
    let farm = Farm::start(24, 2, 20).await;
    let mut nodes = start_nodes(db.url(), &["node-a", "node-b"], "*/5 * * * * *", &farm)
        .await
        .daemons;
    let started = Instant::now();
    farm.polled(1, started, Duration::from_secs(30), &mut nodes).await;
    // The first host starts answering 429 with a two-minute Retry-After.
    let limited = &farm.servers[0];
    for (h, path) in &farm.feeds {
        if *h == 0 {
            limited.set(
                path,
                Route::status(429, "slow down")
                    .header("retry-after", "120")
                    .delayed(Duration::from_millis(50)),
            );
        }
    }
    let switched = Instant::now();
    let host_arrivals = || -> Vec<Instant> {
        let mut all: Vec<Instant> = farm
            .feeds
            .iter()
            .filter(|(h, _)| *h == 0)
            .flat_map(|(_, path)| limited.arrivals(path))
            .filter(|t| *t > switched)
            .collect();
        all.sort();
        all
    };
    let deadline = switched + Duration::from_secs(20);
    while host_arrivals().is_empty() {
        assert!(Instant::now() < deadline, "the host was not asked again");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let first = host_arrivals()[0];
    // Two slots more: the other host is polled, the limited one is not asked again by anyone.
    farm.polled_on(Some(1), 2, first, Duration::from_secs(20), &mut nodes)
        .await;
    let after: Vec<Duration> = host_arrivals()
        .iter()
        .map(|t| *t - first)
        .filter(|d| *d > Duration::from_secs(1))
        .collect();
    assert!(
        after.is_empty(),
        "asked again after the 429: {after:?} after the first"
    );
    stop(&mut nodes).await;
}
