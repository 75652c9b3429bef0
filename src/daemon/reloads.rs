//! Reloads: SIGHUP (or a subscription list that changed) reads the config again, off the
//! loop; an invalid config keeps the running one.

use super::*;

/// The feeds of `config` whose keys `pick` takes, as a log field: "0", or the count and
/// their URLs as written (the first ten).
pub(super) fn named_feeds(config: &Config, pick: impl Fn(&str) -> bool) -> String {
    const SHOWN: usize = 10;
    let urls: Vec<String> = config
        .feeds
        .iter()
        .filter(|f| pick(&f.key))
        .map(|f| crate::model::display_url(&f.url))
        .collect();
    if urls.is_empty() {
        return "0".into();
    }
    let more = urls.len().saturating_sub(SHOWN);
    let mut s = format!("{} ({}", urls.len(), urls[..urls.len().min(SHOWN)].join(", "));
    if more > 0 {
        s.push_str(&format!(" and {more} more"));
    }
    s.push(')');
    s
}

/// Config feeds by the URL their store row is keyed by.
pub(super) fn index_feeds(config: &Config) -> HashMap<String, usize> {
    config
        .feeds
        .iter()
        .enumerate()
        .map(|(i, f)| (f.key.clone(), i))
        .collect()
}

/// A new config, loaded and checked, and the store made ready for it.
pub(super) struct Reloaded {
    pub(super) config: Config,
    pub(super) fetcher: Fetcher,
}

impl Daemon {
    pub(super) fn start_reload(&mut self) {
        if self.reload.is_some() {
            // Already reloading: that reload reads the file as it is now.
            return;
        }
        notify::reloading();
        let path = self.path.clone();
        let (store, clock) = (self.store.clone(), self.clock.clone());
        let backend = self.config.backend();
        self.reload = Some(tokio::spawn(async move {
            let load = tokio::task::spawn_blocking(move || Config::load(&path));
            let config = match load.await {
                Ok(Ok(config)) => config,
                Ok(Err(e)) => {
                    return Err(format!(
                        "new configuration rejected; keeping the running one:\n{e}"
                    ));
                }
                Err(e) => return Err(format!("new configuration not loaded: {e}")),
            };
            if config.backend() != backend {
                return Err(format!(
                    "new configuration rejected: the store changed ({} → {}); restart to switch databases \
                     or node names; keeping the running configuration",
                    crate::store::describe(&backend),
                    crate::store::describe(&config.backend())
                ));
            }
            // With its subscription lists' feeds, as the store holds them now.
            let config = crate::lists::with_members(config, &store)
                .await
                .map_err(|e| format!("new configuration not loaded; keeping the running one: {e}"))?;
            let fetcher = Fetcher::new(&config.poll)
                .map_err(|e| format!("new configuration rejected; keeping the running one: {e}"))?;
            poll::prepare(&config, &config.feeds, &store, clock.now(), true)
                .await
                .map_err(|e| format!("new configuration not applied: {e}"))?;
            Ok(Reloaded { config, fetcher })
        }));
    }

    pub(super) fn reload_done(&mut self, result: Result<Result<Reloaded, String>, tokio::task::JoinError>) {
        let Reloaded { config, fetcher } = match result {
            Ok(Ok(reloaded)) => reloaded,
            Ok(Err(message)) => {
                tracing::error!("{message}");
                notify::ready(&self.status());
                return;
            }
            Err(e) => {
                tracing::error!(error = %e, "reload failed");
                notify::ready(&self.status());
                return;
            }
        };
        let old: HashSet<&str> = self.config.feeds.iter().map(|f| f.key.as_str()).collect();
        let new: HashSet<&str> = config.feeds.iter().map(|f| f.key.as_str()).collect();
        // Named, so the operator sees the reload took the feeds they meant.
        let added = named_feeds(&config, |key| !old.contains(key));
        let removed = named_feeds(&self.config, |key| !new.contains(key));
        let outputs_changed = self.config.outputs != config.outputs;
        if config.serve.as_ref().map(|s| s.listen) != self.config.serve.as_ref().map(|s| s.listen) {
            tracing::warn!("serve.listen changed: the server keeps its address until a restart");
        }
        let config = Arc::new(config);
        let specs = index_feeds(&config);
        // Queued feeds that left the config are not polled (their schedule is gone already).
        for job in self
            .poller
            .take_queued_where(|job| !specs.contains_key(job.key()))
        {
            self.claimed.remove(&job.feed_id());
        }
        self.poller.reconfigure(&config, fetcher.clone());
        self.fetcher = fetcher;
        self.specs = specs;
        self.config = config;
        if let Some(server) = self.server() {
            server.set_config(self.config.clone());
        }
        self.next_housekeeping = self.config.store.housekeeping.next_after(self.clock.now());
        if has_webhooks(&self.config) {
            self.webhooks.next = Some(self.clock.now());
        }
        // Lists added to the config are fetched.
        if !self.config.lists.is_empty() && self.next_lists.is_none() {
            self.next_lists = Some(self.clock.now());
        }
        // Feeds removed or disabled are unsubscribed; `websub` may have changed.
        if self.websub.callbacks.is_some() {
            self.websub.next_pass = Some(self.clock.now());
        }
        tracing::info!(
            feeds = self.config.feeds.len(),
            added = %added,
            removed = %removed,
            outputs_changed,
            "configuration reloaded"
        );
        // Added feeds are due at once; changed schedules have new due times.
        self.more_due = false;
        self.next_wake = Some(self.clock.now());
        // Feed selection or titles may have changed what outputs show.
        self.request_render();
        notify::ready(&self.status());
    }
}
