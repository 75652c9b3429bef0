//! Webhooks (`[[output]] webhook`): every entry that becomes newly visible in an output is
//! POSTed once to each of its webhooks, as JSON Feed 1.1 items in the output's envelope (its
//! title and URL), at most `max_items` a request, signed as the Standard Webhooks
//! specification says so that receivers can check it with its libraries.
//!
//! The store is the outbox: a render writes the deliveries together with the entries it
//! announces ([`announce`]), and [`deliver_due`] sends what is due, removing what a receiver
//! took. A receiver that is down, slow or answers 408 / 429 / 5xx is tried again after 5 s,
//! then after twice as long each time (at most an hour apart), until the webhook's
//! `retry_for` has passed since the delivery was made; any other answer is a permanent
//! refusal. Claims keep a delivery to one sender at a time (one node of a cluster), and a
//! sender that dies leaves it to be tried again: at-least-once, the `webhook-id` the same on
//! every try.

use base64::Engine as _;
use chrono::{DateTime, TimeDelta, Utc};
use futures::StreamExt;
use hmac::{KeyInit, Mac};
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use sha2::{Digest, Sha256};

use super::{Context, OutputEntry, Selection, jsonfeed};
use crate::config::Config;
use crate::fetch::{FetchError, Fetcher};
use crate::model::{Delivery, NewDelivery, OutputSpec, WebhookSpec};
use crate::store::{Store, StoreError};

/// The first retry's wait; each later one waits twice as long as the one before.
const FIRST_RETRY: TimeDelta = TimeDelta::seconds(5);
/// The longest wait between two tries.
const MAX_WAIT: TimeDelta = TimeDelta::hours(1);
/// How long a claimed delivery is kept from other senders: longer than any one request.
const CLAIM: TimeDelta = TimeDelta::minutes(5);
/// Deliveries claimed at once, and sent at once.
const BATCH: usize = 32;
const SENDING: usize = 8;
/// Claims in one pass, at most (a pass sends at most this many batches).
const MAX_CLAIMS: usize = 64;

/// The output's name in the outbox: its path as configured.
pub(crate) fn output_name(spec: &OutputSpec) -> String {
    spec.path.display().to_string()
}

/// Announces what `selection` shows that `spec` has not announced yet: a delivery per
/// webhook and `max_items` entries, written with the announcement in one transaction. The
/// first render announces its back catalogue without sending it. How many deliveries were
/// made.
pub(crate) async fn announce(
    store: &Store,
    spec: &OutputSpec,
    selection: &Selection,
    context: &Context,
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    if spec.webhooks.is_empty() {
        return Ok(0);
    }
    let name = output_name(spec);
    let shown: Vec<i64> = selection.entries.iter().map(|e| e.stored.id).collect();
    let Some(new) = store.unannounced(name.clone(), shown.clone()).await? else {
        store.announce(name, shown, Vec::new(), now).await?;
        return Ok(0);
    };
    if new.is_empty() {
        return Ok(0);
    }
    let fresh: std::collections::HashSet<i64> = new.iter().copied().collect();
    let entries: Vec<&OutputEntry> = selection
        .entries
        .iter()
        .filter(|e| fresh.contains(&e.stored.id))
        .collect();
    let mut deliveries = Vec::new();
    for hook in &spec.webhooks {
        for batch in entries.chunks(hook.max_items.max(1)) {
            let items = Selection {
                entries: batch.iter().map(|e| (*e).clone()).collect(),
                ..Selection::default()
            };
            let body = jsonfeed::render(spec, &items, context);
            deliveries.push(NewDelivery {
                webhook: hook.name(),
                body: String::from_utf8_lossy(&body).into_owned(),
            });
        }
    }
    let made = deliveries.len();
    store.announce(name, new, deliveries, now).await?;
    Ok(made)
}

/// What one pass over the outbox did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryPass {
    pub delivered: usize,
    /// Failed this time, to be tried again.
    pub retried: usize,
    /// Refused for good, or retried past the webhook's window.
    pub(crate) given_up: usize,
    /// When the outbox has a delivery due next.
    pub next: Option<DateTime<Utc>>,
    /// The webhooks (output and name) a receiver took a delivery for.
    pub(crate) taken_by: std::collections::BTreeSet<(String, String)>,
    /// The webhooks that gave a delivery up, with the last reason.
    pub(crate) failing: std::collections::BTreeMap<(String, String), String>,
}

/// How one try went.
enum Outcome {
    Delivered,
    Retry(DateTime<Utc>, String),
    GiveUp(String),
}

/// Why the outbox could not be worked through.
#[derive(Debug, thiserror::Error)]
pub enum DeliverError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The HTTP client could not be made (its TLS setup).
    #[error("cannot make the HTTP client: {0}")]
    Client(#[from] FetchError),
}

/// Sends what the outbox has due now, with a client made from `config`'s `[poll]`, for
/// callers that have none (benchmarks); see [`deliver_due`].
pub async fn deliver_pending(config: &Config, store: &Store) -> Result<DeliveryPass, DeliverError> {
    let fetcher = Fetcher::new(&config.poll)?;
    Ok(deliver_due(config, store, &fetcher, Utc::now).await?)
}

/// Sends the deliveries due at `now`, as many batches as are due (at most [`MAX_CLAIMS`]).
pub(crate) async fn deliver_due(
    config: &Config,
    store: &Store,
    fetcher: &Fetcher,
    now: impl Fn() -> DateTime<Utc> + Sync,
) -> Result<DeliveryPass, StoreError> {
    let now = &now;
    let mut pass = DeliveryPass::default();
    for _ in 0..MAX_CLAIMS {
        let at = now();
        let claimed = store.claim_deliveries(at, at + CLAIM, BATCH).await?;
        let full = claimed.len() == BATCH;
        let sent: Vec<(Delivery, Outcome)> = futures::stream::iter(claimed)
            .map(|d| async move {
                let outcome = match webhook_of(config, &d) {
                    Some(hook) => send(fetcher, hook, &d, now).await,
                    None => Outcome::GiveUp("the webhook is no longer configured".to_string()),
                };
                (d, outcome)
            })
            .buffer_unordered(SENDING)
            .collect()
            .await;
        for (d, outcome) in sent {
            let hook = (d.output, d.webhook);
            match outcome {
                Outcome::Delivered => {
                    store.delivered(d.id).await?;
                    pass.delivered += 1;
                    pass.taken_by.insert(hook);
                }
                Outcome::Retry(at, error) => {
                    store.delivery_failed(d.id, error, Some(at), now()).await?;
                    pass.retried += 1;
                }
                Outcome::GiveUp(error) => {
                    store.delivery_failed(d.id, error.clone(), None, now()).await?;
                    pass.given_up += 1;
                    pass.failing.insert(hook, error);
                }
            }
        }
        if !full {
            break;
        }
    }
    pass.next = store.next_delivery().await?;
    Ok(pass)
}

/// The configured webhook a delivery is for.
fn webhook_of<'a>(config: &'a Config, d: &Delivery) -> Option<&'a WebhookSpec> {
    config
        .outputs
        .iter()
        .filter(|o| output_name(o) == d.output)
        .flat_map(|o| &o.webhooks)
        .find(|w| w.name() == d.webhook)
}

/// One try of `d`, and what it means for the next.
async fn send(
    fetcher: &Fetcher,
    hook: &WebhookSpec,
    d: &Delivery,
    now: &(impl Fn() -> DateTime<Utc> + Sync),
) -> Outcome {
    let id = message_id(d);
    let timestamp = now().timestamp();
    let headers = match signed_headers(&hook.key, &id, timestamp, &d.body) {
        Some(h) => h,
        None => return Outcome::GiveUp("cannot sign the request".to_string()),
    };
    let result = fetcher
        .post(
            &hook.url,
            crate::fetch::Trust::Operator,
            headers,
            d.body.clone().into_bytes(),
        )
        .await;
    let error = match result {
        Ok(()) => return Outcome::Delivered,
        Err(e) => e,
    };
    let at = now();
    let retryable = match &error {
        FetchError::Status { status, .. } => matches!(status, 408 | 429 | 500..=599),
        FetchError::Timeout { .. } | FetchError::Connect(_) | FetchError::Http(_) => true,
        _ => false,
    };
    let message = match &error {
        FetchError::Status {
            status: 300..=399, ..
        } => format!("{error} (webhooks do not follow redirects)"),
        _ => error.to_string(),
    };
    let window = TimeDelta::from_std(hook.retry_for).unwrap_or(TimeDelta::MAX);
    if !retryable {
        return Outcome::GiveUp(message);
    }
    let wait = backoff(d.attempts);
    let asked = error
        .retry_after()
        .and_then(|v| crate::schedule::hints::retry_after(v, at))
        .map(|t| t - at);
    let next = at + asked.map_or(wait, |a| a.max(wait).min(MAX_WAIT));
    if next - d.created > window {
        return Outcome::GiveUp(format!(
            "{message}; retried for {}",
            humantime::format_duration(hook.retry_for)
        ));
    }
    Outcome::Retry(next, message)
}

/// The wait after try `attempts` (1, 2, …): 5 s, 10 s, 20 s, … at most an hour.
fn backoff(attempts: u32) -> TimeDelta {
    let doublings = attempts.saturating_sub(1).min(20);
    (FIRST_RETRY * 2_i32.pow(doublings)).min(MAX_WAIT)
}

/// A delivery's `webhook-id`: the same on every try of it, and unlike any other delivery's
/// (store ids are never reused; the hash tells stores apart).
fn message_id(d: &Delivery) -> String {
    let digest = Sha256::digest(format!(
        "{}\n{}\n{}",
        d.output,
        d.webhook,
        d.created.timestamp_millis()
    ));
    format!("msg_{}_{}", d.id, hex::encode(&digest[..6]))
}

/// The Standard Webhooks headers: `webhook-id`, `webhook-timestamp` (Unix seconds) and
/// `webhook-signature: v1,BASE64(HMAC-SHA256(key, "id.timestamp.body"))`.
fn signed_headers(key: &[u8], id: &str, timestamp: i64, body: &str) -> Option<HeaderMap> {
    let mut mac = hmac::Hmac::<Sha256>::new_from_slice(key).ok()?;
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    let signature = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert("webhook-id", HeaderValue::from_str(id).ok()?);
    headers.insert("webhook-timestamp", HeaderValue::from(timestamp));
    headers.insert(
        "webhook-signature",
        HeaderValue::from_str(&format!("v1,{signature}")).ok()?,
    );
    Some(headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_from_five_seconds_to_an_hour() {
        let waits: Vec<i64> = (1..=12).map(|n| backoff(n).num_seconds()).collect();
        assert_eq!(waits, [5, 10, 20, 40, 80, 160, 320, 640, 1280, 2560, 3600, 3600]);
    }

    /// The specification's own example: its secret, id, timestamp and payload give its
    /// signature (standard-webhooks/spec, "Signature scheme").
    #[test]
    fn signatures_match_the_standard_webhooks_example() {
        let key = base64::engine::general_purpose::STANDARD
            .decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
            .unwrap();
        let headers = signed_headers(
            &key,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            r#"{"test": 2432232314}"#,
        )
        .unwrap();
        assert_eq!(
            headers["webhook-signature"],
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        assert_eq!(headers["webhook-timestamp"], "1614265330");
    }
}
