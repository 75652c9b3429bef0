//! Owns all state: feed state and entries in one SQLite database (rusqlite, bundled).
//!
//! [`Store`] is the synchronous API over one connection; [`StoreHandle`] gives async code a way
//! to run work on the one thread that owns it, so no tokio worker ever blocks on SQLite and
//! there is exactly one writer. WAL mode lets readers in other processes (a `poll` while `run`
//! works, a backup) proceed; `busy_timeout` makes a second writer wait instead of failing.
//!
//! Schema changes are append-only migrations versioned by `PRAGMA user_version`, each run in
//! one transaction; a database written by a newer Tributary is refused rather than damaged.

mod checkpoint;
mod entries;
mod feeds;
mod handle;
mod housekeeping;
mod lock;
mod outputs;
pub mod postgres;
mod schema;
mod sql;

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use rusqlite::Connection;

pub use crate::model::Backend;
pub(crate) use entries::catalogue_ranks;
/// What other modules' unit tests need to fill a store as the poller does.
#[cfg(test)]
pub(crate) use entries::tests::{finished, store_all};
pub use entries::{Candidate, ParsedBatch, StoreOutcome};
pub use feeds::{Claimed, FeedUpdate, Scheduled};
pub use handle::{StoreHandle, StoreThread};
pub use housekeeping::{HousekeepingReport, Retention, housekeeping};
pub use lock::{DaemonLock, lock_path};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open database {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("cannot create the database directory {path}: {source}")]
    Directory {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "database {path} has schema version {found}, newer than this Tributary understands ({supported}); \
         upgrade Tributary or use another database"
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    /// An SQLite error inside the store; the handle names the database (`Database`).
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database {path}: {source}")]
    Database {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "database {path} is read-only: check that the file, its directory and its -wal and -shm \
         files are writable by this user"
    )]
    ReadOnly { path: PathBuf },
    #[error("cannot start the database thread: {0}")]
    Thread(#[source] std::io::Error),
    #[error("the write was not committed: {0}")]
    Commit(String),
    #[error("the database thread has stopped")]
    Closed,
    #[error(
        "another `tributary run`{} is using the database {path}; one daemon per database \
         (stop it first, or give this one its own store.path)",
        pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
    )]
    Locked { path: PathBuf, pid: Option<u32> },
    #[error("cannot lock {path}: {source}")]
    Lock {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A PostgreSQL error inside the store; the handle names the server (`Server`).
    #[error("database error: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("PostgreSQL at {target}: {source}")]
    Server {
        target: String,
        #[source]
        source: tokio_postgres::Error,
    },
    #[error(transparent)]
    Pg(#[from] postgres::PgError),
    /// A value read back is not what the schema says the column holds.
    #[error("database value: {0}")]
    Column(String),
    /// This node's claim on the feed was taken over (it stalled past its lease): its poll is
    /// not recorded, the node that holds the feed now records its own.
    #[error("the claim on feed {feed_id} passed to another node; this poll is not recorded")]
    Fenced { feed_id: i64 },
}

/// How long a writer waits for another process's transaction before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Page size of a new database. Entries are 1–4 KB: in SQLite's default 4 KiB pages most take
/// a page each and leave the rest empty, so a cold poll wrote (twice: WAL, then checkpoint) a
/// third more than it stored. Measured: cold 1,000 × 50 took 4.4 s with 4 KiB, 3.9 s with 8 KiB
/// and 3.8 s with 16 KiB pages, but 16 KiB pages slow re-polls (each new entry rewrites
/// bigger pages). An existing database keeps its page size (`VACUUM` would convert it).
const PAGE_SIZE: i64 = 8192;

/// The database, owned by one thread at a time.
pub struct Store {
    conn: sql::Conn,
    /// This node's name in a shared store's claims (empty on SQLite, which has no others).
    node: String,
}

/// Where a store's errors happened, for their messages.
#[derive(Debug, Clone)]
pub(crate) enum Place {
    File(PathBuf),
    Server(String),
}

impl StoreError {
    /// The error with the database it happened in named.
    pub(crate) fn at(self, place: &Place) -> StoreError {
        match (self, place) {
            (StoreError::Sqlite(source), Place::File(path)) => StoreError::Database {
                path: path.clone(),
                source,
            },
            (StoreError::Postgres(source), Place::Server(target)) => StoreError::Server {
                target: target.clone(),
                source,
            },
            (StoreError::Commit(message), Place::File(path)) => {
                StoreError::Commit(format!("database {}: {message}", path.display()))
            }
            (StoreError::Commit(message), Place::Server(target)) => {
                StoreError::Commit(format!("PostgreSQL at {target}: {message}"))
            }
            (other, _) => other,
        }
    }
}

impl Store {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    /// Fails unless the database can be written: SQLite opens a database it cannot write
    /// (a read-only directory holding `-wal` / `-shm` files, say) read-only without a word.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Directory {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let open_err = |source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        };
        let mut conn = Connection::open(path).map_err(open_err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
        conn.pragma_update(None, "page_size", PAGE_SIZE)
            .map_err(open_err)?;
        // Like the page size, only possible while the file is new: before the first table,
        // and before WAL mode (which writes the header). Lets housekeeping give free pages
        // back to the file system a little at a time (PRAGMA incremental_vacuum). On an
        // existing file it changes nothing, and on a read-only one it fails: that is reported
        // below, as read-only, not as this.
        let _ = conn.pragma_update(None, "auto_vacuum", "INCREMENTAL");
        // WAL: readers never block the writer; NORMAL is durable across process crashes in WAL
        // mode (only an OS crash can lose the last commits, never consistency).
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(open_err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(open_err)?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(open_err)?;
        // A group commit touches many pages: a 16 MiB cache keeps them in memory instead of
        // spilling them to the WAL mid-transaction, and savepoint journals stay in memory.
        conn.pragma_update(None, "cache_size", -16 * 1024)
            .map_err(open_err)?;
        conn.pragma_update(None, "temp_store", "MEMORY")
            .map_err(open_err)?;
        // Every statement of the store stays prepared: more than the default 16.
        conn.set_prepared_statement_cache_capacity(64);
        schema::migrate(&mut conn, path).map_err(|e| e.at(&Place::File(path.to_path_buf())))?;
        let read_only = conn.is_readonly(rusqlite::MAIN_DB).unwrap_or(true)
            || conn.execute_batch("BEGIN IMMEDIATE; COMMIT").is_err();
        if read_only {
            return Err(StoreError::ReadOnly {
                path: path.to_path_buf(),
            });
        }
        Ok(Store::sqlite(conn))
    }

    /// A read-only connection to a database [`Store::open`] has already set up.
    pub fn open_reader(path: &Path) -> Result<Store, StoreError> {
        let open_err = |source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        };
        let conn = Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(open_err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
        // Readers look up every changed feed's stored entries: mapped pages save a copy and a
        // cache allocation per page (a write elsewhere empties a reader's page cache).
        conn.pragma_update(None, "mmap_size", 256 * 1024 * 1024)
            .map_err(open_err)?;
        conn.set_prepared_statement_cache_capacity(64);
        Ok(Store::sqlite(conn))
    }

    fn sqlite(conn: Connection) -> Store {
        Store {
            conn: sql::Conn::Sqlite(conn),
            node: String::new(),
        }
    }

    /// A connection to a PostgreSQL store whose schema [`postgres::PgStore::connect`] has
    /// brought up to date, as node `node`.
    pub(crate) fn open_pg(
        config: &tokio_postgres::Config,
        runtime: std::sync::Arc<sql::PgRuntime>,
        node: &str,
    ) -> Result<Store, StoreError> {
        Ok(Store {
            conn: sql::Conn::Pg(sql::PgConn::connect(config, runtime)?),
            node: node.to_string(),
        })
    }

    /// The SQLite connection (what only SQLite has: checkpoints, pragmas); `None` on PostgreSQL.
    pub(crate) fn sqlite_conn(&mut self) -> Option<&mut Connection> {
        self.conn.sqlite_mut()
    }

    /// Runs `PRAGMA integrity_check`; `Ok(())` when the database is sound. PostgreSQL keeps
    /// its own consistency: always sound.
    pub fn integrity_check(&self) -> Result<Result<(), String>, StoreError> {
        let Some(conn) = self.conn.sqlite() else {
            return Ok(Ok(()));
        };
        let result: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
        Ok(if result == "ok" { Ok(()) } else { Err(result) })
    }
}

/// Runs each named test, `fn NAME(store: Store)`, on both backends: as `NAME::sqlite` on a
/// new SQLite file, and as `NAME::postgres` on a new PostgreSQL database (skipped without a
/// server, a failure under `TRIBUTARY_REQUIRE_ALL=1`). One set of store tests, two stores.
#[cfg(test)]
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn sqlite() {
                let dir = tempfile::tempdir().unwrap();
                super::$name(crate::store::Store::open(&dir.path().join("t.db")).unwrap());
            }

            #[test]
            fn postgres() {
                if let Some(store) = crate::store::postgres::tests::store(stringify!($name)) {
                    super::$name(store);
                }
            }
        }
    )*};
}
#[cfg(test)]
pub(crate) use on_both_stores;

pub(crate) fn to_unix(t: DateTime<Utc>) -> i64 {
    t.timestamp()
}

pub(crate) fn from_unix(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(secs, 0).single().unwrap_or_default()
}

/// Times that schedules compare (due times, last fetch, leases) keep milliseconds: whole
/// seconds made a feed polled at 10:02:17.9 for a slot at 10:02:17.6 look polled before it.
pub(crate) fn to_millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// A due time in milliseconds, rounded up: a wake-up at the stored time is never early.
pub(crate) fn to_millis_ceil(t: DateTime<Utc>) -> i64 {
    let ms = t.timestamp_millis();
    if t.timestamp_subsec_nanos().is_multiple_of(1_000_000) {
        ms
    } else {
        ms + 1
    }
}

pub(crate) fn from_millis(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page_size(path: &Path) -> i64 {
        let conn = Connection::open(path).unwrap();
        conn.pragma_query_value(None, "page_size", |r| r.get(0)).unwrap()
    }

    #[test]
    fn new_databases_get_larger_pages_and_existing_ones_keep_theirs() {
        let dir = tempfile::tempdir().unwrap();
        let fresh = dir.path().join("fresh.db");
        drop(Store::open(&fresh).unwrap());
        assert_eq!(page_size(&fresh), PAGE_SIZE);

        // A database written before (SQLite's default 4 KiB pages) opens and migrates as it is.
        let old = dir.path().join("old.db");
        {
            let conn = Connection::open(&old).unwrap();
            conn.execute_batch(
                "PRAGMA page_size = 4096; CREATE TABLE keep (x); INSERT INTO keep VALUES (1);",
            )
            .unwrap();
        }
        let store = Store::open(&old).unwrap();
        assert_eq!(store.integrity_check().unwrap(), Ok(()));
        drop(store);
        assert_eq!(page_size(&old), 4096);
    }
}
