//! [`Barrier`]: asyncio's `Barrier` (3.11), on the FIFO waiter list.
//!
//! Each waiter is granted its outcome (its arrival index, or broken) by the party that trips,
//! aborts or resets the barrier, so a waiter knows which trip it belonged to even if the
//! barrier has moved on several times before it runs again. One difference from asyncio,
//! which makes newcomers wait while the released parties leave ("draining"): here a trip
//! starts the next cycle at once, and a newcomer simply belongs to it. The waiters of a trip
//! are released all the same, and no cycle mixes parties of two trips.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};

use crate::error::BrokenBarrierError;
use crate::waiters::{Left, WaitList, Wakers};

struct State {
    /// Parties waiting in the current cycle.
    count: usize,
    broken: bool,
    waiters: WaitList<(), Result<usize, BrokenBarrierError>>,
}

/// asyncio's `Barrier`: `parties` tasks wait for each other; when the last one arrives they
/// all go on, each with its arrival index (`0..parties`). [`abort`](Self::abort) breaks it
/// (every waiter, and every later `wait`, gets [`BrokenBarrierError`] until
/// [`reset`](Self::reset)); `reset` breaks the current waiters and starts afresh. A waiter
/// cancelled before the barrier trips gives up its place (the count goes back down).
///
/// ```
/// use std::sync::Arc;
/// use spindle_sync::Barrier;
///
/// let barrier = Arc::new(Barrier::new(2));
/// let other = barrier.clone();
/// let indices = spindle_policy::run(async move {
///     let peer = spindle_loop::spawn_local(async move { other.wait().await.unwrap() }).unwrap();
///     let mine = barrier.wait().await.unwrap();
///     (mine, peer.await.unwrap())
/// })
/// .unwrap();
/// assert_eq!(indices, (0, 1)); // this task arrived first
/// ```
pub struct Barrier {
    parties: usize,
    state: Mutex<State>,
}

impl Barrier {
    /// A barrier for `parties` tasks (a barrier of 0 parties behaves as one of 1).
    ///
    /// ```
    /// assert_eq!(spindle_sync::Barrier::new(3).parties(), 3);
    /// ```
    pub const fn new(parties: usize) -> Barrier {
        Barrier {
            parties: if parties == 0 { 1 } else { parties },
            state: Mutex::new(State {
                count: 0,
                broken: false,
                waiters: WaitList::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for the other parties; returns this task's arrival index, or
    /// [`BrokenBarrierError`] if the barrier is or becomes broken before it trips.
    ///
    /// ```
    /// static BARRIER: spindle_sync::Barrier = spindle_sync::Barrier::new(1);
    /// assert_eq!(spindle_policy::run(BARRIER.wait()).unwrap(), Ok(0));
    /// ```
    pub fn wait(&self) -> impl Future<Output = Result<usize, BrokenBarrierError>> + Send + '_ {
        BarrierWait {
            barrier: self,
            key: None,
        }
    }

    /// Breaks the barrier: waiters and later `wait`s get [`BrokenBarrierError`] until `reset`.
    ///
    /// ```
    /// static BARRIER: spindle_sync::Barrier = spindle_sync::Barrier::new(2);
    /// BARRIER.abort();
    /// assert!(BARRIER.broken());
    /// assert!(spindle_policy::run(BARRIER.wait()).unwrap().is_err());
    /// ```
    pub fn abort(&self) {
        let mut wakers = Wakers::new();
        let mut st = self.lock();
        st.broken = true;
        break_waiters(&mut st, &mut wakers);
    }

    /// Back to the empty state: current waiters get [`BrokenBarrierError`], the barrier is no
    /// longer broken.
    ///
    /// ```
    /// let barrier = spindle_sync::Barrier::new(1);
    /// barrier.abort();
    /// barrier.reset();
    /// assert!(!barrier.broken());
    /// ```
    pub fn reset(&self) {
        let mut wakers = Wakers::new();
        let mut st = self.lock();
        break_waiters(&mut st, &mut wakers);
        st.broken = false;
    }

    /// Whether the barrier is broken.
    ///
    /// ```
    /// assert!(!spindle_sync::Barrier::new(2).broken());
    /// ```
    pub fn broken(&self) -> bool {
        self.lock().broken
    }

    /// How many parties it takes to trip.
    ///
    /// ```
    /// assert_eq!(spindle_sync::Barrier::new(4).parties(), 4);
    /// ```
    pub fn parties(&self) -> usize {
        self.parties
    }

    /// How many parties wait in the current cycle.
    ///
    /// ```
    /// assert_eq!(spindle_sync::Barrier::new(4).n_waiting(), 0);
    /// ```
    pub fn n_waiting(&self) -> usize {
        self.lock().count
    }
}

fn break_waiters(st: &mut State, wakers: &mut Wakers) {
    while let Some((key, ())) = st.waiters.take_front() {
        wakers.push(st.waiters.grant(key, Err(BrokenBarrierError)));
    }
    st.count = 0;
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.lock();
        f.debug_struct("Barrier")
            .field("parties", &self.parties)
            .field("n_waiting", &st.count)
            .field("broken", &st.broken)
            .finish()
    }
}

struct BarrierWait<'a> {
    barrier: &'a Barrier,
    key: Option<usize>,
}

impl Future for BarrierWait<'_> {
    type Output = Result<usize, BrokenBarrierError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let barrier = self.barrier;
        let mut wakers = Wakers::new();
        let mut st = barrier.lock();
        if let Some(key) = self.key {
            return match st.waiters.poll(key, cx.waker()) {
                Some(outcome) => {
                    self.key = None;
                    Poll::Ready(outcome)
                }
                None => Poll::Pending,
            };
        }
        if st.broken {
            return Poll::Ready(Err(BrokenBarrierError));
        }
        let index = st.count;
        if index + 1 < barrier.parties {
            st.count += 1;
            self.key = Some(st.waiters.push((), Some(cx.waker())));
            return Poll::Pending;
        }
        // The last party: release this cycle's waiters, in arrival order.
        let mut arrival = 0;
        while let Some((key, ())) = st.waiters.take_front() {
            wakers.push(st.waiters.grant(key, Ok(arrival)));
            arrival += 1;
        }
        st.count = 0;
        Poll::Ready(Ok(index))
    }
}

impl Drop for BarrierWait<'_> {
    fn drop(&mut self) {
        let Some(key) = self.key.take() else { return };
        let mut st = self.barrier.lock();
        if let Left::Waiting(()) = st.waiters.remove(key) {
            st.count -= 1;
        }
    }
}
