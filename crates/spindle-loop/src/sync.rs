//! Every cross-thread primitive the loop uses, from one place, so that `--cfg loom` swaps in
//! loom's model-checked versions.

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{
    fence, AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering,
};

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{
    fence, AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering,
};
#[cfg(not(loom))]
pub(crate) use std::sync::{Condvar, Mutex};

#[cfg(loom)]
pub(crate) use loom::sync::{Condvar, Mutex};

/// A waker that one side sets and another side wakes, from any threads (a `Send` sleep's
/// timer, `wait`'s done-callback). Under loom its lock is loom's: it is part of the handshakes
/// the models check.
#[derive(Debug)]
pub(crate) struct WakerCell(Mutex<Option<std::task::Waker>>);

impl WakerCell {
    pub(crate) fn new(waker: &std::task::Waker) -> Self {
        WakerCell(Mutex::new(Some(waker.clone())))
    }

    fn lock(&self) -> impl std::ops::DerefMut<Target = Option<std::task::Waker>> + '_ {
        // Only `Option` assignments happen under the lock: a poisoned one is still consistent.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes `waker` the one to wake, unless the current one already wakes the same task.
    pub(crate) fn register(&self, waker: &std::task::Waker) {
        self.register_if(waker, || true);
    }

    /// Takes the waker out (to wake it once, or to drop it here); the caller uses it after the
    /// lock is released.
    pub(crate) fn take(&self) -> Option<std::task::Waker> {
        self.lock().take()
    }

    /// A cell with no waker yet (a timer slot of the loop's slab before its first sleep).
    pub(crate) fn empty() -> Self {
        WakerCell(Mutex::new(None))
    }

    /// Makes `waker` the one to wake, whatever was there; returns the old one for the caller
    /// to drop after the lock.
    pub(crate) fn replace(&self, waker: &std::task::Waker) -> Option<std::task::Waker> {
        self.lock().replace(waker.clone())
    }

    /// [`register`](Self::register), but only if `still()` holds, checked under the lock
    /// (a reused timer slot: the check and the store are one step against the loop's
    /// release, which takes the waker under the same lock). Returns whether it registered.
    pub(crate) fn register_if(
        &self,
        waker: &std::task::Waker,
        still: impl FnOnce() -> bool,
    ) -> bool {
        let mut slot = self.lock();
        if !still() {
            return false;
        }
        if slot
            .as_ref()
            .is_some_and(|current| current.will_wake(waker))
        {
            return true;
        }
        let old = slot.replace(waker.clone());
        drop(slot);
        // Dropped after the lock: a waker's drop may run arbitrary code (a task's destructor).
        drop(old);
        true
    }

    /// As [`take`](Self::take), but only if `still()` holds, checked under the lock.
    pub(crate) fn take_if(&self, still: impl FnOnce() -> bool) -> Option<std::task::Waker> {
        let mut slot = self.lock();
        if still() {
            slot.take()
        } else {
            None
        }
    }

    /// Where the current waker's data points (the loop's prefetch of what a wake will touch),
    /// if the lock is free right now and a waker is there; only an address, never
    /// dereferenced.
    pub(crate) fn peek_data(&self) -> Option<*const ()> {
        let slot = self.0.try_lock().ok()?;
        slot.as_ref().map(std::task::Waker::data)
    }

    /// Wakes the waker and keeps it, for more wake-ups to come.
    pub(crate) fn wake_by_ref(&self) {
        let waker = self.lock().clone();
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// Yields while waiting for a short critical section on another thread to end.
pub(crate) fn spin_wait() {
    #[cfg(not(loom))]
    std::thread::yield_now();
    #[cfg(loom)]
    loom::thread::yield_now();
}

/// One pause in a spin on another thread's next store (a claimed slot being written). Under
/// loom a yield, which is how a model lets the other thread make progress.
#[inline]
pub(crate) fn spin_hint() {
    #[cfg(not(loom))]
    std::hint::spin_loop();
    #[cfg(loom)]
    loom::thread::yield_now();
}

#[cfg(loom)]
pub(crate) use loom::cell::UnsafeCell;

/// `std`'s `UnsafeCell` behind loom's access API (`with` / `with_mut`), so code written for
/// loom's checked cell compiles to plain pointer access.
#[cfg(not(loom))]
#[derive(Debug)]
pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

#[cfg(not(loom))]
impl<T> UnsafeCell<T> {
    pub(crate) const fn new(value: T) -> Self {
        UnsafeCell(std::cell::UnsafeCell::new(value))
    }

    #[inline]
    pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }

    #[inline]
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}
