//! A feed server on 127.0.0.1 that tests script: per-path responses that can change between
//! polls, strong ETags with real 304 handling, optional gzip, and a log of every request's
//! headers so tests can assert on what Tributary sent.

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{HeaderMap, Request, Response, StatusCode, header};

/// What the server answers on one path.
#[derive(Debug, Clone)]
pub struct Route {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
    /// When set, sent as `ETag` and honoured in `If-None-Match` (304).
    pub etag: Option<String>,
    /// Gzip the body (and say so) when the client accepts it.
    pub gzip: bool,
    pub extra_headers: Vec<(String, String)>,
    /// Answer only after this long (a slow server; the test never waits on it).
    pub delay: Option<std::time::Duration>,
    /// How the body is sent.
    pub stream: Streaming,
}

/// Bodies that are not simply sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Streaming {
    Whole,
    /// `body` repeated forever.
    Endless,
    /// `body` one byte at a time, this far apart.
    Trickle(std::time::Duration),
    /// `body` in chunks of this many bytes (chunked transfer encoding, no Content-Length).
    Chunked(usize),
}

impl Route {
    pub fn feed(content_type: &str, body: impl Into<Vec<u8>>) -> Route {
        Route {
            status: 200,
            content_type: content_type.to_string(),
            body: body.into(),
            etag: None,
            gzip: false,
            extra_headers: Vec::new(),
            delay: None,
            stream: Streaming::Whole,
        }
    }

    pub fn streaming(mut self, stream: Streaming) -> Route {
        self.stream = stream;
        self
    }

    pub fn rss(body: impl Into<Vec<u8>>) -> Route {
        Route::feed("application/rss+xml; charset=utf-8", body)
    }

    pub fn status(status: u16, body: &str) -> Route {
        Route {
            status,
            ..Route::feed("text/html; charset=utf-8", body)
        }
    }

    pub fn with_etag(mut self, etag: &str) -> Route {
        self.etag = Some(etag.to_string());
        self
    }

    pub fn gzipped(mut self) -> Route {
        self.gzip = true;
        self
    }

    pub fn delayed(mut self, delay: std::time::Duration) -> Route {
        self.delay = Some(delay);
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Route {
        self.extra_headers.push((name.to_string(), value.to_string()));
        self
    }
}

/// A TCP server on 127.0.0.1 that accepts connections and never answers (headers that never
/// arrive). Connections are held until the server is dropped.
pub struct SilentServer {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl SilentServer {
    pub async fn start() -> SilentServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        SilentServer { addr, task }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for SilentServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub path: String,
    pub headers: HeaderMap,
    pub status: u16,
    pub body: Vec<u8>,
}

#[derive(Default)]
struct State {
    routes: HashMap<String, Route>,
    seen: Vec<Seen>,
    /// Paths whose requests have arrived (before any delay), oldest first.
    started: Vec<String>,
    /// When each request arrived, on tokio's clock (paused in the daemon's schedule tests).
    arrivals: Vec<(String, tokio::time::Instant)>,
}

/// Runs until dropped (the task is aborted with the test's runtime).
#[derive(Clone)]
pub struct FeedServer {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    arrivals: Arc<tokio::sync::Notify>,
}

impl FeedServer {
    pub async fn start() -> FeedServer {
        FeedServer::start_at("127.0.0.1").await
    }

    /// A server on another loopback address (all of 127.0.0.0/8 is loopback): a distinct
    /// host, for per-host limits and host delays.
    pub async fn start_at(ip: &str) -> FeedServer {
        let ip: std::net::IpAddr = ip.parse().expect("an IP address");
        FeedServer::start_on(SocketAddr::new(ip, 0)).await
    }

    /// A server on `addr` (a port freed a moment ago: a receiver that was down and is back).
    pub async fn start_on(addr: SocketAddr) -> FeedServer {
        let state = Arc::new(Mutex::new(State::default()));
        let listener = tokio::net::TcpListener::bind(addr).await.expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let app_state = state.clone();
        let arrivals = Arc::new(tokio::sync::Notify::new());
        let app_arrivals = arrivals.clone();
        let app = axum::Router::new().fallback(move |req: Request<Body>| {
            let state = app_state.clone();
            let arrivals = app_arrivals.clone();
            async move {
                let delay = {
                    let mut s = state.lock().unwrap();
                    s.started.push(req.uri().path().to_string());
                    s.arrivals
                        .push((req.uri().path().to_string(), tokio::time::Instant::now()));
                    s.routes.get(req.uri().path()).and_then(|r| r.delay)
                };
                arrivals.notify_waiters();
                if let Some(delay) = delay {
                    tokio::time::sleep(delay).await;
                }
                let (parts, body) = req.into_parts();
                let body = axum::body::to_bytes(body, 1 << 20)
                    .await
                    .map(|b| b.to_vec())
                    .unwrap_or_default();
                let response = respond(&state, &parts.uri, &parts.headers, body);
                // Answered: for those waiting on answered requests.
                arrivals.notify_waiters();
                response
            }
        });
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FeedServer {
            addr,
            state,
            arrivals,
        }
    }

    /// Waits (at most 30 s) until a request for `path` has arrived, even if not yet answered.
    pub async fn wait_for_request(&self, path: &str) {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let notified = self.arrivals.notified();
            if self.state.lock().unwrap().started.iter().any(|p| p == path) {
                return;
            }
            tokio::time::timeout_at(deadline, notified)
                .await
                .unwrap_or_else(|_| panic!("no request for {path} within 30 s"));
        }
    }

    /// Waits (at most 30 s) until `n` requests for `path` have been answered.
    pub async fn wait_for_requests(&self, path: &str, n: usize) {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let notified = self.arrivals.notified();
            if self.requests(path).len() >= n {
                return;
            }
            tokio::time::timeout_at(deadline, notified)
                .await
                .unwrap_or_else(|_| panic!("fewer than {n} requests for {path} within 30 s"));
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn set(&self, path: &str, route: Route) {
        self.state.lock().unwrap().routes.insert(path.to_string(), route);
    }

    /// When the requests for `path` arrived (tokio's clock), oldest first.
    pub fn arrivals(&self, path: &str) -> Vec<tokio::time::Instant> {
        self.state
            .lock()
            .unwrap()
            .arrivals
            .iter()
            .filter(|(p, _)| p == path)
            .map(|(_, t)| *t)
            .collect()
    }

    /// Every request to `path`, oldest first.
    pub fn requests(&self, path: &str) -> Vec<Seen> {
        self.state
            .lock()
            .unwrap()
            .seen
            .iter()
            .filter(|s| s.path == path)
            .cloned()
            .collect()
    }
}

fn respond(
    state: &Mutex<State>,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    body: Vec<u8>,
) -> Response<Body> {
    let path = uri.path().to_string();
    let mut state = state.lock().unwrap();
    let route = state.routes.get(&path).cloned();
    let response = match route {
        None => plain(404, "no such feed"),
        Some(route) => {
            let not_modified = route.etag.as_deref().is_some_and(|etag| {
                headers
                    .get(header::IF_NONE_MATCH)
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v.split(',').any(|t| t.trim() == etag))
            });
            if not_modified {
                let mut r = plain(304, "");
                if let Some(etag) = &route.etag {
                    r.headers_mut().insert(header::ETAG, etag.parse().unwrap());
                }
                r
            } else {
                full(&route, headers)
            }
        }
    };
    state.seen.push(Seen {
        path,
        headers: headers.clone(),
        status: response.status().as_u16(),
        body,
    });
    response
}

fn full(route: &Route, request_headers: &HeaderMap) -> Response<Body> {
    let accepts_gzip = request_headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("gzip"));
    let mut builder = Response::builder()
        .status(StatusCode::from_u16(route.status).unwrap())
        .header(header::CONTENT_TYPE, &route.content_type);
    if let Some(etag) = &route.etag {
        builder = builder.header(header::ETAG, etag);
    }
    for (name, value) in &route.extra_headers {
        builder = builder.header(name, value);
    }
    match route.stream {
        Streaming::Whole => {}
        Streaming::Endless => {
            let chunk = axum::body::Bytes::from(route.body.clone());
            let endless = futures::stream::repeat_with(move || Ok::<_, std::io::Error>(chunk.clone()));
            return builder.body(Body::from_stream(endless)).unwrap();
        }
        Streaming::Trickle(every) => {
            let bytes = route.body.clone();
            let trickle = futures::stream::unfold(0usize, move |i| {
                let bytes = bytes.clone();
                async move {
                    if i > 0 {
                        tokio::time::sleep(every).await;
                    }
                    let b = *bytes.get(i % bytes.len().max(1))?;
                    Some((Ok::<_, std::io::Error>(axum::body::Bytes::from(vec![b])), i + 1))
                }
            });
            return builder.body(Body::from_stream(trickle)).unwrap();
        }
        Streaming::Chunked(size) => {
            let chunks: Vec<Result<axum::body::Bytes, std::io::Error>> = route
                .body
                .chunks(size.max(1))
                .map(|c| Ok(axum::body::Bytes::copy_from_slice(c)))
                .collect();
            return builder
                .body(Body::from_stream(futures::stream::iter(chunks)))
                .unwrap();
        }
    }
    let body = if route.gzip && accepts_gzip {
        builder = builder.header(header::CONTENT_ENCODING, "gzip");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(&route.body).unwrap();
        enc.finish().unwrap()
    } else if route
        .extra_headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("content-encoding"))
    {
        // Already encoded by the test (a decompression bomb, say): sent as it is.
        route.body.clone()
    } else {
        route.body.clone()
    };
    builder.body(Body::from(body)).unwrap()
}

fn plain(status: u16, body: &str) -> Response<Body> {
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap())
        .body(Body::from(body.to_string()))
        .unwrap()
}
