//! Reach: how many people read each output. Feed aggregators that fetch on behalf of many
//! subscribers say how many in their User-Agent (Feedly, Inoreader, NewsBlur, Feedbin, The Old
//! Reader, and many others in the same words); they are counted by the number they state, once
//! per aggregator and feed id, the latest figure replacing the one before. Every other client
//! is one reader per distinct (address, User-Agent) pair seen in the last 7 days, the address
//! kept only as a salted hash.
//!
//! Sightings are gathered in memory as requests are answered and written to the store in
//! batches ([`Readers::flush`]): a request costs no write of its own.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::store::{DIRECT_VIA, Store, StoreError};

use crate::model::ReaderSighting;

/// An aggregator's statement in its User-Agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stated {
    /// The aggregator, lower case (`feedly`, `inoreader`, `newsblur`, …).
    pub(crate) via: String,
    /// Its id for the feed, when it gives one: one aggregator may subscribe to an output
    /// under several ids (its URL spelled two ways), each with its own subscribers.
    pub(crate) feed_id: String,
    pub(crate) subscribers: u64,
}

/// The statement in `user_agent`, if it has one: `N subscriber(s)` anywhere, the aggregator
/// named by the User-Agent's first word (its product token without the version), and the feed
/// id from `feed-id=ID`, `feed-id:ID` or NewsBlur's `/site/ID`.
pub(crate) fn stated(user_agent: &str) -> Option<Stated> {
    let words: Vec<&str> = user_agent.split_whitespace().collect();
    let is_subscribers = |w: &str| {
        let w = w.trim_end_matches([';', ',', ')']);
        w.eq_ignore_ascii_case("subscribers") || w.eq_ignore_ascii_case("subscriber")
    };
    let at = words.windows(2).position(|w| is_subscribers(w[1]))?;
    let subscribers: u64 = words[at].trim_start_matches('(').parse().ok()?;
    let first = words.first()?;
    let via: String = first
        .split(['/', '('])
        .next()
        .unwrap_or(first)
        .trim_end_matches(['.', ';', ','])
        .to_ascii_lowercase();
    // `theoldreader.com` is The Old Reader; a host-like name is named by its first label.
    let via = match via.strip_suffix(".com") {
        Some(name) => name.to_string(),
        None => via,
    };
    if via.is_empty()
        || !via
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return None;
    }
    let feed_id = words
        .iter()
        .find_map(|w| {
            let lower = w.to_ascii_lowercase();
            let at = lower.find("feed-id")?;
            let id = w[at + "feed-id".len()..].trim_start_matches(['=', ':']);
            Some(id.trim_end_matches([';', ',', ')']).to_string())
        })
        .or_else(|| {
            let at = user_agent.find("/site/")?;
            let id: String = user_agent[at + 6..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            (!id.is_empty()).then_some(id)
        })
        .unwrap_or_default();
    Some(Stated {
        via,
        feed_id,
        subscribers,
    })
}

/// A reader as the store keys it: (output, via, key).
type ReaderKey = (String, String, String);

/// Sightings not yet in the store: the latest figure of each reader, and when.
#[derive(Default)]
pub(crate) struct Readers {
    pending: Mutex<HashMap<ReaderKey, (u64, DateTime<Utc>)>>,
    /// The store's salt for addresses, read once.
    salt: tokio::sync::OnceCell<String>,
}

impl Readers {
    /// A request for `output` answered to `address` with `user_agent`, at `now`.
    pub(crate) async fn saw(
        &self,
        store: &Store,
        output: &str,
        address: Option<IpAddr>,
        user_agent: &str,
        now: DateTime<Utc>,
    ) {
        let (via, key, count) = match stated(user_agent) {
            Some(s) => (s.via, s.feed_id, s.subscribers),
            None => {
                let Some(address) = address else { return };
                let Ok(salt) = self
                    .salt
                    .get_or_try_init(|| store.secret(crate::model::Secret::ReaderSalt))
                    .await
                else {
                    return;
                };
                let digest = Sha256::digest(format!("{salt}\n{address}\n{user_agent}"));
                (DIRECT_VIA.to_string(), hex::encode(&digest[..12]), 1)
            }
        };
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        pending.insert((output.to_string(), via, key), (count, now));
    }

    /// Writes what was seen to the store.
    pub(crate) async fn flush(&self, store: &Store, now: DateTime<Utc>) -> Result<(), StoreError> {
        let seen: Vec<ReaderSighting> = {
            let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            pending
                .drain()
                .map(|((output, via, key), (count, seen))| ReaderSighting {
                    output,
                    via,
                    key,
                    count,
                    seen,
                })
                .collect()
        };
        let kept = seen.clone();
        let recorded = store.record_readers(seen, now).await;
        if recorded.is_err() {
            // Not lost: written with the next flush (a sighting since then is newer and wins).
            let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            for s in kept {
                pending
                    .entry((s.output, s.via, s.key))
                    .or_insert((s.count, s.seen));
            }
        }
        recorded
    }
}

/// A Prometheus label value: `\`, `"` and newlines escaped.
#[cfg(test)]
mod tests {
    use super::*;

    fn said(via: &str, feed_id: &str, subscribers: u64) -> Option<Stated> {
        Some(Stated {
            via: via.into(),
            feed_id: feed_id.into(),
            subscribers,
        })
    }

    #[test]
    fn aggregators_are_read_in_their_own_words() {
        for (agent, expected) in [
            (
                "Feedly/1.0 (+http://www.feedly.com/fetcher.html; 312 subscribers; feed-id=a1b2c3)",
                said("feedly", "a1b2c3", 312),
            ),
            (
                "Feedly/1.0 (+http://www.feedly.com/fetcher.html; like FeedFetcher-Google; 1 subscriber)",
                said("feedly", "", 1),
            ),
            (
                "Inoreader/1.0 (+http://www.inoreader.com/feed-fetcher; 45 subscribers; )",
                said("inoreader", "", 45),
            ),
            (
                "NewsBlur Feed Fetcher - 12 subscribers - http://www.newsblur.com/site/6177521/planet-example \
                 (Mozilla/5.0 (Macintosh; Intel Mac OS X 10_11_1) AppleWebKit/601.2.4)",
                said("newsblur", "6177521", 12),
            ),
            (
                "Feedbin feed-id:1234567 - 56 subscribers",
                said("feedbin", "1234567", 56),
            ),
            (
                "theoldreader.com (7 subscribers; feed-id=5f2a)",
                said("theoldreader", "5f2a", 7),
            ),
            ("Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0", None),
            ("curl/8.5.0", None),
            ("Sneaky (lots subscribers)", None),
            ("", None),
        ] {
            assert_eq!(stated(agent), expected, "{agent}");
        }
    }
}
