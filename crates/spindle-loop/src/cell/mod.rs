//! The task cell: one allocation per task that holds its state word, the waker of whoever awaits
//! it, a vtable, the task's [`TaskHeader`], and its future or, once finished, its output.
//!
//! Its protocol is async-task's (which spindle used until this cell replaced it), cut to what
//! spindle needs and with one addition, the self-wake:
//!
//! - a task's handle never cancels the task through the cell (spindle's [`Task`](crate::Task)
//!   handle detaches on drop and cancels through the header), so there is no cancel path from
//!   the handle;
//! - the schedule function is a zero-sized type ([`Schedule`]), never stored, and the metadata
//!   is always a [`TaskHeader`]: no extra words in the cell;
//! - **a task that wakes itself while it runs, on the thread that runs it** (a yield: the
//!   future calls `wake_by_ref` on its own waker and returns `Pending`) takes no locked
//!   instruction for that wake. The running thread notes the wake in a thread-local, and the
//!   transition out of `RUNNING` at the end of the step, a compare-exchange it makes anyway,
//!   sets `SCHEDULED` with it. async-task pays a compare-exchange on the state for that wake;
//!   a yield on a runtime worker made four locked instructions, this makes three.
//!
//! # The state word
//!
//! Flags in the low byte, a reference count above them ([`REFERENCE`] is one reference):
//!
//! - [`SCHEDULED`]: a [`Runnable`] exists (or is about to) for the task's next step. Only the
//!   one who sets it creates that `Runnable`; while it is set, wakes do nothing.
//! - [`RUNNING`]: a step is running. A wake that sets `SCHEDULED` now leaves the scheduling to
//!   the runner, which does it when the step ends.
//! - [`COMPLETED`]: the future returned `Ready`; the output is in the cell (until `CLOSED`).
//! - [`CLOSED`]: the future is gone or going, and nothing will be scheduled again; once
//!   `COMPLETED` as well, the output was taken or dropped.
//! - [`HANDLE`]: the [`JoinHandle`] still exists (it holds no reference count of its own).
//! - [`AWAITER`], [`REGISTERING`], [`NOTIFYING`]: the handle's waker slot and its
//!   two-sided lock: the handle registers its waker, the task notifies it when it completes or
//!   closes (see [`Header::register`] and [`Header::take_awaiter`]).
//!
//! Invariants: the future is present iff neither `COMPLETED` nor a close that dropped it
//! happened, which the `Runnable`'s existence implies (a task is only scheduled with its future
//! present). Every `Runnable` and every `Waker` of the task holds one reference; the cell is
//! freed when the count is zero and the handle is gone. When the last reference goes while the
//! task is neither completed nor closed, the task is closed and scheduled one last time, so its
//! future is dropped by its scheduler, on the thread that owns it, never by the dropper.
//!
//! Orderings: every transition is `AcqRel` (or `Acquire` for a failed compare-exchange and for
//! loads), as in async-task: the transition that hands the task over (`SCHEDULED` set, `RUNNING`
//! cleared) releases what the step wrote, and the one that takes it acquires it. Reference
//! increments are `Relaxed` (the holder already has a reference); decrements `AcqRel`, so the
//! one that frees the cell has seen every other holder's writes.
//!
//! # Local tasks
//!
//! A local task's future may be `!Send`, and its [`Runnable`] is `Send` all the same (it travels
//! in the loop's inbox). Nothing checks the thread at run time (async-task's `spawn_local`
//! keeps a thread id in the cell for that): a local `Runnable` is crate-private, its schedule
//! function routes it to its loop's thread only, and code that can't deliver it there leaks it
//! rather than drop it (see `remote::Remote::push_task`). [`spawn_unchecked`] states that
//! contract.

mod join;
mod raw;
mod runnable;

use std::task::Waker;

pub(crate) use join::JoinHandle;
pub(crate) use raw::{spawn, spawn_unchecked};
pub(crate) use runnable::Runnable;

use crate::sync::{AtomicUsize, Ordering, UnsafeCell};
use crate::task::TaskHeader;

/// A step of the task is owed to a scheduler: a [`Runnable`] exists or is about to.
pub(crate) const SCHEDULED: usize = 1 << 0;
/// A step is running.
pub(crate) const RUNNING: usize = 1 << 1;
/// The future returned `Ready`; its output is stored (until `CLOSED`).
pub(crate) const COMPLETED: usize = 1 << 2;
/// The future is gone and the task will not be scheduled again; with `COMPLETED`, the output
/// was taken or dropped too.
pub(crate) const CLOSED: usize = 1 << 3;
/// The [`JoinHandle`] exists.
pub(crate) const HANDLE: usize = 1 << 4;
/// A waker is registered in the awaiter slot.
pub(crate) const AWAITER: usize = 1 << 5;
/// The handle is writing the awaiter slot.
pub(crate) const REGISTERING: usize = 1 << 6;
/// The task is taking the awaiter out of its slot.
pub(crate) const NOTIFYING: usize = 1 << 7;
/// One reference (a `Runnable` or a `Waker`).
pub(crate) const REFERENCE: usize = 1 << 8;

/// A task's waker as raw parts, borrowed from the task (no reference count of its own): what
/// a [`Task`](crate::Task) handle keeps, its cell kept alive by the handle's `HANDLE` bit.
#[derive(Clone, Copy)]
pub(crate) struct WakerParts {
    pub(crate) data: *const (),
    pub(crate) vtable: &'static std::task::RawWakerVTable,
}

/// How a task's steps reach a scheduler: a zero-sized type, named in the cell's type, never
/// stored. `yielded` says the task woke itself during the step that just ended (it goes to the
/// back of a queue, not to a LIFO slot).
pub(crate) trait Schedule: 'static {
    /// Takes the task's next step.
    fn schedule(runnable: Runnable, yielded: bool);
}

/// The operations on a cell that do not depend on its future's type.
pub(crate) struct TaskVTable {
    pub(crate) schedule: unsafe fn(*const (), bool),
    pub(crate) drop_future: unsafe fn(*const ()),
    pub(crate) output: unsafe fn(*const ()) -> *mut (),
    pub(crate) drop_ref: unsafe fn(*const ()),
    pub(crate) destroy: unsafe fn(*const ()),
    pub(crate) run: unsafe fn(*const (), bool) -> bool,
    pub(crate) clone_waker: unsafe fn(*const ()) -> std::task::RawWaker,
}

/// The start of every cell (`#[repr(C)]`, first field of the cell): what is shared by
/// [`Runnable`], [`JoinHandle`] and the task's wakers, whatever the future's type.
#[repr(C)]
pub(crate) struct Header {
    pub(crate) state: AtomicUsize,
    /// The handle's waker, written under `REGISTERING` and taken under `NOTIFYING`.
    awaiter: UnsafeCell<Option<Waker>>,
    pub(crate) vtable: &'static TaskVTable,
    pub(crate) meta: TaskHeader,
}

/// The header of the cell at `ptr`: its first field (`Cell` is `#[repr(C)]`), whatever the
/// future's type.
///
/// # Safety
///
/// `ptr` is a live cell, kept alive by the caller (a reference or the handle) for `'a`.
#[inline]
pub(crate) unsafe fn header_at<'a>(ptr: *const ()) -> &'a Header {
    // SAFETY: the caller's contract; the header comes first in every cell.
    unsafe { &*(ptr as *const Header) }
}

/// The last holder let go of the cell (no reference left, no handle), whose state is
/// `state`. A task still open (its future in the cell, nobody left to wake it) is closed and
/// scheduled one last time, so that its future is dropped by its scheduler, on the thread that
/// owns it, never by whoever let go last; a completed or closed one is freed.
///
/// # Safety
///
/// No reference and no handle are left: the caller is the only one who can reach the cell.
pub(crate) unsafe fn last_holder_gone(ptr: *const (), state: usize) {
    // SAFETY: the caller's contract: the cell is alive and only ours.
    let header = unsafe { header_at(ptr) };
    if state & (COMPLETED | CLOSED) == 0 {
        // A store: nobody else can touch the state now.
        header
            .state
            .store(SCHEDULED | CLOSED | REFERENCE, Ordering::Release);
        // SAFETY: we set SCHEDULED with a reference for it.
        unsafe { (header.vtable.schedule)(ptr, false) };
    } else {
        // SAFETY: ours to free; its stage was emptied (future dropped, output taken or
        // dropped) when it completed or closed.
        unsafe { (header.vtable.destroy)(ptr) };
    }
}

/// Ends a step (or a dropped [`Runnable`]) that left the task completed or closed: takes the
/// awaiter if `state` (the state before the final transition) says one is registered, gives up
/// the step's reference, then wakes the awaiter, whose wake may run anything.
///
/// A raw pointer, not `&Header`: giving up the reference may free the cell.
///
/// # Safety
///
/// `ptr` is a live cell and the caller holds a reference to it, which this gives up.
#[inline]
pub(crate) unsafe fn release_step(ptr: *const (), state: usize) {
    // SAFETY: the caller's reference keeps the cell alive until `drop_ref`; `header` is not
    // used after that.
    let header = unsafe { header_at(ptr) };
    let awaiter = if state & AWAITER != 0 {
        header.take_awaiter(None)
    } else {
        None
    };
    let drop_ref = header.vtable.drop_ref;
    // SAFETY: the caller's reference, given up.
    unsafe { drop_ref(ptr) };
    if let Some(waker) = awaiter {
        waker.wake();
    }
}

impl Header {
    /// Closes the task (no step will be scheduled again) unless it already completed or closed.
    #[inline]
    pub(crate) fn close(&self) {
        let mut state = self.state.load(Ordering::Acquire);
        while state & (COMPLETED | CLOSED) == 0 {
            match self.state.compare_exchange_weak(
                state,
                state | CLOSED,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return,
                Err(actual) => state = actual,
            }
        }
    }

    /// Takes the awaiter out of its slot, unless the handle is registering one right now (it
    /// then sees `NOTIFYING` and wakes itself, see [`register`](Self::register)). A waker that
    /// would wake `current` is dropped instead of returned: the caller is that awaiter.
    pub(crate) fn take_awaiter(&self, current: Option<&Waker>) -> Option<Waker> {
        let state = self.state.fetch_or(NOTIFYING, Ordering::AcqRel);
        if state & (NOTIFYING | REGISTERING) != 0 {
            return None;
        }
        // SAFETY: we set NOTIFYING while neither it nor REGISTERING was set: we have the slot
        // to ourselves until we clear it below.
        let waker = self.awaiter.with_mut(|slot| unsafe { (*slot).take() });
        // Release: the next registrant's Acquire sees the slot emptied.
        self.state
            .fetch_and(!NOTIFYING & !AWAITER, Ordering::Release);
        match (waker, current) {
            (Some(waker), Some(current)) if waker.will_wake(current) => None,
            (waker, _) => waker,
        }
    }

    /// The handle, any thread: makes `waker` the one to wake when the task completes or closes.
    /// A notifier that comes while we register leaves the wake-up to us.
    pub(crate) fn register(&self, waker: &Waker) {
        // A read-modify-write, not a load: it must see the latest NOTIFYING (async-task does the
        // same).
        let mut state = self.state.fetch_or(0, Ordering::Acquire);
        loop {
            debug_assert!(state & REGISTERING == 0, "one handle registers at a time");
            if state & NOTIFYING != 0 {
                // The task is notifying right now: it found nothing to wake, or our old waker.
                waker.wake_by_ref();
                return;
            }
            match self.state.compare_exchange_weak(
                state,
                state | REGISTERING,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    state |= REGISTERING;
                    break;
                }
                Err(actual) => state = actual,
            }
        }
        // SAFETY: REGISTERING is ours and NOTIFYING was clear: a notifier that comes now sets
        // NOTIFYING, sees REGISTERING, and leaves the slot alone.
        let old = self
            .awaiter
            .with_mut(|slot| unsafe { (*slot).replace(waker.clone()) });
        drop(old);
        let mut to_wake = None;
        loop {
            if state & NOTIFYING != 0 {
                // A notifier came while we wrote: it left the wake-up to us. Take the waker
                // back out and wake it below.
                // SAFETY: still under REGISTERING, which the notifier respected.
                if let Some(w) = self.awaiter.with_mut(|slot| unsafe { (*slot).take() }) {
                    to_wake = Some(w);
                }
            }
            let new = if to_wake.is_none() {
                (state & !NOTIFYING & !REGISTERING) | AWAITER
            } else {
                state & !NOTIFYING & !REGISTERING & !AWAITER
            };
            match self
                .state
                .compare_exchange_weak(state, new, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => break,
                Err(actual) => state = actual,
            }
        }
        if let Some(waker) = to_wake {
            waker.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::future::{poll_fn, Future};
    use std::panic::Location;
    use std::task::{Poll, Waker};

    use super::{spawn, JoinHandle, Runnable, Schedule, WakerParts};
    use crate::task::{next_task_id, TaskHeader, STEALABLE};

    thread_local! {
        /// Steps scheduled on this thread, with their `yielded` flag.
        static QUEUE: RefCell<Vec<(Runnable, bool)>> = const { RefCell::new(Vec::new()) };
    }

    struct ToQueue;

    impl Schedule for ToQueue {
        fn schedule(runnable: Runnable, yielded: bool) {
            QUEUE.with(|q| q.borrow_mut().push((runnable, yielded)));
        }
    }

    fn queued() -> Vec<(Runnable, bool)> {
        QUEUE.with(|q| std::mem::take(&mut *q.borrow_mut()))
    }

    fn spawn_here<F: Future + Send + 'static>(
        future: F,
    ) -> (Runnable, JoinHandle<F::Output>, WakerParts)
    where
        F::Output: Send,
    {
        let header = TaskHeader::new(next_task_id(), STEALABLE, Location::caller());
        spawn::<_, ToQueue, _>(header, |_: &TaskHeader| future)
    }

    /// Polls `n` times, waking itself on each `Pending` through `wake`.
    fn yielding(n: usize, wake: fn(&Waker)) -> impl Future<Output = usize> + Send {
        let mut polls = 0;
        poll_fn(move |cx| {
            polls += 1;
            if polls > n {
                return Poll::Ready(polls);
            }
            wake(cx.waker());
            Poll::Pending
        })
    }

    fn run_to_completion(first: Runnable) -> usize {
        let mut steps = 0;
        let mut next = Some(first);
        while let Some(step) = next.take() {
            steps += 1;
            let rescheduled = step.run();
            let mut queue = queued();
            assert!(queue.len() <= 1, "one step owed at a time");
            if let Some((step, yielded)) = queue.pop() {
                assert!(rescheduled && yielded, "a self-wake is a yield");
                next = Some(step);
            } else {
                assert!(!rescheduled);
            }
        }
        steps
    }

    fn output<T>(mut join: JoinHandle<T>) -> Option<T> {
        let mut cx = std::task::Context::from_waker(Waker::noop());
        match std::pin::Pin::new(&mut join).poll(&mut cx) {
            Poll::Ready(output) => output,
            Poll::Pending => panic!("the task is not finished"),
        }
    }

    #[test]
    fn a_self_wake_by_ref_reschedules_once_as_a_yield() {
        let (first, join, _) = spawn_here(yielding(3, Waker::wake_by_ref));
        assert_eq!(run_to_completion(first), 4);
        assert_eq!(output(join), Some(4));
    }

    #[test]
    fn a_step_run_handing_back_returns_its_yield_instead_of_scheduling_it() {
        let (first, join, _) = spawn_here(yielding(2, Waker::wake_by_ref));
        let mut steps = 1;
        let mut next = first.run_handing_back();
        while let Some(step) = next {
            assert!(
                queued().is_empty(),
                "a handed-back step is not scheduled too"
            );
            steps += 1;
            next = step.run_handing_back();
        }
        assert!(queued().is_empty());
        assert_eq!(steps, 3);
        assert_eq!(output(join), Some(3));
    }

    /// The point of the self-wake: the wake touches a thread-local, not the shared state word
    /// (no locked instruction); the end of the step sets SCHEDULED.
    #[test]
    fn a_self_wake_leaves_the_state_word_alone_until_the_step_ends() {
        let mut polls = 0;
        let (first, join, _) = spawn_here(poll_fn(move |cx| {
            polls += 1;
            if polls == 2 {
                return Poll::Ready(());
            }
            // SAFETY: the waker's data is the cell, whose header comes first; the step keeps
            // it alive.
            let header = unsafe { &*(cx.waker().data() as *const super::Header) };
            let before = header.state.load(super::Ordering::Relaxed);
            cx.waker().wake_by_ref();
            assert_eq!(header.state.load(super::Ordering::Relaxed), before);
            assert_eq!(before & (super::SCHEDULED | super::RUNNING), super::RUNNING);
            Poll::Pending
        }));
        assert_eq!(run_to_completion(first), 2);
        assert_eq!(output(join), Some(()));
    }

    #[test]
    #[allow(clippy::waker_clone_wake)] // the by-value wake of a clone is what is tested
    fn a_self_wake_through_a_clone_woken_by_value_reschedules_once() {
        let (first, join, _) = spawn_here(yielding(2, |waker| waker.clone().wake()));
        assert_eq!(run_to_completion(first), 3);
        assert_eq!(output(join), Some(3));
    }

    #[test]
    fn a_wake_after_the_step_ended_goes_the_normal_way() {
        let (first, join, parts) = spawn_here(yielding(1, |_| ()));
        assert!(!first.run());
        assert!(queued().is_empty(), "idle: nothing owed");
        // SAFETY: the parts of this task's waker; the handle keeps the cell alive, and the
        // waker is not dropped (it borrows).
        let waker = std::mem::ManuallyDrop::new(unsafe {
            Waker::from_raw(std::task::RawWaker::new(parts.data, parts.vtable))
        });
        waker.wake_by_ref();
        waker.wake_by_ref(); // already scheduled: nothing more
        let mut queue = queued();
        assert_eq!(queue.len(), 1);
        let (step, yielded) = queue.pop().unwrap();
        assert!(!yielded, "woken from outside its step");
        assert!(!step.run());
        assert_eq!(output(join), Some(2));
    }

    /// An inline scheduler runs another task's step inside this one's: the self-wake mark is
    /// per step, restored when the inner step ends.
    #[test]
    fn a_nested_step_keeps_the_outer_task_s_self_wake() {
        let (inner_first, inner_join, _) = spawn_here(yielding(0, |_| ()));
        let inner_first = std::sync::Mutex::new(Some(inner_first));
        let mut polls = 0;
        let (outer_first, outer_join, _) = spawn_here(poll_fn(move |cx| {
            polls += 1;
            if polls == 1 {
                cx.waker().wake_by_ref(); // before the nested step
                if let Some(inner) = inner_first.lock().unwrap().take() {
                    assert!(!inner.run(), "the inner task did not wake itself");
                }
                return Poll::Pending;
            }
            Poll::Ready(polls)
        }));
        assert_eq!(run_to_completion(outer_first), 2);
        assert_eq!(output(outer_join), Some(2));
        assert_eq!(output(inner_join), Some(1));
    }

    /// spindle's task futures catch their panics; a future that does not gets its task closed
    /// by the cell, and the panic goes on to the step's caller.
    #[test]
    fn a_poll_that_unwinds_closes_the_task() {
        let (first, join, _) = spawn_here(poll_fn(|_| -> Poll<()> { panic!("boom") }));
        let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| first.run()));
        assert!(ran.is_err(), "the panic reaches the caller");
        assert!(join.is_finished());
        assert!(queued().is_empty());
        assert_eq!(output(join), None);
        // The step's mark is gone: a wake on this thread is nobody's self-wake.
        assert_eq!(super::raw::running_here(), 0);
    }

    #[test]
    fn dropping_a_step_closes_the_task_without_output() {
        let (first, join, _) = spawn_here(yielding(0, |_| ()));
        drop(first);
        assert!(join.is_finished());
        assert_eq!(output(join), None);
    }

    /// A step that ends idle with nobody left to wake the task (no waker kept, the handle
    /// detached) closes it and schedules it once more, so that its future is dropped by its
    /// scheduler; the cell is not freed with the future still in it.
    #[test]
    fn a_pending_task_nobody_can_wake_has_its_future_dropped() {
        let captured = std::sync::Arc::new(());
        let held = captured.clone();
        let (first, join, _) = spawn_here(poll_fn(move |_| {
            let _ = &held;
            Poll::<()>::Pending
        }));
        join.detach();
        assert!(!first.run());
        let mut queue = queued();
        assert_eq!(queue.len(), 1, "scheduled once more, to be closed");
        let (last, _) = queue.pop().unwrap();
        assert!(!last.run());
        assert!(queued().is_empty());
        assert_eq!(
            std::sync::Arc::strong_count(&captured),
            1,
            "the future was dropped"
        );
    }

    #[test]
    fn a_detached_task_runs_on_and_drops_its_output() {
        let counter = std::sync::Arc::new(());
        let held = counter.clone();
        let (first, join, _) = spawn_here(async move { held });
        join.detach();
        assert!(!first.run());
        assert_eq!(std::sync::Arc::strong_count(&counter), 1, "output dropped");
    }
}
