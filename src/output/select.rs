//! What an output shows: the newest visible entries of its feeds that pass its rules, with
//! cross-feed duplicates (same canonical link) shown once — attributed to the feed that had
//! the story first, naming the others — and the feeds themselves with their health.

use std::collections::{HashMap, HashSet};
use std::ops::ControlFlow;

use chrono::{DateTime, Utc};

use crate::model::{CrossFeedDedupe, FeedSpec, FeedState, OutputSpec, StoredEntry, display_url};
use crate::store::{Candidate, Store, StoreError};

/// A feed as an output names it: the operator's title wins over the feed's own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedView {
    /// Its URL as it may be shown (no credentials).
    pub url: String,
    /// The feed's own id when it is an absolute IRI (Atom feeds have one), else its URL.
    pub id: String,
    pub title: String,
    pub site_url: Option<String>,
    pub tags: Vec<String>,
    /// Start of its current run of failures, with what kind of failure in words fit for a
    /// public page; `None` when healthy.
    pub failing: Option<(DateTime<Utc>, String)>,
    /// Whether it has ever been fetched successfully.
    pub polled: bool,
    /// The language the feed declares, if any.
    pub lang: Option<String>,
    /// When it was last polled, successfully or not.
    pub checked: Option<DateTime<Utc>>,
}

impl FeedView {
    pub fn new(spec: &FeedSpec, state: Option<&FeedState>) -> FeedView {
        let url = display_url(&spec.url);
        let title = spec
            .title
            .clone()
            .or_else(|| state.and_then(|s| s.title.clone()))
            .unwrap_or_else(|| url.clone());
        let id = state
            .and_then(|s| s.feed_id.clone())
            .filter(|id| url::Url::parse(id).is_ok())
            .unwrap_or_else(|| url.clone());
        // What a public page may say: the kind of failure in plain words, never the error
        // text itself (it can name server paths and addresses).
        let failing = state.and_then(|s| {
            let since = s.failing_since?;
            let kind = s.failure_kind.unwrap_or(crate::model::FailureKind::Internal);
            Some((since, kind.public_text().to_string()))
        });
        FeedView {
            url,
            id,
            title,
            site_url: spec
                .site
                .clone()
                .or_else(|| state.and_then(|s| s.site_url.clone())),
            tags: spec.tags.clone(),
            failing,
            polled: state.is_some_and(|s| s.last_success.is_some()),
            lang: state.and_then(|s| s.language.clone()),
            checked: state.and_then(|s| s.last_fetch),
        }
    }
}

/// One entry of an output.
#[derive(Debug, Clone)]
pub struct OutputEntry {
    pub stored: StoredEntry,
    /// The feed it is attributed to.
    pub feed: FeedView,
    /// Other feeds of the output that carried the same story.
    pub also_in: Vec<FeedView>,
}

/// Everything an output renders.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub entries: Vec<OutputEntry>,
    /// The output's feeds, in config order.
    pub feeds: Vec<FeedView>,
}

/// The entry a kept candidate stands for, read whole, with the other copies of its story
/// (same canonical link) in the output's feeds; `None` when its story was shown already.
fn choose(
    store: &Store,
    spec: &OutputSpec,
    views: &HashMap<i64, FeedView>,
    order: &HashMap<i64, usize>,
    seen_links: &mut HashSet<String>,
    candidate: Candidate,
) -> Result<Option<(StoredEntry, Vec<StoredEntry>)>, StoreError> {
    let link = match (&spec.dedupe, candidate.canonical_link) {
        (CrossFeedDedupe::Link, Some(link)) => link,
        _ => return Ok(store.entry(candidate.id)?.map(|e| (e, Vec::new()))),
    };
    if seen_links.contains(&link) {
        return Ok(None);
    }
    let mut group: Vec<StoredEntry> = store
        .entries_with_link(&link)?
        .into_iter()
        .filter(|e| views.contains_key(&e.feed_id) && spec.rules.keeps(&e.entry.fields()))
        .collect();
    seen_links.insert(link);
    if group.is_empty() {
        let Some(entry) = store.entry(candidate.id)? else {
            return Ok(None);
        };
        group.push(entry);
    }
    // The feed that had it first: first seen by us, then (for copies found in the same poll)
    // published first, then the feed listed first.
    group.sort_by_key(|e| (e.first_seen, e.published, order.get(&e.feed_id).copied(), e.id));
    let primary = group.remove(0);
    Ok(Some((primary, group)))
}

/// Chooses `spec`'s entries from `store`. `all_feeds` is the configuration's feed list.
pub fn select(store: &Store, spec: &OutputSpec, all_feeds: &[FeedSpec]) -> Result<Selection, StoreError> {
    let selected: HashSet<&str> = spec.feeds.iter().map(url::Url::as_str).collect();
    let specs: Vec<&FeedSpec> = all_feeds
        .iter()
        .filter(|f| selected.contains(f.url.as_str()))
        .collect();
    let urls: Vec<String> = specs.iter().map(|f| f.key.clone()).collect();
    let states = store.feeds_by_url(&urls)?;
    let mut views: HashMap<i64, FeedView> = HashMap::new();
    let mut feeds = Vec::with_capacity(specs.len());
    for f in &specs {
        let state = states.get(&f.key);
        let view = FeedView::new(f, state);
        if let Some(state) = state {
            views.insert(state.id, view.clone());
        }
        feeds.push(view);
    }
    let ids: Vec<i64> = views.keys().copied().collect();
    // Every feed the store has is selected: no need to test each entry's feed.
    let all = store.feed_count()? == ids.len();
    // Config order of the feeds, for ties.
    let order: HashMap<i64, usize> = specs
        .iter()
        .enumerate()
        .filter_map(|(i, f)| states.get(&f.key).map(|s| (s.id, i)))
        .collect();
    let mut entries: Vec<OutputEntry> = Vec::new();
    let mut seen_links: HashSet<String> = HashSet::new();
    let mut seen_ids: HashSet<i64> = HashSet::new();
    let mut failed = None;
    if spec.limit == 0 || ids.is_empty() {
        return Ok(Selection { entries, feeds });
    }
    // One pass over the candidates, newest first, until the output is full: rules and
    // duplicates can skip any number of them, and only the rows kept are read whole.
    store.candidates(&ids, all, spec.rules.needs(), |candidate| {
        if seen_ids.contains(&candidate.id) || !spec.rules.keeps(&candidate.fields()) {
            return ControlFlow::Continue(());
        }
        match choose(store, spec, &views, &order, &mut seen_links, candidate) {
            Ok(Some((primary, others))) => {
                let Some(feed) = views.get(&primary.feed_id).cloned() else {
                    return ControlFlow::Continue(());
                };
                let mut also_in: Vec<FeedView> = Vec::new();
                for other in &others {
                    seen_ids.insert(other.id);
                    if let Some(v) = views.get(&other.feed_id)
                        && other.feed_id != primary.feed_id
                        && !also_in.contains(v)
                    {
                        also_in.push(v.clone());
                    }
                }
                seen_ids.insert(primary.id);
                entries.push(OutputEntry {
                    stored: primary,
                    feed,
                    also_in,
                });
                if entries.len() >= spec.limit {
                    return ControlFlow::Break(());
                }
                ControlFlow::Continue(())
            }
            Ok(None) => ControlFlow::Continue(()),
            Err(e) => {
                failed = Some(e);
                ControlFlow::Break(())
            }
        }
    })?;
    if let Some(e) = failed {
        return Err(e);
    }
    // A duplicate group's primary may be a little older than the copy that surfaced it.
    entries.sort_by(|a, b| {
        b.stored
            .published
            .cmp(&a.stored.published)
            .then(b.stored.id.cmp(&a.stored.id))
    });
    Ok(Selection { entries, feeds })
}
