//! Owns identity: which key an entry is known by within its feed, the canonical form of a URL,
//! and the content hash that tells "seen again unchanged" from "updated".
//!
//! The rule (DESIGN.md): the feed's guid/id when it gives a usable one, else the canonical
//! link, else a hash of title + content. A guid that the document repeats for different
//! entries is not usable (some generators put the channel URL in every `<guid>`), so those
//! entries fall back to their links.

use std::collections::{HashMap, HashSet};

use sha2::{Digest, Sha256};

pub(crate) use crate::model::canonical_url;
use crate::model::{Entry, EntryKey, KeyKind, Keyed, MAX_GUID_LEN};
use crate::parse::ParsedEntry;

/// Keys every entry of one parsed document, dropping later repeats of a key within it.
///
/// A guid or a link is an identity only if it names one story in the document: some CMSs give
/// every item the same link (the section page) or the same guid, and then stories that differ
/// in title or content would collapse into one. Such a value falls back to the next rule
/// (guid → link → hash of title and content). The same story repeated verbatim keeps its key
/// and is kept once.
pub fn key_entries(entries: Vec<ParsedEntry>) -> Vec<Keyed<ParsedEntry>> {
    let links: Vec<Option<String>> = entries
        .iter()
        .map(|e| e.entry.link.as_deref().map(canonical_url))
        .collect();
    let guids: Vec<Option<String>> = entries
        .iter()
        .map(|e| e.entry.guid.clone().filter(|g| g.len() <= MAX_GUID_LEN))
        .collect();
    // A text hash reads the whole body, as dear as the content hash: only an entry with
    // neither guid nor link, or whose guid or link the document repeats, needs one.
    let repeated_guids = repeated(guids.iter().map(Option::as_deref));
    let repeated_links = repeated(links.iter().map(Option::as_deref));
    let texts: Vec<Option<String>> = entries
        .iter()
        .zip(guids.iter().zip(&links))
        .map(|(parsed, (guid, link))| {
            let needed = (guid.is_none() && link.is_none())
                || guid.as_deref().is_some_and(|g| repeated_guids.contains(g))
                || link.as_deref().is_some_and(|l| repeated_links.contains(l));
            needed.then(|| text_hash(parsed))
        })
        .collect();
    let shared_guids = shared(guids.iter().map(Option::as_deref).zip(&texts));
    let shared_links = shared(links.iter().map(Option::as_deref).zip(&texts));
    let mut seen = HashSet::new();
    entries
        .into_iter()
        .zip(texts)
        .zip(links)
        .zip(guids)
        .filter_map(|(((parsed, text), canonical_link), guid)| {
            let guid = guid.filter(|g| !shared_guids.contains(g.as_str()));
            let link = canonical_link.as_deref().filter(|l| !shared_links.contains(*l));
            let key = match (guid, link) {
                (Some(g), _) => EntryKey::new(KeyKind::Guid, &g),
                (None, Some(link)) => EntryKey::new(KeyKind::Link, link),
                (None, None) => EntryKey::new(KeyKind::Hash, &text.unwrap_or_else(|| text_hash(&parsed))),
            };
            seen.insert(key.clone()).then(|| Keyed {
                key,
                content_hash: content_hash(&parsed),
                canonical_link,
                segment: parsed.segment,
                entry: parsed,
            })
        })
        .collect()
}

/// The values given to more than one entry.
fn repeated<'a>(values: impl Iterator<Item = Option<&'a str>>) -> HashSet<&'a str> {
    let mut once = HashSet::new();
    values.flatten().filter(|v| !once.insert(*v)).collect()
}

/// The values that stand for more than one story: given to entries whose texts differ.
fn shared<'a>(values: impl Iterator<Item = (Option<&'a str>, &'a Option<String>)>) -> HashSet<String> {
    let mut texts: HashMap<&str, &Option<String>> = HashMap::new();
    let mut shared = HashSet::new();
    for (value, text) in values {
        let Some(value) = value else { continue };
        match texts.get(value) {
            Some(first) if *first != text => {
                shared.insert(value.to_string());
            }
            Some(_) => {}
            None => {
                texts.insert(value, text);
            }
        }
    }
    shared
}

fn text_hash(parsed: &ParsedEntry) -> String {
    let mut h = Sha256::new();
    h.update(parsed.entry.title.as_bytes());
    h.update([0x1f]);
    let body = parsed.content.as_ref().or(parsed.summary.as_ref());
    h.update(body.map_or("", |b| b.text.as_str()).as_bytes());
    hex::encode(&h.finalize()[..16])
}

/// A hash of everything the feed says about an entry (its bodies as given, before
/// sanitizing), so an unchanged entry costs one comparison and is never sanitized again.
/// Dates are left out: a feed that re-stamps every item on each build has not changed them.
pub(crate) fn content_hash(parsed: &ParsedEntry) -> String {
    let entry: &Entry = &parsed.entry;
    let mut h = Sha256::new();
    let mut field = |s: &str| {
        h.update(s.as_bytes());
        h.update([0x1f]);
    };
    field(&entry.title);
    field(entry.link.as_deref().unwrap_or(""));
    for body in [&parsed.summary, &parsed.content] {
        field(body.as_ref().map_or("", |b| b.text.as_str()));
        field(if body.as_ref().is_some_and(|b| b.is_html) {
            "html"
        } else {
            "text"
        });
    }
    if let Some(a) = &entry.author {
        field(&a.name);
        field(a.email.as_deref().unwrap_or(""));
        field(a.uri.as_deref().unwrap_or(""));
    }
    for c in &entry.categories {
        field(c);
    }
    for e in &entry.enclosures {
        field(&e.url);
        field(e.mime_type.as_deref().unwrap_or(""));
        field(&e.length.unwrap_or(0).to_string());
    }
    hex::encode(&h.finalize()[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(guid: Option<&str>, link: Option<&str>, title: &str) -> ParsedEntry {
        Entry {
            guid: guid.map(String::from),
            link: link.map(String::from),
            title: title.into(),
            ..Entry::default()
        }
        .into()
    }

    #[test]
    fn canonical_urls() {
        assert_eq!(
            canonical_url("HTTPS://Example.ORG:443/a?utm_source=x&id=3&fbclid=y#top"),
            "https://example.org/a?id=3"
        );
        assert_eq!(
            canonical_url("http://example.org:80/?utm_medium=rss"),
            "http://example.org/"
        );
        assert_eq!(canonical_url(" not a url "), "not a url");
    }

    #[test]
    fn key_rule_guid_then_link_then_hash() {
        let keyed = key_entries(vec![
            entry(Some("id-1"), Some("https://e.org/1"), "a"),
            entry(None, Some("https://e.org/2?utm_source=rss"), "b"),
            entry(None, None, "c"),
        ]);
        assert_eq!(keyed[0].key.as_str(), "guid:id-1");
        assert_eq!(keyed[1].key.as_str(), "link:https://e.org/2");
        assert_eq!(keyed[2].key.kind(), KeyKind::Hash);
        // The same entry always gets the same key.
        assert_eq!(key_entries(vec![entry(None, None, "c")])[0].key, keyed[2].key);
    }

    #[test]
    fn a_repeated_guid_is_not_an_identity() {
        let keyed = key_entries(vec![
            entry(Some("https://e.org/"), Some("https://e.org/1"), "a"),
            entry(Some("https://e.org/"), Some("https://e.org/2"), "b"),
        ]);
        assert_eq!(keyed.len(), 2);
        assert_eq!(keyed[0].key.as_str(), "link:https://e.org/1");
    }

    #[test]
    fn repeats_within_a_document_are_dropped() {
        let keyed = key_entries(vec![
            entry(None, Some("https://e.org/1"), "a"),
            entry(None, Some("https://e.org/1#x"), "a"),
        ]);
        assert_eq!(keyed.len(), 1);
        assert_eq!(keyed[0].entry.entry.title, "a");
    }

    #[test]
    fn a_link_shared_by_different_stories_is_not_their_identity() {
        let keyed = key_entries(vec![
            entry(None, Some("https://e.org/news"), "a"),
            entry(None, Some("https://e.org/news#x"), "b"),
            entry(None, Some("https://e.org/other"), "c"),
        ]);
        assert_eq!(keyed.len(), 3);
        assert_eq!(keyed[0].key.kind(), KeyKind::Hash);
        assert_eq!(keyed[1].key.kind(), KeyKind::Hash);
        assert_eq!(keyed[2].key.as_str(), "link:https://e.org/other");
    }
}
