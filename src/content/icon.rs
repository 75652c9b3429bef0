//! A feed's icon, for the page to show beside its name and the outputs to carry: where to look
//! for one, what counts as one, and when to look again. The looking itself (requests under the
//! host's turns and holds) is the poll's, as for a feed's article pages.
//!
//! Where, best first, as feed readers look (NetNewsWire, Feedbin): the icon the feed names for
//! itself (Atom `icon`, JSON Feed `favicon`); the one found last time (asked conditionally);
//! the icons its web site's home page names (`<link rel="icon">`, then Apple touch icons); the
//! site's `/favicon.ico`; and last the feed's larger image (RSS `<image>`, Atom `logo`). A
//! feed that names a new icon has it at the next look, a week after the last.
//! Every one of these URLs comes from content, so the guard for content's URLs applies.

use chrono::{DateTime, TimeDelta, Utc};
use url::Url;

/// The largest image kept as an icon. Icons are a few KiB; podcast artwork (a feed's logo) can
/// be megabytes, and is not an icon.
pub(crate) const MAX_BYTES: usize = 1 << 20;

/// How many places one look may try (each a request): a home page naming a dozen icons is
/// not asked for all of them.
pub(crate) const MAX_TRIES: usize = 6;

/// An icon found is checked again (conditionally) after a week: icons rarely change.
const RECHECK: TimeDelta = TimeDelta::days(7);
/// A look that found nothing is tried again after a day.
const RETRY: TimeDelta = TimeDelta::days(1);

/// Whether a feed's icon is to be looked for now (`due`: when the last look said; `None`:
/// never looked for).
pub(crate) fn due(due: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    due.is_none_or(|d| d <= now)
}

/// When to look again after a look that `found` an icon (or kept the one it had) or not.
pub(crate) fn next_look(found: bool, now: DateTime<Utc>) -> DateTime<Utc> {
    now + if found { RECHECK } else { RETRY }
}

/// A place to look.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Lead {
    /// An image, maybe the icon.
    Image(Url),
    /// A web page whose `<link rel="icon">` names icons ([`crate::parse::discover::icon_links`]).
    Page(Url),
}

/// What a feed knows about where its icon is.
#[derive(Debug, Default)]
pub(crate) struct Known<'a> {
    /// The icon the feed names for itself.
    pub(crate) declared: Option<&'a str>,
    /// Where the icon was found last time.
    pub(crate) stored: Option<&'a str>,
    /// The feed's web site.
    pub(crate) site: Option<&'a str>,
    /// Where the feed itself is read from: its host's `/favicon.ico` when it names no site.
    pub(crate) feed: Option<&'a Url>,
    /// The feed's larger image.
    pub(crate) logo: Option<&'a str>,
}

/// The places to look, best first, without repeats; only http(s) URLs.
pub(crate) fn leads(known: &Known<'_>) -> Vec<Lead> {
    let web = |u: &str| {
        Url::parse(u)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
    };
    let site = known.site.and_then(web).or_else(|| {
        known
            .feed
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .cloned()
    });
    let mut leads = Vec::new();
    let mut add = |lead: Lead| {
        if !leads.contains(&lead) {
            leads.push(lead);
        }
    };
    for url in [known.declared, known.stored]
        .into_iter()
        .flatten()
        .filter_map(web)
    {
        add(Lead::Image(url));
    }
    if let Some(site) = site {
        // The page named as the site; when the feed names none, its host's home page.
        let page = match known.site.and_then(web) {
            Some(page) => page,
            None => site.join("/").unwrap_or_else(|_| site.clone()),
        };
        add(Lead::Page(page));
        if let Ok(favicon) = site.join("/favicon.ico") {
            add(Lead::Image(favicon));
        }
    }
    if let Some(logo) = known.logo.and_then(web) {
        add(Lead::Image(logo));
    }
    leads
}

/// What an image's bytes are, by their signature (the WHATWG MIME Sniffing standard's image
/// patterns): PNG, GIF, JPEG, WebP or ICO. Anything else (an HTML error page served as
/// `image/png`, an SVG, a PDF) is not an icon, whatever its Content-Type said.
pub(crate) fn sniff(bytes: &[u8]) -> Option<&'static str> {
    Some(match bytes {
        [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n', ..] => "image/png",
        [b'G', b'I', b'F', b'8', b'7' | b'9', b'a', ..] => "image/gif",
        [0xff, 0xd8, 0xff, ..] => "image/jpeg",
        [
            b'R',
            b'I',
            b'F',
            b'F',
            _,
            _,
            _,
            _,
            b'W',
            b'E',
            b'B',
            b'P',
            b'V',
            b'P',
            ..,
        ] => "image/webp",
        // ICO and CUR: reserved 0, type 1 (icon) or 2 (cursor), then at least one image.
        [0, 0, 1 | 2, 0, n, ..] if *n > 0 => "image/x-icon",
        _ => return None,
    })
}

/// The bytes of SHA-256 an image's name keeps.
const HASH_BYTES: usize = 12;

/// The name an image is kept under: a hash of its bytes, in lowercase hex.
pub(crate) fn hash(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(&Sha256::digest(bytes)[..HASH_BYTES])
}

/// Whether `name` has the shape [`hash`] gives (asked before any lookup of it).
pub(crate) fn is_hash(name: &str) -> bool {
    name.len() == 2 * HASH_BYTES && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(u: &str) -> Url {
        Url::parse(u).unwrap()
    }

    #[test]
    fn leads_come_best_first_without_repeats() {
        let feed = url("https://feeds.example/blog.xml");
        let known = Known {
            declared: Some("https://blog.example/icon.png"),
            stored: Some("https://blog.example/icon.png"),
            site: Some("https://blog.example/home/"),
            feed: Some(&feed),
            logo: Some("https://blog.example/logo.jpg"),
        };
        assert_eq!(
            leads(&known),
            [
                Lead::Image(url("https://blog.example/icon.png")),
                Lead::Page(url("https://blog.example/home/")),
                Lead::Image(url("https://blog.example/favicon.ico")),
                Lead::Image(url("https://blog.example/logo.jpg")),
            ]
        );
        // No site: the feed's own host; a local file and non-web URLs lead nowhere.
        let only_feed = Known {
            feed: Some(&feed),
            logo: Some("data:image/png;base64,AAAA"),
            ..Known::default()
        };
        assert_eq!(
            leads(&only_feed),
            [
                Lead::Page(url("https://feeds.example/")),
                Lead::Image(url("https://feeds.example/favicon.ico")),
            ]
        );
        let file = url("file:///srv/feeds/a.xml");
        let local = Known {
            feed: Some(&file),
            ..Known::default()
        };
        assert!(leads(&local).is_empty());
    }

    #[test]
    fn only_image_signatures_count() {
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), Some("image/png"));
        assert_eq!(sniff(b"GIF89a\x01\0"), Some("image/gif"));
        assert_eq!(sniff(b"\xff\xd8\xff\xe0\0\x10JFIF"), Some("image/jpeg"));
        assert_eq!(sniff(b"RIFF\x24\0\0\0WEBPVP8 "), Some("image/webp"));
        assert_eq!(sniff(b"\0\0\x01\0\x01\0\x10\x10"), Some("image/x-icon"));
        for not_an_icon in [
            &b"<!DOCTYPE html><title>404</title>"[..],
            b"<svg xmlns=\"http://www.w3.org/2000/svg\"><script/></svg>",
            b"%PDF-1.7",
            b"\0\0\x01\0\0\0",
            b"",
        ] {
            assert_eq!(sniff(not_an_icon), None, "{not_an_icon:?}");
        }
    }

    #[test]
    fn looks_again_after_a_week_a_failure_after_a_day() {
        let now = Utc::now();
        assert!(due(None, now));
        let found = next_look(true, now);
        assert!(!due(Some(found), now + TimeDelta::days(6)));
        assert!(due(Some(found), now + TimeDelta::days(7)));
        let missing = next_look(false, now);
        assert!(!due(Some(missing), now + TimeDelta::hours(23)));
        assert!(due(Some(missing), now + TimeDelta::days(1)));
    }
}
