//! The async face of the store: one thread owns the writing connection and runs closures sent
//! to it; reads that must not queue behind writes run on read-only connections from a small
//! pool, on the blocking pool.
//!
//! This is the only way async code touches SQLite, so a slow disk never stalls a tokio worker
//! and every write is serialized through one connection (SQLite allows one writer anyway). In
//! WAL mode a reader sees the last committed state and neither blocks nor waits for the writer.

use std::path::Path;
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::checkpoint::{Checkpointer, Thresholds};
use super::sql::{Dialect, PgRuntime};
use super::{Backend, Place, Store, StoreError};

/// Work for the store thread. It runs inside a group transaction and returns how to reply,
/// which happens only once that transaction has committed (or failed to).
type Job = Box<dyn FnOnce(&mut Store) -> Reply + Send>;
type Reply = Box<dyn FnOnce(Result<(), &StoreError>) + Send>;

/// Most jobs committed together. Writes queue up while the thread is busy; committing them
/// together writes each touched index page once instead of once per feed.
const MAX_GROUP: usize = 64;

/// Longest the thread waits for more jobs before committing. It waits as long as its last
/// group took to run: when groups are heavy (a cold poll storing thousands of entries) that
/// gathers several feeds per commit, which cut a cold 1,000-feed poll from 3.8 s to 3.4 s
/// (fewer commits, fewer checkpoints); when they are light (a round of 304s) it costs next to
/// nothing, where a fixed 25 ms wait made that round half again as slow.
const MAX_WAIT: Duration = Duration::from_millis(25);

/// The same, on PostgreSQL. Its group takes longer for the round trips of its statements, not
/// for disk writes a group would share, and every poll waits for its records (a redirect
/// noted, then the poll) while it holds a slot of the poller's budget: with SQLite's 25 ms,
/// one node fetched 112 of the 160 feeds/s its budget allows against a 200 ms farm.
const MAX_WAIT_PG: Duration = Duration::from_millis(3);

/// A cloneable handle to the store thread and the readers.
#[derive(Clone)]
pub struct StoreHandle {
    // Declared (so dropped) first: when the last handle goes, the idle readers close before
    // the writer is told to finish, so the writer's connection is the last one and its close
    // checkpoints and removes the WAL. (A reader closing last cannot: it is read-only, and a
    // clean exit would leave a -wal file behind.)
    readers: Arc<Readers>,
    jobs: mpsc::Sender<Job>,
}

/// Idle read-only connections, reused.
struct Readers {
    source: Source,
    place: Place,
    idle: Mutex<Vec<Store>>,
    /// On PostgreSQL, the readers a node may have open at once: the server's connections are
    /// shared by every node (SQLite's readers are only file handles).
    open: Option<Arc<tokio::sync::Semaphore>>,
}

/// Reader connections one node keeps to PostgreSQL at most. With the writer, the
/// coordination pool and the listener, a node holds about 16 of the server's connections.
const PG_READERS: usize = 6;

/// How to open another connection to the store.
#[derive(Clone)]
enum Source {
    File(std::path::PathBuf),
    Pg(Arc<PgSource>),
}

struct PgSource {
    /// The cluster's coordination (turns, heartbeats, the lead), on the connection pool the
    /// store was opened (and migrated) with.
    shared: super::postgres::PgStore,
    config: tokio_postgres::Config,
    runtime: Arc<PgRuntime>,
    node: String,
}

impl Source {
    fn writer(&self) -> Result<Store, StoreError> {
        match self {
            Source::File(path) => Store::open(path),
            Source::Pg(pg) => Store::open_pg(&pg.config, pg.runtime.clone(), &pg.node),
        }
    }

    fn reader(&self) -> Result<Store, StoreError> {
        match self {
            Source::File(path) => Store::open_reader(path),
            Source::Pg(_) => self.writer(),
        }
    }

    fn dialect(&self) -> Dialect {
        match self {
            Source::File(_) => Dialect::Sqlite,
            Source::Pg(_) => Dialect::Postgres,
        }
    }
}

/// Joins the store thread; dropping every [`StoreHandle`] lets it finish.
pub struct StoreThread {
    thread: JoinHandle<()>,
}

impl StoreHandle {
    /// Opens the SQLite store at `path` on a new thread. Fails (without leaving a thread
    /// behind) if the database cannot be opened.
    pub async fn open(path: &Path) -> Result<(StoreHandle, StoreThread), StoreError> {
        StoreHandle::open_backend(&Backend::Sqlite(path.to_path_buf())).await
    }

    /// Opens the store `backend` names. PostgreSQL's schema is brought up to date first (one
    /// node at a time, see [`super::postgres::PgStore::connect`]).
    pub async fn open_backend(backend: &Backend) -> Result<(StoreHandle, StoreThread), StoreError> {
        let (source, place) = match backend {
            Backend::Sqlite(path) => (Source::File(path.clone()), Place::File(path.clone())),
            Backend::Postgres { url, node } => {
                let pg = super::postgres::PgStore::connect(url, node).await?;
                let place = Place::Server(pg.target().to_string());
                let source = Source::Pg(Arc::new(PgSource {
                    config: pg.config().clone(),
                    shared: pg,
                    runtime: PgRuntime::new()?,
                    node: node.clone(),
                }));
                (source, place)
            }
        };
        let (ready_tx, ready_rx) = oneshot::channel();
        let (jobs, rx) = mpsc::channel::<Job>();
        let writer_source = source.clone();
        let max_wait = match source.dialect() {
            Dialect::Sqlite => MAX_WAIT,
            Dialect::Postgres => MAX_WAIT_PG,
        };
        let writer_path = match backend {
            Backend::Sqlite(path) => Some(path.clone()),
            Backend::Postgres { .. } => None,
        };
        let thread = std::thread::Builder::new()
            .name("tributary-store".into())
            .spawn(move || {
                let mut store = match writer_source.writer() {
                    Ok(store) => {
                        let _ = ready_tx.send(Ok(()));
                        store
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let checkpointer = match (&writer_path, store.sqlite_conn()) {
                    (Some(path), Some(conn)) => Checkpointer::start(conn, path, Thresholds::DEFAULT)
                        .inspect_err(
                            |e| tracing::warn!(error = %e, "checkpointing on the writer: no checkpoint thread"),
                        )
                        .ok(),
                    _ => None,
                };
                // Ends when every handle is dropped; the connection closes (and checkpoints
                // the WAL) here, on its own thread.
                let mut last_run = Duration::ZERO;
                while let Ok(first) = rx.recv() {
                    let group = gather(&rx, first, last_run.min(max_wait));
                    let started = Instant::now();
                    run_group(&mut store, group);
                    last_run = started.elapsed();
                }
                if let (Some(checkpointer), Some(conn)) = (checkpointer, store.sqlite_conn()) {
                    checkpointer.stop(conn);
                }
            })
            .map_err(StoreError::Thread)?;
        // Waited for on the blocking pool, like every reply of the store thread (see `call`).
        tokio::task::spawn_blocking(move || ready_rx.blocking_recv())
            .await
            .map_err(|_| StoreError::Closed)?
            .map_err(|_| StoreError::Closed)?
            .map_err(|e| e.at(&place))?;
        let open = match source {
            Source::File(_) => None,
            Source::Pg(_) => Some(Arc::new(tokio::sync::Semaphore::new(PG_READERS))),
        };
        let readers = Arc::new(Readers {
            source,
            place,
            idle: Mutex::new(Vec::new()),
            open,
        });
        Ok((StoreHandle { jobs, readers }, StoreThread { thread }))
    }

    /// A PostgreSQL store's coordination for a cluster; `None` on SQLite.
    pub(crate) fn shared(&self) -> Option<&super::postgres::PgStore> {
        match &self.readers.source {
            Source::Pg(pg) => Some(&pg.shared),
            Source::File(_) => None,
        }
    }

    /// Which engine the store is.
    pub(crate) fn dialect(&self) -> Dialect {
        self.readers.source.dialect()
    }

    /// Runs a read-only `f` on a reader connection, without waiting for queued writes.
    pub async fn read<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        F: FnOnce(&Store) -> Result<R, StoreError> + Send + 'static,
        R: Send + 'static,
    {
        let readers = self.readers.clone();
        let permit = match &readers.open {
            Some(open) => Some(
                open.clone()
                    .acquire_owned()
                    .await
                    .map_err(|_| StoreError::Closed)?,
            ),
            None => None,
        };
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let idle = readers.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
            let store = match idle {
                Some(store) => store,
                None => readers.source.reader().map_err(|e| e.at(&readers.place))?,
            };
            let result = f(&store);
            readers.idle.lock().unwrap_or_else(|e| e.into_inner()).push(store);
            result.map_err(|e| e.at(&readers.place))
        })
        .await
        .map_err(|_| StoreError::Closed)?
    }

    /// Runs `f` on the store thread and returns its result once it is committed.
    pub(crate) async fn call<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        F: FnOnce(&mut Store) -> Result<R, StoreError> + Send + 'static,
        R: Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        self.jobs
            .send(Box::new(move |store| {
                let result = store.job(f);
                Box::new(move |committed: Result<(), &StoreError>| {
                    let result = match committed {
                        Ok(()) => result,
                        Err(e) => Err(StoreError::Commit(e.to_string())),
                    };
                    let _ = tx.send(result);
                })
            }))
            .map_err(|_| StoreError::Closed)?;
        // The reply is awaited on the blocking pool, not in the task: to tokio a write being
        // committed is work in progress, so a paused clock (the daemon's tests run on one)
        // does not jump ahead to the next timer while the store thread works.
        tokio::task::spawn_blocking(move || rx.blocking_recv())
            .await
            .map_err(|_| StoreError::Closed)?
            .map_err(|_| StoreError::Closed)?
            .map_err(|e| e.at(&self.readers.place))
    }
}

impl Store {
    /// Runs one job of a group. On PostgreSQL in a savepoint of its own: there a failed
    /// statement spoils the whole transaction, and one job's failure must not fail the
    /// group's others. (In SQLite a failed statement undoes only itself.)
    fn job<R>(&mut self, f: impl FnOnce(&mut Store) -> Result<R, StoreError>) -> Result<R, StoreError> {
        if self.conn.dialect() == Dialect::Sqlite {
            return f(self);
        }
        self.conn.open_savepoint()?;
        let result = f(self);
        self.conn.close_savepoint(result.is_ok())?;
        result
    }
}

/// `first` and the jobs that arrive within `wait` of it, up to [`MAX_GROUP`].
fn gather(rx: &mpsc::Receiver<Job>, first: Job, wait: Duration) -> Vec<Job> {
    let mut group = vec![first];
    let until = Instant::now() + wait;
    while group.len() < MAX_GROUP {
        match rx.recv_timeout(until.saturating_duration_since(Instant::now())) {
            Ok(job) => group.push(job),
            Err(_) => break,
        }
    }
    group
}

/// Runs `group` in one transaction. Each job works in its own savepoint, so one job's failure
/// rolls back only that job; every job hears the outcome of the commit.
fn run_group(store: &mut Store, group: Vec<Job>) {
    if let Err(e) = store.conn.begin() {
        // Without a group transaction each job's savepoint is its own transaction.
        tracing::warn!(error = %e, "cannot begin a group transaction");
        for job in group {
            job(store)(Ok(()));
        }
        return;
    }
    tracing::trace!(jobs = group.len(), "group commit");
    let replies: Vec<Reply> = group.into_iter().map(|job| job(store)).collect();
    let committed = store.conn.commit();
    for reply in replies {
        reply(committed.as_ref().map(|_| ()));
    }
}

impl StoreHandle {
    /// Gives memory back between rounds: the writer's page cache is emptied and idle reader
    /// connections are closed. A daemon then sits at its small resting size until the next
    /// round, instead of keeping the high-water mark of the last one.
    pub(crate) async fn release_memory(&self) -> Result<(), StoreError> {
        self.readers
            .idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        self.call(|s| {
            if let Some(conn) = s.sqlite_conn() {
                conn.execute_batch("PRAGMA shrink_memory;")?;
            }
            Ok(())
        })
        .await
    }
}

impl StoreThread {
    /// Waits for the store thread to finish its queued work and close the database. Call after
    /// dropping every handle.
    pub async fn join(self) {
        let _ = tokio::task::spawn_blocking(move || self.thread.join()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> Job {
        Box::new(|_| Box::new(|_| ()))
    }

    /// Queued jobs are taken even without waiting (a round of 304s is committed in groups
    /// too), never more than a group's worth.
    #[test]
    fn a_group_takes_what_is_queued_up_to_its_limit() {
        let (tx, rx) = mpsc::channel::<Job>();
        for _ in 0..MAX_GROUP + 6 {
            tx.send(job()).unwrap();
        }
        let first = rx.recv().unwrap();
        assert_eq!(gather(&rx, first, Duration::ZERO).len(), MAX_GROUP);
        let first = rx.recv().unwrap();
        assert_eq!(gather(&rx, first, Duration::ZERO).len(), 6);
    }

    /// The checkpointer's connection closes first, so the writer, closing last, folds the WAL
    /// back into the database and removes it: nothing is left for the next start to recover.
    #[tokio::test]
    async fn closing_the_store_leaves_no_wal_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let (handle, thread) = StoreHandle::open(&path).await.unwrap();
        handle
            .call(|s| {
                s.conn.batch(
                    "CREATE TABLE t (b BLOB);
                     WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)
                     INSERT INTO t SELECT zeroblob(3000) FROM n;",
                )?;
                Ok(())
            })
            .await
            .unwrap();
        assert!(path.with_extension("db-wal").exists());
        drop(handle);
        thread.join().await;
        assert!(!path.with_extension("db-wal").exists());
        let conn = rusqlite::Connection::open(&path).unwrap();
        let rows: i64 = conn
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 3000);
    }
}
