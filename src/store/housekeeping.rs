//! Keeping a long-running database small and fast: retention with tombstones, expiry of old
//! tombstones, `PRAGMA optimize` and incremental vacuum.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::params;

use super::{Store, StoreError, StoreHandle, to_unix};

/// A tombstone whose key its feed has not shown for this long can go: the entry will not
/// come back.
pub(crate) const TOMBSTONE_TTL: Duration = Duration::from_secs(90 * 24 * 60 * 60);
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
    /// Writer steps taken (deletion batches, vacuum steps), and the longest of them: how
    /// long polls could wait on housekeeping at most.
    pub steps: usize,
    pub longest_step: Duration,
    /// Which kind of step that was ("retire", "tombstones", "optimize", "vacuum").
    pub longest_kind: &'static str,
}

/// A writer step aims at this long, so that no poll waits on housekeeping much longer. Well
/// under the 100 ms a poll may wait at most: on a store of 10,000,000 entries one batch can
/// take several times as long as the one before it.
const STEP_BUDGET: Duration = Duration::from_millis(20);
/// Entries retired per step to start with; the size then follows how long steps take.
const FIRST_BATCH: usize = 500;

/// Retention, tombstone expiry, `PRAGMA optimize` and incremental vacuum,
/// in steps: what to remove is found on a reader (the writer is not held while 10,000,000
/// entries are ranked), then removed in batches sized to take about `STEP_BUDGET` each,
/// with polls' writes served between them.
pub async fn housekeeping(
    store: &StoreHandle,
    retention: Retention,
    now: DateTime<Utc>,
) -> Result<HousekeepingReport, StoreError> {
    let mut report = HousekeepingReport::default();
    let (keep_days, keep_per_feed) = (retention.keep_days, retention.keep_per_feed);
    let mut doomed = store
        .read(move |s| s.retention_candidates(keep_days, keep_per_feed, now))
        .await?;
    doomed.retain(|id| !retention.protected.contains(id));
    let mut batch = FIRST_BATCH;
    let step = |report: &mut HousekeepingReport, kind: &'static str, took: Duration| {
        report.steps += 1;
        if took > report.longest_step {
            report.longest_step = took;
            report.longest_kind = kind;
        }
    };
    for _ in 0..MAX_STEPS {
        if doomed.is_empty() {
            break;
        }
        let chunk: Vec<i64> = doomed.drain(..batch.min(doomed.len())).collect();
        let (removed, took) = store
            .call(move |s| {
                let started = std::time::Instant::now();
                let removed = s.retire_entries(&chunk, now)?;
                Ok((removed, started.elapsed()))
            })
            .await?;
        report.entries_removed += removed;
        step(&mut report, "retire", took);
        batch = next_batch(batch, took);
    }
    let tombstone_cutoff = to_unix(now) - TOMBSTONE_TTL.as_secs() as i64;
    let mut batch = FIRST_BATCH;
    for _ in 0..MAX_STEPS {
        let limit = batch;
        let (expired, took) = store
            .call(move |s| {
                let started = std::time::Instant::now();
                let expired = s.expire_tombstones(tombstone_cutoff, limit)?;
                Ok((expired, started.elapsed()))
            })
            .await?;
        report.tombstones_expired += expired;
        step(&mut report, "tombstones", took);
        if expired < limit {
            break;
        }
        batch = next_batch(batch, took);
    }
    // Fresh planner statistics (SQLite's advice for long-lived connections), one index per
    // writer step: `PRAGMA optimize` names the tables whose statistics went stale, and
    // analysing such a table at once (five indexes of 10,000,000 entries) held the writer
    // for 300 ms. Each index is sampled (`analysis_limit`), not read whole.
    let (stale, took) = store
        .call(|s| {
            let started = std::time::Instant::now();
            let stale = s.stale_indexes()?;
            Ok((stale, started.elapsed()))
        })
        .await?;
    step(&mut report, "optimize", took);
    for index in stale.into_iter().take(MAX_STEPS) {
        let took = store
            .call(move |s| {
                let started = std::time::Instant::now();
                s.analyze_index(&index)?;
                Ok(started.elapsed())
            })
            .await?;
        step(&mut report, "optimize", took);
    }
    // Free pages go back to the file system a bounded number per step, until none are left.
    let mut pages = VACUUM_PAGES;
    for _ in 0..MAX_STEPS {
        let (left, took) = store
            .call(move |s| {
                let started = std::time::Instant::now();
                s.conn
                    .execute_batch(&format!("PRAGMA incremental_vacuum({pages});"))?;
                let left: i64 = s.conn.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
                Ok((left, started.elapsed()))
            })
            .await?;
        step(&mut report, "vacuum", took);
        pages = u32::try_from(next_batch(pages as usize, took)).unwrap_or(VACUUM_PAGES);
        if left == 0 {
            break;
        }
    }
    Ok(report)
}

/// However much there is to do, one run takes at most this many steps of each kind (the
/// rest waits for the next run).
const MAX_STEPS: usize = 100_000;

/// The next batch size after one of `size` took `took`: aiming at [`STEP_BUDGET`], growing by
/// at most half, never below 16.
fn next_batch(size: usize, took: Duration) -> usize {
    let took = took.max(Duration::from_micros(100));
    let scaled = (size as f64 * STEP_BUDGET.as_secs_f64() / took.as_secs_f64()) as usize;
    scaled.clamp(16, (size + size / 2).max(16))
}

impl Store {
    /// The indexes of the tables `PRAGMA optimize` would analyse now (their row counts moved
    /// far from what the statistics say, or they were never analysed), without analysing.
    fn stale_indexes(&self) -> Result<Vec<String>, StoreError> {
        // 0x10013: report instead of running (0x01), ANALYZE where it helps (0x02) with a
        // limit (0x10), looking at every table, not only the ones this connection used.
        let mut stmt = self.conn.prepare("PRAGMA optimize(0x10013)")?;
        let statements: Vec<String> = stmt.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
        let mut indexes = Vec::new();
        for statement in statements {
            // Each line is `ANALYZE "main"."TABLE"`.
            let Some(table) = statement.rsplit('.').next() else {
                continue;
            };
            let table = table.trim_matches('"').replace("\"\"", "\"");
            let mut list = self
                .conn
                .prepare("SELECT name FROM pragma_index_list(?1) ORDER BY name")?;
            let names: Vec<String> = list
                .query_map([&table], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            if names.is_empty() {
                // A table without indexes has one statistic, its row count.
                indexes.push(table);
            } else {
                indexes.extend(names);
            }
        }
        Ok(indexes)
    }

    /// Analyses one index (or a table without indexes) from a sample of its rows.
    fn analyze_index(&self, name: &str) -> Result<(), StoreError> {
        let quoted = name.replace('"', "\"\"");
        self.conn.execute_batch(&format!(
            "PRAGMA analysis_limit = 400; ANALYZE \"main\".\"{quoted}\";"
        ))?;
        Ok(())
    }

    /// The entries retention would remove: older than `keep_days`, or past the newest
    /// `keep_per_feed` of their feed. One walk of the per-feed index, without reading rows,
    /// meant for a reader connection.
    pub(crate) fn retention_candidates(
        &self,
        keep_days: u32,
        keep_per_feed: usize,
        now: DateTime<Utc>,
    ) -> Result<Vec<i64>, StoreError> {
        if keep_days == 0 && keep_per_feed == 0 {
            return Ok(Vec::new());
        }
        let cutoff = if keep_days > 0 {
            to_unix(now) - i64::from(keep_days) * 86_400
        } else {
            i64::MIN
        };
        let keep = if keep_per_feed > 0 {
            keep_per_feed
        } else {
            usize::MAX
        };
        let mut stmt = self.conn.prepare_cached(
            "SELECT feed_id, published, id FROM entries INDEXED BY entries_by_feed ORDER BY feed_id",
        )?;
        let mut rows = stmt.query([])?;
        let mut doomed = Vec::new();
        let mut feed: Vec<(i64, i64)> = Vec::new();
        let mut current = None;
        let judge = |feed: &mut Vec<(i64, i64)>, doomed: &mut Vec<i64>| {
            // Newest first, hidden or not.
            feed.sort_unstable_by(|a, b| b.cmp(a));
            for (rank, (published, id)) in feed.drain(..).enumerate() {
                if published < cutoff || rank >= keep {
                    doomed.push(id);
                }
            }
        };
        while let Some(row) = rows.next()? {
            let feed_id: i64 = row.get(0)?;
            if current != Some(feed_id) {
                judge(&mut feed, &mut doomed);
                current = Some(feed_id);
            }
            feed.push((row.get(1)?, row.get(2)?));
        }
        judge(&mut feed, &mut doomed);
        Ok(doomed)
    }

    /// Removes up to `limit` tombstones not seen since `cutoff`; how many went.
    pub(crate) fn expire_tombstones(&mut self, cutoff: i64, limit: usize) -> Result<usize, StoreError> {
        Ok(self
            .conn
            .prepare_cached(
                "DELETE FROM tombstones WHERE (feed_id, key) IN
                     (SELECT feed_id, key FROM tombstones WHERE last_seen < ?1 LIMIT ?2)",
            )?
            .execute(params![cutoff, i64::try_from(limit).unwrap_or(i64::MAX)])?)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::model::Entry;

    #[test]
    fn stale_statistics_are_refreshed_one_index_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("t.db")).unwrap();
        let urls: Vec<String> = (0..200).map(|n| format!("https://e.org/{n}")).collect();
        store.ensure_feeds(&urls, Utc::now()).unwrap();
        let stale = store.stale_indexes().unwrap();
        // Never analysed: every index of the tables optimize picks, each on its own.
        assert!(stale.contains(&"feeds_by_due".to_string()), "{stale:?}");
        assert!(!stale.iter().any(|i| i.starts_with("ANALYZE")), "{stale:?}");
        for index in &stale {
            store.analyze_index(index).unwrap();
        }
        let rows: i64 = store
            .conn
            .query_row(
                "SELECT count(*) FROM sqlite_stat1 WHERE idx = 'feeds_by_due' AND stat LIKE '200 %'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(rows, 1, "the index's row count is in the statistics");
        assert!(
            !store
                .stale_indexes()
                .unwrap()
                .contains(&"feeds_by_due".to_string()),
            "fresh statistics are not analysed again"
        );
    }

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
        crate::store::entries::tests::store_batch(&mut store, feed, &entries, 100, day(20));

        // Keep 5 days (from Jan 20: entries of Jan 15+ survive by age), at most 3 per feed,
        // but outputs show the newest 4.
        let (shown, _) =
            crate::store::entries::tests::newest_entries(&store, std::slice::from_ref(&url), 4).unwrap();
        let retention = Retention {
            keep_days: 5,
            keep_per_feed: 3,
            protected: shown.iter().map(|e| e.id).collect(),
        };
        let mut doomed = store.retention_candidates(5, 3, day(20)).unwrap();
        doomed.retain(|id| !retention.protected.contains(id));
        assert_eq!(store.retire_entries(&doomed, day(20)).unwrap(), 6);
        let (left, _) =
            crate::store::entries::tests::newest_entries(&store, std::slice::from_ref(&url), 100).unwrap();
        let titles: Vec<_> = left.iter().map(|e| e.entry.title.as_str()).collect();
        assert_eq!(titles, ["day 10", "day 9", "day 8", "day 7"]);

        // The removed entries are still in the feed: they do not come back.
        let outcome = crate::store::entries::tests::store_batch(&mut store, feed, &entries, 100, day(21));
        assert_eq!(outcome.new, 0);
        assert!(store.integrity_check().unwrap().is_ok());
    }

    #[test]
    fn databases_that_could_not_shrink_are_converted_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        drop(Store::open(&path).unwrap());
        // As databases created before auto_vacuum was set ahead of WAL mode are.
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch("PRAGMA auto_vacuum = NONE; VACUUM;").unwrap();
        assert_eq!(
            conn.pragma_query_value(None, "auto_vacuum", |r| r.get::<_, i64>(0))
                .unwrap(),
            0
        );
        drop(conn);
        let store = Store::open(&path).unwrap();
        let mode: i64 = store
            .conn
            .pragma_query_value(None, "auto_vacuum", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, 2, "incremental");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn housekeeping_gives_the_space_of_removed_entries_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let url = "https://e.org/f".to_string();
        {
            let mut store = Store::open(&path).unwrap();
            let feed = store
                .ensure_feeds(std::slice::from_ref(&url), Utc::now())
                .unwrap()[0]
                .id;
            let body = "<p>".to_string() + &"words ".repeat(400) + "</p>";
            let entries = crate::store::entries::tests::finished(
                (0..2000)
                    .map(|i| Entry {
                        guid: Some(format!("e{i}")),
                        title: format!("entry {i}"),
                        content: Some(body.clone()),
                        published: Some(Utc.timestamp_opt(1_700_000_000 + i * 60, 0).unwrap()),
                        ..Entry::default()
                    })
                    .collect(),
            );
            crate::store::entries::tests::store_batch(&mut store, feed, &entries, 10, Utc::now());
            store
                .conn
                .execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
                .unwrap();
        }
        let before = std::fs::metadata(&path).unwrap().len();
        let (store, thread) = StoreHandle::open(&path).await.unwrap();
        let retention = Retention {
            keep_days: 0,
            keep_per_feed: 100,
            protected: HashSet::new(),
        };
        let report = housekeeping(&store, retention, Utc::now()).await.unwrap();
        assert_eq!(report.entries_removed, 1900);
        assert!(report.steps > 1, "in steps: {report:?}");
        drop(store);
        thread.join().await;
        let after = std::fs::metadata(&path).unwrap().len();
        assert!(after * 4 < before, "the file shrank: {before} → {after} bytes");
    }
}
