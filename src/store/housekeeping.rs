//! Keeping a long-running database small and fast: retention with tombstones, expiry of old
//! tombstones, the planner's statistics and incremental vacuum.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::sql::{Dialect, params};
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
    /// Which kind of step that was ("retire", "tombstones", "statistics", "vacuum").
    pub longest_kind: &'static str,
}

/// A writer step aims at this long, so that no poll waits on housekeeping much longer. Well
/// under the 100 ms a poll may wait at most: on a store of 10,000,000 entries one batch can
/// take several times as long as the one before it.
const STEP_BUDGET: Duration = Duration::from_millis(20);
/// Entries retired per step to start with; the size then follows how long steps take.
const FIRST_BATCH: usize = 500;

/// Retention, tombstone expiry, the planner's statistics and incremental vacuum,
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
    if store.dialect() == Dialect::Postgres {
        // PostgreSQL keeps its planner's statistics and its free space itself (autovacuum).
        return Ok(report);
    }
    // Fresh planner statistics, counted on a reader and written in one short step: SQLite's
    // own ANALYZE holds the writer while it reads, and at 10,000,000 entries even a sampled
    // one took from 0.3 s (warm) to 3 s (cold) per index.
    let counts = store.read(|s| s.table_counts()).await?;
    let took = store
        .call(move |s| {
            let started = std::time::Instant::now();
            s.write_statistics(&counts)?;
            Ok(started.elapsed())
        })
        .await?;
    step(&mut report, "statistics", took);
    // Free pages go back to the file system a bounded number per step, until none are left.
    let mut pages = VACUUM_PAGES;
    for _ in 0..MAX_STEPS {
        let (left, took) = store
            .call(move |s| {
                let started = std::time::Instant::now();
                s.conn.batch(&format!("PRAGMA incremental_vacuum({pages});"))?;
                let left: i64 = s
                    .conn
                    .query_one("PRAGMA freelist_count", params![], |r| r.get(0))?;
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

/// Row counts the planner's statistics are made of (see [`Store::write_statistics`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct TableCounts {
    pub feeds: u64,
    pub entries: u64,
    /// Feeds that have entries.
    pub entry_feeds: u64,
    pub tombstones: u64,
    pub feed_errors: u64,
}

/// An index's `sqlite_stat1` line: its row count, then how many rows share each prefix of its
/// columns. A prefix with a column that (nearly) identifies a row matches one; a prefix of
/// `feed_id` (and `hidden`, mostly 0) matches a feed's share. `None` for tables whose
/// statistics would not steer anything (a few rows).
fn index_statistics(table: &str, columns: &[String], c: &TableCounts) -> Option<String> {
    let per = |rows: u64, groups: u64| rows.div_ceil(groups.max(1)).max(1);
    let (rows, per_feed) = match table {
        "entries" => (c.entries, per(c.entries, c.entry_feeds)),
        "tombstones" => (c.tombstones, per(c.tombstones, c.entry_feeds)),
        "feeds" => (c.feeds, 1),
        "feed_errors" => (c.feed_errors, per(c.feed_errors, c.feeds)),
        _ => return None,
    };
    let mut stat = vec![rows.max(1)];
    let mut unique = false;
    for column in columns {
        unique |= !matches!(column.as_str(), "feed_id" | "hidden");
        stat.push(if unique { 1 } else { per_feed });
    }
    Some(stat.iter().map(u64::to_string).collect::<Vec<_>>().join(" "))
}

impl Store {
    /// How many rows the big tables hold, and over how many feeds: what the planner's
    /// statistics are made of. Meant for a reader: each count reads an index whole.
    pub(crate) fn table_counts(&self) -> Result<TableCounts, StoreError> {
        let count = |sql: &str| -> Result<u64, StoreError> {
            let n: i64 = self.conn.query_one(sql, params![], |r| r.get(0))?;
            Ok(u64::try_from(n).unwrap_or(0))
        };
        Ok(TableCounts {
            feeds: count("SELECT COUNT(*) FROM feeds")?,
            entries: count("SELECT COUNT(*) FROM entries")?,
            entry_feeds: count("SELECT COUNT(DISTINCT feed_id) FROM entries")?,
            tombstones: count("SELECT COUNT(*) FROM tombstones")?,
            feed_errors: count("SELECT COUNT(*) FROM feed_errors")?,
        })
    }

    /// Writes the planner's statistics (`sqlite_stat1`, as ANALYZE would) for every index,
    /// from `counts` and what the schema says of each index's columns, and has this
    /// connection load them. SQLite documents this as a way to steer its planner; here it is
    /// what keeps plans right as a store grows from nothing to millions of entries without
    /// an ANALYZE holding the writer.
    fn write_statistics(&mut self, counts: &TableCounts) -> Result<(), StoreError> {
        let Some(conn) = self.conn.sqlite_mut() else {
            return Ok(());
        };
        let tx = conn.savepoint()?;
        // Creates sqlite_stat1 if there is none yet (it analyses nothing but the schema).
        tx.execute_batch("ANALYZE sqlite_schema")?;
        let indexes: Vec<(String, String)> = tx
            .prepare("SELECT tbl_name, name FROM sqlite_schema WHERE type = 'index'")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        tx.execute("DELETE FROM sqlite_stat1", [])?;
        {
            let mut insert = tx.prepare("INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES (?1, ?2, ?3)")?;
            for (table, index) in indexes {
                let columns: Vec<String> = tx
                    .prepare("SELECT name FROM pragma_index_info(?1) ORDER BY seqno")?
                    .query_map([&index], |r| r.get(0))?
                    .collect::<Result<_, _>>()?;
                if let Some(stat) = index_statistics(&table, &columns, counts) {
                    insert.execute(rusqlite::params![table, index, stat])?;
                }
            }
        }
        // Loads the new statistics into this connection's planner.
        tx.execute_batch("ANALYZE sqlite_schema")?;
        tx.commit()?;
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
        self.conn.each(
            "SELECT feed_id, published, id FROM entries INDEXED BY entries_by_feed ORDER BY feed_id",
            params![],
            |row| {
                let feed_id: i64 = row.get(0)?;
                if current != Some(feed_id) {
                    judge(&mut feed, &mut doomed);
                    current = Some(feed_id);
                }
                feed.push((row.get(1)?, row.get(2)?));
                Ok(std::ops::ControlFlow::Continue(()))
            },
        )?;
        judge(&mut feed, &mut doomed);
        Ok(doomed)
    }

    /// Removes up to `limit` tombstones not seen since `cutoff`; how many went.
    pub(crate) fn expire_tombstones(&mut self, cutoff: i64, limit: usize) -> Result<usize, StoreError> {
        self.conn.execute(
            "DELETE FROM tombstones WHERE (feed_id, key) IN
                 (SELECT feed_id, key FROM tombstones WHERE last_seen < ?1 LIMIT ?2)",
            params![cutoff, limit],
        )
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    crate::store::on_both_stores!(retention_keeps_what_outputs_show_and_leaves_tombstones,);

    use super::*;
    use crate::model::Entry;

    /// 2026-01-`d`, at noon.
    fn day(d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, d, 12, 0, 0).unwrap()
    }

    /// Stores ten entries in `feed`, one a day from 2026-01-01 to 01-10, seen on `seen`.
    fn store_ten_days(store: &mut Store, feed: i64, seen: DateTime<Utc>) -> crate::store::StoreOutcome {
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
        crate::store::entries::tests::store_batch(store, feed, &entries, 100, seen)
    }

    #[test]
    fn statistics_are_written_from_counts_for_every_index_and_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("t.db")).unwrap();
        let urls: Vec<String> = (0..4).map(|n| format!("https://e.org/{n}")).collect();
        let feeds = store.ensure_feeds(&urls, Utc::now()).unwrap();
        for feed in feeds.iter().take(3) {
            store_ten_days(&mut store, feed.id, day(20));
        }
        let counts = store.table_counts().unwrap();
        assert_eq!(
            counts,
            TableCounts {
                feeds: 4,
                entries: 30,
                entry_feeds: 3,
                tombstones: 0,
                feed_errors: 0
            }
        );
        store.write_statistics(&counts).unwrap();
        let stat = |index: &str| -> String {
            store
                .conn
                .sqlite()
                .unwrap()
                .query_row("SELECT stat FROM sqlite_stat1 WHERE idx = ?1", [index], |r| {
                    r.get(0)
                })
                .unwrap_or_else(|e| panic!("{index}: {e}"))
        };
        assert_eq!(stat("sqlite_autoindex_entries_1"), "30 10 1", "(feed_id, key)");
        assert_eq!(
            stat("entries_by_feed"),
            "30 10 10 1 1",
            "(feed_id, hidden, published, id)"
        );
        assert_eq!(stat("entries_by_date"), "30 1 1 1 1");
        assert_eq!(stat("feeds_by_due"), "4 1");
        // Every index of the tables that grow has its line (a new index gets one too).
        let missing: Vec<String> = store
            .conn
            .sqlite()
            .unwrap()
            .prepare(
                "SELECT name FROM sqlite_schema WHERE type = 'index'
                 AND tbl_name IN ('entries', 'tombstones', 'feeds', 'feed_errors')
                 AND name NOT IN (SELECT idx FROM sqlite_stat1)",
            )
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(missing.is_empty(), "{missing:?}");
        // The planner uses them: a feed's entries come from the per-feed index.
        let plan: String = store
            .conn.sqlite().unwrap()
            .query_row(
                "EXPLAIN QUERY PLAN SELECT id FROM entries WHERE feed_id = 1 AND hidden = 0 ORDER BY published DESC",
                [],
                |r| r.get(3),
            )
            .unwrap();
        assert!(plan.contains("entries_by_feed"), "{plan}");
    }

    fn retention_keeps_what_outputs_show_and_leaves_tombstones(mut store: Store) {
        let url = "https://e.org/f".to_string();
        let feed = store
            .ensure_feeds(std::slice::from_ref(&url), Utc::now())
            .unwrap()[0]
            .id;
        store_ten_days(&mut store, feed, day(20));

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
        let outcome = store_ten_days(&mut store, feed, day(21));
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
            .sqlite()
            .unwrap()
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
                .sqlite()
                .unwrap()
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
