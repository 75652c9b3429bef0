//! Hosts: waits a host asked for (429, 503 with Retry-After), requests in flight per host, and
//! the cluster's shared host turns.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::Semaphore;

use super::feed::Context;
use crate::fetch::FetchError;
use crate::model::FailureKind;
use crate::schedule::{Clock, hints};
use crate::store::{Coordination, StoreError};

/// How long a host that answered 429 (or 503) without a Retry-After is left alone.
pub(crate) const HOST_PENALTY: Duration = Duration::from_secs(30 * 60);

/// Hosts that asked everyone to wait (429, or 503 with Retry-After), until when: read from the
/// store when the poller starts, then kept here as they come (and in the store, by
/// [`hold_host`]), so a feed or a page learns of its host's wait without asking the store.
pub(super) struct HostDelays(pub(super) std::sync::Mutex<HashMap<String, DateTime<Utc>>>);

impl HostDelays {
    /// Until when `host` asked to wait, if that is still after `now`.
    pub(super) fn until(&self, host: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let delays = self.0.lock().unwrap_or_else(|e| e.into_inner());
        delays.get(host).copied().filter(|t| *t > now)
    }

    pub(super) fn hold(&self, host: &str, until: DateTime<Utc>) {
        let mut delays = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let entry = delays.entry(host.to_string()).or_insert(until);
        *entry = (*entry).max(until);
    }
}

/// `host` asked everyone to wait until `until`: every feed and page of this poller holds off,
/// and the store remembers it for the next poller (another `poll`, a restart).
pub(super) async fn hold_host(
    context: &Context,
    host: String,
    until: DateTime<Utc>,
    reason: String,
) -> Result<(), StoreError> {
    context.delays.hold(&host, until);
    context.store.delay_host(host, until, reason).await
}

/// At most `poll.per_host` requests in flight to any one host, whoever makes them: the Poller
/// starts at most that many feeds of a host, and a feed's own page fetches (`full_text`, often
/// on the same host) take their turns from the same permits.
pub(super) struct HostPermits {
    pub(super) per_host: usize,
    pub(super) hosts: std::sync::Mutex<PermitMap>,
    /// In a cluster, the turns are the cluster's: a local permit, then one of the host's
    /// turns in the shared store.
    pub(super) shared: Option<SharedTurns>,
}

/// The cluster's per-host turns (see [`Coordination::take_turn`]).
#[derive(Clone)]
pub(crate) struct SharedTurns {
    pub(crate) cluster: Arc<dyn Coordination>,
    /// How long a turn is held at most: a fetch's time limit, and then some. A node that dies
    /// holding one loses it after that.
    pub(crate) hold: Duration,
    /// How long a request waits for a turn before it goes ahead under the local limit alone
    /// (every turn held that long means their holders are stuck or the store is).
    pub(crate) wait: Duration,
    /// Wakes a waiter when a turn at its host is given back anywhere in the cluster.
    pub(crate) freed: Arc<FreedTurns>,
    /// The store could not be asked for a turn last time (said once, not at every fetch).
    pub(crate) failing: Arc<std::sync::atomic::AtomicBool>,
}

/// Per host, a wake-up for one request waiting for a turn there: the cluster announces each
/// turn given back (`TURNS_CHANNEL`), and one waiter per node tries again, instead of every
/// waiter polling the store.
#[derive(Default)]
pub(crate) struct FreedTurns(std::sync::Mutex<HashMap<String, Arc<tokio::sync::Notify>>>);

impl FreedTurns {
    pub(super) fn of(&self, host: &str) -> Arc<tokio::sync::Notify> {
        let mut hosts = self.0.lock().unwrap_or_else(|e| e.into_inner());
        // Kept small: hosts nobody waits for are dropped when the map grows.
        if hosts.len() >= HOST_PERMITS_KEPT {
            hosts.retain(|_, n| Arc::strong_count(n) > 1);
        }
        hosts.entry(host.to_string()).or_default().clone()
    }

    /// A turn at `host` was given back.
    pub(crate) fn freed(&self, host: &str) {
        let waiting = self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(host)
            .cloned();
        if let Some(waiting) = waiting {
            waiting.notify_one();
        }
    }
}

/// A turn at a host: a local permit, and the cluster's turn when there is one. The cluster's
/// is given back when this goes (or runs out by itself, if the node dies first).
pub(super) struct Turn {
    pub(super) _local: Option<tokio::sync::OwnedSemaphorePermit>,
    pub(super) shared: Option<(Arc<dyn Coordination>, crate::store::Turn)>,
}

impl Drop for Turn {
    fn drop(&mut self) {
        if let Some((cluster, turn)) = self.shared.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move {
                if let Err(e) = cluster.give_back(&turn).await {
                    tracing::debug!(error = %e, host = %turn.host, "cannot give a host turn back; it runs out");
                }
            });
        }
    }
}

/// The hosts' permits, and the size at which idle ones are dropped next.
pub(super) struct PermitMap {
    pub(super) permits: HashMap<String, Arc<Semaphore>>,
    pub(super) prune_at: usize,
}

/// Hosts whose permits are kept before idle ones are first dropped.
pub(super) const HOST_PERMITS_KEPT: usize = 1024;

impl SharedTurns {
    /// One of `host`'s turns in the cluster, waiting (with growing pauses) while all are held,
    /// at most `wait`; `None` when none came, or the store could not be asked.
    pub(super) async fn take(
        &self,
        host: &str,
        per_host: usize,
        clock: &dyn Clock,
    ) -> Option<(Arc<dyn Coordination>, crate::store::Turn)> {
        let started = tokio::time::Instant::now();
        let freed = self.freed.of(host);
        loop {
            let now = clock.now();
            let until = now + chrono::Duration::from_std(self.hold).unwrap_or_default();
            let taken = self.cluster.take_turn(host, per_host, now, until).await;
            if taken.is_ok() {
                self.failing.store(false, std::sync::atomic::Ordering::Relaxed);
            }
            match taken {
                Ok(Some(turn)) => return Some((self.cluster.clone(), turn)),
                Ok(None) if started.elapsed() < self.wait => {
                    // Until a turn is given back; a turn whose holder died frees itself only
                    // when it runs out, which a look now and then finds.
                    let _ = tokio::time::timeout(Duration::from_millis(500), freed.notified()).await;
                }
                Ok(None) => {
                    tracing::warn!(
                        host,
                        "no free turn at the host in the cluster; going ahead on this node's limit"
                    );
                    return None;
                }
                Err(e) => {
                    // Once while the store fails (every fetch would say it again); the daemon
                    // says that the store fails.
                    if !self.failing.swap(true, std::sync::atomic::Ordering::Relaxed) {
                        tracing::warn!(error = %e, host, "cannot take host turns in the cluster; going ahead on this node's limit until the store answers");
                    }
                    return None;
                }
            }
        }
    }
}

impl HostPermits {
    pub(super) fn new(per_host: usize, shared: Option<SharedTurns>) -> HostPermits {
        HostPermits {
            per_host: per_host.max(1),
            hosts: std::sync::Mutex::new(PermitMap {
                permits: HashMap::new(),
                prune_at: HOST_PERMITS_KEPT,
            }),
            shared,
        }
    }

    /// How many hosts have permits now.
    #[cfg(test)]
    pub(super) fn hosts(&self) -> usize {
        self.hosts.lock().unwrap_or_else(|e| e.into_inner()).permits.len()
    }

    /// Waits for a turn at `host` (none is needed for a local file): this node's, then, in a
    /// cluster, one of the cluster's.
    pub(super) async fn turn(&self, host: Option<&str>, clock: &dyn Clock) -> Turn {
        let Some(host) = host else {
            return Turn {
                _local: None,
                shared: None,
            };
        };
        let local = self.local_turn(host).await;
        let shared = match &self.shared {
            Some(shared) => shared.take(host, self.per_host, clock).await,
            None => None,
        };
        Turn {
            _local: local,
            shared,
        }
    }

    pub(super) async fn local_turn(&self, host: &str) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let permits = {
            let mut hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
            // Idle hosts (no turn held, nobody waiting) are dropped once the map reaches its
            // mark, which then doubles what is left: amortized O(1) per turn, and the map
            // stays about the size of the busy hosts however many come and go.
            if hosts.permits.len() >= hosts.prune_at {
                let per_host = self.per_host;
                hosts
                    .permits
                    .retain(|_, s| Arc::strong_count(s) > 1 || s.available_permits() < per_host);
                hosts.prune_at = (hosts.permits.len() * 2).max(HOST_PERMITS_KEPT);
            }
            hosts
                .permits
                .entry(host.to_string())
                .or_insert_with(|| Arc::new(Semaphore::new(self.per_host)))
                .clone()
        };
        permits.acquire_owned().await.ok()
    }
}

/// A 429, or a 503 with Retry-After, speaks for the whole host: every feed (and page) on it
/// waits until then. Other failures (a 403 included) are the feed's own.
pub(super) fn host_penalty(e: &FetchError, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    (e.kind() == FailureKind::RateLimited).then(|| {
        e.retry_after()
            .and_then(|v| hints::retry_after(v, now))
            .unwrap_or_else(|| now + chrono::Duration::from_std(HOST_PENALTY).unwrap_or_default())
    })
}
