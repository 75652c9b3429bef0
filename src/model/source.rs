//! What a configured source is read as: a feed, or a web page or JSON API turned into entries
//! by the operator's selectors.

use std::fmt;

use scraper::Selector;

/// How a source's document becomes entries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) enum Source {
    /// RSS, Atom or JSON Feed.
    #[default]
    Feed,
    /// A web page: each element `item` selects is an entry.
    Html(Scrape<Pick>),
    /// A JSON document: each element of the array `item` points at is an entry.
    Json(Scrape<Pointer>),
}

/// Where each field of an entry is found, relative to its item (`item` itself is relative
/// to the document). Identity is the link, so `link` is required.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Scrape<P> {
    pub(crate) item: P,
    pub(crate) link: P,
    pub(crate) title: Option<P>,
    pub(crate) date: Option<P>,
    pub(crate) content: Option<P>,
    pub(crate) author: Option<P>,
}

/// A CSS selector, and the attribute to take from the element it finds (`a@href`); without
/// one, the element's text (for `content`, its inner HTML).
#[derive(Debug, Clone)]
pub(crate) struct Pick {
    /// As the operator wrote it, `@attr` included.
    pub(crate) css: String,
    /// `None` (an empty selector, as in `@href`): the item element itself.
    pub(crate) selector: Option<Selector>,
    pub(crate) attr: Option<String>,
}

impl PartialEq for Pick {
    fn eq(&self, other: &Pick) -> bool {
        self.css == other.css
    }
}

impl Eq for Pick {}

impl fmt::Display for Pick {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.css)
    }
}

/// A JSON Pointer (RFC 6901), `""` for the value itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pointer(pub String);

impl fmt::Display for Pointer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
