//! Wall-clock time as an input. The daemon asks a [`Clock`] for "now" and sleeps with
//! [`sleep_until`]; production uses the system clock, tests a clock that runs on tokio's
//! (pausable) time, so schedules can be tested with `tokio::time::pause()` and `advance`.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// The longest single sleep: wall-clock jumps (suspend, NTP steps) are noticed within this.
pub(crate) const MAX_SLEEP: Duration = Duration::from_secs(60);

pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// Wall-clock time that advances with tokio's clock from a fixed starting point.
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    wall: DateTime<Utc>,
    start: tokio::time::Instant,
}

impl TokioClock {
    /// A clock that reads `wall` now and moves with tokio's (paused, in tests) time.
    pub fn starting_at(wall: DateTime<Utc>) -> TokioClock {
        TokioClock {
            wall,
            start: tokio::time::Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    fn now(&self) -> DateTime<Utc> {
        let elapsed = chrono::Duration::from_std(self.start.elapsed()).unwrap_or_default();
        self.wall + elapsed
    }
}

/// Sleeps until `clock` reads at least `t`, in steps of at most [`MAX_SLEEP`].
pub(crate) async fn sleep_until(clock: &dyn Clock, t: DateTime<Utc>) {
    loop {
        let now = clock.now();
        let Ok(left) = (t - now).to_std() else { return };
        if left.is_zero() {
            return;
        }
        tokio::time::sleep(left.min(MAX_SLEEP)).await;
    }
}
