//! What readers see, tried on a stress planet: 500 entries from one feed, Japanese and Arabic
//! feeds that declare their language, a 300-character title with no space in it, a 30-column
//! table, long URLs and code lines, untitled entries, an entry dated in the future, an image
//! whose source the sanitizer removed, and a feed that fails. The page is written in French
//! dates, grouped in Tokyo time; headless Chromium measures that no page scrolls sideways at
//! 390 px (and 320 and 1280), and every feed output keeps the rules a feed validator checks.

use std::path::Path;

use crate::support::{FeedServer, Route, Workspace, require_tool};

/// RSS with a `<language>`; items are (guid, title, author, description, RFC 822 date).
fn rss_in(lang: &str, title: &str, items: &[(String, String, String, String, String)]) -> String {
    let esc = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><rss version=\"2.0\" \
         xmlns:dc=\"http://purl.org/dc/elements/1.1/\"><channel><title>{}</title>\
         <link>https://{lang}.example/</link><description>d</description><language>{lang}</language>",
        esc(title)
    );
    for (guid, title, author, body, date) in items {
        out.push_str(&format!(
            "<item><guid isPermaLink=\"false\">{guid}</guid><link>https://{lang}.example/{guid}</link>{}{}\
             <description>{}</description><pubDate>{date}</pubDate></item>",
            if title.is_empty() {
                String::new()
            } else {
                format!("<title>{}</title>", esc(title))
            },
            if author.is_empty() {
                String::new()
            } else {
                format!("<dc:creator>{}</dc:creator>", esc(author))
            },
            esc(body),
        ));
    }
    out.push_str("</channel></rss>");
    out
}

fn item(
    guid: &str,
    title: &str,
    author: &str,
    body: &str,
    date: &str,
) -> (String, String, String, String, String) {
    (guid.into(), title.into(), author.into(), body.into(), date.into())
}

/// The stress planet, polled once: `index.html` shows everything, `rtl.html` the Arabic feed,
/// `cjk.html` the Japanese one; the feed outputs have addresses of their own (`url`), the page
/// too, and there is no `[serve] base_url`.
async fn stress_planet() -> (Workspace, FeedServer) {
    let server = FeedServer::start().await;
    let many: Vec<_> = (0..500)
        .map(|i| {
            item(
                &format!("m{i}"),
                &format!("Entry number {i} of the busy feed"),
                "",
                "<p>Short body.</p>",
                &format!("Mon, 02 Mar 2026 {:02}:{:02}:00 +0000", i / 60 % 24, i % 60),
            )
        })
        .collect();
    server.set("/many.xml", Route::rss(rss_in("en", "Busy feed", &many)));

    let cjk_text = "日本語の長い文章は空白なしで続きます。".repeat(20);
    let ja = vec![
        item(
            "j1",
            "東京の朝：新しいリリースについて",
            "山田太郎",
            &format!("<p>{cjk_text}</p>"),
            "Tue, 03 Mar 2026 20:30:00 +0000",
        ),
        item(
            "j2",
            "",
            "",
            "<p>タイトルのない短い投稿です。</p>",
            "Tue, 03 Mar 2026 21:00:00 +0000",
        ),
    ];
    server.set("/ja.xml", Route::rss(rss_in("ja", "日本語のブログ", &ja)));

    let ar = vec![
        item(
            "a1",
            "مرحبا بالعالم: إصدار جديد",
            "أحمد علي",
            "<p>هذا نص عربي طويل يتحدث عن الإصدار الجديد من البرنامج.</p>",
            "Tue, 03 Mar 2026 04:00:00 +0000",
        ),
        item(
            "a2",
            "عنوان ثان مع كلمة English في الوسط",
            "فاطمة",
            "<p>نص قصير.</p>",
            "Tue, 03 Mar 2026 05:00:00 +0000",
        ),
    ];
    server.set("/ar.xml", Route::rss(rss_in("ar", "مدونة عربية", &ar)));

    let long_word = "Supercalifragilistic".repeat(15);
    let table: String = format!(
        "<table><tr>{}</tr><tr>{}</tr></table>",
        (0..30)
            .map(|i| format!("<th>Column heading {i}</th>"))
            .collect::<String>(),
        (0..30)
            .map(|i| format!("<td>value-{i}-without-breaks</td>"))
            .collect::<String>()
    );
    let odd = vec![
        item(
            "o1",
            &long_word,
            "An author with a rather long name indeed",
            "<p>Title is one word.</p>",
            "Wed, 04 Mar 2026 09:00:00 +0000",
        ),
        item(
            "o2",
            "A wide table",
            "",
            &table,
            "Wed, 04 Mar 2026 08:00:00 +0000",
        ),
        item(
            "o3",
            "Long URL and code",
            "",
            &format!(
                "<p>See https://example.org/{} for details.</p><pre>{}</pre>",
                "very-long-path-segment/".repeat(12),
                "let x = compute(a, b, c);".repeat(12)
            ),
            "Wed, 04 Mar 2026 07:00:00 +0000",
        ),
        item(
            "o4",
            "",
            "",
            "<p>Just a quick note without any title, saying hello to everyone reading this planet today.</p>",
            "Wed, 04 Mar 2026 06:00:00 +0000",
        ),
        item(
            "o5",
            "From the future",
            "",
            "<p>Dated ahead.</p>",
            "Fri, 01 Jan 2100 00:00:00 +0000",
        ),
        item(
            "o6",
            "Image that lost its source",
            "",
            "<p>Before<img src=\"javascript:alert(1)\" alt=\"x\">after.</p>",
            "Wed, 04 Mar 2026 05:00:00 +0000",
        ),
    ];
    server.set("/odd.xml", Route::rss(rss_in("en", "Odd cases", &odd)));
    server.set("/broken.xml", Route::status(500, "oops"));

    let ws = Workspace::new();
    ws.write_config(&format!(
        "[store]\npath = \"data/t.db\"\n[poll]\nnew_feed_entries = 1000\n\n\
         [[feed]]\nurl = \"{many}\"\n\n\
         [[feed]]\nurl = \"{ja}\"\ntags = [\"ja\"]\n\n\
         [[feed]]\nurl = \"{ar}\"\ntags = [\"ar\"]\n\n\
         [[feed]]\nurl = \"{odd}\"\n\n\
         [[feed]]\nurl = \"{broken}\"\ntitle = \"Broken feed with a name long enough to wrap on a phone\"\n\n\
         [[output]]\npath = \"public/index.html\"\nformat = \"html\"\ntitle = \"Stress planet\"\nlimit = 1000\n\
         lang = \"fr\"\ntimezone = \"Asia/Tokyo\"\nurl = \"https://planet.example/\"\n\n\
         [[output]]\npath = \"public/rtl.html\"\nformat = \"html\"\ntitle = \"كوكب\"\ntags = [\"ar\"]\nlang = \"ar\"\n\n\
         [[output]]\npath = \"public/cjk.html\"\nformat = \"html\"\ntitle = \"惑星\"\ntags = [\"ja\"]\nlang = \"ja\"\ntimezone = \"Asia/Tokyo\"\n\n\
         [[output]]\npath = \"public/all.atom\"\ntitle = \"Stress planet\"\nlimit = 1000\nurl = \"https://planet.example/all.atom\"\n\n\
         [[output]]\npath = \"public/all.rss\"\nformat = \"rss\"\ntitle = \"Stress planet\"\nlimit = 1000\nurl = \"https://planet.example/all.rss\"\n\n\
         [[output]]\npath = \"public/all.json\"\nformat = \"json\"\ntitle = \"Stress planet\"\nlimit = 1000\n",
        many = server.url("/many.xml"),
        ja = server.url("/ja.xml"),
        ar = server.url("/ar.xml"),
        odd = server.url("/odd.xml"),
        broken = server.url("/broken.xml"),
    ));
    let run = ws.poll().await;
    assert_eq!(run.code, 1, "one feed fails: {}", run.stderr);
    (ws, server)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_page_speaks_each_feeds_language_and_the_outputs_dates() {
    let (ws, _server) = stress_planet().await;
    let page = std::fs::read_to_string(ws.path("public/index.html")).unwrap();
    assert!(
        page.contains("<html lang=\"fr\" dir=\"ltr\">"),
        "the page's language"
    );
    assert!(
        page.contains("<article lang=\"ja\" dir=\"auto\">"),
        "Japanese entries are marked"
    );
    assert!(
        page.contains("<article lang=\"ar\" dir=\"auto\">"),
        "Arabic entries are marked"
    );
    assert!(page.contains("<bdi>أحمد علي</bdi>"), "names are isolated");
    assert!(page.contains("<bdi><a href=\"https://ar.example/\">مدونة عربية</a></bdi>"));
    // 2026-03-03T20:30Z is 05:30 on 4 March in Tokyo: grouped and printed there, in French.
    assert!(
        page.contains("<time datetime=\"2026-03-04\">mercredi 4 mars 2026</time>"),
        "{page}"
    );
    assert!(page.contains(">05:30 JST</time>"));
    assert!(!page.contains("UTC</time>"));
    // Untitled entries are called by their first words, never "(untitled)".
    assert!(page.contains("タイトルのない短い投稿です。"));
    assert!(
        page.contains(
            "class=\"excerpt\"><a href=\"https://en.example/o4\">Just a quick note without any title"
        )
    );
    assert!(!page.contains("(untitled)"));
    // The image without a source is gone; its text stays.
    assert!(page.contains("<p>Beforeafter.</p>"), "{page}");
    assert!(!page.contains("<img alt"));
    // When the feeds were last checked, and the subscribe links before the first entry.
    // The page's own words are French too.
    assert!(page.contains("<p class=\"updated\">Mis à jour <time datetime=\""));
    assert!(page.contains("<h2>Abonnements</h2>"), "{page}");
    let subscribe = page.find("<nav class=\"subscribe\"").expect("subscribe links");
    assert!(subscribe < page.find("<article").unwrap());
    assert!(
        page.contains("en échec depuis le ") && page.contains("le serveur du flux a rencontré une erreur"),
        "the failing feed says so"
    );
    assert_eq!(page.matches("<article").count(), 510, "every entry is shown");

    let cjk = std::fs::read_to_string(ws.path("public/cjk.html")).unwrap();
    assert!(cjk.contains("<html lang=\"ja\" dir=\"ltr\">"));
    assert!(
        cjk.contains("<time datetime=\"2026-03-04\">2026年3月4日 水曜日</time>"),
        "{cjk}"
    );
    let rtl = std::fs::read_to_string(ws.path("public/rtl.html")).unwrap();
    assert!(rtl.contains("<html lang=\"ar\" dir=\"rtl\">"));
    assert!(rtl.contains("<time datetime=\"2026-03-03\">"), "{rtl}");
}

/// The rules the W3C feed validator checks that apply to a merged feed, each asserted, and
/// feedparser reading every feed output with `bozo = 0`.
#[tokio::test(flavor = "multi_thread")]
async fn every_feed_output_keeps_the_validators_rules() {
    let (ws, _server) = stress_planet().await;
    let atom = std::fs::read_to_string(ws.path("public/all.atom")).unwrap();
    crate::support::validate_atom(&ws.path("public/all.atom"));
    let feed = feed_rs::parser::parse(atom.as_bytes()).unwrap();
    assert!(atom.contains("<link rel=\"self\" href=\"https://planet.example/all.atom\"/>"));
    assert!(
        atom.contains("<link rel=\"alternate\" href=\"https://planet.example/\"/>"),
        "the feed's web page is the html output"
    );
    assert_eq!(feed.entries.len(), 510);
    let sources = atom.matches("<source>").count();
    assert_eq!(sources, 510);
    // Every atom:source is complete: id, title, a self link and updated.
    for source in atom.split("<source>").skip(1) {
        let source = &source[..source.find("</source>").unwrap()];
        for part in ["<id>", "<title>", "<link rel=\"self\"", "<updated>"] {
            assert!(source.contains(part), "atom:source without {part}: {source}");
        }
    }
    assert!(
        feed.entries
            .iter()
            .all(|e| e.title.as_ref().is_some_and(|t| !t.content.is_empty()))
    );

    let rss = std::fs::read_to_string(ws.path("public/all.rss")).unwrap();
    let channel = &rss[..rss.find("<item>").unwrap()];
    assert!(
        channel.contains("<link>https://planet.example/</link>"),
        "{channel}"
    );
    assert!(channel.contains("<atom:link rel=\"self\" href=\"https://planet.example/all.rss\""));
    for item in rss.split("<item>").skip(1) {
        assert!(item.contains("<dc:creator>"), "an item without an author: {item}");
        assert!(item.contains("<title>") || item.contains("<description>"));
        assert!(!item.contains("<title></title>"));
    }
    assert!(
        rss.contains("<dc:creator>Odd cases</dc:creator>"),
        "the feed's title stands in"
    );

    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ws.path("public/all.json")).unwrap()).unwrap();
    assert_eq!(json["home_page_url"], "https://planet.example/");
    no_empty_fields(&json, "$");
    for item in json["items"].as_array().unwrap() {
        assert!(
            item.get("content_html").is_some() || item.get("content_text").is_some(),
            "an item without content: {item}"
        );
    }

    if crate::support::require_python_module("feedparser") {
        // Released feedparser (6.0) does not read JSON Feed; its rules are asserted above.
        for file in ["all.atom", "all.rss"] {
            let out = std::process::Command::new("python3")
                .args([
                    "-c",
                    "import feedparser, json, sys\nd = feedparser.parse(sys.argv[1])\n\
                     print(json.dumps([int(d.bozo), str(d.get('bozo_exception', '')), len(d.entries), d.version]))",
                    ws.path(&format!("public/{file}")).to_str().unwrap(),
                ])
                .output()
                .unwrap();
            let (bozo, why, entries, version): (i64, String, usize, String) =
                serde_json::from_slice(&out.stdout)
                    .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
            assert_eq!((bozo, why.as_str()), (0, ""), "feedparser on {file}");
            assert_eq!(entries, 510, "feedparser on {file} ({version})");
        }
    }
}

/// No `""`, `[]` or `{}` anywhere in a JSON Feed: an absent field, not an empty one.
fn no_empty_fields(value: &serde_json::Value, at: &str) {
    match value {
        serde_json::Value::String(s) => assert!(!s.is_empty(), "empty string at {at}"),
        serde_json::Value::Array(a) => {
            assert!(!a.is_empty(), "empty array at {at}");
            for (i, v) in a.iter().enumerate() {
                no_empty_fields(v, &format!("{at}[{i}]"));
            }
        }
        serde_json::Value::Object(o) => {
            assert!(!o.is_empty(), "empty object at {at}");
            for (k, v) in o {
                no_empty_fields(v, &format!("{at}.{k}"));
            }
        }
        _ => {}
    }
}

/// Headless Chromium loads each page at each width and reports how wide the document is;
/// nothing may scroll sideways.
#[tokio::test(flavor = "multi_thread")]
async fn no_page_scrolls_sideways_on_a_phone() {
    let Some(chromium) = require_tool("chromium") else {
        return;
    };
    let (ws, _server) = stress_planet().await;
    let home = ws.path("chromium");
    std::fs::create_dir_all(&home).unwrap();
    for page in ["index.html", "rtl.html", "cjk.html"] {
        // A copy of the page that reports its width once laid out (the page itself has no
        // script, and needs none).
        let html = std::fs::read_to_string(ws.path(&format!("public/{page}"))).unwrap();
        let probe = html.replace(
            "</body>",
            "<script>var cells = [].slice.call(document.querySelectorAll('.body td, .body th'))\
             .map(function (c) { return Math.round(c.getBoundingClientRect().width); });\
             parent.document.documentElement.setAttribute('data-fit', \
             document.scrollingElement.scrollWidth + ' ' + window.innerWidth + ' ' + \
             (cells.length ? Math.min.apply(null, cells) : 9999));</script></body>",
        );
        for width in [320, 390, 1280] {
            let (scroll, inner, narrowest_cell) = measure(&chromium, &home, &probe, width).await;
            assert_eq!(inner, width, "{page}: the viewport is {width} px");
            assert!(
                scroll <= inner,
                "{page} at {width} px is {scroll} px wide: it scrolls sideways"
            );
            // A wide table scrolls inside itself; its cells keep their words whole rather than
            // collapsing to a letter per line ("Column heading 29" is about 60 px at its
            // narrowest, a word per line).
            assert!(
                narrowest_cell >= 50,
                "{page} at {width} px squeezes a table cell to {narrowest_cell} px"
            );
        }
    }
}

/// `(scrollWidth, innerWidth, narrowest table cell)` of `page` in a viewport `width` px wide: the page in an iframe
/// of that width (headless Chromium's window is at least 500 px wide), whose script reports
/// to the frame around it.
async fn measure(chromium: &Path, home: &Path, page: &str, width: u32) -> (u32, u32, u32) {
    let frame = format!(
        "<!DOCTYPE html><html><body style=\"margin:0\"><iframe style=\"border:0;width:{width}px;height:900px\" srcdoc=\"{}\"></iframe></body></html>",
        page.replace('&', "&amp;").replace('"', "&quot;")
    );
    let frame_path = home.join(format!("frame-{width}.html"));
    crate::support::write_file(&frame_path, frame.as_bytes());
    // Headless Chromium's window is at least 500 px wide: the page gets its width from the frame.
    let dom =
        crate::support::headless_chromium(chromium, home, "1400,1000", &["--dump-dom"], &frame_path).await;
    let fit = dom
        .split("data-fit=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap_or_else(|| panic!("no measurement in the DOM: {}", &dom[..dom.len().min(500)]));
    let mut numbers = fit.split(' ').map(|n| n.parse::<u32>().unwrap());
    (
        numbers.next().unwrap(),
        numbers.next().unwrap(),
        numbers.next().unwrap(),
    )
}
