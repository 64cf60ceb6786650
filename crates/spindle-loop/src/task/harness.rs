//! The future the task cell drives: the user's future under cancellation and panic catching,
//! and the completion guard that finishes the task exactly once.

use super::*;

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
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| self.drop_future_in_place())) {
            self.report_drop_panic(payload, "a task's destructor");
        }
    }

    /// Drops the future (if still there) and completes the task as cancelled.
    fn finish_cancelled<T>(&mut self) -> Poll<Result<T, TaskError>> {
        self.drop_future();
        self.guard.complete(Outcome::Cancelled);
        Poll::Ready(Err(TaskError::Cancelled))
    }

    /// Reports a panic caught while dropping `what`.
    fn report_drop_panic(&self, payload: Box<dyn std::any::Any + Send>, what: &str) {
        let header = self.guard.header();
        let mut ctx = ExceptionContext::new(
            ExceptionKind::TaskPanicked,
            format!("{what} panicked ({})", header.name()),
        );
        ctx.panic = Some(panic_message(&*payload).into());
        ctx.created_at = Some(header.created_at);
        self.guard.report(ctx);
    }
}

impl<F, O: TaskOwner> Drop for TaskFuture<F, O> {
    fn drop(&mut self) {
        // A panic in the future's destructor is caught and reported here (the drop may come
        // from `close()`, which must go on); the guard then reports the task destroyed.
        self.drop_future();
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
        // A fresh I/O budget for this step (see `io::coop`).
        crate::io::coop::reset();
        if this.guard.future_gone() {
            // The cell never polls a completed future; answer consistently all the same.
            return Poll::Ready(Err(TaskError::Cancelled));
        }
        let header = this.guard.header();
        if header.cancel_requested() {
            // Before the links are cleared by completion: see `request_cancel`.
            header.follow_await_links();
            return this.finish_cancelled();
        }
        header.begin_step();
        // SAFETY: present (FUTURE_GONE is clear) and pinned: it lives inside the pinned `self`
        // and is never moved (see the field).
        let future = unsafe { Pin::new_unchecked(&mut *this.future) };
        match catch_unwind(AssertUnwindSafe(|| future.poll(cx))) {
            Ok(Poll::Pending) => {
                this.guard.owner.on_pending(this.guard.header(), cx.waker());
                Poll::Pending
            }
            Ok(Poll::Ready(value)) if this.guard.header().must_cancel() => {
                // Cancelled from inside its last step: it ends cancelled (asyncio's
                // `_must_cancel`); its value is dropped like its future.
                if let Err(payload) = catch_unwind(AssertUnwindSafe(|| drop(value))) {
                    this.report_drop_panic(payload, "a cancelled task's value");
                }
                this.finish_cancelled()
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
    #[inline]
    fn unregister(&self, header: &TaskHeader) -> Option<TaskRef> {
        if header.is_registered() {
            return self.0.upgrade()?.unregister_task(header);
        }
        // Never idle, so in no registry: only the loop's count of unstarted tasks changes.
        // No `upgrade` (a count up and down) for that: `Weak` is `!Send`, so this is the
        // loop's thread, and a live strong count means the loop's `Inner` stays alive for
        // the call below, which runs no code that could drop it.
        if self.0.strong_count() > 0 {
            // SAFETY: see above: the allocation is alive and nothing frees it meanwhile.
            unsafe { &*self.0.as_ptr() }.note_unstarted_task_done();
        }
        None
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

    /// Completes the task unless that was done already (the guard's `Drop` after a finished
    /// step lands here: one load).
    #[inline(always)]
    fn complete(&mut self, outcome: Outcome) {
        // Only `complete` sets DONE, and only the task's own step (or the drop of its future)
        // calls it: a plain load tells whether this already ran.
        if self.header().state() & DONE != 0 {
            return;
        }
        self.finish(outcome);
    }

    /// Sets the done bits and lets go of the registration. Most tasks end here: nothing
    /// registered on them (no done-callback, no await link, not `run_until_complete`'s) and
    /// nothing to report; everything else is in `finish_slow`, kept out of line so this
    /// path stays a few instructions (a detached trivial task spends most of its life here).
    fn finish(&mut self, outcome: Outcome) {
        let header = self.header();
        let bits = match outcome {
            Outcome::Finished => DONE,
            Outcome::Cancelled => DONE | CANCELLED,
            Outcome::Panicked(_) | Outcome::Destroyed => return self.finish_slow(outcome),
        };
        let prev = header.state.fetch_or(bits, Ordering::AcqRel);
        if prev & (AWAITING_FUTURE | NEEDS_SLOW_COMPLETION | STOP_ON_DONE) == 0 {
            // The registry's reference (if the task was ever idle) goes after the bits are
            // published, as in `finish_slow`.
            drop(self.owner.unregister(header));
            return;
        }
        self.finish_after(outcome, prev);
    }

    /// `finish` for a panic or a destroyed task (reports, a failure message to store).
    #[cold]
    #[inline(never)]
    fn finish_slow(&mut self, outcome: Outcome) {
        let header = self.header();
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
        self.finish_after(outcome, prev);
    }

    /// The rest of completion once the done bits are set (`prev`: the state before): the await
    /// links, done-callbacks, `run_until_complete`'s stop, reports.
    #[inline(never)]
    fn finish_after(&mut self, outcome: Outcome, prev: u32) {
        let header = self.header();
        if prev & AWAITING_FUTURE != 0 {
            // On the task's thread (its step, or its drop at close): its own table.
            drop(awaited_future::take(header.id));
        }
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
                    // asyncio stops `run_until_complete` from a done-callback: what the last
                    // step scheduled and the task's own done-callbacks (scheduled above) run in
                    // the same batch as the stop. It only stops if `run_until_complete` is still
                    // waiting when it runs (it clears STOP_ON_DONE on return).
                    let stop = move |task: TaskRef, owner: Weak<Inner>| {
                        if task.header().state() & STOP_ON_DONE != 0 {
                            if let Some(owner) = owner.upgrade() {
                                owner.stop();
                            }
                        }
                    };
                    let scheduled = task.clone().map(|task| {
                        let weak = owner.weak();
                        owner.call_soon_internal(move || stop(task, weak), header.created_at)
                    });
                    if !matches!(scheduled, Some(Ok(_))) {
                        owner.stop();
                    }
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
