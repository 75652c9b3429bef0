//! Owns turning a feed document (already UTF-8) into the project's own [`Entry`] values.
//!
//! feed-rs does the format work; around it, `normalize` maps legacy and sloppy documents onto
//! forms it reads, `repair` recovers from one odd element failing a whole feed, a panic
//! inside feed-rs is caught and becomes an error, and `fingerprints` cuts out the items a caller
//! already has stored, so that a re-fetched feed costs feed-rs only its new items. The
//! conversion then sanitizes HTML once, resolves relative links, makes titles plain text, and
//! keeps the feed's own ids, never the ones feed-rs would invent (a hash of link + title, or a
//! random UUID), so identity stays with `dedupe`.
//!
//! This module does no I/O and never decides identity or dates relative to "now": that is for
//! `dedupe` and the store.

mod dates;
pub(crate) mod discover;
mod normalize;
pub(crate) mod opml;
mod repair;
mod rhythm;
mod salvage;
mod scrape;

pub(crate) mod fingerprints;

use std::borrow::Cow;
use std::panic::{AssertUnwindSafe, catch_unwind};

use feed_rs::model::{FeedType, Link, Text};
use feed_rs::parser::{ParseErrorKind, ParseFeedError};
use url::Url;

pub(crate) use crate::model::Repair;
use crate::model::{Enclosure, Entry, FeedMeta, FullText, Person, SegmentHash};
use crate::text;
pub(crate) use fingerprints::Fingerprints;
use fingerprints::Segments;
use normalize::Prepared;
use repair::Fault;

/// Repairs attempted per document before giving up; each costs one re-parse.
const MAX_REPAIRS: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("not a feed: {0}")]
    NotAFeed(String),
    #[error("malformed feed: {0}")]
    Malformed(String),
    #[error("the feed parser crashed on this document")]
    Panic,
}

/// One parsed document.
#[derive(Debug, Clone, Default)]
pub struct ParsedFeed {
    /// What the document says of the feed.
    pub meta: FeedMeta,
    /// Its entries, in document order.
    pub entries: Vec<ParsedEntry>,
    /// Fingerprints of the items left out because the caller knew them (see [`parse_changed`]).
    pub(crate) skipped: Fingerprints,
}

/// A summary or content body as the feed gave it, not yet sanitized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawBody {
    pub text: String,
    /// HTML (to be sanitized) rather than plain text (to be escaped).
    pub(crate) is_html: bool,
}

/// An entry as parsed, its HTML not yet sanitized. Keying and comparing it with the store is
/// cheap; sanitizing is the costly part of a poll, so it happens later ([`crate::content`]),
/// only for entries that are new or changed.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedEntry {
    /// Everything but `summary` and `content`, final.
    pub entry: Entry,
    pub summary: Option<RawBody>,
    pub content: Option<RawBody>,
    /// What relative URLs in the bodies resolve against.
    pub(crate) base: Option<Url>,
    /// The fingerprint of the item it came from, when the parse could tell.
    pub segment: Option<SegmentHash>,
}

/// An entry built by hand (tests, benchmarks): its `summary` and `content` are taken as HTML.
impl From<Entry> for ParsedEntry {
    fn from(mut entry: Entry) -> ParsedEntry {
        let html = |s: Option<String>| s.map(|text| RawBody { text, is_html: true });
        ParsedEntry {
            summary: html(entry.summary.take()),
            content: html(entry.content.take()),
            entry,
            base: None,
            segment: None,
        }
    }
}

/// Reads `text` (UTF-8) fetched from `base` as `source` says: a feed (leaving out the
/// items in `known`, see [`parse_changed`]), or a page or JSON API through its selectors.
/// Dates without a zone are local time in `zone` (the feed's `timezone`).
pub(crate) fn parse_source(
    text: &str,
    base: &Url,
    known: &Fingerprints,
    source: &crate::model::Source,
    zone: chrono_tz::Tz,
) -> Result<ParsedFeed, ParseError> {
    match source {
        crate::model::Source::Feed => parse_feed(text, base, known, zone),
        crate::model::Source::Html(scrape) => scrape::scrape_html(text, base, scrape, zone),
        crate::model::Source::Json(scrape) => scrape::scrape_json(text, base, scrape, zone),
    }
}

/// Parses `text` (UTF-8) fetched from `base`, which resolves relative URLs.
pub fn parse_document(text: &str, base: &Url) -> Result<ParsedFeed, ParseError> {
    parse_changed(text, base, &Fingerprints::default())
}

/// Parses `text` like [`parse_document`], leaving out the items whose fingerprint is in
/// `known` (the caller has their entries stored unchanged); `skipped` lists those. Entries
/// carry their own item's fingerprint when the parse can tell it.
pub fn parse_changed(text: &str, base: &Url, known: &Fingerprints) -> Result<ParsedFeed, ParseError> {
    parse_feed(text, base, known, chrono_tz::UTC)
}

/// [`parse_changed`] with dates without a zone read as local time in `zone`.
fn parse_feed(
    text: &str,
    base: &Url,
    known: &Fingerprints,
    zone: chrono_tz::Tz,
) -> Result<ParsedFeed, ParseError> {
    let mut repairs: std::collections::BTreeSet<Repair> = std::collections::BTreeSet::new();
    let (mut doc, json_push) = match normalize::prepare(text, &mut repairs)? {
        Prepared::Xml(doc) => (doc, None),
        Prepared::Json(doc, push) => (Cow::Owned(doc), Some(push)),
    };
    let is_json = json_push.is_some();
    let mut salvaged = false;
    // A document read from a file takes its base from the channel link, outside the items, so
    // only documents with a web address are fingerprinted.
    let segments = match base.scheme() {
        "http" | "https" if !is_json => Segments::scan(&doc, base),
        _ => None,
    };
    // The fingerprints of the items feed-rs will see, in order, and of those it will not.
    let (mut item_hashes, skipped) = match segments.as_ref().and_then(|s| s.cut(&doc, known)) {
        Some((rest, kept, cut)) => {
            doc = Cow::Owned(rest);
            (Some(kept), cut)
        }
        None => (segments.map(Segments::into_hashes), Fingerprints::default()),
    };
    let mut attempts = 0;
    loop {
        // A fresh parser per attempt: feed-rs keeps per-entry state that a failed parse leaves
        // behind, and a reused parser then panics on the next document.
        let parser = feed_rs::parser::Builder::new()
            // A document with no web location of its own (a file) resolves its relative links
            // against its channel link, in `convert`: feed-rs would make them file:// paths.
            .base_uri(matches!(base.scheme(), "http" | "https").then_some(base.as_str()))
            // An empty id marks "the feed gave none"; dedupe then decides the key.
            .id_generator(|_, _, _| String::new())
            .timestamp_parser(move |text| dates::parse_date(text, zone))
            .sanitize_content(false)
            .build();
        // feed-rs has panicked on real documents (UTF-16 with a BOM, in 3.0.0); a panic is
        // this document's error, never the process's.
        let result =
            catch_unwind(AssertUnwindSafe(|| parser.parse(doc.as_bytes()))).map_err(|_| ParseError::Panic)?;
        let err = match result {
            Ok(feed) => {
                let rhythm = if is_json {
                    Default::default()
                } else {
                    rhythm::scan(&doc)
                };
                let mut feed = convert(feed, base, rhythm);
                if let Some(push) = &json_push {
                    feed.meta.hub = push.hub.as_deref().and_then(|h| resolve(h, base));
                    feed.meta.topic = push.topic.as_deref().and_then(|t| resolve(t, base));
                }
                if !is_json
                    && feed
                        .entries
                        .iter()
                        .any(|e| e.summary.is_none() && e.content.is_none())
                {
                    bare_media_descriptions(&mut feed.entries, &doc);
                }
                // A document with items that yields no entries lost them silently: an error.
                if feed.entries.is_empty() && skipped.is_empty() {
                    let (name, items) = count_items(&doc);
                    if items > 0 {
                        return Err(ParseError::Malformed(format!(
                            "the document has {items} <{name}> elements but none could be read as entries"
                        )));
                    }
                }
                // Entries map onto items one to one unless feed-rs passed over some.
                if let Some(hashes) = item_hashes.filter(|h| h.len() == feed.entries.len()) {
                    for (entry, hash) in feed.entries.iter_mut().zip(hashes) {
                        entry.segment = Some(hash);
                    }
                }
                feed.skipped = skipped;
                feed.meta.repairs = repairs.into_iter().collect();
                return Ok(feed);
            }
            Err(err) => err,
        };
        let fault = match &err {
            ParseFeedError::ParseError(ParseErrorKind::UnknownMimeType { position, mime }) => {
                Some(Fault::UnknownType {
                    position: *position,
                    mime,
                })
            }
            ParseFeedError::ParseError(
                ParseErrorKind::MissingContent { position, .. }
                | ParseErrorKind::UnknownEnumVariant { position, .. }
                | ParseErrorKind::IllegalState { position, .. },
            ) => Some(Fault::Other { position: *position }),
            _ => None,
        };
        // Ill-formed XML: read as a loose parser would, once.
        if !is_json && !salvaged && matches!(err, ParseFeedError::XmlReader(_)) {
            salvaged = true;
            if let Some((fixed, found)) = salvage::salvage(&doc) {
                repairs.extend(found);
                let prepared = match normalize::prepare(&fixed, &mut repairs)? {
                    Prepared::Xml(d) => d.into_owned(),
                    Prepared::Json(d, _) => d,
                };
                doc = Cow::Owned(prepared);
                item_hashes = None;
                continue;
            }
        }
        let repaired = match fault {
            Some(fault) if !is_json && attempts < MAX_REPAIRS => repair::repair(&doc, fault),
            _ => None,
        };
        match repaired {
            Some(fixed) if fixed != *doc => {
                doc = Cow::Owned(fixed);
                attempts += 1;
                repairs.insert(Repair::Element);
                // The repair removed or changed an element: which entry is which item is lost.
                item_hashes = None;
            }
            _ => return Err(classify(err)),
        }
    }
}

/// The item element a document uses and how many it has (`<item>` for RSS, `<entry>` for
/// Atom), counted by local name, whatever prefix they carry. Only a document that yielded no
/// entries is counted, so this costs nothing on the common path.
fn count_items(doc: &str) -> (&'static str, usize) {
    let mut reader = quick_xml::Reader::from_str(doc);
    let (mut items, mut entries) = (0, 0);
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Start(tag) | quick_xml::events::Event::Empty(tag)) => {
                match tag.local_name().as_ref() {
                    "item" => items += 1,
                    "entry" => entries += 1,
                    _ => {}
                }
            }
            Ok(quick_xml::events::Event::Eof) | Err(_) => break,
            Ok(_) => {}
        }
    }
    match items {
        0 => ("entry", entries),
        n => ("item", n),
    }
}

/// Entries with no text of their own take their item's bare Media RSS description, when the
/// document's items and the entries line up one to one.
fn bare_media_descriptions(entries: &mut [ParsedEntry], doc: &str) {
    let descriptions = media_descriptions(doc);
    if descriptions.len() != entries.len() {
        return;
    }
    for (entry, description) in entries.iter_mut().zip(descriptions) {
        if entry.summary.is_none() && entry.content.is_none() {
            entry.summary = description.map(|text| RawBody {
                text: text::drop_controls(&text).into_owned(),
                is_html: false,
            });
        }
    }
}

/// The bare Media RSS description of each item or entry, in document order: feed-rs keeps a
/// `media:description` only beside a `media:content`, where feedparser takes one anywhere in
/// an item as its summary (YouTube's and podcasts' only text, at times).
fn media_descriptions(doc: &str) -> Vec<Option<String>> {
    use quick_xml::events::Event;
    use quick_xml::name::ResolveResult;
    const MEDIA_RSS: &str = "http://search.yahoo.com/mrss/";
    let mut reader = quick_xml::NsReader::from_str(doc);
    let mut found: Vec<Option<String>> = Vec::new();
    // The depth of the item open now, and the description being read in it.
    let (mut depth, mut item): (usize, Option<usize>) = (0, None);
    let mut reading: Option<String> = None;
    loop {
        match reader.read_resolved_event() {
            Ok((ns, Event::Start(tag))) => {
                depth += 1;
                let local = tag.local_name();
                if item.is_none() && matches!(local.as_ref(), "item" | "entry") {
                    item = Some(depth);
                    found.push(None);
                } else if item.is_some()
                    && local.as_ref() == "description"
                    && matches!(ns, ResolveResult::Bound(n) if n.as_ref() == MEDIA_RSS)
                    && found.last().is_some_and(Option::is_none)
                {
                    reading = Some(String::new());
                }
            }
            Ok((_, Event::Empty(tag))) => {
                if item.is_none() && matches!(tag.local_name().as_ref(), "item" | "entry") {
                    found.push(None);
                }
            }
            Ok((_, Event::Text(t))) => {
                if let Some(text) = reading.as_mut() {
                    text.push_str(&t.xml10_content());
                }
            }
            Ok((_, Event::CData(t))) => {
                if let Some(text) = reading.as_mut() {
                    text.push_str(&t);
                }
            }
            Ok((_, Event::GeneralRef(r))) => {
                if let Some(text) = reading.as_mut() {
                    match r.resolve_char_ref() {
                        Ok(Some(c)) => text.push(c),
                        _ => {
                            text.push_str(quick_xml::escape::resolve_predefined_entity(&r).unwrap_or(""));
                        }
                    }
                }
            }
            Ok((_, Event::End(_))) => {
                if let Some(text) = reading.take()
                    && let Some(last) = found.last_mut()
                {
                    *last = Some(text).filter(|t| !t.trim().is_empty());
                }
                if item == Some(depth) {
                    item = None;
                }
                depth = depth.saturating_sub(1);
            }
            Ok((_, Event::Eof)) | Err(_) => break,
            Ok(_) => {}
        }
    }
    found
}

fn classify(err: ParseFeedError) -> ParseError {
    match err {
        ParseFeedError::ParseError(ParseErrorKind::NoFeedRoot) => {
            ParseError::NotAFeed("no RSS, Atom or JSON Feed root".into())
        }
        other => ParseError::Malformed(other.to_string()),
    }
}

fn convert(feed: feed_rs::model::Feed, base: &Url, rhythm: crate::model::FeedRhythm) -> ParsedFeed {
    // RSS and JSON Feed titles are "plain text" that publishers fill with entities and markup;
    // Atom says exactly what its text constructs hold.
    let loose = !matches!(feed.feed_type, FeedType::Atom);
    let is_json = matches!(feed.feed_type, FeedType::JSON);
    let mut meta = FeedMeta {
        title: feed
            .title
            .as_ref()
            .map(|t| text_of(t, loose))
            .filter(|t| !t.is_empty()),
        site_url: alternate_link(&feed.links, base, is_json),
        id: Some(feed.id.trim().to_string()).filter(|id| !id.is_empty()),
        rhythm,
        repairs: Vec::new(),
        // Only a registered tag: feeds declare "English", "Fran?ais" (mojibake) or nothing
        // at all, and such a label says nothing a reader's browser could use.
        language: feed
            .language
            .as_deref()
            .and_then(|l| text::language::checked(l).ok()),
        ..FeedMeta::default()
    };
    // A feed read from a file (the demo, a mirror) has no web location of its own; its site
    // link is the best base for the relative URLs inside it.
    let site_base = meta.site_url.as_deref().and_then(|s| Url::parse(s).ok());
    let base = match site_base {
        Some(site) if !matches!(base.scheme(), "http" | "https") => site,
        _ => base.clone(),
    };
    let image = |image: &Option<feed_rs::model::Image>| {
        let uri = image.as_ref()?.uri.trim();
        base.join(uri)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .map(String::from)
    };
    meta.icon = image(&feed.icon);
    meta.logo = image(&feed.logo);
    // Atom's links, and RSS's atom:link elements (W3C WebSub §4): the hub and the topic.
    let rel = |name: &str| {
        feed.links
            .iter()
            .filter(|l| l.rel.as_deref().is_some_and(|r| r.eq_ignore_ascii_case(name)))
            .find_map(|l| resolve(&l.href, &base))
    };
    meta.hub = rel("hub");
    meta.topic = rel("self");
    let entries = feed
        .entries
        .into_iter()
        .map(|e| convert_entry(e, &base, loose, is_json))
        .collect();
    ParsedFeed {
        meta,
        entries,
        skipped: Fingerprints::default(),
    }
}

fn convert_entry(e: feed_rs::model::Entry, feed_base: &Url, loose: bool, is_json: bool) -> ParsedEntry {
    // xml:base on the entry (possibly relative) wins over the document's URL (RFC 3986 §5.1).
    let base = e
        .base
        .as_deref()
        .and_then(|b| feed_base.join(b).ok())
        .unwrap_or_else(|| feed_base.clone());
    let guid = Some(e.id.trim().to_string()).filter(|id| !id.is_empty());
    // Only a link is a link: an RSS permalink guid became one in `normalize`; any other id is
    // not the story's address.
    let link = alternate_link(&e.links, &base, is_json);
    let raw = |body: &str, mime: &str| {
        Some(RawBody {
            text: text::drop_controls(&text::mojibake::repair(body)).into_owned(),
            is_html: mime.contains("html"),
        })
        .filter(|b| !b.text.trim().is_empty())
    };
    let summary = e
        .summary
        .as_ref()
        .and_then(|t| raw(&t.content, &summary_mime(t, loose)));
    let mut content = e
        .content
        .as_ref()
        .and_then(|c| raw(c.body.as_deref()?, c.content_type.as_ref()));
    // Some items keep their only text in a media object: YouTube's media:description,
    // a podcast's itunes:summary.
    if summary.is_none() && content.is_none() {
        content = e
            .media
            .iter()
            .filter_map(|m| m.description.as_ref())
            .find_map(|d| raw(&d.content, d.content_type.as_ref()));
    }
    let author = e.authors.iter().find_map(|p| {
        // RSS's `<author>` is `email (Name)` by the spec's own example; feed-rs takes the
        // email out and leaves the rest, brackets and all.
        let name = p
            .name
            .as_deref()
            .map(text::collapse_whitespace)
            .map(|n| unbracket(&n).to_string())
            .filter(|n| !n.is_empty());
        let email = p
            .email
            .as_deref()
            .map(text::collapse_whitespace)
            .filter(|m| !m.is_empty());
        Some(Person {
            name: name.or_else(|| email.clone())?,
            email,
            uri: p.uri.as_deref().and_then(|u| resolve(u, &base)),
        })
    });
    let mut categories: Vec<String> = Vec::new();
    for c in &e.categories {
        let term = text::collapse_whitespace(c.label.as_deref().unwrap_or(&c.term));
        if !term.is_empty() && !categories.contains(&term) {
            categories.push(term);
        }
    }
    let entry = Entry {
        guid,
        link,
        title: e
            .title
            .as_ref()
            .map(|t| text_of(t, loose))
            .filter(|t| !t.is_empty())
            // An item titled only by Media RSS (media:title), or by iTunes.
            .or_else(|| {
                e.media
                    .iter()
                    .filter_map(|m| m.title.as_ref())
                    .map(|t| text_of(t, loose))
                    .find(|t| !t.is_empty())
            })
            .unwrap_or_default(),
        author,
        summary: None,
        content: None,
        published: e.published.or(e.updated),
        updated: e.updated,
        categories,
        enclosures: enclosures(&e, &base, is_json),
        full_text: FullText::Feed,
        // Decided once the bodies are finished (`content`): it may be read from them.
        language: None,
    };
    ParsedEntry {
        entry,
        summary,
        content,
        base: Some(base),
        segment: None,
    }
}

/// A name written in brackets after an address (`(李伟)`, `[Ann]`), without them.
fn unbracket(name: &str) -> &str {
    for (open, close) in [('(', ')'), ('[', ']'), ('<', '>')] {
        if let Some(inner) = name.strip_prefix(open).and_then(|n| n.strip_suffix(close))
            && !inner.contains([open, close])
        {
            return inner.trim();
        }
    }
    name
}

/// Titles longer than this are content pasted into the wrong element; they are cut (with an
/// ellipsis) so one hostile entry cannot bloat every output and page it appears in.
const MAX_TITLE_CHARS: usize = 512;

/// Plain text of a title-like text construct.
fn text_of(text: &Text, loose: bool) -> String {
    let mime = text.content_type.to_string();
    // Markup is stripped from a bounded prefix: a megabyte title costs what a long one does.
    let bounded: String = text.content.chars().take(MAX_TITLE_CHARS * 8).collect();
    let content = text::mojibake::repair(&bounded);
    let looks_like_markup = content.contains('<') || content.contains('&');
    let plain = if mime.contains("html") || (loose && looks_like_markup) {
        text::html_to_text(&content)
    } else {
        text::collapse_whitespace(&content)
    };
    match plain.char_indices().nth(MAX_TITLE_CHARS) {
        Some((cut, _)) => format!("{}…", &plain[..cut]),
        None => plain,
    }
}

/// RSS `<description>` is HTML by practice even though feed-rs labels it text/plain.
fn summary_mime(text: &Text, loose: bool) -> String {
    if loose {
        "text/html".into()
    } else {
        text.content_type.to_string()
    }
}

/// The first link meant for people (no rel, or rel="alternate"), resolved to an absolute URL.
fn alternate_link(links: &[Link], base: &Url, is_json: bool) -> Option<String> {
    links
        .iter()
        .filter(|l| matches!(l.rel.as_deref(), None | Some("alternate")))
        // `<comments>` and wfw:commentRss arrive as links too, but are not the story.
        .filter(|l| l.target.is_none())
        // JSON Feed attachments arrive as links with a media type.
        .filter(|l| !(is_json && l.media_type.is_some()))
        .filter(|l| l.href != normalize::NO_LINK)
        .find_map(|l| resolve(&l.href, base))
}

fn enclosures(e: &feed_rs::model::Entry, base: &Url, is_json: bool) -> Vec<Enclosure> {
    let mut out: Vec<Enclosure> = Vec::new();
    let mut push = |url: Option<String>, mime_type: Option<String>, length: Option<u64>| {
        if let Some(url) = url
            && !out.iter().any(|x| x.url == url)
        {
            out.push(Enclosure {
                url,
                mime_type: mime_type.filter(|m| !m.is_empty()),
                length: length.filter(|l| *l > 0),
            });
        }
    };
    for l in &e.links {
        if l.rel.as_deref() == Some("enclosure") || (is_json && l.media_type.is_some()) {
            push(resolve(&l.href, base), l.media_type.clone(), l.length);
        }
    }
    // RSS <enclosure> and MediaRSS content arrive as media objects. Pictures without a size are
    // MediaRSS illustrations, not attachments; everything else is kept.
    for media in &e.media {
        for c in &media.content {
            let mime = c.content_type.as_ref().map(|m| m.to_string());
            let is_picture = mime.as_deref().is_some_and(|m| m.starts_with("image/"));
            if is_picture && c.size.is_none() {
                continue;
            }
            push(
                c.url.as_ref().and_then(|u| resolve(u.as_str(), base)),
                mime,
                c.size,
            );
        }
    }
    out
}

/// `href` made absolute against `base`; only web URLs survive (no javascript:, data:, file:).
fn resolve(href: &str, base: &Url) -> Option<String> {
    let href = href.trim();
    if href.is_empty() {
        return None;
    }
    let url = base.join(href).ok()?;
    matches!(url.scheme(), "http" | "https" | "mailto").then(|| url.to_string())
}

#[cfg(test)]
mod tests;
