//! Times choosing and rendering an output from an existing store, stage by stage:
//! `cargo run --release --example render_profile -- path/to/tributary.toml`.

// A profiling helper: failing loudly is fine.
#![allow(clippy::unwrap_used)]

use std::time::Instant;

#[tokio::main]
async fn main() {
    let path = std::env::args().nth(1).expect("config path");
    let config = tributary::Config::load(std::path::Path::new(&path)).unwrap();
    let store = tributary::Store::open(&config.backend()).await.unwrap();
    let context = tributary::Context::new(&config);
    for spec in &config.outputs {
        let started = Instant::now();
        let mut selection = None;
        for _ in 0..20 {
            selection = Some(tributary::select(&store, spec, &config).await.unwrap());
        }
        let select = started.elapsed() / 20;
        let selection = selection.unwrap();
        let started = Instant::now();
        for _ in 0..20 {
            tributary::render(spec, &selection, &context).unwrap();
        }
        let render = started.elapsed() / 20;
        println!(
            "{}: select {select:?}, render {render:?}, {} entries",
            spec.path.display(),
            selection.entries.len()
        );
    }
    store.close().await;
}
