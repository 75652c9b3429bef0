//! RSS 2.0 (<https://www.rssboard.org/rss-specification>): guid with isPermaLink="false" (the
//! merged feed's own stable id), pubDate in RFC 822, `<source url>` naming the origin feed,
//! enclosures kept (url, length, type are all required there), authors as `dc:creator`
//! because RSS's `<author>` must be an e-mail address.

use quick_xml::events::{BytesDecl, BytesStart, BytesText, Event};

use super::atom::XmlWriter;
use super::{Context, Selection, display_title, entry_id, entry_language, last_change};
use crate::model::OutputSpec;
use crate::output::xml_safe;

pub(super) fn render(spec: &OutputSpec, selection: &Selection, context: &Context) -> Vec<u8> {
    let mut w = XmlWriter::new(4096 + selection.entries.len() * 2048);
    w.event(Event::Decl(BytesDecl::new("1.0", Some("utf-8"), None)));
    w.start(BytesStart::new("rss").with_attributes([
        ("version", "2.0"),
        ("xmlns:atom", "http://www.w3.org/2005/Atom"),
        ("xmlns:dc", "http://purl.org/dc/elements/1.1/"),
    ]));
    w.start(BytesStart::new("channel"));
    plain_text(&mut w, "title", &spec.title);
    // <link> is required: the output's web page, else where it is published. Without
    // `serve.base_url` neither has an address: the site of the newest entry's feed stands in,
    // a page a reader can open (never the file's path on this server, which no reader can).
    let link = context
        .home_page(spec)
        .map(str::to_string)
        .or_else(|| spec.self_url.clone())
        .or_else(|| selection.entries.iter().find_map(|e| e.feed.site_url.clone()));
    if let Some(link) = &link {
        w.text_element("link", link);
    }
    w.text_element(
        "description",
        spec.description
            .as_deref()
            .unwrap_or(&format!("{}, merged by Tributary", spec.title)),
    );
    // <image> names the channel's picture by an absolute URL, with the channel's title and
    // link; the larger image serves better, the icon will do.
    if let (Some(image), Some(link)) = (
        spec.logo
            .as_ref()
            .or(spec.icon.as_ref())
            .filter(|u| u.starts_with("http")),
        &link,
    ) {
        w.start(BytesStart::new("image"));
        w.text_element("url", image);
        plain_text(&mut w, "title", &spec.title);
        w.text_element("link", link);
        w.end("image");
    }
    if let Some(self_url) = &spec.self_url {
        atom_link(&mut w, "self", self_url);
    }
    if let Some(hub) = &context.hub {
        atom_link(&mut w, "hub", hub);
    }
    if let Some(lang) = &spec.lang {
        w.text_element("language", lang);
    }
    w.text_element("generator", concat!("Tributary ", env!("CARGO_PKG_VERSION")));
    if !selection.entries.is_empty() {
        w.text_element("lastBuildDate", &last_change(selection).to_rfc2822());
    }
    for out in &selection.entries {
        let (stored, feed) = (&out.stored, &out.feed);
        let e = &stored.entry;
        w.start(BytesStart::new("item"));
        // An item needs a title or a description; readers show a title-less one by its text.
        if !e.title.is_empty() {
            plain_text(&mut w, "title", &e.title);
        } else if e.content.is_none() && e.summary.is_none() {
            plain_text(&mut w, "title", &display_title(e));
        }
        if let Some(link) = &e.link {
            w.text_element("link", link);
        }
        let body = e.content.as_ref().or(e.summary.as_ref());
        if let Some(body) = body {
            w.text_element("description", body);
        }
        // Readers show a blank author otherwise; the feed is who wrote it, as far as we know.
        plain_text(
            &mut w,
            "dc:creator",
            e.author.as_ref().map_or(&feed.title, |a| &a.name),
        );
        if let Some(language) = entry_language(out) {
            w.text_element("dc:language", language);
        }
        for c in &e.categories {
            plain_text(&mut w, "category", c);
        }
        for enc in &e.enclosures {
            let length = enc.length.unwrap_or(0).to_string();
            w.empty(BytesStart::new("enclosure").with_attributes([
                ("url", xml_safe(&enc.url).as_ref()),
                ("length", length.as_str()),
                (
                    "type",
                    enc.mime_type.as_deref().unwrap_or("application/octet-stream"),
                ),
            ]));
        }
        w.start(BytesStart::new("guid").with_attributes([("isPermaLink", "false")]));
        w.text(&entry_id(&feed.id_base, stored.key.as_str()));
        w.end("guid");
        w.text_element("pubDate", &stored.published.to_rfc2822());
        // <source> must carry a URL readers can fetch: none for a local file.
        if let Some(url) = feed.public_url() {
            w.start(BytesStart::new("source").with_attributes([("url", xml_safe(url).as_ref())]));
            w.event(Event::Text(BytesText::from_escaped(plain_text_escaped(
                &feed.title,
            ))));
            w.end("source");
        }
        w.end("item");
    }
    w.end("channel");
    w.end("rss");
    w.finish()
}

/// An element of plain text as the RSS Advisory Board's profile has it written: `&`, `<` and
/// `>` as hexadecimal character references. Readers disagree on whether RSS titles are text or
/// HTML; XML parsers read these references as the characters themselves (plain-text readers
/// get the text exactly), and they tell readers that sniff for escaped markup (Tributary's own
/// parser among them) that there is none.
fn plain_text(w: &mut XmlWriter, name: &str, value: &str) {
    w.start(BytesStart::new(name));
    w.event(Event::Text(BytesText::from_escaped(plain_text_escaped(value))));
    w.end(name);
}

fn plain_text_escaped(value: &str) -> String {
    let value = xml_safe(value);
    let mut out = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        match c {
            '&' => out.push_str("&#x26;"),
            '<' => out.push_str("&#x3C;"),
            '>' => out.push_str("&#x3E;"),
            c => out.push(c),
        }
    }
    out
}

fn atom_link(w: &mut XmlWriter, rel: &str, href: &str) {
    let mut tag = BytesStart::new("atom:link");
    tag.push_attribute(("rel", rel));
    tag.push_attribute(("href", xml_safe(href).as_ref()));
    if rel == "self" {
        tag.push_attribute(("type", "application/rss+xml"));
    }
    w.empty(tag);
}
