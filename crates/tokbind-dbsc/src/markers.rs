//! What the application and [`DbscLayer`](crate::DbscLayer) tell each other through
//! extensions: markers the application puts in a response, and what the layer puts in a
//! request.

use std::time::SystemTime;

use crate::header::SkippedRefresh;

/// Put this in a response's extensions (e.g. `axum::Extension(StartDeviceBoundSession::default())`
/// in the login handler's response) to ask the browser to register a DBSC session.
#[derive(Debug, Clone, Default)]
pub struct StartDeviceBoundSession {
    /// An opaque value the browser copies into its registration proof.
    pub authorization: Option<String>,
}

/// Put this in a response's extensions to end the request's DBSC session (logout).
#[derive(Debug, Clone, Copy, Default)]
pub struct EndDeviceBoundSession;

/// Put this in a response's extensions to expire the short-lived cookie, so the browser
/// proves its key again before its next request (answer a `307` to the same URL: the
/// browser refreshes, then follows). For step-up.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequireFreshProof;

/// In the request's extensions when it carried a valid short-lived cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceBoundSession {
    /// The DBSC session identifier.
    pub id: String,
    /// When the key was last proven (the cookie was minted).
    pub proven_at: SystemTime,
}

/// In the request's extensions when it carried `Secure-Session-Skipped`: the browser tried
/// to refresh these sessions first and could not (their endpoint failed or was unreachable,
/// or its signing quota ran out), so the request comes without a short-lived cookie and
/// proves no key. What to do is the application's choice (W3C DBSC): fail closed on
/// sensitive routes, or let the user on with less (the login cookie, once re-bound, no
/// longer opens by itself). At most 16 sessions are read from the header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshSkipped(pub Vec<SkippedRefresh>);
