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
    let select = |css: &str| Selector::parse(css).unwrap_or_else(|e| unreachable!("{css}: {e}"));
    // The first <base href> (resolved against the page) is what relative links resolve against.
    let base = document
        .select(&select("base[href]"))
        .next()
        .and_then(|b| page.join(b.value().attr("href")?.trim()).ok())
        .unwrap_or_else(|| page.clone());
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

#[cfg(test)]
mod tests {
    use super::*;

    fn links(html: &str) -> Vec<String> {
        let page = Url::parse("https://example.org/blog/post.html").unwrap();
        feed_links(html, &page)
            .into_iter()
            .map(|u| u.to_string())
            .collect()
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
