//! The operators' commands, run as the real binary: check, feeds, render, import/export,
//! add/remove, explain, completions, man, and the progress bar under a pseudo-terminal.

use crate::support::{FeedServer, Route, Workspace, require_tool, rss};

crate::on_both_stores!(
    feeds_json_reports_health_and_render_needs_no_network,
    explain_says_why_an_entry_is_where_it_is,
    a_feed_under_a_new_spelling_keeps_its_history_and_its_ids,
);

const D1: &str = "Mon, 02 Mar 2026 10:00:00 +0000";
const D2: &str = "Tue, 03 Mar 2026 10:00:00 +0000";

#[tokio::test(flavor = "multi_thread")]
async fn check_reports_every_problem_with_its_line() {
    let ws = Workspace::new();
    let config = ws.write_config(
        "# three mistakes\n[poll]\nconcurency = 4\ntimeout = \"soon\"\n\n[[feed]]\nurl = \"a.xml\"\nexclude = [\"(oops\"]\n",
    );
    let run = ws.tributary(&["check"]).await;
    assert_eq!(run.code, 2, "{run:?}");
    let file = config.display();
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(
        lines[0],
        format!("{file}:3:1: poll.concurency: unknown key `concurency`; did you mean `concurrency`?")
    );
    assert!(
        lines[1].starts_with(&format!("{file}:4:11: poll.timeout: `soon` is not a duration")),
        "{}",
        lines[1]
    );
    assert!(
        lines[2].starts_with(&format!(
            "{file}:8:12: feed[1].exclude: invalid regular expression `(oops`"
        )),
        "{}",
        lines[2]
    );
    assert_eq!(lines[3], format!("3 problems in {file}"));

    // Paths that cannot be written are problems too (no network, no database touched).
    ws.write("not-a-dir", b"a file");
    ws.write_config(
        "[[feed]]\nurl = \"https://example.org/feed\"\n[[output]]\npath = \"not-a-dir/all.atom\"\n",
    );
    let run = ws.tributary(&["check"]).await;
    assert_eq!(run.code, 2);
    assert!(
        run.stdout.contains("output[1].path: cannot write"),
        "{}",
        run.stdout
    );
    assert!(
        !ws.path("tributary.db").exists(),
        "check does not create the database"
    );
    // A poll meets the same problem in the same words, not as a bare OS error (no feeds: the
    // outputs are still written).
    ws.write_config("[[output]]\npath = \"not-a-dir/all.atom\"\n");
    let polled = ws.tributary(&["poll"]).await;
    assert!(
        polled.stderr.contains(&format!(
            "cannot write output {}: {} is not a directory",
            ws.path("not-a-dir/all.atom").display(),
            ws.path("not-a-dir").display()
        )),
        "{}",
        polled.stderr
    );

    ws.write_config("[[feed]]\nurl = \"https://example.org/feed\"\n[[output]]\npath = \"out/all.atom\"\n");
    let run = ws.tributary(&["check"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    // A feed written to a file with no address to name it by works, with a word about the
    // readers that need a self link.
    assert!(
        run.stdout.contains(":3:1: output[1]: it has no address")
            && run.stdout.ends_with(": 1 feed, 1 output: ok (1 warning)\n"),
        "{}",
        run.stdout
    );
    ws.write_config(
        "[[feed]]\nurl = \"https://example.org/feed\"\n[[output]]\npath = \"out/all.atom\"\nurl = \"https://planet.example/all.atom\"\n",
    );
    let run = ws.tributary(&["check"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.ends_with(": 1 feed, 1 output: ok\n"), "{}", run.stdout);
}

async fn feeds_json_reports_health_and_render_needs_no_network(ws: Workspace) {
    let server = FeedServer::start().await;
    server.set(
        "/ok.xml",
        Route::rss(rss(
            "ok",
            &[
                (Some("1"), None, "One", "x", Some(D1)),
                (Some("2"), None, "Two", "x", Some(D2)),
            ],
        )),
    );
    server.set("/down.xml", Route::status(503, "down"));
    ws.config_with_feeds(&[server.url("/ok.xml"), server.url("/down.xml")]);
    assert_eq!(ws.poll().await.code, 1);

    let run = ws.tributary(&["feeds", "--json"]).await;
    assert_eq!(run.code, 1, "a feed is failing: {run:?}");
    let feeds: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(feeds[0]["url"], server.url("/ok.xml"));
    assert_eq!(feeds[0]["entries"], 2);
    assert_eq!(feeds[0]["consecutive_failures"], 0);
    assert!(feeds[0]["last_success"].is_string());
    assert_eq!(feeds[1]["consecutive_failures"], 1);
    assert_eq!(feeds[1]["last_error"], "HTTP 503");
    assert!(feeds[1]["failing_since"].is_string() && feeds[1]["next_poll"].is_string());
    // Every time in one form: RFC 3339, UTC, to the second.
    for feed in feeds.as_array().unwrap() {
        for key in ["last_success", "failing_since", "last_new_entry", "next_poll"] {
            if let Some(t) = feed[key].as_str() {
                assert!(
                    t.len() == 20 && t.ends_with('Z') && chrono::DateTime::parse_from_rfc3339(t).is_ok(),
                    "{key}: {t}"
                );
            }
        }
    }

    let table = ws.tributary(&["status"]).await;
    assert!(
        table.stdout.starts_with("TITLE") && table.stdout.contains("2 feeds, 1 failing"),
        "{}",
        table.stdout
    );
    assert!(!table.stdout.contains("\x1b["), "no colour on a pipe");

    // render: outputs from the store alone.
    let requests = server.requests("/ok.xml").len();
    std::fs::remove_file(ws.output_path()).unwrap();
    let run = ws.tributary(&["render"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(ws.output().entries.len(), 2);
    assert_eq!(
        server.requests("/ok.xml").len(),
        requests,
        "render fetches nothing"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn import_then_export_loses_nothing() {
    let ws = Workspace::new();
    ws.write_config("# My planet: keep this comment\n[store]\npath = \"data/t.db\"\n\n[[feed]]\nurl = \"https://already.example/feed\" # and this one\n");
    let opml = r#"<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0"><head><title>My subscriptions</title></head><body>
  <outline text="Tech">
    <outline type="rss" text="Rust Blog" title="Rust Blog" xmlUrl="https://blog.rust-lang.org/feed.xml" htmlUrl="https://blog.rust-lang.org/"/>
    <outline type="rss" text="LWN &amp; friends" xmlUrl="https://lwn.example/headlines/rss" category="/linux,/news"/>
  </outline>
  <outline type="rss" text="Already there" xmlUrl="https://already.example/feed"/>
  <outline type="rss" text="Café Society" xmlUrl="https://cafe.example/atom.xml"/>
  <outline text="Go/Python, etc.">
    <outline type="rss" text="Gopher News" xmlUrl="https://go.example/feed"/>
  </outline>
  <outline text="Later">
    <outline type="rss" text="Gopher News, again" xmlUrl="https://go.example/feed"/>
  </outline>
</body></opml>"#;
    let file = ws.write("subs.opml", opml.as_bytes());
    let run = ws.tributary(&["import", file.to_str().unwrap()]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains("imported 4 feeds") && run.stdout.contains("2 already there"),
        "{}",
        run.stdout
    );
    let config = std::fs::read_to_string(ws.path("tributary.toml")).unwrap();
    assert!(config.starts_with("# My planet: keep this comment\n"), "{config}");
    assert!(
        config.contains("\"https://already.example/feed\" # and this one"),
        "{config}"
    );

    let again = ws.tributary(&["import", file.to_str().unwrap()]).await;
    assert!(again.stdout.contains("imported 0 feeds"), "{}", again.stdout);

    let export = ws.tributary(&["export"]).await;
    assert_eq!(export.code, 0, "{export:?}");
    let out = export.stdout;
    for (url, title, category) in [
        // The first tag is the folder; the others are categories.
        ("https://blog.rust-lang.org/feed.xml", "Rust Blog", None),
        (
            "https://lwn.example/headlines/rss",
            "LWN &amp; friends",
            Some("/linux,/news"),
        ),
        ("https://cafe.example/atom.xml", "Café Society", None),
        // Listed twice: the title it was first given, the tags of both; a folder name with a
        // slash and a comma is one folder, and a category written as it reads.
        ("https://go.example/feed", "Gopher News", Some("/Later")),
    ] {
        let line = out
            .lines()
            .find(|l| l.contains(&format!("xmlUrl=\"{url}\"")))
            .unwrap_or_else(|| panic!("{url}:\n{out}"));
        assert!(line.contains(&format!("title=\"{title}\"")), "{line}");
        match category {
            Some(c) => assert!(line.contains(&format!("category=\"{c}\"")), "{line}"),
            None => assert!(!line.contains("category="), "{line}"),
        }
    }
    assert!(
        out.contains("<outline text=\"Go/Python, etc.\" title=\"Go/Python, etc.\">\n      <outline type=\"rss\" text=\"Gopher News\""),
        "{out}"
    );
    assert!(!out.contains('%'), "{out}");
    // And back: the exported OPML imports into an empty config as the same feeds.
    let ws2 = Workspace::new();
    ws2.write_config("[store]\npath = \"data/t.db\"\n");
    let file2 = ws2.write("export.opml", out.as_bytes());
    assert_eq!(ws2.tributary(&["import", file2.to_str().unwrap()]).await.code, 0);
    let round = ws2.tributary(&["export"]).await.stdout;
    let outlines = |s: &str| {
        s.lines()
            .filter(|l| l.contains("<outline"))
            .map(str::trim)
            .map(String::from)
            .collect::<Vec<_>>()
    };
    assert_eq!(outlines(&round), outlines(&out));
}

#[tokio::test(flavor = "multi_thread")]
async fn add_finds_the_feed_of_a_page_and_remove_takes_it_out() {
    let server = FeedServer::start().await;
    server.set(
        "/feed.xml",
        Route::rss(rss("blog", &[(Some("1"), None, "Post", "x", Some(D1))])),
    );
    server.set(
        "/",
        Route::feed(
            "text/html; charset=utf-8",
            "<!DOCTYPE html><html><head><title>Blog</title>\
             <link rel=\"alternate\" type=\"application/rss+xml\" title=\"RSS\" href=\"/feed.xml\">\
             <link rel=\"alternate\" type=\"application/atom+xml\" title=\"Comments\" href=\"/comments.xml\"></head><body>hi</body></html>",
        ),
    );
    let ws = Workspace::new();
    ws.write_config("# feeds below\n[store]\npath = \"data/t.db\"\n");
    let run = ws
        .tributary(&[
            "add",
            &server.url("/"),
            "--title",
            "Some Blog",
            "--tag",
            "friends",
            "--tag",
            "rust",
        ])
        .await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains(&format!(
            "found the feed of {}: {}",
            server.url("/"),
            server.url("/feed.xml")
        )),
        "{}",
        run.stdout
    );
    // The page's other feed is named, to pick from; with no daemon running, no word of one.
    assert!(
        run.stdout.contains(&format!(
            "the page also links to {} (add it with `tributary add {}`)",
            server.url("/comments.xml"),
            server.url("/comments.xml")
        )) && !run.stdout.contains("runs on this config"),
        "{}",
        run.stdout
    );
    let config = std::fs::read_to_string(ws.path("tributary.toml")).unwrap();
    assert!(
        config.contains(&format!("url = \"{}\"", server.url("/feed.xml"))),
        "{config}"
    );
    assert!(
        config.contains("title = \"Some Blog\"") && config.contains("tags = [\"friends\", \"rust\"]"),
        "{config}"
    );
    assert!(config.starts_with("# feeds below"), "comments kept");

    let again = ws.tributary(&["add", &server.url("/feed.xml")]).await;
    assert!(again.stdout.contains("already in"), "{}", again.stdout);
    assert_eq!(ws.poll().await.code, 0, "the added feed polls");

    // Beside a running daemon, an edit says the daemon takes it when reloaded.
    server.set(
        "/comments.xml",
        Route::rss(rss("comments", &[(Some("c1"), None, "Comment", "x", Some(D1))])),
    );
    let mut daemon = crate::support::Daemon::start(&ws.path("tributary.toml"));
    daemon.wait_for("READY=1").await;
    let beside = ws.tributary(&["add", &server.url("/comments.xml")]).await;
    assert_eq!(beside.code, 0, "{beside:?}");
    assert!(
        beside.stdout.contains(&format!(
            "`tributary run` (pid {}) runs on this config: it takes the change when reloaded",
            daemon.pid()
        )),
        "{}",
        beside.stdout
    );
    daemon.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(daemon.exit_code().await, 0, "{}", daemon.stderr());
    assert_eq!(
        ws.tributary(&["remove", &server.url("/comments.xml")]).await.code,
        0
    );

    let removed = ws.tributary(&["remove", "Some Blog"]).await;
    assert_eq!(removed.code, 0, "{removed:?}");
    let config = std::fs::read_to_string(ws.path("tributary.toml")).unwrap();
    assert!(!config.contains("feed.xml"), "{config}");
    assert_eq!(
        ws.tributary(&["remove", "Some Blog"]).await.code,
        2,
        "nothing left to remove"
    );

    let not_a_feed = FeedServer::start().await;
    not_a_feed.set(
        "/",
        Route::feed("text/html", "<html><head></head><body>no feeds</body></html>"),
    );
    let run = ws.tributary(&["add", &not_a_feed.url("/")]).await;
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("neither a feed nor a page that links to one"),
        "{}",
        run.stderr
    );
}

async fn explain_says_why_an_entry_is_where_it_is(ws: Workspace) {
    let server = FeedServer::start().await;
    server.set(
        "/a.xml",
        Route::rss(rss(
            "a",
            &[(
                None,
                Some("https://news.example/story"),
                "Shared story",
                "x",
                Some(D1),
            )],
        )),
    );
    server.set(
        "/b.xml",
        Route::rss(rss(
            "b",
            &[
                (
                    Some("b1"),
                    Some("https://news.example/story?utm_source=b"),
                    "Shared story (B)",
                    "x",
                    Some(D2),
                ),
                (
                    Some("b2"),
                    Some("https://b.example/ad"),
                    "Sponsored thing",
                    "x",
                    Some(D2),
                ),
            ],
        )),
    );
    ws.write_config(&format!(
        "{}[[feed]]\nurl = \"{}\"\ntitle = \"Feed A\"\n[[feed]]\nurl = \"{}\"\ntitle = \"Feed B\"\n\
         [[output]]\npath = \"public/all.atom\"\nexclude = [{{ title = \"(?i)sponsored\" }}]\n",
        ws.store_toml(),
        server.url("/a.xml"),
        server.url("/b.xml")
    ));
    assert_eq!(ws.poll().await.code, 0);
    let copy = ws
        .tributary(&["explain", "https://news.example/story?utm_source=b"])
        .await;
    assert_eq!(copy.code, 0, "{copy:?}");
    let text = copy.stdout;
    assert!(
        text.contains("identity key: link:https://news.example/story (its canonical link"),
        "{text}"
    );
    assert!(
        text.contains("identity key: guid:b1 (the feed's own guid/id"),
        "{text}"
    );
    assert!(
        text.contains("merged: shown once, as the copy from Feed A"),
        "{text}"
    );
    assert!(
        text.contains("shown, as the copy of the feed that had it first; also in Feed B"),
        "{text}"
    );

    let ad = ws.tributary(&["explain", "https://b.example/ad"]).await;
    assert!(
        ad.stdout
            .contains("excluded by output[1] rule title = \"(?i)sponsored\""),
        "{}",
        ad.stdout
    );

    // By the id a subscriber sees in the output.
    let atom = std::fs::read_to_string(ws.output_path()).unwrap();
    let id = atom
        .split("<id>")
        .nth(2)
        .unwrap()
        .split("</id>")
        .next()
        .unwrap()
        .to_string();
    let by_id = ws.tributary(&["explain", &id]).await;
    assert_eq!(by_id.code, 0, "{by_id:?}");
    assert!(by_id.stdout.contains("entry: Shared story"), "{}", by_id.stdout);

    let missing = ws.tributary(&["explain", "https://nowhere.example/"]).await;
    assert_eq!(missing.code, 1);
    assert!(
        missing.stdout.contains("no stored entry matches"),
        "{}",
        missing.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn completions_man_and_help() {
    let ws = Workspace::new();
    for shell in ["bash", "zsh", "fish"] {
        let run = ws.tributary(&["completions", shell]).await;
        assert_eq!(run.code, 0);
        assert!(
            run.stdout.contains("tributary") && run.stdout.contains("explain"),
            "{shell}"
        );
    }
    let man = ws.tributary(&["man"]).await;
    assert!(
        man.stdout.starts_with(".ie") || man.stdout.contains(".TH tributary"),
        "{}",
        &man.stdout[..200.min(man.stdout.len())]
    );
    for command in [
        "poll", "run", "check", "feeds", "render", "import", "export", "add", "remove", "explain",
    ] {
        let help = ws.tributary(&[command, "--help"]).await;
        assert_eq!(help.code, 0);
        assert!(
            help.stdout.contains("Example"),
            "{command} --help shows an example"
        );
    }
}

/// The progress bar appears on a terminal (a pseudo-terminal made by `script`) and never in
/// a pipe.
#[tokio::test(flavor = "multi_thread")]
async fn progress_bar_only_on_a_terminal() {
    let Some(script) = require_tool("script") else {
        return;
    };
    let server = FeedServer::start().await;
    server.set(
        "/a.xml",
        Route::rss(rss("a", &[(Some("1"), None, "One", "x", Some(D1))])),
    );
    let ws = Workspace::new();
    ws.config_with_feeds(&[server.url("/a.xml")]);
    let command = format!(
        "{} --config {} poll",
        env!("CARGO_BIN_EXE_tributary"),
        ws.path("tributary.toml").display()
    );
    let out = tokio::process::Command::new(script)
        .args(["-qec", &command, "/dev/null"])
        .env("TERM", "xterm")
        .output()
        .await
        .unwrap();
    let tty = String::from_utf8_lossy(&out.stdout);
    assert!(tty.contains("polling [") && tty.contains("1/1 feeds"), "{tty}");
    let piped = ws.poll().await;
    assert!(!piped.stderr.contains("polling [") && !piped.stdout.contains("polling ["));
}

/// `check` reports every problem of a config in one run, each as FILE:LINE:COL: key: message,
/// the file named the same way every time: one mistake of each kind.
#[tokio::test(flavor = "multi_thread")]
async fn check_reports_every_problem_at_once_with_its_place() {
    let ws = Workspace::new();
    ws.write("broken.html", b"<p>{{ title </p>{% endfor %}\n");
    let config = "\
[store]
keep_days = \"forever\"

[poll]
concurency = 3
timeout = \"soon\"
schedule = \"every hour\"
deny_private_networks = \"yes\"

[[feed]]
title = \"No url here\"
exclude = [\"(\"]

[[feed]]
url = \"https://EXAMPLE.org:443/a.xml#top\"

[[feed]]
url = \"https://example.org/a.xml\"

[[feed]]
url = \"gopher://old.example/\"

[[feed]]
url = \"https://x.example/${NOT_SET_ANYWHERE}\"

[[output]]
path = \"public/all.atom\"
format = \"atomm\"

[[output]]
format = \"rss\"

[[output]]
path = \"public/index.html\"
format = \"html\"
template = \"broken.html\"
dedupe = \"links\"
";
    ws.write_config(config);
    let run = ws.tributary(&["check"]).await;
    assert_eq!(run.code, 2, "{run:?}");
    let file = ws.path("tributary.toml").display().to_string();
    let expected = [
        ":2:13: store.keep_days: must be a whole number",
        ":5:1: poll.concurency: unknown key `concurency`; did you mean `concurrency`?",
        ":6:11: poll.timeout:",
        ":7:12: poll.schedule:",
        ":8:25: poll.deny_private_networks: must be true or false",
        ": feed[1]: missing `url`",
        ":12:12: feed[1].exclude: invalid regular expression",
        ":18:7: feed[3].url: `https://example.org/a.xml` is the same feed as `https://example.org/a.xml#top`",
        ":21:7: feed[4].url: unsupported scheme `gopher`",
        ":24:7: feed[5].url: the environment variable NOT_SET_ANYWHERE",
        ":28:10: output[1].format: unknown format `atomm`; did you mean `atom`?",
        ": output[2]: missing `path`",
        ":37:10: output[3].dedupe: unknown value `links`; did you mean `link`?",
        // What could be read is checked too: the template of the output after two broken ones,
        // named as written, its error placed in the template's own file.
        ":36:12: output[3].template: syntax error",
    ];
    let lines: Vec<&str> = run.stdout.lines().collect();
    for want in expected {
        assert!(
            lines.iter().any(|l| l.starts_with(&file) && l.contains(want)),
            "missing {want:?} in:\n{}",
            run.stdout
        );
    }
    assert!(
        run.stdout.ends_with(&format!("14 problems in {file}\n")),
        "{}",
        run.stdout
    );
    // With the rest fixed, the template's error is the one problem, and -v says where things go.
    ws.write_config(
        "[[feed]]\nurl = \"example.org/feed.xml\"\n\n[[output]]\npath = \"public/index.html\"\nformat = \"html\"\ntemplate = \"broken.html\"\n",
    );
    let run = ws.tributary(&["check", "-v"]).await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stdout.contains(":7:12: output[1].template:") && run.stdout.contains("broken.html:1"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("warning: ")
            && run
                .stdout
                .contains("did you mean `https://example.org/feed.xml`?"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains(&format!("database: {}", ws.path("tributary.db").display())),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains(&format!("output[1]: {}", ws.path("public/index.html").display())),
        "{}",
        run.stdout
    );
}

/// Commands that read the store never create one, and a database newer than the binary is
/// refused without a byte of it changing (opening it must not so much as switch its journal).
#[tokio::test(flavor = "multi_thread")]
async fn reading_commands_create_nothing_and_a_newer_database_is_left_as_it_was() {
    let ws = Workspace::new();
    ws.write(
        "a.xml",
        rss("a", &[(Some("1"), None, "One", "x", None)]).as_bytes(),
    );
    ws.write_config(
        "[store]\npath = \"data/t.db\"\n[[feed]]\nurl = \"a.xml\"\n[[output]]\npath = \"o.atom\"\n",
    );
    let explain = ws.tributary(&["explain", "One"]).await;
    assert_eq!(explain.code, 1, "{}", explain.stderr);
    assert!(
        explain.stdout.contains("there is no database yet"),
        "{}",
        explain.stdout
    );
    let feeds = ws.tributary(&["feeds"]).await;
    assert_eq!(feeds.code, 0, "{}", feeds.stderr);
    assert!(feeds.stdout.contains("1 feed, 0 failing"), "{}", feeds.stdout);
    assert!(
        !ws.path("data/t.db").exists(),
        "a reading command created the database"
    );

    // A database from a newer Tributary: schema version 99.
    std::fs::create_dir_all(ws.path("data")).unwrap();
    {
        let db = rusqlite::Connection::open(ws.path("data/t.db")).unwrap();
        db.execute_batch("CREATE TABLE future (x); PRAGMA user_version = 99;")
            .unwrap();
    }
    let before = std::fs::read(ws.path("data/t.db")).unwrap();
    for args in [&["poll"][..], &["explain", "One"], &["feeds"], &["render"]] {
        let run = ws.tributary(args).await;
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(
            run.stderr
                .contains("schema version 99, newer than this Tributary understands"),
            "{args:?}: {}",
            run.stderr
        );
        assert_eq!(
            std::fs::read(ws.path("data/t.db")).unwrap(),
            before,
            "{args:?} changed it"
        );
        assert!(!ws.path("data/t.db-wal").exists(), "{args:?} left a WAL");
    }
}

/// `preview` shows what a poll would store of one feed, with the feed's own rules, and
/// stores nothing.
#[tokio::test(flavor = "multi_thread")]
async fn preview_shows_what_a_poll_would_store_and_stores_nothing() {
    let server = FeedServer::start().await;
    server.set(
        "/blog.xml",
        Route::rss(rss(
            "Blog",
            &[
                (
                    Some("1"),
                    Some("https://blog.example/1"),
                    "Kept post",
                    "x",
                    Some("Mon, 02 Mar 2026 10:00:00 +0000"),
                ),
                (
                    Some("2"),
                    Some("https://blog.example/2"),
                    "Sponsored post",
                    "y",
                    None,
                ),
            ],
        )),
    );
    let ws = Workspace::new();
    ws.write_config(&format!(
        "[store]\npath = \"data/t.db\"\n[[feed]]\nurl = \"{}\"\ntitle = \"The blog\"\nexclude = [\"(?i)sponsored\"]\n\
         [[output]]\npath = \"o.atom\"\n",
        server.url("/blog.xml")
    ));
    for what in [server.url("/blog.xml"), "The blog".to_string()] {
        let run = ws.tributary(&["preview", &what]).await;
        assert_eq!(run.code, 0, "{}", run.stderr);
        for says in [
            "2026-03-02T10:00:00Z  Kept post",
            "key: guid:1 (its guid)",
            "(no date: its first-seen time)  Sponsored post",
            "would not be stored: excluded by feed[1] rule \"(?i)sponsored\"",
            "2 entries, 1 would be stored; nothing was stored",
        ] {
            assert!(
                run.stdout.contains(says),
                "{what}: no `{says}` in\n{}",
                run.stdout
            );
        }
    }
    // A feed outside the config is read with the defaults, no rules.
    let other = ws
        .tributary(&["preview", &format!("{}?x", server.url("/blog.xml"))])
        .await;
    assert!(
        other.stdout.contains("2 entries, 2 would be stored"),
        "{}",
        other.stdout
    );
    assert!(!ws.path("data/t.db").exists(), "preview created the database");
    let missing = ws.tributary(&["preview", &server.url("/missing.xml")]).await;
    assert_eq!(missing.code, 1, "{}", missing.stderr);
}

/// A feed that answers but has had nothing new for `poll.inactive_after` is marked inactive,
/// with the date its newest entry arrived, in the table and in --json.
#[tokio::test(flavor = "multi_thread")]
async fn feeds_marks_inactive_feeds_with_their_last_new_entry() {
    let server = FeedServer::start().await;
    server.set(
        "/old.xml",
        Route::rss(rss("old", &[(Some("1"), None, "Old", "x", None)])),
    );
    server.set(
        "/new.xml",
        Route::rss(rss("new", &[(Some("1"), None, "New", "x", None)])),
    );
    let ws = Workspace::new();
    ws.write_config(&format!(
        "[store]\npath = \"data/t.db\"\n[[feed]]\nurl = \"{}\"\n[[feed]]\nurl = \"{}\"\n[[output]]\npath = \"o.atom\"\n",
        server.url("/old.xml"),
        server.url("/new.xml")
    ));
    assert_eq!(ws.poll().await.code, 0);
    // The old feed's only entry arrived 200 days ago.
    let long_ago = chrono::Utc::now().timestamp() - 200 * 24 * 3600;
    ws.db_rw()
        .execute(
            "UPDATE entries SET first_seen = ?1 WHERE feed_id = (SELECT id FROM feeds WHERE url LIKE '%/old.xml')",
            [long_ago],
        )
        .unwrap();
    let table = ws.tributary(&["feeds"]).await;
    assert!(table.stdout.contains("LAST NEW"), "{}", table.stdout);
    assert!(table.stdout.contains("(inactive)"), "{}", table.stdout);
    assert!(
        table.stdout.contains("2 feeds, 0 failing, 1 inactive"),
        "{}",
        table.stdout
    );
    let json: serde_json::Value =
        serde_json::from_str(&ws.tributary(&["feeds", "--json"]).await.stdout).unwrap();
    let inactive: Vec<bool> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["inactive"].as_bool().unwrap())
        .collect();
    assert_eq!(inactive, [true, false]);
    let newest = json[0]["last_new_entry"].as_str().unwrap();
    assert_eq!(
        chrono::DateTime::parse_from_rfc3339(newest).unwrap().timestamp(),
        long_ago
    );
}

/// `[[feed]] timeout` gives one slow feed longer than `poll.timeout`.
#[tokio::test(flavor = "multi_thread")]
async fn a_feeds_own_timeout_outlasts_the_polls() {
    let server = FeedServer::start().await;
    let slow = std::time::Duration::from_millis(1500);
    for path in ["/patient.xml", "/hurried.xml"] {
        server.set(
            path,
            Route::rss(rss("slow", &[(Some("1"), None, "Late", "x", None)])).delayed(slow),
        );
    }
    let ws = Workspace::new();
    ws.write_config(&format!(
        "[store]\npath = \"data/t.db\"\n[poll]\ntimeout = \"1s\"\n\
         [[feed]]\nurl = \"{}\"\ntimeout = \"20s\"\n[[feed]]\nurl = \"{}\"\n[[output]]\npath = \"o.atom\"\n",
        server.url("/patient.xml"),
        server.url("/hurried.xml")
    ));
    let run = ws.poll().await;
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(run.stdout.contains("1 ok"), "{}", run.stdout);
    assert!(
        run.stderr.contains("hurried.xml") || run.stdout.contains("hurried.xml"),
        "{}{}",
        run.stdout,
        run.stderr
    );
    let feeds = ws.tributary(&["feeds", "--json"]).await;
    let json: serde_json::Value = serde_json::from_str(&feeds.stdout).unwrap();
    assert_eq!(json[0]["entries"], 1);
    assert_eq!(json[1]["failure_kind"], "timeout");
}

/// `check` reports every error and every warning in one run: the paths and templates of what
/// could be read are checked even when other keys are wrong, and warnings are shown beside
/// errors.
#[tokio::test(flavor = "multi_thread")]
async fn check_reports_errors_paths_templates_and_warnings_in_one_run() {
    let ws = Workspace::new();
    ws.write("blocker", b"a file where a directory should be");
    ws.write("page.html", b"<html>{% for x in %}</html>");
    ws.write_config(
        "[poll]\ntimeout = \"soon\"\n\
         [[feed]]\nurl = \"127.0.0.2:8701/feeds/x.rss\"\n\
         [[output]]\npath = \"blocker/all.atom\"\n\
         [[output]]\npath = \"index.html\"\nformat = \"html\"\ntemplate = \"page.html\"\n",
    );
    let run = ws.tributary(&["check"]).await;
    assert_eq!(run.code, 2);
    let said = format!("{}{}", run.stdout, run.stderr);
    for (what, needle) in [
        ("the bad value", "poll.timeout"),
        ("the output under a file", "blocker"),
        ("the template's syntax error", "page.html"),
        ("the scheme-less URL", "warning:"),
    ] {
        assert!(
            said.contains(needle),
            "{what} is not reported in one run:\n{said}"
        );
    }
    assert!(said.contains("127.0.0.2:8701"), "{said}");
}

/// Where there is no config, every command offered writes it where it was looked for; a
/// config with nothing to poll says how to add a feed rather than polling nothing in silence.
#[tokio::test(flavor = "multi_thread")]
async fn a_missing_or_empty_config_says_how_to_make_it() {
    let ws = Workspace::new();
    let bin = env!("CARGO_BIN_EXE_tributary");
    let run = |args: Vec<String>| async move {
        let out = tokio::process::Command::new(bin)
            .args(&args)
            .env_remove("TRIBUTARY_CONFIG")
            .output()
            .await
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };

    // Not named tributary.toml: `init` could not write it; `add` and `import` can.
    std::fs::create_dir_all(ws.path("conf")).unwrap();
    let elsewhere = ws.path("conf/planet.toml").display().to_string();
    let (code, _, stderr) = run(vec!["--config".into(), elsewhere.clone(), "poll".into()]).await;
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains(&format!("tributary --config {elsewhere} add URL"))
            && stderr.contains(&format!(
                "tributary --config {elsewhere} import subscriptions.opml"
            ))
            && !stderr.contains("tributary init"),
        "{stderr}"
    );
    let server = FeedServer::start().await;
    server.set(
        "/feed.xml",
        Route::rss(rss("f", &[(Some("1"), None, "Post", "x", Some(D1))])),
    );
    let (code, _, stderr) = run(vec![
        "--config".into(),
        elsewhere.clone(),
        "add".into(),
        server.url("/feed.xml"),
    ])
    .await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        ws.path("conf/planet.toml").exists(),
        "the hint wrote the config it named"
    );

    // Named tributary.toml in another directory: `init DIR` writes exactly it.
    let dir = ws.path("site").display().to_string();
    let there = format!("{dir}/tributary.toml");
    let (code, _, stderr) = run(vec!["--config".into(), there.clone(), "check".into()]).await;
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains(&format!("to start one there:      tributary init {dir}\n")),
        "{stderr}"
    );
    let (code, _, stderr) = run(vec!["init".into(), dir.clone()]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(std::path::Path::new(&there).exists());

    // A config with no feeds: the poll works (exit 0: nothing failed) and says what to do.
    ws.write_config("[store]\npath = \"data/t.db\"\n\n[[output]]\npath = \"public/all.atom\"\n");
    let polled = ws.poll().await;
    assert_eq!(polled.code, 0, "{polled:?}");
    assert!(
        polled
            .stderr
            .contains("has no feeds to poll: add one with `tributary --config ")
            && polled.stderr.contains(" add URL`"),
        "{}",
        polled.stderr
    );
}

/// `[[feed]] proxy`: the feed and its pages go through the proxy (which resolves the hosts,
/// here names that resolve nowhere else), with the proxy's credentials; a host that resolves
/// here to a refused address is refused before the proxy hears of it; a proxy that is no URL
/// is a config error at its place.
#[tokio::test(flavor = "multi_thread")]
async fn a_feeds_proxy_carries_its_feed_and_its_pages() {
    // A proxy answers absolute-form requests (`GET http://host/path`); the test server routes
    // by path, so it stands in for one and records what it was sent.
    let proxy = FeedServer::start_at("127.0.0.5").await;
    let story = (1..=3)
        .map(|i| {
            format!(
                "<p>Proxied paragraph {i}: the article itself, long enough that a reader view takes \
                 it for the body of the page, with several sentences of plain words in it.</p>"
            )
        })
        .collect::<String>();
    proxy.set(
        "/feed.xml",
        Route::rss(rss(
            "behind",
            &[(
                Some("1"),
                Some("http://articles.proxied.test/story.html"),
                "Story",
                "Teaser.",
                Some(D1),
            )],
        )),
    );
    proxy.set(
        "/story.html",
        Route::feed(
            "text/html; charset=utf-8",
            format!("<!doctype html><html><head><title>Story</title></head><body><article>{story}</article></body></html>"),
        ),
    );
    let proxy_url = proxy.url("").replace("http://", "http://reader:s3cret@");
    let ws = Workspace::new();
    ws.write_config(&format!(
        "[store]\npath = \"data/t.db\"\n[poll]\ndeny_private_networks = true\nallow_networks = [\"127.0.0.0/8\"]\n\
         resolve = {{ \"inside.test\" = \"10.1.2.3\" }}\n\
         [[feed]]\nurl = \"http://feeds.proxied.test/feed.xml\"\nproxy = \"{proxy_url}\"\nfull_text = true\n\
         [[feed]]\nurl = \"http://inside.test/inside.xml\"\nproxy = \"{proxy_url}\"\n\
         [[output]]\npath = \"public/all.atom\"\n"
    ));
    let run = ws.poll().await;
    assert_eq!(run.code, 1, "the inside feed fails: {run:?}");

    let fed = proxy.requests("/feed.xml");
    assert_eq!(fed.len(), 1);
    let header = |seen: &crate::support::Seen, name: &str| {
        seen.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(header(&fed[0], "host"), "feeds.proxied.test");
    // reader:s3cret, for the proxy; never the feed's to see.
    assert_eq!(
        header(&fed[0], "proxy-authorization"),
        "Basic cmVhZGVyOnMzY3JldA=="
    );
    let page = proxy.requests("/story.html");
    assert_eq!(page.len(), 1, "the article page goes through the proxy too");
    assert_eq!(header(&page[0], "host"), "articles.proxied.test");
    let rows = ws.rows();
    assert!(
        rows[0]
            .content
            .as_deref()
            .unwrap_or_default()
            .contains("Proxied paragraph 3"),
        "{rows:?}"
    );

    assert!(
        proxy.requests("/inside.xml").is_empty(),
        "refused before the proxy is asked: {run:?}"
    );
    let feeds = ws.tributary(&["feeds", "--json"]).await;
    let json: serde_json::Value = serde_json::from_str(&feeds.stdout).unwrap();
    let inside = json
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["url"] == "http://inside.test/inside.xml")
        .unwrap();
    let error = inside["last_error"].as_str().unwrap_or_default();
    assert!(
        error.contains("10.1.2.3") && error.contains("10.0.0.0/8"),
        "{error}"
    );

    ws.write_config("[[feed]]\nurl = \"https://example.org/feed.xml\"\nproxy = \"socks9://nowhere\"\n");
    let check = ws.tributary(&["check"]).await;
    assert_eq!(check.code, 2);
    assert!(
        check.stdout.contains(":3:9: feed[1].proxy: not a proxy URL"),
        "{}",
        check.stdout
    );
}

/// `include`: feeds and outputs in files of their own, read in name order after the main
/// file; each file's mistakes named at its own lines; `add` and `remove` leave included files
/// to the operator; a reload takes a file dropped in.
#[tokio::test(flavor = "multi_thread")]
async fn included_files_add_feeds_and_outputs_and_a_reload_takes_new_ones() {
    let server = FeedServer::start().await;
    for (path, title) in [("/a.xml", "From A"), ("/b.xml", "From B"), ("/c.xml", "From C")] {
        server.set(
            path,
            Route::rss(rss(path, &[(Some(path), None, title, "x", Some(D1))])),
        );
    }
    let ws = Workspace::new();
    ws.write_config("include = \"conf.d/*.toml\"\n[store]\npath = \"data/t.db\"\n");
    ws.write(
        "conf.d/10-a.toml",
        format!("[[feed]]\nurl = \"{}\"\ntitle = \"A\"\n", server.url("/a.xml")).as_bytes(),
    );
    ws.write(
        "conf.d/20-outputs.toml",
        b"[[output]]\npath = \"public/all.atom\"\nurl = \"https://planet.example/all.atom\"\n",
    );
    ws.write(
        "conf.d/30-stray.toml",
        b"# a member's file\n[poll]\nconcurrency = 2\n",
    );
    let check = ws.tributary(&["check"]).await;
    assert_eq!(check.code, 2, "{check:?}");
    let stray = ws.path("conf.d/30-stray.toml").display().to_string();
    assert!(
        check.stdout.contains(&format!(
            "{stray}:2:2: poll: an included file holds [[feed]] and [[output]] tables only"
        )),
        "{}",
        check.stdout
    );
    assert!(check.stdout.contains("1 problem in "), "{}", check.stdout);
    std::fs::remove_file(ws.path("conf.d/30-stray.toml")).unwrap();

    let polled = ws.poll().await;
    assert_eq!(polled.code, 0, "{polled:?}");
    assert_eq!(output_titles(&ws), ["From A"]);

    // add and remove edit the main file only; what an included file has is the operator's.
    let add = ws.tributary(&["add", &server.url("/a.xml")]).await;
    let a_file = ws.path("conf.d/10-a.toml").display().to_string();
    assert!(
        add.stdout.contains(&format!("is already in {a_file}, which"))
            && add.stdout.contains("edit it there"),
        "{}",
        add.stdout
    );
    let remove = ws.tributary(&["remove", "A"]).await;
    assert_eq!(remove.code, 2);
    assert!(
        remove.stderr.contains(&format!("` is in {a_file}, which"))
            && remove.stderr.contains("remove it there"),
        "{}",
        remove.stderr
    );
    assert!(
        std::fs::read_to_string(ws.path("conf.d/10-a.toml"))
            .unwrap()
            .contains("a.xml")
    );

    // A file dropped in while the daemon runs is taken at the reload.
    let mut daemon = crate::support::Daemon::start(&ws.path("tributary.toml"));
    daemon.wait_for("READY=1").await;
    ws.write(
        "conf.d/15-b.toml",
        format!("[[feed]]\nurl = \"{}\"\n", server.url("/b.xml")).as_bytes(),
    );
    daemon.signal(nix::sys::signal::Signal::SIGHUP);
    daemon.wait_for("RELOADING=1").await;
    daemon.wait_for("READY=1").await;
    daemon.signal(nix::sys::signal::Signal::SIGTERM);
    let (code, log) = daemon.exit_and_log().await;
    assert_eq!(code, 0, "{log}");
    let reloaded = log
        .lines()
        .find(|l| l.contains("configuration reloaded"))
        .unwrap_or_default();
    assert!(
        reloaded.contains(&format!("added=1 ({})", server.url("/b.xml"))),
        "{reloaded}"
    );
}

fn output_titles(ws: &Workspace) -> Vec<String> {
    ws.output()
        .entries
        .iter()
        .filter_map(|e| e.title.as_ref().map(|t| t.content.clone()))
        .collect()
}

/// Ids that never change: the config spells a feed's URL anew (tracking parameters, a
/// trailing slash), or names where it moved after its 301s were seen, and every output id
/// stays what it was; the feed keeps its one row, its entries and their ids, and `explain`
/// finds an entry by its id as before.
async fn a_feed_under_a_new_spelling_keeps_its_history_and_its_ids(ws: Workspace) {
    let server = FeedServer::start().await;
    let items = [
        (Some("a1"), None, "First", "x", Some(D1)),
        (Some("a2"), None, "Second", "y", Some(D2)),
    ];
    for path in ["/feed", "/feed/", "/new.xml"] {
        server.set(path, Route::rss(rss("a", &items)));
    }
    let ids = |ws: &Workspace| -> Vec<String> {
        let mut ids: Vec<String> = ws.output().entries.iter().map(|e| e.id.clone()).collect();
        ids.sort();
        ids
    };
    let entry_rows = |ws: &Workspace| ws.rows().len();
    ws.config_with_feeds(&[server.url("/feed")]);
    assert_eq!(ws.poll().await.code, 0);
    let before = ids(&ws);
    assert_eq!(before.len(), 2);

    for spelling in [
        server.url("/feed?utm_source=newsletter"),
        server.url("/feed/"),
        server.url("/feed"),
    ] {
        ws.config_with_feeds(std::slice::from_ref(&spelling));
        let run = ws.poll().await;
        assert_eq!(run.code, 0, "{run:?}");
        assert_eq!(ids(&ws), before, "ids under {spelling}");
        assert_eq!(entry_rows(&ws), 2, "no entry stored twice under {spelling}");
        let feeds = ws.tributary(&["feeds", "--json"]).await;
        let json: serde_json::Value = serde_json::from_str(&feeds.stdout).unwrap();
        assert_eq!(json.as_array().unwrap().len(), 1, "{json}");
        assert_eq!(json[0]["url"], spelling.as_str());
    }

    // A move: 301s to /new.xml seen on enough polls, then the config names /new.xml.
    server.set("/feed", Route::status(301, "").header("Location", "/new.xml"));
    for _ in 0..3 {
        assert_eq!(ws.poll().await.code, 0);
    }
    ws.config_with_feeds(&[server.url("/new.xml")]);
    assert_eq!(ws.poll().await.code, 0);
    assert_eq!(ids(&ws), before, "ids after the move");
    assert_eq!(entry_rows(&ws), 2);
    let explained = ws.tributary(&["explain", &before[0]]).await;
    assert_eq!(explained.code, 0, "{explained:?}");

    // A feed that only looks alike is another feed.
    server.set(
        "/other/feed",
        Route::rss(rss("b", &[(Some("b1"), None, "Other", "z", Some(D1))])),
    );
    ws.config_with_feeds(&[server.url("/new.xml"), server.url("/other/feed")]);
    assert_eq!(ws.poll().await.code, 0);
    assert_eq!(ids(&ws).len(), 3);
    assert!(before.iter().all(|id| ids(&ws).contains(id)));
}
