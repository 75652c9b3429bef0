//! Full text: the pages of a feed's new entries, read with the feed's politeness, and the
//! User-Agent a feed is fetched with when it tells its readers.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use url::Url;

use super::feed::{Context, fetch_for_feed};
use crate::config::Config;
use crate::content::full_text::{self, ArticleError};
use crate::model::{FeedSpec, FullText, KeyedEntry, Rewrite, Validators};
use crate::store::{Store, StoreError};

/// Reads each entry's page (`[[feed]] full_text`): the article becomes the content and the
/// feed's own text the summary; an entry whose page gives none keeps the feed's text and the
/// reason. These are the feed's new and changed entries only: an unchanged one never gets here.
/// On a new feed's first poll (`shown`: how many of its entries outputs will show), only the
/// newest are read; the rest of its back catalogue keeps the feed's text.
pub(super) async fn full_text(
    entries: &mut [KeyedEntry],
    shown: Option<usize>,
    spec: &FeedSpec,
    context: &Context,
) -> Result<(), StoreError> {
    let held_back: std::collections::HashSet<&str> = match shown {
        Some(shown) => crate::store::catalogue_ranks(entries)
            .into_iter()
            .filter_map(|(key, rank)| (rank >= shown).then_some(key))
            .collect(),
        None => Default::default(),
    };
    let pages: Vec<(usize, Result<Url, ArticleError>)> = entries
        .iter()
        .enumerate()
        .filter(|(_, k)| !held_back.contains(k.key.as_str()))
        .map(|(i, k)| (i, full_text::page_of(k.entry.link.as_deref())))
        .collect();
    let articles = read_articles(pages, spec, context).await?;
    for (i, article) in articles {
        let entry = &mut entries[i].entry;
        match article {
            Ok(html) => {
                entry.summary = entry.content.take().or(entry.summary.take());
                entry.content = Some(html);
                entry.full_text = FullText::Page;
            }
            // Nothing to read: the entry stays the feed's own (explain says why), and there is
            // nothing to try again.
            Err(ArticleError::NoPage) => {}
            Err(e) => {
                entry.full_text = FullText::Failed {
                    error: e.to_string(),
                    tries: 1,
                };
            }
        }
    }
    Ok(())
}

/// The one more try that entries whose page failed get, at a later poll of their feed (one
/// that began after the failure).
pub(super) async fn retry_full_text(
    feed_id: i64,
    began: DateTime<Utc>,
    spec: &FeedSpec,
    context: &Context,
) -> Result<(), StoreError> {
    let due = context.store.full_text_retries(feed_id, began).await?;
    if due.is_empty() {
        return Ok(());
    }
    let pages = due
        .iter()
        .map(|(id, link)| (*id, full_text::page_of(Some(link))))
        .collect();
    let articles = read_articles(pages, spec, context).await?;
    let now = context.clock.now();
    let tries = articles
        .into_iter()
        .map(|(id, article)| (id, article.map_err(|e| e.to_string())))
        .collect();
    context.store.record_full_text(tries, now).await
}

/// Fetches and extracts the articles of `pages` (tagged with the caller's index), at most
/// `poll.concurrency` at a time and each host in its turn; a host that asked everyone to wait
/// is not asked, and one that says so now (429, or 503 with Retry-After) is recorded as such.
pub(super) async fn read_articles<T: Copy + Send + 'static>(
    pages: Vec<(T, Result<Url, ArticleError>)>,
    spec: &FeedSpec,
    context: &Context,
) -> Result<Vec<(T, Result<String, ArticleError>)>, StoreError> {
    let rewrite: Arc<[Rewrite]> = spec.rewrite.as_slice().into();
    // A feed's pages go through its proxy, as its feed does.
    let proxy = spec.proxy.as_ref();
    let read = futures::stream::iter(pages)
        .map(|(tag, page)| {
            let rewrite = rewrite.clone();
            async move {
                let page = match page {
                    Ok(page) => page,
                    Err(e) => return (tag, Err(e), None),
                };
                let (fetched, penalty) = fetch_for_feed(context, &page, &Validators::default(), proxy).await;
                let (html, final_url) = match fetched.and_then(full_text::page_text) {
                    Ok(page) => page,
                    Err(e) => return (tag, Err(e), penalty),
                };
                // Extraction is CPU work: on the blocking pool, one per core like parsing.
                let Ok(_permit) = context.parsing.clone().acquire_owned().await else {
                    return (tag, Err(ArticleError::NoArticle), None);
                };
                let extracted = tokio::task::spawn_blocking(move || {
                    full_text::extract(&html, &final_url, &rewrite, &mut crate::content::Sanitizer::new())
                })
                .await
                .unwrap_or(Err(ArticleError::NoArticle));
                (tag, extracted, None)
            }
        })
        .buffer_unordered(context.concurrency.max(1));
    let results: Vec<_> = read.collect().await;
    let mut articles = Vec::with_capacity(results.len());
    for (tag, article, penalty) in results {
        if let Some((host, until)) = penalty {
            let reason = article
                .as_ref()
                .err()
                .map(ToString::to_string)
                .unwrap_or_default();
            context.store.delay_host(host, until, reason).await?;
        }
        articles.push((tag, article));
    }
    Ok(articles)
}

/// The User-Agent of each feed whose outputs have readers, with `poll.announce_readers`:
/// `poll.user_agent` with `N subscribers` in its comment (`tributary/0.1 (+URL; 12
/// subscribers)`), N the readers of every output that carries the feed, the way aggregators
/// tell publishers theirs.
pub(super) async fn announced_agents(
    config: &Config,
    store: &Store,
    now: DateTime<Utc>,
) -> Result<HashMap<String, String>, StoreError> {
    if !config.poll.announce_readers {
        return Ok(HashMap::new());
    }
    let mut of_output: HashMap<String, u64> = HashMap::new();
    for (output, _, n) in store.reader_counts(now).await? {
        *of_output.entry(output).or_default() += n;
    }
    let keys: HashMap<&str, &str> = config
        .feeds
        .iter()
        .map(|f| (f.url.as_str(), f.key.as_str()))
        .collect();
    let mut of_feed: HashMap<String, u64> = HashMap::new();
    for spec in &config.outputs {
        let Some(&n) = of_output.get(&spec.file_name()) else {
            continue;
        };
        for url in &spec.feeds {
            if let Some(key) = keys.get(url.as_str()) {
                *of_feed.entry((*key).to_string()).or_default() += n;
            }
        }
    }
    let agent = &config.poll.user_agent;
    Ok(of_feed
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(key, n)| {
            let told = crate::model::counted(
                usize::try_from(n).unwrap_or(usize::MAX),
                "subscriber",
                "subscribers",
            );
            let with = match agent.strip_suffix(')') {
                Some(open) if open.contains('(') => format!("{open}; {told})"),
                _ => format!("{agent} ({told})"),
            };
            (key, with)
        })
        .collect())
}
