//! Feed rows: one per source URL, holding what the next poll needs (validators, body hash) and
//! what operators need (last success, last error, consecutive failures).

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, Row, params};

use super::{Store, StoreError, from_unix, to_unix};
use crate::model::{FeedState, Validators};

/// What happened to a feed in a poll that did not store entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedUpdate {
    /// 304, or a body identical to the last one parsed. New validators replace old ones when
    /// the server sent some.
    Unchanged {
        validators: Option<Validators>,
    },
    Failed {
        error: String,
    },
}

const FEED_COLUMNS: &str = "id, url, title, site_url, feed_id, etag, last_modified, body_hash, \
                            last_fetch, last_success, last_error, failures";

fn feed_from_row(row: &Row<'_>) -> rusqlite::Result<FeedState> {
    let opt_time =
        |i| -> rusqlite::Result<Option<DateTime<Utc>>> { Ok(row.get::<_, Option<i64>>(i)?.map(from_unix)) };
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
        last_fetch: opt_time(8)?,
        last_success: opt_time(9)?,
        last_error: row.get(10)?,
        consecutive_failures: row.get(11)?,
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
        let tx = self.conn.transaction()?;
        let mut states = Vec::with_capacity(urls.len());
        {
            let mut insert =
                tx.prepare_cached("INSERT OR IGNORE INTO feeds (url, created) VALUES (?1, ?2)")?;
            let mut select =
                tx.prepare_cached(&format!("SELECT {FEED_COLUMNS} FROM feeds WHERE url = ?1"))?;
            for url in urls {
                insert.execute(params![url, to_unix(now)])?;
                states.push(select.query_row([url], feed_from_row)?);
            }
        }
        tx.commit()?;
        Ok(states)
    }

    /// One feed by its source URL.
    pub fn feed(&self, url: &str) -> Result<Option<FeedState>, StoreError> {
        Ok(self
            .conn
            .prepare_cached(&format!("SELECT {FEED_COLUMNS} FROM feeds WHERE url = ?1"))?
            .query_row([url], feed_from_row)
            .optional()?)
    }

    /// Records a poll of `feed_id` that stored no entries.
    pub fn record_feed(
        &mut self,
        feed_id: i64,
        update: &FeedUpdate,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        match update {
            FeedUpdate::Unchanged { validators } => {
                self.conn
                    .prepare_cached(
                        "UPDATE feeds SET last_fetch = ?2, last_success = ?2, last_error = NULL, failures = 0,
                             etag = COALESCE(?3, etag), last_modified = COALESCE(?4, last_modified)
                         WHERE id = ?1",
                    )?
                    .execute(params![
                        feed_id,
                        to_unix(now),
                        validators.as_ref().and_then(|v| v.etag.as_deref()),
                        validators.as_ref().and_then(|v| v.last_modified.as_deref()),
                    ])?;
            }
            FeedUpdate::Failed { error } => {
                self.conn
                    .prepare_cached(
                        "UPDATE feeds SET last_fetch = ?2, last_error = ?3, failures = failures + 1 WHERE id = ?1",
                    )?
                    .execute(params![feed_id, to_unix(now), error])?;
            }
        }
        Ok(())
    }
}
