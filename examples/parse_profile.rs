//! Parses the farm's documents in a loop (for profiling the parse path with perf).

// A profiling helper: failing loudly is fine.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

#[path = "../benches/farm.rs"]
mod farm;

fn main() {
    let spec = farm::FarmSpec::new(100, 50);
    let docs: Vec<Vec<u8>> = (0..100).map(|i| farm::render(&spec, i, 0)).collect();
    let base = url::Url::parse("https://farm.example/feed").unwrap();
    let started = std::time::Instant::now();
    let mut n = 0;
    for _ in 0..2 {
        for d in &docs {
            let text = tributary::fetch::charset::decode(d.clone(), None).text;
            let f = tributary::parse::parse_document(&text, &base).unwrap();
            let mut sanitizer = tributary::parse::Sanitizer::new();
            n += tributary::dedupe::key_entries(f.entries)
                .into_iter()
                .map(|k| k.entry.finish(&mut sanitizer))
                .count();
        }
    }
    eprintln!("{n} entries in {:?}", started.elapsed());
}
