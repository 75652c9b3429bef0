//! The planet-style HTML page: newest entries grouped by day (in the output's time zone, with
//! words and dates in its language), each with title, source, author, date and its sanitized
//! content, marked with its language; when its newest story arrived; the subscriptions with
//! their health; and links to every machine-readable output. No JavaScript.
//!
//! The page is a minijinja template (built in, or `[[output]] template = "file"`). minijinja
//! escapes everything it prints in an `.html` template; entry bodies, already sanitized on the
//! way in, are the only values marked safe. The built-in template documents the variables.

use std::path::Path;

use minijinja::{Environment, context};
use serde::Serialize;

use super::locale::Locale;
use super::{Context, FeedView, OutputError, Selection, display_title, entry_language, rfc3339};
use crate::model::{OutputFormat, OutputSpec};

/// The built-in page template (`tributary template` prints it).
pub(crate) const BUILT_IN: &str = include_str!("page.html");

#[derive(Serialize)]
struct Day<'a> {
    date: String,
    label: String,
    entries: Vec<EntryView<'a>>,
}

#[derive(Serialize)]
struct EntryView<'a> {
    title: std::borrow::Cow<'a, str>,
    /// The title is the entry's first words (it has none of its own).
    title_from_text: bool,
    /// Its language (see [`entry_language`]).
    lang: Option<&'a str>,
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
    /// `None` for a local file (see [`FeedView::public_url`]).
    url: Option<&'a str>,
    site_url: Option<&'a str>,
    failing_since: Option<String>,
    /// What kind of failure (`timeout`, `parse`, …): the page says it in its words.
    failure: Option<&'static str>,
    polled: bool,
    lang: Option<&'a str>,
    /// Its icon, relative to the page.
    icon: Option<String>,
}

impl<'a> From<&'a FeedView> for FeedLink<'a> {
    fn from(f: &'a FeedView) -> FeedLink<'a> {
        FeedLink {
            title: &f.title,
            url: f.public_url(),
            site_url: f.site_url.as_deref(),
            failing_since: f.failing.as_ref().map(|(t, _)| t.format("%Y-%m-%d").to_string()),
            failure: f.failing.as_ref().map(|(_, kind)| kind.as_str()),
            polled: f.polled,
            lang: f.lang.as_deref(),
            icon: f
                .icon
                .as_ref()
                .map(|i| format!("{}/{}", super::ICONS_DIR, i.file_name())),
        }
    }
}

#[derive(Serialize)]
struct AlternateView<'a> {
    href: &'a str,
    title: &'a str,
    format: &'static str,
    media_type: &'static str,
    /// How many read it (`show_readers`); `None` when not shown or none counted.
    readers: Option<u64>,
}

/// minijinja's HTML escaping also escapes `/` (as `&#x2f;`), which is valid but makes every
/// URL in the page unreadable; escaping `& < > " '` is what HTML needs, in text and in quoted
/// attributes alike (html-escape's quoted-attribute set, as everywhere else we write HTML).
fn escape_minimal(
    out: &mut minijinja::Output,
    state: &mut minijinja::State,
    value: &minijinja::Value,
) -> Result<(), minijinja::Error> {
    if matches!(state.auto_escape(), minijinja::AutoEscape::Html) && !value.is_safe() && !value.is_none() {
        let escaped = html_escape::encode_quoted_attribute(&value.to_string()).into_owned();
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

/// `t(id, name=value, …)` for templates: message `id` of the page's catalog with its
/// arguments, as safe HTML (the message escaped; an argument escaped unless it is already safe
/// HTML, such as a link the template built, or another message).
fn translate(
    locale: &Locale,
    id: &str,
    kwargs: minijinja::value::Kwargs,
) -> Result<minijinja::Value, minijinja::Error> {
    let mut args = fluent_bundle::FluentArgs::new();
    let mut inserts = Vec::new();
    for name in kwargs.args() {
        let value: minijinja::Value = kwargs.get(name)?;
        // A number goes in as one, for the catalog's plural forms; it needs no escaping.
        if let Some(n) = value.as_i64() {
            args.set(name.to_string(), n);
            continue;
        }
        let html = if value.is_safe() {
            value.to_string()
        } else {
            html_escape::encode_quoted_attribute(&value.to_string()).into_owned()
        };
        // A private-use marker stands for the argument while the message is escaped.
        args.set(name.to_string(), format!("\u{e000}{}\u{e001}", inserts.len()));
        inserts.push(html);
    }
    kwargs.assert_all_used()?;
    let text = locale.message(id, Some(&args)).ok_or_else(|| {
        minijinja::Error::new(
            minijinja::ErrorKind::InvalidOperation,
            format!("no message `{id}`"),
        )
    })?;
    let mut html = html_escape::encode_quoted_attribute(&text).into_owned();
    for (i, insert) in inserts.iter().enumerate() {
        html = html.replace(&format!("\u{e000}{i}\u{e001}"), insert);
    }
    Ok(minijinja::Value::from_safe_string(html))
}

/// An environment holding the page template (the user's file, else the built-in one),
/// compiled: a syntax error is found here, with its line in that file. `locale` gives the
/// template its words (`t`); `check` compiles without one.
fn environment(
    path: Option<&Path>,
    locale: Option<std::sync::Arc<Locale>>,
) -> Result<Environment<'static>, String> {
    let source = match path {
        Some(p) => std::fs::read_to_string(p).map_err(|e| format!("cannot read {}: {e}", p.display()))?,
        None => BUILT_IN.to_string(),
    };
    let mut env = Environment::new();
    env.set_formatter(escape_minimal);
    // Whatever the file is called, what it prints is escaped as HTML.
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
    let locale = locale.unwrap_or_else(|| std::sync::Arc::new(Locale::new(None, chrono_tz::UTC)));
    env.add_function("t", move |id: &str, kwargs: minijinja::value::Kwargs| {
        translate(&locale, id, kwargs)
    });
    env.add_template_owned(template_name(path), source)
        .map_err(|e| e.to_string())?;
    Ok(env)
}

/// Compiles the page template at `path` (for `check`): its syntax errors, located in it.
pub(crate) fn check_template(path: &Path) -> Result<(), String> {
    environment(Some(path), None).map(drop)
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
    let locale = std::sync::Arc::new(Locale::new(
        spec.lang.as_deref(),
        spec.timezone.unwrap_or(chrono_tz::UTC),
    ));
    let env = environment(spec.template.as_deref(), Some(locale.clone())).map_err(template_error)?;
    let dates = &locale;

    let mut days: Vec<Day<'_>> = Vec::new();
    for out in &selection.entries {
        let e = &out.stored.entry;
        let date = dates.day_key(out.stored.published);
        if days.last().is_none_or(|d| d.date != date) {
            days.push(Day {
                label: dates.day_label(out.stored.published),
                date,
                entries: Vec::new(),
            });
        }
        let view = EntryView {
            title: display_title(e),
            title_from_text: e.title.is_empty(),
            lang: entry_language(out),
            link: e.link.as_deref(),
            feed: (&out.feed).into(),
            author: e.author.as_ref().map(|a| a.name.as_str()),
            published: rfc3339(out.stored.published),
            published_label: dates.time_label(out.stored.published),
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
            readers: spec
                .show_readers
                .then(|| selection.readers.get(&a.name).copied())
                .flatten(),
        })
        .collect();
    let feeds: Vec<FeedLink<'_>> = selection.feeds.iter().map(FeedLink::from).collect();
    // When the newest story on the page arrived. Not when the feeds were last checked: that
    // changes at every poll, and a page rewritten at every poll gets a new ETag each time, so
    // every reader and cache downloads it again though nothing on it changed. A reader who
    // wonders whether the page is stale sees when it last had something new; each failing
    // feed says so beside its name.
    let updated = selection
        .entries
        .iter()
        .map(|e| e.stored.first_seen)
        .max()
        .map(|t| {
            context! {
                datetime => rfc3339(t),
                label => dates.date_time_label(t),
            }
        });
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
                icon => &spec.icon,
                lang => spec.lang.as_deref().unwrap_or("en"),
                dir => if locale.rtl { "rtl" } else { "ltr" },
                updated => updated,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The custom properties set in the built-in page's `:root` rule for one colour scheme.
    fn colours(dark: bool) -> std::collections::HashMap<String, String> {
        let css = BUILT_IN;
        let rule = if dark {
            let at = css.find("prefers-color-scheme: dark").expect("a dark scheme");
            &css[at..]
        } else {
            css
        };
        let root = &rule[rule.find(":root {").expect(":root")..];
        let root = &root[..root.find('}').expect("end of :root")];
        root.split(';')
            .filter_map(|decl| decl.trim().trim_start_matches(":root {").trim().split_once(':'))
            .filter(|(name, _)| name.trim().starts_with("--"))
            .map(|(name, value)| (name.trim().to_string(), value.trim().to_string()))
            .collect()
    }

    /// WCAG 2 relative luminance of `#rrggbb`.
    fn luminance(hex: &str) -> f64 {
        let channel = |i: usize| {
            let c =
                f64::from(u8::from_str_radix(&hex[1 + 2 * i..3 + 2 * i], 16).expect("hex colour")) / 255.0;
            if c <= 0.03928 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        };
        0.2126 * channel(0) + 0.7152 * channel(1) + 0.0722 * channel(2)
    }

    #[test]
    fn text_colours_meet_wcag_aa_in_both_schemes() {
        for dark in [false, true] {
            let c = colours(dark);
            let bg = luminance(&c["--bg"]);
            for text in ["--fg", "--muted", "--accent", "--bad"] {
                let fg = luminance(&c[text]);
                let ratio = (bg.max(fg) + 0.05) / (bg.min(fg) + 0.05);
                assert!(ratio >= 4.5, "{text} on --bg is {ratio:.2}:1 (dark: {dark})");
            }
        }
    }

    fn at(s: &str) -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::parse_from_rfc3339(s)
            .expect("a date")
            .with_timezone(&chrono::Utc)
    }

    fn locale(lang: Option<&str>, tz: Option<&str>) -> Locale {
        let mut toml =
            String::from("[store]\npath = \"t.db\"\n[[output]]\npath = \"index.html\"\nformat = \"html\"\n");
        if let Some(lang) = lang {
            toml.push_str(&format!("lang = \"{lang}\"\n"));
        }
        if let Some(tz) = tz {
            toml.push_str(&format!("timezone = \"{tz}\"\n"));
        }
        let config =
            crate::config::Config::parse(Path::new("/planet/tributary.toml"), &toml).expect("a config");
        let spec = &config.outputs[0];
        Locale::new(spec.lang.as_deref(), spec.timezone.unwrap_or(chrono_tz::UTC))
    }

    #[test]
    fn dates_are_written_in_the_outputs_language_and_zone() {
        let t = at("2026-03-03T20:30:00Z");
        let english = locale(None, None);
        assert_eq!(
            (english.day_label(t), english.time_label(t)),
            ("Tuesday, 3 March 2026".into(), "20:30 UTC".into())
        );
        let french = locale(Some("fr"), Some("Europe/Paris"));
        assert_eq!(
            (french.day_label(t), french.time_label(t)),
            ("mardi 3 mars 2026".into(), "21:30 CET".into())
        );
        let japanese = locale(Some("ja"), Some("Asia/Tokyo"));
        assert_eq!(japanese.day_key(t), "2026-03-04");
        assert_eq!(japanese.day_label(t), "2026年3月4日 水曜日");
        let brazilian = locale(Some("pt-BR"), Some("America/Sao_Paulo"));
        assert_eq!(brazilian.day_label(t), "terça, 3 de março de 2026");
        // A language glibc has no locale for keeps the English words.
        let klingon = locale(Some("tlh"), None);
        assert_eq!(klingon.day_label(t), "Tuesday, 3 March 2026");
    }
}
