//! The performance benchmark: `cargo bench --bench poll` (add `-- --quick` for a short run,
//! `-- --only 1k,render` for some scenario groups of farm, 1k, limit, 10k, hostile, render, scale,
//! retention, fulltext, idle, rules, webhooks, push, size, and
//! `-- --runs N` for more repetitions).
//!
//! It starts the feed farm (benches/farm.rs) on 127.0.0.1, runs the real `tributary` binary
//! against it, and prints one table row per scenario: wall time, CPU time (user + system of
//! the tributary process), peak RSS, entries stored, and the requests and 304s the farm
//! counted. Timed scenarios report the median of `--runs` runs. All traffic stays on loopback.

// The benchmark writes configs and fixtures directly; the rule against std::fs::write is for outputs.
#![allow(clippy::disallowed_methods)]

mod farm;
mod measure;
mod push;
mod fulltext;
mod rules;
mod scale;
mod webhooks;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use farm::{FarmHandle, FarmSpec};
use nix::sys::resource::{UsageWho, getrusage};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use tributary::Backend;
use tributary::Config;
use tributary::key_entries;
use tributary::{Entry, FeedMeta, Validators};
use tributary::{ParsedBatch, Store};

struct Options {
    quick: bool,
    only: Option<String>,
    runs: usize,
}

fn options() -> Options {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    Options {
        quick: args.iter().any(|a| a == "--quick"),
        only: value("--only"),
        runs: value("--runs").and_then(|v| v.parse().ok()).unwrap_or(3),
    }
}

#[derive(Default, Clone)]
struct Row {
    scenario: String,
    target: String,
    wall: Duration,
    cpu: Duration,
    peak_rss_kib: u64,
    entries: i64,
    requests: u64,
    not_modified: u64,
    note: String,
}

struct Measured {
    wall: Duration,
    cpu: Duration,
    peak_rss_kib: u64,
    stdout: String,
}

fn children_cpu() -> Duration {
    match getrusage(UsageWho::RUSAGE_CHILDREN) {
        Ok(u) => {
            let t =
                |tv: nix::sys::time::TimeVal| Duration::new(tv.tv_sec() as u64, tv.tv_usec() as u32 * 1000);
            t(u.user_time()) + t(u.system_time())
        }
        Err(_) => Duration::ZERO,
    }
}

/// Runs `tributary ARGS` to completion, sampling its peak RSS (VmHWM) every 10 ms.
async fn run_tributary(dir: &Path, args: &[&str]) -> Measured {
    let cpu_before = children_cpu();
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tributary"))
        .args(["--config", "tributary.toml"])
        .args(args)
        .current_dir(dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start tributary");
    let mut stdout = child.stdout.take().expect("stdout");
    let reader = tokio::spawn(async move {
        let mut s = String::new();
        let _ = tokio::io::AsyncReadExt::read_to_string(&mut stdout, &mut s).await;
        s
    });
    let (status, peak) = measure::wait_with_peak(&mut child).await;
    let wall = started.elapsed();
    let stdout = reader.await.unwrap_or_default();
    assert!(
        status.code().is_some_and(|c| c <= 1),
        "tributary failed: {status:?}\n{stdout}"
    );
    Measured {
        wall,
        cpu: children_cpu().saturating_sub(cpu_before),
        peak_rss_kib: peak,
        stdout,
    }
}

fn count_entries(dir: &Path) -> i64 {
    let db = rusqlite::Connection::open(dir.join("data/t.db")).expect("db");
    db.query_row("SELECT COUNT(*) FROM entries", [], |r| r.get(0))
        .expect("count")
}

/// The median run by wall time; with several runs, the note lists every run's wall time.
fn median(mut runs: Vec<Row>) -> Row {
    runs.sort_by_key(|r| r.wall);
    let mut row = runs[runs.len() / 2].clone();
    if runs.len() > 1 {
        let walls: Vec<String> = runs.iter().map(|r| format_duration(r.wall)).collect();
        row.note = format!("runs: {}", walls.join(", "));
    }
    row
}

fn format_duration(d: Duration) -> String {
    if d.is_zero() {
        "-".to_string()
    } else if d < Duration::from_secs(1) {
        format!("{:.1} ms", d.as_secs_f64() * 1000.0)
    } else {
        format!("{:.2} s", d.as_secs_f64())
    }
}

/// One poll scenario: `prepare` sets the farm and directory up, then the binary polls.
async fn poll_scenario(
    name: &str,
    target: &str,
    farm: &FarmHandle,
    dir: &Path,
    expect_new: Option<usize>,
) -> Row {
    farm.reset_counters();
    let m = run_tributary(dir, &["poll"]).await;
    if let Some(n) = expect_new {
        assert!(
            m.stdout.contains(&format!(" {n} new")),
            "{name}: expected {n} new entries:\n{}",
            m.stdout
        );
    }
    Row {
        scenario: name.to_string(),
        target: target.to_string(),
        wall: m.wall,
        cpu: m.cpu,
        peak_rss_kib: m.peak_rss_kib,
        entries: count_entries(dir),
        requests: farm.requests(),
        not_modified: farm.not_modified(),
        note: String::new(),
    }
}

fn fresh_dir(farm: &FarmHandle, base: &Path, name: &str, limit: usize, extra: &str) -> PathBuf {
    let dir = base.join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(dir.join("tributary.toml"), farm.config("data/t.db", limit, extra)).expect("config");
    dir
}

/// cold / warm / rotation over one farm size, median of `runs`.
async fn poll_suite(
    rows: &mut Vec<Row>,
    opts: &Options,
    base: &Path,
    feeds: usize,
    entries: usize,
    targets: [&str; 3],
) -> Duration {
    let label = format!("{feeds}×{entries}");
    let mut cold = Vec::new();
    let mut warm = Vec::new();
    let mut rotated = Vec::new();
    let farm = FarmHandle::start(FarmSpec::new(feeds, entries)).await;
    let runs = if feeds > 1000 { 1 } else { opts.runs };
    for run in 0..runs {
        let dir = fresh_dir(&farm, base, &format!("{label}-{run}"), 100, "");
        cold.push(
            poll_scenario(
                &format!("cold {label}"),
                targets[0],
                &farm,
                &dir,
                Some(feeds * entries),
            )
            .await,
        );
        warm.push(
            poll_scenario(
                &format!("warm {label} (all 304)"),
                targets[1],
                &farm,
                &dir,
                Some(0),
            )
            .await,
        );
        if feeds <= 1000 {
            farm.rotate(5);
            rotated.push(
                poll_scenario(
                    &format!("{label} + 5 new per feed"),
                    targets[2],
                    &farm,
                    &dir,
                    Some(feeds * 5),
                )
                .await,
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
    let cold = median(cold);
    let cold_wall = cold.wall;
    rows.push(cold);
    rows.push(median(warm));
    if !rotated.is_empty() {
        rows.push(median(rotated));
    }
    cold_wall
}

/// Renders a 100-entry Atom output from a store of `total` entries (built in-process with the
/// library, 1000 feeds), median of 5 renders.
async fn render_scenario(base: &Path, total: usize) -> Row {
    let dir = base.join("render");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let feeds = 1000;
    let per_feed = total / feeds;
    let mut toml = String::from("[store]\npath = \"data/t.db\"\n\n");
    for f in 0..feeds {
        toml.push_str(&format!("[[feed]]\nurl = \"https://farm.example/{f}/feed\"\n\n"));
    }
    toml.push_str("[[output]]\npath = \"out/all.atom\"\nlimit = 100\n");
    let config_path = dir.join("tributary.toml");
    std::fs::write(&config_path, &toml).expect("config");
    let config = Config::load(&config_path).expect("config");
    let build_started = Instant::now();
    let store = Store::open(&config.backend()).await.expect("store");
    {
        let urls: Vec<String> = config.feeds.iter().map(|f| f.url.to_string()).collect();
        let states = store.ensure_feeds(urls, Utc::now()).await.expect("feeds");
        let body = "<p>".to_string() + &"lorem ipsum dolor sit amet ".repeat(40) + "</p>";
        let batches = states.iter().enumerate().map(|(f, state)| {
            let mut sanitizer = tributary::Sanitizer::new();
            let entries: Vec<_> = key_entries(
                (0..per_feed)
                    .map(|e| Entry {
                        guid: Some(format!("urn:farm:{f}:{e}")),
                        link: Some(format!("https://farm.example/{f}/{e}")),
                        title: format!("Feed {f} entry {e}"),
                        content: Some(body.clone()),
                        published: chrono::DateTime::from_timestamp(
                            1_600_000_000 + (e * feeds + f) as i64 * 60,
                            0,
                        ),
                        ..Entry::default()
                    })
                    .map(Into::into)
                    .collect(),
            )
            .into_iter()
            .map(|k| tributary::finish(k, &[], &mut Default::default(), &mut sanitizer))
            .collect();
            let batch = ParsedBatch {
                meta: FeedMeta::default(),
                validators: Validators::default(),
                body_hash: "x".into(),
                entries,
                fresh_until: None,
                new_feed_entries: per_feed,
                unchanged_segments: Default::default(),
                scheduled: tributary::Scheduled {
                    lease: None,
                    next_due: None,
                    key: String::new(),
                },
                pushed: false,
            };
            let store = store.clone();
            let id = state.id;
            async move { store.store_parsed(id, batch, Utc::now()).await.expect("store") }
        });
        futures::stream::iter(batches)
            .buffer_unordered(8)
            .collect::<Vec<_>>()
            .await;
    }
    let built = build_started.elapsed();
    let mut times = Vec::new();
    let shared = Arc::new(config.clone());
    for _ in 0..5 {
        let _ = std::fs::remove_file(dir.join("out/all.atom"));
        let started = Instant::now();
        let reports = tributary::render_all(&shared, &store).await;
        times.push(started.elapsed());
        assert_eq!(reports[0].as_ref().expect("rendered").entries, 100);
    }
    store.close().await;
    times.sort();
    let entries = count_entries(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    Row {
        scenario: format!("render 100 of {} entries", entries),
        target: "≤ 50 ms".into(),
        wall: times[times.len() / 2],
        entries,
        note: format!("store built in {:.1}s", built.as_secs_f64()),
        ..Row::default()
    }
}

fn proc_cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the full line, 11 and 12 after "pid (comm)".
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// A daemon with `feeds` feeds, idle between rounds: CPU share and RSS over `window`.
async fn idle_scenario(base: &Path, feeds: usize, window: Duration) -> Row {
    let farm = FarmHandle::start(FarmSpec::new(feeds, 50)).await;
    let dir = fresh_dir(&farm, base, "idle", 100, "schedule = \"0 0 1 1 *\"");
    let mut child = Command::new(env!("CARGO_BIN_EXE_tributary"))
        .args(["--config", "tributary.toml", "--log-format", "json", "run"])
        .current_dir(&dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start daemon");
    let pid = child.id().expect("pid");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let line = tokio::time::timeout(Duration::from_secs(120), lines.next_line())
            .await
            .expect("daemon logs")
            .expect("read")
            .expect("daemon exited early");
        if line.contains("round done") {
            break;
        }
        assert!(Instant::now() < deadline, "first round did not finish");
    }
    // Let the post-round render finish before the window opens.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    tokio::time::sleep(Duration::from_secs(2)).await;
    let ticks_per_sec = 100.0; // USER_HZ on Linux
    let before = proc_cpu_ticks(pid).unwrap_or(0);
    let started = Instant::now();
    tokio::time::sleep(window).await;
    let after = proc_cpu_ticks(pid).unwrap_or(0);
    let elapsed = started.elapsed();
    let rss = measure::proc_status_kib(pid, "VmRSS:").unwrap_or(0);
    // Anonymous memory is the daemon's own; file-backed pages are the binary's code and the
    // database's mapped pages, which the kernel takes back under pressure.
    let anon = measure::proc_status_kib(pid, "RssAnon:").unwrap_or(0);
    let file = measure::proc_status_kib(pid, "RssFile:").unwrap_or(0);
    let cpu = Duration::from_secs_f64((after - before) as f64 / ticks_per_sec);
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = child.wait().await;
    let entries = count_entries(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    Row {
        scenario: format!("daemon idle, {feeds} feeds, {}s", window.as_secs()),
        target: "< 1% CPU, < 50 MB".into(),
        wall: elapsed,
        cpu,
        peak_rss_kib: rss,
        entries,
        note: format!(
            "{:.2}% CPU, RSS {:.1} MB ({:.1} MB anonymous, {:.1} MB file-backed)",
            100.0 * cpu.as_secs_f64() / elapsed.as_secs_f64(),
            rss as f64 / 1024.0,
            anon as f64 / 1024.0,
            file as f64 / 1024.0
        ),
        ..Row::default()
    }
}

/// 100 healthy feeds alone, then alongside 20 hostile ones (headers that never come, endless
/// bodies, gzip bombs, 50 MB bodies): the hostile ones may cost their timeout, never more,
/// and memory stays bounded by `poll.max_body`.
async fn hostile_scenario(base: &Path) -> Vec<Row> {
    let mut rows = Vec::new();
    for (label, spec) in [
        ("100 healthy feeds alone", FarmSpec::new(100, 50)),
        (
            "100 healthy + 20 hostile",
            FarmSpec {
                hostile_every: 6,
                ..FarmSpec::new(120, 50)
            },
        ),
    ] {
        let farm = FarmHandle::start(spec).await;
        let dir = fresh_dir(&farm, base, "hostile", 100, "");
        let config = std::fs::read_to_string(dir.join("tributary.toml"))
            .expect("config")
            .replace("timeout = \"30s\"", "timeout = \"5s\"");
        std::fs::write(dir.join("tributary.toml"), config).expect("config");
        let m = run_tributary(&dir, &["poll"]).await;
        rows.push(Row {
            scenario: label.into(),
            target: "bounded by timeout".into(),
            wall: m.wall,
            cpu: m.cpu,
            peak_rss_kib: m.peak_rss_kib,
            entries: count_entries(&dir),
            requests: farm.requests(),
            note: m
                .stdout
                .lines()
                .next()
                .unwrap_or_default()
                .chars()
                .skip(6)
                .take(60)
                .collect(),
            ..Row::default()
        });
        let _ = std::fs::remove_dir_all(&dir);
    }
    rows
}

/// The shipped binary's size: the one the benchmark runs (the release profile: stripped,
/// link-time optimized).
fn binary_size() -> Row {
    let bytes = std::fs::metadata(env!("CARGO_BIN_EXE_tributary")).map_or(0, |m| m.len());
    Row {
        scenario: "binary size (release, stripped)".into(),
        target: "≤ 25 MB".into(),
        wall: Duration::ZERO,
        cpu: Duration::ZERO,
        peak_rss_kib: 0,
        entries: 0,
        requests: 0,
        not_modified: 0,
        note: format!("{:.1} MB ({bytes} bytes)", bytes as f64 / 1e6),
    }
}

/// How fast the farm alone serves every body of a 1000-feed farm (the farm must not be the
/// bottleneck), with plain concurrent GETs.
async fn farm_speed(feeds: usize) -> Row {
    let farm = Arc::new(FarmHandle::start(FarmSpec::new(feeds, 50)).await);
    let (bodies, wall) = fetch_all(&farm, feeds).await;
    let bytes: usize = bodies.iter().map(String::len).sum();
    Row {
        scenario: format!("farm alone: {feeds} bodies"),
        target: "≪ poll time".into(),
        wall,
        requests: farm.requests(),
        note: format!("{:.1} MB served", bytes as f64 / 1e6),
        ..Row::default()
    }
}

use futures::StreamExt;

/// Fetches every body of `farm` with plain concurrent GETs (64 at a time, as the poll does):
/// the bodies and how long it took.
async fn fetch_all(farm: &Arc<FarmHandle>, feeds: usize) -> (Vec<String>, Duration) {
    tributary::init_tls();
    let client = reqwest::Client::new();
    let started = Instant::now();
    let fetches = futures::stream::iter(0..feeds)
        .map(|i| {
            let (client, url) = (client.clone(), farm.url(i));
            async move {
                client
                    .get(url)
                    .send()
                    .await
                    .expect("get")
                    .text()
                    .await
                    .expect("body")
            }
        })
        .buffered(64);
    let bodies: Vec<String> = fetches.collect().await;
    (bodies, started.elapsed())
}

/// The machine's limit for a cold 1,000 × 50 poll, measured in this run: fetching every body
/// with nothing else, and inserting the same rows (parsed and sanitized beforehand, untimed)
/// with nothing else; Tributary's cold poll as a ratio to their sum; and newsboat polling the
/// same farm from an empty cache, when it is installed.
async fn limit_scenario(base: &Path, cold: Option<Duration>) -> Vec<Row> {
    let (feeds, entries) = (1000, 50);
    let farm = Arc::new(FarmHandle::start(FarmSpec::new(feeds, entries)).await);
    let (bodies, fetch) = fetch_all(&farm, feeds).await;
    let dir = base.join("limit");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let urls: Vec<String> = (0..feeds).map(|i| farm.url(i)).collect();
    let mut sanitizer = tributary::Sanitizer::new();
    let parsed: Vec<(FeedMeta, Vec<tributary::KeyedEntry>)> = bodies
        .iter()
        .zip(&urls)
        .map(|(body, url)| {
            let base_url = url::Url::parse(url).expect("url");
            let feed = tributary::parse_document(body, &base_url).expect("parse");
            let keyed = key_entries(feed.entries)
                .into_iter()
                .map(|k| tributary::finish(k, &[], &mut Default::default(), &mut sanitizer))
                .collect();
            (feed.meta, keyed)
        })
        .collect();
    let scheduled = tributary::Scheduled {
        lease: None,
        next_due: None,
        key: String::new(),
    };
    let batch_of = |meta: FeedMeta, entries: Vec<tributary::KeyedEntry>| ParsedBatch {
        meta,
        validators: Validators::default(),
        body_hash: "x".into(),
        entries,
        fresh_until: None,
        new_feed_entries: 10,
        unchanged_segments: Default::default(),
        scheduled: scheduled.clone(),
        pushed: false,
    };
    // The limit: the rows stored with nothing else, one feed after another (how it has always
    // been measured, so the ratio below compares with earlier runs), each time into a new
    // store; the median of three, as the cold poll's figure is (one run moved by ±15 % on this
    // machine's disk).
    let mut inserts = Vec::new();
    let mut inserted = 0;
    for run in 0..3 {
        let store = Store::open(&Backend::File(dir.join(format!("t{run}.db"))))
            .await
            .expect("store");
        let states = store.ensure_feeds(urls.clone(), Utc::now()).await.expect("feeds");
        let started = Instant::now();
        inserted = 0;
        for (state, (meta, entries)) in states.iter().zip(parsed.clone()) {
            inserted += store
                .store_parsed(state.id, batch_of(meta, entries), Utc::now())
                .await
                .expect("store")
                .new;
        }
        inserts.push(started.elapsed());
        store.close().await;
    }
    inserts.sort();
    let insert = inserts[1];
    // The same rows as a poll hands them over, 32 feeds at once (the writer commits what
    // arrives together as one group): faster than the limit, so not the limit.
    let grouped_store = Store::open(&Backend::File(dir.join("grouped.db")))
        .await
        .expect("store");
    let grouped_states = grouped_store
        .ensure_feeds(urls.clone(), Utc::now())
        .await
        .expect("feeds");
    let started = Instant::now();
    let writes = grouped_states.iter().zip(parsed).map(|(state, (meta, entries))| {
        let (store, id, batch) = (grouped_store.clone(), state.id, batch_of(meta, entries));
        async move {
            store
                .store_parsed(id, batch, Utc::now())
                .await
                .expect("store")
                .new
        }
    });
    let _: Vec<usize> = futures::stream::iter(writes).buffer_unordered(32).collect().await;
    let grouped = started.elapsed();
    grouped_store.close().await;
    let limit = fetch + insert;
    let mut rows = vec![
        Row {
            scenario: "limit: fetch 1000 bodies".into(),
            target: "(measured)".into(),
            wall: fetch,
            requests: farm.requests(),
            note: format!(
                "{:.1} MB, no parsing",
                bodies.iter().map(String::len).sum::<usize>() as f64 / 1e6
            ),
            ..Row::default()
        },
        Row {
            scenario: "limit: insert 50,000 rows".into(),
            target: "(measured)".into(),
            wall: insert,
            entries: inserted as i64,
            note: format!(
                "store_parsed alone, one feed after another; runs: {}",
                inserts
                    .iter()
                    .map(|d| format_duration(*d))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            ..Row::default()
        },
        Row {
            scenario: "insert 50,000 rows, 32 feeds at once".into(),
            target: "(measured)".into(),
            wall: grouped,
            entries: inserted as i64,
            note: "as a poll hands them over: grouped commits".into(),
            ..Row::default()
        },
    ];
    if let Some(cold) = cold {
        rows.push(Row {
            scenario: "cold 1000×50 ÷ limit".into(),
            target: "≤ 1.2×".into(),
            wall: cold,
            note: format!(
                "{:.2}× the limit (fetch + insert = {})",
                cold.as_secs_f64() / limit.as_secs_f64(),
                format_duration(limit)
            ),
            ..Row::default()
        });
    }
    if let Some(newsboat) = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("newsboat"))
            .find(|p| p.is_file())
    }) {
        let home = dir.join("newsboat");
        std::fs::create_dir_all(&home).expect("dir");
        std::fs::write(home.join("urls"), urls.join("\n") + "\n").expect("urls");
        std::fs::write(home.join("config"), "").expect("config");
        farm.reset_counters();
        let started = Instant::now();
        let out = Command::new(newsboat)
            .args(["-x", "reload", "-u", "urls", "-C", "config", "-c", "cache.db"])
            .current_dir(&home)
            .env("HOME", &home)
            .output()
            .await
            .expect("newsboat");
        let wall = started.elapsed();
        assert!(out.status.success(), "newsboat: {out:?}");
        let stored: i64 = rusqlite::Connection::open(home.join("cache.db"))
            .and_then(|db| db.query_row("SELECT COUNT(*) FROM rss_item", [], |r| r.get(0)))
            .unwrap_or(0);
        rows.push(Row {
            scenario: "newsboat cold 1000×50".into(),
            target: "tributary ≥ 12× faster".into(),
            wall,
            entries: stored,
            requests: farm.requests(),
            note: cold.map_or_else(
                || "default newsboat settings; it reads no JSON Feed".into(),
                |c| {
                    format!(
                        "tributary {:.1}× faster; newsboat reads no JSON Feed",
                        wall.as_secs_f64() / c.as_secs_f64()
                    )
                },
            ),
            ..Row::default()
        });
    } else {
        println!("newsboat is not installed: the side-by-side row is skipped (apt-get install newsboat)");
    }
    let _ = std::fs::remove_dir_all(&dir);
    rows
}

fn print_table(rows: &[Row]) {
    println!();
    println!(
        "| {:<34} | {:>9} | {:>9} | {:>9} | {:>9} | {:>8} | {:>6} | {:<18} | note",
        "scenario", "wall", "CPU", "peak RSS", "entries", "requests", "304s", "target"
    );
    println!("|{}|", "-".repeat(140));
    for r in rows {
        let rss = if r.peak_rss_kib == 0 {
            "-".to_string()
        } else {
            format!("{:.0} MB", r.peak_rss_kib as f64 / 1024.0)
        };
        println!(
            "| {:<34} | {:>9} | {:>9} | {:>9} | {:>9} | {:>8} | {:>6} | {:<18} | {}",
            r.scenario,
            format_duration(r.wall),
            format_duration(r.cpu),
            rss,
            r.entries,
            r.requests,
            r.not_modified,
            r.target,
            r.note
        );
    }
}

fn main() {
    let opts = options();
    // `cargo bench` passes `--bench`; any other libtest flag is ignored.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let base = std::env::temp_dir().join(format!("tributary-bench-{}", std::process::id()));
    std::fs::create_dir_all(&base).expect("bench dir");
    // Scenario groups: farm, 1k (1,000 × 50, with the limit rows), limit, 10k (10,000 × 20),
    // hostile, render, scale, retention, fulltext, rules, webhooks, push, size, idle.
    let wants = |name: &str| {
        opts.only
            .as_deref()
            .is_none_or(|o| o.split(',').any(|g| g == name))
    };
    let mut rows = Vec::new();
    runtime.block_on(async {
        if wants("farm") {
            rows.push(farm_speed(1000).await);
        }
        if wants("size") {
            rows.push(binary_size());
        }
        let mut cold_1k = None;
        if wants("1k") {
            cold_1k = Some(
                poll_suite(
                    &mut rows,
                    &opts,
                    &base,
                    1000,
                    50,
                    ["≤ 1.2× limit, ≤ 150 MB", "≤ 0.2 s, 0 parsed", "≤ 1.5 s, 5000 new"],
                )
                .await,
            );
        }
        if wants("limit") || wants("1k") {
            rows.extend(limit_scenario(&base, cold_1k).await);
        }
        if wants("10k") && !opts.quick {
            poll_suite(
                &mut rows,
                &opts,
                &base,
                10_000,
                20,
                ["≤ 15 s, ≤ 300 MB", "(no target)", ""],
            )
            .await;
        }
        if wants("hostile") {
            rows.extend(hostile_scenario(&base).await);
        }
        if wants("render") {
            rows.push(render_scenario(&base, if opts.quick { 100_000 } else { 1_000_000 }).await);
        }
        if wants("scale") {
            rows.extend(scale::render_at_scale(&base, opts.quick).await);
        }
        if wants("retention") {
            rows.extend(scale::retention_at_scale(&base, opts.quick).await);
        }
        if wants("fulltext") {
            rows.push(fulltext::full_text_scenario(&base).await);
        }
        if wants("rules") {
            rows.extend(rules::word_rules(&base));
        }
        if wants("webhooks") {
            rows.extend(webhooks::webhook_scenarios(&base).await);
        }
        if wants("push") {
            rows.extend(push::push_scenarios(&base).await);
        }
        if wants("idle") {
            let window = if opts.quick {
                Duration::from_secs(10)
            } else {
                Duration::from_secs(60)
            };
            rows.push(idle_scenario(&base, 1000, window).await);
        }
    });
    let _ = std::fs::remove_dir_all(&base);
    print_table(&rows);
    println!(
        "\nmachine: {} cores, {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|c| c.lines().find(|l| l.starts_with("model name")).map(|l| l
                .split(':')
                .nth(1)
                .unwrap_or("")
                .trim()
                .to_string()))
            .unwrap_or_default()
    );
}
