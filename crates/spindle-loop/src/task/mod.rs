//! Tasks: a future driven by one loop, with asyncio's cancellation and done-callbacks.
//!
//! # Structure
//!
//! A task is **one allocation**, its cell (see `cell`): a state word, the [`TaskHeader`], and
//! a [`TaskFuture`] (the user's future plus a completion guard) or, once finished, its output. The header carries everything that
//! may be touched from another thread (the cancel request, the done/cancelled/failed bits, name,
//! done-callbacks); the future itself only ever runs and drops on its loop's thread.
//!
//! A [`TaskRef`] is the task's own `Waker` plus a pointer to the header. The waker holds a
//! reference count on the allocation, and the cell drops the header only when the last
//! reference goes, so the pointer is valid for as long as the `TaskRef` lives. The waker is also
//! how `cancel()` reschedules the task. The loop's registry holds one `TaskRef` per live task
//! (which keeps a pending task alive until it completes or the loop closes, whoever else forgets
//! it); the [`Task`] handle holds another.
//!
//! # Routing (the schedule function)
//!
//! A task's route is fixed at spawn: a wake-up on the thread where its loop is running pushes it
//! onto that loop's ready queue; any other wake-up goes through the loop's [`Remote`] inbox,
//! which the loop drains on its own thread. A local task's `Runnable` is therefore never polled
//! or dropped off its thread (that would poll or drop a `!Send` future on the wrong thread: the
//! cell's `spawn_unchecked` contract); when the loop is gone for good the runnable is leaked
//! instead (see [`Remote`]).
//!
//! # Cancellation
//!
//! [`Task::cancel`] sets `CANCEL_REQUESTED` and wakes the task; at its next step, before polling,
//! the task drops its future (on its own thread, never in the middle of a poll) and completes with
//! [`TaskError::Cancelled`]. Cancellation flows down the await chain: while a task awaits another
//! task's handle, the awaited task is recorded in the header (`awaiting`), and cancelling the
//! outer task cancels it too (asyncio's rule). The same holds for a [`LoopFuture`] the task is
//! suspended on (see `awaited_future`). The links are followed by `cancel()` itself, before
//! it wakes the task, and again by the cancelled step, before it drops the future: whichever
//! of the two sees a link follows it, so a cancel racing with a step on another worker cannot
//! lose one. A task whose cancellation is requested from inside its own step and which then
//! returns a value ends cancelled all the same (asyncio's `_must_cancel`): the value is dropped.
//! A request from another thread that lands while the last step runs lets the value through
//! (the task was, in effect, already done).
//!
//! [`LoopFuture`]: crate::LoopFuture
//!
//! # Error reporting
//!
//! A task that fails (panics) and whose error nobody retrieves is reported to the loop's exception
//! handler exactly once: at completion if the handle was already dropped (detached), or when the
//! handle is dropped without having taken the result. `DETACHED` and `FAILED` are set with
//! `fetch_or`, so exactly one of the two sides sees the other's bit and reports.

use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::mem::ManuallyDrop;
use std::panic::{catch_unwind, AssertUnwindSafe, Location};
use std::pin::Pin;
use std::ptr::NonNull;
use std::rc::{Rc, Weak};
use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};

use crate::cell::{JoinHandle, Schedule, WakerParts};
use crate::context;
use crate::error::{LoopError, TaskError};
use crate::event_loop::Inner;
use crate::exception::{ExceptionContext, ExceptionKind};
use crate::lazy_mutex::LazyMutex;
use crate::remote::Remote;

mod awaited_future;
mod handle;
mod harness;
mod header;
mod task_ref;

pub(crate) use awaited_future::CancelAwaited;
pub use handle::Task;
pub(crate) use harness::{LocalOwner, TaskFuture, TaskOwner};
pub(crate) use header::TaskHeader;
pub use task_ref::TaskRef;

thread_local! {
    /// The task whose step runs on this thread right now: its header and its own waker, both
    /// borrowed for the duration of the step (see `CurrentTask`).
    static CURRENT: Cell<Option<(NonNull<TaskHeader>, NonNull<Waker>)>> = const { Cell::new(None) };
}

/// Marks a task as this thread's current task for the duration of one poll.
struct CurrentTask {
    previous: Option<(NonNull<TaskHeader>, NonNull<Waker>)>,
}

impl CurrentTask {
    #[inline]
    fn enter(header: NonNull<TaskHeader>, waker: &Waker) -> Self {
        let previous = CURRENT.with(|c| c.replace(Some((header, NonNull::from(waker)))));
        CurrentTask { previous }
    }
}

impl Drop for CurrentTask {
    #[inline]
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.previous));
    }
}

/// The header of the task whose step is running on this thread (no reference count taken; valid
/// for the rest of that step, see `current_task_ref`).
fn current_task_header() -> Option<NonNull<TaskHeader>> {
    CURRENT.with(|c| c.get()).map(|(header, _)| header)
}

/// Whether a task's step is running on this thread (the I/O budget applies only then).
#[inline]
pub(crate) fn in_task_step() -> bool {
    CURRENT.with(|c| c.get().is_some())
}

/// Records, for the task whose step runs on this thread (if any), the loop future it is about
/// to be suspended on: cancelling the task cancels that future (see `awaited_future`).
/// `false` outside a task's step (nothing recorded).
pub(crate) fn note_awaiting_future(future: awaited_future::Link) -> bool {
    let Some(current) = current_task_header() else {
        return false;
    };
    // SAFETY: the current task's header stays valid for the rest of its step, and this runs
    // inside that step (see `current_task_ref`).
    unsafe { current.as_ref() }.set_awaiting_future(future);
    true
}

/// The handle that recorded the loop future at `cell` as the current task's await link is
/// being dropped: if the link still names that future, the task no longer awaits it.
pub(crate) fn forget_awaited_future(cell: *const ()) {
    if let Some(current) = current_task_header() {
        // SAFETY: as in `note_awaiting_future`.
        let header = unsafe { current.as_ref() };
        if header.state() & AWAITING_FUTURE != 0 {
            awaited_future::forget(header.id, cell);
        }
    }
}

/// The task whose step is running on this thread, if any.
pub(crate) fn current_task_ref() -> Option<TaskRef> {
    let (header, waker) = CURRENT.with(|c| c.get())?;
    // SAFETY: both pointers were set by `CurrentTask::enter` from references that outlive the
    // poll during which they are installed (the header is the task's pinned metadata, the waker
    // lives in the cell's `run` frame), and the guard removes them when that poll ends. We are
    // inside that poll, so they are valid; cloning the waker takes a count of our own.
    let waker = unsafe { waker.as_ref() }.clone();
    Some(TaskRef { waker, header })
}

/// Drops a task's runnable on its loop's thread (`close()`), as that thread's current task:
/// if the task never started it is in no registry, and the report of its destruction finds it
/// this way (see `CompletionGuard::complete`).
pub(crate) fn discard_runnable(runnable: TaskRunnable) {
    let header = NonNull::from(runnable.metadata());
    // A counted waker: it keeps the allocation, and so `header`, alive past the drop below.
    let waker = runnable.waker();
    let _current = CurrentTask::enter(header, &waker);
    drop(runnable);
}

/// Runs `step` (one task step) inside its span (`spindle.task`), or bare while no `tracing`
/// dispatcher was ever installed in this process (scoped or global). That check is one relaxed
/// load; the span macro's own checks and the guard's drop cost ~1.5 ns more on every step of a
/// program that does not trace (criterion, `task_step_span_no_subscriber`: 2.04 ns entered,
/// 0.46 ns gated), about 5% of a yield on a runtime worker. A closure rather than a returned
/// `Option<EnteredSpan>`: the untraced path then has no guard to drop at all (a call of its
/// own on every step, ~10 instructions, measured with callgrind on a worker's yield).
#[inline]
pub(crate) fn in_step_span<R>(id: u64, step: impl FnOnce() -> R) -> R {
    // `has_been_set` is what tracing's own macros use to skip their `log` fallback.
    if tracing::dispatcher::has_been_set() {
        in_entered_step_span(id, step)
    } else {
        step()
    }
}

#[cold]
#[inline(never)]
fn in_entered_step_span<R>(id: u64, step: impl FnOnce() -> R) -> R {
    let _span = tracing::trace_span!("spindle.task", id).entered();
    step()
}

/// What the ready queue and the inbox carry for a task.
pub(crate) type TaskRunnable = crate::cell::Runnable;

/// Cancellation was requested; the next step drops the future.
const CANCEL_REQUESTED: u32 = 1 << 0;
/// The task finished (value, cancellation, panic, or destroyed at close).
const DONE: u32 = 1 << 1;
/// It finished by cancellation (or was destroyed while pending).
const CANCELLED: u32 = 1 << 2;
/// It finished with a panic.
const FAILED: u32 = 1 << 3;
/// Its handle was dropped without taking the result.
const DETACHED: u32 = 1 << 4;
/// Its error was taken by an awaiter or `result()`.
const RETRIEVED: u32 = 1 << 5;
/// `awaiting` holds the task this one is waiting for.
const AWAITING: u32 = 1 << 6;
/// The task's thread holds a link to the loop future it is suspended on (see
/// `awaited_future`).
const AWAITING_FUTURE: u32 = 1 << 8;
/// Cancellation was requested from inside the task's own step (by itself, or down an await
/// chain it started): asyncio's `_must_cancel`, the task ends cancelled even if this step
/// returns a value.
const MUST_CANCEL: u32 = 1 << 10;
/// `run_until_complete` is waiting for this task: stop the loop when it is done.
const STOP_ON_DONE: u32 = 1 << 7;
/// `slow.callbacks` may hold done-callbacks.
const HAS_CALLBACKS: u32 = 1 << 9;
/// Bits that say completion must take the slow lock.
const NEEDS_SLOW_COMPLETION: u32 = HAS_CALLBACKS | AWAITING;

/// `TaskHeader::slot` of a task in no registry.
const NO_SLOT: u32 = u32::MAX;

/// The `loop_id` of stealable tasks: they belong to no single loop.
pub(crate) const STEALABLE: u64 = 0;

/// A pointer to a task's header with a one-bit flag in bit 0 (free: a `TaskHeader` is
/// 8-aligned), for the holders that must stay small: a task handle (`TAKEN`) and a task's
/// completion guard (`FUTURE_GONE`).
#[derive(Clone, Copy)]
struct FlaggedHeader(NonNull<TaskHeader>);

impl FlaggedHeader {
    const FLAG: usize = 1;

    #[inline]
    fn new(header: &TaskHeader) -> Self {
        FlaggedHeader(NonNull::from(header))
    }

    /// The header pointer without the flag.
    #[inline]
    fn ptr(self) -> NonNull<TaskHeader> {
        let ptr = self.0.as_ptr().map_addr(|addr| addr & !Self::FLAG);
        // SAFETY: the address is a header's with at most bit 0 set; cleared, it is that
        // header's again (8-aligned, so at least 8): not null.
        unsafe { NonNull::new_unchecked(ptr) }
    }

    #[inline]
    fn is_set(self) -> bool {
        self.0.addr().get() & Self::FLAG != 0
    }

    #[inline]
    fn set(&mut self) {
        self.0 = self.0.map_addr(|addr| addr | Self::FLAG);
    }
}

/// Task ids are handed to each thread in blocks, so spawning takes no shared atomic.
const TASK_ID_BLOCK: u64 = 1024;

#[cfg(not(loom))]
static NEXT_TASK_ID_BLOCK: AtomicU64 = AtomicU64::new(0);

#[cfg(not(loom))]
thread_local! {
    /// (next id, end of this thread's block)
    static TASK_IDS: std::cell::Cell<(u64, u64)> = const { std::cell::Cell::new((0, 0)) };
}

// Under loom, both start afresh in every execution of a model, and per loom thread: the
// executions must take the same branches, and a task's id picks its task set's shard (so the
// lock it takes). A plain std atomic inside: the counter is no protocol under test.
#[cfg(loom)]
loom::lazy_static! {
    static ref NEXT_TASK_ID_BLOCK: AtomicU64 = AtomicU64::new(0);
}

#[cfg(loom)]
loom::thread_local! {
    static TASK_IDS: std::cell::Cell<(u64, u64)> = std::cell::Cell::new((0, 0));
}

#[inline]
pub(crate) fn next_task_id() -> u64 {
    TASK_IDS.with(|ids| {
        let (mut next, mut end) = ids.get();
        if next == end {
            next = NEXT_TASK_ID_BLOCK.fetch_add(1, Ordering::Relaxed) * TASK_ID_BLOCK + 1;
            end = next + TASK_ID_BLOCK;
        }
        ids.set((next + 1, end));
        next
    })
}

/// A done-callback of a task: shared so the same one can be added twice and removed by identity.
pub type TaskCallback = Arc<dyn Fn(&TaskRef) + Send + Sync>;

/// The schedule function of every local task (see the module docs).
struct LocalSchedule;

impl Schedule for LocalSchedule {
    fn schedule(runnable: TaskRunnable, _yielded: bool) {
        let loop_id = runnable.metadata().loop_id();
        context::with_running(move |lp| match lp {
            Some(lp) if lp.id() == loop_id => lp.push_ready_task(runnable),
            _ => {
                Remote::push_task_to(loop_id, runnable);
            }
        });
    }
}

/// Spawns a local task on `inner`. The caller pushes the runnable onto the ready queue.
pub(crate) fn spawn_local<F>(
    inner: &Inner,
    future: F,
    created_at: &'static Location<'static>,
) -> (TaskRunnable, Task<F::Output>)
where
    F: Future + 'static,
    F::Output: 'static,
{
    let header = TaskHeader::new(next_task_id(), inner.id(), created_at);
    let owner = LocalOwner(inner.weak());
    // SAFETY: `spawn_unchecked`'s contract for a `!Send` future and output: the runnable is
    // delivered by `LocalSchedule` only to this loop's thread (its ready queue, or its inbox,
    // which the loop drains on its thread; a closed inbox leaks it, see `Remote::push_task`);
    // the loop runs or drops runnables only on its thread (`discard_runnable` at close). The
    // handle's `Send` requires `F::Output: Send`.
    let (runnable, join, waker) = unsafe {
        crate::cell::spawn_unchecked::<_, LocalSchedule, _>(header, move |header: &TaskHeader| {
            TaskFuture::new(future, header, owner)
        })
    };
    // The handle borrows the waker's parts; the registry takes the task only once it goes
    // idle (see `LocalOwner::on_pending`).
    let handle = Task::new(join, waker);
    inner.note_unstarted_task();
    (runnable, handle)
}

/// The message of a panic payload (`panic!` with a literal or a formatted string), as the
/// exception handler and `TaskError::Panicked` report it.
///
/// ```
/// let payload = std::panic::catch_unwind(|| panic!("disk {} full", 2)).unwrap_err();
/// assert_eq!(spindle_loop::panic_message(&*payload), "disk 2 full");
/// ```
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "Box<dyn Any>".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::{Task, TaskHeader};
    use crate::stealable::{spawn_stealable, Inline, Runnable};
    use std::sync::Arc;

    /// The handle's borrowed waker parts against a real clone of the task's waker.
    fn parts_match<T>(runnable: &Runnable, task: &Task<T>) -> bool {
        let waker = runnable.0.waker();
        waker.data() == task.waker_data && std::ptr::eq(waker.vtable(), task.waker_vtable)
    }

    /// Each handle keeps its own task's waker parts (data and vtable), also when tasks of
    /// different future types are spawned in between.
    #[test]
    fn handles_carry_their_own_task_s_waker_parts_across_future_types() {
        let inline = Arc::new(Inline::default());
        let spawn_a = || spawn_stealable(std::future::pending::<u8>(), &inline).unwrap();
        let spawn_b = || spawn_stealable(async { 7u16 }, &inline).unwrap();
        let (a1, ta1) = spawn_a();
        let (a2, ta2) = spawn_a();
        let (b1, tb1) = spawn_b();
        let (a3, ta3) = spawn_a();
        assert!(parts_match(&a1, &ta1) && parts_match(&a2, &ta2));
        assert!(parts_match(&b1, &tb1) && parts_match(&a3, &ta3));
        assert!(!std::ptr::eq(ta1.waker_vtable, tb1.waker_vtable));
        // Idle, then cancelled through the handle: the wake goes through the borrowed parts.
        a2.run();
        assert!(!ta2.done());
        assert!(ta2.cancel());
        assert!(ta2.cancelled() && ta2.done());
        b1.run();
        assert!(tb1.done());
        drop((a1, a3, ta1, ta3));
    }

    /// The header is moved into every task's allocation; what it holds is paid per task, in
    /// memory and in cache misses (a spawn-heavy benchmark measured ~0.4 ns per added byte).
    #[test]
    fn a_task_handle_is_four_words() {
        assert_eq!(
            std::mem::size_of::<Task<()>>(),
            4 * std::mem::size_of::<usize>()
        );
    }

    #[test]
    fn the_task_header_stays_at_40_bytes_on_64_bit_linux() {
        if cfg!(all(target_os = "linux", target_pointer_width = "64")) {
            assert_eq!(std::mem::size_of::<TaskHeader>(), 40);
        }
    }

    #[test]
    fn the_owner_word_keeps_loop_ids_and_schedulers_apart() {
        let here = std::panic::Location::caller();
        let local = TaskHeader::new(1, 7, here);
        assert_eq!(local.loop_id(), 7);
        assert!(local.scheduler_raw().is_null());
        assert_eq!(local.scheduler_id(), 0);

        // Too wide for the word on any target: kept in the slow state.
        let wide = TaskHeader::new(2, u64::MAX, here);
        assert_eq!(wide.loop_id(), u64::MAX);
        assert!(wide.scheduler_raw().is_null());

        let scheduler = Arc::new(0u64);
        let mut stealable = TaskHeader::new(3, super::STEALABLE, here);
        assert_eq!(stealable.loop_id(), super::STEALABLE);
        stealable.set_scheduler(Arc::as_ptr(&scheduler));
        assert_eq!(stealable.loop_id(), super::STEALABLE);
        assert_eq!(stealable.scheduler_id(), Arc::as_ptr(&scheduler).addr());
    }
}
