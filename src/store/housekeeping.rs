//! Keeping a long-running store small and fast: retention with tombstones, expiry of old
//! tombstones, and what the engine needs besides (see [`super::Database::maintain`]), in
//! short writer steps so that polls never wait on housekeeping for long.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{Step, Store, StoreError};

/// A tombstone whose key its feed has not shown for this long can go: the entry will not
/// come back.
pub(crate) const TOMBSTONE_TTL: Duration = Duration::from_secs(90 * 24 * 60 * 60);

/// What may be removed.
#[derive(Debug, Clone)]
pub struct Retention {
    /// Entries older than this many days go (0: no age limit).
    pub keep_days: u32,
    /// Entries beyond this many per feed, oldest first, go (0: no count limit).
    pub keep_per_feed: usize,
    /// Entries some output shows now: they stay whatever their age.
    pub protected: HashSet<i64>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HousekeepingReport {
    pub entries_removed: usize,
    pub(crate) tombstones_expired: usize,
    /// Writer steps taken (deletion batches, maintenance steps), and the longest of them: how
    /// long polls could wait on housekeeping at most.
    pub steps: usize,
    pub longest_step: Duration,
    /// Which kind of step that was ("retire", "tombstones", "statistics", "vacuum").
    pub longest_kind: &'static str,
}

impl HousekeepingReport {
    fn step(&mut self, step: Step) {
        self.steps += 1;
        if step.took > self.longest_step {
            self.longest_step = step.took;
            self.longest_kind = step.kind;
        }
    }
}

/// A writer step aims at this long, so that no poll waits on housekeeping much longer. Well
/// under the 100 ms a poll may wait at most: on a store of 10,000,000 entries one batch can
/// take several times as long as the one before it.
pub(crate) const STEP_BUDGET: Duration = Duration::from_millis(20);
/// Entries retired per step to start with; the size then follows how long steps take.
const FIRST_BATCH: usize = 500;
/// However much there is to do, one run takes at most this many steps of each kind (the
/// rest waits for the next run).
pub(crate) const MAX_STEPS: usize = 100_000;

/// Retention, tombstone expiry and the engine's maintenance, in steps: what to remove is
/// found without holding the writer (10,000,000 entries are ranked on a reader), then removed
/// in batches sized to take about [`STEP_BUDGET`] each, with polls' writes served between.
pub async fn housekeeping(
    store: &Store,
    retention: Retention,
    now: DateTime<Utc>,
) -> Result<HousekeepingReport, StoreError> {
    let mut report = HousekeepingReport::default();
    let mut doomed = store
        .retention_candidates(retention.keep_days, retention.keep_per_feed, now)
        .await?;
    doomed.retain(|id| !retention.protected.contains(id));
    let mut batch = FIRST_BATCH;
    for _ in 0..MAX_STEPS {
        if doomed.is_empty() {
            break;
        }
        let chunk: Vec<i64> = doomed.drain(..batch.min(doomed.len())).collect();
        let (removed, took) = store.retire_entries(chunk, now).await?;
        report.entries_removed += removed;
        report.step(Step { kind: "retire", took });
        batch = next_batch(batch, took);
    }
    let cutoff = now - chrono::Duration::from_std(TOMBSTONE_TTL).unwrap_or_default();
    let mut batch = FIRST_BATCH;
    for _ in 0..MAX_STEPS {
        let (expired, took) = store.expire_tombstones(cutoff, batch).await?;
        report.tombstones_expired += expired;
        report.step(Step {
            kind: "tombstones",
            took,
        });
        if expired < batch {
            break;
        }
        batch = next_batch(batch, took);
    }
    for step in store.maintain().await? {
        report.step(step);
    }
    Ok(report)
}

/// The next batch size after one of `size` took `took`: aiming at [`STEP_BUDGET`], growing by
/// at most half, never below 16.
pub(crate) fn next_batch(size: usize, took: Duration) -> usize {
    let took = took.max(Duration::from_micros(100));
    let scaled = (size as f64 * STEP_BUDGET.as_secs_f64() / took.as_secs_f64()) as usize;
    scaled.clamp(16, (size + size / 2).max(16))
}
