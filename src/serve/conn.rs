//! Connections to the built-in server, kept within bounds whatever the clients do.
//!
//! A client has [`Limits::header_timeout`] to send a request's headers (from connecting, or
//! from the first byte of the next request on a kept-alive connection), and may keep an idle
//! connection for [`Limits::idle_timeout`] between requests; a response the client does not
//! read for that long ends the connection too. At most [`Limits::max_connections`] are open at
//! once, kept below the process's descriptor limit; when a new client arrives at the cap, the
//! connection that has waited longest without a request in progress is closed to make room,
//! so that idle floods and slowloris clients, which never finish a request, are what goes, and
//! a health check or a feed reader gets in. Reaching the cap is logged once per episode.
//!
//! hyper's own header timeout counts keep-alive idleness as header time and knows no cap, so
//! the accept loop and the timeouts live here, around hyper's HTTP/1 connection.

use std::collections::BTreeMap;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::body::Body;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, Sleep};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// The bounds every connection lives within.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    pub(crate) header_timeout: Duration,
    pub(crate) idle_timeout: Duration,
    pub(crate) max_connections: usize,
}

/// Descriptors kept free for everything but serving: fetches, the database, logs.
const RESERVED_DESCRIPTORS: u64 = 256;

impl Limits {
    /// `max_connections` lowered, if need be, below what the descriptor limit allows.
    pub(crate) fn within_descriptors(mut self, reserved_for_fetches: usize) -> Limits {
        if let Ok((soft, _)) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE) {
            let room = soft
                .saturating_sub(RESERVED_DESCRIPTORS + reserved_for_fetches as u64)
                .max(16);
            self.max_connections = self
                .max_connections
                .min(usize::try_from(room).unwrap_or(usize::MAX));
        }
        self
    }
}

/// Raises the soft descriptor limit to the hard one, as servers do: the default soft limit
/// (1024) is a relic, and systemd's `LimitNOFILE=` sets both.
pub(crate) fn raise_descriptor_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE)
        && soft < hard
        && let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard)
    {
        tracing::debug!(error = %e, "cannot raise the descriptor limit");
    }
}

/// Serves `router` on `listener` until `shutdown`, within `limits`.
pub(super) async fn serve(
    listener: TcpListener,
    router: axum::Router,
    limits: Limits,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let tracker = Arc::new(Tracker::default());
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        // Ours, which tells a slow request from an idle connection.
        .header_read_timeout(None)
        .keep_alive(true)
        .max_buf_size(64 * 1024);
    let http = Arc::new(http);
    let mut short_of_descriptors = false;
    // Every connection's task, so that none outlives the server (each holds the store).
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            () = shutdown.cancelled() => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => {
                short_of_descriptors = false;
                stream
            }
            Err(e) if is_descriptor_shortage(&e) => {
                // Out of descriptors despite the cap (fetches took them): make room, pause
                // briefly instead of spinning, and say so once.
                if !short_of_descriptors {
                    tracing::warn!(error = %e, "out of file descriptors: closing waiting connections");
                    short_of_descriptors = true;
                }
                tracker.evict_oldest();
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
            Err(e) => {
                tracing::debug!(error = %e, "accept failed");
                continue;
            }
        };
        if tracker.live.load(Ordering::Relaxed) >= limits.max_connections {
            if !tracker.full.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    max_connections = limits.max_connections,
                    "connection cap reached: closing the connections that waited longest without a request"
                );
            }
            if !tracker.evict_oldest() {
                // Every connection is in the middle of a request: the newcomer waits its turn.
                drop(stream);
                continue;
            }
        } else if tracker.live.load(Ordering::Relaxed) < limits.max_connections / 2 {
            // Said again only once the flood is over: connections closed by evictions end a
            // moment apart, and the count dips below the cap within one flood.
            tracker.full.store(false, Ordering::Relaxed);
        }
        let (tracker, http, router) = (tracker.clone(), http.clone(), router.clone());
        let closing = shutdown.clone();
        connections.spawn(async move { connection(stream, tracker, http, router, limits, closing).await });
    }
    // Requests in flight finish (each connection closes once its answer is out; idle ones at
    // once), within a moment; whatever is left is dropped with the set.
    drop(listener);
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    Ok(())
}

/// How long requests in flight may take to finish when the server stops.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

fn is_descriptor_shortage(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(code) if code == nix::libc::EMFILE || code == nix::libc::ENFILE
    )
}

/// The address a request came from, as the connection saw it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Peer(pub std::net::SocketAddr);

async fn connection(
    stream: TcpStream,
    tracker: Arc<Tracker>,
    http: Arc<hyper::server::conn::http1::Builder>,
    router: axum::Router,
    limits: Limits,
    closing: CancellationToken,
) {
    let _ = stream.set_nodelay(true);
    // Who asked, for counting an output's readers (never for deciding anything).
    let peer = stream.peer_addr().ok();
    let conn = Conn::open(&tracker, limits);
    let io = TokioIo::new(Guarded::new(stream, conn.clone(), limits));
    let service_conn = conn.clone();
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        service_conn.busy();
        if let Some(peer) = peer {
            request.extensions_mut().insert(Peer(peer));
        }
        let (router, conn) = (router.clone(), service_conn.clone());
        async move {
            let response = tower::ServiceExt::oneshot(router, request.map(Body::new)).await;
            conn.idle();
            response
        }
    });
    let served = http.serve_connection(io, service);
    tokio::pin!(served);
    let result = tokio::select! {
        result = served.as_mut() => result,
        () = closing.cancelled() => {
            served.as_mut().graceful_shutdown();
            served.await
        }
    };
    if let Err(e) = result {
        tracing::trace!(error = %e, "connection ended");
    }
}

/// Every open connection, and the ones waiting without a request in progress, oldest first.
#[derive(Default)]
struct Tracker {
    live: AtomicUsize,
    next_id: AtomicU64,
    /// (waiting since, id) → how to close it.
    waiting: Mutex<BTreeMap<(Instant, u64), CancellationToken>>,
    /// The cap was reached (logged), and the count has not dropped well below it since.
    full: AtomicBool,
}

impl Tracker {
    /// Closes the connection that has waited longest; false when none is waiting.
    fn evict_oldest(&self) -> bool {
        let oldest = self.waiting.lock().unwrap_or_else(|e| e.into_inner()).pop_first();
        match oldest {
            Some((_, token)) => {
                token.cancel();
                true
            }
            None => false,
        }
    }
}

/// What a connection is doing.
#[derive(Debug, Clone, Copy)]
enum Phase {
    /// Waiting for a request's headers (since connecting, or since the first byte of one).
    Headers { since: Instant },
    /// Kept alive between requests.
    Idle { since: Instant },
    /// A request is being answered.
    Busy,
}

/// One connection's state, shared by its reader side and its request handler.
struct Conn {
    id: u64,
    tracker: Arc<Tracker>,
    limits: Limits,
    phase: Mutex<Phase>,
    evict: CancellationToken,
}

impl Conn {
    fn open(tracker: &Arc<Tracker>, limits: Limits) -> Arc<Conn> {
        tracker.live.fetch_add(1, Ordering::Relaxed);
        let conn = Arc::new(Conn {
            id: tracker.next_id.fetch_add(1, Ordering::Relaxed),
            tracker: tracker.clone(),
            limits,
            phase: Mutex::new(Phase::Busy),
            evict: CancellationToken::new(),
        });
        conn.set(Phase::Headers {
            since: Instant::now(),
        });
        conn
    }

    fn phase(&self) -> Phase {
        *self.phase.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Moves to `next`, keeping the tracker's list of waiting connections in step.
    fn set(&self, next: Phase) {
        let mut phase = self.phase.lock().unwrap_or_else(|e| e.into_inner());
        let mut waiting = self.tracker.waiting.lock().unwrap_or_else(|e| e.into_inner());
        if let Phase::Headers { since } | Phase::Idle { since } = *phase {
            waiting.remove(&(since, self.id));
        }
        if let Phase::Headers { since } | Phase::Idle { since } = next {
            waiting.insert((since, self.id), self.evict.clone());
        }
        *phase = next;
    }

    fn busy(&self) {
        self.set(Phase::Busy);
    }

    fn idle(&self) {
        self.set(Phase::Idle {
            since: Instant::now(),
        });
    }

    /// The moment the connection is closed unless something happens first.
    fn deadline(&self) -> Option<Instant> {
        match self.phase() {
            Phase::Headers { since } => Some(since + self.limits.header_timeout),
            Phase::Idle { since } => Some(since + self.limits.idle_timeout),
            Phase::Busy => None,
        }
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        let phase = *self.phase.get_mut().unwrap_or_else(|e| e.into_inner());
        if let Phase::Headers { since } | Phase::Idle { since } = phase {
            self.tracker
                .waiting
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&(since, self.id));
        }
        self.tracker.live.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The connection's socket (as tokio sees it; hyper reads it through `TokioIo`), failing reads once the connection's deadline passes or it is
/// evicted, and writes that a client leaves unread for the idle timeout.
struct Guarded<S> {
    inner: S,
    conn: Arc<Conn>,
    read_timer: Pin<Box<Sleep>>,
    read_armed: Option<Instant>,
    write_timer: Pin<Box<Sleep>>,
    write_stalled: bool,
    evicted: Pin<Box<WaitForCancellationFutureOwned>>,
}

impl<S> Guarded<S> {
    fn new(inner: S, conn: Arc<Conn>, limits: Limits) -> Guarded<S> {
        let now = Instant::now();
        Guarded {
            evicted: Box::pin(conn.evict.clone().cancelled_owned()),
            inner,
            conn,
            read_timer: Box::pin(tokio::time::sleep_until(now + limits.header_timeout)),
            read_armed: None,
            write_timer: Box::pin(tokio::time::sleep_until(now)),
            write_stalled: false,
        }
    }
}

fn timed_out(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, what.to_string())
}

impl<S: AsyncRead + Unpin> AsyncRead for Guarded<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.evicted.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "closed to make room (connection cap)",
            )));
        }
        if let Some(deadline) = this.conn.deadline() {
            if this.read_armed != Some(deadline) {
                this.read_timer.as_mut().reset(deadline);
                this.read_armed = Some(deadline);
            }
            if this.read_timer.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Err(timed_out("no complete request in time")));
            }
        }
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        if buf.filled().len() > before
            && let Phase::Idle { .. } = this.conn.phase()
        {
            // The first bytes of the next request: its headers have the header timeout.
            this.conn.set(Phase::Headers {
                since: Instant::now(),
            });
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Guarded<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_write(cx, data) {
            Poll::Ready(result) => {
                this.write_stalled = false;
                Poll::Ready(result)
            }
            Poll::Pending => {
                if !this.write_stalled {
                    this.write_stalled = true;
                    let deadline = Instant::now() + this.conn.limits.idle_timeout;
                    this.write_timer.as_mut().reset(deadline);
                }
                if this.write_timer.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Err(timed_out("the client stopped reading")));
                }
                Poll::Pending
            }
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
