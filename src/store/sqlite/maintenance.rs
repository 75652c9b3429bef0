//! What SQLite needs to stay fast as a store grows from nothing to millions of entries: the
//! planner's statistics, written from counts (SQLite's own ANALYZE holds the writer while it
//! reads), free pages given back to the file system a few at a time, and retention's ranking
//! of old entries on a reader.

use std::time::Instant;

use chrono::{DateTime, Utc};

use super::{Db, SqliteStore};
use crate::store::housekeeping::{MAX_STEPS, next_batch};
use crate::store::{Step, StoreError};

/// Pages returned to the file system per step to start with (8 KiB each).
const VACUUM_PAGES: u32 = 2048;

/// Statistics, then incremental vacuum, in short writer steps.
pub(super) async fn maintain(store: &SqliteStore) -> Result<Vec<Step>, StoreError> {
    let mut steps = Vec::new();
    // Counted on a reader and written in one short step: at 10,000,000 entries even a sampled
    // ANALYZE took from 0.3 s (warm) to 3 s (cold) per index on the writer.
    let counts = store.read(|db| db.table_counts()).await?;
    let took = store
        .write(move |db| {
            let started = Instant::now();
            db.write_statistics(&counts)?;
            Ok(started.elapsed())
        })
        .await?;
    steps.push(Step {
        kind: "statistics",
        took,
    });
    let mut pages = VACUUM_PAGES;
    for _ in 0..MAX_STEPS {
        let (left, took) = store
            .write(move |db| {
                let started = Instant::now();
                db.conn
                    .execute_batch(&format!("PRAGMA incremental_vacuum({pages});"))?;
                let left: i64 = db.conn.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
                Ok((left, started.elapsed()))
            })
            .await?;
        steps.push(Step { kind: "vacuum", took });
        pages = u32::try_from(next_batch(pages as usize, took)).unwrap_or(VACUUM_PAGES);
        if left == 0 {
            break;
        }
    }
    Ok(steps)
}

/// Row counts the planner's statistics are made of (see [`Db::write_statistics`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct TableCounts {
    pub(crate) feeds: u64,
    pub(crate) entries: u64,
    /// Feeds that have entries.
    pub(crate) entry_feeds: u64,
    pub(crate) tombstones: u64,
    pub(crate) feed_errors: u64,
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

impl Db {
    /// How many rows the big tables hold, and over how many feeds. Meant for a reader: each
    /// count reads an index whole.
    pub(super) fn table_counts(&self) -> rusqlite::Result<TableCounts> {
        let count = |sql: &str| -> rusqlite::Result<u64> {
            let n: i64 = self.conn.query_row(sql, [], |r| r.get(0))?;
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
    /// what keeps plans right as a store grows without an ANALYZE holding the writer.
    pub(super) fn write_statistics(&mut self, counts: &TableCounts) -> rusqlite::Result<()> {
        let tx = self.conn.savepoint()?;
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
        tx.commit()
    }

    /// The entries retention would remove: older than `keep_days`, or past the newest
    /// `keep_per_feed` of their feed. One walk of the per-feed index, without reading rows.
    pub(super) fn retention_candidates(
        &self,
        keep_days: u32,
        keep_per_feed: usize,
        now: DateTime<Utc>,
    ) -> rusqlite::Result<Vec<i64>> {
        if keep_days == 0 && keep_per_feed == 0 {
            return Ok(Vec::new());
        }
        let cutoff = if keep_days > 0 {
            now.timestamp() - i64::from(keep_days) * 86_400
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
        let mut stmt = self.conn.prepare_cached(
            "SELECT feed_id, published, id FROM entries INDEXED BY entries_by_feed ORDER BY feed_id",
        )?;
        let mut rows = stmt.query([])?;
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::tests::{day, filled};

    #[test]
    fn statistics_are_written_from_counts_for_every_index_and_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let (mut db, feeds) = filled(&dir.path().join("t.db"), 4);
        for feed in feeds.iter().take(3) {
            crate::store::sqlite::tests::store_ten_days(&mut db, *feed, day(20));
        }
        let counts = db.table_counts().unwrap();
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
        db.write_statistics(&counts).unwrap();
        let stat = |index: &str| -> String {
            db.conn
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
        let missing: Vec<String> = db
            .conn
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
        let plan: String = db
            .conn
            .query_row(
                "EXPLAIN QUERY PLAN SELECT id FROM entries WHERE feed_id = 1 AND hidden = 0 ORDER BY published DESC",
                [],
                |r| r.get(3),
            )
            .unwrap();
        assert!(plan.contains("entries_by_feed"), "{plan}");
    }
}
