//! Differential: arbitrary `Cookie` header bytes through the README's stack (DBSC → bound
//! cookies → `tower-sessions`), read by every parser an application uses. Bytes `\x01`…
//! `\x07` stand for real cookies of four users (`tokbind_testkit::cookie_oracle::Secret`), `\n`
//! starts another header. Invariant (`Harness::check`): proving the thief's key, the app
//! sees the thief's session or none; proving nothing, an unbound session or none — never
//! the victim's, never the DBSC session's retired login cookie; and the requester's own
//! cookie, spelled plainly, does open.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use tokbind_testkit::cookie_oracle::Harness;

static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime")
});

static HARNESS: LazyLock<Harness> = LazyLock::new(|| RUNTIME.block_on(Harness::new()));

fuzz_target!(|data: &[u8]| {
    if let Err(e) = RUNTIME.block_on(HARNESS.check(data)) {
        panic!("{e}");
    }
});
