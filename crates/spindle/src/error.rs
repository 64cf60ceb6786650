//! [`Error`]: one error type over the crates' own, so a program matches a situation one way.
//!
//! Each crate keeps its own error enum ([`LoopError`], [`TaskError`], [`BridgeError`],
//! [`PolicyError`], and the refusals that carry back what was submitted: [`Rejected`],
//! [`SubmitError`](crate::SubmitError), [`SpawnError`](crate::SpawnError)). All of them
//! convert into [`Error`] (`?` or `.into()`), and the conversion puts a situation that several
//! crates report under one variant: the loop is closed ([`Error::Closed`]), no loop runs on
//! this thread ([`Error::NoRunningLoop`]), the work was cancelled, panicked or timed out.
//! Whatever has no shared meaning keeps its crate's error ([`Error::Loop`], [`Error::Task`],
//! [`Error::Bridge`], [`Error::Policy`]), unchanged.

use std::fmt;
use std::sync::Arc;

use spindle_bridge::BridgeError;
use spindle_loop::{LoopError, Rejected, TaskError};
use spindle_policy::PolicyError;

/// Any spindle error, with the situations several crates report under one variant each: the
/// loop is closed ([`Error::Closed`]), no loop runs on this thread ([`Error::NoRunningLoop`]),
/// the work was cancelled, panicked or timed out. What has no shared meaning keeps its crate's
/// error ([`Error::Loop`], [`Error::Task`], [`Error::Bridge`], [`Error::Policy`]), unchanged.
/// Every crate's error, and the refusals that carry back what was submitted ([`Rejected`],
/// [`SubmitError`](crate::SubmitError), [`SpawnError`](crate::SpawnError)), converts into it.
///
/// ```
/// use spindle::{EventLoop, EventLoopExt, Error};
///
/// let lp = EventLoop::new().unwrap();
/// let handle = lp.handle();
/// lp.close().unwrap();
/// // The loop crate and the bridge each say "closed" in their own type ...
/// let from_loop: Error = lp.call_soon(|| ()).unwrap_err().into();
/// let from_bridge: Error = handle.call_soon_threadsafe(|| ()).unwrap_err().into();
/// // ... and are matched one way.
/// assert!(matches!(from_loop, Error::Closed));
/// assert!(matches!(from_bridge, Error::Closed));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The event loop is closed: it accepts no more work ([`LoopError::Closed`],
    /// [`BridgeError::Closed`], a [`PolicyError::Loop`] of it).
    Closed,
    /// The call needs a loop running on this thread and none is ([`LoopError::NoRunningLoop`],
    /// [`BridgeError::NoRunningLoop`], [`PolicyError::NoRunningLoop`]).
    NoRunningLoop,
    /// The task or work was cancelled ([`TaskError::Cancelled`], [`BridgeError::Cancelled`]).
    Cancelled,
    /// The task or work panicked; the panic's message ([`TaskError::Panicked`],
    /// [`BridgeError::Panicked`]).
    Panicked(Arc<str>),
    /// A deadline passed ([`TaskError::Timeout`], [`BridgeError::Timeout`]).
    Timeout,
    /// Another error of the loop crate.
    Loop(LoopError),
    /// Another way a task or future ended without a value (e.g. an exception set on a
    /// future).
    Task(TaskError),
    /// Another error of the bridge.
    Bridge(BridgeError),
    /// Another error of the policy or the runtime.
    Policy(PolicyError),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Closed => fmt::Display::fmt(&LoopError::Closed, f),
            Error::NoRunningLoop => fmt::Display::fmt(&LoopError::NoRunningLoop, f),
            Error::Cancelled => fmt::Display::fmt(&TaskError::Cancelled, f),
            Error::Panicked(message) => write!(f, "the work panicked: {message}"),
            Error::Timeout => fmt::Display::fmt(&TaskError::Timeout, f),
            Error::Loop(e) => fmt::Display::fmt(e, f),
            Error::Task(e) => fmt::Display::fmt(e, f),
            Error::Bridge(e) => fmt::Display::fmt(e, f),
            Error::Policy(e) => fmt::Display::fmt(e, f),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Loop(e) => Some(e),
            Error::Task(e) => Some(e),
            Error::Bridge(e) => Some(e),
            Error::Policy(e) => Some(e),
            _ => None,
        }
    }
}

impl From<TaskError> for Error {
    fn from(e: TaskError) -> Self {
        match e {
            TaskError::Cancelled => Error::Cancelled,
            TaskError::Panicked(message) => Error::Panicked(message),
            TaskError::Timeout => Error::Timeout,
            other => Error::Task(other),
        }
    }
}

impl From<LoopError> for Error {
    fn from(e: LoopError) -> Self {
        match e {
            LoopError::Closed => Error::Closed,
            LoopError::NoRunningLoop => Error::NoRunningLoop,
            LoopError::Task(task) => task.into(),
            other => Error::Loop(other),
        }
    }
}

impl From<BridgeError> for Error {
    fn from(e: BridgeError) -> Self {
        match e {
            BridgeError::Closed => Error::Closed,
            BridgeError::NoRunningLoop => Error::NoRunningLoop,
            BridgeError::Cancelled => Error::Cancelled,
            BridgeError::Panicked(message) => Error::Panicked(message),
            BridgeError::Timeout(_) => Error::Timeout,
            other => Error::Bridge(other),
        }
    }
}

impl From<PolicyError> for Error {
    fn from(e: PolicyError) -> Self {
        match e {
            PolicyError::NoRunningLoop => Error::NoRunningLoop,
            PolicyError::Loop(e) => e.into(),
            other => Error::Policy(other),
        }
    }
}

/// A refused submission (`Rejected`, `SubmitError`, `SpawnError`): its reason, converted; what
/// was submitted is dropped (take it with `into_inner` first to keep it).
impl<T, E: Into<Error>> From<Rejected<T, E>> for Error {
    fn from(rejected: Rejected<T, E>) -> Self {
        rejected.into_reason().into()
    }
}
