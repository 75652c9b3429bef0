//! Outputs' readers (see `serve::reach`).

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

use super::Db;
use crate::store::{DIRECT_READERS_FOR, READERS_KEPT, ReaderSighting, new_salt};

impl Db {
    pub(super) fn record_readers(
        &mut self,
        seen: &[ReaderSighting],
        now: DateTime<Utc>,
    ) -> rusqlite::Result<()> {
        self.savepoint(|db| {
            for s in seen {
                db.exec(
                    "INSERT INTO readers (output, via, key, count, seen) VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (output, via, key) DO UPDATE SET count = excluded.count,
                         seen = MAX(seen, excluded.seen)",
                    params![
                        s.output,
                        s.via,
                        s.key,
                        i64::try_from(s.count).unwrap_or(i64::MAX),
                        s.seen.timestamp()
                    ],
                )?;
            }
            db.exec(
                "DELETE FROM readers WHERE seen < ?1",
                [(now - READERS_KEPT).timestamp()],
            )
            .map(drop)
        })
    }

    pub(super) fn reader_counts(&self, now: DateTime<Utc>) -> rusqlite::Result<Vec<(String, String, u64)>> {
        self.conn
            .prepare_cached(
                "SELECT output, via, SUM(count) FROM readers
                 WHERE seen >= CASE WHEN via = 'direct' THEN ?1 ELSE ?2 END
                 GROUP BY output, via ORDER BY output, via",
            )?
            .query_map(
                params![
                    (now - DIRECT_READERS_FOR).timestamp(),
                    (now - READERS_KEPT).timestamp()
                ],
                |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)?.try_into().unwrap_or(0))),
            )?
            .collect()
    }

    pub(super) fn secret(&mut self, name: &str) -> rusqlite::Result<String> {
        self.exec(
            "INSERT INTO settings (name, value) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
            [name, &new_salt()],
        )?;
        let salt: Option<String> = self
            .conn
            .prepare_cached("SELECT value FROM settings WHERE name = ?1")?
            .query_row([name], |r| r.get(0))
            .optional()?;
        Ok(salt.unwrap_or_default())
    }
}
