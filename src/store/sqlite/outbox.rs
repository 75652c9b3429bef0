//! The webhook outbox: which entries each output announced, and the deliveries waiting.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

use super::feeds::id_list;
use super::{Db, from_millis};
use crate::store::{Delivery, FORGET_GIVEN_UP, NewDelivery, WebhookState};

impl Db {
    pub(super) fn unannounced(&self, output: &str, shown: &[i64]) -> rusqlite::Result<Option<Vec<i64>>> {
        let primed = self
            .conn
            .prepare_cached("SELECT 1 FROM announcing WHERE output = ?1")?
            .query_row([output], |_| Ok(()))
            .optional()?
            .is_some();
        if !primed {
            return Ok(None);
        }
        // Read back in the order given (newest first, as the output shows them).
        let announced: std::collections::HashSet<i64> = self
            .conn
            .prepare_cached(
                "SELECT entry_id FROM announced
                 WHERE output = ?1 AND entry_id IN (SELECT value FROM json_each(?2))",
            )?
            .query_map(params![output, id_list(shown)], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(Some(
            shown
                .iter()
                .copied()
                .filter(|id| !announced.contains(id))
                .collect(),
        ))
    }

    pub(super) fn announce(
        &mut self,
        output: &str,
        ids: &[i64],
        deliveries: &[NewDelivery],
        now: DateTime<Utc>,
    ) -> rusqlite::Result<()> {
        self.savepoint(|db| {
            db.exec(
                "INSERT INTO announcing (output, since) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                params![output, now.timestamp()],
            )?;
            // An entry retired since the render is not announced (nor is it there to be).
            db.exec(
                "INSERT INTO announced (output, entry_id)
                 SELECT ?1, e.id FROM entries e WHERE e.id IN (SELECT value FROM json_each(?2))
                 ON CONFLICT DO NOTHING",
                params![output, id_list(ids)],
            )?;
            let at = now.timestamp_millis();
            for d in deliveries {
                db.exec(
                    "INSERT INTO deliveries (output, webhook, body, created, next_attempt)
                     VALUES (?1, ?2, ?3, ?4, ?4)",
                    params![output, d.webhook, d.body, at],
                )?;
            }
            Ok(())
        })
    }

    pub(super) fn claim_deliveries(
        &mut self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> rusqlite::Result<Vec<Delivery>> {
        self.exec(
            "DELETE FROM deliveries WHERE failed < ?1",
            [(now - FORGET_GIVEN_UP).timestamp_millis()],
        )?;
        self.conn
            .prepare_cached(
                "UPDATE deliveries SET next_attempt = ?2, attempts = attempts + 1
                 WHERE id IN (SELECT id FROM deliveries WHERE failed IS NULL AND next_attempt <= ?1
                              ORDER BY next_attempt, id LIMIT ?3)
                 RETURNING id, output, webhook, body, created, attempts",
            )?
            .query_map(
                params![
                    now.timestamp_millis(),
                    until.timestamp_millis(),
                    i64::try_from(limit).unwrap_or(i64::MAX)
                ],
                |r| {
                    Ok(Delivery {
                        id: r.get(0)?,
                        output: r.get(1)?,
                        webhook: r.get(2)?,
                        body: r.get(3)?,
                        created: from_millis(r.get(4)?),
                        attempts: r.get(5)?,
                    })
                },
            )?
            .collect()
    }

    pub(super) fn delivered(&mut self, id: i64) -> rusqlite::Result<()> {
        self.exec("DELETE FROM deliveries WHERE id = ?1", [id]).map(drop)
    }

    pub(super) fn delivery_failed(
        &mut self,
        id: i64,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> rusqlite::Result<()> {
        match retry_at {
            Some(at) => self.exec(
                "UPDATE deliveries SET last_error = ?2, next_attempt = ?3 WHERE id = ?1",
                params![id, error, at.timestamp_millis()],
            ),
            None => self.exec(
                "UPDATE deliveries SET last_error = ?2, failed = ?3 WHERE id = ?1",
                params![id, error, now.timestamp_millis()],
            ),
        }
        .map(drop)
    }

    pub(super) fn next_delivery(&self) -> rusqlite::Result<Option<DateTime<Utc>>> {
        let at: Option<i64> = self
            .conn
            .prepare_cached("SELECT MIN(next_attempt) FROM deliveries WHERE failed IS NULL")?
            .query_row([], |r| r.get(0))?;
        Ok(at.map(from_millis))
    }

    pub(super) fn webhook_states(&self) -> rusqlite::Result<Vec<WebhookState>> {
        self.conn
            .prepare_cached(
                "SELECT output, webhook,
                     SUM(failed IS NULL), MIN(CASE WHEN failed IS NULL THEN created END), SUM(failed IS NOT NULL),
                     (SELECT d2.last_error FROM deliveries d2
                      WHERE d2.output = d.output AND d2.webhook = d.webhook AND d2.last_error IS NOT NULL
                      ORDER BY d2.id DESC LIMIT 1)
                 FROM deliveries d GROUP BY output, webhook ORDER BY output, webhook",
            )?
            .query_map([], |r| {
                Ok(WebhookState {
                    output: r.get(0)?,
                    webhook: r.get(1)?,
                    pending: r.get::<_, i64>(2)?.try_into().unwrap_or(0),
                    oldest: r.get::<_, Option<i64>>(3)?.map(from_millis),
                    failed: r.get::<_, i64>(4)?.try_into().unwrap_or(0),
                    last_error: r.get(5)?,
                })
            })?
            .collect()
    }
}
