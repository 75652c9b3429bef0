//! Live sources: WebSub subscriptions and subscription lists.

use super::*;

on_both_stores!(
    subscriptions_say_until_when_a_feed_is_pushed_and_count_its_pushes,
    lists_keep_their_members_and_what_is_held,
);

async fn subscriptions_say_until_when_a_feed_is_pushed_and_count_its_pushes(store: Store) {
    use crate::model::{Subscription, SubscriptionState};
    let id = feed(&store, "https://pushed.example/feed").await;
    let due = t0() + Duration::hours(3);
    store
        .schedule(vec![(id, scheduled(Some(due), None))])
        .await
        .unwrap();
    let key = store.secret(Secret::CallbackKey).await.unwrap();
    assert_ne!(
        key,
        store.secret(Secret::ReaderSalt).await.unwrap(),
        "a secret of its own"
    );
    let mut sub = Subscription {
        feed_id: id,
        hub: "https://hub.example/".into(),
        topic: "https://pushed.example/feed".into(),
        state: SubscriptionState::Pending,
        secret: "s".repeat(32),
        nonce: "n1".into(),
        lease_until: None,
        next_attempt: Some(t0()),
        failures: 0,
        error: None,
        last_push: None,
        pushes: 0,
        rejected: 0,
    };
    store.put_subscription(sub.clone(), t0()).await.unwrap();
    assert_eq!(store.subscription(id).await.unwrap(), Some(sub.clone()));
    let state = |store: Store| async move { store.feeds_by_id(vec![id]).await.unwrap().remove(&id).unwrap() };
    assert_eq!(
        state(store.clone()).await.pushed_until,
        None,
        "pending: not pushed yet"
    );
    // Verified: pushed until the lease ends.
    sub.state = SubscriptionState::Active;
    sub.lease_until = Some(t0() + Duration::days(7));
    store.put_subscription(sub.clone(), t0()).await.unwrap();
    let pushed = state(store.clone()).await;
    assert_eq!(pushed.pushed_until, sub.lease_until);
    assert_eq!(
        pushed.next_due,
        Some(due),
        "a feed that starts being pushed keeps its due time"
    );
    // Pushes are counted; dropped ones apart.
    store
        .count_push(id, t0() + Duration::minutes(5), true)
        .await
        .unwrap();
    store
        .count_push(id, t0() + Duration::minutes(6), false)
        .await
        .unwrap();
    let counted = store.subscription(id).await.unwrap().unwrap();
    assert_eq!(
        (counted.pushes, counted.rejected, counted.last_push),
        (1, 1, Some(t0() + Duration::minutes(5)))
    );
    // Denied: no longer pushed, and due at once rather than at its stretched time.
    sub.state = SubscriptionState::Denied;
    sub.lease_until = None;
    sub.error = Some("no".into());
    let later = t0() + Duration::minutes(10);
    store.put_subscription(sub.clone(), later).await.unwrap();
    let denied = state(store.clone()).await;
    assert_eq!(denied.pushed_until, None);
    assert_eq!(denied.next_due, Some(later));
    let kept = store.subscription(id).await.unwrap().unwrap();
    assert_eq!(
        (kept.state, kept.pushes),
        (SubscriptionState::Denied, 1),
        "counts survive a rewrite"
    );
    // Forgotten.
    store.drop_subscription(id, later).await.unwrap();
    assert_eq!(store.subscription(id).await.unwrap(), None);
    assert!(store.subscriptions().await.unwrap().is_empty());
}

async fn lists_keep_their_members_and_what_is_held(store: Store) {
    use crate::model::{ListMember, ListState};
    let member = |url: &str, include: bool| ListMember {
        url: url.into(),
        title: Some("T".into()),
        site: None,
        tags: vec!["a".into(), "b c".into()],
        include,
    };
    assert!(store.lists().await.unwrap().is_empty());
    let mut list = ListState {
        key: "https://lists.example/l.opml".into(),
        validators: Validators {
            etag: Some("\"1\"".into()),
            last_modified: None,
        },
        members: vec![
            member("https://a.example/f", false),
            member("https://lists.example/m.opml", true),
        ],
        held: None,
        fetched: Some(t0()),
        last_success: Some(t0()),
        last_error: None,
        failures: 0,
        next_due: Some(t0() + Duration::hours(1)),
    };
    store.put_list(list.clone()).await.unwrap();
    assert_eq!(store.lists().await.unwrap(), [list.clone()]);
    list.held = Some(Vec::new());
    list.failures = 2;
    list.last_error = Some("HTTP 500".into());
    store.put_list(list.clone()).await.unwrap();
    assert_eq!(store.lists().await.unwrap(), [list]);
}
