//! The async face of the store: one thread owns the connection and runs closures sent to it.
//!
//! This is the only way async code touches SQLite, so a slow disk never stalls a tokio worker
//! and every write is serialized through one connection (SQLite allows one writer anyway).

use std::path::Path;
use std::sync::mpsc;
use std::thread::JoinHandle;

use tokio::sync::oneshot;

use super::{Store, StoreError};

type Job = Box<dyn FnOnce(&mut Store) + Send>;

/// A cloneable handle to the store thread.
#[derive(Clone)]
pub struct StoreHandle {
    jobs: mpsc::Sender<Job>,
}

/// Joins the store thread; dropping every [`StoreHandle`] lets it finish.
pub struct StoreThread {
    thread: JoinHandle<()>,
}

impl StoreHandle {
    /// Opens the store on a new thread. Fails (without leaving a thread behind) if the
    /// database cannot be opened.
    pub async fn open(path: &Path) -> Result<(StoreHandle, StoreThread), StoreError> {
        let path = path.to_path_buf();
        let (ready_tx, ready_rx) = oneshot::channel();
        let (jobs, rx) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("tributary-store".into())
            .spawn(move || {
                let mut store = match Store::open(&path) {
                    Ok(store) => {
                        let _ = ready_tx.send(Ok(()));
                        store
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                // Ends when every handle is dropped; the connection closes (and checkpoints
                // the WAL) here, on its own thread.
                for job in rx {
                    job(&mut store);
                }
            })
            .map_err(StoreError::Thread)?;
        ready_rx.await.map_err(|_| StoreError::Closed)??;
        Ok((StoreHandle { jobs }, StoreThread { thread }))
    }

    /// Runs `f` on the store thread and returns its result.
    pub async fn call<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        F: FnOnce(&mut Store) -> Result<R, StoreError> + Send + 'static,
        R: Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        self.jobs
            .send(Box::new(move |store| {
                let _ = tx.send(f(store));
            }))
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }
}

impl StoreThread {
    /// Waits for the store thread to finish its queued work and close the database. Call after
    /// dropping every handle.
    pub async fn join(self) {
        let _ = tokio::task::spawn_blocking(move || self.thread.join()).await;
    }
}
