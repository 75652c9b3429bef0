//! Real clients of the served outputs: newsboat subscribes to the Atom feed, and headless
//! Chromium loads the HTML page (and leaves a screenshot in `target/test-artifacts/`). Each
//! runs when its program is installed and says SKIPPED otherwise (`.ci/run` installs both).

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::{Daemon, FeedServer, Route, Workspace, require_tool, rss};

const TITLES: [&str; 3] = ["First light", "Second & sound", "Third <thing>"];

/// Each entry's description, escaped HTML as RSS carries it.
const BODY: &str = "&lt;p&gt;Body with &lt;em&gt;markup&lt;/em&gt; and a \
                    &lt;a href=\"https://example.org/more\"&gt;link&lt;/a&gt;.&lt;/p&gt;";

/// A daemon serving `all.atom` and `index.html` from a feed with three entries; returns the
/// server's base URL.
async fn serving_daemon(server: &FeedServer, ws: &Workspace) -> (Daemon, String) {
    let items: Vec<_> = [
        (
            "a1",
            "https://example.org/1",
            "First light",
            "Mon, 02 Mar 2026 10:00:00 +0000",
        ),
        (
            "a2",
            "https://example.org/2",
            "Second &amp; sound",
            "Tue, 03 Mar 2026 10:00:00 +0000",
        ),
        (
            "a3",
            "https://example.org/3",
            "Third &amp;lt;thing&amp;gt;",
            "Wed, 04 Mar 2026 10:00:00 +0000",
        ),
    ]
    .into_iter()
    .map(|(g, l, t, d)| (Some(g), Some(l), t, BODY, Some(d)))
    .collect();
    server.set("/f.xml", Route::rss(rss("readers", &items)));
    ws.write_config(&format!(
        "[store]\npath = \"data/t.db\"\n[poll]\nschedule = \"0 0 1 1 *\"\n\
         [serve]\nlisten = \"127.0.0.1:0\"\n\
         [[feed]]\nurl = \"{feed}\"\ntitle = \"Readers' feed\"\n\
         [[output]]\npath = \"public/all.atom\"\ntitle = \"Planet\"\n\
         [[output]]\npath = \"public/index.html\"\nformat = \"html\"\ntitle = \"Planet\"\n",
        feed = server.url("/f.xml"),
    ));
    let mut daemon = Daemon::start(&ws.path("tributary.toml"));
    let addr = daemon.ready_serving().await;
    daemon.wait_for("last round").await;
    (daemon, format!("http://{addr}"))
}

/// A reader program ready to run against a serving daemon, with a home directory of its own.
struct Client {
    program: PathBuf,
    /// The daemon's base URL.
    base: String,
    home: PathBuf,
    // Dropped in this order: the daemon stops before its workspace goes.
    _daemon: Daemon,
    ws: Workspace,
    _server: FeedServer,
}

/// `None` (and SKIPPED, or a failure under `TRIBUTARY_REQUIRE_ALL`) when `tool` is missing.
async fn client(tool: &str) -> Option<Client> {
    let program = require_tool(tool)?;
    let server = FeedServer::start().await;
    let ws = Workspace::new();
    let (daemon, base) = serving_daemon(&server, &ws).await;
    let home = ws.path(tool);
    std::fs::create_dir_all(&home).unwrap();
    Some(Client {
        program,
        base,
        home,
        _daemon: daemon,
        ws,
        _server: server,
    })
}

/// Runs `program` with a time limit (a hung client fails the test instead of the suite).
async fn run(program: &Path, args: &[&str], home: &Path) -> std::process::Output {
    let child = tokio::process::Command::new(program)
        .args(args)
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("XDG_DATA_HOME", home.join(".local/share"))
        .env("XDG_CACHE_HOME", home.join(".cache"))
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(Duration::from_secs(90), child)
        .await
        .unwrap_or_else(|_| panic!("{} did not finish in 90 s", program.display()))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn newsboat_subscribes_to_the_served_atom_feed_and_stores_every_entry() {
    // Bound whole: a field left out of a pattern would drop, and the daemon with it.
    let Some(client) = client("newsboat").await else {
        return;
    };
    let (newsboat, base, home, ws) = (&client.program, &client.base, &client.home, &client.ws);
    let atom_url = format!("{base}/all.atom");
    let urls = ws.write("newsboat/urls", format!("{atom_url}\n").as_bytes());
    let config = ws.write("newsboat/config", b"");
    let cache = home.join("cache.db");
    let out = run(
        newsboat,
        &[
            "-x",
            "reload",
            "-u",
            urls.to_str().unwrap(),
            "-C",
            config.to_str().unwrap(),
            "-c",
            cache.to_str().unwrap(),
        ],
        home,
    )
    .await;
    assert!(out.status.success(), "newsboat failed: {out:?}");

    let db = rusqlite::Connection::open(&cache).unwrap();
    let mut titles: Vec<String> = db
        .prepare("SELECT title FROM rss_item WHERE feedurl = ?1 ORDER BY pubDate")
        .unwrap()
        .query_map([&atom_url], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    titles.sort();
    let mut expected: Vec<String> = TITLES.iter().map(|t| t.to_string()).collect();
    expected.sort();
    assert_eq!(titles, expected, "newsboat stored every entry, titles intact");
    let links: i64 = db
        .query_row(
            "SELECT COUNT(*) FROM rss_item WHERE feedurl = ?1 AND url LIKE 'https://example.org/%'",
            [&atom_url],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(links, 3, "every entry kept its link");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_html_page_loads_in_headless_chromium_without_errors() {
    let Some(client) = client("chromium").await else {
        return;
    };
    let (chromium, base, home) = (&client.program, &client.base, &client.home);
    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let screenshot = artifacts.join("index.png");
    let _ = std::fs::remove_file(&screenshot);
    let profile = format!("--user-data-dir={}", home.join("profile").display());
    let common = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--enable-logging=stderr",
        "--v=0",
        profile.as_str(),
    ];
    let page = format!("{base}/");

    // The DOM after loading: every entry, its source, and no script anywhere.
    let mut args = common.to_vec();
    args.extend(["--dump-dom", page.as_str()]);
    let out = run(chromium, &args, home).await;
    assert!(out.status.success(), "chromium failed: {out:?}");
    let dom = String::from_utf8_lossy(&out.stdout);
    for title in TITLES {
        let escaped = title
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;");
        assert!(dom.contains(&escaped), "{title} missing from the page:\n{dom}");
    }
    assert!(
        dom.contains("Readers' feed")
            || dom.contains("Readers&#39; feed")
            || dom.contains("Readers&#x27; feed")
    );
    assert_eq!(
        dom.matches("Body with <em>markup</em>").count(),
        3,
        "every entry's content is shown"
    );
    assert!(!dom.to_ascii_lowercase().contains("<script"), "{dom}");
    // JavaScript errors and Content-Security-Policy violations are logged to the console.
    let log = String::from_utf8_lossy(&out.stderr);
    for bad in ["Uncaught", "Refused to"] {
        assert!(!log.contains(bad), "the page logged `{bad}`:\n{log}");
    }

    let shot = format!("--screenshot={}", screenshot.display());
    let mut args = common.to_vec();
    args.extend([
        "--window-size=1280,1600",
        "--hide-scrollbars",
        shot.as_str(),
        page.as_str(),
    ]);
    let out = run(chromium, &args, home).await;
    assert!(out.status.success(), "chromium failed: {out:?}");
    let png = std::fs::read(&screenshot).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert!(png.len() > 10_000, "a blank page? only {} bytes", png.len());
    eprintln!("screenshot of the HTML page: {}", screenshot.display());
}

/// Titles and authors that mean different things to plain-text and HTML readers (`<`, `&`,
/// quotes, entities spelled out, CJK) come back the same from our RSS through our own parser,
/// feedparser and newsboat.
#[tokio::test(flavor = "multi_thread")]
async fn rss_titles_and_authors_come_back_the_same_from_every_reader() {
    let texts = [
        "Use <b> for bold & <img src=x onerror=alert(1)>",
        "Fish & Chips",
        "a &lt; b, written out",
        "x < y and y > z",
        "Tom's \"quoted\" word",
        "&amp; as text",
        "AT&T",
        "日本語 <漢字> と「引用」",
    ];
    let escape = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    let mut atom = String::from(
        "<?xml version=\"1.0\"?><feed xmlns=\"http://www.w3.org/2005/Atom\"><title>Source</title>\
         <id>urn:x-test:source</id><updated>2026-03-02T10:00:00Z</updated>",
    );
    for (i, t) in texts.iter().enumerate() {
        atom.push_str(&format!(
            "<entry><id>urn:x-test:{i}</id><title type=\"text\">{t}</title><author><name>{t}</name></author>\
             <updated>2026-03-0{d}T10:00:00Z</updated><link href=\"https://example.org/{i}\"/>\
             <content type=\"text\">body</content></entry>",
            t = escape(t),
            d = i + 1,
        ));
    }
    atom.push_str("</feed>");
    let source = Workspace::new();
    source.write("feeds/source.atom", atom.as_bytes());
    source.write_config(
        "[store]\npath = \"data/t.db\"\n[poll]\nnew_feed_entries = 100\n\n[[feed]]\nurl = \"feeds/source.atom\"\n\n\
         [[output]]\npath = \"public/all.rss\"\nformat = \"rss\"\n",
    );
    assert_eq!(source.poll().await.code, 0);
    let rss_path = source.path("public/all.rss");
    let mut want: Vec<(String, String)> = texts.iter().map(|t| (t.to_string(), t.to_string())).collect();
    want.sort();

    // Our own parser, reading our RSS as any feed.
    let reader = Workspace::new();
    reader.write_config(&format!(
        "[store]\npath = \"data/t.db\"\n[poll]\nnew_feed_entries = 100\n\n[[feed]]\nurl = \"{}\"\n\n\
         [[output]]\npath = \"public/all.atom\"\n",
        rss_path.display()
    ));
    assert_eq!(reader.poll().await.code, 0);
    let mut ours: Vec<(String, String)> = reader
        .db()
        .prepare("SELECT title, author_name FROM entries")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    ours.sort();
    assert_eq!(ours, want, "our parser");

    // feedparser, the reference reader of the corpus.
    if crate::support::require_python_module("feedparser") {
        let out = std::process::Command::new("python3")
            .args([
                "-c",
                "import feedparser, json, sys\nd = feedparser.parse(sys.argv[1])\n\
                 print(json.dumps([[e.title, e.get('author', '')] for e in d.entries]))",
                rss_path.to_str().unwrap(),
            ])
            .output()
            .unwrap();
        let mut theirs: Vec<(String, String)> = serde_json::from_slice::<Vec<(String, String)>>(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
        theirs.sort();
        assert_eq!(theirs, want, "feedparser");
    }

    // newsboat, subscribed to the file.
    if let Some(newsboat) = require_tool("newsboat") {
        let home = reader.path("newsboat");
        std::fs::create_dir_all(&home).unwrap();
        let urls = reader.write(
            "newsboat/urls",
            format!("file://{}\n", rss_path.display()).as_bytes(),
        );
        let config = reader.write("newsboat/config", b"");
        let cache = home.join("cache.db");
        let out = run(
            &newsboat,
            &[
                "-x",
                "reload",
                "-u",
                urls.to_str().unwrap(),
                "-C",
                config.to_str().unwrap(),
                "-c",
                cache.to_str().unwrap(),
            ],
            &home,
        )
        .await;
        assert!(out.status.success(), "newsboat failed: {out:?}");
        let mut theirs: Vec<(String, String)> = rusqlite::Connection::open(&cache)
            .unwrap()
            .prepare("SELECT title, author FROM rss_item")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        theirs.sort();
        assert_eq!(theirs, want, "newsboat");
    }
}
