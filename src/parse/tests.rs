use super::*;

/// Parsed entries (bodies as the feed gave them: sanitizing is `content`'s).
struct Parsed {
    entries: Vec<ParsedEntry>,
}

fn parse(text: &str) -> Parsed {
    let feed = parse_document(text, &Url::parse("https://example.org/feed/").unwrap()).unwrap();
    Parsed {
        entries: feed.entries,
    }
}

#[test]
fn a_media_description_is_the_body_of_an_entry_with_no_other() {
    // YouTube's form (in a media:group) and the bare one, in Atom and in RSS.
    let f = parse(
        "<feed xmlns=\"http://www.w3.org/2005/Atom\" xmlns:media=\"http://search.yahoo.com/mrss/\">\
             <title>T</title><id>urn:t</id>\
             <entry><id>urn:1</id><title>Grouped</title><media:group><media:title>Grouped</media:title>\
             <media:content url=\"https://v.example/1\" type=\"video/mp4\"/>\
             <media:description>Told in a group.</media:description></media:group></entry>\
             <entry><id>urn:2</id><title>Bare</title><media:description>Told bare.</media:description></entry>\
             <entry><id>urn:3</id><title>Own</title><summary>Its own.</summary>\
             <media:group><media:description>Not this.</media:description></media:group></entry></feed>",
    );
    let bodies: Vec<Option<&str>> = f
        .entries
        .iter()
        .map(|e| e.content.as_ref().or(e.summary.as_ref()).map(|b| b.text.as_str()))
        .collect();
    assert_eq!(
        bodies,
        [Some("Told in a group."), Some("Told bare."), Some("Its own.")]
    );
    let rss = parse(
        "<rss version=\"2.0\" xmlns:media=\"http://search.yahoo.com/mrss/\"><channel><title>T</title>\
             <item><guid>1</guid><title>Grouped</title><description></description>\
             <media:group><media:description>From the group.</media:description></media:group></item>\
             </channel></rss>",
    );
    let body = rss.entries[0]
        .content
        .as_ref()
        .or(rss.entries[0].summary.as_ref());
    assert_eq!(body.map(|b| b.text.as_str()), Some("From the group."));
}

#[test]
fn known_items_are_left_out_and_listed() {
    let doc = "<rss version=\"2.0\"><channel><title>T</title>\
                   <item><guid>1</guid><title>One</title></item>\
                   <item><guid>2</guid><title>Two</title></item>\
                   <item><guid>3</guid><title>Three</title></item></channel></rss>";
    let base = Url::parse("https://example.org/feed/").unwrap();
    let full = parse_document(doc, &base).unwrap();
    let prints: Vec<SegmentHash> = full.entries.iter().map(|e| e.segment.unwrap()).collect();
    assert_eq!(prints.len(), 3);
    let known: Fingerprints = [prints[0], prints[2]].into_iter().collect();
    let cut = parse_changed(doc, &base, &known).unwrap();
    let titles: Vec<&str> = cut.entries.iter().map(|e| e.entry.title.as_str()).collect();
    assert_eq!(titles, ["Two"]);
    assert_eq!(cut.entries[0].segment, Some(prints[1]));
    assert_eq!(cut.skipped, known);
    // A file has no web address to fingerprint against: nothing is cut.
    let file = Url::parse("file:///feeds/t.xml").unwrap();
    assert_eq!(parse_changed(doc, &file, &known).unwrap().entries.len(), 3);
}

/// Found by `cargo fuzz run feed`: a second declaration naming an encoding, inside an entry,
/// made quick-xml panic (caught, but the feed was lost for a harmless paste error).
#[test]
fn stray_declaration_inside_an_entry_still_parses() {
    let f = parse(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\">\
             <title>T</title><entry><title>First</title><id>urn:x:1</id>\
             <updated>2023-12-01T00:00:00+0<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\
             0:00</updated></entry><entry><title>Second</title><id>urn:x:2</id></entry></feed>",
    );
    let titles: Vec<_> = f.entries.iter().map(|e| e.entry.title.as_str()).collect();
    assert_eq!(titles, ["First", "Second"]);
}

#[test]
fn rss_without_guid_or_link_has_no_invented_id() {
    let f = parse(
        "<rss version=\"2.0\"><channel><title>T</title><item><title>A &amp;amp; B</title></item></channel></rss>",
    );
    assert_eq!(f.entries[0].entry.guid, None);
    assert_eq!(f.entries[0].entry.link, None);
    assert_eq!(f.entries[0].entry.title, "A & B");
}

#[test]
fn guid_url_becomes_link_and_relative_links_resolve() {
    let f = parse(
        "<rss version=\"2.0\"><channel><item><guid>https://example.org/p/1</guid></item>\
             <item><link>/p/2</link><description>&lt;a href=\"x\"&gt;x&lt;/a&gt;</description></item></channel></rss>",
    );
    assert_eq!(
        f.entries[0].entry.link.as_deref(),
        Some("https://example.org/p/1")
    );
    assert_eq!(
        f.entries[1].entry.link.as_deref(),
        Some("https://example.org/p/2")
    );
    // The body keeps its relative link; `content` resolves it against this base.
    assert_eq!(f.entries[1].summary.as_ref().unwrap().text, "<a href=\"x\">x</a>");
    assert_eq!(
        f.entries[1].base.as_ref().map(Url::as_str),
        Some("https://example.org/feed/")
    );
}

#[test]
fn one_odd_element_does_not_fail_the_feed() {
    let f = parse(
        "<rss version=\"2.0\" xmlns:media=\"http://search.yahoo.com/mrss/\"><channel>\
             <item><title>one</title><media:description/></item>\
             <item><title>two</title><media:description/></item></channel></rss>",
    );
    assert_eq!(f.entries.len(), 2);
}

#[test]
fn enclosures_survive() {
    let f = parse(
        "<rss version=\"2.0\"><channel><item><title>ep</title>\
             <enclosure url=\"https://cdn.example.org/ep1.mp3\" length=\"1234\" type=\"audio/mpeg\"/></item></channel></rss>",
    );
    assert_eq!(
        f.entries[0].entry.enclosures,
        [Enclosure {
            url: "https://cdn.example.org/ep1.mp3".into(),
            mime_type: Some("audio/mpeg".into()),
            length: Some(1234)
        }]
    );
}

#[test]
fn rss_authors_written_email_then_name_are_the_name() {
    let f = parse(
        "<rss version=\"2.0\"><channel><title>t</title>\
             <item><guid>1</guid><title>a</title><author>li.wei@zh.example (李伟)</author></item>\
             <item><guid>2</guid><title>b</title><author>ann@e.example</author></item>\
             <item><guid>3</guid><title>c</title><author>Bob (the builder)</author></item>\
             </channel></rss>",
    );
    let authors: Vec<(String, Option<String>)> = f
        .entries
        .iter()
        .map(|e| {
            let a = e.entry.author.clone().unwrap();
            (a.name, a.email)
        })
        .collect();
    assert_eq!(
        authors,
        [
            ("李伟".into(), Some("li.wei@zh.example".into())),
            ("ann@e.example".into(), Some("ann@e.example".into())),
            ("Bob (the builder)".into(), None),
        ]
    );
}

#[test]
fn relative_links_in_a_file_resolve_against_the_channel_link() {
    let file = Url::parse("file:///srv/mirror/feed.xml").unwrap();
    let rss = "<rss version=\"2.0\"><channel><title>t</title><link>https://site.example/blog/</link>\
                   <item><guid>1</guid><title>a</title><link>posts/1.html</link>\
                   <description>&lt;a href=\"/about\"&gt;x&lt;/a&gt;</description></item></channel></rss>";
    let f = parse_document(rss, &file).unwrap();
    assert_eq!(
        f.entries[0].entry.link.as_deref(),
        Some("https://site.example/blog/posts/1.html")
    );
    assert_eq!(
        f.entries[0].base.as_ref().map(Url::as_str),
        Some("https://site.example/blog/")
    );
    let atom = "<feed xmlns=\"http://www.w3.org/2005/Atom\"><title>t</title><id>urn:x</id>\
                    <link href=\"https://site.example/\"/><updated>2026-01-01T00:00:00Z</updated>\
                    <entry><id>urn:1</id><title>a</title><link href=\"/p/1\"/><updated>2026-01-01T00:00:00Z</updated></entry></feed>";
    let f = parse_document(atom, &file).unwrap();
    assert_eq!(
        f.entries[0].entry.link.as_deref(),
        Some("https://site.example/p/1")
    );
}

#[test]
fn elements_under_an_unbound_prefix_are_read_not_lost() {
    let doc = "<rss:rss version=\"2.0\"><rss:channel><rss:title>t</rss:title>\
                   <rss:item><rss:guid>1</rss:guid><rss:title>One</rss:title></rss:item>\
                   <rss:item><rss:guid>2</rss:guid><rss:title>Two</rss:title></rss:item>\
                   </rss:channel></rss:rss>";
    let feed = parse_document(doc, &Url::parse("https://example.org/feed/").unwrap());
    let titles: Vec<String> = feed
        .unwrap()
        .entries
        .iter()
        .map(|e| e.entry.title.clone())
        .collect();
    assert_eq!(titles, ["One", "Two"]);
}

#[test]
fn rss1_items_without_links_are_kept() {
    let f = parse(
        "<rdf><item><title>a</title></item><item rdf:about=\"https://e.org/b\"><title>b</title></item></rdf>",
    );
    assert_eq!(f.entries.len(), 2);
    assert_eq!(f.entries[0].entry.link, None);
    assert_eq!(f.entries[1].entry.link.as_deref(), Some("https://e.org/b"));
}

#[test]
fn garbage_is_a_clean_error() {
    let base = Url::parse("https://example.org/").unwrap();
    assert!(parse_document("<html><body>oops</body></html>", &base).is_err());
    assert!(parse_document("", &base).is_err());
    // Cut off: read as far as it goes (as feedparser does), and said so.
    let cut = parse_document("<rss version=\"2.0\"><channel><item><title>a", &base).unwrap();
    assert_eq!(cut.entries.len(), 1);
    assert_eq!(cut.entries[0].entry.title, "a");
    assert_eq!(cut.meta.repairs, [Repair::Truncated]);
}

#[test]
fn hubs_and_topics_are_read_from_atom_rss_and_json_feed() {
    let base = Url::parse("https://pub.example/feeds/").unwrap();
    let atom = r#"<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title><id>i</id>
            <link rel="hub" href="https://hub.example/"/><link rel="self" href="atom.xml"/>
            <link rel="alternate" href="https://pub.example/"/></feed>"#;
    let meta = parse_document(atom, &base).unwrap().meta;
    assert_eq!(meta.hub.as_deref(), Some("https://hub.example/"));
    assert_eq!(meta.topic.as_deref(), Some("https://pub.example/feeds/atom.xml"));
    assert_eq!(meta.site_url.as_deref(), Some("https://pub.example/"));
    let rss = r#"<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom"><channel><title>t</title>
            <link>https://pub.example/</link><description>d</description>
            <atom:link rel="hub" href="https://hub.example/rss"/>
            <atom:link rel="self" href="https://pub.example/rss.xml" type="application/rss+xml"/>
            </channel></rss>"#;
    let meta = parse_document(rss, &base).unwrap().meta;
    assert_eq!(meta.hub.as_deref(), Some("https://hub.example/rss"));
    assert_eq!(meta.topic.as_deref(), Some("https://pub.example/rss.xml"));
    let json = r#"{"version":"https://jsonfeed.org/version/1.1","title":"t",
            "feed_url":"https://pub.example/feed.json",
            "hubs":[{"type":"rssCloud","url":"https://cloud.example/"},{"type":"WebSub","url":"https://hub.example/j"}],
            "items":[]}"#;
    let meta = parse_document(json, &base).unwrap().meta;
    assert_eq!(meta.hub.as_deref(), Some("https://hub.example/j"));
    assert_eq!(meta.topic.as_deref(), Some("https://pub.example/feed.json"));
    let plain = r#"<rss version="2.0"><channel><title>t</title><link>https://pub.example/</link>
            <description>d</description></channel></rss>"#;
    let meta = parse_document(plain, &base).unwrap().meta;
    assert_eq!((meta.hub, meta.topic), (None, None));
}
