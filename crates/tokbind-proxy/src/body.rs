//! The bodies on their way: the client's request body, which takes a place among the
//! requests in flight only once its first part has come ([`first_part`]) and records how
//! far it has got ([`UploadBody`]), and the backend's response body, bounded in time
//! ([`UpstreamBody`]).

use std::future::Future as _;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::BoxError;
use axum::body::{Body, Bytes};
use axum::response::Response;
use http_body::{Body as _, Frame, SizeHint};
use http_body_util::BodyExt as _;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::{Instant, Sleep};
use tower_tokbind::ttrp::{remove_every_spelling, strip_forwarding_headers};

use crate::ORIGIN_HEADERS;
use crate::problem::{client_body_error, request_body_incomplete, request_body_timeout};

/// Waits for the first part of a request body that is still to come (at the client's
/// pace), and hands back the body with that part in front; a body already complete is
/// handed back as it is.
pub(crate) async fn first_part(mut body: Body) -> Result<Body, Response> {
    if body.is_end_stream() {
        return Ok(body);
    }
    match body.frame().await {
        None => Ok(Body::empty()),
        Some(Ok(first)) => Ok(Body::new(FirstPart {
            first: Some(first),
            rest: body,
        })),
        Some(Err(e)) if client_body_error(&e) == Some(true) => Err(request_body_timeout()),
        Some(Err(_)) => Err(request_body_incomplete()),
    }
}

/// A request body whose first part has already been received.
struct FirstPart {
    first: Option<Frame<Bytes>>,
    rest: Body,
}

impl http_body::Body for FirstPart {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        match this.first.take() {
            Some(first) => Poll::Ready(Some(Ok(first))),
            None => Pin::new(&mut this.rest).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.first.is_none() && self.rest.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let first = self
            .first
            .as_ref()
            .and_then(Frame::data_ref)
            .map_or(0, |d| u64::try_from(d.len()).unwrap_or(u64::MAX));
        let rest = self.rest.size_hint();
        let mut hint = SizeHint::new();
        if let Some(upper) = rest.upper() {
            hint.set_upper(upper.saturating_add(first));
        }
        hint.set_lower(
            rest.lower()
                .saturating_add(first)
                .min(hint.upper().unwrap_or(u64::MAX)),
        );
        hint
    }
}

/// How far a request body has got on its way to the backend: set by its [`UploadBody`] as
/// hyper polls it, read by `forward::response_headers`.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Sending {
    /// hyper has not asked for any of it yet.
    NotAsked,
    /// hyper asked for more and the body is waiting for the client to send it, which the
    /// client's pace bounds (`tokbind_tls::RequestBody`).
    WaitingOnClient,
    /// The body handed hyper a part at this instant and hyper has not asked for more
    /// since: it is waiting for the backend to take what it has.
    WaitingOnBackend(Instant),
    /// The body was handed over in full (or dropped) at this instant.
    Sent(Instant),
}

fn set(sending: &Mutex<Sending>, now: Sending) {
    let mut sending = sending.lock().unwrap_or_else(PoisonError::into_inner);
    if !matches!(*sending, Sending::Sent(_)) {
        *sending = now;
    }
}

pub(crate) fn get(sending: &Mutex<Sending>) -> Sending {
    *sending.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A request body on its way to the backend, recording in `sending` how far it has got.
pub(crate) struct UploadBody {
    pub(crate) inner: Body,
    pub(crate) sending: Arc<Mutex<Sending>>,
}

impl http_body::Body for UploadBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        let mut frame = Pin::new(&mut this.inner).poll_frame(cx);
        // Trailers reach the backend as headers do (HTTP/2, or an HTTP/1.1 backend that
        // merges them, RFC 9110 §6.5.2): they carry nothing about Token Binding, the
        // certificate or the client's origin that this proxy did not see either.
        if let Poll::Ready(Some(Ok(f))) = &mut frame
            && let Some(trailers) = f.trailers_mut()
        {
            strip_forwarding_headers(trailers);
            remove_every_spelling(trailers, &ORIGIN_HEADERS);
        }
        let now = match &frame {
            Poll::Pending => Sending::WaitingOnClient,
            Poll::Ready(Some(Ok(_))) if !this.inner.is_end_stream() => {
                Sending::WaitingOnBackend(Instant::now())
            }
            // The last part, the end, or an error (which fails the request).
            Poll::Ready(_) => Sending::Sent(Instant::now()),
        };
        set(&this.sending, now);
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for UploadBody {
    /// hyper drops a body it needs no more of (an HTTP/1.1 body whose `Content-Length`
    /// has been sent, a request that failed) without polling it to its end.
    fn drop(&mut self) {
        set(&self.sending, Sending::Sent(Instant::now()));
    }
}

/// The backend's response body on its way to the client: it holds the request's place
/// among those in flight until it has been forwarded or dropped, and ends with an error
/// when the backend sends no frame for `read_timeout` — hyper then cuts the client's
/// response off instead of leaving it waiting.
pub(crate) struct UpstreamBody<B> {
    inner: B,
    read_timeout: Duration,
    /// Created the first time the body waits for the backend, then reset for each wait.
    idle: Option<Pin<Box<Sleep>>>,
    /// Whether `idle` is running for the current wait.
    waiting: bool,
    /// Ended by the timeout: nothing more is read.
    timed_out: bool,
    _permit: OwnedSemaphorePermit,
}

impl<B> UpstreamBody<B> {
    pub(crate) fn new(inner: B, read_timeout: Duration, permit: OwnedSemaphorePermit) -> Self {
        Self {
            inner,
            read_timeout,
            idle: None,
            waiting: false,
            timed_out: false,
            _permit: permit,
        }
    }
}

impl<B> http_body::Body for UpstreamBody<B>
where
    B: http_body::Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if this.timed_out {
            return Poll::Ready(None);
        }
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            this.waiting = false;
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        let timeout = this.read_timeout;
        let idle = match &mut this.idle {
            Some(idle) => {
                if !this.waiting {
                    // Past the end of time: leave it where it is, which is far enough.
                    if let Some(at) = tokio::time::Instant::now().checked_add(timeout) {
                        idle.as_mut().reset(at);
                    }
                }
                idle
            }
            None => this.idle.insert(Box::pin(tokio::time::sleep(timeout))),
        };
        this.waiting = true;
        if idle.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        this.timed_out = true;
        tracing::warn!(
            ?timeout,
            "the backend sent nothing more of its response body; cutting the response off"
        );
        Poll::Ready(Some(Err(format!(
            "the backend sent nothing more of its response body for {timeout:?}"
        )
        .into())))
    }

    fn is_end_stream(&self) -> bool {
        self.timed_out || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
