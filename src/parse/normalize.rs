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
    pub hub: Option<String>,
    pub topic: Option<String>,
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
    let mut found = text
        .match_indices(DECL)
        .filter(|&(at, _)| !inside_cdata(text, at))
        .peekable();
    found.peek()?;
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for (at, _) in found {
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

/// `<rss>` whose items sit directly under the root, with no `<channel>` (feed-rs requires one).
fn ensure_channel(text: Cow<'_, str>) -> Cow<'_, str> {
    if text.contains("<channel") {
        return text;
    }
    let Some(root) = find_root(&text) else { return text };
    if root.empty {
        return Cow::Owned(format!(
            "{}<rss version=\"2.0\"><channel></channel></rss>",
            &text[..root.start]
        ));
    }
    // The last `</rss` must come after the root's start tag (an attribute may hold `<rss`).
    let Some(close) = text.rfind("</rss").filter(|close| *close >= root.end) else {
        return text;
    };
    Cow::Owned(format!(
        "{}<channel>{}</channel>{}",
        &text[..root.end],
        &text[root.end..close],
        &text[close..]
    ))
}

/// Placeholder link for RSS 1.0 items that have none: feed-rs drops such items, feedparser
/// (and readers) keep them. `convert` removes it again.
pub(super) const NO_LINK: &str = "tributary:no-link";

/// RSS 1.0 items without `<link>` get one: their `rdf:about` (which the spec says should equal
/// the link), else [`NO_LINK`].
fn rss1_items(text: Cow<'_, str>) -> Cow<'_, str> {
    rewrite_items(text, |item| {
        if item.contains("<link") {
            return None;
        }
        let tag_end = item.find('>')?;
        let about = find_root(item)
            .and_then(|r| r.attr("rdf:about").map(str::to_string))
            .filter(|a| !a.trim().is_empty());
        let link = about.unwrap_or_else(|| NO_LINK.to_string());
        let (open, rest) = item.split_at(tag_end + 1);
        if open.ends_with("/>") {
            return None;
        }
        Some(format!(
            "{open}<link>{}</link>{rest}",
            quick_xml::escape::escape(link.as_str())
        ))
    })
}

/// An item without `<link>` whose `<guid>` is a permalink has its guid as its link: one marked
/// `isPermaLink="true"` (a relative one resolves like any link), or an unmarked one that is an
/// absolute http(s) URL (RSS 2.0 makes guids permalinks by default, but generators leave ids
/// like `1234` unmarked). A guid marked `isPermaLink="false"` is an id, never the story's
/// address.
fn permalinks_as_links(text: Cow<'_, str>) -> Cow<'_, str> {
    if !text.contains("<guid") {
        return text;
    }
    rewrite_items(text, |item| {
        if item.contains("<link") {
            return None;
        }
        let open = item.find("<guid")?;
        let tag_end = open + item[open..].find('>')?;
        let tag = &item[open..=tag_end];
        if tag.ends_with("/>") {
            return None;
        }
        let marked = tag
            .split("isPermaLink")
            .nth(1)
            .and_then(|rest| rest.split(['"', '\'']).nth(1))
            .map(|v| v.trim().eq_ignore_ascii_case("true"));
        let close = tag_end + item[tag_end..].find("</guid>")?;
        let guid = item[tag_end + 1..close].trim();
        let absolute = guid.starts_with("http://") || guid.starts_with("https://");
        if guid.is_empty() || !marked.unwrap_or(absolute) {
            return None;
        }
        let start_end = item.find('>')?;
        Some(format!(
            "{}<link>{guid}</link>{}",
            &item[..=start_end],
            &item[start_end + 1..]
        ))
    })
}

/// Items without a title or text of their own keep them elsewhere: a video's only text may be
/// `<media:description>`, a podcast's `<itunes:subtitle>` (feed-rs reads `<itunes:summary>`
/// itself, and Media RSS inside `<media:group>`), a video's only title `<media:title>`. Such an item gets them as its `<description>` and
/// `<title>`.
fn item_fallbacks(text: Cow<'_, str>) -> Cow<'_, str> {
    if !["<itunes:subtitle", "<media:title", "<media:description"]
        .iter()
        .any(|t| text.contains(t))
    {
        return text;
    }
    rewrite_items(text, |item| {
        let has_text = ["<description", "<content:encoded", "<itunes:summary"]
            .iter()
            .any(|t| item.contains(t));
        let description = (!has_text)
            .then(|| {
                element_content(item, "media:description")
                    .or_else(|| element_content(item, "itunes:subtitle"))
            })
            .flatten()
            .map(|s| format!("<description>{s}</description>"));
        let title = (!item.contains("<title"))
            .then(|| element_content(item, "media:title"))
            .flatten()
            .map(|t| format!("<title>{t}</title>"));
        if description.is_none() && title.is_none() {
            return None;
        }
        let start_end = item.find('>')?;
        Some(format!(
            "{}{}{}{}",
            &item[..=start_end],
            title.unwrap_or_default(),
            description.unwrap_or_default(),
            &item[start_end + 1..]
        ))
    })
}

/// The raw content of the first `<name …>…</name>` in `xml`.
fn element_content<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let open = xml.find(&format!("<{name}"))?;
    let tag_end = open + xml[open..].find('>')?;
    if xml[..=tag_end].ends_with("/>") {
        return None;
    }
    let close = tag_end + xml[tag_end..].find(&format!("</{name}>"))?;
    Some(&xml[tag_end + 1..close])
}

/// Items titled only with Dublin Core `<dc:title>` (seen in RSS written by DC-minded tools).
fn dc_title_as_title(text: Cow<'_, str>) -> Cow<'_, str> {
    if !text.contains("<dc:title") {
        return text;
    }
    rewrite_items(text, |item| {
        (!item.contains("<title") && item.contains("<dc:title")).then(|| {
            item.replacen("<dc:title", "<title", 1)
                .replacen("</dc:title", "</title", 1)
        })
    })
}

/// RSS descriptions hold HTML as escaped text (or CDATA); some publishers write the markup
/// as it is, so `<em>`, `<img>` or `<p>` arrive as child elements, which feed-rs passes over,
/// leaving the body empty. Such a description (and `content:encoded`) is rewritten as the
/// escaped HTML it meant, CDATA sections included. The flag says whether any was.
fn markup_in_descriptions(doc: Cow<'_, str>) -> (Cow<'_, str>, bool) {
    let mut doc = doc;
    let mut changed = false;
    for name in ["description", "content:encoded"] {
        if let Some(fixed) = escape_child_markup(&doc, name) {
            doc = Cow::Owned(fixed);
            changed = true;
        }
    }
    (doc, changed)
}

/// `doc` with every `<name>` element whose content has markup outside CDATA rewritten as
/// escaped text; `None` when there is none.
fn escape_child_markup(doc: &str, name: &str) -> Option<String> {
    let open = format!("<{name}");
    // memchr's substring search: this scan runs over every RSS body, and `str::find` was a
    // twentieth of a cold poll's parse.
    let finder = memchr::memmem::Finder::new(open.as_bytes());
    let mut out = String::new();
    let mut copied = 0;
    let mut from = 0;
    while let Some(found) = finder.find(&doc.as_bytes()[from..]) {
        let start = from + found;
        let after_name = start + open.len();
        from = after_name;
        if !doc[after_name..].starts_with(['>', ' ', '\t', '\r', '\n']) {
            continue;
        }
        let Some(tag_len) = doc[after_name..].find('>') else {
            break;
        };
        let content_start = after_name + tag_len + 1;
        if doc[..content_start].ends_with("/>") {
            continue;
        }
        let Some((len, close_len)) = end_tag(&doc[content_start..], name) else {
            break;
        };
        let content = &doc[content_start..content_start + len];
        from = content_start + len + close_len;
        if !has_markup_outside_cdata(content) {
            continue;
        }
        out.push_str(&doc[copied..content_start]);
        out.push_str(&quick_xml::escape::escape(
            html_of_mixed_content(content).as_str(),
        ));
        copied = content_start + len;
    }
    if copied == 0 {
        return None;
    }
    out.push_str(&doc[copied..]);
    Some(out)
}

/// Where `</name>` first ends an element in `text`, and how long the tag is: XML lets white
/// space stand before its `>` (`</description\n>`), which publishers' templates write.
fn end_tag(text: &str, name: &str) -> Option<(usize, usize)> {
    let open = format!("</{name}");
    let mut from = 0;
    while let Some(found) = memchr::memmem::find(&text.as_bytes()[from..], open.as_bytes()) {
        let at = from + found;
        let rest = &text[at + open.len()..];
        let space = rest.len() - rest.trim_start_matches([' ', '\t', '\r', '\n']).len();
        if rest[space..].starts_with('>') {
            return Some((at, open.len() + space + 1));
        }
        from = at + open.len();
    }
    None
}

fn has_markup_outside_cdata(content: &str) -> bool {
    let mut rest = content;
    while let Some(lt) = memchr::memchr(b'<', rest.as_bytes()) {
        match rest[lt..].strip_prefix("<![CDATA[") {
            Some(cdata) => match memchr::memmem::find(cdata.as_bytes(), b"]]>") {
                Some(end) => rest = &cdata[end + 3..],
                None => return false,
            },
            None => return rest[lt + 1..].starts_with(|c: char| c.is_alphabetic() || c == '/'),
        }
    }
    false
}

/// Mixed XML content as the HTML it stands for: text as it is (escaped XML text is escaped
/// HTML text), tags as they are, CDATA sections as their content.
fn html_of_mixed_content(content: &str) -> String {
    let mut html = String::with_capacity(content.len());
    let mut rest = content;
    let text = |t: &str, html: &mut String| html.push_str(t);
    while let Some(lt) = rest.find('<') {
        text(&rest[..lt], &mut html);
        let markup = &rest[lt..];
        if let Some(cdata) = markup.strip_prefix("<![CDATA[") {
            let end = cdata.find("]]>").unwrap_or(cdata.len());
            html.push_str(&cdata[..end]);
            rest = cdata.get(end + 3..).unwrap_or("");
        } else {
            let end = markup.find('>').map_or(markup.len(), |e| e + 1);
            html.push_str(&markup[..end]);
            rest = &markup[end..];
        }
    }
    text(rest, &mut html);
    html
}

/// RSS titles are read as HTML (publishers fill them with entities and markup), but the RSS
/// Advisory Board's profile has publishers mark a title as plain text by writing `&`, `<` and
/// `>` as character references (`&#x26;`, `&#x3C;`, `&#x3E;`), which is how Tributary writes its
/// own RSS. Such a reference in a `<title>` is kept a literal character through the HTML
/// reading: it becomes the escaped entity (`&amp;lt;`), which that reading turns back into `<`.
/// Documents without references to those characters are not copied.
fn plain_text_titles(text: Cow<'_, str>) -> Cow<'_, str> {
    if !text.contains("&#") {
        return text;
    }
    let mut out = String::new();
    let mut changed = false;
    let mut rest: &str = &text;
    while let Some(open) = rest.find("<title>") {
        let body_start = open + "<title>".len();
        let Some(len) = rest[body_start..].find("</title>") else {
            break;
        };
        let body = &rest[body_start..body_start + len];
        out.push_str(&rest[..body_start]);
        match literal_references(body) {
            Some(new) if !body.contains("<![CDATA[") => {
                changed = true;
                out.push_str(&new);
            }
            _ => out.push_str(body),
        }
        rest = &rest[body_start + len..];
    }
    if !changed {
        return text;
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// `body` with character references to `&`, `<` and `>` written as escaped entities; `None`
/// when it has none.
fn literal_references(body: &str) -> Option<String> {
    let mut out = String::new();
    let mut copied = 0;
    for (at, _) in body.match_indices("&#") {
        let after = &body[at + 2..];
        let Some(semi) = after.find(';').filter(|s| *s <= 8) else {
            continue;
        };
        let digits = &after[..semi];
        let code = match digits.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok(),
            None => digits.parse::<u32>().ok(),
        };
        let entity = match code {
            Some(0x26) => "&amp;amp;",
            Some(0x3C) => "&amp;lt;",
            Some(0x3E) => "&amp;gt;",
            _ => continue,
        };
        out.push_str(&body[copied..at]);
        out.push_str(entity);
        copied = at + 2 + semi + 1;
    }
    if copied == 0 {
        return None;
    }
    out.push_str(&body[copied..]);
    Some(out)
}

/// Applies `f` to the text of every `<item>…</item>` element (unprefixed name), keeping items
/// for which it returns `None` as they are (and the whole text, unchanged, when all are).
fn rewrite_items(text: Cow<'_, str>, f: impl Fn(&str) -> Option<String>) -> Cow<'_, str> {
    let mut out = String::new();
    let mut changed = false;
    let mut rest: &str = &text;
    while let Some(i) = rest.find("<item") {
        let after = &rest[i + 5..];
        let is_item = after.starts_with(|c: char| c.is_whitespace() || c == '>' || c == '/');
        let end = if is_item {
            after.find("</item>").map(|e| i + 5 + e + 7)
        } else {
            None
        };
        match end {
            Some(end) => {
                out.push_str(&rest[..i]);
                let item = &rest[i..end];
                match f(item) {
                    Some(new) => {
                        changed = true;
                        out.push_str(&new);
                    }
                    None => out.push_str(item),
                }
                rest = &rest[end..];
            }
            None => {
                out.push_str(&rest[..i + 5]);
                rest = &rest[i + 5..];
            }
        }
    }
    if !changed {
        return text;
    }
    out.push_str(rest);
    Cow::Owned(out)
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

/// The first `<feed>`, `<rss>` or `<rdf:RDF>` element below the root, as its own document.
fn find_embedded_feed(text: &str) -> Option<&str> {
    let mut reader = Reader::from_str(text);
    let mut found: Option<(usize, String)> = None;
    let mut depth = 0usize;
    loop {
        let before = usize::try_from(reader.buffer_position()).ok()?;
        match reader.read_event().ok()? {
            Event::Start(tag) => {
                if found.is_none() && matches!(tag.local_name().as_ref(), "feed" | "rss" | "RDF") {
                    let end = usize::try_from(reader.buffer_position()).ok()?;
                    let start = text[before..end].find('<').map_or(before, |i| before + i);
                    found = Some((start, tag.name().as_ref().to_string()));
                    depth = 0;
                }
                depth += 1;
            }
            Event::End(tag) => {
                depth = depth.saturating_sub(1);
                if let Some((start, name)) = &found
                    && depth == 0
                    && tag.name().as_ref() == name.as_str()
                {
                    let end = usize::try_from(reader.buffer_position()).ok()?;
                    return Some(&text[*start..end]);
                }
            }
            Event::Eof => return None,
            _ => {}
        }
    }
}

/// Atom 0.3 → Atom 1.0: the namespace, the renamed elements and the `mode`/`type` pair of text
/// constructs. Returns `None` if the document is not well-formed enough to rewrite.
fn translate_atom03(text: &str) -> Option<String> {
    use base64::Engine;
    let mut reader = Reader::from_str(text);
    let mut writer = Writer::new(Vec::with_capacity(text.len() + 64));
    // Inside a text construct in mode="base64": its text is decoded.
    let mut base64 = false;
    loop {
        let event = match reader.read_event().ok()? {
            Event::Eof => break,
            Event::Start(tag) => {
                base64 = atom03_is_base64(&tag);
                Event::Start(atom03_tag(&tag))
            }
            Event::Empty(tag) => Event::Empty(atom03_tag(&tag)),
            Event::End(tag) => {
                base64 = false;
                let name = tag.name().as_ref().to_string();
                Event::End(BytesEnd::new(atom03_rename(&name).to_string()))
            }
            Event::Text(t) if base64 => {
                let raw = t.xml_content(XmlVersion::Implicit1_0);
                let compact: String = raw.chars().filter(|c| !c.is_whitespace()).collect();
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(compact.as_bytes())
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .unwrap_or_else(|| raw.into_owned());
                Event::Text(BytesText::new(&decoded).into_owned())
            }
            other => other,
        };
        writer.write_event(event).ok()?;
    }
    String::from_utf8(writer.into_inner()).ok()
}

fn atom03_is_base64(tag: &BytesStart) -> bool {
    tag.attributes()
        .flatten()
        .any(|a| a.key.as_ref() == "mode" && a.value.eq_ignore_ascii_case("base64"))
}

fn atom03_rename(name: &str) -> &str {
    match name {
        "issued" => "published",
        "modified" => "updated",
        "tagline" => "subtitle",
        "copyright" => "rights",
        other => other,
    }
}

fn atom03_tag(tag: &BytesStart) -> BytesStart<'static> {
    let name = tag.name().as_ref().to_string();
    let new_name = atom03_rename(&name).to_string();
    let is_text_construct = matches!(
        new_name.as_str(),
        "title" | "subtitle" | "summary" | "content" | "rights" | "info"
    );
    let mut attrs: Vec<(String, String)> = tag
        .attributes()
        .flatten()
        .map(|a| {
            (
                a.key.as_ref().to_string(),
                a.normalized_value(XmlVersion::Implicit1_0)
                    .map(Cow::into_owned)
                    .unwrap_or_default(),
            )
        })
        .collect();
    let mut out = BytesStart::new(new_name);
    if is_text_construct {
        let get = |n: &str| {
            attrs
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.to_ascii_lowercase())
        };
        // Atom 0.3 defaults: mode="xml", type="text/plain".
        let mode = get("mode").unwrap_or_else(|| "xml".into());
        let mime = get("type").unwrap_or_else(|| "text/plain".into());
        let new_type = match (mode.as_str(), mime.as_str()) {
            // Decoded by the translation: what is left is the media type's text or HTML.
            ("base64", t) if t.contains("html") => "html".into(),
            ("base64", _) => "text".into(),
            (_, t) if t.contains("xhtml") => "xhtml".into(),
            ("xml", "text/html") => "xhtml".into(),
            (_, t) if t.contains("html") => "html".into(),
            _ => "text".into(),
        };
        attrs.retain(|(k, _)| k != "mode" && k != "type");
        attrs.push(("type".into(), new_type));
    }
    for (key, value) in &attrs {
        let value = if key == "xmlns" && value == ATOM_03_NS {
            ATOM_10_NS
        } else {
            value.as_str()
        };
        if key == "version" && value == "0.3" {
            continue;
        }
        out.push_attribute((key.as_str(), value));
    }
    out
}

/// Microsoft's Channel Definition Format (1997), which feedparser still reads: a `<CHANNEL>` of
/// `<ITEM HREF=…>` elements with `<TITLE>` and `<ABSTRACT>`, rewritten as RSS 2.0.
fn translate_cdf(text: &str) -> Result<String, ParseError> {
    #[derive(Default)]
    struct Item {
        href: Option<String>,
        title: String,
        abstract_: String,
        lastmod: Option<String>,
    }
    let mut reader = Reader::from_str(text);
    let mut channel = Item::default();
    let mut base: Option<url::Url> = None;
    let mut items: Vec<Item> = Vec::new();
    let mut in_item = false;
    let mut field: Option<&'static str> = None;
    let attr = |tag: &BytesStart, name: &str| {
        tag.attributes()
            .flatten()
            .find(|a| a.key.as_ref().eq_ignore_ascii_case(name))
            .and_then(|a| {
                a.normalized_value(XmlVersion::Implicit1_0)
                    .ok()
                    .map(Cow::into_owned)
            })
    };
    loop {
        let event = reader
            .read_event()
            .map_err(|e| ParseError::Malformed(format!("CDF: {e}")))?;
        match event {
            Event::Start(tag) | Event::Empty(tag) => {
                match tag.name().as_ref().to_ascii_uppercase().as_str() {
                    "CHANNEL" => {
                        base = attr(&tag, "BASE").and_then(|b| url::Url::parse(&b).ok());
                        channel.href = attr(&tag, "HREF");
                    }
                    "ITEM" => {
                        in_item = true;
                        items.push(Item {
                            href: attr(&tag, "HREF"),
                            lastmod: attr(&tag, "LASTMOD"),
                            ..Item::default()
                        });
                    }
                    "TITLE" => field = Some("title"),
                    "ABSTRACT" => field = Some("abstract"),
                    _ => {}
                }
            }
            Event::End(tag) => match tag.name().as_ref().to_ascii_uppercase().as_str() {
                "ITEM" => in_item = false,
                "TITLE" | "ABSTRACT" => field = None,
                _ => {}
            },
            Event::Text(_) | Event::CData(_) | Event::GeneralRef(_) => {
                if let Some(f) = field {
                    let target = if in_item {
                        items.last_mut().unwrap_or(&mut channel)
                    } else {
                        &mut channel
                    };
                    let s = event_text(&event);
                    if f == "title" {
                        target.title.push_str(&s)
                    } else {
                        target.abstract_.push_str(&s)
                    }
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    let resolve = |href: &str| match &base {
        Some(b) => b
            .join(href)
            .map(|u| u.to_string())
            .unwrap_or_else(|_| href.to_string()),
        None => href.to_string(),
    };
    let mut writer = Writer::new(Vec::new());
    let element = |w: &mut Writer<Vec<u8>>, name: &str, value: &str| {
        let _ = w.write_event(Event::Start(BytesStart::new(name)));
        let _ = w.write_event(Event::Text(BytesText::new(value)));
        let _ = w.write_event(Event::End(BytesEnd::new(name)));
    };
    let _ = writer.write_event(Event::Start(
        BytesStart::new("rss").with_attributes([("version", "2.0")]),
    ));
    let _ = writer.write_event(Event::Start(BytesStart::new("channel")));
    element(&mut writer, "title", channel.title.trim());
    if let Some(href) = &channel.href {
        element(&mut writer, "link", &resolve(href));
    }
    element(&mut writer, "description", channel.abstract_.trim());
    for item in &items {
        let _ = writer.write_event(Event::Start(BytesStart::new("item")));
        element(&mut writer, "title", item.title.trim());
        if let Some(href) = &item.href {
            element(&mut writer, "link", &resolve(href));
        }
        if !item.abstract_.trim().is_empty() {
            element(&mut writer, "description", item.abstract_.trim());
        }
        if let Some(lastmod) = &item.lastmod {
            element(&mut writer, "pubDate", lastmod);
        }
        let _ = writer.write_event(Event::End(BytesEnd::new("item")));
    }
    let _ = writer.write_event(Event::End(BytesEnd::new("channel")));
    let _ = writer.write_event(Event::End(BytesEnd::new("rss")));
    String::from_utf8(writer.into_inner()).map_err(|e| ParseError::Malformed(e.to_string()))
}

/// The character data of a text, CDATA or entity-reference event.
fn event_text(event: &Event<'_>) -> String {
    match event {
        Event::Text(t) => t.xml_content(XmlVersion::Implicit1_0).into_owned(),
        Event::CData(c) => c.xml_content(XmlVersion::Implicit1_0).into_owned(),
        Event::GeneralRef(r) => match r.resolve_char_ref() {
            Ok(Some(c)) => c.to_string(),
            _ => quick_xml::escape::resolve_predefined_entity(r.as_ref())
                .unwrap_or_default()
                .to_string(),
        },
        _ => String::new(),
    }
}

/// JSON Feed, coerced field by field into the shapes of the spec (jsonfeed.org/version/1.1),
/// because feed-rs's typed deserializer fails the whole feed on one field of the wrong type.
fn prepare_json(text: &str) -> Result<(String, Push), ParseError> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| ParseError::Malformed(format!("invalid JSON: {e}")))?;
    let Value::Object(mut feed) = value else {
        return Err(ParseError::NotAFeed("JSON that is not an object".into()));
    };
    if !matches!(feed.get("items"), Some(Value::Array(_))) {
        return Err(ParseError::NotAFeed(
            "JSON without an `items` array is not a JSON Feed".into(),
        ));
    }
    // Any version URL (http or https, 1 / 1.1, or a bare "1.0") is read as 1.1, a superset.
    feed.insert(
        "version".into(),
        Value::String("https://jsonfeed.org/version/1.1".into()),
    );
    if !matches!(feed.get("title"), Some(Value::String(_))) {
        feed.insert("title".into(), Value::String(String::new()));
    }
    for key in [
        "home_page_url",
        "feed_url",
        "language",
        "description",
        "icon",
        "favicon",
    ] {
        keep_if_string(&mut feed, key);
    }
    coerce_authors(&mut feed);
    // `hubs`: [{"type": "WebSub", "url": …}]; a hub of another type is not ours to use.
    let hub = match feed.get("hubs") {
        Some(Value::Array(hubs)) => hubs.iter().find_map(|h| {
            let kind = h.get("type").and_then(Value::as_str).unwrap_or("WebSub");
            let url = h.get("url").and_then(Value::as_str)?;
            kind.eq_ignore_ascii_case("websub").then(|| url.to_string())
        }),
        _ => None,
    };
    let push = Push {
        hub,
        topic: feed.get("feed_url").and_then(Value::as_str).map(str::to_string),
    };
    if let Some(Value::Array(items)) = feed.get_mut("items") {
        items.retain(Value::is_object);
        for item in items.iter_mut().filter_map(Value::as_object_mut) {
            coerce_item(item);
        }
    }
    let doc =
        serde_json::to_string(&Value::Object(feed)).map_err(|e| ParseError::Malformed(e.to_string()))?;
    Ok((doc, push))
}

fn coerce_item(item: &mut Map<String, Value>) {
    // Ids are strings by the spec, but numbers are common.
    match item.get("id") {
        Some(Value::Number(n)) => {
            let s = n.to_string();
            item.insert("id".into(), Value::String(s));
        }
        Some(Value::String(_)) => {}
        _ => {
            item.remove("id");
        }
    }
    for key in [
        "url",
        "external_url",
        "title",
        "content_html",
        "content_text",
        "summary",
        "date_published",
        "date_modified",
    ] {
        keep_if_string(item, key);
    }
    coerce_authors(item);
    let tags = match item.remove("tags") {
        Some(Value::String(s)) => s
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(|t| Value::String(t.into()))
            .collect(),
        Some(Value::Array(tags)) => tags.into_iter().filter(Value::is_string).collect(),
        _ => Vec::new(),
    };
    if !tags.is_empty() {
        item.insert("tags".into(), Value::Array(tags));
    }
    let attachments: Vec<Value> = match item.remove("attachments") {
        Some(Value::Array(list)) => list.into_iter().filter_map(coerce_attachment).collect(),
        _ => Vec::new(),
    };
    if !attachments.is_empty() {
        item.insert("attachments".into(), Value::Array(attachments));
    }
}

fn coerce_attachment(value: Value) -> Option<Value> {
    let Value::Object(mut a) = value else { return None };
    if !matches!(a.get("url"), Some(Value::String(_))) {
        return None;
    }
    if !matches!(a.get("mime_type"), Some(Value::String(_))) {
        a.insert(
            "mime_type".into(),
            Value::String("application/octet-stream".into()),
        );
    }
    keep_if_string(&mut a, "title");
    let size = match a.remove("size_in_bytes") {
        Some(Value::Number(n)) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    };
    if let Some(size) = size {
        a.insert("size_in_bytes".into(), Value::from(size));
    }
    a.remove("duration_in_seconds");
    Some(Value::Object(a))
}

fn coerce_authors(object: &mut Map<String, Value>) {
    let valid = |v: &Value| match v {
        Value::Object(o) => {
            let mut o = o.clone();
            keep_if_string(&mut o, "name");
            keep_if_string(&mut o, "url");
            o.retain(|k, _| k == "name" || k == "url");
            Some(Value::Object(o))
        }
        Value::String(name) => Some(serde_json::json!({ "name": name })),
        _ => None,
    };
    match object.get("author").map(valid) {
        Some(Some(a)) => {
            object.insert("author".into(), a);
        }
        Some(None) => {
            object.remove("author");
        }
        None => {}
    }
    match object.remove("authors") {
        Some(Value::Array(list)) => {
            let list: Vec<Value> = list.iter().filter_map(valid).collect();
            object.insert("authors".into(), Value::Array(list));
        }
        Some(single) => {
            if let Some(a) = valid(&single) {
                object.insert("authors".into(), Value::Array(vec![a]));
            }
        }
        None => {}
    }
}

fn keep_if_string(object: &mut Map<String, Value>, key: &str) {
    if object.get(key).is_some_and(|v| !v.is_string()) {
        object.remove(key);
    }
}

#[cfg(test)]
mod tests;
