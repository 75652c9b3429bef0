//! Which store a config names: the embedded SQLite file or a shared PostgreSQL server.

use std::path::PathBuf;

use chrono::{DateTime, Utc};

/// Which database the store is, as the config names it: which engine serves it is the
/// store's business (`store::Store::open`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// The embedded default: one file (SQLite), one daemon.
    File(PathBuf),
    /// The shared store of a cluster on a database server (PostgreSQL).
    Server {
        /// The connection string, its `${NAME}` references read.
        url: String,
        /// This node's name in claims and heartbeats.
        node: String,
    },
}

impl Backend {
    /// Whether there is a store to read yet: a PostgreSQL store is created by whoever
    /// connects first, an SQLite file by the first command that writes.
    pub fn exists(&self) -> bool {
        match self {
            Backend::File(path) => path.exists(),
            Backend::Server { .. } => true,
        }
    }
}

/// Whether `target` names a database server (a PostgreSQL connection string: `postgres://`,
/// `postgresql://`, or `host=… dbname=…`) rather than an SQLite file.
pub(crate) fn is_server_url(target: &str) -> bool {
    let t = target.trim_start();
    t.starts_with("postgres://") || t.starts_with("postgresql://") || t.starts_with("host=")
}

/// A node of a cluster, as the shared store last heard of it (`feeds`, /healthz).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ClusterNode {
    pub(crate) name: String,
    #[serde(serialize_with = "super::json_time::serialize")]
    pub(crate) started: DateTime<Utc>,
    #[serde(serialize_with = "super::json_time::serialize")]
    pub(crate) last_seen: DateTime<Utc>,
    pub(crate) pid: i64,
    pub(crate) version: String,
    /// Feeds it holds claims on now (polls queued or in flight).
    pub(crate) holds: usize,
    /// Heard from within a lease: a node silent for longer stopped (its claims run out).
    pub(crate) heartbeating: bool,
}
