//! One daemon per database: `tributary run` holds an exclusive lock on a file beside the
//! database for as long as it runs, so a second one (a stray manual start next to the
//! service, two units pointing at one file) refuses at start instead of polling every feed
//! twice. The lock is the kernel's (`flock`): it goes with the process, however it ends.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use super::StoreError;

/// Held while the daemon runs; dropping it releases the lock.
#[derive(Debug)]
pub(super) struct DaemonLock {
    _file: File,
}

/// The lock file of the database at `db`.
fn lock_path(db: &Path) -> PathBuf {
    let mut name = db.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    db.with_file_name(name)
}

impl DaemonLock {
    /// Takes the lock of the database at `db`, or says who holds it.
    pub(crate) fn acquire(db: &Path) -> Result<DaemonLock, StoreError> {
        let path = lock_path(db);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Unavailable {
                context: format!("cannot create the database directory {}", dir.display()),
                source: source.into(),
            })?;
        }
        let io = |source: std::io::Error| match source.kind() {
            // The lock lives beside the database: if it cannot be written, neither can that.
            std::io::ErrorKind::ReadOnlyFilesystem | std::io::ErrorKind::PermissionDenied => {
                StoreError::ReadOnly {
                    path: db.to_path_buf(),
                }
            }
            _ => StoreError::Unavailable {
                context: format!("cannot lock {}", path.display()),
                source: source.into(),
            },
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {
                // Who holds it, for the message a second daemon prints.
                file.set_len(0).map_err(io)?;
                file.rewind().map_err(io)?;
                write!(file, "{}", std::process::id()).map_err(io)?;
                Ok(DaemonLock { _file: file })
            }
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                Err(StoreError::Locked {
                    path: db.to_path_buf(),
                    pid: holder.trim().parse().ok(),
                })
            }
            Err(TryLockError::Error(source)) => Err(io(source)),
        }
    }
}

/// The pid of the daemon running on the database at `db`, if one is. Reads only: no lock
/// file is created where none is.
pub(crate) fn holder(db: &Path) -> Option<u32> {
    let mut file = File::open(lock_path(db)).ok()?;
    match file.try_lock_shared() {
        // Nobody holds it: the shared lock goes with the file, at once.
        Ok(()) => None,
        Err(TryLockError::WouldBlock) => {
            let mut pid = String::new();
            file.read_to_string(&mut pid).ok()?;
            pid.trim().parse().ok()
        }
        Err(TryLockError::Error(_)) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_holder_is_named_and_asking_creates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("t.db");
        assert_eq!(holder(&db), None);
        assert!(!lock_path(&db).exists());
        let lock = DaemonLock::acquire(&db).unwrap();
        assert_eq!(holder(&db), Some(std::process::id()));
        drop(lock);
        assert_eq!(holder(&db), None);
    }

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_pid() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("t.db");
        let first = DaemonLock::acquire(&db).unwrap();
        let err = DaemonLock::acquire(&db).unwrap_err();
        match &err {
            StoreError::Locked { path, pid } => {
                assert_eq!(path, &db);
                assert_eq!(*pid, Some(std::process::id()));
            }
            other => panic!("{other:?}"),
        }
        assert!(err.to_string().contains(&db.display().to_string()), "{err}");
        drop(first);
        DaemonLock::acquire(&db).unwrap();
    }
}
