//! # spindle
//!
//! An async runtime with asyncio's loop semantics and Rust's speed: one event loop per thread.
//! This facade re-exports [`spindle_loop`], [`spindle_bridge`], [`spindle_policy`], the
//! sockets of [`spindle::net`], asyncio's synchronization primitives as
//! [`spindle::sync`] (with [`TaskGroup`]), and the [`#[spindle::main]`](main) and
//! [`#[spindle::test]`](test) entry points; and adds [`Error`], into which every error of
//! those crates converts (match that one).
//!
//! ```
//! use spindle::EventLoop;
//!
//! let lp = EventLoop::new().unwrap();
//! assert_eq!(lp.run_until_complete(async { 1 + 1 }).unwrap(), 2);
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

// `::spindle` paths (what the macros expand to) also resolve inside this crate.
extern crate self as spindle;

mod error;

pub use error::Error;
pub use spindle_bridge;
pub use spindle_loop;
pub use spindle_policy;

/// Sockets on the loops' I/O readiness: TCP, UDP, Unix, `Async<T>` ([`spindle_net`]).
#[cfg(unix)]
pub use spindle_net as net;
/// asyncio's synchronization primitives and `TaskGroup`: the `spindle-sync` crate.
pub use spindle_sync as sync;
pub use spindle_sync::TaskGroup;

/// Runs `async fn main()` on a spindle loop (`spindle::run`), or on a [`Runtime`] of `N`
/// worker loops with `#[spindle::main(workers = N)]`.
///
/// ```
/// #[spindle::main]
/// async fn main() {
///     let lp = spindle::get_running_loop().unwrap();
///     let task = lp.create_task(async { 21 * 2 }).unwrap();
///     assert_eq!(task.await, Ok(42));
/// }
/// ```
///
/// ```
/// #[spindle::main(workers = 2)]
/// async fn main() -> Result<(), spindle::TaskError> {
///     let total = spindle::spawn(async { 1 + 1 }).unwrap().await?; // any worker may run it
///     assert_eq!(total, 2);
///     Ok(())
/// }
/// ```
///
/// Mistakes are compile errors that say what to write. The function must be `async`:
///
/// ```compile_fail
/// #[spindle::main]
/// fn main() {}
/// ```
///
/// The only argument is `workers = N`, with `N >= 1`:
///
/// ```compile_fail
/// #[spindle::main(threads = 2)]
/// async fn main() {}
/// ```
///
/// ```compile_fail
/// #[spindle::main(workers = 0)]
/// async fn main() {}
/// ```
pub use spindle_macros::main;

/// Runs an `async fn` test on a spindle loop, or on a [`Runtime`] with `workers = N`.
///
/// (A doctest cannot run `#[test]` functions; `crates/spindle/tests/macros.rs` runs these.)
///
/// ```
/// #[spindle::test]
/// async fn adds() {
///     assert_eq!(spindle::spawn_local(async { 2 + 2 }).unwrap().await, Ok(4));
/// }
///
/// #[spindle::test(workers = 2)]
/// async fn spawns() {
///     assert_eq!(spindle::spawn(async { 3 }).unwrap().await, Ok(3));
/// }
/// ```
///
/// ```compile_fail
/// #[spindle::test(workers = "two")]
/// async fn wrong() {}
/// ```
///
/// ```compile_fail
/// #[spindle::test]
/// async fn takes_an_argument(n: u32) {}
/// ```
pub use spindle_macros::test;

pub use spindle_bridge::{
    run_coroutine_threadsafe, run_coroutine_threadsafe_with, to_thread, BlockingPool, BridgeError,
    ConcurrentFuture, EventLoopExt, LoopHandle, SubmitError, ThreadsafeHandle,
};
pub use spindle_loop::{
    all_tasks, current_task, default_exception_handler, EventLoop, ExceptionContext,
    ExceptionHandler, ExceptionKind, FutureCallback, Handle, LoopError, LoopFuture, LoopStats,
    Rejected, Remote, Task, TaskCallback, TaskError, TaskRef, TimerHandle,
};
pub use spindle_loop::{
    gather, gather_tasks, shield, sleep, sleep_until, timeout, wait, wait_for, wait_for_task,
    yield_now, Children, Gather, GatherSettled, IntoTask, ReturnWhen, Shield, Sleep, Spawn,
    Timeout, Wait, WaitFor, YieldNow,
};
pub use spindle_policy::{
    create_task, get_event_loop, get_event_loop_policy, get_running_loop, new_event_loop, run,
    set_event_loop, set_event_loop_policy, spawn, spawn_local, AutoCreate, Builder,
    ConnectionGauge, DefaultEventLoopPolicy, EventLoopPolicy, OpenConnection, PolicyError, Runner,
    Runtime, RuntimeHandle, SpawnError, WorkerMetrics,
};

/// The names most programs need, in one import.
///
/// ```
/// use spindle::prelude::*;
/// let lp = EventLoop::new().unwrap();
/// lp.close().unwrap();
/// ```
pub mod prelude {
    pub use crate::sync::{Event, Lock, Queue, Semaphore};
    pub use crate::TaskGroup;
    pub use crate::{
        current_task, get_running_loop, run, spawn_local, EventLoop, LoopFuture, Task, TaskError,
    };
    pub use crate::{gather, shield, sleep, timeout, wait, wait_for, yield_now, ReturnWhen};
    pub use crate::{run_coroutine_threadsafe, to_thread, EventLoopExt, LoopHandle};
}

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
