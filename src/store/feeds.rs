//! Feed rows: one per source URL, holding what the next poll needs (validators, body hash) and
//! what operators need (last success, last error, consecutive failures).

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::sql::{Dialect, Row, params};
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
    /// The claim the poll was made under (`FeedState::lease_epoch`): in a shared store the
    /// poll is recorded only while it stands, so a node that lost its claim writes nothing.
    pub lease: Option<i64>,
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

/// Where a PostgreSQL claim's epoch comes, after the columns [`FEED_COLUMNS`] lists.
const EPOCH_COLUMN: usize = {
    let bytes = FEED_COLUMNS.as_bytes();
    let (mut i, mut columns) = (0, 1);
    while i < bytes.len() {
        if bytes[i] == b',' {
            columns += 1;
        }
        i += 1;
    }
    columns
};

/// A claim on PostgreSQL (see [`Store::claim_due`]): `?1` now, `?2` the limit, `?3` the lease's
/// end, `?4` this node.
static PG_CLAIM: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let returning: Vec<String> = FEED_COLUMNS
        .split(',')
        .map(|c| format!("f.{}", c.trim()))
        .collect();
    format!(
        "WITH due AS (
             SELECT id FROM feeds
             WHERE next_due <= ?1 AND (lease_until IS NULL OR lease_until <= ?1)
             ORDER BY next_due LIMIT ?2 FOR UPDATE SKIP LOCKED)
         UPDATE feeds AS f SET lease_until = ?3, lease_node = ?4, lease_epoch = f.lease_epoch + 1
         FROM due WHERE f.id = due.id
         RETURNING {}, f.lease_epoch",
        returning.join(", ")
    )
});

pub(super) fn feed_from_row(row: &Row<'_>) -> Result<FeedState, StoreError> {
    let opt_time =
        |i| -> Result<Option<DateTime<Utc>>, StoreError> { Ok(row.get::<Option<i64>>(i)?.map(from_unix)) };
    let opt_millis =
        |i| -> Result<Option<DateTime<Utc>>, StoreError> { Ok(row.get::<Option<i64>>(i)?.map(from_millis)) };
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
            .get::<Option<i64>>(15)?
            .map(|s| Duration::from_secs(s.max(0) as u64)),
        moved_to: row.get(18)?,
        gone_at: opt_time(19)?,
        moved_count: row.get(20)?,
        failure_kind: row
            .get::<Option<String>>(21)?
            .and_then(|k| FailureKind::from_name(&k)),
        next_due: opt_millis(22)?,
        schedule_key: row.get(23)?,
        abandoned_at: opt_time(24)?,
        repairs: crate::model::Repair::split(row.get::<Option<String>>(25)?.as_deref()),
        language: row.get(26)?,
        lease_epoch: None,
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
        let select = format!("SELECT {FEED_COLUMNS} FROM feeds WHERE url = ?1");
        self.conn.savepoint(|c| {
            let mut states = Vec::with_capacity(urls.len());
            for url in urls {
                c.execute(
                    "INSERT INTO feeds (url, created) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                    params![url, to_unix(now)],
                )?;
                states.push(c.query_one(&select, params![url], feed_from_row)?);
            }
            Ok(states)
        })
    }

    /// Renames feeds stored under an old identity (`old` → `new`) when the new one is not taken:
    /// databases from before identities left credentials out stored feed URLs whole.
    pub(crate) fn rekey_feeds(&mut self, renames: &[(String, String)]) -> Result<usize, StoreError> {
        let mut renamed = 0;
        for (old, new) in renames {
            renamed += self.conn.execute(
                "UPDATE feeds SET url = ?2 WHERE url = ?1 AND NOT EXISTS (SELECT 1 FROM feeds WHERE url = ?2)",
                params![old, new],
            )?;
        }
        Ok(renamed)
    }

    /// One feed by its row id.
    pub(crate) fn feed_by_id(&self, id: i64) -> Result<Option<FeedState>, StoreError> {
        self.conn.query_opt(
            &format!("SELECT {FEED_COLUMNS} FROM feeds WHERE id = ?1"),
            params![id],
            feed_from_row,
        )
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
            for url in urls.keys() {
                if let Some(id) = self.conn.query_opt(
                    "SELECT id FROM feeds WHERE url = ?1",
                    params![url.borrow()],
                    |r| r.get(0),
                )? {
                    ids.push(id);
                }
            }
            return Ok(ids);
        }
        self.conn.each("SELECT id, url FROM feeds", params![], |row| {
            if row.with_str(1, |url| urls.contains_key(url))? {
                ids.push(row.get(0)?);
            }
            Ok(std::ops::ControlFlow::Continue(()))
        })?;
        Ok(ids)
    }

    /// In a shared store, makes sure the claim `lease` on `feed_id` still stands and holds
    /// the row until the poll is recorded; fails with [`StoreError::Fenced`] when another
    /// node claimed the feed since (this one stalled past its lease). SQLite has one daemon
    /// per database (see `DaemonLock`), so nothing can have taken its claims.
    pub(super) fn fence(&self, feed_id: i64, lease: Option<i64>) -> Result<(), StoreError> {
        let (Some(epoch), Dialect::Postgres) = (lease, self.conn.dialect()) else {
            return Ok(());
        };
        let holds = self.conn.query_opt(
            "SELECT 1 FROM feeds WHERE id = ?1 AND lease_node = ?2 AND lease_epoch = ?3 FOR UPDATE",
            params![feed_id, self.node, epoch],
            |_| Ok(()),
        )?;
        holds.ok_or(StoreError::Fenced { feed_id })
    }

    /// In a shared store, tells the other nodes when a feed is due next (once this
    /// transaction commits), so that whichever is free then claims it.
    pub(super) fn announce_due(&self, next_due: Option<DateTime<Utc>>) -> Result<(), StoreError> {
        if let (Some(due), Dialect::Postgres) = (next_due, self.conn.dialect()) {
            self.conn.execute(
                "SELECT pg_notify(?1, ?2)",
                params![super::postgres::DUE_CHANNEL, to_millis_ceil(due).to_string()],
            )?;
        }
        Ok(())
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
        let record = |c: &super::sql::Conn| -> Result<(), StoreError> {
            self.fence(feed_id, scheduled.lease)?;
            self.announce_due(scheduled.next_due)?;
            match update {
                FeedUpdate::Unchanged {
                    validators,
                    fresh_until,
                } => {
                    c.execute(
                        "UPDATE feeds SET last_fetch = ?2, last_success = ?3, last_error = NULL, failures = 0,
                             failing_since = NULL, retry_after = NULL, fresh_until = ?6, gone_at = NULL, gone_config = NULL,
                             etag = COALESCE(?4, etag), last_modified = COALESCE(?5, last_modified),
                             failure_kind = NULL, abandoned_at = NULL,
                             next_due = ?7, schedule_key = ?8, lease_until = NULL
                         WHERE id = ?1",
                        params![
                            feed_id,
                            to_millis(now),
                            to_unix(now),
                            validators.as_ref().and_then(|v| v.etag.as_deref()),
                            validators.as_ref().and_then(|v| v.last_modified.as_deref()),
                            fresh_until.map(to_unix),
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
                    c.execute(
                        "UPDATE feeds SET last_fetch = ?2, last_error = ?4, failures = failures + 1,
                             failing_since = COALESCE(failing_since, ?3), retry_after = ?5,
                             gone_at = CASE WHEN CAST(?6 AS TEXT) IS NULL THEN gone_at ELSE ?3 END,
                             gone_config = COALESCE(?6, gone_config), failure_kind = ?7,
                             next_due = ?8, schedule_key = ?9, lease_until = NULL,
                             abandoned_at = CASE WHEN ?10 = 1 THEN COALESCE(abandoned_at, ?3) END
                         WHERE id = ?1",
                        params![
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
                        ],
                    )?;
                    c.execute(
                        "INSERT INTO feed_errors (feed_id, at, kind, message) VALUES (?1, ?2, ?3, ?4)",
                        params![feed_id, to_unix(now), kind.as_str(), error],
                    )?;
                    c.execute(
                        "DELETE FROM feed_errors WHERE feed_id = ?1 AND id <= (
                             SELECT id FROM feed_errors WHERE feed_id = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)",
                        params![feed_id, ERROR_HISTORY],
                    )?;
                }
            }
            Ok(())
        };
        // On PostgreSQL the fence's row lock and the record are one savepoint. SQLite needs
        // none (one writer, inside the group's transaction), and a savepoint per 304 cost a
        // warm round of 1,000 feeds a sixth of its time.
        match self.conn.dialect() {
            Dialect::Sqlite => record(&self.conn),
            Dialect::Postgres => self.conn.savepoint(record),
        }
    }

    /// A feed's recent failures, newest first.
    pub(crate) fn feed_errors(&self, feed_id: i64) -> Result<Vec<crate::model::FeedError>, StoreError> {
        self.conn.query(
            "SELECT at, kind, message FROM feed_errors WHERE feed_id = ?1 ORDER BY id DESC",
            params![feed_id],
            |r| {
                Ok(crate::model::FeedError {
                    at: from_unix(r.get(0)?),
                    kind: FailureKind::from_name(&r.get::<String>(1)?).unwrap_or(FailureKind::Internal),
                    message: r.get(2)?,
                })
            },
        )
    }

    /// Forgets a feed's failures (`feeds --reset`): no backoff, no gone, no history; due at once.
    pub(crate) fn reset_feed(&mut self, feed_id: i64) -> Result<(), StoreError> {
        self.conn.savepoint(|c| {
            c.execute(
                "UPDATE feeds SET failures = 0, last_error = NULL, failing_since = NULL, failure_kind = NULL,
                     retry_after = NULL, gone_at = NULL, gone_config = NULL, abandoned_at = NULL,
                     next_due = 0, lease_until = NULL
                 WHERE id = ?1",
                params![feed_id],
            )?;
            c.execute("DELETE FROM feed_errors WHERE feed_id = ?1", params![feed_id])?;
            Ok(())
        })
    }

    /// Sets when feeds are due (after the policy they were computed under changed, or when a
    /// poll skipped them), releasing any lease on them. A feed whose claim (`lease`) no longer
    /// stands is left to the node that holds it now.
    pub fn schedule(&mut self, due: &[(i64, Scheduled)]) -> Result<(), StoreError> {
        self.conn.savepoint(|c| {
            for (id, scheduled) in due {
                match self.fence(*id, scheduled.lease) {
                    Err(StoreError::Fenced { .. }) => continue,
                    other => other?,
                }
                let next_due = scheduled.next_due.map(to_millis_ceil);
                if c.dialect() == Dialect::Postgres && scheduled.lease.is_none() {
                    // A node starting (or reloading) reschedules what its config changed;
                    // another node may have done so already, or be polling the feed now.
                    c.execute(
                        "UPDATE feeds SET next_due = ?2, schedule_key = ?3, lease_until = NULL
                         WHERE id = ?1 AND schedule_key IS DISTINCT FROM ?3
                           AND (lease_until IS NULL OR lease_node = ?4)",
                        params![id, next_due, scheduled.key, self.node],
                    )?;
                    continue;
                }
                c.execute(
                    "UPDATE feeds SET next_due = ?2, schedule_key = ?3, lease_until = NULL WHERE id = ?1",
                    params![id, next_due, scheduled.key],
                )?;
                self.announce_due(scheduled.next_due)?;
            }
            Ok(())
        })
    }

    /// Takes every feed but `configured` off the schedule (removed from the config): their
    /// rows and entries stay, but no wake-up sees them.
    pub(crate) fn unschedule_others(&mut self, configured: &[i64]) -> Result<usize, StoreError> {
        let ids = serde_json::to_string(configured).unwrap_or_else(|_| "[]".into());
        self.conn.execute(
            "UPDATE feeds SET next_due = NULL, schedule_key = NULL, lease_until = NULL
             WHERE next_due IS NOT NULL AND id NOT IN (SELECT CAST(value AS BIGINT) FROM json_each(?1))",
            params![ids],
        )
    }

    /// Claims up to `limit` feeds due at `now` that nobody holds, oldest due first, until
    /// `lease_until`; and finds when the next unclaimed feed is due. One range of the due-time
    /// index: the cost is the number of due feeds, whatever the number of feeds.
    ///
    /// In a shared store the due rows are locked with `SKIP LOCKED`, so nodes claiming at once
    /// take disjoint sets without waiting on each other, and every claim is stamped with this
    /// node and a new epoch (see [`Store::fence`]).
    pub fn claim_due(
        &mut self,
        now: DateTime<Utc>,
        limit: usize,
        lease_until: DateTime<Utc>,
    ) -> Result<Claimed, StoreError> {
        let now_ms = to_millis(now);
        let limit_sql = i64::try_from(limit).unwrap_or(i64::MAX);
        self.conn.savepoint(|c| {
            let mut claimed = Claimed::default();
            match c.dialect() {
                Dialect::Sqlite => {
                    let due = format!(
                        "SELECT {FEED_COLUMNS} FROM feeds
                         WHERE next_due <= ?1 AND (lease_until IS NULL OR lease_until <= ?1)
                         ORDER BY next_due LIMIT ?2"
                    );
                    claimed.feeds =
                        c.query(&due, params![now_ms, limit_sql.saturating_add(1)], feed_from_row)?;
                    if claimed.feeds.len() > limit {
                        claimed.feeds.truncate(limit);
                        claimed.more = true;
                    }
                    for feed in &claimed.feeds {
                        c.execute(
                            "UPDATE feeds SET lease_until = ?2 WHERE id = ?1",
                            params![feed.id, to_millis(lease_until)],
                        )?;
                    }
                }
                Dialect::Postgres => {
                    // One statement: the due rows other nodes are not claiming this moment,
                    // stamped with this node and a new epoch, and returned.
                    claimed.feeds = c.query(
                        &PG_CLAIM,
                        params![now_ms, limit_sql, to_millis(lease_until), self.node],
                        |r| {
                            let mut feed = feed_from_row(r)?;
                            feed.lease_epoch = Some(r.get(EPOCH_COLUMN)?);
                            Ok(feed)
                        },
                    )?;
                    // RETURNING keeps no order: oldest due first, as on SQLite.
                    claimed.feeds.sort_by_key(|f| f.next_due);
                    claimed.more = claimed.feeds.len() == limit;
                }
            }
            claimed.next = c
                .query_one(
                    "SELECT MIN(next_due) FROM feeds WHERE next_due > ?1",
                    params![now_ms],
                    |r| r.get::<Option<i64>>(0),
                )?
                .map(from_millis);
            if c.dialect() == Dialect::Postgres {
                // Another node's claim on a due feed runs out before the next due time, maybe:
                // then this node looks again when it does (the other node may have died).
                let held: Option<i64> = c.query_one(
                    "SELECT MIN(lease_until) FROM feeds WHERE next_due <= ?1 AND lease_until > ?1",
                    params![now_ms],
                    |r| r.get(0),
                )?;
                if let Some(held) = held.map(from_millis) {
                    claimed.next = Some(claimed.next.map_or(held, |n| n.min(held)));
                }
            }
            Ok(claimed)
        })
    }

    /// Extends this node's claims on `ids` (polls still queued or running) to `until`;
    /// returns those another node holds now. A claim this node made again since keeps its
    /// newer epoch (the older poll's record is fenced by its own). A feed whose poll was
    /// recorded since the caller looked is left alone: its claim ended with the record, and
    /// renewing it would keep every node off it for a lease. On SQLite every claim is the one
    /// daemon's: there is nothing to renew or lose.
    pub(crate) fn renew_leases(&mut self, ids: &[i64], until: DateTime<Utc>) -> Result<Vec<i64>, StoreError> {
        if self.conn.dialect() == Dialect::Sqlite || ids.is_empty() {
            return Ok(Vec::new());
        }
        let list = serde_json::to_string(ids).unwrap_or_else(|_| "[]".into());
        self.conn.execute(
            "UPDATE feeds SET lease_until = ?1
             WHERE lease_node = ?2 AND lease_until IS NOT NULL
               AND id IN (SELECT CAST(value AS BIGINT) FROM json_each(?3))",
            params![to_millis(until), self.node, list],
        )?;
        self.conn.query(
            "SELECT id FROM feeds
             WHERE lease_node IS DISTINCT FROM ?1 AND id IN (SELECT CAST(value AS BIGINT) FROM json_each(?2))",
            params![self.node, list],
            |r| r.get(0),
        )
    }

    /// Gives up the leases on `ids` (claimed, then not polled: the daemon is stopping, or the
    /// feed left the config), or on every feed this node holds when `ids` is `None` (a daemon
    /// starting: what it finds under its name is left over from a crash). On SQLite there is
    /// one daemon per database, so every lease is its own.
    pub fn release_leases(&mut self, ids: Option<&[i64]>) -> Result<usize, StoreError> {
        let ids = ids.map(|ids| serde_json::to_string(ids).unwrap_or_else(|_| "[]".into()));
        let c = &self.conn;
        match (c.dialect(), ids) {
            (Dialect::Sqlite, None) => c.execute(
                "UPDATE feeds SET lease_until = NULL WHERE lease_until IS NOT NULL",
                params![],
            ),
            (Dialect::Sqlite, Some(ids)) => c.execute(
                "UPDATE feeds SET lease_until = NULL WHERE id IN (SELECT CAST(value AS BIGINT) FROM json_each(?1))",
                params![ids],
            ),
            (Dialect::Postgres, None) => c.execute(
                "UPDATE feeds SET lease_until = NULL WHERE lease_until IS NOT NULL AND lease_node = ?1",
                params![self.node],
            ),
            (Dialect::Postgres, Some(ids)) => c.execute(
                "UPDATE feeds SET lease_until = NULL
                 WHERE id IN (SELECT CAST(value AS BIGINT) FROM json_each(?1)) AND lease_node = ?2",
                params![ids, self.node],
            ),
        }
    }

    /// Notes where this poll's permanent redirects led (`None`: no permanent redirect). After
    /// `MOVE_AFTER` consecutive polls to the same place the feed moves there; returns the new
    /// location when that happened now.
    pub(crate) fn note_redirect(
        &mut self,
        feed_id: i64,
        target: Option<&str>,
    ) -> Result<Option<String>, StoreError> {
        self.conn.savepoint(|c| {
            let Some(target) = target else {
                c.execute(
                    "UPDATE feeds SET moved_candidate = NULL, moved_count = 0 WHERE id = ?1 AND moved_count > 0",
                    params![feed_id],
                )?;
                return Ok(None);
            };
            let count: u32 = c.query_one(
                "UPDATE feeds SET moved_count = CASE WHEN moved_candidate = ?2 THEN moved_count + 1 ELSE 1 END,
                     moved_candidate = ?2
                 WHERE id = ?1 RETURNING moved_count",
                params![feed_id, target],
                |r| r.get(0),
            )?;
            if count < MOVE_AFTER {
                return Ok(None);
            }
            c.execute(
                "UPDATE feeds SET moved_to = ?2, moved_candidate = NULL, moved_count = 0 WHERE id = ?1",
                params![feed_id, target],
            )?;
            Ok(Some(target.to_string()))
        })
    }

    /// Feeds found gone under another version of the config are given another chance.
    pub(crate) fn forgive_gone(
        &mut self,
        urls: &[String],
        config_fingerprint: &str,
    ) -> Result<usize, StoreError> {
        let urls_json = serde_json::to_string(urls).unwrap_or_else(|_| "[]".into());
        self.conn.execute(
            "UPDATE feeds SET gone_at = NULL, gone_config = NULL
             WHERE gone_at IS NOT NULL AND gone_config IS DISTINCT FROM ?2
               AND url IN (SELECT value FROM json_each(?1))",
            params![urls_json, config_fingerprint],
        )
    }

    /// Delays every feed on `host` until `until` (after a 429 or 403 from it). The longest
    /// delay wins: in a shared store another node may have been told to wait longer.
    pub(crate) fn delay_host(
        &mut self,
        host: &str,
        until: DateTime<Utc>,
        reason: &str,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO hosts (host, not_before, reason) VALUES (?1, ?2, ?3)
             ON CONFLICT (host) DO UPDATE SET
                 not_before = CASE WHEN excluded.not_before > hosts.not_before
                     THEN excluded.not_before ELSE hosts.not_before END,
                 reason = excluded.reason",
            params![host, to_unix(until), reason],
        )?;
        Ok(())
    }

    /// The nodes of a cluster and, by feed id, which node holds a claim on each feed claimed
    /// now. A node not heard from within `lease` stopped. Nothing on SQLite, which has no
    /// cluster.
    pub(crate) fn cluster(
        &self,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<(Vec<crate::model::ClusterNode>, HashMap<i64, String>), StoreError> {
        if self.conn.dialect() == Dialect::Sqlite {
            return Ok(Default::default());
        }
        let holders: HashMap<i64, String> = self
            .conn
            .query(
                "SELECT id, lease_node FROM feeds WHERE lease_until > ?1 AND lease_node IS NOT NULL",
                params![to_millis(now)],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?
            .into_iter()
            .collect();
        let silent_since = now - chrono::Duration::from_std(lease).unwrap_or_default();
        let nodes = self.conn.query(
            "SELECT name, started, last_seen, pid, version FROM nodes ORDER BY name",
            params![],
            |r| {
                let name: String = r.get(0)?;
                let last_seen = from_millis(r.get(2)?);
                Ok(crate::model::ClusterNode {
                    holds: holders.values().filter(|n| **n == name).count(),
                    name,
                    started: from_millis(r.get(1)?),
                    heartbeating: last_seen > silent_since,
                    last_seen,
                    pid: r.get(3)?,
                    version: r.get(4)?,
                })
            },
        )?;
        Ok((nodes, holders))
    }

    /// Hosts that may not be asked before a time later than `now`.
    pub(crate) fn host_delays(
        &mut self,
        now: DateTime<Utc>,
    ) -> Result<HashMap<String, DateTime<Utc>>, StoreError> {
        self.conn
            .execute("DELETE FROM hosts WHERE not_before <= ?1", params![to_unix(now)])?;
        let rows = self
            .conn
            .query("SELECT host, not_before FROM hosts", params![], |r| {
                Ok((r.get::<String>(0)?, from_unix(r.get(1)?)))
            })?;
        Ok(rows.into_iter().collect())
    }
}
