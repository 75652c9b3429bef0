//! The store and the disk under faults: a database SQLite can only read, a full disk, corrupt
//! pages. Each is the store's failure, not a feed's: it ends a poll with status 2 and one line
//! naming the database, and the daemon never reports ready on a store it cannot write. The
//! faults that need mounts are made in a private mount namespace as root (CI); elsewhere the
//! test says it skipped.

use crate::support::{Daemon, Workspace, as_root_in_mount_namespace, as_root_in_mount_namespace_with, rss};

const BIN: &str = env!("CARGO_BIN_EXE_tributary");

fn small_config(ws: &Workspace) {
    ws.write(
        "feeds/a.xml",
        rss(
            "a",
            &[(
                Some("a1"),
                None,
                "First",
                "x",
                Some("Mon, 02 Mar 2026 10:00:00 +0000"),
            )],
        )
        .as_bytes(),
    );
    ws.write_config(
        "[store]\npath = \"data/t.db\"\n\n[[feed]]\nurl = \"feeds/a.xml\"\n\n[[output]]\npath = \"public/all.atom\"\n",
    );
}

/// A directory SQLite cannot write, still holding the `-wal` and `-shm` files of a daemon that
/// was killed: SQLite would open the database read-only without a word. `poll` and `run` exit
/// with status 2 naming the database, and `run` never says READY.
#[tokio::test(flavor = "multi_thread")]
async fn a_read_only_database_fails_at_start_naming_it() {
    let ws = Workspace::new();
    small_config(&ws);
    let mut daemon = Daemon::start(&ws.path("tributary.toml"));
    daemon.wait_for("READY=1").await;
    daemon.wait_for("last round").await;
    daemon.signal(nix::sys::signal::Signal::SIGKILL);
    let _ = daemon.exit_code().await;
    assert!(ws.path("data/t.db-wal").exists() && ws.path("data/t.db-shm").exists());
    let notify_dir = tempfile::tempdir().unwrap();
    let socket_path = notify_dir.path().join("notify.sock");
    let socket = std::os::unix::net::UnixDatagram::bind(&socket_path).unwrap();
    socket.set_nonblocking(true).unwrap();
    let data = ws.path("data").display().to_string();
    let config = ws.path("tributary.toml").display().to_string();
    let script = format!(
        "mount --bind {data} {data}\nmount -o remount,bind,ro {data}\n\
         {BIN} --config {config} poll > poll.out 2>&1 && echo poll=0 || echo poll=$?\ncat poll.out\n\
         timeout 20 {BIN} --config {config} run > run.out 2>&1 && echo run=0 || echo run=$?\ncat run.out\n"
    );
    let Some(out) = as_root_in_mount_namespace_with(
        &format!("cd {}\n{script}", notify_dir.path().display()),
        &[("NOTIFY_SOCKET", socket_path.to_str().unwrap())],
    ) else {
        return;
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    let db = ws.path("data/t.db").display().to_string();
    assert!(
        stdout.contains("poll=2") && stdout.contains("run=2"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.matches(&format!("database {db} is read-only")).count() == 2,
        "both name the database: {stdout}"
    );
    let mut buf = [0u8; 4096];
    let mut messages = Vec::new();
    while let Ok(n) = socket.recv(&mut buf) {
        messages.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    assert!(
        !messages.iter().any(|m| m.contains("READY=1")),
        "READY on a read-only store: {messages:?}"
    );
}

/// A full disk under the database is the store's failure, not 40 feeds': the poll ends with
/// status 2 and one line naming the database; nothing stored is lost, and once there is room
/// the next poll stores everything.
#[test]
fn a_full_disk_ends_the_poll_with_one_line_and_the_next_poll_resumes() {
    let ws = Workspace::new();
    let body = format!("<p>{}</p>", "full disk ".repeat(3000));
    let mut feeds = String::new();
    for f in 0..40 {
        let items: Vec<(Option<String>, String)> = (0..10)
            .map(|i| (Some(format!("{f}-{i}")), format!("Entry {i} of {f}")))
            .collect();
        let items: Vec<crate::support::Item<'_>> = items
            .iter()
            .map(|(g, t)| {
                (
                    g.as_deref(),
                    None,
                    t.as_str(),
                    body.as_str(),
                    Some("Mon, 02 Mar 2026 10:00:00 +0000"),
                )
            })
            .collect();
        ws.write(
            &format!("feeds/{f}.xml"),
            rss(&format!("f{f}"), &items).as_bytes(),
        );
        feeds.push_str(&format!("[[feed]]\nurl = \"feeds/{f}.xml\"\n\n"));
    }
    ws.write_config(&format!(
        "[store]\npath = \"data/t.db\"\n\n{feeds}[[output]]\npath = \"public/all.atom\"\n"
    ));
    std::fs::create_dir_all(ws.path("data")).unwrap();
    let data = ws.path("data").display().to_string();
    let config = ws.path("tributary.toml").display().to_string();
    let script = format!(
        "mount -t tmpfs -o size=640k tmpfs {data}\n\
         {BIN} --config {config} poll > {data}/../first.out 2>&1 && echo first=0 || echo first=$?\n\
         mount -o remount,size=64m {data}\n\
         {BIN} --config {config} poll > {data}/../second.out 2>&1 && echo second=0 || echo second=$?\n\
         {BIN} --config {config} feeds --json > {data}/../feeds.json 2>&1 || true\n"
    );
    let Some(out) = as_root_in_mount_namespace(&script) else {
        return;
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    let first = std::fs::read_to_string(ws.path("first.out")).unwrap();
    let second = std::fs::read_to_string(ws.path("second.out")).unwrap();
    assert!(stdout.contains("first=2"), "{stdout}\n{first}");
    let db = ws.path("data/t.db").display().to_string();
    let errors: Vec<&str> = first.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(errors.len(), 1, "one line for the store's failure:\n{first}");
    assert!(
        errors[0].contains(&db) && errors[0].contains("full"),
        "{}",
        errors[0]
    );
    assert!(!first.contains("failed: "), "no feed is blamed:\n{first}");
    assert!(stdout.contains("second=0"), "{stdout}\n{second}");
    assert!(second.contains("new"), "{second}");
    let feeds: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ws.path("feeds.json")).unwrap()).unwrap();
    let stored: i64 = feeds
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["entries"].as_i64().unwrap())
        .sum();
    assert_eq!(stored, 400, "every entry stored once there was room");
}

/// Corrupt pages: status 2, and the message names the database.
#[tokio::test(flavor = "multi_thread")]
async fn a_corrupt_database_is_refused_naming_it() {
    let ws = Workspace::new();
    small_config(&ws);
    assert_eq!(ws.poll().await.code, 0);
    let db = ws.path("data/t.db");
    // A clean exit checkpoints and removes the WAL, so every page is in the file scrambled
    // below (a WAL left behind would hold the pages, and hide the damage).
    assert!(!ws.path("data/t.db-wal").exists(), "a clean exit leaves no WAL");
    let mut bytes = std::fs::read(&db).unwrap();
    // Keep the header (the first page) and scramble the rest.
    for (i, b) in bytes.iter_mut().enumerate().skip(100) {
        *b = (i * 31 % 251) as u8;
    }
    crate::support::write_file(&db, &bytes);
    let run = ws.poll().await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains(&db.display().to_string()),
        "names the database: {}",
        run.stderr
    );
}
