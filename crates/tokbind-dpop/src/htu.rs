//! `htu`: the request's target URI without query and fragment, compared after RFC 3986
//! §6.2.2 (syntax-based) and §6.2.3 (scheme-based) normalisation (RFC 9449 §4.3 step 9).
//!
//! Normalisation lower-cases scheme and host, drops a default port, resolves `.` and `..`
//! segments, upper-cases percent-encodings and decodes those of unreserved characters.
//! Anything else — an empty segment (`//`), a different case in the path — is a different
//! URI, and the proof is refused.

use std::fmt::Write as _;

use url::Url;

/// `htu` is not an absolute `http(s)` URI.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an absolute http(s) URI: {0}")]
pub struct HtuError(pub String);

/// The normal form of `uri` for `htu` comparison: `scheme://host[:port]/path`.
pub fn normalize(uri: &str) -> Result<String, HtuError> {
    let url = Url::parse(uri).map_err(|e| HtuError(format!("{uri:?}: {e}")))?;
    if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none() {
        return Err(HtuError(uri.to_string()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(HtuError(format!("{uri:?} has user information")));
    }
    let mut out = format!("{}://{}", url.scheme(), url.host_str().unwrap_or_default());
    if let Some(port) = url.port() {
        let _ = write!(out, ":{port}");
    }
    normalize_percent_encoding(url.path(), &mut out);
    Ok(out)
}

/// The `htu` a proof for a request to `path` on `public_origin` must carry. The origin is
/// configuration, never the request's `Host` (behind a proxy the app sees another one).
pub fn expected(public_origin: &str, path: &str) -> Result<String, HtuError> {
    normalize(&target(public_origin, path))
}

/// The request's URI as clients see it (`public_origin` + `path`), not yet normalised:
/// what [`expected`] normalises, and what a check that normalises anyway is given.
pub(crate) fn target(public_origin: &str, path: &str) -> String {
    let path = if path.starts_with('/') { path } else { "/" };
    format!("{}{path}", public_origin.trim_end_matches('/'))
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn normalize_percent_encoding(path: &str, out: &mut String) {
    let bytes = path.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            let b = (h * 16 + l) as u8;
            if is_unreserved(b) {
                out.push(b as char);
            } else {
                let _ = write!(out, "%{b:02X}");
            }
            i += 3;
            continue;
        }
        out.push(bytes[i] as char);
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equivalent_uris_normalise_alike() {
        let canonical = "https://server.example.com/token";
        for same in [
            "https://server.example.com/token",
            "HTTPS://Server.Example.COM/token",
            "https://server.example.com:443/token",
            "https://server.example.com/a/../token",
            "https://server.example.com/./token",
            "https://server.example.com/token?x=1#frag",
            "https://server.example.com/%74oken",
        ] {
            assert_eq!(normalize(same).unwrap(), canonical, "{same}");
        }
        assert_eq!(
            normalize("https://h.example/a%2fb").unwrap(),
            "https://h.example/a%2Fb"
        );
        assert_eq!(
            normalize("http://h.example:8080/").unwrap(),
            "http://h.example:8080/"
        );
    }

    #[test]
    fn different_uris_stay_different() {
        let canonical = normalize("https://resource.example.org/protectedresource").unwrap();
        for other in [
            "https://resource.example.org//protectedresource",
            "https://resource.example.org/ProtectedResource",
            "http://resource.example.org/protectedresource",
            "https://resource.example.org:8443/protectedresource",
            "https://resource.example.org/protectedresource/",
        ] {
            assert_ne!(normalize(other).unwrap(), canonical, "{other}");
        }
    }

    #[test]
    fn non_http_uris_are_errors() {
        for bad in [
            "",
            "/token",
            "urn:x:y",
            "ftp://h/x",
            "https://user:pw@h/x",
            "https://h/%",
        ] {
            let r = normalize(bad);
            if bad == "https://h/%" {
                assert_eq!(r.unwrap(), "https://h/%");
            } else {
                assert!(r.is_err(), "{bad}");
            }
        }
    }

    #[test]
    fn the_expected_uri_comes_from_configuration() {
        assert_eq!(
            expected("https://api.example/", "/v1/me").unwrap(),
            "https://api.example/v1/me"
        );
        assert_eq!(
            expected("https://api.example", "").unwrap(),
            "https://api.example/"
        );
    }
}
