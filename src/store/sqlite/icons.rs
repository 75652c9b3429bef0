//! Feeds' icons: each image once, by the hash of its bytes, and each feed's last look.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

use super::feeds::id_list;
use super::{Db, from_unix};
use crate::model::{IconImage, IconLooked, IconState, IconUpdate, Validators};

impl Db {
    /// Each look in a savepoint of its own, all in the writer's one transaction.
    pub(super) fn record_icons(&mut self, looks: &[IconLooked], now: DateTime<Utc>) -> rusqlite::Result<()> {
        let checked = now.timestamp();
        for look in looks {
            self.savepoint(|db| {
                db.exec(
                    "UPDATE feeds SET icon_due = ?2 WHERE id = ?1",
                    params![look.feed_id, look.next.timestamp()],
                )?;
                db.record_look(look.feed_id, &look.update, checked)
            })?;
        }
        Ok(())
    }

    fn record_look(&mut self, feed_id: i64, update: &IconUpdate, checked: i64) -> rusqlite::Result<()> {
        let db = self;
        match update {
            IconUpdate::Found {
                url,
                image,
                bytes,
                validators,
            } => {
                db.exec(
                    "INSERT INTO icons (hash, media_type, bytes) VALUES (?1, ?2, ?3) ON CONFLICT (hash) DO NOTHING",
                    params![image.hash, image.media_type, bytes],
                )?;
                let old: Option<String> = db
                    .conn
                    .prepare_cached("SELECT hash FROM feed_icons WHERE feed_id = ?1")?
                    .query_row([feed_id], |r| r.get(0))
                    .optional()?
                    .flatten();
                db.exec(
                    "INSERT INTO feed_icons (feed_id, url, hash, etag, last_modified, checked, error)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL)
                     ON CONFLICT (feed_id) DO UPDATE SET url = excluded.url, hash = excluded.hash,
                         etag = excluded.etag, last_modified = excluded.last_modified,
                         checked = excluded.checked, error = NULL",
                    params![
                        feed_id,
                        url,
                        image.hash,
                        validators.etag,
                        validators.last_modified,
                        checked
                    ],
                )?;
                if let Some(old) = old.filter(|o| *o != image.hash) {
                    db.exec(
                        "DELETE FROM icons WHERE hash = ?1
                             AND NOT EXISTS (SELECT 1 FROM feed_icons WHERE hash = ?1)",
                        [old],
                    )?;
                }
                Ok(())
            }
            IconUpdate::Unchanged { validators } => db
                .exec(
                    "UPDATE feed_icons SET checked = ?2, error = NULL, etag = COALESCE(?3, etag),
                         last_modified = COALESCE(?4, last_modified)
                     WHERE feed_id = ?1",
                    params![feed_id, checked, validators.etag, validators.last_modified],
                )
                .map(drop),
            IconUpdate::Missing { error } => db
                .exec(
                    "INSERT INTO feed_icons (feed_id, checked, error) VALUES (?1, ?2, ?3)
                     ON CONFLICT (feed_id) DO UPDATE SET checked = excluded.checked, error = excluded.error",
                    params![feed_id, checked, error],
                )
                .map(drop),
        }
    }

    pub(super) fn icon_state(&self, feed_id: i64) -> rusqlite::Result<Option<IconState>> {
        self.conn
            .prepare_cached(
                "SELECT f.url, f.hash, i.media_type, f.etag, f.last_modified, f.checked, f.error
                 FROM feed_icons f LEFT JOIN icons i ON i.hash = f.hash WHERE f.feed_id = ?1",
            )?
            .query_row([feed_id], |r| {
                let hash: Option<String> = r.get(1)?;
                let media_type: Option<String> = r.get(2)?;
                Ok(IconState {
                    url: r.get(0)?,
                    image: hash
                        .zip(media_type)
                        .map(|(hash, media_type)| IconImage { hash, media_type }),
                    validators: Validators {
                        etag: r.get(3)?,
                        last_modified: r.get(4)?,
                    },
                    checked: from_unix(r.get(5)?),
                    error: r.get(6)?,
                })
            })
            .optional()
    }

    pub(super) fn icons_of(&self, ids: &[i64]) -> rusqlite::Result<HashMap<i64, IconImage>> {
        self.conn
            .prepare_cached(
                "SELECT f.feed_id, f.hash, i.media_type FROM feed_icons f JOIN icons i ON i.hash = f.hash
                 WHERE f.feed_id IN (SELECT value FROM json_each(?1))",
            )?
            .query_map([id_list(ids)], |r| {
                Ok((
                    r.get(0)?,
                    IconImage {
                        hash: r.get(1)?,
                        media_type: r.get(2)?,
                    },
                ))
            })?
            .collect()
    }

    pub(super) fn icon_bytes(&self, hash: &str) -> rusqlite::Result<Option<(String, Vec<u8>)>> {
        self.conn
            .prepare_cached("SELECT media_type, bytes FROM icons WHERE hash = ?1")?
            .query_row([hash], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()
    }
}
