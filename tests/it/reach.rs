//! Reach as deployed: `tributary run` serving an output to aggregators that state their
//! subscribers and to direct readers; `/metrics` and `feeds` give the exact counts.

use crate::support::{Daemon, FeedServer, Route, Workspace, rss};

#[tokio::test(flavor = "multi_thread")]
async fn readers_are_counted_by_what_aggregators_state_and_by_distinct_direct_clients() {
    let feeds = FeedServer::start_at("127.0.0.2").await;
    feeds.set(
        "/f.xml",
        Route::rss(rss(
            "News",
            &[(
                Some("1"),
                None,
                "One",
                "text",
                Some("Mon, 02 Mar 2026 10:00:00 +0000"),
            )],
        )),
    );
    let ws = Workspace::new();
    ws.write_config(&format!(
        "[store]\npath = \"data/t.db\"\n[poll]\nschedule = \"0 0 1 1 *\"\n\
         [serve]\nlisten = \"127.0.0.1:0\"\n\
         [[feed]]\nurl = \"{}\"\n\
         [[output]]\npath = \"public/all.atom\"\n\
         [[output]]\npath = \"public/index.html\"\nshow_readers = true\n",
        feeds.url("/f.xml")
    ));
    let mut daemon = Daemon::start(&ws.path("tributary.toml"));
    let (public, admin) = daemon.ready_serving_both().await;
    tributary::init_tls();
    let from = |ip: &str| {
        reqwest::Client::builder()
            .local_address(ip.parse::<std::net::IpAddr>().unwrap())
            .build()
            .unwrap()
    };
    let (here, there) = (from("127.0.0.1"), from("127.0.0.9"));
    let get = |client: &reqwest::Client, path: &str, agent: &str| {
        client
            .get(format!("http://{public}{path}"))
            .header("user-agent", agent)
            .send()
    };
    let replay = [
        "Feedly/1.0 (+http://www.feedly.com/fetcher.html; 312 subscribers; feed-id=a1)",
        // The same feed id's new figure replaces the old one.
        "Feedly/1.0 (+http://www.feedly.com/fetcher.html; 315 subscribers; feed-id=a1)",
        "Feedly/1.0 (+http://www.feedly.com/fetcher.html; 10 subscribers; feed-id=b2)",
        "Inoreader/1.0 (+http://www.inoreader.com/feed-fetcher; 45 subscribers; )",
        "NewsBlur Feed Fetcher - 12 subscribers - http://www.newsblur.com/site/6177521/news (Mozilla/5.0)",
        "Feedbin feed-id:1234567 - 56 subscribers",
        "theoldreader.com (7 subscribers; feed-id=5f2a)",
        "theoldreader.com (8 subscribers; feed-id=5f2a)",
    ];
    for agent in replay {
        assert_eq!(get(&here, "/all.atom", agent).await.unwrap().status(), 200);
    }
    // Direct readers: distinct (address, agent) pairs; the same pair again is one reader.
    for (client, agent) in [
        (&here, "NetNewsWire (RSS Reader; https://netnewswire.com/)"),
        (&here, "NetNewsWire (RSS Reader; https://netnewswire.com/)"),
        (&here, "newsboat/2.36.0 (Linux x86_64)"),
        (&there, "newsboat/2.36.0 (Linux x86_64)"),
    ] {
        assert_eq!(get(client, "/all.atom", agent).await.unwrap().status(), 200);
    }
    // A page view is the page's reader; a miss is nobody's.
    assert_eq!(
        get(&here, "/", "Mozilla/5.0 Firefox/133.0")
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(get(&here, "/nothing.atom", "curl/8").await.unwrap().status(), 404);

    let metrics = here
        .get(format!("http://{admin}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let readers: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("tributary_output_readers{"))
        .collect();
    assert_eq!(
        readers,
        [
            "tributary_output_readers{output=\"all.atom\",via=\"direct\"} 3",
            "tributary_output_readers{output=\"all.atom\",via=\"feedbin\"} 56",
            "tributary_output_readers{output=\"all.atom\",via=\"feedly\"} 325",
            "tributary_output_readers{output=\"all.atom\",via=\"inoreader\"} 45",
            "tributary_output_readers{output=\"all.atom\",via=\"newsblur\"} 12",
            "tributary_output_readers{output=\"all.atom\",via=\"theoldreader\"} 8",
            "tributary_output_readers{output=\"index.html\",via=\"direct\"} 1",
        ],
        "{metrics}"
    );
    daemon.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(daemon.exit_code().await, 0);
    // Kept in the store: `feeds` reads them after the daemon is gone.
    let shown = ws.tributary(&["feeds"]).await;
    assert!(
        shown.stdout.contains(
            "readers of all.atom: 449 readers (325 via feedly, 56 via feedbin, 45 via inoreader, \
             12 via newsblur, 8 via theoldreader, 3 direct)"
        ),
        "{}",
        shown.stdout
    );
    // The page shows each subscribe link's readers, when asked to.
    let run = ws.tributary(&["render"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let page = std::fs::read_to_string(ws.path("public/index.html")).unwrap();
    assert!(
        page.contains(
            "type=\"application/atom+xml\">Atom</a> <small class=\"readers\">(449 readers)</small>"
        ),
        "{page}"
    );
    // With announce_readers, publishers hear of them: both outputs carry the feed.
    let before = feeds.requests("/f.xml");
    let agent = |seen: &crate::support::Seen| seen.headers["user-agent"].to_str().unwrap().to_string();
    assert!(!agent(&before[0]).contains("subscribers"), "off by default");
    let config = std::fs::read_to_string(ws.path("tributary.toml")).unwrap();
    ws.write_config(&config.replace("[poll]\n", "[poll]\nannounce_readers = true\n"));
    let run = ws.tributary(&["poll", "--force"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let told = agent(feeds.requests("/f.xml").last().unwrap());
    assert!(told.starts_with("tributary/"), "{told}");
    assert!(told.ends_with("; 450 subscribers)"), "{told}");
    // No address is kept as it was.
    let db = std::fs::read(ws.path("data/t.db")).unwrap();
    let wal = std::fs::read(ws.path("data/t.db-wal")).unwrap_or_default();
    for bytes in [db, wal] {
        assert!(!String::from_utf8_lossy(&bytes).contains("127.0.0.9"));
    }
}
