//! What an output shows: the newest visible entries of its feeds that pass its rules, with
//! cross-feed duplicates (same canonical link) shown once — attributed to the feed that had
//! the story first, naming the others — and the feeds themselves with their health.

use std::collections::{HashMap, HashSet};

// Maps and sets over an output's feeds hold up to one entry per configured feed (100,000 on a
// big planet), built at every render: a fast hash, not the DoS-resistant default (the keys
// are the operator's own feed URLs and store ids).
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
type FastSet<T> = HashSet<T, foldhash::fast::RandomState>;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::config::Config;
use crate::filter::{self, Fields};
use crate::model::{
    Candidate, CandidateQuery, CrossFeedDedupe, FeedSpec, FeedState, IconImage, OutputFormat, OutputSpec,
    StoredEntry, display_url,
};
use crate::store::{Store, StoreError};

/// A feed as an output names it: the operator's title wins over the feed's own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedView {
    /// Its URL as it may be shown (no credentials).
    pub(crate) url: String,
    /// What its entries' output ids are made from: its URL, or the one it was first stored
    /// under when the config has since spelled it differently.
    pub(crate) id_base: String,
    /// The feed's own id when it is an absolute IRI (Atom feeds have one), else its URL (a
    /// name-based `urn:uuid:` of it for a local file).
    pub(crate) id: String,
    pub(crate) title: String,
    pub(crate) site_url: Option<String>,
    pub(crate) tags: Vec<String>,
    /// Start of its current run of failures, with what kind of failure (which a public page
    /// says in its own words, never the error text: it can name server paths and addresses);
    /// `None` when healthy.
    pub(crate) failing: Option<(DateTime<Utc>, crate::model::FailureKind)>,
    /// Whether it has ever been fetched successfully.
    pub(crate) polled: bool,
    /// The language the feed declares, if any.
    pub(crate) lang: Option<String>,
    /// A feed a reader can subscribe to, rather than a page or API read through `scrape`.
    pub(crate) is_feed: bool,
    /// Its row in the store; `None` before its first poll.
    pub(crate) store_id: Option<i64>,
    /// Its icon, when one was found (see [`crate::content::icon`]).
    pub icon: Option<IconImage>,
}

impl FeedView {
    /// Its URL where a reader could fetch it too: `None` for a local file, whose path means
    /// nothing off this server (and says where things are on it).
    pub fn public_url(&self) -> Option<&str> {
        (!self.url.starts_with("file:")).then_some(self.url.as_str())
    }

    /// The view of the feed `spec`, with what the store knows of it (`state`).
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
            // A local file's path is no one else's business: a name-based id instead.
            .unwrap_or_else(|| match url.starts_with("file:") {
                true => crate::model::stable_urn(&url),
                false => url.clone(),
            });
        let failing = state.and_then(|s| {
            let since = s.failing_since?;
            Some((
                since,
                s.failure_kind.unwrap_or(crate::model::FailureKind::Internal),
            ))
        });
        // Ids made from the URL the feed was first stored under, when it was renamed since.
        let id_base = state
            .and_then(|s| s.id_url.as_deref())
            .and_then(|u| url::Url::parse(u).ok())
            .map_or_else(|| url.clone(), |u| display_url(&u));
        FeedView {
            url,
            id,
            id_base,
            title,
            site_url: spec
                .site
                .clone()
                .or_else(|| state.and_then(|s| s.site_url.clone())),
            tags: spec.tags.clone(),
            failing,
            polled: state.is_some_and(|s| s.last_success.is_some()),
            lang: state.and_then(|s| s.language.clone()),
            is_feed: spec.source == crate::model::Source::Feed,
            store_id: state.map(|s| s.id),
            icon: None,
        }
    }
}

/// Whether `spec` shows an entry in language `tag`: every entry when it names no `languages`,
/// else those whose tag falls in one of its ranges (`zh` takes `zh-Hant`); an entry whose
/// language is unknown is `und` (undetermined), which `und` or `*` takes.
pub(crate) fn in_languages(spec: &OutputSpec, tag: Option<&str>) -> bool {
    spec.languages.is_empty()
        || spec
            .languages
            .iter()
            .any(|range| crate::text::language::in_range(tag.unwrap_or("und"), range))
}

/// One entry of an output.
#[derive(Debug, Clone)]
pub struct OutputEntry {
    /// The entry as stored.
    pub stored: StoredEntry,
    /// The feed it is attributed to.
    pub feed: FeedView,
    /// Other feeds of the output that carried the same story.
    pub also_in: Vec<FeedView>,
}

/// Everything an output renders.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// The entries shown, newest first.
    pub entries: Vec<OutputEntry>,
    /// The output's feeds, in config order.
    pub feeds: Vec<FeedView>,
    /// Readers of each output, by file name (only for a page that shows them).
    pub readers: HashMap<String, u64>,
}

/// An output's feeds as selection meets them: which store rows are in it, and their views,
/// built only for the feeds whose entries are shown (an output of 100,000 feeds shows 100
/// entries).
struct OutputFeeds<'a> {
    config: &'a Config,
    /// The output's feeds by store key with their position in the config (ties go to the
    /// feed listed first); `None`: every configured feed (`config.feed_positions`).
    subset: Option<FastMap<&'a str, usize>>,
    /// Store ids of the output's feeds; `None`: every feed the store has.
    ids: Option<Arc<HashSet<i64>>>,
    views: HashMap<i64, Option<(usize, FeedView)>>,
}

impl OutputFeeds<'_> {
    fn contains(&self, id: i64) -> bool {
        self.ids.as_ref().is_none_or(|ids| ids.contains(&id))
    }

    /// The config position of the feed stored under `key`, if it is the output's.
    fn position_of(&self, key: &str) -> Option<usize> {
        match &self.subset {
            Some(subset) => subset.get(key).copied(),
            None => self.config.feed_positions.get(key).copied(),
        }
    }

    /// Reads the views of the feeds `ids` not seen yet, in one query.
    async fn load(&mut self, store: &Store, ids: impl IntoIterator<Item = i64>) -> Result<(), StoreError> {
        let wanted: Vec<i64> = ids
            .into_iter()
            .filter(|id| !self.views.contains_key(id) && self.contains(*id))
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        if wanted.is_empty() {
            return Ok(());
        }
        let states = store.feeds_by_id(wanted.clone()).await?;
        for id in wanted {
            let view = states.get(&id).and_then(|state| {
                let at = self.position_of(&state.url)?;
                Some((at, FeedView::new(&self.config.feeds[at], Some(state))))
            });
            self.views.insert(id, view);
        }
        Ok(())
    }

    /// The view of feed `id` and its config position, `None` when it is not the output's
    /// (read by [`OutputFeeds::load`] first).
    fn view(&self, id: i64) -> Option<&(usize, FeedView)> {
        self.views.get(&id).and_then(Option::as_ref)
    }
}

/// How many candidates one page asks for, when `wanted` more entries are needed: rules and
/// duplicates can skip any number of them.
fn page_size(wanted: usize) -> usize {
    (wanted * 2).clamp(64, 1000)
}

/// Chooses `spec`'s entries from `store`: one pass over the candidates, newest first, page by
/// page, until the output is full. Rules are tested on each candidate as it comes; only the
/// rows kept are read whole, and a page's duplicates and feeds are each read in one query.
pub async fn select(store: &Store, spec: &OutputSpec, config: &Config) -> Result<Selection, StoreError> {
    let mut selection = entries_and_feeds(store, spec, config).await?;
    if spec.format == OutputFormat::Html && spec.show_readers {
        for (output, _, n) in store.reader_counts(chrono::Utc::now()).await? {
            *selection.readers.entry(output).or_default() += n;
        }
    }
    if matches!(
        spec.format,
        OutputFormat::Html | OutputFormat::Atom | OutputFormat::Json
    ) {
        with_icons(store, &mut selection).await?;
    }
    Ok(selection)
}

/// Gives the selection's feeds their icons, for the formats that show them.
async fn with_icons(store: &Store, selection: &mut Selection) -> Result<(), StoreError> {
    let views = || {
        let of_entries = selection
            .entries
            .iter()
            .flat_map(|e| std::iter::once(&e.feed).chain(&e.also_in));
        selection.feeds.iter().chain(of_entries)
    };
    let ids: FastSet<i64> = views().filter_map(|v| v.store_id).collect();
    if ids.is_empty() {
        return Ok(());
    }
    let icons = store.icons_of(ids.into_iter().collect()).await?;
    let of_entries = selection
        .entries
        .iter_mut()
        .flat_map(|e| std::iter::once(&mut e.feed).chain(e.also_in.iter_mut()));
    for view in selection.feeds.iter_mut().chain(of_entries) {
        view.icon = view.store_id.and_then(|id| icons.get(&id).cloned());
    }
    Ok(())
}

async fn entries_and_feeds(
    store: &Store,
    spec: &OutputSpec,
    config: &Config,
) -> Result<Selection, StoreError> {
    // An output's feeds are configured feeds, each once: as many means all of them.
    let every = spec.feeds.len() == config.feeds.len();
    let selected: FastSet<&str> = if every {
        FastSet::default()
    } else {
        spec.feeds.iter().map(url::Url::as_str).collect()
    };
    let in_output = |f: &FeedSpec| every || selected.contains(f.url.as_str());
    // Only the page and OPML list the output's feeds; the others name only those of the
    // entries they show.
    let feeds: Vec<FeedView> = if matches!(spec.format, OutputFormat::Html | OutputFormat::Opml) {
        let specs: Vec<&FeedSpec> = config.feeds.iter().filter(|f| in_output(f)).collect();
        let urls: Arc<[String]> = specs.iter().map(|f| f.key.clone()).collect();
        let states = store.feeds_by_url(urls).await?;
        specs
            .iter()
            .map(|f| FeedView::new(f, states.get(&f.key)))
            .collect()
    } else {
        Vec::new()
    };
    let mut entries: Vec<OutputEntry> = Vec::new();
    if spec.limit == 0 || spec.feeds.is_empty() {
        return Ok(Selection {
            entries,
            feeds,
            ..Selection::default()
        });
    }
    // The output's feeds by store key: the config's own index when it takes every feed (built
    // once per config, not at each render of an output of 100,000 feeds), else its own few.
    let subset: Option<FastMap<&str, usize>> = (!every).then(|| {
        config
            .feeds
            .iter()
            .enumerate()
            .filter(|(_, f)| in_output(f))
            .map(|(i, f)| (f.key.as_str(), i))
            .collect()
    });
    let stored = store.feed_ids().await?;
    let ids: HashSet<i64> = stored
        .iter()
        .filter(|(_, url)| match &subset {
            Some(subset) => subset.contains_key(url.as_str()),
            None => config.feed_positions.contains_key(url.as_str()),
        })
        .map(|(id, _)| *id)
        .collect();
    if ids.is_empty() {
        return Ok(Selection {
            entries,
            feeds,
            ..Selection::default()
        });
    }
    // Every feed the store has is selected: no need to test each entry's feed.
    let ids = (stored.len() != ids.len()).then(|| Arc::new(ids));
    let mut output_feeds = OutputFeeds {
        config,
        subset,
        ids: ids.clone(),
        views: HashMap::new(),
    };
    let needs = filter::needs(&spec.rules);
    let mut seen_links: HashSet<String> = HashSet::new();
    let mut seen_ids: HashSet<i64> = HashSet::new();
    let mut after = None;
    while entries.len() < spec.limit {
        let page = store
            .candidates(CandidateQuery {
                feeds: ids.clone(),
                needs,
                after,
                limit: page_size(spec.limit - entries.len()),
            })
            .await?;
        let Some(last) = page.last() else { break };
        after = Some(last.cursor());
        let kept: Vec<Candidate> = page
            .into_iter()
            .filter(|c| {
                !seen_ids.contains(&c.id)
                    && in_languages(spec, c.language.as_deref())
                    && filter::keeps(&spec.rules, &c.fields())
            })
            .collect();
        let stories = Stories::read(store, spec, &kept, &seen_links).await?;
        output_feeds
            .load(store, stories.feeds().chain(kept.iter().map(|c| c.feed_id)))
            .await?;
        for candidate in kept {
            if seen_ids.contains(&candidate.id) {
                continue;
            }
            let Some((primary, others)) = stories.choose(spec, &output_feeds, &mut seen_links, candidate)
            else {
                continue;
            };
            let Some((_, feed)) = output_feeds.view(primary.feed_id).cloned() else {
                continue;
            };
            let mut also_in: Vec<FeedView> = Vec::new();
            for other in &others {
                seen_ids.insert(other.id);
                if other.feed_id != primary.feed_id
                    && let Some((_, v)) = output_feeds.view(other.feed_id)
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
                break;
            }
        }
    }
    // A duplicate group's primary may be a little older than the copy that surfaced it.
    entries.sort_by(|a, b| {
        b.stored
            .published
            .cmp(&a.stored.published)
            .then(b.stored.id.cmp(&a.stored.id))
    });
    Ok(Selection {
        entries,
        feeds,
        ..Selection::default()
    })
}

/// A page's kept candidates read whole: their copies by canonical link (when the output
/// collapses duplicates), and the entries of those without a story group.
struct Stories {
    by_link: HashMap<String, Vec<StoredEntry>>,
    by_id: HashMap<i64, StoredEntry>,
}

impl Stories {
    async fn read(
        store: &Store,
        spec: &OutputSpec,
        kept: &[Candidate],
        seen_links: &HashSet<String>,
    ) -> Result<Stories, StoreError> {
        let dedupe = spec.dedupe == CrossFeedDedupe::Link;
        let links: Vec<String> = kept
            .iter()
            .filter_map(|c| c.canonical_link.as_ref().filter(|_| dedupe))
            .filter(|l| !seen_links.contains(*l))
            .cloned()
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let mut by_link: HashMap<String, Vec<StoredEntry>> = HashMap::new();
        if !links.is_empty() {
            for e in store.entries_with_links(links).await? {
                if let Some(link) = e.canonical_link.clone() {
                    by_link.entry(link).or_default().push(e);
                }
            }
        }
        let ids: Vec<i64> = kept
            .iter()
            .filter(|c| {
                !dedupe
                    || c.canonical_link
                        .as_ref()
                        .is_none_or(|l| by_link.get(l).is_none_or(Vec::is_empty))
            })
            .map(|c| c.id)
            .collect();
        let by_id = if ids.is_empty() {
            HashMap::new()
        } else {
            store.entries(ids).await?.into_iter().map(|e| (e.id, e)).collect()
        };
        Ok(Stories { by_link, by_id })
    }

    /// The feeds of every entry read.
    fn feeds(&self) -> impl Iterator<Item = i64> + '_ {
        self.by_link
            .values()
            .flatten()
            .chain(self.by_id.values())
            .map(|e| e.feed_id)
    }

    /// The entry a kept candidate stands for, with the other copies of its story (same
    /// canonical link) in the output's feeds; `None` when its story was shown already.
    fn choose(
        &self,
        spec: &OutputSpec,
        feeds: &OutputFeeds<'_>,
        seen_links: &mut HashSet<String>,
        candidate: Candidate,
    ) -> Option<(StoredEntry, Vec<StoredEntry>)> {
        let link = match (&spec.dedupe, candidate.canonical_link) {
            (CrossFeedDedupe::Link, Some(link)) => link,
            _ => return self.by_id.get(&candidate.id).map(|e| (e.clone(), Vec::new())),
        };
        if seen_links.contains(&link) {
            return None;
        }
        let copies = self.by_link.get(&link).map_or(&[][..], Vec::as_slice);
        // A link a feed gives to several of its own stories (a section page, a feed proxy's
        // one address) names none of them: the store keeps them apart, and so does the output,
        // each shown as itself, merged with no other feed's copy (which of them would it be?).
        let mut feeds_seen = HashSet::new();
        if copies.iter().any(|e| !feeds_seen.insert(e.feed_id)) {
            let own = copies
                .iter()
                .find(|e| e.id == candidate.id)
                .or_else(|| self.by_id.get(&candidate.id))?;
            return Some((own.clone(), Vec::new()));
        }
        let mut group: Vec<(&StoredEntry, Option<usize>)> = copies
            .iter()
            .filter(|e| {
                feeds.contains(e.feed_id)
                    && in_languages(spec, e.entry.language.as_ref().map(|l| l.tag.as_str()))
                    && filter::keeps(&spec.rules, &Fields::of(&e.entry))
            })
            .map(|e| (e, feeds.view(e.feed_id).map(|(at, _)| *at)))
            .collect();
        seen_links.insert(link);
        if group.is_empty() {
            let own = copies.iter().find(|e| e.id == candidate.id);
            group.push((own.or_else(|| self.by_id.get(&candidate.id))?, None));
        }
        // The feed that had it first: first seen by us, then (for copies found in the same
        // poll) published first, then the feed listed first.
        group.sort_by_key(|(e, at)| (e.first_seen, e.published, *at, e.id));
        let mut group = group.into_iter().map(|(e, _)| e.clone());
        let primary = group.next()?;
        Some((primary, group.collect()))
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::model::Entry;
    use crate::store::{finished, store_batch};

    /// A feed's entries: (title, link, day of March 2026).
    type Stories = &'static [(&'static str, &'static str, u32)];

    /// A store holding, for each `(feed URL, stories)`, those entries.
    async fn filled(dir: &std::path::Path, feeds: &[(&str, Stories)]) -> Store {
        let store = Store::open(&crate::model::Backend::File(dir.join("t.db")))
            .await
            .unwrap();
        let urls: Vec<String> = feeds.iter().map(|(u, _)| u.to_string()).collect();
        let states = store.ensure_feeds(urls, Utc::now()).await.unwrap();
        for (state, (_, entries)) in states.iter().zip(feeds) {
            let entries = entries
                .iter()
                .map(|(title, link, day)| Entry {
                    guid: Some(format!("{}-{title}", state.url)),
                    link: Some(link.to_string()),
                    title: title.to_string(),
                    published: Utc.with_ymd_and_hms(2026, 3, *day, 12, 0, 0).single(),
                    ..Entry::default()
                })
                .collect();
            store_batch(&store, state.id, finished(entries), 100, Utc::now()).await;
        }
        store
    }

    fn config(dir: &std::path::Path, outputs: &str) -> Config {
        let text = format!(
            "[[feed]]\nurl = \"https://a.example/feed\"\ntitle = \"A\"\ntags = [\"x\"]\n\
             [[feed]]\nurl = \"https://b.example/feed\"\ntitle = \"B\"\n{outputs}"
        );
        Config::parse(&dir.join("t.toml"), &text).unwrap()
    }

    /// Feeds A and B holding their stories, and a config with `outputs`.
    async fn planet(outputs: &str) -> (tempfile::TempDir, Store, Config) {
        let dir = tempfile::tempdir().unwrap();
        let store = filled(
            dir.path(),
            &[("https://a.example/feed", A), ("https://b.example/feed", B)],
        )
        .await;
        let config = config(dir.path(), outputs);
        (dir, store, config)
    }

    fn titles(selection: &Selection) -> Vec<(&str, &str)> {
        selection
            .entries
            .iter()
            .map(|e| (e.stored.entry.title.as_str(), e.feed.title.as_str()))
            .collect()
    }

    const A: Stories = &[
        ("a old", "https://a.example/1", 1),
        ("shared story", "https://news.example/s", 3),
        ("a needle", "https://a.example/2", 5),
    ];
    const B: Stories = &[
        ("b newest", "https://b.example/1", 6),
        ("shared story, B's copy", "https://news.example/s", 4),
    ];

    #[tokio::test(flavor = "multi_thread")]
    async fn newest_first_within_the_limit_and_the_rules() {
        let (_dir, store, config) = planet(
            "[[output]]\npath = \"all.atom\"\nlimit = 3\n\
             [[output]]\npath = \"needles.atom\"\ninclude = [{ title = \"needle\" }]\n\
             [[output]]\npath = \"none.atom\"\ninclude = [{ title = \"nothing matches\" }]\n",
        )
        .await;
        let pick = |i: usize| select(&store, &config.outputs[i], &config);
        assert_eq!(
            titles(&pick(0).await.unwrap()),
            // The shared story, met as B's (newer) copy, is shown as A's, which had it first.
            [("b newest", "B"), ("a needle", "A"), ("shared story", "A")]
        );
        assert_eq!(titles(&pick(1).await.unwrap()), [("a needle", "A")]);
        assert!(pick(2).await.unwrap().entries.is_empty());
        // Feed outputs name only the feeds of their entries; the list is the page's.
        assert!(pick(0).await.unwrap().feeds.is_empty());
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_story_in_two_feeds_is_shown_once_from_the_feed_that_had_it_first() {
        let (_dir, store, config) = planet(
            "[[output]]\npath = \"all.atom\"\n\
             [[output]]\npath = \"raw.atom\"\ndedupe = \"none\"\n",
        )
        .await;
        let deduped = select(&store, &config.outputs[0], &config).await.unwrap();
        let shared: Vec<&OutputEntry> = deduped
            .entries
            .iter()
            .filter(|e| e.stored.entry.link.as_deref() == Some("https://news.example/s"))
            .collect();
        assert_eq!(shared.len(), 1);
        // Both were stored in the same poll here (A's rows first), so first seen ties and the
        // earlier publication wins: A's copy, naming B.
        assert_eq!(shared[0].feed.title, "A");
        assert_eq!(
            shared[0]
                .also_in
                .iter()
                .map(|f| f.title.as_str())
                .collect::<Vec<_>>(),
            ["B"]
        );
        let raw = select(&store, &config.outputs[1], &config).await.unwrap();
        assert_eq!(raw.entries.len(), 5);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn an_output_of_some_feeds_shows_theirs_and_lists_them() {
        let (_dir, store, config) = planet(
            "[[output]]\npath = \"x.html\"\nformat = \"html\"\ntags = [\"x\"]\n\
             [[output]]\npath = \"b.atom\"\nfeeds = [\"B\"]\n",
        )
        .await;
        let tagged = select(&store, &config.outputs[0], &config).await.unwrap();
        assert!(tagged.entries.iter().all(|e| e.feed.title == "A"));
        assert_eq!(
            tagged.entries.len(),
            3,
            "B's copy of the shared story is not in this output"
        );
        assert_eq!(
            tagged.feeds.iter().map(|f| f.title.as_str()).collect::<Vec<_>>(),
            ["A"]
        );
        let b = select(&store, &config.outputs[1], &config).await.unwrap();
        assert_eq!(titles(&b), [("b newest", "B"), ("shared story, B's copy", "B")]);
    }
}
