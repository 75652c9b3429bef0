//! Feeds' WebSub subscriptions (see `push`) and subscription lists (see `lists`): where
//! feeds come from besides the config.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, Row, params};

use super::{Db, from_unix, to_millis_ceil};
use crate::model::{ListMember, ListState, Subscription, SubscriptionState, Validators};

const COLUMNS: &str = "feed_id, hub, topic, state, secret, nonce, lease_until, next_attempt, failures, error, \
                       last_push, pushes, rejected";

fn from_row(row: &Row<'_>) -> rusqlite::Result<Subscription> {
    let time =
        |i| -> rusqlite::Result<Option<DateTime<Utc>>> { Ok(row.get::<_, Option<i64>>(i)?.map(from_unix)) };
    let state: String = row.get(3)?;
    Ok(Subscription {
        feed_id: row.get(0)?,
        hub: row.get(1)?,
        topic: row.get(2)?,
        // A state this Tributary does not know (written by a newer one) is asked again.
        state: SubscriptionState::from_name(&state).unwrap_or(SubscriptionState::Failed),
        secret: row.get(4)?,
        nonce: row.get(5)?,
        lease_until: time(6)?,
        next_attempt: time(7)?,
        failures: row.get(8)?,
        error: row.get(9)?,
        last_push: time(10)?,
        pushes: u64::try_from(row.get::<_, i64>(11)?).unwrap_or(0),
        rejected: u64::try_from(row.get::<_, i64>(12)?).unwrap_or(0),
    })
}

impl Db {
    pub(super) fn put_subscription(
        &mut self,
        sub: &Subscription,
        now: DateTime<Utc>,
    ) -> rusqlite::Result<()> {
        self.savepoint(|db| {
            db.exec(
                "INSERT INTO subscriptions (feed_id, hub, topic, state, secret, nonce, lease_until, next_attempt,
                     failures, error, last_push, pushes, rejected)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
                 ON CONFLICT (feed_id) DO UPDATE SET hub = excluded.hub, topic = excluded.topic,
                     state = excluded.state, secret = excluded.secret, nonce = excluded.nonce,
                     lease_until = excluded.lease_until, next_attempt = excluded.next_attempt,
                     failures = excluded.failures, error = excluded.error",
                params![
                    sub.feed_id,
                    sub.hub,
                    sub.topic,
                    sub.state.name(),
                    sub.secret,
                    sub.nonce,
                    sub.lease_until.map(|t| t.timestamp()),
                    sub.next_attempt.map(|t| t.timestamp()),
                    sub.failures,
                    sub.error,
                    sub.last_push.map(|t| t.timestamp()),
                    i64::try_from(sub.pushes).unwrap_or(i64::MAX),
                    i64::try_from(sub.rejected).unwrap_or(i64::MAX),
                ],
            )?;
            db.pushed_until(sub.feed_id, sub.pushed_until(), now)
        })
    }

    pub(super) fn drop_subscription(&mut self, feed_id: i64, now: DateTime<Utc>) -> rusqlite::Result<()> {
        self.savepoint(|db| {
            db.exec("DELETE FROM subscriptions WHERE feed_id = ?1", [feed_id])?;
            db.pushed_until(feed_id, None, now)
        })
    }

    /// Sets until when the feed is pushed; one that stops being pushed is due by `now`.
    fn pushed_until(
        &self,
        feed_id: i64,
        until: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> rusqlite::Result<()> {
        self.exec(
            "UPDATE feeds SET push_until = ?2,
                 next_due = CASE WHEN ?2 IS NULL AND push_until IS NOT NULL AND next_due > ?3 THEN ?3
                                 ELSE next_due END
             WHERE id = ?1",
            params![feed_id, until.map(|t| t.timestamp()), to_millis_ceil(now)],
        )
        .map(drop)
    }

    pub(super) fn count_push(&self, feed_id: i64, at: DateTime<Utc>, taken: bool) -> rusqlite::Result<()> {
        let sql = if taken {
            "UPDATE subscriptions SET pushes = pushes + 1, last_push = ?2 WHERE feed_id = ?1"
        } else {
            "UPDATE subscriptions SET rejected = rejected + 1 WHERE feed_id = ?1 AND ?2 IS NOT NULL"
        };
        self.exec(sql, params![feed_id, at.timestamp()]).map(drop)
    }

    pub(super) fn subscriptions(&self) -> rusqlite::Result<Vec<Subscription>> {
        self.conn
            .prepare_cached(&format!("SELECT {COLUMNS} FROM subscriptions ORDER BY feed_id"))?
            .query_map([], from_row)?
            .collect()
    }

    pub(super) fn subscription(&self, feed_id: i64) -> rusqlite::Result<Option<Subscription>> {
        self.conn
            .prepare_cached(&format!("SELECT {COLUMNS} FROM subscriptions WHERE feed_id = ?1"))?
            .query_row([feed_id], from_row)
            .optional()
    }
}

fn list_from_row(row: &Row<'_>) -> rusqlite::Result<ListState> {
    let time =
        |i| -> rusqlite::Result<Option<DateTime<Utc>>> { Ok(row.get::<_, Option<i64>>(i)?.map(from_unix)) };
    // Written by this module from typed values; a value that does not decode is no members.
    let members = |i| -> rusqlite::Result<Option<Vec<ListMember>>> {
        Ok(row
            .get::<_, Option<String>>(i)?
            .map(|text| serde_json::from_str(&text).unwrap_or_default()))
    };
    Ok(ListState {
        key: row.get(0)?,
        validators: Validators {
            etag: row.get(1)?,
            last_modified: row.get(2)?,
        },
        members: members(3)?.unwrap_or_default(),
        held: members(4)?,
        fetched: time(5)?,
        last_success: time(6)?,
        last_error: row.get(7)?,
        failures: row.get(8)?,
        next_due: time(9)?,
    })
}

impl Db {
    pub(super) fn put_list(&self, list: &ListState) -> rusqlite::Result<()> {
        let json = |m: &Vec<ListMember>| serde_json::to_string(m).unwrap_or_else(|_| "[]".into());
        self.exec(
            "INSERT INTO lists (key, etag, last_modified, members, held, fetched, last_success, last_error,
                 failures, next_due)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT (key) DO UPDATE SET etag = excluded.etag, last_modified = excluded.last_modified,
                 members = excluded.members, held = excluded.held, fetched = excluded.fetched,
                 last_success = excluded.last_success, last_error = excluded.last_error,
                 failures = excluded.failures, next_due = excluded.next_due",
            params![
                list.key,
                list.validators.etag,
                list.validators.last_modified,
                json(&list.members),
                list.held.as_ref().map(json),
                list.fetched.map(|t| t.timestamp()),
                list.last_success.map(|t| t.timestamp()),
                list.last_error,
                list.failures,
                list.next_due.map(|t| t.timestamp()),
            ],
        )
        .map(drop)
    }

    pub(super) fn lists(&self) -> rusqlite::Result<Vec<ListState>> {
        self.conn
            .prepare_cached(
                "SELECT key, etag, last_modified, members, held, fetched, last_success, last_error, failures,
                     next_due FROM lists ORDER BY key",
            )?
            .query_map([], list_from_row)?
            .collect()
    }
}
