//! Owns text as every stage reads it: plain text from markup (titles, authors and categories
//! are plain text however a feed wrote them, and rules and outputs that need a body's words read
//! them through [`html_to_text`]), the characters XML forbids, the folding words are matched on
//! ([`fold`]), mojibake repaired run by run ([`mojibake`]), and languages: tags checked
//! against the IANA registry and detection from the text ([`language`]).
//!
//! It sits before every stage (it imports only `model`), because the config folds the words of
//! its rules exactly as `filter` folds the entries they judge.

pub(crate) mod fold;
pub(crate) mod language;
pub(crate) mod mojibake;

use ammonia::Builder;

/// The text of an HTML fragment: tags dropped, entities decoded, whitespace collapsed.
pub(crate) fn html_to_text(html: &str) -> String {
    let stripped = if html.contains('<') {
        Builder::empty().clean(html).to_string()
    } else {
        html.to_string()
    };
    collapse_whitespace(&html_escape::decode_html_entities(&stripped))
}

/// The start of the text of `html`, sanitized HTML as the content stage writes it (tags
/// well-formed, attribute values quoted, no comments or scripts), up to about `max_bytes`: a
/// cheap sample of an entry's words, for language detection, where [`html_to_text`]'s full
/// parse of every new entry would cost more than the detection itself.
pub(crate) fn visible_text(html: &str, max_bytes: usize) -> String {
    let mut out = String::with_capacity(max_bytes.min(html.len()));
    let mut quote = None;
    let mut in_tag = false;
    for c in html.chars() {
        match (in_tag, quote, c) {
            (false, _, '<') => {
                in_tag = true;
                out.push(' ');
            }
            (false, _, c) => out.push(c),
            (true, None, '>') => in_tag = false,
            (true, None, '"' | '\'') => quote = Some(c),
            (true, Some(q), c) if c == q => quote = None,
            _ => {}
        }
        if out.len() >= max_bytes {
            break;
        }
    }
    collapse_whitespace(&html_escape::decode_html_entities(&out))
}

/// Collapses runs of whitespace (including newlines inside titles) to single spaces, and
/// drops the characters XML forbids (see [`drop_controls`]).
pub(crate) fn collapse_whitespace(text: &str) -> String {
    let text = drop_controls(text);
    let mut out = String::with_capacity(text.len());
    for word in text.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// Whether XML 1.0 forbids `c` (C0 controls other than tab, newline and carriage return,
/// U+FFFE and U+FFFF): feeds carry them surprisingly often (JSON Feed escapes them, so they
/// survive any parser), and an output that held one would be unreadable.
pub fn forbidden(c: char) -> bool {
    matches!(c, '\u{0}'..='\u{8}' | '\u{b}' | '\u{c}' | '\u{e}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}')
}

/// `text` without the characters XML forbids: they never reach the store, nor an output.
pub(crate) fn drop_controls(text: &str) -> std::borrow::Cow<'_, str> {
    // Looked for byte by byte (decoding every character was a tenth of a cold poll's parse):
    // the C0 controls are single bytes, U+FFFE and U+FFFF are EF BF BE and EF BF BF.
    let b = text.as_bytes();
    let any = b.iter().enumerate().any(|(i, &byte)| match byte {
        0..=8 | 0xB | 0xC | 0xE..=0x1F => true,
        0xEF => b.get(i + 1) == Some(&0xBF) && matches!(b.get(i + 2), Some(0xBE | 0xBF)),
        _ => false,
    });
    if any {
        std::borrow::Cow::Owned(text.chars().filter(|c| !forbidden(*c)).collect())
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_characters_are_dropped() {
        assert_eq!(collapse_whitespace("a\u{1}b \u{b}c\td\u{ffff}"), "ab c d");
        assert_eq!(drop_controls("x\u{0}y\r\nz"), "xy\r\nz");
        // Byte by byte: U+FFFE/U+FFFF go, their neighbours (U+FFFD, U+EFBF) and accents stay.
        assert_eq!(
            drop_controls("é\u{fffe}\u{fffd}\u{ffff}\u{efbf}\u{1f}"),
            "é\u{fffd}\u{efbf}"
        );
        assert!(matches!(
            drop_controls("Café\t\u{fffd}"),
            std::borrow::Cow::Borrowed(_)
        ));
    }

    #[test]
    fn titles_become_text() {
        assert_eq!(
            html_to_text("History of the &lt;blink&gt; tag"),
            "History of the <blink> tag"
        );
        assert_eq!(html_to_text("<b>Bold</b>\n  move &amp; more"), "Bold move & more");
    }
}
