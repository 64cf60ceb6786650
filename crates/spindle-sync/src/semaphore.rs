//! [`Semaphore`] and [`BoundedSemaphore`]: asyncio's, FIFO, with permits as guards.

use std::fmt;

use crate::error::TooManyReleases;
use crate::permits::Permits;

/// asyncio's `Semaphore`: a counter of permits; `acquire` waits (FIFO) while none is free.
/// `async with sem:` is `let _permit = sem.acquire().await;`. asyncio's bare
/// `await sem.acquire()` ... `sem.release()` is [`SemaphorePermit::forget`] plus
/// [`Semaphore::release`]. An acquire cancelled while it waits leaves the line; one cancelled
/// after a permit was handed to it passes the permit on.
///
/// ```
/// use spindle_sync::Semaphore;
///
/// let sem = Semaphore::new(2);
/// let a = sem.try_acquire().unwrap();
/// let _b = sem.try_acquire().unwrap();
/// assert!(sem.locked());
/// drop(a);
/// assert_eq!(sem.available_permits(), 1);
/// sem.release(); // asyncio allows releasing more than was acquired
/// assert_eq!(sem.available_permits(), 2);
/// ```
pub struct Semaphore {
    permits: Permits,
}

impl Semaphore {
    /// A semaphore with `value` permits.
    ///
    /// ```
    /// assert_eq!(spindle_sync::Semaphore::new(3).available_permits(), 3);
    /// ```
    pub const fn new(value: usize) -> Semaphore {
        Semaphore {
            permits: Permits::new(value),
        }
    }

    /// Waits for a permit (FIFO).
    ///
    /// ```
    /// static SEM: spindle_sync::Semaphore = spindle_sync::Semaphore::new(1);
    /// spindle_policy::run(async {
    ///     let permit = SEM.acquire().await;
    ///     assert!(SEM.locked());
    ///     drop(permit);
    /// })
    /// .unwrap();
    /// ```
    pub async fn acquire(&self) -> SemaphorePermit<'_> {
        self.permits.acquire().await;
        SemaphorePermit {
            permits: &self.permits,
        }
    }

    /// Takes a permit if one is free and nobody waits.
    ///
    /// ```
    /// let sem = spindle_sync::Semaphore::new(1);
    /// let _permit = sem.try_acquire().unwrap();
    /// assert!(sem.try_acquire().is_none());
    /// ```
    pub fn try_acquire(&self) -> Option<SemaphorePermit<'_>> {
        self.permits.try_acquire().then(|| SemaphorePermit {
            permits: &self.permits,
        })
    }

    /// Adds a permit, handing it to the first waiter if there is one.
    ///
    /// ```
    /// let sem = spindle_sync::Semaphore::new(0);
    /// sem.release();
    /// assert_eq!(sem.available_permits(), 1);
    /// ```
    pub fn release(&self) {
        // Unbounded: never refused.
        let _ = self.permits.release(None);
    }

    /// Whether an acquire now would wait (asyncio's `locked()`).
    ///
    /// ```
    /// assert!(spindle_sync::Semaphore::new(0).locked());
    /// ```
    pub fn locked(&self) -> bool {
        self.permits.locked()
    }

    /// Free permits now.
    ///
    /// ```
    /// assert_eq!(spindle_sync::Semaphore::new(5).available_permits(), 5);
    /// ```
    pub fn available_permits(&self) -> usize {
        self.permits.available()
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore")
            .field("available", &self.permits.available())
            .field("waiters", &self.permits.waiting())
            .finish()
    }
}

/// asyncio's `BoundedSemaphore`: a [`Semaphore`] whose [`release`](Self::release) refuses to
/// raise the number of permits above the initial value ([`TooManyReleases`], asyncio's
/// `ValueError`). Permits returned by dropping their guard are never refused.
///
/// ```
/// use spindle_sync::BoundedSemaphore;
///
/// let sem = BoundedSemaphore::new(1);
/// assert!(sem.release().is_err()); // nothing was acquired
/// sem.try_acquire().unwrap().forget(); // asyncio's bare acquire()
/// assert!(sem.release().is_ok());
/// ```
pub struct BoundedSemaphore {
    semaphore: Semaphore,
    bound: usize,
}

impl BoundedSemaphore {
    /// A bounded semaphore with `value` permits, never more.
    ///
    /// ```
    /// assert_eq!(spindle_sync::BoundedSemaphore::new(2).available_permits(), 2);
    /// ```
    pub const fn new(value: usize) -> BoundedSemaphore {
        BoundedSemaphore {
            semaphore: Semaphore::new(value),
            bound: value,
        }
    }

    /// Waits for a permit (FIFO).
    ///
    /// ```
    /// static SEM: spindle_sync::BoundedSemaphore = spindle_sync::BoundedSemaphore::new(1);
    /// spindle_policy::run(async { drop(SEM.acquire().await) }).unwrap();
    /// ```
    pub async fn acquire(&self) -> SemaphorePermit<'_> {
        self.semaphore.acquire().await
    }

    /// Takes a permit if one is free and nobody waits.
    ///
    /// ```
    /// let sem = spindle_sync::BoundedSemaphore::new(1);
    /// assert!(sem.try_acquire().is_some());
    /// ```
    pub fn try_acquire(&self) -> Option<SemaphorePermit<'_>> {
        self.semaphore.try_acquire()
    }

    /// Gives back a permit taken with a forgotten guard; refused when every permit is already
    /// free or out in a guard (the count would exceed the initial value).
    ///
    /// ```
    /// let sem = spindle_sync::BoundedSemaphore::new(1);
    /// let err = sem.release().unwrap_err();
    /// assert_eq!(err.bound(), 1);
    /// ```
    pub fn release(&self) -> Result<(), TooManyReleases> {
        self.semaphore
            .permits
            .release(Some(self.bound))
            .map_err(TooManyReleases::new)
    }

    /// Whether an acquire now would wait.
    ///
    /// ```
    /// assert!(spindle_sync::BoundedSemaphore::new(0).locked());
    /// ```
    pub fn locked(&self) -> bool {
        self.semaphore.locked()
    }

    /// Free permits now.
    ///
    /// ```
    /// assert_eq!(spindle_sync::BoundedSemaphore::new(4).available_permits(), 4);
    /// ```
    pub fn available_permits(&self) -> usize {
        self.semaphore.available_permits()
    }
}

impl fmt::Debug for BoundedSemaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoundedSemaphore")
            .field("available", &self.semaphore.available_permits())
            .field("bound", &self.bound)
            .field("waiters", &self.semaphore.permits.waiting())
            .finish()
    }
}

/// A permit of a [`Semaphore`] or [`BoundedSemaphore`]; dropping it gives the permit back.
///
/// ```
/// let sem = spindle_sync::Semaphore::new(1);
/// let permit = sem.try_acquire().unwrap();
/// drop(permit);
/// assert_eq!(sem.available_permits(), 1);
/// ```
#[must_use = "the permit is given back as soon as it is dropped"]
pub struct SemaphorePermit<'a> {
    permits: &'a Permits,
}

impl SemaphorePermit<'_> {
    /// Keeps the permit taken without a guard: it comes back only through an explicit
    /// `release()` (asyncio's acquire/release pairs).
    ///
    /// ```
    /// let sem = spindle_sync::Semaphore::new(1);
    /// sem.try_acquire().unwrap().forget();
    /// assert_eq!(sem.available_permits(), 0);
    /// sem.release();
    /// assert_eq!(sem.available_permits(), 1);
    /// ```
    pub fn forget(self) {
        self.permits.forget_held();
        std::mem::forget(self);
    }
}

impl Drop for SemaphorePermit<'_> {
    fn drop(&mut self) {
        self.permits.release_held();
    }
}

impl fmt::Debug for SemaphorePermit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SemaphorePermit").finish_non_exhaustive()
    }
}
