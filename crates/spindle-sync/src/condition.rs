//! [`Condition`]: asyncio's `Condition`, its own [`Lock`] plus a FIFO of waiters.
//!
//! Why our own list: `notify(n)` wakes exactly the `n` longest waiters, and a waiter cancelled
//! after it was notified but before it ran passes its notification to the next waiter
//! (asyncio 3.13's rule), so a notification is never lost to a cancellation. A waiter joins
//! the line *before* it releases the lock, so a `notify` made by the next lock holder cannot
//! miss it.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};

use crate::lock::{Lock, LockGuard};
use crate::waiters::{Left, WaitList, Wakers};

/// asyncio's `Condition`: tasks wait, with the lock released, until another task holding the
/// lock notifies them. Rust's idiom puts the lock-held rule in the types: `wait`,
/// `wait_for`, `notify` and `notify_all` are methods of the guard that [`lock`](Self::lock)
/// returns, so none of them can be called without the lock (asyncio's `RuntimeError`).
///
/// A `wait` cancelled while it waits leaves the line (after being notified, it passes the
/// notification on) and does not take the lock back: the lock is released while waiting, and
/// Rust has no async drop to reacquire it in (asyncio reacquires before it re-raises).
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use spindle_sync::Condition;
///
/// let cond = Arc::new(Condition::new());
/// let ready = Arc::new(AtomicBool::new(false));
/// let (c, r) = (cond.clone(), ready.clone());
/// spindle_policy::run(async move {
///     spindle_loop::spawn_local(async move {
///         let guard = c.lock().await;
///         r.store(true, Ordering::SeqCst);
///         guard.notify_all();
///     })
///     .unwrap();
///     let guard = cond.lock().await;
///     let _guard = guard.wait_for(|| ready.load(Ordering::SeqCst)).await;
/// })
/// .unwrap();
/// ```
pub struct Condition {
    lock: Lock,
    waiters: Mutex<WaitList<(), ()>>,
}

impl Condition {
    /// A condition with its own lock.
    ///
    /// ```
    /// let cond = spindle_sync::Condition::new();
    /// assert!(!cond.locked());
    /// ```
    pub const fn new() -> Condition {
        Condition {
            lock: Lock::new(),
            waiters: Mutex::new(WaitList::new()),
        }
    }

    fn waiters(&self) -> MutexGuard<'_, WaitList<(), ()>> {
        self.waiters.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes the condition's lock (FIFO, as [`Lock::lock`]).
    ///
    /// ```
    /// static COND: spindle_sync::Condition = spindle_sync::Condition::new();
    /// spindle_policy::run(async {
    ///     let _guard = COND.lock().await;
    ///     assert!(COND.locked());
    /// })
    /// .unwrap();
    /// ```
    pub async fn lock(&self) -> ConditionGuard<'_> {
        ConditionGuard {
            cond: self,
            guard: self.lock.lock().await,
        }
    }

    /// Whether the condition's lock is held.
    ///
    /// ```
    /// assert!(!spindle_sync::Condition::default().locked());
    /// ```
    pub fn locked(&self) -> bool {
        self.lock.locked()
    }

    /// Wakes up to `n` of the longest waiters.
    fn notify_n(&self, n: usize) {
        let mut wakers = Wakers::new();
        let mut waiters = self.waiters();
        for _ in 0..n {
            match waiters.take_front() {
                Some((key, ())) => wakers.push(waiters.grant(key, ())),
                None => break,
            }
        }
    }
}

impl Default for Condition {
    fn default() -> Self {
        Condition::new()
    }
}

impl fmt::Debug for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Condition")
            .field("locked", &self.locked())
            .field("waiters", &self.waiters().len())
            .finish()
    }
}

/// The lock of a [`Condition`], held; dropping it releases the lock.
///
/// ```
/// static COND: spindle_sync::Condition = spindle_sync::Condition::new();
/// spindle_policy::run(async {
///     let guard = COND.lock().await;
///     guard.notify(1); // nobody waits: a no-op
/// })
/// .unwrap();
/// ```
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct ConditionGuard<'a> {
    cond: &'a Condition,
    guard: LockGuard<'a>,
}

impl<'a> ConditionGuard<'a> {
    /// Releases the lock, waits to be notified, takes the lock back (asyncio's `wait()`).
    ///
    /// ```
    /// use std::sync::Arc;
    /// let cond = Arc::new(spindle_sync::Condition::new());
    /// let c = cond.clone();
    /// spindle_policy::run(async move {
    ///     let guard = cond.lock().await;
    ///     spindle_loop::spawn_local(async move { c.lock().await.notify(1) }).unwrap();
    ///     let _guard = guard.wait().await;
    /// })
    /// .unwrap();
    /// ```
    pub async fn wait(self) -> ConditionGuard<'a> {
        let cond = self.cond;
        let key = cond.waiters().push((), None);
        let notified = Notified {
            cond,
            key: Some(key),
        };
        drop(self.guard);
        notified.await;
        cond.lock().await
    }

    /// Waits until `predicate()` is true, checking it with the lock held first and after each
    /// notification (asyncio's `wait_for`).
    ///
    /// ```
    /// static COND: spindle_sync::Condition = spindle_sync::Condition::new();
    /// spindle_policy::run(async {
    ///     let _guard = COND.lock().await.wait_for(|| true).await;
    /// })
    /// .unwrap();
    /// ```
    pub async fn wait_for(mut self, mut predicate: impl FnMut() -> bool) -> ConditionGuard<'a> {
        while !predicate() {
            self = self.wait().await;
        }
        self
    }

    /// Wakes up to `n` waiters, longest-waiting first.
    ///
    /// ```
    /// static COND: spindle_sync::Condition = spindle_sync::Condition::new();
    /// spindle_policy::run(async { COND.lock().await.notify(2) }).unwrap();
    /// ```
    pub fn notify(&self, n: usize) {
        self.cond.notify_n(n);
    }

    /// Wakes every waiter.
    ///
    /// ```
    /// static COND: spindle_sync::Condition = spindle_sync::Condition::new();
    /// spindle_policy::run(async { COND.lock().await.notify_all() }).unwrap();
    /// ```
    pub fn notify_all(&self) {
        self.cond.notify_n(usize::MAX);
    }
}

impl fmt::Debug for ConditionGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConditionGuard").finish_non_exhaustive()
    }
}

/// A waiter of the condition, registered before the lock was released.
struct Notified<'a> {
    cond: &'a Condition,
    key: Option<usize>,
}

impl Future for Notified<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let Some(key) = self.key else {
            return Poll::Ready(());
        };
        match self.cond.waiters().poll(key, cx.waker()) {
            Some(()) => {
                self.key = None;
                Poll::Ready(())
            }
            None => Poll::Pending,
        }
    }
}

impl Drop for Notified<'_> {
    fn drop(&mut self) {
        let Some(key) = self.key.take() else { return };
        let granted = matches!(self.cond.waiters().remove(key), Left::Granted(()));
        if granted {
            // Notified, then cancelled before it ran: the notification goes to the next one.
            self.cond.notify_n(1);
        }
    }
}
