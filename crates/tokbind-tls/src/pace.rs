//! How long a transfer may wait on its client: the rule behind
//! [`Limits::progress_timeout`](crate::Limits::progress_timeout) and
//! [`Limits::min_data_rate`](crate::Limits::min_data_rate).
//!
//! Only time spent waiting *on the client* counts: a request body read that is pending, or a
//! response write the client's receive window holds back. Time the application takes to
//! answer (a long poll, a slow database) never counts. Each wait may last at most the
//! timeout, and all of a transfer's waits together at most the timeout plus one second for
//! every `min_rate` bytes moved: the rule of Apache's `mod_reqtimeout` (`MinRate`), which a
//! client that moves a byte now and then to reset a plain timeout cannot outlast.

use std::future::Future as _;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::{Instant, Sleep};

/// A transfer's allowance for waiting on its client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pace {
    /// The longest one wait may last.
    pub(crate) timeout: Duration,
    /// Bytes a second that earn one more second of waiting in all; 0: waits are only
    /// bounded one by one.
    pub(crate) min_rate: u32,
}

/// One transfer's waits so far, and the timer of the current one (created at its first
/// wait: a transfer that never waits allocates nothing).
#[derive(Debug)]
pub(crate) struct Pacer {
    pace: Pace,
    /// Time spent in the waits that have ended.
    waited: Duration,
    /// Bytes moved.
    moved: u64,
    /// When the current wait began.
    since: Option<Instant>,
    timer: Option<Pin<Box<Sleep>>>,
}

impl Pacer {
    pub(crate) fn new(pace: Pace) -> Self {
        Self {
            pace,
            waited: Duration::ZERO,
            moved: 0,
            since: None,
            timer: None,
        }
    }

    /// The client moved `n` bytes (0: the operation completed without data): the current
    /// wait, if any, ends.
    pub(crate) fn progressed(&mut self, n: usize) {
        if let Some(since) = self.since.take() {
            self.waited = self.waited.saturating_add(since.elapsed());
        }
        self.moved = self
            .moved
            .saturating_add(u64::try_from(n).unwrap_or(u64::MAX));
    }

    /// The operation waits on the client. `Ready` once it has waited too long; otherwise
    /// `cx` is woken when it will have.
    pub(crate) fn poll_wait(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let now = Instant::now();
        let since = *self.since.get_or_insert(now);
        let Some(deadline) = self.deadline(since) else {
            return Poll::Pending; // beyond the end of time: never
        };
        if deadline <= now {
            return Poll::Ready(());
        }
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if timer.deadline() != deadline {
            timer.as_mut().reset(deadline);
        }
        timer.as_mut().poll(cx)
    }

    /// When a wait that began at `since` runs out: after `timeout`, or sooner if it would
    /// take the waits beyond their total allowance. `None` past the end of time.
    fn deadline(&self, since: Instant) -> Option<Instant> {
        let Pace { timeout, min_rate } = self.pace;
        let left = if min_rate == 0 {
            timeout
        } else {
            let nanos = u128::from(self.moved) * 1_000_000_000 / u128::from(min_rate);
            let earned = Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX));
            timeout
                .saturating_add(earned)
                .saturating_sub(self.waited)
                .min(timeout)
        };
        since.checked_add(left)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pacer(timeout_ms: u64, min_rate: u32) -> Pacer {
        Pacer::new(Pace {
            timeout: Duration::from_millis(timeout_ms),
            min_rate,
        })
    }

    #[test]
    fn one_wait_lasts_at_most_the_timeout() {
        let p = pacer(1000, 0);
        let now = Instant::now();
        assert_eq!(p.deadline(now), Some(now + Duration::from_secs(1)));
        let mut p = pacer(1000, 100);
        p.moved = 1_000_000; // a large allowance does not stretch one wait
        assert_eq!(p.deadline(now), Some(now + Duration::from_secs(1)));
    }

    #[test]
    fn waits_together_are_bounded_by_the_bytes_moved() {
        let now = Instant::now();
        let mut p = pacer(1000, 100);
        // 900 ms waited in all, 50 bytes moved (0.5 s earned): 1.5 s - 0.9 s left.
        p.waited = Duration::from_millis(900);
        p.moved = 50;
        assert_eq!(p.deadline(now), Some(now + Duration::from_millis(600)));
        // More waited than earned: the next wait is already over.
        p.waited = Duration::from_secs(5);
        assert_eq!(p.deadline(now), Some(now));
    }

    #[test]
    fn absurd_values_saturate() {
        let now = Instant::now();
        let mut p = Pacer::new(Pace {
            timeout: Duration::MAX,
            min_rate: 1,
        });
        p.moved = u64::MAX;
        assert_eq!(p.deadline(now), None, "Duration::MAX: never");
        p.progressed(usize::MAX);
        assert_eq!(p.moved, u64::MAX);
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_runs_out_and_progress_ends_it() {
        let mut p = pacer(1000, 0);
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        assert!(p.poll_wait(&mut cx).is_pending());
        tokio::time::advance(Duration::from_millis(600)).await;
        assert!(p.poll_wait(&mut cx).is_pending());
        // Progress ends the wait: the next one has the whole timeout again.
        p.progressed(1);
        tokio::time::advance(Duration::from_millis(600)).await;
        assert!(p.poll_wait(&mut cx).is_pending());
        tokio::time::advance(Duration::from_millis(1000)).await;
        assert!(p.poll_wait(&mut cx).is_ready());
    }
}
