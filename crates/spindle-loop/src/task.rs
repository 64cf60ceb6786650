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
//! outer task cancels it too (asyncio's rule).
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

/// The span of one task step (`spindle.task`), entered, or `None` while no `tracing`
/// dispatcher was ever installed in this process (scoped or global). That check is one relaxed
/// load; the span macro's own checks and the guard's drop cost ~1.5 ns more on every step of a
/// program that does not trace (criterion, `task_step_span_no_subscriber`: 2.04 ns entered,
/// 0.46 ns gated), about 5% of a yield on a runtime worker.
#[inline]
pub(crate) fn step_span(id: u64) -> Option<tracing::span::EnteredSpan> {
    // `has_been_set` is what tracing's own macros use to skip their `log` fallback.
    tracing::dispatcher::has_been_set().then(|| tracing::trace_span!("spindle.task", id).entered())
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
        // An address with bit 0 cleared is still at least 8, so the fallback never happens.
        self.0
            .map_addr(|addr| std::num::NonZeroUsize::new(addr.get() & !Self::FLAG).unwrap_or(addr))
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

/// The part of a task that every holder shares: the metadata in the task's cell, inline in its
/// allocation.
pub(crate) struct TaskHeader {
    id: u64,
    /// Whose task this is, in one word (see `OwnerWord`): a local task's loop id, or a
    /// stealable task's scheduler. Written before the header is shared, then only read (an
    /// atomic pointer because a raw pointer is neither `Sync` nor provenance-free as an
    /// integer).
    owner: AtomicPtr<()>,
    created_at: &'static Location<'static>,
    state: AtomicU32,
    /// Index in the loop's registry or the scheduler's task set (`NO_SLOT`: not registered).
    /// 32 bits, beside `state`, to keep the header (moved into every task's allocation) small.
    slot: AtomicU32,
    /// Allocated by the first task that needs it (see `LazyMutex`): most tasks never do.
    slow: LazyMutex<SlowState>,
}

/// How `TaskHeader::owner` encodes a task's owner in one word (the header is moved into every
/// task's allocation: a word less brought a small task under glibc's 120-byte fastbin limit).
///
/// - A stealable task: its scheduler as `Weak::<S>::into_raw`, bit 0 clear (an `Arc`'s data
///   is at least 8-aligned). The header does not know `S`; the code that does
///   (`stealable::SetOwner<S>`, `schedule_stealable::<S>`) upgrades it on the slow paths (a
///   wake-up away from the scheduler's own threads, an idle task entering or leaving its
///   set), and the task's completion guard releases it when the future is dropped, after
///   which the cell never schedules the task again. The address is the scheduler's id for
///   the fast path of a wake-up (`scheduler_id`).
/// - A local task: `loop_id << 1 | LOCAL_TAG`. An id too wide for that (past 2^31 loops on a
///   32-bit target) is kept in the slow state instead, under `WIDE_LOOP_ID`.
/// - Null: a stealable task before its scheduler is set.
struct OwnerWord;

impl OwnerWord {
    const LOCAL_TAG: usize = 1;
    const WIDE_LOOP_ID: usize = usize::MAX;

    /// The word for a local task of loop `loop_id`, if the id fits in it.
    fn local(loop_id: u64) -> Option<*mut ()> {
        let id = usize::try_from(loop_id).ok()?;
        let word = id.checked_mul(2)? | Self::LOCAL_TAG;
        (word != Self::WIDE_LOOP_ID).then(|| std::ptr::without_provenance_mut(word))
    }
}

/// Fields touched off the hot path, under one lock, allocated by the first task that needs
/// one of them (`TaskHeader::slow`).
#[derive(Default)]
struct SlowState {
    /// The task this one awaits (set on every pending await of a task handle).
    awaiting: Option<TaskRef>,
    name: Option<Box<str>>,
    callbacks: Vec<TaskCallback>,
    failure: Option<Arc<str>>,
    /// A loop id too wide for `TaskHeader::owner` (see `OwnerWord`).
    wide_loop_id: Option<u64>,
}

impl TaskHeader {
    /// A task of loop `loop_id`, or a stealable one (`STEALABLE`, then `set_scheduler`).
    pub(crate) fn new(id: u64, loop_id: u64, created_at: &'static Location<'static>) -> Self {
        let header = TaskHeader {
            id,
            owner: AtomicPtr::new(std::ptr::null_mut()),
            created_at,
            state: AtomicU32::new(0),
            slot: AtomicU32::new(NO_SLOT),
            slow: LazyMutex::new(),
        };
        if loop_id != STEALABLE {
            let word = OwnerWord::local(loop_id).unwrap_or_else(|| {
                header.slow().wide_loop_id = Some(loop_id);
                std::ptr::without_provenance_mut(OwnerWord::WIDE_LOOP_ID)
            });
            header.owner.store(word, Ordering::Relaxed);
        }
        header
    }

    /// A stealable task's scheduler, `Weak::<S>::into_raw` (see `OwnerWord`); before the
    /// header is shared.
    pub(crate) fn set_scheduler<S>(&mut self, scheduler: *const S) {
        debug_assert_eq!(scheduler.addr() & OwnerWord::LOCAL_TAG, 0);
        *self.owner.get_mut() = scheduler as *mut ();
    }

    /// A stealable task's scheduler as set by `set_scheduler` (null for a local task).
    #[inline]
    pub(crate) fn scheduler_raw(&self) -> *const () {
        let word = self.owner.load(Ordering::Relaxed);
        if word.addr() & OwnerWord::LOCAL_TAG != 0 {
            std::ptr::null()
        } else {
            word
        }
    }

    /// The loop a local task belongs to (`STEALABLE` for a stealable task).
    #[inline]
    pub(crate) fn loop_id(&self) -> u64 {
        let word = self.owner.load(Ordering::Relaxed).addr();
        if word & OwnerWord::LOCAL_TAG == 0 {
            STEALABLE
        } else if word == OwnerWord::WIDE_LOOP_ID {
            let wide = self.slow.lock_if_used().and_then(|slow| slow.wide_loop_id);
            wide.unwrap_or(STEALABLE)
        } else {
            (word >> 1) as u64
        }
    }

    /// The slow state, locked, allocated on first use (see `LazyMutex`, which also says why a
    /// poisoned lock is used as is: only plain field assignments happen under it).
    fn slow(&self) -> impl std::ops::DerefMut<Target = SlowState> + '_ {
        self.slow.lock()
    }

    #[inline]
    fn state(&self) -> u32 {
        self.state.load(Ordering::Acquire)
    }

    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// Whether the task is in its owner's registry (it has been idle; see `TaskOwner`).
    #[inline]
    pub(crate) fn is_registered(&self) -> bool {
        self.slot.load(Ordering::Relaxed) != NO_SLOT
    }

    /// The task's index in its owner's registry (meaningful once `is_registered`).
    #[inline]
    pub(crate) fn slot(&self) -> usize {
        self.slot.load(Ordering::Relaxed) as usize
    }

    /// Records the task's index. An index past `NO_SLOT - 1` would take a registry of four
    /// billion live tasks, hundreds of gigabytes; it is clamped rather than panicking, which at
    /// worst keeps that one task registered until its loop closes.
    pub(crate) fn set_slot(&self, slot: usize) {
        let slot = u32::try_from(slot).unwrap_or(NO_SLOT - 1).min(NO_SLOT - 1);
        self.slot.store(slot, Ordering::Relaxed);
    }

    /// The address of a stealable task's scheduler, its [`SchedulerId`](crate::SchedulerId)
    /// (0 for a local task): the address in the owner word (a `Weak` points where its `Arc`
    /// does).
    #[inline]
    pub(crate) fn scheduler_id(&self) -> usize {
        self.scheduler_raw().addr()
    }

    pub(crate) fn created_at(&self) -> &'static Location<'static> {
        self.created_at
    }

    pub(crate) fn name(&self) -> String {
        let name = self
            .slow
            .lock_if_used()
            .and_then(|slow| slow.name.as_deref().map(str::to_owned));
        name.unwrap_or_else(|| format!("Task-{}", self.id))
    }

    /// Called by the loop before each step: the previous step's await target is stale.
    pub(crate) fn begin_step(&self) {
        if self.state() & AWAITING != 0 {
            self.state.fetch_and(!AWAITING, Ordering::AcqRel);
            self.slow().awaiting = None;
        }
    }

    fn set_awaiting(&self, target: TaskRef) {
        self.slow().awaiting = Some(target);
        self.state.fetch_or(AWAITING, Ordering::AcqRel);
    }

    /// Marks the task cancelled without waking it (its caller is about to run or drop it).
    pub(crate) fn mark_cancel_requested(&self) {
        self.state.fetch_or(CANCEL_REQUESTED, Ordering::AcqRel);
    }

    pub(crate) fn set_stop_on_done(&self, on: bool) {
        if on {
            self.state.fetch_or(STOP_ON_DONE, Ordering::AcqRel);
        } else {
            self.state.fetch_and(!STOP_ON_DONE, Ordering::AcqRel);
        }
    }

    #[inline]
    fn cancel_requested(&self) -> bool {
        self.state() & CANCEL_REQUESTED != 0
    }

    /// Requests cancellation; `waker` is the task's own, used to reschedule it.
    fn request_cancel(&self, waker: &Waker) -> bool {
        let prev = self.state.fetch_or(CANCEL_REQUESTED, Ordering::AcqRel);
        if prev & DONE != 0 {
            return false;
        }
        // Queued or running already: a no-op; idle: back into its loop's queue.
        waker.wake_by_ref();
        let awaiting = if prev & AWAITING != 0 {
            self.slow().awaiting.clone()
        } else {
            None
        };
        if let Some(inner) = awaiting {
            inner.cancel();
        }
        true
    }

    pub(crate) fn mark_retrieved(&self) {
        self.state.fetch_or(RETRIEVED, Ordering::AcqRel);
    }

    /// The handle was dropped: detach, and report an error nobody took.
    fn detach(&self, task: impl FnOnce() -> TaskRef) {
        let prev = self.state.fetch_or(DETACHED, Ordering::AcqRel);
        if prev & FAILED != 0 && prev & RETRIEVED == 0 {
            let task = task();
            let loop_id = self.loop_id();
            let report = move || {
                let ctx = task.header().unretrieved_context(Some(task.clone()));
                context::with_running(|lp| match lp {
                    Some(lp) if lp.id() == loop_id || loop_id == STEALABLE => lp.report(ctx),
                    _ => crate::exception::default_exception_handler(&ctx),
                });
            };
            // Report on the loop's thread, through its handler; if it is closed, right here.
            match crate::remote::lookup(loop_id) {
                Some(remote) => {
                    if let Err(rejected) = remote.submit(report) {
                        (rejected.into_inner())();
                    }
                }
                None => report(),
            }
        }
    }

    fn unretrieved_context(&self, task: Option<TaskRef>) -> ExceptionContext {
        let panic = self
            .slow
            .lock_if_used()
            .and_then(|slow| slow.failure.clone());
        let mut ctx = ExceptionContext::new(
            ExceptionKind::UnretrievedTaskError,
            format!("Task exception was never retrieved ({})", self.name()),
        );
        ctx.panic = panic;
        ctx.task = task;
        ctx.created_at = Some(self.created_at);
        ctx
    }

    fn remove_callback(&self, callback: &TaskCallback) -> usize {
        let Some(mut slow) = self.slow.lock_if_used() else {
            return 0;
        };
        let before = slow.callbacks.len();
        slow.callbacks.retain(|c| !Arc::ptr_eq(c, callback));
        before - slow.callbacks.len()
    }

    fn add_callback(&self, task: &TaskRef, callback: TaskCallback) {
        // Push, then announce with HAS_CALLBACKS. If DONE was already set, completion may have
        // looked before our announcement: take the callbacks back ourselves. Whoever takes
        // them under the lock schedules them, so each runs exactly once.
        let prev = {
            let mut slow = self.slow();
            slow.callbacks.push(callback);
            self.state.fetch_or(HAS_CALLBACKS, Ordering::AcqRel)
        };
        if prev & DONE != 0 {
            let callbacks = std::mem::take(&mut self.slow().callbacks);
            for callback in callbacks {
                schedule_task_callback(task.clone(), callback);
            }
        }
    }
}

/// Runs a task's done-callback through its loop: the ready queue if the loop runs on this
/// thread, else its inbox. Dropped if the loop is closed.
fn schedule_task_callback(task: TaskRef, callback: TaskCallback) {
    let loop_id = task.loop_id();
    let run = move || callback(&task);
    context::with_running(|lp| match lp {
        Some(lp) if lp.id() == loop_id || loop_id == STEALABLE => {
            let _ = lp.call_soon_internal(run, Location::caller());
        }
        // A stealable task has no loop of its own: with no loop running here, the callback
        // runs right away rather than being lost.
        None if loop_id == STEALABLE => run(),
        _ => {
            let submitted = crate::remote::lookup(loop_id).map(|remote| remote.submit(run));
            if !matches!(submitted, Some(Ok(()))) {
                tracing::debug!(loop_id, "task done-callback dropped: the loop is closed");
            }
        }
    });
}

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

/// The future the task cell drives: the user's future under cancellation and panic catching.
///
/// The user's future is dropped in place exactly once, by `drop_future_in_place`: through
/// `drop_future` when the task finishes (value, cancellation, panic), or through `Drop` if the
/// task is destroyed first. The guard's `FUTURE_GONE` flag says whether that has happened; an
/// `Option` would say the same, but an `async` block has no niche, so the `Option` cost a word
/// in every task. The future is dropped before
/// the guard, so a task destroyed while pending has its destructor run before it is reported.
pub(crate) struct TaskFuture<F, O: TaskOwner> {
    /// Structurally pinned: polled through `Pin::new_unchecked`, dropped in place, never moved.
    future: ManuallyDrop<F>,
    /// Not pinned: used through `&mut` only.
    guard: CompletionGuard<O>,
}

impl<F, O: TaskOwner> TaskFuture<F, O> {
    /// `header` is the task's own, written in place in the cell before the future is built
    /// and dropped only after it (see `TaskRef`).
    pub(crate) fn new(future: F, header: &TaskHeader, owner: O) -> Self {
        TaskFuture {
            future: ManuallyDrop::new(future),
            guard: CompletionGuard {
                header: FlaggedHeader::new(header),
                owner,
            },
        }
    }

    /// Drops the user's future in place if it is still there; the only place that drops it.
    #[inline]
    fn drop_future_in_place(&mut self) {
        if self.guard.future_gone() {
            return;
        }
        // First: a destructor that panics has consumed the future all the same.
        self.guard.mark_future_gone();
        // SAFETY: the future was present (FUTURE_GONE was clear; it is set just above, before
        // the drop, so this runs once), and it is dropped in place, as its pinning requires.
        unsafe { ManuallyDrop::drop(&mut self.future) }
    }

    /// Drops the user's future now, catching a panic in its destructor (reported, not
    /// propagated).
    fn drop_future(&mut self) {
        let dropped = catch_unwind(AssertUnwindSafe(|| self.drop_future_in_place()));
        if let Err(payload) = dropped {
            let header = self.guard.header();
            let mut ctx = ExceptionContext::new(
                ExceptionKind::TaskPanicked,
                format!("a task's destructor panicked ({})", header.name()),
            );
            ctx.panic = Some(panic_message(&*payload).into());
            ctx.created_at = Some(header.created_at);
            self.guard.report(ctx);
        }
    }
}

impl<F, O: TaskOwner> Drop for TaskFuture<F, O> {
    fn drop(&mut self) {
        // If it panics, unwinding still drops the guard, which reports the task destroyed.
        self.drop_future_in_place();
        // The guard's own `Drop` follows: the task completes as destroyed if it had not
        // finished.
    }
}

impl<F: Future, O: TaskOwner> Future for TaskFuture<F, O> {
    type Output = Result<F::Output, TaskError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: nothing is moved out of `self`; `future` stays pinned (see the field) and
        // `guard` is not structurally pinned. `TaskFuture` has no `Unpin` impl of its own.
        let this = unsafe { self.get_unchecked_mut() };
        // This step's task, for `current_task()` (cx's waker is the task's own: the cell
        // builds it from the task pointer). Restored on the way out, also on unwinding.
        let _current = CurrentTask::enter(this.guard.header_ptr(), cx.waker());
        if this.guard.future_gone() {
            // The cell never polls a completed future; answer consistently all the same.
            return Poll::Ready(Err(TaskError::Cancelled));
        }
        if this.guard.header().cancel_requested() {
            this.drop_future();
            this.guard.complete(Outcome::Cancelled);
            return Poll::Ready(Err(TaskError::Cancelled));
        }
        // SAFETY: present (FUTURE_GONE is clear) and pinned: it lives inside the pinned `self`
        // and is never moved (see the field).
        let future = unsafe { Pin::new_unchecked(&mut *this.future) };
        match catch_unwind(AssertUnwindSafe(|| future.poll(cx))) {
            Ok(Poll::Pending) => {
                this.guard.owner.on_pending(this.guard.header(), cx.waker());
                Poll::Pending
            }
            Ok(Poll::Ready(value)) => {
                this.drop_future();
                this.guard.complete(Outcome::Finished);
                Poll::Ready(Ok(value))
            }
            Err(payload) => {
                let message: Arc<str> = panic_message(&*payload).into();
                drop(payload);
                this.drop_future();
                this.guard.complete(Outcome::Panicked(message.clone()));
                Poll::Ready(Err(TaskError::Panicked(message)))
            }
        }
    }
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

enum Outcome {
    Finished,
    Cancelled,
    Panicked(Arc<str>),
    /// Dropped while pending (the loop closed or was dropped).
    Destroyed,
}

/// Who keeps a task's registration and runs its done-callbacks: its loop (local tasks) or a
/// [`TaskSet`](crate::TaskSet) (stealable tasks, which complete on whichever loop runs them).
pub(crate) trait TaskOwner {
    /// Removes the task from its registry; returns the registry's reference.
    fn unregister(&self, header: &TaskHeader) -> Option<TaskRef>;
    /// The loop that takes the task's done-callbacks and reports.
    fn owner_loop(&self) -> Option<Rc<Inner>>;
    /// The task returned `Pending` (it may now sit idle, its runnable inside a waker).
    fn on_pending(&self, _header: &TaskHeader, _waker: &Waker) {}
    /// The future is being dropped (after `complete`): release what the header holds for the
    /// owner. Called exactly once per task.
    fn release(&self, _header: &TaskHeader) {}
}

/// A local task's owner: the loop it was created on.
pub(crate) struct LocalOwner(pub(crate) Weak<Inner>);

impl TaskOwner for LocalOwner {
    fn unregister(&self, header: &TaskHeader) -> Option<TaskRef> {
        self.0.upgrade()?.unregister_task(header)
    }

    /// The first `Pending`: from now on the task may sit idle with its runnable inside a
    /// waker, so the loop's registry keeps it alive and reachable (until then its runnable was
    /// in the ready queue, or it was running).
    #[inline]
    fn on_pending(&self, header: &TaskHeader, waker: &Waker) {
        if !header.is_registered() {
            if let Some(inner) = self.0.upgrade() {
                inner.register_task(TaskRef::new(waker.clone(), header));
            }
        }
    }

    fn owner_loop(&self) -> Option<Rc<Inner>> {
        self.0.upgrade()
    }
}

/// Completes the task exactly once: in `poll` when it finishes, or in `Drop` when the task is
/// destroyed while pending.
pub(crate) struct CompletionGuard<O: TaskOwner> {
    /// The task's own header (its cell's metadata); the flag says the user's future
    /// has been dropped (`FUTURE_GONE`), at no word of its own.
    header: FlaggedHeader,
    owner: O,
}

impl<O: TaskOwner> CompletionGuard<O> {
    fn header_ptr(&self) -> NonNull<TaskHeader> {
        self.header.ptr()
    }

    fn header(&self) -> &TaskHeader {
        // SAFETY: the guard lives inside the task's future, in the same allocation as the
        // header; the cell writes the header before building the future and drops it only
        // in `destroy`, after the future is gone. So the pointer is valid while `self` is.
        unsafe { self.header_ptr().as_ref() }
    }

    /// `FUTURE_GONE`: the task's user future has been dropped.
    fn future_gone(&self) -> bool {
        self.header.is_set()
    }

    fn mark_future_gone(&mut self) {
        self.header.set();
    }

    fn report(&self, ctx: ExceptionContext) {
        match self.owner.owner_loop() {
            Some(owner) => owner.report(ctx),
            None => crate::exception::default_exception_handler(&ctx),
        }
    }

    fn complete(&mut self, outcome: Outcome) {
        let header = self.header();
        // Only `complete` sets DONE, and only the task's own step (or the drop of its future)
        // calls it: a plain load tells whether this already ran.
        if header.state() & DONE != 0 {
            return;
        }
        let bits = DONE
            | match outcome {
                Outcome::Finished => 0,
                Outcome::Cancelled | Outcome::Destroyed => CANCELLED,
                Outcome::Panicked(_) => FAILED,
            };
        if let Outcome::Panicked(message) = &outcome {
            // Before DONE|FAILED is published, so a reporter that sees FAILED finds the message.
            header.slow().failure = Some(message.clone());
        }
        let prev = header.state.fetch_or(bits, Ordering::AcqRel);
        // The common case (nobody registered anything) takes no lock. A callback added
        // concurrently is handled by `add_callback` (it sees DONE).
        let callbacks = if prev & NEEDS_SLOW_COMPLETION != 0 {
            let (awaiting, callbacks) = {
                let mut slow = header.slow();
                (slow.awaiting.take(), std::mem::take(&mut slow.callbacks))
            };
            drop(awaiting);
            callbacks
        } else {
            Vec::new()
        };
        // The registry's reference, released here and used below for callbacks and reports. A
        // task its owner never registered (a stealable task that finished without going idle)
        // is completing inside its own step, where the current-task pointer names it.
        let reports = match outcome {
            Outcome::Panicked(_) => prev & DETACHED != 0 && prev & RETRIEVED == 0,
            Outcome::Destroyed => true,
            _ => false,
        };
        let registered = self.owner.unregister(header);
        let task = if registered.is_none() && (!callbacks.is_empty() || reports) {
            current_task_ref().filter(|current| current.header == self.header_ptr())
        } else {
            registered
        };
        // The owner's loop only when something needs it: most tasks have no callbacks.
        if !callbacks.is_empty() || prev & STOP_ON_DONE != 0 {
            if let Some(owner) = self.owner.owner_loop() {
                if let Some(task) = &task {
                    for callback in callbacks {
                        let task = task.clone();
                        let _ =
                            owner.call_soon_internal(move || callback(&task), header.created_at);
                    }
                }
                if prev & STOP_ON_DONE != 0 {
                    owner.stop();
                }
            }
        }
        match outcome {
            Outcome::Panicked(_) if reports => {
                self.report(header.unretrieved_context(task));
            }
            Outcome::Destroyed => {
                let mut ctx = ExceptionContext::new(
                    ExceptionKind::TaskDestroyedPending,
                    format!("Task was destroyed but it is pending! ({})", header.name()),
                );
                ctx.task = task;
                ctx.created_at = Some(header.created_at);
                self.report(ctx);
            }
            _ => {}
        }
    }
}

// SAFETY: a guard is a pointer to its task's own header (`TaskHeader` is `Sync`, and the
// pointer stays valid while the guard lives, see `header()`) plus its owner. With a `Send`
// owner, moving the guard (inside a `Send` task's future) to another thread is sound.
unsafe impl<O: TaskOwner + Send> Send for CompletionGuard<O> {}

impl<O: TaskOwner> Drop for CompletionGuard<O> {
    fn drop(&mut self) {
        self.complete(Outcome::Destroyed);
        self.owner.release(self.header());
    }
}

/// A shared, type-erased reference to a task: what [`current_task`](crate::current_task),
/// [`all_tasks`](crate::all_tasks) and done-callbacks give you. It can cancel and name the task
/// but not take its result.
///
/// ```
/// use spindle_loop::{current_task, EventLoop};
///
/// let lp = EventLoop::new().unwrap();
/// let task = lp.create_task(async { current_task().unwrap().name() }).unwrap();
/// task.set_name("worker");
/// assert_eq!(lp.run_until_complete(task).unwrap().unwrap(), "worker");
/// ```
#[derive(Clone)]
pub struct TaskRef {
    /// The task's own waker: keeps the allocation (and so `header`) alive, and reschedules the
    /// task on `cancel()`.
    waker: Waker,
    header: NonNull<TaskHeader>,
}

// SAFETY: `TaskHeader` is `Sync` (atomics, a mutex, and `Send + Sync` fields), and the pointer
// stays valid while the waker (itself `Send + Sync`) holds its reference; so sharing or sending a
// `TaskRef` is as safe as sharing `&TaskHeader` plus a `Waker`.
unsafe impl Send for TaskRef {}
// SAFETY: as above.
unsafe impl Sync for TaskRef {}

impl TaskRef {
    pub(crate) fn new(waker: Waker, header: &TaskHeader) -> Self {
        TaskRef {
            waker,
            header: NonNull::from(header),
        }
    }

    /// Reschedules the task (a no-op if it is queued, running or done).
    pub(crate) fn wake(&self) {
        self.waker.wake_by_ref();
    }

    pub(crate) fn header(&self) -> &TaskHeader {
        // SAFETY: `self.waker` holds a reference count on the task's allocation, and the cell
        // drops the header only when the last reference is gone.
        unsafe { self.header.as_ref() }
    }

    /// The task's id, unique in this process.
    ///
    /// ```
    /// # let lp = spindle_loop::EventLoop::new().unwrap();
    /// let a = lp.create_task(async {}).unwrap();
    /// let b = lp.create_task(async {}).unwrap();
    /// assert_ne!(a.id(), b.id());
    /// ```
    pub fn id(&self) -> u64 {
        self.header().id
    }

    /// The id of the loop the task belongs to (0 for a stealable task, which any worker loop of
    /// its runtime may run).
    ///
    /// ```
    /// # let lp = spindle_loop::EventLoop::new().unwrap();
    /// let t = lp.create_task(async {}).unwrap();
    /// assert_eq!(t.task_ref().loop_id(), lp.id());
    /// ```
    pub fn loop_id(&self) -> u64 {
        self.header().loop_id()
    }

    /// The task's name: the one set with [`set_name`](Self::set_name), else `Task-<id>`.
    ///
    /// ```
    /// # let lp = spindle_loop::EventLoop::new().unwrap();
    /// let t = lp.create_task(async {}).unwrap();
    /// assert_eq!(t.name(), format!("Task-{}", t.id()));
    /// ```
    pub fn name(&self) -> String {
        self.header().name()
    }

    /// Renames the task.
    ///
    /// ```
    /// # let lp = spindle_loop::EventLoop::new().unwrap();
    /// let t = lp.create_task(async {}).unwrap();
    /// t.set_name("fetch");
    /// assert_eq!(t.name(), "fetch");
    /// ```
    pub fn set_name(&self, name: impl Into<String>) {
        self.header().slow().name = Some(name.into().into_boxed_str());
    }

    /// Requests cancellation: at its next step the task drops its future and completes with
    /// [`TaskError::Cancelled`]; the task it is awaiting is cancelled too. Returns `false` if the
    /// task is already done. Thread-safe.
    ///
    /// ```
    /// # let lp = spindle_loop::EventLoop::new().unwrap();
    /// let t = lp.create_task(async {}).unwrap();
    /// assert!(t.task_ref().cancel());
    /// ```
    pub fn cancel(&self) -> bool {
        self.header().request_cancel(&self.waker)
    }

    /// Whether the task finished (with a value, an error, or by cancellation).
    ///
    /// ```
    /// # let lp = spindle_loop::EventLoop::new().unwrap();
    /// let t = lp.create_task(async {}).unwrap();
    /// let r = t.task_ref();
    /// assert!(!r.done());
    /// lp.run_until_complete(t).unwrap().unwrap();
    /// assert!(r.done());
    /// ```
    pub fn done(&self) -> bool {
        self.header().state() & DONE != 0
    }

    /// Whether the task finished by cancellation.
    ///
    /// ```
    /// # let lp = spindle_loop::EventLoop::new().unwrap();
    /// let t = lp.create_task(async {}).unwrap();
    /// let r = t.task_ref();
    /// t.cancel();
    /// let _ = lp.run_until_complete(t);
    /// assert!(r.cancelled());
    /// ```
    pub fn cancelled(&self) -> bool {
        self.header().state() & CANCELLED != 0
    }

    /// Whether the task finished with a panic.
    ///
    /// ```
    /// # let lp = spindle_loop::EventLoop::new().unwrap();
    /// let t = lp.create_task(async { panic!("boom") }).unwrap();
    /// let r = t.task_ref();
    /// let _ = lp.run_until_complete(t);
    /// assert!(r.panicked());
    /// ```
    pub fn panicked(&self) -> bool {
        self.header().state() & FAILED != 0
    }

    /// Where the task was created.
    ///
    /// ```
    /// # let lp = spindle_loop::EventLoop::new().unwrap();
    /// let t = lp.create_task(async {}).unwrap();
    /// assert_eq!(t.task_ref().created_at().line(), line!() - 1);
    /// ```
    pub fn created_at(&self) -> &'static Location<'static> {
        self.header().created_at
    }

    /// Adds a callback run (through the loop, with `call_soon`, never inline) when the task is
    /// done; at once (scheduled) if it already is. Returns the shared callback, for
    /// [`remove_done_callback`](Self::remove_done_callback).
    ///
    /// ```
    /// use std::sync::{Arc, atomic::{AtomicBool, Ordering}};
    /// # let lp = spindle_loop::EventLoop::new().unwrap();
    /// let t = lp.create_task(async {}).unwrap();
    /// let seen = Arc::new(AtomicBool::new(false));
    /// let s = seen.clone();
    /// t.add_done_callback(move |task| s.store(task.done(), Ordering::SeqCst));
    /// lp.run_until_complete(t).unwrap().unwrap();
    /// lp.stop();
    /// lp.run_forever().unwrap(); // the callback runs in the iteration after completion
    /// assert!(seen.load(Ordering::SeqCst));
    /// ```
    pub fn add_done_callback(
        &self,
        callback: impl Fn(&TaskRef) + Send + Sync + 'static,
    ) -> TaskCallback {
        let callback: TaskCallback = Arc::new(callback);
        self.header().add_callback(self, callback.clone());
        callback
    }

    /// Adds the same shared callback again (each copy runs).
    ///
    /// ```
    /// # let lp = spindle_loop::EventLoop::new().unwrap();
    /// let t = lp.create_task(async {}).unwrap();
    /// let cb = t.add_done_callback(|_| ());
    /// t.add_done_callback_shared(&cb);
    /// assert_eq!(t.remove_done_callback(&cb), 2);
    /// ```
    pub fn add_done_callback_shared(&self, callback: &TaskCallback) {
        self.header().add_callback(self, callback.clone());
    }

    /// Removes every copy of `callback` not yet scheduled; returns how many were removed.
    ///
    /// ```
    /// # let lp = spindle_loop::EventLoop::new().unwrap();
    /// let t = lp.create_task(async {}).unwrap();
    /// let cb = t.add_done_callback(|_| unreachable!());
    /// assert_eq!(t.remove_done_callback(&cb), 1);
    /// assert_eq!(t.remove_done_callback(&cb), 0);
    /// ```
    pub fn remove_done_callback(&self, callback: &TaskCallback) -> usize {
        self.header().remove_callback(callback)
    }
}

impl PartialEq for TaskRef {
    fn eq(&self, other: &Self) -> bool {
        self.header == other.header
    }
}

impl Eq for TaskRef {}

impl fmt::Debug for TaskRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskRef")
            .field("id", &self.id())
            .field("name", &self.name())
            .field("done", &self.done())
            .field("cancelled", &self.cancelled())
            .field("created_at", &self.created_at())
            .finish()
    }
}

/// A task on a loop: await it for `Result<T, TaskError>`.
///
/// Dropping the handle detaches the task: it runs on (as in asyncio and tokio). Use
/// [`cancel`](Self::cancel) to stop it. The other operations of [`TaskRef`] are available here
/// too (`id`, `name`, `done`, `add_done_callback`, ...).
///
/// ```
/// use spindle_loop::EventLoop;
///
/// let lp = EventLoop::new().unwrap();
/// let inner = lp.clone();
/// let out = lp
///     .run_until_complete(async move {
///         let child = inner.create_task(async { 20 }).unwrap();
///         child.await.unwrap() + 1
///     })
///     .unwrap();
/// assert_eq!(out, 21);
/// ```
pub struct Task<T> {
    join: Option<JoinHandle<Result<T, TaskError>>>,
    /// The task's header and the raw parts of its waker. Borrowed, not counted: `join` (the
    /// cell's handle) keeps the allocation alive while it is `Some`, and every use below
    /// happens while it is (`Drop` uses them before releasing `join`). Building a `TaskRef`
    /// clones the waker, which takes a count of its own.
    ///
    /// The flag says whether the result was taken (`TAKEN`): the handle stays four words (a
    /// spawn-heavy benchmark that keeps its handles measured ~0.45 ns per byte of handle).
    header: FlaggedHeader,
    waker_data: *const (),
    waker_vtable: &'static RawWakerVTable,
}

// SAFETY: the raw parts only stand for the task's header (`Sync`) and its waker (`Send + Sync`);
// the output `T` crosses threads only if it is `Send`, as with the cell's own handle.
unsafe impl<T: Send> Send for Task<T> {}
// SAFETY: `&Task<T>` only reads the header (`Sync`) and wakes the task.
unsafe impl<T> Sync for Task<T> {}

impl<T> Task<T> {
    pub(crate) fn new(join: JoinHandle<Result<T, TaskError>>, waker: WakerParts) -> Self {
        let header = FlaggedHeader::new(join.metadata());
        Task {
            join: Some(join),
            header,
            waker_data: waker.data,
            waker_vtable: waker.vtable,
        }
    }

    #[inline]
    fn header_ptr(&self) -> NonNull<TaskHeader> {
        self.header.ptr()
    }

    #[inline]
    fn taken(&self) -> bool {
        self.header.is_set()
    }

    /// The task's own waker, borrowed (no reference count taken).
    fn borrowed_waker(&self) -> ManuallyDrop<Waker> {
        // SAFETY: the parts come from a live waker of this task, and the allocation they point
        // to is kept alive by `self.join` (see the field docs). ManuallyDrop: dropping it would
        // release a count we never took.
        ManuallyDrop::new(unsafe {
            Waker::from_raw(RawWaker::new(self.waker_data, self.waker_vtable))
        })
    }

    pub(crate) fn header(&self) -> &TaskHeader {
        // SAFETY: kept alive by `self.join` (see the field docs); `header_ptr` is the header's
        // own address (the `TAKEN` tag cleared).
        unsafe { self.header_ptr().as_ref() }
    }

    /// A shared reference to the task (cancel, name, inspect) that does not own its result.
    ///
    /// ```
    /// # let lp = spindle_loop::EventLoop::new().unwrap();
    /// let t = lp.create_task(async {}).unwrap();
    /// assert_eq!(t.task_ref().id(), t.id());
    /// ```
    pub fn task_ref(&self) -> TaskRef {
        TaskRef {
            waker: (*self.borrowed_waker()).clone(),
            header: self.header_ptr(),
        }
    }

    /// Requests cancellation; see [`TaskRef::cancel`]. `false` if the task is already done.
    ///
    /// ```
    /// # use spindle_loop::TaskError;
    /// # let lp = spindle_loop::EventLoop::new().unwrap();
    /// let t = lp.create_task(async { unreachable!() }).unwrap();
    /// assert!(t.cancel()); // before its first step: the body never runs
    /// assert_eq!(lp.run_until_complete(t).unwrap(), Err(TaskError::Cancelled));
    /// ```
    pub fn cancel(&self) -> bool {
        self.header().request_cancel(&self.borrowed_waker())
    }

    /// See [`TaskRef::id`].
    ///
    /// ```
    /// # let lp = spindle_loop::EventLoop::new().unwrap();
    /// assert!(lp.create_task(async {}).unwrap().id() > 0);
    /// ```
    pub fn id(&self) -> u64 {
        self.header().id
    }

    /// See [`TaskRef::name`].
    ///
    /// ```
    /// # let lp = spindle_loop::EventLoop::new().unwrap();
    /// assert!(lp.create_task(async {}).unwrap().name().starts_with("Task-"));
    /// ```
    pub fn name(&self) -> String {
        self.header().name()
    }

    /// See [`TaskRef::set_name`].
    ///
    /// ```
    /// # let lp = spindle_loop::EventLoop::new().unwrap();
    /// let t = lp.create_task(async {}).unwrap();
    /// t.set_name("io");
    /// assert_eq!(t.name(), "io");
    /// ```
    pub fn set_name(&self, name: impl Into<String>) {
        self.header().slow().name = Some(name.into().into_boxed_str());
    }

    /// See [`TaskRef::done`].
    ///
    /// ```
    /// # let lp = spindle_loop::EventLoop::new().unwrap();
    /// assert!(!lp.create_task(async {}).unwrap().done());
    /// ```
    pub fn done(&self) -> bool {
        // DONE is set by the task before the cell stores its output; on another thread the
        // handle could see one without the other. Done means the result can be taken.
        self.header().state() & DONE != 0
            && self.join.as_ref().is_none_or(|join| join.is_finished())
    }

    /// See [`TaskRef::cancelled`].
    ///
    /// ```
    /// # let lp = spindle_loop::EventLoop::new().unwrap();
    /// assert!(!lp.create_task(async {}).unwrap().cancelled());
    /// ```
    pub fn cancelled(&self) -> bool {
        self.header().state() & CANCELLED != 0
    }

    /// [`TaskRef::panicked`] without building a `TaskRef` (which clones the waker).
    pub(crate) fn panicked(&self) -> bool {
        self.header().state() & FAILED != 0
    }

    /// See [`TaskRef::add_done_callback`].
    ///
    /// ```
    /// # let lp = spindle_loop::EventLoop::new().unwrap();
    /// let t = lp.create_task(async {}).unwrap();
    /// t.add_done_callback(|task| println!("{} done", task.name()));
    /// ```
    pub fn add_done_callback(
        &self,
        callback: impl Fn(&TaskRef) + Send + Sync + 'static,
    ) -> TaskCallback {
        self.task_ref().add_done_callback(callback)
    }

    /// See [`TaskRef::add_done_callback_shared`].
    ///
    /// ```
    /// # let lp = spindle_loop::EventLoop::new().unwrap();
    /// let t = lp.create_task(async {}).unwrap();
    /// let cb = t.add_done_callback(|_| ());
    /// t.add_done_callback_shared(&cb);
    /// ```
    pub fn add_done_callback_shared(&self, callback: &TaskCallback) {
        self.task_ref().add_done_callback_shared(callback)
    }

    /// See [`TaskRef::remove_done_callback`].
    ///
    /// ```
    /// # let lp = spindle_loop::EventLoop::new().unwrap();
    /// let t = lp.create_task(async {}).unwrap();
    /// let cb = t.add_done_callback(|_| ());
    /// assert_eq!(t.remove_done_callback(&cb), 1);
    /// ```
    pub fn remove_done_callback(&self, callback: &TaskCallback) -> usize {
        self.header().remove_callback(callback)
    }

    /// Takes the result of a finished task without waiting (asyncio's `Task.result()`).
    ///
    /// `Err(LoopError::InvalidState)` if the task is not done yet or its result was already
    /// taken; otherwise the task's outcome.
    ///
    /// ```
    /// # let lp = spindle_loop::EventLoop::new().unwrap();
    /// let mut t = lp.create_task(async { 3 }).unwrap();
    /// assert!(t.result().is_err()); // not done yet
    /// lp.stop();
    /// lp.run_forever().unwrap();
    /// assert_eq!(t.result().unwrap(), Ok(3));
    /// ```
    pub fn result(&mut self) -> Result<Result<T, TaskError>, LoopError> {
        if self.taken() {
            return Err(LoopError::InvalidState(
                "result(): the task's result was already taken",
            ));
        }
        let Some(join) = self.join.as_mut() else {
            return Err(LoopError::InvalidState(
                "result(): the task's result was already taken",
            ));
        };
        if !join.is_finished() {
            return Err(LoopError::InvalidState(
                "result(): the task is not done yet",
            ));
        }
        let mut cx = Context::from_waker(Waker::noop());
        match Pin::new(join).poll(&mut cx) {
            Poll::Ready(outcome) => Ok(self.take(outcome)),
            Poll::Pending => Err(LoopError::InvalidState(
                "result(): the task is not done yet",
            )),
        }
    }

    fn take(&mut self, outcome: Option<Result<T, TaskError>>) -> Result<T, TaskError> {
        self.header.set();
        match outcome {
            Some(Ok(value)) => Ok(value),
            Some(Err(e)) => {
                self.header().mark_retrieved();
                Err(e)
            }
            // The cell dropped the future without output: destroyed at close.
            None => Err(TaskError::Cancelled),
        }
    }

    /// Polls for the result without recording an await edge: cancelling the polling task does
    /// not cancel this one (what `shield`, `gather` and `wait_for` need; they cancel children
    /// themselves, or, for `shield`, never).
    pub(crate) fn poll_unlinked(&mut self, cx: &mut Context<'_>) -> Poll<Result<T, TaskError>> {
        assert!(
            !self.taken(),
            "a spindle Task was polled after its result was taken"
        );
        let Some(join) = self.join.as_mut() else {
            return Poll::Ready(Err(TaskError::Cancelled));
        };
        match Pin::new(join).poll(cx) {
            Poll::Ready(outcome) => Poll::Ready(self.take(outcome)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T> Future for Task<T> {
    type Output = Result<T, TaskError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        match this.poll_unlinked(cx) {
            Poll::Ready(outcome) => Poll::Ready(outcome),
            Poll::Pending => {
                // Record the await edge for cancellation to flow down (asyncio's _fut_waiter).
                if let Some(current) = current_task_header().filter(|c| *c != this.header_ptr()) {
                    // SAFETY: the current task's header stays valid for the rest of its step,
                    // and this poll runs inside that step (see `current_task_ref`).
                    unsafe { current.as_ref() }.set_awaiting(this.task_ref());
                }
                Poll::Pending
            }
        }
    }
}

impl<T> Drop for Task<T> {
    fn drop(&mut self) {
        // Before `join` goes: it is what keeps the header and waker parts valid.
        if !self.taken() && self.join.is_some() {
            self.header().detach(|| self.task_ref());
        }
        if let Some(join) = self.join.take() {
            join.detach();
        }
    }
}

impl<T> fmt::Debug for Task<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Task")
            .field("id", &self.id())
            .field("name", &self.name())
            .field("done", &self.done())
            .field("cancelled", &self.cancelled())
            .finish()
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
