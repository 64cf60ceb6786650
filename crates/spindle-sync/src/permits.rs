//! The FIFO permit counter under [`Lock`](crate::Lock), [`Semaphore`](crate::Semaphore) and
//! [`BoundedSemaphore`](crate::BoundedSemaphore): asyncio's semaphore, with hand-off.
//!
//! Why our own and not `async-lock`: `async_lock::Mutex` and `Semaphore` let a newcomer take
//! a released permit ahead of the tasks already waiting (barging), and a woken waiter races
//! for it again. asyncio's `Lock` and `Semaphore` are FIFO: a newcomer takes a permit only
//! when nobody waits, and a release hands its permit to the first waiter, which owns it from
//! then on.
//!
//! Invariants (under the mutex): a waiter is in line only while `available == 0` (a release
//! with someone in line grants instead of counting); `held` counts permits out in guards, so a
//! bounded semaphore can tell an extra release from a returned permit; a waiter dropped after
//! its grant releases the granted permit again, so no permit is ever lost.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};

use crate::waiters::{Left, WaitList, Wakers};

struct State {
    available: usize,
    /// Permits out in guards (acquired and neither returned nor forgotten).
    held: usize,
    waiters: WaitList<(), ()>,
}

pub(crate) struct Permits {
    state: Mutex<State>,
}

impl Permits {
    pub(crate) const fn new(available: usize) -> Self {
        Permits {
            state: Mutex::new(State {
                available,
                held: 0,
                waiters: WaitList::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics under this lock (no user code runs there); recover all the same.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes a permit if one is free and nobody waits (asyncio's `locked()` is false).
    pub(crate) fn try_acquire(&self) -> bool {
        let mut st = self.lock();
        if st.waiters.is_empty() && st.available > 0 {
            st.available -= 1;
            st.held += 1;
            true
        } else {
            false
        }
    }

    pub(crate) fn acquire(&self) -> Acquire<'_> {
        Acquire {
            permits: self,
            key: None,
        }
    }

    /// A guard gives its permit back.
    pub(crate) fn release_held(&self) {
        let mut wakers = Wakers::new();
        let mut st = self.lock();
        st.held -= 1;
        release_locked(&mut st, &mut wakers);
    }

    /// A guard is forgotten: its permit is neither held nor free until a `release`.
    pub(crate) fn forget_held(&self) {
        self.lock().held -= 1;
    }

    /// An explicit release. With `bound`, refused (`Err(bound)`) when it would make more
    /// permits exist than `bound`.
    pub(crate) fn release(&self, bound: Option<usize>) -> Result<(), usize> {
        let mut wakers = Wakers::new();
        let mut st = self.lock();
        if let Some(bound) = bound {
            if st.available + st.held >= bound {
                return Err(bound);
            }
        }
        release_locked(&mut st, &mut wakers);
        Ok(())
    }

    pub(crate) fn available(&self) -> usize {
        self.lock().available
    }

    /// asyncio's `locked()`: an acquire now would wait.
    pub(crate) fn locked(&self) -> bool {
        let st = self.lock();
        st.available == 0 || !st.waiters.is_empty()
    }

    pub(crate) fn waiting(&self) -> usize {
        self.lock().waiters.len()
    }
}

/// One permit comes back: to the first waiter if any (hand-off), else to the count.
fn release_locked(st: &mut State, wakers: &mut Wakers) {
    match st.waiters.take_front() {
        Some((key, ())) => {
            st.held += 1;
            wakers.push(st.waiters.grant(key, ()));
        }
        None => st.available += 1,
    }
}

/// Waits for a permit; dropped while waiting, it leaves the line, and dropped after its grant
/// but before it was polled again, it passes the permit on.
pub(crate) struct Acquire<'a> {
    permits: &'a Permits,
    key: Option<usize>,
}

impl Future for Acquire<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let permits = self.permits;
        let mut st = permits.lock();
        match self.key {
            None => {
                if st.waiters.is_empty() && st.available > 0 {
                    st.available -= 1;
                    st.held += 1;
                    return Poll::Ready(());
                }
                self.key = Some(st.waiters.push((), Some(cx.waker())));
                Poll::Pending
            }
            Some(key) => match st.waiters.poll(key, cx.waker()) {
                Some(()) => {
                    self.key = None;
                    Poll::Ready(())
                }
                None => Poll::Pending,
            },
        }
    }
}

impl Drop for Acquire<'_> {
    fn drop(&mut self) {
        let Some(key) = self.key.take() else { return };
        let mut wakers = Wakers::new();
        let mut st = self.permits.lock();
        if let Left::Granted(()) = st.waiters.remove(key) {
            st.held -= 1;
            release_locked(&mut st, &mut wakers);
        }
    }
}
