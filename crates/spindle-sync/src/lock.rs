//! [`Lock`]: asyncio's `Lock`, FIFO, released by dropping its guard.

use std::fmt;

use crate::permits::Permits;

/// asyncio's `Lock`: a mutual-exclusion lock for tasks, FIFO-fair (the longest waiter gets it
/// next, a newcomer never takes it ahead of a waiter), `Send + Sync`, usable from local tasks,
/// stolen tasks and across the loops of a runtime. `async with lock:` is
/// `let _guard = lock.lock().await;`; the guard releases it when dropped.
///
/// A `lock()` that is cancelled while it waits leaves the line; one cancelled after the lock
/// was handed to it passes the lock on to the next waiter.
///
/// Like asyncio's, it guards no data: keep the data beside it (for example in a field that
/// only the lock holder touches, or a `std::sync::Mutex` that is never held across an
/// `.await`).
///
/// ```
/// use std::sync::Arc;
/// use spindle_sync::Lock;
///
/// let lock = Arc::new(Lock::new());
/// spindle_policy::run(async move {
///     let guard = lock.lock().await;
///     assert!(lock.locked());
///     assert!(lock.try_lock().is_none());
///     drop(guard);
///     assert!(!lock.locked());
/// })
/// .unwrap();
/// ```
pub struct Lock {
    permits: Permits,
}

impl Lock {
    /// An unlocked lock.
    ///
    /// ```
    /// static LOCK: spindle_sync::Lock = spindle_sync::Lock::new();
    /// assert!(!LOCK.locked());
    /// ```
    pub const fn new() -> Lock {
        Lock {
            permits: Permits::new(1),
        }
    }

    /// Waits for the lock (FIFO) and returns its guard (asyncio's `await lock.acquire()`).
    ///
    /// ```
    /// static LOCK: spindle_sync::Lock = spindle_sync::Lock::new();
    /// spindle_policy::run(async {
    ///     let _guard = LOCK.lock().await;
    ///     assert!(LOCK.locked());
    /// })
    /// .unwrap();
    /// assert!(!LOCK.locked());
    /// ```
    pub async fn lock(&self) -> LockGuard<'_> {
        self.permits.acquire().await;
        LockGuard { lock: self }
    }

    /// Takes the lock if it is free and nobody waits for it.
    ///
    /// ```
    /// let lock = spindle_sync::Lock::new();
    /// let guard = lock.try_lock().unwrap();
    /// assert!(lock.try_lock().is_none());
    /// drop(guard);
    /// ```
    pub fn try_lock(&self) -> Option<LockGuard<'_>> {
        self.permits.try_acquire().then(|| LockGuard { lock: self })
    }

    /// Whether the lock is held (asyncio's `locked()`).
    ///
    /// ```
    /// let lock = spindle_sync::Lock::new();
    /// assert!(!lock.locked());
    /// ```
    pub fn locked(&self) -> bool {
        self.permits.locked()
    }
}

impl Default for Lock {
    fn default() -> Self {
        Lock::new()
    }
}

impl fmt::Debug for Lock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lock")
            .field("locked", &self.locked())
            .field("waiters", &self.permits.waiting())
            .finish()
    }
}

/// Holds a [`Lock`]; dropping it releases the lock to the next waiter.
///
/// ```
/// let lock = spindle_sync::Lock::new();
/// let guard = lock.try_lock().unwrap();
/// drop(guard); // asyncio's lock.release()
/// assert!(!lock.locked());
/// ```
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct LockGuard<'a> {
    lock: &'a Lock,
}

impl LockGuard<'_> {
    /// The lock this guard holds.
    ///
    /// ```
    /// let lock = spindle_sync::Lock::new();
    /// let guard = lock.try_lock().unwrap();
    /// assert!(std::ptr::eq(guard.lock(), &lock));
    /// ```
    pub fn lock(&self) -> &Lock {
        self.lock
    }
}

impl Drop for LockGuard<'_> {
    fn drop(&mut self) {
        self.lock.permits.release_held();
    }
}

impl fmt::Debug for LockGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockGuard").finish_non_exhaustive()
    }
}
