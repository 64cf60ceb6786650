//! [`wait`]: wait for tasks until a condition holds, without taking their results.
//!
//! asyncio's `asyncio.wait(tasks, timeout=None, return_when=ALL_COMPLETED)`: completes with
//! `(done, pending)` once the [`ReturnWhen`] condition holds or the timeout passes. It never
//! cancels anything (not on timeout, not when the waiter itself is cancelled) and never takes
//! a result: the done tasks come back whole, for `result()` or `.await`.
//!
//! It learns of completions the asyncio way: one shared done-callback on every pending task
//! (scheduled with `call_soon` when the task completes), which wakes the waiter; the callbacks
//! are removed when the wait completes or is dropped.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use crate::combinators::sleep::{sleep, Sleep};
use crate::error::LoopError;
use crate::sync::WakerCell;
use crate::task::{Task, TaskCallback};

/// When [`wait`] completes (asyncio's `FIRST_COMPLETED`, `FIRST_EXCEPTION`, `ALL_COMPLETED`).
///
/// ```
/// use spindle_loop::ReturnWhen;
/// assert_eq!(ReturnWhen::default(), ReturnWhen::AllCompleted);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum ReturnWhen {
    /// As soon as any task is done (with a value, an error, or cancelled).
    FirstCompleted,
    /// As soon as any task fails (panics); cancellations do not count. If none fails, the same
    /// as [`AllCompleted`](Self::AllCompleted).
    FirstException,
    /// When every task is done.
    #[default]
    AllCompleted,
}

/// Waits for `tasks` until `return_when` holds or `timeout` passes; completes with
/// `(done, pending)`, each in the order the tasks were given (asyncio's `asyncio.wait`).
///
/// It never cancels anything (not on timeout, not when the waiter itself is cancelled) and
/// never takes a result: the done tasks come back whole, for `result()` or `.await`.
///
/// `Err(LoopError::EmptyWait)` if `tasks` is empty.
///
/// # Panics
///
/// With a timeout, when first polled outside a running spindle loop (see [`sleep`]).
///
/// ```
/// use std::time::Duration;
/// use spindle_loop::{sleep, wait, EventLoop, ReturnWhen};
///
/// let lp = EventLoop::new().unwrap();
/// let spawner = lp.clone();
/// let (done, pending) = lp
///     .run_until_complete(async move {
///         let fast = spawner.create_task(sleep(Duration::from_millis(1))).unwrap();
///         let slow = spawner.create_task(sleep(Duration::from_secs(3600))).unwrap();
///         wait([fast, slow], None, ReturnWhen::FirstCompleted).await
///     })
///     .unwrap()
///     .unwrap();
/// assert_eq!((done.len(), pending.len()), (1, 1));
/// ```
pub fn wait<T, I>(tasks: I, timeout: Option<Duration>, return_when: ReturnWhen) -> Wait<T>
where
    I: IntoIterator<Item = Task<T>>,
{
    Wait {
        tasks: tasks.into_iter().collect(),
        return_when,
        timeout: timeout.map(sleep),
        shared: None,
    }
}

/// The future of [`wait`]. `Send` when `T` is.
///
/// ```
/// use spindle_loop::{wait, EventLoop, ReturnWhen};
/// let lp = EventLoop::new().unwrap();
/// let t = lp.create_task(async { 3 }).unwrap();
/// let (mut done, _) = lp.run_until_complete(wait([t], None, ReturnWhen::AllCompleted)).unwrap().unwrap();
/// assert_eq!(done[0].result().unwrap(), Ok(3));
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct Wait<T> {
    tasks: Vec<Task<T>>,
    return_when: ReturnWhen,
    timeout: Option<Sleep>,
    /// The waker and the done-callback shared by every pending task (after the first poll).
    shared: Option<(Arc<WakerCell>, TaskCallback)>,
}

impl<T> Wait<T> {
    fn condition_holds(&self) -> bool {
        let mut done = 0;
        for task in &self.tasks {
            if task.done() {
                done += 1;
                match self.return_when {
                    ReturnWhen::FirstCompleted => return true,
                    ReturnWhen::FirstException if task.panicked() => return true,
                    _ => {}
                }
            }
        }
        done == self.tasks.len()
    }

    /// Removes the shared done-callback from every task that still has it.
    fn unregister(&mut self) {
        if let Some((_, callback)) = self.shared.take() {
            for task in &self.tasks {
                task.remove_done_callback(&callback);
            }
        }
    }
}

impl<T> Future for Wait<T> {
    type Output = Result<(Vec<Task<T>>, Vec<Task<T>>), LoopError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if this.tasks.is_empty() {
            return Poll::Ready(Err(LoopError::EmptyWait));
        }
        let timed_out = match &mut this.timeout {
            Some(timeout) => Pin::new(timeout).poll(cx).is_ready(),
            None => false,
        };
        if !timed_out && !this.condition_holds() {
            match &this.shared {
                Some((waker, _)) => waker.register(cx.waker()),
                None => {
                    let waker = Arc::new(WakerCell::new(cx.waker()));
                    let w = waker.clone();
                    let callback: TaskCallback = Arc::new(move |_| w.wake_by_ref());
                    for task in this.tasks.iter().filter(|t| !t.done()) {
                        task.add_done_callback_shared(&callback);
                    }
                    this.shared = Some((waker, callback));
                    // A task that finished between the check and the registration has its
                    // callback scheduled at once: no completion is missed.
                }
            }
            return Poll::Pending;
        }
        this.unregister();
        let (done, pending) = std::mem::take(&mut this.tasks)
            .into_iter()
            .partition(|t| t.done());
        Poll::Ready(Ok((done, pending)))
    }
}

impl<T> Drop for Wait<T> {
    fn drop(&mut self) {
        self.unregister();
    }
}

impl<T> fmt::Debug for Wait<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wait")
            .field("tasks", &self.tasks.len())
            .field("return_when", &self.return_when)
            .field("timeout", &self.timeout.as_ref().map(Sleep::deadline))
            .finish()
    }
}
