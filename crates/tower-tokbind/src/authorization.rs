//! The access token of a request's `Authorization` header, for the layers that check
//! tokens (`BoundBearerLayer`) and proofs made for them (`DpopLayer`), read one way.

use http::HeaderMap;
use http::header::AUTHORIZATION;

/// The schemes that carry an OAuth access token: `Bearer` (RFC 6750) and `DPoP`
/// (RFC 9449 §7.1). Scheme names are case-insensitive (RFC 9110 §11.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenScheme {
    /// `Authorization: Bearer <token>`.
    Bearer,
    /// `Authorization: DPoP <token>`.
    Dpop,
}

/// The request has more than one `Authorization` field line. The field is a singleton
/// (RFC 9110 §11.6.2); two credentials — `Bearer` and `DPoP` together, say — are a
/// malformed request (RFC 9449 §7.2), never "pick one".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MultipleAuthorization;

/// The access token and its scheme, borrowed from the headers. `Ok(None)` when there is no
/// `Authorization` header or it uses another scheme (`Basic`, …).
pub fn access_token(
    headers: &HeaderMap,
) -> Result<Option<(TokenScheme, &str)>, MultipleAuthorization> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return if headers.contains_key(AUTHORIZATION) {
            Err(MultipleAuthorization)
        } else {
            Ok(None)
        };
    };
    let Some((scheme, token)) = value.to_str().ok().and_then(|v| v.split_once(' ')) else {
        return Ok(None);
    };
    let scheme = if scheme.eq_ignore_ascii_case("bearer") {
        TokenScheme::Bearer
    } else if scheme.eq_ignore_ascii_case("dpop") {
        TokenScheme::Dpop
    } else {
        return Ok(None);
    };
    Ok(Some((scheme, token.trim())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(AUTHORIZATION, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn reads_bearer_and_dpop_tokens_only() {
        let token =
            |v: &[&str]| access_token(&headers(v)).map(|t| t.map(|(s, t)| (s, t.to_owned())));
        assert_eq!(token(&[]), Ok(None));
        assert_eq!(
            token(&["Bearer abc"]),
            Ok(Some((TokenScheme::Bearer, "abc".into())))
        );
        assert_eq!(
            token(&["dpop  xyz "]),
            Ok(Some((TokenScheme::Dpop, "xyz".into())))
        );
        assert_eq!(token(&["Basic dXNlcjpwdw=="]), Ok(None));
        assert_eq!(token(&["Bearer"]), Ok(None));
        assert_eq!(
            token(&["Bearer abc", "DPoP abc"]),
            Err(MultipleAuthorization)
        );
        assert_eq!(
            token(&["Basic x", "Bearer abc"]),
            Err(MultipleAuthorization)
        );
    }
}
