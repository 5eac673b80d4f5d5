//! What a connection is doing, as far as its limits care: how many requests are in
//! flight, and since when it has had none.
//!
//! A request is in flight from the moment hyper hands its head to the service until its
//! response body has been sent (or dropped). [`Tracked`] wraps the service to count that;
//! the connection's watchdog (`connection.rs`) reads [`Activity::deadline`]. It also tells
//! an HTTP/2 stream's pace (`stream_pace.rs`) when its response waits for hyper.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use bytes::Buf;
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};

/// One connection's request activity. Shared by its requests and its watchdog.
#[derive(Debug)]
pub(crate) struct Activity {
    base: Instant,
    in_flight: AtomicUsize,
    /// When the connection last had no request in flight, in nanoseconds after `base`.
    idle_since: AtomicU64,
    /// Whether a request has started on this connection.
    served: AtomicBool,
    /// When the first bytes of the next request came on an idle keep-alive connection, in
    /// nanoseconds after `base`, plus one (0: none since the last request started). Only
    /// HTTP/1.1 connections say (`io.rs`): there, bytes between requests are a request head.
    head_since: AtomicU64,
}

impl Activity {
    /// A connection that is ready for its first request now.
    pub(crate) fn new() -> Self {
        Self {
            base: Instant::now(),
            in_flight: AtomicUsize::new(0),
            idle_since: AtomicU64::new(0),
            served: AtomicBool::new(false),
            head_since: AtomicU64::new(0),
        }
    }

    /// Bytes came from the client. On an idle keep-alive connection they start the next
    /// request's head, which the header read timeout then bounds as it bounds the first.
    /// Bytes of the next head read with the request before (pipelined, or sent in one
    /// write) are not seen here: hyper parses them from its buffer, so only the idle
    /// timeout bounds them, as it bounds a client that sends nothing (README, "Limits").
    pub(crate) fn heard(&self) {
        if self.head_since.load(Ordering::Relaxed) == 0 && self.is_kept_alive() {
            let now = u64::try_from(self.base.elapsed().as_nanos()).unwrap_or(u64::MAX);
            self.head_since
                .store(now.saturating_add(1), Ordering::Release);
        }
    }

    /// Whether no request is in flight.
    pub(crate) fn is_idle(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) == 0
    }

    /// Whether a request has been served and none is in flight: an idle keep-alive
    /// connection.
    pub(crate) fn is_kept_alive(&self) -> bool {
        self.is_idle() && self.served.load(Ordering::Acquire)
    }

    /// When the connection must be closed if nothing happens before: `first` after it
    /// became ready while it has served nothing, `then` after its last request ended, and
    /// no later than `first` after the next request's head began to come ([`heard`]).
    /// `None` while a request is in flight (and for deadlines past the end of time).
    ///
    /// [`heard`]: Self::heard
    pub(crate) fn deadline(&self, first: Duration, then: Duration) -> Option<Instant> {
        if !self.is_idle() {
            return None;
        }
        let since = Duration::from_nanos(self.idle_since.load(Ordering::Acquire));
        if !self.served.load(Ordering::Acquire) {
            return self.base.checked_add(since)?.checked_add(first);
        }
        let idle = self
            .base
            .checked_add(since)
            .and_then(|t| t.checked_add(then));
        let head = match self.head_since.load(Ordering::Acquire) {
            0 => None,
            at => self
                .base
                .checked_add(Duration::from_nanos(at - 1))
                .and_then(|t| t.checked_add(first)),
        };
        match (idle, head) {
            (Some(idle), Some(head)) => Some(idle.min(head)),
            (idle, head) => idle.or(head),
        }
    }

    fn begin(self: &Arc<Self>) -> InFlight {
        self.head_since.store(0, Ordering::Release);
        self.served.store(true, Ordering::Release);
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(Arc::clone(self))
    }
}

/// One request in flight; dropping it ends the request.
#[derive(Debug)]
pub(crate) struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let activity = &self.0;
        // Stamp the time before counting down (every request, not only the last: which one
        // is last is only known after), so a watchdog that sees no request in flight never
        // reads an older idle period's start.
        let now = u64::try_from(activity.base.elapsed().as_nanos()).unwrap_or(u64::MAX);
        activity.idle_since.fetch_max(now, Ordering::AcqRel);
        activity.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A service whose requests are counted in an [`Activity`].
#[derive(Debug, Clone)]
pub(crate) struct Tracked<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S> Tracked<S> {
    pub(crate) fn new(inner: S, activity: Arc<Activity>) -> Self {
        Self { inner, activity }
    }
}

impl<S, ReqBody, ResBody> tower::Service<Request<ReqBody>> for Tracked<S>
where
    S: tower::Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<TrackedBody<ResBody>>;
    type Error = S::Error;
    type Future = TrackedFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let guard = self.activity.begin();
        TrackedFuture {
            inner: self.inner.call(req),
            guard: Some(guard),
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`Tracked`]: the request stays in flight in its body.
    pub(crate) struct TrackedFuture<F> {
        #[pin]
        inner: F,
        guard: Option<InFlight>,
    }
}

impl<F, B, E> Future for TrackedFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<TrackedBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let res = ready!(this.inner.poll(cx));
        let guard = this.guard.take();
        if res.is_ok() {
            crate::stream_pace::handed(0);
        }
        Poll::Ready(res.map(|res| res.map(|body| TrackedBody { inner: body, guard })))
    }
}

pin_project_lite::pin_project! {
    /// A response body that ends its request when it ends (or is dropped).
    pub(crate) struct TrackedBody<B> {
        #[pin]
        inner: B,
        guard: Option<InFlight>,
    }
}

impl<B: Body> Body for TrackedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        crate::stream_pace::asked();
        let frame = ready!(this.inner.poll_frame(cx));
        match &frame {
            None => {
                this.guard.take();
            }
            Some(Ok(frame)) => {
                crate::stream_pace::handed(frame.data_ref().map_or(0, Buf::remaining));
            }
            Some(Err(_)) => {}
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_request_then_keep_alive_deadlines() {
        let (first, then) = (Duration::from_secs(10), Duration::from_secs(30));
        let activity = Arc::new(Activity::new());
        let ready = activity.deadline(first, then).unwrap();
        assert_eq!(ready.duration_since(activity.base), first);
        assert!(!activity.is_kept_alive());

        let a = activity.begin();
        let b = activity.begin();
        assert_eq!(activity.deadline(first, then), None, "two in flight");
        drop(a);
        assert_eq!(activity.deadline(first, then), None, "one in flight");
        std::thread::sleep(Duration::from_millis(5));
        drop(b);
        let kept = activity.deadline(first, then).unwrap();
        assert!(kept >= ready + (then - first) + Duration::from_millis(5));
        assert!(activity.is_kept_alive());
    }
}
