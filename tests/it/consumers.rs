//! Every consumer reads our outputs the same: a stress planet (Chinese and Arabic, markup and
//! entities in titles, an author written `email (Name)`, enclosures, an entry with no date,
//! one story in two feeds, folder names with slashes, commas and CJK) rendered as Atom, RSS,
//! JSON Feed and OPML, and each format read by independent readers in four languages:
//! feedparser, feedparser-rs, atoma and listparser (Python), feedsmith, feed-extractor and
//! Dave Winer's opml (Node), ROME (Java), sfeed and newsboat (C, C++), and feed-rs (Rust).
//! Each must read the titles, links, dates, authors and enclosures (the OPML's titles, feed
//! URLs and folders) that the planet holds, in its order. `.ci/run` installs them all
//! (`tests/consumers/` has the Node and Python readers, and ROME's); elsewhere a missing one
//! says it skipped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support::{FeedServer, Route, Workspace, require_or_skip, require_python_module, require_tool};

/// One entry as every reader is asked to report it. `None` in a reader's report: the reader
/// does not expose the field (see [`NOT_EXPOSED`]).
#[derive(Debug, Clone, PartialEq)]
struct Read {
    title: Option<String>,
    link: Option<String>,
    date: Option<i64>,
    author: Option<String>,
    enclosures: Option<Vec<String>>,
}

/// The fields a reader's API does not give (so it cannot be held to them), by reader and
/// format: everything else it must read as the planet has it.
const NOT_EXPOSED: &[(&str, &str, &[&str])] = &[
    // feed-extractor normalizes entries to title, link and date.
    ("feed-extractor", "*", &["author", "enclosures"]),
    // atoma reads RSS's own <author> (an email address), not dc:creator.
    ("atoma", "rss", &["author"]),
    // feedparser-rs 0.7.1 leaves `&amp;` undecoded in an Atom link's href (valid XML, which
    // every other reader decodes): its bug, reported in the README's table.
    ("feedparser-rs", "atom", &["link"]),
];

impl Read {
    /// Each field by name, as text; `None` where the reader gave nothing.
    fn fields(&self) -> [(&'static str, Option<String>); 5] {
        [
            ("title", self.title.clone()),
            ("link", self.link.clone()),
            ("date", self.date.map(|d| d.to_string())),
            ("author", self.author.clone()),
            ("enclosures", self.enclosures.as_ref().map(|e| format!("{e:?}"))),
        ]
    }
}

fn exposed(reader: &str, format: &str, field: &str) -> bool {
    !NOT_EXPOSED
        .iter()
        .any(|(r, f, fields)| *r == reader && (*f == "*" || *f == format) && fields.contains(&field))
}

const ZH: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>北京新闻</title><link>https://zh.example/</link><language>zh-CN</language>
<item><title>北京：地铁新线开通 &lt;速报&gt;</title><link>https://zh.example/2026/subway</link>
<guid>zh-1</guid><author>li.wei@zh.example (李伟)</author><pubDate>Mon, 02 Mar 2026 08:00:00 +0800</pubDate>
<description>新线今天开通。</description>
<enclosure url="https://cdn.zh.example/subway.mp3" length="1000" type="audio/mpeg"/></item>
<item><title>上海 &amp; 杭州：高铁 "快线"</title><link>https://zh.example/2026/rail</link>
<guid>zh-2</guid><author>wang@zh.example (王芳)</author><description>没有日期的新闻。</description></item>
</channel></rss>"#;

const AR: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="ar"><title>أخبار</title><id>urn:ar</id>
<updated>2026-03-03T10:00:00Z</updated><link href="https://ar.example/"/>
<entry><id>urn:ar:1</id><title>مرحبا بالعالم: الإصدار ٢</title><link href="https://ar.example/hello"/>
<updated>2026-03-03T10:00:00Z</updated><author><name>سارة</name></author><content type="html">&lt;p&gt;نص&lt;/p&gt;</content></entry>
<entry><id>urn:ar:2</id><title type="html">Rust &lt;b&gt;1.80&lt;/b&gt; &amp;amp; Cargo</title><link href="https://ar.example/rust"/>
<updated>2026-03-01T09:30:00Z</updated><author><name>Omar</name></author>
<link rel="enclosure" href="https://ar.example/rust.pdf" type="application/pdf" length="99"/></entry>
</feed>"#;

const DUP: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"><channel><title>Aggregated</title><link>https://dup.example/</link>
<item><title>Subway line opens</title><link>https://zh.example/2026/subway</link><guid>dup-1</guid>
<dc:creator>Wire desk</dc:creator><pubDate>Mon, 02 Mar 2026 09:00:00 +0000</pubDate></item>
<item><title>AT&amp;T's "Q&amp;A" &lt;live&gt; — 5 &gt; 3</title><link>https://dup.example/qa?x=1&amp;y=2</link><guid>dup-2</guid>
<dc:creator>Jo O'Neil</dc:creator><pubDate>Wed, 04 Mar 2026 12:00:00 +0000</pubDate></item>
</channel></rss>"#;

/// The planet, polled: its outputs in `public/`.
async fn stress_planet() -> (Workspace, FeedServer) {
    let server = FeedServer::start_at("127.0.0.7").await;
    server.set("/zh.xml", Route::rss(ZH));
    server.set("/ar.xml", Route::feed("application/atom+xml", AR));
    server.set("/dup.xml", Route::rss(DUP));
    let ws = Workspace::new();
    ws.write_config(&format!(
        "[store]\npath = \"data/t.db\"\n\
         [[feed]]\nurl = \"{}\"\ntags = [\"新闻\"]\n\
         [[feed]]\nurl = \"{}\"\ntitle = \"أخبار «عربية»\"\ntags = [\"Go/Python, etc.\", \"rtl\"]\n\
         [[feed]]\nurl = \"{}\"\ntitle = \"Wire & Co\"\n\
         [[output]]\npath = \"public/all.atom\"\ndedupe = \"link\"\n\
         [[output]]\npath = \"public/all.rss\"\ndedupe = \"link\"\n\
         [[output]]\npath = \"public/all.json\"\ndedupe = \"link\"\n\
         [[output]]\npath = \"public/feeds.opml\"\n\
         [[output]]\npath = \"public/index.html\"\n",
        server.url("/zh.xml"),
        server.url("/ar.xml"),
        server.url("/dup.xml")
    ));
    let run = ws.poll().await;
    assert_eq!(run.code, 0, "{run:?}");
    (ws, server)
}

/// What the planet holds, from the store: the shown entries newest first, one per link.
fn expected(ws: &Workspace) -> Vec<Read> {
    // Our JSON Feed is the planet's own account (its reader is the store, not a parser of
    // ours); every other reading is held to it.
    let json: Value = serde_json::from_slice(&std::fs::read(ws.path("public/all.json")).unwrap()).unwrap();
    json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| Read {
            title: i["title"].as_str().map(String::from),
            link: i["url"].as_str().map(String::from),
            date: i["date_published"]
                .as_str()
                .map(|d| chrono::DateTime::parse_from_rfc3339(d).unwrap().timestamp()),
            author: i["authors"][0]["name"].as_str().map(String::from),
            enclosures: Some(
                i["attachments"]
                    .as_array()
                    .map(|a| a.iter().map(|x| x["url"].as_str().unwrap().to_string()).collect())
                    .unwrap_or_default(),
            ),
        })
        .collect()
}

fn from_json(v: &Value) -> Read {
    Read {
        title: v["title"].as_str().map(String::from),
        link: v["link"].as_str().map(String::from),
        date: v["date"].as_i64(),
        author: v["author"].as_str().map(String::from),
        enclosures: v["enclosures"]
            .as_array()
            .map(|a| a.iter().filter_map(|x| x.as_str().map(String::from)).collect()),
    }
}

/// Runs a reader script; its JSON report (reader name → entries).
fn run_reader(program: &Path, args: &[&str], cwd: &Path) -> BTreeMap<String, Vec<Value>> {
    let out = std::process::Command::new(program)
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", program.display()));
    assert!(
        out.status.success(),
        "{} {args:?} failed:\n{}",
        program.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<BTreeMap<String, Vec<Value>>>(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

fn consumers_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/consumers")
}

/// sfeed's TSV: timestamp, title, link, content, content-type, id, author, enclosure, category.
fn sfeed(file: &Path) -> Option<Vec<Read>> {
    let sfeed = require_tool("sfeed")?;
    let out = std::process::Command::new(sfeed)
        .stdin(std::fs::File::open(file).unwrap())
        .output()
        .unwrap();
    assert!(out.status.success());
    let unescape = |s: &str| s.replace("\\t", "\t").replace("\\n", "\n").replace("\\\\", "\\");
    Some(
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|line| {
                let f: Vec<&str> = line.split('\t').collect();
                let field = |i: usize| f.get(i).filter(|s| !s.is_empty()).map(|s| unescape(s));
                Read {
                    title: field(1),
                    link: field(2),
                    date: field(0).and_then(|t| t.parse().ok()),
                    author: field(6),
                    enclosures: Some(field(7).into_iter().collect()),
                }
            })
            .collect(),
    )
}

/// feed-rs, the Rust reader (not the one our parser is built on: it is only a reader here).
fn feed_rs(file: &Path) -> Vec<Read> {
    let feed = feed_rs::parser::parse(&std::fs::read(file).unwrap()[..]).unwrap();
    feed.entries
        .iter()
        .map(|e| Read {
            title: e.title.as_ref().map(|t| t.content.clone()),
            link: e.links.first().map(|l| l.href.clone()),
            date: e.published.or(e.updated).map(|d| d.timestamp()),
            author: e.authors.first().and_then(|a| a.name.clone()),
            // Media RSS and RSS enclosures are media; Atom's are links with rel="enclosure",
            // JSON Feed's attachments links with a media type and no rel.
            enclosures: Some(
                e.media
                    .iter()
                    .flat_map(|m| &m.content)
                    .filter_map(|c| c.url.as_ref().map(|u| u.to_string()))
                    .chain(
                        e.links
                            .iter()
                            .filter(|l| match l.rel.as_deref() {
                                Some(rel) => rel == "enclosure",
                                None => l.media_type.is_some(),
                            })
                            .map(|l| l.href.clone()),
                    )
                    .collect(),
            ),
        })
        .collect()
}

/// Every reader's reading of `file` (a `format` output), by reader name.
fn readings(format: &str, file: &Path) -> BTreeMap<String, Vec<Read>> {
    let mut all: BTreeMap<String, Vec<Read>> = BTreeMap::new();
    let file_arg = file.to_str().unwrap();
    let node_modules = consumers_dir().join("node_modules");
    if let (Some(node), Some(_)) = (
        require_tool("node"),
        require_or_skip("Node readers (npm ci in tests/consumers)", node_modules),
    ) {
        for (name, entries) in run_reader(&node, &["read.mjs", format, file_arg], &consumers_dir()) {
            all.insert(name, entries.iter().map(from_json).collect());
        }
    }
    if ["feedparser", "atoma", "feedparser_rs"]
        .iter()
        .all(|m| require_python_module(m))
    {
        let python = require_tool("python3").unwrap();
        for (name, entries) in run_reader(&python, &["read.py", format, file_arg], &consumers_dir()) {
            all.insert(name, entries.iter().map(from_json).collect());
        }
    }
    if format != "json" {
        let rome = Path::new("/usr/share/java/rome.jar");
        if let (Some(java), Some(_)) = (require_tool("java"), require_or_skip("ROME", rome.to_path_buf())) {
            let classpath = ["rome", "rome-utils", "jdom2", "slf4j-api", "slf4j-nop"]
                .map(|j| format!("/usr/share/java/{j}.jar"))
                .join(":");
            for (name, entries) in run_reader(
                &java,
                &["-cp", &classpath, "Read.java", file_arg],
                &consumers_dir(),
            ) {
                all.insert(name, entries.iter().map(from_json).collect());
            }
        }
        if let Some(read) = sfeed(file) {
            all.insert("sfeed".into(), read);
        }
    }
    all.insert("feed-rs".into(), feed_rs(file));
    all
}

#[tokio::test(flavor = "multi_thread")]
async fn every_reader_reads_every_format_the_same() {
    let (ws, server) = stress_planet().await;
    let want = expected(&ws);
    // The planet is what it should be: the shared story once, the undated entry dated.
    let titles: Vec<&str> = want.iter().filter_map(|r| r.title.as_deref()).collect();
    assert_eq!(want.len(), 5, "{titles:?}");
    assert!(titles.contains(&"北京：地铁新线开通 <速报>") && !titles.contains(&"Subway line opens"));
    assert!(want.iter().all(|r| r.date.is_some() && r.author.is_some()));
    let subway = want
        .iter()
        .find(|r| r.title.as_deref() == Some("北京：地铁新线开通 <速报>"))
        .unwrap();
    assert_eq!(subway.author.as_deref(), Some("李伟"));
    assert_eq!(
        subway.enclosures.as_deref(),
        Some(&["https://cdn.zh.example/subway.mp3".to_string()][..])
    );

    let mut table: Vec<(String, String, String)> = Vec::new();
    for (format, file) in [("atom", "all.atom"), ("rss", "all.rss"), ("json", "all.json")] {
        let readings = readings(format, &ws.path(&format!("public/{file}")));
        enough_readers(format, readings.keys());
        for (reader, read) in &readings {
            let mut differences = Vec::new();
            if read.len() != want.len() {
                differences.push(format!("{} entries, not {}", read.len(), want.len()));
            }
            for (got, want) in read.iter().zip(&want) {
                for ((field, got), (_, want)) in got.fields().into_iter().zip(want.fields()) {
                    if exposed(reader, format, field) && got != want {
                        differences.push(format!("{field}: {got:?} for {want:?}"));
                    }
                }
            }
            table.push((
                reader.clone(),
                format.to_string(),
                if differences.is_empty() {
                    "reads all".into()
                } else {
                    differences.join("; ")
                },
            ));
        }
    }

    // OPML: each subscription's title, feed URL and folder (its first tag, one level).
    let opml = ws.path("public/feeds.opml");
    let mut outlines: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    if let (Some(node), Some(_)) = (
        require_tool("node"),
        require_or_skip(
            "Node readers (npm ci in tests/consumers)",
            consumers_dir().join("node_modules"),
        ),
    ) {
        outlines.extend(run_reader(
            &node,
            &["read.mjs", "opml", opml.to_str().unwrap()],
            &consumers_dir(),
        ));
    }
    if require_python_module("listparser") {
        let python = require_tool("python3").unwrap();
        outlines.extend(run_reader(
            &python,
            &["read.py", "opml", opml.to_str().unwrap()],
            &consumers_dir(),
        ));
    }
    if let Some(import) = require_tool("sfeed_opml_import") {
        let out = std::process::Command::new(import)
            .stdin(std::fs::File::open(&opml).unwrap())
            .output()
            .unwrap();
        let rc = String::from_utf8(out.stdout).unwrap();
        let feeds = rc
            .lines()
            .filter_map(|l| l.trim().strip_prefix("feed '"))
            .map(|rest| {
                // Shell quoting: 'name' 'url', a quote inside written '\''.
                let words: Vec<String> = rest
                    .replace("'\\''", "\u{1}")
                    .split("' '")
                    .map(|w| w.trim_end_matches('\'').replace('\u{1}', "'"))
                    .collect();
                serde_json::json!({ "title": words[0], "xmlUrl": words[1], "folder": null })
            })
            .collect();
        outlines.insert("sfeed_opml_import".into(), feeds);
    }
    if let Some(newsboat) = require_tool("newsboat") {
        let home = ws.path("newsboat");
        std::fs::create_dir_all(&home).unwrap();
        let urls = home.join("urls");
        let out = std::process::Command::new(newsboat)
            .env("HOME", &home)
            .arg("-u")
            .arg(&urls)
            .arg("-i")
            .arg(&opml)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let feeds = std::fs::read_to_string(&urls)
            .unwrap()
            .lines()
            .map(|l| {
                let (url, tags) = l.split_once(' ').unwrap_or((l, ""));
                let folder = tags.trim().trim_matches('"');
                serde_json::json!({ "title": null, "xmlUrl": url, "folder": folder })
            })
            .collect();
        outlines.insert("newsboat".into(), feeds);
    }
    let want_outlines = [
        (server.url("/zh.xml"), "北京新闻", "新闻"),
        (server.url("/ar.xml"), "أخبار «عربية»", "Go/Python, etc."),
        (server.url("/dup.xml"), "Wire & Co", ""),
    ];
    enough_readers("opml", outlines.keys());
    for (reader, read) in &outlines {
        let mut differences = Vec::new();
        for (url, title, folder) in &want_outlines {
            let Some(got) = read.iter().find(|o| o["xmlUrl"].as_str() == Some(url.as_str())) else {
                differences.push(format!("{url} missing"));
                continue;
            };
            if let Some(t) = got["title"].as_str()
                && t != *title
            {
                differences.push(format!("title {t:?} for {title:?}"));
            }
            if let Some(f) = got["folder"].as_str()
                && f != *folder
            {
                differences.push(format!("folder {f:?} for {folder:?}"));
            }
        }
        table.push((
            reader.clone(),
            "opml".into(),
            if differences.is_empty() {
                "reads all".into()
            } else {
                differences.join("; ")
            },
        ));
    }

    let report: Vec<String> = table
        .iter()
        .map(|(r, f, v)| format!("{r:<20} {f:<5} {v}"))
        .collect();
    eprintln!("{}", report.join("\n"));
    let wrong: Vec<&String> = report.iter().filter(|l| !l.ends_with("reads all")).collect();
    assert!(
        wrong.is_empty(),
        "readers that read us otherwise:\n{}",
        report.join("\n")
    );
}

/// At least five readers read `format`: with every one installed (CI), a test of the claim;
/// elsewhere, those missing have said they skipped, and so does this count.
fn enough_readers<'a>(format: &str, readers: impl ExactSizeIterator<Item = &'a String> + std::fmt::Debug) {
    let n = readers.len();
    if std::env::var("TRIBUTARY_REQUIRE_ALL").as_deref() == Ok("1") {
        assert!(n >= 5, "{format}: only {n} readers: {readers:?}");
    } else if n < 5 {
        eprintln!("SKIPPED: {format} read by {n} readers here ({readers:?}), not the five CI runs");
    }
}
