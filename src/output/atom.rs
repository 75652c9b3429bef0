//! Atom 1.0 (RFC 4287), checked against the RELAX NG schema of its appendix B by the test suite.

use std::collections::HashMap;

use chrono::{DateTime, SecondsFormat, Utc};
use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};

use super::{FeedView, xml_safe};
use crate::model::{OutputSpec, StoredEntry};

const ATOM_NS: &str = "http://www.w3.org/2005/Atom";

pub(super) fn render(spec: &OutputSpec, entries: &[StoredEntry], feeds: &HashMap<i64, FeedView>) -> Vec<u8> {
    let mut w = AtomWriter {
        w: Writer::new_with_indent(Vec::with_capacity(4096 + entries.len() * 2048), b' ', 2),
    };
    w.event(Event::Decl(BytesDecl::new("1.0", Some("utf-8"), None)));
    w.start(BytesStart::new("feed").with_attributes([("xmlns", ATOM_NS)]));
    w.text_element("id", &spec.id);
    w.text_element("title", &spec.title);
    // The newest change among the entries shown: derived from the data, never from the clock,
    // so an unchanged store renders identical bytes.
    let updated = entries.iter().map(|e| e.updated).max().unwrap_or_default();
    w.text_element("updated", &rfc3339(updated));
    w.start(BytesStart::new("author"));
    w.text_element("name", &spec.title);
    w.end("author");
    w.start(BytesStart::new("generator").with_attributes([
        ("uri", env!("CARGO_PKG_REPOSITORY")),
        ("version", env!("CARGO_PKG_VERSION")),
    ]));
    w.text("Tributary");
    w.end("generator");
    for entry in entries {
        w.entry(entry, feeds.get(&entry.feed_id));
    }
    w.end("feed");
    let mut bytes = w.w.into_inner();
    bytes.push(b'\n');
    bytes
}

struct AtomWriter {
    w: Writer<Vec<u8>>,
}

impl AtomWriter {
    fn entry(&mut self, stored: &StoredEntry, feed: Option<&FeedView>) {
        let e = &stored.entry;
        self.start(BytesStart::new("entry"));
        self.text_element(
            "id",
            &entry_id(feed.map_or("", |f| f.url.as_str()), stored.key.as_str()),
        );
        let title = if e.title.is_empty() {
            "(untitled)"
        } else {
            &e.title
        };
        self.start(BytesStart::new("title").with_attributes([("type", "text")]));
        self.text(title);
        self.end("title");
        if let Some(link) = &e.link {
            self.empty(
                BytesStart::new("link")
                    .with_attributes([("rel", "alternate"), ("href", xml_safe(link).as_ref())]),
            );
        }
        for enc in &e.enclosures {
            let mut tag = BytesStart::new("link");
            tag.push_attribute(("rel", "enclosure"));
            tag.push_attribute(("href", xml_safe(&enc.url).as_ref()));
            if let Some(t) = &enc.mime_type {
                tag.push_attribute(("type", xml_safe(t).as_ref()));
            }
            if let Some(len) = enc.length {
                tag.push_attribute(("length", len.to_string().as_str()));
            }
            self.empty(tag);
        }
        self.text_element("published", &rfc3339(stored.published));
        self.text_element("updated", &rfc3339(stored.updated));
        // Every entry names a person (RFC 4287 §4.1.2): its author, or else its feed.
        self.start(BytesStart::new("author"));
        match &e.author {
            Some(a) => {
                self.text_element("name", &a.name);
                if let Some(uri) = &a.uri {
                    self.text_element("uri", uri);
                }
                // The schema's atomEmailAddress is ".+@.+"; anything else is not an address.
                if let Some(email) = a.email.as_deref().filter(|m| is_email(m)) {
                    self.text_element("email", email);
                }
            }
            None => self.text_element("name", feed.map_or("unknown", |f| f.title.as_str())),
        }
        self.end("author");
        for c in &e.categories {
            self.empty(BytesStart::new("category").with_attributes([("term", xml_safe(c).as_ref())]));
        }
        if let (Some(summary), Some(_)) = (&e.summary, &e.content) {
            self.html_element("summary", summary);
        }
        if let Some(body) = e.content.as_ref().or(e.summary.as_ref()) {
            self.html_element("content", body);
        }
        if let Some(feed) = feed {
            self.start(BytesStart::new("source"));
            self.text_element("id", &feed.id);
            self.text_element("title", &feed.title);
            if let Some(site) = &feed.site_url {
                self.empty(
                    BytesStart::new("link")
                        .with_attributes([("rel", "alternate"), ("href", xml_safe(site).as_ref())]),
                );
            }
            self.empty(
                BytesStart::new("link")
                    .with_attributes([("rel", "self"), ("href", xml_safe(&feed.url).as_ref())]),
            );
            self.end("source");
        }
        self.end("entry");
    }

    fn html_element(&mut self, name: &str, html: &str) {
        self.start(BytesStart::new(name).with_attributes([("type", "html")]));
        self.text(html);
        self.end(name);
    }

    fn text_element(&mut self, name: &str, value: &str) {
        self.start(BytesStart::new(name));
        self.text(value);
        self.end(name);
    }

    fn text(&mut self, value: &str) {
        self.event(Event::Text(BytesText::new(&xml_safe(value))));
    }

    fn start(&mut self, tag: BytesStart<'_>) {
        self.event(Event::Start(tag));
    }

    fn empty(&mut self, tag: BytesStart<'_>) {
        self.event(Event::Empty(tag));
    }

    fn end(&mut self, name: &str) {
        self.event(Event::End(BytesEnd::new(name)));
    }

    fn event(&mut self, event: Event<'_>) {
        // Writing into a Vec<u8> cannot fail.
        let _ = self.w.write_event(event);
    }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn is_email(s: &str) -> bool {
    matches!(s.split_once('@'), Some((a, b)) if !a.is_empty() && !b.is_empty())
}

/// A stable, globally unique entry id from (feed URL, entry key). The feed's own guid is not
/// used directly because it need not be an IRI, and two feeds may share it.
pub(crate) fn entry_id(feed_url: &str, key: &str) -> String {
    crate::model::stable_urn(&format!("{feed_url}\n{key}"))
}
