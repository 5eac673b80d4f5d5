//! Connections to the backend whose writes time out: [`TimedConnector`].
//!
//! hyper's client writes a request body from its connection task, on its own, after the
//! response head has arrived if the backend answered early (a 401 or 413 before reading the
//! upload). A backend that then stops reading, without closing, would keep that task, its
//! socket and the kernel's send buffer for ever: nothing of the proxy's request is watching
//! any more, and the place the request held among those in flight has been given back. A
//! write that makes no progress for `--upstream-timeout` therefore fails, which ends the
//! connection, with a reset (nginx's `proxy_send_timeout` bounds the time between two
//! writes the same way).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

/// [`HttpConnector`], with every write to the backend bounded by `write_timeout`.
#[derive(Clone)]
pub(crate) struct TimedConnector {
    pub(crate) inner: HttpConnector,
    pub(crate) write_timeout: Duration,
}

impl tower_service::Service<Uri> for TimedConnector {
    type Response = TimedIo;
    type Error = <HttpConnector as tower_service::Service<Uri>>::Error;
    type Future = Pin<Box<dyn Future<Output = Result<TimedIo, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let connecting = self.inner.call(uri);
        let write_timeout = self.write_timeout;
        Box::pin(async move {
            Ok(TimedIo {
                io: connecting.await?,
                write_timeout,
                stalled: None,
            })
        })
    }
}

/// A connection to the backend: reads as they are, writes failing with
/// [`io::ErrorKind::TimedOut`] once one has waited `write_timeout` without progress.
pub(crate) struct TimedIo {
    io: TokioIo<TcpStream>,
    write_timeout: Duration,
    /// Running while a write waits for the backend to take more.
    stalled: Option<Pin<Box<Sleep>>>,
}

impl TimedIo {
    /// A write-side `poll` of the inner stream: a result ends the current wait, `Pending`
    /// continues it (see [`TimedIo::wait`]).
    fn timed<T>(
        &mut self,
        cx: &mut Context<'_>,
        poll: impl FnOnce(Pin<&mut TokioIo<TcpStream>>, &mut Context<'_>) -> Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        match poll(Pin::new(&mut self.io), cx) {
            Poll::Pending => self.wait(cx),
            done => {
                self.stalled = None;
                done
            }
        }
    }

    /// `Pending` while the current wait is within the timeout, an error once it is not.
    fn wait<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        let timeout = self.write_timeout;
        let stalled = self.stalled.get_or_insert_with(|| {
            // Past the end of time there is no deadline: the wait is never cut.
            let at = Instant::now().checked_add(timeout);
            Box::pin(tokio::time::sleep_until(at.unwrap_or_else(far_future)))
        });
        match stalled.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(()) => {
                // Closed with a reset, not a FIN behind megabytes the backend will never
                // read: the kernel frees the socket and its send buffer at once.
                let _ = self.io.inner().set_zero_linger();
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the backend took nothing more for --upstream-timeout",
                )))
            }
        }
    }
}

/// A deadline that is never reached in practice (about 30 years away).
fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86400 * 365 * 30)
}

impl Read for TimedIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl Write for TimedIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().timed(cx, |io, cx| io.poll_write(cx, buf))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().timed(cx, Write::poll_flush)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.get_mut()
            .timed(cx, |io, cx| io.poll_write_vectored(cx, bufs))
    }
}

impl Connection for TimedIo {
    fn connected(&self) -> Connected {
        self.io.connected()
    }
}
