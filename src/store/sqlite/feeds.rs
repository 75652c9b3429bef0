//! Feed rows: one per source URL, holding what the next poll needs (validators, body hash, due
//! time) and what operators need (last success, last error, consecutive failures). Times are
//! integers: seconds, or milliseconds where schedules compare them.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, Row, params};

use super::{Db, from_millis, from_unix, to_millis_ceil};
use crate::model::{FailureKind, FeedError, FeedState, Validators};
use crate::model::{Hints, Skip};
use crate::store::{Claimed, ERROR_HISTORY, FeedUpdate, MOVE_AFTER, Scheduled};

pub(super) const FEED_COLUMNS: &str = "id, url, title, site_url, feed_id, etag, last_modified, body_hash, \
                            last_fetch, last_success, last_error, failures, failing_since, retry_after, \
                            fresh_until, rhythm, skip_hours, skip_days, moved_to, gone_at, moved_count, \
                            failure_kind, next_due, schedule_key, abandoned_at, repairs, language, id_url, icon_due, \
                            push_until";

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
        id_url: row.get(27)?,
        icon_due: opt_time(28)?,
        pushed_until: opt_time(29)?,
        lease_epoch: None,
    })
}

/// An id list as a statement's parameter: JSON, read by `json_each`.
pub(super) fn id_list(ids: &[i64]) -> String {
    serde_json::to_string(ids).unwrap_or_else(|_| "[]".into())
}

impl Db {
    pub(super) fn ensure_feeds(
        &mut self,
        urls: &[String],
        now: DateTime<Utc>,
    ) -> rusqlite::Result<Vec<FeedState>> {
        let select = format!("SELECT {FEED_COLUMNS} FROM feeds WHERE url = ?1");
        self.savepoint(|db| {
            let mut states = Vec::with_capacity(urls.len());
            for url in urls {
                db.exec(
                    "INSERT INTO feeds (url, created) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                    params![url, now.timestamp()],
                )?;
                states.push(db.conn.prepare_cached(&select)?.query_row([url], feed_from_row)?);
            }
            Ok(states)
        })
    }

    pub(super) fn rekey_feeds(
        &mut self,
        renames: &[(String, String)],
        keep_ids: bool,
    ) -> rusqlite::Result<usize> {
        let mut renamed = 0;
        for (old, new) in renames {
            renamed += self.exec(
                "UPDATE feeds SET url = ?2,
                     id_url = CASE WHEN ?3 THEN COALESCE(id_url, url) ELSE id_url END
                 WHERE url = ?1 AND NOT EXISTS (SELECT 1 FROM feeds WHERE url = ?2)",
                params![old, new, keep_ids],
            )?;
        }
        Ok(renamed)
    }

    pub(super) fn feed_identities(&self) -> rusqlite::Result<Vec<(String, Option<String>)>> {
        self.conn
            .prepare_cached("SELECT url, moved_to FROM feeds")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect()
    }

    pub(super) fn forgive_gone(
        &mut self,
        urls: &[String],
        config_fingerprint: &str,
    ) -> rusqlite::Result<usize> {
        let urls_json = serde_json::to_string(urls).unwrap_or_else(|_| "[]".into());
        self.exec(
            "UPDATE feeds SET gone_at = NULL, gone_config = NULL
             WHERE gone_at IS NOT NULL AND gone_config IS NOT ?2
               AND url IN (SELECT value FROM json_each(?1))",
            params![urls_json, config_fingerprint],
        )
    }

    pub(super) fn feed_errors(&self, feed_id: i64) -> rusqlite::Result<Vec<FeedError>> {
        self.conn
            .prepare_cached("SELECT at, kind, message FROM feed_errors WHERE feed_id = ?1 ORDER BY id DESC")?
            .query_map([feed_id], |r| {
                Ok(FeedError {
                    at: from_unix(r.get(0)?),
                    kind: FailureKind::from_name(&r.get::<_, String>(1)?).unwrap_or(FailureKind::Internal),
                    message: r.get(2)?,
                })
            })?
            .collect()
    }

    pub(super) fn reset_feed(&mut self, feed_id: i64) -> rusqlite::Result<()> {
        self.savepoint(|db| {
            db.exec(
                "UPDATE feeds SET failures = 0, last_error = NULL, failing_since = NULL, failure_kind = NULL,
                     retry_after = NULL, gone_at = NULL, gone_config = NULL, abandoned_at = NULL,
                     next_due = 0, lease_until = NULL
                 WHERE id = ?1",
                [feed_id],
            )?;
            db.exec("DELETE FROM feed_errors WHERE feed_id = ?1", [feed_id])?;
            Ok(())
        })
    }

    /// Records a poll that stored no entries. No savepoint: one writer, inside the group's
    /// transaction; a savepoint per 304 cost a warm round of 1,000 feeds a sixth of its time.
    pub(super) fn record_poll(
        &mut self,
        feed_id: i64,
        update: &FeedUpdate,
        scheduled: &Scheduled,
        now: DateTime<Utc>,
    ) -> rusqlite::Result<()> {
        let next_due = scheduled.next_due.map(to_millis_ceil);
        match update {
            FeedUpdate::Unchanged {
                validators,
                fresh_until,
            } => {
                self.exec(
                    "UPDATE feeds SET last_fetch = ?2, last_success = ?3, last_error = NULL, failures = 0,
                         failing_since = NULL, retry_after = NULL, fresh_until = ?6, gone_at = NULL, gone_config = NULL,
                         etag = COALESCE(?4, etag), last_modified = COALESCE(?5, last_modified),
                         failure_kind = NULL, abandoned_at = NULL,
                         next_due = ?7, schedule_key = ?8, lease_until = NULL
                     WHERE id = ?1",
                    params![
                        feed_id,
                        now.timestamp_millis(),
                        now.timestamp(),
                        validators.as_ref().and_then(|v| v.etag.as_deref()),
                        validators.as_ref().and_then(|v| v.last_modified.as_deref()),
                        fresh_until.map(|t| t.timestamp()),
                        next_due,
                        scheduled.key,
                    ],
                )?;
            }
            FeedUpdate::Failed {
                error,
                kind,
                retry_after,
                gone,
                abandoned,
            } => {
                self.exec(
                    "UPDATE feeds SET last_fetch = ?2, last_error = ?4, failures = failures + 1,
                         failing_since = COALESCE(failing_since, ?3), retry_after = ?5,
                         gone_at = CASE WHEN ?6 IS NULL THEN gone_at ELSE ?3 END,
                         gone_config = COALESCE(?6, gone_config), failure_kind = ?7,
                         next_due = ?8, schedule_key = ?9, lease_until = NULL,
                         abandoned_at = CASE WHEN ?10 THEN COALESCE(abandoned_at, ?3) END
                     WHERE id = ?1",
                    params![
                        feed_id,
                        now.timestamp_millis(),
                        now.timestamp(),
                        error,
                        retry_after.map(|t| t.timestamp()),
                        gone,
                        kind.as_str(),
                        next_due,
                        scheduled.key,
                        abandoned,
                    ],
                )?;
                self.exec(
                    "INSERT INTO feed_errors (feed_id, at, kind, message) VALUES (?1, ?2, ?3, ?4)",
                    params![feed_id, now.timestamp(), kind.as_str(), error],
                )?;
                self.exec(
                    "DELETE FROM feed_errors WHERE feed_id = ?1 AND id <= (
                         SELECT id FROM feed_errors WHERE feed_id = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)",
                    params![feed_id, ERROR_HISTORY],
                )?;
            }
        }
        Ok(())
    }

    pub(super) fn schedule(&mut self, due: &[(i64, Scheduled)]) -> rusqlite::Result<()> {
        self.savepoint(|db| {
            for (id, scheduled) in due {
                db.exec(
                    "UPDATE feeds SET next_due = ?2, schedule_key = ?3, lease_until = NULL WHERE id = ?1",
                    params![id, scheduled.next_due.map(to_millis_ceil), scheduled.key],
                )?;
            }
            Ok(())
        })
    }

    pub(super) fn unschedule_others(&mut self, configured: &[i64]) -> rusqlite::Result<usize> {
        self.exec(
            "UPDATE feeds SET next_due = NULL, schedule_key = NULL, lease_until = NULL
             WHERE next_due IS NOT NULL AND id NOT IN (SELECT value FROM json_each(?1))",
            [id_list(configured)],
        )
    }

    /// One range of the due-time index: the cost is the number of due feeds, whatever the
    /// number of feeds. Claims are markers here (one daemon per database), released by a
    /// record or at the next start.
    pub(super) fn claim_due(
        &mut self,
        now: DateTime<Utc>,
        limit: usize,
        lease_until: DateTime<Utc>,
    ) -> rusqlite::Result<Claimed> {
        let now_ms = now.timestamp_millis();
        let limit_sql = i64::try_from(limit).unwrap_or(i64::MAX);
        let due = format!(
            "SELECT {FEED_COLUMNS} FROM feeds
             WHERE next_due <= ?1 AND (lease_until IS NULL OR lease_until <= ?1)
             ORDER BY next_due LIMIT ?2"
        );
        self.savepoint(|db| {
            let mut claimed = Claimed {
                feeds: db
                    .conn
                    .prepare_cached(&due)?
                    .query_map(params![now_ms, limit_sql.saturating_add(1)], feed_from_row)?
                    .collect::<rusqlite::Result<_>>()?,
                ..Claimed::default()
            };
            if claimed.feeds.len() > limit {
                claimed.feeds.truncate(limit);
                claimed.more = true;
            }
            for feed in &claimed.feeds {
                db.exec(
                    "UPDATE feeds SET lease_until = ?2 WHERE id = ?1",
                    params![feed.id, lease_until.timestamp_millis()],
                )?;
            }
            claimed.next = db
                .conn
                .prepare_cached("SELECT MIN(next_due) FROM feeds WHERE next_due > ?1")?
                .query_row([now_ms], |r| r.get::<_, Option<i64>>(0))?
                .map(from_millis);
            Ok(claimed)
        })
    }

    pub(super) fn claim_feeds(
        &mut self,
        ids: &[i64],
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        due_only: bool,
    ) -> rusqlite::Result<Vec<FeedState>> {
        let select = format!(
            "SELECT {FEED_COLUMNS} FROM feeds
             WHERE id = ?1 AND (lease_until IS NULL OR lease_until <= ?2) AND (NOT ?3 OR next_due <= ?2)"
        );
        let now_ms = now.timestamp_millis();
        self.savepoint(|db| {
            let mut claimed = Vec::with_capacity(ids.len());
            for id in ids {
                let Some(feed) = db
                    .conn
                    .prepare_cached(&select)?
                    .query_row(params![id, now_ms, due_only], feed_from_row)
                    .optional()?
                else {
                    continue;
                };
                db.exec(
                    "UPDATE feeds SET lease_until = ?2 WHERE id = ?1",
                    params![id, lease_until.timestamp_millis()],
                )?;
                claimed.push(feed);
            }
            Ok(claimed)
        })
    }

    pub(super) fn release_leases(&mut self, ids: Option<&[i64]>) -> rusqlite::Result<usize> {
        match ids {
            None => self.exec(
                "UPDATE feeds SET lease_until = NULL WHERE lease_until IS NOT NULL",
                [],
            ),
            Some(ids) => self.exec(
                "UPDATE feeds SET lease_until = NULL WHERE id IN (SELECT value FROM json_each(?1))",
                [id_list(ids)],
            ),
        }
    }

    pub(super) fn note_redirect(
        &mut self,
        feed_id: i64,
        target: Option<&str>,
    ) -> rusqlite::Result<Option<String>> {
        self.savepoint(|db| {
            let Some(target) = target else {
                db.exec(
                    "UPDATE feeds SET moved_candidate = NULL, moved_count = 0 WHERE id = ?1 AND moved_count > 0",
                    [feed_id],
                )?;
                return Ok(None);
            };
            let count: u32 = db
                .conn
                .prepare_cached(
                    "UPDATE feeds SET moved_count = CASE WHEN moved_candidate = ?2 THEN moved_count + 1 ELSE 1 END,
                         moved_candidate = ?2
                     WHERE id = ?1 RETURNING moved_count",
                )?
                .query_row(params![feed_id, target], |r| r.get(0))?;
            if count < MOVE_AFTER {
                return Ok(None);
            }
            db.exec(
                "UPDATE feeds SET moved_to = ?2, moved_candidate = NULL, moved_count = 0 WHERE id = ?1",
                params![feed_id, target],
            )?;
            Ok(Some(target.to_string()))
        })
    }

    pub(super) fn delay_host(
        &mut self,
        host: &str,
        until: DateTime<Utc>,
        reason: &str,
    ) -> rusqlite::Result<()> {
        self.exec(
            "INSERT INTO hosts (host, not_before, reason) VALUES (?1, ?2, ?3)
             ON CONFLICT (host) DO UPDATE SET not_before = MAX(excluded.not_before, hosts.not_before),
                 reason = excluded.reason",
            params![host, until.timestamp(), reason],
        )?;
        Ok(())
    }

    /// Delays that ran out stay as rows (one per host that ever asked to wait), ignored here
    /// and overwritten by the host's next delay.
    pub(super) fn host_delays(&self, now: DateTime<Utc>) -> rusqlite::Result<HashMap<String, DateTime<Utc>>> {
        self.conn
            .prepare_cached("SELECT host, not_before FROM hosts WHERE not_before > ?1")?
            .query_map([now.timestamp()], |r| {
                Ok((r.get::<_, String>(0)?, from_unix(r.get(1)?)))
            })?
            .collect()
    }

    pub(super) fn feeds_by_url(&self, urls: &[String]) -> rusqlite::Result<HashMap<String, FeedState>> {
        let mut feeds = HashMap::with_capacity(urls.len());
        if urls.len() <= 512 {
            let mut stmt = self
                .conn
                .prepare_cached(&format!("SELECT {FEED_COLUMNS} FROM feeds WHERE url = ?1"))?;
            for url in urls {
                if let Some(feed) = stmt.query_row([url], feed_from_row).optional()? {
                    feeds.insert(feed.url.clone(), feed);
                }
            }
            return Ok(feeds);
        }
        // One scan of the feeds table beats an IN-list of thousands of URLs.
        let wanted: std::collections::HashSet<&str> = urls.iter().map(String::as_str).collect();
        let mut stmt = self
            .conn
            .prepare_cached(&format!("SELECT {FEED_COLUMNS} FROM feeds"))?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let feed = feed_from_row(row)?;
            if wanted.contains(feed.url.as_str()) {
                feeds.insert(feed.url.clone(), feed);
            }
        }
        Ok(feeds)
    }

    pub(super) fn feeds_by_id(&self, ids: &[i64]) -> rusqlite::Result<HashMap<i64, FeedState>> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!("SELECT {FEED_COLUMNS} FROM feeds WHERE id = ?1"))?;
        let mut feeds = HashMap::with_capacity(ids.len());
        for id in ids {
            if let Some(feed) = stmt.query_row([id], feed_from_row).optional()? {
                feeds.insert(feed.id, feed);
            }
        }
        Ok(feeds)
    }

    /// Every feed's id and URL, from the URL index alone (not the wide rows).
    pub(super) fn feed_ids(&self) -> rusqlite::Result<Vec<(i64, String)>> {
        self.conn
            .prepare_cached("SELECT id, url FROM feeds")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect()
    }
}
