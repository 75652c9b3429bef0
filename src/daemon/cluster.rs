//! A daemon's part in a cluster on a PostgreSQL store: its heartbeat, the renewal of its
//! claims, the render lead, and the notifications that tie the nodes together.
//!
//! The store does the claiming (see `Store::claim_due`): this module keeps what one node holds
//! alive. Every tick (a third of the lease) the node heartbeats, renews the claims of the
//! feeds it still has queued or in flight (a claim not renewed runs out, and another node
//! takes the feed), reads the host waits other nodes were told of, and, unless it leads, tries
//! to take the render lead. The leader renders when any node stored changes (it hears them on
//! [`CHANGES_CHANNEL`]) and publishes each output's bytes in the store; every other node
//! hears of that on [`OUTPUTS_CHANNEL`] and writes and serves the same bytes.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::config::Config;
use crate::output::OutputReport;
use crate::store::postgres::{
    CHANGES_CHANNEL, DUE_CHANNEL, Leader, Notice, OUTPUTS_CHANNEL, OutputChanges, PgError, PgStore,
    TURNS_CHANNEL,
};
use crate::store::{StoreError, StoreHandle};

/// One node's standing in the cluster.
pub(super) struct Cluster {
    pg: PgStore,
    /// How long a claim lasts unless renewed.
    pub lease: Duration,
    started: DateTime<Utc>,
    /// Held while this node leads: its session holds the lead's advisory lock.
    leader: Option<Arc<tokio::sync::Mutex<Leader>>>,
    notices: OutputChanges,
    /// What this node published last, by output file name: the same bytes are not published
    /// twice.
    published: Arc<std::sync::Mutex<HashMap<String, String>>>,
}

/// What a tick found out.
pub(super) struct Tick {
    /// This node took the render lead in this tick.
    pub lead: Option<Leader>,
    /// Claims that another node holds now (this one stalled past them).
    pub lost: Vec<i64>,
    /// Host waits in force anywhere in the cluster.
    pub delays: HashMap<String, DateTime<Utc>>,
}

impl Cluster {
    /// Joins the cluster of `store` (a PostgreSQL store) as `config`'s node: heartbeats at once
    /// and listens for the others.
    pub async fn join(
        config: &Config,
        store: &StoreHandle,
        now: DateTime<Utc>,
    ) -> Result<Option<Cluster>, PgError> {
        let Some(pg) = store.shared().cloned() else {
            return Ok(None);
        };
        pg.heartbeat(now, now).await?;
        let notices = pg
            .listen(&[CHANGES_CHANNEL, DUE_CHANNEL, OUTPUTS_CHANNEL, TURNS_CHANNEL])
            .await?;
        tracing::info!(node = %config.node.name, store = %pg.target(), "joined the cluster");
        Ok(Some(Cluster {
            pg,
            lease: config.node.lease,
            started: now,
            leader: None,
            notices,
            published: Arc::default(),
        }))
    }

    /// How often the node heartbeats and renews its claims: three times per lease, so that
    /// one late tick does not lose them.
    pub fn tick_every(&self) -> Duration {
        self.lease / 3
    }

    /// The cluster's coordination (turns, the lead, heartbeats).
    pub fn pg(&self) -> &PgStore {
        &self.pg
    }

    pub fn leads(&self) -> bool {
        self.leader.is_some()
    }

    /// The work of a tick, to run on a task of its own: heartbeat, the renewal of the claims on
    /// `claimed` (queued or being polled), the host waits, and a try at the lead when this
    /// node does not lead.
    pub fn tick(
        &self,
        store: &StoreHandle,
        claimed: Vec<i64>,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Tick, StoreError>> + use<> {
        let (pg, store, started, leads) = (self.pg.clone(), store.clone(), self.started, self.leads());
        let until = now + chrono::Duration::from_std(self.lease).unwrap_or_default();
        async move {
            pg.heartbeat(started, now).await?;
            let lost = store.call(move |s| s.renew_leases(&claimed, until)).await?;
            let delays = store.call(move |s| s.host_delays(now)).await?;
            let lead = if leads { None } else { pg.try_lead().await? };
            Ok(Tick { lead, lost, delays })
        }
    }

    /// Stops leading when the lead's session closed (PostgreSQL released the lock with it);
    /// whether it did. The next tick tries for the lead again, like any other node.
    pub fn check_lead(&mut self) -> bool {
        let lost = self
            .leader
            .as_ref()
            .and_then(|l| l.try_lock().ok().map(|l| !l.is_alive()))
            .unwrap_or(false);
        if lost {
            tracing::warn!("the render lead's database session ended; this node stops rendering");
            self.leader = None;
        }
        lost
    }

    /// Takes the lead a tick won.
    pub fn lead(&mut self, leader: Leader) {
        tracing::info!("this node leads: it renders the outputs");
        self.published.lock().unwrap_or_else(|e| e.into_inner()).clear();
        self.leader = Some(Arc::new(tokio::sync::Mutex::new(leader)));
    }

    /// The next notification from the other nodes (pending forever once the listening
    /// connection is gone).
    pub async fn notice(&mut self) -> Option<Notice> {
        self.notices.notice().await
    }

    /// Publishes a rendered output for every node, unless its bytes are what was published
    /// last. A failed publish is forgotten, so the next render of the same bytes tries again;
    /// if the lead's session is gone, the next tick stops leading (see [`Cluster::check_lead`]).
    pub fn publish(&mut self, report: &OutputReport, now: DateTime<Utc>) {
        let (Some(leader), Some(name)) = (&self.leader, report.path.file_name()) else {
            return;
        };
        let name = name.to_string_lossy().into_owned();
        let etag = crate::serve::etag_of(&report.bytes);
        {
            let mut published = self.published.lock().unwrap_or_else(|e| e.into_inner());
            if published.get(&name) == Some(&etag) {
                return;
            }
            published.insert(name.clone(), etag.clone());
        }
        let (leader, bytes, published) = (leader.clone(), report.bytes.clone(), self.published.clone());
        tokio::spawn(async move {
            if let Err(e) = leader.lock().await.publish(&name, &bytes, &etag, now).await {
                tracing::warn!(error = %e, output = %name, "cannot publish an output to the cluster");
                let mut published = published.lock().unwrap_or_else(|e| e.into_inner());
                if published.get(&name) == Some(&etag) {
                    published.remove(&name);
                }
            }
        });
    }

    /// Gives the lead up (the daemon is stopping), so another node takes it at once.
    pub async fn step_down(&mut self) {
        if let Some(leader) = self.leader.take()
            && let Ok(leader) = Arc::try_unwrap(leader)
            && let Err(e) = leader.into_inner().step_down().await
        {
            tracing::debug!(error = %e, "cannot give the render lead up");
        }
    }

    /// Writes and reports the output the leader published as `name` (a following node).
    pub async fn follow(&self, config: &Config, name: &str) -> Option<OutputReport> {
        let spec = config.outputs.iter().find(|o| o.file_name() == name)?;
        let (bytes, _etag) = match self.pg.rendered(name).await {
            Ok(Some(rendered)) => rendered,
            Ok(None) => return None,
            Err(e) => {
                tracing::warn!(error = %e, output = name, "cannot read a published output");
                return None;
            }
        };
        let path: PathBuf = spec.path.clone();
        let bytes = Arc::new(bytes);
        let write = {
            let (path, bytes) = (path.clone(), bytes.clone());
            tokio::task::spawn_blocking(move || crate::output::write_if_changed(&path, &bytes)).await
        };
        let written = match write {
            Ok(Ok(written)) => written,
            Ok(Err(e)) => {
                tracing::error!(error = %e, output = %path.display(), "cannot write a published output");
                return None;
            }
            Err(_) => return None,
        };
        let modified = std::fs::metadata(&path)
            .and_then(|m| m.modified())
            .unwrap_or_else(|_| std::time::SystemTime::now());
        Some(OutputReport {
            path,
            entries: 0,
            written,
            bytes,
            modified,
            shown: Vec::new(),
            pending: false,
        })
    }
}
