//! # spindle-sync: asyncio's synchronization primitives and `TaskGroup`
//!
//! | asyncio | spindle-sync |
//! |---|---|
//! | `asyncio.Queue(maxsize)` | [`Queue::new(maxsize)`](Queue) |
//! | `PriorityQueue`, `LifoQueue` | [`PriorityQueue`], [`LifoQueue`] |
//! | `await q.put(x)` / `q.put_nowait(x)` | `q.put(x).await` / `q.put_nowait(x)` ([`PutNowaitError::QueueFull`] gives `x` back) |
//! | `await q.get()` / `q.get_nowait()` | `q.get().await` / `q.get_nowait()` ([`GetNowaitError::QueueEmpty`]) |
//! | `q.task_done()` / `await q.join()` | `q.task_done()` / `q.join().await` |
//! | `q.shutdown(immediate)` (3.13) | `q.shutdown(immediate)` ([`QueueShutDown`]) |
//! | `asyncio.Lock()`, `async with lock:` | [`Lock`], `let _g = lock.lock().await;` |
//! | `asyncio.Event()` | [`Event`]: `set`, `clear`, `is_set`, `wait().await` |
//! | `asyncio.Semaphore(n)` / `BoundedSemaphore(n)` | [`Semaphore`] / [`BoundedSemaphore`] ([`TooManyReleases`]) |
//! | `asyncio.Condition()` | [`Condition`]: `let g = cond.lock().await; g.wait().await`, `g.notify(n)` |
//! | `asyncio.Barrier(n)` | [`Barrier`]: `wait`, `abort`, `reset`, `broken` ([`BrokenBarrierError`]) |
//! | `async with asyncio.TaskGroup() as tg:` | [`TaskGroup::run(|tg| async move { .. })`](TaskGroup::run) |
//!
//! ```
//! use std::sync::Arc;
//! use spindle_sync::{Queue, TaskGroup};
//!
//! let queue = Arc::new(Queue::new(4));
//! let total = spindle_policy::run(TaskGroup::run(|tg| async move {
//!     let consumer = queue.clone();
//!     let sum = tg
//!         .create_task(async move {
//!             let mut sum = 0;
//!             while let Ok(n) = consumer.get().await {
//!                 sum += n;
//!             }
//!             sum
//!         })
//!         .unwrap();
//!     for n in 1..=100 {
//!         queue.put(n).await.unwrap();
//!     }
//!     queue.shutdown(false);
//!     sum.await.unwrap()
//! }))
//! .unwrap();
//! assert_eq!(total.unwrap(), 5050);
//! ```
//!
//! ## Decisions
//!
//! - **Everything is `Send + Sync`** and works from local tasks, stolen tasks, several loops
//!   and plain threads (the `*_nowait`/`set`/`release` calls). Waiters are woken through their
//!   `Waker`, which routes each task back to its own loop or worker.
//! - **FIFO with hand-off, and cancellation loses nothing.** A released permit, a put item or
//!   a notification goes to the first waiter, which owns it from then on; a waiter cancelled
//!   while waiting leaves the line, and one cancelled after it was handed something passes
//!   it on. `event-listener` and `async-lock` wake waiters that then race for the resource
//!   again (and let newcomers barge in), which is neither FIFO nor exact, so the queues,
//!   [`Lock`], the semaphores, [`Condition`] and [`Barrier`] share our own waiter list (a slab
//!   and a linked FIFO under each primitive's mutex: no allocation per wait once warm).
//!   [`Event`] (a broadcast) and `Queue::join` use `event-listener` as it is.
//! - **Guards instead of `release()`** where Rust can check it: [`Lock`] and the semaphores
//!   hand out guards; [`Condition`]'s `wait`/`notify` are methods of its guard, so calling them
//!   without the lock (asyncio's `RuntimeError`) does not compile.
//! - **Errors are typed values** that give back what was refused.
//! - **[`TaskGroup`]** is scoped by a closure (Rust has no async drop); see its docs for the
//!   rules and the one place where a child can outlive the group (the group's own
//!   cancellation).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod barrier;
mod condition;
mod error;
mod event;
mod lock;
mod permits;
mod queue;
mod semaphore;
pub mod task_group;
mod waiters;

pub use barrier::Barrier;
pub use condition::{Condition, ConditionGuard};
pub use error::{
    BrokenBarrierError, GetNowaitError, PutNowaitError, QueueShutDown, TaskDoneError,
    TooManyReleases,
};
pub use event::Event;
pub use lock::{Lock, LockGuard};
pub use queue::{Fifo, Lifo, LifoQueue, Order, OrderedQueue, Priority, PriorityQueue, Queue};
pub use semaphore::{BoundedSemaphore, Semaphore, SemaphorePermit};
pub use task_group::{
    ChildFailure, ChildTask, CreateResult, TaskGroup, TaskGroupError, TaskGroupRefusal,
};
