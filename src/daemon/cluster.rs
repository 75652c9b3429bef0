//! A daemon's part in a cluster on a PostgreSQL store: its heartbeat, the renewal of its
//! claims, the render lead, and the notifications that tie the nodes together.
//!
//! The store does the claiming (see `Store::claim_due`): this module keeps what one node holds
//! alive. Every tick (a third of the lease) the node heartbeats, renews the claims of the
//! feeds it still has queued or in flight (a claim not renewed runs out, and another node
//! takes the feed), reads the host waits other nodes were told of, and, unless it leads, tries
//! to take the render lead. The leader renders when any node stored changes (it hears of them
//! as a [`Notice::Changes`]) and publishes each output's bytes in the store; every other node
//! hears of that ([`Notice::Output`]) and writes and serves the same bytes.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::config::Config;
use crate::output::OutputReport;
use crate::store::{Coordination, Lead, Notice, Notices, Store, StoreError};

/// One node's standing in the cluster.
pub(super) struct Cluster {
    coordination: Arc<dyn Coordination>,
    /// How long a claim lasts unless renewed.
    pub(crate) lease: Duration,
    started: DateTime<Utc>,
    /// Held while this node leads: its session holds the lead's advisory lock.
    leader: Option<Arc<tokio::sync::Mutex<Box<dyn Lead>>>>,
    notices: Notices,
    /// What this node published last, by output file name: the same bytes are not published
    /// twice.
    published: Arc<std::sync::Mutex<HashMap<String, String>>>,
}

/// What a tick found out.
pub(super) struct Tick {
    /// This node took the render lead in this tick.
    pub(crate) lead: Option<Box<dyn Lead>>,
    /// Claims that another node holds now (this one stalled past them).
    pub(crate) lost: Vec<i64>,
    /// Host waits in force anywhere in the cluster.
    pub(crate) delays: HashMap<String, DateTime<Utc>>,
}

impl Cluster {
    /// Joins the cluster of `store` (a store many nodes share) as `config`'s node: heartbeats
    /// at once, gives back what a crash of its earlier life left held, and listens for the
    /// others. `None` on a store of one.
    pub(super) async fn join(
        config: &Config,
        store: &Store,
        now: DateTime<Utc>,
    ) -> Result<Option<Cluster>, StoreError> {
        let Some(coordination) = store.coordination() else {
            return Ok(None);
        };
        coordination.join(now).await?;
        let notices = coordination.listen().await?;
        tracing::info!(node = %config.node.name, store = %store.describe(), "joined the cluster");
        Ok(Some(Cluster {
            coordination,
            lease: config.node.lease,
            started: now,
            leader: None,
            notices,
            published: Arc::default(),
        }))
    }

    /// How often the node heartbeats and renews its claims: three times per lease, so that
    /// one late tick does not lose them.
    pub(super) fn tick_every(&self) -> Duration {
        self.lease / 3
    }

    /// The cluster's coordination (turns, the lead, heartbeats).
    pub(super) fn coordination(&self) -> &Arc<dyn Coordination> {
        &self.coordination
    }

    pub(super) fn leads(&self) -> bool {
        self.leader.is_some()
    }

    /// The work of a tick, to run on a task of its own: heartbeat, the renewal of the claims on
    /// `claimed` (queued or being polled), the host waits, and a try at the lead when this
    /// node does not lead.
    pub(super) fn tick(
        &self,
        store: &Store,
        claimed: Vec<i64>,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Tick, StoreError>> + use<> {
        let (cluster, store, started, leads) = (
            self.coordination.clone(),
            store.clone(),
            self.started,
            self.leads(),
        );
        let until = now + chrono::Duration::from_std(self.lease).unwrap_or_default();
        async move {
            cluster.heartbeat(started, now).await?;
            let lost = store.renew_leases(claimed, until).await?;
            let delays = store.host_delays(now).await?;
            let lead = if leads { None } else { cluster.try_lead().await? };
            Ok(Tick { lead, lost, delays })
        }
    }

    /// Stops leading when the lead's session closed (PostgreSQL released the lock with it);
    /// whether it did. The next tick tries for the lead again, like any other node.
    pub(super) fn check_lead(&mut self) -> bool {
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
    pub(super) fn lead(&mut self, leader: Box<dyn Lead>) {
        tracing::info!("this node leads: it renders the outputs");
        self.published.lock().unwrap_or_else(|e| e.into_inner()).clear();
        self.leader = Some(Arc::new(tokio::sync::Mutex::new(leader)));
    }

    /// The next notification from the other nodes (pending forever once the listening
    /// connection is gone).
    pub(super) async fn notice(&mut self) -> Option<Notice> {
        self.notices.next().await
    }

    /// Publishes a rendered output for every node, unless its bytes are what was published
    /// last. A failed publish is forgotten, so the next render of the same bytes tries again;
    /// if the lead's session is gone, the next tick stops leading (see [`Cluster::check_lead`]).
    pub(super) fn publish(&mut self, report: &OutputReport, now: DateTime<Utc>) {
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
    pub(super) async fn step_down(&mut self) {
        if let Some(leader) = self.leader.take()
            && let Ok(leader) = Arc::try_unwrap(leader)
            && let Err(e) = leader.into_inner().step_down().await
        {
            tracing::debug!(error = %e, "cannot give the render lead up");
        }
    }

    /// Writes and reports the output the leader published as `name` (a following node): a
    /// task of its own, for a database read and a file write are not for the control loop.
    pub(super) fn follow(
        &self,
        config: &Config,
        name: &str,
    ) -> Option<impl Future<Output = Option<OutputReport>> + use<>> {
        let spec = config.outputs.iter().find(|o| o.file_name() == name)?;
        let (cluster, name, path) = (self.coordination.clone(), name.to_string(), spec.path.clone());
        Some(async move { follow(cluster, name, path).await })
    }
}

async fn follow(cluster: Arc<dyn Coordination>, name: String, path: PathBuf) -> Option<OutputReport> {
    let (bytes, _etag) = match cluster.rendered(&name).await {
        Ok(Some(rendered)) => rendered,
        Ok(None) => return None,
        Err(e) => {
            tracing::warn!(error = %e, output = %name, "cannot read a published output");
            return None;
        }
    };
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
        deliveries: 0,
        hook_error: None,
    })
}
