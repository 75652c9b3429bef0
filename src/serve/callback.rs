//! The WebSub callback (`/websub/TOKEN`, public side): hubs verify our intent here (GET) and
//! push content here (POST). A token this store did not make is refused by a hash, before
//! anything is read or looked up: callbacks for unknown subscriptions cost nothing. A valid
//! push goes to the daemon as a body (see [`crate::push`]); an invalid one is answered 2xx, as
//! the specification asks, and dropped and counted.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, Response, StatusCode, Uri, header};

use super::metrics::PushResult;
use super::{Server, plain};
use crate::push::{self, Answer, Callbacks, Verification};

/// Pushes one subscription may send in a burst, and then one per this many milliseconds: a
/// hub sends a push per update, and a feed updates a few times an hour.
const BURST: f64 = 10.0;
const REFILL_MS: f64 = 1000.0;
/// Pushes waiting for the daemon at most; beyond, hubs are asked to come back (they retry).
pub(crate) const WAITING: usize = 256;

/// A push taken: the body as the hub sent it, for the feed it names.
#[derive(Debug)]
pub(crate) struct Pushed {
    pub(crate) feed_id: i64,
    pub(crate) bytes: Vec<u8>,
    pub(crate) content_type: Option<String>,
    /// When it arrived (for the push-to-page latency).
    pub(crate) arrived: Instant,
}

/// What the server needs to answer callbacks: set when the daemon subscribes.
pub(crate) struct Door {
    pub(crate) callbacks: Callbacks,
    pub(crate) pushes: tokio::sync::mpsc::Sender<Pushed>,
    /// Told when a hub's verification changed a subscription (its renewal is due at a new time).
    pub(crate) verified: std::sync::Arc<tokio::sync::Notify>,
    /// Each subscription's token bucket: tokens left, when last filled.
    buckets: Mutex<HashMap<i64, (f64, Instant)>>,
}

impl Door {
    pub(crate) fn new(
        callbacks: Callbacks,
        pushes: tokio::sync::mpsc::Sender<Pushed>,
        verified: std::sync::Arc<tokio::sync::Notify>,
    ) -> Door {
        Door {
            callbacks,
            pushes,
            verified,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token of `feed_id`'s bucket, if it has one.
    fn admit(&self, feed_id: i64) -> bool {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        // Full buckets say nothing: forgotten, so the map holds only recent pushers.
        if buckets.len() > 10_000 {
            buckets.retain(|_, (_, at)| now.duration_since(*at).as_secs_f64() * 1000.0 < BURST * REFILL_MS);
        }
        let (tokens, at) = buckets.entry(feed_id).or_insert((BURST, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * 1000.0 / REFILL_MS).min(BURST);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// A push to `feed_id`'s subscription taken or dropped: in `/metrics`, and on the
/// subscription (for `feeds` and `/healthz`; a store that cannot say so loses only the count).
async fn counted(server: &Server, feed_id: i64, now: chrono::DateTime<chrono::Utc>, result: PushResult) {
    server.metrics().record_push(result);
    let taken = result == PushResult::Taken;
    if let Err(e) = server.inner.store.count_push(feed_id, now, taken).await {
        tracing::debug!(feed_id, error = %e, "cannot count a push");
    }
}

pub(super) async fn answer(
    server: &Server,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
) -> Response<Body> {
    let not_found = || plain(StatusCode::NOT_FOUND, "not found\n");
    let Some(door) = server.inner.door.get() else {
        return not_found();
    };
    let token = &uri.path()[push::CALLBACK_ROUTE.len()..];
    let Some((feed_id, nonce)) = door.callbacks.read(token) else {
        return not_found();
    };
    let store = &server.inner.store;
    let config = server.config();
    let now = chrono::Utc::now();
    match *method {
        Method::GET => {
            let v = Verification::parse(uri.query().unwrap_or_default());
            match push::verify(store, feed_id, &nonce, &v, &config, now).await {
                Ok(Answer::Confirm(challenge)) => {
                    tracing::debug!(feed_id, mode = %v.mode, "WebSub hub verified our intent");
                    door.verified.notify_one();
                    let mut r = Response::new(Body::from(challenge));
                    r.headers_mut()
                        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
                    r
                }
                Ok(Answer::Noted) => {
                    tracing::info!(
                        feed_id,
                        reason = v.reason.as_deref().unwrap_or(""),
                        "WebSub hub denied a subscription; the feed is polled on its schedule"
                    );
                    plain(StatusCode::OK, "noted\n")
                }
                Ok(Answer::Refuse) => not_found(),
                Err(e) => plain(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &format!("database unavailable: {e}\n"),
                ),
            }
        }
        Method::POST => {
            let refused = |status: StatusCode, text: &str| {
                server.metrics().record_push(PushResult::Refused);
                let mut r = plain(status, text);
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
                r
            };
            if !door.admit(feed_id) {
                return refused(StatusCode::TOO_MANY_REQUESTS, "too many pushes\n");
            }
            let limit = usize::try_from(config.poll.max_body).unwrap_or(usize::MAX);
            let declared = headers
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            let bytes = match declared {
                Some(len) if len > config.poll.max_body => None,
                _ => axum::body::to_bytes(body, limit).await.ok(),
            };
            let Some(bytes) = bytes else {
                counted(server, feed_id, now, PushResult::Dropped).await;
                return plain(StatusCode::PAYLOAD_TOO_LARGE, "larger than poll.max_body\n");
            };
            let sub = match store.subscription(feed_id).await {
                Ok(Some(sub)) if sub.nonce == nonce => sub,
                // Gone: the hub may stop sending (a subscription we no longer hold).
                Ok(_) => return refused(StatusCode::GONE, "no such subscription\n"),
                Err(e) => {
                    return refused(
                        StatusCode::SERVICE_UNAVAILABLE,
                        &format!("database unavailable: {e}\n"),
                    );
                }
            };
            let signature = headers.get("x-hub-signature").and_then(|v| v.to_str().ok());
            if let Err(e) = push::check_signature(signature, sub.secret.as_bytes(), &bytes) {
                tracing::debug!(feed_id, error = %e, "WebSub push dropped");
                counted(server, feed_id, now, PushResult::Dropped).await;
                return plain(StatusCode::ACCEPTED, "dropped\n");
            }
            let pushed = Pushed {
                feed_id,
                bytes: bytes.to_vec(),
                content_type: headers
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string),
                arrived: Instant::now(),
            };
            if door.pushes.try_send(pushed).is_err() {
                return refused(StatusCode::SERVICE_UNAVAILABLE, "busy\n");
            }
            counted(server, feed_id, now, PushResult::Taken).await;
            plain(StatusCode::ACCEPTED, "accepted\n")
        }
        _ => {
            let mut r = plain(StatusCode::METHOD_NOT_ALLOWED, "only GET and POST\n");
            r.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, POST"));
            r
        }
    }
}
