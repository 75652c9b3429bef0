//! The figures `/metrics` serves, kept and written in the Prometheus text exposition format
//! (version 0.0.4) by prometheus-client: counters and gauges the daemon and the server update,
//! the process's own figures read at each scrape, and the outputs' readers as the store counts
//! them then.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric, prometheus_text};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

/// The `Content-Type` of the exposition.
pub(crate) const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// Upper bounds (seconds) of the fetch-duration histogram's buckets.
const FETCH_BUCKETS: [f64; 10] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];
/// Upper bounds (seconds) of the round-duration histogram's buckets.
const ROUND_BUCKETS: [f64; 8] = [1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 14400.0];

/// A counter's one label: what became of something.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ByResult {
    result: &'static str,
}

/// Entries stored, by kind (`new`, `updated`).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ByKind {
    kind: &'static str,
}

#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    /// When the last round ended that polled a feed without a failure of the store.
    last_round: Gauge,
    fetch_duration: Histogram,
    fetches: Family<ByResult, Counter>,
    entries: Family<ByKind, Counter>,
    round_duration: Histogram,
    feeds: Gauge,
    feeds_failing: Gauge,
    outputs_written: Counter,
    /// Webhook deliveries: taken by the receiver, to be retried, given up.
    deliveries: Family<ByResult, Counter>,
    /// WebSub pushes to callbacks: taken, dropped (a bad signature, too large), refused
    /// (no such subscription, too many at once).
    pushes: Family<ByResult, Counter>,
}

/// A label's values: an enum, every value of it (each series is made at 0 from the list) and
/// each one's text, written once.
macro_rules! label_values {
    ($(#[$doc:meta])* $name:ident { $($value:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub(crate) enum $name {
            $($value),+
        }

        impl $name {
            const ALL: &'static [$name] = &[$($name::$value),+];

            fn label(self) -> &'static str {
                match self {
                    $($name::$value => $text),+
                }
            }
        }
    };
}

label_values!(
    /// What became of a feed's poll.
    FetchResult { Stored => "stored", NotModified => "not_modified", Unchanged => "unchanged", Error => "error", Skipped => "skipped" }
);
label_values!(
    /// What an entry written to the store was.
    EntryKind { New => "new", Updated => "updated" }
);
label_values!(
    /// What became of a webhook request.
    DeliveryResult { Delivered => "delivered", Retried => "retried", GivenUp => "given_up" }
);
label_values!(
    /// What became of a push to a WebSub callback.
    PushResult { Taken => "taken", Dropped => "dropped", Refused => "refused" }
);

impl Default for Metrics {
    fn default() -> Metrics {
        let mut registry = Registry::default();
        registry.register(
            "tributary_build",
            "Tributary's version",
            Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
        );
        let last_round = Gauge::default();
        registry.register(
            "tributary_last_round_timestamp_seconds",
            "When the last round of polls ended (0: none yet)",
            last_round.clone(),
        );
        let fetch_duration = Histogram::new(FETCH_BUCKETS);
        registry.register(
            "tributary_fetch_duration_seconds",
            "How long each feed's poll took",
            fetch_duration.clone(),
        );
        registry.register_collector(Box::new(Process { started: unix_now() }));
        let fetches = Family::default();
        registry.register("tributary_fetches", "Feed fetches, by result", fetches.clone());
        let entries = Family::default();
        registry.register(
            "tributary_entries_stored",
            "Entries written to the store, by kind",
            entries.clone(),
        );
        let round_duration = Histogram::new(ROUND_BUCKETS);
        registry.register(
            "tributary_poll_duration_seconds",
            "Duration of poll rounds",
            round_duration.clone(),
        );
        let feeds = Gauge::default();
        registry.register("tributary_feeds", "Configured feeds", feeds.clone());
        let feeds_failing = Gauge::default();
        registry.register(
            "tributary_feeds_failing",
            "Feeds whose last fetch failed",
            feeds_failing.clone(),
        );
        let outputs_written = Counter::default();
        registry.register(
            "tributary_outputs_written",
            "Output files rewritten because they changed",
            outputs_written.clone(),
        );
        let deliveries = Family::default();
        registry.register(
            "tributary_webhook_deliveries",
            "Webhook requests, by result: delivered (2xx), retried (to be tried again), given_up \
             (refused for good, or retried past the window)",
            deliveries.clone(),
        );
        let pushes = Family::default();
        registry.register(
            "tributary_websub_pushes",
            "Pushes to WebSub callbacks, by result: taken (stored like a fetched body), dropped (a \
             bad signature, too large), refused (no such subscription, too many at once)",
            pushes.clone(),
        );
        // Every labelled series exists from the start, at 0, as a scraper expects.
        for result in FetchResult::ALL {
            let _ = fetches.get_or_create(&ByResult {
                result: result.label(),
            });
        }
        for kind in EntryKind::ALL {
            let _ = entries.get_or_create(&ByKind { kind: kind.label() });
        }
        for result in DeliveryResult::ALL {
            let _ = deliveries.get_or_create(&ByResult {
                result: result.label(),
            });
        }
        for result in PushResult::ALL {
            let _ = pushes.get_or_create(&ByResult {
                result: result.label(),
            });
        }
        Metrics {
            registry,
            last_round,
            fetch_duration,
            fetches,
            entries,
            round_duration,
            feeds,
            feeds_failing,
            outputs_written,
            deliveries,
            pushes,
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
            self.fetch_duration.observe(elapsed.as_secs_f64());
        }
        let result = match poll.outcome {
            FetchOutcome::Stored { new, updated } => {
                for (kind, n) in [(EntryKind::New, new), (EntryKind::Updated, updated)] {
                    self.entries
                        .get_or_create(&ByKind { kind: kind.label() })
                        .inc_by(n as u64);
                }
                FetchResult::Stored
            }
            FetchOutcome::NotModified => FetchResult::NotModified,
            FetchOutcome::Unchanged => FetchResult::Unchanged,
            FetchOutcome::Skipped => FetchResult::Skipped,
            FetchOutcome::Failed => FetchResult::Error,
        };
        self.fetches
            .get_or_create(&ByResult {
                result: result.label(),
            })
            .inc();
    }

    /// Counts one round (feeds polled back to back until none was left), of `elapsed`.
    pub(crate) fn record_round(&self, elapsed: std::time::Duration) {
        self.last_round.set(unix_now() as i64);
        self.round_duration.observe(elapsed.as_secs_f64());
    }

    pub(crate) fn set_feeds(&self, total: usize, failing: usize) {
        self.feeds.set(total as i64);
        self.feeds_failing.set(failing as i64);
    }

    pub(crate) fn output_written(&self) {
        self.outputs_written.inc();
    }

    /// A push to a WebSub callback.
    pub(crate) fn record_push(&self, result: PushResult) {
        self.pushes
            .get_or_create(&ByResult {
                result: result.label(),
            })
            .inc();
    }

    /// A pass over the webhook outbox.
    pub(crate) fn record_deliveries(&self, delivered: usize, retried: usize, given_up: usize) {
        for (result, n) in [
            (DeliveryResult::Delivered, delivered),
            (DeliveryResult::Retried, retried),
            (DeliveryResult::GivenUp, given_up),
        ] {
            self.deliveries
                .get_or_create(&ByResult {
                    result: result.label(),
                })
                .inc_by(n as u64);
        }
    }

    /// The exposition text, with the outputs' readers as the store counts them now
    /// (`(output, via, readers)`, in the order given).
    pub(crate) fn render(&self, readers: Vec<(String, String, u64)>) -> String {
        let mut scrape = Registry::default();
        scrape.register_collector(Box::new(Readers(readers)));
        let mut out = String::with_capacity(4096);
        // Writing to a String does not fail.
        let _ = prometheus_text::encode(&mut out, &self.registry);
        let _ = prometheus_text::encode(&mut out, &scrape);
        out
    }
}

/// This process's figures, read from /proc at each scrape.
#[derive(Debug)]
struct Process {
    /// When the process started (seconds since the epoch).
    started: u64,
}

impl Collector for Process {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let started = ConstGauge::new(self.started as i64);
        started.encode(encoder.encode_descriptor(
            "process_start_time_seconds",
            "When the process started.",
            None,
            started.metric_type(),
        )?)?;
        let (rss, cpu) = process_usage();
        if let Some(rss) = rss {
            let rss = ConstGauge::new(rss as i64);
            rss.encode(encoder.encode_descriptor(
                "process_resident_memory_bytes",
                "Resident memory.",
                None,
                rss.metric_type(),
            )?)?;
        }
        if let Some(cpu) = cpu {
            let cpu = ConstCounter::new(cpu);
            cpu.encode(encoder.encode_descriptor(
                "process_cpu_seconds",
                "CPU time used, user and system.",
                None,
                cpu.metric_type(),
            )?)?;
        }
        Ok(())
    }
}

/// An output's readers by where they read from.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReaderLabels {
    output: String,
    via: String,
}

/// The outputs' readers of one scrape: `tributary_output_readers{output,via}`.
#[derive(Debug)]
struct Readers(Vec<(String, String, u64)>);

impl Collector for Readers {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut family = encoder.encode_descriptor(
            "tributary_output_readers",
            "Readers of each output: subscribers aggregators state (via their name), and \
             distinct direct readers of the last 7 days (via=\"direct\").",
            None,
            prometheus_client::metrics::MetricType::Gauge,
        )?;
        for (output, via, n) in &self.0 {
            let labels = ReaderLabels {
                output: output.clone(),
                via: via.clone(),
            };
            ConstGauge::new(*n as i64).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_keeps_its_names_and_escapes_labels() {
        let metrics = Metrics::default();
        metrics.record_feed(&PolledFeed {
            fetched: Some(std::time::Duration::from_millis(70)),
            outcome: FetchOutcome::Stored { new: 3, updated: 1 },
        });
        metrics.record_round(std::time::Duration::from_secs(2));
        metrics.record_push(PushResult::Dropped);
        metrics.record_deliveries(2, 1, 0);
        metrics.set_feeds(5, 1);
        let text = metrics.render(vec![("a \"b\".atom".into(), "direct".into(), 4)]);
        for line in [
            "tributary_build_info{version=\"",
            "tributary_fetches_total{result=\"stored\"} 1\n",
            "tributary_fetches_total{result=\"error\"} 0\n",
            "tributary_fetches_total{result=\"not_modified\"} 0\n",
            "tributary_fetches_total{result=\"unchanged\"} 0\n",
            "tributary_fetches_total{result=\"skipped\"} 0\n",
            "tributary_entries_stored_total{kind=\"new\"} 3\n",
            "tributary_entries_stored_total{kind=\"updated\"} 1\n",
            "tributary_fetch_duration_seconds_bucket{le=\"0.05\"} 0\n",
            "tributary_fetch_duration_seconds_bucket{le=\"0.1\"} 1\n",
            "tributary_fetch_duration_seconds_bucket{le=\"+Inf\"} 1\n",
            "tributary_fetch_duration_seconds_count 1\n",
            "tributary_poll_duration_seconds_count 1\n",
            "tributary_feeds 5\n",
            "tributary_feeds_failing 1\n",
            "tributary_outputs_written_total 0\n",
            "tributary_webhook_deliveries_total{result=\"delivered\"} 2\n",
            "tributary_webhook_deliveries_total{result=\"retried\"} 1\n",
            "tributary_webhook_deliveries_total{result=\"given_up\"} 0\n",
            "tributary_websub_pushes_total{result=\"dropped\"} 1\n",
            "tributary_websub_pushes_total{result=\"taken\"} 0\n",
            "tributary_websub_pushes_total{result=\"refused\"} 0\n",
            "# TYPE tributary_output_readers gauge\n",
            "tributary_output_readers{output=\"a \\\"b\\\".atom\",via=\"direct\"} 4\n",
            "process_start_time_seconds ",
            "process_cpu_seconds_total ",
            "process_resident_memory_bytes ",
        ] {
            assert!(text.contains(line), "{line} in:\n{text}");
        }
        assert!(
            !text.contains("tributary_last_round_timestamp_seconds 0\n"),
            "{text}"
        );
    }
}
