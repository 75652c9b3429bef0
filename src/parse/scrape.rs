//! Sources that are not feeds: a web page or a JSON API, turned into entries by the
//! operator's selectors (`[[feed]] kind = "html"` / `"json"` with a `scrape` table).
//!
//! Entries are known by their link (resolved against the page, or its `<base href>`), so the
//! same story is the same entry at every poll, and a changed title or text is an update. A
//! date that cannot be read is left out, so the store's first-seen time stands in, as for
//! any feed. A page whose `item` selects nothing, a JSON `item` that is no list, and items
//! of which none has a link are errors: the source changed shape, and the operator should
//! hear of it rather than see the source go quiet. (An empty JSON list is an API with
//! nothing to say now.)

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use scraper::{ElementRef, Html, Selector};
use serde_json::Value;
use url::Url;

use super::dates::parse_date;
use super::discover::{base_href, push_links};
use super::{ParseError, ParsedEntry, ParsedFeed, RawBody};
use crate::model::{Entry, FeedMeta, Person, Pick, Pointer, Scrape};
use crate::text::collapse_whitespace;

/// Items taken from one document at most: a page is not a back catalogue.
const MAX_ITEMS: usize = 1000;

/// The entries of a web page, one per element `item` selects.
pub(crate) fn scrape_html(
    text: &str,
    page: &Url,
    scrape: &Scrape<Pick>,
    zone: Tz,
) -> Result<ParsedFeed, ParseError> {
    let document = Html::parse_document(text);
    let base = base_href(&document, page);
    let items: Vec<ElementRef<'_>> = match &scrape.item.selector {
        Some(selector) => document.select(selector).take(MAX_ITEMS).collect(),
        None => Vec::new(),
    };
    if items.is_empty() {
        return Err(ParseError::NotAFeed(format!(
            "the page has nothing that scrape.item `{}` selects",
            scrape.item
        )));
    }
    let mut stories = Stories::new(items.len());
    for item in items {
        let Some(link) = pick_text(item, &scrape.link).and_then(|l| web_link(&base, &l)) else {
            continue;
        };
        if !stories.first_time(&link) {
            continue;
        }
        let title = scrape
            .title
            .as_ref()
            .and_then(|p| pick_text(item, p))
            .unwrap_or_default();
        let content = scrape.content.as_ref().and_then(|p| pick_body(item, p));
        let published = scrape
            .date
            .as_ref()
            .and_then(|p| pick_text(item, p))
            .and_then(|d| parse_date(&d, zone));
        let author = scrape
            .author
            .as_ref()
            .and_then(|p| pick_text(item, p))
            .map(|name| Person {
                name,
                ..Person::default()
            });
        stories.push(entry(link, title, content, published, author, &base));
    }
    let entries = stories.entries(&scrape.link)?;
    let title = Selector::parse("title").ok().and_then(|s| {
        document
            .select(&s)
            .next()
            .map(|t| collapse_whitespace(&t.text().collect::<String>()))
            .filter(|t| !t.is_empty())
    });
    let (hub, topic) = push_links(&document, &base);
    Ok(ParsedFeed {
        meta: FeedMeta {
            title,
            site_url: Some(page.to_string()),
            hub,
            topic,
            ..FeedMeta::default()
        },
        entries,
        skipped: Default::default(),
    })
}

/// The entries of a JSON document, one per element of the array `item` points at.
pub(crate) fn scrape_json(
    text: &str,
    url: &Url,
    scrape: &Scrape<Pointer>,
    zone: Tz,
) -> Result<ParsedFeed, ParseError> {
    let document: Value =
        serde_json::from_str(text).map_err(|e| ParseError::Malformed(format!("not JSON: {e}")))?;
    let Some(items) = document.pointer(&scrape.item.0).and_then(Value::as_array) else {
        return Err(ParseError::NotAFeed(format!(
            "scrape.item `{}` is not a list in this document",
            scrape.item
        )));
    };
    let mut stories = Stories::new(items.len().min(MAX_ITEMS));
    for item in items.iter().take(MAX_ITEMS) {
        let field = |p: &Option<Pointer>| p.as_ref().and_then(|p| item.pointer(&p.0));
        let Some(link) = item
            .pointer(&scrape.link.0)
            .and_then(json_text)
            .and_then(|l| web_link(url, &l))
        else {
            continue;
        };
        if !stories.first_time(&link) {
            continue;
        }
        let title = field(&scrape.title).and_then(json_text).unwrap_or_default();
        let content = field(&scrape.content)
            .and_then(json_text)
            .map(|text| RawBody { text, is_html: true });
        let published = field(&scrape.date).and_then(|d| json_date(d, zone));
        let author = field(&scrape.author).and_then(json_author);
        stories.push(entry(link, title, content, published, author, url));
    }
    Ok(ParsedFeed {
        meta: FeedMeta::default(),
        entries: stories.entries(&scrape.link)?,
        skipped: Default::default(),
    })
}

/// The entries of one document, one per link: a story shown twice (featured, then in the
/// list) is one story, and the first place wins.
struct Stories {
    items: usize,
    seen: std::collections::HashSet<Url>,
    entries: Vec<ParsedEntry>,
}

impl Stories {
    fn new(items: usize) -> Stories {
        Stories {
            items,
            seen: Default::default(),
            entries: Vec::new(),
        }
    }

    /// Whether `link` is met for the first time in this document.
    fn first_time(&mut self, link: &Url) -> bool {
        self.seen.insert(link.clone())
    }

    fn push(&mut self, entry: ParsedEntry) {
        self.entries.push(entry);
    }

    /// The entries; items that all lack a web link mean the selectors no longer fit the
    /// document (an empty list is a source with nothing to say now).
    fn entries(self, link: &impl std::fmt::Display) -> Result<Vec<ParsedEntry>, ParseError> {
        if self.entries.is_empty() && self.items > 0 {
            return Err(ParseError::Malformed(format!(
                "none of the {} items has a web link at scrape.link `{link}`",
                self.items
            )));
        }
        Ok(self.entries)
    }
}

fn entry(
    link: Url,
    title: String,
    content: Option<RawBody>,
    published: Option<DateTime<Utc>>,
    author: Option<Person>,
    base: &Url,
) -> ParsedEntry {
    ParsedEntry {
        entry: Entry {
            // No guid: the link is the entry's identity.
            guid: None,
            link: Some(link.to_string()),
            title: collapse_whitespace(&title),
            author,
            published,
            ..Entry::default()
        },
        summary: None,
        content,
        base: Some(base.clone()),
        segment: None,
    }
}

/// An http(s) link, resolved; anything else (`javascript:`, `mailto:`, `#top`) is no story.
fn web_link(base: &Url, raw: &str) -> Option<Url> {
    let raw = raw.trim();
    if raw.is_empty() || raw.starts_with('#') {
        return None;
    }
    let url = base.join(raw).ok()?;
    matches!(url.scheme(), "http" | "https").then_some(url)
}

/// The element `pick` finds within `item` (the item itself for an empty selector).
fn find<'a>(item: ElementRef<'a>, pick: &Pick) -> Option<ElementRef<'a>> {
    match &pick.selector {
        Some(selector) => item.select(selector).next(),
        None => Some(item),
    }
}

/// The picked attribute, or the element's text, whitespace collapsed; `None` when empty.
fn pick_text(item: ElementRef<'_>, pick: &Pick) -> Option<String> {
    let element = find(item, pick)?;
    let text = match &pick.attr {
        Some(attr) => element.value().attr(attr)?.to_string(),
        None => element.text().collect::<String>(),
    };
    let text = collapse_whitespace(&text);
    (!text.is_empty()).then_some(text)
}

/// A body: the element's inner HTML (sanitized later like any content), or an attribute's
/// text.
fn pick_body(item: ElementRef<'_>, pick: &Pick) -> Option<RawBody> {
    let element = find(item, pick)?;
    let body = match &pick.attr {
        Some(attr) => RawBody {
            text: element.value().attr(attr)?.to_string(),
            is_html: false,
        },
        None => RawBody {
            text: element.inner_html(),
            is_html: true,
        },
    };
    (!body.text.trim().is_empty()).then_some(body)
}

fn json_text(value: &Value) -> Option<String> {
    let text = match value {
        Value::String(s) => s.trim().to_string(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    (!text.is_empty()).then_some(text)
}

/// A date as JSON APIs write them: a string, or a Unix time in seconds or milliseconds.
fn json_date(value: &Value, zone: Tz) -> Option<DateTime<Utc>> {
    match value {
        Value::String(s) => parse_date(s, zone),
        Value::Number(n) => {
            let n = n.as_f64()?;
            // Past 10^11 seconds (the year 5138) it must be milliseconds.
            let millis = if n.abs() >= 1e11 { n } else { n * 1000.0 };
            DateTime::from_timestamp_millis(millis as i64)
        }
        _ => None,
    }
}

/// An author: a name, or an object with a `name`.
fn json_author(value: &Value) -> Option<Person> {
    let name = match value {
        Value::Object(o) => o.get("name").and_then(json_text),
        other => json_text(other),
    }?;
    Some(Person {
        name,
        ..Person::default()
    })
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn pick(css: &str, attr: Option<&str>) -> Pick {
        Pick {
            css: css.to_string(),
            selector: (!css.is_empty()).then(|| Selector::parse(css).unwrap()),
            attr: attr.map(str::to_string),
        }
    }

    fn links(feed: &ParsedFeed) -> Vec<(String, String)> {
        feed.entries
            .iter()
            .map(|e| (e.entry.link.clone().unwrap(), e.entry.title.clone()))
            .collect()
    }

    #[test]
    fn a_page_names_its_hub_and_itself_in_link_elements() {
        let page = Url::parse("https://news.example/section/").unwrap();
        let html = "<html><head><link rel=\"stylesheet\" href=\"s.css\">\
            <link rel=\"hub\" href=\"https://hub.example/\"><link rel=\"self\" href=\"index.html\"></head>\
            <body><a class=\"headline\" href=\"/story/1\">One</a></body></html>";
        let scrape = Scrape {
            item: pick("a.headline", None),
            link: pick("", Some("href")),
            title: Some(pick("", None)),
            date: None,
            content: None,
            author: None,
        };
        let meta = scrape_html(html, &page, &scrape, chrono_tz::UTC).unwrap().meta;
        assert_eq!(meta.hub.as_deref(), Some("https://hub.example/"));
        assert_eq!(
            meta.topic.as_deref(),
            Some("https://news.example/section/index.html")
        );
    }

    #[test]
    fn the_item_may_be_the_link_itself_and_a_story_shown_twice_is_one_entry() {
        let page = Url::parse("https://news.example/section/index.html").unwrap();
        let html = "<html><body>\
            <div class=\"featured\"><a class=\"headline\" href=\"../story/1\">Big &amp; bold</a></div>\
            <ul><li><a class=\"headline\" href=\"../story/1\">Big &amp; bold (again)</a></li>\
            <li><a class=\"headline\" href=\"//cdn.example/story/2\">Elsewhere</a></li>\
            <li><a class=\"headline\" href=\"javascript:void(0)\">Not a story</a></li>\
            <li><a class=\"headline\" href=\"#top\">Top</a></li></ul></body></html>";
        let scrape = Scrape {
            item: pick("a.headline", None),
            link: pick("", Some("href")),
            title: Some(pick("", None)),
            date: None,
            content: None,
            author: None,
        };
        let feed = scrape_html(html, &page, &scrape, chrono_tz::UTC).unwrap();
        assert_eq!(
            links(&feed),
            vec![
                (
                    "https://news.example/story/1".to_string(),
                    "Big & bold".to_string()
                ),
                ("https://cdn.example/story/2".to_string(), "Elsewhere".to_string()),
            ]
        );
    }

    #[test]
    fn a_json_document_that_is_a_list_and_items_without_links_or_repeated() {
        let api = Url::parse("https://api.example/v2/posts").unwrap();
        let json = r#"[
            {"links": {"web": "/p/1"}, "t": "One", "ts": "2026-11-30"},
            {"links": {"web": "/p/1"}, "t": "One again"},
            {"links": {}, "t": "No link"},
            {"links": {"web": 42}, "t": "A number is a relative link"}
        ]"#;
        let scrape = Scrape {
            item: Pointer(String::new()),
            link: Pointer("/links/web".into()),
            title: Some(Pointer("/t".into())),
            date: Some(Pointer("/ts".into())),
            content: None,
            author: None,
        };
        let feed = scrape_json(json, &api, &scrape, chrono_tz::UTC).unwrap();
        assert_eq!(
            links(&feed),
            vec![
                ("https://api.example/p/1".to_string(), "One".to_string()),
                (
                    "https://api.example/v2/42".to_string(),
                    "A number is a relative link".to_string()
                ),
            ]
        );
        assert!(feed.entries[0].entry.published.is_some());
        assert!(
            feed.entries[1].entry.published.is_none(),
            "no date: first-seen decides"
        );
        let empty = scrape_json("[]", &api, &scrape, chrono_tz::UTC).unwrap();
        assert!(
            empty.entries.is_empty(),
            "an empty list is an API with nothing new"
        );
        let not_a_list = scrape_json(r#"{"posts": {}}"#, &api, &scrape, chrono_tz::UTC);
        assert!(
            matches!(not_a_list, Err(ParseError::NotAFeed(_))),
            "{not_a_list:?}"
        );
        let broken = scrape_json("{", &api, &scrape, chrono_tz::UTC);
        assert!(matches!(broken, Err(ParseError::Malformed(_))), "{broken:?}");
    }

    #[test]
    fn unix_times_in_seconds_and_milliseconds() {
        let t = Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 0).unwrap();
        assert_eq!(
            json_date(&serde_json::json!(t.timestamp()), chrono_tz::UTC),
            Some(t)
        );
        assert_eq!(
            json_date(&serde_json::json!(t.timestamp_millis()), chrono_tz::UTC),
            Some(t)
        );
    }
}
