//! The shared store of a cluster: PostgreSQL, through tokio-postgres on one connection pool
//! (deadpool-postgres). Every operation is async on a pooled connection: no writer thread, no
//! runtime of its own, and as many writes in flight as the pool has connections (PostgreSQL
//! commits them together). A feed's entries are written with set-based statements (arrays
//! bound once, `unnest`ed by the server), id lists are arrays, times `timestamptz`, flags
//! `boolean`, categories `text[]`.
//!
//! A claim is stamped with this node and a new epoch, and a poll is recorded only under the
//! claim it was made under, in the same statement (fencing): a node that stalled past its lease
//! and lost the feed writes nothing ([`StoreError::Fenced`]). Due times, host waits and stored
//! changes are announced with `NOTIFY` in the statements that write them, so every node hears
//! of them once they commit. The cluster's own coordination is [`cluster`].

mod cluster;
mod entries;
mod feeds;
mod icons;
mod outbox;
mod readers;
mod schema;
mod subscriptions;
#[cfg(test)]
pub(crate) mod tests;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime, Timeouts};
use tokio_postgres::NoTls;

use super::{
    Candidate, CandidateQuery, Claimed, Coordination, Database, Delivery, EntryStats, FeedUpdate, IconLooked,
    NewDelivery, ParsedBatch, ReaderSighting, Scheduled, Secret, Step, StoreError, StoreOutcome,
    WebhookState,
};
use crate::model::Fingerprints;
use crate::model::{
    ClusterNode, FeedError, FeedState, IconImage, IconState, ListState, OutputState, StoredEntry,
    Subscription,
};
pub(crate) use cluster::PgCoordination;

/// Connections per node: the poller's records and reads, renders, the cluster's turns and
/// heartbeats; with the listener and the lead's own, a node holds at most 10 of the server's
/// connections. A record is one statement of a millisecond or two, so eight connections take
/// thousands of feeds a second, more than a node fetches. On the benchmark's 2 cores (nodes,
/// farm and server together) a cold 1,000 × 50 poll took 2.1 s with 4, 2.3 s with 8 and
/// 2.5 s with 16 (backends contending for cores and index pages), but two nodes' p99
/// lateness was 464 ms with 4 and 251 ms with 8 (turns and records waiting for a connection).
const POOL_SIZE: usize = 8;
/// How long an operation waits for a free connection, or for a new one to be made, before it
/// fails as unavailable (the server is down or overloaded: the caller tries again later).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The advisory lock key that serializes migrations between nodes starting together.
const MIGRATION_LOCK: i64 = 0x7472_6962_0001;

/// The channels of `NOTIFY`: the other nodes act on them at once (see [`super::Notice`]).
pub(crate) mod channel {
    /// A recorded poll's next due time (milliseconds).
    pub(crate) const DUE: &str = "tributary_due";
    /// A host turn given back (the host).
    pub(crate) const TURNS: &str = "tributary_turns";
    /// Changes stored (the node's name): the leader renders after them.
    pub(crate) const CHANGES: &str = "tributary_changes";
    /// An output published (its file name).
    pub(crate) const OUTPUTS: &str = "tributary_outputs";
    /// A host that asked everyone to wait (`MILLIS HOST`).
    pub(crate) const HOSTS: &str = "tributary_hosts";
    /// A WebSub subscription written, with when its next request is due (milliseconds).
    pub(crate) const SUBSCRIPTIONS: &str = "tributary_subscriptions";
    /// A subscription list's members changed (the list's key).
    pub(crate) const LISTS: &str = "tributary_lists";
}

/// One node's handle on the shared store.
pub(crate) struct PgStore {
    pool: Pool,
    node: String,
    describe: String,
    coordination: Arc<PgCoordination>,
}

/// `user@host:port/db` from a connection string, never the password; or why it does not parse
/// (the parser's message, never the string: it may hold a password).
pub(crate) fn describe_url(url: &str) -> Result<String, String> {
    let config: tokio_postgres::Config = url
        .parse()
        .map_err(|e| format!("not a valid connection string: {e}"))?;
    Ok(describe_config(&config))
}

fn describe_config(config: &tokio_postgres::Config) -> String {
    let host = config
        .get_hosts()
        .first()
        .map(|h| match h {
            tokio_postgres::config::Host::Tcp(name) => name.clone(),
            tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .unwrap_or_else(|| "localhost".into());
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let user = config.get_user().unwrap_or("?");
    let db = config.get_dbname().unwrap_or(user);
    format!("{user}@{host}:{port}/{db}")
}

/// A due time as PostgreSQL can hold it: "due at once" is any time in the past, and the
/// schedule says so with the earliest time there is, which `timestamptz` cannot hold.
pub(crate) fn due_time(t: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    t.map(|t| t.max(DateTime::UNIX_EPOCH))
}

/// The driver's error with what the server said in its message (tokio-postgres says only "db
/// error" and keeps the server's words in its source).
#[derive(Debug)]
struct Failure(tokio_postgres::Error);

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0.as_db_error() {
            Some(db) => {
                write!(f, "{} ({}): {}", db.severity(), db.code().code(), db.message())?;
                if let Some(detail) = db.detail() {
                    write!(f, "; {detail}")?;
                }
                Ok(())
            }
            None => match std::error::Error::source(&self.0) {
                Some(source) => write!(f, "{}: {source}", self.0),
                None => write!(f, "{}", self.0),
            },
        }
    }
}

impl std::error::Error for Failure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// A PostgreSQL error as the store reports it: a lost or refused connection, a server
/// shutting down or an overloaded one is unavailable (for now); anything else is the engine's.
pub(crate) fn error(describe: &str, e: tokio_postgres::Error) -> StoreError {
    use tokio_postgres::error::SqlState;
    let unavailable = e.is_closed()
        || e.code().is_none_or(|code| {
            code.code().starts_with("08")
                || [
                    SqlState::ADMIN_SHUTDOWN,
                    SqlState::CRASH_SHUTDOWN,
                    SqlState::CANNOT_CONNECT_NOW,
                    SqlState::TOO_MANY_CONNECTIONS,
                ]
                .contains(code)
        });
    let source = Box::new(Failure(e));
    if unavailable {
        StoreError::Unavailable {
            context: format!("cannot reach PostgreSQL at {describe}"),
            source,
        }
    } else {
        StoreError::Backend {
            store: format!("PostgreSQL at {describe}"),
            source,
        }
    }
}

fn pool_error(describe: &str, e: deadpool_postgres::PoolError) -> StoreError {
    match e {
        deadpool_postgres::PoolError::Backend(e) => error(describe, e),
        deadpool_postgres::PoolError::Closed => StoreError::Closed,
        other => StoreError::Unavailable {
            context: format!("cannot reach PostgreSQL at {describe}"),
            source: other.into(),
        },
    }
}

impl PgStore {
    /// Connects as node `node` and brings the schema up to date (one node at a time: nodes
    /// starting together wait on an advisory lock, then find the work done).
    pub(crate) async fn connect(url: &str, node: &str) -> Result<PgStore, StoreError> {
        let mut config: tokio_postgres::Config = url.parse().map_err(|e| {
            StoreError::Invalid(format!(
                "store.url: not a valid PostgreSQL connection string: {e}"
            ))
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        let describe = describe_config(&config);
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .timeouts(Timeouts {
                wait: Some(CONNECT_TIMEOUT),
                create: Some(CONNECT_TIMEOUT),
                recycle: Some(CONNECT_TIMEOUT),
            })
            .build()
            .map_err(|e| {
                StoreError::Invalid(format!("PostgreSQL at {describe}: cannot set up a pool: {e}"))
            })?;
        let store = PgStore {
            coordination: Arc::new(PgCoordination::new(pool.clone(), config, node, &describe)),
            pool,
            node: node.to_string(),
            describe,
        };
        store.migrate().await?;
        Ok(store)
    }

    /// A pooled connection.
    pub(crate) async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool.get().await.map_err(|e| pool_error(&self.describe, e))
    }

    fn error(&self, e: tokio_postgres::Error) -> StoreError {
        error(&self.describe, e)
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| self.error(e))?;
        let found = schema::migrate(&tx).await.map_err(|e| self.error(e))?;
        let supported = schema::MIGRATIONS.len() as i64;
        if found > supported {
            return Err(StoreError::TooNew {
                store: format!("PostgreSQL at {}", self.describe),
                found,
                supported,
                shared: true,
            });
        }
        tx.commit().await.map_err(|e| self.error(e))
    }
}

#[async_trait::async_trait]
impl Database for PgStore {
    fn describe(&self) -> &str {
        &self.describe
    }

    async fn ensure_feeds(
        &self,
        urls: Vec<String>,
        now: DateTime<Utc>,
    ) -> Result<Vec<FeedState>, StoreError> {
        self.ensure(urls, now).await
    }

    async fn rekey_feeds(&self, renames: Vec<(String, String)>, keep_ids: bool) -> Result<usize, StoreError> {
        self.rekey(renames, keep_ids).await
    }

    async fn feed_identities(&self) -> Result<Vec<(String, Option<String>)>, StoreError> {
        self.identities().await
    }

    async fn forgive_gone(&self, urls: Vec<String>, config_fingerprint: String) -> Result<usize, StoreError> {
        self.forgive(urls, config_fingerprint).await
    }

    async fn apply_catalogue_limit(&self, limit: usize) -> Result<bool, StoreError> {
        self.catalogue_limit(limit).await
    }

    async fn schedule(&self, due: Vec<(i64, Scheduled)>) -> Result<(), StoreError> {
        self.set_due(due).await
    }

    async fn unschedule_others(&self, configured: Vec<i64>) -> Result<usize, StoreError> {
        self.unschedule(configured).await
    }

    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        lease_until: DateTime<Utc>,
    ) -> Result<Claimed, StoreError> {
        self.claim(now, limit, lease_until).await
    }

    async fn claim_feeds(
        &self,
        ids: Vec<i64>,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        due_only: bool,
    ) -> Result<Vec<FeedState>, StoreError> {
        self.claim_these(ids, now, lease_until, due_only).await
    }

    async fn renew_leases(&self, ids: Vec<i64>, until: DateTime<Utc>) -> Result<Vec<i64>, StoreError> {
        self.renew(ids, until).await
    }

    async fn release_leases(&self, ids: Option<Vec<i64>>) -> Result<usize, StoreError> {
        self.release(ids).await
    }

    async fn record_poll(
        &self,
        feed_id: i64,
        update: FeedUpdate,
        scheduled: Scheduled,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.record(feed_id, update, scheduled, now).await
    }

    async fn store_parsed(
        &self,
        feed_id: i64,
        batch: ParsedBatch,
        now: DateTime<Utc>,
    ) -> Result<StoreOutcome, StoreError> {
        self.store_batch(feed_id, batch, now).await
    }

    async fn note_redirect(
        &self,
        feed_id: i64,
        target: Option<String>,
    ) -> Result<Option<String>, StoreError> {
        self.redirect(feed_id, target).await
    }

    async fn reset_feed(&self, feed_id: i64) -> Result<(), StoreError> {
        self.reset(feed_id).await
    }

    async fn delay_host(&self, host: String, until: DateTime<Utc>, reason: String) -> Result<(), StoreError> {
        self.delay(host, until, reason).await
    }

    async fn host_delays(&self, now: DateTime<Utc>) -> Result<HashMap<String, DateTime<Utc>>, StoreError> {
        self.delays(now).await
    }

    async fn fingerprints(&self, feed_id: i64) -> Result<Fingerprints, StoreError> {
        self.segments(feed_id).await
    }

    async fn content_hashes(
        &self,
        feed_id: i64,
        keys: Vec<String>,
    ) -> Result<HashMap<String, String>, StoreError> {
        self.hashes(feed_id, keys).await
    }

    async fn full_text_retries(
        &self,
        feed_id: i64,
        before: DateTime<Utc>,
    ) -> Result<Vec<(i64, String)>, StoreError> {
        self.retries(feed_id, before).await
    }

    async fn record_full_text(
        &self,
        tries: Vec<(i64, Result<String, String>)>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.full_text(tries, now).await
    }

    async fn unannounced(&self, output: String, shown: Vec<i64>) -> Result<Option<Vec<i64>>, StoreError> {
        PgStore::unannounced(self, output, shown).await
    }

    async fn announce(
        &self,
        output: String,
        ids: Vec<i64>,
        deliveries: Vec<NewDelivery>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        PgStore::announce(self, output, ids, deliveries, now).await
    }

    async fn claim_deliveries(
        &self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        PgStore::claim_deliveries(self, now, until, limit).await
    }

    async fn delivered(&self, id: i64) -> Result<(), StoreError> {
        PgStore::delivered(self, id).await
    }

    async fn delivery_failed(
        &self,
        id: i64,
        error: String,
        retry_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        PgStore::delivery_failed(self, id, error, retry_at, now).await
    }

    async fn record_readers(&self, seen: Vec<ReaderSighting>, now: DateTime<Utc>) -> Result<(), StoreError> {
        PgStore::record_readers(self, seen, now).await
    }

    async fn reader_counts(&self, now: DateTime<Utc>) -> Result<Vec<(String, String, u64)>, StoreError> {
        PgStore::reader_counts(self, now).await
    }

    async fn secret(&self, which: Secret) -> Result<String, StoreError> {
        PgStore::secret(self, which.name()).await
    }

    async fn put_subscription(&self, sub: Subscription, now: DateTime<Utc>) -> Result<(), StoreError> {
        PgStore::put_subscription(self, sub, now).await
    }

    async fn drop_subscription(&self, feed_id: i64, now: DateTime<Utc>) -> Result<(), StoreError> {
        PgStore::drop_subscription(self, feed_id, now).await
    }

    async fn count_push(&self, feed_id: i64, at: DateTime<Utc>, taken: bool) -> Result<(), StoreError> {
        PgStore::count_push(self, feed_id, at, taken).await
    }

    async fn put_list(&self, list: ListState) -> Result<(), StoreError> {
        PgStore::put_list(self, list).await
    }

    async fn lists(&self) -> Result<Vec<ListState>, StoreError> {
        PgStore::lists(self).await
    }

    async fn subscriptions(&self) -> Result<Vec<Subscription>, StoreError> {
        PgStore::subscriptions(self, None).await
    }

    async fn subscription(&self, feed_id: i64) -> Result<Option<Subscription>, StoreError> {
        Ok(PgStore::subscriptions(self, Some(feed_id)).await?.pop())
    }

    async fn next_delivery(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        PgStore::next_delivery(self).await
    }

    async fn webhook_states(&self) -> Result<Vec<WebhookState>, StoreError> {
        PgStore::webhook_states(self).await
    }

    async fn record_icons(&self, looks: Vec<IconLooked>, now: DateTime<Utc>) -> Result<(), StoreError> {
        PgStore::record_icons(self, looks, now).await
    }

    async fn icon_state(&self, feed_id: i64) -> Result<Option<IconState>, StoreError> {
        PgStore::icon_state(self, feed_id).await
    }

    async fn icons_of(&self, ids: Vec<i64>) -> Result<HashMap<i64, IconImage>, StoreError> {
        PgStore::icons_of(self, ids).await
    }

    async fn icon_bytes(&self, hash: String) -> Result<Option<(String, Vec<u8>)>, StoreError> {
        PgStore::icon_bytes(self, hash).await
    }

    async fn feeds_by_url(&self, urls: Arc<[String]>) -> Result<HashMap<String, FeedState>, StoreError> {
        self.by_url(&urls).await
    }

    async fn feeds_by_id(&self, ids: Vec<i64>) -> Result<HashMap<i64, FeedState>, StoreError> {
        self.by_id(ids).await
    }

    async fn feed_ids(&self) -> Result<Vec<(i64, String)>, StoreError> {
        self.ids().await
    }

    async fn feed_errors(&self, feed_id: i64) -> Result<Vec<FeedError>, StoreError> {
        self.errors(feed_id).await
    }

    async fn entry_stats(&self) -> Result<HashMap<String, EntryStats>, StoreError> {
        PgStore::entry_stats(self).await
    }

    async fn candidates(&self, query: CandidateQuery) -> Result<Vec<Candidate>, StoreError> {
        self.page(query).await
    }

    async fn entries(&self, ids: Vec<i64>) -> Result<Vec<StoredEntry>, StoreError> {
        self.by_ids(ids).await
    }

    async fn entries_with_links(&self, links: Vec<String>) -> Result<Vec<StoredEntry>, StoreError> {
        self.by_links(links).await
    }

    async fn entries_matching(
        &self,
        what: String,
        canonical: String,
    ) -> Result<Vec<StoredEntry>, StoreError> {
        self.matching(what, canonical).await
    }

    async fn entry_keys(&self) -> Result<Vec<(i64, String, String)>, StoreError> {
        self.keys().await
    }

    async fn retention_candidates(
        &self,
        keep_days: u32,
        keep_per_feed: usize,
        now: DateTime<Utc>,
    ) -> Result<Vec<i64>, StoreError> {
        self.doomed(keep_days, keep_per_feed, now).await
    }

    async fn retire_entries(
        &self,
        ids: Vec<i64>,
        now: DateTime<Utc>,
    ) -> Result<(usize, Duration), StoreError> {
        self.retire(ids, now).await
    }

    async fn expire_tombstones(
        &self,
        cutoff: DateTime<Utc>,
        limit: usize,
    ) -> Result<(usize, Duration), StoreError> {
        self.expire(cutoff, limit).await
    }

    async fn maintain(&self) -> Result<Vec<Step>, StoreError> {
        // PostgreSQL keeps its planner's statistics and its free space itself (autovacuum).
        Ok(Vec::new())
    }

    async fn release_memory(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn integrity_check(&self) -> Result<Result<(), String>, StoreError> {
        // PostgreSQL keeps its own consistency (WAL, constraints): there is nothing to check
        // that it would not have refused to write.
        Ok(Ok(()))
    }

    async fn record_outputs(
        &self,
        outcomes: Vec<(String, Result<bool, String>)>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.record_renders(outcomes, now).await
    }

    async fn outputs(&self) -> Result<Vec<OutputState>, StoreError> {
        self.output_states().await
    }

    async fn cluster(
        &self,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<(Vec<ClusterNode>, HashMap<i64, String>), StoreError> {
        self.nodes(now, lease).await
    }

    fn coordination(&self) -> Option<Arc<dyn Coordination>> {
        Some(self.coordination.clone())
    }

    async fn close(&self) {
        self.pool.close();
    }
}
