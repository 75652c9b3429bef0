//! `tributary run` as systemd runs it: the real binary, a notify socket, signals.

use nix::sys::signal::Signal;

use crate::support::{Daemon, FeedServer, Route, Workspace, rss};

const D1: &str = "Mon, 02 Mar 2026 10:00:00 +0000";
const D2: &str = "Tue, 03 Mar 2026 10:00:00 +0000";

/// A config polling `feeds` every second, every other key at its default (the jitter too: at
/// most half the period, so each feed polls within half a second of its slot).
fn fast_config(ws: &Workspace, feeds: &[String]) {
    let mut toml = String::from(
        "[store]\npath = \"data/t.db\"\n\n[poll]\nschedule = \"* * * * * *\"\ntimeout = \"5s\"\nshutdown_grace = \"2s\"\n\n",
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
    let (code, log) = daemon.exit_and_log().await;
    assert_eq!(code, 0, "{log}");
    // The start line says which build runs; the reload line names what it took.
    let started = log
        .lines()
        .find(|l| l.contains("tributary started"))
        .unwrap_or_default();
    assert!(
        started.contains(&format!("version={}", env!("CARGO_PKG_VERSION"))),
        "{started}"
    );
    let reloaded = log
        .lines()
        .find(|l| l.contains("configuration reloaded"))
        .unwrap_or_default();
    assert!(
        reloaded.contains(&format!("added=1 ({})", server.url("/b.xml"))) && reloaded.contains("removed=0"),
        "{reloaded}"
    );
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
        unit.replace("/usr/bin/tributary", env!("CARGO_BIN_EXE_tributary"))
            .as_bytes(),
    );
    // `Documentation=man:tributary(1)` is checked by asking man(1): the page the package
    // installs is the one `tributary man` prints.
    let man1 = dir.path().join("man/man1");
    std::fs::create_dir_all(&man1).unwrap();
    let page = std::process::Command::new(env!("CARGO_BIN_EXE_tributary"))
        .arg("man")
        .output()
        .unwrap();
    crate::support::write_file(&man1.join("tributary.1"), &page.stdout);
    let out = std::process::Command::new(analyze)
        .arg("verify")
        .arg(&path)
        .env("MANPATH", dir.path().join("man"))
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

/// One daemon per database: a second `run` on the same store refuses at start (exit 2),
/// naming the database and the pid holding it; the first one is unaffected.
#[tokio::test(flavor = "multi_thread")]
async fn a_second_daemon_on_the_same_database_refuses() {
    let server = FeedServer::start().await;
    server.set(
        "/a.xml",
        Route::rss(rss("a", &[(Some("a1"), None, "First", "x", Some(D1))])),
    );
    let ws = Workspace::new();
    ws.write_config(&format!(
        "[store]\npath = \"data/t.db\"\n\n[[feed]]\nurl = \"{}\"\n\n[[output]]\npath = \"public/all.atom\"\n",
        server.url("/a.xml")
    ));
    let mut first = Daemon::start(&ws.path("tributary.toml"));
    first.wait_for("READY=1").await;
    let second = ws.tributary(&["run"]).await;
    assert_eq!(second.code, 2, "{second:?}");
    let db = ws.path("data/t.db").display().to_string();
    assert!(
        second.stderr.contains(&db),
        "names the database: {}",
        second.stderr
    );
    assert!(
        second.stderr.contains(&format!("pid {}", first.pid())),
        "names the holder: {}",
        second.stderr
    );
    // The first one still answers, and stops cleanly.
    first.signal(Signal::SIGTERM);
    assert_eq!(first.exit_code().await, 0, "{}", first.stderr());
}

/// A listener that cannot be bound stops the daemon at start, naming the address and the key
/// that asked for it (the public one or the admin one).
#[tokio::test(flavor = "multi_thread")]
async fn a_taken_port_stops_the_daemon_at_start_naming_its_key() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let ws = Workspace::new();
    for (serve, key) in [
        (format!("listen = \"{addr}\""), "serve.listen"),
        (
            format!("listen = \"127.0.0.1:0\"\nadmin_listen = \"{addr}\""),
            "serve.admin_listen",
        ),
    ] {
        ws.write_config(&format!(
            "[store]\npath = \"data/t.db\"\n\n[serve]\n{serve}\n\n[[output]]\npath = \"public/all.atom\"\n"
        ));
        let run = ws.tributary(&["run"]).await;
        assert_ne!(run.code, 0, "{run:?}");
        assert!(
            run.stderr.contains(&format!("cannot listen on {addr} ({key})")),
            "{}",
            run.stderr
        );
    }
    drop(taken);
}

/// `poll` while the daemon runs is safe and does what the README says: it polls and renders
/// on its own, and the feeds it polled are rescheduled from that poll, so the daemon does not
/// poll them again in the same slot.
#[tokio::test(flavor = "multi_thread")]
async fn poll_while_the_daemon_runs_reschedules_what_it_polled() {
    let server = FeedServer::start().await;
    server.set(
        "/a.xml",
        Route::rss(rss("a", &[(Some("a1"), None, "First", "x", Some(D1))])),
    );
    let ws = Workspace::new();
    ws.write_config(&format!(
        "[store]\npath = \"data/t.db\"\n\n[poll]\nschedule = \"0 * * * *\"\n\n[[feed]]\nurl = \"{}\"\n\n\
         [[output]]\npath = \"public/all.atom\"\n",
        server.url("/a.xml")
    ));
    let mut daemon = Daemon::start(&ws.path("tributary.toml"));
    daemon.wait_for("READY=1").await;
    daemon
        .until_round(5, || server.requests("/a.xml").len() == 1)
        .await;
    let due_before: i64 = ws
        .db()
        .query_row("SELECT next_due FROM feeds", [], |r| r.get(0))
        .unwrap();
    server.set(
        "/a.xml",
        Route::rss(rss(
            "a",
            &[
                (Some("a1"), None, "First", "x", Some(D1)),
                (Some("a2"), None, "Second", "y", Some(D2)),
            ],
        )),
    );
    let poll = ws.poll().await;
    assert_eq!(poll.code, 0, "{poll:?}");
    assert!(poll.stdout.contains("1 new"), "{}", poll.stdout);
    assert_eq!(
        output_titles(&ws),
        ["Second", "First"],
        "poll renders the files itself"
    );
    let due_after: i64 = ws
        .db()
        .query_row("SELECT next_due FROM feeds", [], |r| r.get(0))
        .unwrap();
    assert!(
        due_after >= due_before,
        "rescheduled from the poll: {due_before} -> {due_after}"
    );
    daemon.signal(Signal::SIGTERM);
    assert_eq!(daemon.exit_code().await, 0, "{}", daemon.stderr());
    assert_eq!(
        server.requests("/a.xml").len(),
        2,
        "the daemon did not poll it again"
    );
}

/// The control loop never waits on long work: while an output takes long to render (a
/// template that loops 100 million times), the watchdog is pinged every second, SIGHUP
/// reloads at once, and SIGTERM stops the daemon without waiting for the render.
#[tokio::test(flavor = "multi_thread")]
async fn the_watchdog_and_signals_are_answered_while_an_output_renders_for_minutes() {
    let ws = Workspace::new();
    ws.write(
        "feeds/a.xml",
        rss("a", &[(Some("a1"), None, "First", "x", Some(D1))]).as_bytes(),
    );
    ws.write(
        "slow.html",
        b"{% for a in range(10000) %}{% for b in range(10000) %}{% endfor %}{% endfor %}<p>{{ title }}</p>",
    );
    ws.write_config(
        "[store]\npath = \"data/t.db\"\n\n[[feed]]\nurl = \"feeds/a.xml\"\n\n\
         [[output]]\npath = \"public/index.html\"\nformat = \"html\"\ntemplate = \"slow.html\"\n",
    );
    // systemd's WatchdogSec=2 (the unit's is 120 s): pings are due every second.
    let mut daemon = Daemon::start_with(&ws.path("tributary.toml"), &[("WATCHDOG_USEC", "2000000")], false);
    daemon.wait_for("READY=1").await;
    let mut last = std::time::Instant::now();
    for _ in 0..4 {
        daemon.wait_for("WATCHDOG=1").await;
        let gap = last.elapsed();
        assert!(gap < std::time::Duration::from_secs(3), "watchdog gap {gap:?}");
        last = std::time::Instant::now();
    }
    assert!(
        !ws.path("public/index.html").exists(),
        "the render is still running"
    );
    let asked = std::time::Instant::now();
    daemon.signal(Signal::SIGHUP);
    daemon.wait_for("RELOADING=1").await;
    daemon.wait_for("READY=1").await;
    assert!(
        asked.elapsed() < std::time::Duration::from_secs(3),
        "reload took {:?}",
        asked.elapsed()
    );
    let asked = std::time::Instant::now();
    daemon.signal(Signal::SIGTERM);
    daemon.wait_for("STOPPING=1").await;
    assert!(asked.elapsed() < std::time::Duration::from_secs(3));
    assert_eq!(daemon.exit_code().await, 0, "{}", daemon.stderr());
    // Stopped within the grace period (10 s), not after the render.
    assert!(
        asked.elapsed() < std::time::Duration::from_secs(15),
        "stop took {:?}",
        asked.elapsed()
    );
    assert!(!ws.path("public/index.html").exists(), "no half-written output");
}

/// Under systemd, stderr is the journal: every line carries its syslog priority, a
/// multi-line error stays one record, and a steady state (feeds unchanged, 304) logs nothing
/// at the default level.
#[tokio::test(flavor = "multi_thread")]
async fn journal_lines_carry_priorities_and_a_steady_state_is_quiet() {
    let server = FeedServer::start().await;
    server.set(
        "/a.xml",
        Route::rss(rss("a", &[(Some("a1"), None, "First", "x", Some(D1))])).with_etag("\"a\""),
    );
    let ws = Workspace::new();
    let config = |schedule: &str| {
        format!(
            "[store]\npath = \"data/t.db\"\n\n[poll]\nschedule = \"{schedule}\"\n\n[[feed]]\nurl = \"{}\"\n\n\
             [[feed]]\nurl = \"{}\"\n\n[[output]]\npath = \"public/all.atom\"\n",
            server.url("/a.xml"),
            server.url("/missing.xml"),
        )
    };
    ws.write_config(&config("* * * * * *"));
    let mut daemon = Daemon::start_with(&ws.path("tributary.toml"), &[], true);
    daemon.wait_for("READY=1").await;
    daemon
        .until_round(5, || server.requests("/a.xml").len() >= 2)
        .await;
    let settled = daemon.stderr();
    // Several more rounds of 304s (the missing feed backs off meanwhile).
    daemon
        .until_round(10, || server.requests("/a.xml").len() >= 5)
        .await;
    let steady = daemon.stderr();
    assert_eq!(
        steady[settled.len()..].trim(),
        "",
        "rounds of 304s log nothing at info:\n{steady}"
    );
    // A broken config on reload: one error record, whatever its number of problems.
    ws.write_config("[poll]\nschedule = \"every now and then\"\nconcurency = 3\n");
    daemon.signal(Signal::SIGHUP);
    daemon.wait_for("READY=1").await;
    daemon.signal(Signal::SIGTERM);
    assert_eq!(daemon.exit_code().await, 0);
    let log = daemon.stderr();
    for line in log.lines() {
        assert!(
            ["<3>", "<4>", "<6>", "<7>"].iter().any(|p| line.starts_with(p)),
            "a line without a priority: {line:?}\n{log}"
        );
    }
    let failed: Vec<&str> = log.lines().filter(|l| l.contains("fetch failed")).collect();
    assert_eq!(failed.len(), 1, "one warning per failure episode: {log}");
    assert!(
        failed[0].starts_with("<4>") && failed[0].contains("missing.xml"),
        "{}",
        failed[0]
    );
    let rejected: Vec<&str> = log.lines().filter(|l| l.contains("rejected")).collect();
    assert_eq!(rejected.len(), 1, "{log}");
    assert!(
        rejected[0].starts_with("<3>")
            && rejected[0].contains("poll.schedule")
            && rejected[0].contains("poll.concurency"),
        "both problems in one record: {}",
        rejected[0]
    );
    assert!(
        log.lines()
            .any(|l| l.starts_with("<6>") && l.contains("tributary started")),
        "{log}"
    );
}

/// systemd's STATUS line counts the feeds that are failing now, not only the last round's
/// failures: a feed backing off between rounds is still failing.
#[tokio::test(flavor = "multi_thread")]
async fn the_status_line_counts_failing_feeds() {
    let server = FeedServer::start().await;
    server.set(
        "/a.xml",
        Route::rss(rss("a", &[(Some("a1"), None, "First", "x", Some(D1))])),
    );
    server.set("/broken.xml", Route::status(500, "down"));
    let ws = Workspace::new();
    fast_config(&ws, &[server.url("/a.xml"), server.url("/broken.xml")]);
    let mut daemon = Daemon::start(&ws.path("tributary.toml"));
    daemon.wait_for("READY=1").await;
    let status = daemon.wait_for("failing").await;
    assert!(
        status.contains("STATUS=2 feeds, 1 failing; last round"),
        "{status}"
    );
    // The next rounds poll only the healthy feed (the broken one backs off for minutes): it
    // is still failing, and the line still says so.
    let status = daemon.wait_for("1 polled, 0 failed").await;
    assert!(
        status.contains("STATUS=2 feeds, 1 failing; last round"),
        "{status}"
    );
    daemon.signal(Signal::SIGTERM);
    assert_eq!(daemon.exit_code().await, 0);
}
