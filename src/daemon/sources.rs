//! Live sources: WebSub pushes handed over by the server, the subscription lists' refresh, and
//! the WebSub pass that subscribes, renews and unsubscribes.

use super::*;

/// Pushes of one feed waiting while an earlier one is stored; beyond, the oldest is dropped
/// (the newest carries the feed as it is now).
pub(super) const PUSHES_PER_FEED: usize = 4;

/// The daemon's side of WebSub: the callbacks (when serving), the pushes hubs sent, those
/// being stored (one at a time per feed, the next ones waiting), the hubs this round's polls
/// found, and the pass over the subscriptions in progress and when the next is due.
pub(super) struct WebSub {
    pub(super) callbacks: Option<push::Callbacks>,
    pub(super) pushes: Option<mpsc::Receiver<Pushed>>,
    pub(super) push_tasks: JoinSet<(i64, Instant, Result<Option<FeedReport>, StoreError>)>,
    pub(super) verified: Arc<tokio::sync::Notify>,
    pub(super) pushing: HashMap<i64, std::collections::VecDeque<Pushed>>,
    pub(super) found_hubs: Vec<(i64, crate::fetch::PushLinks)>,
    /// The feeds with a subscription, as the last pass found them.
    pub(super) subscribed: HashSet<i64>,
    pub(super) pass: Option<JoinHandle<Result<push::Pass, StoreError>>>,
    pub(super) next_pass: Option<DateTime<Utc>>,
}

impl Daemon {
    /// A push a hub sent (see [`crate::push`]): stored as a fetched body would be, one at a
    /// time per feed.
    pub(super) fn pushed(&mut self, pushed: Pushed) {
        if let Some(waiting) = self.websub.pushing.get_mut(&pushed.feed_id) {
            if waiting.len() >= PUSHES_PER_FEED {
                waiting.pop_front();
                tracing::debug!(
                    feed_id = pushed.feed_id,
                    "pushes pile up; the oldest waiting one is dropped"
                );
            }
            waiting.push_back(pushed);
            return;
        }
        self.websub.pushing.insert(pushed.feed_id, Default::default());
        self.start_push(pushed);
    }

    pub(super) fn start_push(&mut self, pushed: Pushed) {
        let Pushed {
            feed_id,
            bytes,
            content_type,
            arrived,
        } = pushed;
        let take = self
            .poller
            .take_push(self.config.clone(), feed_id, bytes, content_type);
        self.websub
            .push_tasks
            .spawn(async move { (feed_id, arrived, take.await) });
    }

    pub(super) fn push_done(
        &mut self,
        (feed_id, arrived, result): (i64, Instant, Result<Option<FeedReport>, StoreError>),
    ) {
        if let Some(next) = self
            .websub
            .pushing
            .get_mut(&feed_id)
            .and_then(std::collections::VecDeque::pop_front)
        {
            self.start_push(next);
        } else {
            self.websub.pushing.remove(&feed_id);
        }
        self.rest_pending = true;
        match result {
            Ok(Some(report)) => {
                let stored = match &report.result {
                    Ok(FeedStatus::Stored(o)) => o.new + o.updated,
                    _ => 0,
                };
                match &report.result {
                    Err(e) => {
                        tracing::info!(feed = %report.url, error = %e, "a pushed body could not be read")
                    }
                    Ok(_) => tracing::debug!(
                        feed = %report.url,
                        new_or_updated = stored,
                        elapsed_ms = arrived.elapsed().as_millis() as u64,
                        "push stored"
                    ),
                }
                if let Some(next) = report.next_due {
                    self.next_wake = Some(self.next_wake.map_or(next, |w| w.min(next)));
                }
                // Pushed entries are news now: rendered at once, not at the round's end.
                if stored > 0 {
                    self.request_render();
                }
            }
            Ok(None) => tracing::debug!(feed_id, "a push for a feed not in the config; dropped"),
            Err(e) => {
                tracing::warn!(feed_id, error = %e, "a push could not be stored; the feed's next poll brings it");
            }
        }
    }

    /// Fetches the subscription lists that are due (see [`crate::lists`]): in a cluster the
    /// leader does, once for all (the others hear of changes and load the lists' feeds).
    pub(super) fn start_lists(&mut self) {
        self.next_lists = None;
        if self.cluster.as_ref().is_some_and(|c| !c.leads()) {
            // Looked at again in a minute: this node may lead by then.
            self.next_lists = Some(self.clock.now() + chrono::Duration::minutes(1));
            return;
        }
        let (config, store, fetcher, now) = (
            self.config.clone(),
            self.store.clone(),
            self.fetcher.clone(),
            self.clock.now(),
        );
        self.list_pass = Some(tokio::spawn(async move {
            crate::lists::refresh(&config, &store, &fetcher, now, false).await
        }));
    }

    pub(super) fn lists_done(
        &mut self,
        result: Result<Result<crate::lists::Refresh, StoreError>, tokio::task::JoinError>,
    ) {
        let now = self.clock.now();
        match result {
            Ok(Ok(refresh)) => {
                self.next_lists = refresh.next.filter(|_| !self.config.lists.is_empty());
                if refresh.changed {
                    // Their feeds changed: loaded as a reload loads the config (new feeds due at
                    // once, those gone off the schedule).
                    tracing::info!(
                        fetched = refresh.fetched,
                        "subscription lists changed; loading their feeds"
                    );
                    self.start_reload();
                }
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot record the subscription lists; trying again in a minute");
                self.next_lists = Some(now + chrono::Duration::minutes(1));
            }
            Err(e) => tracing::error!(error = %e, "the subscription list task failed"),
        }
    }

    /// Brings the WebSub subscriptions in line (see [`push::maintain`]): each node subscribes
    /// the feeds it found naming a hub; one node of a cluster, the leader, tends the rest
    /// (renewals, retries, unsubscriptions), and looks every minute for what the others left it.
    pub(super) fn start_websub(&mut self) {
        let now = self.clock.now();
        self.websub.next_pass = None;
        let Some(callbacks) = self.websub.callbacks.clone() else {
            return;
        };
        let tend = self.cluster.as_ref().is_none_or(|c| c.leads());
        if self.cluster.is_some() {
            self.websub.next_pass = Some(now + chrono::Duration::minutes(1));
        }
        let found = std::mem::take(&mut self.websub.found_hubs);
        if !tend && found.is_empty() {
            return;
        }
        let (config, store, fetcher) = (self.config.clone(), self.store.clone(), self.fetcher.clone());
        self.websub.pass = Some(tokio::spawn(async move {
            push::maintain(&config, &store, &fetcher, &callbacks, found, tend, now).await
        }));
    }

    pub(super) fn websub_done(
        &mut self,
        result: Result<Result<push::Pass, StoreError>, tokio::task::JoinError>,
    ) {
        let now = self.clock.now();
        match result {
            Ok(Ok(pass)) => {
                if pass.failed > 0 {
                    tracing::info!(
                        requested = pass.requested,
                        failed = pass.failed,
                        "WebSub hubs did not take every request; tried again with backoff (tributary feeds shows why)"
                    );
                } else if pass.requested > 0 {
                    tracing::debug!(requested = pass.requested, "WebSub hubs asked");
                }
                self.websub.next_pass = crate::model::earliest(self.websub.next_pass, pass.next);
                self.websub.subscribed = pass.subscribed;
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot read the WebSub subscriptions; trying again in a minute");
                self.websub.next_pass = Some(now + chrono::Duration::minutes(1));
            }
            Err(e) => tracing::error!(error = %e, "the WebSub task failed"),
        }
    }
}
