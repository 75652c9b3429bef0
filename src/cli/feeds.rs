//! `tributary feeds` (alias `status`): every feed's health, as a table or as JSON.

use std::io::IsTerminal;
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Status, open_store};
use crate::model::{FailureKind, FeedError, display_url};

#[derive(Serialize)]
struct FeedRow {
    url: String,
    title: Option<String>,
    #[serde(serialize_with = "crate::model::json_time::option")]
    last_success: Option<DateTime<Utc>>,
    last_error: Option<String>,
    consecutive_failures: u32,
    #[serde(serialize_with = "crate::model::json_time::option")]
    failing_since: Option<DateTime<Utc>>,
    /// What kind of failure the last one was, while failing.
    failure_kind: Option<FailureKind>,
    /// Failing for longer than `poll.give_up_after` (still tried once a day).
    abandoned: bool,
    /// Kept in the config but not polled or shown (`disabled = true`).
    disabled: bool,
    /// What its last document needed repaired to be read (tell the publisher).
    repairs: Vec<crate::model::Repair>,
    entries: usize,
    /// When its newest entry was first seen (`null`: none stored yet).
    #[serde(serialize_with = "crate::model::json_time::option")]
    last_new_entry: Option<DateTime<Utc>>,
    /// Nothing new for longer than `poll.inactive_after` (its author may have stopped).
    inactive: bool,
    /// When `run` would poll it next; `null` for a feed that is gone.
    #[serde(serialize_with = "crate::model::json_time::option")]
    next_poll: Option<DateTime<Utc>>,
    gone: bool,
    moved_to: Option<String>,
    /// The last failures, newest first (only when one feed is asked for).
    #[serde(skip_serializing_if = "Option::is_none")]
    errors: Option<Vec<FeedError>>,
    /// In a cluster, the node polling it now.
    #[serde(skip_serializing_if = "Option::is_none")]
    held_by: Option<String>,
    /// Its icon's last look (only when one feed is asked for, and once it was looked for).
    #[serde(skip_serializing_if = "Option::is_none")]
    icon: Option<IconRow>,
    /// Its WebSub subscription, when its hub was asked to push it.
    #[serde(skip_serializing_if = "Option::is_none")]
    websub: Option<PushRow>,
    /// The subscription list it came from (when no `[[feed]]` names it).
    #[serde(skip_serializing_if = "Option::is_none")]
    list: Option<String>,
}

/// A feed's WebSub subscription, as `feeds` tells it.
#[derive(Serialize, Clone)]
struct PushRow {
    hub: String,
    /// pending, active, denied, failed or unsubscribing.
    state: crate::model::SubscriptionState,
    /// While active, when the hub's lease ends (renewed before).
    #[serde(serialize_with = "crate::model::json_time::option")]
    active_until: Option<DateTime<Utc>>,
    #[serde(serialize_with = "crate::model::json_time::option")]
    last_push: Option<DateTime<Utc>>,
    pushes: u64,
    /// Pushes dropped: a bad signature, too large.
    dropped: u64,
    /// Why the hub refused or failed the last request.
    error: Option<String>,
    /// The state in words ("active until …", "denied: …").
    #[serde(skip)]
    described: String,
}

impl From<crate::model::Subscription> for PushRow {
    fn from(sub: crate::model::Subscription) -> PushRow {
        PushRow {
            described: sub.describe(),
            active_until: sub.pushed_until(),
            hub: sub.hub,
            state: sub.state,
            last_push: sub.last_push,
            pushes: sub.pushes,
            dropped: sub.rejected,
            error: sub.error,
        }
    }
}

/// Where a feed's icon was found (or why not), as `feeds URL` tells it.
#[derive(Serialize, Clone)]
struct IconRow {
    /// Where the image was found; `null` when nothing was.
    url: Option<String>,
    /// Its file beside the outputs (`icons/FILE`), kept while later looks fail.
    file: Option<String>,
    #[serde(serialize_with = "crate::model::json_time::serialize")]
    checked: DateTime<Utc>,
    /// Why the last look found nothing.
    error: Option<String>,
}

impl From<crate::model::IconState> for IconRow {
    fn from(s: crate::model::IconState) -> IconRow {
        IconRow {
            url: s.url,
            file: s
                .image
                .map(|i| format!("{}/{}", crate::output::ICONS_DIR, i.file_name())),
            checked: s.checked,
            error: s.error,
        }
    }
}

/// What `feeds` was asked for.
#[derive(Debug, Clone, Default)]
pub(crate) struct Ask {
    pub(crate) json: bool,
    /// One feed (by URL or shown title), with its error history.
    pub(crate) feed: Option<String>,
    /// Forget that feed's failures.
    pub(crate) reset: bool,
    /// Confirm the held members of this subscription list.
    pub(crate) accept_list: Option<String>,
}

pub(super) async fn run(config_path: &Path, ask: Ask) -> Status {
    if let Some(list) = &ask.accept_list
        && let Err(status) = accept_list(config_path, list).await
    {
        return status;
    }
    let config = match super::load_with_lists(config_path).await {
        Ok(config) => config,
        Err(status) => return status,
    };
    let chosen = match &ask.feed {
        Some(wanted) => match super::find_feed(config_path, wanted).await {
            Ok(Some(url)) => config.feeds.iter().find(|f| f.url.as_str() == url).cloned(),
            Ok(None) => {
                eprintln!(
                    "error: no feed with the URL or title `{wanted}` in {}",
                    config.source.display()
                );
                return Status::Fatal;
            }
            Err(status) => return status,
        },
        None => None,
    };
    if ask.reset && chosen.is_none() {
        eprintln!("error: --reset needs a feed: tributary feeds --reset URL");
        return Status::Fatal;
    }
    let now = Utc::now();
    // Never creates a database: before the first poll there is nothing to read.
    let lease = config.node.lease;
    let (
        states,
        counts,
        (outputs, webhooks, readers, subscriptions, lists),
        (errors, icon),
        (nodes, holders),
    ) = if config.backend().exists() {
        let store = match open_store(&config).await {
            Ok(opened) => opened,
            Err(status) => return status,
        };
        let urls: std::sync::Arc<[String]> = config.feeds.iter().map(|f| f.key.clone()).collect();
        let one = chosen.as_ref().map(|f| f.key.clone());
        let reset = ask.reset;
        let result = async {
            let states = store.feeds_by_url(urls.clone()).await?;
            let one_id = one.as_ref().and_then(|k| states.get(k)).map(|st| st.id);
            if let (true, Some(id)) = (reset, one_id) {
                store.reset_feed(id).await?;
            }
            let states = if reset {
                store.feeds_by_url(urls).await?
            } else {
                states
            };
            let one = match one_id {
                Some(id) => (
                    Some(store.feed_errors(id).await?),
                    store.icon_state(id).await?.map(IconRow::from),
                ),
                None => (None, None),
            };
            let cluster = store.cluster(now, lease).await?;
            Ok::<_, crate::store::StoreError>((
                states,
                store.entry_stats().await?,
                (
                    store.outputs().await?,
                    store.webhook_states().await?,
                    store.reader_counts(now).await?,
                    store
                        .subscriptions()
                        .await?
                        .into_iter()
                        .map(|sub| (sub.feed_id, sub))
                        .collect::<std::collections::HashMap<_, _>>(),
                    store.lists().await?,
                ),
                one,
                cluster,
            ))
        }
        .await;
        store.close().await;
        match result {
            Ok(r) => r,
            Err(e) => {
                eprintln!("error: {e}");
                return Status::Fatal;
            }
        }
    } else {
        if !ask.json {
            outln!(
                "no database yet at {} (nothing polled): every feed is due",
                config.store.path.display()
            );
        }
        Default::default()
    };
    if let (true, Some(f)) = (ask.reset, &chosen) {
        outln!(
            "reset {}: its failures are forgotten and it is due at once",
            display_url(&f.url)
        );
    }
    let json = ask.json;
    let rows: Vec<FeedRow> = config
        .feeds
        .iter()
        .filter(|spec| chosen.as_ref().is_none_or(|c| c.key == spec.key))
        .map(|spec| {
            let state = states.get(&spec.key);
            // The due time the last poll recorded; a feed never polled is due at once.
            let next_poll = match state {
                Some(s) => s
                    .next_due
                    .map(|t| t.max(now))
                    .or(Some(now).filter(|_| s.gone_at.is_none())),
                None => Some(now),
            };
            let failing = state.is_some_and(|s| s.consecutive_failures > 0);
            let stats = counts.get(&spec.key).copied();
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
                disabled: spec.disabled,
                entries: stats.map_or(0, |s| s.count),
                last_new_entry: stats.and_then(|s| s.newest),
                inactive: !config.poll.inactive_after.is_zero()
                    && stats.and_then(|s| s.newest).is_some_and(|newest| {
                        now - newest
                            > chrono::Duration::from_std(config.poll.inactive_after)
                                .unwrap_or(chrono::Duration::MAX)
                    }),
                next_poll,
                gone: state.is_some_and(|s| s.gone_at.is_some()),
                moved_to: state.and_then(|s| s.moved_to.clone()),
                errors: chosen.as_ref().map(|_| errors.clone().unwrap_or_default()),
                held_by: state.and_then(|s| holders.get(&s.id).cloned()),
                icon: icon.clone(),
                websub: state
                    .and_then(|s| subscriptions.get(&s.id))
                    .cloned()
                    .map(PushRow::from),
                list: spec.list.clone(),
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
        if let Some(row) = rows.first().filter(|_| chosen.is_some()) {
            print_history(row);
        }
        print_pushed(&rows, now);
        print_lists(&config, &lists, &rows, now);
        print_nodes(&nodes, now);
        print_webhooks(&webhooks, now);
        print_readers(&readers);
    }
    // Outputs that could not be written stay stale until a render succeeds: say so, on
    // stderr when stdout is JSON for scripts.
    for o in &failing_outputs {
        // A file written whose on_change failed is not a file missing.
        let what = match o
            .last_error
            .as_deref()
            .is_some_and(|e| e.starts_with("on_change:"))
        {
            true => "written, but its on_change failing",
            false => "not written",
        };
        let line = format!(
            "output {}: {what} since {} ({}): {}",
            o.path,
            o.failing_since.map_or_else(|| "?".into(), |t| ago(now, t)),
            crate::model::counted(o.failures as usize, "try", "tries"),
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

/// Confirms a list's held members (`--accept-list URL`), and says so.
async fn accept_list(config_path: &Path, wanted: &str) -> Result<(), Status> {
    let config = super::load(config_path)?;
    let Some(list) = config.lists.iter().find(|l| {
        l.url.as_str() == wanted.trim() || display_url(&l.url) == wanted.trim() || l.key == wanted.trim()
    }) else {
        eprintln!("error: {wanted} is not a configured [[list]]");
        return Err(Status::Fatal);
    };
    let store = open_store(&config).await?;
    let accepted = crate::lists::accept(&store, &list.key).await;
    store.close().await;
    match accepted {
        Ok(Some(n)) => {
            outln!(
                "list {}: its {} are in force now (the next poll or round polls them)",
                display_url(&list.url),
                crate::model::counted(n, "member", "members")
            );
            Ok(())
        }
        Ok(None) => {
            eprintln!("error: list {} holds nothing to confirm", display_url(&list.url));
            Err(Status::Fatal)
        }
        Err(e) => {
            eprintln!("error: {e}");
            Err(Status::Fatal)
        }
    }
}

/// Each subscription list: its feeds, when it was last read, and what is wrong.
fn print_lists(
    config: &crate::config::Config,
    lists: &[crate::model::ListState],
    rows: &[FeedRow],
    now: DateTime<Utc>,
) {
    for list in &config.lists {
        let state = lists.iter().find(|l| l.key == list.key);
        let feeds = rows
            .iter()
            .filter(|r| r.list.as_deref() == Some(list.key.as_str()))
            .count();
        let read = match state.and_then(|s| s.last_success) {
            Some(t) => format!("read {}", ago(now, t)),
            None => "not read yet".to_string(),
        };
        let mut line = format!(
            "list {}: {}, {read}",
            display_url(&list.url),
            crate::model::counted(feeds, "feed", "feeds")
        );
        if let Some(by) = &list.included_by {
            line.push_str(&format!(" (included by {by})"));
        }
        if let Some(error) = state.and_then(|s| s.last_error.as_deref()) {
            line.push_str(&format!("; failing: {error} (its last good members stay)"));
        }
        if let Some(held) = state.and_then(|s| s.held.as_ref()) {
            line.push_str(&format!(
                "; shrank to {} at once, held: tributary feeds --accept-list {}",
                crate::model::counted(held.len(), "member", "members"),
                display_url(&list.url)
            ));
        }
        outln!("{line}");
    }
    for problem in config.warnings.iter().filter(|p| p.key == "list") {
        outln!("{}", problem.message);
    }
}

/// The feeds whose hubs push them, and how each subscription stands.
fn print_pushed(rows: &[FeedRow], now: DateTime<Utc>) {
    for row in rows {
        let Some(push) = &row.websub else { continue };
        let last = push.last_push.map_or_else(
            || "no push yet".to_string(),
            |t| format!("last push {}", ago(now, t)),
        );
        let dropped = match push.dropped {
            0 => String::new(),
            n => format!(", {n} dropped"),
        };
        outln!(
            "websub {}: hub {}, {}; {last} ({} taken{dropped})",
            row.url,
            push.hub,
            push.described,
            push.pushes
        );
    }
}

/// A cluster's nodes: who is alive, who holds how many feeds, who stopped.
fn print_nodes(nodes: &[crate::model::ClusterNode], now: DateTime<Utc>) {
    for node in nodes {
        if node.heartbeating {
            outln!(
                "node {}: heartbeating ({}), polling {}, pid {}, version {}",
                node.name,
                ago(now, node.last_seen),
                crate::model::counted(node.holds, "feed", "feeds"),
                node.pid,
                node.version
            );
        } else {
            outln!(
                "node {}: stopped heartbeating {} (its claims run out; the others poll its feeds)",
                node.name,
                ago(now, node.last_seen)
            );
        }
    }
}

/// Each output's readers (see `serve::reach`), by the aggregators that state them and direct.
fn print_readers(readers: &[(String, String, u64)]) {
    let mut by_output: std::collections::BTreeMap<&str, Vec<(&str, u64)>> = std::collections::BTreeMap::new();
    for (output, via, n) in readers {
        by_output.entry(output).or_default().push((via, *n));
    }
    for (output, mut vias) in by_output {
        // Most readers first; direct readers last.
        vias.sort_by_key(|(via, n)| (*via == crate::store::DIRECT_VIA, std::cmp::Reverse(*n)));
        let total: u64 = vias.iter().map(|(_, n)| n).sum();
        let parts: Vec<String> = vias
            .iter()
            .map(|(via, n)| match *via == crate::store::DIRECT_VIA {
                true => format!("{n} direct"),
                false => format!("{n} via {via}"),
            })
            .collect();
        outln!(
            "readers of {output}: {} ({})",
            crate::model::counted(usize::try_from(total).unwrap_or(usize::MAX), "reader", "readers"),
            parts.join(", ")
        );
    }
}

/// Webhooks with deliveries waiting or given up.
fn print_webhooks(webhooks: &[crate::model::WebhookState], now: DateTime<Utc>) {
    for w in webhooks {
        let waiting = match w.oldest {
            Some(t) => format!("{} waiting (oldest {})", w.pending, ago(now, t)),
            None => "none waiting".to_string(),
        };
        let given_up = match w.failed {
            0 => String::new(),
            n => format!(
                ", {} given up",
                crate::model::counted(n, "delivery", "deliveries")
            ),
        };
        let error = w
            .last_error
            .as_ref()
            .map(|e| format!("; last error: {e}"))
            .unwrap_or_default();
        outln!(
            "webhook {} of {}: {waiting}{given_up}{error}",
            w.webhook,
            w.output
        );
    }
}

/// One feed's icon, and its error history, newest first.
fn print_history(row: &FeedRow) {
    match &row.icon {
        Some(IconRow {
            url: Some(url),
            file: Some(file),
            checked,
            error,
        }) => outln!(
            "icon: {url} ({file}), looked at {}{}",
            crate::model::human_time(*checked),
            error
                .as_ref()
                .map(|e| format!("; the last look failed: {e}"))
                .unwrap_or_default()
        ),
        Some(IconRow { checked, error, .. }) => outln!(
            "icon: none found ({}), looked at {}",
            error.as_deref().unwrap_or("nothing"),
            crate::model::human_time(*checked)
        ),
        None => outln!("icon: not looked for yet"),
    }
    let errors = row.errors.as_deref().unwrap_or_default();
    if errors.is_empty() {
        outln!("no failures recorded");
        return;
    }
    outln!(
        "last {}, newest first:",
        crate::model::counted(errors.len(), "failure", "failures")
    );
    for e in errors {
        outln!(
            "  {}  {:<13} {}",
            crate::model::human_time(e.at),
            e.kind.as_str(),
            e.message
        );
    }
}

fn print_table(rows: &[FeedRow], now: DateTime<Utc>) {
    let terminal = std::io::stdout().is_terminal();
    let colour = super::colour(terminal);
    // Cut to fit on a terminal; whole in a pipe or a file, where someone wants all of it.
    let clip = |s: &str, max: usize| if terminal { clip(s, max) } else { s.to_string() };
    let header = [
        "TITLE",
        "URL",
        "LAST SUCCESS",
        "FAILS",
        "ENTRIES",
        "LAST NEW",
        "NEXT POLL",
        "LAST ERROR",
    ];
    let cells: Vec<[String; 8]> = rows
        .iter()
        .map(|r| {
            [
                clip(r.title.as_deref().unwrap_or("-"), 32),
                clip(&r.url, 56),
                r.last_success.map_or_else(|| "never".into(), |t| ago(now, t)),
                r.consecutive_failures.to_string(),
                r.entries.to_string(),
                match r.last_new_entry {
                    None => "never".into(),
                    Some(t) if r.inactive => format!("{} (inactive)", ago(now, t)),
                    Some(t) => ago(now, t),
                },
                match (r.gone, r.next_poll) {
                    _ if r.disabled => "disabled".into(),
                    _ if r.held_by.is_some() => {
                        format!("now, on {}", r.held_by.as_deref().unwrap_or_default())
                    }
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
    let inactive = rows.iter().filter(|r| r.inactive).count();
    outln!(
        "{}, {failing} failing{}",
        crate::model::counted(rows.len(), "feed", "feeds"),
        if inactive > 0 {
            format!(", {inactive} inactive (nothing new for poll.inactive_after)")
        } else {
            String::new()
        }
    );
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
