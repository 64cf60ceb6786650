//! A cell of one future type: allocation, the waker's vtable, and a step (`run`).

use std::alloc::Layout;
use std::future::Future;
use std::marker::PhantomData;
use std::mem::{self, ManuallyDrop};
use std::pin::Pin;
use std::ptr::NonNull;
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};

use super::{
    header_at, last_holder_gone, release_step, Header, JoinHandle, Runnable, Schedule, TaskVTable,
    WakerParts, CLOSED, COMPLETED, HANDLE, REFERENCE, RUNNING, SCHEDULED,
};
use crate::sync::Ordering;
use crate::sync::{AtomicUsize, UnsafeCell};
use crate::task::TaskHeader;

/// The future while the task runs, its output once it completed: which one is there is the
/// state's to say (see the module docs of `cell`).
union Stage<F: Future> {
    future: ManuallyDrop<F>,
    output: ManuallyDrop<F::Output>,
}

/// The allocation. `#[repr(C)]` with the header first: a pointer to the cell is a pointer to
/// its [`Header`].
#[repr(C)]
struct Cell<F: Future> {
    header: Header,
    stage: Stage<F>,
}

/// The typed operations on a cell holding an `F` scheduled by `S`.
pub(crate) struct RawTask<F, S>(PhantomData<(F, S)>);

/// Spawns a `Send` task: its first step is the returned [`Runnable`], for the caller to
/// schedule. `future` is built from the task's header, in place (the future may keep a pointer
/// to it: the header does not move until the cell is freed, after the future was dropped).
pub(crate) fn spawn<F, S, B>(
    meta: TaskHeader,
    future: B,
) -> (Runnable, JoinHandle<F::Output>, WakerParts)
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
    S: Schedule,
    B: FnOnce(&TaskHeader) -> F,
{
    // SAFETY: `F` and its output are `Send`, so the future may be polled and dropped, and the
    // output dropped, on any thread.
    unsafe { spawn_unchecked::<F, S, B>(meta, future) }
}

/// [`spawn`] for a future that may be `!Send`.
///
/// # Safety
///
/// If `F` is not `Send`, every [`Runnable`] of the task must be run or dropped on the thread
/// that called this, and `S` must deliver it only there (wakers may be used anywhere: when the
/// last one goes, the task is scheduled one last time, through `S`, to drop its future). If
/// `F::Output` is not `Send`, the [`JoinHandle`] must stay on this thread too.
pub(crate) unsafe fn spawn_unchecked<F, S, B>(
    meta: TaskHeader,
    future: B,
) -> (Runnable, JoinHandle<F::Output>, WakerParts)
where
    F: Future + 'static,
    S: Schedule,
    B: FnOnce(&TaskHeader) -> F,
{
    let ptr = RawTask::<F, S>::allocate(meta, future);
    let parts = WakerParts {
        data: ptr.as_ptr() as *const (),
        vtable: &RawTask::<F, S>::WAKER_VTABLE,
    };
    // SAFETY: a new cell holds one reference (the first step's) and the handle bit.
    unsafe { (Runnable::from_raw(ptr), JoinHandle::from_raw(ptr), parts) }
}

// The running thread's task, for the self-wake (see the module docs of `cell`): its cell's
// address, with bit 0 set once the task woke itself during the step. Zero: no step runs here.
#[cfg(not(loom))]
std::thread_local! {
    static RUNNING_HERE: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}
#[cfg(loom)]
loom::thread_local! {
    static RUNNING_HERE: std::cell::Cell<usize> = std::cell::Cell::new(0);
}

/// Notes a wake of `ptr`'s task if it is the one running on this thread; returns whether it
/// was (the wake then needs nothing else).
#[inline]
fn note_self_wake(ptr: *const ()) -> bool {
    RUNNING_HERE
        .try_with(|running| {
            let current = running.get();
            let hit = current & !1 == ptr as usize;
            if hit {
                running.set(current | 1);
            }
            hit
        })
        .unwrap_or(false)
}

/// Marks `ptr`'s step as running on this thread; returns what was marked before (a step that
/// runs another task's step inline, as an inline scheduler does).
#[inline]
fn enter_step(ptr: *const ()) -> usize {
    RUNNING_HERE.with(|running| running.replace(ptr as usize))
}

/// What `RUNNING_HERE` holds (tests).
#[cfg(test)]
pub(super) fn running_here() -> usize {
    RUNNING_HERE.with(std::cell::Cell::get)
}

/// Ends the step entered with `enter_step`, restoring `previous`; returns whether the task
/// woke itself during the step.
#[inline]
fn leave_step(previous: usize) -> bool {
    RUNNING_HERE.with(|running| running.replace(previous) & 1 != 0)
}

/// What a wake from outside the task's step did (see [`mark_scheduled`]).
enum Woken {
    /// The task was idle: the waker set SCHEDULED and must create the runnable.
    Idle,
    /// A step is running: SCHEDULED is set, the runner schedules the task when it ends.
    Running,
    /// Already scheduled, completed or closed: nothing to do.
    Nothing,
}

/// The state transition of a wake: sets SCHEDULED unless the task is completed, closed or
/// scheduled already. `runnable_ref` is added with it when the task is idle (`REFERENCE` if
/// the waker keeps its own reference, 0 if it hands it to the runnable).
#[inline]
fn mark_scheduled(header: &Header, runnable_ref: usize) -> Woken {
    let mut state = header.state.load(Ordering::Acquire);
    loop {
        if state & (COMPLETED | CLOSED) != 0 {
            return Woken::Nothing;
        }
        let new = if state & SCHEDULED != 0 {
            // Already owed a step. Still a compare-exchange (not a load): it orders this
            // wake after the writes before it, for that step to see them (async-task's rule).
            state
        } else if state & RUNNING != 0 {
            state | SCHEDULED
        } else {
            (state | SCHEDULED) + runnable_ref
        };
        match header
            .state
            .compare_exchange_weak(state, new, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) if state & SCHEDULED != 0 => return Woken::Nothing,
            Ok(_) if state & RUNNING != 0 => return Woken::Running,
            Ok(_) => {
                if state > isize::MAX as usize {
                    std::process::abort(); // see `clone_waker`
                }
                return Woken::Idle;
            }
            Err(actual) => state = actual,
        }
    }
}

impl<F, S> RawTask<F, S>
where
    F: Future + 'static,
    S: Schedule,
{
    pub(crate) const WAKER_VTABLE: RawWakerVTable = RawWakerVTable::new(
        Self::clone_waker,
        Self::wake,
        Self::wake_by_ref,
        Self::drop_ref,
    );

    const TASK_VTABLE: TaskVTable = TaskVTable {
        schedule: Self::schedule,
        drop_future: Self::drop_future,
        output: Self::output,
        drop_ref: Self::drop_ref,
        destroy: Self::destroy,
        run: Self::run,
        clone_waker: Self::clone_waker,
    };

    fn allocate<B: FnOnce(&TaskHeader) -> F>(meta: TaskHeader, future: B) -> NonNull<()> {
        let layout = Layout::new::<Cell<F>>();
        // SAFETY: `Cell` holds a header, so its size is not zero.
        let raw = unsafe { std::alloc::alloc(layout) } as *mut Cell<F>;
        let Some(cell) = NonNull::new(raw) else {
            std::alloc::handle_alloc_error(layout);
        };
        let cell = cell.as_ptr();
        // SAFETY: `cell` is a fresh allocation of `Cell<F>`'s layout: the header is written in
        // place first, then the future is built from a reference to the header's metadata that
        // stays valid (the header never moves) and written into the stage. If building the
        // future panics, the cell is freed again (nothing else knows it yet).
        unsafe {
            std::ptr::addr_of_mut!((*cell).header).write(Header {
                state: AtomicUsize::new(SCHEDULED | HANDLE | REFERENCE),
                awaiter: UnsafeCell::new(None),
                vtable: &Self::TASK_VTABLE,
                meta,
            });
            let built = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                future(&(*cell).header.meta)
            }));
            match built {
                Ok(future) => std::ptr::addr_of_mut!((*cell).stage).write(Stage {
                    future: ManuallyDrop::new(future),
                }),
                Err(payload) => {
                    std::ptr::addr_of_mut!((*cell).header).drop_in_place();
                    std::alloc::dealloc(cell as *mut u8, layout);
                    std::panic::resume_unwind(payload);
                }
            }
            NonNull::new_unchecked(cell as *mut ())
        }
    }

    #[inline]
    fn stage(ptr: *const ()) -> *mut Stage<F> {
        // `addr_of_mut!` on a raw pointer: no reference to the union is formed.
        // SAFETY: projection within the allocation only, no read.
        unsafe { std::ptr::addr_of_mut!((*(ptr as *mut Cell<F>)).stage) }
    }

    unsafe fn clone_waker(ptr: *const ()) -> RawWaker {
        // SAFETY: a waker (or a runnable) of this task exists: the cell is alive.
        let header = unsafe { header_at(ptr) };
        // Relaxed: the caller's own reference keeps the cell alive (see the module docs).
        let state = header.state.fetch_add(REFERENCE, Ordering::Relaxed);
        if state > isize::MAX as usize {
            // Over half the address space in references: only a leak loop gets here, and
            // wrapping would free a live cell.
            std::process::abort();
        }
        RawWaker::new(ptr, &Self::WAKER_VTABLE)
    }

    unsafe fn wake(ptr: *const ()) {
        if note_self_wake(ptr) {
            // SAFETY: this waker's reference, given up.
            unsafe { Self::drop_ref(ptr) };
            return;
        }
        // SAFETY: the waker's reference keeps the cell alive; if the wake creates a runnable,
        // that reference becomes the runnable's (no count of its own is taken).
        match unsafe { mark_scheduled(header_at(ptr), 0) } {
            // SAFETY: we set SCHEDULED, with this waker's reference for the runnable.
            Woken::Idle => unsafe { Self::schedule(ptr, false) },
            // SAFETY: this waker's reference, given up.
            Woken::Running | Woken::Nothing => unsafe { Self::drop_ref(ptr) },
        }
    }

    unsafe fn wake_by_ref(ptr: *const ()) {
        if note_self_wake(ptr) {
            return;
        }
        // SAFETY: the waker's reference keeps the cell alive; a new runnable takes a reference
        // of its own.
        if let Woken::Idle = unsafe { mark_scheduled(header_at(ptr), REFERENCE) } {
            // SAFETY: we set SCHEDULED and took the reference for it.
            unsafe { Self::schedule(ptr, false) };
        }
    }

    /// Gives up a reference (a waker's or a step's). The last one, with the handle gone, frees
    /// the cell, or first closes the task and schedules it once if its future is still there
    /// (see `last_holder_gone`).
    unsafe fn drop_ref(ptr: *const ()) {
        // SAFETY: the caller's reference keeps the cell alive until the decrement.
        let header = unsafe { header_at(ptr) };
        let new = header.state.fetch_sub(REFERENCE, Ordering::AcqRel) - REFERENCE;
        if new & !(REFERENCE - 1) == 0 && new & HANDLE == 0 {
            // SAFETY: no reference and no handle left: nobody else can reach the cell.
            unsafe { last_holder_gone(ptr, new) };
        }
    }

    unsafe fn schedule(ptr: *const (), yielded: bool) {
        // SAFETY: the caller set SCHEDULED and holds a reference for the runnable.
        S::schedule(
            unsafe { Runnable::from_raw(NonNull::new_unchecked(ptr as *mut ())) },
            yielded,
        );
    }

    unsafe fn drop_future(ptr: *const ()) {
        // SAFETY: the caller owns the future (it holds the runnable, or runs the step) and it
        // is present; it is pinned in the cell and dropped in place.
        unsafe { ManuallyDrop::drop(&mut (*Self::stage(ptr)).future) }
    }

    unsafe fn output(ptr: *const ()) -> *mut () {
        // SAFETY: a projection; whether the output is there is the caller's to know.
        unsafe { std::ptr::addr_of_mut!((*Self::stage(ptr)).output) as *mut () }
    }

    unsafe fn destroy(ptr: *const ()) {
        let cell = ptr as *mut Cell<F>;
        // SAFETY: the last holder frees the cell: its header (the metadata's slow state) is
        // dropped here; the stage was emptied before (future dropped, output taken or dropped).
        unsafe {
            std::ptr::addr_of_mut!((*cell).header).drop_in_place();
            std::alloc::dealloc(cell as *mut u8, Layout::new::<Cell<F>>());
        }
    }

    /// Closes the task from a step that found `CLOSED` before polling, or whose poll
    /// unwound: drops the future, lets go of the step's reference, wakes the awaiter.
    unsafe fn close_in_step(ptr: *const (), clear: usize) {
        // SAFETY: the step owns the future (see `run`).
        unsafe { Self::drop_future(ptr) };
        // SAFETY: the step's reference keeps the cell alive.
        let header = unsafe { header_at(ptr) };
        let state = header.state.fetch_and(!clear, Ordering::AcqRel);
        // SAFETY: the step's reference, given up.
        unsafe { release_step(ptr, state) };
    }

    /// One step: polls the future, then, if the task was woken meanwhile, schedules it again
    /// or, with `hand_back`, leaves its next step (the SCHEDULED bit and the step's reference)
    /// to the caller. Returns whether it was woken.
    unsafe fn run(ptr: *const (), hand_back: bool) -> bool {
        // SAFETY: the runnable's reference keeps the cell alive for the step.
        let header = unsafe { header_at(ptr) };
        // SAFETY: data and vtable of this task's waker; ManuallyDrop: it borrows the runnable's
        // reference, it does not own one.
        let waker =
            ManuallyDrop::new(unsafe { Waker::from_raw(RawWaker::new(ptr, &Self::WAKER_VTABLE)) });
        let cx = &mut Context::from_waker(&waker);

        let mut state = header.state.load(Ordering::Acquire);
        loop {
            if state & CLOSED != 0 {
                // Closed while scheduled (the last reference went idle, or the runnable's
                // task was closed): drop the future instead of polling it.
                // SAFETY: this step owns the future and the runnable's reference.
                unsafe { Self::close_in_step(ptr, SCHEDULED) };
                return false;
            }
            match header.state.compare_exchange_weak(
                state,
                (state & !SCHEDULED) | RUNNING,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    state = (state & !SCHEDULED) | RUNNING;
                    break;
                }
                Err(actual) => state = actual,
            }
        }

        let previous = enter_step(ptr);
        let unwinding = StepGuard::<F, S> {
            ptr,
            previous,
            _types: PhantomData,
        };
        // SAFETY: RUNNING is ours: the future is present and nobody else touches it; it is
        // pinned in the cell.
        let poll = unsafe { Pin::new_unchecked(&mut *(*Self::stage(ptr)).future) }.poll(cx);
        mem::forget(unwinding);
        let woke_itself = leave_step(previous);

        match poll {
            Poll::Ready(output) => {
                // SAFETY: the step owns the future; it is dropped before the output takes its
                // place in the stage.
                unsafe {
                    Self::drop_future(ptr);
                    (*Self::stage(ptr)).output = ManuallyDrop::new(output);
                }
                loop {
                    // No handle to take the output: close as well, and drop it below.
                    let new = if state & HANDLE == 0 {
                        (state & !RUNNING & !SCHEDULED) | COMPLETED | CLOSED
                    } else {
                        (state & !RUNNING & !SCHEDULED) | COMPLETED
                    };
                    match header.state.compare_exchange_weak(
                        state,
                        new,
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    ) {
                        Ok(_) => {
                            let dropped = if state & HANDLE == 0 || state & CLOSED != 0 {
                                // SAFETY: nobody can take the output any more. A panic in its
                                // destructor must not skip the release below (the cell would
                                // leak): caught, and reported once the step let go.
                                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| unsafe {
                                    ManuallyDrop::drop(&mut (*Self::stage(ptr)).output)
                                }))
                            } else {
                                Ok(())
                            };
                            match dropped {
                                // SAFETY: the step's reference, given up.
                                Ok(()) => unsafe { release_step(ptr, state) },
                                // SAFETY: as above.
                                Err(payload) => unsafe {
                                    release_after_output_panic(ptr, state, payload)
                                },
                            }
                            return false;
                        }
                        Err(actual) => state = actual,
                    }
                }
            }
            Poll::Pending => {
                let mut future_dropped = false;
                loop {
                    let new = if state & CLOSED != 0 {
                        state & !RUNNING & !SCHEDULED
                    } else if woke_itself {
                        // The self-wake: SCHEDULED set here, by the transition made anyway.
                        (state & !RUNNING) | SCHEDULED
                    } else {
                        state & !RUNNING
                    };
                    if state & CLOSED != 0 && !future_dropped {
                        // Closed during the step: drop the future before letting go.
                        // SAFETY: still RUNNING: the future is ours.
                        unsafe { Self::drop_future(ptr) };
                        future_dropped = true;
                    }
                    match header.state.compare_exchange_weak(
                        state,
                        new,
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    ) {
                        Ok(state) => {
                            if state & CLOSED != 0 {
                                // SAFETY: the step's reference, given up.
                                unsafe { release_step(ptr, state) };
                                return false;
                            }
                            if state & SCHEDULED != 0 || woke_itself {
                                // Woken during the step: the step's runnable goes back to
                                // the scheduler, marked as a yield, or to the caller.
                                if !hand_back {
                                    // SAFETY: SCHEDULED is set, with the step's reference.
                                    unsafe { Self::schedule(ptr, true) };
                                }
                                return true;
                            }
                            // SAFETY: the step's reference, given up: wakers hold their own.
                            unsafe { Self::drop_ref(ptr) };
                            return false;
                        }
                        Err(actual) => state = actual,
                    }
                }
            }
        }
    }
}

/// Ends a step whose task's output panicked when dropped: builds the report while the cell is
/// still ours, gives up the step's reference, then reports. Out of line: the common end of a
/// step stays short.
///
/// # Safety
///
/// As [`release_step`]: `ptr` is a live cell and the caller's reference is given up.
#[cold]
#[inline(never)]
unsafe fn release_after_output_panic(
    ptr: *const (),
    state: usize,
    payload: Box<dyn std::any::Any + Send>,
) {
    // SAFETY: the caller's reference keeps the cell alive until `release_step`.
    let ctx = unsafe { header_at(ptr) }.meta.output_drop_panic(payload);
    // SAFETY: the caller's reference, given up.
    unsafe { release_step(ptr, state) };
    crate::exception::report_to_running_loop(ctx);
}

/// Closes the task if its poll unwinds (spindle's futures catch their panics; this is for any
/// that does not), and ends the step's self-wake mark.
struct StepGuard<F, S>
where
    F: Future + 'static,
    S: Schedule,
{
    ptr: *const (),
    previous: usize,
    _types: PhantomData<(F, S)>,
}

impl<F, S> Drop for StepGuard<F, S>
where
    F: Future + 'static,
    S: Schedule,
{
    fn drop(&mut self) {
        leave_step(self.previous);
        let ptr = self.ptr;
        // SAFETY: the step's reference keeps the cell alive.
        unsafe { header_at(ptr) }.close();
        // SAFETY: still RUNNING: the future and the step's reference are ours.
        unsafe { RawTask::<F, S>::close_in_step(ptr, RUNNING | SCHEDULED) };
    }
}
