//! The nouns that cross stages: what a feed is, what an entry is, how an entry is known, and what
//! an output asks for. No I/O lives here; every stage can depend on this module and on nothing
//! else for its vocabulary.

mod cron;
pub(crate) mod entry;
pub(crate) mod feed;
mod hints;
mod list;
mod output;
pub(crate) mod records;
mod rewrite;
pub(crate) mod rules;
mod source;
pub(crate) mod store;
mod subscription;
mod urls;

use std::fmt;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use url::Url;

pub(crate) use cron::CronSchedule;
pub(crate) use entry::*;
pub(crate) use feed::*;
pub(crate) use hints::{FeedRhythm, Hints, Skip};
pub(crate) use list::{ListMember, ListSpec, ListState, Memberships, add_tags};
pub(crate) use output::*;
pub(crate) use records::*;
pub(crate) use rewrite::Rewrite;
pub(crate) use rules::{Field, Fields, Needs, Pattern, Rule, RuleTable, Rules, Words};
pub(crate) use source::{Pick, Pointer, Scrape, Source};
pub(crate) use store::{Backend, ClusterNode, is_server_url};
pub(crate) use subscription::{Subscription, SubscriptionState};
pub(crate) use urls::*;

/// `n` and the noun that goes with it: "1 feed", "2 feeds", "0 feeds".
pub(crate) fn counted(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// A time as Tributary writes it for machines: RFC 3339 in UTC to the second
/// (`2026-12-07T07:07:41Z`), the one form of every JSON answer and every feed format that
/// takes RFC 3339. Sub-second digits would make equal times look different to readers.
pub(crate) fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The earlier of two times either of which may be missing (`Option::min` would take a
/// missing one as the earliest).
pub(crate) fn earliest(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// A time as Tributary writes it for people (logs' messages, `feeds`, the STATUS line, holds):
/// `2026-12-07 07:07:41 UTC`, the one human form; tables say "5m ago" instead.
pub(crate) fn human_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// Serde's `serialize_with` for times in JSON answers, in [`rfc3339`]'s form.
pub(crate) mod json_time {
    use chrono::{DateTime, Utc};

    pub(crate) fn serialize<S: serde::Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::rfc3339(*t))
    }

    /// The same, for a time that may not be known (`null`).
    pub(crate) fn option<S: serde::Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => serialize(t, s),
            None => s.serialize_none(),
        }
    }
}

/// A name-based `urn:uuid:` (the first 128 bits of SHA-256 of `name`): the same name always
/// gives the same id, which is what Atom ids and stable output ids need.
pub(crate) fn stable_urn(name: &str) -> String {
    let h = hex::encode(&Sha256::digest(name.as_bytes())[..16]);
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}
