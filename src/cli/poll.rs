//! `tributary poll`: one round over every feed, then every output, then a report.

use std::path::Path;
use std::sync::Arc;

use super::{Status, Verbosity, report_outputs};
use crate::fetch::Fetcher;
use crate::model::Backend;
use crate::output;
use crate::poll::{FeedReport, FeedStatus, Options, poll_feeds};
use crate::store::Store;

pub(super) async fn run(config_path: &Path, force: bool, verbosity: Verbosity) -> Status {
    let config = match super::load(config_path) {
        Ok(config) => config,
        Err(status) => return status,
    };
    // On a cluster's store this poll claims as a node does, under a name of its own: a node
    // of the same name (on this host) must not take its claims for leftovers of a crash.
    let backend = match config.backend() {
        Backend::Server { url, node } => Backend::Server {
            url,
            node: format!("{node}/poll-{}", std::process::id()),
        },
        file => file,
    };
    let store = match Store::open(&backend).await {
        Ok(store) => store,
        Err(e) => {
            eprintln!("error: {e}");
            return Status::Fatal;
        }
    };
    let fetcher = match Fetcher::new(&config.poll) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: cannot set up the HTTP client: {e}");
            return Status::Fatal;
        }
    };
    // The subscription lists first (those due; every one with --force): their feeds are
    // polled with the others.
    let mut lists = match crate::lists::refresh(&config, &store, &fetcher, chrono::Utc::now(), force).await {
        Ok(refresh) => refresh,
        Err(e) => {
            eprintln!("error: {e}");
            return Status::Fatal;
        }
    };
    let config = match crate::lists::expand(config, std::mem::take(&mut lists.members)).await {
        Ok(config) => config,
        Err(e) => {
            eprintln!("error: {e}");
            return Status::Fatal;
        }
    };
    for problem in config.warnings.iter().filter(|p| p.key == "list") {
        eprintln!("warning: {}", problem.message);
    }
    if config.feeds.iter().all(|f| f.disabled) {
        // Nothing failed, so not an error; but a cron job that polls nothing says why.
        let shown = std::path::absolute(config_path).unwrap_or_else(|_| config_path.to_path_buf());
        eprintln!(
            "warning: {} has no feeds to poll{}: add one with `tributary --config {} add URL` \
             (or `import subscriptions.opml`)",
            shown.display(),
            if config.feeds.is_empty() {
                ""
            } else {
                " (every one is disabled)"
            },
            shown.display()
        );
    }
    // A progress bar on a terminal; nothing on a pipe or in a log, where lines serve better.
    let bar = (super::stderr_is_terminal() && verbosity != Verbosity::Quiet).then(|| {
        let bar = indicatif::ProgressBar::new(config.feeds.len() as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} polling [{bar:30}] {pos}/{len} feeds, {msg} {elapsed}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar
    });
    let progress = {
        let bar = bar.clone();
        let failed = std::sync::atomic::AtomicUsize::new(0);
        Arc::new(move |report: &FeedReport| {
            if report.result.is_err() {
                failed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            match &bar {
                Some(bar) => {
                    bar.inc(1);
                    bar.set_message(format!(
                        "{} failed",
                        failed.load(std::sync::atomic::Ordering::Relaxed)
                    ));
                }
                None if verbosity == Verbosity::Verbose => outln!("{}", feed_line(report)),
                None => {}
            }
        }) as crate::poll::Progress
    };
    let stop = tokio_util::sync::CancellationToken::new();
    let options = Options {
        force,
        progress: Some(progress),
    };
    let report = match poll_feeds(&config, &config.feeds, &fetcher, &store, &stop, options).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return Status::Fatal;
        }
    };
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let config = std::sync::Arc::new(config);
    let outputs = output::render_all(&config, &store).await;
    let outcomes = outputs.iter().map(output::outcome).collect();
    if let Err(e) = output::record_renders(&store, outcomes, chrono::Utc::now()).await {
        eprintln!("warning: cannot record the outputs' state: {e}");
    }
    let written: Vec<_> = outputs.iter().flatten().cloned().collect();
    crate::output::websub::announce(&config, &written).await;
    // What this poll announced, and what earlier ones left in the outbox, is sent now; what a
    // receiver does not take now waits in the outbox for the next poll (or `run`).
    let deliveries = if config.outputs.iter().any(|o| !o.webhooks.is_empty()) {
        match output::webhook::deliver_due(&config, &store, &fetcher, chrono::Utc::now).await {
            Ok(pass) => Some(pass),
            Err(e) => {
                eprintln!("warning: cannot read the webhook outbox: {e}");
                None
            }
        }
    } else {
        None
    };
    store.close().await;
    if let Some(pass) = deliveries.filter(|p| p.retried + p.given_up > 0 && verbosity != Verbosity::Quiet) {
        eprintln!(
            "webhooks: {} delivered, {} to be retried, {} given up (tributary feeds shows them)",
            pass.delivered, pass.retried, pass.given_up
        );
        for ((output, webhook), error) in &pass.failing {
            eprintln!("warning: webhook {webhook} of {output}: deliveries given up: {error}");
        }
    }

    let failed: Vec<_> = report.failed().collect();
    let skipped: Vec<_> = report.skipped().collect();
    if verbosity != Verbosity::Quiet {
        let not_modified = report.count(|s| matches!(s, FeedStatus::NotModified | FeedStatus::Unchanged));
        let polled = report.polled().count();
        let of_all = if skipped.is_empty() {
            crate::model::counted(polled, "feed", "feeds")
        } else {
            format!(
                "{polled} of {}",
                crate::model::counted(report.feeds.len(), "feed", "feeds")
            )
        };
        // Every new entry accounted for: shown, or held back, or excluded (and why).
        let (new, held) = (report.new_entries(), report.held_back_entries());
        let mut entries = format!("{new} new");
        if held > 0 {
            entries.push_str(&format!(
                ": {} shown, {held} held back as new feeds' back catalogues (poll.new_feed_entries = {})",
                new - held,
                config.poll.new_feed_entries
            ));
        }
        entries.push_str(&format!(", {} updated entries", report.updated_entries()));
        let excluded = report.excluded_entries();
        if excluded > 0 {
            entries.push_str(&format!("; {excluded} excluded by rules"));
        }
        outln!(
            "polled {of_all} in {:.2}s: {} ok ({} unchanged), {} failed{}{}; {entries}",
            report.elapsed.as_secs_f64(),
            report.ok_count(),
            not_modified,
            failed.len(),
            if skipped.is_empty() {
                String::new()
            } else {
                format!("; {} skipped", skipped.len())
            },
            match report.left_to_nodes {
                0 => String::new(),
                n => format!("; {n} left to the cluster's nodes (held by one, or polled in this slot)"),
            },
        );
    }
    // A feed skipped because it is backing off is still failing: cron is told (exit 1) and
    // shown its last error, even with --quiet.
    for feed in &skipped {
        if let Ok(FeedStatus::Skipped(reason)) = &feed.result {
            match &feed.last_error {
                Some(error) => outln!("skipped: {}: {reason}; last error: {error}", feed.url),
                None if verbosity != Verbosity::Quiet => outln!("skipped: {}: {reason}", feed.url),
                None => {}
            }
        }
    }
    for feed in &failed {
        if let Err(reason) = &feed.result {
            outln!("failed: {}: {reason}", feed.url);
        }
    }
    for feed in report.feeds.iter().filter(|f| !f.newly_repaired.is_empty()) {
        let repairs: Vec<&str> = feed.newly_repaired.iter().map(|r| r.describe()).collect();
        outln!(
            "repaired: {}: read with repairs: {}",
            feed.url,
            repairs.join("; ")
        );
    }
    for feed in report.feeds.iter().filter(|f| f.abandoned) {
        outln!(
            "abandoned: {}: failing for longer than poll.give_up_after ({}); tried once a day from now on",
            feed.url,
            crate::model::counted(feed.failures as usize, "failure", "failures")
        );
    }
    for (list, error) in &lists.failed {
        outln!("failed: list {list}: {error}; its last good members stay");
    }
    for (list, in_force, fetched) in &lists.held {
        outln!(
            "held: list {list} shrank from {in_force} to {fetched} members at once; the {in_force} stay \
             until confirmed: tributary feeds --accept-list {list}"
        );
    }
    let failing = report.feeds.iter().any(|f| f.is_failing()) || !lists.failed.is_empty();
    match report_outputs(&outputs, verbosity) {
        Status::Ok if !failing => Status::Ok,
        Status::Ok => Status::FeedsFailed,
        fatal => fatal,
    }
}

/// One feed's outcome, for --verbose.
fn feed_line(report: &FeedReport) -> String {
    match &report.result {
        Ok(FeedStatus::Stored(o)) => format!("ok: {}: {} new, {} updated", report.url, o.new, o.updated),
        Ok(FeedStatus::NotModified) => format!("ok: {}: not modified", report.url),
        Ok(FeedStatus::Unchanged) => format!("ok: {}: unchanged", report.url),
        Ok(FeedStatus::Skipped(reason)) => format!("skipped: {}: {reason}", report.url),
        Err(reason) => format!("failed: {}: {reason}", report.url),
    }
}
