//! Scenarios on big stores, filled directly with SQL in the real schema (polling millions of
//! entries would take hours): rendering outputs over 2,000,000 entries of 100,000 feeds, and
//! retention over 10,000,000.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::Utc;
use tributary::Config;
use tributary::{Retention, Store};

use super::{Row, format_duration};

/// A directory with a config of `feeds` feeds (every other one tagged `even`) and the given
/// outputs, and its store created with every feed known.
async fn setup(base: &Path, name: &str, feeds: usize, store_extra: &str, outputs: &str) -> (PathBuf, Config) {
    let dir = base.join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let mut toml = format!("[store]\npath = \"data/t.db\"\n{store_extra}\n");
    for f in 0..feeds {
        let tags = if f % 2 == 0 { "tags = [\"even\"]\n" } else { "" };
        toml.push_str(&format!(
            "[[feed]]\nurl = \"https://farm.example/{f}/feed\"\n{tags}\n"
        ));
    }
    toml.push_str(outputs);
    let path = dir.join("tributary.toml");
    std::fs::write(&path, toml).expect("config");
    let config = Config::load(&path).expect("config");
    let store = Store::open(&config.backend()).await.expect("store");
    let urls: Vec<String> = config.feeds.iter().map(|f| f.key.clone()).collect();
    store.ensure_feeds(urls, Utc::now()).await.expect("feeds");
    store.close().await;
    (dir, config)
}

/// Adds `per_feed` entries to every feed, entry `e` of feed `f` published at
/// `start + (e * feeds + f)` minutes, bodies about 600 bytes. The indexes are dropped during
/// the load and built again after, with their own definitions (a bulk load's usual order).
fn fill(db: &Path, feeds: usize, per_feed: usize, first: usize, start: i64) -> Duration {
    let started = Instant::now();
    let mut conn = rusqlite::Connection::open(db).expect("db");
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF;")
        .expect("pragmas");
    let indexes: Vec<(String, String)> = conn
        .prepare("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'entries' AND sql IS NOT NULL")
        .expect("indexes")
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("indexes")
        .collect::<Result<_, _>>()
        .expect("indexes");
    for (name, _) in &indexes {
        conn.execute_batch(&format!("DROP INDEX {name}"))
            .expect("drop index");
    }
    let ids: Vec<i64> = conn
        .prepare("SELECT id FROM feeds ORDER BY id")
        .expect("feeds")
        .query_map([], |r| r.get(0))
        .expect("feeds")
        .collect::<Result<_, _>>()
        .expect("feeds");
    let body = format!("<p>{}</p>", "lorem ipsum dolor sit amet ".repeat(22));
    let tx = conn.transaction().expect("tx");
    {
        let mut insert = tx
            .prepare(
                "INSERT INTO entries (feed_id, key, guid, link, title, content, published, updated,
                                      first_seen, content_hash, canonical_link, hidden)
                 VALUES (?1, ?2, ?2, ?3, ?4, ?5, ?6, ?6, ?6, ?7, ?3, 0)",
            )
            .expect("insert");
        for e in first..first + per_feed {
            for (f, id) in ids.iter().enumerate().take(feeds) {
                let published = start + ((e * feeds + f) as i64) * 60;
                let link = format!("https://farm.example/{f}/{e}");
                insert
                    .execute(rusqlite::params![
                        id,
                        format!("g:urn:farm:{f}:{e}"),
                        link,
                        format!("Feed {f} entry {e}"),
                        body,
                        published,
                        format!("{:016x}", published),
                    ])
                    .expect("insert");
            }
        }
    }
    tx.commit().expect("commit");
    for (_, sql) in &indexes {
        conn.execute_batch(sql).expect("create index");
    }
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE); ANALYZE;")
        .expect("checkpoint");
    started.elapsed()
}

/// Median of `runs` renders of output `n` of `config`, with its entry count.
async fn render(config: &std::sync::Arc<Config>, store: &Store, n: usize, runs: usize) -> (Duration, usize) {
    let context = std::sync::Arc::new(tributary::Context::new(config));
    let spec = &config.outputs[n];
    let mut times = Vec::new();
    let mut entries = 0;
    for _ in 0..runs {
        let started = Instant::now();
        let report = tributary::render_one(
            config,
            spec,
            store,
            &context,
            tributary::RenderOptions {
                mode: tributary::WhenEmpty::Write,
                now: chrono::Utc::now(),
                hook_owed: false,
            },
        )
        .await
        .expect("rendered");
        times.push(started.elapsed());
        entries = report.entries;
    }
    times.sort();
    (times[times.len() / 2], entries)
}

/// Outputs over 2,000,000 entries of 100,000 feeds (`quick`: 200,000 of 10,000): every feed
/// without a rule, with a loose rule, and with a rule that matches nothing; half the feeds;
/// ten feeds with a rule that matches nothing.
pub async fn render_at_scale(base: &Path, quick: bool) -> Vec<Row> {
    let (feeds, per_feed) = if quick { (10_000, 20) } else { (100_000, 20) };
    let outputs = "[[output]]\npath = \"out/all.atom\"\nlimit = 100\n\n\
                   [[output]]\npath = \"out/loose.atom\"\nlimit = 100\nexclude = [{ title = \"needle\" }]\n\n\
                   [[output]]\npath = \"out/needle.atom\"\nlimit = 100\ninclude = [{ title = \"needle\" }]\n\n\
                   [[output]]\npath = \"out/even.atom\"\nlimit = 100\ntags = [\"even\"]\n\n\
                   [[output]]\npath = \"out/few.atom\"\nlimit = 100\ninclude = [{ title = \"needle\" }]\n\
                   feeds = [\"https://farm.example/1/feed\", \"https://farm.example/2/feed\", \"https://farm.example/3/feed\", \
                   \"https://farm.example/4/feed\", \"https://farm.example/5/feed\", \"https://farm.example/6/feed\", \
                   \"https://farm.example/7/feed\", \"https://farm.example/8/feed\", \"https://farm.example/9/feed\", \
                   \"https://farm.example/10/feed\"]\n";
    let (dir, config) = setup(base, "scale", feeds, "", outputs).await;
    let config = std::sync::Arc::new(config);
    let filled = fill(&config.store.path, feeds, per_feed, 0, 1_500_000_000);
    let total = feeds * per_feed;
    let store = Store::open(&tributary::Backend::File(config.store.path.clone()))
        .await
        .expect("store");
    let scenarios = [
        (0, "every feed, no rule", "≤ 50 ms", 5),
        (1, "every feed, loose rule", "≤ 50 ms", 5),
        (2, "every feed, rule matching none", "≤ 2 s", 3),
        (3, "half the feeds, no rule", "≤ 50 ms", 5),
        (4, "10 feeds, rule matching none", "≤ 50 ms", 5),
    ];
    let mut rows = Vec::new();
    for (n, label, target, runs) in scenarios {
        let (wall, entries) = render(&config, &store, n, runs).await;
        rows.push(Row {
            scenario: format!("render {label} ({}k entries)", total / 1000),
            target: target.into(),
            wall,
            entries: entries as i64,
            note: format!("store filled in {:.0} s; median of {runs}", filled.as_secs_f64()),
            ..Row::default()
        });
    }
    store.close().await;
    let _ = std::fs::remove_dir_all(&dir);
    rows
}

fn file_size(db: &Path) -> u64 {
    let wal = db.with_extension("db-wal");
    std::fs::metadata(db).map_or(0, |m| m.len()) + std::fs::metadata(wal).map_or(0, |m| m.len())
}

/// Retention over 10,000,000 entries (`quick`: 1,000,000) of 100,000 feeds, 100 each, keeping
/// 50 per feed; then three cycles of new entries arriving and retention removing as many, to
/// show the file stops growing. Reports the longest writer step, bytes per entry and the file
/// size after each cycle.
pub async fn retention_at_scale(base: &Path, quick: bool) -> Vec<Row> {
    let (feeds, per_feed) = if quick { (10_000, 100) } else { (100_000, 100) };
    let keep = per_feed / 2;
    let (dir, config) = setup(base, "retention", feeds, &format!("keep_per_feed = {keep}\n"), "").await;
    let db = config.store.path.clone();
    let filled = fill(&db, feeds, per_feed, 0, 1_500_000_000);
    let full = file_size(&db);
    let total = feeds * per_feed;
    let store = Store::open(&tributary::Backend::File(db.clone()))
        .await
        .expect("store");
    let retention = || Retention {
        keep_days: 0,
        keep_per_feed: keep,
        protected: Default::default(),
    };
    let started = Instant::now();
    let report = tributary::housekeeping(&store, retention(), Utc::now())
        .await
        .expect("housekeeping");
    let first = started.elapsed();
    let after = file_size(&db);
    let mut rows = vec![Row {
        scenario: format!(
            "retention {}M → {}M entries",
            total / 1_000_000,
            (total - report.entries_removed) / 1_000_000
        ),
        target: "steps ≤ 100 ms".into(),
        wall: first,
        entries: report.entries_removed as i64,
        note: format!(
            "longest writer step {} ({}), {} steps; filled in {:.0} s; {:.0} → {:.0} MB ({:.0} bytes/entry kept)",
            format_duration(report.longest_step),
            report.longest_kind,
            report.steps,
            filled.as_secs_f64(),
            full as f64 / 1e6,
            after as f64 / 1e6,
            after as f64 / (total - report.entries_removed) as f64,
        ),
        ..Row::default()
    }];
    store.close().await;
    // Steady state: each cycle brings 10 new entries per feed, and retention removes 10.
    let mut sizes = Vec::new();
    let mut longest = Duration::ZERO;
    let mut longest_kind = "";
    let mut cycle_time = Duration::ZERO;
    for cycle in 0..3 {
        fill(
            &db,
            feeds,
            10,
            per_feed + cycle * 10,
            1_600_000_000 + cycle as i64 * 10_000_000,
        );
        let store = Store::open(&tributary::Backend::File(db.clone()))
            .await
            .expect("store");
        let started = Instant::now();
        let report = tributary::housekeeping(&store, retention(), Utc::now())
            .await
            .expect("housekeeping");
        cycle_time = cycle_time.max(started.elapsed());
        if report.longest_step > longest {
            longest = report.longest_step;
            longest_kind = report.longest_kind;
        }
        store.close().await;
        sizes.push(file_size(&db));
    }
    let growth =
        sizes.last().copied().unwrap_or(0) as f64 / sizes.first().copied().unwrap_or(1).max(1) as f64;
    rows.push(Row {
        scenario: format!("retention steady state, {}k/cycle", feeds * 10 / 1000),
        target: "file stops growing".into(),
        wall: cycle_time,
        note: format!(
            "sizes after each cycle {} MB (last/first {:.3}); longest writer step {} ({longest_kind})",
            sizes
                .iter()
                .map(|s| format!("{:.0}", *s as f64 / 1e6))
                .collect::<Vec<_>>()
                .join(", "),
            growth,
            format_duration(longest),
        ),
        ..Row::default()
    });
    let _ = std::fs::remove_dir_all(&dir);
    rows
}
