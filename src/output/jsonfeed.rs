//! JSON Feed 1.1 (<https://www.jsonfeed.org/version/1.1/>). Attribution to the origin feed and
//! the other feeds that carried a story go in a `_tributary` extension object, as the spec
//! allows for custom fields (names starting with an underscore).

use serde::Serialize;

use super::{Context, FeedView, Selection, display_title, entry_id, entry_language, rfc3339};
use crate::model::OutputSpec;

#[derive(Serialize)]
struct Feed<'a> {
    version: &'static str,
    title: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    home_page_url: Option<std::borrow::Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    feed_url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    /// The large image (512 × 512); `favicon` the small one.
    #[serde(skip_serializing_if = "Option::is_none")]
    icon: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    favicon: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    language: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    hubs: Vec<Hub<'a>>,
    items: Vec<Item<'a>>,
}

#[derive(Serialize)]
struct Hub<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    url: &'a str,
}

#[derive(Serialize)]
struct Item<'a> {
    id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    title: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content_html: Option<&'a str>,
    /// Only for an entry without a body: an item must have content of one kind or the other.
    #[serde(skip_serializing_if = "Option::is_none")]
    content_text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    summary: Option<String>,
    date_published: String,
    date_modified: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    authors: Vec<Author<'a>>,
    /// JSON Feed 1.0's single author, for readers that know only 1.0 (1.1 keeps it valid,
    /// deprecated): the first of `authors`.
    #[serde(skip_serializing_if = "Option::is_none")]
    author: Option<Author<'a>>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    tags: &'a [String],
    #[serde(skip_serializing_if = "Vec::is_empty")]
    attachments: Vec<Attachment<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    language: Option<&'a str>,
    _tributary: Extension<'a>,
}

#[derive(Serialize)]
struct Author<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<&'a str>,
}

#[derive(Serialize)]
struct Attachment<'a> {
    url: &'a str,
    mime_type: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    size_in_bytes: Option<u64>,
}

#[derive(Serialize)]
struct Extension<'a> {
    about: &'static str,
    source: Source<'a>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    also_in: Vec<Source<'a>>,
}

#[derive(Serialize)]
struct Source<'a> {
    title: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    feed_url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    home_page_url: Option<&'a str>,
    /// Its icon, as the feed-level `favicon` is.
    #[serde(skip_serializing_if = "Option::is_none")]
    favicon: Option<String>,
}

impl<'a> Source<'a> {
    fn new(spec: &OutputSpec, f: &'a FeedView) -> Source<'a> {
        Source {
            title: &f.title,
            feed_url: f.public_url(),
            home_page_url: f.site_url.as_deref(),
            favicon: f.icon.as_ref().map(|i| super::icon_href(spec, i)),
        }
    }
}

pub(super) fn render(spec: &OutputSpec, selection: &Selection, context: &Context) -> Vec<u8> {
    let items = selection
        .entries
        .iter()
        .map(|out| {
            let e = &out.stored.entry;
            let content_html = e.content.as_deref().or(e.summary.as_deref());
            Item {
                id: entry_id(&out.feed.id_base, out.stored.key.as_str()),
                url: e.link.as_deref(),
                title: Some(e.title.as_str()).filter(|t| !t.is_empty()),
                content_html,
                content_text: content_html.is_none().then(|| display_title(e).into_owned()),
                // JSON Feed summaries are plain text.
                summary: e
                    .content
                    .as_ref()
                    .and(e.summary.as_deref())
                    .map(crate::text::html_to_text)
                    .filter(|s| !s.is_empty()),
                date_published: rfc3339(out.stored.published),
                date_modified: rfc3339(out.stored.updated),
                authors: e
                    .author
                    .iter()
                    .map(|a| Author {
                        name: &a.name,
                        url: a.uri.as_deref(),
                    })
                    .collect(),
                author: e.author.as_ref().map(|a| Author {
                    name: &a.name,
                    url: a.uri.as_deref(),
                }),
                tags: &e.categories,
                attachments: e
                    .enclosures
                    .iter()
                    .map(|enc| Attachment {
                        url: &enc.url,
                        mime_type: enc.mime_type.as_deref().unwrap_or("application/octet-stream"),
                        size_in_bytes: enc.length,
                    })
                    .collect(),
                language: entry_language(out),
                _tributary: Extension {
                    about: "https://github.com/tributary-rs/tributary#json-feed-extension",
                    source: Source::new(spec, &out.feed),
                    also_in: out.also_in.iter().map(|f| Source::new(spec, f)).collect(),
                },
            }
        })
        .collect();
    let feed = Feed {
        version: "https://jsonfeed.org/version/1.1",
        title: &spec.title,
        home_page_url: context.home_page_ref(spec),
        feed_url: spec.self_url.as_deref(),
        description: spec.description.as_deref(),
        icon: spec.logo.as_deref().or(spec.icon.as_deref()),
        favicon: spec.icon.as_deref(),
        language: spec.lang.as_deref(),
        hubs: context
            .hub
            .iter()
            .map(|url| Hub { kind: "WebSub", url })
            .collect(),
        items,
    };
    let mut bytes = serde_json::to_vec_pretty(&feed).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}
