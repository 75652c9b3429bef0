//! Entry rows: upserts by (feed, key) with stable dates, tombstones, and the queries outputs use.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, Row, params};

use super::{Db, from_unix, to_millis_ceil};
use crate::model::Fingerprints;
use crate::model::{EntryKey, Person, StoredEntry};
use crate::store::{
    Candidate, CandidateQuery, EntryStats, ParsedBatch, StoreOutcome, catalogue_ranks, full_text_columns,
    full_text_from, language_columns, language_from, settled_dates,
};

/// Up to this many feeds, [`Db::candidates`] merges the newest of each feed, read from the
/// per-feed index, at most this many per feed and page.
const FEW_FEEDS: usize = 256;
const FEED_PAGE: usize = 64;

const ENTRY_COLUMNS: &str = "id, feed_id, key, guid, link, title, author_name, author_email, author_uri, \
                             summary, content, categories, enclosures, published, updated, first_seen, \
                             canonical_link, hidden, catalogue_rank, full_text, full_text_error, \
                             full_text_tries, language, language_source, pushed";

fn entry_from_row(row: &Row<'_>) -> rusqlite::Result<StoredEntry> {
    let author_name: Option<String> = row.get(6)?;
    let json_list = |i| -> rusqlite::Result<String> { row.get(i) };
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
            language: language_from(row.get(22)?, row.get(23)?),
        },
        published: from_unix(row.get(13)?),
        updated: from_unix(row.get(14)?),
        first_seen: from_unix(row.get(15)?),
        canonical_link: row.get(16)?,
        hidden: row.get(17)?,
        catalogue_rank: row
            .get::<_, Option<i64>>(18)?
            .and_then(|r| usize::try_from(r).ok()),
        pushed: row.get::<_, Option<bool>>(24)?.unwrap_or(false),
    })
}

fn candidate_from_row(row: &Row<'_>) -> rusqlite::Result<Candidate> {
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
        language: row.get(10)?,
    })
}

impl Db {
    /// Keeps a new feed's back catalogue out of outputs by `limit`: entries ranked past it in
    /// their feed's first poll are hidden, the others shown.
    pub(super) fn apply_catalogue_limit(&mut self, limit: usize) -> rusqlite::Result<bool> {
        let applied: Option<String> = self
            .conn
            .prepare_cached("SELECT value FROM settings WHERE name = 'new_feed_entries'")?
            .query_row([], |r| r.get(0))
            .optional()?;
        if applied.as_deref() == Some(limit.to_string().as_str()) {
            return Ok(false);
        }
        let limit_sql = i64::try_from(limit).unwrap_or(i64::MAX);
        self.savepoint(|db| {
            db.exec(
                "UPDATE entries SET hidden = (catalogue_rank >= ?1)
                 WHERE catalogue_rank IS NOT NULL AND hidden != (catalogue_rank >= ?1)",
                [limit_sql],
            )?;
            db.exec(
                "INSERT INTO settings (name, value) VALUES ('new_feed_entries', ?1)
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                [limit.to_string()],
            )?;
            Ok(())
        })?;
        Ok(true)
    }

    pub(super) fn fingerprints(&self, feed_id: i64) -> rusqlite::Result<Fingerprints> {
        let blob: Option<Vec<u8>> = self
            .conn
            .prepare_cached("SELECT segments FROM feeds WHERE id = ?1")?
            .query_row([feed_id], |r| r.get(0))
            .optional()?
            .flatten();
        Ok(Fingerprints::from_stored(&blob.unwrap_or_default()))
    }

    pub(super) fn content_hashes(
        &self,
        feed_id: i64,
        keys: Vec<String>,
    ) -> rusqlite::Result<HashMap<String, String>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT content_hash FROM entries WHERE feed_id = ?1 AND key = ?2")?;
        let mut hashes = HashMap::with_capacity(keys.len());
        for key in keys {
            if let Some(hash) = stmt.query_row(params![feed_id, key], |r| r.get(0)).optional()? {
                hashes.insert(key, hash);
            }
        }
        Ok(hashes)
    }

    /// One page of candidates, newest first. Three ways, by what the output selects:
    /// - every feed: a walk of the date index;
    /// - many feeds: a walk of the date index that tests each row's feed from the index alone
    ///   (rows of other feeds are never read), then the kept rows;
    /// - a few feeds: each feed's newest from the per-feed index, merged.
    pub(super) fn candidates(&self, query: &CandidateQuery) -> rusqlite::Result<Vec<Candidate>> {
        let needs = query.needs;
        let columns = format!(
            "id, feed_id, published, title, link, canonical_link, {}, {}, {}, language",
            if needs.author { "author_name" } else { "NULL" },
            if needs.categories { "categories" } else { "'[]'" },
            if needs.bodies {
                "summary, content"
            } else {
                "NULL, NULL"
            },
        );
        let (after_published, after_id) = query
            .after
            .map_or((i64::MAX, i64::MAX), |(p, id)| (p.timestamp(), id));
        let limit = i64::try_from(query.limit).unwrap_or(i64::MAX);
        let Some(feeds) = &query.feeds else {
            return self
                .conn
                .prepare_cached(&format!(
                    "SELECT {columns} FROM entries INDEXED BY entries_by_date
                     WHERE hidden = 0 AND (published, id) < (?1, ?2)
                     ORDER BY published DESC, id DESC LIMIT ?3"
                ))?
                .query_map(params![after_published, after_id, limit], candidate_from_row)?
                .collect();
        };
        let by_id = format!("SELECT {columns} FROM entries WHERE id = ?1");
        if feeds.len() > FEW_FEEDS {
            let mut walk = self.conn.prepare_cached(
                "SELECT id, feed_id FROM entries INDEXED BY entries_by_date
                 WHERE hidden = 0 AND (published, id) < (?1, ?2)
                 ORDER BY published DESC, id DESC",
            )?;
            let mut rows = walk.query(params![after_published, after_id])?;
            let mut kept = Vec::with_capacity(query.limit);
            while kept.len() < query.limit
                && let Some(row) = rows.next()?
            {
                if feeds.contains(&row.get::<_, i64>(1)?) {
                    kept.push(row.get::<_, i64>(0)?);
                }
            }
            let mut read = self.conn.prepare_cached(&by_id)?;
            return kept
                .into_iter()
                .map(|id| read.query_row([id], candidate_from_row))
                .collect();
        }
        let per_feed = query.limit.min(FEED_PAGE);
        let mut page = self.conn.prepare_cached(&format!(
            "SELECT {columns} FROM entries INDEXED BY entries_by_feed
             WHERE feed_id = ?1 AND hidden = 0 AND (published, id) < (?2, ?3)
             ORDER BY published DESC, id DESC LIMIT ?4"
        ))?;
        let mut merged: Vec<Candidate> = Vec::new();
        // Rows older than a full feed page's last may not have been read: only what is at
        // least as new as the newest such last row is certain to be in order.
        let mut certain_from: Option<(DateTime<Utc>, i64)> = None;
        for feed in feeds.iter() {
            let rows: Vec<Candidate> = page
                .query_map(
                    params![feed, after_published, after_id, per_feed as i64],
                    candidate_from_row,
                )?
                .collect::<rusqlite::Result<_>>()?;
            if rows.len() == per_feed
                && let Some(last) = rows.last()
            {
                certain_from = certain_from.max(Some(last.cursor()));
            }
            merged.extend(rows);
        }
        merged.sort_unstable_by_key(|c| std::cmp::Reverse(c.cursor()));
        if let Some(from) = certain_from {
            merged.retain(|c| c.cursor() >= from);
        }
        merged.truncate(query.limit);
        Ok(merged)
    }

    pub(super) fn entries(&self, ids: &[i64]) -> rusqlite::Result<Vec<StoredEntry>> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!("SELECT {ENTRY_COLUMNS} FROM entries WHERE id = ?1"))?;
        let mut entries = Vec::with_capacity(ids.len());
        for id in ids {
            entries.extend(stmt.query_row([id], entry_from_row).optional()?);
        }
        Ok(entries)
    }

    /// Every visible entry of each canonical link, first seen first. (The `+` keeps SQLite's
    /// STAT4 planner from re-preparing the statement for every value bound to it.)
    pub(super) fn entries_with_links(&self, links: &[String]) -> rusqlite::Result<Vec<StoredEntry>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {ENTRY_COLUMNS} FROM entries INDEXED BY entries_by_link
             WHERE canonical_link = +?1 AND hidden = 0
             ORDER BY first_seen, id"
        ))?;
        let mut entries = Vec::new();
        for link in links {
            for entry in stmt.query_map([link], entry_from_row)? {
                entries.push(entry?);
            }
        }
        Ok(entries)
    }

    pub(super) fn entries_matching(&self, what: &str, canonical: &str) -> rusqlite::Result<Vec<StoredEntry>> {
        self.conn
            .prepare_cached(&format!(
                "SELECT {ENTRY_COLUMNS} FROM entries
                 WHERE link = ?1 OR canonical_link = ?2 OR guid = ?1 OR key = ?1
                    OR key IN ('guid:' || ?1, 'link:' || ?2)
                    OR lower(title) = lower(?1)
                 ORDER BY id"
            ))?
            .query_map(params![what, canonical], entry_from_row)?
            .collect()
    }

    pub(super) fn entry_keys(&self) -> rusqlite::Result<Vec<(i64, String, String)>> {
        self.conn
            .prepare_cached("SELECT e.id, COALESCE(f.id_url, f.url), e.key FROM entries e JOIN feeds f ON f.id = e.feed_id")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect()
    }

    pub(super) fn full_text_retries(
        &self,
        feed_id: i64,
        before: DateTime<Utc>,
    ) -> rusqlite::Result<Vec<(i64, String)>> {
        self.conn
            .prepare_cached(
                "SELECT id, link FROM entries
                 WHERE feed_id = ?1 AND full_text = 'failed' AND full_text_tries < 2 AND full_text_at < ?2
                   AND link IS NOT NULL
                 ORDER BY id",
            )?
            .query_map(params![feed_id, before.timestamp_millis()], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?
            .collect()
    }

    pub(super) fn record_full_text(
        &mut self,
        tries: &[(i64, Result<String, String>)],
        now: DateTime<Utc>,
    ) -> rusqlite::Result<()> {
        for (id, article) in tries {
            match article {
                Ok(html) => self.exec(
                    "UPDATE entries SET summary = COALESCE(content, summary), content = ?2, full_text = 'page',
                         full_text_error = NULL, full_text_tries = full_text_tries + 1, full_text_at = ?3
                     WHERE id = ?1",
                    params![id, html, now.timestamp_millis()],
                )?,
                Err(error) => self.exec(
                    "UPDATE entries SET full_text_error = ?2, full_text_tries = full_text_tries + 1, full_text_at = ?3
                     WHERE id = ?1",
                    params![id, error, now.timestamp_millis()],
                )?,
            };
        }
        Ok(())
    }

    /// Removes entries for good, leaving a tombstone per key so a later poll that still sees
    /// them in the feed does not bring them back as new.
    pub(super) fn retire_entries(&mut self, ids: &[i64], now: DateTime<Utc>) -> rusqlite::Result<usize> {
        let mut removed = 0;
        for id in ids {
            self.exec(
                "INSERT INTO tombstones (feed_id, key, removed, last_seen)
                 SELECT feed_id, key, ?2, ?2 FROM entries WHERE id = ?1
                 ON CONFLICT DO NOTHING",
                params![id, now.timestamp()],
            )?;
            // The feed's recorded items included this entry's: forget them all, so the next
            // parse reads every item and keeps the new tombstone seen. Once per feed: the
            // other entries retired with it find nothing left to forget.
            self.exec(
                "UPDATE feeds SET segments = NULL
                 WHERE id = (SELECT feed_id FROM entries WHERE id = ?1) AND segments IS NOT NULL",
                [id],
            )?;
            removed += self.exec("DELETE FROM entries WHERE id = ?1", [id])?;
        }
        Ok(removed)
    }

    pub(super) fn expire_tombstones(
        &mut self,
        cutoff: DateTime<Utc>,
        limit: usize,
    ) -> rusqlite::Result<usize> {
        self.exec(
            "DELETE FROM tombstones WHERE (feed_id, key) IN
                 (SELECT feed_id, key FROM tombstones WHERE last_seen < ?1 LIMIT ?2)",
            params![cutoff.timestamp(), i64::try_from(limit).unwrap_or(i64::MAX)],
        )
    }

    pub(super) fn entry_stats(&self) -> rusqlite::Result<HashMap<String, EntryStats>> {
        self.conn
            .prepare_cached(
                "SELECT f.url, COUNT(e.id), MAX(e.first_seen) FROM feeds f LEFT JOIN entries e ON e.feed_id = f.id
                 GROUP BY f.id, f.url",
            )?
            .query_map([], |r| {
                let stats = EntryStats {
                    count: usize::try_from(r.get::<_, i64>(1)?).unwrap_or(0),
                    newest: r.get::<_, Option<i64>>(2)?.map(from_unix),
                };
                Ok((r.get::<_, String>(0)?, stats))
            })?
            .collect()
    }

    /// Stores one feed's parse; the caller holds a savepoint, so it is all or nothing.
    pub(super) fn store_parsed(
        &mut self,
        feed_id: i64,
        batch: &ParsedBatch,
        now: DateTime<Utc>,
    ) -> rusqlite::Result<StoreOutcome> {
        let now_s = now.timestamp();
        let rhythm = batch.meta.rhythm.ttl.max(batch.meta.rhythm.update_interval);
        let mut outcome = StoreOutcome::default();
        let mut segments = batch.unchanged_segments.clone();
        let first_parse: bool = self
            .conn
            .prepare_cached("SELECT last_success IS NULL FROM feeds WHERE id = ?1")?
            .query_row([feed_id], |r| r.get(0))?;
        // A new feed shows its newest few: its first poll's entries are ranked by date, and
        // those ranked past `new_feed_entries` are kept out of outputs.
        let ranks = if first_parse {
            catalogue_ranks(&batch.entries)
        } else {
            HashMap::new()
        };
        // Most feeds have no tombstones; then no entry needs looking up among them.
        let has_tombstones: bool = self
            .conn
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM tombstones WHERE feed_id = ?1)")?
            .query_row([feed_id], |r| r.get(0))?;
        // New keys are the common case: one statement inserts them, and only a conflict (the
        // key is stored already) costs a lookup. The insert and the update list the same
        // content columns by position. Binding them by name instead, to share one list, cost
        // 0.4 s of a cold 1,000-feed poll (a name lookup per parameter per row, on the single
        // store thread).
        const INSERT: &str =
            "INSERT INTO entries (feed_id, key, guid, link, title, author_name, author_email,
                 author_uri, summary, content, categories, enclosures, published, updated, first_seen,
                 content_hash, canonical_link, hidden, catalogue_rank, full_text, full_text_error,
                 full_text_tries, full_text_at, language, language_source, pushed)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19,
                 ?20, ?21, ?22, CASE WHEN ?20 IS NULL THEN NULL ELSE ?23 END, ?24, ?25, ?26)
             ON CONFLICT (feed_id, key) DO NOTHING";
        const UPDATE: &str = "UPDATE entries SET guid = ?2, link = ?3, title = ?4, author_name = ?5,
                 author_email = ?6, author_uri = ?7, summary = ?8, content = ?9, categories = ?10,
                 enclosures = ?11, updated = ?12, content_hash = ?13, canonical_link = ?14, full_text = ?15,
                 full_text_error = ?16, full_text_tries = ?17,
                 full_text_at = CASE WHEN ?15 IS NULL THEN NULL ELSE ?18 END,
                 language = ?19, language_source = ?20
             WHERE id = ?1";
        for keyed in &batch.entries {
            let key = keyed.key.as_str();
            // A tombstoned entry's item is never recorded: its tombstone must go on being seen
            // (marked seen again: it must outlive the feed showing the key).
            if has_tombstones
                && self.exec(
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
            let language = language_columns(&e.language);
            let author = e.author.as_ref();
            let categories = serde_json::to_string(&e.categories).unwrap_or_else(|_| "[]".into());
            let enclosures = serde_json::to_string(&e.enclosures).unwrap_or_else(|_| "[]".into());
            let (published, updated) = settled_dates(e, now);
            let hidden = rank.is_some_and(|r| r >= batch.new_feed_entries);
            let inserted = self.exec(
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
                    published.timestamp(),
                    updated.timestamp(),
                    now_s,
                    keyed.content_hash,
                    keyed.canonical_link,
                    hidden,
                    rank.map(|r| r as i64),
                    full_text.0,
                    full_text.1,
                    full_text.2,
                    now.timestamp_millis(),
                    language.0,
                    language.1,
                    batch.pushed.then_some(true),
                ],
            )?;
            if inserted > 0 {
                outcome.new += 1;
                if hidden {
                    outcome.held_back += 1;
                }
                continue;
            }
            let (id, hash, stored_updated): (i64, String, i64) = self
                .conn
                .prepare_cached(
                    "SELECT id, content_hash, updated FROM entries WHERE feed_id = ?1 AND key = ?2",
                )?
                .query_row(params![feed_id, key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            if hash == keyed.content_hash {
                continue;
            }
            let updated = crate::store::updated_on_change(e, from_unix(stored_updated), now);
            self.exec(
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
                    updated.timestamp().max(stored_updated),
                    keyed.content_hash,
                    keyed.canonical_link,
                    full_text.0,
                    full_text.1,
                    full_text.2,
                    now.timestamp_millis(),
                    language.0,
                    language.1,
                ],
            )?;
            outcome.updated += 1;
        }
        self.exec(
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
                batch.fresh_until.map(|t| t.timestamp()),
                rhythm.map(|d| d.as_secs() as i64),
                batch.meta.rhythm.skip.hours,
                batch.meta.rhythm.skip.days,
                segments.to_stored(),
                now.timestamp_millis(),
                batch.scheduled.next_due.map(to_millis_ceil),
                batch.scheduled.key,
                crate::model::Repair::join(&batch.meta.repairs),
                batch.meta.language,
            ],
        )?;
        Ok(outcome)
    }
}
