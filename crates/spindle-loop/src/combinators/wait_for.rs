//! Deadlines: [`wait_for`] / [`wait_for_task`] (asyncio's `wait_for`, with task semantics) and
//! [`timeout`] (a plain deadline on any future).
//!
//! The rules of `wait_for` are on [`wait_for`].
//!
//! # `timeout`
//!
//! The future runs inline, inside the awaiting task; when the deadline passes it is dropped
//! there and then, and the result is [`TaskError::Timeout`]. No task is created.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use pin_project_lite::pin_project;

use crate::combinators::child::{Child, IntoTask, Spawn};
use crate::combinators::sleep::{sleep, Sleep};
use crate::error::TaskError;
use crate::task::Task;

/// Runs `future` as a task with a deadline of `delay` (asyncio's `asyncio.wait_for`). For a
/// [`Task`] you already hold, use [`wait_for_task`].
///
/// # Rules
///
/// The work runs as a task (a future is wrapped in one on the running loop at the first poll).
/// If it finishes first, its outcome is the result. When the deadline passes, the task is
/// cancelled and `wait_for` **waits until it has really finished** (its future dropped, its
/// destructors run) before completing: with [`TaskError::Timeout`] if it ended cancelled, with
/// its value if it finished with one while being cancelled (asyncio's rule), with its error if
/// it failed. A zero delay does not wait at all: a task already finished gives its result,
/// any other is cancelled at once. Dropping the `wait_for` (cancelling its awaiter) cancels the
/// task too. To let the work survive the deadline, give it a [`shield`](crate::shield()).
///
/// # Panics
///
/// When first polled outside a running spindle loop.
///
/// ```
/// use std::time::Duration;
/// use spindle_loop::{sleep, wait_for, EventLoop, TaskError};
///
/// let lp = EventLoop::new().unwrap();
/// let quick = lp.run_until_complete(wait_for(async { 5 }, Duration::from_secs(1))).unwrap();
/// assert_eq!(quick, Ok(5));
/// let slow = wait_for(sleep(Duration::from_secs(3600)), Duration::from_millis(5));
/// assert_eq!(lp.run_until_complete(slow).unwrap(), Err(TaskError::Timeout));
/// ```
pub fn wait_for<F: IntoFuture>(future: F, delay: Duration) -> WaitFor<Spawn<F::IntoFuture>>
where
    F::IntoFuture: 'static,
    F::Output: 'static,
{
    WaitFor::new(Spawn::new(future), delay)
}

/// [`wait_for`] on a task you already hold: at the deadline the task is cancelled and awaited
/// until it has really finished. `delay == 0` on a finished task gives its result.
///
/// ```
/// use std::time::Duration;
/// use spindle_loop::{wait_for_task, EventLoop};
///
/// let lp = EventLoop::new().unwrap();
/// let t = lp.create_task(async { 8 }).unwrap();
/// lp.stop();
/// lp.run_forever().unwrap(); // t finishes
/// assert_eq!(lp.run_until_complete(wait_for_task(t, Duration::ZERO)).unwrap(), Ok(8));
/// ```
pub fn wait_for_task<T>(task: Task<T>, delay: Duration) -> WaitFor<Task<T>> {
    WaitFor::new(task, delay)
}

/// The future of [`wait_for`] and [`wait_for_task`]: `Ok(value)`, the task's error, or
/// [`TaskError::Timeout`]. `Send` when the work and its output are.
///
/// ```
/// use std::time::Duration;
/// use spindle_loop::{wait_for, EventLoop, WaitFor};
///
/// let lp = EventLoop::new().unwrap();
/// let w = wait_for(async { "in time" }, Duration::from_secs(1));
/// assert_eq!(lp.run_until_complete(w).unwrap(), Ok("in time"));
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct WaitFor<C: IntoTask> {
    child: Child<C>,
    /// The deadline's timer; `None` for a zero delay (cancel at once, no waiting).
    deadline: Option<Sleep>,
    /// The deadline passed and the task was asked to cancel.
    cancelling: bool,
}

// The child is only moved (into a task), never polled in place.
impl<C: IntoTask> Unpin for WaitFor<C> {}

impl<C: IntoTask> WaitFor<C> {
    fn new(child: C, delay: Duration) -> Self {
        WaitFor {
            child: Child::Unstarted(child),
            deadline: (!delay.is_zero()).then(|| sleep(delay)),
            cancelling: false,
        }
    }
}

impl<C: IntoTask> Future for WaitFor<C> {
    type Output = Result<C::Output, TaskError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        this.child.start();
        let Child::Running(task) = &mut this.child else {
            // Polled again after completing: the outcome was handed out already.
            return Poll::Ready(this.child.take());
        };
        if let Poll::Ready(outcome) = task.poll_unlinked(cx) {
            this.child = Child::Taken;
            return Poll::Ready(match outcome {
                Err(TaskError::Cancelled) if this.cancelling => Err(TaskError::Timeout),
                other => other,
            });
        }
        if !this.cancelling {
            let expired = match &mut this.deadline {
                Some(deadline) => Pin::new(deadline).poll(cx).is_ready(),
                None => true,
            };
            if expired {
                this.cancelling = true;
                // The task drops its future at its next step and then wakes us (our waker is
                // registered by the poll above); if it finishes with a value first, we get it.
                task.cancel();
            }
        }
        Poll::Pending
    }
}

impl<C: IntoTask> Drop for WaitFor<C> {
    fn drop(&mut self) {
        // Cancelled before completing (its awaiter was cancelled): the work goes too.
        if let Child::Running(task) = &self.child {
            task.cancel();
        }
    }
}

impl<C: IntoTask> fmt::Debug for WaitFor<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitFor")
            .field("deadline", &self.deadline.as_ref().map(Sleep::deadline))
            .field("cancelling", &self.cancelling)
            .field("pending", &self.child.is_pending())
            .finish()
    }
}

pin_project! {
    /// The future of [`timeout`]: the inner future's output, or [`TaskError::Timeout`] once the
    /// deadline passed (the inner future is dropped then). `Send`/`Sync` when the inner is.
    ///
    /// ```
    /// use std::time::Duration;
    /// use spindle_loop::{timeout, EventLoop};
    ///
    /// let lp = EventLoop::new().unwrap();
    /// let t = timeout(Duration::from_secs(1), async { 1 });
    /// assert_eq!(lp.run_until_complete(t).unwrap(), Ok(1));
    /// ```
    #[must_use = "futures do nothing unless awaited"]
    pub struct Timeout<F> {
        #[pin]
        future: Option<F>,
        // The deadline's timer; `None` for a zero delay (expired from the start).
        sleep: Option<Sleep>,
    }
}

/// A plain deadline on any future (tokio's `time::timeout`, asyncio's `asyncio.timeout`): the
/// future runs inline; if it has not finished when `delay` has passed, it is dropped and the
/// result is [`TaskError::Timeout`]. The future is polled before the clock is read, so one that
/// is ready wins even at `delay == 0`.
///
/// # Panics
///
/// When it has to wait and is polled outside a running spindle loop.
///
/// ```
/// use std::time::Duration;
/// use spindle_loop::{sleep, timeout, EventLoop, TaskError};
///
/// let lp = EventLoop::new().unwrap();
/// let late = timeout(Duration::from_millis(2), sleep(Duration::from_secs(3600)));
/// assert_eq!(lp.run_until_complete(late).unwrap(), Err(TaskError::Timeout));
/// ```
pub fn timeout<F: IntoFuture>(delay: Duration, future: F) -> Timeout<F::IntoFuture> {
    Timeout {
        future: Some(future.into_future()),
        sleep: (!delay.is_zero()).then(|| sleep(delay)),
    }
}

impl<F: Future> Future for Timeout<F> {
    type Output = Result<F::Output, TaskError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let Some(future) = this.future.as_mut().as_pin_mut() else {
            return Poll::Ready(Err(TaskError::Timeout));
        };
        if let Poll::Ready(value) = future.poll(cx) {
            this.future.set(None);
            return Poll::Ready(Ok(value));
        }
        let expired = this.sleep.as_mut().is_none_or(|sleep| {
            Instant::now() >= sleep.deadline() || Pin::new(sleep).poll(cx).is_ready()
        });
        if expired {
            this.future.set(None);
            return Poll::Ready(Err(TaskError::Timeout));
        }
        Poll::Pending
    }
}

impl<F> fmt::Debug for Timeout<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timeout")
            .field("deadline", &self.sleep.as_ref().map(Sleep::deadline))
            .field("running", &self.future.is_some())
            .finish()
    }
}
