//! Dates as feeds, pages and APIs write them, read in one place: feed-rs calls [`parse_date`]
//! for every date of a feed, and scraped pages and JSON APIs call it for theirs.
//!
//! A date that carries its zone (an offset, `Z`, or a name RFC 822 defines) is read in that
//! zone and never shifted. A date without one is local time where the feed is written: the
//! feed's `timezone` (an IANA zone; UTC when the config names none). A zone name that is not
//! one of RFC 822's is read as the feed's zone when that zone calls itself so at that moment
//! (`CST` from a feed in Asia/Shanghai is China Standard Time, not US Central), else as no
//! zone at all.
//!
//! The forms read: RFC 3339 / ISO 8601 (offsets with or without a colon), RFC 822 / 2822 as
//! found in the wild (any weekday or none, full month names, month before day, one-digit
//! hours, `24:` for midnight, two-digit years), the common written forms in English
//! ("30 November 2026", "Nov 30, 2026"), day-first dotted dates (`30.11.2026`), and the
//! Chinese, Japanese and Korean year-month-day forms (`2026年12月5日 10:12`). Anything else is
//! no date (the entry then takes the time it was first seen).

use chrono::{DateTime, FixedOffset, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

/// The instant `text` names, reading a date without a zone as local time in `zone`.
pub(super) fn parse_date(text: &str, zone: Tz) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if text.is_empty() || text.len() > 80 {
        return None;
    }
    zoned(text)
        .or_else(|| rfc822(text, zone))
        .or_else(|| naive(text).and_then(|t| local(t, zone)))
        .or_else(|| day(text).and_then(|d| local(d.and_time(NaiveTime::MIN), zone)))
}

/// ISO 8601 forms that carry an offset.
fn zoned(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    const ZONED: &[&str] = &[
        "%Y-%m-%dT%H:%M%:z",
        "%Y-%m-%dT%H:%M%z",
        // Java's and many APIs' offsets without a colon: 2026-11-30T12:00:00.000+0000.
        "%Y-%m-%dT%H:%M:%S%.f%z",
        "%Y-%m-%d %H:%M:%S%.f%:z",
        "%Y-%m-%d %H:%M:%S%.f%z",
        "%Y-%m-%d %H:%M:%S %z",
        "%Y-%m-%d %H:%M %z",
    ];
    let text = text
        .strip_suffix('Z')
        .map_or_else(|| text.to_string(), |t| format!("{t}+00:00"));
    ZONED
        .iter()
        .find_map(|f| DateTime::parse_from_str(&text, f).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// The RFC 822 family: `[weekday,] day month year time [zone]`, or month before day.
fn rfc822(text: &str, zone: Tz) -> Option<DateTime<Utc>> {
    // Whatever precedes a comma is a weekday, in any language or spelling ("Thurs", "mer").
    let rest = match text.split_once(',') {
        Some((weekday, rest)) if weekday.chars().all(char::is_alphabetic) => rest,
        _ => text,
    };
    let tokens: Vec<&str> = rest.split_whitespace().collect();
    if tokens.len() < 4 {
        return None;
    }
    let (day, month) = match (tokens[0].parse::<u32>(), month(tokens[1]), month(tokens[0])) {
        (Ok(day), Some(month), _) => (day, month),
        (_, _, Some(month)) => (tokens[1].trim_end_matches(',').parse().ok()?, month),
        _ => return None,
    };
    let year = match tokens[2].parse::<i32>().ok()? {
        y if tokens[2].len() == 2 && y < 50 => 2000 + y,
        y if tokens[2].len() == 2 => 1900 + y,
        y => y,
    };
    let time = clock(tokens[3])?;
    let naive = NaiveDate::from_ymd_opt(year, month, day)?.and_time(time);
    match tokens.get(4..).map(|z| z.join(" ")).filter(|z| !z.is_empty()) {
        None => local(naive, zone),
        Some(name) if own_name(naive, zone, &name) => local(naive, zone),
        Some(name) => match offset(&name) {
            Some(offset) => offset
                .from_local_datetime(&naive)
                .single()
                .map(|t| t.with_timezone(&Utc)),
            // A name of the feed's own zone, or one we cannot place: the feed's zone.
            None => local(naive, zone),
        },
    }
}

/// Whether `zone` calls itself `name` at local time `naive` (`CST` in Asia/Shanghai).
fn own_name(naive: NaiveDateTime, zone: Tz, name: &str) -> bool {
    use chrono_tz::OffsetName;
    zone.offset_from_local_datetime(&naive)
        .earliest()
        .and_then(|o| o.abbreviation().map(|a| a.eq_ignore_ascii_case(name)))
        .unwrap_or(false)
}

/// A month by its English name or abbreviation, any case (`Dec`, `december`, `Sept`).
fn month(word: &str) -> Option<u32> {
    let word = word.trim_end_matches(['.', ',']).to_ascii_lowercase();
    const NAMES: [&str; 12] = [
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
    ];
    if word.len() < 3 {
        return None;
    }
    NAMES
        .iter()
        .position(|name| name.starts_with(&word) || (word == "sept" && *name == "september"))
        .map(|i| i as u32 + 1)
}

/// `H:MM[:SS[.f]]`, with `24:MM` read as the start of the day (a common slip).
fn clock(text: &str) -> Option<NaiveTime> {
    let mut parts = text.split(':');
    let hour: u32 = parts.next()?.parse().ok()?;
    let minute: u32 = parts.next()?.parse().ok()?;
    let second: u32 = match parts.next() {
        Some(s) => s.split('.').next()?.parse().ok()?,
        None => 0,
    };
    NaiveTime::from_hms_opt(if hour == 24 { 0 } else { hour }, minute, second)
}

/// A zone as RFC 822 writes it: `+0800`, `-05:00`, or one of the names it defines.
fn offset(name: &str) -> Option<FixedOffset> {
    let hours = |h: i32| FixedOffset::east_opt(h * 3600);
    match name.to_ascii_uppercase().as_str() {
        "Z" | "UT" | "UTC" | "GMT" | "-0000" => hours(0),
        "EST" => hours(-5),
        "EDT" => hours(-4),
        "CST" => hours(-6),
        "CDT" => hours(-5),
        "MST" => hours(-7),
        "MDT" => hours(-6),
        "PST" => hours(-8),
        "PDT" => hours(-7),
        other => {
            let sign = match other.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let digits: String = other[1..].chars().filter(|c| *c != ':').collect();
            if digits.len() != 4 || !digits.chars().all(|c| c.is_ascii_digit()) {
                return None;
            }
            let h: i32 = digits[..2].parse().ok()?;
            let m: i32 = digits[2..].parse().ok()?;
            FixedOffset::east_opt(sign * (h * 3600 + m * 60))
        }
    }
}

/// Date and time of day without a zone.
fn naive(text: &str) -> Option<NaiveDateTime> {
    const NAIVE: &[&str] = &[
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y/%m/%d %H:%M:%S",
        "%Y/%m/%d %H:%M",
        "%B %d, %Y %H:%M",
        "%b %d, %Y %H:%M",
        "%d %B %Y %H:%M",
        "%d %b %Y %H:%M",
        // Day first with dots (German, Russian, …), never ambiguous as slashes are.
        "%d.%m.%Y %H:%M:%S",
        "%d.%m.%Y %H:%M",
        "%Y年%m月%d日 %H:%M:%S",
        "%Y年%m月%d日 %H:%M",
        "%Y年%m月%d日%H:%M",
        "%Y년 %m월 %d일 %H:%M",
    ];
    NAIVE
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
}

/// A day without a time.
fn day(text: &str) -> Option<NaiveDate> {
    const DAYS: &[&str] = &[
        "%Y-%m-%d",
        "%Y/%m/%d",
        "%d.%m.%Y",
        "%d %B %Y",
        "%d %b %Y",
        "%B %d, %Y",
        "%b %d, %Y",
        "%B %d %Y",
        "%b %d %Y",
        "%A, %d %B %Y",
        "%A, %B %d, %Y",
        "%Y年%m月%d日",
        "%Y년 %m월 %d일",
    ];
    let text = text.trim_end_matches('.');
    DAYS.iter().find_map(|f| NaiveDate::parse_from_str(text, f).ok())
}

/// Local time in `zone` as an instant: in a repeated hour (clocks turned back) the first, in a
/// skipped one (clocks turned forward) the instant the clocks read an hour later.
fn local(naive: NaiveDateTime, zone: Tz) -> Option<DateTime<Utc>> {
    let at = |t: NaiveDateTime| match zone.from_local_datetime(&t) {
        LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => Some(t.with_timezone(&Utc)),
        LocalResult::None => None,
    };
    at(naive).or_else(|| at(naive + chrono::Duration::hours(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
    }

    #[test]
    fn the_forms_feeds_and_pages_write() {
        let noon = utc(2026, 11, 30, 12, 0, 0);
        let midnight = utc(2026, 11, 30, 0, 0, 0);
        for (text, want) in [
            ("2026-11-30T12:00:00Z", noon),
            ("2026-11-30T13:00:00+01:00", noon),
            ("2026-11-30T12:00:00", noon),
            ("2026-11-30 12:00", noon),
            ("Mon, 30 Nov 2026 12:00:00 GMT", noon),
            ("2026-11-30", midnight),
            ("30 November 2026", midnight),
            ("Nov 30, 2026", midnight),
            ("November 30, 2026", midnight),
            ("Monday, 30 November 2026", midnight),
            ("2026-11-30T12:00:00.000+0000", noon),
            ("2026-11-30T14:00:00+0200", noon),
            ("2026-11-30 13:00:00+01:00", noon),
            ("30 Nov 2026 12:00", noon),
            ("30.11.2026", midnight),
            ("30.11.2026 12:00", noon),
            ("2026年11月30日 12:00", noon),
            ("2026年11月30日", midnight),
            ("2026/11/30 12:00", noon),
            // RFC 822 as found in the wild.
            ("Fri, Oct 7 2022 10:15:00 -0400", utc(2022, 10, 7, 14, 15, 0)),
            ("26 August 2019 10:00:00 +0000", utc(2019, 8, 26, 10, 0, 0)),
            ("Wed, 22 Jan 2020 10:58:02 -0000", utc(2020, 1, 22, 10, 58, 2)),
            ("Thurs, 13 Jul 2011 07:38:00 GMT", utc(2011, 7, 13, 7, 38, 0)),
            ("24 Sep 2013 1:27 PDT", utc(2013, 9, 24, 8, 27, 0)),
            ("5 Jun 2017 24:05 PDT", utc(2017, 6, 5, 7, 5, 0)),
            ("Tue, 15 Nov 2022 20:15:04 Z", utc(2022, 11, 15, 20, 15, 4)),
            ("mer, 16 nov 2022 00:38:15 +0100", utc(2022, 11, 15, 23, 38, 15)),
            ("Sat, 05 Dec 26 10:12:00 UTC", utc(2026, 12, 5, 10, 12, 0)),
        ] {
            assert_eq!(parse_date(text, chrono_tz::UTC), Some(want), "{text}");
        }
        for text in [
            "yesterday",
            "",
            "2026-13-45",
            "3 hours ago",
            "11/30/2026",
            "Mon, 99 Foo 2026 12:00",
        ] {
            assert_eq!(parse_date(text, chrono_tz::UTC), None, "{text}");
        }
    }

    #[test]
    fn dates_without_a_zone_are_the_feeds_local_time_and_zoned_ones_stay() {
        let beijing = chrono_tz::Asia::Shanghai;
        let at_10_12 = utc(2026, 12, 5, 2, 12, 0);
        for text in [
            "2026-12-05 10:12",
            "2026-12-05T10:12:00",
            "Sat, 05 Dec 2026 10:12:00",
            "2026年12月5日 10:12",
            // The feed's zone by its own name: China Standard Time here.
            "Sat, 05 Dec 2026 10:12:00 CST",
        ] {
            assert_eq!(parse_date(text, beijing), Some(at_10_12), "{text}");
        }
        // A date with its zone is never shifted.
        assert_eq!(
            parse_date("2026-12-05T10:12:00+08:00", chrono_tz::Europe::Paris),
            Some(at_10_12)
        );
        assert_eq!(parse_date("2026-12-05T02:12:00Z", beijing), Some(at_10_12));
        assert_eq!(
            parse_date("Sat, 05 Dec 2026 10:12:00 CST", chrono_tz::UTC),
            Some(utc(2026, 12, 5, 16, 12, 0)),
            "elsewhere CST is RFC 822's US Central"
        );
        assert_eq!(
            parse_date("2026-12-05", beijing),
            Some(utc(2026, 12, 4, 16, 0, 0))
        );
        // Clocks turned forward in Paris on 29 March 2026 at 02:00: 02:30 did not exist.
        assert_eq!(
            parse_date("2026-03-29 02:30", chrono_tz::Europe::Paris),
            Some(utc(2026, 3, 29, 1, 30, 0))
        );
    }
}
