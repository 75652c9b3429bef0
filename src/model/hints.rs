//! What publishers say about when to poll them, as data: the hints in force for a feed and what
//! a document states about its rhythm. `schedule` turns headers and documents into these and
//! these into due times.

use std::time::Duration;

use chrono::{DateTime, Datelike, Timelike, Utc};

/// Hints in force for one feed, as absolute times.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Hints {
    /// From Retry-After: always honoured.
    pub(crate) retry_after: Option<DateTime<Utc>>,
    /// From max-age / Expires / ttl / sy:*: honoured unless the feed ignores hints.
    pub(crate) fresh_until: Option<DateTime<Utc>>,
    pub(crate) skip: Skip,
}

/// What the feed document itself says about its update rhythm.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct FeedRhythm {
    pub(crate) ttl: Option<Duration>,
    pub(crate) update_interval: Option<Duration>,
    pub(crate) skip: Skip,
}

/// RSS `<skipHours>` (0–23, GMT) and `<skipDays>` (Monday…Sunday): times not to poll.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Skip {
    /// Bit h set: skip hour h (UTC).
    pub(crate) hours: u32,
    /// Bit d set: skip weekday d (0 = Monday).
    pub(crate) days: u8,
}

impl Skip {
    /// The first time at or after `t` that is in neither a skipped hour nor a skipped day.
    pub(crate) fn next_allowed(&self, t: DateTime<Utc>) -> DateTime<Utc> {
        let all_hours = (1u32 << 24) - 1;
        if (self.hours & all_hours) == all_hours || self.days == 0x7f {
            // A feed that skips every hour or day cannot mean it; ignore the hint.
            return t;
        }
        let mut t = t;
        // At most 7 days × 24 hours of skipping can be needed.
        for _ in 0..(24 * 8) {
            let day_skipped = self.days & (1 << t.weekday().num_days_from_monday()) != 0;
            let hour_skipped = self.hours & (1 << t.hour()) != 0;
            if !day_skipped && !hour_skipped {
                return t;
            }
            let start_of_hour = t
                .with_minute(0)
                .and_then(|x| x.with_second(0))
                .and_then(|x| x.with_nanosecond(0));
            t = start_of_hour.unwrap_or(t) + chrono::Duration::hours(1);
        }
        t
    }
}
