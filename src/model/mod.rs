//! The nouns that cross stages: what a feed is, what an entry is, how an entry is known, and what
//! an output asks for. No I/O lives here; every stage can depend on this module and on nothing
//! else for its vocabulary.

mod cron;
mod hints;
mod list;
mod rewrite;
mod rules;
mod source;
mod store;
mod subscription;

use std::fmt;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use url::Url;

pub use cron::CronSchedule;
pub use hints::{FeedRhythm, Hints, Skip};
pub use list::{ListMember, ListSpec, ListState, Memberships, add_tags};
pub use rewrite::Rewrite;
pub use rules::{Field, Pattern, Rule, RuleTable, Rules, Words};
pub use source::{Pick, Pointer, Scrape, Source};
pub use store::{Backend, ClusterNode, is_server_url};
pub use subscription::{Subscription, SubscriptionState};

/// One configured feed, as the config describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedSpec {
    /// Where the feed is read from: `http(s)://` or `file://` (plain paths become `file://`),
    /// credentials included (they are for the feed's host, nobody else).
    pub url: Url,
    /// The feed's identity in the store: its URL without credentials (see [`feed_key`]).
    pub key: String,
    /// The operator's title, which wins over the feed's own.
    pub title: Option<String>,
    /// The operator's web page for it, which wins over the one the feed names.
    pub site: Option<String>,
    pub tags: Vec<String>,
    /// Overrides `[poll] schedule` for this feed.
    pub schedule: Option<CronSchedule>,
    /// Ignore the publisher's caching hints (max-age, ttl, …) for feeds that lie about them.
    pub ignore_hints: bool,
    /// Kept in the config and the store, but not polled and not shown.
    pub disabled: bool,
    /// Entries these rules reject are not stored.
    pub rules: Rules,
    /// Extra request headers, sent to the feed's own host only and never logged.
    pub headers: Vec<(String, String)>,
    /// Fetch each new entry's page and store its article as the content.
    pub full_text: bool,
    /// Applied in order to each new entry's content (and title), before rules and storage.
    pub rewrite: Vec<Rewrite>,
    /// A feed, or a page or JSON API read with selectors.
    pub source: Source,
    /// The language of its entries (a checked BCP 47 tag), over what the feed declares and
    /// what detection would say.
    pub lang: Option<String>,
    /// The zone its dates without one are local time in; `None`: UTC.
    pub timezone: Option<chrono_tz::Tz>,
    /// Its own limit for a whole fetch, over `[poll] timeout` (a slow server worth waiting for).
    pub timeout: Option<std::time::Duration>,
    /// The HTTP proxy every request for this feed goes through (its pages too), credentials
    /// included; `None`: straight to the host.
    pub proxy: Option<Url>,
    /// The subscription list it came from (its key), when no `[[feed]]` names it: its URL is
    /// then one from content, guarded as such.
    pub list: Option<String>,
}

/// What the store remembers about a feed between polls.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeedState {
    pub id: i64,
    pub url: String,
    /// The feed's own title, link and id, as last parsed.
    pub title: Option<String>,
    pub site_url: Option<String>,
    pub feed_id: Option<String>,
    pub validators: Validators,
    /// SHA-256 of the last body parsed; an identical body is not parsed again.
    pub body_hash: Option<String>,
    pub last_fetch: Option<DateTime<Utc>>,
    pub last_success: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
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

/// The host a fetch of `url` talks to, which per-host limits and host delays are keyed by
/// (`None` for local files, which have no host to be polite to). The one definition: the
/// spine, the schedule and the store all key hosts by it.
pub(crate) fn host_key(url: &Url) -> Option<String> {
    matches!(url.scheme(), "http" | "https")
        .then(|| url.host_str().map(str::to_ascii_lowercase))
        .flatten()
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
    pub at: DateTime<Utc>,
    pub kind: FailureKind,
    pub message: String,
}

/// What the store remembers about an output: whether its last render could be written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct OutputState {
    pub path: String,
    /// Why the last render was not written; `None` once one was.
    pub last_error: Option<String>,
    #[serde(serialize_with = "crate::model::json_time::option")]
    pub failing_since: Option<DateTime<Utc>>,
    pub failures: u32,
    /// When its file last changed.
    #[serde(serialize_with = "crate::model::json_time::option")]
    pub last_written: Option<DateTime<Utc>>,
}

/// HTTP cache validators (RFC 9110 §8.8) sent back on the next request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Validators {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

/// Feed-level facts from one parse.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeedMeta {
    pub title: Option<String>,
    pub site_url: Option<String>,
    pub id: Option<String>,
    /// What the document says about its update rhythm (ttl, sy:*, skipHours/Days).
    pub rhythm: FeedRhythm,
    /// What the document needed repaired before it could be read.
    pub repairs: Vec<Repair>,
    /// The language the feed declares (RSS `<language>`, `xml:lang`, JSON Feed `language`).
    pub language: Option<String>,
    /// The small square image the feed names for itself (Atom `icon`, JSON Feed `favicon`).
    pub icon: Option<String>,
    /// Its larger image (RSS `<image>`, Atom `logo`, JSON Feed `icon`, iTunes artwork), which
    /// serves as an icon when nothing smaller is found.
    pub logo: Option<String>,
    /// The WebSub hub the document names (`rel="hub"`, JSON Feed `hubs`) and the topic it is
    /// published under (`rel="self"`, JSON Feed `feed_url`).
    pub hub: Option<String>,
    pub topic: Option<String>,
}

/// A feed's icon as the store keeps it between looks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IconState {
    /// Where the image was found; `None` when nothing was.
    pub url: Option<String>,
    /// The image last found, kept (and shown) while a later look fails.
    pub image: Option<IconImage>,
    /// For the next conditional request of `url`.
    pub validators: Validators,
    pub checked: DateTime<Utc>,
    /// Why the last look found nothing; `None` when it did.
    pub error: Option<String>,
}

/// An icon image the store holds: named by a hash of its bytes, so a changed image is a new
/// name (and a cached copy is never stale) and feeds sharing one image share its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IconImage {
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

/// One entry as parsed and normalized: UTF-8, sanitized HTML, absolute URLs, plain-text title.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// The feed's own id/guid for the entry, when it gave one.
    pub guid: Option<String>,
    pub link: Option<String>,
    pub title: String,
    pub author: Option<Person>,
    /// Sanitized HTML.
    pub summary: Option<String>,
    /// Sanitized HTML.
    pub content: Option<String>,
    pub published: Option<DateTime<Utc>>,
    pub updated: Option<DateTime<Utc>>,
    pub categories: Vec<String>,
    pub enclosures: Vec<Enclosure>,
    /// Where `content` came from: the feed, or (`[[feed]] full_text`) the entry's page. Not
    /// part of the entry's content hash: that hash is of what the feed says.
    pub full_text: FullText,
    /// Its language and where that came from; `None` when nobody said and the text did not
    /// show it.
    pub language: Option<Language>,
}

/// An entry's language: a checked BCP 47 tag, and who said it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Language {
    pub tag: String,
    pub source: LanguageSource,
}

/// Where an entry's language came from, most trusted first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LanguageSource {
    /// The feed's `lang` in the config.
    Config,
    /// The language the feed declares (RSS `<language>`, Atom `xml:lang`, JSON Feed
    /// `language`), when it is a registered tag.
    Feed,
    /// Read from the entry's text.
    Detected,
}

impl LanguageSource {
    pub fn as_str(self) -> &'static str {
        match self {
            LanguageSource::Config => "config",
            LanguageSource::Feed => "feed",
            LanguageSource::Detected => "detected",
        }
    }

    pub fn parse(name: &str) -> Option<LanguageSource> {
        [
            LanguageSource::Config,
            LanguageSource::Feed,
            LanguageSource::Detected,
        ]
        .into_iter()
        .find(|s| s.as_str() == name)
    }
}

/// Where an entry's content came from, for feeds with `full_text`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum FullText {
    /// The feed's own text (full text not asked for, or the entry has no web page).
    #[default]
    Feed,
    /// The article extracted from the entry's page; the feed's own text is the summary.
    Page,
    /// The page could not be read or held no article: the feed's text stands. Tried `tries`
    /// times; a failure is tried again once, at a later poll.
    Failed { error: String, tries: u32 },
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Person {
    pub name: String,
    pub email: Option<String>,
    pub uri: Option<String>,
}

/// A podcast-style attachment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enclosure {
    pub url: String,
    pub mime_type: Option<String>,
    pub length: Option<u64>,
}

/// How an entry is known within its feed. The kind is part of the key so that a guid that
/// happens to equal some link never collides with a link-derived key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntryKey(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// The feed's guid / id.
    Guid,
    /// The canonical form of the entry's link.
    Link,
    /// A hash of title and content, for entries with neither.
    Hash,
}

impl KeyKind {
    fn prefix(self) -> &'static str {
        match self {
            KeyKind::Guid => "guid:",
            KeyKind::Link => "link:",
            KeyKind::Hash => "hash:",
        }
    }
}

impl EntryKey {
    pub fn new(kind: KeyKind, value: &str) -> Self {
        EntryKey(format!("{}{value}", kind.prefix()))
    }

    /// Rebuilds a key read back from the store.
    pub(crate) fn from_stored(s: String) -> Self {
        EntryKey(s)
    }

    pub fn kind(&self) -> KeyKind {
        [KeyKind::Guid, KeyKind::Link, KeyKind::Hash]
            .into_iter()
            .find(|k| self.0.starts_with(k.prefix()))
            .unwrap_or(KeyKind::Guid)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EntryKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An entry with its identity and a hash of everything the feed said about it, so that "seen
/// again unchanged" costs one comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct Keyed<T> {
    pub key: EntryKey,
    pub content_hash: String,
    /// The canonical form of the entry's link, for cross-feed duplicates.
    pub canonical_link: Option<String>,
    /// The fingerprint of the item it was parsed from, when known (see `parse::segments`).
    pub segment: Option<SegmentHash>,
    pub entry: T,
}

/// Longer guids are not identifiers but content pasted into the wrong element: dedupe does not
/// key by them, and the parser does not cut items by them.
pub(crate) const MAX_GUID_LEN: usize = 2048;

/// A fingerprint of one item of a feed document, as the parser cut it out.
pub type SegmentHash = u64;

/// An entry ready for the store.
pub type KeyedEntry = Keyed<Entry>;

/// An entry as stored, with the dates the store settled on.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEntry {
    pub id: i64,
    pub feed_id: i64,
    pub key: EntryKey,
    pub entry: Entry,
    /// The stable sort date: the feed's date, or first-seen when it had none or it lay in the future.
    pub published: DateTime<Utc>,
    /// Moves when the entry's content changes.
    pub updated: DateTime<Utc>,
    /// When Tributary first stored it (ties cross-feed duplicates to the feed that had it first).
    pub first_seen: DateTime<Utc>,
    /// The canonical form of its link, for cross-feed duplicates.
    pub canonical_link: Option<String>,
    /// Kept out of outputs: part of a new feed's back catalogue.
    pub hidden: bool,
    /// Its rank, newest first, among the entries of its feed's first poll (`None`: it came
    /// later); ranks past `poll.new_feed_entries` are the back catalogue.
    pub catalogue_rank: Option<usize>,
    /// It first arrived in a WebSub push, not a poll.
    pub pushed: bool,
}

/// The output formats Tributary can render.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Atom,
    Rss,
    Json,
    Html,
    Opml,
}

impl OutputFormat {
    pub(crate) const NAMES: &'static [&'static str] = &["atom", "rss", "json", "html", "opml"];

    /// Its name in the config (`format = "atom"`).
    pub fn name(self) -> &'static str {
        match self {
            OutputFormat::Atom => "atom",
            OutputFormat::Rss => "rss",
            OutputFormat::Json => "json",
            OutputFormat::Html => "html",
            OutputFormat::Opml => "opml",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "atom" => OutputFormat::Atom,
            "rss" => OutputFormat::Rss,
            "json" => OutputFormat::Json,
            "html" => OutputFormat::Html,
            "opml" => OutputFormat::Opml,
            _ => return None,
        })
    }

    /// The format a file name's extension says (`index.html`, `all.rss`), any case.
    pub(crate) fn from_extension(extension: &str) -> Option<Self> {
        Some(match extension.to_ascii_lowercase().as_str() {
            "atom" | "xml" => OutputFormat::Atom,
            "rss" => OutputFormat::Rss,
            "json" => OutputFormat::Json,
            "html" | "htm" => OutputFormat::Html,
            "opml" => OutputFormat::Opml,
            _ => return None,
        })
    }

    /// The media type outputs of this format are served with.
    pub fn content_type(self) -> &'static str {
        match self {
            OutputFormat::Atom => "application/atom+xml; charset=utf-8",
            OutputFormat::Rss => "application/rss+xml; charset=utf-8",
            OutputFormat::Json => "application/feed+json; charset=utf-8",
            OutputFormat::Html => "text/html; charset=utf-8",
            OutputFormat::Opml => "text/x-opml; charset=utf-8",
        }
    }

    /// Whether feed readers subscribe to it (it gets WebSub links and pings).
    pub(crate) fn is_feed(self) -> bool {
        matches!(self, OutputFormat::Atom | OutputFormat::Rss | OutputFormat::Json)
    }
}

/// Whether an output shows an entry carried by several feeds once (by canonical link).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrossFeedDedupe {
    Link,
    None,
}

/// Where an output's new entries are POSTed, signed as the Standard Webhooks specification
/// says (`[[output]] webhook`).
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSpec {
    pub url: Url,
    /// The signing key (the secret's base64, decoded).
    pub key: Vec<u8>,
    /// Most items one request carries.
    pub max_items: usize,
    /// How long a delivery is retried before it is given up.
    pub retry_for: std::time::Duration,
}

impl WebhookSpec {
    /// The webhook as the store and operators name it: its URL without credentials, query or
    /// fragment (where tokens live).
    pub fn name(&self) -> String {
        let mut shown = self.url.clone();
        let _ = shown.set_username("");
        let _ = shown.set_password(None);
        shown.set_query(None);
        shown.set_fragment(None);
        shown.to_string()
    }
}

impl fmt::Debug for WebhookSpec {
    // The key is a secret; the URL may carry a token: neither is printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookSpec")
            .field("url", &self.name())
            .field("max_items", &self.max_items)
            .field("retry_for", &self.retry_for)
            .finish_non_exhaustive()
    }
}

/// One merged output, as the config asks for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputSpec {
    /// Absolute path of the file to write; for an output without a file, its name
    /// (`webhook:URL`).
    pub path: PathBuf,
    /// Whether it writes a file (and is served); `false`: it only sends webhooks.
    pub file: bool,
    pub format: OutputFormat,
    pub title: String,
    /// At most this many entries, newest first.
    pub limit: usize,
    /// The feed-level id; stable across runs.
    pub id: String,
    /// The feeds it draws from (resolved from `tags` / `feeds`; every feed when neither).
    pub feeds: Vec<Url>,
    pub rules: Rules,
    pub dedupe: CrossFeedDedupe,
    /// A minijinja template replacing the built-in one (HTML only).
    pub template: Option<PathBuf>,
    /// The web page the output belongs to (RSS `<link>`, JSON Feed `home_page_url`).
    pub link: Option<String>,
    pub description: Option<String>,
    /// A small square image readers show beside the output's name (Atom `icon`, JSON Feed
    /// `favicon`, the page's `<link rel="icon">`), and a larger one (Atom `logo`, RSS
    /// `<image>`, JSON Feed `icon`): absolute URLs, or relative to the output's own address
    /// (and left relative when it has none).
    pub icon: Option<String>,
    pub logo: Option<String>,
    /// Where subscribers fetch it: `[serve] base_url` + the file name, when a base is set.
    pub self_url: Option<String>,
    /// The language of the page (its `lang`, the words of its dates); `None`: English.
    pub lang: Option<String>,
    /// The time zone the page groups and prints dates in; `None`: UTC.
    pub timezone: Option<chrono_tz::Tz>,
    /// Language ranges (`en`, `zh`, `*`) an entry's language must fall in to be shown; empty:
    /// every entry, whatever its language.
    pub languages: Vec<String>,
    /// Where its newly visible entries are POSTed.
    pub webhooks: Vec<WebhookSpec>,
    /// A command (program and arguments) run after its file changed; empty: none.
    pub on_change: Vec<String>,
    /// html: show how many readers each subscribe link's output has.
    pub show_readers: bool,
}

impl OutputSpec {
    /// The file name, which is also the path it is served at.
    pub fn file_name(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}

/// `n` and the noun that goes with it: "1 feed", "2 feeds", "0 feeds".
pub fn counted(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// A time as Tributary writes it for machines: RFC 3339 in UTC to the second
/// (`2026-12-07T07:07:41Z`), the one form of every JSON answer and every feed format that
/// takes RFC 3339. Sub-second digits would make equal times look different to readers.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The earlier of two times either of which may be missing (`Option::min` would take a
/// missing one as the earliest).
pub fn earliest(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// A time as Tributary writes it for people (logs' messages, `feeds`, the STATUS line, holds):
/// `2026-12-07 07:07:41 UTC`, the one human form; tables say "5m ago" instead.
pub fn human_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// Serde's `serialize_with` for times in JSON answers, in [`rfc3339`]'s form.
pub mod json_time {
    use chrono::{DateTime, Utc};

    pub fn serialize<S: serde::Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::rfc3339(*t))
    }

    /// The same, for a time that may not be known (`null`).
    pub fn option<S: serde::Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => serialize(t, s),
            None => s.serialize_none(),
        }
    }
}

/// A name-based `urn:uuid:` (the first 128 bits of SHA-256 of `name`): the same name always
/// gives the same id, which is what Atom ids and stable output ids need.
pub(crate) fn stable_urn(name: &str) -> String {
    let h = hex::encode(&Sha256::digest(name.as_bytes())[..16]);
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Query parameters that only track the reader, never select the content.
const TRACKING_PARAMS: &[&str] = &[
    "fbclid",
    "gclid",
    "dclid",
    "gbraid",
    "wbraid",
    "msclkid",
    "yclid",
    "mc_cid",
    "mc_eid",
    "igshid",
    "_hsenc",
    "_hsmi",
    "mkt_tok",
    "oly_anon_id",
    "oly_enc_id",
    "vero_id",
    "rb_clickid",
    "s_cid",
];

/// The form of a URL used to compare links: lowercase scheme and host, no default port, no
/// fragment, no tracking parameters. Unparseable input is returned trimmed, as is.
pub fn canonical_url(link: &str) -> String {
    let Ok(mut url) = Url::parse(link.trim()) else {
        return link.trim().to_string();
    };
    // The url crate already lowercases scheme and host and drops default ports.
    url.set_fragment(None);
    if url.query().is_some() {
        let kept: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(k, _)| {
                let k = k.to_ascii_lowercase();
                !k.starts_with("utm_") && !TRACKING_PARAMS.contains(&k.as_str())
            })
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        if kept.is_empty() {
            url.set_query(None);
        } else {
            url.query_pairs_mut().clear().extend_pairs(kept);
        }
    }
    url.to_string()
}

/// What stays the same across spellings of one feed's URL: [`canonical_url`] (case, default
/// port, fragment, tracking parameters), and neither `http` against `https` nor a trailing
/// slash. Two configured URLs with one identity are one feed under a new spelling.
pub fn feed_identity(url: &str) -> String {
    let canonical = canonical_url(url);
    let rest = canonical
        .strip_prefix("https://")
        .or_else(|| canonical.strip_prefix("http://"))
        .unwrap_or(&canonical);
    // A trailing slash before the query (or at the end) names the same resource.
    match rest.split_once('?') {
        Some((path, query)) => format!("{}?{query}", path.trim_end_matches('/')),
        None => rest.trim_end_matches('/').to_string(),
    }
}

/// A feed's identity: its URL without user name and password. Credentials are never written to
/// the store, and rotating a password leaves the feed the same feed.
pub(crate) fn feed_key(url: &Url) -> String {
    if url.username().is_empty() && url.password().is_none() {
        return url.to_string();
    }
    let mut bare = url.clone();
    let _ = bare.set_username("");
    let _ = bare.set_password(None);
    bare.to_string()
}

/// A URL as it may appear in logs, reports and outputs: without a password (credentials in a
/// feed URL are for the feed's host, nobody else).
pub(crate) fn display_url(url: &Url) -> String {
    if url.password().is_some() {
        let mut shown = url.clone();
        let _ = shown.set_password(Some("***"));
        shown.to_string()
    } else {
        url.to_string()
    }
}
