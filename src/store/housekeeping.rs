//! Keeping a long-running database small and fast: retention with tombstones, expiry of old
//! tombstones, `PRAGMA optimize`, WAL checkpoints and incremental vacuum.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::params;

use super::{Store, StoreError, to_unix};

/// A tombstone whose key its feed has not shown for this long can go: the entry will not
/// come back.
pub const TOMBSTONE_TTL: Duration = Duration::from_secs(90 * 24 * 60 * 60);
/// Pages returned to the file system per housekeeping run (4 KiB each).
const VACUUM_PAGES: u32 = 2048;

/// What may be removed.
#[derive(Debug, Clone)]
pub struct Retention {
    /// Entries older than this many days go (0: no age limit).
    pub keep_days: u32,
    /// Entries beyond this many per feed, oldest first, go (0: no count limit).
    pub keep_per_feed: usize,
    /// Entries some output shows now: they stay whatever their age.
    pub protected: HashSet<i64>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HousekeepingReport {
    pub entries_removed: usize,
    pub tombstones_expired: usize,
}

impl Store {
    pub fn housekeeping(
        &mut self,
        retention: &Retention,
        now: DateTime<Utc>,
    ) -> Result<HousekeepingReport, StoreError> {
        let protected = &retention.protected;
        let cutoff = if retention.keep_days > 0 {
            to_unix(now) - i64::from(retention.keep_days) * 86_400
        } else {
            i64::MIN
        };
        let keep = if retention.keep_per_feed > 0 {
            i64::try_from(retention.keep_per_feed).unwrap_or(i64::MAX)
        } else {
            i64::MAX
        };
        let candidates: Vec<i64> = {
            let mut stmt = self.conn.prepare_cached(
                "SELECT id FROM (
                     SELECT id, published,
                            ROW_NUMBER() OVER (PARTITION BY feed_id ORDER BY published DESC, id DESC) AS rank
                     FROM entries)
                 WHERE published < ?1 OR rank > ?2",
            )?;
            stmt.query_map(params![cutoff, keep], |r| r.get(0))?
                .collect::<Result<Vec<i64>, _>>()?
        };
        let doomed: Vec<i64> = candidates
            .into_iter()
            .filter(|id| !protected.contains(id))
            .collect();
        let entries_removed = self.retire_entries(&doomed, now)?;
        let tombstone_cutoff = to_unix(now) - TOMBSTONE_TTL.as_secs() as i64;
        let tombstones_expired = self
            .conn
            .prepare_cached("DELETE FROM tombstones WHERE last_seen < ?1")?
            .execute([tombstone_cutoff])?;
        // Keep the query planner's statistics fresh (SQLite's recommendation for long-lived
        // connections), fold the WAL back into the database, and give free pages back.
        self.conn.execute_batch("PRAGMA optimize;")?;
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        self.conn
            .execute_batch(&format!("PRAGMA incremental_vacuum({VACUUM_PAGES});"))?;
        Ok(HousekeepingReport {
            entries_removed,
            tombstones_expired,
        })
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::model::{Entry, FeedMeta, Validators};
    use crate::store::ParsedBatch;

    #[test]
    fn retention_keeps_what_outputs_show_and_leaves_tombstones() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("t.db")).unwrap();
        let url = "https://e.org/f".to_string();
        let feed = store
            .ensure_feeds(std::slice::from_ref(&url), Utc::now())
            .unwrap()[0]
            .id;
        let day = |d: u32| Utc.with_ymd_and_hms(2026, 1, d, 12, 0, 0).unwrap();
        let entries = crate::store::entries::tests::finished(
            (1..=10)
                .map(|d| Entry {
                    guid: Some(format!("e{d}")),
                    title: format!("day {d}"),
                    published: Some(day(d)),
                    ..Entry::default()
                })
                .collect(),
        );
        let meta = FeedMeta::default();
        let validators = Validators::default();
        let batch = ParsedBatch {
            meta: &meta,
            validators: &validators,
            body_hash: "h",
            entries: &entries,
            fresh_until: None,
            new_feed_entries: 100,
            unchanged_segments: &[],
            scheduled: &crate::store::Scheduled {
                next_due: None,
                key: String::new(),
            },
        };
        store.store_parsed(feed, &batch, day(20)).unwrap();

        // Keep 5 days (from Jan 20: entries of Jan 15+ survive by age), at most 3 per feed,
        // but outputs show the newest 4.
        let (shown, _) = store.newest_entries(std::slice::from_ref(&url), 4).unwrap();
        let retention = Retention {
            keep_days: 5,
            keep_per_feed: 3,
            protected: shown.iter().map(|e| e.id).collect(),
        };
        let report = store.housekeeping(&retention, day(20)).unwrap();
        assert_eq!(report.entries_removed, 6);
        let (left, _) = store.newest_entries(std::slice::from_ref(&url), 100).unwrap();
        let titles: Vec<_> = left.iter().map(|e| e.entry.title.as_str()).collect();
        assert_eq!(titles, ["day 10", "day 9", "day 8", "day 7"]);

        // The removed entries are still in the feed: they do not come back.
        let outcome = store.store_parsed(feed, &batch, day(21)).unwrap();
        assert_eq!(outcome.new, 0);
        assert!(store.integrity_check().unwrap().is_ok());
    }
}
