//! `tributary run` as systemd runs it: the real binary, a notify socket, signals.

use nix::sys::signal::Signal;

use crate::support::{Daemon, FeedServer, Route, Workspace, rss};

const D1: &str = "Mon, 02 Mar 2026 10:00:00 +0000";
const D2: &str = "Tue, 03 Mar 2026 10:00:00 +0000";

/// A config polling `feeds` every second, with no jitter.
fn fast_config(ws: &Workspace, feeds: &[String]) {
    let mut toml = String::from(
        "[store]\npath = \"data/t.db\"\n\n[poll]\nschedule = \"* * * * * *\"\njitter = \"0s\"\ntimeout = \"5s\"\nshutdown_grace = \"2s\"\n\n",
    );
    for url in feeds {
        toml.push_str(&format!("[[feed]]\nurl = \"{url}\"\n\n"));
    }
    toml.push_str("[[output]]\npath = \"public/all.atom\"\ntitle = \"Daemon test\"\n");
    ws.write_config(&toml);
}

fn output_titles(ws: &Workspace) -> Vec<String> {
    let Ok(bytes) = std::fs::read(ws.output_path()) else {
        return Vec::new();
    };
    feed_rs::parser::parse(&bytes[..])
        .map(|f| {
            f.entries
                .iter()
                .map(|e| e.title.as_ref().unwrap().content.clone())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn ready_changes_reload_and_clean_stop() {
    let server = FeedServer::start().await;
    server.set(
        "/a.xml",
        Route::rss(rss("a", &[(Some("a1"), None, "First", "x", Some(D1))])),
    );
    server.set(
        "/b.xml",
        Route::rss(rss("b", &[(Some("b1"), None, "From B", "y", Some(D2))])),
    );
    let ws = Workspace::new();
    fast_config(&ws, &[server.url("/a.xml")]);
    let mut daemon = Daemon::start(&ws.path("tributary.toml"));

    let ready = daemon.wait_for("READY=1").await;
    assert!(ready.contains("STATUS="), "{ready}");
    daemon.until_round(5, || output_titles(&ws) == ["First"]).await;

    // A change on the feed server shows up in the output without a restart.
    server.set(
        "/a.xml",
        Route::rss(rss(
            "a",
            &[
                (Some("a1"), None, "First", "x", Some(D1)),
                (Some("a2"), None, "Second", "z", Some(D2)),
            ],
        )),
    );
    daemon
        .until_round(10, || output_titles(&ws).contains(&"Second".to_string()))
        .await;

    // SIGHUP with an added feed: reloading, ready again, and the new feed is polled.
    fast_config(&ws, &[server.url("/a.xml"), server.url("/b.xml")]);
    daemon.signal(Signal::SIGHUP);
    daemon.wait_for("RELOADING=1").await;
    daemon.wait_for("READY=1").await;
    daemon
        .until_round(10, || output_titles(&ws).contains(&"From B".to_string()))
        .await;

    // SIGHUP with a broken config: rejected with a clear log line, the old one keeps running.
    ws.write_config("[poll]\nschedule = \"every now and then\"\n");
    daemon.signal(Signal::SIGHUP);
    daemon.wait_for("READY=1").await;
    let requests_before = server.requests("/b.xml").len();
    daemon
        .until_round(10, || server.requests("/b.xml").len() > requests_before)
        .await;
    let log = daemon.stderr();
    assert!(log.contains("new configuration rejected"), "{log}");
    assert!(
        log.contains("poll.schedule"),
        "the rejection names the key: {log}"
    );

    // SIGTERM: STOPPING=1, exit 0, a sound database.
    daemon.signal(Signal::SIGTERM);
    daemon.wait_for("STOPPING=1").await;
    assert_eq!(daemon.exit_code().await, 0, "{}", daemon.stderr());
    let check: String = ws
        .db()
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let titles = output_titles(&ws);
    assert_eq!(titles.len(), 3, "{titles:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_during_a_slow_fetch_stops_within_the_grace_period() {
    let server = FeedServer::start().await;
    server.set(
        "/fast.xml",
        Route::rss(rss("fast", &[(Some("f1"), None, "Fast", "x", Some(D1))])),
    );
    server.set(
        "/slow.xml",
        Route::rss(rss("slow", &[(Some("s1"), None, "Slow", "x", Some(D1))]))
            .delayed(std::time::Duration::from_secs(60)),
    );
    let ws = Workspace::new();
    fast_config(&ws, &[server.url("/fast.xml"), server.url("/slow.xml")]);
    let mut daemon = Daemon::start(&ws.path("tributary.toml"));
    daemon.wait_for("READY=1").await;
    // Once the slow fetch is in flight (the server has seen it), stop.
    server.wait_for_request("/slow.xml").await;
    daemon.signal(Signal::SIGTERM);
    assert_eq!(daemon.exit_code().await, 0, "{}", daemon.stderr());
    let log = daemon.stderr();
    assert!(log.contains("abandoned fetches"), "{log}");
    // What was fetched was committed and rendered; the database is sound.
    let rows = ws.rows();
    assert_eq!(
        rows.iter().map(|r| r.title.as_str()).collect::<Vec<_>>(),
        ["Fast"]
    );
    assert_eq!(output_titles(&ws), ["Fast"]);
    let check: String = ws
        .db()
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
}

/// The unit works as written: `systemd-analyze verify` accepts it (with ExecStart pointed at the
/// binary under test, since verify checks that it exists).
#[test]
fn systemd_unit_verifies() {
    let Some(analyze) = crate::support::require_tool("systemd-analyze") else {
        return;
    };
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/systemd/tributary.service"
    ))
    .unwrap();
    assert!(unit.contains("Type=notify") && unit.contains("ExecReload=") && unit.contains("WatchdogSec="));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tributary.service");
    crate::support::write_file(
        &path,
        unit.replace("/usr/local/bin/tributary", env!("CARGO_BIN_EXE_tributary"))
            .as_bytes(),
    );
    let out = std::process::Command::new(analyze)
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // verify also reports on units the file pulls in from the host; only our unit's lines count.
    let ours: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("tributary.service"))
        .collect();
    assert!(
        out.status.success() && ours.is_empty(),
        "systemd-analyze verify:\n{stderr}"
    );
}
