//! `[serve]` and `[websub]`: the built-in HTTP server's listeners and limits, and WebSub.

use super::*;

impl Validator<'_> {
    pub(super) fn serve(&mut self, raw: raw::RawServe) -> ServeConfig {
        let listen = match raw.listen {
            Some(l) => match l.get_ref().parse::<std::net::SocketAddr>() {
                Ok(a) => a,
                Err(_) => {
                    self.report(
                        l.span(),
                        "serve.listen",
                        format!("`{}` is not an address such as \"127.0.0.1:8080\"", l.get_ref()),
                    );
                    default_listen()
                }
            },
            None => default_listen(),
        };
        // Health and metrics are for the operator: on loopback by default, next to `listen`.
        let admin_listen = match raw.admin_listen {
            Some(l) if l.get_ref().trim() == "same" => None,
            Some(l) => match l.get_ref().parse::<std::net::SocketAddr>() {
                Ok(a) if a == listen && a.port() != 0 => None,
                Ok(a) => Some(a),
                Err(_) => {
                    self.report(
                        l.span(),
                        "serve.admin_listen",
                        format!(
                            "`{}` is not an address such as \"127.0.0.1:8081\" (or \"same\": beside the outputs)",
                            l.get_ref()
                        ),
                    );
                    None
                }
            },
            None => Some(default_admin_listen(listen)),
        };
        let mut http_url = |raw: Option<toml::Spanned<String>>, key: &str| {
            let raw = raw?;
            match Url::parse(raw.get_ref()) {
                Ok(u) if matches!(u.scheme(), "http" | "https") => Some(u),
                _ => {
                    self.report(raw.span(), key, "must be an absolute http(s) URL");
                    None
                }
            }
        };
        let base_url = http_url(raw.base_url, "serve.base_url").map(|mut u| {
            // A base without a trailing slash would lose its last segment when joined.
            if !u.path().ends_with('/') {
                let path = format!("{}/", u.path());
                u.set_path(&path);
            }
            u
        });
        let hub_span = raw.websub_hub.as_ref().map(toml::Spanned::span);
        let websub_hub = http_url(raw.websub_hub, "serve.websub_hub");
        if let (Some(span), None) = (hub_span, &base_url) {
            self.report(
                span,
                "serve.websub_hub",
                "needs serve.base_url: subscribers and the hub must know the outputs' public URLs",
            );
        }
        let max_connections = self
            .count(raw.max_connections, "serve.max_connections", 1, 1_000_000)
            .unwrap_or(DEFAULT_MAX_CONNECTIONS);
        let header_timeout = self
            .duration(raw.header_timeout, "serve.header_timeout", false)
            .unwrap_or(DEFAULT_HEADER_TIMEOUT);
        let idle_timeout = self
            .duration(raw.idle_timeout, "serve.idle_timeout", false)
            .unwrap_or(DEFAULT_IDLE_TIMEOUT);
        ServeConfig {
            listen,
            admin_listen,
            base_url,
            websub_hub,
            max_connections,
            header_timeout,
            idle_timeout,
        }
    }

    pub(super) fn websub(&mut self, raw: raw::RawWebSub, has_base_url: bool) -> WebSubConfig {
        if let Some(subscribe) = raw.subscribe.as_ref().filter(|s| *s.get_ref() && !has_base_url) {
            self.report(
                subscribe.span(),
                "websub.subscribe",
                "needs serve.base_url: hubs call the daemon back at its public address",
            );
        }
        let poll_every = self.duration(raw.poll_every, "websub.poll_every", false);
        let lease = self
            .duration(raw.lease, "websub.lease", false)
            .unwrap_or(DEFAULT_WEBSUB_LEASE);
        WebSubConfig {
            subscribe: raw.subscribe.map_or(has_base_url, toml::Spanned::into_inner),
            poll_every,
            lease,
        }
    }
}
