//! Owns the subscriber side of WebSub (W3C WebSub, Recommendation 2018): feeds whose hub
//! pushes them instead of waiting to be polled.
//!
//! - Which feeds are subscribed and the requests to their hubs: a feed whose last fetched
//!   document named a hub is subscribed (a secret and a callback of its own, a lease), renewed
//!   before the lease ends, and unsubscribed when it leaves the config or names no hub any
//!   more; a hub that does not answer, or answers badly, is that subscription's error, tried
//!   again with backoff, never the feed's ([`maintain`], run by one node of a cluster).
//! - The callback: one URL per subscription, keyed with the store's secret, so a made-up one
//!   is refused without a lookup ([`Callbacks`]); the hub's verification of intent, answered
//!   only for a topic and mode we asked for ([`verify`]); pushes, taken only with a valid
//!   `X-Hub-Signature` over the exact body ([`check_signature`]). `serve` answers the hubs'
//!   calls with these, and hands a valid push to the poll spine as a body.
//!
//! While a subscription is active, the feed is still polled, far less often (see
//! `schedule::due`), and on its schedule again when it lapses or is denied.

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use hmac::{KeyInit, Mac};
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use url::Url;

use crate::config::Config;
use crate::fetch::{Fetcher, PushLinks, Trust};
use crate::model::{Secret, Subscription, SubscriptionState, earliest};
use crate::store::{Store, StoreError};

/// Where callbacks are served, under `serve.base_url`.
pub(crate) const CALLBACK_ROUTE: &str = "/websub/";
/// How much of its MAC a callback URL carries.
const CALLBACK_MAC_BYTES: usize = 16;
/// How long a hub has to verify our intent before the request is made again.
const VERIFY_WAIT: Duration = Duration::from_secs(10 * 60);
/// First wait after a hub failed a request; doubles up to [`RETRY_CAP`].
const RETRY_BASE: Duration = Duration::from_secs(5 * 60);
const RETRY_CAP: Duration = Duration::from_secs(24 * 60 * 60);
/// A denied subscription is asked for again after this long: a hub may deny for a while.
const DENIED_RETRY: Duration = Duration::from_secs(24 * 60 * 60);
/// Requests to hubs in flight at once, and at most per pass (the rest wait for the next).
const REQUESTS_AT_ONCE: usize = 4;
const REQUESTS_PER_PASS: usize = 200;
/// The shortest lease renewed ahead by a tenth; a lease is renewed at most this long before it ends.
const RENEW_AHEAD_CAP: Duration = Duration::from_secs(24 * 60 * 60);

/// Callback URLs: `/websub/FEED-NONCE-MAC`, the MAC keyed with the store's secret (the same on
/// every node), so any node tells one it made from a made-up one by a hash, and a feed that
/// subscribes again (a new nonce) leaves the old URL dead.
#[derive(Clone)]
pub(crate) struct Callbacks {
    key: Vec<u8>,
}

impl Callbacks {
    /// The callbacks of `store`'s subscriptions.
    pub(crate) async fn of(store: &Store) -> Result<Callbacks, StoreError> {
        Ok(Callbacks {
            key: store.secret(Secret::CallbackKey).await?.into_bytes(),
        })
    }

    /// The MAC of a feed's callback with `nonce`, ready for its bytes or a check.
    fn mac(&self, feed_id: i64, nonce: &str) -> hmac::Hmac<sha2::Sha256> {
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&self.key).expect("HMAC takes any key");
        mac.update(format!("{feed_id}-{nonce}").as_bytes());
        mac
    }

    /// The path segment of `sub`'s callback: the MAC's first 16 bytes, in hex.
    pub(crate) fn token(&self, feed_id: i64, nonce: &str) -> String {
        let mac = self.mac(feed_id, nonce).finalize().into_bytes();
        format!("{feed_id}-{nonce}-{}", hex::encode(&mac[..CALLBACK_MAC_BYTES]))
    }

    /// The feed and nonce a callback token names, if this store made it (checked in
    /// constant time: the MAC is what keeps callbacks unguessable).
    pub(crate) fn read(&self, token: &str) -> Option<(i64, String)> {
        let mut parts = token.splitn(3, '-');
        let (feed, nonce, mac) = (parts.next()?, parts.next()?, parts.next()?);
        let feed_id: i64 = feed.parse().ok()?;
        let given = hex::decode(mac).ok().filter(|m| m.len() == CALLBACK_MAC_BYTES)?;
        self.mac(feed_id, nonce)
            .verify_truncated_left(&given)
            .ok()
            .map(|()| (feed_id, nonce.to_string()))
    }

    /// `sub`'s callback URL under `base` (`serve.base_url`).
    pub(crate) fn url(&self, base: &Url, feed_id: i64, nonce: &str) -> Option<Url> {
        base.join(&format!("{}{}", &CALLBACK_ROUTE[1..], self.token(feed_id, nonce)))
            .ok()
    }
}

/// Why a push was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SignatureError {
    #[error("no X-Hub-Signature")]
    Missing,
    #[error("X-Hub-Signature is not METHOD=HEX")]
    Malformed,
    #[error("X-Hub-Signature uses {0}, which WebSub does not name")]
    UnknownMethod(String),
    #[error("X-Hub-Signature does not match the body")]
    Mismatch,
}

/// Checks `header` (`sha256=HEX`; sha1, sha384 and sha512 too, as the hub chose) against
/// `body` signed with `secret` (W3C WebSub §8). The comparison takes constant time.
pub(crate) fn check_signature(
    header: Option<&str>,
    secret: &[u8],
    body: &[u8],
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?.trim();
    let (method, hex_mac) = header.split_once('=').ok_or(SignatureError::Malformed)?;
    let given = hex::decode(hex_mac.trim()).map_err(|_| SignatureError::Malformed)?;
    fn verify<M: Mac + KeyInit>(secret: &[u8], body: &[u8], given: &[u8]) -> Result<(), SignatureError> {
        let mut mac = <M as KeyInit>::new_from_slice(secret).map_err(|_| SignatureError::Mismatch)?;
        mac.update(body);
        mac.verify_slice(given).map_err(|_| SignatureError::Mismatch)
    }
    match method.trim().to_ascii_lowercase().as_str() {
        "sha1" => verify::<hmac::Hmac<sha1::Sha1>>(secret, body, &given),
        "sha256" => verify::<hmac::Hmac<sha2::Sha256>>(secret, body, &given),
        "sha384" => verify::<hmac::Hmac<sha2::Sha384>>(secret, body, &given),
        "sha512" => verify::<hmac::Hmac<sha2::Sha512>>(secret, body, &given),
        other => Err(SignatureError::UnknownMethod(other.to_string())),
    }
}

/// The hub's verification of intent (a GET to the callback), as its query says.
#[derive(Debug, Default)]
pub(crate) struct Verification {
    pub(crate) mode: String,
    pub(crate) topic: String,
    pub(crate) challenge: Option<String>,
    pub(crate) lease_seconds: Option<u64>,
    pub(crate) reason: Option<String>,
}

impl Verification {
    /// Reads a callback's query string (`hub.mode=…&hub.topic=…&…`).
    pub(crate) fn parse(query: &str) -> Verification {
        let mut v = Verification::default();
        for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
            match name.as_ref() {
                "hub.mode" => v.mode = value.into_owned(),
                "hub.topic" => v.topic = value.into_owned(),
                "hub.challenge" => v.challenge = Some(value.into_owned()),
                "hub.lease_seconds" => v.lease_seconds = value.trim().parse().ok(),
                "hub.reason" => v.reason = Some(value.into_owned()),
                _ => {}
            }
        }
        v
    }
}

/// What the callback answers a verification: the challenge echoed (200), nothing (200, a
/// denial noted), or a refusal (404: not a topic and mode we asked for).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Answer {
    Confirm(String),
    Noted,
    Refuse,
}

/// Answers the hub's verification of intent for feed `feed_id`'s subscription with `nonce`,
/// and records what it says: a subscription verified is active until its lease ends (its
/// renewal due ahead of that), one unsubscribed is forgotten, one denied is noted.
pub(crate) async fn verify(
    store: &Store,
    feed_id: i64,
    nonce: &str,
    v: &Verification,
    config: &Config,
    now: DateTime<Utc>,
) -> Result<Answer, StoreError> {
    let Some(mut sub) = store.subscription(feed_id).await? else {
        return Ok(Answer::Refuse);
    };
    // The topic as we asked for it; a hub may hand it back normalized (case of the host, a
    // default port), which is the same URL.
    let same_topic = v.topic == sub.topic
        || matches!((Url::parse(&v.topic), Url::parse(&sub.topic)), (Ok(a), Ok(b)) if a == b);
    if sub.nonce != nonce || !same_topic {
        return Ok(Answer::Refuse);
    }
    match (v.mode.as_str(), sub.state, &v.challenge) {
        (
            "subscribe",
            SubscriptionState::Pending | SubscriptionState::Active | SubscriptionState::Failed,
            Some(challenge),
        ) => {
            let lease = v.lease_seconds.map_or(config.websub.lease, Duration::from_secs);
            let until = now + to_chrono(lease);
            sub.state = SubscriptionState::Active;
            sub.lease_until = Some(until);
            sub.next_attempt = Some(renewal_time(now, until));
            sub.failures = 0;
            sub.error = None;
            store.put_subscription(sub, now).await?;
            Ok(Answer::Confirm(challenge.clone()))
        }
        ("unsubscribe", SubscriptionState::Unsubscribing, Some(challenge)) => {
            store.drop_subscription(feed_id, now).await?;
            Ok(Answer::Confirm(challenge.clone()))
        }
        ("denied", state, _) if state != SubscriptionState::Unsubscribing => {
            sub.state = SubscriptionState::Denied;
            sub.lease_until = None;
            sub.error = Some(
                v.reason
                    .clone()
                    .filter(|r| !r.trim().is_empty())
                    .unwrap_or_else(|| "the hub denied the subscription".into()),
            );
            sub.next_attempt = Some(now + to_chrono(DENIED_RETRY));
            store.put_subscription(sub, now).await?;
            Ok(Answer::Noted)
        }
        _ => Ok(Answer::Refuse),
    }
}

/// When an active lease ending at `until` is renewed: a tenth of it ahead, at most a day.
fn renewal_time(now: DateTime<Utc>, until: DateTime<Utc>) -> DateTime<Utc> {
    let lease = (until - now).to_std().unwrap_or_default();
    until - to_chrono((lease / 10).min(RENEW_AHEAD_CAP))
}

/// What one [`maintain`] pass did, and when the next is due.
#[derive(Debug, Default)]
pub(crate) struct Pass {
    pub(crate) requested: usize,
    pub(crate) failed: usize,
    /// When a subscription next needs a request (a renewal, a retry, a lease that ends).
    pub(crate) next: Option<DateTime<Utc>>,
    /// The feeds with a subscription: what a poll finds naming no hub matters only for them.
    pub(crate) subscribed: std::collections::HashSet<i64>,
}

/// Brings the subscriptions in line with the config and what polls found: feeds whose document
/// named a hub (`found`: feed id and links, from this node's polls) are subscribed, or
/// subscribed anew at a new hub (by the node that polled them: claims give each feed one node
/// per slot), or unsubscribed when they name none any more. With `tend` (one node of a cluster,
/// the leader; the only node otherwise) the rest too: leases near their end are renewed,
/// verifications that never came are asked again, feeds that left the config (or
/// `websub.subscribe` turned off) are unsubscribed, leases that ended unrenewed lapse (the feed
/// is polled on its schedule again). Hubs are URLs from content: guarded as such (a private hub
/// needs `poll.allow_networks`).
pub(crate) async fn maintain(
    config: &Config,
    store: &Store,
    fetcher: &Fetcher,
    callbacks: &Callbacks,
    found: Vec<(i64, PushLinks)>,
    tend: bool,
    now: DateTime<Utc>,
) -> Result<Pass, StoreError> {
    let base = config.serve.as_ref().and_then(|s| s.base_url.clone());
    let subscribing = config.websub.subscribe && base.is_some();
    let mut subs: std::collections::HashMap<i64, Subscription> = store
        .subscriptions()
        .await?
        .into_iter()
        .map(|s| (s.feed_id, s))
        .collect();
    // What polls found matters where it names a hub, or where a feed subscribed names none now.
    let found: Vec<(i64, PushLinks)> = found
        .into_iter()
        .filter(|(id, links)| links.hub.is_some() || subs.contains_key(id))
        .collect();
    if subs.is_empty() && (found.is_empty() || !subscribing) {
        return Ok(Pass::default());
    }
    // The feeds that may be subscribed: configured and enabled.
    let urls: std::sync::Arc<[String]> = config
        .feeds
        .iter()
        .filter(|f| !f.disabled)
        .map(|f| f.key.clone())
        .collect();
    let enabled: std::collections::HashSet<i64> = store
        .feeds_by_url(urls)
        .await?
        .into_values()
        .map(|f| f.id)
        .collect();
    let mut work: Vec<(Subscription, Mode)> = Vec::new();
    let mut pass = Pass {
        subscribed: subs.keys().copied().collect(),
        ..Pass::default()
    };
    if subscribing {
        for (feed_id, links) in found.iter().cloned() {
            if !enabled.contains(&feed_id) {
                continue;
            }
            let wanted = match (links.hub, links.topic) {
                (Some(hub), Some(topic)) if matches!(hub.scheme(), "http" | "https") => Some((hub, topic)),
                _ => None,
            };
            match (subs.get(&feed_id), wanted) {
                (Some(sub), Some((hub, topic))) if sub.hub == hub.as_str() && sub.topic == topic.as_str() => {
                }
                (Some(sub), None) if sub.state == SubscriptionState::Unsubscribing => {}
                (Some(_), None) => {
                    // The feed names no hub any more: the old one is told to stop.
                    if let Some(sub) = subs.remove(&feed_id) {
                        work.push((sub, Mode::Unsubscribe));
                    }
                }
                (_, Some((hub, topic))) => {
                    // New, or at another hub or topic: a new subscription (a new secret and
                    // callback). The old callback dies with its nonce: a hub that pushes to it
                    // hears 410 Gone, which tells it to stop. Recorded at once: asked by this
                    // pass (and so not due for another node's meanwhile) or, past what one pass
                    // asks, due at once for the next.
                    subs.remove(&feed_id);
                    let asked_now = work.len() < REQUESTS_PER_PASS;
                    let sub = Subscription {
                        feed_id,
                        hub: hub.to_string(),
                        topic: topic.to_string(),
                        state: SubscriptionState::Pending,
                        secret: crate::store::new_salt(),
                        nonce: crate::store::new_salt()[..16].to_string(),
                        lease_until: None,
                        // `None`: never asked, due at once.
                        next_attempt: asked_now.then(|| now + to_chrono(VERIFY_WAIT)),
                        failures: 0,
                        error: None,
                        last_push: None,
                        pushes: 0,
                        rejected: 0,
                    };
                    store.put_subscription(sub.clone(), now).await?;
                    pass.subscribed.insert(feed_id);
                    if asked_now {
                        work.push((sub, Mode::Subscribe));
                    } else {
                        pass.next = Some(now);
                    }
                }
                (None, None) => {}
            }
        }
    }
    // Without `tend`, only what this node's polls found is this node's business.
    let found_here: std::collections::HashSet<i64> = found.iter().map(|(id, _)| *id).collect();
    for (_, mut sub) in subs {
        if !tend && !found_here.contains(&sub.feed_id) {
            continue;
        }
        let due = sub.next_attempt.is_none_or(|t| t <= now);
        let wanted = subscribing && enabled.contains(&sub.feed_id);
        match sub.state {
            SubscriptionState::Unsubscribing if due => work.push((sub, Mode::Unsubscribe)),
            _ if !wanted && sub.state != SubscriptionState::Unsubscribing => {
                work.push((sub, Mode::Unsubscribe));
            }
            SubscriptionState::Active if sub.lease_until.is_some_and(|t| t <= now) => {
                // Not renewed in time: the feed goes back to its schedule, and is asked again.
                sub.state = SubscriptionState::Failed;
                sub.lease_until = None;
                sub.error = Some("the lease ended before it was renewed".into());
                sub.next_attempt = Some(now);
                store.put_subscription(sub.clone(), now).await?;
                work.push((sub, Mode::Subscribe));
            }
            SubscriptionState::Pending
            | SubscriptionState::Active
            | SubscriptionState::Failed
            | SubscriptionState::Denied
                if due =>
            {
                work.push((sub, Mode::Subscribe));
            }
            _ => pass.next = earliest(pass.next, sub.next_attempt),
        }
    }
    // Bounded: the rest wait for the next pass, due at once.
    if work.len() > REQUESTS_PER_PASS {
        work.truncate(REQUESTS_PER_PASS);
        pass.next = Some(now);
    }
    let Some(base) = base else {
        // No public address any more: nothing can be asked of a hub; the rows stay.
        return Ok(pass);
    };
    // What is asked is recorded before it is asked: a hub may verify our intent before it
    // even answers the request.
    let mut asking = Vec::new();
    for (mut sub, mode) in work {
        let mut wait = now + to_chrono(VERIFY_WAIT);
        match mode {
            Mode::Subscribe => {
                // Asked before and never verified (a new one is not due yet): asked again less
                // and less often.
                if sub.state == SubscriptionState::Pending && sub.next_attempt.is_some_and(|t| t <= now) {
                    sub.failures += 1;
                    sub.error = Some("the hub has not verified the subscription".into());
                    wait = now + to_chrono(retry_after(sub.failures).max(VERIFY_WAIT));
                }
                if sub.state != SubscriptionState::Active {
                    sub.state = SubscriptionState::Pending;
                }
                // A renewal is asked again no later than its lease ends (then it lapses).
                sub.next_attempt = Some(sub.pushed_until().map_or(wait, |until| until.min(wait)));
            }
            Mode::Unsubscribe => {
                // Asked this many times to stop; the row waits for the hub's verification, but
                // not for ever: one never active, or whose lease is over, or asked three
                // times, is forgotten (its lease runs out at the hub).
                let attempts = match sub.state {
                    SubscriptionState::Unsubscribing => sub.failures + 1,
                    _ => 1,
                };
                let leased =
                    sub.lease_until.is_some_and(|t| t > now) && sub.state != SubscriptionState::Pending;
                if !leased || attempts > 3 {
                    store.drop_subscription(sub.feed_id, now).await?;
                    continue;
                }
                sub.state = SubscriptionState::Unsubscribing;
                sub.failures = attempts;
                sub.next_attempt = Some(wait);
            }
        }
        store.put_subscription(sub.clone(), now).await?;
        pass.next = earliest(pass.next, sub.next_attempt);
        asking.push((sub, mode));
    }
    let results = futures::stream::iter(asking)
        .map(|(sub, mode)| {
            let base = &base;
            async move {
                let outcome = request(config, fetcher, callbacks, base, &sub, mode).await;
                (sub, mode, outcome)
            }
        })
        .buffer_unordered(REQUESTS_AT_ONCE)
        .collect::<Vec<_>>()
        .await;
    for (asked, mode, outcome) in results {
        pass.requested += 1;
        let Err(error) = outcome else { continue };
        pass.failed += 1;
        tracing::debug!(hub = %asked.hub, %error, "WebSub hub request failed");
        // The failure is the subscription's, unless the hub answered meanwhile after all.
        let Some(mut sub) = store
            .subscription(asked.feed_id)
            .await?
            .filter(|s| s.nonce == asked.nonce && s.state == asked.state)
        else {
            continue;
        };
        if mode == Mode::Subscribe {
            // An active lease goes on until it ends; the renewal is tried again.
            if sub.state != SubscriptionState::Active {
                sub.state = SubscriptionState::Failed;
            }
            sub.failures += 1;
            // Tried again after the backoff, and at the latest when the lease ends (it lapses).
            let retry = now + to_chrono(retry_after(sub.failures));
            sub.next_attempt = Some(sub.pushed_until().map_or(retry, |until| until.min(retry)));
        }
        sub.error = Some(error);
        pass.next = earliest(pass.next, sub.next_attempt);
        store.put_subscription(sub, now).await?;
    }
    Ok(pass)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Subscribe,
    Unsubscribe,
}

/// One request to `sub`'s hub; the hub's error as text.
async fn request(
    config: &Config,
    fetcher: &Fetcher,
    callbacks: &Callbacks,
    base: &Url,
    sub: &Subscription,
    mode: Mode,
) -> Result<(), String> {
    let hub = Url::parse(&sub.hub).map_err(|e| format!("the hub's URL is not valid: {e}"))?;
    let callback = callbacks
        .url(base, sub.feed_id, &sub.nonce)
        .ok_or("serve.base_url cannot take a callback path")?;
    let form = {
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        form.append_pair("hub.callback", callback.as_str())
            .append_pair("hub.topic", &sub.topic);
        match mode {
            Mode::Subscribe => {
                form.append_pair("hub.mode", "subscribe")
                    .append_pair("hub.secret", &sub.secret)
                    .append_pair("hub.lease_seconds", &config.websub.lease.as_secs().to_string());
            }
            Mode::Unsubscribe => {
                form.append_pair("hub.mode", "unsubscribe");
            }
        }
        form.finish()
    };
    let mut headers = HeaderMap::new();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    fetcher
        .post(&hub, Trust::Content, headers, form.into_bytes())
        .await
        .map_err(|e| format!("hub {}: {e}", crate::model::display_url(&hub)))
}

/// How long after `failures` failed requests a subscription is asked again.
fn retry_after(failures: u32) -> Duration {
    RETRY_BASE
        .saturating_mul(1 << failures.saturating_sub(1).min(16))
        .min(RETRY_CAP)
}

fn to_chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex_mac<M: Mac + KeyInit>(key: &[u8], body: &[u8]) -> String {
        let mut mac = <M as KeyInit>::new_from_slice(key).unwrap();
        mac.update(body);
        hex::encode(mac.finalize().into_bytes())
    }

    #[test]
    fn signatures_of_every_method_websub_names_are_checked_over_the_exact_body() {
        let (secret, body) = (b"s3cret".as_slice(), b"<feed/>".as_slice());
        let sha1 = format!("sha1={}", hex_mac::<hmac::Hmac<sha1::Sha1>>(secret, body));
        let sha256 = format!("sha256={}", hex_mac::<hmac::Hmac<sha2::Sha256>>(secret, body));
        let sha384 = format!("sha384={}", hex_mac::<hmac::Hmac<sha2::Sha384>>(secret, body));
        let sha512 = format!("SHA512={}", hex_mac::<hmac::Hmac<sha2::Sha512>>(secret, body));
        for header in [&sha1, &sha256, &sha384, &sha512] {
            assert_eq!(check_signature(Some(header), secret, body), Ok(()), "{header}");
            assert_eq!(
                check_signature(Some(header), secret, b"<feed/> "),
                Err(SignatureError::Mismatch)
            );
            assert_eq!(
                check_signature(Some(header), b"other", body),
                Err(SignatureError::Mismatch)
            );
        }
        assert_eq!(check_signature(None, secret, body), Err(SignatureError::Missing));
        assert_eq!(
            check_signature(Some("sha256"), secret, body),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            check_signature(Some("sha256=zz"), secret, body),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            check_signature(Some("md5=00"), secret, body),
            Err(SignatureError::UnknownMethod("md5".into()))
        );
    }

    #[test]
    fn callbacks_are_told_from_made_up_ones_by_their_mac() {
        let callbacks = Callbacks { key: b"key".to_vec() };
        let token = callbacks.token(42, "abc123");
        assert_eq!(callbacks.read(&token), Some((42, "abc123".to_string())));
        let other = Callbacks {
            key: b"another".to_vec(),
        };
        assert_eq!(other.read(&token), None, "another store's callback");
        assert_eq!(callbacks.read("42-abc123-00000000000000000000000000000000"), None);
        assert_eq!(
            callbacks.read(&token.replacen("42", "43", 1)),
            None,
            "another feed"
        );
        assert_eq!(callbacks.read("nonsense"), None);
        let base = Url::parse("https://planet.example/news/").unwrap();
        let url = callbacks.url(&base, 42, "abc123").unwrap();
        assert_eq!(
            url.as_str(),
            format!("https://planet.example/news/websub/{token}")
        );
    }

    #[test]
    fn renewals_come_a_tenth_of_the_lease_ahead_at_most_a_day() {
        let now = Utc::now();
        let hour = now + chrono::Duration::hours(10);
        assert_eq!(renewal_time(now, hour), hour - chrono::Duration::hours(1));
        let month = now + chrono::Duration::days(30);
        assert_eq!(renewal_time(now, month), month - chrono::Duration::days(1));
        let waits: Vec<u64> = (1..=6).map(|n| retry_after(n).as_secs() / 60).collect();
        assert_eq!(waits, [5, 10, 20, 40, 80, 160]);
    }
}
