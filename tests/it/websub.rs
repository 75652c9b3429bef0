//! Feeds that push, as deployed: `tributary run` with a public address subscribes to the hub a
//! feed names (in its document or its `Link` headers), answers the hub's verification of
//! intent, takes signed pushes as bodies (no fetch), drops forged and oversized ones, falls
//! back to polling when denied, renews before the lease ends and unsubscribes a feed removed
//! from the config. The hub is this file's: it records the requests the daemon sends it (a
//! loopback server) and calls the daemon's callbacks itself.

use std::time::{Duration, Instant};

use hmac::{KeyInit, Mac};

use crate::support::{Daemon, FeedServer, Route, Workspace};

/// A subscription request as the hub received it.
#[derive(Debug, Clone)]
struct Asked {
    mode: String,
    topic: String,
    callback: String,
    secret: Option<String>,
    lease: Option<u64>,
}

/// The tests' hub: takes (un)subscription requests with 202, and does what a hub does next
/// when the test says so.
struct Hub {
    server: FeedServer,
    client: reqwest::Client,
}

impl Hub {
    async fn start(ip: &str) -> Hub {
        let server = FeedServer::start_at(ip).await;
        server.set("/hub", Route::status(202, ""));
        tributary::init_tls();
        Hub {
            server,
            client: reqwest::Client::new(),
        }
    }

    fn url(&self) -> String {
        self.server.url("/hub")
    }

    fn asked(&self) -> Vec<Asked> {
        self.server
            .requests("/hub")
            .iter()
            .map(|seen| {
                let form: std::collections::HashMap<String, String> =
                    url::form_urlencoded::parse(&seen.body).into_owned().collect();
                Asked {
                    mode: form["hub.mode"].clone(),
                    topic: form["hub.topic"].clone(),
                    callback: form["hub.callback"].clone(),
                    secret: form.get("hub.secret").cloned(),
                    lease: form.get("hub.lease_seconds").map(|l| l.parse().unwrap()),
                }
            })
            .collect()
    }

    /// Waits for the `n`-th request (1-based) and returns it.
    async fn request(&self, n: usize) -> Asked {
        self.server.wait_for_requests("/hub", n).await;
        self.asked()[n - 1].clone()
    }

    /// Verifies intent as a hub does: GET the callback with a challenge; the status and body.
    async fn verify(&self, callback: &str, mode: &str, topic: &str, lease: u64) -> (u16, String) {
        let mut url = url::Url::parse(callback).unwrap();
        url.query_pairs_mut()
            .append_pair("hub.mode", mode)
            .append_pair("hub.topic", topic)
            .append_pair("hub.challenge", "c4a11en9e-42")
            .append_pair("hub.lease_seconds", &lease.to_string());
        let r = self.client.get(url).send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    async fn deny(&self, callback: &str, topic: &str) -> u16 {
        let mut url = url::Url::parse(callback).unwrap();
        url.query_pairs_mut()
            .append_pair("hub.mode", "denied")
            .append_pair("hub.topic", topic)
            .append_pair("hub.reason", "not on this hub's list");
        self.client.get(url).send().await.unwrap().status().as_u16()
    }

    /// Pushes `body` to `callback`, signed with `secret` by `method` (or with the header given).
    async fn push(&self, callback: &str, body: &str, signature: &str) -> u16 {
        self.client
            .post(callback)
            .header("content-type", "application/atom+xml")
            .header("x-hub-signature", signature)
            .body(body.to_string())
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }
}

fn signed(method: &str, secret: &str, body: &str) -> String {
    fn mac<M: Mac + KeyInit>(secret: &str, body: &str) -> String {
        let mut mac = <M as KeyInit>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(body.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
    let hex = match method {
        "sha1" => mac::<hmac::Hmac<sha1::Sha1>>(secret, body),
        "sha256" => mac::<hmac::Hmac<sha2::Sha256>>(secret, body),
        "sha384" => mac::<hmac::Hmac<sha2::Sha384>>(secret, body),
        _ => mac::<hmac::Hmac<sha2::Sha512>>(secret, body),
    };
    format!("{method}={hex}")
}

fn atom(links: &str, entries: &[(&str, &str)]) -> String {
    let mut s = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\">\
         <title>Pushed news</title><id>urn:pushed</id><updated>2026-12-01T00:00:00Z</updated>{links}"
    );
    for (id, title) in entries {
        s.push_str(&format!(
            "<entry><id>urn:{id}</id><title>{title}</title><link href=\"https://news.example/{id}\"/>\
             <updated>2026-12-01T10:00:00Z</updated><summary>{title} text</summary></entry>"
        ));
    }
    s.push_str("</feed>");
    s
}

/// A free port on `ip`: the daemon's public address must be known to write its base_url.
fn free_port(ip: &str) -> u16 {
    std::net::TcpListener::bind((ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn config(public: &str, feeds: &[String]) -> String {
    // The admin side on the same address, any port (its default, the next port on 127.0.0.1,
    // may be taken).
    let admin = format!("{}:0", public.split(':').next().unwrap());
    let mut s = format!(
        "[store]\npath = \"data/t.db\"\n\
         [poll]\nallow_networks = [\"127.0.0.0/8\"]\nmax_body = \"64KiB\"\n\
         [serve]\nlisten = \"{public}\"\nbase_url = \"http://{public}/\"\nadmin_listen = \"{admin}\"\n\
         [[output]]\npath = \"public/all.atom\"\n"
    );
    for url in feeds {
        s.push_str(&format!("[[feed]]\nurl = \"{url}\"\n"));
    }
    s
}

/// Asks for the served output until `check` holds (at most 10 s).
async fn served_until(public: &str, mut check: impl FnMut(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let page = reqwest::get(format!("http://{public}/all.atom"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if check(&page) {
            return page;
        }
        assert!(Instant::now() < deadline, "not served within 10 s:\n{page}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A feed (`/f.xml` on 127.0.0.2, one entry) whose document names the hub (on 127.0.0.3) and
/// itself as the topic.
async fn feed_naming_its_hub() -> (FeedServer, Hub, String) {
    let feeds = FeedServer::start_at("127.0.0.2").await;
    let hub = Hub::start("127.0.0.3").await;
    let topic = feeds.url("/f.xml");
    feeds.set(
        "/f.xml",
        Route::feed(
            "application/atom+xml",
            atom(
                &format!(
                    "<link rel=\"hub\" href=\"{}\"/><link rel=\"self\" href=\"{topic}\"/>",
                    hub.url()
                ),
                &[("one", "Polled one")],
            ),
        ),
    );
    (feeds, hub, topic)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_feed_naming_its_hub_is_subscribed_verified_and_pushed_without_a_fetch() {
    let (feeds, hub, topic) = feed_naming_its_hub().await;
    let public = format!("127.0.0.5:{}", free_port("127.0.0.5"));
    let ws = Workspace::new();
    ws.write_config(&config(&public, std::slice::from_ref(&topic)));
    let mut daemon = Daemon::start(&ws.path("tributary.toml"));
    let (_, admin) = daemon.ready_serving_both().await;

    // Subscribed once the feed's first poll named the hub: our own secret, a lease, a
    // callback under the public address that no one could guess.
    let asked = hub.request(1).await;
    assert_eq!(asked.mode, "subscribe");
    assert_eq!(asked.topic, topic);
    assert_eq!(asked.lease, Some(7 * 24 * 3600));
    let secret = asked.secret.clone().unwrap();
    assert!(secret.len() >= 32, "{secret}");
    assert!(
        asked.callback.starts_with(&format!("http://{public}/websub/")),
        "{asked:?}"
    );
    // Only a topic and mode we asked for is confirmed.
    assert_eq!(
        hub.verify(&asked.callback, "subscribe", "http://other.example/", 600)
            .await
            .0,
        404
    );
    assert_eq!(
        hub.verify(&asked.callback, "unsubscribe", &topic, 600).await.0,
        404
    );
    let forged = asked.callback.replace("/websub/", "/websub/9");
    assert_eq!(hub.verify(&forged, "subscribe", &topic, 600).await.0, 404);
    assert_eq!(
        hub.verify(&asked.callback, "subscribe", &topic, 3600).await,
        (200, "c4a11en9e-42".to_string())
    );
    served_until(&public, |p| p.contains("Polled one")).await;

    // A push, signed as the hub chose: stored and served, with no fetch of the feed.
    let fetched = feeds.requests("/f.xml").len();
    let pushed = atom("", &[("two", "Pushed two")]);
    let started = Instant::now();
    assert_eq!(
        hub.push(&asked.callback, &pushed, &signed("sha256", &secret, &pushed))
            .await,
        202
    );
    served_until(&public, |p| p.contains("Pushed two")).await;
    let took = started.elapsed();
    assert_eq!(feeds.requests("/f.xml").len(), fetched, "a push is not fetched");
    // The other methods WebSub names are taken too; the same body again changes nothing.
    let third = atom("", &[("three", "Pushed three")]);
    assert_eq!(
        hub.push(&asked.callback, &third, &signed("sha1", &secret, &third))
            .await,
        202
    );
    assert_eq!(
        hub.push(&asked.callback, &third, &signed("sha512", &secret, &third))
            .await,
        202
    );
    served_until(&public, |p| p.contains("Pushed three")).await;

    // Forged, unsigned, for a callback never made, too large: answered, never stored.
    let forged_body = atom("", &[("evil", "Forged four")]);
    assert_eq!(
        hub.push(
            &asked.callback,
            &forged_body,
            &signed("sha256", "not the secret", &forged_body)
        )
        .await,
        202,
        "a bad signature is answered 2xx and dropped"
    );
    assert_eq!(hub.push(&asked.callback, &forged_body, "").await, 202);
    assert_eq!(
        hub.push(&forged, &pushed, &signed("sha256", &secret, &pushed))
            .await,
        404
    );
    // Over poll.max_body by its Content-Length: refused before a byte of it is read. (Sent by
    // hand: a client still writing the body when the answer comes may see the connection
    // close under it instead of the answer.)
    let huge = atom("", &[("big", &"x".repeat(70_000))]);
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let path = asked.callback.split(public.as_str()).nth(1).unwrap();
        let mut stream = tokio::net::TcpStream::connect(&public).await.unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {public}\r\nContent-Type: application/atom+xml\r\n\
             X-Hub-Signature: {}\r\nContent-Length: {}\r\n\r\n",
            signed("sha256", &secret, &huge),
            huge.len()
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let mut answer = vec![0u8; 1024];
        let n = stream.read(&mut answer).await.unwrap();
        let answer = String::from_utf8_lossy(&answer[..n]);
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    }
    // Too large once read (no length said, sent in chunks): refused all the same.
    let unsaid = reqwest::Body::wrap_stream(futures::stream::iter(
        huge.as_bytes()
            .chunks(8192)
            .map(|c| Ok::<_, std::io::Error>(c.to_vec()))
            .collect::<Vec<_>>(),
    ));
    let chunked = hub
        .client
        .post(&asked.callback)
        .header("x-hub-signature", signed("sha256", &secret, &huge))
        .body(unsaid)
        .send()
        .await;
    // The answer, or the connection closed under the rest of the body: never taken.
    if let Ok(r) = &chunked {
        assert_eq!(r.status(), 413);
    }
    // Signed, but not a feed: dropped; the feed is not failing for it.
    let garbage = "<html><body>not a feed</body></html>";
    assert_eq!(
        hub.push(&asked.callback, garbage, &signed("sha256", &secret, garbage))
            .await,
        202
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !daemon.stderr().contains("a pushed body could not be read") {
        assert!(Instant::now() < deadline, "{}", daemon.stderr());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let metrics = reqwest::get(format!("http://{admin}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "tributary_websub_pushes_total{result=\"taken\"} 4",
        "tributary_websub_pushes_total{result=\"dropped\"} 4",
        "tributary_websub_pushes_total{result=\"refused\"} 0",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in\n{metrics}");
    }
    daemon.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(daemon.exit_code().await, 0);
    let page = std::fs::read_to_string(ws.path("public/all.atom")).unwrap();
    assert!(!page.contains("Forged four"), "{page}");
    assert_eq!(feeds.requests("/f.xml").len(), fetched, "pushes are not fetched");

    // Visible: the subscription, its pushes and the dropped ones; an entry that arrived by push.
    let shown = ws.tributary(&["feeds", "--json"]).await;
    let rows: serde_json::Value = serde_json::from_str(&shown.stdout).unwrap();
    let websub = &rows[0]["websub"];
    assert_eq!(websub["state"], "active", "{websub}");
    assert_eq!(
        rows[0]["consecutive_failures"], 0,
        "an unreadable push is no failure of the feed"
    );
    assert_eq!(websub["hub"], hub.url());
    assert_eq!(websub["pushes"], 4, "{websub}");
    assert_eq!(websub["dropped"], 4, "{websub}");
    assert!(websub["active_until"].is_string(), "{websub}");
    let text = ws.tributary(&["feeds"]).await.stdout;
    assert!(
        text.contains(&format!("websub {topic}: hub {}, active until", hub.url())),
        "{text}"
    );
    let explained = ws
        .tributary(&["explain", "https://news.example/two"])
        .await
        .stdout;
    assert!(
        explained.contains("arrived: pushed by its feed's WebSub hub"),
        "{explained}"
    );
    let polled = ws
        .tributary(&["explain", "https://news.example/one"])
        .await
        .stdout;
    assert!(!polled.contains("arrived: pushed"), "{polled}");
    eprintln!("push to served output: {took:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn hubs_in_link_headers_denials_renewals_and_removal() {
    let feeds = FeedServer::start_at("127.0.0.2").await;
    let hub = Hub::start("127.0.0.3").await;
    let (a, b) = (feeds.url("/a.xml"), feeds.url("/b.xml"));
    // c's hub answers badly: the subscription's error, never the feed's.
    let c = feeds.url("/c.xml");
    hub.server.set("/broken", Route::status(500, "down"));
    feeds.set(
        "/c.xml",
        Route::feed(
            "application/atom+xml",
            atom(
                &format!("<link rel=\"hub\" href=\"{}\"/>", hub.server.url("/broken")),
                &[("c", "C")],
            ),
        ),
    );
    for (path, url) in [("/a.xml", &a), ("/b.xml", &b)] {
        // Named only by the response's Link headers (WebSub's first place to look).
        feeds.set(
            path,
            Route::feed("application/atom+xml", atom("", &[(&path[1..2], "Entry")])).header(
                "link",
                &format!("<{}>; rel=\"hub\", <{url}>; rel=\"self\"", hub.url()),
            ),
        );
    }
    let public = format!("127.0.0.6:{}", free_port("127.0.0.6"));
    let ws = Workspace::new();
    ws.write_config(&config(&public, &[a.clone(), b.clone(), c.clone()]));
    let mut daemon = Daemon::start(&ws.path("tributary.toml"));
    let (_, admin) = daemon.ready_serving_both().await;
    hub.request(2).await;
    hub.server.wait_for_requests("/broken", 1).await;
    let asked = hub.asked();
    let of = |topic: &str| asked.iter().find(|r| r.topic == topic).cloned().unwrap();
    let (sub_a, sub_b) = (of(&a), of(&b));
    // b's hub denies it: b is polled on its schedule. a is verified with a lease of 4 s, so
    // it is renewed (a tenth of the lease ahead) before it ends.
    assert_eq!(hub.deny(&sub_b.callback, &b).await, 200);
    assert_eq!(hub.verify(&sub_a.callback, "subscribe", &a, 4).await.0, 200);
    let renewal = hub.request(3).await;
    assert_eq!(
        (renewal.mode.as_str(), renewal.topic.as_str()),
        ("subscribe", a.as_str())
    );
    assert_eq!(renewal.callback, sub_a.callback, "renewed at the same callback");
    assert_eq!(hub.verify(&renewal.callback, "subscribe", &a, 3600).await.0, 200);
    let rows: serde_json::Value =
        serde_json::from_str(&ws.tributary(&["feeds", "--json"]).await.stdout).unwrap();
    let row = |url: &str| {
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["url"] == url)
            .unwrap()
            .clone()
    };
    assert_eq!(row(&a)["websub"]["state"], "active");
    let denied = row(&b)["websub"].clone();
    assert_eq!(denied["state"], "denied", "{denied}");
    assert_eq!(denied["error"], "not on this hub's list");
    assert!(row(&a)["websub"]["active_until"].is_string());
    assert!(denied["active_until"].is_null());
    let failed = row(&c);
    assert_eq!(failed["websub"]["state"], "failed", "{failed}");
    assert!(
        failed["websub"]["error"].as_str().unwrap().contains("HTTP 500"),
        "{failed}"
    );
    assert_eq!(failed["websub"]["hub"], hub.server.url("/broken"));
    assert_eq!(
        failed["consecutive_failures"], 0,
        "the feed itself is fine: {failed}"
    );
    // Its topic: the feed's own address, as it names no self link.
    let healthz = reqwest::get(format!("http://{admin}/healthz"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let healthz: serde_json::Value = serde_json::from_str(&healthz).unwrap();
    let listed: Vec<&str> = healthz["websub"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["state"].as_str().unwrap())
        .collect();
    assert_eq!(listed.len(), 3, "{healthz}");
    assert!(
        listed.contains(&"failed") && listed.contains(&"denied"),
        "{healthz}"
    );

    // a leaves the config: its hub is asked to stop, and confirming it ends the subscription.
    ws.write_config(&config(&public, std::slice::from_ref(&b)));
    daemon.signal(nix::sys::signal::Signal::SIGHUP);
    let stop = hub.request(4).await;
    assert_eq!(
        (stop.mode.as_str(), stop.topic.as_str()),
        ("unsubscribe", a.as_str())
    );
    assert_eq!(
        hub.verify(&stop.callback, "unsubscribe", &a, 0).await,
        (200, "c4a11en9e-42".to_string())
    );
    // Gone: a push to its old callback is refused, and the hub may stop sending.
    let body = atom("", &[("late", "Late")]);
    let secret = sub_a.secret.unwrap();
    assert_eq!(
        hub.push(&stop.callback, &body, &signed("sha256", &secret, &body))
            .await,
        410
    );
    daemon.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(daemon.exit_code().await, 0);
}

/// Two nodes of a cluster behind one public address: the feed is subscribed once, a push that
/// lands on either node is stored once, and one node renews.
#[tokio::test(flavor = "multi_thread")]
async fn in_a_cluster_a_push_is_stored_once_whichever_node_takes_it() {
    let Some(db) = crate::support::require_postgres("websub_cluster").await else {
        return;
    };
    let (_feeds, hub, topic) = feed_naming_its_hub().await;
    // The hubs see one public address (a load balancer's); each node listens on its own.
    let public = format!("127.0.0.9:{}", free_port("127.0.0.9"));
    let addresses = [
        format!("127.0.0.10:{}", free_port("127.0.0.10")),
        format!("127.0.0.11:{}", free_port("127.0.0.11")),
    ];
    let dirs: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut nodes = Vec::new();
    for (n, (dir, listen)) in dirs.iter().zip(&addresses).enumerate() {
        let path = dir.path().join("tributary.toml");
        crate::support::write_file(
            &path,
            format!(
                "[store]\nurl = \"{}\"\n[node]\nname = \"node{n}\"\n\
                 [poll]\nallow_networks = [\"127.0.0.0/8\"]\n\
                 [serve]\nlisten = \"{listen}\"\nbase_url = \"http://{public}/\"\n\
                 admin_listen = \"{}:0\"\n\
                 [[feed]]\nurl = \"{topic}\"\n[[output]]\npath = \"out/all.atom\"\n",
                db.url(),
                listen.split(':').next().unwrap()
            )
            .as_bytes(),
        );
        nodes.push(Daemon::start(&path));
    }
    for node in &mut nodes {
        node.ready_serving().await;
    }
    let asked = hub.request(1).await;
    let secret = asked.secret.clone().unwrap();
    let path = asked.callback.split(&public).nth(1).unwrap().to_string();
    // The hub's verification reaches one node; the subscription is the cluster's.
    let on = |node: usize| format!("http://{}{path}", addresses[node]);
    assert_eq!(
        hub.verify(&on(1), "subscribe", &topic, 4).await.0,
        200,
        "{:?} {}",
        hub.asked(),
        nodes[1].stderr()
    );
    // The same push, delivered to both nodes (a hub retrying through the load balancer).
    let pushed = atom("", &[("two", "Pushed two")]);
    let signature = signed("sha256", &secret, &pushed);
    assert_eq!(hub.push(&on(0), &pushed, &signature).await, 202);
    assert_eq!(hub.push(&on(1), &pushed, &signature).await, 202);
    // The lease of 4 s is renewed before it ends, by one node.
    let renewal = hub.request(2).await;
    assert_eq!(renewal.mode, "subscribe");
    assert_eq!(
        renewal.callback, asked.callback,
        "a renewal, at the same callback"
    );
    assert_eq!(hub.verify(&on(0), "subscribe", &topic, 3600).await.0, 200);
    for node in &nodes {
        node.signal(nix::sys::signal::Signal::SIGTERM);
    }
    for node in &mut nodes {
        assert_eq!(node.exit_code().await, 0);
    }
    let subscribes = hub.asked().iter().filter(|a| a.mode == "subscribe").count();
    assert_eq!(
        subscribes,
        2,
        "subscribed once and renewed once: {:?}",
        hub.asked()
    );
    let stored = db.query_rows("SELECT e.key, e.pushed FROM entries e ORDER BY e.key", |r| {
        (r.get::<_, String>(0), r.get::<_, Option<bool>>(1))
    });
    let pushed_rows: Vec<_> = stored.iter().filter(|(k, _)| k.contains("two")).collect();
    assert_eq!(pushed_rows.len(), 1, "stored once: {stored:?}");
    assert_eq!(pushed_rows[0].1, Some(true));
}
