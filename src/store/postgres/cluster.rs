//! The cluster's coordination on PostgreSQL (see [`crate::store::Coordination`]): host turns
//! as rows taken with `SKIP LOCKED` and an epoch each, heartbeats as rows, the render lead as a
//! session-level advisory lock (held while the leader's connection lives, released by the
//! server however the node died), and notices as `LISTEN` on a connection of their own that
//! is made again when it is lost.

use std::time::Duration;

use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use futures::StreamExt;
use tokio_postgres::NoTls;

use super::{channel, error, pool_error};
use crate::store::{Coordination, Lead, Notice, Notices, StoreError, Turn};

/// The advisory lock key of the render lead.
const RENDER_LOCK: i64 = 0x7472_6962_0002;
/// The longest pause between tries to make the notices' connection again: a database back
/// from a restart is heard within this.
const RELISTEN_MAX: Duration = Duration::from_secs(5);

/// A node's coordination: the store's pool, and the settings for the listener's own
/// connection (notifications never reach pooled ones).
pub(crate) struct PgCoordination {
    pool: Pool,
    config: tokio_postgres::Config,
    node: String,
    describe: String,
}

impl PgCoordination {
    pub(super) fn new(
        pool: Pool,
        config: tokio_postgres::Config,
        node: &str,
        describe: &str,
    ) -> PgCoordination {
        PgCoordination {
            pool,
            config,
            node: node.to_string(),
            describe: describe.to_string(),
        }
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool.get().await.map_err(|e| pool_error(&self.describe, e))
    }

    fn error(&self, e: tokio_postgres::Error) -> StoreError {
        error(&self.describe, e)
    }
}

/// Parses a notification into what it says; `None` for a payload that does not parse.
fn notice(channel_name: &str, payload: &str) -> Option<Notice> {
    let millis = |s: &str| s.parse().ok().and_then(DateTime::<Utc>::from_timestamp_millis);
    Some(match channel_name {
        channel::DUE => Notice::Due(millis(payload)?),
        channel::TURNS => Notice::TurnFreed(payload.to_string()),
        channel::CHANGES => Notice::Changes {
            node: payload.to_string(),
        },
        channel::OUTPUTS => Notice::Output(payload.to_string()),
        channel::SUBSCRIPTIONS => Notice::Subscription(millis(payload)?),
        channel::LISTS => Notice::ListChanged(payload.to_string()),
        channel::HOSTS => {
            let (until, host) = payload.split_once(' ')?;
            Notice::HostDelayed {
                host: host.to_string(),
                until: millis(until)?,
            }
        }
        _ => return None,
    })
}

/// A connection listening on every channel, its notices sent to `tx`: the task that drives
/// it (it ends when the connection does, or `tx` is closed) and its client, which must live as
/// long as the task (dropping it closes the session).
async fn listen_once(
    config: &tokio_postgres::Config,
    tx: &tokio::sync::mpsc::Sender<Notice>,
) -> Result<(tokio::task::JoinHandle<()>, tokio_postgres::Client), tokio_postgres::Error> {
    let (client, mut connection) = config.connect(NoTls).await?;
    let forward = tx.clone();
    // The connection is driven here from the start, so its notifications come out (and the
    // LISTEN below gets its answer).
    let task = tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(Ok(message)) = messages.next().await {
            if let tokio_postgres::AsyncMessage::Notification(n) = message
                && let Some(notice) = notice(n.channel(), n.payload())
                && forward.send(notice).await.is_err()
            {
                break;
            }
        }
    });
    for name in [
        channel::DUE,
        channel::TURNS,
        channel::CHANGES,
        channel::OUTPUTS,
        channel::HOSTS,
        channel::SUBSCRIPTIONS,
        channel::LISTS,
    ] {
        if let Err(e) = client.batch_execute(&format!("LISTEN {name}")).await {
            task.abort();
            return Err(e);
        }
    }
    Ok((task, client))
}

#[async_trait::async_trait]
impl Coordination for PgCoordination {
    fn node(&self) -> &str {
        &self.node
    }

    async fn join(&self, started: DateTime<Utc>) -> Result<(), StoreError> {
        self.heartbeat(started, started).await?;
        // Turns this node held before a crash would keep their hosts waiting until they ran
        // out; they are this node's, so they are given back now.
        let client = self.client().await?;
        client
            .query(
                "WITH freed AS (
                     UPDATE host_turns SET node = NULL, until = NULL WHERE node = $1 RETURNING host)
                 SELECT pg_notify($2, host)::text FROM freed",
                &[&self.node, &channel::TURNS],
            )
            .await
            .map_err(|e| self.error(e))?;
        Ok(())
    }

    async fn heartbeat(&self, started: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(
                "INSERT INTO nodes (name, started, last_seen, pid, version) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (name) DO UPDATE SET started = excluded.started, last_seen = excluded.last_seen,
                     pid = excluded.pid, version = excluded.version",
            )
            .await
            .map_err(|e| self.error(e))?;
        client
            .execute(
                &statement,
                &[
                    &self.node,
                    &started,
                    &now,
                    &i64::from(std::process::id()),
                    &env!("CARGO_PKG_VERSION"),
                ],
            )
            .await
            .map_err(|e| self.error(e))?;
        Ok(())
    }

    async fn take_turn(
        &self,
        host: &str,
        per_host: usize,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Option<Turn>, StoreError> {
        let client = self.client().await?;
        let turns = i64::try_from(per_host).unwrap_or(i64::MAX);
        let take = client
            .prepare_cached(
                "WITH free AS (
                     SELECT host, turn FROM host_turns
                     WHERE host = $1 AND turn < $2 AND (until IS NULL OR until <= $3)
                     ORDER BY turn LIMIT 1
                     FOR UPDATE SKIP LOCKED)
                 UPDATE host_turns AS t SET node = $4, until = $5, epoch = t.epoch + 1
                 FROM free WHERE t.host = free.host AND t.turn = free.turn
                 RETURNING t.turn, t.epoch",
            )
            .await
            .map_err(|e| self.error(e))?;
        let args: [&(dyn tokio_postgres::types::ToSql + Sync); 5] = [&host, &turns, &now, &self.node, &until];
        let mut row = client.query_opt(&take, &args).await.map_err(|e| self.error(e))?;
        if row.is_none() {
            // A host seen for the first time (or a larger `per_host`) gets its turns made.
            let made = client
                .execute(
                    "INSERT INTO host_turns (host, turn) SELECT $1, t FROM generate_series(0::bigint, $2::bigint - 1) AS t
                     ON CONFLICT DO NOTHING",
                    &[&host, &turns],
                )
                .await
                .map_err(|e| self.error(e))?;
            if made > 0 {
                row = client.query_opt(&take, &args).await.map_err(|e| self.error(e))?;
            }
        }
        Ok(row.map(|r| Turn {
            host: host.to_string(),
            turn: r.get(0),
            epoch: r.get(1),
        }))
    }

    async fn give_back(&self, turn: &Turn) -> Result<(), StoreError> {
        let client = self.client().await?;
        // Nodes waiting for a turn at the host hear it is free at once.
        let statement = client
            .prepare_cached(
                "WITH freed AS (
                     UPDATE host_turns SET node = NULL, until = NULL
                     WHERE host = $1 AND turn = $2 AND epoch = $3 AND node = $4
                     RETURNING host)
                 SELECT pg_notify($5, host)::text FROM freed",
            )
            .await
            .map_err(|e| self.error(e))?;
        client
            .query(
                &statement,
                &[&turn.host, &turn.turn, &turn.epoch, &self.node, &channel::TURNS],
            )
            .await
            .map_err(|e| self.error(e))?;
        Ok(())
    }

    async fn try_lead(&self) -> Result<Option<Box<dyn Lead>>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&RENDER_LOCK])
            .await
            .map_err(|e| self.error(e))?;
        if !row.get::<_, bool>(0) {
            return Ok(None);
        }
        Ok(Some(Box::new(PgLead {
            client: Some(client),
            describe: self.describe.clone(),
        })))
    }

    async fn listen(&self) -> Result<Notices, StoreError> {
        let (tx, rx) = tokio::sync::mpsc::channel(1024);
        let first = listen_once(&self.config, &tx).await.map_err(|e| self.error(e))?;
        let (config, describe) = (self.config.clone(), self.describe.clone());
        let task = tokio::spawn(async move {
            let (mut current, mut _client) = first;
            loop {
                let _ = (&mut current).await;
                if tx.is_closed() {
                    return;
                }
                tracing::warn!(store = %describe, "lost the cluster's notices; listening again once PostgreSQL answers");
                let mut pause = Duration::from_millis(250);
                (current, _client) = loop {
                    tokio::time::sleep(pause).await;
                    match listen_once(&config, &tx).await {
                        Ok(listening) => break listening,
                        Err(e) => {
                            tracing::debug!(error = %e, "cannot listen yet");
                            pause = (pause * 2).min(RELISTEN_MAX);
                        }
                    }
                };
                tracing::info!(store = %describe, "hearing the cluster's notices again");
                if tx.send(Notice::Reconnected).await.is_err() {
                    return;
                }
            }
        });
        Ok(Notices::new(rx, task))
    }

    async fn rendered(&self, name: &str) -> Result<Option<(Vec<u8>, String)>, StoreError> {
        let client = self.client().await?;
        Ok(client
            .query_opt("SELECT bytes, etag FROM rendered WHERE path = $1", &[&name])
            .await
            .map_err(|e| self.error(e))?
            .map(|r| (r.get(0), r.get(1))))
    }
}

/// The render lead: a pooled connection taken out of the pool for as long as it is held (its
/// session holds the lock). Dropping it closes that connection, which releases the lock.
struct PgLead {
    client: Option<deadpool_postgres::Object>,
    describe: String,
}

#[async_trait::async_trait]
impl Lead for PgLead {
    fn is_alive(&self) -> bool {
        self.client.as_ref().is_some_and(|c| !c.is_closed())
    }

    async fn publish(
        &mut self,
        name: &str,
        bytes: &[u8],
        etag: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let Some(client) = self.client.as_mut() else {
            return Err(StoreError::Closed);
        };
        let describe = self.describe.clone();
        let err = |e| error(&describe, e);
        // Through the lead's own session: if it was lost, this fails.
        client
            .query(
                "WITH published AS (
                     INSERT INTO rendered (path, bytes, etag, rendered_at) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (path) DO UPDATE SET bytes = excluded.bytes, etag = excluded.etag,
                         rendered_at = excluded.rendered_at
                     RETURNING path)
                 SELECT pg_notify($5, path)::text FROM published",
                &[&name, &bytes, &etag, &now, &channel::OUTPUTS],
            )
            .await
            .map_err(err)?;
        Ok(())
    }

    async fn step_down(mut self: Box<Self>) -> Result<(), StoreError> {
        if let Some(client) = self.client.take() {
            client
                .execute("SELECT pg_advisory_unlock($1)", &[&RENDER_LOCK])
                .await
                .map_err(|e| error(&self.describe, e))?;
        }
        Ok(())
    }
}

impl Drop for PgLead {
    fn drop(&mut self) {
        // Not back to the pool: a pooled connection would keep the session, and the lock.
        if let Some(client) = self.client.take() {
            drop(deadpool_postgres::Object::take(client));
        }
    }
}
