//! Include / exclude rules as the config states them: regular expressions on a part of an
//! entry, compiled once when the config is loaded. What a rule matches against, and the verdict,
//! belong to `filter`.

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
    pub(crate) const NAMES: &'static [&'static str] = &["title", "content", "author", "category", "link"];

    pub(crate) fn from_name(name: &str) -> Option<Field> {
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

/// A set of include and exclude rules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rules {
    /// When not empty, only entries matching one of these pass.
    pub include: Vec<Rule>,
    /// Entries matching any of these are dropped.
    pub exclude: Vec<Rule>,
}

impl Rules {
    pub fn is_empty(&self) -> bool {
        self.include.is_empty() && self.exclude.is_empty()
    }
}
