//! Which addresses a fetch may connect to. Two kinds of URL reach the fetcher:
//!
//! - **The operator's** (the config, `add`, `import` of a file they chose): an intranet planet
//!   is normal, so private networks are refused only under `[poll] deny_private_networks`.
//! - **Content's** (a fetched document's links followed for full text or scraping, hubs,
//!   icons, lists' members, and every redirect of these): a publisher chose them, and could
//!   point them at the operator's network, so private and reserved networks are refused
//!   always, but for the networks `[poll] allow_networks` names.
//!
//! The check is made on the address actually connected to: names are resolved once, by the
//! client's resolver, which keeps only the addresses the policy allows, and the connection is
//! made to those. A DNS answer that changes between a check and a connection (rebinding) has
//! no second look to slip through. IP literals in URLs never reach a resolver: they are
//! checked here too, whatever their spelling (the URL parser reads `2130706433`, `0x7f.1` and
//! `0177.0.0.1` as 127.0.0.1 before this sees them).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

use super::FetchError;

/// Marks the resolver's refusals so they can be told apart from other connection errors.
const REFUSAL: &str = "resolves only to refused addresses";

/// Who a URL comes from (see the module's documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub(crate) enum Trust {
    /// The operator wrote it: refused to private networks only with `deny_private_networks`.
    #[default]
    Operator,
    /// A fetched document or another party gave it: refused to private and reserved
    /// networks unless allowed.
    Content,
}

/// The addresses a client may connect to.
#[derive(Debug, Clone, Default)]
pub(crate) struct Policy {
    /// Refuse private and reserved networks (else anything goes).
    pub(crate) guarded: bool,
    /// Networks allowed although private or reserved (`[poll] allow_networks`).
    pub(crate) allow: Arc<[IpNet]>,
}

impl Policy {
    /// Why `ip` may not be connected to; `None` when it may.
    pub(crate) fn refuses(&self, ip: IpAddr) -> Option<&'static str> {
        if !self.guarded || self.allow.iter().any(|net| net.contains(&ip)) {
            return None;
        }
        reserved(ip)
    }
}

/// The range `ip` belongs to when it is not a public unicast address, by name; `None` for a
/// public one. IPv6 forms that carry an IPv4 address (mapped, compatible, NAT64, 6to4, Teredo)
/// are judged by the IPv4 address they carry.
pub(crate) fn reserved(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => reserved_v4(v4),
        IpAddr::V6(v6) => reserved_v6(v6),
    }
}

fn reserved_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        (0, ..) => "0.0.0.0/8 (this network)",
        (10, ..) => "10.0.0.0/8 (private)",
        (100, 64..=127, _) => "100.64.0.0/10 (carrier-grade NAT)",
        (127, ..) => "127.0.0.0/8 (loopback)",
        (169, 254, _) => "169.254.0.0/16 (link-local, cloud metadata)",
        (172, 16..=31, _) => "172.16.0.0/12 (private)",
        (192, 0, 0) => "192.0.0.0/24 (IETF protocol assignments)",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "documentation (RFC 5737)",
        (192, 88, 99) => "192.88.99.0/24 (6to4 relay)",
        (192, 168, _) => "192.168.0.0/16 (private)",
        (198, 18..=19, _) => "198.18.0.0/15 (benchmarking)",
        (224..=239, ..) => "224.0.0.0/4 (multicast)",
        (240..=255, ..) => "240.0.0.0/4 (reserved, and broadcast)",
        _ => return None,
    })
}

fn reserved_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    let embedded = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    if ip.is_unspecified() {
        return Some(":: (unspecified)");
    }
    if ip.is_loopback() {
        return Some("::1 (loopback)");
    }
    if let Some(v4) = ip.to_ipv4_mapped() {
        return reserved_v4(v4).map(|_| "::ffff:0:0/96 (IPv4-mapped, of a refused IPv4 address)");
    }
    Some(match s {
        // IPv4-compatible (deprecated), ::a.b.c.d.
        [0, 0, 0, 0, 0, 0, hi, lo] => {
            return reserved_v4(embedded(hi, lo))
                .map(|_| "::/96 (IPv4-compatible, of a refused IPv4 address)");
        }
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => {
            return reserved_v4(embedded(hi, lo)).map(|_| "64:ff9b::/96 (NAT64, of a refused IPv4 address)");
        }
        [0x64, 0xff9b, 1, ..] => "64:ff9b:1::/48 (local NAT64)",
        [0x2002, hi, lo, ..] => {
            return reserved_v4(embedded(hi, lo)).map(|_| "2002::/16 (6to4, of a refused IPv4 address)");
        }
        // Teredo: the server's address in the clear, the client's inverted in the last 32 bits.
        [0x2001, 0, server_hi, server_lo, _, _, client_hi, client_lo] => {
            let server = embedded(server_hi, server_lo);
            let client = embedded(!client_hi, !client_lo);
            return (reserved_v4(server).is_some() || reserved_v4(client).is_some())
                .then_some("2001::/32 (Teredo, of a refused IPv4 address)");
        }
        [0x2001, 0xdb8, ..] => "2001:db8::/32 (documentation)",
        [0x3fff, second, ..] if second < 0x1000 => "3fff::/20 (documentation)",
        [0x2001, second, ..] if (0x10..0x30).contains(&second) => "2001:10::/28 (ORCHID)",
        [0x100, 0, 0, 0, ..] => "100::/64 (discard-only)",
        [first, ..] if first & 0xfe00 == 0xfc00 => "fc00::/7 (unique local)",
        [first, ..] if first & 0xffc0 == 0xfe80 => "fe80::/10 (link-local)",
        [first, ..] if first & 0xffc0 == 0xfec0 => "fec0::/10 (site-local)",
        [first, ..] if first & 0xff00 == 0xff00 => "ff00::/8 (multicast)",
        _ => return None,
    })
}

/// The client's resolver: the operator's fixed answers first (`[poll] resolve`), else the
/// system's, then only the addresses the policy allows. A name left with none is refused.
pub(super) struct Resolver {
    pub(crate) policy: Policy,
    /// Fixed answers by host name, lower case (like curl's `--resolve`, or an /etc/hosts of
    /// Tributary's own).
    pub(crate) fixed: Arc<HashMap<String, Vec<IpAddr>>>,
}

impl Resolve for Resolver {
    fn resolve(&self, name: Name) -> Resolving {
        let (policy, fixed) = (self.policy.clone(), self.fixed.clone());
        Box::pin(async move {
            let host = name.as_str().to_ascii_lowercase();
            let found: Vec<SocketAddr> = match fixed.get(&host) {
                Some(ips) => ips.iter().map(|ip| SocketAddr::new(*ip, 0)).collect(),
                None => tokio::net::lookup_host((host.as_str(), 0)).await?.collect(),
            };
            let mut refused = None;
            let kept: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| match policy.refuses(a.ip()) {
                    Some(range) => {
                        refused.get_or_insert((a.ip(), range));
                        false
                    }
                    None => true,
                })
                .collect();
            if let (true, Some((ip, range))) = (kept.is_empty(), refused) {
                return Err(format!("{host} {REFUSAL}: {ip} is in {range}").into());
            }
            Ok(Box::new(kept.into_iter()) as Addrs)
        })
    }
}

/// The proxy variable set in the environment, if any (the ones reqwest would use).
pub(super) fn proxy_variable() -> Option<&'static str> {
    [
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
    ]
    .into_iter()
    .find(|v| std::env::var_os(v).is_some_and(|x| !x.is_empty()))
}

/// What a refusal says about which setting decided it.
fn setting(trust: Trust) -> &'static str {
    match trust {
        Trust::Operator => "poll.deny_private_networks",
        Trust::Content => "a URL from fetched content; poll.allow_networks can allow a network",
    }
}

/// IP literals in URLs never reach a resolver: they are checked here.
pub(super) fn check_literal(url: &Url, policy: &Policy, trust: Trust) -> Result<(), FetchError> {
    let ip = match url.host() {
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip),
        _ => return Ok(()),
    };
    match policy.refuses(ip) {
        None => Ok(()),
        Some(range) => Err(FetchError::Refused(format!(
            "{ip} is in {range} ({})",
            setting(trust)
        ))),
    }
}

/// Names that stand for no real site (RFC 2606 and RFC 6761: documentation examples, names
/// that must not resolve, names for testing): content naming them (a sample feed's links, a
/// template's placeholders) is never fetched, unless the operator's fixed answers
/// (`[poll] resolve`) say where they are.
const SPECIAL_USE: &[&str] = &[
    "example",
    "invalid",
    "test",
    "example.com",
    "example.net",
    "example.org",
];

/// Content's URLs to [`SPECIAL_USE`] names are refused before any resolver sees them (a
/// feed's proxy resolves names itself, and may know these).
pub(super) fn check_special_use(
    url: &Url,
    trust: Trust,
    fixed: &HashMap<String, Vec<IpAddr>>,
) -> Result<(), FetchError> {
    let Some(Host::Domain(host)) = url.host() else {
        return Ok(());
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let special = SPECIAL_USE
        .iter()
        .find(|name| host == **name || host.ends_with(&format!(".{name}")));
    match special {
        Some(name) if trust == Trust::Content && !fixed.contains_key(&host) => {
            Err(FetchError::Refused(format!(
                "{host} is a special-use name (.{name}, RFC 6761) and names no real site ({})",
                setting(trust)
            )))
        }
        _ => Ok(()),
    }
}

/// A host reached through the feed's proxy is resolved by the proxy, out of [`Resolver`]'s
/// sight: it is resolved here too, and refused when any address it has is refused. A name that
/// does not resolve here is the proxy's to resolve (behind a proxy, often only it can).
pub(super) async fn check_through_proxy(
    url: &Url,
    policy: &Policy,
    trust: Trust,
    fixed: &HashMap<String, Vec<IpAddr>>,
) -> Result<(), FetchError> {
    check_literal(url, policy, trust)?;
    if !policy.guarded {
        return Ok(());
    }
    let Some(Host::Domain(host)) = url.host() else {
        return Ok(());
    };
    let host = host.to_ascii_lowercase();
    let found: Vec<IpAddr> = match fixed.get(&host) {
        Some(ips) => ips.clone(),
        None => match tokio::net::lookup_host((host.as_str(), 0)).await {
            Ok(addrs) => addrs.map(|a| a.ip()).collect(),
            Err(_) => return Ok(()),
        },
    };
    match found
        .iter()
        .find_map(|ip| policy.refuses(*ip).map(|range| (ip, range)))
    {
        None => Ok(()),
        Some((ip, range)) => Err(FetchError::Refused(format!(
            "{host} resolves to {ip}, in {range} ({})",
            setting(trust)
        ))),
    }
}

/// The refusal message, when a connection error came from [`Resolver`].
pub(super) fn refusal(e: &(dyn std::error::Error + 'static), trust: Trust) -> Option<String> {
    let mut cause = Some(e);
    while let Some(c) = cause {
        let text = c.to_string();
        if text.contains(REFUSAL) {
            return Some(format!("{text} ({})", setting(trust)));
        }
        cause = c.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(ip: &str) -> Option<&'static str> {
        reserved(ip.parse().unwrap())
    }

    #[test]
    fn contents_special_use_names_are_refused_unless_resolved_by_the_operator() {
        let none = HashMap::new();
        let check = |u: &str, trust, fixed: &HashMap<String, Vec<IpAddr>>| {
            check_special_use(&Url::parse(u).unwrap(), trust, fixed).is_ok()
        };
        for refused in [
            "https://blog.example/favicon.ico",
            "http://EXAMPLE.ORG./",
            "https://www.example.com/a",
            "http://feeds.test/x",
            "http://nowhere.invalid/",
        ] {
            assert!(!check(refused, Trust::Content, &none), "{refused}");
            assert!(check(refused, Trust::Operator, &none), "{refused}");
        }
        for allowed in [
            "https://example.community/",
            "https://notexample.org/",
            "http://127.0.0.1/",
        ] {
            assert!(check(allowed, Trust::Content, &none), "{allowed}");
        }
        let fixed = HashMap::from([("blog.example".to_string(), vec![IpAddr::from([127, 0, 0, 2])])]);
        assert!(check("https://blog.example/icon.png", Trust::Content, &fixed));
    }

    #[test]
    fn every_reserved_range_is_refused_in_every_spelling() {
        for ip in [
            "0.0.0.0",
            "0.1.2.3",
            "10.1.2.3",
            "100.64.0.1",
            "100.127.255.254",
            "127.0.0.1",
            "127.255.255.254",
            "169.254.169.254",
            "172.16.5.4",
            "172.31.255.1",
            "192.0.0.8",
            "192.0.2.1",
            "192.88.99.1",
            "192.168.0.1",
            "198.18.0.1",
            "198.19.255.1",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "0:0:0:0:0:0:0:1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "64:ff9b::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::1",
            "2002:7f00:1::1",
            "2002:a9fe:a9fe::1",
            "2001:0:7f00:1::",
            "2001:0:5db8:11c3:0:0:80ff:fffe",
            "2001:db8::1",
            "3fff::1",
            "2001:10::1",
            "100::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
        ] {
            assert!(refused(ip).is_some(), "{ip} is not public");
        }
        for ip in [
            "93.184.216.34",
            "8.8.8.8",
            "100.63.255.255",
            "100.128.0.1",
            "172.32.0.1",
            "198.20.0.1",
            "223.255.255.255",
            "2606:4700::6810:84e5",
            "::ffff:93.184.216.34",
            "64:ff9b::808:808",
            "2002:5db8:d822::1",
            "2001:0:5db8:11c3:0:0:a2ff:fffe",
        ] {
            assert_eq!(refused(ip), None, "{ip} is public");
        }
    }

    #[test]
    fn literals_are_refused_whatever_the_spelling_unless_allowed() {
        let guarded = Policy {
            guarded: true,
            allow: Arc::from(vec!["10.1.0.0/16".parse::<IpNet>().unwrap()]),
        };
        for url in [
            "http://127.0.0.1:8080/feed",
            "http://2130706433/feed",
            "http://0x7f.1/feed",
            "http://0177.0.0.1/feed",
            "http://127.1/feed",
            "http://[::1]/feed",
            "http://[0:0:0:0:0:0:0:1]/feed",
            "http://[::ffff:127.0.0.1]/feed",
            "http://0.0.0.0/feed",
            "http://[::]/feed",
            "http://169.254.169.254/latest/meta-data/",
            "http://10.2.0.1/feed",
        ] {
            let url = Url::parse(url).unwrap();
            let refused = check_literal(&url, &guarded, Trust::Content).unwrap_err();
            assert!(refused.to_string().contains("poll.allow_networks"), "{refused}");
        }
        let allowed = Url::parse("http://10.1.2.3/feed").unwrap();
        assert!(check_literal(&allowed, &guarded, Trust::Content).is_ok());
        assert!(
            check_literal(
                &Url::parse("http://example.org/feed").unwrap(),
                &guarded,
                Trust::Content
            )
            .is_ok()
        );
        // The operator's own URLs, with the guard off, go anywhere.
        let open = Policy::default();
        assert!(check_literal(&Url::parse("http://127.0.0.1/").unwrap(), &open, Trust::Operator).is_ok());
    }

    #[tokio::test]
    async fn names_are_resolved_once_and_only_allowed_addresses_kept() {
        let fixed: HashMap<String, Vec<IpAddr>> = [
            ("inside.test", vec!["10.0.0.5".parse().unwrap()]),
            (
                "both.test",
                vec!["192.168.1.1".parse().unwrap(), "93.184.216.34".parse().unwrap()],
            ),
        ]
        .into_iter()
        .map(|(n, a)| (n.to_string(), a))
        .collect();
        let resolver = Resolver {
            policy: Policy {
                guarded: true,
                allow: Arc::from(Vec::new()),
            },
            fixed: Arc::new(fixed),
        };
        let name = |n: &str| n.parse::<Name>().unwrap();
        let refused = match resolver.resolve(name("inside.test")).await {
            Ok(_) => panic!("resolved"),
            Err(e) => e.to_string(),
        };
        assert!(
            refused.contains("10.0.0.5 is in 10.0.0.0/8 (private)"),
            "{refused}"
        );
        let kept: Vec<SocketAddr> = resolver.resolve(name("BOTH.test")).await.unwrap().collect();
        assert_eq!(kept, vec!["93.184.216.34:0".parse::<SocketAddr>().unwrap()]);
    }
}
