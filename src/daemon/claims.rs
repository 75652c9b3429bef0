//! Claims and rounds: feeds that came due are claimed from the store in batches and handed to
//! the poller; each feed's report is recorded, and a round's end counted and logged.

use super::*;

/// Most feeds one wake-up claims; more are claimed as these get under way.
pub(super) const CLAIM_BATCH: usize = 1000;
/// A claim is a marker, not a deadline: one daemon per database, so a claim outlives a slow
/// queue without being taken twice, and the next start releases what a crash left behind.
pub(super) const CLAIM_LEASE: Duration = Duration::from_secs(60 * 60);
/// A claim of due feeds, or why it failed with the claims it was to release (kept for the
/// next one).
pub(super) type ScanResult = Result<Claimed, (StoreError, Vec<i64>)>;

/// A round: feeds polled back to back, from the poller starting work until it runs dry.
#[derive(Debug)]
pub(super) struct Round {
    pub(super) started: Instant,
    pub(super) polled: usize,
    pub(super) failed: usize,
    pub(super) new: usize,
    pub(super) updated: usize,
}

impl Round {
    pub(super) fn new() -> Round {
        Round {
            started: Instant::now(),
            polled: 0,
            failed: 0,
            new: 0,
            updated: 0,
        }
    }
}

/// One line per event that matters, none for a feed that is simply as it was: a failure is
/// warned about when a run of failures starts, and when the feed is found abandoned.
pub(super) fn log_feed(report: &FeedReport) {
    match &report.result {
        Err(failure) if report.failure_began() => {
            tracing::warn!(feed = %report.url, kind = %failure.kind, error = %failure, "fetch failed")
        }
        Err(failure) => tracing::debug!(
            feed = %report.url, kind = %failure.kind, failures = report.failures, error = %failure, "still failing"
        ),
        Ok(FeedStatus::Skipped(reason)) => tracing::debug!(feed = %report.url, %reason, "skipped"),
        Ok(_) if report.recovered_after > 0 => tracing::info!(
            feed = %report.url, failures = report.recovered_after, "feed recovered"
        ),
        Ok(_) => {}
    }
    if !report.newly_repaired.is_empty() {
        let repairs: Vec<&str> = report.newly_repaired.iter().map(|r| r.describe()).collect();
        tracing::warn!(
            feed = %report.url,
            repairs = %repairs.join("; "),
            "feed read with repairs: its publisher may want to know"
        );
    }
    if report.abandoned {
        tracing::warn!(
            feed = %report.url,
            failures = report.failures,
            "feed abandoned: failing for longer than poll.give_up_after; still tried once a day"
        );
    }
}

/// A feed's report as the server's metrics count it.
pub(super) fn counted(report: &FeedReport) -> PolledFeed {
    let outcome = match &report.result {
        Ok(FeedStatus::Stored(o)) => FetchOutcome::Stored {
            new: o.new,
            updated: o.updated,
        },
        Ok(FeedStatus::NotModified) => FetchOutcome::NotModified,
        Ok(FeedStatus::Unchanged) => FetchOutcome::Unchanged,
        Ok(FeedStatus::Skipped(_)) => FetchOutcome::Skipped,
        Err(_) => FetchOutcome::Failed,
    };
    PolledFeed {
        fetched: report.polled().then_some(report.elapsed),
        outcome,
    }
}

impl Daemon {
    /// How many due feeds one claim takes. In a cluster, what this node can start fetching
    /// now: a feed claimed here and queued behind this node's budget would wait while another
    /// node has room for it, so the nodes waking for the same due time share its feeds by what
    /// each can take.
    pub(super) fn claim_batch(&self) -> usize {
        match self.cluster {
            Some(_) => self.poller.room(),
            None => CLAIM_BATCH,
        }
    }

    pub(super) fn start_scan(&mut self) {
        let now = self.clock.now();
        // In a cluster a claim lasts a lease, renewed while held: a node that dies loses its
        // feeds to the others when it runs out.
        let lease = self.cluster.as_ref().map_or(CLAIM_LEASE, |c| c.lease);
        let lease_until = now + chrono::Duration::from_std(lease).unwrap_or_default();
        let store = self.store.clone();
        let release = std::mem::take(&mut self.unrecorded);
        let batch = self.claim_batch();
        self.scan = Some(tokio::spawn(async move {
            let kept = release.clone();
            let claimed = async {
                if !release.is_empty() {
                    store.release_leases(Some(release)).await?;
                }
                store.claim_due(now, batch, lease_until).await
            };
            claimed.await.map_err(|e| (e, kept))
        }));
    }

    pub(super) fn scan_done(&mut self, result: Result<ScanResult, tokio::task::JoinError>) {
        let claimed = match result {
            Ok(Ok(claimed)) => {
                self.store_works(true, None);
                claimed
            }
            Ok(Err((e, unreleased))) => {
                self.store_works(false, Some(&e));
                self.unrecorded.extend(unreleased);
                self.more_due = false;
                self.next_wake = Some(self.clock.now() + self.store_retry());
                return;
            }
            Err(e) => {
                tracing::error!(error = %e, "due-feed scan failed; trying again");
                self.next_wake = Some(self.clock.now() + self.store_retry());
                return;
            }
        };
        self.more_due = claimed.more;
        self.next_wake = claimed.next;
        let mut unknown = Vec::new();
        for state in claimed.feeds {
            let Some(spec) = self.specs.get(&state.url).and_then(|i| self.config.feeds.get(*i)) else {
                // Scheduled by a poll that finished after its feed left the config.
                unknown.push(state.id);
                continue;
            };
            if !self.claimed.insert(state.id) {
                continue;
            }
            let policy = Policy::of(&self.config, spec);
            self.round.get_or_insert_with(Round::new);
            self.poller.submit(spec.clone(), state, policy);
        }
        if !unknown.is_empty() {
            let store = self.store.clone();
            // Alone, a feed this config does not name is off the schedule. In a cluster another
            // node's config may name it (one that loaded a list's new feeds a moment earlier):
            // it is due again in a minute, for a node that knows it (the whole-config check of
            // any node's start or reload takes a feed no config names off the schedule).
            let later = self
                .cluster
                .as_ref()
                .map(|_| self.clock.now() + chrono::Duration::minutes(1));
            tokio::spawn(async move {
                let off: Vec<(i64, Scheduled)> = unknown
                    .into_iter()
                    .map(|id| {
                        let scheduled = Scheduled {
                            next_due: later,
                            key: String::new(),
                            lease: None,
                        };
                        (id, scheduled)
                    })
                    .collect();
                if let Err(e) = store.schedule(off).await {
                    tracing::warn!(error = %e, "cannot take removed feeds off the schedule");
                }
            });
        }
    }

    pub(super) fn feed_done(&mut self, result: Result<FeedReport, poll::Unrecorded>) {
        let mut report = match result {
            Ok(report) => {
                self.store_works(true, None);
                report
            }
            Err(unrecorded) if matches!(unrecorded.error, StoreError::Fenced { .. }) => {
                // This node stalled past its claim and another node polls the feed now: its
                // record is the one that counts.
                self.claimed.remove(&unrecorded.feed_id);
                tracing::info!(error = %unrecorded.error, "poll not recorded");
                return;
            }
            Err(unrecorded) => {
                // Polled but not recorded: due again once the store takes writes again.
                self.claimed.remove(&unrecorded.feed_id);
                self.unrecorded.push(unrecorded.feed_id);
                self.store_works(false, Some(&unrecorded.error));
                return;
            }
        };
        self.claimed.remove(&report.feed_id);
        if let Some(look) = report.icon_look.take() {
            self.icon_looks.push(look);
        }
        // A document naming a hub, or naming none for a feed subscribed: the next pass's.
        if let (Some(links), Some(_)) = (report.push.take(), &self.websub.callbacks)
            && (links.hub.is_some() || self.websub.subscribed.contains(&report.feed_id))
        {
            self.websub.found_hubs.push((report.feed_id, links));
        }
        if let Some(next) = report.next_due {
            self.next_wake = Some(self.next_wake.map_or(next, |w| w.min(next)));
        }
        if let Some(server) = self.server() {
            server.metrics().record_feed(&counted(&report));
        }
        log_feed(&report);
        if report.polled() {
            if report.result.is_err() {
                self.failing.insert(report.feed_id);
            } else {
                self.failing.remove(&report.feed_id);
            }
        }
        let round = self.round.get_or_insert_with(Round::new);
        if report.polled() {
            round.polled += 1;
        }
        match &report.result {
            Err(_) => round.failed += 1,
            Ok(FeedStatus::Stored(o)) => {
                round.new += o.new;
                round.updated += o.updated;
                if o.new + o.updated > 0 {
                    self.changes_since.get_or_insert_with(Instant::now);
                }
            }
            Ok(_) => {}
        }
    }

    pub(super) fn round_done(&mut self, round: Round) {
        let elapsed = round.started.elapsed();
        let looks = std::mem::take(&mut self.icon_looks);
        if !looks.is_empty() {
            self.icon_tasks.spawn(self.poller.icon_looks(looks));
        }
        // Hubs the round's documents named: subscribed (or checked) now.
        if !self.websub.found_hubs.is_empty() {
            self.websub.next_pass = Some(self.clock.now());
        }
        // The readers this node served since the last round, into the store (for `feeds`, the
        // page and the other nodes), then the counts (every node's) told to publishers with
        // `poll.announce_readers`.
        let server = self.server().cloned();
        let refresh = self.poller.refresh_readers(self.config.clone());
        tokio::spawn(async move {
            if let Some(server) = server {
                server.flush_readers().await;
            }
            refresh.await;
        });
        if let Some(server) = self.server() {
            server.metrics().record_round(elapsed);
        }
        // Quiet in steady state: a round that changed nothing and where nothing failed is
        // not news.
        let news = round.new + round.updated + round.failed > 0;
        let fields = (round.polled, round.failed, round.new, round.updated);
        if news {
            tracing::info!(
                polled = fields.0,
                failed = fields.1,
                new = fields.2,
                updated = fields.3,
                elapsed_ms = elapsed.as_millis() as u64,
                "round done"
            );
        } else {
            tracing::debug!(
                polled = fields.0,
                elapsed_ms = elapsed.as_millis() as u64,
                "round done"
            );
        }
        self.summary = format!(
            "last round {}: {} polled, {} failed, {} new",
            crate::model::human_time(self.clock.now()),
            round.polled,
            round.failed,
            round.new
        );
        notify::status(&self.status());
        if std::mem::replace(&mut self.renders.mode, output::WhenEmpty::Write) == output::WhenEmpty::Keep {
            // The first round: what was held back at start-up is now the truth, entries or not.
            self.request_render_where(|_| true);
        } else if self.changes_since.is_none() && round.polled > 0 {
            // No new entries, but the page says how its feeds are (one may have started or
            // stopped failing); a page that did not change renders the same bytes and is not
            // rewritten.
            self.request_render_where(|spec| spec.format == crate::model::OutputFormat::Html);
        }
        self.rest_pending = true;
    }
}
