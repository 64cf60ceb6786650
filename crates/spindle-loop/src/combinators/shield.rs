//! [`shield`]: await a task without letting cancellation reach it.
//!
//! Awaiting a [`Task`] links the awaiting task to it: cancelling the awaiter cancels the task
//! (asyncio's rule). A [`Shield`] polls the task without that link, and dropping the shield
//! (what cancelling its awaiter, or a [`wait_for`](crate::wait_for()) around it, does) only lets
//! go of the handle: the task runs on to completion. The other direction is not blocked: if
//! the task itself is cancelled, the shield completes with [`TaskError::Cancelled`].
//!
//! The shield either owns the task (`shield(task)`: a shielded task whose awaiter went away is
//! detached, and if it later fails its error is reported as never retrieved, like any detached
//! task's) or borrows it (`shield(&mut task)`: after a timeout around the shield, the task can
//! still be awaited, asyncio's `await task` after `wait_for(shield(task))`).

use std::borrow::BorrowMut;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::error::TaskError;
use crate::task::Task;

/// The future of [`shield`]: the task's outcome, passed through. `H` is the task (owned) or
/// `&mut` the task (borrowed). `Send` when `T` is.
///
/// ```
/// use spindle_loop::{shield, EventLoop};
///
/// let lp = EventLoop::new().unwrap();
/// let t = lp.create_task(async { 4 }).unwrap();
/// assert_eq!(lp.run_until_complete(shield(t)).unwrap(), Ok(4));
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct Shield<T, H = Task<T>> {
    task: Option<H>,
    _output: PhantomData<fn() -> T>,
}

/// Protects `task` from the cancellation of whoever awaits it (asyncio's `asyncio.shield`):
/// cancelling the awaiter, or timing out a [`wait_for`](crate::wait_for()) around the shield,
/// leaves the task running to completion. The output passes through; if the task itself is
/// cancelled, so is the shield.
///
/// ```
/// use std::time::Duration;
/// use spindle_loop::{shield, sleep, wait_for, EventLoop, TaskError};
///
/// let lp = EventLoop::new().unwrap();
/// let task = lp
///     .create_task(async {
///         sleep(Duration::from_millis(100)).await;
///         "saved"
///     })
///     .unwrap();
/// let survivor = task.task_ref();
/// let timed_out = lp.run_until_complete(wait_for(shield(task), Duration::from_millis(1)));
/// assert_eq!(timed_out.unwrap(), Err(TaskError::Timeout));
/// assert!(!survivor.done());
/// lp.run_until_complete(sleep(Duration::from_millis(120))).unwrap();
/// assert!(survivor.done() && !survivor.cancelled()); // it ran to completion
/// ```
///
/// Shielding a borrowed task keeps the handle, to await it after a deadline:
///
/// ```
/// use std::time::Duration;
/// use spindle_loop::{shield, sleep, timeout, EventLoop, TaskError};
///
/// let lp = EventLoop::new().unwrap();
/// let spawner = lp.clone();
/// let out = lp.run_until_complete(async move {
///     let mut task = spawner
///         .create_task(async {
///             sleep(Duration::from_millis(10)).await;
///             "late but whole"
///         })
///         .unwrap();
///     assert_eq!(
///         timeout(Duration::from_millis(1), shield(&mut task)).await,
///         Err(TaskError::Timeout)
///     );
///     task.await
/// });
/// assert_eq!(out.unwrap(), Ok("late but whole"));
/// ```
pub fn shield<T, H: BorrowMut<Task<T>>>(task: H) -> Shield<T, H> {
    Shield {
        task: Some(task),
        _output: PhantomData,
    }
}

// The task handle is `Unpin`; a `&mut` to it too.
impl<T, H> Unpin for Shield<T, H> {}

impl<T, H: BorrowMut<Task<T>>> Future for Shield<T, H> {
    type Output = Result<T, TaskError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let Some(task) = this.task.as_mut() else {
            // Polled again after completing: the outcome was handed out already.
            return Poll::Ready(Err(TaskError::Cancelled));
        };
        let outcome = std::task::ready!(task.borrow_mut().poll_unlinked(cx));
        this.task = None;
        Poll::Ready(outcome)
    }
}

impl<T, H: BorrowMut<Task<T>>> fmt::Debug for Shield<T, H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let task = self.task.as_ref().map(|h| h.borrow());
        f.debug_struct("Shield").field("task", &task).finish()
    }
}
