//! The bridge's errors: [`BridgeError`] says what went wrong; [`SubmitError`] carries it together
//! with what the caller handed over, when a submission is refused, so nothing is lost silently.

use std::error::Error;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Why a cross-thread operation did not produce a value.
///
/// Errors a [`ConcurrentFuture`](crate::ConcurrentFuture) resolves with are sticky: asking again
/// gives the same error. Cheap to clone.
///
/// ```
/// use spindle_bridge::{BridgeError, EventLoopExt};
/// use spindle_loop::EventLoop;
///
/// let lp = EventLoop::new().unwrap();
/// let handle = lp.handle();
/// lp.close().unwrap();
/// assert_eq!(handle.stop(), Err(BridgeError::Closed));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BridgeError {
    /// The target loop is closed (or closed before the work finished): it accepts no more work,
    /// and the work it had not finished was dropped on its thread.
    Closed,
    /// The work was cancelled: by [`ConcurrentFuture::cancel`](crate::ConcurrentFuture::cancel),
    /// or on the loop's side (its task was cancelled).
    Cancelled,
    /// The work panicked; the panic's message.
    Panicked(Arc<str>),
    /// [`result_timeout`](crate::ConcurrentFuture::result_timeout) gave up after this long; the
    /// work goes on.
    Timeout(Duration),
    /// The value was already handed out (a `ConcurrentFuture` gives its value once).
    ResultTaken,
    /// A call that needs the loop running on this thread was made where none runs.
    NoRunningLoop,
    /// The [`BlockingPool`](crate::BlockingPool) was shut down (and it belongs to no loop).
    PoolShutDown,
    /// The operating system refused to start a thread for the blocking pool.
    Spawn(Arc<str>),
    /// `result()` was called on the thread of the loop that runs the coroutine: the loop cannot
    /// run while its own thread is blocked, so the wait would never end.
    WouldDeadlock,
}

impl BridgeError {
    /// `true` for [`BridgeError::Cancelled`].
    ///
    /// ```
    /// assert!(spindle_bridge::BridgeError::Cancelled.is_cancelled());
    /// ```
    pub fn is_cancelled(&self) -> bool {
        matches!(self, BridgeError::Cancelled)
    }

    /// `true` for [`BridgeError::Panicked`].
    ///
    /// ```
    /// assert!(spindle_bridge::BridgeError::Panicked("boom".into()).is_panic());
    /// ```
    pub fn is_panic(&self) -> bool {
        matches!(self, BridgeError::Panicked(_))
    }
}

impl fmt::Display for BridgeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BridgeError::Closed => f.write_str(
                "the event loop is closed: it accepts no more work and dropped what it had not \
                 finished; submit to a loop that is still open (EventLoop::new() creates one)",
            ),
            BridgeError::Cancelled => f.write_str(
                "the work was cancelled (by ConcurrentFuture::cancel() or by cancelling its task \
                 on the loop), so there is no result",
            ),
            BridgeError::Panicked(message) => write!(
                f,
                "the work panicked: {message} (the panic was caught; the loop goes on)"
            ),
            BridgeError::Timeout(after) => write!(
                f,
                "no result after {after:?}: the work is still running; call result() or \
                 result_timeout() again to keep waiting, or cancel() it"
            ),
            BridgeError::ResultTaken => f.write_str(
                "the result was already taken: a ConcurrentFuture hands its value out once \
                 (through result(), result_timeout() or .await); keep the value you got",
            ),
            BridgeError::NoRunningLoop => f.write_str(
                "no event loop is running on this thread: call this from a task or callback of a \
                 running loop, or use EventLoopExt::run_in_executor / BlockingPool::spawn",
            ),
            BridgeError::PoolShutDown => f.write_str(
                "the blocking pool was shut down: it accepts no more work; create a new \
                 BlockingPool",
            ),
            BridgeError::WouldDeadlock => f.write_str(
                "result() was called on the thread of the loop that runs the coroutine, which \
                 cannot run while its own thread is blocked: .await the ConcurrentFuture there \
                 instead",
            ),
            BridgeError::Spawn(e) => write!(
                f,
                "could not start a blocking-pool thread ({e}): lower the pool's size or the \
                 number of threads in the process"
            ),
        }
    }
}

impl Error for BridgeError {}

/// Keeps the reason and drops what was submitted, so `?` works in functions returning
/// `Result<_, BridgeError>` (take [`SubmitError::into_inner`] first to keep it).
///
/// ```
/// use spindle_bridge::{to_thread, BridgeError};
///
/// async fn checksum(data: Vec<u8>) -> Result<u32, BridgeError> {
///     let sum = to_thread(move || data.iter().map(|&b| u32::from(b)).sum())?.await?;
///     Ok(sum)
/// }
/// let lp = spindle_loop::EventLoop::new().unwrap();
/// assert_eq!(lp.run_until_complete(checksum(vec![1, 2, 3])).unwrap(), Ok(6));
/// // Without a running loop, the error says so.
/// let outside = std::pin::pin!(checksum(vec![]));
/// let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
/// let polled = std::future::Future::poll(outside, &mut cx);
/// assert_eq!(polled, std::task::Poll::Ready(Err(BridgeError::NoRunningLoop)));
/// ```
impl<T> From<SubmitError<T>> for BridgeError {
    fn from(error: SubmitError<T>) -> Self {
        error.into_reason()
    }
}

/// A submission was refused. It carries back what the caller handed over (a closure, a future),
/// untouched: take it with [`into_inner`](spindle_loop::Rejected::into_inner). The loop crate's
/// [`Rejected`](spindle_loop::Rejected), with the bridge's error as the reason.
///
/// ```
/// use spindle_bridge::{BridgeError, EventLoopExt};
/// use spindle_loop::EventLoop;
///
/// let lp = EventLoop::new().unwrap();
/// let handle = lp.handle();
/// lp.close().unwrap();
/// let (tx, rx) = std::sync::mpsc::channel();
/// let err = handle.call_soon_threadsafe(move || tx.send(7).unwrap()).unwrap_err();
/// assert_eq!(err.reason(), &BridgeError::Closed);
/// let f = err.into_inner();
/// f(); // it came back: run it elsewhere
/// assert_eq!(rx.recv().unwrap(), 7);
/// ```
pub type SubmitError<T> = spindle_loop::Rejected<T, BridgeError>;

impl BridgeError {
    /// The error for a caught panic, from its payload.
    pub(crate) fn from_panic(payload: &(dyn std::any::Any + Send)) -> BridgeError {
        BridgeError::Panicked(spindle_loop::panic_message(payload).into())
    }
}
