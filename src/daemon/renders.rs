//! Renders: outputs are rendered when a round stored something (at most every
//! [`RENDER_EVERY`] while a round goes on), retried with backoff when one cannot be written,
//! and the webhook outbox is delivered.

use super::*;

/// During a round that goes on and on (feeds coming due faster than they finish), outputs are
/// rendered at least this often, rather than only when the round ends.
pub(super) const RENDER_EVERY: Duration = Duration::from_secs(30);
/// First retry of an output that could not be written; doubles up to [`RENDER_RETRY_CAP`].
pub(super) const RENDER_RETRY: Duration = Duration::from_secs(10);
pub(super) const RENDER_RETRY_CAP: Duration = Duration::from_secs(10 * 60);
/// Whether any output has a webhook.
pub(super) fn has_webhooks(config: &Config) -> bool {
    config.outputs.iter().any(|o| !o.webhooks.is_empty())
}

/// The outputs being rendered: at most one task per output, and at most one more asked for.
pub(super) struct Renders {
    /// Until the first round ends, an output without entries does not replace its file.
    pub(super) mode: output::WhenEmpty,
    pub(super) tasks: JoinSet<(PathBuf, Result<OutputReport, OutputError>)>,
    pub(super) running: HashSet<PathBuf>,
    pub(super) again: HashSet<PathBuf>,
    /// Outputs that failed to render: when to try again, and how many tries failed.
    pub(super) retry: HashMap<PathBuf, (DateTime<Utc>, u32)>,
    /// Outputs recorded as failing in the store (cleared there at their next success).
    pub(super) recorded_failing: HashSet<PathBuf>,
    /// What each output showed at its last successful render: retention keeps it.
    pub(super) shown: HashMap<PathBuf, Arc<Vec<i64>>>,
    /// Outputs whose `on_change` failed: run again at the retry, changed file or not.
    pub(super) hooks_owed: HashSet<PathBuf>,
}

impl Default for Renders {
    fn default() -> Renders {
        Renders {
            mode: output::WhenEmpty::Keep,
            tasks: JoinSet::new(),
            running: HashSet::new(),
            again: HashSet::new(),
            retry: HashMap::new(),
            recorded_failing: HashSet::new(),
            shown: HashMap::new(),
            hooks_owed: HashSet::new(),
        }
    }
}

/// The daemon's side of the webhook outbox.
pub(super) struct Webhooks {
    /// A pass over the outbox in progress.
    pub(super) pass: Option<JoinHandle<Result<output::webhook::DeliveryPass, StoreError>>>,
    /// When the next pass is due (`None`: no webhook has anything waiting).
    pub(super) next: Option<DateTime<Utc>>,
    /// Webhooks (output, name) reported as giving deliveries up, until one is taken.
    pub(super) failing: HashSet<(String, String)>,
}

impl Daemon {
    /// Renders every output: each starts now unless it is being rendered, in which case it
    /// is rendered once more after that.
    pub(super) fn request_render(&mut self) {
        self.request_render_where(|_| true);
    }

    /// [`Daemon::request_render`] for the outputs `which` picks.
    pub(super) fn request_render_where(&mut self, which: impl Fn(&OutputSpec) -> bool) {
        let config = self.config.clone();
        for (at, spec) in config.outputs.iter().enumerate().filter(|(_, s)| which(s)) {
            if self.renders.running.contains(&spec.path) {
                self.renders.again.insert(spec.path.clone());
            } else {
                self.spawn_render(at);
            }
        }
    }

    /// Renders the `at`-th output of the config. (By position: a spec lists its feeds, and
    /// copying 100,000 of them per render is not free.)
    pub(super) fn spawn_render(&mut self, at: usize) {
        if self.cluster.as_ref().is_some_and(|c| !c.leads()) {
            // The leader renders for the cluster; this node writes and serves what it publishes.
            return;
        }
        let (config, store) = (self.config.clone(), self.store.clone());
        let Some(path) = config.outputs.get(at).map(|o| o.path.clone()) else {
            return;
        };
        self.renders.running.insert(path.clone());
        self.renders.retry.remove(&path);
        let how = output::RenderOptions {
            mode: self.renders.mode,
            now: self.clock.now(),
            hook_owed: self.renders.hooks_owed.contains(&path),
        };
        self.renders.tasks.spawn(async move {
            let context = Arc::new(output::Context::new(&config));
            let result = output::render_one(&config, &config.outputs[at], &store, &context, how).await;
            (path, result)
        });
    }

    /// Sends what the outbox has due (see [`output::webhook`]), as a task.
    pub(super) fn start_deliveries(&mut self) {
        self.webhooks.next = None;
        let (config, store, fetcher, clock) = (
            self.config.clone(),
            self.store.clone(),
            self.fetcher.clone(),
            self.clock.clone(),
        );
        self.webhooks.pass = Some(tokio::spawn(async move {
            output::webhook::deliver_due(&config, &store, &fetcher, || clock.now()).await
        }));
    }

    pub(super) fn deliveries_done(
        &mut self,
        result: Result<Result<output::webhook::DeliveryPass, StoreError>, tokio::task::JoinError>,
    ) {
        self.rest_pending = true;
        match result {
            Ok(Ok(pass)) => {
                if let Some(server) = self.server() {
                    server
                        .metrics()
                        .record_deliveries(pass.delivered, pass.retried, pass.given_up);
                }
                // A webhook that gives deliveries up is reported once, until one is taken.
                for hook in &pass.taken_by {
                    self.webhooks.failing.remove(hook);
                }
                for ((output, webhook), error) in &pass.failing {
                    if self.webhooks.failing.insert((output.clone(), webhook.clone())) {
                        tracing::warn!(
                            %output,
                            %webhook,
                            %error,
                            "webhook deliveries given up (refused, or retried past retry_for); \
                             reported once until one is delivered: tributary feeds lists them"
                        );
                    }
                }
                if pass.delivered + pass.retried + pass.given_up > 0 {
                    tracing::debug!(
                        delivered = pass.delivered,
                        retried = pass.retried,
                        given_up = pass.given_up,
                        "webhook deliveries"
                    );
                }
                // A render that made deliveries meanwhile asked for a pass already.
                self.webhooks.next = crate::model::earliest(self.webhooks.next, pass.next);
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot read the webhook outbox; trying again in a minute");
                self.webhooks.next = Some(self.clock.now() + chrono::Duration::minutes(1));
            }
            Err(e) => tracing::error!(error = %e, "the webhook delivery task failed"),
        }
    }

    pub(super) fn render_done(&mut self, path: PathBuf, result: Result<OutputReport, OutputError>) {
        self.renders.running.remove(&path);
        self.rest_pending = true;
        if result.as_ref().is_ok_and(|r| r.deliveries > 0) {
            self.webhooks.next = Some(self.clock.now());
        }
        // Not written, or written but its `on_change` failed (owed until it runs): either is
        // tried again with the output's retry, backing off.
        let failure = match &result {
            Err(e) => Some(e.to_string()),
            Ok(o) => o
                .hook_error
                .as_ref()
                .map(|e| format!("output {}: on_change {e}", o.path.display())),
        };
        if result.as_ref().is_ok_and(|o| o.hook_error.is_some()) {
            self.renders.hooks_owed.insert(path.clone());
        } else if result.is_ok() {
            self.renders.hooks_owed.remove(&path);
        }
        if let Ok(o) = &result
            && o.written
        {
            tracing::debug!(output = %o.path.display(), entries = o.entries, "output written");
        }
        if let Some(e) = &failure {
            let tries = self.renders.retry.get(&path).map_or(0, |(_, n)| *n) + 1;
            let delay = RENDER_RETRY
                .saturating_mul(1 << (tries - 1).min(16))
                .min(RENDER_RETRY_CAP);
            if tries == 1 {
                tracing::error!(error = %e, retry_in = %humantime::format_duration(delay), "output not finished");
            }
            let at = self.clock.now() + chrono::Duration::from_std(delay).unwrap_or_default();
            self.renders.retry.insert(path.clone(), (at, tries));
        }
        if let (Ok(report), Some(cluster)) = (&result, &mut self.cluster)
            && !report.pending
        {
            cluster.publish(report, self.clock.now());
        }
        if let Ok(report) = &result {
            self.renders
                .shown
                .insert(path.clone(), Arc::new(report.shown.clone()));
            if failure.is_none() && self.renders.retry.remove(&path).is_some() {
                tracing::info!(output = %path.display(), "output written again after failures");
            }
            if report.written {
                let (config, report) = (self.config.clone(), report.clone());
                tokio::spawn(async move { output::websub::announce(&config, &[report]).await });
            }
        }
        // Written or not, the store says so (for `feeds` and /healthz); changes of state only.
        let failing = failure.is_some();
        if failing || self.renders.recorded_failing.remove(&path) {
            if failing {
                self.renders.recorded_failing.insert(path.clone());
            }
            let (store, now, outcomes) = (
                self.store.clone(),
                self.clock.now(),
                vec![output::outcome(&result)],
            );
            tokio::spawn(async move {
                if let Err(e) = output::record_renders(&store, outcomes, now).await {
                    tracing::debug!(error = %e, "cannot record an output's state");
                }
            });
        }
        if let Some(server) = self.server() {
            server.publish(std::slice::from_ref(&result));
        }
        if self.renders.again.remove(&path)
            && let Some(at) = self.config.outputs.iter().position(|o| o.path == path)
        {
            self.spawn_render(at);
        }
    }

    /// The earliest retry of a failed output, if any.
    pub(super) fn render_due(&self) -> Option<DateTime<Utc>> {
        self.renders
            .retry
            .iter()
            .filter(|(path, _)| !self.renders.running.contains(*path))
            .map(|(_, (at, _))| *at)
            .min()
    }

    pub(super) fn render_retries(&mut self) {
        let now = self.clock.now();
        let config = self.config.clone();
        let due: Vec<usize> = config
            .outputs
            .iter()
            .enumerate()
            .filter(|(_, o)| self.renders.retry.get(&o.path).is_some_and(|(at, _)| *at <= now))
            .map(|(at, _)| at)
            .collect();
        for at in due {
            let path = &config.outputs[at].path;
            let tries = self.renders.retry.get(path).map(|(_, n)| *n);
            self.spawn_render(at);
            // Keep the count of failed tries, so the next delay doubles.
            if let Some(tries) = tries {
                self.renders
                    .retry
                    .insert(path.clone(), (DateTime::<Utc>::MAX_UTC, tries));
            }
        }
    }
}
