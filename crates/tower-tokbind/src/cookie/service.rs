//! [`BoundCookies`]: the service, and the rewriting of `Cookie` and `Set-Cookie`.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::SystemTime;

use cookie::Cookie;
use http::header::{COOKIE, SET_COOKIE};
use http::{HeaderMap, HeaderValue, Request, Response};
use pin_project_lite::pin_project;
use smallvec::SmallVec;
use tokbind_proto::{ProvenKey, ProvenKeys};
use tower_service::Service;

use super::binding::DropReason;
use super::layer::{Config, UnprovenClients};

/// The service made by [`BoundCookieLayer`](super::BoundCookieLayer).
#[derive(Debug, Clone)]
pub struct BoundCookies<S> {
    pub(crate) inner: S,
    pub(crate) config: Arc<Config>,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for BoundCookies<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        // Only proofs the policy accepts count: by default, a proof made for this very
        // request, because a cookie is a per-request bearer credential.
        let proven: Proven = req
            .extensions()
            .get::<ProvenKeys>()
            .map(|keys| {
                keys.acceptable(self.config.freshness, SystemTime::now())
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        filter_request_cookies(&self.config, req.headers_mut(), &proven);
        ResponseFuture {
            inner: self.inner.call(req),
            proven,
            config: Arc::clone(&self.config),
        }
    }
}

pin_project! {
    /// The response future of [`BoundCookies`]: binds the response's `Set-Cookie` headers.
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        proven: Proven,
        config: Arc<Config>,
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut res = ready!(this.inner.poll(cx))?;
        // New cookies are bound to the first acceptable key: the one the first layer proved.
        bind_set_cookies(this.config, res.headers_mut(), this.proven.first());
        Poll::Ready(Ok(res))
    }
}

/// The keys the request proved and the policy accepts (almost always one: no allocation).
type Proven = SmallVec<[ProvenKey; 1]>;

/// Check a presented cookie against every acceptable key; the first that opens it wins.
fn open<'v>(
    config: &Config,
    proven: &Proven,
    name: &str,
    value: &'v str,
) -> Result<&'v str, DropReason> {
    let mut keys = proven.iter();
    let first = config.keys.open(keys.next(), name, value);
    if first.is_ok() {
        return first;
    }
    // Report why it failed for the first key, the one new cookies are bound to.
    keys.find_map(|k| config.keys.open(Some(k), name, value).ok())
        .ok_or_else(|| first.unwrap_err())
}

/// Remove every configured cookie whose binding does not verify for a proven key, and
/// restore the original value of those that do. Other cookies pass byte for byte.
fn filter_request_cookies(config: &Config, headers: &mut HeaderMap, proven: &Proven) {
    if !headers.contains_key(COOKIE) {
        return;
    }
    let values: Vec<HeaderValue> = headers.get_all(COOKIE).iter().cloned().collect();
    headers.remove(COOKIE);
    for value in values {
        let Ok(text) = value.to_str() else {
            // Not text: nothing in it can be checked. Keep it only if no cookie could be ours.
            if config.names.is_some() {
                headers.append(COOKIE, value);
            }
            continue;
        };
        let mut kept: Vec<Cow<'_, str>> = Vec::new();
        for pair in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let parsed = Cookie::parse(pair).ok();
            let name = parsed
                .as_ref()
                .map_or_else(|| pair.split('=').next().unwrap_or("").trim(), |c| c.name());
            if !config.covers(name) {
                kept.push(Cow::Borrowed(pair));
                continue;
            }
            let Some(cookie) = parsed.as_ref() else {
                drop_cookie(config, name, DropReason::Malformed);
                continue;
            };
            let outcome = match (
                open(config, proven, cookie.name(), cookie.value()),
                proven.is_empty(),
                config.unproven,
            ) {
                // A cookie issued unbound is acceptable only where unbound issuing is on.
                (Ok(_), true, UnprovenClients::Refuse) => Err(DropReason::Unbound),
                (other, _, _) => other,
            };
            match outcome {
                Ok(original) => {
                    config.stats.accepted();
                    kept.push(Cow::Owned(format!("{}={original}", cookie.name())));
                }
                Err(reason) => drop_cookie(config, name, reason),
            }
        }
        if !kept.is_empty() {
            if let Ok(v) = HeaderValue::from_str(&kept.join("; ")) {
                headers.append(COOKIE, v);
            }
        }
    }
}

fn drop_cookie(config: &Config, name: &str, reason: DropReason) {
    config.stats.dropped(reason);
    tracing::debug!(
        cookie = name,
        reason = reason.reason(),
        "bound cookie removed from the request"
    );
}

/// Bind the configured cookies a response sets to `proven` (or mark them issued unbound,
/// or withhold them, per policy) and force `Secure`. Attributes are kept exactly as the
/// application wrote them: the new value is spliced into the original header text.
fn bind_set_cookies(config: &Config, headers: &mut HeaderMap, proven: Option<&ProvenKey>) {
    if !headers.contains_key(SET_COOKIE) {
        return;
    }
    let values: Vec<HeaderValue> = headers.get_all(SET_COOKIE).iter().cloned().collect();
    headers.remove(SET_COOKIE);
    for value in values {
        let parsed = value
            .to_str()
            .ok()
            .and_then(|t| Cookie::parse(t).ok().map(|c| (t, c)));
        let Some((text, cookie)) = parsed else {
            // Unparseable: it cannot be bound, so it is not sent when every cookie is bound.
            if config.names.is_some() {
                headers.append(SET_COOKIE, value);
            } else {
                config.stats.withheld();
            }
            continue;
        };
        if !config.covers(cookie.name()) || is_removal(&cookie) {
            headers.append(SET_COOKIE, value);
            continue;
        }
        let bound = match (proven, config.unproven) {
            (Some(key), _) => {
                config.stats.bound();
                config.keys.bind(Some(key), cookie.name(), cookie.value())
            }
            (None, UnprovenClients::IssueUnbound) => {
                config.stats.issued_unbound();
                config.keys.bind(None, cookie.name(), cookie.value())
            }
            (None, UnprovenClients::Refuse) => {
                config.stats.withheld();
                tracing::debug!(
                    cookie = cookie.name(),
                    "Set-Cookie withheld: the request proved no key"
                );
                continue;
            }
        };
        let attributes = text.find(';').map_or("", |i| &text[i..]);
        let mut out = format!("{}={bound}{attributes}", cookie.name());
        if cookie.secure() != Some(true) {
            out.push_str("; Secure");
        }
        match HeaderValue::from_str(&out) {
            Ok(v) => {
                headers.append(SET_COOKIE, v);
            }
            Err(_) => config.stats.withheld(),
        }
    }
}

/// A cookie that deletes itself (`Max-Age=0` or an `Expires` in the past) needs no binding:
/// logging out must work for every client.
fn is_removal(c: &Cookie<'_>) -> bool {
    c.max_age().is_some_and(|m| m.is_zero() || m.is_negative())
        || c.expires_datetime()
            .is_some_and(|t| t <= cookie::time::OffsetDateTime::now_utc())
}
