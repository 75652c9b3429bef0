//! Output rows: whether each output's last render could be written, so that an output left
//! stale by a full or read-only disk is shown (`feeds`, /healthz) until a render succeeds.

use chrono::{DateTime, Utc};
use rusqlite::params;

use super::{Store, StoreError, from_unix, to_unix};
use crate::model::OutputState;

impl Store {
    /// Records a render of the output at `path`: `Err(reason)` when it could not be written;
    /// `written` says whether its file changed.
    pub(crate) fn record_output(
        &mut self,
        path: &str,
        result: Result<bool, &str>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        match result {
            Ok(written) => self
                .conn
                .prepare_cached(
                    "INSERT INTO outputs (path, last_error, failing_since, failures, last_written)
                     VALUES (?1, NULL, NULL, 0, CASE WHEN ?3 THEN ?2 END)
                     ON CONFLICT (path) DO UPDATE SET last_error = NULL, failing_since = NULL, failures = 0,
                         last_written = CASE WHEN ?3 THEN ?2 ELSE last_written END",
                )?
                .execute(params![path, to_unix(now), written])?,
            Err(reason) => self
                .conn
                .prepare_cached(
                    "INSERT INTO outputs (path, last_error, failing_since, failures) VALUES (?1, ?2, ?3, 1)
                     ON CONFLICT (path) DO UPDATE SET last_error = ?2, failures = failures + 1,
                         failing_since = COALESCE(failing_since, ?3)",
                )?
                .execute(params![path, reason, to_unix(now)])?,
        };
        Ok(())
    }

    /// Every output the store knows of, by path.
    pub fn outputs(&self) -> Result<Vec<OutputState>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT path, last_error, failing_since, failures, last_written FROM outputs ORDER BY path",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(OutputState {
                path: r.get(0)?,
                last_error: r.get(1)?,
                failing_since: r.get::<_, Option<i64>>(2)?.map(from_unix),
                failures: r.get(3)?,
                last_written: r.get::<_, Option<i64>>(4)?.map(from_unix),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
