//! URLs as identities: the canonical form of a link (tracking parameters dropped), a feed's
//! key and identity, its host key, and the form shown to people (credentials hidden).

use super::*;

/// The host a fetch of `url` talks to, which per-host limits and host delays are keyed by
/// (`None` for local files, which have no host to be polite to). The one definition: the
/// spine, the schedule and the store all key hosts by it.
pub(crate) fn host_key(url: &Url) -> Option<String> {
    matches!(url.scheme(), "http" | "https")
        .then(|| url.host_str().map(str::to_ascii_lowercase))
        .flatten()
}

/// Query parameters that only track the reader, never select the content.
pub(super) const TRACKING_PARAMS: &[&str] = &[
    "fbclid",
    "gclid",
    "dclid",
    "gbraid",
    "wbraid",
    "msclkid",
    "yclid",
    "mc_cid",
    "mc_eid",
    "igshid",
    "_hsenc",
    "_hsmi",
    "mkt_tok",
    "oly_anon_id",
    "oly_enc_id",
    "vero_id",
    "rb_clickid",
    "s_cid",
];

/// The form of a URL used to compare links: lowercase scheme and host, no default port, no
/// fragment, no tracking parameters. Unparseable input is returned trimmed, as is.
pub(crate) fn canonical_url(link: &str) -> String {
    let Ok(mut url) = Url::parse(link.trim()) else {
        return link.trim().to_string();
    };
    // The url crate already lowercases scheme and host and drops default ports.
    url.set_fragment(None);
    if url.query().is_some() {
        let kept: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(k, _)| {
                let k = k.to_ascii_lowercase();
                !k.starts_with("utm_") && !TRACKING_PARAMS.contains(&k.as_str())
            })
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        if kept.is_empty() {
            url.set_query(None);
        } else {
            url.query_pairs_mut().clear().extend_pairs(kept);
        }
    }
    url.to_string()
}

/// What stays the same across spellings of one feed's URL: [`canonical_url`] (case, default
/// port, fragment, tracking parameters), and neither `http` against `https` nor a trailing
/// slash. Two configured URLs with one identity are one feed under a new spelling.
pub(crate) fn feed_identity(url: &str) -> String {
    let canonical = canonical_url(url);
    let rest = canonical
        .strip_prefix("https://")
        .or_else(|| canonical.strip_prefix("http://"))
        .unwrap_or(&canonical);
    // A trailing slash before the query (or at the end) names the same resource.
    match rest.split_once('?') {
        Some((path, query)) => format!("{}?{query}", path.trim_end_matches('/')),
        None => rest.trim_end_matches('/').to_string(),
    }
}

/// A feed's identity: its URL without user name and password. Credentials are never written to
/// the store, and rotating a password leaves the feed the same feed.
pub(crate) fn feed_key(url: &Url) -> String {
    without_credentials(url).to_string()
}

/// `url` without user name and password: the one place they are taken off (for keys, names,
/// records, and the request line, where they become an Authorization header).
pub(crate) fn without_credentials(url: &Url) -> Url {
    let mut bare = url.clone();
    // Only URLs that cannot hold credentials (`mailto:`, `data:`) refuse, and those have none.
    let _ = bare.set_username("");
    let _ = bare.set_password(None);
    bare
}

/// A URL as it may appear in logs, reports and outputs: without a password (credentials in a
/// feed URL are for the feed's host, nobody else).
pub(crate) fn display_url(url: &Url) -> String {
    if url.password().is_some() {
        let mut shown = url.clone();
        let _ = shown.set_password(Some("***"));
        shown.to_string()
    } else {
        url.to_string()
    }
}
