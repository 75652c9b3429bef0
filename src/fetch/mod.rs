//! Owns getting a feed's bytes: a conditional GET over HTTP(S) (or a read of a `file://`
//! source) within the time and size limits, handing on either "not modified" or the raw body
//! with its content type and new cache validators.
//!
//! Redirects are followed here, hop by hop, rather than inside reqwest, because each hop is a
//! decision: at most [`MAX_REDIRECTS`], no loops, only http(s) targets, the feed's credentials
//! only to the feed's own host, private addresses refused when configured, and whether every
//! hop was permanent (301/308), which is how a feed moves.
//!
//! It knows nothing about SQLite, charsets or feed formats: it hands over bytes.

mod guard;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap, HeaderName, HeaderValue};
use url::Url;

use crate::config::PollConfig;
use crate::model::{FailureKind, Validators, without_credentials};

/// Redirect hops followed before giving up.
pub(crate) const MAX_REDIRECTS: usize = 10;

pub(crate) use guard::Trust;

/// What to fetch: the URL, the validators of the last fetch, the feed's own headers
/// (credentials, API keys), which only ever go to the feed's host, and who the URL comes
/// from, which decides the networks it may reach.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Request<'a> {
    pub(crate) url: &'a Url,
    pub(crate) validators: &'a Validators,
    pub(crate) headers: &'a [(String, String)],
    pub(crate) trust: Trust,
    /// The whole fetch's limit for this feed (`[[feed]] timeout`); `None`: `poll.timeout`.
    pub(crate) timeout: Option<Duration>,
    /// The feed's proxy (`[[feed]] proxy`); `None`: straight to the host.
    pub(crate) proxy: Option<&'a Url>,
}

/// What a fetch produced.
#[derive(Debug)]
// One per poll in flight, moved once into the parse: boxing the body would cost an
// allocation per fetch to save a few hundred bytes of stack on a 304.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Fetched {
    /// 304: the publisher says nothing changed; nothing is parsed.
    NotModified {
        caching: Caching,
        moved: Option<Url>,
    },
    Modified(Body),
}

impl Fetched {
    /// Where the feed now lives, when every redirect on the way was permanent (301/308).
    pub(crate) fn moved(&self) -> Option<&Url> {
        match self {
            Fetched::NotModified { moved, .. } => moved.as_ref(),
            Fetched::Modified(body) => body.moved.as_ref(),
        }
    }
}

/// The response's caching headers, raw; `schedule::hints` interprets them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Caching {
    pub(crate) cache_control: Option<String>,
    pub(crate) expires: Option<String>,
}

/// A response body that arrived whole and within the limits.
#[derive(Debug)]
pub(crate) struct Body {
    /// Decompressed bytes, in the publisher's encoding.
    pub(crate) bytes: Vec<u8>,
    pub(crate) content_type: Option<String>,
    /// Where the body came from after redirects: the base for relative URLs.
    pub(crate) final_url: Url,
    pub(crate) validators: Validators,
    pub(crate) caching: Caching,
    /// `final_url`, when it was reached through permanent redirects only.
    pub(crate) moved: Option<Url>,
    /// This body's share of the memory budget, given back when the body is dropped (held for
    /// that, never read).
    #[allow(dead_code)]
    pub(crate) memory: Option<tokio::sync::OwnedSemaphorePermit>,
    /// The WebSub hub and topic the response's `Link` headers name, if they name either.
    pub(crate) push: Option<Box<PushLinks>>,
}

/// Where a response says its feed is pushed from (`rel="hub"`) and published as
/// (`rel="self"`), by its `Link` headers (RFC 8288; W3C WebSub §4, which puts them first).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct PushLinks {
    pub(crate) hub: Option<Url>,
    pub(crate) topic: Option<Url>,
}

impl PushLinks {
    /// The links of `headers`, relative ones resolved against `base`. A header that does not
    /// parse names nothing: it is the publisher's hint, not the body.
    pub(crate) fn of(headers: &reqwest::header::HeaderMap, base: &Url) -> PushLinks {
        let mut push = PushLinks::default();
        for value in headers.get_all(header::LINK) {
            let Ok(text) = value.to_str() else { continue };
            let Ok(links) = http_link::parse_link_header(text, base) else {
                continue;
            };
            for link in links {
                let target = Some(link.target).filter(|u| matches!(u.scheme(), "http" | "https"));
                match link.rel.to_ascii_lowercase().as_str() {
                    "hub" if push.hub.is_none() => push.hub = target,
                    "self" if push.topic.is_none() => push.topic = target,
                    _ => {}
                }
            }
        }
        push
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("timed out after {}", humantime::format_duration(*.after))]
    Timeout { after: Duration },
    #[error("cannot connect: {0}")]
    Connect(String),
    #[error("HTTP {status}")]
    Status {
        status: u16,
        /// The Retry-After header, raw (seconds or an HTTP date).
        retry_after: Option<String>,
    },
    #[error("body larger than the {limit}-byte limit (poll.max_body)")]
    TooLarge { limit: u64 },
    #[error("{0}")]
    Redirects(&'static str),
    #[error("refused: {0}")]
    Refused(String),
    #[error("too many large bodies in flight at once; will retry")]
    Busy,
    #[error("HTTP error: {0}")]
    Http(String),
    #[error("cannot read {path}: {source}")]
    File {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("unsupported URL `{0}`")]
    Unsupported(String),
}

impl FetchError {
    /// What kind of failure this is, for the code that decides on retries and host delays.
    pub fn kind(&self) -> FailureKind {
        match self {
            FetchError::Timeout { .. } => FailureKind::Timeout,
            FetchError::Connect(_) | FetchError::Http(_) => FailureKind::Connect,
            FetchError::Busy => FailureKind::Internal,
            FetchError::Status { status, retry_after } => match status {
                408 => FailureKind::Timeout,
                410 => FailureKind::Gone,
                429 => FailureKind::RateLimited,
                503 if retry_after.is_some() => FailureKind::RateLimited,
                400..=499 => FailureKind::ClientError,
                _ => FailureKind::ServerError,
            },
            FetchError::TooLarge { .. } => FailureKind::TooLarge,
            FetchError::Redirects(_) | FetchError::Refused(_) | FetchError::Unsupported(_) => {
                FailureKind::Refused
            }
            FetchError::File { .. } => FailureKind::ClientError,
        }
    }

    /// The Retry-After header of an error response, raw.
    pub(crate) fn retry_after(&self) -> Option<&str> {
        match self {
            FetchError::Status {
                retry_after: Some(v), ..
            } => Some(v),
            _ => None,
        }
    }
}

/// The HTTP clients and limits shared by every fetch of a poll.
#[derive(Debug, Clone)]
pub(crate) struct Fetcher {
    /// For the operator's URLs, guarded as `deny_private_networks` says.
    client: reqwest::Client,
    /// For URLs from content: always guarded, never through the environment's proxy.
    content: reqwest::Client,
    /// What the clients are made of, for the proxied ones.
    settings: Arc<ClientSettings>,
    /// A client per feed proxy and trust, made when a feed first asks for it (the same
    /// connections for every feed behind one proxy).
    proxied: Arc<std::sync::Mutex<HashMap<(Url, Trust), reqwest::Client>>>,
    operator_policy: guard::Policy,
    content_policy: guard::Policy,
    max_body: u64,
    timeout: Duration,
    /// `file://` sources are refused (the private-network guard is on, files not allowed).
    deny_files: bool,
    /// KiB that bodies being downloaded (and not yet parsed) may hold in all, so that many
    /// huge or endless bodies at once cannot take memory in proportion to `poll.concurrency`.
    memory: Arc<tokio::sync::Semaphore>,
}

/// How long an idle keep-alive connection is kept for the next request to the same host.
/// Within a round a host's requests follow each other closely; between rounds an idle
/// connection only holds buffers grown to the bodies it read (64 of them were 9 MB of an
/// idle daemon's RSS at 20 s).
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(5);

/// The least memory the bodies in flight may use together; at least two bodies of the
/// maximum size always fit.
const MIN_BODY_BUDGET: u64 = 64 * 1024 * 1024;

/// Makes ring rustls's cryptography for every HTTPS client of the process (reqwest is built
/// without a provider of its own). Idempotent; every client Tributary makes comes after it.
pub fn init_tls() {
    // An `Err` only says a provider is installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// What every client is made of: `[poll]`'s user agent, headers, timeout and fixed answers.
#[derive(Debug)]
struct ClientSettings {
    user_agent: String,
    headers: HeaderMap,
    timeout: Duration,
    fixed: Arc<HashMap<String, Vec<std::net::IpAddr>>>,
}

impl ClientSettings {
    /// A client guarded by `policy`; through `proxy` when given. A proxied client connects
    /// only to the proxy (the operator's own, wherever it is) and the proxy resolves the
    /// hosts, so those are checked before each request instead ([`guard::check_through_proxy`]).
    fn build(&self, policy: &guard::Policy, proxy: Option<&Url>) -> Result<reqwest::Client, FetchError> {
        let mut builder = reqwest::Client::builder()
            .user_agent(&self.user_agent)
            .default_headers(self.headers.clone())
            .timeout(self.timeout)
            .connect_timeout(self.timeout.min(Duration::from_secs(10)))
            .redirect(reqwest::redirect::Policy::none())
            // Connections are reused within a round; between rounds (minutes apart) an
            // idle connection only holds its buffers, which grow to the bodies read.
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .gzip(true)
            .brotli(true)
            .deflate(true)
            .zstd(true);
        if let Some(proxy) = proxy {
            let proxy = reqwest::Proxy::all(proxy.as_str()).map_err(|e| FetchError::Http(e.to_string()))?;
            return builder
                .no_proxy()
                .proxy(proxy)
                .build()
                .map_err(|e| FetchError::Http(e.to_string()));
        }
        if policy.guarded || !self.fixed.is_empty() {
            // Names are checked where they are resolved, so a hostile DNS answer cannot
            // slip a refused address past a check made earlier.
            builder = builder.dns_resolver(Arc::new(guard::Resolver {
                policy: policy.clone(),
                fixed: self.fixed.clone(),
            }));
        }
        if policy.guarded {
            // A proxy would resolve names itself, out of the guard's sight: the
            // environment's is not used.
            builder = builder.no_proxy();
        }
        builder.build().map_err(|e| FetchError::Http(e.to_string()))
    }
}

impl Fetcher {
    pub(crate) fn new(poll: &PollConfig) -> Result<Self, FetchError> {
        init_tls();
        let mut headers = HeaderMap::new();
        // Feed types first, then generic XML; */* so that misconfigured servers still answer.
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static(
                "application/atom+xml, application/rss+xml, application/feed+json, \
                 application/json;q=0.9, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.8",
            ),
        );
        let allow: Arc<[ipnet::IpNet]> = poll.allow_networks.clone().into();
        let fixed: Arc<HashMap<String, Vec<std::net::IpAddr>>> = Arc::new(
            poll.resolve
                .iter()
                .map(|(h, ips)| (h.clone(), ips.clone()))
                .collect(),
        );
        let operator_policy = guard::Policy {
            guarded: poll.deny_private_networks,
            allow: allow.clone(),
        };
        let content_policy = guard::Policy { guarded: true, allow };
        let settings = Arc::new(ClientSettings {
            user_agent: poll.user_agent.clone(),
            headers,
            timeout: poll.timeout,
            fixed,
        });
        if poll.deny_private_networks
            && let Some(var) = guard::proxy_variable()
        {
            tracing::warn!(
                variable = var,
                "poll.deny_private_networks is on: the proxy is not used, since it would resolve \
                 feed hosts where the guard cannot check them"
            );
        }
        Ok(Fetcher {
            client: settings.build(&operator_policy, None)?,
            content: settings.build(&content_policy, None)?,
            settings,
            proxied: Arc::default(),
            operator_policy,
            content_policy,
            max_body: poll.max_body,
            timeout: poll.timeout,
            deny_files: poll.deny_private_networks && !poll.allow_files,
            memory: Arc::new(tokio::sync::Semaphore::new(
                usize::try_from(MIN_BODY_BUDGET.max(2 * poll.max_body) / 1024).unwrap_or(usize::MAX >> 4),
            )),
        })
    }

    /// Fetches `request.url`, conditionally when its validators hold an ETag or Last-Modified.
    /// The whole fetch — every redirect hop and the body — fits in `poll.timeout` (or the
    /// feed's own `timeout`).
    pub(crate) async fn fetch(&self, request: Request<'_>) -> Result<Fetched, FetchError> {
        let limit = request.timeout.unwrap_or(self.timeout);
        match request.url.scheme() {
            "http" | "https" => tokio::time::timeout(limit, self.fetch_http(request, limit))
                .await
                .unwrap_or(Err(FetchError::Timeout { after: limit })),
            "file" if request.trust == Trust::Content => Err(FetchError::Refused(
                "a local file named by fetched content is never read".into(),
            )),
            "file" if self.deny_files => Err(FetchError::Refused(
                "local files are refused while poll.deny_private_networks is on (poll.allow_files)".into(),
            )),
            "file" => self.read_file(request.url).await,
            _ => Err(FetchError::Unsupported(crate::model::display_url(request.url))),
        }
    }

    /// Why a request for `url` from content, straight to its host, would be refused before
    /// anything is sent (a special-use name, a refused address written as a literal): known
    /// without a request, so without a turn at the host either. Names are resolved, and so
    /// judged, only by the request itself.
    pub(crate) fn refuses_at_once(&self, url: &Url, proxy: Option<&Url>) -> Option<FetchError> {
        if proxy.is_some() {
            return None;
        }
        self.check_direct(url, &self.content_policy, Trust::Content).err()
    }

    /// What is known of a request straight to `url`'s host before it is made: a special-use
    /// name from content, an address literal `policy` refuses.
    fn check_direct(&self, url: &Url, policy: &guard::Policy, trust: Trust) -> Result<(), FetchError> {
        guard::check_special_use(url, trust, &self.settings.fixed)?;
        guard::check_literal(url, policy, trust)
    }

    async fn fetch_http(&self, request: Request<'_>, limit: Duration) -> Result<Fetched, FetchError> {
        let origin = request.url;
        let policy = match request.trust {
            Trust::Operator => &self.operator_policy,
            Trust::Content => &self.content_policy,
        };
        let client = match (request.proxy, request.trust) {
            (Some(proxy), trust) => self.proxied_client(proxy, trust, policy)?,
            (None, Trust::Operator) => self.client.clone(),
            (None, Trust::Content) => self.content.clone(),
        };
        let mut url = without_credentials(origin);
        let mut visited: Vec<Url> = Vec::new();
        let mut all_permanent = true;
        let response = loop {
            // Every hop is checked as the URL itself is.
            match request.proxy {
                Some(_) => {
                    guard::check_through_proxy(&url, policy, request.trust, &self.settings.fixed).await?
                }
                None => self.check_direct(&url, policy, request.trust)?,
            }
            let same_host = url.host_str() == origin.host_str()
                && url.port_or_known_default() == origin.port_or_known_default();
            let mut builder = client.get(url.clone()).timeout(limit);
            if let Some(etag) = &request.validators.etag {
                builder = builder.header(header::IF_NONE_MATCH, etag);
            }
            if let Some(lm) = &request.validators.last_modified {
                builder = builder.header(header::IF_MODIFIED_SINCE, lm);
            }
            // Credentials belong to the feed's host: never sent after a redirect elsewhere.
            if same_host {
                // A configured Authorization header is what the operator asked for: it wins
                // over credentials in the URL.
                let explicit = request
                    .headers
                    .iter()
                    .any(|(name, _)| name.eq_ignore_ascii_case("authorization"));
                if !origin.username().is_empty() && !explicit {
                    builder = builder.basic_auth(
                        percent_decode(origin.username()),
                        origin.password().map(percent_decode),
                    );
                }
                for (name, value) in request.headers {
                    if let (Ok(name), Ok(value)) = (
                        HeaderName::try_from(name.as_str()),
                        HeaderValue::try_from(value.as_str()),
                    ) {
                        builder = builder.header(name, value);
                    }
                }
            }
            let response = builder
                .send()
                .await
                .map_err(|e| self.classify(e, request.trust, limit))?;
            if !response.status().is_redirection() || response.status() == StatusCode::NOT_MODIFIED {
                break response;
            }
            let Some(location) = response
                .headers()
                .get(header::LOCATION)
                .and_then(|v| v.to_str().ok())
            else {
                break response;
            };
            let next = url
                .join(location)
                .map_err(|_| FetchError::Redirects("redirect to an invalid URL"))?;
            if !matches!(next.scheme(), "http" | "https") {
                return Err(FetchError::Redirects("redirect to a non-HTTP URL refused"));
            }
            all_permanent &= matches!(
                response.status(),
                StatusCode::MOVED_PERMANENTLY | StatusCode::PERMANENT_REDIRECT
            );
            visited.push(url);
            if visited.contains(&next) {
                return Err(FetchError::Redirects("redirect loop"));
            }
            if visited.len() > MAX_REDIRECTS {
                return Err(FetchError::Redirects("too many redirects"));
            }
            url = next;
        };
        let moved = (all_permanent && !visited.is_empty()).then(|| url.clone());
        self.read_response(response, url, moved, (request.trust, limit))
            .await
    }

    async fn read_response(
        &self,
        response: reqwest::Response,
        final_url: Url,
        moved: Option<Url>,
        (trust, limit): (Trust, Duration),
    ) -> Result<Fetched, FetchError> {
        let status = response.status();
        let header_text = |name| {
            response
                .headers()
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
                .map(str::to_string)
        };
        let caching = Caching {
            cache_control: header_text(header::CACHE_CONTROL),
            expires: header_text(header::EXPIRES),
        };
        if status == StatusCode::NOT_MODIFIED {
            return Ok(Fetched::NotModified { caching, moved });
        }
        if !status.is_success() {
            return Err(FetchError::Status {
                status: status.as_u16(),
                retry_after: header_text(header::RETRY_AFTER),
            });
        }
        let content_type = header_text(header::CONTENT_TYPE);
        let push = Some(PushLinks::of(response.headers(), &final_url))
            .filter(|p| p.hub.is_some() || p.topic.is_some())
            .map(Box::new);
        let new_validators = Validators {
            etag: header_text(header::ETAG),
            last_modified: header_text(header::LAST_MODIFIED),
        };
        // A declared length over the limit fails before reading anything. (With compression the
        // header counts compressed bytes, so the streaming check below stays the real limit.)
        if response.content_length().is_some_and(|len| len > self.max_body) {
            return Err(FetchError::TooLarge { limit: self.max_body });
        }
        // Sized once from Content-Length when it is honest, so the body is not copied while it grows.
        let expected =
            usize::try_from(response.content_length().unwrap_or(0).min(self.max_body)).unwrap_or(0);
        let mut memory: Option<tokio::sync::OwnedSemaphorePermit> = None;
        self.reserve(&mut memory, expected)?;
        let mut bytes = Vec::with_capacity(expected);
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| self.classify(e, trust, limit))?;
            let size = bytes.len() + chunk.len();
            if size as u64 > self.max_body {
                return Err(FetchError::TooLarge { limit: self.max_body });
            }
            if size > bytes.capacity() {
                // Grow as Vec would (doubling), but never past the limit, and count the whole
                // allocation against the budget, not just the bytes in it.
                let max = usize::try_from(self.max_body).unwrap_or(usize::MAX);
                let capacity = (bytes.capacity() * 2).max(size).min(max);
                self.reserve(&mut memory, capacity)?;
                bytes.reserve_exact(capacity - bytes.len());
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(Fetched::Modified(Body {
            bytes,
            content_type,
            final_url,
            validators: new_validators,
            caching,
            moved,
            memory,
            push,
        }))
    }

    /// Grows this body's share of the memory budget to `size` bytes. Never waits: a fetch that
    /// waited while holding part of a body could deadlock with the others, so one that finds
    /// the budget spent fails (transiently) and is retried later.
    fn reserve(
        &self,
        held: &mut Option<tokio::sync::OwnedSemaphorePermit>,
        size: usize,
    ) -> Result<(), FetchError> {
        let needed = u32::try_from(size.div_ceil(1024)).unwrap_or(u32::MAX);
        let have = held
            .as_ref()
            .map_or(0, |p| u32::try_from(p.num_permits()).unwrap_or(u32::MAX));
        if needed <= have {
            return Ok(());
        }
        let more = self
            .memory
            .clone()
            .try_acquire_many_owned(needed - have)
            .map_err(|_| FetchError::Busy)?;
        match held {
            Some(p) => p.merge(more),
            None => *held = Some(more),
        }
        Ok(())
    }

    /// `file://` sources: no validators (the poller's body hash makes an unchanged file cheap).
    async fn read_file(&self, url: &Url) -> Result<Fetched, FetchError> {
        use tokio::io::AsyncReadExt;
        let path = url
            .to_file_path()
            .map_err(|()| FetchError::Unsupported(url.to_string()))?;
        let file_error = |source| FetchError::File {
            path: path.display().to_string(),
            source,
        };
        let file = tokio::fs::File::open(&path).await.map_err(file_error)?;
        let mut bytes = Vec::new();
        file.take(self.max_body + 1)
            .read_to_end(&mut bytes)
            .await
            .map_err(file_error)?;
        if bytes.len() as u64 > self.max_body {
            return Err(FetchError::TooLarge { limit: self.max_body });
        }
        Ok(Fetched::Modified(Body {
            bytes,
            content_type: None,
            final_url: url.clone(),
            validators: Validators::default(),
            caching: Caching::default(),
            moved: None,
            memory: None,
            push: None,
        }))
    }

    /// The client for `proxy`, made the first time it is asked for.
    fn proxied_client(
        &self,
        proxy: &Url,
        trust: Trust,
        policy: &guard::Policy,
    ) -> Result<reqwest::Client, FetchError> {
        let mut clients = self.proxied.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(client) = clients.get(&(proxy.clone(), trust)) {
            return Ok(client.clone());
        }
        let client = self.settings.build(policy, Some(proxy))?;
        clients.insert((proxy.clone(), trust), client.clone());
        Ok(client)
    }

    /// POSTs `body` to `url`: a webhook (the operator's URL, guarded as
    /// `deny_private_networks` says) or a hub (a URL from content, guarded as content's are).
    /// Redirects are not followed. `Ok` on a 2xx answer; any other answer is a
    /// [`FetchError::Status`], a 3xx included.
    pub(crate) async fn post(
        &self,
        url: &Url,
        trust: Trust,
        headers: reqwest::header::HeaderMap,
        body: Vec<u8>,
    ) -> Result<(), FetchError> {
        let (client, policy) = match trust {
            Trust::Operator => (&self.client, &self.operator_policy),
            Trust::Content => (&self.content, &self.content_policy),
        };
        self.check_direct(url, policy, trust)?;
        let response = client
            .post(url.clone())
            .headers(headers)
            .body(body)
            .send()
            .await
            .map_err(|e| self.classify(e, trust, self.timeout))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let retry_after = response
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        Err(FetchError::Status {
            status: status.as_u16(),
            retry_after,
        })
    }

    fn classify(&self, e: reqwest::Error, trust: Trust, limit: Duration) -> FetchError {
        if e.is_timeout() {
            FetchError::Timeout { after: limit }
        } else if e.is_connect() {
            let cause = root_cause(&e);
            match guard::refusal(&e, trust) {
                Some(refused) => FetchError::Refused(refused),
                None => FetchError::Connect(cause),
            }
        } else {
            FetchError::Http(root_cause(&e))
        }
    }
}

/// A URL's user name or password as the text it encodes (URLs keep them percent-encoded).
fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// reqwest wraps the interesting part ("connection refused", "dns error") several levels deep;
/// the innermost message is the one an operator can act on. URLs are left out: the caller's
/// report already names the feed, and a URL could carry credentials.
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

#[cfg(test)]
mod tests;
