//! Entry rows on PostgreSQL: a feed's parse stored with one set-based statement (its entries'
//! columns bound as arrays, inserted where new and updated where changed), and the reads
//! outputs, `explain` and retention make.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use chrono::{DateTime, SubsecRound, Utc};
use tokio_postgres::Row;

use super::feeds::due_payload;
use super::{PgStore, channel, due_time};
use crate::model::Fingerprints;
use crate::model::{EntryKey, OutputState, Person, StoredEntry};
use crate::store::{
    Candidate, CandidateQuery, EntryStats, ParsedBatch, StoreError, StoreOutcome, catalogue_ranks,
    full_text_columns, full_text_from, language_columns, language_from, settled_dates,
};

const ENTRY_COLUMNS: &str = "id, feed_id, key, guid, link, title, author_name, author_email, author_uri, \
                             summary, content, categories, enclosures, published, updated, first_seen, \
                             canonical_link, hidden, catalogue_rank, full_text, full_text_error, \
                             full_text_tries, language, language_source, pushed";

/// Up to this many feeds an output's candidates are each feed's newest, merged by the server
/// (a lateral join over the per-feed index); beyond, a walk of the date index.
const FEW_FEEDS: usize = 256;

fn entry_from_row(row: &Row) -> Result<StoredEntry, tokio_postgres::Error> {
    let author_name: Option<String> = row.try_get(6)?;
    let enclosures: serde_json::Value = row.try_get(12)?;
    Ok(StoredEntry {
        id: row.try_get(0)?,
        feed_id: row.try_get(1)?,
        key: EntryKey::from_stored(row.try_get(2)?),
        entry: crate::model::Entry {
            guid: row.try_get(3)?,
            link: row.try_get(4)?,
            title: row.try_get(5)?,
            author: match author_name {
                Some(name) => Some(Person {
                    name,
                    email: row.try_get(7)?,
                    uri: row.try_get(8)?,
                }),
                None => None,
            },
            summary: row.try_get(9)?,
            content: row.try_get(10)?,
            categories: row.try_get(11)?,
            // Written by this module from typed values; a value that does not decode is
            // treated as empty rather than failing a whole output.
            enclosures: serde_json::from_value(enclosures).unwrap_or_default(),
            published: None,
            updated: None,
            full_text: full_text_from(
                row.try_get(19)?,
                row.try_get(20)?,
                u32::try_from(row.try_get::<_, i64>(21)?).unwrap_or(0),
            ),
            language: language_from(row.try_get(22)?, row.try_get(23)?),
        },
        published: row.try_get(13)?,
        updated: row.try_get(14)?,
        first_seen: row.try_get(15)?,
        canonical_link: row.try_get(16)?,
        hidden: row.try_get(17)?,
        catalogue_rank: row
            .try_get::<_, Option<i64>>(18)?
            .and_then(|r| usize::try_from(r).ok()),
        pushed: row.try_get::<_, Option<bool>>(24)?.unwrap_or(false),
    })
}

fn candidate_from_row(row: &Row) -> Result<Candidate, tokio_postgres::Error> {
    Ok(Candidate {
        id: row.try_get(0)?,
        feed_id: row.try_get(1)?,
        published: row.try_get(2)?,
        title: row.try_get(3)?,
        link: row.try_get(4)?,
        canonical_link: row.try_get(5)?,
        author: row.try_get(6)?,
        categories: row.try_get::<_, Option<Vec<String>>>(7)?.unwrap_or_default(),
        summary: row.try_get(8)?,
        content: row.try_get(9)?,
        language: row.try_get(10)?,
    })
}

/// `items` as PostgreSQL's array input syntax: each element double-quoted, with `"` and `\\`
/// escaped by a backslash (the documented form, which takes any text).
fn array_literal(items: &[String]) -> String {
    let mut out = String::with_capacity(2 + items.iter().map(|i| i.len() + 3).sum::<usize>());
    out.push('{');
    for (n, item) in items.iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        out.push('"');
        for c in item.chars() {
            if c == '"' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('"');
    }
    out.push('}');
    out
}

/// A parse's entries as columns: one array per column, bound once.
#[derive(Default)]
struct Columns<'a> {
    key: Vec<&'a str>,
    guid: Vec<Option<&'a str>>,
    link: Vec<Option<&'a str>>,
    title: Vec<&'a str>,
    author_name: Vec<Option<&'a str>>,
    author_email: Vec<Option<&'a str>>,
    author_uri: Vec<Option<&'a str>>,
    summary: Vec<Option<&'a str>>,
    content: Vec<Option<&'a str>>,
    /// Each entry's categories as an array literal (`{"a","b"}`), cast by the server: an
    /// array of arrays cannot be bound (`unnest` would flatten it).
    categories: Vec<String>,
    enclosures: Vec<serde_json::Value>,
    published: Vec<DateTime<Utc>>,
    updated: Vec<DateTime<Utc>>,
    /// The feed's own modification date (not in the future): what a changed entry's
    /// `updated` moves to when it moved forward.
    feed_updated: Vec<Option<DateTime<Utc>>>,
    content_hash: Vec<&'a str>,
    canonical_link: Vec<Option<&'a str>>,
    /// Its rank in a new feed's back catalogue, newest first (used on a first success only).
    rank: Vec<Option<i64>>,
    full_text: Vec<Option<&'static str>>,
    full_text_error: Vec<Option<&'a str>>,
    full_text_tries: Vec<i64>,
    language: Vec<Option<&'a str>>,
    language_source: Vec<Option<&'static str>>,
}

impl PgStore {
    pub(super) async fn catalogue_limit(&self, limit: usize) -> Result<bool, StoreError> {
        let limit_sql = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self
            .query(
                "WITH applied AS (
                     SELECT value FROM settings WHERE name = 'new_feed_entries'),
                 changed AS (
                     INSERT INTO settings (name, value) VALUES ('new_feed_entries', $1::bigint::text)
                     ON CONFLICT (name) DO UPDATE SET value = excluded.value
                     WHERE settings.value IS DISTINCT FROM excluded.value
                     RETURNING value),
                 hidden AS (
                     UPDATE entries SET hidden = (catalogue_rank >= $1)
                     WHERE EXISTS (SELECT 1 FROM changed)
                       AND catalogue_rank IS NOT NULL AND hidden <> (catalogue_rank >= $1))
                 SELECT EXISTS (SELECT 1 FROM changed)",
                &[&limit_sql],
            )
            .await?;
        Ok(rows.first().is_some_and(|r| r.get(0)))
    }

    pub(super) async fn segments(&self, feed_id: i64) -> Result<Fingerprints, StoreError> {
        let rows = self
            .query("SELECT segments FROM feeds WHERE id = $1", &[&feed_id])
            .await?;
        let blob: Option<Vec<u8>> = rows.first().and_then(|r| r.get(0));
        Ok(Fingerprints::from_stored(&blob.unwrap_or_default()))
    }

    pub(super) async fn hashes(
        &self,
        feed_id: i64,
        keys: Vec<String>,
    ) -> Result<HashMap<String, String>, StoreError> {
        let rows = self
            .query(
                "SELECT key, content_hash FROM entries WHERE feed_id = $1 AND key = ANY($2)",
                &[&feed_id, &keys],
            )
            .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// One statement, one round trip: the feed's row locked under the poll's claim (else
    /// nothing is written: fenced), the tombstones its items hit marked seen (a tombstoned
    /// entry's item is never recorded: its tombstone must outlive the feed showing the key),
    /// the new entries inserted and the changed ones updated, the feed's state recorded, and
    /// its next due time announced (with the change, when anything changed: the render leader
    /// hears it). A new feed's back catalogue is ranked here and hidden by the server, which
    /// knows whether this is the feed's first success.
    ///
    /// Entries' dates are whole seconds, as in SQLite: copies of a story stored in the same poll
    /// tie on their first-seen time, and the tie goes to the one published first (then the
    /// feed listed first), whichever feed's record committed first.
    pub(super) async fn store_batch(
        &self,
        feed_id: i64,
        batch: ParsedBatch,
        now: DateTime<Utc>,
    ) -> Result<StoreOutcome, StoreError> {
        let ranks = catalogue_ranks(&batch.entries);
        let mut c = Columns::default();
        for keyed in &batch.entries {
            let e = &keyed.entry;
            let (published, updated) = settled_dates(e, now);
            let full_text = full_text_columns(&e.full_text);
            let author = e.author.as_ref();
            c.key.push(keyed.key.as_str());
            c.guid.push(e.guid.as_deref());
            c.link.push(e.link.as_deref());
            c.title.push(&e.title);
            c.author_name.push(author.map(|a| a.name.as_str()));
            c.author_email.push(author.and_then(|a| a.email.as_deref()));
            c.author_uri.push(author.and_then(|a| a.uri.as_deref()));
            c.summary.push(e.summary.as_deref());
            c.content.push(e.content.as_deref());
            c.categories.push(array_literal(&e.categories));
            c.enclosures
                .push(serde_json::to_value(&e.enclosures).unwrap_or_else(|_| serde_json::json!([])));
            c.published.push(published.trunc_subsecs(0));
            c.updated.push(updated.trunc_subsecs(0));
            c.feed_updated
                .push(e.updated.filter(|u| *u <= now).map(|u| u.trunc_subsecs(0)));
            c.content_hash.push(&keyed.content_hash);
            c.canonical_link.push(keyed.canonical_link.as_deref());
            c.rank.push(ranks.get(keyed.key.as_str()).map(|r| *r as i64));
            c.full_text.push(full_text.0);
            c.full_text_error.push(full_text.1);
            c.full_text_tries.push(i64::from(full_text.2));
            let language = language_columns(&e.language);
            c.language.push(language.0);
            c.language_source.push(language.1);
        }
        // What the next parse may leave out: the items stored now, unless a tombstone keeps
        // one out (then the set is written again below).
        let mut segments = batch.unchanged_segments.clone();
        for keyed in &batch.entries {
            segments.add(keyed.segment);
        }
        let rhythm = batch
            .meta
            .rhythm
            .ttl
            .max(batch.meta.rhythm.update_interval)
            .map(|d| d.as_secs() as i64);
        let next_due = due_time(batch.scheduled.next_due);
        let due = next_due.map(due_payload);
        let meta = &batch.meta;
        let limit = i64::try_from(batch.new_feed_entries).unwrap_or(i64::MAX);
        let rows = self
            .query(
                "WITH fence AS (
                     SELECT last_success IS NULL AS first FROM feeds
                     WHERE id = $1 AND ($43::bigint IS NULL OR (lease_node = $44 AND lease_epoch = $43))
                     FOR UPDATE),
                 n AS (
                     SELECT * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                         $8::text[], $9::text[], $10::text[], $11::text[], $12::jsonb[], $13::timestamptz[],
                         $14::timestamptz[], $15::timestamptz[], $16::text[], $17::text[], $18::bigint[],
                         $19::text[], $20::text[], $21::bigint[], $46::text[], $47::text[])
                     AS n(key, guid, link, title, author_name, author_email, author_uri, summary, content,
                         categories, enclosures, published, updated, feed_updated, content_hash, canonical_link,
                         rank, full_text, full_text_error, full_text_tries, language, language_source)),
                 tombstoned AS (
                     UPDATE tombstones SET last_seen = $22 WHERE feed_id = $1 AND key IN (SELECT key FROM n)
                         AND EXISTS (SELECT 1 FROM fence)
                     RETURNING key),
                 kept AS (SELECT * FROM n WHERE key NOT IN (SELECT key FROM tombstoned)),
                 inserted AS (
                     INSERT INTO entries (feed_id, key, guid, link, title, author_name, author_email, author_uri,
                         summary, content, categories, enclosures, published, updated, first_seen, content_hash,
                         canonical_link, hidden, catalogue_rank, full_text, full_text_error, full_text_tries,
                         full_text_at, language, language_source, pushed)
                     SELECT $1, key, guid, link, title, author_name, author_email, author_uri, summary, content,
                         kept.categories::text[], enclosures, published, updated,
                         $23, content_hash, canonical_link,
                         COALESCE((SELECT first FROM fence) AND rank >= $45, false),
                         CASE WHEN (SELECT first FROM fence) THEN rank END,
                         full_text, full_text_error, full_text_tries,
                         CASE WHEN full_text IS NULL THEN NULL ELSE $22::timestamptz END,
                         language, language_source, CASE WHEN $48 THEN true END
                     FROM kept WHERE EXISTS (SELECT 1 FROM fence)
                     ON CONFLICT (feed_id, key) DO NOTHING
                     RETURNING hidden),
                 changed AS (
                     UPDATE entries AS e SET guid = n.guid, link = n.link, title = n.title,
                         author_name = n.author_name, author_email = n.author_email, author_uri = n.author_uri,
                         summary = n.summary, content = n.content,
                         categories = n.categories::text[],
                         enclosures = n.enclosures,
                         updated = GREATEST(e.updated,
                             CASE WHEN n.feed_updated > e.updated THEN n.feed_updated ELSE $23::timestamptz END),
                         content_hash = n.content_hash, canonical_link = n.canonical_link,
                         full_text = n.full_text, full_text_error = n.full_text_error,
                         full_text_tries = n.full_text_tries,
                         full_text_at = CASE WHEN n.full_text IS NULL THEN NULL ELSE $22::timestamptz END,
                         language = n.language, language_source = n.language_source
                     FROM kept AS n
                     WHERE e.feed_id = $1 AND e.key = n.key AND e.content_hash <> n.content_hash
                       AND EXISTS (SELECT 1 FROM fence)
                     RETURNING e.id),
                 recorded AS (
                     UPDATE feeds SET title = $24, site_url = $25, feed_id = $26, etag = $27, last_modified = $28,
                         body_hash = $29, last_fetch = $22, last_success = $22, last_error = NULL, failures = 0,
                         failing_since = NULL, retry_after = NULL, gone_at = NULL, gone_config = NULL,
                         fresh_until = $30, rhythm = $31, skip_hours = $32, skip_days = $33, segments = $34,
                         failure_kind = NULL, abandoned_at = NULL, next_due = $35, schedule_key = $36,
                         lease_until = NULL, repairs = $37, language = $38
                     WHERE id = $1 AND EXISTS (SELECT 1 FROM fence) RETURNING id),
                 counts AS (
                     SELECT (SELECT count(*) FROM inserted) AS new,
                            (SELECT count(*) FROM inserted WHERE hidden) AS held_back,
                            (SELECT count(*) FROM changed) AS updated,
                            (SELECT count(*) FROM recorded) AS recorded)
                 SELECT recorded, new, held_back, updated, ARRAY(SELECT key FROM tombstoned),
                     CASE WHEN recorded = 0 OR $39::text IS NULL THEN NULL ELSE pg_notify($40, $39) END::text,
                     CASE WHEN new + updated = 0 THEN NULL ELSE pg_notify($41, $42) END::text
                 FROM counts",
                &[
                    &feed_id,
                    &c.key,
                    &c.guid,
                    &c.link,
                    &c.title,
                    &c.author_name,
                    &c.author_email,
                    &c.author_uri,
                    &c.summary,
                    &c.content,
                    &c.categories,
                    &c.enclosures,
                    &c.published,
                    &c.updated,
                    &c.feed_updated,
                    &c.content_hash,
                    &c.canonical_link,
                    &c.rank,
                    &c.full_text,
                    &c.full_text_error,
                    &c.full_text_tries,
                    &now,
                    &now.trunc_subsecs(0),
                    &meta.title,
                    &meta.site_url,
                    &meta.id,
                    &batch.validators.etag,
                    &batch.validators.last_modified,
                    &batch.body_hash,
                    &batch.fresh_until,
                    &rhythm,
                    &i64::from(meta.rhythm.skip.hours),
                    &i64::from(meta.rhythm.skip.days),
                    &segments.to_stored(),
                    &next_due,
                    &batch.scheduled.key,
                    &crate::model::Repair::join(&meta.repairs),
                    &meta.language,
                    &due,
                    &channel::DUE,
                    &channel::CHANGES,
                    &self.node,
                    &batch.scheduled.lease,
                    &self.node,
                    &limit,
                    &c.language,
                    &c.language_source,
                    &batch.pushed,
                ],
            )
            .await?;
        let row = rows.first().ok_or(StoreError::Closed)?;
        let count = |i| usize::try_from(row.get::<_, i64>(i)).unwrap_or(0);
        if count(0) == 0 {
            return Err(match batch.scheduled.lease {
                Some(_) => StoreError::Fenced { feed_id },
                None => StoreError::Backend {
                    store: format!("PostgreSQL at {}", self.describe),
                    source: format!("feed {feed_id} is not in the store").into(),
                },
            });
        }
        let tombstoned: HashSet<String> = row.get::<_, Vec<String>>(4).into_iter().collect();
        if !tombstoned.is_empty() {
            let mut kept = batch.unchanged_segments.clone();
            for keyed in batch
                .entries
                .iter()
                .filter(|k| !tombstoned.contains(k.key.as_str()))
            {
                kept.add(keyed.segment);
            }
            self.execute(
                "UPDATE feeds SET segments = $2 WHERE id = $1",
                &[&feed_id, &kept.to_stored()],
            )
            .await?;
        }
        Ok(StoreOutcome {
            new: count(1),
            held_back: count(2),
            updated: count(3),
            excluded: 0,
        })
    }

    pub(super) async fn retries(
        &self,
        feed_id: i64,
        before: DateTime<Utc>,
    ) -> Result<Vec<(i64, String)>, StoreError> {
        let rows = self
            .query(
                "SELECT id, link FROM entries
                 WHERE feed_id = $1 AND full_text = 'failed' AND full_text_tries < 2 AND full_text_at < $2
                   AND link IS NOT NULL
                 ORDER BY id",
                &[&feed_id, &before],
            )
            .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    pub(super) async fn full_text(
        &self,
        tries: Vec<(i64, Result<String, String>)>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if tries.is_empty() {
            return Ok(());
        }
        let ids: Vec<i64> = tries.iter().map(|(id, _)| *id).collect();
        let articles: Vec<Option<&str>> = tries.iter().map(|(_, a)| a.as_deref().ok()).collect();
        let errors: Vec<Option<&str>> = tries
            .iter()
            .map(|(_, a)| a.as_ref().err().map(String::as_str))
            .collect();
        self.execute(
            "UPDATE entries AS e SET
                 summary = CASE WHEN t.article IS NULL THEN e.summary ELSE COALESCE(e.content, e.summary) END,
                 content = COALESCE(t.article, e.content),
                 full_text = CASE WHEN t.article IS NULL THEN e.full_text ELSE 'page' END,
                 full_text_error = t.error, full_text_tries = e.full_text_tries + 1, full_text_at = $4
             FROM unnest($1::bigint[], $2::text[], $3::text[]) AS t(id, article, error)
             WHERE e.id = t.id",
            &[&ids, &articles, &errors, &now],
        )
        .await?;
        Ok(())
    }

    pub(super) async fn entry_stats(&self) -> Result<HashMap<String, EntryStats>, StoreError> {
        let rows = self
            .query(
                "SELECT f.url, COUNT(e.id), MAX(e.first_seen) FROM feeds f LEFT JOIN entries e ON e.feed_id = f.id
                 GROUP BY f.id, f.url",
                &[],
            )
            .await?;
        rows.iter()
            .map(|r| {
                let stats = EntryStats {
                    count: usize::try_from(r.try_get::<_, i64>(1)?).unwrap_or(0),
                    newest: r.try_get(2)?,
                };
                Ok((r.try_get(0)?, stats))
            })
            .collect::<Result<_, tokio_postgres::Error>>()
            .map_err(|e| self.error(e))
    }

    /// One page of candidates, newest first: a walk of the date index for every feed or many
    /// (the feed tested on each row), each feed's newest merged by the server for a few.
    pub(super) async fn page(&self, query: CandidateQuery) -> Result<Vec<Candidate>, StoreError> {
        let needs = query.needs;
        let columns = format!(
            "id, feed_id, published, title, link, canonical_link, {}, {}, {}, language",
            if needs.author { "author_name" } else { "NULL::text" },
            if needs.categories {
                "categories"
            } else {
                "NULL::text[]"
            },
            if needs.bodies {
                "summary, content"
            } else {
                "NULL::text, NULL::text"
            },
        );
        // No cursor: one after every date an entry can have (dates are never in the future).
        let (after_published, after_id) = query.after.unwrap_or_else(|| {
            let end = chrono::NaiveDate::from_ymd_opt(9999, 12, 31).and_then(|d| d.and_hms_opt(0, 0, 0));
            (end.map_or(DateTime::<Utc>::MAX_UTC, |t| t.and_utc()), i64::MAX)
        });
        let limit = i64::try_from(query.limit).unwrap_or(i64::MAX);
        let rows = match &query.feeds {
            None => {
                self.query(
                    &format!(
                        "SELECT {columns} FROM entries
                         WHERE hidden = false AND (published, id) < ($1, $2)
                         ORDER BY published DESC, id DESC LIMIT $3"
                    ),
                    &[&after_published, &after_id, &limit],
                )
                .await?
            }
            Some(feeds) => {
                let ids: Vec<i64> = feeds.iter().copied().collect();
                let sql = if feeds.len() <= FEW_FEEDS {
                    format!(
                        "SELECT c.* FROM unnest($4::bigint[]) AS f(id) CROSS JOIN LATERAL (
                             SELECT {columns} FROM entries
                             WHERE feed_id = f.id AND hidden = false AND (published, id) < ($1, $2)
                             ORDER BY published DESC, id DESC LIMIT $3) AS c
                         ORDER BY c.published DESC, c.id DESC LIMIT $3"
                    )
                } else {
                    format!(
                        "SELECT {columns} FROM entries
                         WHERE hidden = false AND (published, id) < ($1, $2) AND feed_id = ANY($4)
                         ORDER BY published DESC, id DESC LIMIT $3"
                    )
                };
                self.query(&sql, &[&after_published, &after_id, &limit, &ids])
                    .await?
            }
        };
        rows.iter()
            .map(candidate_from_row)
            .collect::<Result<_, _>>()
            .map_err(|e| self.error(e))
    }

    async fn entry_rows(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<StoredEntry>, StoreError> {
        self.query(sql, params)
            .await?
            .iter()
            .map(entry_from_row)
            .collect::<Result<_, _>>()
            .map_err(|e| self.error(e))
    }

    pub(super) async fn by_ids(&self, ids: Vec<i64>) -> Result<Vec<StoredEntry>, StoreError> {
        self.entry_rows(
            &format!("SELECT {ENTRY_COLUMNS} FROM entries WHERE id = ANY($1)"),
            &[&ids],
        )
        .await
    }

    pub(super) async fn by_links(&self, links: Vec<String>) -> Result<Vec<StoredEntry>, StoreError> {
        self.entry_rows(
            &format!(
                "SELECT {ENTRY_COLUMNS} FROM entries WHERE canonical_link = ANY($1) AND hidden = false
                 ORDER BY first_seen, id"
            ),
            &[&links],
        )
        .await
    }

    pub(super) async fn matching(
        &self,
        what: String,
        canonical: String,
    ) -> Result<Vec<StoredEntry>, StoreError> {
        self.entry_rows(
            &format!(
                "SELECT {ENTRY_COLUMNS} FROM entries
                 WHERE link = $1 OR canonical_link = $2 OR guid = $1 OR key = $1
                    OR key IN ('guid:' || $1, 'link:' || $2)
                    OR lower(title) = lower($1)
                 ORDER BY id"
            ),
            &[&what, &canonical],
        )
        .await
    }

    pub(super) async fn keys(&self) -> Result<Vec<(i64, String, String)>, StoreError> {
        let rows = self
            .query(
                "SELECT e.id, COALESCE(f.id_url, f.url), e.key FROM entries e JOIN feeds f ON f.id = e.feed_id",
                &[],
            )
            .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect())
    }

    /// Ranked by the server: each feed's entries newest first, hidden or not.
    pub(super) async fn doomed(
        &self,
        keep_days: u32,
        keep_per_feed: usize,
        now: DateTime<Utc>,
    ) -> Result<Vec<i64>, StoreError> {
        if keep_days == 0 && keep_per_feed == 0 {
            return Ok(Vec::new());
        }
        let cutoff = (keep_days > 0).then(|| now - chrono::Duration::days(i64::from(keep_days)));
        let keep = (keep_per_feed > 0).then(|| i64::try_from(keep_per_feed).unwrap_or(i64::MAX));
        let rows = self
            .query(
                "SELECT id FROM (
                     SELECT id, published,
                         row_number() OVER (PARTITION BY feed_id ORDER BY published DESC, id DESC) AS rank
                     FROM entries) AS ranked
                 WHERE published < $1 OR rank > $2",
                &[&cutoff, &keep],
            )
            .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// Removes entries for good, leaving a tombstone per key (so a later poll that still sees
    /// them does not bring them back) and making their feeds' next parse read every item.
    pub(super) async fn retire(
        &self,
        ids: Vec<i64>,
        now: DateTime<Utc>,
    ) -> Result<(usize, Duration), StoreError> {
        let started = Instant::now();
        let rows = self
            .query(
                "WITH gone AS (DELETE FROM entries WHERE id = ANY($1) RETURNING feed_id, key),
                 kept AS (
                     INSERT INTO tombstones (feed_id, key, removed, last_seen)
                     SELECT feed_id, key, $2, $2 FROM gone ON CONFLICT DO NOTHING),
                 forgotten AS (
                     UPDATE feeds SET segments = NULL
                     WHERE id IN (SELECT feed_id FROM gone) AND segments IS NOT NULL)
                 SELECT count(*) FROM gone",
                &[&ids, &now],
            )
            .await?;
        let removed = rows.first().map_or(0, |r| r.get::<_, i64>(0));
        Ok((usize::try_from(removed).unwrap_or(0), started.elapsed()))
    }

    pub(super) async fn expire(
        &self,
        cutoff: DateTime<Utc>,
        limit: usize,
    ) -> Result<(usize, Duration), StoreError> {
        let started = Instant::now();
        let expired = self
            .execute(
                "DELETE FROM tombstones WHERE (feed_id, key) IN
                     (SELECT feed_id, key FROM tombstones WHERE last_seen < $1 LIMIT $2)",
                &[&cutoff, &i64::try_from(limit).unwrap_or(i64::MAX)],
            )
            .await?;
        Ok((expired, started.elapsed()))
    }

    pub(super) async fn record_renders(
        &self,
        outcomes: Vec<(String, Result<bool, String>)>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if outcomes.is_empty() {
            return Ok(());
        }
        let paths: Vec<&str> = outcomes.iter().map(|(p, _)| p.as_str()).collect();
        let errors: Vec<Option<&str>> = outcomes
            .iter()
            .map(|(_, r)| r.as_ref().err().map(String::as_str))
            .collect();
        let written: Vec<bool> = outcomes
            .iter()
            .map(|(_, r)| *r.as_ref().unwrap_or(&false))
            .collect();
        self.execute(
            "INSERT INTO outputs AS o (path, last_error, failing_since, failures, last_written)
             SELECT path, error, CASE WHEN error IS NULL THEN NULL ELSE $4::timestamptz END,
                 CASE WHEN error IS NULL THEN 0 ELSE 1 END, CASE WHEN written THEN $4::timestamptz END
             FROM unnest($1::text[], $2::text[], $3::boolean[]) AS r(path, error, written)
             ON CONFLICT (path) DO UPDATE SET
                 last_error = excluded.last_error,
                 failures = CASE WHEN excluded.last_error IS NULL THEN 0 ELSE o.failures + 1 END,
                 failing_since = CASE WHEN excluded.last_error IS NULL THEN NULL
                     ELSE COALESCE(o.failing_since, excluded.failing_since) END,
                 last_written = COALESCE(excluded.last_written, o.last_written)",
            &[&paths, &errors, &written, &now],
        )
        .await?;
        Ok(())
    }

    pub(super) async fn output_states(&self) -> Result<Vec<OutputState>, StoreError> {
        let rows = self
            .query(
                "SELECT path, last_error, failing_since, failures, last_written FROM outputs ORDER BY path",
                &[],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| OutputState {
                path: r.get(0),
                last_error: r.get(1),
                failing_since: r.get(2),
                failures: u32::try_from(r.get::<_, i64>(3)).unwrap_or(u32::MAX),
                last_written: r.get(4),
            })
            .collect())
    }
}
