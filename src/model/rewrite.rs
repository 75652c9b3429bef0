//! Rewrite rules as the config states them (`[[feed]] rewrite`): what to take out of, or
//! change in, a feed's content before it is judged and stored. Applying them is `content`'s.

use std::fmt;

use regex::Regex;
use scraper::Selector;

/// One rewrite step; a feed's steps apply in order.
#[derive(Debug, Clone)]
pub enum Rewrite {
    /// Elements matching the selector go, with everything inside them.
    Remove { css: String, selector: Selector },
    /// Elements matching the selector go, their children stay where they were.
    Unwrap { css: String, selector: Selector },
    /// Every match of the pattern, in the content's HTML and in the title, becomes `with`
    /// (`$1`, `${name}` name groups).
    Replace { pattern: Regex, with: String },
}

impl PartialEq for Rewrite {
    fn eq(&self, other: &Rewrite) -> bool {
        self.to_string() == other.to_string()
    }
}

impl Eq for Rewrite {}

impl fmt::Display for Rewrite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rewrite::Remove { css, .. } => write!(f, "remove = {css:?}"),
            Rewrite::Unwrap { css, .. } => write!(f, "unwrap = {css:?}"),
            Rewrite::Replace { pattern, with } => {
                write!(f, "replace = {:?}, with = {with:?}", pattern.as_str())
            }
        }
    }
}
