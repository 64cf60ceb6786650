//! [`run_coroutine_threadsafe`] and [`run_coroutine_threadsafe_with`]: start a coroutine on a
//! loop from any thread and get a [`ConcurrentFuture`] of its output.
//!
//! # Protocol
//!
//! The caller submits a closure through the loop's inbox (see [`crate::handle`]). On the loop's
//! thread it checks the future was not cancelled meanwhile, builds the coroutine, and creates a
//! task for it; the task's [`TaskRef`](spindle_loop::TaskRef) is recorded in the future so that
//! `cancel()` can reach it (a cancel that raced with the creation cancels the task at once).
//!
//! The task runs the coroutine under `catch_unwind` and completes the future with its output or
//! its panic. If the coroutine is dropped unfinished, a guard resolves the future: with
//! [`BridgeError::Closed`] if the loop is closed (it was destroyed by `close()`), else with
//! [`BridgeError::Cancelled`] (its task was cancelled on the loop). A closure that reaches the
//! loop only when it is closing (`close()` runs the threadsafe callbacks it accepted, outside
//! any run) resolves the future with `Closed` without building the coroutine. So the future
//! always resolves, and the coroutine is built, polled and dropped only on the loop's thread.

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::task::Poll;

use spindle_loop::{EventLoop, ExceptionContext, ExceptionKind, Remote};

use crate::concurrent::{Completer, ConcurrentFuture};
use crate::error::{BridgeError, SubmitError};
use crate::handle::{running_loop, submit_untracked, LoopHandle};

/// Runs `future` as a task on the loop behind `handle` and returns a [`ConcurrentFuture`] of its
/// output (asyncio's `run_coroutine_threadsafe`). Callable from any thread, including another
/// loop's (await the result there).
///
/// The output, a panic, and a cancellation on the loop's side come back through the future;
/// [`ConcurrentFuture::cancel`] cancels the task. If the loop closes before the coroutine
/// finished, the future resolves with [`BridgeError::Closed`]. On a loop that is already
/// closed, `future` comes back in the error.
///
/// ```
/// use spindle_bridge::{run_coroutine_threadsafe, EventLoopExt};
/// use spindle_loop::EventLoop;
///
/// let (tx, rx) = std::sync::mpsc::channel();
/// let loop_thread = std::thread::spawn(move || {
///     let lp = EventLoop::new().unwrap();
///     tx.send(lp.handle()).unwrap();
///     lp.run_forever().unwrap();
///     lp.close().unwrap();
/// });
/// let handle = rx.recv().unwrap();
///
/// let answer = run_coroutine_threadsafe(async { 6 * 7 }, &handle).unwrap();
/// assert_eq!(answer.result(), Ok(42));
///
/// handle.stop().unwrap();
/// loop_thread.join().unwrap();
/// ```
pub fn run_coroutine_threadsafe<F>(
    future: F,
    handle: &LoopHandle,
) -> Result<ConcurrentFuture<F::Output>, SubmitError<F>>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    submit(handle, future, |future| future)
}

/// Like [`run_coroutine_threadsafe`], for coroutines that are not `Send` (they hold an `Rc`, a
/// `RefCell`, the `EventLoop` itself): `make` is sent to the loop's thread and builds the
/// coroutine there, where it stays. Only its output crosses back. A panic in `make` comes back
/// as [`BridgeError::Panicked`] and is also reported to the loop's exception handler
/// (`ExceptionKind::CallbackPanicked`); on a closed loop, `make` comes back in the error.
///
/// ```
/// use std::rc::Rc;
/// use spindle_bridge::{run_coroutine_threadsafe_with, EventLoopExt};
/// use spindle_loop::EventLoop;
///
/// let (tx, rx) = std::sync::mpsc::channel();
/// let loop_thread = std::thread::spawn(move || {
///     let lp = EventLoop::new().unwrap();
///     tx.send(lp.handle()).unwrap();
///     lp.run_forever().unwrap();
/// });
/// let handle = rx.recv().unwrap();
///
/// let len = run_coroutine_threadsafe_with(
///     || {
///         let local = Rc::new(String::from("stays on the loop"));
///         async move { local.len() }
///     },
///     &handle,
/// )
/// .unwrap();
/// assert_eq!(len.result(), Ok(17));
///
/// handle.stop().unwrap();
/// loop_thread.join().unwrap();
/// ```
pub fn run_coroutine_threadsafe_with<M, F>(
    make: M,
    handle: &LoopHandle,
) -> Result<ConcurrentFuture<F::Output>, SubmitError<M>>
where
    M: FnOnce() -> F + Send + 'static,
    F: Future + 'static,
    F::Output: Send + 'static,
{
    submit(handle, make, |make: M| make())
}

/// Submits `value`; on the loop's thread `build(value)` makes the coroutine.
fn submit<V, F, B>(
    handle: &LoopHandle,
    value: V,
    build: B,
) -> Result<ConcurrentFuture<F::Output>, SubmitError<V>>
where
    V: Send + 'static,
    B: FnOnce(V) -> F + Send + 'static,
    F: Future + 'static,
    F::Output: Send + 'static,
{
    // Dropped unfinished anywhere outside the paths below (e.g. with the submission, when the
    // loop refuses it), the future resolves as the loop being closed.
    let remote = handle.remote();
    let loop_id = remote.loop_id();
    let (completer, future) = Completer::on_loop(loop_id, BridgeError::Closed);
    let start = move |value: V| {
        if completer.is_done() {
            return; // cancelled before it reached the loop: never built
        }
        let Some(lp) = running_loop(loop_id) else {
            // Run by `close()`, outside any run: the loop is closing.
            completer.complete(Err(BridgeError::Closed));
            return;
        };
        match catch_unwind(AssertUnwindSafe(|| build(value))) {
            Ok(coroutine) => spawn(&lp, coroutine, completer),
            Err(payload) => {
                // The caller gets the panic in the future, and the loop whose thread it
                // happened on reports it, as it does any panicking callback.
                let message = spindle_loop::panic_message(&*payload);
                let mut ctx = ExceptionContext::new(
                    ExceptionKind::CallbackPanicked,
                    "run_coroutine_threadsafe_with: the coroutine's builder panicked",
                );
                ctx.panic = Some(message.as_str().into());
                completer.complete(Err(BridgeError::Panicked(message.into())));
                lp.call_exception_handler(ctx);
            }
        }
    };
    // The future is the caller's handle (its `cancel` reaches the task, or `start` sees it
    // done): no receipt to cancel the submission itself.
    submit_untracked(remote, value, start)?;
    Ok(future)
}

/// Loop thread: runs `coroutine` as a task that completes `completer`.
fn spawn<F>(lp: &EventLoop, coroutine: F, completer: Completer<F::Output>)
where
    F: Future + 'static,
    F::Output: Send + 'static,
{
    let link = completer.task_link();
    let guard = DropGuard {
        completer: Some(completer),
        remote: lp.remote(),
    };
    let task = async move {
        let mut guard = guard;
        // In its own scope, so the coroutine is dropped before the future resolves.
        let outcome = {
            let mut coroutine = std::pin::pin!(coroutine);
            std::future::poll_fn(|cx| {
                match catch_unwind(AssertUnwindSafe(|| coroutine.as_mut().poll(cx))) {
                    Ok(Poll::Pending) => Poll::Pending,
                    Ok(Poll::Ready(value)) => Poll::Ready(Ok(value)),
                    Err(payload) => Poll::Ready(Err(BridgeError::from_panic(&*payload))),
                }
            })
            .await
        };
        if let Some(completer) = guard.completer.take() {
            completer.complete(outcome);
        }
    };
    match lp.create_task(task) {
        // The task handle is dropped: the task is detached and reports through the future.
        Ok(task) => link.set_task(task.task_ref()),
        // Unreachable while the loop runs; dropping the task resolves the future all the same.
        Err(rejected) => drop(rejected.into_inner()),
    }
}

/// Resolves the future when the coroutine is dropped unfinished (see the module docs).
struct DropGuard<T> {
    completer: Option<Completer<T>>,
    remote: std::sync::Arc<Remote>,
}

impl<T> Drop for DropGuard<T> {
    fn drop(&mut self) {
        if let Some(completer) = self.completer.take() {
            let error = if self.remote.is_closed() {
                BridgeError::Closed
            } else {
                BridgeError::Cancelled
            };
            completer.complete(Err(error));
        }
    }
}
