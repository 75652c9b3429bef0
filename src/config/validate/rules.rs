//! `[rules]` and each feed's and output's rules: rewrites, regex rules, word lists and word
//! files.

use super::*;

impl Validator<'_> {
    /// A feed's rewrite rules, each a table with one of `remove` or `unwrap` (a CSS selector)
    /// or `replace` (a regular expression, with an optional `with`).
    pub(super) fn rewrites(&mut self, raw: Vec<raw::RawRule>, key: &str) -> Vec<Rewrite> {
        const SHAPE: &str = "a rewrite rule is { remove = \"CSS selector\" }, { unwrap = \"CSS selector\" } \
                             or { replace = \"regex\", with = \"text\" }";
        raw.into_iter()
            .filter_map(|r| {
                let span = r.span();
                let toml::Value::Table(t) = r.into_inner() else {
                    self.report(span, key, SHAPE);
                    return None;
                };
                let text = |k: &str| t.get(k).and_then(toml::Value::as_str).map(str::to_string);
                let with = text("with");
                let expected_len = 1 + usize::from(t.contains_key("with"));
                match (text("remove"), text("unwrap"), text("replace")) {
                    (Some(css), None, None) | (None, Some(css), None) if t.len() == 1 => {
                        let remove = t.contains_key("remove");
                        // The parser's error borrows the selector text; its message is enough.
                        let parsed = scraper::Selector::parse(&css).map_err(|e| e.to_string());
                        match parsed {
                            Ok(selector) if remove => Some(Rewrite::Remove { css, selector }),
                            Ok(selector) => Some(Rewrite::Unwrap { css, selector }),
                            Err(e) => {
                                self.report(span, key, format!("invalid CSS selector `{css}`: {e}"));
                                None
                            }
                        }
                    }
                    (None, None, Some(pattern))
                        if t.len() == expected_len && (with.is_some() || expected_len == 1) =>
                    {
                        match regex::Regex::new(&pattern) {
                            Ok(pattern) => Some(Rewrite::Replace {
                                pattern,
                                with: with.unwrap_or_default(),
                            }),
                            Err(e) => {
                                let first = e.to_string();
                                let first = first.lines().last().unwrap_or("").trim();
                                let first = first.strip_prefix("error: ").unwrap_or(first);
                                self.report(
                                    span,
                                    key,
                                    format!("invalid regular expression `{pattern}`: {first}"),
                                );
                                None
                            }
                        }
                    }
                    _ => {
                        self.report(span, key, SHAPE);
                        None
                    }
                }
            })
            .collect()
    }

    /// One table's rules (`place` names it in verdicts; `prefix` is its keys' path): regexes
    /// compiled, word lists and word files folded into their automatons.
    pub(super) fn rule_table(&mut self, raw: raw::RawRuleSet, place: &str, prefix: &str) -> RuleTable {
        let ignore_diacritics = raw.ignore_diacritics.unwrap_or(false);
        let mut include = self.regex_rules(raw.include, &format!("{prefix}include"));
        let mut exclude = self.regex_rules(raw.exclude, &format!("{prefix}exclude"));
        for (words, file, list, name) in [
            (raw.include_words, raw.include_words_file, &mut include, "include"),
            (raw.exclude_words, raw.exclude_words_file, &mut exclude, "exclude"),
        ] {
            let key = format!("{prefix}{name}_words");
            if let Some(rule) = self.word_list(words, &key, ignore_diacritics) {
                list.push(rule);
            }
            if let Some(file) = file
                && let Some(rule) = self.word_file(file, &format!("{key}_file"), ignore_diacritics)
            {
                list.push(rule);
            }
        }
        RuleTable {
            place: place.to_string(),
            include,
            exclude,
        }
    }

    /// `include` / `exclude`: each a regex (any field) or `{ field = "regex" }`.
    pub(super) fn regex_rules(&mut self, raw: Vec<raw::RawRule>, key: &str) -> Vec<Rule> {
        raw.into_iter()
            .filter_map(|r| {
                let span = r.span();
                let (field, pattern) = match r.into_inner() {
                    toml::Value::String(p) => (Field::Any, p),
                    toml::Value::Table(t) if t.len() == 1 => {
                        let (k, v) = t.into_iter().next()?;
                        let Some(field) = Field::from_name(&k) else {
                            self.report(
                                span,
                                key,
                                format!(
                                    "unknown field `{k}`; expected one of: {}",
                                    Field::NAMES.join(", ")
                                ),
                            );
                            return None;
                        };
                        let Some(p) = v.as_str().map(str::to_string) else {
                            self.report(
                                span,
                                key,
                                format!("`{k}` must be a regular expression (a string)"),
                            );
                            return None;
                        };
                        (field, p)
                    }
                    _ => {
                        self.report(
                            span,
                            key,
                            "a rule is a regex string, or a table with one field: { title = \"…\" }",
                        );
                        return None;
                    }
                };
                match regex::Regex::new(&pattern) {
                    Ok(regex) => Some(Rule {
                        field,
                        pattern: Pattern::Regex(regex),
                    }),
                    Err(e) => {
                        let first = e.to_string();
                        let first = first.lines().last().unwrap_or("").trim();
                        let first = first.strip_prefix("error: ").unwrap_or(first);
                        let mut message = format!("invalid regular expression `{pattern}`: {first}");
                        if let Some(word) = glob_or_word(&pattern) {
                            message.push_str(&format!(
                                "; it looks like a glob or a plain word: to match words and phrases \
                                 (no regex syntax), write {key}_words = [\"{word}\"]"
                            ));
                        }
                        self.report(span, key, message);
                        None
                    }
                }
            })
            .collect()
    }

    /// `*_words = [...]`: one rule for the whole list.
    pub(super) fn word_list(
        &mut self,
        raw: Vec<toml::Spanned<String>>,
        key: &str,
        ignore_diacritics: bool,
    ) -> Option<Rule> {
        let span = raw.first()?.span().start..raw.last()?.span().end;
        for word in &raw {
            if word.get_ref().trim().is_empty() {
                self.report(word.span(), key, "a word must not be empty");
            }
        }
        let written: Vec<String> = raw
            .into_iter()
            .map(toml::Spanned::into_inner)
            .filter(|w| !w.trim().is_empty())
            .collect();
        self.words_rule(written, None, span, key, ignore_diacritics)
    }

    /// `*_words_file = "path"`: one word or phrase per line; blank lines and lines starting
    /// with `#` are skipped.
    pub(super) fn word_file(
        &mut self,
        raw: toml::Spanned<String>,
        key: &str,
        ignore_diacritics: bool,
    ) -> Option<Rule> {
        let span = raw.span();
        let path = self.path(raw, key);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) => {
                self.report(span, key, format!("cannot read {}: {e}", path.display()));
                return None;
            }
        };
        let written: Vec<String> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_string)
            .collect();
        if written.is_empty() {
            self.warn(span.clone(), key, format!("{} holds no words", path.display()));
            return None;
        }
        self.words_rule(written, Some(path), span, key, ignore_diacritics)
    }

    pub(super) fn words_rule(
        &mut self,
        written: Vec<String>,
        file: Option<PathBuf>,
        span: std::ops::Range<usize>,
        key: &str,
        ignore_diacritics: bool,
    ) -> Option<Rule> {
        if written.is_empty() {
            return None;
        }
        let words: Vec<&str> = written.iter().map(String::as_str).collect();
        match crate::text::fold::automaton(&words, ignore_diacritics) {
            Ok(automaton) => Some(Rule {
                field: Field::Any,
                pattern: Pattern::Words(std::sync::Arc::new(Words {
                    written,
                    automaton,
                    ignore_diacritics,
                    file,
                })),
            }),
            Err(e) => {
                let place = match (&e, &file) {
                    (crate::text::fold::AutomatonError::Empty(i), Some(f)) => {
                        format!(" (in {}: `{}`)", f.display(), written[*i])
                    }
                    (crate::text::fold::AutomatonError::Empty(i), None) => format!(" (`{}`)", written[*i]),
                    _ => String::new(),
                };
                self.report(span, key, format!("{e}{place}"));
                None
            }
        }
    }
}
