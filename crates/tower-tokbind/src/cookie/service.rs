//! [`BoundCookies`]: the service, and the rewriting of `Cookie` and `Set-Cookie`.

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
use tokbind_proto::{Freshness, Mechanism, ProvenKey, ProvenKeys};
use tower_service::Service;

use super::binding::DropReason;
use super::jar::{CookieHeaderBuilder, Pair, RequestCookies, Unreadable};
use super::{Config, UnprovenClients};
use crate::metrics::{COOKIES_PRESENTED, COOKIES_SET, count};

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
        let binding = filter_request_cookies(&self.config, req.headers_mut(), &proven);
        ResponseFuture {
            inner: self.inner.call(req),
            binding,
            config: Arc::clone(&self.config),
        }
    }
}

pin_project! {
    /// The response future of [`BoundCookies`]: binds the response's `Set-Cookie` headers.
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        binding: Binding,
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
        bind_set_cookies(this.config, res.headers_mut(), this.binding);
        Poll::Ready(Ok(res))
    }
}

/// The keys the request proved and the policy accepts (almost always one: no allocation).
type Proven = SmallVec<[ProvenKey; 1]>;

/// Which key each cookie the response sets is bound to (README "Decisions": a cookie never
/// changes key).
#[derive(Debug, Default)]
struct Binding {
    /// For a cookie the request presented and that opened with a key other than the one
    /// `new` names: that key. Almost always empty.
    presented: Vec<(String, ProvenKey)>,
    /// For every other cookie.
    new: NewCookies,
}

/// How the cookies a request did not present are bound.
#[derive(Debug, Default)]
enum NewCookies {
    /// To this key: the one the request's cookies opened with, or else the preferred key
    /// proven for this very request.
    Key(ProvenKey),
    /// As for a client that proved nothing ([`UnprovenClients`]).
    #[default]
    Unproven,
    /// Not at all: the request's cookies opened with different keys, and a new cookie
    /// could carry the authority of either.
    Withheld,
}

impl Binding {
    fn key_for(&self, name: &str) -> Result<Option<&ProvenKey>, ()> {
        match self.presented.iter().find(|(n, _)| n == name) {
            Some((_, key)) => Ok(Some(key)),
            None => match &self.new {
                NewCookies::Key(key) => Ok(Some(key)),
                NewCookies::Unproven => Ok(None),
                NewCookies::Withheld => Err(()),
            },
        }
    }
}

/// The order in which keys are preferred for binding a cookie: the Token Binding provided
/// ID, then a client certificate, then a DPoP key, then a DBSC session key.
fn preference(key: &ProvenKey) -> u8 {
    match key.mechanism() {
        Mechanism::TokenBinding => 0,
        Mechanism::MtlsCertificate => 1,
        Mechanism::Dpop => 2,
        Mechanism::Dbsc => 3,
        _ => 4,
    }
}

/// Check a presented cookie against every acceptable key; the first that opens it wins.
/// On success, the original value and which key opened it (`None`: issued unbound).
fn open<'v>(
    config: &Config,
    proven: &Proven,
    name: &str,
    value: &'v str,
) -> Result<(&'v str, Option<usize>), DropReason> {
    let first = config.keys.open(proven.first(), name, value);
    if let Ok(v) = first {
        return Ok((v, (!proven.is_empty()).then_some(0)));
    }
    // Report why it failed for the first key.
    (1..proven.len())
        .find_map(|i| {
            let v = config.keys.open(Some(&proven[i]), name, value).ok()?;
            Some((v, Some(i)))
        })
        .ok_or_else(|| first.unwrap_err())
}

/// What the layer made of one piece of the header.
enum Judged<'h> {
    /// Not a covered cookie: handed on as it came.
    Other(&'h str, &'h str),
    /// A covered cookie that opened, with its original value and the key it opened with
    /// (an index into the proven keys; `None`: issued unbound).
    Opened(&'h str, &'h str, Option<usize>),
    /// Removed.
    Dropped,
}

/// Hand the application a `Cookie` header rebuilt from what was read and judged: every
/// covered cookie whose binding verifies for an acceptable key, with its original value;
/// every other readable pair as it came. Removed: covered cookies that do not verify, names
/// that a parser reads as covered but that are written otherwise, copies of one cookie that
/// opened with different keys, and pieces no parser reads alike ([`jar`](super::jar)).
/// Returns how the response's cookies are to be bound.
fn filter_request_cookies(config: &Config, headers: &mut HeaderMap, proven: &Proven) -> Binding {
    let fresh = || {
        let key = proven
            .iter()
            .filter(|k| k.freshness() == Freshness::ThisRequest)
            .min_by_key(|k| preference(k));
        key.map_or(NewCookies::Unproven, |k| NewCookies::Key(k.clone()))
    };
    if !headers.contains_key(COOKIE) {
        return Binding {
            presented: Vec::new(),
            new: fresh(),
        };
    }
    let mut kept = CookieHeaderBuilder::default();
    let mut changed = false;
    let binding = {
        let cookies = RequestCookies::read(headers);
        let mut judged: SmallVec<[Judged<'_>; 4]> = cookies
            .pieces()
            .map(|piece| {
                let j = judge(config, proven, piece);
                changed |= !matches!(j, Judged::Other(..));
                j
            })
            .collect();
        // Copies of one cookie that opened with different keys: the application reads one
        // of them — which one depends on its parser (the last for tower-cookies and
        // axum-extra, the first for `headers::Cookie`) — and a response setting the cookie
        // again could not know whose it is. None is handed on.
        let key_of = |i: Option<usize>| i.map(|i| &proven[i]);
        for at in 0..judged.len() {
            let Judged::Opened(name, _, key) = judged[at] else {
                continue;
            };
            let conflict = judged.iter().any(
                |j| matches!(*j, Judged::Opened(n, _, k) if n == name && key_of(k) != key_of(key)),
            );
            if conflict {
                for j in judged.iter_mut() {
                    if matches!(*j, Judged::Opened(n, ..) if n == name) {
                        drop_cookie(name, DropReason::Conflicting);
                        *j = Judged::Dropped;
                    }
                }
            }
        }
        // Which key opened each covered cookie.
        let mut opened: SmallVec<[(&str, &ProvenKey); 2]> = SmallVec::new();
        for j in &judged {
            match *j {
                Judged::Other(name, value) => kept.push(name, value),
                Judged::Opened(name, original, key) => {
                    count(COOKIES_PRESENTED, "accepted");
                    kept.push(name, original);
                    if let Some(key) = key_of(key)
                        && opened.iter().all(|(n, _)| *n != name)
                    {
                        opened.push((name, key));
                    }
                }
                Judged::Dropped => {}
            }
        }
        // A cookie stays with the key it opened with. New ones go with the key the
        // request's cookies opened with (the session's), or else a key proven for this
        // very request — never with a key that merely came along with a stolen cookie, and
        // not at all when the cookies opened with different keys.
        let new = match opened.split_first() {
            None => fresh(),
            Some(((_, first), rest)) if rest.iter().all(|(_, k)| k == first) => {
                NewCookies::Key((*first).clone())
            }
            Some(_) => NewCookies::Withheld,
        };
        let presented = opened
            .iter()
            .filter(|(_, k)| !matches!(&new, NewCookies::Key(n) if n == *k))
            .map(|(name, k)| ((*name).to_string(), (*k).clone()))
            .collect();
        Binding { presented, new }
    };
    if changed {
        kept.replace(headers);
    }
    binding
}

/// Judge one piece of the header (see [`filter_request_cookies`]).
fn judge<'h>(config: &Config, proven: &Proven, piece: &Result<Pair<'h>, Unreadable>) -> Judged<'h> {
    let pair = match piece {
        Ok(pair) => pair,
        Err(why) => {
            drop_cookie("-", DropReason::Unreadable(*why));
            return Judged::Dropped;
        }
    };
    let name = pair.written_name();
    if !config.covers(name) && !config.covers(pair.name()) {
        return Judged::Other(name, pair.value());
    }
    if !pair.is_spelled(name) {
        drop_cookie(name, DropReason::Disguised);
        return Judged::Dropped;
    }
    let outcome = match (
        open(config, proven, name, pair.value()),
        proven.is_empty(),
        config.unproven,
    ) {
        // A cookie issued unbound is acceptable only where unbound issuing is on.
        (Ok(_), true, UnprovenClients::Refuse) => Err(DropReason::Unbound),
        (other, _, _) => other,
    };
    match outcome {
        Ok((original, key)) => Judged::Opened(name, original, key),
        Err(reason) => {
            drop_cookie(name, reason);
            Judged::Dropped
        }
    }
}

fn drop_cookie(name: &str, reason: DropReason) {
    count(COOKIES_PRESENTED, reason.reason());
    tracing::debug!(
        cookie = name,
        reason = reason.reason(),
        "cookie removed from the request"
    );
}

/// Bind the configured cookies a response sets as `binding` says (or mark them issued unbound,
/// or withhold them, per policy) and force `Secure`. Attributes are kept exactly as the
/// application wrote them: the new value is spliced into the original header text.
fn bind_set_cookies(config: &Config, headers: &mut HeaderMap, binding: &Binding) {
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
                count(COOKIES_SET, "withheld");
            }
            continue;
        };
        if !config.covers(cookie.name()) || is_removal(&cookie) {
            headers.append(SET_COOKIE, value);
            continue;
        }
        let bound = match (binding.key_for(cookie.name()), config.unproven) {
            (Err(()), _) => {
                count(COOKIES_SET, "withheld");
                tracing::debug!(
                    cookie = cookie.name(),
                    "Set-Cookie withheld: the request's cookies opened with different keys"
                );
                continue;
            }
            (Ok(Some(key)), _) => {
                count(COOKIES_SET, "bound");
                config.keys.bind(Some(key), cookie.name(), cookie.value())
            }
            (Ok(None), UnprovenClients::IssueUnbound) => {
                count(COOKIES_SET, "issued_unbound");
                config.keys.bind(None, cookie.name(), cookie.value())
            }
            (Ok(None), UnprovenClients::Refuse) => {
                count(COOKIES_SET, "withheld");
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
            Err(_) => count(COOKIES_SET, "withheld"),
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
