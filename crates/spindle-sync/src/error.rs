//! The errors of `spindle-sync`: asyncio's exceptions as typed values.

use std::error::Error;
use std::fmt;

/// asyncio's `QueueShutDown`: the queue was shut down. A refused `put` gives its item back
/// in the field; a refused `get` carries `()`.
///
/// ```
/// let q = spindle_sync::Queue::new(0);
/// q.shutdown(false);
/// let err = spindle_policy::run(async move { q.put(5).await }).unwrap().unwrap_err();
/// assert_eq!(err.into_inner(), 5);
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct QueueShutDown<T = ()>(pub T);

impl<T> QueueShutDown<T> {
    /// The item that could not be put.
    ///
    /// ```
    /// assert_eq!(spindle_sync::QueueShutDown("x").into_inner(), "x");
    /// ```
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> fmt::Debug for QueueShutDown<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("QueueShutDown(..)")
    }
}

impl<T> fmt::Display for QueueShutDown<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "the queue is shut down: it takes no more items and hands out none once empty \
             (a refused item comes back in the error); stop producing or consuming",
        )
    }
}

impl<T> Error for QueueShutDown<T> {}

/// Why [`put_nowait`](crate::OrderedQueue::put_nowait) refused; the item comes back.
///
/// ```
/// use spindle_sync::{PutNowaitError, Queue};
/// let q = Queue::new(1);
/// q.put_nowait('a').unwrap();
/// let err = q.put_nowait('b').unwrap_err();
/// assert!(err.is_full());
/// assert_eq!(err.into_inner(), 'b');
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum PutNowaitError<T> {
    /// asyncio's `QueueFull`: the queue holds `maxsize` items (or putters wait before you).
    QueueFull(T),
    /// asyncio's `QueueShutDown`.
    QueueShutDown(T),
}

impl<T> PutNowaitError<T> {
    /// The item that was not put.
    ///
    /// ```
    /// assert_eq!(spindle_sync::PutNowaitError::QueueFull(1).into_inner(), 1);
    /// ```
    pub fn into_inner(self) -> T {
        match self {
            PutNowaitError::QueueFull(item) | PutNowaitError::QueueShutDown(item) => item,
        }
    }

    /// Whether it is `QueueFull`.
    ///
    /// ```
    /// assert!(!spindle_sync::PutNowaitError::QueueShutDown(1).is_full());
    /// ```
    pub fn is_full(&self) -> bool {
        matches!(self, PutNowaitError::QueueFull(_))
    }
}

impl<T> fmt::Debug for PutNowaitError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PutNowaitError::QueueFull(_) => f.write_str("QueueFull(..)"),
            PutNowaitError::QueueShutDown(_) => f.write_str("QueueShutDown(..)"),
        }
    }
}

impl<T> fmt::Display for PutNowaitError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PutNowaitError::QueueFull(_) => f.write_str(
                "the queue is full: await put() to wait for room, or retry later \
                 (the item comes back in the error)",
            ),
            PutNowaitError::QueueShutDown(item) => fmt::Display::fmt(&QueueShutDown(item), f),
        }
    }
}

impl<T> Error for PutNowaitError<T> {}

/// Why [`get_nowait`](crate::OrderedQueue::get_nowait) returned no item.
///
/// ```
/// use spindle_sync::{GetNowaitError, Queue};
/// assert_eq!(Queue::<u8>::new(0).get_nowait(), Err(GetNowaitError::QueueEmpty));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GetNowaitError {
    /// asyncio's `QueueEmpty`.
    QueueEmpty,
    /// asyncio's `QueueShutDown`: shut down and empty.
    QueueShutDown,
}

impl fmt::Display for GetNowaitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GetNowaitError::QueueEmpty => {
                f.write_str("the queue is empty: await get() to wait for an item")
            }
            GetNowaitError::QueueShutDown => fmt::Display::fmt(&QueueShutDown(()), f),
        }
    }
}

impl Error for GetNowaitError {}

/// `task_done()` was called more times than items were put (asyncio's `ValueError`).
///
/// ```
/// let err = spindle_sync::Queue::<u8>::new(0).task_done().unwrap_err();
/// assert!(err.to_string().contains("task_done"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskDoneError;

impl fmt::Display for TaskDoneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "task_done() called more times than items were put: call it once per item you got",
        )
    }
}

impl Error for TaskDoneError {}

/// A [`BoundedSemaphore`](crate::BoundedSemaphore) was released more times than it was
/// acquired (asyncio's `ValueError`).
///
/// ```
/// let err = spindle_sync::BoundedSemaphore::new(2).release().unwrap_err();
/// assert_eq!(err.bound(), 2);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooManyReleases {
    bound: usize,
}

impl TooManyReleases {
    pub(crate) fn new(bound: usize) -> Self {
        TooManyReleases { bound }
    }

    /// The semaphore's initial value, which the release would have exceeded.
    ///
    /// ```
    /// # let err = spindle_sync::BoundedSemaphore::new(1).release().unwrap_err();
    /// assert_eq!(err.bound(), 1);
    /// ```
    pub fn bound(&self) -> usize {
        self.bound
    }
}

impl fmt::Display for TooManyReleases {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "BoundedSemaphore released too many times: it would hold more than its initial {} \
             permits; release only permits taken with a forgotten guard (dropped guards give \
             theirs back by themselves)",
            self.bound
        )
    }
}

impl Error for TooManyReleases {}

/// asyncio's `BrokenBarrierError`: the barrier was aborted or reset while (or before) waiting.
///
/// ```
/// static BARRIER: spindle_sync::Barrier = spindle_sync::Barrier::new(2);
/// BARRIER.abort();
/// let err = spindle_policy::run(BARRIER.wait()).unwrap().unwrap_err();
/// assert!(err.to_string().contains("reset"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BrokenBarrierError;

impl fmt::Display for BrokenBarrierError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "the barrier is broken (aborted, or reset while this task waited): call reset() \
             before waiting on it again",
        )
    }
}

impl Error for BrokenBarrierError {}
