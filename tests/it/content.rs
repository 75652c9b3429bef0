//! The content stage's full text (`[[feed]] full_text`): article pages written for these
//! tests, with site navigation, share buttons, comments and ads around the article, one page in
//! Shift_JIS, one that is gone, one that redirects and one that is too slow; the output holds
//! each article and none of the chrome, every page is fetched once per new entry, a failed page
//! is tried once more at a later poll and never again, and `per_host` holds for pages too.

use std::time::Duration;

/// The articles' pages are served from loopback, which URLs from content may reach only when
/// the operator allows it (as for an intranet's pages).
const LOOPBACK: &str = "allow_networks = [\"127.0.0.0/8\"]\n";

use crate::support::{FeedServer, Route, Workspace, rss};

const D1: &str = "Mon, 02 Mar 2026 10:00:00 +0000";

/// An article page: the story's paragraphs inside everything a news site puts around them.
fn page(story: &[&str]) -> String {
    let paragraphs: String = story.iter().map(|p| format!("<p>{p}</p>\n")).collect();
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Headline | The News</title></head><body>\
         <header><nav><a href=\"/\">Front page</a> <a href=\"/world\">World desk</a> \
         <a href=\"/sport\">Sport desk</a></nav></header>\
         <div class=\"share-buttons\"><a href=\"https://social.example/share\">Share on Social</a></div>\
         <main><article><h1>Headline</h1>\n{paragraphs}</article></main>\
         <aside class=\"advertisement\">Sponsored: buy the gadget</aside>\
         <section id=\"comments\" class=\"comments\"><h2>Comments</h2><p>Reader remark: first!</p></section>\
         <footer>Copyright the news site</footer><script>tracker()</script></body></html>"
    )
}

fn story(name: &str) -> Vec<String> {
    (1..=3)
        .map(|i| {
            format!(
                "{name} paragraph {i}: the article itself, long enough that a reader view takes it \
                 for the body of the page, with several sentences of plain words in each paragraph."
            )
        })
        .collect()
}

fn html(body: impl Into<Vec<u8>>) -> Route {
    Route::feed("text/html; charset=utf-8", body)
}

#[tokio::test(flavor = "multi_thread")]
async fn full_text_replaces_teasers_with_articles_and_leaves_the_page_around_them() {
    let server = FeedServer::start().await;
    let alpha = story("Alpha");
    let omega = story("Omega");
    server.set(
        "/alpha.html",
        html(page(&alpha.iter().map(String::as_str).collect::<Vec<_>>())),
    );
    let japanese = [
        "日本語の記事の第一段落です。これは記事の本文であり、ナビゲーションや広告ではありません。十分な長さの文章が続きます。",
        "第二段落も記事の一部です。読者表示はこの部分を本文として認識するはずです。さらに文章が続きます。",
        "第三段落で記事は終わります。最後まで本文として抽出されることを確かめます。",
    ];
    let tenki_page = page(&japanese).replace("utf-8", "Shift_JIS");
    let (sjis, _, _) = encoding_rs::SHIFT_JIS.encode(&tenki_page);
    server.set(
        "/tenki.html",
        Route::feed("text/html; charset=Shift_JIS", sjis.into_owned()),
    );
    server.set("/gone.html", Route::status(404, "not here"));
    server.set(
        "/moved.html",
        Route::status(301, "").header("Location", "/omega.html"),
    );
    server.set(
        "/omega.html",
        html(page(&omega.iter().map(String::as_str).collect::<Vec<_>>())),
    );
    server.set(
        "/slow.html",
        html(page(&["late"])).delayed(Duration::from_secs(30)),
    );
    let links: Vec<(String, String)> = ["alpha", "tenki", "gone", "moved", "slow"]
        .iter()
        .map(|n| (n.to_string(), server.url(&format!("/{n}.html"))))
        .collect();
    let mut items: Vec<_> = links
        .iter()
        .map(|(n, l)| {
            (
                Some(n.as_str()),
                Some(l.as_str()),
                n.as_str(),
                "Teaser only.",
                Some(D1),
            )
        })
        .collect();
    // An entry with no page: nothing to fetch, nothing to try again.
    items.push((Some("nolink"), None, "nolink", "Teaser only.", Some(D1)));
    server.set("/feed.xml", Route::rss(rss("news", &items)));
    let ws = Workspace::new();
    ws.write_config(&format!(
        "[store]\npath = \"data/t.db\"\n[poll]\ntimeout = \"2s\"\nper_host = 2\n{LOOPBACK}\
         [[feed]]\nurl = \"{}\"\nfull_text = true\n\
         [[output]]\npath = \"public/all.atom\"\n",
        server.url("/feed.xml")
    ));
    let first = ws.poll().await;
    assert_eq!(
        first.code, 0,
        "a page that gives no article is not the feed's failure: {first:?}"
    );

    let rows = ws.rows();
    let row = |title: &str| rows.iter().find(|r| r.title == title).unwrap().clone();
    let alpha_row = row("alpha");
    let content = alpha_row.content.clone().unwrap();
    for p in &alpha {
        assert!(content.contains(p.as_str()), "{p} missing from {content}");
    }
    for chrome in [
        "World desk",
        "Share on Social",
        "buy the gadget",
        "Reader remark",
        "Copyright",
        "tracker",
    ] {
        assert!(!content.contains(chrome), "{chrome} in the article: {content}");
    }
    // Readers show the entry's title above its content: the page's headline is not repeated.
    assert!(!content.contains("Headline"), "{content}");
    assert_eq!(
        alpha_row.summary.as_deref(),
        Some("Teaser only."),
        "the feed's text is the summary"
    );
    let tenki = row("tenki").content.unwrap();
    assert!(
        tenki.contains(japanese[0]) && tenki.contains(japanese[2]),
        "{tenki}"
    );
    let moved = row("moved").content.unwrap();
    assert!(
        moved.contains(omega[0].as_str()),
        "the redirect is followed: {moved}"
    );
    for failed in ["gone", "slow"] {
        let r = row(failed);
        assert_eq!(
            r.summary.as_deref(),
            Some("Teaser only."),
            "{failed} keeps the feed's text"
        );
    }
    // The output carries the articles.
    let feed = ws.output();
    let entry = feed
        .entries
        .iter()
        .find(|e| e.title.as_ref().unwrap().content == "alpha")
        .unwrap();
    let body = entry.content.as_ref().and_then(|c| c.body.clone()).unwrap();
    assert!(body.contains(alpha[1].as_str()), "{body}");
    // explain says where each entry's content came from.
    let explained = ws.tributary(&["explain", &links[0].1]).await;
    assert!(
        explained.stdout.contains("content: the article on its page"),
        "{}",
        explained.stdout
    );
    let explained = ws.tributary(&["explain", &links[2].1]).await;
    assert!(
        explained
            .stdout
            .contains("its page gave no article (HTTP 404); tried again at a later poll"),
        "{}",
        explained.stdout
    );

    // Later polls of the unchanged feed fetch no page again, except the failed ones, once.
    assert_eq!(ws.poll().await.code, 0);
    assert_eq!(ws.poll().await.code, 0);
    for (path, times) in [
        ("/alpha.html", 1),
        ("/tenki.html", 1),
        ("/moved.html", 1),
        ("/omega.html", 1),
        ("/gone.html", 2),
        ("/slow.html", 2),
    ] {
        assert_eq!(server.arrivals(path).len(), times, "{path}");
    }
    let explained = ws.tributary(&["explain", &links[2].1]).await;
    assert!(
        explained.stdout.contains("twice; not tried again"),
        "{}",
        explained.stdout
    );
    let explained = ws.tributary(&["explain", "nolink"]).await;
    assert!(
        explained
            .stdout
            .contains("content: the feed's own: full_text is on, but the entry has no web page"),
        "{}",
        explained.stdout
    );
}

/// Pages take their turns with the feed's host: never more than `per_host` requests at once,
/// however many new entries a poll brings.
#[tokio::test(flavor = "multi_thread")]
async fn pages_keep_to_per_host() {
    let server = FeedServer::start().await;
    let delay = Duration::from_millis(200);
    let mut items = Vec::new();
    let names: Vec<String> = (0..8).map(|i| format!("p{i}")).collect();
    let links: Vec<String> = names.iter().map(|n| server.url(&format!("/{n}.html"))).collect();
    for (n, link) in names.iter().zip(&links) {
        let text = story(n);
        server.set(
            &format!("/{n}.html"),
            html(page(&text.iter().map(String::as_str).collect::<Vec<_>>())).delayed(delay),
        );
        items.push((
            Some(n.as_str()),
            Some(link.as_str()),
            n.as_str(),
            "Teaser.",
            Some(D1),
        ));
    }
    server.set("/feed.xml", Route::rss(rss("many", &items)));
    let ws = Workspace::new();
    ws.write_config(&format!(
        "[store]\npath = \"data/t.db\"\n[poll]\nper_host = 2\n{LOOPBACK}\
         [[feed]]\nurl = \"{}\"\nfull_text = true\n",
        server.url("/feed.xml")
    ));
    assert_eq!(ws.poll().await.code, 0);
    let mut arrivals: Vec<tokio::time::Instant> = names
        .iter()
        .flat_map(|n| server.arrivals(&format!("/{n}.html")))
        .collect();
    arrivals.sort();
    assert_eq!(arrivals.len(), 8, "each page once");
    // Each answer takes `delay`: a third request arriving within `delay` of the one two before
    // it would have been the third in flight at once.
    for w in arrivals.windows(3) {
        assert!(
            w[2] - w[0] >= delay - Duration::from_millis(20),
            "three pages in flight at once"
        );
    }
    assert!(
        ws.rows()
            .iter()
            .all(|r| r.content.as_deref().is_some_and(|c| c.contains("paragraph 1")))
    );
}

/// Rewrite rules shape the content before the rules judge it and before it is stored: what a
/// `remove` took out cannot trigger an exclude rule, and the output shows the rewritten text.
#[tokio::test(flavor = "multi_thread")]
async fn rewrite_rules_apply_in_order_before_rules_and_storage() {
    let server = FeedServer::start().await;
    let body = "&lt;p&gt;Story &lt;span class=\"wrap\"&gt;in &lt;b&gt;bold&lt;/b&gt;&lt;/span&gt;.&lt;/p&gt;\
                &lt;div class=\"share\"&gt;Share this story&lt;/div&gt;&lt;p&gt;Read more…&lt;/p&gt;";
    server.set(
        "/feed.xml",
        Route::rss(rss(
            "rw",
            &[
                (
                    Some("1"),
                    Some("https://rw.example/1"),
                    "[AD] One",
                    body,
                    Some(D1),
                ),
                (
                    Some("2"),
                    Some("https://rw.example/2"),
                    "Two",
                    "&lt;p&gt;Share this story&lt;/p&gt;",
                    Some(D1),
                ),
            ],
        )),
    );
    let ws = Workspace::new();
    ws.write_config(&format!(
        "[store]\npath = \"data/t.db\"\n[[feed]]\nurl = \"{}\"\n\
         rewrite = [{{ remove = \"div.share\" }}, {{ unwrap = \"span.wrap\" }}, \
                    {{ replace = \"(?i)read more…\", with = \"\" }}, {{ replace = \"^\\\\[AD\\\\] \", with = \"\" }}]\n\
         exclude = [{{ content = \"Share this\" }}]\n",
        server.url("/feed.xml")
    ));
    let run = ws.poll().await;
    assert_eq!(run.code, 0, "{run:?}");
    let rows = ws.rows();
    // Entry 2 says "Share this" in its own text: excluded. Entry 1's share box was removed
    // first, so the same rule does not exclude it.
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].title, "One");
    assert_eq!(
        rows[0].summary.as_deref(),
        Some("<p>Story in <b>bold</b>.</p><p></p>")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broken_rewrite_rule_is_named_with_its_line() {
    let ws = Workspace::new();
    let config = ws.write_config(
        "[[feed]]\nurl = \"https://example.org/feed\"\n\
         rewrite = [{ remove = \"div[\" }, { replace = \"(\" }, { unwrap = \"p\", with = \"x\" }]\n",
    );
    let run = ws.tributary(&["check"]).await;
    assert_eq!(run.code, 2, "{run:?}");
    let file = config.display();
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert!(
        lines[0].starts_with(&format!(
            "{file}:3:12: feed[1].rewrite: invalid CSS selector `div[`"
        )),
        "{}",
        run.stdout
    );
    assert!(
        lines[1].starts_with(&format!(
            "{file}:3:33: feed[1].rewrite: invalid regular expression `(`"
        )),
        "{}",
        run.stdout
    );
    assert!(
        lines[2].starts_with(&format!("{file}:3:52: feed[1].rewrite: a rewrite rule is")),
        "{}",
        run.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_feeds_back_catalogue_keeps_its_teasers_and_costs_no_page_fetches() {
    let server = FeedServer::start().await;
    let stories: Vec<Vec<String>> = (0..15).map(|n| story(&format!("Story {n}"))).collect();
    for (n, s) in stories.iter().enumerate() {
        server.set(
            &format!("/s{n}.html"),
            html(page(&s.iter().map(String::as_str).collect::<Vec<_>>())),
        );
    }
    let links: Vec<String> = (0..15).map(|n| server.url(&format!("/s{n}.html"))).collect();
    let titles: Vec<String> = (0..15).map(|n| format!("s{n}")).collect();
    // Story n is n days old: s0 … s9 are the newest ten.
    let dates: Vec<String> = (0..15)
        .map(|n| format!("{:02} Mar 2026 10:00:00 +0000", 20 - n))
        .map(|d| format!("Fri, {d}"))
        .collect();
    let items: Vec<_> = (0..15)
        .map(|n| {
            (
                Some(titles[n].as_str()),
                Some(links[n].as_str()),
                titles[n].as_str(),
                "Teaser only.",
                Some(dates[n].as_str()),
            )
        })
        .collect();
    server.set("/feed.xml", Route::rss(rss("news", &items)));
    let ws = Workspace::new();
    ws.write_config(&format!(
        "[store]\npath = \"data/t.db\"\n[poll]\n{LOOPBACK}[[feed]]\nurl = \"{}\"\nfull_text = true\n\
         [[output]]\npath = \"public/all.atom\"\n",
        server.url("/feed.xml")
    ));
    let run = ws.poll().await;
    assert_eq!(run.code, 0, "{run:?}");
    let fetched: Vec<usize> = (0..15)
        .filter(|n| !server.requests(&format!("/s{n}.html")).is_empty())
        .collect();
    assert_eq!(
        fetched,
        (0..10).collect::<Vec<_>>(),
        "only the ten entries outputs show"
    );
    let rows = ws.rows();
    assert_eq!(rows.len(), 15, "the back catalogue is stored");
    for row in &rows {
        let n: usize = row.title[1..].parse().unwrap();
        let content = row.content.clone().unwrap_or_default();
        assert_eq!(
            content.contains("paragraph 1"),
            n < 10,
            "{}: {content}",
            row.title
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_page_answered_429_holds_the_pages_waiting_behind_it() {
    // The feed on one host, its pages on another that rate-limits at the first page.
    let feed_host = FeedServer::start_at("127.0.0.2").await;
    let pages = FeedServer::start().await;
    pages.set(
        "/p0.html",
        Route::status(429, "slow down").header("Retry-After", "600"),
    );
    let names: Vec<String> = (0..4).map(|i| format!("p{i}")).collect();
    for n in &names[1..] {
        let text = story(n);
        pages.set(
            &format!("/{n}.html"),
            html(page(&text.iter().map(String::as_str).collect::<Vec<_>>())),
        );
    }
    let links: Vec<String> = names.iter().map(|n| pages.url(&format!("/{n}.html"))).collect();
    let items: Vec<_> = names
        .iter()
        .zip(&links)
        .map(|(n, l)| {
            (
                Some(n.as_str()),
                Some(l.as_str()),
                n.as_str(),
                "Teaser.",
                Some(D1),
            )
        })
        .collect();
    feed_host.set("/feed.xml", Route::rss(rss("limited", &items)));
    let ws = Workspace::new();
    // per_host = 1: the other pages queue for their host's turn behind the first.
    ws.write_config(&format!(
        "[store]\npath = \"data/t.db\"\n[poll]\nper_host = 1\n{LOOPBACK}\
         [[feed]]\nurl = \"{}\"\nfull_text = true\n",
        feed_host.url("/feed.xml")
    ));
    assert_eq!(ws.poll().await.code, 0);
    assert_eq!(pages.requests("/p0.html").len(), 1);
    for n in &names[1..] {
        assert!(
            pages.requests(&format!("/{n}.html")).is_empty(),
            "{n} was asked for while its host said to wait"
        );
    }
    let held: i64 = ws
        .db()
        .query_row("SELECT COUNT(*) FROM hosts WHERE host = '127.0.0.1'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(held, 1, "the store remembers the wait for the next poll");
    assert_eq!(ws.rows().len(), 4, "the entries keep the feed's text");
}
