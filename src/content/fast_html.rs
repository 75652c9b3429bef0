//! A fast path for sanitizing HTML that is already clean.
//!
//! ammonia parses every fragment into a DOM with html5ever, cleans it and serializes it again:
//! about 45 µs for 2 KB, which made sanitizing the largest cost of a poll. Most feed HTML is a
//! plain run of `<p>`, `<a href>`, `<em>`, `<img src>`… This module *recognizes* that strict
//! subset in one linear scan and, when the whole fragment belongs to it, returns it with the
//! attributes the policy does not allow removed and `rel="noopener noreferrer"` on links —
//! exactly what ammonia would keep. Anything outside the subset (unknown or uppercase tags,
//! comments, unquoted or entity-encoded attribute values, relative URLs, misnested or unclosed
//! elements, the constructs browsers repair) returns `None`, and the caller uses ammonia.
//!
//! The subset is chosen so that a browser's HTML parser builds exactly the tree the markup
//! says (no implied end tags, no adoption-agency repairs, no foster parenting), so what is
//! accepted cannot mean something else to a browser. The tests check the property that
//! matters, on generated fragments (a property test) and on every body of the corpus: for
//! every accepted fragment, a browser's parser builds the same tree from the fast path's output
//! as from ammonia's cleaning of the original (up to whitespace at the fragment's two ends).

/// Elements accepted, with the attributes kept on each (beyond `lang` and `title`). Sorted by
/// name: every start tag is looked up here.
const ELEMENTS: &[(&str, &[&str])] = &[
    ("a", &["href", "hreflang"]),
    ("abbr", &[]),
    ("article", &[]),
    ("aside", &[]),
    ("b", &[]),
    ("bdi", &[]),
    ("blockquote", &["cite"]),
    ("br", &[]),
    ("center", &[]),
    ("cite", &[]),
    ("code", &[]),
    ("dd", &[]),
    ("del", &["cite", "datetime"]),
    ("dfn", &[]),
    ("div", &[]),
    ("dl", &[]),
    ("dt", &[]),
    ("em", &[]),
    ("figcaption", &[]),
    ("figure", &[]),
    ("footer", &[]),
    ("h1", &[]),
    ("h2", &[]),
    ("h3", &[]),
    ("h4", &[]),
    ("h5", &[]),
    ("h6", &[]),
    ("header", &[]),
    ("hr", &["align", "size", "width"]),
    ("i", &[]),
    ("img", &["align", "alt", "height", "src", "width", "loading"]),
    ("ins", &["cite", "datetime"]),
    ("kbd", &[]),
    ("li", &[]),
    ("mark", &[]),
    ("nav", &[]),
    ("ol", &["start"]),
    ("p", &[]),
    ("pre", &[]),
    ("q", &["cite"]),
    ("s", &[]),
    ("samp", &[]),
    ("small", &[]),
    ("span", &[]),
    ("strike", &[]),
    ("strong", &[]),
    ("sub", &[]),
    ("sup", &[]),
    ("time", &[]),
    ("tt", &[]),
    ("u", &[]),
    ("ul", &[]),
    ("var", &[]),
    ("wbr", &[]),
];

const GENERIC_ATTRIBUTES: &[&str] = &["lang", "title"];
const URL_ATTRIBUTES: &[&str] = &["href", "src", "cite"];
const VOID: &[&str] = &["br", "hr", "img", "wbr"];
/// Start tags that make a browser close an open `<p>` (HTML's "close a p element").
const CLOSES_P: &[&str] = &[
    "article",
    "aside",
    "blockquote",
    "center",
    "dd",
    "div",
    "dl",
    "dt",
    "figcaption",
    "figure",
    "footer",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hr",
    "li",
    "nav",
    "ol",
    "p",
    "pre",
    "ul",
];
/// Elements whose nesting in themselves (or each other) browsers repair.
const NO_SELF_NESTING: &[&str] = &["a", "li", "dt", "dd", "h1", "h2", "h3", "h4", "h5", "h6"];

/// The fragment with disallowed attributes removed, if it is in the strict subset.
pub(super) fn try_clean(html: &str) -> Option<String> {
    let bytes = html.as_bytes();
    let mut out = String::with_capacity(html.len() + 64);
    let mut stack: Vec<&'static str> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'<' => {
                let end = i + memchr::memchr(b'>', &bytes[i..])?;
                let tag = &html[i + 1..end];
                if let Some(name) = tag.strip_prefix('/') {
                    let open = stack.pop()?;
                    if name != open {
                        return None;
                    }
                    out.push_str("</");
                    out.push_str(open);
                    out.push('>');
                } else {
                    start_tag(tag, &mut stack, &mut out)?;
                }
                i = end + 1;
            }
            // Text is copied as it is, character references included: a browser reads it
            // exactly as it would have read it in the original. NUL and other control
            // characters are repaired by parsers, though: not the fast path's job.
            _ => {
                let next = memchr::memchr(b'<', &bytes[i..]).map_or(html.len(), |n| i + n);
                let run = &html[i..next];
                if has_control(run.as_bytes()) {
                    return None;
                }
                out.push_str(run);
                i = next;
            }
        }
    }
    stack.is_empty().then_some(out)
}

fn start_tag(tag: &str, stack: &mut Vec<&'static str>, out: &mut String) -> Option<()> {
    let name_len = tag
        .bytes()
        .position(|c| !c.is_ascii_lowercase() && !c.is_ascii_digit())
        .unwrap_or(tag.len());
    let (name, mut rest) = tag.split_at(name_len);
    let &(name, allowed) = ELEMENTS
        .binary_search_by(|(n, _)| n.cmp(&name))
        .ok()
        .and_then(|i| ELEMENTS.get(i))?;
    if stack.contains(&"p") && CLOSES_P.contains(&name) {
        return None;
    }
    if NO_SELF_NESTING.contains(&name) && stack.iter().any(|open| nesting_conflict(open, name)) {
        return None;
    }
    let void = VOID.contains(&name);
    if let Some(r) = rest.strip_suffix('/') {
        if !void {
            return None;
        }
        rest = r;
    }
    out.push('<');
    out.push_str(name);
    let mut seen: Vec<&str> = Vec::new();
    loop {
        let trimmed = rest.trim_start_matches([' ', '\t', '\n', '\r']);
        if trimmed.is_empty() {
            break;
        }
        if trimmed.len() == rest.len() {
            // Attributes must be separated by whitespace.
            return None;
        }
        let eq = trimmed.find('=')?;
        let attr = &trimmed[..eq];
        if attr.is_empty()
            || !attr.bytes().all(|c| c.is_ascii_lowercase() || c == b'-')
            || seen.contains(&attr)
        {
            return None;
        }
        seen.push(attr);
        let value_start = trimmed[eq + 1..].strip_prefix('"')?;
        let close = value_start.find('"')?;
        let value = &value_start[..close];
        if value
            .bytes()
            .any(|c| matches!(c, b'<' | b'>' | b'`' | b'&') || c < 0x20)
        {
            return None;
        }
        rest = &value_start[close + 1..];
        if attr == "rel" {
            continue;
        }
        if !(GENERIC_ATTRIBUTES.contains(&attr) || allowed.contains(&attr)) {
            continue;
        }
        if URL_ATTRIBUTES.contains(&attr) && !is_absolute_web_url(value) {
            return None;
        }
        out.push(' ');
        out.push_str(attr);
        out.push_str("=\"");
        out.push_str(value);
        out.push('"');
    }
    if name == "a" {
        out.push_str(" rel=\"noopener noreferrer\"");
    }
    out.push('>');
    if !void {
        stack.push(name);
    }
    Some(())
}

/// Whether `text` has a control character other than tab, newline and carriage return.
fn has_control(text: &[u8]) -> bool {
    // A fold without early exit (and `&`, not `&&`) compiles to vector code: text runs are
    // most of every body.
    text.iter().fold(false, |found, &c| {
        found | ((c < 0x20) & (c != b'\t') & (c != b'\n') & (c != b'\r'))
    })
}

/// Whether opening `new` inside `open` is something browsers restructure.
fn nesting_conflict(open: &str, new: &str) -> bool {
    let heading = |n: &str| n.len() == 2 && n.starts_with('h') && n.as_bytes()[1].is_ascii_digit();
    open == new
        || (heading(open) && heading(new))
        || (matches!(open, "dt" | "dd") && matches!(new, "dt" | "dd"))
}

/// An absolute URL with a scheme the policy allows, written plainly (no whitespace, no
/// entities): only then is keeping it as-is certainly what ammonia would do.
fn is_absolute_web_url(value: &str) -> bool {
    // Bytes, not a str slice: the prefix length may fall inside a multi-byte character.
    let after = |p: &str| {
        (value.len() > p.len() && value.as_bytes()[..p.len()].eq_ignore_ascii_case(p.as_bytes()))
            .then(|| &value.as_bytes()[p.len()..])
    };
    let web = after("https://").or_else(|| after("http://"));
    (web.is_some() || after("mailto:").is_some())
        && !value.bytes().any(|c| c <= b' ' || c == b'\\' || c >= 0x7f)
        // ammonia drops a URL that does not parse. Parsing one costs more than the rest of
        // the fast path together, so the common shape is recognized as valid first.
        && (web.is_some_and(plainly_valid_authority) || url::Url::parse(value).is_ok())
}

/// Whether what follows `http://` starts with a host and port the URL parser certainly
/// accepts: dot-separated ASCII labels of letters, digits and single hyphens, the last one
/// starting with a letter (so it is never read as an IPv4 address), no user info, and a
/// port that fits 16 bits. The rest of a URL (path, query, fragment) never fails to parse
/// once whitespace, controls, backslashes and non-ASCII are excluded; the caller did that.
fn plainly_valid_authority(rest: &[u8]) -> bool {
    let end = memchr::memchr3(b'/', b'?', b'#', rest).unwrap_or(rest.len());
    let authority = &rest[..end];
    let (host, port) = match memchr::memchr(b':', authority) {
        Some(colon) => (&authority[..colon], Some(&authority[colon + 1..])),
        None => (authority, None),
    };
    let label_ok =
        |label: &[u8]| !label.is_empty() && label.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-');
    // "--" also rules out punycode ("xn--") labels, which must decode to be valid.
    let host_ok = host.split(|c| *c == b'.').all(label_ok)
        && memchr::memmem::find(host, b"--").is_none()
        && host
            .rsplit(|c| *c == b'.')
            .next()
            .and_then(|last| last.first())
            .is_some_and(u8::is_ascii_alphabetic);
    let port_ok = port.is_none_or(|p| {
        (1..=5).contains(&p.len())
            && p.iter().all(u8::is_ascii_digit)
            && std::str::from_utf8(p)
                .ok()
                .and_then(|p| p.parse::<u32>().ok())
                .is_some_and(|p| p <= 65535)
    });
    host_ok && port_ok
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn ammonia(html: &str) -> String {
        let base = url::Url::parse("https://example.org/base/").unwrap();
        super::super::sanitize::Sanitizer::new().ammonia_only(html, Some(&base))
    }

    /// The tree a browser builds from a fragment, written canonically: elements with their
    /// attributes sorted, text decoded and re-escaped, so that two fragments are equal here
    /// exactly when they mean the same document.
    fn tree(html: &str) -> String {
        fn walk(element: scraper::ElementRef<'_>, out: &mut String) {
            for (i, child) in element.children().enumerate() {
                match child.value() {
                    // ammonia's serializer writes `<pre>` with its text's leading newline as
                    // is, which a parser then drops (HTML drops one newline after `<pre>`):
                    // ammonia loses it, the fast path keeps it. Either way a reader sees the
                    // same, so the comparison ignores it.
                    // Two serializer round trips ammonia does not survive, both whitespace a
                    // reader never sees: a carriage return written `&#13;` stays one, while
                    // ammonia writes it raw and a parser reads a newline; and ammonia writes a
                    // `<pre>` text's leading newline as is, which a parser then drops.
                    scraper::Node::Text(text) => {
                        let text = text.replace("\r\n", "\n").replace('\r', "\n");
                        let text = match (i, element.value().name()) {
                            (0, "pre") => text.strip_prefix('\n').unwrap_or(&text),
                            _ => &text,
                        };
                        out.push_str(&html_escape::encode_text(text));
                    }
                    scraper::Node::Element(e) => {
                        let mut attrs: Vec<(&str, &str)> = e.attrs().collect();
                        attrs.sort_unstable();
                        out.push('<');
                        out.push_str(e.name());
                        for (name, value) in attrs {
                            out.push_str(&format!(
                                " {name}=\"{}\"",
                                html_escape::encode_double_quoted_attribute(value)
                            ));
                        }
                        out.push('>');
                        if let Some(inner) = scraper::ElementRef::wrap(child) {
                            walk(inner, out);
                        }
                        out.push_str(&format!("</{}>", e.name()));
                    }
                    other => out.push_str(&format!("{other:?}")),
                }
            }
        }
        let mut out = String::new();
        walk(scraper::Html::parse_fragment(html).root_element(), &mut out);
        // Whitespace at the fragment's two ends is trimmed by the sanitizer when written as
        // such and kept when written as a character reference (`&#xa;`); a reader renders
        // neither.
        out.trim_matches(|c: char| c.is_ascii_whitespace()).to_string()
    }

    /// What the module doc claims and the fast path's safety rests on: whenever it accepts a
    /// fragment, its output means exactly what ammonia's cleaning of the same fragment means
    /// (the same tree once a browser parses either, up to whitespace at the two ends).
    fn check(html: &str) -> Option<String> {
        // Sanitizer::clean trims either path's result the same way.
        let fast = try_clean(html).map(super::super::sanitize::trimmed);
        if let Some(f) = &fast {
            assert_eq!(
                tree(f),
                tree(&ammonia(html)),
                "fast path diverges for {html:?}:\n{f}"
            );
        }
        fast
    }

    /// Fragments made of the subset's own elements and of what lies just outside it: allowed
    /// and disallowed attributes, absolute, relative and script URLs, entities (named,
    /// numeric, legacy prefixes, unknown), raw `<`, `>`, `&`, quotes and misnesting.
    fn fragment() -> impl Strategy<Value = String> {
        let text = prop::sample::select(vec![
            "word",
            " ",
            "AT&T",
            "a < b",
            "x > y",
            "&amp;",
            "&eacute;",
            "&#233;",
            "&#xE9;",
            "&notit;",
            "&bogus;",
            "\"q\"",
            "'s",
            "&#0;",
            "&#x110000;",
            "\u{a0}",
            "é",
            "\u{202e}",
            "\n",
        ])
        .prop_map(str::to_string);
        let attr = prop::sample::select(vec![
            "",
            " title=\"t\"",
            " lang=\"de\"",
            " class=\"c\"",
            " style=\"color:red\"",
            " onclick=\"x()\"",
            " href=\"https://example.org/a?b=1&amp;c=2\"",
            " href=\"/relative\"",
            " href=\"javascript:alert(1)\"",
            " href=\"HTTPS://EXAMPLE.org/\"",
            " src=\"https://e.org/i.png\"",
            " src=\"data:image/png;base64,AA\"",
            " alt=\"a &quot;b&quot;\"",
            " title='single'",
            " hidden",
            " rel=\"me\"",
            " width=\"10\"",
        ])
        .prop_map(str::to_string);
        let name = prop::sample::select(vec![
            "p",
            "a",
            "em",
            "strong",
            "img",
            "br",
            "ul",
            "li",
            "blockquote",
            "code",
            "pre",
            "div",
            "span",
            "h2",
            "sub",
            "q",
            "table",
            "script",
            "style",
            "font",
            "P",
            "svg",
        ]);
        let leaf = prop_oneof![
            text.clone(),
            (name.clone(), attr.clone()).prop_map(|(n, a)| format!("<{n}{a}>"))
        ];
        leaf.prop_recursive(4, 24, 4, move |inner| {
            prop_oneof![
                (
                    name.clone(),
                    attr.clone(),
                    prop::collection::vec(inner.clone(), 0..4)
                )
                    .prop_map(|(n, a, kids)| format!("<{n}{a}>{}</{n}>", kids.concat())),
                prop::collection::vec(inner.clone(), 1..4).prop_map(|parts| parts.concat()),
                (
                    inner,
                    prop::sample::select(vec!["</p>", "</a>", "<!-- c -->", "<", "&", "</b>"])
                )
                    .prop_map(|(a, junk)| format!("{a}{junk}")),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn fast_path_means_what_ammonia_keeps(html in fragment()) {
            check(&html);
        }
    }

    /// The generated fragments do reach the fast path (a property over fragments that all
    /// fall back would prove nothing).
    #[test]
    fn generated_fragments_take_the_fast_path_often() {
        use proptest::strategy::ValueTree;
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let strategy = fragment();
        let accepted = (0..1000)
            .filter(|_| check(&strategy.new_tree(&mut runner).unwrap().current()).is_some())
            .count();
        assert!(
            accepted > 150,
            "only {accepted} of 1000 generated fragments took the fast path"
        );
    }

    #[test]
    fn clean_html_takes_the_fast_path() {
        let html = "<p>Hello <a href=\"https://example.org/x\" class=\"c\" rel=\"me\">there</a> &amp; <em>you</em> &eacute;&#233;&#xE9; &notit;.</p>\
                    <ul><li>one</li><li>two <img src=\"https://e.org/i.png\" alt=\"i\"/></li></ul><br><hr />AT&T > 3";
        let out = check(html).expect("fast path");
        assert!(
            out.contains("<a href=\"https://example.org/x\" rel=\"noopener noreferrer\">"),
            "{out}"
        );
        assert!(!out.contains("class="));
        // Disallowed attributes are simply dropped, as ammonia drops them.
        assert_eq!(
            check("<p onclick=\"x()\" style=\"color:red\">a</p>").as_deref(),
            Some("<p>a</p>")
        );
    }

    /// Found by `cargo fuzz run feed`: a multi-byte character where the scheme would end
    /// panicked on a str slice.
    #[test]
    fn non_ascii_where_a_scheme_would_be() {
        assert_eq!(
            check("<a href=\"h\u{ff}\u{ff}\u{ff}\u{ff}ttp://e.org/\">x</a>"),
            None
        );
        assert_eq!(check("<img src=\"mailt\u{e9}\">"), None);
    }

    #[test]
    fn elements_are_sorted_for_lookup() {
        assert!(ELEMENTS.windows(2).all(|w| w[0].0 < w[1].0));
    }

    /// The URL shortcut never calls valid what the URL parser rejects: every authority over
    /// an alphabet of the characters that matter, up to five characters long.
    #[test]
    fn plainly_valid_authorities_are_valid_urls() {
        let alphabet = ['a', 'Z', '0', '9', '-', '.', ':', '@', '%', 'x', 'n'];
        let mut authorities = vec![String::new()];
        let mut accepted = 0;
        for _ in 0..5 {
            authorities = authorities
                .iter()
                .flat_map(|a| alphabet.iter().map(move |c| format!("{a}{c}")))
                .collect();
            for authority in &authorities {
                for rest in ["", "/p?q#f"] {
                    let url = format!("http://{authority}{rest}");
                    if plainly_valid_authority(&url.as_bytes()[7..]) {
                        accepted += 1;
                        assert!(url::Url::parse(&url).is_ok(), "{url:?}");
                    }
                }
            }
        }
        assert!(accepted > 1000, "{accepted}");
        for url in [
            "https://example.org/a",
            "http://a-b.example.com:8080/x?y=1#z",
            "https://EXAMPLE.org",
        ] {
            assert!(is_absolute_web_url(url), "{url}");
        }
        for url in [
            "http://1.2.3.999/",
            "http://example.99/",
            "http://xn--a.example/",
            "http://host:65536/",
            "http://user@/",
            "http:///path",
        ] {
            assert!(!plainly_valid_authority(&url.as_bytes()[7..]), "{url}");
            assert_eq!(is_absolute_web_url(url), url::Url::parse(url).is_ok(), "{url}");
        }
    }

    #[test]
    fn everything_else_falls_back() {
        for html in [
            "<script>alert(1)</script>",
            "<a href=\"javascript:alert(1)\">j</a>",
            "<a href=\"&#106;avascript:alert(1)\">j</a>",
            "<a href=\"/relative\">r</a>",
            "<img src=x onerror=alert(1)>",
            "<p>unclosed",
            "<b><i>misnested</b></i>",
            "<p><div>auto-closed p</div></p>",
            "<li>a<li>b",
            "<a href=\"https://e.org\"><a href=\"https://f.org\">x</a></a>",
            "<!-- comment -->",
            "<P>upper</P>",
            "<svg><script>x</script></svg>",
            "<style>p{}</style>",
            "<base href=\"https://evil.example/\">",
            "<meta http-equiv=\"refresh\" content=\"0\">",
            "<p title='single'>x</p>",
            "<p hidden>x</p>",
            "a\u{0}b",
            "<table><tr><td>x</td></tr></table>",
        ] {
            assert_eq!(check(html), None, "{html:?} must fall back");
        }
    }

    /// The same property over every HTML body in the real-world corpus (when it is there;
    /// the integration suite's corpus test reports a missing corpus).
    #[test]
    fn fast_path_agrees_with_ammonia_on_the_corpus() {
        let dir = std::env::var_os("TRIBUTARY_CORPUS")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus"));
        let Ok(manifest) = std::fs::read_to_string(dir.join("manifest.tsv")) else {
            // CI sets TRIBUTARY_REQUIRE_ALL: there a missing corpus fails instead of skipping.
            assert!(
                std::env::var_os("TRIBUTARY_REQUIRE_ALL").is_none(),
                "TRIBUTARY_REQUIRE_ALL is set but there is no corpus at {}",
                dir.display()
            );
            eprintln!("SKIPPED: no corpus at {} (set TRIBUTARY_CORPUS)", dir.display());
            return;
        };
        let (mut bodies, mut fast) = (0, 0);
        for line in manifest.lines().skip(1) {
            let path = dir.join("feeds").join(line.split('\t').next().unwrap());
            let bytes = std::fs::read(&path).unwrap();
            let text = crate::decode::decode(bytes, None).text;
            let base = url::Url::from_file_path(&path).unwrap();
            let Ok(feed) = crate::parse::parse_document(&text, &base) else {
                continue;
            };
            for entry in feed.entries {
                for body in [entry.summary, entry.content]
                    .into_iter()
                    .flatten()
                    .filter(|b| b.is_html)
                {
                    bodies += 1;
                    fast += usize::from(check(&body.text).is_some());
                }
            }
        }
        eprintln!("fast path took {fast} of {bodies} corpus HTML bodies");
        assert!(bodies > 1000);
    }
}
