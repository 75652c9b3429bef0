//! Webhooks (`-- --only webhooks`): how fast the outbox empties to a fast receiver (a loopback
//! server answering 204 at once), and what a round costs the outbox while 10,000 deliveries
//! wait (a receiver down for a while): the delivery pass that finds nothing due, and the
//! render's announcement of 100 new entries beside them.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use chrono::Utc;
use tributary::Config;
use tributary::{NewDelivery, Store};

use super::Row;
use super::measure::self_cpu;

const PENDING: usize = 10_000;

/// A receiver that takes every request at once; how many it took.
async fn receiver() -> (std::net::SocketAddr, Arc<AtomicU64>) {
    let taken = Arc::new(AtomicU64::new(0));
    let counter = taken.clone();
    let app = axum::Router::new().fallback(move || {
        let counter = counter.clone();
        async move {
            counter.fetch_add(1, Ordering::Relaxed);
            axum::http::StatusCode::NO_CONTENT
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, taken)
}

/// A config of one output with a webhook to `hook`, and its store.
async fn setup(base: &Path, hook: &str) -> (Config, Store) {
    let dir = base.join("webhooks");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("tributary.toml");
    std::fs::write(
        &path,
        format!(
            "[store]\npath = \"data/t.db\"\n[[feed]]\nurl = \"https://farm.example/feed\"\n\
             [[output]]\npath = \"public/all.atom\"\n\
             webhook = {{ url = \"{hook}\", secret = \"whsec_c2VjcmV0LWtleS1mb3ItdGhlLWJlbmNobWFyay0x\" }}\n"
        ),
    )
    .expect("config");
    let config = Config::load(&path).expect("config");
    let store = Store::open(&config.backend()).await.expect("store");
    (config, store)
}

/// `n` deliveries of one item each (about 1.5 KB, as a short post is), put in the outbox.
async fn fill(store: &Store, config: &Config, n: usize) {
    let output = config.outputs[0].path.display().to_string();
    let webhook = config.outputs[0].webhooks[0].name();
    let body = format!(
        "{{\"version\":\"https://jsonfeed.org/version/1.1\",\"title\":\"Tributary\",\"items\":[{{\"id\":\"x\",\"content_html\":\"{}\"}}]}}",
        "<p>words</p>".repeat(110)
    );
    let deliveries: Vec<NewDelivery> = (0..n)
        .map(|_| NewDelivery {
            webhook: webhook.clone(),
            body: body.clone(),
        })
        .collect();
    store
        .announce(output, Vec::new(), deliveries, Utc::now())
        .await
        .expect("outbox");
}

pub async fn webhook_scenarios(base: &Path) -> Vec<Row> {
    let (addr, taken) = receiver().await;
    let (config, store) = setup(base, &format!("http://{addr}/hook")).await;
    let mut rows = Vec::new();

    // Deliveries per second: the outbox emptied pass after pass.
    fill(&store, &config, PENDING).await;
    let (started, cpu) = (Instant::now(), self_cpu());
    let mut delivered = 0;
    for _ in 0..100 {
        let pass = tributary::deliver_pending(&config, &store).await.expect("pass");
        delivered += pass.delivered;
        if pass.next.is_none() {
            break;
        }
    }
    let wall = started.elapsed();
    assert_eq!(delivered, PENDING);
    assert_eq!(taken.load(Ordering::Relaxed), PENDING as u64);
    rows.push(Row {
        scenario: "webhooks: 10,000 deliveries to a fast receiver".into(),
        target: "(measured)".into(),
        wall,
        cpu: self_cpu().saturating_sub(cpu),
        peak_rss_kib: 0,
        entries: 0,
        requests: PENDING as u64,
        not_modified: 0,
        note: format!("{:.0} deliveries/s", PENDING as f64 / wall.as_secs_f64()),
    });

    // A round's outbox work while 10,000 deliveries wait for a receiver that is down: they
    // are due an hour on, so the pass finds nothing due; the render announces 100 entries.
    fill(&store, &config, PENDING).await;
    let later = Utc::now() + chrono::Duration::hours(1);
    let waiting = store
        .claim_deliveries(Utc::now(), later, PENDING)
        .await
        .expect("claim");
    assert_eq!(waiting.len(), PENDING);
    let (started, cpu) = (Instant::now(), self_cpu());
    const ROUNDS: u32 = 100;
    for _ in 0..ROUNDS {
        let pass = tributary::deliver_pending(&config, &store).await.expect("pass");
        assert_eq!(pass.delivered + pass.retried, 0);
    }
    let per_pass = started.elapsed() / ROUNDS;
    let pass_cpu = self_cpu().saturating_sub(cpu) / ROUNDS;
    let output = config.outputs[0].path.display().to_string();
    let (started, cpu) = (Instant::now(), self_cpu());
    for round in 0..ROUNDS {
        // A render's announcement: which of 100 shown entries are new, then them and their
        // deliveries written together.
        let shown: Vec<i64> = (0..100).map(|i| i64::from(round) * 100 + i).collect();
        let new = store
            .unannounced(output.clone(), shown)
            .await
            .expect("read")
            .unwrap_or_default();
        let deliveries = vec![NewDelivery {
            webhook: config.outputs[0].webhooks[0].name(),
            body: "{}".into(),
        }];
        store
            .announce(output.clone(), new, deliveries, Utc::now())
            .await
            .expect("announce");
    }
    let per_announce = started.elapsed() / ROUNDS;
    let announce_cpu = self_cpu().saturating_sub(cpu) / ROUNDS;
    rows.push(Row {
        scenario: "webhooks: a round's outbox work, 10,000 waiting".into(),
        target: "≪ a round".into(),
        wall: per_pass + per_announce,
        cpu: pass_cpu + announce_cpu,
        peak_rss_kib: 0,
        entries: 0,
        requests: 0,
        not_modified: 0,
        note: format!(
            "pass with nothing due {}, announcing 100 entries {}",
            super::format_duration(per_pass),
            super::format_duration(per_announce)
        ),
    });
    store.close().await;
    rows
}
