//! Integration tests: one binary (see CONVENTIONS.md). Feeds come from servers the tests start
//! on 127.0.0.1, or from files; never from the internet.

mod support;

mod corpus;
