//! Formats feed-rs does not read, translated into ones it does: Atom 0.3, Microsoft's CDF, and
//! a feed embedded in another document.

use super::*;

/// The first `<feed>`, `<rss>` or `<rdf:RDF>` element below the root, as its own document.
pub(super) fn find_embedded_feed(text: &str) -> Option<&str> {
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
pub(super) fn translate_atom03(text: &str) -> Option<String> {
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

pub(super) fn atom03_is_base64(tag: &BytesStart) -> bool {
    tag.attributes()
        .flatten()
        .any(|a| a.key.as_ref() == "mode" && a.value.eq_ignore_ascii_case("base64"))
}

pub(super) fn atom03_rename(name: &str) -> &str {
    match name {
        "issued" => "published",
        "modified" => "updated",
        "tagline" => "subtitle",
        "copyright" => "rights",
        other => other,
    }
}

pub(super) fn atom03_tag(tag: &BytesStart) -> BytesStart<'static> {
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
pub(super) fn translate_cdf(text: &str) -> Result<String, ParseError> {
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
pub(super) fn event_text(event: &Event<'_>) -> String {
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
