//! Full text at scale (`-- --only fulltext`): 20 hosts on loopback (127.0.3.1–20), each with a
//! feed of 50 teaser entries whose pages (about 4 KB of article inside navigation, share
//! buttons, comments and an ad) answer after 50 ms; a cold `tributary poll` with `full_text` and
//! `per_host = 2` reads all 1,000. The lower bound is the per-host budget: 50 pages / 2 at a
//! time × 50 ms = 1.25 s per host, the hosts side by side.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::{Path as UrlPath, State};
use axum::response::IntoResponse;

use super::{Row, count_entries, run_tributary};

const HOSTS: usize = 20;
const ENTRIES: usize = 50;
const DELAY: Duration = Duration::from_millis(50);

struct Site {
    base: String,
    pages: Arc<AtomicU64>,
}

fn feed(site: &Site) -> String {
    let mut xml = String::from(
        "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>site</title>\
         <link>https://example.org/</link><description>d</description>",
    );
    for i in 0..ENTRIES {
        let _ = write!(
            xml,
            "<item><guid>{base}/a/{i}</guid><title>Story {i}</title><link>{base}/a/{i}</link>\
             <description>Teaser {i}.</description><pubDate>Mon, 02 Mar 2026 10:00:00 +0000</pubDate></item>",
            base = site.base
        );
    }
    xml.push_str("</channel></rss>");
    xml
}

fn page(i: usize) -> String {
    let mut story = String::new();
    for p in 0..6 {
        let _ = write!(
            story,
            "<p>Paragraph {p} of story {i}: the body of the article, with sentences long enough that a \
             reader view takes them for the text of the page rather than for its furniture, and a \
             <a href=\"/related/{p}\">link</a> or two along the way, as real articles have.</p>"
        );
    }
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Story {i}</title></head><body>\
         <header><nav><a href=\"/\">Home</a> <a href=\"/world\">World</a> <a href=\"/tech\">Tech</a></nav></header>\
         <div class=\"share\"><a href=\"https://social.example/s\">Share</a></div>\
         <main><article><h1>Story {i}</h1>{story}</article></main>\
         <aside class=\"ad\">Advertisement</aside><section class=\"comments\"><p>First!</p></section>\
         </body></html>"
    )
}

async fn serve(host: usize) -> (Site, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind(format!("127.0.3.{}:0", host + 1))
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("addr");
    let site = Site {
        base: format!("http://{addr}"),
        pages: Arc::new(AtomicU64::new(0)),
    };
    let xml = Arc::new(feed(&site));
    let pages = site.pages.clone();
    let app = axum::Router::new()
        .route(
            "/feed.xml",
            axum::routing::get(move || {
                let xml = xml.clone();
                async move { ([("content-type", "application/rss+xml")], (*xml).clone()) }
            }),
        )
        .route(
            "/a/{i}",
            axum::routing::get(
                |State(pages): State<Arc<AtomicU64>>, UrlPath(i): UrlPath<usize>| async move {
                    pages.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(DELAY).await;
                    ([("content-type", "text/html; charset=utf-8")], page(i)).into_response()
                },
            ),
        )
        .with_state(pages);
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (site, task)
}

pub async fn full_text_scenario(base: &Path) -> Row {
    let mut sites = Vec::new();
    let mut tasks = Vec::new();
    for host in 0..HOSTS {
        let (site, task) = serve(host).await;
        sites.push(site);
        tasks.push(task);
    }
    let dir = base.join("fulltext");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    // Every entry is one outputs show (a new feed's back catalogue gets no full text).
    let mut config = format!(
        "[store]\npath = \"data/t.db\"\n[poll]\nper_host = 2\nnew_feed_entries = {ENTRIES}\nallow_networks = [\"127.0.0.0/8\"]\n"
    );
    for site in &sites {
        let _ = write!(
            config,
            "[[feed]]\nurl = \"{}/feed.xml\"\nfull_text = true\n",
            site.base
        );
    }
    std::fs::write(dir.join("tributary.toml"), config).expect("config");
    let run = run_tributary(&dir, &["poll"]).await;
    let pages: u64 = sites.iter().map(|s| s.pages.load(Ordering::Relaxed)).sum();
    let db = rusqlite::Connection::open(dir.join("data/t.db")).expect("db");
    let full: i64 = db
        .query_row("SELECT COUNT(*) FROM entries WHERE full_text = 'page'", [], |r| {
            r.get(0)
        })
        .expect("count");
    let entries = count_entries(&dir);
    for task in tasks {
        task.abort();
    }
    let _ = std::fs::remove_dir_all(&dir);
    let bound = DELAY * (ENTRIES as u32).div_ceil(2);
    Row {
        scenario: format!(
            "full text: {} new entries, {HOSTS} hosts, per_host 2, 50 ms",
            HOSTS * ENTRIES
        ),
        target: "near the per-host bound".into(),
        wall: run.wall,
        cpu: run.cpu,
        peak_rss_kib: run.peak_rss_kib,
        entries,
        requests: pages,
        note: format!(
            "{pages} pages fetched, {full} articles stored; bound {} (50 pages ÷ 2 × 50 ms per host)",
            super::format_duration(bound)
        ),
        ..Row::default()
    }
}
