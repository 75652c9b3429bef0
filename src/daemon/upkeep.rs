//! The node's upkeep: housekeeping (retention), and in a cluster its heartbeat, the notices
//! other nodes send, and the outputs it follows.

use super::*;

/// Retention, the planner's statistics, checkpoints and vacuum, keeping what outputs show now: as
/// their last renders showed it (`shown`), selected again only for outputs not rendered yet.
pub(super) async fn housekeeping(
    config: Arc<Config>,
    store: Store,
    now: DateTime<Utc>,
    shown: HashMap<PathBuf, Arc<Vec<i64>>>,
) {
    let shown = async {
        let mut ids = HashSet::new();
        for spec in &config.outputs {
            match shown.get(&spec.path) {
                Some(rendered) => ids.extend(rendered.iter().copied()),
                None => {
                    let selection = output::select::select(&store, spec, &config).await?;
                    ids.extend(selection.entries.iter().map(|e| e.stored.id));
                }
            }
        }
        Ok::<_, StoreError>(ids)
    };
    let protected = match shown.await {
        Ok(ids) => ids,
        Err(e) => {
            tracing::error!(error = %e, "housekeeping skipped: cannot tell what outputs show");
            return;
        }
    };
    let retention = Retention {
        keep_days: config.store.keep_days,
        keep_per_feed: config.store.keep_per_feed,
        protected,
    };
    match crate::store::housekeeping(&store, retention, now).await {
        Ok(r) if r.entries_removed + r.tombstones_expired > 0 => tracing::info!(
            entries_removed = r.entries_removed,
            tombstones_expired = r.tombstones_expired,
            steps = r.steps,
            longest_step_ms = r.longest_step.as_millis() as u64,
            "housekeeping done"
        ),
        Ok(_) => tracing::debug!("housekeeping done"),
        Err(e) => tracing::error!(error = %e, "housekeeping failed"),
    }
}

impl Daemon {
    pub(super) fn start_housekeeping(&mut self) {
        self.next_housekeeping = self.config.store.housekeeping.next_after(self.clock.now());
        if self.cluster.as_ref().is_some_and(|c| !c.leads()) {
            // One node keeps the shared store: the leader, which knows what outputs show.
            return;
        }
        let (config, store, now) = (self.config.clone(), self.store.clone(), self.clock.now());
        let shown = self.renders.shown.clone();
        self.housekeeping = Some(tokio::spawn(async move {
            housekeeping(config, store, now, shown).await
        }));
    }

    pub(super) fn start_tick(&mut self) {
        let Some(cluster) = &self.cluster else {
            return;
        };
        let now = self.clock.now();
        self.next_tick = Some(now + chrono::Duration::from_std(cluster.tick_every()).unwrap_or_default());
        let claimed = self.claimed.iter().copied().collect();
        self.tick = Some(tokio::spawn(cluster.tick(&self.store, claimed, now)));
    }

    pub(super) fn tick_done(
        &mut self,
        result: Result<Result<cluster::Tick, StoreError>, tokio::task::JoinError>,
    ) {
        let tick = match result {
            Ok(Ok(tick)) => tick,
            // Said once for the whole outage (see `store_works`): claims run out unless a tick
            // works again within the lease, and then other nodes take them.
            Ok(Err(e)) => {
                self.store_works(false, Some(&e));
                return;
            }
            Err(e) => {
                tracing::error!(error = %e, "cluster heartbeat task failed");
                return;
            }
        };
        if self.store_failing {
            // The database is back: claim what is due now, not at the next retry.
            self.store_works(true, None);
            self.more_due = false;
            self.next_wake = Some(self.clock.now());
        }
        self.poller.hold_hosts(&tick.delays);
        if !tick.lost.is_empty() {
            // Another node holds these feeds now. Those still queued here are not fetched (the
            // other node fetches them); a poll under way will not be recorded (fenced).
            let lost: HashSet<i64> = tick.lost.iter().copied().collect();
            for job in self.poller.take_queued_where(|j| lost.contains(&j.feed_id())) {
                self.claimed.remove(&job.feed_id());
            }
            tracing::warn!(
                feeds = tick.lost.len(),
                "claims ran out before they were renewed; other nodes poll those feeds"
            );
        }
        let Some(cluster) = &mut self.cluster else {
            return;
        };
        cluster.check_lead();
        if let Some(leader) = tick.lead {
            cluster.lead(leader);
            self.request_render();
            // The lead reads the lists and tends the subscriptions: at once.
            let now = self.clock.now();
            if !self.config.lists.is_empty() {
                self.next_lists = Some(now);
            }
            if self.websub.callbacks.is_some() {
                self.websub.next_pass = Some(now);
            }
        }
    }

    /// A notification from the cluster: stored changes (the leader renders) or a published
    /// output (the others write and serve it).
    pub(super) fn heard(&mut self, notice: Notice) {
        let Some(cluster) = &self.cluster else {
            return;
        };
        match notice {
            // Another node recorded a poll: this one wakes for that feed's next due time too.
            Notice::Due(due) => self.next_wake = Some(self.next_wake.map_or(due, |w| w.min(due))),
            Notice::TurnFreed(host) => self.poller.turn_freed(&host),
            // Announced by the node that was told: every node's polls hold off at once.
            Notice::HostDelayed { host, until } => self.poller.hold_hosts(&HashMap::from([(host, until)])),
            // The leader reads the lists; the others load their feeds when it finds a change.
            Notice::ListChanged(list) => {
                if !cluster.leads() && self.config.lists.iter().any(|l| l.key == list) {
                    self.start_reload();
                }
            }
            // The leader tends subscriptions: a renewal another node's verification scheduled.
            Notice::Subscription(due) => {
                if cluster.leads() && self.websub.callbacks.is_some() {
                    self.websub.next_pass = Some(self.websub.next_pass.map_or(due, |w| w.min(due)));
                }
            }
            Notice::Changes { node } => {
                if cluster.leads() && node != self.config.node.name {
                    self.changes_since.get_or_insert_with(Instant::now);
                }
            }
            Notice::Output(name) => {
                if !cluster.leads()
                    && let Some(follow) = cluster.follow(&self.config, &name)
                {
                    self.follows.spawn(follow);
                }
            }
            // Whatever was announced while the notices were lost is looked at again: due
            // times (a claim now finds them), host waits (the next tick reads them), and the
            // outputs published meanwhile.
            Notice::Reconnected => {
                self.next_wake = Some(self.clock.now());
                self.more_due = false;
                self.follow_all();
                if !self.config.lists.is_empty() {
                    self.start_reload();
                }
            }
        }
    }

    /// A node that does not lead serves what the leader last published, from the start.
    pub(super) fn follow_all(&mut self) {
        let Some(cluster) = &self.cluster else {
            return;
        };
        if cluster.leads() {
            return;
        }
        for spec in &self.config.outputs {
            if let Some(follow) = cluster.follow(&self.config, &spec.file_name()) {
                self.follows.spawn(follow);
            }
        }
    }
}
