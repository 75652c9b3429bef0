//! Applies a feed's rewrite rules ([`Rewrite`]) to an entry: selectors on the content's HTML
//! tree (a real HTML parser's, so a selector means what it means in a browser), patterns on the
//! HTML text and on the title. Runs before sanitizing, so nothing a rule writes can smuggle
//! markup past the sanitizer.

use std::borrow::Cow;

use scraper::Html;

use crate::model::Rewrite;

/// `html` rewritten by `rules`, in order. Borrowed when there are none: every body of every
/// feed passes here on its way to the sanitizer.
pub(crate) fn html<'a>(rules: &[Rewrite], html: &'a str) -> Cow<'a, str> {
    let mut out = Cow::Borrowed(html);
    for rule in rules {
        out = Cow::Owned(match rule {
            Rewrite::Replace { pattern, with } => pattern.replace_all(&out, with.as_str()).into_owned(),
            Rewrite::Remove { selector, .. } => edit_tree(&out, selector, false),
            Rewrite::Unwrap { selector, .. } => edit_tree(&out, selector, true),
        });
    }
    out
}

/// Plain `text` (a title, a text body) rewritten by the rules that apply to text (`replace`);
/// borrowed when none does.
pub(crate) fn text<'a>(rules: &[Rewrite], text: &'a str) -> Cow<'a, str> {
    let mut out = Cow::Borrowed(text);
    for rule in rules {
        if let Rewrite::Replace { pattern, with } = rule {
            out = Cow::Owned(pattern.replace_all(&out, with.as_str()).into_owned());
        }
    }
    out
}

/// The fragment without the elements `selector` matches; with `keep_children`, what was inside
/// each stays in its place.
fn edit_tree(html: &str, selector: &scraper::Selector, keep_children: bool) -> String {
    let mut fragment = Html::parse_fragment(html);
    let matched: Vec<_> = fragment.select(selector).map(|e| e.id()).collect();
    if matched.is_empty() {
        return html.to_string();
    }
    for id in matched {
        if keep_children {
            let children: Vec<_> = fragment
                .tree
                .get(id)
                .map(|n| n.children().map(|c| c.id()).collect())
                .unwrap_or_default();
            for child in children {
                if let Some(mut node) = fragment.tree.get_mut(id) {
                    node.insert_id_before(child);
                }
            }
        }
        if let Some(mut node) = fragment.tree.get_mut(id) {
            node.detach();
        }
    }
    fragment.root_element().inner_html()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn css(kind: &str, css: &str) -> Rewrite {
        let selector = scraper::Selector::parse(css).unwrap();
        let css = css.to_string();
        match kind {
            "remove" => Rewrite::Remove { css, selector },
            _ => Rewrite::Unwrap { css, selector },
        }
    }

    #[test]
    fn rules_apply_in_order() {
        let rules = [
            css("remove", ".share, figure.ad"),
            css("unwrap", "span.wrap"),
            Rewrite::Replace {
                pattern: regex::Regex::new(r"(?i)read more(…|\.\.\.)?").unwrap(),
                with: String::new(),
            },
        ];
        let out = html(
            &rules,
            "<p>Story <span class=\"wrap\">with <b>words</b></span>.</p><div class=\"share\">Share!</div>\
             <figure class=\"ad\"><img src=\"https://ads.example/x.png\"></figure><p>Read more…</p>",
        );
        assert_eq!(out, "<p>Story with <b>words</b>.</p><p></p>");
        assert_eq!(text(&rules, "Title (Read more...)"), "Title ()");
        assert_eq!(html(&[], "<p>as is</p>"), "<p>as is</p>");
    }
}
