//! `tributary import FILE.opml` and `tributary export`: subscriptions in and out as OPML,
//! with OPML categories (and folders) as tags. A round trip loses nothing.

use std::path::Path;

use quick_xml::Reader;
use quick_xml::events::Event;

use super::edit::{NewFeed, append_feeds};
use super::{Status, Verbosity, load, open_store};
use crate::output::FeedView;

pub fn import(config_path: &Path, file: &Path, verbosity: Verbosity) -> Status {
    let text = match std::fs::read(file) {
        Ok(bytes) => crate::fetch::charset::decode(bytes, None).text,
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
                    "imported {} feeds into {} ({} already there, {} of them given new titles or tags)",
                    done.added,
                    config_path.display(),
                    done.skipped + done.updated,
                    done.updated
                );
            }
            Status::Ok
        }
        Err(e) => {
            eprintln!("error: {e}");
            Status::Fatal
        }
    }
}

/// The feeds of an OPML document: outlines with an `xmlUrl`, their `category` attribute and
/// the titles of the folders (outlines without a URL) they sit in as tags.
fn outlines(text: &str) -> Result<Vec<NewFeed>, String> {
    let mut reader = Reader::from_str(text);
    let mut folders: Vec<Option<String>> = Vec::new();
    let mut feeds = Vec::new();
    loop {
        let event = reader.read_event().map_err(|e| format!("not valid OPML: {e}"))?;
        let (tag, is_empty) = match event {
            Event::Start(t) => (t, false),
            Event::Empty(t) => (t, true),
            Event::End(t) if t.name().as_ref() == "outline" => {
                folders.pop();
                continue;
            }
            Event::Eof => break,
            _ => continue,
        };
        if tag.name().as_ref() != "outline" {
            continue;
        }
        let attr = |name: &str| {
            tag.attributes()
                .flatten()
                .find(|a| a.key.as_ref().eq_ignore_ascii_case(name))
                .and_then(|a| a.normalized_value(quick_xml::XmlVersion::Implicit1_0).ok())
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let title = attr("title").or_else(|| attr("text"));
        match attr("xmlUrl") {
            Some(url) => {
                let mut tags: Vec<String> = folders.iter().flatten().cloned().collect();
                for category in attr("category").iter().flat_map(|c| c.split(',')) {
                    let category = category.trim().trim_start_matches('/');
                    if !category.is_empty() && !tags.iter().any(|t| t == category) {
                        tags.push(category.to_string());
                    }
                }
                feeds.push(NewFeed { url, title, tags });
                if !is_empty {
                    folders.push(None);
                }
            }
            None if !is_empty => folders.push(title),
            None => {}
        }
    }
    if feeds.is_empty() {
        return Err("no feeds (outlines with an xmlUrl) in it".into());
    }
    Ok(feeds)
}

pub async fn export(config_path: &Path) -> Status {
    let config = match load(config_path) {
        Ok(c) => c,
        Err(status) => return status,
    };
    // The store adds what only polling knows (a feed's own title, its site); without it the
    // config alone still makes a complete OPML.
    let urls: Vec<String> = config.feeds.iter().map(|f| f.key.clone()).collect();
    let states = match open_store(&config).await {
        Ok((store, thread)) => {
            let states = store
                .read(move |s| s.feeds_by_url(&urls))
                .await
                .unwrap_or_default();
            drop(store);
            thread.join().await;
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
                tags: vec!["Tech".into(), "rust".into(), "web".into()]
            }
        );
        assert_eq!(feeds[1].title.as_deref(), Some("B & co"));
        assert!(feeds[1].tags.is_empty());
    }
}
