//! The shared store of a cluster: PostgreSQL (tokio-postgres, pooled by deadpool-postgres),
//! where any number of nodes claim due feeds, per-host turns and the render lead in the
//! database, so that each due feed is fetched by one node per slot whatever the number of
//! nodes, and a node that dies loses what it held when its lease runs out.
//!
//! The protocol, and why it holds:
//! - A claim takes due feeds whose lease is free or ran out with `FOR UPDATE SKIP LOCKED`:
//!   two nodes claiming at once take disjoint sets, and neither waits on the other.
//! - Every claim bumps the feed's lease epoch. A poll is recorded only under the node and
//!   epoch it was claimed with, in a transaction that locks the row first; a node that
//!   stalled past its lease (and whose feed another node took) finds its epoch gone and
//!   writes nothing (fencing).
//! - `per_host` is a set of turns per host in the database, taken and given back like
//!   leases, so it holds for the cluster; host delays (429, Retry-After) are rows every node
//!   reads.
//! - The render lead is a session-level advisory lock: held while the leader's connection
//!   lives, released by PostgreSQL when that session ends, however the node died.
//!
//! Times are computed by the caller (the daemon's one clock) and passed in, never taken from
//! the database server's clock, so that every node's decisions are on the same time line as
//! its schedule.

pub mod copy;
mod schema;

use chrono::{DateTime, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::NoTls;

use super::{from_millis, to_millis};

/// Connections per node: claims, records and reads of one daemon, with room for a render.
const POOL_SIZE: usize = 8;
/// The advisory lock key that serializes migrations between nodes starting together.
const MIGRATION_LOCK: i64 = 0x7472_6962_0001;
/// The advisory lock key of the render lead.
const RENDER_LOCK: i64 = 0x7472_6962_0002;
/// The channel a leader announces re-rendered outputs on (the payload is the output's path).
pub const OUTPUTS_CHANNEL: &str = "tributary_outputs";
/// The channel a node announces the next due time of a feed it recorded on (the payload is
/// the time in milliseconds): the other nodes wake for it too.
pub const DUE_CHANNEL: &str = "tributary_due";
/// The channel a node announces a host turn it gave back on (the payload is the host).
pub const TURNS_CHANNEL: &str = "tributary_turns";
/// The channel a node announces stored changes on (the payload is the node's name): the
/// leader renders after them.
pub const CHANGES_CHANNEL: &str = "tributary_changes";

#[derive(Debug, thiserror::Error)]
pub enum PgError {
    /// The connection string does not parse. (It may hold a password: it is not repeated.)
    #[error("invalid PostgreSQL connection string: {0}")]
    Url(#[source] tokio_postgres::Error),
    #[error("cannot set up a connection pool for PostgreSQL at {target}: {message}")]
    Pool { target: String, message: String },
    #[error("PostgreSQL at {target}: {source}")]
    Connect {
        target: String,
        #[source]
        source: deadpool_postgres::PoolError,
    },
    #[error(
        "PostgreSQL at {target} has schema version {found}, newer than this Tributary understands \
         ({supported}); upgrade Tributary on every node"
    )]
    TooNew {
        target: String,
        found: i64,
        supported: i64,
    },
    #[error("PostgreSQL error: {0}")]
    Db(#[from] tokio_postgres::Error),
    /// The connection string's `${…}` references could not be read.
    #[error("PostgreSQL connection string: {0}")]
    Config(String),
}

/// One node's handle on the shared store.
#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
    /// For connections of their own (a listener: notifications never reach pooled ones).
    config: tokio_postgres::Config,
    node: String,
    /// `user@host:port/db`, never the password: for messages.
    target: String,
}

/// A feed claimed by this node until its lease runs out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub feed_id: i64,
    pub url: String,
    /// When the feed was due (the slot this claim is for).
    pub due: DateTime<Utc>,
    /// The claim's epoch: the poll is recorded under it, or not at all.
    pub epoch: i64,
}

/// What a claim took, and when to claim again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Leases {
    pub feeds: Vec<Lease>,
    /// The claim hit its limit: more may be due.
    pub more: bool,
    /// The earliest time a feed not claimed now becomes claimable: the next due time, or the
    /// end of another node's lease on a feed that is due.
    pub next: Option<DateTime<Utc>>,
}

/// One of a host's `per_host` turns, held by this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Turn {
    pub host: String,
    pub turn: i64,
    pub epoch: i64,
}

/// A node as the cluster last heard of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    pub name: String,
    pub started: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    pub pid: i64,
    pub version: String,
}

/// Notifications (see [`PgStore::listen`]), on a connection of its own that lives as long
/// as this value.
pub struct OutputChanges {
    rx: tokio::sync::mpsc::Receiver<Notice>,
    _client: tokio_postgres::Client,
    task: tokio::task::JoinHandle<()>,
}

/// One notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub channel: &'static str,
    pub payload: String,
}

impl OutputChanges {
    /// The payload of the next notification (an output's path, on [`OUTPUTS_CHANNEL`]);
    /// `None` once the connection is gone.
    pub async fn next(&mut self) -> Option<String> {
        self.rx.recv().await.map(|n| n.payload)
    }

    /// The next notification, with its channel; `None` once the connection is gone.
    pub async fn notice(&mut self) -> Option<Notice> {
        self.rx.recv().await
    }
}

impl Drop for OutputChanges {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// This node holds the render lead while this value lives (its own connection, holding a
/// session advisory lock). Dropping it closes that connection, which releases the lock.
pub struct Leader {
    client: Option<deadpool_postgres::Object>,
    pid: i32,
}

impl PgStore {
    /// Connects as node `node` and brings the schema up to date (one node at a time: nodes
    /// starting together wait on an advisory lock, then find the work done).
    pub async fn connect(url: &str, node: &str) -> Result<PgStore, PgError> {
        let config: tokio_postgres::Config = url.parse().map_err(PgError::Url)?;
        let target = describe(&config);
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .build()
            .map_err(|e| PgError::Pool {
                target: target.clone(),
                message: e.to_string(),
            })?;
        let store = PgStore {
            pool,
            config,
            node: node.to_string(),
            target,
        };
        store.migrate().await?;
        Ok(store)
    }

    /// The connection settings (for connections of the store's own).
    pub(crate) fn config(&self) -> &tokio_postgres::Config {
        &self.config
    }

    /// Where this store is, for messages (no password).
    pub fn target(&self) -> &str {
        &self.target
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, PgError> {
        self.pool.get().await.map_err(|source| PgError::Connect {
            target: self.target.clone(),
            source,
        })
    }

    async fn migrate(&self) -> Result<(), PgError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await?;
        tx.batch_execute("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)")
            .await?;
        let found: i64 = tx
            .query_opt("SELECT version FROM schema_version", &[])
            .await?
            .map_or(0, |r| r.get(0));
        let supported = schema::MIGRATIONS.len() as i64;
        if found > supported {
            return Err(PgError::TooNew {
                target: self.target.clone(),
                found,
                supported,
            });
        }
        for sql in schema::MIGRATIONS
            .iter()
            .skip(usize::try_from(found).unwrap_or(0))
        {
            tx.batch_execute(sql).await?;
        }
        if found < supported {
            tx.execute("DELETE FROM schema_version", &[]).await?;
            tx.execute("INSERT INTO schema_version (version) VALUES ($1)", &[&supported])
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The schema version the database is at.
    pub async fn schema_version(&self) -> Result<i64, PgError> {
        let client = self.client().await?;
        Ok(client
            .query_one("SELECT version FROM schema_version", &[])
            .await?
            .get(0))
    }

    /// Makes sure every URL has a feed row (new ones due at `now`); returns their ids, in
    /// the order of `urls`. Every node runs this at start with the same config: the first
    /// one inserts, the others find the rows.
    pub async fn ensure_feeds(&self, urls: &[String], now: DateTime<Utc>) -> Result<Vec<i64>, PgError> {
        let client = self.client().await?;
        let now_ms = to_millis(now);
        client
            .execute(
                "INSERT INTO feeds (url, created, next_due)
                 SELECT u, $2, $3 FROM unnest($1::text[]) AS u
                 ON CONFLICT (url) DO NOTHING",
                &[&urls, &(now_ms / 1000), &now_ms],
            )
            .await?;
        let rows = client
            .query("SELECT url, id FROM feeds WHERE url = ANY($1)", &[&urls])
            .await?;
        let ids: std::collections::HashMap<String, i64> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        Ok(urls.iter().filter_map(|u| ids.get(u).copied()).collect())
    }

    /// Claims up to `limit` feeds due at `now` whose lease is free or ran out, oldest due
    /// first, until `lease_until`. Nodes claiming at the same moment take disjoint sets.
    pub async fn claim_due(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        lease_until: DateTime<Utc>,
    ) -> Result<Leases, PgError> {
        let client = self.client().await?;
        let now_ms = to_millis(now);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = client
            .query(
                "WITH due AS (
                     SELECT id FROM feeds
                     WHERE next_due <= $1 AND (lease_until IS NULL OR lease_until <= $1)
                     ORDER BY next_due
                     LIMIT $2
                     FOR UPDATE SKIP LOCKED)
                 UPDATE feeds AS f
                 SET lease_until = $3, lease_node = $4, lease_epoch = f.lease_epoch + 1
                 FROM due WHERE f.id = due.id
                 RETURNING f.id, f.url, f.next_due, f.lease_epoch",
                &[&now_ms, &limit, &to_millis(lease_until), &self.node],
            )
            .await?;
        let mut feeds: Vec<Lease> = rows
            .iter()
            .map(|r| Lease {
                feed_id: r.get(0),
                url: r.get(1),
                due: from_millis(r.get(2)),
                epoch: r.get(3),
            })
            .collect();
        feeds.sort_by_key(|l| (l.due, l.feed_id));
        let more = feeds.len() as i64 >= limit;
        // The next due time is one step of the due index; a due feed another node holds is
        // claimable when its lease ends (that range is only the feeds in flight).
        let next: Option<i64> = client
            .query_one(
                "SELECT LEAST(
                     (SELECT MIN(next_due) FROM feeds WHERE next_due > $1),
                     (SELECT MIN(lease_until) FROM feeds WHERE next_due <= $1 AND lease_until > $1))",
                &[&now_ms],
            )
            .await?
            .get(0);
        Ok(Leases {
            feeds,
            more,
            next: next.map(from_millis),
        })
    }

    /// Records a poll of a claimed feed (its next due time and when it was fetched) and frees
    /// its lease, if this node still holds it under the claim's epoch. `false`: the lease was
    /// lost (it ran out and another node claimed the feed); nothing was written.
    pub async fn finish(
        &self,
        lease: &Lease,
        fetched: DateTime<Utc>,
        next_due: DateTime<Utc>,
    ) -> Result<bool, PgError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // The row lock keeps a claimer out until this commits: a lease that runs out while
        // the poll is being recorded is not taken half-way through.
        let held = tx
            .query_opt(
                "SELECT 1 FROM feeds WHERE id = $1 AND lease_node = $2 AND lease_epoch = $3 FOR UPDATE",
                &[&lease.feed_id, &self.node, &lease.epoch],
            )
            .await?
            .is_some();
        if !held {
            return Ok(false);
        }
        // When `poll` runs on PostgreSQL, its record step (entries, feed state) belongs here,
        // in this transaction: it is what the fence protects. Today only the schedule is.
        tx.execute(
            "UPDATE feeds SET next_due = $2, last_fetch = $3, lease_until = NULL, lease_node = NULL
             WHERE id = $1",
            &[&lease.feed_id, &to_millis(next_due), &to_millis(fetched)],
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Extends the leases this node still holds (a fetch that takes longer than a lease);
    /// returns the ids it still holds.
    pub async fn renew(&self, leases: &[Lease], until: DateTime<Utc>) -> Result<Vec<i64>, PgError> {
        let client = self.client().await?;
        let ids: Vec<i64> = leases.iter().map(|l| l.feed_id).collect();
        let epochs: Vec<i64> = leases.iter().map(|l| l.epoch).collect();
        let rows = client
            .query(
                "UPDATE feeds AS f SET lease_until = $1
                 FROM unnest($2::bigint[], $3::bigint[]) AS l(id, epoch)
                 WHERE f.id = l.id AND f.lease_epoch = l.epoch AND f.lease_node = $4
                 RETURNING f.id",
                &[&to_millis(until), &ids, &epochs, &self.node],
            )
            .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// Gives back leases not polled (the node is stopping, or the feed left the config).
    pub async fn release(&self, leases: &[Lease]) -> Result<u64, PgError> {
        let client = self.client().await?;
        let ids: Vec<i64> = leases.iter().map(|l| l.feed_id).collect();
        let epochs: Vec<i64> = leases.iter().map(|l| l.epoch).collect();
        Ok(client
            .execute(
                "UPDATE feeds AS f SET lease_until = NULL, lease_node = NULL
                 FROM unnest($1::bigint[], $2::bigint[]) AS l(id, epoch)
                 WHERE f.id = l.id AND f.lease_epoch = l.epoch AND f.lease_node = $3",
                &[&ids, &epochs, &self.node],
            )
            .await?)
    }

    /// Takes one of `host`'s `per_host` turns for the whole cluster, until `until` (a turn
    /// whose holder's time ran out is free); `None` when all are taken.
    pub async fn take_turn(
        &self,
        host: &str,
        per_host: usize,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Option<Turn>, PgError> {
        let client = self.client().await?;
        let turns = i64::try_from(per_host).unwrap_or(i64::MAX);
        let take = "WITH free AS (
                 SELECT host, turn FROM host_turns
                 WHERE host = $1 AND turn < $2 AND (until IS NULL OR until <= $3)
                 ORDER BY turn LIMIT 1
                 FOR UPDATE SKIP LOCKED)
             UPDATE host_turns AS t SET node = $4, until = $5, epoch = t.epoch + 1
             FROM free WHERE t.host = free.host AND t.turn = free.turn
             RETURNING t.turn, t.epoch";
        let args: [&(dyn tokio_postgres::types::ToSql + Sync); 5] =
            [&host, &turns, &to_millis(now), &self.node, &to_millis(until)];
        let mut row = client.query_opt(take, &args).await?;
        if row.is_none() {
            // A host seen for the first time (or a larger `per_host`) gets its turns made.
            let made = client
                .execute(
                    "INSERT INTO host_turns (host, turn) SELECT $1, t FROM generate_series(0::bigint, $2::bigint - 1) AS t
                     ON CONFLICT DO NOTHING",
                    &[&host, &turns],
                )
                .await?;
            if made > 0 {
                row = client.query_opt(take, &args).await?;
            }
        }
        Ok(row.map(|r| Turn {
            host: host.to_string(),
            turn: r.get(0),
            epoch: r.get(1),
        }))
    }

    /// Gives a turn back (unless it ran out and another node has it now).
    pub async fn give_back(&self, turn: &Turn) -> Result<(), PgError> {
        let client = self.client().await?;
        // Nodes waiting for a turn at the host hear it is free at once (see TURNS_CHANNEL).
        client
            .query(
                "WITH freed AS (
                     UPDATE host_turns SET node = NULL, until = NULL
                     WHERE host = $1 AND turn = $2 AND epoch = $3 AND node = $4
                     RETURNING host)
                 SELECT pg_notify($5, host) FROM freed",
                &[&turn.host, &turn.turn, &turn.epoch, &self.node, &TURNS_CHANNEL],
            )
            .await?;
        Ok(())
    }

    /// Holds every node's requests to `host` until `not_before` (a later hold wins).
    pub async fn delay_host(
        &self,
        host: &str,
        not_before: DateTime<Utc>,
        reason: &str,
    ) -> Result<(), PgError> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO hosts (host, not_before, reason) VALUES ($1, $2, $3)
                 ON CONFLICT (host) DO UPDATE SET not_before = GREATEST(hosts.not_before, excluded.not_before),
                     reason = CASE WHEN excluded.not_before >= hosts.not_before THEN excluded.reason ELSE hosts.reason END",
                &[&host, &to_millis(not_before), &reason],
            )
            .await?;
        Ok(())
    }

    /// The hosts held after `now`, with until when and why.
    pub async fn host_delays(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<(String, DateTime<Utc>, String)>, PgError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT host, not_before, reason FROM hosts WHERE not_before > $1 ORDER BY host",
                &[&to_millis(now)],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), from_millis(r.get(1)), r.get(2)))
            .collect())
    }

    /// This node is alive at `now` (started at `started`).
    pub async fn heartbeat(&self, started: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), PgError> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO nodes (name, started, last_seen, pid, version) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (name) DO UPDATE SET started = excluded.started, last_seen = excluded.last_seen,
                     pid = excluded.pid, version = excluded.version",
                &[
                    &self.node,
                    &to_millis(started),
                    &to_millis(now),
                    &i64::from(std::process::id()),
                    &env!("CARGO_PKG_VERSION"),
                ],
            )
            .await?;
        Ok(())
    }

    /// Every node that ever heartbeated, by name.
    pub async fn nodes(&self) -> Result<Vec<NodeInfo>, PgError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT name, started, last_seen, pid, version FROM nodes ORDER BY name",
                &[],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| NodeInfo {
                name: r.get(0),
                started: from_millis(r.get(1)),
                last_seen: from_millis(r.get(2)),
                pid: r.get(3),
                version: r.get(4),
            })
            .collect())
    }

    /// Who holds each leased feed (`feed id → node`): what `feeds` and /healthz are to show
    /// once nodes run on PostgreSQL.
    pub async fn holders(&self, now: DateTime<Utc>) -> Result<Vec<(i64, String)>, PgError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT id, lease_node FROM feeds WHERE lease_until > $1 AND lease_node IS NOT NULL ORDER BY id",
                &[&to_millis(now)],
            )
            .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// Takes the render lead if no live session holds it.
    pub async fn try_lead(&self) -> Result<Option<Leader>, PgError> {
        let client = self.client().await?;
        let row = client
            .query_one(
                "SELECT pg_try_advisory_lock($1), pg_backend_pid()",
                &[&RENDER_LOCK],
            )
            .await?;
        if !row.get::<_, bool>(0) {
            return Ok(None);
        }
        Ok(Some(Leader {
            pid: row.get(1),
            client: Some(client),
        }))
    }

    /// The outputs the leader publishes from now on, by path, as it announces them: what a
    /// serving node listens to so that it serves the new bytes at once.
    pub async fn listen_outputs(&self) -> Result<OutputChanges, PgError> {
        self.listen(&[OUTPUTS_CHANNEL]).await
    }

    /// Notifications on `channels` from now on (the payload; the channel is [`Notice`]'s
    /// `channel`), on a connection of their own.
    pub async fn listen(&self, channels: &[&'static str]) -> Result<OutputChanges, PgError> {
        use futures::StreamExt;
        let (client, mut connection) = self.config.connect(NoTls).await?;
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let wanted: Vec<&'static str> = channels.to_vec();
        // The connection is driven here, so its notifications come out (and the LISTEN below
        // gets its answer).
        let task = tokio::spawn(async move {
            let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
            while let Some(Ok(message)) = messages.next().await {
                if let tokio_postgres::AsyncMessage::Notification(n) = message
                    && let Some(channel) = wanted.iter().find(|c| **c == n.channel())
                    && tx
                        .send(Notice {
                            channel,
                            payload: n.payload().to_string(),
                        })
                        .await
                        .is_err()
                {
                    break;
                }
            }
        });
        for channel in channels {
            client.batch_execute(&format!("LISTEN {channel}")).await?;
        }
        Ok(OutputChanges {
            rx,
            _client: client,
            task,
        })
    }

    /// An output as the leader last published it: its bytes and ETag.
    pub async fn rendered(&self, path: &str) -> Result<Option<(Vec<u8>, String)>, PgError> {
        let client = self.client().await?;
        Ok(client
            .query_opt("SELECT bytes, etag FROM rendered WHERE path = $1", &[&path])
            .await?
            .map(|r| (r.get(0), r.get(1))))
    }
}

impl Leader {
    /// The PostgreSQL backend whose session holds the lead.
    pub fn backend_pid(&self) -> i32 {
        self.pid
    }

    /// Publishes an output's bytes for every node to serve, and announces it on
    /// [`OUTPUTS_CHANNEL`]. Through the lead's own session: if it was lost, this fails.
    pub async fn publish(
        &mut self,
        path: &str,
        bytes: &[u8],
        etag: &str,
        now: DateTime<Utc>,
    ) -> Result<(), PgError> {
        let Some(client) = self.client.as_mut() else {
            return Ok(());
        };
        let tx = client.transaction().await?;
        tx.execute(
            "INSERT INTO rendered (path, bytes, etag, rendered_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (path) DO UPDATE SET bytes = excluded.bytes, etag = excluded.etag,
                 rendered_at = excluded.rendered_at",
            &[&path, &bytes, &etag, &to_millis(now)],
        )
        .await?;
        tx.execute("SELECT pg_notify($1, $2)", &[&OUTPUTS_CHANNEL, &path])
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Gives the lead up now (a node stopping cleanly), so another node takes it at once.
    pub async fn step_down(mut self) -> Result<(), PgError> {
        if let Some(client) = self.client.take() {
            client
                .execute("SELECT pg_advisory_unlock($1)", &[&RENDER_LOCK])
                .await?;
        }
        Ok(())
    }
}

impl Drop for Leader {
    fn drop(&mut self) {
        // Not back to the pool: a pooled connection would keep the session, and the lock.
        if let Some(client) = self.client.take() {
            drop(deadpool_postgres::Object::take(client));
        }
    }
}

/// `user@host:port/db` from a connection config, never the password.
fn describe(config: &tokio_postgres::Config) -> String {
    crate::model::describe_pg_config(config)
}
