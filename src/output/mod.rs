//! Owns the merged outputs: choosing each output's entries from the store ([`select`]),
//! rendering them in the output's format (one module per format), and writing the file
//! atomically and only when its bytes changed.
//!
//! Renderers are pure functions of (spec, selection, context) → bytes, with no clock: the same
//! store renders the same bytes, so files, mtimes and ETags stay put when nothing changed.
//! This module never fetches; all it writes to the store is whether each output could be
//! written ([`record_renders`]), so that a stale output is shown until a render succeeds.

mod atom;
mod html;
pub(crate) use html::{BUILT_IN as BUILT_IN_TEMPLATE, check_template};
mod jsonfeed;
mod locale;
pub(crate) mod opml;
mod rss;
pub(crate) mod select;
pub(crate) mod webhook;
pub(crate) mod websub;

use std::borrow::Cow;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use chrono::{DateTime, Utc};

use url::Url;

use crate::config::Config;
use crate::model::{IconImage, OutputFormat, OutputSpec};
use crate::store::{Store, StoreError};
pub(crate) use select::{FeedView, OutputEntry, Selection};

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("output {path}: {source}")]
    Store {
        path: PathBuf,
        #[source]
        source: StoreError,
    },
    #[error("cannot write output {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("output {path}: template {template}: {message}")]
    Template {
        path: PathBuf,
        template: String,
        message: String,
    },
}

impl OutputError {
    /// The output it concerns.
    pub fn path(&self) -> &Path {
        match self {
            OutputError::Store { path, .. }
            | OutputError::Write { path, .. }
            | OutputError::Template { path, .. } => path,
        }
    }
}

/// Whether a render was written (and whether its file changed), or why not: what the store
/// keeps of it.
pub(crate) fn outcome(result: &Result<OutputReport, OutputError>) -> (String, Result<bool, String>) {
    match result {
        Ok(o) => match &o.hook_error {
            Some(e) => (o.path.display().to_string(), Err(format!("on_change: {e}"))),
            None => (o.path.display().to_string(), Ok(o.written)),
        },
        Err(e) => (e.path().display().to_string(), Err(e.to_string())),
    }
}

/// Records renders' outcomes (see [`outcome`]) in the store, for `feeds` and /healthz.
pub(crate) async fn record_renders(
    store: &Store,
    outcomes: Vec<(String, Result<bool, String>)>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    store.record_outputs(outcomes, now).await
}

/// What rendering one output did.
#[derive(Debug, Clone)]
pub struct OutputReport {
    pub(crate) path: PathBuf,
    pub entries: usize,
    /// False when the file already held exactly these bytes.
    pub(crate) written: bool,
    /// The output's bytes, as written (what the server serves).
    pub(crate) bytes: Arc<Vec<u8>>,
    /// When these bytes were first written (the file's mtime).
    pub(crate) modified: SystemTime,
    /// The store ids of the entries it shows (which retention keeps).
    pub(crate) shown: Vec<i64>,
    /// Nothing to show yet: no file was written and there is none to serve (see
    /// [`WhenEmpty::Keep`]), or never will be (an output that only sends webhooks).
    pub(crate) pending: bool,
    /// Webhook deliveries this render put in the outbox.
    pub(crate) deliveries: usize,
    /// The file was written, but its `on_change` command failed: why (it is owed, and run
    /// again at the output's retry).
    pub(crate) hook_error: Option<String>,
}

/// How one output is rendered.
#[derive(Debug, Clone, Copy)]
pub struct RenderOptions {
    /// Whether an output with no entries may replace the file.
    pub mode: WhenEmpty,
    /// The time deliveries are made at.
    pub now: DateTime<Utc>,
    /// The output's `on_change` failed after an earlier render: run it even if the file
    /// does not change this time.
    pub hook_owed: bool,
}

/// How long an `on_change` command may run before it is killed.
pub(crate) const HOOK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Runs `spec`'s `on_change` command, if it has one: the program with its arguments (no
/// shell), the output's path in `TRIBUTARY_OUTPUT` and its format in `TRIBUTARY_FORMAT`, no
/// input, killed after [`HOOK_TIMEOUT`]. A failure says its status and the end of its stderr.
async fn run_hook(spec: &OutputSpec) -> Result<(), String> {
    let Some((program, args)) = spec.on_change.split_first() else {
        return Ok(());
    };
    let child = tokio::process::Command::new(program)
        .args(args)
        .env("TRIBUTARY_OUTPUT", &spec.path)
        .env("TRIBUTARY_FORMAT", spec.format.name())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    let output = tokio::time::timeout(HOOK_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| {
            format!(
                "{program} ran longer than {} and was killed",
                humantime::format_duration(HOOK_TIMEOUT)
            )
        })?
        .map_err(|e| format!("{program}: {e}"))?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let mut tail: Vec<&str> = stderr.lines().rev().take(3).collect();
    tail.reverse();
    Err(format!(
        "{program} failed ({}){}",
        output.status,
        match tail.is_empty() {
            true => String::new(),
            false => format!(": {}", tail.join(" / ")),
        }
    ))
}

/// Whether a render with no entries may replace the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenEmpty {
    /// Write it whatever it holds.
    Write,
    /// At start-up, before the first poll: an empty store says nothing about the feeds, so
    /// an output without entries leaves the file as it is (and that file is what is served),
    /// or, with no file yet, waits for the first round.
    Keep,
}

/// Another output that a page or feed can point to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Alternate {
    pub(crate) href: String,
    /// Its file name, as served.
    pub(crate) name: String,
    pub(crate) format: OutputFormat,
    pub(crate) title: String,
}

/// What renderers know beyond the output itself.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// Every output of the config (for HTML `<link rel="alternate">`).
    pub(crate) alternates: Vec<Alternate>,
    /// The WebSub hub to announce.
    pub(crate) hub: Option<String>,
    /// Where the config's HTML page is published, when it has an address: the web page the
    /// feeds belong to unless an output names its own `link`.
    pub(crate) page: Option<String>,
    /// The HTML page's file, for outputs to name it relative to themselves when it has no
    /// address (no `serve.base_url`).
    pub(crate) page_file: Option<PathBuf>,
}

impl Context {
    /// What `config`'s outputs share for their renders.
    pub fn new(config: &Config) -> Context {
        Context {
            alternates: config
                .outputs
                .iter()
                .filter(|o| o.file)
                .map(|o| Alternate {
                    href: o.self_url.clone().unwrap_or_else(|| o.file_name()),
                    name: o.file_name(),
                    format: o.format,
                    title: o.title.clone(),
                })
                .collect(),
            hub: config
                .serve
                .as_ref()
                .and_then(|s| s.websub_hub.as_ref())
                .map(|h| h.to_string()),
            page: config
                .outputs
                .iter()
                .find(|o| o.format == OutputFormat::Html)
                .and_then(|o| o.self_url.clone()),
            page_file: config
                .outputs
                .iter()
                .find(|o| o.format == OutputFormat::Html)
                .map(|o| o.path.clone()),
        }
    }

    /// The web page `spec` belongs to, as an absolute URL: its own `link`, else the HTML page
    /// (unless it is that page).
    pub(crate) fn home_page<'a>(&'a self, spec: &'a OutputSpec) -> Option<&'a str> {
        spec.link.as_deref().or(self
            .page
            .as_deref()
            .filter(|p| spec.self_url.as_deref() != Some(*p)))
    }

    /// [`Context::home_page`], else, when the page has no address, where it is relative to
    /// `spec`'s file (`index.html`, `../index.html`): a reader resolves that against the URL it
    /// fetched the feed from, which is where the page is too when both are published
    /// together (as `tributary run` serves them). For formats that take a relative reference
    /// (Atom's `link`, JSON Feed's `home_page_url`); never a `file://` path of this server.
    pub(crate) fn home_page_ref<'a>(&'a self, spec: &'a OutputSpec) -> Option<Cow<'a, str>> {
        if let Some(url) = self.home_page(spec) {
            return Some(Cow::Borrowed(url));
        }
        if self.page.is_some() || spec.format == OutputFormat::Html {
            return None;
        }
        let page = self.page_file.as_ref()?;
        let dir = spec.path.parent()?;
        let from = Url::from_directory_path(dir).ok()?;
        let to = Url::from_file_path(page).ok()?;
        from.make_relative(&to).map(Cow::Owned)
    }
}

/// Renders every configured output from the store.
pub async fn render_all(config: &Arc<Config>, store: &Store) -> Vec<Result<OutputReport, OutputError>> {
    let context = Arc::new(Context::new(config));
    let mut reports = Vec::with_capacity(config.outputs.len());
    for spec in &config.outputs {
        let how = RenderOptions {
            mode: WhenEmpty::Write,
            now: Utc::now(),
            hook_owed: false,
        };
        reports.push(render_one(config, spec, store, &context, how).await);
    }
    reports
}

/// Renders one output `spec` from the store and writes its file (whole, or not at all), then
/// delivers what it owes its webhooks and runs its `on_change`.
pub async fn render_one(
    config: &Arc<Config>,
    spec: &OutputSpec,
    store: &Store,
    context: &Arc<Context>,
    how: RenderOptions,
) -> Result<OutputReport, OutputError> {
    let RenderOptions { mode, now, hook_owed } = how;
    let store_error = |source| OutputError::Store {
        path: spec.path.clone(),
        source,
    };
    let selection = select::select(store, spec, config).await.map_err(store_error)?;
    let shown: Vec<i64> = selection.entries.iter().map(|e| e.stored.id).collect();
    if !spec.file {
        // Nothing to write or serve: only what it announces.
        let deliveries = webhook::announce(store, spec, &selection, context, now)
            .await
            .map_err(store_error)?;
        return Ok(OutputReport {
            path: spec.path.clone(),
            entries: shown.len(),
            written: false,
            bytes: Arc::default(),
            modified: SystemTime::UNIX_EPOCH,
            shown,
            pending: true,
            deliveries,
            hook_error: None,
        });
    }
    write_icons(store, &selection, spec).await?;
    // Rendering is synchronous and CPU-bound: on the blocking pool. The spec is found in the
    // shared config rather than copied: it lists its feeds, all 100,000 of them in a big
    // planet.
    let at = config.outputs.iter().position(|o| o.path == spec.path);
    let own = if at.is_none() { Some(spec.clone()) } else { None };
    let selection = Arc::new(selection);
    let (config_, context_, selection_) = (config.clone(), context.clone(), selection.clone());
    let bytes = tokio::task::spawn_blocking(move || {
        let spec = match &own {
            Some(own) => own,
            None => &config_.outputs[at.unwrap_or_default()],
        };
        render(spec, &selection_, &context_)
    })
    .await
    .map_err(|e| OutputError::Write {
        path: spec.path.clone(),
        source: std::io::Error::other(e),
    })??;
    let entries = shown.len();
    let path = spec.path.clone();
    // OPML lists subscriptions, which the config has before any poll.
    if mode == WhenEmpty::Keep && entries == 0 && spec.format != OutputFormat::Opml {
        let existing = tokio::task::spawn_blocking(move || {
            let bytes = std::fs::read(&path).ok().filter(|b| !b.is_empty())?;
            let modified = std::fs::metadata(&path).and_then(|m| m.modified()).ok()?;
            Some((bytes, modified))
        })
        .await
        .ok()
        .flatten();
        return Ok(OutputReport {
            path: spec.path.clone(),
            entries,
            written: false,
            pending: existing.is_none(),
            shown,
            modified: existing.as_ref().map_or(SystemTime::UNIX_EPOCH, |e| e.1),
            bytes: Arc::new(existing.map(|e| e.0).unwrap_or_default()),
            deliveries: 0,
            hook_error: None,
        });
    }
    let path = spec.path.clone();
    let bytes = Arc::new(bytes);
    let to_write = bytes.clone();
    let write_error = |source: std::io::Error| {
        // What `check` says of it (a file where a directory should be, a read-only mount),
        // rather than the bare OS error.
        let dir = spec.path.parent().unwrap_or(Path::new("."));
        let source = match writable_dir(dir) {
            Err(why) => std::io::Error::new(source.kind(), why),
            Ok(()) => source,
        };
        OutputError::Write {
            path: spec.path.clone(),
            source,
        }
    };
    let (written, modified) = tokio::task::spawn_blocking(move || {
        let written = write_if_changed(&path, &to_write)?;
        let modified = std::fs::metadata(&path)?.modified()?;
        Ok::<_, std::io::Error>((written, modified))
    })
    .await
    .map_err(|e| write_error(std::io::Error::other(e)))?
    .map_err(write_error)?;
    let hook_error = match written || hook_owed {
        true => run_hook(spec).await.err(),
        false => None,
    };
    // After the file: a receiver never hears of an entry before the output shows it.
    let deliveries = webhook::announce(store, spec, &selection, context, now)
        .await
        .map_err(store_error)?;
    Ok(OutputReport {
        path: spec.path.clone(),
        entries,
        written,
        bytes,
        modified,
        pending: false,
        shown,
        deliveries,
        hook_error,
    })
}

/// The folder beside an output where its feeds' icons are written (and, under `tributary run`,
/// served from: `/icons/FILE`).
pub(crate) const ICONS_DIR: &str = "icons";

/// Where `spec` says `image` is: `icons/FILE` beside it, absolute when the output has an
/// address (a feed reader resolves it against that anyway; some do not resolve at all).
pub(crate) fn icon_href(spec: &OutputSpec, image: &IconImage) -> String {
    let relative = format!("{ICONS_DIR}/{}", image.file_name());
    spec.self_url
        .as_deref()
        .and_then(|u| Url::parse(u).ok()?.join(&relative).ok())
        .map_or(relative, String::from)
}

/// Writes the icons `selection` shows that are not yet in the output's `icons/` folder, from
/// the store. An icon's file is named by its bytes' hash, so one that exists is the same.
async fn write_icons(store: &Store, selection: &Selection, spec: &OutputSpec) -> Result<(), OutputError> {
    if !matches!(
        spec.format,
        OutputFormat::Html | OutputFormat::Atom | OutputFormat::Json
    ) {
        return Ok(());
    }
    let of_entries = selection
        .entries
        .iter()
        .flat_map(|e| std::iter::once(&e.feed).chain(&e.also_in));
    let mut images: Vec<&IconImage> = selection
        .feeds
        .iter()
        .chain(of_entries)
        .filter_map(|v| v.icon.as_ref())
        .collect();
    images.sort_by(|a, b| a.hash.cmp(&b.hash));
    images.dedup();
    if images.is_empty() {
        return Ok(());
    }
    let dir = spec.path.parent().unwrap_or(Path::new(".")).join(ICONS_DIR);
    let write_error = |source: std::io::Error| OutputError::Write {
        path: dir.clone(),
        source,
    };
    for image in images {
        let path = dir.join(image.file_name());
        if tokio::fs::try_exists(&path).await.unwrap_or(false) {
            continue;
        }
        let bytes = store
            .icon_bytes(image.hash.clone())
            .await
            .map_err(|source| OutputError::Store {
                path: spec.path.clone(),
                source,
            })?;
        // Gone since the selection was read (the feed found another icon): the next render
        // names that one.
        let Some((_, bytes)) = bytes else { continue };
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&dir)?;
            write_if_changed(&path, &bytes)
        })
        .await
        .map_err(|e| write_error(std::io::Error::other(e)))?
        .map_err(write_error)?;
    }
    Ok(())
}

/// The bytes of one output.
pub fn render(spec: &OutputSpec, selection: &Selection, context: &Context) -> Result<Vec<u8>, OutputError> {
    Ok(match spec.format {
        OutputFormat::Atom => atom::render(spec, selection, context),
        OutputFormat::Rss => rss::render(spec, selection, context),
        OutputFormat::Json => jsonfeed::render(spec, selection, context),
        OutputFormat::Html => html::render(spec, selection, context)?,
        OutputFormat::Opml => opml::document(&spec.title, &selection.feeds),
    })
}

pub(crate) use crate::model::rfc3339;

/// The newest change among the entries shown: derived from the data, never from the clock,
/// so an unchanged store renders identical bytes.
pub(crate) fn last_change(selection: &Selection) -> DateTime<Utc> {
    selection
        .entries
        .iter()
        .map(|e| e.stored.updated)
        .max()
        .unwrap_or_default()
}

/// An entry's language as outputs write it (Atom `xml:lang`, RSS `dc:language`, JSON Feed
/// `language`, the page's `lang`): its own, else the one its feed declares.
pub(crate) fn entry_language(out: &OutputEntry) -> Option<&str> {
    out.stored
        .entry
        .language
        .as_ref()
        .map(|l| l.tag.as_str())
        .or(out.feed.lang.as_deref())
}

/// What an entry is called where a title is needed: its own, or else the first words of its
/// text (a title-less post is usually a short note, and its opening says what it is), or else
/// its link. Empty only when the entry has none of these.
pub(crate) fn display_title(entry: &crate::model::Entry) -> std::borrow::Cow<'_, str> {
    use std::borrow::Cow;
    if !entry.title.is_empty() {
        return Cow::Borrowed(&entry.title);
    }
    let text = entry
        .summary
        .as_deref()
        .or(entry.content.as_deref())
        .map(crate::text::html_to_text)
        .unwrap_or_default();
    if text.is_empty() {
        return Cow::Borrowed(entry.link.as_deref().unwrap_or(""));
    }
    Cow::Owned(first_words(&text, 80))
}

/// At most `max` characters of `text`, cut at a word boundary when there is one in the second
/// half (scripts written without spaces are cut at a character), with an ellipsis when cut.
fn first_words(text: &str, max: usize) -> String {
    let Some((cut, _)) = text.char_indices().nth(max) else {
        return text.to_string();
    };
    let head = &text[..cut];
    let head = match head.rfind(char::is_whitespace) {
        Some(space) if head[..space].chars().count() >= max / 2 => &head[..space],
        _ => head,
    };
    format!(
        "{}…",
        head.trim_end_matches(|c: char| c.is_whitespace() || c.is_ascii_punctuation())
    )
}

/// A stable, globally unique entry id from (feed URL, entry key). The feed's own guid is not
/// used directly because it need not be an IRI, and two feeds may share it.
pub(crate) fn entry_id(feed_url: &str, key: &str) -> String {
    crate::model::stable_urn(&format!("{feed_url}\n{key}"))
}

/// Writes `bytes` to `path` unless it already holds exactly them; returns whether it wrote.
///
/// The new content goes to a temporary file in the same directory, is flushed to disk, and is
/// renamed over the old file, so a reader (or a crash) sees the old file or the new one, never
/// a mix.
pub fn write_if_changed(path: &Path, bytes: &[u8]) -> std::io::Result<bool> {
    if std::fs::read(path).is_ok_and(|old| old == bytes) {
        return Ok(false);
    }
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    remove_stale_temp_files(dir);
    let mut tmp = tempfile::Builder::new()
        .prefix(".tributary-")
        .suffix(".tmp")
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    // Temporary files are created private (0600); outputs are meant to be served and read.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))?;
    }
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(true)
}

/// Whether files can be created in `dir`, or in the nearest existing ancestor that would hold it.
pub(crate) fn writable_dir(dir: &Path) -> Result<(), String> {
    let mut existing = dir;
    while !existing.exists() {
        match existing.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => existing = parent,
            _ => return Err("no existing parent directory".into()),
        }
    }
    if !existing.is_dir() {
        return Err(format!("{} is not a directory", existing.display()));
    }
    // Creating (and at once removing) a file is the only test of writability that also
    // covers ACLs, read-only mounts and the like.
    tempfile::Builder::new()
        .prefix(".tributary-check-")
        .tempfile_in(existing)
        .map(drop)
        .map_err(|_| format!("{} is not writable", existing.display()))
}

/// A process killed while writing an output leaves its temporary file behind (the output
/// itself is untouched: the rename never happened). Such leftovers are removed once they are
/// old enough that no live writer can still own them.
fn remove_stale_temp_files(dir: &Path) {
    const STALE: std::time::Duration = std::time::Duration::from_secs(10 * 60);
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !(name.starts_with(".tributary-") && name.ends_with(".tmp")) {
            continue;
        }
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > STALE);
        if old {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Removes characters XML 1.0 forbids (C0 controls other than tab/newline/CR, U+FFFE, U+FFFF),
/// which would make a whole output unreadable. The parse drops them from what it stores;
/// this keeps what was stored before it did (and text from elsewhere) out of outputs too.
pub(crate) fn xml_safe(s: &str) -> std::borrow::Cow<'_, str> {
    let bad = |c: char| matches!(c, '\u{0}'..='\u{8}' | '\u{b}' | '\u{c}' | '\u{e}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}');
    if s.contains(bad) {
        std::borrow::Cow::Owned(s.chars().filter(|c| !bad(*c)).collect())
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn feeds_without_an_address_name_the_page_relative_to_themselves() {
        let config = Config::parse(
            Path::new("/srv/planet/tributary.toml"),
            "[[output]]\npath = \"public/index.html\"\n[[output]]\npath = \"public/all.atom\"\n\
             [[output]]\npath = \"public/rust/rust.atom\"\n[[output]]\npath = \"other/all feeds.json\"\n",
        )
        .unwrap();
        let context = super::Context::new(&config);
        let link = |i: usize| context.home_page_ref(&config.outputs[i]).map(|l| l.into_owned());
        assert_eq!(link(0), None, "the page itself");
        assert_eq!(link(1).as_deref(), Some("index.html"));
        assert_eq!(link(2).as_deref(), Some("../index.html"));
        assert_eq!(link(3).as_deref(), Some("../public/index.html"));
    }

    use super::*;

    #[test]
    fn writes_only_when_changed_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/out.atom");
        assert!(write_if_changed(&path, b"one").unwrap());
        assert!(!write_if_changed(&path, b"one").unwrap());
        assert!(write_if_changed(&path, b"two").unwrap());
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn untitled_entries_are_called_by_their_first_words() {
        let mut e = crate::model::Entry {
            summary: Some("<p>Just shipped the <b>new</b> release, with a much faster parser and fewer surprises for everyone.</p>".into()),
            ..Default::default()
        };
        assert_eq!(
            display_title(&e),
            "Just shipped the new release, with a much faster parser and fewer surprises for…"
        );
        e.summary = Some("<p>短い投稿です。</p>".into());
        assert_eq!(display_title(&e), "短い投稿です。");
        e.summary = Some("<p>".to_string() + &"字".repeat(100) + "</p>");
        assert_eq!(display_title(&e).chars().count(), 81);
        e.summary = None;
        e.link = Some("https://example.org/p/1".into());
        assert_eq!(display_title(&e), "https://example.org/p/1");
        e.title = "Own title".into();
        assert_eq!(display_title(&e), "Own title");
    }

    #[test]
    fn xml_safe_drops_forbidden_characters() {
        assert_eq!(xml_safe("a\u{1}b\u{b}c\td"), "abc\td");
    }
}
