//! The hostile web: slow, endless, oversized, malicious and misbehaving feeds and servers.
//! Every case is recorded on its feed only; the other feeds are stored; nothing is lost.

use std::io::Write as _;
use std::time::Duration;

use crate::support::{FeedServer, Route, SilentServer, Streaming, Workspace, rss};

const D1: &str = "Mon, 02 Mar 2026 10:00:00 +0000";

fn good_feed() -> Route {
    Route::rss(rss("good", &[(Some("g1"), None, "Still here", "x", Some(D1))]))
}

/// Config with `feeds`, a short timeout and a 1 MiB body limit.
fn config(ws: &Workspace, feeds: &[String], extra_poll: &str) {
    let mut toml = format!(
        "[store]\npath = \"data/t.db\"\n[poll]\ntimeout = \"2s\"\nmax_body = \"1MiB\"\n{extra_poll}\n"
    );
    for url in feeds {
        toml.push_str(&format!("[[feed]]\nurl = \"{url}\"\n"));
    }
    toml.push_str("[[output]]\npath = \"public/all.atom\"\n");
    ws.write_config(&toml);
}

fn failure_line<'a>(stdout: &'a str, url: &str) -> &'a str {
    stdout
        .lines()
        .find(|l| l.starts_with("failed: ") && l.contains(url))
        .unwrap_or_else(|| panic!("no failure line for {url} in:\n{stdout}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_servers_time_out_and_the_rest_of_the_poll_goes_on() {
    let server = FeedServer::start().await;
    let silent = SilentServer::start().await;
    server.set("/good.xml", good_feed());
    server.set(
        "/trickle.xml",
        Route::rss(rss("t", &[(Some("t1"), None, "Never whole", "x", Some(D1))]))
            .streaming(Streaming::Trickle(Duration::from_secs(1))),
    );
    let ws = Workspace::new();
    config(
        &ws,
        &[
            silent.url("/feed"),
            server.url("/trickle.xml"),
            server.url("/good.xml"),
        ],
        "",
    );
    let run = ws.poll().await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(failure_line(&run.stdout, &silent.url("/feed")).contains("timed out after 2s"));
    assert!(failure_line(&run.stdout, &server.url("/trickle.xml")).contains("timed out after 2s"));
    assert_eq!(
        ws.rows().iter().map(|r| r.title.as_str()).collect::<Vec<_>>(),
        ["Still here"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn endless_oversized_and_bomb_bodies_are_cut_off() {
    let server = FeedServer::start().await;
    server.set("/good.xml", good_feed());
    server.set(
        "/endless.xml",
        Route::rss("<rss><channel>".repeat(100)).streaming(Streaming::Endless),
    );
    let big = format!(
        "<rss version=\"2.0\"><channel><title>{}</title></channel></rss>",
        "x".repeat(3 << 20)
    );
    server.set("/big.xml", Route::rss(big));
    // 50 MB of zeros, gzipped to about 50 KB: sent as Content-Encoding: gzip.
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..50 {
        enc.write_all(&zeros).unwrap();
    }
    let bomb = enc.finish().unwrap();
    assert!(bomb.len() < 1 << 20, "the bomb itself is small");
    server.set("/bomb.xml", Route::rss(bomb).header("Content-Encoding", "gzip"));
    let ws = Workspace::new();
    let urls = [
        server.url("/endless.xml"),
        server.url("/big.xml"),
        server.url("/bomb.xml"),
        server.url("/good.xml"),
    ];
    config(&ws, &urls, "");
    let run = ws.poll().await;
    assert_eq!(run.code, 1, "{run:?}");
    for url in &urls[..3] {
        assert!(
            failure_line(&run.stdout, url).contains("larger than the 1048576-byte limit"),
            "{}",
            run.stdout
        );
    }
    assert_eq!(ws.rows().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn entity_expansion_and_external_entities_do_nothing() {
    let server = FeedServer::start().await;
    server.set("/secret", Route::rss("top secret"));
    let laughs = "<?xml version=\"1.0\"?>\n<!DOCTYPE rss [\n<!ENTITY lol \"lol\">\n\
                  <!ENTITY lol1 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">\n\
                  <!ENTITY lol2 \"&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;\">\n\
                  <!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">\n\
                  <!ENTITY lol9 \"&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;\">\n]>\n\
                  <rss version=\"2.0\"><channel><title>laughs</title><item><guid>1</guid><title>A &lol9; B</title></item></channel></rss>";
    let xxe = format!(
        "<?xml version=\"1.0\"?>\n<!DOCTYPE rss [\n<!ENTITY file SYSTEM \"file:///etc/passwd\">\n\
         <!ENTITY net SYSTEM \"{}\">\n]>\n<rss version=\"2.0\"><channel><title>x</title>\
         <item><guid>1</guid><title>F &file; N &net;</title><description>&file;&net;</description></item></channel></rss>",
        server.url("/secret")
    );
    server.set("/laughs.xml", Route::rss(laughs));
    server.set("/xxe.xml", Route::rss(xxe));
    let ws = Workspace::new();
    config(&ws, &[server.url("/laughs.xml"), server.url("/xxe.xml")], "");
    let run = ws.poll().await;
    assert_eq!(run.code, 0, "{run:?}");
    let rows = ws.rows();
    for row in &rows {
        assert!(row.title.len() < 100, "not expanded: {}", row.title.len());
        let body = row.summary.clone().unwrap_or_default();
        assert!(
            !row.title.contains("root:") && !body.contains("root:"),
            "no file read"
        );
        assert!(
            !row.title.contains("top secret") && !body.contains("top secret"),
            "no network read"
        );
    }
    assert!(
        server.requests("/secret").is_empty(),
        "the external entity was never fetched"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_bodies_fail_cleanly_and_are_recorded() {
    let server = FeedServer::start().await;
    server.set("/good.xml", good_feed());
    server.set("/empty.xml", Route::rss(""));
    server.set(
        "/noise.xml",
        Route::feed(
            "application/rss+xml",
            vec![0xff, 0xfe, 0x00, 0x9c, 0x80, 0x81, 0x3c, 0xff],
        ),
    );
    server.set(
        "/truncated.xml",
        Route::rss("<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><item><title>half"),
    );
    server.set(
        "/error.html",
        Route::status(
            200,
            "<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1></body></html>",
        ),
    );
    server.set(
        "/image.png",
        Route::feed("image/png", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec()),
    );
    let ws = Workspace::new();
    let bad = ["/empty.xml", "/noise.xml", "/error.html", "/image.png"];
    let mut urls: Vec<String> = bad.iter().map(|p| server.url(p)).collect();
    urls.push(server.url("/good.xml"));
    urls.push(server.url("/truncated.xml"));
    config(&ws, &urls, "");
    let run = ws.poll().await;
    assert_eq!(run.code, 1, "{run:?}");
    for path in bad {
        let line = failure_line(&run.stdout, &server.url(path));
        assert!(
            line.contains("not a feed") || line.contains("malformed"),
            "{line}"
        );
    }
    // A cut-off document is read as far as it goes, as feedparser does, and says so.
    let titles: Vec<String> = ws.rows().into_iter().map(|r| r.title).collect();
    assert_eq!(titles.len(), 2, "{titles:?}\n{}", run.stdout);
    assert!(titles.contains(&"half".to_string()), "{titles:?}");
    let repairs: Option<String> = ws
        .db()
        .query_row(
            "SELECT repairs FROM feeds WHERE url = ?1",
            [server.url("/truncated.xml")],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(repairs.as_deref(), Some("truncated"));
    assert!(
        run.stdout.contains(&format!(
            "repaired: {}: read with repairs: cut-off document closed",
            server.url("/truncated.xml")
        )),
        "{}",
        run.stdout
    );
    let table = ws.tributary(&["feeds"]).await;
    assert!(
        table.stdout.contains("(read with repairs: truncated)"),
        "{}",
        table.stdout
    );
    let failing: i64 = ws
        .db()
        .query_row("SELECT COUNT(*) FROM feeds WHERE failures = 1", [], |r| r.get(0))
        .unwrap();
    assert_eq!(failing, 4, "each failure is recorded on its own feed");
}

#[tokio::test(flavor = "multi_thread")]
async fn redirect_loops_chains_and_schemes_are_refused() {
    let server = FeedServer::start().await;
    server.set("/loop-a", Route::status(302, "").header("Location", "/loop-b"));
    server.set("/loop-b", Route::status(302, "").header("Location", "/loop-a"));
    for i in 0..15 {
        server.set(
            &format!("/chain{i}"),
            Route::status(307, "").header("Location", &format!("/chain{}", i + 1)),
        );
    }
    server.set("/chain15", good_feed());
    server.set(
        "/to-file",
        Route::status(301, "").header("Location", "file:///etc/passwd"),
    );
    server.set(
        "/to-ftp",
        Route::status(301, "").header("Location", "ftp://example.org/feed"),
    );
    let ws = Workspace::new();
    let urls = [
        server.url("/loop-a"),
        server.url("/chain0"),
        server.url("/to-file"),
        server.url("/to-ftp"),
    ];
    config(&ws, &urls, "");
    let run = ws.poll().await;
    assert_eq!(run.code, 1);
    assert!(failure_line(&run.stdout, &urls[0]).contains("redirect loop"));
    assert!(failure_line(&run.stdout, &urls[1]).contains("too many redirects"));
    assert!(failure_line(&run.stdout, &urls[2]).contains("non-HTTP"));
    assert!(failure_line(&run.stdout, &urls[3]).contains("non-HTTP"));
    assert!(
        server.requests("/chain12").is_empty(),
        "the chain was cut at the limit"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn permanent_redirects_move_a_feed_temporary_ones_never_do() {
    let server = FeedServer::start().await;
    server.set("/old.xml", Route::status(301, "").header("Location", "/new.xml"));
    server.set(
        "/new.xml",
        Route::rss(rss("n", &[(Some("n1"), None, "Moved entry", "x", Some(D1))])),
    );
    server.set(
        "/temp.xml",
        Route::status(302, "").header("Location", "/elsewhere.xml"),
    );
    server.set(
        "/elsewhere.xml",
        Route::rss(rss("e", &[(Some("e1"), None, "Temporary", "x", Some(D1))])),
    );
    let ws = Workspace::new();
    config(&ws, &[server.url("/old.xml"), server.url("/temp.xml")], "");
    for _ in 0..3 {
        assert_eq!(ws.poll().await.code, 0);
    }
    let moved: (Option<String>, Option<String>) = ws
        .db()
        .query_row(
            "SELECT (SELECT moved_to FROM feeds WHERE url = ?1), (SELECT moved_to FROM feeds WHERE url = ?2)",
            [server.url("/old.xml"), server.url("/temp.xml")],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(
        moved.0,
        Some(server.url("/new.xml")),
        "three 301s in a row move the feed"
    );
    assert_eq!(moved.1, None, "302s never move a feed");
    // The fourth poll goes straight to the new address; the entry keeps its identity.
    let old_requests = server.requests("/old.xml").len();
    assert_eq!(ws.poll().await.code, 0);
    assert_eq!(server.requests("/old.xml").len(), old_requests);
    assert_eq!(ws.rows().len(), 2, "no duplicates after the move");
}

#[tokio::test(flavor = "multi_thread")]
async fn gone_not_found_and_rate_limits_are_honoured_by_the_next_poll() {
    let server = FeedServer::start().await;
    server.set("/gone.xml", Route::status(410, "gone"));
    server.set("/missing.xml", Route::status(404, "missing"));
    server.set(
        "/busy.xml",
        Route::status(429, "slow down").header("Retry-After", "3600"),
    );
    server.set("/sibling.xml", good_feed());
    // A 503 with Retry-After speaks for its whole host, so it has one of its own.
    let maintenance = FeedServer::start_at("127.0.0.3").await;
    maintenance.set(
        "/unavailable.xml",
        Route::status(503, "maintenance").header("Retry-After", "7200"),
    );
    let ws = Workspace::new();
    // busy and sibling share a host name that differs from the others' (localhost vs 127.0.0.1).
    let sibling_host = |p: &str| server.url(p).replace("127.0.0.1", "localhost");
    let urls = [
        server.url("/gone.xml"),
        server.url("/missing.xml"),
        sibling_host("/busy.xml"),
        maintenance.url("/unavailable.xml"),
    ];
    config(&ws, &urls, "concurrency = 1");
    let first = ws.poll().await;
    assert_eq!(first.code, 1, "{first:?}");
    assert!(failure_line(&first.stdout, &urls[0]).contains("HTTP 410"));

    // The sibling on the rate-limited host is added after the 429.
    let mut with_sibling = urls.to_vec();
    with_sibling.push(sibling_host("/sibling.xml"));
    config(&ws, &with_sibling, "concurrency = 1");
    let second = ws.poll().await;
    // Feeds skipped while backing off are still failing: cron hears of it.
    assert_eq!(second.code, 1, "{second:?}");
    assert!(
        second.stdout.starts_with("polled 0 of 5 feeds"),
        "the summary counts only what was fetched: {}",
        second.stdout
    );
    let skipped = |url: &str| {
        second
            .stdout
            .lines()
            .find(|l| l.starts_with("skipped: ") && l.contains(url))
            .unwrap_or_else(|| panic!("{url} not skipped:\n{}", second.stdout))
            .to_string()
    };
    assert!(skipped(&urls[1]).contains("backing off"));
    assert!(
        skipped(&urls[1]).contains("last error: HTTP 404"),
        "a failing feed's last error is printed"
    );
    assert!(skipped(&urls[2]).contains("Retry-After"));
    assert!(skipped(&urls[3]).contains("Retry-After"));
    assert!(
        skipped(&with_sibling[4]).contains("host asked to wait"),
        "a 429 delays the whole host"
    );
    assert_eq!(server.requests("/gone.xml").len(), 1);
    assert_eq!(server.requests("/sibling.xml").len(), 0);

    // The config was rewritten after the 410: the feed is no longer gone, only backing off
    // like any feed that failed.
    assert!(skipped(&urls[0]).contains("backing off"), "{}", second.stdout);
    // --force polls everything that is blocked, whatever its state, a host's wait included.
    let forced = ws.tributary(&["poll", "--force"]).await;
    assert_eq!(forced.code, 1);
    assert_eq!(server.requests("/missing.xml").len(), 2);
    assert_eq!(server.requests("/sibling.xml").len(), 1, "{}", forced.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_gone_feed_stays_gone_until_the_config_changes() {
    let server = FeedServer::start().await;
    server.set("/gone.xml", Route::status(410, "gone"));
    let ws = Workspace::new();
    config(&ws, &[server.url("/gone.xml")], "");
    assert_eq!(ws.poll().await.code, 1);
    let again = ws.poll().await;
    assert_eq!(again.code, 1, "a gone feed is a failing feed");
    assert!(again.stdout.contains("gone (HTTP 410)"), "{}", again.stdout);
    assert!(again.stdout.contains("last error: HTTP 410"), "{}", again.stdout);
    assert_eq!(server.requests("/gone.xml").len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_connections_and_tls_failures_are_recorded() {
    let server = FeedServer::start().await;
    server.set("/good.xml", good_feed());
    // Port 1 is privileged and nothing of ours listens there: a refusal that no other test
    // can race for (a port bound and released could be taken by another test meanwhile).
    let refused = "http://127.0.0.1:1/feed.xml".to_string();
    // TLS to a server that speaks plain HTTP.
    let tls = server.url("/good.xml").replace("http://", "https://");
    let ws = Workspace::new();
    config(&ws, &[refused.clone(), tls.clone(), server.url("/good.xml")], "");
    let run = ws.poll().await;
    assert_eq!(run.code, 1);
    assert!(
        failure_line(&run.stdout, &refused).contains("cannot connect"),
        "{}",
        run.stdout
    );
    let tls_line = failure_line(&run.stdout, &tls);
    assert!(
        tls_line.contains("cannot connect") || tls_line.contains("HTTP error"),
        "{tls_line}"
    );
    assert_eq!(ws.rows().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn huge_feeds_entries_and_titles_are_stored_within_bounds() {
    let server = FeedServer::start().await;
    let mut items = String::with_capacity(6 << 20);
    for i in 0..100_000 {
        items.push_str(&format!("<item><guid>{i}</guid><title>t{i}</title></item>"));
    }
    server.set(
        "/many.xml",
        Route::rss(format!(
            "<rss version=\"2.0\"><channel><title>many</title>{items}</channel></rss>"
        )),
    );
    let huge_body = format!("<p>{}</p>", "word ".repeat(1_000_000));
    let huge_title = "T".repeat(1 << 20);
    server.set(
        "/huge.xml",
        Route::rss(format!(
            "<rss version=\"2.0\"><channel><title>h</title><item><guid>1</guid><title>{huge_title}</title>\
             <description><![CDATA[{huge_body}]]></description></item></channel></rss>"
        )),
    );
    let ws = Workspace::new();
    config(&ws, &[server.url("/many.xml"), server.url("/huge.xml")], "");
    // Bodies over 1 MiB are this config's limit; these two need the default 10 MiB.
    let text = std::fs::read_to_string(ws.path("tributary.toml"))
        .unwrap()
        .replace("max_body = \"1MiB\"", "max_body = \"10MiB\"");
    ws.write_config(&text);
    let run = ws.poll().await;
    assert_eq!(run.code, 0, "{run:?}");
    let rows = ws.rows();
    assert_eq!(rows.len(), 100_001);
    let huge = rows.iter().find(|r| r.title.starts_with("TTT")).unwrap();
    assert_eq!(
        huge.title.chars().count(),
        513,
        "cut to 512 characters and an ellipsis"
    );
    assert!(
        huge.summary.as_ref().unwrap().len() > 4_000_000,
        "a 5 MB body is kept whole"
    );
    assert_eq!(
        ws.output().entries.len(),
        11,
        "new_feed_entries keeps the back catalogue out"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn xss_vectors_never_reach_any_output() {
    let server = FeedServer::start().await;
    let vectors = [
        "<script>alert('s')</script>",
        "<img src=x onerror=alert('e')>",
        "<a href=\"javascript:alert('j')\">j</a>",
        "<a href=\"JaVaScRiPt:alert('J')\">J</a>",
        "<a href=\"data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==\">d</a>",
        "<svg><script>alert('svg')</script></svg>",
        "<svg onload=alert('svgload')>",
        "<p style=\"background:url(javascript:alert('css'))\">css</p>",
        "<div style=\"width: expression(alert('expr'))\">expr</div>",
        "<base href=\"https://evil.example/\">",
        "<meta http-equiv=\"refresh\" content=\"0;url=https://evil.example/\">",
        "<iframe src=\"https://evil.example/\"></iframe>",
        "<form action=\"https://evil.example/\"><input name=x></form>",
        "<scr<script>ipt>alert('nested')</scr</script>ipt>",
        "<img src=\"x\" / onerror=\"alert('slash')\">",
        "<body onload=alert('body')>",
        "<object data=\"https://evil.example/x.swf\"></object>",
        "<<script>alert('double');//<</script>",
    ];
    let items: String = vectors
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let escaped = v.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
            format!(
                "<item><guid>v{i}</guid><title>{escaped}</title><link>javascript:alert('link{i}')</link>\
                 <description>{escaped}</description></item>"
            )
        })
        .collect();
    server.set(
        "/xss.xml",
        Route::rss(format!(
            "<rss version=\"2.0\"><channel><title>x</title>{items}</channel></rss>"
        )),
    );
    let ws = Workspace::new();
    ws.write_config(&format!(
        "[store]\npath = \"data/t.db\"\n[poll]\nnew_feed_entries = 100\n[[feed]]\nurl = \"{}\"\n\
         [[output]]\npath = \"public/all.atom\"\n[[output]]\npath = \"public/all.rss\"\nformat = \"rss\"\n\
         [[output]]\npath = \"public/all.json\"\nformat = \"json\"\n[[output]]\npath = \"public/index.html\"\nformat = \"html\"\n",
        server.url("/xss.xml")
    ));
    assert_eq!(ws.poll().await.code, 0);
    let dangerous = [
        "<script",
        "onerror",
        "onload",
        "javascript:",
        "data:text/html",
        "<svg",
        "expression(",
        "<base",
        "<meta http-equiv",
        "<iframe",
        "<form",
        "<object",
        "style=",
    ];
    // Feeds carry HTML as escaped text: what a reader would render is the decoded content.
    for name in ["all.atom", "all.rss", "all.json"] {
        let feed =
            feed_rs::parser::parse(&std::fs::read(ws.path(&format!("public/{name}"))).unwrap()[..]).unwrap();
        assert_eq!(feed.entries.len(), vectors.len(), "{name}");
        for e in &feed.entries {
            let html = e
                .content
                .as_ref()
                .and_then(|c| c.body.clone())
                .or_else(|| e.summary.as_ref().map(|s| s.content.clone()))
                .unwrap_or_default()
                .to_lowercase();
            for bad in dangerous {
                assert!(!html.contains(bad), "{name}: {bad} survived in {html}");
            }
            assert!(
                e.links
                    .iter()
                    .all(|l| !l.href.to_lowercase().starts_with("javascript")),
                "{name}: link"
            );
        }
    }
    // The page: titles are escaped text, bodies are sanitized HTML.
    let page = std::fs::read_to_string(ws.path("public/index.html"))
        .unwrap()
        .to_lowercase();
    let page_body = &page[page.find("<body>").unwrap()..];
    for bad in dangerous {
        assert!(!page_body.contains(bad), "index.html: {bad} survived");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn credentials_go_only_to_the_feed_host_and_are_never_shown() {
    let server = FeedServer::start().await;
    server.set(
        "/private.xml",
        Route::rss(rss("p", &[(Some("p1"), None, "Members only", "x", Some(D1))])),
    );
    // The second feed's host (localhost) redirects to another host (127.0.0.1).
    let other_host = server.url("/landing.xml");
    server.set(
        "/jump.xml",
        Route::status(302, "").header("Location", &other_host),
    );
    server.set("/landing.xml", good_feed());
    server.set("/broken.xml", Route::status(500, "oops"));
    let with_creds = |path: &str| {
        server
            .url(path)
            .replace("http://127.0.0.1", "http://reader:s3cr%21t@localhost")
    };
    let ws = Workspace::new();
    ws.write_config(&format!(
        "[store]\npath = \"data/t.db\"\n\
         [[feed]]\nurl = \"{}\"\nheaders = {{ X-Api-Key = \"key-123\" }}\n\
         [[feed]]\nurl = \"{}\"\nheaders = {{ X-Api-Key = \"key-456\" }}\n\
         [[feed]]\nurl = \"{}\"\n\
         [[output]]\npath = \"public/all.atom\"\n",
        with_creds("/private.xml"),
        with_creds("/jump.xml"),
        with_creds("/broken.xml"),
    ));
    let run = ws.poll().await;
    assert_eq!(run.code, 1);
    let seen = &server.requests("/private.xml")[0].headers;
    assert_eq!(
        seen["authorization"], "Basic cmVhZGVyOnMzY3IhdA==",
        "user reader, password s3cr!t"
    );
    assert_eq!(seen["x-api-key"], "key-123");
    let jump = &server.requests("/jump.xml")[0].headers;
    assert!(jump.contains_key("authorization") && jump.contains_key("x-api-key"));
    let landing = &server.requests("/landing.xml")[0].headers;
    assert!(
        !landing.contains_key("authorization"),
        "no credentials after a cross-host redirect"
    );
    assert!(!landing.contains_key("x-api-key"));
    // Never shown: not in the report, not in the store's feed URLs as displayed, not in outputs.
    assert!(
        !run.stdout.contains("s3cr") && !run.stderr.contains("s3cr"),
        "{run:?}"
    );
    assert!(run.stdout.contains("reader:***@localhost"), "{}", run.stdout);
    let atom = std::fs::read_to_string(ws.output_path()).unwrap();
    assert!(!atom.contains("s3cr") && !atom.contains("key-123"));
}

#[tokio::test(flavor = "multi_thread")]
async fn private_networks_can_be_denied() {
    let server = FeedServer::start().await;
    server.set("/feed.xml", good_feed());
    let ws = Workspace::new();
    config(
        &ws,
        &[
            server.url("/feed.xml"),
            server.url("/feed.xml").replace("127.0.0.1", "localhost"),
        ],
        "deny_private_networks = true",
    );
    let run = ws.poll().await;
    assert_eq!(run.code, 1);
    assert!(
        failure_line(&run.stdout, "127.0.0.1").contains("127.0.0.1 is in 127.0.0.0/8 (loopback)"),
        "{}",
        run.stdout
    );
    assert!(
        failure_line(&run.stdout, "localhost").contains("resolves only to refused addresses"),
        "{}",
        run.stdout
    );
    assert!(server.requests("/feed.xml").is_empty());
}

/// Failures keep their kind to the end: a 403 is that feed's problem (its host's other feeds
/// are polled as usual), a 404 backs off far longer than a 500, and the kind is stored.
#[tokio::test(flavor = "multi_thread")]
async fn failure_kinds_decide_backoff_and_only_rate_limits_hold_a_host() {
    let server = FeedServer::start().await;
    server.set("/forbidden.xml", Route::status(403, "no"));
    server.set("/missing.xml", Route::status(404, "no"));
    server.set("/broken.xml", Route::status(500, "oops"));
    server.set("/sibling.xml", good_feed());
    let ws = Workspace::new();
    let urls: Vec<String> = ["/forbidden.xml", "/missing.xml", "/broken.xml", "/sibling.xml"]
        .iter()
        .map(|p| server.url(p))
        .collect();
    config(&ws, &urls, "concurrency = 1");
    let first = ws.poll().await;
    assert_eq!(first.code, 1, "{first:?}");
    let second = ws.poll().await;
    assert_eq!(
        server.requests("/sibling.xml").len(),
        2,
        "a 403 does not hold back the host: {}",
        second.stdout
    );
    let kinds: Vec<(String, Option<String>, i64, i64)> = {
        let db = ws.db();
        let mut st = db
            .prepare("SELECT url, failure_kind, next_due, last_fetch FROM feeds ORDER BY id")
            .unwrap();
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let kind = |u: &str| kinds.iter().find(|k| k.0 == u).unwrap().clone();
    assert_eq!(kind(&urls[0]).1.as_deref(), Some("client_error"));
    assert_eq!(kind(&urls[1]).1.as_deref(), Some("client_error"));
    assert_eq!(kind(&urls[2]).1.as_deref(), Some("server_error"));
    assert_eq!(kind(&urls[3]).1, None);
    let wait_minutes = |k: &(String, Option<String>, i64, i64)| (k.2 - k.3) / 60_000;
    // One failure each (the second poll skipped them): a 404 waits about an hour, a 500 about
    // five minutes and then its slot.
    assert!(wait_minutes(&kind(&urls[1])) >= 45, "{kinds:?}");
    assert!(wait_minutes(&kind(&urls[2])) <= 25, "{kinds:?}");
}

/// A feed failing for `poll.give_up_after` is reported abandoned once (poll, feeds --json),
/// and is still tried.
#[tokio::test(flavor = "multi_thread")]
async fn a_feed_failing_for_give_up_after_is_reported_abandoned_once() {
    let server = FeedServer::start().await;
    server.set("/dead.xml", Route::status(404, "no"));
    let ws = Workspace::new();
    let url = server.url("/dead.xml");
    config(&ws, std::slice::from_ref(&url), "give_up_after = \"30d\"");
    assert_eq!(ws.poll().await.code, 1);
    // Failing for 31 days already.
    let month_ago = chrono::Utc::now().timestamp() - 31 * 86_400;
    ws.db_rw()
        .execute("UPDATE feeds SET failing_since = ?1", [month_ago])
        .unwrap();
    let forced = ws.tributary(&["poll", "--force"]).await;
    assert_eq!(forced.code, 1);
    assert!(
        forced
            .stdout
            .lines()
            .any(|l| l.starts_with("abandoned: ") && l.contains(&url)),
        "{}",
        forced.stdout
    );
    let again = ws.tributary(&["poll", "--force"]).await;
    assert!(
        !again.stdout.contains("abandoned: "),
        "reported once: {}",
        again.stdout
    );
    assert_eq!(server.requests("/dead.xml").len(), 3, "still tried");
    let feeds = ws.tributary(&["feeds", "--json"]).await;
    let json: serde_json::Value = serde_json::from_str(&feeds.stdout).unwrap();
    assert_eq!(json[0]["abandoned"], true, "{}", feeds.stdout);
    assert_eq!(json[0]["failure_kind"], "client_error");
}

/// The built-in server outlasts clients that never finish a request: five times its
/// connection cap of idle and slowloris connections, and a health check still gets in at
/// once; the cap is logged once; a slowloris client is cut off by the header timeout (10 s)
/// however it trickles; a kept-alive connection between requests outlives that timeout.
#[tokio::test(flavor = "multi_thread")]
async fn the_server_outlasts_idle_floods_and_slowloris_clients() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let ws = Workspace::new();
    ws.write("feeds/a.xml", good_feed().body.as_slice());
    ws.write_config(
        "[store]\npath = \"data/t.db\"\n\n[[feed]]\nurl = \"feeds/a.xml\"\n\n\
         [[output]]\npath = \"public/all.atom\"\n\n[serve]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"same\"\nmax_connections = 20\n",
    );
    let mut daemon = crate::support::Daemon::start(&ws.path("tributary.toml"));
    let addr = daemon.ready_serving().await;
    let connect = || tokio::net::TcpStream::connect(addr);
    let mut held = Vec::new();
    for _ in 0..100 {
        held.push(connect().await.unwrap());
    }
    for _ in 0..10 {
        let mut s = connect().await.unwrap();
        s.write_all(b"GET /all.atom HTTP/1.1\r\nHost: planet\r\n")
            .await
            .unwrap();
        held.push(s);
    }
    tributary::init_tls();
    let client = reqwest::Client::new();
    let asked = std::time::Instant::now();
    let health = client
        .get(format!("http://{addr}/healthz"))
        .timeout(std::time::Duration::from_secs(5))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert!(
        asked.elapsed() < std::time::Duration::from_secs(1),
        "healthz took {:?} behind the flood",
        asked.elapsed()
    );
    assert!(health.text().await.unwrap().contains("\"status\""));
    drop(held);

    // A slowloris client trickling a header byte a second, and a kept-alive client that is
    // quiet between two requests: the first is cut off at about 10 s, the second is not.
    let slowloris = async {
        let mut s = connect().await.unwrap();
        let started = std::time::Instant::now();
        s.write_all(b"GET /all.atom HTTP/1.1\r\n").await.unwrap();
        let mut buf = [0u8; 64];
        loop {
            tokio::select! {
                read = s.read(&mut buf) => {
                    // Closed (EOF or reset) without an answer.
                    assert!(matches!(read, Ok(0) | Err(_)), "answered a half request: {read:?}");
                    return started.elapsed();
                }
                () = tokio::time::sleep(std::time::Duration::from_secs(1)) => {
                    if s.write_all(b"X").await.is_err() {
                        return started.elapsed();
                    }
                }
            }
            assert!(
                started.elapsed() < std::time::Duration::from_secs(30),
                "held for 30 s"
            );
        }
    };
    let kept_alive = async {
        let mut s = connect().await.unwrap();
        let request = b"GET /healthz HTTP/1.1\r\nHost: planet\r\n\r\n";
        let mut buf = vec![0u8; 64 * 1024];
        s.write_all(request).await.unwrap();
        let n = s.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        // Quiet for longer than the header timeout, then the next request.
        tokio::time::sleep(std::time::Duration::from_secs(12)).await;
        s.write_all(request).await.unwrap();
        let n = s.read(&mut buf).await.unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let (cut_off, second) = tokio::join!(slowloris, kept_alive);
    assert!(
        cut_off >= std::time::Duration::from_secs(9) && cut_off < std::time::Duration::from_secs(14),
        "slowloris held for {cut_off:?}"
    );
    assert!(
        second.starts_with("HTTP/1.1 200"),
        "kept-alive connection: {second:?}"
    );
    daemon.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(daemon.exit_code().await, 0);
    let log = daemon.stderr();
    assert_eq!(log.matches("connection cap reached").count(), 1, "{log}");
}

/// The guard has no back doors: with a proxy in the environment, names would be resolved by
/// the proxy, out of the guard's sight, so no proxy is used while the guard is on (one
/// without the guard proves this proxy would have fetched); local files are refused unless
/// `allow_files = true`, and `check` says so.
#[tokio::test(flavor = "multi_thread")]
async fn the_private_network_guard_covers_proxies_and_local_files() {
    let target = FeedServer::start().await;
    target.set("/feed.xml", good_feed());
    let proxy = FeedServer::start_at("127.0.0.2").await;
    proxy.set("/feed.xml", good_feed());
    let proxy_url = proxy.url("");
    let env = [("HTTP_PROXY", proxy_url.as_str()), ("NO_PROXY", "")];
    let feed = target.url("/feed.xml").replace("127.0.0.1", "localhost");
    let ws = Workspace::new();
    config(&ws, std::slice::from_ref(&feed), "");
    let open = ws.tributary_env(&["poll"], &env).await;
    assert_eq!(open.code, 0, "{open:?}");
    assert_eq!(
        proxy.requests("/feed.xml").len(),
        1,
        "without the guard the proxy fetches"
    );

    config(&ws, std::slice::from_ref(&feed), "deny_private_networks = true");
    let guarded = ws.tributary_env(&["poll"], &env).await;
    assert_eq!(guarded.code, 1, "{guarded:?}");
    assert!(
        failure_line(&guarded.stdout, "localhost").contains("resolves only to refused addresses"),
        "{}",
        guarded.stdout
    );
    assert_eq!(proxy.requests("/feed.xml").len(), 1, "the proxy was not asked");
    assert!(target.requests("/feed.xml").is_empty());
    assert!(
        guarded.stderr.contains("the proxy is not used"),
        "{}",
        guarded.stderr
    );

    // Local files: refused with the guard, by `check` and by `poll`, unless allowed.
    ws.write("feeds/local.xml", good_feed().body.as_slice());
    config(
        &ws,
        &["feeds/local.xml".to_string()],
        "deny_private_networks = true",
    );
    let check = ws.tributary(&["check"]).await;
    assert_eq!(check.code, 2, "{check:?}");
    assert!(
        check.stdout.contains("feed[1].url: local files are refused"),
        "{}",
        check.stdout
    );
    config(
        &ws,
        &["feeds/local.xml".to_string()],
        "deny_private_networks = true\nallow_files = true",
    );
    assert_eq!(ws.poll().await.code, 0);
}

/// Secrets have a home: `${NAME}` from the environment, `${file:PATH}` and systemd's
/// `${credential:NAME}`, in URLs and header values; an unset one is a `check` error naming the
/// reference. Credentials never reach the store (a feed's identity leaves them out, so a new
/// password is the same feed), and a config that holds secrets itself and is world-readable
/// gets a warning.
#[tokio::test(flavor = "multi_thread")]
async fn secrets_come_from_the_environment_files_and_credentials_never_the_store() {
    let server = FeedServer::start().await;
    server.set(
        "/private.xml",
        Route::rss(rss("p", &[(Some("p1"), None, "Members only", "x", Some(D1))])),
    );
    let ws = Workspace::new();
    ws.write("secrets/password", b"s3cret-pw\n");
    let creds = ws.path("creds");
    std::fs::create_dir_all(&creds).unwrap();
    crate::support::write_file(&creds.join("api-key"), b"key-from-systemd");
    let url = server
        .url("/private.xml")
        .replace("http://", "http://reader:${file:secrets/password}@");
    let config = format!(
        "[store]\npath = \"data/t.db\"\n\n[[feed]]\nurl = \"{url}\"\n\
         headers = {{ Authorization = \"Bearer ${{FEED_TOKEN}}\", X-Api-Key = \"${{credential:api-key}}\" }}\n\n\
         [[output]]\npath = \"public/all.atom\"\n"
    );
    ws.write_config(&config);
    let creds_dir = creds.display().to_string();
    let env = [
        ("FEED_TOKEN", "tok-123"),
        ("CREDENTIALS_DIRECTORY", creds_dir.as_str()),
    ];
    let missing = ws
        .tributary_env(&["check"], &[("CREDENTIALS_DIRECTORY", creds_dir.as_str())])
        .await;
    assert_eq!(missing.code, 2, "{missing:?}");
    assert!(
        missing
            .stdout
            .contains("feed[1].headers.Authorization: the environment variable FEED_TOKEN"),
        "{}",
        missing.stdout
    );
    let run = ws.tributary_env(&["poll"], &env).await;
    assert_eq!(run.code, 0, "{run:?}");
    let seen = &server.requests("/private.xml")[0].headers;
    assert_eq!(seen["authorization"], "Bearer tok-123");
    assert_eq!(seen["x-api-key"], "key-from-systemd");
    // The store knows the feed by its URL without credentials.
    let stored: String = ws
        .db()
        .query_row("SELECT url FROM feeds", [], |r| r.get(0))
        .unwrap();
    assert_eq!(stored, server.url("/private.xml"));
    let dump = std::fs::read(ws.path("data/t.db")).unwrap();
    assert!(
        !String::from_utf8_lossy(&dump).contains("s3cret"),
        "no password in the database"
    );
    // A new password: the same feed, its entry not stored again.
    ws.write("secrets/password", b"rotated\n");
    let again = ws.tributary_env(&["poll", "--force"], &env).await;
    assert_eq!(again.code, 0, "{again:?}");
    assert_eq!(ws.rows().len(), 1);
    let feeds: i64 = ws
        .db()
        .query_row("SELECT COUNT(*) FROM feeds", [], |r| r.get(0))
        .unwrap();
    assert_eq!(feeds, 1);

    // Secrets written into a world-readable file: a warning.
    use std::os::unix::fs::PermissionsExt;
    ws.write_config(&config.replace("${FEED_TOKEN}", "literal-token"));
    std::fs::set_permissions(ws.path("tributary.toml"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let check = ws.tributary_env(&["check"], &env).await;
    assert_eq!(check.code, 0, "{check:?}");
    assert!(
        check.stdout.contains("warning:") && check.stdout.contains("every user can read it"),
        "{}",
        check.stdout
    );
}
