//! `[[output]]` and its webhooks: formats, paths, selections, and what is told where.

use super::*;

impl Validator<'_> {
    pub(super) fn output(
        &mut self,
        n: usize,
        raw: raw::RawOutput,
        all_feeds: &[FeedSpec],
        has_lists: bool,
        base_url: Option<&Url>,
        planet: &std::sync::Arc<RuleTable>,
    ) -> Option<OutputSpec> {
        let key = |k: &str| format!("output[{n}].{k}");
        // An output with webhooks may have no file: it only notifies.
        let webhook_only = raw.path.is_none() && !raw.webhooks.is_empty();
        let webhooks: Vec<crate::model::WebhookSpec> =
            raw.webhooks.into_iter().filter_map(|w| self.webhook(w)).collect();
        let raw_path = match raw.path {
            Some(p) => p,
            None if webhook_only => toml::Spanned::new(raw.span.clone(), String::new()),
            None => {
                self.report(
                    raw.span.clone(),
                    format!("output[{n}]"),
                    "missing `path`: every [[output]] needs one (or a `webhook`, to only notify)",
                );
                toml::Spanned::new(raw.span.clone(), String::new())
            }
        };
        let path_text = raw_path.get_ref().clone();
        let path = if webhook_only {
            // Its name in the store (what it announced, its deliveries): its first webhook's.
            webhooks
                .first()
                .map(|w| PathBuf::from(format!("webhook:{}", w.name())))
        } else if path_text.trim().is_empty() {
            if !raw_path.span().is_empty() && raw_path.span() != raw.span {
                self.report(raw_path.span(), key("path"), "must not be empty");
            }
            None
        } else {
            Some(self.path(raw_path, &key("path")))
        };
        let format = match raw.format {
            // What it sends is JSON Feed; it has no file to be in another format.
            Some(f) if webhook_only && f.get_ref() != "json" => {
                self.report(
                    f.span(),
                    key("format"),
                    "an output without a `path` only sends webhooks, as JSON Feed items: \
                     give it a `path` to write a file in another format",
                );
                None
            }
            _ if webhook_only => Some(OutputFormat::Json),
            Some(f) => match OutputFormat::from_name(f.get_ref()) {
                Some(format) => Some(format),
                None => {
                    let hint = keys::did_you_mean(f.get_ref(), OutputFormat::NAMES);
                    self.report(
                        f.span(),
                        key("format"),
                        format!("unknown format `{}`{hint}", f.get_ref()),
                    );
                    None
                }
            },
            // What the file's name says it is (`index.html` is a page), else Atom.
            None => Some(
                path.as_deref()
                    .and_then(|p| p.extension())
                    .and_then(|e| OutputFormat::from_extension(&e.to_string_lossy()))
                    .unwrap_or(OutputFormat::Atom),
            ),
        };
        let limit = match raw.limit {
            Some(l) if *l.get_ref() < 1 || *l.get_ref() > 100_000 => {
                self.report(l.span(), key("limit"), "must be between 1 and 100000");
                None
            }
            Some(l) => usize::try_from(*l.get_ref()).ok(),
            None => Some(DEFAULT_OUTPUT_LIMIT),
        };
        let title = raw
            .title
            .map(|t| t.into_inner())
            .filter(|t| !t.trim().is_empty())
            .unwrap_or_else(|| "Tributary".to_string());
        let id = match raw.id {
            Some(id) if Url::parse(id.get_ref()).is_err() => {
                self.report(
                    id.span(),
                    key("id"),
                    "must be an absolute IRI (e.g. \"urn:uuid:…\" or \"https://…\"), as Atom requires",
                );
                None
            }
            Some(id) => Some(id.into_inner()),
            // Derived from what the operator wrote, not from the absolute path, so the id stays
            // put when the whole directory moves.
            None => Some(crate::model::stable_urn(&format!("tributary-output:{path_text}"))),
        };
        let feeds = self.selection(raw.tags, raw.feeds, all_feeds, has_lists, &key);
        let own = self.rule_table(raw.rules, &format!("output[{n}]"), &key(""));
        let rules = Rules::of([planet.clone(), std::sync::Arc::new(own)]);
        let dedupe = match raw.dedupe {
            None => CrossFeedDedupe::Link,
            Some(d) => match d.get_ref().as_str() {
                "link" => CrossFeedDedupe::Link,
                "none" => CrossFeedDedupe::None,
                other => {
                    let hint = keys::did_you_mean(other, &["link", "none"]);
                    self.report(d.span(), key("dedupe"), format!("unknown value `{other}`{hint}"));
                    CrossFeedDedupe::Link
                }
            },
        };
        let template = match raw.template {
            Some(t) if format != Some(OutputFormat::Html) => {
                self.report(t.span(), key("template"), "only html outputs use a template");
                None
            }
            Some(t) => {
                let p = self.path(t.clone(), &key("template"));
                if !p.is_file() {
                    self.report(
                        t.span(),
                        key("template"),
                        format!("template {} does not exist", p.display()),
                    );
                }
                Some(p)
            }
            None => None,
        };
        let link = match raw.link {
            Some(l) => match Url::parse(l.get_ref()) {
                Ok(u) if matches!(u.scheme(), "http" | "https") => Some(u.to_string()),
                _ => {
                    self.report(l.span(), key("link"), "must be an absolute http(s) URL");
                    None
                }
            },
            None => base_url.map(Url::to_string),
        };
        let file_name = std::path::Path::new(&path_text)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        // Where subscribers fetch it: its own `url`, else the server's base_url + file name.
        let self_url = match raw.url {
            Some(u) => match Url::parse(u.get_ref()) {
                Ok(url) if matches!(url.scheme(), "http" | "https") => Some(url.to_string()),
                _ => {
                    self.report(u.span(), key("url"), "must be an absolute http(s) URL");
                    None
                }
            },
            None if webhook_only => None,
            None => base_url.and_then(|b| b.join(&file_name).ok()).map(String::from),
        };
        if self_url.is_none()
            && !webhook_only
            && matches!(
                format,
                Some(OutputFormat::Atom | OutputFormat::Rss | OutputFormat::Json)
            )
        {
            self.warn(
                raw.span.clone(),
                format!("output[{n}]"),
                "it has no address: readers get no self link (Atom rel=\"self\", RSS atom:link, JSON \
                 Feed feed_url), which some need to follow a move; set [serve] base_url, or this \
                 output's `url`",
            );
        }
        let lang = self.language(raw.lang, &key("lang"));
        let timezone = self.timezone(raw.timezone, &key("timezone"));
        let languages = raw
            .languages
            .into_iter()
            .filter_map(|range| match range.get_ref().as_str() {
                "*" => Some("*".to_string()),
                _ => self.language(Some(range), &key("languages")),
            })
            .collect();
        Some(OutputSpec {
            lang,
            timezone,
            languages,
            path: path?,
            format: format?,
            title,
            limit: limit?,
            id: id?,
            feeds,
            rules,
            dedupe,
            template,
            link,
            description: raw.description.map(|d| d.into_inner()),
            icon: raw
                .icon
                .and_then(|i| self.image_url(&i, &key("icon"), self_url.as_deref())),
            logo: raw
                .logo
                .and_then(|l| self.image_url(&l, &key("logo"), self_url.as_deref())),
            self_url,
            file: !webhook_only,
            webhooks,
            on_change: self.command(raw.on_change, &key("on_change")),
            show_readers: raw.show_readers.unwrap_or(false),
        })
    }

    /// A command as `["program", "arg", …]`: run as it is, never through a shell. A program
    /// named without a `/` is looked up on PATH; a relative path is the config's directory's.
    pub(super) fn command(&mut self, raw: Vec<toml::Spanned<String>>, key: &str) -> Vec<String> {
        let Some(program) = raw.first() else {
            return Vec::new();
        };
        if program.get_ref().trim().is_empty() {
            self.report(program.span(), key, "must name a program first");
            return Vec::new();
        }
        let mut argv: Vec<String> = raw.iter().map(|a| a.get_ref().clone()).collect();
        if argv[0].contains('/') {
            argv[0] = self.base.join(&argv[0]).display().to_string();
        }
        argv
    }

    /// A `webhook = { url, secret, max_items, retry_for }` of an output.
    pub(super) fn webhook(&mut self, raw: raw::RawWebhook) -> Option<crate::model::WebhookSpec> {
        let key = |name: &str| format!("{}.{name}", raw.key);
        let Some(raw_url) = raw.url else {
            self.report(
                raw.span.clone(),
                raw.key.clone(),
                "missing `url`: where to POST new entries",
            );
            return None;
        };
        let url = match self.expand(&raw_url, &key("url")).map(|u| Url::parse(u.trim())) {
            Some(Ok(url)) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => Some(url),
            Some(_) => {
                self.report(raw_url.span(), key("url"), "must be an http(s):// URL");
                None
            }
            None => None,
        };
        let secret = match raw.secret {
            Some(s) => {
                let literal = !s.get_ref().contains("${");
                let expanded = self.expand(&s, &key("secret"));
                if literal {
                    self.uses_secrets = true;
                }
                expanded.and_then(|text| match webhook_key(text.trim()) {
                    Ok(k) => Some(k),
                    Err(why) => {
                        self.report(s.span(), key("secret"), why);
                        None
                    }
                })
            }
            None => {
                self.report(
                    raw.span.clone(),
                    raw.key.clone(),
                    "missing `secret`: requests are signed with it (generate one: \
                     echo whsec_$(openssl rand -base64 32))",
                );
                None
            }
        };
        let max_items = match raw.max_items {
            Some(n) if *n.get_ref() < 1 || *n.get_ref() > 1000 => {
                self.report(n.span(), key("max_items"), "must be between 1 and 1000");
                None
            }
            Some(n) => usize::try_from(*n.get_ref()).ok(),
            None => Some(DEFAULT_WEBHOOK_ITEMS),
        };
        let retry_for = match raw.retry_for {
            Some(d) => self.duration(Some(d), &key("retry_for"), false),
            None => Some(DEFAULT_WEBHOOK_RETRY),
        };
        Some(crate::model::WebhookSpec {
            url: url?,
            key: secret?,
            max_items: max_items?,
            retry_for: retry_for?,
        })
    }

    /// The feeds an output draws from: those with one of `tags`, plus those listed in `feeds`
    /// (by URL as written or by title); every feed when both are empty.
    pub(super) fn selection(
        &mut self,
        tags: Vec<toml::Spanned<String>>,
        listed: Vec<toml::Spanned<String>>,
        all: &[FeedSpec],
        has_lists: bool,
        key: &dyn Fn(&str) -> String,
    ) -> Vec<Url> {
        // A disabled feed is kept, but shown nowhere.
        let all: Vec<&FeedSpec> = all.iter().filter(|f| !f.disabled).collect();
        if tags.is_empty() && listed.is_empty() {
            return all.iter().map(|f| f.url.clone()).collect();
        }
        let mut chosen: std::collections::HashSet<Url> = std::collections::HashSet::new();
        for tag in &tags {
            let with_tag: Vec<&&FeedSpec> = all.iter().filter(|f| f.tags.contains(tag.get_ref())).collect();
            // A subscription list may bring feeds with it (its folders and categories are
            // tags): known only once it is fetched, so not a mistake before.
            if with_tag.is_empty() && !has_lists {
                self.report(
                    tag.span(),
                    key("tags"),
                    format!("no feed has the tag `{}`", tag.get_ref()),
                );
            }
            chosen.extend(with_tag.into_iter().map(|f| f.url.clone()));
        }
        for item in &listed {
            let wanted = item.get_ref().trim();
            let as_url = self.resolve_source(wanted);
            let found = all
                .iter()
                .find(|f| Some(&f.url) == as_url.as_ref() || f.title.as_deref() == Some(wanted));
            match found {
                Some(f) => {
                    chosen.insert(f.url.clone());
                }
                None if has_lists => {}
                None => self.report(
                    item.span(),
                    key("feeds"),
                    format!("`{wanted}` is not the URL or title of a configured feed"),
                ),
            }
        }
        // Config order, no repeats.
        all.iter()
            .map(|f| f.url.clone())
            .filter(|u| chosen.contains(u))
            .collect()
    }

    /// Two outputs may not write the same file, nor (when served) share a file name.
    pub(super) fn distinct_outputs(&mut self, outputs: &[OutputSpec], numbers: &[usize], served: bool) {
        for (i, o) in outputs.iter().enumerate() {
            for earlier in &outputs[..i] {
                let both_served = served && o.file && earlier.file;
                if earlier.path == o.path || (both_served && earlier.file_name() == o.file_name()) {
                    let key = format!("output[{}].path", numbers[i]);
                    let (file, line, column) =
                        self.places
                            .get(&key)
                            .cloned()
                            .unwrap_or((self.file.clone(), 0, 0));
                    self.problems.push(Problem {
                        file,
                        line,
                        column,
                        key,
                        message: format!("`{}` is also another output's file name", o.file_name()),
                    });
                }
            }
        }
    }
}
