//! `[poll] deny_private_networks`: for deployments where feed URLs come from users, fetches
//! (and redirects) to loopback, private, link-local and other non-public addresses are
//! refused, so the aggregator cannot be used to reach the machine's own network.

use std::net::{IpAddr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

use super::FetchError;

/// Marks the resolver's refusals so they can be told apart from other connection errors.
const REFUSAL: &str = "resolves only to non-public addresses";

/// A resolver that keeps only public addresses.
pub(super) struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| is_public(a.ip()))
                .collect();
            if addrs.is_empty() {
                return Err(format!("{host} {REFUSAL}").into());
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
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

/// IP literals in URLs never reach a resolver: they are checked here.
pub(super) fn check_literal(url: &Url) -> Result<(), FetchError> {
    let ip = match url.host() {
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip),
        _ => return Ok(()),
    };
    if is_public(ip) {
        Ok(())
    } else {
        Err(FetchError::Refused(format!(
            "{ip} is not a public address (poll.deny_private_networks)"
        )))
    }
}

/// The refusal message, when a connection error came from [`PublicOnly`].
pub(super) fn refusal(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cause = Some(e);
    while let Some(c) = cause {
        let text = c.to_string();
        if text.contains(REFUSAL) {
            return Some(format!("{text} (poll.deny_private_networks)"));
        }
        cause = c.source();
    }
    None
}

fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b)) // carrier-grade NAT, RFC 6598
                || (a == 198 && (b == 18 || b == 19)) // benchmarking, RFC 2544
                || a >= 224) // multicast and reserved
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local, RFC 4193
                || (first & 0xffc0) == 0xfe80) // link-local
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_special_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.0.1",
            "172.16.5.4",
            "169.254.169.254",
            "100.64.0.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "0.0.0.0",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "2606:4700::6810:84e5", "8.8.8.8"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
        assert!(check_literal(&Url::parse("http://127.0.0.1:8080/feed").unwrap()).is_err());
        assert!(check_literal(&Url::parse("http://[::1]/feed").unwrap()).is_err());
        assert!(check_literal(&Url::parse("http://example.org/feed").unwrap()).is_ok());
    }
}
