//! Reads an ill-formed document the way a loose parser does, when the strict parse failed:
//! it is rewritten as well-formed XML that keeps everything readable in it, and says what it
//! repaired.
//!
//! The real web's ill-formed feeds fail in a few ways (measured against `shared/corpus` and
//! the feeds feedparser still reads): a bare `&` or an HTML entity XML does not define
//! (`&nbsp;`), which fails every entry; a document cut off (in a tag, inside CDATA); an end tag
//! that does not match (an element left open, a stray close); items inside an element never
//! closed. The rewrite escapes bare ampersands and spells HTML entities as character
//! references, drops what was cut off and closes what was left open at the end, closes
//! elements an end tag skips over and drops end tags that close nothing, and closes whatever is
//! open around a new `<item>` / `<entry>` down to the element that holds items. Every complete
//! item before the damage is kept; so is a last item cut short, as feedparser keeps it.

use std::collections::BTreeSet;

use super::Repair;

/// Deeper than this, start and end tags are dropped and their text kept: no feed nests
/// elements this deep, and a parser bomb of 100,000 nested elements (which the XML reader
/// refuses whole, at 65,535) then costs one field, not the feed.
const MAX_DEPTH: usize = 256;

/// Elements that hold items, by the item element's name.
fn holds(container: &str, item: &str) -> bool {
    match item {
        "item" => matches!(container, "channel" | "rdf:RDF" | "RDF" | "rss"),
        "entry" => container == "feed",
        _ => false,
    }
}

/// The document rewritten well-formed, and what was repaired; `None` when nothing needed it.
pub(super) fn salvage(text: &str) -> Option<(String, BTreeSet<Repair>)> {
    let mut s = Salvager {
        out: String::with_capacity(text.len() + 64),
        stack: Vec::new(),
        flattened: 0,
        repairs: BTreeSet::new(),
    };
    s.run(text);
    (!s.repairs.is_empty()).then_some((s.out, s.repairs))
}

struct Salvager {
    out: String,
    stack: Vec<String>,
    /// How many of the innermost open elements were dropped for their depth (they are
    /// always the top of the stack: everything past [`MAX_DEPTH`] is).
    flattened: usize,
    repairs: BTreeSet<Repair>,
}

impl Salvager {
    fn run(&mut self, text: &str) {
        let mut rest = text;
        while !rest.is_empty() {
            let Some(lt) = rest.find('<') else {
                self.text(rest);
                break;
            };
            self.text(&rest[..lt]);
            rest = &rest[lt..];
            let consumed = if let Some(body) = rest.strip_prefix("<![CDATA[") {
                match body.find("]]>") {
                    Some(end) => {
                        self.out.push_str(&rest[..9 + end + 3]);
                        Some(9 + end + 3)
                    }
                    None => {
                        // Cut off inside CDATA: what arrived of it is kept, as text.
                        self.repairs.insert(Repair::Truncated);
                        self.out.push_str("<![CDATA[");
                        self.out.push_str(body);
                        self.out.push_str("]]>");
                        None
                    }
                }
            } else if rest.starts_with("<!--") {
                rest.find("-->").map(|end| {
                    self.out.push_str(&rest[..end + 3]);
                    end + 3
                })
            } else if rest.starts_with("<?") {
                rest.find("?>").map(|end| {
                    // Processing instructions are kept before the root only; declarations
                    // later in the text (pasted-together feeds) are not well-formed there.
                    if self.stack.is_empty() && self.out.trim().is_empty() {
                        self.out.push_str(&rest[..end + 2]);
                    }
                    end + 2
                })
            } else if rest.starts_with("<!") {
                // A doctype: dropped, internal subset and all (its entities were never ours to
                // expand; references to them become text).
                let end = if rest.contains('[') {
                    rest.find("]>").map(|e| e + 2)
                } else {
                    rest.find('>').map(|e| e + 1)
                };
                if end.is_some() {
                    self.repairs.insert(Repair::Structure);
                }
                end
            } else if let Some(after) = rest.strip_prefix("</") {
                after.find('>').map(|end| {
                    let name = after[..end].trim().to_string();
                    self.end(&name);
                    2 + end + 1
                })
            } else if rest[1..].starts_with(|c: char| c.is_alphabetic() || c == '_' || c == ':') {
                tag_end(rest).inspect(|&end| {
                    self.start(&rest[..end]);
                })
            } else {
                // A `<` that starts no markup: text.
                self.repairs.insert(Repair::Entities);
                self.out.push_str("&lt;");
                Some(1)
            };
            match consumed {
                Some(n) => rest = &rest[n..],
                None => {
                    // Cut off inside markup: the rest is lost.
                    self.repairs.insert(Repair::Truncated);
                    break;
                }
            }
        }
        if !self.stack.is_empty() {
            self.repairs.insert(Repair::Truncated);
        }
        while let Some(open) = self.stack.pop() {
            self.close(&open);
        }
    }

    fn text(&mut self, text: &str) {
        let fixed = fix_entities(text, &mut self.repairs);
        self.out.push_str(&fixed);
    }

    /// A start tag (`<name …>` or `<name …/>`), raw.
    fn start(&mut self, raw: &str) {
        let inner = raw[1..raw.len() - 1].trim_end();
        let empty = inner.ends_with('/');
        let inner = inner.trim_end_matches('/');
        let name_len = inner.find(|c: char| c.is_whitespace()).unwrap_or(inner.len());
        let name = &inner[..name_len];
        if matches!(name, "item" | "entry") {
            // An item opens where items are held: whatever is open inside that holder (a
            // previous item never closed, an element left open) is closed first.
            if let Some(at) = self.stack.iter().rposition(|open| holds(open, name))
                && at + 1 < self.stack.len()
            {
                self.repairs.insert(Repair::Structure);
                while self.stack.len() > at + 1 {
                    if let Some(open) = self.stack.pop() {
                        self.close(&open);
                    }
                }
            }
        }
        if self.stack.len() >= MAX_DEPTH {
            self.repairs.insert(Repair::Depth);
            if !empty {
                self.stack.push(name.to_string());
                self.flattened += 1;
            }
            return;
        }
        let attributes = fix_entities(&inner[name_len..], &mut self.repairs);
        self.out.push('<');
        self.out.push_str(name);
        self.out.push_str(&attributes);
        if empty {
            self.out.push_str("/>");
        } else {
            self.out.push('>');
            self.stack.push(name.to_string());
        }
    }

    fn end(&mut self, name: &str) {
        match self.stack.iter().rposition(|open| open == name) {
            Some(at) => {
                if at + 1 < self.stack.len() {
                    self.repairs.insert(Repair::Structure);
                }
                while self.stack.len() > at {
                    if let Some(open) = self.stack.pop() {
                        self.close(&open);
                    }
                }
            }
            // Closes nothing that is open: dropped.
            None => {
                self.repairs.insert(Repair::Structure);
            }
        }
    }

    fn close(&mut self, name: &str) {
        if self.flattened > 0 {
            self.flattened -= 1;
            return;
        }
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
    }
}

/// Where the tag starting `text` ends (just past its `>`), quotes respected.
fn tag_end(text: &str) -> Option<usize> {
    let mut quote = None;
    for (i, c) in text.char_indices().skip(1) {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '>') => return Some(i + 1),
            // A new tag before this one closed: it was cut short.
            (None, '<') => return None,
            _ => {}
        }
    }
    None
}

/// `text` with every `&` that starts no XML reference escaped, and HTML's named entities
/// (which XML does not define) spelled as character references.
pub(super) fn fix_entities(text: &str, repairs: &mut BTreeSet<Repair>) -> String {
    if !text.contains('&') {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 16);
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let reference = after
            .find(';')
            .filter(|&semi| semi > 0 && semi <= 32)
            .map(|semi| &after[..semi]);
        match reference {
            Some(r) if is_xml_reference(r) => {
                out.push('&');
                out.push_str(r);
                out.push(';');
                rest = &after[r.len() + 1..];
            }
            Some(r) if r.chars().all(|c| c.is_ascii_alphanumeric()) => {
                let entity = format!("&{r};");
                let decoded = html_escape::decode_html_entities(&entity);
                if decoded != entity {
                    for c in decoded.chars() {
                        out.push_str(&format!("&#x{:X};", u32::from(c)));
                    }
                } else {
                    out.push_str("&amp;");
                    out.push_str(r);
                    out.push(';');
                }
                repairs.insert(Repair::Entities);
                rest = &after[r.len() + 1..];
            }
            _ => {
                repairs.insert(Repair::Entities);
                out.push_str("&amp;");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// An XML-defined entity or a character reference to a character XML allows.
fn is_xml_reference(r: &str) -> bool {
    if matches!(r, "amp" | "lt" | "gt" | "quot" | "apos") {
        return true;
    }
    let code = match r.strip_prefix('#') {
        Some(n) => match n.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok(),
            None => n.parse::<u32>().ok(),
        },
        None => None,
    };
    code.and_then(char::from_u32).is_some_and(
        |c| matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed(s: &str) -> String {
        salvage(s).map_or_else(|| s.to_string(), |(doc, _)| doc)
    }

    /// A parser bomb of nesting costs the field it is in: the elements past the limit are
    /// dropped, their text kept, and everything after them is read as it was.
    #[test]
    fn elements_nested_past_the_limit_are_flattened() {
        let doc = format!(
            "<rss><channel><item><title>{}deep{}</title></item><item><title>next</title></item></channel></rss>",
            "<b>".repeat(10_000),
            "</b>".repeat(10_000)
        );
        let (out, repairs) = salvage(&doc).unwrap();
        assert!(repairs.contains(&Repair::Depth));
        assert_eq!(out.matches("<b>").count(), MAX_DEPTH - 4, "{}", &out[..200]);
        assert_eq!(out.matches("<b>").count(), out.matches("</b>").count());
        assert!(out.contains("deep") && out.ends_with("<item><title>next</title></item></channel></rss>"));
    }

    #[test]
    fn entities_and_ampersands() {
        let mut r = BTreeSet::new();
        assert_eq!(fix_entities("Fish & Chips", &mut r), "Fish &amp; Chips");
        assert_eq!(fix_entities("a&nbsp;b &eacute;", &mut r), "a&#xA0;b &#xE9;");
        assert_eq!(
            fix_entities("&amp; &#38; &#x26; ok", &mut r),
            "&amp; &#38; &#x26; ok"
        );
        assert_eq!(
            fix_entities("&bogus; &#0; x&y=1", &mut r),
            "&amp;bogus; &amp;#0; x&amp;y=1"
        );
        assert!(r.contains(&Repair::Entities));
    }

    #[test]
    fn structure_is_mended() {
        assert_eq!(fixed("<a><b>x</a>"), "<a><b>x</b></a>");
        assert_eq!(fixed("<a>x</b></a>"), "<a>x</a>");
        assert_eq!(fixed("<a><b>x"), "<a><b>x</b></a>");
        assert_eq!(fixed("<a><b>x</b><c"), "<a><b>x</b></a>");
        assert_eq!(fixed("<a>x<![CDATA[y"), "<a>x<![CDATA[y]]></a>");
        assert_eq!(
            fixed("<channel><cat><item>1</item><item>2</item></channel>"),
            "<channel><cat></cat><item>1</item><item>2</item></channel>"
        );
        assert_eq!(fixed("<a>1 < 2</a>"), "<a>1 &lt; 2</a>");
        assert_eq!(
            fixed("<a href=\"x?a=1&b=2\">t</a>"),
            "<a href=\"x?a=1&amp;b=2\">t</a>"
        );
        assert!(salvage("<a><b>fine</b></a>").is_none(), "nothing to repair");
    }
}
