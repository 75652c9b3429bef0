//! Owns include / exclude rules: regular expressions on an entry's title, content, author,
//! categories or link, compiled once when the config is loaded.
//!
//! Feed rules run in the poll, before entries are stored (an excluded entry is never stored);
//! output rules run when an output is rendered (one store feeds many outputs). Both use
//! [`Rules::verdict`], so a rule means the same thing wherever it is written.

use std::fmt;

use regex::Regex;

/// Which part of an entry a rule looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// Title, content, summary, author, categories or link: any of them.
    Any,
    Title,
    /// Content or summary (HTML as the feed gave it).
    Content,
    Author,
    Category,
    Link,
}

impl Field {
    pub const NAMES: &'static [&'static str] = &["title", "content", "author", "category", "link"];

    pub fn from_name(name: &str) -> Option<Field> {
        Some(match name {
            "title" => Field::Title,
            "content" => Field::Content,
            "author" => Field::Author,
            "category" => Field::Category,
            "link" => Field::Link,
            _ => return None,
        })
    }
}

/// One compiled rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub field: Field,
    pub regex: Regex,
}

impl PartialEq for Rule {
    fn eq(&self, other: &Rule) -> bool {
        self.field == other.field && self.regex.as_str() == other.regex.as_str()
    }
}

impl Eq for Rule {}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.field {
            Field::Any => write!(f, "\"{}\"", self.regex.as_str()),
            field => write!(
                f,
                "{} = \"{}\"",
                format!("{field:?}").to_lowercase(),
                self.regex.as_str()
            ),
        }
    }
}

/// The parts of an entry rules can see.
#[derive(Debug, Clone, Copy, Default)]
pub struct Fields<'a> {
    pub title: &'a str,
    pub bodies: [Option<&'a str>; 2],
    pub author: Option<&'a str>,
    pub categories: &'a [String],
    pub link: Option<&'a str>,
}

impl Rule {
    fn matches(&self, e: &Fields<'_>) -> bool {
        let re = &self.regex;
        let title = || re.is_match(e.title);
        let content = || e.bodies.iter().flatten().any(|b| re.is_match(b));
        let author = || e.author.is_some_and(|a| re.is_match(a));
        let category = || e.categories.iter().any(|c| re.is_match(c));
        let link = || e.link.is_some_and(|l| re.is_match(l));
        match self.field {
            Field::Any => title() || content() || author() || category() || link(),
            Field::Title => title(),
            Field::Content => content(),
            Field::Author => author(),
            Field::Category => category(),
            Field::Link => link(),
        }
    }
}

/// A set of include and exclude rules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rules {
    /// When not empty, only entries matching one of these pass.
    pub include: Vec<Rule>,
    /// Entries matching any of these are dropped.
    pub exclude: Vec<Rule>,
}

/// Why an entry passes or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict<'r> {
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

impl Rules {
    pub fn is_empty(&self) -> bool {
        self.include.is_empty() && self.exclude.is_empty()
    }

    /// The fields these rules read besides title and link.
    pub fn needs(&self) -> Needs {
        let mut needs = Needs::default();
        for rule in self.include.iter().chain(&self.exclude) {
            let any = rule.field == Field::Any;
            needs.bodies |= any || rule.field == Field::Content;
            needs.author |= any || rule.field == Field::Author;
            needs.categories |= any || rule.field == Field::Category;
        }
        needs
    }

    pub fn verdict(&self, e: &Fields<'_>) -> Verdict<'_> {
        if let Some(rule) = self.exclude.iter().find(|r| r.matches(e)) {
            return Verdict::Excluded(rule);
        }
        if !self.include.is_empty() && !self.include.iter().any(|r| r.matches(e)) {
            return Verdict::NotIncluded;
        }
        Verdict::Keep
    }

    pub fn keeps(&self, e: &Fields<'_>) -> bool {
        self.verdict(e) == Verdict::Keep
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(rules.verdict(&e), Verdict::Keep);
        let sponsored = Fields {
            bodies: [Some("<p>Sponsored post</p>"), None],
            ..e
        };
        assert!(matches!(rules.verdict(&sponsored), Verdict::Excluded(r) if r.field == Field::Any));
        let other = Fields {
            title: "Gardening",
            ..Fields::default()
        };
        assert_eq!(rules.verdict(&other), Verdict::NotIncluded);
        assert!(Rules::default().keeps(&other));
    }
}
