//! What the store takes and gives back: a parsed feed to store, a poll's record and next due
//! time, claims, output candidates, webhook deliveries, readers seen, icons found. Nouns of
//! the flow, so the stages and the store's backends all speak them.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{
    FailureKind, FeedMeta, FeedState, Fields, Fingerprints, IconImage, KeyedEntry, Needs, Validators,
};

/// What a look for a feed's icon found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum IconUpdate {
    /// An image at `url`: kept once by its hash, however many feeds share it; the feed's
    /// previous image goes when no feed has it any more.
    Found {
        url: String,
        image: IconImage,
        bytes: Vec<u8>,
        validators: Validators,
    },
    /// The icon found last time is still there (304); new validators replace the old ones
    /// when the server sent some.
    Unchanged { validators: Validators },
    /// Nothing found this time, and why; the image found before (if any) stays.
    Missing { error: String },
}

/// One feed's look for its icon, to record: what it found and when to look again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IconLooked {
    pub(crate) feed_id: i64,
    pub(crate) update: IconUpdate,
    pub(crate) next: DateTime<Utc>,
}

/// An output's readers as one request showed them (see `serve::reach`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReaderSighting {
    /// The output's file name, as served.
    pub(crate) output: String,
    /// The aggregator, or `direct`.
    pub(crate) via: String,
    /// The aggregator's feed id, or the salted hash of a direct reader's address and agent.
    pub(crate) key: String,
    /// Its stated subscribers (1 for a direct reader).
    pub(crate) count: u64,
    pub(crate) seen: DateTime<Utc>,
}

/// The store's secrets (see the store's `Database::secret`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Secret {
    /// Salts the hashes of readers' addresses (`serve::reach`).
    ReaderSalt,
    /// Keys the WebSub callback URLs, so a node tells a made-up one without a lookup.
    CallbackKey,
}

impl Secret {
    /// Its name in the `settings` table.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Secret::ReaderSalt => "reader_salt",
            Secret::CallbackKey => "callback_key",
        }
    }
}

/// A webhook delivery in the outbox: one request's body, for one webhook of an output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Never reused: with the store's, the delivery's idempotency key.
    pub(crate) id: i64,
    /// The output's path, as written.
    pub(crate) output: String,
    /// The webhook's name ([`crate::model::WebhookSpec::name`]).
    pub(crate) webhook: String,
    pub(crate) body: String,
    pub(crate) created: DateTime<Utc>,
    /// Tries so far, this one included once claimed.
    pub(crate) attempts: u32,
}

/// A delivery to put in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    /// The webhook's name.
    pub webhook: String,
    /// The request body, as it will be sent.
    pub body: String,
}

/// How one webhook of an output stands, for `feeds` and `/healthz`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct WebhookState {
    pub(crate) output: String,
    pub(crate) webhook: String,
    /// Deliveries waiting (to be sent, or retried).
    pub(crate) pending: usize,
    /// When the oldest of them was made.
    #[serde(serialize_with = "crate::model::json_time::option")]
    pub(crate) oldest: Option<DateTime<Utc>>,
    /// Deliveries given up (a permanent refusal, or retried past the window).
    pub(crate) failed: usize,
    /// The last error of a waiting or given-up delivery, newest first.
    pub(crate) last_error: Option<String>,
}

/// What happened to a feed in a poll that did not store entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedUpdate {
    /// 304, or a body identical to the last one parsed. New validators replace old ones when
    /// the server sent some; `fresh_until` is the new caching hint.
    Unchanged {
        validators: Option<Validators>,
        fresh_until: Option<DateTime<Utc>>,
    },
    Failed {
        error: String,
        kind: FailureKind,
        /// From a Retry-After header.
        retry_after: Option<DateTime<Utc>>,
        /// The server said 410 Gone: stop polling until the config (whose fingerprint this
        /// is) changes.
        gone: Option<String>,
        /// The feed has failed for `poll.give_up_after`.
        abandoned: bool,
    },
}

/// When a feed is due next, as the schedule computed it, and the policy it was computed under.
/// Written by the same statement that records a poll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scheduled {
    /// `None`: not scheduled (gone).
    pub next_due: Option<DateTime<Utc>>,
    /// The feed's key (its URL as identity), which the record is for.
    pub key: String,
    /// The claim the poll was made under (`FeedState::lease_epoch`): in a shared store the
    /// poll is recorded only while it stands, so a node that lost its claim writes nothing.
    pub lease: Option<i64>,
}

/// The due feeds a wake-up claimed, and when the next one not claimed is due.
#[derive(Debug, Clone, Default)]
pub struct Claimed {
    pub feeds: Vec<FeedState>,
    /// More feeds are due than the claim's limit: claim again once these are under way.
    pub(crate) more: bool,
    /// The earliest due time after `now`, if any feed has one (or, in a cluster, when another
    /// node's claim on a due feed runs out).
    pub(crate) next: Option<DateTime<Utc>>,
}

/// What storing one feed's parse did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreOutcome {
    pub new: usize,
    pub(crate) updated: usize,
    /// Of the new ones, how many were held back as a new feed's back catalogue.
    pub(crate) held_back: usize,
    /// Entries the feed's rules excluded (never stored); counted by the poll.
    pub(crate) excluded: usize,
}

/// Everything a successful parse hands the store for one feed.
#[derive(Debug, Clone)]
pub struct ParsedBatch {
    /// What the document says of the feed.
    pub meta: FeedMeta,
    /// The response's validators, for the next poll.
    pub validators: Validators,
    /// SHA-256 of the body: an identical body next time is not parsed.
    pub body_hash: String,
    /// The entries to store: new ones, and changed ones with their new content.
    pub entries: Vec<KeyedEntry>,
    /// Caching hint from the response and the document, if any.
    pub fresh_until: Option<DateTime<Utc>>,
    /// On a feed's first successful parse, only this many of its newest entries are shown in
    /// outputs; the rest are stored hidden.
    pub new_feed_entries: usize,
    /// Fingerprints of the document's items whose entries are stored unchanged already; the
    /// items of `entries` stored now are added to them.
    pub unchanged_segments: Fingerprints,
    /// When the feed is due next.
    pub scheduled: Scheduled,
    /// The body came in a WebSub push: its new entries are marked as having arrived so.
    pub pushed: bool,
}

/// An entry as selection first sees it: enough to order it, attribute it, test the rules
/// on (the fields the rules do not need are empty) and find its duplicates.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub(crate) id: i64,
    pub(crate) feed_id: i64,
    pub(crate) published: DateTime<Utc>,
    pub(crate) title: String,
    pub(crate) link: Option<String>,
    pub(crate) canonical_link: Option<String>,
    pub(crate) author: Option<String>,
    pub(crate) categories: Vec<String>,
    pub(crate) summary: Option<String>,
    pub(crate) content: Option<String>,
    /// Its language tag, for outputs that select by language.
    pub(crate) language: Option<String>,
}

impl Candidate {
    /// What the rules see of it.
    pub fn fields(&self) -> Fields<'_> {
        Fields {
            title: &self.title,
            bodies: [self.summary.as_deref(), self.content.as_deref()],
            author: self.author.as_deref(),
            categories: &self.categories,
            link: self.link.as_deref(),
        }
    }

    /// Where the next page of candidates starts: after this one.
    pub fn cursor(&self) -> (DateTime<Utc>, i64) {
        (self.published, self.id)
    }
}

/// One page of an output's candidates: the visible entries of `feeds` (every feed when
/// `None`), newest first (by `published`, then id), after `after`, at most `limit`.
#[derive(Debug, Clone)]
pub struct CandidateQuery {
    pub(crate) feeds: Option<Arc<HashSet<i64>>>,
    pub(crate) needs: Needs,
    pub(crate) after: Option<(DateTime<Utc>, i64)>,
    pub(crate) limit: usize,
}

/// A feed's stored entries: how many, and when the newest of them was first seen (what tells an
/// inactive feed: one that answers but has had nothing new for months).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EntryStats {
    pub(crate) count: usize,
    pub(crate) newest: Option<DateTime<Utc>>,
}

/// A writer step of maintenance (see the store's `Database::maintain`): what it was and how long the
/// writer was held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    pub(crate) kind: &'static str,
    pub(crate) took: Duration,
}
