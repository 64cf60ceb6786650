//! The loop crate's errors.
//!
//! Three types, each for one kind of failure:
//! - [`LoopError`]: an operation on the loop or a future could not be done (closed, running,
//!   stopped early, wrong state).
//! - [`TaskError`]: how a task or future ended when it did not produce a value (cancelled,
//!   panicked, an exception was set). It is what awaiting a [`Task`](crate::Task) yields on failure.
//! - [`Rejected`]: a scheduling call was refused; it hands back what the caller gave, so nothing
//!   submitted is lost silently.

use std::error::Error;
use std::fmt;
use std::sync::Arc;

/// An operation on an [`EventLoop`](crate::EventLoop) or a future could not be carried out.
///
/// ```
/// use spindle_loop::{EventLoop, LoopError};
///
/// let lp = EventLoop::new().unwrap();
/// lp.close().unwrap();
/// assert_eq!(lp.run_forever(), Err(LoopError::Closed));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LoopError {
    /// The loop is closed; it cannot schedule or run anything again.
    Closed,
    /// The loop is running: it cannot be run again from inside itself, nor closed.
    Running,
    /// Another loop is already running on this thread; a thread runs one loop at a time.
    OtherLoopRunning,
    /// `run_until_complete` returned because the loop was stopped before the future completed.
    /// The task it ran is still pending and resumes on the next run.
    StoppedBeforeComplete,
    /// The future or task is not in a state that allows the operation (asyncio's
    /// `InvalidStateError`); the text says which operation and why.
    InvalidState(&'static str),
    /// The future given to `run_until_complete` did not produce a value.
    Task(TaskError),
    /// The operating system refused to create the loop's poller.
    Poller(String),
    /// The call needs a loop running on this thread (inside a task or callback), and none is.
    NoRunningLoop,
    /// [`wait`](crate::wait()) was given no tasks (asyncio raises `ValueError` here).
    EmptyWait,
}

impl fmt::Display for LoopError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoopError::Closed => {
                f.write_str("the event loop is closed: create a new one with EventLoop::new()")
            }
            LoopError::Running => f.write_str(
                "the event loop is already running: it cannot be run again from inside itself \
                 or closed until run_forever/run_until_complete returns",
            ),
            LoopError::OtherLoopRunning => f.write_str(
                "another event loop is already running on this thread: a thread runs one loop \
                 at a time; schedule the work on the running loop instead",
            ),
            LoopError::StoppedBeforeComplete => f.write_str(
                "event loop stopped before the future completed; the task is still pending \
                 and resumes when the loop runs again",
            ),
            LoopError::InvalidState(what) => write!(f, "invalid state: {what}"),
            LoopError::Task(e) => write!(f, "the future did not complete: {e}"),
            LoopError::Poller(e) => write!(f, "could not create the loop's poller: {e}"),
            LoopError::NoRunningLoop => f.write_str(
                "no running event loop: call this from inside a task or callback of a running \
                 loop, or use EventLoop::create_task on a loop you hold",
            ),
            LoopError::EmptyWait => f.write_str(
                "wait() was given no tasks: there is nothing to wait for; check for an empty \
                 set before calling it",
            ),
        }
    }
}

impl Error for LoopError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            LoopError::Task(e) => Some(e),
            _ => None,
        }
    }
}

impl From<TaskError> for LoopError {
    fn from(e: TaskError) -> Self {
        LoopError::Task(e)
    }
}

/// How a task or future ended without a value.
///
/// Cheap to clone (the payloads are shared), so every awaiter of a
/// [`LoopFuture`](crate::LoopFuture) can get its own copy.
///
/// ```
/// use spindle_loop::{EventLoop, TaskError};
///
/// let lp = EventLoop::new().unwrap();
/// let task = lp.create_task(async { 1 }).unwrap();
/// assert!(task.cancel());
/// let out = lp.run_until_complete(task).unwrap();
/// assert_eq!(out, Err(TaskError::Cancelled));
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub enum TaskError {
    /// The task or future was cancelled (asyncio's `CancelledError`).
    Cancelled,
    /// The task panicked; the panic's message.
    Panicked(Arc<str>),
    /// An error was set on the future with `set_exception`.
    Exception(Arc<dyn Error + Send + Sync>),
    /// The deadline of [`wait_for`](crate::wait_for()) or [`timeout`](crate::timeout) passed
    /// before the work finished (asyncio's `TimeoutError`); the work was cancelled.
    Timeout,
    /// A task awaited its own handle (asyncio's "Task cannot await on itself"): it would wait
    /// for ever, so the await fails at once and the task goes on.
    ///
    /// ```
    /// use std::cell::RefCell;
    /// use std::rc::Rc;
    /// use spindle_loop::{EventLoop, Task, TaskError};
    ///
    /// let lp = EventLoop::new().unwrap();
    /// let slot: Rc<RefCell<Option<Task<u8>>>> = Rc::default();
    /// let seen = Rc::new(RefCell::new(None));
    /// let (mine, saw) = (slot.clone(), seen.clone());
    /// let task = lp
    ///     .create_task(async move {
    ///         let mut me = mine.borrow_mut().take().unwrap();
    ///         *saw.borrow_mut() = Some((&mut me).await);
    ///         7
    ///     })
    ///     .unwrap();
    /// *slot.borrow_mut() = Some(task);
    /// lp.stop();
    /// lp.run_forever().unwrap(); // one iteration: the task runs to its end
    /// assert_eq!(*seen.borrow(), Some(Err(TaskError::AwaitedItself)));
    /// ```
    AwaitedItself,
}

impl TaskError {
    /// `true` for [`TaskError::Cancelled`].
    ///
    /// ```
    /// assert!(spindle_loop::TaskError::Cancelled.is_cancelled());
    /// ```
    pub fn is_cancelled(&self) -> bool {
        matches!(self, TaskError::Cancelled)
    }

    /// `true` for [`TaskError::Panicked`].
    ///
    /// ```
    /// assert!(spindle_loop::TaskError::Panicked("boom".into()).is_panic());
    /// ```
    pub fn is_panic(&self) -> bool {
        matches!(self, TaskError::Panicked(_))
    }

    /// `true` for [`TaskError::Timeout`].
    ///
    /// ```
    /// assert!(spindle_loop::TaskError::Timeout.is_timeout());
    /// ```
    pub fn is_timeout(&self) -> bool {
        matches!(self, TaskError::Timeout)
    }
}

impl Eq for TaskError {}

impl PartialEq for TaskError {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (TaskError::Cancelled, TaskError::Cancelled) => true,
            (TaskError::Timeout, TaskError::Timeout) => true,
            (TaskError::AwaitedItself, TaskError::AwaitedItself) => true,
            (TaskError::Panicked(a), TaskError::Panicked(b)) => a == b,
            (TaskError::Exception(a), TaskError::Exception(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl fmt::Debug for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskError::Cancelled => f.write_str("Cancelled"),
            TaskError::Panicked(m) => f.debug_tuple("Panicked").field(m).finish(),
            TaskError::Exception(e) => f.debug_tuple("Exception").field(&e.to_string()).finish(),
            TaskError::Timeout => f.write_str("Timeout"),
            TaskError::AwaitedItself => f.write_str("AwaitedItself"),
        }
    }
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskError::Cancelled => f.write_str("the task was cancelled"),
            TaskError::Panicked(m) => write!(f, "the task panicked: {m}"),
            TaskError::Exception(e) => write!(f, "the future failed: {e}"),
            TaskError::Timeout => f.write_str(
                "the deadline passed before the work finished, and the work was cancelled: \
                 allow more time, or shield() the work if it must run to completion",
            ),
            TaskError::AwaitedItself => f.write_str(
                "a task awaited its own handle, which would never complete: await another \
                 task, or return the value instead",
            ),
        }
    }
}

impl Error for TaskError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            TaskError::Exception(e) => Some(&**e),
            _ => None,
        }
    }
}

/// A scheduling call was refused. It carries back what the caller handed over (a closure, a
/// future), so nothing is lost silently: take it with [`Rejected::into_inner`].
///
/// ```
/// use spindle_loop::{EventLoop, LoopError};
///
/// let lp = EventLoop::new().unwrap();
/// lp.close().unwrap();
/// let err = lp.call_soon(|| println!("never")).unwrap_err();
/// assert_eq!(err.reason(), &LoopError::Closed);
/// let f = err.into_inner();
/// f(); // the closure came back; run it elsewhere
/// ```
pub struct Rejected<T, E = LoopError> {
    value: T,
    reason: E,
}

impl<T, E> Rejected<T, E> {
    /// A refusal of `value`, for `reason`. The crates above the loop use it with their own
    /// error type (`spindle-bridge`'s `SubmitError`, `spindle-policy`'s `SpawnError`).
    ///
    /// ```
    /// use spindle_loop::{LoopError, Rejected};
    /// let err = Rejected::new(5, LoopError::Closed);
    /// assert_eq!(err.into_inner(), 5);
    /// ```
    pub fn new(value: T, reason: E) -> Self {
        Rejected { value, reason }
    }

    /// Why the call was refused.
    ///
    /// ```
    /// # use spindle_loop::{EventLoop, LoopError};
    /// # let lp = EventLoop::new().unwrap();
    /// # lp.close().unwrap();
    /// let err = lp.create_task(async {}).unwrap_err();
    /// assert_eq!(err.reason(), &LoopError::Closed);
    /// ```
    pub fn reason(&self) -> &E {
        &self.reason
    }

    /// What the caller handed over, given back untouched.
    ///
    /// ```
    /// # use spindle_loop::EventLoop;
    /// # let lp = EventLoop::new().unwrap();
    /// # lp.close().unwrap();
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// let f = lp.call_soon(move || tx.send(7).unwrap()).unwrap_err().into_inner();
    /// f();
    /// assert_eq!(rx.recv().unwrap(), 7);
    /// ```
    pub fn into_inner(self) -> T {
        self.value
    }

    /// The reason, dropping what was handed over (for `?` into the reason's error type).
    ///
    /// ```
    /// use spindle_loop::{LoopError, Rejected};
    /// assert_eq!(Rejected::new((), LoopError::Closed).into_reason(), LoopError::Closed);
    /// ```
    pub fn into_reason(self) -> E {
        self.reason
    }
}

impl<T, E: fmt::Debug> fmt::Debug for Rejected<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rejected")
            .field("reason", &self.reason)
            .finish_non_exhaustive()
    }
}

impl<T, E: fmt::Display> fmt::Display for Rejected<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (what was submitted is returned: call into_inner())",
            self.reason
        )
    }
}

impl<T, E: Error + 'static> Error for Rejected<T, E> {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&self.reason)
    }
}
