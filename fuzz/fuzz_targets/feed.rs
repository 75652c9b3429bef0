//! Bytes from the network, all the way to what the store would receive (see `checks/feed.rs`).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../checks/feed.rs"]
mod check;

fuzz_target!(
    init: {
        // libFuzzer's hook aborts on every panic, even one `parse_document` catches (feed-rs
        // panics on some malformed documents; the contract is that such a panic is that
        // document's error). Quiet the hook so only an uncaught panic, which libfuzzer-sys
        // still turns into an abort, counts as a crash. FUZZ_STRICT_PANICS=1 keeps the strict
        // hook, to hunt the caught ones too.
        if std::env::var_os("FUZZ_STRICT_PANICS").is_none() {
            std::panic::set_hook(Box::new(|_| {}));
        }
    },
    |data: &[u8]| check::check(data)
);
