//! Tributary: a feed aggregator. Many RSS / Atom / JSON Feed sources flow in; one clean,
//! deduplicated merged feed (or several) flows out.
//!
//! ```text
//! config ──► schedule ──► fetch ──► parse + normalize ──► filter ──► dedupe ──► store ──► output ──► serve
//! (TOML)     cron,        HTTP,     feed-rs, UTF-8,       rules      keys,      SQLite,   Atom/RSS/    HTTP,
//!            backoff,     file://   sanitize, URLs                   hashes     one       JSON/HTML/   ETag,
//!            hints                                                              writer    OPML files   gzip
//! ```
//!
//! Each arrow is a plain function call or a channel; nothing flows backwards.
//! [`poll::poll_feeds`] is the spine that `tributary poll` runs once and the [`daemon`] runs
//! whenever feeds are due. The store is the only state; everything else is derived from
//! config + store. The binary is a thin shell over [`cli::main`].

pub mod cli;
pub mod config;
pub mod model;
pub mod schedule;
pub mod poll;
pub mod fetch;
pub mod parse;
pub mod filter;
pub mod dedupe;
pub mod store;
pub mod output;
pub mod serve;
pub mod daemon;
