//! Owns *when* each feed is due: a pure function of (policy, feed state, now).
//!
//! The cron schedule says when we would like to poll; a per-feed jitter spreads feeds that share
//! a schedule over a window so that 500 feeds do not hit the network in the same second; a
//! failing feed backs off exponentially (capped at a day) and returns to its schedule after a
//! success; and the publisher's hints (Retry-After, Cache-Control / Expires, RSS `<ttl>`,
//! `<skipHours>` / `<skipDays>`, `sy:updatePeriod`) say the earliest we may. Nothing here does
//! I/O or reads a clock: time is an argument, so the daemon and the tests drive it the same way.

pub(crate) mod clock;
pub(crate) mod hints;

use std::time::Duration;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::model::{FailureKind, FeedSpec, FeedState};

pub(crate) use crate::model::{CronSchedule, Hints, Skip};

pub(crate) use clock::{Clock, SystemClock};

/// First retry delay after a transient failure (timeout, refused connection, 5xx); doubles
/// per consecutive failure.
pub(crate) const BACKOFF_BASE: Duration = Duration::from_secs(5 * 60);
/// First retry delay after a failure that says something about the feed itself (404, 403, a
/// body that is not a feed, too large): retrying in minutes would only repeat it.
pub(crate) const PERMANENT_BACKOFF_BASE: Duration = Duration::from_secs(60 * 60);
/// Longest delay between tries of a failing feed.
pub(crate) const BACKOFF_CAP: Duration = Duration::from_secs(24 * 60 * 60);

/// How one feed is scheduled (from the config).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub(crate) cron: CronSchedule,
    /// Upper bound of the per-feed offset added to each cron time.
    pub(crate) jitter: Duration,
    /// When false, caching hints (max-age, Expires, ttl, sy:*, skipHours/Days) are ignored;
    /// Retry-After after a 429/503 is always honoured.
    pub(crate) respect_hints: bool,
    /// A feed failing for this long is reported abandoned (it is still tried, at the cap).
    pub(crate) give_up_after: Duration,
    /// How often a feed its hub pushes is still polled (`websub.poll_every`); `None`: twelve
    /// times its schedule's interval, at most [`PUSHED_POLL_CAP`].
    pub(crate) pushed_every: Option<Duration>,
}

/// The most a pushed feed's polls are stretched to by default: one a day still catches what
/// a hub failed to deliver.
pub(crate) const PUSHED_POLL_CAP: Duration = Duration::from_secs(24 * 60 * 60);
/// How many times less often a pushed feed is polled by default (NewsBlur's figure).
const PUSHED_STRETCH: u32 = 12;

impl Policy {
    /// How `feed` is scheduled under `config`: its own schedule, else `[poll] schedule`.
    pub fn of(config: &Config, feed: &FeedSpec) -> Policy {
        Policy {
            cron: feed
                .schedule
                .clone()
                .unwrap_or_else(|| config.poll.schedule.clone()),
            jitter: config.poll.jitter,
            respect_hints: !feed.ignore_hints,
            give_up_after: config.poll.give_up_after,
            pushed_every: config.websub.poll_every,
        }
    }

    /// What due times computed under this policy depend on: when it changes (a new schedule
    /// in the config), stored due times are computed again.
    pub fn key(&self) -> String {
        let mut key = format!(
            "{}|{}|{}",
            self.cron,
            self.jitter.as_millis(),
            if self.respect_hints { "hints" } else { "no-hints" }
        );
        if let Some(every) = self.pushed_every {
            key.push_str(&format!("|pushed {}", every.as_millis()));
        }
        key
    }

    /// How long after a poll a pushed feed is polled again.
    fn pushed_interval(&self, after: DateTime<Utc>) -> Duration {
        self.pushed_every.unwrap_or_else(|| {
            self.cron
                .interval_near(after)
                .map_or(PUSHED_POLL_CAP, |i| i.saturating_mul(PUSHED_STRETCH))
                .min(PUSHED_POLL_CAP)
        })
    }
}

/// What scheduling needs to know about a feed's history.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    /// When the feed was last fetched.
    pub last_fetch: Option<DateTime<Utc>>,
    /// Failures since the last success.
    pub consecutive_failures: u32,
    /// The kind of the last failure, while failing.
    pub failure: Option<FailureKind>,
    /// Start of the current run of failures.
    pub failing_since: Option<DateTime<Utc>>,
    /// The publisher's hints in force.
    pub hints: Hints,
    /// The feed was gone (410) and must not be polled until the config changes.
    pub gone: bool,
    /// Until when its hub pushes it (an active WebSub subscription).
    pub pushed_until: Option<DateTime<Utc>>,
}

impl From<&FeedState> for History {
    fn from(state: &FeedState) -> History {
        History {
            last_fetch: state.last_fetch,
            consecutive_failures: state.consecutive_failures,
            failure: state.failure_kind,
            failing_since: state.failing_since,
            hints: state.hints,
            gone: state.gone_at.is_some(),
            pushed_until: state.pushed_until,
        }
    }
}

/// Something that keeps a feed from being polled before a time, whatever its schedule says.
/// A one-shot `poll` honours these too (unless forced); only the daemon also waits for the
/// schedule's slot and the publisher's caching hints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hold {
    /// 410 Gone: not polled until the config changes.
    Gone,
    /// The server's Retry-After.
    RetryAfter(DateTime<Utc>),
    /// Backing off after consecutive failures of this kind.
    Backoff {
        until: DateTime<Utc>,
        failures: u32,
        kind: Option<FailureKind>,
    },
    /// The feed's host asked every client to wait (429, or 503 with Retry-After).
    Host(DateTime<Utc>),
}

impl Hold {
    /// Until when it holds (`None`: indefinitely).
    pub(crate) fn until(&self) -> Option<DateTime<Utc>> {
        match *self {
            Hold::Gone => None,
            Hold::RetryAfter(t) | Hold::Host(t) | Hold::Backoff { until: t, .. } => Some(t),
        }
    }

    /// Whether it still holds at `now`.
    pub(crate) fn holds_at(&self, now: DateTime<Utc>) -> bool {
        self.until().is_none_or(|t| t > now)
    }
}

impl std::fmt::Display for Hold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let when = |t: &DateTime<Utc>| crate::model::human_time(*t);
        match self {
            Hold::Gone => f.write_str("gone (HTTP 410); not polled until the config changes (or --force)"),
            Hold::RetryAfter(t) => write!(f, "the server asked to wait until {} (Retry-After)", when(t)),
            Hold::Backoff {
                until,
                failures,
                kind,
            } => {
                write!(f, "backing off after {failures} failures")?;
                if let Some(kind) = kind {
                    write!(f, " ({kind})")?;
                }
                write!(f, " until {}", when(until))
            }
            Hold::Host(t) => write!(f, "host asked to wait until {}", when(t)),
        }
    }
}

/// When a feed is due, and what holds it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Due {
    /// When the daemon polls it next; `None`: never (gone).
    pub at: Option<DateTime<Utc>>,
    /// The hold that ends last, if any.
    pub(crate) hold: Option<Hold>,
}

/// The one place that decides when `feed` (identified by `key`, its URL) is polled next: from
/// the policy, its history, the publisher's hints and its host's delay. The daemon stores
/// `at` as the feed's due time; a one-shot poll skips the feed while `hold` holds.
pub fn due(policy: &Policy, key: &str, history: &History, host_not_before: Option<DateTime<Utc>>) -> Due {
    if history.gone {
        return Due {
            at: None,
            hold: Some(Hold::Gone),
        };
    }
    let backoff = match (history.last_fetch, history.consecutive_failures) {
        (Some(last), failures @ 1..) => Some(Hold::Backoff {
            until: last + to_chrono(backoff(key, failures, history.failure)),
            failures,
            kind: history.failure,
        }),
        _ => None,
    };
    // Server limits come first: a rate-limited host or feed is not asked again before it says.
    // Of holds that end together the feed's own is named (the last maximum wins).
    let hold = [
        host_not_before.map(Hold::Host),
        backoff,
        history.hints.retry_after.map(Hold::RetryAfter),
    ]
    .into_iter()
    .flatten()
    .max_by_key(|h| h.until());
    let mut at = match history.last_fetch {
        // Never polled: due at once.
        None => DateTime::<Utc>::MIN_UTC,
        Some(last) => next_slot(policy, key, last),
    };
    if let Some(until) = hold.and_then(|h| h.until()) {
        at = at.max(until);
    }
    // A feed its hub pushes is polled far less often, but only while the hub's lease lasts: a
    // subscription that lapses must not leave the feed unpolled.
    if let (Some(until), Some(last), None) = (history.pushed_until, history.last_fetch, backoff)
        && until > last
    {
        let stretched = last + to_chrono(policy.pushed_interval(last));
        at = at.max(stretched.min(until));
    }
    if policy.respect_hints {
        if let Some(t) = history.hints.fresh_until {
            at = at.max(t);
        }
        at = history.hints.skip.next_allowed(at);
    }
    Due { at: Some(at), hold }
}

/// Whether a failing feed has failed for so long (`policy.give_up_after`) that it is reported
/// abandoned.
pub(crate) fn abandoned(policy: &Policy, history: &History, now: DateTime<Utc>) -> bool {
    history.consecutive_failures > 0
        && history
            .failing_since
            .is_some_and(|since| now - since >= to_chrono(policy.give_up_after))
}

/// The first of this feed's slots (cron time plus its jitter offset) at least one jitter
/// window after `after`. A poll on its slot is next due one period later; a poll off its slot
/// (the first one, a retry, a `poll` run by hand) counts for the slot whose window it falls
/// in, so it is not followed by a second poll moments later, which users rightly see as
/// polling twice.
fn next_slot(policy: &Policy, key: &str, after: DateTime<Utc>) -> DateTime<Utc> {
    let offset = to_chrono(jitter_offset(policy, key, after));
    let window = to_chrono(jitter_window(policy, after));
    policy
        .cron
        .next_after(after + window - offset)
        .map(|t| t + offset)
        .unwrap_or(after + chrono::Duration::days(365))
}

/// How far feeds sharing a schedule are spread after each fire time: the jitter, at most half
/// the schedule's period there.
fn jitter_window(policy: &Policy, around: DateTime<Utc>) -> Duration {
    let interval = policy.cron.interval_near(around).unwrap_or(policy.jitter * 2);
    policy.jitter.min(interval / 2)
}

/// A stable per-feed offset in `[0, min(jitter, interval / 2))`: the same feed always lands at
/// the same point of the window, different feeds spread evenly across it.
pub(crate) fn jitter_offset(policy: &Policy, key: &str, around: DateTime<Utc>) -> Duration {
    let window = jitter_window(policy, around);
    if window.is_zero() {
        return Duration::ZERO;
    }
    let fraction = unit_hash(key, "jitter");
    Duration::from_secs_f64(window.as_secs_f64() * fraction)
}

/// Exponential backoff after `failures` consecutive failures (≥ 1), the last of `kind`: from
/// [`BACKOFF_BASE`] for transient failures, [`PERMANENT_BACKOFF_BASE`] for the others, ±20%
/// per-feed jitter, capped at [`BACKOFF_CAP`].
pub(crate) fn backoff(key: &str, failures: u32, kind: Option<FailureKind>) -> Duration {
    let exp = failures.saturating_sub(1).min(20);
    let base = match kind {
        Some(kind) if !kind.is_transient() => PERMANENT_BACKOFF_BASE,
        _ => BACKOFF_BASE,
    };
    let raw = base.as_secs_f64() * f64::from(1u32 << exp);
    let factor = 0.8 + 0.4 * unit_hash(key, &format!("backoff{failures}"));
    Duration::from_secs_f64((raw * factor).min(BACKOFF_CAP.as_secs_f64()))
}

/// A number in [0, 1) derived from `key` and `salt`, stable across runs and machines.
fn unit_hash(key: &str, salt: &str) -> f64 {
    let digest = Sha256::digest(format!("{salt}\n{key}").as_bytes());
    let mut word = [0u8; 8];
    word.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(word) >> 11) as f64 / (1u64 << 53) as f64
}

fn to_chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

#[cfg(test)]
mod tests;
