//! Item segments: the byte ranges of a document's `<item>`/`<entry>` elements, each with a
//! fingerprint, so that a re-fetched feed whose items are mostly the ones already stored
//! costs feed-rs only the new ones.
//!
//! Most changed bodies differ from the last fetch by a few items. Parsing, converting and
//! hashing the other forty-odd only to find them unchanged is most of a re-poll's work, so the
//! items whose fingerprint the store recorded (because their entry is stored with exactly
//! this content) are cut out before feed-rs sees the document.
//!
//! A fingerprint covers the item's bytes and everything outside them that the entry depends
//! on: the document's URL (relative links), the start tags of its ancestors (namespaces,
//! `xml:base`) and the Tributary version (a newer parser may read the same bytes better).
//! Cutting is declined when the scan is unsure: malformed XML, or a guid the document repeats
//! (dedupe then keys those entries by link, which it can only see with all of them parsed).

use std::collections::{HashMap, HashSet};
use std::ops::Range;

use quick_xml::Reader;
use quick_xml::events::Event;
use sha2::{Digest, Sha256};
use url::Url;

use crate::model::SegmentHash;

/// The item elements of one document.
pub(super) struct Segments {
    /// Byte ranges of the item elements, in document order.
    ranges: Vec<Range<usize>>,
    hashes: Vec<SegmentHash>,
}

impl Segments {
    /// Finds the item elements of an XML feed document; `None` when the document is not one
    /// this scan understands completely (then nothing is cut).
    pub(super) fn scan(doc: &str, base: &Url) -> Option<Segments> {
        let mut reader = Reader::from_str(doc);
        // Local names of the open elements, and the start tags of the item's ancestors.
        let mut path: Vec<String> = Vec::new();
        let mut context = Sha256::new();
        context.update(env!("CARGO_PKG_VERSION").as_bytes());
        context.update([0]);
        context.update(base.as_str().as_bytes());
        context.update([0]);
        let mut ranges = Vec::new();
        // Where the open item starts, and how many elements were open outside it.
        let mut item: Option<(usize, usize)> = None;
        // Guids and ids of the items (direct children only), to spot repeats.
        let mut guid: Option<String> = None;
        let mut in_guid = false;
        let mut guids: HashMap<String, usize> = HashMap::new();
        loop {
            let before = usize::try_from(reader.buffer_position()).ok()?;
            let event = reader.read_event().ok()?;
            let after = usize::try_from(reader.buffer_position()).ok()?;
            match event {
                Event::Start(tag) => {
                    let name = tag.local_name().as_ref().to_string();
                    match item {
                        None if is_item(&name, &path) => {
                            item = Some((before, path.len()));
                            guid = None;
                        }
                        None => context.update(doc.get(before..after)?.as_bytes()),
                        Some((_, depth)) => {
                            in_guid = path.len() == depth + 1 && matches!(name.as_str(), "guid" | "id");
                        }
                    }
                    path.push(name);
                }
                Event::Empty(tag) if item.is_none() && is_item(tag.local_name().as_ref(), &path) => {
                    ranges.push(before..after);
                }
                Event::Text(text) if in_guid => {
                    let text = text.xml_content(quick_xml::XmlVersion::Implicit1_0);
                    guid.get_or_insert_with(String::new).push_str(&text);
                }
                Event::CData(text) if in_guid => {
                    guid.get_or_insert_with(String::new).push_str(&text);
                }
                Event::End(_) => {
                    path.pop();
                    in_guid = false;
                    if let Some((start, depth)) = item {
                        if path.len() == depth {
                            ranges.push(start..after);
                            item = None;
                            if let Some(g) = guid.take() {
                                *guids.entry(g.trim().to_string()).or_default() += 1;
                            }
                        }
                    }
                }
                Event::Eof => break,
                _ => {}
            }
        }
        if item.is_some() || guids.values().any(|&n| n > 1) {
            return None;
        }
        let hashes = ranges
            .iter()
            .map(|r| {
                let digest = context
                    .clone()
                    .chain_update(&doc.as_bytes()[r.clone()])
                    .finalize();
                let mut first = [0u8; 8];
                first.copy_from_slice(&digest[..8]);
                SegmentHash::from_le_bytes(first)
            })
            .collect();
        Some(Segments { ranges, hashes })
    }

    /// Item fingerprints in document order.
    pub(super) fn hashes(&self) -> &[SegmentHash] {
        &self.hashes
    }

    /// The document without the items in `known`, and the fingerprints of the items kept and
    /// of those cut, each in document order. `None` when nothing would be cut.
    pub(super) fn cut(
        &self,
        doc: &str,
        known: &HashSet<SegmentHash>,
    ) -> Option<(String, Vec<SegmentHash>, Vec<SegmentHash>)> {
        if !self.hashes.iter().any(|h| known.contains(h)) {
            return None;
        }
        let mut out = String::with_capacity(doc.len());
        let (mut kept, mut cut) = (Vec::new(), Vec::new());
        let mut copied = 0;
        for (range, &hash) in self.ranges.iter().zip(&self.hashes) {
            if known.contains(&hash) {
                out.push_str(&doc[copied..range.start]);
                copied = range.end;
                cut.push(hash);
            } else {
                kept.push(hash);
            }
        }
        out.push_str(&doc[copied..]);
        Some((out, kept, cut))
    }
}

/// Whether an element named `name` opened inside `path` is a feed item: an RSS `<item>` in the
/// channel (or, RSS 1.0, beside it) or an Atom `<entry>` in the feed.
fn is_item(name: &str, path: &[String]) -> bool {
    match (name, path) {
        ("entry" | "item", [_root]) => true,
        ("item", [_root, parent]) => parent == "channel",
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Url {
        Url::parse("https://example.org/feed").unwrap()
    }

    const RSS: &str = "<rss version=\"2.0\"><channel><title>T</title>\
        <item><title>a</title><guid>1</guid></item>\
        <item><title>b <![CDATA[</item>]]></title><guid>2</guid></item>\
        <item/></channel></rss>";

    #[test]
    fn items_are_found_and_cut() {
        let s = Segments::scan(RSS, &base()).unwrap();
        assert_eq!(s.hashes().len(), 3);
        let known: HashSet<_> = [s.hashes()[0]].into();
        let (doc, kept, cut) = s.cut(RSS, &known).unwrap();
        assert_eq!(cut, [s.hashes()[0]]);
        assert_eq!(kept, &s.hashes()[1..]);
        assert!(
            !doc.contains("<title>a</title>") && doc.contains("<guid>2</guid>"),
            "{doc}"
        );
        assert!(s.cut(RSS, &HashSet::new()).is_none());
    }

    #[test]
    fn context_changes_every_fingerprint() {
        let s = Segments::scan(RSS, &base()).unwrap();
        let moved = Segments::scan(RSS, &Url::parse("https://example.net/feed").unwrap()).unwrap();
        let rebased =
            Segments::scan(&RSS.replace("<channel>", "<channel xml:base=\"/x/\">"), &base()).unwrap();
        for other in [moved, rebased] {
            assert!(other.hashes().iter().all(|h| !s.hashes().contains(h)));
        }
    }

    #[test]
    fn atom_entries_but_not_nested_ones() {
        let atom = "<feed xmlns=\"http://www.w3.org/2005/Atom\"><entry><id>1</id>\
                    <content type=\"xhtml\"><div><entry>not one</entry></div></content></entry></feed>";
        assert_eq!(Segments::scan(atom, &base()).unwrap().hashes().len(), 1);
    }

    #[test]
    fn unsure_documents_are_not_cut() {
        let repeated = RSS.replace("<guid>2</guid>", "<guid>1</guid>");
        assert!(Segments::scan(&repeated, &base()).is_none());
        assert!(Segments::scan("<rss><channel><item><title>a</channel></rss>", &base()).is_none());
    }
}
