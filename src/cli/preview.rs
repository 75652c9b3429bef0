//! `tributary preview URL|FEED`: a dry run of one feed (rawdog's `--dump`). The feed is fetched,
//! decoded, parsed and finished exactly as a poll would (a configured feed with its own
//! headers, kind, time zone, language, rewrite rules and rules), and what a poll would store is
//! printed: each entry's date, title, link, language and identity key, and the rule that would
//! keep an entry out. Nothing is stored; neither the config nor the database is touched.

use std::path::Path;

use url::Url;

use super::Status;
use crate::config::Config;
use crate::decode;
use crate::fetch::{Fetched, Fetcher, Request, Trust};
use crate::filter::{Fields, Verdict};
use crate::model::{FeedSpec, KeyKind, Validators};

pub(super) async fn run(config_path: &Path, what: &str) -> Status {
    // A config is not needed to look at a feed: without one, the defaults.
    let config = if config_path.exists() {
        match super::load(config_path) {
            Ok(config) => config,
            Err(status) => return status,
        }
    } else {
        match Config::parse(config_path, "") {
            Ok(config) => config,
            Err(e) => {
                eprintln!("error: {e}");
                return Status::Fatal;
            }
        }
    };
    // A path is where the shell is, as the user typed it.
    let file = Url::parse(what)
        .is_err()
        .then(|| std::path::absolute(what).ok())
        .flatten()
        .filter(|p| p.exists())
        .and_then(|p| Url::from_file_path(p).ok());
    let what = file.as_ref().map_or(what, Url::as_str);
    let spec = match configured(&config, what) {
        Some(spec) => spec,
        None => match adhoc(&config, what) {
            Ok(spec) => spec,
            Err(e) => {
                eprintln!("error: {e}");
                return Status::Fatal;
            }
        },
    };
    match preview(&config, &spec).await {
        Ok(text) => {
            out!("{text}");
            Status::Ok
        }
        Err(e) => {
            eprintln!("error: {}: {e}", crate::model::display_url(&spec.url));
            Status::FeedsFailed
        }
    }
}

/// The configured feed `what` names (its URL as written or its title), if any.
fn configured(config: &Config, what: &str) -> Option<FeedSpec> {
    config
        .feeds
        .iter()
        .find(|f| f.url.as_str() == what || f.key == what || f.title.as_deref() == Some(what))
        .cloned()
}

/// A feed that is not in the config: read with the config's defaults, as a plain feed.
fn adhoc(config: &Config, url: &str) -> Result<FeedSpec, String> {
    let toml = format!("[[feed]]\nurl = {}\n", toml::Value::String(url.to_string()));
    let mut with_feed = Config::parse(&config.source, &toml).map_err(|e| e.to_string())?;
    let mut spec = with_feed.feeds.pop().ok_or("not a feed URL")?;
    spec.rules = Default::default();
    Ok(spec)
}

async fn preview(config: &Config, spec: &FeedSpec) -> Result<String, String> {
    use std::fmt::Write as _;
    let fetcher = Fetcher::new(&config.poll).map_err(|e| e.to_string())?;
    let request = Request {
        url: &spec.url,
        validators: &Validators::default(),
        headers: &spec.headers,
        trust: Trust::Operator,
        timeout: spec.timeout,
        proxy: spec.proxy.as_ref(),
    };
    let body = match fetcher.fetch(request).await.map_err(|e| e.to_string())? {
        Fetched::Modified(body) => body,
        Fetched::NotModified { .. } => {
            return Err("the server answered 304 to a request without validators".into());
        }
    };
    let final_url: Url = body.final_url.clone();
    let decoded = decode::decode(body.bytes, body.content_type.as_deref());
    let zone = spec.timezone.unwrap_or(chrono_tz::UTC);
    let mut feed =
        crate::parse::parse_source(&decoded.text, &final_url, &Default::default(), &spec.source, zone)
            .map_err(|e| e.to_string())?;
    let keyed = crate::dedupe::key_entries(std::mem::take(&mut feed.entries));
    let mut languages = crate::content::Languages {
        configured: spec.lang.clone(),
        declared: feed.meta.language.clone(),
        ..Default::default()
    };
    let mut sanitizer = crate::content::Sanitizer::new();
    let entries: Vec<_> = keyed
        .into_iter()
        .map(|k| crate::content::finish(k, &spec.rewrite, &mut languages, &mut sanitizer))
        .collect();

    let mut out = String::new();
    let title = spec.title.clone().or(feed.meta.title.clone()).unwrap_or_default();
    let _ = writeln!(out, "{}: {}", crate::model::display_url(&final_url), title);
    if let Some(moved) = &body.moved {
        let _ = writeln!(out, "  moved permanently to {moved}");
    }
    if let Some(site) = &feed.meta.site_url {
        let _ = writeln!(out, "  site: {site}");
    }
    let _ = writeln!(
        out,
        "  language: {}",
        feed.meta
            .language
            .as_deref()
            .unwrap_or("none declared (each entry's is read from its text)")
    );
    if !feed.meta.repairs.is_empty() {
        let what: Vec<&str> = feed.meta.repairs.iter().map(|r| r.describe()).collect();
        let _ = writeln!(out, "  read with repairs: {}", what.join("; "));
    }
    let mut kept = 0;
    for e in &entries {
        let entry = &e.entry;
        let verdict = crate::filter::verdict(&spec.rules, &Fields::of(entry));
        let date = entry.published.map_or_else(
            || "(no date: its first-seen time)".to_string(),
            crate::output::rfc3339,
        );
        let _ = writeln!(out, "\n  {date}  {}", crate::output::display_title(entry));
        if let Some(link) = &entry.link {
            let _ = writeln!(out, "    link: {link}");
        }
        if let Some(language) = &entry.language {
            let _ = writeln!(
                out,
                "    language: {} ({})",
                language.tag,
                language.source.as_str()
            );
        }
        let why = match e.key.kind() {
            KeyKind::Guid => "its guid",
            KeyKind::Link => "its link",
            KeyKind::Hash => "a hash of its title and content",
        };
        let _ = writeln!(out, "    key: {} ({why})", e.key);
        match verdict {
            Verdict::Keep => kept += 1,
            Verdict::Excluded(hit) => {
                let _ = writeln!(out, "    would not be stored: excluded by {hit}");
            }
            Verdict::NotIncluded(table) => {
                let _ = writeln!(
                    out,
                    "    would not be stored: it matches none of the include rules of {}",
                    table.place
                );
            }
        }
    }
    let _ = writeln!(
        out,
        "\n{}, {kept} would be stored; nothing was stored (a preview)",
        crate::model::counted(entries.len(), "entry", "entries")
    );
    Ok(out)
}
