//! Outputs' readers (see `serve::reach`).

use chrono::{DateTime, Utc};

use super::PgStore;
use crate::store::{DIRECT_READERS_FOR, READERS_KEPT, ReaderSighting, StoreError, new_salt};

impl PgStore {
    pub(super) async fn record_readers(
        &self,
        seen: Vec<ReaderSighting>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let outputs: Vec<&str> = seen.iter().map(|s| s.output.as_str()).collect();
        let vias: Vec<&str> = seen.iter().map(|s| s.via.as_str()).collect();
        let keys: Vec<&str> = seen.iter().map(|s| s.key.as_str()).collect();
        let counts: Vec<i64> = seen
            .iter()
            .map(|s| i64::try_from(s.count).unwrap_or(i64::MAX))
            .collect();
        let times: Vec<DateTime<Utc>> = seen.iter().map(|s| s.seen).collect();
        self.execute(
            "WITH forgotten AS (DELETE FROM readers WHERE seen < $6)
             INSERT INTO readers (output, via, key, count, seen)
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::timestamptz[])
             ON CONFLICT (output, via, key) DO UPDATE SET count = excluded.count,
                 seen = GREATEST(readers.seen, excluded.seen)",
            &[&outputs, &vias, &keys, &counts, &times, &(now - READERS_KEPT)],
        )
        .await?;
        Ok(())
    }

    pub(super) async fn reader_counts(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<(String, String, u64)>, StoreError> {
        let rows = self
            .query(
                "SELECT output, via, SUM(count)::bigint FROM readers
                 WHERE seen >= CASE WHEN via = 'direct' THEN $1::timestamptz ELSE $2::timestamptz END
                 GROUP BY output, via ORDER BY output, via",
                &[&(now - DIRECT_READERS_FOR), &(now - READERS_KEPT)],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get(0)?,
                    r.try_get(1)?,
                    u64::try_from(r.try_get::<_, i64>(2)?).unwrap_or(0),
                ))
            })
            .collect::<Result<_, tokio_postgres::Error>>()
            .map_err(|e| self.error(e))
    }

    pub(super) async fn secret(&self, name: &str) -> Result<String, StoreError> {
        let rows = self
            .query(
                "WITH made AS (
                     INSERT INTO settings (name, value) VALUES ($2, $1)
                     ON CONFLICT DO NOTHING RETURNING value
                 )
                 SELECT value FROM made UNION ALL SELECT value FROM settings WHERE name = $2",
                &[&new_salt(), &name],
            )
            .await?;
        // Nodes starting together: another node's insert won, after this statement's snapshot
        // was taken, so neither part saw a value. A second statement sees the winner's.
        let rows = match rows.is_empty() {
            true => {
                self.query("SELECT value FROM settings WHERE name = $1", &[&name])
                    .await?
            }
            false => rows,
        };
        let row = rows.first().ok_or_else(|| StoreError::Backend {
            store: self.describe.clone(),
            source: format!("the store's secret {name} is missing").into(),
        })?;
        row.try_get(0).map_err(|e| self.error(e))
    }
}
