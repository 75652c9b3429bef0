use chrono::TimeZone;

use super::clock::TokioClock;
use super::hints;
use super::*;
use crate::model::FeedRhythm;

fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
    // 2026-03-02 is a Monday.
    Utc.with_ymd_and_hms(2026, 3, 2, h, m, s).unwrap()
}

fn policy(expr: &str, jitter_secs: u64) -> Policy {
    Policy {
        cron: CronSchedule::parse(expr).unwrap(),
        jitter: Duration::from_secs(jitter_secs),
        respect_hints: true,
        give_up_after: Duration::from_secs(30 * 86_400),
        pushed_every: None,
    }
}

/// The due time alone, which is what most of these tests look at.
fn next_due(p: &Policy, key: &str, h: &History, host: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    due(p, key, h, host).at
}

fn polled_at(t: DateTime<Utc>) -> History {
    History {
        last_fetch: Some(t),
        ..History::default()
    }
}

#[test]
fn five_and_six_field_cron_and_standard_weekday_numbers() {
    let every_15 = CronSchedule::parse("*/15 * * * *").unwrap();
    assert_eq!(every_15.next_after(at(10, 7, 0)), Some(at(10, 15, 0)));
    let every_10s = CronSchedule::parse("*/10 * * * * *").unwrap();
    assert_eq!(every_10s.next_after(at(10, 0, 3)), Some(at(10, 0, 10)));
    // "1" is Monday in standard cron; 2026-03-02 is a Monday, so 09:00 Monday fires that day.
    let monday = CronSchedule::parse("0 9 * * 1").unwrap();
    assert_eq!(monday.next_after(at(8, 0, 0)), Some(at(9, 0, 0)));
    let weekdays = CronSchedule::parse("0 9 * * 1-5").unwrap();
    assert_eq!(
        weekdays.next_after(at(10, 0, 0)),
        Some(Utc.with_ymd_and_hms(2026, 3, 3, 9, 0, 0).unwrap())
    );
    let sunday = CronSchedule::parse("0 9 * * 0").unwrap();
    assert_eq!(
        sunday.next_after(at(10, 0, 0)),
        Some(Utc.with_ymd_and_hms(2026, 3, 8, 9, 0, 0).unwrap())
    );
    assert!(CronSchedule::parse("@hourly").is_ok());
    assert!(CronSchedule::parse("* * *").unwrap_err().contains("3 fields"));
    assert!(CronSchedule::parse("61 * * * *").is_err());
    assert!(
        CronSchedule::parse("0 9 * * 8")
            .unwrap_err()
            .contains("out of range")
    );
}

#[test]
fn never_polled_feeds_are_due_at_once_and_then_follow_the_cron() {
    let p = policy("*/15 * * * *", 0);
    assert!(next_due(&p, "f", &History::default(), None).unwrap() <= at(0, 0, 0));
    assert_eq!(
        next_due(&p, "f", &polled_at(at(10, 0, 0)), None),
        Some(at(10, 15, 0))
    );
    assert_eq!(
        next_due(&p, "f", &polled_at(at(10, 14, 59)), None),
        Some(at(10, 15, 0))
    );
    // With a jitter window, a poll off its slot counts for the slot whose window it is in:
    // polled at 10:14:59 (first poll, or by hand), not again moments later at 10:15 + offset.
    let spread = policy("*/15 * * * *", 300);
    let key = "https://host.example/feed/3";
    let slot = next_due(&spread, key, &polled_at(at(10, 0, 0)), None).unwrap();
    let early = slot - chrono::Duration::seconds(1);
    assert_eq!(
        next_due(&spread, key, &polled_at(early), None),
        Some(slot + chrono::Duration::minutes(15))
    );
}

#[test]
fn jitter_is_stable_bounded_and_spreads_feeds() {
    let p = policy("*/15 * * * *", 300);
    let mut offsets = Vec::new();
    for i in 0..500 {
        let key = format!("https://host.example/feed/{i}");
        let due = next_due(&p, &key, &polled_at(at(10, 0, 0)), None).unwrap();
        // Jittered slots are cron time + offset, so the first one after 10:00 is 10:00 + offset.
        let offset = (due - at(10, 0, 0)).num_seconds() % 900;
        assert!((0..300).contains(&offset), "offset {offset} out of bounds");
        assert_eq!(
            due,
            next_due(&p, &key, &polled_at(at(10, 0, 0)), None).unwrap(),
            "stable"
        );
        offsets.push(offset);
    }
    offsets.sort();
    offsets.dedup();
    assert!(
        offsets.len() > 200,
        "500 feeds spread over the window, got {} distinct seconds",
        offsets.len()
    );

    // A feed polled at its jittered slot is next due one period later, not in the same slot.
    let key = "https://host.example/feed/7";
    let first = next_due(&p, key, &polled_at(at(10, 0, 0)), None).unwrap();
    let second = next_due(&p, key, &polled_at(first), None).unwrap();
    assert_eq!((second - first).num_minutes(), 15);

    // The window never exceeds half the period: a per-minute schedule jitters < 30 s.
    let fast = policy("* * * * *", 300);
    let due = next_due(&fast, key, &polled_at(at(10, 0, 0)), None).unwrap();
    assert!((due - at(10, 0, 0)).num_seconds() % 60 < 30, "{due}");
}

#[test]
fn backoff_grows_is_capped_and_resets_after_success() {
    let p = policy("*/15 * * * *", 0);
    let mut last = Duration::ZERO;
    for failures in 1..=12 {
        let b = backoff("k", failures, Some(FailureKind::Timeout));
        assert!(b.as_secs_f64() >= BACKOFF_BASE.as_secs_f64() * 0.8);
        assert!(b <= BACKOFF_CAP);
        if failures > 1 && b < BACKOFF_CAP {
            assert!(b > last, "backoff grows: {failures}: {b:?} after {last:?}");
        }
        last = b;
    }
    assert_eq!(backoff("k", 30, None), BACKOFF_CAP);

    let failing = |n| History {
        last_fetch: Some(at(10, 0, 0)),
        consecutive_failures: n,
        ..History::default()
    };
    // One failure: backoff (~5 min) is shorter than the schedule, so the next slot wins.
    assert_eq!(next_due(&p, "k", &failing(1), None), Some(at(10, 15, 0)));
    // Six failures: ~160 min, far past the 15-minute schedule.
    let due = next_due(&p, "k", &failing(6), None).unwrap();
    assert!((due - at(10, 0, 0)).num_minutes() >= 128, "{due}");
    // After a success (failures reset to 0) the feed is back on its schedule.
    assert_eq!(next_due(&p, "k", &failing(0), None), Some(at(10, 15, 0)));
}

#[test]
fn retry_after_and_max_age_are_honoured() {
    let p = policy("*/15 * * * *", 0);
    let now = at(10, 0, 0);
    let mut h = polled_at(now);
    h.hints.retry_after = hints::retry_after("3600", now);
    assert_eq!(next_due(&p, "k", &h, None), Some(at(11, 0, 0)));
    h.hints.retry_after = hints::retry_after("Mon, 02 Mar 2026 12:30:00 GMT", now);
    assert_eq!(next_due(&p, "k", &h, None), Some(at(12, 30, 0)));
    // Retry-After binds even a feed that ignores caching hints.
    let lax = Policy {
        respect_hints: false,
        ..p.clone()
    };
    assert_eq!(next_due(&lax, "k", &h, None), Some(at(12, 30, 0)));

    let fresh = hints::http_freshness(Some("public, max-age=7200"), None, now);
    assert_eq!(fresh, Some(Duration::from_secs(7200)));
    let h = History {
        last_fetch: Some(now),
        hints: hints::after_success(fresh, &FeedRhythm::default(), now),
        ..History::default()
    };
    assert_eq!(next_due(&p, "k", &h, None), Some(at(12, 0, 0)));
    assert_eq!(
        next_due(&lax, "k", &h, None),
        Some(at(10, 15, 0)),
        "ignored when told to"
    );

    // A host-wide delay (429 from a sibling feed) applies too.
    assert_eq!(
        next_due(&p, "other", &polled_at(now), Some(at(13, 0, 0))),
        Some(at(13, 0, 0))
    );
}

#[test]
fn feed_rhythm_hints() {
    let now = at(10, 0, 0);
    assert_eq!(
        hints::http_freshness(Some("no-cache, max-age=60"), None, now),
        None
    );
    assert_eq!(
        hints::http_freshness(None, Some("Mon, 02 Mar 2026 10:30:00 GMT"), now),
        Some(Duration::from_secs(1800))
    );
    assert_eq!(
        hints::update_interval(Some("hourly"), Some("2")),
        Some(Duration::from_secs(1800))
    );
    assert_eq!(
        hints::update_interval(Some("daily"), None),
        Some(Duration::from_secs(86_400))
    );
    let rhythm = FeedRhythm {
        ttl: Some(Duration::from_secs(60 * 60)),
        update_interval: None,
        skip: Skip::default(),
    };
    // A year of claimed freshness is capped at a day.
    let h = hints::after_success(Some(Duration::from_secs(365 * 86_400)), &rhythm, now);
    assert_eq!(h.fresh_until, Some(now + chrono::Duration::days(1)));

    // skipHours 10-12 and skipDays Tuesday: Monday 10:05 moves to 13:00.
    let skip = Skip {
        hours: hints::skip_hours(["10", "11", "12"]),
        days: hints::skip_days(["Tuesday"]),
    };
    assert_eq!(skip.next_allowed(at(10, 5, 0)), at(13, 0, 0));
    let tuesday = Utc.with_ymd_and_hms(2026, 3, 3, 9, 0, 0).unwrap();
    assert_eq!(
        skip.next_allowed(tuesday),
        Utc.with_ymd_and_hms(2026, 3, 4, 0, 0, 0).unwrap()
    );
}

#[test]
fn gone_feeds_are_never_due() {
    let p = policy("*/15 * * * *", 0);
    let h = History {
        gone: true,
        ..polled_at(at(10, 0, 0))
    };
    assert_eq!(next_due(&p, "k", &h, None), None);
}

/// The daemon's wait for the next due time, on tokio's paused clock: it wakes exactly when the
/// schedule says, not before.
#[tokio::test(start_paused = true)]
async fn daemon_waits_until_the_next_due_time_on_paused_time() {
    let clock = TokioClock::starting_at(at(10, 0, 0));
    let p = policy("*/15 * * * *", 0);
    let due = next_due(&p, "k", &polled_at(clock.now()), None).unwrap();
    assert_eq!(due, at(10, 15, 0));
    let waiter = tokio::spawn(async move { clock::sleep_until(&clock, due).await });

    tokio::time::advance(Duration::from_secs(14 * 60 + 59)).await;
    tokio::task::yield_now().await;
    assert!(!waiter.is_finished(), "woke before the schedule said");
    tokio::time::advance(Duration::from_secs(1)).await;
    waiter.await.unwrap();
    assert_eq!(clock.now(), at(10, 15, 0));

    // A per-feed override on the same clock: every minute.
    let fast = policy("* * * * *", 0);
    let due = next_due(&fast, "k", &polled_at(clock.now()), None).unwrap();
    assert_eq!(due, at(10, 16, 0));
    tokio::time::advance(Duration::from_secs(60)).await;
    clock::sleep_until(&clock, due).await;
    assert!(clock.now() >= due);
}

/// The slot is computed from the exact time of the poll: a feed polled a fraction of a second
/// after its jittered slot is due one period later, never again in the same slot (stored
/// whole seconds once made every such feed due again at once).
#[test]
fn a_poll_just_after_its_slot_is_due_one_period_later() {
    let p = policy("*/10 * * * * *", 300);
    for i in 0..200 {
        let key = format!("https://h.example/{i}");
        let slot = next_due(&p, &key, &polled_at(at(10, 0, 0)), None).unwrap();
        for late_ms in [0, 1, 300, 999, 4_000] {
            let polled = slot + chrono::Duration::milliseconds(late_ms);
            let next = next_due(&p, &key, &polled_at(polled), None).unwrap();
            assert_eq!(
                (next - slot).num_milliseconds(),
                10_000,
                "{key}: polled {late_ms} ms late"
            );
        }
    }
}

#[test]
fn failures_back_off_by_kind_and_say_why() {
    let p = policy("*/15 * * * *", 0);
    let failing = |kind| History {
        last_fetch: Some(at(10, 0, 0)),
        consecutive_failures: 1,
        failure: Some(kind),
        failing_since: Some(at(10, 0, 0)),
        ..History::default()
    };
    // A timeout is retried at the next slot (5 min backoff < 15 min schedule); a 404 or a
    // body that is not a feed waits about an hour.
    assert_eq!(
        next_due(&p, "k", &failing(FailureKind::Timeout), None),
        Some(at(10, 15, 0))
    );
    for kind in [
        FailureKind::ClientError,
        FailureKind::Parse,
        FailureKind::TooLarge,
    ] {
        let due = due(&p, "k", &failing(kind), None);
        let wait = (due.at.unwrap() - at(10, 0, 0)).num_minutes();
        assert!((48..=72).contains(&wait), "{kind}: {wait} min");
        let hold = due.hold.unwrap();
        assert!(matches!(hold, Hold::Backoff { failures: 1, kind: Some(k), .. } if k == kind));
        assert!(hold.to_string().contains(kind.as_str()), "{hold}");
        assert!(hold.holds_at(at(10, 30, 0)) && !hold.holds_at(at(12, 0, 0)));
    }
    // The hold that ends last is the one reported.
    let mut h = failing(FailureKind::Timeout);
    h.hints.retry_after = Some(at(18, 0, 0));
    assert_eq!(
        due(&p, "k", &h, Some(at(12, 0, 0))).hold,
        Some(Hold::RetryAfter(at(18, 0, 0)))
    );
    assert_eq!(
        due(&p, "k", &h, Some(at(19, 0, 0))).hold,
        Some(Hold::Host(at(19, 0, 0)))
    );
    // Not failing, not held.
    assert_eq!(due(&p, "k", &polled_at(at(10, 0, 0)), None).hold, None);
}

#[test]
fn a_feed_failing_for_give_up_after_is_abandoned() {
    let p = policy("*/15 * * * *", 0);
    let h = History {
        last_fetch: Some(at(10, 0, 0)),
        consecutive_failures: 40,
        failure: Some(FailureKind::ClientError),
        failing_since: Some(at(10, 0, 0) - chrono::Duration::days(30)),
        ..History::default()
    };
    assert!(abandoned(&p, &h, at(10, 0, 0)));
    assert!(!abandoned(&p, &h, at(9, 59, 0)));
    let healthy = polled_at(at(10, 0, 0));
    assert!(!abandoned(&p, &healthy, at(10, 0, 0)));
}

#[test]
fn a_policy_key_changes_with_what_due_times_depend_on() {
    let a = policy("*/15 * * * *", 300);
    assert_eq!(a.key(), policy("*/15 * * * *", 300).key());
    assert_ne!(a.key(), policy("*/10 * * * *", 300).key());
    assert_ne!(a.key(), policy("*/15 * * * *", 0).key());
    let lax = Policy {
        respect_hints: false,
        ..a.clone()
    };
    assert_ne!(a.key(), lax.key());
}

#[test]
fn a_pushed_feed_is_polled_twelve_times_less_often_until_its_lease_ends() {
    let p = policy("*/15 * * * *", 0);
    let now = at(10, 0, 0);
    let lease_end = now + chrono::Duration::days(7);
    let pushed = History {
        pushed_until: Some(lease_end),
        ..polled_at(now)
    };
    // Every 15 minutes, stretched twelve times: three hours.
    assert_eq!(next_due(&p, "k", &pushed, None), Some(at(13, 0, 0)));
    // A daily schedule is not stretched past a day.
    let daily = policy("0 6 * * *", 0);
    assert_eq!(
        next_due(&daily, "k", &pushed, None),
        Some(now + chrono::Duration::days(1))
    );
    // `websub.poll_every` says it outright.
    let every_hour = Policy {
        pushed_every: Some(Duration::from_secs(3600)),
        ..p.clone()
    };
    assert_eq!(next_due(&every_hour, "k", &pushed, None), Some(at(11, 0, 0)));
    // Never past the lease: a subscription not renewed leaves the feed on its schedule.
    let ending = History {
        pushed_until: Some(at(10, 40, 0)),
        ..polled_at(now)
    };
    assert_eq!(next_due(&p, "k", &ending, None), Some(at(10, 40, 0)));
    let lapsed = History {
        pushed_until: Some(at(9, 0, 0)),
        ..polled_at(now)
    };
    assert_eq!(
        next_due(&p, "k", &lapsed, None),
        next_due(&p, "k", &polled_at(now), None)
    );
    // A failing feed backs off as any other.
    let failing = History {
        consecutive_failures: 1,
        failure: Some(FailureKind::Timeout),
        ..pushed.clone()
    };
    let unpushed_failing = History {
        pushed_until: None,
        ..failing.clone()
    };
    assert_eq!(
        next_due(&p, "k", &failing, None),
        next_due(&p, "k", &unpushed_failing, None)
    );
}
