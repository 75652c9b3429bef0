//! Crash safety: `kill -9` at many moments of a heavy poll leaves a sound database, no
//! duplicated entry, and only whole, valid output files; the next poll completes normally.
//! And two processes on one database (a `poll` while `run` works) do not corrupt it.

use crate::support::farm::{FarmHandle, FarmSpec};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::support::{Daemon, Workspace};

const KILLS: u64 = 20;

fn outputs_config(farm: &FarmHandle) -> String {
    // Fewer fetches at once spread a poll's phases out, so kills land in all of them.
    farm.config("data/t.db", 100, "new_feed_entries = 100")
        .replace("concurrency = 64", "concurrency = 4")
        + "[[output]]\npath = \"out/all.json\"\nformat = \"json\"\n\
           [[output]]\npath = \"out/index.html\"\nformat = \"html\"\n"
}

fn assert_consistent(ws: &Workspace, moment: &str) {
    if !ws.path("data/t.db").exists() {
        // Killed before the database was created: nothing to check yet.
        return;
    }
    let db = ws.db();
    let check: String = db.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(check, "ok", "after a kill {moment}");
    let duplicates: i64 = db
        .query_row(
            "SELECT COUNT(*) FROM (SELECT feed_id, key FROM entries GROUP BY feed_id, key HAVING COUNT(*) > 1)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(duplicates, 0, "after a kill {moment}");
    // Outputs exist whole or not at all (a kill before the first render).
    if let Ok(bytes) = std::fs::read(ws.path("out/all.atom")) {
        feed_rs::parser::parse(&bytes[..])
            .unwrap_or_else(|e| panic!("all.atom torn after a kill {moment}: {e}"));
    }
    if let Ok(bytes) = std::fs::read(ws.path("out/all.json")) {
        serde_json::from_slice::<serde_json::Value>(&bytes)
            .unwrap_or_else(|e| panic!("all.json torn {moment}: {e}"));
    }
    if let Ok(page) = std::fs::read_to_string(ws.path("out/index.html")) {
        assert!(
            page.trim_end().ends_with("</html>"),
            "index.html torn after a kill {moment}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_at_any_moment_loses_nothing() {
    let farm = FarmHandle::start(FarmSpec::new(60, 20)).await;
    let ws = Workspace::new();
    ws.write_config(&outputs_config(&farm));
    for i in 0..KILLS {
        // Each run is killed after a different number of the farm's answers: early in the
        // fetches, amid parsing and storing, or (i = 19) once every feed has been served,
        // while the last writes and the outputs are being rendered.
        farm.reset_counters();
        let threshold = (i * 37) % 60 + 1;
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_tributary"))
            .arg("--config")
            .arg(ws.path("tributary.toml"))
            .arg("poll")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let pid = Pid::from_raw(child.id().unwrap() as i32);
        let last = i == KILLS - 1;
        tokio::select! {
            () = farm.wait_requests(if last { 60 } else { threshold }) => {}
            status = child.wait() => panic!("the poll ended before it was killed: {status:?}"),
        }
        assert!(
            last || child.try_wait().unwrap().is_none(),
            "killed while running"
        );
        let _ = kill(pid, Signal::SIGKILL);
        let _ = child.wait().await;
        assert_consistent(&ws, &format!("#{i} after {threshold} answers"));
        // Each run makes progress on a different subset of the feeds, and the farm serves
        // them anew (no 304s): later runs must not duplicate what earlier ones stored.
        farm.rotate(0);
    }
    let last = ws.poll().await;
    assert_eq!(last.code, 0, "{last:?}");
    assert_consistent(&ws, "after all kills, then a full poll");
    assert_eq!(ws.rows().len(), 60 * 20, "every entry stored exactly once");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_poll_while_the_daemon_runs_shares_the_database_safely() {
    let farm = FarmHandle::start(FarmSpec::new(40, 20)).await;
    let ws = Workspace::new();
    ws.write_config(&(farm.config("data/t.db", 100, "schedule = \"* * * * * *\"")));
    let mut daemon = Daemon::start(&ws.path("tributary.toml"));
    daemon.wait_for("READY=1").await;
    // A one-shot poll and the daemon's rounds, on the same database at the same time.
    let polls = futures::future::join_all((0..3).map(|_| ws.poll())).await;
    for run in polls {
        assert!(run.code == 0, "{run:?}");
    }
    daemon.wait_for("last round").await;
    daemon.signal(Signal::SIGTERM);
    assert_eq!(daemon.exit_code().await, 0);
    let check: String = ws
        .db()
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    assert_eq!(ws.rows().len(), 40 * 20);
}
