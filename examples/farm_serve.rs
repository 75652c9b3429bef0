//! Serves the benchmark farm on 127.0.0.1:18080 until killed (for profiling a poll by hand).

// A profiling helper: failing loudly is fine.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

#[path = "../benches/farm.rs"]
mod farm;

#[tokio::main]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1000);
    let farm = farm::FarmHandle::start(farm::FarmSpec::new(n, 50)).await;
    std::fs::create_dir_all("/tmp/farmpoll").unwrap();
    std::fs::write("/tmp/farmpoll/tributary.toml", farm.config("data/t.db", 100, "")).unwrap();
    println!("farm at {}", farm.addr);
    std::future::pending::<()>().await;
}
