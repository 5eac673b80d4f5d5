//! When `tokbind serve` and `tokbind proxy` stop: the first SIGINT (Ctrl-C) or SIGTERM
//! begins a graceful shutdown, which lets requests in flight finish for at most
//! `--drain-timeout`; a second one ends the process at once, as an operator who presses
//! Ctrl-C twice expects.

use tokio::signal::unix::{SignalKind, signal};

/// Exit status after a second signal: 128 + SIGINT, as a shell reports a process it
/// interrupted.
const INTERRUPTED: i32 = 130;

/// Completes at the first SIGINT or SIGTERM, and from then on ends the process at the
/// next one. The handlers are installed when this is called, not when the future is first
/// polled: call it before announcing that the server listens, so that a signal sent as
/// soon as it does is a graceful shutdown, not the default disposition's abrupt end.
pub fn requested() -> impl Future<Output = ()> {
    let signals = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    );
    async move {
        let (Ok(mut interrupt), Ok(mut terminate)) = signals else {
            // No signal handling (not expected on Unix): never shut down gracefully, and
            // let the default disposition end the process.
            tracing::warn!("cannot listen for SIGINT and SIGTERM");
            return std::future::pending().await;
        };
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
        eprintln!("tokbind: shutting down; requests in flight may finish (again to stop now)");
        tokio::spawn(async move {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
            eprintln!("tokbind: stopped");
            std::process::exit(INTERRUPTED);
        });
    }
}
