//! The benchmark's feed farm and the poller together, small and fast: the scenarios the
//! benchmark times really store every entry (JSON Feed and ISO-8859-1 included), a warm re-poll
//! really is all 304s with nothing parsed, and rotation really adds K entries per feed.

use crate::support::farm::{self as bench_farm, FarmHandle, FarmSpec};

use crate::support::Workspace;

#[tokio::test(flavor = "multi_thread")]
async fn farm_cold_warm_and_rotation_scenarios_are_what_the_benchmark_claims() {
    let farm = FarmHandle::start(FarmSpec::new(20, 10)).await;
    let ws = Workspace::new();
    ws.write_config(&farm.config("data/t.db", 100, ""));

    let cold = ws.poll().await;
    assert_eq!(cold.code, 0, "{cold:?}");
    assert!(cold.stdout.contains("200 new"), "{}", cold.stdout);
    assert_eq!(ws.rows().len(), 200);
    assert_eq!((farm.requests(), farm.not_modified()), (20, 0));
    // Every kind of feed came through with its titles intact.
    let rows = ws.rows();
    for feed in [0, 4, 7, 9] {
        let kind = bench_farm::kind_of(feed);
        let n = rows
            .iter()
            .filter(|r| r.title.starts_with(&format!("Feed {feed} entry ")))
            .count();
        assert_eq!(n, 10, "{kind:?} feed {feed}");
    }
    assert!(
        rows.iter().any(|r| r.title.contains("café")),
        "ISO-8859-1 and UTF-8 text decoded"
    );

    farm.reset_counters();
    let warm = ws.poll().await;
    assert!(
        warm.stdout.contains("(20 unchanged)") && warm.stdout.contains("0 new"),
        "{}",
        warm.stdout
    );
    assert_eq!((farm.requests(), farm.not_modified()), (20, 20));

    farm.reset_counters();
    farm.rotate(3);
    let rotated = ws.poll().await;
    assert!(rotated.stdout.contains("60 new, 0 updated"), "{}", rotated.stdout);
    assert_eq!(ws.rows().len(), 260);
    assert_eq!(farm.not_modified(), 0);
}
