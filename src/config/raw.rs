//! The serde mirror of the TOML file: exactly what the user wrote, with spans.
//!
//! Nothing here is interpreted; `validate` turns it into a `Config`. Unknown keys are not
//! silently ignored: `keys` reports each of them (with its place and a suggestion) before
//! these structs are filled, so the structs themselves let them pass.

use serde::Deserialize;
use toml::Spanned;

#[derive(Debug, Default, Deserialize)]
pub(super) struct RawConfig {
    #[serde(default)]
    pub store: RawStore,
    #[serde(default)]
    pub poll: RawPoll,
    #[serde(default)]
    pub feed: Vec<RawFeed>,
    #[serde(default)]
    pub output: Vec<RawOutput>,
    pub serve: Option<RawServe>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct RawServe {
    pub listen: Option<Spanned<String>>,
    pub base_url: Option<Spanned<String>>,
    pub websub_hub: Option<Spanned<String>>,
    pub max_connections: Option<Spanned<i64>>,
    pub header_timeout: Option<Spanned<String>>,
    pub idle_timeout: Option<Spanned<String>>,
}

/// A rule as written: a bare regex (any field) or `{ title = "regex" }` for one field;
/// `validate` tells them apart (keeping the span, which an untagged enum would lose).
pub(super) type RawRule = Spanned<toml::Value>;

#[derive(Debug, Default, Deserialize)]
pub(super) struct RawStore {
    pub path: Option<Spanned<String>>,
    pub keep_days: Option<Spanned<i64>>,
    pub keep_per_feed: Option<Spanned<i64>>,
    pub housekeeping: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct RawPoll {
    pub concurrency: Option<Spanned<i64>>,
    pub timeout: Option<Spanned<String>>,
    pub user_agent: Option<Spanned<String>>,
    pub max_body: Option<Spanned<String>>,
    pub new_feed_entries: Option<Spanned<i64>>,
    pub deny_private_networks: Option<bool>,
    pub allow_files: Option<bool>,
    pub schedule: Option<Spanned<String>>,
    pub jitter: Option<Spanned<String>>,
    pub per_host: Option<Spanned<i64>>,
    pub shutdown_grace: Option<Spanned<String>>,
    pub give_up_after: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
pub(super) struct RawFeed {
    pub url: Spanned<String>,
    pub title: Option<Spanned<String>>,
    #[serde(default)]
    pub tags: Vec<Spanned<String>>,
    pub schedule: Option<Spanned<String>>,
    pub ignore_hints: Option<bool>,
    /// Extra request headers (API keys, bearer tokens), sent to the feed's host only.
    #[serde(default)]
    pub headers: Option<Spanned<std::collections::BTreeMap<String, String>>>,
    #[serde(default)]
    pub include: Vec<RawRule>,
    #[serde(default)]
    pub exclude: Vec<RawRule>,
}

#[derive(Debug, Deserialize)]
pub(super) struct RawOutput {
    pub path: Spanned<String>,
    pub format: Option<Spanned<String>>,
    pub title: Option<Spanned<String>>,
    pub limit: Option<Spanned<i64>>,
    pub id: Option<Spanned<String>>,
    #[serde(default)]
    pub tags: Vec<Spanned<String>>,
    #[serde(default)]
    pub feeds: Vec<Spanned<String>>,
    #[serde(default)]
    pub include: Vec<RawRule>,
    #[serde(default)]
    pub exclude: Vec<RawRule>,
    pub dedupe: Option<Spanned<String>>,
    pub template: Option<Spanned<String>>,
    pub link: Option<Spanned<String>>,
    pub description: Option<Spanned<String>>,
}
