//! # spindle-loop: one asyncio event loop per thread
//!
//! [`EventLoop`] has the semantics of Python's asyncio loop, in Rust's idiom: `run_forever`,
//! `run_until_complete`, `stop`, `close`, `call_soon`, `call_later`, `call_at`, `time`, tasks
//! and futures with cancellation, an exception handler and debug mode.
//!
//! ```
//! use std::time::Duration;
//! use spindle_loop::EventLoop;
//!
//! let lp = EventLoop::new()?;
//! let inner = lp.clone();
//! let answer = lp.run_until_complete(async move {
//!     let a = inner.create_task(async { 40 }).unwrap();
//!     let b = inner.create_task(async { 2 }).unwrap();
//!     a.await.unwrap() + b.await.unwrap()
//! })?;
//! assert_eq!(answer, 42);
//! lp.close()?;
//! # Ok::<(), spindle_loop::LoopError>(())
//! ```
//!
//! ## Decisions (where asyncio leaves room, or Rust asks for something else)
//!
//! - **`!Send` loop.** `EventLoop` is owned by one thread; the compiler enforces asyncio's rule
//!   that `call_soon` is not thread-safe. Other threads go through [`Remote`] (and
//!   `spindle-bridge`'s `LoopHandle` on top of it).
//! - **Errors are values.** Scheduling on a closed loop returns [`Rejected`] with the closure or
//!   future inside; running a closed or running loop returns a [`LoopError`]; nothing panics on
//!   a caller's mistake, nothing submitted is lost silently.
//! - **Tasks** yield `Result<T, TaskError>` when awaited. Dropping a [`Task`] detaches it.
//!   Cancellation is a request: the task's future is dropped at its next scheduling, on its own
//!   thread, never mid-poll; cancelling a task also cancels the task it awaits.
//! - **Task done-callbacks must be `Send`** (a `Task` handle may travel to another thread);
//!   [`LoopFuture`] callbacks need not be. Both are always scheduled with `call_soon`.
//! - **Timers** with equal deadlines run in scheduling order (stricter than CPython).
//! - **Panics** in callbacks and tasks are caught: a callback's panic goes to the exception
//!   handler at once; a task's panic is its result, reported only if nobody retrieves it
//!   (asyncio's "exception was never retrieved").
//! - **`close()`** runs the threadsafe callbacks its inbox had already accepted (their producers
//!   were told they would run) and drops everything else on the loop's thread.
//! - **Combinators** (`sleep`, `gather`, `wait`, `wait_for`, `timeout`, `shield`,
//!   `yield_now`) follow asyncio's rules and return `Send` futures when their inputs are `Send`:
//!   they hold no `Rc` and find the running loop when first polled (a sleep's timer lives on
//!   the loop where it was first polled and can be cancelled from any thread). Polled outside
//!   a running loop, those that need one panic with a message saying so (as tokio's do): their
//!   outputs have no room for a "no loop" error, and a silent fallback would break their
//!   timing. A `Task` is a future too, so Rust cannot tell "a task" from "a future to run as a
//!   task" in one generic function: `gather`/`wait_for` take futures (each run as a task,
//!   asyncio's `ensure_future`), `gather_tasks`/`wait_for_task` take tasks, and `gather!` takes
//!   any mix. `wait` and `shield` take tasks. Errors of the combinators are
//!   [`TaskError`]s (`Timeout` is one); `gather` in fail-fast mode yields the first error it
//!   sees, `.settled()` gives every `Result`.
//! - **I/O readiness** ([`io`]): one poller per loop; a [`io::Source`] registers with the loop
//!   where it first has to wait (its home), edge-triggered, and wakes its task's waker on
//!   whatever thread the task runs; `add_reader` / `add_writer` are level-triggered callbacks,
//!   as asyncio's. Unix only (`AsFd`).
//!
//! ## Tracing
//!
//! A `spindle.loop` span (debug level) covers each run, a `spindle.task` span (trace level) each
//! task step, and `spindle.park` each wait. With no subscriber installed they cost a relaxed
//! load each.

#![deny(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

#[allow(unsafe_code)] // Callback: a reference count without the weak count (one size class less)
mod callback;
#[allow(unsafe_code)] // the task cell: one allocation per task, its state word, its wakers
mod cell;
mod combinators;
mod context;
mod error;
mod event_loop;
mod exception;
mod future;
mod handle;
#[allow(unsafe_code)] // the reactor's poller registrations (polling's `add` contract)
pub mod io;
#[allow(unsafe_code)] // LazyMutex: a box installed once behind an atomic pointer
mod lazy_mutex;
#[allow(unsafe_code)] // the prefetch intrinsic (a hint: it never faults)
mod prefetch;
mod registry;
mod remote;
#[allow(unsafe_code)] // RunnableSlot: a runnable's raw pointer in an atomic
mod slot;
#[allow(unsafe_code)] // a task header keeps its scheduler as one thin `Weak<S>` pointer
mod stealable;
mod sync;
#[allow(unsafe_code)] // TaskRef: a waker plus a pointer into the task's allocation
mod task;
mod timers;

pub use combinators::child::{IntoTask, Spawn};
#[doc(hidden)]
pub use combinators::gather::__private;
pub use combinators::gather::{gather, gather_tasks, Children, Gather, GatherSettled};
pub use combinators::shield::{shield, Shield};
pub use combinators::sleep::{sleep, sleep_until, yield_now, Sleep, YieldNow};
pub use combinators::wait::{wait, ReturnWhen, Wait};
pub use combinators::wait_for::{timeout, wait_for, wait_for_task, Timeout, WaitFor};
pub use error::{LoopError, Rejected, TaskError};
pub use event_loop::{
    all_tasks, create_task, current_task, spawn_local, EventLoop, LoopStats, Park, WorkerHook,
    DEFAULT_SLOW_CALLBACK, MAX_WAIT,
};
pub use exception::{default_exception_handler, ExceptionContext, ExceptionHandler, ExceptionKind};
pub use future::{FutureCallback, LoopFuture};
pub use handle::{Handle, TimerHandle};
pub use remote::Remote;
pub use slot::RunnableSlot;
pub use stealable::{spawn_stealable, Inline, Runnable, Scheduler, SchedulerId, TaskSet};
pub use task::{panic_message, Task, TaskCallback, TaskRef};

/// Hooks for the loom models in `loom-tests/` (only with `--cfg loom`): the real [`Remote`]
/// protocol, driven without an event loop around it.
#[cfg(loom)]
#[doc(hidden)]
pub mod __loom {
    use std::sync::Arc;
    use std::task::Waker;

    use crate::remote::{Remote, RemoteItem};
    use crate::sync::{AtomicUsize, Ordering};
    use crate::timers::{SleepSlab, WakeTimer};

    /// A loop's timer slots for `Send` sleeps (see `timers`), as the loop thread sees them,
    /// and the queue's count of cancelled sleeps still inside it.
    pub struct SleepSlots {
        slab: SleepSlab,
        counter: Arc<AtomicUsize>,
    }

    /// A sleep's handle on its slot, as the sleeper (any thread) sees it.
    pub struct Sleeper(WakeTimer);

    impl SleepSlots {
        /// No slot taken yet.
        #[allow(clippy::new_without_default)]
        pub fn new() -> Self {
            let counter = Arc::new(AtomicUsize::new(0));
            SleepSlots {
                slab: SleepSlab::new(counter.clone(), 1),
                counter,
            }
        }

        /// Loop thread: a sleep woken by `waker` takes a slot (its timer is pushed); returns
        /// the slot's index (the queue entry's) and the sleeper's handle.
        pub fn push(&mut self, waker: &Waker) -> (usize, Sleeper) {
            let (index, timer, old) = self.slab.push(waker, std::panic::Location::caller());
            drop(old);
            (index, Sleeper(timer))
        }

        /// Loop thread: the deadline passed (the queue popped the entry, then the ready queue
        /// ran it): wakes the sleeper unless it was cancelled, and frees the slot. Returns
        /// whether it fired.
        pub fn pop_and_fire(&mut self, index: usize) -> bool {
            let Some(waker) = self.slab.fire_due(index) else {
                return false;
            };
            if let Some(waker) = waker {
                waker.wake();
            }
            self.slab.free_fired(index);
            true
        }

        /// Loop thread: the queue's top is this slot and not due; if it reads cancelled, the
        /// queue drops it (and frees the slot). Returns whether it did.
        pub fn drop_if_cancelled(&mut self, index: usize) -> bool {
            let cancelled = self.slab.is_cancelled(index);
            if cancelled {
                self.slab.drop_cancelled(index);
            }
            cancelled
        }

        /// Loop thread, at `close()`: the queue lets go of the slot without firing it.
        pub fn discard(&mut self, index: usize) {
            drop(self.slab.discard(index));
        }

        /// The queue's count of cancelled sleeps still inside it.
        pub fn counted(&self) -> usize {
            self.counter.load(Ordering::SeqCst)
        }
    }

    impl Sleeper {
        /// Any thread: the sleep was dropped. Returns whether the cancellation is recorded
        /// (false: the timer fired first, or it was cancelled already).
        pub fn cancel(&self) -> bool {
            self.0.cancel()
        }

        /// Any thread: polled again with `waker`; returns whether it fired.
        pub fn poll(&self, waker: &Waker) -> bool {
            self.0.poll_fired(waker)
        }

        /// Whether this sleep's cancellation is recorded in its slot.
        pub fn is_cancelled(&self) -> bool {
            self.0.is_cancelled()
        }
    }

    /// The inbox of one loop, as the loop thread and producers see it.
    pub struct Inbox(Remote);

    impl Inbox {
        /// A fresh inbox (loop id 0).
        pub fn new() -> Self {
            Inbox(Remote::new(0).expect("the loom parker cannot fail"))
        }

        /// Producer side: `call_soon_threadsafe`.
        pub fn submit<F: FnOnce() + Send + 'static>(&self, f: F) -> Result<(), F> {
            self.0.submit(f).map_err(|rejected| rejected.into_inner())
        }

        /// Producer side: `value`, to be consumed by `run` on the loop's thread.
        pub fn submit_value<T, R>(&self, value: T, run: R) -> Result<(), T>
        where
            T: Send + 'static,
            R: FnOnce(T) + Send + 'static,
        {
            self.0
                .submit_value(value, run)
                .map_err(|rejected| rejected.into_inner())
        }

        /// Loop side: park with no timeout (returns at once if something is queued).
        pub fn park(&self) {
            let mut events = crate::remote::poller::Events::new();
            self.0.park(&mut events, None, true);
        }

        /// Loop side: run every queued callback; returns how many ran.
        pub fn run_pending(&self) -> usize {
            let mut ran = 0;
            while let Some(item) = self.0.pop() {
                match item {
                    RemoteItem::Call(call) => call.call(),
                    RemoteItem::Task(_) => continue,
                }
                ran += 1;
            }
            ran
        }

        /// Loop side: `close()`'s first half: refuse new callbacks, wait for in-flight ones.
        pub fn close(&self) {
            self.0.close();
        }

        /// Any thread: a scheduler's nudge (`Remote::wake`).
        pub fn wake(&self) {
            self.0.wake();
        }

        /// Wake-up syscalls issued so far.
        pub fn wakeups(&self) -> u64 {
            self.0.wakeups()
        }
    }

    impl Default for Inbox {
        fn default() -> Self {
            Self::new()
        }
    }

    /// One I/O source's readiness state (`io::readiness`), as its home loop and its tasks
    /// see it.
    #[derive(Default)]
    pub struct IoReadiness(crate::io::readiness::Readiness);

    /// What a task saw as ready (to clear after `WouldBlock`).
    pub struct IoEvent(crate::io::readiness::ReadyEvent);

    impl IoReadiness {
        /// Task side: `Some(event)` if readable (or `None` after storing the waker);
        /// `Err(LoopClosed)` once shut down.
        pub fn poll_readable(
            &self,
            cx: &mut std::task::Context<'_>,
        ) -> Result<Option<IoEvent>, crate::io::IoError> {
            use crate::io::readiness::Direction;
            match self.0.poll_ready(cx, Direction::Read) {
                std::task::Poll::Ready(Ok(event)) => Ok(Some(IoEvent(event))),
                std::task::Poll::Ready(Err(_)) => Err(crate::io::IoError::LoopClosed),
                std::task::Poll::Pending => Ok(None),
            }
        }

        /// Task side: the syscall said `WouldBlock` after `event`.
        pub fn clear(&self, event: IoEvent) {
            self.0.clear(event.0);
        }

        /// Home loop: the poller reported the source readable.
        pub fn deliver_readable(&self) {
            self.0.deliver(crate::io::readiness::READABLE);
        }

        /// Home loop: the loop closed.
        pub fn deliver_shutdown(&self) {
            self.0.deliver(crate::io::readiness::SHUTDOWN);
        }

        /// The source is dropped (deregistered): its stored wakers are dropped.
        pub fn drop_wakers(&self) {
            drop(self.0.clear_wakers());
        }
    }

    /// A task header's lazily allocated slow state (`LazyMutex`), holding a list of numbers.
    pub struct LazyList(crate::lazy_mutex::LazyMutex<Vec<u32>>);

    impl LazyList {
        /// Nothing allocated yet.
        #[allow(clippy::new_without_default)]
        pub fn new() -> Self {
            LazyList(crate::lazy_mutex::LazyMutex::new())
        }

        /// Any thread: allocates on first use, then appends.
        pub fn push(&self, value: u32) {
            self.0.lock().push(value);
        }

        /// Any thread: the list if it was ever allocated, without allocating it.
        pub fn peek(&self) -> Option<Vec<u32>> {
            self.0.lock_if_used().map(|list| list.clone())
        }
    }
}
