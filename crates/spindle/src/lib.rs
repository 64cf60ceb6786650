//! # spindle
//!
//! An async runtime with asyncio's loop semantics and Rust's speed: one event loop per thread.
//! This facade re-exports [`spindle_loop`], [`spindle_bridge`] and [`spindle_policy`], and adds
//! [`Error`], into which every error of those crates converts (match that one).
//!
//! ```
//! use spindle::EventLoop;
//!
//! let lp = EventLoop::new().unwrap();
//! assert_eq!(lp.run_until_complete(async { 1 + 1 }).unwrap(), 2);
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod error;

pub use error::Error;
pub use spindle_bridge;
pub use spindle_loop;
pub use spindle_policy;

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
    DefaultEventLoopPolicy, EventLoopPolicy, PolicyError, Runner, Runtime, RuntimeHandle,
    SpawnError, WorkerMetrics,
};

/// The names most programs need, in one import.
///
/// ```
/// use spindle::prelude::*;
/// let lp = EventLoop::new().unwrap();
/// lp.close().unwrap();
/// ```
pub mod prelude {
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
