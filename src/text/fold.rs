//! The form words are matched in: the same folding on the rule's side (when the config is
//! read) and on the entry's (when it is judged), so that a rule matches what a reader would call
//! the same word.
//!
//! - Unicode NFKC: full-width `９１` is `91`, `ﬁ` is `fi`, a half-width katakana is a katakana.
//! - Case folding (Unicode's full folding: `STRASSE` and `straße` agree).
//! - Simplified and Traditional Chinese folded together (to Simplified, by zhconv's MediaWiki
//!   tables): `亞洲91視頻` is `亚洲91视频`.
//! - Whitespace runs collapsed to one space.
//! - Optionally, diacritics dropped from Latin, Greek and Cyrillic letters (`café` is `cafe`);
//!   never from other scripts, whose marks are letters' parts (Devanagari vowel signs, kana
//!   voicing marks).
//!
//! A word matches where its folded form occurs in the folded text and, at an edge that is a
//! letter or digit of a script written with spaces, the text has no letter or digit either
//! (`ass` is not found in `class`; `91视频` is found in `亚洲91视频`: Chinese has no spaces).

use std::borrow::Cow;

use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfkc_quick};

/// `text` folded for matching; `ignore_diacritics` drops the marks of Latin, Greek and
/// Cyrillic letters as well.
pub(crate) fn fold(text: &str, ignore_diacritics: bool) -> String {
    let normalized: Cow<'_, str> = match is_nfkc_quick(text.chars()) {
        IsNormalized::Yes => Cow::Borrowed(text),
        _ => Cow::Owned(text.nfkc().collect()),
    };
    let mut folded = caseless::default_case_fold_str(&normalized);
    if folded.chars().any(is_han) {
        folded = zhconv::zhconv(&folded, zhconv::Variant::ZhHans);
    }
    if ignore_diacritics {
        folded = strip_diacritics(&folded);
    }
    collapse(&folded)
}

/// One automaton for `words` (as written), folded as [`fold`] folds the text they are
/// matched on; a word that folds to nothing is refused with its index.
pub(crate) fn automaton(
    words: &[&str],
    ignore_diacritics: bool,
) -> Result<aho_corasick::AhoCorasick, AutomatonError> {
    let folded: Vec<String> = words.iter().map(|w| fold(w, ignore_diacritics)).collect();
    if let Some(empty) = folded.iter().position(String::is_empty) {
        return Err(AutomatonError::Empty(empty));
    }
    aho_corasick::AhoCorasick::builder()
        // Every match, overlapping ones included: the first one found may not stand as a
        // word where a longer or later one does.
        .match_kind(aho_corasick::MatchKind::Standard)
        .build(&folded)
        .map_err(|e| AutomatonError::Build(e.to_string()))
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum AutomatonError {
    #[error("word {} is empty once folded (only spaces or marks)", .0 + 1)]
    Empty(usize),
    #[error("the word list is too large: {0}")]
    Build(String),
}

/// Whether the match at `start..end` of `text` (folded) stands as a word: not inside a
/// longer word of a script written with spaces.
pub(crate) fn is_word_at(text: &str, start: usize, end: usize) -> bool {
    let matched = &text[start..end];
    let before = text[..start].chars().next_back();
    let after = text[end..].chars().next();
    let joins = |edge: Option<char>, neighbour: Option<char>| match (edge, neighbour) {
        (Some(e), Some(n)) => word_char(e) && word_char(n),
        _ => false,
    };
    !joins(matched.chars().next(), before) && !joins(matched.chars().next_back(), after)
}

/// A letter or digit of a script whose words are separated by spaces: Chinese, Japanese, Thai,
/// Lao, Khmer and Burmese are not (a word there may begin or end anywhere).
fn word_char(c: char) -> bool {
    c.is_alphanumeric() && !spaceless(c)
}

fn spaceless(c: char) -> bool {
    is_han(c)
        || matches!(c,
            '\u{3040}'..='\u{30ff}'   // Hiragana, Katakana
            | '\u{31f0}'..='\u{31ff}' // Katakana phonetic extensions
            | '\u{ff66}'..='\u{ff9f}' // half-width Katakana
            | '\u{0e00}'..='\u{0eff}' // Thai, Lao
            | '\u{1780}'..='\u{17ff}' // Khmer
            | '\u{1000}'..='\u{109f}' // Myanmar
        )
}

/// A Han ideograph (CJK Unified Ideographs, their extensions and compatibility forms).
pub(crate) fn is_han(c: char) -> bool {
    matches!(c,
        '\u{3400}'..='\u{4dbf}'
        | '\u{4e00}'..='\u{9fff}'
        | '\u{f900}'..='\u{faff}'
        | '\u{20000}'..='\u{2ebef}'
        | '\u{30000}'..='\u{3134f}'
    )
}

/// Marks dropped after Latin, Greek and Cyrillic letters only (decomposed, then recomposed).
fn strip_diacritics(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut base_takes_marks = false;
    for c in text.nfd() {
        if unicode_normalization::char::is_combining_mark(c) {
            if base_takes_marks {
                continue;
            }
        } else {
            base_takes_marks = matches!(c, 'a'..='z' | 'A'..='Z' | '\u{00c0}'..='\u{024f}' | '\u{1e00}'..='\u{1eff}'
                | '\u{0370}'..='\u{03ff}' | '\u{1f00}'..='\u{1fff}' | '\u{0400}'..='\u{052f}');
        }
        out.push(c);
    }
    out.nfc().collect()
}

fn collapse(text: &str) -> String {
    if !text.contains(|c: char| c.is_whitespace() && c != ' ') && !text.contains("  ") {
        return text.trim().to_string();
    }
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn width_case_and_chinese_scripts_fold_together() {
        let rule = fold("亚洲91视频", false);
        assert_eq!(fold("亞洲91視頻", false), rule);
        assert_eq!(fold("亚洲９１视频", false), rule);
        assert_eq!(fold("亞洲９１視頻", false), rule);
        assert_eq!(fold("Straße", false), fold("STRASSE", false));
        assert_eq!(fold("ＣＡＳＩＮＯ", false), "casino");
        assert_eq!(fold("a \n\t b", false), "a b");
    }

    #[test]
    fn diacritics_go_only_when_asked_and_only_from_letters_that_take_them() {
        assert_eq!(fold("Café Ünïcode", true), "cafe unicode");
        assert_eq!(fold("Café", false), "café");
        assert_eq!(fold("Ёлка", true), "елка");
        // Kana voicing marks and Devanagari vowel signs are parts of letters.
        assert_eq!(fold("がぎ", true), "がぎ");
        assert_eq!(fold("हिंदी", true), fold("हिंदी", false));
    }

    #[test]
    fn words_need_their_edges_in_spaced_scripts_only() {
        let text = fold("A world class casino, 亚洲91视频,国产", false);
        let at = |w: &str| text.find(w).map(|s| is_word_at(&text, s, s + w.len()));
        assert_eq!(at("ass"), Some(false));
        assert_eq!(at("casino"), Some(true));
        assert_eq!(at("91视频"), Some(true));
        assert_eq!(at("洲91"), Some(true));
        assert_eq!(at("洲9"), Some(false));
        assert_eq!(at("world class"), Some(true));
    }
}
