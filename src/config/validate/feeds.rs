//! `[[feed]]`: each feed's URL, credentials, headers, proxy, source (feed, scraped page, JSON
//! API, local file or command) and its own settings.

use super::*;

impl Validator<'_> {
    pub(super) fn feed(&mut self, n: usize, raw: raw::RawFeed) -> Option<FeedSpec> {
        let key = |k: &str| format!("feed[{n}].{k}");
        let Some(raw_url) = raw.url else {
            self.report(
                raw.span.clone(),
                format!("feed[{n}]"),
                "missing `url`: every [[feed]] needs one",
            );
            // The rest is checked all the same, so one run reports every problem.
            self.rule_table(raw.rules, &format!("feed[{n}]"), &key(""));
            self.cron_opt(raw.schedule, &key("schedule"));
            return None;
        };
        let url = self.source_url(&raw_url, &key("url"));
        if self.files_refused && url.as_ref().is_some_and(|u| u.scheme() == "file") {
            self.report(
                raw_url.span(),
                key("url"),
                "local files are refused while poll.deny_private_networks is on \
                 (set poll.allow_files = true to read them)",
            );
        }
        if let Some(url) = &url {
            let canonical = crate::model::canonical_url(&crate::model::feed_key(url));
            match self.seen_urls.get(&canonical) {
                Some(first) if first == url.as_str() => {
                    self.report(raw_url.span(), key("url"), format!("`{url}` is configured twice"));
                }
                Some(first) => {
                    let message = format!(
                        "`{}` is the same feed as `{}` configured before it (they differ only in case, \
                         default port, fragment or tracking parameters); it would be fetched twice",
                        crate::model::display_url(url),
                        first
                    );
                    self.report(raw_url.span(), key("url"), message);
                }
                None => {
                    self.seen_urls.insert(canonical, crate::model::display_url(url));
                }
            }
        }
        let title = raw.title.map(|t| t.into_inner()).filter(|t| !t.trim().is_empty());
        let site = match raw.site {
            Some(s) => match Url::parse(s.get_ref()) {
                Ok(u) if matches!(u.scheme(), "http" | "https") => Some(u.to_string()),
                _ => {
                    self.report(
                        s.span(),
                        key("site"),
                        format!("`{}` is not an http(s) URL", s.get_ref()),
                    );
                    None
                }
            },
            None => None,
        };
        let tags = self.tags(raw.tags, &key("tags"));
        let schedule = self.cron_opt(raw.schedule, &key("schedule"));
        let rules = Rules::of([std::sync::Arc::new(self.rule_table(
            raw.rules,
            &format!("feed[{n}]"),
            &key(""),
        ))]);
        let rewrite = self.rewrites(raw.rewrite, &key("rewrite"));
        let source = self.source(raw.kind, raw.scrape, raw.span.clone(), &key(""));
        let lang = self.language(raw.lang, &key("lang"));
        let timezone = self.timezone(raw.timezone, &key("timezone"));
        let timeout = self.duration(raw.timeout, &key("timeout"), false);
        let proxy = raw.proxy.and_then(|p| self.proxy(&p, &key("proxy")));
        let mut headers = Vec::new();
        if let Some(table) = raw.headers {
            for (name, value) in table.into_inner() {
                let header_key = key(&format!("headers.{name}"));
                let span = value.span();
                let literal = !value.get_ref().contains("${");
                let Some(expanded) = self.expand(&value, &header_key) else {
                    continue;
                };
                if literal && !expanded.trim().is_empty() {
                    self.uses_secrets = true;
                }
                let valid_name = http::HeaderName::try_from(name.as_str()).is_ok();
                let valid_value = http::HeaderValue::try_from(expanded.as_str()).is_ok();
                if valid_name && valid_value {
                    headers.push((name, expanded));
                } else {
                    // The value may be a secret: the message names the header only.
                    self.report(
                        span,
                        header_key,
                        format!("`{name}` is not a valid HTTP header name and value"),
                    );
                }
            }
        }
        let url = url?;
        if url.password().is_some() && !raw_url.get_ref().contains("${") {
            self.uses_secrets = true;
        }
        Some(FeedSpec {
            key: crate::model::feed_key(&url),
            url,
            title,
            site,
            tags,
            schedule,
            ignore_hints: raw.ignore_hints.unwrap_or(false),
            full_text: raw.full_text.unwrap_or(false),
            disabled: raw.disabled.unwrap_or(false),
            rules,
            rewrite,
            headers,
            source,
            lang,
            timezone,
            timeout,
            proxy,
            list: None,
        })
    }

    /// An output's icon or logo: an absolute http(s) URL, or a reference relative to where the
    /// output is published (resolved against `self_url` when it has one).
    pub(super) fn image_url(
        &mut self,
        raw: &toml::Spanned<String>,
        key: &str,
        self_url: Option<&str>,
    ) -> Option<String> {
        let text = raw.get_ref().trim();
        match Url::parse(text) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => Some(url.to_string()),
            Err(url::ParseError::RelativeUrlWithoutBase) if !text.is_empty() => Some(
                self_url
                    .and_then(|base| Url::parse(base).ok()?.join(text).ok())
                    .map_or_else(|| text.to_string(), String::from),
            ),
            _ => {
                self.report(
                    raw.span(),
                    key,
                    "must be an http(s) URL, or a path relative to where the output is published",
                );
                None
            }
        }
    }

    /// A proxy URL: http:// or https://, with a host; `${NAME}` and the like expanded (a
    /// password in it is a secret like any other).
    pub(super) fn proxy(&mut self, raw: &toml::Spanned<String>, key: &str) -> Option<Url> {
        let expanded = self.expand(raw, key)?;
        match Url::parse(expanded.trim()) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host_str().is_some() => {
                if url.password().is_some() && !raw.get_ref().contains("${") {
                    self.uses_secrets = true;
                }
                Some(url)
            }
            // The value may hold a password: the message shows only what it is not.
            _ => {
                self.report(
                    raw.span(),
                    key,
                    "not a proxy URL: write http://HOST:PORT or https://HOST:PORT (user:password@ \
                     for one that asks)",
                );
                None
            }
        }
    }

    /// `kind` and its `scrape` table: a feed (the default), or a page or JSON API with a
    /// selector or JSON Pointer per field. Every bad selector is reported at its place.
    pub(super) fn source(
        &mut self,
        kind: Option<toml::Spanned<String>>,
        scrape: Option<toml::Spanned<std::collections::BTreeMap<String, toml::Spanned<String>>>>,
        feed_span: std::ops::Range<usize>,
        prefix: &str,
    ) -> Source {
        const KINDS: &[&str] = &["feed", "html", "json"];
        let kind_name = kind.as_ref().map_or("feed", |k| k.get_ref().as_str());
        let kind_span = kind.as_ref().map_or(feed_span.clone(), |k| k.span());
        if !KINDS.contains(&kind_name) {
            self.report(
                kind_span,
                format!("{prefix}kind"),
                format!(
                    "unknown kind `{kind_name}`{}",
                    keys::did_you_mean(kind_name, KINDS)
                ),
            );
            return Source::Feed;
        }
        let Some(scrape) = scrape else {
            if kind_name != "feed" {
                self.report(
                    kind_span,
                    format!("{prefix}scrape"),
                    format!(
                        "kind = \"{kind_name}\" needs a `scrape` table naming at least `item` and `link`"
                    ),
                );
            }
            return Source::Feed;
        };
        let table_span = scrape.span();
        if kind_name == "feed" {
            self.report(
                table_span,
                format!("{prefix}scrape"),
                "`scrape` is for kind = \"html\" or \"json\"; a feed is read as it is",
            );
            return Source::Feed;
        }
        let mut fields = scrape.into_inner();
        for (name, value) in &fields {
            if !keys::SCRAPE.contains(&name.as_str()) {
                let message = format!(
                    "unknown field `{name}`{}",
                    keys::did_you_mean(name, &keys::SCRAPE)
                );
                self.report(value.span(), format!("{prefix}scrape.{name}"), message);
            }
        }
        for required in ["item", "link"] {
            if !fields.contains_key(required) {
                self.report(
                    table_span.clone(),
                    format!("{prefix}scrape.{required}"),
                    format!("`scrape` needs `{required}` (entries are known by their link)"),
                );
            }
        }
        let raw = keys::SCRAPE.map(|name| {
            fields
                .remove(name)
                .map(|value| (format!("{prefix}scrape.{name}"), value))
        });
        if kind_name == "html" {
            let picks = raw.map(|v| v.and_then(|(key, value)| self.pick(value, &key)));
            if let Some(item) = picks[0].as_ref().filter(|i| i.selector.is_none()) {
                let message = format!("scrape.item `{}` must select elements of the page", item.css);
                self.report(feed_span, format!("{prefix}scrape.item"), message);
                return Source::Feed;
            }
            scrape_of(picks).map_or(Source::Feed, Source::Html)
        } else {
            let pointers = raw.map(|v| v.and_then(|(key, value)| self.pointer(value, &key)));
            scrape_of(pointers).map_or(Source::Feed, Source::Json)
        }
    }

    /// `CSS[@attr]`: a selector (empty: the item itself) and the attribute to take.
    pub(super) fn pick(&mut self, raw: toml::Spanned<String>, key: &str) -> Option<Pick> {
        let span = raw.span();
        let text = raw.into_inner();
        let (css, attr) = match text.rsplit_once('@') {
            Some((css, attr))
                if !attr.is_empty()
                    && attr
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':' | '.')) =>
            {
                (css.trim(), Some(attr.to_string()))
            }
            _ => (text.trim(), None),
        };
        // An empty selector is the item element itself.
        let parsed = (!css.is_empty())
            .then(|| scraper::Selector::parse(css))
            .transpose();
        match parsed {
            Ok(selector) => Some(Pick {
                css: text.clone(),
                selector,
                attr,
            }),
            Err(e) => {
                let message = format!("invalid CSS selector `{css}`: {e}");
                self.report(span, key, message);
                None
            }
        }
    }

    /// A JSON Pointer: empty (the value itself) or starting with `/`.
    pub(super) fn pointer(&mut self, raw: toml::Spanned<String>, key: &str) -> Option<Pointer> {
        let span = raw.span();
        let text = raw.into_inner();
        if text.is_empty() || text.starts_with('/') {
            Some(Pointer(text))
        } else {
            let message =
                format!("`{text}` is not a JSON Pointer; write it from the item down, like \"/{text}\"");
            self.report(span, key, message);
            None
        }
    }

    /// `raw` with `${NAME}` (an environment variable), `${file:PATH}` (a file's content) and
    /// `${credential:NAME}` (a systemd credential, `$CREDENTIALS_DIRECTORY/NAME`) replaced;
    /// `$${` is a literal `${`. A reference that cannot be read is reported, naming the
    /// reference, never the secret.
    pub(super) fn expand(&mut self, raw: &toml::Spanned<String>, key: &str) -> Option<String> {
        match self.secrets.expand(raw.get_ref(), &self.base) {
            Ok(text) => Some(text),
            Err(message) => {
                self.report(raw.span(), key, message);
                None
            }
        }
    }

    /// The URL a feed reference resolves to, like `source_url` but without reporting.
    pub(super) fn resolve_source(&self, text: &str) -> Option<Url> {
        match Url::parse(text) {
            Ok(url) if url.scheme().len() > 1 => Some(url),
            _ => Url::from_file_path(self.base.join(text)).ok(),
        }
    }

    /// A feed source: an `http(s)://` or `file://` URL, or a path relative to the config file.
    pub(super) fn source_url(&mut self, raw: &toml::Spanned<String>, key: &str) -> Option<Url> {
        let expanded = self.expand(raw, key)?;
        let text = expanded.trim();
        if text.is_empty() {
            self.report(raw.span(), key, "must not be empty");
            return None;
        }
        match Url::parse(text) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host_str().is_some() => Some(url),
            Ok(url) if url.scheme() == "file" => Some(url),
            // A one-letter "scheme" is a Windows drive letter: treat it as a path.
            Ok(url) if url.scheme().len() > 1 => {
                self.report(
                    raw.span(),
                    key,
                    format!(
                        "unsupported scheme `{}`: use http://, https://, file:// or a path",
                        url.scheme()
                    ),
                );
                None
            }
            Ok(_) | Err(url::ParseError::RelativeUrlWithoutBase) => {
                let path = self.base.join(text);
                if looks_like_a_host(text) && !path.exists() {
                    self.warn(
                        raw.span(),
                        key,
                        format!(
                            "`{text}` is read as a file next to the config, which does not exist; \
                             did you mean `https://{text}`?"
                        ),
                    );
                }
                match Url::from_file_path(&path) {
                    Ok(url) => Some(url),
                    Err(()) => {
                        self.report(raw.span(), key, format!("`{text}` is not a usable path"));
                        None
                    }
                }
            }
            Err(e) => {
                self.report(raw.span(), key, format!("`{text}` is not a valid URL: {e}"));
                None
            }
        }
    }
}
