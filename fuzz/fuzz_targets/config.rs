//! The config loader on arbitrary text (see `checks/config.rs`).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../checks/config.rs"]
mod check;

fuzz_target!(|data: &[u8]| check::check(data));
