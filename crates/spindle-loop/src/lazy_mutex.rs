//! A mutex allocated on first use: one pointer wide until something is stored.
//!
//! A task header carries state that most tasks never touch (a name, done-callbacks, the task
//! it awaits, a panic message). Inline, its `Mutex` cost 40 of the header's bytes, moved into
//! every task's allocation; behind this cell they cost 8, and the box appears only for a task
//! that uses one of them.
//!
//! Protocol: the pointer goes from null to a box exactly once (a compare-exchange; the loser
//! frees its own box and takes the winner's) and back to null only in `Drop`, which has
//! `&mut self`. The release on a successful install pairs with the acquire load of every later
//! reader, so a reader that sees the pointer sees the initialised `Mutex` behind it.

use std::ops::DerefMut;

use crate::sync::{AtomicPtr, Mutex, Ordering};

/// See the module docs. Under `--cfg loom` its atomic and mutex are loom's (the install race is
/// checked by `loom-tests/tests/lazy_mutex.rs`).
pub(crate) struct LazyMutex<T>(AtomicPtr<Mutex<T>>);

impl<T: Default> LazyMutex<T> {
    pub(crate) fn new() -> Self {
        LazyMutex(AtomicPtr::new(std::ptr::null_mut()))
    }

    /// Locks the value, allocating it (as `T::default()`) if this is the first use.
    pub(crate) fn lock(&self) -> impl DerefMut<Target = T> + '_ {
        let mut current = self.0.load(Ordering::Acquire);
        if current.is_null() {
            let fresh = Box::into_raw(Box::new(Mutex::new(T::default())));
            current = match self.0.compare_exchange(
                std::ptr::null_mut(),
                fresh,
                // Release: publishes the box's contents to the acquire loads of other users.
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => fresh,
                Err(winner) => {
                    // SAFETY: `fresh` came from `Box::into_raw` just above and was never
                    // published (the exchange failed), so this is its only owner.
                    drop(unsafe { Box::from_raw(fresh) });
                    winner
                }
            };
        }
        // SAFETY: a non-null pointer here was installed by `lock` from `Box::into_raw` and is
        // freed only in `Drop` (which needs `&mut self`, so no borrow of `self` is alive); the
        // acquire load or exchange above makes its initialisation visible.
        Self::guard(unsafe { &*current })
    }

    /// Locks the value if it was ever allocated; `None` (no allocation) otherwise.
    pub(crate) fn lock_if_used(&self) -> Option<impl DerefMut<Target = T> + '_> {
        let current = self.0.load(Ordering::Acquire);
        // SAFETY: as in `lock`: installed once from a box, freed only with `&mut self`.
        (!current.is_null()).then(|| Self::guard(unsafe { &*current }))
    }

    fn guard(mutex: &Mutex<T>) -> impl DerefMut<Target = T> + '_ {
        // Callers keep the value consistent across panics (plain field assignments), so a
        // poisoned lock is still usable.
        mutex.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<T> Drop for LazyMutex<T> {
    #[inline]
    fn drop(&mut self) {
        // `&mut self`: no other access; a plain load (loom's atomics have no `get_mut`).
        let current = self.0.load(Ordering::Relaxed);
        if !current.is_null() {
            // SAFETY: installed from `Box::into_raw` by `lock`; `&mut self` means no other
            // reference to it remains, and the pointer is not used again.
            drop(unsafe { Box::from_raw(current) });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::LazyMutex;
    use std::sync::Arc;

    #[test]
    fn allocates_on_first_lock_only() {
        let cell = LazyMutex::<Vec<u32>>::new();
        assert!(cell.lock_if_used().is_none());
        cell.lock().push(7);
        assert_eq!(*cell.lock_if_used().unwrap(), vec![7]);
    }

    #[test]
    fn racing_first_locks_share_one_value() {
        let cell = Arc::new(LazyMutex::<Vec<u32>>::new());
        let threads: Vec<_> = (0..4)
            .map(|i| {
                let cell = cell.clone();
                std::thread::spawn(move || cell.lock().push(i))
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let mut seen = cell.lock().clone();
        seen.sort();
        assert_eq!(seen, vec![0, 1, 2, 3]);
    }

    #[test]
    fn drop_frees_the_value() {
        let value = Arc::new(());
        let cell = LazyMutex::<Option<Arc<()>>>::new();
        *cell.lock() = Some(value.clone());
        assert_eq!(Arc::strong_count(&value), 2);
        drop(cell);
        assert_eq!(Arc::strong_count(&value), 1);
    }
}
