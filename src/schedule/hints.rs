//! Publisher hints about polling frequency, turned into times.
//!
//! HTTP: `Retry-After` (RFC 9110 §10.2.3) on 429/503, `Cache-Control: max-age` and `Expires`
//! (RFC 9111 §5.2.2.1, §5.3). Feed: RSS `<ttl>` (minutes), `<skipHours>`, `<skipDays>`, and the
//! syndication module's `sy:updatePeriod` / `sy:updateFrequency`. Caching hints are capped so a
//! feed claiming "fresh for a year" is still polled daily.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::model::{FeedRhythm, Hints};

/// The longest a caching hint may postpone a poll.
pub(crate) const MAX_FRESHNESS: Duration = Duration::from_secs(24 * 60 * 60);
/// The longest a Retry-After may postpone a poll.
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// Parses a Retry-After value (delay-seconds or an HTTP date) into an absolute time.
pub(crate) fn retry_after(value: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let value = value.trim();
    let delay = match value.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => {
            let at: DateTime<Utc> = httpdate::parse_http_date(value).ok()?.into();
            (at - now).to_std().unwrap_or(Duration::ZERO)
        }
    };
    Some(now + chrono::Duration::from_std(delay.min(MAX_RETRY_AFTER)).ok()?)
}

/// Freshness lifetime from Cache-Control / Expires (max-age wins, as RFC 9111 says).
pub(crate) fn http_freshness(
    cache_control: Option<&str>,
    expires: Option<&str>,
    now: DateTime<Utc>,
) -> Option<Duration> {
    if let Some(cc) = cache_control {
        let directives: Vec<String> = cc.split(',').map(|d| d.trim().to_ascii_lowercase()).collect();
        if directives.iter().any(|d| d == "no-cache" || d == "no-store") {
            return None;
        }
        if let Some(age) = directives
            .iter()
            .filter_map(|d| d.strip_prefix("max-age="))
            .find_map(|v| v.trim_matches('"').parse::<u64>().ok())
        {
            return Some(Duration::from_secs(age));
        }
    }
    let expires: DateTime<Utc> = httpdate::parse_http_date(expires?.trim()).ok()?.into();
    (expires - now).to_std().ok()
}

/// The hints to store after a successful fetch at `now`.
pub(crate) fn after_success(http_fresh: Option<Duration>, rhythm: &FeedRhythm, now: DateTime<Utc>) -> Hints {
    let fresh = [http_fresh, rhythm.ttl, rhythm.update_interval]
        .into_iter()
        .flatten()
        .max()
        .map(|d| d.min(MAX_FRESHNESS))
        .filter(|d| !d.is_zero());
    Hints {
        retry_after: None,
        fresh_until: fresh
            .and_then(|d| chrono::Duration::from_std(d).ok())
            .map(|d| now + d),
        skip: rhythm.skip,
    }
}

/// `sy:updatePeriod` / `sy:updateFrequency`: the period divided by the frequency.
pub(crate) fn update_interval(period: Option<&str>, frequency: Option<&str>) -> Option<Duration> {
    let period = match period?.trim().to_ascii_lowercase().as_str() {
        "hourly" => 3600,
        "daily" => 86_400,
        "weekly" => 7 * 86_400,
        "monthly" => 30 * 86_400,
        "yearly" => 365 * 86_400,
        _ => return None,
    };
    let frequency = frequency
        .and_then(|f| f.trim().parse::<u64>().ok())
        .filter(|f| *f > 0)
        .unwrap_or(1);
    Some(Duration::from_secs(period / frequency))
}

/// Parses `<skipHours><hour>…</hour></skipHours>` values (0–23; 24 is read as 0, as some feeds write).
pub(crate) fn skip_hours<'a>(hours: impl IntoIterator<Item = &'a str>) -> u32 {
    hours
        .into_iter()
        .filter_map(|h| h.trim().parse::<u32>().ok())
        .filter(|h| *h <= 24)
        .fold(0, |acc, h| acc | 1 << (h % 24))
}

/// Parses `<skipDays><day>…</day></skipDays>` values (English day names).
pub(crate) fn skip_days<'a>(days: impl IntoIterator<Item = &'a str>) -> u8 {
    const NAMES: [&str; 7] = [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ];
    days.into_iter()
        .filter_map(|d| NAMES.iter().position(|n| n.eq_ignore_ascii_case(d.trim())))
        .fold(0, |acc, i| acc | 1 << i)
}
