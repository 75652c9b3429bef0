//! Owns the configuration: TOML text → raw serde mirror (`raw`) → validated [`Config`].
//!
//! Validation resolves relative paths against the config file's directory, parses durations
//! and sizes, and collects *every* problem it finds, each naming file, line, column and key.
//! Nothing downstream ever sees an unvalidated value.
//!
//! Its rooms: `types` (the validated [`Config`] and its sections), `raw` (the serde mirror),
//! `keys` (the known keys, for suggestions and the schema), `include` (`include` files),
//! `secrets` (`${…}` references), `validate` (one file per section), `error` (problems with
//! their places). This file holds the defaults and the loading.

mod error;
mod include;
pub(crate) mod keys;
mod raw;
mod secrets;
#[cfg(test)]
mod tests;
pub(crate) mod types;
mod validate;

use std::path::{Path, PathBuf};
use std::time::Duration;

use url::Url;

use error::Locator;
pub(crate) use error::{ConfigError, Problem};
pub(crate) use keys::schema;
use raw::RawConfig;
pub(crate) use secrets::Secrets;
pub(crate) use types::*;
use validate::Validator;

use crate::model::{
    CronSchedule, CrossFeedDedupe, FeedSpec, Field, ListSpec, Memberships, OutputFormat, OutputSpec, Pattern,
    Pick, Pointer, Rewrite, Rule, RuleTable, Rules, Scrape, Source, Words, add_tags,
};

/// The default User-Agent: who we are and where to read about us, so publishers can reach us.
pub(crate) const DEFAULT_USER_AGENT: &str = concat!(
    "tributary/",
    env!("CARGO_PKG_VERSION"),
    " (+",
    env!("CARGO_PKG_REPOSITORY"),
    ")"
);

pub(crate) const DEFAULT_CONCURRENCY: usize = 32;
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
pub(crate) const DEFAULT_MAX_BODY: u64 = 10 * 1024 * 1024;
pub(crate) const DEFAULT_OUTPUT_LIMIT: usize = 100;
pub(crate) const DEFAULT_STORE_PATH: &str = "tributary.db";
pub(crate) const DEFAULT_SCHEDULE: &str = "*/15 * * * *";
pub(crate) const DEFAULT_JITTER: Duration = Duration::from_secs(5 * 60);
pub(crate) const DEFAULT_PER_HOST: usize = 2;
pub(crate) const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
pub(crate) const DEFAULT_KEEP_DAYS: u32 = 365;
pub(crate) const DEFAULT_KEEP_PER_FEED: usize = 1000;
pub(crate) const DEFAULT_HOUSEKEEPING: &str = "23 * * * *";
pub(crate) const DEFAULT_NEW_FEED_ENTRIES: usize = 10;
pub(crate) const DEFAULT_MAX_CONNECTIONS: usize = 1024;
pub(crate) const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
pub(crate) const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
pub(crate) const DEFAULT_GIVE_UP_AFTER: Duration = Duration::from_secs(30 * 24 * 60 * 60);
/// Half a year without a new entry: a blog its author stopped writing (Planet Venus's
/// `activity_threshold` default).
pub(crate) const DEFAULT_INACTIVE_AFTER: Duration = Duration::from_secs(180 * 24 * 60 * 60);

impl Config {
    /// Reads and validates the config file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Self::parse(path, &read(path)?)
    }

    /// Validates config `text` as if read from `path` (relative paths resolve against its directory).
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        Self::parse_with(path, text, &Secrets::from_process())
    }

    /// Reads and validates the config file at `path`, its subscription lists expanded to the
    /// feeds `members` lists (the store's last good member sets): the config as it is polled.
    pub fn load_with_lists(path: &Path, members: &Memberships) -> Result<Config, ConfigError> {
        Self::parse_full(path, &read(path)?, &Secrets::from_process(), members)
    }

    /// [`Config::parse`] with the places secrets are read from given (tests).
    pub(crate) fn parse_with(path: &Path, text: &str, secrets: &Secrets) -> Result<Config, ConfigError> {
        Self::parse_full(path, text, secrets, &Memberships::new())
    }

    fn parse_full(
        path: &Path,
        text: &str,
        secrets: &Secrets,
        members: &Memberships,
    ) -> Result<Config, ConfigError> {
        // One name for the file everywhere: the absolute path it was read from.
        let path = &std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let base = base_dir(path);
        let mut locator = Locator::new(path, text);
        let included = include::gather(path, &base, &mut locator);
        let (raw, mut problems): (RawConfig, Vec<Problem>) = raw::read(locator.source(), &locator);
        problems.extend(included);
        // Every file read: a change to an included one is a change of the config.
        let fingerprint = fingerprint(locator.source());
        Validator {
            file: path.to_path_buf(),
            locator,
            base,
            problems,
            warnings: Vec::new(),
            seen_urls: std::collections::HashMap::new(),
            files_refused: false,
            secrets,
            members,
            uses_secrets: false,
            places: std::collections::HashMap::new(),
        }
        .validate(path, raw, fingerprint)
    }
}

/// The text of the config file at `path`, or why it cannot be read.
fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|e| ConfigError {
        partial: None,
        problems: vec![Problem {
            file: path.to_path_buf(),
            line: 0,
            column: 0,
            key: String::new(),
            message: format!("cannot read config: {e}"),
        }],
    })
}

fn base_dir(config_path: &Path) -> PathBuf {
    let dir = config_path.parent().unwrap_or(Path::new(""));
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf())
}

fn fingerprint(text: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(&Sha256::digest(text.as_bytes())[..12])
}
