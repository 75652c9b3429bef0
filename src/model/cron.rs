//! Cron expressions as operators write them, compiled with the `cron` crate.
//!
//! Standard 5-field cron (`min hour dom month dow`) is accepted, as are the 6- and 7-field forms
//! with seconds (and a year) and the `@hourly`-style shortcuts. Day-of-week numbers always mean
//! what they mean in standard cron (0 or 7 = Sunday, 1 = Monday); the `cron` crate counts
//! 1 = Sunday, so numbers are translated to names before it sees them.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};

#[derive(Clone)]
pub(crate) struct CronSchedule {
    source: String,
    schedule: cron::Schedule,
}

impl fmt::Debug for CronSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CronSchedule({:?})", self.source)
    }
}

impl PartialEq for CronSchedule {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Eq for CronSchedule {}

impl fmt::Display for CronSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl CronSchedule {
    /// Compiles `expr`; the error says what is wrong in words an operator can act on.
    pub(crate) fn parse(expr: &str) -> Result<CronSchedule, String> {
        let trimmed = expr.trim();
        let fields: Vec<&str> = trimmed.split_whitespace().collect();
        let normalized = if trimmed.starts_with('@') {
            trimmed.to_string()
        } else {
            let mut fields: Vec<String> = match fields.len() {
                5 => std::iter::once("0")
                    .chain(fields.iter().copied())
                    .map(String::from)
                    .collect(),
                6 | 7 => fields.iter().map(|s| s.to_string()).collect(),
                n => {
                    return Err(format!(
                        "`{trimmed}` has {n} fields; write 5 (minute hour day month weekday) or 6-7 (with seconds first)"
                    ));
                }
            };
            fields[5] = weekday_names(&fields[5])?;
            fields.join(" ")
        };
        let schedule = cron::Schedule::from_str(&normalized)
            .map_err(|e| format!("`{trimmed}` is not a valid cron expression: {e}"))?;
        if schedule.upcoming(Utc).next().is_none() {
            return Err(format!("`{trimmed}` never fires"));
        }
        Ok(CronSchedule {
            source: trimmed.to_string(),
            schedule,
        })
    }

    /// The first fire time strictly after `t`.
    pub(crate) fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.schedule.after(&t).next()
    }

    /// The gap between the two fire times that follow `t` (the schedule's period there).
    pub(crate) fn interval_near(&self, t: DateTime<Utc>) -> Option<Duration> {
        let mut upcoming = self.schedule.after(&t);
        let a = upcoming.next()?;
        let b = upcoming.next()?;
        (b - a).to_std().ok()
    }
}

const DAY_NAMES: [&str; 8] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"];

/// Rewrites the numbers of a day-of-week field (standard numbering) as names.
fn weekday_names(field: &str) -> Result<String, String> {
    let mut out = String::with_capacity(field.len() + 8);
    let mut chars = field.char_indices().peekable();
    let mut after_slash = false;
    while let Some((i, c)) = chars.next() {
        if c.is_ascii_digit() {
            let mut end = i + 1;
            while let Some((j, d)) = chars.peek().copied() {
                if d.is_ascii_digit() {
                    end = j + 1;
                    chars.next();
                } else {
                    break;
                }
            }
            let number = &field[i..end];
            if after_slash {
                // A step ("*/2"), not a day.
                out.push_str(number);
            } else {
                let n: usize = number.parse().map_err(|_| format!("bad weekday `{number}`"))?;
                let name = DAY_NAMES
                    .get(n)
                    .ok_or_else(|| format!("weekday `{n}` is out of range (0-7, 0 and 7 are Sunday)"))?;
                out.push_str(name);
            }
        } else {
            after_slash = c == '/';
            out.push(c);
        }
    }
    Ok(out)
}
