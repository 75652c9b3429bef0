//! Feed discovery: the feeds an HTML page announces with `<link rel="alternate" type="…">`
//! (the autodiscovery convention browsers and readers follow), read with a real HTML parser so
//! that comments, scripts, unquoted or entity-encoded attributes and `<base href>` mean what
//! they mean to a browser.

use scraper::{Html, Selector};
use url::Url;

/// Media types that announce a feed.
const FEED_TYPES: &[&str] = &[
    "application/rss+xml",
    "application/atom+xml",
    "application/feed+json",
    "application/json",
    "application/rdf+xml",
];

/// The feeds `html` (a page fetched from `page`) links to, resolved, in document order and
/// without repeats.
pub(crate) fn feed_links(html: &str, page: &Url) -> Vec<Url> {
    let document = Html::parse_document(html);
    let base = base_href(&document, page);
    let mut found: Vec<Url> = Vec::new();
    for link in document.select(&select("link[href]")) {
        let element = link.value();
        // rel is a set of space-separated, ASCII case-insensitive tokens.
        let alternate = element.attr("rel").is_some_and(|rel| {
            rel.split_ascii_whitespace()
                .any(|r| r.eq_ignore_ascii_case("alternate"))
        });
        let media_type = element
            .attr("type")
            .map(|t| t.split(';').next().unwrap_or("").trim().to_ascii_lowercase());
        let is_feed = media_type.is_some_and(|t| FEED_TYPES.contains(&t.as_str()));
        if let (true, true, Some(href)) = (alternate, is_feed, element.attr("href"))
            && let Ok(url) = base.join(href.trim())
            && matches!(url.scheme(), "http" | "https" | "file")
            && !found.contains(&url)
        {
            found.push(url);
        }
    }
    found
}

/// The icons `html` (a page fetched from `page`) names for itself, resolved, best first: its
/// `rel="icon"` links (`shortcut icon` included) in document order, then its Apple touch icons,
/// which are larger. SVG icons are left out: an SVG is a document that can carry scripts, and
/// every page that names one names a raster icon or has a `/favicon.ico` too.
pub(crate) fn icon_links(html: &str, page: &Url) -> Vec<Url> {
    let document = Html::parse_document(html);
    let base = base_href(&document, page);
    let mut icons: Vec<Url> = Vec::new();
    let mut touch: Vec<Url> = Vec::new();
    for link in document.select(&select("link[href]")) {
        let element = link.value();
        let rel = element.attr("rel").unwrap_or("");
        let has = |name: &str| rel.split_ascii_whitespace().any(|r| r.eq_ignore_ascii_case(name));
        let touch_icon = has("apple-touch-icon") || has("apple-touch-icon-precomposed");
        if !has("icon") && !touch_icon {
            continue;
        }
        let svg = element
            .attr("type")
            .is_some_and(|t| t.trim().eq_ignore_ascii_case("image/svg+xml"));
        if let (false, Some(href)) = (svg, element.attr("href"))
            && let Ok(url) = base.join(href.trim())
            && matches!(url.scheme(), "http" | "https")
            && !url.path().to_ascii_lowercase().ends_with(".svg")
            && !icons.contains(&url)
            && !touch.contains(&url)
        {
            match touch_icon && !has("icon") {
                true => touch.push(url),
                false => icons.push(url),
            }
        }
    }
    icons.extend(touch);
    icons
}

/// What relative links on the page resolve against: the first `<base href>` (itself resolved
/// against the page), else the page.
/// The WebSub hub and topic a page names in its `<link rel="hub">` and `<link rel="self">`
/// (W3C WebSub §4: a page without a feed is a topic too).
pub(crate) fn push_links(document: &Html, base: &Url) -> (Option<String>, Option<String>) {
    let mut found = (None, None);
    for link in document.select(&select("link[href]")) {
        let element = link.value();
        let rel = element.attr("rel").unwrap_or("");
        let has = |name: &str| rel.split_ascii_whitespace().any(|r| r.eq_ignore_ascii_case(name));
        let Some(url) = element
            .attr("href")
            .and_then(|h| base.join(h.trim()).ok())
            .filter(|u| matches!(u.scheme(), "http" | "https"))
        else {
            continue;
        };
        if has("hub") && found.0.is_none() {
            found.0 = Some(url.to_string());
        }
        if has("self") && found.1.is_none() {
            found.1 = Some(url.to_string());
        }
    }
    found
}

pub(crate) fn base_href(document: &Html, page: &Url) -> Url {
    document
        .select(&select("base[href]"))
        .next()
        .and_then(|b| page.join(b.value().attr("href")?.trim()).ok())
        .unwrap_or_else(|| page.clone())
}

/// A selector of ours, known to be valid.
fn select(css: &str) -> Selector {
    Selector::parse(css).unwrap_or_else(|e| unreachable!("{css}: {e}"))
}

/// A `scrape` table that reads a page or JSON document with no feed as entries, found from
/// its shape ([`propose_scrape`], [`propose_json`]). The fields are in the config's syntax:
/// selectors or JSON Pointers relative to the item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Proposal {
    /// `kind` of the source: "html" (CSS selectors) or "json" (JSON Pointers).
    pub(crate) kind: &'static str,
    pub(crate) item: String,
    pub(crate) title: Option<String>,
    pub(crate) link: String,
    pub(crate) date: Option<String>,
    pub(crate) content: Option<String>,
}

impl Proposal {
    /// As a TOML inline table, the way the config writes `scrape`.
    pub(crate) fn to_toml(&self) -> String {
        let mut fields = vec![("item", self.item.as_str()), ("link", self.link.as_str())];
        fields.extend(self.title.as_deref().map(|t| ("title", t)));
        fields.extend(self.date.as_deref().map(|d| ("date", d)));
        fields.extend(self.content.as_deref().map(|c| ("content", c)));
        let inner: Vec<String> = fields
            .into_iter()
            .map(|(k, v)| format!("{k} = {}", toml::Value::String(v.to_string())))
            .collect();
        format!("{{ {} }}", inner.join(", "))
    }
}

/// The page's most repeated story shape, if it has one: the repeated element (an `article`,
/// a list item, a classed block) that holds a heading with a link, two of them at least.
pub(crate) fn propose_scrape(html: &str) -> Option<Proposal> {
    let document = Html::parse_document(html);
    // (item selector, heading tag) → how often, in order of first appearance.
    let mut shapes: Vec<((String, String), usize)> = Vec::new();
    for link in document.select(&select("h1 a[href], h2 a[href], h3 a[href], h4 a[href]")) {
        let Some(heading) = link
            .ancestors()
            .filter_map(scraper::ElementRef::wrap)
            .find(|e| matches!(e.value().name(), "h1" | "h2" | "h3" | "h4"))
        else {
            continue;
        };
        let ancestors: Vec<scraper::ElementRef<'_>> = heading
            .ancestors()
            .filter_map(scraper::ElementRef::wrap)
            .collect();
        // The nearest story-like container, else the heading's own parent.
        let Some(item) = ancestors
            .iter()
            .find(|e| matches!(e.value().name(), "article" | "li"))
            .or_else(|| ancestors.first())
            .filter(|e| !matches!(e.value().name(), "body" | "html" | "main"))
        else {
            continue;
        };
        let element = item.value();
        let class = element.classes().find(|c| {
            c.chars()
                .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '-' | '_'))
        });
        // A class that is no CSS identifier (`2col`) cannot be written as `.2col`: the
        // element's name alone, then.
        let selector = class
            .map(|class| format!("{}.{class}", element.name()))
            .filter(|css| Selector::parse(css).is_ok())
            .unwrap_or_else(|| element.name().to_string());
        let shape = (selector, heading.value().name().to_string());
        match shapes.iter_mut().find(|(s, _)| *s == shape) {
            Some((_, n)) => *n += 1,
            None => shapes.push((shape, 1)),
        }
    }
    // The most frequent shape; of equals, the first met (max_by_key keeps the last).
    let ((item, heading), count) = shapes.iter().rev().max_by_key(|(_, n)| *n)?;
    if *count < 2 {
        return None;
    }
    // Optional fields only when every item of the shape has them.
    let items: Vec<scraper::ElementRef<'_>> = document.select(&select(item)).collect();
    let all_have = |css: &str| {
        let s = select(css);
        items.iter().all(|i| i.select(&s).next().is_some())
    };
    let date = if all_have("time[datetime]") {
        Some("time@datetime".to_string())
    } else if all_have("time") {
        Some("time".to_string())
    } else {
        None
    };
    Some(Proposal {
        kind: "html",
        item: item.clone(),
        title: Some(heading.clone()),
        link: format!("{heading} a@href"),
        date,
        content: all_have("p").then(|| "p".to_string()),
    })
}

/// Field names APIs use, most likely first.
const LINK_KEYS: &[&str] = &[
    "url",
    "link",
    "href",
    "permalink",
    "web_url",
    "html_url",
    "canonical_url",
];
const TITLE_KEYS: &[&str] = &["title", "headline", "name", "subject"];
const DATE_KEYS: &[&str] = &[
    "published_at",
    "published",
    "date",
    "pubDate",
    "created_at",
    "createdAt",
    "publishedAt",
    "updated_at",
    "time",
    "timestamp",
];
const CONTENT_KEYS: &[&str] = &[
    "content",
    "body",
    "html",
    "summary",
    "description",
    "text",
    "excerpt",
];

/// A `scrape` table for a JSON document that is no JSON Feed: the longest list of objects
/// (within three levels) whose objects give a link under a name APIs use, with the title,
/// date and content fields next to it when every such object has them.
pub(crate) fn propose_json(text: &str) -> Option<Proposal> {
    let document: serde_json::Value = serde_json::from_str(text).ok()?;
    let mut lists: Vec<(String, &Vec<serde_json::Value>)> = Vec::new();
    collect_lists(&document, String::new(), 0, &mut lists);
    let (item, objects, link) = lists
        .into_iter()
        .filter_map(|(pointer, list)| {
            let link = LINK_KEYS.iter().find(|key| {
                list.iter()
                    .filter(|o| o.get(**key).and_then(|v| v.as_str()).is_some_and(looks_like_link))
                    .count()
                    * 2
                    >= list.len()
            })?;
            Some((pointer, list, *link))
        })
        .max_by_key(|(_, list, _)| list.len())?;
    if objects.len() < 2 {
        return None;
    }
    let every = |keys: &[&str]| -> Option<String> {
        keys.iter()
            .find(|key| objects.iter().all(|o| o.get(**key).is_some_and(|v| !v.is_null())))
            .map(|key| format!("/{}", escape_pointer(key)))
    };
    Some(Proposal {
        kind: "json",
        item,
        link: format!("/{}", escape_pointer(link)),
        title: every(TITLE_KEYS),
        date: every(DATE_KEYS),
        content: every(CONTENT_KEYS),
    })
}

/// Every array of objects in `value`, with its JSON Pointer, at most `3 - depth` levels down.
fn collect_lists<'a>(
    value: &'a serde_json::Value,
    pointer: String,
    depth: usize,
    out: &mut Vec<(String, &'a Vec<serde_json::Value>)>,
) {
    match value {
        serde_json::Value::Array(items) if items.iter().all(serde_json::Value::is_object) => {
            out.push((pointer, items));
        }
        serde_json::Value::Object(fields) if depth < 3 => {
            for (key, child) in fields {
                collect_lists(
                    child,
                    format!("{pointer}/{}", escape_pointer(key)),
                    depth + 1,
                    out,
                );
            }
        }
        _ => {}
    }
}

/// RFC 6901: `~` and `/` in a key are written `~0` and `~1`.
fn escape_pointer(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn looks_like_link(text: &str) -> bool {
    text.starts_with("http://") || text.starts_with("https://") || text.starts_with('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn icons_come_best_first_without_svg() {
        let page = Url::parse("https://blog.example/posts/").unwrap();
        let html = r#"<html><head>
            <base href="/static/">
            <link rel="apple-touch-icon" sizes="180x180" href="touch.png">
            <link rel="icon" type="image/svg+xml" href="icon.svg">
            <link rel=icon href="vector.SVG">
            <!-- <link rel="icon" href="commented.png"> -->
            <link rel="SHORTCUT ICON" href="favicon.ico">
            <link rel="icon" sizes="32x32" href="https://cdn.example/32.png">
            <link rel="icon" href="javascript:alert(1)">
            <link rel="stylesheet" href="site.css">
            </head><body><link rel="icon" href="late.png"></body></html>"#;
        let found: Vec<String> = icon_links(html, &page).into_iter().map(String::from).collect();
        assert_eq!(
            found,
            [
                "https://blog.example/static/favicon.ico",
                "https://cdn.example/32.png",
                "https://blog.example/static/late.png",
                "https://blog.example/static/touch.png",
            ]
        );
    }

    fn links(html: &str) -> Vec<String> {
        let page = Url::parse("https://example.org/blog/post.html").unwrap();
        feed_links(html, &page)
            .into_iter()
            .map(|u| u.to_string())
            .collect()
    }

    #[test]
    fn a_class_that_is_no_css_identifier_is_left_out_of_the_proposal() {
        let story = |n: u32| {
            format!("<li class=\"2col\"><h3><a href=\"/s/{n}\">Story {n}</a></h3><p>Text {n}</p></li>")
        };
        let html = format!(
            "<html><body><ul>{}{}{}</ul></body></html>",
            story(1),
            story(2),
            story(3)
        );
        let proposal = propose_scrape(&html).expect("three stories");
        assert_eq!(proposal.item, "li");
        assert_eq!(proposal.link, "h3 a@href");
        assert_eq!(proposal.content.as_deref(), Some("p"));
    }

    #[test]
    fn announced_feeds_resolve_as_a_browser_would() {
        let html = r#"<!doctype html><html><head>
            <!-- <link rel="alternate" type="application/rss+xml" href="/commented.xml"> -->
            <script>document.write('<link rel="alternate" type="application/rss+xml" href="/scripted.xml">')</script>
            <LINK REL="Alternate home" TYPE="Application/RSS+XML; charset=utf-8" HREF=feed.xml>
            <link rel=alternate type=application/atom+xml href="/atom?a=1&amp;b=2">
            <link rel="alternate" type="text/html" href="/fr/">
            <link rel="stylesheet" type="application/rss+xml" href="/not-a-feed.xml">
            <link rel="alternate" type="application/feed+json" href="https://other.example/feed.json">
            <link rel="alternate" type="application/rss+xml" href="feed.xml">
            <link rel="alternate" type="application/rss+xml" href="javascript:alert(1)">
            </head><body></body></html>"#;
        assert_eq!(
            links(html),
            [
                "https://example.org/blog/feed.xml",
                "https://example.org/atom?a=1&b=2",
                "https://other.example/feed.json",
            ]
        );
    }

    #[test]
    fn base_href_is_what_relative_links_resolve_against() {
        let html = r#"<html><head><base href="/news/">
            <link rel="alternate" type="application/atom+xml" href="atom.xml"></head></html>"#;
        assert_eq!(links(html), ["https://example.org/news/atom.xml"]);
        assert!(links("<html><body><p>no feeds here</p></body></html>").is_empty());
    }
}
