//! Full text (`[[feed]] full_text`): an entry's article, read from its page.
//!
//! Many feeds carry only a teaser. For each new entry of such a feed the spine fetches the
//! entry's link with the feed's own client (so the same timeout, `max_body`, redirect rules and
//! private-network guard apply), and this module turns the page into the article: decoded like
//! any body, the main content found by a port of Mozilla's Readability (dom_smoothie, MIT: the
//! algorithm Firefox's reader view uses), then sanitized like any content. Navigation, share
//! buttons, comments and ads are what Readability leaves out.

use url::Url;

use super::Sanitizer;
use crate::decode;
use crate::fetch::{FetchError, Fetched};
use crate::model::Rewrite;
use crate::text::html_to_text;

/// Why an entry's page gave no article. The feed's own text stands.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ArticleError {
    #[error("the entry has no web page")]
    NoPage,
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error("the page is not HTML ({0})")]
    NotHtml(String),
    #[error("no article found on the page")]
    NoArticle,
    #[error("its host asked to wait")]
    HostWaiting,
}

/// The web page an entry links to, if it has one worth fetching.
pub(crate) fn page_of(link: Option<&str>) -> Result<Url, ArticleError> {
    link.and_then(|l| Url::parse(l).ok())
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .ok_or(ArticleError::NoPage)
}

/// A fetched page's text (decoded) and where it ended up after redirects; only HTML is a
/// page an article can be read from.
pub(crate) fn page_text(fetched: Fetched) -> Result<(String, Url), ArticleError> {
    match fetched {
        Fetched::Modified(body) => {
            let media_type = body
                .content_type
                .as_deref()
                .and_then(|t| t.split(';').next())
                .map(|t| t.trim().to_ascii_lowercase());
            if let Some(t) =
                media_type.filter(|t| !matches!(t.as_str(), "text/html" | "application/xhtml+xml"))
            {
                return Err(ArticleError::NotHtml(t));
            }
            let text = decode::decode(body.bytes, body.content_type.as_deref()).text;
            Ok((text, body.final_url))
        }
        // Nothing was asked conditionally; a 304 here says nothing about an article.
        Fetched::NotModified { .. } => Err(ArticleError::NoArticle),
    }
}

/// The article in `html` (a page read from `page`), rewritten by the feed's `rules`, sanitized,
/// with its links made absolute.
pub(crate) fn extract(
    html: &str,
    page: &Url,
    rules: &[Rewrite],
    sanitizer: &mut Sanitizer,
) -> Result<String, ArticleError> {
    let mut readability = dom_smoothie::Readability::new(html, Some(page.as_str()), None)
        .map_err(|_| ArticleError::NoArticle)?;
    let article = readability.parse().map_err(|_| ArticleError::NoArticle)?;
    let clean = sanitizer.clean(&super::rewrite::html(rules, &article.content), Some(page));
    let clean = without_headline(&clean, &article.title);
    if html_to_text(&clean).trim().is_empty() {
        return Err(ArticleError::NoArticle);
    }
    Ok(clean)
}

/// The article without the headline it opens with: readers show the entry's title right above
/// the content, so a first heading that says the page's title again is a repeat. Only a
/// heading before any other text, and only when it is the title (or the title is it with the
/// site's name added, or it with a kicker): a heading that says something else stays.
fn without_headline(article: &str, title: &str) -> String {
    let same = |a: &str, b: &str| {
        let (a, b) = (
            crate::text::fold::fold(a, false),
            crate::text::fold::fold(b, false),
        );
        let (a, b) = (
            crate::text::collapse_whitespace(&a),
            crate::text::collapse_whitespace(&b),
        );
        !a.is_empty() && !b.is_empty() && (a.contains(&b) || b.contains(&a))
    };
    let mut fragment = scraper::Html::parse_fragment(article);
    let headline = fragment.root_element().descendants().find_map(|node| {
        if let Some(text) = node.value().as_text() {
            // Text before any heading: the article does not open with one.
            return (!text.trim().is_empty()).then_some(None);
        }
        let element = scraper::ElementRef::wrap(node)?;
        matches!(element.value().name(), "h1" | "h2" | "h3").then(|| Some(element))
    });
    let Some(Some(headline)) = headline else {
        return article.to_string();
    };
    let text: String = headline.text().collect();
    if !same(&text, title) {
        return article.to_string();
    }
    let id = headline.id();
    if let Some(mut node) = fragment.tree.get_mut(id) {
        node.detach();
    }
    fragment.root_element().inner_html()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_opening_headline_that_repeats_the_title_goes_and_other_headings_stay() {
        let body = "<p>The body of the story, long enough to read.</p>";
        let cases = [
            (format!("<div><h1>The story</h1>{body}</div>"), "The story", false),
            (format!("<h2>  The  STORY </h2>{body}"), "The story | News", false),
            (format!("<h1>Analysis</h1>{body}"), "The story", true),
            (format!("<p>Lead.</p><h1>The story</h1>{body}"), "The story", true),
        ];
        for (html, title, kept) in cases {
            let out = without_headline(&html, title);
            assert!(out.contains("The body of the story"), "{out}");
            assert_eq!(out.contains("<h"), kept, "{html} with title {title:?}: {out}");
        }
    }

    #[test]
    fn the_article_is_kept_and_the_page_around_it_left_out() {
        let page = Url::parse("https://news.example/2026/03/story.html").unwrap();
        let html = r#"<!doctype html><html><head><title>Story | News</title></head><body>
            <nav><a href="/">Home</a> <a href="/world">World</a> <a href="/sport">Sport</a></nav>
            <div class="share"><a href="https://social.example/share">Share this</a></div>
            <article><h1>The story</h1>
              <p>The first paragraph of the story explains what happened in some detail, with
                 enough words that a reader view would recognise it as the body of an article.</p>
              <p>A second paragraph goes on, and links <a href="/more">elsewhere</a> with a relative
                 link that must come out absolute, as every paragraph of a real article would.</p>
              <p>A third paragraph closes the story with a few more sentences of plain text that
                 make the article long enough to be the obvious candidate on the page.</p>
            </article>
            <aside class="ad">Buy one now! Advertisement</aside>
            <section id="comments"><p>First! Great post.</p></section>
            <script>track()</script></body></html>"#;
        let out = extract(html, &page, &[], &mut Sanitizer::new()).unwrap();
        assert!(out.contains("The first paragraph of the story"), "{out}");
        assert!(out.contains("A third paragraph closes"), "{out}");
        assert!(out.contains("href=\"https://news.example/more\""), "{out}");
        for chrome in ["Sport", "Share this", "Advertisement", "track()"] {
            assert!(!out.contains(chrome), "{chrome} in {out}");
        }
        assert!(matches!(
            page_of(Some("mailto:x@example.org")),
            Err(ArticleError::NoPage)
        ));
        assert!(matches!(page_of(None), Err(ArticleError::NoPage)));
    }
}
