//! What the `config` fuzz target asserts of any text: the config loader gives a config or a
//! list of problems with places inside the text, never a panic. Shared by the fuzz target and
//! the test that replays its corpus (`tests/it/fuzz.rs`).

/// Runs the check on `data`; panics when a promise is broken.
pub fn check(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = std::path::Path::new("/fuzz/tributary.toml");
    if let Err(e) = tributary::Config::parse(path, text) {
        assert!(!e.problems.is_empty());
        let lines = text.lines().count() + 1;
        for p in &e.problems {
            assert!(p.line <= lines, "problem outside the text: {p}");
        }
    }
}
