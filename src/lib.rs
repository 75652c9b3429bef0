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

pub mod model;
pub mod text;
pub mod config;
pub mod schedule;
pub mod fetch;
pub mod decode;
pub mod parse;
pub mod dedupe;
pub mod content;
pub mod filter;
pub mod store;
pub mod lists;
pub mod output;
pub mod push;
pub mod serve;
pub mod poll;
pub mod daemon;
pub mod cli;
