//! # spindle-policy: which loop a thread gets
//!
//! asyncio's policy layer in Rust's idiom: an [`EventLoopPolicy`] decides which loop each thread
//! gets; the default one ([`DefaultEventLoopPolicy`]) gives every thread its own loop, creating
//! one on demand in the main thread only (configurable with [`AutoCreate`]). [`run`] and
//! [`Runner`] are asyncio's `asyncio.run` and `asyncio.Runner`.
//!
//! ```
//! use spindle_policy::{get_running_loop, run};
//!
//! let answer = run(async {
//!     let lp = get_running_loop().unwrap();
//!     let task = lp.create_task(async { 21 * 2 }).unwrap();
//!     task.await.unwrap()
//! })
//! .unwrap();
//! assert_eq!(answer, 42);
//! ```
//!
//! Decisions where asyncio leaves room:
//! - "main thread" is the thread Rust names `"main"` (the thread `fn main` runs on);
//! - the per-thread current loop is a `std::thread_local!` (loops are `!Send`); the registry of
//!   every thread's loop handle, which [`DefaultEventLoopPolicy::loops`] enumerates, is a
//!   `thread_local::ThreadLocal`; a thread's entry goes when its loop closes;
//! - `run()` lets cancelled tasks finish by running the loop (their `Drop` runs on this thread)
//!   before it closes the loop; a task cannot refuse cancellation in Rust, so this ends.
//! - Ctrl-C: `run()` / `Runner::run` on the main thread take `SIGINT` only while it would kill
//!   the process (no handler of the program's and no loop handling it, asked with
//!   `sigaction(2)`), and "restoring the default" means the process dies of `SIGINT` as it
//!   would without spindle (see [`Runner`]).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod default_policy;
mod error;
mod policy;
mod run;
#[cfg(not(loom))]
mod runtime;
#[cfg(loom)]
#[doc(hidden)]
pub mod runtime;

pub use default_policy::{AutoCreate, DefaultEventLoopPolicy};
pub use error::{PolicyError, SpawnError};
pub use policy::{
    get_event_loop, get_event_loop_policy, get_running_loop, new_event_loop, set_event_loop,
    set_event_loop_policy, EventLoopPolicy,
};
pub use run::{run, Runner};
pub use runtime::{
    spawn, Builder, ConnectionGauge, OpenConnection, Runtime, RuntimeHandle, WorkerMetrics,
};
pub use spindle_loop::{all_tasks, create_task, current_task, spawn_local};
