//! [`Runnable`]: a task's next step, owned by whoever must run it.

use std::fmt;
use std::ptr::NonNull;
use std::task::Waker;

use super::{Header, SCHEDULED};
use crate::sync::Ordering;
use crate::task::TaskHeader;

/// A task's next step: exactly one exists while the task is `SCHEDULED`. Running it polls the
/// task once; dropping it closes the task and drops its future on the dropping thread.
pub(crate) struct Runnable {
    ptr: NonNull<()>,
}

// SAFETY: a runnable moves between threads by design (queues, inboxes, stealing); for a local
// task, `spawn_unchecked`'s contract keeps it on its thread (see the module docs of `cell`).
unsafe impl Send for Runnable {}
// SAFETY: `&Runnable` only reads the header, which is `Sync`.
unsafe impl Sync for Runnable {}

impl Runnable {
    /// # Safety
    ///
    /// `ptr` is a cell's address that comes with a step's reference and its SCHEDULED bit (from
    /// the cell itself, or from [`into_raw`](Self::into_raw)).
    #[inline]
    pub(crate) unsafe fn from_raw(ptr: NonNull<()>) -> Self {
        Runnable { ptr }
    }

    /// The cell's address; the step's ownership goes with it (see [`from_raw`](Self::from_raw)).
    #[inline]
    pub(crate) fn into_raw(self) -> NonNull<()> {
        let ptr = self.ptr;
        std::mem::forget(self);
        ptr
    }

    #[inline]
    fn header(&self) -> &Header {
        // SAFETY: the step's reference keeps the cell alive.
        unsafe { super::header_at(self.ptr.as_ptr()) }
    }

    /// The task's metadata.
    #[inline]
    pub(crate) fn metadata(&self) -> &TaskHeader {
        &self.header().meta
    }

    /// Runs the step; returns whether the task was woken during it (and so scheduled again).
    #[inline]
    pub(crate) fn run(self) -> bool {
        let ptr = self.into_raw().as_ptr() as *const ();
        // SAFETY: the step's ownership passes to `run`, which ends or reschedules it.
        unsafe { (super::header_at(ptr).vtable.run)(ptr, false) }
    }

    /// Runs the step; if the task was woken during it (a yield, most often), returns its next
    /// step instead of scheduling it: a scheduler's own yield path, which knows where the step
    /// goes without asking its `Schedule`.
    #[inline]
    pub(crate) fn run_handing_back(self) -> Option<Runnable> {
        let ptr = self.into_raw();
        // SAFETY: the step's ownership passes to `run`; with `hand_back`, a rescheduled task's
        // next step (SCHEDULED and the step's reference) comes back with `true`.
        let woken = unsafe { (super::header_at(ptr.as_ptr()).vtable.run)(ptr.as_ptr(), true) };
        // SAFETY: see above: `ptr` comes with the next step's ownership.
        woken.then(|| unsafe { Runnable::from_raw(ptr) })
    }

    /// A new waker of the task (one more reference).
    pub(crate) fn waker(&self) -> Waker {
        let ptr = self.ptr.as_ptr() as *const ();
        // SAFETY: the cell is alive; `clone_waker` takes a reference for the new waker.
        unsafe { Waker::from_raw((self.header().vtable.clone_waker)(ptr)) }
    }
}

impl Drop for Runnable {
    fn drop(&mut self) {
        let ptr = self.ptr.as_ptr() as *const ();
        let header = self.header();
        // Closed first, so no wake schedules the task again.
        header.close();
        // SAFETY: a runnable means the future is present and this step owns it; then the
        // step's reference is given up (`header` is not used after that).
        unsafe {
            (header.vtable.drop_future)(ptr);
            let state = header.state.fetch_and(!SCHEDULED, Ordering::AcqRel);
            super::release_step(ptr, state);
        }
    }
}

impl fmt::Debug for Runnable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runnable")
            .field("task", &self.metadata().id())
            .finish()
    }
}
