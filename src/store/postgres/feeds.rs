//! Feed rows on PostgreSQL: claims with `SKIP LOCKED` and a new epoch each, records fenced by
//! that epoch in the statement that writes them, due times and host waits announced with
//! `NOTIFY` as they commit.

use std::collections::HashMap;
use std::sync::LazyLock;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::{PgStore, channel, due_time};
use crate::model::{ClusterNode, FailureKind, FeedError, FeedState, Validators};
use crate::model::{Hints, Skip};
use crate::store::{Claimed, ERROR_HISTORY, FeedUpdate, MOVE_AFTER, Scheduled, StoreError};

pub(super) const FEED_COLUMNS: &str = "id, url, title, site_url, feed_id, etag, last_modified, body_hash, \
                            last_fetch, last_success, last_error, failures, failing_since, retry_after, \
                            fresh_until, rhythm, skip_hours, skip_days, moved_to, gone_at, moved_count, \
                            failure_kind, next_due, schedule_key, abandoned_at, repairs, language, id_url, icon_due, \
                            push_until";

/// The columns of [`FEED_COLUMNS`] qualified by `f.`, then the claim's epoch.
static CLAIMED_COLUMNS: LazyLock<String> = LazyLock::new(|| {
    let columns: Vec<String> = FEED_COLUMNS
        .split(',')
        .map(|c| format!("f.{}", c.trim()))
        .collect();
    format!("{}, f.lease_epoch", columns.join(", "))
});

/// Where a claim's epoch comes in its rows.
const EPOCH_COLUMN: usize = 30;

/// A due time as announced: milliseconds, rounded up (a wake-up then is never early).
pub(super) fn due_payload(due: DateTime<Utc>) -> String {
    let ms = due.timestamp_millis();
    let ceil = if due.timestamp_subsec_nanos().is_multiple_of(1_000_000) {
        ms
    } else {
        ms + 1
    };
    ceil.to_string()
}

fn int<T: TryFrom<i64> + Default>(row: &Row, i: usize) -> Result<T, tokio_postgres::Error> {
    Ok(T::try_from(row.try_get::<_, i64>(i)?).unwrap_or_default())
}

pub(super) fn feed_from_row(row: &Row) -> Result<FeedState, tokio_postgres::Error> {
    Ok(FeedState {
        id: row.try_get(0)?,
        url: row.try_get(1)?,
        title: row.try_get(2)?,
        site_url: row.try_get(3)?,
        feed_id: row.try_get(4)?,
        validators: Validators {
            etag: row.try_get(5)?,
            last_modified: row.try_get(6)?,
        },
        body_hash: row.try_get(7)?,
        last_fetch: row.try_get(8)?,
        last_success: row.try_get(9)?,
        last_error: row.try_get(10)?,
        consecutive_failures: int(row, 11)?,
        failing_since: row.try_get(12)?,
        hints: Hints {
            retry_after: row.try_get(13)?,
            fresh_until: row.try_get(14)?,
            skip: Skip {
                hours: int(row, 16)?,
                days: int(row, 17)?,
            },
        },
        rhythm: row
            .try_get::<_, Option<i64>>(15)?
            .map(|s| Duration::from_secs(s.max(0) as u64)),
        moved_to: row.try_get(18)?,
        gone_at: row.try_get(19)?,
        moved_count: int(row, 20)?,
        failure_kind: row
            .try_get::<_, Option<String>>(21)?
            .and_then(|k| FailureKind::from_name(&k)),
        next_due: row.try_get(22)?,
        schedule_key: row.try_get(23)?,
        abandoned_at: row.try_get(24)?,
        repairs: crate::model::Repair::split(row.try_get::<_, Option<&str>>(25)?),
        language: row.try_get(26)?,
        id_url: row.try_get(27)?,
        icon_due: row.try_get(28)?,
        pushed_until: row.try_get(29)?,
        lease_epoch: None,
    })
}

fn claimed_from_row(row: &Row) -> Result<FeedState, tokio_postgres::Error> {
    let mut feed = feed_from_row(row)?;
    feed.lease_epoch = Some(row.try_get(EPOCH_COLUMN)?);
    Ok(feed)
}

impl PgStore {
    /// Runs one statement on a pooled connection, prepared once per connection.
    pub(super) async fn query(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(sql).await.map_err(|e| self.error(e))?;
        client.query(&statement, params).await.map_err(|e| self.error(e))
    }

    /// Runs one statement; the rows it changed.
    pub(super) async fn execute(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<usize, StoreError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(sql).await.map_err(|e| self.error(e))?;
        let changed = client
            .execute(&statement, params)
            .await
            .map_err(|e| self.error(e))?;
        Ok(usize::try_from(changed).unwrap_or(usize::MAX))
    }

    pub(super) async fn ensure(
        &self,
        urls: Vec<String>,
        now: DateTime<Utc>,
    ) -> Result<Vec<FeedState>, StoreError> {
        self.execute(
            "INSERT INTO feeds (url, created) SELECT u, $2 FROM unnest($1::text[]) AS u ON CONFLICT (url) DO NOTHING",
            &[&urls, &now],
        )
        .await?;
        let rows = self
            .query(
                &format!("SELECT {FEED_COLUMNS} FROM feeds WHERE url = ANY($1)"),
                &[&urls],
            )
            .await?;
        let mut by_url: HashMap<String, FeedState> = HashMap::with_capacity(rows.len());
        for row in &rows {
            let feed = feed_from_row(row).map_err(|e| self.error(e))?;
            by_url.insert(feed.url.clone(), feed);
        }
        urls.iter()
            .map(|u| {
                by_url.get(u).cloned().ok_or_else(|| StoreError::Backend {
                    store: format!("PostgreSQL at {}", self.describe),
                    source: format!("the feed {u} was inserted and is not there").into(),
                })
            })
            .collect()
    }

    pub(super) async fn rekey(
        &self,
        renames: Vec<(String, String)>,
        keep_ids: bool,
    ) -> Result<usize, StoreError> {
        if renames.is_empty() {
            return Ok(0);
        }
        let (old, new): (Vec<String>, Vec<String>) = renames.into_iter().unzip();
        self.execute(
            "UPDATE feeds AS f SET url = r.new,
                 id_url = CASE WHEN $3 THEN COALESCE(f.id_url, f.url) ELSE f.id_url END
             FROM unnest($1::text[], $2::text[]) AS r(old, new)
             WHERE f.url = r.old AND NOT EXISTS (SELECT 1 FROM feeds WHERE url = r.new)",
            &[&old, &new, &keep_ids],
        )
        .await
    }

    pub(super) async fn identities(&self) -> Result<Vec<(String, Option<String>)>, StoreError> {
        let rows = self.query("SELECT url, moved_to FROM feeds", &[]).await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect::<Result<_, tokio_postgres::Error>>()
            .map_err(|e| self.error(e))
    }

    pub(super) async fn forgive(
        &self,
        urls: Vec<String>,
        config_fingerprint: String,
    ) -> Result<usize, StoreError> {
        self.execute(
            "UPDATE feeds SET gone_at = NULL, gone_config = NULL
             WHERE gone_at IS NOT NULL AND gone_config IS DISTINCT FROM $2 AND url = ANY($1)",
            &[&urls, &config_fingerprint],
        )
        .await
    }

    /// One statement for every feed: those claimed by this node under their epoch, and those
    /// scheduled without a claim whose due time was computed under another policy (another
    /// node starting with the same config may have done so already) and that no other node
    /// holds. The earliest due time set is announced.
    pub(super) async fn set_due(&self, due: Vec<(i64, Scheduled)>) -> Result<(), StoreError> {
        if due.is_empty() {
            return Ok(());
        }
        let mut ids = Vec::with_capacity(due.len());
        let mut dues: Vec<Option<DateTime<Utc>>> = Vec::with_capacity(due.len());
        let mut keys = Vec::with_capacity(due.len());
        let mut leases: Vec<Option<i64>> = Vec::with_capacity(due.len());
        for (id, scheduled) in due {
            ids.push(id);
            dues.push(due_time(scheduled.next_due));
            keys.push(scheduled.key);
            leases.push(scheduled.lease);
        }
        self.query(
            "WITH d AS (SELECT * FROM unnest($1::bigint[], $2::timestamptz[], $3::text[], $4::bigint[])
                        AS d(id, next_due, key, lease)),
             moved AS (
                 UPDATE feeds AS f SET next_due = d.next_due, schedule_key = d.key, lease_until = NULL
                 FROM d
                 WHERE f.id = d.id AND (
                     (d.lease IS NOT NULL AND f.lease_node = $5 AND f.lease_epoch = d.lease)
                     OR (d.lease IS NULL AND f.schedule_key IS DISTINCT FROM d.key
                         AND (f.lease_until IS NULL OR f.lease_node = $5)))
                 RETURNING f.next_due)
             SELECT pg_notify($6, (EXTRACT(EPOCH FROM MIN(next_due)) * 1000)::bigint::text)
             FROM moved HAVING MIN(next_due) IS NOT NULL",
            &[&ids, &dues, &keys, &leases, &self.node, &channel::DUE],
        )
        .await?;
        Ok(())
    }

    pub(super) async fn unschedule(&self, configured: Vec<i64>) -> Result<usize, StoreError> {
        self.execute(
            "UPDATE feeds SET next_due = NULL, schedule_key = NULL, lease_until = NULL
             WHERE next_due IS NOT NULL AND NOT (id = ANY($1))",
            &[&configured],
        )
        .await
    }

    /// One statement claims: the due rows other nodes are not claiming this moment (`SKIP
    /// LOCKED`), stamped with this node and a new epoch, and returned. Then when to look
    /// again: the next due time, or sooner when another node's claim on a due feed runs out
    /// first (that node may have died).
    pub(super) async fn claim(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        lease_until: DateTime<Utc>,
    ) -> Result<Claimed, StoreError> {
        let limit_sql = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self
            .query(
                &format!(
                    "WITH due AS (
                         SELECT id FROM feeds
                         WHERE next_due <= $1 AND (lease_until IS NULL OR lease_until <= $1)
                         ORDER BY next_due LIMIT $2 FOR UPDATE SKIP LOCKED)
                     UPDATE feeds AS f SET lease_until = $3, lease_node = $4, lease_epoch = f.lease_epoch + 1
                     FROM due WHERE f.id = due.id
                     RETURNING {}",
                    *CLAIMED_COLUMNS
                ),
                &[&now, &limit_sql, &lease_until, &self.node],
            )
            .await?;
        let mut feeds = rows
            .iter()
            .map(claimed_from_row)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.error(e))?;
        // RETURNING keeps no order: oldest due first.
        feeds.sort_by_key(|f| f.next_due);
        let next = self
            .query(
                "SELECT (SELECT MIN(next_due) FROM feeds WHERE next_due > $1),
                        (SELECT MIN(lease_until) FROM feeds WHERE next_due <= $1 AND lease_until > $1)",
                &[&now],
            )
            .await?;
        let (due, held): (Option<DateTime<Utc>>, Option<DateTime<Utc>>) = match next.first() {
            Some(row) => (row.get(0), row.get(1)),
            None => (None, None),
        };
        Ok(Claimed {
            more: feeds.len() == limit,
            next: match (due, held) {
                (Some(d), Some(h)) => Some(d.min(h)),
                (d, h) => d.or(h),
            },
            feeds,
        })
    }

    pub(super) async fn claim_these(
        &self,
        ids: Vec<i64>,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        due_only: bool,
    ) -> Result<Vec<FeedState>, StoreError> {
        let rows = self
            .query(
                &format!(
                    "WITH these AS (
                         SELECT id FROM feeds
                         WHERE id = ANY($1) AND (lease_until IS NULL OR lease_until <= $2)
                           AND (NOT $5 OR next_due <= $2)
                         FOR UPDATE SKIP LOCKED)
                     UPDATE feeds AS f SET lease_until = $3, lease_node = $4, lease_epoch = f.lease_epoch + 1
                     FROM these WHERE f.id = these.id
                     RETURNING {}",
                    *CLAIMED_COLUMNS
                ),
                &[&ids, &now, &lease_until, &self.node, &due_only],
            )
            .await?;
        rows.iter()
            .map(claimed_from_row)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.error(e))
    }

    /// Renews this node's claims on `ids` (a claim that a record ended stays ended), and
    /// returns those another node holds now.
    pub(super) async fn renew(&self, ids: Vec<i64>, until: DateTime<Utc>) -> Result<Vec<i64>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows = self
            .query(
                "WITH renewed AS (
                     UPDATE feeds SET lease_until = $1
                     WHERE lease_node = $2 AND lease_until IS NOT NULL AND id = ANY($3))
                 SELECT id FROM feeds WHERE id = ANY($3) AND lease_node IS DISTINCT FROM $2",
                &[&until, &self.node, &ids],
            )
            .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    pub(super) async fn release(&self, ids: Option<Vec<i64>>) -> Result<usize, StoreError> {
        self.execute(
            "UPDATE feeds SET lease_until = NULL
             WHERE lease_until IS NOT NULL AND lease_node = $1 AND ($2::bigint[] IS NULL OR id = ANY($2))",
            &[&self.node, &ids],
        )
        .await
    }

    /// One statement: the feed's row, only under the claim the poll was made under (else
    /// fenced), its error history when it failed, and the announcement of its next due time.
    pub(super) async fn record(
        &self,
        feed_id: i64,
        update: FeedUpdate,
        scheduled: Scheduled,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let next_due = due_time(scheduled.next_due);
        let due = next_due.map(due_payload);
        let rows = match update {
            FeedUpdate::Unchanged {
                validators,
                fresh_until,
            } => {
                let (etag, last_modified) = validators.map_or((None, None), |v| (v.etag, v.last_modified));
                self.query(
                    "WITH done AS (
                         UPDATE feeds SET last_fetch = $2, last_success = $2, last_error = NULL, failures = 0,
                             failing_since = NULL, retry_after = NULL, fresh_until = $5, gone_at = NULL,
                             gone_config = NULL, etag = COALESCE($3, etag),
                             last_modified = COALESCE($4, last_modified), failure_kind = NULL,
                             abandoned_at = NULL, next_due = $6, schedule_key = $7, lease_until = NULL
                         WHERE id = $1 AND ($8::bigint IS NULL OR (lease_node = $9 AND lease_epoch = $8))
                         RETURNING id)
                     SELECT id, CASE WHEN $10::text IS NULL THEN NULL ELSE pg_notify($11, $10) END::text FROM done",
                    &[
                        &feed_id,
                        &now,
                        &etag,
                        &last_modified,
                        &fresh_until,
                        &next_due,
                        &scheduled.key,
                        &scheduled.lease,
                        &self.node,
                        &due,
                        &channel::DUE,
                    ],
                )
                .await?
            }
            FeedUpdate::Failed {
                error,
                kind,
                retry_after,
                gone,
                abandoned,
            } => {
                self.query(
                    "WITH done AS (
                         UPDATE feeds SET last_fetch = $2, last_error = $3, failures = failures + 1,
                             failing_since = COALESCE(failing_since, $2), retry_after = $4,
                             gone_at = CASE WHEN $5::text IS NULL THEN gone_at ELSE $2 END,
                             gone_config = COALESCE($5, gone_config), failure_kind = $6,
                             next_due = $7, schedule_key = $8, lease_until = NULL,
                             abandoned_at = CASE WHEN $9 THEN COALESCE(abandoned_at, $2) END
                         WHERE id = $1 AND ($10::bigint IS NULL OR (lease_node = $11 AND lease_epoch = $10))
                         RETURNING id),
                     logged AS (
                         INSERT INTO feed_errors (feed_id, at, kind, message)
                         SELECT id, $2, $6, $3 FROM done RETURNING feed_id),
                     trimmed AS (
                         DELETE FROM feed_errors WHERE feed_id IN (SELECT feed_id FROM logged) AND id <= (
                             SELECT id FROM feed_errors WHERE feed_id = $1 ORDER BY id DESC LIMIT 1 OFFSET $12))
                     SELECT id, CASE WHEN $13::text IS NULL THEN NULL ELSE pg_notify($14, $13) END::text FROM done",
                    &[
                        &feed_id,
                        &now,
                        &error,
                        &retry_after,
                        &gone,
                        &kind.as_str(),
                        &next_due,
                        &scheduled.key,
                        &abandoned,
                        &scheduled.lease,
                        &self.node,
                        // The statement sees the history before its insert: it keeps one fewer.
                        &(ERROR_HISTORY - 1),
                        &due,
                        &channel::DUE,
                    ],
                )
                .await?
            }
        };
        if rows.is_empty() && scheduled.lease.is_some() {
            return Err(StoreError::Fenced { feed_id });
        }
        Ok(())
    }

    pub(super) async fn redirect(
        &self,
        feed_id: i64,
        target: Option<String>,
    ) -> Result<Option<String>, StoreError> {
        let Some(target) = target else {
            self.execute(
                "UPDATE feeds SET moved_candidate = NULL, moved_count = 0 WHERE id = $1 AND moved_count > 0",
                &[&feed_id],
            )
            .await?;
            return Ok(None);
        };
        // One statement: counted, and moved when the count reaches the mark.
        let rows = self
            .query(
                "UPDATE feeds SET
                     moved_to = CASE WHEN next.count >= $3 THEN $2 ELSE feeds.moved_to END,
                     moved_candidate = CASE WHEN next.count >= $3 THEN NULL ELSE $2 END,
                     moved_count = CASE WHEN next.count >= $3 THEN 0 ELSE next.count END
                 FROM (SELECT CASE WHEN moved_candidate = $2 THEN moved_count + 1 ELSE 1 END AS count
                       FROM feeds WHERE id = $1) AS next
                 WHERE feeds.id = $1
                 RETURNING next.count",
                &[&feed_id, &target, &i64::from(MOVE_AFTER)],
            )
            .await?;
        let moved = rows
            .first()
            .is_some_and(|r| r.get::<_, i64>(0) >= i64::from(MOVE_AFTER));
        Ok(moved.then_some(target))
    }

    pub(super) async fn reset(&self, feed_id: i64) -> Result<(), StoreError> {
        self.query(
            "WITH reset AS (
                 UPDATE feeds SET failures = 0, last_error = NULL, failing_since = NULL, failure_kind = NULL,
                     retry_after = NULL, gone_at = NULL, gone_config = NULL, abandoned_at = NULL,
                     next_due = to_timestamp(0), lease_until = NULL
                 WHERE id = $1 RETURNING id)
             DELETE FROM feed_errors WHERE feed_id IN (SELECT id FROM reset)",
            &[&feed_id],
        )
        .await?;
        Ok(())
    }

    /// The longest delay wins (another node may have been told to wait longer), and every node
    /// hears of it at once.
    pub(super) async fn delay(
        &self,
        host: String,
        until: DateTime<Utc>,
        reason: String,
    ) -> Result<(), StoreError> {
        self.query(
            "WITH held AS (
                 INSERT INTO hosts (host, not_before, reason) VALUES ($1, $2, $3)
                 ON CONFLICT (host) DO UPDATE SET not_before = GREATEST(excluded.not_before, hosts.not_before),
                     reason = excluded.reason
                 RETURNING host, not_before)
             SELECT pg_notify($4, (EXTRACT(EPOCH FROM not_before) * 1000)::bigint::text || ' ' || host)::text FROM held",
            &[&host, &until, &reason, &channel::HOSTS],
        )
        .await?;
        Ok(())
    }

    pub(super) async fn delays(
        &self,
        now: DateTime<Utc>,
    ) -> Result<HashMap<String, DateTime<Utc>>, StoreError> {
        let rows = self
            .query(
                "SELECT host, not_before FROM hosts WHERE not_before > $1",
                &[&now],
            )
            .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    pub(super) async fn by_url(&self, urls: &[String]) -> Result<HashMap<String, FeedState>, StoreError> {
        let rows = self
            .query(
                &format!("SELECT {FEED_COLUMNS} FROM feeds WHERE url = ANY($1)"),
                &[&urls],
            )
            .await?;
        rows.iter()
            .map(|r| feed_from_row(r).map(|f| (f.url.clone(), f)))
            .collect::<Result<_, _>>()
            .map_err(|e| self.error(e))
    }

    pub(super) async fn by_id(&self, ids: Vec<i64>) -> Result<HashMap<i64, FeedState>, StoreError> {
        let rows = self
            .query(
                &format!("SELECT {FEED_COLUMNS} FROM feeds WHERE id = ANY($1)"),
                &[&ids],
            )
            .await?;
        rows.iter()
            .map(|r| feed_from_row(r).map(|f| (f.id, f)))
            .collect::<Result<_, _>>()
            .map_err(|e| self.error(e))
    }

    pub(super) async fn ids(&self) -> Result<Vec<(i64, String)>, StoreError> {
        let rows = self.query("SELECT id, url FROM feeds", &[]).await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    pub(super) async fn errors(&self, feed_id: i64) -> Result<Vec<FeedError>, StoreError> {
        let rows = self
            .query(
                "SELECT at, kind, message FROM feed_errors WHERE feed_id = $1 ORDER BY id DESC",
                &[&feed_id],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| FeedError {
                at: r.get(0),
                kind: FailureKind::from_name(r.get(1)).unwrap_or(FailureKind::Internal),
                message: r.get(2),
            })
            .collect())
    }

    /// The nodes, and which node holds each feed claimed now. A node not heard from within
    /// `lease` stopped.
    pub(super) async fn nodes(
        &self,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<(Vec<ClusterNode>, HashMap<i64, String>), StoreError> {
        let holders: HashMap<i64, String> = self
            .query(
                "SELECT id, lease_node FROM feeds WHERE lease_until > $1 AND lease_node IS NOT NULL",
                &[&now],
            )
            .await?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        let silent_since = now - chrono::Duration::from_std(lease).unwrap_or_default();
        let nodes = self
            .query(
                "SELECT name, started, last_seen, pid, version FROM nodes ORDER BY name",
                &[],
            )
            .await?
            .iter()
            .map(|r| {
                let name: String = r.get(0);
                let last_seen: DateTime<Utc> = r.get(2);
                ClusterNode {
                    holds: holders.values().filter(|n| **n == name).count(),
                    name,
                    started: r.get(1),
                    heartbeating: last_seen > silent_since,
                    last_seen,
                    pid: r.get(3),
                    version: r.get(4),
                }
            })
            .collect();
        Ok((nodes, holders))
    }
}
