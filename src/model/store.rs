//! Which store a config names: the embedded SQLite file or a shared PostgreSQL server.

use std::path::PathBuf;

use chrono::{DateTime, Utc};

/// Which database the store is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// The embedded default: one file, one daemon.
    Sqlite(PathBuf),
    /// The shared store of a cluster: `url` is the connection string (its `${NAME}`
    /// references read); `node` is this node's name in claims and heartbeats.
    Postgres { url: String, node: String },
}

impl Backend {
    /// Whether there is a store to read yet: a PostgreSQL store is created by whoever
    /// connects first, an SQLite file by the first command that writes.
    pub fn exists(&self) -> bool {
        match self {
            Backend::Sqlite(path) => path.exists(),
            Backend::Postgres { .. } => true,
        }
    }

    /// For messages: the file, or the server without its password.
    pub fn describe(&self) -> String {
        match self {
            Backend::Sqlite(path) => path.display().to_string(),
            Backend::Postgres { url, .. } => describe_postgres(url),
        }
    }
}

/// Whether `target` names a PostgreSQL database (`postgres://`, `postgresql://`, or a
/// `host=… dbname=…` connection string) rather than an SQLite file.
pub fn is_postgres(target: &str) -> bool {
    let t = target.trim_start();
    t.starts_with("postgres://") || t.starts_with("postgresql://") || t.starts_with("host=")
}

/// `user@host:port/db` from a PostgreSQL connection string, never the password.
pub fn describe_postgres(url: &str) -> String {
    match url.parse::<tokio_postgres::Config>() {
        Ok(config) => describe_pg_config(&config),
        Err(_) => "PostgreSQL (a connection string that does not parse)".into(),
    }
}

/// `user@host:port/db` from a connection config, never the password.
pub fn describe_pg_config(config: &tokio_postgres::Config) -> String {
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

/// A node of a cluster, as the shared store last heard of it (`feeds`, /healthz).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ClusterNode {
    pub name: String,
    pub started: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    pub pid: i64,
    pub version: String,
    /// Feeds it holds claims on now (polls queued or in flight).
    pub holds: usize,
    /// Heard from within a lease: a node silent for longer stopped (its claims run out).
    pub heartbeating: bool,
}
