//! Webhooks as deployed: the daemon (on paused time, with the packaged defaults) POSTs each
//! newly visible entry once, signed as the Standard Webhooks specification says, in batches of
//! at most `max_items`; a receiver answering 503, timing out or down gets retries with the same
//! `webhook-id`, a 410 is a permanent refusal; and a daemon killed with deliveries pending
//! sends every one after its restart, verified by the specification's own library.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use base64::Engine as _;
use chrono::{DateTime, TimeZone, Utc};
use hmac::{KeyInit, Mac};
use sha2::Sha256;

use crate::schedule::Running;
use crate::support::{Daemon, FeedServer, Route, Seen, Workspace};

/// A Standard Webhooks secret: `whsec_` and the base64 of 32 bytes.
const SECRET: &str = "whsec_c2VjcmV0LWtleS1mb3ItdGhlLXdlYmhvb2stdGVzdHM=";

fn feed(items: std::ops::RangeInclusive<u32>) -> Route {
    let items: String = items
        .rev()
        .map(|i| {
            format!(
                "<item><guid>story-{i}</guid><title>Story {i}</title><link>https://news.example/{i}</link>\
                 <pubDate>Mon, 02 Mar 2026 {:02}:00:00 +0000</pubDate></item>",
                i % 24
            )
        })
        .collect();
    Route::rss(format!(
        "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>News</title>\
         <link>https://news.example/</link><description>d</description>{items}</channel></rss>"
    ))
}

/// The signing key of [`SECRET`].
fn key() -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(SECRET.trim_start_matches("whsec_"))
        .unwrap()
}

fn header<'a>(seen: &'a Seen, name: &str) -> &'a str {
    seen.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no {name} header"))
}

/// Checks one request as a receiver must (written here from the specification, apart from the
/// code under test): the signature over `id.timestamp.body`. Returns its id and item titles.
fn verified(seen: &Seen) -> (String, Vec<String>) {
    let id = header(seen, "webhook-id").to_string();
    let timestamp = header(seen, "webhook-timestamp");
    let mut mac = hmac::Hmac::<Sha256>::new_from_slice(&key()).unwrap();
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(&seen.body);
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    let signatures: Vec<&str> = header(seen, "webhook-signature").split(' ').collect();
    assert!(
        signatures.contains(&format!("v1,{expected}").as_str()),
        "{signatures:?} does not sign {id}"
    );
    assert_eq!(header(seen, "content-type"), "application/json");
    assert!(header(seen, "user-agent").starts_with("tributary/"));
    let body: serde_json::Value = serde_json::from_slice(&seen.body).unwrap();
    assert_eq!(body["version"], "https://jsonfeed.org/version/1.1");
    assert_eq!(body["title"], "Newsroom");
    let titles = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["title"].as_str().unwrap().to_string())
        .collect();
    (id, titles)
}

fn config(ws: &Workspace, feed: &str, hook: &str) -> std::path::PathBuf {
    ws.write_config(&format!(
        "[store]\npath = \"data/t.db\"\n[poll]\nschedule = \"*/10 * * * *\"\n\
         [[feed]]\nurl = \"{feed}\"\n\
         [[output]]\npath = \"public/all.atom\"\ntitle = \"Newsroom\"\n\
         webhook = {{ url = \"{hook}\", secret = \"{SECRET}\", max_items = 2 }}\n"
    ))
}

#[tokio::test(start_paused = true)]
async fn new_entries_are_posted_once_signed_in_batches_and_retried_until_taken() {
    let feeds = FeedServer::start_at("127.0.0.2").await;
    let receiver = FeedServer::start_at("127.0.0.3").await;
    feeds.set("/f.xml", feed(1..=3));
    receiver.set("/hook", Route::status(503, "busy"));
    let ws = Workspace::new();
    let path = config(&ws, &feeds.url("/f.xml"), &receiver.url("/hook"));
    let start = Utc.with_ymd_and_hms(2026, 3, 2, 10, 0, 0).unwrap();
    let daemon = Running::start(&path, start);
    let minutes = |m: i64| start + chrono::Duration::minutes(m);

    // The first render's back catalogue is nobody's news.
    daemon.run_until(minutes(5)).await;
    assert_eq!(
        receiver.requests("/hook").len(),
        0,
        "the first render sends nothing"
    );

    // Three new stories: two requests (2 + 1), refused with 503 until the receiver is back.
    feeds.set("/f.xml", feed(1..=6));
    daemon.run_until(minutes(25)).await;
    let refused = receiver.requests("/hook");
    let ids: BTreeSet<String> = refused.iter().map(|s| verified(s).0).collect();
    assert_eq!(ids.len(), 2, "two deliveries, retried under their own ids");
    assert!(refused.len() >= 6, "retried: {} tries", refused.len());
    receiver.set("/hook", Route::status(200, ""));
    daemon.run_until(minutes(90)).await;
    let tries = receiver.requests("/hook");
    let arrived: Vec<DateTime<Utc>> = receiver
        .arrivals("/hook")
        .into_iter()
        .map(|t| daemon.wall_at(t))
        .collect();
    // Each delivery's tries: when, the answer, the titles.
    type Tries = Vec<(DateTime<Utc>, u16, Vec<String>)>;
    let mut by_id: BTreeMap<String, Tries> = BTreeMap::new();
    for (seen, at) in tries.iter().zip(&arrived) {
        let (id, titles) = verified(seen);
        // The timestamp is when the try was made: a replay later fails the receiver's check.
        let stamp: i64 = header(seen, "webhook-timestamp").parse().unwrap();
        assert!((stamp - at.timestamp()).abs() <= 1, "{stamp} at {at}");
        by_id.entry(id).or_default().push((*at, seen.status, titles));
    }
    assert_eq!(by_id.len(), 2);
    let mut delivered: Vec<String> = Vec::new();
    for (id, tries) in &by_id {
        let taken: Vec<_> = tries.iter().filter(|t| t.1 == 200).collect();
        assert_eq!(taken.len(), 1, "{id} taken once: {tries:?}");
        assert!(taken[0].2.len() <= 2, "at most max_items a request");
        assert!(
            tries.iter().all(|t| t.2 == taken[0].2),
            "every try is the same delivery"
        );
        // Waits double from 5 s.
        let gaps: Vec<i64> = tries
            .windows(2)
            .map(|w| (w[1].0 - w[0].0).num_seconds())
            .collect();
        assert!(gaps.windows(2).all(|g| g[1] >= g[0]), "{gaps:?}");
        assert!(gaps[0] >= 5 && gaps[0] <= 6, "{gaps:?}");
        delivered.extend(taken[0].2.iter().cloned());
    }
    delivered.sort();
    assert_eq!(delivered, ["Story 4", "Story 5", "Story 6"]);

    // A receiver that times out is tried again (its answer was lost: the one case a
    // delivery may arrive twice, under one id).
    let before = receiver.requests("/hook").len();
    receiver.set("/hook", Route::status(200, "").delayed(Duration::from_secs(120)));
    feeds.set("/f.xml", feed(1..=7));
    daemon.run_until(minutes(118)).await;
    receiver.set("/hook", Route::status(200, ""));
    daemon.run_until(minutes(160)).await;
    // A try cut off by the client's timeout is never answered (the receiver's server drops
    // it): the arrivals show the tries, the answered one what they carried.
    let tries: Vec<DateTime<Utc>> = receiver.arrivals("/hook")[before..]
        .iter()
        .map(|t| daemon.wall_at(*t))
        .collect();
    let answered: Vec<(String, Vec<String>)> = receiver.requests("/hook")[before..]
        .iter()
        .map(verified)
        .collect();
    assert!(tries.len() >= 3, "timed out, then tried again: {tries:?}");
    let gaps: Vec<i64> = tries.windows(2).map(|w| (w[1] - w[0]).num_seconds()).collect();
    assert_eq!(gaps[..2], [35, 40], "30 s timeout, then 5 s, 10 s, …: {gaps:?}");
    assert_eq!(answered.len(), 1, "{answered:?}");
    assert_eq!(answered[0].1, ["Story 7"]);

    // 410 Gone is a permanent refusal: one try, never again.
    let before = receiver.requests("/hook").len();
    receiver.set("/hook", Route::status(410, "gone"));
    feeds.set("/f.xml", feed(1..=8));
    daemon.run_until(minutes(300)).await;
    daemon.stop().await;
    let gone: Vec<(String, Vec<String>)> = receiver.requests("/hook")[before..]
        .iter()
        .map(verified)
        .collect();
    assert_eq!(gone.len(), 1, "{gone:?}");
    assert_eq!(gone[0].1, ["Story 8"]);
    let shown = ws.tributary(&["feeds"]).await;
    assert!(
        shown.stdout.contains("1 delivery given up; last error: HTTP 410"),
        "{}",
        shown.stdout
    );
}

/// A port nobody listens on, on a loopback address of its own: the receiver is down.
async fn unused_port(ip: &str) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind((ip, 0)).await.unwrap();
    listener.local_addr().unwrap()
}

/// Deliveries pending when the daemon is killed with SIGKILL (the receiver was down) all
/// arrive after a restart, each taken once, and the specification's own library (Python's
/// `standardwebhooks`) accepts every request.
#[tokio::test(flavor = "multi_thread")]
async fn a_killed_daemon_sends_what_was_pending_after_its_restart() {
    let feeds = FeedServer::start_at("127.0.0.2").await;
    feeds.set("/f.xml", feed(1..=3));
    let down = unused_port("127.0.0.4").await;
    let hook = format!("http://{down}/hook");
    let ws = Workspace::new();
    let path = config(&ws, &feeds.url("/f.xml"), &hook);
    // A one-shot poll renders first: its back catalogue is announced, not sent.
    let run = ws.poll().await;
    assert_eq!(run.code, 0, "{run:?}");
    // The next poll's three new stories find the receiver down: they wait in the outbox.
    feeds.set("/f.xml", feed(1..=6));
    let run = ws.tributary(&["poll", "--force"]).await;
    assert_eq!(run.code, 0, "a receiver down is not the feeds' failure: {run:?}");
    assert!(
        run.stderr.contains("webhooks: 0 delivered, 2 to be retried"),
        "{}",
        run.stderr
    );
    let shown = ws.tributary(&["feeds"]).await.stdout;
    assert!(
        shown.contains("2 waiting") && shown.contains("cannot connect"),
        "{shown}"
    );
    // The daemon starts on them (the receiver still down), and is killed.
    let mut daemon = Daemon::start(&path);
    daemon.wait_for("READY=1").await;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(daemon.pid() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let _ = daemon.exit_code().await;

    // The receiver is back, where it was.
    let receiver = FeedServer::start_on(down).await;
    receiver.set("/hook", Route::status(204, ""));
    let mut daemon = Daemon::start(&path);
    receiver.wait_for_requests("/hook", 2).await;
    daemon.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(daemon.exit_code().await, 0);
    let got = receiver.requests("/hook");
    let mut items: Vec<String> = got.iter().flat_map(|s| verified(s).1).collect();
    items.sort();
    assert_eq!(items, ["Story 4", "Story 5", "Story 6"], "each once");
    if !crate::support::require_python_module("standardwebhooks") {
        return;
    }
    for seen in &got {
        let check = serde_json::json!({
            "secret": SECRET,
            "body": String::from_utf8(seen.body.clone()).unwrap(),
            "headers": {
                "webhook-id": header(seen, "webhook-id"),
                "webhook-timestamp": header(seen, "webhook-timestamp"),
                "webhook-signature": header(seen, "webhook-signature"),
            },
        });
        let mut child = std::process::Command::new("python3")
            .args([
                "-c",
                "import json, sys\nfrom standardwebhooks.webhooks import Webhook\n\
                 c = json.load(sys.stdin)\nWebhook(c['secret']).verify(c['body'], c['headers'])\nprint('ok')",
            ])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write as _;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(check.to_string().as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "ok",
            "standardwebhooks refused {}: {}",
            header(seen, "webhook-id"),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// `on_change`: run after the output's file changed (never for an unchanged file), with the
/// path and format in its environment; a failure is the output's (exit status 2 from `poll`).
#[tokio::test(flavor = "multi_thread")]
async fn on_change_runs_when_the_file_changed_and_only_then() {
    let feeds = FeedServer::start_at("127.0.0.2").await;
    feeds.set("/f.xml", feed(1..=2));
    let ws = Workspace::new();
    let log = ws.path("hook.log");
    let hook = |script: &str| {
        ws.write_config(&format!(
            "[store]\npath = \"data/t.db\"\n[[feed]]\nurl = \"{}\"\n\
             [[output]]\npath = \"public/all.atom\"\non_change = [\"sh\", \"-c\", '{script}']\n",
            feeds.url("/f.xml")
        ))
    };
    hook(&format!(
        "echo \"$TRIBUTARY_OUTPUT $TRIBUTARY_FORMAT\" >> {}",
        log.display()
    ));
    let lines = || std::fs::read_to_string(&log).unwrap_or_default().lines().count();
    let run = ws.poll().await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        std::fs::read_to_string(&log).unwrap().trim(),
        format!("{} atom", ws.path("public/all.atom").display())
    );
    let run = ws.tributary(&["poll", "--force"]).await;
    assert_eq!((run.code, lines()), (0, 1), "unchanged: not run");
    feeds.set("/f.xml", feed(1..=3));
    let run = ws.tributary(&["poll", "--force"]).await;
    assert_eq!((run.code, lines()), (0, 2), "changed: run");

    hook("echo cannot sync the mirror >&2; exit 3");
    feeds.set("/f.xml", feed(1..=4));
    let run = ws.tributary(&["poll", "--force"]).await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr
            .contains("on_change sh failed (exit status: 3): cannot sync the mirror"),
        "{}",
        run.stderr
    );
    let shown = ws.tributary(&["feeds"]).await;
    assert!(
        shown.stdout.contains("written, but its on_change failing since"),
        "{}",
        shown.stdout
    );
}

/// A failed `on_change` is owed: the daemon runs it again at the output's next render (its
/// retry, 10 s on, or any render before), though the file does not change again. (Real time:
/// a child process's time is not tokio's.)
#[tokio::test(flavor = "multi_thread")]
async fn a_failed_on_change_is_run_again_at_the_retry() {
    let feeds = FeedServer::start_at("127.0.0.2").await;
    feeds.set("/f.xml", feed(1..=2));
    feeds.set("/hooked", Route::status(200, ""));
    let ws = Workspace::new();
    let (log, marker) = (ws.path("hook.log"), ws.path("second-try"));
    // Tells the test it ran; fails the first time (leaving a marker), succeeds after.
    let script = format!(
        "echo try >> {log}; python3 -c \"import urllib.request; urllib.request.urlopen(\\\"{hooked}\\\")\"; \
         if [ -e {marker} ]; then exit 0; fi; touch {marker}; exit 1",
        log = log.display(),
        marker = marker.display(),
        hooked = feeds.url("/hooked"),
    );
    let path = ws.write_config(&format!(
        "[store]\npath = \"data/t.db\"\n[poll]\nschedule = \"0 0 1 1 *\"\n[[feed]]\nurl = \"{}\"\n\
         [[output]]\npath = \"public/all.atom\"\non_change = [\"sh\", \"-c\", '{script}']\n",
        feeds.url("/f.xml")
    ));
    let mut daemon = Daemon::start(&path);
    feeds.wait_for_requests("/hooked", 2).await;
    daemon.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(daemon.exit_code().await, 0);
    let tries = std::fs::read_to_string(&log).unwrap_or_default().lines().count();
    assert_eq!(
        tries, 2,
        "failed once, then run again, and not after it succeeded"
    );
    assert_eq!(feeds.requests("/f.xml").len(), 1, "the file did not change again");
}

/// A receiver that refuses for good (410) is tried once per delivery, and `poll` says so.
#[tokio::test(flavor = "multi_thread")]
async fn a_refusing_receiver_is_reported_by_poll() {
    let feeds = FeedServer::start_at("127.0.0.2").await;
    let receiver = FeedServer::start_at("127.0.0.3").await;
    feeds.set("/f.xml", feed(1..=2));
    receiver.set("/hook", Route::status(410, "gone"));
    let ws = Workspace::new();
    config(&ws, &feeds.url("/f.xml"), &receiver.url("/hook"));
    assert_eq!(ws.poll().await.code, 0);
    feeds.set("/f.xml", feed(1..=3));
    let run = ws.tributary(&["poll", "--force"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stderr.contains(&format!(
            "warning: webhook {} of {}: deliveries given up: HTTP 410",
            receiver.url("/hook"),
            ws.path("public/all.atom").display()
        )),
        "{}",
        run.stderr
    );
    let run = ws.tributary(&["poll", "--force"]).await;
    assert_eq!(
        (run.code, receiver.requests("/hook").len()),
        (0, 1),
        "never again"
    );
}

/// An output with webhooks and no `path` only notifies: nothing written or served, its
/// deliveries as any other's.
#[tokio::test(flavor = "multi_thread")]
async fn an_output_without_a_file_only_notifies() {
    let feeds = FeedServer::start_at("127.0.0.2").await;
    let receiver = FeedServer::start_at("127.0.0.3").await;
    feeds.set("/f.xml", feed(1..=2));
    receiver.set("/hook", Route::status(202, ""));
    let ws = Workspace::new();
    ws.write_config(&format!(
        "[store]\npath = \"data/t.db\"\n[[feed]]\nurl = \"{}\"\n\
         [[output]]\ntitle = \"Newsroom\"\nwebhook = {{ url = \"{}?token=s3cret\", secret = \"{SECRET}\" }}\n",
        feeds.url("/f.xml"),
        receiver.url("/hook")
    ));
    let check = ws.tributary(&["check"]).await;
    assert_eq!(check.code, 0, "{check:?}");
    assert_eq!(ws.poll().await.code, 0);
    feeds.set("/f.xml", feed(1..=3));
    let run = ws.tributary(&["poll", "--force"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let got = receiver.requests("/hook");
    assert_eq!(got.len(), 1);
    assert_eq!(verified(&got[0]).1, ["Story 3"]);
    let files: Vec<String> = walk(&ws.path(""))
        .into_iter()
        .filter(|f| !f.contains("/data/"))
        .collect();
    assert!(
        files.iter().all(|f| f.ends_with("tributary.toml")),
        "nothing written: {files:?}"
    );
    assert!(
        !run.stdout.contains("s3cret") && !run.stderr.contains("s3cret"),
        "{run:?}"
    );
}

/// Every file under `dir`.
fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path.display().to_string());
        }
    }
    files
}
