//! Rewrites real-world documents into forms feed-rs reads, before it sees them.
//!
//! feed-rs 3.0 rejects or silently empties several kinds of feed that are common in the wild
//! (measured against `shared/corpus`): `<rss>` without a `version`, Atom 0.3 and RSS 0.90
//! (parsed with zero entries and no error), a lowercase `<rdf>` root, a feed wrapped in an XHTML
//! page, Microsoft CDF, JSON Feed with an `http://` version URL, a missing version, or fields of
//! the wrong JSON type. Each fix here maps a legacy or sloppy form onto the modern one feed-rs
//! understands, so that no feed is lost and the conversion code stays single-format.

use std::borrow::Cow;

use quick_xml::Writer;
use quick_xml::events::{BytesEnd, BytesStart, BytesText, Event};
use quick_xml::{Reader, XmlVersion};
use serde_json::{Map, Value};

use super::ParseError;

mod dialects;
mod items;
mod json;

use dialects::{find_embedded_feed, translate_atom03, translate_cdf};
pub(super) use items::NO_LINK;
use items::{
    dc_title_as_title, ensure_channel, item_fallbacks, markup_in_descriptions, permalinks_as_links,
    plain_text_titles, rss1_items,
};
use json::prepare_json;

const ATOM_03_NS: &str = "http://purl.org/atom/ns#";
const ATOM_10_NS: &str = "http://www.w3.org/2005/Atom";
/// RSS 0.90 appeared under two namespace URIs.
const RSS_090_NS: &[&str] = &[
    "http://my.netscape.com/rdf/simple/0.9/",
    "http://channel.netscape.com/rdf/simple/0.9/",
];
const RSS_10_NS: &str = "http://purl.org/rss/1.0/";

/// A document ready for feed-rs.
#[derive(Debug)]
pub(super) enum Prepared<'a> {
    /// Borrowed when the document needed no fix (the common case: no copy).
    Xml(Cow<'a, str>),
    /// A JSON Feed, and what feed-rs does not read of it: its WebSub hub and `feed_url`.
    Json(String, Push),
}

/// Where a JSON Feed says it is pushed from (`hubs`) and published as (`feed_url`): feed-rs
/// reads neither as such.
#[derive(Debug, Default)]
pub(super) struct Push {
    pub(crate) hub: Option<String>,
    pub(crate) topic: Option<String>,
}

/// Sniffs JSON or XML and applies the fixes each needs; fixes of sloppy markup (rather than
/// of legacy forms) are noted in `repairs`.
pub(super) fn prepare<'a>(
    text: &'a str,
    repairs: &mut std::collections::BTreeSet<super::Repair>,
) -> Result<Prepared<'a>, ParseError> {
    let text = text.trim_start_matches(['\u{feff}', ' ', '\t', '\r', '\n']);
    match text.as_bytes().first() {
        Some(b'{') => prepare_json(text).map(|(doc, push)| Prepared::Json(doc, push)),
        Some(b'<') => {
            let doc = prepare_xml(text)?;
            let (doc, markup) = markup_in_descriptions(doc);
            if markup {
                repairs.insert(super::Repair::Markup);
            }
            Ok(Prepared::Xml(doc))
        }
        Some(_) => Err(ParseError::NotAFeed("the body is neither XML nor JSON".into())),
        None => Err(ParseError::NotAFeed("the body is empty".into())),
    }
}

fn prepare_xml(text: &str) -> Result<Cow<'_, str>, ParseError> {
    // The text is UTF-8 now; a declaration naming another encoding would make feed-rs (through
    // quick-xml) decode it a second time.
    let text = strip_xml_declaration(text);
    if let Some(cleaned) = without_stray_declarations(text) {
        return prepare_xml(&cleaned).map(|doc| Cow::Owned(doc.into_owned()));
    }
    let root = find_root(text).ok_or_else(|| ParseError::NotAFeed("no root element".into()))?;
    if let Some(unprefixed) = unbound_root_prefix(text, &root) {
        return prepare_xml(&unprefixed).map(|doc| Cow::Owned(doc.into_owned()));
    }
    if let Some(fixed) = fix_root(text, &root)? {
        return Ok(fixed);
    }
    // Not a feed root: a feed embedded in another document (an XHTML page, say) is still a feed.
    let embedded = find_embedded_feed(text).ok_or_else(|| {
        ParseError::NotAFeed(format!(
            "the root element <{}> is not RSS, Atom or RDF",
            root.qname
        ))
    })?;
    let inner_root = find_root(embedded).ok_or_else(|| ParseError::NotAFeed("no root element".into()))?;
    Ok(fix_root(embedded, &inner_root)?.unwrap_or(Cow::Borrowed(embedded)))
}

/// A document whose every element carries a prefix it never declares (`<rss:rss>`,
/// `<rss:item>`): to a namespace-aware reader they are nobody's elements, and the document reads
/// as an empty feed, a silent loss. Such a prefix on the root is dropped from every tag, so the
/// elements are what they were meant to be. A prefix declared anywhere is left alone.
fn unbound_root_prefix(text: &str, root: &Root) -> Option<String> {
    let (prefix, _) = root.qname.split_once(':')?;
    if prefix == "xml" || text.contains(&format!("xmlns:{prefix}=")) {
        return None;
    }
    Some(
        text.replace(&format!("<{prefix}:"), "<")
            .replace(&format!("</{prefix}:"), "</"),
    )
}

fn strip_xml_declaration(text: &str) -> &str {
    if text.starts_with("<?xml")
        && let Some(end) = text.find("?>")
    {
        return &text[end + 2..];
    }
    text
}

/// Removes `<?xml …?>` declarations after the start of the document (pasted-together feeds carry
/// them). They are not well-formed there, and quick-xml panics on one that names an encoding.
/// `None` when there are none, the common case, so nothing is copied.
fn without_stray_declarations(text: &str) -> Option<String> {
    const DECL: &str = "<?xml";
    // memchr's substring search: this reads every body whole, nearly always to find nothing.
    let mut found = memchr::memmem::find_iter(text.as_bytes(), DECL)
        .filter(|&at| !inside_cdata(text, at))
        .peekable();
    found.peek()?;
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for at in found {
        if at < copied {
            continue;
        }
        let end = text[at..].find("?>").map_or(text.len(), |close| at + close + 2);
        out.push_str(&text[copied..at]);
        copied = end;
    }
    out.push_str(&text[copied..]);
    Some(out)
}

/// Whether byte `at` lies inside a CDATA section (where `<?xml` is just text).
fn inside_cdata(text: &str, at: usize) -> bool {
    let before = &text[..at];
    before
        .rfind("<![CDATA[")
        .is_some_and(|open| before[open..].find("]]>").is_none())
}

struct Root {
    qname: String,
    local: String,
    /// Byte range of the start tag.
    start: usize,
    end: usize,
    empty: bool,
    attributes: Vec<(String, String)>,
}

impl Root {
    fn attr(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

fn find_root(text: &str) -> Option<Root> {
    let mut reader = Reader::from_str(text);
    loop {
        let start = usize::try_from(reader.buffer_position()).ok()?;
        let (tag, empty) = match reader.read_event().ok()? {
            Event::Start(tag) => (tag, false),
            Event::Empty(tag) => (tag, true),
            Event::Eof => return None,
            _ => continue,
        };
        let end = usize::try_from(reader.buffer_position()).ok()?;
        let qname = tag.name().as_ref().to_string();
        let local = tag.local_name().as_ref().to_string();
        let attributes = tag
            .attributes()
            .flatten()
            .map(|a| {
                let value = a
                    .normalized_value(XmlVersion::Implicit1_0)
                    .map(Cow::into_owned)
                    .unwrap_or_default();
                (a.key.as_ref().to_string(), value)
            })
            .collect();
        // The reader may have consumed leading text; the tag starts at its '<'.
        let start = text[start..end].find('<').map_or(start, |i| start + i);
        return Some(Root {
            qname,
            local,
            start,
            end,
            empty,
            attributes,
        });
    }
}

/// Applies the fix a known root needs; `None` when the root is not a feed at all.
fn fix_root<'a>(text: &'a str, root: &Root) -> Result<Option<Cow<'a, str>>, ParseError> {
    let fixed = match root.local.as_str() {
        "rss" => {
            // The versions feed-rs dispatches on; anything else (missing, 0.93, 0.94, 2.01) is
            // read as RSS 2.0, which is a superset of them all. RSS has no namespace: one that
            // UserLand once gave it (`xmlns="http://backend.userland.com/rss2"`) would hide
            // every element from feed-rs, so a default namespace on the root goes.
            let version_ok = matches!(root.attr("version"), Some("2.0" | "0.91" | "0.92"));
            let versioned = if version_ok && root.attr("xmlns").is_none() {
                Cow::Borrowed(text)
            } else {
                let version = if version_ok {
                    root.attr("version").unwrap_or("2.0")
                } else {
                    "2.0"
                };
                Cow::Owned(rewrite_root_tag(text, root, &["xmlns"], ("version", version)))
            };
            plain_text_titles(permalinks_as_links(item_fallbacks(dc_title_as_title(
                ensure_channel(versioned),
            ))))
        }
        "feed" if root.attr("xmlns") == Some(ATOM_03_NS) || root.attr("version") == Some("0.3") => {
            translate_atom03(text).map_or(Cow::Borrowed(text), Cow::Owned)
        }
        "feed" | "entry" => Cow::Borrowed(text),
        "RDF" => {
            let mut doc = Cow::Borrowed(text);
            for ns in RSS_090_NS {
                if doc.contains(ns) {
                    doc = Cow::Owned(doc.replace(ns, RSS_10_NS));
                }
            }
            rss1_items(doc)
        }
        // A bare lowercase <rdf> root, as some generators write RSS 1.0.
        "rdf" => rss1_items(Cow::Owned(rename_root(text, root, "RDF"))),
        "CHANNEL" | "channel" => Cow::Owned(translate_cdf(text)?),
        _ => return Ok(None),
    };
    Ok(Some(fixed))
}

/// Rewrites the root start tag without the attributes `drop`, and with `set` set.
fn rewrite_root_tag(text: &str, root: &Root, drop: &[&str], set: (&str, &str)) -> String {
    let mut tag = BytesStart::new(root.qname.as_str());
    for (name, v) in root
        .attributes
        .iter()
        .filter(|(n, _)| n != set.0 && !drop.contains(&n.as_str()))
    {
        tag.push_attribute((name.as_str(), v.as_str()));
    }
    tag.push_attribute(set);
    let mut out = Vec::with_capacity(text.len() + 16);
    out.extend_from_slice(&text.as_bytes()[..root.start]);
    let event = if root.empty {
        Event::Empty(tag)
    } else {
        Event::Start(tag)
    };
    let mut writer = Writer::new(&mut out);
    // Writing to a Vec cannot fail.
    let _ = writer.write_event(event);
    out.extend_from_slice(&text.as_bytes()[root.end..]);
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

fn rename_root(text: &str, root: &Root, new_name: &str) -> String {
    let open = format!("<{}", root.qname);
    let close = format!("</{}", root.qname);
    let mut out = String::with_capacity(text.len());
    out.push_str(&text[..root.start]);
    out.push('<');
    out.push_str(new_name);
    let rest = &text[root.start + open.len()..];
    match rest.rfind(&close) {
        Some(i) => {
            out.push_str(&rest[..i]);
            out.push_str("</");
            out.push_str(new_name);
            out.push_str(&rest[i + close.len()..]);
        }
        None => out.push_str(rest),
    }
    out
}

#[cfg(test)]
mod tests;
