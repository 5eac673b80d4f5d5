//! `Include-Referred-Token-Binding-ID: true` on redirects (RFC 8473 §5.3).
//!
//! A Token Consumer (a relying party, an OAuth client) that redirects the client to a Token
//! Provider (an IdP, an authorization server) adds this header to the redirect, asking the
//! client to reveal its Token Binding ID for the consumer — as a *referred* binding — on
//! the next request to the provider, which can then bind the tokens it issues to it.
//!
//! Revealing an ID to another party must be an application decision (RFC 8473 §6), so the
//! layer adds the header only where configured: for redirects to given origins, for
//! redirects answered on given paths, or — explicitly — for every redirect. Only 3xx
//! responses get it; clients ignore it anywhere else.
//!
//! ```
//! use axum::{Router, response::Redirect, routing::get};
//! use tower_tokbind::include_referred::IncludeReferredLayer;
//!
//! let app: Router = Router::new()
//!     .route("/login", get(|| async { Redirect::to("https://idp.example/authorize?client_id=rp") }))
//!     .layer(IncludeReferredLayer::for_redirects_to(["https://idp.example"])?);
//! # Ok::<(), tower_tokbind::include_referred::InvalidOrigin>(())
//! ```

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use http::header::LOCATION;
use http::{HeaderName, HeaderValue, Request, Response};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

/// RFC 8473 §5.3 response header.
pub const INCLUDE_REFERRED_TOKEN_BINDING_ID: HeaderName =
    HeaderName::from_static("include-referred-token-binding-id");
/// The pre-RFC spelling (draft-ietf-tokbind-https ≤ -04); emitted only when configured.
pub const INCLUDE_REFERER_TOKEN_BINDING_ID: HeaderName =
    HeaderName::from_static("include-referer-token-binding-id");

/// Adds `Include-Referred-Token-Binding-ID: true` to configured redirects.
#[derive(Debug, Clone)]
#[must_use]
pub struct IncludeReferredLayer {
    config: Arc<Config>,
}

#[derive(Debug, Clone, Default)]
struct Config {
    all: bool,
    origins: Vec<String>,
    paths: Vec<String>,
    legacy_name: bool,
}

impl IncludeReferredLayer {
    fn with(mut self, f: impl FnOnce(&mut Config)) -> Self {
        f(Arc::make_mut(&mut self.config));
        self
    }

    /// Add the header to redirects whose `Location` is on one of these origins
    /// (`https://host[:port]`, compared case-insensitively, the default port implied).
    ///
    /// An entry that is not an absolute URL with a scheme and a host is an error, rather
    /// than an origin that silently never matches.
    pub fn for_redirects_to<I, S>(origins: I) -> Result<Self, InvalidOrigin>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let origins = origins
            .into_iter()
            .map(|o| origin_of(o.as_ref()).ok_or_else(|| InvalidOrigin(o.as_ref().to_owned())))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            config: Arc::new(Config {
                origins,
                ..Config::default()
            }),
        })
    }

    /// Add the header to redirects answered on these request paths (exact match).
    pub fn for_paths<I, S>(paths: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let paths = paths.into_iter().map(Into::into).collect();
        Self {
            config: Arc::new(Config {
                paths,
                ..Config::default()
            }),
        }
    }

    /// Add the header to every redirect: the client will reveal this site's Token Binding
    /// ID to any site it redirects to.
    pub fn for_all_redirects() -> Self {
        Self {
            config: Arc::new(Config {
                all: true,
                ..Config::default()
            }),
        }
    }

    /// Also match redirects answered on these paths.
    pub fn and_paths<I, S>(self, paths: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.with(|c| c.paths.extend(paths.into_iter().map(Into::into)))
    }

    /// Also emit the draft name `Include-Referer-Token-Binding-ID`, for clients built
    /// against draft-ietf-tokbind-https ≤ -04 (default off).
    pub fn legacy_header_name(self, emit: bool) -> Self {
        self.with(|c| c.legacy_name = emit)
    }
}

impl Config {
    fn applies(&self, path: &str, location: Option<&HeaderValue>) -> bool {
        if self.all || self.paths.iter().any(|p| p == path) {
            return true;
        }
        let target = location.and_then(|l| l.to_str().ok()).and_then(origin_of);
        target.is_some_and(|t| self.origins.contains(&t))
    }
}

/// `scheme://host:port` of an absolute URL, lower-cased, with the default port made
/// explicit; `None` for relative URLs (which stay on this origin).
/// An origin given to [`IncludeReferredLayer::for_redirects_to`] is not an absolute URL
/// with a scheme and a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidOrigin(pub String);

impl std::error::Error for InvalidOrigin {}

impl std::fmt::Display for InvalidOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "not an origin (scheme://host[:port]): {:?}", self.0)
    }
}

fn origin_of(url: &str) -> Option<String> {
    let uri: http::Uri = url.parse().ok()?;
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let authority = uri.authority()?;
    let port = authority
        .port_u16()
        .unwrap_or(if scheme == "https" { 443 } else { 80 });
    Some(format!(
        "{scheme}://{}:{port}",
        authority.host().to_ascii_lowercase()
    ))
}

impl<S> Layer<S> for IncludeReferredLayer {
    type Service = IncludeReferred<S>;

    fn layer(&self, inner: S) -> Self::Service {
        IncludeReferred {
            inner,
            config: Arc::clone(&self.config),
        }
    }
}

/// The service made by [`IncludeReferredLayer`].
#[derive(Debug, Clone)]
pub struct IncludeReferred<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for IncludeReferred<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let path = req.uri().path().to_string();
        ResponseFuture {
            inner: self.inner.call(req),
            path,
            config: Arc::clone(&self.config),
        }
    }
}

pin_project! {
    /// The response future of [`IncludeReferred`].
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        path: String,
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
        if res.status().is_redirection()
            && this.config.applies(this.path, res.headers().get(LOCATION))
        {
            let true_ = HeaderValue::from_static("true");
            res.headers_mut()
                .insert(INCLUDE_REFERRED_TOKEN_BINDING_ID, true_.clone());
            if this.config.legacy_name {
                res.headers_mut()
                    .insert(INCLUDE_REFERER_TOKEN_BINDING_ID, true_);
            }
        }
        Poll::Ready(Ok(res))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_normalised() {
        assert_eq!(
            origin_of("https://IdP.example/authorize?x=1").as_deref(),
            Some("https://idp.example:443")
        );
        assert_eq!(
            origin_of("https://idp.example:8443").as_deref(),
            Some("https://idp.example:8443")
        );
        assert_eq!(origin_of("/relative"), None);
        let c = Config {
            origins: vec![origin_of("https://idp.example").unwrap()],
            ..Config::default()
        };
        let loc = |s: &'static str| HeaderValue::from_static(s);
        assert!(c.applies("/x", Some(&loc("https://idp.example:443/a"))));
        assert!(!c.applies("/x", Some(&loc("https://evil.example/a"))));
        assert!(!c.applies("/x", Some(&loc("https://idp.example.evil.com/a"))));
        assert!(!c.applies("/x", None));
    }

    #[test]
    fn an_entry_that_is_not_an_origin_is_an_error() {
        for bad in ["idp.example", "/relative", "", "https://"] {
            let err =
                IncludeReferredLayer::for_redirects_to(["https://ok.example", bad]).unwrap_err();
            assert_eq!(err, InvalidOrigin(bad.to_owned()));
        }
        assert!(IncludeReferredLayer::for_redirects_to(["https://ok.example:8443"]).is_ok());
    }
}
