//! The task header: the part of a task every holder shares (cancel request, done bits,
//! name, done-callbacks, the await edge), inline in the task's cell.

use super::*;

/// The part of a task that every holder shares: the metadata in the task's cell, inline in its
/// allocation.
pub(crate) struct TaskHeader {
    pub(super) id: u64,
    /// Whose task this is, in one word (see `OwnerWord`): a local task's loop id, or a
    /// stealable task's scheduler. Written before the header is shared, then only read (an
    /// atomic pointer because a raw pointer is neither `Sync` nor provenance-free as an
    /// integer).
    pub(super) owner: AtomicPtr<()>,
    pub(super) created_at: &'static Location<'static>,
    pub(super) state: AtomicU32,
    /// Index in the loop's registry or the scheduler's task set (`NO_SLOT`: not registered).
    /// 32 bits, beside `state`, to keep the header (moved into every task's allocation) small.
    pub(super) slot: AtomicU32,
    /// Allocated by the first task that needs it (see `LazyMutex`): most tasks never do.
    pub(super) slow: LazyMutex<SlowState>,
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
pub(super) struct SlowState {
    /// The task this one awaits (set on every pending await of a task handle).
    pub(super) awaiting: Option<TaskRef>,
    pub(super) name: Option<Box<str>>,
    pub(super) callbacks: Vec<TaskCallback>,
    pub(super) failure: Option<Arc<str>>,
    /// A loop id too wide for `TaskHeader::owner` (see `OwnerWord`).
    pub(super) wide_loop_id: Option<u64>,
}

impl TaskHeader {
    /// A task of loop `loop_id`, or a stealable one (`STEALABLE`, then `set_scheduler`).
    /// Inline: built straight into the cell rather than returned and copied.
    #[inline]
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
    pub(super) fn slow(&self) -> impl std::ops::DerefMut<Target = SlowState> + '_ {
        self.slow.lock()
    }

    #[inline]
    pub(super) fn state(&self) -> u32 {
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

    /// Called at the start of each step that is not a cancelled one: the previous step's await
    /// targets are stale (a cancelled step follows them instead, see `follow_await_links`).
    #[inline]
    pub(crate) fn begin_step(&self) {
        let state = self.state();
        if state & (AWAITING | AWAITING_FUTURE) != 0 {
            self.clear_await_links(state);
        }
    }

    /// `begin_step` for a task whose last step left an await link (`state` has one).
    #[inline(never)]
    fn clear_await_links(&self, state: u32) {
        if state & AWAITING != 0 {
            self.state.fetch_and(!AWAITING, Ordering::AcqRel);
            self.slow().awaiting = None;
        }
        if state & AWAITING_FUTURE != 0 {
            self.state.fetch_and(!AWAITING_FUTURE, Ordering::AcqRel);
            drop(awaited_future::take(self.id));
        }
    }

    pub(super) fn set_awaiting(&self, target: TaskRef) {
        self.slow().awaiting = Some(target);
        self.state.fetch_or(AWAITING, Ordering::AcqRel);
    }

    /// Records the loop future this task's step is suspended on (see `awaited_future`); on
    /// the task's own thread, inside its step.
    pub(super) fn set_awaiting_future(&self, target: awaited_future::Link) {
        awaited_future::set(self.id, target);
        self.state.fetch_or(AWAITING_FUTURE, Ordering::AcqRel);
    }

    /// Cancels what the task awaits: the task behind `awaiting`, and, on the task's own thread,
    /// the loop future it is suspended on. Called by `request_cancel` (at once, as asyncio) and
    /// by the task's cancelled step (which reaches both links even when `request_cancel` ran on
    /// another thread, or raced with the step that set them).
    pub(super) fn follow_await_links(&self) {
        let state = self.state();
        if state & AWAITING != 0 {
            let awaiting = self.slow().awaiting.clone();
            if let Some(inner) = awaiting {
                inner.cancel();
            }
        }
        if state & AWAITING_FUTURE != 0 {
            // Only the owning thread's table holds it: elsewhere this finds nothing.
            if let Some(future) = awaited_future::take(self.id) {
                future.cancel_awaited();
            }
        }
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
    pub(super) fn cancel_requested(&self) -> bool {
        self.state() & CANCEL_REQUESTED != 0
    }

    /// Cancellation was requested from inside the task's own step (see `MUST_CANCEL`).
    #[inline]
    pub(super) fn must_cancel(&self) -> bool {
        self.state() & MUST_CANCEL != 0
    }

    /// Requests cancellation; `waker` is the task's own, used to reschedule it.
    ///
    /// The await links are followed *before* the wake-up: once woken, the task's cancelled step
    /// may run on another worker and complete, which clears them. The step follows them too,
    /// so a link set by a step that raced with this call is not missed either.
    pub(super) fn request_cancel(&self, waker: &Waker) -> bool {
        let in_own_step = current_task_header() == Some(NonNull::from(self));
        let bits = if in_own_step {
            CANCEL_REQUESTED | MUST_CANCEL
        } else {
            CANCEL_REQUESTED
        };
        let prev = self.state.fetch_or(bits, Ordering::AcqRel);
        if prev & DONE != 0 {
            return false;
        }
        self.follow_await_links();
        // Queued or running already: a no-op; idle: back into its loop's queue.
        waker.wake_by_ref();
        true
    }

    pub(crate) fn mark_retrieved(&self) {
        self.state.fetch_or(RETRIEVED, Ordering::AcqRel);
    }

    /// The handle was dropped: detach, and report an error nobody took.
    #[inline]
    pub(super) fn detach(&self, task: impl FnOnce() -> TaskRef) {
        let prev = self.state.fetch_or(DETACHED, Ordering::AcqRel);
        if prev & FAILED != 0 && prev & RETRIEVED == 0 {
            self.report_unretrieved_on_detach(task());
        }
    }

    /// `detach` found the task failed and its error not taken: report it, on the loop's
    /// thread.
    #[cold]
    #[inline(never)]
    fn report_unretrieved_on_detach(&self, task: TaskRef) {
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

    /// The report of a panic in the destructor of the task's output, dropped because nobody
    /// can take it any more (the handle was dropped): see `RawTask::run`.
    pub(crate) fn output_drop_panic(
        &self,
        payload: Box<dyn std::any::Any + Send>,
    ) -> ExceptionContext {
        let mut ctx = ExceptionContext::new(
            ExceptionKind::TaskPanicked,
            format!(
                "a detached task's output panicked when dropped ({})",
                self.name()
            ),
        );
        ctx.panic = Some(panic_message(&*payload).into());
        ctx.created_at = Some(self.created_at);
        ctx
    }

    pub(super) fn unretrieved_context(&self, task: Option<TaskRef>) -> ExceptionContext {
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

    pub(super) fn remove_callback(&self, callback: &TaskCallback) -> usize {
        let Some(mut slow) = self.slow.lock_if_used() else {
            return 0;
        };
        let before = slow.callbacks.len();
        slow.callbacks.retain(|c| !Arc::ptr_eq(c, callback));
        before - slow.callbacks.len()
    }

    pub(super) fn add_callback(&self, task: &TaskRef, callback: TaskCallback) {
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
pub(super) fn schedule_task_callback(task: TaskRef, callback: TaskCallback) {
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
