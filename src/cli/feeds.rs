//! `tributary feeds` (alias `status`): every feed's health, as a table or as JSON.

use std::io::IsTerminal;
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Status, load_with_store};
use crate::model::{FailureKind, display_url};

#[derive(Serialize)]
struct FeedRow {
    url: String,
    title: Option<String>,
    last_success: Option<DateTime<Utc>>,
    last_error: Option<String>,
    consecutive_failures: u32,
    failing_since: Option<DateTime<Utc>>,
    /// What kind of failure the last one was, while failing.
    failure_kind: Option<FailureKind>,
    /// Failing for longer than `poll.give_up_after` (still tried once a day).
    abandoned: bool,
    /// What its last document needed repaired to be read (tell the publisher).
    repairs: Vec<crate::model::Repair>,
    entries: usize,
    /// When `run` would poll it next; `null` for a feed that is gone.
    next_poll: Option<DateTime<Utc>>,
    gone: bool,
    moved_to: Option<String>,
}

pub async fn run(config_path: &Path, json: bool) -> Status {
    let (config, store, thread) = match load_with_store(config_path).await {
        Ok(opened) => opened,
        Err(status) => return status,
    };
    let urls: Vec<String> = config.feeds.iter().map(|f| f.url.to_string()).collect();
    let now = Utc::now();
    let result = store
        .read(move |s| Ok((s.feeds_by_url(&urls)?, s.entry_counts()?, s.outputs()?)))
        .await;
    drop(store);
    thread.join().await;
    let (states, counts, outputs) = match result {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return Status::Fatal;
        }
    };
    let rows: Vec<FeedRow> = config
        .feeds
        .iter()
        .map(|spec| {
            let state = states.get(spec.url.as_str());
            // The due time the last poll recorded; a feed never polled is due at once.
            let next_poll = match state {
                Some(s) => s
                    .next_due
                    .map(|t| t.max(now))
                    .or(Some(now).filter(|_| s.gone_at.is_none())),
                None => Some(now),
            };
            let failing = state.is_some_and(|s| s.consecutive_failures > 0);
            FeedRow {
                url: display_url(&spec.url),
                title: spec.title.clone().or_else(|| state.and_then(|s| s.title.clone())),
                last_success: state.and_then(|s| s.last_success),
                last_error: state
                    .and_then(|s| s.last_error.clone())
                    .filter(|_| state.is_some_and(|s| s.consecutive_failures > 0)),
                consecutive_failures: state.map_or(0, |s| s.consecutive_failures),
                failing_since: state.and_then(|s| s.failing_since),
                failure_kind: state.and_then(|s| s.failure_kind).filter(|_| failing),
                abandoned: state.is_some_and(|s| s.abandoned_at.is_some()) && failing,
                repairs: state.map(|s| s.repairs.clone()).unwrap_or_default(),
                entries: counts.get(spec.url.as_str()).copied().unwrap_or(0),
                next_poll,
                gone: state.is_some_and(|s| s.gone_at.is_some()),
                moved_to: state.and_then(|s| s.moved_to.clone()),
            }
        })
        .collect();
    let configured: std::collections::HashSet<String> = config
        .outputs
        .iter()
        .map(|o| o.path.display().to_string())
        .collect();
    let failing_outputs: Vec<_> = outputs
        .into_iter()
        .filter(|o| o.last_error.is_some() && configured.contains(&o.path))
        .collect();
    if json {
        match serde_json::to_string_pretty(&rows) {
            Ok(text) => outln!("{text}"),
            Err(e) => {
                eprintln!("error: {e}");
                return Status::Fatal;
            }
        }
    } else {
        print_table(&rows, now);
    }
    // Outputs that could not be written stay stale until a render succeeds: say so, on
    // stderr when stdout is JSON for scripts.
    for o in &failing_outputs {
        let line = format!(
            "output {}: not written since {} ({} tries): {}",
            o.path,
            o.failing_since.map_or_else(|| "?".into(), |t| ago(now, t)),
            o.failures,
            o.last_error.as_deref().unwrap_or("")
        );
        if json {
            eprintln!("{line}");
        } else {
            outln!("{line}");
        }
    }
    let feeds_failing = rows.iter().any(|r| r.consecutive_failures > 0 || r.gone);
    if feeds_failing || !failing_outputs.is_empty() {
        Status::FeedsFailed
    } else {
        Status::Ok
    }
}

fn print_table(rows: &[FeedRow], now: DateTime<Utc>) {
    let colour = super::colour(std::io::stdout().is_terminal());
    let header = [
        "TITLE",
        "URL",
        "LAST SUCCESS",
        "FAILS",
        "ENTRIES",
        "NEXT POLL",
        "LAST ERROR",
    ];
    let cells: Vec<[String; 7]> = rows
        .iter()
        .map(|r| {
            [
                clip(r.title.as_deref().unwrap_or("-"), 32),
                clip(&r.url, 56),
                r.last_success.map_or_else(|| "never".into(), |t| ago(now, t)),
                r.consecutive_failures.to_string(),
                r.entries.to_string(),
                match (r.gone, r.next_poll) {
                    (true, _) | (_, None) => "gone (410)".into(),
                    (false, Some(t)) if t <= now => "now".into(),
                    (false, Some(t)) if r.abandoned => format!("in {} (abandoned)", span(t - now)),
                    (false, Some(t)) => format!("in {}", span(t - now)),
                },
                match (&r.last_error, r.repairs.is_empty()) {
                    (Some(e), _) => clip(e, 48),
                    (None, false) => {
                        let names: Vec<&str> = r.repairs.iter().map(|x| x.as_str()).collect();
                        format!("(read with repairs: {})", names.join(", "))
                    }
                    (None, true) => String::new(),
                },
            ]
        })
        .collect();
    // Display width, not characters: CJK titles take two columns each.
    let width = |s: &str| console::measure_text_width(s);
    let widths: Vec<usize> = (0..header.len())
        .map(|c| {
            cells
                .iter()
                .map(|row| width(&row[c]))
                .chain([header[c].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: &[String]| -> String {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c}{}", " ".repeat(w.saturating_sub(width(c)))))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let head: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    outln!("{}", line(&head));
    for (row, cells) in rows.iter().zip(&cells) {
        let text = line(cells);
        if colour && (row.consecutive_failures > 0 || row.gone) {
            outln!("\x1b[31m{text}\x1b[0m");
        } else {
            outln!("{text}");
        }
    }
    let failing = rows.iter().filter(|r| r.consecutive_failures > 0).count();
    outln!("{} feeds, {} failing", rows.len(), failing);
}

fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let cut: String = s.chars().take(max - 1).collect();
        format!("{cut}…")
    }
}

fn ago(now: DateTime<Utc>, t: DateTime<Utc>) -> String {
    format!("{} ago", span(now - t))
}

fn span(d: chrono::Duration) -> String {
    let secs = d.num_seconds().max(0);
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m", secs / 60),
        3600..86_400 => format!("{}h", secs / 3600),
        _ => format!("{}d", secs / 86_400),
    }
}
