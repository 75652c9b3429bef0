//! Feed rows: one per source URL, holding what the next poll needs (validators, body hash) and
//! what operators need (last success, last error, consecutive failures).

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, Row, params};

use super::{Store, StoreError, from_millis, from_unix, to_millis, to_millis_ceil, to_unix};
use crate::model::{FailureKind, FeedState, Validators};
use crate::schedule::{Hints, Skip};

/// What happened to a feed in a poll that did not store entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedUpdate {
    /// 304, or a body identical to the last one parsed. New validators replace old ones when
    /// the server sent some; `fresh_until` is the new caching hint.
    Unchanged {
        validators: Option<Validators>,
        fresh_until: Option<DateTime<Utc>>,
    },
    Failed {
        error: String,
        kind: FailureKind,
        /// From a Retry-After header.
        retry_after: Option<DateTime<Utc>>,
        /// The server said 410 Gone: stop polling until the config (whose fingerprint this
        /// is) changes.
        gone: Option<String>,
        /// The feed has failed for `poll.give_up_after`.
        abandoned: bool,
    },
}

/// When a feed is due next, as the schedule computed it, and the policy it was computed under.
/// Written by the same statement that records a poll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scheduled {
    /// `None`: not scheduled (gone).
    pub next_due: Option<DateTime<Utc>>,
    pub key: String,
}

/// The due feeds a wake-up claimed, and when the next one not claimed is due.
#[derive(Debug, Clone, Default)]
pub struct Claimed {
    pub feeds: Vec<FeedState>,
    /// More feeds are due than the claim's limit: claim again once these are under way.
    pub more: bool,
    /// The earliest due time after `now`, if any feed has one.
    pub next: Option<DateTime<Utc>>,
}

/// Failures kept per feed for its error history.
pub(crate) const ERROR_HISTORY: i64 = 20;

/// How many consecutive polls must see the same permanent redirect before the feed moves:
/// one 301 can be a mistake, three in a row are a decision.
pub(crate) const MOVE_AFTER: u32 = 3;

pub(super) const FEED_COLUMNS: &str = "id, url, title, site_url, feed_id, etag, last_modified, body_hash, \
                            last_fetch, last_success, last_error, failures, failing_since, retry_after, \
                            fresh_until, rhythm, skip_hours, skip_days, moved_to, gone_at, moved_count, \
                            failure_kind, next_due, schedule_key, abandoned_at, repairs, language";

pub(super) fn feed_from_row(row: &Row<'_>) -> rusqlite::Result<FeedState> {
    let opt_time =
        |i| -> rusqlite::Result<Option<DateTime<Utc>>> { Ok(row.get::<_, Option<i64>>(i)?.map(from_unix)) };
    let opt_millis =
        |i| -> rusqlite::Result<Option<DateTime<Utc>>> { Ok(row.get::<_, Option<i64>>(i)?.map(from_millis)) };
    Ok(FeedState {
        id: row.get(0)?,
        url: row.get(1)?,
        title: row.get(2)?,
        site_url: row.get(3)?,
        feed_id: row.get(4)?,
        validators: Validators {
            etag: row.get(5)?,
            last_modified: row.get(6)?,
        },
        body_hash: row.get(7)?,
        last_fetch: opt_millis(8)?,
        last_success: opt_time(9)?,
        last_error: row.get(10)?,
        consecutive_failures: row.get(11)?,
        failing_since: opt_time(12)?,
        hints: Hints {
            retry_after: opt_time(13)?,
            fresh_until: opt_time(14)?,
            skip: Skip {
                hours: row.get(16)?,
                days: row.get(17)?,
            },
        },
        rhythm: row
            .get::<_, Option<i64>>(15)?
            .map(|s| Duration::from_secs(s.max(0) as u64)),
        moved_to: row.get(18)?,
        gone_at: opt_time(19)?,
        moved_count: row.get(20)?,
        failure_kind: row
            .get::<_, Option<String>>(21)?
            .and_then(|k| FailureKind::from_name(&k)),
        next_due: opt_millis(22)?,
        schedule_key: row.get(23)?,
        abandoned_at: opt_time(24)?,
        repairs: crate::model::Repair::split(row.get::<_, Option<String>>(25)?.as_deref()),
        language: row.get(26)?,
    })
}

impl Store {
    /// The state of each feed in `urls`, creating rows for feeds seen for the first time.
    /// Returned in the order of `urls`.
    pub fn ensure_feeds(
        &mut self,
        urls: &[String],
        now: DateTime<Utc>,
    ) -> Result<Vec<FeedState>, StoreError> {
        // A savepoint, not a transaction: inside the store thread's group commit it nests.
        let tx = self.conn.savepoint()?;
        let mut states = Vec::with_capacity(urls.len());
        {
            let mut insert =
                tx.prepare_cached("INSERT OR IGNORE INTO feeds (url, created) VALUES (?1, ?2)")?;
            let mut select =
                tx.prepare_cached(&format!("SELECT {FEED_COLUMNS} FROM feeds WHERE url = ?1"))?;
            for url in urls {
                insert.execute(params![url, to_unix(now)])?;
                states.push(select.query_row([url], feed_from_row)?);
            }
        }
        tx.commit()?;
        Ok(states)
    }

    /// Renames feeds stored under an old identity (`old` → `new`) when the new one is not taken:
    /// databases from before identities left credentials out stored feed URLs whole.
    pub(crate) fn rekey_feeds(&mut self, renames: &[(String, String)]) -> Result<usize, StoreError> {
        let mut renamed = 0;
        let mut stmt = self.conn.prepare_cached(
            "UPDATE feeds SET url = ?2 WHERE url = ?1 AND NOT EXISTS (SELECT 1 FROM feeds WHERE url = ?2)",
        )?;
        for (old, new) in renames {
            renamed += stmt.execute(params![old, new])?;
        }
        Ok(renamed)
    }

    /// One feed by its row id.
    pub(crate) fn feed_by_id(&self, id: i64) -> Result<Option<FeedState>, StoreError> {
        Ok(self
            .conn
            .prepare_cached(&format!("SELECT {FEED_COLUMNS} FROM feeds WHERE id = ?1"))?
            .query_row([id], feed_from_row)
            .optional()?)
    }

    /// The row ids of the feeds whose URLs are the keys of `urls` that the store knows:
    /// looked up one by one for a few, from one walk of the URL index (not the wide rows) for
    /// many.
    pub(crate) fn feed_ids<K, V, S>(&self, urls: &HashMap<K, V, S>) -> Result<Vec<i64>, StoreError>
    where
        K: std::borrow::Borrow<str> + std::hash::Hash + Eq,
        S: std::hash::BuildHasher,
    {
        let mut ids = Vec::with_capacity(urls.len());
        if urls.len() <= 512 {
            let mut stmt = self.conn.prepare_cached("SELECT id FROM feeds WHERE url = ?1")?;
            for url in urls.keys() {
                if let Some(id) = stmt.query_row([url.borrow()], |r| r.get(0)).optional()? {
                    ids.push(id);
                }
            }
            return Ok(ids);
        }
        let mut stmt = self.conn.prepare_cached("SELECT id, url FROM feeds")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            if urls.contains_key(row.get_ref(1)?.as_str().map_err(rusqlite::Error::from)?) {
                ids.push(row.get(0)?);
            }
        }
        Ok(ids)
    }

    /// Records a poll of `feed_id` that stored no entries, with when it is due next.
    pub(crate) fn record_feed(
        &mut self,
        feed_id: i64,
        update: &FeedUpdate,
        scheduled: &Scheduled,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let next_due = scheduled.next_due.map(to_millis_ceil);
        match update {
            FeedUpdate::Unchanged {
                validators,
                fresh_until,
            } => {
                self.conn
                    .prepare_cached(
                        "UPDATE feeds SET last_fetch = ?2, last_success = ?3, last_error = NULL, failures = 0,
                             failing_since = NULL, retry_after = NULL, fresh_until = ?6, gone_at = NULL, gone_config = NULL,
                             etag = COALESCE(?4, etag), last_modified = COALESCE(?5, last_modified),
                             failure_kind = NULL, abandoned_at = NULL,
                             next_due = ?7, schedule_key = ?8, lease_until = NULL
                         WHERE id = ?1",
                    )?
                    .execute(params![
                        feed_id,
                        to_millis(now),
                        to_unix(now),
                        validators.as_ref().and_then(|v| v.etag.as_deref()),
                        validators.as_ref().and_then(|v| v.last_modified.as_deref()),
                        fresh_until.map(to_unix),
                        next_due,
                        scheduled.key,
                    ])?;
            }
            FeedUpdate::Failed {
                error,
                kind,
                retry_after,
                gone,
                abandoned,
            } => {
                self.conn
                    .prepare_cached(
                        "UPDATE feeds SET last_fetch = ?2, last_error = ?4, failures = failures + 1,
                             failing_since = COALESCE(failing_since, ?3), retry_after = ?5,
                             gone_at = CASE WHEN ?6 IS NULL THEN gone_at ELSE ?3 END,
                             gone_config = COALESCE(?6, gone_config), failure_kind = ?7,
                             next_due = ?8, schedule_key = ?9, lease_until = NULL,
                             abandoned_at = CASE WHEN ?10 THEN COALESCE(abandoned_at, ?3) END
                         WHERE id = ?1",
                    )?
                    .execute(params![
                        feed_id,
                        to_millis(now),
                        to_unix(now),
                        error,
                        retry_after.map(to_unix),
                        gone,
                        kind.as_str(),
                        next_due,
                        scheduled.key,
                        abandoned,
                    ])?;
                self.conn
                    .prepare_cached(
                        "INSERT INTO feed_errors (feed_id, at, kind, message) VALUES (?1, ?2, ?3, ?4)",
                    )?
                    .execute(params![feed_id, to_unix(now), kind.as_str(), error])?;
                self.conn
                    .prepare_cached(
                        "DELETE FROM feed_errors WHERE feed_id = ?1 AND id <= (
                             SELECT id FROM feed_errors WHERE feed_id = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)",
                    )?
                    .execute(params![feed_id, ERROR_HISTORY])?;
            }
        }
        Ok(())
    }

    /// A feed's recent failures, newest first.
    pub(crate) fn feed_errors(&self, feed_id: i64) -> Result<Vec<crate::model::FeedError>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT at, kind, message FROM feed_errors WHERE feed_id = ?1 ORDER BY id DESC",
        )?;
        let rows = stmt.query_map([feed_id], |r| {
            Ok(crate::model::FeedError {
                at: from_unix(r.get(0)?),
                kind: FailureKind::from_name(&r.get::<_, String>(1)?).unwrap_or(FailureKind::Internal),
                message: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Forgets a feed's failures (`feeds --reset`): no backoff, no gone, no history; due at once.
    pub(crate) fn reset_feed(&mut self, feed_id: i64) -> Result<(), StoreError> {
        let tx = self.conn.savepoint()?;
        tx.execute(
            "UPDATE feeds SET failures = 0, last_error = NULL, failing_since = NULL, failure_kind = NULL,
                 retry_after = NULL, gone_at = NULL, gone_config = NULL, abandoned_at = NULL,
                 next_due = 0, lease_until = NULL
             WHERE id = ?1",
            [feed_id],
        )?;
        tx.execute("DELETE FROM feed_errors WHERE feed_id = ?1", [feed_id])?;
        tx.commit()?;
        Ok(())
    }

    /// Sets when feeds are due (after the policy they were computed under changed, or when a
    /// poll skipped them), releasing any lease on them.
    pub fn schedule(&mut self, due: &[(i64, Scheduled)]) -> Result<(), StoreError> {
        let tx = self.conn.savepoint()?;
        {
            let mut update = tx.prepare_cached(
                "UPDATE feeds SET next_due = ?2, schedule_key = ?3, lease_until = NULL WHERE id = ?1",
            )?;
            for (id, scheduled) in due {
                update.execute(params![id, scheduled.next_due.map(to_millis_ceil), scheduled.key])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Takes every feed but `configured` off the schedule (removed from the config): their
    /// rows and entries stay, but no wake-up sees them.
    pub(crate) fn unschedule_others(&mut self, configured: &[i64]) -> Result<usize, StoreError> {
        let ids = serde_json::to_string(configured).unwrap_or_else(|_| "[]".into());
        Ok(self.conn.execute(
            "UPDATE feeds SET next_due = NULL, schedule_key = NULL, lease_until = NULL
             WHERE next_due IS NOT NULL AND id NOT IN (SELECT value FROM json_each(?1))",
            [ids],
        )?)
    }

    /// Claims up to `limit` feeds due at `now` that nobody holds, oldest due first, until
    /// `lease_until`; and finds when the next unclaimed feed is due. One range of the due-time
    /// index: the cost is the number of due feeds, whatever the number of feeds.
    pub fn claim_due(
        &mut self,
        now: DateTime<Utc>,
        limit: usize,
        lease_until: DateTime<Utc>,
    ) -> Result<Claimed, StoreError> {
        let now_ms = to_millis(now);
        let tx = self.conn.savepoint()?;
        let mut claimed = Claimed::default();
        {
            let mut due = tx.prepare_cached(&format!(
                "SELECT {FEED_COLUMNS} FROM feeds
                 WHERE next_due <= ?1 AND (lease_until IS NULL OR lease_until <= ?1)
                 ORDER BY next_due LIMIT ?2"
            ))?;
            let limit_plus_one = i64::try_from(limit).unwrap_or(i64::MAX).saturating_add(1);
            claimed.feeds = due
                .query_map(params![now_ms, limit_plus_one], feed_from_row)?
                .collect::<Result<_, _>>()?;
            if claimed.feeds.len() > limit {
                claimed.feeds.truncate(limit);
                claimed.more = true;
            }
            let mut lease = tx.prepare_cached("UPDATE feeds SET lease_until = ?2 WHERE id = ?1")?;
            for feed in &claimed.feeds {
                lease.execute(params![feed.id, to_millis(lease_until)])?;
            }
            claimed.next = tx
                .prepare_cached("SELECT MIN(next_due) FROM feeds WHERE next_due > ?1")?
                .query_row([now_ms], |r| r.get::<_, Option<i64>>(0))?
                .map(from_millis);
        }
        tx.commit()?;
        Ok(claimed)
    }

    /// Gives up the leases on `ids` (claimed, then not polled: the daemon is stopping, or the
    /// feed left the config), or on every feed when `ids` is `None` (a daemon starting: it is
    /// the only one, so every lease it finds is left over from a crash).
    pub fn release_leases(&mut self, ids: Option<&[i64]>) -> Result<usize, StoreError> {
        Ok(match ids {
            None => self.conn.execute(
                "UPDATE feeds SET lease_until = NULL WHERE lease_until IS NOT NULL",
                [],
            )?,
            Some(ids) => {
                let ids = serde_json::to_string(ids).unwrap_or_else(|_| "[]".into());
                self.conn.execute(
                    "UPDATE feeds SET lease_until = NULL WHERE id IN (SELECT value FROM json_each(?1))",
                    [ids],
                )?
            }
        })
    }

    /// Notes where this poll's permanent redirects led (`None`: no permanent redirect). After
    /// `MOVE_AFTER` consecutive polls to the same place the feed moves there; returns the new
    /// location when that happened now.
    pub(crate) fn note_redirect(
        &mut self,
        feed_id: i64,
        target: Option<&str>,
    ) -> Result<Option<String>, StoreError> {
        let tx = self.conn.savepoint()?;
        let moved = match target {
            None => {
                tx.execute(
                    "UPDATE feeds SET moved_candidate = NULL, moved_count = 0 WHERE id = ?1 AND moved_count > 0",
                    [feed_id],
                )?;
                None
            }
            Some(target) => {
                let count: u32 = tx.query_row(
                    "UPDATE feeds SET moved_count = CASE WHEN moved_candidate = ?2 THEN moved_count + 1 ELSE 1 END,
                         moved_candidate = ?2
                     WHERE id = ?1 RETURNING moved_count",
                    params![feed_id, target],
                    |r| r.get(0),
                )?;
                if count >= MOVE_AFTER {
                    tx.execute(
                        "UPDATE feeds SET moved_to = ?2, moved_candidate = NULL, moved_count = 0 WHERE id = ?1",
                        params![feed_id, target],
                    )?;
                    Some(target.to_string())
                } else {
                    None
                }
            }
        };
        tx.commit()?;
        Ok(moved)
    }

    /// Feeds found gone under another version of the config are given another chance.
    pub(crate) fn forgive_gone(
        &mut self,
        urls: &[String],
        config_fingerprint: &str,
    ) -> Result<usize, StoreError> {
        let urls_json = serde_json::to_string(urls).unwrap_or_else(|_| "[]".into());
        Ok(self.conn.execute(
            "UPDATE feeds SET gone_at = NULL, gone_config = NULL
             WHERE gone_at IS NOT NULL AND gone_config IS NOT ?2
               AND url IN (SELECT value FROM json_each(?1))",
            params![urls_json, config_fingerprint],
        )?)
    }

    /// Delays every feed on `host` until `until` (after a 429 or 403 from it).
    pub(crate) fn delay_host(
        &mut self,
        host: &str,
        until: DateTime<Utc>,
        reason: &str,
    ) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT INTO hosts (host, not_before, reason) VALUES (?1, ?2, ?3)
                 ON CONFLICT (host) DO UPDATE SET not_before = MAX(not_before, excluded.not_before),
                     reason = excluded.reason",
            )?
            .execute(params![host, to_unix(until), reason])?;
        Ok(())
    }

    /// Hosts that may not be asked before a time later than `now`.
    pub(crate) fn host_delays(
        &mut self,
        now: DateTime<Utc>,
    ) -> Result<HashMap<String, DateTime<Utc>>, StoreError> {
        self.conn
            .prepare_cached("DELETE FROM hosts WHERE not_before <= ?1")?
            .execute([to_unix(now)])?;
        let mut stmt = self.conn.prepare_cached("SELECT host, not_before FROM hosts")?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, from_unix(r.get(1)?))))?
            .collect::<Result<HashMap<_, _>, _>>()?;
        Ok(rows)
    }
}
