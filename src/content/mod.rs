//! Owns what happens to a new or changed entry's body between the compare with the store and
//! the rules: HTML sanitized (an ammonia allow-list, with a fast path for HTML that is already
//! clean), plain text escaped into HTML, relative URLs resolved against the entry's base; and
//! for feeds that ask for them, the article read from the entry's page ([`full_text`]) and
//! rewrite rules (`remove` / `unwrap` a CSS selector, `replace` a pattern).
//!
//! It runs after the compare on purpose: an entry the store already holds unchanged is never
//! sanitized again, and sanitizing is the costly part of a poll. Rules ([`crate::filter`]) then
//! judge the finished entry, exactly as output rules will see it stored.

mod fast_html;
pub(crate) mod full_text;
pub(crate) mod icon;
mod rewrite;
pub(crate) mod sanitize;

use std::borrow::Cow;

use crate::model::{Entry, Keyed, KeyedEntry, Language, LanguageSource, Rewrite};
use crate::parse::{ParsedEntry, RawBody};

pub(crate) use sanitize::Sanitizer;

/// Who may name a new entry's language, most trusted first: the operator (`[[feed]] lang`),
/// then the feed (its declared language, when that is a registered tag); else the entry's own
/// text says it, when it clearly does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Languages {
    pub(crate) configured: Option<String>,
    pub(crate) declared: Option<String>,
    /// Detection across this poll's entries of the feed.
    pub(crate) detector: crate::text::language::FeedDetector,
}

/// How much of an entry detection reads: its title and the start of its text.
const DETECT_BYTES: usize = 1_000;

fn language_of(entry: &Entry, languages: &mut Languages) -> Option<Language> {
    let said = |tag: &Option<String>, source| tag.clone().map(|tag| Language { tag, source });
    if let Some(language) = said(&languages.configured, LanguageSource::Config)
        .or_else(|| said(&languages.declared, LanguageSource::Feed))
    {
        return Some(language);
    }
    let sample = || {
        let mut sample = entry.title.clone();
        for body in [&entry.summary, &entry.content].into_iter().flatten() {
            sample.push('\n');
            sample.push_str(&crate::text::visible_text(body, DETECT_BYTES));
        }
        sample
    };
    Some(Language {
        tag: languages.detector.detect(&entry.title, sample)?,
        source: LanguageSource::Detected,
    })
}

/// The entry as it will be stored: the feed's `rewrite` rules applied (to the title and the
/// bodies), bodies sanitized (HTML) or escaped (text), relative URLs resolved, empty bodies
/// dropped, and its language decided.
pub fn finish_entry(
    parsed: ParsedEntry,
    rules: &[Rewrite],
    languages: &mut Languages,
    sanitizer: &mut Sanitizer,
) -> Entry {
    let base = parsed.base;
    let mut html_of = |body: Option<RawBody>| {
        let body = body?;
        let html = if body.is_html {
            sanitizer.clean(&rewrite::html(rules, &body.text), base.as_ref())
        } else {
            sanitize::text_to_html(&rewrite::text(rules, &body.text))
        };
        Some(html).filter(|h| !h.trim().is_empty())
    };
    let summary = html_of(parsed.summary);
    let content = html_of(parsed.content);
    let mut entry = parsed.entry;
    if let Cow::Owned(title) = rewrite::text(rules, &entry.title) {
        entry.title = title;
    }
    let mut entry = Entry {
        summary,
        content,
        ..entry
    };
    entry.language = language_of(&entry, languages);
    entry
}

/// [`finish_entry`] for a keyed entry, its identity kept: what the store receives.
pub fn finish(
    keyed: Keyed<ParsedEntry>,
    rules: &[Rewrite],
    languages: &mut Languages,
    sanitizer: &mut Sanitizer,
) -> KeyedEntry {
    Keyed {
        key: keyed.key,
        content_hash: keyed.content_hash,
        canonical_link: keyed.canonical_link,
        segment: keyed.segment,
        entry: finish_entry(keyed.entry, rules, languages, sanitizer),
    }
}

#[cfg(test)]
mod tests {
    use url::Url;

    use super::*;

    #[test]
    fn bodies_are_sanitized_escaped_and_resolved_against_the_entry_base() {
        let feed = crate::parse::parse_document(
            "<rss version=\"2.0\"><channel><item><guid>1</guid>\
             <description>&lt;a href=\"x\" onclick=\"y()\"&gt;x&lt;/a&gt;</description></item>\
             <item><guid>2</guid><title>t</title><description>   </description></item></channel></rss>",
            &Url::parse("https://example.org/feed/").unwrap(),
        )
        .unwrap();
        let mut sanitizer = Sanitizer::new();
        let entries: Vec<Entry> = feed
            .entries
            .into_iter()
            .map(|e| finish_entry(e, &[], &mut Languages::default(), &mut sanitizer))
            .collect();
        let summary = entries[0].summary.as_deref().unwrap();
        assert!(
            summary.contains("href=\"https://example.org/feed/x\""),
            "{summary}"
        );
        assert!(!summary.contains("onclick"), "{summary}");
        assert_eq!(entries[1].summary, None, "a blank body is no body");
        let text = ParsedEntry {
            content: Some(RawBody {
                text: "a < b\n\nsecond".into(),
                is_html: false,
            }),
            ..ParsedEntry::from(Entry::default())
        };
        assert_eq!(
            finish_entry(text, &[], &mut Languages::default(), &mut sanitizer)
                .content
                .as_deref(),
            Some("<p>a &lt; b</p>\n<p>second</p>")
        );
    }
}
