//! The validator: the raw serde mirror → a [`Config`], every problem collected with its file,
//! line, column and key.
//!
//! One file per section of the config, each adding its methods to the one [`Validator`]
//! (which holds the problems found so far and the places they were found): `store` (with
//! `[node]`), `poll`, `feeds`, `lists`, `outputs` (with their webhooks), `rules`, `serve` (with
//! `[websub]`). This file walks the sections in order and holds the readers of values every
//! section uses (counts, durations, schedules, tags, languages, paths).

mod feeds;
mod lists;
mod outputs;
mod poll;
mod rules;
mod serve;
mod store;

use super::secrets::webhook_key;
use super::*;

/// The fields of a `scrape` table in [`keys::SCRAPE`] order, when the required two are there.
pub(super) fn scrape_of<P>([item, link, title, date, content, author]: [Option<P>; 6]) -> Option<Scrape<P>> {
    Some(Scrape {
        item: item?,
        link: link?,
        title,
        date,
        content,
        author,
    })
}

pub(super) fn default_listen() -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], 8080))
}

/// Loopback, on the port after the public one (port 0, "any", stays 0).
pub(super) fn default_admin_listen(listen: std::net::SocketAddr) -> std::net::SocketAddr {
    let port = if listen.port() == 0 {
        0
    } else {
        listen.port().wrapping_add(1)
    };
    std::net::SocketAddr::from(([127, 0, 0, 1], port))
}

/// The word a regex that failed to compile was probably meant to be, when it reads as a glob
/// (`*91视频*`, `casino?`) or a plain word: what `*_words` would take.
pub(super) fn glob_or_word(pattern: &str) -> Option<String> {
    let word = pattern.trim_matches(|c: char| matches!(c, '*' | '?' | '+') || c.is_whitespace());
    let plain = !word.is_empty() && !word.contains(|c: char| "\\^$.|()[]{}*?+".contains(c));
    plain.then(|| word.to_string())
}

/// Whether a source written as a relative path looks like a host name someone meant as a URL
/// (`example.org/feed.xml`): its first segment has a dot and ends in letters, like a domain.
pub(super) fn looks_like_a_host(text: &str) -> bool {
    let first = text.split(['/', '?', '#']).next().unwrap_or("");
    // An address, or a name with a port: `127.0.0.2:8701`, `feeds.example:8080`, `[::1]:80`.
    if let Some((host, port)) = first.rsplit_once(':')
        && !port.is_empty()
        && port.chars().all(|c| c.is_ascii_digit())
        && !host.is_empty()
    {
        return true;
    }
    if first.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    let Some((name, tld)) = first.rsplit_once('.') else {
        return false;
    };
    !name.is_empty()
        && !first.starts_with('.')
        && tld.len() >= 2
        && tld.chars().all(|c| c.is_ascii_alphabetic())
        && first
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'))
        && !matches!(
            tld.to_ascii_lowercase().as_str(),
            "xml" | "rss" | "atom" | "json" | "rdf" | "txt" | "html" | "htm" | "opml"
        )
}

/// Most items one webhook request carries, unless the webhook says.
pub(super) const DEFAULT_WEBHOOK_ITEMS: usize = 50;
/// How long a webhook delivery is retried, unless the webhook says.
pub(super) const DEFAULT_WEBHOOK_RETRY: Duration = Duration::from_secs(24 * 3600);

pub(super) struct Validator<'a> {
    pub(super) file: PathBuf,
    pub(super) locator: Locator,
    pub(super) base: PathBuf,
    pub(super) problems: Vec<Problem>,
    /// Things that work but are probably not what was meant.
    pub(super) warnings: Vec<Problem>,
    /// Feeds seen so far by canonical URL, with the URL as written.
    pub(super) seen_urls: std::collections::HashMap<String, String>,
    /// Local files are refused as sources (the private-network guard is on).
    pub(super) files_refused: bool,
    pub(super) secrets: &'a Secrets,
    /// What the subscription lists hold, by list key.
    pub(super) members: &'a Memberships,
    /// The file itself holds secrets (passwords in URLs, header values written out).
    pub(super) uses_secrets: bool,
    /// See [`Config::places`].
    pub(super) places: std::collections::HashMap<String, (PathBuf, usize, usize)>,
}

impl Validator<'_> {
    pub(super) fn validate(
        mut self,
        path: &Path,
        raw: RawConfig,
        fingerprint: String,
    ) -> Result<Config, ConfigError> {
        let url = self.store_url(raw.store.url, raw.store.path.is_some());
        let node = self.node(raw.node);
        let store = StoreConfig {
            url,
            path: match raw.store.path {
                Some(p) => self.path(p, "store.path"),
                None => self.base.join(DEFAULT_STORE_PATH),
            },
            keep_days: self
                .count(raw.store.keep_days, "store.keep_days", 0, 100_000)
                .map_or(DEFAULT_KEEP_DAYS, |n| n as u32),
            keep_per_feed: self
                .count(raw.store.keep_per_feed, "store.keep_per_feed", 0, 10_000_000)
                .unwrap_or(DEFAULT_KEEP_PER_FEED),
            housekeeping: self.cron(raw.store.housekeeping, "store.housekeeping", DEFAULT_HOUSEKEEPING),
        };
        let poll = self.poll(raw.poll);
        self.files_refused = poll.deny_private_networks && !poll.allow_files;
        let (feed_files, feeds): (Vec<PathBuf>, Vec<FeedSpec>) = raw
            .feed
            .into_iter()
            .enumerate()
            .filter_map(|(i, f)| {
                let file = self.locator.file_of(f.span.start).to_path_buf();
                self.feed(i + 1, f).map(|spec| (file, spec))
            })
            .unzip();
        let mut feeds = feeds;
        let mut feed_files = feed_files;
        let lists: Vec<ListSpec> = raw
            .list
            .into_iter()
            .enumerate()
            .filter_map(|(i, l)| self.list(i + 1, l))
            .collect();
        let lists = self.expand_lists(lists, &mut feeds);
        feed_files.resize(feeds.len(), path.to_path_buf());
        let serve = raw.serve.map(|s| self.serve(s));
        let base_url = serve.as_ref().and_then(|s: &ServeConfig| s.base_url.clone());
        let websub = self.websub(raw.websub, base_url.is_some());
        let planet = std::sync::Arc::new(match raw.rules {
            Some(rules) => self.rule_table(rules, "[rules]", "rules."),
            None => RuleTable::default(),
        });
        let (output_numbers, outputs): (Vec<usize>, Vec<OutputSpec>) = raw
            .output
            .into_iter()
            .enumerate()
            .filter_map(|(i, o)| {
                self.output(i + 1, o, &feeds, !lists.is_empty(), base_url.as_ref(), &planet)
                    .map(|spec| (i + 1, spec))
            })
            .unzip();
        self.distinct_outputs(&outputs, &output_numbers, serve.is_some());
        let config = Config {
            source: path.to_path_buf(),
            store,
            node,
            poll,
            outputs,
            lists,
            serve,
            websub,
            fingerprint,
            warnings: self.warnings,
            holds_secrets: self.uses_secrets,
            places: self.places,
            output_numbers,
            feed_files,
            feed_positions: feeds
                .iter()
                .enumerate()
                .map(|(i, f)| (f.key.clone(), i))
                .collect(),
            feeds,
        };
        if self.problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError {
                problems: self.problems,
                partial: Some(Box::new(config)),
            })
        }
    }

    /// An integer setting within `[min, max]`; `None` when absent or invalid (reported).
    pub(super) fn count(
        &mut self,
        raw: Option<toml::Spanned<i64>>,
        key: &str,
        min: i64,
        max: i64,
    ) -> Option<usize> {
        let value = raw?;
        let n = *value.get_ref();
        if n < min || n > max {
            self.report(value.span(), key, format!("must be between {min} and {max}"));
            return None;
        }
        usize::try_from(n).ok()
    }

    /// A duration such as "30s" or "2m"; `None` when absent or invalid (reported).
    pub(super) fn duration(
        &mut self,
        raw: Option<toml::Spanned<String>>,
        key: &str,
        zero_ok: bool,
    ) -> Option<Duration> {
        let value = raw?;
        match humantime::parse_duration(value.get_ref().trim()) {
            Ok(d) if zero_ok || !d.is_zero() => Some(d),
            Ok(_) => {
                self.report(value.span(), key, "must be longer than zero");
                None
            }
            Err(e) => {
                self.report(
                    value.span(),
                    key,
                    format!(
                        "`{}` is not a duration ({e}); write e.g. \"30s\" or \"2m\"",
                        value.get_ref()
                    ),
                );
                None
            }
        }
    }

    /// A cron expression; the default when absent, and when invalid (reported).
    pub(super) fn cron(
        &mut self,
        raw: Option<toml::Spanned<String>>,
        key: &str,
        default: &str,
    ) -> CronSchedule {
        self.cron_opt(raw, key).unwrap_or_else(|| {
            CronSchedule::parse(default).unwrap_or_else(|e| unreachable!("default cron: {e}"))
        })
    }

    pub(super) fn cron_opt(&mut self, raw: Option<toml::Spanned<String>>, key: &str) -> Option<CronSchedule> {
        let value = raw?;
        match CronSchedule::parse(value.get_ref()) {
            Ok(c) => Some(c),
            Err(e) => {
                self.report(value.span(), key, e);
                None
            }
        }
    }

    /// A table's `tags`: none empty.
    pub(super) fn tags(&mut self, raw: Vec<toml::Spanned<String>>, key: &str) -> Vec<String> {
        let mut tags = Vec::new();
        for tag in raw {
            if tag.get_ref().trim().is_empty() {
                self.report(tag.span(), key, "tags must not be empty");
            } else {
                tags.push(tag.into_inner());
            }
        }
        tags
    }

    /// A language tag (`lang`, `languages`), checked against the IANA registry and written in
    /// its canonical form.
    pub(super) fn language(&mut self, raw: Option<toml::Spanned<String>>, key: &str) -> Option<String> {
        let raw = raw?;
        match crate::text::language::checked(raw.get_ref()) {
            Ok(tag) => Some(tag),
            Err(e) => {
                self.report(raw.span(), key, e.to_string());
                None
            }
        }
    }

    /// An IANA time zone name (`timezone`).
    pub(super) fn timezone(
        &mut self,
        raw: Option<toml::Spanned<String>>,
        key: &str,
    ) -> Option<chrono_tz::Tz> {
        let raw = raw?;
        match raw.get_ref().parse::<chrono_tz::Tz>() {
            Ok(tz) => Some(tz),
            Err(_) => {
                let message = format!(
                    "`{}` is not an IANA time zone name such as \"Asia/Shanghai\", \"Europe/Paris\" or \"UTC\"",
                    raw.get_ref()
                );
                self.report(raw.span(), key, message);
                None
            }
        }
    }

    pub(super) fn path(&mut self, raw: toml::Spanned<String>, key: &str) -> PathBuf {
        self.places
            .insert(key.to_string(), self.locator.place(raw.span().start));
        let text = raw.get_ref();
        if text.trim().is_empty() {
            self.report(raw.span(), key, "must not be empty");
        }
        self.base.join(text)
    }

    pub(super) fn report(
        &mut self,
        span: std::ops::Range<usize>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) {
        self.problems.push(self.locator.problem(span, key, message));
    }

    pub(super) fn warn(
        &mut self,
        span: std::ops::Range<usize>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) {
        self.warnings.push(self.locator.problem(span, key, message));
    }
}
