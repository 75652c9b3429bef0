//! A synthetic feed farm on 127.0.0.1 for the benchmark (and the test that checks it): N feeds
//! × M entries, a deterministic mix of RSS 2.0, Atom, JSON Feed and ISO-8859-1 RSS with 1–3 KB
//! HTML bodies, strong ETags and Last-Modified (so a warm re-poll is all 304s), optional
//! rotation (K new entries per feed per round), and optional slow and failing feeds. Bodies are
//! generated per request from (seed, feed, round), so memory does not grow with N × M; entry
//! HTML is drawn from a pool generated once, so rendering is mostly copying and the farm costs
//! a small fraction of the CPU of the poller it serves.

#![allow(dead_code)]

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Response, StatusCode, header};

#[derive(Debug, Clone)]
pub struct FarmSpec {
    pub feeds: usize,
    pub entries: usize,
    pub seed: u64,
    /// Every `slow_every`-th feed answers after `slow_delay` (0: none).
    pub slow_every: usize,
    pub slow_delay: Duration,
    /// Every `failing_every`-th feed answers 500 (0: none).
    pub failing_every: usize,
    /// Every `hostile_every`-th feed is hostile (0: none), in turn: headers that never come,
    /// an endless body, a gzip bomb, a 50 MB body.
    pub hostile_every: usize,
}

impl FarmSpec {
    pub fn new(feeds: usize, entries: usize) -> FarmSpec {
        FarmSpec {
            feeds,
            entries,
            seed: 42,
            slow_every: 0,
            slow_delay: Duration::ZERO,
            failing_every: 0,
            hostile_every: 0,
        }
    }
}

/// 500 MB of zeros, gzipped once (about 500 KB).
fn gzip_bomb() -> &'static [u8] {
    static BOMB: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    BOMB.get_or_init(|| {
        use std::io::Write as _;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..500 {
            let _ = enc.write_all(&zeros);
        }
        enc.finish().unwrap_or_default()
    })
}

async fn hostile(kind: usize) -> Response<Body> {
    let chunk = axum::body::Bytes::from(vec![b'x'; 64 * 1024]);
    match kind % 4 {
        // Headers that never arrive (within any sane timeout).
        0 => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            status(StatusCode::OK)
        }
        1 => Response::builder()
            .header(header::CONTENT_TYPE, "application/rss+xml")
            .body(Body::from_stream(futures::stream::repeat_with(move || {
                Ok::<_, std::io::Error>(chunk.clone())
            })))
            .expect("response"),
        2 => Response::builder()
            .header(header::CONTENT_TYPE, "application/rss+xml")
            .header(header::CONTENT_ENCODING, "gzip")
            .body(Body::from(gzip_bomb()))
            .expect("response"),
        _ => {
            let chunks = futures::stream::iter((0..800).map(move |_| Ok::<_, std::io::Error>(chunk.clone())));
            Response::builder()
                .header(header::CONTENT_TYPE, "application/rss+xml")
                .body(Body::from_stream(chunks))
                .expect("response")
        }
    }
}

/// Counters the benchmark reports and the test asserts on.
#[derive(Debug, Default)]
pub struct Counters {
    pub requests: AtomicU64,
    pub not_modified: AtomicU64,
    pub bytes: AtomicU64,
}

struct Farm {
    spec: FarmSpec,
    /// Requests answered so far, for waiting on progress without polling a counter.
    progress: tokio::sync::watch::Sender<u64>,
    /// Rotation: in round r each feed shows entries r*new_per_round .. r*new_per_round + M.
    round: AtomicUsize,
    new_per_round: AtomicUsize,
    counters: Counters,
}

#[derive(Clone)]
pub struct FarmHandle {
    pub addr: SocketAddr,
    farm: Arc<Farm>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Rss,
    Atom,
    Json,
    Latin1Rss,
}

pub fn kind_of(feed: usize) -> Kind {
    match feed % 10 {
        0..=3 => Kind::Rss,
        4..=6 => Kind::Atom,
        7 | 8 => Kind::Json,
        _ => Kind::Latin1Rss,
    }
}

impl FarmHandle {
    /// Starts the farm on the current tokio runtime.
    pub async fn start(spec: FarmSpec) -> FarmHandle {
        let farm = Arc::new(Farm {
            spec,
            progress: tokio::sync::watch::Sender::new(0),
            round: AtomicUsize::new(0),
            new_per_round: AtomicUsize::new(0),
            counters: Counters::default(),
        });
        let app = axum::Router::new()
            .route("/feed/{id}", axum::routing::get(serve))
            .route("/admin/rotate/{k}", axum::routing::post(rotate))
            .with_state(farm.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FarmHandle { addr, farm }
    }

    pub fn url(&self, feed: usize) -> String {
        format!("http://{}/feed/{feed}", self.addr)
    }

    /// Moves to the next round, in which every feed shows `new_per_feed` entries it did not
    /// show before (and drops as many old ones).
    pub fn rotate(&self, new_per_feed: usize) {
        self.farm.new_per_round.store(new_per_feed, Ordering::SeqCst);
        self.farm.round.fetch_add(1, Ordering::SeqCst);
    }

    pub fn requests(&self) -> u64 {
        self.farm.counters.requests.load(Ordering::Relaxed)
    }

    pub fn not_modified(&self) -> u64 {
        self.farm.counters.not_modified.load(Ordering::Relaxed)
    }

    pub fn bytes(&self) -> u64 {
        self.farm.counters.bytes.load(Ordering::Relaxed)
    }

    /// Waits until the farm has seen at least `n` requests (since start or the last reset).
    pub async fn wait_requests(&self, n: u64) {
        let mut rx = self.farm.progress.subscribe();
        let _ = rx.wait_for(|seen| *seen >= n).await;
    }

    pub fn reset_counters(&self) {
        self.farm.counters.requests.store(0, Ordering::Relaxed);
        self.farm.counters.not_modified.store(0, Ordering::Relaxed);
        self.farm.counters.bytes.store(0, Ordering::Relaxed);
    }

    /// A TOML config polling every feed of the farm into `dir`.
    pub fn config(&self, db: &str, output_limit: usize, extra_poll: &str) -> String {
        let mut toml = format!(
            "[store]\npath = \"{db}\"\n\n[poll]\nconcurrency = 64\nper_host = 64\ntimeout = \"30s\"\n{extra_poll}\n\n"
        );
        for i in 0..self.farm.spec.feeds {
            let _ = write!(toml, "[[feed]]\nurl = \"{}\"\n\n", self.url(i));
        }
        let _ = write!(
            toml,
            "[[output]]\npath = \"out/all.atom\"\nlimit = {output_limit}\n"
        );
        toml
    }

    /// The body of `feed` in the current round (what a request would get).
    pub fn body(&self, feed: usize) -> Vec<u8> {
        render(&self.farm.spec, feed, self.farm.first_entry())
    }
}

impl Farm {
    fn first_entry(&self) -> usize {
        self.round.load(Ordering::SeqCst) * self.new_per_round.load(Ordering::SeqCst)
    }
}

/// `POST /admin/rotate/K`: the next round, K new entries per feed (for profiling by hand).
async fn rotate(State(farm): State<Arc<Farm>>, Path(k): Path<usize>) -> &'static str {
    farm.new_per_round.store(k, Ordering::SeqCst);
    farm.round.fetch_add(1, Ordering::SeqCst);
    "rotated\n"
}

async fn serve(State(farm): State<Arc<Farm>>, Path(id): Path<usize>, headers: HeaderMap) -> Response<Body> {
    let seen = farm.counters.requests.fetch_add(1, Ordering::Relaxed) + 1;
    farm.progress.send_replace(seen);
    let spec = &farm.spec;
    if id >= spec.feeds {
        return status(StatusCode::NOT_FOUND);
    }
    if spec.failing_every > 0 && id % spec.failing_every == spec.failing_every - 1 {
        return status(StatusCode::INTERNAL_SERVER_ERROR);
    }
    if spec.hostile_every > 0 && id % spec.hostile_every == spec.hostile_every - 1 {
        return hostile(id / spec.hostile_every).await;
    }
    if spec.slow_every > 0 && id % spec.slow_every == spec.slow_every - 1 {
        tokio::time::sleep(spec.slow_delay).await;
    }
    let first = farm.first_entry();
    let etag = format!("\"{}-{id}-{first}\"", spec.seed);
    let last_modified = httpdate::fmt_http_date(
        std::time::UNIX_EPOCH + Duration::from_secs(1_767_225_600 + first as u64 * 60),
    );
    if headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) == Some(etag.as_str()) {
        farm.counters.not_modified.fetch_add(1, Ordering::Relaxed);
        let mut r = status(StatusCode::NOT_MODIFIED);
        r.headers_mut().insert(header::ETAG, etag.parse().expect("etag"));
        return r;
    }
    let body = render(spec, id, first);
    farm.counters
        .bytes
        .fetch_add(body.len() as u64, Ordering::Relaxed);
    let content_type = match kind_of(id) {
        Kind::Rss => "application/rss+xml; charset=utf-8",
        Kind::Atom => "application/atom+xml",
        Kind::Json => "application/feed+json",
        Kind::Latin1Rss => "application/rss+xml",
    };
    Response::builder()
        .header(header::CONTENT_TYPE, content_type)
        .header(header::ETAG, etag)
        .header(header::LAST_MODIFIED, last_modified)
        .body(Body::from(body))
        .expect("response")
}

fn status(code: StatusCode) -> Response<Body> {
    Response::builder()
        .status(code)
        .body(Body::empty())
        .expect("response")
}

/// A small deterministic PRNG (xorshift64*), so the farm is the same on every machine.
struct Rng(u64);

impl Rng {
    fn new(seed: u64, feed: usize, entry: usize) -> Rng {
        Rng((seed
            ^ (feed as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ (entry as u64).wrapping_mul(0xD1B5_4A32_D192_ED03))
            | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const WORDS: &[&str] = &[
    "river", "delta", "signal", "harbour", "lantern", "meadow", "quartz", "ember", "summit", "willow",
    "beacon", "cobalt", "orchard", "tundra", "cascade", "granite", "ferry", "prairie", "nebula", "citadel",
    "estuary", "glacier", "café", "naïve", "über", "façade",
];

fn sentence(rng: &mut Rng, words: usize) -> String {
    let mut s = String::new();
    for i in 0..words {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(WORDS[rng.below(WORDS.len() as u64) as usize]);
    }
    s
}

/// How many distinct entry bodies the farm serves.
const POOL_SIZE: u64 = 512;

/// Entry bodies, generated once: as HTML, escaped for an Atom `type="html"` element, and as a
/// JSON string.
struct Pool {
    html: Vec<String>,
    escaped: Vec<String>,
    json: Vec<String>,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| {
        let html: Vec<String> = (0..POOL_SIZE as usize)
            .map(|i| html_body(&mut Rng::new(0x5EED, i, 0)))
            .collect();
        Pool {
            escaped: html
                .iter()
                .map(|h| html_escape::encode_text(h).into_owned())
                .collect(),
            json: html
                .iter()
                .map(|h| serde_json::to_string(h).expect("a string is JSON"))
                .collect(),
            html,
        }
    })
}

/// 1–3 KB of realistic HTML.
fn html_body(rng: &mut Rng) -> String {
    let target = 1024 + rng.below(2048) as usize;
    let mut html = String::with_capacity(target + 256);
    while html.len() < target {
        let _ = write!(
            html,
            "<p>{} <a href=\"https://example.org/{}\">{}</a> <em>{}</em>.</p>",
            sentence(rng, 12),
            rng.below(100_000),
            sentence(rng, 2),
            sentence(rng, 4)
        );
    }
    html
}

fn entry_date(entry: usize) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(1_767_225_600 + entry as i64 * 3600, 0).unwrap_or_default()
}

/// The document for `feed` showing entries `first .. first + M`, newest first.
pub fn render(spec: &FarmSpec, feed: usize, first: usize) -> Vec<u8> {
    let kind = kind_of(feed);
    let pool = pool();
    let entries: Vec<usize> = (first..first + spec.entries).rev().collect();
    // Each entry's title and body, from its own seeded generator.
    let entry = |e: usize| {
        let mut rng = Rng::new(spec.seed, feed, e);
        let title = format!("Feed {feed} entry {e}: {}", sentence(&mut rng, 5));
        (title, rng.below(POOL_SIZE) as usize)
    };
    let mut out = String::with_capacity(spec.entries * 2600 + 512);
    match kind {
        Kind::Json => {
            let _ = write!(
                out,
                "{{\"version\":\"https://jsonfeed.org/version/1.1\",\"title\":\"Farm feed {feed}\",\
                 \"home_page_url\":\"https://farm.example/{feed}/\",\"items\":["
            );
            for (i, &e) in entries.iter().enumerate() {
                let (title, body) = entry(e);
                let _ = write!(
                    out,
                    "{}{{\"id\":\"urn:farm:{feed}:{e}\",\"url\":\"https://farm.example/{feed}/{e}\",\
                     \"title\":{},\"content_html\":{},\"date_published\":\"{}\",\
                     \"authors\":[{{\"name\":\"Author {}\"}}]}}",
                    if i > 0 { "," } else { "" },
                    serde_json::to_string(&title).expect("a string is JSON"),
                    pool.json[body],
                    entry_date(e).to_rfc3339(),
                    e % 7
                );
            }
            out.push_str("]}");
        }
        Kind::Atom => {
            let _ = write!(
                out,
                "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\">\
                 <title>Farm feed {feed}</title><id>urn:farm:{feed}</id><link href=\"https://farm.example/{feed}/\"/>\
                 <updated>{}</updated>\n",
                entry_date(first + spec.entries).to_rfc3339()
            );
            for &e in &entries {
                let (title, body) = entry(e);
                let _ = writeln!(
                    out,
                    "<entry><id>urn:farm:{feed}:{e}</id><title>{title}</title>\
                     <link href=\"https://farm.example/{feed}/{e}\"/><updated>{}</updated>\
                     <author><name>Author {}</name></author><content type=\"html\">{}</content></entry>",
                    entry_date(e).to_rfc3339(),
                    e % 7,
                    pool.escaped[body]
                );
            }
            out.push_str("</feed>\n");
        }
        Kind::Rss | Kind::Latin1Rss => {
            let encoding = if kind == Kind::Latin1Rss {
                "ISO-8859-1"
            } else {
                "utf-8"
            };
            let _ = write!(
                out,
                "<?xml version=\"1.0\" encoding=\"{encoding}\"?>\n<rss version=\"2.0\"><channel>\
                 <title>Farm feed {feed}</title><link>https://farm.example/{feed}/</link><description>farm</description>\n"
            );
            for &e in &entries {
                let (title, body) = entry(e);
                let _ = writeln!(
                    out,
                    "<item><guid isPermaLink=\"false\">farm-{feed}-{e}</guid><title>{title}</title>\
                     <link>https://farm.example/{feed}/{e}</link><pubDate>{}</pubDate>\
                     <description><![CDATA[{}]]></description></item>",
                    entry_date(e).to_rfc2822(),
                    pool.html[body]
                );
            }
            out.push_str("</channel></rss>\n");
        }
    }
    if kind == Kind::Latin1Rss {
        let (bytes, _, _) = encoding_rs::WINDOWS_1252.encode(&out);
        bytes.into_owned()
    } else {
        out.into_bytes()
    }
}
