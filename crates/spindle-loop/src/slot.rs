//! [`RunnableSlot`]: one [`Runnable`] that its owner replaces and takes, and that any other
//! thread may take too.
//!
//! A runtime worker keeps the task it just spawned or woke here and runs it next (its "LIFO
//! slot"). A plain cell would be cheaper, but a task in it could not be stolen: if the worker
//! then blocks in a long synchronous step, that task would wait for it. So the slot is one
//! atomic pointer; owner and thieves both `swap` it, so each `Runnable` put in is taken out by
//! exactly one of them (or dropped with the slot).
//!
//! # Invariant
//!
//! `ptr` is null or a pointer from `cell::Runnable::into_raw` that nobody else owns: it is
//! put in by `replace` (which takes ownership of a `Runnable`) and leaves only through a `swap`
//! that returns it to exactly one caller, which turns it back into the `Runnable`.

use std::ptr::{self, NonNull};

use crate::stealable::Runnable;
use crate::sync::{AtomicPtr, Ordering};
use crate::task::TaskRunnable;

/// A one-task slot that any thread may take from (see the module docs).
///
/// ```
/// use std::sync::Arc;
/// use spindle_loop::{spawn_stealable, Inline, RunnableSlot};
///
/// let scheduler = Arc::new(Inline::default());
/// let (runnable, task) = spawn_stealable(async { 3 }, &scheduler).unwrap();
/// let slot = Arc::new(RunnableSlot::new());
/// assert!(slot.replace(runnable).is_none());
/// let thief = slot.clone();
/// std::thread::spawn(move || thief.take().unwrap().run()).join().unwrap();
/// assert!(slot.take().is_none()); // the thief had it
/// assert!(task.done());
/// ```
pub struct RunnableSlot {
    ptr: AtomicPtr<()>,
}

impl RunnableSlot {
    /// An empty slot.
    ///
    /// ```
    /// assert!(!spindle_loop::RunnableSlot::new().is_occupied());
    /// ```
    pub fn new() -> Self {
        RunnableSlot {
            ptr: AtomicPtr::new(ptr::null_mut()),
        }
    }

    /// Puts `runnable` in; returns the one it displaced, if any.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use spindle_loop::{spawn_stealable, Inline, RunnableSlot};
    /// # let scheduler = Arc::new(Inline::default());
    /// let (first, _a) = spawn_stealable(async {}, &scheduler).unwrap();
    /// let (second, _b) = spawn_stealable(async {}, &scheduler).unwrap();
    /// let slot = RunnableSlot::new();
    /// assert!(slot.replace(first).is_none());
    /// assert!(slot.replace(second).is_some()); // `first` comes back
    /// ```
    #[inline]
    pub fn replace(&self, runnable: Runnable) -> Option<Runnable> {
        let new = runnable.0.into_raw().as_ptr();
        // AcqRel: Release publishes the task we put in to whoever swaps it out; Acquire makes
        // the displaced one's task ours.
        Self::from_raw(self.ptr.swap(new, Ordering::AcqRel))
    }

    /// Takes the runnable out, if there is one (any thread).
    ///
    /// ```
    /// assert!(spindle_loop::RunnableSlot::new().take().is_none());
    /// ```
    #[inline]
    pub fn take(&self) -> Option<Runnable> {
        // A load first: an empty slot (the common case for a thief) costs no locked instruction.
        if self.ptr.load(Ordering::Relaxed).is_null() {
            return None;
        }
        // Acquire pairs with the Release of the `replace` that put it in.
        Self::from_raw(self.ptr.swap(ptr::null_mut(), Ordering::AcqRel))
    }

    /// Whether a runnable is in the slot (a snapshot).
    ///
    /// ```
    /// assert!(!spindle_loop::RunnableSlot::new().is_occupied());
    /// ```
    #[inline]
    pub fn is_occupied(&self) -> bool {
        !self.ptr.load(Ordering::Relaxed).is_null()
    }

    #[inline]
    fn from_raw(ptr: *mut ()) -> Option<Runnable> {
        let ptr = NonNull::new(ptr)?;
        // SAFETY: a non-null value of `ptr` came from `into_raw` in `replace`, and the swap that
        // returned it to us removed it from the slot, so we are its only owner (module
        // invariant): turning it back into the `Runnable` restores exactly that ownership.
        Some(Runnable(unsafe { TaskRunnable::from_raw(ptr) }))
    }
}

impl Default for RunnableSlot {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for RunnableSlot {
    fn drop(&mut self) {
        drop(self.take());
    }
}

impl std::fmt::Debug for RunnableSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunnableSlot")
            .field("occupied", &self.is_occupied())
            .finish()
    }
}
