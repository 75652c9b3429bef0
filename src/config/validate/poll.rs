//! `[poll]`: the budget, timeouts, sizes and the private-network guard's exceptions.

use super::*;

impl Validator<'_> {
    pub(super) fn poll(&mut self, raw: raw::RawPoll) -> PollConfig {
        let allow_networks = self.networks(raw.allow_networks);
        let resolve = self.fixed_answers(raw.resolve);
        let concurrency = self
            .count(raw.concurrency, "poll.concurrency", 1, 10_000)
            .unwrap_or(DEFAULT_CONCURRENCY);
        let per_host = self
            .count(raw.per_host, "poll.per_host", 1, 1_000)
            .unwrap_or(DEFAULT_PER_HOST);
        let timeout = self
            .duration(raw.timeout, "poll.timeout", false)
            .unwrap_or(DEFAULT_TIMEOUT);
        let jitter = self
            .duration(raw.jitter, "poll.jitter", true)
            .unwrap_or(DEFAULT_JITTER);
        let shutdown_grace = self
            .duration(raw.shutdown_grace, "poll.shutdown_grace", true)
            .unwrap_or(DEFAULT_SHUTDOWN_GRACE);
        let give_up_after = self
            .duration(raw.give_up_after, "poll.give_up_after", false)
            .unwrap_or(DEFAULT_GIVE_UP_AFTER);
        let inactive_after = self
            .duration(raw.inactive_after, "poll.inactive_after", true)
            .unwrap_or(DEFAULT_INACTIVE_AFTER);
        let schedule = self.cron(raw.schedule, "poll.schedule", DEFAULT_SCHEDULE);
        let new_feed_entries = self
            .count(raw.new_feed_entries, "poll.new_feed_entries", 0, 100_000)
            .unwrap_or(DEFAULT_NEW_FEED_ENTRIES);
        let user_agent = match raw.user_agent {
            Some(ua) if ua.get_ref().trim().is_empty() || ua.get_ref().contains(['\r', '\n']) => {
                self.report(ua.span(), "poll.user_agent", "must be one non-empty line");
                DEFAULT_USER_AGENT.to_string()
            }
            Some(ua) => ua.into_inner(),
            None => DEFAULT_USER_AGENT.to_string(),
        };
        let max_body = match raw.max_body {
            Some(s) => match s.get_ref().parse::<bytesize::ByteSize>() {
                Ok(b) if b.as_u64() > 0 => b.as_u64(),
                _ => {
                    self.report(
                        s.span(),
                        "poll.max_body",
                        format!(
                            "`{}` is not a size; write e.g. \"10MiB\" or \"500kB\"",
                            s.get_ref()
                        ),
                    );
                    DEFAULT_MAX_BODY
                }
            },
            None => DEFAULT_MAX_BODY,
        };
        PollConfig {
            concurrency,
            timeout,
            user_agent,
            max_body,
            new_feed_entries,
            deny_private_networks: raw.deny_private_networks.unwrap_or(false),
            allow_files: raw.allow_files.unwrap_or(false),
            icons: raw.icons.unwrap_or(true),
            announce_readers: raw.announce_readers.unwrap_or(false),
            allow_networks,
            resolve,
            schedule,
            jitter,
            per_host,
            shutdown_grace,
            give_up_after,
            inactive_after,
        }
    }

    /// `poll.allow_networks`: networks in CIDR notation (`10.1.0.0/16`, `fd00::/8`), or single
    /// addresses.
    pub(super) fn networks(&mut self, raw: Vec<toml::Spanned<String>>) -> Vec<ipnet::IpNet> {
        let mut networks = Vec::new();
        for item in raw {
            let text = item.get_ref().trim();
            let parsed = text
                .parse::<ipnet::IpNet>()
                .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from));
            match parsed {
                Ok(net) => networks.push(net.trunc()),
                Err(_) => self.report(
                    item.span(),
                    "poll.allow_networks",
                    format!("`{text}` is not a network: write e.g. \"10.1.0.0/16\" or \"fd00::/8\""),
                ),
            }
        }
        networks
    }

    /// `poll.resolve`: host name → addresses (comma-separated), looked up before DNS.
    pub(super) fn fixed_answers(
        &mut self,
        raw: Option<toml::Spanned<std::collections::BTreeMap<String, toml::Spanned<String>>>>,
    ) -> std::collections::BTreeMap<String, Vec<std::net::IpAddr>> {
        let mut answers = std::collections::BTreeMap::new();
        for (host, addresses) in raw.map(toml::Spanned::into_inner).unwrap_or_default() {
            let mut ips = Vec::new();
            for address in addresses.get_ref().split(',').map(str::trim) {
                match address.parse::<std::net::IpAddr>() {
                    Ok(ip) => ips.push(ip),
                    Err(_) => self.report(
                        addresses.span(),
                        format!("poll.resolve.{host}"),
                        format!("`{address}` is not an IP address"),
                    ),
                }
            }
            answers.insert(host.to_ascii_lowercase(), ips);
        }
        answers
    }
}
