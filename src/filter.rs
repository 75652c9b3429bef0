//! Owns the verdict of include / exclude rules ([`Rules`], compiled with the config) on an
//! entry.
//!
//! Feed rules run in the poll on the sanitized entry, just before it is stored (an excluded
//! entry is never stored); output rules run when an output is rendered, on the stored entry
//! (one store feeds many outputs). Both go through [`verdict`] on the same [`Fields`], and a
//! body is matched as its plain text (tags dropped, entities decoded), so a rule means the same
//! thing wherever it is written: `exclude = [{ content = "onclick" }]` matches no attribute at
//! either level, and `Tom & Jerry` matches a body written `Tom &amp; Jerry` at both.
//!
//! Rules come in tables (`[rules]` for every output, then a feed's or an output's own), and an
//! entry must pass each. Word lists are matched on folded text ([`fold`]: NFKC, case, Chinese
//! scripts), all the words of a list in one pass of its automaton.

use std::cell::OnceCell;

pub(crate) use crate::model::{Field, Fields, Needs, Pattern, Rule, RuleTable, Rules, Words};
use crate::text::{fold, html_to_text};

/// An entry's words as word rules read them: its title, bodies (as text), author and
/// categories, folded (see [`fold`]).
struct Folded(Vec<String>);

/// One entry under judgement: the bodies' plain text, and the folded text word rules read
/// (with and without diacritics), are made once, when a rule first needs them.
struct Judged<'e, 'a> {
    fields: &'e Fields<'a>,
    bodies: OnceCell<Vec<String>>,
    folded: [OnceCell<Folded>; 2],
}

impl Judged<'_, '_> {
    fn bodies(&self) -> &[String] {
        self.bodies.get_or_init(|| {
            self.fields
                .bodies
                .iter()
                .flatten()
                .map(|b| html_to_text(b))
                .collect()
        })
    }

    fn folded(&self, ignore_diacritics: bool) -> &Folded {
        self.folded[usize::from(ignore_diacritics)].get_or_init(|| {
            let e = self.fields;
            let texts = std::iter::once(e.title)
                .chain(self.bodies().iter().map(String::as_str))
                .chain(e.author)
                .chain(e.categories.iter().map(String::as_str));
            Folded(texts.map(|t| fold::fold(t, ignore_diacritics)).collect())
        })
    }

    /// Whether `rule` matches; for a word list, the word (as written) that did.
    fn matches<'r>(&self, rule: &'r Rule) -> Option<Option<&'r str>> {
        match &rule.pattern {
            Pattern::Regex(re) => self.regex_matches(rule.field, re).then_some(None),
            Pattern::Words(words) => self.word_in(words).map(Some),
        }
    }

    fn regex_matches(&self, field: Field, re: &regex::Regex) -> bool {
        let e = self.fields;
        let title = || re.is_match(e.title);
        let content = || self.bodies().iter().any(|b| re.is_match(b));
        let author = || e.author.is_some_and(|a| re.is_match(a));
        let category = || e.categories.iter().any(|c| re.is_match(c));
        let link = || e.link.is_some_and(|l| re.is_match(l));
        match field {
            Field::Any => title() || content() || author() || category() || link(),
            Field::Title => title(),
            Field::Content => content(),
            Field::Author => author(),
            Field::Category => category(),
            Field::Link => link(),
        }
    }

    /// The first word of `words` found as a word in any of the entry's texts.
    fn word_in<'r>(&self, words: &'r Words) -> Option<&'r str> {
        let Folded(texts) = self.folded(words.ignore_diacritics);
        texts.iter().find_map(|text| {
            words
                .automaton
                .find_overlapping_iter(text.as_str())
                .find(|m| fold::is_word_at(text, m.start(), m.end()))
                .and_then(|m| words.written.get(m.pattern().as_usize()))
                .map(String::as_str)
        })
    }
}

/// The rule that excluded an entry: which table it is in, and for a word list, the word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit<'r> {
    pub(crate) table: &'r RuleTable,
    pub(crate) rule: &'r Rule,
    pub(crate) word: Option<&'r str>,
}

impl std::fmt::Display for Hit<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.word {
            Some(word) => write!(f, "{} {}: the word \"{word}\"", self.table.place, self.rule),
            None => write!(f, "{} rule {}", self.table.place, self.rule),
        }
    }
}

/// Why an entry passes or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict<'r> {
    /// No rule stands in the way.
    Keep,
    /// An exclude rule matched: the table, the rule and the word it found.
    Excluded(Hit<'r>),
    /// A table has include rules and none matched.
    NotIncluded(&'r RuleTable),
}

/// The fields `rules` read besides title and link.
pub(crate) fn needs(rules: &Rules) -> Needs {
    let mut needs = Needs::default();
    for table in &rules.tables {
        for rule in table.include.iter().chain(&table.exclude) {
            let any = rule.field == Field::Any;
            needs.bodies |= any || rule.field == Field::Content;
            needs.author |= any || rule.field == Field::Author;
            needs.categories |= any || rule.field == Field::Category;
        }
    }
    needs
}

/// What `rules` say of an entry: an exclude rule of any table that matches wins; then each
/// table with include rules must have one that matches.
pub fn verdict<'r>(rules: &'r Rules, e: &Fields<'_>) -> Verdict<'r> {
    let judged = Judged {
        fields: e,
        bodies: OnceCell::new(),
        folded: [OnceCell::new(), OnceCell::new()],
    };
    for table in &rules.tables {
        for rule in &table.exclude {
            if let Some(word) = judged.matches(rule) {
                return Verdict::Excluded(Hit { table, rule, word });
            }
        }
    }
    for table in &rules.tables {
        if !table.include.is_empty() && !table.include.iter().any(|r| judged.matches(r).is_some()) {
            return Verdict::NotIncluded(table);
        }
    }
    Verdict::Keep
}

pub(crate) fn keeps(rules: &Rules, e: &Fields<'_>) -> bool {
    rules.is_empty() || verdict(rules, e) == Verdict::Keep
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use regex::Regex;

    fn rule(field: Field, re: &str) -> Rule {
        Rule {
            field,
            pattern: Pattern::Regex(Regex::new(re).unwrap()),
        }
    }

    fn words(list: &[&str], ignore_diacritics: bool) -> Rule {
        Rule {
            field: Field::Any,
            pattern: Pattern::Words(Arc::new(Words {
                written: list.iter().map(|w| w.to_string()).collect(),
                automaton: fold::automaton(list, ignore_diacritics).unwrap(),
                ignore_diacritics,
                file: None,
            })),
        }
    }

    fn table(place: &str, include: Vec<Rule>, exclude: Vec<Rule>) -> Arc<RuleTable> {
        Arc::new(RuleTable {
            place: place.into(),
            include,
            exclude,
        })
    }

    #[test]
    fn exclude_wins_and_include_narrows() {
        let rules = Rules::of([table(
            "output[1]",
            vec![
                rule(Field::Category, "(?i)^rust$"),
                rule(Field::Title, "(?i)rust"),
            ],
            vec![rule(Field::Any, "(?i)sponsored")],
        )]);
        let cats = ["Rust".to_string()];
        let e = Fields {
            title: "Weekly news",
            categories: &cats,
            ..Fields::default()
        };
        assert_eq!(verdict(&rules, &e), Verdict::Keep);
        let sponsored = Fields {
            bodies: [Some("<p>Sponsored post</p>"), None],
            ..e
        };
        assert!(matches!(verdict(&rules, &sponsored), Verdict::Excluded(h) if h.rule.field == Field::Any));
        let other = Fields {
            title: "Gardening",
            ..Fields::default()
        };
        assert!(matches!(verdict(&rules, &other), Verdict::NotIncluded(t) if t.place == "output[1]"));
        assert!(keeps(&Rules::default(), &other));
    }

    #[test]
    fn every_table_must_pass() {
        // The planet keeps Rust stories; the output keeps only those about releases.
        let rules = Rules::of([
            table("[rules]", vec![rule(Field::Any, "(?i)rust")], vec![]),
            table("output[2]", vec![rule(Field::Title, "(?i)release")], vec![]),
        ]);
        let e = |title| Fields {
            title,
            ..Fields::default()
        };
        assert_eq!(verdict(&rules, &e("Rust 1.95 release")), Verdict::Keep);
        assert!(matches!(verdict(&rules, &e("Go release")), Verdict::NotIncluded(t) if t.place == "[rules]"));
        assert!(
            matches!(verdict(&rules, &e("Rust news")), Verdict::NotIncluded(t) if t.place == "output[2]")
        );
    }

    #[test]
    fn words_match_folded_text_and_name_themselves() {
        let rules = Rules::of([table(
            "[rules]",
            vec![],
            vec![words(&["亚洲91视频", "casino", "crème brûlée"], false)],
        )]);
        let body = |html| Fields {
            title: "World news",
            bodies: [Some(html), None],
            ..Fields::default()
        };
        for spam in [
            "<p>亞洲91視頻,國產</p>",
            "<p>亚洲９１视频</p>",
            "<p>Best CASINO bonus</p>",
        ] {
            let Verdict::Excluded(hit) = verdict(&rules, &body(spam)) else {
                panic!("{spam} was kept");
            };
            assert!(
                hit.to_string().starts_with("[rules] words (3 words): the word"),
                "{hit}"
            );
        }
        // Inside a longer word of a spaced script: no match.
        assert_eq!(
            verdict(&rules, &body("<p>casinos? no: occasino</p>")),
            Verdict::Keep
        );
        assert_eq!(verdict(&rules, &body("<p>creme brulee</p>")), Verdict::Keep);
        let loose = Rules::of([table("feed[1]", vec![], vec![words(&["crème brûlée"], true)])]);
        assert!(
            matches!(verdict(&loose, &body("<p>CREME BRULEE</p>")), Verdict::Excluded(h) if h.word == Some("crème brûlée"))
        );
    }
}
