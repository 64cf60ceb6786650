//! [`run`] (asyncio's `asyncio.run`) and [`Runner`] (asyncio's `asyncio.Runner`).

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::time::Duration;

use spindle_loop::EventLoop;

use crate::error::PolicyError;
use crate::policy::get_event_loop_policy;

/// Upper bound on loop iterations spent letting cancelled tasks finish at shutdown: a cancelled
/// task finishes at its next step, so a handful suffice; the bound only guards against a task
/// whose destructor keeps spawning new ones.
const SHUTDOWN_ITERATIONS: usize = 1_000;

/// Runs `future` to completion on a new loop and cleans up (asyncio's `asyncio.run`).
///
/// Errors first if a loop is already running on this thread. Otherwise: a new loop from the
/// current policy, made current; `future` runs as a task; then, whether it succeeded or not,
/// every task still alive is cancelled and the loop runs until they have finished (their
/// destructors run on this thread), the loop's blocking pool finishes its jobs (waited for up
/// to [`EXECUTOR_SHUTDOWN_TIMEOUT`](spindle_bridge::EXECUTOR_SHUTDOWN_TIMEOUT), 300 s, as
/// asyncio's `shutdown_default_executor`; a job still running then is reported and left
/// unjoined), the thread's current loop is unset, and the loop is closed. Returns the future's
/// output. [`Runner`] can set another timeout.
///
/// ```
/// let out = spindle_policy::run(async { 6 * 7 }).unwrap();
/// assert_eq!(out, 42);
/// ```
#[track_caller]
pub fn run<F>(future: F) -> Result<F::Output, PolicyError>
where
    F: Future + 'static,
    F::Output: 'static,
{
    // asyncio's own definition: a fresh Runner, one run, then close (which cancels what is
    // left, unsets the loop and closes it). A close error takes precedence over the result.
    let runner = Runner::new();
    let result = runner.run(future);
    runner.close()?;
    result
}

/// Cancels every task still alive on `lp` and runs the loop until they have all finished.
fn shut_down(lp: &EventLoop) {
    for _ in 0..SHUTDOWN_ITERATIONS {
        let tasks = lp.all_tasks();
        if tasks.is_empty() {
            return;
        }
        for task in &tasks {
            task.cancel();
        }
        lp.stop();
        if lp.run_forever().is_err() {
            return;
        }
    }
    tracing::warn!(
        remaining = lp.all_tasks().len(),
        "tasks kept appearing during shutdown; close() drops the rest"
    );
}

/// One loop for several [`run`](Runner::run) calls (asyncio's `asyncio.Runner`).
///
/// The loop is created on first use and made current; [`close`](Runner::close) (or dropping the
/// runner) cancels what is left, unsets and closes it. Any use after close is
/// [`PolicyError::RunnerClosed`].
///
/// ```
/// use spindle_policy::Runner;
///
/// let runner = Runner::new();
/// assert_eq!(runner.run(async { 1 }).unwrap(), 1);
/// assert_eq!(runner.run(async { 2 }).unwrap(), 2);
/// runner.close().unwrap();
/// assert!(runner.run(async { 3 }).is_err());
/// ```
pub struct Runner {
    state: RefCell<RunnerState>,
    /// How long `close` waits for the loop's blocking pool.
    executor_timeout: Cell<Duration>,
}

enum RunnerState {
    Fresh,
    Open(EventLoop),
    Closed,
}

impl Default for Runner {
    fn default() -> Self {
        Self::new()
    }
}

impl Runner {
    /// A runner; its loop is created at the first `run`.
    ///
    /// ```
    /// let runner = spindle_policy::Runner::new();
    /// # drop(runner);
    /// ```
    pub fn new() -> Self {
        Runner {
            state: RefCell::new(RunnerState::Fresh),
            executor_timeout: Cell::new(spindle_bridge::EXECUTOR_SHUTDOWN_TIMEOUT),
        }
    }

    /// How long [`close`](Self::close) waits for the jobs of the loop's blocking pool
    /// (`to_thread`, `run_in_executor`) to finish; default
    /// [`EXECUTOR_SHUTDOWN_TIMEOUT`](spindle_bridge::EXECUTOR_SHUTDOWN_TIMEOUT) (300 s, as
    /// asyncio). A job still running then is reported to the loop's exception handler and
    /// left to finish unjoined.
    ///
    /// ```
    /// use std::time::Duration;
    /// let runner = spindle_policy::Runner::new();
    /// runner.set_executor_shutdown_timeout(Duration::from_secs(5));
    /// runner.close().unwrap();
    /// ```
    pub fn set_executor_shutdown_timeout(&self, timeout: Duration) {
        self.executor_timeout.set(timeout);
    }

    /// The runner's loop (created and made current if needed).
    ///
    /// ```
    /// let runner = spindle_policy::Runner::new();
    /// let lp = runner.get_loop().unwrap();
    /// assert_eq!(runner.get_loop().unwrap().id(), lp.id());
    /// ```
    pub fn get_loop(&self) -> Result<EventLoop, PolicyError> {
        let mut state = self.state.borrow_mut();
        match &*state {
            RunnerState::Open(lp) => Ok(lp.clone()),
            RunnerState::Closed => Err(PolicyError::RunnerClosed),
            RunnerState::Fresh => {
                let policy = get_event_loop_policy();
                let lp = policy.new_event_loop()?;
                policy.set_event_loop(Some(lp.clone()));
                *state = RunnerState::Open(lp.clone());
                Ok(lp)
            }
        }
    }

    /// Runs `future` to completion on the runner's loop and returns its output. An error if
    /// the runner is closed or a loop is already running on this thread.
    ///
    /// ```
    /// let runner = spindle_policy::Runner::new();
    /// assert_eq!(runner.run(async { "hi" }).unwrap(), "hi");
    /// ```
    #[track_caller]
    pub fn run<F>(&self, future: F) -> Result<F::Output, PolicyError>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        if matches!(&*self.state.borrow(), RunnerState::Closed) {
            return Err(PolicyError::RunnerClosed);
        }
        if EventLoop::running().is_some() {
            return Err(PolicyError::AlreadyRunning);
        }
        let lp = self.get_loop()?;
        Ok(lp.run_until_complete(future)?)
    }

    /// Cancels what is left, waits for the loop's blocking pool (see
    /// [`set_executor_shutdown_timeout`](Self::set_executor_shutdown_timeout)), unsets and
    /// closes the loop. Idempotent.
    ///
    /// ```
    /// let runner = spindle_policy::Runner::new();
    /// runner.close().unwrap();
    /// runner.close().unwrap();
    /// ```
    pub fn close(&self) -> Result<(), PolicyError> {
        let previous = std::mem::replace(&mut *self.state.borrow_mut(), RunnerState::Closed);
        if let RunnerState::Open(lp) = previous {
            if lp.is_running() {
                *self.state.borrow_mut() = RunnerState::Open(lp);
                return Err(PolicyError::Loop(spindle_loop::LoopError::Running));
            }
            shut_down(&lp);
            // asyncio's `shutdown_default_executor`: a job that outlives the timeout was
            // reported to the loop's handler; the close goes on either way.
            let timeout = self.executor_timeout.get();
            let _ = lp.run_until_complete(spindle_bridge::shutdown_default_executor(timeout));
            get_event_loop_policy().set_event_loop(None);
            lp.close()?;
        }
        Ok(())
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        if let Err(e) = self.close() {
            tracing::error!(error = %e, "Runner dropped while its loop was running");
        }
    }
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &*self.state.borrow() {
            RunnerState::Fresh => "fresh",
            RunnerState::Open(_) => "open",
            RunnerState::Closed => "closed",
        };
        f.debug_struct("Runner").field("state", &state).finish()
    }
}
