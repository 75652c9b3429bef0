//! The embedded store: one SQLite file (rusqlite, bundled).
//!
//! One thread owns the writing connection and runs the jobs sent to it, committing those that
//! arrive together in one transaction (group commit); reads that must not queue behind writes
//! run on read-only connections from a small pool, on the blocking pool. So a slow disk never
//! stalls a tokio worker, and every write goes through one connection (SQLite allows one
//! writer anyway). In WAL mode a reader sees the last committed state and neither blocks nor
//! waits for the writer; WAL checkpoints run on a thread of their own ([`checkpoint`]).
//!
//! Schema changes are append-only migrations versioned by `PRAGMA user_version`, each in one
//! transaction; a database written by a newer Tributary is refused before anything is written
//! to it.

mod checkpoint;

mod entries;
mod feeds;
mod icons;
mod lock;
mod maintenance;
mod outbox;
mod readers;
mod outputs;
mod schema;
mod subscriptions;
mod writer;

use writer::{Db, MAX_WAIT, Message, clone_error, gather, run_group};

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use rusqlite::{Connection, OpenFlags};
use tokio::sync::oneshot;

use super::{
    Candidate, CandidateQuery, Claimed, Coordination, Database, Delivery, EntryStats, FeedUpdate, IconLooked,
    NewDelivery, ParsedBatch, ReaderSighting, Scheduled, Secret, Step, StoreError, StoreOutcome,
    WebhookState,
};
use crate::model::Fingerprints;
use crate::model::{
    ClusterNode, FeedError, FeedState, IconImage, IconState, ListState, OutputState, StoredEntry,
    Subscription,
};
use checkpoint::{Checkpointer, Thresholds};
use lock::DaemonLock;
pub(crate) use lock::holder as running_daemon;

/// The SQLite store: the writer thread and the readers.
pub(crate) struct SqliteStore {
    // Declared (so dropped) first: when the store goes, the idle readers close before the
    // writer is told to finish, so the writer's connection is the last one and its close
    // checkpoints and removes the WAL. (A reader closing last cannot: it is read-only, and a
    // clean exit would leave a -wal file behind.)
    readers: Arc<Readers>,
    jobs: mpsc::Sender<Message>,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// `tributary run`'s claim on the database: one daemon per file.
    lock: Mutex<Option<DaemonLock>>,
    describe: String,
}

/// Idle read-only connections, reused.
struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Db>>,
    closed: std::sync::atomic::AtomicBool,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` on a new writer thread, its schema
    /// brought up to date. Fails (without leaving a thread behind) if it cannot be written.
    pub(crate) async fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let describe = format!("database {}", path.display());
        let (ready_tx, ready_rx) = oneshot::channel();
        let (jobs, rx) = mpsc::channel::<Message>();
        let writer_path = path.to_path_buf();
        let thread = std::thread::Builder::new()
            .name("tributary-store".into())
            .spawn(move || {
                let mut db = match Db::open(&writer_path) {
                    Ok(db) => {
                        let _ = ready_tx.send(Ok(()));
                        db
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let checkpointer = Checkpointer::start(&mut db.conn, &writer_path, Thresholds::DEFAULT)
                    .inspect_err(
                        |e| tracing::warn!(error = %e, "checkpointing on the writer: no checkpoint thread"),
                    )
                    .ok();
                let mut last_run = Duration::ZERO;
                while let Ok(Message::Job(first)) = rx.recv() {
                    let (group, close) = gather(&rx, first, last_run.min(MAX_WAIT));
                    let started = Instant::now();
                    run_group(&mut db, group);
                    last_run = started.elapsed();
                    if close {
                        break;
                    }
                }
                if let Some(checkpointer) = checkpointer {
                    checkpointer.stop(&mut db.conn);
                }
                // The connection closes (and checkpoints the WAL) here, on its own thread.
            })
            .map_err(|e| StoreError::Unavailable {
                context: format!("cannot start the writer of {describe}"),
                source: e.into(),
            })?;
        // Waited for on the blocking pool, like every reply of the store thread (see `write`).
        tokio::task::spawn_blocking(move || ready_rx.blocking_recv())
            .await
            .map_err(|_| StoreError::Closed)?
            .map_err(|_| StoreError::Closed)??;
        Ok(SqliteStore {
            readers: Arc::new(Readers {
                path: path.to_path_buf(),
                idle: Mutex::new(Vec::new()),
                closed: false.into(),
            }),
            jobs,
            thread: Mutex::new(Some(thread)),
            lock: Mutex::new(None),
            describe,
        })
    }

    /// Opens the database for `tributary run`, which holds it alone for as long as it runs.
    pub(crate) async fn open_exclusive(path: &Path) -> Result<SqliteStore, StoreError> {
        let lock = DaemonLock::acquire(path)?;
        let store = SqliteStore::open(path).await?;
        *store.lock.lock().unwrap_or_else(|e| e.into_inner()) = Some(lock);
        Ok(store)
    }

    fn error(&self, e: rusqlite::Error) -> StoreError {
        error(&self.describe, e)
    }

    /// Runs `f` on the store thread and returns its result once it is committed.
    async fn write<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        F: FnOnce(&mut Db) -> rusqlite::Result<R> + Send + 'static,
        R: Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        self.jobs
            .send(Message::Job(Box::new(move |db| {
                let result = f(db);
                Box::new(move |committed: Result<(), &rusqlite::Error>| {
                    let result = match committed {
                        Ok(()) => result.map_err(Some),
                        Err(e) => Err(Some(clone_error(e))),
                    };
                    let _ = tx.send(result);
                })
            })))
            .map_err(|_| StoreError::Closed)?;
        // The reply is awaited on the blocking pool, not in the task: to tokio a write being
        // committed is work in progress, so a paused clock (the daemon's tests run on one)
        // does not jump ahead to the next timer while the store thread works.
        tokio::task::spawn_blocking(move || rx.blocking_recv())
            .await
            .map_err(|_| StoreError::Closed)?
            .map_err(|_| StoreError::Closed)?
            .map_err(|e| e.map_or(StoreError::Closed, |e| self.error(e)))
    }

    /// Runs a read-only `f` on a reader connection, without waiting for queued writes.
    async fn read<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        F: FnOnce(&Db) -> rusqlite::Result<R> + Send + 'static,
        R: Send + 'static,
    {
        let readers = self.readers.clone();
        tokio::task::spawn_blocking(move || {
            if readers.closed.load(std::sync::atomic::Ordering::Acquire) {
                return Err(None);
            }
            let idle = readers.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
            let db = match idle {
                Some(db) => db,
                None => Db::open_reader(&readers.path).map_err(Some)?,
            };
            let result = f(&db);
            readers.idle.lock().unwrap_or_else(|e| e.into_inner()).push(db);
            result.map_err(Some)
        })
        .await
        .map_err(|_| StoreError::Closed)?
        .map_err(|e| e.map_or(StoreError::Closed, |e| self.error(e)))
    }
}

/// An SQLite error as the store reports it: a busy or unopenable database is unavailable (for
/// now), anything else the engine's own failure.
fn error(describe: &str, e: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode::{CannotOpen, DatabaseBusy, DatabaseLocked, ReadOnly};
    let store = describe.to_string();
    match e.sqlite_error_code() {
        Some(DatabaseBusy | DatabaseLocked) => StoreError::Unavailable {
            context: format!("{store} is busy"),
            source: e.into(),
        },
        Some(CannotOpen) => StoreError::Unavailable {
            context: format!("cannot open {store}"),
            source: e.into(),
        },
        Some(ReadOnly) => StoreError::ReadOnly {
            path: PathBuf::from(describe.trim_start_matches("database ")),
        },
        _ => StoreError::Backend {
            store,
            source: e.into(),
        },
    }
}

pub(crate) fn from_unix(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(secs, 0).single().unwrap_or_default()
}

/// Times that schedules compare (due times, last fetch, leases) keep milliseconds: whole
/// seconds made a feed polled at 10:02:17.9 for a slot at 10:02:17.6 look polled before it.
pub(crate) fn from_millis(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
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

#[async_trait::async_trait]
impl Database for SqliteStore {
    fn describe(&self) -> &str {
        &self.describe
    }

    async fn ensure_feeds(
        &self,
        urls: Vec<String>,
        now: DateTime<Utc>,
    ) -> Result<Vec<FeedState>, StoreError> {
        self.write(move |db| db.ensure_feeds(&urls, now)).await
    }

    async fn rekey_feeds(&self, renames: Vec<(String, String)>, keep_ids: bool) -> Result<usize, StoreError> {
        self.write(move |db| db.rekey_feeds(&renames, keep_ids)).await
    }

    async fn feed_identities(&self) -> Result<Vec<(String, Option<String>)>, StoreError> {
        self.read(|db| db.feed_identities()).await
    }

    async fn forgive_gone(&self, urls: Vec<String>, config_fingerprint: String) -> Result<usize, StoreError> {
        self.write(move |db| db.forgive_gone(&urls, &config_fingerprint))
            .await
    }

    async fn apply_catalogue_limit(&self, limit: usize) -> Result<bool, StoreError> {
        self.write(move |db| db.apply_catalogue_limit(limit)).await
    }

    async fn schedule(&self, due: Vec<(i64, Scheduled)>) -> Result<(), StoreError> {
        if due.is_empty() {
            return Ok(());
        }
        self.write(move |db| db.schedule(&due)).await
    }

    async fn unschedule_others(&self, configured: Vec<i64>) -> Result<usize, StoreError> {
        self.write(move |db| db.unschedule_others(&configured)).await
    }

    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        lease_until: DateTime<Utc>,
    ) -> Result<Claimed, StoreError> {
        self.write(move |db| db.claim_due(now, limit, lease_until)).await
    }

    async fn claim_feeds(
        &self,
        ids: Vec<i64>,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        due_only: bool,
    ) -> Result<Vec<FeedState>, StoreError> {
        self.write(move |db| db.claim_feeds(&ids, now, lease_until, due_only))
            .await
    }

    async fn renew_leases(&self, _ids: Vec<i64>, _until: DateTime<Utc>) -> Result<Vec<i64>, StoreError> {
        // One daemon per database (the lock): nothing can take its claims.
        Ok(Vec::new())
    }

    async fn release_leases(&self, ids: Option<Vec<i64>>) -> Result<usize, StoreError> {
        self.write(move |db| db.release_leases(ids.as_deref())).await
    }

    async fn record_poll(
        &self,
        feed_id: i64,
        update: FeedUpdate,
        scheduled: Scheduled,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.write(move |db| db.record_poll(feed_id, &update, &scheduled, now))
            .await
    }

    async fn store_parsed(
        &self,
        feed_id: i64,
        batch: ParsedBatch,
        now: DateTime<Utc>,
    ) -> Result<StoreOutcome, StoreError> {
        self.write(move |db| db.savepoint(|db| db.store_parsed(feed_id, &batch, now)))
            .await
    }

    async fn note_redirect(
        &self,
        feed_id: i64,
        target: Option<String>,
    ) -> Result<Option<String>, StoreError> {
        self.write(move |db| db.note_redirect(feed_id, target.as_deref()))
            .await
    }

    async fn reset_feed(&self, feed_id: i64) -> Result<(), StoreError> {
        self.write(move |db| db.reset_feed(feed_id)).await
    }

    async fn delay_host(&self, host: String, until: DateTime<Utc>, reason: String) -> Result<(), StoreError> {
        self.write(move |db| db.delay_host(&host, until, &reason)).await
    }

    async fn host_delays(&self, now: DateTime<Utc>) -> Result<HashMap<String, DateTime<Utc>>, StoreError> {
        self.read(move |db| db.host_delays(now)).await
    }

    async fn fingerprints(&self, feed_id: i64) -> Result<Fingerprints, StoreError> {
        self.read(move |db| db.fingerprints(feed_id)).await
    }

    async fn content_hashes(
        &self,
        feed_id: i64,
        keys: Vec<String>,
    ) -> Result<HashMap<String, String>, StoreError> {
        self.read(move |db| db.content_hashes(feed_id, keys)).await
    }

    async fn full_text_retries(
        &self,
        feed_id: i64,
        before: DateTime<Utc>,
    ) -> Result<Vec<(i64, String)>, StoreError> {
        self.read(move |db| db.full_text_retries(feed_id, before)).await
    }

    async fn record_full_text(
        &self,
        tries: Vec<(i64, Result<String, String>)>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.write(move |db| db.record_full_text(&tries, now)).await
    }

    async fn unannounced(&self, output: String, shown: Vec<i64>) -> Result<Option<Vec<i64>>, StoreError> {
        self.read(move |db| db.unannounced(&output, &shown)).await
    }

    async fn announce(
        &self,
        output: String,
        ids: Vec<i64>,
        deliveries: Vec<NewDelivery>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.write(move |db| db.announce(&output, &ids, &deliveries, now))
            .await
    }

    async fn claim_deliveries(
        &self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        self.write(move |db| db.claim_deliveries(now, until, limit)).await
    }

    async fn delivered(&self, id: i64) -> Result<(), StoreError> {
        self.write(move |db| db.delivered(id)).await
    }

    async fn delivery_failed(
        &self,
        id: i64,
        error: String,
        retry_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.write(move |db| db.delivery_failed(id, &error, retry_at, now))
            .await
    }

    async fn record_readers(&self, seen: Vec<ReaderSighting>, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.write(move |db| db.record_readers(&seen, now)).await
    }

    async fn reader_counts(&self, now: DateTime<Utc>) -> Result<Vec<(String, String, u64)>, StoreError> {
        self.read(move |db| db.reader_counts(now)).await
    }

    async fn secret(&self, which: Secret) -> Result<String, StoreError> {
        self.write(move |db| db.secret(which.name())).await
    }

    async fn put_subscription(&self, sub: Subscription, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.write(move |db| db.put_subscription(&sub, now)).await
    }

    async fn drop_subscription(&self, feed_id: i64, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.write(move |db| db.drop_subscription(feed_id, now)).await
    }

    async fn count_push(&self, feed_id: i64, at: DateTime<Utc>, taken: bool) -> Result<(), StoreError> {
        self.write(move |db| db.count_push(feed_id, at, taken)).await
    }

    async fn put_list(&self, list: ListState) -> Result<(), StoreError> {
        self.write(move |db| db.put_list(&list)).await
    }

    async fn lists(&self) -> Result<Vec<ListState>, StoreError> {
        self.read(|db| db.lists()).await
    }

    async fn subscriptions(&self) -> Result<Vec<Subscription>, StoreError> {
        self.read(|db| db.subscriptions()).await
    }

    async fn subscription(&self, feed_id: i64) -> Result<Option<Subscription>, StoreError> {
        self.read(move |db| db.subscription(feed_id)).await
    }

    async fn next_delivery(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.read(|db| db.next_delivery()).await
    }

    async fn webhook_states(&self) -> Result<Vec<WebhookState>, StoreError> {
        self.read(|db| db.webhook_states()).await
    }

    async fn record_icons(&self, looks: Vec<IconLooked>, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.write(move |db| db.record_icons(&looks, now)).await
    }

    async fn icon_state(&self, feed_id: i64) -> Result<Option<IconState>, StoreError> {
        self.read(move |db| db.icon_state(feed_id)).await
    }

    async fn icons_of(&self, ids: Vec<i64>) -> Result<HashMap<i64, IconImage>, StoreError> {
        self.read(move |db| db.icons_of(&ids)).await
    }

    async fn icon_bytes(&self, hash: String) -> Result<Option<(String, Vec<u8>)>, StoreError> {
        self.read(move |db| db.icon_bytes(&hash)).await
    }

    async fn feeds_by_url(&self, urls: Arc<[String]>) -> Result<HashMap<String, FeedState>, StoreError> {
        self.read(move |db| db.feeds_by_url(&urls)).await
    }

    async fn feeds_by_id(&self, ids: Vec<i64>) -> Result<HashMap<i64, FeedState>, StoreError> {
        self.read(move |db| db.feeds_by_id(&ids)).await
    }

    async fn feed_ids(&self) -> Result<Vec<(i64, String)>, StoreError> {
        self.read(|db| db.feed_ids()).await
    }

    async fn feed_errors(&self, feed_id: i64) -> Result<Vec<FeedError>, StoreError> {
        self.read(move |db| db.feed_errors(feed_id)).await
    }

    async fn entry_stats(&self) -> Result<HashMap<String, EntryStats>, StoreError> {
        self.read(|db| db.entry_stats()).await
    }

    async fn candidates(&self, query: CandidateQuery) -> Result<Vec<Candidate>, StoreError> {
        self.read(move |db| db.candidates(&query)).await
    }

    async fn entries(&self, ids: Vec<i64>) -> Result<Vec<StoredEntry>, StoreError> {
        self.read(move |db| db.entries(&ids)).await
    }

    async fn entries_with_links(&self, links: Vec<String>) -> Result<Vec<StoredEntry>, StoreError> {
        self.read(move |db| db.entries_with_links(&links)).await
    }

    async fn entries_matching(
        &self,
        what: String,
        canonical: String,
    ) -> Result<Vec<StoredEntry>, StoreError> {
        self.read(move |db| db.entries_matching(&what, &canonical)).await
    }

    async fn entry_keys(&self) -> Result<Vec<(i64, String, String)>, StoreError> {
        self.read(|db| db.entry_keys()).await
    }

    async fn retention_candidates(
        &self,
        keep_days: u32,
        keep_per_feed: usize,
        now: DateTime<Utc>,
    ) -> Result<Vec<i64>, StoreError> {
        self.read(move |db| db.retention_candidates(keep_days, keep_per_feed, now))
            .await
    }

    async fn retire_entries(
        &self,
        ids: Vec<i64>,
        now: DateTime<Utc>,
    ) -> Result<(usize, Duration), StoreError> {
        self.write(move |db| {
            let started = Instant::now();
            let removed = db.savepoint(|db| db.retire_entries(&ids, now))?;
            Ok((removed, started.elapsed()))
        })
        .await
    }

    async fn expire_tombstones(
        &self,
        cutoff: DateTime<Utc>,
        limit: usize,
    ) -> Result<(usize, Duration), StoreError> {
        self.write(move |db| {
            let started = Instant::now();
            let expired = db.expire_tombstones(cutoff, limit)?;
            Ok((expired, started.elapsed()))
        })
        .await
    }

    async fn maintain(&self) -> Result<Vec<Step>, StoreError> {
        maintenance::maintain(self).await
    }

    async fn release_memory(&self) -> Result<(), StoreError> {
        self.readers
            .idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        self.write(|db| db.conn.execute_batch("PRAGMA shrink_memory;"))
            .await
    }

    async fn integrity_check(&self) -> Result<Result<(), String>, StoreError> {
        self.read(|db| db.integrity_check()).await
    }

    async fn record_outputs(
        &self,
        outcomes: Vec<(String, Result<bool, String>)>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.write(move |db| db.record_outputs(&outcomes, now)).await
    }

    async fn outputs(&self) -> Result<Vec<OutputState>, StoreError> {
        self.read(|db| db.outputs()).await
    }

    async fn cluster(
        &self,
        _now: DateTime<Utc>,
        _lease: Duration,
    ) -> Result<(Vec<ClusterNode>, HashMap<i64, String>), StoreError> {
        Ok(Default::default())
    }

    fn coordination(&self) -> Option<Arc<dyn Coordination>> {
        None
    }

    async fn close(&self) {
        self.readers
            .closed
            .store(true, std::sync::atomic::Ordering::Release);
        self.readers
            .idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        let _ = self.jobs.send(Message::Close);
        let thread = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(thread) = thread {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
        self.lock.lock().unwrap_or_else(|e| e.into_inner()).take();
    }
}

#[cfg(test)]
mod tests;
