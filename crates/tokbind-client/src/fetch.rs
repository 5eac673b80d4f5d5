//! Following redirects like a browser, including the federation step of RFC 8473 §5.3.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::header::{
    AUTHORIZATION, CONTENT_ENCODING, CONTENT_LANGUAGE, CONTENT_LENGTH, CONTENT_LOCATION,
    CONTENT_TYPE, COOKIE, HOST, LAST_MODIFIED, LOCATION, PROXY_AUTHORIZATION, SET_COOKIE,
    TRANSFER_ENCODING,
};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, Uri};
use http_body_util::Full;
use tokbind_proto::header::SEC_TOKEN_BINDING;
use tokbind_proto::{Tbh, TokenBindingSigner};

use crate::{Client, ClientError, Connection, StoreKey, Target};

/// `Include-Referred-Token-Binding-ID` (RFC 8473 §5.3).
pub const INCLUDE_REFERRED: &str = "include-referred-token-binding-id";
/// The draft spelling, honoured only when configured.
pub const INCLUDE_REFERER_LEGACY: &str = "include-referer-token-binding-id";

/// Headers of the caller's request that speak for it to the origin it named, and so are
/// not sent on once a redirect leaves that origin (RFC 9110 §15.4, item 3; browsers and
/// `reqwest` drop the credentials alike). `Cookie` goes too: with a cookie store, the
/// store decides per origin; `Sec-Token-Binding` names the key used for the first site;
/// `Host` names the first origin.
const ORIGIN_BOUND: [HeaderName; 6] = [
    AUTHORIZATION,
    PROXY_AUTHORIZATION,
    COOKIE,
    HeaderName::from_static("dpop"),
    HeaderName::from_static(SEC_TOKEN_BINDING),
    HOST,
];

/// Headers describing a body, removed when a redirect drops the body (RFC 9110 §15.4,
/// item 5).
const CONTENT_HEADERS: [HeaderName; 7] = [
    CONTENT_ENCODING,
    CONTENT_LANGUAGE,
    CONTENT_LOCATION,
    CONTENT_TYPE,
    CONTENT_LENGTH,
    LAST_MODIFIED,
    TRANSFER_ENCODING,
];

/// The result of [`Client::fetch`]: the final response and every hop on the way.
#[derive(Debug)]
pub struct Fetched {
    /// The last response (not a redirect, or the last one allowed).
    pub response: Response<Bytes>,
    /// Each request made, in order.
    pub hops: Vec<Hop>,
}

/// One request of a [`Client::fetch`].
#[derive(Debug, Clone)]
pub struct Hop {
    /// What was requested.
    pub uri: Uri,
    /// The response status.
    pub status: StatusCode,
    /// `tbh` of the provided binding sent, if Token Binding was negotiated.
    pub provided: Option<Tbh>,
    /// `tbh` of the referred binding sent, if the previous response asked for one.
    pub referred: Option<Tbh>,
    /// Whether the response asked for a referred binding on the next request.
    pub include_referred: bool,
}

pub(crate) type Jar = Arc<Mutex<cookie_store::CookieStore>>;

impl Client {
    /// Send `req` (an absolute `https://` URI), following redirects up to the configured
    /// limit, with the cookie store if one is configured.
    ///
    /// When a redirect carries `Include-Referred-Token-Binding-ID: true` (any case) and the
    /// request that got it carried a Token Binding header, the *next* request — and only
    /// that one — also carries a referred binding: the key this client uses for the
    /// redirecting origin, signed over the EKM of the connection to the new origin
    /// (RFC 8473 §5.3). The header is ignored on non-3xx responses.
    ///
    /// The caller's headers go with every redirect that stays on the origin (scheme, host
    /// and port) of the one before it. Once a redirect leaves it, `Authorization`,
    /// `Proxy-Authorization`, `Cookie`, `DPoP`, `Sec-Token-Binding` and `Host` are dropped
    /// for the rest of the chain, as browsers do; the cookie store, if enabled, still
    /// sends each origin its own cookies. A redirect to anything but `https` is not
    /// followed: [`ClientError::InsecureRedirect`].
    pub async fn fetch(&self, req: Request<Full<Bytes>>) -> Result<Fetched, ClientError> {
        let (parts, body) = req.into_parts();
        let mut method = parts.method;
        let mut uri = parts.uri;
        let mut body = body;
        let mut extra_headers = parts.headers;
        let mut hops = Vec::new();
        let mut connections: HashMap<String, Connection> = HashMap::new();
        let mut referred: Option<StoreKey> = None;
        let mut target = Target::of(&uri)?;
        loop {
            let conn = match connections.entry(target.origin.clone()) {
                Entry::Occupied(open) => open.into_mut(),
                Entry::Vacant(slot) => slot.insert(self.connect(&uri).await?),
            };

            let mut req = Request::builder()
                .method(method.clone())
                .uri(uri.clone())
                .body(body.clone())
                .expect("valid request");
            *req.headers_mut() = extra_headers.clone();
            if let Some(cookies) = self.cookies_for(&uri) {
                req.headers_mut().insert(COOKIE, cookies);
            }
            // Referred binding: one hop only (RFC 8473 §5.3), so it is taken, not kept.
            let referred_key = referred.take();
            let provided = conn.provided_key().map(|k| k.token_binding_id().tbh());
            let referred_tbh = match (&referred_key, conn.provided_key()) {
                (Some(r), Some(_)) => {
                    let value = conn.header_with_referred(r.as_ref())?;
                    req.headers_mut().insert(SEC_TOKEN_BINDING, value);
                    Some(r.token_binding_id().tbh())
                }
                _ => None,
            };
            let sent_token_binding = conn.token_binding_header().is_some();
            let res = conn.send(req).await?;
            self.store_cookies(&uri, &res);

            let include =
                res.status().is_redirection() && sent_token_binding && self.asks_for_referred(&res);
            hops.push(Hop {
                uri: uri.clone(),
                status: res.status(),
                provided,
                referred: referred_tbh,
                include_referred: include,
            });
            let next = res
                .headers()
                .get(LOCATION)
                .filter(|_| res.status().is_redirection())
                .and_then(|l| l.to_str().ok())
                .and_then(|l| resolve(&uri, l));
            match next {
                Some(next) if hops.len() <= self.max_redirects => {
                    // This client speaks only https: a redirect elsewhere (an `http:` URL,
                    // a downgrade) is refused, not followed without TLS.
                    let next_target = Target::of(&next)
                        .map_err(|_| ClientError::InsecureRedirect(next.clone()))?;
                    if include {
                        referred = conn.provided_key().cloned();
                    }
                    // 301/302/303 turn into GET without a body; 307/308 repeat the request.
                    if !matches!(
                        res.status(),
                        StatusCode::TEMPORARY_REDIRECT | StatusCode::PERMANENT_REDIRECT
                    ) {
                        method = Method::GET;
                        body = Full::default();
                        remove(&mut extra_headers, &CONTENT_HEADERS);
                    }
                    if next_target.origin != target.origin {
                        remove(&mut extra_headers, &ORIGIN_BOUND);
                    }
                    uri = next;
                    target = next_target;
                }
                _ => {
                    return Ok(Fetched {
                        response: res,
                        hops,
                    });
                }
            }
        }
    }

    fn asks_for_referred(&self, res: &Response<Bytes>) -> bool {
        let is_true = |name: &str| {
            res.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
        };
        is_true(INCLUDE_REFERRED)
            || (self.legacy_include_referer && is_true(INCLUDE_REFERER_LEGACY))
    }

    /// The `Cookie` header the cookie store would send to `uri`, if any.
    pub fn cookies_for(&self, uri: &Uri) -> Option<HeaderValue> {
        let jar = self.cookies.as_ref()?;
        let url = url::Url::parse(&uri.to_string()).ok()?;
        let jar = jar.lock().unwrap_or_else(|p| p.into_inner());
        let pairs: Vec<String> = jar
            .get_request_values(&url)
            .map(|(n, v)| format!("{n}={v}"))
            .collect();
        if pairs.is_empty() {
            return None;
        }
        HeaderValue::from_str(&pairs.join("; ")).ok()
    }

    fn store_cookies(&self, uri: &Uri, res: &Response<Bytes>) {
        let (Some(jar), Ok(url)) = (self.cookies.as_ref(), url::Url::parse(&uri.to_string()))
        else {
            return;
        };
        let mut jar = jar.lock().unwrap_or_else(|p| p.into_inner());
        for value in res.headers().get_all(SET_COOKIE) {
            if let Ok(text) = value.to_str() {
                let _ = jar.parse(text, &url);
            }
        }
    }
}

fn remove(headers: &mut HeaderMap, names: &[HeaderName]) {
    for name in names {
        headers.remove(name);
    }
}

/// Resolve a `Location` against the URI it answered.
fn resolve(base: &Uri, location: &str) -> Option<Uri> {
    let base = url::Url::parse(&base.to_string()).ok()?;
    base.join(location).ok()?.as_str().parse().ok()
}

impl Connection {
    /// A `Sec-Token-Binding` value with this connection's provided binding and a referred
    /// binding made with `referred` (the key of another origin), both over this
    /// connection's EKM (RFC 8473 §5.3).
    pub fn header_with_referred(
        &self,
        referred: &dyn TokenBindingSigner,
    ) -> Result<HeaderValue, ClientError> {
        let (Some(key), Some(ekm)) = (self.key.as_ref(), self.info.ekm()) else {
            return Err(ClientError::NotNegotiated);
        };
        let value = tokbind_proto::MessageBuilder::new(ekm)
            .provided(key.as_ref())?
            .referred(referred)?
            .to_header_value()?;
        Ok(HeaderValue::try_from(value).expect("base64url is a valid header value"))
    }
}
