//! Text from markup: titles, authors and categories are plain text, however a feed wrote them,
//! and rules and outputs that need a body's words read them through [`html_to_text`].

use ammonia::Builder;

/// The text of an HTML fragment: tags dropped, entities decoded, whitespace collapsed.
pub fn html_to_text(html: &str) -> String {
    let stripped = if html.contains('<') {
        Builder::empty().clean(html).to_string()
    } else {
        html.to_string()
    };
    collapse_whitespace(&html_escape::decode_html_entities(&stripped))
}

/// Collapses runs of whitespace (including newlines inside titles) to single spaces.
pub(crate) fn collapse_whitespace(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_become_text() {
        assert_eq!(
            html_to_text("History of the &lt;blink&gt; tag"),
            "History of the <blink> tag"
        );
        assert_eq!(html_to_text("<b>Bold</b>\n  move &amp; more"), "Bold move & more");
    }
}
