//! WAL checkpoints on their own thread and connection, so the writer seldom waits for the disk.
//!
//! A checkpoint copies committed pages from the WAL into the database file and, with
//! `synchronous=NORMAL`, syncs both files. By default SQLite runs one on the committing
//! connection every 1,000 pages, so the store thread stopped for two `fsync`s every 8 MB it
//! wrote: on this project's benchmark machine (a VM disk, 30–60 ms per `fsync`) that was 1.1 s
//! of a 3.5 s cold poll of 1,000 feeds, all of it waiting with the CPU idle. Here a commit only
//! wakes the checkpointer, which checkpoints on a second connection while the writer goes on.
//!
//! Durability is unchanged: the same syncs happen in the same order, only on another thread.

use std::ffi::c_int;
use std::path::Path;
use std::sync::mpsc;
use std::thread::JoinHandle;

use rusqlite::Connection;
use rusqlite::hooks::Wal;
use rusqlite::wal::CheckpointMode;

/// When commits wake the checkpointer, and when the writer checkpoints itself, in WAL frames
/// (pages) since the log last started over.
#[derive(Debug, Clone, Copy)]
pub(super) struct Thresholds {
    /// The checkpointer is woken from here: SQLite's own auto-checkpoint threshold.
    pub(crate) wake: c_int,
    /// The writer checkpoints itself from here. The log starts over only when a write begins
    /// after a checkpoint that caught up completely, which a checkpointer running beside a
    /// steady stream of commits never quite does; without this the WAL would grow for as long
    /// as a burst of writes lasts. The writer's checkpoint copies only what the checkpointer
    /// has not copied yet. 8,000 frames of 8 KiB pages is 64 MiB of WAL at most.
    pub(crate) limit: c_int,
}

impl Thresholds {
    pub(super) const DEFAULT: Thresholds = Thresholds {
        wake: 1000,
        limit: 8000,
    };
}

/// The checkpointer thread. Stop it with [`Checkpointer::stop`] before closing the writer, so
/// that the writer, closing last, folds the WAL back and removes it.
pub(super) struct Checkpointer {
    thread: JoinHandle<()>,
}

impl Checkpointer {
    /// Opens a second connection to `path`, starts the thread and hooks `writer`'s commits to
    /// it. On failure the writer keeps SQLite's own checkpoints.
    pub(super) fn start(
        writer: &mut Connection,
        path: &Path,
        thresholds: Thresholds,
    ) -> std::io::Result<Checkpointer> {
        let conn = Connection::open(path).map_err(std::io::Error::other)?;
        // A connection learns that the database is in WAL mode only once it reads it; until
        // then a checkpoint does nothing.
        let mode: String = conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .map_err(std::io::Error::other)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(std::io::Error::other(format!("journal mode is {mode}, not WAL")));
        }
        // One pending wake-up is enough: a checkpoint copies everything committed before it.
        let (wake, woken) = mpsc::sync_channel::<()>(1);
        let thread = std::thread::Builder::new()
            .name("tributary-checkpoint".into())
            .spawn(move || {
                let mut failures = Failures::default();
                while woken.recv().is_ok() {
                    // PASSIVE never waits for the writer or readers; what a reader still needs
                    // is copied next time.
                    failures.note(conn.wal_checkpoint_v2(None::<&str>, CheckpointMode::PASSIVE));
                }
            })?;
        let mut failures = Failures::default();
        let hook = move |wal: &mut Wal, frames: c_int| {
            if frames >= thresholds.limit {
                // Busy when the checkpointer is at work: the next commit tries again, and
                // the checkpointer is not woken meanwhile, so it soon is not.
                failures.note(wal.checkpoint_v2(CheckpointMode::PASSIVE));
            } else if frames >= thresholds.wake {
                let _ = wake.try_send(());
            }
            Ok(())
        };
        // On failure the hook, and with it the sender, is dropped, which ends the thread.
        writer.wal_hook(Some(hook)).map_err(std::io::Error::other)?;
        Ok(Checkpointer { thread })
    }

    /// Unhooks `writer` (ending the thread once its checkpoint is done) and waits for it.
    pub(super) fn stop(self, writer: &mut Connection) {
        if let Err(e) = writer.wal_hook(None::<fn(&mut Wal, c_int) -> rusqlite::Result<()>>) {
            tracing::warn!(error = %e, "cannot unhook the WAL checkpointer");
            return;
        }
        let _ = self.thread.join();
    }
}

/// Checkpoint failures, logged when they start and when they end: every commit may try a
/// checkpoint, and a failure that lasts (a full disk) must not log once per commit. `Busy`
/// (another checkpoint is running) is not a failure.
#[derive(Default)]
struct Failures {
    failing: bool,
}

impl Failures {
    fn note(&mut self, result: rusqlite::Result<(c_int, c_int)>) {
        match result {
            Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) => {}
            Err(e) if !self.failing => {
                tracing::warn!(error = %e, "WAL checkpoint failed; retrying after the next commits");
                self.failing = true;
            }
            Ok(_) if self.failing => {
                tracing::info!("WAL checkpoints work again");
                self.failing = false;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_checkpoint_is_not_a_failure_and_a_lasting_one_is_noted_once() {
        let error = |code| {
            Err(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(code),
                None,
            ))
        };
        let mut failures = Failures::default();
        failures.note(error(rusqlite::ffi::SQLITE_BUSY));
        assert!(!failures.failing);
        failures.note(error(rusqlite::ffi::SQLITE_FULL));
        failures.note(error(rusqlite::ffi::SQLITE_FULL));
        assert!(failures.failing);
        failures.note(Ok((0, 0)));
        assert!(!failures.failing);
    }

    fn wal_database(dir: &Path) -> Connection {
        let conn = Connection::open(dir.join("t.db")).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.execute_batch("CREATE TABLE t (b BLOB)").unwrap();
        conn
    }

    /// Commits `pages` pages or so of new data.
    fn write_pages(conn: &Connection, pages: usize) {
        conn.execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
             INSERT INTO t SELECT zeroblob(3500) FROM n",
            [pages as i64],
        )
        .unwrap();
    }

    fn wal_frames(dir: &Path) -> u64 {
        let len = std::fs::metadata(dir.join("t.db-wal")).map_or(0, |m| m.len());
        len.saturating_sub(32) / (24 + 4096)
    }

    #[test]
    fn the_checkpointer_copies_the_wal_into_the_database_off_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = wal_database(dir.path());
        let thresholds = Thresholds {
            wake: 100,
            limit: 10_000,
        };
        let checkpointer = Checkpointer::start(&mut writer, &dir.path().join("t.db"), thresholds).unwrap();
        let before = std::fs::metadata(dir.path().join("t.db")).unwrap().len();
        write_pages(&writer, 300);
        // Stopping waits for the wake-up already sent, so its checkpoint has run.
        checkpointer.stop(&mut writer);
        let after = std::fs::metadata(dir.path().join("t.db")).unwrap().len();
        assert!(after > before + 250 * 4096, "database {before} -> {after} bytes");
        // Everything was copied: a checkpoint now has nothing left to do.
        let (log, done) = writer
            .wal_checkpoint_v2(None::<&str>, CheckpointMode::PASSIVE)
            .unwrap();
        assert_eq!(log, done);
    }

    #[test]
    fn the_wal_starts_over_at_the_limit_while_writes_go_on() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = wal_database(dir.path());
        let thresholds = Thresholds { wake: 10, limit: 50 };
        let checkpointer = Checkpointer::start(&mut writer, &dir.path().join("t.db"), thresholds).unwrap();
        for _ in 0..40 {
            write_pages(&writer, 10);
        }
        checkpointer.stop(&mut writer);
        // 40 commits of about 10 pages: 400 frames if the log never started over. Where it
        // starts over depends on when the checkpointer thread runs (under a loaded machine, a
        // few of the writer's own checkpoints find it busy), so the test holds the promise
        // itself: the log started over while the writes went on.
        let frames = wal_frames(dir.path());
        assert!(frames < 350, "{frames} frames in the WAL");
        let rows: i64 = writer
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 400);
    }
}
