//! Shared test helpers: skips that CI turns into failures, title comparison, a loopback feed
//! server, and a temporary workspace with a config file.

#![allow(dead_code)]
// Tests write fixtures and configs directly; the rule against std::fs::write is for outputs.
#![allow(clippy::disallowed_methods)]

use std::path::{Path, PathBuf};

/// `Some(path)` when `path` exists. Otherwise prints that the test was skipped and returns
/// `None`, or panics when `TRIBUTARY_REQUIRE_ALL=1` (CI), so nothing is skipped silently there.
pub fn require_or_skip(what: &str, path: PathBuf) -> Option<PathBuf> {
    if path.exists() {
        return Some(path);
    }
    assert!(
        std::env::var("TRIBUTARY_REQUIRE_ALL").as_deref() != Ok("1"),
        "TRIBUTARY_REQUIRE_ALL=1 but the {what} is missing at {}",
        path.display()
    );
    eprintln!(
        "SKIPPED: the {what} is not at {}; this check did not run",
        path.display()
    );
    None
}

/// Like [`require_or_skip`] for a program on PATH.
pub fn require_tool(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    });
    match found {
        Some(p) => Some(p),
        None => require_or_skip(&format!("`{name}` tool"), Path::new("/nonexistent").join(name)),
    }
}

/// Like [`require_or_skip`] for a Python 3 module: whether `python3 -c "import NAME"` works.
pub fn require_python_module(name: &str) -> bool {
    let found = std::process::Command::new("python3")
        .args(["-c", &format!("import {name}")])
        .output()
        .is_ok_and(|o| o.status.success());
    let marker = if found {
        PathBuf::from("/")
    } else {
        Path::new("/nonexistent/python3").join(name)
    };
    require_or_skip(&format!("Python module {name}"), marker).is_some()
}

/// Headless Chromium as the tests run it (no sandbox: CI is root; no GPU; a profile of its own
/// under `home`), its window `window` ("W,H"), with `args` and then `page` as a file URL:
/// what it printed. Fails the test if Chromium fails or takes more than 90 s.
pub async fn headless_chromium(
    chromium: &Path,
    home: &Path,
    window: &str,
    args: &[&str],
    page: &Path,
) -> String {
    let profile = format!("--user-data-dir={}", home.join("profile").display());
    let window = format!("--window-size={window}");
    let child = tokio::process::Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--hide-scrollbars",
            window.as_str(),
            profile.as_str(),
        ])
        .args(args)
        .arg(format!("file://{}", page.display()))
        .env("HOME", home)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(std::time::Duration::from_secs(90), child)
        .await
        .expect("chromium finished in 90 s")
        .unwrap();
    assert!(out.status.success(), "chromium failed: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `script` (bash) as root in a private mount namespace, where it may mount what it
/// likes without touching the machine: `None`, after saying so, when not root (CI is).
pub fn as_root_in_mount_namespace(script: &str) -> Option<std::process::Output> {
    as_root_in_mount_namespace_with(script, &[])
}

/// [`as_root_in_mount_namespace`] with extra environment variables.
pub fn as_root_in_mount_namespace_with(script: &str, env: &[(&str, &str)]) -> Option<std::process::Output> {
    let is_root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    let needed = if is_root {
        "/"
    } else {
        "/nonexistent/root-privileges"
    };
    require_or_skip("root (for a private mount namespace)", needed.into())?;
    for tool in ["unshare", "mount", "setpriv"] {
        require_tool(tool)?;
    }
    let script = format!("set -eu\n{script}");
    Some(
        std::process::Command::new("unshare")
            .args(["--mount", "--propagation", "private", "bash", "-c", &script])
            .envs(env.iter().copied())
            .output()
            .expect("run unshare"),
    )
}

/// A title reduced to comparable text: markup dropped, entities decoded (twice, since feeds
/// double-escape), whitespace collapsed.
pub fn title_text(s: &str) -> String {
    let mut text = s.to_string();
    for _ in 0..2 {
        text = html_escape::decode_html_entities(&text).into_owned();
        text = strip_tags(&text);
    }
    // Characters XML forbids are dropped by design (no output could carry them).
    text.retain(|c| !tributary::forbidden(c));
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn strip_tags(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_tag = false;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '<' if chars
                .peek()
                .is_some_and(|n| n.is_ascii_alphabetic() || *n == '/' || *n == '!') =>
            {
                in_tag = true
            }
            '>' if in_tag => in_tag = false,
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

/// A database of its own on the PostgreSQL server `TRIBUTARY_PG_URL` names (a
/// `postgresql://USER@HOST:PORT/DB` URL with the right to create databases), made afresh
/// (`tributary_test_NAME`). Without the variable the test says it was skipped, or fails
/// under `TRIBUTARY_REQUIRE_ALL=1` (CI, where `.ci/run` starts the server).
pub async fn require_postgres(name: &str) -> Option<PgDatabase> {
    let Ok(admin) = std::env::var("TRIBUTARY_PG_URL") else {
        require_or_skip(
            "PostgreSQL server (TRIBUTARY_PG_URL)",
            PathBuf::from("/nonexistent/postgresql"),
        )?;
        return None;
    };
    let db = PgDatabase {
        name: format!("tributary_test_{name}"),
        url: String::new(),
        admin,
    };
    db.admin_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", db.name))
        .await;
    db.admin_execute(&format!("CREATE DATABASE {}", db.name)).await;
    let mut url = url::Url::parse(&db.admin).expect("TRIBUTARY_PG_URL is a postgresql:// URL");
    url.set_path(&db.name);
    Some(PgDatabase {
        url: url.to_string(),
        ..db
    })
}

/// A test's own database (see [`require_postgres`]).
pub struct PgDatabase {
    name: String,
    url: String,
    admin: String,
}

impl PgDatabase {
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database's name on the server.
    pub fn name(&self) -> &str {
        &self.name
    }

    async fn connect(url: &str) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {url}: {e}"));
        tokio::spawn(connection);
        client
    }

    /// Runs `sql` on the server's admin database.
    pub async fn admin_execute(&self, sql: &str) {
        Self::connect(&self.admin)
            .await
            .batch_execute(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// Runs `sql` in the test's database, as the admin.
    pub async fn admin_execute_in_db(&self, sql: &str) {
        Self::connect(&self.url)
            .await
            .batch_execute(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// The rows `sql` returns in the test's database, each read by `f`. Synchronous, for the
    /// views a [`Workspace`] gives: it runs on a thread (and a runtime) of its own.
    pub fn query_rows<T: Send>(
        &self,
        sql: &str,
        f: impl Fn(&tokio_postgres::Row) -> T + Send + Sync,
    ) -> Vec<T> {
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .unwrap();
                    runtime.block_on(async {
                        let client = Self::connect(&self.url).await;
                        let rows = client
                            .query(sql, &[])
                            .await
                            .unwrap_or_else(|e| panic!("{sql}: {e}"));
                        rows.iter().map(&f).collect()
                    })
                })
                .join()
                .unwrap()
        })
    }

    /// The one boolean `sql` returns, on the admin database.
    pub async fn admin_query_bool(&self, sql: &str) -> bool {
        Self::connect(&self.admin)
            .await
            .query_one(sql, &[])
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .get(0)
    }
}

/// Runs each named test, `async fn NAME(ws: Workspace)`, on both stores: as `NAME::sqlite`
/// with a workspace storing in SQLite, and as `NAME::postgres` with one storing in a
/// PostgreSQL database of its own (skipped without a server, as [`require_postgres`] says).
/// One set of tests, two backends.
#[macro_export]
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread")]
            async fn sqlite() {
                super::$name($crate::support::Workspace::new()).await;
            }

            #[tokio::test(flavor = "multi_thread")]
            async fn postgres() {
                // Database names are at most 63 bytes.
                let name: String = stringify!($name).chars().take(40).collect();
                if let Some(ws) = $crate::support::Workspace::on_postgres(&name).await {
                    super::$name(ws).await;
                }
            }
        }
    )*};
}

mod daemon;
mod pg_proxy;
/// The benchmark's feed farm, shared with the tests that check it and use it.
#[path = "../../../benches/farm.rs"]
pub mod farm;
mod server;
mod workspace;

pub use daemon::Daemon;
pub use pg_proxy::PgProxy;
pub use server::{FeedServer, Route, Seen, SilentServer, Streaming};
pub use workspace::{Row, Workspace, validate_atom};

/// One RSS item: `(guid, link, title, description, pubDate)`.
pub type Item<'a> = (
    Option<&'a str>,
    Option<&'a str>,
    &'a str,
    &'a str,
    Option<&'a str>,
);

/// An RSS 2.0 document from items.
pub fn rss(title: &str, items: &[Item<'_>]) -> String {
    let mut s = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<rss version=\"2.0\"><channel><title>{title}</title>\
         <link>https://example.org/{title}/</link><description>test</description>\n"
    );
    for (guid, link, t, desc, date) in items {
        s.push_str("<item>");
        if let Some(g) = guid {
            s.push_str(&format!("<guid isPermaLink=\"false\">{g}</guid>"));
        }
        if let Some(l) = link {
            s.push_str(&format!("<link>{l}</link>"));
        }
        s.push_str(&format!("<title>{t}</title><description>{desc}</description>"));
        if let Some(d) = date {
            s.push_str(&format!("<pubDate>{d}</pubDate>"));
        }
        s.push_str("</item>\n");
    }
    s.push_str("</channel></rss>\n");
    s
}

/// Writes a fixture file.
pub fn write_file(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap();
}
