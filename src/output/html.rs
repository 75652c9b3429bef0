//! The planet-style HTML page: newest entries grouped by day (UTC), each with title, source,
//! author, date and its sanitized content; the subscriptions with their health; and links to
//! every machine-readable output. No JavaScript.
//!
//! The page is a minijinja template (built in, or `[[output]] template = "file"`). minijinja
//! escapes everything it prints in an `.html` template; entry bodies, already sanitized on the
//! way in, are the only values marked safe. The built-in template documents the variables.

use std::path::Path;

use minijinja::{Environment, context};
use serde::Serialize;

use super::{Context, FeedView, OutputError, Selection, rfc3339};
use crate::model::{OutputFormat, OutputSpec};

const BUILT_IN: &str = include_str!("page.html");

#[derive(Serialize)]
struct Day<'a> {
    date: String,
    label: String,
    entries: Vec<EntryView<'a>>,
}

#[derive(Serialize)]
struct EntryView<'a> {
    title: &'a str,
    link: Option<&'a str>,
    feed: FeedLink<'a>,
    author: Option<&'a str>,
    published: String,
    published_label: String,
    body: Option<&'a str>,
    enclosures: Vec<EnclosureView<'a>>,
    also_in: Vec<FeedLink<'a>>,
}

#[derive(Serialize)]
struct EnclosureView<'a> {
    url: &'a str,
    name: &'a str,
    mime_type: Option<&'a str>,
}

#[derive(Serialize)]
struct FeedLink<'a> {
    title: &'a str,
    url: &'a str,
    site_url: Option<&'a str>,
    failing_since: Option<String>,
    last_error: Option<&'a str>,
    polled: bool,
}

impl<'a> From<&'a FeedView> for FeedLink<'a> {
    fn from(f: &'a FeedView) -> FeedLink<'a> {
        FeedLink {
            title: &f.title,
            url: &f.url,
            site_url: f.site_url.as_deref(),
            failing_since: f.failing.as_ref().map(|(t, _)| t.format("%Y-%m-%d").to_string()),
            last_error: f.failing.as_ref().map(|(_, e)| e.as_str()),
            polled: f.polled,
        }
    }
}

#[derive(Serialize)]
struct AlternateView<'a> {
    href: &'a str,
    title: &'a str,
    format: &'static str,
    media_type: &'static str,
}

/// minijinja's HTML escaping also escapes `/` (as `&#x2f;`), which is valid but makes every
/// URL in the page unreadable; escaping `& < > " '` is what HTML needs, in text and in quoted
/// attributes alike.
fn escape_minimal(
    out: &mut minijinja::Output,
    state: &mut minijinja::State,
    value: &minijinja::Value,
) -> Result<(), minijinja::Error> {
    if matches!(state.auto_escape(), minijinja::AutoEscape::Html) && !value.is_safe() && !value.is_none() {
        let text = value.to_string();
        let mut escaped = String::with_capacity(text.len() + 16);
        for c in text.chars() {
            match c {
                '&' => escaped.push_str("&amp;"),
                '<' => escaped.push_str("&lt;"),
                '>' => escaped.push_str("&gt;"),
                '"' => escaped.push_str("&quot;"),
                '\'' => escaped.push_str("&#39;"),
                c => escaped.push(c),
            }
        }
        return out
            .write_str(&escaped)
            .map_err(|e| minijinja::Error::new(minijinja::ErrorKind::WriteFailure, e.to_string()));
    }
    minijinja::escape_formatter(out, state, value)
}

/// The template's name, which its errors carry (`(in /etc/tributary/page.html:12)`): the
/// user's file as they named it, or the built-in one.
fn template_name(path: Option<&Path>) -> String {
    path.map_or_else(|| "page.html (built in)".to_string(), |p| p.display().to_string())
}

/// An environment holding the page template (the user's file, else the built-in one),
/// compiled: a syntax error is found here, with its line in that file.
fn environment(path: Option<&Path>) -> Result<Environment<'static>, String> {
    let source = match path {
        Some(p) => std::fs::read_to_string(p).map_err(|e| format!("cannot read {}: {e}", p.display()))?,
        None => BUILT_IN.to_string(),
    };
    let mut env = Environment::new();
    env.set_formatter(escape_minimal);
    // Whatever the file is called, what it prints is escaped as HTML.
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
    env.add_template_owned(template_name(path), source)
        .map_err(|e| e.to_string())?;
    Ok(env)
}

/// Compiles the page template at `path` (for `check`): its syntax errors, located in it.
pub fn check_template(path: &Path) -> Result<(), String> {
    environment(Some(path)).map(drop)
}

pub(super) fn render(
    spec: &OutputSpec,
    selection: &Selection,
    context: &Context,
) -> Result<Vec<u8>, OutputError> {
    let template_error = |message: String| OutputError::Template {
        path: spec.path.clone(),
        template: spec
            .template
            .as_ref()
            .map_or_else(|| "(built in)".to_string(), |p| p.display().to_string()),
        message,
    };
    let env = environment(spec.template.as_deref()).map_err(template_error)?;

    let mut days: Vec<Day<'_>> = Vec::new();
    for out in &selection.entries {
        let e = &out.stored.entry;
        let date = out.stored.published.format("%Y-%m-%d").to_string();
        if days.last().is_none_or(|d| d.date != date) {
            days.push(Day {
                label: out.stored.published.format("%A, %-d %B %Y").to_string(),
                date,
                entries: Vec::new(),
            });
        }
        let view = EntryView {
            title: if e.title.is_empty() {
                "(untitled)"
            } else {
                &e.title
            },
            link: e.link.as_deref(),
            feed: (&out.feed).into(),
            author: e.author.as_ref().map(|a| a.name.as_str()),
            published: rfc3339(out.stored.published),
            published_label: out.stored.published.format("%H:%M UTC").to_string(),
            body: e.content.as_deref().or(e.summary.as_deref()),
            enclosures: e
                .enclosures
                .iter()
                .map(|enc| EnclosureView {
                    url: &enc.url,
                    name: enc.url.rsplit('/').find(|s| !s.is_empty()).unwrap_or(&enc.url),
                    mime_type: enc.mime_type.as_deref(),
                })
                .collect(),
            also_in: out.also_in.iter().map(FeedLink::from).collect(),
        };
        if let Some(day) = days.last_mut() {
            day.entries.push(view);
        }
    }
    let alternates: Vec<AlternateView<'_>> = context
        .alternates
        .iter()
        .filter(|a| a.format != OutputFormat::Html)
        .map(|a| AlternateView {
            href: &a.href,
            title: &a.title,
            format: match a.format {
                OutputFormat::Atom => "Atom",
                OutputFormat::Rss => "RSS",
                OutputFormat::Json => "JSON Feed",
                OutputFormat::Opml => "OPML",
                OutputFormat::Html => "HTML",
            },
            media_type: a.format.content_type().split(';').next().unwrap_or_default(),
        })
        .collect();
    let feeds: Vec<FeedLink<'_>> = selection.feeds.iter().map(FeedLink::from).collect();
    let template = env
        .get_template(&template_name(spec.template.as_deref()))
        .map_err(|e| template_error(e.to_string()))?;
    let html = template
        .render(context! {
            output => context! {
                title => &spec.title,
                description => &spec.description,
                link => &spec.link,
                self_url => &spec.self_url,
            },
            days => minijinja::value::Serde(&days),
            feeds => minijinja::value::Serde(&feeds),
            alternates => minijinja::value::Serde(&alternates),
            version => env!("CARGO_PKG_VERSION"),
            generator_url => env!("CARGO_PKG_REPOSITORY"),
        })
        .map_err(|e| template_error(e.to_string()))?;
    let mut bytes = html.into_bytes();
    if bytes.last() != Some(&b'\n') {
        bytes.push(b'\n');
    }
    Ok(bytes)
}
