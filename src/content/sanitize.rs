//! Entry HTML, made safe once on the way in.
//!
//! Sanitizing is an allow-list (ammonia): no scripts, no event handlers, no `javascript:` or
//! `data:` URLs, no `style`, no `<base>`/`<meta>`/forms. Relative URLs are resolved against the
//! entry's base so the HTML still works when it is shown far from its origin.

use std::collections::HashMap;

use ammonia::{Builder, UrlRelative};
use url::Url;

/// One sanitizer per base URL: building an ammonia policy allocates its tag tables, and nearly
/// every entry in a document shares the feed's base, so the policy is built once per base.
#[derive(Default)]
pub struct Sanitizer {
    policies: HashMap<String, Builder<'static>>,
}

impl Sanitizer {
    /// A sanitizer with the safe subset's rules built once (they are reused for every body).
    pub fn new() -> Self {
        Sanitizer::default()
    }

    /// Sanitized HTML from untrusted `html`, with relative URLs resolved against `base`.
    pub fn clean(&mut self, html: &str, base: Option<&Url>) -> String {
        let clean = match super::fast_html::try_clean(html) {
            Some(clean) => trimmed(clean),
            None => self.ammonia_only(html, base),
        };
        without_sourceless_images(clean)
    }

    /// The full ammonia pass (what [`Sanitizer::clean`] falls back to).
    pub(super) fn ammonia_only(&mut self, html: &str, base: Option<&Url>) -> String {
        let key = base.map_or("", Url::as_str);
        if !self.policies.contains_key(key) {
            self.policies.insert(key.to_string(), policy(base));
        }
        match self.policies.get(key) {
            Some(policy) => trimmed(policy.clean(html).to_string()),
            None => String::new(),
        }
    }
}

/// `html` (sanitized, so serialized canonically: lowercase names, double-quoted attributes)
/// without `<img>` elements that lost their `src` to the sanitizer (a `javascript:` or `data:`
/// source): such an image is an empty box in every reader.
fn without_sourceless_images(html: String) -> String {
    if !html.contains("<img") {
        return html;
    }
    let mut out = String::with_capacity(html.len());
    let mut rest = html.as_str();
    while let Some(at) = rest.find("<img") {
        let after = &rest[at + 4..];
        let is_img = after.starts_with(['>', ' ', '/']);
        let end = after.find('>').map(|e| at + 4 + e + 1);
        match (is_img, end) {
            (true, Some(end)) => {
                out.push_str(&rest[..at]);
                let tag = &rest[at..end];
                if tag.contains(" src=\"") {
                    out.push_str(tag);
                }
                rest = &rest[end..];
            }
            _ => {
                out.push_str(&rest[..at + 4]);
                rest = &rest[at + 4..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// `s` without leading and trailing whitespace, in place.
/// `s` without leading and trailing HTML whitespace (ASCII only: a no-break space is content,
/// and ammonia writes it as `&nbsp;`, which no trim would touch).
pub(super) fn trimmed(mut s: String) -> String {
    let html_space = |c: char| c.is_ascii_whitespace();
    let end = s.trim_end_matches(html_space).len();
    s.truncate(end);
    let start = s.len() - s.trim_start_matches(html_space).len();
    s.drain(..start);
    s
}

fn policy(base: Option<&Url>) -> Builder<'static> {
    let mut builder = Builder::default();
    builder
        .url_schemes(
            ["http", "https", "mailto", "ftp", "magnet", "tel"]
                .into_iter()
                .collect(),
        )
        .link_rel(Some("noopener noreferrer"))
        .add_tag_attributes("img", ["loading"])
        .add_tag_attributes("audio", ["src", "controls"])
        .add_tag_attributes("video", ["src", "controls", "poster", "width", "height"])
        .add_tag_attributes("source", ["src", "type"])
        .add_tags(["audio", "video", "source", "figure", "figcaption"]);
    // Only http(s) bases can resolve relative URLs usefully; a file:// base (a local demo feed)
    // would turn links into paths on this machine, so relative URLs are dropped there instead.
    match base {
        Some(base) if matches!(base.scheme(), "http" | "https") => {
            builder.url_relative(UrlRelative::RewriteWithBase(base.clone()));
        }
        _ => {
            builder.url_relative(UrlRelative::PassThrough);
        }
    }
    builder
}

/// Plain-text HTML: an escaped rendering of text for use where HTML is expected.
pub(crate) fn text_to_html(text: &str) -> String {
    let escaped = html_escape::encode_text(text.trim());
    let paragraphs: Vec<String> = escaped
        .split("\n\n")
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| format!("<p>{}</p>", p.replace('\n', "<br>")))
        .collect();
    paragraphs.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_and_handlers_go_relative_urls_resolve() {
        let base = Url::parse("https://example.org/blog/post/").unwrap();
        let mut s = Sanitizer::new();
        let out = s.clean(
            "<p onclick=\"x()\">Hi <a href=\"../other\">o</a><script>alert(1)</script>\
             <a href=\"javascript:alert(1)\">j</a><img src=\"data:image/png;base64,AAAA\"></p>",
            Some(&base),
        );
        assert!(!out.contains("script") && !out.contains("onclick") && !out.contains("javascript"));
        assert!(!out.contains("data:"));
        assert!(out.contains("href=\"https://example.org/blog/other\""), "{out}");
    }

    #[test]
    fn images_without_a_source_go() {
        let mut s = Sanitizer::new();
        let out = s.clean(
            "<p>a<img src=\"javascript:alert(1)\" alt=\"x\">b<img src=\"https://e.org/i.png\"></p>",
            None,
        );
        assert_eq!(out, "<p>ab<img src=\"https://e.org/i.png\"></p>");
    }
}
