//! Output rows: whether each output's last render could be written, so that an output left
//! stale by a full or read-only disk is shown (`feeds`, /healthz) until a render succeeds.

use chrono::{DateTime, Utc};

use super::sql::params;
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
            Ok(written) => self.conn.execute(
                "INSERT INTO outputs (path, last_error, failing_since, failures, last_written)
                 VALUES (?1, NULL, NULL, 0, CASE WHEN ?3 = 1 THEN CAST(?2 AS BIGINT) END)
                 ON CONFLICT (path) DO UPDATE SET last_error = NULL, failing_since = NULL, failures = 0,
                     last_written = CASE WHEN ?3 = 1 THEN CAST(?2 AS BIGINT) ELSE outputs.last_written END",
                params![path, to_unix(now), written],
            )?,
            Err(reason) => self.conn.execute(
                "INSERT INTO outputs (path, last_error, failing_since, failures) VALUES (?1, ?2, ?3, 1)
                 ON CONFLICT (path) DO UPDATE SET last_error = ?2, failures = outputs.failures + 1,
                     failing_since = COALESCE(outputs.failing_since, ?3)",
                params![path, reason, to_unix(now)],
            )?,
        };
        Ok(())
    }

    /// Every output the store knows of, by path.
    pub fn outputs(&self) -> Result<Vec<OutputState>, StoreError> {
        self.conn.query(
            "SELECT path, last_error, failing_since, failures, last_written FROM outputs ORDER BY path",
            params![],
            |r| {
                Ok(OutputState {
                    path: r.get(0)?,
                    last_error: r.get(1)?,
                    failing_since: r.get::<Option<i64>>(2)?.map(from_unix),
                    failures: r.get(3)?,
                    last_written: r.get::<Option<i64>>(4)?.map(from_unix),
                })
            },
        )
    }
}
