//! [`shield`]: await a task without letting cancellation reach it.
//!
//! Awaiting a [`Task`] links the awaiting task to it: cancelling the awaiter cancels the task
//! (asyncio's rule). A [`Shield`] polls the task without that link, and dropping the shield
//! (what cancelling its awaiter, or a [`wait_for`](crate::wait_for) around it, does) only lets
//! go of the handle: the task runs on to completion. The other direction is not blocked: if
//! the task itself is cancelled, the shield completes with [`TaskError::Cancelled`].
//!
//! A shielded task whose awaiter went away is detached: if it later fails, its error is
//! reported as never retrieved, like any detached task's.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::error::TaskError;
use crate::task::Task;

/// The future of [`shield`]: the task's outcome, passed through. `Send` when `T` is.
///
/// ```
/// use spindle_loop::{shield, EventLoop};
///
/// let lp = EventLoop::new().unwrap();
/// let t = lp.create_task(async { 4 }).unwrap();
/// assert_eq!(lp.run_until_complete(shield(t)).unwrap(), Ok(4));
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct Shield<T> {
    task: Option<Task<T>>,
}

/// Protects `task` from the cancellation of whoever awaits it (asyncio's `asyncio.shield`):
/// cancelling the awaiter, or timing out a [`wait_for`](crate::wait_for) around the shield,
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
///         sleep(Duration::from_millis(20)).await;
///         "saved"
///     })
///     .unwrap();
/// let survivor = task.task_ref();
/// let timed_out = lp.run_until_complete(wait_for(shield(task), Duration::from_millis(1)));
/// assert_eq!(timed_out.unwrap(), Err(TaskError::Timeout));
/// assert!(!survivor.done());
/// lp.run_until_complete(sleep(Duration::from_millis(30))).unwrap();
/// assert!(survivor.done() && !survivor.cancelled()); // it ran to completion
/// ```
pub fn shield<T>(task: Task<T>) -> Shield<T> {
    Shield { task: Some(task) }
}

impl<T> Future for Shield<T> {
    type Output = Result<T, TaskError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let Some(task) = this.task.as_mut() else {
            // Polled again after completing: the outcome was handed out already.
            return Poll::Ready(Err(TaskError::Cancelled));
        };
        let outcome = std::task::ready!(task.poll_unlinked(cx));
        this.task = None;
        Poll::Ready(outcome)
    }
}

impl<T> fmt::Debug for Shield<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shield").field("task", &self.task).finish()
    }
}
