//! The request body [`serve`](crate::serve()) hands the service: hyper's, held to the
//! server's [`Limits::progress_timeout`](crate::Limits::progress_timeout) and
//! [`Limits::min_data_rate`](crate::Limits::min_data_rate).
//!
//! Without it, a client that sends its headers at once and then its body a byte a minute
//! keeps a request in flight, and a connection open, for as long as it likes: the header
//! read and idle timeouts end where a request begins.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

use crate::pace::{Pace, Pacer};

pin_project_lite::pin_project! {
    /// The body of a request served by [`serve`](crate::serve()).
    ///
    /// It reads as hyper's [`Incoming`] does, except that a client that keeps the
    /// application waiting for the next bytes for longer than the server's limits allow
    /// ends the body with a [`RequestBodyError`] whose
    /// [`is_timeout`](RequestBodyError::is_timeout) is true. Only time the application
    /// spends waiting for the client counts, so a handler may take as long as it likes
    /// between two reads.
    ///
    /// An axum `Router` takes it as it is; a `tower::service_fn` names it:
    ///
    /// ```
    /// use http_body_util::BodyExt as _;
    /// use tokbind_tls::RequestBody;
    ///
    /// let app = tower::service_fn(|req: http::Request<RequestBody>| async move {
    ///     let body = req.into_body().collect().await?.to_bytes();
    ///     Ok::<_, tokbind_tls::RequestBodyError>(http::Response::new(format!("{} bytes", body.len())))
    /// });
    /// # let _ = app;
    /// ```
    #[derive(Debug)]
    pub struct RequestBody {
        #[pin]
        inner: Incoming,
        pacer: Pacer,
    }
}

impl RequestBody {
    pub(crate) fn new(inner: Incoming, pace: Pace) -> Self {
        Self {
            inner,
            pacer: Pacer::new(pace),
        }
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = RequestBodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, RequestBodyError>>> {
        let this = self.project();
        match this.inner.poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                this.pacer
                    .progressed(frame.data_ref().map_or(0, Bytes::len));
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(RequestBodyError(Kind::Http(e))))),
            Poll::Ready(None) => {
                this.pacer.progressed(0);
                Poll::Ready(None)
            }
            Poll::Pending => match this.pacer.poll_wait(cx) {
                Poll::Ready(()) => {
                    tracing::debug!("the client sent the request body too slowly");
                    Poll::Ready(Some(Err(RequestBodyError(Kind::TimedOut))))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A [`RequestBody`] could not be read.
#[derive(Debug)]
pub struct RequestBodyError(Kind);

#[derive(Debug)]
enum Kind {
    Http(hyper::Error),
    TimedOut,
}

impl RequestBodyError {
    /// Whether the client sent the body too slowly for the server's limits (rather than
    /// breaking the protocol or going away).
    pub fn is_timeout(&self) -> bool {
        matches!(self.0, Kind::TimedOut)
    }
}

impl std::fmt::Display for RequestBodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Kind::Http(e) => write!(f, "request body: {e}"),
            Kind::TimedOut => f.write_str(
                "request body: the client sent it too slowly (progress timeout or minimum data rate)",
            ),
        }
    }
}

impl std::error::Error for RequestBodyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.0 {
            Kind::Http(e) => Some(e),
            Kind::TimedOut => None,
        }
    }
}
