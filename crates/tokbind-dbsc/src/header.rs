//! The DBSC header fields (W3C DBSC §"Header fields"), built strictly and parsed the way
//! Chromium 156 really sends them.
//!
//! The spec makes every field an RFC 9651 Structured Field; Chromium sends
//! `Secure-Session-Response` and `Sec-Secure-Session-Id` *bare*, without the sf-string
//! quotes. Both readings are accepted. Session identifiers are drawn from
//! `[A-Za-z][A-Za-z0-9._-]*`, where the bare, token and string readings agree.

/// Response: asks the browser to register a session.
pub const REGISTRATION: &str = "secure-session-registration";
/// Response: a challenge for the next proof of a session.
pub const CHALLENGE: &str = "secure-session-challenge";
/// Request: the proof JWT.
pub const RESPONSE: &str = "secure-session-response";
/// Request (refresh): which session.
pub const SESSION_ID: &str = "sec-secure-session-id";
/// Request: the browser tried to refresh and could not.
pub const SKIPPED: &str = "secure-session-skipped";

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
    fn session_ids_are_unambiguous() {
        assert!(is_session_id("S1"));
        assert!(is_session_id("s.a-b_c9"));
        for bad in ["", "1S", "-a", "a b", "a\"", &"a".repeat(65)] {
            assert!(!is_session_id(bad), "{bad:?}");
        }
    }
}
