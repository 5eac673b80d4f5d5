//! The progress timeout for one HTTP/2 stream's response.
//!
//! An HTTP/2 client can keep a stream's flow-control window shut (RFC 9113 §6.9) while it
//! answers PINGs: its response then cannot be sent, yet no write waits on the socket, so
//! the connection's pace (`io.rs`) never sees it, and the stream holds whatever its handler
//! holds for as long as the client likes. hyper runs each HTTP/2 stream as a task it hands
//! to the server's executor; [`StreamExecutor`] wraps that task so that time the response
//! spends waiting for hyper to ask for its next frame (which hyper does once the client
//! gives it room) counts against the server's [`Pace`], and a stream that runs out is
//! dropped, which resets it (`RST_STREAM` with `CANCEL`).
//!
//! The response body (`activity.rs`) says when it handed hyper a frame and when hyper asked
//! again, through a task-local [`StreamClock`] that only HTTP/2 stream tasks have.
//!
//! A stream reset this way also closes its connection gracefully (`GOAWAY`; the other
//! streams finish): otherwise a client could hold its place under the connection limit for
//! ever by opening a new stream whenever one is reset, never reading a byte, and the
//! connection would never be idle for the limit to reclaim. An HTTP/1.1 client that stops
//! reading loses its connection the same way (`io.rs`). The connection's future is polled in
//! a task-local [`SlowStreams`] scope that the stream tasks it spawns take with them.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};

use crate::pace::{Pace, Pacer};

tokio::task_local! {
    static CLOCK: Arc<StreamClock>;
    static CONNECTION: Arc<SlowStreams>;
}

/// Set by a stream of one connection that ran out of its pace, for the connection's loop
/// (`connection.rs`), which then closes the connection.
#[derive(Debug, Default)]
pub(crate) struct SlowStreams {
    notify: tokio::sync::Notify,
}

impl SlowStreams {
    /// Polls `connection` (hyper's future for one connection, which spawns its HTTP/2
    /// stream tasks while it is polled) with `self` for those tasks to take.
    pub(crate) fn polling<'a, F: Future>(
        self: &'a Arc<Self>,
        mut connection: Pin<&'a mut F>,
    ) -> impl Future<Output = F::Output> + 'a {
        std::future::poll_fn(move |cx| {
            CONNECTION.sync_scope(Arc::clone(self), || connection.as_mut().poll(cx))
        })
    }

    /// Waits until a stream of the connection is reset for its pace.
    pub(crate) async fn reset(&self) {
        self.notify.notified().await;
    }
}

/// What one HTTP/2 stream's response is doing, as its task's wrapper needs to know.
#[derive(Debug, Default)]
pub(crate) struct StreamClock {
    /// The response is with hyper, which has not asked for its next frame yet.
    waiting: AtomicBool,
    /// Bytes handed to hyper since the wrapper last looked.
    moved: AtomicU64,
}

/// The response of the current task (if it is an HTTP/2 stream) was handed to hyper, with
/// `bytes` of body.
pub(crate) fn handed(bytes: usize) {
    let _ = CLOCK.try_with(|clock| {
        let bytes = u64::try_from(bytes).unwrap_or(u64::MAX);
        clock.moved.fetch_add(bytes, Ordering::Relaxed);
        clock.waiting.store(true, Ordering::Relaxed);
    });
}

/// hyper asked the current task's response for its next frame (or the response ended).
pub(crate) fn asked() {
    let _ = CLOCK.try_with(|clock| clock.waiting.store(false, Ordering::Relaxed));
}

/// The executor [`serve`](crate::serve()) gives hyper: tokio's, with each task held to
/// `pace` while its response waits on the client.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StreamExecutor {
    pub(crate) pace: Pace,
}

impl<F> hyper::rt::Executor<F> for StreamExecutor
where
    F: Future<Output = ()> + Send + 'static,
{
    fn execute(&self, task: F) {
        let clock = Arc::new(StreamClock::default());
        tokio::spawn(PacedStream {
            task: CLOCK.scope(Arc::clone(&clock), task),
            clock,
            pacer: Pacer::new(self.pace),
            connection: CONNECTION.try_with(Arc::clone).ok(),
        });
    }
}

pin_project_lite::pin_project! {
    /// A stream task that is dropped once its response has waited on the client too long.
    struct PacedStream<F> {
        #[pin]
        task: tokio::task::futures::TaskLocalFuture<Arc<StreamClock>, F>,
        clock: Arc<StreamClock>,
        pacer: Pacer,
        connection: Option<Arc<SlowStreams>>,
    }
}

impl<F: Future<Output = ()>> Future for PacedStream<F> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.project();
        if this.task.poll(cx).is_ready() {
            return Poll::Ready(());
        }
        let moved = this.clock.moved.swap(0, Ordering::Relaxed);
        if moved > 0 || !this.clock.waiting.load(Ordering::Relaxed) {
            // A frame went out since the last look (ending any wait), or the response is
            // not with hyper (the application is still working on it).
            this.pacer
                .progressed(usize::try_from(moved).unwrap_or(usize::MAX));
        }
        if !this.clock.waiting.load(Ordering::Relaxed) {
            return Poll::Pending;
        }
        match this.pacer.poll_wait(cx) {
            Poll::Ready(()) => {
                tracing::debug!("HTTP/2 stream reset: the client gave its response no room");
                if let Some(connection) = this.connection {
                    // `notify_one` keeps the wake-up if the loop is not waiting right now.
                    connection.notify.notify_one();
                }
                Poll::Ready(()) // dropping the task resets the stream
            }
            Poll::Pending => Poll::Pending,
        }
    }
}
