//! Owns the verdict of include / exclude rules ([`Rules`], compiled with the config) on an
//! entry.
//!
//! Feed rules run in the poll on the sanitized entry, just before it is stored (an excluded
//! entry is never stored); output rules run when an output is rendered, on the stored entry
//! (one store feeds many outputs). Both go through [`verdict`] on the same [`Fields`], and a
//! body is matched as its plain text (tags dropped, entities decoded), so a rule means the same
//! thing wherever it is written: `exclude = [{ content = "onclick" }]` matches no attribute at
//! either level, and `Tom & Jerry` matches a body written `Tom &amp; Jerry` at both.

use std::cell::OnceCell;

use crate::model::Entry;
pub use crate::model::{Field, Rule, Rules};
use crate::parse::html_to_text;

/// The parts of an entry rules can see: the title, author and categories as text, the bodies
/// as sanitized HTML (as they are stored).
#[derive(Debug, Clone, Copy, Default)]
pub struct Fields<'a> {
    pub title: &'a str,
    pub bodies: [Option<&'a str>; 2],
    pub author: Option<&'a str>,
    pub categories: &'a [String],
    pub link: Option<&'a str>,
}

impl<'a> Fields<'a> {
    pub fn of(entry: &'a Entry) -> Fields<'a> {
        Fields {
            title: &entry.title,
            bodies: [entry.summary.as_deref(), entry.content.as_deref()],
            author: entry.author.as_ref().map(|a| a.name.as_str()),
            categories: &entry.categories,
            link: entry.link.as_deref(),
        }
    }
}

/// One entry under judgement: the bodies' plain text is made once, when a rule first needs it.
struct Judged<'e, 'a> {
    fields: &'e Fields<'a>,
    bodies: OnceCell<Vec<String>>,
}

impl Judged<'_, '_> {
    fn matches(&self, rule: &Rule) -> bool {
        let (re, e) = (&rule.regex, self.fields);
        let title = || re.is_match(e.title);
        let content = || {
            let bodies = self
                .bodies
                .get_or_init(|| e.bodies.iter().flatten().map(|b| html_to_text(b)).collect());
            bodies.iter().any(|b| re.is_match(b))
        };
        let author = || e.author.is_some_and(|a| re.is_match(a));
        let category = || e.categories.iter().any(|c| re.is_match(c));
        let link = || e.link.is_some_and(|l| re.is_match(l));
        match rule.field {
            Field::Any => title() || content() || author() || category() || link(),
            Field::Title => title(),
            Field::Content => content(),
            Field::Author => author(),
            Field::Category => category(),
            Field::Link => link(),
        }
    }
}

/// Why an entry passes or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict<'r> {
    Keep,
    Excluded(&'r Rule),
    NotIncluded,
}

/// Which fields beyond the title and link some rule looks at: what must be read of an
/// entry before the rules can decide on it (bodies are most of a stored entry's bytes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Needs {
    pub bodies: bool,
    pub author: bool,
    pub categories: bool,
}

/// The fields `rules` read besides title and link.
pub fn needs(rules: &Rules) -> Needs {
    let mut needs = Needs::default();
    for rule in rules.include.iter().chain(&rules.exclude) {
        let any = rule.field == Field::Any;
        needs.bodies |= any || rule.field == Field::Content;
        needs.author |= any || rule.field == Field::Author;
        needs.categories |= any || rule.field == Field::Category;
    }
    needs
}

/// What `rules` say of an entry: an exclude rule that matches wins, then include rules (when
/// there are any) must match one.
pub(crate) fn verdict<'r>(rules: &'r Rules, e: &Fields<'_>) -> Verdict<'r> {
    let judged = Judged {
        fields: e,
        bodies: OnceCell::new(),
    };
    if let Some(rule) = rules.exclude.iter().find(|r| judged.matches(r)) {
        return Verdict::Excluded(rule);
    }
    if !rules.include.is_empty() && !rules.include.iter().any(|r| judged.matches(r)) {
        return Verdict::NotIncluded;
    }
    Verdict::Keep
}

pub fn keeps(rules: &Rules, e: &Fields<'_>) -> bool {
    rules.is_empty() || verdict(rules, e) == Verdict::Keep
}

#[cfg(test)]
mod tests {
    use super::*;
    use regex::Regex;

    fn rule(field: Field, re: &str) -> Rule {
        Rule {
            field,
            regex: Regex::new(re).unwrap(),
        }
    }

    #[test]
    fn exclude_wins_and_include_narrows() {
        let rules = Rules {
            include: vec![
                rule(Field::Category, "(?i)^rust$"),
                rule(Field::Title, "(?i)rust"),
            ],
            exclude: vec![rule(Field::Any, "(?i)sponsored")],
        };
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
        assert!(matches!(verdict(&rules, &sponsored), Verdict::Excluded(r) if r.field == Field::Any));
        let other = Fields {
            title: "Gardening",
            ..Fields::default()
        };
        assert_eq!(verdict(&rules, &other), Verdict::NotIncluded);
        assert!(keeps(&Rules::default(), &other));
    }
}
