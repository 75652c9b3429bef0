//! Owns all state: feed state and due times, entries, tombstones, leases, host delays and
//! outputs' health, behind one async interface of named operations ([`Database`]) with two
//! implementations, each idiomatic for its engine:
//!
//! - [`sqlite`], the embedded default: one file, one writer thread with group commit, read-only
//!   connections for reads, WAL checkpoints on a thread of their own.
//! - [`postgres`], the shared store of a cluster: tokio-postgres on one connection pool, set-based
//!   writes, native types; and the cluster's coordination ([`Coordination`]: host turns, the
//!   render lead, heartbeats, notices), which only PostgreSQL implements.
//!
//! The backend is chosen once, from the config's `[store]` (a path or a URL string), by
//! [`Store::open`]; nothing outside this module names either engine or its crates (a test in
//! `tests/it/shape.rs` holds that). Errors are [`StoreError`]: what callers act on (fenced,
//! newer schema, locked, unavailable), with the engine's own error as the source.

pub(crate) mod coordination;

mod copy;
pub(crate) mod housekeeping;
pub(crate) mod postgres;
pub(crate) mod sqlite;
#[cfg(test)]
mod tests;
#[cfg(test)]
pub(crate) use tests::{finished, store_batch};

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

// The store's nouns live in the model, where the stages and both backends read them; callers
// name them there (`crate::model::ParsedBatch`), so each has one path.
use crate::model::Backend;
use crate::model::Fingerprints;
use crate::model::{
    Candidate, CandidateQuery, Claimed, Delivery, EntryStats, FeedUpdate, IconLooked, NewDelivery,
    ParsedBatch, ReaderSighting, Scheduled, Secret, Step, StoreOutcome, WebhookState,
};
use crate::model::{
    ClusterNode, FeedError, FeedState, IconImage, IconState, KeyedEntry, ListState, OutputState, StoredEntry,
    Subscription,
};
pub(crate) use coordination::{Coordination, Lead, Notice, Notices, Turn};
pub(crate) use copy::copy;
pub(crate) use housekeeping::{Retention, housekeeping};

/// What went wrong in the store, in the terms its callers decide on.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// This node's claim on the feed was taken over (it stalled past its lease): its poll is
    /// not recorded, the node that holds the feed now records its own.
    #[error("the claim on feed {feed_id} passed to another node; this poll is not recorded")]
    Fenced {
        /// The feed whose poll was not recorded.
        feed_id: i64,
    },
    #[error(
        "{store} has schema version {found}, newer than this Tributary understands ({supported}); \
         upgrade Tributary{} or use another database",
        if *shared { " on every node" } else { "" }
    )]
    /// The database was made by a newer Tributary: nothing is written to it.
    TooNew {
        /// The store, as messages name it.
        store: String,
        /// Its schema version.
        found: i64,
        /// The newest this build understands.
        supported: i64,
        /// A cluster's store: every node must be upgraded.
        shared: bool,
    },
    #[error(
        "another `tributary run`{} is using the database {path}; one daemon per database \
         (stop it first, or give this one its own store.path)",
        pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
    )]
    /// Another daemon uses the SQLite file (one daemon per file).
    Locked {
        /// The database file.
        path: std::path::PathBuf,
        /// The other daemon's process, when its lock says.
        pid: Option<u32>,
    },
    #[error(
        "database {path} is read-only: check that the file, its directory and its -wal and -shm \
         files are writable by this user"
    )]
    /// The database cannot be written by this user.
    ReadOnly {
        /// The database file.
        path: std::path::PathBuf,
    },
    /// The database cannot be reached or opened now (a server down, a connection lost, a
    /// directory that cannot be made): worth trying again later.
    #[error("{context}: {source}")]
    Unavailable {
        /// What could not be done, and where (`cannot open database PATH`).
        context: String,
        /// The engine's or the network's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The store's configuration is wrong (a connection string that does not parse).
    #[error("{0}")]
    Invalid(String),
    /// Any other failure of the engine, as it reported it.
    #[error("{store}: {source}")]
    Backend {
        /// The store, as messages name it.
        store: String,
        /// The engine's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The store was closed (the daemon is stopping).
    #[error("the store is closed")]
    Closed,
}

impl StoreError {
    /// Whether trying again later can succeed without anyone changing anything: the database
    /// was unreachable, or a statement failed for a reason of the moment.
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unavailable { .. } | StoreError::Backend { .. })
    }
}

/// The `via` of a reader that is not an aggregator.
pub(crate) const DIRECT_VIA: &str = "direct";

/// How long an aggregator's figure counts after it was last seen, and how long a reader is
/// kept at all.
pub(crate) const READERS_KEPT: chrono::TimeDelta = chrono::TimeDelta::days(30);
/// How long a direct reader counts after it was last seen (a rolling week).
pub(crate) const DIRECT_READERS_FOR: chrono::TimeDelta = chrono::TimeDelta::days(7);

/// A new random salt (hex), for a store's secrets.
pub(crate) fn new_salt() -> String {
    let mut bytes = [0u8; 16];
    // The operating system's generator does not fail on the systems Tributary runs on; if it
    // did, a salt of zeros still hashes addresses (less secretly).
    let _ = getrandom::fill(&mut bytes);
    hex::encode(bytes)
}

/// How long a delivery given up stays in the outbox, for `feeds` and `/healthz` to show.
pub(crate) const FORGET_GIVEN_UP: chrono::TimeDelta = chrono::TimeDelta::days(7);

/// Failures kept per feed for its error history.
pub(crate) const ERROR_HISTORY: i64 = 20;

/// How many consecutive polls must see the same permanent redirect before the feed moves:
/// one 301 can be a mistake, three in a row are a decision.
pub(crate) const MOVE_AFTER: u32 = 3;

/// The store's named operations: what the poller, the daemon, outputs, the server and the
/// commands ask of the one state. Every implementation keeps the same promises (the test suite
/// in `store::tests` runs on both): a poll's record and its next due time commit together;
/// in a shared store a poll is recorded only under the claim it was made under (else
/// [`StoreError::Fenced`], and nothing is written); readers never wait behind writers.
#[async_trait::async_trait]
pub trait Database: Send + Sync {
    /// The store for messages: the file, or the server without its password.
    fn describe(&self) -> &str;

    // Feeds and their schedule.

    /// The state of each feed in `urls`, creating rows for feeds seen for the first time, in
    /// the order of `urls`.
    async fn ensure_feeds(&self, urls: Vec<String>, now: DateTime<Utc>)
    -> Result<Vec<FeedState>, StoreError>;
    /// Renames feeds stored under an old identity (`old` → `new`) when the new one is free.
    /// With `keep_ids`, a renamed feed's output ids stay those of its old URL
    /// ([`FeedState::id_url`]): the same feed under a new spelling of its URL.
    async fn rekey_feeds(&self, renames: Vec<(String, String)>, keep_ids: bool) -> Result<usize, StoreError>;
    /// Every stored feed's URL and where it moved (`moved_to`), to find a feed the config now
    /// spells differently.
    async fn feed_identities(&self) -> Result<Vec<(String, Option<String>)>, StoreError>;
    /// Feeds of `urls` found gone under another version of the config get another chance.
    async fn forgive_gone(&self, urls: Vec<String>, config_fingerprint: String) -> Result<usize, StoreError>;
    /// Keeps a new feed's back catalogue out of outputs by `limit` (`poll.new_feed_entries`);
    /// costs nothing unless the limit changed since it was last applied. Whether it did.
    async fn apply_catalogue_limit(&self, limit: usize) -> Result<bool, StoreError>;
    /// Sets when feeds are due (their policy changed, or a poll skipped them), releasing any
    /// claim on them. A feed whose claim (`lease`) no longer stands is left to its holder; in
    /// a shared store a feed scheduled with no claim keeps a due time another node computed
    /// under the same policy key.
    async fn schedule(&self, due: Vec<(i64, Scheduled)>) -> Result<(), StoreError>;
    /// Takes every feed but `configured` off the schedule (removed from the config).
    async fn unschedule_others(&self, configured: Vec<i64>) -> Result<usize, StoreError>;
    /// Claims up to `limit` feeds due at `now` that nobody holds, oldest due first, until
    /// `lease_until`, and finds when the next unclaimed feed is due: O(due feeds).
    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        lease_until: DateTime<Utc>,
    ) -> Result<Claimed, StoreError>;
    /// Claims those of `ids` that nobody else holds (and, with `due_only`, that are due at
    /// `now`), until `lease_until`: a one-shot poll beside a cluster's nodes.
    async fn claim_feeds(
        &self,
        ids: Vec<i64>,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        due_only: bool,
    ) -> Result<Vec<FeedState>, StoreError>;
    /// Extends this node's claims on `ids` to `until`; returns those another node holds now.
    async fn renew_leases(&self, ids: Vec<i64>, until: DateTime<Utc>) -> Result<Vec<i64>, StoreError>;
    /// Gives up this node's claims on `ids`, or on every feed it holds when `None` (a daemon
    /// starting: what it finds under its name was left by a crash).
    async fn release_leases(&self, ids: Option<Vec<i64>>) -> Result<usize, StoreError>;

    // A poll's record.

    /// Records a poll of `feed_id` that stored no entries, with when it is due next.
    async fn record_poll(
        &self,
        feed_id: i64,
        update: FeedUpdate,
        scheduled: Scheduled,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Stores one feed's parsed entries and its new state together: new keys inserted,
    /// changed ones updated in place, unchanged and tombstoned ones left alone. An entry
    /// without a date, or with one in the future, gets `now` and keeps it.
    async fn store_parsed(
        &self,
        feed_id: i64,
        batch: ParsedBatch,
        now: DateTime<Utc>,
    ) -> Result<StoreOutcome, StoreError>;
    /// Notes where this poll's permanent redirects led (`None`: none); after [`MOVE_AFTER`]
    /// polls to the same place the feed moves there, and the new location is returned.
    async fn note_redirect(&self, feed_id: i64, target: Option<String>)
    -> Result<Option<String>, StoreError>;
    /// Forgets a feed's failures (`feeds --reset`): due at once.
    async fn reset_feed(&self, feed_id: i64) -> Result<(), StoreError>;
    /// Delays every feed on `host` until `until` (a 429 from it); the longest delay wins. In
    /// a cluster every node hears of it at once.
    async fn delay_host(&self, host: String, until: DateTime<Utc>, reason: String) -> Result<(), StoreError>;
    /// Hosts that may not be asked before a time later than `now`.
    async fn host_delays(&self, now: DateTime<Utc>) -> Result<HashMap<String, DateTime<Utc>>, StoreError>;
    /// Fingerprints of the feed's items last seen with their entries stored unchanged.
    async fn fingerprints(&self, feed_id: i64) -> Result<Fingerprints, StoreError>;
    /// Key → content hash of those of `keys` the feed has stored.
    async fn content_hashes(
        &self,
        feed_id: i64,
        keys: Vec<String>,
    ) -> Result<HashMap<String, String>, StoreError>;
    /// Entries of `feed_id` whose page could not be read once, last tried before `before`.
    async fn full_text_retries(
        &self,
        feed_id: i64,
        before: DateTime<Utc>,
    ) -> Result<Vec<(i64, String)>, StoreError>;
    /// Records another try at entries' pages: the article (which becomes the content, the
    /// feed's text the summary) or the error.
    async fn record_full_text(
        &self,
        tries: Vec<(i64, Result<String, String>)>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    // WebSub subscriptions.

    /// Writes a feed's subscription whole (asked for, verified, renewed, failed, denied), and
    /// with it until when the feed is pushed ([`FeedState::pushed_until`]). A feed no longer
    /// pushed is due at once, unless it is due sooner: its polls were stretched while pushed.
    async fn put_subscription(&self, sub: Subscription, now: DateTime<Utc>) -> Result<(), StoreError>;
    /// Forgets a feed's subscription (the hub confirmed it ended), the feed due as above.
    async fn drop_subscription(&self, feed_id: i64, now: DateTime<Utc>) -> Result<(), StoreError>;
    /// Counts a push to a feed's callback: taken (the last push at `at`), or dropped.
    async fn count_push(&self, feed_id: i64, at: DateTime<Utc>, taken: bool) -> Result<(), StoreError>;

    // Subscription lists.

    /// Writes a subscription list's state whole (fetched, failed, held, confirmed).
    async fn put_list(&self, list: ListState) -> Result<(), StoreError>;

    /// Records looks for feeds' icons (see [`IconUpdate`](crate::model::IconUpdate)), made by
    /// `now`, together: after a new planet's first round, a thousand looks that found nothing
    /// end within milliseconds of each other, and a write each was a twentieth of that round's
    /// time on SQLite, which takes them in one commit (PostgreSQL commits each: see its
    /// `icons`).
    async fn record_icons(&self, looks: Vec<IconLooked>, now: DateTime<Utc>) -> Result<(), StoreError>;

    // Reads.

    /// Every subscription list's state.
    async fn lists(&self) -> Result<Vec<ListState>, StoreError>;
    /// Every feed's WebSub subscription.
    async fn subscriptions(&self) -> Result<Vec<Subscription>, StoreError>;
    /// One feed's WebSub subscription.
    async fn subscription(&self, feed_id: i64) -> Result<Option<Subscription>, StoreError>;
    /// Where a feed's icon stands; `None`: never looked for.
    async fn icon_state(&self, feed_id: i64) -> Result<Option<IconState>, StoreError>;
    /// The icons of those of the feeds `ids` that have one, by feed id.
    async fn icons_of(&self, ids: Vec<i64>) -> Result<HashMap<i64, IconImage>, StoreError>;
    /// An icon image's media type and bytes, by its hash.
    async fn icon_bytes(&self, hash: String) -> Result<Option<(String, Vec<u8>)>, StoreError>;
    /// States of the feeds at `urls` that the store knows, by URL.
    async fn feeds_by_url(&self, urls: Arc<[String]>) -> Result<HashMap<String, FeedState>, StoreError>;
    /// States of the feeds `ids`, by id.
    async fn feeds_by_id(&self, ids: Vec<i64>) -> Result<HashMap<i64, FeedState>, StoreError>;
    /// Every feed row's id and URL (what outputs map to their configured feeds).
    async fn feed_ids(&self) -> Result<Vec<(i64, String)>, StoreError>;
    /// A feed's recent failures, newest first.
    async fn feed_errors(&self, feed_id: i64) -> Result<Vec<FeedError>, StoreError>;
    /// How many entries each feed (by URL) has stored, and when its newest arrived.
    async fn entry_stats(&self) -> Result<HashMap<String, EntryStats>, StoreError>;
    /// One page of an output's candidates (see [`CandidateQuery`]).
    async fn candidates(&self, query: CandidateQuery) -> Result<Vec<Candidate>, StoreError>;
    /// The entries `ids`, whole, in no particular order (missing ones left out).
    async fn entries(&self, ids: Vec<i64>) -> Result<Vec<StoredEntry>, StoreError>;
    /// Every visible entry whose canonical link is one of `links`, first seen first.
    async fn entries_with_links(&self, links: Vec<String>) -> Result<Vec<StoredEntry>, StoreError>;
    /// Entries that `what` names: by link (as given or canonical), guid, key or title.
    async fn entries_matching(&self, what: String, canonical: String)
    -> Result<Vec<StoredEntry>, StoreError>;
    /// Every entry's id, the URL its feed's output ids are made from ([`FeedState::id_url`],
    /// else its URL) and key: what output ids are derived from.
    async fn entry_keys(&self) -> Result<Vec<(i64, String, String)>, StoreError>;

    // Retention and maintenance.

    /// The entries retention would remove: older than `keep_days`, or past the newest
    /// `keep_per_feed` of their feed. Read without holding the writer.
    async fn retention_candidates(
        &self,
        keep_days: u32,
        keep_per_feed: usize,
        now: DateTime<Utc>,
    ) -> Result<Vec<i64>, StoreError>;
    /// Removes entries for good, leaving a tombstone per key; how many went and how long the
    /// writer was held.
    async fn retire_entries(
        &self,
        ids: Vec<i64>,
        now: DateTime<Utc>,
    ) -> Result<(usize, Duration), StoreError>;
    /// Removes up to `limit` tombstones not seen since `cutoff`; how many, and how long.
    async fn expire_tombstones(
        &self,
        cutoff: DateTime<Utc>,
        limit: usize,
    ) -> Result<(usize, Duration), StoreError>;
    /// What the engine needs to stay fast as it grows, in short writer steps (SQLite: the
    /// planner's statistics and incremental vacuum; PostgreSQL does its own, autovacuum).
    async fn maintain(&self) -> Result<Vec<Step>, StoreError>;
    /// Gives memory back between rounds (caches, idle connections).
    async fn release_memory(&self) -> Result<(), StoreError>;
    /// Whether the database is sound (`Err` with what the check found).
    async fn integrity_check(&self) -> Result<Result<(), String>, StoreError>;

    // Outputs and the cluster.

    /// Records renders: `Err(reason)` when an output could not be written; `Ok(written)`.
    async fn record_outputs(
        &self,
        outcomes: Vec<(String, Result<bool, String>)>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Every output the store knows of, by path.
    async fn outputs(&self) -> Result<Vec<OutputState>, StoreError>;

    // The webhook outbox.

    /// Which of `shown` output `output` has not announced yet; `None` when it never announced
    /// anything (its first render: the back catalogue is not sent).
    async fn unannounced(&self, output: String, shown: Vec<i64>) -> Result<Option<Vec<i64>>, StoreError>;
    /// Marks `ids` announced by `output` and puts `deliveries` in the outbox, together.
    async fn announce(
        &self,
        output: String,
        ids: Vec<i64>,
        deliveries: Vec<NewDelivery>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Claims up to `limit` deliveries due at `now`, oldest first, until `until`: no other
    /// claim takes them before then (another node's, or this node's next pass), and a sender
    /// that dies leaves them to be tried again after it. Deliveries given up more than
    /// [`FORGET_GIVEN_UP`] ago are removed.
    async fn claim_deliveries(
        &self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError>;
    /// A delivery the receiver took: it leaves the outbox.
    async fn delivered(&self, id: i64) -> Result<(), StoreError>;
    /// A delivery that failed: tried again at `retry_at`, or given up (`None`), with why.
    async fn delivery_failed(
        &self,
        id: i64,
        error: String,
        retry_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Records readers seen (the latest figure per aggregator and feed id replacing the one
    /// before), and forgets those not seen for [`READERS_KEPT`].
    async fn record_readers(&self, seen: Vec<ReaderSighting>, now: DateTime<Utc>) -> Result<(), StoreError>;
    /// Each output's readers at `now`, by output and `via`: aggregators' figures seen within
    /// [`READERS_KEPT`], direct readers seen within [`DIRECT_READERS_FOR`].
    async fn reader_counts(&self, now: DateTime<Utc>) -> Result<Vec<(String, String, u64)>, StoreError>;
    /// One of the store's secrets, made (random) at its first use and the same on every node.
    async fn secret(&self, which: Secret) -> Result<String, StoreError>;
    /// When the earliest waiting delivery is due.
    async fn next_delivery(&self) -> Result<Option<DateTime<Utc>>, StoreError>;
    /// How each webhook with deliveries stands.
    async fn webhook_states(&self) -> Result<Vec<WebhookState>, StoreError>;
    /// The nodes of a cluster and, by feed id, which node holds a claim on each feed claimed
    /// now; nothing on a store that has no cluster.
    async fn cluster(
        &self,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<(Vec<ClusterNode>, HashMap<i64, String>), StoreError>;
    /// The cluster's coordination, on a store that many nodes share.
    fn coordination(&self) -> Option<Arc<dyn Coordination>>;
    /// Finishes queued writes and closes the store; every later operation fails with
    /// [`StoreError::Closed`].
    async fn close(&self);
}

/// The store: a cheap, cloneable handle on one [`Database`].
#[derive(Clone)]
pub struct Store(Arc<dyn Database>);

impl std::ops::Deref for Store {
    type Target = dyn Database;

    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}

impl Store {
    /// Opens the store `backend` names, bringing its schema up to date (a database newer than
    /// this Tributary is refused and left as it is).
    pub async fn open(backend: &Backend) -> Result<Store, StoreError> {
        Ok(match backend {
            Backend::File(path) => Store(Arc::new(sqlite::SqliteStore::open(path).await?)),
            Backend::Server { url, node } => Store(Arc::new(postgres::PgStore::connect(url, node).await?)),
        })
    }

    /// Opens the store for `tributary run`. An SQLite file is held by one daemon at a time
    /// (a second is refused with [`StoreError::Locked`]); a PostgreSQL store is shared by the
    /// nodes of a cluster.
    pub async fn open_daemon(backend: &Backend) -> Result<Store, StoreError> {
        Ok(match backend {
            Backend::File(path) => Store(Arc::new(sqlite::SqliteStore::open_exclusive(path).await?)),
            Backend::Server { .. } => Store::open(backend).await?,
        })
    }

    /// Whether `backend`'s database exists yet (an SQLite file is made by the first command
    /// that writes; a PostgreSQL database is there or not, for the server to say).
    pub fn exists(backend: &Backend) -> bool {
        match backend {
            Backend::File(path) => path.exists(),
            Backend::Server { .. } => true,
        }
    }
}

/// Log targets of the engines' drivers and pools whose warnings the store reports itself,
/// once and with context (a lost connection is "the database failed", said once per outage,
/// not a warning per pooled connection): logging keeps them at errors unless asked otherwise.
pub(crate) const QUIET_TARGETS: &[&str] = &["tokio_postgres", "deadpool", "deadpool_postgres"];

/// How `backend` is named in messages: the file, or the server without its password.
pub(crate) fn describe(backend: &Backend) -> String {
    match backend {
        Backend::File(path) => path.display().to_string(),
        Backend::Server { url, .. } => postgres::describe_url(url)
            .unwrap_or_else(|_| "PostgreSQL (a connection string that does not parse)".into()),
    }
}

/// The pid of a `tributary run` on this store, where the store can tell: a file's daemon holds
/// its lock; a cluster's nodes are many and elsewhere (`None`).
pub(crate) fn running_daemon(backend: &Backend) -> Option<u32> {
    match backend {
        Backend::File(path) => sqlite::running_daemon(path),
        Backend::Server { .. } => None,
    }
}

#[cfg(test)]
#[test]
fn servers_are_named_without_their_passwords() {
    let named = |url: &str| {
        describe(&Backend::Server {
            url: url.into(),
            node: "n".into(),
        })
    };
    assert_eq!(
        named("postgres://planet:secret@db.example:5433/feeds"),
        "planet@db.example:5433/feeds"
    );
    assert_eq!(
        named("host=/run/postgresql dbname=feeds user=planet"),
        "planet@/run/postgresql:5432/feeds"
    );
    assert!(
        check_url("postgres://a@b:notaport/c")
            .unwrap_err()
            .contains("not a valid")
    );
}

/// Checks a `[store] url` without connecting: `Ok` with how the store is named in messages
/// (`user@host:port/db`, never the password), or why it does not parse.
pub(crate) fn check_url(url: &str) -> Result<String, String> {
    postgres::describe_url(url)
}

/// Runs each named async test, `async fn NAME(store: Store)`, on both backends: as
/// `NAME::sqlite` on a new SQLite file, and as `NAME::postgres` on a new PostgreSQL database
/// (skipped without a server, a failure under `TRIBUTARY_REQUIRE_ALL=1`). One set of store
/// tests, two stores.
#[cfg(test)]
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let dir = tempfile::tempdir().unwrap();
                let store = crate::store::Store::open(
                    &crate::store::Backend::File(dir.path().join("t.db"))).await.unwrap();
                super::$name(store.clone()).await;
                store.close().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(store) = crate::store::postgres::tests::store(stringify!($name), "test").await {
                    super::$name(store.clone()).await;
                    store.close().await;
                }
            }
        }
    )*};
}
#[cfg(test)]
pub(crate) use on_both_stores;

/// A new feed's first entries ranked newest first (by key): those ranked at or past
/// `poll.new_feed_entries` are its back catalogue, stored but kept out of outputs.
pub(crate) fn catalogue_ranks(entries: &[KeyedEntry]) -> HashMap<&str, usize> {
    let mut by_date: Vec<&KeyedEntry> = entries.iter().collect();
    by_date.sort_by_key(|k| std::cmp::Reverse(k.entry.published.or(k.entry.updated)));
    by_date
        .iter()
        .enumerate()
        .map(|(rank, k)| (k.key.as_str(), rank))
        .collect()
}

/// An entry's dates as stored: the feed's, unless missing or in the future (then `now`, its
/// first-seen time, kept on every later poll); `updated` never before `published`.
pub(crate) fn settled_dates(
    entry: &crate::model::Entry,
    now: DateTime<Utc>,
) -> (DateTime<Utc>, DateTime<Utc>) {
    let not_future = |d: DateTime<Utc>| (d <= now).then_some(d);
    let published = entry.published.and_then(not_future).unwrap_or(now);
    let updated = entry
        .updated
        .and_then(not_future)
        .unwrap_or(published)
        .max(published);
    (published, updated)
}

/// A changed entry's new `updated`: the feed's own modification date when it moved forward
/// past `stored`, else `now`, the moment the change was seen; never earlier than `stored`.
pub(crate) fn updated_on_change(
    entry: &crate::model::Entry,
    stored: DateTime<Utc>,
    now: DateTime<Utc>,
) -> DateTime<Utc> {
    entry
        .updated
        .filter(|u| *u <= now && *u > stored)
        .unwrap_or(now)
        .max(stored)
}

/// An entry's language as stored: the tag and its source.
pub(crate) fn language_columns(
    language: &Option<crate::model::Language>,
) -> (Option<&str>, Option<&'static str>) {
    match language {
        Some(l) => (Some(l.tag.as_str()), Some(l.source.as_str())),
        None => (None, None),
    }
}

pub(crate) fn language_from(tag: Option<String>, source: Option<String>) -> Option<crate::model::Language> {
    Some(crate::model::Language {
        tag: tag?,
        source: crate::model::LanguageSource::parse(source.as_deref()?)?,
    })
}

/// `full_text` as stored: the column's value, the error, and the tries.
pub(crate) fn full_text_columns(
    full_text: &crate::model::FullText,
) -> (Option<&'static str>, Option<&str>, u32) {
    match full_text {
        crate::model::FullText::Feed => (None, None, 0),
        crate::model::FullText::Page => (Some("page"), None, 1),
        crate::model::FullText::Failed { error, tries } => (Some("failed"), Some(error.as_str()), *tries),
    }
}

pub(crate) fn full_text_from(
    column: Option<String>,
    error: Option<String>,
    tries: u32,
) -> crate::model::FullText {
    match column.as_deref() {
        Some("page") => crate::model::FullText::Page,
        Some("failed") => crate::model::FullText::Failed {
            error: error.unwrap_or_default(),
            tries,
        },
        _ => crate::model::FullText::Feed,
    }
}
