//! Tributary: a feed aggregator. Many RSS / Atom / JSON Feed sources flow in; one clean,
//! deduplicated merged feed (or several) flows out.
//!
//! ```text
//! config ─► schedule ─► fetch ─► decode ─► parse ─► dedupe ─► [compare] ─► content ─► filter ─► store ─► output ─► serve
//! TOML,     cron,       HTTP,    bytes →   feed-rs, keys,     unchanged    sanitize   rules     SQLite,  Atom/RSS/  HTTP,
//! spans     backoff,    guard,   UTF-8     salvage  hashes    entries      (ammonia,  on plain  one      JSON/HTML/ ETag,
//!           hints, due  limits                                stop here    fast path) text      writer   OPML       gzip
//! ```
//!
//! Each arrow is a plain function call or a channel, and each stage imports only [`model`] (the
//! vocabulary, which imports nothing of ours) and the stages before it; a test
//! (`tests/it/shape.rs`) fails on a backward import. Only the spine ([`poll`]), the [`daemon`]
//! and the [`cli`] sit above the stages and call them. [`poll::Poller`] runs the flow for the
//! feeds that are due: `tributary poll` once, the daemon whenever its store says feeds are due.
//! Entries whose content hash the store already holds stop at the compare, so only new and
//! changed entries are sanitized ([`content`]) and judged by the feed's rules
//! ([`filter`]), which see exactly what output rules see later: the stored, sanitized entry.
//!
//! The store is the only state; everything else is derived from config + store. The binary is
//! a thin shell over [`cli::main`].

// The docs are written for the next engineer, who reads them with --document-private-items
// (as CI builds them, with every link checked): links to crate-private items are meant.
#![allow(rustdoc::private_intra_doc_links)]
// What is public is what lib.rs re-exports: anything else marked `pub` is a mistake.
#![warn(unreachable_pub, missing_docs)]

mod model;
mod text;
mod config;
mod schedule;
mod fetch;
mod decode;
mod parse;
mod dedupe;
mod content;
mod filter;
mod store;
mod lists;
mod output;
mod push;
mod serve;
mod poll;
mod daemon;
mod cli;

// The public API: what the binary, the benchmarks, the integration tests, the fuzz checks and
// the examples drive directly. Everything else is the crate's own (`unreachable_pub` keeps it
// so).
pub use cli::main;
pub use config::keys::schema as config_schema;
pub use config::types::Config;
pub use content::sanitize::Sanitizer;
pub use content::{Languages, finish, finish_entry};
pub use daemon::{Control, DaemonError, run_with_clock as run_daemon};
pub use decode::decode;
pub use dedupe::key_entries;
pub use fetch::init_tls;
pub use filter::{Verdict, verdict};
pub use model::entry::{
    Enclosure, Entry, EntryKey, Fingerprints, KeyKind, KeyedEntry, Language, LanguageSource, Person,
    StoredEntry,
};
pub use model::feed::{FeedMeta, FeedState, IconImage, Repair, Validators};
pub use model::records::{NewDelivery, ParsedBatch, Scheduled};
pub use model::rules::Fields;
pub use model::store::Backend;
pub use output::select::{FeedView, OutputEntry, Selection, select};
pub use output::webhook::deliver_pending;
pub use output::{Context, RenderOptions, WhenEmpty, render, render_all, render_one, write_if_changed};
pub use parse::{ParsedFeed, parse_changed, parse_document};
pub use schedule::clock::TokioClock;
pub use schedule::{History, Policy, due};
pub use store::coordination::{Coordination, Notice};
pub use store::housekeeping::{Retention, housekeeping};
pub use store::{Store, StoreError};
pub use text::forbidden;
pub use text::mojibake::repair as repair_mojibake;
