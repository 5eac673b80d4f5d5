//! The server's CPU time by stage of a connection, counted where the work is done.
//!
//! `scripts/load` reads the server's total CPU per connection from the scheduler; this
//! splits it. Each stage is the thread CPU time (`CLOCK_THREAD_CPUTIME_ID`, kernel time in
//! its system calls included) spent inside the polls of one future: the TLS handshake
//! (`Accept::handshake`, the EKM export included) and the request (the service's `call`
//! and response future: `TokenBindingLayer`'s decode, key import and signature check, and
//! the handler). What neither covers (accepting, hyper's reads and writes, teardown, the
//! runtime) is the total less the two. `GET /stages` answers the running sums.
//!
//! Only a server started with `--stages` counts: each count reads the thread's CPU clock,
//! a system call, a few times per request and per handshake. `scripts/load` therefore
//! measures the goals on servers without it and the split on one of its own.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use http::{Request, Response};
use tokbind_tls::{Accept, Accepted};
use tokio::net::TcpStream;

/// The path that answers the running sums; it is not counted as a request.
pub const PATH: &str = "/stages";

/// Running sums of one stage: how many times it ended, and its CPU time in ns.
struct Stage {
    count: AtomicU64,
    cpu_ns: AtomicU64,
}

impl Stage {
    const fn new() -> Self {
        Self {
            count: AtomicU64::new(0),
            cpu_ns: AtomicU64::new(0),
        }
    }

    fn add(&self, cpu_ns: u64) {
        self.count.fetch_add(1, Ordering::Relaxed);
        self.cpu_ns.fetch_add(cpu_ns, Ordering::Relaxed);
    }
}

static HANDSHAKE: Stage = Stage::new();
static REQUEST: Stage = Stage::new();

/// The running sums as one JSON object.
pub fn report() -> String {
    let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
    serde_json::json!({
        "handshakes": get(&HANDSHAKE.count),
        "handshake_cpu_ns": get(&HANDSHAKE.cpu_ns),
        "requests": get(&REQUEST.count),
        "request_cpu_ns": get(&REQUEST.cpu_ns),
    })
    .to_string()
}

/// This thread's CPU time so far, in ns.
fn thread_cpu_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    // A thread's CPU time is never negative; u64 ns last 584 years.
    u64::try_from(t.tv_sec).unwrap_or(0) * 1_000_000_000 + u64::try_from(t.tv_nsec).unwrap_or(0)
}

pin_project_lite::pin_project! {
    /// `inner`, with the CPU time of its polls added to `stage` when it completes (a
    /// future dropped before that, such as a timed-out handshake, is not counted).
    pub struct Timed<F> {
        #[pin]
        inner: F,
        stage: Option<&'static Stage>,
        cpu_ns: u64,
    }
}

impl<F: Future> Future for Timed<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let start = thread_cpu_ns();
        let out = this.inner.poll(cx);
        *this.cpu_ns += thread_cpu_ns().saturating_sub(start);
        if out.is_ready()
            && let Some(stage) = this.stage.take()
        {
            stage.add(*this.cpu_ns);
        }
        out
    }
}

/// An acceptor whose handshakes are counted.
pub struct TimedAcceptor<A>(pub A);

impl<A: Accept> Accept for TimedAcceptor<A> {
    type Stream = A::Stream;
    type Error = A::Error;

    fn handshake(
        &self,
        tcp: TcpStream,
    ) -> impl Future<Output = Result<Accepted<Self::Stream>, Self::Error>> + Send {
        Timed {
            inner: self.0.handshake(tcp),
            stage: Some(&HANDSHAKE),
            cpu_ns: 0,
        }
    }

    fn tcp(stream: &Self::Stream) -> &TcpStream {
        A::tcp(stream)
    }
}

/// A service whose requests are counted, `call` and response future together.
#[derive(Clone)]
pub struct TimedService<S>(pub S);

impl<S, B, R> tower::Service<Request<B>> for TimedService<S>
where
    S: tower::Service<Request<B>, Response = Response<R>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Timed<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let counted = req.uri().path() != PATH;
        let start = thread_cpu_ns();
        let inner = self.0.call(req);
        Timed {
            inner,
            stage: counted.then_some(&REQUEST),
            cpu_ns: thread_cpu_ns().saturating_sub(start),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hint::black_box;
    use tower::{Service, ServiceExt};

    /// Work for about `ms` ms of this thread's CPU; returns the CPU time it took, in ns.
    fn burn(ms: u64) -> u64 {
        let start = thread_cpu_ns();
        let mut x = 1u64;
        while thread_cpu_ns() - start < ms * 1_000_000 {
            for _ in 0..1000 {
                x = black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
            }
        }
        thread_cpu_ns() - start
    }

    /// A future that burns CPU in each of two polls, pending after the first.
    fn two_polls(burnt: &'static AtomicU64) -> impl Future<Output = ()> {
        let mut polls = 0;
        std::future::poll_fn(move |cx| {
            burnt.fetch_add(burn(3), Ordering::Relaxed);
            polls += 1;
            if polls == 2 {
                Poll::Ready(())
            } else {
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        })
    }

    #[tokio::test]
    async fn a_stage_counts_the_cpu_of_every_poll_once_the_future_completes() {
        let stage: &'static Stage = Box::leak(Box::new(Stage::new()));
        let burnt: &'static AtomicU64 = Box::leak(Box::new(AtomicU64::new(0)));
        Timed {
            inner: two_polls(burnt),
            stage: Some(stage),
            cpu_ns: 0,
        }
        .await;
        assert_eq!(stage.count.load(Ordering::Relaxed), 1);
        let counted = stage.cpu_ns.load(Ordering::Relaxed);
        let burnt = burnt.load(Ordering::Relaxed);
        // Both polls' work, and not much else (the clock reads around it).
        assert!(counted >= burnt, "{counted} < {burnt}");
        assert!(counted < burnt + 2_000_000, "{counted} vs {burnt}");
    }

    #[tokio::test]
    async fn a_future_dropped_before_it_completes_is_not_counted() {
        let stage: &'static Stage = Box::leak(Box::new(Stage::new()));
        let burnt: &'static AtomicU64 = Box::leak(Box::new(AtomicU64::new(0)));
        let mut timed = Box::pin(Timed {
            inner: two_polls(burnt),
            stage: Some(stage),
            cpu_ns: 0,
        });
        let pending = std::future::poll_fn(|cx| Poll::Ready(timed.as_mut().poll(cx))).await;
        assert!(pending.is_pending());
        drop(timed);
        assert_eq!(stage.count.load(Ordering::Relaxed), 0);
        assert_eq!(stage.cpu_ns.load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn requests_are_counted_but_not_the_ones_that_read_the_sums() {
        let mut svc = TimedService(tower::service_fn(|_req: Request<()>| async {
            burn(1);
            Ok::<_, std::convert::Infallible>(Response::new(()))
        }));
        let before: serde_json::Value = serde_json::from_str(&report()).unwrap();
        for path in ["/", PATH, "/"] {
            let req = Request::get(path).body(()).unwrap();
            svc.ready().await.unwrap().call(req).await.unwrap();
        }
        let after: serde_json::Value = serde_json::from_str(&report()).unwrap();
        let delta = |k: &str| after[k].as_u64().unwrap() - before[k].as_u64().unwrap();
        assert_eq!(delta("requests"), 2);
        assert!(
            delta("request_cpu_ns") >= 2_000_000,
            "{}",
            delta("request_cpu_ns")
        );
    }
}
