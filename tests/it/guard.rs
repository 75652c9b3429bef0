//! Safe by default: the known attack classes against feed readers and fetchers, one test
//! each, served from loopback hosts with DNS answers the test controls (`[poll] resolve`),
//! never the internet. URLs that come from content (full text's article pages and their
//! redirects) are refused to private and reserved networks by default; the operator's own
//! follow `deny_private_networks`; bodies and documents are bounded however they are built;
//! and what Tributary emits and serves carries nothing a reader or browser would run.

use std::io::Write as _;
use std::time::{Duration, Instant};

use crate::support::{FeedServer, Route, Workspace, rss};

const D1: &str = "Mon, 02 Mar 2026 10:00:00 +0000";

/// A feed on `server` whose one entry links to `link`, read with `full_text`.
fn linking_feed(server: &FeedServer, path: &str, link: &str) {
    server.set(
        path,
        Route::rss(rss(
            "f",
            &[(
                Some("e1"),
                Some(link),
                "Story",
                "<p>The feed's teaser.</p>",
                Some(D1),
            )],
        )),
    );
}

fn article() -> Route {
    Route::feed(
        "text/html",
        "<html><head><title>Story</title></head><body><article><h1>Story</h1><p>The whole story, \
         at length: a paragraph long enough for any extractor to take it for the article.</p>\
         <p>And a second paragraph, so that the page reads as an article and not a stub.</p>\
         </article></body></html>",
    )
}

/// A workspace polling `feed_url` with full text, with `extra_poll` keys.
fn full_text_config(ws: &Workspace, feed_url: &str, extra_poll: &str) {
    ws.write_config(&format!(
        "[store]\npath = \"data/t.db\"\n[poll]\ntimeout = \"5s\"\n{extra_poll}\n\
         [[feed]]\nurl = \"{feed_url}\"\nfull_text = true\n[[output]]\npath = \"public/all.atom\"\n"
    ));
}

/// What `explain` says of the story.
async fn explained(ws: &Workspace) -> String {
    let run = ws.tributary(&["explain", "Story"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    run.stdout
}

/// Polls a feed (on an allowed loopback host, the operator's) whose entry links to `link`
/// (content's), and returns what `explain` says of the entry's content and the pages asked.
async fn follow_link(link: &str, extra_poll: &str) -> (String, usize) {
    let server = FeedServer::start_at("127.0.0.1").await;
    linking_feed(&server, "/feed.xml", link);
    let ws = Workspace::new();
    full_text_config(&ws, &server.url("/feed.xml"), extra_poll);
    let run = ws.poll().await;
    assert_eq!(run.code, 0, "{run:?}");
    let rows = ws.rows();
    assert_eq!(rows.len(), 1, "the entry is stored whatever became of its page");
    (explained(&ws).await, server.requests("/feed.xml").len())
}

#[tokio::test(flavor = "multi_thread")]
async fn an_article_link_to_loopback_is_refused_by_default_and_named() {
    let pages = FeedServer::start_at("127.0.0.2").await;
    pages.set("/story", article());
    let (said, _) = follow_link(&pages.url("/story"), "").await;
    assert!(
        said.contains("refused")
            && said.contains("127.0.0.0/8 (loopback)")
            && said.contains("poll.allow_networks"),
        "{said}"
    );
    assert!(
        pages.requests("/story").is_empty(),
        "nothing was asked of the page's host"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_allowed_network_is_reached() {
    let pages = FeedServer::start_at("127.0.0.3").await;
    pages.set("/story", article());
    let (said, _) = follow_link(&pages.url("/story"), "allow_networks = [\"127.0.0.3/32\"]").await;
    assert!(said.contains("the article on its page"), "{said}");
    assert_eq!(pages.requests("/story").len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redirect_from_an_allowed_page_to_a_refused_network_is_refused() {
    let pages = FeedServer::start_at("127.0.0.4").await;
    let inside = FeedServer::start_at("127.0.0.5").await;
    inside.set("/admin", article());
    pages.set(
        "/story",
        Route::status(302, "").header("location", &inside.url("/admin")),
    );
    let (said, _) = follow_link(&pages.url("/story"), "allow_networks = [\"127.0.0.4\"]").await;
    assert!(said.contains("127.0.0.5 is in 127.0.0.0/8"), "{said}");
    assert!(
        inside.requests("/admin").is_empty(),
        "the second hop was never asked"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn loopback_in_every_spelling_is_refused_for_content() {
    for (spelling, range) in [
        ("2130706433", "127.0.0.0/8"),
        ("0x7f.0.0.1", "127.0.0.0/8"),
        ("0177.0.0.1", "127.0.0.0/8"),
        ("127.1", "127.0.0.0/8"),
        ("[::1]", "::1 (loopback)"),
        ("[0:0:0:0:0:0:0:1]", "::1 (loopback)"),
        ("[::ffff:127.0.0.1]", "IPv4-mapped"),
        ("[::127.0.0.1]", "IPv4-compatible"),
        ("0.0.0.0", "0.0.0.0/8"),
        ("[::]", ":: (unspecified)"),
    ] {
        let (said, _) = follow_link(&format!("http://{spelling}:9/story"), "").await;
        assert!(said.contains(range), "{spelling}: {said}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn cloud_metadata_and_reserved_ranges_are_refused_without_a_connection() {
    for (address, range) in [
        ("169.254.169.254", "169.254.0.0/16"),
        ("100.64.0.1", "100.64.0.0/10"),
        ("198.18.0.1", "198.18.0.0/15"),
        ("192.0.0.8", "192.0.0.0/24"),
        ("10.9.8.7", "10.0.0.0/8"),
        ("[fd00::1]", "fc00::/7"),
        ("[fe80::1]", "fe80::/10"),
        ("[64:ff9b::a9fe:a9fe]", "NAT64"),
        ("[2002:a9fe:a9fe::1]", "6to4"),
        ("[2001:0:5db8:11c3:0:0:80ff:fffe]", "Teredo"),
        ("240.0.0.1", "240.0.0.0/4"),
        ("224.0.0.1", "224.0.0.0/4"),
    ] {
        let started = Instant::now();
        let (said, _) = follow_link(&format!("http://{address}/latest/meta-data/"), "").await;
        assert!(said.contains(range), "{address}: {said}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{address}: refused at once"
        );
    }
}

/// A name is resolved once and connected to at the address checked: a name whose answers are
/// all refused is refused; one with an allowed answer among refused ones reaches only that.
#[tokio::test(flavor = "multi_thread")]
async fn names_are_judged_by_the_addresses_they_resolve_to() {
    let pages = FeedServer::start_at("127.0.0.6").await;
    pages.set("/story", article());
    let port = url::Url::parse(&pages.url("/")).unwrap().port().unwrap();
    let (said, _) = follow_link(
        &format!("http://rebind.test:{port}/story"),
        "resolve = { \"rebind.test\" = \"10.0.0.5, 192.168.7.7\" }",
    )
    .await;
    assert!(
        said.contains("rebind.test resolves only to refused addresses"),
        "{said}"
    );
    let (said, _) = follow_link(
        &format!("http://mixed.test:{port}/story"),
        "allow_networks = [\"127.0.0.6\"]\nresolve = { \"mixed.test\" = \"10.0.0.5, 127.0.0.6\" }",
    )
    .await;
    assert!(said.contains("the article on its page"), "{said}");
    assert_eq!(pages.requests("/story").len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_local_file_named_by_content_is_never_read() {
    let secret = tempfile::NamedTempFile::new().unwrap();
    crate::support::write_file(
        secret.path(),
        b"<html><body><article>secret</article></body></html>",
    );
    let link = format!("file://{}", secret.path().display());
    let (said, _) = follow_link(&link, "allow_files = true").await;
    assert!(!said.contains("the article on its page"), "{said}");
}

/// The operator's own feed URLs reach the intranet unless `deny_private_networks`, and then
/// every redirect hop is checked as the URL itself is.
#[tokio::test(flavor = "multi_thread")]
async fn the_operators_urls_follow_deny_private_networks_hop_by_hop() {
    let server = FeedServer::start_at("127.0.0.7").await;
    server.set(
        "/feed.xml",
        Route::rss(rss("f", &[(Some("e1"), None, "Story", "x", Some(D1))])),
    );
    server.set(
        "/moved.xml",
        Route::status(301, "").header("location", &server.url("/feed.xml")),
    );
    let ws = Workspace::new();
    let config = |extra: &str| {
        format!(
            "[store]\npath = \"data/t.db\"\n[poll]\n{extra}\n[[feed]]\nurl = \"{}\"\n\
             [[output]]\npath = \"public/all.atom\"\n",
            server.url("/moved.xml")
        )
    };
    ws.write_config(&config(""));
    assert_eq!(ws.poll().await.code, 0, "an intranet planet is normal");
    ws.write_config(&config("deny_private_networks = true"));
    let run = ws.tributary(&["poll", "--force"]).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout.contains("127.0.0.0/8 (loopback)") && run.stdout.contains("poll.deny_private_networks"),
        "{}",
        run.stdout
    );
    // Allowed through the list, the redirect's next hop is checked as the first was.
    let port = url::Url::parse(&server.url("/")).unwrap().port().unwrap();
    server.set(
        "/elsewhere.xml",
        Route::status(302, "").header("location", &format!("http://127.0.0.8:{port}/feed.xml")),
    );
    ws.write_config(
        &config("deny_private_networks = true\nallow_networks = [\"127.0.0.7\"]")
            .replace("/moved.xml", "/elsewhere.xml"),
    );
    let run = ws.tributary(&["poll", "--force"]).await;
    assert!(
        run.stdout.contains("127.0.0.8 is in 127.0.0.0/8"),
        "{}",
        run.stdout
    );
}

/// Compressed bodies count by what they decompress to, in every encoding the fetcher reads,
/// stacked or chunked: a 1 GiB bomb is the feed's error, fast and small.
#[tokio::test(flavor = "multi_thread")]
async fn decompression_bombs_are_cut_off_by_what_they_decompress_to() {
    let gib = 1usize << 30;
    let chunk = vec![b' '; 1 << 20];
    let gzip = {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        for _ in 0..gib / chunk.len() {
            enc.write_all(&chunk).unwrap();
        }
        enc.finish().unwrap()
    };
    let deflate = {
        let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        for _ in 0..gib / chunk.len() {
            enc.write_all(&chunk).unwrap();
        }
        enc.finish().unwrap()
    };
    let zstd_bomb = {
        let mut enc = zstd::stream::Encoder::new(Vec::new(), 1).unwrap();
        for _ in 0..gib / chunk.len() {
            enc.write_all(&chunk).unwrap();
        }
        enc.finish().unwrap()
    };
    let brotli_bomb = {
        let mut out = Vec::new();
        {
            let mut enc = brotli::CompressorWriter::new(&mut out, 1 << 16, 1, 22);
            for _ in 0..gib / chunk.len() {
                enc.write_all(&chunk).unwrap();
            }
        }
        out
    };
    // gzip inside gzip: 1 GiB in, a few hundred bytes out.
    let stacked = {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(&gzip).unwrap();
        enc.finish().unwrap()
    };
    for bomb in [&gzip, &deflate, &zstd_bomb, &brotli_bomb] {
        assert!(bomb.len() < 16 << 20, "the bomb itself is small: {}", bomb.len());
    }
    let server = FeedServer::start_at("127.0.0.9").await;
    server.set(
        "/good.xml",
        Route::rss(rss("good", &[(Some("g1"), None, "Still here", "x", Some(D1))])),
    );
    server.set(
        "/gzip.xml",
        Route::rss(gzip.clone()).header("Content-Encoding", "gzip"),
    );
    server.set(
        "/deflate.xml",
        Route::rss(deflate).header("Content-Encoding", "deflate"),
    );
    server.set(
        "/zstd.xml",
        Route::rss(zstd_bomb).header("Content-Encoding", "zstd"),
    );
    server.set(
        "/br.xml",
        Route::rss(brotli_bomb).header("Content-Encoding", "br"),
    );
    server.set(
        "/stacked.xml",
        Route::rss(stacked).header("Content-Encoding", "gzip, gzip"),
    );
    server.set(
        "/chunked.xml",
        Route::rss(gzip)
            .header("Content-Encoding", "gzip")
            .streaming(crate::support::Streaming::Chunked(64 * 1024)),
    );
    let ws = Workspace::new();
    let bombs = [
        "/gzip.xml",
        "/deflate.xml",
        "/zstd.xml",
        "/br.xml",
        "/stacked.xml",
        "/chunked.xml",
    ];
    let mut toml = "[store]\npath = \"data/t.db\"\n[poll]\ntimeout = \"20s\"\n".to_string();
    for path in bombs.iter().chain(&["/good.xml"]) {
        toml.push_str(&format!("[[feed]]\nurl = \"{}\"\n", server.url(path)));
    }
    toml.push_str("[[output]]\npath = \"public/all.atom\"\n");
    ws.write_config(&toml);
    let started = Instant::now();
    let (run, peak_kib) = ws.tributary_measured(&["poll"]).await;
    let took = started.elapsed();
    assert_eq!(run.code, 1, "{run:?}");
    for path in bombs {
        let line = run
            .stdout
            .lines()
            .find(|l| l.starts_with("failed: ") && l.contains(path))
            .unwrap_or_else(|| panic!("{path} not failed:\n{}", run.stdout));
        // Stacked encodings are decoded once; what is left is not a feed.
        assert!(
            line.contains("larger than the") || (path == "/stacked.xml" && line.contains("not a feed")),
            "{line}"
        );
    }
    assert_eq!(ws.rows().len(), 1, "the good feed is stored");
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert!(peak_kib < 300 * 1024, "peak RSS {} MB", peak_kib / 1024);
    println!(
        "six 1 GiB bombs and a good feed: {took:?}, peak RSS {} MB",
        peak_kib / 1024
    );
}

/// XML the parser must survive in bounded time and memory, losing at most the field or entry
/// concerned: out-of-range character references, undefined entities, 100,000 nested elements,
/// 100,000 attributes, a 50 MB text node (with a `max_body` that admits it).
#[tokio::test(flavor = "multi_thread")]
async fn parser_bombs_cost_bounded_time_and_memory() {
    let item = |guid: &str, title: &str| format!("<item><guid>{guid}</guid><title>{title}</title></item>");
    let wrap = |items: &str| {
        format!(
            "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>t</title>{items}</channel></rss>"
        )
    };
    let cases: Vec<(&str, String, Duration, u64)> = vec![
        (
            "/charref.xml",
            wrap(&(item("a", "death &#999999999999; &#x110000; &#0; star") + &item("b", "fine"))),
            Duration::from_secs(10),
            300,
        ),
        (
            "/entities.xml",
            wrap(&(item("a", "&nosuch; &lol; &#;") + &item("b", "fine"))),
            Duration::from_secs(10),
            300,
        ),
        (
            "/nested.xml",
            wrap(
                &(item(
                    "a",
                    &format!("{}deep{}", "<b>".repeat(100_000), "</b>".repeat(100_000)),
                ) + &item("b", "fine")),
            ),
            Duration::from_secs(10),
            300,
        ),
        (
            "/attributes.xml",
            wrap(
                &(format!(
                    "<item {}><guid>a</guid><title>many</title></item>",
                    (0..100_000)
                        .map(|i| format!("a{i}=\"v\""))
                        .collect::<Vec<_>>()
                        .join(" ")
                ) + &item("b", "fine")),
            ),
            Duration::from_secs(10),
            300,
        ),
        (
            "/huge-text.xml",
            wrap(
                &(format!(
                    "<item><guid>a</guid><title>huge</title><description>{}</description></item>",
                    "w".repeat(50 << 20)
                ) + &item("b", "fine")),
            ),
            Duration::from_secs(20),
            640,
        ),
    ];
    for (path, body, bound, mb) in cases {
        let server = FeedServer::start_at("127.0.0.10").await;
        server.set(path, Route::rss(body));
        let ws = Workspace::new();
        ws.write_config(&format!(
            "[store]\npath = \"data/t.db\"\n[poll]\ntimeout = \"30s\"\nmax_body = \"60MiB\"\n\
             [[feed]]\nurl = \"{}\"\n[[output]]\npath = \"public/all.atom\"\n",
            server.url(path)
        ));
        let started = Instant::now();
        let (run, peak_kib) = ws.tributary_measured(&["poll"]).await;
        let took = started.elapsed();
        assert!(run.code <= 1, "{path}: {run:?}");
        assert!(took < bound, "{path}: took {took:?}");
        assert!(peak_kib < mb * 1024, "{path}: peak RSS {} MB", peak_kib / 1024);
        // At worst the hostile entry is lost: the other one is always read.
        let titles: Vec<String> = ws.rows().into_iter().map(|r| r.title).collect();
        assert!(titles.iter().any(|t| t == "fine"), "{path}: {titles:?} / {run:?}");
    }
}

/// No dependency that expands DTD entities (xml-rs did, with no way to turn it off) is in
/// the tree: quick-xml, under feed-rs, leaves them as text.
#[test]
fn no_entity_expanding_xml_parser_is_in_the_tree() {
    let lock = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.lock")).unwrap();
    for name in ["xml-rs", "xml5ever", "roxmltree", "sxd-document"] {
        assert!(
            !lock.contains(&format!("name = \"{name}\"")),
            "{name} is in Cargo.lock"
        );
    }
}

/// Every URL in `text` found in an attribute (`href`, `src`, `url`, `xmlUrl`, `htmlUrl`,
/// `uri`) or a JSON string under a URL field: none may name a scheme other than http(s) or
/// mailto (relative references are the page's own links to its sibling outputs).
fn urls_in(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for attr in [
        "href=\"",
        "src=\"",
        "url=\"",
        "xmlUrl=\"",
        "htmlUrl=\"",
        "<uri>",
        "<link>",
        "<comments>",
        "<docs>",
    ] {
        for (at, _) in text.match_indices(attr) {
            let rest = &text[at + attr.len()..];
            let end = rest.find(['"', '<']).unwrap_or(rest.len());
            found.push(html_escape::decode_html_entities(&rest[..end]).into_owned());
        }
    }
    if let Ok(json) = serde_json::from_str::<serde_json::Value>(text) {
        fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
            match v {
                serde_json::Value::Object(map) => {
                    for (k, v) in map {
                        if let (true, Some(s)) = (
                            matches!(
                                k.as_str(),
                                "url"
                                    | "external_url"
                                    | "image"
                                    | "banner_image"
                                    | "home_page_url"
                                    | "feed_url"
                                    | "icon"
                                    | "favicon"
                                    | "avatar"
                            ),
                            v.as_str(),
                        ) {
                            out.push(s.to_string());
                        }
                        walk(v, out);
                    }
                }
                serde_json::Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
                _ => {}
            }
        }
        walk(&json, &mut found);
    }
    found
}

fn acceptable(url: &str) -> bool {
    match url.split_once(':') {
        Some((scheme, _))
            if scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) =>
        {
            matches!(scheme.to_ascii_lowercase().as_str(), "http" | "https" | "mailto")
        }
        // No scheme: a relative reference, resolved against the page's own http(s) address.
        _ => !url.trim_start().to_ascii_lowercase().starts_with("javascript"),
    }
}

/// Feeds (RSS, Atom, JSON Feed) that put `javascript:`, `data:`, `vbscript:`, `file:` and
/// unparseable URLs and XML-illegal control characters in every field that holds one: every
/// output format and the page carry only http(s) and mailto URLs, and none of those characters.
#[tokio::test(flavor = "multi_thread")]
async fn outputs_carry_only_web_urls_and_no_illegal_characters() {
    let bad = [
        "javascript:alert(1)",
        "JaVaScRiPt:alert(2)",
        " javascript:alert(3)",
        "data:text/html,<script>alert(4)</script>",
        "vbscript:msgbox(5)",
        "file:///etc/passwd",
        "http://[not a url",
    ];
    let server = FeedServer::start().await;
    let mut items = String::new();
    for (i, url) in bad.iter().enumerate() {
        let url = html_escape::encode_double_quoted_attribute(url);
        items.push_str(&format!(
            "<item><guid isPermaLink=\"true\">{url}</guid><title>Bad\u{1} {i}\u{b}</title><link>{url}</link>\
             <comments>{url}</comments><author>{url} (Name\u{2})</author>\
             <enclosure url=\"{url}\" length=\"1\" type=\"audio/mpeg\"/>\
             <description>&lt;a href=\"{url}\"&gt;x&lt;/a&gt;&lt;img src=\"{url}\"&gt; text\u{3}</description>\
             <pubDate>{D1}</pubDate></item>"
        ));
    }
    server.set(
        "/rss.xml",
        Route::rss(format!(
            "<rss version=\"2.0\"><channel><title>Chan\u{4}nel</title><link>javascript:alert(9)</link>\
             <image><url>javascript:alert(10)</url><title>i</title><link>javascript:x</link></image>{items}</channel></rss>"
        )),
    );
    server.set(
        "/atom.xml",
        Route::feed(
            "application/atom+xml",
            "<feed xmlns=\"http://www.w3.org/2005/Atom\"><title>A</title><id>urn:a</id><updated>2026-03-02T10:00:00Z</updated>\
                 <link rel=\"alternate\" href=\"javascript:alert(11)\"/><icon>javascript:alert(12)</icon>\
                 <entry><id>urn:e</id><title>Atom bad</title><updated>2026-03-02T10:00:00Z</updated>\
                 <link rel=\"alternate\" href=\"vbscript:x\"/><link rel=\"enclosure\" href=\"data:audio/mpeg,xx\"/>\
                 <author><name>N</name><uri>javascript:alert(13)</uri></author>\
                 <content type=\"html\">&lt;a href=\"javascript:alert(14)\"&gt;x&lt;/a&gt;</content></entry></feed>",
        ),
    );
    server.set(
        "/feed.json",
        Route::feed(
            "application/feed+json",
            serde_json::json!({
                "version": "https://jsonfeed.org/version/1.1",
                "title": "J",
                "home_page_url": "javascript:alert(15)",
                "icon": "javascript:alert(16)",
                "items": [{
                    "id": "j1", "title": "Json bad", "url": "javascript:alert(17)",
                    "external_url": "data:text/html,x", "image": "javascript:alert(18)",
                    "banner_image": "vbscript:x", "content_html": "<a href=\"javascript:alert(19)\">x</a>",
                    "date_published": "2026-03-02T10:00:00Z",
                    "attachments": [{"url": "javascript:alert(20)", "mime_type": "audio/mpeg"}],
                    "authors": [{"name": "A", "url": "javascript:alert(21)", "avatar": "javascript:alert(22)"}]
                }]
            })
            .to_string(),
        ),
    );
    let ws = Workspace::new();
    let mut toml = "[store]\npath = \"data/t.db\"\n".to_string();
    for path in ["/rss.xml", "/atom.xml", "/feed.json"] {
        toml.push_str(&format!(
            "[[feed]]\nurl = \"{}\"\nsite = \"https://site.example/\"\n",
            server.url(path)
        ));
    }
    for (path, format) in [
        ("public/all.atom", "atom"),
        ("public/all.rss", "rss"),
        ("public/all.json", "json"),
        ("public/index.html", "html"),
        ("public/feeds.opml", "opml"),
    ] {
        toml.push_str(&format!("[[output]]\npath = \"{path}\"\nformat = \"{format}\"\n"));
    }
    ws.write_config(&toml);
    let run = ws.poll().await;
    assert_eq!(run.code, 0, "{run:?}");
    for file in ["all.atom", "all.rss", "all.json", "index.html", "feeds.opml"] {
        let text = std::fs::read_to_string(ws.path(&format!("public/{file}"))).unwrap();
        let urls = urls_in(&text);
        assert!(!urls.is_empty(), "{file}: no URLs found to check");
        let bad: Vec<&String> = urls.iter().filter(|u| !acceptable(u)).collect();
        assert!(bad.is_empty(), "{file} carries {bad:?}");
        let illegal: Vec<char> = text
            .chars()
            .filter(|c| matches!(c, '\u{0}'..='\u{8}' | '\u{b}' | '\u{c}' | '\u{e}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}'))
            .collect();
        assert!(
            illegal.is_empty(),
            "{file} carries control characters {illegal:?}"
        );
        assert!(
            !text.contains("\\u0001") && !text.contains("\\u000b"),
            "{file} carries escaped controls"
        );
    }
}

/// What the built-in server answers: `nosniff` on everything; no type but the page's is HTML
/// (and nothing is SVG); a 404 echoes nothing of the request; absolute URLs never come from
/// the request's `Host`; the admin listener decides nothing from `X-Forwarded-For` or
/// `Forwarded`.
#[tokio::test(flavor = "multi_thread")]
async fn the_server_answers_safely_whatever_the_request_says() {
    use crate::support::Daemon;
    let server = FeedServer::start().await;
    server.set(
        "/feed.xml",
        Route::rss(rss(
            "f",
            &[(Some("e1"), Some("https://news.example/1"), "Story", "x", Some(D1))],
        )),
    );
    let ws = Workspace::new();
    ws.write_config(&format!(
        "[store]\npath = \"data/t.db\"\n[serve]\nlisten = \"127.0.0.1:0\"\nbase_url = \"https://planet.example/\"\n\
         [[feed]]\nurl = \"{}\"\n[[output]]\npath = \"public/all.atom\"\n[[output]]\npath = \"public/index.html\"\nformat = \"html\"\n\
         [[output]]\npath = \"public/all.json\"\nformat = \"json\"\n[[output]]\npath = \"public/logo.svg\"\nformat = \"rss\"\n",
        server.url("/feed.xml")
    ));
    let mut daemon = Daemon::start(&ws.path("tributary.toml"));
    let (public, admin) = daemon.ready_serving_both().await;
    tributary::init_tls();
    let client = reqwest::Client::new();
    let get = |url: String, headers: Vec<(&'static str, &'static str)>| {
        let client = client.clone();
        async move {
            let mut request = client.get(url);
            for (name, value) in headers {
                request = request.header(name, value);
            }
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            (status, headers, response.text().await.unwrap())
        }
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while get(format!("http://{public}/all.atom"), vec![]).await.0 != 200 {
        assert!(Instant::now() < deadline, "no output served");
        tokio::time::sleep(Duration::from_millis(100)).await;
        daemon.drain();
    }
    for (url, html) in [
        (format!("http://{public}/all.atom"), false),
        (format!("http://{public}/all.json"), false),
        (format!("http://{public}/logo.svg"), false),
        (format!("http://{public}/index.html"), true),
        (format!("http://{public}/"), true),
        (format!("http://{public}/<script>alert(1)</script>"), false),
        (format!("http://{public}/nothing.svg"), false),
        (format!("http://{admin}/healthz"), false),
        (format!("http://{admin}/metrics"), false),
        (format!("http://{admin}/all.atom"), false),
    ] {
        let (status, headers, body) = get(url.clone(), vec![("host", "evil.example")]).await;
        assert_eq!(
            headers.get("x-content-type-options").map(|v| v.to_str().unwrap()),
            Some("nosniff"),
            "{url}"
        );
        let content_type = headers.get("content-type").map_or("", |v| v.to_str().unwrap());
        assert_eq!(
            content_type.starts_with("text/html"),
            html,
            "{url}: {content_type}"
        );
        assert!(!content_type.contains("svg"), "{url}: {content_type}");
        assert!(
            !body.contains("evil.example"),
            "{url} took the request's Host: {body}"
        );
        assert!(!body.contains("<script>alert(1)"), "{url} echoed the request");
        if status == 200 && url.ends_with("all.atom") {
            assert!(
                body.contains("https://planet.example/all.atom"),
                "absolute URLs from base_url"
            );
        }
    }
    // The admin side answers the same whatever a request says of where it came from.
    for path in ["/healthz", "/metrics", "/all.atom"] {
        let plain = get(format!("http://{admin}{path}"), vec![]).await;
        for spoofed in [
            vec![("x-forwarded-for", "10.0.0.1")],
            vec![("x-forwarded-for", "8.8.8.8, 127.0.0.1")],
            vec![("forwarded", "for=127.0.0.1;proto=https")],
            vec![("x-real-ip", "127.0.0.1")],
        ] {
            let (status, _, body) = get(format!("http://{admin}{path}"), spoofed.clone()).await;
            assert_eq!(status, plain.0, "{path} with {spoofed:?}");
            if path != "/metrics" {
                assert_eq!(body.is_empty(), plain.2.is_empty(), "{path} with {spoofed:?}");
            }
        }
    }
    daemon.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(daemon.exit_code().await, 0);
}
