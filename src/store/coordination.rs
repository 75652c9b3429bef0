//! The cluster's coordination: the small port that a store shared by many nodes offers beside
//! its data (only PostgreSQL implements it). Each due feed is fetched by one node per slot
//! whatever the number of nodes (that is the claims of [`super::Database`]); this port holds
//! the rest of what nodes agree on:
//!
//! - `per_host` as a set of turns per host, taken and given back like claims (a turn of a
//!   node that died runs out), so the limit holds for the cluster;
//! - heartbeats, so `feeds` and /healthz tell the live nodes from the stopped;
//! - the render lead, held by one node while its session lives;
//! - notices: what one node did that the others act on at once (a due time recorded, a turn
//!   given back, changes stored, an output published, a host that asked everyone to wait).
//!
//! Times are computed by the caller (the daemon's one clock) and passed in, never taken from
//! the database server's clock, so every node's decisions are on the same time line.

use chrono::{DateTime, Utc};

use super::StoreError;

/// One of a host's `per_host` turns, held by this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Turn {
    pub(crate) host: String,
    pub turn: i64,
    pub(crate) epoch: i64,
}

/// What another node did, heard as it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// A feed's poll was recorded and it is due next at this time: whichever node is free
    /// then claims it.
    Due(DateTime<Utc>),
    /// A turn at this host was given back.
    TurnFreed(String),
    /// A node stored changed entries (the leader renders after them).
    Changes {
        /// The node that stored them.
        node: String,
    },
    /// The leader published this output (by file name).
    Output(String),
    /// A host asked everyone to wait (429, or 503 with Retry-After) until then.
    HostDelayed {
        /// The host, as turns name it.
        host: String,
        /// Until when.
        until: DateTime<Utc>,
    },
    /// A WebSub subscription changed (a hub verified it on some node, say) and its next
    /// request is due then: the node that tends subscriptions looks again by that time.
    Subscription(DateTime<Utc>),
    /// A subscription list's members changed (its key): every node loads its feeds again.
    ListChanged(String),
    /// The notices' connection was lost and is back: what was announced meanwhile was
    /// missed, so the node looks again (due times, published outputs, host waits).
    Reconnected,
}

/// Notices from the other nodes, from the moment of [`Coordination::listen`] on. The
/// connection behind them is re-made when it is lost, for as long as this value lives.
pub struct Notices {
    rx: tokio::sync::mpsc::Receiver<Notice>,
    task: tokio::task::JoinHandle<()>,
}

impl Notices {
    /// Notices as `task` sends them into `rx`; the task ends with this value.
    pub(crate) fn new(rx: tokio::sync::mpsc::Receiver<Notice>, task: tokio::task::JoinHandle<()>) -> Notices {
        Notices { rx, task }
    }

    /// The next notice; `None` once the listener is gone for good.
    pub async fn next(&mut self) -> Option<Notice> {
        self.rx.recv().await
    }
}

impl Drop for Notices {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The render lead, held while this value lives (dropping it lets another node lead).
#[async_trait::async_trait]
pub trait Lead: Send + Sync {
    /// Whether the lead still stands: it is lost with the session that holds it (the
    /// database restarted, the network failed), and then another node may lead.
    fn is_alive(&self) -> bool;
    /// Publishes an output's bytes (by file name) for every node to serve, and announces
    /// them. Fails if the lead was lost.
    async fn publish(
        &mut self,
        name: &str,
        bytes: &[u8],
        etag: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Gives the lead up now (a node stopping cleanly), so another node takes it at once.
    async fn step_down(self: Box<Self>) -> Result<(), StoreError>;
}

/// What the nodes of a cluster agree on besides claims.
#[async_trait::async_trait]
pub trait Coordination: Send + Sync {
    /// This node's name.
    fn node(&self) -> &str;
    /// This node starts (started at `started`): it heartbeats, and gives back the host turns
    /// a crash of its earlier life left under its name.
    async fn join(&self, started: DateTime<Utc>) -> Result<(), StoreError>;
    /// This node is alive at `now`.
    async fn heartbeat(&self, started: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), StoreError>;
    /// Takes one of `host`'s `per_host` turns for the whole cluster until `until` (a turn
    /// whose holder's time ran out is free); `None` when all are taken.
    async fn take_turn(
        &self,
        host: &str,
        per_host: usize,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Option<Turn>, StoreError>;
    /// Gives a turn back (unless it ran out and another node has it now), announcing it.
    async fn give_back(&self, turn: &Turn) -> Result<(), StoreError>;
    /// Takes the render lead if no live session holds it.
    async fn try_lead(&self) -> Result<Option<Box<dyn Lead>>, StoreError>;
    /// Notices from now on.
    async fn listen(&self) -> Result<Notices, StoreError>;
    /// An output as the leader last published it: its bytes and ETag.
    async fn rendered(&self, name: &str) -> Result<Option<(Vec<u8>, String)>, StoreError>;
}
