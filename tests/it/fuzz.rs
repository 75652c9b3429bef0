//! The fuzz targets' corpora (`fuzz/corpus/TARGET/`: seeds, and every input a fuzzing run
//! found worth keeping) replayed through the very checks the targets run (`fuzz/checks/`), on
//! stable Rust with every `cargo test`: what fuzzing once found stays found. `.ci/run` also
//! fuzzes each target for a minute where the toolchain allows it.

#[path = "../../fuzz/checks/config.rs"]
mod config_check;
#[path = "../../fuzz/checks/feed.rs"]
mod feed_check;

use std::path::Path;

/// Every file of `fuzz/corpus/TARGET`, run through `check`, each named if it fails.
fn replay(target: &str, check: fn(&[u8])) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for file in &files {
        let data = std::fs::read(file).unwrap();
        if std::panic::catch_unwind(|| check(&data)).is_err() {
            panic!("{} fails the {target} target's check", file.display());
        }
    }
    files.len()
}

#[test]
fn the_feed_targets_corpus_replays() {
    assert!(replay("feed", feed_check::check) >= 20);
}

#[test]
fn the_config_targets_corpus_replays() {
    assert!(replay("config", config_check::check) >= 3);
}
