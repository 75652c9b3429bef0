//! Output rows: whether each output's last render could be written, so that an output left
//! stale by a full or read-only disk is shown (`feeds`, /healthz) until a render succeeds.

use chrono::{DateTime, Utc};
use rusqlite::params;

use super::{Db, from_unix};
use crate::model::OutputState;

impl Db {
    pub(super) fn record_outputs(
        &mut self,
        outcomes: &[(String, Result<bool, String>)],
        now: DateTime<Utc>,
    ) -> rusqlite::Result<()> {
        for (path, result) in outcomes {
            match result {
                Ok(written) => self.exec(
                    "INSERT INTO outputs (path, last_error, failing_since, failures, last_written)
                     VALUES (?1, NULL, NULL, 0, CASE WHEN ?3 THEN ?2 END)
                     ON CONFLICT (path) DO UPDATE SET last_error = NULL, failing_since = NULL, failures = 0,
                         last_written = CASE WHEN ?3 THEN ?2 ELSE outputs.last_written END",
                    params![path, now.timestamp(), written],
                )?,
                Err(reason) => self.exec(
                    "INSERT INTO outputs (path, last_error, failing_since, failures) VALUES (?1, ?2, ?3, 1)
                     ON CONFLICT (path) DO UPDATE SET last_error = ?2, failures = outputs.failures + 1,
                         failing_since = COALESCE(outputs.failing_since, ?3)",
                    params![path, reason, now.timestamp()],
                )?,
            };
        }
        Ok(())
    }

    pub(super) fn outputs(&self) -> rusqlite::Result<Vec<OutputState>> {
        self.conn
            .prepare_cached(
                "SELECT path, last_error, failing_since, failures, last_written FROM outputs ORDER BY path",
            )?
            .query_map([], |r| {
                Ok(OutputState {
                    path: r.get(0)?,
                    last_error: r.get(1)?,
                    failing_since: r.get::<_, Option<i64>>(2)?.map(from_unix),
                    failures: r.get(3)?,
                    last_written: r.get::<_, Option<i64>>(4)?.map(from_unix),
                })
            })?
            .collect()
    }
}
