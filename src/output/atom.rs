//! Atom 1.0 (RFC 4287), checked against the RELAX NG schema of its appendix B by the test suite.
//!
//! Each entry carries an `atom:source` naming its feed; other feeds that carried the same
//! story are `<link rel="via">` links with the feed's title (RFC 4287 §4.2.7.2: "via" names
//! a source of the information).

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::{Context, OutputEntry, Selection, display_title, entry_id, entry_language, last_change, rfc3339};
use crate::model::OutputSpec;
use crate::output::xml_safe;

const ATOM_NS: &str = "http://www.w3.org/2005/Atom";

pub(super) fn render(spec: &OutputSpec, selection: &Selection, context: &Context) -> Vec<u8> {
    let mut w = XmlWriter::new(4096 + selection.entries.len() * 2048);
    w.event(Event::Decl(BytesDecl::new("1.0", Some("utf-8"), None)));
    let mut feed = BytesStart::new("feed").with_attributes([("xmlns", ATOM_NS)]);
    if let Some(lang) = &spec.lang {
        feed.push_attribute(("xml:lang", lang.as_str()));
    }
    w.start(feed);
    w.text_element("id", &spec.id);
    w.text_element("title", &spec.title);
    if let Some(d) = &spec.description {
        w.text_element("subtitle", d);
    }
    w.text_element("updated", &rfc3339(last_change(selection)));
    if let Some(link) = context.home_page_ref(spec) {
        w.link("alternate", &link, None);
    }
    if let Some(self_url) = &spec.self_url {
        w.link("self", self_url, None);
    }
    if let Some(hub) = &context.hub {
        w.link("hub", hub, None);
    }
    if let Some(icon) = &spec.icon {
        w.text_element("icon", icon);
    }
    if let Some(logo) = &spec.logo {
        w.text_element("logo", logo);
    }
    w.start(BytesStart::new("author"));
    w.text_element("name", &spec.title);
    w.end("author");
    w.start(BytesStart::new("generator").with_attributes([
        ("uri", env!("CARGO_PKG_REPOSITORY")),
        ("version", env!("CARGO_PKG_VERSION")),
    ]));
    w.text("Tributary");
    w.end("generator");
    // A source's `updated` is when that feed last changed, as far as this output shows it.
    let mut source_updated: HashMap<&str, DateTime<Utc>> = HashMap::new();
    for out in &selection.entries {
        let t = source_updated.entry(out.feed.url.as_str()).or_default();
        *t = (*t).max(out.stored.updated);
    }
    for entry in &selection.entries {
        let updated = source_updated
            .get(entry.feed.url.as_str())
            .copied()
            .unwrap_or(entry.stored.updated);
        entry_element(&mut w, spec, entry, updated);
    }
    w.end("feed");
    w.finish()
}

fn entry_element(w: &mut XmlWriter, spec: &OutputSpec, out: &OutputEntry, source_updated: DateTime<Utc>) {
    let (stored, feed) = (&out.stored, &out.feed);
    let e = &stored.entry;
    let mut element = BytesStart::new("entry");
    if let Some(language) = entry_language(out) {
        element.push_attribute(("xml:lang", language));
    }
    w.start(element);
    w.text_element("id", &entry_id(&feed.id_base, stored.key.as_str()));
    w.start(BytesStart::new("title").with_attributes([("type", "text")]));
    w.text(&display_title(e));
    w.end("title");
    if let Some(link) = &e.link {
        w.link("alternate", link, None);
    }
    for also in &out.also_in {
        if let Some(href) = also.site_url.as_deref().or(also.public_url()) {
            w.link("via", href, Some(&also.title));
        }
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
        w.empty(tag);
    }
    w.text_element("published", &rfc3339(stored.published));
    w.text_element("updated", &rfc3339(stored.updated));
    // Every entry names a person (RFC 4287 §4.1.2): its author, or else its feed.
    w.start(BytesStart::new("author"));
    match &e.author {
        Some(a) => {
            w.text_element("name", &a.name);
            if let Some(uri) = &a.uri {
                w.text_element("uri", uri);
            }
            // The schema's atomEmailAddress is ".+@.+"; anything else is not an address.
            if let Some(email) = a.email.as_deref().filter(|m| is_email(m)) {
                w.text_element("email", email);
            }
        }
        None => w.text_element("name", &feed.title),
    }
    w.end("author");
    for c in &e.categories {
        w.empty(BytesStart::new("category").with_attributes([("term", xml_safe(c).as_ref())]));
    }
    if let (Some(summary), Some(_)) = (&e.summary, &e.content) {
        w.html_element("summary", summary);
    }
    if let Some(body) = e.content.as_ref().or(e.summary.as_ref()) {
        w.html_element("content", body);
    }
    w.start(BytesStart::new("source"));
    w.text_element("id", &feed.id);
    w.text_element("title", &feed.title);
    if let Some(icon) = &feed.icon {
        w.text_element("icon", &super::icon_href(spec, icon));
    }
    if let Some(site) = &feed.site_url {
        w.link("alternate", site, None);
    }
    if let Some(url) = feed.public_url() {
        w.link("self", url, None);
    }
    w.text_element("updated", &rfc3339(source_updated));
    w.end("source");
    w.end("entry");
}

fn is_email(s: &str) -> bool {
    matches!(s.split_once('@'), Some((a, b)) if !a.is_empty() && !b.is_empty())
}

/// A quick-xml writer for the XML formats, which never fails (it writes into memory) and
/// strips characters XML cannot carry.
pub(super) struct XmlWriter {
    w: Writer<Vec<u8>>,
}

impl XmlWriter {
    pub(super) fn new(capacity: usize) -> XmlWriter {
        XmlWriter {
            w: Writer::new_with_indent(Vec::with_capacity(capacity), b' ', 2),
        }
    }

    pub(super) fn finish(self) -> Vec<u8> {
        let mut bytes = self.w.into_inner();
        bytes.push(b'\n');
        bytes
    }

    pub(super) fn link(&mut self, rel: &str, href: &str, title: Option<&str>) {
        let mut tag = BytesStart::new("link");
        tag.push_attribute(("rel", rel));
        tag.push_attribute(("href", xml_safe(href).as_ref()));
        if let Some(t) = title {
            tag.push_attribute(("title", xml_safe(t).as_ref()));
        }
        self.empty(tag);
    }

    pub(crate) fn html_element(&mut self, name: &str, html: &str) {
        self.start(BytesStart::new(name).with_attributes([("type", "html")]));
        self.text(html);
        self.end(name);
    }

    pub(crate) fn text_element(&mut self, name: &str, value: &str) {
        self.start(BytesStart::new(name));
        self.text(value);
        self.end(name);
    }

    pub(super) fn text(&mut self, value: &str) {
        self.event(Event::Text(BytesText::new(&xml_safe(value))));
    }

    pub(super) fn start(&mut self, tag: BytesStart<'_>) {
        self.event(Event::Start(tag));
    }

    pub(super) fn empty(&mut self, tag: BytesStart<'_>) {
        self.event(Event::Empty(tag));
    }

    pub(super) fn end(&mut self, name: &str) {
        self.event(Event::End(BytesEnd::new(name)));
    }

    pub(crate) fn event(&mut self, event: Event<'_>) {
        // Writing into a Vec<u8> cannot fail.
        let _ = self.w.write_event(event);
    }
}
