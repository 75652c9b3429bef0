//! Times the parse path on the benchmark farm's documents, stage by stage (for profiling
//! with perf: `perf record target/release/examples/parse_profile`).

// A profiling helper: failing loudly is fine.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

#[path = "../benches/farm.rs"]
mod farm;

use std::time::{Duration, Instant};

fn main() {
    let spec = farm::FarmSpec::new(200, 55);
    let docs: Vec<Vec<u8>> = (0..200).map(|i| farm::render(&spec, i, 0)).collect();
    let base = url::Url::parse("https://farm.example/feed").unwrap();
    let (mut decode, mut parse, mut key, mut finish) =
        (Duration::ZERO, Duration::ZERO, Duration::ZERO, Duration::ZERO);
    let mut n = 0;
    for d in &docs {
        let t = Instant::now();
        let text = tributary::decode(d.clone(), None).text;
        decode += t.elapsed();
        let t = Instant::now();
        let f = tributary::parse_document(&text, &base).unwrap();
        parse += t.elapsed();
        let t = Instant::now();
        let keyed = tributary::key_entries(f.entries);
        key += t.elapsed();
        let t = Instant::now();
        let mut sanitizer = tributary::Sanitizer::new();
        // One feed's poll: detection learns the feed's language across its entries.
        let mut langs = tributary::Languages::default();
        n += keyed
            .into_iter()
            .map(|k| tributary::finish_entry(k.entry, &[], &mut langs, &mut sanitizer))
            .count();
        finish += t.elapsed();
    }
    eprintln!("{n} entries: decode {decode:?}, parse {parse:?}, key+hash {key:?}, sanitize {finish:?}");
}
