//! The config loader on arbitrary text: every outcome is a config or a list of problems with
//! places inside the text, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = std::path::Path::new("/fuzz/tributary.toml");
    if let Err(e) = tributary::config::Config::parse(path, text) {
        assert!(!e.problems.is_empty());
        let lines = text.lines().count() + 1;
        for p in &e.problems {
            assert!(p.line <= lines, "problem outside the text: {p}");
        }
    }
});
