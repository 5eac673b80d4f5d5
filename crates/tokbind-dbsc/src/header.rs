//! The DBSC header fields (W3C DBSC §"Header fields"), built strictly and parsed the way
//! Chromium 156 really sends them.
//!
//! The spec makes every field an RFC 9651 Structured Field; Chromium sends
//! `Secure-Session-Response` and `Sec-Secure-Session-Id` *bare*, without the sf-string
//! quotes. Both readings are accepted. Session identifiers are drawn from
//! `[A-Za-z][A-Za-z0-9._-]*`, where the bare, token and string readings agree.

use http::HeaderName;

// Header names as `HeaderName` constants: a lookup by `&str` would parse and validate the
// name on every request.

/// Response: asks the browser to register a session.
pub const REGISTRATION: HeaderName = HeaderName::from_static("secure-session-registration");
/// Response: a challenge for the next proof of a session.
pub const CHALLENGE: HeaderName = HeaderName::from_static("secure-session-challenge");
/// Request: the proof JWT.
pub const RESPONSE: HeaderName = HeaderName::from_static("secure-session-response");
/// Request (refresh): which session.
pub const SESSION_ID: HeaderName = HeaderName::from_static("sec-secure-session-id");
/// Request: the browser tried to refresh and could not.
pub const SKIPPED: HeaderName = HeaderName::from_static("secure-session-skipped");

/// An RFC 9651 sf-string: quoted, with `"` and `\` escaped. Only printable ASCII is
/// allowed; anything else is dropped (our own values never contain it).
pub fn sf_string(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars().filter(|c| (' '..='~').contains(c)) {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// `Secure-Session-Registration: (ES256 RS256);path="…";challenge="…"[;authorization="…"]`.
pub fn registration(
    algorithms: &[&str],
    path: &str,
    challenge: &str,
    authorization: Option<&str>,
) -> String {
    let mut out = format!(
        "({});path={};challenge={}",
        algorithms.join(" "),
        sf_string(path),
        sf_string(challenge)
    );
    if let Some(a) = authorization {
        out.push_str(";authorization=");
        out.push_str(&sf_string(a));
    }
    out
}

/// `Secure-Session-Challenge: "<challenge>";id="<session id>"`.
pub fn challenge(challenge: &str, session_id: &str) -> String {
    format!("{};id={}", sf_string(challenge), sf_string(session_id))
}

/// A header value that is an sf-string, or the same text bare (as Chromium sends it).
/// `None` for an empty value, a malformed quoted one, or one with characters no JWT or
/// session identifier has.
pub fn bare_or_string(value: &str) -> Option<String> {
    let value = value.trim();
    let inner = match value.strip_prefix('"') {
        Some(rest) => {
            let body = rest.strip_suffix('"')?;
            let mut out = String::with_capacity(body.len());
            let mut chars = body.chars();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => out.push(chars.next().filter(|n| *n == '"' || *n == '\\')?),
                    '"' => return None,
                    c => out.push(c),
                }
            }
            out
        }
        None => value.to_string(),
    };
    let ok = !inner.is_empty()
        && inner
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\');
    ok.then_some(inner)
}

/// Why the browser could not refresh a session (the tokens of `Secure-Session-Skipped`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SkipReason {
    /// The refresh endpoint could not be reached.
    Unreachable,
    /// The refresh endpoint answered with a server error (5xx).
    ServerError,
    /// The browser's signing quota for the site was used up.
    QuotaExceeded,
}

impl SkipReason {
    /// The header's token for this reason.
    pub fn token(self) -> &'static str {
        match self {
            Self::Unreachable => "unreachable",
            Self::ServerError => "server_error",
            Self::QuotaExceeded => "quota_exceeded",
        }
    }
}

/// One member of `Secure-Session-Skipped`: the browser tried to refresh this session
/// before the request and could not, so the request comes without its short-lived cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedRefresh {
    /// Why.
    pub reason: SkipReason,
    /// The DBSC session identifier.
    pub session_id: String,
}

/// The members of a `Secure-Session-Skipped` value (an sf-list of tokens, each with a
/// `session_identifier` sf-string parameter, e.g. `server_error;session_identifier="S1"`).
/// Members with an unknown token or no valid session identifier are left out.
pub fn skipped(value: &str) -> impl Iterator<Item = SkippedRefresh> + '_ {
    value.split(',').filter_map(|member| {
        let mut parts = member.split(';');
        let reason = match parts.next()?.trim() {
            "unreachable" => SkipReason::Unreachable,
            "server_error" => SkipReason::ServerError,
            "quota_exceeded" => SkipReason::QuotaExceeded,
            _ => return None,
        };
        let session_id = parts
            .filter_map(|p| p.split_once('='))
            .find(|(k, _)| k.trim() == "session_identifier")
            .and_then(|(_, v)| bare_or_string(v))
            .filter(|id| is_session_id(id))?;
        Some(SkippedRefresh { reason, session_id })
    })
}

/// Whether `id` is a session identifier this crate would issue (and so a safe bare value).
pub fn is_session_id(id: &str) -> bool {
    let mut bytes = id.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        && id.len() <= 64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_the_headers_chromium_accepts() {
        assert_eq!(
            registration(
                &["ES256", "RS256"],
                "/dbsc/register",
                "reg-chal-1",
                Some("authz-xyz")
            ),
            r#"(ES256 RS256);path="/dbsc/register";challenge="reg-chal-1";authorization="authz-xyz""#
        );
        assert_eq!(challenge("c1", "S1"), r#""c1";id="S1""#);
        assert_eq!(sf_string(r#"a"b\c"#), r#""a\"b\\c""#);
    }

    #[test]
    fn reads_bare_and_quoted_values() {
        assert_eq!(bare_or_string("S1").as_deref(), Some("S1"));
        assert_eq!(bare_or_string("\"S1\"").as_deref(), Some("S1"));
        assert_eq!(bare_or_string(" eyJ.a.b ").as_deref(), Some("eyJ.a.b"));
        for bad in ["", "\"", "\"S1", "\"a\"b\"", "a b", "\"\\x\""] {
            assert_eq!(bare_or_string(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn reads_skipped_refreshes() {
        // As Chromium 156 sent it after a refresh answered 500 (tests/chromium_dbsc.rs checks it still does).
        let one: Vec<_> = skipped(r#"server_error;session_identifier="S1""#).collect();
        assert_eq!(
            one,
            [SkippedRefresh {
                reason: SkipReason::ServerError,
                session_id: "S1".into()
            }]
        );
        let several: Vec<_> = skipped(
            r#"unreachable;session_identifier="a", quota_exceeded;x=1;session_identifier=b"#,
        )
        .map(|s| (s.reason.token(), s.session_id))
        .collect();
        assert_eq!(
            several,
            [("unreachable", "a".into()), ("quota_exceeded", "b".into())]
        );
        for ignored in [
            "",
            "server_error",
            r#"bogus;session_identifier="S1""#,
            r#"server_error;session_identifier="1bad""#,
            r#"server_error;session_identifier="S"1""#,
        ] {
            assert_eq!(skipped(ignored).count(), 0, "{ignored:?}");
        }
    }

    #[test]
    fn session_ids_are_unambiguous() {
        assert!(is_session_id("S1"));
        assert!(is_session_id("s.a-b_c9"));
        for bad in ["", "1S", "-a", "a b", "a\"", &"a".repeat(65)] {
            assert!(!is_session_id(bad), "{bad:?}");
        }
    }
}
