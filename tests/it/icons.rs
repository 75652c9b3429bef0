//! Feeds' icons as deployed: the daemon (on paused time, with the packaged defaults) finds each
//! feed's icon where feed readers look — the feed's own, its site's `<link rel="icon">`, the
//! site's `/favicon.ico`, the feed's logo — on loopback "sites" (127.0.0.x), writes them beside
//! the outputs, names them in the page, Atom and JSON Feed, and asks again a week later with
//! the validators it was given. `tributary run` serves them at `/icons/`.

use chrono::{TimeZone, Utc};

use crate::schedule::Running;
use crate::support::{Daemon, FeedServer, Route, Workspace};

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x10\0\0\0\x10site";
const ICO: &[u8] = b"\0\0\x01\0\x01\0\x10\x10\0\0own icon";
const GIF: &[u8] = b"GIF89a\x10\0\x10\0logo";

fn rss(title: &str, site: &str, image: Option<&str>) -> String {
    let image = image
        .map(|u| format!("<image><url>{u}</url><title>{title}</title><link>{site}</link></image>"))
        .unwrap_or_default();
    format!(
        "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>{title}</title><link>{site}</link>\
         <description>d</description>{image}<item><guid>{title}-1</guid><title>{title} story</title>\
         <link>{site}1</link><pubDate>Mon, 02 Mar 2026 10:00:00 +0000</pubDate></item></channel></rss>"
    )
}

fn atom(title: &str, icon: &str) -> String {
    format!(
        "<?xml version=\"1.0\"?><feed xmlns=\"http://www.w3.org/2005/Atom\"><title>{title}</title>\
         <id>tag:own.test,2026:feed</id><updated>2026-03-02T10:00:00Z</updated><icon>{icon}</icon>\
         <entry><id>tag:own.test,2026:1</id><title>{title} story</title><updated>2026-03-02T10:00:00Z</updated>\
         <link href=\"https://own.test/1\"/></entry></feed>"
    )
}

/// Three feeds, each with its icon in another place, on four hosts.
struct Sites {
    feeds: FeedServer,
    /// A's site: a home page naming its icon (and a larger touch icon).
    site_a: FeedServer,
    /// B names its own icon, on this host.
    own_b: FeedServer,
    /// C's site: a page naming nothing, a "favicon" that is an HTML error page, and C's logo.
    site_c: FeedServer,
}

impl Sites {
    async fn start() -> Sites {
        let sites = Sites {
            feeds: FeedServer::start_at("127.0.0.2").await,
            site_a: FeedServer::start_at("127.0.0.3").await,
            own_b: FeedServer::start_at("127.0.0.4").await,
            site_c: FeedServer::start_at("127.0.0.5").await,
        };
        let a_site = sites.site_a.url("/");
        sites.feeds.set("/a.xml", Route::rss(rss("Alpha", &a_site, None)));
        sites.site_a.set(
            "/",
            Route::feed(
                "text/html",
                "<!doctype html><html><head><link rel=\"apple-touch-icon\" href=\"/touch.png\">\
                 <link rel=\"icon\" type=\"image/svg+xml\" href=\"/i.svg\">\
                 <link rel=\"shortcut icon\" href=\"/static/i.png\"></head><body>A</body></html>",
            ),
        );
        sites.site_a.set(
            "/static/i.png",
            Route::feed("image/png", PNG).with_etag("\"png-1\""),
        );
        let own = sites.own_b.url("/own.ico");
        sites
            .feeds
            .set("/b.atom", Route::feed("application/atom+xml", atom("Beta", &own)));
        sites
            .own_b
            .set("/own.ico", Route::feed("image/vnd.microsoft.icon", ICO));
        let c_site = sites.site_c.url("/");
        let logo = sites.site_c.url("/logo.gif");
        sites
            .feeds
            .set("/c.xml", Route::rss(rss("Gamma", &c_site, Some(&logo))));
        sites.site_c.set(
            "/",
            Route::feed("text/html", "<html><body>no icons</body></html>"),
        );
        // 200 with an error page: not an image, whatever it is called.
        sites.site_c.set(
            "/favicon.ico",
            Route::feed("image/x-icon", "<html><body>Not Found</body></html>"),
        );
        sites.site_c.set("/logo.gif", Route::feed("image/gif", GIF));
        sites
    }

    fn feed_tables(&self) -> String {
        ["/a.xml", "/b.atom", "/c.xml"]
            .iter()
            .map(|p| format!("[[feed]]\nurl = \"{}\"\n", self.feeds.url(p)))
            .collect()
    }
}

/// The icon files written beside the outputs, by content.
fn icon_file(ws: &Workspace, bytes: &[u8], ext: &str) -> String {
    let dir = ws.path("public/icons");
    let found = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .find(|p| std::fs::read(p).unwrap() == bytes)
        .unwrap_or_else(|| panic!("no icon file holds {bytes:?}"));
    let name = found.file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.ends_with(&format!(".{ext}")), "{name}");
    name
}

/// Feed A on 127.0.0.2, its site on 127.0.0.3 with nothing but a `/favicon.ico`.
async fn feed_with_a_favicon() -> (FeedServer, FeedServer) {
    let feeds = FeedServer::start_at("127.0.0.2").await;
    let site = FeedServer::start_at("127.0.0.3").await;
    site.set("/favicon.ico", Route::feed("image/x-icon", ICO));
    feeds.set("/a.xml", Route::rss(rss("Alpha", &site.url("/"), None)));
    (feeds, site)
}

fn read(ws: &Workspace, rel: &str) -> String {
    std::fs::read_to_string(ws.path(rel)).unwrap()
}

#[tokio::test(start_paused = true)]
async fn each_feeds_icon_is_found_where_readers_look_shown_and_asked_again_a_week_on() {
    let sites = Sites::start().await;
    let ws = Workspace::new();
    let path = ws.write_config(&format!(
        "[store]\npath = \"data/t.db\"\n\n[poll]\nschedule = \"0 */6 * * *\"\n\
         allow_networks = [\"127.0.0.0/8\"]\n\n{}\n\
         [[output]]\npath = \"public/index.html\"\nformat = \"html\"\n\
         [[output]]\npath = \"public/all.atom\"\n\
         [[output]]\npath = \"public/all.json\"\n",
        sites.feed_tables()
    ));
    let start = Utc.with_ymd_and_hms(2026, 3, 2, 10, 0, 0).unwrap();
    let daemon = Running::start(&path, start);
    daemon.run_until(start + chrono::Duration::hours(1)).await;

    // Found at the first poll, each in its place, and nothing asked past it.
    let count = |server: &FeedServer, p: &str| server.requests(p).len();
    assert_eq!(count(&sites.site_a, "/"), 1, "A's home page, for its icons");
    assert_eq!(count(&sites.site_a, "/static/i.png"), 1);
    assert_eq!(count(&sites.site_a, "/i.svg"), 0, "an SVG is never an icon");
    assert_eq!(count(&sites.site_a, "/touch.png"), 0, "the icon came first");
    assert_eq!(count(&sites.site_a, "/favicon.ico"), 0);
    assert_eq!(count(&sites.own_b, "/own.ico"), 1, "B's own icon, first");
    assert_eq!(count(&sites.own_b, "/"), 0);
    assert_eq!(count(&sites.site_c, "/"), 1);
    assert_eq!(count(&sites.site_c, "/favicon.ico"), 1);
    assert_eq!(count(&sites.site_c, "/logo.gif"), 1, "C's logo, last");

    let a = icon_file(&ws, PNG, "png");
    let b = icon_file(&ws, ICO, "ico");
    let c = icon_file(&ws, GIF, "gif");
    let page = read(&ws, "public/index.html");
    for (icon, name) in [(&a, "Alpha"), (&b, "Beta"), (&c, "Gamma")] {
        let img = format!("<img class=\"icon\" src=\"icons/{icon}\" alt=\"\" width=\"16\" height=\"16\">");
        let beside = page
            .match_indices(&img)
            .filter(|(at, _)| page[*at..].split("</bdi>").next().unwrap_or("").contains(name))
            .count();
        assert_eq!(
            beside, 2,
            "{name}'s icon beside its name, in its entry and the subscriptions:\n{page}"
        );
    }
    let atom_text = read(&ws, "public/all.atom");
    let atom = feed_rs::parser::parse(atom_text.as_bytes()).unwrap();
    assert_eq!(atom.entries.len(), 3);
    for icon in [&a, &b, &c] {
        assert!(
            atom_text.contains(&format!("<icon>icons/{icon}</icon>")),
            "{atom_text}"
        );
    }
    crate::support::validate_atom(&ws.path("public/all.atom"));
    let json: serde_json::Value = serde_json::from_str(&read(&ws, "public/all.json")).unwrap();
    let mut favicons: Vec<String> = json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["_tributary"]["source"]["favicon"].as_str().unwrap().to_string())
        .collect();
    favicons.sort();
    let mut expected = vec![format!("icons/{a}"), format!("icons/{b}"), format!("icons/{c}")];
    expected.sort();
    assert_eq!(favicons, expected);

    // Polled every six hours for a week: the icons are not asked again until the week is out,
    // then A's conditionally (a 304 keeps it), and no home page is read again.
    daemon.run_until(start + chrono::Duration::days(8)).await;
    daemon.stop().await;
    let asked = sites.site_a.requests("/static/i.png");
    assert_eq!(asked.len(), 2, "once, then once a week on");
    assert_eq!(
        asked[1]
            .headers
            .get("if-none-match")
            .and_then(|v| v.to_str().ok()),
        Some("\"png-1\""),
        "asked again with its validator"
    );
    assert_eq!(count(&sites.own_b, "/own.ico"), 2);
    assert_eq!(
        count(&sites.site_a, "/"),
        1,
        "the icon still there: the page is not read again"
    );
    assert_eq!(count(&sites.site_c, "/"), 1, "C's logo is asked directly now");
    assert_eq!(count(&sites.site_c, "/logo.gif"), 2);
    assert_eq!(icon_file(&ws, PNG, "png"), a, "unchanged: the same file");
    assert!(
        sites.feeds.requests("/a.xml").len() >= 30,
        "the feed itself kept its schedule"
    );
}

/// Icons that must not be fetched: content naming a private network the operator did not
/// allow, a special-use name. The feed is fine; nothing is asked; the page has no icon.
#[tokio::test(flavor = "multi_thread")]
async fn icons_on_private_networks_or_special_use_names_are_never_asked() {
    let (feeds, site) = feed_with_a_favicon().await;
    feeds.set(
        "/b.xml",
        Route::rss(rss(
            "Beta",
            "https://beta.example/",
            Some("http://logo.test/l.gif"),
        )),
    );
    let ws = Workspace::new();
    ws.write_config(&format!(
        "[store]\npath = \"data/t.db\"\n[[feed]]\nurl = \"{}\"\n[[feed]]\nurl = \"{}\"\n\
         [[output]]\npath = \"public/index.html\"\nformat = \"html\"\n",
        feeds.url("/a.xml"),
        feeds.url("/b.xml")
    ));
    let run = ws.poll().await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(site.requests("/").len() + site.requests("/favicon.ico").len(), 0);
    assert!(!ws.path("public/icons").exists());
    assert!(!read(&ws, "public/index.html").contains("class=\"icon\""));
    // Why is on record, for `feeds`.
    for (feed, why) in [("/a.xml", "loopback"), ("/b.xml", "special-use")] {
        let shown = ws.tributary(&["feeds", &feeds.url(feed), "--json"]).await;
        let rows: serde_json::Value = serde_json::from_str(&shown.stdout).unwrap();
        let icon = &rows[0]["icon"];
        assert_eq!(icon["url"], serde_json::Value::Null, "{icon}");
        assert!(icon["error"].as_str().unwrap().contains(why), "{icon}");
        let text = ws.tributary(&["feeds", &feeds.url(feed)]).await;
        assert!(text.stdout.contains("icon: none found ("), "{}", text.stdout);
    }
}

/// `tributary run` serves each icon the page names, from the store: the right type, cached
/// for good (its name is its hash), 304 on its tag, nothing it holds run as a document; names
/// it does not know are 404s without a lookup of any file.
#[tokio::test(flavor = "multi_thread")]
async fn the_server_serves_the_icons_the_page_names() {
    let (feeds, _site) = feed_with_a_favicon().await;
    let ws = Workspace::new();
    ws.write_config(&format!(
        "[store]\npath = \"data/t.db\"\n[poll]\nschedule = \"0 0 1 1 *\"\nallow_networks = [\"127.0.0.0/8\"]\n\
         [serve]\nlisten = \"127.0.0.1:0\"\n\
         [[feed]]\nurl = \"{}\"\n\
         [[output]]\npath = \"public/index.html\"\nformat = \"html\"\n",
        feeds.url("/a.xml")
    ));
    // A one-shot poll finds the icon; the daemon started after it serves what the store has.
    let run = ws.poll().await;
    assert_eq!(run.code, 0, "{run:?}");
    let name = icon_file(&ws, ICO, "ico");
    let mut daemon = Daemon::start(&ws.path("tributary.toml"));
    let addr = daemon.ready_serving().await;
    tributary::init_tls();
    let client = reqwest::Client::new();
    let get = |path: &str| client.get(format!("http://{addr}{path}"));
    // The page is served once the start-up render is done: asked until it is (a bounded
    // number of times).
    let img = format!("src=\"icons/{name}\"");
    let mut page = String::new();
    for _ in 0..500 {
        page = get("/index.html").send().await.unwrap().text().await.unwrap();
        if page.contains(&img) {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(page.contains(&img), "{page}");
    let r = get(&format!("/icons/{name}")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/x-icon");
    assert_eq!(
        r.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert_eq!(r.headers()["content-security-policy"], "default-src 'none'");
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    assert_eq!(&r.bytes().await.unwrap()[..], ICO);
    let again = get(&format!("/icons/{name}"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    let (hash, _) = name.split_once('.').unwrap();
    for unknown in [
        format!("/icons/{hash}.png"),
        "/icons/000000000000000000000000.ico".to_string(),
        "/icons/../data/t.db".to_string(),
        "/icons/".to_string(),
    ] {
        assert_eq!(get(&unknown).send().await.unwrap().status(), 404, "{unknown}");
    }
    daemon.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(daemon.exit_code().await, 0);
}

/// `[poll] icons = false`: nothing is looked for, and the outputs name no icon.
#[tokio::test(flavor = "multi_thread")]
async fn icons_off_asks_for_none() {
    let (feeds, site) = feed_with_a_favicon().await;
    let ws = Workspace::new();
    ws.write_config(&format!(
        "[store]\npath = \"data/t.db\"\n[poll]\nicons = false\nallow_networks = [\"127.0.0.0/8\"]\n\
         [[feed]]\nurl = \"{}\"\n[[output]]\npath = \"public/index.html\"\nformat = \"html\"\n",
        feeds.url("/a.xml")
    ));
    let run = ws.poll().await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(feeds.requests("/a.xml").len(), 1);
    assert_eq!(site.requests("/").len() + site.requests("/favicon.ico").len(), 0);
    assert!(!read(&ws, "public/index.html").contains("class=\"icon\""));
    let shown = ws.tributary(&["feeds", &feeds.url("/a.xml")]).await;
    assert!(
        shown.stdout.contains("icon: not looked for yet"),
        "{}",
        shown.stdout
    );
}
