//! Owns decoding: a fetched body's bytes → UTF-8 text, before any parser sees them.
//!
//! The order follows what real feeds need (and what XML 1.0 Appendix F and RFC 7303 suggest):
//! a byte-order mark wins; then bytes that are valid UTF-8 are UTF-8, because a legacy label on
//! UTF-8 bytes is a common publishing mistake while legacy bytes that happen to be valid UTF-8
//! are vanishingly rare; then the HTTP charset; then the XML declaration, or for a web page
//! (full text, scraped sources) its `<meta charset>`; then statistical detection (chardetng).
//! The result never contains U+FEFF at its start.

use encoding_rs::{Encoding, UTF_8, UTF_16BE, UTF_16LE};

/// Text decoded from a feed body, with the encoding that was used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    pub text: String,
    /// The WHATWG name of the encoding used ("UTF-8", "Shift_JIS", …; "UTF-32BE"/"UTF-32LE" too).
    pub(crate) encoding: &'static str,
}

/// Decodes `bytes` using the charset from `content_type` (an HTTP Content-Type value) if any.
/// Takes the bytes by value so that the common case, valid UTF-8, costs no copy.
pub fn decode(bytes: Vec<u8>, content_type: Option<&str>) -> Decoded {
    if let Some(decoded) = decode_utf32(&bytes) {
        return decoded;
    }
    if let Some((encoding, bom_len)) = Encoding::for_bom(&bytes) {
        return with(encoding, &bytes[bom_len..]);
    }
    if let Some(encoding) = sniff_utf16(&bytes) {
        return with(encoding, &bytes);
    }
    let bytes = match String::from_utf8(bytes) {
        Ok(text) => {
            return Decoded {
                text,
                encoding: UTF_8.name(),
            };
        }
        Err(e) => e.into_bytes(),
    };
    let bytes = &bytes[..];
    let labelled = content_type
        .and_then(http_charset)
        .or_else(|| xml_declared_encoding(bytes))
        .or_else(|| html_meta_charset(bytes))
        .and_then(|label| Encoding::for_label(label.as_bytes()))
        // A UTF-16 label on bytes without a BOM that are not UTF-16-shaped is a lie, and a UTF-8
        // label on invalid UTF-8 is one too: both go to detection.
        .filter(|e| *e != UTF_8 && *e != UTF_16LE && *e != UTF_16BE);
    let encoding = labelled.unwrap_or_else(|| detect(bytes));
    with(encoding, bytes)
}

fn with(encoding: &'static Encoding, bytes: &[u8]) -> Decoded {
    let (text, _) = encoding.decode_without_bom_handling(bytes);
    Decoded {
        text: text.into_owned(),
        encoding: encoding.name(),
    }
}

fn detect(bytes: &[u8]) -> &'static Encoding {
    let mut detector = chardetng::EncodingDetector::new(chardetng::Iso2022JpDetection::Deny);
    detector.feed(bytes, true);
    detector.guess(None, chardetng::Utf8Detection::Deny)
}

/// The `charset` parameter of a Content-Type header value.
pub(crate) fn http_charset(content_type: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|param| {
        let (name, value) = param.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| value.trim().trim_matches(['"', '\'']).trim().to_string())
            .filter(|v| !v.is_empty())
    })
}

/// The `encoding` pseudo-attribute of an XML declaration at the start of `bytes`.
fn xml_declared_encoding(bytes: &[u8]) -> Option<String> {
    let head = &bytes[..bytes.len().min(512)];
    let start = head.windows(5).position(|w| w == b"<?xml")?;
    if head[..start].iter().any(|b| !b.is_ascii_whitespace()) {
        return None;
    }
    let decl = &head[start..];
    let end = decl.windows(2).position(|w| w == b"?>")?;
    let decl = std::str::from_utf8(&decl[..end]).ok()?;
    let rest = &decl[decl.find("encoding")? + "encoding".len()..];
    let rest = rest.trim_start().strip_prefix('=')?.trim_start();
    let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let value = &rest[1..];
    Some(value[..value.find(quote)?].trim().to_string())
}

/// How far into a page its `<meta charset>` may be, as browsers look (the HTML standard's
/// prescan reads the first 1024 bytes).
const META_PRESCAN: usize = 1024;

/// The charset a web page declares in a `<meta charset>` or `<meta http-equiv="Content-Type">`
/// within its first [`META_PRESCAN`] bytes. Those bytes are read as windows-1252 (every
/// encoding such a label can name is ASCII-compatible there) by a real HTML parser, so
/// comments and scripts mean what they mean to a browser.
fn html_meta_charset(bytes: &[u8]) -> Option<String> {
    let head = &bytes[..bytes.len().min(META_PRESCAN)];
    // Feeds have no <meta>: most bodies stop at this test.
    if !head.windows(5).any(|w| w.eq_ignore_ascii_case(b"<meta")) {
        return None;
    }
    let (text, _) = encoding_rs::WINDOWS_1252.decode_without_bom_handling(head);
    let document = scraper::Html::parse_document(&text);
    let meta = scraper::Selector::parse("meta").ok()?;
    document.select(&meta).find_map(|m| {
        let element = m.value();
        if let Some(charset) = element.attr("charset") {
            return Some(charset.trim().to_string()).filter(|c| !c.is_empty());
        }
        let content_type = element
            .attr("http-equiv")
            .filter(|h| h.trim().eq_ignore_ascii_case("content-type"))
            .and(element.attr("content"))?;
        http_charset(content_type)
    })
}

/// UTF-16 without a BOM, recognised by the NUL bytes around the ASCII `<` that starts XML
/// (XML 1.0 Appendix F.1).
fn sniff_utf16(bytes: &[u8]) -> Option<&'static Encoding> {
    match bytes {
        [b'<', 0, c, 0, ..] if *c != 0 => Some(UTF_16LE),
        [0, b'<', 0, c, ..] if *c != 0 => Some(UTF_16BE),
        _ => None,
    }
}

/// UTF-32, which encoding_rs deliberately does not support (the WHATWG Encoding Standard
/// dropped it), but which a few feeds and XML test suites still use.
fn decode_utf32(bytes: &[u8]) -> Option<Decoded> {
    let (big_endian, skip) = match bytes {
        [0, 0, 0xFE, 0xFF, ..] => (true, 4),
        [0xFF, 0xFE, 0, 0, ..] => (false, 4),
        [0, 0, 0, b'<', ..] => (true, 0),
        [b'<', 0, 0, 0, ..] => (false, 0),
        _ => return None,
    };
    let text = bytes[skip..]
        .chunks(4)
        .map(|c| {
            let mut word = [0u8; 4];
            word[..c.len()].copy_from_slice(c);
            let n = if big_endian {
                u32::from_be_bytes(word)
            } else {
                u32::from_le_bytes(word)
            };
            char::from_u32(n).unwrap_or(char::REPLACEMENT_CHARACTER)
        })
        .collect();
    Some(Decoded {
        text,
        encoding: if big_endian { "UTF-32BE" } else { "UTF-32LE" },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_without_an_http_charset_is_read_in_the_charset_its_meta_declares() {
        let page = |meta: &str| {
            format!(
                "<!doctype html><html><head><!-- <meta charset=\"utf-16\"> -->{meta}\
                 <title>Новости</title></head><body><p>Привет, мир</p></body></html>"
            )
        };
        for meta in [
            "<meta charset=\"koi8-r\">",
            "<META HTTP-EQUIV=\"Content-Type\" CONTENT=\"text/html; charset=KOI8-R\">",
        ] {
            let text = page(meta);
            let (bytes, _, _) = encoding_rs::KOI8_R.encode(&text);
            // Detection alone would guess another Cyrillic encoding (it never answers KOI8-R).
            let d = decode(bytes.into_owned(), Some("text/html"));
            assert_eq!(d.encoding, "KOI8-R", "{meta}");
            assert!(d.text.contains("Привет, мир"), "{meta}: {}", d.text);
        }
        // The HTTP charset wins over the page's own.
        let text = page("<meta charset=\"koi8-r\">");
        let (bytes, _, _) = encoding_rs::WINDOWS_1251.encode(&text);
        let d = decode(bytes.into_owned(), Some("text/html; charset=windows-1251"));
        assert_eq!(d.encoding, "windows-1251");
    }

    #[test]
    fn valid_utf8_beats_a_legacy_label() {
        let xml = "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><rss><title>Café</title></rss>";
        let d = decode(xml.as_bytes().to_vec(), Some("text/xml; charset=iso-8859-1"));
        assert_eq!(d.encoding, "UTF-8");
        assert!(d.text.contains("Café"));
    }

    #[test]
    fn http_charset_then_declaration_then_detection() {
        let (bytes, _, _) =
            encoding_rs::WINDOWS_1251.encode("<?xml version=\"1.0\"?><t>Привет мир, как дела</t>");
        let d = decode(
            bytes.to_vec(),
            Some("application/rss+xml; charset=\"windows-1251\""),
        );
        assert_eq!(d.encoding, "windows-1251");
        assert!(d.text.contains("Привет"));

        let (bytes, _, _) = encoding_rs::SHIFT_JIS
            .encode("<?xml version=\"1.0\" encoding=\"Shift_JIS\"?><t>日本語のテキスト</t>");
        assert!(decode(bytes.to_vec(), None).text.contains("日本語のテキスト"));

        let (bytes, _, _) =
            encoding_rs::GBK.encode("<rss><t>不归移民漫画系列：专业工作，中文标题测试</t></rss>");
        let d = decode(bytes.to_vec(), None);
        assert!(d.text.contains("不归移民漫画系列"), "{d:?}");
    }

    #[test]
    fn boms_and_utf16_32() {
        let mut utf16 = vec![0xFF, 0xFE];
        utf16.extend("<rss>é</rss>".encode_utf16().flat_map(|u| u.to_le_bytes()));
        assert_eq!(decode(utf16, None).text, "<rss>é</rss>");

        let utf32: Vec<u8> = "<rss>é</rss>"
            .chars()
            .flat_map(|c| (c as u32).to_be_bytes())
            .collect();
        assert_eq!(decode(utf32, None).text, "<rss>é</rss>");

        let bom8 = [&[0xEF, 0xBB, 0xBF][..], b"<rss/>"].concat();
        assert_eq!(decode(bom8, Some("text/xml; charset=latin1")).text, "<rss/>");
    }

    #[test]
    fn charset_parameter() {
        assert_eq!(
            http_charset("text/xml;charset = us-ascii").as_deref(),
            Some("us-ascii")
        );
        assert_eq!(
            http_charset("application/atom+xml;charset='gb2312'").as_deref(),
            Some("gb2312")
        );
        assert_eq!(http_charset("text/xml"), None);
    }
}
