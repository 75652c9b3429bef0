//! One feed's poll, stage by stage: fetch → decode → parse → dedupe → compare with the store →
//! content → filter → store, and the record of how it went.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use url::Url;

use super::hosts::{HostDelays, HostPermits, Turn, hold_host, host_penalty};
use super::icons::{IconHints, IconLook};
use super::pages::{full_text, retry_full_text};
use super::poller::{Job, skipped_feed};
use super::{FeedFailure, FeedReport, FeedStatus, next_due};
use crate::content::full_text::ArticleError;
use crate::content::icon;
use crate::decode;
use crate::dedupe;
use crate::fetch::{self, Caching, FetchError, Fetched, Fetcher};
use crate::filter::{self, Fields};
use crate::model::{
    FailureKind, FeedRhythm, FeedSpec, FeedState, FeedUpdate, Keyed, KeyedEntry, ParsedBatch, Repair,
    Validators, host_key, without_credentials,
};
use crate::parse::{self, Fingerprints, ParsedEntry, ParsedFeed};
use crate::schedule::{self, Clock, Hints, History, hints};
use crate::store::{Store, StoreError};

/// What every feed's poll shares.
#[derive(Clone)]
pub(super) struct Context {
    pub(super) fetcher: Fetcher,
    pub(super) store: Store,
    pub(super) clock: Arc<dyn Clock>,
    /// Bounds the CPU-bound steps to one per core.
    pub(super) parsing: Arc<Semaphore>,
    pub(super) new_feed_entries: usize,
    /// The config's fingerprint, recorded with a feed found gone.
    pub(super) fingerprint: String,
    /// Requests in flight per host, feeds' and their entries' pages alike.
    pub(super) requests: Arc<HostPermits>,
    /// How many of a feed's pages are fetched at once (`poll.concurrency`).
    pub(super) concurrency: usize,
    /// Hosts that asked everyone to wait, for feeds and pages alike.
    pub(super) delays: Arc<HostDelays>,
    /// Where a feed's poll says its content is ready (see
    /// [`Poller::content_ready`](super::Poller::content_ready)).
    pub(super) ready: tokio::sync::mpsc::UnboundedSender<tokio::task::Id>,
    /// Whether feeds' icons are looked for (`poll.icons`).
    pub(super) icons: bool,
    /// The User-Agent each feed is fetched with when it tells its readers
    /// (`poll.announce_readers`), by feed key.
    pub(super) announced: Arc<std::sync::RwLock<HashMap<String, String>>>,
}

/// Polls one feed and records the outcome with the feed's next due time. `host_delay` is its
/// host's standing wait, if any (a `--force` poll can run under one). A push is the body a
/// fetch would have brought: the same stages run on it, the fetch skipped.
pub(super) async fn poll_one(
    job: Job,
    host_delay: Option<DateTime<Utc>>,
    context: &Context,
    pushed: Option<fetch::Body>,
) -> Result<FeedReport, StoreError> {
    let started = Instant::now();
    let began = context.clock.now();
    let was_pushed = pushed.is_some();
    let fetched = match pushed {
        Some(body) => Ok(Fetched::Modified(body)),
        None => match fetch_feed(&job, host_delay, context).await? {
            Fetch::Done(fetched) => fetched,
            Fetch::HostWaits(skipped) => return Ok(skipped),
        },
    };
    // The Link headers name the hub before the document does (W3C WebSub §4).
    let header_push = match &fetched {
        Ok(Fetched::Modified(body)) if !was_pushed => Some(body.push.as_deref().cloned().unwrap_or_default()),
        _ => None,
    };
    let outcome = match fetched {
        Ok(fetched) => {
            if !was_pushed {
                note_redirect(
                    &context.store,
                    job.state.id,
                    &job.shown,
                    fetched.moved(),
                    &job.state,
                )
                .await?;
            }
            read_new(fetched, &job.spec, &job.state, &context.store, &context.parsing).await
        }
        Err(e) => Err(e.into()),
    };
    let outcome = match outcome {
        Ok(Outcome::Parsed(parsed)) => content(*parsed, &job, context)
            .await
            .map(|p| Outcome::Parsed(Box::new(p))),
        other => other,
    };
    // Fetched and parsed, the content finished: the rest is the store's, and this feed's
    // place in the budget goes to the next one.
    let _ = context.ready.send(tokio::task::id());
    let recorded = record(outcome, &job, host_delay, context, was_pushed, header_push).await?;
    if job.spec.full_text && recorded.result.is_ok() {
        retry_full_text(job.state.id, began, &job.spec, context).await?;
    }
    Ok(report(job, recorded, started.elapsed(), context))
}

/// What the fetch stage came to (made once a poll and taken apart at once, so its size does
/// not matter).
#[allow(clippy::large_enum_variant)]
enum Fetch {
    /// The response, or why there was none.
    Done(Result<Fetched, FetchError>),
    /// Its host asked everyone to wait while the feed waited for its turn: not fetched, and
    /// due again when the wait ends.
    HostWaits(FeedReport),
}

/// The fetch stage: the feed's request (with its readers in the User-Agent when it tells
/// them), made in its host's turn unless the host asked to wait meanwhile.
async fn fetch_feed(
    job: &Job,
    host_delay: Option<DateTime<Utc>>,
    context: &Context,
) -> Result<Fetch, StoreError> {
    let Job {
        spec,
        state,
        target,
        policy,
        shown,
    } = job;
    // The readers of its outputs, told in the User-Agent (unless the feed sets its own).
    let announced: Option<Vec<(String, String)>> = context
        .announced
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .get(&spec.key)
        .filter(|_| {
            !spec
                .headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case("user-agent"))
        })
        .map(|agent| {
            let mut headers = spec.headers.clone();
            headers.push(("User-Agent".to_string(), agent.clone()));
            headers
        });
    let request = fetch::Request {
        url: target,
        validators: &state.validators,
        headers: announced.as_deref().unwrap_or(&spec.headers),
        // A list's member is a URL from content; the operator wrote the others.
        trust: match spec.list {
            Some(_) => fetch::Trust::Content,
            None => fetch::Trust::Operator,
        },
        timeout: spec.timeout,
        proxy: spec.proxy.as_ref(),
    };
    let (turn, waits) = turn_at(context, host_key(target).as_deref()).await;
    let asked_to_wait = waits.filter(|_| host_delay.is_none());
    if let Some(until) = asked_to_wait {
        drop(turn);
        let history = History::from(state);
        let (scheduled, hold) = next_due(policy, &spec.key, &history, Some(until), state.lease_epoch);
        let at = scheduled.next_due;
        context.store.schedule(vec![(state.id, scheduled)]).await?;
        let reason = hold.map_or_else(|| "its host asked to wait".to_string(), |h| h.to_string());
        let skipped = skipped_feed(state, shown.clone(), reason, at);
        return Ok(Fetch::HostWaits(skipped));
    }
    let fetched = context.fetcher.fetch(request).await;
    drop(turn);
    Ok(Fetch::Done(fetched))
}

/// The content stage, on what is new or changed: sanitized (Tributary's safe subset, the
/// feed's rewrites, each entry's language), the articles' pages read for `full_text` feeds,
/// then judged by the feed's rules, which see what will be stored.
async fn content(mut parsed: Parsed, job: &Job, context: &Context) -> Result<Parsed, Failure> {
    let read = std::mem::take(&mut parsed.read);
    // A changed body whose entries are all stored unchanged (a re-stamped date, a new
    // channel element) has no content to finish: no trip to the blocking pool.
    if read.is_empty() {
        return Ok(parsed);
    }
    let rewrite = job.spec.rewrite.clone();
    let mut languages = crate::content::Languages {
        configured: job.spec.lang.clone(),
        declared: parsed.feed.meta.language.clone(),
        ..Default::default()
    };
    let task = |e: &dyn std::fmt::Display| Failure::Task(e.to_string());
    let permit = context.parsing.acquire().await.map_err(|e| task(&e))?;
    parsed.entries = tokio::task::spawn_blocking(move || {
        let mut sanitizer = crate::content::Sanitizer::new();
        read.into_iter()
            .map(|k| crate::content::finish(k, &rewrite, &mut languages, &mut sanitizer))
            .collect()
    })
    .await
    .map_err(|e| task(&e))?;
    drop(permit);
    if job.spec.full_text {
        // A new feed's back catalogue is stored out of sight: its pages are not read.
        let first_poll = job.state.last_success.is_none();
        let limit = context.new_feed_entries;
        full_text(
            &mut parsed.entries,
            first_poll.then_some(limit),
            &job.spec,
            context,
        )
        .await?;
    }
    judge(&mut parsed, &job.spec.rules, &context.parsing).await?;
    Ok(parsed)
}

/// What the store stage recorded, and what the report says of it.
struct Recorded {
    result: Result<FeedStatus, FeedFailure>,
    next_due: Option<DateTime<Utc>>,
    /// Failures in a row, this poll counted.
    failures: u32,
    /// The feed has failed for `poll.give_up_after`.
    abandoned: bool,
    /// Repairs this document needed that the last one did not.
    newly_repaired: Vec<Repair>,
    /// What this poll's document says about the feed's icon, for the look after the record.
    declared: IconHints,
    /// The hub and topic this poll found, for the WebSub pass.
    push: Option<fetch::PushLinks>,
}

/// The store stage: the poll's outcome recorded with the feed's next due time, in one commit.
async fn record(
    outcome: Result<Outcome, Failure>,
    job: &Job,
    host_delay: Option<DateTime<Utc>>,
    context: &Context,
    was_pushed: bool,
    header_push: Option<fetch::PushLinks>,
) -> Result<Recorded, StoreError> {
    let Job {
        spec,
        state,
        target,
        policy,
        shown,
    } = job;
    let store = &context.store;
    let feed_id = state.id;
    let now = context.clock.now();
    let key = spec.key.as_str();
    // What the schedule will know once this poll is recorded.
    let mut after = History {
        last_fetch: Some(now),
        consecutive_failures: 0,
        failure: None,
        failing_since: None,
        hints: Hints {
            retry_after: None,
            fresh_until: None,
            skip: state.hints.skip,
        },
        gone: false,
        pushed_until: state.pushed_until,
    };
    let stored_rhythm = FeedRhythm {
        ttl: state.rhythm,
        ..FeedRhythm::default()
    };
    let scheduled = |after: &History, host_delay: Option<DateTime<Utc>>| {
        next_due(policy, key, after, host_delay, state.lease_epoch).0
    };
    let mut abandoned = false;
    let mut newly_repaired = Vec::new();
    let mut declared = IconHints::default();
    let mut push = None;
    let (result, next_due) = match outcome {
        Ok(Outcome::NotModified(caching)) => {
            after.hints.fresh_until = fresh_until(&caching, &stored_rhythm, now);
            let update = FeedUpdate::Unchanged {
                validators: None,
                fresh_until: after.hints.fresh_until,
            };
            let scheduled = scheduled(&after, host_delay);
            let next_due = scheduled.next_due;
            store.record_poll(feed_id, update, scheduled, now).await?;
            (Ok(FeedStatus::NotModified), next_due)
        }
        Ok(Outcome::Unchanged(validators, caching)) => {
            after.hints.fresh_until = fresh_until(&caching, &stored_rhythm, now);
            let update = FeedUpdate::Unchanged {
                validators: Some(validators),
                fresh_until: after.hints.fresh_until,
            };
            let scheduled = scheduled(&after, host_delay);
            let next_due = scheduled.next_due;
            store.record_poll(feed_id, update, scheduled, now).await?;
            (Ok(FeedStatus::Unchanged), next_due)
        }
        Ok(Outcome::Parsed(parsed)) => {
            let meta = &parsed.feed.meta;
            if !meta.repairs.is_empty() && meta.repairs != state.repairs {
                newly_repaired = meta.repairs.clone();
            }
            declared = IconHints {
                icon: meta.icon.clone(),
                logo: meta.logo.clone(),
                site: meta.site_url.clone(),
            };
            push = header_push.map(|headers| {
                let named = |u: &Option<String>| u.as_deref().and_then(|u| Url::parse(u).ok());
                let hub = headers.hub.or_else(|| named(&meta.hub));
                // A hub without a self link: the topic is the address the feed is fetched at.
                let topic = headers
                    .topic
                    .or_else(|| named(&meta.topic))
                    .or_else(|| hub.as_ref().map(|_| target.clone()));
                fetch::PushLinks { hub, topic }
            });
            let fresh = fresh_until(&parsed.caching, &meta.rhythm, now);
            after.hints.fresh_until = fresh;
            after.hints.skip = meta.rhythm.skip;
            let scheduled = scheduled(&after, host_delay);
            let next_due = scheduled.next_due;
            let excluded = parsed.excluded;
            let Parsed {
                feed,
                entries,
                unchanged_segments,
                validators,
                body_hash,
                ..
            } = *parsed;
            let batch = ParsedBatch {
                meta: feed.meta,
                // A push has no validators of its own: the next poll asks as the last one did.
                validators,
                pushed: was_pushed,
                body_hash,
                entries,
                fresh_until: fresh,
                new_feed_entries: context.new_feed_entries,
                unchanged_segments,
                scheduled,
            };
            let mut outcome = store.store_parsed(feed_id, batch, now).await?;
            outcome.excluded = excluded;
            (Ok(FeedStatus::Stored(outcome)), next_due)
        }
        Err(Failure::Store(e)) => return Err(e),
        // A push that cannot be read is dropped: it says nothing of the feed, whose polls go on
        // as they were (no failure counted, no backoff).
        Err(failure) if was_pushed => {
            after.consecutive_failures = state.consecutive_failures;
            let failure = FeedFailure {
                kind: failure.kind(),
                message: failure.to_string(),
            };
            (Err(failure), state.next_due)
        }
        Err(failure) => {
            let error = failure.to_string();
            let kind = failure.kind();
            tracing::debug!(feed = %shown, %error, %kind, "poll failed");
            after.consecutive_failures = state.consecutive_failures + 1;
            after.failure = Some(kind);
            after.failing_since = Some(state.failing_since.unwrap_or(now));
            after.hints.retry_after = failure.retry_after(now);
            after.hints.fresh_until = state.hints.fresh_until;
            after.gone = kind == FailureKind::Gone;
            let mut host_delay = host_delay;
            if let (Some(host), Some(until)) = (host_key(target), failure.host_penalty(now)) {
                host_delay = Some(host_delay.map_or(until, |d| d.max(until)));
                hold_host(context, host, until, error.clone()).await?;
            }
            abandoned = schedule::abandoned(policy, &after, now);
            let update = FeedUpdate::Failed {
                error: error.clone(),
                kind,
                retry_after: after.hints.retry_after,
                gone: after.gone.then(|| context.fingerprint.clone()),
                abandoned,
            };
            let scheduled = scheduled(&after, host_delay);
            let next_due = scheduled.next_due;
            store.record_poll(feed_id, update, scheduled, now).await?;
            (Err(FeedFailure { kind, message: error }), next_due)
        }
    };
    Ok(Recorded {
        result,
        next_due,
        failures: after.consecutive_failures,
        abandoned,
        newly_repaired,
        declared,
        push,
    })
}

/// The feed's report, with its icon look when one is due.
fn report(job: Job, recorded: Recorded, elapsed: std::time::Duration, context: &Context) -> FeedReport {
    let Job {
        spec,
        state,
        target,
        shown,
        ..
    } = job;
    let ok = recorded.result.is_ok();
    // The icon is looked for after the round: it waits for nothing, and a cold round's
    // memory is its feeds' bodies, not their icons'.
    let icon_look =
        (context.icons && ok && icon::due(state.icon_due, context.clock.now())).then(|| IconLook {
            feed_id: state.id,
            hints: recorded.declared,
            site: state.site_url.clone(),
            looked_before: state.icon_due.is_some(),
            target,
            proxy: spec.proxy.clone(),
            shown: shown.clone(),
        });
    FeedReport {
        recovered_after: if ok { state.consecutive_failures } else { 0 },
        newly_repaired: recorded.newly_repaired,
        elapsed,
        feed_id: state.id,
        url: shown,
        result: recorded.result,
        failures: recorded.failures,
        last_error: None,
        next_due: recorded.next_due,
        abandoned: recorded.abandoned && state.abandoned_at.is_none(),
        icon_look,
        push: recorded.push,
    }
}

/// The feed's rules judge each new or changed entry as it will be stored (its content
/// finished, full text included) and as output rules will see it: an excluded entry is never
/// kept. Content rules read bodies as plain text, which is CPU work: on the blocking pool.
pub(super) async fn judge(
    parsed: &mut Parsed,
    rules: &filter::Rules,
    parsing: &Arc<Semaphore>,
) -> Result<(), Failure> {
    if rules.is_empty() || parsed.entries.is_empty() {
        return Ok(());
    }
    let entries = std::mem::take(&mut parsed.entries);
    let rules = rules.clone();
    let _permit = parsing
        .clone()
        .acquire_owned()
        .await
        .map_err(|e| Failure::Task(e.to_string()))?;
    // A failure here fails the feed's poll, so nothing is recorded as seen and the next poll
    // reads the same entries again.
    let (excluded, kept) = tokio::task::spawn_blocking(move || {
        let before = entries.len();
        let kept: Vec<KeyedEntry> = entries
            .into_iter()
            .filter(|k| filter::keeps(&rules, &Fields::of(&k.entry)))
            .collect();
        (before - kept.len(), kept)
    })
    .await
    .map_err(|e| Failure::Task(e.to_string()))?;
    parsed.excluded = excluded;
    parsed.entries = kept;
    Ok(())
}

/// One request for something a feed's content named (an article's page, an icon), as polite
/// as the feed's own: its host's turn, nothing sent to a host that asked to wait, and a host's
/// 429 (or 503 with Retry-After) held at once for the requests queued behind this one. The
/// hold is returned for the store to hear of.
pub(super) async fn fetch_for_feed(
    context: &Context,
    url: &Url,
    validators: &Validators,
    proxy: Option<&Url>,
) -> (Result<Fetched, ArticleError>, Option<(String, DateTime<Utc>)>) {
    // Refused anyway: no need to wait for a turn at the host.
    if let Some(refused) = context.fetcher.refuses_at_once(url, proxy) {
        return (Err(ArticleError::Fetch(refused)), None);
    }
    let host = host_key(url);
    let (turn, waits) = turn_at(context, host.as_deref()).await;
    if waits.is_some() {
        return (Err(ArticleError::HostWaiting), None);
    }
    let request = fetch::Request {
        url,
        validators,
        headers: &[],
        trust: fetch::Trust::Content,
        timeout: None,
        proxy,
    };
    let fetched = context.fetcher.fetch(request).await;
    drop(turn);
    match fetched {
        Ok(fetched) => (Ok(fetched), None),
        Err(e) => {
            let penalty = host.zip(host_penalty(&e, context.clock.now()));
            if let Some((host, until)) = &penalty {
                context.delays.hold(host, *until);
            }
            (Err(ArticleError::Fetch(e)), penalty)
        }
    }
}

/// A turn at `host` for one request, and until when the host asked everyone to wait, if it
/// did. Asked after the turn: a request that waited behind one answered 429 (on this node or,
/// in a cluster, on another) must not go ahead.
async fn turn_at(context: &Context, host: Option<&str>) -> (Turn, Option<DateTime<Utc>>) {
    let turn = context.requests.turn(host, context.clock.as_ref()).await;
    let waits = host.and_then(|h| context.delays.until(h, context.clock.now()));
    (turn, waits)
}

/// Records where permanent redirects led this time (or that there were none), and logs the
/// move once when a feed has been redirected to the same place on enough consecutive polls.
pub(super) async fn note_redirect(
    store: &Store,
    feed_id: i64,
    shown: &str,
    moved: Option<&Url>,
    state: &FeedState,
) -> Result<(), StoreError> {
    let target = moved.map(|m| without_credentials(m).to_string());
    // Nothing to record in the common case: no redirect now, none counted before.
    if target.is_none() && state.moved_count == 0 {
        return Ok(());
    }
    let moved = store.note_redirect(feed_id, target).await?;
    if let Some(to) = moved {
        tracing::info!(feed = %shown, moved_to = %to, "feed moved permanently; polling its new address");
    }
    Ok(())
}

pub(super) fn fresh_until(
    caching: &Caching,
    rhythm: &FeedRhythm,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let http = hints::http_freshness(caching.cache_control.as_deref(), caching.expires.as_deref(), now);
    hints::after_success(http, rhythm, now).fresh_until
}

pub(super) enum Outcome {
    NotModified(Caching),
    Unchanged(Validators, Caching),
    Parsed(Box<Parsed>),
}

pub(super) struct Parsed {
    pub(super) feed: ParsedFeed,
    /// New or changed entries as read, for the content stage.
    pub(super) read: Vec<Keyed<ParsedEntry>>,
    /// The same entries, their content finished (by the content stage).
    pub(super) entries: Vec<KeyedEntry>,
    /// New or changed entries the feed's rules excluded.
    pub(super) excluded: usize,
    /// Fingerprints of the items whose entries are stored unchanged.
    pub(super) unchanged_segments: Fingerprints,
    pub(super) validators: Validators,
    pub(super) caching: Caching,
    pub(super) body_hash: String,
}

/// Why a feed's poll failed, or that the store did (which is not the feed's failure).
#[derive(Debug, thiserror::Error)]
pub(super) enum Failure {
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error(transparent)]
    Parse(#[from] parse::ParseError),
    #[error("internal error: {0}")]
    Task(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Failure {
    pub(super) fn kind(&self) -> FailureKind {
        match self {
            Failure::Fetch(e) => e.kind(),
            Failure::Parse(_) => FailureKind::Parse,
            Failure::Task(_) | Failure::Store(_) => FailureKind::Internal,
        }
    }

    /// When the server said to come back (Retry-After on any error status).
    pub(super) fn retry_after(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Failure::Fetch(e) => e.retry_after().and_then(|v| hints::retry_after(v, now)),
            _ => None,
        }
    }

    /// See [`host_penalty`].
    pub(super) fn host_penalty(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Failure::Fetch(e) => host_penalty(e, now),
            _ => None,
        }
    }
}

/// The decode, parse, dedupe and compare stages: a fetched body read into the entries the store
/// does not have yet. Unchanged bodies and unchanged entries cost a hash each; only new or
/// changed entries go on to the content stage.
pub(super) async fn read_new(
    fetched: Fetched,
    spec: &FeedSpec,
    state: &FeedState,
    store: &Store,
    parsing: &Semaphore,
) -> Result<Outcome, Failure> {
    let body = match fetched {
        Fetched::NotModified { caching, .. } => return Ok(Outcome::NotModified(caching)),
        Fetched::Modified(body) => body,
    };
    let body_hash = hex::encode(Sha256::digest(&body.bytes));
    if state.body_hash.as_deref() == Some(body_hash.as_str()) {
        return Ok(Outcome::Unchanged(body.validators, body.caching));
    }
    let feed_id = state.id;
    let task = |e: &dyn std::fmt::Display| Failure::Task(e.to_string());
    // A feed never stored has nothing to compare with. Lookups go to a reader: they must not
    // wait behind the writer's queue while parsers idle.
    let stored_before = state.last_success.is_some();
    let known_segments = if stored_before {
        store.fingerprints(feed_id).await?
    } else {
        Default::default()
    };
    // Each CPU-bound step holds a parse permit, not the lookup between them: a permit held
    // while waiting would leave a core idle.
    let permit = parsing.acquire().await.map_err(|e| task(&e))?;
    let final_url = body.final_url.clone();
    let source = spec.source.clone();
    let zone = spec.timezone.unwrap_or(chrono_tz::UTC);
    let (mut feed, keyed) = tokio::task::spawn_blocking(move || {
        let text = decode::decode(body.bytes, body.content_type.as_deref()).text;
        let mut feed = parse::parse_source(&text, &final_url, &known_segments, &source, zone)?;
        let keyed = dedupe::key_entries(std::mem::take(&mut feed.entries));
        Ok::<_, parse::ParseError>((feed, keyed))
    })
    .await
    .map_err(|e| task(&e))??;
    drop(permit);
    // Only the entries the parse produced are compared with the store.
    let stored = if stored_before && !keyed.is_empty() {
        let keys: Vec<String> = keyed.iter().map(|k| k.key.as_str().to_owned()).collect();
        store.content_hashes(feed_id, keys).await?
    } else {
        Default::default()
    };
    // Items the parser left out, and those whose entries turn out unchanged, are the ones the
    // next parse may leave out.
    let mut unchanged_segments = std::mem::take(&mut feed.skipped);
    let read = keyed
        .into_iter()
        .filter(|k| {
            let unchanged = stored.get(k.key.as_str()) == Some(&k.content_hash);
            if unchanged {
                unchanged_segments.add(k.segment);
            }
            !unchanged
        })
        .collect();
    Ok(Outcome::Parsed(Box::new(Parsed {
        feed,
        read,
        entries: Vec::new(),
        excluded: 0,
        unchanged_segments,
        validators: body.validators,
        caching: body.caching,
        body_hash,
    })))
}
