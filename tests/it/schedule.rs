//! The daemon's schedule on tokio's paused time: the real daemon loop (in-process, with the
//! real store and HTTP client) against loopback feed servers, with the defaults a user gets —
//! the default jitter included — and real cron expressions. Paused time runs days of schedule
//! in moments, and every `now` the daemon sees comes from the one clock the test drives.
//!
//! Each test checks polls against the schedule itself: for every feed, one request per slot,
//! at the slot plus the feed's jitter offset (never before, and not more than a second late).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tributary::Config;
use tributary::TokioClock;
use tributary::{Control, DaemonError, run_daemon};

use crate::support::{FeedServer, Route, Workspace, rss};

/// The longest a poll may start after its due time (the target of the soak benchmark).
const LATE: chrono::Duration = chrono::Duration::seconds(1);

/// The daemon running in this test's runtime on a clock that starts at `wall`.
pub(crate) struct Running {
    control: mpsc::Sender<Control>,
    task: tokio::task::JoinHandle<Result<(), DaemonError>>,
    wall: DateTime<Utc>,
    start: Instant,
}

impl Running {
    pub(crate) fn start(config: &Path, wall: DateTime<Utc>) -> Running {
        let clock = TokioClock::starting_at(wall);
        let (control, rx) = mpsc::channel(4);
        let path = config.to_path_buf();
        let task = tokio::spawn(async move { run_daemon(&path, rx, Arc::new(clock)).await });
        Running {
            control,
            task,
            wall,
            start: Instant::now(),
        }
    }

    /// The wall-clock time (on the daemon's clock) of a tokio instant.
    pub(crate) fn wall_at(&self, t: Instant) -> DateTime<Utc> {
        self.wall + chrono::Duration::from_std(t - self.start).unwrap()
    }

    fn now(&self) -> DateTime<Utc> {
        self.wall_at(Instant::now())
    }

    /// Lets the daemon run until its clock reads `wall`.
    pub(crate) async fn run_until(&self, wall: DateTime<Utc>) {
        let left = (wall - self.now()).to_std().unwrap_or_default();
        tokio::time::sleep(left).await;
    }

    pub(crate) async fn stop(self) {
        self.control.send(Control::Stop).await.unwrap();
        self.task.await.unwrap().unwrap();
    }
}

/// A config of `feeds` (URL, optional schedule) with every other key at its default.
fn config(ws: &Workspace, schedule: &str, feeds: &[(String, Option<&str>)]) -> std::path::PathBuf {
    let mut toml = format!("[store]\npath = \"data/t.db\"\n\n[poll]\nschedule = \"{schedule}\"\n\n");
    for (url, own) in feeds {
        toml.push_str(&format!("[[feed]]\nurl = \"{url}\"\n"));
        if let Some(own) = own {
            toml.push_str(&format!("schedule = \"{own}\"\n"));
        }
        toml.push('\n');
    }
    toml.push_str("[[output]]\npath = \"public/all.atom\"\n");
    ws.write_config(&toml)
}

fn feed(name: &str) -> Route {
    Route::rss(rss(
        name,
        &[(
            Some("1"),
            None,
            "An entry",
            "text",
            Some("Mon, 02 Mar 2026 10:00:00 +0000"),
        )],
    ))
    .with_etag(&format!("\"{name}\""))
}

/// The times each configured feed is due between `from` (its first poll, at once) and `to`,
/// from the config's own policy: every cron slot plus the feed's jitter offset.
fn expected_polls(config: &Path, url: &str, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    let config = Config::load(config).unwrap();
    let spec = config.feeds.iter().find(|f| f.url.as_str() == url).unwrap();
    let policy = tributary::Policy::of(&config, spec);
    let mut due = vec![from];
    let mut last = from;
    loop {
        let next = tributary::due(
            &policy,
            url,
            &tributary::History {
                last_fetch: Some(last),
                ..Default::default()
            },
            None,
        )
        .at
        .unwrap();
        if next > to {
            return due;
        }
        due.push(next);
        last = next;
    }
}

/// Asserts that `polls` are exactly the `expected` due times, each on time.
fn assert_on_schedule(what: &str, polls: &[DateTime<Utc>], expected: &[DateTime<Utc>]) {
    assert_eq!(
        polls.len(),
        expected.len(),
        "{what}: {} polls, {} slots\npolls: {polls:?}\nslots: {expected:?}",
        polls.len(),
        expected.len()
    );
    for (poll, due) in polls.iter().zip(expected) {
        assert!(
            *poll >= *due && *poll - *due <= LATE,
            "{what}: polled at {poll}, due at {due}\npolls: {polls:?}"
        );
    }
}

fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
}

/// One feed, `schedule = "* * * * *"`, everything else as a new user has it: polled at start,
/// then once a minute for an hour (the daemon that stopped after its second poll).
#[tokio::test(start_paused = true)]
async fn one_feed_is_polled_once_per_slot_for_an_hour() {
    let server = FeedServer::start().await;
    server.set("/a.xml", feed("a"));
    let ws = Workspace::new();
    let url = server.url("/a.xml");
    let path = config(&ws, "* * * * *", &[(url.clone(), None)]);
    let start = at(2026, 3, 2, 10, 0, 0);
    let daemon = Running::start(&path, start);
    let end = start + chrono::Duration::hours(1);
    daemon.run_until(end).await;
    let polls: Vec<_> = server
        .arrivals("/a.xml")
        .into_iter()
        .map(|t| daemon.wall_at(t))
        .collect();
    daemon.stop().await;
    assert_on_schedule("a", &polls, &expected_polls(&path, &url, polls[0], end));
    assert!(polls.len() >= 60, "{}", polls.len());
    assert!(polls[0] - start <= LATE, "a new feed is polled at once");
}

/// Forty feeds on a 6-field schedule (every 10 s), all due at the same moments: each is polled
/// once per slot, at its own offset in the jitter window, and never twice in one slot.
#[tokio::test(start_paused = true)]
async fn many_feeds_due_at_once_are_each_polled_once_per_slot() {
    let server = FeedServer::start().await;
    let ws = Workspace::new();
    let mut feeds = Vec::new();
    for i in 0..40 {
        server.set(&format!("/f{i}.xml"), feed(&format!("f{i}")));
        feeds.push((server.url(&format!("/f{i}.xml")), None));
    }
    let path = config(&ws, "*/10 * * * * *", &feeds);
    let start = at(2026, 3, 2, 10, 0, 0);
    let daemon = Running::start(&path, start);
    let end = start + chrono::Duration::minutes(5);
    daemon.run_until(end).await;
    let polls: Vec<Vec<_>> = (0..40)
        .map(|i| {
            server
                .arrivals(&format!("/f{i}.xml"))
                .into_iter()
                .map(|t| daemon.wall_at(t))
                .collect()
        })
        .collect();
    daemon.stop().await;
    for (i, p) in polls.iter().enumerate() {
        let url = &feeds[i].0;
        assert_on_schedule(url, p, &expected_polls(&path, url, p[0], end));
        // The first poll (at once, inside the 10:00:00 slot's window), then one per slot.
        assert_eq!(p.len(), 30, "{url}");
    }
}

/// A feed whose fetch takes longer than the schedule's interval holds up nobody: the others
/// keep their slots, and the slow one is never fetched twice at once; after each fetch it is
/// due at its next slot.
#[tokio::test(start_paused = true)]
async fn a_round_longer_than_the_interval_holds_up_no_other_feed() {
    let server = FeedServer::start().await;
    server.set("/fast1.xml", feed("fast1"));
    server.set("/fast2.xml", feed("fast2"));
    server.set("/slow.xml", feed("slow").delayed(Duration::from_secs(25)));
    let ws = Workspace::new();
    let urls: Vec<String> = ["/fast1.xml", "/fast2.xml", "/slow.xml"]
        .iter()
        .map(|p| server.url(p))
        .collect();
    let feeds: Vec<_> = urls.iter().map(|u| (u.clone(), None)).collect();
    let path = config(&ws, "*/10 * * * * *", &feeds);
    let start = at(2026, 3, 2, 10, 0, 0);
    let daemon = Running::start(&path, start);
    let end = start + chrono::Duration::minutes(3);
    daemon.run_until(end).await;
    let wall = |p: &str| -> Vec<_> {
        server
            .arrivals(p)
            .into_iter()
            .map(|t| daemon.wall_at(t))
            .collect()
    };
    let (fast1, fast2, slow) = (wall("/fast1.xml"), wall("/fast2.xml"), wall("/slow.xml"));
    daemon.stop().await;
    assert_on_schedule("fast1", &fast1, &expected_polls(&path, &urls[0], fast1[0], end));
    assert_on_schedule("fast2", &fast2, &expected_polls(&path, &urls[1], fast2[0], end));
    // The slow feed: each fetch starts after the one before ended (25 s), at its first slot
    // a jitter window (5 s) after that: 30 or 40 s after the last start.
    assert!(slow.len() >= 4, "{slow:?}");
    for pair in slow.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            gap >= chrono::Duration::seconds(30) && gap <= chrono::Duration::seconds(40) + LATE,
            "slow feed fetched {gap} after the last: {slow:?}"
        );
    }
}

/// A monthly schedule across month ends (January's 31 days, February's 28): polled at start,
/// then on the 1st of each month at midnight plus its offset, exactly once each.
#[tokio::test(start_paused = true)]
async fn a_monthly_schedule_crosses_month_ends() {
    let server = FeedServer::start().await;
    server.set("/m.xml", feed("m"));
    let ws = Workspace::new();
    let url = server.url("/m.xml");
    let path = config(&ws, "*/15 * * * *", &[(url.clone(), Some("0 0 1 * *"))]);
    let start = at(2026, 1, 31, 23, 50, 0);
    let daemon = Running::start(&path, start);
    let end = at(2026, 4, 2, 0, 0, 0);
    daemon.run_until(end).await;
    let polls: Vec<_> = server
        .arrivals("/m.xml")
        .into_iter()
        .map(|t| daemon.wall_at(t))
        .collect();
    daemon.stop().await;
    let expected = expected_polls(&path, &url, polls[0], end);
    assert_on_schedule("m", &polls, &expected);
    let days: Vec<String> = polls
        .iter()
        .skip(1)
        .map(|t| t.format("%m-%d %H").to_string())
        .collect();
    assert_eq!(days, ["02-01 00", "03-01 00", "04-01 00"]);
}

/// SIGHUP while a round is in flight (a slow feed being fetched): the removed feed is not
/// fetched again, the added one at once and then on its schedule, and the slow one finishes.
#[tokio::test(start_paused = true)]
async fn a_feed_added_and_removed_by_a_reload_mid_round() {
    let server = FeedServer::start().await;
    for name in ["keep", "gone", "new"] {
        server.set(&format!("/{name}.xml"), feed(name));
    }
    server.set("/slow.xml", feed("slow").delayed(Duration::from_secs(20)));
    let ws = Workspace::new();
    let url = |p: &str| (server.url(p), None);
    let path = config(
        &ws,
        "*/10 * * * * *",
        &[url("/keep.xml"), url("/gone.xml"), url("/slow.xml")],
    );
    let start = at(2026, 3, 2, 10, 0, 0);
    let daemon = Running::start(&path, start);
    daemon.run_until(start + chrono::Duration::seconds(45)).await;
    // The slow feed's second fetch is under way now (fetched at start, then at ~30 s).
    assert_eq!(server.arrivals("/slow.xml").len(), 2);
    config(
        &ws,
        "*/10 * * * * *",
        &[url("/keep.xml"), url("/slow.xml"), url("/new.xml")],
    );
    let reloaded_at = daemon.now();
    daemon.control.send(Control::Reload).await.unwrap();
    let end = start + chrono::Duration::minutes(3);
    daemon.run_until(end).await;
    let wall = |p: &str| -> Vec<_> {
        server
            .arrivals(p)
            .into_iter()
            .map(|t| daemon.wall_at(t))
            .collect()
    };
    let (keep, gone, new, slow) = (
        wall("/keep.xml"),
        wall("/gone.xml"),
        wall("/new.xml"),
        wall("/slow.xml"),
    );
    daemon.stop().await;
    assert!(
        gone.iter().all(|t| *t < reloaded_at),
        "a removed feed is not fetched after the reload: {gone:?}, reload at {reloaded_at}"
    );
    assert!(!new.is_empty() && new[0] - reloaded_at <= LATE, "added: {new:?}");
    assert_on_schedule(
        "new",
        &new,
        &expected_polls(&path, &server.url("/new.xml"), new[0], end),
    );
    assert_on_schedule(
        "keep",
        &keep,
        &expected_polls(&path, &server.url("/keep.xml"), keep[0], end),
    );
    assert!(slow.len() >= 5, "the slow feed goes on: {slow:?}");
    // The store agrees: the removed feed is off the schedule.
    let due: Option<i64> = ws
        .db()
        .query_row(
            "SELECT next_due FROM feeds WHERE url = ?1",
            [server.url("/gone.xml")],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(due, None);
}

/// An output that cannot be written (its directory is a file) is retried with backoff, and
/// the store shows it failing; once the directory can be made, it is written, although no
/// feed changed in between.
#[tokio::test(start_paused = true)]
async fn an_output_that_cannot_be_written_is_retried_until_it_is() {
    let server = FeedServer::start().await;
    server.set("/a.xml", feed("a"));
    let ws = Workspace::new();
    let path = config(&ws, "*/15 * * * *", &[(server.url("/a.xml"), None)]);
    ws.write("public", b"a file where the output directory should be");
    let start = at(2026, 3, 2, 10, 0, 0);
    let daemon = Running::start(&path, start);
    daemon.run_until(start + chrono::Duration::seconds(5)).await;
    let failing: (Option<String>, i64) = ws
        .db()
        .query_row("SELECT last_error, failures FROM outputs", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert!(
        failing.0.is_some_and(|e| e.contains("all.atom")),
        "recorded as failing"
    );
    std::fs::remove_file(ws.path("public")).unwrap();
    daemon.run_until(start + chrono::Duration::minutes(2)).await;
    let requests = server.arrivals("/a.xml").len();
    daemon.stop().await;
    assert_eq!(requests, 1, "no feed changed: the retry alone wrote it");
    let atom = std::fs::read_to_string(ws.path("public/all.atom")).expect("written after the retry");
    assert!(atom.contains("An entry"));
    let cleared: Option<String> = ws
        .db()
        .query_row("SELECT last_error FROM outputs", [], |r| r.get(0))
        .unwrap();
    assert_eq!(cleared, None);
}

/// A daemon started on an empty store does not replace an output that has entries with one
/// that has none: the file stays as it is until the first round, which writes the truth.
#[tokio::test(start_paused = true)]
async fn an_output_is_not_emptied_at_start_up() {
    let server = FeedServer::start().await;
    // The first poll takes a while (the server is slow), so start-up and the first round are
    // far apart.
    server.set("/a.xml", feed("a").delayed(Duration::from_secs(20)));
    let ws = Workspace::new();
    let path = config(&ws, "*/15 * * * *", &[(server.url("/a.xml"), None)]);
    let earlier =
        b"<?xml version=\"1.0\"?><feed xmlns=\"http://www.w3.org/2005/Atom\"><title>kept</title></feed>";
    ws.write("public/all.atom", earlier);
    let mut toml = std::fs::read_to_string(&path).unwrap();
    toml.push_str("\n[[output]]\npath = \"public/index.html\"\nformat = \"html\"\n");
    ws.write_config(&toml);
    let start = at(2026, 3, 2, 10, 0, 0);
    let daemon = Running::start(&path, start);
    daemon.run_until(start + chrono::Duration::seconds(10)).await;
    assert_eq!(
        std::fs::read(ws.path("public/all.atom")).unwrap(),
        earlier,
        "kept at start-up"
    );
    assert!(
        !ws.path("public/index.html").exists(),
        "no empty page before the first round"
    );
    daemon.run_until(start + chrono::Duration::minutes(1)).await;
    daemon.stop().await;
    let atom = std::fs::read_to_string(ws.path("public/all.atom")).unwrap();
    assert!(atom.contains("An entry"), "the first round wrote it: {atom}");
    let page = std::fs::read_to_string(ws.path("public/index.html")).unwrap();
    assert!(page.contains("An entry"));
}

/// The daemon's housekeeping removes what retention says and keeps what an output shows, as
/// its last render showed it, whatever its age or rank.
#[tokio::test(start_paused = true)]
async fn housekeeping_keeps_what_outputs_show() {
    let server = FeedServer::start().await;
    let items: Vec<(String, String)> = (1..=10)
        .map(|d| (format!("day {d}"), format!("Mon, {d:02} Feb 2026 10:00:00 +0000")))
        .collect();
    let items: Vec<_> = items
        .iter()
        .enumerate()
        .map(|(i, (title, date))| {
            (
                Some(["g1", "g2", "g3", "g4", "g5", "g6", "g7", "g8", "g9", "g10"][i]),
                None,
                title.as_str(),
                "text",
                Some(date.as_str()),
            )
        })
        .collect();
    server.set("/a.xml", Route::rss(rss("a", &items)));
    let ws = Workspace::new();
    let path = ws.write_config(&format!(
        "[store]\npath = \"data/t.db\"\nkeep_per_feed = 3\nhousekeeping = \"*/10 * * * *\"\n\n\
         [poll]\nschedule = \"0 * * * *\"\nnew_feed_entries = 100\n\n\
         [[feed]]\nurl = \"{}\"\n\n\
         [[output]]\npath = \"public/all.atom\"\ninclude = [{{ title = \"^day 1$\" }}]\n",
        server.url("/a.xml")
    ));
    let start = at(2026, 3, 2, 10, 1, 0);
    let daemon = Running::start(&path, start);
    daemon.run_until(start + chrono::Duration::minutes(5)).await;
    assert_eq!(ws.rows().len(), 10, "housekeeping has not run yet");
    daemon.run_until(start + chrono::Duration::minutes(12)).await;
    daemon.stop().await;
    let mut titles: Vec<String> = ws.rows().into_iter().map(|r| r.title).collect();
    titles.sort();
    assert_eq!(
        titles,
        ["day 1", "day 10", "day 8", "day 9"],
        "the newest 3, and the one shown"
    );
    let tombstones: i64 = ws
        .db()
        .query_row("SELECT COUNT(*) FROM tombstones", [], |r| r.get(0))
        .unwrap();
    assert_eq!(tombstones, 6);
}
