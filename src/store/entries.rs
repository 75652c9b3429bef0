//! Entry rows: upserts by (feed, key) with stable dates, tombstones, and the queries outputs use.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, Row, params};

use super::{Store, StoreError, from_unix, to_unix};
use crate::model::{EntryKey, FeedMeta, FeedState, KeyedEntry, Person, StoredEntry, Validators};

/// What storing one feed's parse did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreOutcome {
    pub new: usize,
    pub updated: usize,
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
}

const ENTRY_COLUMNS: &str = "id, feed_id, key, guid, link, title, author_name, author_email, author_uri, \
                             summary, content, categories, enclosures, published, updated";

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
        },
        published: from_unix(row.get(13)?),
        updated: from_unix(row.get(14)?),
    })
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
        let now_s = to_unix(now);
        let rhythm = batch.meta.rhythm.ttl.max(batch.meta.rhythm.update_interval);
        let mut outcome = StoreOutcome::default();
        let tx = self.conn.transaction()?;
        {
            // Marks a tombstone as seen again (it must outlive the feed showing the key) and
            // tells whether there was one.
            let mut tombstoned =
                tx.prepare_cached("UPDATE tombstones SET last_seen = ?3 WHERE feed_id = ?1 AND key = ?2")?;
            let mut existing = tx.prepare_cached(
                "SELECT id, content_hash, updated FROM entries WHERE feed_id = ?1 AND key = ?2",
            )?;
            let mut insert = tx.prepare_cached(
                "INSERT INTO entries (feed_id, key, guid, link, title, author_name, author_email, author_uri,
                     summary, content, categories, enclosures, published, updated, first_seen, content_hash)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
            )?;
            let mut update = tx.prepare_cached(
                "UPDATE entries SET guid = ?2, link = ?3, title = ?4, author_name = ?5, author_email = ?6,
                     author_uri = ?7, summary = ?8, content = ?9, categories = ?10, enclosures = ?11,
                     updated = ?12, content_hash = ?13
                 WHERE id = ?1",
            )?;
            for keyed in batch.entries {
                let key = keyed.key.as_str();
                if tombstoned.execute(params![feed_id, key, now_s])? > 0 {
                    continue;
                }
                let e = &keyed.entry;
                let author = e.author.as_ref();
                let categories = serde_json::to_string(&e.categories).unwrap_or_else(|_| "[]".into());
                let enclosures = serde_json::to_string(&e.enclosures).unwrap_or_else(|_| "[]".into());
                let found: Option<(i64, String, i64)> = existing
                    .query_row(params![feed_id, key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    .optional()?;
                let not_future = |d: DateTime<Utc>| (d <= now).then_some(to_unix(d));
                match found {
                    None => {
                        let published = e.published.and_then(not_future).unwrap_or(now_s);
                        let updated = e.updated.and_then(not_future).unwrap_or(published).max(published);
                        insert.execute(params![
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
                        ])?;
                        outcome.new += 1;
                    }
                    Some((_, hash, _)) if hash == keyed.content_hash => {}
                    Some((id, _, stored_updated)) => {
                        // The feed's own modification date when it moved forward; otherwise now,
                        // the moment we saw the change.
                        let updated = e
                            .updated
                            .and_then(not_future)
                            .filter(|u| *u > stored_updated)
                            .unwrap_or(now_s);
                        update.execute(params![
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
                        ])?;
                        outcome.updated += 1;
                    }
                }
            }
            tx.prepare_cached(
                "UPDATE feeds SET title = ?2, site_url = ?3, feed_id = ?4, etag = ?5, last_modified = ?6,
                     body_hash = ?7, last_fetch = ?8, last_success = ?8, last_error = NULL, failures = 0,
                     failing_since = NULL, retry_after = NULL, fresh_until = ?9, rhythm = ?10,
                     skip_hours = ?11, skip_days = ?12
                 WHERE id = ?1",
            )?
            .execute(params![
                feed_id,
                batch.meta.title,
                batch.meta.site_url,
                batch.meta.id,
                batch.validators.etag,
                batch.validators.last_modified,
                batch.body_hash,
                now_s,
                batch.fresh_until.map(to_unix),
                rhythm.map(|d| d.as_secs() as i64),
                batch.meta.rhythm.skip.hours,
                batch.meta.rhythm.skip.days,
            ])?;
        }
        tx.commit()?;
        Ok(outcome)
    }

    /// The newest `limit` entries of the feeds at `urls`, newest first, with those feeds' state.
    pub fn newest_entries(
        &self,
        urls: &[String],
        limit: usize,
    ) -> Result<(Vec<StoredEntry>, HashMap<i64, FeedState>), StoreError> {
        let urls_json = serde_json::to_string(urls).unwrap_or_else(|_| "[]".into());
        let mut feeds = HashMap::new();
        for url in urls {
            if let Some(feed) = self.feed(url)? {
                feeds.insert(feed.id, feed);
            }
        }
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {ENTRY_COLUMNS} FROM entries
             WHERE feed_id IN (SELECT id FROM feeds WHERE url IN (SELECT value FROM json_each(?1)))
             ORDER BY published DESC, id DESC
             LIMIT ?2"
        ))?;
        let entries = stmt
            .query_map(params![urls_json, limit as i64], entry_from_row)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok((entries, feeds))
    }

    /// Removes entries for good, leaving a tombstone per key so a later poll that still sees
    /// them in the feed does not bring them back as new.
    pub fn retire_entries(&mut self, ids: &[i64], now: DateTime<Utc>) -> Result<usize, StoreError> {
        let tx = self.conn.transaction()?;
        let mut removed = 0;
        {
            let mut tomb = tx.prepare_cached(
                "INSERT OR IGNORE INTO tombstones (feed_id, key, removed, last_seen)
                 SELECT feed_id, key, ?2, ?2 FROM entries WHERE id = ?1",
            )?;
            let mut delete = tx.prepare_cached("DELETE FROM entries WHERE id = ?1")?;
            for id in ids {
                tomb.execute(params![id, to_unix(now)])?;
                removed += delete.execute([id])?;
            }
        }
        tx.commit()?;
        Ok(removed)
    }

    /// Number of stored entries per feed URL (for reports and tests).
    pub fn entry_counts(&self) -> Result<HashMap<String, usize>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT f.url, COUNT(e.id) FROM feeds f LEFT JOIN entries e ON e.feed_id = f.id GROUP BY f.id",
        )?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows
            .into_iter()
            .map(|(u, n)| (u, usize::try_from(n).unwrap_or(0)))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::dedupe::key_entries;
    use crate::model::Entry;

    fn batch_of(titles: &[&str]) -> Vec<KeyedEntry> {
        key_entries(
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

    fn store_all(store: &mut Store, feed: i64, entries: &[KeyedEntry]) -> StoreOutcome {
        let meta = FeedMeta::default();
        let validators = Validators::default();
        let batch = ParsedBatch {
            meta: &meta,
            validators: &validators,
            body_hash: "h",
            entries,
            fresh_until: None,
        };
        store.store_parsed(feed, &batch, Utc::now()).unwrap()
    }

    #[test]
    fn retired_entries_leave_a_tombstone_and_never_come_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("t.db")).unwrap();
        let feed = store
            .ensure_feeds(&["https://e.org/f".into()], Utc::now())
            .unwrap()[0]
            .id;
        let entries = batch_of(&["a", "b"]);
        assert_eq!(store_all(&mut store, feed, &entries).new, 2);

        let (stored, _) = store.newest_entries(&["https://e.org/f".into()], 10).unwrap();
        let a = stored.iter().find(|e| e.entry.title == "a").unwrap().id;
        assert_eq!(store.retire_entries(&[a], Utc::now()).unwrap(), 1);

        // The feed still carries "a": it must not return as new.
        assert_eq!(store_all(&mut store, feed, &entries), StoreOutcome::default());
        let (stored, _) = store.newest_entries(&["https://e.org/f".into()], 10).unwrap();
        assert_eq!(stored.len(), 1);
        assert!(store.integrity_check().unwrap().is_ok());
    }

    #[test]
    fn newest_entries_are_ordered_limited_and_selected_by_feed() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("t.db")).unwrap();
        let urls: Vec<String> = vec!["https://e.org/1".into(), "https://e.org/2".into()];
        let feeds = store.ensure_feeds(&urls, Utc::now()).unwrap();
        for (i, feed) in feeds.iter().enumerate() {
            let entries: Vec<_> = batch_of(&["x", "y", "z"])
                .into_iter()
                .enumerate()
                .map(|(j, mut k)| {
                    k.entry.published = Utc.timestamp_opt(1_700_000_000 + (j * 10 + i) as i64, 0).single();
                    k
                })
                .collect();
            store_all(&mut store, feed.id, &entries);
        }
        let (two, feeds_seen) = store.newest_entries(&urls, 2).unwrap();
        assert_eq!(two.len(), 2);
        assert!(two[0].published > two[1].published);
        assert_eq!(feeds_seen.len(), 2);
        let (only_first, _) = store.newest_entries(&urls[..1], 10).unwrap();
        assert_eq!(only_first.len(), 3);
        assert!(only_first.iter().all(|e| e.feed_id == feeds[0].id));
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
