//! Counters for `/metrics`, in the Prometheus text exposition format (version 0.0.4). A handful
//! of counters and gauges do not need a metrics framework: atomics, and a writer that prints
//! them with HELP and TYPE lines.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::poll::{FeedReport, FeedStatus};

#[derive(Debug, Default)]
pub struct Metrics {
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
}

impl Metrics {
    /// Counts one feed's poll.
    pub fn record_feed(&self, report: &FeedReport) {
        let counter = match &report.result {
            Ok(FeedStatus::Stored(_)) => &self.fetch_ok,
            Ok(FeedStatus::NotModified) => &self.fetch_not_modified,
            Ok(FeedStatus::Unchanged) => &self.fetch_unchanged,
            Ok(FeedStatus::Skipped(_)) => &self.fetch_skipped,
            Err(_) => &self.fetch_error,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        if let Ok(FeedStatus::Stored(o)) = &report.result {
            self.entries_new.fetch_add(o.new as u64, Ordering::Relaxed);
            self.entries_updated
                .fetch_add(o.updated as u64, Ordering::Relaxed);
        }
    }

    /// Counts one round (feeds polled back to back until none was left), of `elapsed`.
    pub fn record_round(&self, elapsed: std::time::Duration) {
        self.rounds.fetch_add(1, Ordering::Relaxed);
        self.round_micros
            .fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
    }

    pub fn set_feeds(&self, total: usize, failing: usize) {
        self.feeds.store(total as u64, Ordering::Relaxed);
        self.feeds_failing.store(failing as u64, Ordering::Relaxed);
    }

    pub fn output_written(&self) {
        self.outputs_written.fetch_add(1, Ordering::Relaxed);
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut out = String::with_capacity(2048);
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
        out
    }
}
