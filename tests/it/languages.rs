//! The web in every language, as a planet reading it meets it (issue 33's case): a Chinese
//! news site's English world page, scraped, whose template carries a line of Chinese spam,
//! with dates in Beijing time and no zone; the same site's Chinese feed with no `<language>`
//! and zone-less RSS dates, and a copy of the spam in Traditional characters and full-width
//! digits; its JSON API mixing `+08:00` and zone-less times; a Russian feed whose language
//! label is mojibake and whose body has a mojibake run among curly quotes; an Arabic Atom feed
//! that declares its language; a Hindi feed whose language the operator names; a Traditional
//! Chinese feed. All served from loopback, checked in every output format, in `explain`, and
//! on the page (in Chromium, with a screenshot kept).

use std::path::Path;

use crate::support::{FeedServer, Route, Workspace, require_tool, validate_atom};

/// The window the page is drawn in, for its fonts and its screenshot.
const WINDOW: &str = "1200,1600";

const SPAM: &str = "亚洲91视频,国产91网,久久久久久久久久久久久久久国产";
const SPAM_TRADITIONAL: &str = "亞洲９１視頻,國產９１網";

/// The English world page: stories in `<div class="story">`, times in Beijing time with no
/// zone; the template's spam line inside the second story's text.
fn world_page() -> String {
    let story = |slug: &str, title: &str, time: &str, text: &str| {
        format!(
            "<div class=\"story\"><h3><a href=\"/world/{slug}.html\">{title}</a></h3>\
             <span class=\"time\">{time}</span><p class=\"text\">{text}</p></div>"
        )
    };
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>World</title></head><body>\
         <div class=\"list\">{}{}</div></body></html>",
        story(
            "talks",
            "Climate talks resume in Geneva",
            "2026-12-05 10:12",
            "Negotiators from more than forty countries returned to the table on Saturday, \
             hoping to settle the remaining questions about funding before the end of the year."
        ),
        story(
            "markets",
            "Markets steady after a volatile week",
            "2026-12-05 09:30",
            &format!(
                "Stock markets in the region closed higher on Saturday as investors weighed the \
                 latest figures on trade and industrial output. {SPAM}"
            )
        ),
    )
}

/// An RSS feed without `<language>`, with the site's dates as it writes them.
fn rss(title: &str, language: Option<&str>, items: &[(&str, &str, &str, &str)]) -> String {
    let mut s = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<rss version=\"2.0\"><channel><title>{title}</title>\
         <link>https://news.example/</link><description>{title}</description>"
    );
    if let Some(language) = language {
        s.push_str(&format!("<language>{language}</language>"));
    }
    for (guid, title, date, body) in items {
        s.push_str(&format!(
            "<item><guid isPermaLink=\"false\">{guid}</guid><link>https://news.example/{guid}</link>\
             <title>{title}</title><pubDate>{date}</pubDate><description>{body}</description></item>"
        ));
    }
    s.push_str("</channel></rss>\n");
    s
}

fn chinese_feed() -> String {
    rss(
        "中文新闻",
        None,
        &[
            (
                "zh-1",
                "国务院常务会议研究部署经济工作",
                "Sat, 05 Dec 2026 10:12:00",
                "国务院总理主持召开国务院常务会议，研究部署进一步推动经济持续回升向好的政策措施，\
                 会议强调要加大宏观政策调控力度。",
            ),
            (
                "zh-2",
                "今日热点视频合集",
                "Sat, 05 Dec 2026 08:00:00",
                &format!("<p>精彩内容请点击观看。</p><p>{SPAM_TRADITIONAL}</p>"),
            ),
        ],
    )
}

fn traditional_feed() -> String {
    rss(
        "台灣新聞",
        None,
        &[(
            "tw-1",
            "行政院會議討論經濟發展計畫",
            "Sat, 05 Dec 2026 09:00:00 +0800",
            "行政院今天召開院會，討論明年度經濟發展計畫，並通過多項支持中小企業的新措施，\
             院長強調要持續推動產業轉型。",
        )],
    )
}

fn russian_feed() -> String {
    rss(
        "Новости",
        // The label as a broken pipeline writes it: no registered tag.
        Some("FranÃ§ais"),
        &[(
            "ru-1",
            "Правительство обсудило план развития экономики",
            "Sat, 05 Dec 2026 07:00:00 +0300",
            "<p>Правительство обсудило план развития экономики на следующий год и утвердило \
             новые меры поддержки малого бизнеса в регионах страны. Версии: “FranÃ§ais” и \
             “EspaÃ±ol”.</p>",
        )],
    )
}

fn hindi_feed() -> String {
    rss(
        "समाचार",
        None,
        &[(
            "hi-1",
            "सरकार ने आर्थिक योजना पर चर्चा की",
            "Sat, 05 Dec 2026 06:00:00 +0530",
            "सरकार ने अगले वर्ष के लिए आर्थिक विकास की योजना पर चर्चा की।",
        )],
    )
}

fn arabic_feed() -> String {
    "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\" xml:lang=\"ar\">\
     <title>أخبار</title><id>tag:ar.example,2026:feed</id><updated>2026-12-05T05:00:00Z</updated>\
     <link href=\"https://ar.example/\"/>\
     <entry><id>tag:ar.example,2026:1</id><title>الحكومة تناقش خطة التنمية</title>\
     <link href=\"https://ar.example/1\"/><updated>2026-12-05T05:00:00Z</updated>\
     <content type=\"html\">&lt;p&gt;ناقشت الحكومة خطة التنمية الاقتصادية للعام المقبل.&lt;/p&gt;</content>\
     </entry></feed>\n"
        .to_string()
}

/// The JSON API: one story with `+08:00`, one with no zone (Beijing time all the same).
fn api() -> String {
    serde_json::json!({
        "data": [
            {"url": "https://news.example/api/1", "headline": "Port traffic rises again",
             "body": "Container traffic through the port rose for the third month in a row, the operator said on Saturday.",
             "time": "2026-12-05T11:00:00+08:00"},
            {"url": "https://news.example/api/2", "headline": "New rail line opens",
             "body": "The new line links the airport with the city centre in twenty minutes, officials said at the opening.",
             "time": "2026-12-05 11:00:00"}
        ]
    })
    .to_string()
}

const CONFIG: &str = r#"
[store]
path = "data/t.db"
[poll]
new_feed_entries = 100

# Spam, once for the whole planet: in Simplified characters, caught in Traditional too.
[rules]
exclude_words = ["亚洲91视频"]
exclude_words_file = "spam-words.txt"

[[feed]]
url = "WORLD"
title = "World (English)"
kind = "html"
scrape = { item = "div.story", title = "h3", link = "h3 a@href", date = "span.time", content = "p.text" }
timezone = "Asia/Shanghai"

[[feed]]
url = "ZH"
timezone = "Asia/Shanghai"

[[feed]]
url = "API"
title = "News API"
kind = "json"
scrape = { item = "/data", link = "/url", title = "/headline", date = "/time", content = "/body" }
timezone = "Asia/Shanghai"

[[feed]]
url = "TW"

[[feed]]
url = "RU"

[[feed]]
url = "AR"

[[feed]]
url = "HI"
lang = "hi"

[[output]]
path = "public/index.html"
format = "html"
title = "环球新闻"
lang = "zh-CN"
timezone = "Asia/Shanghai"

[[output]]
path = "public/all.atom"
title = "All"

[[output]]
path = "public/all.rss"
format = "rss"
title = "All"

[[output]]
path = "public/all.json"
format = "json"
title = "All"

[[output]]
path = "public/en.atom"
title = "English only"
languages = ["en"]

[[output]]
path = "public/zh.json"
format = "json"
title = "Chinese only"
languages = ["zh"]
"#;

async fn planet() -> (Workspace, FeedServer) {
    let server = FeedServer::start().await;
    server.set("/world", Route::feed("text/html; charset=utf-8", world_page()));
    server.set("/zh.xml", Route::rss(chinese_feed()));
    server.set("/api", Route::feed("application/json", api()));
    server.set("/tw.xml", Route::rss(traditional_feed()));
    server.set("/ru.xml", Route::rss(russian_feed()));
    server.set("/ar.xml", Route::feed("application/atom+xml", arabic_feed()));
    server.set("/hi.xml", Route::rss(hindi_feed()));
    let ws = Workspace::new();
    ws.write("spam-words.txt", "# seen on news sites\n国产91网\n".as_bytes());
    let mut config = CONFIG.to_string();
    for (name, path) in [
        ("WORLD", "/world"),
        ("ZH", "/zh.xml"),
        ("API", "/api"),
        ("TW", "/tw.xml"),
        ("RU", "/ru.xml"),
        ("AR", "/ar.xml"),
        ("HI", "/hi.xml"),
    ] {
        config = config.replace(&format!("\"{name}\""), &format!("\"{}\"", server.url(path)));
    }
    ws.write_config(&config);
    let run = ws.poll().await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    (ws, server)
}

/// Each Atom entry's `xml:lang` and published date, by title.
fn atom_entries(atom: &str) -> Vec<(String, Option<String>, String)> {
    let feed = feed_rs::parser::parse(atom.as_bytes()).expect("the Atom output parses");
    // feed-rs does not keep xml:lang; read it off each <entry> element in document order.
    let langs: Vec<Option<String>> = atom
        .split("<entry")
        .skip(1)
        .map(|e| {
            let tag = &e[..e.find('>').unwrap_or(0)];
            tag.split("xml:lang=\"")
                .nth(1)
                .and_then(|r| r.split('"').next())
                .map(str::to_string)
        })
        .collect();
    feed.entries
        .iter()
        .zip(langs)
        .map(|(e, lang)| {
            (
                e.title.as_ref().map(|t| t.content.clone()).unwrap_or_default(),
                lang,
                e.published.map(|p| p.to_rfc3339()).unwrap_or_default(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_chinese_news_sites_case_in_every_format() {
    let (ws, _server) = planet().await;
    let atom = std::fs::read_to_string(ws.path("public/all.atom")).unwrap();
    validate_atom(&ws.path("public/all.atom"));
    let entries = atom_entries(&atom);
    let find = |title: &str| {
        entries
            .iter()
            .find(|(t, _, _)| t == title)
            .unwrap_or_else(|| panic!("{title} is not in the output: {entries:?}"))
    };
    // Dates without a zone are Beijing time; dates with one are never shifted.
    assert_eq!(
        find("Climate talks resume in Geneva").2,
        "2026-12-05T02:12:00+00:00"
    );
    assert_eq!(
        find("国务院常务会议研究部署经济工作").2,
        "2026-12-05T02:12:00+00:00"
    );
    assert_eq!(find("Port traffic rises again").2, "2026-12-05T03:00:00+00:00");
    assert_eq!(find("New rail line opens").2, "2026-12-05T03:00:00+00:00");
    assert_eq!(find("行政院會議討論經濟發展計畫").2, "2026-12-05T01:00:00+00:00");
    assert_eq!(
        find("Правительство обсудило план развития экономики").2,
        "2026-12-05T04:00:00+00:00"
    );

    // Spam: the English page's story with the Simplified line, and the Chinese feed's copy in
    // Traditional characters and full-width digits, are kept out by the planet's rules.
    for spam in ["Markets steady after a volatile week", "今日热点视频合集"] {
        assert!(!entries.iter().any(|(t, _, _)| t == spam), "{spam} is shown");
    }
    assert_eq!(entries.len(), 8, "{entries:?}");

    // Languages: from the text (with Chinese scripts told apart), from the operator, from
    // the feed; never the mojibake label.
    for (title, lang) in [
        ("Climate talks resume in Geneva", "en"),
        ("Port traffic rises again", "en"),
        ("国务院常务会议研究部署经济工作", "zh-Hans"),
        ("行政院會議討論經濟發展計畫", "zh-Hant"),
        ("Правительство обсудило план развития экономики", "ru"),
        ("الحكومة تناقش خطة التنمية", "ar"),
        ("सरकार ने आर्थिक योजना पर चर्चा की", "hi"),
    ] {
        assert_eq!(find(title).1.as_deref(), Some(lang), "{title}");
    }
    assert!(!atom.contains("Fran?ais") && !atom.contains("FranÃ§ais"));
    // The mojibake run inside curly quotes is repaired, the quotes kept.
    assert!(atom.contains("“Français” и “Español”"), "{atom}");

    // RSS: dc:language on items.
    let rss = std::fs::read_to_string(ws.path("public/all.rss")).unwrap();
    for lang in ["en", "zh-Hans", "zh-Hant", "ru", "ar", "hi"] {
        assert!(
            rss.contains(&format!("<dc:language>{lang}</dc:language>")),
            "RSS: {lang}"
        );
    }
    feed_rs::parser::parse(rss.as_bytes()).expect("the RSS output parses");

    // JSON Feed: language on items.
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ws.path("public/all.json")).unwrap()).unwrap();
    let languages: Vec<&str> = json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["language"].as_str().unwrap_or("none"))
        .collect();
    assert_eq!(languages.len(), 8);
    assert!(!languages.contains(&"none"), "{languages:?}");

    // Outputs select by language.
    let english = atom_entries(&std::fs::read_to_string(ws.path("public/en.atom")).unwrap());
    let mut english: Vec<&str> = english.iter().map(|(t, ..)| t.as_str()).collect();
    english.sort();
    assert_eq!(
        english,
        [
            "Climate talks resume in Geneva",
            "New rail line opens",
            "Port traffic rises again"
        ]
    );
    let chinese: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ws.path("public/zh.json")).unwrap()).unwrap();
    let chinese: Vec<&str> = chinese["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["language"].as_str().unwrap())
        .collect();
    assert_eq!(chinese, ["zh-Hans", "zh-Hant"]);

    // The page: its words and dates in Chinese, Beijing time named without ambiguity, each
    // entry marked with its language (and so its font).
    let page = std::fs::read_to_string(ws.path("public/index.html")).unwrap();
    assert!(page.contains("<html lang=\"zh-CN\" dir=\"ltr\">"));
    for words in [
        "更新于",
        "订阅源",
        "由 <a href=",
        "2026年12月5日 星期六",
        ">10:12 UTC+8</time>",
    ] {
        assert!(page.contains(words), "the page lacks {words}");
    }
    for english in ["Updated", "Subscriptions", "Merged by", "CST"] {
        assert!(!page.contains(english), "the page still says {english}");
    }
    for lang in ["en", "zh-Hans", "zh-Hant", "ru", "ar", "hi"] {
        assert!(
            page.contains(&format!("<article lang=\"{lang}\"")),
            "page: {lang}"
        );
    }
    assert!(page.contains(":lang(zh-Hant)") && page.contains("\"Noto Sans CJK TC\""));
}

#[tokio::test(flavor = "multi_thread")]
async fn explain_names_the_rule_the_word_and_where_a_language_came_from() {
    let (ws, _server) = planet().await;
    let spam = ws.tributary(&["explain", "https://news.example/zh-2"]).await;
    assert!(
        spam.stdout.contains("output[2] /")
            && spam
                .stdout
                .contains("not shown: excluded by [rules] words (1 word): the word \"亚洲91视频\""),
        "{}",
        spam.stdout
    );
    let page_spam = ws
        .tributary(&["explain", "Markets steady after a volatile week"])
        .await;
    assert!(
        page_spam.stdout.contains("excluded by [rules] words from ")
            && page_spam.stdout.contains("(1 word): the word \"国产91网\"")
            || page_spam.stdout.contains("the word \"亚洲91视频\""),
        "{}",
        page_spam.stdout
    );
    for (what, says) in [
        (
            "https://news.example/zh-1",
            "language: zh-Hans, read from its text",
        ),
        (
            "https://news.example/hi-1",
            "language: hi, from its feed's `lang` in the config",
        ),
        ("https://ar.example/1", "language: ar, as its feed declares"),
        ("https://news.example/ru-1", "language: ru, read from its text"),
    ] {
        let run = ws.tributary(&["explain", what]).await;
        assert!(run.stdout.contains(says), "{what}: {}", run.stdout);
    }
    let russian = ws.tributary(&["explain", "https://news.example/ru-1"]).await;
    assert!(
        russian
            .stdout
            .contains("not shown: its language (ru) is not among this output's languages (en)"),
        "{}",
        russian.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn check_refuses_bogus_languages_zones_and_globs_with_their_places() {
    let ws = Workspace::new();
    ws.write_config(
        "[[feed]]\nurl = \"a.xml\"\nlang = \"xx-bogus\"\ntimezone = \"Asia/Beijing\"\n\
         [rules]\nexclude = [\"*91视频*\"]\n\
         [[output]]\npath = \"a.html\"\nformat = \"html\"\nlang = \"Chinese (Traditional)\"\nlanguages = [\"zz\"]\n",
    );
    let run = ws.tributary(&["check"]).await;
    assert_ne!(run.code, 0);
    let said = format!("{}{}", run.stdout, run.stderr);
    for (key, line, says) in [
        ("feed[1].lang", 3, "is not a registered language tag"),
        ("feed[1].timezone", 4, "is not an IANA time zone name"),
        ("rules.exclude", 6, "write rules.exclude_words = [\"91视频\"]"),
        ("output[1].lang", 10, "is not a language tag"),
        ("output[1].languages", 11, "is not a registered language tag"),
    ] {
        let place = format!("tributary.toml:{line}:");
        assert!(
            said.lines()
                .any(|l| l.contains(&place) && l.contains(key) && l.contains(says)),
            "no `{key}` problem at line {line} saying `{says}`:\n{said}"
        );
    }
}

/// The page in Chromium, with the CJK fonts `.ci/run` installs: each Chinese, Japanese and
/// Korean entry gets its own family, the Arabic page runs right to left; the screenshot is
/// kept in target/artifacts/ for a person to look at.
#[tokio::test(flavor = "multi_thread")]
async fn chromium_renders_each_script_in_its_own_font() {
    let Some(chromium) = require_tool("chromium") else {
        return;
    };
    let (ws, _server) = planet().await;
    let page = std::fs::read_to_string(ws.path("public/index.html")).unwrap();
    let home = ws.path("chromium");
    std::fs::create_dir_all(&home).unwrap();
    // A copy that reports, once laid out, the font family each article uses.
    let probe = page.replace(
        "</body>",
        "<script>document.documentElement.setAttribute('data-fonts', \
         Array.from(document.querySelectorAll('article')).map(a => a.lang + '=' + \
         getComputedStyle(a).fontFamily.split(',')[0].replace(/\"/g, '')).join(';'));</script></body>",
    );
    let probe_path = home.join("probe.html");
    crate::support::write_file(&probe_path, probe.as_bytes());
    let dom = crate::support::headless_chromium(&chromium, &home, WINDOW, &["--dump-dom"], &probe_path).await;
    let fonts = dom
        .split("data-fonts=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap_or_else(|| panic!("no fonts reported: {}", &dom[..dom.len().min(400)]));
    for (lang, family) in [("zh-Hans", "Noto Sans CJK SC"), ("zh-Hant", "Noto Sans CJK TC")] {
        assert!(fonts.contains(&format!("{lang}={family}")), "{lang}: {fonts}");
    }
    // The screenshot, of the page as published.
    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let shot = artifacts.join("languages-page.png");
    let _ = std::fs::remove_file(&shot);
    let screenshot = format!("--screenshot={}", shot.display());
    crate::support::headless_chromium(
        &chromium,
        &home,
        WINDOW,
        &[screenshot.as_str()],
        &ws.path("public/index.html"),
    )
    .await;
    let png = std::fs::read(&shot).expect("a screenshot");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 20_000,
        "{} bytes",
        png.len()
    );
    if let Some(fc_list) = require_tool("fc-list") {
        let fonts = std::process::Command::new(fc_list)
            .arg(":lang=zh-cn")
            .output()
            .unwrap();
        assert!(
            String::from_utf8_lossy(&fonts.stdout).contains("Noto Sans CJK SC"),
            "the CJK fonts are installed (fonts-noto-cjk)"
        );
    }
}
