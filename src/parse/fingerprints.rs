//! Item fingerprints, the one place that knows them: the byte ranges of a document's
//! `<item>`/`<entry>` elements, each with a fingerprint, so that a re-fetched feed whose items
//! are mostly the ones already stored costs feed-rs only the new ones.
//!
//! Most changed bodies differ from the last fetch by a few items. Parsing, converting and
//! hashing the other forty-odd only to find them unchanged is most of a re-poll's work, so the
//! items whose fingerprint the store recorded (because their entry is stored with exactly
//! this content) are cut out before feed-rs sees the document.
//!
//! The cycle, all through [`Fingerprints`]: the store hands the feed's recorded set to
//! [`super::parse_changed`], which cuts those items and returns them as `skipped`, and tags
//! every entry it parses with its own item's fingerprint; the spine adds the fingerprints of
//! entries that turn out unchanged; the store adds those of the entries it stores and keeps the
//! set ([`Fingerprints::to_stored`] / [`Fingerprints::from_stored`], the `feeds.segments`
//! column), and forgets it whenever an entry of the feed is retired.
//!
//! A fingerprint covers the item's bytes and everything outside them that the entry depends
//! on: the document's URL (relative links), the start tags of its ancestors (namespaces,
//! `xml:base`) and the Tributary version (a newer parser may read the same bytes better). It
//! is XXH3's 64 bits, not a cryptographic hash: a cache key that only the feed's own publisher
//! could aim a collision at, and then only to keep an item of their own feed as stored.
//! Cutting is declined when the scan is unsure: malformed XML, or an item whose identity
//! depends on the others: one without a usable guid (dedupe keys it by link and keeps the
//! first of a repeated link) or with a guid the document repeats (dedupe then keys those
//! entries by link), which dedupe can only judge with every item parsed.

use std::collections::HashMap;
use std::hash::Hasher;
use std::ops::Range;

use twox_hash::XxHash3_64;
use url::Url;

pub(crate) use crate::model::Fingerprints;
use crate::model::{MAX_GUID_LEN, SegmentHash};

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
        // A purpose-built scanner, not an XML parser: it runs over every changed body, so it
        // only finds tags (quote-aware, skipping comments, CDATA, PIs and the doctype) and
        // checks that they nest. Anything it does not follow ends the scan with `None`.
        let bytes = doc.as_bytes();
        // Qualified names of the open elements.
        let mut path: Vec<&str> = Vec::new();
        // The start tags outside the items.
        let mut context = XxHash3_64::new();
        context.write(env!("CARGO_PKG_VERSION").as_bytes());
        context.write(&[0]);
        context.write(base.as_str().as_bytes());
        context.write(&[0]);
        let mut ranges = Vec::new();
        // Where the open item starts, and how many elements were open outside it.
        let mut item: Option<(usize, usize)> = None;
        // Guids and ids of the items (direct children only, as written), to spot repeats.
        let mut guid: Option<String> = None;
        let mut in_guid = false;
        let mut guids: HashMap<String, usize> = HashMap::new();
        let mut at = 0;
        while let Some(offset) = memchr::memchr(b'<', &bytes[at..]) {
            let lt = at + offset;
            if in_guid {
                guid.get_or_insert_with(String::new).push_str(&doc[at..lt]);
            }
            let rest = &bytes[lt..];
            if rest.starts_with(b"<!--") {
                at = find(bytes, lt + 4, b"-->")? + 3;
                continue;
            }
            if rest.starts_with(b"<![CDATA[") {
                let end = find(bytes, lt + 9, b"]]>")?;
                if in_guid {
                    guid.get_or_insert_with(String::new).push_str(&doc[lt + 9..end]);
                }
                at = end + 3;
                continue;
            }
            if rest.starts_with(b"<?") {
                at = find(bytes, lt + 2, b"?>")? + 2;
                continue;
            }
            if rest.starts_with(b"<!") {
                // A doctype, perhaps with an internal subset in brackets.
                let subset_end = match memchr::memchr2(b'[', b'>', &bytes[lt..]) {
                    Some(i) if bytes[lt + i] == b'[' => find(bytes, lt + i, b"]")?,
                    _ => lt,
                };
                at = tag_end(bytes, subset_end)? + 1;
                continue;
            }
            let close = tag_end(bytes, lt + 1)?;
            let after = close + 1;
            if rest.starts_with(b"</") {
                let name = doc[lt + 2..close].trim_end();
                if path.pop()? != name {
                    return None;
                }
                in_guid = false;
                if let Some((start, depth)) = item
                    && path.len() == depth
                {
                    ranges.push(start..after);
                    item = None;
                    // Judged as dedupe will see it: entities decoded, spaces trimmed.
                    let raw = guid.take().unwrap_or_default();
                    let decoded = quick_xml::escape::unescape(&raw).ok()?;
                    let g = decoded.trim();
                    if g.is_empty() || g.len() > MAX_GUID_LEN {
                        return None;
                    }
                    *guids.entry(g.to_string()).or_default() += 1;
                }
            } else {
                let empty = bytes[close - 1] == b'/';
                let inner = &doc[lt + 1..if empty { close - 1 } else { close }];
                let name = inner.split(|c: char| c.is_ascii_whitespace()).next()?;
                if name.is_empty() {
                    return None;
                }
                match item {
                    // An empty item has no guid: see above.
                    None if is_item(local(name), &path) && empty => return None,
                    None if is_item(local(name), &path) => {
                        item = Some((lt, path.len()));
                        guid = None;
                    }
                    None => context.write(&bytes[lt..after]),
                    Some((_, depth)) => {
                        in_guid = !empty && path.len() == depth + 1 && matches!(local(name), "guid" | "id");
                    }
                }
                if !empty {
                    path.push(name);
                }
            }
            at = after;
        }
        if !path.is_empty() {
            return None;
        }
        if guids.values().any(|&n| n > 1) {
            return None;
        }
        // Everything outside the items seeds each item's hash.
        let context = context.finish();
        let hashes = ranges
            .iter()
            .map(|r| XxHash3_64::oneshot_with_seed(context, &bytes[r.clone()]))
            .collect();
        Some(Segments { ranges, hashes })
    }

    /// Item fingerprints in document order.
    pub(super) fn into_hashes(self) -> Vec<SegmentHash> {
        self.hashes
    }

    /// The document without the items in `known`, and the fingerprints of the items kept and
    /// of those cut, each in document order. `None` when nothing would be cut.
    pub(super) fn cut(
        &self,
        doc: &str,
        known: &Fingerprints,
    ) -> Option<(String, Vec<SegmentHash>, Fingerprints)> {
        if !self.hashes.iter().any(|h| known.contains(*h)) {
            return None;
        }
        let mut out = String::with_capacity(doc.len());
        let (mut kept, mut cut) = (Vec::new(), Fingerprints::default());
        let mut copied = 0;
        for (range, &hash) in self.ranges.iter().zip(&self.hashes) {
            if known.contains(hash) {
                out.push_str(&doc[copied..range.start]);
                copied = range.end;
                cut.add(Some(hash));
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
fn is_item(name: &str, path: &[&str]) -> bool {
    match (name, path) {
        ("entry" | "item", [_root]) => true,
        ("item", [_root, parent]) => local(parent) == "channel",
        _ => false,
    }
}

/// The local part of a qualified name.
fn local(qname: &str) -> &str {
    qname.rsplit(':').next().unwrap_or(qname)
}

/// Where `needle` starts at or after `from`.
fn find(bytes: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(bytes.get(from..)?, needle).map(|i| from + i)
}

/// The `>` that ends the tag whose name starts at `from`, passing over quoted attribute values.
fn tag_end(bytes: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    loop {
        let i = at + memchr::memchr3(b'>', b'"', b'\'', bytes.get(at..)?)?;
        if bytes[i] == b'>' {
            return Some(i);
        }
        at = i + 1 + memchr::memchr(bytes[i], bytes.get(i + 1..)?)? + 1;
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
        </channel></rss>";

    #[test]
    fn items_are_found_and_cut() {
        let s = Segments::scan(RSS, &base()).unwrap();
        assert_eq!(s.hashes.len(), 2);
        let known: Fingerprints = [s.hashes[0]].into_iter().collect();
        let (doc, kept, cut) = s.cut(RSS, &known).unwrap();
        assert_eq!(cut, known);
        assert_eq!(kept, &s.hashes[1..]);
        assert!(
            !doc.contains("<title>a</title>") && doc.contains("<guid>2</guid>"),
            "{doc}"
        );
        assert!(s.cut(RSS, &Fingerprints::default()).is_none());
        assert_eq!(Fingerprints::from_stored(&known.to_stored()), known);
    }

    #[test]
    fn context_changes_every_fingerprint() {
        let s = Segments::scan(RSS, &base()).unwrap();
        let moved = Segments::scan(RSS, &Url::parse("https://example.net/feed").unwrap()).unwrap();
        let rebased =
            Segments::scan(&RSS.replace("<channel>", "<channel xml:base=\"/x/\">"), &base()).unwrap();
        for other in [moved, rebased] {
            assert!(other.hashes.iter().all(|h| !s.hashes.contains(h)));
        }
    }

    #[test]
    fn atom_entries_but_not_nested_ones() {
        let atom = "<feed xmlns=\"http://www.w3.org/2005/Atom\"><entry><id>1</id>\
                    <content type=\"xhtml\"><div><entry>not one</entry></div></content></entry></feed>";
        assert_eq!(Segments::scan(atom, &base()).unwrap().hashes.len(), 1);
    }

    #[test]
    fn markup_that_is_not_an_element_is_passed_over() {
        let doc = "<?xml version=\"1.0\"?><!DOCTYPE rss [<!ENTITY e \"x>\">]><rss><channel>\
                   <!-- <item>not one</item> --><?pi <item>?>\
                   <item><guid>1</guid><title a=\"1>2\" b='</item>'>t</title></item>\
                   <item><guid><![CDATA[2]]></guid><description><![CDATA[</item><item>]]></description></item></channel></rss>";
        let s = Segments::scan(doc, &base()).unwrap();
        assert_eq!(s.ranges.len(), 2);
        assert!(doc[s.ranges[0].clone()].starts_with("<item><guid>1</guid><title a="));
        assert!(doc[s.ranges[1].clone()].ends_with("]]></description></item>"));
    }

    #[test]
    fn unsure_documents_are_not_cut() {
        let repeated = RSS.replace("<guid>2</guid>", "<guid>1</guid>");
        assert!(Segments::scan(&repeated, &base()).is_none());
        let guidless = RSS.replace("<guid>2</guid>", "");
        assert!(Segments::scan(&guidless, &base()).is_none());
        // The same guid written two ways is still repeated, and a blank one is none.
        let spelled = RSS
            .replace("<guid>1</guid>", "<guid>a&amp;b</guid>")
            .replace("<guid>2</guid>", "<guid>a&#38;b</guid>");
        assert!(Segments::scan(&spelled, &base()).is_none());
        let blank = RSS.replace("<guid>2</guid>", "<guid>&#32;</guid>");
        assert!(Segments::scan(&blank, &base()).is_none());
        for broken in [
            "<rss><channel><item><title>a</channel></rss>",
            "<rss><channel><item><title>a < b</title></item></channel></rss>",
            "<rss><channel><item><title>a</title></item></channel>",
        ] {
            assert!(Segments::scan(broken, &base()).is_none(), "{broken}");
        }
    }
}
