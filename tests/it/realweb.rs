//! Classes of broken real-world feeds, with fixtures the project wrote (`tests/fixtures/realweb`):
//! each is read the way a loose parser (feedparser) reads it, and never lost silently.

use std::path::PathBuf;

use tributary::key_entries;
use tributary::{ParsedFeed, Repair, parse_document};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/realweb")
        .join(name)
}

/// The fixture parsed as if fetched from `base` (a file path when `None`).
fn parse(name: &str, base: Option<&str>) -> ParsedFeed {
    let path = fixture(name);
    let text = std::fs::read_to_string(&path).unwrap();
    let base = match base {
        Some(b) => url::Url::parse(b).unwrap(),
        None => url::Url::from_file_path(&path).unwrap(),
    };
    parse_document(&text, &base).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn titles(feed: &ParsedFeed) -> Vec<&str> {
    feed.entries.iter().map(|e| e.entry.title.as_str()).collect()
}

fn body(feed: &ParsedFeed, i: usize) -> String {
    let e = &feed.entries[i];
    e.content
        .as_ref()
        .or(e.summary.as_ref())
        .map(|b| b.text.clone())
        .unwrap_or_default()
}

#[test]
fn bare_ampersands_and_html_entities_cost_nothing() {
    let feed = parse("bare-ampersands.rss", Some("https://kitchen.example/feed"));
    assert_eq!(
        titles(&feed),
        ["Fish & Chips", "Café crème brûlée", "AT&T © 2026 & R&D"]
    );
    assert_eq!(feed.meta.title.as_deref(), Some("Kitchen & Garden"));
    let first = &feed.entries[0].entry;
    assert_eq!(
        first.link.as_deref(),
        Some("https://kitchen.example/fish?utm_source=rss&utm_medium=feed&id=1")
    );
    assert_eq!(first.guid.as_deref(), Some("kitchen-1&utm_medium=feed"));
    assert!(body(&feed, 1).contains("— … torch it"), "{}", body(&feed, 1));
    assert!(
        feed.meta.repairs.contains(&Repair::Entities),
        "{:?}",
        feed.meta.repairs
    );
}

#[test]
fn a_cut_off_document_keeps_every_item_before_the_cut() {
    let feed = parse("truncated-in-cdata.rss", Some("https://cut.example/feed"));
    assert_eq!(titles(&feed)[..2], ["First whole item", "Second whole item"]);
    assert!(body(&feed, 1).contains("Two"));
    assert!(
        feed.meta.repairs.contains(&Repair::Truncated),
        "{:?}",
        feed.meta.repairs
    );
}

#[test]
fn a_mismatched_end_tag_costs_no_entry() {
    let feed = parse(
        "mismatched-end-tag.rss",
        Some("https://social.example/@someone.rss"),
    );
    assert_eq!(feed.entries.len(), 3);
    assert!(body(&feed, 2).contains("Third post"));
    assert!(
        feed.meta.repairs.contains(&Repair::Structure),
        "{:?}",
        feed.meta.repairs
    );
}

#[test]
fn items_inside_an_element_never_closed_are_still_items() {
    let feed = parse("items-inside-an-unclosed-element.rss", None);
    assert_eq!(titles(&feed), ["Episode one", "Episode two"]);
    assert_eq!(feed.entries[1].entry.enclosures.len(), 1);
}

#[test]
fn rss_in_the_userland_namespace_is_read() {
    let feed = parse("userland-namespace.rss", Some("http://scripting.example/rss.xml"));
    assert_eq!(feed.meta.title.as_deref(), Some("Scripting News"));
    assert_eq!(feed.entries.len(), 2);
    assert_eq!(feed.entries[0].entry.title, "Namespaced RSS");
}

#[test]
fn a_document_with_items_but_no_entries_is_an_error() {
    let text = "<rss version=\"2.0\"><channel><title>t</title><wrapper><item><title>a</title></item>\
                <item><title>b</title></item></wrapper></channel></rss>";
    let err = parse_document(text, &url::Url::parse("https://x.example/f").unwrap()).unwrap_err();
    assert!(err.to_string().contains("2 <item>"), "{err}");
}

#[test]
fn links_come_from_links_and_permalinks_only() {
    let feed = parse("links-from-the-wrong-place.rss", None);
    let links: Vec<Option<&str>> = feed.entries.iter().map(|e| e.entry.link.as_deref()).collect();
    assert_eq!(
        links,
        [
            None,
            None,
            Some("https://blog.example/blog/post-3"),
            Some("https://blog.example/posts/4.html"),
        ]
    );
    // The same document fetched from the web resolves against xml:base first.
    let fetched = parse(
        "links-from-the-wrong-place.rss",
        Some("https://mirror.example/feeds/links.xml"),
    );
    assert_eq!(
        fetched.entries[3].entry.link.as_deref(),
        Some("https://blog.example/posts/4.html")
    );
}

#[test]
fn bodies_and_titles_are_found_where_feeds_put_them() {
    let feed = parse("bodies-in-other-places.rss", Some("https://bodies.example/feed"));
    let first = body(&feed, 0);
    assert!(
        first.contains("<em>emphasis</em>") && first.contains("1.png") && first.contains("the CDATA part"),
        "{first}"
    );
    assert!(body(&feed, 1).contains("as iTunes has them"));
    assert!(body(&feed, 2).contains("A short line"));
    assert_eq!(feed.entries[3].entry.title, "Titled by Media RSS");
    assert!(body(&feed, 3).contains("Described by Media RSS"));

    let yt = parse(
        "youtube.atom",
        Some("https://www.youtube.example/feeds/videos.xml?channel_id=UC1"),
    );
    assert!(
        body(&yt, 0).contains("What the first video is about"),
        "{}",
        body(&yt, 0)
    );
}

#[test]
fn atom_0_3_base64_is_decoded() {
    let feed = parse("atom03-base64.atom", Some("https://old.example/atom.xml"));
    assert_eq!(feed.entries[0].entry.title, "Base64 title");
    assert!(
        body(&feed, 0).contains("Hello <b>world</b>"),
        "{}",
        body(&feed, 0)
    );
}

#[test]
fn a_link_or_guid_repeated_on_different_stories_is_not_their_identity() {
    let feed = parse("one-link-for-every-item.rss", Some("https://cms.example/rss"));
    let keyed = key_entries(feed.entries);
    assert_eq!(keyed.len(), 15, "15 stories, not 1");
    let feed = parse("one-guid-for-every-item.rss", Some("https://town.example/rss"));
    let keyed = key_entries(feed.entries);
    assert_eq!(keyed.len(), 4, "4 notices, not 1");
    assert!(keyed.iter().all(|k| k.key.as_str().starts_with("hash:")));
    // The same story twice in one document is still one entry.
    let text = "<rss version=\"2.0\"><channel><title>t</title>\
                <item><title>Same</title><link>https://x.example/1</link></item>\
                <item><title>Same</title><link>https://x.example/1</link></item></channel></rss>";
    let feed = parse_document(text, &url::Url::parse("https://x.example/f").unwrap()).unwrap();
    assert_eq!(key_entries(feed.entries).len(), 1);
}
