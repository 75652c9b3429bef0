//! OPML subscription lists (OPML 2.0): their outlines as feeds and included lists, with folders
//! and `category` paths as tags. What `import` reads once and what `[[list]]` reads on a
//! schedule.

use quick_xml::Reader;
use quick_xml::events::Event;

use super::ParseError;
use crate::model::ListMember;

/// The feeds of an OPML document (outlines with an `xmlUrl`, their `htmlUrl` as the site) and
/// the lists it includes (`type="include"` with a `url`). As tags, the folder (outline without
/// a URL) an outline sits in, its name as written (folders in folders: the innermost, as
/// one-level readers take it), then its `category` paths. An empty list is a list.
pub(crate) fn outlines(text: &str) -> Result<Vec<ListMember>, ParseError> {
    let mut reader = Reader::from_str(text);
    let mut folders: Vec<Option<String>> = Vec::new();
    let mut members = Vec::new();
    let mut root = None;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| ParseError::Malformed(format!("not valid OPML: {e}")))?;
        let (tag, is_empty) = match event {
            Event::Start(t) => (t, false),
            Event::Empty(t) => (t, true),
            Event::End(t) if t.name().as_ref() == "outline" => {
                folders.pop();
                continue;
            }
            Event::Eof => break,
            _ => continue,
        };
        if root.is_none() {
            root = Some(tag.name().as_ref().to_ascii_lowercase());
        }
        if tag.name().as_ref() != "outline" {
            continue;
        }
        let attr = |name: &str| {
            tag.attributes()
                .flatten()
                .find(|a| a.key.as_ref().eq_ignore_ascii_case(name))
                .and_then(|a| a.normalized_value(quick_xml::XmlVersion::Implicit1_0).ok())
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let title = attr("title").or_else(|| attr("text"));
        // OPML 2.0: `type="include"`, or a `type="link"` whose url ends in `.opml`, expands
        // in place.
        let kind = attr("type").unwrap_or_default();
        let include = kind.eq_ignore_ascii_case("include")
            || (kind.eq_ignore_ascii_case("link")
                && attr("url").is_some_and(|u| u.split(['?', '#']).next().unwrap_or("").ends_with(".opml")));
        let url = match include {
            true => attr("url"),
            false => attr("xmlUrl"),
        };
        match url {
            Some(url) => {
                let mut tags: Vec<String> = folders.iter().rev().flatten().take(1).cloned().collect();
                for category in attr("category").iter().flat_map(|c| c.split(',')) {
                    let tag = category_tag(category);
                    if !tag.is_empty() && !tags.iter().any(|t| *t == tag) {
                        tags.push(tag.into_owned());
                    }
                }
                // A feed known by its URL alone is exported with it as its text.
                let title = title.filter(|t| *t != url);
                members.push(ListMember {
                    url,
                    title,
                    site: attr("htmlUrl"),
                    tags,
                    include,
                });
                if !is_empty {
                    folders.push(None);
                }
            }
            None if !is_empty => folders.push(title),
            None => {}
        }
    }
    if root.as_deref() != Some("opml") {
        return Err(ParseError::NotAFeed(
            "not an OPML document (no <opml> root)".into(),
        ));
    }
    Ok(members)
}

/// A tag as an OPML `category` path carries it (`/rust`, percent-encoded).
pub(crate) fn category_tag(category: &str) -> std::borrow::Cow<'_, str> {
    percent_encoding::percent_decode_str(category.trim().trim_start_matches('/')).decode_utf8_lossy()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outlines_with_folders_categories_and_includes() {
        let opml = r#"<?xml version="1.0"?><opml version="2.0"><head><title>s</title></head><body>
            <outline text="Tech"><outline type="rss" text="A" xmlUrl="https://a.example/feed" category="/rust,/web"/></outline>
            <outline type="rss" title="B &amp; co" text="ignored" xmlUrl="https://b.example/feed"/>
            <outline type="include" text="More" url="https://lists.example/more.opml"/>
            <outline type="link" text="Also" url="https://lists.example/also.opml?v=2"/>
            <outline type="link" text="A page" url="https://lists.example/about.html"/>
            <outline text="Empty folder"></outline></body></opml>"#;
        let members = outlines(opml).unwrap();
        assert_eq!(
            members[0],
            ListMember {
                url: "https://a.example/feed".into(),
                title: Some("A".into()),
                site: None,
                tags: vec!["Tech".into(), "rust".into(), "web".into()],
                include: false,
            }
        );
        assert_eq!(members[1].title.as_deref(), Some("B & co"));
        assert!(members[1].tags.is_empty());
        assert_eq!(
            (members[2].url.as_str(), members[2].include),
            ("https://lists.example/more.opml", true)
        );
        assert_eq!(
            (members[3].url.as_str(), members[3].include),
            ("https://lists.example/also.opml?v=2", true)
        );
        assert_eq!(members.len(), 4, "a link to a page is no member");
        assert!(outlines("<rss><channel/></rss>").is_err(), "not OPML");
        assert!(outlines("<opml><body><outline").is_err(), "broken");
        assert_eq!(outlines("<opml><body/></opml>").unwrap(), [], "empty is a list");
    }
}
