//! Integration tests: one binary (see CONVENTIONS.md). Feeds come from servers the tests start
//! on 127.0.0.1, or from files; never from the internet.

// Test code: a failed unwrap is a failed test, which is what it should be.
#![allow(clippy::unwrap_used)]

mod support;

mod corpus;
mod poll;
mod daemon;
mod schedule;
mod farm;
mod outputs;
mod golden;
mod readers;
mod page;
mod hostile;
mod crash;
mod cli;
mod install;
mod faults;
mod realweb;
mod docs;
mod shape;
mod migrations;
mod content;
mod scrape;
mod cluster;
mod nodes;
mod guard;
mod languages;
mod fuzz;
mod consumers;
mod icons;
mod webhooks;
mod reach;
mod websub;
mod lists;
