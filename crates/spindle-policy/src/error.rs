//! The policy crate's error.

use std::error::Error;
use std::fmt;

use spindle_loop::LoopError;

/// What went wrong choosing, running or closing a thread's loop.
///
/// ```
/// use spindle_policy::{get_running_loop, PolicyError};
/// assert_eq!(get_running_loop().unwrap_err(), PolicyError::NoRunningLoop);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PolicyError {
    /// `get_event_loop()` in a thread that has no current loop and may not create one.
    NoCurrentLoop {
        /// The thread's name (or its id when it has none).
        thread: String,
    },
    /// `get_running_loop()` outside a running loop.
    NoRunningLoop,
    /// `run()` (or `Runner::run`) called while a loop is already running on this thread.
    AlreadyRunning,
    /// The `Runner` was closed.
    RunnerClosed,
    /// The loop itself refused or failed (see [`LoopError`]).
    Loop(LoopError),
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicyError::NoCurrentLoop { thread } => write!(
                f,
                "no current event loop in thread '{thread}': create one with new_event_loop() \
                 and make it current with set_event_loop(), or use run()"
            ),
            PolicyError::NoRunningLoop => f.write_str(
                "no running event loop: call this from inside a task or callback of a running loop",
            ),
            PolicyError::AlreadyRunning => f.write_str(
                "run() cannot be called while an event loop is running on this thread: await the \
                 coroutine, or create a task on the running loop instead",
            ),
            PolicyError::RunnerClosed => {
                f.write_str("the Runner is closed: create a new Runner to run more coroutines")
            }
            PolicyError::Loop(e) => write!(f, "{e}"),
        }
    }
}

impl Error for PolicyError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            PolicyError::Loop(e) => Some(e),
            _ => None,
        }
    }
}

impl From<LoopError> for PolicyError {
    fn from(e: LoopError) -> Self {
        PolicyError::Loop(e)
    }
}

/// The name `NoCurrentLoop` and friends report for the current thread.
pub(crate) fn current_thread_label() -> String {
    let thread = std::thread::current();
    match thread.name() {
        Some(name) => name.to_string(),
        None => format!("{:?}", thread.id()),
    }
}
