//! The planet-style HTML page: newest entries grouped by day (in the output's time zone, with
//! dates in its language), each with title, source, author, date and its sanitized content,
//! marked with its feed's language; the subscriptions with their health and when they were
//! last checked; and links to every machine-readable output. No JavaScript.
//!
//! The page is a minijinja template (built in, or `[[output]] template = "file"`). minijinja
//! escapes everything it prints in an `.html` template; entry bodies, already sanitized on the
//! way in, are the only values marked safe. The built-in template documents the variables.

use std::path::Path;

use minijinja::{Environment, context};
use serde::Serialize;

use chrono::{DateTime, Utc};

use super::{Context, FeedView, OutputError, Selection, display_title, rfc3339};
use crate::model::{OutputFormat, OutputSpec};

/// The built-in page template (`tributary template` prints it).
pub const BUILT_IN: &str = include_str!("page.html");

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
    /// Its feed's language, when the feed declares one.
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
    url: &'a str,
    site_url: Option<&'a str>,
    failing_since: Option<String>,
    last_error: Option<&'a str>,
    polled: bool,
    lang: Option<&'a str>,
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
            lang: f.lang.as_deref(),
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

/// How the page writes dates: in the output's time zone, with the words of its language
/// (month and day names from glibc's locale data, through chrono).
struct Dates {
    tz: chrono_tz::Tz,
    locale: Option<chrono::Locale>,
}

impl Dates {
    fn new(spec: &OutputSpec) -> Dates {
        Dates {
            tz: spec.timezone.unwrap_or(chrono_tz::UTC),
            locale: spec.lang.as_deref().and_then(locale_for),
        }
    }

    fn format(&self, t: DateTime<Utc>, pattern: &str) -> String {
        let local = t.with_timezone(&self.tz);
        match self.locale {
            Some(locale) => local.format_localized(pattern, locale).to_string(),
            None => local.format(pattern).to_string(),
        }
    }

    /// The local calendar date, which days are grouped by.
    fn day_key(&self, t: DateTime<Utc>) -> String {
        t.with_timezone(&self.tz).format("%Y-%m-%d").to_string()
    }

    /// A day heading: "Tuesday, 1 December 2026", "mardi 1 décembre 2026"; in a language whose
    /// own date form carries its words (2026年12月01日), that form with the weekday.
    fn day_label(&self, t: DateTime<Utc>) -> String {
        match self.locale {
            None => self.format(t, "%A, %-d %B %Y"),
            Some(_) if self.format(t, "%x").is_ascii() => self.format(t, "%A %-d %B %Y"),
            Some(_) => self.format(t, "%x (%a)"),
        }
    }

    fn time_label(&self, t: DateTime<Utc>) -> String {
        self.format(t, "%H:%M %Z")
    }
}

/// The glibc locale for a BCP 47 tag: its own region when it names one (`pt-BR`), else the
/// language's home region (`fr` → `fr_FR`), else any region that has the language.
fn locale_for(tag: &str) -> Option<chrono::Locale> {
    let mut parts = tag.split(['-', '_']);
    let lang = parts.next()?.to_ascii_lowercase();
    let region = parts
        .find(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_alphabetic()))
        .map(|r| r.to_ascii_uppercase());
    let find = |region: &str| chrono::Locale::try_from(format!("{lang}_{region}").as_str()).ok();
    region
        .and_then(|r| find(&r))
        .or_else(|| find(&lang.to_ascii_uppercase()))
        .or_else(|| {
            (b'A'..=b'Z')
                .flat_map(|a| (b'A'..=b'Z').map(move |b| [a, b]))
                .find_map(|r| find(std::str::from_utf8(&r).ok()?))
        })
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
    let dates = Dates::new(spec);

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
            lang: out.feed.lang.as_deref(),
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
        })
        .collect();
    let feeds: Vec<FeedLink<'_>> = selection.feeds.iter().map(FeedLink::from).collect();
    // When the newest poll of these feeds ran: what "updated" means to a reader wondering
    // whether the page is stale, whether or not that poll found anything new.
    let updated = selection.feeds.iter().filter_map(|f| f.checked).max().map(|t| {
        context! {
            datetime => rfc3339(t),
            label => format!("{}, {}", dates.day_label(t), dates.time_label(t)),
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
                lang => spec.lang.as_deref().unwrap_or("en"),
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

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("a date")
            .with_timezone(&Utc)
    }

    fn dates(lang: Option<&str>, tz: Option<&str>) -> Dates {
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
        Dates::new(&config.outputs[0])
    }

    #[test]
    fn dates_are_written_in_the_outputs_language_and_zone() {
        let t = at("2026-03-03T20:30:00Z");
        let english = dates(None, None);
        assert_eq!(
            (english.day_label(t), english.time_label(t)),
            ("Tuesday, 3 March 2026".into(), "20:30 UTC".into())
        );
        let french = dates(Some("fr"), Some("Europe/Paris"));
        assert_eq!(
            (french.day_label(t), french.time_label(t)),
            ("mardi 3 mars 2026".into(), "21:30 CET".into())
        );
        let japanese = dates(Some("ja"), Some("Asia/Tokyo"));
        assert_eq!(japanese.day_key(t), "2026-03-04");
        assert_eq!(japanese.day_label(t), "2026年03月04日 (水)");
        let brazilian = dates(Some("pt-BR"), Some("America/Sao_Paulo"));
        assert_eq!(brazilian.day_label(t), "terça 3 março 2026");
        // A language glibc has no locale for keeps the English words.
        assert!(locale_for("tlh").is_none());
    }
}
