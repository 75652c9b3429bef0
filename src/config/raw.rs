//! What the user wrote, with the place of every value: the TOML parser's spanned tree read
//! into plain structs, every problem of shape (an unknown key, a value of the wrong type, a
//! missing required key, a syntax error) noted with its place as it is found, so that one
//! run reports them all. Nothing here is interpreted; `validate` turns it into a `Config`.

use std::collections::BTreeMap;
use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::error::{Locator, Problem};
use super::keys;

#[derive(Debug, Default)]
pub(super) struct RawConfig {
    pub(crate) store: RawStore,
    pub(crate) node: RawNode,
    pub(crate) poll: RawPoll,
    pub(crate) feed: Vec<RawFeed>,
    pub(crate) list: Vec<RawList>,
    pub(crate) output: Vec<RawOutput>,
    pub(crate) serve: Option<RawServe>,
    pub(crate) websub: RawWebSub,
    /// `[rules]`: include / exclude rules for every output.
    pub(crate) rules: Option<RawRuleSet>,
}

/// Include / exclude rules as one table writes them (`[rules]`, a `[[feed]]`, an `[[output]]`).
#[derive(Debug, Default)]
pub(super) struct RawRuleSet {
    pub(crate) include: Vec<RawRule>,
    pub(crate) exclude: Vec<RawRule>,
    pub(crate) include_words: Vec<Spanned<String>>,
    pub(crate) exclude_words: Vec<Spanned<String>>,
    pub(crate) include_words_file: Option<Spanned<String>>,
    pub(crate) exclude_words_file: Option<Spanned<String>>,
    pub(crate) ignore_diacritics: Option<bool>,
}

#[derive(Debug, Default)]
pub(super) struct RawServe {
    pub(crate) listen: Option<Spanned<String>>,
    pub(crate) admin_listen: Option<Spanned<String>>,
    pub(crate) base_url: Option<Spanned<String>>,
    pub(crate) websub_hub: Option<Spanned<String>>,
    pub(crate) max_connections: Option<Spanned<i64>>,
    pub(crate) header_timeout: Option<Spanned<String>>,
    pub(crate) idle_timeout: Option<Spanned<String>>,
}

/// `[websub]`: subscribing to the hubs feeds name.
#[derive(Debug, Default)]
pub(super) struct RawWebSub {
    pub(crate) subscribe: Option<Spanned<bool>>,
    pub(crate) poll_every: Option<Spanned<String>>,
    pub(crate) lease: Option<Spanned<String>>,
}

/// A rule as written: a bare regex (any field) or `{ title = "regex" }` for one field;
/// `validate` tells them apart.
pub(super) type RawRule = Spanned<toml::Value>;

#[derive(Debug, Default)]
pub(super) struct RawStore {
    pub(crate) path: Option<Spanned<String>>,
    pub(crate) url: Option<Spanned<String>>,
    pub(crate) keep_days: Option<Spanned<i64>>,
    pub(crate) keep_per_feed: Option<Spanned<i64>>,
    pub(crate) housekeeping: Option<Spanned<String>>,
}

#[derive(Debug, Default)]
pub(super) struct RawNode {
    pub(crate) name: Option<Spanned<String>>,
    pub(crate) lease: Option<Spanned<String>>,
}

#[derive(Debug, Default)]
pub(super) struct RawPoll {
    pub(crate) concurrency: Option<Spanned<i64>>,
    pub(crate) timeout: Option<Spanned<String>>,
    pub(crate) user_agent: Option<Spanned<String>>,
    pub(crate) max_body: Option<Spanned<String>>,
    pub(crate) new_feed_entries: Option<Spanned<i64>>,
    pub(crate) deny_private_networks: Option<bool>,
    pub(crate) allow_files: Option<bool>,
    pub(crate) icons: Option<bool>,
    pub(crate) announce_readers: Option<bool>,
    pub(crate) allow_networks: Vec<Spanned<String>>,
    pub(crate) resolve: Option<Spanned<BTreeMap<String, Spanned<String>>>>,
    pub(crate) schedule: Option<Spanned<String>>,
    pub(crate) jitter: Option<Spanned<String>>,
    pub(crate) per_host: Option<Spanned<i64>>,
    pub(crate) shutdown_grace: Option<Spanned<String>>,
    pub(crate) give_up_after: Option<Spanned<String>>,
    pub(crate) inactive_after: Option<Spanned<String>>,
}

#[derive(Debug)]
pub(super) struct RawFeed {
    /// Where the `[[feed]]` table is, for problems that have no key of their own.
    pub(crate) span: Range<usize>,
    pub(crate) url: Option<Spanned<String>>,
    pub(crate) title: Option<Spanned<String>>,
    pub(crate) site: Option<Spanned<String>>,
    pub(crate) tags: Vec<Spanned<String>>,
    pub(crate) schedule: Option<Spanned<String>>,
    pub(crate) ignore_hints: Option<bool>,
    pub(crate) full_text: Option<bool>,
    pub(crate) disabled: Option<bool>,
    /// Extra request headers (API keys, bearer tokens), sent to the feed's host only.
    pub(crate) headers: Option<Spanned<BTreeMap<String, Spanned<String>>>>,
    pub(crate) rules: RawRuleSet,
    pub(crate) rewrite: Vec<RawRule>,
    pub(crate) kind: Option<Spanned<String>>,
    pub(crate) lang: Option<Spanned<String>>,
    pub(crate) timezone: Option<Spanned<String>>,
    pub(crate) timeout: Option<Spanned<String>>,
    pub(crate) proxy: Option<Spanned<String>>,
    /// Field name → selector or JSON Pointer.
    pub(crate) scrape: Option<Spanned<BTreeMap<String, Spanned<String>>>>,
}

/// `[[list]]`: an OPML subscription list, and the defaults of its feeds.
#[derive(Debug)]
pub(super) struct RawList {
    pub(crate) span: Range<usize>,
    pub(crate) url: Option<Spanned<String>>,
    pub(crate) tags: Vec<Spanned<String>>,
    pub(crate) schedule: Option<Spanned<String>>,
    pub(crate) full_text: Option<bool>,
    pub(crate) rules: RawRuleSet,
}

#[derive(Debug)]
pub(super) struct RawOutput {
    pub(crate) span: Range<usize>,
    pub(crate) path: Option<Spanned<String>>,
    pub(crate) format: Option<Spanned<String>>,
    pub(crate) title: Option<Spanned<String>>,
    pub(crate) limit: Option<Spanned<i64>>,
    pub(crate) id: Option<Spanned<String>>,
    pub(crate) tags: Vec<Spanned<String>>,
    pub(crate) feeds: Vec<Spanned<String>>,
    pub(crate) rules: RawRuleSet,
    pub(crate) dedupe: Option<Spanned<String>>,
    pub(crate) template: Option<Spanned<String>>,
    pub(crate) link: Option<Spanned<String>>,
    pub(crate) description: Option<Spanned<String>>,
    pub(crate) icon: Option<Spanned<String>>,
    pub(crate) logo: Option<Spanned<String>>,
    pub(crate) url: Option<Spanned<String>>,
    pub(crate) lang: Option<Spanned<String>>,
    pub(crate) timezone: Option<Spanned<String>>,
    pub(crate) languages: Vec<Spanned<String>>,
    pub(crate) webhooks: Vec<RawWebhook>,
    pub(crate) on_change: Vec<Spanned<String>>,
    pub(crate) show_readers: Option<bool>,
}

/// One `webhook = { … }` of an `[[output]]`.
#[derive(Debug, Default)]
pub(super) struct RawWebhook {
    pub(crate) span: Range<usize>,
    /// Its key: `output[1].webhook`, or `output[1].webhook[2]` in a list.
    pub(crate) key: String,
    pub(crate) url: Option<Spanned<String>>,
    pub(crate) secret: Option<Spanned<String>>,
    pub(crate) max_items: Option<Spanned<i64>>,
    pub(crate) retry_for: Option<Spanned<String>>,
}

/// Reads `text` into a [`RawConfig`], with every problem of shape it has.
pub(super) fn read(text: &str, locator: &Locator) -> (RawConfig, Vec<Problem>) {
    let (root, problems) = parse(text, locator);
    let mut r = Reader { locator, problems };
    let top = root.get_ref();
    r.unknown(top, keys::TOP, "");
    // Read before everything else (config/include.rs); only its shape is checked here.
    if let Some(include) = top.get("include") {
        let paths = match include.get_ref() {
            DeValue::String(_) => true,
            DeValue::Array(items) => items.iter().all(|i| matches!(i.get_ref(), DeValue::String(_))),
            _ => false,
        };
        if !paths {
            r.wrong(include, "include".into(), "a path or a list of paths");
        }
    }
    let mut raw = RawConfig::default();
    if let Some(store) = r.table(top, "store", "store") {
        r.unknown(store, keys::STORE, "store");
        raw.store = RawStore {
            path: r.string(store, "path", "store"),
            url: r.string(store, "url", "store"),
            keep_days: r.integer(store, "keep_days", "store"),
            keep_per_feed: r.integer(store, "keep_per_feed", "store"),
            housekeeping: r.string(store, "housekeeping", "store"),
        };
    }
    if let Some(node) = r.table(top, "node", "node") {
        r.unknown(node, keys::NODE, "node");
        raw.node = RawNode {
            name: r.string(node, "name", "node"),
            lease: r.string(node, "lease", "node"),
        };
    }
    if let Some(poll) = r.table(top, "poll", "poll") {
        r.unknown(poll, keys::POLL, "poll");
        let p = "poll";
        raw.poll = RawPoll {
            concurrency: r.integer(poll, "concurrency", p),
            timeout: r.string(poll, "timeout", p),
            user_agent: r.string(poll, "user_agent", p),
            max_body: r.string(poll, "max_body", p),
            new_feed_entries: r.integer(poll, "new_feed_entries", p),
            deny_private_networks: r.boolean(poll, "deny_private_networks", p),
            allow_files: r.boolean(poll, "allow_files", p),
            icons: r.boolean(poll, "icons", p),
            announce_readers: r.boolean(poll, "announce_readers", p),
            allow_networks: r.strings(poll, "allow_networks", p),
            resolve: r.string_map(poll, "resolve", p),
            schedule: r.string(poll, "schedule", p),
            jitter: r.string(poll, "jitter", p),
            per_host: r.integer(poll, "per_host", p),
            shutdown_grace: r.string(poll, "shutdown_grace", p),
            give_up_after: r.string(poll, "give_up_after", p),
            inactive_after: r.string(poll, "inactive_after", p),
        };
    }
    if let Some(serve) = r.table(top, "serve", "serve") {
        r.unknown(serve, keys::SERVE, "serve");
        let p = "serve";
        raw.serve = Some(RawServe {
            listen: r.string(serve, "listen", p),
            admin_listen: r.string(serve, "admin_listen", p),
            base_url: r.string(serve, "base_url", p),
            websub_hub: r.string(serve, "websub_hub", p),
            max_connections: r.integer(serve, "max_connections", p),
            header_timeout: r.string(serve, "header_timeout", p),
            idle_timeout: r.string(serve, "idle_timeout", p),
        });
    }
    if let Some(websub) = r.table(top, "websub", "websub") {
        r.unknown(websub, keys::WEBSUB, "websub");
        let p = "websub";
        raw.websub = RawWebSub {
            subscribe: r.spanned_boolean(websub, "subscribe", p),
            poll_every: r.string(websub, "poll_every", p),
            lease: r.string(websub, "lease", p),
        };
    }
    if let Some(rules) = r.table(top, "rules", "rules") {
        r.unknown(rules, keys::RULES, "rules");
        raw.rules = Some(r.rule_set(rules, "rules"));
    }
    for (n, (span, list)) in r.tables(top, "list").into_iter().enumerate() {
        let p = format!("list[{}]", n + 1);
        r.problems
            .extend(keys::unknown_in(list, &[keys::LIST, keys::RULES], &p, r.locator));
        raw.list.push(RawList {
            span,
            url: r.string(list, "url", &p),
            tags: r.strings(list, "tags", &p),
            schedule: r.string(list, "schedule", &p),
            full_text: r.boolean(list, "full_text", &p),
            rules: r.rule_set(list, &p),
        });
    }
    for (n, (span, feed)) in r.tables(top, "feed").into_iter().enumerate() {
        let p = format!("feed[{}]", n + 1);
        r.problems
            .extend(keys::unknown_in(feed, &[keys::FEED, keys::RULES], &p, r.locator));
        raw.feed.push(RawFeed {
            span,
            url: r.string(feed, "url", &p),
            title: r.string(feed, "title", &p),
            site: r.string(feed, "site", &p),
            tags: r.strings(feed, "tags", &p),
            schedule: r.string(feed, "schedule", &p),
            ignore_hints: r.boolean(feed, "ignore_hints", &p),
            full_text: r.boolean(feed, "full_text", &p),
            disabled: r.boolean(feed, "disabled", &p),
            headers: r.string_map(feed, "headers", &p),
            rules: r.rule_set(feed, &p),
            rewrite: r.rules(feed, "rewrite", &p),
            kind: r.string(feed, "kind", &p),
            lang: r.string(feed, "lang", &p),
            timezone: r.string(feed, "timezone", &p),
            timeout: r.string(feed, "timeout", &p),
            proxy: r.string(feed, "proxy", &p),
            scrape: r.string_map(feed, "scrape", &p),
        });
    }
    for (n, (span, output)) in r.tables(top, "output").into_iter().enumerate() {
        let p = format!("output[{}]", n + 1);
        r.problems.extend(keys::unknown_in(
            output,
            &[keys::OUTPUT, keys::RULES],
            &p,
            r.locator,
        ));
        raw.output.push(RawOutput {
            span,
            path: r.string(output, "path", &p),
            format: r.string(output, "format", &p),
            title: r.string(output, "title", &p),
            limit: r.integer(output, "limit", &p),
            id: r.string(output, "id", &p),
            tags: r.strings(output, "tags", &p),
            feeds: r.strings(output, "feeds", &p),
            rules: r.rule_set(output, &p),
            dedupe: r.string(output, "dedupe", &p),
            template: r.string(output, "template", &p),
            link: r.string(output, "link", &p),
            description: r.string(output, "description", &p),
            icon: r.string(output, "icon", &p),
            logo: r.string(output, "logo", &p),
            url: r.string(output, "url", &p),
            lang: r.string(output, "lang", &p),
            timezone: r.string(output, "timezone", &p),
            languages: r.strings(output, "languages", &p),
            webhooks: r.webhooks(output, &p),
            on_change: r.strings(output, "on_change", &p),
            show_readers: r.boolean(output, "show_readers", &p),
        });
    }
    (raw, r.problems)
}

/// `text` as a TOML tree, as much of it as reads, and every syntax error at its place.
pub(super) fn parse<'i>(text: &'i str, locator: &Locator) -> (Spanned<DeTable<'i>>, Vec<Problem>) {
    let (root, errors) = DeTable::parse_recoverable(text);
    let problems = errors
        .iter()
        .map(|e| {
            locator.problem(
                e.span().unwrap_or(0..0),
                String::new(),
                format!("TOML syntax: {}", e.message().trim()),
            )
        })
        .collect();
    (root, problems)
}

struct Reader<'a> {
    locator: &'a Locator,
    problems: Vec<Problem>,
}

type Value<'i> = Spanned<DeValue<'i>>;

impl Reader<'_> {
    fn wrong(&mut self, value: &Value<'_>, key: String, expected: &str) {
        let message = format!("must be {expected}, not {}", article(value.get_ref().type_str()));
        self.problems
            .push(self.locator.problem(value.span(), key, message));
    }

    fn unknown(&mut self, table: &DeTable<'_>, known: &[&str], path: &str) {
        self.problems
            .extend(keys::unknown(table, known, path, self.locator));
    }

    fn table<'t, 'i>(&mut self, parent: &'t DeTable<'i>, name: &str, key: &str) -> Option<&'t DeTable<'i>> {
        let value = parent.get(name)?;
        match value.get_ref().as_table() {
            Some(t) => Some(t),
            None => {
                self.wrong(value, key.to_string(), "a table");
                None
            }
        }
    }

    /// The tables of an array of tables (`[[feed]]`), with their places.
    fn tables<'t, 'i>(
        &mut self,
        parent: &'t DeTable<'i>,
        name: &str,
    ) -> Vec<(Range<usize>, &'t DeTable<'i>)> {
        let Some(value) = parent.get(name) else {
            return Vec::new();
        };
        let Some(items) = value.get_ref().as_array() else {
            self.wrong(value, name.to_string(), &format!("a list of tables ([[{name}]])"));
            return Vec::new();
        };
        let mut tables = Vec::new();
        for (i, item) in items.iter().enumerate() {
            match item.get_ref().as_table() {
                Some(t) => tables.push((item.span(), t)),
                None => self.wrong(item, format!("{name}[{}]", i + 1), "a table"),
            }
        }
        tables
    }

    fn string(&mut self, table: &DeTable<'_>, name: &str, path: &str) -> Option<Spanned<String>> {
        let value = table.get(name)?;
        match value.get_ref().as_str() {
            Some(s) => Some(Spanned::new(value.span(), s.to_string())),
            None => {
                self.wrong(value, join(path, name), "a string");
                None
            }
        }
    }

    fn integer(&mut self, table: &DeTable<'_>, name: &str, path: &str) -> Option<Spanned<i64>> {
        let value = table.get(name)?;
        match value
            .get_ref()
            .as_integer()
            .and_then(|i| i64::from_str_radix(i.as_str(), i.radix()).ok())
        {
            Some(n) => Some(Spanned::new(value.span(), n)),
            None => {
                self.wrong(value, join(path, name), "a whole number");
                None
            }
        }
    }

    /// [`Reader::boolean`] with its place, for a value other keys are checked against.
    fn spanned_boolean(&mut self, table: &DeTable<'_>, name: &str, path: &str) -> Option<Spanned<bool>> {
        let span = table.get(name)?.span();
        self.boolean(table, name, path).map(|b| Spanned::new(span, b))
    }

    fn boolean(&mut self, table: &DeTable<'_>, name: &str, path: &str) -> Option<bool> {
        let value = table.get(name)?;
        match value.get_ref().as_bool() {
            Some(b) => Some(b),
            None => {
                self.wrong(value, join(path, name), "true or false");
                None
            }
        }
    }

    fn list<'t, 'i>(&mut self, table: &'t DeTable<'i>, name: &str, path: &str) -> &'t [Value<'i>] {
        let Some(value) = table.get(name) else {
            return &[];
        };
        match value.get_ref().as_array() {
            Some(items) => items,
            None => {
                self.wrong(value, join(path, name), "a list (`[...]`)");
                &[]
            }
        }
    }

    fn strings(&mut self, table: &DeTable<'_>, name: &str, path: &str) -> Vec<Spanned<String>> {
        let key = join(path, name);
        let mut out = Vec::new();
        for item in self.list(table, name, path) {
            match item.get_ref().as_str() {
                Some(s) => out.push(Spanned::new(item.span(), s.to_string())),
                None => self.wrong(item, key.clone(), "a string"),
            }
        }
        out
    }

    fn rules(&mut self, table: &DeTable<'_>, name: &str, path: &str) -> Vec<RawRule> {
        self.list(table, name, path)
            .iter()
            .map(|item| Spanned::new(item.span(), plain_value(item.get_ref())))
            .collect()
    }

    fn rule_set(&mut self, table: &DeTable<'_>, path: &str) -> RawRuleSet {
        RawRuleSet {
            include: self.rules(table, "include", path),
            exclude: self.rules(table, "exclude", path),
            include_words: self.strings(table, "include_words", path),
            exclude_words: self.strings(table, "exclude_words", path),
            include_words_file: self.string(table, "include_words_file", path),
            exclude_words_file: self.string(table, "exclude_words_file", path),
            ignore_diacritics: self.boolean(table, "ignore_diacritics", path),
        }
    }

    /// `webhook = { … }`, or a list of such tables.
    fn webhooks(&mut self, output: &DeTable<'_>, path: &str) -> Vec<RawWebhook> {
        let Some(value) = output.get("webhook") else {
            return Vec::new();
        };
        let key = join(path, "webhook");
        let tables: Vec<(String, &Value<'_>)> = match value.get_ref() {
            DeValue::Table(_) => vec![(key, value)],
            DeValue::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, item)| (format!("{key}[{}]", i + 1), item))
                .collect(),
            _ => {
                self.wrong(
                    value,
                    key,
                    "a table ({ url = \"…\", secret = \"…\" }) or a list of them",
                );
                return Vec::new();
            }
        };
        let mut hooks = Vec::new();
        for (key, value) in tables {
            let Some(table) = value.get_ref().as_table() else {
                self.wrong(value, key, "a table ({ url = \"…\", secret = \"…\" })");
                continue;
            };
            self.problems
                .extend(keys::unknown(table, keys::WEBHOOK, &key, self.locator));
            hooks.push(RawWebhook {
                span: value.span(),
                url: self.string(table, "url", &key),
                secret: self.string(table, "secret", &key),
                max_items: self.integer(table, "max_items", &key),
                retry_for: self.string(table, "retry_for", &key),
                key,
            });
        }
        hooks
    }

    fn string_map(
        &mut self,
        table: &DeTable<'_>,
        name: &str,
        path: &str,
    ) -> Option<Spanned<BTreeMap<String, Spanned<String>>>> {
        let value = table.get(name)?;
        let Some(entries) = value.get_ref().as_table() else {
            self.wrong(value, join(path, name), "a table of strings");
            return None;
        };
        let mut map = BTreeMap::new();
        for (k, v) in entries {
            match v.get_ref().as_str() {
                Some(s) => {
                    map.insert(k.get_ref().to_string(), Spanned::new(v.span(), s.to_string()));
                }
                None => self.wrong(v, format!("{}.{}", join(path, name), k.get_ref()), "a string"),
            }
        }
        Some(Spanned::new(value.span(), map))
    }
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

fn article(type_name: &str) -> String {
    match type_name.chars().next() {
        Some('a' | 'e' | 'i' | 'o' | 'u') => format!("an {type_name}"),
        _ => format!("a {type_name}"),
    }
}

/// A value of the spanned tree as a plain `toml::Value` (rules are small; their places are
/// kept on the whole rule).
fn plain_value(value: &DeValue<'_>) -> toml::Value {
    match value {
        DeValue::String(s) => toml::Value::String(s.to_string()),
        DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix())
            .map(toml::Value::Integer)
            .unwrap_or_else(|_| toml::Value::String(i.as_str().to_string())),
        DeValue::Float(f) => toml::Value::String(f.as_str().to_string()),
        DeValue::Boolean(b) => toml::Value::Boolean(*b),
        DeValue::Datetime(d) => toml::Value::Datetime(*d),
        DeValue::Array(items) => toml::Value::Array(items.iter().map(|i| plain_value(i.get_ref())).collect()),
        DeValue::Table(t) => toml::Value::Table(
            t.iter()
                .map(|(k, v)| (k.get_ref().to_string(), plain_value(v.get_ref())))
                .collect(),
        ),
    }
}
