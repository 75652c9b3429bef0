//! WebSub pushes (`-- --only push`): the real daemon subscribed to 1,000 feeds at a hub of the
//! benchmark's own (loopback), then pushed 10 KB bodies: how many pushes a second the node
//! takes (answered 202) and how long until all of them are stored; and the push-to-page
//! latency (a push until the served output shows its entry), median and p99.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use hmac::{KeyInit, Mac};
use tokio::process::Command;

use super::Row;

const FEEDS: usize = 1000;
const PUSHES_PER_FEED: usize = 2;
const LATENCY_SAMPLES: usize = 100;

/// A subscription the hub took: its callback and secret, by topic.
type Subscriptions = Arc<Mutex<HashMap<String, (String, String)>>>;

fn atom(hub: &str, topic: &str, id: &str, title: &str, padding: usize) -> String {
    format!(
        "<?xml version=\"1.0\"?><feed xmlns=\"http://www.w3.org/2005/Atom\"><title>F</title><id>{topic}</id>\
         <updated>2026-12-01T00:00:00Z</updated><link rel=\"hub\" href=\"{hub}\"/><link rel=\"self\" href=\"{topic}\"/>\
         <entry><id>urn:{id}</id><title>{title}</title><link href=\"https://push.example/{id}\"/>\
         <updated>2026-12-01T10:00:00Z</updated><content type=\"html\">{}</content></entry></feed>",
        "&lt;p&gt;words words words&lt;/p&gt;".repeat(padding)
    )
}

fn signed(secret: &str, body: &str) -> String {
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(body.as_bytes());
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The feeds (`/f/N.xml`, each naming the hub) and the hub (`/hub`, taking every request).
async fn servers(subscriptions: Subscriptions) -> (std::net::SocketAddr, std::net::SocketAddr) {
    let feeds_listener = tokio::net::TcpListener::bind("127.0.0.2:0").await.expect("bind");
    let hub_listener = tokio::net::TcpListener::bind("127.0.0.3:0").await.expect("bind");
    let (feeds_addr, hub_addr) = (
        feeds_listener.local_addr().expect("addr"),
        hub_listener.local_addr().expect("addr"),
    );
    let hub = format!("http://{hub_addr}/hub");
    let feeds_app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
        let hub = hub.clone();
        async move {
            let topic = format!("http://{feeds_addr}{}", uri.path());
            (
                [("content-type", "application/atom+xml")],
                atom(&hub, &topic, uri.path(), "First", 1),
            )
        }
    });
    let hub_app = axum::Router::new().fallback(move |body: axum::body::Bytes| {
        let subscriptions = subscriptions.clone();
        async move {
            let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
            if let (Some(topic), Some(callback), Some(secret)) = (
                form.get("hub.topic"),
                form.get("hub.callback"),
                form.get("hub.secret"),
            ) {
                subscriptions
                    .lock()
                    .expect("lock")
                    .insert(topic.clone(), (callback.clone(), secret.clone()));
            }
            axum::http::StatusCode::ACCEPTED
        }
    });
    tokio::spawn(async move {
        let _ = axum::serve(feeds_listener, feeds_app).await;
    });
    tokio::spawn(async move {
        let _ = axum::serve(hub_listener, hub_app).await;
    });
    (feeds_addr, hub_addr)
}

pub async fn push_scenarios(base: &Path) -> Vec<Row> {
    tributary::init_tls();
    let subscriptions: Subscriptions = Arc::default();
    let (feeds, _hub) = servers(subscriptions.clone()).await;
    let public = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let dir = base.join("push");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let mut config = format!(
        "[store]\npath = \"data/t.db\"\n[poll]\nschedule = \"0 0 1 1 *\"\nallow_networks = [\"127.0.0.0/8\"]\n\
         [serve]\nlisten = \"{public}\"\nbase_url = \"http://{public}/\"\n\
         [[output]]\npath = \"public/all.atom\"\nlimit = 50\n"
    );
    for i in 0..FEEDS {
        config.push_str(&format!("[[feed]]\nurl = \"http://{feeds}/f/{i}.xml\"\n"));
    }
    std::fs::write(dir.join("tributary.toml"), config).expect("config");
    let mut child = Command::new(env!("CARGO_BIN_EXE_tributary"))
        .args(["--config", "tributary.toml", "run"])
        .current_dir(&dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start daemon");
    let client = reqwest::Client::new();
    // Every feed subscribed: the hub verifies each (as hubs do, after the request).
    let deadline = Instant::now() + Duration::from_secs(180);
    while subscriptions.lock().expect("lock").len() < FEEDS {
        assert!(
            Instant::now() < deadline,
            "not every feed was subscribed within 3 minutes"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let subs: Vec<(String, String)> = subscriptions.lock().expect("lock").values().cloned().collect();
    let verified = futures::stream::iter(subs.iter().map(|(callback, _)| {
        let client = &client;
        let topic = subscriptions
            .lock()
            .expect("lock")
            .iter()
            .find(|(_, (c, _))| c == callback)
            .map(|(t, _)| t.clone())
            .unwrap_or_default();
        async move {
            let mut url = url::Url::parse(callback).expect("callback");
            url.query_pairs_mut()
                .append_pair("hub.mode", "subscribe")
                .append_pair("hub.topic", &topic)
                .append_pair("hub.challenge", "bench")
                .append_pair("hub.lease_seconds", "86400");
            client
                .get(url)
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0)
        }
    }))
    .buffer_unordered(16)
    .collect::<Vec<u16>>()
    .await;
    assert!(verified.iter().all(|s| *s == 200), "verification refused");
    let stored_before = count(&dir);

    // Throughput: two 10 KB pushes per feed, 32 at a time.
    let hub = format!("http://{}/hub", _hub);
    let bodies: Vec<(String, String, String)> = (0..PUSHES_PER_FEED)
        .flat_map(|round| {
            subs.iter()
                .enumerate()
                .map(move |(i, (callback, secret))| (round, i, callback, secret))
        })
        .map(|(round, i, callback, secret)| {
            let body = atom(
                &hub,
                "t",
                &format!("p{round}-{i}"),
                &format!("Pushed {round} {i}"),
                330,
            );
            let signature = signed(secret, &body);
            (callback.clone(), body, signature)
        })
        .collect();
    let size = bodies.first().map_or(0, |b| b.1.len());
    let started = Instant::now();
    let answers = futures::stream::iter(bodies.iter().map(|(callback, body, signature)| {
        let client = &client;
        async move {
            client
                .post(callback)
                .header("content-type", "application/atom+xml")
                .header("x-hub-signature", signature)
                .body(body.clone())
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0)
        }
    }))
    .buffer_unordered(32)
    .collect::<Vec<u16>>()
    .await;
    let answered = started.elapsed();
    let taken = answers.iter().filter(|s| **s == 202).count();
    let expected = stored_before + taken as i64;
    let deadline = Instant::now() + Duration::from_secs(120);
    while count(&dir) < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let all_stored = started.elapsed();
    let stored = count(&dir) - stored_before;

    // Latency: one push at a time, until the served output shows it.
    let mut latencies = Vec::new();
    for (n, (callback, secret)) in subs.iter().take(LATENCY_SAMPLES).enumerate() {
        let title = format!("Latency probe {n}");
        let body = atom(&hub, "t", &format!("probe-{n}"), &title, 330);
        let started = Instant::now();
        let status = client
            .post(callback)
            .header("x-hub-signature", signed(secret, &body))
            .body(body)
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0);
        assert_eq!(status, 202, "probe push refused");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let page = client
                .get(format!("http://{public}/all.atom"))
                .send()
                .await
                .expect("served")
                .text()
                .await
                .unwrap_or_default();
            if page.contains(&title) {
                break;
            }
            assert!(Instant::now() < deadline, "probe {n} not served within 30 s");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        latencies.push(started.elapsed());
    }
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q).ceil() as usize).saturating_sub(1)];
    let _ = child.start_kill();
    let _ = child.wait().await;
    let _ = std::fs::remove_dir_all(&dir);
    vec![
        Row {
            scenario: format!(
                "pushes, {FEEDS} feeds × {PUSHES_PER_FEED}, {} KB each",
                size / 1024
            ),
            target: "(no target)".into(),
            wall: answered,
            entries: stored,
            note: format!(
                "{:.0} pushes/s taken (202) over HTTP, {taken} of {}; all stored after {:.2} s ({:.0}/s)",
                taken as f64 / answered.as_secs_f64(),
                answers.len(),
                all_stored.as_secs_f64(),
                stored as f64 / all_stored.as_secs_f64()
            ),
            ..Row::default()
        },
        Row {
            scenario: format!("push to page, {LATENCY_SAMPLES} pushes one at a time"),
            target: "within a second".into(),
            wall: at(0.99),
            note: format!(
                "p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
                at(0.5).as_secs_f64() * 1000.0,
                at(0.99).as_secs_f64() * 1000.0,
                latencies.last().copied().unwrap_or_default().as_secs_f64() * 1000.0
            ),
            ..Row::default()
        },
    ]
}

fn count(dir: &Path) -> i64 {
    rusqlite::Connection::open(dir.join("data/t.db"))
        .and_then(|db| db.query_row("SELECT COUNT(*) FROM entries", [], |r| r.get(0)))
        .unwrap_or(0)
}
