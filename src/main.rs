use std::process::ExitCode;

// jemalloc with background purging: memory freed after a big round goes back to the OS within
// seconds, so a daemon rests at a small RSS between rounds (glibc malloc keeps freed memory in
// per-thread arenas for good), and fragmentation stays low over months. Its options (how soon
// freed pages go back) are set when it is built, in `.cargo/config.toml`.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    tributary::main()
}
