use std::path::Path;

use super::feed::Failure;
use super::hosts::{HOST_PERMITS_KEPT, HostPermits};
use super::poller::{Hosts, Job};
use super::*;
use crate::fetch::FetchError;
use crate::filter;

const RSS: &str = "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>T</title>\
    <link>https://t.example/</link><description>d</description>\
    <item><guid>1</guid><title>Kept one</title><description>a</description></item>\
    <item><guid>2</guid><title>Sponsored post</title><description>b</description></item>\
    <item><guid>3</guid><title>Kept two</title><description>c</description></item>\
    </channel></rss>";

fn config(dir: &Path, toml: &str) -> Config {
    Config::parse(&dir.join("tributary.toml"), toml).unwrap()
}

/// Jobs for the config's feeds, with store ids 1, 2, …
fn jobs(config: &Config) -> Vec<Job> {
    config
        .feeds
        .iter()
        .enumerate()
        .map(|(i, spec)| {
            let state = FeedState {
                id: i as i64 + 1,
                url: spec.key.clone(),
                ..FeedState::default()
            };
            Job::new(spec.clone(), state, Policy::of(config, spec))
        })
        .collect()
}

#[test]
fn hosts_take_turns_and_never_exceed_their_limit() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(
        dir.path(),
        "[[feed]]\nurl = \"https://a.example/1\"\n[[feed]]\nurl = \"https://a.example/2\"\n\
         [[feed]]\nurl = \"https://a.example/3\"\n[[feed]]\nurl = \"https://b.example/1\"\n",
    );
    let mut hosts = Hosts::default();
    for job in jobs(&config) {
        let host = host_key(&job.target);
        hosts.push(host, job, 1, 8);
    }
    let started = |hosts: &mut Hosts| hosts.next_start().map(|(q, j)| (q, j.feed_id()));
    // One per host at a time, the hosts in turn.
    let (a, first) = started(&mut hosts).unwrap();
    let (b, second) = started(&mut hosts).unwrap();
    assert_eq!((first, second), (1, 4));
    assert_eq!(hosts.name(a), Some("a.example"));
    assert_eq!(hosts.name(b), Some("b.example"));
    assert_eq!(
        started(&mut hosts),
        None,
        "a.example is at its limit, b.example is empty"
    );
    hosts.finished(a);
    assert_eq!(started(&mut hosts), Some((a, 2)));
    // Raising the limit lets the rest of the host's queue start at once.
    hosts.set_per_host(2, 8);
    assert_eq!(started(&mut hosts), Some((a, 3)));
    assert_eq!(hosts.queued, 0);
}

#[test]
fn hosts_are_forgotten_when_nothing_is_queued_or_running() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(
        dir.path(),
        "[[feed]]\nurl = \"https://a.example/1\"\n[[feed]]\nurl = \"https://b.example/1\"\n",
    );
    let mut hosts = Hosts::default();
    for job in jobs(&config) {
        hosts.push(host_key(&job.target), job, 1, 8);
    }
    let (a, _) = hosts.next_start().unwrap();
    let (b, _) = hosts.next_start().unwrap();
    hosts.finished(a);
    assert_eq!(hosts.names.len(), 2, "b.example is still running");
    hosts.finished(b);
    assert!(
        hosts.names.is_empty() && hosts.index.is_empty(),
        "nothing left to remember"
    );
}

#[tokio::test]
async fn idle_hosts_permits_are_dropped_and_busy_ones_kept() {
    let permits = HostPermits::new(2, None);
    let held = permits.local_turn("busy.example").await.unwrap();
    for n in 0..HOST_PERMITS_KEPT * 3 {
        drop(permits.local_turn(&format!("h{n}.example")).await);
    }
    assert!(
        permits.hosts() <= HOST_PERMITS_KEPT,
        "{} hosts kept for {} seen",
        permits.hosts(),
        HOST_PERMITS_KEPT * 3
    );
    let busy = permits
        .hosts
        .lock()
        .unwrap()
        .permits
        .get("busy.example")
        .cloned()
        .unwrap();
    assert_eq!(
        busy.available_permits(),
        1,
        "a host with a turn held keeps its permits"
    );
    drop(held);
}

#[test]
fn taken_jobs_leave_their_queues() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(
        dir.path(),
        "[[feed]]\nurl = \"https://a.example/1\"\n[[feed]]\nurl = \"https://a.example/2\"\n",
    );
    let mut hosts = Hosts::default();
    for job in jobs(&config) {
        hosts.push(host_key(&job.target), job, 1, 8);
    }
    let taken = hosts.take_where(|j| j.feed_id() == 2);
    assert_eq!(taken.iter().map(Job::feed_id).collect::<Vec<_>>(), [2]);
    assert_eq!(hosts.queued, 1);
    assert_eq!(hosts.next_start().map(|(_, j)| j.feed_id()), Some(1));
    assert!(hosts.next_start().is_none());
}

#[test]
fn a_moved_feed_takes_its_credentials_only_within_its_host() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), "[[feed]]\nurl = \"https://me:pw@a.example/feed\"\n");
    let spec = &config.feeds[0];
    let target = |state: FeedState| Job::new(spec.clone(), state, Policy::of(&config, spec)).target;
    let moved = |to: &str| {
        let state = FeedState {
            moved_to: Some(to.to_string()),
            ..FeedState::default()
        };
        target(state).to_string()
    };
    assert_eq!(moved("https://a.example/new"), "https://me:pw@a.example/new");
    assert_eq!(moved("https://b.example/new"), "https://b.example/new");
    assert_eq!(target(FeedState::default()), spec.url);
}

#[test]
fn only_a_rate_limit_holds_the_whole_host() {
    let now = Utc::now();
    let status = |status, retry_after: Option<&str>| {
        Failure::Fetch(FetchError::Status {
            status,
            retry_after: retry_after.map(str::to_string),
        })
    };
    let held = status(429, Some("120")).host_penalty(now).unwrap();
    assert_eq!(held, now + chrono::Duration::seconds(120));
    assert!(status(429, None).host_penalty(now).is_some());
    assert!(status(503, Some("60")).host_penalty(now).is_some());
    for own in [status(403, None), status(404, None), status(500, None)] {
        assert_eq!(own.host_penalty(now), None, "{own}");
    }
    assert_eq!(Failure::Task("x".into()).kind(), FailureKind::Internal);
}

/// The whole spine on a local feed: new entries stored (the feed's rule applied), then a
/// second poll of the same bytes parses nothing.
#[tokio::test(flavor = "multi_thread")]
async fn a_poll_stores_what_is_new_and_an_unchanged_body_costs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    crate::output::write_if_changed(&dir.path().join("t.xml"), RSS.as_bytes()).unwrap();
    let config = config(
        dir.path(),
        "[store]\npath = \"t.db\"\n[poll]\nallow_files = true\n\
         [[feed]]\nurl = \"t.xml\"\nexclude = [{ title = \"(?i)sponsored\" }]\n",
    );
    let fetcher = Fetcher::new(&config.poll).unwrap();
    let store = Store::open(&config.backend()).await.unwrap();
    let stop = CancellationToken::new();
    let poll = || {
        poll_feeds(
            &config,
            &config.feeds,
            &fetcher,
            &store,
            &stop,
            Options::default(),
        )
    };
    let first = poll().await.unwrap();
    assert_eq!(first.feeds.len(), 1);
    match &first.feeds[0].result {
        Ok(FeedStatus::Stored(o)) => assert_eq!(o.new, 2),
        other => panic!("{other:?}"),
    }
    assert_eq!((first.new_entries(), first.excluded_entries()), (2, 1));
    // Due again at once for the test, so the second poll is not skipped.
    let id = first.feeds[0].feed_id;
    store
        .schedule(vec![(
            id,
            Scheduled {
                next_due: None,
                key: String::new(),
                lease: None,
            },
        )])
        .await
        .unwrap();
    let second = poll().await.unwrap();
    assert!(
        matches!(second.feeds[0].result, Ok(FeedStatus::Unchanged)),
        "{:?}",
        second.feeds[0].result
    );
    assert_eq!((second.new_entries(), second.updated_entries()), (0, 0));
    let candidates = store
        .candidates(crate::model::CandidateQuery {
            feeds: Some(std::sync::Arc::new([id].into_iter().collect())),
            needs: filter::Needs::default(),
            after: None,
            limit: 10,
        })
        .await
        .unwrap();
    let mut titles: Vec<String> = candidates.into_iter().map(|c| c.title).collect();
    titles.sort();
    assert_eq!(titles, ["Kept one", "Kept two"]);
    store.close().await;
}
