//! The daemon in real time: `cargo bench --bench soak` (about 11 minutes; `-- --minutes 3`
//! for a shorter soak, `-- --only soak`, `-- --only planning` or `-- --only nodes` for one part).
//!
//! **soak**: the real `tributary run` binary against a farm of 1,000 feeds on 60 loopback
//! hosts (127.0.1.x for the healthy ones, 127.0.2.x for the 10% that fail), a 10-second
//! 6-field schedule with every other key at its default (the 5-minute jitter, capped at half
//! the period: feeds spread over 5 s), failing feeds rotating every minute through 500, 404,
//! 429, garbage, a reset connection, a stall past the timeout and a good answer, and a SIGHUP
//! every 30 s that swaps 50 feeds in and 50 out. It prints, for the feeds that never failed
//! and never left the config: polls per slot (every slot exactly once: no stall, no double),
//! lateness against the due time the schedule gives (p50 / p99 / max), fetches of removed
//! feeds after their removal, how soon added feeds were polled, the daemon's CPU and its RSS at
//! minute 2 and at the end.
//!
//! **planning**: a store filled directly with 100,000 feeds (the real schema): the time of one
//! wake-up's claim (the due-time index range scan, 100 feeds due), and the idle daemon's RSS
//! with all 100,000 configured.
//!
//! **abuse**: the daemon's HTTP server with its defaults (1,024 connections at most, 10 s to
//! send headers) under 10,000 idle connections and 500 slowloris clients (a header byte every
//! 5 s): `/healthz` latency from fresh connections meanwhile, how many of the attackers'
//! connections the server closed, and the daemon's RSS.
//!
//! **nodes**: a cluster of 1, 2 and 3 nodes against a farm that answers in 200 ms, and the
//! cold 1,000 × 50 poll on SQLite and PostgreSQL (see [`nodes`]; `-- --only nodes`, each
//! node count for `--seconds` (100)).
//!
//! All traffic stays on loopback; every request loop is bounded by the soak's length.

// The benchmark writes configs directly; the rule against std::fs::write is for outputs. A
// failed unwrap in the benchmark is a failed benchmark.
#![allow(clippy::disallowed_methods, clippy::unwrap_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, Response, StatusCode, header};
use chrono::{DateTime, Utc};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tributary::Config;
use tributary::History;
use tributary::Store;

mod farm;
// Shared with the poll benchmark, which uses all of it; the soak, some.
#[allow(dead_code)]
mod measure;

const FEEDS: usize = 1000;
/// Every tenth feed fails, in rotating ways.
const FAILING_EVERY: usize = 10;
/// Feeds swapped in and out by each reload (two sets, alternating).
const SWAP: usize = 50;
const HEALTHY_HOSTS: usize = 50;
const FAILING_HOSTS: usize = 10;
const SCHEDULE: &str = "*/10 * * * * *";
const SLOT: i64 = 10_000;
const RELOAD_EVERY: Duration = Duration::from_secs(30);

struct Options {
    minutes: u64,
    /// How long each node count of the `nodes` group runs.
    seconds: u64,
    only: Option<String>,
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
        minutes: value("--minutes").and_then(|v| v.parse().ok()).unwrap_or(10),
        seconds: value("--seconds").and_then(|v| v.parse().ok()).unwrap_or(100),
        only: value("--only"),
    }
}

/// What the farm saw: each request's feed and arrival time.
#[derive(Default)]
struct Log {
    requests: Vec<(usize, DateTime<Utc>)>,
}

struct Farm {
    log: Mutex<Log>,
    started: Instant,
}

/// How a failing feed answers in its current minute.
#[derive(Debug, Clone, Copy)]
enum Fault {
    ServerError,
    NotFound,
    TooMany,
    Garbage,
    Reset,
    Stall,
    Fine,
}

const FAULTS: [Fault; 7] = [
    Fault::ServerError,
    Fault::NotFound,
    Fault::TooMany,
    Fault::Garbage,
    Fault::Reset,
    Fault::Stall,
    Fault::Fine,
];

fn is_failing(feed: usize) -> bool {
    feed.is_multiple_of(FAILING_EVERY)
}

fn host_of(feed: usize) -> String {
    if is_failing(feed) {
        format!("127.0.2.{}", 1 + (feed / FAILING_EVERY) % FAILING_HOSTS)
    } else {
        format!("127.0.1.{}", 1 + feed % HEALTHY_HOSTS)
    }
}

fn rss(feed: usize, version: u64) -> String {
    let mut s = format!(
        "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>Feed {feed}</title>\
         <link>http://example.org/{feed}/</link><description>soak</description>"
    );
    for i in 0..5u64 {
        let n = version.saturating_sub(i);
        s.push_str(&format!(
            "<item><guid>f{feed}-{n}</guid><title>Entry {n} of feed {feed}</title>\
             <description>Body {n}</description></item>"
        ));
    }
    s.push_str("</channel></rss>");
    s
}

async fn serve(
    State(farm): State<Arc<Farm>>,
    UrlPath(name): UrlPath<String>,
    headers: HeaderMap,
) -> Response<Body> {
    let Some(feed) = name.strip_suffix(".xml").and_then(|n| n.parse::<usize>().ok()) else {
        return status(StatusCode::NOT_FOUND);
    };
    farm.log.lock().unwrap().requests.push((feed, Utc::now()));
    let minute = farm.started.elapsed().as_secs() / 60;
    if is_failing(feed) {
        match FAULTS[(minute as usize + feed / FAILING_EVERY) % FAULTS.len()] {
            Fault::ServerError => return status(StatusCode::INTERNAL_SERVER_ERROR),
            Fault::NotFound => return status(StatusCode::NOT_FOUND),
            Fault::TooMany => {
                let mut r = status(StatusCode::TOO_MANY_REQUESTS);
                r.headers_mut().insert(header::RETRY_AFTER, "20".parse().unwrap());
                return r;
            }
            Fault::Garbage => return Response::new(Body::from("<html><body>not a feed")),
            Fault::Reset => {
                let broken =
                    futures::stream::iter([Err::<axum::body::Bytes, _>(std::io::Error::other("reset"))]);
                return Response::new(Body::from_stream(broken));
            }
            Fault::Stall => {
                // Longer than the default 30 s timeout; the connection then closes.
                tokio::time::sleep(Duration::from_secs(40)).await;
                return status(StatusCode::GATEWAY_TIMEOUT);
            }
            Fault::Fine => {}
        }
    }
    // A new entry every two minutes, per feed at its own moment.
    let version = (farm.started.elapsed().as_secs() + feed as u64 * 7) / 120;
    let etag = format!("\"{feed}-{version}\"");
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == etag)
    {
        let mut r = status(StatusCode::NOT_MODIFIED);
        r.headers_mut().insert(header::ETAG, etag.parse().unwrap());
        return r;
    }
    let mut r = Response::new(Body::from(rss(feed, version + 10)));
    r.headers_mut()
        .insert(header::CONTENT_TYPE, "application/rss+xml".parse().unwrap());
    r.headers_mut().insert(header::ETAG, etag.parse().unwrap());
    r
}

fn status(code: StatusCode) -> Response<Body> {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = code;
    r
}

/// Starts one listener per host; returns each host's address.
async fn start_farm(farm: Arc<Farm>) -> HashMap<String, SocketAddr> {
    let mut hosts: Vec<String> = (0..FEEDS + 2 * SWAP).map(host_of).collect();
    hosts.sort();
    hosts.dedup();
    let mut addrs = HashMap::new();
    for host in hosts {
        let listener = tokio::net::TcpListener::bind((host.as_str(), 0))
            .await
            .expect("bind loopback");
        addrs.insert(host, listener.local_addr().expect("addr"));
        let app = axum::Router::new()
            .route("/{name}", axum::routing::get(serve))
            .with_state(farm.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
    }
    addrs
}

fn feed_url(addrs: &HashMap<String, SocketAddr>, feed: usize) -> String {
    format!("http://{}/{feed}.xml", addrs[&host_of(feed)])
}

/// The config of reload `n`: the 1,000 feeds and one of the two swap sets.
fn write_config(dir: &Path, addrs: &HashMap<String, SocketAddr>, n: usize) -> Vec<usize> {
    let swap = if n.is_multiple_of(2) {
        FEEDS..FEEDS + SWAP
    } else {
        FEEDS + SWAP..FEEDS + 2 * SWAP
    };
    let feeds: Vec<usize> = (0..FEEDS).chain(swap).collect();
    let mut toml = format!("[store]\npath = \"soak.db\"\n\n[poll]\nschedule = \"{SCHEDULE}\"\n\n");
    for f in &feeds {
        toml.push_str(&format!("[[feed]]\nurl = \"{}\"\n\n", feed_url(addrs, *f)));
    }
    toml.push_str("[[output]]\npath = \"public/all.atom\"\n\n[[output]]\npath = \"public/index.html\"\nformat = \"html\"\n");
    std::fs::write(dir.join("tributary.toml"), toml).expect("write config");
    feeds
}

/// utime + stime of every process named `name` (all of PostgreSQL's), in clock ticks.
fn cpu_ticks_of(name: &str) -> u64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == name))
        .filter_map(cpu_ticks)
        .sum()
}

/// utime + stime of `pid`, in clock ticks (100 per second on Linux).
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// `tributary run` with the config in `dir`, its stdout dropped; killed when dropped.
fn start_daemon(dir: &Path, stderr: std::process::Stdio) -> tokio::process::Child {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_tributary"))
        .args(["--config", "tributary.toml", "run"])
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
        .expect("start tributary")
}

fn percentile(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

async fn soak(base: &Path, minutes: u64) {
    let dir = base.join("soak");
    std::fs::create_dir_all(&dir).expect("dir");
    let farm = Arc::new(Farm {
        log: Mutex::new(Log::default()),
        started: Instant::now(),
    });
    let addrs = start_farm(farm.clone()).await;
    let mut reloads = 0;
    let mut configured = write_config(&dir, &addrs, reloads);
    let mut child = start_daemon(&dir, std::process::Stdio::null());
    let pid = child.id().expect("pid");
    let started = Instant::now();
    let ticks_at_start = cpu_ticks(pid).unwrap_or(0);
    let total = Duration::from_secs(minutes * 60);
    let mut rss_minute_2 = None;
    // Per swap feed: when it was added and removed (wall), for the reload checks.
    let mut added_at: HashMap<usize, Vec<DateTime<Utc>>> = HashMap::new();
    let mut removed_at: HashMap<usize, Vec<DateTime<Utc>>> = HashMap::new();
    let mut next_reload = started + RELOAD_EVERY;
    while started.elapsed() < total {
        tokio::time::sleep(Duration::from_secs(1)).await;
        if rss_minute_2.is_none() && started.elapsed() >= Duration::from_secs(120) {
            rss_minute_2 = measure::proc_status_kib(pid, "VmRSS:");
        }
        if Instant::now() >= next_reload && started.elapsed() + Duration::from_secs(10) < total {
            next_reload += RELOAD_EVERY;
            reloads += 1;
            let before = configured.clone();
            configured = write_config(&dir, &addrs, reloads);
            let now = Utc::now();
            for f in before.iter().filter(|f| !configured.contains(f)) {
                removed_at.entry(*f).or_default().push(now);
            }
            for f in configured.iter().filter(|f| !before.contains(f)) {
                added_at.entry(*f).or_default().push(now);
            }
            kill(Pid::from_raw(pid as i32), Signal::SIGHUP).expect("SIGHUP");
        }
    }
    let ended = Utc::now();
    let rss_end = measure::proc_status_kib(pid, "VmRSS:");
    let cpu = cpu_ticks(pid).unwrap_or(0).saturating_sub(ticks_at_start) as f64 / 100.0;
    let wall = started.elapsed().as_secs_f64();
    kill(Pid::from_raw(pid as i32), Signal::SIGTERM).expect("SIGTERM");
    let _ = tokio::time::timeout(Duration::from_secs(30), child.wait()).await;

    let config = Config::load(&dir.join("tributary.toml")).expect("config");
    let log = farm.log.lock().unwrap();
    let mut by_feed: HashMap<usize, Vec<DateTime<Utc>>> = HashMap::new();
    for (feed, t) in &log.requests {
        by_feed.entry(*feed).or_default().push(*t);
    }
    // Healthy, always configured feeds: exactly one poll per slot, on time.
    let (mut slots, mut stalls, mut doubles) = (0u64, 0u64, 0u64);
    let mut lateness: Vec<i64> = Vec::new();
    for feed in (0..FEEDS).filter(|f| !is_failing(*f)) {
        let url = feed_url(&addrs, feed);
        let spec = config
            .feeds
            .iter()
            .find(|f| f.url.as_str() == url)
            .expect("configured");
        let policy = tributary::Policy::of(&config, spec);
        let polls = by_feed.get(&feed).cloned().unwrap_or_default();
        let Some(first) = polls.first().copied() else {
            stalls += 1;
            continue;
        };
        // Walk the feed's due times from its first poll, the way the schedule computes them.
        let due_after = |t: DateTime<Utc>| {
            let history = History {
                last_fetch: Some(t),
                ..History::default()
            };
            tributary::due(&policy, &url, &history, None)
                .at
                .expect("scheduled")
        };
        let mut due = due_after(first);
        // The last slot counted must have ended before the soak did.
        while due + chrono::Duration::milliseconds(SLOT) < ended {
            let end = due + chrono::Duration::milliseconds(SLOT);
            let in_slot: Vec<&DateTime<Utc>> = polls
                .iter()
                .filter(|t| **t >= due - chrono::Duration::milliseconds(500) && **t < end)
                .collect();
            slots += 1;
            match in_slot.len() {
                0 => stalls += 1,
                1 => lateness.push((*in_slot[0] - due).num_milliseconds()),
                _ => {
                    doubles += 1;
                    lateness.push((*in_slot[0] - due).num_milliseconds());
                }
            }
            due = due_after(due);
        }
    }
    lateness.sort_unstable();
    // Removed feeds fetched after their removal (a fetch already under way may finish).
    let mut late_fetches = 0;
    for (feed, times) in &removed_at {
        let polls = by_feed.get(feed).cloned().unwrap_or_default();
        for removed in times {
            let back = added_at
                .get(feed)
                .and_then(|a| a.iter().find(|t| *t > removed).copied())
                .unwrap_or(ended);
            late_fetches += polls
                .iter()
                .filter(|t| **t > *removed + chrono::Duration::milliseconds(200) && **t < back)
                .count();
        }
    }
    // Added healthy feeds: how soon after the reload their first poll came (a failing one
    // re-added keeps its backoff, as it should).
    let mut first_poll_ms: Vec<i64> = Vec::new();
    for (feed, times) in added_at.iter().filter(|(f, _)| !is_failing(**f)) {
        let polls = by_feed.get(feed).cloned().unwrap_or_default();
        for added in times {
            if let Some(t) = polls.iter().find(|t| **t >= *added) {
                first_poll_ms.push((*t - *added).num_milliseconds());
            }
        }
    }
    first_poll_ms.sort_unstable();
    let mib = |k: Option<u64>| k.map_or("?".to_string(), |k| format!("{:.1} MB", k as f64 / 1024.0));
    println!(
        "soak: {minutes} min, {FEEDS} feeds + {SWAP} swapped per reload, schedule \"{SCHEDULE}\", default jitter"
    );
    println!("  requests seen by the farm: {}", log.requests.len());
    println!(
        "  healthy feeds: {slots} feed-slots, {} polled exactly once, {stalls} stalls, {doubles} double polls",
        slots - stalls - doubles
    );
    println!(
        "  lateness vs due time: p50 {} ms, p99 {} ms, max {} ms (target p99 <= 1000 ms)",
        percentile(&lateness, 0.5),
        percentile(&lateness, 0.99),
        lateness.last().copied().unwrap_or(0)
    );
    println!(
        "  reloads: {reloads}; removed feeds fetched after removal: {late_fetches}; added healthy feeds first polled after p50 {} ms, max {} ms",
        percentile(&first_poll_ms, 0.5),
        first_poll_ms.last().copied().unwrap_or(0)
    );
    println!(
        "  daemon CPU: {:.2} % of one core; RSS at minute 2: {}, at the end: {} (target growth <= 5 MB)",
        100.0 * cpu / wall,
        mib(rss_minute_2),
        mib(rss_end)
    );
}

/// 100,000 feeds in the store: one wake-up's claim, and the idle daemon's memory.
async fn planning(base: &Path) {
    const N: usize = 100_000;
    let dir = base.join("planning");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    // Feeds on a closed port: none is due during the measurement, so none is fetched.
    let mut toml = String::from("[store]\npath = \"plan.db\"\n\n[poll]\nschedule = \"0 */6 * * *\"\n\n");
    for i in 0..N {
        toml.push_str(&format!(
            "[[feed]]\nurl = \"http://127.0.3.{}:9/{i}.xml\"\n\n",
            1 + i % 200
        ));
    }
    toml.push_str("[[output]]\npath = \"public/all.atom\"\n");
    std::fs::write(dir.join("tributary.toml"), &toml).expect("config");
    let config = Config::load(&dir.join("tributary.toml")).expect("config");
    let now = Utc::now();
    let later = (now + chrono::Duration::hours(5)).timestamp_millis();
    let store = Store::open(&config.backend()).await.expect("store");
    {
        let urls: Vec<String> = config.feeds.iter().map(|f| f.url.to_string()).collect();
        let states = store.ensure_feeds(urls, now).await.expect("feeds");
        let due: Vec<(i64, tributary::Scheduled)> = states
            .iter()
            .zip(&config.feeds)
            .map(|(s, spec)| {
                let scheduled = tributary::Scheduled {
                    lease: None,
                    next_due: chrono::DateTime::from_timestamp_millis(later + (s.id % 3600) * 1000),
                    key: tributary::Policy::of(&config, spec).key(),
                };
                (s.id, scheduled)
            })
            .collect();
        store.schedule(due).await.expect("schedule");
    }
    // A wake-up: 100 feeds due among 100,000, claimed with the range scan; put back after.
    let mut times = Vec::new();
    // The first wake-up reads the index from disk; the daemon's are warm.
    for round in 0..51i64 {
        let due: Vec<(i64, tributary::Scheduled)> = (0..100)
            .map(|k| {
                let id = 1 + (round * 977 + k * 131) % N as i64;
                let scheduled = tributary::Scheduled {
                    lease: None,
                    next_due: Some(now - chrono::Duration::seconds(1)),
                    key: String::new(),
                };
                (id, scheduled)
            })
            .collect();
        store.schedule(due).await.expect("schedule");
        let t = Instant::now();
        let claimed = store
            .claim_due(now, 1000, now + chrono::Duration::hours(1))
            .await
            .expect("claim");
        if round > 0 {
            times.push(t.elapsed());
        }
        assert_eq!(claimed.feeds.len(), 100);
        let back: Vec<(i64, tributary::Scheduled)> = claimed
            .feeds
            .iter()
            .map(|f| {
                let scheduled = tributary::Scheduled {
                    lease: None,
                    next_due: chrono::DateTime::from_timestamp_millis(later),
                    key: String::new(),
                };
                (f.id, scheduled)
            })
            .collect();
        store.schedule(back).await.expect("schedule");
        store.release_leases(None).await.expect("release");
    }
    times.sort();
    println!(
        "planning: one wake-up claiming 100 due of {N} feeds ({} wake-ups): median {:.2} ms, p90 {:.2} ms, max {:.2} ms (target <= 5 ms)",
        times.len(),
        times[times.len() / 2].as_secs_f64() * 1e3,
        times[times.len() * 9 / 10].as_secs_f64() * 1e3,
        times[times.len() - 1].as_secs_f64() * 1e3
    );
    // Keys as the config computes them, so the daemon finds every due time current.
    let store = Store::open(&config.backend()).await.expect("store");
    {
        let urls: Vec<String> = config.feeds.iter().map(|f| f.url.to_string()).collect();
        let states = store.ensure_feeds(urls, now).await.expect("feeds");
        let due: Vec<(i64, tributary::Scheduled)> = states
            .iter()
            .zip(&config.feeds)
            .map(|(s, spec)| {
                let scheduled = tributary::Scheduled {
                    lease: None,
                    next_due: chrono::DateTime::from_timestamp_millis(later + (s.id % 3600) * 1000),
                    key: tributary::Policy::of(&config, spec).key(),
                };
                (s.id, scheduled)
            })
            .collect();
        store.schedule(due).await.expect("schedule");
    }
    store.close().await;
    let mut child = start_daemon(&dir, std::process::Stdio::piped());
    let pid = child.id().expect("pid");
    let start = Instant::now();
    // Settled: started (config, store, outputs) and then 30 s idle.
    tokio::time::sleep(Duration::from_secs(45)).await;
    let rss = measure::proc_status_kib(pid, "VmRSS:");
    let hwm = measure::proc_status_kib(pid, "VmHWM:");
    let ticks = cpu_ticks(pid);
    kill(Pid::from_raw(pid as i32), Signal::SIGTERM).expect("SIGTERM");
    let _ = tokio::time::timeout(Duration::from_secs(30), child.wait()).await;
    let mib = |k: Option<u64>| k.map_or("?".to_string(), |k| format!("{:.1} MB", k as f64 / 1024.0));
    println!(
        "planning: idle daemon with {N} feeds: RSS {} after {:.0} s (peak {}, CPU {:.1} s) (target <= 150 MB)",
        mib(rss),
        start.elapsed().as_secs_f64(),
        mib(hwm),
        ticks.unwrap_or(0) as f64 / 100.0
    );
}

/// 10,000 idle connections and 500 slowloris clients against the server, and health checks
/// meanwhile.
async fn abuse(base: &Path) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const IDLE: usize = 10_000;
    const SLOW: usize = 500;
    // The attackers' side needs more descriptors than a shell's default soft limit.
    if let Ok((_, hard)) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE) {
        let _ = nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, hard, hard);
    }
    let dir = base.join("abuse");
    std::fs::create_dir_all(dir.join("feeds")).expect("dir");
    std::fs::write(dir.join("feeds/a.xml"), rss(1, 1)).expect("feed");
    std::fs::write(
        dir.join("tributary.toml"),
        "[store]\npath = \"abuse.db\"\n\n[serve]\nlisten = \"127.0.0.9:0\"\nadmin_listen = \"same\"\n\n[[feed]]\nurl = \"feeds/a.xml\"\n\n\
         [[output]]\npath = \"public/all.atom\"\n",
    )
    .expect("config");
    let mut child = start_daemon(&dir, std::process::Stdio::piped());
    let pid = child.id().expect("pid");
    let mut stderr = tokio::io::BufReader::new(child.stderr.take().expect("stderr"));
    let mut log = String::new();
    let addr: SocketAddr = loop {
        let mut line = String::new();
        let n = tokio::time::timeout(
            Duration::from_secs(30),
            tokio::io::AsyncBufReadExt::read_line(&mut stderr, &mut line),
        )
        .await
        .expect("the daemon starts")
        .expect("read log");
        assert!(n > 0, "the daemon exited: {log}");
        log.push_str(&line);
        if let Some(addr) = line
            .split("listen=")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|a| a.parse().ok())
        {
            break addr;
        }
    };
    let log_task = tokio::spawn(async move {
        let mut rest = String::new();
        let _ = tokio::io::AsyncReadExt::read_to_string(&mut stderr, &mut rest).await;
        rest
    });
    let started = Instant::now();
    let mut idle = Vec::with_capacity(IDLE);
    for _ in 0..IDLE {
        if let Ok(s) = tokio::net::TcpStream::connect(addr).await {
            idle.push(s);
        }
    }
    let opened = started.elapsed();
    let mut slow = Vec::with_capacity(SLOW);
    for _ in 0..SLOW {
        if let Ok(mut s) = tokio::net::TcpStream::connect(addr).await {
            let _ = s.write_all(b"GET /all.atom HTTP/1.1\r\nHost: planet\r\n").await;
            slow.push(s);
        }
    }
    // 30 s of health checks, every 250 ms, from fresh connections, while the slowloris
    // clients trickle a byte each every 5 s.
    let mut latencies = Vec::new();
    let mut failures = 0;
    tributary::init_tls();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");
    let checks_started = Instant::now();
    let mut next_trickle = Instant::now() + Duration::from_secs(5);
    while checks_started.elapsed() < Duration::from_secs(30) {
        let t = Instant::now();
        match client
            .get(format!("http://{addr}/healthz"))
            .timeout(Duration::from_secs(5))
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => latencies.push(t.elapsed()),
            _ => failures += 1,
        }
        if Instant::now() >= next_trickle {
            next_trickle += Duration::from_secs(5);
            for s in &mut slow {
                let _ = s.write_all(b"X").await;
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // How many of the attackers' connections the server closed by now.
    let mut closed = 0;
    let mut buf = [0u8; 16];
    for s in idle.iter_mut().chain(slow.iter_mut()) {
        if let Ok(Ok(0) | Err(_)) = tokio::time::timeout(Duration::from_millis(1), s.read(&mut buf)).await {
            closed += 1;
        }
    }
    let rss = measure::proc_status_kib(pid, "VmRSS:");
    kill(Pid::from_raw(pid as i32), Signal::SIGTERM).expect("SIGTERM");
    let _ = tokio::time::timeout(Duration::from_secs(30), child.wait()).await;
    let rest = log_task.await.unwrap_or_default();
    latencies.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "abuse: {} idle connections opened in {:.1} s and {} slowloris clients; /healthz meanwhile: {} answered, \
         {failures} failed, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (target: every answer within 1 s)",
        idle.len(),
        opened.as_secs_f64(),
        slow.len(),
        latencies.len(),
        latencies.get(latencies.len() / 2).copied().map_or(0.0, ms),
        latencies.get(latencies.len() * 99 / 100).copied().map_or(0.0, ms),
        latencies.last().copied().map_or(0.0, ms),
    );
    println!(
        "abuse: after 30 s the server had closed {closed} of the {} attacking connections; daemon RSS {}; \
         \"connection cap reached\" logged {} time(s)",
        idle.len() + slow.len(),
        rss.map_or("?".to_string(), |k| format!("{:.1} MB", k as f64 / 1024.0)),
        (log + &rest).matches("connection cap reached").count()
    );
}

fn main() {
    let options = options();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let base: PathBuf = tempfile::tempdir().expect("temp dir").keep();
    let wants = |group: &str| {
        options
            .only
            .as_deref()
            .is_none_or(|o| o.split(',').any(|g| g == group))
    };
    runtime.block_on(async {
        if wants("abuse") {
            abuse(&base).await;
        }
        if wants("planning") {
            planning(&base).await;
        }
        if wants("nodes") {
            nodes(&base, options.seconds).await;
        }
        if wants("soak") {
            soak(&base, options.minutes).await;
        }
    });
    let _ = std::fs::remove_dir_all(&base);
}

/// A feed asked for, and when.
type Request = (usize, DateTime<Utc>);

/// **nodes**: 1, 2 and 3 `tributary run` nodes on one PostgreSQL store against a farm whose
/// every answer takes 200 ms: 3,000 feeds on 100 loopback hosts under the default
/// `per_host = 2` (for the cluster) and `concurrency = 32` (per node), a 20-second schedule
/// with the default jitter. Latency-bound: one node fetches at most 32 / 0.2 s = 160 feeds/s.
/// Prints the cold round (every feed due at once) and the steady state: feeds polled per
/// second, and lateness against the due time the schedule gives (p50 / p99). Then the cold
/// 1,000 × 50 poll of the benchmark farm (`--bench poll`'s scenario) on SQLite and on
/// PostgreSQL, one after the other in the same run.
async fn nodes(base: &Path, seconds: u64) {
    const FEEDS: usize = 3000;
    const HOSTS: usize = 100;
    const DELAY: Duration = Duration::from_millis(200);
    const SCHEDULE: &str = "*/20 * * * * *";
    let Ok(admin) = std::env::var("TRIBUTARY_PG_URL") else {
        println!("nodes: SKIPPED (no TRIBUTARY_PG_URL; see the README's Tests section)");
        return;
    };
    // The farm: each host's answers, logged with the feed and when they were asked for.
    let log: Arc<Mutex<Vec<Request>>> = Arc::default();
    let mut urls = Vec::with_capacity(FEEDS);
    let mut addrs = Vec::new();
    for h in 0..HOSTS {
        let listener = tokio::net::TcpListener::bind((format!("127.0.5.{}", h + 1).as_str(), 0))
            .await
            .expect("bind loopback");
        addrs.push(listener.local_addr().expect("addr"));
        let log = log.clone();
        let app = axum::Router::new().route(
            "/{feed}",
            axum::routing::get(move |UrlPath(feed): UrlPath<String>| {
                let log = log.clone();
                async move {
                    let feed: usize = feed.trim_end_matches(".xml").parse().unwrap_or(0);
                    log.lock().unwrap().push((feed, Utc::now()));
                    tokio::time::sleep(DELAY).await;
                    let mut r = Response::new(Body::from(rss(feed, 3)));
                    r.headers_mut()
                        .insert(header::CONTENT_TYPE, "application/rss+xml".parse().unwrap());
                    r
                }
            }),
        );
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
    }
    for f in 0..FEEDS {
        urls.push(format!("http://{}/{f}.xml", addrs[f % HOSTS]));
    }
    let (client, connection) = tokio_postgres::connect(&admin, tokio_postgres::NoTls)
        .await
        .expect("connect to TRIBUTARY_PG_URL");
    tokio::spawn(connection);
    let fresh = |name: &str| {
        let mut url = url::Url::parse(&admin).expect("a postgresql:// URL");
        url.set_path(name);
        url.to_string()
    };
    for count in 1..=3usize {
        let name = format!("tributary_bench_nodes_{count}");
        for sql in [
            format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            format!("CREATE DATABASE {name}"),
        ] {
            client.batch_execute(&sql).await.expect("a database of its own");
        }
        log.lock().unwrap().clear();
        let mut children = Vec::new();
        let mut config = None;
        let started = Utc::now();
        let database_before = cpu_ticks_of("postgres");
        for n in 0..count {
            let dir = base.join(format!("nodes-{count}-{n}"));
            std::fs::create_dir_all(&dir).expect("dir");
            let mut toml = format!(
                "[store]\nurl = \"{}\"\n\n[node]\nname = \"node-{n}\"\n\n[poll]\nschedule = \"{SCHEDULE}\"\n\
                 deny_private_networks = false\n\n",
                fresh(&name)
            );
            for url in &urls {
                toml.push_str(&format!("[[feed]]\nurl = \"{url}\"\n\n"));
            }
            toml.push_str("[[output]]\npath = \"public/all.atom\"\n");
            std::fs::write(dir.join("tributary.toml"), &toml).expect("config");
            config.get_or_insert_with(|| Config::parse(&dir.join("tributary.toml"), &toml).expect("config"));
            children.push(start_daemon(&dir, std::process::Stdio::null()));
        }
        tokio::time::sleep(Duration::from_secs(seconds)).await;
        // The nodes' CPU over the run: whether they were bound by the answers' latency or by
        // the cores they share with each other, the farm and the database.
        let ticks: u64 = children.iter().filter_map(|c| c.id()).filter_map(cpu_ticks).sum();
        let database = cpu_ticks_of("postgres").saturating_sub(database_before);
        for child in &mut children {
            if let Some(pid) = child.id() {
                let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
            }
        }
        for child in &mut children {
            let _ = tokio::time::timeout(Duration::from_secs(30), child.wait()).await;
        }
        let config = config.expect("config");
        let requests = log.lock().unwrap().clone();
        let mut by_feed: HashMap<usize, Vec<DateTime<Utc>>> = HashMap::new();
        for (feed, at) in &requests {
            by_feed.entry(*feed).or_default().push(*at);
        }
        // The cold round: from the start until every feed was asked once.
        let cold = by_feed
            .values()
            .filter_map(|t| t.first())
            .max()
            .filter(|_| by_feed.len() == FEEDS)
            .map(|t| (*t - started).num_milliseconds() as f64 / 1e3);
        // The steady state: every poll after a feed's first, against the due time its
        // previous poll gave it.
        let mut lateness = Vec::new();
        let mut steady = 0usize;
        let steady_from = started + chrono::Duration::seconds(40);
        for (feed, times) in &by_feed {
            let spec = &config.feeds[*feed];
            let policy = tributary::Policy::of(&config, spec);
            for pair in times.windows(2) {
                let history = History {
                    last_fetch: Some(pair[0]),
                    ..History::default()
                };
                if let Some(due) = tributary::due(&policy, &spec.key, &history, None).at
                    && pair[1] >= steady_from
                {
                    lateness.push((pair[1] - due).num_milliseconds());
                    steady += 1;
                }
            }
        }
        lateness.sort_unstable();
        let window = (Utc::now() - steady_from).num_milliseconds().max(1) as f64 / 1e3;
        println!(
            "nodes: {count} node(s), {FEEDS} feeds on {HOSTS} hosts, {} ms answers: cold round {} s \
             ({:.0} feeds/s); steady {:.0} feeds/s polled, lateness p50 {} ms, p99 {} ms ({} polls); \
             CPU-seconds in {seconds} s: the nodes {:.0}, PostgreSQL {:.0}",
            DELAY.as_millis(),
            cold.map_or("not done".into(), |c| format!("{c:.1}")),
            cold.map_or(0.0, |c| FEEDS as f64 / c),
            steady as f64 / window,
            percentile(&lateness, 0.5),
            percentile(&lateness, 0.99),
            lateness.len(),
            ticks as f64 / 100.0,
            database as f64 / 100.0,
        );
        let _ = client
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .await;
    }

    // The cold 1,000 × 50 poll, SQLite then PostgreSQL, in this run.
    let farm = farm::FarmHandle::start(farm::FarmSpec::new(1000, 50)).await;
    let name = "tributary_bench_cold";
    for sql in [
        format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        format!("CREATE DATABASE {name}"),
    ] {
        client.batch_execute(&sql).await.expect("a database of its own");
    }
    for (label, store) in [
        ("SQLite", "path = \"cold.db\"".to_string()),
        ("PostgreSQL", format!("url = \"{}\"", fresh(name))),
    ] {
        let dir = base.join(format!("cold-{label}"));
        std::fs::create_dir_all(&dir).expect("dir");
        let toml = farm
            .config("cold.db", 100, "deny_private_networks = false")
            .replacen("path = \"cold.db\"", &store, 1);
        std::fs::write(dir.join("tributary.toml"), toml).expect("config");
        let started = Instant::now();
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_tributary"))
            .args(["--config", "tributary.toml", "poll", "--quiet"])
            .current_dir(&dir)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("poll");
        // The peak resident size, sampled while it runs.
        let (status, peak) = measure::wait_with_peak(&mut child).await;
        let took = started.elapsed();
        // What the store holds afterwards, per entry: the bytes a day of new entries costs.
        let bytes = match label {
            "SQLite" => std::fs::metadata(dir.join("cold.db")).map_or(0, |m| m.len() as i64),
            _ => client
                .query_one("SELECT pg_database_size($1)", &[&name])
                .await
                .map_or(0, |r| r.get::<_, i64>(0)),
        };
        println!(
            "nodes: cold 1,000 x 50 `tributary poll` on {label}: {:.2} s (exit {}), peak RSS {:.0} MB; store {:.0} MB, \
             {:.0} bytes per entry stored",
            took.as_secs_f64(),
            status.code().unwrap_or(-1),
            peak as f64 / 1024.0,
            bytes as f64 / 1e6,
            bytes as f64 / 50_000.0
        );
    }
    let _ = client
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await;
}
