//! Every key the config understands, and the walk that finds the ones it does not.
//!
//! serde stops at the first unknown field; operators deserve every problem at once, each with
//! its place and, for a typo, the key they meant. So unknown keys are found here, on the
//! spanned TOML tree, before deserializing (which then ignores them), and validation can go
//! on to report its own problems alongside.

use toml::de::DeTable;

use super::error::{Locator, Problem};

/// Every table of the config and its keys (the schema the reference config documents).
/// (A table's keys may come in several lists: `[[feed]]` and `[[output]]` take the keys of
/// `[rules]` as well.)
pub fn schema() -> [(&'static str, &'static [&'static str]); 13] {
    [
        ("", MAIN),
        ("store", STORE),
        ("node", NODE),
        ("poll", POLL),
        ("serve", SERVE),
        ("websub", WEBSUB),
        ("feed", FEED),
        ("feed", RULES),
        ("list", LIST),
        ("list", RULES),
        ("output", OUTPUT),
        ("output", RULES),
        ("rules", RULES),
    ]
}

/// The keys at the top of the main file, before any table.
pub(super) const MAIN: &[&str] = &["include"];
pub(super) const TOP: &[&str] = &[
    "include", "store", "node", "poll", "feed", "list", "output", "serve", "websub", "rules",
];
/// The keys of a table of rules: `[rules]`, and each `[[feed]]` and `[[output]]` has them too
/// (besides [`FEED`]'s and [`OUTPUT`]'s own).
pub(super) const RULES: &[&str] = &[
    "include",
    "exclude",
    "include_words",
    "exclude_words",
    "include_words_file",
    "exclude_words_file",
    "ignore_diacritics",
];
pub(super) const STORE: &[&str] = &["path", "url", "keep_days", "keep_per_feed", "housekeeping"];
pub(super) const NODE: &[&str] = &["name", "lease"];
pub(super) const POLL: &[&str] = &[
    "concurrency",
    "timeout",
    "user_agent",
    "max_body",
    "new_feed_entries",
    "deny_private_networks",
    "allow_files",
    "icons",
    "announce_readers",
    "allow_networks",
    "resolve",
    "schedule",
    "jitter",
    "per_host",
    "shutdown_grace",
    "give_up_after",
    "inactive_after",
];
pub(super) const FEED: &[&str] = &[
    "url",
    "title",
    "site",
    "tags",
    "schedule",
    "ignore_hints",
    "full_text",
    "rewrite",
    "kind",
    "scrape",
    "disabled",
    "headers",
    "lang",
    "timezone",
    "timeout",
    "proxy",
];
/// The fields of a feed's `scrape` table (an inline table of selectors or JSON Pointers), in
/// the order `scrape_of` takes them.
pub(super) const SCRAPE: [&str; 6] = ["item", "link", "title", "date", "content", "author"];
pub(super) const OUTPUT: &[&str] = &[
    "path",
    "format",
    "title",
    "limit",
    "id",
    "tags",
    "feeds",
    "dedupe",
    "template",
    "link",
    "description",
    "icon",
    "logo",
    "url",
    "lang",
    "timezone",
    "languages",
    "webhook",
    "on_change",
    "show_readers",
];
pub(super) const WEBHOOK: &[&str] = &["url", "secret", "max_items", "retry_for"];
pub(super) const SERVE: &[&str] = &[
    "listen",
    "base_url",
    "websub_hub",
    "admin_listen",
    "max_connections",
    "header_timeout",
    "idle_timeout",
];

/// A `[[list]]`'s own keys (its feeds' defaults; it takes [`RULES`]' too).
pub(super) const LIST: &[&str] = &["url", "tags", "schedule", "full_text"];
pub(super) const WEBSUB: &[&str] = &["subscribe", "poll_every", "lease"];

/// Problems for every key of `table` (at `path`) that is not in `known`, each with its place
/// and, for a typo, the key that was meant.
pub(super) fn unknown(table: &DeTable<'_>, known: &[&str], path: &str, locator: &Locator) -> Vec<Problem> {
    unknown_in(table, &[known], path, locator)
}

/// [`unknown`] for a table whose keys are in several lists (a `[[feed]]`: its own and the
/// rules').
pub(super) fn unknown_in(
    table: &DeTable<'_>,
    lists: &[&[&str]],
    path: &str,
    locator: &Locator,
) -> Vec<Problem> {
    let known: Vec<&str> = lists.concat();
    let mut problems = Vec::new();
    for key in table.keys() {
        let name: &str = key.get_ref();
        if known.contains(&name) {
            continue;
        }
        let full = if path.is_empty() {
            name.to_string()
        } else {
            format!("{path}.{name}")
        };
        let mut message = format!("unknown key `{name}`");
        match suggestion(name, &known) {
            Some(close) => message.push_str(&format!("; did you mean `{close}`?")),
            None => message.push_str(&format!("; expected one of: {}", known.join(", "))),
        }
        problems.push(locator.problem(key.span(), full, message));
    }
    problems
}

/// The value of `known` closest to `typo`, when it is close enough to be what was meant: for
/// keys, and for the values of settings with a fixed set of them (`format = "atomm"`).
pub(super) fn did_you_mean(typo: &str, known: &[&str]) -> String {
    match suggestion(typo, known) {
        Some(close) => format!("; did you mean `{close}`?"),
        None => format!("; expected one of: {}", known.join(", ")),
    }
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
}
