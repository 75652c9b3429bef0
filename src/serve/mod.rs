//! Owns the built-in HTTP server of `tributary run`: every configured output at `/` + its file
//! name (an `index.html` output is also `/`), feeds' icons at `/icons/`, WebSub callbacks at
//! `/websub/` (see `callback`), `/healthz` and `/metrics`; and WebSub pings.
//!
//! Outputs are served from memory, replaced whole after each render, with a strong ETag (a
//! hash of the bytes), Last-Modified (when the bytes last changed), 304 on If-None-Match /
//! If-Modified-Since, gzip when the client accepts it, and HEAD. Nothing but the configured
//! routes is reachable: paths are looked up in a table, never joined to a directory; an icon
//! is looked up in the store by its hash.

mod callback;
mod conn;
mod listen;
mod metrics;
mod reach;

use std::collections::HashMap;
use std::io::Write as _;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, Response, StatusCode, Uri, header};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

pub(crate) use callback::{Door, Pushed, WAITING as PUSHES_WAITING};
pub(crate) use listen::ListenError;
pub(crate) use listen::Listening;
pub(crate) use metrics::{FetchOutcome, Metrics, PolledFeed};

use crate::config::Config;
use crate::model::{OutputFormat, display_url};
use crate::output::{OutputError, OutputReport};
use crate::store::Store;

/// Longest request path answered; anything longer is refused before it is looked at.
const MAX_PATH: usize = 512;
/// Most header bytes a request may carry; feed readers send well under 2 KiB.
const MAX_HEADER_BYTES: usize = 16 * 1024;

/// Served HTML may show feed content; this policy forbids scripts, plugins, frames and forms
/// whatever that content holds (the content is sanitized too: this is the second wall).
const HTML_CSP: &str = "default-src 'none'; img-src * data:; media-src *; style-src 'unsafe-inline'; \
                        base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// What a listener serves: the outputs (the public side), health and metrics (the operator's
/// side, `admin_listen`), or both when the two addresses are one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Public,
    Admin,
    Both,
}

/// One output as served.
struct Served {
    bytes: Arc<Vec<u8>>,
    gzip: Vec<u8>,
    /// The hex hash of `bytes`; the ETag of each variant is derived from it.
    hash: String,
    modified: SystemTime,
    format: OutputFormat,
}

/// The server's shared state: outputs, config, store (for health) and counters.
#[derive(Clone)]
pub(crate) struct Server {
    inner: Arc<Inner>,
}

struct Inner {
    routes: RwLock<HashMap<String, Arc<Served>>>,
    config: RwLock<Arc<Config>>,
    store: Store,
    metrics: Metrics,
    readers: reach::Readers,
    /// WebSub callbacks, once the daemon subscribes.
    door: std::sync::OnceLock<callback::Door>,
}

/// An output's entity tag: a hash of its bytes, so every node serving the same bytes sends
/// the same tag.
pub(crate) fn etag_of(bytes: &[u8]) -> String {
    hex::encode(&Sha256::digest(bytes)[..16])
}

impl Server {
    pub(crate) fn new(config: Arc<Config>, store: Store) -> Server {
        Server {
            inner: Arc::new(Inner {
                routes: RwLock::new(HashMap::new()),
                config: RwLock::new(config),
                store,
                metrics: Metrics::default(),
                readers: reach::Readers::default(),
                door: std::sync::OnceLock::new(),
            }),
        }
    }

    pub(crate) fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Answers WebSub callbacks from now on (see `callback`).
    pub(crate) fn open_door(&self, door: Door) {
        let _ = self.inner.door.set(door);
    }

    /// After a reload: routes follow the new outputs at the next [`Server::publish`].
    pub(crate) fn set_config(&self, config: Arc<Config>) {
        *self.inner.config.write().unwrap_or_else(|e| e.into_inner()) = config;
    }

    /// Serves what the last render produced. Outputs that failed to render keep their
    /// previous bytes; outputs no longer configured disappear.
    pub(crate) fn publish(&self, reports: &[Result<OutputReport, OutputError>]) {
        let config = self.config();
        let mut routes = self.inner.routes.write().unwrap_or_else(|e| e.into_inner());
        let mut next: HashMap<String, Arc<Served>> = HashMap::new();
        for spec in config.outputs.iter().filter(|o| o.file) {
            let route = format!("/{}", spec.file_name());
            let report = reports
                .iter()
                .flatten()
                .find(|r| r.path == spec.path && !r.pending);
            let served = match report {
                Some(r) => {
                    let hash = etag_of(&r.bytes);
                    match routes.get(&route) {
                        Some(old) if old.hash == hash => old.clone(),
                        _ => {
                            if r.written {
                                self.inner.metrics.output_written();
                            }
                            Arc::new(Served {
                                gzip: gzip(&r.bytes),
                                bytes: r.bytes.clone(),
                                hash,
                                modified: r.modified,
                                format: spec.format,
                            })
                        }
                    }
                }
                None => match routes.get(&route) {
                    Some(old) => old.clone(),
                    None => continue,
                },
            };
            if spec.file_name() == "index.html" {
                next.insert("/".to_string(), served.clone());
            }
            next.insert(route, served);
        }
        *routes = next;
    }

    /// The output served at `path`, by its file name; `None` for anything else.
    fn output_at(&self, path: &str) -> Option<String> {
        let name = match path {
            "/" => "index.html",
            _ => path.strip_prefix('/')?,
        };
        self.config()
            .outputs
            .iter()
            .any(|o| o.file && o.file_name() == name)
            .then(|| name.to_string())
    }

    /// Writes the readers seen since the last time to the store.
    pub(crate) async fn flush_readers(&self) {
        if let Err(e) = self
            .inner
            .readers
            .flush(&self.inner.store, chrono::Utc::now())
            .await
        {
            tracing::debug!(error = %e, "cannot record readers");
        }
    }

    fn config(&self) -> Arc<Config> {
        self.inner
            .config
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Answers on `listener` until `shutdown` is cancelled, within the configured
    /// connection limits (see `conn`), with what `role` serves.
    pub(crate) async fn run(
        self,
        listener: tokio::net::TcpListener,
        role: Role,
        shutdown: CancellationToken,
    ) -> std::io::Result<()> {
        let config = self.config();
        let limits = match &config.serve {
            Some(serve) => conn::Limits {
                header_timeout: serve.header_timeout,
                idle_timeout: serve.idle_timeout,
                max_connections: serve.max_connections,
            },
            None => conn::Limits {
                header_timeout: crate::config::DEFAULT_HEADER_TIMEOUT,
                idle_timeout: crate::config::DEFAULT_IDLE_TIMEOUT,
                max_connections: crate::config::DEFAULT_MAX_CONNECTIONS,
            },
        };
        conn::raise_descriptor_limit();
        // Every fetch may hold a connection and a file: those descriptors are kept free.
        let limits = limits.within_descriptors(2 * config.poll.concurrency);
        tracing::debug!(max_connections = limits.max_connections, "connection limits");
        let app = axum::Router::new().fallback(handle).with_state((self, role));
        conn::serve(listener, app, limits, shutdown).await
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(bytes.len() / 4),
        flate2::Compression::default(),
    );
    // Writing into memory cannot fail.
    let _ = enc.write_all(bytes);
    enc.finish().unwrap_or_default()
}

/// Every answer, whatever it is (an output, the page, a 404, `/healthz`, `/metrics`), says
/// `nosniff`: a browser takes each for the type it is served as, never for HTML or a script
/// it might look like. Nothing is decided from the request's `Host`, `X-Forwarded-For` or
/// `Forwarded`: absolute URLs come from `serve.base_url`, and which listener a request came
/// to is what separates the public from the admin side.
async fn handle(
    State((server, role)): State<(Server, Role)>,
    peer: Option<axum::Extension<conn::Peer>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response<Body> {
    let public = matches!(role, Role::Public | Role::Both);
    let mut response = if public && uri.path().starts_with(crate::push::CALLBACK_ROUTE) {
        callback::answer(&server, &method, &uri, &headers, body).await
    } else {
        answer(&server, role, &method, &uri, &headers).await
    };
    // An output answered (whole or 304): a reader, counted (see `reach`).
    if matches!(response.status(), StatusCode::OK | StatusCode::NOT_MODIFIED)
        && let Some(output) = server.output_at(uri.path())
    {
        let agent = headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let address = peer.map(|p| p.0.0.ip());
        let now = chrono::Utc::now();
        server
            .inner
            .readers
            .saw(&server.inner.store, &output, address, agent, now)
            .await;
    }
    response.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

async fn answer(
    server: &Server,
    role: Role,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Response<Body> {
    if method != Method::GET && method != Method::HEAD {
        let mut r = plain(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n");
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    let path = uri.path();
    if path.len() > MAX_PATH {
        return plain(StatusCode::URI_TOO_LONG, "path too long\n");
    }
    let header_bytes: usize = headers.iter().map(|(n, v)| n.as_str().len() + v.len()).sum();
    if header_bytes > MAX_HEADER_BYTES {
        return plain(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "request headers too large\n",
        );
    }
    let admin = matches!(role, Role::Admin | Role::Both);
    let public = matches!(role, Role::Public | Role::Both);
    match path {
        "/healthz" if admin => {
            let strict = uri
                .query()
                .is_some_and(|q| q.split('&').any(|p| p == "strict" || p.starts_with("strict=")));
            health(server, strict).await
        }
        "/metrics" if admin => {
            // The feed gauges come from the store, like /healthz.
            if let Ok((feeds, _)) = feed_health(server).await {
                let failing = feeds.iter().filter(|f| !f.ok).count();
                server.inner.metrics.set_feeds(feeds.len(), failing);
            }
            server.flush_readers().await;
            let readers = server
                .inner
                .store
                .reader_counts(chrono::Utc::now())
                .await
                .unwrap_or_default();
            let text = server.inner.metrics.render(readers);
            let mut r = Response::new(Body::from(text));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(metrics::CONTENT_TYPE),
            );
            r
        }
        _ if !public => plain(
            StatusCode::NOT_FOUND,
            "not found (outputs are served on serve.listen)\n",
        ),
        _ if path.starts_with(ICONS_ROUTE) => icon(server, &path[ICONS_ROUTE.len()..], headers).await,
        _ => {
            let served = server
                .inner
                .routes
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .get(path)
                .cloned();
            match served {
                Some(s) => output(&s, headers),
                None => plain(StatusCode::NOT_FOUND, "not found\n"),
            }
        }
    }
}

/// Where feeds' icons are served, as outputs name them (`icons/FILE` beside each output).
const ICONS_ROUTE: &str = "/icons/";

/// A feed's icon, from the store: `HASH.EXT`, named by its bytes, so it never changes and
/// caches may keep it for good. Only a name of that shape is looked up.
async fn icon(server: &Server, name: &str, request: &HeaderMap) -> Response<Body> {
    let not_found = || plain(StatusCode::NOT_FOUND, "not found\n");
    let Some((hash, _)) = name.split_once('.') else {
        return not_found();
    };
    if !crate::content::icon::is_hash(hash) {
        return not_found();
    }
    let (media_type, bytes) = match server.inner.store.icon_bytes(hash.to_string()).await {
        Ok(Some(found)) => found,
        Ok(None) => return not_found(),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read an icon from the store");
            return plain(StatusCode::SERVICE_UNAVAILABLE, "the store is unavailable\n");
        }
    };
    let image = crate::model::IconImage {
        hash: hash.to_string(),
        media_type,
    };
    if image.file_name() != name {
        return not_found();
    }
    let etag = format!("\"{hash}\"");
    let builder = Response::builder()
        .header(header::ETAG, &etag)
        .header(header::CACHE_CONTROL, "public, max-age=31536000, immutable")
        // An image is never a document to run: nothing it might hold is allowed to.
        .header(header::CONTENT_SECURITY_POLICY, "default-src 'none'");
    let matches = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| {
            tags.split(',')
                .any(|t| t.trim() == "*" || t.trim().trim_start_matches("W/") == etag)
        });
    if matches {
        return builder
            .status(StatusCode::NOT_MODIFIED)
            .body(Body::empty())
            .unwrap_or_default();
    }
    builder
        .header(header::CONTENT_TYPE, image.media_type)
        .body(Body::from(bytes))
        .unwrap_or_default()
}

fn output(served: &Served, request: &HeaderMap) -> Response<Body> {
    let use_gzip = accepts_gzip(request);
    let etag = if use_gzip {
        format!("\"{}-gz\"", served.hash)
    } else {
        format!("\"{}\"", served.hash)
    };
    let modified_secs = served
        .modified
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let last_modified = httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(modified_secs));
    // RFC 9110 §13.1.3: If-Modified-Since only counts when If-None-Match is absent.
    let not_modified = match request.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) {
        Some(tags) => tags
            .split(',')
            .map(str::trim)
            .any(|t| t == "*" || t.trim_start_matches("W/") == etag),
        None => request
            .get(header::IF_MODIFIED_SINCE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| httpdate::parse_http_date(v).ok())
            .and_then(|since| since.duration_since(UNIX_EPOCH).ok())
            .is_some_and(|since| since.as_secs() >= modified_secs),
    };
    let mut builder = Response::builder()
        .header(header::ETAG, &etag)
        .header(header::LAST_MODIFIED, &last_modified)
        .header(header::VARY, "Accept-Encoding")
        .header(header::CACHE_CONTROL, "public, max-age=60");
    if served.format == OutputFormat::Html {
        builder = builder.header(header::CONTENT_SECURITY_POLICY, HTML_CSP);
    }
    if not_modified {
        return builder
            .status(StatusCode::NOT_MODIFIED)
            .body(Body::empty())
            .unwrap_or_default();
    }
    builder = builder.header(header::CONTENT_TYPE, served.format.content_type());
    let body = if use_gzip {
        builder = builder.header(header::CONTENT_ENCODING, "gzip");
        Body::from(served.gzip.clone())
    } else {
        Body::from(served.bytes.as_ref().clone())
    };
    builder.body(body).unwrap_or_default()
}

/// Whether the client takes gzip (and did not refuse it with q=0).
fn accepts_gzip(request: &HeaderMap) -> bool {
    request
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            let name = parts.next().unwrap_or_default();
            let refused = parts.any(|p| p.replace(' ', "") == "q=0" || p.replace(' ', "") == "q=0.0");
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
}

#[derive(Serialize)]
struct Health {
    status: &'static str,
    feeds: Vec<FeedHealth>,
    /// Outputs whose last render could not be written (retried until it is).
    outputs_failing: Vec<crate::model::OutputState>,
    /// Webhooks with deliveries waiting or given up.
    webhooks: Vec<crate::model::WebhookState>,
    /// Feeds whose WebSub hub was asked to push them, and how each subscription stands.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    websub: Vec<PushHealth>,
    /// In a cluster, every node the store heard of, heartbeating or stopped.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    nodes: Vec<crate::model::ClusterNode>,
}

#[derive(Serialize)]
struct FeedHealth {
    url: String,
    title: Option<String>,
    ok: bool,
    last_success: Option<String>,
    last_error: Option<String>,
    consecutive_failures: u32,
    failing_since: Option<String>,
    /// The kind of the last failure, while failing (timeout, client_error, parse, …).
    failure_kind: Option<crate::model::FailureKind>,
    /// Failing for longer than `poll.give_up_after`.
    abandoned: bool,
    /// When the feed is polled next.
    next_poll: Option<String>,
    /// In a cluster, the node polling it now.
    #[serde(skip_serializing_if = "Option::is_none")]
    held_by: Option<String>,
}

#[derive(Serialize)]
struct PushHealth {
    url: String,
    hub: String,
    /// pending, active, denied, failed or unsubscribing.
    state: crate::model::SubscriptionState,
    /// While active, when the hub's lease ends (renewed before).
    active_until: Option<String>,
    last_push: Option<String>,
    pushes: u64,
    /// Pushes dropped: a bad signature, too large.
    dropped: u64,
    error: Option<String>,
}

/// The subscriptions of the configured feeds, by the feeds' URLs as shown.
async fn push_health(server: &Server) -> Result<Vec<PushHealth>, crate::store::StoreError> {
    let store = &server.inner.store;
    let subs = store.subscriptions().await?;
    if subs.is_empty() {
        return Ok(Vec::new());
    }
    let config = server.config();
    let ids: Vec<i64> = subs.iter().map(|s| s.feed_id).collect();
    let states = store.feeds_by_id(ids).await?;
    Ok(subs
        .into_iter()
        .filter_map(|sub| {
            let state = states.get(&sub.feed_id)?;
            let spec = config.feeds.get(*config.feed_positions.get(&state.url)?)?;
            Some(PushHealth {
                url: display_url(&spec.url),
                active_until: sub.pushed_until().map(crate::output::rfc3339),
                last_push: sub.last_push.map(crate::output::rfc3339),
                hub: sub.hub,
                state: sub.state,
                pushes: sub.pushes,
                dropped: sub.rejected,
                error: sub.error,
            })
        })
        .collect())
}

/// `/healthz`: 200 with the JSON; with `?strict`, 503 when degraded (for probes that read
/// only the status).
async fn health(server: &Server, strict: bool) -> Response<Body> {
    let (feeds, nodes) = match feed_health(server).await {
        Ok(health) => health,
        Err(e) => {
            return plain(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("database unavailable: {e}\n"),
            );
        }
    };
    let failing = feeds.iter().filter(|f| !f.ok).count();
    let outputs_failing = output_health(server).await.unwrap_or_default();
    let webhooks = server.inner.store.webhook_states().await.unwrap_or_default();
    // A webhook is unwell when it gave a delivery up, or one has waited longer than an hour.
    let hour_ago = chrono::Utc::now() - chrono::Duration::hours(1);
    let webhooks_failing = webhooks
        .iter()
        .any(|w| w.failed > 0 || w.oldest.is_some_and(|t| t < hour_ago));
    let health = Health {
        status: if failing == 0 && outputs_failing.is_empty() && !webhooks_failing {
            "ok"
        } else {
            "degraded"
        },
        feeds,
        outputs_failing,
        webhooks,
        websub: push_health(server).await.unwrap_or_default(),
        nodes,
    };
    let degraded = health.status != "ok";
    let mut r = Response::new(Body::from(serde_json::to_vec_pretty(&health).unwrap_or_default()));
    if strict && degraded {
        *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    }
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// The configured outputs whose last render failed, from the store.
async fn output_health(server: &Server) -> Result<Vec<crate::model::OutputState>, crate::store::StoreError> {
    let config = server.config();
    let paths: std::collections::HashSet<String> = config
        .outputs
        .iter()
        .map(|o| o.path.display().to_string())
        .collect();
    let outputs = server.inner.store.outputs().await?;
    Ok(outputs
        .into_iter()
        .filter(|o| o.last_error.is_some() && paths.contains(&o.path))
        .collect())
}

/// Every configured feed's health, from the store. Never shows credentials.
async fn feed_health(
    server: &Server,
) -> Result<(Vec<FeedHealth>, Vec<crate::model::ClusterNode>), crate::store::StoreError> {
    let config = server.config();
    let urls: Arc<[String]> = config.feeds.iter().map(|f| f.key.clone()).collect();
    let (now, lease) = (chrono::Utc::now(), config.node.lease);
    let store = &server.inner.store;
    let (states, (nodes, holders)) = (store.feeds_by_url(urls).await?, store.cluster(now, lease).await?);
    let feeds = config
        .feeds
        .iter()
        .map(|spec| {
            let state = states.get(&spec.key);
            let failing = state.is_some_and(|s| s.consecutive_failures > 0);
            FeedHealth {
                url: display_url(&spec.url),
                title: spec.title.clone().or_else(|| state.and_then(|s| s.title.clone())),
                // A feed not polled yet is not failing.
                ok: state.is_none_or(|s| s.consecutive_failures == 0),
                last_success: state.and_then(|s| s.last_success).map(crate::output::rfc3339),
                last_error: state.and_then(|s| s.last_error.clone()),
                consecutive_failures: state.map_or(0, |s| s.consecutive_failures),
                failing_since: state.and_then(|s| s.failing_since).map(crate::output::rfc3339),
                failure_kind: state.and_then(|s| s.failure_kind).filter(|_| failing),
                abandoned: failing && state.is_some_and(|s| s.abandoned_at.is_some()),
                next_poll: state.and_then(|s| s.next_due).map(crate::output::rfc3339),
                held_by: state.and_then(|s| holders.get(&s.id).cloned()),
            }
        })
        .collect();
    Ok((feeds, nodes))
}

fn plain(status: StatusCode, text: &str) -> Response<Body> {
    let mut r = Response::new(Body::from(text.to_string()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

#[cfg(test)]
mod tests;
