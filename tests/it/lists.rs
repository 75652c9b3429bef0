//! Subscription lists as deployed: `[[list]]` OPML files served on loopback, read by
//! `tributary poll` (and `feeds`, `export`, `check`): their outlines become feeds with their
//! titles and tags, a `[[feed]]` of the same URL keeps its own keys, lists nest and the include
//! that closes a loop is skipped, members that leave stop being polled and shown (and come back),
//! a list that breaks keeps its last good members, and one that shrinks by more than half is
//! held until confirmed.

use crate::support::{FeedServer, Route, Workspace, rss};

/// An OPML list: `(url, title, folder, category)` per feed, and lists it includes.
fn opml(feeds: &[(&str, &str, Option<&str>, Option<&str>)], includes: &[&str]) -> String {
    let mut body = String::new();
    for (url, title, folder, category) in feeds {
        let category = category.map(|c| format!(" category=\"{c}\"")).unwrap_or_default();
        let outline = format!("<outline type=\"rss\" text=\"{title}\" xmlUrl=\"{url}\"{category}/>");
        match folder {
            Some(folder) => body.push_str(&format!("<outline text=\"{folder}\">{outline}</outline>")),
            None => body.push_str(&outline),
        }
    }
    for url in includes {
        body.push_str(&format!(
            "<outline type=\"include\" text=\"more\" url=\"{url}\"/>"
        ));
    }
    format!(
        "<?xml version=\"1.0\"?><opml version=\"2.0\"><head><title>L</title></head><body>{body}</body></opml>"
    )
}

fn serve_feeds(server: &FeedServer, names: &[&str]) -> Vec<String> {
    names
        .iter()
        .map(|name| {
            server.set(
                &format!("/{name}.xml"),
                Route::rss(rss(
                    &format!("Feed {name}"),
                    &[(
                        Some(&format!("{name}-1")),
                        None,
                        &format!("Story of {name}"),
                        "text",
                        Some("Mon, 30 Nov 2026 10:00:00 +0000"),
                    )],
                )),
            );
            server.url(&format!("/{name}.xml"))
        })
        .collect()
}

fn opml_route(text: String) -> Route {
    Route::feed("text/x-opml", text)
}

#[tokio::test(flavor = "multi_thread")]
async fn list_outlines_become_feeds_nest_and_follow_the_list_as_it_changes() {
    let feeds = FeedServer::start_at("127.0.0.2").await;
    let lists = FeedServer::start_at("127.0.0.4").await;
    let urls = serve_feeds(&feeds, &["a", "b", "c", "d"]);
    let (a, b, c, d) = (&urls[0], &urls[1], &urls[2], &urls[3]);
    let (planet, more) = (lists.url("/planet.opml"), lists.url("/more.opml"));
    lists.set(
        "/planet.opml",
        opml_route(opml(
            &[
                (a, "A", Some("Tech"), None),
                (b, "B", None, Some("/news")),
                (c, "C from the list", None, None),
            ],
            &[&more],
        )),
    );
    // It includes the first one back: a loop, whose closing include is skipped.
    lists.set(
        "/more.opml",
        opml_route(opml(&[(d, "D", None, None)], &[&planet])),
    );
    let ws = Workspace::new();
    ws.write_config(&format!(
        "[store]\npath = \"data/t.db\"\n[poll]\nallow_networks = [\"127.0.0.0/8\"]\n\
         [[list]]\nurl = \"{planet}\"\ntags = [\"planet\"]\n\
         [[feed]]\nurl = \"{c}\"\ntitle = \"C by the config\"\n\
         [[output]]\npath = \"public/all.atom\"\n\
         [[output]]\npath = \"public/tech.atom\"\ntags = [\"Tech\"]\n\
         [[output]]\npath = \"public/planet.atom\"\ntags = [\"planet\"]\n"
    ));
    // `check` fetches nothing: a tag only the list will bring is not a mistake.
    let checked = ws.tributary(&["check"]).await;
    assert_eq!(checked.code, 0, "{checked:?}");
    assert!(
        lists.requests("/planet.opml").is_empty(),
        "check fetched the list"
    );

    let run = ws.tributary(&["poll"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stderr.contains("includes it back"), "{}", run.stderr);
    let all = std::fs::read_to_string(ws.path("public/all.atom")).unwrap();
    for name in ["a", "b", "c", "d"] {
        assert!(all.contains(&format!("Story of {name}")), "{name}: {all}");
    }
    let tech = std::fs::read_to_string(ws.path("public/tech.atom")).unwrap();
    assert!(
        tech.contains("Story of a") && !tech.contains("Story of b"),
        "{tech}"
    );
    // The list's tags go to its feeds, and to the feeds of the lists it includes.
    let planet_out = std::fs::read_to_string(ws.path("public/planet.atom")).unwrap();
    for name in ["a", "b", "c", "d"] {
        assert!(
            planet_out.contains(&format!("Story of {name}")),
            "{name}: {planet_out}"
        );
    }
    let rows = |stdout: &str| -> Vec<serde_json::Value> { serde_json::from_str(stdout).unwrap() };
    let shown = rows(&ws.tributary(&["feeds", "--json"]).await.stdout);
    let row = |rows: &[serde_json::Value], url: &str| rows.iter().find(|r| r["url"] == url).cloned();
    assert_eq!(row(&shown, a).unwrap()["list"], planet.as_str());
    assert_eq!(row(&shown, a).unwrap()["title"], "A");
    assert_eq!(row(&shown, d).unwrap()["list"], more.as_str());
    // A [[feed]] of the same URL keeps its own title and is the config's.
    assert_eq!(row(&shown, c).unwrap()["title"], "C by the config");
    assert!(row(&shown, c).unwrap()["list"].is_null());
    let text = ws.tributary(&["feeds"]).await.stdout;
    assert!(text.contains(&format!("list {planet}: 2 feeds, read")), "{text}");
    assert!(text.contains(&format!("list {more}: 1 feed, read")), "{text}");
    // A list's feed is the list's to remove.
    let removed = ws.tributary(&["remove", a]).await;
    assert_eq!(removed.code, 2, "{removed:?}");
    assert!(
        removed.stderr.contains("comes from the subscription list"),
        "{}",
        removed.stderr
    );
    // `export` writes the effective subscriptions.
    let exported = ws.tributary(&["export"]).await.stdout;
    for url in [a, b, c, d] {
        assert!(exported.contains(url.as_str()), "{url}: {exported}");
    }

    // b leaves the list, a is renamed: b is not polled nor shown; a takes its new title.
    lists.set(
        "/planet.opml",
        opml_route(opml(
            &[(a, "A renamed", Some("Tech"), None), (c, "C", None, None)],
            &[&more],
        )),
    );
    let b_polls = feeds.requests("/b.xml").len();
    let run = ws.tributary(&["poll", "--force"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        feeds.requests("/b.xml").len(),
        b_polls,
        "a feed gone from its list is not polled"
    );
    let all = std::fs::read_to_string(ws.path("public/all.atom")).unwrap();
    assert!(!all.contains("Story of b"), "{all}");
    let shown = rows(&ws.tributary(&["feeds", "--json"]).await.stdout);
    assert!(row(&shown, b).is_none());
    assert_eq!(row(&shown, a).unwrap()["title"], "A renamed");
    // b is back: polled and shown again, its history kept.
    lists.set(
        "/planet.opml",
        opml_route(opml(
            &[
                (a, "A renamed", Some("Tech"), None),
                (b, "B", None, None),
                (c, "C", None, None),
            ],
            &[&more],
        )),
    );
    let run = ws.tributary(&["poll", "--force"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(feeds.requests("/b.xml").len(), b_polls + 1);
    let all = std::fs::read_to_string(ws.path("public/all.atom")).unwrap();
    assert!(all.contains("Story of b"), "{all}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broken_list_keeps_its_members_and_a_shrunk_one_waits_for_the_operator() {
    let feeds = FeedServer::start_at("127.0.0.2").await;
    let lists = FeedServer::start_at("127.0.0.4").await;
    let names: Vec<String> = (0..10).map(|i| format!("f{i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let urls = serve_feeds(&feeds, &names);
    let members = |n: usize| -> Vec<(&str, &str, Option<&str>, Option<&str>)> {
        urls[..n].iter().map(|u| (u.as_str(), "F", None, None)).collect()
    };
    let list = lists.url("/team.opml");
    lists.set(
        "/team.opml",
        opml_route(opml(&members(10), &[])).with_etag("\"v1\""),
    );
    let ws = Workspace::new();
    ws.write_config(&format!(
        "[store]\npath = \"data/t.db\"\n[poll]\nallow_networks = [\"127.0.0.0/8\"]\n\
         [[list]]\nurl = \"{list}\"\n[[output]]\npath = \"public/all.atom\"\n"
    ));
    let run = ws.tributary(&["poll"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let count = |ws: &Workspace| {
        let ws = ws.path("tributary.toml");
        async move {
            let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_tributary"))
                .arg("--config")
                .arg(&ws)
                .args(["feeds", "--json"])
                .output()
                .await
                .unwrap();
            serde_json::from_slice::<Vec<serde_json::Value>>(&run.stdout)
                .unwrap()
                .len()
        }
    };
    assert_eq!(count(&ws).await, 10);
    // Fetched again conditionally: a 304 keeps its members.
    let run = ws.tributary(&["poll", "--force"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let asked = lists.requests("/team.opml");
    assert_eq!(asked.len(), 2);
    assert_eq!(asked[1].headers["if-none-match"], "\"v1\"");
    assert_eq!(asked[1].status, 304);
    assert_eq!(count(&ws).await, 10);

    // It breaks (a server error, then a document that is not OPML): its members stay, the
    // poll says so and exits 1, the feeds are polled all the same.
    for broken in [
        Route::status(500, "oops"),
        opml_route("<html>moved</html>".into()),
    ] {
        lists.set("/team.opml", broken);
        let polled = feeds.requests("/f0.xml").len();
        let run = ws.tributary(&["poll", "--force"]).await;
        assert_eq!(run.code, 1, "{run:?}");
        assert!(
            run.stdout.contains(&format!("failed: list {list}")),
            "{}",
            run.stdout
        );
        assert_eq!(feeds.requests("/f0.xml").len(), polled + 1);
        assert_eq!(count(&ws).await, 10);
    }
    let text = ws.tributary(&["feeds"]).await.stdout;
    assert!(
        text.contains("failing:") && text.contains("its last good members stay"),
        "{text}"
    );

    // It shrinks by 60% at once: held, the ten go on, until the operator confirms.
    lists.set("/team.opml", opml_route(opml(&members(4), &[])));
    let run = ws.tributary(&["poll", "--force"]).await;
    assert!(
        run.stdout
            .contains(&format!("held: list {list} shrank from 10 to 4")),
        "{}",
        run.stdout
    );
    assert_eq!(count(&ws).await, 10);
    let polled = feeds.requests("/f9.xml").len();
    let accepted = ws.tributary(&["feeds", "--accept-list", &list]).await;
    assert!(
        accepted.stdout.contains("its 4 members are in force"),
        "{accepted:?}"
    );
    assert_eq!(count(&ws).await, 4);
    let run = ws.tributary(&["poll", "--force"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        feeds.requests("/f9.xml").len(),
        polled,
        "confirmed gone: not polled"
    );
    // Shrinking by less than half is the list's own business.
    lists.set("/team.opml", opml_route(opml(&members(3), &[])));
    let run = ws.tributary(&["poll", "--force"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(count(&ws).await, 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_daemon_follows_a_list_on_its_schedule() {
    let feeds = FeedServer::start_at("127.0.0.2").await;
    let lists = FeedServer::start_at("127.0.0.4").await;
    let urls = serve_feeds(&feeds, &["x", "y"]);
    let list = lists.url("/l.opml");
    lists.set("/l.opml", opml_route(opml(&[(&urls[0], "X", None, None)], &[])));
    let ws = Workspace::new();
    // The list (and so its feeds) every two seconds, with the default jitter.
    ws.write_config(&format!(
        "[store]\npath = \"data/t.db\"\n[poll]\nallow_networks = [\"127.0.0.0/8\"]\n\
         [[list]]\nurl = \"{list}\"\nschedule = \"*/2 * * * * *\"\n[[output]]\npath = \"public/all.atom\"\n"
    ));
    let mut daemon = crate::support::Daemon::start(&ws.path("tributary.toml"));
    feeds.wait_for_request("/x.xml").await;
    lists.set(
        "/l.opml",
        opml_route(opml(
            &[(&urls[0], "X", None, None), (&urls[1], "Y", None, None)],
            &[],
        )),
    );
    // Read again at its next slot: the new member is polled without a reload.
    feeds.wait_for_request("/y.xml").await;
    daemon.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(daemon.exit_code().await, 0);
    let text = ws.tributary(&["feeds"]).await.stdout;
    assert!(text.contains(&format!("list {list}: 2 feeds")), "{text}");
}

/// In a cluster one node (the leader) reads a list, and every node loads the feeds it brings.
#[tokio::test(flavor = "multi_thread")]
async fn in_a_cluster_the_leader_reads_the_list_and_every_node_follows() {
    let Some(db) = crate::support::require_postgres("lists_cluster").await else {
        return;
    };
    let feeds = FeedServer::start_at("127.0.0.2").await;
    let lists = FeedServer::start_at("127.0.0.4").await;
    let urls = serve_feeds(&feeds, &["x", "y"]);
    let list = lists.url("/l.opml");
    lists.set("/l.opml", opml_route(opml(&[(&urls[0], "X", None, None)], &[])));
    let dirs: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut nodes = Vec::new();
    for (n, dir) in dirs.iter().enumerate() {
        let path = dir.path().join("tributary.toml");
        crate::support::write_file(
            &path,
            format!(
                "[store]\nurl = \"{}\"\n[node]\nname = \"node{n}\"\n\
                 [poll]\nallow_networks = [\"127.0.0.0/8\"]\nuser_agent = \"tributary-test (node{n})\"\n\
                 [serve]\nlisten = \"127.0.0.1:0\"\n\
                 [[list]]\nurl = \"{list}\"\nschedule = \"*/2 * * * * *\"\n[[output]]\npath = \"out/all.atom\"\n",
                db.url()
            )
            .as_bytes(),
        );
        nodes.push(crate::support::Daemon::start(&path));
    }
    tributary::init_tls();
    let mut admins = Vec::new();
    for node in &mut nodes {
        admins.push(node.ready_serving_both().await.1);
    }
    let polled = |path: &str| {
        let (feeds, nodes) = (&feeds, &nodes);
        let path = path.to_string();
        async move {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
            while feeds.requests(&path).is_empty() {
                assert!(
                    std::time::Instant::now() < deadline,
                    "{path} not polled:\n{}\n---\n{}",
                    nodes[0].stderr(),
                    nodes[1].stderr()
                );
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    };
    polled("/x.xml").await;
    lists.set(
        "/l.opml",
        opml_route(opml(
            &[(&urls[0], "X", None, None), (&urls[1], "Y", None, None)],
            &[],
        )),
    );
    polled("/y.xml").await;
    // Every node has the new feed in its config (its /healthz lists the feeds it knows).
    for admin in &admins {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let health = reqwest::get(format!("http://{admin}/healthz"))
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            if health.contains(urls[1].as_str()) {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{admin}: {health}");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
    for node in &nodes {
        node.signal(nix::sys::signal::Signal::SIGTERM);
    }
    for node in &mut nodes {
        assert_eq!(node.exit_code().await, 0);
    }
    // One node read the list: the same User-Agent on every fetch of it.
    let agents: std::collections::HashSet<String> = lists
        .requests("/l.opml")
        .iter()
        .map(|r| r.headers["user-agent"].to_str().unwrap().to_string())
        .collect();
    assert_eq!(agents.len(), 1, "{agents:?}");
}
