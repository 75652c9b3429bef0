//! Counters for `/metrics`, in the Prometheus text exposition format (version 0.0.4). A handful
//! of counters and gauges do not need a metrics framework: atomics, and a writer that prints
//! them with HELP and TYPE lines.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds (seconds) of the fetch-duration histogram's buckets.
const FETCH_BUCKETS: [f64; 10] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

#[derive(Debug)]
pub(crate) struct Metrics {
    /// When the process started (seconds since the epoch).
    started: u64,
    /// When the last round ended that polled a feed without a failure of the store.
    last_round: AtomicU64,
    /// Fetch durations: a count per bucket (cumulative when rendered), the sum in
    /// microseconds, and the count.
    fetch_buckets: [AtomicU64; FETCH_BUCKETS.len()],
    fetch_micros: AtomicU64,
    fetch_count: AtomicU64,
    fetch_ok: AtomicU64,
    fetch_not_modified: AtomicU64,
    fetch_unchanged: AtomicU64,
    fetch_error: AtomicU64,
    fetch_skipped: AtomicU64,
    entries_new: AtomicU64,
    entries_updated: AtomicU64,
    rounds: AtomicU64,
    /// Sum of round durations in microseconds.
    round_micros: AtomicU64,
    feeds: AtomicU64,
    feeds_failing: AtomicU64,
    outputs_written: AtomicU64,
    /// Webhook deliveries: taken by the receiver, to be retried, given up.
    deliveries: [AtomicU64; 3],
    /// WebSub pushes to callbacks: taken, dropped (a bad signature, too large), refused
    /// (no such subscription, too many at once).
    pushes: [AtomicU64; 3],
}

/// What became of a push to a WebSub callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PushResult {
    Taken = 0,
    Dropped = 1,
    Refused = 2,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics {
            started: unix_now(),
            last_round: AtomicU64::new(0),
            fetch_buckets: Default::default(),
            fetch_micros: AtomicU64::new(0),
            fetch_count: AtomicU64::new(0),
            fetch_ok: AtomicU64::new(0),
            fetch_not_modified: AtomicU64::new(0),
            fetch_unchanged: AtomicU64::new(0),
            fetch_error: AtomicU64::new(0),
            fetch_skipped: AtomicU64::new(0),
            entries_new: AtomicU64::new(0),
            entries_updated: AtomicU64::new(0),
            rounds: AtomicU64::new(0),
            round_micros: AtomicU64::new(0),
            feeds: AtomicU64::new(0),
            feeds_failing: AtomicU64::new(0),
            outputs_written: AtomicU64::new(0),
            deliveries: Default::default(),
            pushes: Default::default(),
        }
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// This process's resident memory (bytes) and CPU time (seconds), from /proc.
fn process_usage() -> (Option<u64>, Option<f64>) {
    let rss = std::fs::read_to_string("/proc/self/status").ok().and_then(|s| {
        s.lines()
            .find(|l| l.starts_with("VmRSS:"))?
            .split_whitespace()
            .nth(1)?
            .parse::<u64>()
            .ok()
            .map(|kib| kib * 1024)
    });
    // utime and stime, fields 14 and 15, in clock ticks (100 a second on Linux).
    let cpu = std::fs::read_to_string("/proc/self/stat").ok().and_then(|s| {
        let fields: Vec<&str> = s.rsplit_once(')')?.1.split_whitespace().collect();
        let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
        Some(ticks as f64 / 100.0)
    });
    (rss, cpu)
}

/// One feed's poll as the metrics count it (the spine's report, reduced to what is counted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PolledFeed {
    /// How long the fetch-to-commit took, when the feed was fetched at all.
    pub(crate) fetched: Option<std::time::Duration>,
    pub(crate) outcome: FetchOutcome,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FetchOutcome {
    Stored { new: usize, updated: usize },
    NotModified,
    Unchanged,
    Skipped,
    Failed,
}

impl Metrics {
    /// Counts one feed's poll.
    pub(crate) fn record_feed(&self, poll: &PolledFeed) {
        if let Some(elapsed) = poll.fetched {
            let secs = elapsed.as_secs_f64();
            if let Some(i) = FETCH_BUCKETS.iter().position(|b| secs <= *b) {
                self.fetch_buckets[i].fetch_add(1, Ordering::Relaxed);
            }
            self.fetch_micros
                .fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
            self.fetch_count.fetch_add(1, Ordering::Relaxed);
        }
        let counter = match poll.outcome {
            FetchOutcome::Stored { new, updated } => {
                self.entries_new.fetch_add(new as u64, Ordering::Relaxed);
                self.entries_updated.fetch_add(updated as u64, Ordering::Relaxed);
                &self.fetch_ok
            }
            FetchOutcome::NotModified => &self.fetch_not_modified,
            FetchOutcome::Unchanged => &self.fetch_unchanged,
            FetchOutcome::Skipped => &self.fetch_skipped,
            FetchOutcome::Failed => &self.fetch_error,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one round (feeds polled back to back until none was left), of `elapsed`.
    pub(crate) fn record_round(&self, elapsed: std::time::Duration) {
        self.last_round.store(unix_now(), Ordering::Relaxed);
        self.rounds.fetch_add(1, Ordering::Relaxed);
        self.round_micros
            .fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
    }

    pub(crate) fn set_feeds(&self, total: usize, failing: usize) {
        self.feeds.store(total as u64, Ordering::Relaxed);
        self.feeds_failing.store(failing as u64, Ordering::Relaxed);
    }

    pub(crate) fn output_written(&self) {
        self.outputs_written.fetch_add(1, Ordering::Relaxed);
    }

    /// A pass over the webhook outbox.
    pub(crate) fn record_push(&self, result: PushResult) {
        self.pushes[result as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn record_deliveries(&self, delivered: usize, retried: usize, given_up: usize) {
        for (counter, n) in self.deliveries.iter().zip([delivered, retried, given_up]) {
            counter.fetch_add(n as u64, Ordering::Relaxed);
        }
    }

    /// The exposition text.
    pub(crate) fn render(&self) -> String {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut out = String::with_capacity(4096);
        let _ = writeln!(out, "# HELP tributary_build_info Tributary's version.");
        let _ = writeln!(out, "# TYPE tributary_build_info gauge");
        let _ = writeln!(
            out,
            "tributary_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        let _ = writeln!(
            out,
            "# HELP tributary_last_round_timestamp_seconds When the last round of polls ended (0: none yet)."
        );
        let _ = writeln!(out, "# TYPE tributary_last_round_timestamp_seconds gauge");
        let _ = writeln!(
            out,
            "tributary_last_round_timestamp_seconds {}",
            get(&self.last_round)
        );
        let _ = writeln!(
            out,
            "# HELP tributary_fetch_duration_seconds How long each feed's poll took."
        );
        let _ = writeln!(out, "# TYPE tributary_fetch_duration_seconds histogram");
        let mut cumulative = 0;
        for (bound, count) in FETCH_BUCKETS.iter().zip(&self.fetch_buckets) {
            cumulative += get(count);
            let _ = writeln!(
                out,
                "tributary_fetch_duration_seconds_bucket{{le=\"{bound}\"}} {cumulative}"
            );
        }
        let _ = writeln!(
            out,
            "tributary_fetch_duration_seconds_bucket{{le=\"+Inf\"}} {}",
            get(&self.fetch_count)
        );
        let _ = writeln!(
            out,
            "tributary_fetch_duration_seconds_sum {}",
            get(&self.fetch_micros) as f64 / 1e6
        );
        let _ = writeln!(
            out,
            "tributary_fetch_duration_seconds_count {}",
            get(&self.fetch_count)
        );
        let (rss, cpu) = process_usage();
        let _ = writeln!(out, "# HELP process_start_time_seconds When the process started.");
        let _ = writeln!(out, "# TYPE process_start_time_seconds gauge");
        let _ = writeln!(out, "process_start_time_seconds {}", self.started);
        if let Some(rss) = rss {
            let _ = writeln!(out, "# HELP process_resident_memory_bytes Resident memory.");
            let _ = writeln!(out, "# TYPE process_resident_memory_bytes gauge");
            let _ = writeln!(out, "process_resident_memory_bytes {rss}");
        }
        if let Some(cpu) = cpu {
            let _ = writeln!(
                out,
                "# HELP process_cpu_seconds_total CPU time used, user and system."
            );
            let _ = writeln!(out, "# TYPE process_cpu_seconds_total counter");
            let _ = writeln!(out, "process_cpu_seconds_total {cpu}");
        }
        let _ = writeln!(out, "# HELP tributary_fetches_total Feed fetches, by result.");
        let _ = writeln!(out, "# TYPE tributary_fetches_total counter");
        for (result, counter) in [
            ("stored", &self.fetch_ok),
            ("not_modified", &self.fetch_not_modified),
            ("unchanged", &self.fetch_unchanged),
            ("error", &self.fetch_error),
            ("skipped", &self.fetch_skipped),
        ] {
            let _ = writeln!(
                out,
                "tributary_fetches_total{{result=\"{result}\"}} {}",
                get(counter)
            );
        }
        let _ = writeln!(
            out,
            "# HELP tributary_entries_stored_total Entries written to the store, by kind."
        );
        let _ = writeln!(out, "# TYPE tributary_entries_stored_total counter");
        let _ = writeln!(
            out,
            "tributary_entries_stored_total{{kind=\"new\"}} {}",
            get(&self.entries_new)
        );
        let _ = writeln!(
            out,
            "tributary_entries_stored_total{{kind=\"updated\"}} {}",
            get(&self.entries_updated)
        );
        let _ = writeln!(
            out,
            "# HELP tributary_poll_duration_seconds Duration of poll rounds."
        );
        let _ = writeln!(out, "# TYPE tributary_poll_duration_seconds summary");
        let _ = writeln!(
            out,
            "tributary_poll_duration_seconds_sum {}",
            get(&self.round_micros) as f64 / 1e6
        );
        let _ = writeln!(out, "tributary_poll_duration_seconds_count {}", get(&self.rounds));
        let _ = writeln!(out, "# HELP tributary_feeds Configured feeds.");
        let _ = writeln!(out, "# TYPE tributary_feeds gauge");
        let _ = writeln!(out, "tributary_feeds {}", get(&self.feeds));
        let _ = writeln!(
            out,
            "# HELP tributary_feeds_failing Feeds whose last fetch failed."
        );
        let _ = writeln!(out, "# TYPE tributary_feeds_failing gauge");
        let _ = writeln!(out, "tributary_feeds_failing {}", get(&self.feeds_failing));
        let _ = writeln!(
            out,
            "# HELP tributary_outputs_written_total Output files rewritten because they changed."
        );
        let _ = writeln!(out, "# TYPE tributary_outputs_written_total counter");
        let _ = writeln!(
            out,
            "tributary_outputs_written_total {}",
            get(&self.outputs_written)
        );
        let _ = writeln!(
            out,
            "# HELP tributary_webhook_deliveries_total Webhook requests, by result: delivered (2xx), \
             retried (to be tried again), given_up (refused for good, or retried past the window)."
        );
        let _ = writeln!(out, "# TYPE tributary_webhook_deliveries_total counter");
        for (result, counter) in ["delivered", "retried", "given_up"].iter().zip(&self.deliveries) {
            let _ = writeln!(
                out,
                "tributary_webhook_deliveries_total{{result=\"{result}\"}} {}",
                get(counter)
            );
        }
        let _ = writeln!(
            out,
            "# HELP tributary_websub_pushes_total Pushes to WebSub callbacks, by result: taken (stored \
             like a fetched body), dropped (a bad signature, too large), refused (no such subscription, \
             too many at once)."
        );
        let _ = writeln!(out, "# TYPE tributary_websub_pushes_total counter");
        for (result, counter) in ["taken", "dropped", "refused"].iter().zip(&self.pushes) {
            let _ = writeln!(
                out,
                "tributary_websub_pushes_total{{result=\"{result}\"}} {}",
                get(counter)
            );
        }
        out
    }
}
