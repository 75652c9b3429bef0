//! Golden files: every renderer on one fixed selection, compared byte for byte with
//! `tests/golden/`. A change to an output format shows up here as a diff to review; after
//! checking it, `TRIBUTARY_UPDATE_GOLDEN=1 cargo test --test it golden` writes the new files.

use std::path::{Path, PathBuf};

use chrono::{DateTime, TimeZone, Utc};
use tributary::Config;
use tributary::{Context, FeedView, OutputEntry, Selection, render, write_if_changed};
use tributary::{
    Enclosure, Entry, EntryKey, FeedState, KeyKind, Language, LanguageSource, Person, StoredEntry,
};

const CONFIG: &str = r#"
[store]
path = "data/t.db"

[serve]
listen = "127.0.0.1:8080"
base_url = "https://planet.example/feeds"

[[feed]]
url = "https://pod.example/feed.xml"
title = "Pod & Cast"
tags = ["audio"]

[[feed]]
url = "https://blog.example/atom.xml"

[[output]]
path = "public/all.atom"
title = "Planet <Example>"
link = "https://planet.example/"

[[output]]
path = "public/all.rss"
format = "rss"
title = "Planet <Example>"
link = "https://planet.example/"
description = "Everything, merged"

[[output]]
path = "public/all.json"
format = "json"
title = "Planet <Example>"
link = "https://planet.example/"

[[output]]
path = "public/index.html"
format = "html"
title = "Planet <Example>"
show_readers = true

[[output]]
path = "public/feeds.opml"
format = "opml"
title = "Planet subscriptions"
"#;

fn at(day: u32, hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, day, hour, 0, 0).unwrap()
}

fn stored(id: i64, feed_id: i64, entry: Entry, first_seen: DateTime<Utc>) -> StoredEntry {
    let published = entry.published.unwrap_or(first_seen);
    StoredEntry {
        id,
        feed_id,
        key: EntryKey::new(KeyKind::Guid, entry.guid.as_deref().unwrap_or_default()),
        canonical_link: entry.link.clone(),
        updated: entry.updated.unwrap_or(published),
        published,
        first_seen,
        hidden: false,
        catalogue_rank: None,
        pushed: false,
        entry,
    }
}

/// Two feeds (a podcast and a blog that links the same story), three entries over two days,
/// with an enclosure, an author, categories, markup and characters that need escaping.
fn selection(config: &Config) -> Selection {
    let state = |id: i64, title: &str, site: &str, feed_id: Option<&str>| FeedState {
        id,
        title: Some(title.to_string()),
        site_url: Some(site.to_string()),
        feed_id: feed_id.map(str::to_string),
        last_success: Some(at(5, 12)),
        ..FeedState::default()
    };
    let pod = FeedView::new(
        &config.feeds[0],
        Some(&state(1, "Pod feed", "https://pod.example/", None)),
    );
    let mut blog = FeedView::new(
        &config.feeds[1],
        Some(&state(
            2,
            "A & B's blog",
            "https://blog.example/",
            Some("tag:blog.example,2026:feed"),
        )),
    );
    // Its icon was found: the page shows it beside the name, Atom and JSON Feed name it.
    blog.icon = Some(tributary::IconImage {
        hash: "0123456789abcdef01234567".into(),
        media_type: "image/png".into(),
    });
    let episode = Entry {
        guid: Some("ep1".into()),
        link: Some("https://pod.example/1".into()),
        title: "Episode <one> & more".into(),
        author: Some(Person {
            name: "Host".into(),
            email: Some("host@pod.example".into()),
            uri: None,
        }),
        summary: Some("<p>Show notes with <a href=\"https://pod.example/notes\">links</a>.</p>".into()),
        content: None,
        published: Some(at(4, 10)),
        updated: Some(at(4, 10)),
        categories: vec!["audio".into(), "talk".into()],
        enclosures: vec![Enclosure {
            url: "https://cdn.pod.example/ep1.mp3".into(),
            mime_type: Some("audio/mpeg".into()),
            length: Some(12345),
        }],
        full_text: Default::default(),
        language: Some(Language {
            tag: "en".into(),
            source: LanguageSource::Feed,
        }),
    };
    let post = Entry {
        guid: Some("tag:blog.example,2026:1".into()),
        link: Some("https://blog.example/1".into()),
        title: "Café notes: \"quotes\" and ünïcödé".into(),
        author: Some(Person {
            name: "B. Writer".into(),
            email: None,
            uri: Some("https://blog.example/about".into()),
        }),
        summary: Some("<p>Short.</p>".into()),
        content: Some("<p>Long <em>form</em> text.</p><pre>a &lt; b</pre>".into()),
        published: Some(at(3, 9)),
        updated: Some(at(3, 18)),
        categories: vec![],
        enclosures: vec![],
        full_text: Default::default(),
        language: Some(Language {
            tag: "fr".into(),
            source: LanguageSource::Detected,
        }),
    };
    let undated = Entry {
        guid: Some("tag:blog.example,2026:2".into()),
        link: Some("https://blog.example/2".into()),
        title: "Plain".into(),
        summary: Some("<p>Plain text &amp; nothing else.</p>".into()),
        ..Entry::default()
    };
    Selection {
        entries: vec![
            OutputEntry {
                stored: stored(1, 1, episode, at(4, 11)),
                feed: pod.clone(),
                also_in: vec![blog.clone()],
            },
            OutputEntry {
                stored: stored(2, 2, post, at(3, 10)),
                feed: blog.clone(),
                also_in: vec![],
            },
            OutputEntry {
                stored: stored(3, 2, undated, at(3, 8)),
                feed: blog.clone(),
                also_in: vec![],
            },
        ],
        feeds: vec![pod, blog],
        // What the server counted: the page shows each subscribe link's readers.
        readers: [("all.atom".to_string(), 449), ("all.rss".to_string(), 1)].into(),
    }
}

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

#[test]
fn every_renderer_matches_its_golden_file() {
    let config = Config::parse(Path::new("/srv/planet/tributary.toml"), CONFIG).unwrap();
    let selection = selection(&config);
    let context = Context::new(&config);
    let update = std::env::var_os("TRIBUTARY_UPDATE_GOLDEN").is_some();
    let mut mismatched = Vec::new();
    for spec in &config.outputs {
        let bytes = render(spec, &selection, &context).unwrap();
        let golden = golden_dir().join(spec.file_name());
        if update {
            std::fs::create_dir_all(golden_dir()).unwrap();
            write_if_changed(&golden, &bytes).unwrap();
            continue;
        }
        let expected = std::fs::read(&golden)
            .unwrap_or_else(|e| panic!("{}: {e} (TRIBUTARY_UPDATE_GOLDEN=1 writes it)", golden.display()));
        if bytes != expected {
            let actual = std::env::temp_dir().join(format!("tributary-golden-{}", spec.file_name()));
            let _ = write_if_changed(&actual, &bytes);
            mismatched.push(spec.file_name());
        }
    }
    assert!(
        mismatched.is_empty(),
        "outputs differ from tests/golden/ (new bytes written to {}): {mismatched:?}",
        std::env::temp_dir().display()
    );
    crate::support::validate_atom(&golden_dir().join("all.atom"));
    // Rendering is a pure function of the selection: the same bytes twice.
    for spec in &config.outputs {
        assert_eq!(
            render(spec, &selection, &context).unwrap(),
            render(spec, &selection, &context).unwrap()
        );
    }
}
