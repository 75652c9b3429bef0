//! Owns getting a feed's bytes: a conditional GET over HTTP(S) (or a read of a `file://`
//! source) within the time and size limits, handing on either "not modified" or the raw body
//! with its content type and new cache validators.
//!
//! It knows nothing about SQLite or feed formats. Charset decoding lives in [`charset`] so that
//! the parser only ever sees UTF-8.

pub mod charset;

use std::time::Duration;

use futures::StreamExt;
use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap, HeaderValue};
use url::Url;

use crate::config::PollConfig;
use crate::model::Validators;

/// What a fetch produced.
#[derive(Debug)]
pub enum Fetched {
    /// 304: the publisher says nothing changed; nothing is parsed.
    NotModified(Caching),
    Modified(Body),
}

/// The response's caching headers, raw; `schedule::hints` interprets them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Caching {
    pub cache_control: Option<String>,
    pub expires: Option<String>,
}

/// A response body that arrived whole and within the limits.
#[derive(Debug)]
pub struct Body {
    /// Decompressed bytes, in the publisher's encoding.
    pub bytes: Vec<u8>,
    pub content_type: Option<String>,
    /// Where the body came from after redirects: the base for relative URLs.
    pub final_url: Url,
    pub validators: Validators,
    pub caching: Caching,
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
    #[error("too many redirects or a redirect loop")]
    Redirects,
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
    /// Worth retrying soon: the failure says something about the moment, not about the feed.
    pub fn is_transient(&self) -> bool {
        match self {
            FetchError::Timeout { .. } | FetchError::Connect(_) | FetchError::Http(_) => true,
            FetchError::Status { status, .. } => *status == 408 || *status == 429 || *status >= 500,
            FetchError::TooLarge { .. }
            | FetchError::Redirects
            | FetchError::File { .. }
            | FetchError::Unsupported(_) => false,
        }
    }
}

/// The HTTP client and limits shared by every fetch of a poll.
#[derive(Debug, Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    max_body: u64,
    timeout: Duration,
}

impl Fetcher {
    pub fn new(poll: &PollConfig) -> Result<Self, FetchError> {
        let mut headers = HeaderMap::new();
        // Feed types first, then generic XML; */* so that misconfigured servers still answer.
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static(
                "application/atom+xml, application/rss+xml, application/feed+json, \
                 application/json;q=0.9, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.8",
            ),
        );
        let client = reqwest::Client::builder()
            .user_agent(&poll.user_agent)
            .default_headers(headers)
            .timeout(poll.timeout)
            .connect_timeout(poll.timeout.min(Duration::from_secs(10)))
            .redirect(reqwest::redirect::Policy::limited(10))
            .gzip(true)
            .brotli(true)
            .deflate(true)
            .build()
            .map_err(|e| FetchError::Http(e.to_string()))?;
        Ok(Fetcher {
            client,
            max_body: poll.max_body,
            timeout: poll.timeout,
        })
    }

    /// The host a fetch of `url` talks to, for per-host politeness (`None` for files).
    pub fn host_of(url: &Url) -> Option<String> {
        matches!(url.scheme(), "http" | "https")
            .then(|| url.host_str().map(str::to_ascii_lowercase))
            .flatten()
    }

    /// Fetches `url`, conditionally when `validators` hold an ETag or Last-Modified.
    pub async fn fetch(&self, url: &Url, validators: &Validators) -> Result<Fetched, FetchError> {
        match url.scheme() {
            "http" | "https" => self.fetch_http(url, validators).await,
            "file" => self.read_file(url).await,
            _ => Err(FetchError::Unsupported(url.to_string())),
        }
    }

    async fn fetch_http(&self, url: &Url, validators: &Validators) -> Result<Fetched, FetchError> {
        let mut request = self.client.get(url.clone());
        if let Some(etag) = &validators.etag {
            request = request.header(header::IF_NONE_MATCH, etag);
        }
        if let Some(lm) = &validators.last_modified {
            request = request.header(header::IF_MODIFIED_SINCE, lm);
        }
        let response = request.send().await.map_err(|e| self.classify(e))?;
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
            return Ok(Fetched::NotModified(caching));
        }
        if !status.is_success() {
            return Err(FetchError::Status {
                status: status.as_u16(),
                retry_after: header_text(header::RETRY_AFTER),
            });
        }
        let content_type = header_text(header::CONTENT_TYPE);
        let new_validators = Validators {
            etag: header_text(header::ETAG),
            last_modified: header_text(header::LAST_MODIFIED),
        };
        let final_url = response.url().clone();
        // A declared length over the limit fails before reading anything. (With compression the
        // header counts compressed bytes, so the streaming check below stays the real limit.)
        if response.content_length().is_some_and(|len| len > self.max_body) {
            return Err(FetchError::TooLarge { limit: self.max_body });
        }
        // Sized once from Content-Length when it is honest, so the body is not copied while it grows.
        let expected = response.content_length().unwrap_or(0).min(self.max_body);
        let mut bytes = Vec::with_capacity(usize::try_from(expected).unwrap_or(0));
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| self.classify(e))?;
            if (bytes.len() + chunk.len()) as u64 > self.max_body {
                return Err(FetchError::TooLarge { limit: self.max_body });
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(Fetched::Modified(Body {
            bytes,
            content_type,
            final_url,
            validators: new_validators,
            caching,
        }))
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
        }))
    }

    fn classify(&self, e: reqwest::Error) -> FetchError {
        if e.is_timeout() {
            FetchError::Timeout { after: self.timeout }
        } else if e.is_redirect() {
            FetchError::Redirects
        } else if e.is_connect() {
            FetchError::Connect(root_cause(&e))
        } else {
            FetchError::Http(root_cause(&e))
        }
    }
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
