//! # spindle-bridge: crossing threads into a loop
//!
//! An [`EventLoop`](spindle_loop::EventLoop) is `!Send`: it belongs to its thread. This crate is
//! how every other thread reaches it, after asyncio's threadsafe API:
//!
//! | asyncio | spindle-bridge |
//! |---|---|
//! | `loop.call_soon_threadsafe(cb)` | [`LoopHandle::call_soon_threadsafe`] -> [`ThreadsafeHandle`] |
//! | `loop.call_soon_threadsafe(loop.stop)` | [`LoopHandle::stop`] |
//! | `asyncio.run_coroutine_threadsafe(coro, loop)` | [`run_coroutine_threadsafe`] -> [`ConcurrentFuture`] |
//! | (none: coroutines are not `Send` in Rust) | [`run_coroutine_threadsafe_with`] builds it on the loop |
//! | `concurrent.futures.Future.result(timeout)` | [`ConcurrentFuture::result`], [`ConcurrentFuture::result_timeout`] |
//! | `await asyncio.wrap_future(f)` | `f.await` |
//! | `loop.run_in_executor(None, f)` | [`EventLoopExt::run_in_executor`] |
//! | `await asyncio.to_thread(f)` | [`to_thread`]`(f)?.await` |
//!
//! ```
//! use spindle_bridge::{run_coroutine_threadsafe, EventLoopExt};
//! use spindle_loop::EventLoop;
//!
//! let (tx, rx) = std::sync::mpsc::channel();
//! let loop_thread = std::thread::spawn(move || {
//!     let lp = EventLoop::new().unwrap();
//!     tx.send(lp.handle()).unwrap();
//!     lp.run_forever().unwrap();
//!     lp.close().unwrap();
//! });
//! let handle = rx.recv().unwrap(); // Send + Sync + Clone
//!
//! handle.call_soon_threadsafe(|| println!("on the loop's thread")).unwrap();
//! let doubled = run_coroutine_threadsafe(async { 21 * 2 }, &handle).unwrap();
//! assert_eq!(doubled.result(), Ok(42));
//!
//! handle.stop().unwrap();
//! loop_thread.join().unwrap();
//! ```
//!
//! ## Decisions
//!
//! - **`lp.handle()`** comes from the [`EventLoopExt`] trait: the loop crate knows nothing of
//!   the bridge (dependencies point one way).
//! - **Nothing submitted is lost silently.** A closure, future or function submitted to a closed
//!   loop or pool comes back in [`SubmitError`]; one that was accepted runs exactly once (a
//!   loop's `close()` runs the threadsafe callbacks it had accepted).
//! - **A [`ConcurrentFuture`] always resolves**: with the value, the panic
//!   ([`BridgeError::Panicked`]), a cancellation from either side ([`BridgeError::Cancelled`]),
//!   or [`BridgeError::Closed`] when the loop closes before the coroutine finished. Its value is
//!   handed out once (`result()` takes `&self`, as Python's does; a second ask gets
//!   [`BridgeError::ResultTaken`]); its error as often as asked. `result()` on the thread of the
//!   loop that runs the coroutine returns [`BridgeError::WouldDeadlock`] instead of hanging
//!   (asyncio hangs there). Dropping it detaches the work;
//!   [`ConcurrentFuture::cancel`] resolves it at once (as Python does) and cancels the task on its
//!   loop. Done-callbacks take `&ConcurrentFuture<T>` and run on the resolving thread, or at once
//!   if it is already resolved; a panicking callback is logged (`tracing`), as in Python.
//! - **Coroutines live on their loop.** They are built (for the `_with` variant), polled and
//!   dropped only on the loop's thread; only the output crosses back, so it must be `Send`.
//! - **Cost.** A threadsafe callback costs one inbox push plus one small allocation for its
//!   cancellable receipt; a burst of submissions to a busy loop costs at most one wake-up syscall
//!   ([`LoopHandle::wakeups`] counts them). A thread blocked in [`ConcurrentFuture::result`]
//!   spins for up to 50 us before it parks, which is how a round trip avoids a second wake-up.
//! - **Blocking work** runs on a [`BlockingPool`]: bounded (asyncio's `min(32, cores + 4)` for a
//!   loop's default pool), threads started on demand and retired after 10 s idle; a loop's pool
//!   shuts down when the loop closes, without joining (a blocking call must not hang `close()`).
//!
//! ## Cross-thread protocols
//!
//! Each module documents its own: the give-back of refused submissions (`handle`), the
//! receipt's cancel-vs-run race and its chunked state (`receipt`), the future's resolution (`concurrent`), the coroutine's route
//! and drop guard (`run`), the pool's queue (`pool`). All the atomics, locks and condvars come
//! from one `sync` module that switches to `loom` under `--cfg loom`; the models are in
//! `loom-tests/tests/bridge.rs`.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod concurrent;
mod error;
mod executor;
mod ext;
mod handle;
mod pool;
mod receipt;
mod run;
mod sync;

pub use concurrent::ConcurrentFuture;
pub use error::{BridgeError, SubmitError};
pub use executor::{shutdown_default_executor, to_thread, EXECUTOR_SHUTDOWN_TIMEOUT};
pub use ext::EventLoopExt;
pub use handle::{LoopHandle, ThreadsafeHandle};
pub use pool::{BlockingPool, KEEP_ALIVE};
pub use run::{run_coroutine_threadsafe, run_coroutine_threadsafe_with};

/// Hooks for the loom models in `loom-tests/` (only with `--cfg loom`): the bridge's real
/// protocols, driven without an event loop around them.
#[cfg(loom)]
#[doc(hidden)]
pub mod __loom {
    pub use crate::concurrent::Completer;

    use crate::{SubmitError, ThreadsafeHandle};

    /// `call_soon_threadsafe` into the loop crate's modelled inbox.
    pub fn call_soon_threadsafe<F: FnOnce() + Send + 'static>(
        inbox: &spindle_loop::__loom::Inbox,
        f: F,
    ) -> Result<ThreadsafeHandle, SubmitError<F>> {
        crate::handle::submit_value(inbox, f, |f: F| f())
    }
}
