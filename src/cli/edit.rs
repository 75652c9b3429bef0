//! `tributary add` / `remove`, and the config editing `import` shares: the file is edited with
//! toml_edit so its comments and layout stay as the operator wrote them, the result is
//! validated before it is written, and it is written atomically.

use std::path::Path;

use toml_edit::{Array, ArrayOfTables, DocumentMut, Item, Table, value};
use url::Url;

use super::Status;
use crate::config::Config;
use crate::decode;
use crate::fetch::{Fetched, Fetcher, Request};
use crate::model::Validators;

/// A feed to add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NewFeed {
    pub(crate) url: String,
    pub(crate) title: Option<String>,
    /// Its web page (OPML `htmlUrl`).
    pub(crate) site: Option<String>,
    pub(crate) tags: Vec<String>,
}

/// What adding feeds did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Added {
    pub(crate) added: usize,
    /// Already configured, and given a new title or tags: those were applied.
    pub(crate) updated: usize,
    /// Already configured as asked.
    pub(crate) skipped: usize,
    /// Already configured in a file the main one includes, which is left as it is (counted
    /// in `skipped` too): each with that file.
    pub(crate) elsewhere: Vec<(String, std::path::PathBuf)>,
}

/// Adds `feeds` that are not configured yet, and applies the title and tags given for those
/// that are.
pub(crate) fn append_feeds(config_path: &Path, feeds: &[NewFeed]) -> Result<Added, String> {
    let text = std::fs::read_to_string(config_path)
        .map_err(|e| format!("cannot read {}: {e}", config_path.display()))?;
    let config = Config::parse(config_path, &text)
        .map_err(|e| format!("the config has problems; fix them first:\n{e}"))?;
    let mut doc: DocumentMut = text
        .parse()
        .map_err(|e| format!("{}: {e}", config_path.display()))?;
    let mut known: Vec<Url> = config.feeds.iter().map(|f| f.url.clone()).collect();
    // A feed listed twice in what is added (an OPML with it in two folders) keeps the title it
    // was first given, and gathers the tags of both.
    let mut first_given: std::collections::HashSet<usize> = std::collections::HashSet::new();
    let mut result = Added::default();
    for feed in feeds {
        let resolved = resolve(config_path, &feed.url);
        if let Some(at) = resolved.as_ref().and_then(|u| known.iter().position(|k| k == u)) {
            if let Some(file) = config
                .feed_files
                .get(at)
                .filter(|f| !is_same_file(f, config_path))
            {
                result.skipped += 1;
                result.elsewhere.push((feed.url.clone(), file.clone()));
                continue;
            }
            let again = !first_given.insert(at);
            let feed = &NewFeed {
                title: feed.title.clone().filter(|_| !again),
                site: feed.site.clone().filter(|_| !again),
                ..feed.clone()
            };
            if update_feed(config_path, &mut doc, at, feed)? {
                result.updated += 1;
            } else {
                result.skipped += 1;
            }
            continue;
        }
        let array = doc
            .entry("feed")
            .or_insert(Item::ArrayOfTables(ArrayOfTables::new()))
            .as_array_of_tables_mut()
            .ok_or("`feed` in the config is not an array of tables ([[feed]])")?;
        let mut table = Table::new();
        table.insert("url", value(feed.url.clone()));
        if let Some(title) = &feed.title {
            table.insert("title", value(title.clone()));
        }
        if let Some(site) = &feed.site {
            table.insert("site", value(site.clone()));
        }
        if !feed.tags.is_empty() {
            table.insert(
                "tags",
                value(feed.tags.iter().map(String::as_str).collect::<Array>()),
            );
        }
        array.push(table);
        if let Some(url) = resolved {
            first_given.insert(known.len());
            known.push(url);
        }
        result.added += 1;
    }
    if result.added + result.updated > 0 {
        save(config_path, &doc)?;
    }
    Ok(result)
}

/// Gives the `at`-th `[[feed]]` the title and tags `feed` asks for (tags are added to its
/// own); whether that changed anything.
fn update_feed(config_path: &Path, doc: &mut DocumentMut, at: usize, feed: &NewFeed) -> Result<bool, String> {
    let table = doc
        .get_mut("feed")
        .and_then(Item::as_array_of_tables_mut)
        .and_then(|a| a.get_mut(at))
        .ok_or_else(|| format!("cannot find that feed's table in {}", config_path.display()))?;
    let mut changed = false;
    if let Some(title) = &feed.title
        && table.get("title").and_then(Item::as_str) != Some(title.as_str())
    {
        table.insert("title", value(title.clone()));
        changed = true;
    }
    if let Some(site) = &feed.site
        && table.get("site").and_then(Item::as_str).is_none()
    {
        table.insert("site", value(site.clone()));
        changed = true;
    }
    if !feed.tags.is_empty() {
        let mut tags: Vec<String> = table
            .get("tags")
            .and_then(Item::as_array)
            .map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect())
            .unwrap_or_default();
        for tag in &feed.tags {
            if !tags.contains(tag) {
                tags.push(tag.clone());
                changed = true;
            }
        }
        if changed {
            table.insert("tags", value(tags.iter().map(String::as_str).collect::<Array>()));
        }
    }
    Ok(changed)
}

/// Whether two paths name one file (the config's path as given, and as validation made it
/// absolute).
fn is_same_file(a: &Path, b: &Path) -> bool {
    std::path::absolute(a).ok() == std::path::absolute(b).ok()
}

/// The URL a feed reference in this config resolves to (as validation resolves it).
fn resolve(config_path: &Path, reference: &str) -> Option<Url> {
    let probe = format!("[[feed]]\nurl = {}\n", toml_edit::Value::from(reference));
    Config::parse(config_path, &probe)
        .ok()?
        .feeds
        .into_iter()
        .next()
        .map(|f| f.url)
}

/// Writes `doc` over the config, after checking it is still a valid config.
fn save(config_path: &Path, doc: &DocumentMut) -> Result<(), String> {
    let text = doc.to_string();
    Config::parse(config_path, &text)
        .map_err(|e| format!("the edited config would be invalid; not written:\n{e}"))?;
    crate::output::write_if_changed(config_path, text.as_bytes())
        .map(drop)
        .map_err(|e| format!("cannot write {}: {e}", config_path.display()))
}

pub(super) async fn add(config_path: &Path, url: &str, title: Option<String>, tags: Vec<String>) -> Status {
    let feed_url = match Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => match discover(config_path, &u).await {
            Ok(Discovered::Feed { url: found, others }) => {
                // A page with several feeds (posts and comments, or one per language): the
                // one taken is the first the page lists, and the rest are named to pick from.
                for other in &others {
                    outln!("the page also links to {other} (add it with `tributary add {other}`)");
                }
                found
            }
            Ok(Discovered::Page { text, base }) => return propose_source(config_path, &u, &text, &base),
            Err(e) => {
                eprintln!("error: {e}");
                return Status::Fatal;
            }
        },
        // A path or file:// URL is taken as it is.
        _ => url.to_string(),
    };
    if feed_url != url {
        outln!("found the feed of {url}: {feed_url}");
    }
    let feed = NewFeed {
        url: feed_url.clone(),
        title,
        site: None,
        tags,
    };
    match append_feeds(config_path, &[feed]) {
        Ok(Added { elsewhere, .. }) if !elsewhere.is_empty() => {
            let (_, file) = &elsewhere[0];
            outln!(
                "{feed_url} is already in {}, which {} includes: edit it there",
                file.display(),
                config_path.display()
            );
            Status::Ok
        }
        Ok(Added { added: 1, .. }) => {
            outln!("added {feed_url} to {}", config_path.display());
            reload_hint(config_path);
            Status::Ok
        }
        Ok(Added { updated: 1, .. }) => {
            outln!(
                "{feed_url} is already in {}: its title and tags were updated",
                config_path.display()
            );
            reload_hint(config_path);
            Status::Ok
        }
        Ok(_) => {
            outln!("{feed_url} is already in {}, as asked", config_path.display());
            Status::Ok
        }
        Err(e) => {
            eprintln!("error: {e}");
            Status::Fatal
        }
    }
}

/// After an edit of the config: a running daemon reads the file only when told (so that a
/// half-made edit is never polled), so say how, when one runs on this config's store.
pub(crate) fn reload_hint(config_path: &Path) {
    let Ok(config) = Config::load(config_path) else {
        return;
    };
    match config.backend() {
        backend @ crate::model::Backend::File(_) => {
            if let Some(pid) = crate::store::running_daemon(&backend) {
                outln!(
                    "`tributary run` (pid {pid}) runs on this config: it takes the change when \
                     reloaded (systemctl reload tributary, or kill -HUP {pid})"
                );
            }
        }
        // A cluster's nodes run elsewhere: each takes the change when reloaded.
        crate::model::Backend::Server { .. } => outln!(
            "the nodes running on this config take the change when reloaded (systemctl reload \
             tributary on each)"
        ),
    }
}

/// What `add` found at a URL.
enum Discovered {
    /// A feed: the URL itself, or the first one the page links to that reads as a feed, with
    /// the page's other feed links.
    Feed { url: String, others: Vec<Url> },
    /// A web page that is no feed and links to none (its text, and what its links resolve
    /// against).
    Page { text: String, base: Url },
}

/// A page or JSON document with no feed: the `[[feed]]` table that would read it as entries,
/// printed for the operator to check and paste, never added on a guess. Exits 1 (nothing
/// was added).
fn propose_source(config_path: &Path, url: &Url, text: &str, base: &Url) -> Status {
    let proposal =
        crate::parse::discover::propose_json(text).or_else(|| crate::parse::discover::propose_scrape(text));
    let Some(proposal) = proposal else {
        eprintln!(
            "error: {url} is neither a feed nor a page that links to one, and it has neither a \
             repeated headline with a link nor a list of objects with links to read as entries \
             (see `kind = \"html\"` and `kind = \"json\"` in the README)"
        );
        return Status::Fatal;
    };
    let table = format!(
        "[[feed]]\nurl = {}\nkind = \"{}\"\nscrape = {}\n",
        toml::Value::String(url.to_string()),
        proposal.kind,
        proposal.to_toml()
    );
    // The snippet goes through the config's own checks, then reads the page it came from.
    let read = Config::parse(config_path, &table)
        .map_err(|e| e.to_string())
        .and_then(|config| {
            let source = config.feeds.first().map(|f| f.source.clone()).unwrap_or_default();
            crate::parse::parse_source(text, base, &Default::default(), &source, chrono_tz::UTC)
                .map_err(|e| e.to_string())
        });
    match read {
        Ok(feed) => {
            let titles: Vec<String> = feed
                .entries
                .iter()
                .take(3)
                .map(|e| format!("{:?}", e.entry.title))
                .collect();
            let what = if proposal.kind == "json" {
                "a JSON API"
            } else {
                "a page"
            };
            outln!(
                "{url} is not a feed and links to none. This table reads it as {what}: {} entries, \
                 the first {}.\n\n{table}\nNothing was added: check the fields against the document, \
                 then paste the table into {}.",
                feed.entries.len(),
                titles.join(", "),
                config_path.display()
            );
            Status::FeedsFailed
        }
        Err(e) => {
            eprintln!(
                "error: {url} is neither a feed nor a page that links to one; a guess at reading it \
                 through selectors found nothing ({e})"
            );
            Status::Fatal
        }
    }
}

/// The feed at `url`: `url` itself when it is a feed, else the first feed a web page there
/// links to with `<link rel="alternate">`; else the page, for a proposal.
async fn discover(config_path: &Path, url: &Url) -> Result<Discovered, String> {
    let config = Config::load(config_path).map_err(|e| format!("invalid configuration\n{e}"))?;
    let fetcher = Fetcher::new(&config.poll).map_err(|e| e.to_string())?;
    let validators = Validators::default();
    let get = |u: Url| {
        let fetcher = fetcher.clone();
        let validators = validators.clone();
        async move {
            let request = Request {
                url: &u,
                validators: &validators,
                headers: &[],
                trust: crate::fetch::Trust::Operator,
                timeout: None,
                // A URL not configured yet has no proxy of its own.
                proxy: None,
            };
            match fetcher.fetch(request).await {
                Ok(Fetched::Modified(body)) => Ok(body),
                Ok(Fetched::NotModified { .. }) => Err(format!("{u}: unexpected 304")),
                Err(e) => Err(format!("{u}: {e}")),
            }
        }
    };
    let body = get(url.clone()).await?;
    let base = body.final_url.clone();
    let text = decode::decode(body.bytes, body.content_type.as_deref()).text;
    if crate::parse::parse_document(&text, &base).is_ok() {
        return Ok(Discovered::Feed {
            url: url.to_string(),
            others: Vec::new(),
        });
    }
    let candidates = crate::parse::discover::feed_links(&text, &base);
    if candidates.is_empty() {
        return Ok(Discovered::Page { text, base });
    }
    for candidate in &candidates {
        if let Ok(found) = get(candidate.clone()).await {
            let text = decode::decode(found.bytes, found.content_type.as_deref()).text;
            if crate::parse::parse_document(&text, &found.final_url).is_ok() {
                let others = candidates.iter().filter(|c| *c != candidate).cloned().collect();
                return Ok(Discovered::Feed {
                    url: candidate.to_string(),
                    others,
                });
            }
        }
    }
    Err(format!(
        "{url} links to {} feed(s), but none could be read",
        candidates.len()
    ))
}

pub(super) async fn remove(config_path: &Path, feed: &str) -> Status {
    // The title `feeds` shows may be the feed's own (from the store) rather than the config's.
    let wanted = match super::find_feed(config_path, feed).await {
        Ok(Some(url)) => url,
        Ok(None) => feed.to_string(),
        Err(status) => return status,
    };
    // A feed a subscription list brings is the list's to remove.
    if let Ok(config) = super::load_with_lists(config_path).await
        && let Some(list) = config
            .feeds
            .iter()
            .find(|f| f.url.as_str() == wanted || f.key == wanted)
            .and_then(|f| f.list.as_ref())
    {
        eprintln!(
            "error: {wanted} comes from the subscription list {list}: remove it from the list \
             (or keep it out with a [[feed]] of its URL and disabled = true)"
        );
        return Status::Fatal;
    }
    match remove_feed(config_path, &wanted) {
        Ok(url) => {
            outln!("removed {url} from {}", config_path.display());
            reload_hint(config_path);
            Status::Ok
        }
        Err(e) => {
            eprintln!("error: {e}");
            Status::Fatal
        }
    }
}

fn remove_feed(config_path: &Path, wanted: &str) -> Result<String, String> {
    let text = std::fs::read_to_string(config_path)
        .map_err(|e| format!("cannot read {}: {e}", config_path.display()))?;
    let mut doc: DocumentMut = text
        .parse()
        .map_err(|e| format!("{}: {e}", config_path.display()))?;
    let wanted_url = resolve(config_path, wanted);
    let array = doc.get_mut("feed").and_then(Item::as_array_of_tables_mut);
    let position = array.as_ref().and_then(|array| {
        array.iter().position(|t| {
            let url = t.get("url").and_then(Item::as_str);
            let title = t.get("title").and_then(Item::as_str);
            url == Some(wanted)
                || title == Some(wanted)
                || (wanted_url.is_some() && url.and_then(|u| resolve(config_path, u)) == wanted_url)
        })
    });
    let (Some(i), Some(array)) = (position, array) else {
        // Perhaps one of the files it includes has it: that file is the operator's to edit.
        let config = Config::load(config_path).ok();
        let elsewhere = config.as_ref().and_then(|c| {
            c.feeds.iter().zip(&c.feed_files).find_map(|(f, file)| {
                let matches = f.title.as_deref() == Some(wanted)
                    || wanted_url.as_ref() == Some(&f.url)
                    || f.url.as_str() == wanted;
                (matches && !is_same_file(file, config_path)).then(|| file.clone())
            })
        });
        return Err(match elsewhere {
            Some(file) => format!(
                "`{wanted}` is in {}, which {} includes: remove it there",
                file.display(),
                config_path.display()
            ),
            None => format!(
                "no feed with the URL or title `{wanted}` in {}",
                config_path.display()
            ),
        });
    };
    let url = array
        .get(i)
        .and_then(|t| t.get("url"))
        .and_then(Item::as_str)
        .unwrap_or(wanted)
        .to_string();
    array.remove(i);
    save(config_path, &doc)?;
    Ok(url)
}
