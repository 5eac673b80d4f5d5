//! The connection as hyper sees it: the TLS stream, with its writes paced and its place
//! under the connection limit.
//!
//! The place travels with the stream, not with the task that serves it, because a
//! connection hyper hands to the application after an HTTP/1.1 upgrade (a WebSocket, say)
//! outlives that task and still holds a descriptor: it keeps its place until the
//! application drops it.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::OwnedSemaphorePermit;

use crate::accept::Accept;
use crate::activity::Activity;
use crate::pace::{Pace, Pacer};

pin_project_lite::pin_project! {
    /// A server connection's stream. Reads pass through (how long a client may take to
    /// send is the watchdog's and the request body's business: waiting to read is also
    /// what an idle connection does); a write the client holds back is held to the
    /// connection's [`Pace`].
    pub(crate) struct ServerIo<A: Accept> {
        #[pin]
        inner: A::Stream,
        pacer: Pacer,
        _place: OwnedSemaphorePermit,
        // Told when bytes arrive, on an HTTP/1.1 connection (`activity.rs`).
        heard: Option<Arc<Activity>>,
    }
}

impl<A: Accept> ServerIo<A> {
    pub(crate) fn new(
        inner: A::Stream,
        pace: Pace,
        place: OwnedSemaphorePermit,
        heard: Option<Arc<Activity>>,
    ) -> Self {
        Self {
            inner,
            pacer: Pacer::new(pace),
            _place: place,
            heard,
        }
    }
}

/// What a write that ran out of time fails with (hyper then ends the connection).
fn too_slow() -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        "the client did not read the response within the progress timeout",
    )
}

impl<A: Accept> ServerIo<A> {
    /// `poll` of the inner stream, with the time it is pending counted as a wait on the
    /// client; `moved` says how many bytes a result moved.
    fn paced<R>(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        poll: impl FnOnce(Pin<&mut A::Stream>, &mut Context<'_>) -> Poll<io::Result<R>>,
        moved: impl FnOnce(&R) -> usize,
    ) -> Poll<io::Result<R>> {
        let mut this = self.project();
        match poll(this.inner.as_mut(), cx) {
            Poll::Ready(Ok(r)) => {
                this.pacer.progressed(moved(&r));
                Poll::Ready(Ok(r))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => match this.pacer.poll_wait(cx) {
                Poll::Ready(()) => {
                    tracing::debug!("closing: the client stopped reading the response");
                    // Close with a reset: a normal close would leave what the socket
                    // buffers hold (megabytes, for a large response) for the kernel to
                    // keep sending to the same slow reader after the connection is gone
                    // (nginx's `reset_timedout_connection`).
                    let _ = A::tcp(&this.inner).set_zero_linger();
                    Poll::Ready(Err(too_slow()))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

impl<A: Accept> AsyncRead for ServerIo<A> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.project();
        let before = buf.filled().len();
        let read = this.inner.poll_read(cx, buf);
        if let Some(activity) = this.heard
            && buf.filled().len() > before
        {
            activity.heard();
        }
        read
    }
}

impl<A: Accept> AsyncWrite for ServerIo<A> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.paced(cx, |inner, cx| inner.poll_write(cx, buf), |n| *n)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.paced(cx, |inner, cx| inner.poll_write_vectored(cx, bufs), |n| *n)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.paced(cx, AsyncWrite::poll_flush, |()| 0)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.paced(cx, AsyncWrite::poll_shutdown, |()| 0)
    }
}
