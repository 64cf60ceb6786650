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
    /// Ctrl-C: a `SIGINT` cancelled the main task of [`run`](crate::run) or
    /// [`Runner::run`](crate::Runner::run) (asyncio 3.11's `KeyboardInterrupt` out of
    /// `asyncio.run`). The usual cleanup ran (the other tasks cancelled; in `run`, the loop
    /// closed).
    Interrupted,
    /// The loop itself refused or failed (see [`LoopError`]).
    Loop(LoopError),
    /// `Runtime::builder().worker_threads(0)`: a runtime needs at least one worker.
    NoWorkers,
    /// The operating system refused to start a worker thread.
    ThreadSpawn(String),
    /// A worker could not create its event loop.
    WorkerLoop(String),
    /// The runtime is shut down (or shutting down): it takes no new work.
    ShutDown,
    /// `spawn` outside a runtime worker or `block_on`.
    NoRuntime,
    /// `spawn_on(worker, ..)` with an index past the last worker.
    NoSuchWorker {
        /// The index asked for.
        index: usize,
        /// How many workers the runtime has.
        workers: usize,
    },
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
            PolicyError::Interrupted => f.write_str(
                "interrupted: Ctrl-C (SIGINT) cancelled the main task of run(); a second Ctrl-C \
                 during a run kills the process",
            ),
            PolicyError::Loop(e) => write!(f, "{e}"),
            PolicyError::NoWorkers => f.write_str(
                "a runtime needs at least one worker thread: pass worker_threads(n) with n >= 1",
            ),
            PolicyError::ThreadSpawn(e) => write!(f, "could not start a worker thread: {e}"),
            PolicyError::WorkerLoop(e) => {
                write!(f, "a worker could not create its event loop: {e}")
            }
            PolicyError::ShutDown => f.write_str(
                "the runtime is shut down: it takes no new tasks (the future is returned)",
            ),
            PolicyError::NoRuntime => f.write_str(
                "no runtime here: call spawn() from a runtime worker or inside Runtime::block_on, \
                 or use Runtime::spawn / RuntimeHandle::spawn",
            ),
            PolicyError::NoSuchWorker { index, workers } => write!(
                f,
                "no worker {index}: the runtime has {workers} (indices 0..{workers})"
            ),
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

/// A spawn was refused; the future (or closure) comes back with the reason. The loop crate's
/// [`Rejected`](spindle_loop::Rejected), with the policy's error as the reason.
///
/// ```
/// let rt = spindle_policy::Runtime::builder().worker_threads(1).build().unwrap();
/// let handle = rt.handle().clone();
/// rt.shutdown();
/// let err = handle.spawn(async { 1 }).unwrap_err();
/// assert_eq!(err.reason(), &spindle_policy::PolicyError::ShutDown);
/// let _future = err.into_inner();
/// ```
pub type SpawnError<T> = spindle_loop::Rejected<T, PolicyError>;
