//! Tributary: a feed aggregator. Many RSS / Atom / JSON Feed sources flow in; one clean,
//! deduplicated merged feed (or several) flows out.
//!
//! ```text
//! config ──► fetch ──► parse + normalize ──► dedupe ──► store ──► output
//! (TOML)     HTTP,     feed-rs, UTF-8,        keys,      SQLite,   Atom files,
//!            file://   sanitize, URLs         hashes     one       atomic writes
//!                                                        writer
//! ```
//!
//! Each arrow is a plain function call; nothing flows backwards. [`poll::poll_feeds`] is the
//! spine that `tributary poll` runs once. The store is the only state; everything else is
//! derived from config + store. The binary is a thin shell over [`cli::main`].

pub mod cli;
pub mod config;
pub mod model;
pub mod schedule;
pub mod poll;
pub mod fetch;
pub mod parse;
pub mod dedupe;
pub mod store;
pub mod output;
pub mod daemon;
