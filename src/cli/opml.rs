//! `tributary import FILE.opml` and `tributary export`: subscriptions in and out as OPML,
//! with OPML categories (and folders) as tags. A round trip loses nothing.

use std::path::Path;

use super::edit::{NewFeed, append_feeds};
use super::{Status, Verbosity, open_store};
use crate::output::FeedView;

pub(super) fn import(config_path: &Path, file: &Path, verbosity: Verbosity) -> Status {
    let text = match std::fs::read(file) {
        Ok(bytes) => crate::decode::decode(bytes, None).text,
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", file.display());
            return Status::Fatal;
        }
    };
    let feeds = match outlines(&text) {
        Ok(feeds) => feeds,
        Err(e) => {
            eprintln!("error: {}: {e}", file.display());
            return Status::Fatal;
        }
    };
    match append_feeds(config_path, &feeds) {
        Ok(done) => {
            if verbosity != Verbosity::Quiet {
                outln!(
                    "imported {} into {} ({} already there, {} of them given new titles or tags)",
                    crate::model::counted(done.added, "feed", "feeds"),
                    config_path.display(),
                    done.skipped + done.updated,
                    done.updated
                );
                if done.added + done.updated > 0 {
                    super::edit::reload_hint(config_path);
                }
            }
            Status::Ok
        }
        Err(e) => {
            eprintln!("error: {e}");
            Status::Fatal
        }
    }
}

/// The feeds of an OPML document (see [`crate::parse::opml::outlines`]); the lists it
/// includes are not followed (a `[[list]]` follows them).
fn outlines(text: &str) -> Result<Vec<NewFeed>, String> {
    let feeds: Vec<NewFeed> = crate::parse::opml::outlines(text)
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|m| !m.include)
        .map(|m| NewFeed {
            url: m.url,
            title: m.title,
            site: m.site,
            tags: m.tags,
        })
        .collect();
    if feeds.is_empty() {
        return Err("no feeds (outlines with an xmlUrl) in it".into());
    }
    Ok(feeds)
}

pub(super) async fn export(config_path: &Path) -> Status {
    // The effective subscriptions: the config's feeds and its lists'.
    let config = match super::load_with_lists(config_path).await {
        Ok(c) => c,
        Err(status) => return status,
    };
    // The store adds what only polling knows (a feed's own title, its site); without it the
    // config alone still makes a complete OPML.
    let urls: std::sync::Arc<[String]> = config.feeds.iter().map(|f| f.key.clone()).collect();
    let states = match open_store(&config).await {
        Ok(store) => {
            let states = store.feeds_by_url(urls).await.unwrap_or_default();
            store.close().await;
            states
        }
        Err(_) => Default::default(),
    };
    let feeds: Vec<FeedView> = config
        .feeds
        .iter()
        .map(|f| FeedView::new(f, states.get(&f.key)))
        .collect();
    let title = format!("Tributary subscriptions ({})", config_path.display());
    out!(
        "{}",
        String::from_utf8_lossy(&crate::output::opml::document(&title, &feeds))
    );
    Status::Ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outlines_with_folders_and_categories() {
        let opml = r#"<?xml version="1.0"?><opml version="2.0"><head><title>s</title></head><body>
            <outline text="Tech"><outline type="rss" text="A" xmlUrl="https://a.example/feed" category="/rust,/web"/></outline>
            <outline type="rss" title="B &amp; co" text="ignored" xmlUrl="https://b.example/feed"/>
            <outline text="Empty folder"></outline></body></opml>"#;
        let feeds = outlines(opml).unwrap();
        assert_eq!(
            feeds[0],
            NewFeed {
                url: "https://a.example/feed".into(),
                title: Some("A".into()),
                site: None,
                tags: vec!["Tech".into(), "rust".into(), "web".into()]
            }
        );
        assert_eq!(feeds[1].title.as_deref(), Some("B & co"));
        assert!(feeds[1].tags.is_empty());
    }
}

/// Export then import loses nothing: a property test over generated subscriptions whose
/// titles and tags carry commas, slashes, quotes, markup and emoji, on IDN hosts.
#[cfg(test)]
mod round_trip {
    use std::path::Path;

    use proptest::prelude::*;

    use super::*;
    use crate::config::Config;

    fn text() -> impl Strategy<Value = String> {
        // No whitespace at the ends: OPML attributes are read trimmed.
        "[a-zA-Z0-9éü日本🎉&<>\"',/ ]{0,12}[a-zA-Z0-9éü日本🎉&<>\"',/]"
            .prop_filter("not blank", |s| !s.trim().is_empty())
            .prop_map(|s| s.trim_start().to_string())
    }

    fn tag() -> impl Strategy<Value = String> {
        let part = "[a-z0-9éü🎉\"', ]{0,6}[a-z0-9éü🎉\"',]".prop_map(|s| s.trim_start().to_string());
        proptest::collection::vec(part.prop_filter("not blank", |p| !p.trim().is_empty()), 1..3)
            .prop_map(|parts| parts.join("/"))
    }

    fn host() -> impl Strategy<Value = &'static str> {
        prop_oneof![
            Just("example.org"),
            Just("bücher.example"),
            Just("日本語.example"),
            Just("xn--caf-dma.example"),
            Just("127.0.0.2:8080"),
        ]
    }

    fn feed() -> impl Strategy<Value = NewFeed> {
        (
            host(),
            "[a-z0-9]{1,8}",
            proptest::option::of(text()),
            proptest::option::of(host()),
            proptest::collection::btree_set(tag(), 0..4),
        )
            .prop_map(|(host, path, title, site, tags)| NewFeed {
                url: format!("https://{host}/{path}/feed.xml"),
                title,
                site: site.map(|h| format!("https://{h}/")),
                tags: tags.into_iter().collect(),
            })
    }

    /// A feed as the config reads it: URL, title, site, tags.
    type Said = (String, Option<String>, Option<String>, Vec<String>);

    /// What a config says about its feeds.
    fn feeds_of(path: &Path) -> Vec<Said> {
        let mut feeds: Vec<_> = Config::load(path)
            .unwrap_or_else(|e| panic!("{e}"))
            .feeds
            .into_iter()
            .map(|f| (f.url.to_string(), f.title, f.site, f.tags))
            .collect();
        feeds.sort();
        feeds
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]
        #[test]
        fn import_of_an_export_gives_the_same_feeds(feeds in proptest::collection::vec(feed(), 1..8)) {
            let dir = tempfile::tempdir().unwrap();
            let (original, copy) = (dir.path().join("a.toml"), dir.path().join("b.toml"));
            for path in [&original, &copy] {
                crate::output::write_if_changed(path, b"[store]\npath = \"t.db\"\n").unwrap();
            }
            append_feeds(&original, &feeds).unwrap();
            let config = Config::load(&original).unwrap();
            let views: Vec<FeedView> = config.feeds.iter().map(|f| FeedView::new(f, None)).collect();
            let opml = String::from_utf8(crate::output::opml::document("t", &views)).unwrap();
            append_feeds(&copy, &outlines(&opml).unwrap()).unwrap();
            prop_assert_eq!(feeds_of(&original), feeds_of(&copy), "{}", opml);
        }
    }
}
