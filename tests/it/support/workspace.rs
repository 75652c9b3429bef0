//! A temporary directory with a config file, the real `tributary` binary run against it, and
//! read-only views of what it produced (database rows, the output parsed back).

use std::path::{Path, PathBuf};
use std::process::Output;

use tempfile::TempDir;

pub struct Workspace {
    dir: TempDir,
    /// The PostgreSQL database the workspace's config stores in, instead of `data/t.db`.
    pg: Option<super::PgDatabase>,
}

/// The binary's result, with its text decoded for assertions.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// One stored entry row, as tests look at it.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub feed_url: String,
    pub key: String,
    pub title: String,
    pub link: Option<String>,
    pub content: Option<String>,
    pub summary: Option<String>,
    pub published: i64,
    pub updated: i64,
}

/// What [`Workspace::rows`] reads, from either store.
const ROWS: &str = "SELECT f.url, e.key, e.title, e.link, e.content, e.summary, e.published, e.updated
                    FROM entries e JOIN feeds f ON f.id = e.feed_id ORDER BY e.id";
/// The same on PostgreSQL, whose times are `timestamptz`: as seconds, as SQLite keeps them.
const PG_ROWS: &str = "SELECT f.url, e.key, e.title, e.link, e.content, e.summary,
                           EXTRACT(EPOCH FROM e.published)::bigint, EXTRACT(EPOCH FROM e.updated)::bigint
                       FROM entries e JOIN feeds f ON f.id = e.feed_id ORDER BY e.id";

impl Workspace {
    pub fn new() -> Workspace {
        Workspace {
            dir: tempfile::tempdir().expect("temp dir"),
            pg: None,
        }
    }

    /// A workspace whose store is a PostgreSQL database of its own (`None`: no server, the
    /// test is skipped as [`super::require_postgres`] says).
    pub async fn on_postgres(name: &str) -> Option<Workspace> {
        let pg = super::require_postgres(name).await?;
        Some(Workspace {
            dir: tempfile::tempdir().expect("temp dir"),
            pg: Some(pg),
        })
    }

    /// The `[store]` table of this workspace's configs: `data/t.db`, or its PostgreSQL
    /// database.
    pub fn store_toml(&self) -> String {
        match &self.pg {
            None => "[store]\npath = \"data/t.db\"\n".into(),
            Some(pg) => format!("[store]\nurl = \"{}\"\n", pg.url()),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Writes `tributary.toml` with `[store]` and one Atom output around the given feed tables.
    pub fn config_with_feeds(&self, feed_urls: &[String]) -> PathBuf {
        let mut toml = format!("{}\n[poll]\ntimeout = \"10s\"\n\n", self.store_toml());
        for url in feed_urls {
            toml.push_str(&format!("[[feed]]\nurl = \"{url}\"\n\n"));
        }
        toml.push_str("[[output]]\npath = \"public/all.atom\"\ntitle = \"Test planet\"\nlimit = 50\n");
        self.write_config(&toml)
    }

    pub fn write_config(&self, toml: &str) -> PathBuf {
        let path = self.path("tributary.toml");
        std::fs::write(&path, toml).expect("write config");
        path
    }

    pub fn write(&self, rel: &str, bytes: &[u8]) -> PathBuf {
        let path = self.path(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, bytes).unwrap();
        path
    }

    /// Runs `tributary --config tributary.toml ARGS…` to completion.
    pub async fn tributary(&self, args: &[&str]) -> Run {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_tributary"))
            .arg("--config")
            .arg(self.path("tributary.toml"))
            .args(args)
            .env_remove("RUST_LOG")
            .output()
            .await
            .expect("run tributary")
            .into()
    }

    /// Like [`Workspace::tributary`] with extra environment variables.
    pub async fn tributary_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_tributary"))
            .arg("--config")
            .arg(self.path("tributary.toml"))
            .args(args)
            .env_remove("RUST_LOG")
            .envs(env.iter().copied())
            .output()
            .await
            .expect("run tributary")
            .into()
    }

    /// Like [`Workspace::tributary`], and the process's peak resident size in KiB (sampled
    /// while it runs: `VmHWM` is a high-water mark, so a sample after the peak shows it).
    pub async fn tributary_measured(&self, args: &[&str]) -> (Run, u64) {
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_tributary"))
            .arg("--config")
            .arg(self.path("tributary.toml"))
            .args(args)
            .env_remove("RUST_LOG")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run tributary");
        let pid = child.id().expect("pid");
        let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let sampling = {
            let peak = peak.clone();
            tokio::spawn(async move {
                loop {
                    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
                    let kib = status
                        .lines()
                        .find(|l| l.starts_with("VmHWM:"))
                        .and_then(|l| l.split_whitespace().nth(1))
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0);
                    peak.fetch_max(kib, std::sync::atomic::Ordering::Relaxed);
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                }
            })
        };
        let output = child.wait_with_output().await.expect("run tributary");
        sampling.abort();
        (output.into(), peak.load(std::sync::atomic::Ordering::Relaxed))
    }

    pub async fn poll(&self) -> Run {
        self.tributary(&["poll"]).await
    }

    pub fn db(&self) -> rusqlite::Connection {
        rusqlite::Connection::open_with_flags(
            self.path("data/t.db"),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .expect("open db")
    }

    /// The database for writing: a test that sets up a state no poll could make quickly (a
    /// feed failing for a month).
    pub fn db_rw(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.path("data/t.db")).expect("open db")
    }

    /// Every stored entry, in id order.
    pub fn rows(&self) -> Vec<Row> {
        if let Some(pg) = &self.pg {
            return pg.query_rows(PG_ROWS, |r| Row {
                feed_url: r.get(0),
                key: r.get(1),
                title: r.get(2),
                link: r.get(3),
                content: r.get(4),
                summary: r.get(5),
                published: r.get(6),
                updated: r.get(7),
            });
        }
        let db = self.db();
        let mut stmt = db.prepare(ROWS).unwrap();
        stmt.query_map([], |r| {
            Ok(Row {
                feed_url: r.get(0)?,
                key: r.get(1)?,
                title: r.get(2)?,
                link: r.get(3)?,
                content: r.get(4)?,
                summary: r.get(5)?,
                published: r.get(6)?,
                updated: r.get(7)?,
            })
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
    }

    pub fn output_path(&self) -> PathBuf {
        self.path("public/all.atom")
    }

    /// The merged output, parsed back with feed-rs (an independent Atom reader).
    pub fn output(&self) -> feed_rs::model::Feed {
        let bytes = std::fs::read(self.output_path()).expect("output written");
        feed_rs::parser::parse(&bytes[..]).expect("output parses as a feed")
    }
}

/// `file` validated against RFC 4287's RELAX NG schema with jing, when jing is installed (CI
/// installs it; elsewhere the check says it was skipped).
pub fn validate_atom(file: &Path) {
    let Some(jing) = super::require_tool("jing") else {
        return;
    };
    let schema = std::env::var_os("TRIBUTARY_ATOM_SCHEMA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/schemas/atom.rnc"));
    let Some(schema) = super::require_or_skip("Atom schema", schema) else {
        return;
    };
    let out = std::process::Command::new(jing)
        .arg("-c")
        .arg(&schema)
        .arg(file)
        .output()
        .expect("run jing");
    assert!(
        out.status.success(),
        "jing rejects {}:\n{}{}",
        file.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
