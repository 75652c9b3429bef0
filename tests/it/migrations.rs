//! Upgrades from every schema version ever released: `tests/fixtures/schema/vN.db` is the demo
//! config polled by the code of the last commit that wrote version N (made by
//! `tests/fixtures/schema/make`). Today's binary must open each, migrate it, and lose nothing:
//! every feed and entry kept, the database intact, and a poll of the same feeds storing no
//! entry twice.

use std::collections::BTreeMap;
use std::path::Path;

use crate::support::Workspace;

const DEMO_FEEDS: &[&str] = &[
    "river-notes.rss",
    "workshop.atom",
    "releases.json",
    "gazette-latin1.rss",
    "tenki-shift_jis.rss",
];

fn fixtures() -> Vec<(u32, std::path::PathBuf)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/schema");
    let mut found: Vec<(u32, std::path::PathBuf)> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| {
            let path = e.unwrap().path();
            let name = path.file_name()?.to_str()?.to_string();
            let version = name.strip_prefix('v')?.strip_suffix(".db")?.parse().ok()?;
            Some((version, path))
        })
        .collect();
    found.sort();
    found
}

/// Entries per feed file name, and the keys of each.
fn entries_by_feed(db: &rusqlite::Connection) -> BTreeMap<String, Vec<String>> {
    let mut stmt = db
        .prepare("SELECT f.url, e.key FROM entries e JOIN feeds f ON f.id = e.feed_id ORDER BY e.key")
        .unwrap();
    let mut by_feed: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for row in stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .unwrap()
    {
        let (url, key) = row.unwrap();
        let file = url.rsplit('/').next().unwrap().to_string();
        by_feed.entry(file).or_default().push(key);
    }
    by_feed
}

#[tokio::test(flavor = "multi_thread")]
async fn every_released_schema_upgrades_without_loss() {
    let fixtures = fixtures();
    let versions: Vec<u32> = fixtures.iter().map(|(v, _)| *v).collect();
    assert_eq!(
        versions,
        (1..=12).collect::<Vec<_>>(),
        "one fixture per released version"
    );

    // The version today's code writes, from a database it creates.
    let fresh = Workspace::new();
    fresh.write_config("[store]\npath = \"data/t.db\"\n");
    assert_eq!(fresh.poll().await.code, 0);
    let current: u32 = fresh
        .db()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert!(current > 12);

    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/demo-feeds");
    for (version, fixture) in fixtures {
        let ws = Workspace::new();
        for feed in DEMO_FEEDS {
            ws.write(
                &format!("demo-feeds/{feed}"),
                &std::fs::read(demo.join(feed)).unwrap(),
            );
        }
        ws.write("data/t.db", &std::fs::read(&fixture).unwrap());
        // The fixture's feeds were files in the directory it was made in: point their rows at
        // the same files here, as if the same installation were upgraded in place, and forget
        // the last body's hash so that the poll parses every entry again and compares it with
        // the stored ones (an identical body would be skipped whole, proving nothing).
        let here = url::Url::from_directory_path(ws.path("demo-feeds")).unwrap();
        ws.db_rw()
            .execute(
                "UPDATE feeds SET url = ?1 || substr(url, instr(url, '/demo-feeds/') + 12), body_hash = NULL",
                [here.as_str()],
            )
            .unwrap();
        let before = entries_by_feed(&ws.db());
        assert!(!before.is_empty(), "v{version}: the fixture holds entries");

        let mut toml = String::from("[store]\npath = \"data/t.db\"\n");
        for feed in DEMO_FEEDS {
            toml.push_str(&format!("[[feed]]\nurl = \"demo-feeds/{feed}\"\n"));
        }
        toml.push_str("[[output]]\npath = \"public/all.atom\"\nlimit = 100\n");
        ws.write_config(&toml);
        let run = ws.poll().await;
        assert_eq!(run.code, 0, "v{version}: {run:?}");
        assert!(
            run.stdout.contains("(0 unchanged)"),
            "v{version}: every body parsed again: {}",
            run.stdout
        );

        let db = ws.db();
        let upgraded: u32 = db.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        assert_eq!(upgraded, current, "v{version} migrated to the current schema");
        let integrity: String = db.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
        assert_eq!(integrity, "ok", "v{version}");
        let after = entries_by_feed(&db);
        for (feed, keys) in &before {
            assert_eq!(
                after.get(feed),
                Some(keys),
                "v{version}: {feed} keeps exactly its entries (none lost, none stored twice)"
            );
        }
        let output = feed_rs::parser::parse(&std::fs::read(ws.path("public/all.atom")).unwrap()[..]).unwrap();
        let shown = output.entries.len();
        let stored: usize = after.values().map(Vec::len).sum();
        assert!(
            shown > 0 && shown <= stored,
            "v{version}: {shown} shown of {stored}"
        );
    }
}
