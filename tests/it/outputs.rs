//! Outputs people subscribe to: every format parsed back, selection, rules, cross-feed
//! duplicates, a new feed's back catalogue, byte stability, and the HTTP server.

use std::collections::HashMap;

use crate::support::{Daemon, FeedServer, Route, Workspace, rss, validate_atom};

const D1: &str = "Mon, 02 Mar 2026 10:00:00 +0000";
const D2: &str = "Tue, 03 Mar 2026 10:00:00 +0000";
const D3: &str = "Wed, 04 Mar 2026 10:00:00 +0000";

fn podcast() -> String {
    "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>Pod &amp; Cast</title><link>https://pod.example/</link>\
     <description>d</description><item><guid>ep1</guid><title>Episode &lt;b&gt;one&lt;/b&gt;</title><link>https://pod.example/1</link>\
     <pubDate>Wed, 04 Mar 2026 10:00:00 +0000</pubDate><author>host@pod.example (Host)</author><category>audio</category>\
     <description>&lt;p&gt;Show notes &lt;script&gt;alert(1)&lt;/script&gt;&lt;/p&gt;</description>\
     <enclosure url=\"https://cdn.pod.example/ep1.mp3\" length=\"12345\" type=\"audio/mpeg\"/></item></channel></rss>"
        .to_string()
}

fn read(ws: &Workspace, name: &str) -> Vec<u8> {
    std::fs::read(ws.path(&format!("public/{name}"))).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn every_format_parses_back_and_rerendering_is_byte_stable() {
    let server = FeedServer::start().await;
    server.set("/pod.xml", Route::rss(podcast()));
    server.set(
        "/blog.xml",
        Route::rss(rss(
            "blog",
            &[(
                Some("b1"),
                Some("https://blog.example/1"),
                "Blog post",
                "<p>text</p>",
                Some(D1),
            )],
        )),
    );
    let ws = Workspace::new();
    ws.write_config(&format!(
        "[store]\npath = \"data/t.db\"\n\
         [[feed]]\nurl = \"{}\"\ntags = [\"audio\"]\n[[feed]]\nurl = \"{}\"\ntitle = \"My Blog\"\n\
         [[output]]\npath = \"public/all.atom\"\ntitle = \"Planet\"\nicon = \"favicon.png\"\nlogo = \"https://planet.example/logo.png\"\n\
         [[output]]\npath = \"public/all.rss\"\nformat = \"rss\"\ntitle = \"Planet\"\nlink = \"https://planet.example/\"\n\
         logo = \"https://planet.example/logo.png\"\n\
         [[output]]\npath = \"public/all.json\"\nformat = \"json\"\ntitle = \"Planet\"\nicon = \"favicon.png\"\nlogo = \"https://planet.example/logo.png\"\n\
         [[output]]\npath = \"public/index.html\"\nformat = \"html\"\ntitle = \"Planet <Example>\"\nicon = \"favicon.png\"\n\
         [[output]]\npath = \"public/feeds.opml\"\nformat = \"opml\"\ntitle = \"Planet subscriptions\"\n",
        server.url("/pod.xml"),
        server.url("/blog.xml")
    ));
    let run = ws.poll().await;
    assert_eq!(run.code, 0, "{run:?}");

    // Atom, RSS and JSON Feed, read back by an independent parser.
    for name in ["all.atom", "all.rss", "all.json"] {
        let feed = feed_rs::parser::parse(&read(&ws, name)[..]).unwrap_or_else(|e| panic!("{name}: {e}"));
        let titles: Vec<_> = feed
            .entries
            .iter()
            .map(|e| e.title.as_ref().unwrap().content.clone())
            .collect();
        assert_eq!(titles, ["Episode one", "Blog post"], "{name}");
        let ep = &feed.entries[0];
        assert_eq!(ep.links[0].href, "https://pod.example/1", "{name}");
        let media: Vec<_> = ep.media.iter().flat_map(|m| &m.content).collect();
        let enclosure_link = ep.links.iter().find(|l| l.href.ends_with("ep1.mp3"));
        assert!(
            enclosure_link.is_some()
                || media
                    .iter()
                    .any(|c| c.url.as_ref().is_some_and(|u| u.as_str().ends_with("ep1.mp3"))),
            "{name}: the enclosure survives"
        );
    }
    validate_atom(&ws.path("public/all.atom"));

    // No address (no serve.base_url): the feeds name the page beside them, relative to
    // themselves, which a reader resolves against the feed's own URL; never this server's
    // file path.
    let atom_text = String::from_utf8(read(&ws, "all.atom")).unwrap();
    assert!(
        atom_text.contains("<link rel=\"alternate\" href=\"index.html\"/>"),
        "{atom_text}"
    );
    let json: serde_json::Value = serde_json::from_slice(&read(&ws, "all.json")).unwrap();
    assert_eq!(json["home_page_url"], "index.html");
    // Pictures: Atom's icon and logo, JSON Feed's favicon and icon, RSS's <image> (absolute,
    // with the channel's title and link), the page's favicon.
    assert!(
        atom_text.contains("<icon>favicon.png</icon>")
            && atom_text.contains("<logo>https://planet.example/logo.png</logo>"),
        "{atom_text}"
    );
    assert_eq!(json["favicon"], "favicon.png");
    assert_eq!(json["icon"], "https://planet.example/logo.png");
    let rss_feed = feed_rs::parser::parse(&read(&ws, "all.rss")[..]).unwrap();
    assert_eq!(
        rss_feed.logo.map(|l| l.uri).as_deref(),
        Some("https://planet.example/logo.png")
    );
    let page = String::from_utf8(read(&ws, "index.html")).unwrap();
    assert!(page.contains("<link rel=\"icon\" href=\"favicon.png\">"));
    for name in ["all.atom", "all.rss", "all.json", "index.html", "feeds.opml"] {
        let text = String::from_utf8(read(&ws, name)).unwrap();
        assert!(!text.contains("file://"), "{name} names a file of this server");
    }

    let rss_text = String::from_utf8(read(&ws, "all.rss")).unwrap();
    assert!(rss_text.contains(
        "<enclosure url=\"https://cdn.pod.example/ep1.mp3\" length=\"12345\" type=\"audio/mpeg\"/>"
    ));
    assert!(rss_text.contains("<guid isPermaLink=\"false\">urn:uuid:"));
    assert!(rss_text.contains(&format!(
        "<source url=\"{}\">My Blog</source>",
        server.url("/blog.xml")
    )));
    assert!(
        rss_text.contains("<pubDate>Wed, 4 Mar 2026 10:00:00 +0000</pubDate>"),
        "RFC 822 dates"
    );
    assert!(!rss_text.contains("<script"), "sanitized");

    let json: serde_json::Value = serde_json::from_slice(&read(&ws, "all.json")).unwrap();
    assert_eq!(json["version"], "https://jsonfeed.org/version/1.1");
    let item = &json["items"][0];
    assert_eq!(item["attachments"][0]["url"], "https://cdn.pod.example/ep1.mp3");
    assert_eq!(item["attachments"][0]["size_in_bytes"], 12345);
    assert_eq!(item["_tributary"]["source"]["title"], "Pod & Cast");
    assert!(
        item["date_published"]
            .as_str()
            .unwrap()
            .starts_with("2026-03-04T10:00:00")
    );
    assert_eq!(json["items"][1]["_tributary"]["source"]["title"], "My Blog");

    let html = String::from_utf8(read(&ws, "index.html")).unwrap();
    assert!(
        html.contains("<title>Planet &lt;Example&gt;</title>"),
        "titles are escaped"
    );
    assert!(html.contains(">Episode one</a>") && html.contains(">Blog post</a>"));
    assert!(html.contains("<link rel=\"alternate\" type=\"application/atom+xml\" href=\"all.atom\""));
    assert!(html.contains("Show notes") && !html.contains("<script"));
    assert!(html.contains("Wednesday, 4 March 2026"), "grouped by day");
    assert!(html.contains("My Blog") && html.contains("Subscriptions"));

    let opml = String::from_utf8(read(&ws, "feeds.opml")).unwrap();
    assert!(opml.contains("<opml version=\"2.0\">"));
    assert!(opml.contains(&format!("xmlUrl=\"{}\"", server.url("/pod.xml"))));
    // Its one tag is its folder.
    assert!(
        opml.contains("<outline text=\"audio\" title=\"audio\">"),
        "{opml}"
    );
    assert!(opml.contains("title=\"My Blog\""));

    // Nothing new: every output, the page too, keeps its exact bytes and its mtime (so its
    // ETag: readers and caches download nothing again).
    let names = ["all.atom", "all.rss", "all.json", "feeds.opml", "index.html"];
    let before: HashMap<_, _> = names
        .iter()
        .map(|n| {
            (
                n,
                (
                    read(&ws, n),
                    std::fs::metadata(ws.path(&format!("public/{n}")))
                        .unwrap()
                        .modified()
                        .unwrap(),
                ),
            )
        })
        .collect();
    let again = ws.poll().await;
    assert_eq!(again.code, 0);
    for n in names {
        let mtime = std::fs::metadata(ws.path(&format!("public/{n}")))
            .unwrap()
            .modified()
            .unwrap();
        assert_eq!(
            (read(&ws, n), mtime),
            before[&n],
            "{n} changed without new entries"
        );
    }
    let page = String::from_utf8(read(&ws, "index.html")).unwrap();
    assert!(page.contains("<p class=\"updated\">Updated <time datetime="));
}

#[tokio::test(flavor = "multi_thread")]
async fn selection_rules_and_cross_feed_duplicates() {
    let server = FeedServer::start().await;
    server.set(
        "/a.xml",
        Route::rss(rss(
            "a",
            &[
                (
                    Some("a1"),
                    Some("https://news.example/story?utm_source=a"),
                    "Big story",
                    "x",
                    Some(D1),
                ),
                (
                    Some("a2"),
                    Some("https://a.example/2"),
                    "Sponsored: buy now",
                    "x",
                    Some(D2),
                ),
            ],
        )),
    );
    server.set(
        "/b.xml",
        Route::rss(rss(
            "b",
            &[
                (
                    Some("b1"),
                    Some("https://news.example/story#top"),
                    "Big story (B's copy)",
                    "y",
                    Some(D2),
                ),
                (Some("b2"), Some("https://b.example/2"), "B only", "y", Some(D3)),
            ],
        )),
    );
    server.set(
        "/garden.xml",
        Route::rss(rss(
            "garden",
            &[
                (
                    Some("g1"),
                    Some("https://g.example/1"),
                    "Tomato season",
                    "z",
                    Some(D1),
                ),
                (Some("g2"), Some("https://g.example/2"), "Roses", "z", Some(D2)),
            ],
        )),
    );
    let ws = Workspace::new();
    ws.write_config(&format!(
        "[store]\npath = \"data/t.db\"\n\
         [[feed]]\nurl = \"{a}\"\ntitle = \"Feed A\"\ntags = [\"news\"]\n\
         [[feed]]\nurl = \"{b}\"\ntitle = \"Feed B\"\ntags = [\"news\"]\n\
         [[feed]]\nurl = \"{g}\"\ntags = [\"garden\"]\ninclude = [{{ title = \"(?i)tomato\" }}]\n\
         [[output]]\npath = \"public/news.atom\"\ntags = [\"news\"]\nexclude = [\"(?i)sponsored\"]\n\
         [[output]]\npath = \"public/all.json\"\nformat = \"json\"\n\
         [[output]]\npath = \"public/raw.atom\"\ndedupe = \"none\"\n\
         [[output]]\npath = \"public/b.atom\"\nfeeds = [\"Feed B\"]\n",
        a = server.url("/a.xml"),
        b = server.url("/b.xml"),
        g = server.url("/garden.xml"),
    ));
    let run = ws.poll().await;
    assert_eq!(run.code, 0, "{run:?}");
    // The garden feed's include rule ran before storing: only the tomato entry exists.
    let stored: Vec<String> = ws.rows().into_iter().map(|r| r.title).collect();
    assert!(stored.contains(&"Tomato season".to_string()) && !stored.contains(&"Roses".to_string()));

    let titles = |name: &str| -> Vec<String> {
        let feed = feed_rs::parser::parse(&read(&ws, name)[..]).unwrap();
        feed.entries
            .iter()
            .map(|e| e.title.as_ref().unwrap().content.clone())
            .collect()
    };
    // Tag selection, the exclude rule, and the shared story shown once, from Feed A (first seen).
    assert_eq!(titles("news.atom"), ["B only", "Big story"]);
    let news = String::from_utf8(read(&ws, "news.atom")).unwrap();
    assert!(
        news.contains("<link rel=\"via\" href=\"https://example.org/b/\" title=\"Feed B\"/>"),
        "{news}"
    );
    validate_atom(&ws.path("public/news.atom"));

    let json: serde_json::Value = serde_json::from_slice(&read(&ws, "all.json")).unwrap();
    let big = json["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["title"] == "Big story")
        .unwrap();
    assert_eq!(big["_tributary"]["source"]["title"], "Feed A");
    assert_eq!(big["_tributary"]["also_in"][0]["title"], "Feed B");
    assert_eq!(
        json["items"].as_array().unwrap().len(),
        4,
        "A2, B2, the shared story, Tomato"
    );

    // dedupe = "none" shows both copies; feeds = [...] selects by title.
    assert_eq!(titles("raw.atom").len(), 5);
    assert_eq!(titles("b.atom"), ["B only", "Big story (B's copy)"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_feed_shows_only_its_newest_entries() {
    let server = FeedServer::start().await;
    let many: Vec<(String, String, String)> = (1..=30)
        .map(|i| {
            (
                format!("e{i}"),
                format!("Entry {i}"),
                format!("Mon, {:02} Feb 2026 10:00:00 +0000", i.min(28)),
            )
        })
        .collect();
    let items: Vec<_> = many
        .iter()
        .map(|(g, t, d)| (Some(g.as_str()), None, t.as_str(), "x", Some(d.as_str())))
        .collect();
    server.set("/big.xml", Route::rss(rss("big", &items)));
    let ws = Workspace::new();
    ws.write_config(&format!(
        "[store]\npath = \"data/t.db\"\n[poll]\nnew_feed_entries = 5\n[[feed]]\nurl = \"{}\"\n\
         [[output]]\npath = \"public/all.atom\"\n",
        server.url("/big.xml")
    ));
    assert_eq!(ws.poll().await.code, 0);
    assert_eq!(ws.rows().len(), 30, "the back catalogue is stored");
    assert_eq!(
        ws.output().entries.len(),
        5,
        "but only the newest 5 reach the output"
    );

    let mut more = items.clone();
    more.push((
        Some("new"),
        None,
        "Fresh entry",
        "x",
        Some("Sun, 01 Mar 2026 10:00:00 +0000"),
    ));
    server.set("/big.xml", Route::rss(rss("big", &more)));
    assert_eq!(ws.poll().await.code, 0);
    let out = ws.output();
    assert_eq!(out.entries.len(), 6, "later entries all show");
    assert_eq!(out.entries[0].title.as_ref().unwrap().content, "Fresh entry");
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_rules_and_selections_are_config_errors_with_their_place() {
    let ws = Workspace::new();
    ws.write_config(
        "[[feed]]\nurl = \"a.xml\"\ntags = [\"x\"]\nexclude = [\"(unclosed\"]\n\
         [[output]]\npath = \"o.atom\"\ntags = [\"nope\"]\nformat = \"xml\"\n",
    );
    let run = ws.poll().await;
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains(":4:12: feed[1].exclude: invalid regular expression `(unclosed`"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains(":7:9: output[1].tags: no feed has the tag `nope`"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains(":8:10: output[1].format: unknown format `xml`"),
        "{}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_server_serves_outputs_health_and_metrics_and_pings_the_hub() {
    let server = FeedServer::start().await;
    server.set("/pod.xml", Route::rss(podcast()));
    server.set("/hub", Route::status(202, ""));
    let ws = Workspace::new();
    ws.write_config(&format!(
        "[store]\npath = \"data/t.db\"\n[poll]\nschedule = \"0 0 1 1 *\"\n\
         [serve]\nlisten = \"127.0.0.1:0\"\nbase_url = \"https://planet.example/feeds\"\nwebsub_hub = \"{hub}\"\n\
         [[feed]]\nurl = \"{feed}\"\n\
         [[output]]\npath = \"public/all.atom\"\n\
         [[output]]\npath = \"public/index.html\"\nformat = \"html\"\n",
        hub = server.url("/hub"),
        feed = server.url("/pod.xml"),
    ));
    let mut daemon = Daemon::start(&ws.path("tributary.toml"));
    let (addr, admin) = daemon.ready_serving_both().await;
    assert_ne!(addr, admin, "health and metrics are on the admin listener");
    daemon.wait_for("last round").await;
    server.wait_for_request("/hub").await;

    let base = format!("http://{addr}");
    tributary::init_tls();
    let client = reqwest::Client::builder()
        .no_gzip()
        .no_brotli()
        .no_deflate()
        .build()
        .unwrap();
    let get = |path: &str| client.get(format!("{base}{path}"));

    let r = get("/all.atom").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/atom+xml; charset=utf-8");
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    let last_modified = r.headers()["last-modified"].to_str().unwrap().to_string();
    let body = r.bytes().await.unwrap();
    assert_eq!(&body[..], &read(&ws, "all.atom")[..], "serves the file's bytes");
    let text = String::from_utf8(body.to_vec()).unwrap();
    assert!(text.contains("<link rel=\"self\" href=\"https://planet.example/feeds/all.atom\"/>"));
    assert!(text.contains(&format!("<link rel=\"hub\" href=\"{}\"/>", server.url("/hub"))));

    let r = get("/all.atom")
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    assert!(r.bytes().await.unwrap().is_empty());
    let r = get("/all.atom")
        .header("If-Modified-Since", &last_modified)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);

    let r = get("/all.atom")
        .header("Accept-Encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-encoding"], "gzip");
    assert_ne!(
        r.headers()["etag"].to_str().unwrap(),
        etag,
        "each representation has its own ETag"
    );
    let gz = r.bytes().await.unwrap();
    let mut plain = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut plain).unwrap();
    assert_eq!(plain, read(&ws, "all.atom"));

    let r = client.head(format!("{base}/all.atom")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["etag"].to_str().unwrap(), etag);
    assert!(r.bytes().await.unwrap().is_empty());

    for path in ["/", "/index.html"] {
        let r = get(path).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(r.headers()["content-type"], "text/html; charset=utf-8");
        let csp = r.headers()["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("default-src 'none'") && !csp.contains("script-src"),
            "{csp}"
        );
    }
    for path in [
        "/tributary.toml",
        "/../tributary.toml",
        "/%2e%2e/tributary.toml",
        "/public/all.atom",
        "/data/t.db",
    ] {
        assert_eq!(get(path).send().await.unwrap().status(), 404, "{path}");
    }
    assert_eq!(
        get(&format!("/{}", "a".repeat(2000)))
            .send()
            .await
            .unwrap()
            .status(),
        414
    );
    assert_eq!(
        client
            .post(format!("{base}/all.atom"))
            .send()
            .await
            .unwrap()
            .status(),
        405
    );

    // The public side serves outputs only; the operator's side health and metrics.
    assert_eq!(get("/healthz").send().await.unwrap().status(), 404);
    assert_eq!(get("/metrics").send().await.unwrap().status(), 404);
    let admin_get = |path: &str| client.get(format!("http://{admin}{path}"));
    assert_eq!(admin_get("/all.atom").send().await.unwrap().status(), 404);
    assert_eq!(admin_get("/healthz?strict").send().await.unwrap().status(), 200);
    let get = admin_get;
    let health: serde_json::Value =
        serde_json::from_slice(&get("/healthz").send().await.unwrap().bytes().await.unwrap()).unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["feeds"][0]["url"], server.url("/pod.xml"));
    assert_eq!(health["feeds"][0]["ok"], true);
    let metrics = get("/metrics").send().await.unwrap().text().await.unwrap();
    assert!(
        metrics.contains("tributary_fetches_total{result=\"stored\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("tributary_entries_stored_total{kind=\"new\"} 1"));
    assert!(metrics.contains("tributary_feeds_failing 0"));
    for needed in [
        "tributary_build_info{version=",
        "tributary_last_round_timestamp_seconds ",
        "tributary_fetch_duration_seconds_bucket{le=\"+Inf\"} 1",
        "tributary_fetch_duration_seconds_count 1",
        "process_resident_memory_bytes ",
        "process_cpu_seconds_total ",
        "process_start_time_seconds ",
    ] {
        assert!(metrics.contains(needed), "{needed} in:\n{metrics}");
    }
    assert!(
        !metrics.contains("tributary_last_round_timestamp_seconds 0\n"),
        "{metrics}"
    );

    // The hub heard about the Atom output (a feed) each time it changed (at start, empty, and
    // after the first round), never about the HTML page.
    let pings = server.requests("/hub");
    assert!(!pings.is_empty());
    for ping in &pings {
        let form = String::from_utf8(ping.body.clone()).unwrap();
        assert_eq!(
            form,
            "hub.mode=publish&hub.url=https%3A%2F%2Fplanet.example%2Ffeeds%2Fall.atom"
        );
        assert_eq!(ping.headers["content-type"], "application/x-www-form-urlencoded");
    }
    daemon.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(daemon.exit_code().await, 0);
}

/// A theme starts from `tributary template`: that file, named as the template, renders the
/// same page as the built-in one.
#[tokio::test(flavor = "multi_thread")]
async fn the_printed_template_renders_the_built_in_page() {
    let server = FeedServer::start().await;
    server.set("/pod.xml", Route::rss(podcast()));
    let ws = Workspace::new();
    let printed = ws.tributary(&["template"]).await;
    assert_eq!(printed.code, 0, "{}", printed.stderr);
    assert!(printed.stdout.contains("days "), "the variables are documented");
    ws.write("theme/page.html", printed.stdout.as_bytes());
    ws.write_config(&format!(
        "[store]\npath = \"data/t.db\"\n[[feed]]\nurl = \"{}\"\n\n\
         [[output]]\npath = \"public/index.html\"\nformat = \"html\"\n\n\
         [[output]]\npath = \"public/themed.html\"\nformat = \"html\"\ntemplate = \"theme/page.html\"\n",
        server.url("/pod.xml")
    ));
    assert_eq!(ws.poll().await.code, 0);
    let built_in = read(&ws, "index.html");
    assert!(String::from_utf8_lossy(&built_in).contains("Episode"));
    assert_eq!(read(&ws, "themed.html"), built_in);
}

/// A rule means the same at feed level (judged before storing) and at output level (judged at
/// render): both see a body as its plain text, so markup attributes and script never match,
/// entities match as the characters they stand for, and tags do not split words.
#[tokio::test(flavor = "multi_thread")]
async fn a_rule_sees_the_same_text_at_feed_and_output_level() {
    let server = FeedServer::start().await;
    // Descriptions are HTML, escaped into the RSS text as publishers do.
    let items: &[(&str, &str)] = &[
        ("Handler", "&lt;p onclick=\"track()\"&gt;Cats&lt;/p&gt;"),
        ("Entity", "&lt;p&gt;Tom &amp;amp; Jerry&lt;/p&gt;"),
        ("Markup", "&lt;p&gt;&lt;b&gt;bold&lt;/b&gt;face&lt;/p&gt;"),
        (
            "Script",
            "&lt;script&gt;secret()&lt;/script&gt;&lt;p&gt;shown&lt;/p&gt;",
        ),
        ("Reference", "&lt;p&gt;caf&amp;#233; society&lt;/p&gt;"),
        ("Plain", "&lt;p&gt;dogs&lt;/p&gt;"),
    ];
    let rows: Vec<(String, String)> = items
        .iter()
        .enumerate()
        .map(|(i, (t, _))| (format!("id{i}"), format!("https://r.example/{t}")))
        .collect();
    let entries: Vec<_> = items
        .iter()
        .zip(&rows)
        .map(|((t, d), (g, l))| (Some(g.as_str()), Some(l.as_str()), *t, *d, Some(D1)))
        .collect();
    server.set("/r.xml", Route::rss(rss("rules", &entries)));
    let rules = "exclude = [{ content = \"onclick\" }, { content = \"Tom & Jerry\" }, \
                 { content = \"boldface\" }, { content = \"secret\" }, { content = \"café\" }]";
    let kept = |at_feed: bool| {
        let server = &server;
        async move {
            let ws = Workspace::new();
            let (feed_rules, output_rules) = if at_feed { (rules, "") } else { ("", rules) };
            ws.write_config(&format!(
                "[store]\npath = \"data/t.db\"\n[[feed]]\nurl = \"{}\"\n{feed_rules}\n\
                 [[output]]\npath = \"public/all.atom\"\n{output_rules}\n",
                server.url("/r.xml")
            ));
            let run = ws.poll().await;
            assert_eq!(run.code, 0, "{run:?}");
            let feed = feed_rs::parser::parse(&read(&ws, "all.atom")[..]).unwrap();
            let mut titles: Vec<String> = feed
                .entries
                .iter()
                .map(|e| e.title.as_ref().unwrap().content.clone())
                .collect();
            titles.sort();
            titles
        }
    };
    let expected = ["Handler", "Plain", "Script"];
    assert_eq!(kept(true).await, expected, "feed-level rules");
    assert_eq!(kept(false).await, expected, "output-level rules");
}

/// Distinct stories that share one guid and one link (a feed proxy's single address, as a real
/// feed in our corpus has it) are distinct entries in the store and in every output, and a
/// story in another feed with that link is not taken for any of them.
#[tokio::test(flavor = "multi_thread")]
async fn stories_sharing_a_guid_and_a_link_are_all_shown() {
    let server = FeedServer::start().await;
    let link = "https://proxy.example/~r/spotlight/";
    let item = |title: &str, date: &str| {
        format!(
            "<item><title>{title}</title><link>{link}</link><guid isPermaLink=\"false\">https://school.example/spotlight/</guid>\
             <description>{title}, told.</description><pubDate>{date}</pubDate></item>"
        )
    };
    server.set(
        "/spotlight.xml",
        Route::rss(format!(
            "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>Spotlight</title><link>https://school.example/</link>{}{}{}</channel></rss>",
            item("Single-session schools", "Fri, 25 Sep 2009 10:00:00 +0800"),
            item("Work plan seminar", "Thu, 17 Sep 2009 15:33:15 +0800"),
            item("School awards", "Thu, 10 Sep 2009 17:00:00 +0800"),
        )),
    );
    server.set(
        "/other.xml",
        Route::rss(rss(
            "other",
            &[(Some("o1"), Some(link), "Elsewhere", "x", Some(D1))],
        )),
    );
    let ws = Workspace::new();
    ws.config_with_feeds(&[server.url("/spotlight.xml"), server.url("/other.xml")]);
    assert_eq!(ws.poll().await.code, 0);
    let mut titles: Vec<String> = ws
        .output()
        .entries
        .iter()
        .map(|e| e.title.as_ref().unwrap().content.clone())
        .collect();
    titles.sort();
    assert_eq!(
        titles,
        [
            "Elsewhere",
            "School awards",
            "Single-session schools",
            "Work plan seminar"
        ]
    );
}
