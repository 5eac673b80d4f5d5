//! The cookies DBSC sets and reads, on the shared reading of the `Cookie` header
//! (`tower_tokbind::cookie::jar`): the short-lived cookie, and retiring the login cookie's
//! unbound form.

use std::time::SystemTime;

use aws_lc_rs::digest;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::header::{COOKIE, SET_COOKIE};
use http::{HeaderMap, HeaderValue, Response};
use http_body_util::Full;
use smallvec::SmallVec;
use tokbind_jose::jwk::PublicJwk;
use tokbind_proto::Freshness;
use tower_tokbind::cookie::jar::{CookieHeaderBuilder, RequestCookies};

use crate::Config;
use crate::session::{MAX_LOOKUPS, random, session_key, unix};
use crate::store::StoreError;

/// The request's `Cookie` values, kept in case its response starts DBSC (shared bytes:
/// read only then).
pub(crate) fn login_cookies(c: &Config, headers: &HeaderMap) -> CookieValues {
    if c.rebind.is_empty() {
        CookieValues::new()
    } else {
        headers.get_all(COOKIE).iter().cloned().collect()
    }
}

/// A request's `Cookie` header values (almost always one: no allocation).
pub(crate) type CookieValues = SmallVec<[HeaderValue; 1]>;

/// The value of the first cookie written exactly `name` (read as the application will,
/// `tower_tokbind::cookie::jar`). What the layer acts on; any other spelling some parser
/// reads as `name` is the bound cookie layer's to remove.
pub(crate) fn cookie_value<'h>(cookies: &RequestCookies<'h>, name: &str) -> Option<&'h str> {
    cookies
        .pairs()
        .find(|p| p.is_spelled(name))
        .map(|p| p.value())
}

pub(crate) fn set_cookie(res: &mut Response<Full<Bytes>>, line: &str) {
    if let Ok(v) = HeaderValue::from_str(line) {
        res.headers_mut().append(SET_COOKIE, v);
    }
}

/// A new short-lived cookie for the session: `<sid>.<expiry>.<random>`, bound with the
/// cookie keys to the session key (so only this session's key opens it).
pub(crate) fn mint(c: &Config, sid: &str, jwk: &PublicJwk, now: SystemTime) -> String {
    let expiry = now.checked_add(c.cookie_lifetime).map_or(u64::MAX, unix);
    let core = format!("{sid}.{expiry}.{}", random(9));
    let value = c.keys.bind(
        Some(&session_key(jwk, sid, Freshness::ThisRequest)),
        &c.cookie_name,
        &core,
    );
    format!(
        "{}={value}; Max-Age={}; {}",
        c.cookie_name,
        c.cookie_lifetime.as_secs(),
        c.cookie_attributes
    )
}

pub(crate) fn cookie_digest(name: &str, value: &str) -> String {
    let hash = digest::digest(&digest::SHA256, format!("{name}={value}").as_bytes());
    URL_SAFE_NO_PAD.encode(hash)
}

/// Where the retirement of a login cookie's unbound form is kept: under the cookie's name
/// (as configured) and its value as the application's parsers read it (trimmed), so every
/// spelling of the same cookie finds it.
pub(crate) fn retired_key(name: &str, presented: &str) -> String {
    format!("dbsc:retired:{}", cookie_digest(name, presented))
}

/// Remove login cookies whose unbound form was retired at registration — every copy, in
/// every spelling any application parser reads as the login cookie — and hand on a header
/// rebuilt from the rest.
pub(crate) async fn strip_retired(c: &Config, headers: &mut HeaderMap) -> Result<(), StoreError> {
    let mut kept = CookieHeaderBuilder::default();
    let mut removed = 0;
    {
        let cookies = RequestCookies::read(headers);
        // Each distinct value that really was issued unbound is looked up once.
        let mut verdicts: SmallVec<[(&str, bool); 2]> = SmallVec::new();
        for piece in cookies.pieces() {
            let Ok(pair) = piece else {
                // No parser agrees on it: not handed on (the bound cookie layer would
                // remove it anyway).
                continue;
            };
            let value = pair.value();
            let login = c.rebind.iter().find(|(name, _)| pair.is_named(name));
            let retired = match login {
                // Only a value whose MAC says it was issued unbound can have been retired
                // (anything else the bound cookie layer refuses by itself): checked here,
                // without the store.
                Some((name, _)) if c.keys.open(None, name, value).is_ok() => {
                    match verdicts.iter().find(|(v, _)| *v == value) {
                        Some(&(_, retired)) => retired,
                        None => {
                            let retired = verdicts.len() >= MAX_LOOKUPS
                                || c.store.get(&retired_key(name, value)).await?.is_some();
                            verdicts.push((value, retired));
                            retired
                        }
                    }
                }
                _ => false,
            };
            if retired {
                removed += 1;
            } else {
                kept.push(pair.written_name(), pair.value());
            }
        }
        if removed == 0 && cookies.pieces().all(Result::is_ok) {
            return Ok(());
        }
    }
    kept.replace(headers);
    if removed > 0 {
        tracing::debug!(
            removed,
            "retired unbound cookie removed: its session is device-bound"
        );
    }
    Ok(())
}
