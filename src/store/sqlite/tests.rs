//! What only the SQLite store has: its file (page size, WAL, vacuum), its writer's group
//! commits, and how it refuses a newer database. What every store does is tested once, on
//! both, in `store::tests`.

use std::collections::HashSet;
use std::path::Path;

use chrono::{DateTime, TimeZone, Utc};

use super::writer::{Job, MAX_GROUP, PAGE_SIZE};
use super::*;
use crate::model::Entry;
use crate::store::{Backend, Retention, Store, housekeeping};

/// 2026-01-`d`, at noon.
pub(super) fn day(d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, d, 12, 0, 0).unwrap()
}

/// A new database at `path` with `n` feeds.
pub(super) fn filled(path: &Path, n: usize) -> (Db, Vec<i64>) {
    let mut db = Db::open(path).unwrap();
    let urls: Vec<String> = (0..n).map(|i| format!("https://e.org/{i}")).collect();
    let feeds = db.ensure_feeds(&urls, Utc::now()).unwrap();
    (db, feeds.iter().map(|f| f.id).collect())
}

fn batch(entries: Vec<Entry>, new_feed_entries: usize) -> ParsedBatch {
    ParsedBatch {
        meta: Default::default(),
        validators: Default::default(),
        body_hash: "h".into(),
        entries: crate::store::tests::finished(entries),
        fresh_until: None,
        new_feed_entries,
        unchanged_segments: Default::default(),
        scheduled: Scheduled {
            next_due: None,
            key: String::new(),
            lease: None,
        },
        pushed: false,
    }
}

/// Stores ten entries in `feed`, one a day from 2026-01-01 to 01-10, seen on `seen`.
pub(super) fn store_ten_days(db: &mut Db, feed: i64, seen: DateTime<Utc>) -> StoreOutcome {
    let entries = (1..=10)
        .map(|d| Entry {
            guid: Some(format!("e{d}")),
            title: format!("day {d}"),
            published: Some(day(d)),
            ..Entry::default()
        })
        .collect();
    db.savepoint(|db| db.store_parsed(feed, &batch(entries, 100), seen))
        .unwrap()
}

fn page_size(path: &Path) -> i64 {
    let conn = Connection::open(path).unwrap();
    conn.pragma_query_value(None, "page_size", |r| r.get(0)).unwrap()
}

#[test]
fn new_databases_get_larger_pages_and_existing_ones_keep_theirs() {
    let dir = tempfile::tempdir().unwrap();
    let fresh = dir.path().join("fresh.db");
    drop(Db::open(&fresh).unwrap());
    assert_eq!(page_size(&fresh), PAGE_SIZE);

    // A database written before (SQLite's default 4 KiB pages) opens and migrates as it is.
    let old = dir.path().join("old.db");
    {
        let conn = Connection::open(&old).unwrap();
        conn.execute_batch("PRAGMA page_size = 4096; CREATE TABLE keep (x); INSERT INTO keep VALUES (1);")
            .unwrap();
    }
    let db = Db::open(&old).unwrap();
    assert_eq!(db.integrity_check().unwrap(), Ok(()));
    drop(db);
    assert_eq!(page_size(&old), 4096);
}

/// Refusing writes nothing: the file keeps every byte (its journal mode included).
#[test]
fn a_database_from_a_newer_tributary_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE future (x); PRAGMA user_version = 99;")
            .unwrap();
    }
    let before = std::fs::read(&path).unwrap();
    match Db::open(&path) {
        Err(StoreError::TooNew { found: 99, .. }) => {}
        Err(other) => panic!("{other}"),
        Ok(_) => panic!("opened"),
    }
    assert_eq!(std::fs::read(&path).unwrap(), before, "the file changed");
    assert!(!path.with_extension("db-wal").exists());
}

#[test]
fn a_group_takes_what_is_queued_up_to_its_limit_and_a_close_after_it() {
    let job = || -> Job { Box::new(|_| Box::new(|_| ())) };
    let (tx, rx) = mpsc::channel::<Message>();
    for _ in 0..MAX_GROUP + 6 {
        tx.send(Message::Job(job())).unwrap();
    }
    tx.send(Message::Close).unwrap();
    let Ok(Message::Job(first)) = rx.recv() else {
        panic!()
    };
    let (group, close) = gather(&rx, first, Duration::ZERO);
    assert_eq!((group.len(), close), (MAX_GROUP, false));
    let Ok(Message::Job(first)) = rx.recv() else {
        panic!()
    };
    let (group, close) = gather(&rx, first, Duration::ZERO);
    assert_eq!((group.len(), close), (6, true));
}

/// The checkpointer's connection closes first, so the writer, closing last, folds the WAL
/// back into the database and removes it: nothing is left for the next start to recover.
#[tokio::test(flavor = "multi_thread")]
async fn closing_the_store_leaves_no_wal_behind() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let store = SqliteStore::open(&path).await.unwrap();
    store
        .write(|db| {
            db.conn.execute_batch(
                "CREATE TABLE t (b BLOB);
                 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)
                 INSERT INTO t SELECT zeroblob(3000) FROM n;",
            )
        })
        .await
        .unwrap();
    assert!(path.with_extension("db-wal").exists());
    store.close().await;
    assert!(!path.with_extension("db-wal").exists());
    assert!(matches!(store.feed_ids().await, Err(StoreError::Closed)));
    let conn = Connection::open(&path).unwrap();
    let rows: i64 = conn
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 3000);
}

#[test]
fn databases_that_could_not_shrink_are_converted_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    drop(Db::open(&path).unwrap());
    // As databases created before auto_vacuum was set ahead of WAL mode are.
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch("PRAGMA auto_vacuum = NONE; VACUUM;").unwrap();
    assert_eq!(
        conn.pragma_query_value(None, "auto_vacuum", |r| r.get::<_, i64>(0))
            .unwrap(),
        0
    );
    drop(conn);
    let db = Db::open(&path).unwrap();
    let mode: i64 = db
        .conn
        .pragma_query_value(None, "auto_vacuum", |r| r.get(0))
        .unwrap();
    assert_eq!(mode, 2, "incremental");
}

#[tokio::test(flavor = "multi_thread")]
async fn housekeeping_gives_the_space_of_removed_entries_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    {
        let (mut db, feeds) = filled(&path, 1);
        let body = "<p>".to_string() + &"words ".repeat(400) + "</p>";
        let entries = (0..2000)
            .map(|i| Entry {
                guid: Some(format!("e{i}")),
                title: format!("entry {i}"),
                content: Some(body.clone()),
                published: Some(Utc.timestamp_opt(1_700_000_000 + i * 60, 0).unwrap()),
                ..Entry::default()
            })
            .collect();
        db.savepoint(|db| db.store_parsed(feeds[0], &batch(entries, 10), Utc::now()))
            .unwrap();
        db.conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)").unwrap();
    }
    let before = std::fs::metadata(&path).unwrap().len();
    let store = Store::open(&Backend::File(path.clone())).await.unwrap();
    let retention = Retention {
        keep_days: 0,
        keep_per_feed: 100,
        protected: HashSet::new(),
    };
    let report = housekeeping(&store, retention, Utc::now()).await.unwrap();
    assert_eq!(report.entries_removed, 1900);
    assert!(report.steps > 1, "in steps: {report:?}");
    store.close().await;
    let after = std::fs::metadata(&path).unwrap().len();
    assert!(after * 4 < before, "the file shrank: {before} → {after} bytes");
}

/// A second `tributary run` on one file is refused with the first one's pid, and the lock
/// goes with the store.
#[tokio::test(flavor = "multi_thread")]
async fn one_daemon_per_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let first = SqliteStore::open_exclusive(&path).await.unwrap();
    assert!(matches!(
        SqliteStore::open_exclusive(&path).await,
        Err(StoreError::Locked { pid: Some(_), .. })
    ));
    first.close().await;
    SqliteStore::open_exclusive(&path).await.unwrap().close().await;
}
