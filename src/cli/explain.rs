//! `tributary explain URL|ID`: for one entry, the answer to "why is this item missing, or
//! there twice?": which feeds carried it, its identity key and why, whether it was merged
//! with a duplicate or kept out by a rule or as back catalogue, and which outputs show it.

use std::path::Path;

use super::Status;
use crate::config::Config;
use crate::filter::Verdict;
use crate::model::{FullText, KeyKind, Language, LanguageSource, StoredEntry, display_url};
use crate::output::select;
use crate::store::{Store, StoreError};

pub(super) async fn run(config_path: &Path, what: &str) -> Status {
    let config = match super::load_with_lists(config_path).await {
        Ok(config) => config,
        Err(status) => return status,
    };
    // Never creates a database: before the first poll there is nothing to explain.
    if !config.backend().exists() {
        outln!(
            "no stored entry matches `{what}`: there is no database yet ({}); nothing has been \
             polled (tributary poll)",
            crate::store::describe(&config.backend())
        );
        return Status::FeedsFailed;
    }
    let store = match super::open_store(&config).await {
        Ok(store) => store,
        Err(status) => return status,
    };
    let text = explain(&store, &config, what).await;
    store.close().await;
    match text {
        Ok(Some(text)) => {
            out!("{text}");
            Status::Ok
        }
        Ok(None) => {
            outln!("no stored entry matches `{what}` (by link, guid, key, output id or title).");
            let rules: Vec<String> = config
                .feeds
                .iter()
                .filter(|f| !f.rules.is_empty())
                .map(|f| {
                    let rules: Vec<String> = f
                        .rules
                        .tables
                        .iter()
                        .flat_map(|t| {
                            let include = t.include.iter().map(|r| format!("include {r}"));
                            include.chain(t.exclude.iter().map(|r| format!("exclude {r}")))
                        })
                        .collect();
                    format!("  {}: {}", display_url(&f.url), rules.join(", "))
                })
                .collect();
            if rules.is_empty() {
                outln!(
                    "No feed has rules, so nothing was excluded before storing: it has not been polled yet."
                );
            } else {
                outln!("Entries excluded by a feed's rules are never stored; these feeds have rules:");
                outln!("{}", rules.join("\n"));
            }
            Status::FeedsFailed
        }
        Err(e) => {
            eprintln!("error: {e}");
            Status::Fatal
        }
    }
}

async fn explain(store: &Store, config: &Config, what: &str) -> Result<Option<String>, StoreError> {
    let canonical = crate::dedupe::canonical_url(what);
    let mut entries = store.entries_matching(what.to_string(), canonical).await?;
    if entries.is_empty() && what.starts_with("urn:uuid:") {
        let ids: Vec<i64> = store
            .entry_keys()
            .await?
            .into_iter()
            .filter(|(_, url, key)| {
                let shown = url::Url::parse(url).map_or_else(|_| url.clone(), |u| display_url(&u));
                crate::output::entry_id(&shown, key) == what
            })
            .map(|(id, _, _)| id)
            .collect();
        if !ids.is_empty() {
            entries.extend(store.entries(ids).await?);
        }
    }
    if entries.is_empty() {
        return Ok(None);
    }
    let feed_urls: std::collections::HashMap<i64, String> = {
        let urls: std::sync::Arc<[String]> = config.feeds.iter().map(|f| f.key.clone()).collect();
        store
            .feeds_by_url(urls)
            .await?
            .into_values()
            .map(|f| (f.id, f.url))
            .collect()
    };
    let mut out = String::new();
    for (n, e) in entries.iter().enumerate() {
        if n > 0 {
            out.push('\n');
        }
        describe(store, config, e, &feed_urls, &mut out).await?;
    }
    Ok(Some(out))
}

async fn describe(
    store: &Store,
    config: &Config,
    e: &StoredEntry,
    feed_urls: &std::collections::HashMap<i64, String>,
    out: &mut String,
) -> Result<(), StoreError> {
    use std::fmt::Write as _;
    let feed_url = feed_urls
        .get(&e.feed_id)
        .cloned()
        .unwrap_or_else(|| "(a feed no longer configured)".into());
    let spec = config.feeds.iter().find(|f| f.key == feed_url);
    let _ = writeln!(out, "entry: {}", crate::output::display_title(&e.entry));
    let _ = writeln!(out, "  link: {}", e.entry.link.as_deref().unwrap_or("(none)"));
    let _ = writeln!(
        out,
        "  feed: {}",
        spec.map_or(feed_url.clone(), |s| display_url(&s.url))
    );
    let scraped = match spec.map(|s| &s.source) {
        Some(crate::model::Source::Html(_)) => Some("a web page read through its `scrape` CSS selectors"),
        Some(crate::model::Source::Json(_)) => {
            Some("a JSON document read through its `scrape` JSON Pointers")
        }
        _ => None,
    };
    if let Some(source) = scraped {
        let _ = writeln!(out, "  source: {source}");
    }
    let why = match (e.key.kind(), &e.entry.guid, &e.entry.link) {
        (KeyKind::Link, None, _) if scraped.is_some() => {
            "its canonical link: a scraped story is known by its link"
        }
        (KeyKind::Guid, _, _) => "the feed's own guid/id, unique in its document",
        (KeyKind::Link, Some(_), _) => {
            "its canonical link: the feed's guid names several different stories in its document"
        }
        (KeyKind::Link, None, _) => "its canonical link: the feed gave no guid",
        (KeyKind::Hash, _, Some(_)) => {
            "a hash of title and content: the feed gives this link (and guid, if any) to several \
             different stories in its document"
        }
        (KeyKind::Hash, Some(_), None) => {
            "a hash of title and content: the feed's guid names several different stories and it gave no link"
        }
        (KeyKind::Hash, None, None) => "a hash of title and content: the feed gave neither a guid nor a link",
    };
    let _ = writeln!(out, "  identity key: {} ({why})", e.key);
    let repairs = store
        .feeds_by_url(vec![feed_url.clone()].into())
        .await?
        .remove(&feed_url)
        .map(|f| f.repairs)
        .unwrap_or_default();
    if !repairs.is_empty() {
        let what: Vec<&str> = repairs.iter().map(|r| r.describe()).collect();
        let _ = writeln!(
            out,
            "  its feed's last document was read with repairs: {}",
            what.join("; ")
        );
    }
    let content = match &e.entry.full_text {
        FullText::Page => {
            "the article on its page (full_text); the feed's own text is the summary".to_string()
        }
        FullText::Failed { error, tries } if *tries < 2 => {
            format!("the feed's own: its page gave no article ({error}); tried again at a later poll")
        }
        FullText::Failed { error, .. } => {
            format!("the feed's own: its page gave no article ({error}), twice; not tried again")
        }
        FullText::Feed if spec.is_some_and(|s| s.full_text) => {
            "the feed's own: full_text is on, but the entry has no web page to read (or it is in its \
             feed's back catalogue, or was stored before)"
                .to_string()
        }
        FullText::Feed => "the feed's own".to_string(),
    };
    let _ = writeln!(out, "  content: {content}");
    let language = match &e.entry.language {
        Some(Language { tag, source }) => match source {
            LanguageSource::Config => format!("{tag}, from its feed's `lang` in the config"),
            LanguageSource::Feed => format!("{tag}, as its feed declares"),
            LanguageSource::Detected => format!(
                "{tag}, read from its text (its feed declares no registered language tag; \
                 set [[feed]] lang to say it)"
            ),
        },
        None => "unknown: its feed declares none and its text does not show one clearly (outputs \
                 with `languages` take it as `und`)"
            .to_string(),
    };
    let _ = writeln!(out, "  language: {language}");
    let _ = writeln!(
        out,
        "  dates: published {}, updated {}, first seen {}",
        crate::output::rfc3339(e.published),
        crate::output::rfc3339(e.updated),
        crate::output::rfc3339(e.first_seen)
    );
    if e.pushed {
        let _ = writeln!(
            out,
            "  arrived: pushed by its feed's WebSub hub (a body the hub sent, not a poll's fetch)"
        );
    }
    let copies: Vec<StoredEntry> = match &e.canonical_link {
        Some(link) => store
            .entries_with_links(vec![link.clone()])
            .await?
            .into_iter()
            .filter(|c| c.id != e.id && feed_urls.contains_key(&c.feed_id))
            .collect(),
        None => Vec::new(),
    };
    for c in &copies {
        let url = feed_urls.get(&c.feed_id).map_or("?", String::as_str);
        let _ = writeln!(
            out,
            "  also carried by: {url} (same canonical link, first seen {})",
            crate::output::rfc3339(c.first_seen)
        );
    }
    if let (true, Some(rank)) = (e.hidden, e.catalogue_rank) {
        let _ = writeln!(
            out,
            "  kept out of outputs: back catalogue of its feed's first poll, number {} of it by date, \
             past poll.new_feed_entries = {} (set it to {} or more to show it)",
            rank + 1,
            config.poll.new_feed_entries,
            rank + 1
        );
    }
    for (i, output) in config.outputs.iter().enumerate() {
        let name = format!("output[{}] {}", i + 1, output.path.display());
        let in_selection = spec.is_some_and(|s| output.feeds.contains(&s.url));
        let verdict = crate::filter::verdict(&output.rules, &crate::filter::Fields::of(&e.entry));
        let tag = e.entry.language.as_ref().map(|l| l.tag.as_str());
        let line = if !in_selection {
            "not shown: its feed is not in this output's selection (tags / feeds)".to_string()
        } else if !select::in_languages(output, tag) {
            format!(
                "not shown: its language ({}) is not among this output's languages ({})",
                tag.unwrap_or("unknown: und"),
                output.languages.join(", ")
            )
        } else if let Verdict::Excluded(hit) = verdict {
            format!("not shown: excluded by {hit}")
        } else if let Verdict::NotIncluded(table) = verdict {
            format!(
                "not shown: it matches none of the include rules of {}",
                table.place
            )
        } else if e.hidden {
            "not shown: back catalogue of a new feed".to_string()
        } else {
            let selection = select::select(store, output, config).await?;
            match selection.entries.iter().find(|o| {
                o.stored.id == e.id
                    || o.stored.canonical_link.is_some() && o.stored.canonical_link == e.canonical_link
            }) {
                Some(o) if o.stored.id == e.id => {
                    let also: Vec<&str> = o.also_in.iter().map(|f| f.title.as_str()).collect();
                    if also.is_empty() {
                        "shown".to_string()
                    } else {
                        format!(
                            "shown, as the copy of the feed that had it first; also in {}",
                            also.join(", ")
                        )
                    }
                }
                Some(o) => format!(
                    "merged: shown once, as the copy from {} (it had the story first)",
                    o.feed.title
                ),
                None => format!(
                    "not shown: older than the newest {} entries this output keeps",
                    output.limit
                ),
            }
        };
        let _ = writeln!(out, "  {name}: {line}");
    }
    Ok(())
}
