//! Scheduled callbacks: [`Handle`] (from `call_soon`) and [`TimerHandle`] (from `call_later` /
//! `call_at`).
//!
//! A scheduled callback is one allocation: an `Rc<CallbackCell<Cell<Option<F>>>>`, unsized to
//! `Rc<CallbackCell<dyn CallSlot>>` so the ready queue holds one thin-pointer-sized enum per item.
//! The queue and the user's handle share the cell; cancelling sets a flag in it and drops the
//! closure at once (asyncio clears the callback on `cancel()`), and the loop skips a cancelled
//! cell when its turn comes, even within the batch in which it was cancelled.
//!
//! A `Send` sleep's timer is a cell of the same kind whose slot (`WakeSlot`) wakes the sleeper
//! and reads its cancelled flag from a [`WakeTimer`] shared with the sleep, since the sleep may
//! be dropped on any thread (see [`crate::timers`]).

use std::cell::Cell;
use std::fmt;
use std::panic::Location;
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::time::Instant;

use crate::event_loop::Inner;
use crate::timers::WakeTimer;

/// The callback was cancelled.
const CANCELLED: u8 = 1 << 0;
/// The callback sits in the timer heap (cancelling it counts towards the heap's rebuild).
const IN_HEAP: u8 = 1 << 1;
/// The slot is cancelled from outside (a `Send` sleep's timer, see [`WakeTimer`]): ask it.
const EXTERNAL: u8 = 1 << 2;

/// The type-erased part of a scheduled callback: call it once, or drop it.
pub(crate) trait CallSlot {
    /// Takes the closure out and calls it; does nothing if it was already taken.
    fn call(&self);
    /// Drops the closure now, on the loop's thread.
    fn clear(&self);
    /// The closure's type name, for reports.
    fn name(&self) -> &'static str;
    /// Whether it was cancelled from outside the cell (only for `EXTERNAL` cells).
    fn cancelled_elsewhere(&self) -> bool {
        false
    }
    /// The timer heap let go of the cell (only for `EXTERNAL` cells).
    fn left_heap(&self) {}
    /// Whether this stands for a threadsafe callback (see [`new_inbox_marker`]).
    fn is_threadsafe(&self) -> bool {
        false
    }
}

/// The ready queue's stand-in for the next threadsafe callback drained from the inbox: those
/// wait in the loop's own FIFO (`Inner::inbox_calls`), and each is represented in the ready
/// queue by a clone of this one cell, so the ready queue's item stays two words (an enum of a
/// callback and a task; a third variant would make every item three).
struct InboxSlot(Weak<Inner>);

impl CallSlot for InboxSlot {
    fn call(&self) {
        if let Some(inner) = self.0.upgrade() {
            inner.run_next_inbox_call();
        }
    }

    /// `close()` runs the threadsafe callbacks the inbox accepted instead of dropping them:
    /// their producers were told they would run (see `Remote`).
    fn clear(&self) {
        self.call();
    }

    fn name(&self) -> &'static str {
        "threadsafe callback"
    }

    fn is_threadsafe(&self) -> bool {
        true
    }
}

/// A `Send` sleep's timer as the heap holds it: firing wakes the sleeper, and its cancelled
/// flag lives in the shared [`WakeTimer`].
struct WakeSlot(Arc<WakeTimer>);

impl CallSlot for WakeSlot {
    fn call(&self) {
        self.0.fire();
    }

    fn clear(&self) {
        self.0.clear();
    }

    fn name(&self) -> &'static str {
        "spindle_loop::sleep::Sleep"
    }

    fn cancelled_elsewhere(&self) -> bool {
        self.0.is_cancelled()
    }

    fn left_heap(&self) {
        self.0.left_heap();
    }
}

impl<F: FnOnce()> CallSlot for Cell<Option<F>> {
    fn call(&self) {
        if let Some(f) = self.take() {
            f();
        }
    }

    fn clear(&self) {
        drop(self.take());
    }

    fn name(&self) -> &'static str {
        std::any::type_name::<F>()
    }
}

/// One scheduled callback: its state, where it was scheduled, and the closure.
pub(crate) struct CallbackCell<S: ?Sized> {
    state: Cell<u8>,
    created_at: &'static Location<'static>,
    slot: S,
}

pub(crate) type Callback = Rc<CallbackCell<dyn CallSlot>>;

pub(crate) fn new_callback<F: FnOnce() + 'static>(
    f: F,
    created_at: &'static Location<'static>,
) -> Callback {
    Rc::new(CallbackCell {
        state: Cell::new(0),
        created_at,
        slot: Cell::new(Some(f)),
    })
}

/// The one cell a loop queues for each threadsafe callback it drains (see `InboxSlot`).
#[track_caller]
pub(crate) fn new_inbox_marker(inner: Weak<Inner>) -> Callback {
    Rc::new(CallbackCell {
        state: Cell::new(0),
        created_at: Location::caller(),
        slot: InboxSlot(inner),
    })
}

/// The heap's cell for a [`WakeTimer`].
pub(crate) fn new_wake_callback(
    timer: Arc<WakeTimer>,
    created_at: &'static Location<'static>,
) -> Callback {
    Rc::new(CallbackCell {
        state: Cell::new(EXTERNAL),
        created_at,
        slot: WakeSlot(timer),
    })
}

impl CallbackCell<dyn CallSlot> {
    pub(crate) fn is_cancelled(&self) -> bool {
        let state = self.state.get();
        state & CANCELLED != 0 || (state & EXTERNAL != 0 && self.slot.cancelled_elsewhere())
    }

    /// Cancelled through a [`TimerHandle`] on this thread (counted in the heap's own count;
    /// external cells are counted by their [`WakeTimer`]).
    pub(crate) fn is_locally_cancelled(&self) -> bool {
        self.state.get() & CANCELLED != 0
    }

    /// Marks it cancelled and drops the closure. Returns whether it was sitting in the timer heap
    /// (then the caller counts it towards the heap's lazy removal).
    fn cancel(&self) -> bool {
        let state = self.state.get();
        if state & CANCELLED != 0 {
            return false;
        }
        self.state.set(state | CANCELLED);
        self.slot.clear();
        state & IN_HEAP != 0
    }

    pub(crate) fn set_in_heap(&self, in_heap: bool) {
        let state = self.state.get();
        self.state.set(if in_heap {
            state | IN_HEAP
        } else {
            state & !IN_HEAP
        });
        if !in_heap && state & EXTERNAL != 0 {
            self.slot.left_heap();
        }
    }

    pub(crate) fn run(&self) {
        self.slot.call();
    }

    pub(crate) fn clear(&self) {
        self.slot.clear();
    }

    pub(crate) fn name(&self) -> &'static str {
        self.slot.name()
    }

    /// Whether this is the stand-in for a threadsafe callback (see `new_inbox_marker`).
    pub(crate) fn is_threadsafe(&self) -> bool {
        self.slot.is_threadsafe()
    }

    pub(crate) fn created_at(&self) -> &'static Location<'static> {
        self.created_at
    }
}

/// A callback scheduled with [`EventLoop::call_soon`](crate::EventLoop::call_soon).
///
/// Dropping the handle does not cancel the callback.
///
/// ```
/// use std::{cell::Cell, rc::Rc};
/// use spindle_loop::EventLoop;
///
/// let lp = EventLoop::new().unwrap();
/// let ran = Rc::new(Cell::new(false));
/// let r = ran.clone();
/// let handle = lp.call_soon(move || r.set(true)).unwrap();
/// handle.cancel();
/// assert!(handle.cancelled());
/// lp.stop();
/// lp.run_forever().unwrap();
/// assert!(!ran.get());
/// ```
#[derive(Clone)]
pub struct Handle {
    pub(crate) cell: Callback,
}

impl Handle {
    /// Cancels the callback: it will not run. Does nothing if it already ran.
    ///
    /// ```
    /// # let lp = spindle_loop::EventLoop::new().unwrap();
    /// let h = lp.call_soon(|| unreachable!()).unwrap();
    /// h.cancel();
    /// # lp.stop(); lp.run_forever().unwrap();
    /// ```
    pub fn cancel(&self) {
        self.cell.cancel();
    }

    /// Whether [`cancel`](Self::cancel) was called.
    ///
    /// ```
    /// # let lp = spindle_loop::EventLoop::new().unwrap();
    /// let h = lp.call_soon(|| ()).unwrap();
    /// assert!(!h.cancelled());
    /// ```
    pub fn cancelled(&self) -> bool {
        self.cell.is_cancelled()
    }

    /// Where the callback was scheduled (the caller of `call_soon`).
    ///
    /// ```
    /// # let lp = spindle_loop::EventLoop::new().unwrap();
    /// let h = lp.call_soon(|| ()).unwrap();
    /// assert_eq!(h.created_at().line(), line!() - 1);
    /// ```
    pub fn created_at(&self) -> &'static Location<'static> {
        self.cell.created_at()
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle")
            .field("callback", &self.cell.name())
            .field("cancelled", &self.cancelled())
            .field("created_at", &self.created_at())
            .finish()
    }
}

/// A callback scheduled for a point in time with [`EventLoop::call_later`] or
/// [`EventLoop::call_at`].
///
/// [`EventLoop::call_later`]: crate::EventLoop::call_later
/// [`EventLoop::call_at`]: crate::EventLoop::call_at
///
/// ```
/// use std::time::Duration;
/// use spindle_loop::EventLoop;
///
/// let lp = EventLoop::new().unwrap();
/// let t = lp.call_later(Duration::from_secs(3600), || unreachable!()).unwrap();
/// assert!(t.when() > lp.time());
/// t.cancel();
/// assert!(t.cancelled());
/// ```
#[derive(Clone)]
pub struct TimerHandle {
    pub(crate) cell: Callback,
    pub(crate) when: Instant,
    pub(crate) owner: Weak<Inner>,
}

impl TimerHandle {
    /// Cancels the timer: the callback will not run, and its heap entry is removed lazily.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # let lp = spindle_loop::EventLoop::new().unwrap();
    /// let t = lp.call_later(Duration::ZERO, || unreachable!()).unwrap();
    /// t.cancel();
    /// # lp.stop(); lp.run_forever().unwrap();
    /// ```
    pub fn cancel(&self) {
        if self.cell.cancel() {
            if let Some(owner) = self.owner.upgrade() {
                owner.timer_cancelled();
            }
        }
    }

    /// Whether [`cancel`](Self::cancel) was called.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # let lp = spindle_loop::EventLoop::new().unwrap();
    /// let t = lp.call_later(Duration::from_secs(1), || ()).unwrap();
    /// assert!(!t.cancelled());
    /// ```
    pub fn cancelled(&self) -> bool {
        self.cell.is_cancelled()
    }

    /// When the callback is due, on the loop's clock ([`EventLoop::time`](crate::EventLoop::time)).
    ///
    /// ```
    /// # use std::time::Instant;
    /// # let lp = spindle_loop::EventLoop::new().unwrap();
    /// let at = Instant::now();
    /// assert_eq!(lp.call_at(at, || ()).unwrap().when(), at);
    /// ```
    pub fn when(&self) -> Instant {
        self.when
    }

    /// Where the timer was scheduled.
    ///
    /// ```
    /// # use std::time::Instant;
    /// # let lp = spindle_loop::EventLoop::new().unwrap();
    /// let t = lp.call_at(Instant::now(), || ()).unwrap();
    /// assert!(t.created_at().file().ends_with(".rs"));
    /// ```
    pub fn created_at(&self) -> &'static Location<'static> {
        self.cell.created_at()
    }
}

impl fmt::Debug for TimerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimerHandle")
            .field("callback", &self.cell.name())
            .field("when", &self.when)
            .field("cancelled", &self.cancelled())
            .field("created_at", &self.created_at())
            .finish()
    }
}
