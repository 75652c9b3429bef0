//! `tributary poll`: one round over every feed, then every output, then a report.

use std::path::Path;

use super::Status;
use crate::config::Config;
use crate::fetch::Fetcher;
use crate::output;
use crate::poll::{FeedStatus, Options, poll_feeds};
use crate::store::StoreHandle;

pub async fn run(config_path: &Path, force: bool) -> Status {
    let config = match Config::load(config_path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: invalid configuration\n{e}");
            return Status::Fatal;
        }
    };
    let (store, store_thread) = match StoreHandle::open(&config.store.path).await {
        Ok(s) => s,
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
    let stop = tokio_util::sync::CancellationToken::new();
    let report = match poll_feeds(&config, &config.feeds, &fetcher, &store, &stop, Options { force }).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return Status::Fatal;
        }
    };
    let outputs = output::render_all(&config, &store).await;
    let written: Vec<_> = outputs.iter().flatten().cloned().collect();
    crate::serve::websub::announce(&config, &written).await;
    drop(store);
    store_thread.join().await;

    let failed: Vec<_> = report.failed().collect();
    let not_modified = report.count(|s| matches!(s, FeedStatus::NotModified | FeedStatus::Unchanged));
    let skipped = report.count(|s| matches!(s, FeedStatus::Skipped(_)));
    println!(
        "polled {} feeds in {:.2}s: {} ok ({} unchanged), {} failed{}; {} new, {} updated entries",
        report.feeds.len(),
        report.elapsed.as_secs_f64(),
        report.ok_count(),
        not_modified,
        failed.len(),
        if skipped > 0 {
            format!(", {skipped} skipped")
        } else {
            String::new()
        },
        report.new_entries(),
        report.updated_entries(),
    );
    for feed in &report.feeds {
        if let Ok(FeedStatus::Skipped(reason)) = &feed.result {
            println!("skipped: {}: {reason}", feed.url);
        }
    }
    for feed in &failed {
        if let Err(reason) = &feed.result {
            println!("failed: {}: {reason}", feed.url);
        }
    }
    let mut output_failed = false;
    for result in &outputs {
        match result {
            Ok(o) => println!(
                "output {}: {} entries{}",
                o.path.display(),
                o.entries,
                if o.written { "" } else { " (unchanged)" }
            ),
            Err(e) => {
                eprintln!("error: {e}");
                output_failed = true;
            }
        }
    }
    if output_failed {
        Status::Fatal
    } else if failed.is_empty() {
        Status::Ok
    } else {
        Status::FeedsFailed
    }
}
