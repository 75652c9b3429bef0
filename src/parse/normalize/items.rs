//! Repairs of RSS documents and their items before feed-rs reads them: a missing channel,
//! RSS 1.0 items outside it, permalinks, fallbacks for items without links or titles, markup
//! written unescaped in descriptions, and titles marked as plain text.

use super::*;

/// `<rss>` whose items sit directly under the root, with no `<channel>` (feed-rs requires one).
pub(super) fn ensure_channel(text: Cow<'_, str>) -> Cow<'_, str> {
    if has(&text, "<channel") {
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
pub(in crate::parse) const NO_LINK: &str = "tributary:no-link";

/// RSS 1.0 items without `<link>` get one: their `rdf:about` (which the spec says should equal
/// the link), else [`NO_LINK`].
pub(super) fn rss1_items(text: Cow<'_, str>) -> Cow<'_, str> {
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
pub(super) fn permalinks_as_links(text: Cow<'_, str>) -> Cow<'_, str> {
    if !has(&text, "<guid") {
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
pub(super) fn item_fallbacks(text: Cow<'_, str>) -> Cow<'_, str> {
    if !["<itunes:subtitle", "<media:title", "<media:description"]
        .iter()
        .any(|t| has(&text, t))
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
pub(super) fn element_content<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let open = xml.find(&format!("<{name}"))?;
    let tag_end = open + xml[open..].find('>')?;
    if xml[..=tag_end].ends_with("/>") {
        return None;
    }
    let close = tag_end + xml[tag_end..].find(&format!("</{name}>"))?;
    Some(&xml[tag_end + 1..close])
}

/// Items titled only with Dublin Core `<dc:title>` (seen in RSS written by DC-minded tools).
pub(super) fn dc_title_as_title(text: Cow<'_, str>) -> Cow<'_, str> {
    if !has(&text, "<dc:title") {
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
pub(super) fn markup_in_descriptions(doc: Cow<'_, str>) -> (Cow<'_, str>, bool) {
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
pub(super) fn escape_child_markup(doc: &str, name: &str) -> Option<String> {
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
pub(super) fn end_tag(text: &str, name: &str) -> Option<(usize, usize)> {
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

pub(super) fn has_markup_outside_cdata(content: &str) -> bool {
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
pub(super) fn html_of_mixed_content(content: &str) -> String {
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
pub(super) fn plain_text_titles(text: Cow<'_, str>) -> Cow<'_, str> {
    if !has(&text, "&#") {
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
pub(super) fn literal_references(body: &str) -> Option<String> {
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
pub(super) fn rewrite_items(text: Cow<'_, str>, f: impl Fn(&str) -> Option<String>) -> Cow<'_, str> {
    let open = memchr::memmem::Finder::new("<item");
    let close = memchr::memmem::Finder::new("</item>");
    // Made at the first item that changes: most documents have none, and copying every body
    // whole only to throw the copy away was most of this pass.
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut from = 0;
    while let Some(found) = open.find(&text.as_bytes()[from..]) {
        let i = from + found;
        let after = &text[i + 5..];
        let is_item = after.starts_with(|c: char| c.is_whitespace() || c == '>' || c == '/');
        let end = match is_item {
            true => close.find(after.as_bytes()).map(|e| i + 5 + e + 7),
            false => None,
        };
        let Some(end) = end else {
            from = i + 5;
            continue;
        };
        if let Some(new) = f(&text[i..end]) {
            let out = out.get_or_insert_with(|| String::with_capacity(text.len() + 256));
            out.push_str(&text[copied..i]);
            out.push_str(&new);
            copied = end;
        }
        from = end;
    }
    match out {
        None => text,
        Some(mut out) => {
            out.push_str(&text[copied..]);
            Cow::Owned(out)
        }
    }
}

/// Whether `needle` is in `text`, by memchr's substring search: the checks that decide
/// whether a pass is needed read every RSS body whole, mostly to find nothing.
fn has(text: &str, needle: &str) -> bool {
    memchr::memmem::find(text.as_bytes(), needle.as_bytes()).is_some()
}
