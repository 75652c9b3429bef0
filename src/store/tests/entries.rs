//! Entries: storing, dating, hiding, retiring, selecting, retention, full text, languages.

use super::*;

on_both_stores!(
    entries_are_inserted_updated_in_place_and_left_alone_when_unchanged,
    dates_are_settled_once,
    a_new_feeds_back_catalogue_is_hidden_by_the_current_limit,
    retired_entries_leave_a_tombstone_and_never_come_back,
    retiring_forgets_fingerprints_and_tombstoned_items_are_not_recorded,
    candidates_come_newest_first_in_pages_whatever_the_selection,
    duplicates_by_link_and_lookups_by_what_explain_is_given,
    retention_keeps_what_outputs_show_and_leaves_tombstones,
    full_text_retries_are_recorded,
    an_entrys_language_and_its_source_are_kept,
);

async fn entries_are_inserted_updated_in_place_and_left_alone_when_unchanged(store: Store) {
    let id = feed(&store, "https://e.org/f").await;
    let mut entries = finished(vec![
        Entry {
            guid: Some("a".into()),
            title: "A".into(),
            link: Some("https://e.org/a?utm_source=x".into()),
            categories: vec![
                "rust".into(),
                "中文".into(),
                r#"a "quoted", {braced} \ NULL"#.into(),
            ],
            author: Some(crate::model::Person {
                name: "李伟".into(),
                email: Some("li.wei@zh.example".into()),
                uri: None,
            }),
            enclosures: vec![crate::model::Enclosure {
                url: "https://e.org/a.mp3".into(),
                mime_type: Some("audio/mpeg".into()),
                length: Some(1234),
            }],
            content: Some("<p>one</p>".into()),
            published: Some(t0() - Duration::days(1)),
            ..Entry::default()
        },
        Entry {
            guid: Some("b".into()),
            title: "B".into(),
            published: Some(t0() - Duration::days(2)),
            ..Entry::default()
        },
    ]);
    assert_eq!(
        store_all(&store, id, entries.clone()).await,
        StoreOutcome {
            new: 2,
            ..StoreOutcome::default()
        }
    );
    let hashes = store
        .content_hashes(id, vec!["guid:a".into(), "guid:b".into(), "guid:zz".into()])
        .await
        .unwrap();
    assert_eq!(hashes.len(), 2, "{hashes:?}");
    assert_eq!(
        store_all(&store, id, entries.clone()).await,
        StoreOutcome::default()
    );
    entries[0].entry.content = Some("<p>two</p>".into());
    entries[0].content_hash = "changed".into();
    let later = t0() + Duration::hours(1);
    let outcome = store_batch(&store, id, entries, 100, later).await;
    assert_eq!((outcome.new, outcome.updated), (0, 1));
    let stored = entries_of(&store, id).await;
    let a = &stored[0];
    assert_eq!(a.entry.title, "A");
    assert_eq!(a.entry.content.as_deref(), Some("<p>two</p>"));
    assert_eq!(
        a.entry.categories,
        ["rust", "中文", r#"a "quoted", {braced} \ NULL"#]
    );
    assert_eq!(a.entry.enclosures.len(), 1);
    assert_eq!(a.entry.enclosures[0].length, Some(1234));
    assert_eq!(a.entry.author.as_ref().map(|p| p.name.as_str()), Some("李伟"));
    assert_eq!(a.canonical_link.as_deref(), Some("https://e.org/a"));
    assert_eq!(a.published, t0() - Duration::days(1), "first date kept");
    assert_eq!(a.updated, later, "moves with the change");
    assert_eq!(a.first_seen, t0());
    let stats = store.entry_stats().await.unwrap();
    assert_eq!(
        stats["https://e.org/f"],
        EntryStats {
            count: 2,
            newest: Some(t0())
        }
    );
}

async fn dates_are_settled_once(store: Store) {
    let id = feed(&store, "https://e.org/f").await;
    let entries = finished(vec![
        Entry {
            guid: Some("undated".into()),
            title: "undated".into(),
            ..Entry::default()
        },
        Entry {
            guid: Some("future".into()),
            title: "future".into(),
            published: Some(t0() + Duration::days(30)),
            ..Entry::default()
        },
    ]);
    store_all(&store, id, entries.clone()).await;
    // A later poll of the same items moves nothing.
    store_batch(&store, id, entries, 100, t0() + Duration::days(1)).await;
    for e in entries_of(&store, id).await {
        assert_eq!(e.published, t0(), "{}: first seen, kept", e.entry.title);
    }
}

async fn a_new_feeds_back_catalogue_is_hidden_by_the_current_limit(store: Store) {
    let id = feed(&store, "https://e.org/f").await;
    let entries = finished(
        (1..=5)
            .map(|d| Entry {
                guid: Some(format!("e{d}")),
                title: format!("day {d}"),
                published: Some(t0() - Duration::days(10 - d)),
                ..Entry::default()
            })
            .collect(),
    );
    let outcome = store_batch(&store, id, entries, 2, t0()).await;
    assert_eq!((outcome.new, outcome.held_back), (5, 3));
    let titles =
        |stored: Vec<StoredEntry>| -> Vec<String> { stored.into_iter().map(|e| e.entry.title).collect() };
    assert_eq!(titles(entries_of(&store, id).await), ["day 5", "day 4"]);
    // Raising the limit lets more of the back catalogue in; applying it again costs nothing.
    assert!(store.apply_catalogue_limit(4).await.unwrap());
    assert!(!store.apply_catalogue_limit(4).await.unwrap());
    assert_eq!(
        titles(entries_of(&store, id).await),
        ["day 5", "day 4", "day 3", "day 2"]
    );
    // Entries a later poll brings are never the back catalogue.
    let new = finished(vec![Entry {
        guid: Some("later".into()),
        title: "later".into(),
        published: Some(t0() - Duration::days(20)),
        ..Entry::default()
    }]);
    assert_eq!(store_batch(&store, id, new, 0, t0()).await.held_back, 0);
}

async fn retired_entries_leave_a_tombstone_and_never_come_back(store: Store) {
    let id = feed(&store, "https://e.org/f").await;
    let entries = titled(&["a", "b"]);
    assert_eq!(store_all(&store, id, entries.clone()).await.new, 2);
    let stored = entries_of(&store, id).await;
    let a = stored.iter().find(|e| e.entry.title == "a").unwrap().id;
    assert_eq!(store.retire_entries(vec![a], t0()).await.unwrap().0, 1);
    // The feed still carries "a": it must not return as new.
    assert_eq!(store_all(&store, id, entries).await, StoreOutcome::default());
    assert_eq!(entries_of(&store, id).await.len(), 1);
    assert!(store.integrity_check().await.unwrap().is_ok());
}

/// Retiring an entry forgets the feed's item fingerprints (the next parse must read its item
/// to see the tombstone again), and a tombstoned entry's item is never recorded.
async fn retiring_forgets_fingerprints_and_tombstoned_items_are_not_recorded(store: Store) {
    let id = feed(&store, "https://e.org/f").await;
    let mut entries = titled(&["a", "b"]);
    entries[0].segment = Some(1);
    entries[1].segment = Some(2);
    store_all(&store, id, entries.clone()).await;
    assert_eq!(
        store.fingerprints(id).await.unwrap(),
        [1, 2].into_iter().collect()
    );
    let stored = entries_of(&store, id).await;
    let a = stored.iter().find(|e| e.entry.title == "a").unwrap().id;
    store.retire_entries(vec![a], t0()).await.unwrap();
    assert!(store.fingerprints(id).await.unwrap().is_empty());
    store_all(&store, id, entries).await;
    assert_eq!(store.fingerprints(id).await.unwrap(), [2].into_iter().collect());
}

/// Pages of any size, for every feed, a few feeds (merged per feed) or many (a walk of the
/// date index), give the same entries in the same order as one long page.
async fn candidates_come_newest_first_in_pages_whatever_the_selection(store: Store) {
    let urls: Vec<String> = (0..300).map(|i| format!("https://e.org/{i}")).collect();
    let feeds = store.ensure_feeds(urls, t0()).await.unwrap();
    for (i, f) in feeds.iter().enumerate().take(6) {
        let entries = finished(
            (0..7)
                .map(|j| Entry {
                    guid: Some(format!("{i}-{j}")),
                    title: format!("{i}-{j}"),
                    // Some share a second, so ids break ties.
                    published: Some(t0() - Duration::minutes((j * 6 + i) as i64 / 2)),
                    ..Entry::default()
                })
                .collect(),
        );
        store_all(&store, f.id, entries).await;
    }
    let everything = all_candidates(&store, None, 1000).await;
    assert_eq!(everything.len(), 42);
    assert!(
        everything.windows(2).all(|w| w[0].cursor() > w[1].cursor()),
        "newest first, ids breaking ties"
    );
    for page in [1, 5, 64] {
        let paged = all_candidates(&store, None, page).await;
        assert_eq!(
            paged.iter().map(|c| c.id).collect::<Vec<_>>(),
            everything.iter().map(|c| c.id).collect::<Vec<_>>(),
            "page of {page}"
        );
    }
    let few: Vec<i64> = vec![feeds[1].id, feeds[4].id];
    let expected: Vec<i64> = everything
        .iter()
        .filter(|c| few.contains(&c.feed_id))
        .map(|c| c.id)
        .collect();
    for page in [1, 3, 100] {
        let got: Vec<i64> = all_candidates(&store, Some(few.clone()), page)
            .await
            .iter()
            .map(|c| c.id)
            .collect();
        assert_eq!(got, expected, "a few feeds, page of {page}");
    }
    // Many feeds: every feed but the first.
    let many: Vec<i64> = feeds.iter().skip(1).map(|f| f.id).collect();
    let expected: Vec<i64> = everything
        .iter()
        .filter(|c| c.feed_id != feeds[0].id)
        .map(|c| c.id)
        .collect();
    for page in [4, 100] {
        let got: Vec<i64> = all_candidates(&store, Some(many.clone()), page)
            .await
            .iter()
            .map(|c| c.id)
            .collect();
        assert_eq!(got, expected, "many feeds, page of {page}");
    }
}

async fn duplicates_by_link_and_lookups_by_what_explain_is_given(store: Store) {
    let a = feed(&store, "https://a.example/feed").await;
    let b = feed(&store, "https://b.example/feed").await;
    let story = |guid: &str, title: &str| Entry {
        guid: Some(guid.into()),
        title: title.into(),
        link: Some("https://news.example/s?utm_medium=rss".into()),
        ..Entry::default()
    };
    store_all(&store, a, finished(vec![story("a-1", "Shared story")])).await;
    store_batch(
        &store,
        b,
        finished(vec![story("b-1", "Shared, B")]),
        100,
        t0() + Duration::hours(1),
    )
    .await;
    let group = store
        .entries_with_links(vec![
            "https://news.example/s".into(),
            "https://none.example/".into(),
        ])
        .await
        .unwrap();
    assert_eq!(
        group.iter().map(|e| e.feed_id).collect::<Vec<_>>(),
        [a, b],
        "first seen first"
    );
    let by_link = store
        .entries_matching(
            "https://news.example/s?utm_medium=rss".into(),
            "https://news.example/s".into(),
        )
        .await
        .unwrap();
    assert_eq!(by_link.len(), 2);
    let by_title = store
        .entries_matching("shared story".into(), "shared story".into())
        .await
        .unwrap();
    assert_eq!(by_title.len(), 1);
    let keys: HashMap<i64, (String, String)> = store
        .entry_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|(id, url, key)| (id, (url, key)))
        .collect();
    assert_eq!(
        keys[&by_title[0].id],
        ("https://a.example/feed".into(), "guid:a-1".into())
    );
}

async fn retention_keeps_what_outputs_show_and_leaves_tombstones(store: Store) {
    let id = feed(&store, "https://e.org/f").await;
    let ten_days = || {
        finished(
            (1..=10)
                .map(|d| Entry {
                    guid: Some(format!("e{d}")),
                    title: format!("day {d}"),
                    published: Some(day(d)),
                    ..Entry::default()
                })
                .collect(),
        )
    };
    store_batch(&store, id, ten_days(), 100, day(20)).await;
    // Keep 5 days (from Jan 20: entries of Jan 15+ survive by age), at most 3 per feed, but
    // outputs show the newest 4.
    let shown: HashSet<i64> = entries_of(&store, id)
        .await
        .iter()
        .take(4)
        .map(|e| e.id)
        .collect();
    let retention = Retention {
        keep_days: 5,
        keep_per_feed: 3,
        protected: shown,
    };
    let report = housekeeping(&store, retention, day(20)).await.unwrap();
    assert_eq!(report.entries_removed, 6);
    let titles: Vec<String> = entries_of(&store, id)
        .await
        .into_iter()
        .map(|e| e.entry.title)
        .collect();
    assert_eq!(titles, ["day 10", "day 9", "day 8", "day 7"]);
    // The removed entries are still in the feed: they do not come back.
    assert_eq!(store_batch(&store, id, ten_days(), 100, day(21)).await.new, 0);
    // Tombstones not seen since a time go (housekeeping: for 90 days).
    assert_eq!(
        store.expire_tombstones(day(21), 100).await.unwrap().0,
        0,
        "seen on Jan 21"
    );
    assert_eq!(
        store.expire_tombstones(day(22), 4).await.unwrap().0,
        4,
        "in batches"
    );
    assert_eq!(store.expire_tombstones(day(22), 4).await.unwrap().0, 2);
    assert!(store.integrity_check().await.unwrap().is_ok());
}

async fn full_text_retries_are_recorded(store: Store) {
    let id = feed(&store, "https://e.org/f").await;
    let mut entries = finished(vec![
        Entry {
            guid: Some("a".into()),
            title: "a".into(),
            link: Some("https://e.org/a".into()),
            content: Some("<p>the feed's</p>".into()),
            ..Entry::default()
        },
        Entry {
            guid: Some("b".into()),
            title: "b".into(),
            link: Some("https://e.org/b".into()),
            ..Entry::default()
        },
    ]);
    for e in &mut entries {
        e.entry.full_text = FullText::Failed {
            error: "HTTP 503".into(),
            tries: 1,
        };
    }
    store_all(&store, id, entries).await;
    assert!(
        store.full_text_retries(id, t0()).await.unwrap().is_empty(),
        "not before a later poll"
    );
    let due = store
        .full_text_retries(id, t0() + Duration::seconds(1))
        .await
        .unwrap();
    assert_eq!(due.len(), 2);
    let later = t0() + Duration::minutes(5);
    store
        .record_full_text(
            vec![
                (due[0].0, Ok("<p>the article</p>".into())),
                (due[1].0, Err("still 503".into())),
            ],
            later,
        )
        .await
        .unwrap();
    let stored = store.entries(vec![due[0].0, due[1].0]).await.unwrap();
    let a = stored.iter().find(|e| e.id == due[0].0).unwrap();
    assert_eq!(a.entry.content.as_deref(), Some("<p>the article</p>"));
    assert_eq!(a.entry.summary.as_deref(), Some("<p>the feed's</p>"));
    assert_eq!(a.entry.full_text, FullText::Page);
    let b = stored.iter().find(|e| e.id == due[1].0).unwrap();
    assert!(
        matches!(&b.entry.full_text, FullText::Failed { tries: 2, .. }),
        "{:?}",
        b.entry.full_text
    );
    assert!(
        store
            .full_text_retries(id, later + Duration::hours(1))
            .await
            .unwrap()
            .is_empty(),
        "two tries at most"
    );
}

async fn an_entrys_language_and_its_source_are_kept(store: Store) {
    use crate::model::{Language, LanguageSource};
    let id = feed(&store, "https://e.org/f").await;
    let said = |tag: &str, source| {
        Some(Language {
            tag: tag.into(),
            source,
        })
    };
    let mut entries = finished(vec![
        Entry {
            guid: Some("zh".into()),
            title: "国务院常务会议研究部署进一步推动经济发展的政策措施".into(),
            published: Some(t0() - Duration::hours(1)),
            ..Entry::default()
        },
        Entry {
            guid: Some("ok".into()),
            title: "ok".into(),
            published: Some(t0() - Duration::hours(2)),
            ..Entry::default()
        },
    ]);
    // Detected from the text when nobody said; unknown when the text is too short to tell.
    assert_eq!(
        entries[0].entry.language,
        said("zh-Hans", LanguageSource::Detected)
    );
    assert_eq!(entries[1].entry.language, None);
    entries[1].entry.language = said("pt-BR", LanguageSource::Config);
    store_all(&store, id, entries.clone()).await;
    let stored = store.entries(vec![1, 2]).await.unwrap();
    let by_key = |key: &str| stored.iter().find(|e| e.key.as_str().ends_with(key)).unwrap();
    assert_eq!(
        by_key("zh").entry.language,
        said("zh-Hans", LanguageSource::Detected)
    );
    assert_eq!(by_key("ok").entry.language, said("pt-BR", LanguageSource::Config));
    let candidates = store
        .candidates(CandidateQuery {
            feeds: None,
            needs: Needs::default(),
            after: None,
            limit: 10,
        })
        .await
        .unwrap();
    let tags: Vec<Option<&str>> = candidates.iter().map(|c| c.language.as_deref()).collect();
    assert_eq!(tags, [Some("zh-Hans"), Some("pt-BR")]);
    // A changed entry takes its new language.
    entries[1].entry.language = said("pt", LanguageSource::Feed);
    entries[1].content_hash = "changed".into();
    store_all(&store, id, entries).await;
    let stored = store.entries(vec![2]).await.unwrap();
    assert_eq!(stored[0].entry.language, said("pt", LanguageSource::Feed));
}
