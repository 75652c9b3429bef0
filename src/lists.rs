//! Owns subscription lists (`[[list]]`): OPML files fetched on a schedule, like feeds
//! (conditional GET, Retry-After, backoff), whose outlines become feeds.
//!
//! The store keeps each list's members in force; the config is loaded with them
//! ([`with_members`]), so a list's feeds are polled, selected by outputs and shown exactly as
//! configured feeds are. A list that fails to fetch or read keeps its last good members; one
//! that shrinks by more than half at once is held (its old members stay in force) until the
//! operator confirms it (`feeds --accept-list`). Lists a list includes (`type="include"`) are
//! fetched too, as URLs from content; the config's expansion skips the include that closes a
//! loop.

use std::collections::{HashSet, VecDeque};

use chrono::{DateTime, Utc};

use crate::config::{Config, ConfigError};
use crate::fetch::{Fetched, Fetcher, Trust};
use crate::model::{FailureKind, ListMember, ListSpec, ListState, Memberships};
use crate::schedule::{self, Hints, History, Policy};
use crate::store::{Store, StoreError};

/// Most lists one refresh reads, includes included: a list that includes thousands is not a
/// subscription list.
const MAX_LISTS: usize = 200;

/// What a refresh did.
#[derive(Debug, Default)]
pub(crate) struct Refresh {
    /// Some list's members in force changed: the config is to be loaded again.
    pub(crate) changed: bool,
    /// Lists fetched (or read from a file).
    pub(crate) fetched: usize,
    /// Lists that failed, and why (they keep their last good members).
    pub(crate) failed: Vec<(String, String)>,
    /// Lists that shrank by more than half, held: (list, members in force, members fetched).
    pub(crate) held: Vec<(String, usize, usize)>,
    /// When a list is due next.
    pub(crate) next: Option<DateTime<Utc>>,
    /// What each list read (or not) holds now: what the config's lists expand to.
    pub(crate) members: Memberships,
}

/// Fetches the lists of `config` that are due (all of them with `force`), and the lists they
/// include, and records what each holds now.
pub(crate) async fn refresh(
    config: &Config,
    store: &Store,
    fetcher: &Fetcher,
    now: DateTime<Utc>,
    force: bool,
) -> Result<Refresh, StoreError> {
    let mut report = Refresh::default();
    if config.lists.is_empty() {
        return Ok(report);
    }
    let mut states: std::collections::HashMap<String, ListState> = store
        .lists()
        .await?
        .into_iter()
        .map(|l| (l.key.clone(), l))
        .collect();
    let mut queue: VecDeque<(ListSpec, Trust)> = config
        .lists
        .iter()
        .filter(|l| l.included_by.is_none())
        .map(|l| (l.clone(), Trust::Operator))
        .collect();
    let mut seen: HashSet<String> = HashSet::new();
    while let Some((list, trust)) = queue.pop_front() {
        if !seen.insert(list.key.clone()) || seen.len() > MAX_LISTS {
            continue;
        }
        let mut state = states.remove(&list.key).unwrap_or_else(|| ListState {
            key: list.key.clone(),
            ..ListState::default()
        });
        if force || state.next_due.is_none_or(|t| t <= now) {
            report.fetched += 1;
            let before = state.members.clone();
            fetch_list(config, fetcher, &list, trust, &mut state, now, &mut report).await;
            report.changed |= state.members != before;
            store.put_list(state.clone()).await?;
        }
        report.next = crate::model::earliest(report.next, state.next_due);
        report.members.insert(list.key.clone(), state.members.clone());
        for member in state.members.iter().filter(|m| m.include) {
            if let Some(url) = list.member_url(member) {
                queue.push_back((list.include(member, url), Trust::Content));
            }
        }
    }
    Ok(report)
}

/// One list's fetch, into its `state`.
async fn fetch_list(
    config: &Config,
    fetcher: &Fetcher,
    list: &ListSpec,
    trust: Trust,
    state: &mut ListState,
    now: DateTime<Utc>,
    report: &mut Refresh,
) {
    let shown = crate::model::display_url(&list.url);
    let request = crate::fetch::Request {
        url: &list.url,
        validators: &state.validators,
        headers: &[],
        trust,
        timeout: None,
        proxy: None,
    };
    let read = match fetcher.fetch(request).await {
        Ok(Fetched::NotModified { .. }) => Ok(None),
        Ok(Fetched::Modified(body)) => {
            let validators = body.validators.clone();
            let text = crate::decode::decode(body.bytes, body.content_type.as_deref()).text;
            crate::parse::opml::outlines(&text)
                .map(|members| Some((members, validators)))
                .map_err(|e| (e.to_string(), FailureKind::Parse, None))
        }
        Err(e) => Err((e.to_string(), e.kind(), e.retry_after().map(str::to_string))),
    };
    state.fetched = Some(now);
    let mut hints = Hints::default();
    match read {
        Ok(found) => {
            state.failures = 0;
            state.last_error = None;
            state.last_success = Some(now);
            if let Some((members, validators)) = found {
                state.validators = validators;
                accept_or_hold(&shown, state, members, report);
            }
        }
        Err((error, kind, retry_after)) => {
            tracing::warn!(list = %shown, %error, "subscription list not read; its last good members stay");
            state.failures += 1;
            state.last_error = Some(error.clone());
            hints.retry_after = retry_after.and_then(|r| schedule::hints::retry_after(&r, now));
            report.failed.push((shown.clone(), error));
            let history = History {
                last_fetch: Some(now),
                consecutive_failures: state.failures,
                failure: Some(kind),
                failing_since: None,
                hints,
                gone: false,
                pushed_until: None,
            };
            state.next_due = schedule::due(&policy(config, list), &list.key, &history, None).at;
            return;
        }
    }
    let history = History {
        last_fetch: Some(now),
        hints,
        ..History::default()
    };
    state.next_due = schedule::due(&policy(config, list), &list.key, &history, None).at;
}

/// Takes `members` as the list's, unless they are fewer than half of those in force: then
/// they are held for the operator to confirm.
fn accept_or_hold(shown: &str, state: &mut ListState, members: Vec<ListMember>, report: &mut Refresh) {
    if !state.members.is_empty() && members.len() * 2 < state.members.len() {
        if state.held.as_ref() != Some(&members) {
            tracing::warn!(
                list = %shown,
                in_force = state.members.len(),
                fetched = members.len(),
                "subscription list shrank by more than half at once; held until confirmed: \
                 tributary feeds --accept-list {shown}"
            );
        }
        report
            .held
            .push((shown.to_string(), state.members.len(), members.len()));
        state.held = Some(members);
        return;
    }
    state.held = None;
    state.members = members;
}

/// How a list is scheduled: its own schedule, else `[poll] schedule`, with the poll's jitter.
fn policy(config: &Config, list: &ListSpec) -> Policy {
    Policy {
        cron: list
            .schedule
            .clone()
            .unwrap_or_else(|| config.poll.schedule.clone()),
        jitter: config.poll.jitter,
        respect_hints: true,
        give_up_after: config.poll.give_up_after,
        pushed_every: None,
    }
}

/// Confirms the members held for the list at `key` (`feeds --accept-list`): how many it has
/// now; `None` when nothing was held.
pub(crate) async fn accept(store: &Store, key: &str) -> Result<Option<usize>, StoreError> {
    let Some(mut state) = store.lists().await?.into_iter().find(|l| l.key == key) else {
        return Ok(None);
    };
    let Some(held) = state.held.take() else {
        return Ok(None);
    };
    let n = held.len();
    state.members = held;
    store.put_list(state).await?;
    Ok(Some(n))
}

/// What the lists hold now, by list key.
pub(crate) async fn memberships(store: &Store) -> Result<Memberships, StoreError> {
    Ok(store
        .lists()
        .await?
        .into_iter()
        .map(|l| (l.key, l.members))
        .collect())
}

/// `config` with its lists' feeds, as the store holds them (the same config when it has no
/// lists).
pub(crate) async fn with_members(config: Config, store: &Store) -> Result<Config, WithMembersError> {
    if config.lists.is_empty() {
        return Ok(config);
    }
    let members = memberships(store).await?;
    expand(config, members).await
}

/// `config` with its lists' feeds as `members` says (what [`refresh`] just read). The file is
/// read again: what it says now is what the lists expand.
pub(crate) async fn expand(config: Config, members: Memberships) -> Result<Config, WithMembersError> {
    if config.lists.is_empty() {
        return Ok(config);
    }
    let path = config.source.clone();
    tokio::task::spawn_blocking(move || Config::load_with_lists(&path, &members))
        .await
        .map_err(|e| WithMembersError::Task(e.to_string()))?
        .map_err(WithMembersError::Config)
}

#[derive(Debug, thiserror::Error)]
pub enum WithMembersError {
    #[error("invalid configuration\n{0}")]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("internal error: {0}")]
    Task(String),
}
