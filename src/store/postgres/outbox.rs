//! The webhook outbox: which entries each output announced, and the deliveries waiting. A
//! claim takes due deliveries with `FOR UPDATE SKIP LOCKED`, so each is sent by one node.

use chrono::{DateTime, Utc};

use super::PgStore;
use crate::store::{Delivery, FORGET_GIVEN_UP, NewDelivery, StoreError, WebhookState};

impl PgStore {
    pub(super) async fn unannounced(
        &self,
        output: String,
        shown: Vec<i64>,
    ) -> Result<Option<Vec<i64>>, StoreError> {
        let rows = self
            .query(
                "SELECT EXISTS (SELECT 1 FROM announcing WHERE output = $1),
                     ARRAY(SELECT entry_id FROM announced WHERE output = $1 AND entry_id = ANY($2))",
                &[&output, &shown],
            )
            .await?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        let read =
            || -> Result<(bool, Vec<i64>), tokio_postgres::Error> { Ok((row.try_get(0)?, row.try_get(1)?)) };
        let (primed, announced) = read().map_err(|e| self.error(e))?;
        if !primed {
            return Ok(None);
        }
        let announced: std::collections::HashSet<i64> = announced.into_iter().collect();
        Ok(Some(
            shown.into_iter().filter(|id| !announced.contains(id)).collect(),
        ))
    }

    pub(super) async fn announce(
        &self,
        output: String,
        ids: Vec<i64>,
        deliveries: Vec<NewDelivery>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let webhooks: Vec<&str> = deliveries.iter().map(|d| d.webhook.as_str()).collect();
        let bodies: Vec<&str> = deliveries.iter().map(|d| d.body.as_str()).collect();
        // One statement: the announcement and its deliveries are written together or not at all.
        self.execute(
            "WITH primed AS (
                 INSERT INTO announcing (output, since) VALUES ($1, $2) ON CONFLICT DO NOTHING
             ), marked AS (
                 INSERT INTO announced (output, entry_id)
                 SELECT $1, e.id FROM entries e WHERE e.id = ANY($3)
                 ON CONFLICT DO NOTHING
             )
             INSERT INTO deliveries (output, webhook, body, created, next_attempt)
             SELECT $1, w, b, $2, $2 FROM unnest($4::text[], $5::text[]) WITH ORDINALITY AS d(w, b, n)
             ORDER BY n",
            &[&output, &now, &ids, &webhooks, &bodies],
        )
        .await?;
        Ok(())
    }

    pub(super) async fn claim_deliveries(
        &self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.execute(
            "DELETE FROM deliveries WHERE failed < $1",
            &[&(now - FORGET_GIVEN_UP)],
        )
        .await?;
        let rows = self
            .query(
                "UPDATE deliveries SET next_attempt = $2, attempts = attempts + 1
                 WHERE id IN (SELECT id FROM deliveries WHERE failed IS NULL AND next_attempt <= $1
                              ORDER BY next_attempt, id LIMIT $3 FOR UPDATE SKIP LOCKED)
                 RETURNING id, output, webhook, body, created, attempts",
                &[&now, &until, &limit],
            )
            .await?;
        let mut claimed = rows
            .iter()
            .map(|r| {
                Ok(Delivery {
                    id: r.try_get(0)?,
                    output: r.try_get(1)?,
                    webhook: r.try_get(2)?,
                    body: r.try_get(3)?,
                    created: r.try_get(4)?,
                    attempts: u32::try_from(r.try_get::<_, i64>(5)?).unwrap_or(u32::MAX),
                })
            })
            .collect::<Result<Vec<_>, tokio_postgres::Error>>()
            .map_err(|e| self.error(e))?;
        // RETURNING keeps no order: oldest first, as SQLite's.
        claimed.sort_by_key(|d| d.id);
        Ok(claimed)
    }

    pub(super) async fn delivered(&self, id: i64) -> Result<(), StoreError> {
        self.execute("DELETE FROM deliveries WHERE id = $1", &[&id])
            .await?;
        Ok(())
    }

    pub(super) async fn delivery_failed(
        &self,
        id: i64,
        error: String,
        retry_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.execute(
            "UPDATE deliveries SET last_error = $2,
                 next_attempt = COALESCE($3::timestamptz, next_attempt),
                 failed = CASE WHEN $3::timestamptz IS NULL THEN $4::timestamptz ELSE NULL END
             WHERE id = $1",
            &[&id, &error, &retry_at, &now],
        )
        .await?;
        Ok(())
    }

    pub(super) async fn next_delivery(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let rows = self
            .query(
                "SELECT MIN(next_attempt) FROM deliveries WHERE failed IS NULL",
                &[],
            )
            .await?;
        rows.first()
            .map_or(Ok(None), |r| r.try_get(0))
            .map_err(|e| self.error(e))
    }

    pub(super) async fn webhook_states(&self) -> Result<Vec<WebhookState>, StoreError> {
        let rows = self
            .query(
                "SELECT output, webhook,
                     COUNT(*) FILTER (WHERE failed IS NULL), MIN(created) FILTER (WHERE failed IS NULL),
                     COUNT(*) FILTER (WHERE failed IS NOT NULL),
                     (SELECT d2.last_error FROM deliveries d2
                      WHERE d2.output = d.output AND d2.webhook = d.webhook AND d2.last_error IS NOT NULL
                      ORDER BY d2.id DESC LIMIT 1)
                 FROM deliveries d GROUP BY output, webhook ORDER BY output, webhook",
                &[],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(WebhookState {
                    output: r.try_get(0)?,
                    webhook: r.try_get(1)?,
                    pending: usize::try_from(r.try_get::<_, i64>(2)?).unwrap_or(0),
                    oldest: r.try_get(3)?,
                    failed: usize::try_from(r.try_get::<_, i64>(4)?).unwrap_or(0),
                    last_error: r.try_get(5)?,
                })
            })
            .collect::<Result<_, tokio_postgres::Error>>()
            .map_err(|e| self.error(e))
    }
}
