//! The control loop: what wakes the daemon, what it does after each event, the rest when it is
//! quiet, its status line, the store's health, and the shutdown.

use super::*;

impl Daemon {
    /// The built-in server, when the daemon serves.
    pub(super) fn server(&self) -> Option<&Server> {
        self.listening.as_ref().map(|l| &l.server)
    }

    pub(super) async fn main_loop(&mut self, control: &mut mpsc::Receiver<Control>) -> Exit {
        let mut watchdog = notify::watchdog_interval().map(tokio::time::interval);
        loop {
            let clock = self.clock.clone();
            let wake = self.wake_time();
            let render_due = self.render_due();
            let housekeeping_at = self.next_housekeeping.filter(|_| self.housekeeping.is_none());
            let room = self.poller.room_freed();
            tokio::select! {
                message = control.recv() => match message {
                    Some(Control::Reload) => self.start_reload(),
                    Some(Control::Stop) | None => break,
                },
                _ = async { watchdog.as_mut().expect("guarded").tick().await }, if watchdog.is_some() => {
                    notify::watchdog();
                }
                Some(result) = self.poller.next(), if self.poller.busy() => self.feed_done(result),
                // A fetch ended: room for a claim (see `wake_time`).
                () = room.notified(), if self.cluster.is_some() => {}
                result = async { self.scan.as_mut().expect("guarded").await }, if self.scan.is_some() => {
                    self.scan = None;
                    self.scan_done(result);
                }
                () = sleep_until(clock.as_ref(), wake.unwrap_or(DateTime::<Utc>::MAX_UTC)),
                    if wake.is_some() && self.scan.is_none() && self.reload.is_none() =>
                {
                    self.start_scan();
                }
                Some(done) = self.renders.tasks.join_next(), if !self.renders.tasks.is_empty() => {
                    match done {
                        Ok((path, result)) => self.render_done(path, result),
                        Err(e) => tracing::error!(error = %e, "render task failed"),
                    }
                }
                () = sleep_until(clock.as_ref(), render_due.unwrap_or(DateTime::<Utc>::MAX_UTC)),
                    if render_due.is_some() =>
                {
                    self.render_retries();
                }
                _ = async { self.housekeeping.as_mut().expect("guarded").await }, if self.housekeeping.is_some() => {
                    self.housekeeping = None;
                    self.rest_pending = true;
                }
                () = sleep_until(clock.as_ref(), housekeeping_at.unwrap_or(DateTime::<Utc>::MAX_UTC)),
                    if housekeeping_at.is_some() =>
                {
                    self.start_housekeeping();
                }
                result = async { self.reload.as_mut().expect("guarded").await }, if self.reload.is_some() => {
                    self.reload = None;
                    self.reload_done(result);
                }
                () = sleep_until(clock.as_ref(), self.next_tick.unwrap_or(DateTime::<Utc>::MAX_UTC)),
                    if self.next_tick.is_some() && self.tick.is_none() =>
                {
                    self.start_tick();
                }
                result = async { self.tick.as_mut().expect("guarded").await }, if self.tick.is_some() => {
                    self.tick = None;
                    self.tick_done(result);
                }
                Some(notice) = async { self.cluster.as_mut().expect("guarded").notice().await },
                    if self.cluster.is_some() =>
                {
                    self.heard(notice);
                }
                () = sleep_until(clock.as_ref(), self.webhooks.next.unwrap_or(DateTime::<Utc>::MAX_UTC)),
                    if self.webhooks.next.is_some() && self.webhooks.pass.is_none() =>
                {
                    self.start_deliveries();
                }
                result = async { self.webhooks.pass.as_mut().expect("guarded").await }, if self.webhooks.pass.is_some() => {
                    self.webhooks.pass = None;
                    self.deliveries_done(result);
                }
                Some(found) = self.icon_tasks.join_next(), if !self.icon_tasks.is_empty() => {
                    // New icons: the outputs that show them render again.
                    if found.unwrap_or(0) > 0 {
                        self.request_render_where(|s| {
                            matches!(s.format, crate::model::OutputFormat::Html | crate::model::OutputFormat::Atom | crate::model::OutputFormat::Json)
                        });
                    }
                }
                Some(pushed) = async { self.websub.pushes.as_mut().expect("guarded").recv().await }, if self.websub.pushes.is_some() => {
                    self.pushed(pushed);
                }
                // A hub verified a subscription: when it is renewed is the pass's to say.
                () = self.websub.verified.notified(), if self.websub.callbacks.is_some() => {
                    self.websub.next_pass = Some(self.clock.now());
                }
                Some(done) = self.websub.push_tasks.join_next(), if !self.websub.push_tasks.is_empty() => {
                    match done {
                        Ok(done) => self.push_done(done),
                        Err(e) => tracing::error!(error = %e, "a push's task failed"),
                    }
                }
                () = sleep_until(clock.as_ref(), self.next_lists.unwrap_or(DateTime::<Utc>::MAX_UTC)),
                    if self.next_lists.is_some() && self.list_pass.is_none() && self.reload.is_none() =>
                {
                    self.start_lists();
                }
                result = async { self.list_pass.as_mut().expect("guarded").await }, if self.list_pass.is_some() => {
                    self.list_pass = None;
                    self.lists_done(result);
                }
                () = sleep_until(clock.as_ref(), self.websub.next_pass.unwrap_or(DateTime::<Utc>::MAX_UTC)),
                    if self.websub.next_pass.is_some() && self.websub.pass.is_none() =>
                {
                    self.start_websub();
                }
                result = async { self.websub.pass.as_mut().expect("guarded").await }, if self.websub.pass.is_some() => {
                    self.websub.pass = None;
                    self.websub_done(result);
                }
                Some(followed) = self.follows.join_next(), if !self.follows.is_empty() => {
                    if let (Ok(Some(report)), Some(server)) = (followed, self.server()) {
                        server.publish(&[Ok(report)]);
                    }
                }
            }
            self.after_event();
        }
        self.shutdown(control).await
    }

    /// When to claim due feeds next: at the earliest due time, or now when the last claim
    /// left feeds behind and the queue runs low. In a cluster, not while this node has no
    /// room for another fetch (it claims again as soon as one ends).
    pub(super) fn wake_time(&self) -> Option<DateTime<Utc>> {
        if self.cluster.is_some() && self.poller.room() == 0 {
            return None;
        }
        if self.more_due {
            let low = match self.cluster {
                Some(_) => true,
                None => self.poller.queued() < CLAIM_BATCH / 2,
            };
            return low.then(|| self.clock.now());
        }
        self.next_wake
    }

    /// Bookkeeping after any event: rounds that ended, renders that are due.
    pub(super) fn after_event(&mut self) {
        if !self.poller.busy()
            && self.scan.is_none()
            && let Some(round) = self.round.take()
        {
            self.round_done(round);
        }
        if let Some(since) = self.changes_since
            && (!self.poller.busy() || since.elapsed() >= RENDER_EVERY)
        {
            self.changes_since = None;
            self.request_render();
        }
        self.rest_when_quiet();
    }

    /// Between rounds the daemon rests at its small size, not the last round's high-water
    /// mark: once the round, its renders and housekeeping are all done (a render's reader
    /// returned to the pool after an earlier release would keep its cache and mapped pages).
    pub(super) fn rest_when_quiet(&mut self) {
        let quiet = !self.poller.busy()
            && self.scan.is_none()
            && self.round.is_none()
            && self.renders.running.is_empty()
            && self.housekeeping.is_none();
        if !(quiet && std::mem::take(&mut self.rest_pending)) {
            return;
        }
        let store = self.store.clone();
        tokio::spawn(async move {
            if let Err(e) = store.release_memory().await {
                tracing::debug!(error = %e, "could not release database memory");
            }
        });
    }

    /// How soon to claim again after the store failed: in a cluster within a tick, so that
    /// a database back from a restart is polled again within a lease; alone, a minute.
    pub(super) fn store_retry(&self) -> chrono::Duration {
        let retry = self
            .cluster
            .as_ref()
            .map_or(Duration::from_secs(60), |c| c.tick_every());
        chrono::Duration::from_std(retry).unwrap_or_default()
    }

    /// Notes whether the store works, logging only the changes.
    pub(super) fn store_works(&mut self, works: bool, error: Option<&StoreError>) {
        match (self.store_failing, works) {
            (false, false) => {
                self.store_failing = true;
                if let Some(e) = error {
                    tracing::error!(error = %e, "the database failed; polls are not recorded until it works again");
                }
            }
            (true, true) => {
                self.store_failing = false;
                tracing::info!("the database works again");
            }
            _ => {}
        }
    }

    pub(super) async fn shutdown(&mut self, control: &mut mpsc::Receiver<Control>) -> Exit {
        notify::stopping();
        if let Some(server) = self.server() {
            server.flush_readers().await;
        }
        // A request cut off now is sent again later: the delivery's claim runs out.
        if let Some(deliveries) = self.webhooks.pass.take() {
            deliveries.abort();
        }
        self.poller.stop();
        // Claimed feeds that never started are due as they were.
        let unstarted: Vec<i64> = self.poller.take_queued().iter().map(|j| j.feed_id()).collect();
        if !unstarted.is_empty() {
            let store = self.store.clone();
            if let Err(e) = store.release_leases(Some(unstarted)).await {
                tracing::warn!(error = %e, "cannot release the claims of feeds not polled");
            }
        }
        let grace = self.config.poll.shutdown_grace;
        if self.poller.busy() {
            tracing::info!(
                grace = %humantime::format_duration(grace),
                "stopping: letting in-flight fetches finish"
            );
        }
        let deadline = tokio::time::Instant::now() + grace;
        let mut abandoned = false;
        while self.poller.busy() {
            tokio::select! {
                Some(result) = self.poller.next() => self.feed_done(result),
                () = tokio::time::sleep_until(deadline) => {
                    abandoned = true;
                    tracing::warn!("stopping: abandoned fetches still running after the grace period");
                    break;
                }
                message = control.recv() => {
                    if message.is_some() {
                        tracing::warn!("second stop request: exiting at once");
                        return Exit::Immediate;
                    }
                }
            }
        }
        // Feeds that finished were committed; outputs catch up with them, within the grace.
        if self.changes_since.take().is_some() || abandoned {
            self.request_render();
        }
        let render_deadline = tokio::time::Instant::now() + grace.max(Duration::from_secs(1));
        while !self.renders.tasks.is_empty() {
            tokio::select! {
                Some(done) = self.renders.tasks.join_next() => {
                    // A render asked for while this one ran starts now, and is waited for too.
                    if let Ok((path, result)) = done {
                        self.render_done(path, result);
                    }
                }
                () = tokio::time::sleep_until(render_deadline) => {
                    // Outputs are written whole or not at all: stopping mid-render is safe.
                    tracing::warn!("stopping: an output is still rendering; it keeps its last version");
                    break;
                }
                message = control.recv() => {
                    if message.is_some() {
                        return Exit::Immediate;
                    }
                }
            }
        }
        if let Some(cluster) = &mut self.cluster {
            cluster.step_down().await;
        }
        Exit::Graceful
    }

    pub(super) fn status(&self) -> String {
        let mut s = crate::model::counted(self.config.feeds.len(), "feed", "feeds");
        if !self.failing.is_empty() {
            s.push_str(&format!(", {} failing", self.failing.len()));
        }
        s.push_str(&format!("; {}", self.summary));
        if let Some(next) = self.next_wake {
            s.push_str(&format!("; next poll {}", crate::model::human_time(next)));
        }
        if let Some(addr) = self.listening.as_ref().map(|l| l.public) {
            s.push_str(&format!("; serving on {addr}"));
        }
        if let Some(addr) = self.listening.as_ref().and_then(|l| l.admin) {
            s.push_str(&format!("; admin on {addr}"));
        }
        s
    }
}
