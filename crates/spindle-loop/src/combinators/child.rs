//! What the combinators run their children as: tasks.
//!
//! A child is either a [`Task`] the caller already has, used as it is, or a future, wrapped in a
//! task on the running loop when the combinator is first polled (asyncio's `ensure_future`; the
//! loop is found then, so a combinator can be built before any loop runs, e.g. to hand it to
//! `run_until_complete`). Rust cannot tell the two apart in one generic function (a `Task` is a
//! future too), hence [`IntoTask`], implemented by `Task` and by [`Spawn`].

use std::fmt;
use std::future::{Future, IntoFuture};

use std::task::{Context, Poll};

use crate::combinators::gather::ChildOps;
use crate::combinators::sleep::NO_RUNNING_LOOP;
use crate::error::TaskError;
use crate::task::Task;

mod sealed {
    pub trait Sealed {}
}

/// Something a combinator can run as a task: a [`Task`] (as it is) or a [`Spawn`] (a future,
/// spawned on the running loop at the combinator's first poll). Sealed.
///
/// ```
/// use spindle_loop::{gather_tasks, EventLoop, IntoTask};
///
/// fn takes_children<C: IntoTask>(children: Vec<C>) -> usize { children.len() }
/// let lp = EventLoop::new().unwrap();
/// let t = lp.create_task(async { 1 }).unwrap();
/// assert_eq!(takes_children(vec![t]), 1);
/// ```
pub trait IntoTask: sealed::Sealed {
    /// What the task produces.
    type Output;

    /// The task. Panics outside a running loop for a [`Spawn`] (see the combinators' docs).
    #[doc(hidden)]
    fn into_task(self) -> Task<Self::Output>;
}

impl<T> sealed::Sealed for Task<T> {}

impl<T> IntoTask for Task<T> {
    type Output = T;

    fn into_task(self) -> Task<T> {
        self
    }
}

/// A future that a combinator will run as a task on the running loop (what [`gather`],
/// [`wait_for`] and [`gather!`] make of the futures they are given).
///
/// [`gather`]: fn@crate::gather
/// [`wait_for`]: fn@crate::wait_for
/// [`gather!`]: macro@crate::gather
///
/// ```
/// use spindle_loop::Spawn;
///
/// let child = Spawn::new(async { 5 });
/// # drop(child);
/// ```
#[must_use = "a Spawn does nothing until a combinator starts it"]
pub struct Spawn<F> {
    future: F,
}

impl<F> Spawn<F> {
    /// Wraps `future` (or anything [`IntoFuture`]).
    ///
    /// ```
    /// let child = spindle_loop::Spawn::new(std::future::ready(1));
    /// # drop(child);
    /// ```
    pub fn new<I: IntoFuture<IntoFuture = F>>(future: I) -> Self {
        Spawn {
            future: future.into_future(),
        }
    }
}

impl<F> sealed::Sealed for Spawn<F> {}

impl<F> IntoTask for Spawn<F>
where
    F: Future + 'static,
    F::Output: 'static,
{
    type Output = F::Output;

    #[track_caller]
    fn into_task(self) -> Task<F::Output> {
        match crate::event_loop::spawn_local(self.future) {
            Ok(task) => task,
            Err(_) => panic!("{NO_RUNNING_LOOP}"),
        }
    }
}

impl<F> fmt::Debug for Spawn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Spawn")
            .field("future", &std::any::type_name::<F>())
            .finish()
    }
}

/// One child of a combinator: not started yet, running as a task, or finished with its
/// outcome (held until the combinator hands it out). `pub` only because it appears in
/// combinator types; this module is private, so nobody outside can name it.
pub enum Child<C: IntoTask> {
    Unstarted(C),
    Running(Task<C::Output>),
    Finished(Result<C::Output, TaskError>),
    Taken,
}

impl<C: IntoTask> Child<C> {
    /// Starts the child if it is not yet (spawns a [`Spawn`]).
    pub(crate) fn start(&mut self) {
        if matches!(self, Child::Unstarted(_)) {
            if let Child::Unstarted(child) = std::mem::replace(self, Child::Taken) {
                *self = Child::Running(child.into_task());
            }
        }
    }

    /// Whether the child is still running (or was never started).
    pub(crate) fn is_pending(&self) -> bool {
        matches!(self, Child::Unstarted(_) | Child::Running(_))
    }

    /// Takes the outcome of a finished child. A child that did not finish reads as cancelled
    /// (the combinators only take outcomes once every child finished).
    pub(crate) fn take(&mut self) -> Result<C::Output, TaskError> {
        match std::mem::replace(self, Child::Taken) {
            Child::Finished(outcome) => outcome,
            other => {
                *self = other;
                Err(TaskError::Cancelled)
            }
        }
    }
}

impl<C: IntoTask> ChildOps for Child<C> {
    fn start(&mut self) {
        Child::start(self)
    }

    /// Polls a running child for its outcome, without linking it to the polling task (the
    /// combinator cancels its children itself). With `recheck == false` a child whose task is
    /// not done is skipped: the waker it was polled with before is still registered.
    /// `Ready(Some(err))` if it finished with an error, `Ready(None)` with a value.
    fn poll_child(&mut self, cx: &mut Context<'_>, recheck: bool) -> Poll<Option<TaskError>> {
        let Child::Running(task) = self else {
            return Poll::Ready(match self {
                Child::Finished(Err(e)) => Some(e.clone()),
                _ => None,
            });
        };
        if !recheck && !task.done() {
            return Poll::Pending;
        }
        match task.poll_unlinked(cx) {
            Poll::Ready(outcome) => {
                let error = outcome.as_ref().err().cloned();
                *self = Child::Finished(outcome);
                Poll::Ready(error)
            }
            Poll::Pending => Poll::Pending,
        }
    }

    /// Lets go of a running child: cancels it if asked, and marks its result as retrieved
    /// (asyncio: a combinator that is done takes responsibility for its children's errors), so
    /// a later failure is not reported as "never retrieved". An unstarted child is dropped.
    fn release(&mut self, cancel: bool) {
        match std::mem::replace(self, Child::Taken) {
            Child::Running(task) => {
                if cancel {
                    task.cancel();
                }
                task.header().mark_retrieved();
            }
            Child::Finished(outcome) => *self = Child::Finished(outcome),
            Child::Unstarted(_) | Child::Taken => {}
        }
    }
}
