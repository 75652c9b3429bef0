//! Recovers from feed-rs failing a whole feed because of one odd element.
//!
//! feed-rs reports some failures with the byte position of the element it choked on: an empty
//! `<media:description/>` ("missing text"), a `type` it does not know (a base64 title typed
//! `application/octet-stream`, or `type=""`). One such element should cost that element, not the
//! feed. [`repair`] fixes the document at that position: a base64 or mistyped text construct is
//! rewritten as plain text, anything else that is empty is removed (every empty element of that
//! name at once, so a feed with a hundred of them costs one retry, not a hundred), and a
//! non-empty offender is removed alone. The caller retries a bounded number of times.

use base64::Engine;
use quick_xml::Reader;
use quick_xml::events::Event;

/// What feed-rs told us about a failure it could place.
pub(super) enum Fault<'a> {
    UnknownType { position: u64, mime: &'a str },
    Other { position: u64 },
}

/// A repaired document, or `None` when the fault cannot be located or fixed.
pub(super) fn repair(text: &str, fault: Fault<'_>) -> Option<String> {
    let position = match fault {
        Fault::UnknownType { position, .. } | Fault::Other { position } => usize::try_from(position).ok()?,
    };
    let element = Element::at(text, position)?;
    match fault {
        Fault::UnknownType { mime, .. } => Some(retype_as_text(text, &element, mime)),
        Fault::Other { .. } if element.is_empty(text) => Some(remove_empty_named(text, &element.name)),
        Fault::Other { .. } => Some(format!("{}{}", &text[..element.start], &text[element.end..])),
    }
}

/// One element located in the text: its start tag, content and end.
struct Element {
    name: String,
    start: usize,
    content_start: usize,
    content_end: usize,
    end: usize,
}

impl Element {
    /// The element whose start tag ends at `position` (feed-rs reports the position just past it).
    fn at(text: &str, position: usize) -> Option<Element> {
        let position = position.min(text.len());
        let start = text.get(..position)?.rfind('<')?;
        let tag = &text[start + 1..position];
        let name: String = tag
            .chars()
            .take_while(|c| !c.is_whitespace() && *c != '>' && *c != '/')
            .collect();
        if name.is_empty() {
            return None;
        }
        if tag.trim_end().ends_with("/>") || tag.trim_end().ends_with('/') {
            return Some(Element {
                name,
                start,
                content_start: position,
                content_end: position,
                end: position,
            });
        }
        let mut reader = Reader::from_str(&text[start..]);
        let mut depth = 0usize;
        loop {
            let before = usize::try_from(reader.buffer_position()).ok()?;
            match reader.read_event().ok()? {
                Event::Start(_) => depth += 1,
                Event::End(_) => {
                    depth = depth.checked_sub(1)?;
                    if depth == 0 {
                        let after = usize::try_from(reader.buffer_position()).ok()?;
                        return Some(Element {
                            name,
                            start,
                            content_start: position,
                            content_end: start + before,
                            end: start + after,
                        });
                    }
                }
                Event::Eof => return None,
                _ => {}
            }
        }
    }

    fn is_empty(&self, text: &str) -> bool {
        text[self.content_start..self.content_end].trim().is_empty()
    }
}

/// Rewrites a text construct with an unusable `type` as the plain text it most likely holds:
/// the base64 decoding when the content is base64 (RFC 4287 §3.1.1.3 allows any media type,
/// base64-encoded), else the content as it is.
fn retype_as_text(text: &str, element: &Element, mime: &str) -> String {
    let raw = &text[element.content_start..element.content_end];
    let compact: String = raw.chars().filter(|c| !c.is_whitespace()).collect();
    let decoded = (!mime.trim().is_empty() && !mime.starts_with("text/"))
        .then(|| {
            base64::engine::general_purpose::STANDARD
                .decode(compact.as_bytes())
                .ok()
        })
        .flatten()
        .and_then(|bytes| String::from_utf8(bytes).ok());
    let body = match decoded {
        Some(d) => quick_xml::escape::escape(d.as_str()).into_owned(),
        None => raw.to_string(),
    };
    let kind = if mime.contains("html") { "html" } else { "text" };
    format!(
        "{}<{name} type=\"{kind}\">{body}</{name}>{}",
        &text[..element.start],
        &text[element.end..],
        name = element.name
    )
}

/// Removes every element named `name` that has no content (self-closing or whitespace only).
fn remove_empty_named(text: &str, name: &str) -> String {
    let open = format!("<{name}");
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut offset = 0;
    while let Some(i) = rest.find(&open) {
        let at = offset + i;
        let after_name = at + open.len();
        let boundary = text[after_name..].chars().next();
        let removable = matches!(boundary, Some(c) if c.is_whitespace() || c == '>' || c == '/')
            .then(|| {
                let tag_end = text[after_name..].find('>')? + after_name + 1;
                let el = Element::at(text, tag_end)?;
                (el.start == at && el.is_empty(text)).then_some(el.end)
            })
            .flatten();
        match removable {
            Some(end) => {
                out.push_str(&text[offset..at]);
                offset = end;
            }
            None => {
                out.push_str(&text[offset..after_name]);
                offset = after_name;
            }
        }
        rest = &text[offset..];
    }
    out.push_str(&text[offset..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_elements_of_the_name_are_removed() {
        let doc = "<item><media:description/><title>a</title><media:description> </media:description>\
                   <media:description>kept</media:description></item>";
        let pos = doc.find("/>").unwrap() + 2;
        let out = repair(doc, Fault::Other { position: pos as u64 }).unwrap();
        assert_eq!(
            out,
            "<item><title>a</title><media:description>kept</media:description></item>"
        );
    }

    #[test]
    fn base64_title_is_decoded() {
        let doc = "<entry><title type=\"application/octet-stream\">\n RXhhbXBsZSA8Yj5BdG9tPC9iPg==\n</title></entry>";
        let pos = doc.find("\">").unwrap() + 2;
        let out = repair(
            doc,
            Fault::UnknownType {
                position: pos as u64,
                mime: "application/octet-stream",
            },
        )
        .unwrap();
        assert_eq!(
            out,
            "<entry><title type=\"text\">Example &lt;b&gt;Atom&lt;/b&gt;</title></entry>"
        );
    }
}
