//! OPML 2.0 (<http://opml.org/spec2.opml>) of an output's subscriptions. Each feed sits in the
//! folder of its first tag, a tag path `a/b` being folder `a` holding folder `b` (the nesting
//! FreshRSS, Miniflux and NetNewsWire build folders from); all its tags are in its `category`
//! attribute, so a feed with several keeps them all. URLs are written with Unicode host names,
//! as people wrote them. No dateCreated / dateModified: the file changes only when the
//! subscriptions do.

use std::borrow::Cow;

use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use quick_xml::events::{BytesDecl, BytesStart, Event};

use super::FeedView;
use super::atom::XmlWriter;
use crate::output::xml_safe;

/// What `category` escapes in a tag: its list separator (a tag may contain a comma) and the
/// escape character itself. Readers of OPML see the tag otherwise as written.
const CATEGORY: &AsciiSet = &CONTROLS.add(b',').add(b'%');

/// A folder: feeds directly in it, then its sub-folders, in the order first met.
#[derive(Default)]
struct Folder<'a> {
    feeds: Vec<&'a FeedView>,
    folders: Vec<(&'a str, Folder<'a>)>,
}

impl<'a> Folder<'a> {
    fn place(&mut self, path: &[&'a str], feed: &'a FeedView) {
        let Some((first, rest)) = path.split_first() else {
            self.feeds.push(feed);
            return;
        };
        let at = match self.folders.iter().position(|(name, _)| name == first) {
            Some(at) => at,
            None => {
                self.folders.push((first, Folder::default()));
                self.folders.len() - 1
            }
        };
        self.folders[at].1.place(rest, feed);
    }

    fn write(&self, w: &mut XmlWriter) {
        for feed in &self.feeds {
            w.empty(outline(feed));
        }
        for (name, folder) in &self.folders {
            let name = xml_safe(name);
            w.start(
                BytesStart::new("outline")
                    .with_attributes([("text", name.as_ref()), ("title", name.as_ref())]),
            );
            folder.write(w);
            w.end("outline");
        }
    }
}

/// The folder path of a tag: its non-empty `/`-separated parts.
fn tag_path(tag: &str) -> Vec<&str> {
    tag.split('/').map(str::trim).filter(|p| !p.is_empty()).collect()
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
    if !feed.tags.is_empty() {
        // OPML 2.0 categories: comma-separated, each a slash-delimited path.
        let categories: Vec<String> = feed
            .tags
            .iter()
            .map(|t| format!("/{}", utf8_percent_encode(t, CATEGORY)))
            .collect();
        tag.push_attribute(("category", xml_safe(&categories.join(",")).as_ref()));
    }
    tag
}

/// A tag as `category` carries it back (see `CATEGORY`).
pub(crate) fn category_tag(category: &str) -> Cow<'_, str> {
    percent_encoding::percent_decode_str(category.trim().trim_start_matches('/')).decode_utf8_lossy()
}

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
pub fn document(title: &str, feeds: &[FeedView]) -> Vec<u8> {
    let mut root = Folder::default();
    for feed in feeds {
        let path = feed.tags.first().map(|t| tag_path(t)).unwrap_or_default();
        root.place(&path, feed);
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
    fn commas_in_tags_survive_categories() {
        let encoded = utf8_percent_encode("a, b/100%", CATEGORY).to_string();
        assert!(!encoded.contains(','));
        assert_eq!(category_tag(&format!("/{encoded}")), "a, b/100%");
    }
}
