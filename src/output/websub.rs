//! WebSub publishing (W3C WebSub §7): when a feed output changes, tell the hub, which then
//! fetches it and pushes it to subscribers. Outputs announce the hub with `rel="hub"` links.

use std::time::Duration;

use super::OutputReport;
use crate::config::Config;

/// Pings the configured hub for every feed output that was just rewritten. Failures are
/// logged, never fatal: the outputs are written either way and the next change pings again.
pub(crate) async fn announce(config: &Config, reports: &[OutputReport]) {
    let Some(hub) = config.serve.as_ref().and_then(|s| s.websub_hub.as_ref()) else {
        return;
    };
    let changed: Vec<&str> = config
        .outputs
        .iter()
        .filter(|o| o.format.is_feed())
        .filter(|o| reports.iter().any(|r| r.written && r.path == o.path))
        .filter_map(|o| o.self_url.as_deref())
        .collect();
    if changed.is_empty() {
        return;
    }
    crate::fetch::init_tls();
    let client = match reqwest::Client::builder()
        .user_agent(&config.poll.user_agent)
        .timeout(Duration::from_secs(10))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "cannot set up the WebSub client");
            return;
        }
    };
    for topic in changed {
        let form = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("hub.mode", "publish")
            .append_pair("hub.url", topic)
            .finish();
        let request = client
            .post(hub.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(form);
        match request.send().await {
            Ok(r) if r.status().is_success() => tracing::debug!(%topic, "WebSub hub notified"),
            Ok(r) => tracing::warn!(%topic, status = r.status().as_u16(), "WebSub hub refused the ping"),
            Err(e) => tracing::warn!(%topic, error = %e, "WebSub hub unreachable"),
        }
    }
}
