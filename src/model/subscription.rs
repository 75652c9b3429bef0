//! A feed's WebSub subscription (W3C WebSub §5): what the subscriber asked of the feed's hub,
//! what the hub answered, and the pushes it sent since.

use chrono::{DateTime, Utc};

/// Where a subscription stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum SubscriptionState {
    /// Asked for; the hub has not verified our intent yet.
    Pending,
    /// Verified: the hub pushes until `lease_until`.
    Active,
    /// The hub refused it (`hub.mode=denied`): the feed is polled on its schedule.
    Denied,
    /// The hub did not answer, or answered badly: tried again with backoff.
    Failed,
    /// The feed left the config (or was disabled): the hub is asked to stop.
    Unsubscribing,
}

impl SubscriptionState {
    pub(crate) fn name(self) -> &'static str {
        match self {
            SubscriptionState::Pending => "pending",
            SubscriptionState::Active => "active",
            SubscriptionState::Denied => "denied",
            SubscriptionState::Failed => "failed",
            SubscriptionState::Unsubscribing => "unsubscribing",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<SubscriptionState> {
        [
            SubscriptionState::Pending,
            SubscriptionState::Active,
            SubscriptionState::Denied,
            SubscriptionState::Failed,
            SubscriptionState::Unsubscribing,
        ]
        .into_iter()
        .find(|s| s.name() == name)
    }
}

impl std::fmt::Display for SubscriptionState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One feed's subscription at its hub, as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub(crate) feed_id: i64,
    /// The hub, as the feed named it (a URL from content).
    pub(crate) hub: String,
    /// The topic subscribed to: the feed's `rel="self"` URL.
    pub(crate) topic: String,
    pub(crate) state: SubscriptionState,
    /// `hub.secret`: the key of the pushes' signatures, this subscription's own.
    pub(crate) secret: String,
    /// Part of the callback URL, new for every subscription, so a hub's old callbacks stop
    /// working when the feed subscribes again.
    pub(crate) nonce: String,
    /// While active, when the hub's lease ends.
    pub(crate) lease_until: Option<DateTime<Utc>>,
    /// When to act next: renew before the lease ends, or try again after a failure; `None`:
    /// at once (never asked yet).
    pub(crate) next_attempt: Option<DateTime<Utc>>,
    /// Consecutive failed requests to the hub (the backoff's exponent).
    pub(crate) failures: u32,
    /// Why the last request failed, or why the hub denied it.
    pub(crate) error: Option<String>,
    /// When the last valid push arrived.
    pub(crate) last_push: Option<DateTime<Utc>>,
    /// Valid pushes taken, and pushes dropped (a bad signature, too large).
    pub(crate) pushes: u64,
    pub(crate) rejected: u64,
}

impl Subscription {
    /// Until when the hub pushes this feed: an active subscription's lease.
    pub fn pushed_until(&self) -> Option<DateTime<Utc>> {
        self.lease_until
            .filter(|_| self.state == SubscriptionState::Active)
    }

    /// How it stands, in words: "active until …", "denied: reason", …
    pub fn describe(&self) -> String {
        let mut s = match (self.state, self.lease_until) {
            (SubscriptionState::Active, Some(until)) => {
                format!("active until {}", super::human_time(until))
            }
            (state, _) => state.to_string(),
        };
        if let Some(e) = self
            .error
            .as_deref()
            .filter(|_| self.state != SubscriptionState::Active)
        {
            s.push_str(": ");
            s.push_str(e);
        }
        s
    }
}
