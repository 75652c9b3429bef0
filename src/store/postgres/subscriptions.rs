//! Feeds' WebSub subscriptions (see `push`) and subscription lists (see `lists`); one
//! statement per operation.

use chrono::{DateTime, Utc};
use tokio_postgres::Row;

use super::PgStore;
use crate::model::{ListMember, ListState, Subscription, SubscriptionState, Validators};
use crate::store::StoreError;

fn from_row(row: &Row) -> Result<Subscription, tokio_postgres::Error> {
    let state: String = row.try_get(3)?;
    Ok(Subscription {
        feed_id: row.try_get(0)?,
        hub: row.try_get(1)?,
        topic: row.try_get(2)?,
        // A state this Tributary does not know (written by a newer one) is asked again.
        state: SubscriptionState::from_name(&state).unwrap_or(SubscriptionState::Failed),
        secret: row.try_get(4)?,
        nonce: row.try_get(5)?,
        lease_until: row.try_get(6)?,
        next_attempt: row.try_get(7)?,
        failures: u32::try_from(row.try_get::<_, i64>(8)?).unwrap_or(0),
        error: row.try_get(9)?,
        last_push: row.try_get(10)?,
        pushes: u64::try_from(row.try_get::<_, i64>(11)?).unwrap_or(0),
        rejected: u64::try_from(row.try_get::<_, i64>(12)?).unwrap_or(0),
    })
}

/// Sets until when feed `$1` is pushed (`$2`); one that stops being pushed is due by `$3`.
/// (Every part of a statement sees the row as it was before it.)
const PUSHED_UNTIL: &str = "UPDATE feeds SET push_until = $2,
         next_due = CASE WHEN $2::timestamptz IS NULL AND push_until IS NOT NULL AND next_due > $3 THEN $3
                         ELSE next_due END
     WHERE id = $1";

impl PgStore {
    pub(super) async fn put_subscription(
        &self,
        sub: Subscription,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let failures = i64::from(sub.failures);
        let pushes = i64::try_from(sub.pushes).unwrap_or(i64::MAX);
        let rejected = i64::try_from(sub.rejected).unwrap_or(i64::MAX);
        // The node that tends subscriptions hears when this one's next request is due.
        let due = sub.next_attempt.map(|t| t.timestamp_millis().to_string());
        self.execute(
            &format!(
                "WITH pushed AS ({PUSHED_UNTIL})
                 INSERT INTO subscriptions (feed_id, hub, topic, state, secret, nonce, lease_until, next_attempt,
                     failures, error, last_push, pushes, rejected)
                 VALUES ($1, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
                 ON CONFLICT (feed_id) DO UPDATE SET hub = excluded.hub, topic = excluded.topic,
                     state = excluded.state, secret = excluded.secret, nonce = excluded.nonce,
                     lease_until = excluded.lease_until, next_attempt = excluded.next_attempt,
                     failures = excluded.failures, error = excluded.error
                 RETURNING (SELECT pg_notify($17, $16) WHERE $16::text IS NOT NULL)"
            ),
            &[
                &sub.feed_id,
                &sub.pushed_until(),
                &now,
                &sub.hub,
                &sub.topic,
                &sub.state.name(),
                &sub.secret,
                &sub.nonce,
                &sub.lease_until,
                &sub.next_attempt,
                &failures,
                &sub.error,
                &sub.last_push,
                &pushes,
                &rejected,
                &due,
                &super::channel::SUBSCRIPTIONS,
            ],
        )
        .await
        .map(drop)
    }

    pub(super) async fn drop_subscription(&self, feed_id: i64, now: DateTime<Utc>) -> Result<(), StoreError> {
        let none: Option<DateTime<Utc>> = None;
        self.execute(
            &format!(
                "WITH pushed AS ({PUSHED_UNTIL})
                 DELETE FROM subscriptions WHERE feed_id = $1"
            ),
            &[&feed_id, &none, &now],
        )
        .await
        .map(drop)
    }

    pub(super) async fn count_push(
        &self,
        feed_id: i64,
        at: DateTime<Utc>,
        taken: bool,
    ) -> Result<(), StoreError> {
        self.execute(
            "UPDATE subscriptions SET
                 pushes = pushes + CASE WHEN $3 THEN 1 ELSE 0 END,
                 rejected = rejected + CASE WHEN $3 THEN 0 ELSE 1 END,
                 last_push = CASE WHEN $3 THEN $2 ELSE last_push END
             WHERE feed_id = $1",
            &[&feed_id, &at, &taken],
        )
        .await
        .map(drop)
    }

    /// Every subscription, or feed `only`'s.
    pub(super) async fn subscriptions(&self, only: Option<i64>) -> Result<Vec<Subscription>, StoreError> {
        let rows = self
            .query(
                "SELECT feed_id, hub, topic, state, secret, nonce, lease_until, next_attempt, failures, error,
                     last_push, pushes, rejected
                 FROM subscriptions WHERE $1::bigint IS NULL OR feed_id = $1 ORDER BY feed_id",
                &[&only],
            )
            .await?;
        rows.iter()
            .map(from_row)
            .collect::<Result<_, _>>()
            .map_err(|e| self.error(e))
    }
}

impl PgStore {
    pub(super) async fn put_list(&self, list: ListState) -> Result<(), StoreError> {
        let json = |m: &Vec<ListMember>| serde_json::to_value(m).unwrap_or_default();
        let failures = i64::from(list.failures);
        // Every node hears when a list's members change, and loads its feeds again. (The
        // part reading the old row sees it as it was before the statement.)
        self.execute(
            "WITH old AS (SELECT members FROM lists WHERE key = $1)
             INSERT INTO lists (key, etag, last_modified, members, held, fetched, last_success, last_error,
                 failures, next_due)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (key) DO UPDATE SET etag = excluded.etag, last_modified = excluded.last_modified,
                 members = excluded.members, held = excluded.held, fetched = excluded.fetched,
                 last_success = excluded.last_success, last_error = excluded.last_error,
                 failures = excluded.failures, next_due = excluded.next_due
             RETURNING (SELECT pg_notify($11, $1)
                        WHERE NOT EXISTS (SELECT 1 FROM old WHERE old.members = $4::jsonb))",
            &[
                &list.key,
                &list.validators.etag,
                &list.validators.last_modified,
                &json(&list.members),
                &list.held.as_ref().map(json),
                &list.fetched,
                &list.last_success,
                &list.last_error,
                &failures,
                &list.next_due,
                &super::channel::LISTS,
            ],
        )
        .await
        .map(drop)
    }

    pub(super) async fn lists(&self) -> Result<Vec<ListState>, StoreError> {
        let rows = self
            .query(
                "SELECT key, etag, last_modified, members, held, fetched, last_success, last_error, failures,
                     next_due FROM lists ORDER BY key",
                &[],
            )
            .await?;
        // Written by this module from typed values; a value that does not decode is no members.
        let members = |v: serde_json::Value| serde_json::from_value::<Vec<ListMember>>(v).unwrap_or_default();
        rows.iter()
            .map(|r| {
                Ok(ListState {
                    key: r.try_get(0)?,
                    validators: Validators {
                        etag: r.try_get(1)?,
                        last_modified: r.try_get(2)?,
                    },
                    members: members(r.try_get(3)?),
                    held: r.try_get::<_, Option<serde_json::Value>>(4)?.map(members),
                    fetched: r.try_get(5)?,
                    last_success: r.try_get(6)?,
                    last_error: r.try_get(7)?,
                    failures: u32::try_from(r.try_get::<_, i64>(8)?).unwrap_or(0),
                    next_due: r.try_get(9)?,
                })
            })
            .collect::<Result<_, tokio_postgres::Error>>()
            .map_err(|e| self.error(e))
    }
}
