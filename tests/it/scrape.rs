//! Sources that are not feeds (`[[feed]] kind = "html"` / `"json"` with `scrape`): a news
//! page with navigation, a sidebar and comments around its stories, and a JSON API, both
//! served on loopback. Entries are known by their resolved links, stable across polls (no
//! duplicates), updated when a story's text changes; an unreadable date falls back to
//! first-seen; broken selectors are `check` errors with their place; `add` on a page with no
//! feed prints a table that reads it and adds nothing.

use crate::support::{FeedServer, Route, Workspace};

/// A front page: stories as `<article>`s among the site's chrome; links relative to its
/// `<base href>`, one story with a date nobody can read.
fn front_page(stories: &[(&str, &str, &str, &str)]) -> String {
    let articles: String = stories
        .iter()
        .map(|(slug, title, date, teaser)| {
            format!(
                "<article class=\"story\"><h2><a href=\"{slug}\">{title}</a></h2>\
                 <time datetime=\"{date}\">{date}</time><p>{teaser}</p>\
                 <div class=\"share\"><a href=\"https://social.example/share\">Share</a></div></article>\n"
            )
        })
        .collect();
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>The Daily Page</title>\
         <base href=\"/news/\"></head><body>\
         <header><nav><ul><li><a href=\"/\">Home</a></li><li><a href=\"/world\">World</a></li></ul></nav></header>\
         <main>{articles}</main>\
         <aside><h3>Most read</h3><ul><li><a href=\"/old\">Old thing</a></li></ul></aside>\
         <section class=\"comments\"><p>first!</p></section></body></html>"
    )
}

/// The `[[feed]]` table `add` printed, as the operator would paste it.
fn table_to_paste(stdout: &str) -> String {
    let start = stdout.find("[[feed]]").expect("a table to paste");
    stdout[start..]
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .map(|l| format!("{l}\n"))
        .collect()
}

/// A story on the front page: its slug, headline, date as written, and teaser.
type Story = (&'static str, &'static str, &'static str, &'static str);

const RAIN: Story = (
    "rain",
    "Rain expected",
    "2026-11-30T09:00:00Z",
    "Bring an umbrella.",
);

const SCRAPE: &str = "{ item = \"article.story\", title = \"h2\", link = \"h2 a@href\", \
                      date = \"time@datetime\", content = \"p\" }";

#[tokio::test(flavor = "multi_thread")]
async fn a_web_page_becomes_entries_known_by_their_links_across_polls() {
    let server = FeedServer::start().await;
    let mut stories = vec![
        RAIN,
        (
            "bridge",
            "Bridge reopens",
            "30 November 2026",
            "Traffic flows again.",
        ),
        ("fair", "Winter fair", "sometime soon", "Stalls and music."),
    ];
    let set_page = |stories: &[(&str, &str, &str, &str)]| {
        server.set(
            "/front.html",
            Route::feed("text/html; charset=utf-8", front_page(stories)),
        )
    };
    set_page(&stories);
    let ws = Workspace::new();
    ws.write_config(&format!(
        "[store]\npath = \"data/t.db\"\n[[feed]]\nurl = \"{}\"\nkind = \"html\"\nscrape = {SCRAPE}\n\
         [[output]]\npath = \"public/all.atom\"\n",
        server.url("/front.html")
    ));
    let first = ws.poll().await;
    assert_eq!(first.code, 0, "{first:?}");
    let rows = ws.rows();
    assert_eq!(
        rows.len(),
        3,
        "one entry per story, none of the chrome: {rows:#?}"
    );
    let link = |slug: &str| server.url(&format!("/news/{slug}"));
    let row = |rows: &[crate::support::Row], slug: &str| {
        rows.iter()
            .find(|r| r.link.as_deref() == Some(link(slug).as_str()))
            .unwrap_or_else(|| panic!("no entry for {slug}: {rows:#?}"))
            .clone()
    };
    let rain = row(&rows, "rain");
    assert_eq!(rain.title, "Rain expected");
    assert_eq!(
        rain.published, 1_796_029_200,
        "the datetime attribute is the date"
    );
    assert!(rain.content.as_deref().unwrap().contains("Bring an umbrella."));
    assert!(
        !rain.content.as_deref().unwrap().contains("Share"),
        "only the picked element"
    );
    assert_eq!(
        row(&rows, "bridge").published,
        1_795_996_800,
        "a written date is read"
    );
    let fair = row(&rows, "fair");
    let first_seen: i64 = ws
        .db()
        .query_row(
            "SELECT first_seen FROM entries WHERE link = ?1",
            [link("fair")],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        fair.published, first_seen,
        "an unreadable date falls back to first-seen"
    );

    // The same page again: nothing new, nothing doubled.
    assert_eq!(ws.poll().await.code, 0);
    assert_eq!(ws.rows(), rows, "a second poll of the same page changes nothing");

    // A new story on top, an edited headline: one entry more, one updated, none doubled.
    stories[1].1 = "Bridge reopens to traffic";
    stories.insert(
        0,
        (
            "snow",
            "First snow",
            "2026-12-01T07:30:00Z",
            "It settled overnight.",
        ),
    );
    set_page(&stories);
    assert_eq!(ws.poll().await.code, 0);
    let after = ws.rows();
    assert_eq!(after.len(), 4, "{after:#?}");
    assert_eq!(row(&after, "bridge").title, "Bridge reopens to traffic");
    assert_eq!(row(&after, "snow").title, "First snow");
    let keys: std::collections::HashSet<&str> = after.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(keys.len(), 4, "every story once");

    let explained = ws.tributary(&["explain", &link("rain")]).await;
    assert_eq!(explained.code, 0, "{explained:?}");
    for want in [
        "source: a web page read through its `scrape` CSS selectors",
        "a scraped story is known by its link",
    ] {
        assert!(explained.stdout.contains(want), "{want} in {}", explained.stdout);
    }

    // Subscriptions list it as the web page it is, not as a feed readers would fail on.
    let opml = ws.tributary(&["export"]).await;
    assert_eq!(opml.code, 0, "{opml:?}");
    assert!(
        opml.stdout.contains("type=\"link\"")
            && opml
                .stdout
                .contains(&format!("url=\"{}\"", server.url("/front.html")))
            && !opml.stdout.contains("xmlUrl"),
        "{}",
        opml.stdout
    );

    // The merged feed carries the scraped stories with absolute links.
    let output = ws.output();
    let mut links: Vec<String> = output
        .entries
        .iter()
        .filter_map(|e| e.links.first().map(|l| l.href.clone()))
        .collect();
    links.sort();
    let mut want: Vec<String> = ["bridge", "fair", "rain", "snow"]
        .iter()
        .map(|s| link(s))
        .collect();
    want.sort();
    assert_eq!(links, want);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_json_api_becomes_entries_and_its_updates_are_seen() {
    let server = FeedServer::start().await;
    let api = |second_title: &str| {
        serde_json::json!({
            "meta": { "page": 1 },
            "data": { "items": [
                { "url": "/posts/1", "headline": "Release 1.0", "body": "<p>It is out.</p>",
                  "published_at": 1_796_029_200, "author": { "name": "Ada" } },
                { "url": "https://api.example/posts/2", "headline": second_title,
                  "body": "<p>Notes.</p>", "published_at": "2026-11-29T08:00:00+00:00", "author": "Grace" },
                { "headline": "No link, no entry" }
            ] }
        })
        .to_string()
    };
    server.set(
        "/api/posts",
        Route::feed("application/json", api("Release notes")),
    );
    let ws = Workspace::new();
    ws.write_config(&format!(
        "[store]\npath = \"data/t.db\"\n[[feed]]\nurl = \"{}\"\nkind = \"json\"\n\
         scrape = {{ item = \"/data/items\", link = \"/url\", title = \"/headline\", \
         content = \"/body\", date = \"/published_at\", author = \"/author\" }}\n\
         [[output]]\npath = \"public/all.atom\"\n",
        server.url("/api/posts")
    ));
    let first = ws.poll().await;
    assert_eq!(first.code, 0, "{first:?}");
    let rows = ws.rows();
    assert_eq!(rows.len(), 2, "{rows:#?}");
    assert_eq!(
        rows[0].link.as_deref(),
        Some(server.url("/posts/1").as_str()),
        "resolved against the API's URL"
    );
    assert_eq!(rows[0].published, 1_796_029_200, "Unix seconds");
    assert_eq!(rows[1].published, 1_795_939_200, "an RFC 3339 string");
    assert!(rows[0].content.as_deref().unwrap().contains("It is out."));
    let output = ws.output();
    let authors: Vec<String> = output
        .entries
        .iter()
        .flat_map(|e| e.authors.iter().filter_map(|a| a.name.clone()))
        .collect();
    assert!(
        authors.contains(&"Ada".to_string()) && authors.contains(&"Grace".to_string()),
        "{authors:?}"
    );

    assert_eq!(ws.poll().await.code, 0);
    assert_eq!(ws.rows(), rows, "the same document again changes nothing");
    server.set(
        "/api/posts",
        Route::feed("application/json", api("Release notes, revised")),
    );
    assert_eq!(ws.poll().await.code, 0);
    let after = ws.rows();
    assert_eq!(after.len(), 2, "an edit is an update, not a new entry");
    assert_eq!(after[1].title, "Release notes, revised");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_page_that_changed_shape_is_the_sources_error_and_retried() {
    let server = FeedServer::start().await;
    server.set(
        "/front.html",
        Route::feed(
            "text/html",
            "<html><body><div class=\"redesign\">new look</div></body></html>",
        ),
    );
    let ws = Workspace::new();
    ws.write_config(&format!(
        "[store]\npath = \"data/t.db\"\n[[feed]]\nurl = \"{}\"\nkind = \"html\"\nscrape = {SCRAPE}\n",
        server.url("/front.html")
    ));
    let run = ws.poll().await;
    assert_eq!(run.code, 1, "a source that yields nothing fails: {run:?}");
    let error: String = ws
        .db()
        .query_row("SELECT last_error FROM feeds", [], |r| r.get(0))
        .unwrap();
    assert!(
        error.contains("article.story"),
        "the error names the selector: {error}"
    );
    server.set(
        "/front.html",
        Route::feed("text/html", front_page(&[("a", "Back", "2026-11-30", "x")])),
    );
    // Backing off now; asked again (as the next due time would), it reads the fixed page.
    let again = ws.tributary(&["poll", "--force"]).await;
    assert_eq!(again.code, 0, "read again once the page has stories: {again:?}");
    assert_eq!(ws.rows().len(), 1);
}

#[tokio::test]
async fn broken_scrape_tables_are_named_with_their_line() {
    let ws = Workspace::new();
    let file = ws.write_config(
        "[[feed]]\nurl = \"https://example.org/\"\nkind = \"html\"\n\
         scrape = { item = \"div[\", link = \"a@href\", when = \"time\" }\n\
         [[feed]]\nurl = \"https://example.org/api\"\nkind = \"json\"\n\
         scrape = { item = \"data/items\", title = \"/t\" }\n\
         [[feed]]\nurl = \"https://example.org/other\"\nscrape = { item = \"li\", link = \"a@href\" }\n\
         [[feed]]\nurl = \"https://example.org/third\"\nkind = \"xml\"\n",
    );
    let run = ws.tributary(&["check"]).await;
    assert_eq!(run.code, 2, "{run:?}");
    let file = file.display().to_string();
    for want in [
        format!("{file}:4:19: feed[1].scrape.item: invalid CSS selector `div[`"),
        format!("{file}:4:51: feed[1].scrape.when: unknown field `when`"),
        format!("{file}:8:19: feed[2].scrape.item: `data/items` is not a JSON Pointer"),
        format!("{file}:8:10: feed[2].scrape.link: `scrape` needs `link`"),
        format!("{file}:11:10: feed[3].scrape: `scrape` is for kind = \"html\" or \"json\""),
        format!("{file}:14:8: feed[4].kind: unknown kind `xml`"),
    ] {
        assert!(run.stdout.contains(&want), "missing {want:?} in\n{}", run.stdout);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn add_on_a_page_with_no_feed_prints_a_table_that_reads_it_and_adds_nothing() {
    let server = FeedServer::start().await;
    server.set(
        "/front.html",
        Route::feed(
            "text/html; charset=utf-8",
            front_page(&[
                RAIN,
                (
                    "bridge",
                    "Bridge reopens",
                    "2026-11-30T10:00:00Z",
                    "Traffic flows again.",
                ),
            ]),
        ),
    );
    let ws = Workspace::new();
    let before = "# my feeds\n[store]\npath = \"data/t.db\"\n";
    ws.write_config(before);
    let run = ws.tributary(&["add", &server.url("/front.html")]).await;
    assert_eq!(run.code, 1, "nothing was added: {run:?}");
    assert_eq!(
        std::fs::read_to_string(ws.path("tributary.toml")).unwrap(),
        before,
        "never added on a guess"
    );
    assert!(run.stdout.contains("2 entries"), "{}", run.stdout);
    assert!(run.stdout.contains("\"Rain expected\""), "{}", run.stdout);
    let table = table_to_paste(&run.stdout);
    assert!(table.contains("kind = \"html\""), "{table}");
    assert!(table.contains("item = \"article.story\""), "{table}");

    // Pasted as printed, it reads the page.
    ws.write_config(&format!("{before}{table}"));
    let poll = ws.poll().await;
    assert_eq!(poll.code, 0, "{poll:?}");
    let titles: Vec<String> = ws.rows().into_iter().map(|r| r.title).collect();
    assert_eq!(titles.len(), 2, "{titles:?}");
    assert!(titles.contains(&"Rain expected".to_string()));
}

#[tokio::test(flavor = "multi_thread")]
async fn add_on_a_json_api_prints_a_table_that_reads_it() {
    let server = FeedServer::start().await;
    let api = serde_json::json!({
        "status": "ok",
        "tags": [{ "name": "news" }],
        "data": { "posts": [
            { "id": 1, "headline": "Launch day", "permalink": "/p/launch", "published_at": "2026-11-30T09:00:00Z", "body": "<p>We are live.</p>" },
            { "id": 2, "headline": "Week one", "permalink": "/p/week-one", "published_at": "2026-12-01T09:00:00Z", "body": "<p>Numbers.</p>" },
            { "id": 3, "headline": "Roadmap", "permalink": "https://blog.example/roadmap", "published_at": "2026-12-01T10:00:00Z", "body": "<p>Next.</p>" }
        ] }
    });
    server.set("/v1/posts", Route::feed("application/json", api.to_string()));
    let ws = Workspace::new();
    let before = "[store]\npath = \"data/t.db\"\n";
    ws.write_config(before);
    let run = ws.tributary(&["add", &server.url("/v1/posts")]).await;
    assert_eq!(run.code, 1, "nothing was added: {run:?}");
    assert!(
        run.stdout.contains("reads it as a JSON API: 3 entries"),
        "{}",
        run.stdout
    );
    let table = table_to_paste(&run.stdout);
    for want in [
        "kind = \"json\"",
        "item = \"/data/posts\"",
        "link = \"/permalink\"",
        "title = \"/headline\"",
        "date = \"/published_at\"",
        "content = \"/body\"",
    ] {
        assert!(table.contains(want), "{want} in {table}");
    }
    ws.write_config(&format!("{before}{table}"));
    assert_eq!(ws.poll().await.code, 0);
    let rows = ws.rows();
    assert_eq!(rows.len(), 3, "{rows:#?}");
    assert!(
        rows.iter()
            .any(|r| r.link.as_deref() == Some(server.url("/p/launch").as_str()))
    );
}
