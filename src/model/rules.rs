//! Include / exclude rules as the config states them, compiled once when the config is loaded:
//! regular expressions on a part of an entry, and lists of words or phrases (folded, in one
//! automaton). Each table of rules (`[rules]`, a `[[feed]]`, an `[[output]]`) keeps its place,
//! so that a verdict can name the rule that made it. What rules see of an entry ([`Fields`])
//! and which parts a set of rules reads ([`Needs`]) are nouns here, shared by `filter` and the
//! store; the verdict belongs to `filter`; how words are folded, to `text`.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use aho_corasick::AhoCorasick;
use regex::Regex;

/// Which part of an entry a rule looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    /// Title, content, summary, author, categories or link: any of them (words: any but the
    /// link).
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

/// Words or phrases matched as words on folded text (see `text::fold`): one automaton for the
/// whole list, so ten thousand words cost about what ten do.
#[derive(Debug)]
pub(crate) struct Words {
    /// Each word as written, with where: `"casino"`, or `spam.txt:12: 亚洲91视频`.
    pub(crate) written: Vec<String>,
    /// The folded words, in the order of `written`.
    pub(crate) automaton: AhoCorasick,
    /// Diacritics are dropped on both sides (`ignore_diacritics`).
    pub(crate) ignore_diacritics: bool,
    /// The file they were read from (`*_words_file`), if any.
    pub(crate) file: Option<PathBuf>,
}

/// What a rule looks for.
#[derive(Debug, Clone)]
pub(crate) enum Pattern {
    Regex(Regex),
    Words(Arc<Words>),
}

/// One compiled rule.
#[derive(Debug, Clone)]
pub(crate) struct Rule {
    pub(crate) field: Field,
    pub(crate) pattern: Pattern,
}

impl PartialEq for Rule {
    fn eq(&self, other: &Rule) -> bool {
        self.field == other.field
            && match (&self.pattern, &other.pattern) {
                (Pattern::Regex(a), Pattern::Regex(b)) => a.as_str() == b.as_str(),
                (Pattern::Words(a), Pattern::Words(b)) => {
                    a.written == b.written && a.ignore_diacritics == b.ignore_diacritics
                }
                _ => false,
            }
    }
}

impl Eq for Rule {}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.pattern, self.field) {
            (Pattern::Regex(re), Field::Any) => write!(f, "\"{}\"", re.as_str()),
            (Pattern::Regex(re), field) => {
                write!(f, "{} = \"{}\"", format!("{field:?}").to_lowercase(), re.as_str())
            }
            (Pattern::Words(words), _) => {
                let count = super::counted(words.written.len(), "word", "words");
                match &words.file {
                    Some(file) => write!(f, "words from {} ({count})", file.display()),
                    None => write!(f, "words ({count})"),
                }
            }
        }
    }
}

/// One table's include and exclude rules: `[rules]`, a `[[feed]]` or an `[[output]]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleTable {
    /// Where it was written, for verdicts: `[rules]`, `feed[2]`, `output[1]`.
    pub(crate) place: String,
    /// When not empty, only entries matching one of these pass.
    pub(crate) include: Vec<Rule>,
    /// Entries matching any of these are dropped.
    pub(crate) exclude: Vec<Rule>,
}

impl RuleTable {
    pub fn is_empty(&self) -> bool {
        self.include.is_empty() && self.exclude.is_empty()
    }
}

/// The rules an entry must pass: every table's. An output's are the planet-wide `[rules]`,
/// then its own; a feed's are its own.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rules {
    pub(crate) tables: Vec<Arc<RuleTable>>,
}

impl Rules {
    /// The non-empty tables of `tables`, in order.
    pub fn of(tables: impl IntoIterator<Item = Arc<RuleTable>>) -> Rules {
        Rules {
            tables: tables.into_iter().filter(|t| !t.is_empty()).collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.tables.iter().all(|t| t.is_empty())
    }
}

/// The parts of an entry rules can see: the title, author and categories as text, the bodies
/// as sanitized HTML (as they are stored).
#[derive(Debug, Clone, Copy, Default)]
pub struct Fields<'a> {
    pub(crate) title: &'a str,
    pub(crate) bodies: [Option<&'a str>; 2],
    pub(crate) author: Option<&'a str>,
    pub(crate) categories: &'a [String],
    pub(crate) link: Option<&'a str>,
}

impl<'a> Fields<'a> {
    /// What rules see of `entry`.
    pub fn of(entry: &'a super::Entry) -> Fields<'a> {
        Fields {
            title: &entry.title,
            bodies: [entry.summary.as_deref(), entry.content.as_deref()],
            author: entry.author.as_ref().map(|a| a.name.as_str()),
            categories: &entry.categories,
            link: entry.link.as_deref(),
        }
    }
}

/// Which fields beyond the title and link some rule looks at: what must be read of an
/// entry before the rules can decide on it (bodies are most of a stored entry's bytes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Needs {
    pub(crate) bodies: bool,
    pub(crate) author: bool,
    pub(crate) categories: bool,
}
