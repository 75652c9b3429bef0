//! Feeds: what the config says of one (`FeedSpec`), what the store knows of it (`FeedState`),
//! how its polls fail, and what its documents say of it (`FeedMeta`, icons, validators).

use super::*;

/// One configured feed, as the config describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedSpec {
    /// Where the feed is read from: `http(s)://` or `file://` (plain paths become `file://`),
    /// credentials included (they are for the feed's host, nobody else).
    pub url: Url,
    /// The feed's identity in the store: its URL without credentials (see [`feed_key`]).
    pub key: String,
    /// The operator's title, which wins over the feed's own.
    pub(crate) title: Option<String>,
    /// The operator's web page for it, which wins over the one the feed names.
    pub(crate) site: Option<String>,
    pub(crate) tags: Vec<String>,
    /// Overrides `[poll] schedule` for this feed.
    pub(crate) schedule: Option<CronSchedule>,
    /// Ignore the publisher's caching hints (max-age, ttl, …) for feeds that lie about them.
    pub ignore_hints: bool,
    /// Kept in the config and the store, but not polled and not shown.
    pub(crate) disabled: bool,
    /// Entries these rules reject are not stored.
    pub(crate) rules: Rules,
    /// Extra request headers, sent to the feed's own host only and never logged.
    pub(crate) headers: Vec<(String, String)>,
    /// Fetch each new entry's page and store its article as the content.
    pub(crate) full_text: bool,
    /// Applied in order to each new entry's content (and title), before rules and storage.
    pub(crate) rewrite: Vec<Rewrite>,
    /// A feed, or a page or JSON API read with selectors.
    pub(crate) source: Source,
    /// The language of its entries (a checked BCP 47 tag), over what the feed declares and
    /// what detection would say.
    pub(crate) lang: Option<String>,
    /// The zone its dates without one are local time in; `None`: UTC.
    pub(crate) timezone: Option<chrono_tz::Tz>,
    /// Its own limit for a whole fetch, over `[poll] timeout` (a slow server worth waiting for).
    pub(crate) timeout: Option<std::time::Duration>,
    /// The HTTP proxy every request for this feed goes through (its pages too), credentials
    /// included; `None`: straight to the host.
    pub(crate) proxy: Option<Url>,
    /// The subscription list it came from (its key), when no `[[feed]]` names it: its URL is
    /// then one from content, guarded as such.
    pub(crate) list: Option<String>,
}

/// What the store remembers about a feed between polls.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeedState {
    /// The feed's id in the store.
    pub id: i64,
    /// The URL it is polled at, as configured.
    pub url: String,
    /// The feed's own title, link and id, as last parsed.
    pub title: Option<String>,
    /// The site the feed says it belongs to.
    pub site_url: Option<String>,
    /// The feed's own id (Atom `id`, JSON Feed `feed_url`), when it states one.
    pub feed_id: Option<String>,
    /// The last response's validators, sent back on the next poll.
    pub validators: Validators,
    /// SHA-256 of the last body parsed; an identical body is not parsed again.
    pub body_hash: Option<String>,
    /// When it was last fetched, whatever came of it.
    pub last_fetch: Option<DateTime<Utc>>,
    /// When a poll last succeeded.
    pub last_success: Option<DateTime<Utc>>,
    /// The last failure's message, while failing.
    pub last_error: Option<String>,
    /// Failures since the last success.
    pub consecutive_failures: u32,
    /// Start of the current run of failures.
    pub failing_since: Option<DateTime<Utc>>,
    /// The publisher's hints in force (Retry-After, freshness, skip times).
    pub hints: Hints,
    /// The feed's own stated update interval (RSS ttl, sy:updatePeriod), kept for 304s.
    pub rhythm: Option<std::time::Duration>,
    /// Where the feed lives now, after permanent redirects seen on consecutive polls.
    pub moved_to: Option<String>,
    /// Consecutive polls that ended in the same permanent redirect (not yet a move).
    pub moved_count: u32,
    /// When the server said 410 Gone; the feed is not polled again until the config changes.
    pub gone_at: Option<DateTime<Utc>>,
    /// What kind of failure the last one was (while `consecutive_failures > 0`).
    pub failure_kind: Option<FailureKind>,
    /// When the feed is due next, as the schedule computed it when its last poll was
    /// recorded; `None`: not scheduled (not configured, or gone).
    pub next_due: Option<DateTime<Utc>>,
    /// The scheduling policy `next_due` was computed under; a different one makes it stale.
    pub schedule_key: Option<String>,
    /// When the feed was reported abandoned (failing for `poll.give_up_after`), once.
    pub abandoned_at: Option<DateTime<Utc>>,
    /// What its last document needed repaired before it could be read.
    pub repairs: Vec<Repair>,
    /// The language the feed declares, as last parsed.
    pub language: Option<String>,
    /// The epoch of the claim this node holds on the feed in a shared store: its poll is
    /// recorded only while that claim stands. `None` outside a claim, and on SQLite.
    pub lease_epoch: Option<i64>,
    /// The URL its entries' output ids are made from, when that is not `url`: the feed was
    /// first stored under another spelling of its URL (or before a move), and readers must
    /// not see its entries again because the config now spells it differently.
    pub id_url: Option<String>,
    /// When its icon is to be looked for next; `None`: never looked for.
    pub icon_due: Option<DateTime<Utc>>,
    /// While its hub pushes it (an active WebSub subscription), until when: it is polled far
    /// less often until then.
    pub pushed_until: Option<DateTime<Utc>>,
}

/// Why a poll failed, in the terms the code that decides what to do next needs: how soon to
/// retry, whether the whole host is asking for a pause, whether to give up. It is decided once,
/// where the failure happens, and stored with the feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// No answer in time.
    Timeout,
    /// No connection: refused, reset, DNS, TLS.
    Connect,
    /// HTTP 5xx (other than a 503 with Retry-After, which is `RateLimited`).
    ServerError,
    /// HTTP 429, or 503 with Retry-After: the host asks everyone to slow down.
    RateLimited,
    /// HTTP 4xx other than 408, 410 and 429: this feed's address or access is wrong.
    ClientError,
    /// HTTP 410: the publisher removed the feed for good.
    Gone,
    /// The body exceeded `poll.max_body`.
    TooLarge,
    /// Refused by our own rules (private networks, redirects, unsupported schemes).
    Refused,
    /// The body is not a feed we can read.
    Parse,
    /// Our own trouble (memory budget, an internal error): says nothing about the feed.
    Internal,
}

impl FailureKind {
    pub(crate) const ALL: [FailureKind; 10] = [
        FailureKind::Timeout,
        FailureKind::Connect,
        FailureKind::ServerError,
        FailureKind::RateLimited,
        FailureKind::ClientError,
        FailureKind::Gone,
        FailureKind::TooLarge,
        FailureKind::Refused,
        FailureKind::Parse,
        FailureKind::Internal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Timeout => "timeout",
            FailureKind::Connect => "connect",
            FailureKind::ServerError => "server_error",
            FailureKind::RateLimited => "rate_limited",
            FailureKind::ClientError => "client_error",
            FailureKind::Gone => "gone",
            FailureKind::TooLarge => "too_large",
            FailureKind::Refused => "refused",
            FailureKind::Parse => "parse",
            FailureKind::Internal => "internal",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<FailureKind> {
        FailureKind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// Says something about the moment rather than about the feed: worth retrying soon.
    pub(crate) fn is_transient(self) -> bool {
        matches!(
            self,
            FailureKind::Timeout
                | FailureKind::Connect
                | FailureKind::ServerError
                | FailureKind::RateLimited
                | FailureKind::Internal
        )
    }
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A repair a document needed before it could be read: recorded on the feed, so an operator
/// can tell the publisher (`tributary feeds`, `explain`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Repair {
    /// Bare `&`, or HTML entities XML does not define, escaped.
    Entities,
    /// End tags that closed nothing dropped, elements they skipped over closed, items freed
    /// from elements left open.
    Structure,
    /// The document was cut off: what arrived is kept, open elements closed.
    Truncated,
    /// Markup written unescaped inside an RSS description read as its HTML.
    Markup,
    /// One odd element (an empty one, or a text of an unknown type) rewritten or dropped.
    Element,
    /// Elements nested deeper than a feed needs (a parser bomb) flattened: their text kept.
    Depth,
}

impl Repair {
    /// Its name in the store, the logs and `feeds`.
    pub fn as_str(self) -> &'static str {
        match self {
            Repair::Entities => "entities",
            Repair::Structure => "structure",
            Repair::Truncated => "truncated",
            Repair::Markup => "markup",
            Repair::Element => "element",
            Repair::Depth => "depth",
        }
    }

    /// What it means, for people.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Repair::Entities => "bare & or HTML entities escaped",
            Repair::Structure => "mismatched or stray end tags mended",
            Repair::Truncated => "cut-off document closed",
            Repair::Markup => "unescaped markup in descriptions read as HTML",
            Repair::Element => "an odd element rewritten or dropped",
            Repair::Depth => "elements nested hundreds deep flattened",
        }
    }

    /// As stored: names joined by commas; `None` for none.
    pub fn join(repairs: &[Repair]) -> Option<String> {
        (!repairs.is_empty()).then(|| repairs.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(","))
    }

    /// The stored form read back; unknown names are passed over.
    pub fn split(stored: Option<&str>) -> Vec<Repair> {
        stored
            .unwrap_or("")
            .split(',')
            .filter_map(|n| Repair::from_name(n.trim()))
            .collect()
    }

    pub(crate) fn from_name(name: &str) -> Option<Repair> {
        [
            Repair::Entities,
            Repair::Structure,
            Repair::Truncated,
            Repair::Markup,
            Repair::Element,
            Repair::Depth,
        ]
        .into_iter()
        .find(|r| r.as_str() == name)
    }
}

/// One failure in a feed's error history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FeedError {
    #[serde(serialize_with = "crate::model::json_time::serialize")]
    pub(crate) at: DateTime<Utc>,
    pub(crate) kind: FailureKind,
    pub(crate) message: String,
}

/// HTTP cache validators (RFC 9110 §8.8) sent back on the next request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Validators {
    pub(crate) etag: Option<String>,
    pub(crate) last_modified: Option<String>,
}

/// Feed-level facts from one parse.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeedMeta {
    /// The feed's title, plain text.
    pub title: Option<String>,
    pub(crate) site_url: Option<String>,
    pub(crate) id: Option<String>,
    /// What the document says about its update rhythm (ttl, sy:*, skipHours/Days).
    pub(crate) rhythm: FeedRhythm,
    /// What the document needed repaired before it could be read.
    pub repairs: Vec<Repair>,
    /// The language the feed declares (RSS `<language>`, `xml:lang`, JSON Feed `language`).
    pub(crate) language: Option<String>,
    /// The small square image the feed names for itself (Atom `icon`, JSON Feed `favicon`).
    pub(crate) icon: Option<String>,
    /// Its larger image (RSS `<image>`, Atom `logo`, JSON Feed `icon`, iTunes artwork), which
    /// serves as an icon when nothing smaller is found.
    pub(crate) logo: Option<String>,
    /// The WebSub hub the document names (`rel="hub"`, JSON Feed `hubs`) and the topic it is
    /// published under (`rel="self"`, JSON Feed `feed_url`).
    pub(crate) hub: Option<String>,
    pub(crate) topic: Option<String>,
}

/// A feed's icon as the store keeps it between looks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IconState {
    /// Where the image was found; `None` when nothing was.
    pub(crate) url: Option<String>,
    /// The image last found, kept (and shown) while a later look fails.
    pub(crate) image: Option<IconImage>,
    /// For the next conditional request of `url`.
    pub(crate) validators: Validators,
    pub(crate) checked: DateTime<Utc>,
    /// Why the last look found nothing; `None` when it did.
    pub(crate) error: Option<String>,
}

/// An icon image the store holds: named by a hash of its bytes, so a changed image is a new
/// name (and a cached copy is never stale) and feeds sharing one image share its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IconImage {
    /// A hash of its bytes (hex), which names it.
    pub hash: String,
    /// What its bytes are (sniffed, never what a server claimed): `image/png`, …
    pub media_type: String,
}

impl IconImage {
    /// The file it is written to and served as: `HASH.EXT`.
    pub fn file_name(&self) -> String {
        let ext = match self.media_type.as_str() {
            "image/png" => "png",
            "image/gif" => "gif",
            "image/jpeg" => "jpg",
            "image/webp" => "webp",
            _ => "ico",
        };
        format!("{}.{ext}", self.hash)
    }
}
