//! OPML 2.0 (<http://opml.org/spec2.opml>) of an output's subscriptions. Each feed sits in the
//! folder named by its first tag, exactly as written (a tag `Go/Python, etc.` is one folder:
//! FreshRSS, Miniflux and NetNewsWire have one level of folders, and a slash in a name is no
//! nesting); its other tags are in its `category` attribute, so a feed with several keeps them
//! all. URLs are written with Unicode host names,
//! as people wrote them. No dateCreated / dateModified: the file changes only when the
//! subscriptions do.

use std::borrow::Cow;

use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use quick_xml::events::{BytesDecl, BytesStart, Event};

use super::FeedView;
use super::atom::XmlWriter;
use crate::output::xml_safe;

/// What `category` escapes in a tag that needs it: its list separator (a tag may contain a
/// comma) and the escape character itself. Any other tag is written as it is, as readers show it.
const CATEGORY: &AsciiSet = &CONTROLS.add(b',').add(b'%');

/// The subscriptions in folders: those without a tag first, then one folder per first tag, in
/// the order first met.
#[derive(Default)]
struct Folders<'a> {
    loose: Vec<&'a FeedView>,
    folders: Vec<(&'a str, Vec<&'a FeedView>)>,
}

impl<'a> Folders<'a> {
    fn place(&mut self, feed: &'a FeedView) {
        let Some(name) = feed.tags.first() else {
            self.loose.push(feed);
            return;
        };
        match self.folders.iter_mut().find(|(n, _)| n == name) {
            Some((_, feeds)) => feeds.push(feed),
            None => self.folders.push((name, vec![feed])),
        }
    }

    fn write(&self, w: &mut XmlWriter) {
        for feed in &self.loose {
            w.empty(outline(feed));
        }
        for (name, feeds) in &self.folders {
            let name = xml_safe(name);
            w.start(
                BytesStart::new("outline")
                    .with_attributes([("text", name.as_ref()), ("title", name.as_ref())]),
            );
            for feed in feeds {
                w.empty(outline(feed));
            }
            w.end("outline");
        }
    }
}

fn outline(feed: &FeedView) -> BytesStart<'static> {
    let url = unicode_host(&feed.url);
    // A feed with no title of any kind is known by its URL (`text` is required).
    let title: &str = if feed.title == feed.url { &url } else { &feed.title };
    let mut tag = BytesStart::new("outline");
    // A page read through `scrape` is no feed a reader could subscribe to: OPML's "link"
    // outline names a web page.
    let (kind, url_attribute) = if feed.is_feed {
        ("rss", "xmlUrl")
    } else {
        ("link", "url")
    };
    tag.push_attribute(("type", kind));
    tag.push_attribute(("text", xml_safe(title).as_ref()));
    tag.push_attribute(("title", xml_safe(title).as_ref()));
    tag.push_attribute((url_attribute, xml_safe(&url).as_ref()));
    if let Some(site) = &feed.site_url {
        tag.push_attribute(("htmlUrl", xml_safe(&unicode_host(site)).as_ref()));
    }
    // The first tag is the folder the outline sits in.
    if feed.tags.len() > 1 {
        // OPML 2.0 categories: comma-separated, each a slash-delimited path.
        let categories: Vec<String> = feed.tags[1..]
            .iter()
            .map(|t| format!("/{}", category(t)))
            .collect();
        tag.push_attribute(("category", xml_safe(&categories.join(",")).as_ref()));
    }
    tag
}

/// A tag as a `category` carries it: as written, unless it holds what would read as a list
/// separator or an escape.
fn category(tag: &str) -> Cow<'_, str> {
    let escape_like = tag.match_indices('%').any(|(at, _)| {
        tag.as_bytes()
            .get(at + 1..at + 3)
            .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
    });
    if tag.contains(',') || escape_like {
        Cow::Owned(utf8_percent_encode(tag, CATEGORY).to_string())
    } else {
        Cow::Borrowed(tag)
    }
}

/// A tag as `category` carries it back (see [`category`]): what reading OPML does.
#[cfg(test)]
use crate::parse::opml::category_tag;

/// `url` with an internationalized host name written in Unicode (`xn--bcher-kva.example` →
/// `bücher.example`); any other URL as it is.
fn unicode_host(url: &str) -> Cow<'_, str> {
    let Some(host) = url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
    else {
        return Cow::Borrowed(url);
    };
    if !host.split('.').any(|label| label.starts_with("xn--")) {
        return Cow::Borrowed(url);
    }
    let (unicode, result) = idna::domain_to_unicode(&host);
    if result.is_err() {
        return Cow::Borrowed(url);
    }
    // The serialized URL names its host once, right after the scheme (credentials are never
    // in a shown URL).
    Cow::Owned(url.replacen(&host, &unicode, 1))
}

/// An OPML 2.0 document titled `title` listing `feeds`.
pub(crate) fn document(title: &str, feeds: &[FeedView]) -> Vec<u8> {
    let mut root = Folders::default();
    for feed in feeds {
        root.place(feed);
    }
    let mut w = XmlWriter::new(1024 + feeds.len() * 256);
    w.event(Event::Decl(BytesDecl::new("1.0", Some("utf-8"), None)));
    w.start(BytesStart::new("opml").with_attributes([("version", "2.0")]));
    w.start(BytesStart::new("head"));
    w.text_element("title", title);
    w.end("head");
    w.start(BytesStart::new("body"));
    root.write(&mut w);
    w.end("body");
    w.end("opml");
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idn_hosts_are_written_in_unicode() {
        assert_eq!(
            unicode_host("https://xn--bcher-kva.example/feed?q=1"),
            "https://bücher.example/feed?q=1"
        );
        assert_eq!(
            unicode_host("https://example.org/xn--a"),
            "https://example.org/xn--a"
        );
    }

    #[test]
    fn tags_survive_categories_and_only_commas_and_escapes_are_escaped() {
        for tag in ["a, b/100%", "C%2B%2B", "Go/Python", "100% Rust", "日本語"] {
            let written = category(tag);
            assert!(!written.contains(','), "{written}");
            assert_eq!(category_tag(&format!("/{written}")), tag);
        }
        assert_eq!(category("Go/Python"), "Go/Python");
        assert_eq!(category("100% Rust"), "100% Rust");
        assert_eq!(category("日本語"), "日本語");
    }
}
