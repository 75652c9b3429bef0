//! Feeds' icons: each image once, by the hash of its bytes, and each feed's last look; one
//! statement per look, each its own commit. Not one transaction for a batch of looks: it would
//! hold the rows of the images it inserts until the end, and two nodes that found the same two
//! new images in the other order would deadlock.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::PgStore;
use crate::model::{IconImage, IconLooked, IconState, IconUpdate, Validators};
use crate::store::StoreError;

impl PgStore {
    pub(super) async fn record_icons(
        &self,
        looks: Vec<IconLooked>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        for look in looks {
            self.record_look(look, now).await?;
        }
        Ok(())
    }

    /// One look's statement; each moves the feed's next look with it.
    async fn record_look(&self, look: IconLooked, now: DateTime<Utc>) -> Result<(), StoreError> {
        let IconLooked {
            feed_id,
            update,
            next,
        } = look;
        match update {
            IconUpdate::Found {
                url,
                image,
                bytes,
                validators,
            } => {
                // Every part sees the tables as they were before the statement: the old image
                // goes when no feed but this one had it.
                self.execute("WITH due AS (
                         UPDATE feeds SET icon_due = $9 WHERE id = $1
                     ), image AS (
                         INSERT INTO icons (hash, media_type, bytes) VALUES ($2, $3, $4)
                         ON CONFLICT (hash) DO NOTHING
                     ), old AS (
                         SELECT hash FROM feed_icons WHERE feed_id = $1 AND hash <> $2
                     ), look AS (
                         INSERT INTO feed_icons (feed_id, url, hash, etag, last_modified, checked, error)
                         VALUES ($1, $5, $2, $6, $7, $8, NULL)
                         ON CONFLICT (feed_id) DO UPDATE SET url = excluded.url, hash = excluded.hash,
                             etag = excluded.etag, last_modified = excluded.last_modified,
                             checked = excluded.checked, error = NULL
                     )
                     DELETE FROM icons WHERE hash IN (SELECT hash FROM old)
                         AND NOT EXISTS (SELECT 1 FROM feed_icons f WHERE f.hash = icons.hash AND f.feed_id <> $1)",
                    &[
                        &feed_id,
                        &image.hash,
                        &image.media_type,
                        &bytes,
                        &url,
                        &validators.etag,
                        &validators.last_modified,
                        &now,
                        &next,
                    ],
                )
                .await?;
            }
            IconUpdate::Unchanged { validators } => {
                self.execute(
                    "WITH due AS (UPDATE feeds SET icon_due = $5 WHERE id = $1)
                     UPDATE feed_icons SET checked = $2, error = NULL, etag = COALESCE($3, etag),
                         last_modified = COALESCE($4, last_modified)
                     WHERE feed_id = $1",
                    &[&feed_id, &now, &validators.etag, &validators.last_modified, &next],
                )
                .await?;
            }
            IconUpdate::Missing { error } => {
                self.execute(
                    "WITH due AS (UPDATE feeds SET icon_due = $4 WHERE id = $1)
                     INSERT INTO feed_icons (feed_id, checked, error) VALUES ($1, $2, $3)
                     ON CONFLICT (feed_id) DO UPDATE SET checked = excluded.checked, error = excluded.error",
                    &[&feed_id, &now, &error, &next],
                )
                .await?;
            }
        }
        Ok(())
    }

    pub(super) async fn icon_state(&self, feed_id: i64) -> Result<Option<IconState>, StoreError> {
        let rows = self
            .query(
                "SELECT f.url, f.hash, i.media_type, f.etag, f.last_modified, f.checked, f.error
                 FROM feed_icons f LEFT JOIN icons i ON i.hash = f.hash WHERE f.feed_id = $1",
                &[&feed_id],
            )
            .await?;
        let Some(r) = rows.first() else {
            return Ok(None);
        };
        let read = || -> Result<IconState, tokio_postgres::Error> {
            let hash: Option<String> = r.try_get(1)?;
            let media_type: Option<String> = r.try_get(2)?;
            Ok(IconState {
                url: r.try_get(0)?,
                image: hash
                    .zip(media_type)
                    .map(|(hash, media_type)| IconImage { hash, media_type }),
                validators: Validators {
                    etag: r.try_get(3)?,
                    last_modified: r.try_get(4)?,
                },
                checked: r.try_get(5)?,
                error: r.try_get(6)?,
            })
        };
        read().map(Some).map_err(|e| self.error(e))
    }

    pub(super) async fn icons_of(&self, ids: Vec<i64>) -> Result<HashMap<i64, IconImage>, StoreError> {
        let rows = self
            .query(
                "SELECT f.feed_id, f.hash, i.media_type FROM feed_icons f JOIN icons i ON i.hash = f.hash
                 WHERE f.feed_id = ANY($1)",
                &[&ids],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get(0)?,
                    IconImage {
                        hash: r.try_get(1)?,
                        media_type: r.try_get(2)?,
                    },
                ))
            })
            .collect::<Result<_, tokio_postgres::Error>>()
            .map_err(|e| self.error(e))
    }

    pub(super) async fn icon_bytes(&self, hash: String) -> Result<Option<(String, Vec<u8>)>, StoreError> {
        let rows = self
            .query("SELECT media_type, bytes FROM icons WHERE hash = $1", &[&hash])
            .await?;
        rows.first()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .transpose()
            .map_err(|e: tokio_postgres::Error| self.error(e))
    }
}
