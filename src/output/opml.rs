//! OPML 2.0 (http://opml.org/spec2.opml) of an output's subscriptions, with tags as categories.
//! No dateCreated / dateModified: the file changes only when the subscriptions do.

use quick_xml::events::{BytesDecl, BytesStart, Event};

use super::FeedView;
use super::atom::XmlWriter;
use crate::output::xml_safe;

/// An OPML 2.0 document titled `title` listing `feeds`.
pub fn document(title: &str, feeds: &[FeedView]) -> Vec<u8> {
    let mut w = XmlWriter::new(1024 + feeds.len() * 256);
    w.event(Event::Decl(BytesDecl::new("1.0", Some("utf-8"), None)));
    w.start(BytesStart::new("opml").with_attributes([("version", "2.0")]));
    w.start(BytesStart::new("head"));
    w.text_element("title", title);
    w.end("head");
    w.start(BytesStart::new("body"));
    for feed in feeds {
        let mut tag = BytesStart::new("outline");
        tag.push_attribute(("type", "rss"));
        tag.push_attribute(("text", xml_safe(&feed.title).as_ref()));
        tag.push_attribute(("title", xml_safe(&feed.title).as_ref()));
        tag.push_attribute(("xmlUrl", xml_safe(&feed.url).as_ref()));
        if let Some(site) = &feed.site_url {
            tag.push_attribute(("htmlUrl", xml_safe(site).as_ref()));
        }
        if !feed.tags.is_empty() {
            // OPML 2.0 categories: comma-separated, each a slash-delimited path.
            let categories: Vec<String> = feed.tags.iter().map(|t| format!("/{t}")).collect();
            tag.push_attribute(("category", xml_safe(&categories.join(",")).as_ref()));
        }
        w.empty(tag);
    }
    w.end("body");
    w.end("opml");
    w.finish()
}
