//! The shared store of a cluster: PostgreSQL (tokio-postgres, pooled by deadpool-postgres).
//! The store's data (feeds, entries, claims and their fencing, host delays) goes through the
//! one SQL both backends share (`Store`, see `store::sql`); this module holds the schema, its
//! migrations, and what only a cluster needs, so that each due feed is fetched by one node per
//! slot whatever the number of nodes, and a node that dies loses what it held:
//!
//! - `per_host` is a set of turns per host in the database, taken and given back like
//!   claims (a turn of a node that died runs out), so it holds for the cluster; a turn given
//!   back is announced on [`TURNS_CHANNEL`].
//! - Nodes heartbeat, so `feeds` and /healthz can tell the live ones from the stopped.
//! - The render lead is a session-level advisory lock: held while the leader's connection
//!   lives, released by PostgreSQL when that session ends, however the node died.
//!
//! Times are computed by the caller (the daemon's one clock) and passed in, never taken from
//! the database server's clock, so that every node's decisions are on the same time line as
//! its schedule.

pub mod copy;
mod schema;
#[cfg(test)]
pub(crate) mod tests;

use chrono::{DateTime, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::NoTls;

use super::to_millis;

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

/// One of a host's `per_host` turns, held by this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Turn {
    pub host: String,
    pub turn: i64,
    pub epoch: i64,
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
        let target = crate::model::describe_pg_config(&config);
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
    /// Whether the session that holds the lead is still open: when it closed (the database
    /// restarted, the network failed) PostgreSQL let the lock go, and another node may lead.
    pub fn is_alive(&self) -> bool {
        self.client.as_ref().is_some_and(|c| !c.is_closed())
    }

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
