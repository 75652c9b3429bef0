//! The writer: one thread with the one writing connection, running the store's jobs in group
//! commits (a job replies only once its group has committed), and the connections it and the
//! readers open.

use super::*;

/// How long a writer waits for another process's transaction before giving up.
pub(super) const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Page size of a new database. Entries are 1–4 KB: in SQLite's default 4 KiB pages most take
/// a page each and leave the rest empty, so a cold poll wrote (twice: WAL, then checkpoint) a
/// third more than it stored. Measured: cold 1,000 × 50 took 4.4 s with 4 KiB, 3.9 s with 8 KiB
/// and 3.8 s with 16 KiB pages, but 16 KiB pages slow re-polls (each new entry rewrites
/// bigger pages). An existing database keeps its page size (`VACUUM` would convert it).
pub(super) const PAGE_SIZE: i64 = 8192;

/// Most jobs committed together. Writes queue up while the thread is busy; committing them
/// together writes each touched index page once instead of once per feed.
pub(super) const MAX_GROUP: usize = 64;

/// Longest the thread waits for more jobs before committing. It waits as long as its last
/// group took to run: when groups are heavy (a cold poll storing thousands of entries) that
/// gathers several feeds per commit, which cut a cold 1,000-feed poll from 3.8 s to 3.4 s
/// (fewer commits, fewer checkpoints); when they are light (a round of 304s) it costs next to
/// nothing, where a fixed 25 ms wait made that round half again as slow.
pub(super) const MAX_WAIT: Duration = Duration::from_millis(25);

/// One connection to the database: the writer's, or a reader's.
pub(crate) struct Db {
    pub(super) conn: Connection,
}

/// Work for the store thread. It runs inside a group transaction and returns how to reply,
/// which happens only once that transaction has committed (or failed to).
pub(super) type Job = Box<dyn FnOnce(&mut Db) -> Reply + Send>;
pub(super) type Reply = Box<dyn FnOnce(Result<(), &rusqlite::Error>) + Send>;

pub(super) enum Message {
    Job(Job),
    /// Finish what is queued before this, then close.
    Close,
}

/// A commit's failure, for each job of its group.
pub(super) fn clone_error(e: &rusqlite::Error) -> rusqlite::Error {
    match e {
        rusqlite::Error::SqliteFailure(code, message) => {
            rusqlite::Error::SqliteFailure(*code, message.clone())
        }
        other => rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ERROR),
            Some(format!("the write was not committed: {other}")),
        ),
    }
}

/// `first` and the jobs that arrive within `wait` of it, up to [`MAX_GROUP`]; and whether a
/// close came after them.
pub(super) fn gather(rx: &mpsc::Receiver<Message>, first: Job, wait: Duration) -> (Vec<Job>, bool) {
    let mut group = vec![first];
    let until = Instant::now() + wait;
    while group.len() < MAX_GROUP {
        match rx.recv_timeout(until.saturating_duration_since(Instant::now())) {
            Ok(Message::Job(job)) => group.push(job),
            Ok(Message::Close) => return (group, true),
            Err(_) => break,
        }
    }
    (group, false)
}

/// Runs `group` in one transaction; every job hears the outcome of the commit. A job's
/// failed statement undoes only itself in SQLite; jobs that must be all or nothing open a
/// savepoint of their own ([`Db::savepoint`]).
pub(super) fn run_group(db: &mut Db, group: Vec<Job>) {
    // Takes the write lock now, so a busy database is waited for here, not halfway through.
    if let Err(e) = db.conn.execute_batch("BEGIN IMMEDIATE") {
        tracing::warn!(error = %e, "cannot begin a group transaction");
        for job in group {
            job(db)(Ok(()));
        }
        return;
    }
    tracing::trace!(jobs = group.len(), "group commit");
    let replies: Vec<Reply> = group.into_iter().map(|job| job(db)).collect();
    let committed = db.conn.execute_batch("COMMIT");
    if committed.is_err() {
        let _ = db.conn.execute_batch("ROLLBACK");
    }
    for reply in replies {
        reply(committed.as_ref().map(|_| ()));
    }
}

impl Db {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    /// Fails unless the database can be written: SQLite opens a database it cannot write (a
    /// read-only directory holding `-wal` / `-shm` files, say) read-only without a word. A
    /// database newer than this code is refused before anything is written to it.
    pub(super) fn open(path: &Path) -> Result<Db, StoreError> {
        let describe = format!("database {}", path.display());
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Unavailable {
                context: format!("cannot create the database directory {}", dir.display()),
                source: source.into(),
            })?;
        }
        let open_err = |e| StoreError::Unavailable {
            context: format!("cannot open {describe}"),
            source: Box::new(e),
        };
        let mut conn = Connection::open(path).map_err(open_err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
        // Before anything else touches the file (the journal mode below writes its header):
        // a database from a newer Tributary is left exactly as it was.
        schema::refuse_newer(&conn, path)?;
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
        let wal = conn.pragma_update(None, "journal_mode", "WAL");
        if let Err(e) = wal {
            if conn.is_readonly(rusqlite::MAIN_DB).unwrap_or(true) {
                return Err(StoreError::ReadOnly {
                    path: path.to_path_buf(),
                });
            }
            return Err(open_err(e));
        }
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
        schema::migrate(&mut conn, path).map_err(|e| error(&describe, e))?;
        let read_only = conn.is_readonly(rusqlite::MAIN_DB).unwrap_or(true)
            || conn.execute_batch("BEGIN IMMEDIATE; COMMIT").is_err();
        if read_only {
            return Err(StoreError::ReadOnly {
                path: path.to_path_buf(),
            });
        }
        Ok(Db { conn })
    }

    /// A read-only connection to a database [`Db::open`] has already set up.
    pub(super) fn open_reader(path: &Path) -> rusqlite::Result<Db> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // Readers look up every changed feed's stored entries: mapped pages save a copy and a
        // cache allocation per page (a write elsewhere empties a reader's page cache).
        conn.pragma_update(None, "mmap_size", 256 * 1024 * 1024)?;
        conn.set_prepared_statement_cache_capacity(64);
        Ok(Db { conn })
    }

    /// Runs one prepared statement; the number of rows it changed.
    pub(super) fn exec(&self, sql: &str, params: impl rusqlite::Params) -> rusqlite::Result<usize> {
        self.conn.prepare_cached(sql)?.execute(params)
    }

    /// Runs `f` in a savepoint: all of it is kept, or (on an error) none of it. Nests inside
    /// the group transaction. Its statements are prepared once, like every statement: a
    /// write job opens one, and parsing them each time cost a warm round a third of its time.
    pub(super) fn savepoint<R>(
        &mut self,
        f: impl FnOnce(&mut Db) -> rusqlite::Result<R>,
    ) -> rusqlite::Result<R> {
        self.exec("SAVEPOINT tributary", [])?;
        let result = f(self);
        match result {
            Ok(_) => {
                self.exec("RELEASE tributary", [])?;
            }
            Err(_) => {
                self.exec("ROLLBACK TO tributary", [])?;
                self.exec("RELEASE tributary", [])?;
            }
        }
        result
    }

    /// Runs `PRAGMA integrity_check`; `Ok(())` when the database is sound.
    pub(super) fn integrity_check(&self) -> rusqlite::Result<Result<(), String>> {
        let result: String = self.conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
        Ok(if result == "ok" { Ok(()) } else { Err(result) })
    }
}
