//! Entry rows: upserts by (feed, key) with stable dates, tombstones, and the queries outputs use.

use std::collections::HashMap;
use std::ops::ControlFlow;

use chrono::{DateTime, Utc};

use super::feeds::{FEED_COLUMNS, Scheduled};
use super::sql::{Dialect, Row, params};
use super::{Store, StoreError, from_unix, to_millis, to_millis_ceil, to_unix};
use crate::filter::Needs;
use crate::model::{EntryKey, FeedMeta, FeedState, FullText, KeyedEntry, Person, StoredEntry, Validators};
use crate::parse::Fingerprints;

/// What storing one feed's parse did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreOutcome {
    pub new: usize,
    pub updated: usize,
    /// Of the new ones, how many were held back as a new feed's back catalogue.
    pub held_back: usize,
    /// Entries the feed's rules excluded (never stored); counted by the poll.
    pub excluded: usize,
}

/// Everything a successful parse hands the store for one feed.
#[derive(Debug, Clone)]
pub struct ParsedBatch<'a> {
    pub meta: &'a FeedMeta,
    pub validators: &'a Validators,
    pub body_hash: &'a str,
    pub entries: &'a [KeyedEntry],
    /// Caching hint from the response and the document, if any.
    pub fresh_until: Option<DateTime<Utc>>,
    /// On a feed's first successful parse, only this many of its newest entries are shown in
    /// outputs; the rest are stored hidden.
    pub new_feed_entries: usize,
    /// Fingerprints of the document's items whose entries are stored unchanged already; the
    /// items of `entries` stored now are added to them.
    pub unchanged_segments: &'a Fingerprints,
    /// When the feed is due next.
    pub scheduled: &'a Scheduled,
}

/// Up to this many feeds, [`Store::candidates`] merges per-feed pages of this size.
const FEW_FEEDS: usize = 256;
const FEED_PAGE: usize = 64;
/// On PostgreSQL, the walk of the date index for many feeds reads this many at a time.
const DATE_PAGE: usize = 500;

/// An entry as selection first sees it: enough to order it, attribute it, test the rules
/// on (the fields the rules do not need are empty) and find its duplicates.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub id: i64,
    pub feed_id: i64,
    pub published: DateTime<Utc>,
    pub title: String,
    pub link: Option<String>,
    pub canonical_link: Option<String>,
    pub author: Option<String>,
    pub categories: Vec<String>,
    pub summary: Option<String>,
    pub content: Option<String>,
}

impl Candidate {
    /// What the rules see of it.
    pub fn fields(&self) -> crate::filter::Fields<'_> {
        crate::filter::Fields {
            title: &self.title,
            bodies: [self.summary.as_deref(), self.content.as_deref()],
            author: self.author.as_deref(),
            categories: &self.categories,
            link: self.link.as_deref(),
        }
    }
}

fn candidate_from_row(row: &Row<'_>) -> Result<Candidate, StoreError> {
    let categories: String = row.get(7)?;
    Ok(Candidate {
        id: row.get(0)?,
        feed_id: row.get(1)?,
        published: from_unix(row.get(2)?),
        title: row.get(3)?,
        link: row.get(4)?,
        canonical_link: row.get(5)?,
        author: row.get(6)?,
        categories: serde_json::from_str(&categories).unwrap_or_default(),
        summary: row.get(8)?,
        content: row.get(9)?,
    })
}

const ENTRY_COLUMNS: &str = "id, feed_id, key, guid, link, title, author_name, author_email, author_uri, \
                             summary, content, categories, enclosures, published, updated, first_seen, \
                             canonical_link, hidden, catalogue_rank, full_text, full_text_error, \
                             full_text_tries";

/// `full_text` as stored: the column's value, the error, and the tries.
fn full_text_columns(full_text: &FullText) -> (Option<&'static str>, Option<&str>, u32) {
    match full_text {
        FullText::Feed => (None, None, 0),
        FullText::Page => (Some("page"), None, 1),
        FullText::Failed { error, tries } => (Some("failed"), Some(error.as_str()), *tries),
    }
}

fn full_text_from(column: Option<String>, error: Option<String>, tries: u32) -> FullText {
    match column.as_deref() {
        Some("page") => FullText::Page,
        Some("failed") => FullText::Failed {
            error: error.unwrap_or_default(),
            tries,
        },
        _ => FullText::Feed,
    }
}

fn entry_from_row(row: &Row<'_>) -> Result<StoredEntry, StoreError> {
    let author_name: Option<String> = row.get(6)?;
    let json_list = |i| -> Result<String, StoreError> { row.get(i) };
    Ok(StoredEntry {
        id: row.get(0)?,
        feed_id: row.get(1)?,
        key: EntryKey::from_stored(row.get(2)?),
        entry: crate::model::Entry {
            guid: row.get(3)?,
            link: row.get(4)?,
            title: row.get(5)?,
            author: match author_name {
                Some(name) => Some(Person {
                    name,
                    email: row.get(7)?,
                    uri: row.get(8)?,
                }),
                None => None,
            },
            summary: row.get(9)?,
            content: row.get(10)?,
            // Written by this module from typed values; a row that does not decode is treated
            // as empty rather than failing a whole output.
            categories: serde_json::from_str(&json_list(11)?).unwrap_or_default(),
            enclosures: serde_json::from_str(&json_list(12)?).unwrap_or_default(),
            published: None,
            updated: None,
            full_text: full_text_from(row.get(19)?, row.get(20)?, row.get(21)?),
        },
        published: from_unix(row.get(13)?),
        updated: from_unix(row.get(14)?),
        first_seen: from_unix(row.get(15)?),
        canonical_link: row.get(16)?,
        hidden: row.get(17)?,
        catalogue_rank: row.get::<Option<i64>>(18)?.and_then(|r| usize::try_from(r).ok()),
    })
}

/// A new feed's first entries ranked newest first (by key): those ranked at or past
/// `poll.new_feed_entries` are its back catalogue, stored but kept out of outputs.
pub(crate) fn catalogue_ranks(entries: &[KeyedEntry]) -> std::collections::HashMap<&str, usize> {
    let mut by_date: Vec<&KeyedEntry> = entries.iter().collect();
    by_date.sort_by_key(|k| std::cmp::Reverse(k.entry.published.or(k.entry.updated)));
    by_date
        .iter()
        .enumerate()
        .map(|(rank, k)| (k.key.as_str(), rank))
        .collect()
}

impl Store {
    /// Stores one feed's parsed entries and its new state in one transaction: new keys are
    /// inserted, changed ones updated in place, unchanged and tombstoned ones left alone.
    ///
    /// Dates are settled here, once: an entry without a date, or with one in the future, gets
    /// `now` (its first-seen time) and keeps it on every later poll.
    pub fn store_parsed(
        &mut self,
        feed_id: i64,
        batch: &ParsedBatch<'_>,
        now: DateTime<Utc>,
    ) -> Result<StoreOutcome, StoreError> {
        // A savepoint, not a transaction: inside the store thread's group commit it nests.
        self.conn.savepoint(|c| {
            self.fence(feed_id, batch.scheduled.lease)?;
            self.announce_due(batch.scheduled.next_due)?;
            let outcome = store_parsed(c, feed_id, batch, now)?;
            if c.dialect() == Dialect::Postgres && outcome.new + outcome.updated > 0 {
                // Heard by the render leader once committed, whichever node stored it.
                c.execute(
                    "SELECT pg_notify(?1, ?2)",
                    params![super::postgres::CHANGES_CHANNEL, self.node],
                )?;
            }
            Ok(outcome)
        })
    }

    /// Keeps a new feed's back catalogue out of outputs by `limit` (`poll.new_feed_entries`):
    /// entries ranked past it in their feed's first poll are hidden, the others shown. Costs
    /// nothing unless the limit changed since it was last applied.
    pub(crate) fn apply_catalogue_limit(&mut self, limit: usize) -> Result<bool, StoreError> {
        let applied: Option<String> = self.conn.query_opt(
            "SELECT value FROM settings WHERE name = 'new_feed_entries'",
            params![],
            |r| r.get(0),
        )?;
        if applied.as_deref() == Some(limit.to_string().as_str()) {
            return Ok(false);
        }
        self.conn.savepoint(|c| {
            c.execute(
                "UPDATE entries SET hidden = CASE WHEN catalogue_rank >= ?1 THEN 1 ELSE 0 END
                 WHERE catalogue_rank IS NOT NULL
                   AND hidden != CASE WHEN catalogue_rank >= ?1 THEN 1 ELSE 0 END",
                params![limit],
            )?;
            c.execute(
                "INSERT INTO settings (name, value) VALUES ('new_feed_entries', ?1)
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                params![limit.to_string()],
            )?;
            Ok(())
        })?;
        Ok(true)
    }

    /// Fingerprints of the feed's items last seen with their entries stored unchanged: what
    /// the next parse may leave out.
    pub fn fingerprints(&self, feed_id: i64) -> Result<Fingerprints, StoreError> {
        let blob: Option<Vec<u8>> = self.conn.query_one(
            "SELECT segments FROM feeds WHERE id = ?1",
            params![feed_id],
            |r| r.get(0),
        )?;
        Ok(Fingerprints::from_stored(&blob.unwrap_or_default()))
    }

    /// Key → content hash of those of `keys` the feed has stored: what a new parse is compared
    /// with, so unchanged entries are not sanitized or written again.
    pub(crate) fn content_hashes(
        &self,
        feed_id: i64,
        keys: &[String],
    ) -> Result<HashMap<String, String>, StoreError> {
        let mut hashes = HashMap::with_capacity(keys.len());
        for key in keys {
            if let Some(hash) = self.conn.query_opt(
                "SELECT content_hash FROM entries WHERE feed_id = ?1 AND key = ?2",
                params![feed_id, key],
                |r| r.get(0),
            )? {
                hashes.insert(key.clone(), hash);
            }
        }
        Ok(hashes)
    }

    /// How many feeds the store has rows for.
    pub(crate) fn feed_count(&self) -> Result<usize, StoreError> {
        let n: i64 = self
            .conn
            .query_one("SELECT COUNT(*) FROM feeds", params![], |r| r.get(0))?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    /// States of the feeds at `urls` that the store knows, by URL.
    pub(crate) fn feeds_by_url(&self, urls: &[String]) -> Result<HashMap<String, FeedState>, StoreError> {
        // One scan of the (small) feeds table beats an IN-list of thousands of URLs.
        let wanted: std::collections::HashSet<&str> = urls.iter().map(String::as_str).collect();
        let mut feeds = HashMap::with_capacity(urls.len());
        self.conn
            .each(&format!("SELECT {FEED_COLUMNS} FROM feeds"), params![], |row| {
                let feed = super::feeds::feed_from_row(row)?;
                if wanted.contains(feed.url.as_str()) {
                    feeds.insert(feed.url.clone(), feed);
                }
                Ok(ControlFlow::Continue(()))
            })?;
        Ok(feeds)
    }

    /// The visible entries of the feeds `feed_ids` (every feed when `all`), newest first, as
    /// [`Candidate`]s with the columns `needs` asks for, each handed to `each` until it
    /// breaks: one pass, whose cost is what it reads.
    ///
    /// Many feeds: one walk of the date index (the feed test and `hidden` are answered from
    /// the index, so rows of other feeds are never read). Few feeds: each feed's newest, from
    /// the per-feed index, merged; a feed's next page is read only when the merge needs it.
    pub(crate) fn candidates(
        &self,
        feed_ids: &[i64],
        all: bool,
        needs: Needs,
        mut each: impl FnMut(Candidate) -> ControlFlow<()>,
    ) -> Result<(), StoreError> {
        let columns = format!(
            "id, feed_id, published, title, link, canonical_link, {}, {}, {}",
            if needs.author { "author_name" } else { "NULL" },
            if needs.categories { "categories" } else { "'[]'" },
            if needs.bodies {
                "summary, content"
            } else {
                "NULL, NULL"
            },
        );
        if all || feed_ids.len() > FEW_FEEDS {
            // The feeds, a JSON list in parameter `n`.
            let filter = |n: usize| match all {
                true => String::new(),
                false => format!("AND feed_id IN (SELECT CAST(value AS BIGINT) FROM json_each(?{n}))"),
            };
            let ids = serde_json::to_string(feed_ids).unwrap_or_else(|_| "[]".into());
            if self.conn.dialect() == Dialect::Sqlite {
                // One walk of the date index, as long as `each` wants more.
                let sql = format!(
                    "SELECT {columns} FROM entries INDEXED BY entries_by_date
                     WHERE hidden = 0 {} ORDER BY published DESC, id DESC",
                    filter(1)
                );
                let params = if all { params![] } else { params![ids] };
                return self
                    .conn
                    .each(&sql, params, |row| Ok(each(candidate_from_row(row)?)));
            }
            // PostgreSQL answers a query whole: the walk goes in pages, each after the last.
            let sql = format!(
                "SELECT {columns} FROM entries
                 WHERE hidden = 0 AND (published, id) < (?1, ?2) {}
                 ORDER BY published DESC, id DESC LIMIT {DATE_PAGE}",
                filter(3)
            );
            let mut after = (i64::MAX, i64::MAX);
            loop {
                let page = match all {
                    true => self
                        .conn
                        .query(&sql, params![after.0, after.1], candidate_from_row)?,
                    false => self
                        .conn
                        .query(&sql, params![after.0, after.1, ids], candidate_from_row)?,
                };
                let full = page.len() == DATE_PAGE;
                for candidate in page {
                    after = (to_unix(candidate.published), candidate.id);
                    if each(candidate).is_break() {
                        return Ok(());
                    }
                }
                if !full {
                    return Ok(());
                }
            }
        }
        let sql = format!(
            "SELECT {columns} FROM entries INDEXED BY entries_by_feed
             WHERE feed_id = ?1 AND hidden = 0 AND (published, id) < (?2, ?3)
             ORDER BY published DESC, id DESC LIMIT {FEED_PAGE}"
        );
        let page =
            |feed_id: i64, after: (i64, i64)| -> Result<std::collections::VecDeque<Candidate>, StoreError> {
                Ok(self
                    .conn
                    .query(&sql, params![feed_id, after.0, after.1], candidate_from_row)?
                    .into())
            };
        // Each feed's unread candidates (and whether its last page was full, so that there
        // may be more), and a heap of their heads, newest first.
        let mut pending: Vec<(std::collections::VecDeque<Candidate>, bool)> =
            Vec::with_capacity(feed_ids.len());
        let mut heads = std::collections::BinaryHeap::new();
        for &feed_id in feed_ids {
            let queue = page(feed_id, (i64::MAX, i64::MAX))?;
            if let Some(head) = queue.front() {
                heads.push((to_unix(head.published), head.id, pending.len()));
            }
            let full = queue.len() == FEED_PAGE;
            pending.push((queue, full));
        }
        while let Some((_, _, at)) = heads.pop() {
            let Some(next) = pending[at].0.pop_front() else {
                continue;
            };
            if pending[at].0.is_empty() && pending[at].1 {
                let queue = page(next.feed_id, (to_unix(next.published), next.id))?;
                let full = queue.len() == FEED_PAGE;
                pending[at] = (queue, full);
            }
            if let Some(head) = pending[at].0.front() {
                heads.push((to_unix(head.published), head.id, at));
            }
            if each(next).is_break() {
                break;
            }
        }
        Ok(())
    }

    /// Every visible entry whose canonical link is `canonical`, first seen first. (Callers keep
    /// the feeds they care about: an IN-list here would be rebuilt on every call. The `+` keeps
    /// SQLite's STAT4 planner from re-preparing the statement for every value bound to it.)
    pub(crate) fn entries_with_link(&self, canonical: &str) -> Result<Vec<StoredEntry>, StoreError> {
        self.conn.query(
            &format!(
                "SELECT {ENTRY_COLUMNS} FROM entries INDEXED BY entries_by_link
                 WHERE canonical_link = +?1 AND hidden = 0
                 ORDER BY first_seen, id"
            ),
            params![canonical],
            entry_from_row,
        )
    }

    /// Entries that `what` names: by link (as given or canonical), guid, or identity key.
    pub(crate) fn entries_matching(&self, what: &str) -> Result<Vec<StoredEntry>, StoreError> {
        let canonical = crate::dedupe::canonical_url(what);
        self.conn.query(
            &format!(
                "SELECT {ENTRY_COLUMNS} FROM entries
                 WHERE link = ?1 OR canonical_link = ?2 OR guid = ?1 OR key = ?1
                    OR key IN ('guid:' || ?1, 'link:' || ?2)
                    OR lower(title) = lower(?1)
                 ORDER BY id"
            ),
            params![what, canonical],
            entry_from_row,
        )
    }

    /// Every entry's id, feed URL and key: what output ids are derived from.
    pub(crate) fn entry_keys(&self) -> Result<Vec<(i64, String, String)>, StoreError> {
        self.conn.query(
            "SELECT e.id, f.url, e.key FROM entries e JOIN feeds f ON f.id = e.feed_id",
            params![],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
    }

    /// One entry by its row id.
    pub fn entry(&self, id: i64) -> Result<Option<StoredEntry>, StoreError> {
        self.conn.query_opt(
            &format!("SELECT {ENTRY_COLUMNS} FROM entries WHERE id = ?1"),
            params![id],
            entry_from_row,
        )
    }

    /// Entries of `feed_id` whose page could not be read once, last tried before `before`:
    /// their one more try. Ids and links.
    pub(crate) fn full_text_retries(
        &self,
        feed_id: i64,
        before: DateTime<Utc>,
    ) -> Result<Vec<(i64, String)>, StoreError> {
        self.conn.query(
            "SELECT id, link FROM entries
             WHERE feed_id = ?1 AND full_text = 'failed' AND full_text_tries < 2 AND full_text_at < ?2
               AND link IS NOT NULL
             ORDER BY id",
            params![feed_id, before.timestamp_millis()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
    }

    /// Records another try at entry `id`'s page: with the article, it becomes the content and
    /// the feed's text the summary; without, the error is kept.
    pub(crate) fn record_full_text(
        &mut self,
        id: i64,
        article: Result<&str, &str>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        match article {
            Ok(html) => self.conn.execute(
                "UPDATE entries SET summary = COALESCE(content, summary), content = ?2, full_text = 'page',
                     full_text_error = NULL, full_text_tries = full_text_tries + 1, full_text_at = ?3
                 WHERE id = ?1",
                params![id, html, now.timestamp_millis()],
            )?,
            Err(error) => self.conn.execute(
                "UPDATE entries SET full_text_error = ?2, full_text_tries = full_text_tries + 1, full_text_at = ?3
                 WHERE id = ?1",
                params![id, error, now.timestamp_millis()],
            )?,
        };
        Ok(())
    }

    /// Removes entries for good, leaving a tombstone per key so a later poll that still sees
    /// them in the feed does not bring them back as new.
    pub(crate) fn retire_entries(&mut self, ids: &[i64], now: DateTime<Utc>) -> Result<usize, StoreError> {
        self.conn.savepoint(|c| {
            let mut removed = 0;
            for id in ids {
                c.execute(
                    "INSERT INTO tombstones (feed_id, key, removed, last_seen)
                     SELECT feed_id, key, ?2, ?2 FROM entries WHERE id = ?1
                     ON CONFLICT DO NOTHING",
                    params![id, to_unix(now)],
                )?;
                // The feed's recorded items included this entry's: forget them all, so the
                // next parse reads every item and keeps the new tombstone seen. Once per
                // feed: the other entries retired with it find nothing left to forget.
                c.execute(
                    "UPDATE feeds SET segments = NULL
                     WHERE id = (SELECT feed_id FROM entries WHERE id = ?1) AND segments IS NOT NULL",
                    params![id],
                )?;
                removed += c.execute("DELETE FROM entries WHERE id = ?1", params![id])?;
            }
            Ok(removed)
        })
    }

    /// Number of stored entries per feed URL (for reports and tests).
    pub(crate) fn entry_counts(&self) -> Result<HashMap<String, usize>, StoreError> {
        let rows = self.conn.query(
            "SELECT f.url, COUNT(e.id) FROM feeds f LEFT JOIN entries e ON e.feed_id = f.id GROUP BY f.id, f.url",
            params![],
            |r| Ok((r.get::<String>(0)?, r.get::<i64>(1)?)),
        )?;
        Ok(rows
            .into_iter()
            .map(|(u, n)| (u, usize::try_from(n).unwrap_or(0)))
            .collect())
    }
}

/// The body of [`Store::store_parsed`], inside its savepoint.
fn store_parsed(
    c: &super::sql::Conn,
    feed_id: i64,
    batch: &ParsedBatch<'_>,
    now: DateTime<Utc>,
) -> Result<StoreOutcome, StoreError> {
    let now_s = to_unix(now);
    let rhythm = batch.meta.rhythm.ttl.max(batch.meta.rhythm.update_interval);
    let mut outcome = StoreOutcome::default();
    let mut segments = batch.unchanged_segments.clone();
    let first_parse: bool = c.query_one(
        "SELECT last_success IS NULL FROM feeds WHERE id = ?1",
        params![feed_id],
        |r| r.get(0),
    )?;
    // A new feed shows its newest few: its first poll's entries are ranked by date, and
    // those ranked past `new_feed_entries` are kept out of outputs (see `apply_catalogue_limit`).
    let ranks = if first_parse {
        catalogue_ranks(batch.entries)
    } else {
        std::collections::HashMap::new()
    };
    // Most feeds have no tombstones; then no entry needs looking up among them.
    let has_tombstones: bool = c.query_one(
        "SELECT EXISTS (SELECT 1 FROM tombstones WHERE feed_id = ?1)",
        params![feed_id],
        |r| r.get(0),
    )?;
    // New keys are the common case: one statement inserts them, and only a conflict (the
    // key is stored already) costs a lookup. The insert and the update list the same content
    // columns by position. Binding them by name instead, to share one list, cost 0.4 s of a
    // cold 1,000-feed poll (a name lookup per parameter per row, on the single store thread).
    const INSERT: &str = "INSERT INTO entries (feed_id, key, guid, link, title, author_name, author_email,
             author_uri, summary, content, categories, enclosures, published, updated, first_seen,
             content_hash, canonical_link, hidden, catalogue_rank, full_text, full_text_error,
             full_text_tries, full_text_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19,
             ?20, ?21, ?22, CASE WHEN CAST(?20 AS TEXT) IS NULL THEN NULL ELSE CAST(?23 AS BIGINT) END)
         ON CONFLICT (feed_id, key) DO NOTHING";
    const UPDATE: &str = "UPDATE entries SET guid = ?2, link = ?3, title = ?4, author_name = ?5,
             author_email = ?6, author_uri = ?7, summary = ?8, content = ?9, categories = ?10,
             enclosures = ?11, updated = ?12, content_hash = ?13, canonical_link = ?14, full_text = ?15,
             full_text_error = ?16, full_text_tries = ?17,
             full_text_at = CASE WHEN CAST(?15 AS TEXT) IS NULL THEN NULL ELSE CAST(?18 AS BIGINT) END
         WHERE id = ?1";
    for keyed in batch.entries {
        let key = keyed.key.as_str();
        // A tombstoned entry's item is never recorded: its tombstone must go on being seen
        // (marked seen again: it must outlive the feed showing the key).
        if has_tombstones
            && c.execute(
                "UPDATE tombstones SET last_seen = ?3 WHERE feed_id = ?1 AND key = ?2",
                params![feed_id, key, now_s],
            )? > 0
        {
            continue;
        }
        segments.add(keyed.segment);
        let rank = ranks.get(key).copied();
        let e = &keyed.entry;
        let full_text = full_text_columns(&e.full_text);
        let author = e.author.as_ref();
        let categories = serde_json::to_string(&e.categories).unwrap_or_else(|_| "[]".into());
        let enclosures = serde_json::to_string(&e.enclosures).unwrap_or_else(|_| "[]".into());
        let not_future = |d: DateTime<Utc>| (d <= now).then_some(to_unix(d));
        let published = e.published.and_then(not_future).unwrap_or(now_s);
        let updated = e.updated.and_then(not_future).unwrap_or(published).max(published);
        let inserted = c.execute(
            INSERT,
            params![
                feed_id,
                key,
                e.guid,
                e.link,
                e.title,
                author.map(|a| &a.name),
                author.and_then(|a| a.email.as_deref()),
                author.and_then(|a| a.uri.as_deref()),
                e.summary,
                e.content,
                categories,
                enclosures,
                published,
                updated,
                now_s,
                keyed.content_hash,
                keyed.canonical_link,
                rank.is_some_and(|r| r >= batch.new_feed_entries),
                rank,
                full_text.0,
                full_text.1,
                full_text.2,
                now.timestamp_millis(),
            ],
        )?;
        if inserted > 0 {
            outcome.new += 1;
            if rank.is_some_and(|r| r >= batch.new_feed_entries) {
                outcome.held_back += 1;
            }
            continue;
        }
        let (id, hash, stored_updated): (i64, String, i64) = c.query_one(
            "SELECT id, content_hash, updated FROM entries WHERE feed_id = ?1 AND key = ?2",
            params![feed_id, key],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        if hash == keyed.content_hash {
            continue;
        }
        // The feed's own modification date when it moved forward; otherwise now, the moment
        // we saw the change. The first-seen date stays.
        let updated = e
            .updated
            .and_then(not_future)
            .filter(|u| *u > stored_updated)
            .unwrap_or(now_s);
        c.execute(
            UPDATE,
            params![
                id,
                e.guid,
                e.link,
                e.title,
                author.map(|a| &a.name),
                author.and_then(|a| a.email.as_deref()),
                author.and_then(|a| a.uri.as_deref()),
                e.summary,
                e.content,
                categories,
                enclosures,
                updated.max(stored_updated),
                keyed.content_hash,
                keyed.canonical_link,
                full_text.0,
                full_text.1,
                full_text.2,
                now.timestamp_millis(),
            ],
        )?;
        outcome.updated += 1;
    }
    c.execute(
        "UPDATE feeds SET title = ?2, site_url = ?3, feed_id = ?4, etag = ?5, last_modified = ?6,
             body_hash = ?7, last_fetch = ?14, last_success = ?8, last_error = NULL, failures = 0,
             failing_since = NULL, retry_after = NULL, gone_at = NULL, gone_config = NULL, fresh_until = ?9,
             rhythm = ?10,
             skip_hours = ?11, skip_days = ?12, segments = ?13,
             failure_kind = NULL, abandoned_at = NULL,
             next_due = ?15, schedule_key = ?16, lease_until = NULL, repairs = ?17, language = ?18
         WHERE id = ?1",
        params![
            feed_id,
            batch.meta.title,
            batch.meta.site_url,
            batch.meta.id,
            batch.validators.etag,
            batch.validators.last_modified,
            batch.body_hash,
            now_s,
            batch.fresh_until.map(to_unix),
            rhythm.map(|d| d.as_secs()),
            batch.meta.rhythm.skip.hours,
            batch.meta.rhythm.skip.days,
            segments.to_stored(),
            to_millis(now),
            batch.scheduled.next_due.map(to_millis_ceil),
            batch.scheduled.key,
            crate::model::Repair::join(&batch.meta.repairs),
            batch.meta.language,
        ],
    )?;
    Ok(outcome)
}

#[cfg(test)]
pub(crate) mod tests {
    use chrono::TimeZone;

    crate::store::on_both_stores!(
        retired_entries_leave_a_tombstone_and_never_come_back,
        retiring_forgets_fingerprints_and_tombstoned_items_are_not_recorded,
        newest_entries_are_ordered_limited_and_selected_by_feed,
    );

    use super::*;
    use crate::dedupe::key_entries;
    use crate::model::Entry;

    /// The newest `limit` visible entries of the feeds at `urls`, with those feeds' state
    /// (what the store's tests look at; outputs select through [`Store::candidates`]).
    pub(crate) fn newest_entries(
        store: &Store,
        urls: &[String],
        limit: usize,
    ) -> Result<(Vec<StoredEntry>, HashMap<i64, FeedState>), StoreError> {
        let feeds: HashMap<i64, FeedState> = store
            .feeds_by_url(urls)?
            .into_values()
            .map(|f| (f.id, f))
            .collect();
        let ids: Vec<i64> = feeds.keys().copied().collect();
        let mut wanted = Vec::new();
        store.candidates(&ids, false, Needs::default(), |c| {
            wanted.push(c.id);
            if wanted.len() >= limit {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })?;
        let entries = wanted
            .into_iter()
            .filter_map(|id| store.entry(id).transpose())
            .collect::<Result<_, _>>()?;
        Ok((entries, feeds))
    }

    fn batch_of(titles: &[&str]) -> Vec<KeyedEntry> {
        finished(
            titles
                .iter()
                .map(|t| Entry {
                    guid: Some(format!("id-{t}")),
                    title: t.to_string(),
                    ..Entry::default()
                })
                .collect(),
        )
    }

    /// Keyed and finished, as the poller hands entries to the store.
    pub(crate) fn finished(entries: Vec<Entry>) -> Vec<KeyedEntry> {
        let mut sanitizer = crate::content::Sanitizer::new();
        key_entries(entries.into_iter().map(Into::into).collect())
            .into_iter()
            .map(|k| crate::content::finish(k, &[], &mut sanitizer))
            .collect()
    }

    pub(crate) fn store_all(store: &mut Store, feed: i64, entries: &[KeyedEntry]) -> StoreOutcome {
        store_batch(store, feed, entries, 100, Utc::now())
    }

    /// Stores `entries` as one poll of `feed` at `now` would, its back catalogue limited to
    /// `new_feed_entries`.
    pub(crate) fn store_batch(
        store: &mut Store,
        feed: i64,
        entries: &[KeyedEntry],
        new_feed_entries: usize,
        now: DateTime<Utc>,
    ) -> StoreOutcome {
        let meta = FeedMeta::default();
        let validators = Validators::default();
        let batch = ParsedBatch {
            meta: &meta,
            validators: &validators,
            body_hash: "h",
            entries,
            fresh_until: None,
            new_feed_entries,
            unchanged_segments: &Fingerprints::default(),
            scheduled: &crate::store::Scheduled {
                lease: None,
                next_due: None,
                key: String::new(),
            },
        };
        store.store_parsed(feed, &batch, now).unwrap()
    }

    fn retired_entries_leave_a_tombstone_and_never_come_back(mut store: Store) {
        let feed = store
            .ensure_feeds(&["https://e.org/f".into()], Utc::now())
            .unwrap()[0]
            .id;
        let entries = batch_of(&["a", "b"]);
        assert_eq!(store_all(&mut store, feed, &entries).new, 2);

        let (stored, _) = newest_entries(&store, &["https://e.org/f".into()], 10).unwrap();
        let a = stored.iter().find(|e| e.entry.title == "a").unwrap().id;
        assert_eq!(store.retire_entries(&[a], Utc::now()).unwrap(), 1);

        // The feed still carries "a": it must not return as new.
        assert_eq!(store_all(&mut store, feed, &entries), StoreOutcome::default());
        let (stored, _) = newest_entries(&store, &["https://e.org/f".into()], 10).unwrap();
        assert_eq!(stored.len(), 1);
        assert!(store.integrity_check().unwrap().is_ok());
    }

    /// Retiring an entry forgets the feed's item fingerprints (the next parse must read its
    /// item to see the tombstone again), and a tombstoned entry's item is never recorded.
    fn retiring_forgets_fingerprints_and_tombstoned_items_are_not_recorded(mut store: Store) {
        let feed = store
            .ensure_feeds(&["https://e.org/f".into()], Utc::now())
            .unwrap()[0]
            .id;
        let mut entries = batch_of(&["a", "b"]);
        entries[0].segment = Some(1);
        entries[1].segment = Some(2);
        store_all(&mut store, feed, &entries);
        assert_eq!(store.fingerprints(feed).unwrap(), [1, 2].into_iter().collect());

        let (stored, _) = newest_entries(&store, &["https://e.org/f".into()], 10).unwrap();
        let a = stored.iter().find(|e| e.entry.title == "a").unwrap().id;
        store.retire_entries(&[a], Utc::now()).unwrap();
        assert!(store.fingerprints(feed).unwrap().is_empty());

        store_all(&mut store, feed, &entries);
        assert_eq!(store.fingerprints(feed).unwrap(), [2].into_iter().collect());
    }

    fn newest_entries_are_ordered_limited_and_selected_by_feed(mut store: Store) {
        let urls: Vec<String> = vec!["https://e.org/1".into(), "https://e.org/2".into()];
        let feeds = store.ensure_feeds(&urls, Utc::now()).unwrap();
        for (i, feed) in feeds.iter().enumerate() {
            let entries = finished(
                ["x", "y", "z"]
                    .iter()
                    .enumerate()
                    .map(|(j, t)| Entry {
                        guid: Some(format!("id-{t}")),
                        title: t.to_string(),
                        published: Utc.timestamp_opt(1_700_000_000 + (j * 10 + i) as i64, 0).single(),
                        ..Entry::default()
                    })
                    .collect(),
            );
            store_all(&mut store, feed.id, &entries);
        }
        let (two, feeds_seen) = newest_entries(&store, &urls, 2).unwrap();
        assert_eq!(two.len(), 2);
        assert!(two[0].published > two[1].published);
        assert_eq!(feeds_seen.len(), 2);
        let (only_first, _) = newest_entries(&store, &urls[..1], 10).unwrap();
        assert_eq!(only_first.len(), 3);
        assert!(only_first.iter().all(|e| e.feed_id == feeds[0].id));

        // A narrow selection (one feed of many) takes the per-feed path; same answer.
        let others: Vec<String> = (3..12).map(|i| format!("https://e.org/{i}")).collect();
        store.ensure_feeds(&others, Utc::now()).unwrap();
        let (narrow, narrow_feeds) = newest_entries(&store, &urls[..1], 2).unwrap();
        assert_eq!(
            narrow.iter().map(|e| e.id).collect::<Vec<_>>(),
            only_first[..2].iter().map(|e| e.id).collect::<Vec<_>>()
        );
        assert_eq!(narrow_feeds.len(), 1);
    }

    #[test]
    fn a_database_from_a_newer_tributary_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        drop(Store::open(&path).unwrap());
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        drop(conn);
        assert!(matches!(
            Store::open(&path),
            Err(StoreError::TooNew { found: 99, .. })
        ));
    }
}
