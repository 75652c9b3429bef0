//! Outputs: what an `[[output]]` asks for (format, selection, webhooks) and what the store
//! keeps of each.

use super::*;

/// What the store remembers about an output: whether its last render could be written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct OutputState {
    pub(crate) path: String,
    /// Why the last render was not written; `None` once one was.
    pub(crate) last_error: Option<String>,
    #[serde(serialize_with = "crate::model::json_time::option")]
    pub(crate) failing_since: Option<DateTime<Utc>>,
    pub(crate) failures: u32,
    /// When its file last changed.
    #[serde(serialize_with = "crate::model::json_time::option")]
    pub(crate) last_written: Option<DateTime<Utc>>,
}

/// The output formats Tributary can render.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OutputFormat {
    Atom,
    Rss,
    Json,
    Html,
    Opml,
}

impl OutputFormat {
    pub(crate) const NAMES: &'static [&'static str] = &["atom", "rss", "json", "html", "opml"];

    /// Its name in the config (`format = "atom"`).
    pub(crate) fn name(self) -> &'static str {
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
    pub(crate) fn content_type(self) -> &'static str {
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
pub(crate) enum CrossFeedDedupe {
    Link,
    None,
}

/// Where an output's new entries are POSTed, signed as the Standard Webhooks specification
/// says (`[[output]] webhook`).
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSpec {
    pub(crate) url: Url,
    /// The signing key (the secret's base64, decoded).
    pub(crate) key: Vec<u8>,
    /// Most items one request carries.
    pub(crate) max_items: usize,
    /// How long a delivery is retried before it is given up.
    pub(crate) retry_for: std::time::Duration,
}

impl WebhookSpec {
    /// The webhook as the store and operators name it: its URL without credentials, query or
    /// fragment (where tokens live).
    pub fn name(&self) -> String {
        let mut shown = super::without_credentials(&self.url);
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
    pub(crate) file: bool,
    pub(crate) format: OutputFormat,
    pub(crate) title: String,
    /// At most this many entries, newest first.
    pub(crate) limit: usize,
    /// The feed-level id; stable across runs.
    pub(crate) id: String,
    /// The feeds it draws from (resolved from `tags` / `feeds`; every feed when neither).
    pub(crate) feeds: Vec<Url>,
    pub rules: Rules,
    pub(crate) dedupe: CrossFeedDedupe,
    /// A minijinja template replacing the built-in one (HTML only).
    pub(crate) template: Option<PathBuf>,
    /// The web page the output belongs to (RSS `<link>`, JSON Feed `home_page_url`).
    pub(crate) link: Option<String>,
    pub(crate) description: Option<String>,
    /// A small square image readers show beside the output's name (Atom `icon`, JSON Feed
    /// `favicon`, the page's `<link rel="icon">`), and a larger one (Atom `logo`, RSS
    /// `<image>`, JSON Feed `icon`): absolute URLs, or relative to the output's own address
    /// (and left relative when it has none).
    pub(crate) icon: Option<String>,
    pub(crate) logo: Option<String>,
    /// Where subscribers fetch it: `[serve] base_url` + the file name, when a base is set.
    pub(crate) self_url: Option<String>,
    /// The language of the page (its `lang`, the words of its dates); `None`: English.
    pub(crate) lang: Option<String>,
    /// The time zone the page groups and prints dates in; `None`: UTC.
    pub(crate) timezone: Option<chrono_tz::Tz>,
    /// Language ranges (`en`, `zh`, `*`) an entry's language must fall in to be shown; empty:
    /// every entry, whatever its language.
    pub(crate) languages: Vec<String>,
    /// Where its newly visible entries are POSTed.
    pub webhooks: Vec<WebhookSpec>,
    /// A command (program and arguments) run after its file changed; empty: none.
    pub(crate) on_change: Vec<String>,
    /// html: show how many readers each subscribe link's output has.
    pub(crate) show_readers: bool,
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
