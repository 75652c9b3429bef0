//! Owns the long-running service (`tributary run`): the due-time loop, reloads, housekeeping,
//! graceful shutdown, and talking to systemd.
//!
//! The loop keeps one round of polling in flight at a time (a spawned task running
//! [`poll::poll_feeds`] over the feeds that are due), and meanwhile stays responsive: control
//! messages (stop, reload), the watchdog and housekeeping are handled while a round runs. After
//! a round that changed entries, outputs are re-rendered once. Signals arrive as [`Control`]
//! messages from the caller, so this module is driven the same way by `cli` and by tests.

mod notify;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, ConfigError};
use crate::fetch::{FetchError, Fetcher};
use crate::model::FeedState;
use crate::output;
use crate::poll::{self, FeedStatus, PollReport};
use crate::schedule::{self, Clock, History, SystemClock};
use crate::serve::{Server, websub};
use crate::store::{Retention, StoreError, StoreHandle};

/// What the outside world asks of a running daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// SIGTERM / SIGINT: finish or abandon in-flight fetches (after the grace period) and exit.
    /// A second `Stop` during shutdown exits at once.
    Stop,
    /// SIGHUP: load the config again; keep the running one if the new one is invalid.
    Reload,
}

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("invalid configuration\n{0}")]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot set up the HTTP client: {0}")]
    Fetch(#[from] FetchError),
    #[error("cannot listen on {addr} (serve.listen): {source}")]
    Listen {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Which feeds are due, and when the next one will be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Indices into `config.feeds`.
    pub due: Vec<usize>,
    pub next: Option<DateTime<Utc>>,
}

/// Plans a round at `now` from the feeds' states (one per `config.feeds`, in order).
pub fn plan(
    config: &Config,
    states: &[FeedState],
    host_delays: &HashMap<String, DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Plan {
    let mut due = Vec::new();
    let mut next: Option<DateTime<Utc>> = None;
    for (i, (spec, state)) in config.feeds.iter().zip(states).enumerate() {
        let history = History::from(state);
        let host_delay = Fetcher::host_of(&spec.url).and_then(|h| host_delays.get(&h).copied());
        let Some(at) = schedule::next_due(&config.policy_for(spec), spec.url.as_str(), &history, host_delay)
        else {
            continue;
        };
        if at <= now {
            due.push(i);
        } else {
            next = Some(next.map_or(at, |n| n.min(at)));
        }
    }
    Plan { due, next }
}

/// Runs the daemon until a [`Control::Stop`] (or the channel closes).
pub async fn run(config_path: &Path, control: mpsc::Receiver<Control>) -> Result<(), DaemonError> {
    run_with_clock(config_path, control, Arc::new(SystemClock)).await
}

pub async fn run_with_clock(
    config_path: &Path,
    mut control: mpsc::Receiver<Control>,
    clock: Arc<dyn Clock>,
) -> Result<(), DaemonError> {
    let config = Arc::new(Config::load(config_path)?);
    let (store, store_thread) = StoreHandle::open(&config.store.path).await?;
    let fetcher = Fetcher::new(&config.poll)?;
    let server_stop = CancellationToken::new();
    let mut server_task = None;
    let server = match &config.serve {
        Some(serve) => {
            let listener = tokio::net::TcpListener::bind(serve.listen)
                .await
                .map_err(|source| DaemonError::Listen {
                    addr: serve.listen,
                    source,
                })?;
            let server = Server::new(config.clone(), store.clone());
            tracing::info!(listen = %serve.listen, "serving outputs");
            let (task_server, stop) = (server.clone(), server_stop.clone());
            server_task = Some(tokio::spawn(async move {
                if let Err(e) = task_server.run(listener, stop).await {
                    tracing::error!(error = %e, "HTTP server failed");
                }
            }));
            Some(server)
        }
        None => None,
    };
    let mut daemon = Daemon {
        path: config_path.to_path_buf(),
        config,
        store,
        fetcher,
        clock,
        stop: CancellationToken::new(),
        summary: String::from("no round yet"),
        server,
    };
    tracing::info!(
        config = %daemon.path.display(),
        feeds = daemon.config.feeds.len(),
        outputs = daemon.config.outputs.len(),
        "tributary started"
    );
    notify::ready(&daemon.status(None));
    daemon.render().await;
    let result = daemon.main_loop(&mut control).await;
    // The server holds a store handle: it must be gone before the store thread can finish.
    // Requests in flight get a moment; idle keep-alive connections do not hold the exit up.
    server_stop.cancel();
    if let Some(mut task) = server_task {
        if tokio::time::timeout(SERVER_GRACE, &mut task).await.is_err() {
            task.abort();
        }
    }
    let Daemon { store, server, .. } = daemon;
    drop(server);
    drop(store);
    if result == Exit::Graceful {
        store_thread.join().await;
    }
    tracing::info!("tributary stopped");
    Ok(())
}

/// How long HTTP requests in flight may take to finish at shutdown.
const SERVER_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

#[derive(Debug, PartialEq, Eq)]
enum Exit {
    Graceful,
    /// A second stop request: leave without waiting for anything.
    Immediate,
}

struct Daemon {
    path: PathBuf,
    config: Arc<Config>,
    store: StoreHandle,
    fetcher: Fetcher,
    clock: Arc<dyn Clock>,
    stop: CancellationToken,
    summary: String,
    server: Option<Server>,
}

type Round = JoinHandle<Result<PollReport, StoreError>>;

impl Daemon {
    async fn main_loop(&mut self, control: &mut mpsc::Receiver<Control>) -> Exit {
        let mut round: Option<Round> = None;
        let mut next_due: Option<DateTime<Utc>> = Some(self.clock.now());
        let mut next_housekeeping = self.config.store.housekeeping.next_after(self.clock.now());
        let mut watchdog = notify::watchdog_interval().map(tokio::time::interval);
        loop {
            let clock = self.clock.clone();
            tokio::select! {
                message = control.recv() => match message {
                    Some(Control::Reload) => {
                        self.reload().await;
                        // Added feeds may be due at once.
                        if round.is_none() {
                            next_due = Some(self.clock.now());
                        }
                    }
                    Some(Control::Stop) | None => break,
                },
                result = async { round.as_mut().expect("guarded by the branch condition").await }, if round.is_some() => {
                    round = None;
                    self.finish_round(result).await;
                    next_due = self.plan_next().await.next;
                    notify::status(&self.status(next_due));
                }
                () = async { schedule::clock::sleep_until(clock.as_ref(), next_due.unwrap_or(DateTime::<Utc>::MAX_UTC)).await },
                    if round.is_none() && next_due.is_some() =>
                {
                    let plan = self.plan_next().await;
                    if plan.due.is_empty() {
                        next_due = plan.next;
                    } else {
                        round = Some(self.start_round(&plan.due));
                    }
                }
                () = async { schedule::clock::sleep_until(clock.as_ref(), next_housekeeping.unwrap_or(DateTime::<Utc>::MAX_UTC)).await },
                    if next_housekeeping.is_some() =>
                {
                    self.housekeeping().await;
                    next_housekeeping = self.config.store.housekeeping.next_after(self.clock.now());
                }
                _ = async { watchdog.as_mut().expect("guarded").tick().await }, if watchdog.is_some() => {
                    notify::watchdog();
                }
            }
        }
        self.shutdown(round, control).await
    }

    async fn shutdown(&mut self, round: Option<Round>, control: &mut mpsc::Receiver<Control>) -> Exit {
        notify::stopping();
        self.stop.cancel();
        if let Some(mut round) = round {
            tracing::info!(
                grace = %humantime::format_duration(self.config.poll.shutdown_grace),
                "stopping: letting in-flight fetches finish"
            );
            tokio::select! {
                result = &mut round => self.finish_round(result).await,
                () = tokio::time::sleep(self.config.poll.shutdown_grace) => {
                    round.abort();
                    tracing::warn!("stopping: abandoned fetches still running after the grace period");
                    // Feeds that finished were committed; outputs catch up with them.
                    self.render().await;
                }
                message = control.recv() => {
                    round.abort();
                    if message.is_some() {
                        tracing::warn!("second stop request: exiting at once");
                        return Exit::Immediate;
                    }
                }
            }
        }
        Exit::Graceful
    }

    /// States of the configured feeds and the hosts' delays, then the plan at `now`.
    async fn plan_next(&self) -> Plan {
        let urls: Vec<String> = self.config.feeds.iter().map(|f| f.url.to_string()).collect();
        let now = self.clock.now();
        match self
            .store
            .call(move |s| Ok((s.ensure_feeds(&urls, now)?, s.host_delays(now)?)))
            .await
        {
            Ok((states, delays)) => plan(&self.config, &states, &delays, now),
            Err(e) => {
                tracing::error!(error = %e, "cannot read feed states; retrying in a minute");
                Plan {
                    due: Vec::new(),
                    next: Some(now + chrono::Duration::minutes(1)),
                }
            }
        }
    }

    fn start_round(&self, due: &[usize]) -> Round {
        let feeds: Vec<_> = due
            .iter()
            .filter_map(|i| self.config.feeds.get(*i).cloned())
            .collect();
        tracing::debug!(feeds = feeds.len(), "round starting");
        let (config, fetcher, store, stop) = (
            self.config.clone(),
            self.fetcher.clone(),
            self.store.clone(),
            self.stop.clone(),
        );
        tokio::spawn(async move {
            poll::poll_feeds(&config, &feeds, &fetcher, &store, &stop, poll::Options::default()).await
        })
    }

    async fn finish_round(&mut self, result: Result<Result<PollReport, StoreError>, tokio::task::JoinError>) {
        let report = match result {
            Ok(Ok(report)) => report,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "poll round failed: the database is unusable");
                return;
            }
            Err(e) => {
                tracing::error!(error = %e, "poll round task failed");
                return;
            }
        };
        for feed in &report.feeds {
            match &feed.result {
                Err(reason) => tracing::warn!(feed = %feed.url, error = %reason, "fetch failed"),
                Ok(FeedStatus::Skipped(reason)) => tracing::info!(feed = %feed.url, %reason, "skipped"),
                Ok(_) => {}
            }
        }
        if let Some(server) = &self.server {
            server.metrics().record_round(&report);
        }
        let failed = report.failed().count();
        tracing::info!(
            feeds = report.feeds.len(),
            ok = report.ok_count(),
            failed,
            new = report.new_entries(),
            updated = report.updated_entries(),
            elapsed_ms = report.elapsed.as_millis() as u64,
            "round done"
        );
        self.summary = format!(
            "last round {}: {} ok, {} failed, {} new",
            self.clock.now().format("%H:%M:%S"),
            report.ok_count(),
            failed,
            report.new_entries()
        );
        if report.changed() {
            self.render().await;
        }
        if let Err(e) = self.store.release_memory().await {
            tracing::debug!(error = %e, "could not release database memory");
        }
    }

    /// Renders every output, hands the bytes to the server, and pings the WebSub hub for the
    /// feeds that changed.
    async fn render(&self) {
        let reports = output::render_all(&self.config, &self.store).await;
        for result in &reports {
            match result {
                Ok(o) if o.written => {
                    tracing::info!(output = %o.path.display(), entries = o.entries, "output written")
                }
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "output not written"),
            }
        }
        if let Some(server) = &self.server {
            server.publish(&reports);
        }
        let written: Vec<_> = reports.into_iter().flatten().collect();
        websub::announce(&self.config, &written).await;
    }

    async fn reload(&mut self) {
        notify::reloading();
        match Config::load(&self.path) {
            Ok(new) if new.store.path != self.config.store.path => tracing::error!(
                "new configuration rejected: store.path changed ({} → {}); restart to switch databases; \
                 keeping the running configuration",
                self.config.store.path.display(),
                new.store.path.display()
            ),
            Ok(new) => match Fetcher::new(&new.poll) {
                Ok(fetcher) => {
                    let old: std::collections::HashSet<&str> =
                        self.config.feeds.iter().map(|f| f.url.as_str()).collect();
                    let current: std::collections::HashSet<&str> =
                        new.feeds.iter().map(|f| f.url.as_str()).collect();
                    let added = current.difference(&old).count();
                    let removed = old.difference(&current).count();
                    let outputs_changed = self.config.outputs != new.outputs;
                    let old_listen = self.config.serve.as_ref().map(|s| s.listen);
                    if new.serve.as_ref().map(|s| s.listen) != old_listen {
                        tracing::warn!("serve.listen changed: the server keeps its address until a restart");
                    }
                    self.config = Arc::new(new);
                    self.fetcher = fetcher;
                    if let Some(server) = &self.server {
                        server.set_config(self.config.clone());
                    }
                    tracing::info!(
                        feeds = self.config.feeds.len(),
                        added,
                        removed,
                        outputs_changed,
                        "configuration reloaded"
                    );
                    // Feed selection or titles may have changed what outputs show.
                    self.render().await;
                }
                Err(e) => tracing::error!(error = %e, "new configuration rejected; keeping the running one"),
            },
            Err(e) => tracing::error!("new configuration rejected; keeping the running one:\n{e}"),
        }
        notify::ready(&self.status(None));
    }

    async fn housekeeping(&self) {
        // What outputs show now is kept, whatever its age: the same selection that renders them.
        let config = self.config.clone();
        let shown = self
            .store
            .read(move |s| {
                let mut ids = std::collections::HashSet::new();
                for spec in &config.outputs {
                    let selection = output::select::select(s, spec, &config.feeds)?;
                    ids.extend(selection.entries.iter().map(|e| e.stored.id));
                }
                Ok(ids)
            })
            .await;
        let protected = match shown {
            Ok(ids) => ids,
            Err(e) => {
                tracing::error!(error = %e, "housekeeping skipped: cannot tell what outputs show");
                return;
            }
        };
        let retention = Retention {
            keep_days: self.config.store.keep_days,
            keep_per_feed: self.config.store.keep_per_feed,
            protected,
        };
        let now = self.clock.now();
        match self.store.call(move |s| s.housekeeping(&retention, now)).await {
            Ok(r) => tracing::info!(
                entries_removed = r.entries_removed,
                tombstones_expired = r.tombstones_expired,
                "housekeeping done"
            ),
            Err(e) => tracing::error!(error = %e, "housekeeping failed"),
        }
    }

    fn status(&self, next: Option<DateTime<Utc>>) -> String {
        let mut s = format!("{} feeds; {}", self.config.feeds.len(), self.summary);
        if let Some(next) = next {
            s.push_str(&format!("; next poll {}", next.format("%H:%M:%S")));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use chrono::TimeZone;

    use super::*;

    #[test]
    fn a_restarted_daemon_polls_only_what_is_due() {
        let config = Config::parse(
            Path::new("/t/t.toml"),
            "[poll]\nschedule = \"0 * * * *\"\njitter = \"0s\"\n\
             [[feed]]\nurl = \"https://a.example/feed\"\n\
             [[feed]]\nurl = \"https://b.example/feed\"\n\
             [[feed]]\nurl = \"https://c.example/feed\"\nschedule = \"*/5 * * * *\"\n\
             [[feed]]\nurl = \"https://d.example/feed\"\n",
        )
        .unwrap();
        let now = Utc.with_ymd_and_hms(2026, 3, 2, 10, 20, 0).unwrap();
        let fetched = |h: u32, m: u32| FeedState {
            last_fetch: Some(Utc.with_ymd_and_hms(2026, 3, 2, h, m, 0).unwrap()),
            ..FeedState::default()
        };
        let states = [
            fetched(10, 1),       // hourly, polled this hour: next at 11:00
            fetched(9, 30),       // hourly, missed 10:00 while the daemon was down: due
            fetched(10, 16),      // every 5 minutes: due at 10:20
            FeedState::default(), // never polled: due
        ];
        let mut delays = HashMap::new();
        let plan_now = plan(&config, &states, &delays, now);
        assert_eq!(plan_now.due, [1, 2, 3]);
        assert_eq!(
            plan_now.next,
            Some(Utc.with_ymd_and_hms(2026, 3, 2, 11, 0, 0).unwrap())
        );

        // A host under a 429 penalty is not due, whatever its schedule says.
        delays.insert("b.example".to_string(), now + chrono::Duration::minutes(30));
        assert_eq!(plan(&config, &states, &delays, now).due, [2, 3]);
    }
}
