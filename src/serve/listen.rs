//! The server's listeners: bound at start (a port taken is the daemon's error at start, not a
//! log line later), each answered on its own task, and stopped with a grace for requests in
//! flight.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{Role, Server};
use crate::config::Config;
use crate::store::Store;

/// A listener that could not be bound.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr} ({key}): {source}")]
pub struct ListenError {
    addr: SocketAddr,
    /// The config key that named the address.
    key: &'static str,
    #[source]
    source: std::io::Error,
}

/// The server, answering on its listeners until [`Listening::stop`].
pub(crate) struct Listening {
    pub(crate) server: Server,
    /// Where outputs are served (the address bound: it differs from the configured one for
    /// port 0).
    pub(crate) public: SocketAddr,
    /// Where `/healthz` and `/metrics` are served, when `serve.admin_listen` puts them apart.
    pub(crate) admin: Option<SocketAddr>,
    stop: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl Listening {
    /// Binds `serve.listen` (and `serve.admin_listen`) and answers there; `None` when the
    /// config has no `[serve]`.
    pub(crate) async fn start(config: Arc<Config>, store: Store) -> Result<Option<Listening>, ListenError> {
        let Some(serve) = config.serve.clone() else {
            return Ok(None);
        };
        let bind = |addr: SocketAddr, key: &'static str| async move {
            tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|source| ListenError { addr, key, source })
        };
        let listeners = match serve.admin_listen {
            Some(admin) => vec![
                (bind(serve.listen, "serve.listen").await?, Role::Public),
                (bind(admin, "serve.admin_listen").await?, Role::Admin),
            ],
            None => vec![(bind(serve.listen, "serve.listen").await?, Role::Both)],
        };
        let server = Server::new(config, store);
        let stop = CancellationToken::new();
        let (mut public, mut admin) = (serve.listen, None);
        let mut tasks = Vec::new();
        for (listener, role) in listeners {
            let bound = listener.local_addr().unwrap_or(serve.listen);
            match role {
                Role::Admin => {
                    tracing::info!(listen = %bound, "serving /healthz and /metrics");
                    admin = Some(bound);
                }
                Role::Public | Role::Both => {
                    tracing::info!(listen = %bound, "serving outputs");
                    public = bound;
                }
            }
            let (server, stop) = (server.clone(), stop.clone());
            tasks.push(tokio::spawn(async move {
                if let Err(e) = server.run(listener, role, stop).await {
                    tracing::error!(error = %e, "HTTP server failed");
                }
            }));
        }
        Ok(Some(Listening {
            server,
            public,
            admin,
            stop,
            tasks,
        }))
    }

    /// Stops answering: requests in flight get `grace`; idle keep-alive connections do not
    /// hold the stop up.
    pub(crate) async fn stop(self, grace: Duration) {
        self.stop.cancel();
        for mut task in self.tasks {
            if tokio::time::timeout(grace, &mut task).await.is_err() {
                task.abort();
            }
        }
    }
}
