//! [`sleep`], [`sleep_until`] and [`yield_now`]: suspending the current task.
//!
//! A sleep registers its timer on the loop where it is **first polled** (found with the
//! thread's running loop) and keeps only a [`WakeTimer`] (its slot in that loop's slab, see
//! [`crate::timers`]): so a [`Sleep`] is `Send + Sync`, may be polled again from another
//! thread (the timer wakes whatever waker it was last polled with), and may be dropped
//! anywhere: dropping it before the deadline cancels the timer through an atomic flag, and the
//! queue counts it towards its lazy-removal rebuild.
//!
//! Polled again on its own loop with a deadline the loop's last due-timers pass covered (the
//! common case: woken by its timer), a sleep is over without reading its slot: that pass's
//! batch fired every timer due then, and the slot is already another sleep's to take.
//!
//! `sleep(Duration::ZERO)` is asyncio's `sleep(0)`: no timer; the task yields once, so it
//! resumes in the next iteration, after the callbacks that were already scheduled. A sleep
//! whose deadline has already passed when it is first polled does the same (asyncio's `sleep`
//! of a delay <= 0; tokio completes such a sleep without its timer wheel too): it costs no
//! timer, and a batch of such sleepers resumes in the order they slept, not in deadline order.

use std::fmt;
use std::future::Future;
use std::panic::Location;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::context;
use crate::timers::WakeTimer;

/// What a combinator polled outside a running loop panics with.
pub(crate) const NO_RUNNING_LOOP: &str = "spindle: this future needs a running event loop: await \
     it inside a task or run_until_complete of a spindle EventLoop (or a spindle runtime worker)";

/// A future that completes once its deadline has passed. Created by [`sleep`] and
/// [`sleep_until`]; `Send + Sync`.
///
/// ```
/// use std::time::{Duration, Instant};
/// use spindle_loop::{sleep, EventLoop};
///
/// let lp = EventLoop::new().unwrap();
/// let t0 = Instant::now();
/// lp.run_until_complete(sleep(Duration::from_millis(5))).unwrap();
/// assert!(t0.elapsed() >= Duration::from_millis(5));
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct Sleep {
    deadline: Instant,
    state: State,
    created_at: &'static Location<'static>,
}

enum State {
    /// `sleep(Duration::ZERO)`: no timer, one yield.
    Yield(YieldNow),
    /// Not polled yet.
    Unpolled,
    /// The timer is in the queue of the loop where it was first polled.
    Waiting(WakeTimer),
    Done,
}

/// Suspends the current task for at least `delay` (asyncio's `asyncio.sleep`).
///
/// The deadline is taken when `sleep` is called. `sleep(Duration::ZERO)` yields exactly one
/// loop iteration: callbacks scheduled before it run before the task resumes. A delay too
/// large for the clock sleeps practically forever; it does not panic.
///
/// # Panics
///
/// When first polled outside a running spindle loop (e.g. by another executor): there is no
/// loop to hold its timer.
///
/// ```
/// use std::time::Duration;
/// use spindle_loop::{sleep, EventLoop};
///
/// let lp = EventLoop::new().unwrap();
/// let out = lp.run_until_complete(async {
///     sleep(Duration::from_millis(1)).await;
///     "rested"
/// });
/// assert_eq!(out.unwrap(), "rested");
/// ```
#[track_caller]
pub fn sleep(delay: Duration) -> Sleep {
    Sleep {
        deadline: crate::timers::deadline_after(delay),
        state: if delay.is_zero() {
            State::Yield(YieldNow::default())
        } else {
            State::Unpolled
        },
        created_at: Location::caller(),
    }
}

/// Suspends the current task until `deadline` on the loop's clock
/// ([`EventLoop::time`](crate::EventLoop::time)). A deadline already past when the sleep is
/// first polled suspends the task for one iteration, as `sleep(Duration::ZERO)` (asyncio's
/// `sleep` of a delay <= 0): it resumes after the callbacks already scheduled, without a timer.
///
/// # Panics
///
/// As [`sleep`]: when first polled outside a running spindle loop.
///
/// ```
/// use std::time::{Duration, Instant};
/// use spindle_loop::{sleep_until, EventLoop};
///
/// let lp = EventLoop::new().unwrap();
/// let at = Instant::now() + Duration::from_millis(3);
/// lp.run_until_complete(sleep_until(at)).unwrap();
/// assert!(Instant::now() >= at);
/// ```
#[track_caller]
pub fn sleep_until(deadline: Instant) -> Sleep {
    Sleep {
        deadline,
        state: State::Unpolled,
        created_at: Location::caller(),
    }
}

impl Sleep {
    /// When the sleep ends.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let at = Instant::now() + Duration::from_secs(1);
    /// assert_eq!(spindle_loop::sleep_until(at).deadline(), at);
    /// ```
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Whether the sleep has completed (it returned `Ready`).
    ///
    /// ```
    /// use std::time::Duration;
    /// let s = spindle_loop::sleep(Duration::ZERO);
    /// assert!(!s.is_done());
    /// ```
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        match &mut this.state {
            State::Yield(yield_now) => {
                // Rescheduled behind what is already in the ready queue: one iteration.
                if Pin::new(yield_now).poll(cx).is_pending() {
                    return Poll::Pending;
                }
                this.state = State::Done;
                Poll::Ready(())
            }
            State::Unpolled => {
                let (deadline, created_at) = (this.deadline, this.created_at);
                if deadline <= Instant::now() && context::with_running(|lp| lp.is_some()) {
                    // Already due: one yield, no timer (see the module docs).
                    this.state = State::Yield(YieldNow::default());
                    return Pin::new(this).poll(cx);
                }
                let timer = context::with_running(|lp| {
                    lp.map(|lp| lp.push_wake_timer(deadline, cx.waker(), created_at))
                });
                let Some(timer) = timer else {
                    panic!("{NO_RUNNING_LOOP}");
                };
                this.state = State::Waiting(timer);
                Poll::Pending
            }
            State::Waiting(timer) => {
                // On its own loop, past the deadline the last pass fired through: over, with
                // no read of the slot (see the module docs). Otherwise the slot says.
                let deadline = this.deadline;
                let fired_here = context::with_running(|lp| {
                    lp.is_some_and(|lp| lp.id() == timer.loop_id() && lp.timer_fired_by(deadline))
                });
                if !fired_here && !timer.poll_fired(cx.waker()) {
                    return Poll::Pending;
                }
                this.state = State::Done;
                Poll::Ready(())
            }
            State::Done => Poll::Ready(()),
        }
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let State::Waiting(timer) = &self.state {
            let _ = timer.cancel();
        }
    }
}

impl fmt::Debug for Sleep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Yield(YieldNow { yielded: false }) | State::Unpolled => "unpolled",
            State::Yield(YieldNow { yielded: true }) => "yielded",
            State::Waiting(..) => "waiting",
            State::Done => "done",
        };
        f.debug_struct("Sleep")
            .field("deadline", &self.deadline)
            .field("state", &state)
            .field("created_at", &self.created_at)
            .finish()
    }
}

/// Yields to the loop once: the task is rescheduled behind everything already ready, and
/// resumes in the next iteration (the same as `sleep(Duration::ZERO)`). Created by
/// [`yield_now`]; `Send + Sync`, and it needs no running loop.
///
/// ```
/// use spindle_loop::{yield_now, EventLoop};
/// let lp = EventLoop::new().unwrap();
/// lp.run_until_complete(yield_now()).unwrap();
/// ```
#[derive(Debug, Default)]
#[must_use = "futures do nothing unless awaited"]
pub struct YieldNow {
    yielded: bool,
}

/// Gives the other ready callbacks and tasks their turn, then resumes (tokio's
/// `task::yield_now`, asyncio's `await asyncio.sleep(0)`).
///
/// ```
/// use std::{cell::Cell, rc::Rc};
/// use spindle_loop::{yield_now, EventLoop};
///
/// let lp = EventLoop::new().unwrap();
/// let seen = lp.run_until_complete(async {
///     let ran = Rc::new(Cell::new(false));
///     let r = ran.clone();
///     EventLoop::running().unwrap().call_soon(move || r.set(true)).unwrap();
///     assert!(!ran.get());
///     yield_now().await; // the callback runs before the task resumes
///     ran.get()
/// });
/// assert!(seen.unwrap());
/// ```
pub fn yield_now() -> YieldNow {
    YieldNow::default()
}

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            return Poll::Ready(());
        }
        self.yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
