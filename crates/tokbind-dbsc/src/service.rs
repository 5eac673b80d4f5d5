//! [`Dbsc`]: which requests go where — the two endpoints, the requests that need the store,
//! and the rest, straight to the application.

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::SystemTime;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response};
use http_body_util::{Either, Full};
use tower_service::Service;
use tower_tokbind::add_proven_key;
use tower_tokbind::cookie::CookieKeys;
use tower_tokbind::cookie::jar::RequestCookies;

use crate::Config;
use crate::app_response::finish;
use crate::cookies::{login_cookies, strip_retired};
use crate::endpoint::{answer, guarded, store_failure};
use crate::future::{Kind, ResponseFuture};
use crate::header;
use crate::header::SkippedRefresh;
use crate::markers::RefreshSkipped;
use crate::metrics;
use crate::refresh::refresh;
use crate::register::register;
use crate::session::bound_session;

/// The service made by [`DbscLayer`](crate::DbscLayer).
#[derive(Clone)]
pub struct Dbsc<S> {
    pub(crate) inner: S,
    pub(crate) config: Arc<Config>,
}

impl<S: std::fmt::Debug> std::fmt::Debug for Dbsc<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dbsc")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Dbsc<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    ReqBody: Send + 'static,
    ResBody: Send + 'static,
{
    type Response = Response<Either<ResBody, Full<Bytes>>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let c = &*self.config;
        if let Some(skipped) = refresh_skipped(req.headers()) {
            req.extensions_mut().insert(skipped);
        }
        let endpoint = match (req.method(), req.uri().path()) {
            (&Method::POST, path) if path == c.register_path => Some(Endpoint::Register),
            (&Method::POST, path) if path == c.refresh_path => Some(Endpoint::Refresh),
            _ => None,
        };
        let headers = req.headers();
        // One pass over the cookies: the short-lived one, or a login cookie in its
        // unbound form (which may have been retired), means a store lookup.
        let needs_store = endpoint.is_some()
            || RequestCookies::read(headers).pairs().any(|pair| {
                pair.is_named(&c.cookie_name)
                    || (CookieKeys::is_issued_unbound(pair.value())
                        && c.rebind.iter().any(|(r, _)| pair.is_named(r)))
            });
        if !needs_store {
            let login = login_cookies(c, headers);
            return ResponseFuture {
                kind: Kind::Direct {
                    future: self.inner.call(req),
                    config: Arc::clone(&self.config),
                    login,
                },
            };
        }

        // The service that was polled ready handles this request; a clone takes its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let config = Arc::clone(&self.config);
        let future = Box::pin(async move {
            let c = &*config;
            match endpoint {
                Some(Endpoint::Register) => {
                    let answer = register(c, req.headers()).await;
                    metrics::count(metrics::REGISTRATIONS, &answer);
                    return Ok(guarded(answer).map(Either::Right));
                }
                Some(Endpoint::Refresh) => {
                    let answer = refresh(c, req.headers()).await;
                    metrics::count(metrics::REFRESHES, &answer);
                    return Ok(guarded(answer).map(Either::Right));
                }
                None => {}
            }
            let now = SystemTime::now();
            let session = match bound_session(c, req.headers(), now).await {
                Ok(s) => s,
                Err(e) => return Ok(answer(Err(store_failure(e)))),
            };
            if let Err(e) = strip_retired(c, req.headers_mut()).await {
                return Ok(answer(Err(store_failure(e))));
            }
            // Read after the retired cookies were removed.
            let login = login_cookies(c, req.headers());
            if let Some((key, session)) = &session {
                add_proven_key(req.extensions_mut(), key.clone());
                req.extensions_mut().insert(session.clone());
            }
            let res = inner.call(req).await?;
            Ok(finish(c, res, session.as_ref().map(|(_, s)| s), &login).await)
        });
        ResponseFuture {
            kind: Kind::Boxed { future },
        }
    }
}

/// The DBSC endpoints the layer answers itself.
#[derive(Clone, Copy)]
pub(crate) enum Endpoint {
    Register,
    Refresh,
}

/// The sessions named in the request's `Secure-Session-Skipped` values, if any.
pub(crate) fn refresh_skipped(headers: &HeaderMap) -> Option<RefreshSkipped> {
    let skipped: Vec<SkippedRefresh> = headers
        .get_all(header::SKIPPED)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(header::skipped)
        .take(MAX_SKIPPED)
        .collect();
    let first = skipped.first()?;
    // One event per request, however many members the header has.
    tracing::info!(
        sessions = skipped.len(),
        session = %first.session_id,
        reason = first.reason.token(),
        "browser skipped a DBSC refresh"
    );
    Some(RefreshSkipped(skipped))
}

/// At most this many `Secure-Session-Skipped` members are read: a browser has a session or
/// two per site, and a header of thousands must cost no more than a few.
pub(crate) const MAX_SKIPPED: usize = 16;
