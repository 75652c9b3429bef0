//! `tributary poll` end to end: the real binary against feeds served on 127.0.0.1.

use crate::support::{FeedServer, Route, Workspace, rss, validate_atom};

crate::on_both_stores!(
    polling_twice_stores_each_entry_once_and_output_parses_back,
    same_guid_with_new_text_is_one_updated_entry,
    guidless_entries_dedupe_by_canonical_link,
    undated_entries_keep_their_first_seen_date_and_future_dates_are_clamped,
    second_poll_is_conditional_and_a_304_changes_nothing,
    failing_feeds_give_exit_1_and_the_others_are_stored,
    non_utf8_feeds_come_out_right,
    redirects_are_followed_and_json_and_atom_feeds_merge,
    held_back_and_excluded_entries_are_counted_and_the_limit_can_be_raised,
);

const D1: &str = "Mon, 02 Mar 2026 10:00:00 +0000";
const D2: &str = "Tue, 03 Mar 2026 10:00:00 +0000";
const D3: &str = "Wed, 04 Mar 2026 10:00:00 +0000";

async fn polling_twice_stores_each_entry_once_and_output_parses_back(ws: Workspace) {
    let server = FeedServer::start().await;
    server.set(
        "/a.xml",
        Route::rss(rss(
            "alpha",
            &[
                (
                    Some("a1"),
                    Some("https://example.org/a/1"),
                    "Alpha one",
                    "first",
                    Some(D1),
                ),
                (
                    Some("a2"),
                    Some("https://example.org/a/2"),
                    "Alpha two",
                    "second",
                    Some(D3),
                ),
            ],
        )),
    );
    server.set(
        "/b.xml",
        Route::rss(rss(
            "beta",
            &[(
                Some("b1"),
                Some("https://example.org/b/1"),
                "Beta one",
                "<p>hello</p>",
                Some(D2),
            )],
        )),
    );
    ws.config_with_feeds(&[server.url("/a.xml"), server.url("/b.xml")]);

    let first = ws.poll().await;
    assert_eq!(first.code, 0, "{first:?}");
    assert!(
        first.stdout.contains("2 ok") && first.stdout.contains("3 new"),
        "{}",
        first.stdout
    );
    let rows = ws.rows();
    assert_eq!(rows.len(), 3);

    let second = ws.poll().await;
    assert_eq!(second.code, 0, "{second:?}");
    assert!(second.stdout.contains("0 new, 0 updated"), "{}", second.stdout);
    assert_eq!(
        ws.rows(),
        rows,
        "a second poll of unchanged feeds changes nothing"
    );

    // The merged output, read back by an independent parser: newest first, with sources.
    let out = ws.output();
    let titles: Vec<_> = out
        .entries
        .iter()
        .map(|e| e.title.as_ref().unwrap().content.as_str())
        .collect();
    assert_eq!(titles, ["Alpha two", "Beta one", "Alpha one"]);
    assert_eq!(out.entries[0].links[0].href, "https://example.org/a/2");
    let ids: std::collections::HashSet<_> = out.entries.iter().map(|e| e.id.clone()).collect();
    assert_eq!(ids.len(), 3, "entry ids are unique");
    let xml = std::fs::read_to_string(ws.output_path()).unwrap();
    assert!(
        xml.contains("<source>") && xml.contains("<title>beta</title>"),
        "{xml}"
    );
    validate_atom(&ws.output_path());
}

async fn same_guid_with_new_text_is_one_updated_entry(ws: Workspace) {
    let server = FeedServer::start().await;
    ws.config_with_feeds(&[server.url("/f.xml")]);
    server.set(
        "/f.xml",
        Route::rss(rss(
            "f",
            &[(
                Some("g1"),
                Some("https://example.org/1"),
                "Draft title",
                "v1",
                Some(D1),
            )],
        )),
    );
    assert_eq!(ws.poll().await.code, 0);
    let before = ws.rows();

    server.set(
        "/f.xml",
        Route::rss(rss(
            "f",
            &[(
                Some("g1"),
                Some("https://example.org/1"),
                "Final title",
                "v2",
                Some(D1),
            )],
        )),
    );
    let run = ws.poll().await;
    assert!(run.stdout.contains("0 new, 1 updated"), "{}", run.stdout);
    let after = ws.rows();
    assert_eq!(after.len(), 1, "an update, not a duplicate");
    assert_eq!(after[0].key, before[0].key);
    assert_eq!(after[0].title, "Final title");
    assert!(after[0].summary.as_deref().unwrap().contains("v2"));
    assert_eq!(after[0].published, before[0].published, "published stays");
    assert!(after[0].updated > before[0].updated, "updated moves");
    let out = ws.output();
    assert_eq!(out.entries.len(), 1);
    assert_eq!(out.entries[0].title.as_ref().unwrap().content, "Final title");
}

/// Re-fetched bodies are parsed only for their new and changed items (the others' fingerprints
/// are recorded), and nothing is missed for it: edits, additions, and a generator that repeats
/// one guid in every item.
#[tokio::test(flavor = "multi_thread")]
async fn re_polls_parse_only_changed_items_and_miss_nothing() {
    let server = FeedServer::start().await;
    let ws = Workspace::new();
    ws.config_with_feeds(&[server.url("/f.xml"), server.url("/same-guid.xml")]);
    let item = |g: &'static str, text: &'static str| (Some(g), None, g, text, Some(D1));
    let same =
        |n: &'static str, link: &'static str| (Some("https://example.org/"), Some(link), n, n, Some(D1));
    let recorded = |ws: &Workspace, path: &str| -> usize {
        let blob: Option<Vec<u8>> = ws
            .db()
            .query_row(
                "SELECT segments FROM feeds WHERE url LIKE '%' || ?1",
                [path],
                |r| r.get(0),
            )
            .unwrap();
        blob.map_or(0, |b| b.len() / 8)
    };
    server.set(
        "/f.xml",
        Route::rss(rss("f", &[item("a", "1"), item("b", "1"), item("c", "1")])),
    );
    let two = [
        same("x", "https://example.org/x"),
        same("y", "https://example.org/y"),
    ];
    server.set("/same-guid.xml", Route::rss(rss("s", &two)));
    let run = ws.poll().await;
    assert!(run.stdout.contains("5 new"), "{}", run.stdout);
    assert_eq!(recorded(&ws, "/f.xml"), 3, "every stored item is recorded");
    assert_eq!(
        recorded(&ws, "/same-guid.xml"),
        0,
        "repeated guids: nothing is cut"
    );

    // A stored hash nobody could match: were item `a` parsed again, it would count as updated.
    // It is not, because its fingerprint is recorded and the parser never sees it.
    rusqlite::Connection::open(ws.path("data/t.db"))
        .unwrap()
        .execute(
            "UPDATE entries SET content_hash = 'stale' WHERE key = 'guid:a'",
            [],
        )
        .unwrap();

    // The channel title changes too, so the body is new but most items are not.
    let v2 = rss(
        "f2",
        &[item("a", "1"), item("b", "2"), item("c", "1"), item("d", "1")],
    );
    server.set("/f.xml", Route::rss(v2));
    let three = [two[0], two[1], same("z", "https://example.org/z")];
    server.set("/same-guid.xml", Route::rss(rss("s", &three)));
    let run = ws.poll().await;
    assert!(run.stdout.contains("2 new, 1 updated"), "{}", run.stdout);
    assert_eq!(recorded(&ws, "/f.xml"), 4);
    let rows = ws.rows();
    assert_eq!(rows.len(), 7, "{rows:#?}");
    let b = rows.iter().find(|r| r.key == "guid:b").unwrap();
    assert!(
        b.summary.as_deref().unwrap().contains('2'),
        "the edit is stored: {b:?}"
    );
    let by_link: Vec<_> = rows
        .iter()
        .filter(|r| r.key.starts_with("link:"))
        .map(|r| r.title.as_str())
        .collect();
    assert_eq!(by_link, ["x", "y", "z"]);

    // An item edited back and forth is seen each time; a removed item forgets its print.
    server.set(
        "/f.xml",
        Route::rss(rss("f3", &[item("b", "1"), item("c", "1"), item("d", "1")])),
    );
    let run = ws.poll().await;
    assert!(run.stdout.contains("0 new, 1 updated"), "{}", run.stdout);
    assert_eq!(recorded(&ws, "/f.xml"), 3);
    let b = ws.rows().into_iter().find(|r| r.key == "guid:b").unwrap();
    assert!(b.summary.as_deref().unwrap().contains('1'), "{b:?}");
}

async fn guidless_entries_dedupe_by_canonical_link(ws: Workspace) {
    let server = FeedServer::start().await;
    ws.config_with_feeds(&[server.url("/f.xml")]);
    server.set(
        "/f.xml",
        Route::rss(rss(
            "f",
            &[
                (
                    None,
                    Some("https://example.org/post?utm_source=rss&amp;id=1"),
                    "One",
                    "x",
                    Some(D1),
                ),
                (None, Some("https://example.org/two"), "Two", "y", Some(D2)),
            ],
        )),
    );
    assert_eq!(ws.poll().await.code, 0);
    // The same posts again, the links now with other tracking noise and a fragment.
    server.set(
        "/f.xml",
        Route::rss(rss(
            "f",
            &[
                (
                    None,
                    Some("https://EXAMPLE.org/post?id=1&amp;utm_medium=feed#comments"),
                    "One",
                    "x",
                    Some(D1),
                ),
                (None, Some("https://example.org/two"), "Two", "y", Some(D2)),
            ],
        )),
    );
    assert_eq!(ws.poll().await.code, 0);
    let rows = ws.rows();
    assert_eq!(rows.len(), 2, "{rows:#?}");
    assert_eq!(rows[0].key, "link:https://example.org/post?id=1");
}

async fn undated_entries_keep_their_first_seen_date_and_future_dates_are_clamped(ws: Workspace) {
    let server = FeedServer::start().await;
    ws.config_with_feeds(&[server.url("/f.xml")]);
    server.set(
        "/f.xml",
        Route::rss(rss(
            "f",
            &[
                (Some("old"), None, "Dated", "x", Some(D1)),
                (Some("nodate"), None, "Undated", "y", None),
                (
                    Some("future"),
                    None,
                    "From the future",
                    "z",
                    Some("Fri, 01 Jan 2100 00:00:00 +0000"),
                ),
            ],
        )),
    );
    assert_eq!(ws.poll().await.code, 0);
    let first = ws.rows();
    let now = chrono_now();
    let undated = first.iter().find(|r| r.title == "Undated").unwrap();
    let future = first.iter().find(|r| r.title == "From the future").unwrap();
    assert!((now - undated.published).abs() < 120, "first-seen time");
    assert!(future.published <= now, "future dates are clamped to first-seen");

    // Later polls, with the undated entry's text changed, must not move its date.
    server.set(
        "/f.xml",
        Route::rss(rss(
            "f",
            &[
                (Some("old"), None, "Dated", "x", Some(D1)),
                (Some("nodate"), None, "Undated", "y, edited", None),
                (
                    Some("future"),
                    None,
                    "From the future",
                    "z",
                    Some("Fri, 01 Jan 2100 00:00:00 +0000"),
                ),
            ],
        )),
    );
    assert_eq!(ws.poll().await.code, 0);
    let second = ws.rows();
    let undated2 = second.iter().find(|r| r.title == "Undated").unwrap();
    assert_eq!(undated2.published, undated.published);
    assert_eq!(
        second
            .iter()
            .find(|r| r.title == "From the future")
            .unwrap()
            .published,
        future.published
    );
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

async fn second_poll_is_conditional_and_a_304_changes_nothing(ws: Workspace) {
    let server = FeedServer::start().await;
    ws.config_with_feeds(&[server.url("/f.xml")]);
    server.set(
        "/f.xml",
        Route::rss(rss("f", &[(Some("1"), None, "One", "x", Some(D1))]))
            .with_etag("\"v1\"")
            .header("Last-Modified", "Mon, 02 Mar 2026 10:00:00 GMT")
            .gzipped(),
    );
    assert_eq!(ws.poll().await.code, 0);
    let rows = ws.rows();
    let output = std::fs::read(ws.output_path()).unwrap();
    let mtime = std::fs::metadata(ws.output_path()).unwrap().modified().unwrap();

    let run = ws.poll().await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains("(1 unchanged)") && run.stdout.contains("(unchanged)"),
        "{}",
        run.stdout
    );

    let requests = server.requests("/f.xml");
    assert_eq!(requests.len(), 2);
    let first = &requests[0].headers;
    assert!(first.get("if-none-match").is_none());
    let ua = first.get("user-agent").unwrap().to_str().unwrap();
    assert!(ua.starts_with("tributary/") && ua.contains("(+http"), "{ua}");
    assert!(
        first
            .get("accept-encoding")
            .unwrap()
            .to_str()
            .unwrap()
            .contains("gzip")
    );
    let second = &requests[1].headers;
    assert_eq!(second.get("if-none-match").unwrap(), "\"v1\"");
    assert_eq!(
        second.get("if-modified-since").unwrap(),
        "Mon, 02 Mar 2026 10:00:00 GMT"
    );
    assert_eq!(requests[1].status, 304);

    assert_eq!(ws.rows(), rows);
    assert_eq!(
        std::fs::read(ws.output_path()).unwrap(),
        output,
        "byte-identical output"
    );
    assert_eq!(
        std::fs::metadata(ws.output_path()).unwrap().modified().unwrap(),
        mtime,
        "not rewritten"
    );
}

async fn failing_feeds_give_exit_1_and_the_others_are_stored(ws: Workspace) {
    let server = FeedServer::start().await;
    server.set(
        "/good.xml",
        Route::rss(rss("good", &[(Some("1"), None, "Fine", "x", Some(D1))])),
    );
    server.set("/down.xml", Route::status(500, "internal error"));
    server.set(
        "/broken.xml",
        Route::feed(
            "application/feed+json",
            "{\"version\": \"https://jsonfeed.org/version/1.1\", \"title\": \"cut\", \"items\": [{\"id\": \"1\",",
        ),
    );
    server.set(
        "/html.xml",
        Route::status(200, "<html><body>Not a feed</body></html>"),
    );
    ws.config_with_feeds(&[
        server.url("/good.xml"),
        server.url("/down.xml"),
        server.url("/broken.xml"),
        server.url("/html.xml"),
    ]);
    let run = ws.poll().await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout.contains("1 ok") && run.stdout.contains("3 failed"),
        "{}",
        run.stdout
    );
    for (path, reason) in [
        ("/down.xml", "HTTP 500"),
        ("/broken.xml", "malformed"),
        ("/html.xml", "not a feed"),
    ] {
        let line = run
            .stdout
            .lines()
            .find(|l| l.contains(&server.url(path)))
            .unwrap_or_else(|| panic!("no line for {path}: {}", run.stdout));
        assert!(line.starts_with("failed: ") && line.contains(reason), "{line}");
    }
    assert_eq!(ws.rows().len(), 1);
    assert_eq!(ws.output().entries.len(), 1, "the output is still written");
    let feeds: serde_json::Value =
        serde_json::from_str(&ws.tributary(&["feeds", "--json"]).await.stdout).unwrap();
    let down = feeds
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["url"] == server.url("/down.xml"))
        .unwrap();
    assert_eq!(
        (&down["consecutive_failures"], &down["last_error"]),
        (&serde_json::json!(1), &serde_json::json!("HTTP 500")),
        "recorded on the feed"
    );
}

async fn non_utf8_feeds_come_out_right(ws: Workspace) {
    let server = FeedServer::start().await;
    let cyrillic = "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>Новости</title>\
                    <item><guid>1</guid><title>Привет, мир</title></item></channel></rss>";
    let (bytes, _, _) = encoding_rs::WINDOWS_1251.encode(cyrillic);
    // Charset only in the HTTP header.
    server.set(
        "/ru.xml",
        Route::feed("application/rss+xml; charset=windows-1251", bytes.into_owned()),
    );
    let japanese = "<?xml version=\"1.0\" encoding=\"Shift_JIS\"?><rss version=\"2.0\"><channel><title>天気</title>\
                    <item><guid>1</guid><title>桜の開花</title></item></channel></rss>";
    let (bytes, _, _) = encoding_rs::SHIFT_JIS.encode(japanese);
    // Charset only in the XML declaration.
    server.set("/ja.xml", Route::feed("application/rss+xml", bytes.into_owned()));
    let chinese = "<rss version=\"2.0\"><channel><title>新闻</title><item><guid>1</guid>\
                   <title>不归移民漫画系列：专业工作的故事</title></item></channel></rss>";
    let (bytes, _, _) = encoding_rs::GBK.encode(chinese);
    // No label anywhere: detection.
    server.set("/zh.xml", Route::feed("text/xml", bytes.into_owned()));
    // UTF-8 bytes under a wrong Latin-1 label.
    server.set(
        "/fr.xml",
        Route::feed(
            "text/xml; charset=iso-8859-1",
            "<rss version=\"2.0\"><channel><title>fr</title><item><guid>1</guid><title>Café déjà vu</title></item></channel></rss>",
        ),
    );
    ws.config_with_feeds(&[
        server.url("/ru.xml"),
        server.url("/ja.xml"),
        server.url("/zh.xml"),
        server.url("/fr.xml"),
    ]);
    let run = ws.poll().await;
    assert_eq!(run.code, 0, "{run:?}");
    let mut titles: Vec<String> = ws.rows().into_iter().map(|r| r.title).collect();
    titles.sort();
    assert_eq!(
        titles,
        [
            "Café déjà vu",
            "Привет, мир",
            "不归移民漫画系列：专业工作的故事",
            "桜の開花"
        ]
    );
    let out_titles: Vec<String> = ws
        .output()
        .entries
        .iter()
        .map(|e| e.title.as_ref().unwrap().content.clone())
        .collect();
    assert!(out_titles.contains(&"Привет, мир".to_string()));
    validate_atom(&ws.output_path());
}

async fn redirects_are_followed_and_json_and_atom_feeds_merge(ws: Workspace) {
    let server = FeedServer::start().await;
    server.set(
        "/old.json",
        Route::status(301, "").header("Location", "/new.json"),
    );
    server.set(
        "/new.json",
        Route::feed(
            "application/feed+json",
            r#"{"version":"https://jsonfeed.org/version/1.1","title":"J","items":[
                {"id":"j1","url":"https://example.org/j1","title":"Json item","content_html":"<p>j</p>",
                 "date_published":"2026-03-05T00:00:00Z",
                 "attachments":[{"url":"https://example.org/ep.mp3","mime_type":"audio/mpeg","size_in_bytes":123}]}]}"#,
        ),
    );
    server.set(
        "/a.atom",
        Route::feed(
            "application/atom+xml",
            r#"<feed xmlns="http://www.w3.org/2005/Atom"><title>A</title><id>urn:a</id><updated>2026-03-01T00:00:00Z</updated>
               <entry><id>urn:a:1</id><title>Atom item</title><updated>2026-03-01T00:00:00Z</updated>
               <link href="https://example.org/a1"/><content type="html">&lt;script&gt;alert(1)&lt;/script&gt;&lt;b onclick="x()"&gt;safe&lt;/b&gt;</content></entry></feed>"#,
        ),
    );
    ws.config_with_feeds(&[server.url("/old.json"), server.url("/a.atom")]);
    let run = ws.poll().await;
    assert_eq!(run.code, 0, "{run:?}");
    let out = ws.output();
    assert_eq!(out.entries.len(), 2);
    let json = &out.entries[0];
    assert_eq!(json.title.as_ref().unwrap().content, "Json item");
    let enclosure = json
        .links
        .iter()
        .find(|l| l.rel.as_deref() == Some("enclosure"))
        .unwrap();
    assert_eq!(enclosure.href, "https://example.org/ep.mp3");
    assert_eq!(enclosure.length, Some(123));
    let body = out.entries[1].content.as_ref().unwrap().body.as_deref().unwrap();
    assert!(
        body.contains("<b>safe</b>") && !body.contains("script") && !body.contains("onclick"),
        "{body}"
    );
    validate_atom(&ws.output_path());
}

#[tokio::test(flavor = "multi_thread")]
async fn fatal_errors_exit_2_with_file_line_and_key() {
    let ws = Workspace::new();
    let config = ws.write_config(
        "[poll]\nconcurrency = 4\ntimeout = \"soon\"\n\n[[feed]]\nurl = \"a.xml\"\ncolour = \"red\"\n",
    );
    let run = ws.poll().await;
    assert_eq!(run.code, 2, "{run:?}");
    let expected = format!("{}:7:1: feed[1].colour: unknown key `colour`", config.display());
    assert!(run.stderr.contains(&expected), "{}", run.stderr);

    ws.write_config("[poll]\ntimeout = \"soon\"\n");
    let run = ws.poll().await;
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains(":2:11: poll.timeout: `soon` is not a duration"),
        "{}",
        run.stderr
    );

    // A database path that cannot be a database (a directory).
    std::fs::create_dir_all(ws.path("adir")).unwrap();
    ws.write_config("[store]\npath = \"adir\"\n");
    let run = ws.poll().await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("cannot open database"), "{}", run.stderr);

    let run = ws.tributary(&["no-such-command"]).await;
    assert_eq!(run.code, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_bundled_demo_runs_offline() {
    let ws = Workspace::new();
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    for name in [
        "demo.toml",
        "demo-feeds/river-notes.rss",
        "demo-feeds/workshop.atom",
        "demo-feeds/releases.json",
        "demo-feeds/gazette-latin1.rss",
        "demo-feeds/tenki-shift_jis.rss",
    ] {
        ws.write(name, &std::fs::read(src.join(name)).unwrap());
    }
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_tributary"))
        .args(["--config", ws.path("demo.toml").to_str().unwrap(), "poll"])
        .output()
        .await
        .unwrap();
    assert_eq!(run.status.code(), Some(0), "{run:?}");
    let out_path = ws.path("demo-out/all.atom");
    let feed = feed_rs::parser::parse(&std::fs::read(&out_path).unwrap()[..]).unwrap();
    let titles: Vec<String> = feed
        .entries
        .iter()
        .map(|e| e.title.as_ref().unwrap().content.clone())
        .collect();
    assert_eq!(titles.len(), 10, "{titles:?}");
    assert!(
        titles.contains(&"Fête de la rue : l'été arrive en avance".to_string()),
        "{titles:?}"
    );
    assert!(
        titles.contains(&"桜の開花、例年より一週間早く".to_string()),
        "{titles:?}"
    );
    assert!(titles.contains(&"Tidepool 2.4.0".to_string()));
    assert!(titles.contains(&"Fixing a 1970s radio: the capacitors".to_string()));
    validate_atom(&out_path);
    // Its sources are local files: no output a reader gets names a path of this machine (the
    // OPML lists the subscriptions as configured, for `import` to read back).
    for name in ["all.atom", "all.rss", "all.json", "index.html"] {
        let text = std::fs::read_to_string(ws.path(&format!("demo-out/{name}"))).unwrap();
        assert!(!text.contains("file:"), "{name} names a local file");
    }
}

#[test]
fn the_reference_config_is_valid() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/tributary.toml");
    // As packaged: it polls nothing and serves nothing until told.
    let config = tributary::Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.poll.per_host, 2);
    assert!(config.feeds.is_empty() && config.serve.is_none());
    assert_eq!(config.outputs.len(), 2);
    // Its example feed and [serve] table, uncommented as its header says, are valid too.
    let text = std::fs::read_to_string(&path).unwrap();
    let mut section = "";
    let mut taken = std::collections::HashSet::new();
    let uncommented: Vec<String> = text
        .lines()
        .map(|line| {
            if line == "# [serve]" || line == "# [[feed]]" {
                section = line;
                return line[2..].to_string();
            }
            if line.starts_with('[') {
                section = "";
            }
            let keys: &[&str] = match section {
                "# [serve]" => &[
                    "listen",
                    "admin_listen",
                    "max_connections",
                    "header_timeout",
                    "idle_timeout",
                ],
                "# [[feed]]" => &["url", "title", "tags", "disabled", "ignore_hints"],
                _ => &[],
            };
            match line.strip_prefix("# ").and_then(|l| l.split_once(" = ")) {
                Some((key, _)) if keys.contains(&key) && taken.insert((section, key)) => {
                    line[2..].to_string()
                }
                _ => line.to_string(),
            }
        })
        .collect();
    let config = tributary::Config::parse(&path, &uncommented.join("\n")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.feeds.len(), 1);
    assert_eq!(
        config.feeds[0].url.as_str(),
        "https://blog.rust-lang.org/feed.xml"
    );
    assert!(!config.feeds[0].ignore_hints);
    let serve = config.serve.expect("[serve] uncommented");
    assert_eq!(serve.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(
        serve.admin_listen.map(|a| a.to_string()).as_deref(),
        Some("127.0.0.1:8081")
    );
}

/// Every new entry is accounted for: shown, held back as a new feed's back catalogue (and
/// which limit applied), or excluded by a rule. Raising `poll.new_feed_entries` lets more of
/// the back catalogue in at the next render.
async fn held_back_and_excluded_entries_are_counted_and_the_limit_can_be_raised(ws: Workspace) {
    let server = FeedServer::start().await;
    let items: Vec<(String, String, String)> = (0..32)
        .map(|i| {
            (
                format!("e{i}"),
                if i < 2 {
                    format!("Sponsored {i}")
                } else {
                    format!("Entry {i}")
                },
                format!("Mon, {:02} Feb 2026 10:00:00 +0000", i % 28 + 1),
            )
        })
        .collect();
    let items: Vec<crate::support::Item<'_>> = items
        .iter()
        .map(|(g, t, d)| (Some(g.as_str()), None, t.as_str(), "body", Some(d.as_str())))
        .collect();
    server.set("/f.xml", Route::rss(rss("f", &items)));
    let config = |limit: usize| {
        format!(
            "{}[poll]\nnew_feed_entries = {limit}\n\n[[feed]]\nurl = \"{}\"\n\
             exclude = [{{ title = \"^Sponsored\" }}]\n\n[[output]]\npath = \"public/all.atom\"\n",
            ws.store_toml(),
            server.url("/f.xml")
        )
    };
    ws.write_config(&config(10));
    let run = ws.poll().await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains(
            "30 new: 10 shown, 20 held back as new feeds' back catalogues (poll.new_feed_entries = 10), 0 updated entries; 2 excluded by rules"
        ),
        "{}",
        run.stdout
    );
    assert_eq!(ws.output().entries.len(), 10);
    let oldest = ws.tributary(&["explain", "Entry 2"]).await;
    assert!(
        oldest.stdout.contains(
            "number 27 of it by date, past poll.new_feed_entries = 10 (set it to 27 or more to show it)"
        ),
        "{}",
        oldest.stdout
    );
    // More of the back catalogue, at the next render, without polling.
    ws.write_config(&config(25));
    assert_eq!(ws.tributary(&["render"]).await.code, 0);
    assert_eq!(ws.output().entries.len(), 25);
    assert_eq!(server.requests("/f.xml").len(), 1);
}
