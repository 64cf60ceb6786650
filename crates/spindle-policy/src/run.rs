//! [`run`] (asyncio's `asyncio.run`) and [`Runner`] (asyncio's `asyncio.Runner`).
//!
//! # Ctrl-C (asyncio 3.11's rules)
//!
//! [`Runner::run`] (and so [`run`]) called on the main thread (the one Rust names `"main"`)
//! takes `SIGINT` for the length of the run when Ctrl-C would kill the process now (no handler
//! of the program's, no loop handling `SIGINT`): `spindle_loop::io::InterruptScope`, whose
//! module docs give the protocol and how the disposition is asked (`sigaction(2)`). Then:
//! - the first `SIGINT` cancels the main task (the loop wakes on the signal's self-pipe); if
//!   the task ends cancelled, `run` returns [`PolicyError::Interrupted`] after the usual
//!   cleanup. A task that finished before the signal was seen keeps its value. (A Rust task
//!   cannot catch its cancellation, so asyncio's `uncancel` case does not arise.)
//! - a second `SIGINT` during the run kills the process as the default disposition does,
//!   from the signal handler itself (a stuck loop does not prevent it);
//! - when the run ends the handler goes and Ctrl-C kills the process again.
//!
//! On another thread, or when the program handles `SIGINT` itself, nothing is installed. A
//! handler of `SIGINT` that the main task adds to the run's loop replaces the run's one (and is
//! removed with it when the run ends); the second-`SIGINT` rule still holds.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::rc::Rc;
use std::time::Duration;

#[cfg(not(loom))]
use spindle_loop::io::InterruptScope;
use spindle_loop::{EventLoop, LoopError, TaskError, TaskRef};

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
/// Ctrl-C (on the main thread): the first `SIGINT` cancels the main task and `run` returns
/// [`PolicyError::Interrupted`] once it has cleaned up; a second one kills the process; see
/// the module docs of `run` (asyncio 3.11's rules).
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

/// Takes Ctrl-C for a run on the main thread (see the module docs): `None` on other threads,
/// when `SIGINT` is not at its default, or if it could not be taken (logged).
#[cfg(not(loom))]
fn catch_ctrl_c(
    lp: &EventLoop,
    main_task: &Rc<RefCell<Option<TaskRef>>>,
    interrupted: &Rc<Cell<bool>>,
) -> Option<InterruptScope> {
    if !crate::default_policy::is_main_thread() {
        return None;
    }
    let (task, seen) = (main_task.clone(), interrupted.clone());
    InterruptScope::enter(lp, move || on_sigint(&task, &seen)).unwrap_or_else(|e| {
        tracing::warn!(error = %e, "run(): cannot handle Ctrl-C; it keeps its effect");
        None
    })
}

/// Under loom the loop has no signal handling: runs take no Ctrl-C.
#[cfg(loom)]
fn catch_ctrl_c(_: &EventLoop, _: &Rc<RefCell<Option<TaskRef>>>, _: &Rc<Cell<bool>>) -> Option<()> {
    None
}

/// The run's SIGINT handler (on its loop): the first delivery cancels the main task unless it
/// is done (asyncio's `Runner._on_sigint`; a second delivery never gets here, it kills the
/// process first).
#[cfg(not(loom))]
fn on_sigint(main_task: &RefCell<Option<TaskRef>>, interrupted: &Cell<bool>) {
    if interrupted.get() {
        return;
    }
    match &*main_task.borrow() {
        Some(task) if task.done() => {}
        Some(task) => {
            interrupted.set(true);
            task.cancel();
        }
        // Not started yet: it cancels itself at its first step.
        None => interrupted.set(true),
    }
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
/// Each `run` on the main thread handles Ctrl-C as asyncio 3.11's `Runner.run` does: the
/// first `SIGINT` cancels that run's main task, which then returns
/// [`PolicyError::Interrupted`]; a second one kills the process; between runs Ctrl-C kills
/// the process as usual (see the module docs of `run`).
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
    /// the runner is closed or a loop is already running on this thread. On the main thread,
    /// a Ctrl-C during the run cancels `future`'s task and the run returns
    /// [`PolicyError::Interrupted`] (the loop stays open for the next run; see the type's
    /// docs).
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
        // The main task's reference, published at its first step for the SIGINT handler.
        let main_task: Rc<RefCell<Option<TaskRef>>> = Rc::default();
        let interrupted = Rc::new(Cell::new(false));
        let result = {
            // Ctrl-C is the run's until this scope ends.
            let _scope = catch_ctrl_c(&lp, &main_task, &interrupted);
            let (publish, early) = (main_task, interrupted.clone());
            lp.run_until_complete(async move {
                let me = spindle_loop::current_task();
                *publish.borrow_mut() = me.clone();
                if early.get() && me.is_some_and(|me| me.cancel()) {
                    // SIGINT seen before this first step: the task ends cancelled at its next
                    // step, `future` never polled (as a task cancelled before it started).
                    std::future::pending::<()>().await;
                }
                future.await
            })
        };
        match result {
            Err(LoopError::Task(TaskError::Cancelled)) if interrupted.get() => {
                Err(PolicyError::Interrupted)
            }
            other => Ok(other?),
        }
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
