//! Every key the config understands, and the walk that finds the ones it does not.
//!
//! serde stops at the first unknown field; operators deserve every problem at once, each with
//! its place and, for a typo, the key they meant. So unknown keys are found here, on the
//! spanned TOML tree, before deserializing (which then ignores them), and validation can go
//! on to report its own problems alongside.

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::error::{Locator, Problem};

pub(super) const TOP: &[&str] = &["store", "poll", "feed", "output", "serve"];
pub(super) const STORE: &[&str] = &["path", "keep_days", "keep_per_feed", "housekeeping"];
pub(super) const POLL: &[&str] = &[
    "concurrency",
    "timeout",
    "user_agent",
    "max_body",
    "new_feed_entries",
    "deny_private_networks",
    "allow_files",
    "schedule",
    "jitter",
    "per_host",
    "shutdown_grace",
    "give_up_after",
];
pub(super) const FEED: &[&str] = &[
    "url",
    "title",
    "tags",
    "schedule",
    "ignore_hints",
    "headers",
    "include",
    "exclude",
];
pub(super) const OUTPUT: &[&str] = &[
    "path",
    "format",
    "title",
    "limit",
    "id",
    "tags",
    "feeds",
    "include",
    "exclude",
    "dedupe",
    "template",
    "link",
    "description",
];
pub(super) const SERVE: &[&str] = &[
    "listen",
    "base_url",
    "websub_hub",
    "max_connections",
    "header_timeout",
    "idle_timeout",
];

/// Problems for every key of `text` that is not in the schema (empty when the text is not
/// valid TOML: deserializing reports that).
pub(super) fn unknown_keys(text: &str, locator: &Locator<'_>) -> Vec<Problem> {
    let Ok(root) = DeTable::parse(text) else {
        return Vec::new();
    };
    let mut problems = Vec::new();
    let mut check = |table: &DeTable<'_>, known: &[&str], path: &str| {
        for key in table.keys() {
            let name: &str = key.get_ref();
            if !known.contains(&name) {
                let full = if path.is_empty() {
                    name.to_string()
                } else {
                    format!("{path}.{name}")
                };
                let mut message = format!("unknown key `{name}`");
                if let Some(close) = suggestion(name, known) {
                    message.push_str(&format!("; did you mean `{close}`?"));
                } else {
                    message.push_str(&format!("; expected one of: {}", known.join(", ")));
                }
                problems.push(locator.problem(key.span(), full, message));
            }
        }
    };
    let top = root.get_ref();
    check(top, TOP, "");
    for (name, known) in [("store", STORE), ("poll", POLL), ("serve", SERVE)] {
        if let Some(table) = top.get(name).and_then(|v| v.get_ref().as_table()) {
            check(table, known, name);
        }
    }
    for (name, known) in [("feed", FEED), ("output", OUTPUT)] {
        if let Some(DeValue::Array(items)) = top.get(name).map(Spanned::get_ref) {
            for (i, item) in items.iter().enumerate() {
                if let Some(table) = item.get_ref().as_table() {
                    check(table, known, &format!("{name}[{}]", i + 1));
                }
            }
        }
    }
    problems
}

/// The known key closest to `typo`, when it is close enough to be what was meant.
fn suggestion<'k>(typo: &str, known: &[&'k str]) -> Option<&'k str> {
    known
        .iter()
        .map(|k| (strsim::damerau_levenshtein(typo, k), *k))
        .filter(|(d, k)| *d <= (k.len() / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_for_typos() {
        assert_eq!(suggestion("concurency", POLL), Some("concurrency"));
        assert_eq!(suggestion("timout", POLL), Some("timeout"));
        assert_eq!(suggestion("xyz", POLL), None);
    }

    /// Every listed key is a field the deserializer reads (none is silently ignored).
    #[test]
    fn every_listed_key_is_read() {
        let text = "[store]\npath = \"x\"\nkeep_days = 1\nkeep_per_feed = 1\nhousekeeping = \"@hourly\"\n\
                    [poll]\nconcurrency = 1\ntimeout = \"1s\"\nuser_agent = \"u\"\nmax_body = \"1MiB\"\n\
                    new_feed_entries = 1\ndeny_private_networks = true\nschedule = \"@hourly\"\njitter = \"1s\"\n\
                    per_host = 1\nshutdown_grace = \"1s\"\n\
                    [serve]\nlisten = \"127.0.0.1:1\"\nbase_url = \"http://x/\"\nwebsub_hub = \"http://h/\"\n\
                    [[feed]]\nurl = \"a\"\ntitle = \"t\"\ntags = []\nschedule = \"@hourly\"\nignore_hints = true\n\
                    headers = {}\ninclude = []\nexclude = []\n\
                    [[output]]\npath = \"o\"\nformat = \"atom\"\ntitle = \"t\"\nlimit = 1\nid = \"urn:x\"\ntags = []\n\
                    feeds = []\ninclude = []\nexclude = []\ndedupe = \"link\"\ntemplate = \"t\"\nlink = \"http://x/\"\n\
                    description = \"d\"\n";
        let locator = Locator::new(std::path::Path::new("t.toml"), text);
        assert!(unknown_keys(text, &locator).is_empty());
        let mut ignored = Vec::new();
        let de = toml::de::Deserializer::parse(text).unwrap();
        let _: super::super::raw::RawConfig =
            serde_ignored::deserialize(de, |path| ignored.push(path.to_string())).unwrap();
        assert!(ignored.is_empty(), "listed but not read: {ignored:?}");
    }
}
