//! Which store a config names: the embedded SQLite file or a shared PostgreSQL server.

use std::path::PathBuf;

use chrono::{DateTime, Utc};

/// Which database the store is, as the config names it: which engine serves it is the
/// store's business (`store::Store::open`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// The embedded default: one file (SQLite), one daemon.
    File(PathBuf),
    /// The shared store of a cluster on a database server (PostgreSQL): `url` is the
    /// connection string (its `${NAME}` references read); `node` is this node's name in
    /// claims and heartbeats.
    Server { url: String, node: String },
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
pub fn is_server_url(target: &str) -> bool {
    let t = target.trim_start();
    t.starts_with("postgres://") || t.starts_with("postgresql://") || t.starts_with("host=")
}

/// A node of a cluster, as the shared store last heard of it (`feeds`, /healthz).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ClusterNode {
    pub name: String,
    #[serde(serialize_with = "super::json_time::serialize")]
    pub started: DateTime<Utc>,
    #[serde(serialize_with = "super::json_time::serialize")]
    pub last_seen: DateTime<Utc>,
    pub pid: i64,
    pub version: String,
    /// Feeds it holds claims on now (polls queued or in flight).
    pub holds: usize,
    /// Heard from within a lease: a node silent for longer stopped (its claims run out).
    pub heartbeating: bool,
}
